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
//! answered, `time_out` really bounds the connect. Sending from other threads while one
//! thread blocks in [`Websock::recv`] is safe: the receive waits in short slices and leaves
//! the connection to senders in between.
//!
//! ```no_run
//! use std::time::Duration;
//! use wscope::simple::{MsgHdr, Secured, Websock, WebsockConfig};
//!
//! # fn main() -> wscope::Result<()> {
//! let cfg = WebsockConfig {
//!     hostname: "echo.example".into(),
//!     port: 443,
//!     uri: "/".into(),
//!     secured: Secured::Verify,
//!     ..WebsockConfig::default()
//! };
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
use std::sync::{Mutex, MutexGuard};

use crate::blocking::{connect_with, WebSocket};
use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::message::Partial;
use crate::session::Clock;
use crate::stream::MaybeTlsStream;
use crate::tls::TlsConfig;
use crate::CloseCode;

/// The embedded-SDK-style API's `secured` field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
    /// TCP (and TLS) connect timeout.
    pub time_out: Duration,
    /// Extra handshake headers (name, value); at most 10 as in the embedded-SDK-style API.
    pub hndshk_hdrs: Vec<(String, String)>,
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
            .connect_timeout(self.time_out);
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
            cfg = cfg.tls(tls);
        }
        Ok(cfg)
    }
}

/// The embedded-SDK-style API's `websock_msg_hdr_t`: what the bytes returned by
/// [`Websock::recv`] belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgHdr {
    /// 1 when the frame ends its message, 0 otherwise (-1 when nothing was returned).
    pub fin: i32,
    /// The frame's opcode (0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong); -1
    /// when nothing was returned (timeout, or only part of a header arrived): keep calling.
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

/// How long a receive holds the connection before letting senders in.
const SLICE: Duration = Duration::from_millis(10);

/// An open client connection (the embedded-SDK-style API's `websock_handle_t`).
#[derive(Debug)]
pub struct Websock {
    ws: Mutex<WebSocket<MaybeTlsStream>>,
}

impl Websock {
    /// Connects and performs the opening handshake (`websock_open`).
    pub fn open(cfg: &WebsockConfig) -> Result<Self> {
        let (ws, _) = connect_with(&cfg.client_config()?)?;
        Ok(Self { ws: Mutex::new(ws) })
    }

    fn lock(&self) -> MutexGuard<'_, WebSocket<MaybeTlsStream>> {
        self.ws
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends a text message (`websock_send_text`).
    pub fn send_text(&self, text: &str) -> Result<()> {
        self.lock().send_text(text)
    }

    /// Sends a binary message (`websock_send_binary`).
    pub fn send_binary(&self, data: &[u8]) -> Result<()> {
        self.lock().send_binary(data)
    }

    /// Sends a ping (at most 125 bytes).
    pub fn send_ping(&self, data: &[u8]) -> Result<()> {
        self.lock().send_ping(data)
    }

    /// Receives (`websock_recv`): up to `buf.len()` payload bytes of the next frame, `hdr`
    /// telling which frame; the rest of a long frame comes on the next calls. Returns the
    /// number of bytes written to `buf`. On timeout returns 0 with `hdr.opcode == -1` (not an
    /// error). Pings are answered internally and reported (opcode 9); the peer's close is
    /// answered and returned once as opcode 8 with its payload; after that, and on protocol
    /// or transport errors, `Err`.
    pub fn recv(&self, hdr: &mut MsgHdr, buf: &mut [u8], timeout: Duration) -> Result<usize> {
        *hdr = MsgHdr::default();
        let until = Clock::now_std() + timeout;
        loop {
            let left = until.saturating_duration_since(Clock::now_std());
            let slice = left.min(SLICE);
            let got = self.lock().recv_partial(buf, slice)?;
            match got {
                Partial::Data { info, len, .. } | Partial::Control { info, len } => {
                    hdr.fin = i32::from(info.fin);
                    hdr.opcode = i32::from(info.opcode.0);
                    hdr.payload_len = i64::try_from(info.payload_len).unwrap_or(i64::MAX);
                    return Ok(len);
                }
                Partial::Timeout if left.is_zero() || left <= SLICE => return Ok(0),
                Partial::Timeout => std::thread::yield_now(),
            }
        }
    }

    /// Closes with 1000 and waits (bounded by the close timeout) for the reply
    /// (`websock_close`). Errors are ignored: the connection is gone either way.
    pub fn close(self) {
        let _ = self.close_with(CloseCode::NORMAL, "");
    }

    /// Closes with a status and reason (cut to 123 bytes), waiting for the reply.
    pub fn close_with(self, code: CloseCode, reason: &str) -> Result<()> {
        let mut ws = self
            .ws
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match ws.close(code, reason) {
            Ok(()) | Err(Error::Closed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
