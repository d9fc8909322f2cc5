//! Test scaffolding shared by the wscope crates (`publish = false`; a dev-dependency only).
//!
//! - [`Rng`]: one small seeded generator, so every run sees the same "random" inputs.
//! - [`CountingAlloc`]: a global allocator that counts the bytes live, for memory checks.
//! - [`wire`]: WebSocket frame and handshake bytes, written out by hand (independent of the
//!   core's own encoder, which the tests check).
//! - `capture` (feature `capture`): writing pcap/pcapng files and TCP packets to put in them.
//! - `traffic` (feature `capture`): a generated capture of many connections with mixed fates.
//! - [`corpus`]: where the shared corpus captures are, and the rule for when they are missing:
//!   skip with a note locally, fail under CI.
//!
//! The core's unit tests use this crate too (a dev-dependency cycle): that links a second copy
//! of `wscope-proto`, so nothing here takes or returns the core's types except in
//! `capture`, which the core does not use.
#![allow(
    clippy::exhaustive_structs,
    clippy::exhaustive_enums,
    reason = "test scaffolding, never published"
)]

mod alloc;
#[cfg(feature = "capture")]
pub mod capture;
pub mod corpus;
mod rng;
pub mod seeds;
#[cfg(feature = "capture")]
pub mod traffic;
pub mod wire;

pub use alloc::CountingAlloc;
pub use rng::Rng;
