//! The RFC 6455 frame header (section 5.2): opcodes, the three length forms, the mask key.
//!
//! This module only knows the wire layout. It parses a header from the front of a byte slice
//! (telling how many more bytes it needs when the slice is short) and writes one into a
//! 14-byte array. Which headers are *allowed* (mask rule, reserved bits, control frame limits)
//! is decided by [`crate::decoder`] and [`crate::message`], so an observer can see a header
//! that breaks the rules and still know where the next frame starts.
//!
//! ```
//! use wscope_proto::frame::{FrameHeader, HeaderStatus, OpCode};
//!
//! // RFC 6455 section 5.7: a single-frame masked text message "Hello".
//! let bytes = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! let HeaderStatus::Complete(h) = FrameHeader::parse(&bytes).unwrap() else { panic!() };
//! assert!(h.fin);
//! assert_eq!(h.opcode, OpCode::TEXT);
//! assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
//! assert_eq!(h.payload_len, 5);
//! assert_eq!(h.header_len(), 6);
//!
//! let mut out = [0u8; 14];
//! let n = h.emit(&mut out);
//! assert_eq!(&out[..n], &bytes[..6]);
//! ```

use core::fmt;

/// The largest possible frame header: 2 bytes + 8 bytes of extended length + 4 bytes of mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload a control frame may carry (RFC 6455 section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame opcode (4 bits on the wire).
///
/// A newtype rather than an enum so that reserved values survive parsing: an analyzer must be
/// able to report "opcode 0x3" rather than lose it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(
    clippy::exhaustive_structs,
    reason = "closed: the 4-bit opcode on the wire, nothing more"
)]
pub struct OpCode(pub u8);

impl OpCode {
    /// `0x0`: continues a fragmented message.
    pub const CONTINUATION: Self = Self(0x0);
    /// `0x1`: first frame of a text message (UTF-8).
    pub const TEXT: Self = Self(0x1);
    /// `0x2`: first frame of a binary message.
    pub const BINARY: Self = Self(0x2);
    /// `0x8`: connection close.
    pub const CLOSE: Self = Self(0x8);
    /// `0x9`: ping.
    pub const PING: Self = Self(0x9);
    /// `0xA`: pong.
    pub const PONG: Self = Self(0xA);

    /// Control opcodes have the high bit of the nibble set (`0x8`–`0xF`).
    pub const fn is_control(self) -> bool {
        self.0 & 0x8 != 0
    }

    /// Text, binary or continuation (the non-reserved data opcodes).
    pub const fn is_data(self) -> bool {
        matches!(self.0, 0x0..=0x2)
    }

    /// Opcodes RFC 6455 reserves for future use: `0x3`–`0x7` and `0xB`–`0xF`.
    pub const fn is_reserved(self) -> bool {
        matches!(self.0, 0x3..=0x7 | 0xB..=0xF)
    }

    /// The lower-case name used in logs (`"text"`, `"ping"`, `"reserved-0x3"` is not produced:
    /// reserved opcodes return `None`).
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            0x0 => Some("continuation"),
            0x1 => Some("text"),
            0x2 => Some("binary"),
            0x8 => Some("close"),
            0x9 => Some("ping"),
            0xA => Some("pong"),
            _ => None,
        }
    }
}

impl fmt::Debug for OpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "OpCode({n})"),
            None => write!(f, "OpCode({:#x})", self.0),
        }
    }
}

impl fmt::Display for OpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{:#x}", self.0),
        }
    }
}

/// The RSV1 bit (`0x4` in [`FrameHeader::rsv`]); permessage-deflate uses it as "compressed".
pub const RSV1: u8 = 0b100;
/// The RSV2 bit (`0x2` in [`FrameHeader::rsv`]).
pub const RSV2: u8 = 0b010;
/// The RSV3 bit (`0x1` in [`FrameHeader::rsv`]).
pub const RSV3: u8 = 0b001;

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "closed: the header fields of RFC 6455 section 5.2, built by users to encode frames"
)]
pub struct FrameHeader {
    /// FIN: this is the last frame of its message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as a 3-bit number (RSV1 is `0b100`), as Zeek reports it.
    pub rsv: u8,
    /// The opcode, reserved values included.
    pub opcode: OpCode,
    /// The masking key, when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length, always 64-bit (never truncated to 32 bits).
    pub payload_len: u64,
    /// The payload length was not written in its shortest form (RFC 6455 section 5.2 says a
    /// sender MUST use the minimal encoding). Kept so endpoints can refuse it and observers can
    /// report it.
    pub non_minimal: bool,
    /// Which length form the header used; fixes the header's size on the wire.
    pub length_form: LengthForm,
}

/// The three encodings of the payload length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "closed: 7-, 16- or 64-bit lengths (RFC 6455 section 5.2)"
)]
pub enum LengthForm {
    /// 7-bit length in the second byte (0–125).
    Short,
    /// `126` then a 16-bit length.
    Extended16,
    /// `127` then a 64-bit length.
    Extended64,
}

impl LengthForm {
    /// The shortest form able to encode `len`.
    pub const fn minimal(len: u64) -> Self {
        if len <= 125 {
            Self::Short
        } else if len <= 0xffff {
            Self::Extended16
        } else {
            Self::Extended64
        }
    }

    /// Bytes of extended length this form adds after the first two header bytes.
    pub const fn extra_len(self) -> usize {
        match self {
            Self::Short => 0,
            Self::Extended16 => 2,
            Self::Extended64 => 8,
        }
    }
}

/// What [`FrameHeader::parse`] found at the front of a slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "closed: a header is complete or needs more bytes"
)]
pub enum HeaderStatus {
    /// A whole header; its size is [`FrameHeader::header_len`].
    Complete(FrameHeader),
    /// The slice ends inside the header: at least this many more bytes are needed.
    Incomplete {
        /// How many bytes are missing, at least (the exact count once the length byte is known).
        needed: usize,
    },
}

/// A header that cannot be part of any valid stream, so framing itself is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// A 64-bit length with its most significant bit set (RFC 6455 section 5.2).
    LengthMsbSet,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LengthMsbSet => {
                f.write_str("64-bit payload length with the most significant bit set")
            }
        }
    }
}

impl core::error::Error for HeaderError {}

impl FrameHeader {
    /// A header for an outgoing frame with the minimal length form and no reserved bits.
    pub const fn new(fin: bool, opcode: OpCode, mask: Option<[u8; 4]>, payload_len: u64) -> Self {
        Self {
            fin,
            rsv: 0,
            opcode,
            mask,
            payload_len,
            non_minimal: false,
            length_form: LengthForm::minimal(payload_len),
        }
    }

    /// Parses a header from the front of `buf`.
    ///
    /// Never reads past the header, never panics: a short slice gives
    /// [`HeaderStatus::Incomplete`] with the number of bytes still missing.
    pub fn parse(buf: &[u8]) -> Result<HeaderStatus, HeaderError> {
        if buf.len() < 2 {
            return Ok(HeaderStatus::Incomplete {
                needed: 2 - buf.len(),
            });
        }
        let b0 = buf[0];
        let b1 = buf[1];
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7f;
        let length_form = match len7 {
            126 => LengthForm::Extended16,
            127 => LengthForm::Extended64,
            _ => LengthForm::Short,
        };
        let total = 2 + length_form.extra_len() + if masked { 4 } else { 0 };
        if buf.len() < total {
            return Ok(HeaderStatus::Incomplete {
                needed: total - buf.len(),
            });
        }
        let payload_len = match length_form {
            LengthForm::Short => u64::from(len7),
            LengthForm::Extended16 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
            LengthForm::Extended64 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                let v = u64::from_be_bytes(b);
                if v >> 63 != 0 {
                    return Err(HeaderError::LengthMsbSet);
                }
                v
            }
        };
        let mask = if masked {
            let at = 2 + length_form.extra_len();
            Some([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
        } else {
            None
        };
        Ok(HeaderStatus::Complete(Self {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x7,
            opcode: OpCode(b0 & 0x0f),
            mask,
            payload_len,
            non_minimal: length_form != LengthForm::minimal(payload_len),
            length_form,
        }))
    }

    /// The size of this header on the wire (2 to 14 bytes).
    pub const fn header_len(&self) -> usize {
        2 + self.length_form.extra_len() + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Writes the header into `out` and returns how many bytes it used ([`Self::header_len`]).
    ///
    /// The length is written in [`Self::length_form`]; a form too small for the length is
    /// widened to the minimal one, so the output is always a valid encoding of `payload_len`.
    pub fn emit(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        let form = match (self.length_form, LengthForm::minimal(self.payload_len)) {
            (LengthForm::Short, m) => m,
            (LengthForm::Extended16, LengthForm::Extended64) => LengthForm::Extended64,
            (f, _) => f,
        };
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x7) << 4) | (self.opcode.0 & 0x0f);
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = 2;
        match form {
            LengthForm::Short => out[1] = mask_bit | self.payload_len as u8,
            LengthForm::Extended16 => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
                at = 4;
            }
            LengthForm::Extended64 => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&self.payload_len.to_be_bytes());
                at = 10;
            }
        }
        if let Some(key) = self.mask {
            out[at..at + 4].copy_from_slice(&key);
            at += 4;
        }
        at
    }

    /// Whether RSV1 is set (the permessage-deflate "compressed" bit).
    pub const fn rsv1(&self) -> bool {
        self.rsv & RSV1 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> FrameHeader {
        match FrameHeader::parse(buf).unwrap() {
            HeaderStatus::Complete(h) => h,
            other => panic!("incomplete: {other:?}"),
        }
    }

    #[test]
    fn rfc6455_examples() {
        // Unmasked "Hello".
        let h = complete(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(
            (h.fin, h.opcode, h.mask, h.payload_len),
            (true, OpCode::TEXT, None, 5)
        );
        // Fragmented: "Hel" FIN=0 then "lo" continuation.
        let h = complete(&[0x01, 0x03, 0x48, 0x65, 0x6c]);
        assert_eq!((h.fin, h.opcode), (false, OpCode::TEXT));
        let h = complete(&[0x80, 0x02, 0x6c, 0x6f]);
        assert_eq!((h.fin, h.opcode), (true, OpCode::CONTINUATION));
        // Masked ping "Hello"... the RFC shows unmasked ping and masked pong.
        let h = complete(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(h.opcode, OpCode::PING);
        let h = complete(&[
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ]);
        assert_eq!((h.opcode, h.mask.is_some()), (OpCode::PONG, true));
        // 256 bytes binary: 16-bit form.
        let h = complete(&[0x82, 0x7e, 0x01, 0x00]);
        assert_eq!(
            (h.payload_len, h.header_len(), h.non_minimal),
            (256, 4, false)
        );
        // 64 KiB binary: 64-bit form.
        let h = complete(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(
            (h.payload_len, h.header_len(), h.non_minimal),
            (65536, 10, false)
        );
    }

    #[test]
    fn incomplete_reports_needed_bytes() {
        assert_eq!(
            FrameHeader::parse(&[]).unwrap(),
            HeaderStatus::Incomplete { needed: 2 }
        );
        assert_eq!(
            FrameHeader::parse(&[0x81]).unwrap(),
            HeaderStatus::Incomplete { needed: 1 }
        );
        assert_eq!(
            FrameHeader::parse(&[0x82, 0xff, 0]).unwrap(),
            HeaderStatus::Incomplete { needed: 11 }
        );
    }

    #[test]
    fn msb_set_and_non_minimal() {
        assert_eq!(
            FrameHeader::parse(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(HeaderError::LengthMsbSet)
        );
        let h = complete(&[0x82, 0x7e, 0x00, 0x05]);
        assert!(h.non_minimal);
        let h = complete(&[0x88, 0x7f, 0, 0, 0, 0, 0, 0, 0x01, 0x02]);
        assert!(h.non_minimal);
        assert_eq!(h.payload_len, 258);
        // A 64-bit length above 2^32 is kept whole (the Kaitai spec reads it as 32 bits).
        let h = complete(&[0x82, 0x7f, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(h.payload_len, 1 << 32);
    }

    #[test]
    fn reserved_opcode_and_rsv_survive() {
        let h = complete(&[0xf3, 0x00]);
        assert_eq!((h.rsv, h.opcode), (0b111, OpCode(3)));
        assert!(h.opcode.is_reserved() && !h.opcode.is_control());
        assert!(OpCode(0xb).is_reserved() && OpCode(0xb).is_control());
    }

    #[test]
    fn emit_roundtrip_all_forms() {
        for len in [0u64, 1, 125, 126, 127, 65535, 65536, 1 << 40] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let h = FrameHeader::new(len % 2 == 0, OpCode::BINARY, mask, len);
                let mut out = [0u8; MAX_HEADER_LEN];
                let n = h.emit(&mut out);
                assert_eq!(n, h.header_len());
                assert_eq!(complete(&out[..n]), h);
            }
        }
    }
}
