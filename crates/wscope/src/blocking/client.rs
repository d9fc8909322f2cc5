//! Blocking client: TCP (optionally through a proxy), TLS, handshake.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant as StdInstant;

use wscope_proto::Role;

use super::{Transport, WebSocket};
use crate::config::ClientConfig;
use crate::error::{Error, HandshakeError, Result};
use crate::handshake::{client_agreed, client_feed, client_start, Offer, Response};
use crate::session::{Clock, Session};
#[cfg(feature = "rustls")]
use crate::stream::tls_client;
use crate::stream::{MaybeTlsStream, Tcp};
use wscope_proto::handshake::ClientHandshake;

/// Connects to a `ws://` or `wss://` URL with default settings (TLS verified against the
/// webpki roots).
pub fn connect(url: &str) -> Result<(WebSocket<MaybeTlsStream>, Response)> {
    connect_with(&ClientConfig::from_url(url)?)
}

/// The shorter of `phase` and the time left before `overall`; `Error::Timeout` once
/// `overall` has passed.
fn bound(phase: Option<Duration>, overall: Option<StdInstant>) -> Result<Option<Duration>> {
    match overall {
        None => Ok(phase),
        Some(d) => {
            let left = remaining(d)?;
            Ok(Some(phase.map_or(left, |p| p.min(left))))
        }
    }
}

/// The addresses of `host:port`. With a deadline, a name lookup (which cannot be
/// interrupted) runs on a thread of its own and is abandoned when the deadline passes.
fn resolve(host: &str, port: u16, overall: Option<StdInstant>) -> Result<Vec<SocketAddr>> {
    let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    if let Ok(ip) = literal.unwrap_or(host).parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let Some(deadline) = overall else {
        return Ok((host, port).to_socket_addrs()?.collect());
    };
    // A condition variable, not a channel: a channel's wait registers the calling thread
    // with std, which on a thread created by C (the C API) allocates a handle never freed.
    type Slot = (Mutex<Option<io::Result<Vec<SocketAddr>>>>, Condvar);
    let slot: Arc<Slot> = Arc::new((Mutex::new(None), Condvar::new()));
    let theirs = Arc::clone(&slot);
    let name = host.to_owned();
    let lookup = std::thread::Builder::new()
        .name("wscope-resolve".to_owned())
        .spawn(move || {
            let r = (name.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect::<Vec<_>>);
            let (m, cv) = &*theirs;
            *m.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
            cv.notify_all();
        })?;
    let (m, cv) = &*slot;
    let mut got = m.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if let Some(r) = got.take() {
            drop(got);
            let _ = lookup.join();
            return Ok(r?);
        }
        // The thread ends by itself when the lookup returns; nobody waits for it.
        let left = remaining(deadline)?;
        got = cv
            .wait_timeout(got, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

/// Opens a TCP connection to `host:port`, trying each address, each bounded by `timeout`,
/// all of them (and the name lookup) by `overall`.
pub(crate) fn tcp_connect(
    host: &str,
    port: u16,
    timeout: Option<Duration>,
    overall: Option<StdInstant>,
) -> Result<TcpStream> {
    let mut last = None;
    for addr in resolve(host, port, overall)? {
        let r = match bound(timeout, overall)? {
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
            Error::Io(io::Error::new(
                io::ErrorKind::NotFound,
                "host has no address",
            ))
        },
        Error::from,
    ))
}

/// Connects with a full configuration (the embedded-SDK-style API's `websock_open`). With
/// [`ClientConfig::open_timeout`] set, everything up to the server's `101` happens within it.
pub fn connect_with(cfg: &ClientConfig) -> Result<(WebSocket<MaybeTlsStream>, Response)> {
    cfg.check_tls_available()?;
    let overall = cfg.open_timeout.map(|t| Clock::now_std() + t);
    // Build the request first: a bad configuration fails before any connection is made.
    let mut request = Vec::with_capacity(512);
    let (hs, offer) = client_start(cfg, &mut request)?;
    let tcp = match &cfg.proxy {
        Some(p) => {
            let mut tcp = tcp_connect(&p.host, p.port, cfg.connect_timeout, overall)?;
            let t = bound(Some(cfg.handshake_timeout), overall)?;
            tcp.set_read_timeout(t)?;
            tcp.set_write_timeout(t)?;
            crate::proxy::connect_blocking(&mut tcp, p, &cfg.host, cfg.port)
                .map_err(timeout_error)?;
            tcp
        }
        None => tcp_connect(&cfg.host, cfg.port, cfg.connect_timeout, overall)?,
    };
    tcp.set_nodelay(cfg.nodelay)?;
    let tls_timeout = bound(
        Some(cfg.connect_timeout.unwrap_or(cfg.handshake_timeout)),
        overall,
    )?;
    tcp.set_read_timeout(tls_timeout)?;
    tcp.set_write_timeout(tls_timeout)?;
    #[cfg(feature = "rustls")]
    let stream = if cfg.secure {
        let tls = cfg.tls.build()?;
        let tls_deadline = tls_timeout.map(|t| Clock::now_std() + t);
        tls_client(tcp, tls, cfg.tls.server_name(&cfg.host)?, tls_deadline)
            .map_err(timeout_error)?
    } else {
        MaybeTlsStream::Plain(Tcp::new(tcp))
    };
    // `check_tls_available` refused `wss://` above.
    #[cfg(not(feature = "rustls"))]
    let stream = {
        let _ = tls_timeout;
        MaybeTlsStream::Plain(Tcp::new(tcp))
    };

    let mut deadline = Clock::now_std() + cfg.handshake_timeout;
    if let Some(o) = overall {
        deadline = deadline.min(o);
    }
    upgrade(stream, cfg, &request, hs, offer, deadline)
}

/// Runs the client's opening handshake for `cfg` (its host, path, headers, subprotocols and
/// permessage-deflate offer) over any [`Transport`] already connected to the server (a Unix
/// socket, a stream the application wrapped in TLS itself, ...), bounded by
/// [`ClientConfig::handshake_timeout`]. `cfg`'s connection settings (TLS, proxy, timeouts of
/// the TCP connect) are not used.
pub fn client_handshake<S: Transport>(
    stream: S,
    cfg: &ClientConfig,
) -> Result<(WebSocket<S>, Response)> {
    let mut request = Vec::with_capacity(512);
    let (hs, offer) = client_start(cfg, &mut request)?;
    let deadline = Clock::now_std() + cfg.handshake_timeout;
    upgrade(stream, cfg, &request, hs, offer, deadline)
}

/// Sends `request` and reads the server's response by `deadline`.
fn upgrade<S: Transport>(
    mut stream: S,
    cfg: &ClientConfig,
    request: &[u8],
    mut hs: ClientHandshake,
    offer: Option<Offer>,
    deadline: StdInstant,
) -> Result<(WebSocket<S>, Response)> {
    let left = remaining(deadline)?;
    stream.set_read_timeout(Some(left))?;
    stream.set_write_timeout(Some(left))?;
    stream
        .write_all(request)
        .map_err(|e| timeout_error(e.into()))?;
    stream.flush().map_err(|e| timeout_error(e.into()))?;
    let mut buf = vec![0u8; 4096];
    let (response, leftover) = loop {
        let left = remaining(deadline)?;
        stream.set_read_timeout(Some(left))?;
        let n = match stream.read(&mut buf) {
            // A socket read with a timeout is not restarted after a signal (or the kernel's
            // task work): try again, as `read_exact` would.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r.map_err(|e| timeout_error(e.into()))?,
        };
        if n == 0 {
            return Err(HandshakeError::Eof.into());
        }
        if let Some((resp, leftover)) = client_feed(&mut hs, &buf[..n])? {
            break (resp, leftover.to_vec());
        }
    };
    let agreed = client_agreed(cfg, offer.as_ref(), &response)?;
    stream.set_write_timeout(cfg.write_timeout)?;
    let session = Session::open(Role::Client, cfg.into(), &leftover, agreed);
    let mut ws = WebSocket::with_session(stream, session);
    ws.set_write_timeout(cfg.write_timeout);
    Ok((ws, response))
}

/// A socket timeout (`WouldBlock` / `TimedOut` from a read or write with a timeout set) as
/// [`Error::Timeout`]; other errors unchanged.
fn timeout_error(e: Error) -> Error {
    match e {
        Error::Io(io)
            if matches!(
                io.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Error::Timeout
        }
        e => e,
    }
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
