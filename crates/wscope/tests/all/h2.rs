//! WebSocket over HTTP/2 (RFC 8441, feature `http2`): our client and server over h2c and TLS
//! with several streams on one connection, the core's behaviours over an HTTP/2 stream
//! (the same frames give the same bytes back as over HTTP/1.1), resets, rejections, and
//! flow control. Raw peers are built on the `h2` crate directly, so the wire is checked, not
//! only our two halves against each other.

use core::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wscope::config::{ClientConfig, DeflateConfig, ServerConfig};
use wscope::h2::{Http2Client, Http2Server};
use wscope::handshake::{Accept, Reject};
use wscope::proto::handshake::ConnectError;
use wscope::tls::{server_config_from_pem, TlsConfig};
use wscope::{CloseCode, Error, HandshakeError, Message};

use crate::util::{certificates, current_thread_rt, payload};

/// An HTTP/2 WebSocket echo server on an ephemeral port: every connection, every stream;
/// streams whose path is `/reject` are refused with 404, `/chat` gets the subprotocol.
async fn echo_server(cfg: ServerConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let cfg = cfg.clone();
            tokio::spawn(async move {
                let io: Box<dyn Io> = match &cfg.tls {
                    None => Box::new(tcp),
                    Some(tls) => {
                        let tls = wscope::h2::server_tls_with_alpn(tls);
                        let s = tokio_rustls::TlsAcceptor::from(tls).accept(tcp).await;
                        Box::new(s.unwrap())
                    }
                };
                let mut conn = Http2Server::handshake(io, &cfg).await.unwrap();
                loop {
                    let decide = |req: &wscope::handshake::Request| match req.target() {
                        "/reject" => Err(Reject::new(404)),
                        "/chat" => Ok(Accept::new().subprotocol("chat")),
                        _ => Ok(Accept::new()),
                    };
                    match conn.accept_with(decide).await {
                        None => break,
                        Some(Err(_)) => {}
                        Some(Ok((ws, _))) => {
                            tokio::spawn(echo(ws));
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Any transport for the server.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Echoes data messages until the stream ends.
async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut ws: wscope::tokio::WebSocketStream<S>,
) {
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_data() && ws.send(msg).await.is_err() {
            return;
        }
    }
}

/// Sends `n` messages of `len` bytes on `ws` and checks their echoes, then closes with 4000
/// and checks the server's close reply and the end of the stream.
async fn exchange<S>(mut ws: wscope::tokio::WebSocketStream<S>, tag: usize, n: usize, len: usize)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for i in 0..n {
        let mut body = payload(len);
        body.extend_from_slice(format!("{tag}/{i}").as_bytes());
        ws.send(Message::binary(body.clone())).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(body));
    }
    ws.close(CloseCode::from(4000), "bye").await.unwrap();
    match ws.next().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 4000),
        other => panic!("{other:?}"),
    }
    assert!(ws.next().await.is_none(), "the stream ends after the close");
    let status = ws.close_status().unwrap();
    assert_eq!(u16::from(status.remote), 4000);
}

#[test]
fn h2c_several_websockets_on_one_connection() {
    current_thread_rt().block_on(async {
        let addr = echo_server(ServerConfig::default()).await;
        let cfg = ClientConfig::new("127.0.0.1", addr.port())
            .path("/chat")
            .subprotocol("chat");
        let client = Http2Client::connect(&cfg).await.unwrap();
        assert!(client.is_extended_connect_enabled());
        let mut tasks = Vec::new();
        for tag in 0..8 {
            let (ws, response) = client.websocket(&cfg).await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(ws.subprotocol(), Some("chat"));
            // Larger than the 64 KiB default window and than one write: flow control works
            // both ways while the other streams run.
            tasks.push(tokio::spawn(exchange(ws, tag, 4, 300_000)));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // The connection still takes new streams after the others ended.
        let (ws, _) = client.websocket(&cfg).await.unwrap();
        exchange(ws, 99, 1, 10).await;
    });
}

#[test]
fn tls_with_alpn_h2_several_websockets() {
    current_thread_rt().block_on(async {
        let (ca, cert, key) = certificates();
        let tls = server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        let addr = echo_server(ServerConfig::default().tls(tls)).await;
        let cfg = ClientConfig::new("localhost", addr.port()).tls(TlsConfig::new().with_ca_pem(ca));
        assert!(cfg.secure);
        let client = Http2Client::connect(&cfg).await.unwrap();
        let (a, _) = client.websocket(&cfg).await.unwrap();
        let (b, _) = client.websocket(&cfg).await.unwrap();
        let (ta, tb) = tokio::join!(exchange(a, 1, 3, 70_000), exchange(b, 2, 3, 5));
        let ((), ()) = (ta, tb);
    });
}

#[test]
fn tls_without_alpn_h2_is_refused_by_name() {
    current_thread_rt().block_on(async {
        let (ca, cert, key) = certificates();
        let tls = server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        // An HTTP/1.1 WebSocket server: its TLS offers no ALPN.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cfg = ServerConfig::default().tls(tls);
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let _ = wscope::tokio::accept_tls(wscope::stream::Tcp::new(tcp), &cfg).await;
        });
        let cfg = ClientConfig::new("localhost", port).tls(TlsConfig::new().with_ca_pem(ca));
        let err = Http2Client::connect(&cfg).await.unwrap_err();
        assert!(
            matches!(err, Error::Handshake(HandshakeError::AlpnNotH2)),
            "{err}"
        );
    });
}

#[test]
fn permessage_deflate_is_negotiated_over_h2() {
    current_thread_rt().block_on(async {
        let mut server = ServerConfig::default();
        server.deflate = Some(DeflateConfig::default());
        let addr = echo_server(server).await;
        let mut cfg = ClientConfig::new("127.0.0.1", addr.port());
        cfg.deflate = Some(DeflateConfig::default());
        let client = Http2Client::connect(&cfg).await.unwrap();
        let (mut ws, response) = client.websocket(&cfg).await.unwrap();
        let exts: Vec<&str> = response.extension_elements().collect();
        assert_eq!(exts.len(), 1);
        assert!(exts[0].starts_with("permessage-deflate"), "{exts:?}");
        let text = "compressible ".repeat(10_000);
        ws.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(text));
        exchange(ws, 0, 2, 100_000).await;
    });
}

#[test]
fn a_refusal_carries_its_status_and_the_connection_goes_on() {
    current_thread_rt().block_on(async {
        let addr = echo_server(ServerConfig::default()).await;
        let cfg = ClientConfig::new("127.0.0.1", addr.port());
        let client = Http2Client::connect(&cfg).await.unwrap();
        let err = client
            .websocket(&cfg.clone().path("/reject"))
            .await
            .unwrap_err();
        match &err {
            Error::Handshake(h @ HandshakeError::Connect(ConnectError::Status { status: 404 })) => {
                assert_eq!(h.http_status(), Some(404));
            }
            other => panic!("{other}"),
        }
        // The application chose a subprotocol the client did not offer: the server does
        // not send it (the core refuses to build that 200) and answers 500 instead.
        let err = client
            .websocket(&cfg.clone().path("/chat"))
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Handshake(HandshakeError::Connect(ConnectError::Status {
                    status: 500
                }))
            ),
            "{err}"
        );
        let (ws, _) = client.websocket(&cfg).await.unwrap();
        exchange(ws, 0, 1, 3).await;
    });
}

/// A raw HTTP/2 client connection (the `h2` crate, no wscope): the request sender, once the
/// server's SETTINGS are in.
async fn raw_client(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send, mut conn) = h2::client::handshake(tcp).await.unwrap();
    let mut ping = conn.ping_pong().unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    ping.ping(h2::Ping::opaque()).await.unwrap();
    send.ready().await.unwrap()
}

/// Sends a CONNECT with `protocol` (none: a plain CONNECT) and `headers`; the response and
/// the stream's halves.
async fn raw_connect(
    send: &h2::client::SendRequest<Bytes>,
    addr: SocketAddr,
    protocol: Option<&'static str>,
    headers: &[(&str, &str)],
) -> (http::Response<h2::RecvStream>, h2::SendStream<Bytes>) {
    let uri = match protocol {
        Some(_) => format!("http://{addr}/raw"),
        None => addr.to_string(),
    };
    let mut req = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(uri);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let mut req = req.body(()).unwrap();
    if let Some(p) = protocol {
        req.extensions_mut()
            .insert(h2::ext::Protocol::from_static(p));
    }
    let mut send = send.clone().ready().await.unwrap();
    let (resp, stream) = send.send_request(req, false).unwrap();
    (resp.await.unwrap(), stream)
}

#[test]
fn rfc_8441_rejections_with_their_statuses() {
    current_thread_rt().block_on(async {
        let addr = echo_server(ServerConfig::default()).await;
        let send = raw_client(addr).await;
        let v13 = [("sec-websocket-version", "13")];
        // Missing :protocol: a plain CONNECT.
        let (resp, _) = raw_connect(&send, addr, None, &v13).await;
        assert_eq!(resp.status(), 400);
        // An unsupported protocol: 501.
        let (resp, _) = raw_connect(&send, addr, Some("connect-udp"), &v13).await;
        assert_eq!(resp.status(), 501);
        // Version 8: 400 with the version we speak.
        let (resp, _) = raw_connect(
            &send,
            addr,
            Some("websocket"),
            &[("sec-websocket-version", "8")],
        )
        .await;
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.headers()["sec-websocket-version"], "13");
        // No version at all.
        let (resp, _) = raw_connect(&send, addr, Some("websocket"), &[]).await;
        assert_eq!(resp.status(), 400);
        // A Sec-WebSocket-Key (HTTP/1.1 only).
        let key = [v13[0], ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")];
        let (resp, _) = raw_connect(&send, addr, Some("websocket"), &key).await;
        assert_eq!(resp.status(), 400);
        // And a valid one on the same connection is accepted.
        let (resp, _) = raw_connect(&send, addr, Some("websocket"), &v13).await;
        assert_eq!(resp.status(), 200);
    });
}

#[test]
fn a_server_without_extended_connect_is_refused_by_name() {
    current_thread_rt().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            // A plain h2 server: no SETTINGS_ENABLE_CONNECT_PROTOCOL.
            let mut conn = h2::server::handshake(tcp).await.unwrap();
            while let Some(Ok(_)) = conn.accept().await {}
        });
        let cfg = ClientConfig::new("127.0.0.1", port);
        let err = Http2Client::connect(&cfg).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Handshake(HandshakeError::ExtendedConnectDisabled)
            ),
            "{err}"
        );
    });
}

#[test]
fn a_stream_reset_is_an_abnormal_closure() {
    current_thread_rt().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut conn = Http2Server::handshake(tcp, &ServerConfig::default())
                .await
                .unwrap();
            let (mut ws, _) = conn.accept().await.unwrap().unwrap();
            // The connection's I/O runs while the WebSocket waits.
            tokio::spawn(async move { while conn.accept().await.is_some() {} });
            let _ = first_tx.send(ws.next().await);
            let end = ws.next().await;
            let status = ws.close_status().cloned();
            let _ = tx.send((end, status));
        });
        let send = raw_client(addr).await;
        let (resp, mut stream) = raw_connect(
            &send,
            addr,
            Some("websocket"),
            &[("sec-websocket-version", "13")],
        )
        .await;
        assert_eq!(resp.status(), 200);
        // One masked text frame "hi", then RST_STREAM(CANCEL).
        stream
            .send_data(
                Bytes::from_static(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i']),
                false,
            )
            .unwrap();
        let first = first_rx.await.unwrap();
        assert_eq!(first.unwrap().unwrap(), Message::text("hi"));
        stream.send_reset(h2::Reason::CANCEL);
        let (end, status) = rx.await.unwrap();
        match end {
            Some(Err(Error::Io(e))) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(status.unwrap().remote, CloseCode::ABNORMAL);
    });
}

/// Frames a raw client sends, and what the server's replies must be, byte for byte.
fn masked(opcode_fin: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![opcode_fin, 0x80 | payload.len() as u8];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// The core's behaviours, as (client frames, the server's reply bytes up to the end of the
/// stream): the same cases run over HTTP/1.1 and over an HTTP/2 stream.
fn core_cases() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let close_1000 = masked(0x88, &[0x03, 0xe8]);
    vec![
        (
            "fragments with a ping between them (Autobahn 5.6)",
            [
                masked(0x01, b"Hel"),
                masked(0x89, b"ping!"),
                masked(0x80, b"lo"),
                close_1000.clone(),
            ]
            .concat(),
            [
                &[0x8a, 0x05][..],
                b"ping!",
                &[0x81, 0x05],
                b"Hello",
                &[0x88, 0x02, 0x03, 0xe8],
            ]
            .concat(),
        ),
        (
            "invalid UTF-8 in a text message: 1007",
            masked(
                0x81,
                &[0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xed, 0xa0, 0x80],
            ),
            vec![0x88, 0x02, 0x03, 0xef],
        ),
        (
            "a continuation with nothing to continue: 1002",
            masked(0x80, b"x"),
            vec![0x88, 0x02, 0x03, 0xea],
        ),
        (
            "close code 1005 on the wire: 1002",
            masked(0x88, &[0x03, 0xed]),
            vec![0x88, 0x02, 0x03, 0xea],
        ),
        (
            "a valid close code is echoed (3000)",
            masked(0x88, &[0x0b, 0xb8, b'o', b'k']),
            vec![0x88, 0x02, 0x0b, 0xb8],
        ),
        (
            "an unmasked client frame: 1002",
            vec![0x81, 0x02, b'h', b'i'],
            vec![0x88, 0x02, 0x03, 0xea],
        ),
    ]
}

/// Runs `frames` against an HTTP/1.1 echo server (raw TCP client): the bytes after the 101.
async fn over_http1(frames: &[u8]) -> Vec<u8> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        echo(wscope::tokio::accept_async(tcp).await.unwrap()).await;
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    tcp.write_all(frames).await.unwrap();
    let mut all = Vec::new();
    tcp.read_to_end(&mut all).await.unwrap();
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    all.split_off(end)
}

/// Runs `frames` on an HTTP/2 stream (raw h2 client): the DATA the server sent up to
/// END_STREAM (which must come).
async fn over_http2(addr: SocketAddr, frames: &[u8]) -> Vec<u8> {
    let send = raw_client(addr).await;
    let (resp, mut stream) = raw_connect(
        &send,
        addr,
        Some("websocket"),
        &[("sec-websocket-version", "13")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    stream
        .send_data(Bytes::copy_from_slice(frames), false)
        .unwrap();
    let mut body = resp.into_body();
    let mut all = Vec::new();
    while let Some(data) = body.data().await {
        let data = data.unwrap();
        body.flow_control().release_capacity(data.len()).unwrap();
        all.extend_from_slice(&data);
    }
    assert!(
        body.is_end_stream(),
        "the server ended the stream (END_STREAM)"
    );
    all
}

#[test]
fn the_core_behaves_the_same_over_an_h2_stream_as_over_http1() {
    current_thread_rt().block_on(async {
        let addr = echo_server(ServerConfig::default()).await;
        for (name, frames, expected) in core_cases() {
            let h1 = over_http1(&frames).await;
            let h2 = over_http2(addr, &frames).await;
            assert_eq!(h1, expected, "HTTP/1.1: {name}");
            assert_eq!(h2, expected, "HTTP/2: {name}");
        }
    });
}

/// A peer that never reads: our writes stop at the stream's window (backpressure), no
/// unbounded buffering; they resume when it reads.
#[test]
fn flow_control_is_backpressure() {
    current_thread_rt().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut conn = Http2Server::handshake(tcp, &ServerConfig::default())
                .await
                .unwrap();
            let (mut ws, _) = conn.accept().await.unwrap().unwrap();
            tokio::spawn(async move { while conn.accept().await.is_some() {} });
            // Feeds 64 KiB messages until a send has waited (the queue is full and the
            // stream's window is used up), counting what was accepted.
            let mut sent = 0usize;
            loop {
                let send = ws.send(Message::binary(vec![7u8; 64 * 1024]));
                match tokio::time::timeout(core::time::Duration::from_millis(300), send).await {
                    Ok(Ok(())) => sent += 64 * 1024,
                    Ok(Err(e)) => panic!("{e}"),
                    Err(_) => break,
                }
                assert!(sent < 64 << 20, "no backpressure after {sent} bytes");
            }
            let _ = tx.send(sent);
            // Keeps the stream alive for the reader below.
            while let Some(Ok(_)) = ws.next().await {}
        });
        // A raw client whose stream window is 64 KiB (the default) and that does not read.
        let send = raw_client(addr).await;
        let (resp, _stream) = raw_connect(
            &send,
            addr,
            Some("websocket"),
            &[("sec-websocket-version", "13")],
        )
        .await;
        assert_eq!(resp.status(), 200);
        let sent = rx.await.unwrap();
        // The window (64 KiB) + the HTTP/2 send buffer + the WebSocket write queue (128 KiB)
        // and one message: far below what an unbounded writer would have taken.
        assert!(
            sent <= 2 << 20,
            "{sent} bytes taken by a peer that does not read"
        );
        // Now read: everything that was accepted arrives.
        let mut body = resp.into_body();
        let mut got = 0usize;
        while got < sent {
            let data = body.data().await.unwrap().unwrap();
            body.flow_control().release_capacity(data.len()).unwrap();
            got += data.len();
        }
    });
}

#[test]
fn the_one_port_sniffer_serves_http1_and_h2() {
    current_thread_rt().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let cfg = ServerConfig::default();
                    match wscope::h2::sniff(tcp).await.unwrap() {
                        (wscope::h2::HttpVersion::Http2, io) => {
                            let mut conn = Http2Server::handshake(io, &cfg).await.unwrap();
                            while let Some(Ok((ws, _))) = conn.accept().await {
                                tokio::spawn(echo(ws));
                            }
                        }
                        (_, io) => echo(wscope::tokio::accept_async(io).await.unwrap()).await,
                    }
                });
            }
        });
        let cfg = ClientConfig::new("127.0.0.1", addr.port());
        let (ws, _) = wscope::tokio::connect_with_response(&cfg).await.unwrap();
        exchange(ws, 1, 2, 1000).await;
        let client = Http2Client::connect(&cfg).await.unwrap();
        let (ws, _) = client.websocket(&cfg).await.unwrap();
        exchange(ws, 2, 2, 1000).await;
    });
}

#[test]
fn a_hundred_streams_on_one_connection() {
    current_thread_rt().block_on(async {
        let addr = echo_server(ServerConfig::default()).await;
        let cfg = ClientConfig::new("127.0.0.1", addr.port());
        let client = Arc::new(Http2Client::connect(&cfg).await.unwrap());
        let mut tasks = Vec::new();
        for tag in 0..100 {
            let (ws, _) = client.websocket(&cfg).await.unwrap();
            tasks.push(tokio::spawn(exchange(ws, tag, 2, 100)));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

/// Our client against a raw `h2` server: an answer with a subprotocol that was not offered
/// is refused by the client; a stream the server resets is an abnormal closure (1006).
#[test]
fn the_client_checks_the_answer_and_sees_a_reset_as_1006() {
    current_thread_rt().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut conn = h2::server::Builder::new()
                .enable_connect_protocol()
                .handshake::<_, Bytes>(tcp)
                .await
                .unwrap();
            // First stream: a subprotocol nobody offered.
            let (_, mut respond) = conn.accept().await.unwrap().unwrap();
            let resp = http::Response::builder()
                .header("sec-websocket-protocol", "other")
                .body(())
                .unwrap();
            let _keep = respond.send_response(resp, false).unwrap();
            // Second stream: accepted, one text frame "hi", then RST_STREAM(CANCEL) once the
            // client has read it (it sends a text frame back).
            let (req, mut respond) = conn.accept().await.unwrap().unwrap();
            let mut send = respond
                .send_response(http::Response::new(()), false)
                .unwrap();
            send.send_data(Bytes::from_static(&[0x81, 0x02, b'h', b'i']), false)
                .unwrap();
            let mut body = req.into_body();
            tokio::spawn(async move { while conn.accept().await.is_some() {} });
            let data = body.data().await.unwrap().unwrap();
            assert_eq!(data[0], 0x81);
            send.send_reset(h2::Reason::CANCEL);
            // Holds the stream until the test ends.
            let _ = body.data().await;
        });
        let cfg = ClientConfig::new("127.0.0.1", port);
        let client = Http2Client::connect(&cfg).await.unwrap();
        let err = client.websocket(&cfg).await.map(|_| ()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Handshake(HandshakeError::Connect(ConnectError::Upgrade(
                    wscope::proto::handshake::UpgradeError::SubprotocolNotOffered
                )))
            ),
            "{err}"
        );
        let (mut ws, _) = client.websocket(&cfg).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hi"));
        ws.send(Message::text("ack")).await.unwrap();
        match ws.next().await {
            Some(Err(Error::Io(e))) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(ws.close_status().unwrap().remote, CloseCode::ABNORMAL);
        assert!(ws.next().await.is_none());
    });
}

/// A client that opens the HTTP/2 connection but no WebSocket is sent GOAWAY after the
/// handshake timeout, as an HTTP/1.1 client that never upgrades is cut off; one with a
/// WebSocket open is not.
#[test]
fn a_connection_without_websockets_is_closed_after_the_handshake_timeout() {
    current_thread_rt().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cfg = ServerConfig::default().handshake_timeout(core::time::Duration::from_millis(200));
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            // First connection: a WebSocket is open for a while, then none.
            let (tcp, _) = listener.accept().await.unwrap();
            let mut conn = Http2Server::handshake(tcp, &cfg).await.unwrap();
            let (ws, _) = conn.accept().await.unwrap().unwrap();
            let echo_task = tokio::spawn(echo(ws));
            // The connection ends (None) only after the WebSocket has: its I/O goes on.
            let ended = conn.accept().await;
            assert!(ended.is_none());
            assert!(echo_task.is_finished());
            let _ = tx.send(());
        });
        let send = raw_client(addr).await;
        let (resp, mut stream) = raw_connect(
            &send,
            addr,
            Some("websocket"),
            &[("sec-websocket-version", "13")],
        )
        .await;
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        // Open for several handshake timeouts: echoes keep coming.
        for _ in 0..4 {
            tokio::time::sleep(core::time::Duration::from_millis(150)).await;
            stream
                .send_data(
                    Bytes::from_static(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i']),
                    false,
                )
                .unwrap();
            let data = body.data().await.unwrap().unwrap();
            body.flow_control().release_capacity(data.len()).unwrap();
            assert_eq!(&data[..], &[0x81, 0x02, b'h', b'i']);
        }
        // Close the WebSocket: then the idle connection is closed by the server.
        stream
            .send_data(
                Bytes::from_static(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]),
                true,
            )
            .unwrap();
        while let Some(d) = body.data().await {
            let _ = d;
        }
        tokio::time::timeout(core::time::Duration::from_secs(10), rx)
            .await
            .expect("the idle connection was not closed")
            .unwrap();
    });
}
