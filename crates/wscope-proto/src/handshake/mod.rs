//! The opening handshake: the HTTP/1.1 upgrade of RFC 6455 sections 1.3, 4.1, 4.2, 4.4 and 11.3,
//! for both sides, sans-IO.
//!
//! - [`Key`] and [`AcceptKey`]: `Sec-WebSocket-Key` from 16 caller-supplied random bytes (the
//!   core has no random source) and the matching `Sec-WebSocket-Accept`.
//! - Client: [`RequestBuilder`] writes the request; [`ClientHandshake`] reads the response a
//!   piece at a time and checks it (status 101, `Upgrade`, `Connection`, the accept value, a
//!   subprotocol and extensions only if offered).
//! - Server: [`ServerHandshake`] reads the request a piece at a time, checks it and hands out a
//!   [`Request`] for the application to look at; [`ResponseBuilder`] writes the `101` (with the
//!   chosen subprotocol and extensions) or a refusal (400, 403, 426, 431, any status).
//! - [`Request`] and [`Response`] parse a whole head on their own too (observers use them,
//!   never enforcing: [`Request::problems`], [`Response::problems_for`]).
//! - [`list_elements`], [`has_token`], [`parse_extensions`]: the header grammars.
//! - [`ExtendedConnect`], [`check_response`]: the same handshake over HTTP/2 (RFC 8441
//!   extended CONNECT), reusing the offers' checks and the server's negotiation.
//!
//! Both state machines take bytes in any split (one byte at a time works) and stop exactly at
//! the end of the head: bytes after it in the same read are handed back as `leftover`, since
//! they already belong to the WebSocket stream. The head is held up to [`Limits::max_head_len`]
//! bytes; a peer that never ends its head gets [`UpgradeError::HeadTooLarge`] (431) at the
//! limit, never unbounded memory.
//!
//! The RFC 6455 section 1.3 handshake, both sides:
//!
//! ```
//! use wscope_proto::handshake::{
//!     ClientHandshake, Key, Progress, RequestBuilder, ResponseBuilder, ServerHandshake,
//! };
//!
//! // Client: the RFC's nonce stands in for 16 random bytes.
//! let key = Key::from_random(*b"the sample nonce");
//! assert_eq!(key.as_str(), "dGhlIHNhbXBsZSBub25jZQ==");
//! let request = RequestBuilder::new("server.example.com", "/chat", key)
//!     .origin("http://example.com")
//!     .subprotocol("chat")
//!     .subprotocol("superchat");
//! let mut to_server = Vec::new();
//! let mut client = ClientHandshake::new(&request, &mut to_server).unwrap();
//!
//! // Server: reads the request, picks a subprotocol, answers.
//! let mut server = ServerHandshake::default();
//! let Progress::Done { head: req, leftover } = server.feed(&to_server).unwrap() else { panic!() };
//! assert!(leftover.is_empty());
//! assert_eq!(req.subprotocols().collect::<Vec<_>>(), ["chat", "superchat"]);
//! let mut to_client = Vec::new();
//! ResponseBuilder::accept(&req).subprotocol("chat").write(&mut to_client).unwrap();
//! assert!(to_client.ends_with(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"));
//!
//! // Client: a ping frame arrived in the same read as the 101; it comes back as leftover.
//! to_client.extend_from_slice(&[0x89, 0x00]);
//! let Progress::Done { head: resp, leftover } = client.feed(&to_client).unwrap() else { panic!() };
//! assert_eq!(resp.subprotocol(), Some("chat"));
//! assert_eq!(leftover, [0x89, 0x00]);
//! ```

use core::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// The parser and the accessors a head has whatever its first line: [`Request`] and [`Response`] both
/// hold `headers: Headers` and `minor_version: u8`.
macro_rules! head_accessors {
    ($head:ty) => {
        impl $head {
            /// Parses a head from the front of `bytes` (HTTP syntax only): `NeedMore` when the
            /// head has not ended yet, `Done` with the bytes that follow it otherwise.
            ///
            /// # Errors
            ///
            /// Malformed HTTP or a head over the [`Limits`](super::Limits), with the status to
            /// answer (400 or 431).
            pub fn parse<'b>(
                bytes: &'b [u8],
                limits: &super::Limits,
            ) -> Result<super::Progress<'b, Self>, super::UpgradeError> {
                super::header::parse_progress(bytes, limits, Self::from_head)
            }

            /// The minor HTTP version: `1` for HTTP/1.1, `0` for HTTP/1.0.
            pub const fn minor_version(&self) -> u8 {
                self.minor_version
            }

            /// All header fields.
            pub const fn headers(&self) -> &Headers {
                &self.headers
            }

            /// The whole head as received.
            pub fn raw(&self) -> &[u8] {
                self.headers.raw()
            }
        }
    };
}
pub(crate) use head_accessors;

mod client;
mod error;
mod extended_connect;
pub(crate) mod header;
mod request;
mod response;
mod server;

pub use client::ClientHandshake;
pub use error::{BuildError, UpgradeError};
pub use extended_connect::{
    check_response, ConnectError, ExtendedConnect, PseudoHeaders, PSEUDO_AUTHORITY, PSEUDO_METHOD,
    PSEUDO_PATH, PSEUDO_PROTOCOL, PSEUDO_SCHEME, WEBSOCKET_PROTOCOL,
};
pub use header::{
    has_token, is_tchar, is_token, is_valid_value, list_elements, parse_extensions, Extension,
    ExtensionParam, ExtensionSyntaxError, Header, Headers, ListElements,
};
pub use request::{Request, RequestBuilder};
pub use response::{reason_phrase, Response, ResponseBuilder};
pub use server::ServerHandshake;

/// The GUID RFC 6455 appends to the key before hashing (section 1.3).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The only protocol version RFC 6455 defines.
pub const WEBSOCKET_VERSION: &str = "13";

/// `Host`.
pub const HOST: &str = "Host";
/// `Upgrade`.
pub const UPGRADE: &str = "Upgrade";
/// `Connection`.
pub const CONNECTION: &str = "Connection";
/// `Origin`.
pub const ORIGIN: &str = "Origin";
/// `User-Agent`.
pub const USER_AGENT: &str = "User-Agent";
/// `Sec-WebSocket-Key`.
pub const KEY: &str = "Sec-WebSocket-Key";
/// `Sec-WebSocket-Accept`.
pub const ACCEPT: &str = "Sec-WebSocket-Accept";
/// `Sec-WebSocket-Version`.
pub const VERSION: &str = "Sec-WebSocket-Version";
/// `Sec-WebSocket-Protocol`.
pub const PROTOCOL: &str = "Sec-WebSocket-Protocol";
/// `Sec-WebSocket-Extensions`.
pub const EXTENSIONS: &str = "Sec-WebSocket-Extensions";

/// The permessage-deflate extension token (RFC 7692 section 7), in `Sec-WebSocket-Extensions`;
/// also `deflate::EXTENSION_NAME` with feature `deflate`.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";
/// `Content-Length`.
pub const CONTENT_LENGTH: &str = "Content-Length";
/// `Transfer-Encoding`.
pub const TRANSFER_ENCODING: &str = "Transfer-Encoding";

/// A `Sec-WebSocket-Key`: the base64 encoding of 16 random bytes (24 ASCII characters).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; 24]);

impl Key {
    /// The key for 16 bytes from the caller's random source (RFC 6455 section 4.1 asks for a
    /// fresh, unpredictable value per connection).
    pub fn from_random(random: [u8; 16]) -> Self {
        let mut out = [b'A'; 24];
        // 16 bytes always encode to exactly 24 characters.
        let _ = STANDARD.encode_slice(random, &mut out);
        Self(out)
    }

    /// The key as sent on the wire.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The `Sec-WebSocket-Accept` value a server answers this key with.
    pub fn accept(&self) -> AcceptKey {
        AcceptKey::for_key(&self.0)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.as_str())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Same as [`Key::from_random`].
pub fn generate_key(random: [u8; 16]) -> Key {
    Key::from_random(random)
}

/// Whether `key` (as received, surrounding whitespace ignored) is the base64 encoding of
/// exactly 16 bytes, as RFC 6455 section 4.2.1 requires.
pub fn is_valid_key(key: &[u8]) -> bool {
    let key = key.trim_ascii();
    let mut out = [0u8; 18];
    key.len() == 24 && STANDARD.decode_slice(key, &mut out) == Ok(16)
}

/// A `Sec-WebSocket-Accept` value: base64(SHA-1(key + [`GUID`])), 28 ASCII characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AcceptKey([u8; 28]);

impl AcceptKey {
    /// The accept value for `key` as it was sent (surrounding whitespace ignored). Computed for
    /// any bytes: whether the key is well formed is [`is_valid_key`]'s question.
    pub fn for_key(key: &[u8]) -> Self {
        let mut sha = sha1_smol::Sha1::new();
        sha.update(key.trim_ascii());
        sha.update(GUID.as_bytes());
        let mut out = [b'='; 28];
        // 20 bytes always encode to exactly 28 characters.
        let _ = STANDARD.encode_slice(sha.digest().bytes(), &mut out);
        Self(out)
    }

    /// The value as sent on the wire.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The 28 ASCII bytes.
    pub const fn into_bytes(self) -> [u8; 28] {
        self.0
    }

    /// Whether a received `Sec-WebSocket-Accept` value equals this one (exact comparison,
    /// surrounding whitespace ignored).
    pub fn matches(&self, received: &[u8]) -> bool {
        received.trim_ascii() == self.0
    }
}

impl fmt::Debug for AcceptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AcceptKey({})", self.as_str())
    }
}

impl fmt::Display for AcceptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `Sec-WebSocket-Accept` value for `key` (same as [`AcceptKey::for_key`]).
///
/// ```
/// use wscope_proto::handshake::accept_key;
/// assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ==").as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> AcceptKey {
    AcceptKey::for_key(key)
}

/// Size limits for a received head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The longest head, in bytes, start line and final empty line included (431 beyond).
    pub max_head_len: usize,
    /// The most header fields (431 beyond).
    pub max_headers: usize,
}

/// Builder methods, one per field and of the same name: start from `Limits::default()` (or a
/// constructor) and chain them; the struct is `#[non_exhaustive]`, so fields may be added without
/// breaking callers.
impl Limits {
    /// Sets [`Limits::max_head_len`]: the longest head, in bytes, start line and final empty line
    /// included (431 beyond).
    #[must_use]
    pub const fn max_head_len(mut self, max_head_len: usize) -> Self {
        self.max_head_len = max_head_len;
        self
    }

    /// Sets [`Limits::max_headers`]: the most header fields (431 beyond).
    #[must_use]
    pub const fn max_headers(mut self, max_headers: usize) -> Self {
        self.max_headers = max_headers;
        self
    }
}

impl Default for Limits {
    /// 16 KiB and 100 fields.
    fn default() -> Self {
        Self {
            max_head_len: 16 * 1024,
            max_headers: 100,
        }
    }
}

/// What feeding bytes to a handshake state machine gave.
#[derive(Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "closed: a head is complete or needs more bytes"
)]
pub enum Progress<'b, T> {
    /// The head has not ended; all the bytes were taken. Feed more.
    NeedMore,
    /// The head is complete (and valid).
    Done {
        /// The parsed head: a [`Request`] on the server, a [`Response`] on the client.
        head: T,
        /// The bytes of the last read that follow the head: the start of the WebSocket stream
        /// (or of whatever follows a refused handshake). Never lost, never copied.
        leftover: &'b [u8],
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_key_and_accept() {
        let key = Key::from_random(*b"the sample nonce");
        assert_eq!(key.as_str(), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(key.accept().as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(
            accept_key(b" dGhlIHNhbXBsZSBub25jZQ== ").as_str(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert!(key.accept().matches(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(!key.accept().matches(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=-wrong"));
        assert_eq!(generate_key([0; 16]).as_str(), "AAAAAAAAAAAAAAAAAAAAAA==");
    }

    #[test]
    fn key_validity() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(is_valid_key(b" dGhlIHNhbXBsZSBub25jZQ==\t"));
        assert!(!is_valid_key(b"abc"));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ")); // no padding
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ==dGhl")); // 19 bytes
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZR==")); // non-zero trailing bits
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25j====")); // 14 bytes
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ!="));
    }
}
