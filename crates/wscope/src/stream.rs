//! The transports under a WebSocket: plain TCP or rustls over TCP, for the blocking driver
//! ([`MaybeTlsStream`]) and the tokio driver (`crate::tokio::AsyncMaybeTlsStream`).

use core::time::Duration;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;

#[cfg(feature = "rustls")]
use rustls::{ClientConnection, ServerConnection, StreamOwned};

/// A TCP stream whose writes never raise `SIGPIPE`: writing to a peer that has gone away
/// fails with `BrokenPipe`, also in a host program that has not ignored the signal (a C
/// program on the C API, or a tool that restored its default action; Rust programs ignore it
/// from the start). std's and tokio's `write` send with `MSG_NOSIGNAL` already, but their
/// vectored writes are a `writev`, which cannot; here vectored writes (the drivers' header +
/// payload, rustls' records) are a `sendmsg` with the flag.
///
/// `S` is `std::net::TcpStream` (the blocking driver: [`Read`], [`Write`]) or
/// `tokio::net::TcpStream` (the tokio driver: `AsyncRead`, `AsyncWrite`).
#[derive(Debug)]
pub struct Tcp<S = TcpStream>(pub(crate) S);

impl<S> Tcp<S> {
    /// Wraps a connected stream.
    pub const fn new(stream: S) -> Self {
        Self(stream)
    }

    /// The stream.
    pub const fn get_ref(&self) -> &S {
        &self.0
    }

    /// The stream, unwrapped.
    pub fn into_inner(self) -> S {
        self.0
    }
}

impl Read for Tcp<TcpStream> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Tcp<TcpStream> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        #[cfg(unix)]
        if let Some(r) = send_vectored_nosignal(&self.0, bufs) {
            return r;
        }
        self.0.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// A vectored `sendmsg` with `MSG_NOSIGNAL` on `socket` where the flag exists, `None`
/// elsewhere (Apple systems have no such flag, and std sets `SO_NOSIGPIPE` on their sockets
/// instead; Windows has no `SIGPIPE`). Shared by both drivers' [`Tcp`].
#[cfg(unix)]
pub(crate) fn send_vectored_nosignal<S: std::os::fd::AsFd>(
    socket: &S,
    bufs: &[IoSlice<'_>],
) -> Option<io::Result<usize>> {
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "illumos",
        target_os = "solaris"
    ))]
    return Some(socket2::SockRef::from(socket).send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL));
    #[allow(unreachable_code)]
    {
        let _ = (socket, bufs);
        None
    }
}

/// A blocking TCP stream, with or without TLS.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// Plain TCP.
    Plain(Tcp),
    /// TLS, client side. Feature `rustls`.
    #[cfg(feature = "rustls")]
    ClientTls(Box<StreamOwned<ClientConnection, Tcp>>),
    /// TLS, server side. Feature `rustls`.
    #[cfg(feature = "rustls")]
    ServerTls(Box<StreamOwned<ServerConnection, Tcp>>),
}

impl MaybeTlsStream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s.get_ref(),
            #[cfg(feature = "rustls")]
            Self::ClientTls(s) => s.sock.get_ref(),
            #[cfg(feature = "rustls")]
            Self::ServerTls(s) => s.sock.get_ref(),
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
            #[cfg(feature = "rustls")]
            Self::ClientTls(s) => {
                s.conn.send_close_notify();
                let _ = s.conn.complete_io(&mut s.sock);
            }
            #[cfg(feature = "rustls")]
            Self::ServerTls(s) => {
                s.conn.send_close_notify();
                let _ = s.conn.complete_io(&mut s.sock);
            }
        }
        self.tcp().shutdown(std::net::Shutdown::Write)
    }
}

/// A TLS peer that ended the TCP connection without `close_notify` counts as the end of
/// the stream (`Ok(0)`), for both drivers; other errors pass through. rustls reports it as
/// `UnexpectedEof` to guard protocols whose data has no end marker of its own, but a
/// WebSocket has one, the closing handshake: the session reports an end before it as
/// "closed without a closing handshake" and one after it as a clean close, as browsers and
/// tungstenite do (many servers close TCP right after the WebSocket close). Plain TCP never
/// returns this error from a read.
pub(crate) fn end_without_close_notify(e: io::Error) -> io::Result<usize> {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        Ok(0)
    } else {
        Err(e)
    }
}

/// One step of a TLS handshake. A read or write interrupted by a signal is tried again: with
/// the socket's timeouts set, the kernel does not restart it by itself.
#[cfg(all(feature = "rustls", feature = "blocking"))]
fn handshake_io<D>(conn: &mut rustls::ConnectionCommon<D>, tcp: &mut Tcp) -> io::Result<()> {
    loop {
        match conn.complete_io(tcp) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r.map(drop),
        }
    }
}

/// Connects TLS over `tcp` and completes the handshake (bounded by the socket's timeouts,
/// and as a whole by `deadline` when given).
#[cfg(all(feature = "rustls", feature = "blocking"))]
pub(crate) fn tls_client(
    tcp: TcpStream,
    cfg: std::sync::Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
    deadline: Option<std::time::Instant>,
) -> crate::error::Result<MaybeTlsStream> {
    let mut conn = ClientConnection::new(cfg, name)?;
    let mut tcp = Tcp::new(tcp);
    while conn.is_handshaking() {
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(crate::session::Clock::now_std());
            if left.is_zero() {
                return Err(crate::error::Error::Timeout);
            }
            tcp.0.set_read_timeout(Some(left))?;
            tcp.0.set_write_timeout(Some(left))?;
        }
        handshake_io(&mut conn, &mut tcp)?;
    }
    Ok(MaybeTlsStream::ClientTls(Box::new(StreamOwned::new(
        conn, tcp,
    ))))
}

/// Accepts TLS over `tcp` and completes the handshake (bounded by the socket's timeouts).
#[cfg(all(feature = "rustls", feature = "blocking"))]
pub(crate) fn tls_server(
    tcp: TcpStream,
    cfg: std::sync::Arc<rustls::ServerConfig>,
) -> crate::error::Result<MaybeTlsStream> {
    let mut conn = ServerConnection::new(cfg)?;
    let mut tcp = Tcp::new(tcp);
    while conn.is_handshaking() {
        handshake_io(&mut conn, &mut tcp)?;
    }
    Ok(MaybeTlsStream::ServerTls(Box::new(StreamOwned::new(
        conn, tcp,
    ))))
}

impl Read for MaybeTlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            #[cfg(feature = "rustls")]
            Self::ClientTls(s) => s.read(buf),
            #[cfg(feature = "rustls")]
            Self::ServerTls(s) => s.read(buf),
        }
    }
}

impl Write for MaybeTlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            #[cfg(feature = "rustls")]
            Self::ClientTls(s) => s.write(buf),
            #[cfg(feature = "rustls")]
            Self::ServerTls(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write_vectored(bufs),
            #[cfg(feature = "rustls")]
            Self::ClientTls(s) => s.write_vectored(bufs),
            #[cfg(feature = "rustls")]
            Self::ServerTls(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            #[cfg(feature = "rustls")]
            Self::ClientTls(s) => s.flush(),
            #[cfg(feature = "rustls")]
            Self::ServerTls(s) => s.flush(),
        }
    }
}
