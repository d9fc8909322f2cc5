//! Replays the committed seeds of the `capture` fuzz target (`fuzz/seeds/capture/`) through
//! its body, and checks that they are real conversations (so the fuzzer starts from traffic
//! that reaches the WebSocket layer, IP fragments included).

use std::fs;
use std::io::Cursor;

use wscope_inspect::analyzer::{Analyzer, AnalyzerConfig};
use wscope_inspect::capture::Capture;
use wscope_inspect::event::{Event, EventKind};
use wscope_inspect::fuzzing::{fuzz_capture, fuzz_segments};
use wscope_test_support::seeds::seed_files;

#[test]
fn capture_seeds_replay_and_reach_websocket() {
    for f in seed_files("capture", 5) {
        let data = fs::read(&f).expect("seed");
        fuzz_capture(&data);
        let mut cap = Capture::from_reader(Cursor::new(data[1..].to_vec()), "seed");
        let mut messages = 0;
        let stats = Analyzer::new(AnalyzerConfig::default())
            .run(&mut cap, &mut |ev: &Event<'_>| {
                if matches!(ev.kind, EventKind::Message { .. }) {
                    messages += 1;
                }
            })
            .expect("a whole capture");
        assert!(stats.sessions >= 1, "{}", f.display());
        assert!(messages >= 2, "{}: {messages} messages", f.display());
        if f.to_string_lossy().contains("frag") {
            assert!(stats.decode.reassembled >= 1, "{}", f.display());
        }
    }
}

/// The `segments` seeds (`fuzz/seeds/segments/`) through `fuzz_segments`, whole and cut.
#[test]
fn segments_seeds_replay() {
    for f in seed_files("segments", 8) {
        let data = fs::read(&f).expect("seed");
        for end in (0..data.len()).step_by(5).chain([data.len()]) {
            let outcome = std::panic::catch_unwind(|| fuzz_segments(&data[..end]));
            assert!(outcome.is_ok(), "{} (first {end} bytes)", f.display());
        }
    }
}
