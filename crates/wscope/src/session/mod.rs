//! The glue both drivers share: one [`Connection`] plus its input buffer, its write queue,
//! message assembly and the clock. No I/O happens here: a driver reads into
//! [`Session::read_buf`], calls [`Session::next_incoming`] until it returns `None`, writes
//! [`Session::write_slices`], and sleeps until [`Session::deadline`].
//!
//! No protocol rule lives here either: masking, limits, UTF-8, control frames, the closing
//! handshake and the timers (close, keepalive, idle) are the core's; these files only move
//! bytes, own buffers and read the clock the core is given.
//!
//! One file per job: [`clock`] (the clock the core is given), [`masks`] (masking keys from
//! the OS, failing closed), [`write_queue`], [`decode`] (whole-message receive and read
//! sizes), [`partial`] (partial receive), [`send`] (encoding and closing); this file holds
//! the session, its constructor after the handshake, the clock ticks and how it ends.

mod clock;
mod decode;
mod masks;
mod partial;
mod send;
#[cfg(test)]
mod tests;
mod write_queue;

use core::time::Duration as StdDuration;
use std::time::Instant as StdInstant;

use wscope_proto::connection::{Config, Connection, MaskSource, State};
use wscope_proto::role::Role;
use wscope_proto::{Instant, OpCode, VecInput};

pub(crate) use clock::Clock;
use decode::FIRST_READ;
pub(crate) use masks::fill_random;
use masks::{Fill, MaskFailure, OsMasks};
#[cfg(test)]
pub(crate) use send::OWNED_MIN;
pub(crate) use write_queue::WriteQueue;

use crate::config::{ClientConfig, DeflateOptions, ServerConfig};
use crate::error::{Error, Result};
use crate::handshake::Agreed;
use crate::message::{CloseFrame, FrameInfo};

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

/// What a session is opened with after the handshake: the core's settings, with the
/// endpoint's idle timeout folded in, and how sent messages are compressed once
/// permessage-deflate is agreed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionOptions {
    /// The core's settings.
    pub(crate) ws: Config,
    /// Compression of sent messages (with permessage-deflate agreed).
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(crate) deflate: DeflateOptions,
}

impl SessionOptions {
    /// `ws` with the endpoint's `idle` timeout, when set, in place of its own
    /// [`Config::idle_timeout`].
    pub(crate) fn new(mut ws: Config, idle: Option<StdDuration>, deflate: DeflateOptions) -> Self {
        if idle.is_some() {
            ws.idle_timeout = idle.map(Into::into);
        }
        Self { ws, deflate }
    }
}

impl From<&ClientConfig> for SessionOptions {
    fn from(cfg: &ClientConfig) -> Self {
        Self::new(cfg.ws, cfg.idle_timeout, cfg.session_deflate_options())
    }
}

impl From<&ServerConfig> for SessionOptions {
    fn from(cfg: &ServerConfig) -> Self {
        Self::new(cfg.ws, cfg.idle_timeout, cfg.session_deflate_options())
    }
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
    /// When the latest received bytes arrived: the time the core's `recv` is given.
    rx_at: Instant,
    /// Set when the masking keys' random source failed (client sessions).
    mask_failure: Option<MaskFailure>,
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
    /// A read has filled its buffer: reads are full-sized (see [`FIRST_READ`]).
    warm: bool,
    /// The length [`Self::read_buf`] handed out last.
    read_len: usize,
    /// Payload bytes left in the current data frame (whole-message receive).
    frame_left: u64,
    /// The current data frame's payload length.
    frame_len: u64,
}

impl Session {
    /// A session for a connection opened now (its timers start now), with `leftover` bytes
    /// already received; a client when `masks` is given.
    fn new(cfg: Config, masks: Option<Box<dyn MaskSource>>, leftover: &[u8]) -> Self {
        let mut input = VecInput::with_capacity(FIRST_READ);
        input.extend_from_slice(leftover);
        let clock = Clock::new();
        let now = clock.now();
        let conn = match masks {
            Some(masks) => Connection::client(cfg, masks, now),
            None => Connection::server(cfg, now),
        };
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
            rx_at: now,
            mask_failure: None,
            eof: false,
            drained: false,
            write_limit: 128 * 1024,
            hold_replies_over: usize::MAX,
            big: false,
            after_big: false,
            warm: false,
            read_len: usize::MAX,
            frame_left: 0,
            frame_len: 0,
        }
    }

    /// The one way a driver starts a connection after its handshake: a session for `role`
    /// (client sessions mask with OS-random keys) with `opts` (from the endpoint's config:
    /// `(&cfg).into()`), the bytes read after the handshake head (`leftover`), and what the
    /// handshake agreed (subprotocol, permessage-deflate).
    pub(crate) fn open(role: Role, opts: SessionOptions, leftover: &[u8], agreed: Agreed) -> Self {
        let mut s = match role {
            Role::Client => Self::client(opts.ws, leftover),
            Role::Server => Self::server(opts.ws, leftover),
        };
        #[cfg(feature = "deflate")]
        if let Some(params) = agreed.deflate {
            s.conn.enable_deflate(params, opts.deflate);
        }
        #[cfg(not(feature = "deflate"))]
        if let Some(never) = agreed.deflate {
            match never {}
        }
        s.subprotocol = agreed.subprotocol;
        s
    }

    /// The subprotocol agreed in the handshake.
    pub(crate) fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// Takes the agreed subprotocol out (a driver that keeps it elsewhere).
    #[cfg(feature = "blocking")]
    pub(crate) fn take_subprotocol(&mut self) -> Option<String> {
        self.subprotocol.take()
    }

    /// A server-side session.
    pub(crate) fn server(cfg: Config, leftover: &[u8]) -> Self {
        Self::new(cfg, None, leftover)
    }

    /// A client-side session with OS-random masking keys.
    pub(crate) fn client(cfg: Config, leftover: &[u8]) -> Self {
        Self::client_with(cfg, leftover, getrandom::fill)
    }

    /// A client-side session whose masking keys come from `fill`.
    fn client_with(cfg: Config, leftover: &[u8], fill: Fill) -> Self {
        let (masks, failure) = OsMasks::boxed(fill);
        let mut s = Self::new(cfg, Some(masks), leftover);
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

    /// Gives the core the time when one of its timers is due, and queues what it sent
    /// (a keepalive ping, the idle close, the keepalive's failing close); call after a wait
    /// ends.
    pub(crate) fn on_tick(&mut self) {
        let now = self.clock.now();
        if self.conn.poll_timeout().is_some_and(|t| t <= now) {
            self.conn.handle_timeout(now);
        }
        self.flush_transmit();
    }

    /// When the driver must call [`Self::on_tick`] at the latest (the core's timers: close,
    /// keepalive, idle).
    pub(crate) fn deadline(&self) -> Option<StdInstant> {
        self.conn.poll_timeout().map(|t| self.clock.std_instant(t))
    }

    /// How a transport that ended is reported: `Timeout` when an unanswered keepalive ping
    /// failed the connection; `None` (a clean end) once the peer's close arrived, the
    /// connection was failed for a violation, or the application started the close;
    /// otherwise an unexpected EOF. All of it is read from the core's close status (a close
    /// the core sent for the idle timeout is not the application's).
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
                .is_some_and(|s| s.failed.is_some() || (s.initiated_locally && !s.idle_timed_out));
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
}
