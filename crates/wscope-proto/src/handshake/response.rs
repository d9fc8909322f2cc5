//! The server's answer: parsing and checking it ([`Response`], client side and observers) and
//! writing it ([`ResponseBuilder`], server side: `101`, or a refusal with its status).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use super::error::{BuildError, UpgradeError};
use super::header::{
    complete_len, header_slots, is_token, is_valid_value, list_elements, parse_extensions, spans,
    Extension, HeadParse, Headers, Span,
};
use super::request::{check_extra, Request};
use super::{
    AcceptKey, Limits, ACCEPT, CONNECTION, EXTENSIONS, PROTOCOL, UPGRADE, VERSION,
    WEBSOCKET_VERSION,
};

/// A parsed HTTP response head (owned), with accessors for what a WebSocket upgrade uses.
///
/// Parsing only checks HTTP syntax; [`Response::validate_for`] checks it as the answer to a
/// request (what a client does) and [`Response::problems_for`] lists every problem (what an
/// observer reports).
///
/// ```
/// use wscope_proto::handshake::{Limits, Progress, Response};
///
/// let bytes = b"HTTP/1.1 101 Web Socket Protocol Handshake\r\nUpgrade: WebSocket\r\n\
///               Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x89\x00";
/// let Progress::Done { head: resp, leftover } = Response::parse(bytes, &Limits::default()).unwrap() else { panic!() };
/// assert_eq!((resp.status(), resp.reason()), (101, "Web Socket Protocol Handshake"));
/// assert!(resp.is_websocket_upgrade());
/// assert_eq!(resp.accept(), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
/// assert_eq!(leftover, b"\x89\x00");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    headers: Headers,
    status: u16,
    reason: Span,
    minor_version: u8,
}

/// What the client offered, for checking the answer.
pub(crate) struct Offer<'x> {
    /// The accept value expected, when the key is known.
    pub(crate) accept: Option<AcceptKey>,
    /// Whether a subprotocol (exact bytes) was offered.
    pub(crate) protocol: &'x dyn Fn(&[u8]) -> bool,
    /// Whether an extension name was offered (ASCII case-insensitive).
    pub(crate) extension: &'x dyn Fn(&str) -> bool,
}

super::head_accessors!(Response);

impl Response {
    /// Parses a candidate head; gives the buffer back when it is not complete.
    pub(crate) fn from_head(head: Vec<u8>, limits: &Limits) -> HeadParse<Self> {
        let mut fields = header_slots(limits, &head);
        let mut resp = httparse::Response::new(&mut fields);
        let Some(len) = complete_len(resp.parse(&head), limits)? else {
            return Ok(Err(head));
        };
        let bad = UpgradeError::MalformedHttp {
            detail: "incomplete status line",
        };
        let status = resp.code.ok_or(bad)?;
        let reason = Span::of(&head, resp.reason.unwrap_or("").as_bytes()).unwrap_or_default();
        let minor_version = resp.version.ok_or(bad)?;
        let fields = spans(&head, resp.headers)?;
        Ok(Ok((
            Self {
                headers: Headers::kept(head, len, fields),
                status,
                reason,
                minor_version,
            },
            len,
        )))
    }

    /// A response whose head an HTTP layer has decoded already (an HTTP/2 `HEADERS` frame
    /// through HPACK, hyper): the status and the header fields in order. As with
    /// [`Request::from_parts`], the fields are laid out in a head of their own (what
    /// [`Response::raw`] returns, an HTTP/1.1 rendering with values trimmed of surrounding
    /// whitespace) and the same accessors apply as to a response read from the wire.
    ///
    /// ```
    /// use wscope_proto::handshake::Response;
    ///
    /// let fields: [(&str, &[u8]); 1] = [("sec-websocket-protocol", b"chat")];
    /// let resp = Response::from_parts(200, fields);
    /// assert_eq!((resp.status(), resp.reason(), resp.subprotocol()), (200, "OK", Some("chat")));
    /// ```
    pub fn from_parts<'h>(
        status: u16,
        fields: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> Self {
        let mut line = String::with_capacity(128);
        let _ = write!(line, "HTTP/1.1 {status} ");
        let mut head = line.into_bytes();
        let start = head.len();
        head.extend_from_slice(reason_phrase(status).as_bytes());
        let reason = Span::new(start, head.len());
        head.extend_from_slice(b"\r\n");
        let mut spans = Vec::new();
        for (name, value) in fields {
            let n0 = head.len();
            head.extend_from_slice(name.as_bytes());
            let n = Span::new(n0, head.len());
            head.extend_from_slice(b": ");
            let v0 = head.len();
            head.extend_from_slice(value.trim_ascii());
            let v = Span::new(v0, head.len());
            head.extend_from_slice(b"\r\n");
            spans.push((n, v));
        }
        head.extend_from_slice(b"\r\n");
        Self {
            headers: Headers::new(head, spans),
            status,
            reason,
            minor_version: 1,
        }
    }

    /// The status code.
    pub const fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase (empty when absent or not valid text).
    pub fn reason(&self) -> &str {
        self.reason.get_str(self.headers.raw())
    }

    /// The first `Sec-WebSocket-Accept`, if present and UTF-8.
    pub fn accept(&self) -> Option<&str> {
        self.headers.get_str(ACCEPT)
    }

    /// The subprotocol the server chose: the first `Sec-WebSocket-Protocol`, if present and
    /// UTF-8.
    pub fn subprotocol(&self) -> Option<&str> {
        self.headers.get_str(PROTOCOL)
    }

    /// The accepted extensions as raw list elements, parameters included (Zeek's
    /// `server_extensions`).
    pub fn extension_elements(&self) -> impl Iterator<Item = &str> + '_ {
        self.headers
            .list(EXTENSIONS)
            .filter_map(|e| core::str::from_utf8(e).ok())
    }

    /// The accepted extensions, parsed.
    pub fn extensions(&self) -> Result<Vec<Extension<'_>>, UpgradeError> {
        self.headers.extensions(EXTENSIONS)
    }

    /// Whether this is a switch to WebSocket: status 101, `Upgrade` containing `websocket`
    /// and `Connection` containing `upgrade` (both ASCII case-insensitive).
    pub fn is_websocket_upgrade(&self) -> bool {
        self.status == 101
            && self.headers.has_token(UPGRADE, "websocket")
            && self.headers.has_token(CONNECTION, "upgrade")
    }

    /// Checks this response as the answer to `request` (RFC 6455 section 4.1, the client's
    /// checks) and returns the first problem.
    pub fn validate_for(&self, request: &Request) -> Result<(), UpgradeError> {
        let mut first = None;
        self.check_against(request, &mut |e| {
            first.get_or_insert(e);
        });
        first.map_or(Ok(()), Err)
    }

    /// Every problem [`Response::validate_for`] looks for, in the same order.
    pub fn problems_for(&self, request: &Request) -> Vec<UpgradeError> {
        let mut all = Vec::new();
        self.check_against(request, &mut |e| all.push(e));
        all
    }

    fn check_against(&self, request: &Request, report: &mut dyn FnMut(UpgradeError)) {
        let protocol = |p: &[u8]| request.headers().list(PROTOCOL).any(|o| o == p);
        let extension = |name: &str| {
            request
                .extensions()
                .is_ok_and(|exts| exts.iter().any(|e| e.name.eq_ignore_ascii_case(name)))
        };
        let offer = Offer {
            accept: request.expected_accept(),
            protocol: &protocol,
            extension: &extension,
        };
        self.check(&offer, report);
    }

    /// The checks that can be made without the request (an observer that saw a `101` but no
    /// request): everything but the accept value, the subprotocol and the extensions being
    /// offered.
    pub(crate) fn problems_without_request(&self) -> Vec<UpgradeError> {
        let yes = |_: &[u8]| true;
        let any = |_: &str| true;
        let offer = Offer {
            accept: None,
            protocol: &yes,
            extension: &any,
        };
        let mut all = Vec::new();
        self.check(&offer, &mut |e| all.push(e));
        all
    }

    /// The client's checks: status 101, `Upgrade`, `Connection`, exactly one matching
    /// `Sec-WebSocket-Accept`, at most one offered subprotocol, only offered extensions.
    pub(crate) fn check(&self, offer: &Offer<'_>, report: &mut dyn FnMut(UpgradeError)) {
        let h = &self.headers;
        if self.status != 101 {
            report(UpgradeError::UnexpectedStatus {
                status: self.status,
            });
        }
        if h.count(UPGRADE) == 0 {
            report(UpgradeError::MissingHeader { name: UPGRADE });
        } else if !h.has_token(UPGRADE, "websocket") {
            report(UpgradeError::UpgradeNotWebSocket);
        }
        if h.count(CONNECTION) == 0 {
            report(UpgradeError::MissingHeader { name: CONNECTION });
        } else if !h.has_token(CONNECTION, "upgrade") {
            report(UpgradeError::ConnectionNotUpgrade);
        }
        match h.count(ACCEPT) {
            0 => report(UpgradeError::MissingHeader { name: ACCEPT }),
            1 => {
                let matches = match (&offer.accept, h.get(ACCEPT)) {
                    (Some(expected), Some(found)) => expected.matches(found),
                    _ => true,
                };
                if !matches {
                    report(UpgradeError::AcceptMismatch);
                }
            }
            _ => report(UpgradeError::DuplicateHeader { name: ACCEPT }),
        }
        self.check_negotiated(offer, report);
    }

    /// The checks of what the server agreed to, shared with the HTTP/2 extended CONNECT
    /// (RFC 8441 section 5, [`super::ExtendedConnect`]): at most one subprotocol, a token
    /// the client offered; only extensions the client offered.
    pub(crate) fn check_negotiated(&self, offer: &Offer<'_>, report: &mut dyn FnMut(UpgradeError)) {
        let h = &self.headers;
        match h.count(PROTOCOL) {
            0 => {}
            1 => {
                let value = h.get(PROTOCOL).unwrap_or(&[]);
                let mut elements = list_elements(value);
                match (elements.next(), elements.next()) {
                    (Some(p), None) if is_token(p) => {
                        if !(offer.protocol)(p) {
                            report(UpgradeError::SubprotocolNotOffered);
                        }
                    }
                    _ => report(UpgradeError::InvalidHeader { name: PROTOCOL }),
                }
            }
            _ => report(UpgradeError::DuplicateHeader { name: PROTOCOL }),
        }
        match self.extensions() {
            Err(e) => report(e),
            Ok(exts) => {
                if exts.iter().any(|e| !(offer.extension)(e.name)) {
                    report(UpgradeError::ExtensionNotOffered);
                }
            }
        }
    }
}

/// The canonical reason phrase of the statuses a WebSocket server commonly sends (`""` for
/// others). The one table of them: the core's builders and the endpoints' refusals use it.
pub const fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind<'a> {
    /// `101 Switching Protocols` for this request.
    Switch(&'a Request),
    /// Any other final status.
    Status { code: u16, reason: &'a str },
}

/// Writes a server's answer: the `101 Switching Protocols` that accepts a request (RFC 6455
/// section 4.2.2) or a refusal.
///
/// The `101` carries `Upgrade: websocket`, `Connection: Upgrade`, the accept value computed
/// from the request's key, and the chosen subprotocol and extensions. A refusal carries
/// `Connection: close`, `Content-Length` and, for 426, `Sec-WebSocket-Version: 13`. Extra
/// headers come last; one that clashes with a header the builder writes is refused
/// ([`BuildError::ReservedHeader`]), as is any CR or LF.
///
/// ```
/// use wscope_proto::handshake::{UpgradeError, ResponseBuilder};
///
/// let mut out = Vec::new();
/// ResponseBuilder::reject(&UpgradeError::UnsupportedVersion).write(&mut out).unwrap();
/// assert_eq!(
///     out,
///     b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseBuilder<'a> {
    kind: Kind<'a>,
    subprotocol: Option<&'a str>,
    extensions: Option<&'a str>,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
}

const SWITCH_RESERVED: [&str; 7] = [
    UPGRADE,
    CONNECTION,
    ACCEPT,
    PROTOCOL,
    EXTENSIONS,
    "Content-Length",
    "Transfer-Encoding",
];
const STATUS_RESERVED: [&str; 4] = [CONNECTION, "Content-Length", "Transfer-Encoding", VERSION];

impl<'a> ResponseBuilder<'a> {
    /// `101 Switching Protocols` accepting `request`.
    pub fn accept(request: &'a Request) -> Self {
        Self {
            kind: Kind::Switch(request),
            subprotocol: None,
            extensions: None,
            headers: Vec::new(),
            body: &[],
        }
    }

    /// A refusal with any final status (200 to 999, not 101) and reason phrase.
    pub fn status(code: u16, reason: &'a str) -> Self {
        Self {
            kind: Kind::Status { code, reason },
            subprotocol: None,
            extensions: None,
            headers: Vec::new(),
            body: &[],
        }
    }

    /// The refusal for a handshake error: its [`UpgradeError::http_status`] with the
    /// canonical reason phrase (426 adds `Sec-WebSocket-Version: 13`).
    pub fn reject(error: &UpgradeError) -> Self {
        let code = error.http_status();
        Self::status(code, reason_phrase(code))
    }

    /// `400 Bad Request`.
    pub fn bad_request() -> Self {
        Self::status(400, reason_phrase(400))
    }

    /// `403 Forbidden` (e.g. an `Origin` the server does not accept).
    pub fn forbidden() -> Self {
        Self::status(403, reason_phrase(403))
    }

    /// `426 Upgrade Required` with `Sec-WebSocket-Version: 13`.
    pub fn upgrade_required() -> Self {
        Self::status(426, reason_phrase(426))
    }

    /// `431 Request Header Fields Too Large`.
    pub fn header_fields_too_large() -> Self {
        Self::status(431, reason_phrase(431))
    }

    /// The subprotocol chosen (`101` only); it must be one the request offered.
    #[must_use]
    pub fn subprotocol(mut self, protocol: &'a str) -> Self {
        self.subprotocol = Some(protocol);
        self
    }

    /// The `Sec-WebSocket-Extensions` value to answer with (`101` only), as written on the wire.
    #[must_use]
    pub fn extensions(mut self, value: &'a str) -> Self {
        self.extensions = Some(value);
        self
    }

    /// Adds a header after the ones the builder writes.
    #[must_use]
    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// A body for a refusal (ignored for a `101`).
    #[must_use]
    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// Appends the response to `out`. Nothing is written when an error is returned.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), BuildError> {
        let field = |field| BuildError::InvalidField { field };
        let mut s = String::with_capacity(160);
        match &self.kind {
            Kind::Switch(request) => {
                let accept = request.expected_accept().ok_or(BuildError::MissingKey)?;
                if let Some(p) = self.subprotocol {
                    if !is_token(p.as_bytes()) {
                        return Err(field("subprotocol"));
                    }
                    if !request.subprotocols().any(|o| o == p) {
                        return Err(BuildError::SubprotocolNotOffered);
                    }
                }
                if self.extensions.is_some_and(|e| {
                    !is_valid_value(e.as_bytes()) || parse_extensions(e.as_bytes()).is_err()
                }) {
                    return Err(field("extensions"));
                }
                check_extra(&self.headers, &SWITCH_RESERVED)?;
                let _ = write!(
                    s,
                    "HTTP/1.1 101 Switching Protocols\r\n{UPGRADE}: websocket\r\n\
                     {CONNECTION}: Upgrade\r\n{ACCEPT}: {accept}\r\n"
                );
                if let Some(p) = self.subprotocol {
                    let _ = write!(s, "{PROTOCOL}: {p}\r\n");
                }
                if let Some(e) = self.extensions {
                    let _ = write!(s, "{EXTENSIONS}: {e}\r\n");
                }
            }
            Kind::Status { code, reason } => {
                if !(200..=999).contains(code) {
                    return Err(field("status"));
                }
                if !is_valid_value(reason.as_bytes()) {
                    return Err(field("reason"));
                }
                check_extra(&self.headers, &STATUS_RESERVED)?;
                let _ = write!(s, "HTTP/1.1 {code} {reason}\r\n");
                if *code == 426 {
                    let _ = write!(s, "{VERSION}: {WEBSOCKET_VERSION}\r\n");
                }
                let _ = write!(
                    s,
                    "{CONNECTION}: close\r\nContent-Length: {}\r\n",
                    self.body.len()
                );
            }
        }
        for (name, value) in &self.headers {
            let _ = write!(s, "{name}: {value}\r\n");
        }
        s.push_str("\r\n");
        out.extend_from_slice(s.as_bytes());
        if matches!(self.kind, Kind::Status { .. }) {
            out.extend_from_slice(self.body);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::Progress;

    /// RFC 6455 section 1.3.
    const RFC_RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        Sec-WebSocket-Protocol: chat\r\n\r\n";

    const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
        Host: server.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    fn request() -> Request {
        match Request::parse(RFC_REQUEST, &Limits::default()).unwrap() {
            Progress::Done { head, .. } => head,
            Progress::NeedMore => panic!(),
        }
    }

    fn response(bytes: &[u8]) -> Response {
        match Response::parse(bytes, &Limits::default()).unwrap() {
            Progress::Done { head, .. } => head,
            Progress::NeedMore => panic!(),
        }
    }

    fn variant(from: &str, to: &str) -> Response {
        let text = core::str::from_utf8(RFC_RESPONSE)
            .unwrap()
            .replace(from, to);
        response(text.as_bytes())
    }

    #[test]
    fn builder_writes_the_rfc_response() {
        let req = request();
        let mut out = Vec::new();
        ResponseBuilder::accept(&req)
            .subprotocol("chat")
            .write(&mut out)
            .unwrap();
        assert_eq!(out, RFC_RESPONSE);
        let resp = response(&out);
        assert_eq!(resp.validate_for(&req), Ok(()));
        assert_eq!(resp.subprotocol(), Some("chat"));
        assert!(resp.is_websocket_upgrade());
    }

    #[test]
    fn refusals_with_their_statuses() {
        let cases: &[(ResponseBuilder<'_>, &[u8])] = &[
            (
                ResponseBuilder::bad_request(),
                b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            ),
            (
                ResponseBuilder::forbidden().body(b"no"),
                b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno",
            ),
            (
                ResponseBuilder::upgrade_required(),
                b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            ),
            (
                ResponseBuilder::header_fields_too_large(),
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            ),
            (
                ResponseBuilder::reject(&UpgradeError::HeadTooLarge { limit: 1 }),
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            ),
            (
                ResponseBuilder::reject(&UpgradeError::InvalidKey).header("X-Why", "key"),
                b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\nX-Why: key\r\n\r\n",
            ),
            (
                ResponseBuilder::status(503, "Busy"),
                b"HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            ),
        ];
        for (builder, expected) in cases {
            let mut out = Vec::new();
            builder.write(&mut out).unwrap();
            assert_eq!(out, *expected);
            let head_len = out.len() - builder.body.len();
            let resp = response(&out[..head_len]);
            assert!(!resp.is_websocket_upgrade());
        }
    }

    #[test]
    fn builder_refusals() {
        let req = request();
        let mut out = Vec::new();
        assert_eq!(
            ResponseBuilder::accept(&req)
                .subprotocol("other")
                .write(&mut out),
            Err(BuildError::SubprotocolNotOffered)
        );
        assert_eq!(
            ResponseBuilder::accept(&req)
                .subprotocol("a b")
                .write(&mut out),
            Err(BuildError::InvalidField {
                field: "subprotocol"
            })
        );
        assert_eq!(
            ResponseBuilder::accept(&req)
                .header("sec-websocket-accept", "x")
                .write(&mut out),
            Err(BuildError::ReservedHeader {
                index: 0,
                name: ACCEPT
            })
        );
        assert_eq!(
            ResponseBuilder::accept(&req)
                .header("X", "a\nb")
                .write(&mut out),
            Err(BuildError::InvalidHeader { index: 0 })
        );
        assert_eq!(
            ResponseBuilder::accept(&req)
                .extensions("x;")
                .write(&mut out),
            Err(BuildError::InvalidField {
                field: "extensions"
            })
        );
        assert_eq!(
            ResponseBuilder::status(101, "x").write(&mut out),
            Err(BuildError::InvalidField { field: "status" })
        );
        assert_eq!(
            ResponseBuilder::status(400, "x\r\n").write(&mut out),
            Err(BuildError::InvalidField { field: "reason" })
        );
        assert_eq!(
            ResponseBuilder::upgrade_required()
                .header("Sec-WebSocket-Version", "8")
                .write(&mut out),
            Err(BuildError::ReservedHeader {
                index: 0,
                name: VERSION
            })
        );
        let no_key = match Request::parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &Limits::default())
            .unwrap()
        {
            Progress::Done { head, .. } => head,
            Progress::NeedMore => panic!(),
        };
        assert_eq!(
            ResponseBuilder::accept(&no_key).write(&mut out),
            Err(BuildError::MissingKey)
        );
        assert!(out.is_empty());
        // Extensions the request offered come back as written.
        ResponseBuilder::accept(&req)
            .extensions("permessage-deflate")
            .write(&mut out)
            .unwrap();
        let resp = response(&out);
        assert_eq!(resp.validate_for(&req), Ok(()));
        assert_eq!(
            resp.extension_elements().collect::<Vec<_>>(),
            ["permessage-deflate"]
        );
    }

    #[test]
    fn every_client_side_rejection() {
        let req = request();
        let cases: &[(&str, &str, UpgradeError)] = &[
            ("101 Switching Protocols", "403 Forbidden", UpgradeError::UnexpectedStatus { status: 403 }),
            ("Upgrade: websocket\r\n", "", UpgradeError::MissingHeader { name: UPGRADE }),
            ("Upgrade: websocket", "Upgrade: h2c", UpgradeError::UpgradeNotWebSocket),
            ("Connection: Upgrade\r\n", "", UpgradeError::MissingHeader { name: CONNECTION }),
            ("Connection: Upgrade", "Connection: keep-alive", UpgradeError::ConnectionNotUpgrade),
            ("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", "", UpgradeError::MissingHeader { name: ACCEPT }),
            ("xOo=", "xOo=-wrong", UpgradeError::AcceptMismatch),
            ("xOo=", "xOO=", UpgradeError::AcceptMismatch),
            (
                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                UpgradeError::DuplicateHeader { name: ACCEPT },
            ),
            ("Protocol: chat", "Protocol: other", UpgradeError::SubprotocolNotOffered),
            ("Protocol: chat", "Protocol: CHAT", UpgradeError::SubprotocolNotOffered),
            ("Protocol: chat", "Protocol: chat, superchat", UpgradeError::InvalidHeader { name: PROTOCOL }),
            (
                "Protocol: chat\r\n",
                "Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n",
                UpgradeError::DuplicateHeader { name: PROTOCOL },
            ),
            (
                "Protocol: chat\r\n",
                "Protocol: chat\r\nSec-WebSocket-Extensions: x-unknown\r\n",
                UpgradeError::ExtensionNotOffered,
            ),
            (
                "Protocol: chat\r\n",
                "Protocol: chat\r\nSec-WebSocket-Extensions: ;;\r\n",
                UpgradeError::InvalidHeader { name: EXTENSIONS },
            ),
        ];
        for (from, to, err) in cases {
            let resp = variant(from, to);
            assert_eq!(resp.validate_for(&req), Err(*err), "{from} -> {to}");
            assert_eq!(resp.problems_for(&req), [*err], "{from} -> {to}");
        }
        // Case-insensitive tokens and names are fine.
        let resp = variant("Upgrade: websocket", "UPGRADE: WebSocket");
        assert_eq!(resp.validate_for(&req), Ok(()));
        let resp = variant("Connection: Upgrade", "connection: keep-alive, UPGRADE");
        assert_eq!(resp.validate_for(&req), Ok(()));
        // No subprotocol chosen is fine; a subprotocol when none was offered is not.
        let resp = variant("Sec-WebSocket-Protocol: chat\r\n", "");
        assert_eq!(resp.validate_for(&req), Ok(()));
        let bare = match Request::parse(
            &core::str::from_utf8(RFC_REQUEST)
                .unwrap()
                .replace("Sec-WebSocket-Protocol: chat, superchat\r\n", "")
                .into_bytes(),
            &Limits::default(),
        )
        .unwrap()
        {
            Progress::Done { head, .. } => head,
            Progress::NeedMore => panic!(),
        };
        assert_eq!(
            response(RFC_RESPONSE).validate_for(&bare),
            Err(UpgradeError::SubprotocolNotOffered)
        );
    }

    #[test]
    fn reason_and_status_line_forms() {
        let r = variant(
            "101 Switching Protocols",
            "101 Web Socket Protocol Handshake",
        );
        assert_eq!(r.reason(), "Web Socket Protocol Handshake");
        let r = variant("101 Switching Protocols", "101 ");
        assert_eq!((r.status(), r.reason()), (101, ""));
        assert_eq!(r.minor_version(), 1);
        assert!(r.headers().len() == 4 && r.raw().ends_with(b"\r\n\r\n"));
        assert_eq!(
            Response::parse(b"HTTP/1.1 1x1 OK\r\n\r\n", &Limits::default()),
            Err(UpgradeError::MalformedHttp {
                detail: "invalid status"
            })
        );
    }
}
