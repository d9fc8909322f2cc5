//! Replays the committed seeds of the `partial_receive` fuzz target
//! (`fuzz/seeds/partial_receive/`) through its body, whole and every prefix, so a normal
//! `cargo test` checks what the fuzzer checks on them.

use std::fs;
use std::path::Path;

use wscope::fuzzing::fuzz_partial_receive;

#[test]
fn partial_receive_seeds_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/partial_receive");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("fuzz/seeds/partial_receive")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{} seeds", files.len());
    for f in files {
        let data = fs::read(&f).expect("seed");
        for end in (0..data.len()).step_by(7).chain([data.len()]) {
            let outcome = std::panic::catch_unwind(|| fuzz_partial_receive(&data[..end]));
            assert!(outcome.is_ok(), "{} (first {end} bytes)", f.display());
        }
    }
}
