//! A generated capture of many concurrent WebSocket connections with every fate the analyzer
//! must handle: closing handshakes, resets, connections cut by the end of the capture, idle
//! timeouts, lone SYNs, mid-stream starts, IP fragments, reordered and retransmitted segments,
//! packets cut by the snapshot length, permessage-deflate (stored blocks), IPv4 and IPv6, and
//! timestamps that step back. Deterministic for a seed.

use core::net::SocketAddr;
use std::io;

use wscope_inspect::decode::TcpFlags;
use wscope_proto::time::Instant;

use crate::capture::{encode_tcp, fragment_ip, Framing, PcapWriter, TcpSpec};
use crate::wire::{frame, upgrade_request, upgrade_response};
use crate::Rng;

/// One packet to write: time, order of generation (tie-break), bytes, captured length.
struct Pkt {
    ts: u64,
    /// The time written (sometimes a little before `ts`).
    wts: u64,
    order: u64,
    data: Vec<u8>,
    caplen: usize,
}

/// Packets of one connection as they are generated.
struct Conn<'a> {
    rng: &'a mut Rng,
    out: &'a mut Vec<Pkt>,
    order: &'a mut u64,
    c: SocketAddr,
    s: SocketAddr,
    seq: [u32; 2],
    ts: u64,
}

impl Conn<'_> {
    fn emit(&mut self, d: usize, flags: TcpFlags, payload: &[u8], how: How) -> io::Result<()> {
        let (src, dst) = if d == 0 {
            (self.c, self.s)
        } else {
            (self.s, self.c)
        };
        let mut spec = TcpSpec::new(src, dst)
            .seq(self.seq[d])
            .flags(flags)
            .payload(payload);
        if !(flags.syn() && d == 0) {
            spec = spec.ack(self.seq[1 - d]);
        }
        self.ts += 1 + self.rng.below(20_000);
        let ts = self.ts;
        let mut wts = ts;
        if self.rng.below(40) == 0 {
            // A timestamp that steps back a little (merged captures, clock adjustments).
            wts = ts.saturating_sub(self.rng.below(3_000));
        }
        let mut pkts = Vec::new();
        match how {
            How::Fragments => {
                let mut ip = Vec::new();
                encode_tcp(Framing::Raw, &spec, &mut ip)?;
                for f in fragment_ip(&ip, 256, self.seq[d])? {
                    let mut p = Vec::new();
                    Framing::Ethernet.write_header(src.is_ipv6(), &mut p);
                    p.extend_from_slice(&f);
                    pkts.push((p, usize::MAX));
                }
            }
            How::Cut => {
                let mut p = Vec::new();
                encode_tcp(Framing::Ethernet, &spec, &mut p)?;
                let cut = p.len().saturating_sub(payload.len() / 2);
                pkts.push((p, cut));
            }
            How::Plain => {
                let mut p = Vec::new();
                encode_tcp(Framing::Ethernet, &spec, &mut p)?;
                pkts.push((p, usize::MAX));
            }
        }
        for (data, caplen) in pkts {
            *self.order += 1;
            self.out.push(Pkt {
                ts,
                wts,
                order: *self.order,
                data,
                caplen,
            });
        }
        let mut adv = payload.len() as u32;
        if flags.syn() || flags.fin() {
            adv += 1;
        }
        self.seq[d] = self.seq[d].wrapping_add(adv);
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    Plain,
    Fragments,
    Cut,
}

/// A permessage-deflate payload holding `data` in one stored (uncompressed) block, without
/// the trailing `00 00 ff ff` (RFC 7692 §7.2.1).
fn stored_deflate(data: &[u8]) -> Vec<u8> {
    let n = data.len().min(0xffff) as u16;
    let mut out = vec![0x00];
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&(!n).to_le_bytes());
    out.extend_from_slice(&data[..usize::from(n)]);
    out
}

/// A pcap (Ethernet) of `conns` concurrent connections with mixed fates over about
/// `conns` seconds of capture time (so the 30 s handshake and 300 s idle timeouts fire in the
/// middle of it). The same seed gives the same bytes.
pub fn mixed_traffic(seed: u64, conns: usize) -> io::Result<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let mut out: Vec<Pkt> = Vec::new();
    let mut order = 0u64;
    let t0 = 1_700_000_000_000_000u64;
    for i in 0..conns {
        let v6 = i % 7 == 3;
        let (c, s) = if v6 {
            (
                SocketAddr::new(
                    format!("fd00::{:x}", i + 1).parse().expect("v6"),
                    30_000 + (i % 20_000) as u16,
                ),
                SocketAddr::new("fd00::ffff".parse().expect("v6"), 443),
            )
        } else {
            (
                SocketAddr::from((
                    [10, 9, (i >> 8) as u8, i as u8],
                    30_000 + (i % 20_000) as u16,
                )),
                SocketAddr::from(([10, 8, 0, (i % 5) as u8 + 1], 80)),
            )
        };
        let fate = rng.below(10);
        let span = conns as u64 * 1_000_000;
        let start = if fate == 2 {
            // Still open at the end of the capture (after the idle ones' last packets).
            t0 + span + 400_000_000 + rng.below(60_000_000)
        } else {
            t0 + rng.below(span)
        };
        let seq = [rng.next_u64() as u32, rng.next_u64() as u32];
        let mut k = Conn {
            rng: &mut rng,
            out: &mut out,
            order: &mut order,
            c,
            s,
            seq,
            ts: start,
        };
        // 4: a lone SYN (a scan probe), closed by the handshake timeout.
        if fate == 4 {
            k.emit(0, TcpFlags::SYN, &[], How::Plain)?;
            continue;
        }
        let deflate = i % 3 == 0;
        let ext = deflate.then_some("permessage-deflate");
        if fate != 5 {
            k.emit(0, TcpFlags::SYN, &[], How::Plain)?;
            k.emit(1, TcpFlags::SYN, &[], How::Plain)?;
            k.emit(0, TcpFlags(0), &[], How::Plain)?;
            let req = upgrade_request(&format!("/chat/{i}"), "example.net", ext);
            k.emit(0, TcpFlags::PSH, &req, How::Plain)?;
            let resp = upgrade_response(ext);
            k.emit(1, TcpFlags::PSH, &resp, How::Plain)?;
        }
        let messages = 2 + k.rng.below(12);
        for m in 0..messages {
            let d = usize::from(k.rng.below(2) == 0);
            let mask = (d == 0).then(|| (k.rng.next_u64() as u32).to_be_bytes());
            let len = 1 + k.rng.below(if m % 5 == 4 { 3000 } else { 200 }) as usize;
            let text: Vec<u8> = (0..len)
                .map(|j| b'a' + ((j + m as usize) % 26) as u8)
                .collect();
            let bytes = if deflate && k.rng.below(2) == 0 {
                frame(true, true, 1, mask, &stored_deflate(&text))
            } else if k.rng.below(6) == 0 {
                // Two fragments with a ping between them.
                let (a, b) = text.split_at(len / 2);
                let mut f = frame(false, false, 1, mask, a);
                f.extend(frame(true, false, 9, mask, b"hb"));
                f.extend(frame(true, false, 0, mask, b));
                f
            } else {
                frame(true, false, 2, mask, &text)
            };
            let how = match k.rng.below(4) {
                0 if fate == 6 => How::Fragments,
                1 if fate == 8 => How::Cut,
                _ => How::Plain,
            };
            if fate == 7 && bytes.len() > 40 && k.rng.below(3) == 0 {
                // Reordered: the second half first, then the first half, then a retransmission.
                let (a, b) = bytes.split_at(bytes.len() / 2);
                let base = k.seq[d];
                k.seq[d] = base.wrapping_add(a.len() as u32);
                k.emit(d, TcpFlags::PSH, b, How::Plain)?;
                k.seq[d] = base;
                k.emit(d, TcpFlags::PSH, a, How::Plain)?;
                k.seq[d] = base;
                k.emit(d, TcpFlags::PSH, a, How::Plain)?;
                k.seq[d] = base.wrapping_add(bytes.len() as u32);
            } else {
                for chunk in bytes.chunks(1448) {
                    k.emit(d, TcpFlags::PSH, chunk, how)?;
                }
            }
            if fate == 3 && m == 0 {
                // Idle past the 300 s timeout; the rest comes as a new mid-stream connection.
                k.ts += 400_000_000;
            }
        }
        match fate {
            // Reset by either side.
            1 => {
                let d = usize::from(k.rng.below(2) == 0);
                k.emit(d, TcpFlags::RST, &[], How::Plain)?;
            }
            // 2: cut by the end of the capture (nothing more).
            2 => {}
            _ => {
                k.emit(
                    0,
                    TcpFlags::PSH,
                    &frame(true, false, 8, Some([1, 2, 3, 4]), b"\x03\xe8bye"),
                    How::Plain,
                )?;
                k.emit(
                    1,
                    TcpFlags::PSH,
                    &frame(true, false, 8, None, b"\x03\xe8"),
                    How::Plain,
                )?;
                k.emit(1, TcpFlags::FIN, &[], How::Plain)?;
                k.emit(0, TcpFlags::FIN, &[], How::Plain)?;
                k.emit(1, TcpFlags(0), &[], How::Plain)?;
            }
        }
    }
    out.sort_by_key(|p| (p.ts, p.order));
    let mut w = PcapWriter::new(Vec::new(), Framing::Ethernet.link_type())?;
    for p in &out {
        w.write_packet_cut(Instant::from_micros(p.wts), &p.data, p.caplen)?;
    }
    Ok(w.into_inner())
}

/// One HTTP/2 frame (RFC 9113 §4.1).
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8], out: &mut Vec<u8>) {
    let l = (payload.len() as u32).to_be_bytes();
    out.extend_from_slice(&[l[1], l[2], l[3], kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// An HPACK block of literal fields without indexing, new names, no Huffman coding
/// (RFC 7541 §6.2.2): what any decoder reads without a table. Names and values < 127 bytes.
fn hpack_literals(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in fields {
        out.push(0x00);
        out.push(n.len() as u8);
        out.extend_from_slice(n.as_bytes());
        out.push(v.len() as u8);
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// A capture of `conns` cleartext HTTP/2 connections (prior knowledge), each with `streams`
/// WebSocket streams (RFC 8441: extended CONNECT, `200`) exchanging messages that interleave
/// across streams (text from the client, binary echoes of other lengths from the server, some
/// in several DATA frames), a clean close and END_STREAM on each; every other connection
/// ends with its streams still open (FIN). Message `m` of stream `s` of connection `c` is
/// `"c{c} s{s} m{m} "` repeated to a length from the seed. Deterministic for a seed.
pub fn h2_websocket_traffic(seed: u64, conns: usize, streams: u32) -> io::Result<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let mut w = PcapWriter::new(Vec::new(), Framing::Ethernet.link_type())?;
    let mut ts = 1_700_000_000_000_000u64;
    for c in 0..conns {
        let cl = SocketAddr::from(([10, 7, 0, 1], 30_000 + c as u16));
        let sv = SocketAddr::from(([10, 7, 0, 2], 8080));
        let mut seq = [rng.next_u64() as u32, rng.next_u64() as u32];
        let mut pkt = |w: &mut PcapWriter<Vec<u8>>,
                       d: usize,
                       flags: TcpFlags,
                       p: &[u8],
                       seq: &mut [u32; 2]| {
            ts += 500;
            let (src, dst) = if d == 0 { (cl, sv) } else { (sv, cl) };
            let mut spec = TcpSpec::new(src, dst).seq(seq[d]).flags(flags).payload(p);
            if !(flags.syn() && d == 0) {
                spec = spec.ack(seq[1 - d]);
            }
            seq[d] = seq[d].wrapping_add(p.len() as u32 + u32::from(flags.syn() || flags.fin()));
            w.write_tcp(Instant::from_micros(ts), Framing::Ethernet, &spec)
        };
        pkt(&mut w, 0, TcpFlags::SYN, &[], &mut seq)?;
        pkt(&mut w, 1, TcpFlags::SYN, &[], &mut seq)?;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        a.extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        h2_frame(0x4, 0, 0, &[], &mut a);
        // SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3).
        h2_frame(0x4, 0, 0, &[0, 8, 0, 0, 0, 1], &mut b);
        for s in 0..streams {
            let id = 2 * s + 1;
            let path = format!("/h2/{c}/{s}");
            let block = hpack_literals(&[
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "http"),
                (":path", &path),
                (":authority", "h2.example"),
                ("sec-websocket-version", "13"),
            ]);
            h2_frame(0x1, 0x4, id, &block, &mut a);
            h2_frame(0x1, 0x4, id, &hpack_literals(&[(":status", "200")]), &mut b);
        }
        let mss = 1448;
        for chunk in a.chunks(mss) {
            pkt(&mut w, 0, TcpFlags::PSH, chunk, &mut seq)?;
        }
        for chunk in b.chunks(mss) {
            pkt(&mut w, 1, TcpFlags::PSH, chunk, &mut seq)?;
        }
        for m in 0..3u32 {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for s in 0..streams {
                let id = 2 * s + 1;
                let text = format!("c{c} s{s} m{m} ").repeat(1 + rng.below(2000) as usize);
                let f = frame(
                    true,
                    false,
                    0x1,
                    Some([1, 2, 3, (s % 256) as u8]),
                    text.as_bytes(),
                );
                // The WebSocket frame in two DATA frames.
                let cut = f.len() / 3;
                h2_frame(0x0, 0, id, &f[..cut], &mut a);
                h2_frame(0x0, 0, id, &f[cut..], &mut a);
                let echo: Vec<u8> = text.bytes().rev().collect();
                h2_frame(0x0, 0, id, &frame(true, false, 0x2, None, &echo), &mut b);
            }
            for chunk in a.chunks(mss) {
                pkt(&mut w, 0, TcpFlags::PSH, chunk, &mut seq)?;
            }
            for chunk in b.chunks(mss) {
                pkt(&mut w, 1, TcpFlags::PSH, chunk, &mut seq)?;
            }
        }
        if c % 2 == 0 {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for s in 0..streams {
                let id = 2 * s + 1;
                h2_frame(
                    0x0,
                    0x1,
                    id,
                    &frame(true, false, 0x8, Some([9, 9, 9, 9]), b"\x03\xe8"),
                    &mut a,
                );
                h2_frame(
                    0x0,
                    0x1,
                    id,
                    &frame(true, false, 0x8, None, b"\x03\xe8"),
                    &mut b,
                );
            }
            pkt(&mut w, 0, TcpFlags::PSH, &a, &mut seq)?;
            pkt(&mut w, 1, TcpFlags::PSH, &b, &mut seq)?;
        }
        pkt(&mut w, 0, TcpFlags::FIN, &[], &mut seq)?;
        pkt(&mut w, 1, TcpFlags::FIN, &[], &mut seq)?;
    }
    Ok(w.into_inner())
}
