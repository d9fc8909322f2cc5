//! Protocol errors: every way a peer can break RFC 6455 after the handshake, each with the
//! close code it implies.
//!
//! An endpoint answers a [`ProtocolError`] by failing the connection with
//! [`ProtocolError::close_code`] (1002, 1007 or 1009, as the Autobahn TestSuite expects). An
//! observer turns the same value into an anomaly record and goes on, so the two can never
//! disagree about what counts as a violation. Handshake errors (with their HTTP status) are in
//! [`crate::handshake`].

use core::fmt;

use crate::close::CloseCode;
use crate::frame::OpCode;

/// A violation of RFC 6455 framing, message or close rules by the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A client-to-server frame without a mask (RFC 6455 section 5.1).
    UnmaskedClientFrame,
    /// A server-to-client frame with a mask (RFC 6455 section 5.1).
    MaskedServerFrame,
    /// RSV bits set that no negotiated extension defines (the value is the 3-bit field).
    ReservedBits {
        /// The RSV bits as a 3-bit number (RSV1 = `0b100`).
        rsv: u8,
    },
    /// An opcode RFC 6455 reserves (`0x3`–`0x7`, `0xB`–`0xF`).
    ReservedOpcode {
        /// The opcode seen.
        opcode: OpCode,
    },
    /// A control frame with more than 125 bytes of payload.
    ControlFrameTooLong {
        /// The declared payload length.
        len: u64,
    },
    /// A control frame with FIN clear.
    FragmentedControlFrame,
    /// A continuation frame with no message to continue.
    UnexpectedContinuation,
    /// A text or binary frame while a fragmented message is still open.
    ExpectedContinuation {
        /// The opcode of the offending frame.
        opcode: OpCode,
    },
    /// The payload length was not in its minimal encoding (only when the decoder is strict
    /// about it).
    NonMinimalLength,
    /// A 64-bit payload length with the most significant bit set.
    LengthMsbSet,
    /// A frame larger than the configured limit.
    FrameTooLarge {
        /// The declared payload length.
        len: u64,
        /// The configured limit.
        max: u64,
    },
    /// A message larger than the configured limit.
    MessageTooLarge {
        /// The configured limit.
        max: u64,
    },
    /// A text message (or a text fragment) that is not valid UTF-8.
    InvalidUtf8,
    /// A close frame with exactly one byte of payload.
    CloseOneBytePayload,
    /// A close code that may not appear on the wire.
    InvalidCloseCode {
        /// The code received.
        code: CloseCode,
    },
    /// A close reason that is not valid UTF-8.
    InvalidCloseReason,
    /// RSV1 ("compressed") on a continuation or control frame.
    CompressedNonFirstFrame,
    /// A compressed message that does not inflate.
    InflateFailed,
}

impl ProtocolError {
    /// The close code an endpoint sends when it fails the connection for this reason.
    pub const fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::InvalidCloseReason => CloseCode::INVALID_PAYLOAD,
            Self::FrameTooLarge { .. } | Self::MessageTooLarge { .. } => CloseCode::MESSAGE_TOO_BIG,
            Self::InflateFailed => CloseCode::INVALID_PAYLOAD,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A stable snake_case name for logs (Zeek-`weird`-style), e.g. `"unmasked_client_frame"`.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::UnmaskedClientFrame => "unmasked_client_frame",
            Self::MaskedServerFrame => "masked_server_frame",
            Self::ReservedBits { .. } => "reserved_bits_set",
            Self::ReservedOpcode { .. } => "reserved_opcode",
            Self::ControlFrameTooLong { .. } => "control_frame_size_exceeded",
            Self::FragmentedControlFrame => "fragmented_control_frame",
            Self::UnexpectedContinuation => "unexpected_continuation",
            Self::ExpectedContinuation { .. } => "expected_continuation",
            Self::NonMinimalLength => "non_minimal_length",
            Self::LengthMsbSet => "length_msb_set",
            Self::FrameTooLarge { .. } => "frame_too_large",
            Self::MessageTooLarge { .. } => "message_too_large",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::CloseOneBytePayload => "close_one_byte_payload",
            Self::InvalidCloseCode { .. } => "invalid_close_code",
            Self::InvalidCloseReason => "invalid_close_reason",
            Self::CompressedNonFirstFrame => "rsv1_on_non_first_frame",
            Self::InflateFailed => "inflate_failed",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnmaskedClientFrame => f.write_str("client frame is not masked"),
            Self::MaskedServerFrame => f.write_str("server frame is masked"),
            Self::ReservedBits { rsv } => {
                write!(f, "reserved bits {rsv:#05b} set without an extension")
            }
            Self::ReservedOpcode { opcode } => write!(f, "reserved opcode {:#x}", opcode.0),
            Self::ControlFrameTooLong { len } => write!(f, "control frame payload {len} > 125"),
            Self::FragmentedControlFrame => f.write_str("control frame without FIN"),
            Self::UnexpectedContinuation => f.write_str("continuation frame with no message open"),
            Self::ExpectedContinuation { opcode } => {
                write!(f, "{opcode} frame while a fragmented message is open")
            }
            Self::NonMinimalLength => f.write_str("payload length not minimally encoded"),
            Self::LengthMsbSet => f.write_str("64-bit payload length with the top bit set"),
            Self::FrameTooLarge { len, max } => write!(f, "frame of {len} bytes exceeds {max}"),
            Self::MessageTooLarge { max } => write!(f, "message exceeds {max} bytes"),
            Self::InvalidUtf8 => f.write_str("text message is not valid UTF-8"),
            Self::CloseOneBytePayload => f.write_str("close frame with a 1-byte payload"),
            Self::InvalidCloseCode { code } => {
                write!(f, "close code {} is not valid on the wire", code.0)
            }
            Self::InvalidCloseReason => f.write_str("close reason is not valid UTF-8"),
            Self::CompressedNonFirstFrame => f.write_str("RSV1 on a continuation or control frame"),
            Self::InflateFailed => f.write_str("compressed message does not inflate"),
        }
    }
}

impl core::error::Error for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_match_autobahn() {
        assert_eq!(ProtocolError::InvalidUtf8.close_code().0, 1007);
        assert_eq!(
            ProtocolError::MessageTooLarge { max: 1 }.close_code().0,
            1009
        );
        assert_eq!(
            ProtocolError::FrameTooLarge { len: 2, max: 1 }
                .close_code()
                .0,
            1009
        );
        assert_eq!(ProtocolError::ReservedBits { rsv: 4 }.close_code().0, 1002);
        assert_eq!(ProtocolError::CloseOneBytePayload.close_code().0, 1002);
        assert_eq!(
            ProtocolError::InvalidCloseCode {
                code: CloseCode(999)
            }
            .close_code()
            .0,
            1002
        );
    }
}
