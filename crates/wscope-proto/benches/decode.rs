//! Decoding masked frames (header parse + unmask in place), against `memcpy` of the same size.
//!
//! `memcpy` (`copy_from_slice` into a preallocated buffer) is the physical reference: decoding
//! reads and rewrites every payload byte once, as a copy reads and writes it. The acceptance
//! target (BENCHMARKS.md) is decode+unmask of a 1 MiB frame at ≥ 50 % of memcpy throughput.
//!
//! Unmasking is in place and is its own inverse, so decoding the same buffer again masks it
//! back: every iteration decodes the same frame with the same work, and nothing has to be
//! re-masked outside the timed part. For text, the payload is ASCII and Cyrillic and the key
//! bytes are below 0x08, so the payload is valid UTF-8 both masked and unmasked (the XOR keeps
//! ASCII ASCII, a 0xD0/0xD1 lead byte a 2-byte lead, a continuation byte a continuation byte)
//! and the validator does the full work on each pass.

// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use wscope_proto::decoder::{DecoderConfig, FrameDecoder, FrameEvent, MaskRule};
use wscope_proto::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use wscope_proto::mask::apply_mask;
use wscope_proto::message::{AssemblerConfig, MessageDecoder, MessageEvent};

const SIZES: [(usize, &str); 4] = [
    (16, "16B"),
    (1 << 10, "1KiB"),
    (64 << 10, "64KiB"),
    (1 << 20, "1MiB"),
];
/// Key bytes below 0x08: see the module docs (keeps masked text valid UTF-8).
const KEY: [u8; 4] = [0x01, 0x05, 0x02, 0x07];

fn binary_payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// ASCII and Cyrillic ("Привет, мир! "), cut to `len` bytes on a character boundary and padded
/// with ASCII.
fn text_payload(len: usize) -> Vec<u8> {
    let unit = "Hello, Привет мир! ".as_bytes();
    let mut out = Vec::with_capacity(len);
    while out.len() + unit.len() <= len {
        out.extend_from_slice(unit);
    }
    out.resize(len, b'.');
    out
}

fn masked_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader::new(true, opcode, Some(KEY), payload.len() as u64);
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = header.emit(&mut head);
    let mut wire = head[..n].to_vec();
    wire.extend_from_slice(payload);
    apply_mask(&mut wire[n..], KEY, 0);
    wire
}

/// Decodes one whole frame; returns the payload bytes seen.
fn decode_frame(dec: &mut FrameDecoder, wire: &mut [u8]) -> usize {
    let mut at = 0;
    let mut seen = 0;
    loop {
        let step = dec.decode(&mut wire[at..]).expect("valid frame");
        at += step.consumed;
        match step.event {
            Some(FrameEvent::Payload { chunk, .. }) => seen += black_box(chunk).len(),
            Some(_) => {}
            None => return seen,
        }
    }
}

/// Decodes one whole message; returns the payload bytes seen.
fn decode_message(dec: &mut MessageDecoder, wire: &mut [u8]) -> usize {
    let mut at = 0;
    let mut seen = 0;
    loop {
        let step = dec.decode(&mut wire[at..]).expect("valid message");
        at += step.consumed;
        match step.event {
            Some(MessageEvent::Data { chunk, .. }) => seen += black_box(chunk).len(),
            Some(_) => {}
            None => return seen,
        }
    }
}

fn frame_decoder(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode/frame");
    for (len, name) in SIZES {
        let mut wire = masked_frame(OpCode::BINARY, &binary_payload(len));
        let mut dec = FrameDecoder::new(DecoderConfig::new(MaskRule::Required));
        assert_eq!(decode_frame(&mut dec, &mut wire), len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| decode_frame(&mut dec, black_box(&mut wire)))
        });
    }
    group.finish();
}

fn message_decoder(c: &mut Criterion) {
    for (kind, opcode) in [("binary", OpCode::BINARY), ("text", OpCode::TEXT)] {
        let mut group = c.benchmark_group(format!("decode/message-{kind}"));
        for (len, name) in SIZES {
            let payload = if opcode == OpCode::TEXT {
                text_payload(len)
            } else {
                binary_payload(len)
            };
            let mut wire = masked_frame(opcode, &payload);
            let mut dec = MessageDecoder::new(
                DecoderConfig::new(MaskRule::Required),
                AssemblerConfig::default().max_message_len(u64::MAX),
            );
            // Both phases of the buffer decode (text stays valid UTF-8 masked or not).
            assert_eq!(decode_message(&mut dec, &mut wire), len);
            assert_eq!(decode_message(&mut dec, &mut wire), len);
            group.throughput(Throughput::Bytes(len as u64));
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| decode_message(&mut dec, black_box(&mut wire)))
            });
        }
        group.finish();
    }
}

fn memcpy(c: &mut Criterion) {
    let mut group = c.benchmark_group("memcpy");
    for (len, name) in SIZES {
        let src = binary_payload(len);
        let mut dst = vec![0u8; len];
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, frame_decoder, message_decoder, memcpy);
criterion_main!(benches);
