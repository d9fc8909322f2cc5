//! The io_uring server (`wscope::uring`, feature `io-uring`) against the blocking client and
//! raw sockets: echo of every message shape, closing handshake, many connections, refusals,
//! the handshake timeout, size limits, and stopping.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread::JoinHandle;

use wscope::blocking;
use wscope::config::ServerConfig;
use wscope::uring::{Conn, ConnId, Echo, Service, StopHandle, UringServer};
use wscope::{CloseCode, DataKind, Error, HandshakeError, Message, OpCode};

use crate::util::{payload, raw_upgraded, read_head, read_to_end};

/// Whether the kernel runs the driver; tests return early (and say so) where it does not.
fn available() -> bool {
    match wscope::uring::supported() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

/// How a connection ended, as the service heard it.
#[derive(Debug)]
enum Ended {
    Closed(ConnId, Option<Error>),
    Refused(Error),
}

/// [`Echo`] that reports every end of a connection.
struct Recorder(mpsc::Sender<Ended>);

impl Service for Recorder {
    fn on_message(
        &mut self,
        conn: &mut Conn<'_>,
        kind: DataKind,
        payload: &mut Vec<u8>,
    ) -> wscope::Result<()> {
        Echo.on_message(conn, kind, payload)
    }

    fn on_close(&mut self, id: ConnId, error: Option<Error>) {
        let _ = self.0.send(Ended::Closed(id, error));
    }

    fn on_handshake_failed(&mut self, error: Error) {
        let _ = self.0.send(Ended::Refused(error));
    }
}

struct Running {
    addr: SocketAddr,
    stop: StopHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    ended: mpsc::Receiver<Ended>,
}

impl Running {
    fn url(&self) -> String {
        format!("ws://{}/echo", self.addr)
    }

    fn next_end(&self) -> Ended {
        self.ended
            .recv_timeout(Duration::from_secs(10))
            .expect("the server reported no end of a connection")
    }

    fn stop(mut self) {
        // (Fails harmlessly when the server has stopped already.)
        let _ = self.stop.stop();
        if let Some(t) = self.thread.take() {
            t.join().unwrap().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.stop();
    }
}

/// The echo on the io_uring server, on 127.0.0.1:0, in a thread.
fn start(cfg: ServerConfig) -> Running {
    start_with(cfg, |s| s)
}

/// [`start`] with ring settings.
fn start_with(cfg: ServerConfig, tune: impl FnOnce(UringServer) -> UringServer) -> Running {
    run_bound(tune(UringServer::bind("127.0.0.1:0", cfg).unwrap()))
}

/// Sends one prepared message to every connection that opens, and again in answer to each
/// message (with the echo after it).
struct Welcome(wscope::PreparedMessage);

impl Service for Welcome {
    fn on_open(&mut self, conn: &mut Conn<'_>, _: &wscope::handshake::Request) {
        conn.send_prepared(&self.0).unwrap();
    }

    fn on_message(
        &mut self,
        conn: &mut Conn<'_>,
        kind: DataKind,
        payload: &mut Vec<u8>,
    ) -> wscope::Result<()> {
        conn.send_prepared(&self.0)?;
        conn.feed_data(kind, payload)
    }
}

#[test]
fn a_prepared_message_goes_to_every_connection() {
    if !available() {
        return;
    }
    for deflate in [false, true] {
        let mut cfg = ServerConfig::default();
        let mut ccfg = None;
        if deflate {
            let no_takeover = wscope::DeflateConfig::default().server_no_context_takeover(true);
            cfg = cfg.deflate(no_takeover);
            ccfg = Some(no_takeover);
        }
        let welcome = wscope::PreparedMessage::text("welcome, ".repeat(100));
        let server = UringServer::bind("127.0.0.1:0", cfg).unwrap();
        let addr = server.local_addr().unwrap();
        let mut server = server;
        let stop = server.stop_handle().unwrap();
        let w = Welcome(welcome.clone());
        let thread = std::thread::spawn(move || server.run(w));
        for _ in 0..3 {
            let mut c = wscope::ClientConfig::from_url(&format!("ws://{addr}/")).unwrap();
            if let Some(d) = ccfg {
                c = c.deflate(d);
            }
            let (mut ws, _) = blocking::connect_with(&c).unwrap();
            let want = Message::text("welcome, ".repeat(100));
            assert_eq!(ws.read().unwrap(), want);
            ws.send_text("hi").unwrap();
            assert_eq!(ws.read().unwrap(), want);
            assert_eq!(ws.read().unwrap(), Message::text("hi"));
            ws.close(CloseCode::NORMAL, "").unwrap();
            while ws.read().is_ok() {}
        }
        // With deflate (no server context takeover), one compressed frame for all of them.
        assert_eq!(welcome.compressed_forms(), usize::from(deflate));
        stop.stop().unwrap();
        thread.join().unwrap().unwrap();
    }
}

#[test]
fn text_binary_ping_and_close_with_code_and_reason() {
    if !available() {
        return;
    }
    let srv = start(ServerConfig::default());
    let (mut ws, resp) = blocking::connect(&srv.url()).unwrap();
    assert_eq!(resp.status(), 101);
    crate::util::basic_echo_exchange(&mut ws, "bye now");
    match srv.next_end() {
        Ended::Closed(_, None) => {}
        other => panic!("{other:?}"),
    }
    srv.stop();
}

#[test]
fn fragmented_message_is_reassembled() {
    if !available() {
        return;
    }
    let srv = start(ServerConfig::default());
    let (mut ws, _) = blocking::connect(&srv.url()).unwrap();
    crate::util::fragmented_echo_exchange(&mut ws);
    srv.stop();
}

#[test]
fn sixteen_mib_round_trip() {
    if !available() {
        return;
    }
    let srv = start(ServerConfig::default());
    let (mut ws, _) = blocking::connect(&srv.url()).unwrap();
    let data = payload(16 << 20);
    ws.send(Message::binary(data.clone())).unwrap();
    match ws.read().unwrap() {
        Message::Binary(got) => assert!(got == data, "16 MiB echo differs"),
        other => panic!("{other:?}"),
    }
    // The connection is still good afterwards.
    ws.send_text("after").unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("after"));
    ws.close(CloseCode::NORMAL, "").unwrap();
    srv.stop();
}

#[test]
fn large_frames_are_received_straight_into_the_message() {
    // Frames of 32 KiB to 4 MiB take the direct-receive path; text is validated across it.
    if !available() {
        return;
    }
    let srv = start(ServerConfig::default());
    let (mut ws, _) = blocking::connect(&srv.url()).unwrap();
    for size in [
        32 << 10,
        (32 << 10) + 1,
        1 << 20,
        (4 << 20) - 3,
        4 << 20,
        (4 << 20) + 1,
    ] {
        let data = payload(size);
        ws.send(Message::binary(data.clone())).unwrap();
        match ws.read().unwrap() {
            Message::Binary(got) => assert!(got == data, "{size}-byte echo differs"),
            other => panic!("{other:?}"),
        }
    }
    // A 3 MiB text message in three frames, each over the direct threshold, with a ping
    // between them; a multi-byte character straddles each frame boundary.
    let text: String = "ab✓".repeat(1 << 20);
    let bytes = text.as_bytes();
    let cuts = [0, (1 << 20) + 1, (2 << 20) + 2, bytes.len()];
    for (i, w) in cuts.windows(2).enumerate() {
        let op = if i == 0 {
            OpCode::TEXT
        } else {
            OpCode::CONTINUATION
        };
        ws.send_frame(op, &bytes[w[0]..w[1]], w[1] == bytes.len())
            .unwrap();
        if i == 0 {
            ws.send_ping(b"mid").unwrap();
        }
    }
    assert_eq!(ws.read().unwrap(), Message::pong(b"mid".to_vec()));
    match ws.read().unwrap() {
        Message::Text(got) => assert!(got.as_str() == text, "3 MiB text echo differs"),
        other => panic!("{other:?}"),
    }
    // Invalid UTF-8 inside a large direct-read frame fails the connection with 1007.
    let mut bad = vec![b'x'; 100 << 10];
    bad[60 << 10] = 0xff;
    ws.send_frame(OpCode::TEXT, &bad, true).unwrap();
    while ws.read().is_ok() {}
    let status = ws.close_status().copied().expect("the server closed");
    assert_eq!(status.remote, CloseCode::INVALID_PAYLOAD);
    srv.stop();
}

#[test]
fn small_and_large_frames_alternate() {
    // Receives switch between multishot (small frames) and one-shot ones (after a large
    // frame, whose rest goes straight into the message buffer) and back. Each round's frames
    // are all written before any echo is read, so a large frame often arrives behind small
    // ones that a multishot receive is taking.
    if !available() {
        return;
    }
    for multishot in [true, false] {
        let srv = start_with(ServerConfig::default(), |s| s.recv_multishot(multishot));
        let (mut ws, _) = blocking::connect(&srv.url()).unwrap();
        for round in 0..12 {
            let sizes = [10, 100_000, 1, 40_000, 1000, 300_000, 5, 32 << 10, 70];
            let sent: Vec<Vec<u8>> = sizes.iter().map(|&n| payload(n + round)).collect();
            for data in &sent {
                ws.send(Message::binary(data.clone())).unwrap();
            }
            for data in &sent {
                match ws.read().unwrap() {
                    Message::Binary(got) => assert!(
                        got == data,
                        "multishot {multishot}, round {round}: {}-byte echo differs",
                        data.len()
                    ),
                    other => panic!("{other:?}"),
                }
            }
        }
        ws.close(CloseCode::NORMAL, "").unwrap();
        srv.stop();
    }
}

#[test]
fn sixty_four_connections_echo_two_hundred_messages_each() {
    if !available() {
        return;
    }
    let srv = start(ServerConfig::default());
    let url = srv.url();
    let clients: Vec<_> = (0..64)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let (mut ws, _) = blocking::connect(&url).unwrap();
                for j in 0..200 {
                    let msg = if j % 2 == 0 {
                        Message::text(format!("client {i} message {j}"))
                    } else {
                        Message::binary(payload(1024 + j))
                    };
                    ws.send(msg.clone()).unwrap();
                    assert_eq!(ws.read().unwrap(), msg);
                }
                ws.close(CloseCode::NORMAL, "done").unwrap();
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let mut ids = std::collections::HashSet::new();
    for _ in 0..64 {
        match srv.next_end() {
            Ended::Closed(id, None) => assert!(ids.insert(id), "{id:?} reported twice"),
            other => panic!("{other:?}"),
        }
    }
    srv.stop();
}

#[test]
fn plain_ring_tiny_queue_plain_descriptors_one_shot_receives_still_echo() {
    if !available() {
        return;
    }
    // 8 entries for 16 connections: the submission queue fills and is submitted early.
    let srv = start_with(ServerConfig::default(), |s| {
        s.ring_entries(8)
            .recv_poll_first(false)
            .recv_multishot(false)
            .register_files(false)
            .defer_taskrun(false)
    });
    let url = srv.url();
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let (mut ws, _) = blocking::connect(&url).unwrap();
                for j in 0..50 {
                    let msg = Message::text(format!("{i}/{j}"));
                    ws.send(msg.clone()).unwrap();
                    assert_eq!(ws.read().unwrap(), msg);
                }
                ws.close(CloseCode::NORMAL, "").unwrap();
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    srv.stop();
}

#[test]
fn a_client_that_reads_late_gets_every_echo() {
    // Large frames: one-shot receives, partly straight into the message buffer.
    reads_late(500, 60_000);
}

#[test]
fn a_client_that_reads_late_gets_every_small_echo() {
    // Small frames: the multishot receive is cancelled while the write queue is full and
    // armed again once it drains.
    reads_late(20_000, 1000);
}

/// `n` frames of `len` bytes written without reading: the server's write queue fills, it
/// stops reading (backpressure), and resumes as the client drains the echoes.
fn reads_late(n: usize, len: usize) {
    if !available() {
        return;
    }
    let srv = start(ServerConfig::default());
    let s = raw_upgraded(srv.addr);
    let mut reader = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut s = s;
        let mut frame = vec![0x82, 0x80 | 126];
        frame.extend_from_slice(&(len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(&payload(len));
        for _ in 0..n {
            s.write_all(&frame).unwrap();
        }
        s
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut want = vec![0x82, 126];
    want.extend_from_slice(&(len as u16).to_be_bytes());
    want.extend_from_slice(&payload(len));
    let mut got = vec![0u8; want.len()];
    for i in 0..n {
        reader.read_exact(&mut got).unwrap();
        assert!(got == want, "echo {i} differs");
    }
    let mut s = writer.join().unwrap();
    s.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]).unwrap();
    let mut close = [0u8; 4];
    reader.read_exact(&mut close).unwrap();
    assert_eq!(close, [0x88, 0x02, 0x03, 0xe8]);
    srv.stop();
}

#[test]
fn pipelined_frames_behind_the_request_are_answered_after_the_101() {
    if !available() {
        return;
    }
    let srv = start(ServerConfig::default());
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut bytes = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .to_vec();
    // A masked text "hi" (zero mask) in the same write as the request.
    bytes.extend_from_slice(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i']);
    s.write_all(&bytes).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut echo = [0u8; 4];
    s.read_exact(&mut echo).unwrap();
    assert_eq!(echo, [0x81, 0x02, b'h', b'i']);
    srv.stop();
}

#[test]
fn malformed_request_gets_400_and_the_socket_closed() {
    if !available() {
        return;
    }
    let srv = start(ServerConfig::default());
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(NO_KEY_REQUEST).unwrap();
    refused_with_400(&srv, &read_to_end(&mut s));
    srv.stop();
}

/// An upgrade request without `Sec-WebSocket-Key`.
const NO_KEY_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// Checks that `response` is a 400 and that the server reported the refusal.
fn refused_with_400(srv: &Running, response: &[u8]) {
    let response = String::from_utf8_lossy(response);
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    match srv.next_end() {
        Ended::Refused(Error::Handshake(HandshakeError::Proto(e))) => {
            assert_eq!(e.http_status(), 400);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn oversized_head_gets_431() {
    if !available() {
        return;
    }
    let srv = start(ServerConfig::default());
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..400 {
        req.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "y".repeat(40)).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    // The server may close before it read everything: ignore a reset on write.
    let _ = s.write_all(&req);
    let response = String::from_utf8_lossy(&read_to_end(&mut s)).into_owned();
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
    srv.stop();
}

#[test]
fn slowloris_is_cut_off_by_the_handshake_timeout() {
    if !available() {
        return;
    }
    let srv = start(ServerConfig::default().handshake_timeout(Duration::from_millis(300)));
    let mut s = TcpStream::connect(srv.addr).unwrap();
    // One header byte at a time (bounded here): the server must give up first.
    crate::util::trickle_until_cut_off(&mut s, || match srv.ended.try_recv() {
        Ok(end) => {
            assert!(matches!(end, Ended::Refused(Error::Timeout)), "{end:?}");
            true
        }
        Err(_) => false,
    });
    srv.stop();
}

#[test]
fn huge_declared_frame_gets_1009() {
    if !available() {
        return;
    }
    let srv = start(ServerConfig::default());
    let mut s = raw_upgraded(srv.addr);
    crate::util::declare_huge_frame_expect_1009(&mut s);
    match srv.next_end() {
        Ended::Closed(_, Some(Error::Proto(e))) => {
            assert_eq!(e.close_code(), CloseCode::MESSAGE_TOO_BIG);
        }
        other => panic!("{other:?}"),
    }
    srv.stop();
}

#[test]
fn idle_connection_is_closed_with_1001() {
    if !available() {
        return;
    }
    let srv = start(ServerConfig::default().idle_timeout(Duration::from_millis(200)));
    let (mut ws, _) = blocking::connect(&srv.url()).unwrap();
    match ws.read() {
        Ok(Message::Close(Some(c))) => assert_eq!(c.code, CloseCode::GOING_AWAY),
        other => panic!("{other:?}"),
    }
    srv.stop();
}

#[test]
fn peer_vanishing_mid_message_is_reported() {
    if !available() {
        return;
    }
    let srv = start(ServerConfig::default());
    let mut s = raw_upgraded(srv.addr);
    // Half of a 10-byte masked binary frame, then EOF.
    s.write_all(&[0x82, 0x8a, 0, 0, 0, 0, 1, 2, 3]).unwrap();
    drop(s);
    match srv.next_end() {
        Ended::Closed(_, Some(_)) => {}
        other => panic!("{other:?}"),
    }
    srv.stop();
}

#[test]
fn stop_closes_open_connections() {
    if !available() {
        return;
    }
    let srv = start(ServerConfig::default());
    let (mut ws, _) = blocking::connect(&srv.url()).unwrap();
    ws.send_text("x").unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("x"));
    srv.stop.stop().unwrap();
    match srv.next_end() {
        Ended::Closed(_, Some(Error::Io(_))) => {}
        other => panic!("{other:?}"),
    }
    // The client sees the transport end.
    assert!(ws.read().is_err());
    srv.stop();
}

/// A graceful stop closes open connections with 1001, takes the client's close reply as a
/// clean end, and then `run` returns by itself, long before the grace.
#[test]
fn going_away_closes_with_1001_and_waits_for_the_reply() {
    if !available() {
        return;
    }
    let mut srv = start(ServerConfig::default());
    let (mut ws, _) = blocking::connect(&srv.url()).unwrap();
    ws.send_text("x").unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("x"));
    srv.stop.going_away(Duration::from_secs(60)).unwrap();
    match ws.read().unwrap() {
        Message::Close(Some(c)) => assert_eq!(c.code, CloseCode::GOING_AWAY),
        other => panic!("{other:?}"),
    }
    // The client's reply went out with the read; the server heard a closing handshake.
    match srv.next_end() {
        Ended::Closed(_, None) => {}
        other => panic!("{other:?}"),
    }
    let thread = srv.thread.take().unwrap();
    thread.join().unwrap().unwrap();
    // And it accepts no more.
    assert!(blocking::connect(&srv.url()).is_err());
}

/// Runs a bound server in a thread, recording how its connections end.
fn run_bound(mut server: UringServer) -> Running {
    let addr = server.local_addr().unwrap();
    let stop = server.stop_handle().unwrap();
    let (tx, ended) = mpsc::channel();
    let thread = std::thread::spawn(move || server.run(Recorder(tx)));
    Running {
        addr,
        stop,
        thread: Some(thread),
        ended,
    }
}

/// `n` clients, one after the other: each echoes a message and closes.
fn echo_clients(url: &str, n: usize) {
    for i in 0..n {
        let (mut ws, _) = blocking::connect(url).unwrap();
        ws.send_text(&format!("client {i}")).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text(format!("client {i}")));
        ws.close(CloseCode::NORMAL, "").unwrap();
    }
}

/// The closing handshakes a server reported so far (waiting a little for late ones).
fn clean_ends(srv: &Running) -> usize {
    let mut n = 0;
    while let Ok(end) = srv.ended.recv_timeout(Duration::from_millis(300)) {
        match end {
            Ended::Closed(_, None) => n += 1,
            other => panic!("{other:?}"),
        }
    }
    n
}

#[test]
fn reuseport_servers_share_one_port_and_survive_each_other() {
    if !available() {
        return;
    }
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let first = UringServer::bind_reuseport(any, ServerConfig::default()).unwrap();
    let addr = first.local_addr().unwrap();
    let second = UringServer::bind_reuseport(addr, ServerConfig::default()).unwrap();
    // A listener without SO_REUSEPORT cannot join the group.
    let plain = UringServer::bind(addr, ServerConfig::default()).unwrap_err();
    assert_eq!(plain.kind(), std::io::ErrorKind::AddrInUse);
    let (a, b) = (run_bound(first), run_bound(second));
    let url = a.url();
    // The kernel hashes each connection to one listener: 40 connections all landing on the
    // same one of two would be a 1 in 2^39 chance.
    echo_clients(&url, 40);
    let (on_a, on_b) = (clean_ends(&a), clean_ends(&b));
    assert_eq!(on_a + on_b, 40, "{on_a} + {on_b}");
    assert!(
        on_a > 0 && on_b > 0,
        "{on_a} + {on_b}: one server got them all"
    );
    // One server stops: the other takes every new connection.
    a.stop();
    echo_clients(&url, 10);
    assert_eq!(clean_ends(&b), 10);
    b.stop();
}

/// The echo over TLS on the io_uring server (`start_with` settings), and the client
/// configuration that trusts its certificate.
fn start_tls(
    tune: impl FnOnce(UringServer) -> UringServer,
    cfg: ServerConfig,
) -> (Running, wscope::config::ClientConfig) {
    let (ca, cert, key) = crate::util::certificates();
    let cfg =
        cfg.tls(wscope::tls::server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap());
    let srv = start_with(cfg, tune);
    let client = wscope::config::ClientConfig::new("127.0.0.1", srv.addr.port()).tls(
        wscope::tls::TlsConfig::new()
            .with_ca_pem(ca)
            .with_sni("localhost"),
    );
    (srv, client)
}

/// A raw TLS client (rustls) on the server's port that trusts the test CA.
fn raw_tls(
    srv: &Running,
    client: &wscope::config::ClientConfig,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let cfg = client.tls.build().unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(cfg, name).unwrap();
    let tcp = TcpStream::connect(srv.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// Every message shape over `wss://`, both receive modes, and a clean end on both sides.
fn tls_echo_exchanges(tune: impl FnOnce(UringServer) -> UringServer) {
    let (srv, client) = start_tls(tune, ServerConfig::default());
    let (mut ws, resp) = blocking::connect_with(&client).unwrap();
    assert_eq!(resp.status(), 101);
    crate::util::basic_echo_exchange(&mut ws, "tls bye");
    // The server ended with close_notify: the client's close saw a clean end (Ok), and the
    // connection is over for good.
    assert!(matches!(ws.read(), Err(Error::AlreadyClosed)));
    match srv.next_end() {
        Ended::Closed(_, None) => {}
        other => panic!("{other:?}"),
    }
    let (mut ws, _) = blocking::connect_with(&client).unwrap();
    crate::util::fragmented_echo_exchange(&mut ws);
    let (mut ws, _) = blocking::connect_with(&client).unwrap();
    for len in [100_000, 3 << 20, 17] {
        let data = payload(len);
        ws.send(Message::binary(data.clone())).unwrap();
        match ws.read().unwrap() {
            Message::Binary(got) => assert!(got == data, "{len}-byte echo differs"),
            other => panic!("{other:?}"),
        }
    }
    ws.close(CloseCode::NORMAL, "").unwrap();
    srv.stop();
}

#[test]
fn tls_echo_with_multishot_receives() {
    if available() {
        tls_echo_exchanges(|s| s);
    }
}

#[test]
fn tls_echo_with_one_shot_receives_and_plain_descriptors() {
    if available() {
        tls_echo_exchanges(|s| {
            s.recv_multishot(false)
                .register_files(false)
                .recv_poll_first(false)
        });
    }
}

#[test]
fn tls_connections_echo_side_by_side() {
    if !available() {
        return;
    }
    let (srv, client) = start_tls(|s| s, ServerConfig::default());
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let client = client.clone();
            std::thread::spawn(move || {
                let (mut ws, _) = blocking::connect_with(&client).unwrap();
                for j in 0..50 {
                    let text = format!("client {i} message {j}");
                    ws.send_text(&text).unwrap();
                    assert_eq!(ws.read().unwrap(), Message::text(text));
                }
                ws.close(CloseCode::NORMAL, "").unwrap();
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    for _ in 0..16 {
        assert!(matches!(srv.next_end(), Ended::Closed(_, None)));
    }
    srv.stop();
}

#[test]
fn plain_http_to_a_tls_server_gets_an_alert() {
    if !available() {
        return;
    }
    let (srv, _) = start_tls(|s| s, ServerConfig::default());
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
        .unwrap();
    let reply = read_to_end(&mut s);
    // A TLS alert record (content type 21), then the end of the stream.
    assert_eq!(reply.first(), Some(&21), "{reply:?}");
    match srv.next_end() {
        Ended::Refused(Error::Tls(_)) => {}
        other => panic!("{other:?}"),
    }
    // The server goes on serving.
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.write_all(&[22, 3, 1, 0, 1, 0]).unwrap();
    drop(s);
    srv.stop();
}

#[test]
fn malformed_request_over_tls_gets_400_over_tls() {
    if !available() {
        return;
    }
    let (srv, client) = start_tls(|s| s, ServerConfig::default());
    let mut s = raw_tls(&srv, &client);
    // The request (no key), and more bytes behind it in the same burst than rustls keeps
    // decrypted: they are read and dropped, and the 400 still goes out.
    let mut burst = NO_KEY_REQUEST.to_vec();
    burst.extend_from_slice(&payload(40_000));
    // (Small enough for the socket buffers and the server's drain reads: the client's TLS
    // stream has nothing left to write when it reads, so the reply is not lost to a reset.)
    s.write_all(&burst).unwrap();
    s.flush().unwrap();
    let mut response = Vec::new();
    // Ends with close_notify: a clean end of the TLS stream, not an error.
    s.read_to_end(&mut response).unwrap();
    refused_with_400(&srv, &response);
    srv.stop();
}

#[test]
fn huge_declared_frame_over_tls_gets_1009() {
    if !available() {
        return;
    }
    let (srv, client) = start_tls(|s| s, ServerConfig::default());
    let mut s = raw_tls(&srv, &client);
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    s.write_all(&crate::util::huge_frame()).unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    let head_end = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(reply.starts_with(b"HTTP/1.1 101"));
    assert_eq!(
        &reply[head_end..],
        [0x88, 0x02, 0x03, 0xf1],
        "expected close 1009"
    );
    srv.stop();
}

#[test]
fn a_stalled_tls_handshake_is_cut_off_by_the_handshake_timeout() {
    if !available() {
        return;
    }
    let cfg = ServerConfig::default().handshake_timeout(Duration::from_millis(300));
    let (srv, _) = start_tls(|s| s, cfg);
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The start of a ClientHello record, and then nothing.
    s.write_all(&[22, 3, 1, 0, 200, 1]).unwrap();
    assert!(read_to_end(&mut s).is_empty());
    match srv.next_end() {
        Ended::Refused(Error::Timeout) => {}
        other => panic!("{other:?}"),
    }
    srv.stop();
}

/// A peer that sends 1 MiB messages and never reads: with `cfg`'s timers the server ends it,
/// although its reads wait for the peer to take the echoes, within `bound`.
// The test reads the clock to bound the wait.
#[allow(clippy::disallowed_methods)]
fn never_reading_peer_is_cut(cfg: ServerConfig, bound: Duration) {
    let srv = start(cfg);
    let s = raw_upgraded(srv.addr);
    let started = std::time::Instant::now();
    let writer = crate::util::spawn_never_reading_writer(s);
    match srv.next_end() {
        Ended::Closed(_, Some(Error::Timeout)) => {}
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < bound, "{:?}", started.elapsed());
    drop(writer.join().unwrap());
    srv.stop();
}

#[test]
fn keepalive_ends_a_peer_that_sends_and_never_reads() {
    if !available() {
        return;
    }
    let mut cfg = ServerConfig::default();
    cfg.ws.keepalive = Some(wscope::config::Keepalive::new(
        wscope_proto::Duration::from_millis(200),
        wscope_proto::Duration::from_millis(200),
    ));
    cfg.ws.close_timeout = wscope_proto::Duration::from_millis(300);
    never_reading_peer_is_cut(cfg, Duration::from_secs(5));
}

#[test]
fn idle_timeout_ends_a_peer_that_sends_and_never_reads() {
    if !available() {
        return;
    }
    let mut cfg = ServerConfig::default().idle_timeout(Duration::from_millis(200));
    cfg.ws.close_timeout = wscope_proto::Duration::from_millis(300);
    never_reading_peer_is_cut(cfg, Duration::from_secs(5));
}
