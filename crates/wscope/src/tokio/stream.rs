//! [`WebSocketStream`]: the tokio driver, a `Stream` of messages and a `Sink` of messages.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex};
use std::time::Instant as StdInstant;

use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wscope_proto::connection::{CloseStatus, Config, State};
use wscope_proto::{CloseCode, Role};

#[cfg(doc)]
use super::broadcast::Broadcast;
use super::broadcast::{Delivery, Member};
use crate::config::DeflateOptions;
use crate::error::{Error, Result};
use crate::handshake::Agreed;
pub use crate::message::DataKind;
use crate::message::{Message, Partial};
use crate::prepared::PreparedMessage;
use crate::session::{Clock, Incoming, Session, SessionOptions};
use crate::stream::end_without_close_notify;

/// What one poll of the receive side produced: a whole item, or a piece of a partial receive.
enum Got {
    Whole(Incoming),
    Piece(Partial),
}

/// Bytes one poll of the task may read before the stream yields to the runtime's other tasks.
/// tokio's own budget counts operations, and one read here can be a megabyte: without this,
/// a connection receiving large messages back to back holds the runtime's thread for as long
/// as its socket has data, and every other connection on that thread waits. Four connections
/// echoing 1 MiB messages on one thread: p99 8-16 ms and maxima to 40 ms without, p99
/// 4.3-5.1 ms with (tokio-websockets: 4.6-5.0 ms). A share of 256 KiB cost ~5% more CPU per echo
/// for no better tail; 1 MiB costs ~2%, within the machine's noise.
const FAIR_SHARE: usize = 1 << 20;

/// Slices given to one vectored write: a broadcast member's queue (512 KiB, see
/// `Session::broadcast_full`) of 1 KiB frames, each its own slice, in one system call
/// (Linux takes 1,024).
const WRITE_SLICES: usize = 512;

/// Queue fills that [`WebSocketStream::poll_next_with`] queues and writes in one poll (up to
/// 512 KiB each) before it lets the runtime's other tasks run.
const FAIR_ROUNDS: usize = 2;

/// The reading side's slot in [`TimerWakers`].
const READER: usize = 0;
/// The writing side's slot in [`TimerWakers`].
const WRITER: usize = 1;

/// The wakers of both halves, woken together by the connection's timer: it serves whichever
/// side waits (a reader, or a writer held up by a peer that does not read), and a tokio
/// `Sleep` keeps only the waker of its last poll.
#[derive(Default)]
struct TimerWakers {
    slots: Mutex<[Option<Waker>; 2]>,
}

impl TimerWakers {
    /// Records `waker` for `side` (unless it is the one already recorded).
    fn set(&self, side: usize, waker: &Waker) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if !slots[side].as_ref().is_some_and(|w| w.will_wake(waker)) {
            slots[side] = Some(waker.clone());
        }
    }
}

impl std::task::Wake for TimerWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        for w in slots.iter().flatten() {
            w.wake_by_ref();
        }
    }
}

/// One WebSocket connection over an async byte stream, after the handshake.
///
/// - As a [`Stream`] it yields whole messages (pings, pongs and the peer's close included;
///   pings and closes are already answered). It ends (`None`) once the transport is closed.
/// - As a [`Sink`] it takes messages. `feed` only encodes into the write queue; the queue is
///   written on `flush`, and also whenever the input is drained while reading, so replies
///   to pipelined requests leave in one write. `poll_ready` waits while the queue holds more
///   than its limit (128 KiB): backpressure, no unbounded queue.
/// - `futures_util::StreamExt::split` gives read and write halves.
/// - Connections that share a runtime thread take turns: a stream reads about 1 MiB at most
///   per poll of its task before it yields, however much its peer has sent.
/// - Timers (keepalive, idle timeout, close timeout) run whatever the I/O does: also while
///   reading waits for a peer that does not read our writes, and while a write waits. A
///   connection that has ended (a keepalive timeout, a failure, a close) but whose last bytes
///   the peer does not take is dropped, write queue and all, after the close timeout.
pub struct WebSocketStream<S> {
    io: S,
    pub(crate) session: Session,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    sleep_at: Option<StdInstant>,
    /// The wakers the timer wakes, and the waker it is polled with (made once).
    timer_wakers: Option<(Arc<TimerWakers>, Waker)>,
    /// The connection has ended but the peer does not take its last bytes: give up then.
    linger_until: Option<StdInstant>,
    /// A writer (Sink side) waiting for the queue to drain.
    write_waker: Option<Waker>,
    /// The transport is finished: the stream yields `None`, sends fail with `Closed`.
    done: bool,
    /// A protocol violation to report once the failing close is written.
    failure: Option<Error>,
    /// Bytes read since the task last returned `Pending` (see [`FAIR_SHARE`]).
    streak: usize,
}

impl<S> core::fmt::Debug for WebSocketStream<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WebSocketStream")
            .field("conn", &self.session.conn)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketStream<S> {
    /// Runs a connection over `io`, whose opening handshake is done already, as `role`, with
    /// the connection's limits and behaviour `cfg`. The same shape as
    /// [`crate::blocking::WebSocket::from_raw_socket`].
    pub fn from_raw_socket(io: S, role: Role, cfg: Config) -> Self {
        Self::from_partially_read(io, &[], role, cfg)
    }

    /// [`Self::from_raw_socket`] for a stream of which `part` was read already: bytes after
    /// the handshake's head (the first frames), which the connection reads before `io`.
    pub fn from_partially_read(io: S, part: &[u8], role: Role, cfg: Config) -> Self {
        let opts = SessionOptions::new(cfg, None, DeflateOptions::default());
        let session = Session::open(role, opts, part, Agreed::default());
        Self::with_session(io, session)
    }

    /// Runs a connection over `io` with a session opened after the handshake
    /// ([`Session::open`]).
    pub(crate) fn with_session(io: S, mut session: Session) -> Self {
        session.out.set_vectored(io.is_write_vectored());
        Self {
            io,
            session,
            sleep: None,
            sleep_at: None,
            timer_wakers: None,
            linger_until: None,
            write_waker: None,
            done: false,
            failure: None,
            streak: 0,
        }
    }

    /// The subprotocol agreed in the handshake.
    pub fn subprotocol(&self) -> Option<&str> {
        self.session.subprotocol()
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Where the closing handshake stands.
    pub fn state(&self) -> State {
        self.session.conn.state()
    }

    /// How the connection ended (`None` while open).
    pub fn close_status(&self) -> Option<&CloseStatus> {
        self.session.conn.close_status()
    }

    /// Writes the queue; `Ready(Ok)` once it is empty and the transport flushed.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut progressed = false;
        while self.session.out.len() > 0 {
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let n = self.session.write_slices(&mut slices);
            // One slice (small frames share a buffer): a plain write, which the kernel takes
            // by a shorter path than writev (`send` against `writev` on a TCP socket).
            let polled = if n == 1 {
                Pin::new(&mut self.io).poll_write(cx, &slices[0])
            } else {
                Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..n])
            };
            match polled {
                Poll::Ready(Ok(0)) => {
                    self.done = true;
                    return Poll::Ready(Err(Error::Io(io::ErrorKind::WriteZero.into())));
                }
                Poll::Ready(Ok(n)) => {
                    self.session.out.advance(n);
                    progressed = true;
                }
                Poll::Ready(Err(e)) => {
                    self.done = true;
                    self.wake_writer();
                    return Poll::Ready(Err(e.into()));
                }
                Poll::Pending => {
                    if progressed && !self.session.write_full() {
                        self.wake_writer();
                    }
                    return Poll::Pending;
                }
            }
        }
        if progressed {
            self.wake_writer();
        }
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => {
                self.done = true;
                Poll::Ready(Err(e.into()))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn wake_writer(&mut self) {
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }

    /// Polls for the next incoming item; `Ready(None)` when the transport has ended.
    fn poll_incoming(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming>>> {
        self.poll_got(cx, None).map(|got| {
            got.map(|r| {
                r.map(|g| match g {
                    Got::Whole(i) => i,
                    // Only a partial receive (a buffer given) hands out pieces.
                    Got::Piece(_) => unreachable!("no buffer, no pieces"),
                })
            })
        })
    }

    /// Polls for the next whole item, or with `partial` the next piece copied into it.
    fn poll_got(
        &mut self,
        cx: &mut Context<'_>,
        partial: Option<&mut [u8]>,
    ) -> Poll<Option<Result<Got>>> {
        let polled = self.poll_incoming_inner(cx, partial);
        if polled.is_pending() {
            self.streak = 0;
        }
        polled
    }

    fn poll_incoming_inner(
        &mut self,
        cx: &mut Context<'_>,
        mut partial: Option<&mut [u8]>,
    ) -> Poll<Option<Result<Got>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            if self.failure.is_some() {
                match self.poll_write_out(cx) {
                    // Written: end the transport (once the shutdown is through).
                    Poll::Ready(Ok(()))
                        if Pin::new(&mut self.io).poll_shutdown(cx).is_pending() =>
                    {
                        return Poll::Pending;
                    }
                    Poll::Pending if self.session.out.len() > 0 && !self.done => {
                        // The failing close waits behind bytes the peer does not take: for
                        // the close timeout at most.
                        self.arm_linger();
                        if self.poll_timer(cx, READER) {
                            if let Some(e) = self.on_timer() {
                                return Poll::Ready(Some(Err(e)));
                            }
                            continue;
                        }
                        return Poll::Pending;
                    }
                    _ => {}
                }
                self.done = true;
                self.wake_writer();
                return Poll::Ready(self.failure.take().map(Err));
            }
            // Replies the core queued wait while the write queue is over its limit.
            let over = self.session.write_full();
            let got = if over {
                Ok(None)
            } else {
                match partial.as_deref_mut() {
                    None => self.session.next_incoming().map(|g| g.map(Got::Whole)),
                    Some(buf) => self.session.next_partial(buf).map(|g| g.map(Got::Piece)),
                }
            };
            match got {
                Ok(Some(got)) => {
                    return Poll::Ready(Some(Ok(got)));
                }
                Ok(None) => {}
                Err(e) => {
                    // The failing close is queued: flush it (and any echoes before it), then
                    // end the transport, then report.
                    self.failure = Some(e);
                    continue;
                }
            }
            // Input drained: write what was queued (coalesced replies) before reading more.
            match self.poll_write_out(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Pending if self.session.write_full() => {
                    // Backpressure: do not read while the peer does not read our writes. The
                    // timers run meanwhile: a keepalive ping (queued behind the backlog) that
                    // goes unanswered, or the idle timeout, ends a peer that never reads.
                    self.arm_linger();
                    if self.poll_timer(cx, READER) {
                        if let Some(e) = self.on_timer() {
                            return Poll::Ready(Some(Err(e)));
                        }
                        continue;
                    }
                    return Poll::Pending;
                }
                Poll::Pending => self.arm_linger(),
            }
            if over && !self.session.write_full() {
                continue;
            }
            if self.session.should_close() && self.session.out.len() == 0 {
                match Pin::new(&mut self.io).poll_shutdown(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(_) => {
                        self.done = true;
                        self.wake_writer();
                        return match self.end_error() {
                            None => Poll::Ready(None),
                            Some(e) => Poll::Ready(Some(Err(e))),
                        };
                    }
                }
            }
            if self.poll_timer(cx, READER) {
                if let Some(e) = self.on_timer() {
                    return Poll::Ready(Some(Err(e)));
                }
                continue;
            }
            if self.streak >= FAIR_SHARE {
                // `yield_now` wakes the task only after the runtime has polled for I/O, so
                // the connections whose sockets became ready meanwhile run first.
                let _ = core::pin::pin!(tokio::task::yield_now()).poll(cx);
                return Poll::Pending;
            }
            // Direct reads fill the whole-message buffer: a partial receive reads through the
            // input buffer.
            if let Some(want) = self.session.direct_read_len().filter(|_| partial.is_none()) {
                let start = self.session.msg_len();
                let r = {
                    let msg = self.session.direct_buf(want);
                    let mut limited = bytes::BufMut::limit(msg, want);
                    let fut = tokio::io::AsyncReadExt::read_buf(&mut self.io, &mut limited);
                    let mut fut = core::pin::pin!(fut);
                    fut.as_mut().poll(cx)
                };
                match r.map(|r| r.or_else(end_without_close_notify)) {
                    // The end: the plain read below sees it again and reports it.
                    Poll::Ready(Ok(0)) => {}
                    Poll::Ready(Ok(n)) => {
                        self.streak += n;
                        match self.session.commit_direct(start) {
                            Ok(Some(got)) => return Poll::Ready(Some(Ok(Got::Whole(got)))),
                            Ok(None) => {}
                            Err(e) => self.failure = Some(e),
                        }
                        self.session.flush_transmit();
                        continue;
                    }
                    Poll::Ready(Err(e)) => {
                        self.lost();
                        return Poll::Ready(Some(Err(e.into())));
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            let buf = self.session.read_buf();
            let mut rb = ReadBuf::new(buf);
            let polled = Pin::new(&mut self.io).poll_read(cx, &mut rb);
            match polled.map(|r| {
                r.map(|()| rb.filled().len())
                    .or_else(end_without_close_notify)
            }) {
                Poll::Ready(Ok(n)) => {
                    self.streak += n;
                    self.session.commit_read(n);
                    if n == 0 {
                        let _ = self.poll_write_out(cx);
                        let _ = Pin::new(&mut self.io).poll_shutdown(cx);
                        self.done = true;
                        self.wake_writer();
                        return match self.end_error() {
                            None => Poll::Ready(None),
                            Some(e) => Poll::Ready(Some(Err(e))),
                        };
                    }
                }
                Poll::Ready(Err(e)) => {
                    self.lost();
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The transport failed while reading (a TCP reset, an HTTP/2 RST_STREAM): the connection
    /// is over without a closing handshake, which its status says (remote 1006, abnormal).
    fn lost(&mut self) {
        self.session.conn.handle_eof();
        self.done = true;
        self.wake_writer();
    }

    /// `None` when the connection ended after a closing handshake, else the error.
    fn end_error(&self) -> Option<Error> {
        self.session.end_error()
    }

    /// Arms the timer for the next deadline (the session's timers, the linger limit) and polls
    /// it on behalf of `side` ([`READER`] or [`WRITER`]); `true` when it has passed.
    fn poll_timer(&mut self, cx: &mut Context<'_>, side: usize) -> bool {
        let at = match (self.session.deadline(), self.linger_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(at) = at else {
            self.sleep = None;
            self.sleep_at = None;
            return false;
        };
        if self.sleep_at != Some(at) {
            let deadline = tokio::time::Instant::from_std(at);
            match self.sleep.as_mut() {
                Some(s) => s.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.sleep_at = Some(at);
        }
        let (wakers, waker) = self.timer_wakers.get_or_insert_with(|| {
            let wakers = Arc::new(TimerWakers::default());
            let waker = Waker::from(wakers.clone());
            (wakers, waker)
        });
        wakers.set(side, cx.waker());
        let mut timer_cx = Context::from_waker(waker);
        match self.sleep.as_mut() {
            Some(s) => s.as_mut().poll(&mut timer_cx).is_ready(),
            None => false,
        }
    }

    /// The timer fired: gives up on a connection whose last bytes the peer did not take
    /// within the close timeout (the error to report), or gives the session the time.
    fn on_timer(&mut self) -> Option<Error> {
        if self.linger_until.is_some_and(|t| Clock::now_std() >= t) {
            return Some(self.give_up());
        }
        self.session.on_tick();
        None
    }

    /// The connection has ended (failed, timed out, closed) while bytes still wait for a peer
    /// that does not read: from now on the close timeout bounds the wait for them.
    fn arm_linger(&mut self) {
        if self.linger_until.is_none()
            && self.session.out.len() > 0
            && (self.failure.is_some() || self.session.should_close())
        {
            let t = self.session.conn.config().close_timeout;
            self.linger_until =
                Some(Clock::now_std() + core::time::Duration::from_micros(t.as_micros()));
        }
    }

    /// Abandons a connection whose peer did not take its last bytes in time: the write queue
    /// is dropped (its memory freed now, not when the stream is), the transport is done.
    fn give_up(&mut self) -> Error {
        self.done = true;
        self.session.out.clear();
        let _ = Pin::new(&mut self.io).poll_shutdown(&mut Context::from_waker(Waker::noop()));
        self.wake_writer();
        self.failure.take().unwrap_or(Error::Timeout)
    }

    /// [`Self::poll_write_out`] for a writer: the timers run while it waits (see
    /// [`Self::poll_timer`]), so a peer that never reads cannot hold it forever.
    fn poll_write_timed(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        loop {
            match self.poll_write_out(cx) {
                Poll::Pending => {
                    self.arm_linger();
                    if self.poll_timer(cx, WRITER) {
                        if let Some(e) = self.on_timer() {
                            return Poll::Ready(Err(e));
                        }
                        continue;
                    }
                    return Poll::Pending;
                }
                ready => return ready,
            }
        }
    }

    /// Polls for the next data message, swapped into `buf` (whose old contents are dropped;
    /// both buffers are reused). Pings, pongs and the peer's close are handled internally.
    /// `Ready(None)` when the connection has ended.
    pub fn poll_recv_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<Option<Result<DataKind>>> {
        loop {
            match self.poll_incoming(cx) {
                Poll::Ready(Some(Ok(Incoming::Data(op)))) => {
                    self.session.swap_message(buf);
                    let kind = DataKind::from_opcode(op).unwrap_or(DataKind::Binary);
                    return Poll::Ready(Some(Ok(kind)));
                }
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Receives the next data message into `buf` (see [`Self::poll_recv_into`]): the
    /// allocation-free way to read, used by `wscope serve --echo`.
    pub async fn recv_into(&mut self, buf: &mut Vec<u8>) -> Option<Result<DataKind>> {
        core::future::poll_fn(|cx| self.poll_recv_into(cx, buf)).await
    }

    /// Polls for the next piece of what arrives, copied into `buf` as it arrives, without
    /// waiting for whole messages (the tokio form of
    /// [`crate::blocking::WebSocket::recv_partial`]): a data frame's payload comes in pieces
    /// of at most `buf.len()` bytes ([`Partial::Data`]; with permessage-deflate, inflated),
    /// a control frame whole ([`Partial::Control`]; pings and closes are answered).
    /// `Ready(None)` when the connection has ended; never [`Partial::Timeout`] (wrap the
    /// call in `tokio::time::timeout` for one). Do not mix with the `Stream` or
    /// [`Self::recv_into`] in the middle of a message.
    pub fn poll_recv_partial(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Option<Result<Partial>>> {
        self.poll_got(cx, Some(buf)).map(|got| {
            got.map(|r| {
                r.and_then(|g| match g {
                    Got::Piece(p) => Ok(p),
                    // A partial receive never assembles whole messages.
                    Got::Whole(_) => Err(Error::AlreadyClosed),
                })
            })
        })
    }

    /// Receives the next piece into `buf` (see [`Self::poll_recv_partial`]).
    pub async fn recv_partial(&mut self, buf: &mut [u8]) -> Option<Result<Partial>> {
        core::future::poll_fn(|cx| self.poll_recv_partial(cx, buf)).await
    }

    /// Queues a data message without flushing; `payload` is taken when large (written out
    /// without a copy) and cleared otherwise, so the caller can reuse it. Check
    /// [`Self::is_write_full`] (or use the `Sink`) for backpressure.
    pub fn feed_data(&mut self, kind: DataKind, payload: &mut Vec<u8>) -> Result<()> {
        if self.done {
            return Err(Error::AlreadyClosed);
        }
        self.session.send_vec(kind.opcode(), payload)
    }

    /// Queues a message encoded once for many connections (see [`PreparedMessage`]) without
    /// flushing: a server queues the shared frame itself (no encoding, no copy). Check
    /// [`Self::is_write_full`] for backpressure, or use [`Self::send_prepared`].
    pub fn feed_prepared(&mut self, msg: &PreparedMessage) -> Result<()> {
        if self.done {
            return Err(Error::AlreadyClosed);
        }
        self.session.send_prepared(msg)
    }

    /// Sends a message encoded once for many connections (see [`PreparedMessage`]): waits
    /// while the write queue is full, queues it ([`Self::feed_prepared`]) and flushes.
    pub async fn send_prepared(&mut self, msg: &PreparedMessage) -> Result<()> {
        core::future::poll_fn(|cx| Sink::<Message>::poll_ready(Pin::new(&mut *self), cx)).await?;
        self.feed_prepared(msg)?;
        self.flush_writes().await
    }

    /// Polls for the next message, as the `Stream` does, while delivering what `member`'s
    /// [`Broadcast`] publishes: the messages waiting for it are queued on this connection
    /// (through the same send rules as [`Self::feed_prepared`]) and written, as far as the
    /// write queue's limit allows, before and while reading. The task is woken by a
    /// publish only when the member had nothing waiting.
    ///
    /// `Ready(Some(Err(Error::Lagged { .. })))` when the member fell behind (the
    /// connection goes on; see [`Error::Lagged`]); `Ready(None)` when the connection has
    /// ended, and the member has left the group then (it also leaves once this side's close
    /// is queued: nothing is written after a close frame).
    pub fn poll_next_with(
        &mut self,
        cx: &mut Context<'_>,
        member: &mut Member,
    ) -> Poll<Option<Result<Message>>> {
        // Rounds of "queue up to the write limit, write it" in one poll before the task
        // yields (a peer that reads as fast as a publisher publishes from another thread
        // must not hold this runtime thread).
        let mut rounds = 0;
        loop {
            let delivery = if self.done {
                Delivery::Left
            } else {
                match member.deliver(&mut self.session, cx.waker()) {
                    Ok(Delivery::Lagged(missed)) => {
                        return Poll::Ready(Some(Err(Error::Lagged { missed })))
                    }
                    Ok(d) => d,
                    Err(e) => return Poll::Ready(Some(Err(e))),
                }
            };
            match self.poll_incoming(cx) {
                Poll::Ready(Some(Ok(got))) => {
                    return Poll::Ready(Some(Ok(self.session.make_message(got))))
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    member.leave();
                    return Poll::Ready(None);
                }
                // Written out to below the limit while more waits: queue the next part.
                Poll::Pending if delivery == Delivery::Full && !self.session.broadcast_full() => {
                    rounds += 1;
                    if rounds == FAIR_ROUNDS {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Receives the next message while delivering what `member`'s [`Broadcast`] publishes
    /// (see [`Self::poll_next_with`]): the loop of a connection in a pub/sub server.
    pub async fn next_with(&mut self, member: &mut Member) -> Option<Result<Message>> {
        core::future::poll_fn(|cx| self.poll_next_with(cx, member)).await
    }

    /// The write queue is over its limit: flush before queueing more.
    pub fn is_write_full(&self) -> bool {
        self.session.write_full()
    }

    /// Writes everything queued.
    pub async fn flush_writes(&mut self) -> Result<()> {
        core::future::poll_fn(|cx| self.poll_write_timed(cx)).await
    }

    /// Starts the closing handshake with `code` and `reason` (cut to 123 bytes) and flushes;
    /// keep reading to receive the peer's close and the end of the stream.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        if self.done {
            return Err(Error::AlreadyClosed);
        }
        self.session.close(Some(code), reason)?;
        self.flush_writes().await
    }

    fn encode(&mut self, msg: Message) -> Result<()> {
        if self.done {
            return Err(Error::AlreadyClosed);
        }
        self.session.send_message(msg)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocketStream<S> {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.poll_incoming(cx) {
            Poll::Ready(Some(Ok(got))) => Poll::Ready(Some(Ok(this.session.make_message(got)))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocketStream<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(Err(Error::AlreadyClosed));
        }
        if !this.session.write_full() {
            return Poll::Ready(Ok(()));
        }
        match this.poll_write_timed(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending if !this.session.write_full() => Poll::Ready(Ok(())),
            Poll::Pending => {
                this.write_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<()> {
        self.get_mut().encode(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        match this.poll_write_timed(cx) {
            Poll::Pending => {
                this.write_waker = Some(cx.waker().clone());
                Poll::Pending
            }
            r => r,
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        if !this.done && this.session.conn.can_send() {
            this.session.close(Some(CloseCode::NORMAL), "")?;
        }
        if this.done {
            return Poll::Ready(Ok(()));
        }
        match this.poll_write_timed(cx) {
            Poll::Pending => {
                this.write_waker = Some(cx.waker().clone());
                Poll::Pending
            }
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use tokio::io::AsyncWriteExt;
    use wscope_proto::keepalive::Keepalive;

    use super::*;

    /// A masked binary frame of `len` bytes (zero mask).
    fn masked_binary(len: usize) -> Vec<u8> {
        let mut f = vec![0x82, 0x80 | 127];
        f.extend_from_slice(&(len as u64).to_be_bytes());
        f.extend_from_slice(&[0; 4]);
        f.resize(f.len() + len, 0x5a);
        f
    }

    fn short_close_timeout() -> Config {
        Config::default().close_timeout(wscope_proto::Duration::from_millis(300))
    }

    fn with_keepalive() -> Config {
        short_close_timeout().keepalive(Some(Keepalive::new(
            wscope_proto::Duration::from_millis(200),
            wscope_proto::Duration::from_millis(200),
        )))
    }

    /// A peer that sends 1 MiB messages as fast as it can and never reads (through a 64 KiB
    /// pipe), kept open until the server drops its end.
    fn never_reading_peer() -> (tokio::io::DuplexStream, tokio::task::JoinHandle<()>) {
        let (server_io, mut client_io) = tokio::io::duplex(64 * 1024);
        let peer = tokio::spawn(async move {
            let frame = masked_binary(1 << 20);
            for _ in 0..64 {
                if client_io.write_all(&frame).await.is_err() {
                    break;
                }
            }
        });
        (server_io, peer)
    }

    /// `wscope serve --echo`'s loop against a peer that never reads: with a timer set, the
    /// server ends the connection within a bound (the timer fires although reading waits
    /// for the peer to read), and drops the echoes it could not write.
    async fn echo_ends_within(mut cfg: Config, idle: Option<Duration>) {
        let (server_io, peer) = never_reading_peer();
        if idle.is_some() {
            cfg.idle_timeout = idle.map(Into::into);
        }
        let mut ws = WebSocketStream::from_raw_socket(server_io, Role::Server, cfg);
        let echo = async {
            let mut buf = Vec::new();
            while let Some(got) = ws.recv_into(&mut buf).await {
                let kind = match got {
                    Ok(kind) => kind,
                    Err(e) => return Some(e),
                };
                if ws.is_write_full() {
                    if let Err(e) = ws.flush_writes().await {
                        return Some(e);
                    }
                }
                let _ = ws.feed_data(kind, &mut buf);
            }
            None
        };
        let ended = tokio::time::timeout(Duration::from_secs(5), echo)
            .await
            .expect("the connection was not ended");
        assert!(matches!(ended, Some(Error::Timeout)), "{ended:?}");
        // The echoed megabytes are freed with the connection's end.
        assert_eq!(ws.session.out.len(), 0);
        drop(ws);
        peer.await.unwrap();
    }

    #[tokio::test]
    async fn keepalive_ends_a_peer_that_sends_and_never_reads() {
        echo_ends_within(with_keepalive(), None).await;
    }

    #[tokio::test]
    async fn idle_timeout_ends_a_peer_that_sends_and_never_reads() {
        echo_ends_within(short_close_timeout(), Some(Duration::from_millis(200))).await;
    }

    #[tokio::test]
    async fn closing_towards_a_peer_that_never_reads_ends_after_the_close_timeouts() {
        // No keepalive, no idle timeout: the close's own timeout (then the linger) bounds it.
        let (server_io, _client_io) = tokio::io::duplex(64 * 1024);
        let mut ws =
            WebSocketStream::from_raw_socket(server_io, Role::Server, short_close_timeout());
        ws.feed_data(DataKind::Binary, &mut vec![7u8; 1 << 20])
            .unwrap();
        let r = tokio::time::timeout(Duration::from_secs(5), ws.close(CloseCode::NORMAL, "bye"))
            .await
            .expect("the close was not given up");
        assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
        assert_eq!(ws.session.out.len(), 0);
        assert_eq!(ws.state(), State::Closed);
    }

    /// Through the real handshake over a pipe: an idle connection with permessage-deflate
    /// agreed holds no zlib context on either side; a message allocates the contexts of the
    /// directions it crosses, kept with context takeover and freed after it without.
    #[cfg(feature = "deflate")]
    #[tokio::test]
    async fn negotiated_deflate_allocates_nothing_until_a_message() {
        use crate::config::{ClientConfig, DeflateConfig, ServerConfig};
        use wscope_proto::connection::DeflateMemory;
        for no_takeover in [false, true] {
            let (server_io, client_io) = tokio::io::duplex(1 << 20);
            let wishes = DeflateConfig::default()
                .server_no_context_takeover(no_takeover)
                .client_no_context_takeover(no_takeover);
            let ccfg = ClientConfig::new("localhost", 80).deflate(wishes);
            let scfg = ServerConfig::default().deflate(DeflateConfig::default());
            let (client, server) = tokio::join!(
                crate::tokio::client_handshake(client_io, &ccfg),
                crate::tokio::server_handshake(server_io, &scfg, crate::handshake::accept_all),
            );
            let (mut client, _) = client.unwrap();
            let (mut server, _) = server.unwrap();
            let idle = Some(DeflateMemory::default());
            assert_eq!(server.session.conn.deflate_memory(), idle);
            assert_eq!(client.session.conn.deflate_memory(), idle);
            let text = "hello hello hello, compressible hello".repeat(4);
            client
                .feed_data(DataKind::Text, &mut text.clone().into_bytes())
                .unwrap();
            client.flush_writes().await.unwrap();
            let mut buf = Vec::new();
            let kind = server.recv_into(&mut buf).await.unwrap().unwrap();
            assert_eq!((kind, &buf[..]), (DataKind::Text, text.as_bytes()));
            server.feed_data(DataKind::Text, &mut buf).unwrap();
            server.flush_writes().await.unwrap();
            let mut echo = Vec::new();
            client.recv_into(&mut echo).await.unwrap().unwrap();
            assert_eq!(echo, text.as_bytes());
            let held = server.session.conn.deflate_memory().unwrap();
            assert_eq!(held.inflate_context, !no_takeover, "{held:?}");
            assert_eq!(held.deflate_context, !no_takeover, "{held:?}");
            if no_takeover {
                assert_eq!(held.buffer_bytes, 0, "{held:?}");
            }
        }
    }

    #[tokio::test]
    async fn a_waiting_writer_runs_the_timers_too() {
        // Nobody reads the stream: only the writer's wait can notice the keepalive timeout.
        let (server_io, _client_io) = tokio::io::duplex(64 * 1024);
        let mut ws = WebSocketStream::from_raw_socket(server_io, Role::Server, with_keepalive());
        let send = async {
            for _ in 0..64 {
                ws.feed_data(DataKind::Binary, &mut vec![7u8; 1 << 20])?;
                ws.flush_writes().await?;
            }
            Ok::<(), Error>(())
        };
        let r = tokio::time::timeout(Duration::from_secs(5), send)
            .await
            .expect("the writer was not released");
        assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
        assert_eq!(ws.session.out.len(), 0);
        assert!(ws.close_status().is_some_and(|s| s.keepalive_timed_out));
    }
}
