//! Parallel analysis (`Analyzer::workers`): 1, 2 and 4 workers give the same events, logs,
//! statistics and capture notes, byte for byte, on every capture we have (the corpus, the
//! bundled sample, generated captures of many connections with every fate).

use std::path::{Path, PathBuf};

use wscope_inspect::analyzer::{Analyzer, AnalyzerConfig};
use wscope_inspect::capture::Capture;
use wscope_inspect::event::{Event, OwnedEvent};
use wscope_inspect::fuzzing::comparable_stats;
use wscope_inspect::log::json::JsonLines;
use wscope_inspect::log::zeek::Style;
use wscope_inspect::log::ZeekLogs;
use wscope_inspect::parallel::{LocalOutput, LocalWriter};
use wscope_inspect::sink::{CaptureNote, Sink};
use wscope_inspect::tcp::ConnMeta;
use wscope_test_support::traffic::mixed_traffic;

use crate::support::corpus;

/// Everything a run gives: every sink call in order, the logs and events as written, the
/// statistics.
#[derive(Default)]
struct Everything {
    calls: Vec<String>,
    logs: Option<ZeekLogs<Vec<u8>>>,
    json: Option<JsonLines<Vec<u8>>>,
}

impl Sink for Everything {
    fn event(&mut self, ev: &Event<'_>) {
        self.calls.push(format!("{:?}", OwnedEvent::from(ev)));
        if let Some(l) = &mut self.logs {
            l.event(ev);
        }
        if let Some(j) = &mut self.json {
            j.event(ev);
        }
    }

    fn connection_closed(&mut self, conn: &ConnMeta) {
        self.calls.push(format!("closed {conn:?}"));
        if let Some(l) = &mut self.logs {
            l.connection_closed(conn);
        }
        if let Some(j) = &mut self.json {
            j.connection_closed(conn);
        }
    }

    fn capture_note(&mut self, note: &CaptureNote) {
        self.calls.push(format!("note {note:?}"));
        if let Some(l) = &mut self.logs {
            l.capture_note(note);
        }
        if let Some(j) = &mut self.json {
            j.capture_note(note);
        }
    }
}

/// The logs a run's workers render (`Analyzer::run_with_outputs`), as written.
fn rendered_logs(logs: ZeekLogs<Vec<u8>>) -> [String; 2] {
    let (ws, weird) = logs.finish().unwrap();
    [
        String::from_utf8_lossy(&ws).into_owned(),
        String::from_utf8_lossy(&weird).into_owned(),
    ]
}

/// One run: (sink calls, websocket.log, weird.log, events, statistics or error, events
/// rendered by the workers, websocket.log and weird.log rendered by the workers).
fn run(capture: impl Fn() -> Capture, workers: usize, cfg: AnalyzerConfig) -> [String; 8] {
    let mut all = Everything {
        calls: Vec::new(),
        logs: Some(ZeekLogs::new(Vec::new(), Vec::new(), Style::Ascii, false)),
        json: Some(JsonLines::new(Vec::new())),
    };
    let mut cap = capture();
    let make = |w: LocalWriter| Box::new(JsonLines::unbuffered(w)) as Box<dyn Sink>;
    let mut local_json = Vec::new();
    let mut local = LocalOutput {
        make: &make,
        out: &mut local_json,
        error: None,
    };
    let mut by_workers = ZeekLogs::new(Vec::new(), Vec::new(), Style::Ascii, false);
    let r = Analyzer::new(cfg).workers(workers).run_with_outputs(
        &mut cap,
        &mut all,
        Some(&mut local),
        Some(&mut by_workers),
        true,
    );
    assert!(local.error.is_none());
    let [ws_rendered, weird_rendered] = rendered_logs(by_workers);
    let stats = comparable_stats(r);
    let (ws, weird) = all.logs.take().unwrap().finish().unwrap();
    let json = all.json.take().unwrap().finish().unwrap();
    [
        all.calls.join("\n"),
        String::from_utf8_lossy(&ws).into_owned(),
        String::from_utf8_lossy(&weird).into_owned(),
        String::from_utf8_lossy(&json).into_owned(),
        stats,
        String::from_utf8_lossy(&local_json).into_owned(),
        ws_rendered,
        weird_rendered,
    ]
}

pub(crate) fn same_for_any_workers(
    name: &str,
    capture: impl Fn() -> Capture,
    cfg: AnalyzerConfig,
) -> usize {
    let one = run(&capture, 1, cfg);
    for n in [2, 4] {
        let many = run(&capture, n, cfg);
        let names = [
            "events",
            "websocket.log",
            "weird.log",
            "json",
            "stats",
            "local",
            "websocket.log by the workers",
            "weird.log by the workers",
        ];
        // What the workers rendered must also be what one thread's main sink wrote.
        let rendered = [
            ("json by the workers", (&one[3], &many[5])),
            ("websocket.log by the workers", (&one[1], &many[6])),
            ("weird.log by the workers", (&one[2], &many[7])),
        ];
        for (what, (a, b)) in names
            .iter()
            .copied()
            .zip(one.iter().zip(many.iter()))
            .chain(rendered)
        {
            if a != b {
                let line = a
                    .lines()
                    .zip(b.lines())
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.lines().count().min(b.lines().count()));
                panic!(
                    "{name}: {what} differ between 1 and {n} workers at line {line}:\n1: {:?}\n{n}: {:?}",
                    a.lines().nth(line),
                    b.lines().nth(line)
                );
            }
        }
    }
    one[0].lines().count()
}

fn pcaps(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out.sort();
    out
}

#[test]
fn corpus_and_sample_give_the_same_output_for_any_number_of_workers() {
    let sample =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/websocket-demo.pcap");
    let mut paths = vec![sample];
    if let Some(root) = corpus() {
        let found = pcaps(&root);
        assert!(found.len() >= 17, "{found:#?}");
        paths.extend(found);
    }
    let mut cfg = AnalyzerConfig::default();
    cfg.flow.uid_seed = 42;
    cfg.session.digest = true;
    for p in &paths {
        let n = same_for_any_workers(&p.display().to_string(), || Capture::from_paths([p]), cfg);
        assert!(n > 0, "{}: no events", p.display());
    }
    // All of them as one run (several sources, packet numbers continuing).
    same_for_any_workers("all", || Capture::from_paths(&paths), cfg);
}

#[test]
fn many_connections_with_every_fate_give_the_same_output_for_any_number_of_workers() {
    let bytes = mixed_traffic(7, 300).unwrap();
    let cap = || Capture::from_reader(std::io::Cursor::new(bytes.clone()), "mixed");
    let mut cfg = AnalyzerConfig::default();
    cfg.flow.uid_seed = 9;
    let events = same_for_any_workers("mixed", cap, cfg);
    assert!(events > 2_500, "{events}");
    // The capture exercises what makes ordering hard: timeouts in the middle, resets,
    // connections open at the end, fragments, cut packets.
    let mut all = Everything::default();
    let stats = Analyzer::new(cfg)
        .workers(2)
        .run(&mut cap(), &mut all)
        .unwrap();
    let f = stats.flows;
    assert!(f.closed_timeout > 10, "{f:?}");
    assert!(f.closed_reset > 10, "{f:?}");
    assert!(f.closed_at_end > 10, "{f:?}");
    assert!(f.closed_finished > 50, "{f:?}");
    assert!(stats.decode.reassembled > 5, "{:?}", stats.decode);
    assert!(stats.decode.tcp_truncated > 0, "{:?}", stats.decode);
    assert!(stats.mid_stream > 10, "{stats:?}");
    assert!(stats.sessions > 150, "{stats:?}");
    // Smaller timeouts: most connections expire at clock ticks, in the middle of traffic.
    cfg.flow.idle_timeout = wscope_proto::time::Duration::from_millis(150);
    cfg.flow.handshake_timeout = wscope_proto::time::Duration::from_millis(50);
    cfg.flow.close_linger = wscope_proto::time::Duration::from_millis(20);
    same_for_any_workers("mixed, short timeouts", cap, cfg);
}

#[test]
fn without_payload_the_main_sink_gets_empty_message_bytes_and_the_same_logs() {
    let bytes = mixed_traffic(3, 200).unwrap();
    let cap = || Capture::from_reader(std::io::Cursor::new(bytes.clone()), "mixed");
    for n in [1, 2] {
        let mut logs = ZeekLogs::new(Vec::new(), Vec::new(), Style::Ascii, false);
        let mut nonempty = 0;
        let mut sink = |ev: &Event<'_>| {
            if let wscope_inspect::EventKind::FrameData { data, .. }
            | wscope_inspect::EventKind::MessageData { data, .. } = &ev.kind
            {
                nonempty += usize::from(!data.is_empty());
            }
            logs.event(ev);
        };
        let make = |w: LocalWriter| Box::new(JsonLines::unbuffered(w)) as Box<dyn Sink>;
        let mut json = Vec::new();
        let mut local = LocalOutput {
            make: &make,
            out: &mut json,
            error: None,
        };
        Analyzer::default()
            .workers(n)
            .run_with_local(&mut cap(), &mut sink, Some(&mut local), false)
            .unwrap();
        if n > 1 {
            assert_eq!(nonempty, 0);
        }
        let full = run(cap, 1, AnalyzerConfig::default());
        let (ws, weird) = logs.finish().unwrap();
        assert_eq!(String::from_utf8_lossy(&ws), full[1]);
        assert_eq!(String::from_utf8_lossy(&weird), full[2]);
        assert_eq!(String::from_utf8_lossy(&json), full[3]);
    }
}

#[test]
fn worker_counts_zero_and_one_are_the_calling_thread() {
    assert_eq!(Analyzer::default().worker_count(), 1);
    assert_eq!(Analyzer::default().workers(0).worker_count(), 1);
    assert_eq!(Analyzer::default().workers(3).worker_count(), 3);
}

/// A folder for this test's files, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("wscope-par-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn workers_reading_files_themselves_give_the_same_output_as_one_thread() {
    // Files on disk are read by every worker itself (no dispatcher): the generated capture
    // with every fate, twice in one run, then a run whose second file is cut short (the same
    // error, at the same packet, for any number of workers).
    let dir = TempDir::new("files");
    let bytes = mixed_traffic(11, 300).unwrap();
    let a = dir.0.join("a.pcap");
    let b = dir.0.join("b.pcap");
    let cut = dir.0.join("cut.pcap");
    std::fs::write(&a, &bytes).unwrap();
    std::fs::write(&b, &bytes).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3 + 7]).unwrap();
    let mut cfg = AnalyzerConfig::default();
    cfg.flow.uid_seed = 5;
    let events = same_for_any_workers("files", || Capture::from_paths([&a, &b]), cfg);
    assert!(events > 5_000, "{events}");
    same_for_any_workers("cut file", || Capture::from_paths([&a, &cut]), cfg);
    let r = Analyzer::new(cfg).workers(2).run(
        &mut Capture::from_paths([&a, &cut]),
        &mut Everything::default(),
    );
    let e = r.expect_err("the cut file ends the run");
    assert!(e.to_string().contains("cut.pcap"), "{e}");
    // A file read by the workers is used up, as one thread leaves it.
    let mut cap = Capture::from_paths([&a]);
    let stats = Analyzer::new(cfg)
        .workers(2)
        .run(&mut cap, &mut Everything::default())
        .unwrap();
    assert!(cap.next_packet().unwrap().is_none());
    assert_eq!(cap.stats(), stats.capture);
    assert!(stats.capture.packets > 1000, "{:?}", stats.capture);
}

/// Keeps the events of one interest and counts the others it was given.
struct Narrow {
    interest: wscope_inspect::sink::Interest,
    kept: Vec<String>,
    others: usize,
}

impl Sink for Narrow {
    fn event(&mut self, ev: &Event<'_>) {
        if self.interest.wants(&ev.kind) {
            self.kept.push(format!("{:?}", OwnedEvent::from(ev)));
        } else {
            self.others += 1;
        }
    }

    fn interest(&self) -> wscope_inspect::sink::Interest {
        self.interest
    }
}

#[test]
fn workers_send_only_the_events_the_sink_reads_and_count_the_rest() {
    use wscope_inspect::sink::Interest;
    let bytes = mixed_traffic(3, 200).unwrap();
    let dir = TempDir::new("interest");
    let path = dir.0.join("mixed.pcap");
    std::fs::write(&path, &bytes).unwrap();
    let readers = || Capture::from_reader(std::io::Cursor::new(bytes.clone()), "mixed");
    let files = || Capture::from_paths([&path]);
    let mut cfg = AnalyzerConfig::default();
    cfg.flow.uid_seed = 3;
    let run = |cap: &mut Capture, n: usize, interest: Interest| {
        let mut sink = Narrow {
            interest,
            kept: Vec::new(),
            others: 0,
        };
        let stats = Analyzer::new(cfg).workers(n).run(cap, &mut sink).unwrap();
        (
            sink,
            format!(
                "{:?}",
                (
                    stats.sessions,
                    stats.frames,
                    &stats.messages,
                    &stats.closes,
                    &stats.anomalies,
                    &stats.tls,
                    stats.rejected_upgrades,
                    stats.message_bytes,
                    stats.payload_bytes,
                    stats.connections,
                    stats.first_ts,
                    stats.last_ts
                )
            ),
        )
    };
    let logs = Interest::ESTABLISHED.union(Interest::ANOMALY);
    let (all, all_stats) = run(&mut readers(), 1, Interest::ALL);
    assert!(all.kept.len() > 1_000 && all.others == 0);
    for interest in [
        logs,
        Interest::NONE,
        Interest::MESSAGE.union(Interest::CLOSE),
    ] {
        let want: Vec<&String> = all
            .kept
            .iter()
            .filter(|k| {
                let kind = |p: &str| k.contains(&format!("kind: {p}"));
                (interest.contains(Interest::ESTABLISHED) && kind("Established"))
                    || (interest.contains(Interest::ANOMALY) && kind("Anomaly"))
                    || (interest.contains(Interest::MESSAGE) && kind("Message {"))
                    || (interest.contains(Interest::CLOSE) && kind("Close"))
            })
            .collect();
        for (what, cap) in [
            ("reader", &readers as &dyn Fn() -> Capture),
            ("file", &files),
        ] {
            let (got, stats) = run(&mut cap(), 2, interest);
            // Nothing outside the interest crosses over; what is inside it is all there, in
            // order; the statistics (counted in the workers) are those of one thread.
            assert_eq!(got.others, 0, "{what} {interest:?}");
            assert_eq!(
                got.kept.iter().collect::<Vec<_>>(),
                want,
                "{what} {interest:?}"
            );
            assert_eq!(stats, all_stats, "{what} {interest:?}");
        }
    }
}

#[test]
#[cfg(unix)]
fn a_named_pipe_is_read_once_by_the_dispatcher() {
    // A path that is not a regular file (here a FIFO) cannot be read again by each worker:
    // it goes through the dispatcher, and the output is the one-thread output.
    let dir = TempDir::new("fifo");
    let bytes = mixed_traffic(2, 60).unwrap();
    let fifo = dir.0.join("cap.fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo not available: skipped");
        return;
    }
    let mut cfg = AnalyzerConfig::default();
    cfg.flow.uid_seed = 2;
    let one = run(
        || Capture::from_reader(std::io::Cursor::new(bytes.clone()), "mixed"),
        1,
        cfg,
    );
    let writer = {
        let (fifo, bytes) = (fifo.clone(), bytes.clone());
        std::thread::spawn(move || std::fs::write(fifo, bytes).unwrap())
    };
    let two = run(|| Capture::from_paths([&fifo]), 2, cfg);
    writer.join().unwrap();
    assert_eq!(one[0], two[0]);
    assert_eq!(one[1..5], two[1..5]);
}

/// The byte ranges of the records of a little-endian classic pcap file.
fn pcap_records(bytes: &[u8]) -> Vec<core::ops::Range<usize>> {
    assert_eq!(
        &bytes[..4],
        &0xA1B2_C3D4u32.to_le_bytes(),
        "a little-endian pcap file"
    );
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push(at..at + 16 + caplen);
        at += 16 + caplen;
    }
    assert_eq!(at, bytes.len());
    out
}

/// `bytes` with a record of `len` zero bytes (not IP) put before record `before`, stamped
/// with that record's time.
fn with_big_record(bytes: &[u8], before: usize, len: u32) -> Vec<u8> {
    let recs = pcap_records(bytes);
    let r = recs[before].clone();
    let mut out = bytes[..r.start].to_vec();
    out.extend_from_slice(&bytes[r.start..r.start + 8]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.resize(out.len() + len as usize, 0);
    out.extend_from_slice(&bytes[r.start..]);
    out
}

#[test]
fn workers_taking_turns_reading_chunks_give_the_same_output_as_one_thread() {
    // Classic pcap files are cut into chunks (here about 16 KiB: a quarter of the smallest
    // read buffer, with output rendered by the workers), each read by one worker. Many chunk
    // boundaries: records and IP fragments across them, clock ticks and timeouts resolved
    // across them, a record longer than a chunk (empty chunks), a record too big for the
    // chunks (the rest of the run goes through one reader), a file cut in a record.
    let dir = TempDir::new("chunks");
    let bytes = mixed_traffic(13, 300).unwrap();
    let n = pcap_records(&bytes).len();
    let a = dir.0.join("a.pcap");
    let big = dir.0.join("big.pcap");
    let cut = dir.0.join("cut.pcap");
    std::fs::write(&a, with_big_record(&bytes, n / 2, 40_000)).unwrap();
    std::fs::write(&big, with_big_record(&bytes, n / 3, 100_000)).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3 + 7]).unwrap();
    let small = |paths: &[&PathBuf]| Capture::from_paths(paths).buffer_len(1 << 16);
    let mut cfg = AnalyzerConfig::default();
    cfg.flow.uid_seed = 3;
    let events = same_for_any_workers("chunks", || small(&[&a]), cfg);
    assert!(events > 2_500, "{events}");
    same_for_any_workers("chunks, two files", || small(&[&a, &a]), cfg);
    same_for_any_workers("chunks, a record too big", || small(&[&a, &big, &a]), cfg);
    same_for_any_workers("chunks, cut", || small(&[&a, &cut, &a]), cfg);
    // Timeouts at ticks in the middle of chunks.
    cfg.flow.idle_timeout = wscope_proto::time::Duration::from_millis(150);
    cfg.flow.handshake_timeout = wscope_proto::time::Duration::from_millis(50);
    cfg.flow.close_linger = wscope_proto::time::Duration::from_millis(20);
    same_for_any_workers("chunks, short timeouts", || small(&[&a, &big]), cfg);
    // The run's counters and error are one thread's.
    let r = Analyzer::new(cfg)
        .workers(3)
        .run(&mut small(&[&a, &cut]), &mut Everything::default());
    let e = r.expect_err("the cut file ends the run");
    assert!(e.to_string().contains("cut.pcap"), "{e}");
    let mut cap = small(&[&a, &big]);
    let stats = Analyzer::new(cfg)
        .workers(2)
        .run(&mut cap, &mut Everything::default())
        .unwrap();
    assert!(cap.next_packet().unwrap().is_none());
    assert_eq!(cap.stats(), stats.capture);
    assert_eq!(stats.capture.sources, 2);
    assert!(stats.decode.reassembled > 5, "{:?}", stats.decode);
}

/// One run with no output rendered by the workers (the main sink only, as `-o` alone): sink
/// calls, websocket.log, weird.log, events, statistics or error.
fn run_main_only(
    capture: &dyn Fn() -> Capture,
    workers: usize,
    cfg: AnalyzerConfig,
) -> Vec<String> {
    let mut all = Everything {
        calls: Vec::new(),
        logs: Some(ZeekLogs::new(Vec::new(), Vec::new(), Style::Ascii, false)),
        json: Some(JsonLines::new(Vec::new())),
    };
    let r = Analyzer::new(cfg)
        .workers(workers)
        .run(&mut capture(), &mut all);
    // The same run with the logs rendered by the workers (as `-o` alone), in both styles,
    // one with only Zeek's weirds.
    let mut rendered = Vec::new();
    for (style, zeek_only) in [(Style::Ascii, false), (Style::Json, true)] {
        let mut logs = ZeekLogs::new(Vec::new(), Vec::new(), style, zeek_only);
        let r2 = Analyzer::new(cfg).workers(workers).run_with_outputs(
            &mut capture(),
            &mut |_: &Event<'_>| {},
            None,
            Some(&mut logs),
            false,
        );
        assert_eq!(r.is_ok(), r2.is_ok());
        rendered.extend(rendered_logs(logs));
    }
    let stats = comparable_stats(r);
    let (ws, weird) = all.logs.take().unwrap().finish().unwrap();
    let json = all.json.take().unwrap().finish().unwrap();
    let mut out = vec![
        all.calls.join("\n"),
        String::from_utf8_lossy(&ws).into_owned(),
        String::from_utf8_lossy(&weird).into_owned(),
        String::from_utf8_lossy(&json).into_owned(),
        stats,
    ];
    out.extend(rendered);
    out
}

#[test]
fn chunks_sent_to_the_merger_in_groups_give_the_same_output_as_one_thread() {
    // Without output rendered by the workers, each worker sends its output several chunks at
    // a time, and reads several chunks ahead; the chunks' records are walked by whichever
    // worker read last. Chunks of 32 KiB (half the smallest read buffer): hundreds of them,
    // so many groups, a last group cut short, records and IP fragments across chunk ends,
    // empty chunks (a record longer than several chunks), the rest of a run read through one
    // reader, a file cut in a record; 2, 3, 4 and 5 workers (the chunks of a group are not
    // a multiple of every worker count).
    let dir = TempDir::new("groups");
    let bytes = mixed_traffic(17, 300).unwrap();
    let n = pcap_records(&bytes).len();
    let a = dir.0.join("a.pcap");
    let big = dir.0.join("big.pcap");
    let cut = dir.0.join("cut.pcap");
    std::fs::write(&a, with_big_record(&bytes, n / 2, 60_000)).unwrap();
    std::fs::write(&big, with_big_record(&bytes, n / 3, 100_000)).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 4 + 5]).unwrap();
    let small = |paths: &[&PathBuf]| Capture::from_paths(paths).buffer_len(1 << 16);
    let mut cfg = AnalyzerConfig::default();
    cfg.flow.uid_seed = 9;
    let runs: [(&str, &dyn Fn() -> Capture); 4] = [
        ("one file", &|| small(&[&a])),
        ("three files", &|| small(&[&a, &a, &a])),
        ("a record too big", &|| small(&[&a, &big])),
        ("cut", &|| small(&[&a, &cut, &a])),
    ];
    for short in [false, true] {
        if short {
            cfg.flow.idle_timeout = wscope_proto::time::Duration::from_millis(150);
            cfg.flow.handshake_timeout = wscope_proto::time::Duration::from_millis(50);
        }
        for (name, capture) in runs {
            let one = run_main_only(capture, 1, cfg);
            assert!(one[0].lines().count() > 2_500, "{name}");
            // Logs rendered by the workers (or, with one, by the logs as a sink) are the logs.
            assert_eq!(one[5], one[1], "{name}");
            assert_eq!(one[6], one[2], "{name}");
            let rows = [6, 7, 8].map(|i| one[i].lines().count());
            assert!(rows[0] > 10 && rows[1] > 10, "{name} {rows:?}");
            for workers in [2, 3, 4, 5] {
                let many = run_main_only(capture, workers, cfg);
                let names = [
                    "events",
                    "websocket.log",
                    "weird.log",
                    "json",
                    "stats",
                    "websocket.log by the workers",
                    "weird.log by the workers",
                    "websocket.log by the workers, JSON",
                    "Zeek's weirds by the workers, JSON",
                ];
                assert_eq!(one.len(), names.len());
                for (what, (x, y)) in names.iter().zip(one.iter().zip(&many)) {
                    if x != y {
                        let line = x.lines().zip(y.lines()).position(|(p, q)| p != q);
                        panic!("{name} (short timeouts: {short}): {what} differ between 1 and {workers} workers at line {line:?}");
                    }
                }
            }
        }
    }
}

/// The records of little-endian classic pcap `bytes` as a pcapng file of `sections` sections
/// (every other one big-endian), each with two interfaces of the file's link type, one in
/// microseconds and one in nanoseconds (packets alternate between them), a Decryption
/// Secrets Block of TLS keys after every 97th packet, and, if `big` is `Some((i, len))`, an
/// Enhanced Packet Block of `len` zero bytes before packet `i`.
fn to_pcapng(bytes: &[u8], sections: usize, big: Option<(usize, u32)>) -> Vec<u8> {
    let link = u32::from_le_bytes(bytes[20..24].try_into().unwrap()) as u16;
    let recs = pcap_records(bytes);
    let per = recs.len().div_ceil(sections);
    let mut out = Vec::new();
    fn block(out: &mut Vec<u8>, be: bool, kind: u32, body: &[u8]) {
        let w = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        out.extend(w(kind));
        out.extend(w(total));
        out.extend(body);
        out.resize(out.len() + padded - body.len(), 0);
        out.extend(w(total));
    }
    for (i, part) in recs.chunks(per).enumerate() {
        let be = i % 2 == 1;
        let w = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let h = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut shb = w(0x1A2B_3C4D).to_vec();
        shb.extend(h(1));
        shb.extend(h(0));
        shb.extend((-1i64).to_le_bytes());
        block(&mut out, be, 0x0A0D_0D0A, &shb);
        for resol in [6u8, 9] {
            let mut idb = h(link).to_vec();
            idb.extend(h(0));
            idb.extend(w(262_144));
            idb.extend(h(9));
            idb.extend(h(1));
            idb.extend([resol, 0, 0, 0]);
            idb.extend(h(0));
            idb.extend(h(0));
            block(&mut out, be, 1, &idb);
        }
        for (k, r) in part.iter().enumerate() {
            let rec = &bytes[r.clone()];
            let u = |o: usize| u32::from_le_bytes(rec[o..o + 4].try_into().unwrap());
            let micros = u64::from(u(0)) * 1_000_000 + u64::from(u(4));
            let iface = (k % 2) as u32;
            let units = if iface == 1 { micros * 1000 } else { micros };
            let n = i * per + k;
            if let Some((_, len)) = big.filter(|b| b.0 == n) {
                let mut epb = w(0).to_vec();
                epb.extend(w((units >> 32) as u32));
                epb.extend(w(units as u32));
                epb.extend(w(len));
                epb.extend(w(len));
                epb.resize(epb.len() + len as usize, 0);
                block(&mut out, be, 6, &epb);
            }
            let mut epb = w(iface).to_vec();
            epb.extend(w((units >> 32) as u32));
            epb.extend(w(units as u32));
            epb.extend(w(u(8)));
            epb.extend(w(u(12)));
            epb.extend(&rec[16..]);
            block(&mut out, be, 6, &epb);
            if n % 97 == 50 {
                let text = format!(
                    "CLIENT_RANDOM {:064x} {:096x}\n",
                    n as u128 * 7919,
                    n as u128 * 104_729
                );
                let mut dsb = w(0x544C_534B).to_vec();
                dsb.extend(w(text.len() as u32));
                dsb.extend(text.as_bytes());
                block(&mut out, be, 0x0000_000A, &dsb);
            }
        }
    }
    out
}

#[test]
fn pcapng_files_taking_turns_in_chunks_give_the_same_output_as_one_thread() {
    // pcapng files take the chunk path too: sections of both byte orders, interfaces of
    // different timestamp resolutions, key logs mid-file, a block too big for the chunks
    // (the rest of the run through one reader), a file cut in a block; small chunks (16 and
    // 32 KiB), so hundreds of boundaries.
    let dir = TempDir::new("ngchunks");
    let bytes = mixed_traffic(19, 300).unwrap();
    let n = pcap_records(&bytes).len();
    let a = dir.0.join("a.pcapng");
    let big = dir.0.join("big.pcapng");
    let cut = dir.0.join("cut.pcapng");
    // A block longer than a chunk and shorter than the reader's buffer: empty chunks.
    let ng = to_pcapng(&bytes, 3, Some((n / 2, 40_000)));
    std::fs::write(&a, &ng).unwrap();
    std::fs::write(&big, to_pcapng(&bytes, 2, Some((n / 3, 100_000)))).unwrap();
    std::fs::write(&cut, &ng[..ng.len() * 2 / 3 + 7]).unwrap();
    let small = |paths: &[&PathBuf]| Capture::from_paths(paths).buffer_len(1 << 16);
    let mut cfg = AnalyzerConfig::default();
    cfg.flow.uid_seed = 5;
    let events = same_for_any_workers("ng chunks", || small(&[&a]), cfg);
    assert!(events > 2_500, "{events}");
    same_for_any_workers("ng chunks, two files", || small(&[&a, &a]), cfg);
    same_for_any_workers("ng chunks, a block too big", || small(&[&a, &big, &a]), cfg);
    same_for_any_workers("ng chunks, cut", || small(&[&a, &cut, &a]), cfg);
    let runs: [(&str, &dyn Fn() -> Capture); 3] = [
        ("ng, two files", &|| small(&[&a, &a])),
        ("ng, a block too big", &|| small(&[&big, &a])),
        ("ng, cut", &|| small(&[&a, &cut])),
    ];
    for (name, capture) in runs {
        let one = run_main_only(capture, 1, cfg);
        for workers in [2, 3] {
            let many = run_main_only(capture, workers, cfg);
            for (i, (x, y)) in one.iter().zip(&many).enumerate() {
                assert!(x == y, "{name}: output {i} differs with {workers} workers");
            }
        }
    }
    // The run's counters (blocks, sections, interfaces) and error are one thread's.
    let mut cap = small(&[&a, &big]);
    let stats = Analyzer::new(cfg)
        .workers(2)
        .run(&mut cap, &mut Everything::default())
        .unwrap();
    assert!(cap.next_packet().unwrap().is_none());
    assert_eq!(cap.stats(), stats.capture);
    let mut one = small(&[&a, &big]);
    while one.next_packet().unwrap().is_some() {}
    assert_eq!(one.stats(), stats.capture);
    assert!(stats.capture.other_blocks > 10, "{:?}", stats.capture);
    let r = Analyzer::new(cfg)
        .workers(3)
        .run(&mut small(&[&a, &cut]), &mut Everything::default());
    let e = r.expect_err("the cut file ends the run");
    assert!(e.to_string().contains("cut.pcapng"), "{e}");
}

/// `Stats::add` (how a live capture's workers sum their shares): two captures analysed apart
/// and added give the counters of one run over both (generated traffic, then the bundled
/// sample, whose connections differ), with the earliest first and the latest last time.
#[test]
fn the_statistics_of_two_shares_add_up_to_one_run_over_both() {
    let dir = TempDir::new("stats-add");
    let a = dir.0.join("a.pcap");
    std::fs::write(&a, mixed_traffic(21, 40).unwrap()).unwrap();
    let b = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/websocket-demo.pcap");
    let cfg = AnalyzerConfig::default();
    let run = |paths: &[&Path]| {
        Analyzer::new(cfg)
            .run(&mut Capture::from_paths(paths), &mut |_: &Event<'_>| {})
            .unwrap()
    };
    let (sa, sb, both) = (run(&[&a]), run(&[&b]), run(&[&a, &b]));
    assert!(
        sa.sessions > 10 && sb.sessions >= 1,
        "{} {}",
        sa.sessions,
        sb.sessions
    );
    let mut sum = wscope_inspect::analyzer::Stats::default();
    sum.add(&sa);
    sum.add(&sb);
    let key = |s: &wscope_inspect::analyzer::Stats| {
        (
            (s.capture.sources, s.capture.packets, s.capture.bytes),
            (
                s.decode.packets,
                s.decode.tcp,
                s.flows.segments,
                s.flows.opened,
            ),
            (s.connections, s.sessions, s.rejected_upgrades, s.frames),
            (s.payload_bytes, s.message_bytes),
            (s.messages.clone(), s.closes.clone()),
            (s.first_ts, s.last_ts),
        )
    };
    assert_eq!(key(&sum), key(&both));
    assert_eq!(sum.first_ts, sa.first_ts);
    assert_eq!(sum.last_ts, sb.last_ts);
}
