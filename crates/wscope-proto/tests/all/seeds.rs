//! Replays every committed fuzz seed (`fuzz/seeds/<target>/*`) through its fuzz body, so a
//! normal `cargo test` checks the invariants the fuzzers check, on the cases we wrote by hand
//! and on any crash input committed as a regression seed.

use std::fs;
use std::path::{Path, PathBuf};

use wscope_proto::fuzzing;

/// A fuzz body: arbitrary bytes in, panics on a broken invariant.
type FuzzBody = fn(&[u8]);

/// The fuzz body of each target, by the name of its seed folder (= its `fuzz_targets/` file).
///
/// Handshake and observer targets get a row here when their bodies land in
/// `wscope_proto::fuzzing`; a seed folder without a row fails [`every_seed_folder_has_a_body`].
const TARGETS: &[(&str, FuzzBody)] = &[
    ("close_payload", fuzzing::fuzz_close_payload),
    ("connection", fuzzing::fuzz_connection),
    ("deflate_diff", fuzzing::fuzz_deflate_diff),
    ("dissect", fuzzing::fuzz_dissector),
    ("frame_decoder", fuzzing::fuzz_frame_decoder),
    ("frames_iter", fuzzing::fuzz_frames_iter),
    ("handshake_request", fuzzing::fuzz_handshake_request),
    ("handshake_response", fuzzing::fuzz_handshake_response),
    ("message", fuzzing::fuzz_message_decoder),
    ("observer", fuzzing::fuzz_observer),
    ("utf8", fuzzing::fuzz_utf8),
];

/// Seed folders whose bodies live in another crate, which replays them (`capture`,
/// `segments`, `tls` and `http2`: `wscope_inspect::fuzzing`, replayed by
/// `crates/wscope-inspect/tests/all/seeds.rs`, `tests/all/tls.rs` and `tests/all/http2.rs`;
/// `partial_receive` and
/// `direct_reads`: `wscope::fuzzing`, replayed by `crates/wscope/tests/all/seeds.rs`).
const OTHER_CRATES: &[&str] = &[
    "capture",
    "direct_reads",
    "http2",
    "partial_receive",
    "segments",
    "tls",
];

fn seeds_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds")
}

fn seed_files(target: &str) -> Vec<PathBuf> {
    let dir = seeds_root().join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable seed folder").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_folder_has_a_body() {
    let mut folders: Vec<String> = fs::read_dir(seeds_root())
        .expect("fuzz/seeds exists beside the crates")
        .map(|entry| entry.expect("readable").path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    folders.retain(|f| !OTHER_CRATES.contains(&f.as_str()));
    folders.sort();
    let known: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        folders, known,
        "fuzz/seeds/ folders and the TARGETS table differ"
    );
    // Each target file calls the body of the same name.
    for (name, _) in TARGETS {
        let target = seeds_root().join(format!("../fuzz_targets/{name}.rs"));
        let text =
            fs::read_to_string(&target).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        assert!(text.contains("wscope_proto::fuzzing::fuzz_"), "{name}");
    }
}

#[test]
fn replay_all_seeds() {
    let mut total = 0;
    for (target, body) in TARGETS {
        let files = seed_files(target);
        assert!(files.len() >= 5, "{target}: only {} seeds", files.len());
        for file in files {
            let data = fs::read(&file).expect("readable seed");
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(
                outcome.is_ok(),
                "seed {} failed its fuzz body",
                file.display()
            );
            total += 1;
        }
    }
    assert!(total >= 60, "only {total} seeds replayed");
}

/// The bodies also hold on every prefix of every seed (a cheap extra corpus: truncation is
/// where streaming decoders go wrong).
#[test]
fn replay_seed_prefixes() {
    for (target, body) in TARGETS {
        for file in seed_files(target) {
            let data = fs::read(&file).expect("readable seed");
            for end in 0..data.len().min(300) {
                let outcome = std::panic::catch_unwind(|| body(&data[..end]));
                assert!(outcome.is_ok(), "prefix {end} of {} failed", file.display());
            }
        }
    }
}
