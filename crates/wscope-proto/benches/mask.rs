//! `apply_mask` (the block-wise fast path) against `apply_mask_scalar` (the byte-at-a-time
//! reference), in place, at offset 0 and at an odd offset (rotated key).

// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use wscope_proto::mask::{apply_mask, apply_mask_scalar};

const SIZES: [(usize, &str); 4] = [
    (16, "16B"),
    (1 << 10, "1KiB"),
    (64 << 10, "64KiB"),
    (1 << 20, "1MiB"),
];
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn mask(c: &mut Criterion) {
    for (variant, f) in [
        ("fast", apply_mask as fn(&mut [u8], [u8; 4], u64)),
        ("scalar", apply_mask_scalar),
    ] {
        let mut group = c.benchmark_group(format!("mask/{variant}"));
        for (len, name) in SIZES {
            let mut buf: Vec<u8> = (0..len).map(|i| i as u8).collect();
            group.throughput(Throughput::Bytes(len as u64));
            group.bench_function(BenchmarkId::new("offset0", name), |b| {
                b.iter(|| f(black_box(&mut buf), KEY, 0))
            });
            group.bench_function(BenchmarkId::new("offset3", name), |b| {
                b.iter(|| f(black_box(&mut buf), KEY, 3))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, mask);
criterion_main!(benches);
