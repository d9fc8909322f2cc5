//! The committed sample of raw frames, `samples/frames.bin` (what `wscope parse` is shown on,
//! and `scripts/test-all.sh` checks), is what [`sample_frames`] builds, and the dissector reads
//! it as described. After a change to the builder, write the file again with
//!
//! ```text
//! WSCOPE_WRITE_SAMPLE=1 cargo test -p wscope-proto --test all sample
//! ```
//!
//! The sample is one client-to-server stream, so every frame is masked:
//!
//! 1. a text message "Hello, wscope!" in one frame (the RFC 6455 section 5.7 key);
//! 2. a text message in two fragments, "Hello, w" + "örld", cut inside the "ö", with a ping
//!    "are you there?" between the fragments;
//! 3. a 64 KiB binary message (64-bit length form);
//! 4. a close with status 1000 and reason "bye".

use std::path::PathBuf;

use wscope_proto::close::{CloseCode, CloseFrameRef, CloseReason};
use wscope_proto::decoder::MaskRule;
use wscope_proto::dissect::{Dissected, Dissector, MessageInfo, Unfinished};
use wscope_proto::frame::{FrameHeader, LengthForm, OpCode, MAX_HEADER_LEN};
use wscope_proto::mask::apply_mask;

fn sample_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/frames.bin")
}

#[test]
fn committed_sample_is_what_the_builder_writes() {
    if std::env::var_os("WSCOPE_WRITE_SAMPLE").is_some() {
        std::fs::write(sample_path(), sample_frames()).expect("samples/ is writable");
    }
    let committed = std::fs::read(sample_path()).expect("samples/frames.bin is committed");
    assert!(
        committed == sample_frames(),
        "samples/frames.bin is stale: run \
         `WSCOPE_WRITE_SAMPLE=1 cargo test -p wscope-proto --test all sample`"
    );
}

/// What the dissector gives for the sample, with each frame's payload joined.
#[derive(Debug, Default)]
struct Reading {
    /// Offset, FIN, opcode, length form and payload of each frame.
    frames: Vec<(u64, bool, OpCode, LengthForm, Vec<u8>)>,
    messages: Vec<MessageInfo>,
    violations: usize,
    close: Option<(CloseCode, String)>,
}

fn dissect(wire: &[u8], read: usize) -> (Reading, Unfinished) {
    let mut data = wire.to_vec();
    let mut dis = Dissector::new(MaskRule::Required);
    let mut r = Reading::default();
    let mut pos = 0;
    while pos < data.len() {
        let end = (pos + read).min(data.len());
        let mut at = pos;
        loop {
            let step = dis.decode(&mut data[at..end]);
            at += step.consumed;
            match step.event {
                None => break,
                Some(Dissected::Frame(f)) => r.frames.push((
                    f.offset,
                    f.header.fin,
                    f.header.opcode,
                    f.header.length_form,
                    Vec::new(),
                )),
                Some(Dissected::Payload(p)) => {
                    r.frames.last_mut().unwrap().4.extend_from_slice(p.chunk);
                }
                Some(Dissected::FrameEnd(e)) => {
                    if let Some(c) = e.close() {
                        let c = c.unwrap().unwrap();
                        r.close = Some((c.code, c.reason.to_owned()));
                    }
                }
                Some(Dissected::Message(m)) => r.messages.push(m),
                Some(Dissected::Violation(_)) => r.violations += 1,
                Some(_) => {}
            }
        }
        pos = end;
    }
    (r, dis.finish())
}

#[test]
fn sample_dissects_to_the_documented_frames_and_messages() {
    let wire = std::fs::read(sample_path()).expect("samples/frames.bin is committed");
    let (r, end) = dissect(&wire, 4096);
    // A client's stream: every frame masked, so the strict client-to-server rule holds.
    assert_eq!(r.violations, 0);
    assert_eq!(end, Unfinished::default());
    let frames: Vec<_> = r
        .frames
        .iter()
        .map(|(at, fin, op, form, _)| (*at, *fin, *op, *form))
        .collect();
    assert_eq!(
        frames,
        [
            (0, true, OpCode::TEXT, LengthForm::Short),
            (20, false, OpCode::TEXT, LengthForm::Short),
            (35, true, OpCode::PING, LengthForm::Short),
            (55, true, OpCode::CONTINUATION, LengthForm::Short),
            (65, true, OpCode::BINARY, LengthForm::Extended64),
            (65_615, true, OpCode::CLOSE, LengthForm::Short),
        ]
    );
    assert_eq!(r.frames[0].4, b"Hello, wscope!");
    assert_eq!(r.frames[2].4, b"are you there?");
    let text = [r.frames[1].4.clone(), r.frames[3].4.clone()].concat();
    assert_eq!(text, "Hello, wörld".as_bytes());
    assert!(r.frames[4].4 == binary_payload());
    // `MessageInfo` is `#[non_exhaustive]`: compared field by field.
    let message = |offset, opcode: OpCode, frames, len| {
        let text_valid = (opcode == OpCode::TEXT).then_some(true);
        (offset, opcode, frames, len, true, text_valid)
    };
    let seen = |m: &MessageInfo| {
        (
            m.offset,
            m.opcode,
            m.frames,
            m.len,
            m.complete,
            m.text_valid,
        )
    };
    assert_eq!(
        r.messages.iter().map(seen).collect::<Vec<_>>(),
        [
            message(0, OpCode::TEXT, 1, 14),
            message(35, OpCode::PING, 1, 14),
            // "Hello, wörld" in 2 frames, valid although the "ö" is split between them.
            message(20, OpCode::TEXT, 2, 13),
            message(65, OpCode::BINARY, 1, BINARY_LEN as u64),
            message(65_615, OpCode::CLOSE, 1, 5),
        ]
    );
    assert_eq!(r.close, Some((CloseCode::NORMAL, "bye".to_owned())));
    // Read a byte at a time: the same reading.
    let (small, _) = dissect(&wire[..65_615], 1);
    assert_eq!(small.frames, r.frames[..5]);
    assert_eq!(small.messages, r.messages[..4]);
}

/// The size of the binary message.
const BINARY_LEN: usize = 64 * 1024;

/// The payload of the binary message: a fixed byte pattern.
fn binary_payload() -> Vec<u8> {
    (0..BINARY_LEN).map(|i| (i * 31 + 7) as u8).collect()
}

/// The whole sample stream.
fn sample_frames() -> Vec<u8> {
    let mut wire = Vec::new();
    let text = "Hello, wscope!".as_bytes();
    push(
        &mut wire,
        true,
        OpCode::TEXT,
        [0x37, 0xfa, 0x21, 0x3d],
        text,
    );

    let fragmented = "Hello, wörld".as_bytes();
    let cut = "Hello, w".len() + 1; // inside the two bytes of "ö"
    push(
        &mut wire,
        false,
        OpCode::TEXT,
        [0x01, 0x02, 0x03, 0x04],
        &fragmented[..cut],
    );
    push(
        &mut wire,
        true,
        OpCode::PING,
        [0xa5, 0x5a, 0xc3, 0x3c],
        b"are you there?",
    );
    push(
        &mut wire,
        true,
        OpCode::CONTINUATION,
        [0x10, 0x20, 0x30, 0x40],
        &fragmented[cut..],
    );

    push(
        &mut wire,
        true,
        OpCode::BINARY,
        [0xde, 0xad, 0xbe, 0xef],
        &binary_payload(),
    );

    let close = CloseFrameRef::new(CloseCode::NORMAL, CloseReason::truncating("bye"))
        .expect("1000 may be sent");
    let mut payload = [0u8; 125];
    let n = close.emit(&mut payload);
    push(
        &mut wire,
        true,
        OpCode::CLOSE,
        [0x0f, 0x1e, 0x2d, 0x3c],
        &payload[..n],
    );
    wire
}

fn push(wire: &mut Vec<u8>, fin: bool, opcode: OpCode, key: [u8; 4], payload: &[u8]) {
    let header = FrameHeader::new(fin, opcode, Some(key), payload.len() as u64);
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = header.emit(&mut head);
    wire.extend_from_slice(&head[..n]);
    let start = wire.len();
    wire.extend_from_slice(payload);
    apply_mask(&mut wire[start..], key, 0);
}
