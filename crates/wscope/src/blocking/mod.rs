//! The blocking driver (std::net): a short read → feed the core → poll → write loop.
//!
//! [`WebSocket`] runs one connection over any [`Transport`]: a `Read + Write` stream whose
//! reads and writes can be bounded in time (TCP, Unix sockets, rustls over either, this
//! crate's [`MaybeTlsStream`]). [`connect`] / [`connect_with`] open a client; [`Server`] /
//! [`accept`] take connections on the server side. [`server_handshake`] and
//! [`client_handshake`] run the opening handshake over any transport; a transport whose
//! handshake happened elsewhere runs with [`WebSocket::from_raw_socket`] or
//! [`WebSocket::from_partially_read`].
//!
//! ```no_run
//! use wscope::blocking;
//! use wscope::Message;
//!
//! # fn main() -> wscope::Result<()> {
//! let (mut ws, _response) = blocking::connect("ws://127.0.0.1:9001/chat")?;
//! ws.send(Message::text("hello"))?;
//! let reply = ws.read()?;
//! println!("{reply:?}");
//! ws.close(wscope::CloseCode::NORMAL, "bye")?;
//! # Ok(())
//! # }
//! ```

mod client;
mod server;
pub mod shared;

pub use client::{client_handshake, connect, connect_with};
pub use server::{accept, accept_with, server_handshake, Server};
pub use shared::SharedWebSocket;

use core::time::Duration;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::time::Instant as StdInstant;

use wscope_proto::connection::{CloseStatus, Config, Outgoing, State};
use wscope_proto::{CloseCode, OpCode, Role};

use crate::config::DeflateOptions;
use crate::error::{Error, Result};
use crate::handshake::Agreed;
use crate::message::{Message, Partial};
use crate::prepared::PreparedMessage;
use crate::session::{Clock, Session, SessionOptions};
use crate::stream::{end_without_close_notify, MaybeTlsStream, Tcp};

/// A byte stream the blocking driver can run over.
pub trait Transport: Read + Write {
    /// Sets how long a read may block (`None`: forever).
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;
    /// Sets how long a write may block (`None`: forever). With it, the connection's timers
    /// (keepalive, idle timeout, close timeout) also run while a write waits for a peer that
    /// does not read; the default does nothing (a write may then block until the peer reads).
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }
    /// Ends the connection after the last write (TLS close_notify, TCP FIN).
    fn shutdown(&mut self) -> io::Result<()>;
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
    fn shutdown(&mut self) -> io::Result<()> {
        TcpStream::shutdown(self, std::net::Shutdown::Write)
    }
}

#[cfg(unix)]
impl Transport for std::os::unix::net::UnixStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(self, timeout)
    }
    fn shutdown(&mut self) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, std::net::Shutdown::Write)
    }
}

/// TLS (rustls) over any transport: a stream the application wrapped itself. Feature `rustls`.
#[cfg(feature = "rustls")]
impl<C, T, D> Transport for rustls::StreamOwned<C, T>
where
    C: core::ops::DerefMut<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
    T: Transport,
{
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_write_timeout(timeout)
    }
    fn shutdown(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        let _ = self.conn.complete_io(&mut self.sock);
        self.sock.shutdown()
    }
}

impl Transport for Tcp<TcpStream> {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.set_read_timeout(timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.set_write_timeout(timeout)
    }
    fn shutdown(&mut self) -> io::Result<()> {
        self.0.shutdown(std::net::Shutdown::Write)
    }
}

impl Transport for MaybeTlsStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        MaybeTlsStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(timeout)
    }
    fn shutdown(&mut self) -> io::Result<()> {
        MaybeTlsStream::shutdown(self)
    }
}

/// One WebSocket connection over a blocking stream, after the handshake.
///
/// Pings are answered and the peer's close is replied to inside the reads; the replies go
/// out with the next write or read. Not `Sync`: one thread reads and writes (the `simple`
/// facade adds a lock for send-while-receiving).
pub struct WebSocket<S = MaybeTlsStream> {
    stream: S,
    session: Session,
    /// The read timeout currently set on the socket.
    timeout_set: Option<Option<Duration>>,
    /// The write timeout currently set on the socket.
    write_timeout_set: Option<Option<Duration>>,
    /// The longest a write may go without progress (the configured write timeout).
    write_timeout: Option<Duration>,
    /// The connection has ended but the peer does not take its last bytes: give up then.
    linger_until: Option<StdInstant>,
    /// The transport was shut down; every further call is `Error::AlreadyClosed`.
    done: bool,
}

impl<S> core::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WebSocket")
            .field("conn", &self.session.conn)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<S: Transport> WebSocket<S> {
    /// Runs a connection over `stream`, whose opening handshake is done already, as `role`,
    /// with the connection's limits and behaviour `cfg`. The same shape as
    /// `wscope::tokio::WebSocketStream::from_raw_socket`.
    pub fn from_raw_socket(stream: S, role: Role, cfg: Config) -> Self {
        Self::from_partially_read(stream, &[], role, cfg)
    }

    /// [`Self::from_raw_socket`] for a stream of which `part` was read already: bytes after
    /// the handshake's head (the first frames), which the connection reads before `stream`.
    pub fn from_partially_read(stream: S, part: &[u8], role: Role, cfg: Config) -> Self {
        let opts = SessionOptions::new(cfg, None, DeflateOptions::default());
        let session = Session::open(role, opts, part, Agreed::default());
        Self::with_session(stream, session)
    }

    /// Runs a connection over `stream` with a session opened after the handshake
    /// ([`Session::open`]).
    pub(crate) fn with_session(stream: S, session: Session) -> Self {
        Self {
            stream,
            session,
            timeout_set: None,
            write_timeout_set: None,
            write_timeout: None,
            linger_until: None,
            done: false,
        }
    }

    /// Sets the write timeout: a write that makes no progress for this long fails with
    /// [`Error::Timeout`] (`None`: writes wait as long as the connection's timers allow).
    /// [`connect_with`] and [`accept`] set it from the configuration's `write_timeout`. Set it
    /// here rather than on the socket: [`Self::flush`] manages the socket's own write timeout
    /// (it also wakes up for the connection's timers).
    pub fn set_write_timeout(&mut self, t: Option<Duration>) {
        self.write_timeout = t;
    }

    /// The subprotocol agreed in the handshake.
    pub fn subprotocol(&self) -> Option<&str> {
        self.session.subprotocol()
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream underneath, mutably (reading or writing on it breaks the connection).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Where the closing handshake stands.
    pub fn state(&self) -> State {
        self.session.conn.state()
    }

    /// How the connection ended (`None` while open).
    pub fn close_status(&self) -> Option<&CloseStatus> {
        self.session.conn.close_status()
    }

    /// Sends a message and flushes.
    pub fn send(&mut self, msg: Message) -> Result<()> {
        self.feed(msg)?;
        self.flush()
    }

    /// Queues a message without flushing (call [`Self::flush`]; a read flushes too).
    pub fn feed(&mut self, msg: Message) -> Result<()> {
        self.check()?;
        if self.session.write_full() {
            self.flush()?;
        }
        self.session.send_message(msg)
    }

    /// Sends a message encoded once for many connections (see [`PreparedMessage`]) and
    /// flushes: a server queues the shared frame itself (no encoding, no copy).
    pub fn send_prepared(&mut self, msg: &PreparedMessage) -> Result<()> {
        self.feed_prepared(msg)?;
        self.flush()
    }

    /// Queues a message encoded once for many connections without flushing (call
    /// [`Self::flush`]).
    pub fn feed_prepared(&mut self, msg: &PreparedMessage) -> Result<()> {
        self.check()?;
        if self.session.write_full() {
            self.flush()?;
        }
        self.session.send_prepared(msg)
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<()> {
        self.send_borrowed(Outgoing::Text(text))
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<()> {
        self.send_borrowed(Outgoing::Binary(data))
    }

    /// Sends a ping (at most 125 bytes).
    pub fn send_ping(&mut self, data: &[u8]) -> Result<()> {
        self.send_borrowed(Outgoing::Ping(data))
    }

    /// Sends one frame of a fragmented message: `opcode` TEXT or BINARY for the first,
    /// CONTINUATION after; `fin` on the last.
    pub fn send_frame(&mut self, opcode: OpCode, payload: &[u8], fin: bool) -> Result<()> {
        self.check()?;
        self.session.send_data_frame(opcode, payload, fin)?;
        self.flush()
    }

    fn send_borrowed(&mut self, msg: Outgoing<'_>) -> Result<()> {
        self.check()?;
        self.session.send(msg)?;
        self.flush()
    }

    fn check(&self) -> Result<()> {
        if self.done {
            Err(Error::AlreadyClosed)
        } else {
            Ok(())
        }
    }

    /// Writes everything queued. While a write waits for the peer, the connection's timers
    /// run (keepalive, idle timeout, close timeout): a connection that has ended but whose
    /// peer does not take the last bytes is abandoned after the close timeout
    /// ([`Error::Timeout`], the queue dropped).
    pub fn flush(&mut self) -> Result<()> {
        if self.session.out.len() == 0 {
            return Ok(());
        }
        let mut progress_at = Clock::now_std();
        while self.session.out.len() > 0 {
            self.set_write_deadline(progress_at)?;
            let mut slices = [IoSlice::new(&[]); 16];
            let n = self.session.write_slices(&mut slices);
            // One slice: a plain write (a shorter path in the kernel than writev).
            let written = if n == 1 {
                self.stream.write(&slices[0])
            } else {
                self.stream.write_vectored(&slices[..n])
            };
            match written {
                Ok(0) => return Err(self.fail(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.session.out.advance(n);
                    progress_at = Clock::now_std();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    let now = Clock::now_std();
                    if self.linger_until.is_some_and(|t| now >= t) {
                        return Err(self.give_up());
                    }
                    // A timeout of the socket's own (not set here), or the write timeout.
                    if self.write_timeout_set.is_none()
                        || self.write_timeout.is_some_and(|t| now >= progress_at + t)
                    {
                        return Err(self.fail(e));
                    }
                    self.session.on_tick();
                    self.arm_linger();
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
        self.stream.flush().map_err(|e| self.fail(e))
    }

    /// Bounds the next write by the configured write timeout (counted from the last
    /// progress) and by the connection's next deadline.
    fn set_write_deadline(&mut self, progress_at: StdInstant) -> Result<()> {
        let deadlines = [
            self.session.deadline(),
            self.linger_until,
            self.write_timeout.map(|t| progress_at + t),
        ];
        let timeout = deadlines.into_iter().flatten().min().map(|d| {
            d.saturating_duration_since(Clock::now_std())
                .max(Duration::from_millis(1))
        });
        // Never set (and nothing to bound): leave the socket as it was given.
        let untouched = self.write_timeout_set.is_none() && timeout.is_none();
        if !untouched && self.write_timeout_set != Some(timeout) {
            self.stream
                .set_write_timeout(timeout)
                .map_err(|e| self.fail(e))?;
            self.write_timeout_set = Some(timeout);
        }
        Ok(())
    }

    /// The connection has ended (a keepalive timeout, a failure, a close) while bytes wait
    /// for a peer that does not read: the close timeout bounds the wait from now on.
    fn arm_linger(&mut self) {
        if self.linger_until.is_none() && self.session.conn.state() == State::Closed {
            let t = self.session.conn.config().close_timeout;
            self.linger_until = Some(Clock::now_std() + Duration::from_micros(t.as_micros()));
        }
    }

    /// Abandons a connection whose peer did not take its last bytes in time.
    fn give_up(&mut self) -> Error {
        self.done = true;
        self.session.out.clear();
        let _ = self.stream.shutdown();
        Error::Timeout
    }

    fn fail(&mut self, e: io::Error) -> Error {
        self.done = true;
        Error::from(e)
    }

    /// Receives the next whole message (or ping, pong, close). After the peer's close has
    /// been returned, the next call finishes the closing handshake and returns
    /// [`Error::ConnectionClosed`] (and [`Error::AlreadyClosed`] after that).
    pub fn read(&mut self) -> Result<Message> {
        loop {
            if let Some(m) = self.read_step(None)? {
                return Ok(m);
            }
        }
    }

    /// Like [`Self::read`], but gives up after `timeout` with `Ok(None)` (not an error; a
    /// message in progress is kept).
    pub fn read_timeout(&mut self, timeout: Duration) -> Result<Option<Message>> {
        let until = Clock::now_std() + timeout;
        loop {
            if let Some(m) = self.read_step(Some(until))? {
                return Ok(Some(m));
            }
            if Clock::now_std() >= until {
                return Ok(None);
            }
        }
    }

    fn read_step(&mut self, until: Option<StdInstant>) -> Result<Option<Message>> {
        self.check()?;
        match self.session.next_incoming() {
            Ok(Some(got)) => {
                let _ = self.flush();
                return Ok(Some(self.session.make_message(got)));
            }
            Ok(None) => {}
            Err(e) => return Err(self.fail_protocol(e)),
        }
        self.fill(until)?;
        Ok(None)
    }

    /// After a violation: send the queued close, end the transport.
    fn fail_protocol(&mut self, e: Error) -> Error {
        let _ = self.flush();
        let _ = self.stream.shutdown();
        self.done = true;
        e
    }

    /// One read from the transport, bounded by `until` and the core's timers.
    fn fill(&mut self, until: Option<StdInstant>) -> Result<()> {
        self.flush()?;
        if self.session.should_close() {
            let _ = self.stream.shutdown();
            self.done = true;
            return Err(self.end_error());
        }
        let deadline = match (until, self.session.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = deadline.map(|d| {
            d.saturating_duration_since(Clock::now_std())
                .max(Duration::from_millis(1))
        });
        if self.timeout_set != Some(timeout) {
            self.stream
                .set_read_timeout(timeout)
                .map_err(|e| self.fail(e))?;
            self.timeout_set = Some(timeout);
        }
        let r = self.stream.read(self.session.read_buf());
        match r.or_else(end_without_close_notify) {
            Ok(n) => {
                self.session.commit_read(n);
                if n == 0 {
                    let _ = self.flush();
                    let _ = self.stream.shutdown();
                    self.done = true;
                    return Err(self.end_error());
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(self.fail(e)),
        }
        self.session.on_tick();
        Ok(())
    }

    /// The error for a transport that ended: `Closed` after a closing handshake, otherwise
    /// an unexpected EOF.
    fn end_error(&self) -> Error {
        self.session.end_error().unwrap_or(Error::ConnectionClosed)
    }

    /// Partial receive with a timeout (`websock_recv` of the embedded-SDK-style API): copies
    /// as much of the next frame's payload as fits in `buf` and tells which frame it belongs
    /// to (fin, opcode, total payload length). The rest of a long frame comes on the next
    /// calls. Pings and closes are answered internally and also reported as
    /// [`Partial::Control`]. A timeout is `Ok(Partial::Timeout)`, not an error.
    ///
    /// Do not mix with [`Self::read`] in the middle of a message.
    pub fn recv_partial(&mut self, buf: &mut [u8], timeout: Duration) -> Result<Partial> {
        let until = Clock::now_std() + timeout;
        loop {
            self.check()?;
            match self.session.next_partial(buf) {
                Ok(Some(p)) => {
                    let _ = self.flush();
                    return Ok(p);
                }
                Ok(None) => {}
                Err(e) => return Err(self.fail_protocol(e)),
            }
            if Clock::now_std() >= until {
                let _ = self.flush();
                return Ok(Partial::Timeout);
            }
            self.fill(Some(until))?;
        }
    }

    /// Starts the closing handshake with `code` and `reason` (cut to 123 bytes on a character
    /// boundary) and waits, bounded by the close timeout, for the peer's close; then ends the
    /// transport. Messages that arrive meanwhile are dropped.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.start_close(Some(code), reason)?;
        self.finish_close()
    }

    /// Sends the close without waiting for the reply (read on to receive it).
    pub fn start_close(&mut self, code: Option<CloseCode>, reason: &str) -> Result<()> {
        self.check()?;
        self.session.close(code, reason)?;
        self.flush()
    }

    /// Reads until the closing handshake is over and the transport is closed.
    pub fn finish_close(&mut self) -> Result<()> {
        loop {
            match self.read() {
                Ok(_) => {}
                Err(Error::ConnectionClosed | Error::AlreadyClosed) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}
