//! A completion-based WebSocket server on Linux `io_uring` (feature `io-uring`), one thread
//! per server: an experiment in cutting the kernel's share of a server's CPU time by
//! submitting the sends and receives of many connections with one `io_uring_enter` and by
//! waiting without `epoll`.
//!
//! One thread runs [`UringServer::run`]: it accepts connections, reads each request through
//! the same handshake machine as the other servers (so the same `400`/`426`/`431` refusals
//! and the same handshake timeout), then drives a session (the same connection glue the other drivers use) per connection
//! and calls a [`Service`] once per complete data message. Every protocol rule stays in the
//! core; this module only moves bytes between the kernel and the sessions' buffers.
//!
//! ```no_run
//! use wscope::config::ServerConfig;
//! use wscope::uring::{Echo, UringServer};
//!
//! # fn main() -> std::io::Result<()> {
//! let server = UringServer::bind("127.0.0.1:9001", ServerConfig::default())?;
//! server.run(Echo)
//! # }
//! ```
//!
//! # One loop iteration
//!
//! 1. Drain the completion queue and apply every completion to its connection (commit the
//!    bytes a receive read, advance the write queue by what a send wrote, ...).
//! 2. Fire the timers that are due (handshake timeout, the core's close, keepalive and idle
//!    timers) and accept the connections waiting on the listener.
//! 3. Drive each connection touched by 1 or 2: decode its input, hand messages to the
//!    service, and queue its next receive and its next send.
//! 4. One `io_uring_enter`: submit everything queued and wait for at least one completion,
//!    at most until the earliest deadline.
//!
//! Accepting uses a one-shot poll on the listener followed by `accept` calls until
//! `WouldBlock` (so every descriptor is owned by a `TcpStream` from the start and no
//! `unsafe` is needed to adopt one); `EMFILE` and the like back off for 20 ms. Each accepted
//! socket is also put in the ring's registered file table (at its slot), so operations name
//! it without a file lookup; it is taken out again before the socket is closed.
//!
//! # Buffer lifetimes: what keeps the kernel's writes and reads in bounds
//!
//! A receive or send handed to `io_uring` keeps a raw pointer to user memory until its
//! completion is reaped, long after the call that queued it returned. Rust's borrow checker
//! cannot see that, so the driver keeps these rules (each one is checked where an entry is
//! pushed, in `ops.rs`):
//!
//! - **At most one receive and one send in flight per connection**, recorded in the
//!   connection's state (`recv` or `multi`, and `sending`) and cleared only when that
//!   completion arrives (for a multishot receive, its last one, without
//!   `IORING_CQE_F_MORE`).
//! - **One-shot receive target**: during the handshake, the connection's own 4 KiB request
//!   buffer; afterwards the session's input buffer as returned by `Session::read_buf`, or
//!   the reserved spare capacity of its message buffer for the rest of a large frame. While
//!   such a receive is in flight, nothing that can touch these buffers runs: no `read_buf`,
//!   `next_incoming` or `commit_read` (those run only after the completion), and the
//!   handshake phase does not change. Under TLS, the TLS layer's own ciphertext buffer
//!   (`tls.rs`) instead, taken only by the completion (a refusal's drain reads, thrown
//!   away, still use the request buffer).
//! - **Multishot receives** (open connections, between small frames) write only into the
//!   loop's ring of provided buffers (`buf_ring.rs`), never into a connection's memory, so
//!   decoding goes on while one is armed. A buffer named by a completion is the loop's
//!   until it is given back, right after its bytes are copied into the session's input
//!   (under TLS: after rustls has taken them).
//!   The ring is unregistered before its memory is freed, and leaked if a receive may
//!   still pick a buffer. The multishot receive is cancelled while the write queue is full
//!   (backpressure: no input piles up), when a large frame's rest can go straight into the
//!   message buffer, and when the connection ends.
//! - **Send source**: the write queue's pending segments (or, for a refusal, the response
//!   buffer). When the send is queued the write queue is *sealed*
//!   (`WriteQueue::seal`): frames the service or the core queue while the send is in flight
//!   go to new segments, so the bytes in flight are never appended to, reallocated or
//!   recycled. Segments are released only by `WriteQueue::advance`, called with the number
//!   of bytes the completion reports. The iovec array and message header of a vectored
//!   send live in the connection's boxed state, which does not move. Under TLS, the TLS
//!   layer's unsent ciphertext, which is gathered from rustls only while no send is in
//!   flight and advanced only by the completion's count.
//! - **Stable storage**: connection states are `Box`ed in a slab indexed by the slot number
//!   carried in each entry's `user_data`; the box is only taken out of the slab briefly to
//!   work on it (the heap memory it points to does not move).
//! - **Closing**: a connection being torn down has its socket shut down and its in-flight
//!   operations cancelled (`AsyncCancel`), and is only freed, with its buffers and its
//!   descriptor, once the completions of those operations (cancelled or not) have arrived.
//!   The completions of the cancel requests themselves carry no buffer and are ignored.
//! - **Dropping the loop** (return from `run`, or a panic in a service callback): the
//!   remaining connections are shut down and their operations cancelled, and the loop waits
//!   up to a second for their completions. Connections whose operations still have not
//!   completed are leaked on purpose (their memory is never freed, so the kernel can never
//!   write into memory that was given back to the allocator).
//!
//! The `unsafe` code is the push of a submission-queue entry, whose contract is exactly the
//! rules above (every push site carries a `SAFETY` comment), and the provided-buffer ring,
//! memory shared with the kernel (`buf_ring.rs`).
//!
//! # Limits
//!
//! permessage-deflate works as in the other drivers (the session does it). So does TLS
//! (`wss://`, with [`ServerConfig::tls`] set), with one difference: the kernel's receives and
//! sends carry ciphertext, which rustls decrypts into the session's input and encrypts from
//! its write queue, so the large-frame reads straight into the message buffer are off, and
//! every byte is copied once more each way than under the tokio driver's tokio-rustls
//! (into rustls from the received ciphertext, and out of rustls into the ciphertext to send:
//! rustls' buffered API keeps its records to itself, and a completion needs them in memory
//! that stays put until the send ends). A TLS failure (a bad handshake, a forged record)
//! sends rustls' alert and ends the connection (the service hears [`Error::Tls`]); a
//! connection that ends normally sends `close_notify` before its transport is closed.
//!
//! # More cores
//!
//! A server runs on one thread. For more, run one server per thread, each on its own
//! listener bound to the same address with `SO_REUSEPORT` ([`UringServer::bind_reuseport`]):
//! the kernel spreads new connections among the listeners by a hash of their addresses, so
//! threads share no state and no lock. A connection stays on the thread that accepted it.
//!
//! ```no_run
//! use wscope::config::ServerConfig;
//! use wscope::uring::{Echo, UringServer};
//!
//! # fn main() -> std::io::Result<()> {
//! let first = UringServer::bind_reuseport("127.0.0.1:9001".parse().unwrap(), ServerConfig::default())?;
//! let addr = first.local_addr()?; // the port, when 0 was asked for
//! let mut servers = vec![first];
//! for _ in 1..4 {
//!     servers.push(UringServer::bind_reuseport(addr, ServerConfig::default())?);
//! }
//! let threads: Vec<_> = servers
//!     .into_iter()
//!     .map(|s| std::thread::spawn(move || s.run(Echo)))
//!     .collect();
//! for t in threads {
//!     t.join().expect("a server panicked")?;
//! }
//! # Ok(())
//! # }
//! ```

mod accept;
mod buf_ring;
mod completions;
mod conn;
mod event_loop;
mod ops;
mod shutdown;
mod timers;
#[cfg(feature = "rustls")]
mod tls;
#[cfg(not(feature = "rustls"))]
#[path = "tls_disabled.rs"]
mod tls;

use core::net::SocketAddr;
use core::time::Duration;
use std::io;
use std::net::{TcpListener, ToSocketAddrs};
use std::os::unix::net::UnixStream;

use wscope_proto::connection::State;
use wscope_proto::CloseCode;

use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::handshake::{accept_all, Accept, Reject, Request};
use crate::limits::ConnectionLimits;
use crate::message::DataKind;
use crate::prepared::PreparedMessage;
use crate::session::Session;

/// What the application does with each connection of a [`UringServer`]. Callbacks run on
/// the server's thread, between two submissions: keep them short.
pub trait Service {
    /// Decides on an upgrade request (default: accept every request, no subprotocol).
    fn accept(&mut self, request: &Request) -> core::result::Result<Accept, Reject> {
        accept_all(request)
    }

    /// A connection is open (its `101` is queued); `conn` may already send.
    fn on_open(&mut self, conn: &mut Conn<'_>, request: &Request) {
        let _ = (conn, request);
    }

    /// A whole text or binary message arrived (pings are answered and the peer's close is
    /// replied to by the connection). `payload` may be taken (`core::mem::take`) or passed to
    /// [`Conn::feed_data`], which sends it without a copy when large; whatever is left in it
    /// is reused for the next message. An error closes the connection with 1011.
    fn on_message(
        &mut self,
        conn: &mut Conn<'_>,
        kind: DataKind,
        payload: &mut Vec<u8>,
    ) -> Result<()>;

    /// A connection that was opened has ended: `None` after a closing handshake (or one the
    /// application started), otherwise why it ended.
    fn on_close(&mut self, id: ConnId, error: Option<Error>) {
        let _ = (id, error);
    }

    /// A connection ended before its handshake completed (refused request, timeout, EOF).
    fn on_handshake_failed(&mut self, error: Error) {
        let _ = error;
    }
}

/// Echoes every text and binary message with its type (the `wscope serve --echo` service).
#[derive(Clone, Copy, Debug, Default)]
#[allow(
    clippy::exhaustive_structs,
    reason = "closed: a unit service, built as `Echo`"
)]
pub struct Echo;

impl Service for Echo {
    fn on_message(
        &mut self,
        conn: &mut Conn<'_>,
        kind: DataKind,
        payload: &mut Vec<u8>,
    ) -> Result<()> {
        match conn.feed_data(kind, payload) {
            // The peer started closing while we echoed: the connection ends by itself.
            Ok(()) | Err(Error::AlreadyClosed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Identifies a connection of a [`UringServer`] for as long as it lives (a slot number and
/// a generation, so an identifier is not reused right away).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    /// The identifier as a number (for logs).
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

/// One open connection, as a [`Service`] callback sees it: everything queued here is sent
/// after the callback returns, together with the other replies of the same loop iteration.
pub struct Conn<'a> {
    id: ConnId,
    session: &'a mut Session,
}

impl core::fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.id)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Conn<'_> {
    /// This connection's identifier.
    pub const fn id(&self) -> ConnId {
        self.id
    }

    /// Where the closing handshake stands.
    pub fn state(&self) -> State {
        self.session.conn.state()
    }

    /// Queues a text message (copied).
    pub fn send_text(&mut self, text: &str) -> Result<()> {
        self.session
            .send(wscope_proto::connection::Outgoing::Text(text))
    }

    /// Queues a binary message (copied).
    pub fn send_binary(&mut self, data: &[u8]) -> Result<()> {
        self.session
            .send(wscope_proto::connection::Outgoing::Binary(data))
    }

    /// Queues a ping (at most 125 bytes).
    pub fn send_ping(&mut self, data: &[u8]) -> Result<()> {
        self.session
            .send(wscope_proto::connection::Outgoing::Ping(data))
    }

    /// Queues a data message from an owned buffer: a large `payload` is taken and written
    /// out without a copy, a small one is copied and cleared (its allocation stays with the
    /// caller), as the tokio driver's `feed_data`.
    pub fn feed_data(&mut self, kind: DataKind, payload: &mut Vec<u8>) -> Result<()> {
        self.session.send_vec(kind.opcode(), payload)
    }

    /// Queues a message encoded once for many connections ([`PreparedMessage`]), as the
    /// tokio driver's `send_prepared`: the shared frame (or, with permessage-deflate and no
    /// server context takeover, the shared compressed frame) goes out without being encoded
    /// again, under the core's send rules ([`Error::AlreadyClosed`] after a close). Sent
    /// after the callback returns, like everything queued here: a welcome or a snapshot
    /// prepared once for every connection that opens, for instance.
    pub fn send_prepared(&mut self, msg: &PreparedMessage) -> Result<()> {
        self.session.send_prepared(msg)
    }

    /// Starts the closing handshake with `code` and `reason` (cut to 123 bytes); the
    /// connection ends when the peer replies or the close timeout runs out.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        self.session.close(Some(code), reason)
    }

    /// The write queue is over its limit (128 KiB): the server reads no more from this
    /// connection until the peer has taken some of it.
    pub fn is_write_full(&self) -> bool {
        self.session.write_full()
    }
}

/// Default number of submission-queue entries (the completion queue gets four times as many).
pub const DEFAULT_RING_ENTRIES: u32 = 1024;

/// The io_uring WebSocket server: a listener, a configuration and a ring size.
#[derive(Debug)]
pub struct UringServer {
    listener: TcpListener,
    cfg: ServerConfig,
    entries: u32,
    poll_first: bool,
    multishot: bool,
    register_files: bool,
    defer_taskrun: bool,
    stop: Option<UnixStream>,
    limits: Option<ConnectionLimits>,
}

impl UringServer {
    /// Serves on `listener` with `cfg` (with `cfg.tls` set: `wss://`).
    pub fn new(listener: TcpListener, cfg: ServerConfig) -> io::Result<Self> {
        Ok(Self {
            listener,
            cfg,
            entries: DEFAULT_RING_ENTRIES,
            poll_first: true,
            multishot: true,
            register_files: true,
            defer_taskrun: true,
            stop: None,
            limits: None,
        })
    }

    /// Binds a listener to `addr` and serves on it with `cfg`.
    pub fn bind(addr: impl ToSocketAddrs, cfg: ServerConfig) -> io::Result<Self> {
        Self::new(TcpListener::bind(addr)?, cfg)
    }

    /// Binds a listener to `addr` with `SO_REUSEPORT` (and `SO_REUSEADDR`) and serves on it
    /// with `cfg`: several servers bound this way to one address, each run on its own
    /// thread, share its connections (see "More cores" in the [module docs](self)). Bind
    /// the first to port 0 if you like, and the others to its [`Self::local_addr`].
    ///
    /// Linux lets only sockets of the same effective user join a port's group, and a socket
    /// bound without `SO_REUSEPORT` (by another program, say) makes the bind fail with
    /// `AddrInUse`, as usual.
    pub fn bind_reuseport(addr: SocketAddr, cfg: ServerConfig) -> io::Result<Self> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.bind(&addr.into())?;
        socket.listen(LISTEN_BACKLOG)?;
        Self::new(socket.into(), cfg)
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Sets the number of submission-queue entries (rounded up to a power of two by the
    /// kernel; default [`DEFAULT_RING_ENTRIES`]). A full queue is submitted early, so this
    /// bounds the batch size, not the number of connections.
    pub fn ring_entries(mut self, entries: u32) -> Self {
        self.entries = entries.max(8);
        self
    }

    /// Whether a receive waits for readiness before trying to read
    /// (`IORING_RECVSEND_POLL_FIRST`, default on): a server that has just drained a
    /// connection's input rarely finds more right away, so the first, failing attempt is
    /// skipped. Off: the kernel tries at once and waits only if nothing is there.
    pub fn recv_poll_first(mut self, on: bool) -> Self {
        self.poll_first = on;
        self
    }

    /// Whether open connections receive with one multishot receive each into a shared ring
    /// of provided buffers (default on; Linux 6.0+, silently off on older kernels): one
    /// submission per connection instead of one per read, and the readiness poll stays
    /// armed. The bytes are copied from the provided buffer into the session's input. Off:
    /// one-shot receives straight into the session's input. Either way, the rest of a large
    /// frame is received straight into the message buffer.
    pub fn recv_multishot(mut self, on: bool) -> Self {
        self.multishot = on;
        self
    }

    /// Whether each connection's socket is put in the ring's registered file table (default
    /// on; a sparse table of up to 16384 slots, smaller under a lower descriptor limit): the
    /// kernel then skips a file lookup and a reference count per operation. A connection past
    /// the table's size, or one the kernel refuses to register, uses its plain descriptor.
    pub fn register_files(mut self, on: bool) -> Self {
        self.register_files = on;
        self
    }

    /// Whether the ring is set up with `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN`
    /// (default on; Linux 6.1+, silently off on older kernels): completion work runs only
    /// when the loop waits, instead of interrupting it.
    pub fn defer_taskrun(mut self, on: bool) -> Self {
        self.defer_taskrun = on;
        self
    }

    /// Counts every accepted connection against `limits` (which several servers may share):
    /// one that would pass them is refused at once, before its request is read, with
    /// `503 Service Unavailable` (on a TLS port it is just closed), and the service hears
    /// [`Service::on_handshake_failed`] with [`HandshakeError::OverLimit`].
    ///
    /// [`HandshakeError::OverLimit`]: crate::HandshakeError::OverLimit
    pub fn connection_limits(mut self, limits: ConnectionLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// A handle that makes [`Self::run`] return: it closes every connection (without a
    /// closing handshake), waits for the kernel to give their buffers back, and returns
    /// `Ok(())`. Dropping the handle stops the server as well.
    pub fn stop_handle(&mut self) -> io::Result<StopHandle> {
        let (a, b) = UnixStream::pair()?;
        self.stop = Some(b);
        Ok(StopHandle(a))
    }

    /// Runs the server on this thread until a [`StopHandle`] stops it or the ring fails.
    /// Fails at once, with a message that says so, when the kernel refuses `io_uring`
    /// (too old, or disabled by `kernel.io_uring_disabled` or a seccomp filter).
    pub fn run<S: Service>(self, service: S) -> io::Result<()> {
        event_loop::EventLoop::new(self, service)?.run()
    }
}

/// Whether this kernel offers what [`UringServer::run`] needs (a ring, `IORING_FEAT_EXT_ARG`
/// and the receive, send, vectored send (`sendmsg`), poll and cancel operations); the error
/// says what is missing, as `run` would.
///
/// The test ring is made on a short-lived thread of its own: the kernel tears a ring down
/// asynchronously and then sends task work to each thread that used it, which makes a
/// blocking socket call with a timeout on that thread fail with `EINTR`. The caller's
/// thread is left alone.
pub fn supported() -> io::Result<()> {
    std::thread::scope(|s| {
        s.spawn(|| event_loop::build_ring(8, false).map(drop))
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the io_uring probe panicked")))
    })
}

/// Stops a running [`UringServer`] from another thread (see [`UringServer::stop_handle`]).
#[derive(Debug)]
pub struct StopHandle(UnixStream);

impl StopHandle {
    /// Asks the server to stop; returns at once (with an error once the server is gone).
    pub fn stop(&self) -> io::Result<()> {
        io::Write::write_all(&mut &self.0, &[STOP_NOW])
    }

    /// Asks the server to shut down gracefully: it stops accepting, closes every open
    /// connection with 1001 (going away), fails those still in their handshake, and
    /// returns from [`UringServer::run`] once every connection has ended (the clients'
    /// close replies) or `grace` has passed, whichever comes first (then as [`Self::stop`]).
    /// Returns at once.
    pub fn going_away(&self, grace: Duration) -> io::Result<()> {
        let ms = u32::try_from(grace.as_millis()).unwrap_or(u32::MAX);
        let mut msg = [STOP_GOING_AWAY, 0, 0, 0, 0];
        msg[1..].copy_from_slice(&ms.to_le_bytes());
        io::Write::write_all(&mut &self.0, &msg)
    }
}

/// [`StopHandle::stop`]'s message.
const STOP_NOW: u8 = 1;
/// [`StopHandle::going_away`]'s message, followed by the grace in milliseconds (`u32`, little
/// endian).
const STOP_GOING_AWAY: u8 = 2;
/// The listen backlog of [`UringServer::bind_reuseport`] (the kernel caps it at
/// `net.core.somaxconn`).
const LISTEN_BACKLOG: i32 = 1024;
/// How long accepting pauses after `EMFILE` and similar errors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
