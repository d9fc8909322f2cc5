//! What the observer reports: [`ObservedEvent`], the [`Anomaly`] kinds with their names, Zeek
//! weirds and details, and why analysis stops ([`StopReason`]).

use core::fmt;

use super::Upgrade;
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD};
use crate::handshake::{AcceptKey, Request, Response, UpgradeError, ACCEPT, KEY, PROTOCOL};
use crate::role::Direction;

#[cfg(doc)]
use super::{Observer, ObserverConfig};

/// Why framing was lost in a direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DesyncCause {
    /// A gap that was not inside a payload.
    Gap,
    /// A header that cannot be decoded ([`ProtocolError::LengthMsbSet`]).
    Framing(ProtocolError),
    /// A resynchronisation point that the frames after it did not confirm (a header they
    /// lead to is implausible or breaks a rule): it was a false header, scanning goes on.
    FalseResync,
}

/// Something unusual seen on the connection. Data, not an error: analysis goes on unless an
/// [`ObservedEvent::Stopped`] follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Anomaly<'a> {
    /// A frame or message rule broken (the decoder in report mode).
    Protocol(ProtocolError),
    /// A handshake rule broken (lenient policy), or an HTTP head that cannot be followed.
    Handshake(UpgradeError),
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
    /// A stable snake_case name for logs (the [`ProtocolError`] or [`UpgradeError`] name for
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
            Self::Handshake(UpgradeError::MissingHeader { name: KEY }) => {
                "websocket_missing_key_header"
            }
            Self::Handshake(UpgradeError::DuplicateHeader { name: KEY }) => {
                "websocket_multiple_key_headers"
            }
            Self::Handshake(UpgradeError::MissingHeader { name: ACCEPT }) => {
                "websocket_missing_accept_header"
            }
            Self::Handshake(UpgradeError::DuplicateHeader { name: ACCEPT }) => {
                "websocket_multiple_accept_headers"
            }
            Self::Handshake(UpgradeError::DuplicateHeader { name: PROTOCOL }) => {
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
            Anomaly::Desync {
                cause: DesyncCause::FalseResync,
            } => f.write_str(
                "framing lost again: the frames after the resync point were not plausible",
            ),
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

/// Where a chunk of payload stands in its frame and message: what Net::Inspect's `in_wsdata`
/// gets besides the bytes. The observer reports it with each [`ObservedEvent::FrameData`];
/// the analyzer carries the same value into its own events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "wscope-inspect re-slices chunks with struct update syntax; #[non_exhaustive] with a constructor there"
)]
pub struct ChunkInfo {
    /// Data frames: the message's first opcode (text, binary; continuation when its start was
    /// not seen). Control frames: their own opcode.
    pub opcode: OpCode,
    /// The message's first frame had RSV1 under permessage-deflate: the bytes are compressed.
    pub compressed: bool,
    /// The first chunk of its message (Net::Inspect's `init`).
    pub first: bool,
    /// Payload bytes the frame still owes after this chunk (Net::Inspect's `bytes_left`).
    pub remaining: u64,
    /// This chunk ends its frame.
    pub frame_end: bool,
    /// This chunk ends its message (Net::Inspect's `eom`); always with `frame_end` for a
    /// control frame.
    pub message_end: bool,
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
    BadUpgrade(UpgradeError),
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
        /// Where the chunk stands in its frame and message.
        info: ChunkInfo,
    },
    /// Inflated bytes of a compressed data message (permessage-deflate, with
    /// [`ObserverConfig::inflate`]), right after the `FrameData` of the chunk they inflated
    /// from, and before what that chunk broke ([`ProtocolError::InflateFailed`],
    /// [`ProtocolError::MessageTooLarge`], [`ProtocolError::InvalidUtf8`] as
    /// [`Anomaly::Protocol`]: the endpoint's own message layer decides). Only when there are
    /// bytes, or the message ends; a message that stopped inflating (corrupt data, the cap)
    /// gets the bytes inflated before the error and never a `message_end`.
    Inflated {
        /// The direction.
        dir: Direction,
        /// The bytes, up to the cap; borrowed from the observer until the next `feed`.
        data: &'a [u8],
        /// The message's first opcode.
        opcode: OpCode,
        /// The message inflated completely and ends here.
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
            Self::Inflated { .. } => "inflated",
            Self::Close { .. } => "close",
            Self::Message { .. } => "message",
            Self::Anomaly { .. } => "anomaly",
            Self::Paused { .. } => "paused",
            Self::Eof { .. } => "eof",
            Self::Stopped { .. } => "stopped",
        }
    }
}
