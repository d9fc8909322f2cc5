//! `wscope inspect FILE...`: passive WebSocket analysis of pcap/pcapng captures.
//!
//! Without output options it lists the WebSocket sessions, messages, closes and anomalies on
//! stdout and ends with a summary. `-o DIR` writes Zeek's `websocket.log` and `weird.log`
//! there, `--events PATH|-` JSON Lines (schema in `docs/events.md`), `--extract DIR` one file
//! per message.
//!
//! Output files are created with `create_new` (`O_CREAT|O_EXCL`, which never follows a
//! symbolic link): an existing file, or a link planted where one will be written, is an error
//! unless `--force`, which removes it (the link, not its target) first. `--extract` stops at
//! `--extract-max-bytes` or `--extract-max-files`, reported once; the analysis goes on.
//!
//! Zeek uids are random per run, as Zeek's are: the seed comes from the OS unless
//! `--uid-seed N` asks for the same uids every time.
//!
//! `--workers N` (default: the number of CPUs) shards connections over N analysis threads;
//! the outputs (logs, events, extracted files, listing, summary) are the same for every N
//! (see `wscope_inspect::parallel`).
//!
//! `wscope inspect -i IFACE` captures live instead (the `live` submodule, cargo feature
//! `live`), with the same outputs written as the traffic passes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, IsTerminal as _, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use wscope_inspect::analyzer::{Analyzer, AnalyzerConfig, Stats};
use wscope_inspect::capture::{Capture, CaptureErrorKind, Source};
use wscope_inspect::event::{Event, EventKind, OpCode};
use wscope_inspect::log::json::{hex, lossless_text, opcode_name, JsonLines};
use wscope_inspect::log::zeek::Style;
use wscope_inspect::log::{ZeekLogs, ZeekOutput};
use wscope_inspect::parallel::{LocalOutput, LocalWriter};
use wscope_inspect::sink::{CaptureNote, Interest, Sink};
use wscope_inspect::uid::{ConnId, Uid};

/// Analyse captures passively: sessions, frames, messages, anomalies (Zeek-compatible logs).
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// pcap or pcapng files (`-`: standard input), analysed as one run.
    #[arg(required_unless_present = "interfaces", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Write Zeek's websocket.log and weird.log into this directory.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: Option<PathBuf>,
    /// Zeek's JSON log style instead of TSV for the logs in `-o`.
    #[arg(long)]
    json: bool,
    /// Only anomalies Zeek also reports go to weird.log.
    #[arg(long)]
    zeek_weirds_only: bool,
    /// Write events as JSON Lines to PATH (`-`: stdout).
    #[arg(long, value_name = "PATH")]
    events: Option<PathBuf>,
    /// Add the SHA-256 of each message's application payload to message events.
    #[arg(long)]
    digest: bool,
    /// Leave the payload bytes out of `frame_data` events (no `data_b64`; the events keep
    /// their `len`).
    #[arg(long, requires = "events")]
    no_event_payload: bool,
    /// Write each data message's payload (inflated) to a file in DIR.
    #[arg(long, value_name = "DIR")]
    extract: Option<PathBuf>,
    /// With --extract: stop extracting after writing this many bytes in all (the analysis
    /// goes on).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30, requires = "extract")]
    extract_max_bytes: u64,
    /// With --extract: stop extracting after creating this many files.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100_000,
        requires = "extract"
    )]
    extract_max_files: u64,
    /// Replace output files that already exist (without this, an existing file, or a
    /// symbolic link where one would be written, is an error).
    #[arg(long)]
    force: bool,
    /// Seed of the Zeek-style connection uids: the same seed gives the same uids (for tests
    /// and diffs). Default: random, as Zeek's uids are.
    #[arg(long, value_name = "N")]
    uid_seed: Option<u64>,
    /// Largest frame_data chunk in bytes.
    #[arg(long, default_value_t = 8192, value_name = "N")]
    payload_chunk_size: usize,
    /// Do not inflate permessage-deflate messages.
    #[arg(long)]
    no_inflate: bool,
    /// No listing on stdout (summary only).
    #[arg(short, long)]
    quiet: bool,
    /// Decrypt TLS (wss://) with the secrets of this NSS key log (`SSLKEYLOGFILE`); repeatable.
    /// Secrets in pcapng Decryption Secrets Blocks are used without it. Live (`-i`): the file
    /// is followed as browsers and other clients append to it (it may not exist yet), and a
    /// connection whose secrets are written after its ServerHello waits for them (up to 5 s
    /// and 256 KiB) and is decrypted from its start.
    #[arg(long, value_name = "FILE")]
    keylog: Vec<PathBuf>,
    /// Worker threads: connections are sharded over them by their address pair. 1: analyse in
    /// the reading thread. Default: the number of CPUs. Files: the output is the same for any
    /// number; with `--events`, each worker's CPU is shared by two shards that take turns, so
    /// that a shard waiting for the other's work does not leave the CPU idle. Live (`-i`): N
    /// captures share each interface through a PACKET_FANOUT group, one thread each; the
    /// output is in order per connection.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: Option<u16>,
    /// Live capture (`-i`), listed last in the help.
    #[command(flatten)]
    live: live::LiveArgs,
}

/// Reads the `--keylog` files; malformed lines are reported (first ones, with their line
/// number) and skipped.
fn read_keylogs(files: &[PathBuf]) -> io::Result<wscope_inspect::tls::keylog::KeyLog> {
    let mut keys = wscope_inspect::tls::keylog::KeyLog::new();
    for f in files {
        keys.add_file(f)
            .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e.to_string()))?;
    }
    for w in keys.warnings() {
        eprintln!("wscope inspect: {w}");
    }
    let st = keys.stats();
    if st.malformed as usize > keys.warnings().len() {
        eprintln!(
            "wscope inspect: {} more malformed key log lines skipped",
            st.malformed as usize - keys.warnings().len()
        );
    }
    Ok(keys)
}

/// The `--keylog` files of a live capture: what they hold now, and a follower of each that
/// reads the lines written later. A file that does not exist yet is followed until it does
/// (a browser makes its `SSLKEYLOGFILE` at its first TLS connection).
fn follow_keylogs(
    files: &[PathBuf],
) -> io::Result<(
    wscope_inspect::tls::keylog::KeyLog,
    Vec<wscope_inspect::tls::keylog::KeyLogFollower>,
)> {
    use wscope_inspect::tls::keylog::{KeyLog, KeyLogFollower};
    let mut keys = KeyLog::new();
    let mut followers = Vec::new();
    for f in files {
        let mut follower = KeyLogFollower::new(f);
        let name = f.display().to_string();
        match follower.poll() {
            Ok(Some(text)) => keys.add_bytes(&text, &name),
            Ok(None) if !follower.is_open() => {
                eprintln!(
                    "wscope inspect: {name} does not exist yet: its secrets are read as it is \
                     written"
                );
            }
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::NotFound, e.to_string())),
        }
        followers.push(follower);
    }
    for w in keys.warnings() {
        eprintln!("wscope inspect: {w}");
    }
    Ok((keys, followers))
}

mod live;

pub(crate) fn run(args: Args) -> ExitCode {
    match inspect(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wscope inspect: {e}");
            ExitCode::from(2)
        }
    }
}

/// Checks each input file before any output is created: one line naming the file and the
/// problem, as tshark says "The file ... doesn't exist". (The analyzer reports the same
/// problems for inputs it meets later, such as standard input.)
fn check_inputs(files: &[PathBuf]) -> io::Result<()> {
    for f in files {
        if f.as_os_str() == "-" {
            continue;
        }
        let fail = |what: &str| io::Error::other(format!("{}: {what}", f.display()));
        let meta = match std::fs::metadata(f) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(fail("the file does not exist"))
            }
            Err(e) => return Err(fail(&e.to_string())),
        };
        if meta.is_dir() {
            return Err(fail("is a directory, not a capture file"));
        }
        if meta.is_file() {
            if meta.len() == 0 {
                return Err(fail("the file is empty, not a pcap or pcapng capture"));
            }
            let mut magic = [0u8; 4];
            let n = File::open(f)
                .and_then(|mut h| h.read(&mut magic))
                .map_err(|e| fail(&e.to_string()))?;
            if !is_capture_magic(&magic[..n]) {
                return Err(fail(
                    "not a pcap or pcapng capture (unknown file header; raw WebSocket frames \
                     go to `wscope parse`)",
                ));
            }
        }
    }
    Ok(())
}

/// Whether `head` starts like a pcap (either byte order, micro- or nanoseconds) or pcapng
/// (section header block) file.
pub(crate) fn is_capture_magic(head: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 5] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x0a, 0x0d, 0x0d, 0x0a],
    ];
    MAGICS.iter().any(|m| head.get(..4) == Some(m.as_slice()))
}

/// Creates `path` for writing without following a symbolic link (`O_CREAT|O_EXCL`). An
/// existing file or link is an error naming the path, unless `force`, which removes it (a
/// link itself, never its target) first; a link planted again in between still fails.
///
/// Two kinds of existing paths are written to as they are, since no file can be clobbered
/// through them: a named pipe, and the process's own descriptors (`/dev/stdout`,
/// `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`, links that only root can plant).
fn create_output(path: &Path, force: bool) -> io::Result<File> {
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    if is_own_stream(path) {
        return OpenOptions::new().write(true).open(path).map_err(named);
    }
    let open = || OpenOptions::new().write(true).create_new(true).open(path);
    match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if !force {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "{}: already exists (pass --force to replace it)",
                        path.display()
                    ),
                ));
            }
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.is_dir() => {
                    return Err(named(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "is a directory",
                    )))
                }
                // Only a file or a link is replaced: never a device or anything else.
                Ok(m) if !m.is_file() && !m.file_type().is_symlink() => {
                    return Err(named(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "is not a regular file",
                    )))
                }
                _ => std::fs::remove_file(path).map_err(named)?,
            }
            open().map_err(named)
        }
        r => r.map_err(named),
    }
}

/// Whether `path` is a pipe, a device (`/dev/null`) or one of the process's own descriptors (see
/// [`create_output`]).
fn is_own_stream(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        // Pipes and devices (`/dev/null`, a terminal) are written to, never replaced.
        if std::fs::symlink_metadata(path).is_ok_and(|m| {
            let t = m.file_type();
            t.is_fifo() || t.is_char_device() || t.is_block_device() || t.is_socket()
        }) {
            return true;
        }
    }
    let s = path.to_string_lossy();
    s == "/dev/stdout"
        || s == "/dev/stderr"
        || ["/dev/fd/", "/proc/self/fd/"].iter().any(|p| {
            s.strip_prefix(p)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Output files created while setting up a run: removed when dropped, unless kept.
struct Created(Vec<PathBuf>);

impl Created {
    /// [`create_output`], remembering the file (not a pipe or the process's own stream).
    fn create(&mut self, path: &Path, force: bool) -> io::Result<File> {
        let file = create_output(path, force)?;
        if !is_own_stream(path) {
            self.0.push(path.to_owned());
        }
        Ok(file)
    }

    /// The set-up succeeded: the files stay.
    fn keep(&mut self) {
        self.0.clear();
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A random uid seed from the operating system (Zeek's uids are random too).
fn random_seed() -> u64 {
    getrandom::u64().unwrap_or_default()
}

/// A reader that advances the progress bar.
struct Progress<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

fn sources(files: &[PathBuf], bar: Option<&indicatif::ProgressBar>) -> io::Result<Vec<Source>> {
    let mut out = Vec::new();
    for f in files {
        if f.as_os_str() == "-" {
            out.push(Source::Stdin);
            continue;
        }
        match bar {
            Some(bar) => {
                let file = File::open(f)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", f.display())))?;
                out.push(Source::Reader(
                    Box::new(Progress {
                        inner: file,
                        bar: bar.clone(),
                    }),
                    f.display().to_string(),
                ));
            }
            None => out.push(Source::Path(f.clone())),
        }
    }
    Ok(out)
}

#[allow(clippy::disallowed_methods)] // the CLI measures its own wall time for the summary
fn wall_clock() -> std::time::Instant {
    std::time::Instant::now()
}

fn inspect(args: &Args) -> io::Result<ExitCode> {
    let events_to_stdout = args.events.as_deref() == Some(Path::new("-"));
    let listing = !args.quiet && !events_to_stdout;

    let mut cfg = AnalyzerConfig::default();
    cfg.flow.uid_seed = args.uid_seed.unwrap_or_else(random_seed);
    cfg.session.payload_chunk_size = args.payload_chunk_size.max(1);
    cfg.session.digest = args.digest;
    cfg.session.observer.inflate = !args.no_inflate;
    let workers = args.workers.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        usize::from,
    );
    if !args.live.interfaces.is_empty() {
        let (keys, followers) = follow_keylogs(&args.keylog)?;
        return live::run(args, cfg, keys, followers, workers);
    }
    let keys = read_keylogs(&args.keylog)?;
    check_inputs(&args.files)?;

    let bar = if io::stderr().is_terminal() {
        let total: u64 = args
            .files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        (total > 16 << 20).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        })
    } else {
        None
    };
    let mut capture = Capture::new(sources(&args.files, bar.as_ref())?);

    // Files created from here on are removed again if the set-up fails, so that nothing is
    // left behind to stop the next run.
    let mut created = Created(Vec::new());
    let mut logs = match &args.output {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
            let ext = "log";
            let mut open = |name: &str| -> io::Result<BufWriter<File>> {
                let path = dir.join(format!("{name}.{ext}"));
                Ok(BufWriter::new(created.create(&path, args.force)?))
            };
            let style = if args.json { Style::Json } else { Style::Ascii };
            let websocket = open("websocket")?;
            let weird = open("weird")?;
            Some(ZeekLogs::new(
                websocket,
                weird,
                style,
                args.zeek_weirds_only,
            ))
        }
        None => None,
    };
    let events_out: Option<Box<dyn Write>> = match &args.events {
        Some(p) if p.as_os_str() == "-" => Some(Box::new(BufWriter::new(io::stdout().lock()))),
        Some(p) => Some(Box::new(BufWriter::new(created.create(p, args.force)?))),
        None => None,
    };
    // With several workers, the events are rendered by the workers themselves, in parallel
    // (the order is the same), unless extraction runs: its quota notice goes into the events
    // at the point of the merged stream where the quota is reached.
    let (mut events, mut events_local) = if workers > 1 && args.extract.is_none() {
        (None, events_out)
    } else {
        (
            events_out.map(|o| {
                let j = JsonLines::new(o);
                if args.no_event_payload {
                    j.without_payload()
                } else {
                    j
                }
            }),
            None,
        )
    };
    // Likewise the workers render the rows of the Zeek logs, and this thread writes them in
    // order.
    let logs_by_workers = workers > 1 && args.extract.is_none();
    let mut extract = Extract::from_args(args)?;
    let mut list = listing.then(|| Listing::new(BufWriter::new(io::stdout().lock())));
    created.keep();

    let start = wall_clock();
    // Only the listing, the extractor and events written here read message bytes.
    let payload = list.is_some() || extract.is_some() || events.is_some();
    let stats = {
        let (mut by_workers, mut in_fanout) = if logs_by_workers {
            (logs.as_mut(), None)
        } else {
            (None, logs.as_mut())
        };
        let mut sink = Fanout {
            extract: extract.as_mut(),
            sinks: [
                in_fanout.as_mut().map(|s| &mut **s as &mut dyn Sink),
                events.as_mut().map(|s| s as &mut dyn Sink),
                list.as_mut().map(|s| s as &mut dyn Sink),
            ],
        };
        let no_payload = args.no_event_payload;
        let make = |w: LocalWriter| {
            let j = JsonLines::in_memory(w);
            Box::new(if no_payload { j.without_payload() } else { j }) as Box<dyn Sink>
        };
        let mut local = events_local.as_mut().map(|out| LocalOutput {
            make: &make,
            out: &mut **out,
            error: None,
        });
        let r = Analyzer::new(cfg)
            .with_keylog(keys)
            .workers(workers)
            .run_with_outputs(
                &mut capture,
                &mut sink,
                local.as_mut(),
                by_workers.as_mut().map(|l| &mut **l as &mut dyn ZeekOutput),
                payload,
            );
        if let Some(e) = local.and_then(|l| l.error) {
            return Err(e);
        }
        r
    };
    // A source the analyzer could not read at all: one line, no summary.
    let (stats, error) = match stats {
        Ok(stats) => (stats, None),
        Err(e)
            if e.stats().capture.packets == 0
                && matches!(
                    e.kind(),
                    CaptureErrorKind::Io | CaptureErrorKind::Empty | CaptureErrorKind::NotACapture
                ) =>
        {
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            eprintln!("wscope inspect: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => {
            let msg = e.to_string();
            (e.into_stats(), Some(msg))
        }
    };
    let elapsed = start.elapsed();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }

    if let (Some(l), Some(dir)) = (logs, &args.output) {
        let (ws_rows, weird_rows) = l.rows;
        l.finish()?;
        // Like Zeek, leave no empty log behind.
        let ext = "log";
        for (name, rows) in [("websocket", ws_rows), ("weird", weird_rows)] {
            if rows == 0 {
                let _ = std::fs::remove_file(dir.join(format!("{name}.{ext}")));
            }
        }
    }
    if let Some(e) = events {
        e.finish()?;
    }
    if let Some(mut e) = events_local {
        e.flush()?;
    }
    if let Some(x) = extract {
        x.finish()?;
    }
    if let Some(mut l) = list {
        l.out.flush()?;
    }
    let summary = summary(&stats, elapsed.as_secs_f64());
    if events_to_stdout {
        eprint!("{summary}");
    } else {
        print!("{summary}");
    }
    if let Some(err) = &error {
        eprintln!("wscope inspect: capture ended early: {err}");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends each event to every configured sink; the extractor's own notice (a quota reached)
/// goes to the others as an anomaly of the event that reached it.
struct Fanout<'a> {
    extract: Option<&'a mut Extract>,
    sinks: [Option<&'a mut dyn Sink>; 3],
}

impl Sink for Fanout<'_> {
    /// What any of the sinks reads; everything when extracting.
    fn interest(&self) -> Interest {
        if self.extract.is_some() {
            return Interest::ALL;
        }
        self.sinks
            .iter()
            .flatten()
            .fold(Interest::NONE, |i, s| i.union(s.interest()))
    }

    fn event(&mut self, ev: &Event<'_>) {
        for s in self.sinks.iter_mut().flatten() {
            s.event(ev);
        }
        let Some(x) = self.extract.as_deref_mut() else {
            return;
        };
        x.event(ev);
        if let Some(detail) = x.notice.take() {
            eprintln!("wscope inspect: {detail}");
            let note = Event {
                ts: ev.ts,
                conn: ev.conn,
                dir: ev.dir,
                kind: EventKind::Anomaly {
                    name: "extract_limit",
                    zeek_weird: None,
                    detail: Cow::Owned(detail),
                },
            };
            for s in self.sinks.iter_mut().flatten() {
                s.event(&note);
            }
        }
    }

    fn capture_note(&mut self, note: &CaptureNote) {
        for s in self.sinks.iter_mut().flatten() {
            s.capture_note(note);
        }
    }

    fn connection_closed(&mut self, conn: &wscope_inspect::tcp::ConnMeta) {
        for s in self.sinks.iter_mut().flatten() {
            s.connection_closed(conn);
        }
        if let Some(x) = self.extract.as_deref_mut() {
            x.connection_closed(conn);
        }
    }
}

/// A session (connection, and HTTP/2 stream: `ConnMeta::session_key`; with its uid, since
/// the workers of a live capture number their connections each from 1) and a direction (or
/// another slot of it).
type DirKey = (Uid, (ConnId, u32), usize);

/// The [`DirKey`] of `conn`'s `slot`.
fn dir_key(conn: &wscope_inspect::tcp::ConnMeta, slot: usize) -> DirKey {
    (conn.uid, conn.session_key(), slot)
}

/// Writes each data message to `DIR/<uid>-<c|s>-<n>.<txt|bin>`, within a quota of bytes and
/// files.
struct Extract {
    dir: PathBuf,
    force: bool,
    open: HashMap<DirKey, (BufWriter<File>, u64)>,
    counts: HashMap<DirKey, u64>,
    error: Option<io::Error>,
    max_bytes: u64,
    max_files: u64,
    bytes: u64,
    files: u64,
    /// The quota was reached: nothing more is written.
    stopped: bool,
    /// Set once when the quota is reached, for [`Fanout`] to report.
    notice: Option<String>,
}

impl Extract {
    /// The `--extract` folder of `args` (made when missing), if one was asked for.
    fn from_args(args: &Args) -> io::Result<Option<Self>> {
        let Some(dir) = &args.extract else {
            return Ok(None);
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        Ok(Some(Self::new(
            dir.clone(),
            args.force,
            args.extract_max_bytes,
            args.extract_max_files,
        )))
    }

    fn new(dir: PathBuf, force: bool, max_bytes: u64, max_files: u64) -> Self {
        Self {
            dir,
            force,
            open: HashMap::new(),
            counts: HashMap::new(),
            error: None,
            max_bytes,
            max_files,
            bytes: 0,
            files: 0,
            stopped: false,
            notice: None,
        }
    }

    fn finish(mut self) -> io::Result<()> {
        for (_, (mut f, _)) in self.open.drain() {
            f.flush()?;
        }
        self.error.map_or(Ok(()), Err)
    }

    /// Stops extracting (the quota is reached): closes every file, says so once.
    fn stop(&mut self, why: String) {
        self.stopped = true;
        for (_, (mut f, _)) in self.open.drain() {
            let _ = f.flush();
        }
        self.notice = Some(format!(
            "extraction stopped: {why}; {} files, {} bytes written to {} (the analysis goes on)",
            self.files,
            self.bytes,
            self.dir.display()
        ));
    }

    fn write(&mut self, ev: &Event<'_>) -> io::Result<()> {
        if let EventKind::Message { opcode, .. } = &ev.kind {
            // A message whose inflation failed has no final MessageData: close its file here.
            if !opcode.is_control() {
                if let Some((mut f, _)) = self.open.remove(&dir_key(ev.conn, ev.dir.index())) {
                    f.flush()?;
                }
            }
            return Ok(());
        }
        let EventKind::MessageData {
            data,
            opcode,
            message_end,
        } = &ev.kind
        else {
            return Ok(());
        };
        let key = dir_key(ev.conn, ev.dir.index());
        if !self.open.contains_key(&key) {
            if self.files >= self.max_files {
                self.stop(format!("--extract-max-files {} reached", self.max_files));
                return Ok(());
            }
            let n = self.counts.entry(key).or_default();
            *n += 1;
            let side = if ev.is_orig() { 'c' } else { 's' };
            let ext = if opcode.0 == 1 { "txt" } else { "bin" };
            let path = self
                .dir
                .join(format!("{}-{side}-{:06}.{ext}", ev.conn.uid, n));
            let file = create_output(&path, self.force)?;
            self.files += 1;
            self.open.insert(key, (BufWriter::new(file), 0));
        }
        let room = self.max_bytes.saturating_sub(self.bytes);
        let take = data.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if let Some((f, len)) = self.open.get_mut(&key) {
            f.write_all(&data[..take])?;
            *len += take as u64;
            self.bytes += take as u64;
        }
        if take < data.len() {
            self.stop(format!("--extract-max-bytes {} reached", self.max_bytes));
            return Ok(());
        }
        if *message_end {
            if let Some((mut f, _)) = self.open.remove(&key) {
                f.flush()?;
            }
        }
        Ok(())
    }
}

impl Sink for Extract {
    fn event(&mut self, ev: &Event<'_>) {
        if self.error.is_none() && !self.stopped {
            if let Err(e) = self.write(ev) {
                self.error = Some(e);
            }
        }
    }

    fn connection_closed(&mut self, conn: &wscope_inspect::tcp::ConnMeta) {
        for d in 0..2 {
            if let Some((mut f, _)) = self.open.remove(&dir_key(conn, d)) {
                let _ = f.flush();
            }
            self.counts.remove(&dir_key(conn, d));
        }
    }
}

/// The human-readable listing: sessions, messages (with a preview), closes, anomalies.
struct Listing<W: Write> {
    out: W,
    preview: HashMap<DirKey, Vec<u8>>,
}

const PREVIEW: usize = 48;

impl<W: Write> Listing<W> {
    fn new(out: W) -> Self {
        Self {
            out,
            preview: HashMap::new(),
        }
    }

    fn line(&mut self, ev: &Event<'_>) -> io::Result<()> {
        let us = ev.ts.as_micros();
        let ts = format!("{}.{:06}", us / 1_000_000, us % 1_000_000);
        let uid = ev.conn.uid;
        let arrow = if ev.is_orig() { "c>s" } else { "s>c" };
        match &ev.kind {
            EventKind::Tls(info) => writeln!(
                self.out,
                "{ts} {uid} {} -> {} {} {info}{}",
                ev.conn.orig,
                ev.conn.resp,
                if info.decrypted {
                    "tls"
                } else {
                    "tls-undecrypted"
                },
                info.reason.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
            EventKind::Established(up, tls) => {
                let exts: Vec<&str> = up.server_extensions().collect();
                writeln!(
                    self.out,
                    "{ts} {uid} {} -> {} {} host={} uri={} subprotocol={} extensions={}",
                    ev.conn.orig,
                    ev.conn.resp,
                    match (tls.is_some(), ev.conn.stream_id) {
                        (false, None) => "websocket".to_string(),
                        (true, None) => "websocket(wss)".to_string(),
                        (false, Some(s)) => format!("websocket(h2 stream {s})"),
                        (true, Some(s)) => format!("websocket(wss, h2 stream {s})"),
                    },
                    up.host().unwrap_or("-"),
                    up.uri().unwrap_or("-"),
                    up.subprotocol().unwrap_or("-"),
                    if exts.is_empty() {
                        "-".to_string()
                    } else {
                        exts.join(",")
                    }
                )
            }
            EventKind::MessageData { data, .. } => {
                let p = self
                    .preview
                    .entry(dir_key(ev.conn, ev.dir.index()))
                    .or_default();
                let room = (PREVIEW + 1).saturating_sub(p.len());
                p.extend_from_slice(&data[..data.len().min(room)]);
                Ok(())
            }
            EventKind::FrameData { data, info } if info.opcode.0 == 9 || info.opcode.0 == 10 => {
                let p = self
                    .preview
                    .entry(dir_key(ev.conn, ev.dir.index() + 2))
                    .or_default();
                let room = (PREVIEW + 1).saturating_sub(p.len());
                p.extend_from_slice(&data[..data.len().min(room)]);
                Ok(())
            }
            EventKind::Message {
                opcode,
                len,
                sha256,
            } => {
                if opcode.0 == 8 {
                    return Ok(());
                }
                let slot = if opcode.is_control() { 2 } else { 0 };
                let p = self
                    .preview
                    .remove(&dir_key(ev.conn, ev.dir.index() + slot))
                    .unwrap_or_default();
                let shown = &p[..p.len().min(PREVIEW)];
                let more = if p.len() > PREVIEW { "…" } else { "" };
                let text = if opcode.0 == 2 {
                    format!("{}{more}", hex(&shown[..shown.len().min(PREVIEW / 2)]))
                } else {
                    format!("{:?}", format!("{}{more}", lossless_text(shown)))
                };
                let digest = sha256
                    .map(|d| format!(" sha256={}", hex(&d)))
                    .unwrap_or_default();
                writeln!(
                    self.out,
                    "{ts} {uid} {arrow} {:<12} {len:>8} B{digest} {text}",
                    opcode_name(*opcode)
                )
            }
            EventKind::Close { status, reason } => writeln!(
                self.out,
                "{ts} {uid} {arrow} close        {status} {:?}",
                lossless_text(reason)
            ),
            EventKind::Anomaly {
                name,
                zeek_weird,
                detail,
            } => writeln!(
                self.out,
                "{ts} {uid} {arrow} ANOMALY      {name}{} {detail}",
                zeek_weird.map(|w| format!(" ({w})")).unwrap_or_default()
            ),
            _ => Ok(()),
        }
    }
}

impl<W: Write> Sink for Listing<W> {
    fn event(&mut self, ev: &Event<'_>) {
        let _ = self.line(ev);
    }

    fn capture_note(&mut self, note: &CaptureNote) {
        let us = note.ts.map_or(0, |t| t.as_micros());
        let _ = writeln!(
            self.out,
            "{}.{:06} -                  NOTE         {} {}",
            us / 1_000_000,
            us % 1_000_000,
            note.name,
            note.detail
        );
    }

    fn connection_closed(&mut self, conn: &wscope_inspect::tcp::ConnMeta) {
        for d in 0..4 {
            self.preview.remove(&dir_key(conn, d));
        }
    }
}

fn summary(s: &Stats, secs: f64) -> String {
    use core::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(o, "\n== wscope inspect summary");
    let _ = writeln!(
        o,
        "packets      {} ({} bytes read), TCP {}, non-TCP skipped {}",
        s.capture.packets,
        s.capture.bytes,
        s.decode.tcp,
        s.decode.not_tcp + s.decode.not_ip
    );
    if s.decode.unsupported_link > 0 || s.capture.unknown_interface > 0 {
        let _ = writeln!(
            o,
            "skipped      {} packets of an unsupported link type, {} of an undeclared pcapng interface",
            s.decode.unsupported_link, s.capture.unknown_interface
        );
    }
    if s.decode.fragments > 0 {
        let _ = writeln!(
            o,
            "IP fragments {} ({} datagrams reassembled, {} fragments unusable)",
            s.decode.fragments, s.decode.reassembled, s.decode.bad_fragments
        );
    }
    let rejected = if s.rejected_upgrades > 0 {
        format!(" (and {} upgrades the client rejects)", s.rejected_upgrades)
    } else {
        String::new()
    };
    let _ = writeln!(
        o,
        "connections  {} ({} seen mid-stream), WebSocket sessions {}{rejected}",
        s.connections, s.mid_stream, s.sessions
    );
    if s.tls.connections > 0 {
        let t = &s.tls;
        let _ = writeln!(
            o,
            "TLS          {} connections: {} decrypted ({} ALPN h2), {} undecrypted",
            t.connections, t.decrypted, t.h2, t.undecrypted
        );
        if t.undecrypted > 0 {
            let mut by: Vec<(&String, &u64)> = t.undecrypted_sni.iter().collect();
            by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let names: Vec<String> = by
                .iter()
                .take(10)
                .map(|(n, c)| format!("{n} {c}"))
                .collect();
            let more = if by.len() > 10 { ", …" } else { "" };
            let _ = writeln!(o, "  no keys    {}{more}", names.join(", "));
        }
    }
    if s.tls.keylog_malformed > 0 {
        let first = s
            .tls
            .keylog_problem
            .map_or_else(String::new, |p| format!(" (the first: {p})"));
        let _ = writeln!(
            o,
            "key log      {} lines that came during the capture were malformed and skipped{first}",
            s.tls.keylog_malformed
        );
    }
    let _ = writeln!(
        o,
        "frames       {} ({} payload bytes), messages {} ({} application bytes)",
        s.frames,
        s.payload_bytes,
        s.message_count(),
        s.message_bytes
    );
    let per_op: Vec<String> = s
        .messages
        .iter()
        .map(|(op, n)| format!("{} {n}", opcode_name(OpCode(*op))))
        .collect();
    let _ = writeln!(o, "  by opcode  {}", none_if_empty(&per_op));
    let closes: Vec<String> = s.closes.iter().map(|(c, n)| format!("{c}: {n}")).collect();
    let _ = writeln!(o, "closes       {}", none_if_empty(&closes));
    let anomalies: Vec<String> = s
        .anomalies
        .iter()
        .map(|(a, n)| format!("{a} {n}"))
        .collect();
    let _ = writeln!(o, "anomalies    {}", none_if_empty(&anomalies));
    let span = match (s.first_ts, s.last_ts) {
        (Some(a), Some(b)) => b.as_micros().saturating_sub(a.as_micros()) as f64 / 1e6,
        _ => 0.0,
    };
    let mbps = if secs > 0.0 {
        s.capture.bytes as f64 / secs / 1e6
    } else {
        0.0
    };
    let _ = writeln!(
        o,
        "time         capture spans {span:.3} s; analysed in {secs:.3} s ({mbps:.1} MB/s)"
    );
    o
}

fn none_if_empty(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}
