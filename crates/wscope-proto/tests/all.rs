//! The integration tests of `wscope-proto`, in one binary to keep link time down (2 cores).
//!
//! - `dissect`: the committed sample of raw frames (`samples/frames.bin`) matches its builder and
//!   dissects as described.
//! - `rfc6455`: the RFC's own example frames (section 5.7) as golden tests.
//! - `deflate_diff` (feature `deflate`): an endpoint and the observer agree on every compressed
//!   message (proptest of `wscope_proto::fuzzing::check_deflate_agreement`).
//! - `props`: property tests (proptest) of every layer against a simple model.
//! - `seeds`: replays the committed fuzz seeds through `wscope_proto::fuzzing`.
//! - `resync`: recovery of the observer after a lost segment in tunnelled TLS.

#[path = "all/common.rs"]
mod common;
#[cfg(feature = "deflate")]
#[path = "all/deflate_diff.rs"]
mod deflate_diff;
#[path = "all/dissect.rs"]
mod dissect;
#[path = "all/props.rs"]
mod props;
#[path = "all/resync.rs"]
mod resync;
#[path = "all/rfc6455.rs"]
mod rfc6455;
#[path = "all/seeds.rs"]
mod seeds;
