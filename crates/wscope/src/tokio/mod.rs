//! The tokio driver: [`WebSocketStream`] (`Stream` + `Sink` of [`crate::Message`]s),
//! [`connect_async`] and [`accept_async`].

mod handshake;
mod stream;
mod tcp;
mod tls;

pub use handshake::{
    accept_async, accept_hdr_async, accept_with_config, client_handshake, connect_async,
    connect_with, connect_with_response, server_handshake, ClientStream, ServerStream,
};
pub use stream::{DataKind, WebSocketStream};
pub use tls::MaybeTlsStream;
