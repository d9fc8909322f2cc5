//! The hyper and axum adapters (features `hyper`, `axum`): upgrades checked by the core's
//! rules, subprotocols, extra headers, permessage-deflate, limits, refusals with their status.

use core::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wscope::config::{ClientConfig, DeflateConfig, ServerConfig};
use wscope::handshake::{Accept, Reject};
use wscope::{CloseCode, Message};

use crate::util::current_thread_rt;

/// A request head with the given extra lines (each ending in CRLF).
fn head(extra: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

/// Sends `request` on a new connection to `addr` and reads what comes back until the server
/// closes (or 2 s pass, for a `101` that keeps the connection).
async fn exchange(addr: SocketAddr, request: &[u8]) -> (TcpStream, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read =
            tokio::time::timeout(core::time::Duration::from_secs(2), tcp.read(&mut buf)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if complete(&got) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    (tcp, String::from_utf8_lossy(&got).into_owned())
}

/// Whether `got` holds a whole response: a `101` head, or a head and its `Content-Length`.
fn complete(got: &[u8]) -> bool {
    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    if got.starts_with(b"HTTP/1.1 101") {
        return true;
    }
    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    len.is_some_and(|len| got.len() >= end + 4 + len)
}

/// A masked client text frame.
fn client_text(payload: &[u8]) -> Vec<u8> {
    let key = [1, 2, 3, 4];
    let mut out = vec![0x81, 0x80 | payload.len() as u8];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

mod hyper_adapter {
    use super::*;
    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;

    /// The hyper service: upgrades WebSocket requests (subprotocol `chat` when offered, an
    /// extra header, deflate), refuses `/forbidden` with 403, answers plain requests 200.
    async fn service(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
        if !wscope::hyper::is_upgrade_request(&req) {
            return Ok(Response::new(Full::from("plain http")));
        }
        let cfg = ServerConfig::default().deflate(DeflateConfig::default());
        let decide = |r: &wscope::handshake::Request| {
            if r.target() == "/forbidden" {
                return Err(Reject::new(403).header("X-Why", "not here"));
            }
            let accept = Accept::new().header("X-Served-By", "hyper");
            Ok(if r.subprotocols().any(|p| p == "chat") {
                accept.subprotocol("chat")
            } else {
                accept
            })
        };
        match wscope::hyper::upgrade_with(&mut req, &cfg, decide) {
            Ok((response, ws)) => {
                tokio::spawn(async move {
                    let mut ws = ws.await.unwrap();
                    while let Some(msg) = ws.next().await {
                        let msg = msg.unwrap();
                        if msg.is_data() {
                            ws.send(msg).await.unwrap();
                        }
                    }
                });
                Ok(response.map(|_| Full::default()))
            }
            Err(e) => Ok(e.into_http_response()),
        }
    }

    async fn server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                tokio::spawn(
                    http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service_fn(service))
                        .with_upgrades(),
                );
            }
        });
        addr
    }

    /// The same service on hyper's HTTP/2 server with extended CONNECT (RFC 8441): our
    /// HTTP/2 client gets the same decisions, subprotocol, headers and deflate as HTTP/1.1
    /// clients, several WebSockets on one connection.
    #[cfg(feature = "http2")]
    #[test]
    fn upgrade_accepts_extended_connect_from_hyper_http2() {
        use wscope::h2::Http2Client;
        current_thread_rt().block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            tokio::spawn(async move {
                loop {
                    let (tcp, _) = listener.accept().await.unwrap();
                    let mut builder = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    );
                    builder.enable_connect_protocol();
                    tokio::spawn(builder.serve_connection(TokioIo::new(tcp), service_fn(service)));
                }
            });
            let cfg = ClientConfig::new("127.0.0.1", port)
                .path("/ws")
                .subprotocol("chat")
                .deflate(DeflateConfig::default());
            let client = Http2Client::connect(&cfg).await.unwrap();
            for i in 0..2 {
                let (mut ws, response) = client.websocket(&cfg).await.unwrap();
                assert_eq!(response.status(), 200);
                assert_eq!(response.subprotocol(), Some("chat"));
                assert_eq!(response.headers().get_str("x-served-by"), Some("hyper"));
                assert!(response
                    .extension_elements()
                    .any(|e| e.starts_with("permessage-deflate")));
                let text = format!("over hyper's HTTP/2 {i} ").repeat(1000);
                ws.send(Message::text(text.clone())).await.unwrap();
                assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(text));
                ws.close(CloseCode::NORMAL, "").await.unwrap();
                assert!(matches!(ws.next().await, Some(Ok(Message::Close(_)))));
                assert!(ws.next().await.is_none());
            }
            let err = client
                .websocket(&cfg.clone().path("/forbidden"))
                .await
                .map(|_| ())
                .unwrap_err();
            match err {
                wscope::Error::Handshake(h) => assert_eq!(h.http_status(), Some(403)),
                other => panic!("{other}"),
            }
        });
    }

    #[test]
    fn upgrade_negotiates_subprotocol_headers_and_deflate_then_echoes() {
        current_thread_rt().block_on(async {
            let addr = server().await;
            let cfg = ClientConfig::new("127.0.0.1", addr.port())
                .path("/ws")
                .subprotocol("chat")
                .deflate(DeflateConfig::default());
            let (mut ws, response) = wscope::tokio::connect_with_response(&cfg).await.unwrap();
            assert_eq!(response.subprotocol(), Some("chat"));
            assert_eq!(response.headers().get_str("X-Served-By"), Some("hyper"));
            let ext = response
                .headers()
                .get_str("Sec-WebSocket-Extensions")
                .unwrap();
            assert!(ext.starts_with("permessage-deflate"), "{ext}");
            let text = "compressible text, ".repeat(2000);
            ws.send(Message::text(text.clone())).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(text));
            ws.send(Message::binary(vec![7; 100_000])).await.unwrap();
            assert_eq!(
                ws.next().await.unwrap().unwrap(),
                Message::binary(vec![7; 100_000])
            );
            ws.close(CloseCode::NORMAL, "bye").await.unwrap();
            while let Some(m) = ws.next().await {
                m.unwrap();
            }
        });
    }

    #[test]
    fn bad_requests_get_the_cores_status_and_refusals_the_applications() {
        current_thread_rt().block_on(async {
            let addr = server().await;
            // No Sec-WebSocket-Version: 400, the reason in the body.
            let (_, got) = exchange(addr, head("").as_bytes()).await;
            assert!(got.starts_with("HTTP/1.1 400"), "{got}");
            assert!(got.contains("missing Sec-WebSocket-Version"), "{got}");
            // A version we do not speak: 426 with the one we do.
            let (_, got) = exchange(addr, head("Sec-WebSocket-Version: 8\r\n").as_bytes()).await;
            assert!(got.starts_with("HTTP/1.1 426"), "{got}");
            assert!(
                got.to_ascii_lowercase()
                    .contains("sec-websocket-version: 13"),
                "{got}"
            );
            // A bad key: 400, the reason in the body.
            let bad_key =
                head("Sec-WebSocket-Version: 13\r\n").replace("dGhlIHNhbXBsZSBub25jZQ==", "short");
            let (_, got) = exchange(addr, bad_key.as_bytes()).await;
            assert!(got.starts_with("HTTP/1.1 400"), "{got}");
            assert!(got.contains("Sec-WebSocket-Key"), "{got}");
            // The application's refusal, its header included.
            let forbidden = head("Sec-WebSocket-Version: 13\r\n").replace("/ws", "/forbidden");
            let (_, got) = exchange(addr, forbidden.as_bytes()).await;
            assert!(got.starts_with("HTTP/1.1 403"), "{got}");
            assert!(
                got.to_ascii_lowercase().contains("x-why: not here"),
                "{got}"
            );
            // Plain HTTP on the same service.
            let (_, got) = exchange(
                addr,
                b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            )
            .await;
            assert!(
                got.starts_with("HTTP/1.1 200") && got.ends_with("plain http"),
                "{got}"
            );
        });
    }

    #[test]
    fn a_request_not_served_by_hyper_cannot_be_upgraded() {
        let mut req = Request::builder()
            .uri("/ws")
            .header("Host", "h")
            .header("Upgrade", "websocket")
            .header("Connection", "Upgrade")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("Sec-WebSocket-Version", "13")
            .body(())
            .unwrap();
        let err = wscope::hyper::upgrade(&mut req).unwrap_err();
        assert!(
            matches!(err, wscope::hyper::UpgradeRejection::NotUpgradable),
            "{err:?}"
        );
        let response: Response<String> = err.into_http_response();
        assert_eq!(response.status(), 426);
        // The same request as HTTP/2 (extended CONNECT is another issue).
        *req.version_mut() = http::Version::HTTP_2;
        assert!(matches!(
            wscope::hyper::upgrade(&mut req),
            Err(wscope::hyper::UpgradeRejection::NotUpgradable)
        ));
    }
}

#[cfg(feature = "axum")]
mod axum_extractor {
    use super::*;
    use axum::routing::get;
    use axum::Router;
    use wscope::axum::{WebSocket, WebSocketUpgrade};

    async fn echo(mut ws: WebSocket) {
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_data() && ws.send(msg).await.is_err() {
                break;
            }
        }
    }

    async fn server() -> SocketAddr {
        let app = Router::new().route(
            "/ws",
            get(|upgrade: WebSocketUpgrade| async move {
                upgrade
                    .protocols(["graphql-ws", "chat"])
                    .max_message_size(64 * 1024)
                    .compression(DeflateConfig::default())
                    .on_upgrade(echo)
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    #[test]
    fn extractor_chooses_the_protocol_compresses_and_enforces_the_limit() {
        current_thread_rt().block_on(async {
            let addr = server().await;
            let cfg = ClientConfig::new("127.0.0.1", addr.port())
                .path("/ws")
                .subprotocol("superchat")
                .subprotocol("chat")
                .deflate(DeflateConfig::default());
            let (mut ws, response) = wscope::tokio::connect_with_response(&cfg).await.unwrap();
            assert_eq!(response.subprotocol(), Some("chat"));
            let text = "axum with compression, ".repeat(1000);
            ws.send(Message::text(text.clone())).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(text));
            // Over max_message_size: the server closes with 1009.
            ws.send(Message::binary(vec![0; 65 * 1024])).await.unwrap();
            match ws.next().await.unwrap().unwrap() {
                Message::Close(Some(c)) => assert_eq!(c.code, CloseCode::MESSAGE_TOO_BIG),
                other => panic!("{other:?}"),
            }
        });
    }

    #[test]
    fn extractor_compresses_on_the_wire_when_deflate_is_agreed() {
        current_thread_rt().block_on(async {
            let addr = server().await;
            let request = head(
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n",
            );
            let (mut tcp, got) = exchange(addr, request.as_bytes()).await;
            assert!(got.starts_with("HTTP/1.1 101"), "{got}");
            assert!(
                got.to_ascii_lowercase()
                    .contains("sec-websocket-extensions: permessage-deflate"),
                "{got}"
            );
            // An uncompressed text frame in; the echo comes back compressed (RSV1 set).
            tcp.write_all(&client_text(b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
                .await
                .unwrap();
            let mut first = [0u8; 2];
            tcp.read_exact(&mut first).await.unwrap();
            assert_eq!(first[0], 0xC1, "FIN + RSV1 + text: {first:02x?}");
            assert!(usize::from(first[1]) < 32, "compressed: {first:02x?}");
        });
    }

    #[test]
    fn extractor_rejects_bad_requests_with_the_cores_status() {
        current_thread_rt().block_on(async {
            let addr = server().await;
            let (_, got) = exchange(addr, head("Sec-WebSocket-Version: 8\r\n").as_bytes()).await;
            assert!(got.starts_with("HTTP/1.1 426"), "{got}");
            assert!(
                got.to_ascii_lowercase()
                    .contains("sec-websocket-version: 13"),
                "{got}"
            );
            let no_key = head("Sec-WebSocket-Version: 13\r\n")
                .replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
            let (_, got) = exchange(addr, no_key.as_bytes()).await;
            assert!(got.starts_with("HTTP/1.1 400"), "{got}");
            assert!(got.contains("Sec-WebSocket-Key"), "{got}");
        });
    }
}
