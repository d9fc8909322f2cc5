//! Owned messages, as the whole-message APIs hand them out and take them in: payloads are
//! [`Bytes`] (text as [`Utf8Bytes`], a UTF-8-checked `Bytes`), so a received message can be
//! kept, cloned or forwarded without copying its payload.

use core::fmt;
use core::ops::Deref;

use bytes::Bytes;
use wscope_proto::close::CloseCode;
use wscope_proto::CloseFrameRef as WireCloseFrame;
use wscope_proto::OpCode;

/// A whole WebSocket message or control frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8, checked by the core as it arrived).
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping (received: already answered by the connection; sent: at most 125 bytes).
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// A close. Received: the peer's status (`None` for an empty close); the reply has been
    /// sent already. Sent: starts the closing handshake.
    Close(Option<CloseFrame>),
}

/// UTF-8 text in a [`Bytes`]: the payload of [`Message::Text`]. Cloning it shares the bytes;
/// it derefs to `str`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Text from a static string (no copy, no allocation).
    pub const fn from_static(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }

    /// The text.
    // Safe code can only check the bytes again on every call (a full pass over the text):
    // `Utf8Bytes` exists so that text is checked once.
    #[allow(unsafe_code)]
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor checks or inherits valid UTF-8 (`from_static` and the
        // `From` impls take a `str`, `TryFrom`/`from_utf8` check), the field is private and
        // `Bytes` is immutable, so the bytes stay what was checked.
        unsafe { core::str::from_utf8_unchecked(&self.0) }
    }

    /// The bytes of the text, shared (no copy).
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The text as [`Bytes`] (no copy).
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Text checked to be UTF-8 without a copy: `Err` gives the bytes back with the error.
    pub fn from_utf8(bytes: Bytes) -> Result<Self, (Bytes, core::str::Utf8Error)> {
        match core::str::from_utf8(&bytes) {
            Ok(_) => Ok(Self(bytes)),
            Err(e) => Err((bytes, e)),
        }
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl core::borrow::Borrow<str> for Utf8Bytes {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Utf8Bytes {
    /// Takes the string's allocation (no copy).
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

impl From<&String> for Utf8Bytes {
    /// Copies the string.
    fn from(s: &String) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<&str> for Utf8Bytes {
    /// Copies the string (use [`Utf8Bytes::from_static`] for a static one without a copy).
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = core::str::Utf8Error;

    /// Checks the bytes are UTF-8 (no copy).
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        Self::from_utf8(bytes).map_err(|(_, e)| e)
    }
}

impl TryFrom<Vec<u8>> for Utf8Bytes {
    type Error = std::string::FromUtf8Error;

    /// Checks the bytes are UTF-8 (no copy).
    fn try_from(v: Vec<u8>) -> Result<Self, Self::Error> {
        String::from_utf8(v).map(Self::from)
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(t: Utf8Bytes) -> Self {
        t.0
    }
}

impl From<Utf8Bytes> for String {
    /// No copy when the bytes are not shared.
    fn from(t: Utf8Bytes) -> Self {
        match String::from_utf8(Vec::from(t.0)) {
            Ok(s) => s,
            // Unreachable: the bytes were checked (see `as_str`).
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Utf8Bytes {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Utf8Bytes> for str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Utf8Bytes> for &str {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Utf8Bytes> for String {
    fn eq(&self, other: &Utf8Bytes) -> bool {
        self.as_str() == other.as_str()
    }
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
    /// A text message: from a `String` (no copy), a `&str` (copied) or a [`Utf8Bytes`].
    pub fn text(s: impl Into<Utf8Bytes>) -> Self {
        Self::Text(s.into())
    }

    /// A binary message: from a `Vec<u8>` (no copy), a [`Bytes`], a `&'static [u8]`, ...
    pub fn binary(b: impl Into<Bytes>) -> Self {
        Self::Binary(b.into())
    }

    /// A ping (at most 125 bytes).
    pub fn ping(b: impl Into<Bytes>) -> Self {
        Self::Ping(b.into())
    }

    /// A pong (at most 125 bytes).
    pub fn pong(b: impl Into<Bytes>) -> Self {
        Self::Pong(b.into())
    }

    /// Text or binary (not a control frame).
    pub const fn is_data(&self) -> bool {
        matches!(self, Self::Text(_) | Self::Binary(_))
    }

    /// A text message.
    pub const fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }

    /// A binary message.
    pub const fn is_binary(&self) -> bool {
        matches!(self, Self::Binary(_))
    }

    /// The payload length in bytes (for a close: of the reason).
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// The payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload bytes (for a close: the reason).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(s) => s.as_str().as_bytes(),
            Self::Binary(b) | Self::Ping(b) | Self::Pong(b) => b,
            Self::Close(c) => c.as_ref().map_or(&[][..], |c| c.reason.as_bytes()),
        }
    }

    /// The text of a text message (`None` for other kinds).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The payload as [`Bytes`], consuming the message (no copy; for a close: the reason).
    pub fn into_data(self) -> Bytes {
        match self {
            Self::Text(s) => s.into_bytes(),
            Self::Binary(b) | Self::Ping(b) | Self::Pong(b) => b,
            Self::Close(c) => c.map(|c| Bytes::from(c.reason)).unwrap_or_default(),
        }
    }

    /// The payload as a `Vec<u8>`, consuming the message (no copy unless the payload is
    /// shared with another `Bytes`).
    pub fn into_bytes(self) -> Vec<u8> {
        Vec::from(self.into_data())
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Self::Text(s.into())
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Self::Text(s.into())
    }
}

impl From<Utf8Bytes> for Message {
    fn from(s: Utf8Bytes) -> Self {
        Self::Text(s)
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Self::Binary(b.into())
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
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
