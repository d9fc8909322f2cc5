//! Blocking client: TCP (optionally through a proxy), TLS, handshake.

use core::time::Duration;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Instant as StdInstant;

use wscope_proto::Role;

use super::{DriverOptions, WebSocket};
use crate::config::ClientConfig;
use crate::error::{Error, HandshakeError, Result};
use crate::handshake::{client_deflate, client_feed, client_start, Response};
use crate::session::Clock;
use crate::stream::{tls_client, MaybeTlsStream, Tcp};

/// Connects to a `ws://` or `wss://` URL with default settings (TLS verified against the
/// webpki roots).
pub fn connect(url: &str) -> Result<(WebSocket<MaybeTlsStream>, Response)> {
    connect_with(&ClientConfig::from_url(url)?)
}

/// Opens a TCP connection to `host:port`, trying each address, each bounded by `timeout`.
pub(crate) fn tcp_connect(host: &str, port: u16, timeout: Option<Duration>) -> Result<TcpStream> {
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        let r = match timeout {
            Some(t) => TcpStream::connect_timeout(&addr, t),
            None => TcpStream::connect(addr),
        };
        match r {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(
        || {
            Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "host has no address",
            ))
        },
        Error::from,
    ))
}

/// Connects with a full configuration (the embedded-SDK-style API's `websock_open`).
pub fn connect_with(cfg: &ClientConfig) -> Result<(WebSocket<MaybeTlsStream>, Response)> {
    // Build the request first: a bad configuration fails before any connection is made.
    let mut request = Vec::with_capacity(512);
    let (mut hs, offer) = client_start(cfg, &mut request)?;
    let tcp = match &cfg.proxy {
        Some(p) => {
            let mut tcp = tcp_connect(&p.host, p.port, cfg.connect_timeout)?;
            tcp.set_read_timeout(Some(cfg.handshake_timeout))?;
            crate::proxy::connect_blocking(&mut tcp, p, &cfg.host, cfg.port)?;
            tcp
        }
        None => tcp_connect(&cfg.host, cfg.port, cfg.connect_timeout)?,
    };
    tcp.set_nodelay(cfg.nodelay)?;
    let tls_timeout = cfg.connect_timeout.unwrap_or(cfg.handshake_timeout);
    tcp.set_read_timeout(Some(tls_timeout))?;
    tcp.set_write_timeout(Some(tls_timeout))?;
    let mut stream = if cfg.secure {
        let tls = cfg.tls.build()?;
        tls_client(tcp, tls, cfg.tls.server_name(&cfg.host)?)?
    } else {
        MaybeTlsStream::Plain(Tcp::new(tcp))
    };

    let deadline = Clock::now_std() + cfg.handshake_timeout;
    stream.set_read_timeout(Some(cfg.handshake_timeout))?;
    stream
        .tcp()
        .set_write_timeout(Some(cfg.handshake_timeout))?;
    stream.write_all(&request)?;
    stream.flush()?;
    let mut buf = vec![0u8; 4096];
    let (response, leftover) = loop {
        let left = remaining(deadline)?;
        stream.set_read_timeout(Some(left))?;
        let n = match stream.read(&mut buf) {
            // A socket read with a timeout is not restarted after a signal (or the kernel's
            // task work): try again, as `read_exact` would.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r?,
        };
        if n == 0 {
            return Err(HandshakeError::Eof.into());
        }
        if let Some((resp, leftover)) = client_feed(&mut hs, &buf[..n])? {
            break (resp, leftover.to_vec());
        }
    };
    let deflate = client_deflate(cfg, offer.as_ref(), &response)?;
    stream.tcp().set_write_timeout(cfg.write_timeout)?;
    let mut ws = WebSocket::from_raw(
        stream,
        Role::Client,
        cfg.ws,
        &leftover,
        DriverOptions {
            idle_timeout: cfg.idle_timeout,
        },
    );
    ws.set_write_timeout(cfg.write_timeout);
    ws.set_subprotocol(response.subprotocol().map(str::to_owned));
    if let Some(params) = deflate {
        ws.session.conn.enable_deflate(params, cfg.deflate_options);
    }
    Ok((ws, response))
}

/// Time left before `deadline`, or `Error::Timeout`.
pub(crate) fn remaining(deadline: StdInstant) -> Result<Duration> {
    let left = deadline.saturating_duration_since(Clock::now_std());
    if left.is_zero() {
        Err(Error::Timeout)
    } else {
        Ok(left)
    }
}
