//! Helpers: servers on ephemeral ports, raw sockets, certificates.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread::JoinHandle;

use wscope::blocking::Server;
use wscope::config::ServerConfig;
use wscope::{Error, Message};

/// A blocking server on 127.0.0.1:0 running `f` on the one connection it accepts.
pub(crate) fn one_shot_server<F, T>(cfg: ServerConfig, f: F) -> (SocketAddr, JoinHandle<T>)
where
    F: FnOnce(&Server) -> T + Send + 'static,
    T: Send + 'static,
{
    let server = Server::bind("127.0.0.1:0", cfg).unwrap();
    let addr = server.local_addr().unwrap();
    (addr, std::thread::spawn(move || f(&server)))
}

/// A blocking echo server for one connection; returns what ended it.
pub(crate) fn echo_server(cfg: ServerConfig) -> (SocketAddr, JoinHandle<Result<(), Error>>) {
    one_shot_server(cfg, |server| {
        // Accept the first subprotocol offered, if any.
        let (mut ws, _) = server.accept_with(|req| {
            let mut a = wscope::handshake::Accept::new();
            if let Some(p) = req.subprotocols().next() {
                a = a.subprotocol(p);
            }
            Ok(a)
        })?;
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

/// A raw TCP client that has done a valid handshake; returns the socket.
pub(crate) fn raw_upgraded(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&wscope_test_support::wire::upgrade_request("/", "x", None))
        .unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// Reads an HTTP head byte by byte (so no frame byte is taken).
pub(crate) fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Reads until EOF or error; returns all bytes.
pub(crate) fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

/// Deterministic test payload.
/// A peer that sends 1 MiB binary messages (256 at most) on `s` and never reads: the
/// writing thread ends when a write fails (the server gave up) and hands the socket back, so
/// the caller decides when the server sees it close (dropping it early would let the server
/// see an EOF instead of a peer that never reads).
pub(crate) fn spawn_never_reading_writer(mut s: TcpStream) -> JoinHandle<TcpStream> {
    std::thread::spawn(move || {
        let mut frame = vec![0x82, 0x80 | 127];
        frame.extend_from_slice(&(1u64 << 20).to_be_bytes());
        frame.extend_from_slice(&[0; 4]);
        frame.resize(frame.len() + (1 << 20), 0x5a);
        for _ in 0..256 {
            if s.write_all(&frame).is_err() {
                break;
            }
        }
        s
    })
}

pub(crate) fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

/// A CA and a leaf certificate for "localhost" signed by it: (ca_pem, cert_pem, key_pem).
pub(crate) fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

/// The basic exchange every echo server must pass, from a connected client: text (UTF-8),
/// binary, empty text and a ping answered, then a close with 4000 and `reason` that the
/// server answers with the same code.
pub(crate) fn basic_echo_exchange(ws: &mut wscope::blocking::WebSocket, reason: &str) {
    use wscope::CloseCode;
    ws.send(Message::text("héllo")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("héllo"));
    ws.send_binary(&[0, 1, 2, 255]).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(vec![0, 1, 2, 255]));
    ws.send_text("").unwrap();
    assert_eq!(ws.read().unwrap(), Message::text(""));
    ws.send_ping(b"are you there").unwrap();
    assert_eq!(ws.read().unwrap(), Message::pong(b"are you there".to_vec()));
    ws.close(CloseCode(4000), reason).unwrap();
    let status = ws.close_status().unwrap();
    assert_eq!(status.remote, CloseCode(4000));
    assert_eq!(status.local, Some(CloseCode(4000)));
    assert!(status.initiated_locally);
}

/// A fragmented text message with a ping between its frames (and a UTF-8 character across a
/// frame boundary): the pong comes first, then the whole message; then a normal close.
pub(crate) fn fragmented_echo_exchange(ws: &mut wscope::blocking::WebSocket) {
    use wscope::{CloseCode, OpCode};
    ws.send_frame(OpCode::TEXT, "frag".as_bytes(), false)
        .unwrap();
    ws.send_ping(b"in between").unwrap();
    ws.send_frame(OpCode::CONTINUATION, "men".as_bytes(), false)
        .unwrap();
    ws.send_frame(OpCode::CONTINUATION, "ted ✓".as_bytes(), true)
        .unwrap();
    assert_eq!(ws.read().unwrap(), Message::pong(b"in between".to_vec()));
    assert_eq!(ws.read().unwrap(), Message::text("fragmented ✓"));
    ws.close(CloseCode::NORMAL, "").unwrap();
}

/// A binary frame (FIN, masked) that declares 2^63 - 1 payload bytes: the header, the key,
/// and a few payload bytes.
pub(crate) fn huge_frame() -> Vec<u8> {
    let mut frame = vec![0x82, 0xff];
    frame.extend_from_slice(&(i64::MAX as u64).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4, 9, 9, 9, 9]);
    frame
}

/// Sends a frame that declares 2^63 - 1 payload bytes on an upgraded socket and checks that
/// the server answers with close 1009 and ends the stream.
pub(crate) fn declare_huge_frame_expect_1009(s: &mut TcpStream) {
    s.write_all(&huge_frame()).unwrap();
    let reply = read_to_end(s);
    assert_eq!(reply, [0x88, 0x02, 0x03, 0xf1], "expected close 1009");
}

/// Trickles a request head one byte every 5 ms (at most 2000 bytes) until the server cuts the
/// socket off or `server_gave_up` says it did; fails if neither happens. Then checks that the
/// socket ends without a `101`.
pub(crate) fn trickle_until_cut_off(s: &mut TcpStream, mut server_gave_up: impl FnMut() -> bool) {
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut cut_off = false;
    for _ in 0..2000 {
        if s.write_all(b"X").is_err() || {
            std::thread::sleep(Duration::from_millis(5));
            server_gave_up()
        } {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "the server never gave up on a trickling client");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let rest = read_to_end(s);
    assert!(!String::from_utf8_lossy(&rest).contains("101"));
}

/// Runs the ignored test `name` of this binary in a child process and checks that it ended
/// normally and printed `send error: ` (the error a send to a vanished peer returned): the
/// child restores `SIGPIPE`'s default action first, as a C host has it, so a write that
/// raises the signal kills it.
#[cfg(unix)]
pub(crate) fn run_with_default_sigpipe(name: &str) {
    use std::os::unix::process::ExitStatusExt;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--ignored", "--nocapture"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.signal(),
        None,
        "child killed by a signal: {stdout}"
    );
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("send error: "), "{stdout}");
    assert!(!stdout.contains("every send succeeded"), "{stdout}");
}

/// Restores `SIGPIPE`'s default action (terminate), which Rust programs replace with "ignore"
/// at start-up, so that a child test behaves as a C program would.
#[cfg(unix)]
pub(crate) fn default_sigpipe() {
    #[allow(unsafe_code)]
    // SAFETY: restores the default action of one signal; no handler is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A single-threaded tokio runtime with timers and I/O.
pub(crate) fn current_thread_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Receives the next data frame with `recv_partial` into a buffer of `buf_len` bytes: each
/// piece's frame info and bytes, up to the piece that ends the frame (a control frame or a
/// timeout on the way fails the test).
pub(crate) fn frame_pieces(
    ws: &mut wscope::blocking::WebSocket,
    buf_len: usize,
) -> Vec<(wscope::FrameInfo, Vec<u8>)> {
    let mut buf = vec![0u8; buf_len];
    let mut pieces = Vec::new();
    loop {
        match ws.recv_partial(&mut buf, Duration::from_secs(10)).unwrap() {
            wscope::Partial::Data {
                info,
                len,
                frame_end,
            } => {
                pieces.push((info, buf[..len].to_vec()));
                if frame_end {
                    return pieces;
                }
            }
            other => panic!("{other:?}"),
        }
    }
}
