//! The tokio transport: TCP with or without rustls.

use core::pin::Pin;
use core::task::{Context, Poll};
use std::io;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// An async stream with or without TLS.
#[derive(Debug)]
#[non_exhaustive]
pub enum AsyncMaybeTlsStream<S> {
    /// No TLS.
    Plain(S),
    /// TLS, client side. Feature `rustls`.
    #[cfg(feature = "rustls")]
    ClientTls(Box<tokio_rustls::client::TlsStream<S>>),
    /// TLS, server side. Feature `rustls`.
    #[cfg(feature = "rustls")]
    ServerTls(Box<tokio_rustls::server::TlsStream<S>>),
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for AsyncMaybeTlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "rustls")]
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            #[cfg(feature = "rustls")]
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for AsyncMaybeTlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "rustls")]
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            #[cfg(feature = "rustls")]
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(feature = "rustls")]
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            #[cfg(feature = "rustls")]
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            #[cfg(feature = "rustls")]
            Self::ClientTls(s) => s.is_write_vectored(),
            #[cfg(feature = "rustls")]
            Self::ServerTls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "rustls")]
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(feature = "rustls")]
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "rustls")]
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(feature = "rustls")]
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
