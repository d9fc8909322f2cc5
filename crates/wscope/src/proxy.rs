//! HTTP CONNECT proxies for the client (RFC 9110 section 9.3.6), with optional basic auth.
//!
//! ```
//! use wscope::proxy::Proxy;
//!
//! let p = Proxy::parse("http://user:secret@proxy.example:3128").unwrap();
//! assert_eq!((p.host.as_str(), p.port), ("proxy.example", 3128));
//! assert!(p.request("example.com", 443).starts_with("CONNECT example.com:443 HTTP/1.1\r\n"));
//! ```

use base64::Engine as _;

use crate::error::{HandshakeError, Result};
use crate::url::UrlError;

/// Largest proxy response head accepted.
const MAX_RESPONSE: usize = 8 * 1024;

/// An HTTP proxy that tunnels with CONNECT.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Proxy {
    /// Proxy host name or IP.
    pub host: String,
    /// Proxy port.
    pub port: u16,
    /// User name and password for `Proxy-Authorization: Basic`.
    pub auth: Option<(String, String)>,
}

impl core::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("auth", &self.auth.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl Proxy {
    /// A proxy at `host:port` without authentication.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            auth: None,
        }
    }

    /// Adds basic authentication.
    pub fn with_basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some((user.into(), password.into()));
        self
    }

    /// Parses `http://[user:password@]host[:port]` (port 8080 by default).
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let rest = rest.trim_end_matches('/');
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((a, h)) => {
                let (u, p) = a.split_once(':').unwrap_or((a, ""));
                (Some((u.to_owned(), p.to_owned())), h)
            }
            None => (None, rest),
        };
        if hostport.contains(['/', '?', '#']) || hostport.bytes().any(|b| b <= b' ') {
            return Err(UrlError::InvalidCharacter);
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') => (
                h,
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or(UrlError::Port)?,
            ),
            _ => (hostport, 8080),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(UrlError::NoHost);
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            auth,
        })
    }

    /// The CONNECT request for `host:port`.
    pub fn request(&self, host: &str, port: u16) -> String {
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some((u, p)) = &self.auth {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            req.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
        }
        req.push_str("\r\n");
        req
    }
}

/// Looks for the end of the proxy's response head in `buf`: `Some(len)` when complete.
fn head_len(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Checks a complete response head: a 2xx status opens the tunnel.
fn check_response(head: &[u8]) -> Result<()> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => match resp.code {
            Some(code) if (200..300).contains(&code) => Ok(()),
            Some(code) => Err(HandshakeError::Proxy { status: code }.into()),
            None => Err(HandshakeError::Proxy { status: 0 }.into()),
        },
        _ => Err(HandshakeError::Proxy { status: 0 }.into()),
    }
}

/// Opens the tunnel over a blocking TCP stream. Reads only the response head (with `peek`),
/// so no byte of the tunnel is lost.
#[cfg(feature = "blocking")]
pub(crate) fn connect_blocking(
    tcp: &mut std::net::TcpStream,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<()> {
    use std::io::{Read, Write};
    tcp.write_all(proxy.request(host, port).as_bytes())?;
    let mut buf = vec![0u8; MAX_RESPONSE];
    loop {
        let n = tcp.peek(&mut buf)?;
        if n == 0 {
            return Err(HandshakeError::Eof.into());
        }
        if let Some(len) = head_len(&buf[..n]) {
            tcp.read_exact(&mut buf[..len])?;
            return check_response(&buf[..len]);
        }
        if n == buf.len() {
            return Err(HandshakeError::Proxy { status: 431 }.into());
        }
        // Not complete yet: wait for more (peek returns at once while data is there).
        std::thread::sleep(core::time::Duration::from_millis(5));
    }
}

/// Opens the tunnel over a tokio TCP stream (see [`connect_blocking`]).
#[cfg(feature = "tokio")]
pub(crate) async fn connect_async(
    tcp: &mut tokio::net::TcpStream,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(proxy.request(host, port).as_bytes()).await?;
    let mut buf = vec![0u8; MAX_RESPONSE];
    loop {
        let n = tcp.peek(&mut buf).await?;
        if n == 0 {
            return Err(HandshakeError::Eof.into());
        }
        if let Some(len) = head_len(&buf[..n]) {
            tcp.read_exact(&mut buf[..len]).await?;
            return check_response(&buf[..len]);
        }
        if n == buf.len() {
            return Err(HandshakeError::Proxy { status: 431 }.into());
        }
        tokio::time::sleep(core::time::Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_request() {
        let p = Proxy::parse("http://u:p@h:1").unwrap();
        assert_eq!(p.auth, Some(("u".into(), "p".into())));
        assert!(p.request("::1", 9).contains(
            "CONNECT [::1]:9 HTTP/1.1\r\nHost: [::1]:9\r\nProxy-Authorization: Basic dTpw\r\n\r\n"
        ));
        assert_eq!(Proxy::parse("h").unwrap().port, 8080);
        assert!(check_response(b"HTTP/1.1 200 Connection established\r\n\r\n").is_ok());
        assert!(matches!(
            check_response(b"HTTP/1.1 407 Auth\r\n\r\n"),
            Err(crate::Error::Handshake(HandshakeError::Proxy {
                status: 407
            }))
        ));
    }
}
