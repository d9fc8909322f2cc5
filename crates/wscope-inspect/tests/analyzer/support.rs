//! Helpers: the corpus location, running a trace, rendering events in Zeek's `print` format.

use std::path::PathBuf;

use wscope_inspect::analyzer::{Analyzer, AnalyzerConfig, Stats};
use wscope_inspect::capture::Capture;
use wscope_inspect::event::{OwnedEvent, OwnedKind};
use wscope_inspect::log::json::opcode_name;
use wscope_inspect::log::zeek::Style;
use wscope_inspect::log::ZeekLogs;
use wscope_inspect::sink::{Sink, VecSink};
use wscope_proto::observe::Upgrade;

/// The shared corpus (`../../../shared/corpus` from the crate), or `None` (tests then skip).
///
/// Under CI (`CI` set and not `false`/`0`) a missing corpus is a failure, not a skip: a CI run
/// without `../shared` would otherwise pass these tests without running them.
pub(crate) fn corpus() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    if p.join("zeek/traces").is_dir() {
        Some(p)
    } else {
        assert!(
            !in_ci(),
            "corpus not found at {}: the tests need ../shared beside the repository \
             (it is missing, and CI is set, so this is a failure, not a skip)",
            p.display()
        );
        eprintln!(
            "SKIPPED: corpus not found at {} (needs ../shared/corpus)",
            p.display()
        );
        None
    }
}

/// Whether the tests run under CI (the `CI` variable set, and not to `false` or `0`).
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Runs one capture file, collecting events.
pub(crate) fn run_file(path: &std::path::Path, cfg: AnalyzerConfig) -> (Vec<OwnedEvent>, Stats) {
    let mut cap = Capture::from_paths([path]);
    let mut sink = VecSink::default();
    let stats = Analyzer::new(cfg)
        .run(&mut cap, &mut sink)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (sink.events, stats)
}

/// Runs a capture into Zeek logs; returns (websocket.log, weird.log) texts.
pub(crate) fn run_logs(path: &std::path::Path, zeek_only: bool) -> (String, String) {
    let mut cap = Capture::from_paths([path]);
    let mut logs = ZeekLogs::new(Vec::new(), Vec::new(), Style::Ascii, zeek_only);
    let _ = Analyzer::new(AnalyzerConfig::default()).run(&mut cap, &mut logs);
    let (a, b) = logs.finish().unwrap();
    (String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap())
}

/// btest's uids: the n-th connection of a run.
pub(crate) fn zeek_uid(n: u64) -> &'static str {
    match n {
        1 => "CHhAvVGS1DHFjwGM9",
        2 => "ClEkJM2Vm5giqnMf4h",
        3 => "C4J4Th3PJpwUYZZ6gc",
        _ => "C?",
    }
}

/// Data lines of a Zeek log (no `#` lines, no zeek-cut column line), ts normalised.
pub(crate) fn log_rows(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("ts\t") && !l.is_empty())
        .map(normalise_ts)
        .collect()
}

/// Replaces a leading 10-digit epoch timestamp with btest's `XXXXXXXXXX.XXXXXX`.
pub(crate) fn normalise_ts(l: &str) -> String {
    let b = l.as_bytes();
    if b.len() > 17 && b[..10].iter().all(u8::is_ascii_digit) && b[10] == b'.' {
        format!("XXXXXXXXXX.XXXXXX{}", &l[17..])
    } else {
        l.to_string()
    }
}

/// Maps our uids to btest's (by connection order) in a log text.
pub(crate) fn map_uids(text: &str, events_or_ids: &[(String, u64)]) -> String {
    let mut t = text.to_string();
    for (uid, n) in events_or_ids {
        t = t.replace(uid.as_str(), zeek_uid(*n));
    }
    t
}

/// (uid, connection number) of every connection in the events.
pub(crate) fn uids(events: &[OwnedEvent]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = events
        .iter()
        .map(|e| (e.conn.uid.as_str().to_string(), e.conn.id.0))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Zeek's rendering of a string in `print`: printable ASCII as is, other bytes `\xHH`.
pub(crate) fn zeek_str(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        if (0x20..0x7f).contains(&c) {
            s.push(char::from(c));
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    s
}

fn tf(b: bool) -> &'static str {
    if b {
        "T"
    } else {
        "F"
    }
}

fn opt(s: Option<&str>) -> String {
    s.map_or_else(|| "<uninitialized>".to_string(), String::from)
}

fn vector<'a>(it: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = it.collect();
    if v.is_empty() {
        "<uninitialized>".to_string()
    } else {
        format!("[{}]", v.join(", "))
    }
}

/// The `WebSocket::Info` record as Zeek prints it.
pub(crate) fn info_record(ev: &OwnedEvent, up: &Upgrade) -> String {
    let c = &ev.conn;
    format!(
        "[ts=XXXXXXXXXX.XXXXXX, uid={}, id=[orig_h={}, orig_p={}/tcp, resp_h={}, resp_p={}/tcp, proto=6, ctx=[]], host={}, uri={}, user_agent={}, subprotocol={}, client_protocols={}, server_extensions={}, client_extensions={}, client_key={}, server_accept={}]",
        zeek_uid(c.id.0),
        c.orig.ip(),
        c.orig.port(),
        c.resp.ip(),
        c.resp.port(),
        opt(up.host()),
        opt(up.uri()),
        opt(up.user_agent()),
        opt(up.subprotocol()),
        vector(up.client_protocols()),
        vector(up.server_extensions()),
        vector(up.client_extensions()),
        opt(up.client_key()),
        opt(up.server_accept()),
    )
}

/// Which events the btest script printed, and how.
#[derive(Clone, Copy)]
pub(crate) struct Script {
    /// `websocket_established` prints the Info record (events.zeek) or just the aid.
    pub(crate) established_record: bool,
    /// `websocket_message` is printed.
    pub(crate) message: bool,
}

/// Renders events as the btest script printed them.
pub(crate) fn zeek_print(events: &[OwnedEvent], script: Script) -> Vec<String> {
    let mut out = Vec::new();
    for ev in events {
        let uid = zeek_uid(ev.conn.id.0);
        let o = tf(ev.is_orig());
        match &ev.kind {
            OwnedKind::Established(up) => {
                if script.established_record {
                    out.push(format!(
                        "websocket_established, {uid}, 7, {}",
                        info_record(ev, up)
                    ));
                } else {
                    out.push(format!("websocket_established, {uid}, 7"));
                }
            }
            OwnedKind::Frame { header, .. } => out.push(format!(
                "websocket_frame, {uid}, {o}, fin, {}, rsv, {}, opcode, {}, payload_len, {}",
                tf(header.fin),
                header.rsv,
                opcode_name(header.opcode),
                header.payload_len
            )),
            OwnedKind::FrameData { data, .. } => out.push(format!(
                "websocket_frame_data, {uid}, {o}, len, {}, data, {}",
                data.len(),
                zeek_str(&data[..data.len().min(120)])
            )),
            OwnedKind::Close { status, reason } => out.push(format!(
                "websocket_close, {uid}, {o}, status, {status}, reason, {}",
                zeek_str(reason)
            )),
            OwnedKind::Message { opcode, .. } if script.message => out.push(format!(
                "websocket_message, {uid}, {o}, opcode, {}",
                opcode_name(*opcode)
            )),
            _ => {}
        }
    }
    out
}

/// Baseline lines (the btest header line dropped).
pub(crate) fn baseline(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with("### BTest"))
        .map(String::from)
        .collect()
}

/// Asserts two line lists are equal, showing the first difference.
pub(crate) fn assert_lines(what: &str, ours: &[String], theirs: &[String]) {
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(a, b, "{what}: first difference at line {}", i + 1);
    }
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{what}: {} lines, baseline has {}",
        ours.len(),
        theirs.len()
    );
}

/// A sink that counts events (for runs where collecting would be too much).
#[derive(Default)]
pub(crate) struct CountSink(pub(crate) u64);

impl Sink for CountSink {
    fn event(&mut self, _ev: &wscope_inspect::Event<'_>) {
        self.0 += 1;
    }
}
