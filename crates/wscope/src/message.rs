//! Owned messages, as the whole-message APIs hand them out and take them in.

use wscope_proto::close::CloseCode;
use wscope_proto::CloseFrameRef as WireCloseFrame;
use wscope_proto::OpCode;

/// A whole WebSocket message or control frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8, checked by the core as it arrived).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping (received: already answered by the connection; sent: at most 125 bytes).
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// A close. Received: the peer's status (`None` for an empty close); the reply has been
    /// sent already. Sent: starts the closing handshake.
    Close(Option<CloseFrame>),
}

/// The kind of a data message handed out without a [`Message`] around it (the
/// allocation-free receive paths: the tokio driver's `recv_into`, the io_uring server).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKind {
    /// A text message (valid UTF-8).
    Text,
    /// A binary message.
    Binary,
}

impl DataKind {
    /// The opcode a message of this kind starts with.
    pub const fn opcode(self) -> OpCode {
        match self {
            Self::Text => OpCode::TEXT,
            Self::Binary => OpCode::BINARY,
        }
    }

    /// The kind of a data message from its first frame's opcode: `None` unless TEXT or
    /// BINARY.
    pub fn from_opcode(op: OpCode) -> Option<Self> {
        match op {
            OpCode::TEXT => Some(Self::Text),
            OpCode::BINARY => Some(Self::Binary),
            _ => None,
        }
    }
}

/// An owned close status: code and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason (UTF-8; cut to 123 bytes on a character boundary when sent).
    pub reason: String,
}

impl CloseFrame {
    /// A close status with a reason; the reason is cut to at most 123 bytes on a character
    /// boundary when sent
    /// ([`CloseReason::truncating`](wscope_proto::close::CloseReason::truncating), the
    /// `lws_close_reason` limit).
    pub fn new(code: impl Into<CloseCode>, reason: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn from_wire(f: &WireCloseFrame<'_>) -> Self {
        Self {
            code: f.code,
            reason: f.reason.to_owned(),
        }
    }
}

impl Message {
    /// A text message.
    pub fn text(s: impl Into<String>) -> Self {
        Self::Text(s.into())
    }

    /// A binary message.
    pub fn binary(b: impl Into<Vec<u8>>) -> Self {
        Self::Binary(b.into())
    }

    /// Text or binary (not a control frame).
    pub const fn is_data(&self) -> bool {
        matches!(self, Self::Text(_) | Self::Binary(_))
    }

    /// The payload bytes (for a close: the reason).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(s) => s.as_bytes(),
            Self::Binary(b) | Self::Ping(b) | Self::Pong(b) => b,
            Self::Close(c) => c.as_ref().map_or(&[][..], |c| c.reason.as_bytes()),
        }
    }

    /// The payload as bytes, consuming the message.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Self::Text(s) => s.into_bytes(),
            Self::Binary(b) | Self::Ping(b) | Self::Pong(b) => b,
            Self::Close(c) => c.map(|c| c.reason.into_bytes()).unwrap_or_default(),
        }
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Self::Binary(b)
    }
}

/// What a piece returned by a partial receive belongs to (`websock_msg_hdr_t` of the
/// embedded-SDK-style API).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// The frame ends its message.
    pub fin: bool,
    /// The opcode of *this frame* (0 for a continuation, 8 for a close).
    pub opcode: OpCode,
    /// The total payload length of this frame (not of the piece), as on the wire: with
    /// permessage-deflate, a compressed frame's pieces are inflated and add up to more.
    pub payload_len: u64,
}

/// One result of a partial receive ([`crate::blocking::WebSocket::recv_partial`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partial {
    /// Payload bytes of a frame were copied to the start of the caller's buffer: `len` of them.
    /// A long frame comes over several calls with the same `info`; `frame_end` marks the last.
    /// `len` is 0 only for a piece that ends its frame (or when the buffer is empty).
    Data {
        /// The frame.
        info: FrameInfo,
        /// How many bytes were written to the buffer.
        len: usize,
        /// This piece ends the frame.
        frame_end: bool,
    },
    /// A control frame (ping, pong, close), whole, copied to the buffer (cut to its size);
    /// pings and closes have been answered.
    Control {
        /// The frame.
        info: FrameInfo,
        /// How many bytes were written to the buffer.
        len: usize,
    },
    /// Nothing arrived before the timeout (or only part of a header): not an error.
    Timeout,
}
