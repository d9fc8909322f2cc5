//! The tokio driver's TCP stream: tokio's, with vectored writes that never raise `SIGPIPE`.

use core::pin::Pin;
use core::task::{ready, Context, Poll};
use std::io::{self, IoSlice};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// A tokio TCP stream whose writes never raise `SIGPIPE` (as the blocking
/// [`crate::stream::Tcp`]): writing to a peer that has gone away fails with `BrokenPipe`, also
/// in a program that does not ignore the signal. tokio's vectored write is a `writev`, which
/// cannot take `MSG_NOSIGNAL`; here it is a `sendmsg` with the flag.
#[derive(Debug)]
pub struct Tcp(TcpStream);

impl Tcp {
    /// Wraps a connected stream.
    pub const fn new(stream: TcpStream) -> Self {
        Self(stream)
    }

    /// The stream.
    pub const fn get_ref(&self) -> &TcpStream {
        &self.0
    }

    /// The stream, unwrapped.
    pub fn into_inner(self) -> TcpStream {
        self.0
    }
}

impl AsyncRead for Tcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // A `send` with MSG_NOSIGNAL already (std's write, under mio's).
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let tcp = &mut self.get_mut().0;
        #[cfg(unix)]
        if crate::stream::NOSIGNAL {
            loop {
                ready!(tcp.poll_write_ready(cx))?;
                // `try_io` clears the readiness on WouldBlock, so the next poll waits for it.
                let sent = tcp.try_io(Interest::WRITABLE, || {
                    crate::stream::send_vectored_nosignal(&*tcp, bufs)
                        .unwrap_or_else(|| Err(io::ErrorKind::Unsupported.into()))
                });
                match sent {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    r => return Poll::Ready(r),
                }
            }
        }
        Pin::new(tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
