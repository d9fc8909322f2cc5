//! Blocking client ↔ blocking server over loopback.

use core::time::Duration;

use wscope::blocking::{self, Server};
use wscope::config::ServerConfig;
use wscope::{CloseCode, CloseFrame, Error, Message, OpCode, Partial};

use crate::util::{echo_server, frame_pieces, one_shot_server, payload};

fn url(addr: core::net::SocketAddr) -> String {
    format!("ws://{addr}/echo")
}

#[test]
fn text_binary_ping_and_close() {
    let (addr, server) = echo_server(ServerConfig::default());
    let (mut ws, resp) = blocking::connect(&url(addr)).unwrap();
    assert_eq!(resp.status(), 101);
    crate::util::basic_echo_exchange(&mut ws, "bye");
    server.join().unwrap().unwrap();
    assert!(matches!(ws.send_text("late"), Err(Error::AlreadyClosed)));
}

#[test]
fn fragmented_message_is_reassembled() {
    let (addr, server) = echo_server(ServerConfig::default());
    let (mut ws, _) = blocking::connect(&url(addr)).unwrap();
    crate::util::fragmented_echo_exchange(&mut ws);
    server.join().unwrap().unwrap();
}

#[test]
fn sixteen_mib_round_trip() {
    let (addr, server) = echo_server(ServerConfig::default());
    let (mut ws, _) = blocking::connect(&url(addr)).unwrap();
    let data = payload(16 << 20);
    ws.send(Message::binary(data.clone())).unwrap();
    match ws.read().unwrap() {
        Message::Binary(b) => assert!(b == data, "16 MiB echo differs"),
        other => panic!("unexpected {:?}", other.as_bytes().len()),
    }
    ws.close(CloseCode::NORMAL, "done").unwrap();
    server.join().unwrap().unwrap();
}

#[test]
fn server_initiated_close_reaches_client() {
    let (addr, server) = one_shot_server(ServerConfig::default(), |server| {
        let mut ws = server.accept().unwrap();
        ws.close(CloseCode::GOING_AWAY, "maintenance").unwrap();
        *ws.close_status().unwrap()
    });
    let (mut ws, _) = blocking::connect(&url(addr)).unwrap();
    assert_eq!(
        ws.read().unwrap(),
        Message::Close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "maintenance")))
    );
    // The normal end, once; then using the connection is a misuse.
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    assert!(matches!(ws.read(), Err(Error::AlreadyClosed)));
    assert!(matches!(ws.send_text("late"), Err(Error::AlreadyClosed)));
    let status = server.join().unwrap();
    assert_eq!(status.remote, CloseCode::GOING_AWAY);
    assert!(status.initiated_locally);
}

#[test]
fn close_reason_is_truncated_to_123_bytes() {
    let (addr, server) = one_shot_server(ServerConfig::default(), |server| {
        let mut ws = server.accept().unwrap();
        ws.read().unwrap()
    });
    let (mut ws, _) = blocking::connect(&url(addr)).unwrap();
    let long = "é".repeat(100); // 200 bytes
    ws.close(CloseCode(4001), &long).unwrap();
    match server.join().unwrap() {
        Message::Close(Some(c)) => {
            assert_eq!(c.code, CloseCode(4001));
            assert_eq!(c.reason, "é".repeat(61)); // 122 bytes: never half a character
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn partial_receive_hands_out_a_big_frame_piece_by_piece() {
    let data = payload(1 << 20);
    let sent = data.clone();
    let (addr, server) = one_shot_server(ServerConfig::default(), move |server| {
        let mut ws = server.accept().unwrap();
        ws.send(Message::binary(sent)).unwrap();
        ws.send_text("next").unwrap();
        // Wait for the client's close.
        while ws.read().is_ok() {}
    });
    let (mut ws, _) = blocking::connect(&url(addr)).unwrap();
    let pieces = frame_pieces(&mut ws, 1000);
    let mut got = Vec::new();
    for (info, bytes) in &pieces {
        assert!(info.fin);
        assert_eq!(info.opcode, OpCode::BINARY);
        assert_eq!(info.payload_len, 1 << 20);
        assert!(bytes.len() <= 1000);
        got.extend_from_slice(bytes);
    }
    assert!(got == data);
    assert!(pieces.len() >= (1 << 20) / 1000);
    let mut buf = vec![0u8; 1000];
    match ws.recv_partial(&mut buf, Duration::from_secs(10)).unwrap() {
        Partial::Data {
            info,
            len,
            frame_end,
        } => {
            assert_eq!(
                (info.opcode, info.payload_len, len, frame_end),
                (OpCode::TEXT, 4, 4, true)
            );
            assert_eq!(&buf[..4], b"next");
        }
        other => panic!("{other:?}"),
    }
    ws.close(CloseCode::NORMAL, "").unwrap();
    server.join().unwrap();
}

#[test]
fn receive_timeout_is_not_an_error() {
    let (addr, server) = echo_server(ServerConfig::default());
    let (mut ws, _) = blocking::connect(&url(addr)).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(
        ws.recv_partial(&mut buf, Duration::from_millis(50))
            .unwrap(),
        Partial::Timeout
    );
    assert_eq!(ws.read_timeout(Duration::from_millis(50)).unwrap(), None);
    // The connection still works afterwards.
    ws.send_text("still here").unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("still here"));
    ws.close(CloseCode::NORMAL, "").unwrap();
    server.join().unwrap().unwrap();
}

#[test]
fn partial_receive_reports_ping_and_close() {
    let (addr, server) = one_shot_server(ServerConfig::default(), |server| {
        let mut ws = server.accept().unwrap();
        ws.send_ping(b"p").unwrap();
        let pong = ws.read().unwrap();
        ws.close(CloseCode(4002), "end").unwrap();
        pong
    });
    let (mut ws, _) = blocking::connect(&url(addr)).unwrap();
    let mut buf = [0u8; 64];
    let p = ws.recv_partial(&mut buf, Duration::from_secs(10)).unwrap();
    match p {
        Partial::Control { info, len } => {
            assert_eq!((info.opcode, len), (OpCode::PING, 1));
        }
        other => panic!("{other:?}"),
    }
    match ws.recv_partial(&mut buf, Duration::from_secs(10)).unwrap() {
        Partial::Control { info, len } => {
            assert_eq!(info.opcode, OpCode::CLOSE);
            assert_eq!(&buf[..len], b"\x0f\xa2end");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.join().unwrap(), Message::pong(b"p".to_vec()));
}

#[test]
fn server_callback_chooses_subprotocol_and_headers() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).unwrap();
    let addr = server.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut ws, req) = server
            .accept_with(|req| {
                assert_eq!(req.target(), "/chat?room=1");
                assert_eq!(req.headers().get_str("X-Token"), Some("abc"));
                let offered: Vec<&str> = req.subprotocols().collect();
                assert_eq!(offered, ["v1", "v2"]);
                Ok(wscope::handshake::Accept::new()
                    .subprotocol("v2")
                    .header("X-Server", "wscope"))
            })
            .unwrap();
        assert_eq!(ws.subprotocol(), Some("v2"));
        assert_eq!(req.origin(), Some("http://example.com"));
        while ws.read().is_ok() {}
    });
    let cfg = wscope::config::ClientConfig::new("127.0.0.1", addr.port())
        .path("/chat?room=1")
        .header("X-Token", "abc")
        .subprotocol("v1")
        .subprotocol("v2")
        .origin("http://example.com");
    let (mut ws, resp) = blocking::connect_with(&cfg).unwrap();
    assert_eq!(ws.subprotocol(), Some("v2"));
    assert_eq!(resp.headers().get_str("X-Server"), Some("wscope"));
    ws.close(CloseCode::NORMAL, "").unwrap();
    t.join().unwrap();
}

#[test]
fn server_callback_rejects_with_status() {
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).unwrap();
    let addr = server.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        server
            .accept_with(|_| Err(wscope::handshake::Reject::new(403)))
            .map(|_| ())
    });
    let err = blocking::connect(&url(addr)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Handshake(wscope::HandshakeError::Status { status: 403 })
        ),
        "{err:?}"
    );
    assert!(matches!(
        t.join().unwrap(),
        Err(Error::Handshake(wscope::HandshakeError::Rejected {
            status: 403
        }))
    ));
}

#[test]
fn bad_client_header_is_refused_before_sending() {
    // The request is built before connecting: nothing listens on this address.
    let cfg = wscope::config::ClientConfig::new("127.0.0.1", 9).header("Sec-WebSocket-Key", "x");
    match blocking::connect_with(&cfg) {
        Err(Error::Handshake(wscope::HandshakeError::Build(_))) => {}
        other => panic!("{other:?}"),
    }
}

/// Run in a child process by [`sending_to_a_vanished_peer_is_an_error_not_sigpipe`]: with
/// `SIGPIPE` at its default action (as in a C program on the C API), a blocking server keeps
/// sending 20 KiB messages (header and payload go out as one vectored write, small enough to
/// be taken whole) to a client that has gone away. Prints the error the send returned.
#[cfg(unix)]
#[test]
#[ignore = "run in a child process by sending_to_a_vanished_peer_is_an_error_not_sigpipe"]
fn sigpipe_child() {
    crate::util::default_sigpipe();
    let (addr, server) = one_shot_server(ServerConfig::default(), |server: &Server| {
        let mut ws = server.accept().unwrap();
        let data = payload(20 << 10);
        for _ in 0..200 {
            if let Err(e) = ws.send(Message::binary(data.clone())) {
                return format!("{e}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        "every send succeeded".to_owned()
    });
    let (ws, _) = blocking::connect(&url(addr)).unwrap();
    // Gone without a closing handshake: the server's next writes meet a reset connection.
    drop(ws);
    println!("send error: {}", server.join().unwrap());
}

#[cfg(unix)]
#[test]
fn sending_to_a_vanished_peer_is_an_error_not_sigpipe() {
    crate::util::run_with_default_sigpipe("blocking::sigpipe_child");
}

/// A signal that lands while the client waits for the `101` interrupts a read with a timeout,
/// which the kernel does not restart (even with `SA_RESTART`): the handshake goes on.
#[cfg(unix)]
#[test]
#[allow(unsafe_code)]
fn handshake_survives_a_signal_while_waiting_for_the_response() {
    extern "C" fn ignore(_: libc::c_int) {}
    // SAFETY: installs a handler that does nothing for SIGUSR2, which no other test uses;
    // without SA_RESTART, so blocked reads fail with EINTR.
    unsafe {
        let mut action: libc::sigaction = core::mem::zeroed();
        action.sa_sigaction = ignore as extern "C" fn(libc::c_int) as usize;
        assert_eq!(
            libc::sigaction(libc::SIGUSR2, &action, core::ptr::null_mut()),
            0
        );
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        // The client is now blocked reading the response.
        std::thread::sleep(Duration::from_millis(400));
        let mut ws = blocking::accept(tcp, &ServerConfig::default()).unwrap();
        let msg = ws.read().unwrap();
        ws.send(msg).unwrap();
        ws.flush().unwrap();
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let client = std::thread::spawn(move || {
        // SAFETY: pthread_self has no preconditions.
        tx.send(unsafe { libc::pthread_self() }).unwrap();
        let (mut ws, _) = blocking::connect(&url(addr)).unwrap();
        ws.send_text("after the signal").unwrap();
        ws.read().unwrap()
    });
    let thread = rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(150));
    // SAFETY: the client thread is alive (it joins below) and handles SIGUSR2.
    assert_eq!(unsafe { libc::pthread_kill(thread, libc::SIGUSR2) }, 0);
    assert_eq!(client.join().unwrap(), Message::text("after the signal"));
    server.join().unwrap();
}
