//! Size limits: a peer declaring a 2^63-1-byte frame gets 1009 without that allocation.

use std::io::{Read, Write};

use wscope::config::ServerConfig;
use wscope::{CloseCode, Error};
use wscope_proto::ProtocolError;

use crate::util::{one_shot_server, raw_upgraded, read_to_end};

#[test]
fn huge_declared_frame_gets_1009() {
    let (addr, server) = one_shot_server(ServerConfig::default(), |server| {
        let mut ws = server.accept().unwrap();
        let r = ws.read();
        (r, ws.close_status().copied())
    });
    let mut s = raw_upgraded(addr);
    crate::util::declare_huge_frame_expect_1009(&mut s);
    let (r, status) = server.join().unwrap();
    match r {
        Err(Error::Proto(e)) => {
            assert!(matches!(e, ProtocolError::FrameTooLarge { .. }), "{e:?}");
            assert_eq!(e.close_code(), CloseCode::MESSAGE_TOO_BIG);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(status.unwrap().local, Some(CloseCode::MESSAGE_TOO_BIG));
}

#[test]
fn message_over_the_limit_gets_1009() {
    let mut cfg = ServerConfig::default();
    cfg.ws.max_message_len = 1000;
    let (addr, server) = one_shot_server(cfg, |server| {
        let mut ws = server.accept().unwrap();
        ws.read().map(|_| ())
    });
    let mut s = raw_upgraded(addr);
    // Two fragments of 600 bytes (unmasked payload of zeros under a zero mask).
    for (op, fin) in [(0x02u8, false), (0x00, true)] {
        let mut frame = vec![
            op | if fin { 0x80 } else { 0 },
            0x80 | 126,
            0x02,
            0x58,
            0,
            0,
            0,
            0,
        ];
        frame.extend(core::iter::repeat_n(0u8, 600));
        let _ = s.write_all(&frame);
    }
    let mut reply = [0u8; 4];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(reply, [0x88, 0x02, 0x03, 0xf1]);
    assert!(matches!(
        server.join().unwrap(),
        Err(Error::Proto(ProtocolError::MessageTooLarge { .. }))
    ));
}

#[test]
fn invalid_utf8_gets_1007_and_unmasked_gets_1002() {
    for (frame, code) in [
        (vec![0x81u8, 0x81, 0, 0, 0, 0, 0xff], 1007u16),
        (vec![0x81u8, 0x01, b'a'], 1002),
    ] {
        let (addr, server) = one_shot_server(ServerConfig::default(), |server| {
            let mut ws = server.accept().unwrap();
            ws.read().map(|_| ())
        });
        let mut s = raw_upgraded(addr);
        s.write_all(&frame).unwrap();
        let reply = read_to_end(&mut s);
        assert_eq!(reply, [0x88, 0x02, (code >> 8) as u8, code as u8]);
        assert!(matches!(server.join().unwrap(), Err(Error::Proto(_))));
    }
}

/// A one-connection server that reads until an error, then reports it with the close status;
/// and a raw client socket already upgraded to it.
fn server_reading_until_error(
    cfg: ServerConfig,
) -> (
    std::net::TcpStream,
    std::thread::JoinHandle<(Error, Option<wscope_proto::connection::CloseStatus>)>,
) {
    let (addr, server) = one_shot_server(cfg, |server| {
        let mut ws = server.accept().unwrap();
        loop {
            if let Err(e) = ws.read() {
                return (e, ws.close_status().copied());
            }
        }
    });
    (raw_upgraded(addr), server)
}

#[test]
fn idle_timeout_closes_with_1001() {
    let cfg = ServerConfig::default().idle_timeout(core::time::Duration::from_millis(100));
    let (mut s, server) = server_reading_until_error(cfg);
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head[0], 0x88);
    let mut body = vec![0u8; usize::from(head[1])];
    s.read_exact(&mut body).unwrap();
    assert_eq!(&body[..2], &[0x03, 0xe9]);
    // Answer the close; the server then ends the connection.
    s.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe9]).unwrap();
    let (e, status) = server.join().unwrap();
    assert!(matches!(e, Error::ConnectionClosed), "{e:?}");
    assert_eq!(status.unwrap().remote, CloseCode::GOING_AWAY);
}

/// A server with keepalive (ping after 100 ms of quiet, give up `timeout` after the ping)
/// and the raw client socket, whose reads give up after 5 s: a missing ping or close fails
/// the test instead of hanging it.
fn keepalive_server(
    timeout: wscope_proto::Duration,
) -> (
    std::net::TcpStream,
    std::thread::JoinHandle<(Error, Option<wscope_proto::connection::CloseStatus>)>,
) {
    let mut cfg = ServerConfig::default();
    cfg.ws.keepalive = Some(wscope_proto::keepalive::Keepalive::new(
        wscope_proto::Duration::from_millis(100),
        timeout,
    ));
    let (s, server) = server_reading_until_error(cfg);
    s.set_read_timeout(Some(core::time::Duration::from_secs(5)))
        .unwrap();
    (s, server)
}

#[test]
// The test reads the clock, as a driver does, to check the ping is not early.
#[allow(clippy::disallowed_methods)]
fn keepalive_pings_again_one_interval_after_the_answer_whatever_the_timeout() {
    // Well under the 60 s timeout: a second ping that waits for it fails the test.
    let (mut s, server) = keepalive_server(wscope_proto::Duration::from_secs(60));
    let read_ping = |s: &mut std::net::TcpStream| {
        let mut frame = [0u8; 18];
        s.read_exact(&mut frame).unwrap();
        assert_eq!(&frame[..2], &[0x89, 16], "expected a keepalive ping");
        assert_eq!(&frame[2..], b"wscope keepalive");
    };
    read_ping(&mut s);
    // The answer, in one write: a masked pong (zero mask) with the same payload.
    let answered = std::time::Instant::now();
    let mut pong = vec![0x8a, 0x80 | 16, 0, 0, 0, 0];
    pong.extend_from_slice(b"wscope keepalive");
    s.write_all(&pong).unwrap();
    read_ping(&mut s);
    assert!(answered.elapsed() >= core::time::Duration::from_millis(100));
    drop(s);
    let _ = server.join().unwrap();
}

#[test]
fn keepalive_pings_a_quiet_peer_then_fails_it_with_1011() {
    let (mut s, server) = keepalive_server(wscope_proto::Duration::from_millis(100));
    // A ping, unmasked, with the keepalive payload.
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head[0], 0x89, "expected a ping");
    let mut payload = vec![0u8; usize::from(head[1])];
    s.read_exact(&mut payload).unwrap();
    assert_eq!(payload, b"wscope keepalive");
    // Stay silent: after the timeout the server closes with 1011.
    s.read_exact(&mut head).unwrap();
    assert_eq!(head[0], 0x88, "expected a close");
    let mut body = vec![0u8; usize::from(head[1])];
    s.read_exact(&mut body).unwrap();
    assert_eq!(&body[..2], &[0x03, 0xf3]);
    assert_eq!(&body[2..], b"keepalive timeout");
    let (e, status) = server.join().unwrap();
    // The read ends with a timeout, and the close status says why (1011 sent, nothing back).
    assert!(matches!(e, Error::Timeout), "{e:?}");
    let status = status.unwrap();
    assert!(status.keepalive_timed_out);
    assert_eq!(status.local, Some(CloseCode::INTERNAL_ERROR));
    assert_eq!(status.remote, CloseCode::ABNORMAL);
}

/// The blocking echo against a peer that sends 1 MiB messages and never reads: with `cfg`'s
/// timers the server's blocked write gives up (the timers run while it waits) within 5 s.
// The test reads the clock to bound the wait.
#[allow(clippy::disallowed_methods)]
fn blocking_echo_cuts_a_never_reading_peer(cfg: ServerConfig) {
    let (addr, server) = crate::util::echo_server(cfg);
    let s = raw_upgraded(addr);
    let started = std::time::Instant::now();
    let writer = crate::util::spawn_never_reading_writer(s);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(server.join().unwrap());
    });
    let r = rx
        .recv_timeout(core::time::Duration::from_secs(10))
        .expect("the server never gave up");
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    assert!(
        started.elapsed() < core::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(writer.join().unwrap());
}

#[test]
fn blocking_keepalive_ends_a_peer_that_sends_and_never_reads() {
    let mut cfg = ServerConfig::default();
    cfg.ws.keepalive = Some(wscope_proto::keepalive::Keepalive::new(
        wscope_proto::Duration::from_millis(200),
        wscope_proto::Duration::from_millis(200),
    ));
    cfg.ws.close_timeout = wscope_proto::Duration::from_millis(300);
    blocking_echo_cuts_a_never_reading_peer(cfg);
}

#[test]
fn blocking_idle_timeout_ends_a_peer_that_sends_and_never_reads() {
    let mut cfg = ServerConfig::default().idle_timeout(core::time::Duration::from_millis(200));
    cfg.ws.close_timeout = wscope_proto::Duration::from_millis(300);
    blocking_echo_cuts_a_never_reading_peer(cfg);
}
