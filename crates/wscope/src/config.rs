//! Client and server settings.

use core::time::Duration;
#[cfg(feature = "rustls")]
#[cfg(feature = "rustls")]
use std::sync::Arc;

pub use wscope_proto::connection::Config as WsConfig;
#[cfg(feature = "deflate")]
pub use wscope_proto::connection::DeflateOptions;
#[cfg(feature = "deflate")]
pub use wscope_proto::deflate::{DeflateConfig, DEFAULT_MEM_LEVEL};
pub use wscope_proto::keepalive::Keepalive;

use crate::error::Result;
use crate::proxy::Proxy;
#[cfg(feature = "rustls")]
use crate::tls::TlsConfig;
use crate::url::{default_port, WsUrl};

/// How a client connects: mirrors `websock_config_t` of the embedded-SDK-style API (host name
/// or IP, port, URI, secure flag, TLS settings, TCP connect timeout, extra handshake headers)
/// plus subprotocols, origin, proxy and the connection limits.
///
/// ```
/// use core::time::Duration;
/// use wscope::config::ClientConfig;
///
/// let cfg = ClientConfig::new("192.0.2.7", 8080)
///     .path("/mqtt")
///     .header("X-Device", "t2")
///     .subprotocol("mqtt")
///     .connect_timeout(Duration::from_secs(5));
/// assert_eq!(cfg.url().to_string(), "ws://192.0.2.7:8080/mqtt");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Host name or IP address of the server.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Request target: path and query (`/` by default).
    pub path: String,
    /// Use TLS (`wss`).
    pub secure: bool,
    /// TLS settings (used when `secure`). Feature `rustls`.
    #[cfg(feature = "rustls")]
    pub tls: TlsConfig,
    /// Bound on the TCP connect (per address tried), and on the TLS handshake.
    pub connect_timeout: Option<Duration>,
    /// Bound on the opening handshake (request sent → response read).
    pub handshake_timeout: Duration,
    /// Bound on the whole opening, on top of the two above: name resolution, TCP connect
    /// (all addresses together), proxy, TLS handshake and HTTP upgrade; `None` (the
    /// default): each phase only has its own bound.
    pub open_timeout: Option<Duration>,
    /// Extra request headers (name, value); ones the client sets itself are refused.
    pub headers: Vec<(String, String)>,
    /// Subprotocols to offer, in order of preference.
    pub subprotocols: Vec<String>,
    /// `Origin` header.
    pub origin: Option<String>,
    /// Tunnel through this HTTP proxy.
    pub proxy: Option<Proxy>,
    /// Limits and behaviour of the connection (max frame/message size, close timeout,
    /// keepalive pings: `ws.keepalive`).
    pub ws: WsConfig,
    /// Close with 1001 when nothing arrives for this long (when set, in place of
    /// `ws.idle_timeout`, the core's own setting).
    pub idle_timeout: Option<Duration>,
    /// Blocking driver: give up (`Error::Timeout`) on a write the peer does not read for
    /// this long.
    pub write_timeout: Option<Duration>,
    /// Disable Nagle's algorithm (on by default: frames are written whole).
    pub nodelay: bool,
    /// Offer permessage-deflate (RFC 7692) with these wishes; `None`: no compression.
    /// Feature `deflate`.
    #[cfg(feature = "deflate")]
    pub deflate: Option<DeflateConfig>,
    /// Compression level, size threshold and memLevel once deflate is agreed. Feature
    /// `deflate`.
    #[cfg(feature = "deflate")]
    pub deflate_options: DeflateOptions,
}

impl ClientConfig {
    /// Plain `ws://host:port/`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            path: "/".to_owned(),
            secure: false,
            #[cfg(feature = "rustls")]
            tls: TlsConfig::default(),
            connect_timeout: Some(Duration::from_secs(30)),
            handshake_timeout: Duration::from_secs(30),
            open_timeout: None,
            headers: Vec::new(),
            subprotocols: Vec::new(),
            origin: None,
            proxy: None,
            ws: WsConfig::default(),
            idle_timeout: None,
            write_timeout: None,
            nodelay: true,
            #[cfg(feature = "deflate")]
            deflate: None,
            #[cfg(feature = "deflate")]
            deflate_options: DeflateOptions::default(),
        }
    }

    /// Offers permessage-deflate with these wishes (context takeover, window sizes). Feature
    /// `deflate`.
    #[cfg(feature = "deflate")]
    pub fn deflate(mut self, wishes: DeflateConfig) -> Self {
        self.deflate = Some(wishes);
        self
    }

    /// From a `ws://` or `wss://` URL.
    pub fn from_url(url: &str) -> Result<Self> {
        let u = WsUrl::parse(url)?;
        Ok(Self::new(u.host, u.port).secure(u.secure).path(u.resource))
    }

    /// The URL this configuration connects to.
    pub fn url(&self) -> WsUrl {
        WsUrl {
            secure: self.secure,
            host: self.host.clone(),
            port: self.port,
            resource: self.path.clone(),
        }
    }

    /// Sets the request target.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Turns TLS on or off (the port is kept; use [`default_port`] for 443).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// TLS settings (turns TLS on). Feature `rustls`.
    #[cfg(feature = "rustls")]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self.secure = true;
        self
    }

    /// TCP connect timeout.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = Some(t);
        self
    }

    /// Bounds the whole opening (resolution, connect, proxy, TLS, upgrade) by `t`.
    pub fn open_timeout(mut self, t: Duration) -> Self {
        self.open_timeout = Some(t);
        self
    }

    /// Blocking driver: a write that makes no progress for `t` fails (the field of the same
    /// name).
    pub fn write_timeout(mut self, t: Duration) -> Self {
        self.write_timeout = Some(t);
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Offers a subprotocol.
    pub fn subprotocol(mut self, p: impl Into<String>) -> Self {
        self.subprotocols.push(p.into());
        self
    }

    /// Sets `Origin`.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Connects through an HTTP CONNECT proxy.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// The default port for the scheme (80 or 443).
    pub const fn default_port(&self) -> u16 {
        default_port(self.secure)
    }

    /// The compression settings the session runs with (a placeholder without `deflate`).
    pub(crate) const fn session_deflate_options(&self) -> DeflateOptions {
        #[cfg(feature = "deflate")]
        return self.deflate_options;
        #[cfg(not(feature = "deflate"))]
        DeflateOptions { _none: () }
    }

    /// `Err(Error::Url(UrlError::TlsDisabled))` for a `wss://` configuration in a build
    /// without the `rustls` feature, so that the client fails before connecting, with the
    /// reason; `Ok` otherwise.
    pub(crate) fn check_tls_available(&self) -> Result<()> {
        if self.secure && cfg!(not(feature = "rustls")) {
            return Err(crate::url::UrlError::TlsDisabled.into());
        }
        Ok(())
    }
}

/// How a server accepts connections: [`ServerConfig::default`], then the builder methods
/// (one per field, of the same name).
///
/// ```
/// use core::time::Duration;
/// use wscope::ServerConfig;
///
/// let cfg = ServerConfig::default()
///     .handshake_timeout(Duration::from_secs(5))
///     .idle_timeout(Duration::from_secs(60));
/// # #[cfg(feature = "deflate")]
/// let cfg = cfg.deflate(wscope::DeflateConfig::default()); // feature `deflate`
/// assert_eq!(cfg.idle_timeout, Some(Duration::from_secs(60)));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Limits and behaviour of each connection (max frame/message size, close timeout,
    /// keepalive pings: `ws.keepalive`).
    pub ws: WsConfig,
    /// Largest request head in bytes (431 beyond).
    pub max_header_size: usize,
    /// Most header fields (431 beyond).
    pub max_headers: usize,
    /// Time allowed from accept to a complete request (TLS handshake included): a client
    /// that trickles its headers is cut off when it runs out.
    pub handshake_timeout: Duration,
    /// Close with 1001 when nothing arrives for this long (when set, in place of
    /// `ws.idle_timeout`, the core's own setting).
    pub idle_timeout: Option<Duration>,
    /// Blocking driver: give up (`Error::Timeout`) on a write the peer does not read for
    /// this long.
    pub write_timeout: Option<Duration>,
    /// Serve TLS with this configuration. Feature `rustls`.
    #[cfg(feature = "rustls")]
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Disable Nagle's algorithm on accepted sockets.
    pub nodelay: bool,
    /// Accept permessage-deflate (RFC 7692) offers with these settings; `None`: decline.
    /// Feature `deflate`.
    #[cfg(feature = "deflate")]
    pub deflate: Option<DeflateConfig>,
    /// Compression level, size threshold and memLevel once deflate is agreed. Feature
    /// `deflate`.
    #[cfg(feature = "deflate")]
    pub deflate_options: DeflateOptions,
}

impl ServerConfig {
    /// The connection's limits and behaviour (frame and message sizes, close timeout,
    /// keepalive pings).
    #[must_use]
    pub fn ws(mut self, ws: WsConfig) -> Self {
        self.ws = ws;
        self
    }

    /// The largest request head in bytes (431 beyond).
    #[must_use]
    pub fn max_header_size(mut self, bytes: usize) -> Self {
        self.max_header_size = bytes;
        self
    }

    /// The most header fields (431 beyond).
    #[must_use]
    pub fn max_headers(mut self, n: usize) -> Self {
        self.max_headers = n;
        self
    }

    /// The time allowed from accept to a complete request, TLS handshake included.
    #[must_use]
    pub fn handshake_timeout(mut self, t: Duration) -> Self {
        self.handshake_timeout = t;
        self
    }

    /// Close with 1001 when nothing arrives for `t`.
    #[must_use]
    pub fn idle_timeout(mut self, t: Duration) -> Self {
        self.idle_timeout = Some(t);
        self
    }

    /// Blocking driver: give up on a write the peer does not read for `t`.
    #[must_use]
    pub fn write_timeout(mut self, t: Duration) -> Self {
        self.write_timeout = Some(t);
        self
    }

    /// Serve TLS with this configuration ([`crate::tls::server_config_from_pem`] makes one).
    /// Feature `rustls`.
    #[cfg(feature = "rustls")]
    #[must_use]
    pub fn tls(mut self, tls: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Set `TCP_NODELAY` on accepted sockets (on by default).
    #[must_use]
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    /// Accept permessage-deflate offers (RFC 7692) with these settings. Feature `deflate`.
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn deflate(mut self, deflate: DeflateConfig) -> Self {
        self.deflate = Some(deflate);
        self
    }

    /// Compression level, size threshold and memLevel once deflate is agreed. Feature
    /// `deflate`.
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn deflate_options(mut self, options: DeflateOptions) -> Self {
        self.deflate_options = options;
        self
    }
}

impl ServerConfig {
    /// The compression settings the session runs with (a placeholder without `deflate`).
    pub(crate) const fn session_deflate_options(&self) -> DeflateOptions {
        #[cfg(feature = "deflate")]
        return self.deflate_options;
        #[cfg(not(feature = "deflate"))]
        DeflateOptions { _none: () }
    }
}

impl core::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("ServerConfig");
        d.field("ws", &self.ws)
            .field("max_header_size", &self.max_header_size)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("idle_timeout", &self.idle_timeout);
        #[cfg(feature = "rustls")]
        d.field("tls", &self.tls.is_some());
        d.finish()
    }
}

impl Default for ServerConfig {
    /// 8 KiB heads, 100 headers, 10 s handshake timeout, no idle timeout, no TLS, the core's
    /// default limits (64 MiB frames and messages).
    fn default() -> Self {
        Self {
            ws: WsConfig::default(),
            max_header_size: 8 * 1024,
            max_headers: 100,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: None,
            write_timeout: None,
            #[cfg(feature = "rustls")]
            tls: None,
            nodelay: true,
            #[cfg(feature = "deflate")]
            deflate: None,
            #[cfg(feature = "deflate")]
            deflate_options: DeflateOptions::default(),
        }
    }
}

/// A stand-in for the core's `DeflateOptions` in a build without the `deflate` feature, so
/// that the drivers pass one value whatever the features: it carries nothing.
#[cfg(not(feature = "deflate"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DeflateOptions {
    /// Nothing to set without deflate (a field, so that it is built like the real one).
    _none: (),
}
