//! permessage-deflate (RFC 7692), feature `deflate` (needs `std`: it uses `zlib-rs`), in three
//! layers:
//!
//! - [`negotiate`]: the parameters of the handshake: offers and responses ([`Offer`]), what an
//!   endpoint wants ([`DeflateConfig`]) and what both sides agreed on ([`DeflateParams`]).
//! - [`codec`]: the zlib compressor ([`Deflater`]) and decompressor ([`Inflater`]) of one
//!   direction, their lazily allocated contexts and the process-wide pool of contexts given
//!   up between messages without context takeover.
//! - [`message`]: the message layer ([`MessageInflater`]): inflation within the message cap
//!   and UTF-8 validation of inflated text, with violations as [`ProtocolError`]s. The
//!   endpoint ([`Connection`]) and the observer ([`Observer`]) both receive through it, so
//!   they cannot disagree about a compressed message.
//!
//! ```
//! use wscope_proto::deflate::{Deflater, Inflater};
//!
//! let mut tx = Deflater::new(6, 15, false);
//! let mut rx = Inflater::new(false);
//! for text in ["hello hello hello", "hello again"] {
//!     let mut wire = Vec::new();
//!     tx.compress(text.as_bytes(), true, &mut wire);
//!     let n = rx.inflate(&wire, true, 1 << 20).unwrap();
//!     assert_eq!(&rx.output()[..n], text.as_bytes());
//! }
//! ```
//!
//! [`ProtocolError`]: crate::ProtocolError
//! [`Connection`]: crate::connection::Connection
//! [`Observer`]: crate::observe::Observer

pub mod codec;
pub mod message;
pub mod negotiate;

pub use codec::{Deflater, InflateError, Inflater, DEFAULT_MEM_LEVEL, TAIL};
pub use message::MessageInflater;
pub use negotiate::{DeflateConfig, DeflateParams, NegotiationError, Offer, EXTENSION_NAME};
