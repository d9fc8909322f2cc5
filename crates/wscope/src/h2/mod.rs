//! WebSocket over HTTP/2 (RFC 8441), feature `http2`: a server that accepts extended CONNECT
//! and a client that opens several WebSockets on one HTTP/2 connection, over cleartext h2c
//! (prior knowledge) or TLS with ALPN `h2`.
//!
//! The HTTP/2 framing, HPACK and flow control are the `h2` crate's; the handshake rules are
//! the core's ([`wscope_proto::handshake::ExtendedConnect`], with the subprotocol and
//! permessage-deflate negotiation shared with HTTP/1.1); each stream is made a byte stream
//! ([`H2Stream`]) on which the same [`crate::tokio::WebSocketStream`] runs as over TCP. There
//! is no second WebSocket implementation: fragmentation, control frames, UTF-8, close codes,
//! limits, keepalive and deflate behave exactly as over HTTP/1.1.
//!
//! - Server: [`Http2Server::handshake`] (advertises `SETTINGS_ENABLE_CONNECT_PROTOCOL`),
//!   then [`Http2Server::accept`] / [`Http2Server::accept_with`] per stream.
//! - Client: [`Http2Client::connect`] (h2c or TLS+ALPN), then [`Http2Client::websocket`] per
//!   WebSocket.
//! - One port for both HTTP versions: [`sniff`] tells HTTP/2's client preface from an
//!   HTTP/1.1 request on a cleartext port; [`server_tls_with_alpn`] offers `h2` and
//!   `http/1.1` on a TLS port, and [`accept_tls`] tells which one the client chose.
//! - Closing a WebSocket ends its stream with END_STREAM after the closing handshake; a
//!   RST_STREAM is an abnormal closure (1006), reported as [`crate::Error::Io`] of kind
//!   `ConnectionReset`, as a TCP reset is.
//!
//! ```
//! use futures_util::{SinkExt, StreamExt};
//! use wscope::config::{ClientConfig, ServerConfig};
//! use wscope::h2::{Http2Client, Http2Server};
//! use wscope::{CloseCode, Message};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> wscope::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let port = listener.local_addr()?.port();
//! tokio::spawn(async move {
//!     let (tcp, _) = listener.accept().await?;
//!     let mut conn = Http2Server::handshake(tcp, &ServerConfig::default()).await?;
//!     while let Some(accepted) = conn.accept().await {
//!         let Ok((mut ws, _)) = accepted else { continue };
//!         tokio::spawn(async move {
//!             while let Some(Ok(msg)) = ws.next().await {
//!                 if msg.is_data() && ws.send(msg).await.is_err() {
//!                     break;
//!                 }
//!             }
//!         });
//!     }
//!     Ok::<_, wscope::Error>(())
//! });
//!
//! let cfg = ClientConfig::new("127.0.0.1", port);
//! let client = Http2Client::connect(&cfg).await?;
//! let (mut one, _) = client.websocket(&cfg).await?;
//! let (mut two, _) = client.websocket(&cfg).await?; // a second stream, same connection
//! one.send(Message::text("one")).await?;
//! two.send(Message::text("two")).await?;
//! assert_eq!(two.next().await.transpose()?, Some(Message::text("two")));
//! assert_eq!(one.next().await.transpose()?, Some(Message::text("one")));
//! one.close(CloseCode::NORMAL, "done").await?;
//! while let Some(msg) = one.next().await {
//!     msg?; // the close reply, then the end of the stream (END_STREAM)
//! }
//! # Ok(())
//! # }
//! ```

mod client;
mod server;
mod stream;

use core::pin::Pin;
use core::task::{Context, Poll};
use std::io::{self, IoSlice};
#[cfg(feature = "rustls")]
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

#[cfg(feature = "rustls")]
use crate::tokio::AsyncMaybeTlsStream;

pub use client::Http2Client;
pub use server::{H2WebSocket, Http2Server};
pub use stream::H2Stream;

/// The ALPN protocol id of HTTP/2 over TLS (RFC 9113 section 3.2).
pub const ALPN_H2: &[u8] = b"h2";
/// The ALPN protocol id of HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";
/// The client connection preface that opens every HTTP/2 connection (RFC 9113 section 3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// HTTP/2 settings of a connection: window sizes and stream counts. Every field bounds
/// memory: a peer can make us buffer at most one stream window of unread bytes per stream,
/// and at most the connection window in all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// The receive window of each stream (SETTINGS_INITIAL_WINDOW_SIZE), bytes.
    pub stream_window: u32,
    /// The receive window of the whole connection, bytes.
    pub connection_window: u32,
    /// How many streams the peer may open at once (server side;
    /// SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_streams: u32,
    /// The most bytes the HTTP/2 layer holds for sending per stream.
    pub max_send_buffer: usize,
    /// The largest DATA frame payload we accept (SETTINGS_MAX_FRAME_SIZE; 16 KiB to
    /// 16 MiB - 1): larger frames mean fewer frame headers and wake-ups per message.
    pub max_frame_size: u32,
}

impl Default for Settings {
    /// 1 MiB per stream, 16 MiB per connection, 256 streams, 256 KiB of send buffer, frames
    /// up to 256 KiB.
    fn default() -> Self {
        Self {
            stream_window: 1 << 20,
            connection_window: 16 << 20,
            max_concurrent_streams: 256,
            max_send_buffer: 256 << 10,
            max_frame_size: 256 << 10,
        }
    }
}

/// A server TLS configuration that offers ALPN `h2` and `http/1.1` (in that order of
/// preference), for one port that serves both: [`crate::tokio::AsyncMaybeTlsStream`] or the
/// rustls connection tells which one the client chose.
#[cfg(feature = "rustls")]
pub fn server_tls_with_alpn(tls: &Arc<rustls::ServerConfig>) -> Arc<rustls::ServerConfig> {
    let mut cfg = (**tls).clone();
    cfg.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()];
    Arc::new(cfg)
}

/// The server side of TLS on a port that serves both HTTP versions: the handshake with
/// `tls` (made by [`server_tls_with_alpn`]), and the version the client chose by ALPN
/// (`h2`: [`HttpVersion::Http2`]; `http/1.1` or no ALPN: [`HttpVersion::Http1`]).
///
/// # Errors
///
/// The TLS handshake's failure ([`crate::Error::Io`], as from `tokio-rustls`).
#[cfg(feature = "rustls")]
pub async fn accept_tls<S>(
    io: S,
    tls: Arc<rustls::ServerConfig>,
) -> crate::Result<(HttpVersion, AsyncMaybeTlsStream<S>)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let s = tokio_rustls::TlsAcceptor::from(tls).accept(io).await?;
    let version = if s.get_ref().1.alpn_protocol() == Some(ALPN_H2) {
        HttpVersion::Http2
    } else {
        HttpVersion::Http1
    };
    Ok((version, AsyncMaybeTlsStream::ServerTls(Box::new(s))))
}

/// The HTTP version a connection speaks, as told by its first bytes or by ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpVersion {
    /// An HTTP/1.x request (or anything that is not the HTTP/2 preface).
    Http1,
    /// The HTTP/2 client preface (prior knowledge, h2c).
    Http2,
}

/// Reads the first bytes of a cleartext connection until they tell HTTP/2's client preface
/// ([`PREFACE`]) from anything else (an HTTP/1.1 request differs at its first byte), and
/// gives the stream back with those bytes to be read again ([`Prefixed`]). At most 24 bytes
/// are read; a connection that ends before it is told is [`HttpVersion::Http1`] (whose
/// handshake then reports the end).
///
/// # Errors
///
/// The read's I/O error.
pub async fn sniff<S: AsyncRead + Unpin>(mut io: S) -> io::Result<(HttpVersion, Prefixed<S>)> {
    let mut buf = [0u8; PREFACE.len()];
    let mut len = 0;
    let version = loop {
        if len == PREFACE.len() {
            break HttpVersion::Http2;
        }
        let n = io.read(&mut buf[len..]).await?;
        if n == 0 {
            break HttpVersion::Http1;
        }
        len += n;
        if buf[..len] != PREFACE[..len] {
            break HttpVersion::Http1;
        }
    };
    Ok((version, Prefixed::new(buf[..len].to_vec(), io)))
}

/// A stream of which some bytes were read already: they are read again first, then the
/// stream's own. Writes go straight to the stream.
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    io: S,
}

impl<S> Prefixed<S> {
    /// `io`, whose next reads return `prefix` first.
    pub fn new(prefix: Vec<u8>, io: S) -> Self {
        Self { prefix, pos: 0, io }
    }

    /// The stream inside.
    pub fn get_ref(&self) -> &S {
        &self.io
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let rest = this.prefix.get(this.pos..).unwrap_or_default();
        if !rest.is_empty() {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// A reader that returns its chunks one read at a time.
    struct Pieces(VecDeque<Vec<u8>>);

    impl AsyncRead for Pieces {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            if let Some(mut chunk) = this.0.pop_front() {
                let n = chunk.len().min(buf.remaining());
                buf.put_slice(&chunk[..n]);
                if n < chunk.len() {
                    this.0.push_front(chunk.split_off(n));
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    fn sniffed(bytes: &[u8], pieces: usize) -> (HttpVersion, Vec<u8>) {
        let step = bytes.len().div_ceil(pieces).max(1);
        let reader = Pieces(bytes.chunks(step).map(<[u8]>::to_vec).collect());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let (v, mut p) = sniff(reader).await.unwrap();
            let mut all = Vec::new();
            p.read_to_end(&mut all).await.unwrap();
            (v, all)
        })
    }

    #[test]
    fn the_preface_is_told_from_http1_in_any_split_and_nothing_is_lost() {
        let mut h2 = PREFACE.to_vec();
        h2.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // an empty SETTINGS frame
        let h1 = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        for pieces in [1, 2, 5, 24, 33] {
            assert_eq!(sniffed(&h2, pieces), (HttpVersion::Http2, h2.clone()));
            assert_eq!(sniffed(&h1, pieces), (HttpVersion::Http1, h1.clone()));
        }
        // A prefix of the preface, then the end: not HTTP/2.
        assert_eq!(
            sniffed(b"PRI * HT", 3),
            (HttpVersion::Http1, b"PRI * HT".to_vec())
        );
        assert_eq!(sniffed(b"", 1), (HttpVersion::Http1, Vec::new()));
        // Differs late: "PRI * HTTP/1.1".
        let late = b"PRI * HTTP/1.1\r\n\r\n".to_vec();
        assert_eq!(sniffed(&late, 4), (HttpVersion::Http1, late.clone()));
    }
}
