//! What the optional features change at run time, in whatever feature set the crate is built
//! with (`cargo test -p wscope --no-default-features --features X` runs this file; the big
//! `all` suite needs the default features): a build without `rustls` refuses `wss://` with
//! its own error before connecting, and a plain `ws://` echo works without TLS or deflate.

#[cfg(feature = "blocking")]
use wscope::{blocking, config::ServerConfig, CloseCode, Message};

/// Without TLS a `wss://` URL fails at once with [`wscope::url::UrlError::TlsDisabled`],
/// whose text names the feature, instead of speaking plain text to a TLS port. The address
/// is never dialled (port 9, discard, on loopback: nothing should listen there).
#[cfg(all(feature = "blocking", not(feature = "rustls")))]
#[test]
fn blocking_wss_without_rustls_is_refused_with_the_reason() {
    let err = blocking::connect("wss://127.0.0.1:9/").unwrap_err();
    assert!(
        matches!(err, wscope::Error::Url(wscope::url::UrlError::TlsDisabled)),
        "{err:?}"
    );
    assert!(err.to_string().contains("`rustls` feature"), "{err}");
    // The embedded-SDK-style facade (and so the C API) says the same for `secured`.
    let cfg = wscope::simple::WebsockConfig::default()
        .hostname("127.0.0.1".into())
        .port(9)
        .secured(wscope::simple::Secured::Verify);
    let err = wscope::simple::Websock::open(&cfg).unwrap_err();
    assert!(
        matches!(err, wscope::Error::Url(wscope::url::UrlError::TlsDisabled)),
        "{err:?}"
    );
}

/// The tokio client refuses `wss://` the same way without TLS.
#[cfg(all(feature = "tokio", not(feature = "rustls")))]
#[tokio::test]
async fn tokio_wss_without_rustls_is_refused_with_the_reason() {
    let err = wscope::tokio::connect_async("wss://127.0.0.1:9/")
        .await
        .unwrap_err();
    assert!(
        matches!(err, wscope::Error::Url(wscope::url::UrlError::TlsDisabled)),
        "{err:?}"
    );
}

/// The HTTP/2 client refuses `wss://` the same way without TLS, before connecting.
#[cfg(all(feature = "http2", not(feature = "rustls")))]
#[tokio::test]
async fn http2_wss_without_rustls_is_refused_with_the_reason() {
    let cfg = wscope::ClientConfig::from_url("wss://127.0.0.1:9/").unwrap();
    let err = wscope::h2::Http2Client::connect(&cfg).await.unwrap_err();
    assert!(
        matches!(err, wscope::Error::Url(wscope::url::UrlError::TlsDisabled)),
        "{err:?}"
    );
}

/// A plain `ws://` blocking client and server round trip, in every feature set that has the
/// blocking driver (with only `blocking`: no TLS, no zlib in the build).
#[cfg(feature = "blocking")]
#[test]
fn blocking_plain_echo_in_any_feature_set() {
    let server = blocking::Server::bind("127.0.0.1:0", ServerConfig::default()).unwrap();
    let url = format!("ws://{}/", server.local_addr().unwrap());
    let echo = std::thread::spawn(move || -> wscope::Result<()> {
        let mut ws = server.accept()?;
        loop {
            match ws.read() {
                Ok(msg) if msg.is_data() => ws.send(msg)?,
                Ok(_) => {}
                Err(wscope::Error::ConnectionClosed) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    });
    let (mut ws, _) = blocking::connect(&url).unwrap();
    ws.send(Message::text("plain")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("plain"));
    ws.close(CloseCode::NORMAL, "bye").unwrap();
    while ws.read().is_ok() {}
    echo.join().unwrap().unwrap();
}

/// The io_uring server without `rustls` (its TLS layer compiled out): a plain `ws://` upgrade
/// and one echoed text message, with a client written by hand (this feature set has no client).
#[cfg(all(target_os = "linux", feature = "io-uring", not(feature = "rustls")))]
#[test]
fn uring_plain_echo_without_rustls() {
    use std::io::{Read, Write};

    if let Err(e) = wscope::uring::supported() {
        eprintln!("skipped: {e}");
        return;
    }
    let mut server =
        wscope::uring::UringServer::bind("127.0.0.1:0", wscope::ServerConfig::default()).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.stop_handle().unwrap();
    let thread = std::thread::spawn(move || server.run(wscope::uring::Echo));

    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(core::time::Duration::from_secs(5)))
        .unwrap();
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            tcp.read(&mut byte).unwrap(),
            1,
            "end before the response head"
        );
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // A masked text frame (the zero key leaves the payload as it is), echoed unmasked.
    tcp.write_all(&[0x81, 0x85, 0, 0, 0, 0, b'h', b'e', b'l', b'l', b'o'])
        .unwrap();
    let mut echo = [0u8; 7];
    tcp.read_exact(&mut echo).unwrap();
    assert_eq!(echo, [0x81, 0x05, b'h', b'e', b'l', b'l', b'o']);
    stop.stop().unwrap();
    thread.join().unwrap().unwrap();
}
