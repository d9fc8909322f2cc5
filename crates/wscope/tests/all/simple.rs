//! The websock_* facade: recv contract, timeouts, sending while another thread receives.

use core::time::Duration;
use std::sync::Arc;

use wscope::config::ServerConfig;
use wscope::simple::{MsgHdr, Websock, WebsockConfig};

use crate::util::echo_server;

fn open(port: u16) -> Websock {
    Websock::open(
        &WebsockConfig::default()
            .hostname("127.0.0.1".into())
            .port(port)
            .uri("/mqtt".into())
            .hndshk_hdrs(vec![("Sec-WebSocket-Protocol".into(), "mqtt".into())]),
    )
    .unwrap()
}

#[test]
fn recv_contract() {
    let (addr, server) = echo_server(ServerConfig::default());
    let ws = open(addr.port());
    let mut hdr = MsgHdr::default();
    let mut buf = [0u8; 4];
    // Timeout: 0 bytes, opcode -1, not an error.
    assert_eq!(
        ws.recv(&mut hdr, &mut buf, Duration::from_millis(30))
            .unwrap(),
        0
    );
    assert_eq!(hdr.opcode, -1);
    ws.send_text("Hello World").unwrap();
    let mut got = Vec::new();
    while got.len() < 11 {
        let n = ws
            .recv(&mut hdr, &mut buf, Duration::from_secs(10))
            .unwrap();
        assert_eq!((hdr.fin, hdr.opcode, hdr.payload_len), (1, 1, 11));
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"Hello World");
    ws.close();
    server.join().unwrap().unwrap();
}

#[test]
fn send_while_another_thread_receives() {
    let (addr, server) = echo_server(ServerConfig::default());
    let ws = Arc::new(open(addr.port()));
    let rx = {
        let ws = ws.clone();
        std::thread::spawn(move || {
            let mut hdr = MsgHdr::default();
            let mut buf = [0u8; 64];
            let mut seen = Vec::new();
            while seen.len() < 20 {
                let n = ws
                    .recv(&mut hdr, &mut buf, Duration::from_secs(10))
                    .unwrap();
                if hdr.opcode == 2 {
                    seen.push(buf[..n].to_vec());
                }
            }
            seen
        })
    };
    for i in 0u8..20 {
        ws.send_binary(&[i; 8]).unwrap();
    }
    let seen = rx.join().unwrap();
    assert_eq!(seen, (0u8..20).map(|i| vec![i; 8]).collect::<Vec<_>>());
    Arc::try_unwrap(ws).unwrap().close();
    server.join().unwrap().unwrap();
}

/// The SDK's ping rule (shared with the C API): a ping is answered with its payload and not
/// returned; the message after it is what `recv` returns.
#[test]
fn pings_are_answered_and_not_returned() {
    let server = wscope::blocking::Server::bind("127.0.0.1:0", ServerConfig::default()).unwrap();
    let port = server.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let mut ws = server.accept().unwrap();
        ws.send_ping(b"are you there").unwrap();
        ws.send_text("after the ping").unwrap();
        let pong = ws.read().unwrap();
        // Until the client's close (answered by the server's read).
        while ws.read().is_ok() {}
        pong
    });
    let ws = Websock::open(
        &WebsockConfig::default()
            .hostname("127.0.0.1".into())
            .port(port),
    )
    .unwrap();
    let mut hdr = MsgHdr::default();
    let mut buf = [0u8; 64];
    let n = ws
        .recv(&mut hdr, &mut buf, Duration::from_secs(10))
        .unwrap();
    assert_eq!((hdr.fin, hdr.opcode, hdr.payload_len), (1, 1, 14));
    assert_eq!(&buf[..n], b"after the ping");
    ws.close();
    assert_eq!(
        peer.join().unwrap(),
        wscope::Message::pong(b"are you there".to_vec())
    );
}

/// The clock (the tests check deadlines).
#[allow(clippy::disallowed_methods)]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Runs `f` on a thread and fails the test when it has not finished after `limit` (a
/// deadlock fails instead of hanging the test run).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("still running after {limit:?}: deadlock?"))
}

fn pattern(m: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(m) ^ (i >> 12) as u8)
        .collect()
}

/// An echo server (as [`echo_server`]) whose socket buffers are small (64 KiB): what the
/// client sends and does not read cannot hide in them.
#[cfg(unix)]
fn small_buffer_echo_server() -> (
    core::net::SocketAddr,
    std::thread::JoinHandle<Result<(), wscope::Error>>,
) {
    use wscope::{Error, Message};
    crate::util::one_shot_server(ServerConfig::default(), |server| {
        let mut ws = server.accept()?;
        let sock = socket2::SockRef::from(ws.get_ref().tcp());
        sock.set_recv_buffer_size(64 * 1024)?;
        sock.set_send_buffer_size(64 * 1024)?;
        loop {
            match ws.read() {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => ws.send(m)?,
                Ok(_) => {}
                Err(Error::ConnectionClosed) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    })
}

/// One thread receives while another sends 8, 16 and 8 MiB to an echo server that writes
/// each echo before it reads on: a send that held the connection for its whole write would
/// keep the receiver from reading the echo of the message before, and so the server from
/// reading the rest of the send.
#[cfg(unix)]
#[test]
fn large_sends_while_another_thread_receives() {
    let (addr, server) = small_buffer_echo_server();
    let sizes = [8usize << 20, 16 << 20, 8 << 20];
    // Made before: the next send must follow the previous one at once.
    let payloads: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(m, &len)| pattern(m as u8, len))
        .collect();
    let got = within(Duration::from_secs(120), move || {
        let ws = Arc::new(open(addr.port()));
        let rx = {
            let ws = ws.clone();
            std::thread::spawn(move || {
                let mut hdr = MsgHdr::default();
                let mut buf = vec![0u8; 64 * 1024];
                let mut msgs = vec![Vec::new()];
                let mut frame = 0i64;
                while msgs.len() <= sizes.len() {
                    let n = ws
                        .recv(&mut hdr, &mut buf, Duration::from_secs(30))
                        .unwrap();
                    assert!(hdr.opcode == 2 || hdr.opcode == 0, "opcode {}", hdr.opcode);
                    msgs.last_mut().unwrap().extend_from_slice(&buf[..n]);
                    frame += n as i64;
                    if frame == hdr.payload_len {
                        frame = 0;
                        if hdr.fin == 1 {
                            msgs.push(Vec::new());
                        }
                    }
                }
                msgs.pop();
                msgs
            })
        };
        for p in &payloads {
            ws.send_binary(p).unwrap();
        }
        let msgs = rx.join().unwrap();
        Arc::try_unwrap(ws).unwrap().close();
        msgs
    });
    assert_eq!(got.len(), sizes.len());
    for (m, msg) in got.iter().enumerate() {
        assert!(*msg == pattern(m as u8, sizes[m]), "echo {m} differs");
    }
    server.join().unwrap().unwrap();
}

/// A server that answers the upgrade, then sends empty pings without end and never reads.
fn ping_flood_server() -> (core::net::SocketAddr, FloodServer) {
    let server = wscope::blocking::Server::bind("127.0.0.1:0", ServerConfig::default()).unwrap();
    let addr = server.local_addr().unwrap();
    let (sock_tx, sock) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        use std::io::Write;
        let mut ws = server.accept().unwrap();
        sock_tx
            .send(ws.get_ref().tcp().try_clone().unwrap())
            .unwrap();
        let pings = [0x89u8, 0x00].repeat(32 * 1024);
        while ws.get_mut().write_all(&pings).is_ok() {}
    });
    (addr, FloodServer { sock, thread })
}

/// The thread of [`ping_flood_server`] and its socket.
struct FloodServer {
    sock: std::sync::mpsc::Receiver<std::net::TcpStream>,
    thread: std::thread::JoinHandle<()>,
}

impl FloodServer {
    /// Ends the flood and waits for the thread. Its write may wait for good once the client
    /// is gone: when both sockets' buffers are full of pongs, TCP can stop the flood for good
    /// (the server's full receive buffer drops the client's segments, and with them the window
    /// updates its write waits for), so the socket is shut down rather than left to fail.
    fn stop(self) {
        if let Ok(sock) = self.sock.recv() {
            let _ = sock.shutdown(std::net::Shutdown::Both);
        }
        self.thread.join().unwrap();
    }
}

/// Under a ping flood whose pongs the server never reads, a receive still returns by its
/// timeout (it never blocks on writing a pong), and close by its bound.
#[test]
fn recv_and_close_keep_their_bounds_under_a_ping_flood() {
    let (addr, server) = ping_flood_server();
    within(Duration::from_secs(60), move || {
        let ws = open(addr.port());
        let mut hdr = MsgHdr::default();
        let mut buf = [0u8; 64];
        // Long enough for the pongs to fill the socket buffers: a receive that wrote them
        // blocking would never return from then on.
        let start = now();
        while start.elapsed() < Duration::from_secs(4) {
            let t0 = now();
            match ws.recv(&mut hdr, &mut buf, Duration::from_secs(1)) {
                // Only pings arrive: answered, never returned, so every call times out.
                Ok(n) => assert_eq!((n, hdr.opcode), (0, -1), "pings are not returned"),
                Err(e) => panic!("recv failed: {e}"),
            }
            // A bound, with slack for a loaded machine; the old code never returned.
            assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
        }
        let t0 = now();
        ws.close();
        assert!(
            t0.elapsed() < wscope::simple::CLOSE_TIMEOUT + Duration::from_secs(2),
            "{:?}",
            t0.elapsed()
        );
    });
    server.stop();
}

/// A send to a server that never reads fails once the server has taken less than a slice
/// within the write timeout, instead of blocking forever.
#[test]
fn a_send_the_server_does_not_read_fails_within_the_write_timeout() {
    let (addr, server) = ping_flood_server();
    let (r, took) = within(Duration::from_secs(60), move || {
        let ws = Websock::open(
            &WebsockConfig::default()
                .hostname("127.0.0.1".into())
                .port(addr.port())
                .write_timeout(Some(Duration::from_secs(1))),
        )
        .unwrap();
        let big = vec![0u8; 16 << 20];
        let t0 = now();
        let r = ws.send_binary(&big);
        let took = t0.elapsed();
        ws.close();
        (r, took)
    });
    match r {
        Err(wscope::Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
        other => panic!("{other:?}"),
    }
    // A bound, with slack for preparing 16 MiB in a debug build on a loaded machine.
    assert!(took < Duration::from_secs(4), "{took:?}");
    server.stop();
}

/// `time_out` bounds the whole opening: a server that takes the TCP connection and never
/// answers the upgrade makes `open` fail with a timeout by then.
#[test]
fn open_is_bounded_by_time_out_when_the_upgrade_gets_no_answer() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = within(Duration::from_secs(30), move || {
        let t0 = now();
        let r = Websock::open(
            &WebsockConfig::default()
                .hostname("127.0.0.1".into())
                .port(port)
                .time_out(Duration::from_secs(1)),
        );
        (r.map(drop), t0.elapsed())
    });
    drop(listener);
    assert!(matches!(r.0, Err(wscope::Error::Timeout)), "{:?}", r.0);
    assert!(r.1 < Duration::from_secs(3), "{:?}", r.1);
}
