//! Recovery after a lost segment: the observer's resynchronisation measured on streams that
//! look like tunnelled TLS (binary frames whose payloads are random bytes, the worst case for
//! a header scan, as in Zeek's `wstunnel-https` trace).
//!
//! For every segment that holds a frame header, the stream is fed with that one segment
//! lost (`Observer::gap`). A recovery is clean when the frames reported after the gap are
//! exactly the true frames from some point on: no frame that is not in the stream (a false
//! header inside ciphertext), none of the later true frames missing.
//!
//! `RESYNC_DEBUG=1` prints the losses after which a false frame was reported.

use wscope_proto::frame::{FrameHeader, OpCode};
use wscope_proto::mask::apply_mask;
use wscope_proto::observe::{ObservedEvent, Observer, ObserverConfig};
use wscope_proto::Direction;
use wscope_test_support::Rng;

/// A stream of `n` binary frames with random payloads, sizes like TLS records (a few small
/// handshake-sized ones, mostly 1-16 KiB application records). Returns the bytes and each
/// frame's (header offset, payload length).
fn tunnel_stream(rng: &mut Rng, n: usize, masked: bool) -> (Vec<u8>, Vec<(usize, u64)>) {
    let mut out = Vec::new();
    let mut frames = Vec::new();
    for _ in 0..n {
        let len = match rng.next_u64() % 8 {
            0 => 20 + rng.next_u64() % 200,
            1 => 200 + rng.next_u64() % 1300,
            _ => 1024 + rng.next_u64() % (16 * 1024),
        };
        let mut payload = vec![0u8; len as usize];
        rng.fill(&mut payload);
        let key = masked.then(|| (rng.next_u64() as u32).to_be_bytes());
        let header = FrameHeader::new(true, OpCode::BINARY, key, len);
        let mut h = [0u8; 14];
        let hl = header.emit(&mut h);
        frames.push((out.len(), len));
        out.extend_from_slice(&h[..hl]);
        if let Some(k) = key {
            apply_mask(&mut payload, k, 0);
        }
        out.extend_from_slice(&payload);
    }
    (out, frames)
}

/// Feeds `stream` in `seg`-byte segments with segment `lost` replaced by a gap; returns the
/// payload lengths of the frames reported after the gap.
fn frames_after_gap(stream: &[u8], dir: Direction, seg: usize, lost: usize) -> Vec<u64> {
    let mut obs = Observer::after_handshake(ObserverConfig::default());
    let mut seen = Vec::new();
    let mut after_gap = false;
    for (i, piece) in stream.chunks(seg).enumerate() {
        if i == lost {
            obs.gap(dir, piece.len() as u64);
            after_gap = true;
            continue;
        }
        let mut buf = piece.to_vec();
        let mut at = 0;
        loop {
            let step = obs.feed(dir, &mut buf[at..]);
            at += step.consumed;
            let Some(ev) = step.event else { break };
            if let ObservedEvent::Frame { header, .. } = ev {
                if after_gap {
                    seen.push(header.payload_len);
                }
            }
        }
        assert_eq!(at, buf.len(), "the observer takes whole buffers");
    }
    seen
}

/// How single-segment losses that hit a header ended, over one stream.
#[derive(Default, Debug)]
struct Outcomes {
    /// Losses that hit a frame header.
    cases: usize,
    /// Every frame reported after the gap is a true one (a suffix of the truth).
    no_bogus: usize,
    /// Of those, the ones that skipped at most two true frames.
    prompt: usize,
    /// True frames after the gap that were not reported, summed over the clean cases.
    skipped: usize,
}

fn outcomes(seed: u64, dir: Direction, out: &mut Outcomes) {
    let mut rng = Rng::new(seed);
    let masked = dir == Direction::ClientToServer;
    let (stream, frames) = tunnel_stream(&mut rng, 60, masked);
    let seg = 1448;
    for lost in 0..stream.len().div_ceil(seg) {
        let (lo, hi) = (lost * seg, ((lost + 1) * seg).min(stream.len()));
        if !frames.iter().any(|&(off, _)| off >= lo && off < hi) {
            continue; // a loss inside payloads keeps framing: nothing to recover
        }
        out.cases += 1;
        let got = frames_after_gap(&stream, dir, seg, lost);
        let truth: Vec<u64> = frames
            .iter()
            .filter(|&&(off, _)| off >= hi)
            .map(|&(_, len)| len)
            .collect();
        if truth.ends_with(&got) {
            let skipped = truth.len() - got.len();
            out.no_bogus += 1;
            out.prompt += usize::from(skipped <= 2);
            out.skipped += skipped;
        } else if std::env::var_os("RESYNC_DEBUG").is_some() {
            eprintln!(
                "lost {lost}: got {:?}\n  truth {:?}",
                &got[..got.len().min(6)],
                &truth[..truth.len().min(6)]
            );
        }
    }
}

#[test]
fn single_segment_loss_in_tunnelled_tls_recovers_without_false_frames() {
    let mut out = Outcomes::default();
    for seed in 1..=6u64 {
        for dir in [Direction::ServerToClient, Direction::ClientToServer] {
            outcomes(seed * 0x9E37_79B9, dir, &mut out);
        }
    }
    eprintln!("{out:?}");
    assert!(out.cases > 500, "too few cases: {out:?}");
    // Measured when written: 597 cases, 573 without a false frame, 391 of them within two
    // frames. Taking the first lone plausible header (the scan before chains) gave 94 of 597.
    // Before probing and probation, 84% of these losses made the observer report frames
    // that are not in the stream (false headers in ciphertext).
    assert!(out.no_bogus * 100 >= out.cases * 95, "{out:?}");
    assert!(out.prompt * 100 >= out.cases * 60, "{out:?}");
}

/// Frames and messages reported for `dir` after a gap followed by `n` random bytes fed in
/// 1448-byte segments (the worst case for a header scan: nothing after the gap is a frame).
fn reported_after_random(seed: u64, dir: Direction, n: usize) -> (Vec<u64>, usize) {
    let mut rng = Rng::new(seed);
    let masked = dir == Direction::ClientToServer;
    let mut obs = Observer::after_handshake(ObserverConfig::default());
    // A few genuine frames first, so the direction has a mask rule from real traffic.
    let (stream, _) = tunnel_stream(&mut rng, 4, masked);
    let mut buf = stream;
    let mut at = 0;
    loop {
        // Until the bytes are used and the last message is out.
        let step = obs.feed(dir, &mut buf[at..]);
        at += step.consumed;
        if step.event.is_none() {
            break;
        }
    }
    assert_eq!(at, buf.len());
    obs.gap(dir, 1000);
    let mut frames = Vec::new();
    let mut messages = 0;
    let mut piece = vec![0u8; 1448];
    let mut left = n;
    while left > 0 {
        let len = left.min(piece.len());
        rng.fill(&mut piece[..len]);
        left -= len;
        let mut at = 0;
        loop {
            let step = obs.feed(dir, &mut piece[at..len]);
            at += step.consumed;
            match step.event {
                None => break,
                Some(ObservedEvent::Frame { header, .. }) => {
                    if std::env::var_os("RESYNC_DEBUG").is_some() {
                        eprintln!("frame {header:?}");
                    }
                    frames.push(header.payload_len)
                }
                Some(ObservedEvent::Message { .. }) => messages += 1,
                Some(ev) => {
                    if std::env::var_os("RESYNC_DEBUG").is_some() {
                        eprintln!("{:?}", ev);
                    }
                }
            }
        }
    }
    // Genuine frames after the random bytes: found again. A false candidate still being
    // probed when they start may pass over up to `resync_max_frame_len` (1 MiB) of them
    // silently, never more (before, a false header in sync could swallow the direction).
    let (stream, truth) = tunnel_stream(&mut rng, 200, masked);
    let truth: Vec<u64> = truth.iter().map(|&(_, len)| len).collect();
    let mut after = Vec::new();
    for piece in stream.chunks(1448) {
        let mut piece = piece.to_vec();
        let mut at = 0;
        loop {
            let step = obs.feed(dir, &mut piece[at..]);
            at += step.consumed;
            match step.event {
                None => break,
                Some(ObservedEvent::Frame { header, .. }) => after.push(header.payload_len),
                Some(_) => {}
            }
        }
    }
    let skipped: u64 = truth[..truth.len() - after.len().min(truth.len())]
        .iter()
        .map(|&len| len + 14)
        .sum();
    assert!(
        truth.ends_with(&after) && !after.is_empty() && skipped <= 1 << 20,
        "{dir:?}: after the random bytes {} of {} true frames ({skipped} bytes missed), {:?}",
        after.len(),
        truth.len(),
        &after[..after.len().min(8)]
    );
    (frames, messages)
}

#[test]
fn random_bytes_after_a_gap_give_no_false_frames() {
    // Issue 23: 32 MiB of random bytes after a gap gave 55 false frames, some declaring
    // lengths near 2^63 that swallowed the rest of the direction. The genuine frames that
    // follow the random bytes must be found again (checked in `reported_after_random`).
    for (seed, dir) in [
        (0x5eed_0001, Direction::ServerToClient),
        (0x5eed_0002, Direction::ClientToServer),
    ] {
        let (frames, messages) = reported_after_random(seed, dir, 32 << 20);
        assert!(
            frames.is_empty() && messages == 0,
            "{dir:?}: {} false frames ({messages} messages), lengths {:?}",
            frames.len(),
            &frames[..frames.len().min(10)]
        );
    }
}
