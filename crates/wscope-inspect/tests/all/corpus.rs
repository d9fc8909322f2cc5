//! The real traces of ../shared/corpus through the whole pipeline.

use std::path::{Path, PathBuf};

use wscope_inspect::capture::Capture;
use wscope_inspect::tcp::{CloseReason, FlowConfig};

use crate::support::{corpus, Collector, C2S, S2C};

fn traces(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.join("zeek/traces"), &mut out);
    walk(&root.join("suricata-verify"), &mut out);
    out.sort();
    out
}

struct Outcome {
    name: String,
    col: Collector,
    summary: wscope_inspect::Summary,
}

fn analyse(path: &Path) -> Outcome {
    let mut cap = Capture::from_paths([path]);
    let mut col = Collector::default();
    let summary = wscope_inspect::reassemble(&mut cap, FlowConfig::default(), &mut col);
    col.check_contract();
    Outcome {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        col,
        summary,
    }
}

fn starts_with(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && &hay[..needle.len()] == needle
}

#[test]
fn every_corpus_trace_reassembles_sanely() {
    let Some(root) = corpus() else { return };
    let paths = traces(&root);
    assert_eq!(paths.len(), 17, "{paths:#?}");
    let mut report = String::new();
    for path in &paths {
        let o = analyse(path);
        assert!(
            o.summary.error.is_none(),
            "{}: {:?}",
            o.name,
            o.summary.error
        );
        assert!(!o.col.conns.is_empty(), "{}: no connection", o.name);
        report.push_str(&format!(
            "{}: packets {} tcp {} conns {}\n",
            o.name,
            o.summary.capture.packets,
            o.summary.decode.tcp,
            o.col.conns.len()
        ));
        for (id, r) in &o.col.conns {
            let meta = r.meta.unwrap();
            let c = r.bytes(C2S);
            let s = r.bytes(S2C);
            report.push_str(&format!(
                "  #{id} {} -> {} mid={} c2s {} (+gap {}) s2c {} (+gap {}) eof {:?} {:?} anomalies {:?} c:{:?} s:{:?}\n",
                meta.orig,
                meta.resp,
                r.mid_stream,
                c.len(),
                r.gap_bytes(C2S),
                s.len(),
                r.gap_bytes(S2C),
                r.eof,
                r.closed,
                r.anomalies,
                String::from_utf8_lossy(&c[..c.len().min(12)]),
                String::from_utf8_lossy(&s[..s.len().min(12)]),
            ));
            if c.is_empty() && s.is_empty() {
                continue;
            }
            // Every connection with data in the corpus is an HTTP upgrade.
            assert!(!r.mid_stream, "{} #{id}: mid-stream", o.name);
            assert!(
                starts_with(&c, b"GET "),
                "{} #{id}: client stream starts {:?}",
                o.name,
                &c[..c.len().min(16)]
            );
            assert!(
                starts_with(&s, b"HTTP/1.1 101"),
                "{} #{id}: server stream starts {:?}",
                o.name,
                &s[..s.len().min(16)]
            );
            assert!(
                r.anomalies.is_empty(),
                "{} #{id}: {:?}",
                o.name,
                r.anomalies
            );
            assert!(r.limits.is_empty(), "{} #{id}: {:?}", o.name, r.limits);
        }
        // Independent count: the payload lengths of all decoded segments, per sender. These
        // traces have no retransmissions, so reassembly must deliver exactly that.
        assert_eq!(o.summary.flows.reassembly.duplicate_bytes, 0, "{}", o.name);
        type Pair = (core::net::SocketAddr, core::net::SocketAddr);
        let mut sent: std::collections::HashMap<Pair, u64> = Default::default();
        let mut cap = Capture::from_paths([path]);
        while let Some(p) = cap.next_packet().unwrap() {
            if let Ok(seg) = wscope_inspect::decode::decode(p.link, p.ts, p.data) {
                *sent.entry((seg.src, seg.dst)).or_default() += seg.payload.len() as u64;
            }
        }
        for r in o.col.conns.values() {
            let m = r.meta.unwrap();
            let c2s = sent.get(&(m.orig, m.resp)).copied().unwrap_or(0);
            let s2c = sent.get(&(m.resp, m.orig)).copied().unwrap_or(0);
            assert_eq!(r.bytes(C2S).len() as u64, c2s, "{} c2s", o.name);
            assert_eq!(r.bytes(S2C).len() as u64, s2c, "{} s2c", o.name);
        }
        let per_conn: Vec<(u16, usize, usize)> = o
            .col
            .conns
            .values()
            .map(|r| {
                (
                    r.meta.unwrap().orig.port(),
                    r.bytes(C2S).len(),
                    r.bytes(S2C).len(),
                )
            })
            .collect();
        let expected: &[(u16, usize, usize)] = match o.name.as_str() {
            "basic_websockets.pcap" => &[(55233, 978, 506)],
            "example_websocket.pcap" => &[(36852, 223, 414)],
            "websocket.pcap" => &[(50798, 753, 1213)],
            "broker-websocket.pcap" => &[(38776, 1426, 1833)],
            "fragmented-http-reply.pcap" => &[(41600, 351, 233)],
            "jupyter-websocket.pcap" => &[(40492, 1379, 7281)],
            "message-too-big-status.pcap" => &[(60956, 329, 167)],
            "oversized-close-frame.pcapng" => &[(40081, 154, 397)],
            "reply-ping-coalesced.pcap" | "reply-ping-separate.pcap" => &[(0, 327, 181)],
            "two-binary-fragments.pcap" => &[(50198, 327, 183)],
            "wrong-accept-header.pcap" => &[(53654, 292, 169)],
            "wstunnel-http.pcap" => &[(51102, 476, 611)],
            "wstunnel-https.pcap" => &[(39992, 1288, 86430)],
            "wstunnel-ssh.pcap" => &[(42906, 4117, 2017), (46796, 9673, 7391)],
            _ => &[],
        };
        if !expected.is_empty() {
            let got: Vec<_> = per_conn
                .iter()
                .zip(expected)
                .map(|(g, e)| if e.0 == 0 { (0, g.1, g.2) } else { *g })
                .collect();
            assert_eq!(got, expected, "{}", o.name);
        }
        assert_eq!(
            o.summary.flows.reassembly.inconsistent_overlaps, 0,
            "{}",
            o.name
        );
        assert_eq!(o.summary.decode.malformed, 0, "{}", o.name);
    }
    eprintln!("{report}");
}

#[test]
fn connection_endings_match_zeek_histories() {
    let Some(root) = corpus() else {
        return;
    };
    let ws = root.join("zeek/traces/websocket");
    // Zeek conn.log history ShADadfF (both FINs): closed by FIN both ways.
    for f in ["broker-websocket.pcap", "jupyter-websocket.pcap"] {
        let o = analyse(&ws.join(f));
        let r = o.col.only();
        assert_eq!(r.eof, [1, 1], "{f}");
        assert_eq!(r.closed, vec![CloseReason::Finished], "{f}");
    }
    // ShADadFR: the client sent FIN then RST.
    let o = analyse(&ws.join("wstunnel-http.pcap"));
    let r = o.col.only();
    assert_eq!(r.eof, [1, 0]);
    assert_eq!(r.closed, vec![CloseReason::Reset(C2S)]);
    // ShADadR on both connections: reset without FIN.
    let o = analyse(&ws.join("wstunnel-ssh.pcap"));
    assert_eq!(o.col.conns.len(), 2);
    for r in o.col.conns.values() {
        assert_eq!(r.eof, [0, 0]);
        assert_eq!(r.closed, vec![CloseReason::Reset(C2S)]);
    }
    // Suricata's SLL capture: two connections on the loopback, the second without data.
    let o = analyse(&root.join("suricata-verify/websocket-ping/input.pcap"));
    assert_eq!(o.col.conns.len(), 2);
    assert_eq!(o.summary.capture.packets, 19);
    assert!(o.col.conns[&2].bytes(C2S).is_empty());
    assert_eq!(o.col.conns[&2].closed, vec![CloseReason::Finished]);
}

#[test]
fn uids_of_the_corpus_are_stable() {
    let Some(root) = corpus() else {
        return;
    };
    let path = root.join("zeek/traces/websocket/wstunnel-ssh.pcap");
    let uids = || {
        let o = analyse(&path);
        o.col
            .conns
            .values()
            .map(|r| r.meta.unwrap().uid.to_string())
            .collect::<Vec<_>>()
    };
    let a = uids();
    assert_eq!(a, uids());
    assert_eq!(a.len(), 2);
    assert_ne!(a[0], a[1]);
}

#[test]
fn wstunnel_https_has_no_gaps_and_ends_cleanly() {
    let Some(root) = corpus() else {
        return;
    };
    let o = analyse(&root.join("zeek/traces/websocket/wstunnel-https.pcap"));
    let r = o.col.only();
    assert_eq!(r.gap_bytes(C2S) + r.gap_bytes(S2C), 0);
    assert_eq!(o.summary.flows.reassembly.gaps, 0);
    assert_eq!(r.meta.unwrap().resp.port(), 8888);
    // Far more server bytes than client bytes (a TLS download of a web page).
    assert!(r.bytes(S2C).len() > 50_000, "{}", r.bytes(S2C).len());
    assert!(!matches!(
        r.closed[0],
        CloseReason::Evicted | CloseReason::IdleTimeout
    ));
}
