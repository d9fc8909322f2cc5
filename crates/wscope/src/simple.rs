//! A `websock_*`-style facade over the blocking client (the embedded-SDK-style client API),
//! for applications ported from it and for the C API layered on top.
//!
//! | embedded-SDK-style API | here |
//! |---|---|
//! | `websock_config_t` | [`WebsockConfig`] (`secured` 0/1/2 is [`Secured`]) |
//! | `websock_open(cfg)` | [`Websock::open`] |
//! | `websock_send_text/binary(h, buf, len)` | [`Websock::send_text`], [`Websock::send_binary`] |
//! | `websock_recv(h, hdr, buf, &len, timeout)` | [`Websock::recv`] filling a [`MsgHdr`] |
//! | `websock_close(h)` | [`Websock::close`] (sends 1000, waits bounded for the reply) |
//!
//! Differences from the original, all fixes: the key is random, the reply is fully checked,
//! bytes that arrive with the 101 are kept, pings are answered with their payload, closes are
//! answered, `time_out` bounds the whole opening (connect, TLS, upgrade).
//!
//! Pings follow the SDK's `websock_recv` ("internally handles websocket close and ping
//! messages"): [`Websock::recv`] answers them and never returns them; pongs and the peer's
//! close are returned (the close once, already answered). The C API (`wscope-ffi`) wraps
//! this type, so both layers report the same frames. Sending from other
//! threads while one thread blocks in [`Websock::recv`] is safe, also with messages larger
//! than the socket buffers: the connection is a [`SharedWebSocket`], whose receive and sends
//! never wait for each other. Every call is bounded: [`Websock::recv`] by its timeout,
//! sends by the write timeout ([`WebsockConfig::write_timeout`]), [`Websock::close`] by
//! [`CLOSE_TIMEOUT`].
//!
//! TLS connections append their secrets to the file named by the `SSLKEYLOGFILE`
//! environment variable when it is set (as curl does), so that `wscope inspect --keylog`
//! decrypts a capture of them; the C API inherits this.
//!
//! ```no_run
//! use std::time::Duration;
//! use wscope::simple::{MsgHdr, Secured, Websock, WebsockConfig};
//!
//! # fn main() -> wscope::Result<()> {
//! let cfg = WebsockConfig::default()
//!     .hostname("echo.example".into())
//!     .port(443)
//!     .uri("/".into())
//!     .secured(Secured::Verify);
//! let ws = Websock::open(&cfg)?;
//! ws.send_text("Hello World")?;
//! let mut hdr = MsgHdr::default();
//! let mut buf = [0u8; 128];
//! let n = ws.recv(&mut hdr, &mut buf, Duration::from_secs(10))?;
//! if hdr.opcode >= 0 {
//!     println!("{} bytes of a {}-byte frame: {:?}", n, hdr.payload_len, &buf[..n]);
//! }
//! ws.close();
//! # Ok(())
//! # }
//! ```

use core::time::Duration;
use std::time::Instant;

use crate::blocking::{connect_with, SharedWebSocket};
use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::message::Partial;
#[cfg(feature = "rustls")]
use crate::tls::TlsConfig;
use crate::{CloseCode, OpCode};

/// Longest time [`Websock::close`] takes: sending the close, waiting for the server's and
/// for the end of the connection.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The seed's `secured` field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "closed: the three values of the C API's `secured` field"
)]
pub enum Secured {
    /// 0: plain `ws`.
    #[default]
    No,
    /// 1: TLS without verifying the server (the SDK example's `SSL_WRAP_VERIFY_NONE`).
    NoVerify,
    /// 2: TLS, server verified against `ca_cert` or the built-in roots.
    Verify,
}

/// The embedded-SDK-style API's `websock_config_t`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WebsockConfig {
    /// Host name or IP address.
    pub hostname: String,
    /// Port.
    pub port: u16,
    /// Request target (`/` when empty).
    pub uri: String,
    /// TLS or not, verified or not.
    pub secured: Secured,
    /// CA certificates (PEM) to verify the server with; built-in roots when `None`.
    pub ca_cert: Option<Vec<u8>>,
    /// Client certificate (PEM).
    pub client_cert: Option<Vec<u8>>,
    /// Client key (PEM).
    pub client_key: Option<Vec<u8>>,
    /// Bound on the whole opening: name lookup, TCP connect, TLS and the HTTP upgrade.
    pub time_out: Duration,
    /// A send fails (and the connection with it) when no byte could be written for this
    /// long: the server does not read. `None`: `time_out`.
    pub write_timeout: Option<Duration>,
    /// Extra handshake headers (name, value); at most 10 as in the embedded-SDK-style API.
    pub hndshk_hdrs: Vec<(String, String)>,
}

/// Builder methods, one per field and of the same name: start from `WebsockConfig::default()` (or a
/// constructor) and chain them; the struct is `#[non_exhaustive]`, so fields may be added without
/// breaking callers.
impl WebsockConfig {
    /// Sets [`WebsockConfig::hostname`]: host name or IP address.
    #[must_use]
    pub fn hostname(mut self, hostname: String) -> Self {
        self.hostname = hostname;
        self
    }

    /// Sets [`WebsockConfig::port`]: port.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets [`WebsockConfig::uri`]: request target (`/` when empty).
    #[must_use]
    pub fn uri(mut self, uri: String) -> Self {
        self.uri = uri;
        self
    }

    /// Sets [`WebsockConfig::secured`]: tLS or not, verified or not.
    #[must_use]
    pub fn secured(mut self, secured: Secured) -> Self {
        self.secured = secured;
        self
    }

    /// Sets [`WebsockConfig::ca_cert`]: cA certificates (PEM) to verify the server with; built-in
    /// roots when `None`.
    #[must_use]
    pub fn ca_cert(mut self, ca_cert: Option<Vec<u8>>) -> Self {
        self.ca_cert = ca_cert;
        self
    }

    /// Sets [`WebsockConfig::client_cert`]: client certificate (PEM).
    #[must_use]
    pub fn client_cert(mut self, client_cert: Option<Vec<u8>>) -> Self {
        self.client_cert = client_cert;
        self
    }

    /// Sets [`WebsockConfig::client_key`]: client key (PEM).
    #[must_use]
    pub fn client_key(mut self, client_key: Option<Vec<u8>>) -> Self {
        self.client_key = client_key;
        self
    }

    /// Sets [`WebsockConfig::time_out`]: bound on the whole opening: name lookup, TCP connect, TLS
    /// and the HTTP upgrade.
    #[must_use]
    pub fn time_out(mut self, time_out: Duration) -> Self {
        self.time_out = time_out;
        self
    }

    /// Sets [`WebsockConfig::write_timeout`]: a send fails (and the connection with it) when no
    /// byte could be written for this long: the server does not read.
    #[must_use]
    pub fn write_timeout(mut self, write_timeout: Option<Duration>) -> Self {
        self.write_timeout = write_timeout;
        self
    }

    /// Sets [`WebsockConfig::hndshk_hdrs`]: extra handshake headers (name, value); at most 10 as in
    /// the embedded-SDK-style API.
    #[must_use]
    pub fn hndshk_hdrs(mut self, hndshk_hdrs: Vec<(String, String)>) -> Self {
        self.hndshk_hdrs = hndshk_hdrs;
        self
    }
}

impl Default for WebsockConfig {
    fn default() -> Self {
        Self {
            hostname: String::new(),
            port: 80,
            uri: "/".to_owned(),
            secured: Secured::No,
            ca_cert: None,
            client_cert: None,
            client_key: None,
            time_out: Duration::from_secs(30),
            write_timeout: None,
            hndshk_hdrs: Vec::new(),
        }
    }
}

/// Most extra handshake headers (`WEBSOCK_MAX_HNDSHK_HDRS`).
pub const MAX_HNDSHK_HDRS: usize = 10;

impl WebsockConfig {
    /// The equivalent [`ClientConfig`].
    pub fn client_config(&self) -> Result<ClientConfig> {
        if self.hndshk_hdrs.len() > MAX_HNDSHK_HDRS {
            return Err(crate::HandshakeError::Config("more than 10 handshake headers").into());
        }
        let path = if self.uri.is_empty() { "/" } else { &self.uri };
        let mut cfg = ClientConfig::new(self.hostname.clone(), self.port)
            .path(path)
            .connect_timeout(self.time_out)
            .open_timeout(self.time_out)
            .write_timeout(self.write_timeout.unwrap_or(self.time_out));
        for (name, value) in &self.hndshk_hdrs {
            // SDK users pass these as plain headers (MQTT adds `Sec-WebSocket-Protocol: mqtt`);
            // they map to the dedicated settings so the handshake stays checked.
            if name.eq_ignore_ascii_case("Sec-WebSocket-Protocol") {
                for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    cfg = cfg.subprotocol(p);
                }
            } else if name.eq_ignore_ascii_case("Origin") {
                cfg = cfg.origin(value.trim());
            } else {
                cfg = cfg.header(name.clone(), value.clone());
            }
        }
        // Without the `rustls` feature, a secured configuration fails to connect with
        // `UrlError::TlsDisabled`.
        #[cfg(not(feature = "rustls"))]
        if self.secured != Secured::No {
            cfg = cfg.secure(true);
        }
        #[cfg(feature = "rustls")]
        if self.secured != Secured::No {
            let mut tls = TlsConfig::new();
            if let Some(ca) = &self.ca_cert {
                tls = tls.with_ca_pem(ca.clone());
            }
            if let (Some(c), Some(k)) = (&self.client_cert, &self.client_key) {
                tls = tls.with_client_auth_pem(c.clone(), k.clone());
            }
            if self.secured == Secured::NoVerify {
                tls = tls.insecure();
            }
            // SSLKEYLOGFILE, as in curl: how SDK users decrypt a capture of their connection.
            tls.key_log = crate::tls::env_key_log();
            cfg = cfg.tls(tls);
        }
        Ok(cfg)
    }
}

/// The embedded-SDK-style API's `websock_msg_hdr_t`: what the bytes returned by
/// [`Websock::recv`] belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "closed: the fields of the C API's `websock_msg_hdr_t`"
)]
pub struct MsgHdr {
    /// 1 when the frame ends its message, 0 otherwise (-1 when nothing was returned).
    pub fin: i32,
    /// The frame's opcode (0 continuation, 1 text, 2 binary, 8 close, 10 pong; never 9: pings
    /// are answered, not returned); -1 when nothing was returned (timeout, or only part of a
    /// header arrived): keep calling.
    pub opcode: i32,
    /// Total payload length of the frame (not of the piece returned).
    pub payload_len: i64,
}

impl Default for MsgHdr {
    fn default() -> Self {
        Self {
            fin: -1,
            opcode: -1,
            payload_len: 0,
        }
    }
}

/// An open client connection (the embedded-SDK-style API's `websock_handle_t`).
#[derive(Debug)]
pub struct Websock {
    ws: SharedWebSocket,
}

impl Websock {
    /// Connects and performs the opening handshake (`websock_open`), all within
    /// [`WebsockConfig::time_out`].
    pub fn open(cfg: &WebsockConfig) -> Result<Self> {
        let client = cfg.client_config()?;
        let (ws, _) = connect_with(&client)?;
        let write_timeout = client.write_timeout.unwrap_or(cfg.time_out);
        Ok(Self {
            ws: SharedWebSocket::new(ws, write_timeout)?,
        })
    }

    /// The connection underneath (to change its write timeout, send fragments, ...).
    pub fn shared(&self) -> &SharedWebSocket {
        &self.ws
    }

    /// Sends a text message (`websock_send_text`).
    pub fn send_text(&self, text: &str) -> Result<()> {
        self.ws.send_text(text)
    }

    /// Sends a binary message (`websock_send_binary`).
    pub fn send_binary(&self, data: &[u8]) -> Result<()> {
        self.ws.send_binary(data)
    }

    /// Sends a ping (at most 125 bytes).
    pub fn send_ping(&self, data: &[u8]) -> Result<()> {
        self.ws.send_ping(data)
    }

    /// Sends an unsolicited pong (a heartbeat, at most 125 bytes); pings are answered
    /// without it.
    pub fn send_pong(&self, data: &[u8]) -> Result<()> {
        self.ws.send_pong(data)
    }

    /// Receives (`websock_recv`): up to `buf.len()` payload bytes of the next frame, `hdr`
    /// telling which frame; the rest of a long frame comes on the next calls. Returns the
    /// number of bytes written to `buf`. On timeout returns 0 with `hdr.opcode == -1` (not an
    /// error); the timeout holds whatever arrives, a flood of pings included. Pings are
    /// answered internally with their payload and not returned; pongs are returned (opcode
    /// 10); the peer's close is answered and returned once as opcode 8 with its payload;
    /// after that, and on protocol or transport errors, `Err`.
    pub fn recv(&self, hdr: &mut MsgHdr, buf: &mut [u8], timeout: Duration) -> Result<usize> {
        *hdr = MsgHdr::default();
        // `None`: too far away to represent, no deadline.
        let deadline = now().checked_add(timeout);
        loop {
            let left = deadline.map_or(timeout, |d| d.saturating_duration_since(now()));
            match self.ws.recv_partial(buf, left)? {
                Partial::Control { info, .. } if info.opcode == OpCode::PING => {
                    // Answered by the connection; the deadline holds across pings.
                    if deadline.is_some_and(|d| now() >= d) {
                        return Ok(0);
                    }
                }
                Partial::Data { info, len, .. } | Partial::Control { info, len } => {
                    hdr.fin = i32::from(info.fin);
                    hdr.opcode = i32::from(info.opcode.0);
                    hdr.payload_len = i64::try_from(info.payload_len).unwrap_or(i64::MAX);
                    return Ok(len);
                }
                Partial::Timeout => return Ok(0),
            }
        }
    }

    /// Closes with 1000 and waits for the reply, within [`CLOSE_TIMEOUT`]
    /// (`websock_close`). Errors are ignored: the connection is gone either way.
    pub fn close(self) {
        let _ = self.close_with(CloseCode::NORMAL, "");
    }

    /// Closes with a status and reason (cut to 123 bytes), waiting for the reply, within
    /// [`CLOSE_TIMEOUT`].
    pub fn close_with(self, code: CloseCode, reason: &str) -> Result<()> {
        self.close_within(Some(code), reason, CLOSE_TIMEOUT)
    }

    /// Closes with a status and reason (`None`: a close frame without payload), waiting for
    /// the reply, within `bound`. A connection that had already ended is not an error.
    pub fn close_within(
        self,
        code: Option<CloseCode>,
        reason: &str,
        bound: Duration,
    ) -> Result<()> {
        match self.ws.close(code, reason, bound) {
            Ok(()) | Err(Error::ConnectionClosed | Error::AlreadyClosed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The clock (this facade is an I/O driver: it may read it).
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}
