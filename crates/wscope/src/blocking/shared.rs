//! One client connection shared by threads: one thread receives while others send, and
//! neither waits for the other (the `simple` facade and the `websock.h` C API run on it).
//!
//! The socket is split in two halves. The receiving thread waits for bytes in a read of its
//! own, without any lock, and takes the connection's state (the sans-IO session and, with
//! TLS, the rustls connection) only to decode what arrived. A sending thread encodes its
//! message into the session's write queue under the same lock, then writes it out in pieces
//! of at most [`CHUNK`] bytes holding only the write half: a peer that answers with a large
//! message of its own while it reads ours (an echo server) is read meanwhile, so the two
//! never wait for each other. Pongs and close replies join the write queue behind whole
//! frames, in order; the receiving thread sends them only when the socket takes them at once
//! (it never blocks on a write), otherwise the sending thread, or a later receive, does.
//!
//! Every call has a bound: a receive returns by its timeout whatever arrives (pings, a flood
//! of them); a send fails with a timeout when the peer takes less than [`WRITE_SLICE`] bytes
//! within the write timeout (it does not read; the connection is then unusable: a frame was
//! cut), and a receive fails the same way when the pongs it queued wait that long without a
//! byte written; [`SharedWebSocket::close`] returns within the bound it is given.
//!
//! ```no_run
//! use core::time::Duration;
//! use wscope::blocking::{connect, SharedWebSocket};
//! use wscope::Partial;
//!
//! # fn main() -> wscope::Result<()> {
//! let (ws, _) = connect("ws://127.0.0.1:9001/")?;
//! let ws = SharedWebSocket::new(ws, Duration::from_secs(10))?;
//! std::thread::scope(|s| {
//!     s.spawn(|| ws.send_binary(&vec![0u8; 8 << 20]));
//!     let mut buf = vec![0u8; 64 * 1024];
//!     while let Ok(p) = ws.recv_partial(&mut buf, Duration::from_secs(1)) {
//!         if let Partial::Data { frame_end: true, .. } = p {
//!             break;
//!         }
//!     }
//! });
//! ws.close(Some(wscope::CloseCode::NORMAL), "", Duration::from_secs(5))
//! # }
//! ```

use core::time::Duration;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant as StdInstant;

#[cfg(feature = "rustls")]
use rustls::Connection as TlsConnection;
/// Without the `rustls` feature there is never a TLS connection (`Option<Infallible>` is
/// always `None`).
#[cfg(not(feature = "rustls"))]
type TlsConnection = core::convert::Infallible;
use wscope_proto::connection::Outgoing;
use wscope_proto::{CloseCode, OpCode};

use super::WebSocket;
use crate::error::{Error, Result};
use crate::message::Partial;
use crate::prepared::PreparedMessage;
use crate::session::{Clock, Session};
use crate::stream::MaybeTlsStream;

/// Most bytes a sender takes from the write queue for one write (and so the most a pong may
/// wait behind the frame being written, besides that frame).
pub const CHUNK: usize = 256 * 1024;

/// Most bytes one blocking write offers the socket: a peer that takes less than this within
/// the write timeout is too slow (it does not read), and the send fails.
pub const WRITE_SLICE: usize = 64 * 1024;

/// Payloads from this size on are copied before the state lock is taken (see
/// [`SharedWebSocket::send_binary`]).
const OWN_FROM: usize = 64 * 1024;

/// Longest sleep of a receive while bytes wait to be written: it tries them again this often.
const RETRY: Duration = Duration::from_millis(10);

/// A client (or server) connection that one thread may receive on while others send.
pub struct SharedWebSocket {
    state: Mutex<State>,
    writer: Mutex<Writer>,
    reader: Mutex<Reader>,
    write_timeout: Mutex<Duration>,
    /// A clone of the socket outside every lock, for [`Self::abort`].
    abort_sock: TcpStream,
    subprotocol: Option<String>,
}

impl core::fmt::Debug for SharedWebSocket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SharedWebSocket")
            .field("subprotocol", &self.subprotocol)
            .finish_non_exhaustive()
    }
}

/// What decoding and encoding need: taken briefly by both sides, never across a wait.
struct State {
    session: Session,
    tls: Option<TlsConnection>,
    /// The socket, for shutting it down (the halves hold clones of it).
    sock: TcpStream,
    /// The connection ended (closing handshake over, failure, shutdown): calls get `Closed`.
    done: bool,
    /// End of stream was given to the session.
    eof: bool,
    /// Bytes taken from the session's write queue so far (a sender waits until its own
    /// message's last byte has been taken and written).
    taken: u64,
}

/// The write half: bytes taken from the write queue (encrypted, with TLS) and not yet written.
struct Writer {
    sock: TcpStream,
    pending: Vec<u8>,
    at: usize,
    /// The socket's write timeout as last set.
    timeout_set: Option<Duration>,
    /// When a byte was last written, or the queue was last found empty.
    last_progress: StdInstant,
}

/// The read half (one receiving thread at a time).
struct Reader {
    sock: TcpStream,
    raw: Vec<u8>,
    timeout_set: Option<Duration>,
}

/// Locks a mutex, ignoring poisoning (a panicking thread leaves consistent state: every
/// field is updated before anything that can panic, or the connection is failed).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SharedWebSocket {
    /// Takes over a connection (from [`super::connect_with`]); a send fails when the peer
    /// takes less than [`WRITE_SLICE`] bytes within `write_timeout`.
    pub fn new(ws: WebSocket<MaybeTlsStream>, write_timeout: Duration) -> Result<Self> {
        let WebSocket {
            stream,
            mut session,
            done,
            ..
        } = ws;
        // Kept outside the lock: reading it never waits for a receive.
        let subprotocol = session.take_subprotocol();
        #[cfg_attr(not(feature = "rustls"), allow(unused_mut))]
        let (tcp, mut tls) = match stream {
            MaybeTlsStream::Plain(t) => (t.into_inner(), None),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::ClientTls(s) => {
                let rustls::StreamOwned { conn, sock } = *s;
                (sock.into_inner(), Some(TlsConnection::Client(conn)))
            }
            #[cfg(feature = "rustls")]
            MaybeTlsStream::ServerTls(s) => {
                let rustls::StreamOwned { conn, sock } = *s;
                (sock.into_inner(), Some(TlsConnection::Server(conn)))
            }
        };
        // Pongs wait in the core (which bounds them) while this much waits to be written.
        session.hold_replies_over = session.write_limit;
        #[cfg(feature = "rustls")]
        if let Some(conn) = tls.as_mut() {
            // Plaintext rustls decrypted during the handshake and nobody read yet.
            drain_plaintext(conn, &mut session)?;
        }
        tcp.set_read_timeout(None)?;
        tcp.set_write_timeout(None)?;
        let reader = Reader {
            sock: tcp.try_clone()?,
            raw: vec![0u8; 64 * 1024],
            timeout_set: None,
        };
        let writer = Writer {
            sock: tcp.try_clone()?,
            pending: Vec::new(),
            at: 0,
            timeout_set: None,
            last_progress: Clock::now_std(),
        };
        Ok(Self {
            abort_sock: tcp.try_clone()?,
            state: Mutex::new(State {
                session,
                tls,
                sock: tcp,
                done,
                eof: false,
                taken: 0,
            }),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            write_timeout: Mutex::new(write_timeout.max(Duration::from_millis(1))),
            subprotocol,
        })
    }

    /// The subprotocol agreed in the handshake.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// How long the peer may take to accept [`WRITE_SLICE`] bytes (or, for the pongs a
    /// receive queued, one byte) before the connection fails.
    pub fn write_timeout(&self) -> Duration {
        *lock(&self.write_timeout)
    }

    /// Changes the write timeout (at least 1 ms); sends already waiting keep theirs.
    pub fn set_write_timeout(&self, t: Duration) {
        *lock(&self.write_timeout) = t.max(Duration::from_millis(1));
    }

    /// Sends a text message; returns once it is written (or fails, see the module docs).
    pub fn send_text(&self, text: &str) -> Result<()> {
        if text.len() < OWN_FROM {
            return self.send(Outgoing::Text(text));
        }
        self.send_owned(OpCode::TEXT, text.as_bytes())
    }

    /// Sends a binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<()> {
        if data.len() < OWN_FROM {
            return self.send(Outgoing::Binary(data));
        }
        self.send_owned(OpCode::BINARY, data)
    }

    /// Sends a large data message: the payload is copied before the lock is taken and queued
    /// as it is (masked in place), so a receive does not wait for the copy.
    fn send_owned(&self, opcode: OpCode, data: &[u8]) -> Result<()> {
        let mut owned = data.to_vec();
        self.send_with(|s| s.send_vec(opcode, &mut owned))
    }

    /// Sends a message encoded once for many connections (see [`PreparedMessage`]); returns
    /// once it is written: a server queues the shared frame itself (no encoding, no copy).
    pub fn send_prepared(&self, msg: &PreparedMessage) -> Result<()> {
        self.send_with(|s| s.send_prepared(msg))
    }

    /// Sends a ping (at most 125 bytes).
    pub fn send_ping(&self, data: &[u8]) -> Result<()> {
        self.send(Outgoing::Ping(data))
    }

    /// Sends an unsolicited pong (at most 125 bytes).
    pub fn send_pong(&self, data: &[u8]) -> Result<()> {
        self.send(Outgoing::Pong(data))
    }

    /// Sends one frame of a fragmented message: `opcode` TEXT or BINARY for the first,
    /// CONTINUATION after; `fin` on the last.
    pub fn send_frame(&self, opcode: OpCode, payload: &[u8], fin: bool) -> Result<()> {
        self.send_with(|s| s.send_data_frame(opcode, payload, fin))
    }

    fn send(&self, msg: Outgoing<'_>) -> Result<()> {
        self.send_with(|s| s.send(msg))
    }

    /// Encodes with `encode` and writes until its last byte is out.
    fn send_with(&self, encode: impl FnOnce(&mut Session) -> Result<()>) -> Result<()> {
        // Senders take turns: a message is written whole before the next one's first byte.
        let mut w = lock(&self.writer);
        let target = {
            let mut st = lock(&self.state);
            st.check()?;
            encode(&mut st.session)?;
            st.taken + st.session.out.len() as u64
        };
        self.write_until(&mut w, target, None)
    }

    /// Writes (blocking, without the state lock) until `target` bytes have been taken from
    /// the write queue and written. Fails the connection when a write of [`WRITE_SLICE`]
    /// bytes does not finish within the write timeout, or when `deadline` passes.
    fn write_until(&self, w: &mut Writer, target: u64, deadline: Option<StdInstant>) -> Result<()> {
        let write_timeout = self.write_timeout();
        loop {
            if w.at >= w.pending.len() {
                let mut st = lock(&self.state);
                st.check()?;
                if st.taken >= target {
                    return Ok(());
                }
                if let Err(e) = st.fill(w) {
                    return Err(st.fail(e));
                }
                if w.pending.is_empty() {
                    // Cannot happen (the queue holds the bytes up to `target`); never spin.
                    let e = io::Error::other("write queue ended before the message");
                    return Err(st.fail(e.into()));
                }
            }
            let mut t = write_timeout;
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Clock::now_std());
                if left.is_zero() {
                    return Err(lock(&self.state).fail(Error::Timeout));
                }
                t = t.min(left);
            }
            if w.timeout_set != Some(t) {
                w.sock.set_write_timeout(Some(t))?;
                w.timeout_set = Some(t);
            }
            let want = (w.pending.len() - w.at).min(WRITE_SLICE);
            let started = Clock::now_std();
            match w.sock.write(&w.pending[w.at..w.at + want]) {
                Ok(0) => {
                    let e = io::Error::from(io::ErrorKind::WriteZero);
                    return Err(lock(&self.state).fail(e.into()));
                }
                Ok(n) => {
                    w.at += n;
                    let done = Clock::now_std();
                    w.last_progress = done;
                    // A blocking write returns short only when its timeout ran out (or a
                    // signal came): the peer took less than a slice in all that time.
                    if n < want && done.saturating_duration_since(started) >= t {
                        let e = if t == write_timeout {
                            stalled(&w.sock, t)
                        } else {
                            Error::Timeout
                        };
                        return Err(lock(&self.state).fail(e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    let e = if t == write_timeout {
                        stalled(&w.sock, t)
                    } else {
                        Error::Timeout
                    };
                    return Err(lock(&self.state).fail(e));
                }
                Err(e) => return Err(lock(&self.state).fail(e.into())),
            }
        }
    }

    /// Partial receive (the embedded-SDK-style API's `websock_recv`): as [`WebSocket::recv_partial`], and
    /// returns by `timeout` whatever arrives; pings are answered (when the socket takes the
    /// pong; otherwise it waits in the queue) and returned as [`Partial::Control`]. One
    /// thread at a time may receive (others wait for it).
    pub fn recv_partial(&self, buf: &mut [u8], timeout: Duration) -> Result<Partial> {
        let until = after(timeout);
        let mut rd = lock(&self.reader);
        // Even with a zero timeout, bytes that already arrived are read once.
        let mut read_once = false;
        loop {
            let wait = {
                let mut st = lock(&self.state);
                st.check()?;
                match st.session.next_partial(buf) {
                    Ok(Some(p)) => {
                        self.try_flush(&mut st)?;
                        return Ok(p);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // The close carrying the violation's code goes out if it can.
                        self.end(&mut st);
                        return Err(e);
                    }
                }
                st.session.on_tick();
                self.try_flush(&mut st)?;
                if st.session.should_close() || st.eof {
                    self.end(&mut st);
                    return Err(st.session.end_error().unwrap_or(Error::ConnectionClosed));
                }
                let now = Clock::now_std();
                if now >= until && read_once {
                    return Ok(Partial::Timeout);
                }
                let wake = st.session.deadline().map_or(until, |d| d.min(until));
                let mut wait = wake.saturating_duration_since(now);
                if st.session.out.len() > 0 || st.session.conn.has_pending_transmit() {
                    wait = wait.min(RETRY);
                }
                wait.max(Duration::from_millis(1))
            };
            if rd.timeout_set != Some(wait) {
                rd.sock.set_read_timeout(Some(wait))?;
                rd.timeout_set = Some(wait);
            }
            let Reader { sock, raw, .. } = &mut *rd;
            read_once = true;
            match sock.read(raw) {
                Ok(n) => {
                    let mut st = lock(&self.state);
                    if st.done {
                        continue;
                    }
                    if let Err(e) = st.feed(&raw[..n]) {
                        self.end(&mut st);
                        return Err(e);
                    }
                }
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(lock(&self.state).fail(e.into())),
            }
        }
    }

    /// Writes what the socket takes at once, if no sender is writing (the sender then writes
    /// the queue, replies included). Fails the connection when bytes have waited for the
    /// write timeout without any being written (the peer does not read).
    fn try_flush(&self, st: &mut State) -> Result<()> {
        let Ok(mut w) = self.writer.try_lock() else {
            return Ok(());
        };
        let now = Clock::now_std();
        loop {
            if w.at >= w.pending.len() {
                if let Err(e) = st.fill(&mut w) {
                    return Err(st.fail(e));
                }
                if w.pending.is_empty() {
                    w.last_progress = now;
                    return Ok(());
                }
            }
            let Writer {
                sock,
                pending,
                at,
                timeout_set,
                ..
            } = &mut *w;
            match send_now(sock, &pending[*at..], timeout_set) {
                Ok(0) => return Err(st.fail(io::Error::from(io::ErrorKind::WriteZero).into())),
                Ok(n) => {
                    w.at += n;
                    w.last_progress = now;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    let t = self.write_timeout();
                    if now.saturating_duration_since(w.last_progress) >= t {
                        let e = stalled(&w.sock, t);
                        return Err(st.fail(e));
                    }
                    return Ok(());
                }
                Err(e) => return Err(st.fail(e.into())),
            }
        }
    }

    /// Ends the connection: sends the queued replies (a close among them) and the TLS
    /// close_notify if the socket takes them at once, then shuts the socket down.
    fn end(&self, st: &mut State) {
        if st.done {
            return;
        }
        st.session.hold_replies_over = usize::MAX;
        st.session.flush_transmit();
        #[cfg(feature = "rustls")]
        if let Some(conn) = st.tls.as_mut() {
            conn.send_close_notify();
        }
        let _ = self.try_flush(st);
        let _ = st.sock.shutdown(Shutdown::Write);
        st.done = true;
    }

    /// Closes: sends a close frame with `code` and `reason` (cut to 123 bytes; `None`: an
    /// empty close), waits for the peer's close and the end of the connection, and shuts the
    /// socket down, all within `bound`. Returns `Error::Timeout` when the bound ran out
    /// (the socket is shut down anyway).
    pub fn close(self, code: Option<CloseCode>, reason: &str, bound: Duration) -> Result<()> {
        let until = after(bound);
        {
            let mut st = lock(&self.state);
            if st.done {
                return Ok(());
            }
            st.session.hold_replies_over = usize::MAX;
            match st.session.close(code, reason) {
                // Already closing (the peer's close was answered): just wait for the end.
                Ok(()) | Err(Error::AlreadyClosed) => {}
                Err(e) => {
                    self.end(&mut st);
                    return Err(e);
                }
            }
            st.session.flush_transmit();
        }
        let written = {
            let mut w = lock(&self.writer);
            let target = {
                let st = lock(&self.state);
                st.taken + st.session.out.len() as u64
            };
            self.write_until(&mut w, target, Some(until))
        };
        let r = written.and_then(|()| {
            let mut scratch = [0u8; 4096];
            loop {
                let left = until.saturating_duration_since(Clock::now_std());
                if left.is_zero() {
                    return Err(Error::Timeout);
                }
                match self.recv_partial(&mut scratch, left) {
                    Ok(_) => {}
                    Err(Error::ConnectionClosed | Error::AlreadyClosed) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        });
        let mut st = lock(&self.state);
        self.end(&mut st);
        let _ = st.sock.shutdown(Shutdown::Both);
        r
    }

    /// Shuts the socket down at once: a thread blocked in a send or receive on it returns
    /// (with an error); the connection is unusable afterwards. For a close that cannot wait.
    pub fn abort(&self) {
        let _ = self.abort_sock.shutdown(Shutdown::Both);
    }
}

impl State {
    fn check(&self) -> Result<()> {
        if self.done {
            Err(Error::AlreadyClosed)
        } else {
            Ok(())
        }
    }

    /// Marks the connection failed and shuts the socket down (a sender blocked in a write
    /// and a receiver blocked in a read return at once); returns `e`.
    fn fail(&mut self, e: Error) -> Error {
        self.done = true;
        let _ = self.sock.shutdown(Shutdown::Both);
        e
    }

    /// Gives bytes read from the socket to the session (through rustls with TLS); `&[]` is
    /// the end of the stream.
    fn feed(&mut self, mut bytes: &[u8]) -> Result<()> {
        let Self {
            session, tls, eof, ..
        } = self;
        if bytes.is_empty() {
            if !*eof {
                *eof = true;
                session.commit_read(0);
            }
            return Ok(());
        }
        match tls {
            None => {
                while !bytes.is_empty() {
                    let dst = session.read_buf();
                    let n = dst.len().min(bytes.len());
                    dst[..n].copy_from_slice(&bytes[..n]);
                    session.commit_read(n);
                    bytes = &bytes[n..];
                }
            }
            #[cfg(not(feature = "rustls"))]
            Some(never) => match *never {},
            #[cfg(feature = "rustls")]
            Some(conn) => {
                while !bytes.is_empty() {
                    if conn.read_tls(&mut bytes)? == 0 {
                        break;
                    }
                    if let Err(e) = conn.process_new_packets() {
                        // The alert rustls queued goes out with the shutdown.
                        return Err(Error::Tls(e));
                    }
                    if drain_plaintext(conn, session)? && !*eof {
                        *eof = true;
                        session.commit_read(0);
                    }
                }
            }
        }
        Ok(())
    }

    /// Takes up to [`CHUNK`] bytes from the write queue into `w.pending` (encrypting them
    /// with TLS), with the core's replies if there is room for them.
    fn fill(&mut self, w: &mut Writer) -> Result<()> {
        w.pending.clear();
        w.at = 0;
        self.session.flush_transmit();
        let Self {
            session,
            tls,
            taken,
            ..
        } = self;
        loop {
            #[cfg(feature = "rustls")]
            if let Some(conn) = tls.as_mut() {
                while conn.wants_write() {
                    conn.write_tls(&mut w.pending)?;
                }
            }
            if w.pending.len() >= CHUNK || session.out.len() == 0 {
                return Ok(());
            }
            let room = CHUNK - w.pending.len();
            let moved = {
                let mut slices = [IoSlice::new(&[]); 16];
                let n = session.write_slices(&mut slices);
                match tls.as_mut() {
                    None => {
                        let mut moved = 0;
                        for s in &slices[..n] {
                            let k = s.len().min(room - moved);
                            w.pending.extend_from_slice(&s[..k]);
                            moved += k;
                            if moved == room {
                                break;
                            }
                        }
                        moved
                    }
                    #[cfg(not(feature = "rustls"))]
                    Some(never) => match *never {},
                    #[cfg(feature = "rustls")]
                    Some(conn) => {
                        let mut moved = 0;
                        for s in &slices[..n] {
                            let want = s.len().min(room - moved);
                            let k = conn.writer().write(&s[..want])?;
                            moved += k;
                            if k < want || moved == room {
                                break;
                            }
                        }
                        moved
                    }
                }
            };
            if moved == 0 {
                return Ok(());
            }
            session.out.advance(moved);
            *taken += moved as u64;
        }
    }
}

/// Moves the plaintext rustls holds into the session; `true` when the peer ended the TLS
/// stream (close_notify, or TCP closed without it: both end the WebSocket stream).
#[cfg(feature = "rustls")]
fn drain_plaintext(conn: &mut TlsConnection, session: &mut Session) -> Result<bool> {
    loop {
        let dst = session.read_buf();
        match conn.reader().read(dst) {
            Ok(0) => return Ok(true),
            Ok(n) => session.commit_read(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(true),
            Err(e) => return Err(e.into()),
        }
    }
}

/// The instant `d` from now (far in the future when `d` is too long to add).
fn after(d: Duration) -> StdInstant {
    let now = Clock::now_std();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

/// A read or write that ran into the socket's timeout (or would block).
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The error for a peer that did not read for `t`.
fn stalled(sock: &TcpStream, t: Duration) -> Error {
    let peer = sock
        .peer_addr()
        .map_or_else(|_| "the peer".to_owned(), |a| a.to_string());
    Error::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "write timeout: {peer} did not read what was sent for {} ms",
            t.as_millis()
        ),
    ))
}

/// One write that does not wait: what the socket takes now.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_now(sock: &TcpStream, buf: &[u8], _: &mut Option<Duration>) -> io::Result<usize> {
    socket2::SockRef::from(sock).send_with_flags(buf, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
}

/// One write that does not wait: what the socket takes now (std sets `SO_NOSIGPIPE` here).
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn send_now(sock: &TcpStream, buf: &[u8], _: &mut Option<Duration>) -> io::Result<usize> {
    socket2::SockRef::from(sock).send_with_flags(buf, libc::MSG_DONTWAIT)
}

/// One write that waits at most a millisecond (no per-call non-blocking flag here); the
/// socket's write timeout changes (`timeout_set`, the writer's record of it, follows).
#[cfg(not(unix))]
fn send_now(sock: &TcpStream, buf: &[u8], timeout_set: &mut Option<Duration>) -> io::Result<usize> {
    let t = Duration::from_millis(1);
    sock.set_write_timeout(Some(t))?;
    *timeout_set = Some(t);
    let mut s = sock;
    s.write(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocking::{connect, Server};
    use crate::config::ServerConfig;

    #[test]
    fn a_timeout_too_long_to_add_is_far_away_not_a_panic() {
        assert!(after(Duration::MAX) > Clock::now_std() + Duration::from_secs(86_400));
    }

    /// A peer that sends pings without end and never reads cannot grow the write queue: the
    /// pongs that do not fit wait in the core, which bounds them.
    #[cfg(unix)]
    #[test]
    fn pongs_to_a_peer_that_never_reads_stay_bounded() {
        let server = Server::bind("127.0.0.1:0", ServerConfig::default()).unwrap();
        let addr = server.local_addr().unwrap();
        // Small buffers: the pongs cannot hide in them. Set on the listener, so the accepted
        // socket has it from its first segment on.
        socket2::SockRef::from(server.listener())
            .set_recv_buffer_size(64 * 1024)
            .unwrap();
        let (sock_tx, sock_rx) = std::sync::mpsc::channel();
        let flood = std::thread::spawn(move || {
            let mut ws = server.accept().unwrap();
            sock_tx
                .send(ws.get_ref().tcp().try_clone().unwrap())
                .unwrap();
            let pings = [0x89u8, 0x00].repeat(32 * 1024);
            while ws.get_mut().write_all(&pings).is_ok() {}
        });
        let (ws, _) = connect(&format!("ws://{addr}/")).unwrap();
        socket2::SockRef::from(ws.get_ref().tcp())
            .set_send_buffer_size(64 * 1024)
            .unwrap();
        // The peer never reads: the write timeout would end the connection once nothing has
        // gone out for that long, so it is longer than the loop below may take.
        let ws = SharedWebSocket::new(ws, Duration::from_secs(600)).unwrap();
        let mut buf = [0u8; 16];
        let mut pings = 0u64;
        let start = Clock::now_std();
        let mut last_ping = start;
        let mut most = 0;
        // Until far more pongs were due than the bound holds (6 bytes each), or the pings
        // stop: once both sockets' buffers are full of pongs, TCP itself can stall the flood
        // (seen on Linux 6.18 in about one run in ten, at about 80k pings: the peer's socket
        // drops our segments while its receive buffer is full, and with them the window
        // updates it waits for; `ss` shows its drop count growing and its last ACK seconds
        // old), or slow it to a trickle (a few pings per TCP retransmission).
        while pings * 6 < 1 << 20
            && Clock::now_std().saturating_duration_since(last_ping) < Duration::from_secs(2)
            && Clock::now_std().saturating_duration_since(start) < Duration::from_secs(20)
        {
            if let Partial::Control { .. } = ws
                .recv_partial(&mut buf, Duration::from_millis(100))
                .unwrap()
            {
                pings += 1;
                last_ping = Clock::now_std();
            }
            most = most.max(lock(&ws.state).session.out.len());
        }
        let limit = lock(&ws.state).session.write_limit;
        let bound = limit + 64 * 1024 + 6;
        // The queue filled up to its limit, more than twice the bound in pongs was due, and
        // the queue stayed within the bound.
        assert!(most >= limit, "the queue never filled ({most} bytes)");
        assert!(
            pings * 6 >= 2 * bound as u64,
            "only {pings} pings before they stopped"
        );
        assert!(most <= bound, "{most} bytes queued");
        // The flood's write may wait for a window that never opens: shutting its socket down
        // ends it.
        drop(ws);
        let _ = sock_rx.recv().unwrap().shutdown(Shutdown::Both);
        flood.join().unwrap();
    }
}
