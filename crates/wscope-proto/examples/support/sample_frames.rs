//! The frames of `examples/sample-frames.bin`, built deterministically (no randomness, no
//! clock), shared by the generator example and the test that checks the committed file.
//!
//! One client-to-server stream, so every frame is masked:
//!
//! 1. a text message "Hello, wscope!" in one frame (the RFC 6455 section 5.7 key);
//! 2. a text message in two fragments, "Hello, w" + "örld", cut inside the "ö", with a ping
//!    "are you there?" between the fragments;
//! 3. a 64 KiB binary message (64-bit length form);
//! 4. a close with status 1000 and reason "bye".

// The generator uses the stream, the test also the binary payload.
#![allow(dead_code)]

use wscope_proto::close::{CloseCode, CloseFrame, CloseReason};
use wscope_proto::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use wscope_proto::mask::apply_mask;

/// The size of the binary message.
pub(crate) const BINARY_LEN: usize = 64 * 1024;

/// The payload of the binary message: a fixed byte pattern.
pub(crate) fn binary_payload() -> Vec<u8> {
    (0..BINARY_LEN).map(|i| (i * 31 + 7) as u8).collect()
}

/// The whole sample stream.
pub(crate) fn sample_frames() -> Vec<u8> {
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

    let close = CloseFrame::new(CloseCode::NORMAL, CloseReason::truncating("bye"))
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
