//! The JSON Lines writer (`--events`) on the events of a typical stretch of a session: per
//! client message a masked frame, its payload in MSS-sized `frame_data` chunks and the
//! message; throughput in bytes of JSON written.

// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

use std::io::Write;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use wscope_inspect::event::{ChunkInfo, Event, EventKind, FrameHeader, OpCode};
use wscope_inspect::log::json::JsonLines;
use wscope_inspect::sink::Sink;
use wscope_inspect::tcp::ConnMeta;
use wscope_proto::role::Direction;
use wscope_proto::time::Instant;

/// A 16 KiB binary message cut as TCP would deliver it.
const MESSAGE: usize = 16 << 10;
const MSS: usize = 1448;

fn write_message<W: Write>(sink: &mut JsonLines<W>, conn: &ConnMeta, payload: &[u8]) {
    let header = FrameHeader::new(true, OpCode::BINARY, Some([1, 2, 3, 4]), MESSAGE as u64);
    let mut header_bytes = [0u8; 14];
    let n = header.emit(&mut header_bytes);
    let ev = |kind| Event {
        ts: Instant::from_micros(1_767_225_600_003_210),
        conn,
        dir: Direction::ClientToServer,
        kind,
    };
    sink.event(&ev(EventKind::Frame {
        header,
        header_bytes: &header_bytes[..n],
    }));
    let mut at = 0;
    for chunk in payload.chunks(MSS) {
        at += chunk.len();
        let info = ChunkInfo {
            opcode: OpCode::BINARY,
            compressed: false,
            first: at == chunk.len(),
            remaining: (MESSAGE - at) as u64,
            frame_end: at == MESSAGE,
            message_end: at == MESSAGE,
        };
        sink.event(&ev(EventKind::FrameData { data: chunk, info }));
    }
    sink.event(&ev(EventKind::Message {
        opcode: OpCode::BINARY,
        len: MESSAGE as u64,
        sha256: Some([0xab; 32]),
    }));
}

fn json(c: &mut Criterion) {
    let conn = ConnMeta::new(
        "192.0.2.10:50001".parse().expect("address"),
        "198.51.100.20:8080".parse().expect("address"),
    );
    let payload: Vec<u8> = (0..MESSAGE).map(|i| (i * 7) as u8).collect();
    let mut sink = JsonLines::new(Vec::new());
    write_message(&mut sink, &conn, &payload);
    let bytes = sink.finish().expect("vec").len();
    let mut group = c.benchmark_group("json");
    group.throughput(Throughput::Bytes(bytes as u64));
    let mut out = Vec::with_capacity(bytes);
    group.bench_function("events_of_a_16KiB_message", |b| {
        b.iter(|| {
            out.clear();
            let mut sink = JsonLines::new(&mut out);
            write_message(&mut sink, &conn, &payload);
            sink.finish().expect("vec");
        })
    });
    group.finish();
}

criterion_group!(benches, json);
criterion_main!(benches);
