//! The passive observer: both directions of one TCP connection, from the HTTP upgrade to the
//! last frame, reported as events and never enforced.
//!
//! It serves the Zeek-like analyzer and the Net::Inspect-like streaming inspection alike. The
//! caller (a TCP reassembler, a test) feeds each direction's in-order bytes with
//! [`Observer::feed`], which has the same contract as [`MessageDecoder::decode`]: it looks at
//! the caller's unconsumed bytes, may unmask them in place, and answers with a [`Step`]: how
//! many bytes it used and at most one [`ObservedEvent`]. Drop `consumed` bytes and call again
//! until the event is `None` (all bytes used). Lost bytes are announced with
//! [`Observer::gap`] and the end of a direction with [`Observer::eof`]; the events they cause
//! come out of the next `feed` for that direction (an empty buffer will do).
//!
//! # What happens on a connection
//!
//! 1. **HTTP.** Requests (client side) and responses (server side) are parsed with
//!    [`crate::handshake`] and reported as [`ObservedEvent::Request`] and
//!    [`ObservedEvent::Response`]. Bodies with a `Content-Length` or chunked coding are skipped,
//!    so keep-alive exchanges before the upgrade are followed. After a request that asks for an
//!    upgrade, the client direction answers [`ObservedEvent::Paused`] (nothing consumed) until
//!    the response arrives: only the response tells whether the next client bytes are frames or
//!    HTTP. Keep those bytes, feed the server direction, then feed them again.
//! 2. **Upgrade.** A `101` whose `Upgrade` names `websocket` gives
//!    [`ObservedEvent::Established`] with what both heads said ([`Upgrade`]). The handshake
//!    rules ([`Request::problems`], [`Response::problems_for`]) are then applied as
//!    [`UpgradePolicy`] says: `Lenient` (Zeek) reports each problem as an anomaly and goes on
//!    (a wrong accept value is [`Anomaly::WrongAccept`], Zeek's `websocket_wrong_accept_header`);
//!    `Strict` (Net::Inspect) reports the first as [`ObservedEvent::BadUpgrade`] and stops. Bytes
//!    after the `101` head in the same buffer are frames: they are decoded and also reported as
//!    [`Anomaly::DataWithUpgradeReply`] (Zeek's `protocol_data_with_HTTP_upgrade_reply`, the
//!    count of those bytes). A `101` to another protocol, or an HTTP stream that cannot be
//!    followed, ends with [`ObservedEvent::Stopped`].
//! 3. **Frames.** Each direction has a [`MessageDecoder`] in [`Strictness::Report`](crate::decoder::Strictness::Report) mode with
//!    the direction's mask rule: every rule broken comes out as [`Anomaly::Protocol`] and
//!    decoding goes on. The observer adds frames after a close, gaps, loss of framing and its
//!    recovery.
//!
//! # Events of one frame
//!
//! Zeek's order: [`ObservedEvent::Frame`] (with the raw header bytes), then
//! [`ObservedEvent::FrameData`] chunks of unmasked payload, then for a close frame
//! [`ObservedEvent::Close`], then [`ObservedEvent::Message`] when the frame ends a message
//! (control frames are one-frame messages; the opcode is the message's first). Anomalies come as
//! soon as they are known: those about a header (mask rule, length encoding) just before its
//! `Frame`, those about a message rule just after it, an invalid UTF-8 text right after the
//! chunk that shows it. A control frame between the fragments of a message is reported as its
//! own frame and message and does not break the data message (Zeek fails there).
//!
//! `FrameData` carries what Net::Inspect's `in_wsdata` gets: the message's opcode, `first`
//! (`init`: first chunk of a message), the bytes still owed by the frame (`bytes_left`), and
//! `message_end` (`eom`). Differences from Zeek a consumer may want to undo: a frame with an
//! empty payload gives one `FrameData` with an empty chunk (Net::Inspect's `in_wsdata('')` with
//! `eom`; Zeek gives none); chunks are as large as the caller's buffer (cut them to
//! `payload_chunk_size`); an oversized control frame's chunks hold all its payload while its
//! `Close` holds the first 125 bytes (Zeek delivers 125 bytes in both).
//!
//! # Gaps
//!
//! A gap inside a payload keeps the direction in sync ([`MessageDecoder::skip`]; the mask
//! offset keeps counting) and gives [`Anomaly::Gap`] with `in_payload: true`, then `Message` if
//! the gap ended a message. Anywhere else framing is lost: [`Anomaly::Desync`], and the direction
//! resynchronises by scanning for the first plausible frame header (see
//! [`ObserverConfig::resync`]), reported as [`Anomaly::Resync`] with the number of bytes skipped.
//! Nothing is ever buffered beyond a 14-byte partial header, a 125-byte control payload and an
//! HTTP head of at most [`Limits::max_head_len`] bytes.
//!
//! ```
//! use wscope_proto::observe::{ObservedEvent, Observer, ObserverConfig};
//! use wscope_proto::role::Direction::{ClientToServer as C, ServerToClient as S};
//!
//! let mut obs = Observer::new(ObserverConfig::default());
//! let mut names = Vec::new();
//! let mut run = |obs: &mut Observer, dir, bytes: &[u8]| {
//!     let mut buf = bytes.to_vec();
//!     let mut at = 0;
//!     loop {
//!         let step = obs.feed(dir, &mut buf[at..]);
//!         at += step.consumed;
//!         match step.event {
//!             None | Some(ObservedEvent::Paused { .. }) => break,
//!             Some(ev) => names.push(ev.name()),
//!         }
//!     }
//! };
//! run(&mut obs, C, b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
//! // The 101 with a ping in the same segment.
//! run(&mut obs, S, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
//!     Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x89\x04Zeek");
//! // The client's masked pong.
//! run(&mut obs, C, &[0x8a, 0x84, 1, 2, 3, 4, b'Z' ^ 1, b'e' ^ 2, b'e' ^ 3, b'k' ^ 4]);
//! assert_eq!(names, [
//!     "request", "response", "established", "anomaly", // protocol_data_with_HTTP_upgrade_reply
//!     "frame", "frame_data", "message",                // server ping
//!     "frame", "frame_data", "message",                // client pong
//! ]);
//! ```

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use crate::close::zeek_status;
use crate::decoder::{DecoderConfig, MaskRule, Step};
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, HeaderStatus, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, RSV1};
use crate::handshake::header::{early_error, HeadBuffer, Push};
use crate::handshake::{
    AcceptKey, HandshakeError, Headers, Limits, Request, Response, ACCEPT, KEY, PROTOCOL, UPGRADE,
};
use crate::message::{AssemblerConfig, GapOutcome, MessageDecoder, MessageEvent};
use crate::role::Direction;

/// How the observer treats handshake problems after a `101` to WebSocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradePolicy {
    /// Zeek: each problem is an [`Anomaly`] and frames are decoded anyway.
    Lenient,
    /// Net::Inspect: the first problem (a wrong accept value included) is
    /// [`ObservedEvent::BadUpgrade`] and the connection is not analysed further.
    Strict,
}

/// Settings of an [`Observer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObserverConfig {
    /// Size limits for each HTTP head; a head over them is an anomaly and ends the analysis.
    pub limits: Limits,
    /// Lenient (report) or strict (stop) about handshake problems.
    pub policy: UpgradePolicy,
    /// Check that text messages are UTF-8 ([`ProtocolError::InvalidUtf8`] anomalies).
    pub validate_utf8: bool,
    /// Messages longer than this are reported ([`ProtocolError::MessageTooLarge`]).
    pub max_message_len: u64,
    /// Frames longer than this are reported ([`ProtocolError::FrameTooLarge`]).
    pub max_frame_len: u64,
    /// After framing is lost, look for the next plausible frame header (a supported opcode,
    /// reserved bits only as negotiated, the mask bit this direction has been using, a control
    /// frame final and at most 125 bytes, a minimal length of at most
    /// [`ObserverConfig::resync_max_frame_len`], and not a continuation). With `false`, the
    /// direction stays lost, as Zeek does after any gap.
    pub resync: bool,
    /// The longest frame accepted as a resynchronisation point.
    pub resync_max_frame_len: u64,
    /// Requests waiting for their response (pipelining) beyond this end the analysis.
    pub max_pending_requests: usize,
}

impl Default for ObserverConfig {
    /// Default [`Limits`] (16 KiB heads), lenient, UTF-8 checked, no size limits, resync on
    /// with frames up to 1 MiB, 32 pending requests.
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            policy: UpgradePolicy::Lenient,
            validate_utf8: true,
            max_message_len: u64::MAX,
            max_frame_len: u64::MAX,
            resync: true,
            resync_max_frame_len: 1 << 20,
            max_pending_requests: 32,
        }
    }
}

/// What both heads of a WebSocket upgrade said: Zeek's `WebSocket::Info` fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgrade {
    request: Option<Request>,
    response: Response,
}

impl Upgrade {
    /// The request the `101` answered (none when the observer saw none).
    pub const fn request(&self) -> Option<&Request> {
        self.request.as_ref()
    }

    /// The `101` response.
    pub const fn response(&self) -> &Response {
        &self.response
    }

    /// The request's `Host`.
    pub fn host(&self) -> Option<&str> {
        self.request.as_ref()?.host()
    }

    /// The request target (Zeek's `uri`).
    pub fn uri(&self) -> Option<&str> {
        self.request.as_ref().map(Request::target)
    }

    /// The request's `User-Agent`.
    pub fn user_agent(&self) -> Option<&str> {
        self.request.as_ref()?.user_agent()
    }

    /// The subprotocols the client offered, in order (Zeek's `client_protocols`).
    pub fn client_protocols(&self) -> impl Iterator<Item = &str> + '_ {
        self.request.iter().flat_map(Request::subprotocols)
    }

    /// The subprotocol the server chose (Zeek's `subprotocol`).
    pub fn subprotocol(&self) -> Option<&str> {
        self.response.subprotocol()
    }

    /// The extensions the client offered, one list element each, parameters included (Zeek's
    /// `client_extensions`).
    pub fn client_extensions(&self) -> impl Iterator<Item = &str> + '_ {
        self.request.iter().flat_map(Request::extension_elements)
    }

    /// The extensions the server accepted (Zeek's `server_extensions`).
    pub fn server_extensions(&self) -> impl Iterator<Item = &str> + '_ {
        self.response.extension_elements()
    }

    /// `Sec-WebSocket-Key` (Zeek's `client_key`).
    pub fn client_key(&self) -> Option<&str> {
        self.request.as_ref()?.key()
    }

    /// `Sec-WebSocket-Accept` (Zeek's `server_accept`).
    pub fn server_accept(&self) -> Option<&str> {
        self.response.accept()
    }

    /// The accept value the key calls for.
    pub fn expected_accept(&self) -> Option<AcceptKey> {
        self.request.as_ref()?.expected_accept()
    }

    /// Whether the accept value matches the key (`None` when either is missing).
    pub fn accept_matches(&self) -> Option<bool> {
        let found = self.response.headers().get(ACCEPT)?;
        Some(self.expected_accept()?.matches(found))
    }

    /// Whether the server accepted permessage-deflate (RSV1 is then allowed on data frames).
    pub fn permessage_deflate(&self) -> bool {
        self.response.extensions().is_ok_and(|exts| {
            exts.iter()
                .any(|e| e.name.eq_ignore_ascii_case("permessage-deflate"))
        })
    }

    /// The permessage-deflate parameters the server's response agreed to, for inflating each
    /// direction passively (`None`: not negotiated, or a response that does not parse).
    /// Only context takeover matters to a passive inflater: it always inflates with the
    /// largest window.
    #[cfg(feature = "deflate")]
    pub fn deflate_params(&self) -> Option<crate::deflate::DeflateParams> {
        let exts = self.response.extensions().ok()?;
        let ext = exts
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(crate::deflate::EXTENSION_NAME))?;
        let o = crate::deflate::Offer::from_extension(ext).ok()?;
        Some(crate::deflate::DeflateParams {
            server_no_context_takeover: o.server_no_context_takeover,
            client_no_context_takeover: o.client_no_context_takeover,
            server_max_window_bits: o.server_max_window_bits.unwrap_or(15),
            client_max_window_bits: o.client_max_window_bits.flatten().unwrap_or(15),
        })
    }
}

/// Why framing was lost in a direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DesyncCause {
    /// A gap that was not inside a payload.
    Gap,
    /// A header that cannot be decoded ([`ProtocolError::LengthMsbSet`]).
    Framing(ProtocolError),
}

/// Something unusual seen on the connection. Data, not an error: analysis goes on unless an
/// [`ObservedEvent::Stopped`] follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Anomaly<'a> {
    /// A frame or message rule broken (the decoder in report mode).
    Protocol(ProtocolError),
    /// A handshake rule broken (lenient policy), or an HTTP head that cannot be followed.
    Handshake(HandshakeError),
    /// `Sec-WebSocket-Accept` does not match the key (Zeek's `websocket_wrong_accept_header`).
    WrongAccept {
        /// The value the key calls for.
        expected: AcceptKey,
        /// The value the server sent.
        found: &'a [u8],
    },
    /// Bytes followed the `101` head in the same buffer (Zeek's
    /// `protocol_data_with_HTTP_upgrade_reply`); they are decoded as frames.
    DataWithUpgradeReply {
        /// How many.
        len: usize,
    },
    /// A frame after a close frame in the same direction (reported after its `Frame`).
    FrameAfterClose {
        /// The frame's opcode.
        opcode: OpCode,
    },
    /// Bytes were lost ([`Observer::gap`]).
    Gap {
        /// How many.
        len: u64,
        /// The gap fell inside a payload, so the direction is still in sync.
        in_payload: bool,
    },
    /// Framing is lost in this direction; no frame events until [`Anomaly::Resync`].
    Desync {
        /// Why.
        cause: DesyncCause,
    },
    /// Framing found again at a plausible frame header.
    Resync {
        /// Bytes dropped while looking for it.
        skipped: u64,
    },
    /// A response with no request waiting for it.
    UnmatchedResponse,
    /// More pipelined requests than [`ObserverConfig::max_pending_requests`].
    TooManyPendingRequests {
        /// The limit.
        limit: usize,
    },
    /// A body whose length cannot be known (invalid `Content-Length`, `Transfer-Encoding`
    /// without chunked in a request, broken chunked coding).
    BadBody,
    /// The direction ended inside an HTTP head.
    EofInHead,
    /// The direction ended inside an HTTP body of known length.
    EofInBody,
    /// The direction ended inside a frame (Net::Inspect's "eof inside websocket frame").
    EofInFrame {
        /// Payload bytes the frame still owed; 0 when it ended inside the header.
        remaining: u64,
    },
    /// The direction ended inside a fragmented message.
    EofInMessage,
    /// Bytes fed after [`Observer::eof`] for that direction; ignored.
    DataAfterEof {
        /// How many.
        len: usize,
    },
}

impl<'a> Anomaly<'a> {
    /// A stable snake_case name for logs (the [`ProtocolError`] or [`HandshakeError`] name for
    /// those two kinds).
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Protocol(e) => e.name(),
            Self::Handshake(e) => e.name(),
            Self::WrongAccept { .. } => "wrong_accept_header",
            Self::DataWithUpgradeReply { .. } => "data_with_upgrade_reply",
            Self::FrameAfterClose { .. } => "frame_after_close",
            Self::Gap { .. } => "gap",
            Self::Desync { .. } => "desync",
            Self::Resync { .. } => "resync",
            Self::UnmatchedResponse => "unmatched_response",
            Self::TooManyPendingRequests { .. } => "too_many_pending_requests",
            Self::BadBody => "bad_http_body",
            Self::EofInHead => "eof_in_head",
            Self::EofInBody => "eof_in_body",
            Self::EofInFrame { .. } => "eof_in_frame",
            Self::EofInMessage => "eof_in_message",
            Self::DataAfterEof { .. } => "data_after_eof",
        }
    }

    /// The Zeek weird this anomaly is, where Zeek has one (its `addl` is
    /// [`Anomaly::detail`]).
    pub fn zeek_weird(&self) -> Option<&'static str> {
        Some(match self {
            Self::WrongAccept { .. } => "websocket_wrong_accept_header",
            Self::DataWithUpgradeReply { .. } => "protocol_data_with_HTTP_upgrade_reply",
            Self::Protocol(ProtocolError::ControlFrameTooLong { .. }) => {
                "websocket_control_frame_size_exceeded"
            }
            Self::Handshake(HandshakeError::MissingHeader { name: KEY }) => {
                "websocket_missing_key_header"
            }
            Self::Handshake(HandshakeError::DuplicateHeader { name: KEY }) => {
                "websocket_multiple_key_headers"
            }
            Self::Handshake(HandshakeError::MissingHeader { name: ACCEPT }) => {
                "websocket_missing_accept_header"
            }
            Self::Handshake(HandshakeError::DuplicateHeader { name: ACCEPT }) => {
                "websocket_multiple_accept_headers"
            }
            Self::Handshake(HandshakeError::DuplicateHeader { name: PROTOCOL }) => {
                "websocket_multiple_protocol_headers"
            }
            _ => return None,
        })
    }

    /// The details, Zeek `addl` style where Zeek has the anomaly: `expected=…, found=…` for a
    /// wrong accept, `258 > 125` for an oversized control frame, the byte count for data with
    /// the upgrade reply.
    pub const fn detail(&self) -> AnomalyDetail<'_, 'a> {
        AnomalyDetail(self)
    }
}

/// The [`fmt::Display`] of an anomaly's details (see [`Anomaly::detail`]).
#[derive(Clone, Copy, Debug)]
pub struct AnomalyDetail<'r, 'a>(&'r Anomaly<'a>);

impl fmt::Display for AnomalyDetail<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Anomaly::Protocol(ProtocolError::ControlFrameTooLong { len }) => {
                write!(f, "{len} > {MAX_CONTROL_PAYLOAD}")
            }
            Anomaly::Protocol(e) => write!(f, "{e}"),
            Anomaly::Handshake(e) => write!(f, "{e}"),
            Anomaly::WrongAccept { expected, found } => {
                write!(f, "expected={expected}, found=")?;
                for &b in *found {
                    if b.is_ascii_graphic() || b == b' ' {
                        write!(f, "{}", char::from(b))?;
                    } else {
                        write!(f, "\\x{b:02x}")?;
                    }
                }
                Ok(())
            }
            Anomaly::DataWithUpgradeReply { len } => write!(f, "{len}"),
            Anomaly::FrameAfterClose { opcode } => write!(f, "{opcode} frame after close"),
            Anomaly::Gap { len, in_payload } => {
                let place = if *in_payload {
                    "inside a payload"
                } else {
                    "outside a payload"
                };
                write!(f, "{len} bytes lost {place}")
            }
            Anomaly::Desync {
                cause: DesyncCause::Gap,
            } => f.write_str("framing lost after a gap"),
            Anomaly::Desync {
                cause: DesyncCause::Framing(e),
            } => write!(f, "framing lost: {e}"),
            Anomaly::Resync { skipped } => write!(f, "framing found after {skipped} bytes"),
            Anomaly::UnmatchedResponse => f.write_str("response without a request"),
            Anomaly::TooManyPendingRequests { limit } => {
                write!(f, "more than {limit} requests waiting for a response")
            }
            Anomaly::BadBody => f.write_str("HTTP body length cannot be determined"),
            Anomaly::EofInHead => f.write_str("end of stream inside an HTTP head"),
            Anomaly::EofInBody => f.write_str("end of stream inside an HTTP body"),
            Anomaly::EofInFrame { remaining } => {
                write!(
                    f,
                    "end of stream inside a frame, {remaining} payload bytes missing"
                )
            }
            Anomaly::EofInMessage => f.write_str("end of stream inside a fragmented message"),
            Anomaly::DataAfterEof { len } => write!(f, "{len} bytes after the end of stream"),
        }
    }
}

/// Why the observer stopped analysing a connection (nothing but [`ObservedEvent::Eof`] follows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// A `101` switched to another protocol than WebSocket.
    OtherProtocol,
    /// A response body lasts until the connection closes: no upgrade can follow.
    BodyUntilClose,
    /// The HTTP stream cannot be followed; the anomaly just before says why.
    Abandoned,
}

/// One thing the observer found.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObservedEvent<'a> {
    /// An HTTP request head (client direction).
    Request(&'a Request),
    /// An HTTP response head (server direction).
    Response(&'a Response),
    /// The `101` to WebSocket: frames follow (Zeek's `websocket_established`).
    Established(&'a Upgrade),
    /// Strict policy: the upgrade breaks a handshake rule; the connection is declared bad and
    /// not analysed further.
    BadUpgrade(HandshakeError),
    /// A frame header (Zeek's `websocket_frame`), for data and control frames.
    Frame {
        /// The direction.
        dir: Direction,
        /// FIN, RSV, opcode, payload length, mask.
        header: FrameHeader,
        /// The header's bytes as on the wire (2 to 14).
        header_bytes: &'a [u8],
    },
    /// A chunk of a frame's payload, unmasked (Zeek's `websocket_frame_data`, Net::Inspect's
    /// `in_wsdata`), for data and control frames.
    FrameData {
        /// The direction.
        dir: Direction,
        /// The bytes: a sub-slice of the buffer given to [`Observer::feed`], unmasked in place.
        /// Empty only for a frame with an empty payload.
        chunk: &'a [u8],
        /// Data frames: the message's first opcode (text, binary; continuation when its start
        /// was not seen). Control frames: their own opcode.
        opcode: OpCode,
        /// The message's first frame had RSV1 under permessage-deflate: the bytes are compressed.
        compressed: bool,
        /// The first chunk of its message (Net::Inspect's `init`).
        first: bool,
        /// Payload bytes the frame still owes after this chunk (Net::Inspect's `bytes_left`).
        remaining: u64,
        /// This chunk ends its frame.
        frame_end: bool,
        /// This chunk ends its message (Net::Inspect's `eom`); always with `frame_end` for a
        /// control frame.
        message_end: bool,
    },
    /// A whole close frame (Zeek's `websocket_close`), after its `FrameData`.
    Close {
        /// The direction.
        dir: Direction,
        /// The first two payload bytes; 0 when the payload is shorter (Zeek). An empty payload
        /// means "no status" (1005 for Net::Inspect).
        status: u16,
        /// The rest of the payload (at most 123 bytes; an oversized close is cut to 125 bytes).
        reason: &'a [u8],
        /// The whole payload as kept (at most 125 bytes).
        payload: &'a [u8],
    },
    /// The end of a message (Zeek's `websocket_message`): after the last frame of a data
    /// message, after every control frame.
    Message {
        /// The direction.
        dir: Direction,
        /// The opcode of the message's first frame.
        opcode: OpCode,
    },
    /// Something unusual; analysis goes on.
    Anomaly {
        /// The direction it concerns.
        dir: Direction,
        /// What.
        anomaly: Anomaly<'a>,
    },
    /// This direction cannot be interpreted before the other direction's next head (a request
    /// asked for an upgrade). Nothing was consumed: keep the bytes, feed the other direction,
    /// then feed them again.
    Paused {
        /// The direction waiting.
        dir: Direction,
    },
    /// The direction ended ([`Observer::eof`]); Net::Inspect's final `in_wsctl(dir, '')`.
    Eof {
        /// The direction.
        dir: Direction,
    },
    /// The observer stopped analysing this connection; later bytes are consumed and ignored.
    Stopped {
        /// Why.
        reason: StopReason,
    },
}

impl ObservedEvent<'_> {
    /// A short name for logs and tests: `"request"`, `"frame"`, `"frame_data"`, `"close"`, …
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Request(_) => "request",
            Self::Response(_) => "response",
            Self::Established(_) => "established",
            Self::BadUpgrade(_) => "bad_upgrade",
            Self::Frame { .. } => "frame",
            Self::FrameData { .. } => "frame_data",
            Self::Close { .. } => "close",
            Self::Message { .. } => "message",
            Self::Anomaly { .. } => "anomaly",
            Self::Paused { .. } => "paused",
            Self::Eof { .. } => "eof",
            Self::Stopped { .. } => "stopped",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP bodies

/// The state of a chunked body being skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunked {
    /// In a chunk-size line (digits, then extensions up to LF).
    Size {
        value: u64,
        digits: u8,
        ext: bool,
        line: u16,
    },
    /// Inside chunk data.
    Data(u64),
    /// The CRLF after chunk data.
    DataEnd,
    /// Trailer lines, until an empty one.
    Trailer { line: u16 },
}

const CHUNK_START: Chunked = Chunked::Size {
    value: 0,
    digits: 0,
    ext: false,
    line: 0,
};
const MAX_CHUNK_LINE: u16 = 4096;

impl Chunked {
    /// Skips chunked-body bytes at the front of `buf`: how many were used and whether the body
    /// ended; `Err` for broken framing.
    fn skip(&mut self, buf: &[u8]) -> Result<(usize, bool), ()> {
        let mut i = 0;
        while let Some(&b) = buf.get(i) {
            match self {
                Self::Data(n) => {
                    let take = (*n).min((buf.len() - i) as u64);
                    i += take as usize;
                    *n -= take;
                    if *n == 0 {
                        *self = Self::DataEnd;
                    }
                    continue;
                }
                Self::Size {
                    value,
                    digits,
                    ext,
                    line,
                } => {
                    *line += 1;
                    if *line > MAX_CHUNK_LINE {
                        return Err(());
                    }
                    match b {
                        b'\n' if *digits == 0 => return Err(()),
                        b'\n' if *value == 0 => *self = Self::Trailer { line: 0 },
                        b'\n' => *self = Self::Data(*value),
                        b'\r' => {}
                        _ if *ext => {}
                        b';' | b' ' | b'\t' if *digits > 0 => *ext = true,
                        _ => {
                            let d = char::from(b).to_digit(16).ok_or(())?;
                            if *digits >= 15 {
                                return Err(());
                            }
                            *value = (*value << 4) | u64::from(d);
                            *digits += 1;
                        }
                    }
                }
                Self::DataEnd => match b {
                    b'\r' => {}
                    b'\n' => *self = CHUNK_START,
                    _ => return Err(()),
                },
                Self::Trailer { line } => match b {
                    b'\n' if *line == 0 => return Ok((i + 1, true)),
                    b'\n' => *line = 0,
                    b'\r' => {}
                    _ => {
                        *line += 1;
                        if *line > MAX_CHUNK_LINE {
                            return Err(());
                        }
                    }
                },
            }
            i += 1;
        }
        Ok((i, false))
    }
}

/// An HTTP body being skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
}

impl Body {
    fn skip(&mut self, buf: &[u8]) -> Result<(usize, bool), ()> {
        match self {
            Self::Length(n) => {
                let take = (*n).min(buf.len() as u64);
                *n -= take;
                Ok((take as usize, *n == 0))
            }
            Self::Chunked(c) => c.skip(buf),
            Self::UntilClose => Ok((buf.len(), false)),
        }
    }

    /// Skips lost bytes; false when the gap did not fall inside data of known length.
    fn gap(&mut self, len: u64) -> bool {
        match self {
            Self::Length(n) if len <= *n => {
                *n -= len;
                true
            }
            Self::Chunked(Chunked::Data(n)) if len <= *n => {
                *n -= len;
                if *n == 0 {
                    *self = Self::Chunked(Chunked::DataEnd);
                }
                true
            }
            Self::UntilClose => true,
            _ => false,
        }
    }

    fn is_done(&self) -> bool {
        matches!(self, Self::Length(0))
    }
}

const TRANSFER_ENCODING: &str = "Transfer-Encoding";
const CONTENT_LENGTH: &str = "Content-Length";

/// The `Content-Length`: `Err` when values disagree or are not numbers.
fn content_length(h: &Headers) -> Result<Option<u64>, ()> {
    let mut found = None;
    for v in h.list(CONTENT_LENGTH) {
        let s = core::str::from_utf8(v).map_err(|_| ())?;
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        let n: u64 = s.parse().map_err(|_| ())?;
        if found.is_some_and(|f| f != n) {
            return Err(());
        }
        found = Some(n);
    }
    Ok(found)
}

fn last_coding_is_chunked(h: &Headers) -> bool {
    h.list(TRANSFER_ENCODING)
        .last()
        .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
}

fn request_body(req: &Request) -> Result<Option<Body>, ()> {
    let h = req.headers();
    if h.count(TRANSFER_ENCODING) > 0 {
        return if last_coding_is_chunked(h) {
            Ok(Some(Body::Chunked(CHUNK_START)))
        } else {
            Err(())
        };
    }
    Ok(content_length(h)?.filter(|&n| n > 0).map(Body::Length))
}

fn response_body(resp: &Response, to_head: bool) -> Result<Option<Body>, ()> {
    let s = resp.status();
    if (100..200).contains(&s) || s == 204 || s == 304 || to_head {
        return Ok(None);
    }
    let h = resp.headers();
    if h.count(TRANSFER_ENCODING) > 0 {
        return Ok(Some(if last_coding_is_chunked(h) {
            Body::Chunked(CHUNK_START)
        } else {
            Body::UntilClose
        }));
    }
    Ok(match content_length(h)? {
        Some(0) => None,
        Some(n) => Some(Body::Length(n)),
        None => Some(Body::UntilClose),
    })
}

// ---------------------------------------------------------------------------------------------
// Per-direction state

#[derive(Clone, Debug)]
enum HttpDir {
    Head(HeadBuffer),
    Body { body: Body, then_pause: bool },
    Paused,
}

/// A frame whose payload is being reported.
#[derive(Clone, Copy, Debug)]
struct Track {
    header: FrameHeader,
    seen: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Sync,
    Resync,
    Lost,
}

/// An owned copy of a decoder event, so that the decoder's borrow ends before the observer
/// updates its own state.
enum Raw {
    None,
    Frame(FrameHeader),
    Data {
        at: usize,
        len: usize,
        opcode: OpCode,
        compressed: bool,
        first: bool,
        frame_end: bool,
        message_end: bool,
    },
    ControlData {
        at: usize,
        len: usize,
    },
    Control(OpCode),
    Violation(ProtocolError),
    Failed(ProtocolError),
}

/// Where `chunk` sits in the buffer starting at address `base` of length `len`.
fn locate(base: usize, len: usize, chunk: &[u8]) -> (usize, usize) {
    let at = (chunk.as_ptr() as usize).wrapping_sub(base);
    if at <= len && chunk.len() <= len - at {
        (at, chunk.len())
    } else {
        (0, 0)
    }
}

/// Frame decoding for one direction after the upgrade.
#[derive(Clone, Debug)]
struct WsDir {
    dec: MessageDecoder,
    fcfg: DecoderConfig,
    acfg: AssemblerConfig,
    mode: Mode,
    frame: Option<Track>,
    pending_message: Option<OpCode>,
    pending_after_close: Option<OpCode>,
    close_seen: bool,
    /// The mask bit the last frame had; resynchronisation expects the same.
    expect_mask: bool,
    hdr: [u8; MAX_HEADER_LEN],
    hdr_len: usize,
    ctl: [u8; MAX_CONTROL_PAYLOAD],
    ctl_len: usize,
    /// Resync: a plausible but incomplete header at the end of the last buffer.
    win: [u8; MAX_HEADER_LEN],
    win_len: usize,
    skipped: u64,
}

/// What the resynchronisation scan thinks of the bytes at a position.
enum Plausible {
    No,
    Maybe,
    /// A complete header; the frame's total size (header and payload).
    Yes(u64),
}

impl WsDir {
    fn new(dir: Direction, cfg: &ObserverConfig, extension_rsv: u8) -> Self {
        let mut fcfg = DecoderConfig::new(MaskRule::for_direction(dir)).reporting();
        fcfg.max_frame_len = cfg.max_frame_len;
        let acfg = AssemblerConfig {
            max_message_len: cfg.max_message_len,
            extension_rsv,
            validate_utf8: cfg.validate_utf8,
            control_chunks: true,
        };
        Self {
            dec: MessageDecoder::new(fcfg, acfg),
            fcfg,
            acfg,
            mode: Mode::Sync,
            frame: None,
            pending_message: None,
            pending_after_close: None,
            close_seen: false,
            expect_mask: dir == Direction::ClientToServer,
            hdr: [0; MAX_HEADER_LEN],
            hdr_len: 0,
            ctl: [0; MAX_CONTROL_PAYLOAD],
            ctl_len: 0,
            win: [0; MAX_HEADER_LEN],
            win_len: 0,
            skipped: 0,
        }
    }

    /// Framing is lost: drop all frame state and start looking for a header (or give up).
    fn lose(&mut self, resync: bool) {
        self.mode = if resync { Mode::Resync } else { Mode::Lost };
        self.dec = MessageDecoder::new(self.fcfg, self.acfg);
        self.frame = None;
        self.pending_message = None;
        self.pending_after_close = None;
        self.win_len = 0;
        self.skipped = 0;
    }

    /// Whether `bytes` (as much of the stream as is known from this position) start with a
    /// plausible frame header. `next` accepts a continuation too (a frame that follows a
    /// candidate may continue its message).
    fn plausible(&self, bytes: &[u8], max_len: u64, next: bool) -> Plausible {
        let Some(&b0) = bytes.first() else {
            return Plausible::Maybe;
        };
        let opcode = OpCode(b0 & 0x0f);
        let rsv = (b0 >> 4) & 0x7;
        let fin = b0 & 0x80 != 0;
        let control = opcode.is_control();
        let known = matches!(opcode.0, 0x1 | 0x2 | 0x8 | 0x9 | 0xA) || (next && opcode.0 == 0);
        let rsv_ok = rsv & !self.acfg.extension_rsv == 0 && !(control && rsv & RSV1 != 0);
        if !known || !rsv_ok || (control && !fin) {
            return Plausible::No;
        }
        if let Some(&b1) = bytes.get(1) {
            if (b1 & 0x80 != 0) != self.expect_mask || (control && b1 & 0x7f > 125) {
                return Plausible::No;
            }
        }
        match FrameHeader::parse(bytes) {
            Ok(HeaderStatus::Incomplete { .. }) => Plausible::Maybe,
            Ok(HeaderStatus::Complete(h)) if !h.non_minimal && h.payload_len <= max_len => {
                Plausible::Yes(h.header_len() as u64 + h.payload_len)
            }
            _ => Plausible::No,
        }
    }

    /// A candidate frame of `total` bytes (header and payload) starting at `start` in `buf`
    /// (negative for a header begun in the kept bytes): accepted unless the bytes right after
    /// it are visible and cannot start a frame.
    fn chain_ok(&self, buf: &[u8], start: i64, total: u64, max_len: u64) -> bool {
        let next = i128::from(start) + i128::from(total);
        match usize::try_from(next) {
            Ok(n) if n < buf.len() => {
                !matches!(self.plausible(&buf[n..], max_len, true), Plausible::No)
            }
            _ => true,
        }
    }

    /// Framing found at the current position: report it.
    fn synced(&mut self) -> Anomaly<'static> {
        self.mode = Mode::Sync;
        self.dec = MessageDecoder::new(self.fcfg, self.acfg);
        self.win_len = 0;
        let skipped = core::mem::take(&mut self.skipped);
        Anomaly::Resync { skipped }
    }

    /// Looks for a plausible frame header: first at the positions of the bytes kept from the
    /// last buffer (joined with the start of this one), then in this buffer; the earliest
    /// complete plausible header wins. Returns bytes used and the anomaly to report when
    /// framing is found (the header then starts at `buf[used]`, or its first bytes are already
    /// held by the decoder).
    ///
    /// Invariant: no position of the kept bytes holds a plausible header complete within the
    /// kept bytes, so a header found there always continues into `buf`.
    fn resync(&mut self, buf: &[u8], max_len: u64) -> (usize, Option<Anomaly<'static>>) {
        let wlen = self.win_len.min(MAX_HEADER_LEN);
        let extra = buf.len().min(MAX_HEADER_LEN);
        let mut tmp = [0u8; 2 * MAX_HEADER_LEN];
        tmp[..wlen].copy_from_slice(&self.win[..wlen]);
        tmp[wlen..wlen + extra].copy_from_slice(&buf[..extra]);
        let mut window_maybe = None;
        for j in 0..wlen {
            match self.plausible(&tmp[j..wlen + extra], max_len, false) {
                Plausible::Yes(total)
                    if self.chain_ok(buf, j as i64 - wlen as i64, total, max_len) =>
                {
                    self.skipped += j as u64;
                    let mut part = [0u8; MAX_HEADER_LEN];
                    let plen = wlen - j;
                    part[..plen].copy_from_slice(&tmp[j..wlen]);
                    let found = self.synced();
                    // The header continues into `buf` (invariant), so the decoder only stores
                    // these bytes as the start of a header.
                    let _ = self.dec.decode(&mut part[..plen]);
                    return (0, Some(found));
                }
                Plausible::Maybe if window_maybe.is_none() => window_maybe = Some(j),
                _ => {}
            }
        }
        let mut buf_maybe = None;
        for p in 0..buf.len() {
            match self.plausible(&buf[p..], max_len, false) {
                Plausible::Yes(total) if self.chain_ok(buf, p as i64, total, max_len) => {
                    self.skipped += (wlen + p) as u64;
                    return (p, Some(self.synced()));
                }
                Plausible::Maybe if buf_maybe.is_none() => buf_maybe = Some(p),
                _ => {}
            }
        }
        // Nothing complete: keep the earliest position that may still become a header.
        let keep = match (window_maybe, buf_maybe) {
            (Some(j), _) if extra == buf.len() => Some((j, &tmp[j..wlen + extra])),
            (_, Some(p)) => Some((wlen + p, &buf[p..])),
            _ => None,
        };
        match keep {
            Some((at, bytes)) if bytes.len() < MAX_HEADER_LEN => {
                self.win[..bytes.len()].copy_from_slice(bytes);
                self.win_len = bytes.len();
                self.skipped += at as u64;
            }
            _ => {
                self.win_len = 0;
                self.skipped += (wlen + buf.len()) as u64;
            }
        }
        (buf.len(), None)
    }

    fn step<'a>(
        &'a mut self,
        dir: Direction,
        buf: &'a mut [u8],
        cfg: &ObserverConfig,
    ) -> Step<ObservedEvent<'a>> {
        let anomaly = |consumed, anomaly| Step {
            consumed,
            event: Some(ObservedEvent::Anomaly { dir, anomaly }),
        };
        match self.mode {
            Mode::Lost => {
                return Step {
                    consumed: buf.len(),
                    event: None,
                }
            }
            Mode::Resync => {
                let (consumed, found) = self.resync(buf, cfg.resync_max_frame_len);
                return match found {
                    Some(a) => anomaly(consumed, a),
                    None => Step {
                        consumed,
                        event: None,
                    },
                };
            }
            Mode::Sync => {}
        }
        if let Some(opcode) = self.pending_message {
            // Violations the decoder still holds (invalid UTF-8 at the end) come first.
            let held = match self.dec.decode(&mut []) {
                Ok(Step {
                    event: Some(MessageEvent::Violation(v)),
                    ..
                }) => Some(v),
                _ => None,
            };
            if let Some(v) = held {
                return anomaly(0, Anomaly::Protocol(v));
            }
            self.pending_message = None;
            return Step {
                consumed: 0,
                event: Some(ObservedEvent::Message { dir, opcode }),
            };
        }
        if let Some(opcode) = self.pending_after_close.take() {
            return anomaly(0, Anomaly::FrameAfterClose { opcode });
        }
        let base = buf.as_ptr() as usize;
        let len = buf.len();
        let (consumed, raw) = match self.dec.decode(&mut *buf) {
            Err(e) => (0, Raw::Failed(e)),
            Ok(step) => {
                let raw = match step.event {
                    None => Raw::None,
                    Some(MessageEvent::Frame(h)) => Raw::Frame(h),
                    Some(MessageEvent::Data {
                        opcode,
                        compressed,
                        chunk,
                        first,
                        frame_end,
                        message_end,
                    }) => {
                        let (at, len) = locate(base, len, chunk);
                        Raw::Data {
                            at,
                            len,
                            opcode,
                            compressed,
                            first,
                            frame_end,
                            message_end,
                        }
                    }
                    Some(MessageEvent::ControlData { chunk }) => {
                        let (at, len) = locate(base, len, chunk);
                        Raw::ControlData { at, len }
                    }
                    Some(MessageEvent::Control(c)) => {
                        let n = c.payload.len().min(MAX_CONTROL_PAYLOAD);
                        self.ctl[..n].copy_from_slice(&c.payload[..n]);
                        self.ctl_len = n;
                        Raw::Control(c.opcode)
                    }
                    Some(MessageEvent::Violation(v)) => Raw::Violation(v),
                };
                (step.consumed, raw)
            }
        };
        match raw {
            Raw::None => Step {
                consumed,
                event: None,
            },
            Raw::Failed(e) => {
                self.lose(cfg.resync);
                anomaly(
                    0,
                    Anomaly::Desync {
                        cause: DesyncCause::Framing(e),
                    },
                )
            }
            Raw::Violation(v) => anomaly(consumed, Anomaly::Protocol(v)),
            Raw::Frame(header) => {
                self.hdr_len = header.emit(&mut self.hdr);
                self.frame = Some(Track { header, seen: 0 });
                self.expect_mask = header.mask.is_some();
                if self.close_seen {
                    self.pending_after_close = Some(header.opcode);
                }
                Step {
                    consumed,
                    event: Some(ObservedEvent::Frame {
                        dir,
                        header,
                        header_bytes: &self.hdr[..self.hdr_len],
                    }),
                }
            }
            Raw::Data {
                at,
                len,
                opcode,
                compressed,
                first,
                frame_end,
                message_end,
            } => {
                let remaining = self.advance(len, frame_end);
                if message_end {
                    self.pending_message = Some(opcode);
                }
                let buf: &'a [u8] = buf;
                Step {
                    consumed,
                    event: Some(ObservedEvent::FrameData {
                        dir,
                        chunk: buf.get(at..at + len).unwrap_or(&[]),
                        opcode,
                        compressed,
                        first,
                        remaining,
                        frame_end,
                        message_end,
                    }),
                }
            }
            Raw::ControlData { at, len } => {
                let (opcode, first) = self
                    .frame
                    .map_or((OpCode::CLOSE, true), |t| (t.header.opcode, t.seen == 0));
                let remaining = self.frame.map_or(0, |t| {
                    t.header.payload_len.saturating_sub(t.seen + len as u64)
                });
                let end = remaining == 0;
                self.advance(len, end);
                let buf: &'a [u8] = buf;
                Step {
                    consumed,
                    event: Some(ObservedEvent::FrameData {
                        dir,
                        chunk: buf.get(at..at + len).unwrap_or(&[]),
                        opcode,
                        compressed: false,
                        first,
                        remaining,
                        frame_end: end,
                        message_end: end,
                    }),
                }
            }
            Raw::Control(opcode) => {
                self.frame = None;
                if opcode == OpCode::CLOSE {
                    self.close_seen = true;
                    self.pending_message = Some(opcode);
                    let payload = &self.ctl[..self.ctl_len];
                    let (status, reason) = zeek_status(payload);
                    Step {
                        consumed,
                        event: Some(ObservedEvent::Close {
                            dir,
                            status,
                            reason,
                            payload,
                        }),
                    }
                } else {
                    Step {
                        consumed,
                        event: Some(ObservedEvent::Message { dir, opcode }),
                    }
                }
            }
        }
    }

    /// Counts `len` payload bytes of the current frame; returns the bytes it still owes.
    fn advance(&mut self, len: usize, frame_end: bool) -> u64 {
        let remaining = match self.frame.as_mut() {
            Some(t) => {
                t.seen = t.seen.saturating_add(len as u64);
                t.header.payload_len.saturating_sub(t.seen)
            }
            None => 0,
        };
        if frame_end {
            self.frame = None;
        }
        remaining
    }
}

/// Events produced outside `feed` (by `gap` and `eof`), waiting for the next `feed`.
#[derive(Clone, Copy, Debug)]
enum Deferred {
    Anomaly(Anomaly<'static>),
    Message(OpCode),
    Eof,
}

/// At most this many deferred events are kept per direction (a caller calling `gap` in a loop
/// without feeding cannot grow memory).
const MAX_DEFERRED: usize = 32;

#[derive(Clone, Debug)]
struct DirState {
    http: HttpDir,
    ws: Option<WsDir>,
    deferred: VecDeque<Deferred>,
    eof: bool,
    /// A gap hit this direction while it waited for the upgrade: start by resynchronising.
    lost_before_upgrade: bool,
}

impl DirState {
    fn new() -> Self {
        Self {
            http: HttpDir::Head(HeadBuffer::default()),
            ws: None,
            deferred: VecDeque::new(),
            eof: false,
            lost_before_upgrade: false,
        }
    }

    fn defer(&mut self, d: Deferred) {
        if self.deferred.len() < MAX_DEFERRED {
            self.deferred.push_back(d);
        }
    }

    /// Moves the frame layer's pending events into the deferred queue, so that events caused
    /// by a gap or the end of stream come after them.
    fn flush_pending(&mut self) {
        if let Some(ws) = self.ws.as_mut() {
            if let Some(op) = ws.pending_message.take() {
                if self.deferred.len() < MAX_DEFERRED {
                    self.deferred.push_back(Deferred::Message(op));
                }
            }
            if let Some(opcode) = ws.pending_after_close.take() {
                if self.deferred.len() < MAX_DEFERRED {
                    self.deferred
                        .push_back(Deferred::Anomaly(Anomaly::FrameAfterClose { opcode }));
                }
            }
        }
    }
}

/// Connection-level events waiting to be reported.
#[derive(Clone, Copy, Debug)]
enum ConnEvent {
    Established,
    Problem(Direction, HandshakeError),
    Anomaly(Direction, Anomaly<'static>),
    BadUpgrade(HandshakeError),
    Stopped(StopReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Http,
    WebSocket,
    Stopped,
}

/// A request waiting for its response.
#[derive(Clone, Copy, Debug)]
struct Pending {
    head: bool,
}

/// The two-direction passive observer of one connection (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Observer {
    cfg: ObserverConfig,
    phase: Phase,
    dirs: [DirState; 2],
    request: Option<Request>,
    response: Option<Response>,
    pending: VecDeque<Pending>,
    upgrade: Option<Upgrade>,
    conn: VecDeque<ConnEvent>,
}

impl Observer {
    /// An observer at the start of a connection (HTTP first).
    pub fn new(cfg: ObserverConfig) -> Self {
        Self {
            cfg,
            phase: Phase::Http,
            dirs: [DirState::new(), DirState::new()],
            request: None,
            response: None,
            pending: VecDeque::new(),
            upgrade: None,
            conn: VecDeque::new(),
        }
    }

    /// An observer of a connection whose handshake was not seen: both directions are frames
    /// from the first byte (fuzzing seeds, captures that start after the upgrade). No extension
    /// is assumed, so RSV bits are anomalies.
    pub fn after_handshake(cfg: ObserverConfig) -> Self {
        let mut obs = Self::new(cfg);
        obs.start_websocket(0);
        obs
    }

    /// The settings.
    pub const fn config(&self) -> &ObserverConfig {
        &self.cfg
    }

    /// The upgrade, once established.
    pub const fn upgrade(&self) -> Option<&Upgrade> {
        self.upgrade.as_ref()
    }

    /// Whether frames are being decoded (the upgrade was seen and accepted).
    pub fn is_websocket(&self) -> bool {
        self.phase == Phase::WebSocket
    }

    /// Whether the observer stopped analysing the connection.
    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    /// Whether `dir` is waiting for the other direction ([`ObservedEvent::Paused`]).
    pub fn is_paused(&self, dir: Direction) -> bool {
        self.phase == Phase::Http && matches!(self.dirs[dir.index()].http, HttpDir::Paused)
    }

    fn start_websocket(&mut self, extension_rsv: u8) {
        self.phase = Phase::WebSocket;
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            let cfg = self.cfg;
            let d = &mut self.dirs[dir.index()];
            let mut ws = WsDir::new(dir, &cfg, extension_rsv);
            if d.lost_before_upgrade {
                ws.lose(cfg.resync);
            }
            d.ws = Some(ws);
        }
    }

    fn stop(&mut self, reason: StopReason) {
        self.phase = Phase::Stopped;
        self.conn.push_back(ConnEvent::Stopped(reason));
    }

    /// Decodes the next event from the front of `buf`, bytes of direction `dir`.
    ///
    /// Same contract as [`MessageDecoder::decode`]: drop `consumed` bytes and call again until
    /// the event is `None`, which means all bytes were used. Payload chunks are unmasked in
    /// `buf`. The one exception is [`ObservedEvent::Paused`]: the remaining bytes were not
    /// consumed and must be fed again after the other direction has been fed.
    pub fn feed<'a>(&'a mut self, dir: Direction, buf: &'a mut [u8]) -> Step<ObservedEvent<'a>> {
        let i = dir.index();
        if let Some(d) = self.dirs[i].deferred.pop_front() {
            let event = match d {
                Deferred::Anomaly(anomaly) => ObservedEvent::Anomaly { dir, anomaly },
                Deferred::Message(opcode) => ObservedEvent::Message { dir, opcode },
                Deferred::Eof => ObservedEvent::Eof { dir },
            };
            return Step {
                consumed: 0,
                event: Some(event),
            };
        }
        if let Some(c) = self.conn.pop_front() {
            return Step {
                consumed: 0,
                event: Some(self.conn_event(c)),
            };
        }
        if self.dirs[i].eof && !buf.is_empty() {
            return Step {
                consumed: buf.len(),
                event: Some(ObservedEvent::Anomaly {
                    dir,
                    anomaly: Anomaly::DataAfterEof { len: buf.len() },
                }),
            };
        }
        match self.phase {
            Phase::Stopped => Step {
                consumed: buf.len(),
                event: None,
            },
            Phase::Http => self.feed_http(dir, buf),
            Phase::WebSocket => {
                let cfg = self.cfg;
                match self.dirs[i].ws.as_mut() {
                    Some(ws) => ws.step(dir, buf, &cfg),
                    None => Step {
                        consumed: buf.len(),
                        event: None,
                    },
                }
            }
        }
    }

    fn conn_event(&self, c: ConnEvent) -> ObservedEvent<'_> {
        match c {
            ConnEvent::Established => match &self.upgrade {
                Some(u) => ObservedEvent::Established(u),
                None => ObservedEvent::Stopped {
                    reason: StopReason::Abandoned,
                },
            },
            ConnEvent::Problem(dir, HandshakeError::AcceptMismatch) => {
                let upgrade = self.upgrade.as_ref();
                let found = upgrade.and_then(|u| u.response.headers().get(ACCEPT));
                let expected = upgrade.and_then(Upgrade::expected_accept);
                let anomaly = match (expected, found) {
                    (Some(expected), Some(found)) => Anomaly::WrongAccept { expected, found },
                    _ => Anomaly::Handshake(HandshakeError::AcceptMismatch),
                };
                ObservedEvent::Anomaly { dir, anomaly }
            }
            ConnEvent::Problem(dir, e) => ObservedEvent::Anomaly {
                dir,
                anomaly: Anomaly::Handshake(e),
            },
            ConnEvent::Anomaly(dir, anomaly) => ObservedEvent::Anomaly { dir, anomaly },
            ConnEvent::BadUpgrade(e) => ObservedEvent::BadUpgrade(e),
            ConnEvent::Stopped(reason) => ObservedEvent::Stopped { reason },
        }
    }

    /// Follows HTTP in `dir`: skips bodies, collects a head and reports it.
    fn feed_http<'a>(&'a mut self, dir: Direction, buf: &[u8]) -> Step<ObservedEvent<'a>> {
        let i = dir.index();
        let limits = self.cfg.limits;
        let mut at = 0;
        loop {
            let rest = buf.get(at..).unwrap_or(&[]);
            let d = &mut self.dirs[i];
            match &mut d.http {
                HttpDir::Paused => {
                    let event = (at < buf.len()).then_some(ObservedEvent::Paused { dir });
                    return Step {
                        consumed: at,
                        event,
                    };
                }
                HttpDir::Body { body, then_pause } => {
                    if rest.is_empty() {
                        return Step {
                            consumed: at,
                            event: None,
                        };
                    }
                    match body.skip(rest) {
                        Ok((used, done)) => {
                            at += used;
                            if done || body.is_done() {
                                d.http = if *then_pause {
                                    HttpDir::Paused
                                } else {
                                    HttpDir::Head(HeadBuffer::default())
                                };
                            }
                        }
                        Err(()) => return self.abandon(dir, buf.len(), Anomaly::BadBody),
                    }
                }
                HttpDir::Head(hb) => {
                    if rest.is_empty() {
                        return Step {
                            consumed: at,
                            event: None,
                        };
                    }
                    match hb.push(rest, limits.max_head_len) {
                        Err(e) => return self.abandon(dir, buf.len(), Anomaly::Handshake(e)),
                        Ok(Push::NeedMore) => {
                            let request = dir == Direction::ClientToServer;
                            if let Some(e) = early_error(hb.bytes(), request) {
                                return self.abandon(dir, buf.len(), Anomaly::Handshake(e));
                            }
                            return Step {
                                consumed: buf.len(),
                                event: None,
                            };
                        }
                        Ok(Push::Candidate { used }) => {
                            at += used;
                            let head = hb.take();
                            let have = head.len();
                            let parsed = match dir {
                                Direction::ClientToServer => Request::from_head(head, &limits)
                                    .map(|r| r.map(|(r, n)| (Head::Request(r), n))),
                                Direction::ServerToClient => Response::from_head(head, &limits)
                                    .map(|r| r.map(|(r, n)| (Head::Response(r), n))),
                            };
                            match parsed {
                                Ok(Err(back)) => hb.restore(back),
                                Ok(Ok((head, len))) => {
                                    at -= have.saturating_sub(len).min(at);
                                    let after = buf.len() - at;
                                    return match head {
                                        Head::Request(r) => self.on_request(at, r),
                                        Head::Response(r) => self.on_response(at, after, r),
                                    };
                                }
                                Err(e) => {
                                    return self.abandon(dir, buf.len(), Anomaly::Handshake(e))
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Reports `anomaly`, consumes everything and stops.
    fn abandon(
        &mut self,
        dir: Direction,
        consumed: usize,
        anomaly: Anomaly<'static>,
    ) -> Step<ObservedEvent<'_>> {
        self.stop(StopReason::Abandoned);
        Step {
            consumed,
            event: Some(ObservedEvent::Anomaly { dir, anomaly }),
        }
    }

    fn on_request(&mut self, consumed: usize, req: Request) -> Step<ObservedEvent<'_>> {
        let dir = Direction::ClientToServer;
        let Ok(body) = request_body(&req) else {
            return self.abandon(dir, consumed, Anomaly::BadBody);
        };
        if self.pending.len() >= self.cfg.max_pending_requests {
            let limit = self.cfg.max_pending_requests;
            return self.abandon(dir, consumed, Anomaly::TooManyPendingRequests { limit });
        }
        let upgrade = req.wants_upgrade();
        self.pending.push_back(Pending {
            head: req.method().eq_ignore_ascii_case("HEAD"),
        });
        self.dirs[dir.index()].http = match body {
            Some(body) => HttpDir::Body {
                body,
                then_pause: upgrade,
            },
            None if upgrade => HttpDir::Paused,
            None => HttpDir::Head(HeadBuffer::default()),
        };
        let req = self.request.insert(req);
        Step {
            consumed,
            event: Some(ObservedEvent::Request(req)),
        }
    }

    fn on_response(
        &mut self,
        consumed: usize,
        after: usize,
        resp: Response,
    ) -> Step<ObservedEvent<'_>> {
        let dir = Direction::ServerToClient;
        let status = resp.status();
        let informational = (100..200).contains(&status) && status != 101;
        let matched = if informational {
            self.pending.front().copied()
        } else {
            self.pending.pop_front()
        };
        if matched.is_none() && status != 101 {
            // (A 101 without a request is reported as `UnsolicitedUpgrade` instead.)
            self.conn
                .push_back(ConnEvent::Anomaly(dir, Anomaly::UnmatchedResponse));
        }
        // The request this answers, when it is the last one seen.
        let request = if matched.is_some() && self.pending.is_empty() && !informational {
            self.request.take()
        } else {
            None
        };
        if status == 101 {
            let asked_websocket = request
                .as_ref()
                .is_some_and(|r| r.headers().has_token(UPGRADE, "websocket"));
            let says_websocket = resp.headers().has_token(UPGRADE, "websocket");
            let no_upgrade_header = resp.headers().count(UPGRADE) == 0;
            if !(says_websocket || (no_upgrade_header && asked_websocket)) {
                self.stop(StopReason::OtherProtocol);
                let resp = self.response.insert(resp);
                return Step {
                    consumed,
                    event: Some(ObservedEvent::Response(resp)),
                };
            }
            return self.on_upgrade(consumed, after, request, resp);
        }
        if !informational {
            let to_head = matched.is_some_and(|m| m.head);
            match response_body(&resp, to_head) {
                Err(()) => {
                    self.conn
                        .push_back(ConnEvent::Anomaly(dir, Anomaly::BadBody));
                    self.stop(StopReason::Abandoned);
                }
                Ok(Some(Body::UntilClose)) => self.stop(StopReason::BodyUntilClose),
                Ok(Some(body)) => {
                    self.dirs[dir.index()].http = HttpDir::Body {
                        body,
                        then_pause: false,
                    };
                }
                Ok(None) => {}
            }
            // A refused upgrade: the client speaks HTTP again (unless bytes were lost while it
            // waited, which leaves no way to find its next head).
            let client = &mut self.dirs[Direction::ClientToServer.index()];
            if matches!(client.http, HttpDir::Paused) {
                client.http = HttpDir::Head(HeadBuffer::default());
                if client.lost_before_upgrade && self.phase != Phase::Stopped {
                    self.stop(StopReason::Abandoned);
                }
            }
        }
        let resp = self.response.insert(resp);
        Step {
            consumed,
            event: Some(ObservedEvent::Response(resp)),
        }
    }

    fn on_upgrade(
        &mut self,
        consumed: usize,
        after: usize,
        request: Option<Request>,
        response: Response,
    ) -> Step<ObservedEvent<'_>> {
        let mut problems: Vec<(Direction, HandshakeError)> = Vec::new();
        match &request {
            Some(req) => {
                problems.extend(
                    req.problems()
                        .into_iter()
                        .map(|e| (Direction::ClientToServer, e)),
                );
                problems.extend(
                    response
                        .problems_for(req)
                        .into_iter()
                        .map(|e| (Direction::ServerToClient, e)),
                );
            }
            None => {
                problems.push((
                    Direction::ServerToClient,
                    HandshakeError::UnsolicitedUpgrade,
                ));
                problems.extend(
                    response
                        .problems_without_request()
                        .into_iter()
                        .map(|e| (Direction::ServerToClient, e)),
                );
            }
        }
        let upgrade = Upgrade { request, response };
        let extension_rsv = if upgrade.permessage_deflate() {
            RSV1
        } else {
            0
        };
        match (self.cfg.policy, problems.first()) {
            (UpgradePolicy::Strict, Some(&(_, first))) => {
                self.phase = Phase::Stopped;
                self.conn.push_back(ConnEvent::BadUpgrade(first));
            }
            _ => {
                self.start_websocket(extension_rsv);
                self.conn.push_back(ConnEvent::Established);
                for (dir, e) in problems {
                    self.conn.push_back(ConnEvent::Problem(dir, e));
                }
                if after > 0 {
                    self.conn.push_back(ConnEvent::Anomaly(
                        Direction::ServerToClient,
                        Anomaly::DataWithUpgradeReply { len: after },
                    ));
                }
            }
        }
        let upgrade = self.upgrade.insert(upgrade);
        Step {
            consumed,
            event: Some(ObservedEvent::Response(&upgrade.response)),
        }
    }

    /// `len` bytes of `dir` were lost (a capture or reassembly gap). The events it causes
    /// ([`Anomaly::Gap`], `Message` when the gap ended a message, [`Anomaly::Desync`]) come out
    /// of the next [`Observer::feed`] for `dir`.
    ///
    /// Inside a payload the direction stays in sync. Elsewhere after the upgrade, framing is
    /// lost and the direction resynchronises. Before the upgrade, a gap inside a body of known
    /// length is skipped; anywhere else in HTTP the connection is abandoned.
    pub fn gap(&mut self, dir: Direction, len: u64) {
        if len == 0 {
            return;
        }
        let resync = self.cfg.resync;
        let i = dir.index();
        match self.phase {
            Phase::Stopped => {
                self.dirs[i].defer(Deferred::Anomaly(Anomaly::Gap {
                    len,
                    in_payload: false,
                }));
            }
            Phase::WebSocket => {
                let d = &mut self.dirs[i];
                d.flush_pending();
                let Some(ws) = d.ws.as_mut() else { return };
                let mut events: [Option<Deferred>; 3] = [None; 3];
                match ws.mode {
                    Mode::Sync => match ws.dec.skip(len) {
                        GapOutcome::InPayload {
                            frame_end,
                            message_end,
                        } => {
                            ws.advance(usize::try_from(len).unwrap_or(usize::MAX), frame_end);
                            events[0] = Some(Deferred::Anomaly(Anomaly::Gap {
                                len,
                                in_payload: true,
                            }));
                            events[1] = message_end.map(Deferred::Message);
                        }
                        GapOutcome::FramingLost => {
                            ws.lose(resync);
                            events[0] = Some(Deferred::Anomaly(Anomaly::Gap {
                                len,
                                in_payload: false,
                            }));
                            events[1] = Some(Deferred::Anomaly(Anomaly::Desync {
                                cause: DesyncCause::Gap,
                            }));
                        }
                    },
                    Mode::Resync => {
                        // The bytes kept are no longer followed by what they were before.
                        ws.skipped += ws.win_len as u64;
                        ws.win_len = 0;
                        events[0] = Some(Deferred::Anomaly(Anomaly::Gap {
                            len,
                            in_payload: false,
                        }));
                    }
                    Mode::Lost => {
                        events[0] = Some(Deferred::Anomaly(Anomaly::Gap {
                            len,
                            in_payload: false,
                        }));
                    }
                }
                for e in events.into_iter().flatten() {
                    d.defer(e);
                }
            }
            Phase::Http => {
                let d = &mut self.dirs[i];
                let (in_body, abandon) = match &mut d.http {
                    HttpDir::Body { body, .. } => {
                        let ok = body.gap(len);
                        (ok, !ok)
                    }
                    HttpDir::Paused => {
                        d.lost_before_upgrade = true;
                        (false, false)
                    }
                    HttpDir::Head(_) => (false, true),
                };
                if let HttpDir::Body { body, then_pause } = &d.http {
                    if body.is_done() {
                        d.http = if *then_pause {
                            HttpDir::Paused
                        } else {
                            HttpDir::Head(HeadBuffer::default())
                        };
                    }
                }
                d.defer(Deferred::Anomaly(Anomaly::Gap {
                    len,
                    in_payload: in_body,
                }));
                if abandon {
                    self.stop(StopReason::Abandoned);
                }
            }
        }
    }

    /// `dir` ended (FIN or RST). The events it causes (an anomaly when it ended inside a head,
    /// a body, a frame or a message, then [`ObservedEvent::Eof`]) come out of the next
    /// [`Observer::feed`] for `dir`; bytes fed for `dir` afterwards are an anomaly.
    pub fn eof(&mut self, dir: Direction) {
        let phase = self.phase;
        let d = &mut self.dirs[dir.index()];
        if d.eof {
            return;
        }
        d.eof = true;
        d.flush_pending();
        let anomaly = match phase {
            Phase::Stopped => None,
            Phase::Http => match &d.http {
                HttpDir::Head(hb) if !hb.is_empty() => Some(Anomaly::EofInHead),
                HttpDir::Body {
                    body: Body::UntilClose,
                    ..
                } => None,
                HttpDir::Body { .. } => Some(Anomaly::EofInBody),
                _ => None,
            },
            Phase::WebSocket => match d.ws.as_mut() {
                Some(ws) if ws.mode == Mode::Sync => {
                    if let Some(t) = ws.frame {
                        Some(Anomaly::EofInFrame {
                            remaining: t.header.payload_len.saturating_sub(t.seen),
                        })
                    } else if !ws.dec.frame_decoder().is_at_boundary() {
                        Some(Anomaly::EofInFrame { remaining: 0 })
                    } else if ws.dec.in_message() {
                        Some(Anomaly::EofInMessage)
                    } else {
                        None
                    }
                }
                _ => None,
            },
        };
        if let Some(a) = anomaly {
            d.defer(Deferred::Anomaly(a));
        }
        d.defer(Deferred::Eof);
    }
}

/// A parsed head, either side.
enum Head {
    Request(Request),
    Response(Response),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::apply_mask;
    use alloc::string::{String, ToString};
    use alloc::vec;
    use alloc::{format, vec::Vec};
    use Direction::{ClientToServer as C, ServerToClient as S};

    const REQUEST: &str =
        "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        User-Agent: test/1.0\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";
    const RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        Sec-WebSocket-Protocol: chat\r\n\r\n";
    const ACCEPT_VALUE: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    /// An owned, comparable record of an event.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Ev {
        Request(String),
        Response(u16),
        Established,
        BadUpgrade(HandshakeError),
        Frame(Direction, bool, u8, u64),
        Data {
            dir: Direction,
            bytes: Vec<u8>,
            opcode: u8,
            first: bool,
            frame_end: bool,
            message_end: bool,
        },
        Close(Direction, u16, Vec<u8>),
        Message(Direction, u8),
        Anomaly(Direction, &'static str, String),
        Eof(Direction),
        Stopped(StopReason),
    }

    fn data(dir: Direction, bytes: &[u8], opcode: u8, first: bool, message_end: bool) -> Ev {
        Ev::Data {
            dir,
            bytes: bytes.to_vec(),
            opcode,
            first,
            frame_end: true,
            message_end,
        }
    }

    fn anomaly(dir: Direction, name: &'static str, detail: &str) -> Ev {
        Ev::Anomaly(dir, name, detail.to_string())
    }

    /// Feeds an observer like a reassembler would: per-direction buffers, fed until `None`,
    /// paused bytes kept and retried after the other direction.
    struct Driver {
        obs: Observer,
        pending: [Vec<u8>; 2],
        events: Vec<Ev>,
        /// Per direction: the current frame's payload length and bytes seen, to check
        /// `remaining`.
        frame: [Option<(u64, u64)>; 2],
    }

    impl Driver {
        fn new(obs: Observer) -> Self {
            Self {
                obs,
                pending: [Vec::new(), Vec::new()],
                events: Vec::new(),
                frame: [None, None],
            }
        }

        fn send(&mut self, dir: Direction, bytes: &[u8]) {
            self.pending[dir.index()].extend_from_slice(bytes);
            self.pump_all(dir);
        }

        fn gap(&mut self, dir: Direction, len: u64) {
            assert!(self.pending[dir.index()].is_empty() || self.obs.is_paused(dir));
            self.obs.gap(dir, len);
            self.pump_all(dir);
        }

        fn eof(&mut self, dir: Direction) {
            self.obs.eof(dir);
            self.pump_all(dir);
        }

        fn pump_all(&mut self, first: Direction) {
            loop {
                let a = self.pump(first);
                let b = self.pump(first.reverse());
                if !a && !b {
                    break;
                }
            }
        }

        /// Feeds what `dir` has; true when an event came out.
        fn pump(&mut self, dir: Direction) -> bool {
            let i = dir.index();
            let mut buf = core::mem::take(&mut self.pending[i]);
            let mut at = 0;
            let mut any = false;
            loop {
                let step = self.obs.feed(dir, &mut buf[at..]);
                at += step.consumed;
                let Some(ev) = step.event else {
                    assert_eq!(at, buf.len(), "None must mean all consumed");
                    break;
                };
                if let ObservedEvent::Paused { dir: d } = ev {
                    assert_eq!(d, dir);
                    break;
                }
                any = true;
                let rec = record(&mut self.frame, ev);
                self.events.push(rec);
            }
            buf.drain(..at);
            self.pending[i] = buf;
            any
        }

        /// Events with consecutive data chunks of a frame merged.
        fn merged(&self) -> Vec<Ev> {
            let mut out: Vec<Ev> = Vec::new();
            for ev in &self.events {
                if let (
                    Some(Ev::Data {
                        dir: d0,
                        bytes: b0,
                        frame_end: fe0,
                        message_end: me0,
                        ..
                    }),
                    Ev::Data {
                        dir,
                        bytes,
                        frame_end,
                        message_end,
                        first,
                        ..
                    },
                ) = (out.last_mut(), ev)
                {
                    if *d0 == *dir && !*fe0 {
                        assert!(!first);
                        b0.extend_from_slice(bytes);
                        *fe0 = *frame_end;
                        *me0 = *message_end;
                        continue;
                    }
                }
                out.push(ev.clone());
            }
            out
        }
    }

    fn record(frames: &mut [Option<(u64, u64)>; 2], ev: ObservedEvent<'_>) -> Ev {
        match ev {
            ObservedEvent::Request(r) => Ev::Request(r.target().to_string()),
            ObservedEvent::Response(r) => Ev::Response(r.status()),
            ObservedEvent::Established(_) => Ev::Established,
            ObservedEvent::BadUpgrade(e) => Ev::BadUpgrade(e),
            ObservedEvent::Frame {
                dir,
                header,
                header_bytes,
            } => {
                // The raw header bytes parse back to the same header.
                assert_eq!(
                    FrameHeader::parse(header_bytes),
                    Ok(HeaderStatus::Complete(header))
                );
                assert_eq!(header_bytes.len(), header.header_len());
                frames[dir.index()] = Some((header.payload_len, 0));
                Ev::Frame(dir, header.fin, header.opcode.0, header.payload_len)
            }
            ObservedEvent::FrameData {
                dir,
                chunk,
                opcode,
                first,
                remaining,
                frame_end,
                message_end,
                ..
            } => {
                let f = frames[dir.index()].as_mut().expect("data without a frame");
                f.1 += chunk.len() as u64;
                assert_eq!(remaining, f.0 - f.1, "remaining");
                assert_eq!(frame_end, remaining == 0);
                Ev::Data {
                    dir,
                    bytes: chunk.to_vec(),
                    opcode: opcode.0,
                    first,
                    frame_end,
                    message_end,
                }
            }
            ObservedEvent::Close {
                dir,
                status,
                reason,
                payload,
            } => {
                assert_eq!(zeek_status(payload), (status, reason));
                Ev::Close(dir, status, reason.to_vec())
            }
            ObservedEvent::Message { dir, opcode } => Ev::Message(dir, opcode.0),
            ObservedEvent::Anomaly { dir, anomaly } => {
                if let Anomaly::Gap {
                    len,
                    in_payload: true,
                } = anomaly
                {
                    if let Some(f) = frames[dir.index()].as_mut() {
                        f.1 += len;
                    }
                }
                Ev::Anomaly(dir, anomaly.name(), format!("{}", anomaly.detail()))
            }
            ObservedEvent::Eof { dir } => Ev::Eof(dir),
            ObservedEvent::Stopped { reason } => Ev::Stopped(reason),
            ObservedEvent::Paused { .. } => unreachable!("handled by the driver"),
        }
    }

    fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let h = FrameHeader::new(fin, OpCode(opcode), mask, payload.len() as u64);
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = h.emit(&mut out);
        let mut v = out[..n].to_vec();
        let start = v.len();
        v.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut v[start..], key, 0);
        }
        v
    }

    fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        frame(fin, opcode, payload, Some([0x37, 0xfa, 0x21, 0x3d]))
    }

    fn server(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        frame(fin, opcode, payload, None)
    }

    /// A tiny deterministic generator for split points.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n.max(1) as u64) as usize
        }
    }

    /// Runs a script of segments, each cut into random pieces.
    fn run_split(script: &[(Direction, Vec<u8>)], seed: u64, max_piece: usize) -> Vec<Ev> {
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        let mut rng = Rng(seed | 1);
        for (dir, bytes) in script {
            let mut at = 0;
            while at < bytes.len() {
                let n = 1 + rng.below(max_piece);
                let end = (at + n).min(bytes.len());
                d.send(*dir, &bytes[at..end]);
                at = end;
            }
        }
        d.merged()
    }

    fn run_whole(script: &[(Direction, Vec<u8>)]) -> Driver {
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        for (dir, bytes) in script {
            d.send(*dir, bytes);
        }
        d
    }

    fn session() -> Vec<(Direction, Vec<u8>)> {
        let mut server_frames = server(false, 2, b"Hel");
        server_frames.extend(server(true, 9, b"p"));
        server_frames.extend(server(true, 0, b"lo"));
        vec![
            (C, REQUEST.as_bytes().to_vec()),
            (S, RESPONSE.as_bytes().to_vec()),
            (C, client(true, 1, b"Hello")),
            (S, server_frames),
            (C, client(true, 8, b"\x03\xe8bye")),
            (S, server(true, 8, b"")),
        ]
    }

    #[test]
    fn typical_session_exact_events_any_split() {
        let expected = vec![
            Ev::Request("/chat".into()),
            Ev::Response(101),
            Ev::Established,
            Ev::Frame(C, true, 1, 5),
            data(C, b"Hello", 1, true, true),
            Ev::Message(C, 1),
            Ev::Frame(S, false, 2, 3),
            Ev::Data {
                dir: S,
                bytes: b"Hel".to_vec(),
                opcode: 2,
                first: true,
                frame_end: true,
                message_end: false,
            },
            // A ping between fragments is its own message; the binary message goes on.
            Ev::Frame(S, true, 9, 1),
            data(S, b"p", 9, true, true),
            Ev::Message(S, 9),
            Ev::Frame(S, true, 0, 2),
            data(S, b"lo", 2, false, true),
            Ev::Message(S, 2),
            Ev::Frame(C, true, 8, 5),
            data(C, b"\x03\xe8bye", 8, true, true),
            Ev::Close(C, 1000, b"bye".to_vec()),
            Ev::Message(C, 8),
            Ev::Frame(S, true, 8, 0),
            data(S, b"", 8, true, true),
            Ev::Close(S, 0, Vec::new()),
            Ev::Message(S, 8),
        ];
        let script = session();
        let whole = run_whole(&script);
        assert_eq!(whole.merged(), expected);
        for seed in 1..150 {
            assert_eq!(
                run_split(&script, seed, 1 + (seed as usize % 40)),
                expected,
                "seed {seed}"
            );
        }
        // One byte at a time.
        assert_eq!(run_split(&script, 7, 1), expected);
    }

    #[test]
    fn established_carries_both_heads() {
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        d.send(C, REQUEST.as_bytes());
        d.send(S, RESPONSE.as_bytes());
        let u = d.obs.upgrade().expect("established");
        assert_eq!(u.host(), Some("server.example.com"));
        assert_eq!(u.uri(), Some("/chat"));
        assert_eq!(u.user_agent(), Some("test/1.0"));
        assert_eq!(
            u.client_protocols().collect::<Vec<_>>(),
            ["chat", "superchat"]
        );
        assert_eq!(u.subprotocol(), Some("chat"));
        assert_eq!(
            u.client_extensions().collect::<Vec<_>>(),
            ["permessage-deflate; client_max_window_bits"]
        );
        assert_eq!(u.server_extensions().count(), 0);
        assert_eq!(u.client_key(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(u.server_accept(), Some(ACCEPT_VALUE));
        assert_eq!(u.accept_matches(), Some(true));
        assert!(!u.permessage_deflate());
        assert!(d.obs.is_websocket());
        assert_eq!(u.request().map(Request::method), Some("GET"));
        assert_eq!(u.response().status(), 101);
    }

    #[test]
    fn wrong_accept_is_an_anomaly_and_analysis_goes_on() {
        let wrong = RESPONSE.replace(ACCEPT_VALUE, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=-wrong");
        let script = vec![
            (C, REQUEST.as_bytes().to_vec()),
            (S, wrong.into_bytes()),
            (S, server(true, 9, b"Zeek")),
        ];
        let d = run_whole(&script);
        assert_eq!(
            d.merged(),
            vec![
                Ev::Request("/chat".into()),
                Ev::Response(101),
                Ev::Established,
                anomaly(
                    S,
                    "wrong_accept_header",
                    "expected=s3pPLMBiTxaQ9kYGzzhZRbK+xOo=, found=s3pPLMBiTxaQ9kYGzzhZRbK+xOo=-wrong"
                ),
                Ev::Frame(S, true, 9, 4),
                data(S, b"Zeek", 9, true, true),
                Ev::Message(S, 9),
            ]
        );
        assert_eq!(
            d.obs.upgrade().and_then(Upgrade::accept_matches),
            Some(false)
        );
        let a = Anomaly::WrongAccept {
            expected: AcceptKey::for_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            found: b"x",
        };
        assert_eq!(a.zeek_weird(), Some("websocket_wrong_accept_header"));

        // Strict (Net::Inspect): the connection is declared bad, frames are not analysed.
        let cfg = ObserverConfig {
            policy: UpgradePolicy::Strict,
            ..ObserverConfig::default()
        };
        let mut d = Driver::new(Observer::new(cfg));
        for (dir, bytes) in &script {
            d.send(*dir, bytes);
        }
        assert_eq!(
            d.merged(),
            vec![
                Ev::Request("/chat".into()),
                Ev::Response(101),
                Ev::BadUpgrade(HandshakeError::AcceptMismatch),
            ]
        );
        assert!(d.obs.is_stopped());
    }

    #[test]
    fn ping_coalesced_with_the_101() {
        let ping = server(true, 9, b"Zeek");
        let mut coalesced = RESPONSE.as_bytes().to_vec();
        coalesced.extend_from_slice(&ping);
        let pong = client(true, 10, b"Zeek");
        let separate = run_whole(&[
            (C, REQUEST.as_bytes().to_vec()),
            (S, RESPONSE.as_bytes().to_vec()),
            (S, ping.clone()),
            (C, pong.clone()),
        ])
        .merged();
        let together =
            run_whole(&[(C, REQUEST.as_bytes().to_vec()), (S, coalesced), (C, pong)]).merged();
        let weird = anomaly(S, "data_with_upgrade_reply", "6");
        assert_eq!(together[3], weird);
        let without: Vec<Ev> = together.iter().filter(|e| **e != weird).cloned().collect();
        assert_eq!(without, separate);
        assert!(!separate.contains(&weird));
        assert_eq!(
            &separate[3..],
            &[
                Ev::Frame(S, true, 9, 4),
                data(S, b"Zeek", 9, true, true),
                Ev::Message(S, 9),
                Ev::Frame(C, true, 10, 4),
                data(C, b"Zeek", 10, true, true),
                Ev::Message(C, 10),
            ]
        );
        let a = Anomaly::DataWithUpgradeReply { len: 6 };
        assert_eq!(
            a.zeek_weird(),
            Some("protocol_data_with_HTTP_upgrade_reply")
        );
        assert_eq!(format!("{}", a.detail()), "6");
    }

    fn established() -> Driver {
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        d.send(C, REQUEST.as_bytes());
        d.send(S, RESPONSE.as_bytes());
        d.events.clear();
        d
    }

    #[test]
    fn oversized_close_frame_like_zeek() {
        // oversized-close-frame.pcapng: status 1000 + 256 x "C", 64-bit length form.
        let mut payload = vec![0x03, 0xe8];
        payload.extend_from_slice(&[b'C'; 256]);
        let mut wire = vec![0x88, 0x7f, 0, 0, 0, 0, 0, 0, 0x01, 0x02];
        wire.extend_from_slice(&payload);
        let mut d = established();
        d.send(S, &wire);
        let evs = d.merged();
        assert_eq!(
            evs[0],
            anomaly(
                S,
                "non_minimal_length",
                "payload length not minimally encoded"
            )
        );
        assert_eq!(evs[1], Ev::Frame(S, true, 8, 258));
        assert_eq!(
            evs[2],
            anomaly(S, "control_frame_size_exceeded", "258 > 125")
        );
        assert_eq!(evs[3], data(S, &payload, 8, true, true));
        match &evs[4] {
            Ev::Close(S, 1000, reason) => assert_eq!(reason.len(), 123),
            other => panic!("{other:?}"),
        }
        assert_eq!(evs[5], Ev::Message(S, 8));
        assert_eq!(evs.len(), 6);
        let a = Anomaly::Protocol(ProtocolError::ControlFrameTooLong { len: 258 });
        assert_eq!(
            a.zeek_weird(),
            Some("websocket_control_frame_size_exceeded")
        );
    }

    #[test]
    fn gap_inside_payload_keeps_sync_and_mask_offset() {
        let payload: Vec<u8> = (0..20u8).collect();
        let wire = client(true, 2, &payload);
        let hl = 6;
        let mut d = established();
        d.send(C, &wire[..hl + 5]);
        d.gap(C, 7);
        d.send(C, &wire[hl + 12..]);
        d.send(C, &client(true, 1, b"ok"));
        assert_eq!(
            d.events,
            vec![
                Ev::Frame(C, true, 2, 20),
                Ev::Data {
                    dir: C,
                    bytes: payload[..5].to_vec(),
                    opcode: 2,
                    first: true,
                    frame_end: false,
                    message_end: false
                },
                anomaly(C, "gap", "7 bytes lost inside a payload"),
                // Unmasked correctly after the gap: the key position kept counting.
                Ev::Data {
                    dir: C,
                    bytes: payload[12..].to_vec(),
                    opcode: 2,
                    first: false,
                    frame_end: true,
                    message_end: true
                },
                Ev::Message(C, 2),
                Ev::Frame(C, true, 1, 2),
                data(C, b"ok", 1, true, true),
                Ev::Message(C, 1),
            ]
        );
    }

    #[test]
    fn gap_ending_a_final_frame_ends_its_message() {
        let mut d = established();
        let wire = server(true, 1, b"abcdef");
        d.send(S, &wire[..4]);
        d.gap(S, 4);
        d.send(S, &server(true, 9, b""));
        let evs = d.merged();
        assert_eq!(
            evs,
            vec![
                Ev::Frame(S, true, 1, 6),
                Ev::Data {
                    dir: S,
                    bytes: b"ab".to_vec(),
                    opcode: 1,
                    first: true,
                    frame_end: false,
                    message_end: false
                },
                anomaly(S, "gap", "4 bytes lost inside a payload"),
                Ev::Message(S, 1),
                Ev::Frame(S, true, 9, 0),
                data(S, b"", 9, true, true),
                Ev::Message(S, 9),
            ]
        );
    }

    #[test]
    fn gap_at_a_header_desyncs_then_resyncs() {
        let mut d = established();
        d.send(S, &server(true, 1, b"one"));
        // A frame whose header and first payload bytes are lost; the rest of its payload
        // ('a' = 0x61 has RSV bits set, never a plausible header) then a good frame.
        d.gap(S, 5);
        let mut rest = vec![b'a'; 30];
        rest.extend(server(true, 1, b"two"));
        d.send(S, &rest);
        assert_eq!(
            d.merged(),
            vec![
                Ev::Frame(S, true, 1, 3),
                data(S, b"one", 1, true, true),
                Ev::Message(S, 1),
                anomaly(S, "gap", "5 bytes lost outside a payload"),
                anomaly(S, "desync", "framing lost after a gap"),
                anomaly(S, "resync", "framing found after 30 bytes"),
                Ev::Frame(S, true, 1, 3),
                data(S, b"two", 1, true, true),
                Ev::Message(S, 1),
            ]
        );
    }

    #[test]
    fn resync_across_reads_and_mask_rule() {
        // The plausible header is split across two reads (the kept-bytes path), in the client
        // direction where frames are masked: unmasked-looking garbage is skipped.
        for cut in 0..12 {
            let mut d = established();
            d.gap(C, 3);
            let good = client(true, 2, b"payload");
            // Unmasked headers and a continuation: never a resynchronisation point here.
            let mut stream = vec![b'a', 0x82, 0x05, b'a', 0x81, 0x00];
            stream.extend_from_slice(&good);
            let split = 6 + cut.min(good.len());
            d.send(C, &stream[..split]);
            d.send(C, &stream[split..]);
            let evs = d.merged();
            assert_eq!(
                &evs[..3],
                &[
                    anomaly(C, "gap", "3 bytes lost outside a payload"),
                    anomaly(C, "desync", "framing lost after a gap"),
                    anomaly(C, "resync", "framing found after 6 bytes"),
                ],
                "cut {cut}"
            );
            assert_eq!(
                &evs[3..],
                &[
                    Ev::Frame(C, true, 2, 7),
                    data(C, b"payload", 2, true, true),
                    Ev::Message(C, 2)
                ],
                "cut {cut}"
            );
        }
        // A plausible header whose successor is visible and implausible is rejected: here
        // `81 01 'x'` (followed by 'a') and `01 78 …` (120 bytes, then 'a').
        let mut d = established();
        d.gap(S, 1);
        let mut stream = vec![0x81, 0x01, b'x'];
        stream.extend_from_slice(&[b'a'; 200]);
        stream.extend(server(true, 1, b"ok"));
        d.send(S, &stream);
        assert_eq!(
            d.merged()[2..],
            [
                anomaly(S, "resync", "framing found after 203 bytes"),
                Ev::Frame(S, true, 1, 2),
                data(S, b"ok", 1, true, true),
                Ev::Message(S, 1),
            ]
        );
        // Resync off: the direction stays lost (Zeek).
        let cfg = ObserverConfig {
            resync: false,
            ..ObserverConfig::default()
        };
        let mut d = Driver::new(Observer::new(cfg));
        d.send(C, REQUEST.as_bytes());
        d.send(S, RESPONSE.as_bytes());
        d.events.clear();
        d.gap(S, 2);
        d.send(S, &server(true, 1, b"x"));
        assert_eq!(
            d.merged(),
            vec![
                anomaly(S, "gap", "2 bytes lost outside a payload"),
                anomaly(S, "desync", "framing lost after a gap"),
            ]
        );
    }

    #[test]
    fn length_with_top_bit_loses_framing_then_resyncs() {
        let mut d = established();
        let mut wire = vec![0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1];
        wire.extend(server(true, 2, b"ok"));
        d.send(S, &wire);
        assert_eq!(
            d.merged(),
            vec![
                anomaly(
                    S,
                    "desync",
                    "framing lost: 64-bit payload length with the top bit set"
                ),
                anomaly(S, "resync", "framing found after 10 bytes"),
                Ev::Frame(S, true, 2, 2),
                data(S, b"ok", 2, true, true),
                Ev::Message(S, 2),
            ]
        );
    }

    #[test]
    fn frames_after_close() {
        let mut d = established();
        d.send(S, &server(true, 8, b"\x03\xe8"));
        d.send(S, &server(true, 1, b"late"));
        assert_eq!(
            d.merged(),
            vec![
                Ev::Frame(S, true, 8, 2),
                data(S, b"\x03\xe8", 8, true, true),
                Ev::Close(S, 1000, Vec::new()),
                Ev::Message(S, 8),
                Ev::Frame(S, true, 1, 4),
                anomaly(S, "frame_after_close", "text frame after close"),
                data(S, b"late", 1, true, true),
                Ev::Message(S, 1),
            ]
        );
    }

    #[test]
    fn protocol_violations_are_reported_and_decoding_goes_on() {
        let names = |dir: Direction, wire: Vec<u8>| {
            let mut d = established();
            d.send(dir, &wire);
            d.merged()
                .into_iter()
                .filter_map(|e| match e {
                    Ev::Anomaly(_, name, _) => Some(name),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        // wstunnel-http: unmasked client frames.
        assert_eq!(names(C, server(true, 2, b"x")), ["unmasked_client_frame"]);
        assert_eq!(names(S, client(true, 2, b"x")), ["masked_server_frame"]);
        assert_eq!(names(S, server(true, 3, b"")), ["reserved_opcode"]);
        assert_eq!(names(S, vec![0xc1, 0x00]), ["reserved_bits_set"]);
        assert_eq!(
            names(S, server(false, 9, b"")),
            ["fragmented_control_frame"]
        );
        assert_eq!(names(S, server(true, 0, b"x")), ["unexpected_continuation"]);
        let mut two = server(false, 1, b"a");
        two.extend(server(true, 2, b"b"));
        assert_eq!(names(S, two), ["expected_continuation"]);
        assert_eq!(
            names(S, server(true, 8, b"\x03")),
            ["close_one_byte_payload"]
        );
        assert_eq!(
            names(S, server(true, 8, b"\x03\xed")),
            ["invalid_close_code"]
        );
        // Invalid UTF-8: the anomaly comes before the message's end.
        let mut d = established();
        d.send(S, &server(true, 1, b"\xc0\xaf"));
        d.send(S, &server(true, 1, b"fine"));
        let evs = d.merged();
        assert_eq!(
            &evs[..4],
            &[
                Ev::Frame(S, true, 1, 2),
                data(S, b"\xc0\xaf", 1, true, true),
                anomaly(S, "invalid_utf8", "text message is not valid UTF-8"),
                Ev::Message(S, 1),
            ]
        );
        assert_eq!(evs[5], data(S, b"fine", 1, true, true));
        // A 1-byte close: status 0 like Zeek, after the anomaly.
        let mut d = established();
        d.send(S, &server(true, 8, b"\x03"));
        assert_eq!(
            d.merged()[2..],
            [
                anomaly(
                    S,
                    "close_one_byte_payload",
                    "close frame with a 1-byte payload"
                ),
                Ev::Close(S, 0, Vec::new()),
                Ev::Message(S, 8),
            ]
        );
    }

    #[test]
    fn keep_alive_exchanges_before_the_upgrade() {
        let script = vec![
            // Two pipelined requests in one segment, one of them HEAD.
            (C, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()),
            (
                S,
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
                    .to_vec(),
            ),
            // A POST with a chunked body, answered with a chunked body.
            (
                C,
                b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n"
                    .to_vec(),
            ),
            (
                S,
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                    .to_vec(),
            ),
            (C, REQUEST.as_bytes().to_vec()),
            (S, RESPONSE.as_bytes().to_vec()),
            (S, server(true, 1, b"hi")),
        ];
        let expected = vec![
            Ev::Request("/a".into()),
            Ev::Request("/b".into()),
            Ev::Response(200),
            Ev::Response(200),
            Ev::Request("/c".into()),
            Ev::Response(100),
            Ev::Response(200),
            Ev::Request("/chat".into()),
            Ev::Response(101),
            Ev::Established,
            Ev::Frame(S, true, 1, 2),
            data(S, b"hi", 1, true, true),
            Ev::Message(S, 1),
        ];
        assert_eq!(run_whole(&script).merged(), expected);
        for seed in 1..60 {
            assert_eq!(run_split(&script, seed, 9), expected, "seed {seed}");
        }
    }

    #[test]
    fn paused_client_bytes_wait_for_the_response() {
        // The client sends a frame right after its request, before the 101 arrives.
        let mut first = REQUEST.as_bytes().to_vec();
        first.extend(client(true, 1, b"early"));
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        d.send(C, &first);
        assert_eq!(d.events, vec![Ev::Request("/chat".into())]);
        assert!(d.obs.is_paused(C));
        assert_eq!(d.pending[0].len(), 11);
        d.send(S, RESPONSE.as_bytes());
        assert_eq!(
            d.merged()[1..],
            [
                Ev::Response(101),
                Ev::Established,
                Ev::Frame(C, true, 1, 5),
                data(C, b"early", 1, true, true),
                Ev::Message(C, 1),
            ]
        );
        // A refused upgrade: the client speaks HTTP again.
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        d.send(C, REQUEST.as_bytes());
        d.send(C, b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
        d.send(S, b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            d.merged(),
            vec![
                Ev::Request("/chat".into()),
                Ev::Response(401),
                Ev::Request("/next".into()),
            ]
        );
        assert!(!d.obs.is_websocket() && !d.obs.is_stopped());
    }

    #[test]
    fn stops_for_other_protocols_and_unfollowable_http() {
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        d.send(
            C,
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
        );
        d.send(S, b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nPRI * HTTP/2.0");
        d.send(C, b"\x00\x00\x12\x04");
        assert_eq!(
            d.merged(),
            vec![
                Ev::Request("/".into()),
                Ev::Response(101),
                Ev::Stopped(StopReason::OtherProtocol),
            ]
        );
        // Not HTTP at all (a TLS ClientHello): found at once, not after 16 KiB.
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        d.send(C, &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
        assert_eq!(
            d.merged(),
            vec![
                anomaly(C, "malformed_http", "malformed HTTP head: invalid token"),
                Ev::Stopped(StopReason::Abandoned),
            ]
        );
        // A response body until close.
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        d.send(C, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        d.send(S, b"HTTP/1.1 200 OK\r\n\r\nbody");
        assert_eq!(
            d.merged(),
            vec![
                Ev::Request("/".into()),
                Ev::Response(200),
                Ev::Stopped(StopReason::BodyUntilClose),
            ]
        );
        // A bad Content-Length.
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        d.send(C, b"GET / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n");
        assert_eq!(
            d.merged(),
            vec![
                anomaly(C, "bad_http_body", "HTTP body length cannot be determined"),
                Ev::Stopped(StopReason::Abandoned),
            ]
        );
    }

    #[test]
    fn http_head_limit_bounds_memory() {
        let cfg = ObserverConfig {
            limits: Limits {
                max_head_len: 2048,
                max_headers: 100,
            },
            ..ObserverConfig::default()
        };
        let mut d = Driver::new(Observer::new(cfg));
        d.send(C, b"GET / HTTP/1.1\r\n");
        let mut sent = 16;
        while !d.obs.is_stopped() {
            d.send(C, b"X-Slow: a\r\n");
            sent += 11;
            assert!(sent <= 2048 + 11);
        }
        assert_eq!(
            d.merged(),
            vec![
                anomaly(
                    C,
                    "head_too_large",
                    "HTTP head longer than the limit of 2048 bytes"
                ),
                Ev::Stopped(StopReason::Abandoned),
            ]
        );
        // Afterwards bytes are consumed and ignored.
        d.events.clear();
        d.send(C, &[b'x'; 10_000]);
        assert!(d.events.is_empty() && d.pending[0].is_empty());
    }

    #[test]
    fn eof_inside_frames_messages_and_heads() {
        let mut d = established();
        d.send(S, &server(true, 2, b"abcdef")[..4]);
        d.eof(S);
        assert_eq!(
            d.events[2..],
            [
                anomaly(
                    S,
                    "eof_in_frame",
                    "end of stream inside a frame, 4 payload bytes missing"
                ),
                Ev::Eof(S),
            ]
        );
        d.send(S, b"zz");
        assert_eq!(
            d.events.last(),
            Some(&anomaly(
                S,
                "data_after_eof",
                "2 bytes after the end of stream"
            ))
        );
        let mut d = established();
        d.send(C, &client(false, 1, b"part"));
        d.send(C, &[0x80]);
        d.eof(C);
        assert_eq!(
            d.merged()[2..],
            [
                anomaly(
                    C,
                    "eof_in_frame",
                    "end of stream inside a frame, 0 payload bytes missing"
                ),
                Ev::Eof(C),
            ]
        );
        let mut d = established();
        d.send(C, &client(false, 1, b"part"));
        d.eof(C);
        assert_eq!(
            d.merged()[2..],
            [
                anomaly(
                    C,
                    "eof_in_message",
                    "end of stream inside a fragmented message"
                ),
                Ev::Eof(C),
            ]
        );
        // The message end still pending comes before the end of stream.
        let mut d = established();
        d.send(S, &server(true, 8, b""));
        let n = d.events.len();
        d.eof(S);
        assert_eq!(d.events[n..], [Ev::Eof(S)]);
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        d.send(C, b"GET / HT");
        d.eof(C);
        assert_eq!(
            d.merged(),
            vec![
                anomaly(C, "eof_in_head", "end of stream inside an HTTP head"),
                Ev::Eof(C)
            ]
        );
    }

    #[test]
    fn handshake_problems_with_zeek_weird_names() {
        let req = REQUEST.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
        let resp = RESPONSE.replace(
            "Sec-WebSocket-Protocol: chat\r\n",
            "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n",
        );
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        d.send(C, req.as_bytes());
        d.send(S, resp.as_bytes());
        let evs = d.merged();
        assert_eq!(
            evs[3..],
            [
                anomaly(C, "missing_header", "missing Sec-WebSocket-Key header"),
                anomaly(
                    S,
                    "duplicate_header",
                    "Sec-WebSocket-Protocol header appears more than once"
                ),
            ]
        );
        assert_eq!(
            Anomaly::Handshake(HandshakeError::MissingHeader { name: KEY }).zeek_weird(),
            Some("websocket_missing_key_header")
        );
        assert_eq!(
            Anomaly::Handshake(HandshakeError::DuplicateHeader { name: PROTOCOL }).zeek_weird(),
            Some("websocket_multiple_protocol_headers")
        );
        // A 101 nobody asked for.
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        d.send(S, RESPONSE.as_bytes());
        assert_eq!(
            d.merged(),
            vec![
                Ev::Response(101),
                Ev::Established,
                anomaly(
                    S,
                    "unsolicited_upgrade",
                    "101 response with no upgrade request"
                ),
            ]
        );
    }

    #[test]
    fn deflate_allows_rsv1_on_data_frames() {
        let resp = RESPONSE.replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        );
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        d.send(C, REQUEST.as_bytes());
        d.send(S, resp.as_bytes());
        assert!(d.obs.upgrade().is_some_and(Upgrade::permessage_deflate));
        let mut compressed = server(true, 1, &[0xf2, 0x48, 0x05, 0x00]);
        compressed[0] |= 0x40;
        let mut buf = compressed;
        let mut at = 0;
        let mut saw = false;
        loop {
            let step = d.obs.feed(S, &mut buf[at..]);
            at += step.consumed;
            match step.event {
                None => break,
                Some(ObservedEvent::FrameData { compressed, .. }) => {
                    assert!(compressed);
                    saw = true;
                }
                Some(ObservedEvent::Anomaly { anomaly, .. }) => panic!("{anomaly:?}"),
                Some(_) => {}
            }
        }
        assert!(saw);
        // Without the extension the same frame is an anomaly.
        let mut fresh = Driver::new(Observer::after_handshake(ObserverConfig::default()));
        let mut f = server(true, 1, b"x");
        f[0] |= 0x40;
        fresh.send(S, &f);
        assert_eq!(
            fresh.merged()[1],
            anomaly(
                S,
                "reserved_bits_set",
                "reserved bits 0b100 set without an extension"
            )
        );
    }

    #[test]
    fn observer_after_handshake_decodes_from_the_first_byte() {
        let mut d = Driver::new(Observer::after_handshake(ObserverConfig::default()));
        d.send(C, &client(true, 1, b"hi"));
        d.send(S, &server(true, 2, b"yo"));
        assert_eq!(
            d.merged(),
            vec![
                Ev::Frame(C, true, 1, 2),
                data(C, b"hi", 1, true, true),
                Ev::Message(C, 1),
                Ev::Frame(S, true, 2, 2),
                data(S, b"yo", 2, true, true),
                Ev::Message(S, 2),
            ]
        );
    }

    #[test]
    fn gaps_before_the_upgrade() {
        // Inside a body of known length: followed.
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        d.send(C, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        d.send(S, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab");
        d.gap(S, 6);
        d.send(S, b"ij");
        d.send(C, REQUEST.as_bytes());
        d.send(S, RESPONSE.as_bytes());
        assert!(d.obs.is_websocket());
        assert!(d
            .events
            .contains(&anomaly(S, "gap", "6 bytes lost inside a payload")));
        // In a head: abandoned.
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        d.send(C, b"GET / HTTP/1.1\r\n");
        d.gap(C, 10);
        assert_eq!(
            d.merged(),
            vec![
                anomaly(C, "gap", "10 bytes lost outside a payload"),
                Ev::Stopped(StopReason::Abandoned),
            ]
        );
        // While the client waits for the 101: it starts by resynchronising.
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        d.send(C, REQUEST.as_bytes());
        d.gap(C, 4);
        let mut tail = vec![b'a', b'a'];
        tail.extend(client(true, 1, b"x"));
        d.send(C, &tail);
        d.send(S, RESPONSE.as_bytes());
        let evs = d.merged();
        assert_eq!(
            evs[3..],
            [
                Ev::Established,
                anomaly(C, "resync", "framing found after 2 bytes"),
                Ev::Frame(C, true, 1, 1),
                data(C, b"x", 1, true, true),
                Ev::Message(C, 1),
            ]
        );
    }

    #[test]
    fn garbage_never_panics_and_memory_stays_bounded() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..200 {
            let mut obs = if round % 2 == 0 {
                Observer::after_handshake(ObserverConfig::default())
            } else {
                let mut o = Observer::new(ObserverConfig::default());
                let mut req = REQUEST.as_bytes().to_vec();
                let mut resp = RESPONSE.as_bytes().to_vec();
                let _ = o.feed(C, &mut req);
                while o.feed(S, &mut resp[..0]).event.is_some() {}
                let mut at = 0;
                loop {
                    let step = o.feed(S, &mut resp[at..]);
                    at += step.consumed;
                    if step.event.is_none() {
                        break;
                    }
                }
                o
            };
            for _ in 0..50 {
                let dir = if rng.below(2) == 0 { C } else { S };
                match rng.below(10) {
                    0 => obs.gap(dir, rng.below(100) as u64),
                    1 if rng.below(20) == 0 => obs.eof(dir),
                    _ => {
                        let mut buf: Vec<u8> =
                            (0..rng.below(64)).map(|_| rng.below(256) as u8).collect();
                        let mut at = 0;
                        let mut n = 0;
                        loop {
                            let step = obs.feed(dir, &mut buf[at..]);
                            at += step.consumed;
                            n += 1;
                            assert!(n < 10_000, "no progress");
                            match step.event {
                                None | Some(ObservedEvent::Paused { .. }) => break,
                                Some(_) => {}
                            }
                        }
                    }
                }
            }
            for d in &obs.dirs {
                assert!(d.deferred.len() <= MAX_DEFERRED);
                if let HttpDir::Head(hb) = &d.http {
                    assert!(hb.len() <= obs.cfg.limits.max_head_len);
                }
            }
        }
    }
}
