//! A measurement baseline, not a server: the least work a WebSocket echo can do for the load
//! generator of `../shared/bench` in its request/response cells (`fan1k`, `lat16`), so that
//! the kernel's share of an echo's CPU time can be told apart from a library's.
//!
//! It checks nothing: no handshake validation beyond finding the key, no UTF-8, no control
//! frames, no close. Every complete frame that arrives is sent back unmasked, in one send per
//! read. Two loops:
//!
//! - `floor-echo epoll PORT`: level-triggered `epoll`, one `read` and one `send` per wake-up
//!   of a connection (no second read that ends in `EAGAIN`, unlike tokio).
//! - `floor-echo uring PORT`: one ring (`SINGLE_ISSUER | DEFER_TASKRUN`), one-shot receives
//!   into each connection's buffer, sends whose successful completions are skipped.
//!
//! Only for request/response traffic: in `uring` mode a reply's buffer is reused by the next
//! reply, which cannot be built before the peer has received this one (it answers the next
//! request), so the kernel has copied it by then. Pipelined traffic would break that.
//!
//! Build with `cargo build --release` in this folder (its own workspace); `BENCHMARKS.md`
//! has the command that runs it in the echo matrix beside wscope and the anchors, and what
//! it showed (runs f1 and f2 in `bench/results/`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};

use base64::Engine;
use io_uring::{opcode, squeue, types, IoUring};

/// Per-connection input and output buffers (never reallocated: large enough for the bench's
/// request/response cells).
const BUF: usize = 1 << 17;

/// Marks the multishot accept's completions.
const ACCEPT: u64 = u64::MAX;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(port)) = (args.get(1), args.get(2).and_then(|p| p.parse::<u16>().ok()))
    else {
        eprintln!("usage: floor-echo epoll|uring PORT");
        std::process::exit(2);
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    match mode.as_str() {
        "epoll" => epoll_loop(&listener),
        "uring" => uring_loop(&listener),
        _ => {
            eprintln!("usage: floor-echo epoll|uring PORT");
            std::process::exit(2);
        }
    }
}

/// Reads a request head (blocking) and answers `101`; `false` when the peer closed first
/// (the bench's readiness probe connects and goes away).
fn handshake(s: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut tmp = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&tmp[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let Some(key) = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| v.trim().to_owned())
    }) else {
        return false;
    };
    let mut h = sha1_smol::Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(h.digest().bytes());
    let reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    s.write_all(reply.as_bytes()).is_ok() && s.set_nodelay(true).is_ok()
}

/// One connection's buffers: `input[..have]` not yet echoed, `out` the replies to send.
struct Conn {
    fd: RawFd,
    input: Vec<u8>,
    have: usize,
    out: Vec<u8>,
}

impl Conn {
    fn new(stream: TcpStream) -> Self {
        Self {
            fd: stream.into_raw_fd(),
            input: vec![0; BUF],
            have: 0,
            out: Vec::with_capacity(BUF),
        }
    }

    /// Turns every complete frame in the input into an unmasked reply in `out`.
    fn echo_frames(&mut self) {
        let mut at = 0;
        loop {
            let b = &self.input[at..self.have];
            if b.len() < 2 {
                break;
            }
            let (len, head) = match b[1] & 0x7f {
                126 if b.len() >= 4 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
                127 if b.len() >= 10 => {
                    let n = u64::from_be_bytes(b[2..10].try_into().expect("8 bytes"));
                    (usize::try_from(n).unwrap_or(usize::MAX), 10)
                }
                126 | 127 => break,
                n => (usize::from(n), 2),
            };
            if len > BUF || b.len() < head + 4 + len {
                break;
            }
            let mask = [b[head], b[head + 1], b[head + 2], b[head + 3]];
            self.out.push(b[0]);
            match len {
                0..=125 => self.out.push(len as u8),
                126..=0xffff => {
                    self.out.push(126);
                    self.out.extend_from_slice(&(len as u16).to_be_bytes());
                }
                _ => {
                    self.out.push(127);
                    self.out.extend_from_slice(&(len as u64).to_be_bytes());
                }
            }
            let start = self.out.len();
            self.out.extend_from_slice(&b[head + 4..head + 4 + len]);
            for (i, x) in self.out[start..].iter_mut().enumerate() {
                *x ^= mask[i & 3];
            }
            at += head + 4 + len;
        }
        self.input.copy_within(at..self.have, 0);
        self.have -= at;
    }
}

fn epoll_loop(listener: &TcpListener) {
    listener.set_nonblocking(true).expect("nonblocking");
    // SAFETY: plain system calls on descriptors this function owns; `events` outlives them.
    let ep = unsafe { libc::epoll_create1(0) };
    assert!(ep >= 0, "epoll_create1");
    let add = |fd: RawFd, token: u64| {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid event for the duration of the call.
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    };
    add(listener.as_raw_fd(), ACCEPT);
    let mut conns: Vec<Conn> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    loop {
        // SAFETY: `events` has room for 256 entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), 256, -1) };
        for ev in &events[..usize::try_from(n).unwrap_or(0)] {
            if ev.u64 == ACCEPT {
                while let Ok((mut s, _)) = listener.accept() {
                    if s.set_nonblocking(false).is_ok()
                        && handshake(&mut s)
                        && s.set_nonblocking(true).is_ok()
                    {
                        add(s.as_raw_fd(), conns.len() as u64);
                        conns.push(Conn::new(s));
                    }
                }
                continue;
            }
            let c = &mut conns[ev.u64 as usize];
            let spare = &mut c.input[c.have..];
            // SAFETY: reads into the connection's spare input.
            let r = unsafe { libc::read(c.fd, spare.as_mut_ptr().cast(), spare.len()) };
            if r <= 0 {
                continue;
            }
            c.have += r as usize;
            c.echo_frames();
            if !c.out.is_empty() {
                // SAFETY: sends from the connection's output buffer.
                unsafe { libc::send(c.fd, c.out.as_ptr().cast(), c.out.len(), libc::MSG_NOSIGNAL) };
                c.out.clear();
            }
        }
    }
}

fn uring_loop(listener: &TcpListener) {
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(1024)
        .expect("io_uring");
    let accept = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
        .build()
        .user_data(ACCEPT);
    // SAFETY: an accept refers to no memory of ours.
    unsafe { ring.submission().push(&accept).expect("sq") };
    let mut conns: Vec<Conn> = Vec::new();
    // Connection i's receive has user_data 2i, its send 2i+1 (skipped on success).
    let recv = |c: &mut Conn, i: usize| {
        let spare = &mut c.input[c.have..];
        opcode::Recv::new(types::Fd(c.fd), spare.as_mut_ptr(), spare.len() as u32)
            .build()
            .user_data((i as u64) << 1)
    };
    loop {
        ring.submit_and_wait(1).expect("io_uring_enter");
        let done: Vec<(u64, i32)> = ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        for (ud, res) in done {
            if ud == ACCEPT {
                if res < 0 {
                    continue;
                }
                // SAFETY: a completed accept hands over a new descriptor.
                let mut s = unsafe { TcpStream::from_raw_fd(res) };
                if handshake(&mut s) {
                    let i = conns.len();
                    conns.push(Conn::new(s));
                    let e = recv(&mut conns[i], i);
                    // SAFETY: the target is the connection's input, which lives (never
                    // reallocated) as long as the loop.
                    unsafe { ring.submission().push(&e).expect("sq") };
                }
                continue;
            }
            let i = (ud >> 1) as usize;
            if ud & 1 == 1 || res <= 0 {
                continue; // a failed send, or the peer went away
            }
            let c = &mut conns[i];
            c.have += res as usize;
            c.echo_frames();
            if !c.out.is_empty() {
                let e = opcode::Send::new(types::Fd(c.fd), c.out.as_ptr(), c.out.len() as u32)
                    .build()
                    .flags(squeue::Flags::SKIP_SUCCESS)
                    .user_data(ud | 1);
                // SAFETY: `out` is rewritten only after the next request, which the peer
                // sends after it has this reply (see the module doc).
                unsafe { ring.submission().push(&e).expect("sq") };
                c.out.clear();
            }
            let e = recv(c, i);
            // SAFETY: as for the first receive.
            unsafe { ring.submission().push(&e).expect("sq") };
        }
    }
}
