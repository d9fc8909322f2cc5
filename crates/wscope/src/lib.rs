//! # wscope: WebSocket (RFC 6455) client and server endpoints
//!
//! Thin drivers around the sans-IO core [`wscope_proto`] (re-exported as [`proto`]): every
//! protocol rule (masking, close codes, UTF-8, size limits, control frames, the closing
//! handshake, the opening handshake) is the core's; this crate reads and writes bytes, reads
//! the clock, and owns buffers.
//!
//! ```text
//!   blocking::WebSocket (std::net)      tokio::WebSocketStream (Stream + Sink)     simple (websock_*)
//!   ─────────────────────────────────────────────────────────────────────────────────────────────
//!   session: read into VecInput::spare → Connection::recv until None → poll_transmit → write queue
//!   handshake glue (core machines)  ·  TLS (rustls + ring)  ·  HTTP CONNECT proxy  ·  ws:// URLs
//! ```
//!
//! - **Blocking**: [`blocking::connect`] / [`blocking::connect_with`] (a [`config::ClientConfig`]
//!   mirroring the embedded SDK's `websock_config_t`), [`blocking::Server`] /
//!   [`blocking::accept_with`] with a callback that accepts (subprotocol, headers) or rejects
//!   (status). Whole messages ([`blocking::WebSocket::read`]) or pieces of frames with a
//!   timeout ([`blocking::WebSocket::recv_partial`], the embedded-SDK-style API's `websock_recv`).
//! - **tokio** (feature `tokio`, on by default): [`tokio::connect_async`],
//!   [`tokio::accept_async`] over any `AsyncRead + AsyncWrite + Unpin` stream,
//!   [`tokio::accept_with`] (the application decides), [`tokio::accept_tls`];
//!   [`tokio::WebSocketStream`] is a
//!   `Stream` and a `Sink` of [`Message`]s, splittable with `StreamExt::split`, with bounded
//!   write queues (backpressure) and replies coalesced into one write per drained read.
//! - **io_uring** (feature `io-uring`, Linux): [`uring::UringServer`], a single-threaded,
//!   completion-based server that calls a [`uring::Service`] per message and submits the
//!   I/O of all its connections with one system call per loop iteration (TLS through the
//!   same rustls configuration).
//! - **HTTP/2** (feature `http2`): WebSocket over HTTP/2 (RFC 8441), [`h2::Http2Server`]
//!   and [`h2::Http2Client`], several WebSockets per connection, h2c or TLS with ALPN `h2`,
//!   the same [`tokio::WebSocketStream`] on each stream.
//! - **TLS**: [`tls::TlsConfig`] (webpki roots by default, custom CA, client certificates,
//!   SNI, verification on unless [`tls::TlsConfig::insecure`]); servers load PEM with
//!   [`tls::server_config_from_pem`], or [`tls::server_config_with_client_auth_pem`] to
//!   require client certificates (mutual TLS).
//! - **Errors**: one [`Error`] enum to branch on; a close from the peer is a
//!   [`Message::Close`], not an error.
//!
//! ## Cargo features
//!
//! The defaults (`tokio`, `blocking`, `rustls`, `deflate`) are what the `wscope` command
//! uses. With `default-features = false` pick what you need; a plain `ws://` blocking client
//! is `features = ["blocking"]` and builds without TLS (rustls, ring) or zlib.
//!
//! | feature | what it turns on |
//! |---|---|
//! | `blocking` | the std::net driver `blocking` and the embedded-SDK-style facade `simple` |
//! | `tokio` | the async driver `tokio` (`connect_async`, `accept_async`, Stream + Sink) |
//! | `rustls` | TLS: `wss://` URLs, `tls`, `tokio::accept_tls`, `ClientConfig::tls`, `ServerConfig::tls` (rustls with ring, webpki-roots); without it a `wss://` client fails with [`url::UrlError::TlsDisabled`] |
//! | `deflate` | permessage-deflate (RFC 7692): `ClientConfig::deflate`, `ServerConfig::deflate` (zlib-rs) |
//! | `hyper` | `hyper::upgrade` for hyper 1.x servers (implies `tokio`) |
//! | `axum` | `axum::WebSocketUpgrade`, an axum 0.8 extractor (implies `hyper`) |
//! | `io-uring` | `uring::UringServer`, the io_uring server driver (Linux) |
//!
//! ## Blocking client and server
//!
//! ```
//! # #[cfg(feature = "blocking")]
//! # fn main() -> wscope::Result<()> {
//! use wscope::blocking::{self, Server};
//! use wscope::config::ServerConfig;
//! use wscope::{CloseCode, Message};
//!
//! let server = Server::bind("127.0.0.1:0", ServerConfig::default())?;
//! let url = format!("ws://{}/echo", server.local_addr()?);
//! let echo = std::thread::spawn(move || -> wscope::Result<()> {
//!     let mut ws = server.accept()?;
//!     loop {
//!         match ws.read() {
//!             Ok(msg) if msg.is_data() => ws.send(msg)?,
//!             Ok(_) => {}                              // pings are answered already
//!             Err(wscope::Error::ConnectionClosed) => return Ok(()), // closing handshake done
//!             Err(e) => return Err(e),
//!         }
//!     }
//! });
//!
//! let (mut ws, _response) = blocking::connect(&url)?;
//! ws.send(Message::text("hello"))?;
//! assert_eq!(ws.read()?, Message::text("hello"));
//! ws.close(CloseCode::NORMAL, "bye")?;
//! echo.join().unwrap()?;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "blocking"))]
//! # fn main() {}
//! ```
//!
//! ## tokio client and server
//!
//! ```
//! # #[cfg(feature = "tokio")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> wscope::Result<()> {
//! use futures_util::{SinkExt, StreamExt};
//! use wscope::Message;
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("ws://{}/", listener.local_addr()?);
//! // Server: echo every text and binary message.
//! tokio::spawn(async move {
//!     let (tcp, _) = listener.accept().await?;
//!     let mut ws = wscope::tokio::accept_async(tcp).await?;
//!     while let Some(msg) = ws.next().await {
//!         let msg = msg?;
//!         if msg.is_data() {
//!             ws.send(msg).await?;
//!         }
//!     }
//!     Ok::<_, wscope::Error>(())
//! });
//!
//! // Client.
//! let (mut ws, _response) = wscope::tokio::connect_async(&url).await?;
//! ws.send(Message::binary(vec![1, 2, 3])).await?;
//! assert_eq!(ws.next().await.transpose()?, Some(Message::binary(vec![1, 2, 3])));
//! ws.close(wscope::CloseCode::NORMAL, "done").await?;
//! while let Some(msg) = ws.next().await {
//!     msg?; // the server's close reply, then the end of the stream
//! }
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "tokio"))]
//! # fn main() {}
//! ```

// Without a driver (`blocking` or `tokio`) the handshake and session glue has no caller: such
// a build only has the configuration, URL and error types (and `tls` with `rustls`).
#![cfg_attr(not(any(feature = "blocking", feature = "tokio")), allow(dead_code))]
// The overview above links the optional drivers (`uring`, `h2`); a documentation build
// without them would report those links as broken. Builds with every feature (CI, docs.rs)
// still check every link.
#![cfg_attr(
    not(all(feature = "io-uring", feature = "http2")),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "blocking")]
pub mod blocking;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "http2")]
pub mod h2;
pub mod handshake;
#[cfg(feature = "hyper")]
pub mod hyper;
pub mod limits;
#[allow(
    clippy::exhaustive_enums,
    clippy::exhaustive_structs,
    reason = "closed: `Message` has the five kinds of RFC 6455 messages (matched exhaustively, as tungstenite's), `DataKind` is text or binary, `CloseFrame` a code and a reason, `Partial` and `FrameInfo` the pieces of a partial receive"
)]
pub mod message;
pub mod prepared;
pub mod proxy;
mod session;
#[cfg(feature = "blocking")]
pub mod simple;
pub mod stream;
#[cfg(feature = "rustls")]
pub mod tls;
#[cfg(feature = "tokio")]
pub mod tokio;
#[cfg(all(target_os = "linux", feature = "io-uring"))]
pub mod uring;
pub mod url;

pub use bytes::Bytes;
pub use config::{ClientConfig, ServerConfig, WsConfig};
#[cfg(feature = "deflate")]
pub use config::{DeflateConfig, DeflateOptions};
pub use error::{Error, HandshakeError, Result};
pub use message::{CloseFrame, DataKind, FrameInfo, Message, Partial, Utf8Bytes};
pub use prepared::PreparedMessage;
/// The sans-IO core this crate drives.
pub use wscope_proto as proto;
pub use wscope_proto::{CloseCode, OpCode, Role};
