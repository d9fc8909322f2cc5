//! The client's opening request: parsing and checking it ([`Request`], server side and
//! observers) and writing it ([`RequestBuilder`], client side).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use super::error::{BuildError, UpgradeError};
use super::header::{
    complete_len, header_slots, is_token, is_valid_value, parse_extensions, spans, Extension,
    HeadParse, Headers, Span,
};
use super::{
    is_valid_key, AcceptKey, Key, Limits, CONNECTION, CONTENT_LENGTH, EXTENSIONS, HOST, KEY,
    ORIGIN, PROTOCOL, TRANSFER_ENCODING, UPGRADE, USER_AGENT, VERSION, WEBSOCKET_VERSION,
};

/// A parsed HTTP request head (owned), with accessors for what a WebSocket upgrade uses.
///
/// Parsing only checks HTTP syntax; the WebSocket rules are [`Request::validate`] (first
/// problem, what a server answers) and [`Request::problems`] (all of them, what an observer
/// reports). [`super::ServerHandshake`] hands out requests that passed `validate`.
///
/// ```
/// use wscope_proto::handshake::{Limits, Progress, Request};
///
/// let bytes = b"GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: WebSocket\r\n\
///               Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///               Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a, b\r\n\
///               Sec-WebSocket-Protocol: c\r\n\r\n";
/// let Progress::Done { head: req, .. } = Request::parse(bytes, &Limits::default()).unwrap() else { panic!() };
/// assert_eq!((req.method(), req.target(), req.host()), ("GET", "/chat?x=1", Some("example.com")));
/// assert_eq!(req.subprotocols().collect::<Vec<_>>(), ["a", "b", "c"]);
/// assert_eq!(req.validate(), Ok(()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    headers: Headers,
    method: Span,
    target: Span,
    minor_version: u8,
}

super::head_accessors!(Request);

impl Request {
    /// Parses a candidate head; gives the buffer back when it is not complete.
    pub(crate) fn from_head(head: Vec<u8>, limits: &Limits) -> HeadParse<Self> {
        let mut fields = header_slots(limits, &head);
        let mut req = httparse::Request::new(&mut fields);
        let Some(len) = complete_len(req.parse(&head), limits)? else {
            return Ok(Err(head));
        };
        let bad = UpgradeError::MalformedHttp {
            detail: "incomplete request line",
        };
        let method = Span::of(&head, req.method.ok_or(bad)?.as_bytes()).ok_or(bad)?;
        let target = Span::of(&head, req.path.ok_or(bad)?.as_bytes()).ok_or(bad)?;
        let minor_version = req.version.ok_or(bad)?;
        let fields = spans(&head, req.headers)?;
        Ok(Ok((
            Self {
                headers: Headers::kept(head, len, fields),
                method,
                target,
                minor_version,
            },
            len,
        )))
    }

    /// A request whose head an HTTP server has parsed already (hyper, axum): the method, the
    /// request target, the minor HTTP version (`1` for HTTP/1.1) and the header fields in
    /// order. Nothing is parsed again: the fields are laid out in a head of their own (what
    /// [`Request::raw`] returns, with values trimmed of surrounding whitespace) and the same
    /// accessors and checks ([`Request::validate`]) apply as to a request read from the wire.
    ///
    /// ```
    /// use wscope_proto::handshake::{UpgradeError, Request};
    ///
    /// let fields: [(&str, &[u8]); 5] = [
    ///     ("host", b"example.com"),
    ///     ("upgrade", b"websocket"),
    ///     ("connection", b"Upgrade"),
    ///     ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    ///     ("sec-websocket-version", b"8"),
    /// ];
    /// let req = Request::from_parts("GET", "/chat", 1, fields);
    /// assert_eq!(req.key(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
    /// assert_eq!(req.validate(), Err(UpgradeError::UnsupportedVersion));
    /// ```
    pub fn from_parts<'h>(
        method: &str,
        target: &str,
        minor_version: u8,
        fields: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> Self {
        let mut head = Vec::with_capacity(256);
        let put = |head: &mut Vec<u8>, bytes: &[u8]| {
            let start = head.len();
            head.extend_from_slice(bytes);
            Span::new(start, head.len())
        };
        let method = put(&mut head, method.as_bytes());
        head.push(b' ');
        let target = put(&mut head, target.as_bytes());
        head.extend_from_slice(b" HTTP/1.");
        head.push(b'0' + minor_version.min(9));
        head.extend_from_slice(b"\r\n");
        let mut spans = Vec::new();
        for (name, value) in fields {
            let n = put(&mut head, name.as_bytes());
            head.extend_from_slice(b": ");
            let v = put(&mut head, value.trim_ascii());
            head.extend_from_slice(b"\r\n");
            spans.push((n, v));
        }
        head.extend_from_slice(b"\r\n");
        Self {
            headers: Headers::new(head, spans),
            method,
            target,
            minor_version,
        }
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        self.method.get_str(self.headers.raw())
    }

    /// The request target as sent: the resource name (path and query), or an absolute URI.
    pub fn target(&self) -> &str {
        self.target.get_str(self.headers.raw())
    }

    /// `Host`, if present and UTF-8.
    pub fn host(&self) -> Option<&str> {
        self.headers.get_str(HOST)
    }

    /// `Origin`, if present and UTF-8.
    pub fn origin(&self) -> Option<&str> {
        self.headers.get_str(ORIGIN)
    }

    /// `User-Agent`, if present and UTF-8.
    pub fn user_agent(&self) -> Option<&str> {
        self.headers.get_str(USER_AGENT)
    }

    /// The first `Sec-WebSocket-Key`, if present and UTF-8 (not checked; see
    /// [`super::is_valid_key`]).
    pub fn key(&self) -> Option<&str> {
        self.headers.get_str(KEY)
    }

    /// The first `Sec-WebSocket-Version`, if present and UTF-8.
    pub fn websocket_version(&self) -> Option<&str> {
        self.headers.get_str(VERSION)
    }

    /// The `Sec-WebSocket-Accept` a server answers this request's key with (whatever the key
    /// looks like), when there is a key.
    pub fn expected_accept(&self) -> Option<AcceptKey> {
        self.headers.get(KEY).map(AcceptKey::for_key)
    }

    /// Whether the request asks for a protocol switch (it has an `Upgrade` header): a `101`
    /// may follow, after which the bytes are no longer HTTP.
    pub fn wants_upgrade(&self) -> bool {
        self.headers.list(UPGRADE).next().is_some()
    }

    /// Whether `Upgrade` contains `websocket` and `Connection` contains `upgrade`.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.headers.has_token(UPGRADE, "websocket")
            && self.headers.has_token(CONNECTION, "upgrade")
    }

    /// The subprotocols offered (`Sec-WebSocket-Protocol`, every field), in preference order.
    /// Elements that are not UTF-8 are skipped (they are not tokens either, which
    /// [`Request::validate`] reports).
    pub fn subprotocols(&self) -> impl Iterator<Item = &str> + '_ {
        self.headers
            .list(PROTOCOL)
            .filter_map(|e| core::str::from_utf8(e).ok())
    }

    /// The offered extensions as raw list elements, parameters included (what Zeek logs as
    /// `client_extensions`, e.g. `permessage-deflate; client_max_window_bits`).
    pub fn extension_elements(&self) -> impl Iterator<Item = &str> + '_ {
        self.headers
            .list(EXTENSIONS)
            .filter_map(|e| core::str::from_utf8(e).ok())
    }

    /// The offered extensions, parsed (every `Sec-WebSocket-Extensions` field, in order).
    pub fn extensions(&self) -> Result<Vec<Extension<'_>>, UpgradeError> {
        self.headers.extensions(EXTENSIONS)
    }

    /// Checks the WebSocket rules of RFC 6455 section 4.2.1 and returns the first problem:
    /// `GET`, HTTP/1.1, one `Host`, `Upgrade` with `websocket`, `Connection` with `upgrade`,
    /// exactly one valid `Sec-WebSocket-Key`, exactly one `Sec-WebSocket-Version: 13`
    /// (otherwise 426), subprotocols that are tokens, extensions that parse, and no body
    /// (`Content-Length` other than 0 or any `Transfer-Encoding`: what follows the head must
    /// be WebSocket frames).
    pub fn validate(&self) -> Result<(), UpgradeError> {
        let mut first = None;
        self.check(&mut |e| {
            first.get_or_insert(e);
        });
        first.map_or(Ok(()), Err)
    }

    /// Every problem [`Request::validate`] looks for, in the same order.
    pub fn problems(&self) -> Vec<UpgradeError> {
        let mut all = Vec::new();
        self.check(&mut |e| all.push(e));
        all
    }

    fn check(&self, report: &mut dyn FnMut(UpgradeError)) {
        let h = &self.headers;
        if self.method() != "GET" {
            report(UpgradeError::MethodNotGet);
        }
        if self.minor_version < 1 {
            report(UpgradeError::HttpVersion);
        }
        once(h, HOST, report);
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
        if once(h, KEY, report) && !h.get(KEY).is_some_and(is_valid_key) {
            report(UpgradeError::InvalidKey);
        }
        if once(h, VERSION, report)
            && h.get(VERSION).map(<[u8]>::trim_ascii) != Some(WEBSOCKET_VERSION.as_bytes())
        {
            report(UpgradeError::UnsupportedVersion);
        }
        self.check_offers(report);
        if h.count(TRANSFER_ENCODING) > 0 {
            report(UpgradeError::RequestBody {
                name: TRANSFER_ENCODING,
            });
        } else if !h.get_all(CONTENT_LENGTH).all(is_zero) {
            report(UpgradeError::RequestBody {
                name: CONTENT_LENGTH,
            });
        }
    }
}

impl Request {
    /// The checks of what the client offers, shared with the HTTP/2 extended CONNECT
    /// ([`super::ExtendedConnect`]): subprotocols that are tokens, extensions that parse.
    pub(crate) fn check_offers(&self, report: &mut dyn FnMut(UpgradeError)) {
        if !self.headers.list(PROTOCOL).all(is_token) {
            report(UpgradeError::InvalidHeader { name: PROTOCOL });
        }
        if self.extensions().is_err() {
            report(UpgradeError::InvalidHeader { name: EXTENSIONS });
        }
    }
}

/// Whether a `Content-Length` value is zero (an empty or malformed value is not).
fn is_zero(value: &[u8]) -> bool {
    let value = value.trim_ascii();
    !value.is_empty() && value.iter().all(|&b| b == b'0')
}

/// Reports a missing or repeated header; true when it appears exactly once.
pub(crate) fn once(h: &Headers, name: &'static str, report: &mut dyn FnMut(UpgradeError)) -> bool {
    match h.count(name) {
        0 => report(UpgradeError::MissingHeader { name }),
        1 => return true,
        _ => report(UpgradeError::DuplicateHeader { name }),
    }
    false
}

/// Writes a client's opening request (RFC 6455 section 4.1).
///
/// The builder writes `Host` (with the port only when it is not the default, 80 for `ws`, 443
/// for `wss`), `Upgrade: websocket`, `Connection: Upgrade`, the key, `Origin`,
/// `Sec-WebSocket-Protocol`, `Sec-WebSocket-Extensions` and `Sec-WebSocket-Version: 13` itself;
/// extra headers come after them. An extra header with one of those names is refused
/// ([`BuildError::ReservedHeader`]), as is any CR or LF in a name or value.
///
/// ```
/// use wscope_proto::handshake::{Key, RequestBuilder};
///
/// let mut out = Vec::new();
/// RequestBuilder::new("example.com", "/ws", Key::from_random([7; 16]))
///     .secure(true)
///     .port(8443)
///     .extensions("permessage-deflate; client_max_window_bits")
///     .header("Authorization", "Bearer x")
///     .write(&mut out)
///     .unwrap();
/// let text = std::str::from_utf8(&out).unwrap();
/// assert!(text.starts_with("GET /ws HTTP/1.1\r\nHost: example.com:8443\r\n"));
/// assert!(text.ends_with("Sec-WebSocket-Version: 13\r\nAuthorization: Bearer x\r\n\r\n"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestBuilder<'a> {
    host: &'a str,
    port: Option<u16>,
    secure: bool,
    path: &'a str,
    key: Key,
    origin: Option<&'a str>,
    subprotocols: Vec<&'a str>,
    extensions: Option<&'a str>,
    headers: Vec<(&'a str, &'a str)>,
}

/// Headers a request builder writes itself.
const REQUEST_RESERVED: [&str; 8] = [
    HOST, UPGRADE, CONNECTION, KEY, VERSION, ORIGIN, PROTOCOL, EXTENSIONS,
];

impl<'a> RequestBuilder<'a> {
    /// A request for `path` (path and query; empty means `/`) on `host` (a name or an IP
    /// address; an IPv6 address gets its brackets), port 80, with `key`.
    pub fn new(host: &'a str, path: &'a str, key: Key) -> Self {
        Self {
            host,
            port: None,
            secure: false,
            path,
            key,
            origin: None,
            subprotocols: Vec::new(),
            extensions: None,
            headers: Vec::new(),
        }
    }

    /// The server's port; written in `Host` only when it is not the scheme's default.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// `wss` (default port 443) rather than `ws` (80).
    #[must_use]
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The `Origin` header (browsers send it; RFC 6455 section 4.1 item 8).
    #[must_use]
    pub fn origin(mut self, origin: &'a str) -> Self {
        self.origin = Some(origin);
        self
    }

    /// Offers a subprotocol; call again for more, in order of preference.
    #[must_use]
    pub fn subprotocol(mut self, protocol: &'a str) -> Self {
        self.subprotocols.push(protocol);
        self
    }

    /// The `Sec-WebSocket-Extensions` value to offer, as written on the wire.
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

    /// The key this request sends.
    pub const fn key(&self) -> Key {
        self.key
    }

    /// The subprotocols offered, in order.
    pub fn offered_subprotocols(&self) -> &[&'a str] {
        &self.subprotocols
    }

    /// The extensions offered, as given to [`RequestBuilder::extensions`].
    pub const fn offered_extensions(&self) -> Option<&'a str> {
        self.extensions
    }

    fn check(&self) -> Result<(), BuildError> {
        let field = |field| BuildError::InvalidField { field };
        let host_ok = !self.host.is_empty()
            && self
                .host
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'?' | b'#' | b'@'));
        if !host_ok {
            return Err(field("host"));
        }
        let path_ok = (self.path.is_empty() || self.path.starts_with('/'))
            && self.path.bytes().all(|b| b.is_ascii_graphic() && b != b'#');
        if !path_ok {
            return Err(field("path"));
        }
        if self
            .origin
            .is_some_and(|o| o.is_empty() || !is_valid_value(o.as_bytes()))
        {
            return Err(field("origin"));
        }
        if !self.subprotocols.iter().all(|p| is_token(p.as_bytes())) {
            return Err(field("subprotocol"));
        }
        if self.extensions.is_some_and(|e| {
            !is_valid_value(e.as_bytes()) || parse_extensions(e.as_bytes()).is_err()
        }) {
            return Err(field("extensions"));
        }
        check_extra(&self.headers, &REQUEST_RESERVED)
    }

    /// Appends the request to `out`. Nothing is written when an error is returned.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), BuildError> {
        self.check()?;
        let mut s = String::with_capacity(256);
        let path = if self.path.is_empty() { "/" } else { self.path };
        let _ = write!(s, "GET {path} HTTP/1.1\r\n{HOST}: ");
        if self.host.contains(':') && !self.host.starts_with('[') {
            let _ = write!(s, "[{}]", self.host);
        } else {
            s.push_str(self.host);
        }
        let default_port = if self.secure { 443 } else { 80 };
        if let Some(port) = self.port.filter(|&p| p != default_port) {
            let _ = write!(s, ":{port}");
        }
        let _ = write!(
            s,
            "\r\n{UPGRADE}: websocket\r\n{CONNECTION}: Upgrade\r\n{KEY}: {}\r\n",
            self.key
        );
        if let Some(origin) = self.origin {
            let _ = write!(s, "{ORIGIN}: {origin}\r\n");
        }
        if !self.subprotocols.is_empty() {
            let _ = write!(s, "{PROTOCOL}: ");
            for (i, p) in self.subprotocols.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(p);
            }
            s.push_str("\r\n");
        }
        if let Some(ext) = self.extensions {
            let _ = write!(s, "{EXTENSIONS}: {ext}\r\n");
        }
        let _ = write!(s, "{VERSION}: {WEBSOCKET_VERSION}\r\n");
        for (name, value) in &self.headers {
            let _ = write!(s, "{name}: {value}\r\n");
        }
        s.push_str("\r\n");
        out.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Checks extra headers: valid names and values, none clashing with `reserved`.
pub(crate) fn check_extra(
    headers: &[(&str, &str)],
    reserved: &[&'static str],
) -> Result<(), BuildError> {
    for (index, (name, value)) in headers.iter().enumerate() {
        if !is_token(name.as_bytes()) || !is_valid_value(value.as_bytes()) {
            return Err(BuildError::InvalidHeader { index });
        }
        if let Some(&r) = reserved.iter().find(|r| r.eq_ignore_ascii_case(name)) {
            return Err(BuildError::ReservedHeader { index, name: r });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::Progress;
    use alloc::format;

    #[test]
    fn a_request_from_parsed_parts_reads_and_validates_as_one_from_the_wire() {
        let Progress::Done { head: wire, .. } =
            Request::parse(RFC_REQUEST, &Limits::default()).unwrap()
        else {
            panic!()
        };
        let fields: Vec<(&str, &[u8])> = wire.headers().iter().map(|h| (h.name, h.value)).collect();
        let built = Request::from_parts("GET", "/chat", 1, fields.iter().copied());
        assert_eq!(built, wire);
        assert_eq!(built.raw(), RFC_REQUEST);
        assert_eq!(built.validate(), Ok(()));
        assert_eq!(
            built.subprotocols().collect::<Vec<_>>(),
            ["chat", "superchat"]
        );
        // The same rules: HTTP/1.0 and a missing key are refused as from the wire.
        let old = Request::from_parts("GET", "/chat", 0, fields.iter().copied());
        assert_eq!(old.validate(), Err(UpgradeError::HttpVersion));
        let keyless = fields
            .iter()
            .copied()
            .filter(|(n, _)| *n != "Sec-WebSocket-Key");
        assert_eq!(
            Request::from_parts("GET", "/", 1, keyless).validate(),
            Err(UpgradeError::MissingHeader { name: KEY })
        );
        // Values are trimmed as httparse trims them.
        let padded = Request::from_parts("GET", "/", 1, [("Host", &b"  h  "[..])]);
        assert_eq!(padded.host(), Some("h"));
    }

    /// RFC 6455 section 1.3.
    const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
        Host: server.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    fn parse(bytes: &[u8]) -> Request {
        match Request::parse(bytes, &Limits::default()).unwrap() {
            Progress::Done { head, .. } => head,
            Progress::NeedMore => panic!("incomplete"),
        }
    }

    /// A valid request with `replace` applied to its text.
    fn variant(from: &str, to: &str) -> Request {
        let text = core::str::from_utf8(RFC_REQUEST).unwrap().replace(from, to);
        parse(text.as_bytes())
    }

    #[test]
    fn builder_writes_the_rfc_request() {
        let mut out = Vec::new();
        RequestBuilder::new(
            "server.example.com",
            "/chat",
            Key::from_random(*b"the sample nonce"),
        )
        .origin("http://example.com")
        .subprotocol("chat")
        .subprotocol("superchat")
        .write(&mut out)
        .unwrap();
        assert_eq!(out, RFC_REQUEST);
    }

    #[test]
    fn rfc_request_parses_and_validates() {
        let req = parse(RFC_REQUEST);
        assert_eq!(req.method(), "GET");
        assert_eq!(req.target(), "/chat");
        assert_eq!(req.minor_version(), 1);
        assert_eq!(req.host(), Some("server.example.com"));
        assert_eq!(req.origin(), Some("http://example.com"));
        assert_eq!(req.key(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(req.websocket_version(), Some("13"));
        assert_eq!(
            req.expected_accept().unwrap().as_str(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(
            req.subprotocols().collect::<Vec<_>>(),
            ["chat", "superchat"]
        );
        assert!(req.is_websocket_upgrade() && req.wants_upgrade());
        assert_eq!(req.validate(), Ok(()));
        assert!(req.problems().is_empty());
        assert_eq!(req.headers().len(), 7);
        assert_eq!(req.raw(), RFC_REQUEST);
    }

    #[test]
    fn host_port_and_ipv6() {
        let key = Key::from_random([1; 16]);
        let host = |b: RequestBuilder<'_>| {
            let mut out = Vec::new();
            b.write(&mut out).unwrap();
            parse(&out).host().map(String::from)
        };
        assert_eq!(
            host(RequestBuilder::new("h", "/", key).port(80)).as_deref(),
            Some("h")
        );
        assert_eq!(
            host(RequestBuilder::new("h", "/", key).port(443)).as_deref(),
            Some("h:443")
        );
        assert_eq!(
            host(RequestBuilder::new("h", "/", key).secure(true).port(443)).as_deref(),
            Some("h")
        );
        assert_eq!(
            host(RequestBuilder::new("h", "/", key).secure(true).port(80)).as_deref(),
            Some("h:80")
        );
        assert_eq!(
            host(RequestBuilder::new("::1", "", key).port(9001)).as_deref(),
            Some("[::1]:9001")
        );
        let mut out = Vec::new();
        RequestBuilder::new("h", "", key).write(&mut out).unwrap();
        assert!(out.starts_with(b"GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn builder_refuses_clashes_and_crlf() {
        let key = Key::from_random([1; 16]);
        let base = || RequestBuilder::new("h", "/", key);
        let mut out = Vec::new();
        for (i, name) in [
            "host",
            "UPGRADE",
            "Connection",
            "sec-websocket-key",
            "Sec-WebSocket-Version",
        ]
        .into_iter()
        .enumerate()
        {
            let b = base().header("X-Ok", "1").header(name, "v");
            assert_eq!(
                b.write(&mut out),
                Err(BuildError::ReservedHeader {
                    index: 1,
                    name: REQUEST_RESERVED[i]
                })
            );
        }
        assert_eq!(
            base().header("X-Bad", "a\r\nInjected: 1").write(&mut out),
            Err(BuildError::InvalidHeader { index: 0 })
        );
        assert_eq!(
            base().header("X\nBad", "a").write(&mut out),
            Err(BuildError::InvalidHeader { index: 0 })
        );
        assert_eq!(
            base().header("", "a").write(&mut out),
            Err(BuildError::InvalidHeader { index: 0 })
        );
        let field = |field| Err(BuildError::InvalidField { field });
        assert_eq!(
            RequestBuilder::new("h\r\n", "/", key).write(&mut out),
            field("host")
        );
        assert_eq!(
            RequestBuilder::new("", "/", key).write(&mut out),
            field("host")
        );
        assert_eq!(
            RequestBuilder::new("h", "/a b", key).write(&mut out),
            field("path")
        );
        assert_eq!(
            RequestBuilder::new("h", "chat", key).write(&mut out),
            field("path")
        );
        assert_eq!(base().origin("x\ry").write(&mut out), field("origin"));
        assert_eq!(
            base().subprotocol("a b").write(&mut out),
            field("subprotocol")
        );
        assert_eq!(base().extensions("a;").write(&mut out), field("extensions"));
        assert_eq!(
            base().extensions("a\r\n").write(&mut out),
            field("extensions")
        );
        assert!(out.is_empty(), "nothing written on error");
    }

    #[test]
    fn every_rejection_with_its_status() {
        let cases: &[(&str, &str, UpgradeError, u16)] = &[
            ("GET /chat", "POST /chat", UpgradeError::MethodNotGet, 400),
            ("HTTP/1.1", "HTTP/1.0", UpgradeError::HttpVersion, 400),
            ("Host: server.example.com\r\n", "", UpgradeError::MissingHeader { name: HOST }, 400),
            (
                "Host: server.example.com\r\n",
                "Host: a\r\nHost: b\r\n",
                UpgradeError::DuplicateHeader { name: HOST },
                400,
            ),
            ("Upgrade: websocket\r\n", "", UpgradeError::MissingHeader { name: UPGRADE }, 400),
            ("Upgrade: websocket", "Upgrade: h2c", UpgradeError::UpgradeNotWebSocket, 400),
            ("Connection: Upgrade\r\n", "", UpgradeError::MissingHeader { name: CONNECTION }, 400),
            ("Connection: Upgrade", "Connection: close", UpgradeError::ConnectionNotUpgrade, 400),
            ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", UpgradeError::MissingHeader { name: KEY }, 400),
            (
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                UpgradeError::DuplicateHeader { name: KEY },
                400,
            ),
            ("dGhlIHNhbXBsZSBub25jZQ==", "abc", UpgradeError::InvalidKey, 400),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZSE=", UpgradeError::InvalidKey, 400),
            ("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", UpgradeError::UnsupportedVersion, 426),
            ("Sec-WebSocket-Version: 13\r\n", "", UpgradeError::MissingHeader { name: VERSION }, 400),
            (
                "Sec-WebSocket-Version: 13\r\n",
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n",
                UpgradeError::DuplicateHeader { name: VERSION },
                400,
            ),
            ("chat, superchat", "chat, super chat", UpgradeError::InvalidHeader { name: PROTOCOL }, 400),
            (
                "Origin",
                "Sec-WebSocket-Extensions: a;;\r\nOrigin",
                UpgradeError::InvalidHeader { name: EXTENSIONS },
                400,
            ),
        ];
        for (from, to, err, status) in cases {
            let req = variant(from, to);
            assert_eq!(req.validate(), Err(*err), "{from} -> {to}");
            assert_eq!(err.http_status(), *status);
            assert_eq!(req.problems(), [*err], "{from} -> {to}");
        }
    }

    /// A request that declares a body is refused with 400 (the body would be read as frames);
    /// `Content-Length: 0` declares none and passes.
    #[test]
    fn a_body_is_refused_with_400() {
        let head = "Sec-WebSocket-Version: 13\r\n";
        for (extra, name) in [
            ("Content-Length: 5\r\n", CONTENT_LENGTH),
            ("content-length: 00010\r\n", CONTENT_LENGTH),
            ("Content-Length: 0\r\nContent-Length: 3\r\n", CONTENT_LENGTH),
            ("Content-Length:\r\n", CONTENT_LENGTH),
            ("Transfer-Encoding: chunked\r\n", TRANSFER_ENCODING),
            (
                "Content-Length: 0\r\nTransfer-Encoding: gzip\r\n",
                TRANSFER_ENCODING,
            ),
        ] {
            let req = variant(head, &format!("{head}{extra}"));
            let err = UpgradeError::RequestBody { name };
            assert_eq!(req.validate(), Err(err), "{extra:?}");
            assert_eq!(req.problems(), [err], "{extra:?}");
            assert_eq!(err.http_status(), 400);
            assert_eq!(err.header(), Some(name));
        }
        for extra in ["Content-Length: 0\r\n", "Content-Length: 000\r\n"] {
            let req = variant(head, &format!("{head}{extra}"));
            assert_eq!(req.validate(), Ok(()), "{extra:?}");
        }
    }

    #[test]
    fn case_insensitive_tokens_and_names() {
        let req = variant("Upgrade: websocket", "upgrade: WebSocket");
        assert_eq!(req.validate(), Ok(()));
        let req = variant("Connection: Upgrade", "CONNECTION: keep-alive, upgrade");
        assert_eq!(req.validate(), Ok(()));
        let req = variant(
            "Connection: Upgrade",
            "Connection: keep-alive\r\nConnection: Upgrade",
        );
        assert_eq!(req.validate(), Ok(()));
        let req = variant("Sec-WebSocket-Key", "SEC-WEBSOCKET-KEY");
        assert_eq!(req.key(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        // Several problems at once, all reported in order.
        let req = variant("GET", "PUT").headers().raw().to_vec();
        let text = core::str::from_utf8(&req)
            .unwrap()
            .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 7");
        assert_eq!(
            parse(text.as_bytes()).problems(),
            [UpgradeError::MethodNotGet, UpgradeError::UnsupportedVersion]
        );
    }

    #[test]
    fn parse_incomplete_leftover_and_limits() {
        let limits = Limits::default();
        assert_eq!(
            Request::parse(&RFC_REQUEST[..20], &limits).unwrap(),
            Progress::NeedMore
        );
        let mut with_frame = RFC_REQUEST.to_vec();
        with_frame.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
        match Request::parse(&with_frame, &limits).unwrap() {
            Progress::Done { head, leftover } => {
                assert_eq!(head.raw(), RFC_REQUEST);
                assert_eq!(leftover, [0x81, 0x80, 1, 2, 3, 4]);
            }
            Progress::NeedMore => panic!(),
        }
        let small = Limits {
            max_head_len: 64,
            max_headers: 100,
        };
        assert_eq!(
            Request::parse(RFC_REQUEST, &small),
            Err(UpgradeError::HeadTooLarge { limit: 64 })
        );
        let few = Limits {
            max_head_len: 4096,
            max_headers: 3,
        };
        assert_eq!(
            Request::parse(RFC_REQUEST, &few),
            Err(UpgradeError::TooManyHeaders { limit: 3 })
        );
        assert_eq!(
            Request::parse(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", &limits),
            Err(UpgradeError::MalformedHttp {
                detail: "invalid header name"
            })
        );
        // Empty lines before the request line are skipped (RFC 9112 section 2.2).
        let mut lead = b"\r\n\r\n".to_vec();
        lead.extend_from_slice(RFC_REQUEST);
        match Request::parse(&lead, &limits).unwrap() {
            Progress::Done { head, leftover } => {
                assert_eq!(head.target(), "/chat");
                assert!(leftover.is_empty());
            }
            Progress::NeedMore => panic!(),
        }
        let _ = format!("{:?}", parse(RFC_REQUEST));
    }

    #[test]
    fn extension_accessors() {
        let req = variant(
            "Origin",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nSec-WebSocket-Extensions: x-foo\r\nOrigin",
        );
        assert_eq!(
            req.extension_elements().collect::<Vec<_>>(),
            ["permessage-deflate; client_max_window_bits", "x-foo"]
        );
        let exts = req.extensions().unwrap();
        assert_eq!(exts.len(), 2);
        assert_eq!(exts[0].params[0].name, "client_max_window_bits");
    }
}
