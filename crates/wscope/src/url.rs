//! `ws://` and `wss://` URLs (RFC 6455 section 3): scheme, host, port, resource name.
//!
//! ```
//! use wscope::url::WsUrl;
//!
//! let u = WsUrl::parse("wss://example.com/chat?room=1").unwrap();
//! assert!(u.secure);
//! assert_eq!((u.host.as_str(), u.port, u.resource.as_str()), ("example.com", 443, "/chat?room=1"));
//! assert_eq!(u.host_header(), "example.com");
//! ```

use core::fmt;

/// A parsed WebSocket URL.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsUrl {
    /// `wss` (TLS) rather than `ws`.
    pub secure: bool,
    /// Host name or IP address, without IPv6 brackets.
    pub host: String,
    /// Port (80 / 443 when the URL gives none).
    pub port: u16,
    /// Path and query (`/` when empty): the request target.
    pub resource: String,
}

/// Why a URL cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// Not `ws://` or `wss://` (`http`/`https` are accepted as aliases).
    Scheme,
    /// No host.
    NoHost,
    /// The port is not a number from 1 to 65535.
    Port,
    /// A fragment (`#...`), which WebSocket URLs may not have.
    Fragment,
    /// Characters that cannot appear in a request line (spaces, control characters).
    InvalidCharacter,
    /// User information (`user@host`) is not supported in WebSocket URLs.
    UserInfo,
    /// A `wss://` URL (or `ClientConfig::secure`) in a build without TLS: wscope's `rustls`
    /// feature is off.
    TlsDisabled,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Scheme => "scheme must be ws:// or wss://",
            Self::NoHost => "no host",
            Self::Port => "invalid port",
            Self::Fragment => "WebSocket URLs cannot have a fragment",
            Self::InvalidCharacter => "invalid character",
            Self::UserInfo => "user information in the URL is not supported",
            Self::TlsDisabled => {
                "wss:// needs TLS, and this build of wscope has none (enable its `rustls` feature)"
            }
        })
    }
}

impl core::error::Error for UrlError {}

impl WsUrl {
    /// Parses `ws://host[:port][/path][?query]` or `wss://…`; IPv6 hosts go in brackets.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UrlError::InvalidCharacter);
        }
        let (scheme, rest) = url.split_once("://").ok_or(UrlError::Scheme)?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "ws" | "http" => false,
            "wss" | "https" => true,
            _ => return Err(UrlError::Scheme),
        };
        if rest.contains('#') {
            return Err(UrlError::Fragment);
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(UrlError::NoHost)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or(UrlError::Port)?),
            };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(UrlError::NoHost);
        }
        let port = match port {
            None => default_port(secure),
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(UrlError::Port),
            },
        };
        let resource = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Self {
            secure,
            host: host.to_owned(),
            port,
            resource,
        })
    }

    /// The `Host` header value: the host (IPv6 in brackets) plus `:port` when it is not the
    /// scheme's default (RFC 6455 section 4.1).
    pub fn host_header(&self) -> String {
        host_header(&self.host, self.port, self.secure)
    }
}

/// 443 for TLS, 80 otherwise.
pub const fn default_port(secure: bool) -> u16 {
    if secure {
        443
    } else {
        80
    }
}

/// The `Host` header value for `host` and `port`.
pub(crate) fn host_header(host: &str, port: u16, secure: bool) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    if port == default_port(secure) {
        host
    } else {
        format!("{host}:{port}")
    }
}

impl core::str::FromStr for WsUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, UrlError> {
        Self::parse(s)
    }
}

impl fmt::Display for WsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "wss" } else { "ws" };
        write!(f, "{scheme}://{}{}", self.host_header(), self.resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let u = WsUrl::parse("ws://127.0.0.1:9001").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.resource.as_str()),
            ("127.0.0.1", 9001, "/")
        );
        let u = WsUrl::parse("ws://[::1]:8080/a?b").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.resource.as_str()),
            ("::1", 8080, "/a?b")
        );
        assert_eq!(u.host_header(), "[::1]:8080");
        let u = WsUrl::parse("ws://h?x=1").unwrap();
        assert_eq!(u.resource, "/?x=1");
        assert_eq!(WsUrl::parse("ftp://h"), Err(UrlError::Scheme));
        assert_eq!(WsUrl::parse("ws://h:0/"), Err(UrlError::Port));
        assert_eq!(WsUrl::parse("ws://h:99999/"), Err(UrlError::Port));
        assert_eq!(WsUrl::parse("ws:///x"), Err(UrlError::NoHost));
        assert_eq!(WsUrl::parse("ws://h/#f"), Err(UrlError::Fragment));
        assert_eq!(WsUrl::parse("ws://h/a b"), Err(UrlError::InvalidCharacter));
        assert_eq!(WsUrl::parse("wss://h").unwrap().to_string(), "wss://h/");
    }
}
