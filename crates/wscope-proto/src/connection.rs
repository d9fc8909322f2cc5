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
//! - **state**: [`Connection::state`], [`Connection::close_status`], [`Connection::should_close_transport`].
//!
//! A driver's loop is: read → `recv` until `None` → `poll_transmit` → write → `handle_timeout`
//! → wait for readability or `poll_timeout`. Pings are answered and a close is replied to
//! automatically (configurable). A close from the peer is an [`Event::Close`], not an error; a
//! protocol violation is an `Err(ProtocolError)` after which the close carrying its code is
//! already queued for `poll_transmit`. The timers (close timeout, [`crate::keepalive`],
//! [`crate::idle`]) fire in `handle_timeout`; what they send waits in `poll_transmit`.
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

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use crate::close::{CloseCode, CloseFrame, CloseSendError, MAX_REASON_LEN};
use crate::decoder::{DecoderConfig, MaskRule, Step};
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use crate::idle::IdleTimer;
use crate::keepalive::{Keepalive, KeepaliveAction, KeepaliveTimer};
use crate::mask::apply_mask;
use crate::message::{AssemblerConfig, MessageDecoder, MessageEvent};
use crate::role::Role;
use crate::time::{Duration, Instant};

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

/// Settings of a [`Connection`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    Close(Option<CloseFrame<'a>>),
}

/// A message or control frame to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("the connection is closing or closed"),
            Self::ControlTooLong { len } => write!(f, "control payload of {len} bytes exceeds 125"),
            Self::Close(e) => e.fmt(f),
            Self::FragmentSequence => f.write_str("fragment out of sequence"),
            Self::NotData { opcode } => write!(f, "{opcode} is not a data opcode"),
        }
    }
}

impl core::error::Error for SendError {}

impl From<CloseSendError> for SendError {
    fn from(e: CloseSendError) -> Self {
        Self::Close(e)
    }
}

/// How the connection ended, once it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseStatus {
    /// The status the peer sent: `NO_STATUS` (1005) for an empty close, `ABNORMAL` (1006) when
    /// no close arrived.
    pub remote: CloseCode,
    /// The status we sent, if we sent a close.
    pub local: Option<CloseCode>,
    /// We sent the first close.
    pub initiated_locally: bool,
    /// We failed the connection because the peer broke the protocol.
    pub failed: Option<ProtocolError>,
    /// We failed the connection because the peer did not answer a keepalive ping (we sent
    /// 1011).
    pub keepalive_timed_out: bool,
    /// We started the close because nothing arrived for the idle timeout (we sent 1001).
    pub idle_timed_out: bool,
    reason: [u8; MAX_REASON_LEN],
    reason_len: u8,
}

impl CloseStatus {
    /// A status with no close received from the peer (yet): remote `ABNORMAL` (1006).
    const fn without_peer(local: Option<CloseCode>, initiated_locally: bool) -> Self {
        Self {
            remote: CloseCode::ABNORMAL,
            local,
            initiated_locally,
            failed: None,
            keepalive_timed_out: false,
            idle_timed_out: false,
            reason: [0; MAX_REASON_LEN],
            reason_len: 0,
        }
    }

    /// The reason the peer gave.
    pub fn remote_reason(&self) -> &str {
        crate::utf8::from_utf8(&self.reason[..usize::from(self.reason_len)]).unwrap_or("")
    }
}

/// The payload of keepalive pings.
const KEEPALIVE_PING: &[u8] = b"wscope keepalive";
/// The close reason sent when a keepalive ping goes unanswered.
const KEEPALIVE_TIMEOUT_REASON: &str = "keepalive timeout";
/// The close reason sent when nothing arrived for the idle timeout.
const IDLE_TIMEOUT_REASON: &str = "idle timeout";

/// The closing handshake's timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    None,
    Until(Instant),
    Expired,
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

/// Options for compressing outgoing messages once permessage-deflate is agreed.
#[cfg(feature = "deflate")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateOptions {
    /// zlib compression level, 0–9.
    pub level: u32,
    /// Messages shorter than this are sent uncompressed (RSV1 is per message).
    pub threshold: usize,
    /// zlib memLevel, 1–9: the compressor's literal buffers take `7 << (mem_level + 6)`
    /// bytes (see [`crate::deflate::DEFAULT_MEM_LEVEL`]). The window is negotiated
    /// ([`crate::deflate::DeflateConfig`]).
    pub mem_level: u8,
}

#[cfg(feature = "deflate")]
impl Default for DeflateOptions {
    /// Level 6, messages from 16 bytes on compressed, memLevel
    /// [`crate::deflate::DEFAULT_MEM_LEVEL`].
    fn default() -> Self {
        Self {
            level: 6,
            threshold: 16,
            mem_level: crate::deflate::DEFAULT_MEM_LEVEL,
        }
    }
}

/// What permessage-deflate holds in memory on a connection ([`Connection::deflate_memory`]).
/// Contexts are allocated by the first compressed message of their direction and freed after
/// each message when that direction's sender does not take its context over.
#[cfg(feature = "deflate")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeflateMemory {
    /// The decompression context for received messages is allocated.
    pub inflate_context: bool,
    /// The compression context for sent messages is allocated.
    pub deflate_context: bool,
    /// Bytes of reusable buffers (inflated output, compressed output) held.
    pub buffer_bytes: usize,
}

/// Per-connection permessage-deflate state.
#[cfg(feature = "deflate")]
struct DeflateState {
    /// Received messages: inflated within `max_message_len`, inflated text validated.
    inflater: crate::deflate::MessageInflater,
    deflater: crate::deflate::Deflater,
    options: DeflateOptions,
    /// The fragmented message being sent is compressed.
    sending_compressed: bool,
    /// We reset our compression context after each message (no context takeover).
    reset_sends: bool,
    /// Compressed output of the frame being sent, reused while small.
    scratch: Vec<u8>,
}

/// Compressed-output storage kept between messages with context takeover.
#[cfg(feature = "deflate")]
const SCRATCH_KEEP: usize = 16 * 1024;

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
        self.core.can_send()
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

    /// What permessage-deflate holds in memory now (`None` when it is off): an idle
    /// connection holds no zlib context until its first compressed message, and none between
    /// messages in a direction without context takeover.
    #[cfg(feature = "deflate")]
    pub fn deflate_memory(&self) -> Option<DeflateMemory> {
        self.core.deflate.as_ref().map(|d| DeflateMemory {
            inflate_context: d.inflater.has_context(),
            deflate_context: d.deflater.has_context(),
            buffer_bytes: d.inflater.capacity() + d.scratch.capacity(),
        })
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

    /// Turns on permessage-deflate with the parameters agreed in the handshake: received
    /// messages with RSV1 are inflated (the inflated size counts against `max_message_len`,
    /// 1009 beyond; corrupt data is 1007), and sent messages of at least `options.threshold`
    /// bytes are compressed.
    #[cfg(feature = "deflate")]
    pub fn enable_deflate(
        &mut self,
        params: crate::deflate::DeflateParams,
        options: DeflateOptions,
    ) {
        let role = self.core.role;
        let peer = match role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        self.core.deflate = Some(DeflateState {
            inflater: crate::deflate::MessageInflater::new(
                params.no_context_takeover(peer),
                self.core.cfg.max_message_len,
                self.core.cfg.validate_utf8,
                crate::decoder::Strictness::Enforce,
            ),
            deflater: crate::deflate::Deflater::new(
                options.level,
                params.window_bits(role),
                params.no_context_takeover(role),
            )
            .with_mem_level(options.mem_level),
            reset_sends: params.no_context_takeover(role),
            options,
            sending_compressed: false,
            scratch: Vec::new(),
        });
        let mut acfg = *self.decoder.config();
        acfg.extension_rsv |= crate::frame::RSV1;
        self.decoder.set_config(acfg);
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

    /// When [`Self::handle_timeout`] must be called next, if a timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    /// Whether the driver should now close the transport (after flushing `poll_transmit`): a
    /// server as soon as the connection is closed; a client once the server closed its side or
    /// the close timeout ran out.
    pub fn should_close_transport(&self) -> bool {
        self.core.should_close_transport()
    }

    /// Moves frames the connection queued itself (pongs, close replies) into `out`; returns
    /// whether anything was written.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        self.core.poll_transmit(out)
    }

    /// Whether frames wait for [`Self::poll_transmit`].
    pub fn has_pending_transmit(&self) -> bool {
        self.core.has_pending_transmit()
    }

    /// Encodes a message or control frame into `out`.
    pub fn send(&mut self, out: &mut Vec<u8>, msg: Outgoing<'_>) -> Result<(), SendError> {
        self.core.send(out, msg)
    }

    /// Encodes one data frame: `opcode` is TEXT or BINARY for a message's first frame and
    /// CONTINUATION after; `fin` ends the message. Sequencing is checked.
    ///
    /// For text the caller is responsible for the message being valid UTF-8 as a whole.
    pub fn send_frame(
        &mut self,
        out: &mut Vec<u8>,
        opcode: OpCode,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        self.core.send_frame(out, opcode, payload, fin)
    }

    /// Checks sequencing and builds the header of a data frame without writing its payload,
    /// for zero-copy vectored writes: a server writes the header, then the payload as it is; a
    /// client must first mask its payload with `header.mask` ([`crate::mask::apply_mask`],
    /// offset 0).
    pub fn data_header(
        &mut self,
        opcode: OpCode,
        len: u64,
        fin: bool,
    ) -> Result<FrameHeader, SendError> {
        // This path never compresses: it cannot continue a compressed fragmented message.
        #[cfg(feature = "deflate")]
        if opcode == OpCode::CONTINUATION
            && self
                .core
                .deflate
                .as_ref()
                .is_some_and(|d| d.sending_compressed)
        {
            return Err(SendError::FragmentSequence);
        }
        self.core.data_header(opcode, len, fin)
    }

    /// Sends a close (status and reason, or `None` for an empty payload) at `now` and starts
    /// the closing handshake: no data frame may follow, and the close timeout runs from
    /// `now`. Answering the peer's close when `auto_close` is off is done with this too.
    pub fn close(
        &mut self,
        now: Instant,
        out: &mut Vec<u8>,
        frame: Option<CloseFrame<'_>>,
    ) -> Result<(), SendError> {
        self.core.close(now, out, frame)
    }

    /// The peer closed its half of the transport (read returned 0).
    pub fn handle_eof(&mut self) {
        self.core.handle_eof();
    }

    /// Gives the current time: fires the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
    }
}

impl Core {
    const fn can_send(&self) -> bool {
        matches!(self.state, State::Open | State::CloseReceived)
    }

    /// Bytes arrived at `now`: the keepalive and idle timers count them as life.
    fn on_receive(&mut self, now: Instant) {
        if let Some(k) = self.keepalive.as_mut() {
            k.on_receive(now);
        }
        if let Some(t) = self.idle.as_mut() {
            t.on_receive(now);
        }
    }

    fn on_peer_close(&mut self, close: Option<CloseFrame<'_>>, now: Instant) {
        let mut status = CloseStatus {
            remote: close.map_or(CloseCode::NO_STATUS, |c| c.code),
            local: None,
            initiated_locally: self.state == State::CloseSent,
            failed: None,
            keepalive_timed_out: false,
            // The peer answered the close the idle timeout started.
            idle_timed_out: self.status.is_some_and(|s| s.idle_timed_out),
            reason: [0; MAX_REASON_LEN],
            reason_len: 0,
        };
        if let Some(c) = close {
            let n = c.reason.len().min(MAX_REASON_LEN);
            status.reason[..n].copy_from_slice(&c.reason.as_bytes()[..n]);
            status.reason_len = n as u8;
        }
        match self.state {
            State::CloseSent => {
                status.local = self.status.and_then(|s| s.local);
                self.status = Some(status);
                self.enter_closed(now);
            }
            _ => {
                if self.cfg.auto_close {
                    // Echo the status (RFC 6455 section 5.5.1); an empty close gets an empty one.
                    let code = close.map(|c| c.code);
                    self.queue_close(code.map(|code| CloseFrame { code, reason: "" }));
                    status.local = code;
                    self.status = Some(status);
                    self.enter_closed(now);
                } else {
                    self.peer_close = Some(status);
                    self.state = State::CloseReceived;
                }
            }
        }
    }

    fn fail(&mut self, e: ProtocolError, now: Instant) {
        if matches!(self.state, State::Open | State::CloseReceived) {
            let code = e.close_code();
            self.queue_close(Some(CloseFrame { code, reason: "" }));
            self.status = Some(CloseStatus {
                failed: Some(e),
                ..CloseStatus::without_peer(Some(code), true)
            });
        } else if let Some(s) = self.status.as_mut() {
            s.failed = Some(e);
        }
        self.enter_closed(now);
    }

    fn enter_closed(&mut self, now: Instant) {
        self.state = State::Closed;
        // A client waits (bounded) for the server to close the transport first.
        self.wait = if self.role.is_client() && !self.eof {
            Wait::Until(now + self.cfg.close_timeout)
        } else {
            Wait::None
        };
    }

    /// The peer closed its half of the transport (read returned 0).
    fn handle_eof(&mut self) {
        self.eof = true;
        if self.state != State::Closed {
            // After our close (`CloseSent`) the status says so already (no close from the
            // peer: 1006); otherwise there is none yet.
            if self.state != State::CloseSent || self.status.is_none() {
                self.status = Some(CloseStatus::without_peer(None, false));
            }
            self.state = State::Closed;
        }
        self.wait = Wait::None;
    }

    /// Gives the current time: fires the timers that are due.
    fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Open && self.idle.as_mut().is_some_and(|t| t.handle_timeout(now)) {
            self.close_idle(now);
        }
        if self.state == State::Open {
            let action = self
                .keepalive
                .as_mut()
                .map_or(KeepaliveAction::None, |k| k.handle_timeout(now));
            match action {
                KeepaliveAction::None => {}
                KeepaliveAction::SendPing => self.queue_control(OpCode::PING, KEEPALIVE_PING),
                KeepaliveAction::TimedOut => self.fail_unresponsive(now),
            }
        }
        match self.wait {
            Wait::Until(t) if now >= t => {
                self.wait = Wait::Expired;
                // No close from the peer: the status (remote 1006) stays as our close set it.
                if self.state == State::CloseSent {
                    self.state = State::Closed;
                }
            }
            _ => {}
        }
    }

    /// When [`Self::handle_timeout`] must be called next, if a timer runs.
    fn poll_timeout(&self) -> Option<Instant> {
        let close = match self.wait {
            Wait::Until(t) => Some(t),
            _ => None,
        };
        let (keepalive, idle) = match self.state {
            State::Open => (
                self.keepalive
                    .as_ref()
                    .and_then(KeepaliveTimer::poll_timeout),
                self.idle.as_ref().and_then(IdleTimer::poll_timeout),
            ),
            _ => (None, None),
        };
        [close, keepalive, idle].into_iter().flatten().min()
    }

    /// Nothing arrived for the idle timeout: start the closing handshake with 1001.
    fn close_idle(&mut self, now: Instant) {
        let code = CloseCode::GOING_AWAY;
        self.queue_close(Some(CloseFrame {
            code,
            reason: IDLE_TIMEOUT_REASON,
        }));
        self.status = Some(CloseStatus {
            idle_timed_out: true,
            ..CloseStatus::without_peer(Some(code), true)
        });
        self.state = State::CloseSent;
        self.wait = Wait::Until(now + self.cfg.close_timeout);
    }

    /// The keepalive ping went unanswered: close with 1011 and fail the connection.
    fn fail_unresponsive(&mut self, now: Instant) {
        let code = CloseCode::INTERNAL_ERROR;
        self.queue_close(Some(CloseFrame {
            code,
            reason: KEEPALIVE_TIMEOUT_REASON,
        }));
        self.status = Some(CloseStatus {
            keepalive_timed_out: true,
            ..CloseStatus::without_peer(Some(code), true)
        });
        self.enter_closed(now);
    }

    /// Whether the driver should now close the transport (after flushing `poll_transmit`): a
    /// server as soon as the connection is closed; a client once the server closed its side or
    /// the close timeout ran out.
    fn should_close_transport(&self) -> bool {
        self.state == State::Closed
            && self.queued.is_empty()
            && (!self.role.is_client()
                || self.eof
                || self.wait == Wait::Expired
                || self.wait == Wait::None)
    }

    /// Moves frames the connection queued itself (pongs, close replies) into `out`; returns
    /// whether anything was written.
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.queued.is_empty() {
            return false;
        }
        let (a, b) = self.queued.as_slices();
        out.extend_from_slice(a);
        out.extend_from_slice(b);
        self.queued.clear();
        true
    }

    /// Whether frames wait for [`Self::poll_transmit`].
    fn has_pending_transmit(&self) -> bool {
        !self.queued.is_empty()
    }

    fn queue_control(&mut self, opcode: OpCode, payload: &[u8]) {
        if opcode == OpCode::PONG && self.queued.len() + payload.len() > self.cfg.max_queued_replies
        {
            return;
        }
        let mut frame = Vec::with_capacity(MAX_HEADER_LEN + payload.len());
        self.encode(&mut frame, opcode, true, payload);
        self.queued.extend(frame);
    }

    /// Queues a close frame the core sends on its own (an echo, a failure, a keepalive
    /// timeout): its payload encoded by [`CloseFrame::emit`], empty for `None`.
    fn queue_close(&mut self, close: Option<CloseFrame<'_>>) {
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let n = close.map_or(0, |c| c.emit(&mut payload));
        self.queue_control(OpCode::CLOSE, &payload[..n]);
    }

    fn next_mask(&mut self) -> Option<[u8; 4]> {
        match (self.role, self.masks.as_mut()) {
            (Role::Client, Some(m)) => Some(m.next_mask()),
            (Role::Client, None) => Some([0; 4]),
            (Role::Server, _) => None,
        }
    }

    fn encode(&mut self, out: &mut Vec<u8>, opcode: OpCode, fin: bool, payload: &[u8]) {
        let header = FrameHeader::new(fin, opcode, self.next_mask(), payload.len() as u64);
        write_frame(out, &header, payload);
    }

    /// Encodes a message or control frame into `out`.
    fn send(&mut self, out: &mut Vec<u8>, msg: Outgoing<'_>) -> Result<(), SendError> {
        match msg {
            Outgoing::Text(t) => self.send_frame(out, OpCode::TEXT, t.as_bytes(), true),
            Outgoing::Binary(b) => self.send_frame(out, OpCode::BINARY, b, true),
            Outgoing::Ping(p) => self.send_control(out, OpCode::PING, p),
            Outgoing::Pong(p) => self.send_control(out, OpCode::PONG, p),
        }
    }

    fn send_control(
        &mut self,
        out: &mut Vec<u8>,
        opcode: OpCode,
        payload: &[u8],
    ) -> Result<(), SendError> {
        if !self.can_send() {
            return Err(SendError::Closed);
        }
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlTooLong { len: payload.len() });
        }
        self.encode(out, opcode, true, payload);
        Ok(())
    }

    /// Encodes one data frame: `opcode` is TEXT or BINARY for a message's first frame and
    /// CONTINUATION after; `fin` ends the message. Sequencing is checked.
    ///
    /// For text the caller is responsible for the message being valid UTF-8 as a whole.
    fn send_frame(
        &mut self,
        out: &mut Vec<u8>,
        opcode: OpCode,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        #[cfg(feature = "deflate")]
        if let Some(compress) = self.compress_decision(opcode, payload.len(), fin) {
            if compress {
                return self.send_compressed(out, opcode, payload, fin);
            }
        }
        let header = self.data_header(opcode, payload.len() as u64, fin)?;
        write_frame(out, &header, payload);
        Ok(())
    }

    /// With deflate on: `Some(true)` to compress this frame, `Some(false)` not to.
    #[cfg(feature = "deflate")]
    fn compress_decision(&self, opcode: OpCode, len: usize, fin: bool) -> Option<bool> {
        let d = self.deflate.as_ref()?;
        Some(if opcode == OpCode::CONTINUATION {
            d.sending_compressed
        } else {
            // A whole message is compressed from the threshold on; a fragmented one always.
            !fin || len >= d.options.threshold
        })
    }

    #[cfg(feature = "deflate")]
    fn send_compressed(
        &mut self,
        out: &mut Vec<u8>,
        opcode: OpCode,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        let Some(mut d) = self.deflate.take() else {
            return Err(SendError::Closed);
        };
        let mut compressed = core::mem::take(&mut d.scratch);
        compressed.clear();
        d.deflater.compress(payload, fin, &mut compressed);
        let result = self.data_header(opcode, compressed.len() as u64, fin);
        if let Ok(mut header) = result {
            if opcode != OpCode::CONTINUATION {
                header.rsv = crate::frame::RSV1;
            }
            d.sending_compressed = !fin;
            write_frame(out, &header, &compressed);
        }
        // Between messages keep no compressed output without context takeover (nothing else
        // is kept then), and only a small buffer with it.
        let keep = if d.reset_sends { 0 } else { SCRATCH_KEEP };
        if fin && compressed.capacity() > keep {
            compressed = Vec::new();
        }
        d.scratch = compressed;
        self.deflate = Some(d);
        result.map(|_| ())
    }

    /// Checks sequencing and builds the header of a data frame without writing its payload,
    /// for zero-copy vectored writes: a server writes the header, then the payload as it is; a
    /// client must first mask its payload with `header.mask` ([`crate::mask::apply_mask`],
    /// offset 0).
    fn data_header(
        &mut self,
        opcode: OpCode,
        len: u64,
        fin: bool,
    ) -> Result<FrameHeader, SendError> {
        if !self.can_send() {
            return Err(SendError::Closed);
        }
        match (opcode, self.sending) {
            (OpCode::TEXT | OpCode::BINARY, None) => {}
            (OpCode::CONTINUATION, Some(_)) => {}
            (OpCode::TEXT | OpCode::BINARY | OpCode::CONTINUATION, _) => {
                return Err(SendError::FragmentSequence)
            }
            (opcode, _) => return Err(SendError::NotData { opcode }),
        }
        self.sending = if fin {
            None
        } else if opcode == OpCode::CONTINUATION {
            self.sending
        } else {
            Some(opcode)
        };
        Ok(FrameHeader::new(fin, opcode, self.next_mask(), len))
    }

    /// Sends a close (status and reason, or `None` for an empty payload) and starts the closing
    /// handshake: no data frame may follow. Answering the peer's close when `auto_close` is
    /// off is done with this too.
    fn close(
        &mut self,
        now: Instant,
        out: &mut Vec<u8>,
        frame: Option<CloseFrame<'_>>,
    ) -> Result<(), SendError> {
        if !self.can_send() {
            return Err(SendError::Closed);
        }
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let n = match frame {
            Some(f) => {
                CloseFrame::new(f.code, crate::close::CloseReason::truncating(f.reason))?;
                f.emit(&mut payload)
            }
            None => 0,
        };
        self.encode(out, OpCode::CLOSE, true, &payload[..n]);
        let local = frame.map(|f| f.code);
        if self.state == State::CloseReceived {
            let mut status = self.peer_close.take().unwrap_or(CloseStatus {
                remote: CloseCode::NO_STATUS,
                local: None,
                initiated_locally: false,
                failed: None,
                keepalive_timed_out: false,
                idle_timed_out: false,
                reason: [0; MAX_REASON_LEN],
                reason_len: 0,
            });
            status.local = local;
            self.status = Some(status);
            self.enter_closed(now);
        } else {
            self.status = Some(CloseStatus::without_peer(local, true));
            self.state = State::CloseSent;
            self.wait = Wait::Until(now + self.cfg.close_timeout);
        }
        Ok(())
    }
}

/// Writes `header` and `payload` to `out`, masking the payload copy when the header has a key.
pub(crate) fn write_frame(out: &mut Vec<u8>, header: &FrameHeader, payload: &[u8]) {
    let mut h = [0u8; MAX_HEADER_LEN];
    let n = header.emit(&mut h);
    out.reserve(n + payload.len());
    out.extend_from_slice(&h[..n]);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = header.mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close::{CloseCode, CloseReason};
    use alloc::vec;

    const T0: Instant = Instant::ZERO;

    fn counter_masks() -> Box<dyn MaskSource> {
        let mut n: u32 = 0x1234_5678;
        Box::new(move || {
            n = n.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            n.to_le_bytes()
        })
    }

    /// Feeds `wire` to `conn`, returning owned copies of the events (stops at an error).
    fn feed(
        conn: &mut Connection,
        wire: &[u8],
    ) -> (Vec<alloc::string::String>, Option<ProtocolError>) {
        feed_at(conn, T0, wire)
    }

    /// [`feed`], the bytes arriving at `now`.
    fn feed_at(
        conn: &mut Connection,
        now: Instant,
        wire: &[u8],
    ) -> (Vec<alloc::string::String>, Option<ProtocolError>) {
        let mut data = wire.to_vec();
        let mut at = 0;
        let mut out = Vec::new();
        loop {
            match conn.recv(now, &mut data[at..]) {
                Ok(step) => {
                    at += step.consumed;
                    match step.event {
                        None => return (out, None),
                        Some(Event::Frame(_)) => {}
                        Some(e) => out.push(alloc::format!("{e:?}")),
                    }
                }
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn pong_and_close_are_automatic() {
        let mut server = Connection::server(Config::default(), T0);
        let wire = [
            0x89,
            0x82,
            1,
            2,
            3,
            4,
            b'h' ^ 1,
            b'i' ^ 2,
            0x88,
            0x82,
            9,
            9,
            9,
            9,
            0x03 ^ 9,
            0xe8 ^ 9,
        ];
        let (events, err) = feed(&mut server, &wire);
        assert_eq!(err, None);
        assert_eq!(events.len(), 2);
        let mut out = Vec::new();
        assert!(server.poll_transmit(&mut out));
        assert_eq!(out, [0x8a, 0x02, b'h', b'i', 0x88, 0x02, 0x03, 0xe8]);
        assert_eq!(server.state(), State::Closed);
        assert!(server.should_close_transport());
        assert_eq!(server.close_status().unwrap().remote, CloseCode::NORMAL);
        // Input after the close is ignored.
        let (events, err) = feed(&mut server, &[0x81, 0x80, 0, 0, 0, 0]);
        assert!(events.is_empty() && err.is_none());
    }

    #[test]
    fn violation_queues_the_right_close() {
        for (wire, code) in [
            (vec![0x81, 0x00], 1002u16),                // unmasked at a server
            (vec![0x81, 0x81, 0, 0, 0, 0, 0xff], 1007), // invalid UTF-8
            (vec![0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4], 1009), // 4 GiB frame
        ] {
            let mut server = Connection::server(Config::default(), T0);
            let (_, err) = feed(&mut server, &wire);
            assert_eq!(err.map(|e| e.close_code().0), Some(code));
            let mut out = Vec::new();
            server.poll_transmit(&mut out);
            assert_eq!(out, [0x88, 0x02, (code >> 8) as u8, code as u8]);
            assert_eq!(server.state(), State::Closed);
        }
    }

    #[test]
    fn client_masks_and_closing_handshake_times_out() {
        let mut client = Connection::client(Config::default(), counter_masks(), T0);
        let mut out = Vec::new();
        client.send(&mut out, Outgoing::Binary(b"abc")).unwrap();
        assert_eq!(out[1], 0x83);
        let key = [out[2], out[3], out[4], out[5]];
        let mut payload = out[6..].to_vec();
        apply_mask(&mut payload, key, 0);
        assert_eq!(payload, b"abc");

        out.clear();
        let reason = CloseReason::new("bye").unwrap();
        let t = Instant::from_micros(10);
        client
            .close(
                t,
                &mut out,
                Some(CloseFrame::new(CloseCode::NORMAL, reason).unwrap()),
            )
            .unwrap();
        assert_eq!(client.state(), State::CloseSent);
        assert_eq!(
            client.send(&mut out, Outgoing::Text("x")),
            Err(SendError::Closed)
        );
        assert_eq!(client.poll_timeout(), Some(t + Duration::from_secs(5)));
        client.handle_timeout(t + Duration::from_secs(4));
        assert_eq!(client.state(), State::CloseSent);
        client.handle_timeout(t + Duration::from_secs(5));
        assert_eq!(client.state(), State::Closed);
        assert_eq!(client.close_status().unwrap().remote, CloseCode::ABNORMAL);
    }

    #[test]
    fn fragment_sequencing_on_send() {
        let mut s = Connection::server(Config::default(), T0);
        let mut out = Vec::new();
        assert_eq!(
            s.send_frame(&mut out, OpCode::CONTINUATION, b"", true),
            Err(SendError::FragmentSequence)
        );
        s.send_frame(&mut out, OpCode::TEXT, b"a", false).unwrap();
        assert_eq!(
            s.send_frame(&mut out, OpCode::BINARY, b"b", true),
            Err(SendError::FragmentSequence)
        );
        s.send(&mut out, Outgoing::Ping(b"p")).unwrap();
        s.send_frame(&mut out, OpCode::CONTINUATION, b"b", true)
            .unwrap();
        assert_eq!(out, [0x01, 0x01, b'a', 0x89, 0x01, b'p', 0x80, 0x01, b'b']);
        assert_eq!(
            s.send(&mut out, Outgoing::Ping(&[0; 126])),
            Err(SendError::ControlTooLong { len: 126 })
        );
        let bad = CloseFrame {
            code: CloseCode::NO_STATUS,
            reason: "",
        };
        assert!(matches!(
            s.close(T0, &mut out, Some(bad)),
            Err(SendError::Close(_))
        ));
    }

    /// A masked (zero key) compressed text frame from a client.
    #[cfg(feature = "deflate")]
    fn compressed_text(tx: &mut crate::deflate::Deflater, text: &str) -> Vec<u8> {
        let mut payload = Vec::new();
        tx.compress(text.as_bytes(), true, &mut payload);
        assert!(payload.len() < 126);
        let mut frame = vec![0xc1, 0x80 | payload.len() as u8, 0, 0, 0, 0];
        frame.extend_from_slice(&payload);
        frame
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn an_idle_deflate_connection_holds_no_zlib_context() {
        use crate::deflate::{DeflateParams, Deflater};
        for no_takeover in [false, true] {
            let params = DeflateParams {
                server_no_context_takeover: no_takeover,
                client_no_context_takeover: no_takeover,
                ..DeflateParams::default()
            };
            let mut server = Connection::server(Config::default(), T0);
            server.enable_deflate(params, DeflateOptions::default());
            // Negotiated, idle: nothing allocated.
            assert_eq!(server.deflate_memory(), Some(DeflateMemory::default()));
            let mut tx = Deflater::new(6, 15, no_takeover);
            for text in ["compressed hello hello", "compressed hello again"] {
                let (events, err) = feed(&mut server, &compressed_text(&mut tx, text));
                assert_eq!(err, None);
                assert_eq!(events.len(), 1);
                let chunk = alloc::format!("chunk: {:?}", text.as_bytes());
                assert!(events[0].contains(&chunk), "{events:?}");
                let mut out = Vec::new();
                server
                    .send(&mut out, Outgoing::Text("a reply long enough to compress"))
                    .unwrap();
                assert_eq!(out[0], 0xc1, "compressed reply");
                let held = server.deflate_memory().unwrap();
                // With takeover both contexts persist across messages; without, each is
                // freed after its message, and the buffers with them.
                assert_eq!(held.inflate_context, !no_takeover, "{held:?}");
                assert_eq!(held.deflate_context, !no_takeover, "{held:?}");
                if no_takeover {
                    assert_eq!(held.buffer_bytes, 0, "{held:?}");
                }
            }
        }
    }

    #[test]
    fn empty_close_gets_empty_reply() {
        let mut server = Connection::server(Config::default(), T0);
        let (events, _) = feed(&mut server, &[0x88, 0x80, 1, 2, 3, 4]);
        assert_eq!(events, ["Close(None)"]);
        let mut out = Vec::new();
        server.poll_transmit(&mut out);
        assert_eq!(out, [0x88, 0x00]);
        assert_eq!(server.close_status().unwrap().remote, CloseCode::NO_STATUS);
    }

    fn at(secs: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(secs)
    }

    fn idle_after(secs: u64) -> Config {
        Config {
            idle_timeout: Some(Duration::from_secs(secs)),
            ..Config::default()
        }
    }

    /// A masked empty pong, as a client sends it.
    const PONG: [u8; 6] = [0x8a, 0x80, 0, 0, 0, 0];

    #[test]
    fn idle_timeout_closes_with_1001_after_the_interval_without_bytes() {
        let mut server = Connection::server(idle_after(10), at(0));
        assert_eq!(server.poll_timeout(), Some(at(10)));
        server.handle_timeout(at(9));
        assert_eq!(server.state(), State::Open);
        assert!(!server.has_pending_transmit());
        server.handle_timeout(at(10));
        assert_eq!(server.state(), State::CloseSent);
        let mut out = Vec::new();
        assert!(server.poll_transmit(&mut out));
        let mut close = vec![0x88, 14, 0x03, 0xe9];
        close.extend_from_slice(b"idle timeout");
        assert_eq!(out, close);
        let status = *server.close_status().unwrap();
        assert!(status.idle_timed_out && status.initiated_locally);
        assert_eq!(status.local, Some(CloseCode::GOING_AWAY));
        // The close timeout runs now; the application can send nothing more.
        assert_eq!(server.poll_timeout(), Some(at(15)));
        assert_eq!(
            server.send(&mut out, Outgoing::Text("late")),
            Err(SendError::Closed)
        );
        // The peer answers: the handshake is over, and the status still says why it began.
        let (events, err) = feed_at(&mut server, at(12), &[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe9]);
        assert_eq!((events.len(), err), (1, None));
        assert_eq!(server.state(), State::Closed);
        let status = server.close_status().unwrap();
        assert!(status.idle_timed_out);
        assert_eq!(status.remote, CloseCode::GOING_AWAY);
    }

    #[test]
    fn idle_close_unanswered_ends_with_the_close_timeout_and_keeps_its_mark() {
        let mut server = Connection::server(idle_after(10), at(0));
        server.handle_timeout(at(10));
        server.handle_timeout(at(15));
        assert_eq!(server.state(), State::Closed);
        let status = server.close_status().unwrap();
        assert!(status.idle_timed_out);
        assert_eq!(status.remote, CloseCode::ABNORMAL);
        // The transport ending after the idle close keeps the mark too.
        let mut server = Connection::server(idle_after(10), at(0));
        server.handle_timeout(at(10));
        server.handle_eof();
        assert!(server.close_status().unwrap().idle_timed_out);
    }

    #[test]
    fn received_bytes_push_the_idle_timeout_back() {
        let mut server = Connection::server(idle_after(10), at(0));
        for k in 1..=3 {
            let (_, err) = feed_at(&mut server, at(8 * k), &PONG);
            assert_eq!(err, None);
            assert_eq!(server.poll_timeout(), Some(at(8 * k + 10)));
            server.handle_timeout(at(8 * k + 9));
            assert_eq!(server.state(), State::Open);
        }
        // Bytes a driver buffers and decodes later count from their arrival.
        server.handle_received_at(at(30));
        assert_eq!(server.poll_timeout(), Some(at(40)));
        server.handle_timeout(at(39));
        assert_eq!(server.state(), State::Open);
        server.handle_timeout(at(40));
        assert_eq!(server.state(), State::CloseSent);
    }

    #[test]
    fn no_idle_close_once_closing() {
        // After the application's close only the close timeout runs.
        let mut server = Connection::server(idle_after(10), at(0));
        let mut out = Vec::new();
        let bye = CloseFrame {
            code: CloseCode::NORMAL,
            reason: "",
        };
        server.close(at(1), &mut out, Some(bye)).unwrap();
        assert_eq!(server.poll_timeout(), Some(at(6)));
        server.handle_timeout(at(10));
        assert_eq!(server.state(), State::Closed);
        assert!(!server.has_pending_transmit());
        assert!(!server.close_status().unwrap().idle_timed_out);
        // After the peer's close, not answered yet, nothing runs.
        let cfg = Config {
            auto_close: false,
            ..idle_after(10)
        };
        let mut server = Connection::server(cfg, at(0));
        feed_at(&mut server, at(1), &[0x88, 0x80, 0, 0, 0, 0]);
        assert_eq!(server.state(), State::CloseReceived);
        assert_eq!(server.poll_timeout(), None);
        server.handle_timeout(at(20));
        assert_eq!(server.state(), State::CloseReceived);
        assert!(!server.has_pending_transmit());
    }

    #[test]
    fn poll_timeout_is_the_earliest_of_all_timers() {
        use crate::keepalive::Keepalive;
        let cfg = Config {
            keepalive: Some(Keepalive {
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(5),
            }),
            ..idle_after(20)
        };
        let mut client = Connection::client(cfg, counter_masks(), at(0));
        // Keepalive at 10 before idle at 20.
        assert_eq!(client.poll_timeout(), Some(at(10)));
        client.handle_timeout(at(10));
        let mut out = Vec::new();
        assert!(client.poll_transmit(&mut out), "the keepalive ping");
        // The ping's deadline at 15 before idle at 20.
        assert_eq!(client.poll_timeout(), Some(at(15)));
        // An answer at 12: keepalive at 22, idle at 32.
        feed_at(&mut client, at(12), &[0x8a, 0x00]);
        assert_eq!(client.poll_timeout(), Some(at(22)));
        // Idle before keepalive.
        let mut client = Connection::client(
            Config {
                idle_timeout: Some(Duration::from_secs(7)),
                ..cfg
            },
            counter_masks(),
            at(0),
        );
        assert_eq!(client.poll_timeout(), Some(at(7)));
        // Closing: the close timeout (5 s) alone.
        client.close(at(1), &mut out, None).unwrap();
        assert_eq!(client.poll_timeout(), Some(at(6)));
        // Idle and keepalive due at once: the idle close goes, and no ping after it.
        let mut server = Connection::server(
            Config {
                idle_timeout: Some(Duration::from_secs(10)),
                ..cfg
            },
            at(0),
        );
        server.handle_timeout(at(10));
        out.clear();
        server.poll_transmit(&mut out);
        assert_eq!(&out[..4], [0x88, 14, 0x03, 0xe9]);
        assert_eq!(out.len(), 16);
    }
}
