//! Close codes and close frame payloads (RFC 6455 sections 5.5.1, 7.4; IANA registry).
//!
//! Every rule about close codes lives here: what each code means, which codes may travel on
//! the wire (one table for sending *and* receiving, unlike libwebsockets' two), how a close
//! payload is parsed, and how a reason is limited to 123 bytes of UTF-8.
//!
//! ```
//! use wscope_proto::close::{CloseCode, CloseFrameRef, CloseReason};
//!
//! // libwebsockets' `lws_close_reason` semantics: the reason is cut to 123 bytes, but on a
//! // character boundary, so the payload stays valid UTF-8.
//! let long = "é".repeat(100); // 200 bytes
//! let reason = CloseReason::truncating(&long);
//! assert_eq!(reason.as_str().len(), 122);
//!
//! let mut payload = [0u8; 125];
//! let n = CloseFrameRef::new(CloseCode::GOING_AWAY, reason).unwrap().emit(&mut payload);
//! let parsed = CloseFrameRef::parse(&payload[..n]).unwrap().unwrap();
//! assert_eq!(parsed.code, CloseCode::GOING_AWAY);
//! assert_eq!(parsed.reason, long.get(..122).unwrap());
//! ```

use core::fmt;

use crate::error::ProtocolError;
use crate::frame::MAX_CONTROL_PAYLOAD;

/// The largest close reason in bytes: a control payload is at most 125 bytes, 2 of them the code.
pub const MAX_REASON_LEN: usize = MAX_CONTROL_PAYLOAD - 2;

/// A close status code.
///
/// A newtype so that any received value survives (an analyzer reports what it saw); the
/// associated constants name the registered codes. The libwebsockets names of
/// `lws_close_status` are given in each constant's documentation as aliases; libwebsockets'
/// own values that are not close codes (0, 2000, 9999) belong to the C API (`wscope-ffi`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(
    clippy::exhaustive_structs,
    reason = "closed: the close code is the 16-bit number on the wire, nothing more"
)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// `1000`, `LWS_CLOSE_STATUS_NORMAL`: normal closure; the purpose of the connection is done.
    pub const NORMAL: Self = Self(1000);
    /// `1001`, `LWS_CLOSE_STATUS_GOINGAWAY`: an endpoint is going away (server shutdown, page
    /// navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// `1002`, `LWS_CLOSE_STATUS_PROTOCOL_ERR`: the peer broke the protocol.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// `1003`, `LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE`: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// `1004`, `LWS_CLOSE_STATUS_RESERVED`: reserved; never sent.
    pub const RESERVED: Self = Self(1004);
    /// `1005`, `LWS_CLOSE_STATUS_NO_STATUS`: "no status code was present". Local only: reported
    /// for an empty close payload, never sent.
    pub const NO_STATUS: Self = Self(1005);
    /// `1006`, `LWS_CLOSE_STATUS_ABNORMAL_CLOSE`: the connection was lost without a close frame.
    /// Local only, never sent.
    pub const ABNORMAL: Self = Self(1006);
    /// `1007`, `LWS_CLOSE_STATUS_INVALID_PAYLOAD`: data inconsistent with the message type
    /// (invalid UTF-8 in a text message).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// `1008`, `LWS_CLOSE_STATUS_POLICY_VIOLATION`: a message violates the endpoint's policy.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// `1009`, `LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE`: a message is too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// `1010`, `LWS_CLOSE_STATUS_EXTENSION_REQUIRED`: the client needed an extension the server
    /// did not negotiate.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// `1011`, `LWS_CLOSE_STATUS_UNEXPECTED_CONDITION`: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// `1012` (IANA): the service is restarting.
    pub const SERVICE_RESTART: Self = Self(1012);
    /// `1013` (IANA): try again later (temporary overload).
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// `1014` (IANA): bad gateway; a gateway or proxy got an invalid upstream response.
    pub const BAD_GATEWAY: Self = Self(1014);
    /// `1015`, `LWS_CLOSE_STATUS_TLS_FAILURE`: the TLS handshake failed. Local only, never sent.
    pub const TLS_FAILURE: Self = Self(1015);

    /// Whether this code may appear in a close frame, sent or received: 1000–1003, 1007–1014,
    /// 3000–4999. Everything else (0–999, 1004–1006, 1015, 1016–2999, 5000 and up) may not.
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// The class of this code in the IANA registry.
    pub const fn class(self) -> CloseClass {
        match self.0 {
            1000..=1003 | 1007..=1014 => CloseClass::Protocol,
            1004 => CloseClass::Reserved,
            1005 | 1006 | 1015 => CloseClass::LocalOnly,
            1016..=2999 => CloseClass::Unassigned,
            3000..=3999 => CloseClass::Registered,
            4000..=4999 => CloseClass::Private,
            _ => CloseClass::Invalid,
        }
    }

    /// The meaning of a known code, in a few words (`None` for codes without a fixed meaning).
    pub const fn meaning(self) -> Option<&'static str> {
        Some(match self.0 {
            1000 => "normal closure",
            1001 => "going away",
            1002 => "protocol error",
            1003 => "unsupported data",
            1004 => "reserved",
            1005 => "no status received",
            1006 => "abnormal closure",
            1007 => "invalid frame payload data",
            1008 => "policy violation",
            1009 => "message too big",
            1010 => "mandatory extension",
            1011 => "internal error",
            1012 => "service restart",
            1013 => "try again later",
            1014 => "bad gateway",
            1015 => "TLS handshake failure",
            _ => return None,
        })
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.meaning() {
            Some(m) => write!(f, "CloseCode({} {m})", self.0),
            None => write!(f, "CloseCode({})", self.0),
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.meaning() {
            Some(m) => write!(f, "{} ({m})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

impl From<u16> for CloseCode {
    fn from(v: u16) -> Self {
        Self(v)
    }
}

impl From<CloseCode> for u16 {
    fn from(c: CloseCode) -> Self {
        c.0
    }
}

/// Where a close code sits in the IANA registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "closed: the ranges of RFC 6455 section 7.4.2 are fixed"
)]
pub enum CloseClass {
    /// Defined by RFC 6455 or registered with IANA for use on the wire (1000–1003, 1007–1014).
    Protocol,
    /// 1004: reserved, never used.
    Reserved,
    /// 1005, 1006, 1015: meaningful only locally, never on the wire.
    LocalOnly,
    /// 1016–2999: reserved for future RFCs; invalid on the wire today.
    Unassigned,
    /// 3000–3999: registered with IANA by libraries and frameworks.
    Registered,
    /// 4000–4999: private use by applications.
    Private,
    /// Below 1000 or 5000 and up: never valid.
    Invalid,
}

/// A close reason that is valid UTF-8 and at most [`MAX_REASON_LEN`] (123) bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CloseReason<'a>(&'a str);

/// The reason given to [`CloseReason::new`] is longer than 123 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReasonTooLong {
    /// The length that was given.
    pub len: usize,
}

impl fmt::Display for ReasonTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "close reason of {} bytes is longer than {MAX_REASON_LEN}",
            self.len
        )
    }
}

impl core::error::Error for ReasonTooLong {}

impl<'a> CloseReason<'a> {
    /// An empty reason.
    pub const EMPTY: CloseReason<'static> = CloseReason("");

    /// The reason as given, refused when longer than 123 bytes.
    pub const fn new(reason: &'a str) -> Result<Self, ReasonTooLong> {
        if reason.len() > MAX_REASON_LEN {
            Err(ReasonTooLong { len: reason.len() })
        } else {
            Ok(Self(reason))
        }
    }

    /// The reason cut to at most 123 bytes on a character boundary (`lws_close_reason`
    /// semantics, without cutting a code point in half).
    pub fn truncating(reason: &'a str) -> Self {
        Self(truncate_utf8(reason, MAX_REASON_LEN))
    }

    /// The reason text.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }
}

/// Cuts `s` to at most `max` bytes, at a character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Why a close cannot be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseSendError {
    /// The code may not be sent (see [`CloseCode::is_valid_on_wire`]); 0, 1005, 1006 and 1015
    /// in particular. To close without a status, send an empty close payload instead.
    InvalidCode(CloseCode),
}

impl fmt::Display for CloseSendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidCode(c) => write!(f, "close code {c} may not be sent on the wire"),
        }
    }
}

impl core::error::Error for CloseSendError {}

/// The payload of a close frame that carries a status: a code and a reason.
///
/// "No status" (an empty payload) is `Option::<CloseFrameRef>::None` wherever a close payload is
/// handled, so it can never be confused with a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "closed: a close body is a code and a reason (RFC 6455 section 5.5.1)"
)]
pub struct CloseFrameRef<'a> {
    /// The status code.
    pub code: CloseCode,
    /// The reason, valid UTF-8, at most 123 bytes.
    pub reason: &'a str,
}

impl<'a> CloseFrameRef<'a> {
    /// A close payload to send; refuses codes that may not go on the wire.
    pub const fn new(code: CloseCode, reason: CloseReason<'a>) -> Result<Self, CloseSendError> {
        if !code.is_valid_on_wire() {
            return Err(CloseSendError::InvalidCode(code));
        }
        Ok(Self {
            code,
            reason: reason.0,
        })
    }

    /// Parses a received close payload: `Ok(None)` for an empty payload ("no status", 1005
    /// locally); a 1-byte payload, an invalid code or a payload over 125 bytes is a protocol
    /// error (1002); an invalid UTF-8 reason is 1007.
    pub fn parse(payload: &'a [u8]) -> Result<Option<Self>, ProtocolError> {
        match payload.len() {
            0 => return Ok(None),
            1 => return Err(ProtocolError::CloseOneBytePayload),
            n if n > MAX_CONTROL_PAYLOAD => {
                return Err(ProtocolError::ControlFrameTooLong { len: n as u64 })
            }
            _ => {}
        }
        let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
        if !code.is_valid_on_wire() {
            return Err(ProtocolError::InvalidCloseCode { code });
        }
        let reason =
            crate::utf8::from_utf8(&payload[2..]).map_err(|_| ProtocolError::InvalidCloseReason)?;
        Ok(Some(Self { code, reason }))
    }

    /// The size of the encoded payload (2 + reason bytes).
    pub const fn encoded_len(&self) -> usize {
        2 + self.reason.len()
    }

    /// Writes the payload (code big-endian, then the reason) and returns its length.
    pub fn emit(&self, out: &mut [u8; MAX_CONTROL_PAYLOAD]) -> usize {
        let reason = truncate_utf8(self.reason, MAX_REASON_LEN);
        out[..2].copy_from_slice(&self.code.0.to_be_bytes());
        out[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
        2 + reason.len()
    }
}

/// What Zeek's `websocket_close` reports for a close payload, without judging it: status `0`
/// when the payload is empty (and for a 1-byte payload), else the first two bytes; the reason is
/// the rest, as bytes.
pub fn zeek_status(payload: &[u8]) -> (u16, &[u8]) {
    if payload.len() < 2 {
        (0, &[])
    } else {
        (u16::from_be_bytes([payload[0], payload[1]]), &payload[2..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_validity_table() {
        for c in 0..=u16::MAX {
            let expect = matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(CloseCode(c).is_valid_on_wire(), expect, "{c}");
        }
        for c in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode(c).is_valid_on_wire());
        }
    }

    #[test]
    fn parse_payloads() {
        assert_eq!(CloseFrameRef::parse(&[]), Ok(None));
        assert_eq!(
            CloseFrameRef::parse(&[0x03]),
            Err(ProtocolError::CloseOneBytePayload)
        );
        assert_eq!(
            CloseFrameRef::parse(&[0x03, 0xe8, b'o', b'k']),
            Ok(Some(CloseFrameRef {
                code: CloseCode::NORMAL,
                reason: "ok"
            }))
        );
        assert_eq!(
            CloseFrameRef::parse(&[0x03, 0xed]),
            Err(ProtocolError::InvalidCloseCode {
                code: CloseCode::NO_STATUS
            })
        );
        assert_eq!(
            CloseFrameRef::parse(&[0x03, 0xe8, 0xff]),
            Err(ProtocolError::InvalidCloseReason)
        );
        assert_eq!(
            ProtocolError::InvalidCloseReason.close_code(),
            CloseCode::INVALID_PAYLOAD
        );
        let mut long = [b'a'; 126];
        long[0] = 0x03;
        long[1] = 0xe8;
        assert_eq!(
            CloseFrameRef::parse(&long),
            Err(ProtocolError::ControlFrameTooLong { len: 126 })
        );
        assert!(CloseFrameRef::parse(&long[..125]).unwrap().is_some());
    }

    #[test]
    fn send_refuses_local_codes() {
        for c in [CloseCode(0), CloseCode::NO_STATUS, CloseCode::ABNORMAL] {
            assert_eq!(
                CloseFrameRef::new(c, CloseReason::EMPTY),
                Err(CloseSendError::InvalidCode(c))
            );
        }
        assert!(CloseFrameRef::new(CloseCode::TLS_FAILURE, CloseReason::EMPTY).is_err());
        assert!(CloseFrameRef::new(CloseCode(4999), CloseReason::EMPTY).is_ok());
    }

    #[test]
    fn reason_builders() {
        let s = "x".repeat(124);
        assert_eq!(CloseReason::new(&s), Err(ReasonTooLong { len: 124 }));
        assert_eq!(CloseReason::new(&s[..123]).unwrap().as_str().len(), 123);
        assert_eq!(CloseReason::truncating(&s).as_str().len(), 123);
        // 4-byte characters: 123 is not a boundary, cut to 120.
        let emoji = "😀".repeat(40);
        assert_eq!(CloseReason::truncating(&emoji).as_str().len(), 120);
    }

    #[test]
    fn zeek_view() {
        assert_eq!(zeek_status(&[]), (0, &[][..]));
        assert_eq!(zeek_status(&[0x03, 0xf1, b'x']), (1009, &b"x"[..]));
    }
}
