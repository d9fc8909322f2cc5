//! Compression ratio against memory for the permessage-deflate compressor, per window size and
//! memLevel: the measurement behind `deflate::DEFAULT_MEM_LEVEL` and the `--deflate-*` help of
//! `wscope serve`.
//!
//! Each workload is a stream of messages of one direction with context takeover (the
//! default), compressed by one [`Deflater`]; the ratio is compressed bytes over input bytes.
//! Memory is what the compressor holds after its first message, counted by a global
//! allocator (bytes requested from it; the resident share can be lower, as untouched pages
//! of large allocations are never mapped in).
//!
//! `cargo run --release -p wscope-proto --features deflate --example deflate_tradeoff`

use wscope_proto::deflate::{Deflater, Inflater};
use wscope_test_support::{CountingAlloc, Rng};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc::new();

/// One of `items`, chosen by `rng`.
fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len() as u64) as usize]
}

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "you",
    "that",
    "it",
    "he",
    "was",
    "for",
    "on",
    "are",
    "as",
    "with",
    "his",
    "they",
    "at",
    "be",
    "this",
    "have",
    "from",
    "or",
    "one",
    "had",
    "by",
    "word",
    "but",
    "not",
    "what",
    "all",
    "were",
    "we",
    "when",
    "your",
    "can",
    "said",
    "there",
    "use",
    "an",
    "each",
    "which",
    "she",
    "do",
    "how",
    "their",
    "if",
    "will",
    "up",
    "other",
    "about",
    "out",
    "many",
    "then",
    "them",
    "these",
    "so",
    "some",
    "her",
    "would",
    "make",
    "like",
    "him",
    "into",
    "time",
    "has",
    "look",
    "two",
    "more",
    "write",
    "go",
    "see",
    "number",
    "connection",
    "message",
    "server",
    "latency",
    "window",
    "compression",
    "frame",
    "socket",
];

/// A chat or market-data style JSON message of about `target` bytes.
fn json_message(rng: &mut Rng, seq: u64, target: usize) -> Vec<u8> {
    let mut s = format!(
        "{{\"type\":\"{}\",\"seq\":{seq},\"ts\":{},\"user\":\"user{}\",\"items\":[",
        pick(rng, &["update", "trade", "chat", "presence"]),
        1_700_000_000_000u64 + seq * 37 + rng.next_u64() % 1000,
        rng.next_u64() % 5000,
    );
    let mut first = true;
    while s.len() < target {
        if !first {
            s.push(',');
        }
        first = false;
        s.push_str(&format!(
            "{{\"id\":{},\"symbol\":\"{}\",\"price\":{}.{:02},\"qty\":{},\"note\":\"{} {} {}\"}}",
            rng.next_u64() % 100_000,
            pick(
                rng,
                &["BTC-USD", "ETH-USD", "SOL-USD", "EUR-USD", "AAPL", "MSFT"]
            ),
            rng.next_u64() % 90_000,
            rng.next_u64() % 100,
            rng.next_u64() % 1000,
            pick(rng, WORDS),
            pick(rng, WORDS),
            pick(rng, WORDS),
        ));
    }
    s.push_str("]}");
    s.into_bytes()
}

/// Prose of `len` bytes.
fn text_message(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut s = String::with_capacity(len + 16);
    while s.len() < len {
        s.push_str(pick(rng, WORDS));
        s.push(if rng.next_u64().is_multiple_of(12) {
            '.'
        } else {
            ' '
        });
    }
    s.truncate(len);
    s.into_bytes()
}

/// (name, messages) of one workload.
fn workloads() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let json_small = (0..2000).map(|i| json_message(&mut rng, i, 200)).collect();
    let json_4k = (0..300).map(|i| json_message(&mut rng, i, 4096)).collect();
    let json_64k = (0..20)
        .map(|i| json_message(&mut rng, i, 64 * 1024))
        .collect();
    let text_1m = (0..3).map(|_| text_message(&mut rng, 1 << 20)).collect();
    vec![
        ("json 200 B x2000", json_small),
        ("json 4 KiB x300", json_4k),
        ("json 64 KiB x20", json_64k),
        ("text 1 MiB x3", text_1m),
    ]
}

/// Compressed size over input size for `msgs` through one compressor, checked by inflating.
fn ratio(window: u8, mem_level: u8, msgs: &[Vec<u8>]) -> f64 {
    let mut tx = Deflater::new(6, window, false).with_mem_level(mem_level);
    let mut rx = Inflater::new(false);
    let (mut raw, mut wire) = (0usize, 0usize);
    let mut out = Vec::new();
    for m in msgs {
        out.clear();
        tx.compress(m, true, &mut out);
        let n = rx.inflate(&out, true, 1 << 30).expect("round trip");
        assert_eq!(&rx.output()[..n], &m[..], "round trip");
        raw += m.len();
        wire += out.len();
    }
    wire as f64 / raw as f64
}

/// Bytes a compressor holds after one message (its context; the output is not counted).
fn deflater_bytes(window: u8, mem_level: u8) -> usize {
    let mut tx = Deflater::new(6, window, false).with_mem_level(mem_level);
    let mut out = Vec::with_capacity(4096);
    let before = GLOBAL.live();
    tx.compress(b"a first message to allocate the context", true, &mut out);
    let after = GLOBAL.live();
    drop(tx);
    after - before
}

/// Bytes an inflater holds after one message (context and output storage).
fn inflater_bytes() -> usize {
    let mut tx = Deflater::new(6, 15, false);
    let mut wire = Vec::new();
    tx.compress(b"a first message to allocate the context", true, &mut wire);
    let before = GLOBAL.live();
    let mut rx = Inflater::new(false);
    rx.inflate(&wire, true, 1 << 20).expect("inflate");
    rx.release();
    let after = GLOBAL.live();
    drop(rx);
    after - before
}

fn main() {
    let loads = workloads();
    println!(
        "inflater (any window; zlib-rs always allocates a 32 KiB window): {:.1} KiB",
        inflater_bytes() as f64 / 1024.0
    );
    print!("| window | memLevel | deflater KiB |");
    for (name, _) in &loads {
        print!(" {name} |");
    }
    println!();
    print!("|---|---|---|");
    for _ in &loads {
        print!("---|");
    }
    println!();
    for window in [15u8, 14, 13, 12, 11, 10, 9] {
        for mem_level in [9u8, 8, 7, 6, 5, 4, 3, 2, 1] {
            let kib = deflater_bytes(window, mem_level) as f64 / 1024.0;
            print!("| {window} | {mem_level} | {kib:.1} |");
            for (_, msgs) in &loads {
                print!(" {:.4} |", ratio(window, mem_level, msgs));
            }
            println!();
        }
    }
}
