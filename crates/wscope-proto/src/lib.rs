//! # wscope-proto: the sans-IO core of wscope
//!
//! Everything wscope does with the WebSocket protocol (RFC 6455) happens in this crate: the
//! client and server endpoints, the passive analyzer, the C API and `wscope parse` are thin
//! layers over it. It does no I/O, reads no clock and starts no thread; it is `#![no_std]` with
//! `alloc`.
//!
//! ```text
//!   application / analyzer output
//!   ─────────────────────────────────────────────────────────────────────
//!   connection (endpoint state machine)    observe (two-direction observer)
//!   handshake (request/response, key/accept, leftover bytes)
//!   message (continuation, control frames, UTF-8, size limits)   close
//!   decoder (streaming, payload unmasked in place)   frame   mask   utf8
//!   ─────────────────────────────────────────────────────────────────────
//!   bytes from a socket, a TLS session, a TCP reassembler or a file
//! ```
//!
//! ## The input contract
//!
//! The caller owns the bytes. A decoding call looks at the caller's unconsumed buffer, may
//! rewrite it in place (unmasking), and answers with a [`decoder::Step`]: how many bytes it
//! used and at most one event. Payload chunks in events are sub-slices of that buffer, valid
//! until the caller drops the used bytes. The caller drops `consumed` bytes and calls again until
//! the event is `None`, which means "need more input" (all bytes were used). Only a frame header
//! split across reads (at most 14 bytes) and control payloads (at most 125 bytes) are held
//! inside; data payloads are never buffered.
//!
//! ```
//! use wscope_proto::decoder::{DecoderConfig, MaskRule};
//! use wscope_proto::message::{AssemblerConfig, MessageDecoder, MessageEvent};
//! use wscope_proto::input::{Input, VecInput};
//!
//! let mut input = VecInput::new();
//! let mut dec = MessageDecoder::new(DecoderConfig::new(MaskRule::Required), AssemblerConfig::default());
//! let mut received = Vec::new();
//!
//! // Two reads that split a masked text frame "Hello" (RFC 6455 section 5.7) in the middle.
//! for read in [&[0x81, 0x85, 0x37, 0xfa, 0x21][..], &[0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58][..]] {
//!     input.extend_from_slice(read);
//!     loop {
//!         let step = dec.decode(input.buf_mut()).expect("valid stream");
//!         let consumed = step.consumed;
//!         let more = match step.event {
//!             Some(MessageEvent::Data { chunk, .. }) => { received.extend_from_slice(chunk); true }
//!             Some(_) => true,
//!             None => false,
//!         };
//!         input.consume(consumed);
//!         if !more { break; }
//!     }
//! }
//! assert_eq!(received, b"Hello");
//! ```
//!
//! ## Modules
//!
//! - [`frame`], [`mask`], [`close`], [`utf8`]: wire formats and the rules about them.
//! - [`decoder`]: the streaming frame decoder; [`decoder::frames`] iterates a whole buffer.
//! - [`message`]: message rules over the decoder, enforced (endpoints) or reported (observers).
//! - [`dissect`]: frames, payload chunks, messages and violations of one direction with their
//!   stream offsets, for tools that show a stream (`wscope parse`).
//! - [`handshake`]: the HTTP/1.1 upgrade, both sides.
//! - [`observe`]: the passive observer of both directions (analyzers, inspection).
//! - [`keepalive`]: the timer that pings a quiet peer and gives up on an unresponsive one
//!   ([`connection::Config::keepalive`]); [`idle`]: the timer that closes a connection on
//!   which nothing arrived for a while ([`connection::Config::idle_timeout`]).
//! - [`input`], [`time`], [`role`]: the caller-owned buffer, time as data, who is who.
//! - [`error`]: [`ProtocolError`] with the close code each violation implies.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod close;
pub mod connection;
pub mod decoder;
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod dissect;
pub mod error;
pub mod frame;
// The fuzzing harness: not part of the API (hidden from the docs, no stability promise).
#[doc(hidden)]
#[allow(
    clippy::exhaustive_structs,
    clippy::exhaustive_enums,
    reason = "the fuzzing harness is not API"
)]
pub mod fuzzing;
pub mod handshake;
pub mod idle;
pub mod input;
pub mod keepalive;
pub mod mask;
pub mod message;
pub mod observe;
pub mod role;
pub mod time;
pub mod utf8;

#[cfg(test)]
mod pair_tests;

pub use close::{CloseCode, CloseFrameRef, CloseReason};
pub use decoder::{DecoderConfig, FrameDecoder, FrameEvent, MaskRule, Step, Strictness};
pub use dissect::{Dissected, Dissector};
pub use error::ProtocolError;
pub use frame::{FrameHeader, OpCode};
pub use handshake::{
    ClientHandshake, Request, RequestBuilder, Response, ResponseBuilder, ServerHandshake,
    UpgradeError,
};
pub use input::{Input, SliceInput, VecInput};
pub use message::{AssemblerConfig, ControlFrame, GapOutcome, MessageDecoder, MessageEvent};
pub use role::{Direction, Role};
pub use time::{Duration, Instant};
