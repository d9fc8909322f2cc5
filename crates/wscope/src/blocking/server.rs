//! Blocking server: accept, TLS, handshake with the application's decision.

use core::net::SocketAddr;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};

use wscope_proto::Role;

use super::client::remaining;
use super::{Transport, WebSocket};
use crate::config::ServerConfig;
use crate::error::{Error, HandshakeError, Result};
use crate::handshake::{
    accept_all, server_feed, server_machine, server_respond, Accept, RefusalDrain, Reject, Request,
};
use crate::session::{Clock, Session};
#[cfg(feature = "rustls")]
use crate::stream::tls_server;
use crate::stream::{MaybeTlsStream, Tcp};

/// A listening socket and the settings for the connections it accepts.
///
/// [`Server::accept`] performs the TLS and WebSocket handshakes on the calling thread
/// (bounded by [`ServerConfig::handshake_timeout`]); to keep a slow client from holding up
/// others, take the TCP connection with [`Server::listener`] and call [`accept_with`] on a
/// thread of its own.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    cfg: ServerConfig,
}

impl Server {
    /// Binds `addr`.
    pub fn bind(addr: impl ToSocketAddrs, cfg: ServerConfig) -> Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr)?,
            cfg,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The listening socket.
    pub fn listener(&self) -> &TcpListener {
        &self.listener
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// Accepts the next connection and upgrades it, accepting any request.
    pub fn accept(&self) -> Result<WebSocket<MaybeTlsStream>> {
        let (tcp, _) = self.listener.accept()?;
        accept(tcp, &self.cfg)
    }

    /// Accepts the next connection; `decide` sees the request and accepts or rejects it.
    pub fn accept_with<F>(&self, decide: F) -> Result<(WebSocket<MaybeTlsStream>, Request)>
    where
        F: FnOnce(&Request) -> Result<Accept, Reject>,
    {
        let (tcp, _) = self.listener.accept()?;
        accept_with(tcp, &self.cfg, decide)
    }
}

/// Upgrades an accepted TCP connection, accepting any request.
pub fn accept(tcp: TcpStream, cfg: &ServerConfig) -> Result<WebSocket<MaybeTlsStream>> {
    accept_with(tcp, cfg, accept_all).map(|(ws, _)| ws)
}

/// Upgrades an accepted TCP connection: TLS if configured, then [`server_handshake`] (the
/// request is read, bounded by the header size limit, 431, and the handshake timeout, checked
/// by the core, 400 and 426, and shown to `decide`). Refusals are answered and the socket
/// closed.
pub fn accept_with<F>(
    tcp: TcpStream,
    cfg: &ServerConfig,
    decide: F,
) -> Result<(WebSocket<MaybeTlsStream>, Request)>
where
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    tcp.set_nodelay(cfg.nodelay)?;
    tcp.set_read_timeout(Some(cfg.handshake_timeout))?;
    tcp.set_write_timeout(Some(cfg.handshake_timeout))?;
    let deadline = Clock::now_std() + cfg.handshake_timeout;
    #[cfg(feature = "rustls")]
    let stream = match &cfg.tls {
        Some(tls) => tls_server(tcp, tls.clone())?,
        None => MaybeTlsStream::Plain(Tcp::new(tcp)),
    };
    #[cfg(not(feature = "rustls"))]
    let stream = MaybeTlsStream::Plain(Tcp::new(tcp));
    upgrade(stream, cfg, decide, deadline)
}

/// Runs the server's opening handshake over any [`Transport`] (a Unix socket, a stream the
/// application wrapped in TLS itself, ...), bounded by [`ServerConfig::handshake_timeout`]:
/// the request is read, checked by the core (400, 426, 431) and shown to `decide`. Refusals
/// are answered and the transport shut down. TLS is the caller's ([`ServerConfig::tls`] is not
/// used here).
pub fn server_handshake<S, F>(
    stream: S,
    cfg: &ServerConfig,
    decide: F,
) -> Result<(WebSocket<S>, Request)>
where
    S: Transport,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    upgrade(
        stream,
        cfg,
        decide,
        Clock::now_std() + cfg.handshake_timeout,
    )
}

/// The upgrade of [`server_handshake`], by `deadline`.
fn upgrade<S, F>(
    mut stream: S,
    cfg: &ServerConfig,
    decide: F,
    deadline: std::time::Instant,
) -> Result<(WebSocket<S>, Request)>
where
    S: Transport,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let mut hs = server_machine(cfg);
    let mut buf = vec![0u8; 4096];
    let (request, leftover) = loop {
        let left = remaining(deadline)?;
        stream.set_read_timeout(Some(left))?;
        stream.set_write_timeout(Some(left))?;
        let n = match stream.read(&mut buf) {
            Ok(0) => return Err(HandshakeError::Eof.into()),
            Ok(n) => n,
            // Not restarted after a signal, since the read has a timeout: try again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::from(e)),
        };
        match server_feed(&mut hs, &buf[..n]) {
            Ok(None) => {}
            Ok(Some((req, leftover))) => break (req, leftover.to_vec()),
            Err((response, e)) => {
                refuse(&mut stream, &response);
                return Err(e);
            }
        }
    };
    let mut response = Vec::with_capacity(256);
    match server_respond(&request, cfg, decide, &mut response) {
        Ok(agreed) => {
            stream.write_all(&response)?;
            stream.flush()?;
            stream.set_write_timeout(cfg.write_timeout)?;
            let session = Session::open(Role::Server, cfg.into(), &leftover, agreed);
            let mut ws = WebSocket::with_session(stream, session);
            ws.set_write_timeout(cfg.write_timeout);
            Ok((ws, request))
        }
        Err(e) => {
            refuse(&mut stream, &response);
            Err(e)
        }
    }
}

/// Writes a refusal, ends the connection, and drains briefly so the client gets the
/// response instead of a reset ([`RefusalDrain`]).
fn refuse<S: Transport>(stream: &mut S, response: &[u8]) {
    let _ = stream.write_all(response);
    let _ = stream.flush();
    let _ = stream.shutdown();
    let mut drain = RefusalDrain::new(Clock::now_std());
    let mut sink = [0u8; 4096];
    while let Some(left) = drain.time_left(Clock::now_std()) {
        if stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        let n = stream.read(&mut sink).unwrap_or(0);
        if !drain.record(n) {
            break;
        }
    }
}
