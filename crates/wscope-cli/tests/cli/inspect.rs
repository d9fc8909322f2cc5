//! `wscope inspect` and `wscope parse` end to end: the messages users get for unusable inputs,
//! output files that never follow links, extraction quotas, uids, `parse` on the committed sample
//! of frames and in bounded memory.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn wscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wscope"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The sample capture: two WebSocket sessions, 13 messages.
fn sample() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/websocket-demo.pcap"
    )
    .to_owned()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wscope-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn inspect_names_an_unusable_input_in_one_line() {
    let dir = scratch("unusable");
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, b"these are notes, not packets\n").unwrap();
    let missing = dir.join("missing.pcap");
    let cases: [(&Path, &str); 4] = [
        (&missing, "the file does not exist"),
        (&dir, "is a directory, not a capture file"),
        (&empty, "the file is empty"),
        (&notes, "not a pcap or pcapng capture"),
    ];
    for (path, says) in cases {
        let p = path.to_str().unwrap();
        let out = wscope(&["inspect", p, "-o", dir.join("logs").to_str().unwrap()]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{p}: {err}");
        assert_eq!(err.lines().count(), 1, "{p}: {err}");
        assert!(
            err.starts_with(&format!("wscope inspect: {p}: {says}")),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "no summary: {}", text(&out.stdout));
        assert!(
            !dir.join("logs").exists(),
            "no output before the inputs are checked"
        );
    }
    // Standard input that is not a capture: the analyzer's own error, still one line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_wscope"))
        .args(["inspect", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET / HTTP/1.1\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a pcap or pcapng capture"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn parse_points_captures_to_inspect() {
    let out = wscope(&["parse", &sample()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("pcap/pcapng capture") && err.contains("wscope inspect"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let out = wscope(&["parse", "/nonexistent/frames.bin"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "wscope parse: /nonexistent/frames.bin: the file does not exist\n"
    );
}

/// The uids of a run's JSON events, in order of first appearance.
fn uids(extra: &[&str]) -> Vec<String> {
    let sample = sample();
    let mut args = vec!["inspect", "--events", "-", sample.as_str()];
    args.extend_from_slice(extra);
    let out = wscope(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut seen: Vec<String> = Vec::new();
    for line in text(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let uid = v["uid"].as_str().unwrap().to_owned();
        if !seen.contains(&uid) {
            seen.push(uid);
        }
    }
    assert_eq!(seen.len(), 2);
    seen
}

#[test]
fn uids_are_random_unless_seeded() {
    assert_ne!(uids(&[]), uids(&[]), "two runs without a seed share uids");
    assert_eq!(uids(&["--uid-seed", "7"]), uids(&["--uid-seed", "7"]));
    assert_ne!(uids(&["--uid-seed", "7"]), uids(&["--uid-seed", "8"]));
}

#[cfg(unix)]
#[test]
fn output_files_never_follow_planted_links() {
    let dir = scratch("symlink");
    let victim = dir.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::os::unix::fs::symlink(&victim, logs.join("websocket.log")).unwrap();
    let events = dir.join("events.json");
    std::os::unix::fs::symlink(&victim, &events).unwrap();

    let run = |extra: &[&str]| {
        let mut args = vec!["inspect", "-q", "-o", logs.to_str().unwrap()];
        args.extend_from_slice(extra);
        let sample = sample();
        args.push(&sample);
        wscope(&args)
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("websocket.log: already exists (pass --force"),
        "{err}"
    );
    let out = run(&["--events", events.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");

    // --force replaces the links themselves, never what they point to.
    let out = run(&["--force", "--events", events.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    for f in [logs.join("websocket.log"), events.clone()] {
        let meta = std::fs::symlink_metadata(&f).unwrap();
        assert!(meta.is_file(), "{} is a regular file now", f.display());
        assert!(meta.len() > 0);
    }

    // A failed set-up leaves no file of its own behind (which would stop the next run).
    let logs2 = dir.join("logs2");
    std::fs::create_dir_all(&logs2).unwrap();
    std::os::unix::fs::symlink(&victim, logs2.join("weird.log")).unwrap();
    let out = wscope(&["inspect", "-q", "-o", logs2.to_str().unwrap(), &sample()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("weird.log: already exists"),
        "{}",
        text(&out.stderr)
    );
    assert!(!logs2.join("websocket.log").exists());
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");

    // The process's own streams are not links planted by anyone: written as they are.
    let out = wscope(&["inspect", "-q", "--events", "/dev/stdout", &sample()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"event\":\"established\""));

    // The same for extracted messages, whose names are predictable with a uid seed.
    let x = dir.join("x");
    let out = wscope(&[
        "inspect",
        "-q",
        "--uid-seed",
        "1",
        "--extract",
        x.to_str().unwrap(),
        &sample(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = std::fs::read_dir(&x)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(&first).unwrap();
    std::os::unix::fs::symlink(&victim, &first).unwrap();
    for f in std::fs::read_dir(&x).unwrap() {
        let f = f.unwrap().path();
        if f != first {
            std::fs::remove_file(f).unwrap();
        }
    }
    let out = wscope(&[
        "inspect",
        "-q",
        "--uid-seed",
        "1",
        "--extract",
        x.to_str().unwrap(),
        &sample(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Files and bytes under an extraction directory.
fn extracted(dir: &Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    for f in std::fs::read_dir(dir).unwrap() {
        files += 1;
        bytes += f.unwrap().metadata().unwrap().len();
    }
    (files, bytes)
}

#[test]
fn extraction_stops_at_its_quota_and_the_analysis_goes_on() {
    let dir = scratch("quota");
    let all = dir.join("all");
    let out = wscope(&[
        "inspect",
        "-q",
        "--extract",
        all.to_str().unwrap(),
        &sample(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (files, bytes) = extracted(&all);
    assert!(files >= 4 && bytes > 100, "{files} files, {bytes} bytes");

    for (flag, value) in [("--extract-max-files", "2"), ("--extract-max-bytes", "100")] {
        let x = dir.join(flag.trim_start_matches('-'));
        let out = wscope(&[
            "inspect",
            "--events",
            "-",
            "--extract",
            x.to_str().unwrap(),
            flag,
            value,
            &sample(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert_eq!(err.matches("extraction stopped").count(), 1, "{err}");
        assert!(err.contains(&format!("{flag} {value} reached")), "{err}");
        let (f, b) = extracted(&x);
        if flag == "--extract-max-files" {
            assert_eq!(f, 2);
        } else {
            assert_eq!(b, 100);
        }
        // Reported once as an anomaly; every message is still analysed.
        let events = text(&out.stdout);
        assert_eq!(events.matches("\"extract_limit\"").count(), 1, "{events}");
        assert_eq!(events.matches("\"event\":\"message\"").count(), 13);
        assert!(err.contains("messages 13"), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Peak resident memory of a running process, in KiB (Linux).
#[cfg(target_os = "linux")]
#[test]
fn parse_reads_the_committed_sample_of_frames() {
    // `samples/frames.bin` (built by `wscope-proto`'s `tests/all/dissect.rs`): one client's
    // stream, so the strict client rule finds nothing to report.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/frames.bin");
    let out = wscope(&["parse", "--direction", "client", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for line in [
        "frame @20: fin=0 rsv=0 opcode=1 (text) mask=01020304 len=9 payload=0x48656c6c6f2c2077c3",
        "message @35: ping, 14 bytes in 1 frame: \"are you there?\"",
        "message @20: text, 13 bytes in 2 frames, valid UTF-8: \"Hello, wörld\"",
        "message @65: binary, 65536 bytes in 1 frame: 0x0726456483a2c1e0ff1e3d5c7b9ab9d8f7163554\
         7392b1d0ef0e2d4c6b8aa9c8…",
        "  close: status 1000 (normal closure) reason \"bye\"",
        "6 frame(s), 5 message(s), 0 anomalies",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line}\n{stdout}");
    }
    // As a server's stream, every frame breaks the mask rule, with the close code it implies.
    let out = wscope(&["parse", "--json", "--direction", "server", path]);
    let anomalies: Vec<String> = text(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"anomaly\""))
        .map(str::to_owned)
        .collect();
    assert_eq!(anomalies.len(), 6, "{anomalies:?}");
    assert!(
        anomalies[0].contains("\"kind\":\"masked_server_frame\"")
            && anomalies[0].contains("\"close_code\":1002"),
        "{anomalies:?}"
    );
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn parse_streams_a_huge_frame_and_many_small_ones_in_bounded_memory() {
    // One 160 MiB masked binary frame, then 100,000 small text frames: the whole input was
    // read, copied and recorded before (about 16 times the input at peak).
    let mut child = Command::new(env!("CARGO_BIN_EXE_wscope"))
        .args(["parse", "--json", "--direction", "client", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        // Counts output lines without keeping them.
        let mut lines = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
            if n == 0 {
                break lines;
            }
            lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let huge: u64 = 160 << 20;
    let mut head = vec![0x82, 0xff];
    head.extend_from_slice(&huge.to_be_bytes());
    head.extend_from_slice(&[1, 2, 3, 4]);
    stdin.write_all(&head).unwrap();
    let block = vec![0x5au8; 1 << 20];
    for _ in 0..(huge >> 20) {
        stdin.write_all(&block).unwrap();
    }
    let small = [0x81, 0x82, 0, 0, 0, 0, b'h', b'i'];
    let smalls: Vec<u8> = small
        .iter()
        .copied()
        .cycle()
        .take(small.len() * 100_000)
        .collect();
    stdin.write_all(&smalls).unwrap();
    stdin.flush().unwrap();
    // Everything was written (the pipe holds at most 64 KiB): the peak so far is the run's.
    let peak = peak_rss_kib(pid);
    drop(stdin);
    let lines = reader.join().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A frame line and a message line per frame.
    assert_eq!(lines, 2 * 100_001);
    assert!(peak < 64 << 10, "peak resident memory {peak} KiB");
}

#[test]
fn inspect_reports_skipped_packets_and_reads_past_unknown_blocks() {
    let dir = scratch("skipped");
    let cap = dir.join("skipped.pcapng");
    std::fs::write(
        &cap,
        wscope_test_support::capture::pcapng_with_skipped_packets(true),
    )
    .unwrap();
    let cap = cap.to_str().unwrap();
    let out = wscope(&["inspect", cap]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{}", stdout, text(&out.stderr));
    assert!(
        stdout.contains(
            "skipped      2 packets of an unsupported link type, 1 of an undeclared pcapng interface"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("NOTE         unsupported_link_type 2 packets skipped"),
        "{stdout}"
    );
    // The TCP packet after the empty local-use block was read.
    assert!(stdout.contains("packets      3 "), "{stdout}");
    assert!(stdout.contains("connections  1 "), "{stdout}");

    let logs = dir.join("logs");
    let out = wscope(&[
        "inspect",
        "-q",
        "--events",
        "-",
        "-o",
        logs.to_str().unwrap(),
        cap,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let notes: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["event"] == "capture_note")
        .collect();
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0]["name"], "unsupported_link_type");
    assert_eq!(notes[0]["count"], 2);
    assert_eq!(notes[1]["name"], "undeclared_interface");
    let weird = std::fs::read_to_string(logs.join("weird.log")).unwrap();
    assert!(weird.contains("undeclared_interface"), "{weird}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `-i` in a build without the `live` feature: one line saying how to get it, no output files.
#[cfg(not(feature = "live"))]
#[test]
fn inspect_live_without_the_feature_says_how_to_build_it() {
    let dir = scratch("no-live");
    let logs = dir.join("logs");
    let out = wscope(&["inspect", "-i", "lo", "-o", logs.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("built without live capture (cargo feature `live`"),
        "{err}"
    );
    assert!(!logs.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Live flags need `-i`, and `-i` takes no capture files.
#[test]
fn inspect_live_flags_are_checked_before_anything_runs() {
    for args in [
        &["inspect", "-i", "lo", "x.pcap"][..],
        &["inspect", "x.pcap", "--duration", "1"][..],
        &["inspect", "-i", "lo", "--rotate", "60"][..],
        &["inspect", "-i", "lo", "--rotate", "0", "-o", "d"][..],
    ] {
        let out = wscope(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// Zeek's trace of a wrong `Sec-WebSocket-Accept`: the upgrade is logged and reported with
/// `"accepted": false`, the summary counts it apart from sessions, and the connection's end
/// is recorded.
#[test]
fn a_rejected_upgrade_is_not_a_session() {
    let Some(corpus) = wscope_test_support::corpus::corpus() else {
        return;
    };
    let cap = corpus.join("zeek/traces/websocket/wrong-accept-header.pcap");
    let dir = scratch("rejected");
    let logs = dir.join("logs");
    let (logs_arg, cap_arg) = (logs.to_str().unwrap(), cap.to_str().unwrap());
    let out = wscope(&["inspect", "--events", "-", "-o", logs_arg, cap_arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stderr);
    assert!(
        summary.contains("WebSocket sessions 0 (and 1 upgrades the client rejects)"),
        "{summary}"
    );
    assert!(summary.contains("frames       0 "), "{summary}");
    let events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let established: Vec<_> = events
        .iter()
        .filter(|v| v["event"] == "established")
        .collect();
    assert_eq!(established.len(), 1);
    assert_eq!(established[0]["accepted"], false);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "connection_end");
    assert_eq!(last["clean"], false);
    let websocket_log = std::fs::read_to_string(logs.join("websocket.log")).unwrap();
    assert_eq!(
        websocket_log
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count(),
        1
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every file under `dir` (relative path → bytes), sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `wscope inspect` with `--workers n` and every output: the output directory's files, and
/// stdout (listing and summary) without the timing line.
/// With `extract`, also `--extract` (the events are then written by the merging thread;
/// without it, by the workers).
fn inspect_all_outputs(
    input: &Path,
    work: &Path,
    n: u32,
    extract: bool,
) -> (Vec<(String, Vec<u8>)>, String) {
    let out = work.join(format!("w{n}"));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let s = |p: PathBuf| p.to_str().unwrap().to_owned();
    let r = wscope(
        &[
            "inspect",
            input.to_str().unwrap(),
            "--uid-seed",
            "5",
            "--digest",
            "--workers",
            &n.to_string(),
            "-o",
            &s(out.join("logs")),
            "--events",
            &s(out.join("events.json")),
            "--extract",
            &s(out.join("extract")),
        ][..if extract { 13 } else { 11 }],
    );
    assert!(
        r.status.code() == Some(0) || r.status.code() == Some(2),
        "{}",
        text(&r.stderr)
    );
    let stdout: Vec<String> = text(&r.stdout)
        .lines()
        .filter(|l| !l.starts_with("time "))
        .map(str::to_owned)
        .collect();
    (tree(&out), stdout.join("\n") + &text(&r.stderr))
}

#[test]
fn inspect_output_does_not_depend_on_the_number_of_workers() {
    let work = scratch("workers");
    let mixed = work.join("mixed.pcap");
    std::fs::write(
        &mixed,
        wscope_test_support::traffic::mixed_traffic(11, 300).unwrap(),
    )
    .unwrap();
    let h2 = work.join("h2.pcap");
    std::fs::write(
        &h2,
        wscope_test_support::traffic::h2_websocket_traffic(5, 4, 6).unwrap(),
    )
    .unwrap();
    let mut inputs = vec![PathBuf::from(sample()), mixed, h2];
    if let Some(root) = wscope_test_support::corpus::corpus() {
        let mut stack = vec![root];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                    inputs.push(p);
                }
            }
        }
    }
    inputs.sort();
    for (input, extract) in inputs.iter().flat_map(|i| [(i, true), (i, false)]) {
        let (files1, out1) = inspect_all_outputs(input, &work, 1, extract);
        assert!(
            files1.iter().any(|(name, _)| name == "events.json"),
            "{}: {files1:?}",
            input.display()
        );
        for n in [2, 4] {
            let (files, out) = inspect_all_outputs(input, &work, n, extract);
            assert_eq!(out1, out, "{}: stdout, 1 vs {n} workers", input.display());
            let names1: Vec<&str> = files1.iter().map(|(f, _)| f.as_str()).collect();
            let names: Vec<&str> = files.iter().map(|(f, _)| f.as_str()).collect();
            assert_eq!(names1, names, "{}: files, 1 vs {n}", input.display());
            for ((name, a), (_, b)) in files1.iter().zip(&files) {
                assert!(
                    a == b,
                    "{}: {name} differs, 1 vs {n} workers",
                    input.display()
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// A device is written to, never replaced: `--events /dev/null` works without `--force`, and
/// with `--force` the device is still a device afterwards (an earlier version removed it and
/// made a regular file in its place).
#[cfg(unix)]
#[test]
fn events_to_a_device_write_through_it() {
    use std::os::unix::fs::FileTypeExt as _;
    let out = wscope(&["inspect", "-q", "--events", "/dev/null", &sample()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let is_device =
        || std::fs::symlink_metadata("/dev/null").is_ok_and(|m| m.file_type().is_char_device());
    assert!(is_device());
    // Only checked when the first run shows the fix is in (never risk the real device).
    let out = wscope(&[
        "inspect",
        "-q",
        "--force",
        "--events",
        "/dev/null",
        &sample(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(is_device(), "--force replaced /dev/null");
}

/// WebSocket over HTTP/2 (RFC 8441): each stream is a session of its own in the listing, the
/// summary, the events and `--extract` (its messages in its own files, named by the stream's
/// uid, never mixed with the other streams' of the same connection).
#[test]
fn http2_streams_are_sessions_with_their_own_extracted_files() {
    let dir = scratch("h2");
    let cap = dir.join("h2.pcap");
    std::fs::write(
        &cap,
        wscope_test_support::traffic::h2_websocket_traffic(3, 2, 5).unwrap(),
    )
    .unwrap();
    let x = dir.join("x");
    let (cap_arg, x_arg) = (cap.to_str().unwrap(), x.to_str().unwrap());
    let out = wscope(&[
        "inspect",
        "--events",
        "-",
        "--uid-seed",
        "3",
        "--extract",
        x_arg,
        cap_arg,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stderr);
    assert!(summary.contains("WebSocket sessions 10"), "{summary}");
    let mut uid_stream = std::collections::BTreeMap::new();
    for line in text(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["event"] == "established" {
            assert_eq!(v["http2"], true, "{line}");
            uid_stream.insert(
                v["uid"].as_str().unwrap().to_owned(),
                (
                    v["uri"].as_str().unwrap().to_owned(),
                    v["stream_id"].as_u64().unwrap(),
                ),
            );
        }
    }
    assert_eq!(uid_stream.len(), 10);
    // The listing names the stream.
    let listing = wscope(&["inspect", "--uid-seed", "3", cap_arg]);
    let listing = text(&listing.stdout);
    assert_eq!(
        listing.matches(" websocket(h2 stream ").count(),
        10,
        "{listing}"
    );
    // Per uid: 3 client text files and 3 server binary files, each the stream's own.
    for (uid, (uri, stream)) in &uid_stream {
        let mut parts = uri.trim_start_matches("/h2/").split('/');
        let (c, s) = (parts.next().unwrap(), parts.next().unwrap());
        assert_eq!(s.parse::<u64>().unwrap() * 2 + 1, *stream);
        for m in 1..=3 {
            let client = std::fs::read_to_string(x.join(format!("{uid}-c-{m:06}.txt"))).unwrap();
            let unit = format!("c{c} s{s} m{} ", m - 1);
            assert!(
                !client.is_empty() && client.replace(&unit, "").is_empty(),
                "{uid} message {m}: {}",
                &client[..client.len().min(60)]
            );
            let server = std::fs::read(x.join(format!("{uid}-s-{m:06}.bin"))).unwrap();
            let mut back = server.clone();
            back.reverse();
            assert_eq!(back, client.as_bytes(), "{uid} echo {m}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_event_payload_leaves_only_the_payload_bytes_out_of_the_events() {
    let work = scratch("no-payload");
    let mixed = work.join("mixed.pcap");
    std::fs::write(
        &mixed,
        wscope_test_support::traffic::mixed_traffic(5, 100).unwrap(),
    )
    .unwrap();
    let events = |n: &str, no_payload: bool| -> Vec<serde_json::Value> {
        let ev = work.join(format!("ev-{n}-{no_payload}.json"));
        let ev = ev.to_str().unwrap();
        let mut args = vec![
            "inspect",
            "-q",
            "--uid-seed",
            "3",
            "--workers",
            n,
            "--events",
            ev,
        ];
        if no_payload {
            args.push("--no-event-payload");
        }
        args.push(mixed.to_str().unwrap());
        let r = wscope(&args);
        assert!(r.status.success(), "{}", text(&r.stderr));
        std::fs::read_to_string(ev)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let full = events("1", false);
    let frame_data = full.iter().filter(|e| e["event"] == "frame_data").count();
    assert!(frame_data > 100, "{frame_data}");
    // The same events, in the same order, with `data_b64` removed and nothing else; the
    // same for any number of workers.
    let mut expected = full.clone();
    for e in &mut expected {
        if let Some(o) = e.as_object_mut() {
            if o["event"] == "frame_data" {
                assert!(o.remove("data_b64").is_some());
                assert!(o["len"].as_u64().is_some());
            }
        }
    }
    for n in ["1", "2"] {
        assert_eq!(events(n, true), expected, "{n} workers");
    }
    // Without --events the option is refused.
    let r = wscope(&[
        "inspect",
        "-q",
        "--no-event-payload",
        mixed.to_str().unwrap(),
    ]);
    assert!(!r.status.success());
    let _ = std::fs::remove_dir_all(&work);
}
