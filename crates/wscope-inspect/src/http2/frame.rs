//! HTTP/2 frames (RFC 9113 §4.1, §6): the 9-byte frame header and the payloads this analyzer
//! reads (padding, HEADERS priority fields, SETTINGS, RST_STREAM, GOAWAY). No state: the
//! reader of a direction ([`super::reader`]) and the connection ([`super::conn`]) keep it.
//!
//! ```
//! use wscope_inspect::http2::frame::{FrameHeader, FrameType};
//! let h = FrameHeader::parse(&[0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00]);
//! assert_eq!((h.len, h.kind, h.stream), (6, FrameType::Settings, 0));
//! ```

use core::fmt;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Length of a frame header (RFC 9113 §4.1).
pub const HEADER_LEN: usize = 9;

/// `SETTINGS_MAX_FRAME_SIZE` until a peer changes it (RFC 9113 §6.5.2).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 0x4000;

/// Largest `SETTINGS_MAX_FRAME_SIZE` a peer may announce (RFC 9113 §6.5.2: 2^24 - 1).
pub const MAX_MAX_FRAME_SIZE: u32 = 0x00ff_ffff;

/// Flag END_STREAM of DATA and HEADERS (RFC 9113 §6.1, §6.2).
pub const END_STREAM: u8 = 0x01;
/// Flag ACK of SETTINGS and PING (RFC 9113 §6.5, §6.7).
pub const ACK: u8 = 0x01;
/// Flag END_HEADERS of HEADERS, PUSH_PROMISE and CONTINUATION (RFC 9113 §6.2, §6.10).
pub const END_HEADERS: u8 = 0x04;
/// Flag PADDED of DATA, HEADERS and PUSH_PROMISE (RFC 9113 §6.1).
pub const PADDED: u8 = 0x08;
/// Flag PRIORITY of HEADERS (RFC 9113 §6.2, deprecated but still parsed).
pub const PRIORITY: u8 = 0x20;

/// `SETTINGS_HEADER_TABLE_SIZE` (RFC 9113 §6.5.2).
pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
/// `SETTINGS_MAX_FRAME_SIZE` (RFC 9113 §6.5.2).
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
/// `SETTINGS_ENABLE_CONNECT_PROTOCOL` (RFC 8441 §3).
pub const SETTINGS_ENABLE_CONNECT_PROTOCOL: u16 = 0x8;

/// Frame types (RFC 9113 §6, in the RFC's order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameType {
    /// `DATA` (0x0).
    Data,
    /// `HEADERS` (0x1).
    Headers,
    /// `PRIORITY` (0x2).
    Priority,
    /// `RST_STREAM` (0x3).
    RstStream,
    /// `SETTINGS` (0x4).
    Settings,
    /// `PUSH_PROMISE` (0x5).
    PushPromise,
    /// `PING` (0x6).
    Ping,
    /// `GOAWAY` (0x7).
    GoAway,
    /// `WINDOW_UPDATE` (0x8).
    WindowUpdate,
    /// `CONTINUATION` (0x9).
    Continuation,
    /// Any other type: ignored (RFC 9113 §4.1, §5.5).
    Unknown(u8),
}

impl FrameType {
    /// The type of code `t`.
    pub const fn from_u8(t: u8) -> Self {
        match t {
            0x0 => Self::Data,
            0x1 => Self::Headers,
            0x2 => Self::Priority,
            0x3 => Self::RstStream,
            0x4 => Self::Settings,
            0x5 => Self::PushPromise,
            0x6 => Self::Ping,
            0x7 => Self::GoAway,
            0x8 => Self::WindowUpdate,
            0x9 => Self::Continuation,
            t => Self::Unknown(t),
        }
    }
}

/// A frame header (RFC 9113 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length (24 bits).
    pub len: u32,
    /// Type.
    pub kind: FrameType,
    /// Flags.
    pub flags: u8,
    /// Stream identifier (the reserved bit cleared).
    pub stream: u32,
}

impl FrameHeader {
    /// Reads the 9 header bytes.
    pub const fn parse(b: &[u8; HEADER_LEN]) -> Self {
        Self {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: FrameType::from_u8(b[3]),
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }

    /// Whether flag `f` is set.
    pub const fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// A frame whose payload breaks RFC 9113: what an endpoint would answer with a connection or
/// stream error of [`FrameError::code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The padding length is not smaller than the payload (RFC 9113 §6.1).
    BadPadding {
        /// Padding length announced.
        pad: u8,
        /// Payload length.
        len: u32,
    },
    /// A payload of the wrong size for its type (RFC 9113 §6.3, §6.4, §6.5, §6.8, §6.9).
    BadLength {
        /// The frame type.
        kind: FrameType,
        /// Payload length.
        len: u32,
    },
    /// A frame on stream 0 that needs a stream, or on a stream that needs stream 0
    /// (RFC 9113 §6).
    BadStream {
        /// The frame type.
        kind: FrameType,
        /// Its stream identifier.
        stream: u32,
    },
}

impl FrameError {
    /// The HTTP/2 error code an endpoint answers with (RFC 9113 §7): `PROTOCOL_ERROR` (0x1)
    /// or `FRAME_SIZE_ERROR` (0x6).
    pub const fn code(&self) -> u32 {
        match self {
            Self::BadLength { .. } => 0x6,
            Self::BadPadding { .. } | Self::BadStream { .. } => 0x1,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadPadding { pad, len } => {
                write!(f, "padding of {pad} bytes in a payload of {len} bytes")
            }
            Self::BadLength { kind, len } => write!(f, "{kind:?} frame of {len} bytes"),
            Self::BadStream { kind, stream } => write!(f, "{kind:?} frame on stream {stream}"),
        }
    }
}

impl core::error::Error for FrameError {}

/// The padding length of a DATA frame, when it is PADDED (the first payload byte); checked
/// against the payload length.
pub fn pad_len(h: &FrameHeader, first: u8) -> Result<u32, FrameError> {
    let pad = u32::from(first);
    // The pad length byte and the padding must fit in the payload (RFC 9113 §6.1).
    if pad >= h.len {
        return Err(FrameError::BadPadding {
            pad: first,
            len: h.len,
        });
    }
    Ok(pad)
}

/// The header block fragment of a HEADERS frame: padding and priority fields removed
/// (RFC 9113 §6.2).
pub fn headers_fragment<'a>(h: &FrameHeader, payload: &'a [u8]) -> Result<&'a [u8], FrameError> {
    let mut body = payload;
    let mut pad = 0usize;
    if h.has(PADDED) {
        let Some((&p, rest)) = body.split_first() else {
            return Err(FrameError::BadLength {
                kind: h.kind,
                len: h.len,
            });
        };
        pad = usize::from(p);
        body = rest;
    }
    if h.has(PRIORITY) {
        body = body.get(5..).ok_or(FrameError::BadLength {
            kind: h.kind,
            len: h.len,
        })?;
    }
    let end = body.len().checked_sub(pad).ok_or(FrameError::BadPadding {
        pad: u8::try_from(pad).unwrap_or(u8::MAX),
        len: h.len,
    })?;
    Ok(&body[..end])
}

/// The settings of a SETTINGS payload, `(identifier, value)` (RFC 9113 §6.5.1).
pub fn settings<'a>(
    h: &FrameHeader,
    payload: &'a [u8],
) -> Result<impl Iterator<Item = (u16, u32)> + 'a, FrameError> {
    if h.stream != 0 {
        return Err(FrameError::BadStream {
            kind: h.kind,
            stream: h.stream,
        });
    }
    if !payload.len().is_multiple_of(6) || (h.has(ACK) && !payload.is_empty()) {
        return Err(FrameError::BadLength {
            kind: h.kind,
            len: h.len,
        });
    }
    Ok(payload.chunks_exact(6).map(|c| {
        (
            u16::from_be_bytes([c[0], c[1]]),
            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
        )
    }))
}

/// The error code of a RST_STREAM (RFC 9113 §6.4).
pub fn rst_stream(h: &FrameHeader, payload: &[u8]) -> Result<u32, FrameError> {
    if h.stream == 0 {
        return Err(FrameError::BadStream {
            kind: h.kind,
            stream: 0,
        });
    }
    match payload {
        [a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(FrameError::BadLength {
            kind: h.kind,
            len: h.len,
        }),
    }
}

/// The last stream identifier and the error code of a GOAWAY (RFC 9113 §6.8).
pub fn goaway(h: &FrameHeader, payload: &[u8]) -> Result<(u32, u32), FrameError> {
    if h.stream != 0 {
        return Err(FrameError::BadStream {
            kind: h.kind,
            stream: h.stream,
        });
    }
    match payload {
        [a, b, c, d, e, f, g, hh, ..] => Ok((
            u32::from_be_bytes([*a, *b, *c, *d]) & 0x7fff_ffff,
            u32::from_be_bytes([*e, *f, *g, *hh]),
        )),
        _ => Err(FrameError::BadLength {
            kind: h.kind,
            len: h.len,
        }),
    }
}

/// The name of an HTTP/2 error code (RFC 9113 §7), `UNKNOWN` for others.
pub const fn error_name(code: u32) -> &'static str {
    match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u32, kind: u8, flags: u8, stream: u32) -> FrameHeader {
        let l = len.to_be_bytes();
        let s = stream.to_be_bytes();
        FrameHeader::parse(&[l[1], l[2], l[3], kind, flags, s[0], s[1], s[2], s[3]])
    }

    #[test]
    fn header_fields_and_reserved_bit() {
        let h = FrameHeader::parse(&[0x01, 0x02, 0x03, 0x00, 0x09, 0x80, 0x00, 0x00, 0x05]);
        assert_eq!(h.len, 0x010203);
        assert_eq!(h.kind, FrameType::Data);
        assert!(h.has(END_STREAM) && h.has(PADDED) && !h.has(END_HEADERS));
        // The reserved bit is ignored (RFC 9113 §4.1).
        assert_eq!(h.stream, 5);
        assert_eq!(FrameType::from_u8(0xfa), FrameType::Unknown(0xfa));
    }

    #[test]
    fn headers_padding_and_priority_are_removed() {
        // PADDED | PRIORITY: pad length 2, 5 priority bytes, fragment "ab", 2 padding bytes.
        let payload = [2, 0, 0, 0, 3, 16, b'a', b'b', 0, 0];
        let h = header(10, 0x1, PADDED | PRIORITY | END_HEADERS, 1);
        assert_eq!(headers_fragment(&h, &payload), Ok(&b"ab"[..]));
        let h = header(3, 0x1, PADDED, 1);
        assert!(matches!(
            headers_fragment(&h, &[5, 1, 2]),
            Err(FrameError::BadPadding { .. })
        ));
        let h = header(0, 0x1, PADDED, 1);
        assert!(headers_fragment(&h, &[]).is_err());
        let h = header(2, 0x1, PRIORITY, 1);
        assert!(headers_fragment(&h, &[0, 0]).is_err());
    }

    #[test]
    fn data_padding_must_fit() {
        let h = header(4, 0x0, PADDED, 1);
        assert_eq!(pad_len(&h, 3), Ok(3));
        assert_eq!(
            pad_len(&h, 4),
            Err(FrameError::BadPadding { pad: 4, len: 4 })
        );
    }

    #[test]
    fn settings_rst_goaway() {
        let h = header(12, 0x4, 0, 0);
        let p = [0, 8, 0, 0, 0, 1, 0, 5, 0, 0, 0x40, 0];
        let s: Vec<_> = settings(&h, &p).unwrap().collect();
        assert_eq!(
            s,
            vec![
                (SETTINGS_ENABLE_CONNECT_PROTOCOL, 1),
                (SETTINGS_MAX_FRAME_SIZE, 0x4000)
            ]
        );
        assert!(settings(&header(5, 0x4, 0, 0), &[0; 5]).is_err());
        assert!(settings(&header(6, 0x4, ACK, 0), &[0; 6]).is_err());
        assert!(settings(&header(0, 0x4, 0, 1), &[]).is_err());
        assert_eq!(rst_stream(&header(4, 0x3, 0, 3), &[0, 0, 0, 8]), Ok(8));
        assert_eq!(
            rst_stream(&header(3, 0x3, 0, 3), &[0, 0, 8]).map_err(|e| e.code()),
            Err(0x6)
        );
        assert!(rst_stream(&header(4, 0x3, 0, 0), &[0; 4]).is_err());
        let p = [0x80, 0, 0, 7, 0, 0, 0, 0, b'x'];
        assert_eq!(goaway(&header(9, 0x7, 0, 0), &p), Ok((7, 0)));
        assert!(goaway(&header(4, 0x7, 0, 0), &p[..4]).is_err());
        assert_eq!(error_name(0x8), "CANCEL");
        assert_eq!(error_name(0x99), "UNKNOWN");
    }
}
