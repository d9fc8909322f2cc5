//! Replays the committed seeds of the fuzz targets whose bodies are in `wscope::fuzzing`
//! (`fuzz/seeds/partial_receive/`, `fuzz/seeds/direct_reads/`) through them, whole and
//! prefixes, so a normal `cargo test` checks what the fuzzers check on them.

use std::fs;

use wscope::fuzzing::{fuzz_direct_reads, fuzz_partial_receive};
use wscope_test_support::seeds::seed_files;

/// Runs every seed of `target` through `body`, whole and cut every `step` bytes.
fn replay(target: &str, body: fn(&[u8]), step: usize) {
    for f in seed_files(target, 8) {
        let data = fs::read(&f).expect("seed");
        for end in (0..data.len()).step_by(step).chain([data.len()]) {
            let outcome = std::panic::catch_unwind(|| body(&data[..end]));
            assert!(outcome.is_ok(), "{} (first {end} bytes)", f.display());
        }
    }
}

#[test]
fn partial_receive_seeds_replay() {
    replay("partial_receive", fuzz_partial_receive, 7);
}

#[test]
fn direct_reads_seeds_replay() {
    replay("direct_reads", fuzz_direct_reads, 1);
}
