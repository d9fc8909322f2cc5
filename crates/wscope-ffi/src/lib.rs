//! The `websock.h` C API: the embedded SDK's `websock_*` WebSocket client functions (the
//! InnoPhase Talaria TWO SDK) with libwebsockets' close status values and
//! `websock_close_reason`, over [`wscope::simple`] (the same `websock_*` semantics for Rust).
//!
//! A C program written for the SDK's header compiles unchanged against
//! `include/websock.h` (generated from this crate with cbindgen) and then behaves
//! correctly: random handshake key, checked `Sec-WebSocket-Accept`, `time_out` bounding the
//! whole opening, pings answered with their payload, closes answered and sent. Every
//! protocol rule lives in `wscope` / `wscope-proto`, and the `websock_*` semantics in
//! [`wscope::simple::Websock`], which a handle wraps: this crate only converts C arguments,
//! keeps the last error as text, and catches panics.
//!
//! One rule for pings, the SDK's ("`websock_recv` internally handles websocket close and
//! ping messages"), decided in [`wscope::simple::Websock::recv`]: a ping is answered with its
//! payload and never returned; pongs are returned (opcode 10); the server's close is
//! answered and returned once (opcode 8). The callback mode reports the same frames.
//!
//! The crate is split by job: `types` (the C structures and constants), `lws`
//! (libwebsockets' close statuses, tied to [`wscope::CloseCode`]), `error` (the last error
//! and the `ffi_fn!` guard), `config` (C arguments to [`wscope::simple::WebsockConfig`]),
//! `api` (open, send, receive, close), `events` (callback mode) and `settings` (write
//! timeout, close reason).
//!
//! This crate holds most of the workspace's `unsafe` code (C pointers in, a boxed handle
//! out); the rest is in `wscope-proto`'s mask (the AVX2 dispatch) and `wscope`'s io_uring
//! driver. Every entry point runs inside [`std::panic::catch_unwind`]: a panic becomes the
//! function's error return (`NULL` or `-1`) with "internal error" as the last error, never
//! an unwind into C.
//!
//! # Threads
//!
//! A handle may be used from several threads: one thread may block in [`websock_recv`]
//! while others call the send functions, with messages of any size: the connection is a
//! [`SharedWebSocket`] whose receive reads while a send writes (neither holds what the other
//! needs), so a server that echoes a large message while it reads it is served. Two threads
//! must not call [`websock_recv`] on the same handle at once (pieces of one frame would be
//! split between them), and [`websock_close`] must not run while any other call on the same
//! handle is in progress: it frees the handle.
//!
//! # Deadlines
//!
//! Every call returns by a bound: [`websock_open`] within `time_out` (name lookup, TCP, TLS
//! and the HTTP upgrade together); [`websock_recv`] by its timeout whatever the server sends
//! (a flood of pings included: pongs that cannot be written at once wait in a bounded
//! queue); a send fails when no byte could be written for the write timeout (`time_out`, or
//! [`websock_set_write_timeout`]); [`websock_close`] within [`WEBSOCK_CLOSE_TIMEOUT`]
//! seconds (plus, in callback mode, the time the handler takes to return).
//! [`websock_last_error`] is per thread. In callback mode ([`websock_set_event_handler`]) the
//! handler runs on a thread of the handle's own; it may send, and [`websock_close`] stops and
//! joins that thread before freeing the handle (so it must not be called from the handler).
//!
//! [`SharedWebSocket`]: wscope::blocking::SharedWebSocket
#![allow(unsafe_code)] // C pointers: every block has its SAFETY comment
#![allow(non_camel_case_types)] // the C names of the SDK's header

// `error` first: the others use its `ffi_fn!` macro. (The generated header lists the
// functions module by module, in this order.)
#[macro_use]
mod error;
mod api;
mod config;
mod events;
#[allow(
    clippy::exhaustive_enums,
    reason = "closed: `lws_close_status` mirrors the C enum of websock.h (ABI)"
)]
mod lws;
mod settings;
#[allow(
    clippy::exhaustive_enums,
    clippy::exhaustive_structs,
    reason = "closed: `#[repr(C)]` mirrors of websock.h's types, fixed by the C ABI"
)]
mod types;

pub use api::{
    websock_close, websock_open, websock_recv, websock_send_binary, websock_send_ping,
    websock_send_pong, websock_send_text,
};
pub use error::websock_last_error;
pub use events::websock_set_event_handler;
pub use lws::lws_close_status;
pub use settings::{websock_close_reason, websock_set_write_timeout};
pub use types::*;
