//! Handshake errors: what a peer got wrong in the HTTP upgrade ([`UpgradeError`], with the
//! HTTP status a server answers with) and what the caller got wrong when building a message
//! ([`BuildError`]).

use core::fmt;

use super::{ACCEPT, CONNECTION, EXTENSIONS, KEY, PROTOCOL, UPGRADE, VERSION, WEBSOCKET_VERSION};

/// A problem with an opening handshake message received from the peer (or seen on the wire).
///
/// Variants that concern one header carry its name in canonical spelling (see
/// [`UpgradeError::header`]). [`UpgradeError::http_status`] tells the status a server
/// answers a bad request with; the response builder turns the error into that response
/// ([`super::ResponseBuilder::reject`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UpgradeError {
    /// The bytes are not an HTTP/1.x head (400).
    MalformedHttp {
        /// What is wrong, in a few words (from the HTTP parser).
        detail: &'static str,
    },
    /// The head grew past the configured size limit before it ended (431).
    HeadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The head has more header fields than the configured limit (431).
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// The request method is not `GET` (400; RFC 6455 section 4.1).
    MethodNotGet,
    /// The message is HTTP/1.0; the upgrade needs HTTP/1.1 or later (400).
    HttpVersion,
    /// A required header is missing (400).
    MissingHeader {
        /// The header's name.
        name: &'static str,
    },
    /// A header that may appear only once appears more than once (400; RFC 6455 section 11.3).
    DuplicateHeader {
        /// The header's name.
        name: &'static str,
    },
    /// A header's value breaks its grammar (400): a subprotocol that is not a token, an
    /// extension list that does not parse, a list where one value is expected.
    InvalidHeader {
        /// The header's name.
        name: &'static str,
    },
    /// `Upgrade` does not contain the token `websocket` (400).
    UpgradeNotWebSocket,
    /// `Connection` does not contain the token `upgrade` (400).
    ConnectionNotUpgrade,
    /// `Sec-WebSocket-Key` is not the base64 encoding of exactly 16 bytes (400).
    InvalidKey,
    /// `Sec-WebSocket-Version` is not `13` (426 Upgrade Required, answered with
    /// `Sec-WebSocket-Version: 13`; RFC 6455 section 4.2.2).
    UnsupportedVersion,
    /// The request declares a body: `Content-Length` other than 0, or any
    /// `Transfer-Encoding` (400). An upgrade request has none (RFC 6455 section 4.1 sends a
    /// bare `GET`), and whatever follows the head is read as WebSocket frames, so a body
    /// would be decoded as frames. Python `websockets` refuses both too.
    RequestBody {
        /// The header that declares the body: `Content-Length` or `Transfer-Encoding`.
        name: &'static str,
    },
    /// The first byte is `0x16`, a TLS handshake record (RFC 8446 section 5.1): a TLS client
    /// (`wss://`, `https://`) on a plain port (400, though a TLS client cannot read an HTTP
    /// answer; servers close at once).
    TlsClientHello,
    /// The server answered with another status than `101` (client side). The status is in
    /// the variant; [`UpgradeError::http_status`] gives 502 like every response problem.
    UnexpectedStatus {
        /// The status received.
        status: u16,
    },
    /// `Sec-WebSocket-Accept` does not match the key that was sent (502).
    AcceptMismatch,
    /// The server chose a subprotocol the client did not offer (502).
    SubprotocolNotOffered,
    /// The server answered with an extension the client did not offer (502).
    ExtensionNotOffered,
    /// A `101` response with no request asking for an upgrade (seen by an observer) (502).
    UnsolicitedUpgrade,
    /// [`feed`](super::ServerHandshake::feed) was called after the handshake completed. API
    /// misuse, not the peer's fault (500).
    AlreadyComplete,
}

impl UpgradeError {
    /// The HTTP status a server answers with when it refuses a request for this reason:
    /// 400 Bad Request, 426 Upgrade Required (version), 431 Request Header Fields Too Large.
    ///
    /// Problems that can only be found in a *response* (client side, observers) give 502 Bad
    /// Gateway, what a proxy would answer for a bad upstream response; problems that both
    /// sides check (`Upgrade`, `Connection`, missing or repeated headers) give 400.
    pub const fn http_status(&self) -> u16 {
        match self {
            Self::HeadTooLarge { .. } | Self::TooManyHeaders { .. } => 431,
            Self::UnsupportedVersion => 426,
            Self::UnexpectedStatus { .. }
            | Self::AcceptMismatch
            | Self::SubprotocolNotOffered
            | Self::ExtensionNotOffered
            | Self::UnsolicitedUpgrade => 502,
            Self::AlreadyComplete => 500,
            _ => 400,
        }
    }

    /// The header at fault, in canonical spelling, when there is one.
    pub const fn header(&self) -> Option<&'static str> {
        match self {
            Self::MissingHeader { name }
            | Self::DuplicateHeader { name }
            | Self::InvalidHeader { name }
            | Self::RequestBody { name } => Some(name),
            Self::UpgradeNotWebSocket => Some(UPGRADE),
            Self::ConnectionNotUpgrade => Some(CONNECTION),
            Self::InvalidKey => Some(KEY),
            Self::UnsupportedVersion => Some(VERSION),
            Self::AcceptMismatch => Some(ACCEPT),
            Self::SubprotocolNotOffered => Some(PROTOCOL),
            Self::ExtensionNotOffered => Some(EXTENSIONS),
            _ => None,
        }
    }

    /// A stable snake_case name for logs, e.g. `"missing_header"`, `"accept_mismatch"`.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::MalformedHttp { .. } => "malformed_http",
            Self::HeadTooLarge { .. } => "head_too_large",
            Self::TooManyHeaders { .. } => "too_many_headers",
            Self::MethodNotGet => "method_not_get",
            Self::HttpVersion => "http_version",
            Self::MissingHeader { .. } => "missing_header",
            Self::DuplicateHeader { .. } => "duplicate_header",
            Self::InvalidHeader { .. } => "invalid_header",
            Self::UpgradeNotWebSocket => "upgrade_not_websocket",
            Self::ConnectionNotUpgrade => "connection_not_upgrade",
            Self::InvalidKey => "invalid_key",
            Self::UnsupportedVersion => "unsupported_version",
            Self::RequestBody { .. } => "request_body",
            Self::TlsClientHello => "tls_client_hello",
            Self::UnexpectedStatus { .. } => "unexpected_status",
            Self::AcceptMismatch => "accept_mismatch",
            Self::SubprotocolNotOffered => "subprotocol_not_offered",
            Self::ExtensionNotOffered => "extension_not_offered",
            Self::UnsolicitedUpgrade => "unsolicited_upgrade",
            Self::AlreadyComplete => "already_complete",
        }
    }
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedHttp { detail } => write!(f, "malformed HTTP head: {detail}"),
            Self::HeadTooLarge { limit } => {
                write!(f, "HTTP head longer than the limit of {limit} bytes")
            }
            Self::TooManyHeaders { limit } => {
                write!(f, "more than {limit} header fields")
            }
            Self::MethodNotGet => f.write_str("request method is not GET"),
            Self::HttpVersion => f.write_str("HTTP/1.1 or later is required"),
            Self::MissingHeader { name } => write!(f, "missing {name} header"),
            Self::DuplicateHeader { name } => write!(f, "{name} header appears more than once"),
            Self::InvalidHeader { name } => write!(f, "invalid {name} header"),
            Self::UpgradeNotWebSocket => {
                write!(f, "{UPGRADE} header does not contain \"websocket\"")
            }
            Self::ConnectionNotUpgrade => {
                write!(f, "{CONNECTION} header does not contain \"upgrade\"")
            }
            Self::InvalidKey => write!(f, "{KEY} is not the base64 encoding of 16 bytes"),
            Self::UnsupportedVersion => {
                write!(f, "{VERSION} is not {WEBSOCKET_VERSION}")
            }
            Self::RequestBody { name } => {
                write!(f, "the upgrade request declares a body ({name})")
            }
            Self::TlsClientHello => {
                f.write_str("a TLS ClientHello arrived on a plain (not TLS) port")
            }
            Self::UnexpectedStatus { status } => {
                write!(f, "server answered with status {status}, not 101")
            }
            Self::AcceptMismatch => write!(f, "{ACCEPT} does not match the key sent"),
            Self::SubprotocolNotOffered => {
                f.write_str("server chose a subprotocol the client did not offer")
            }
            Self::ExtensionNotOffered => {
                f.write_str("server accepted an extension the client did not offer")
            }
            Self::UnsolicitedUpgrade => f.write_str("101 response with no upgrade request"),
            Self::AlreadyComplete => f.write_str("the handshake is already complete"),
        }
    }
}

impl core::error::Error for UpgradeError {}

/// A message the caller asked to build cannot be written as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BuildError {
    /// An extra header clashes with one the builder writes itself (or sets through a dedicated
    /// method).
    ReservedHeader {
        /// Position of the extra header, in the order added.
        index: usize,
        /// The implicit header it clashes with, in canonical spelling.
        name: &'static str,
    },
    /// An extra header's name is not an HTTP token, or its value holds CR, LF, NUL or another
    /// control character.
    InvalidHeader {
        /// Position of the extra header, in the order added.
        index: usize,
    },
    /// A dedicated field (host, path, origin, subprotocol, extensions, status, reason) is empty
    /// or holds characters it may not hold.
    InvalidField {
        /// Which field: `"host"`, `"path"`, `"origin"`, `"subprotocol"`, `"extensions"`,
        /// `"status"`, `"reason"`.
        field: &'static str,
    },
    /// The subprotocol chosen for a `101` is not one the client offered.
    SubprotocolNotOffered,
    /// The request being accepted has no valid `Sec-WebSocket-Key`.
    MissingKey,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReservedHeader { index, name } => {
                write!(
                    f,
                    "extra header #{index} clashes with {name}, which is set by the builder"
                )
            }
            Self::InvalidHeader { index } => {
                write!(f, "extra header #{index} has an invalid name or value")
            }
            Self::InvalidField { field } => write!(f, "invalid {field}"),
            Self::SubprotocolNotOffered => {
                f.write_str("the chosen subprotocol was not offered by the client")
            }
            Self::MissingKey => f.write_str("the request has no valid Sec-WebSocket-Key"),
        }
    }
}

impl core::error::Error for BuildError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::HOST;
    use alloc::string::ToString;

    #[test]
    fn statuses_and_headers() {
        assert_eq!(UpgradeError::UnsupportedVersion.http_status(), 426);
        assert_eq!(UpgradeError::HeadTooLarge { limit: 1 }.http_status(), 431);
        assert_eq!(UpgradeError::TooManyHeaders { limit: 1 }.http_status(), 431);
        assert_eq!(UpgradeError::InvalidKey.http_status(), 400);
        assert_eq!(UpgradeError::MethodNotGet.http_status(), 400);
        assert_eq!(UpgradeError::AcceptMismatch.http_status(), 502);
        assert_eq!(
            UpgradeError::UnexpectedStatus { status: 403 }.http_status(),
            502
        );
        assert_eq!(UpgradeError::InvalidKey.header(), Some(KEY));
        assert_eq!(
            UpgradeError::DuplicateHeader { name: HOST }.header(),
            Some("Host")
        );
        assert_eq!(UpgradeError::MethodNotGet.header(), None);
        let body = UpgradeError::RequestBody {
            name: "Content-Length",
        };
        assert_eq!(body.http_status(), 400);
        assert_eq!(body.header(), Some("Content-Length"));
        assert_eq!(body.name(), "request_body");
        assert_eq!(UpgradeError::TlsClientHello.http_status(), 400);
        assert_eq!(
            UpgradeError::MissingHeader { name: KEY }.to_string(),
            "missing Sec-WebSocket-Key header"
        );
    }
}
