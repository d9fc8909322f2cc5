//! The integration tests of `wscope-proto`, in one binary to keep link time down (2 cores).
//!
//! - `rfc6455`: the RFC's own example frames (section 5.7) as golden tests.
//! - `props`: property tests (proptest) of every layer against a simple model.
//! - `seeds`: replays the committed fuzz seeds through `wscope_proto::fuzzing`.
//! - `resync`: recovery of the observer after a lost segment in tunnelled TLS.
//! - `sample_frames`: the shipped sample capture matches its generator and decodes as described.

#[path = "all/common.rs"]
mod common;
#[path = "all/props.rs"]
mod props;
#[path = "all/resync.rs"]
mod resync;
#[path = "all/rfc6455.rs"]
mod rfc6455;
#[path = "all/sample_frames.rs"]
mod sample_frames;
#[path = "all/seeds.rs"]
mod seeds;
