//! No panic and bounded memory: Zeek's fuzz corpus, truncated and garbage files, a declared
//! 2^62-byte frame, 100k SYN-only flows.

use core::net::SocketAddr;
use std::io::Cursor;

use wscope_inspect::analyzer::{Analyzer, AnalyzerConfig};
use wscope_inspect::capture::Capture;
use wscope_inspect::decode::TcpFlags;
use wscope_inspect::event::EventKind;
use wscope_inspect::session::{Session, SessionConfig};
use wscope_inspect::tcp::{ConnMeta, FlowConfig};
use wscope_inspect::Event;
use wscope_proto::role::Direction;
use wscope_proto::time::Instant;
use wscope_test_support::capture::{pcapng_with_skipped_packets, Framing, PcapWriter, TcpSpec};

use crate::support::*;
use wscope_test_support::wire::{upgrade_request, upgrade_response};

pub(crate) fn meta() -> ConnMeta {
    let orig: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let resp: SocketAddr = "10.0.0.2:80".parse().unwrap();
    ConnMeta::new(orig, resp)
}

/// Unpacks the fuzz corpus zip into a temporary directory (unzip or python3).
fn fuzz_entries() -> Option<Vec<Vec<u8>>> {
    let zip = corpus()?.join("zeek/fuzz-corpus/websocket-corpus.zip");
    let dir = std::env::temp_dir().join(format!("wscope-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).ok()?;
    let ok = std::process::Command::new("unzip")
        .arg("-q")
        .arg("-o")
        .arg(&zip)
        .arg("-d")
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success())
        || std::process::Command::new("python3")
            .args([
                "-c",
                "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])",
            ])
            .arg(&zip)
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "SKIPPED: neither unzip nor python3 could unpack {}",
            zip.display()
        );
        return None;
    }
    let mut out = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()? {
            let p = e.ok()?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(std::fs::read(&p).ok()?);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    out.sort();
    Some(out)
}

/// Zeek's FuzzBuffer chunks: `\x01PKT`, a byte whose low bit says originator, then data.
fn chunks(input: &[u8]) -> Vec<(bool, &[u8])> {
    const MARK: &[u8] = b"\x01PKT";
    let mut starts = Vec::new();
    let mut i = 0;
    while i + MARK.len() <= input.len() {
        if &input[i..i + MARK.len()] == MARK {
            starts.push(i);
            i += MARK.len();
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for (n, &s) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(input.len());
        let body = &input[s + MARK.len()..end];
        if let Some((&flag, data)) = body.split_first() {
            out.push((flag & 1 == 1, data));
        }
    }
    out
}

#[test]
fn zeek_fuzz_corpus_no_panic_bounded() {
    let Some(entries) = fuzz_entries() else {
        return;
    };
    assert!(entries.len() > 200, "{} entries", entries.len());
    let conn = meta();
    let mut total_events = 0u64;
    for (n, entry) in entries.iter().enumerate() {
        for after in [true, false] {
            let cfg = SessionConfig {
                digest: true,
                ..SessionConfig::default()
            };
            let mut s = if after {
                Session::after_handshake(cfg)
            } else {
                Session::new(cfg)
            };
            let mut count = 0u64;
            let mut sink = |ev: &Event<'_>| {
                count += 1;
                if let EventKind::FrameData { data, .. } = ev.kind {
                    assert!(data.len() <= 8192);
                }
            };
            for (i, (orig, data)) in chunks(entry).into_iter().enumerate() {
                let dir = if orig {
                    Direction::ClientToServer
                } else {
                    Direction::ServerToClient
                };
                let ts = Instant::from_micros(i as u64);
                s.data(&conn, ts, dir, data, &mut sink);
                if i % 7 == 3 {
                    s.gap(&conn, ts, dir, 3, &mut sink);
                }
                assert!(
                    s.buffered() <= 1 << 21,
                    "entry {n}: {} bytes held",
                    s.buffered()
                );
            }
            s.eof(&conn, Instant::ZERO, Direction::ClientToServer, &mut sink);
            s.eof(&conn, Instant::ZERO, Direction::ServerToClient, &mut sink);
            total_events += count;
        }
    }
    assert!(total_events > 1000, "{total_events} events");
}

pub(crate) fn handshake_pcap(frames_after: &[(bool, &[u8])], fin: bool) -> Vec<u8> {
    handshake_pcap_dropping(frames_after, fin, &[])
}

/// Like `handshake_pcap`, leaving out the pieces whose index is in `drop` (their sequence
/// space stays used: a capture loss).
pub(crate) fn handshake_pcap_dropping(
    frames_after: &[(bool, &[u8])],
    fin: bool,
    drop: &[usize],
) -> Vec<u8> {
    let c: SocketAddr = "10.9.0.1:41000".parse().unwrap();
    let s: SocketAddr = "10.9.0.2:80".parse().unwrap();
    let mut w = PcapWriter::new(Vec::new(), Framing::Ethernet.link_type()).unwrap();
    let mut ts = 1_000_000u64;
    let (mut cs, mut ss) = (100u32, 5000u32);
    let mut put = |w: &mut PcapWriter<Vec<u8>>, spec: TcpSpec<'_>| {
        ts += 10;
        w.write_tcp(Instant::from_micros(ts), Framing::Ethernet, &spec)
            .unwrap();
    };
    put(&mut w, TcpSpec::new(c, s).seq(cs).flags(TcpFlags::SYN));
    cs += 1;
    put(
        &mut w,
        TcpSpec::new(s, c).seq(ss).ack(cs).flags(TcpFlags::SYN),
    );
    ss += 1;
    let req = &upgrade_request("/", "x", None)[..];
    let resp = &upgrade_response(None)[..];
    put(&mut w, TcpSpec::new(c, s).seq(cs).ack(ss).payload(req));
    cs += req.len() as u32;
    put(&mut w, TcpSpec::new(s, c).seq(ss).ack(cs).payload(resp));
    ss += resp.len() as u32;
    for (i, (from_client, bytes)) in frames_after.iter().enumerate() {
        let keep = !drop.contains(&i);
        if *from_client {
            if keep {
                put(&mut w, TcpSpec::new(c, s).seq(cs).ack(ss).payload(bytes));
            }
            cs = cs.wrapping_add(bytes.len() as u32);
        } else {
            if keep {
                put(&mut w, TcpSpec::new(s, c).seq(ss).ack(cs).payload(bytes));
            }
            ss = ss.wrapping_add(bytes.len() as u32);
        }
    }
    if fin {
        put(
            &mut w,
            TcpSpec::new(s, c).seq(ss).ack(cs).flags(TcpFlags::FIN),
        );
        put(
            &mut w,
            TcpSpec::new(c, s).seq(cs).ack(ss + 1).flags(TcpFlags::FIN),
        );
    }
    w.into_inner()
}

#[test]
fn declared_2_pow_62_frame() {
    let mut frame = vec![0x82, 127];
    frame.extend_from_slice(&(1u64 << 62).to_be_bytes());
    let payload = vec![0x5a; 60_000];
    let mut pieces: Vec<(bool, &[u8])> = vec![(false, &frame)];
    for _ in 0..20 {
        pieces.push((false, &payload));
    }
    let pcap = handshake_pcap(&pieces, true);
    let mut cap = Capture::from_reader(Cursor::new(pcap), "big");
    let mut frames = Vec::new();
    let mut data = 0u64;
    let mut max_chunk = 0usize;
    let mut anomalies = Vec::new();
    let mut messages = 0;
    let stats =
        Analyzer::new(AnalyzerConfig::default()).run(
            &mut cap,
            &mut |ev: &Event<'_>| match &ev.kind {
                EventKind::Frame { header, .. } => frames.push(header.payload_len),
                EventKind::FrameData { data: d, .. } => {
                    data += d.len() as u64;
                    max_chunk = max_chunk.max(d.len());
                }
                EventKind::Anomaly { name, .. } => anomalies.push(*name),
                EventKind::Message { .. } => messages += 1,
                _ => {}
            },
        );
    stats.expect("a whole capture");
    assert_eq!(frames, [1u64 << 62]);
    assert_eq!(data, 20 * 60_000);
    assert!(max_chunk <= 8192);
    assert_eq!(messages, 0, "the message never ended");
    assert!(anomalies.contains(&"eof_in_frame"), "{anomalies:?}");
}

#[test]
fn declared_huge_frame_session_holds_nothing() {
    let conn = meta();
    let mut s = Session::after_handshake(SessionConfig::default());
    let mut head = vec![0x82, 127];
    head.extend_from_slice(&(1u64 << 62).to_be_bytes());
    let mut sink = CountSink::default();
    s.data(
        &conn,
        Instant::ZERO,
        Direction::ServerToClient,
        &head,
        &mut sink,
    );
    let block = vec![7u8; 1 << 20];
    for _ in 0..16 {
        s.data(
            &conn,
            Instant::ZERO,
            Direction::ServerToClient,
            &block,
            &mut sink,
        );
        assert!(s.buffered() <= 1 << 21, "{}", s.buffered());
    }
    assert!(sink.0 >= 16 * 128, "{} events", sink.0);
}

#[test]
fn truncated_captures() {
    let Some(corpus) = corpus() else { return };
    let bytes = std::fs::read(corpus.join("zeek/traces/websocket/jupyter-websocket.pcap")).unwrap();
    let mut step = 1;
    let mut cut = 0;
    while cut < bytes.len() {
        let mut cap = Capture::from_reader(Cursor::new(bytes[..cut].to_vec()), "cut");
        let mut n = CountSink::default();
        let stats = Analyzer::new(AnalyzerConfig::default())
            .run(&mut cap, &mut n)
            .unwrap_or_else(wscope_inspect::analyzer::Error::into_stats);
        assert!(stats.sessions <= 1);
        cut += step;
        step = (step * 3 / 2).max(step + 1);
    }
}

#[test]
fn garbage_files() {
    let mut rng = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for len in [0usize, 1, 3, 24, 100, 4096, 100_000] {
        let mut g: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        for magic in [None, Some(0xa1b2_c3d4u32), Some(0x0a0d_0d0a)] {
            if let Some(m) = magic {
                if g.len() >= 4 {
                    g[..4].copy_from_slice(&m.to_le_bytes());
                }
            }
            let mut cap = Capture::from_reader(Cursor::new(g.clone()), "garbage");
            let mut n = CountSink::default();
            let stats = Analyzer::new(AnalyzerConfig::default())
                .run(&mut cap, &mut n)
                .unwrap_or_else(wscope_inspect::analyzer::Error::into_stats);
            assert_eq!(stats.sessions, 0);
        }
    }
    // Valid pcap framing around random TCP payloads.
    let c: SocketAddr = "10.1.1.1:1234".parse().unwrap();
    let s: SocketAddr = "10.1.1.2:80".parse().unwrap();
    let mut w = PcapWriter::new(Vec::new(), Framing::Ethernet.link_type()).unwrap();
    let mut seq = [1u32, 1];
    for i in 0..2000u64 {
        let len = (next() % 300) as usize;
        let p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let up = next() % 2 == 0;
        let (a, b, k) = if up { (c, s, 0) } else { (s, c, 1) };
        w.write_tcp(
            Instant::from_micros(i),
            Framing::Ethernet,
            &TcpSpec::new(a, b).seq(seq[k]).payload(&p),
        )
        .unwrap();
        seq[k] = seq[k].wrapping_add(len as u32);
    }
    let mut cap = Capture::from_reader(Cursor::new(w.into_inner()), "random-tcp");
    let mut n = CountSink::default();
    let stats = Analyzer::new(AnalyzerConfig::default())
        .run(&mut cap, &mut n)
        .unwrap();
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.sessions, 0);
}

#[test]
fn syn_only_flows_100k() {
    let mut w = PcapWriter::new(Vec::new(), Framing::Raw.link_type()).unwrap();
    for i in 0..100_000u32 {
        let src = SocketAddr::from((
            [10, (i >> 16) as u8, (i >> 8) as u8, i as u8],
            1024 + (i % 50_000) as u16,
        ));
        let dst: SocketAddr = "192.168.0.1:80".parse().unwrap();
        w.write_tcp(
            Instant::from_micros(1_000_000 + u64::from(i) * 100),
            Framing::Raw,
            &TcpSpec::new(src, dst).seq(i).flags(TcpFlags::SYN),
        )
        .unwrap();
    }
    let cfg = AnalyzerConfig {
        flow: FlowConfig {
            max_flows: 20_000,
            ..FlowConfig::default()
        },
        ..AnalyzerConfig::default()
    };
    let mut cap = Capture::from_reader(Cursor::new(w.into_inner()), "syn-flood");
    let mut n = CountSink::default();
    let stats = Analyzer::new(cfg).run(&mut cap, &mut n).unwrap();
    assert_eq!(stats.connections, 100_000);
    assert_eq!(stats.sessions, 0);
    assert_eq!(n.0, 0, "no events for SYN-only flows");
    assert!(
        stats.flows.peak_tracked <= 20_000,
        "{}",
        stats.flows.peak_tracked
    );
}

#[test]
fn ip_fragmented_segments_are_analysed() {
    // A server message of 6000 bytes in one TCP segment that crossed a 1500-byte MTU hop
    // (IPv4) or a 1280-byte one (IPv6): the analyzer sees the whole message.
    for (c, s, mtu) in [
        ("10.7.0.1:41000", "10.7.0.2:80", 1480),
        ("[2001:db8::1]:41000", "[2001:db8::2]:80", 1232),
    ] {
        let (c, s): (SocketAddr, SocketAddr) = (c.parse().unwrap(), s.parse().unwrap());
        let payload: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
        let mut msg = vec![0x82, 126];
        msg.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        msg.extend_from_slice(&payload);
        let req = &upgrade_request("/", "x", None)[..];
        let resp = &upgrade_response(None)[..];
        let mut w = PcapWriter::new(Vec::new(), Framing::Ethernet.link_type()).unwrap();
        let ts = |n: u64| Instant::from_micros(1_000_000 + n);
        let f = Framing::Ethernet;
        w.write_tcp(ts(1), f, &TcpSpec::new(c, s).seq(100).flags(TcpFlags::SYN))
            .unwrap();
        w.write_tcp(
            ts(2),
            f,
            &TcpSpec::new(s, c).seq(900).ack(101).flags(TcpFlags::SYN),
        )
        .unwrap();
        w.write_tcp(ts(3), f, &TcpSpec::new(c, s).seq(101).ack(901).payload(req))
            .unwrap();
        let cs = 101 + req.len() as u32;
        w.write_tcp(ts(4), f, &TcpSpec::new(s, c).seq(901).ack(cs).payload(resp))
            .unwrap();
        let ss = 901 + resp.len() as u32;
        let n = w
            .write_tcp_fragmented(
                ts(5),
                f,
                &TcpSpec::new(s, c).seq(ss).ack(cs).payload(&msg),
                mtu,
            )
            .unwrap();
        assert!(n >= 5, "{n} fragments");
        let mut cap = Capture::from_reader(Cursor::new(w.into_inner()), "frag");
        let mut messages = Vec::new();
        let mut data = 0usize;
        let mut anomalies = Vec::new();
        let stats =
            Analyzer::new(AnalyzerConfig::default()).run(&mut cap, &mut |ev: &Event<'_>| match &ev
                .kind
            {
                EventKind::FrameData { data: d, .. } => data += d.len(),
                EventKind::Message { len, .. } => messages.push(*len),
                EventKind::Anomaly { name, .. } => anomalies.push(*name),
                _ => {}
            });
        let stats = stats.expect("a whole capture");
        assert_eq!(messages, vec![6000], "{c}");
        assert_eq!(data, 6000);
        assert!(anomalies.is_empty(), "{anomalies:?}");
        assert_eq!(stats.decode.reassembled, 1);
        assert_eq!(stats.decode.fragments, n as u64);
    }
}

#[test]
fn unusable_inputs_are_typed_errors_naming_the_file() {
    use wscope_inspect::capture::CaptureErrorKind;
    let dir = std::env::temp_dir().join(format!("wscope-inspect-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.join("notes.txt");
    std::fs::write(&text, b"hello, this is not a capture\n").unwrap();
    let missing = dir.join("missing.pcap");
    let cases = [
        (&missing, CaptureErrorKind::Io, "the file does not exist"),
        (&dir, CaptureErrorKind::Io, "is a directory"),
        (&empty, CaptureErrorKind::Empty, "the file is empty"),
        (
            &text,
            CaptureErrorKind::NotACapture,
            "not a pcap or pcapng capture",
        ),
    ];
    for (path, kind, says) in cases {
        let mut cap = Capture::from_paths([path]);
        let mut n = CountSink::default();
        let err = Analyzer::new(AnalyzerConfig::default())
            .run(&mut cap, &mut n)
            .expect_err("not a capture");
        assert_eq!(err.kind(), kind, "{}", path.display());
        let msg = err.to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(msg.contains(says), "{msg}");
        assert_eq!(err.stats().capture.packets, 0);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn skipped_packets_are_counted_and_noted_once() {
    use wscope_inspect::sink::{CaptureNote, Sink};
    #[derive(Default)]
    struct Notes(Vec<CaptureNote>);
    impl Sink for Notes {
        fn event(&mut self, _ev: &Event<'_>) {}
        fn capture_note(&mut self, note: &CaptureNote) {
            self.0.push(note.clone());
        }
    }
    let mut cap = Capture::from_reader(Cursor::new(pcapng_with_skipped_packets(false)), "ng");
    let mut notes = Notes::default();
    let stats = Analyzer::new(AnalyzerConfig::default())
        .run(&mut cap, &mut notes)
        .unwrap();
    assert_eq!(stats.decode.unsupported_link, 2);
    assert_eq!(stats.capture.unknown_interface, 1);
    assert_eq!(stats.connections, 1);
    let got: Vec<(&str, u64)> = notes.0.iter().map(|n| (n.name, n.count)).collect();
    assert_eq!(
        got,
        [("unsupported_link_type", 2), ("undeclared_interface", 1)]
    );
}

#[test]
fn random_bytes_after_a_capture_loss_give_no_false_messages() {
    // Issue 23's reproducer through the whole analyzer: a session, a lost segment, then
    // 32 MiB of random bytes from the server (seeded xorshift). It gave 55 false frames.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut random = vec![0u8; 32 << 20];
    for chunk in random.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = chunk.len();
        chunk.copy_from_slice(&x.to_le_bytes()[..n]);
    }
    let mut pieces: Vec<(bool, &[u8])> = vec![(false, b"\x81\x02hi"), (false, &[0x82; 700])];
    pieces.extend(random.chunks(1448).map(|p| (false, p)));
    let pcap = handshake_pcap_dropping(&pieces, true, &[1]);
    let mut cap = Capture::from_reader(Cursor::new(pcap), "random-after-loss");
    let (mut frames, mut messages, mut gaps) = (0, 0, 0);
    let stats = Analyzer::new(AnalyzerConfig::default())
        .run(&mut cap, &mut |ev: &Event<'_>| match &ev.kind {
            EventKind::Frame { .. } => frames += 1,
            EventKind::Message { .. } => messages += 1,
            EventKind::Anomaly { name: "gap", .. } => gaps += 1,
            _ => {}
        })
        .unwrap();
    assert_eq!(stats.sessions, 1);
    assert!(gaps >= 1, "the loss is seen");
    assert_eq!((frames, messages), (1, 1), "only the frame before the loss");
}
