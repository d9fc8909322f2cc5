//! Fuzzing entry point for whole captures: the body of `fuzz/fuzz_targets/capture.rs`. It
//! lives in the library so that it builds on stable and a normal `cargo test` replays the
//! committed seeds (`fuzz/seeds/capture/`) through it.
//!
//! Not part of the API: names and behaviour may change at any time.

use std::io::Cursor;

use crate::analyzer::{Analyzer, AnalyzerConfig};
use crate::capture::Capture;
use crate::event::{Event, EventKind};

/// Chunk sizes the control byte chooses from.
const CHUNKS: [usize; 4] = [1, 7, 100, 4096];

/// Runs the analyzer over arbitrary bytes taken as a capture file (pcap or pcapng), after a
/// control byte that picks the `frame_data` chunk size and whether to inflate. Asserts the
/// invariants the analyzer documents: chunks within the configured size, counters that
/// agree, and no more output than input can explain.
pub fn fuzz_capture(data: &[u8]) {
    let Some((&ctl, file)) = data.split_first() else {
        return;
    };
    let mut cfg = AnalyzerConfig::default();
    let chunk = CHUNKS[usize::from(ctl & 3)];
    cfg.session.payload_chunk_size = chunk;
    cfg.session.inflate = ctl & 4 != 0;
    cfg.session.digest = ctl & 8 != 0;
    let mut cap = Capture::from_reader(Cursor::new(file.to_vec()), "fuzz");
    let mut data_bytes = 0u64;
    let stats = Analyzer::new(cfg).run(&mut cap, &mut |ev: &Event<'_>| {
        if let EventKind::FrameData { data, .. } = &ev.kind {
            assert!(data.len() <= chunk, "chunk of {} over {chunk}", data.len());
            data_bytes += data.len() as u64;
        }
    });
    assert_eq!(stats.decode.packets, stats.capture.packets);
    assert!(stats.decode.reassembled <= stats.decode.fragments);
    assert!(stats.sessions <= stats.connections);
    assert!(stats.mid_stream <= stats.connections);
    // Without inflation every frame_data byte is a payload byte some frame declared.
    if !cfg.session.inflate {
        assert!(data_bytes <= stats.payload_bytes);
    }
}
