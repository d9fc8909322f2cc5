//! The handshakes and constructors over any byte stream: a `tokio::io::duplex` pair, Unix
//! sockets (tokio and std), a stream the application wrapped in TLS itself (tokio-rustls,
//! rustls), and bytes read before the connection was handed over.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use wscope::config::{ClientConfig, ServerConfig};
use wscope::handshake::{Accept, Reject};
use wscope::tokio::WebSocketStream;
use wscope::{CloseCode, Error, HandshakeError, Message, Role, WsConfig};

use crate::util::{certificates, current_thread_rt};

/// A masked client frame (`opcode`, FIN) carrying `payload`.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let key = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Echoes data messages until the stream ends.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocketStream<S>) {
    while let Some(msg) = ws.next().await {
        let msg = msg.unwrap();
        if msg.is_data() {
            ws.send(msg).await.unwrap();
        }
    }
}

/// A text round trip and a close from the client, over any stream.
async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(text));
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    while let Some(m) = ws.next().await {
        m.unwrap();
    }
}

#[test]
fn tokio_handshakes_run_over_a_duplex_pair() {
    current_thread_rt().block_on(async {
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let ws = wscope::tokio::accept_async(server_io).await.unwrap();
            echo(ws).await;
        });
        let cfg = ClientConfig::new("in-memory", 80).path("/duplex");
        let (mut ws, response) = wscope::tokio::client_handshake(client_io, &cfg)
            .await
            .unwrap();
        assert_eq!(response.status(), 101);
        round_trip(&mut ws, "over a duplex pair").await;
        server.await.unwrap();
    });
}

#[test]
fn tokio_accept_with_decides_over_any_stream_and_refuses_with_the_status() {
    current_thread_rt().block_on(async {
        let decide = |req: &wscope::handshake::Request| match req.target() {
            "/chat" => Ok(Accept::new().subprotocol("chat")),
            _ => Err(Reject::new(404)),
        };
        // Accepted, with the subprotocol.
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let (ws, req) = wscope::tokio::accept_with(server_io, &ServerConfig::default(), decide)
                .await
                .unwrap();
            assert_eq!(req.target(), "/chat");
            echo(ws).await;
        });
        let cfg = ClientConfig::new("h", 80).path("/chat").subprotocol("chat");
        let (mut ws, _) = wscope::tokio::client_handshake(client_io, &cfg)
            .await
            .unwrap();
        assert_eq!(ws.subprotocol(), Some("chat"));
        round_trip(&mut ws, "chat").await;
        server.await.unwrap();
        // Refused: the client sees the application's status.
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            wscope::tokio::accept_with(server_io, &ServerConfig::default(), decide).await
        });
        let cfg = ClientConfig::new("h", 80).path("/elsewhere");
        let err = wscope::tokio::client_handshake(client_io, &cfg)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Handshake(HandshakeError::Status { status: 404 })
            ),
            "{err:?}"
        );
        let err = server.await.unwrap().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Handshake(HandshakeError::Rejected { status: 404 })
            ),
            "{err:?}"
        );
    });
}

#[test]
fn tokio_accept_without_tls_refuses_a_configuration_with_tls() {
    current_thread_rt().block_on(async {
        let (_, cert, key) = certificates();
        let cfg = ServerConfig::default()
            .tls(wscope::tls::server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap());
        let (server_io, _client_io) = tokio::io::duplex(1024);
        let err = wscope::tokio::accept_with_config(server_io, &cfg)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Handshake(HandshakeError::Config(_))),
            "{err:?}"
        );
    });
}

#[cfg(unix)]
#[test]
fn tokio_handshakes_run_over_a_unix_socket() {
    current_thread_rt().block_on(async {
        let dir = std::env::temp_dir().join(format!("wscope-unix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ws.sock");
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (unix, _) = listener.accept().await.unwrap();
            let ws = wscope::tokio::accept_async(unix).await.unwrap();
            echo(ws).await;
        });
        let unix = tokio::net::UnixStream::connect(&path).await.unwrap();
        let cfg = ClientConfig::new("localhost", 80);
        let (mut ws, _) = wscope::tokio::client_handshake(unix, &cfg).await.unwrap();
        round_trip(&mut ws, "over a unix socket").await;
        server.await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn tokio_accept_async_takes_a_stream_the_application_wrapped_in_tls() {
    current_thread_rt().block_on(async {
        let (ca, cert, key) = certificates();
        let tls = wscope::tls::server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            // TLS first, the application's own, then the upgrade over the TLS stream.
            let tls_stream = tokio_rustls::TlsAcceptor::from(tls)
                .accept(tcp)
                .await
                .unwrap();
            let ws = wscope::tokio::accept_async(tls_stream).await.unwrap();
            echo(ws).await;
        });
        let cfg =
            ClientConfig::new("localhost", port).tls(wscope::tls::TlsConfig::new().with_ca_pem(ca));
        let (mut ws, _) = wscope::tokio::connect_with_response(&cfg).await.unwrap();
        round_trip(&mut ws, "over tls the application set up").await;
        server.await.unwrap();
    });
}

#[test]
fn tokio_from_partially_read_reads_the_bytes_given_before_the_stream() {
    current_thread_rt().block_on(async {
        let (server_io, mut peer) = tokio::io::duplex(1024);
        let hello = client_frame(0x1, b"hello");
        let world = client_frame(0x2, b"world");
        // A handshake done elsewhere read "hello" and the first 3 bytes of "world".
        let mut part = hello.clone();
        part.extend_from_slice(&world[..3]);
        let mut ws = WebSocketStream::from_partially_read(
            server_io,
            &part,
            Role::Server,
            WsConfig::default(),
        );
        peer.write_all(&world[3..]).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::binary(b"world".to_vec())
        );
        // from_raw_socket: nothing read before, the same connection otherwise.
        let (server_io, mut peer) = tokio::io::duplex(1024);
        let mut ws = WebSocketStream::from_raw_socket(server_io, Role::Server, WsConfig::default());
        peer.write_all(&hello).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    });
}

#[cfg(unix)]
#[test]
fn blocking_handshakes_and_from_partially_read_run_over_a_unix_socket() {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use wscope::blocking::WebSocket;

    // Handshakes: server_handshake and client_handshake over a socket pair.
    let (a, b) = UnixStream::pair().unwrap();
    let server = std::thread::spawn(move || {
        let (mut ws, req) =
            wscope::blocking::server_handshake(a, &ServerConfig::default(), |_req| {
                Ok(Accept::new())
            })
            .unwrap();
        assert_eq!(req.target(), "/unix");
        loop {
            match ws.read() {
                Ok(m) if m.is_data() => ws.send(m).unwrap(),
                Ok(_) => {}
                Err(Error::ConnectionClosed) => return,
                Err(e) => panic!("{e}"),
            }
        }
    });
    let cfg = ClientConfig::new("localhost", 80).path("/unix");
    let (mut ws, _) = wscope::blocking::client_handshake(b, &cfg).unwrap();
    ws.send(Message::text("blocking over unix")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("blocking over unix"));
    ws.close(CloseCode::NORMAL, "bye").unwrap();
    server.join().unwrap();

    // Bytes already read.
    let (a, mut peer) = UnixStream::pair().unwrap();
    let world = client_frame(0x1, b"world");
    let mut part = client_frame(0x1, b"hello");
    part.extend_from_slice(&world[..4]);
    let mut ws = WebSocket::from_partially_read(a, &part, Role::Server, WsConfig::default());
    peer.write_all(&world[4..]).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hello"));
    assert_eq!(ws.read().unwrap(), Message::text("world"));
}

#[test]
fn blocking_handshakes_run_over_a_stream_the_application_wrapped_in_tls() {
    let (ca, cert, key) = certificates();
    let tls = wscope::tls::server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let conn = rustls::ServerConnection::new(Arc::clone(&tls)).unwrap();
        let stream = rustls::StreamOwned::new(conn, tcp);
        let (mut ws, _) =
            wscope::blocking::server_handshake(stream, &ServerConfig::default(), |_| {
                Ok(Accept::new())
            })
            .unwrap();
        loop {
            match ws.read() {
                Ok(m) if m.is_data() => ws.send(m).unwrap(),
                Ok(_) => {}
                Err(Error::ConnectionClosed) => return,
                Err(e) => panic!("{e}"),
            }
        }
    });
    let cfg =
        ClientConfig::new("localhost", port).tls(wscope::tls::TlsConfig::new().with_ca_pem(ca));
    let (mut ws, _) = wscope::blocking::connect_with(&cfg).unwrap();
    ws.send(Message::text("tls by hand")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("tls by hand"));
    ws.close(CloseCode::NORMAL, "bye").unwrap();
    server.join().unwrap();
}
