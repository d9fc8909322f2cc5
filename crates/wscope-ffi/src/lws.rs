//! libwebsockets' close statuses (`enum lws_close_status`, lws-ws-close.h) and the close that
//! [`websock_close_reason`] sets up. The registered codes themselves, and which of them may
//! be sent, are `wscope_proto`'s [`CloseCode`]; this module only names them the way
//! libwebsockets does, and holds libwebsockets' own values that are not close codes
//! (`NOSTATUS` 0, `CLIENT_TRANSACTION_DONE` 2000, `NOSTATUS_CONTEXT_DESTROY` 9999). A test
//! ties every value to its [`CloseCode`], one by one.

use core::ffi::c_int;

use wscope::proto::close::CloseReason;
use wscope::CloseCode;

#[cfg(doc)]
use crate::websock_close_reason;

/// libwebsockets' close status values (`enum lws_close_status`, lws-ws-close.h), for
/// [`websock_close_reason`]. `NOSTATUS` (0) means a close without a status; 1004, 1005,
/// 1006, 1015, 2000 and 9999 can never be sent and are refused.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lws_close_status {
    /// No status: the close frame carries no payload.
    LWS_CLOSE_STATUS_NOSTATUS = 0,
    /// 1000 normal closure.
    LWS_CLOSE_STATUS_NORMAL = 1000,
    /// 1001 going away.
    LWS_CLOSE_STATUS_GOINGAWAY = 1001,
    /// 1002 protocol error.
    LWS_CLOSE_STATUS_PROTOCOL_ERR = 1002,
    /// 1003 unacceptable data type.
    LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE = 1003,
    /// 1004 reserved (refused).
    LWS_CLOSE_STATUS_RESERVED = 1004,
    /// 1005 no status received: local only (refused).
    LWS_CLOSE_STATUS_NO_STATUS = 1005,
    /// 1006 abnormal closure: local only (refused).
    LWS_CLOSE_STATUS_ABNORMAL_CLOSE = 1006,
    /// 1007 invalid payload data.
    LWS_CLOSE_STATUS_INVALID_PAYLOAD = 1007,
    /// 1008 policy violation.
    LWS_CLOSE_STATUS_POLICY_VIOLATION = 1008,
    /// 1009 message too big.
    LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE = 1009,
    /// 1010 extension required.
    LWS_CLOSE_STATUS_EXTENSION_REQUIRED = 1010,
    /// 1011 unexpected condition.
    LWS_CLOSE_STATUS_UNEXPECTED_CONDITION = 1011,
    /// 1015 TLS failure: local only (refused).
    LWS_CLOSE_STATUS_TLS_FAILURE = 1015,
    /// lws-internal (refused).
    LWS_CLOSE_STATUS_CLIENT_TRANSACTION_DONE = 2000,
    /// lws-internal (refused).
    LWS_CLOSE_STATUS_NOSTATUS_CONTEXT_DESTROY = 9999,
}

impl lws_close_status {
    /// The registered close code (RFC 6455 §7.4.1, the IANA registry) this status names, or
    /// `None` for libwebsockets' own values, which are not close codes: `NOSTATUS` (0, a close
    /// without a status, on the wire an empty close payload), `CLIENT_TRANSACTION_DONE`
    /// (2000) and `NOSTATUS_CONTEXT_DESTROY` (9999).
    pub const fn close_code(self) -> Option<CloseCode> {
        Some(match self {
            Self::LWS_CLOSE_STATUS_NOSTATUS
            | Self::LWS_CLOSE_STATUS_CLIENT_TRANSACTION_DONE
            | Self::LWS_CLOSE_STATUS_NOSTATUS_CONTEXT_DESTROY => return None,
            Self::LWS_CLOSE_STATUS_NORMAL => CloseCode::NORMAL,
            Self::LWS_CLOSE_STATUS_GOINGAWAY => CloseCode::GOING_AWAY,
            Self::LWS_CLOSE_STATUS_PROTOCOL_ERR => CloseCode::PROTOCOL_ERROR,
            Self::LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE => CloseCode::UNSUPPORTED_DATA,
            Self::LWS_CLOSE_STATUS_RESERVED => CloseCode::RESERVED,
            Self::LWS_CLOSE_STATUS_NO_STATUS => CloseCode::NO_STATUS,
            Self::LWS_CLOSE_STATUS_ABNORMAL_CLOSE => CloseCode::ABNORMAL,
            Self::LWS_CLOSE_STATUS_INVALID_PAYLOAD => CloseCode::INVALID_PAYLOAD,
            Self::LWS_CLOSE_STATUS_POLICY_VIOLATION => CloseCode::POLICY_VIOLATION,
            Self::LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE => CloseCode::MESSAGE_TOO_BIG,
            Self::LWS_CLOSE_STATUS_EXTENSION_REQUIRED => CloseCode::MANDATORY_EXTENSION,
            Self::LWS_CLOSE_STATUS_UNEXPECTED_CONDITION => CloseCode::INTERNAL_ERROR,
            Self::LWS_CLOSE_STATUS_TLS_FAILURE => CloseCode::TLS_FAILURE,
        })
    }
}

/// What `websock_close` sends, as set by [`websock_close_reason`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PendingClose {
    /// A close frame without payload (`LWS_CLOSE_STATUS_NOSTATUS`).
    NoStatus,
    /// A status valid on the wire and a reason of at most 123 bytes.
    Status(CloseCode, String),
}

impl PendingClose {
    /// [`websock_close_reason`]'s rules: `NOSTATUS` (0) without a reason is a close without
    /// payload; any other status must be valid on the wire ([`CloseCode::is_valid_on_wire`]),
    /// so 1004-1006, 1015, 2000, 9999 are refused; the reason is cut to 123 bytes on a
    /// character boundary.
    pub(crate) fn from_c(status: c_int, reason: &str) -> Result<Self, String> {
        if status == lws_close_status::LWS_CLOSE_STATUS_NOSTATUS as c_int {
            if !reason.is_empty() {
                return Err("a reason needs a status (NOSTATUS cannot carry one)".to_owned());
            }
            return Ok(Self::NoStatus);
        }
        let code = u16::try_from(status)
            .map(CloseCode)
            .ok()
            .filter(|c| c.is_valid_on_wire())
            .ok_or_else(|| format!("status {status} may not be sent in a close frame"))?;
        Ok(Self::Status(
            code,
            CloseReason::truncating(reason).as_str().to_owned(),
        ))
    }

    /// The status to send (`None`: no payload) and the reason.
    pub(crate) fn parts(&self) -> (Option<CloseCode>, &str) {
        match self {
            Self::NoStatus => (None, ""),
            Self::Status(code, reason) => (Some(*code), reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lws_close_status::*;

    /// Every value of the enum, in the order of lws-ws-close.h.
    const ALL: [lws_close_status; 16] = [
        LWS_CLOSE_STATUS_NOSTATUS,
        LWS_CLOSE_STATUS_NORMAL,
        LWS_CLOSE_STATUS_GOINGAWAY,
        LWS_CLOSE_STATUS_PROTOCOL_ERR,
        LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
        LWS_CLOSE_STATUS_RESERVED,
        LWS_CLOSE_STATUS_NO_STATUS,
        LWS_CLOSE_STATUS_ABNORMAL_CLOSE,
        LWS_CLOSE_STATUS_INVALID_PAYLOAD,
        LWS_CLOSE_STATUS_POLICY_VIOLATION,
        LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
        LWS_CLOSE_STATUS_EXTENSION_REQUIRED,
        LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
        LWS_CLOSE_STATUS_TLS_FAILURE,
        LWS_CLOSE_STATUS_CLIENT_TRANSACTION_DONE,
        LWS_CLOSE_STATUS_NOSTATUS_CONTEXT_DESTROY,
    ];

    /// Value by value: a status that names a registered code has that code's value (the
    /// `CloseCode` constant it maps to by name); the others are not close codes at all.
    #[test]
    fn every_status_is_its_close_code() {
        let mut lws_only = Vec::new();
        for s in ALL {
            let value = s as c_int;
            match s.close_code() {
                Some(code) => {
                    assert_eq!(c_int::from(code.0), value, "{s:?} vs {code:?}");
                    assert!(code.meaning().is_some(), "{s:?}: {code:?} is registered");
                }
                None => {
                    let code = CloseCode(u16::try_from(value).unwrap());
                    assert!(!code.is_valid_on_wire(), "{s:?}");
                    assert_eq!(code.meaning(), None, "{s:?} is not a registered code");
                    lws_only.push(value);
                }
            }
        }
        assert_eq!(lws_only, [0, 2000, 9999]);
    }

    /// The C enum in the checked-in header has exactly these names and values (so `ALL` is
    /// complete and the C side cannot drift from the Rust side).
    #[test]
    fn header_enum_is_all_of_them() {
        let header = include_str!("../../../include/websock.h");
        let mut in_header: Vec<(String, c_int)> = header
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("LWS_CLOSE_STATUS_"))
            .map(|l| {
                let (name, value) = l.trim_end_matches(',').split_once(" = ").unwrap();
                (name.to_owned(), value.parse().unwrap())
            })
            .collect();
        let mut ours: Vec<(String, c_int)> = ALL
            .iter()
            .map(|&s| (format!("{s:?}"), s as c_int))
            .collect();
        in_header.sort();
        ours.sort();
        assert_eq!(in_header, ours);
    }

    #[test]
    fn close_reason_rules() {
        for s in ALL {
            let sendable = s == LWS_CLOSE_STATUS_NOSTATUS
                || s.close_code().is_some_and(CloseCode::is_valid_on_wire);
            assert_eq!(
                PendingClose::from_c(s as c_int, "").is_ok(),
                sendable,
                "{s:?}"
            );
        }
        assert_eq!(PendingClose::from_c(0, "").unwrap().parts(), (None, ""));
        assert!(PendingClose::from_c(0, "why").is_err());
        assert!(PendingClose::from_c(-1, "").is_err());
        assert!(PendingClose::from_c(70_000, "").is_err());
        let long = "é".repeat(70);
        let p = PendingClose::from_c(4000, &long).unwrap();
        let (code, reason) = p.parts();
        assert_eq!((code, reason.len()), (Some(CloseCode(4000)), 122));
    }
}
