//! The HTTP/2 opening handshake of RFC 8441 (and RFC 9220 for HTTP/3): the extended CONNECT
//! that bootstraps a WebSocket on one stream, both sides and observers, sans-IO.
//!
//! The HTTP/2 layer (the `h2` crate, an HPACK decoder) hands over the pseudo-header fields
//! ([`PseudoHeaders`]) and the regular fields; this module applies the WebSocket rules:
//!
//! - [`ExtendedConnect`] is the request: `:method CONNECT`, `:protocol websocket`, `:scheme`,
//!   `:path`, `:authority`, `sec-websocket-version: 13`, no `Sec-WebSocket-Key` and no
//!   connection-specific field (RFC 8441 sections 4 and 5, RFC 9113 section 8.2.2).
//!   [`ExtendedConnect::validate`] gives the first problem as a [`ConnectError`] carrying the
//!   status to answer (400, or 501 for a `:protocol` other than `websocket`, RFC 9220
//!   section 3); [`ExtendedConnect::problems`] lists them all (what an observer reports).
//! - The offers (subprotocols, permessage-deflate) are read and checked by the same code as
//!   for HTTP/1.1: [`ExtendedConnect::request`] is a [`Request`] (built with
//!   [`Request::from_parts`]), so the server's negotiation takes it unchanged.
//! - The server answers `200` with [`ExtendedConnect::response_fields`] (the chosen
//!   subprotocol must have been offered); a refusal carries [`ConnectError::http_status`]
//!   and [`ConnectError::response_fields`].
//! - The client (and an observer that saw both sides) checks the answer with
//!   [`check_response`] / [`ExtendedConnect::check_response`]: a 2xx status, at most one
//!   offered subprotocol, only offered extensions (the same checks as for a `101`). There is
//!   no `Sec-WebSocket-Accept` in HTTP/2.
//!
//! ```
//! use wscope_proto::handshake::{ExtendedConnect, PseudoHeaders};
//!
//! // What a browser sends on a new stream (RFC 8441 section 5.1).
//! let pseudo = PseudoHeaders::websocket("https", "server.example.com", "/chat");
//! let fields: [(&str, &[u8]); 3] = [
//!     ("sec-websocket-protocol", b"chat, superchat"),
//!     ("sec-websocket-extensions", b"permessage-deflate"),
//!     ("sec-websocket-version", b"13"),
//! ];
//! let req = ExtendedConnect::from_parts(pseudo, fields);
//! assert_eq!(req.validate(), Ok(()));
//! assert_eq!(req.request().subprotocols().collect::<Vec<_>>(), ["chat", "superchat"]);
//! assert_eq!(req.request().host(), Some("server.example.com"));
//!
//! // The server's 200 (its HEADERS frame) and the client's check of it.
//! let answer = req.response_fields(Some("chat"), None).unwrap();
//! assert_eq!(answer, [("sec-websocket-protocol", "chat".to_string())]);
//! let fields = answer.iter().map(|(n, v)| (*n, v.as_bytes()));
//! let resp = req.check_response(200, fields).unwrap();
//! assert_eq!(resp.subprotocol(), Some("chat"));
//! ```

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use super::error::{BuildError, UpgradeError};
use super::header::{is_token, is_valid_value, parse_extensions};
use super::request::{once, Request};
use super::response::{Offer, Response};
use super::{HOST, KEY, PROTOCOL, VERSION, WEBSOCKET_VERSION};

/// `:method`.
pub const PSEUDO_METHOD: &str = ":method";
/// `:protocol` (RFC 8441 section 4).
pub const PSEUDO_PROTOCOL: &str = ":protocol";
/// `:scheme`.
pub const PSEUDO_SCHEME: &str = ":scheme";
/// `:authority`.
pub const PSEUDO_AUTHORITY: &str = ":authority";
/// `:path`.
pub const PSEUDO_PATH: &str = ":path";
/// The `:protocol` value of a WebSocket (the HTTP/1.1 upgrade token, RFC 8441 section 5).
pub const WEBSOCKET_PROTOCOL: &str = "websocket";

/// Fields a request may not carry in HTTP/2: the connection-specific ones (RFC 9113 section
/// 8.2.2), and `Sec-WebSocket-Key`, which RFC 8441 section 5 takes out of the handshake.
const FORBIDDEN: [&str; 6] = [
    "Connection",
    "Keep-Alive",
    "Proxy-Connection",
    "Transfer-Encoding",
    "Upgrade",
    KEY,
];

/// The pseudo-header fields of an HTTP/2 (or HTTP/3) request as the HTTP layer decoded them
/// (RFC 9113 section 8.3.1, RFC 8441 section 4); `None` for a field that was absent.
///
/// ```
/// use wscope_proto::handshake::PseudoHeaders;
///
/// let mut p = PseudoHeaders::websocket("http", "localhost:8080", "/");
/// p.protocol = None; // a plain CONNECT
/// assert_eq!(p.method, Some("CONNECT"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PseudoHeaders<'a> {
    /// `:method`.
    pub method: Option<&'a str>,
    /// `:protocol`.
    pub protocol: Option<&'a str>,
    /// `:scheme`.
    pub scheme: Option<&'a str>,
    /// `:authority`.
    pub authority: Option<&'a str>,
    /// `:path`.
    pub path: Option<&'a str>,
}

impl<'a> PseudoHeaders<'a> {
    /// What a client sends for a WebSocket: `:method CONNECT`, `:protocol websocket` and the
    /// target (`scheme` is `https` over TLS, `http` over cleartext h2c).
    pub const fn websocket(scheme: &'a str, authority: &'a str, path: &'a str) -> Self {
        Self {
            method: Some("CONNECT"),
            protocol: Some(WEBSOCKET_PROTOCOL),
            scheme: Some(scheme),
            authority: Some(authority),
            path: Some(path),
        }
    }
}

/// An extended CONNECT request (RFC 8441 section 4): its pseudo-header fields and, as a
/// [`Request`], its regular fields.
///
/// Building one never fails (observers need every request, valid or not); the rules are
/// [`ExtendedConnect::validate`] and [`ExtendedConnect::problems`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtendedConnect {
    method: Option<String>,
    protocol: Option<String>,
    scheme: Option<String>,
    authority: Option<String>,
    path: Option<String>,
    request: Request,
}

impl ExtendedConnect {
    /// The request with these pseudo-header fields and regular `fields` (in order, names as
    /// received; HTTP/2 sends them in lower case).
    ///
    /// The [`Request`] view has the method, the `:path` as its target, and a `Host` field
    /// holding `:authority` first when the request has no `Host` of its own (RFC 9113
    /// section 8.3.1: `:authority` plays its part), so [`Request::host`] works as for
    /// HTTP/1.1.
    pub fn from_parts<'h>(
        pseudo: PseudoHeaders<'_>,
        fields: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> Self {
        let fields: Vec<(&str, &[u8])> = fields.into_iter().collect();
        let has_host = fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(HOST));
        let host = pseudo
            .authority
            .filter(|_| !has_host)
            .map(|a| ("host", a.as_bytes()));
        let request = Request::from_parts(
            pseudo.method.unwrap_or(""),
            pseudo.path.unwrap_or(""),
            1,
            host.into_iter().chain(fields.iter().copied()),
        );
        let own = |s: Option<&str>| s.map(str::to_string);
        Self {
            method: own(pseudo.method),
            protocol: own(pseudo.protocol),
            scheme: own(pseudo.scheme),
            authority: own(pseudo.authority),
            path: own(pseudo.path),
            request,
        }
    }

    /// The regular fields as a [`Request`], for the offers (subprotocols, extensions),
    /// `Origin`, and the application's accept/refuse decision, exactly as for HTTP/1.1.
    pub const fn request(&self) -> &Request {
        &self.request
    }

    /// `:method`, when present.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// `:protocol`, when present.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// `:scheme`, when present.
    pub fn scheme(&self) -> Option<&str> {
        self.scheme.as_deref()
    }

    /// `:authority`, when present.
    pub fn authority(&self) -> Option<&str> {
        self.authority.as_deref()
    }

    /// `:path`, when present.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Whether this asks for a WebSocket at all (`CONNECT` with `:protocol websocket`): what
    /// an observer looks for before following the stream.
    pub fn is_websocket(&self) -> bool {
        self.method() == Some("CONNECT")
            && self
                .protocol()
                .is_some_and(|p| p.eq_ignore_ascii_case(WEBSOCKET_PROTOCOL))
    }

    /// Checks the rules of RFC 8441 sections 4 and 5 and returns the first problem, with the
    /// status a server answers it with ([`ConnectError::http_status`]).
    pub fn validate(&self) -> Result<(), ConnectError> {
        let mut first = None;
        self.check(&mut |e| {
            first.get_or_insert(e);
        });
        first.map_or(Ok(()), Err)
    }

    /// Every problem [`ExtendedConnect::validate`] looks for, in the same order.
    pub fn problems(&self) -> Vec<ConnectError> {
        let mut all = Vec::new();
        self.check(&mut |e| all.push(e));
        all
    }

    fn check(&self, report: &mut dyn FnMut(ConnectError)) {
        match self.method() {
            None => report(ConnectError::MissingPseudoHeader {
                name: PSEUDO_METHOD,
            }),
            Some("CONNECT") => {}
            Some(_) => report(ConnectError::MethodNotConnect),
        }
        match self.protocol() {
            None => report(ConnectError::MissingProtocol),
            Some(p) if p.eq_ignore_ascii_case(WEBSOCKET_PROTOCOL) => {}
            Some(_) => report(ConnectError::UnsupportedProtocol),
        }
        for (name, value) in [
            (PSEUDO_SCHEME, self.scheme()),
            (PSEUDO_AUTHORITY, self.authority()),
            (PSEUDO_PATH, self.path()),
        ] {
            match value {
                None => report(ConnectError::MissingPseudoHeader { name }),
                Some(v) if v.is_empty() || !is_valid_value(v.as_bytes()) => {
                    report(ConnectError::InvalidPseudoHeader { name });
                }
                Some(_) => {}
            }
        }
        let h = self.request.headers();
        for name in FORBIDDEN {
            if h.count(name) > 0 {
                report(ConnectError::ForbiddenHeader { name });
            }
        }
        let mut upgrade = |e| report(ConnectError::Upgrade(e));
        if once(h, VERSION, &mut upgrade)
            && h.get(VERSION).map(<[u8]>::trim_ascii) != Some(WEBSOCKET_VERSION.as_bytes())
        {
            upgrade(UpgradeError::UnsupportedVersion);
        }
        self.request.check_offers(&mut upgrade);
    }

    /// The regular fields of the server's `200` (RFC 8441 section 5): the chosen subprotocol
    /// and the accepted extensions (a `Sec-WebSocket-Extensions` value as written on the
    /// wire), names in lower case as HTTP/2 requires.
    ///
    /// # Errors
    ///
    /// A subprotocol this request did not offer ([`BuildError::SubprotocolNotOffered`]), or
    /// a value that is not a token / not a valid extension list
    /// ([`BuildError::InvalidField`]).
    pub fn response_fields(
        &self,
        subprotocol: Option<&str>,
        extensions: Option<&str>,
    ) -> Result<Vec<(&'static str, String)>, BuildError> {
        let mut out = Vec::new();
        if let Some(p) = subprotocol {
            if !is_token(p.as_bytes()) {
                return Err(BuildError::InvalidField {
                    field: "subprotocol",
                });
            }
            if !self.request.subprotocols().any(|o| o == p) {
                return Err(BuildError::SubprotocolNotOffered);
            }
            out.push(("sec-websocket-protocol", p.to_string()));
        }
        if let Some(e) = extensions {
            if !is_valid_value(e.as_bytes()) || parse_extensions(e.as_bytes()).is_err() {
                return Err(BuildError::InvalidField {
                    field: "extensions",
                });
            }
            out.push(("sec-websocket-extensions", e.to_string()));
        }
        Ok(out)
    }

    /// Checks the server's answer to this request (status and regular fields): a 2xx, at most
    /// one subprotocol and one this request offered, only extensions it offered. Returns the
    /// answer as a [`Response`] (for [`Response::subprotocol`] and
    /// [`Response::extensions`]), or the first problem. An observer that saw both HEADERS
    /// frames uses this; a client that kept only its offers uses [`check_response`].
    pub fn check_response<'h>(
        &self,
        status: u16,
        fields: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> Result<Response, ConnectError> {
        let response = Response::from_parts(status, fields);
        let protocol = |p: &[u8]| self.request.headers().list(PROTOCOL).any(|o| o == p);
        let extension = |name: &str| {
            self.request
                .extensions()
                .is_ok_and(|exts| exts.iter().any(|e| e.name.eq_ignore_ascii_case(name)))
        };
        check_answer(response, &protocol, &extension)
    }
}

/// The client's check of the server's answer to an extended CONNECT (RFC 8441 section 5):
/// a 2xx status (any other is [`ConnectError::Status`]), at most one subprotocol and one of
/// `subprotocols` (the offer), only extensions named in `extensions` (the
/// `Sec-WebSocket-Extensions` value offered). Returns the answer as a [`Response`].
///
/// ```
/// use wscope_proto::handshake::{check_response, ConnectError, UpgradeError};
///
/// let ok: [(&str, &[u8]); 1] = [("sec-websocket-extensions", b"permessage-deflate")];
/// let resp = check_response(200, ok, &["chat"], Some("permessage-deflate")).unwrap();
/// assert_eq!(resp.extension_elements().collect::<Vec<_>>(), ["permessage-deflate"]);
///
/// let bad: [(&str, &[u8]); 1] = [("sec-websocket-protocol", b"other")];
/// let err = check_response(200, bad, &["chat"], None).unwrap_err();
/// assert_eq!(err, ConnectError::Upgrade(UpgradeError::SubprotocolNotOffered));
/// assert_eq!(check_response(404, [], &[], None), Err(ConnectError::Status { status: 404 }));
/// ```
pub fn check_response<'h>(
    status: u16,
    fields: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    subprotocols: &[&str],
    extensions: Option<&str>,
) -> Result<Response, ConnectError> {
    let response = Response::from_parts(status, fields);
    let offered = extensions
        .and_then(|e| parse_extensions(e.as_bytes()).ok())
        .unwrap_or_default();
    let protocol = |p: &[u8]| subprotocols.iter().any(|o| o.as_bytes() == p);
    let extension = |name: &str| offered.iter().any(|e| e.name.eq_ignore_ascii_case(name));
    check_answer(response, &protocol, &extension)
}

/// The status, then the shared checks of what the server agreed to.
fn check_answer(
    response: Response,
    protocol: &dyn Fn(&[u8]) -> bool,
    extension: &dyn Fn(&str) -> bool,
) -> Result<Response, ConnectError> {
    if !(200..300).contains(&response.status()) {
        return Err(ConnectError::Status {
            status: response.status(),
        });
    }
    let offer = Offer {
        accept: None,
        protocol,
        extension,
    };
    let mut first = None;
    response.check_negotiated(&offer, &mut |e| {
        first.get_or_insert(e);
    });
    match first {
        Some(e) => Err(ConnectError::Upgrade(e)),
        None => Ok(response),
    }
}

/// A problem with an extended CONNECT handshake (RFC 8441), with the HTTP status a server
/// answers it with ([`ConnectError::http_status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectError {
    /// A field HTTP/2 or RFC 8441 forbids in the request: a connection-specific field
    /// (`Connection`, `Upgrade`, ...; RFC 9113 section 8.2.2) or `Sec-WebSocket-Key` (RFC
    /// 8441 section 5) (400).
    ForbiddenHeader {
        /// The field's name, in canonical spelling.
        name: &'static str,
    },
    /// `:scheme`, `:authority` or `:path` is empty or holds control characters (400).
    InvalidPseudoHeader {
        /// The pseudo-header's name, e.g. `:path`.
        name: &'static str,
    },
    /// `:method` is not `CONNECT` (400).
    MethodNotConnect,
    /// A `CONNECT` without `:protocol`: a plain tunnel request, not a WebSocket (400).
    MissingProtocol,
    /// `:method`, `:scheme`, `:authority` or `:path` is absent (400; RFC 8441 section 4
    /// requires all of them with `:protocol`).
    MissingPseudoHeader {
        /// The pseudo-header's name, e.g. `:scheme`.
        name: &'static str,
    },
    /// The server answered with a status other than 2xx (client side; 502 like every
    /// response problem). The status is in the variant.
    Status {
        /// The status received.
        status: u16,
    },
    /// `:protocol` names a protocol other than `websocket` (501 Not Implemented, as RFC 9220
    /// section 3 asks of a server that does not support the protocol).
    UnsupportedProtocol,
    /// A rule shared with the HTTP/1.1 upgrade: `Sec-WebSocket-Version` missing, repeated or
    /// not 13; a subprotocol or extension offer that does not parse; an answer with a
    /// subprotocol or extension that was not offered.
    Upgrade(UpgradeError),
}

impl ConnectError {
    /// The HTTP status a server answers with when it refuses the request for this reason:
    /// 400, or 501 for an unsupported `:protocol`; 502 for problems found in a response.
    ///
    /// A wrong `Sec-WebSocket-Version` is 400 here, not the 426 of HTTP/1.1: 426 requires an
    /// `Upgrade` field, which HTTP/2 forbids. The answer still carries
    /// `sec-websocket-version: 13` ([`ConnectError::response_fields`]), as RFC 6455 section
    /// 4.4 asks.
    pub const fn http_status(&self) -> u16 {
        match self {
            Self::Status { .. } => 502,
            Self::UnsupportedProtocol => 501,
            Self::Upgrade(UpgradeError::UnsupportedVersion) => 400,
            Self::Upgrade(e) => e.http_status(),
            _ => 400,
        }
    }

    /// The regular fields of the refusal: `sec-websocket-version: 13` for a version problem
    /// (RFC 6455 section 4.4), nothing otherwise.
    pub fn response_fields(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Upgrade(
                UpgradeError::UnsupportedVersion
                | UpgradeError::MissingHeader { name: VERSION }
                | UpgradeError::DuplicateHeader { name: VERSION },
            ) => &[("sec-websocket-version", WEBSOCKET_VERSION)],
            _ => &[],
        }
    }

    /// The field or pseudo-header at fault, when there is one.
    pub const fn header(&self) -> Option<&'static str> {
        match self {
            Self::ForbiddenHeader { name }
            | Self::InvalidPseudoHeader { name }
            | Self::MissingPseudoHeader { name } => Some(name),
            Self::MethodNotConnect => Some(PSEUDO_METHOD),
            Self::MissingProtocol | Self::UnsupportedProtocol => Some(PSEUDO_PROTOCOL),
            Self::Upgrade(e) => e.header(),
            Self::Status { .. } => None,
        }
    }

    /// A stable snake_case name for logs, e.g. `"missing_protocol"`; the shared rules keep
    /// their [`UpgradeError::name`].
    pub const fn name(&self) -> &'static str {
        match self {
            Self::ForbiddenHeader { .. } => "forbidden_header",
            Self::InvalidPseudoHeader { .. } => "invalid_pseudo_header",
            Self::MethodNotConnect => "method_not_connect",
            Self::MissingProtocol => "missing_protocol",
            Self::MissingPseudoHeader { .. } => "missing_pseudo_header",
            Self::Status { .. } => "unexpected_status",
            Self::UnsupportedProtocol => "unsupported_protocol",
            Self::Upgrade(e) => e.name(),
        }
    }
}

impl From<UpgradeError> for ConnectError {
    fn from(e: UpgradeError) -> Self {
        Self::Upgrade(e)
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ForbiddenHeader { name } => {
                write!(f, "{name} is not allowed in an HTTP/2 WebSocket request")
            }
            Self::InvalidPseudoHeader { name } => write!(f, "invalid {name} pseudo-header"),
            Self::MethodNotConnect => f.write_str(":method is not CONNECT"),
            Self::MissingProtocol => {
                f.write_str("CONNECT without :protocol (not an extended CONNECT)")
            }
            Self::MissingPseudoHeader { name } => write!(f, "missing {name} pseudo-header"),
            Self::Status { status } => {
                write!(
                    f,
                    "server answered the extended CONNECT with status {status}"
                )
            }
            Self::UnsupportedProtocol => f.write_str(":protocol is not websocket"),
            Self::Upgrade(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl core::error::Error for ConnectError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::EXTENSIONS;
    use alloc::vec;

    const GOOD: [(&str, &[u8]); 3] = [
        ("sec-websocket-protocol", b"chat, superchat"),
        (
            "sec-websocket-extensions",
            b"permessage-deflate; client_max_window_bits",
        ),
        ("sec-websocket-version", b"13"),
    ];

    fn good_pseudo() -> PseudoHeaders<'static> {
        PseudoHeaders::websocket("https", "server.example.com", "/chat")
    }

    #[test]
    fn the_rfc_8441_example_is_valid_and_reads_as_an_http1_request() {
        let req = ExtendedConnect::from_parts(good_pseudo(), GOOD);
        assert_eq!(req.validate(), Ok(()));
        assert!(req.problems().is_empty());
        assert!(req.is_websocket());
        assert_eq!(req.path(), Some("/chat"));
        assert_eq!(req.scheme(), Some("https"));
        assert_eq!(req.authority(), Some("server.example.com"));
        let r = req.request();
        assert_eq!((r.method(), r.target()), ("CONNECT", "/chat"));
        assert_eq!(r.host(), Some("server.example.com"));
        assert_eq!(r.websocket_version(), Some("13"));
        assert_eq!(r.subprotocols().collect::<Vec<_>>(), ["chat", "superchat"]);
        let exts = r.extensions().unwrap();
        assert_eq!(exts.len(), 1);
        assert_eq!(exts[0].name, "permessage-deflate");
        // The same request is no HTTP/1.1 upgrade (no GET, no key): the rules differ.
        assert_eq!(r.validate(), Err(UpgradeError::MethodNotGet));
    }

    #[test]
    fn a_host_field_of_its_own_is_kept_and_not_doubled() {
        let fields: [(&str, &[u8]); 2] = [("host", b"other"), ("sec-websocket-version", b"13")];
        let req = ExtendedConnect::from_parts(good_pseudo(), fields);
        assert_eq!(req.request().headers().count(HOST), 1);
        assert_eq!(req.request().host(), Some("other"));
        assert_eq!(req.validate(), Ok(()));
    }

    /// Each rule, one at a time, with the status the server answers with.
    #[test]
    fn each_broken_rule_is_refused_with_its_status() {
        let version: (&str, &[u8]) = ("sec-websocket-version", b"13");
        type Case<'a> = (
            PseudoHeaders<'a>,
            Vec<(&'a str, &'a [u8])>,
            ConnectError,
            u16,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                PseudoHeaders {
                    protocol: None,
                    ..good_pseudo()
                },
                vec![version],
                ConnectError::MissingProtocol,
                400,
            ),
            (
                PseudoHeaders {
                    protocol: Some("connect-udp"),
                    ..good_pseudo()
                },
                vec![version],
                ConnectError::UnsupportedProtocol,
                501,
            ),
            (
                PseudoHeaders {
                    method: Some("GET"),
                    ..good_pseudo()
                },
                vec![version],
                ConnectError::MethodNotConnect,
                400,
            ),
            (
                PseudoHeaders {
                    method: None,
                    ..good_pseudo()
                },
                vec![version],
                ConnectError::MissingPseudoHeader {
                    name: PSEUDO_METHOD,
                },
                400,
            ),
            (
                PseudoHeaders {
                    scheme: None,
                    ..good_pseudo()
                },
                vec![version],
                ConnectError::MissingPseudoHeader {
                    name: PSEUDO_SCHEME,
                },
                400,
            ),
            (
                PseudoHeaders {
                    authority: None,
                    ..good_pseudo()
                },
                vec![version],
                ConnectError::MissingPseudoHeader {
                    name: PSEUDO_AUTHORITY,
                },
                400,
            ),
            (
                PseudoHeaders {
                    path: Some(""),
                    ..good_pseudo()
                },
                vec![version],
                ConnectError::InvalidPseudoHeader { name: PSEUDO_PATH },
                400,
            ),
            (
                good_pseudo(),
                vec![("sec-websocket-version", b"8")],
                ConnectError::Upgrade(UpgradeError::UnsupportedVersion),
                400,
            ),
            (
                good_pseudo(),
                vec![],
                ConnectError::Upgrade(UpgradeError::MissingHeader { name: VERSION }),
                400,
            ),
            (
                good_pseudo(),
                vec![version, version],
                ConnectError::Upgrade(UpgradeError::DuplicateHeader { name: VERSION }),
                400,
            ),
            (
                good_pseudo(),
                vec![version, ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==")],
                ConnectError::ForbiddenHeader { name: KEY },
                400,
            ),
            (
                good_pseudo(),
                vec![version, ("upgrade", b"websocket")],
                ConnectError::ForbiddenHeader { name: "Upgrade" },
                400,
            ),
            (
                good_pseudo(),
                vec![version, ("connection", b"upgrade")],
                ConnectError::ForbiddenHeader { name: "Connection" },
                400,
            ),
            (
                good_pseudo(),
                vec![version, ("sec-websocket-protocol", b"a b")],
                ConnectError::Upgrade(UpgradeError::InvalidHeader { name: PROTOCOL }),
                400,
            ),
            (
                good_pseudo(),
                vec![version, ("sec-websocket-extensions", b";;")],
                ConnectError::Upgrade(UpgradeError::InvalidHeader { name: EXTENSIONS }),
                400,
            ),
        ];
        for (pseudo, fields, err, status) in cases {
            let req = ExtendedConnect::from_parts(pseudo, fields.iter().copied());
            assert_eq!(req.validate(), Err(err), "{pseudo:?} {fields:?}");
            assert_eq!(req.problems(), [err]);
            assert_eq!(err.http_status(), status, "{err}");
        }
    }

    #[test]
    fn version_refusals_carry_the_supported_version() {
        let e = ConnectError::Upgrade(UpgradeError::UnsupportedVersion);
        assert_eq!(e.response_fields(), [("sec-websocket-version", "13")]);
        assert!(ConnectError::MissingProtocol.response_fields().is_empty());
        assert_eq!(e.header(), Some(VERSION));
        assert_eq!(
            ConnectError::UnsupportedProtocol.header(),
            Some(":protocol")
        );
        assert_eq!(ConnectError::MissingProtocol.name(), "missing_protocol");
        assert_eq!(e.name(), "unsupported_version");
        assert_eq!(
            ConnectError::MissingProtocol.to_string(),
            "CONNECT without :protocol (not an extended CONNECT)"
        );
    }

    #[test]
    fn an_observer_gets_every_problem() {
        let fields: [(&str, &[u8]); 2] =
            [("upgrade", b"websocket"), ("sec-websocket-version", b"12")];
        let req = ExtendedConnect::from_parts(PseudoHeaders::default(), fields);
        assert!(!req.is_websocket());
        assert_eq!(
            req.problems(),
            [
                ConnectError::MissingPseudoHeader {
                    name: PSEUDO_METHOD
                },
                ConnectError::MissingProtocol,
                ConnectError::MissingPseudoHeader {
                    name: PSEUDO_SCHEME
                },
                ConnectError::MissingPseudoHeader {
                    name: PSEUDO_AUTHORITY
                },
                ConnectError::MissingPseudoHeader { name: PSEUDO_PATH },
                ConnectError::ForbiddenHeader { name: "Upgrade" },
                ConnectError::Upgrade(UpgradeError::UnsupportedVersion),
            ]
        );
    }

    #[test]
    fn the_server_answers_only_with_what_was_offered() {
        let req = ExtendedConnect::from_parts(good_pseudo(), GOOD);
        assert_eq!(req.response_fields(None, None), Ok(vec![]));
        assert_eq!(
            req.response_fields(Some("superchat"), Some("permessage-deflate")),
            Ok(vec![
                ("sec-websocket-protocol", "superchat".to_string()),
                ("sec-websocket-extensions", "permessage-deflate".to_string()),
            ])
        );
        assert_eq!(
            req.response_fields(Some("other"), None),
            Err(BuildError::SubprotocolNotOffered)
        );
        assert_eq!(
            req.response_fields(Some("a b"), None),
            Err(BuildError::InvalidField {
                field: "subprotocol"
            })
        );
        assert_eq!(
            req.response_fields(None, Some("x\r\ny: z")),
            Err(BuildError::InvalidField {
                field: "extensions"
            })
        );
    }

    #[test]
    fn the_client_checks_the_answer() {
        let req = ExtendedConnect::from_parts(good_pseudo(), GOOD);
        let ok: [(&str, &[u8]); 2] = [
            ("sec-websocket-protocol", b"chat"),
            (
                "sec-websocket-extensions",
                b"permessage-deflate; client_max_window_bits=10",
            ),
        ];
        let resp = req.check_response(200, ok).unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.subprotocol(), Some("chat"));
        assert_eq!(resp.extensions().unwrap()[0].name, "permessage-deflate");
        // The same with only the offers kept.
        let offers = ["chat", "superchat"];
        let offered = Some("permessage-deflate; client_max_window_bits");
        assert!(check_response(200, ok, &offers, offered).is_ok());
        // Any 2xx is success (RFC 9113 section 8.5); others are refusals.
        assert!(check_response(204, [], &offers, offered).is_ok());
        for status in [101, 400, 404, 501] {
            assert_eq!(
                req.check_response(status, []),
                Err(ConnectError::Status { status })
            );
            assert_eq!(ConnectError::Status { status }.http_status(), 502);
        }
        let cases: [(&str, &[u8], UpgradeError); 4] = [
            (
                "sec-websocket-protocol",
                b"other",
                UpgradeError::SubprotocolNotOffered,
            ),
            (
                "sec-websocket-protocol",
                b"chat, superchat",
                UpgradeError::InvalidHeader { name: PROTOCOL },
            ),
            (
                "sec-websocket-extensions",
                b"x-unknown",
                UpgradeError::ExtensionNotOffered,
            ),
            (
                "sec-websocket-extensions",
                b";",
                UpgradeError::InvalidHeader { name: EXTENSIONS },
            ),
        ];
        for (name, value, err) in cases {
            let field = [(name, value)];
            assert_eq!(
                req.check_response(200, field),
                Err(ConnectError::Upgrade(err)),
                "{name}: {value:?}"
            );
            assert_eq!(
                check_response(200, field, &offers, offered),
                Err(ConnectError::Upgrade(err))
            );
        }
        // Nothing offered: any subprotocol or extension in the answer is refused.
        assert_eq!(
            check_response(200, ok, &[], None),
            Err(ConnectError::Upgrade(UpgradeError::SubprotocolNotOffered))
        );
    }
}
