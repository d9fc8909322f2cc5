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
    for f in seed_files("capture", 7) {
        let data = fs::read(&f).expect("seed");
        fuzz_capture(&data);
        // Control bit 5: the same output from workers reading the file in chunks of each
        // length the control byte chooses (bits 6 and 7; not with bit 4, one thread).
        for k in 0..4u8 {
            let mut d = data.clone();
            d[0] = (d[0] & 0x0F) | 0x20 | k << 6;
            fuzz_capture(&d);
        }
        let mut cap = Capture::from_reader(Cursor::new(data[1..].to_vec()), "seed");
        let mut messages = 0;
        // Control bit 4: TLS connections wait for secrets that come later (as fuzz_capture).
        let stats = Analyzer::new(AnalyzerConfig::default())
            .keys_may_follow(data[0] & 0x10 != 0)
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

/// The bundled conversation with every `Sec-WebSocket-Accept` made wrong (same length): the
/// client must reject each `101`, so no session follows. Frames are still reported (as Zeek
/// reports them) but not counted, and the `capture` body's invariants hold for it (the fuzzer
/// found the body counting those frames against the session statistics).
#[test]
fn a_rejected_upgrade_reports_frames_that_the_statistics_leave_out() {
    let mut data = fs::read(seed_files("capture", 5)[0].with_file_name("sample-00")).expect("seed");
    let key = b"Sec-WebSocket-Accept: ";
    let mut wrong = 0;
    let mut at = 0;
    while let Some(i) = data[at..].windows(key.len()).position(|w| w == key) {
        let start = at + i + key.len();
        // The 27 base64 characters of a SHA-1 before its `=`.
        for b in &mut data[start..start + 27] {
            *b = b'A';
        }
        wrong += 1;
        at = start;
    }
    assert!(wrong >= 1);
    fuzz_capture(&data);
    let mut cap = Capture::from_reader(Cursor::new(data[1..].to_vec()), "seed");
    let (mut rejected, mut frame_data) = (0, 0);
    let stats = Analyzer::new(AnalyzerConfig::default())
        .run(&mut cap, &mut |ev: &Event<'_>| match &ev.kind {
            EventKind::Established(up, _) => {
                assert!(!up.accepted());
                rejected += 1;
            }
            EventKind::FrameData { .. } => frame_data += 1,
            _ => {}
        })
        .expect("a whole capture");
    assert!(rejected >= 1);
    assert!(frame_data >= 2, "{frame_data}");
    assert_eq!((stats.sessions, stats.rejected_upgrades), (0, rejected));
    assert_eq!((stats.frames, stats.payload_bytes), (0, 0));
}
