//! Zeek baselines: event lines, websocket.log and weird.log rows for every corpus trace.

use std::path::{Path, PathBuf};

use wscope_inspect::analyzer::AnalyzerConfig;
use wscope_inspect::event::OwnedKind;
use wscope_proto::frame::OpCode;

use crate::support::*;

fn trace(corpus: &Path, name: &str) -> PathBuf {
    corpus.join("zeek/traces").join(name)
}

fn test_dir(corpus: &Path, name: &str) -> PathBuf {
    corpus
        .join("zeek/tests")
        .join(format!("scripts.base.protocols.{name}"))
}

#[test]
fn events_out_matches_zeek() {
    let Some(corpus) = corpus() else { return };
    let mut ours = Vec::new();
    for name in [
        "jupyter-websocket.pcap",
        "wstunnel-http.pcap",
        "broker-websocket.pcap",
        "message-too-big-status.pcap",
        "two-binary-fragments.pcap",
    ] {
        ours.push(name.to_string());
        let (events, _) = run_file(
            &trace(&corpus, &format!("websocket/{name}")),
            AnalyzerConfig::default(),
        );
        ours.extend(zeek_print(
            &events,
            Script {
                established_record: true,
                message: true,
            },
        ));
    }
    let theirs = baseline(&test_dir(&corpus, "websocket.events").join("out"));
    assert_lines("events/out", &ours, &theirs);
}

#[test]
fn events_traces_have_no_zeek_weirds() {
    let Some(corpus) = corpus() else { return };
    for name in [
        "jupyter-websocket.pcap",
        "wstunnel-http.pcap",
        "broker-websocket.pcap",
        "message-too-big-status.pcap",
        "two-binary-fragments.pcap",
    ] {
        let (_, weird) = run_logs(&trace(&corpus, &format!("websocket/{name}")), true);
        assert!(
            weird.is_empty(),
            "{name}: Zeek writes no weird.log, we wrote {weird}"
        );
    }
}

#[test]
fn wstunnel_http_unmasked_client_frames_are_reported() {
    // Deliberate difference: Zeek says nothing about unmasked client frames.
    let Some(corpus) = corpus() else { return };
    let (events, _) = run_file(
        &trace(&corpus, "websocket/wstunnel-http.pcap"),
        AnalyzerConfig::default(),
    );
    let unmasked: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            OwnedKind::Anomaly { name, .. } if e.is_orig() => Some(*name),
            _ => None,
        })
        .collect();
    assert_eq!(unmasked.len(), 2, "{unmasked:?}");
    assert!(unmasked.iter().all(|n| n.contains("mask")), "{unmasked:?}");
}

#[test]
fn coalesced_reply_ping_matches_zeek() {
    let Some(corpus) = corpus() else { return };
    let dir = test_dir(&corpus, "websocket.coalesced-reply-ping");
    let script = Script {
        established_record: false,
        message: false,
    };
    for (file, out) in [
        ("reply-ping-separate.pcap", "out-separate"),
        ("reply-ping-coalesced.pcap", "out-coalesced"),
    ] {
        let (events, _) = run_file(
            &trace(&corpus, &format!("websocket/{file}")),
            AnalyzerConfig::default(),
        );
        assert_lines(out, &zeek_print(&events, script), &baseline(&dir.join(out)));
    }
    // weird.log: only the coalesced trace has one.
    let (_, weird) = run_logs(&trace(&corpus, "websocket/reply-ping-separate.pcap"), true);
    assert!(weird.is_empty(), "{weird}");
    let path = trace(&corpus, "websocket/reply-ping-coalesced.pcap");
    let (events, _) = run_file(&path, AnalyzerConfig::default());
    let (_, weird) = run_logs(&path, true);
    let weird = map_uids(&weird, &uids(&events));
    assert_lines(
        "coalesced weird.log",
        &log_rows(&weird),
        &log_rows(&baseline(&dir.join("weird.log")).join("\n")),
    );
}

#[test]
fn close_too_large_matches_zeek_capped() {
    let Some(corpus) = corpus() else { return };
    let dir = test_dir(&corpus, "websocket.close-too-large");
    let path = trace(&corpus, "websocket/oversized-close-frame.pcapng");
    let (events, _) = run_file(&path, AnalyzerConfig::default());
    let ours: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            OwnedKind::Close { reason, .. } => Some(format!("Close length: {}", reason.len())),
            _ => None,
        })
        .collect();
    assert_lines(
        "out-pac-capped",
        &ours,
        &baseline(&dir.join("out-pac-capped")),
    );
    let (_, weird) = run_logs(&path, true);
    let weird = map_uids(&weird, &uids(&events));
    // Deliberate difference (docs/zeek-differences.md): the trace's packets are stamped
    // 0.000000..0.000007 and we report the close frame's packet time; Zeek's weird says
    // 1.000000. Everything after the ts column must match.
    let ours = log_rows(&weird);
    assert!(ours.iter().all(|r| r.starts_with("0.000005\t")), "{ours:?}");
    let strip = |rows: Vec<String>| -> Vec<String> {
        rows.into_iter()
            .map(|r| {
                r.split_once('\t')
                    .map(|(_, rest)| rest.to_string())
                    .unwrap_or(r)
            })
            .collect()
    };
    assert_lines(
        "weird-pac.log",
        &strip(ours),
        &strip(log_rows(&baseline(&dir.join("weird-pac.log")).join("\n"))),
    );
}

#[test]
fn key_accept_wrong_matches_zeek() {
    let Some(corpus) = corpus() else { return };
    let dir = test_dir(&corpus, "websocket.key-accept-wrong");
    let path = trace(&corpus, "websocket/wrong-accept-header.pcap");
    let (events, _) = run_file(&path, AnalyzerConfig::default());
    let (ws, weird) = run_logs(&path, true);
    let map = uids(&events);
    assert_lines(
        "websocket.log",
        &log_rows(&map_uids(&ws, &map)),
        &log_rows(&baseline(&dir.join("websocket.log")).join("\n")),
    );
    assert_lines(
        "weird.log",
        &log_rows(&map_uids(&weird, &map)),
        &log_rows(&baseline(&dir.join("weird.log")).join("\n")),
    );
    // Analysis goes on after the mismatch: the server ping is reported.
    assert!(events
        .iter()
        .any(|e| matches!(&e.kind, OwnedKind::Message { opcode, .. } if *opcode == OpCode::PING)));
}

#[test]
fn every_websocket_log_baseline_matches() {
    let Some(corpus) = corpus() else { return };
    let cases = [
        ("http.101-switching-protocols", "http/websocket.pcap"),
        (
            "websocket.broker-websocket",
            "websocket/broker-websocket.pcap",
        ),
        (
            "websocket.jupyter-websocket",
            "websocket/jupyter-websocket.pcap",
        ),
        (
            "websocket.key-accept-wrong",
            "websocket/wrong-accept-header.pcap",
        ),
        ("websocket.wstunnel-http", "websocket/wstunnel-http.pcap"),
        ("websocket.wstunnel-https", "websocket/wstunnel-https.pcap"),
        ("websocket.wstunnel-ssh", "websocket/wstunnel-ssh.pcap"),
        (
            "websocket.wstunnel-ssh-configure",
            "websocket/wstunnel-ssh.pcap",
        ),
        (
            "websocket.wstunnel-ssh-configure-break",
            "websocket/wstunnel-ssh.pcap",
        ),
        (
            "websocket.wstunnel-ssh-configure-wrong",
            "websocket/wstunnel-ssh.pcap",
        ),
    ];
    for (test, file) in cases {
        let path = trace(&corpus, file);
        let (events, _) = run_file(&path, AnalyzerConfig::default());
        let (ws, _) = run_logs(&path, true);
        assert_lines(
            test,
            &log_rows(&map_uids(&ws, &uids(&events))),
            &log_rows(&baseline(&test_dir(&corpus, test).join("websocket.log")).join("\n")),
        );
    }
}

#[test]
fn fragmented_http_reply_reassembles_the_tunnelled_reply() {
    // Zeek's baseline prints the inner HTTP analyzer's headers; we have no inner HTTP
    // analyzer, so we check the message contents it parsed them from.
    let Some(corpus) = corpus() else { return };
    let path = trace(&corpus, "websocket/fragmented-http-reply.pcap");
    let (events, _) = run_file(&path, AnalyzerConfig::default());
    let mut msgs: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    let mut cur: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut established = 0;
    for e in &events {
        match &e.kind {
            OwnedKind::Established(_) => established += 1,
            OwnedKind::MessageData {
                data, message_end, ..
            } => {
                let d = e.dir.index();
                cur[d].extend_from_slice(data);
                if *message_end {
                    msgs[d].push(core::mem::take(&mut cur[d]));
                }
            }
            _ => {}
        }
    }
    assert_eq!(established, 1);
    assert_eq!(
        msgs[0],
        [b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec()]
    );
    assert_eq!(
        msgs[1],
        [b"HTTP/1.1 200 OK\r\nServer: dont ask\r\nContent-Length: 0\r\n\r\n".to_vec()]
    );
    // One binary message from five frames.
    let server_binary = events
        .iter()
        .filter(|e| {
            !e.is_orig()
                && matches!(&e.kind, OwnedKind::Message { opcode, .. } if *opcode == OpCode::BINARY)
        })
        .count();
    assert_eq!(server_binary, 1);
}

#[test]
fn every_trace_runs_and_is_deterministic() {
    let Some(corpus) = corpus() else { return };
    let mut files = Vec::new();
    for sub in ["websocket", "http"] {
        for e in std::fs::read_dir(corpus.join("zeek/traces").join(sub)).unwrap() {
            files.push(e.unwrap().path());
        }
    }
    files.sort();
    assert_eq!(files.len(), 13);
    for f in files {
        let (a, sa) = run_file(&f, AnalyzerConfig::default());
        let (b, _) = run_file(&f, AnalyzerConfig::default());
        assert_eq!(a, b, "{}", f.display());
        // Zeek's trace of a wrong `Sec-WebSocket-Accept` is an upgrade the client rejects
        // (RFC 6455 §4.1): no session, although Zeek logs it.
        if f.ends_with("wrong-accept-header.pcap") {
            assert_eq!((sa.sessions, sa.rejected_upgrades), (0, 1));
            assert_eq!(sa.frames, 0, "nothing after a rejected upgrade is counted");
        } else {
            assert!(sa.sessions >= 1, "{}: no session", f.display());
        }
        // Zeek's order per frame: frame, data..., close, message.
        let mut last_frame_seen = [false; 2];
        for e in &a {
            let d = e.dir.index();
            match &e.kind {
                OwnedKind::Frame { .. } => last_frame_seen[d] = true,
                OwnedKind::FrameData { data, .. } => {
                    assert!(last_frame_seen[d]);
                    assert!(!data.is_empty() && data.len() <= 8192);
                }
                _ => {}
            }
        }
    }
}

#[test]
fn wstunnel_traces_frame_counts() {
    let Some(corpus) = corpus() else { return };
    let (ev, st) = run_file(
        &trace(&corpus, "websocket/wstunnel-https.pcap"),
        AnalyzerConfig::default(),
    );
    assert_eq!(st.frames, 38);
    assert_eq!(st.closes.get(&1000), Some(&2));
    assert!(!ev.is_empty());
    let (_, st) = run_file(
        &trace(&corpus, "websocket/wstunnel-ssh.pcap"),
        AnalyzerConfig::default(),
    );
    assert_eq!(st.sessions, 2);
    assert_eq!(st.frames, 22 + 133);
}

/// The trace with some packets left out (by 1-based number), as a pcap in memory.
fn without_packets(path: &Path, drop: impl Fn(u64) -> bool) -> Vec<u8> {
    use wscope_inspect::capture::CaptureReader;
    use wscope_test_support::capture::PcapWriter;
    let mut r = CaptureReader::open(path).unwrap();
    let mut w: Option<PcapWriter<Vec<u8>>> = None;
    let mut n = 0u64;
    while let Some(p) = r.next_packet().unwrap() {
        n += 1;
        let w = w.get_or_insert_with(|| PcapWriter::new(Vec::new(), p.link).unwrap());
        if !drop(n) {
            w.write_packet(p.ts, p.data).unwrap();
        }
    }
    w.unwrap().into_inner()
}

fn run_bytes(
    bytes: Vec<u8>,
) -> (
    Vec<wscope_inspect::event::OwnedEvent>,
    wscope_inspect::Stats,
) {
    use wscope_inspect::analyzer::Analyzer;
    use wscope_inspect::capture::Capture;
    use wscope_inspect::sink::VecSink;
    let mut cap = Capture::from_reader(std::io::Cursor::new(bytes), "mem");
    let mut sink = VecSink::default();
    let stats = Analyzer::new(AnalyzerConfig::default())
        .run(&mut cap, &mut sink)
        .unwrap_or_else(wscope_inspect::analyzer::Error::into_stats);
    (sink.events, stats)
}

#[test]
fn capture_starting_mid_stream_gives_no_false_session() {
    let Some(corpus) = corpus() else { return };
    // Leave out the handshake: the capture starts in the middle of the WebSocket traffic.
    let bytes = without_packets(&trace(&corpus, "websocket/jupyter-websocket.pcap"), |n| {
        n <= 6
    });
    let (events, stats) = run_bytes(bytes);
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.mid_stream, 1);
    assert_eq!(stats.sessions, 0);
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn lost_segment_inside_a_payload_keeps_the_connection_analysed() {
    // Deliberate difference: Zeek stops the WebSocket analysis at the first gap.
    let mut big = vec![0x82, 126];
    big.extend_from_slice(&6000u16.to_be_bytes());
    big.extend((0..6000u32).map(|i| i as u8));
    let pieces: Vec<&[u8]> = big.chunks(1200).collect();
    let after = [0x81, 5, b'a', b'f', b't', b'e', b'r'];
    let mut seq: Vec<(bool, &[u8])> = pieces.iter().map(|p| (false, *p)).collect();
    seq.push((false, &after));
    let bytes = crate::robustness::handshake_pcap_dropping(&seq, true, &[2]);
    let (events, stats) = run_bytes(bytes);
    let names: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.kind {
            OwnedKind::Anomaly { name, .. } => Some(*name),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["gap"]);
    let gap_detail = events.iter().find_map(|e| match &e.kind {
        OwnedKind::Anomaly { detail, .. } => Some(detail.clone()),
        _ => None,
    });
    assert_eq!(
        gap_detail.as_deref(),
        Some("1200 bytes lost inside a payload")
    );
    // Both messages are reported; the text after the gap is intact.
    assert_eq!(stats.message_count(), 2);
    let data: usize = events
        .iter()
        .filter_map(|e| match &e.kind {
            OwnedKind::FrameData { data, .. } => Some(data.len()),
            _ => None,
        })
        .sum();
    assert_eq!(data, 6000 - 1200 + 5);
    assert!(events
        .iter()
        .any(|e| matches!(&e.kind, OwnedKind::MessageData { data, .. } if data[..] == *b"after")));
}

#[test]
fn lost_segment_in_a_real_trace_is_survived() {
    let Some(corpus) = corpus() else { return };
    let path = trace(&corpus, "websocket/wstunnel-https.pcap");
    let mut r = wscope_inspect::capture::CaptureReader::open(&path).unwrap();
    let mut n = 0u64;
    let mut big = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        n += 1;
        if p.data.len() > 1400 {
            big.push(n);
        }
    }
    let mut both_closes = 0;
    let mut lost = Vec::new();
    for &victim in &big {
        let (events, stats) = run_bytes(without_packets(&path, |k| k == victim));
        assert!(events
            .iter()
            .any(|e| matches!(&e.kind, OwnedKind::Anomaly { name: "gap", .. })));
        assert_eq!(stats.sessions, 1);
        // Is the connection still followed to its end (both closes seen)?
        if stats.closes.get(&1000) == Some(&2) {
            both_closes += 1;
        } else {
            lost.push(victim);
        }
    }
    eprintln!(
        "wstunnel-https, one full-size segment dropped: followed to the end in {both_closes} of {} cases; not after dropping packets {lost:?}",
        big.len()
    );
    // Zeek: 0 (it stops at the first gap). When the lost bytes hold a frame header the core
    // resynchronises on a plausible header confirmed by the headers after it; inside TLS
    // ciphertext a false chain still wins now and then (48 of 57 recover today, 40 before
    // chains were required; see docs/zeek-differences.md).
    assert!(
        both_closes * 6 >= big.len() * 5,
        "{both_closes} of {}",
        big.len()
    );
}
