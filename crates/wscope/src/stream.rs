//! The transports under a WebSocket: plain TCP or rustls over TCP, for the blocking driver
//! ([`MaybeTlsStream`]) and the tokio driver (`crate::tokio::MaybeTlsStream`).

use core::time::Duration;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;

use rustls::{ClientConnection, ServerConnection, StreamOwned};

/// A blocking TCP stream, with or without TLS.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, client side.
    ClientTls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// TLS, server side.
    ServerTls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::ClientTls(s) => &s.sock,
            Self::ServerTls(s) => &s.sock,
        }
    }

    /// Sets the read timeout of the socket underneath.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(t)
    }

    /// Sends a TLS close_notify (if TLS) and shuts the TCP connection down for writing.
    pub fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(_) => {}
            Self::ClientTls(s) => {
                s.conn.send_close_notify();
                let _ = s.conn.complete_io(&mut s.sock);
            }
            Self::ServerTls(s) => {
                s.conn.send_close_notify();
                let _ = s.conn.complete_io(&mut s.sock);
            }
        }
        self.tcp().shutdown(std::net::Shutdown::Write)
    }
}

/// Connects TLS over `tcp` and completes the handshake (bounded by the socket's timeouts).
pub(crate) fn tls_client(
    mut tcp: TcpStream,
    cfg: std::sync::Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
) -> crate::error::Result<MaybeTlsStream> {
    let mut conn = ClientConnection::new(cfg, name)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    Ok(MaybeTlsStream::ClientTls(Box::new(StreamOwned::new(
        conn, tcp,
    ))))
}

/// Accepts TLS over `tcp` and completes the handshake (bounded by the socket's timeouts).
pub(crate) fn tls_server(
    mut tcp: TcpStream,
    cfg: std::sync::Arc<rustls::ServerConfig>,
) -> crate::error::Result<MaybeTlsStream> {
    let mut conn = ServerConnection::new(cfg)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    Ok(MaybeTlsStream::ServerTls(Box::new(StreamOwned::new(
        conn, tcp,
    ))))
}

impl Read for MaybeTlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::ClientTls(s) => s.read(buf),
            Self::ServerTls(s) => s.read(buf),
        }
    }
}

impl Write for MaybeTlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::ClientTls(s) => s.write(buf),
            Self::ServerTls(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write_vectored(bufs),
            Self::ClientTls(s) => s.write_vectored(bufs),
            Self::ServerTls(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::ClientTls(s) => s.flush(),
            Self::ServerTls(s) => s.flush(),
        }
    }
}
