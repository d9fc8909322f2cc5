//! Writes a large capture by repeating real captures with shifted addresses, for benchmarks of
//! parallel analysis (`wscope inspect --workers N`).
//!
//! ```text
//! cargo run --release -p wscope-inspect --example gen_repeat -- OUTPUT.pcap MEGABYTES [DIR|FILE]...
//! ```
//!
//! The inputs (default: the shared corpus, `../shared/corpus` or `$WSCOPE_CORPUS`) are read
//! once; their TCP segments (IP fragments reassembled, any link type) form a template in which
//! each input starts 50 ms after the previous one. Each round writes 16 copies of the template,
//! interleaved (copy k is k ms later) and each with its own addresses (the copy number is
//! XORed into both endpoints, so connections stay distinct); rounds follow each other in time
//! until the output reaches MEGABYTES. Out as Ethernet pcap; deterministic, no clock.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use wscope_inspect::capture::Capture;
use wscope_inspect::decode::{Decoder, TcpFlags};
use wscope_proto::time::Instant;
use wscope_test_support::capture::{Framing, PcapWriter, TcpSpec};

/// Copies per round.
const COPIES: u64 = 16;

struct Seg {
    ts: u64,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    payload: Vec<u8>,
}

fn pcaps(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for e in entries {
            pcaps(&e, out);
        }
    } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
        out.push(p.to_owned());
    }
}

fn shift(a: SocketAddr, copy: u64) -> SocketAddr {
    let ip = match a.ip() {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) ^ ((copy as u32) << 8))),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) ^ (u128::from(copy) << 32))),
    };
    SocketAddr::new(ip, a.port())
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "repeat.pcap".to_string());
    let megabytes: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let mut inputs = Vec::new();
    for a in args {
        pcaps(Path::new(&a), &mut inputs);
    }
    if inputs.is_empty() {
        let root = std::env::var_os("WSCOPE_CORPUS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
            });
        pcaps(&root, &mut inputs);
    }
    if inputs.is_empty() {
        eprintln!("gen_repeat: no pcap or pcapng input found");
        std::process::exit(2);
    }

    // The template: every input's TCP segments, input j starting at j × 50 ms.
    let mut template: Vec<Seg> = Vec::new();
    for (j, path) in inputs.iter().enumerate() {
        let mut cap = Capture::from_paths([path]);
        let mut dec = Decoder::new();
        let mut first = None;
        while let Ok(Some(pkt)) = cap.next_packet() {
            let Some(seg) = dec.decode(&pkt) else {
                continue;
            };
            let t0 = *first.get_or_insert(seg.ts.as_micros());
            template.push(Seg {
                ts: seg.ts.as_micros().saturating_sub(t0) + j as u64 * 50_000,
                src: seg.src,
                dst: seg.dst,
                seq: seg.seq,
                ack: seg.ack,
                flags: seg.flags,
                window: seg.window,
                payload: seg.payload.to_vec(),
            });
        }
    }
    template.sort_by_key(|s| s.ts);
    let span = template.last().map_or(0, |s| s.ts) + COPIES * 1_000 + 1_000_000;

    let target = megabytes << 20;
    let file = BufWriter::with_capacity(1 << 20, std::fs::File::create(&out)?);
    let mut w = PcapWriter::new(file, Framing::Ethernet.link_type())?;
    let mut written = 24u64;
    let mut packets = 0u64;
    let mut round = 0u64;
    let base = 1_767_225_600_000_000u64;
    let mut order: Vec<(u64, u64, usize)> = Vec::new();
    while written < target {
        order.clear();
        for k in 0..COPIES {
            for (i, s) in template.iter().enumerate() {
                order.push((s.ts + k * 1_000, k, i));
            }
        }
        order.sort_unstable();
        for &(ts, k, i) in &order {
            let s = &template[i];
            let copy = round * COPIES + k + 1;
            let spec = TcpSpec {
                src: shift(s.src, copy),
                dst: shift(s.dst, copy),
                seq: s.seq,
                ack: s.ack,
                flags: s.flags,
                window: s.window,
                payload: &s.payload,
            };
            w.write_tcp(
                Instant::from_micros(base + round * span + ts),
                Framing::Ethernet,
                &spec,
            )?;
            written += 16 + 14 + 60 + s.payload.len() as u64;
            packets += 1;
        }
        round += 1;
    }
    w.into_inner().flush()?;
    println!(
        "wrote {out}: about {written} bytes, {packets} packets, {round} rounds of {COPIES} copies \
         of {} segments from {} captures",
        template.len(),
        inputs.len()
    );
    Ok(())
}
