//! The tokio driver: [`WebSocketStream`] (`Stream` + `Sink` of [`crate::Message`]s),
//! [`connect_async`] and [`accept_async`].
//!
//! Every handshake runs over any `AsyncRead + AsyncWrite + Unpin` stream: [`accept_async`],
//! [`accept_with_config`], [`accept_with`] (the application decides), [`server_handshake`]
//! (no timeout) and [`client_handshake`]; [`accept_tls`] puts rustls in front when the
//! configuration asks for it. A stream whose handshake happened elsewhere runs with
//! [`WebSocketStream::from_raw_socket`] or [`WebSocketStream::from_partially_read`].
//!
//! A server that sends the same messages to many connections (a room, a feed) puts them in a
//! [`Broadcast`] group: [`Broadcast::publish`] queues one [`crate::PreparedMessage`] for every
//! member, and each connection's task runs [`WebSocketStream::next_with`], which reads the
//! connection and writes what was published.

mod broadcast;
mod handshake;
mod stream;
mod tcp;
mod tls;

pub use broadcast::{Broadcast, Member};
pub use handshake::{
    accept_async, accept_with, accept_with_config, client_handshake, connect_async, connect_with,
    connect_with_response, server_handshake, ClientStream, ServerStream,
};
#[cfg(feature = "rustls")]
pub use handshake::{accept_tls, accept_tls_with};
pub use stream::{DataKind, WebSocketStream};
pub use tls::AsyncMaybeTlsStream;
