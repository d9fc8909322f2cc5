//! [`H2Stream`]: one HTTP/2 stream (its `SendStream` and `RecvStream`) as an `AsyncRead +
//! AsyncWrite` byte stream, with HTTP/2 flow control as the backpressure.

use core::pin::Pin;
use core::task::{ready, Context, Poll};
use std::io::{self, IoSlice};
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use h2::{Reason, RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes one write hands to the HTTP/2 layer (one or a few DATA frames). The
/// capacity asked of the flow-control window is at most this, so a write never queues more
/// than this beyond what the peer's window allows.
const MAX_WRITE: usize = 256 * 1024;

/// One HTTP/2 stream as a byte stream: what the WebSocket connection reads is the stream's
/// DATA payloads in order, what it writes goes out as DATA frames.
///
/// - **Receiving**: window credit is given back to the peer (`WINDOW_UPDATE`) only as the
///   application consumes the bytes, so a peer cannot make us buffer more than the stream's
///   window, whatever it sends.
/// - **Sending**: each write first reserves window capacity and waits for the peer to grant
///   it: a peer that does not read stops our writes (`Pending`), which the WebSocket layer
///   turns into backpressure on its bounded write queue. Nothing is buffered without a bound.
/// - **Shutdown** ends the stream cleanly: an empty DATA frame with END_STREAM, sent after
///   the closing handshake.
/// - **Reset**: a RST_STREAM from the peer (or a GOAWAY that drops the stream) is a read or
///   write error of kind `ConnectionReset` (`ConnectionAborted` for GOAWAY), as a TCP reset
///   is on a socket; the WebSocket reports it as a closure without a closing handshake
///   (1006).
#[derive(Debug)]
pub struct H2Stream {
    send: SendStream<Bytes>,
    recv: RecvStream,
    /// The part of the last DATA payload the reader has not taken yet.
    pending: Bytes,
    /// The peer ended its side (END_STREAM): reads return 0 from now on.
    recv_done: bool,
    /// Our side has been ended (END_STREAM sent) or reset.
    send_done: bool,
    /// The server's count of open WebSockets (one clone per stream, dropped with it).
    _counted: Option<Arc<()>>,
}

impl H2Stream {
    /// The stream made of `send` and `recv` (the two halves of one HTTP/2 stream, after the
    /// `200` was sent or received).
    pub fn new(send: SendStream<Bytes>, recv: RecvStream) -> Self {
        Self {
            send,
            recv,
            pending: Bytes::new(),
            recv_done: false,
            send_done: false,
            _counted: None,
        }
    }

    /// The stream, counted in `open` while it lives.
    pub(crate) fn counted(mut self, open: Arc<()>) -> Self {
        self._counted = Some(open);
        self
    }

    /// The HTTP/2 stream id (odd: opened by the client).
    pub fn stream_id(&self) -> u32 {
        self.send.stream_id().as_u32()
    }

    /// Aborts the stream with RST_STREAM carrying `reason` (e.g. `CANCEL`): the peer's
    /// WebSocket sees an abnormal closure (1006), as after a TCP reset.
    pub fn reset(&mut self, reason: Reason) {
        self.send.send_reset(reason);
        self.send_done = true;
    }

    /// Copies from the pending DATA payload into `buf` and gives the consumed bytes back to
    /// the peer's window.
    fn take_pending(&mut self, buf: &mut ReadBuf<'_>) {
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending[..n]);
        self.pending.advance(n);
        // The window credit returns as the application consumes (not on receipt): the peer
        // may have at most one window of unread bytes in flight. A stream that is gone
        // (reset) cannot take the credit back; the bytes copied are still delivered, and the
        // next read reports the reset.
        let _ = self.recv.flow_control().release_capacity(n);
    }
}

impl AsyncRead for H2Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                this.take_pending(buf);
                return Poll::Ready(Ok(()));
            }
            if this.recv_done || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => this.pending = data,
                Some(Err(e)) => {
                    this.recv_done = true;
                    return Poll::Ready(Err(to_io(e)));
                }
                None => {
                    this.recv_done = true;
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl H2Stream {
    /// Waits for send capacity for up to `want` bytes: how many may be sent now.
    fn poll_send_capacity(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        if self.send_done {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the HTTP/2 stream has ended",
            )));
        }
        let want = want.min(MAX_WRITE);
        // Asks for the window this write needs (not more: the request is the bound on what
        // the HTTP/2 layer holds for this stream).
        self.send.reserve_capacity(want);
        loop {
            let cap = self.send.capacity();
            if cap > 0 {
                return Poll::Ready(Ok(cap.min(want)));
            }
            match ready!(self.send.poll_capacity(cx)) {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
                None => {
                    // The stream is closed for sending: say why when it was a reset.
                    let e = match self.send.poll_reset(cx) {
                        Poll::Ready(Ok(reason)) => reset_error(reason),
                        _ => io::Error::new(io::ErrorKind::BrokenPipe, "HTTP/2 stream closed"),
                    };
                    return Poll::Ready(Err(e));
                }
            }
        }
    }
}

impl AsyncWrite for H2Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        let n = ready!(this.poll_send_capacity(cx, total))?;
        // The HTTP/2 layer takes owned buffers: one copy into a DATA payload (the slices of a
        // WebSocket frame, header and payload, become one DATA frame instead of two).
        let mut data = BytesMut::with_capacity(n);
        for b in bufs {
            let room = n - data.len();
            if room == 0 {
                break;
            }
            data.extend_from_slice(&b[..b.len().min(room)]);
        }
        this.send.send_data(data.freeze(), false).map_err(to_io)?;
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The connection's task writes the frames out; nothing is held here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.send_done {
            this.send_done = true;
            // END_STREAM on an empty DATA frame; a stream the peer reset already cannot take
            // it, which is no failure of the shutdown.
            let _ = this.send.send_data(Bytes::new(), true);
        }
        Poll::Ready(Ok(()))
    }
}

/// An HTTP/2 error as the I/O error a byte stream would have given: a stream reset is
/// `ConnectionReset`, a GOAWAY `ConnectionAborted`, an I/O error itself.
pub(crate) fn to_io(e: h2::Error) -> io::Error {
    if e.is_io() {
        return e
            .into_io()
            .unwrap_or_else(|| io::Error::other("HTTP/2 I/O error"));
    }
    if e.is_go_away() {
        return io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!("HTTP/2 connection going away: {e}"),
        );
    }
    match e.reason() {
        Some(reason) if e.is_reset() => reset_error(reason),
        _ => io::Error::other(format!("HTTP/2: {e}")),
    }
}

/// The error of a stream reset with `reason`.
fn reset_error(reason: Reason) -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        format!("HTTP/2 stream reset (RST_STREAM {reason})"),
    )
}
