//! tokio client ↔ tokio server over loopback: Stream/Sink, split halves, big messages.

use futures_util::{SinkExt, StreamExt};
use wscope::config::{ClientConfig, ServerConfig};
use wscope::tokio::{accept_async, connect_async, DataKind};
use wscope::{CloseCode, CloseFrame, Message};

use crate::util::payload;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// An echo server for one connection using the allocation-free API.
async fn echo_once() -> (
    u16,
    tokio::task::JoinHandle<Option<wscope_proto::connection::CloseStatus>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = accept_async(wscope::stream::Tcp::new(tcp)).await.unwrap();
        let mut buf = Vec::new();
        while let Some(kind) = ws.recv_into(&mut buf).await {
            let kind: DataKind = kind.unwrap();
            if ws.is_write_full() {
                ws.flush_writes().await.unwrap();
            }
            ws.feed_data(kind, &mut buf).unwrap();
        }
        ws.close_status().copied()
    });
    (port, h)
}

#[test]
fn stream_and_sink_echo() {
    rt().block_on(async {
        let (port, server) = echo_once().await;
        let (mut ws, resp) = connect_async(&format!("ws://127.0.0.1:{port}/"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 101);
        ws.send(Message::text("one")).await.unwrap();
        ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("one"));
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::binary(vec![1, 2, 3])
        );
        // Pipelined: many fed, one flush.
        for i in 0..1000 {
            ws.feed(Message::text(format!("m{i}"))).await.unwrap();
        }
        ws.flush().await.unwrap();
        for i in 0..1000 {
            assert_eq!(
                ws.next().await.unwrap().unwrap(),
                Message::text(format!("m{i}"))
            );
        }
        ws.send(Message::ping(b"x".to_vec())).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::pong(b"x".to_vec())
        );
        ws.send(Message::Close(Some(CloseFrame::new(4010u16, "tokio bye"))))
            .await
            .unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::Close(Some(CloseFrame::new(4010u16, "")))
        );
        assert!(ws.next().await.is_none());
        let status = server.await.unwrap().unwrap();
        assert_eq!(status.remote, CloseCode(4010));
        assert_eq!(status.remote_reason(), "tokio bye");
    });
}

#[test]
fn split_halves_and_sixteen_mib() {
    rt().block_on(async {
        let (port, server) = echo_once().await;
        let (ws, _) = connect_async(&format!("ws://127.0.0.1:{port}/")).await.unwrap();
        let (mut tx, mut rx) = ws.split();
        let data = payload(16 << 20);
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            tx.send(Message::binary(sent)).await.unwrap();
            for i in 0..100 {
                tx.send(Message::text(format!("after {i}"))).await.unwrap();
            }
            tx
        });
        match rx.next().await.unwrap().unwrap() {
            Message::Binary(b) => assert!(b == data, "16 MiB echo differs"),
            other => panic!("{:?}", other.as_bytes().len()),
        }
        for i in 0..100 {
            assert_eq!(rx.next().await.unwrap().unwrap(), Message::text(format!("after {i}")));
        }
        let mut tx = writer.await.unwrap();
        tx.close().await.unwrap();
        assert!(matches!(rx.next().await, Some(Ok(Message::Close(Some(c)))) if c.code == CloseCode::NORMAL));
        assert!(rx.next().await.is_none());
        server.await.unwrap();
    });
}

#[test]
fn server_close_and_callback() {
    rt().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (mut ws, req) = wscope::tokio::accept_with(tcp, &ServerConfig::default(), |req| {
                if req.subprotocols().any(|p| p == "chat") {
                    Ok(wscope::handshake::Accept::new().subprotocol("chat"))
                } else {
                    Err(wscope::handshake::Reject::new(400))
                }
            })
            .await
            .unwrap();
            assert_eq!(req.target(), "/room");
            assert_eq!(ws.subprotocol(), Some("chat"));
            ws.close(CloseCode::GOING_AWAY, "shutting down")
                .await
                .unwrap();
            while let Some(m) = ws.next().await {
                m.unwrap();
            }
            ws.close_status().copied()
        });
        let cfg = ClientConfig::new("127.0.0.1", port)
            .path("/room")
            .subprotocol("chat");
        let mut ws = wscope::tokio::connect_with(&cfg).await.unwrap();
        assert_eq!(ws.subprotocol(), Some("chat"));
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::Close(Some(CloseFrame::new(
                CloseCode::GOING_AWAY,
                "shutting down"
            )))
        );
        assert!(ws.next().await.is_none());
        let status = server.await.unwrap().unwrap();
        assert_eq!(status.remote, CloseCode::GOING_AWAY);
    });
}

#[test]
fn tokio_handshake_timeout_cuts_off_slowloris() {
    rt().block_on(async {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let cfg =
                ServerConfig::default().handshake_timeout(core::time::Duration::from_millis(200));
            wscope::tokio::accept_with_config(tcp, &cfg)
                .await
                .map(|_| ())
        });
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        for _ in 0..2000 {
            if s.write_all(b"X").await.is_err() || server.is_finished() {
                break;
            }
            tokio::time::sleep(core::time::Duration::from_millis(5)).await;
        }
        assert!(matches!(server.await.unwrap(), Err(wscope::Error::Timeout)));
    });
}

#[test]
fn tokio_server_fails_huge_frame_with_1009_sent_first() {
    rt().block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = accept_async(wscope::stream::Tcp::new(tcp)).await.unwrap();
            let r = ws.next().await;
            (r, ws.next().await.is_none())
        });
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(&wscope_test_support::wire::upgrade_request("/", "x", None))
            .await
            .unwrap();
        let mut frame = vec![0x82u8, 0xff];
        frame.extend_from_slice(&(i64::MAX as u64).to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4]);
        s.write_all(&frame).await.unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.unwrap();
        let head_end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(all.starts_with(b"HTTP/1.1 101"));
        assert_eq!(&all[head_end..], [0x88, 0x02, 0x03, 0xf1]);
        let (r, ended) = server.await.unwrap();
        match r {
            Some(Err(wscope::Error::Proto(e))) => {
                assert_eq!(e.close_code(), CloseCode::MESSAGE_TOO_BIG)
            }
            other => panic!("{other:?}"),
        }
        assert!(ended);
    });
}

#[test]
fn tokio_client_through_proxy_url() {
    // The blocking proxy test covers the tunnel; here the async CONNECT path, refused.
    rt().block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let cfg = ClientConfig::new("example.invalid", 443)
            .proxy(wscope::proxy::Proxy::parse(&format!("http://u:p@127.0.0.1:{port}")).unwrap());
        let err = wscope::tokio::connect_with(&cfg).await.unwrap_err();
        assert!(
            matches!(
                err,
                wscope::Error::Handshake(wscope::HandshakeError::Proxy { status: 403 })
            ),
            "{err:?}"
        );
        let req = proxy.await.unwrap();
        assert!(
            req.starts_with("CONNECT example.invalid:443 HTTP/1.1\r\n"),
            "{req}"
        );
        assert!(req.contains("Proxy-Authorization: Basic dTpw\r\n"));
    });
}

/// Run in a child process by [`tokio_send_to_a_vanished_peer_is_an_error_not_sigpipe`]:
/// with `SIGPIPE` at its default action, a tokio server on a [`wscope::stream::Tcp`] stream
/// (as `accept_async`'s docs say) keeps sending 20 KiB messages (one vectored write each) to
/// a client that has gone away. Prints the error the send returned. (On a bare `TcpStream`
/// the vectored write is tokio's `writev`: the first failing write usually gets
/// `ECONNRESET`, but on a loaded machine it can be `EPIPE`, and `SIGPIPE` with it.)
#[cfg(unix)]
#[test]
#[ignore = "run in a child process by tokio_send_to_a_vanished_peer_is_an_error_not_sigpipe"]
fn tokio_sigpipe_child() {
    crate::util::default_sigpipe();
    let outcome = rt().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = accept_async(wscope::stream::Tcp::new(tcp)).await.unwrap();
            let data = payload(20 << 10);
            for _ in 0..200 {
                if let Err(e) = ws.send(Message::binary(data.clone())).await {
                    return format!("{e}");
                }
                tokio::time::sleep(core::time::Duration::from_millis(5)).await;
            }
            "every send succeeded".to_owned()
        });
        let (ws, _) = connect_async(&format!("ws://{addr}/")).await.unwrap();
        // Gone without a closing handshake: the server's next writes meet a reset connection.
        drop(ws);
        server.await.unwrap()
    });
    println!("send error: {outcome}");
}

#[cfg(unix)]
#[test]
fn tokio_send_to_a_vanished_peer_is_an_error_not_sigpipe() {
    crate::util::run_with_default_sigpipe("tokio_driver::tokio_sigpipe_child");
}

/// An unmasked binary frame of `len` bytes, as a server sends it.
fn server_frame(len: usize) -> Vec<u8> {
    let mut head = [0u8; wscope_proto::frame::MAX_HEADER_LEN];
    let n = wscope_proto::FrameHeader::new(true, wscope_proto::OpCode::BINARY, None, len as u64)
        .emit(&mut head);
    let mut frame = head[..n].to_vec();
    frame.extend_from_slice(&payload(len));
    frame
}

/// Two connections on one thread: one whose peer has eight 1.5 MiB messages waiting, one with
/// a single small message. The small one is served after the first large message, not after
/// all eight: a stream yields to the runtime once it has read its fair share (1 MiB) in one
/// poll (tokio's own budget counts reads, and these are up to a megabyte and more each).
#[test]
fn large_messages_back_to_back_do_not_starve_other_connections() {
    use std::sync::{Arc, Mutex};
    use tokio::io::AsyncWriteExt;
    use wscope::tokio::WebSocketStream;

    crate::util::current_thread_rt().block_on(async {
        let order = Arc::new(Mutex::new(Vec::new()));
        let open = |io| {
            let cfg = wscope_proto::connection::Config::default();
            WebSocketStream::from_raw_socket(io, wscope::Role::Client, cfg)
        };
        let big = 3 << 19;
        let (busy_io, mut busy_peer) = tokio::io::duplex(13 << 20);
        let (quiet_io, mut quiet_peer) = tokio::io::duplex(1 << 10);
        for _ in 0..8 {
            busy_peer.write_all(&server_frame(big)).await.unwrap();
        }
        quiet_peer.write_all(&server_frame(10)).await.unwrap();
        let (mut busy, mut quiet) = (open(busy_io), open(quiet_io));

        let log = order.clone();
        let busy = tokio::spawn(async move {
            let mut buf = Vec::new();
            for _ in 0..8 {
                busy.recv_into(&mut buf).await.unwrap().unwrap();
                assert_eq!(buf.len(), big);
                log.lock().unwrap().push('L');
            }
        });
        let log = order.clone();
        let quiet = tokio::spawn(async move {
            let mut buf = Vec::new();
            quiet.recv_into(&mut buf).await.unwrap().unwrap();
            assert_eq!(buf, payload(10));
            log.lock().unwrap().push('s');
        });
        busy.await.unwrap();
        quiet.await.unwrap();
        drop((busy_peer, quiet_peer));
        let order: String = order.lock().unwrap().iter().collect();
        assert_eq!(order, "LsLLLLLLL");
    });
}

/// Streaming receive on tokio: a large message comes out in pieces of the caller's buffer as
/// it arrives (plain and inflated), a ping between messages whole (and answered), then the
/// end of the connection.
#[test]
fn partial_receive_hands_out_pieces_as_they_arrive() {
    use wscope::config::DeflateConfig;
    use wscope::{OpCode, Partial};
    for deflate in [false, true] {
        let mut cfg = ServerConfig::default();
        if deflate {
            cfg = cfg.deflate(DeflateConfig::default());
        }
        let big = payload(300_000);
        let text = "compressible words, again and again. ".repeat(2000);
        let (addr, server) = crate::util::one_shot_server(cfg, {
            let (big, text) = (big.clone(), text.clone());
            move |server| {
                let mut ws = server.accept().unwrap();
                ws.send(Message::binary(big)).unwrap();
                ws.send_ping(b"are you there").unwrap();
                ws.send(Message::text(text)).unwrap();
                // The pong to the ping, then the client's close.
                let pong = ws.read().unwrap();
                ws.close(CloseCode::NORMAL, "").unwrap();
                pong
            }
        });
        rt().block_on(async {
            let mut ccfg = ClientConfig::from_url(&format!("ws://{addr}/")).unwrap();
            if deflate {
                ccfg = ccfg.deflate(DeflateConfig::default());
            }
            let mut ws = wscope::tokio::connect_with(&ccfg).await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got: Vec<(OpCode, Vec<u8>)> = Vec::new();
            let mut pieces = 0;
            let mut current = Vec::new();
            while let Some(p) = ws.recv_partial(&mut buf).await {
                match p.unwrap() {
                    Partial::Data {
                        info,
                        len,
                        frame_end,
                    } => {
                        assert!(len <= buf.len());
                        pieces += 1;
                        current.extend_from_slice(&buf[..len]);
                        if frame_end && info.fin {
                            got.push((info.opcode, core::mem::take(&mut current)));
                        }
                    }
                    Partial::Control { info, len } => {
                        got.push((info.opcode, buf[..len].to_vec()));
                    }
                    Partial::Timeout => panic!("no timeouts on tokio"),
                }
            }
            assert_eq!(
                got.len(),
                4,
                "deflate {deflate}: {:?}",
                got.iter().map(|g| g.0).collect::<Vec<_>>()
            );
            assert_eq!(got[0].0, OpCode::BINARY);
            assert!(got[0].1 == big, "deflate {deflate}: binary differs");
            assert_eq!(got[1], (OpCode::PING, b"are you there".to_vec()));
            assert_eq!(got[2].0, OpCode::TEXT);
            assert!(
                got[2].1 == text.as_bytes(),
                "deflate {deflate}: text differs"
            );
            assert_eq!(got[3].0, OpCode::CLOSE);
            assert!(pieces >= (big.len() + text.len()) / 4096, "{pieces} pieces");
        });
        assert_eq!(
            server.join().unwrap(),
            Message::pong(b"are you there".to_vec())
        );
    }
}

/// A server's connection task awaits the handshake first and keeps that future's size for
/// the connection's life: the handshake's state is boxed, so idle connections do not each
/// carry ~10 KB of finished handshake (it was inline before).
#[test]
fn the_accept_future_is_small() {
    let (a, _b) = tokio::io::duplex(64);
    let cfg = ServerConfig::default();
    let fut = wscope::tokio::accept_with_config(a, &cfg);
    let size = size_of_val(&fut);
    assert!(size < 1024, "{size} bytes");
    let (a, _b) = tokio::io::duplex(64);
    let fut = wscope::tokio::accept_tls(a, &cfg);
    let size = size_of_val(&fut);
    assert!(size < 1024, "{size} bytes");
}
