//! The endpoint state machine: one WebSocket connection after its handshake, client or server.
//!
//! Methods fall into four groups, after quinn-proto's `Connection`:
//!
//! - **input**: [`Connection::recv`] takes received bytes and the time they arrived (same
//!   contract as [`MessageDecoder::decode`]: drop `consumed` bytes, call again until the event
//!   is `None`); [`Connection::handle_eof`] tells that the peer closed the transport;
//!   [`Connection::handle_timeout`] gives the current time.
//! - **commands**: [`Connection::send`], [`Connection::send_frame`], [`Connection::close`] encode
//!   frames into the caller's `Vec<u8>` (a client masks with keys from its [`MaskSource`]).
//!   Time is data, as in quinn-proto: the constructors, `recv` and `close`, which start timers,
//!   take the current time; no method needs the clock otherwise.
//! - **output**: [`Connection::poll_transmit`] hands out frames the connection queued itself
//!   (pongs, the close reply, the close that fails a connection); [`Connection::poll_timeout`]
//!   says when to call [`Connection::handle_timeout`] next.
//! - **state**: [`Connection::state`], [`Connection::close_status`],
//!   [`Connection::should_close_transport`].
//!
//! A driver's loop is: read → `recv` until `None` → `poll_transmit` → write → `handle_timeout`
//! → wait for readability or `poll_timeout`. Pings are answered and a close is replied to
//! automatically (configurable). A close from the peer is an [`Event::Close`], not an error; a
//! protocol violation is an `Err(ProtocolError)` after which the close carrying its code is
//! already queued for `poll_transmit`. The timers (close timeout, [`crate::keepalive`],
//! [`crate::idle`]) fire in `handle_timeout`; what they send waits in `poll_transmit`.
//!
//! One file per concern: this one holds the types, the constructors and the input side
//! ([`Connection::recv`]); `closing` the closing handshake, [`CloseStatus`] and the timers;
//! `send` frame encoding; `deflate` the permessage-deflate state.
//!
//! ```
//! use wscope_proto::connection::{Config, Connection, Event, Outgoing};
//! use wscope_proto::Instant;
//!
//! let now = Instant::ZERO;
//! let mut server = Connection::server(Config::default(), now);
//! let mut wire = vec![0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! let mut at = 0;
//! let mut text = Vec::new();
//! loop {
//!     let step = server.recv(now, &mut wire[at..]).unwrap();
//!     at += step.consumed;
//!     match step.event {
//!         Some(Event::Data { chunk, .. }) => text.extend_from_slice(chunk),
//!         Some(_) => {}
//!         None => break,
//!     }
//! }
//! assert_eq!(text, b"Hello");
//!
//! let mut out = Vec::new();
//! server.send(&mut out, Outgoing::Text("Hi")).unwrap();
//! assert_eq!(out, [0x81, 0x02, b'H', b'i']);
//! ```

mod closing;
#[cfg(feature = "deflate")]
mod deflate;
mod send;
#[cfg(test)]
mod tests;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use crate::close::{CloseCode, CloseFrameRef, CloseSendError};
use crate::decoder::{DecoderConfig, MaskRule, Step};
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode};
use crate::idle::IdleTimer;
use crate::keepalive::{Keepalive, KeepaliveTimer};
use crate::message::{AssemblerConfig, MessageDecoder, MessageEvent};
use crate::role::Role;
use crate::time::{Duration, Instant};

pub use closing::CloseStatus;
use closing::Wait;
#[cfg(feature = "deflate")]
use deflate::DeflateState;
#[cfg(feature = "deflate")]
pub use deflate::{DeflateMemory, DeflateOptions, SharedCompression, SharedSend};
#[cfg(feature = "deflate")]
pub(crate) use send::write_frame;

/// Where a client's masking keys come from. RFC 6455 section 5.3 asks for keys an attacker
/// cannot predict: std drivers back this with the operating system's random source.
pub trait MaskSource: Send {
    /// The key for the next frame.
    fn next_mask(&mut self) -> [u8; 4];
}

impl<F: FnMut() -> [u8; 4] + Send> MaskSource for F {
    fn next_mask(&mut self) -> [u8; 4] {
        self()
    }
}

/// Settings of a [`Connection`]: [`Config::default`], then the builder methods (one per
/// field, of the same name).
///
/// ```
/// use wscope_proto::connection::Config;
/// use wscope_proto::Duration;
///
/// let cfg = Config::default()
///     .max_message_len(1 << 20)
///     .close_timeout(Duration::from_secs(1));
/// assert_eq!(cfg.max_message_len, 1 << 20);
/// assert_eq!(cfg.max_frame_len, Config::default().max_frame_len);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest accepted frame payload (1009 beyond).
    pub max_frame_len: u64,
    /// Largest accepted message (1009 beyond).
    pub max_message_len: u64,
    /// Answer each ping with a pong carrying the same payload.
    pub auto_pong: bool,
    /// Answer the peer's close with a close echoing its status.
    pub auto_close: bool,
    /// How long to wait for the peer's close after sending ours, and (client) for the server
    /// to close the transport after the closing handshake.
    pub close_timeout: Duration,
    /// Validate incoming text as UTF-8.
    pub validate_utf8: bool,
    /// RSV bits a negotiated extension defines (RSV1 for permessage-deflate).
    pub extension_rsv: u8,
    /// At most this many bytes of automatic replies (pongs) wait for `poll_transmit`; beyond it
    /// pings are not answered until the queue drains (RFC 6455 allows answering only the latest).
    pub max_queued_replies: usize,
    /// Ping a peer that sent nothing for a while, fail (1011) one that does not answer
    /// ([`crate::keepalive`]); `None`: never.
    pub keepalive: Option<Keepalive>,
    /// Close (1001, "idle timeout") a connection on which nothing arrived for this long
    /// ([`crate::idle`]); `None`: never.
    pub idle_timeout: Option<Duration>,
}

/// Builder methods, one per field and of the same name: start from `Config::default()` (or a
/// constructor) and chain them; the struct is `#[non_exhaustive]`, so fields may be added without
/// breaking callers.
impl Config {
    /// Sets [`Config::max_frame_len`]: largest accepted frame payload (1009 beyond).
    #[must_use]
    pub const fn max_frame_len(mut self, max_frame_len: u64) -> Self {
        self.max_frame_len = max_frame_len;
        self
    }

    /// Sets [`Config::max_message_len`]: largest accepted message (1009 beyond).
    #[must_use]
    pub const fn max_message_len(mut self, max_message_len: u64) -> Self {
        self.max_message_len = max_message_len;
        self
    }

    /// Sets [`Config::auto_pong`]: answer each ping with a pong carrying the same payload.
    #[must_use]
    pub const fn auto_pong(mut self, auto_pong: bool) -> Self {
        self.auto_pong = auto_pong;
        self
    }

    /// Sets [`Config::auto_close`]: answer the peer's close with a close echoing its status.
    #[must_use]
    pub const fn auto_close(mut self, auto_close: bool) -> Self {
        self.auto_close = auto_close;
        self
    }

    /// Sets [`Config::close_timeout`]: how long to wait for the peer's close after sending ours,
    /// and (client) for the server to close the transport after the closing handshake.
    #[must_use]
    pub const fn close_timeout(mut self, close_timeout: Duration) -> Self {
        self.close_timeout = close_timeout;
        self
    }

    /// Sets [`Config::validate_utf8`]: validate incoming text as UTF-8.
    #[must_use]
    pub const fn validate_utf8(mut self, validate_utf8: bool) -> Self {
        self.validate_utf8 = validate_utf8;
        self
    }

    /// Sets [`Config::extension_rsv`]: RSV bits a negotiated extension defines (RSV1 for
    /// permessage-deflate).
    #[must_use]
    pub const fn extension_rsv(mut self, extension_rsv: u8) -> Self {
        self.extension_rsv = extension_rsv;
        self
    }

    /// Sets [`Config::max_queued_replies`]: at most this many bytes of automatic replies (pongs)
    /// wait for `poll_transmit`; beyond it pings are not answered until the queue drains (RFC 6455
    /// allows answering only the latest).
    #[must_use]
    pub const fn max_queued_replies(mut self, max_queued_replies: usize) -> Self {
        self.max_queued_replies = max_queued_replies;
        self
    }

    /// Sets [`Config::keepalive`]: ping a peer that sent nothing for a while, fail (1011) one that
    /// does not answer ([`crate::keepalive`]); `None`: never.
    #[must_use]
    pub const fn keepalive(mut self, keepalive: Option<Keepalive>) -> Self {
        self.keepalive = keepalive;
        self
    }

    /// Sets [`Config::idle_timeout`]: close (1001, "idle timeout") a connection on which nothing
    /// arrived for this long ([`crate::idle`]); `None`: never.
    #[must_use]
    pub const fn idle_timeout(mut self, idle_timeout: Option<Duration>) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }
}

impl Default for Config {
    /// 64 MiB frames and messages, automatic pong and close, 5 s close timeout, no keepalive,
    /// no idle timeout.
    fn default() -> Self {
        Self {
            max_frame_len: 64 << 20,
            max_message_len: 64 << 20,
            auto_pong: true,
            auto_close: true,
            close_timeout: Duration::from_secs(5),
            validate_utf8: true,
            extension_rsv: 0,
            max_queued_replies: 64 * 1024,
            keepalive: None,
            idle_timeout: None,
        }
    }
}

/// The connection's place in the closing handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Data flows both ways.
    Open,
    /// We sent a close and wait for the peer's.
    CloseSent,
    /// The peer sent a close that we have not answered (only with `auto_close` off).
    CloseReceived,
    /// The closing handshake is over, or the connection failed: close the transport once
    /// [`Connection::should_close_transport`] says so.
    Closed,
}

/// Something the peer sent.
#[derive(Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "the drivers of crates/wscope match every event; #[non_exhaustive] once they have a catch-all arm"
)]
pub enum Event<'a> {
    /// A frame header, for every frame: lets a partial-frame API report fin, opcode and length
    /// before the payload arrives. Most applications ignore it.
    Frame(FrameHeader),
    /// A piece of a text or binary message, as it arrives.
    Data {
        /// [`OpCode::TEXT`] or [`OpCode::BINARY`]: the message's first frame opcode.
        opcode: OpCode,
        /// The bytes, unmasked; for text, valid UTF-8 once the message is complete (a chunk may
        /// end inside a code point).
        chunk: &'a [u8],
        /// The first chunk of the message.
        first: bool,
        /// This chunk ends its frame.
        frame_end: bool,
        /// This chunk ends the message.
        message_end: bool,
    },
    /// A ping (already answered when `auto_pong` is on).
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// The peer's close: `None` when it carried no status (1005 locally). Already answered when
    /// `auto_close` is on.
    Close(Option<CloseFrameRef<'a>>),
}

/// A message or control frame to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outgoing<'a> {
    /// A whole text message in one frame.
    Text(&'a str),
    /// A whole binary message in one frame.
    Binary(&'a [u8]),
    /// A ping (payload at most 125 bytes).
    Ping(&'a [u8]),
    /// An unsolicited pong (payload at most 125 bytes).
    Pong(&'a [u8]),
}

/// Why something cannot be sent. These are mistakes of the local application, kept apart from
/// the peer's [`ProtocolError`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// A close was already sent (or the connection failed): no more frames may follow.
    Closed,
    /// A control frame payload over 125 bytes.
    ControlTooLong {
        /// The payload length given.
        len: usize,
    },
    /// The close code may not go on the wire.
    Close(CloseSendError),
    /// A continuation with no fragmented message open, or a new message while one is open.
    FragmentSequence,
    /// Not a data opcode (use the control variants of [`Outgoing`]).
    NotData {
        /// The opcode given.
        opcode: OpCode,
    },
    /// A message compressed elsewhere (RSV1) cannot go on this connection: permessage-deflate
    /// is not agreed, or this endpoint takes its compression context over between messages
    /// (RFC 7692 section 7.1.1), so only its own compressor's output decodes at the peer.
    NotShareable,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("the connection is closing or closed"),
            Self::ControlTooLong { len } => write!(f, "control payload of {len} bytes exceeds 125"),
            Self::Close(e) => e.fmt(f),
            Self::FragmentSequence => f.write_str("fragment out of sequence"),
            Self::NotData { opcode } => write!(f, "{opcode} is not a data opcode"),
            Self::NotShareable => f.write_str(
                "a message compressed once for many connections cannot go on this one (no \
                 permessage-deflate, or context takeover on our side)",
            ),
        }
    }
}

impl core::error::Error for SendError {}

impl From<CloseSendError> for SendError {
    fn from(e: CloseSendError) -> Self {
        Self::Close(e)
    }
}

/// One WebSocket connection, client or server, after the handshake.
pub struct Connection {
    decoder: MessageDecoder,
    core: Core,
}

/// Everything but the decoder, so replies can be queued while a received control payload is
/// still borrowed from the decoder.
struct Core {
    role: Role,
    cfg: Config,
    masks: Option<Box<dyn MaskSource>>,
    state: State,
    /// Encoded frames the connection queued itself.
    queued: VecDeque<u8>,
    sending: Option<OpCode>,
    status: Option<CloseStatus>,
    peer_close: Option<CloseStatus>,
    wait: Wait,
    eof: bool,
    keepalive: Option<KeepaliveTimer>,
    idle: Option<IdleTimer>,
    #[cfg(feature = "deflate")]
    deflate: Option<DeflateState>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.core.role)
            .field("state", &self.core.state)
            .field("queued", &self.core.queued.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A server-side connection (receives masked frames, sends unmasked ones), opened at
    /// `now` (the keepalive and idle timers start then).
    pub fn server(cfg: Config, now: Instant) -> Self {
        Self::new(Role::Server, cfg, None, now)
    }

    /// A client-side connection opened at `now`; `masks` provides a fresh masking key per
    /// frame.
    pub fn client(cfg: Config, masks: Box<dyn MaskSource>, now: Instant) -> Self {
        Self::new(Role::Client, cfg, Some(masks), now)
    }

    fn new(role: Role, cfg: Config, masks: Option<Box<dyn MaskSource>>, now: Instant) -> Self {
        let mut dcfg = DecoderConfig::new(MaskRule::for_direction(role.receives()));
        dcfg.max_frame_len = cfg.max_frame_len;
        let acfg = AssemblerConfig {
            max_message_len: cfg.max_message_len,
            extension_rsv: cfg.extension_rsv,
            validate_utf8: cfg.validate_utf8,
            control_chunks: false,
        };
        Self {
            decoder: MessageDecoder::new(dcfg, acfg),
            core: Core {
                role,
                cfg,
                masks,
                state: State::Open,
                queued: VecDeque::new(),
                sending: None,
                status: None,
                peer_close: None,
                wait: Wait::None,
                eof: false,
                keepalive: cfg.keepalive.map(|k| KeepaliveTimer::new(k, now)),
                idle: cfg.idle_timeout.map(|t| IdleTimer::new(t, now)),
                #[cfg(feature = "deflate")]
                deflate: None,
            },
        }
    }

    /// Client or server.
    pub const fn role(&self) -> Role {
        self.core.role
    }

    /// The settings.
    pub const fn config(&self) -> &Config {
        &self.core.cfg
    }

    /// Where the closing handshake stands.
    pub const fn state(&self) -> State {
        self.core.state
    }

    /// How the connection ended (`None` while open).
    pub fn close_status(&self) -> Option<&CloseStatus> {
        self.core.status.as_ref()
    }

    /// Whether the peer's close frame arrived (also when it is not answered yet, with
    /// `auto_close` off, and when the transport ended after it).
    pub fn peer_close_received(&self) -> bool {
        self.core.peer_close.is_some()
            || self
                .core
                .status
                .is_some_and(|s| s.remote != CloseCode::ABNORMAL)
    }

    /// Whether the connection may still send data frames.
    pub const fn can_send(&self) -> bool {
        matches!(self.core.state, State::Open | State::CloseReceived)
    }

    /// Whether permessage-deflate is on (then [`Self::data_header`] frames go uncompressed,
    /// and [`Self::send`]/[`Self::send_frame`] compress).
    pub fn deflate_enabled(&self) -> bool {
        #[cfg(feature = "deflate")]
        {
            self.core.deflate.is_some()
        }
        #[cfg(not(feature = "deflate"))]
        {
            false
        }
    }

    /// Frees, between messages, the inflated output the last [`Event::Data`] borrowed (all
    /// of it without context takeover, all but 32 KiB with it); [`Self::recv`] does it too
    /// when it is called next. A driver that has copied the data calls it so that a
    /// connection going idle after a message keeps nothing it does not need.
    pub fn release_inflated(&mut self) {
        #[cfg(feature = "deflate")]
        if let Some(d) = self.core.deflate.as_mut() {
            d.inflater.release();
        }
    }

    /// Decodes the next event from received bytes, which arrived at `now`: bytes used count
    /// as life for the keepalive and idle timers, and a close received (or a failure)
    /// starts a client's wait for the server to close the transport.
    ///
    /// Same contract as [`MessageDecoder::decode`]. After the peer's close, and after a
    /// failure, further input is ignored (consumed without events). A protocol violation
    /// returns `Err` once, with the failing close already queued for [`Self::poll_transmit`].
    pub fn recv<'a>(
        &'a mut self,
        now: Instant,
        buf: &'a mut [u8],
    ) -> Result<Step<Event<'a>>, ProtocolError> {
        // The inflated output of the previous call has been used: between messages, free it.
        self.release_inflated();
        if matches!(self.core.state, State::Closed | State::CloseReceived) {
            return Ok(Step {
                consumed: buf.len(),
                event: None,
            });
        }
        let step = match self.decoder.decode(buf) {
            Ok(step) => step,
            Err(e) => {
                self.core.fail(e, now);
                return Err(e);
            }
        };
        let consumed = step.consumed;
        if consumed > 0 {
            self.core.on_receive(now);
        }
        let event = match step.event {
            None => None,
            Some(MessageEvent::Frame(h)) => Some(Event::Frame(h)),
            #[cfg(feature = "deflate")]
            Some(MessageEvent::Data {
                opcode,
                compressed: true,
                chunk,
                first,
                frame_end,
                message_end,
            }) => {
                let Some(d) = self.core.deflate.as_mut() else {
                    self.core.fail(
                        ProtocolError::ReservedBits {
                            rsv: crate::frame::RSV1,
                        },
                        now,
                    );
                    return Err(ProtocolError::ReservedBits {
                        rsv: crate::frame::RSV1,
                    });
                };
                // The message layer decides (cap 1009, corrupt data and invalid text 1007).
                let text = opcode == OpCode::TEXT;
                if let Err(e) = d.inflater.push(chunk, text, first, message_end) {
                    self.core.fail(e, now);
                    return Err(e);
                }
                let chunk = self
                    .core
                    .deflate
                    .as_ref()
                    .map_or(&[][..], |d| d.inflater.output());
                Some(Event::Data {
                    opcode,
                    chunk,
                    first,
                    frame_end,
                    message_end,
                })
            }
            Some(MessageEvent::Data {
                opcode,
                chunk,
                first,
                frame_end,
                message_end,
                ..
            }) => Some(Event::Data {
                opcode,
                chunk,
                first,
                frame_end,
                message_end,
            }),
            // Never produced with `control_chunks: false` or in enforce mode; ignore defensively.
            Some(MessageEvent::ControlData { .. } | MessageEvent::Violation(_)) => None,
            Some(MessageEvent::Control(c)) => match c.opcode {
                OpCode::PING => {
                    if self.core.cfg.auto_pong && self.core.state == State::Open {
                        self.core.queue_control(OpCode::PONG, c.payload);
                    }
                    Some(Event::Ping(c.payload))
                }
                OpCode::PONG => Some(Event::Pong(c.payload)),
                _ => {
                    // The message layer has validated the close payload already.
                    let close = c.close().ok().flatten();
                    self.core.on_peer_close(close, now);
                    Some(Event::Close(close))
                }
            },
        };
        Ok(Step { consumed, event })
    }

    /// Tells that bytes arrived at `now` which [`Self::recv`] gets later (a driver that
    /// buffers input and decodes it when the application asks): they count as life for the
    /// keepalive and idle timers from their arrival on, as `recv` would count them. Optional
    /// for a driver that decodes what it reads at once.
    pub fn handle_received_at(&mut self, now: Instant) {
        if self.core.state == State::Open {
            self.core.on_receive(now);
        }
    }

    /// Moves frames the connection queued itself (pongs, close replies) into `out`; returns
    /// whether anything was written.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.core.queued.is_empty() {
            return false;
        }
        let (a, b) = self.core.queued.as_slices();
        out.extend_from_slice(a);
        out.extend_from_slice(b);
        self.core.queued.clear();
        true
    }

    /// Whether frames wait for [`Self::poll_transmit`].
    pub fn has_pending_transmit(&self) -> bool {
        !self.core.queued.is_empty()
    }
}

impl Core {
    /// Bytes arrived at `now`: the keepalive and idle timers count them as life.
    pub(super) fn on_receive(&mut self, now: Instant) {
        if let Some(k) = self.keepalive.as_mut() {
            k.on_receive(now);
        }
        if let Some(t) = self.idle.as_mut() {
            t.on_receive(now);
        }
    }
}
