//! UTF-8 validation: the incremental `Utf8Validator` (whole buffer, and in 1400-byte pieces
//! as TCP segments would cut it) against `core::str::from_utf8` and the crate's whole-buffer
//! `utf8::from_utf8` (simdutf8), on ASCII and on mixed text.

// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use wscope_proto::utf8::{from_utf8, Utf8Validator};

const SIZES: [(usize, &str); 3] = [(1 << 10, "1KiB"), (64 << 10, "64KiB"), (1 << 20, "1MiB")];
/// A typical MSS-sized piece.
const PIECE: usize = 1400;

fn text(unit: &str, len: usize) -> Vec<u8> {
    let mut s = String::new();
    while s.len() + unit.len() <= len {
        s.push_str(unit);
    }
    while s.len() < len {
        s.push('.');
    }
    s.into_bytes()
}

fn utf8(c: &mut Criterion) {
    for (kind, unit) in [
        ("ascii", "The quick brown fox jumps over the lazy dog. "),
        ("mixed", "Hello, Привет, γειά σου, こんにちは, 😀! "),
    ] {
        let mut group = c.benchmark_group(format!("utf8/{kind}"));
        for (len, name) in SIZES {
            let data = text(unit, len);
            assert!(core::str::from_utf8(&data).is_ok());
            group.throughput(Throughput::Bytes(len as u64));
            group.bench_function(BenchmarkId::new("validator", name), |b| {
                b.iter(|| {
                    let mut v = Utf8Validator::new();
                    v.feed(black_box(&data)).is_ok() && v.finish().is_ok()
                })
            });
            group.bench_function(BenchmarkId::new("validator-1400B-pieces", name), |b| {
                b.iter(|| {
                    let mut v = Utf8Validator::new();
                    black_box(&data).chunks(PIECE).all(|p| v.feed(p).is_ok()) && v.finish().is_ok()
                })
            });
            group.bench_function(BenchmarkId::new("simdutf8-whole", name), |b| {
                b.iter(|| from_utf8(black_box(&data)).is_ok())
            });
            group.bench_function(BenchmarkId::new("core-str-from_utf8", name), |b| {
                b.iter(|| core::str::from_utf8(black_box(&data)).is_ok())
            });
        }
        group.finish();
    }
}

criterion_group!(benches, utf8);
criterion_main!(benches);
