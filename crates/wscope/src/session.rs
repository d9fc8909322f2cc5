//! The glue both drivers share: one [`Connection`] plus its input buffer, its write queue,
//! message assembly and the clock. No I/O happens here: a driver reads into
//! [`Session::read_buf`], calls [`Session::next_incoming`] until it returns `None`, writes
//! [`Session::write_slices`], and sleeps until [`Session::deadline`].
//!
//! No protocol rule lives here either: masking, limits, UTF-8, control frames and the closing
//! handshake are the core's; this file only moves bytes and owns buffers.

use core::time::Duration as StdDuration;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::time::Instant as StdInstant;

use wscope_proto::close::CloseReason;
use wscope_proto::connection::{Config, Connection, Event, MaskSource, Outgoing, SendError, State};
use wscope_proto::frame::{FrameHeader, MAX_HEADER_LEN};
use wscope_proto::mask::apply_mask;
use wscope_proto::role::Role;
use wscope_proto::{CloseCode, CloseFrame as WireCloseFrame, Input, Instant, OpCode, VecInput};

use wscope_proto::connection::DeflateOptions;

use crate::error::{Error, Result};
use crate::handshake::Agreed;
use crate::message::{CloseFrame, FrameInfo, Message, Partial};

/// Size of one socket read (and of the input buffer's first allocation).
pub(crate) const READ_CHUNK: usize = 64 * 1024;
/// Size of one socket read inside a large message.
const BIG_READ: usize = 256 * 1024;
/// Frames with at least this much payload left are read straight into the message.
#[cfg(any(feature = "tokio", all(target_os = "linux", feature = "io-uring")))]
const DIRECT_MIN: u64 = 32 * 1024;
/// ... unless the frame is larger than this: then its payload goes through the input buffer.
/// Measured on echoes of 16 MiB frames (the kernel's copy into a cold 16 MiB buffer is the
/// cost): reading 256 KiB pieces into the input buffer, which stays in cache, and copying
/// them on took 7.0-8.8 ms of server CPU per echo against 11.6-14.3 ms for direct reads; at
/// 1 MiB direct reads are still the cheaper (431-546 us against 464-714 us).
#[cfg(any(feature = "tokio", all(target_os = "linux", feature = "io-uring")))]
const DIRECT_MAX: u64 = 4 << 20;
/// Size of the read after a large message, which holds the next frame's header: kept short
/// because payload read into the input buffer is copied to the message buffer, while the
/// rest of a large frame is then read straight into it (a 256 KiB read here cost the copy of
/// a quarter of each 1 MiB echo).
const AFTER_BIG_READ: usize = 4 * 1024;
/// Messages from this size on are read with [`BIG_READ`].
const BIG_MESSAGE: u64 = 256 * 1024;
/// Payloads from this size on are queued by ownership instead of being copied.
const OWNED_MIN: usize = 16 * 1024;
/// Small write buffers kept for reuse.
const SMALL_BUF: usize = 16 * 1024;

/// Reads the clock for the core, which never does (time is data there).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    origin: StdInstant,
}

impl Clock {
    #[allow(clippy::disallowed_methods)] // drivers are where the clock is read
    pub(crate) fn new() -> Self {
        Self {
            origin: StdInstant::now(),
        }
    }

    #[allow(clippy::disallowed_methods)]
    pub(crate) fn now_std() -> StdInstant {
        StdInstant::now()
    }

    pub(crate) fn now(&self) -> Instant {
        self.core_instant(Self::now_std())
    }

    pub(crate) fn core_instant(self, t: StdInstant) -> Instant {
        let us = t.saturating_duration_since(self.origin).as_micros();
        Instant::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
    }

    pub(crate) fn std_instant(self, t: Instant) -> StdInstant {
        self.origin + StdDuration::from_micros(t.as_micros())
    }
}

/// How the random source is read (a test puts a failing one in).
type Fill = fn(&mut [u8]) -> core::result::Result<(), getrandom::Error>;

/// Set once the random source failed while masking keys were drawn: the session then fails
/// closed ([`Session::check_masks`]) instead of sending frames masked with a predictable key.
#[derive(Clone, Debug, Default)]
pub(crate) struct MaskFailure(std::sync::Arc<std::sync::OnceLock<getrandom::Error>>);

impl MaskFailure {
    /// The failure, if the random source failed.
    pub(crate) fn get(&self) -> Option<getrandom::Error> {
        self.0.get().copied()
    }
}

/// Masking keys from the operating system's random source, fetched 256 keys at a time.
pub(crate) struct OsMasks {
    pool: [u8; 1024],
    at: usize,
    fill: Fill,
    failure: MaskFailure,
}

impl OsMasks {
    /// A key source that reads the OS random source through `fill`, and the flag it sets
    /// when that fails.
    pub(crate) fn boxed(fill: Fill) -> (Box<dyn MaskSource>, MaskFailure) {
        let failure = MaskFailure::default();
        let masks = Self {
            pool: [0; 1024],
            at: 1024,
            fill,
            failure: failure.clone(),
        };
        (Box::new(masks), failure)
    }
}

impl MaskSource for OsMasks {
    fn next_mask(&mut self) -> [u8; 4] {
        if self.at + 4 > self.pool.len() {
            if let Err(e) = (self.fill)(&mut self.pool) {
                // No key an attacker cannot predict: the frame this key is for must never
                // leave. The session sees the flag before the bytes reach the write queue's
                // readers and fails the connection; the all-zero key is never sent.
                let _ = self.failure.0.set(e);
                return [0; 4];
            }
            self.at = 0;
        }
        let k = [
            self.pool[self.at],
            self.pool[self.at + 1],
            self.pool[self.at + 2],
            self.pool[self.at + 3],
        ];
        self.at += 4;
        k
    }
}

/// Fills `buf` from the OS random source; its failure is an error (never a weaker source).
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(Error::Random)
}

/// Bytes waiting to be written: small frames are appended to a shared buffer, large owned
/// payloads are queued as they are (a server's echo goes out as header + payload, no copy).
#[derive(Default)]
pub(crate) struct WriteQueue {
    segs: VecDeque<Vec<u8>>,
    head: usize,
    queued: usize,
    tail_open: bool,
    spare: Vec<Vec<u8>>,
    recycled: Vec<Vec<u8>>,
}

impl WriteQueue {
    /// Appends to the open small buffer; `f` writes into it.
    fn append<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        if !self.tail_open || self.segs.is_empty() {
            let buf = self
                .spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(SMALL_BUF));
            self.segs.push_back(buf);
            self.tail_open = true;
        }
        let Some(tail) = self.segs.back_mut() else {
            unreachable!("a segment was just pushed")
        };
        let before = tail.len();
        let r = f(tail);
        self.queued += tail.len() - before;
        r
    }

    /// Closes the open small buffer: whatever is appended from now on goes to a new segment,
    /// so the bytes queued so far are never moved or reallocated until [`Self::advance`]
    /// passes them. A completion-based driver calls this when it hands the pending slices to
    /// the kernel (the io_uring server), whose send reads them after the call returns.
    #[cfg(all(target_os = "linux", feature = "io-uring"))]
    pub(crate) fn seal(&mut self) {
        self.tail_open = false;
    }

    fn push_owned(&mut self, v: Vec<u8>) {
        if v.is_empty() {
            return;
        }
        self.queued += v.len();
        self.segs.push_back(v);
        self.tail_open = false;
    }

    /// Bytes still to write.
    pub(crate) const fn len(&self) -> usize {
        self.queued
    }

    /// Up to `dst.len()` slices of pending bytes, in order.
    pub(crate) fn slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (i, seg) in self.segs.iter().enumerate() {
            if n == dst.len() {
                break;
            }
            let s = if i == 0 { &seg[self.head..] } else { &seg[..] };
            if !s.is_empty() {
                dst[n] = IoSlice::new(s);
                n += 1;
            }
        }
        n
    }

    /// Marks `n` bytes as written.
    pub(crate) fn advance(&mut self, mut n: usize) {
        self.queued -= n.min(self.queued);
        while n > 0 {
            let Some(front) = self.segs.front() else {
                break;
            };
            let left = front.len() - self.head;
            if n < left {
                self.head += n;
                return;
            }
            n -= left;
            self.head = 0;
            self.pop_front();
        }
        while self.segs.front().is_some_and(|f| f.len() == self.head) {
            self.head = 0;
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some(mut seg) = self.segs.pop_front() {
            if self.segs.is_empty() {
                self.tail_open = false;
            }
            seg.clear();
            if seg.capacity() <= 4 * SMALL_BUF {
                if self.spare.len() < 2 {
                    self.spare.push(seg);
                }
            } else if self.recycled.len() < 2 {
                self.recycled.push(seg);
            }
        }
    }

    /// Drops everything queued, spare buffers included (the connection is abandoned).
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    /// A large buffer that was written out, for reuse as a receive buffer.
    fn take_recycled(&mut self) -> Option<Vec<u8>> {
        self.recycled.pop()
    }
}

/// What [`Session::next_incoming`] produced.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A whole data message is in [`Session::take_message`] (text or binary).
    Data(OpCode),
    /// A ping (answered already).
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// The peer's close (answered already).
    Close(Option<CloseFrame>),
}

/// Endpoint limits and timeouts a driver applies around the core.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub(crate) idle: Option<StdDuration>,
}

/// One WebSocket connection's buffers and state, I/O-free.
pub(crate) struct Session {
    pub(crate) conn: Connection,
    pub(crate) input: VecInput,
    pub(crate) out: WriteQueue,
    msg: Vec<u8>,
    /// The subprotocol agreed in the handshake.
    subprotocol: Option<String>,
    /// The frame a partial receive is in the middle of.
    partial: Option<FrameInfo>,
    /// Inflated payload of the current frame that did not fit the caller's buffer (partial
    /// receive with permessage-deflate, where one chunk of compressed input can inflate to
    /// more than the buffer holds): `partial_rest[partial_at..]` goes out first.
    partial_rest: Vec<u8>,
    partial_at: usize,
    /// The frame ends with the last of `partial_rest`.
    partial_rest_ends_frame: bool,
    /// The header of the control frame being collected (partial receive).
    control_info: Option<FrameInfo>,
    clock: Clock,
    idle: Option<StdDuration>,
    last_rx: StdInstant,
    /// The close was this glue's, for the idle timeout (not the application's).
    idle_closed: bool,
    /// Set when the masking keys' random source failed (client sessions).
    mask_failure: Option<MaskFailure>,
    /// The core pings a quiet peer: it is told when bytes arrive.
    keepalive: bool,
    eof: bool,
    /// The input was decoded to its end and nothing arrived since: decoding again would find
    /// nothing (the core's decoding depends on its input alone), so it is skipped.
    drained: bool,
    /// Largest write backlog before writers must wait.
    pub(crate) write_limit: usize,
    /// [`Self::flush_transmit`] leaves the core's replies (pongs, close replies) in the core
    /// while this many bytes or more wait in [`Self::out`]: the core bounds them (it answers
    /// only the latest pings beyond its limit), so a peer that sends pings and never reads
    /// cannot grow the write queue without bound. `usize::MAX` (the default): always move.
    pub(crate) hold_replies_over: usize,
    /// Inside a large message: read in bigger pieces.
    big: bool,
    /// A large message just ended: the next read is a short one (see [`AFTER_BIG_READ`]).
    after_big: bool,
    /// Payload bytes left in the current data frame (whole-message receive).
    frame_left: u64,
    /// The current data frame's payload length.
    frame_len: u64,
}

impl Session {
    pub(crate) fn new(
        mut conn: Connection,
        leftover: &[u8],
        timeouts: Timeouts,
        keepalive: bool,
    ) -> Self {
        let mut input = VecInput::with_capacity(READ_CHUNK);
        input.extend_from_slice(leftover);
        let clock = Clock::new();
        // Timers the core starts right away (keepalive) get their start time now.
        if conn.needs_time() {
            conn.handle_timeout(clock.now());
        }
        Self {
            conn,
            input,
            out: WriteQueue::default(),
            msg: Vec::new(),
            subprotocol: None,
            partial: None,
            partial_rest: Vec::new(),
            partial_at: 0,
            partial_rest_ends_frame: false,
            control_info: None,
            clock,
            idle: timeouts.idle,
            last_rx: Clock::now_std(),
            idle_closed: false,
            mask_failure: None,
            keepalive,
            eof: false,
            drained: false,
            write_limit: 128 * 1024,
            hold_replies_over: usize::MAX,
            big: false,
            after_big: false,
            frame_left: 0,
            frame_len: 0,
        }
    }

    /// The one way a driver starts a connection after its handshake: a session for `role`
    /// (client sessions mask with OS-random keys) with the bytes read after the handshake
    /// head (`leftover`), and what the handshake agreed (subprotocol, permessage-deflate,
    /// compressing with `deflate`).
    pub(crate) fn open(
        role: Role,
        cfg: Config,
        leftover: &[u8],
        timeouts: Timeouts,
        agreed: Agreed,
        deflate: DeflateOptions,
    ) -> Self {
        let mut s = match role {
            Role::Client => Self::client(cfg, leftover, timeouts),
            Role::Server => Self::server(cfg, leftover, timeouts),
        };
        if let Some(params) = agreed.deflate {
            s.conn.enable_deflate(params, deflate);
        }
        s.subprotocol = agreed.subprotocol;
        s
    }

    /// The subprotocol agreed in the handshake.
    pub(crate) fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// Takes the agreed subprotocol out (a driver that keeps it elsewhere).
    pub(crate) fn take_subprotocol(&mut self) -> Option<String> {
        self.subprotocol.take()
    }

    /// A server-side session.
    pub(crate) fn server(cfg: Config, leftover: &[u8], timeouts: Timeouts) -> Self {
        Self::new(
            Connection::server(cfg),
            leftover,
            timeouts,
            cfg.keepalive.is_some(),
        )
    }

    /// A client-side session with OS-random masking keys.
    pub(crate) fn client(cfg: Config, leftover: &[u8], timeouts: Timeouts) -> Self {
        Self::client_with(cfg, leftover, timeouts, getrandom::fill)
    }

    /// A client-side session whose masking keys come from `fill`.
    fn client_with(cfg: Config, leftover: &[u8], timeouts: Timeouts, fill: Fill) -> Self {
        let (masks, failure) = OsMasks::boxed(fill);
        let mut s = Self::new(
            Connection::client(cfg, masks),
            leftover,
            timeouts,
            cfg.keepalive.is_some(),
        );
        s.mask_failure = Some(failure);
        s
    }

    /// Fails closed when the random source failed while keys were drawn: everything queued
    /// is dropped (a frame masked without a proper key never leaves) and the error returned,
    /// now and on every later call.
    fn check_masks(&mut self) -> Result<()> {
        match self.mask_failure.as_ref().and_then(MaskFailure::get) {
            None => Ok(()),
            Some(e) => {
                self.out.clear();
                Err(Error::Random(e))
            }
        }
    }

    /// Where the next read goes: free bytes after the unconsumed input, `READ_CHUNK` of them
    /// (`BIG_READ` inside a large message, `AFTER_BIG_READ` right after one).
    pub(crate) fn read_buf(&mut self) -> &mut [u8] {
        let len = if self.big {
            BIG_READ
        } else if self.after_big {
            AFTER_BIG_READ
        } else {
            READ_CHUNK
        };
        let spare = self.input.spare(len);
        &mut spare[..len]
    }

    /// Records `n` bytes read into [`Self::read_buf`]; `0` means end of stream.
    pub(crate) fn commit_read(&mut self, n: usize) {
        if n == 0 {
            self.drained = false;
            self.eof = true;
            self.input.set_eof();
            self.conn.handle_eof();
        } else {
            self.input.commit(n);
            self.received();
        }
    }

    /// Appends bytes the driver received into a buffer of its own (the io_uring driver's
    /// provided buffers), as [`Self::commit_read`] records bytes read into [`Self::read_buf`].
    #[cfg(all(target_os = "linux", feature = "io-uring"))]
    pub(crate) fn push_input(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
        self.received();
    }

    /// A data message ended: after a large one the next read is short (see
    /// [`AFTER_BIG_READ`]), and reads are normal-sized again.
    fn message_ended(&mut self) {
        self.after_big = self.big;
        self.big = false;
    }

    /// Bookkeeping for bytes that arrived: decode again, the next read is a normal one, the
    /// idle timer restarts.
    fn received(&mut self) {
        self.drained = false;
        self.after_big = false;
        self.note_arrival();
    }

    /// Bytes arrived now: the idle timeout and the core's keepalive start over from here (the
    /// clock is read only when one of them is on).
    fn note_arrival(&mut self) {
        if self.idle.is_some() || self.keepalive {
            let now = Clock::now_std();
            self.last_rx = now;
            if self.keepalive {
                self.conn.handle_received_at(self.clock.core_instant(now));
            }
        }
    }

    /// Decodes buffered input until a message or control frame is complete (`Some`) or the
    /// input is used up (`None`: read more). Replies the core queued are moved to the write
    /// queue. A protocol violation is returned once, with the failing close already queued.
    pub(crate) fn next_incoming(&mut self) -> Result<Option<Incoming>> {
        if self.drained {
            self.flush_transmit();
            self.check_masks()?;
            return Ok(None);
        }
        let r = self.decode_loop();
        // Inflated data is in the message buffer now: the inflater's copy can go.
        self.conn.release_inflated();
        self.drained = matches!(r, Ok(None));
        // An answered keepalive ping restarts its interval from now.
        self.after_command();
        self.flush_transmit();
        self.check_masks()?;
        r
    }

    fn decode_loop(&mut self) -> Result<Option<Incoming>> {
        loop {
            let step = match self.conn.recv(self.input.buf_mut()) {
                Ok(step) => step,
                Err(e) => return Err(Error::Proto(e)),
            };
            let consumed = step.consumed;
            let got = match step.event {
                None => {
                    self.input.consume(consumed);
                    return Ok(None);
                }
                Some(Event::Frame(h)) => {
                    if h.opcode.is_data() && h.opcode != OpCode::CONTINUATION {
                        if self.msg.is_empty() && (self.msg.capacity() as u64) < h.payload_len {
                            if let Some(v) = self.out.take_recycled() {
                                if v.capacity() > self.msg.capacity() {
                                    self.msg = v;
                                }
                            }
                        }
                        // Never trust the declared size beyond what is sensible to hold now.
                        let want = h.payload_len.min(READ_CHUNK as u64 * 4) as usize;
                        self.msg.reserve(want);
                    }
                    if h.opcode.is_data() {
                        self.frame_left = h.payload_len;
                        self.frame_len = h.payload_len;
                        if h.payload_len >= BIG_MESSAGE {
                            self.big = true;
                        }
                    }
                    None
                }
                Some(Event::Data {
                    opcode,
                    chunk,
                    message_end,
                    ..
                }) => {
                    self.msg.extend_from_slice(chunk);
                    self.frame_left = self.frame_left.saturating_sub(chunk.len() as u64);
                    if message_end {
                        self.message_ended();
                    }
                    message_end.then_some(Incoming::Data(opcode))
                }
                Some(Event::Ping(p)) => Some(Incoming::Ping(p.to_vec())),
                Some(Event::Pong(p)) => Some(Incoming::Pong(p.to_vec())),
                Some(Event::Close(c)) => {
                    Some(Incoming::Close(c.as_ref().map(CloseFrame::from_wire)))
                }
            };
            self.input.consume(consumed);
            if let Some(got) = got {
                return Ok(Some(got));
            }
        }
    }

    /// When the input is empty and the current data frame has a large payload left: how many
    /// bytes a read may put straight into the message buffer (never past the frame's end),
    /// saving the copy from the input buffer.
    #[cfg(any(feature = "tokio", all(target_os = "linux", feature = "io-uring")))]
    pub(crate) fn direct_read_len(&self) -> Option<usize> {
        // Inflated data is not the wire bytes: with deflate on, everything goes through the
        // input buffer and the connection's decoder.
        if self.input.is_empty()
            && self.frame_left >= DIRECT_MIN
            && self.frame_len <= DIRECT_MAX
            && !self.conn.deflate_enabled()
        {
            // Room for the rest of the frame at once (at most DIRECT_MAX, and the decoder has
            // already held the frame to the message size limit): growing the buffer piece by
            // piece would copy what it holds on every reallocation (768 KiB more per 1 MiB
            // message), as a recycled buffer too small for this frame would.
            Some(self.frame_left as usize)
        } else {
            None
        }
    }

    /// Whether the latest data frame was large enough for direct reads: the driver then
    /// expects more of them and reads with one-shot receives, which can go straight into
    /// the message buffer (see [`Self::direct_read_len`]).
    #[cfg(all(target_os = "linux", feature = "io-uring"))]
    pub(crate) fn expects_large(&self) -> bool {
        self.frame_len >= DIRECT_MIN
    }

    /// Reads into the message buffer (see [`Self::direct_read_len`]).
    #[cfg(any(feature = "tokio", all(target_os = "linux", feature = "io-uring")))]
    pub(crate) fn direct_buf(&mut self, want: usize) -> &mut Vec<u8> {
        self.msg.reserve(want);
        &mut self.msg
    }

    /// Decodes bytes a direct read appended to the message buffer from `start` on: the core
    /// unmasks and checks them in place; they are payload of the current frame only.
    #[cfg(any(feature = "tokio", all(target_os = "linux", feature = "io-uring")))]
    pub(crate) fn commit_direct(&mut self, start: usize) -> Result<Option<Incoming>> {
        self.drained = false;
        self.note_arrival();
        let mut at = start;
        let mut done = None;
        while at < self.msg.len() {
            let step = match self.conn.recv(&mut self.msg[at..]) {
                Ok(step) => step,
                Err(e) => {
                    self.flush_transmit();
                    return Err(Error::Proto(e));
                }
            };
            if step.consumed == 0 {
                break;
            }
            at += step.consumed;
            if let Some(Event::Data {
                opcode,
                message_end,
                ..
            }) = step.event
            {
                self.frame_left = self.frame_left.saturating_sub(step.consumed as u64);
                if message_end {
                    self.message_ended();
                    done = Some(Incoming::Data(opcode));
                }
            }
        }
        // Anything not consumed (impossible by construction) is not payload: drop it.
        self.msg.truncate(at);
        Ok(done)
    }

    /// Bytes of the message assembled so far.
    #[cfg(any(feature = "tokio", all(target_os = "linux", feature = "io-uring")))]
    pub(crate) fn msg_len(&self) -> usize {
        self.msg.len()
    }

    /// Takes the assembled message bytes (after [`Incoming::Data`]).
    pub(crate) fn take_message(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.msg)
    }

    /// Swaps the assembled message with `buf` (cleared), so both buffers are reused.
    #[cfg(any(feature = "tokio", all(target_os = "linux", feature = "io-uring")))]
    pub(crate) fn swap_message(&mut self, buf: &mut Vec<u8>) {
        buf.clear();
        core::mem::swap(&mut self.msg, buf);
    }

    /// Converts an [`Incoming`] to an owned [`Message`].
    pub(crate) fn make_message(&mut self, got: Incoming) -> Message {
        match got {
            Incoming::Data(op) => {
                let data = self.take_message();
                if op == OpCode::TEXT {
                    match String::from_utf8(data) {
                        Ok(s) => Message::Text(s),
                        // Only reachable with UTF-8 validation turned off in the config.
                        Err(e) => Message::Binary(e.into_bytes()),
                    }
                } else {
                    Message::Binary(data)
                }
            }
            Incoming::Ping(p) => Message::Ping(p),
            Incoming::Pong(p) => Message::Pong(p),
            Incoming::Close(c) => Message::Close(c),
        }
    }

    /// Partial receive: like [`Self::next_incoming`] but hands out payload as it arrives,
    /// copied into `buf`, at most `buf.len()` bytes per call (`websock_recv` of the
    /// embedded-SDK-style API).
    pub(crate) fn next_partial(&mut self, buf: &mut [u8]) -> Result<Option<Partial>> {
        let r = self.partial_loop(buf);
        // Inflated data is in `buf` (or kept in `partial_rest`): the inflater's copy can go.
        self.conn.release_inflated();
        self.flush_transmit();
        self.check_masks()?;
        r
    }

    fn partial_loop(&mut self, buf: &mut [u8]) -> Result<Option<Partial>> {
        if let Some(piece) = self.partial_rest_piece(buf) {
            return Ok(Some(piece));
        }
        loop {
            if buf.is_empty() {
                if let Some(info) = self.partial {
                    return Ok(Some(Partial::Data {
                        info,
                        len: 0,
                        frame_end: false,
                    }));
                }
            }
            let input = self.input.buf_mut();
            let full = input.len();
            let limit = if self.partial.is_some() {
                full.min(buf.len())
            } else {
                full
            };
            let step = match self.conn.recv(&mut input[..limit]) {
                Ok(step) => step,
                Err(e) => return Err(Error::Proto(e)),
            };
            let consumed = step.consumed;
            let control_info = self.control_info;
            let got = match step.event {
                None => {
                    self.input.consume(consumed);
                    if limit < full {
                        continue;
                    }
                    return Ok(None);
                }
                Some(Event::Frame(h)) => {
                    let info = FrameInfo {
                        fin: h.fin,
                        opcode: h.opcode,
                        payload_len: h.payload_len,
                    };
                    if h.opcode.is_control() {
                        self.control_info = Some(info);
                    } else {
                        self.partial = Some(info);
                    }
                    None
                }
                Some(Event::Data {
                    chunk, frame_end, ..
                }) => {
                    let n = chunk.len().min(buf.len());
                    buf[..n].copy_from_slice(&chunk[..n]);
                    let info = self.partial.unwrap_or(FrameInfo {
                        fin: frame_end,
                        opcode: OpCode::CONTINUATION,
                        payload_len: 0,
                    });
                    // Only inflated chunks outgrow the buffer (the input given to the core
                    // is cut to its size): keep the rest for the next calls.
                    let rest = &chunk[n..];
                    let frame_end = if rest.is_empty() {
                        frame_end
                    } else {
                        self.partial_rest.clear();
                        self.partial_rest.extend_from_slice(rest);
                        self.partial_at = 0;
                        self.partial_rest_ends_frame = frame_end;
                        false
                    };
                    if frame_end {
                        self.partial = None;
                    }
                    // Compressed input that inflated to nothing yet: nothing to hand out.
                    (n > 0 || frame_end).then_some(Partial::Data {
                        info,
                        len: n,
                        frame_end,
                    })
                }
                Some(Event::Ping(p)) => Some(control_piece(control_info, OpCode::PING, p, buf)),
                Some(Event::Pong(p)) => Some(control_piece(control_info, OpCode::PONG, p, buf)),
                Some(Event::Close(c)) => {
                    let mut payload = [0u8; 125];
                    let n = c.map_or(0, |c| c.emit(&mut payload));
                    Some(control_piece(
                        control_info,
                        OpCode::CLOSE,
                        &payload[..n],
                        buf,
                    ))
                }
            };
            self.input.consume(consumed);
            if let Some(got) = got {
                return Ok(Some(got));
            }
        }
    }

    /// The next piece of inflated payload kept from an earlier call, if any.
    fn partial_rest_piece(&mut self, buf: &mut [u8]) -> Option<Partial> {
        let rest = &self.partial_rest[self.partial_at..];
        if rest.is_empty() {
            return None;
        }
        let info = self.partial?;
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.partial_at += n;
        let done = self.partial_at == self.partial_rest.len();
        if done {
            self.partial_rest.clear();
            self.partial_at = 0;
        }
        let frame_end = done && self.partial_rest_ends_frame;
        if frame_end {
            self.partial = None;
        }
        Some(Partial::Data {
            info,
            len: n,
            frame_end,
        })
    }

    /// Queues bytes that are not frames ahead of everything queued later: a server's `101`
    /// response, so it and the replies to frames that came with the request leave in one
    /// write (the io_uring server).
    #[cfg(all(target_os = "linux", feature = "io-uring"))]
    pub(crate) fn queue_raw(&mut self, bytes: &[u8]) {
        self.out.append(|buf| buf.extend_from_slice(bytes));
    }

    /// Moves the core's own frames (pongs, close replies) to the write queue (unless
    /// [`Self::hold_replies_over`] bytes already wait there).
    pub(crate) fn flush_transmit(&mut self) {
        if self.conn.has_pending_transmit() && self.out.len() < self.hold_replies_over {
            let conn = &mut self.conn;
            self.out.append(|buf| conn.poll_transmit(buf));
            // A keepalive ping or a reply masked without a proper key is dropped here.
            let _ = self.check_masks();
        }
    }

    /// Whether the write queue is over its limit (writers should flush first).
    pub(crate) fn write_full(&self) -> bool {
        self.out.len() >= self.write_limit
    }

    /// Queues any [`Message`]: text and binary by ownership ([`Self::send_vec`]), a close
    /// starts the closing handshake ([`Self::close`]), pings and pongs are copied. The one
    /// dispatch every driver's `send`/`feed` goes through.
    pub(crate) fn send_message(&mut self, msg: Message) -> Result<()> {
        match msg {
            Message::Text(t) => self.send_vec(OpCode::TEXT, &mut t.into_bytes()),
            Message::Binary(mut b) => self.send_vec(OpCode::BINARY, &mut b),
            Message::Close(Some(c)) => self.close(Some(c.code), &c.reason),
            Message::Close(None) => self.close(None, ""),
            other => self.send(other.outgoing()),
        }
    }

    /// Encodes a message (borrowed payload, copied into the write queue).
    pub(crate) fn send(&mut self, msg: Outgoing<'_>) -> Result<()> {
        let conn = &mut self.conn;
        self.out
            .append(|buf| conn.send(buf, msg))
            .map_err(send_error)?;
        self.after_command();
        self.check_masks()
    }

    /// Encodes a whole data message from an owned payload: a large payload is taken and
    /// queued as it is (masked in place by a client) instead of being copied; a small one is
    /// copied and `payload` is cleared, keeping its allocation for the caller.
    pub(crate) fn send_vec(&mut self, opcode: OpCode, payload: &mut Vec<u8>) -> Result<()> {
        // Compression needs the encoder's copy anyway; the zero-copy path is for plain frames.
        if payload.len() < OWNED_MIN || self.conn.deflate_enabled() {
            self.send_data_frame(opcode, payload, true)?;
            payload.clear();
            return Ok(());
        }
        let header = self
            .conn
            .data_header(opcode, payload.len() as u64, true)
            .map_err(send_error)?;
        self.check_masks()?;
        let mut payload = core::mem::take(payload);
        self.push_header(&header, &mut payload);
        self.out.push_owned(payload);
        Ok(())
    }

    fn push_header(&mut self, header: &FrameHeader, payload: &mut [u8]) {
        if let Some(key) = header.mask {
            apply_mask(payload, key, 0);
        }
        let mut h = [0u8; MAX_HEADER_LEN];
        let n = header.emit(&mut h);
        self.out.append(|buf| buf.extend_from_slice(&h[..n]));
    }

    /// Encodes one data frame (for fragmented sends): `opcode` TEXT/BINARY first, then
    /// CONTINUATION; `fin` ends the message.
    pub(crate) fn send_data_frame(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        fin: bool,
    ) -> Result<()> {
        let conn = &mut self.conn;
        self.out
            .append(|buf| conn.send_frame(buf, opcode, payload, fin))
            .map_err(send_error)?;
        self.check_masks()
    }

    /// Starts the closing handshake with `code` and `reason` (cut to 123 bytes), or with an
    /// empty close when `code` is `None`.
    pub(crate) fn close(&mut self, code: Option<CloseCode>, reason: &str) -> Result<()> {
        let frame = code.map(|code| WireCloseFrame {
            code,
            reason: CloseReason::truncating(reason).as_str(),
        });
        let conn = &mut self.conn;
        self.out
            .append(|buf| conn.close(buf, frame))
            .map_err(send_error)?;
        self.after_command();
        self.check_masks()
    }

    fn after_command(&mut self) {
        if self.conn.needs_time() {
            self.conn.handle_timeout(self.clock.now());
        }
    }

    /// Gives the core the time and applies the idle timeout; call after a wait ends.
    pub(crate) fn on_tick(&mut self) {
        let now_std = Clock::now_std();
        let now = self.clock.core_instant(now_std);
        if self.conn.needs_time() || self.conn.poll_timeout().is_some_and(|t| t <= now) {
            self.conn.handle_timeout(now);
        }
        if let Some(idle) = self.idle {
            if self.conn.state() == State::Open && now_std >= self.last_rx + idle {
                let conn = &mut self.conn;
                let frame = WireCloseFrame {
                    code: CloseCode::GOING_AWAY,
                    reason: "idle timeout",
                };
                let _ = self.out.append(|buf| conn.close(buf, Some(frame)));
                self.idle_closed = true;
                let _ = self.check_masks();
                self.after_command();
            }
        }
        self.flush_transmit();
    }

    /// When the driver must call [`Self::on_tick`] at the latest (core timers, idle timeout).
    pub(crate) fn deadline(&self) -> Option<StdInstant> {
        let core = self.conn.poll_timeout().map(|t| self.clock.std_instant(t));
        let idle = match (self.idle, self.conn.state()) {
            (Some(idle), State::Open) => Some(self.last_rx + idle),
            _ => None,
        };
        match (core, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// How a transport that ended is reported: `Timeout` when an unanswered keepalive ping
    /// failed the connection; `None` (a clean end) once the peer's close arrived, the
    /// connection was failed for a violation, or the application started the close;
    /// otherwise an unexpected EOF. All of it is read from the core's close status (a close
    /// this glue sent for the idle timeout is not the application's).
    pub(crate) fn end_error(&self) -> Option<Error> {
        if let Some(e) = self.mask_failure.as_ref().and_then(MaskFailure::get) {
            return Some(Error::Random(e));
        }
        let status = self.conn.close_status();
        if status.is_some_and(|s| s.keepalive_timed_out) {
            return Some(Error::Timeout);
        }
        let clean = self.conn.peer_close_received()
            || status
                .is_some_and(|s| s.failed.is_some() || (s.initiated_locally && !self.idle_closed));
        if clean {
            None
        } else {
            Some(Error::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed without a closing handshake",
            )))
        }
    }

    /// The transport should be closed now (after the write queue is flushed).
    pub(crate) fn should_close(&self) -> bool {
        self.mask_failure
            .as_ref()
            .is_some_and(|f| f.get().is_some())
            || self.conn.should_close_transport()
            || (self.eof && self.conn.state() == State::Closed)
    }

    /// Pending write bytes as slices (at most 16).
    pub(crate) fn write_slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.out.slices(dst)
    }
}

fn control_piece(
    info: Option<FrameInfo>,
    opcode: OpCode,
    payload: &[u8],
    buf: &mut [u8],
) -> Partial {
    let n = payload.len().min(buf.len());
    buf[..n].copy_from_slice(&payload[..n]);
    Partial::Control {
        info: info.unwrap_or(FrameInfo {
            fin: true,
            opcode,
            payload_len: payload.len() as u64,
        }),
        len: n,
    }
}

fn send_error(e: SendError) -> Error {
    match e {
        SendError::Closed => Error::Closed,
        e => Error::Send(e),
    }
}

#[cfg(all(test, target_os = "linux", feature = "io-uring"))]
mod tests {
    use super::*;

    /// Address and contents of the first pending slice.
    fn first(q: &WriteQueue) -> (usize, Vec<u8>) {
        let mut s = [IoSlice::new(&[]); 4];
        assert!(q.slices(&mut s) > 0);
        (s[0].as_ptr() as usize, s[0].to_vec())
    }

    #[test]
    fn sealed_bytes_stay_in_place_until_advanced() {
        let mut q = WriteQueue::default();
        q.append(|b| b.extend_from_slice(b"in flight"));
        let (at, bytes) = first(&q);
        q.seal();
        // Enough appends to reallocate the first segment many times over, were it still open.
        for _ in 0..2000 {
            q.append(|b| b.extend_from_slice(&[7; 100]));
        }
        q.push_owned(vec![9; 50_000]);
        assert_eq!(first(&q), (at, bytes));
        assert_eq!(q.len(), 9 + 2000 * 100 + 50_000);
        // A partial completion moves within the sealed segment; the rest is still in place.
        q.advance(3);
        assert_eq!(first(&q), (at + 3, b"flight".to_vec()));
        q.advance(6);
        assert_eq!(first(&q).1[0], 7);
    }
}

/// How large frames are read: the drivers' read sizes come from here.
#[cfg(all(test, feature = "tokio"))]
mod read_size_tests {
    use super::*;

    /// A masked binary frame of `len` bytes with a 64-bit length, as a client sends it.
    fn masked_frame(len: usize) -> Vec<u8> {
        let key = [1, 2, 3, 4];
        let mut wire = vec![0x82, 0xff];
        wire.extend_from_slice(&(len as u64).to_be_bytes());
        wire.extend_from_slice(&key);
        let mut payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        apply_mask(&mut payload, key, 0);
        wire.extend_from_slice(&payload);
        wire
    }

    /// Puts `bytes` where the next read would (the input buffer), as a driver's read does.
    fn read_into_input(s: &mut Session, bytes: &[u8]) {
        let buf = s.read_buf();
        assert!(
            bytes.len() <= buf.len(),
            "a read returns at most what it asked for"
        );
        buf[..bytes.len()].copy_from_slice(bytes);
        s.commit_read(bytes.len());
    }

    #[test]
    fn a_large_frame_is_read_whole_into_the_message_then_a_short_read_follows() {
        const LEN: usize = 1 << 20;
        let mut s = Session::server(Config::default(), &[], Timeouts { idle: None });
        assert_eq!(s.read_buf().len(), READ_CHUNK);
        let wire = masked_frame(LEN);
        // The first read holds the header and the start of the payload.
        read_into_input(&mut s, &wire[..READ_CHUNK]);
        assert!(s.next_incoming().expect("valid").is_none());
        // The rest of the frame goes straight into the message buffer, in one read's room.
        let left = wire.len() - READ_CHUNK;
        assert_eq!(s.direct_read_len(), Some(left));
        let msg = s.direct_buf(left);
        let start = msg.len();
        assert!(msg.capacity() - start >= left);
        msg.extend_from_slice(&wire[READ_CHUNK..]);
        let done = s.commit_direct(start).expect("valid");
        assert!(matches!(done, Some(Incoming::Data(OpCode::BINARY))));
        let got = s.take_message();
        assert_eq!(got.len(), LEN);
        assert!(got.iter().enumerate().all(|(i, &b)| b == i as u8));
        // Right after a large message, the next read is short (little to copy from the input
        // buffer if another large frame follows); the one after is a normal one.
        assert_eq!(s.read_buf().len(), AFTER_BIG_READ);
        read_into_input(&mut s, &[0x82, 0x81, 0, 0, 0, 0, 7]);
        assert!(matches!(
            s.next_incoming().expect("valid"),
            Some(Incoming::Data(OpCode::BINARY))
        ));
        assert_eq!(s.take_message(), [7]);
        assert_eq!(s.read_buf().len(), READ_CHUNK);
    }

    #[test]
    fn frames_over_the_direct_limit_are_read_through_the_input_buffer() {
        let mut s = Session::server(Config::default(), &[], Timeouts { idle: None });
        let mut wire = vec![0x82, 0xff];
        wire.extend_from_slice(&(DIRECT_MAX + 1).to_be_bytes());
        wire.extend_from_slice(&[0; 4]);
        wire.extend_from_slice(&[0; 100]);
        read_into_input(&mut s, &wire);
        assert!(s.next_incoming().expect("valid").is_none());
        // No message-sized reservation on the declared length: big reads into the input.
        assert_eq!(s.direct_read_len(), None);
        assert_eq!(s.read_buf().len(), BIG_READ);
    }
}

#[cfg(test)]
mod keepalive_tests {
    use super::*;
    use wscope_proto::keepalive::Keepalive;
    use wscope_proto::Duration;

    #[test]
    fn an_arrival_moves_the_next_keepalive_deadline_to_one_interval_after_it() {
        let ka = Keepalive {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        };
        let cfg = Config {
            keepalive: Some(ka),
            ..Config::default()
        };
        let mut s = Session::server(cfg, &[], Timeouts { idle: None });
        let first = s
            .conn
            .poll_timeout()
            .expect("armed when the session starts");
        // A pong arrives (masked, empty): the read is the arrival.
        s.read_buf()[..6].copy_from_slice(&[0x8a, 0x80, 0, 0, 0, 0]);
        s.commit_read(6);
        let after = s.clock.now();
        assert!(s.next_incoming().expect("a valid pong").is_some());
        // The check at the first deadline finds the arrival: the next deadline is one interval
        // after it (not one interval after the check, as without the arrival's time).
        s.conn.handle_timeout(first);
        let next = s.conn.poll_timeout().expect("re-armed");
        assert!(next <= after + ka.interval, "{next:?} after {after:?}");
        assert!(next < first + ka.interval, "{next:?} vs {first:?}");
    }
}

#[cfg(test)]
mod partial_tests {
    use super::*;
    use wscope_proto::connection::DeflateOptions;
    use wscope_proto::deflate::{DeflateParams, Deflater};

    #[test]
    fn partial_receive_of_a_compressed_message_loses_nothing() {
        let text: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut payload = Vec::new();
        Deflater::new(6, 15, false).compress(&text, true, &mut payload);
        let header = FrameHeader {
            rsv: wscope_proto::frame::RSV1,
            ..FrameHeader::new(true, OpCode::BINARY, None, payload.len() as u64)
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = header.emit(&mut head);
        let mut wire = head[..n].to_vec();
        wire.extend_from_slice(&payload);
        let mut s = Session::client(Config::default(), &wire, Timeouts { idle: None });
        s.conn
            .enable_deflate(DeflateParams::default(), DeflateOptions::default());
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        for _ in 0..10_000 {
            match s.next_partial(&mut buf).expect("valid") {
                Some(Partial::Data { len, frame_end, .. }) => {
                    got.extend_from_slice(&buf[..len]);
                    if frame_end {
                        break;
                    }
                }
                Some(other) => panic!("{other:?}"),
                None => break,
            }
        }
        assert_eq!(got.len(), text.len());
        assert!(got == text);
    }
}

/// The clean end comes from the core's close status alone.
#[cfg(test)]
mod end_tests {
    use super::*;

    fn unexpected_eof(s: &Session) -> bool {
        matches!(s.end_error(), Some(Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof)
    }

    #[test]
    fn an_end_without_any_close_is_unexpected() {
        let mut s = Session::server(Config::default(), &[], Timeouts { idle: None });
        s.commit_read(0);
        assert!(unexpected_eof(&s));
    }

    #[test]
    fn an_end_after_the_applications_close_is_clean() {
        let mut s = Session::server(Config::default(), &[], Timeouts { idle: None });
        s.close(Some(CloseCode::NORMAL), "bye").expect("open");
        s.commit_read(0);
        assert!(s.end_error().is_none());
    }

    #[test]
    fn an_end_after_a_peer_close_not_answered_yet_is_clean() {
        let cfg = Config {
            auto_close: false,
            ..Config::default()
        };
        // A masked close with 1000.
        let wire = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];
        let mut s = Session::server(cfg, &wire, Timeouts { idle: None });
        assert!(matches!(s.next_incoming(), Ok(Some(Incoming::Close(_)))));
        s.commit_read(0);
        assert!(s.end_error().is_none());
    }

    #[test]
    fn an_end_after_the_idle_close_without_a_reply_is_unexpected() {
        let mut s = Session::server(
            Config::default(),
            &[],
            Timeouts {
                idle: Some(StdDuration::ZERO),
            },
        );
        s.on_tick();
        assert_eq!(s.conn.state(), State::CloseSent);
        s.commit_read(0);
        assert!(unexpected_eof(&s));
    }
}

/// The one constructor after a handshake and the one message dispatch.
#[cfg(test)]
mod open_tests {
    use super::*;
    use wscope_proto::deflate::DeflateParams;

    #[test]
    fn open_applies_what_the_handshake_agreed() {
        let agreed = Agreed {
            subprotocol: Some("chat".into()),
            deflate: Some(DeflateParams::default()),
        };
        let s = Session::open(
            Role::Server,
            Config::default(),
            &[],
            Timeouts { idle: None },
            agreed,
            DeflateOptions::default(),
        );
        assert_eq!(s.subprotocol(), Some("chat"));
        assert!(s.conn.deflate_enabled());
        let plain = Session::open(
            Role::Client,
            Config::default(),
            &[],
            Timeouts { idle: None },
            Agreed::default(),
            DeflateOptions::default(),
        );
        assert_eq!(plain.subprotocol(), None);
        assert!(!plain.conn.deflate_enabled());
    }

    #[test]
    fn send_message_encodes_data_and_starts_the_close() {
        let mut s = Session::server(Config::default(), &[], Timeouts { idle: None });
        s.send_message(Message::Text("hi".into())).expect("open");
        s.send_message(Message::Ping(vec![1])).expect("open");
        s.send_message(Message::Close(None)).expect("open");
        assert_eq!(s.conn.state(), State::CloseSent);
        let mut sl = [IoSlice::new(&[]); 4];
        let n = s.write_slices(&mut sl);
        let wire: Vec<u8> = sl[..n].iter().flat_map(|x| x.to_vec()).collect();
        assert_eq!(wire, [0x81, 2, b'h', b'i', 0x89, 1, 1, 0x88, 0]);
        assert!(matches!(
            s.send_message(Message::Binary(vec![0])),
            Err(Error::Closed)
        ));
    }
}

/// A failing random source fails the connection; no frame leaves with a predictable key.
#[cfg(test)]
mod mask_tests {
    use super::*;

    fn broken(_: &mut [u8]) -> core::result::Result<(), getrandom::Error> {
        Err(getrandom::Error::UNSUPPORTED)
    }

    fn queued(s: &Session) -> usize {
        let mut sl = [IoSlice::new(&[]); 4];
        let n = s.write_slices(&mut sl);
        sl[..n].iter().map(|x| x.len()).sum()
    }

    #[test]
    fn a_failing_random_source_fails_closed() {
        let mut s = Session::client_with(Config::default(), &[], Timeouts { idle: None }, broken);
        assert!(matches!(
            s.send_message(Message::Text("secret".into())),
            Err(Error::Random(_))
        ));
        assert_eq!(
            queued(&s),
            0,
            "the frame masked with no proper key was dropped"
        );
        let mut big = vec![7u8; OWNED_MIN];
        assert!(matches!(
            s.send_vec(OpCode::BINARY, &mut big),
            Err(Error::Random(_))
        ));
        assert!(matches!(s.close(None, ""), Err(Error::Random(_))));
        assert_eq!(queued(&s), 0);
        assert!(s.should_close());
        assert!(matches!(s.end_error(), Some(Error::Random(_))));
    }

    #[test]
    fn a_working_random_source_masks_with_its_keys() {
        fn ones(b: &mut [u8]) -> core::result::Result<(), getrandom::Error> {
            b.fill(1);
            Ok(())
        }
        let mut s = Session::client_with(Config::default(), &[], Timeouts { idle: None }, ones);
        s.send_message(Message::Binary(vec![0, 0])).expect("sent");
        let mut sl = [IoSlice::new(&[]); 4];
        let n = s.write_slices(&mut sl);
        let wire: Vec<u8> = sl[..n].iter().flat_map(|x| x.to_vec()).collect();
        assert_eq!(wire, [0x82, 0x82, 1, 1, 1, 1, 1, 1]);
        assert!(!s.should_close());
    }
}
