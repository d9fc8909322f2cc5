//! [`Tcp`] over tokio's TCP stream: vectored writes that never raise `SIGPIPE`.

use core::pin::Pin;
use core::task::{ready, Context, Poll};
use std::io::{self, IoSlice};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use crate::stream::Tcp;

impl AsyncRead for Tcp<TcpStream> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tcp<TcpStream> {
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
        loop {
            ready!(tcp.poll_write_ready(cx))?;
            // `try_io` clears the readiness on WouldBlock, so the next poll waits for it.
            // Without MSG_NOSIGNAL on this system (or if the kernel refuses the flags), the
            // plain vectored write below.
            let sent = tcp.try_io(Interest::WRITABLE, || {
                crate::stream::send_vectored_nosignal(&*tcp, bufs)
                    .unwrap_or_else(|| Err(io::ErrorKind::Unsupported.into()))
            });
            match sent {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Unsupported => break,
                r => return Poll::Ready(r),
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
