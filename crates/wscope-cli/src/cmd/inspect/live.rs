//! `wscope inspect -i IFACE`: live capture, with output written as it happens.
//!
//! The flags are always there; the capture itself needs the cargo feature `live` (libpcap,
//! whose development files a build must have), and says so when it is missing. The capture
//! ([`wscope_inspect::live::LiveCapture`]) feeds the same analyzer as a file does. This module
//! adds what only a capture that never ends needs, on the capture's ticks (twice a second):
//!
//! - every output (logs, `--events`, the listing) is flushed, so `tail -f websocket.log` and
//!   `--events - | jq` follow the traffic; lines are written whole and the last ones flushed
//!   on SIGINT/SIGTERM, so no line is ever torn;
//! - `--rotate SECS` closes the Zeek logs at each multiple of SECS (UTC) as Zeek does: the
//!   finished file, with its `#close` line, is renamed `websocket.<open time>.log`
//!   (`Log::default_rotation_date_format`, `%Y-%m-%d-%H-%M-%S`) and a new one starts; a log
//!   with no row in the interval leaves no file;
//! - `--stats-interval SECS` writes a `capture_stats` event per interface with the kernel's
//!   received/dropped counters, as Zeek's `capture_loss.log` reports loss.
//!
//! SIGINT or SIGTERM (or `--duration`) stops the capture: packets the kernel holds are still
//! analysed, every connection is closed, the logs get their `#close` lines (and are rotated
//! when `--rotate` is on), and the summary names the kernel's drop counts. A second signal
//! ends the process at once.
//!
//! `--workers N` (default: the number of CPUs) opens N captures of the interfaces whose
//! sockets share one `PACKET_FANOUT` group per interface (the kernel's symmetric flow hash:
//! each connection, both directions, reaches one of them), each analysed by a thread of its
//! own with its own flow table and uids. They write into the same outputs, a whole event or
//! row at a time, so the order is per connection: the events of one connection come in the
//! order one thread would write them, and connections interleave as their packets arrive. The
//! kernel's counters are summed over the sockets (`if_dropped`, the interface's own count, is
//! the same for all of them and is not summed).

use std::io;
use std::process::ExitCode;

use wscope_inspect::analyzer::AnalyzerConfig;
use wscope_inspect::tls::keylog::{KeyLog, KeyLogFollower};

use super::Args;

/// The live capture flags of `wscope inspect`.
#[derive(clap::Args, Debug)]
pub(crate) struct LiveArgs {
    /// Capture live on this network interface instead of reading files (repeatable; `any`
    /// for all). Needs the CAP_NET_RAW capability, and a build with the cargo feature `live`.
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IFACE",
        conflicts_with = "files"
    )]
    pub(crate) interfaces: Vec<String>,
    /// With -i: a BPF capture filter in tcpdump's syntax (`tcp port 80 or tcp port 443`).
    #[arg(
        short = 'f',
        long = "filter",
        value_name = "FILTER",
        requires = "interfaces"
    )]
    filter: Option<String>,
    /// With -i: stop after this many seconds (default: run until SIGINT or SIGTERM).
    #[arg(
        long,
        value_name = "SECS",
        value_parser = crate::cmd::positive_secs,
        requires = "interfaces"
    )]
    duration: Option<f64>,
    /// With -i: bytes kept of each packet.
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 262_144,
        requires = "interfaces"
    )]
    snaplen: u32,
    /// With -i: do not put the interface into promiscuous mode (only traffic to and from
    /// this host is seen).
    #[arg(long, requires = "interfaces")]
    no_promisc: bool,
    /// With -i: kernel capture buffer per interface, in bytes (the packet ring).
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20, requires = "interfaces")]
    buffer_size: u32,
    /// With -i: join this PACKET_FANOUT group: processes capturing on the same interface with
    /// the same ID share its connections (each connection, both directions, goes to one).
    #[arg(long, value_name = "ID", requires = "interfaces")]
    fanout_group: Option<u16>,
    /// With -i: every SECS seconds, a `capture_stats` event (received, dropped and
    /// interface-dropped packets per interface, from the kernel) in --events and the listing.
    #[arg(
        long,
        value_name = "SECS",
        value_parser = crate::cmd::positive_secs,
        requires = "interfaces"
    )]
    stats_interval: Option<f64>,
    /// With -i and -o: rotate the Zeek logs every SECS seconds as Zeek does
    /// (`websocket.2026-01-31-12-00-00.log`, named by the time the file was opened).
    #[arg(
        long,
        value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..),
        requires_all = ["interfaces", "output"]
    )]
    rotate: Option<u64>,
}

/// Runs the live capture of `args` (its `-i` interfaces); TLS connections are decrypted with
/// `keys` (what the `--keylog` files held at the start) and the lines `keylogs` read from them
/// as they grow.
pub(super) fn run(
    args: &Args,
    cfg: AnalyzerConfig,
    keys: KeyLog,
    keylogs: Vec<KeyLogFollower>,
    workers: usize,
) -> io::Result<ExitCode> {
    #[cfg(feature = "live")]
    {
        imp::run(args, cfg, keys, &keylogs, workers)
    }
    #[cfg(not(feature = "live"))]
    {
        let _ = (args, cfg, keys, keylogs, workers);
        Err(io::Error::other(
            "this wscope was built without live capture (cargo feature `live`, which needs \
             libpcap's development files: apt-get install libpcap-dev; then cargo build \
             --release -p wscope-cli --features live)",
        ))
    }
}

#[cfg(feature = "live")]
mod imp {
    use core::sync::atomic::{AtomicBool, Ordering};
    use std::fs::File;
    use std::io::{self, BufWriter, Write};
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;
    use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

    use wscope_inspect::analyzer::{AnalyzerConfig, Stats};
    use wscope_inspect::event::Event;
    use wscope_inspect::live::{LiveCapture, LiveConfig, LiveError};
    use wscope_inspect::log::json::JsonLines;
    use wscope_inspect::log::zeek::{format_date, Style};
    use wscope_inspect::log::ZeekLogs;
    use wscope_inspect::sink::{CaptureNote, Interest, Sink};
    use wscope_inspect::source::{InterfaceStats, Tick};
    use wscope_inspect::tcp::ConnMeta;
    use wscope_inspect::tls::keylog::{KeyLog, KeyLogFollower};
    use wscope_inspect::wscope_proto::time::Instant;
    use wscope_inspect::Analyzer;

    use super::super::{create_output, summary, wall_clock, Args, Extract, Fanout, Listing};

    pub(super) fn run(
        args: &Args,
        cfg: AnalyzerConfig,
        keys: KeyLog,
        keylogs: &[KeyLogFollower],
        workers: usize,
    ) -> io::Result<ExitCode> {
        let a = &args.live;
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // A second signal ends the process at once; the first asks for a clean stop.
            signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))?;
            signal_hook::flag::register(sig, Arc::clone(&stop))?;
        }
        let mut live_cfg = LiveConfig::new(a.interfaces.iter().cloned());
        live_cfg.filter.clone_from(&a.filter);
        live_cfg.snaplen = a.snaplen.max(64);
        live_cfg.promiscuous = !a.no_promisc;
        live_cfg.buffer_size = a.buffer_size;
        live_cfg.fanout_group = a.fanout_group;
        live_cfg.duration = a.duration.map(core::time::Duration::from_secs_f64);
        live_cfg.stop = Arc::clone(&stop);
        let opened = match LiveCapture::open_shares(live_cfg.clone(), workers) {
            // Workers by default (not asked for) where the kernel cannot group sockets: one.
            Err(e @ LiveError::Fanout { group: 0, .. }) if args.workers.is_none() => {
                eprintln!("wscope inspect: {e}; capturing with one worker");
                LiveCapture::open_shares(live_cfg, 1)
            }
            r => r,
        };
        let captures = match opened {
            Ok(c) => c,
            Err(e) => {
                eprintln!("wscope inspect: {e}");
                return Ok(ExitCode::from(2));
            }
        };

        // As tcpdump says it: scripts wait for this line before sending traffic.
        eprintln!(
            "wscope inspect: listening on {}, snapshot length {} bytes",
            a.interfaces.join(", "),
            a.snaplen.max(64)
        );
        let events_to_stdout = args.events.as_deref() == Some(Path::new("-"));
        let listing = !args.quiet && !events_to_stdout;
        let mut logs = match &args.output {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
                Some(RotatingLogs::open(args, dir.clone())?)
            }
            None => None,
        };
        let events_out = match &args.events {
            Some(p) if p.as_os_str() == "-" => Some(Shared::new(Box::new(io::stdout()))),
            Some(p) => Some(Shared::new(Box::new(create_output(p, args.force)?))),
            None => None,
        };
        let mut extract = Extract::from_args(args)?;
        let list_out = listing.then(|| Shared::new(Box::new(io::stdout())));

        let start = wall_clock();
        let n = captures.len();
        let sink = Mutex::new(LiveSink {
            logs: logs.take(),
            events_out,
            list: list_out.clone().map(Listing::new),
            list_out,
            extract: extract.take(),
            stats_every: a.stats_interval.map(|s| (s * 1e6) as u64),
            last_stats: None,
            interfaces: vec![Vec::new(); n],
            error: None,
        });
        // One thread per capture (the calling one when there is one); a worker that ends on an
        // error, or panics, stops the others.
        let sink_events = sink
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .events_out
            .clone();
        let no_payload = args.no_event_payload;
        let work = |w: usize, mut capture: LiveCapture| -> WorkerRun {
            let _stop = StopOnPanic(&stop);
            // Each worker reads the key logs' new lines for itself.
            for f in keylogs {
                capture.follow_keylog(f.fork());
            }
            let mut cfg = cfg;
            cfg.flow.uid_seed = worker_seed(cfg.flow.uid_seed, w);
            // The worker's own JSON writer (line by line into the shared output, whole lines).
            let events = sink_events.clone().map(|out| {
                let j = JsonLines::unbuffered(out);
                if no_payload {
                    j.without_payload()
                } else {
                    j
                }
            });
            let mut worker = Worker {
                sink: &sink,
                w,
                events,
                interest: Interest::ALL,
            };
            worker.interest = worker.fanout(|f| f.interest());
            let run = Analyzer::new(cfg)
                .with_keylog(keys.clone())
                .keys_may_follow(!keylogs.is_empty())
                .run_source(&mut capture, &mut worker)
                .map_err(|e| {
                    stop.store(true, Ordering::Relaxed);
                    (e.to_string(), e.into_stats())
                });
            if let Some(Err(e)) = worker.events.take().map(JsonLines::finish) {
                worker.lock().error.get_or_insert(e);
            }
            let keylog_errors = capture.keylog_errors().map(ToString::to_string).collect();
            (run, capture.interface_stats().to_vec(), keylog_errors)
        };
        let runs: Vec<WorkerRun> = if n == 1 {
            captures.into_iter().map(|c| work(0, c)).collect()
        } else {
            let work = &work;
            std::thread::scope(|s| {
                let handles: Vec<_> = captures
                    .into_iter()
                    .enumerate()
                    .map(|(w, c)| s.spawn(move || work(w, c)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        };
        let mut stats = Stats::default();
        let mut error = None;
        for (run, _, _) in &runs {
            match run {
                Ok(s) => stats.add(s),
                Err((msg, s)) => {
                    stats.add(s);
                    error.get_or_insert_with(|| msg.clone());
                }
            }
        }
        let elapsed = start.elapsed();
        let mut sink = sink.into_inner().unwrap_or_else(PoisonError::into_inner);
        let ifaces = sum_interfaces(runs.iter().map(|(_, i, _)| i.as_slice()));
        if sink.stats_every.is_some() {
            sink.capture_stats(wscope_now(), &ifaces);
        }
        sink.finish()?;
        let mut text = summary(&stats, elapsed.as_secs_f64());
        text.push_str(&kernel_summary(&ifaces));
        if n > 1 {
            text.push_str(&workers_summary(&runs));
        }
        if events_to_stdout {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
        // Every worker follows every key log: each failing one once.
        let failing: std::collections::BTreeSet<&String> =
            runs.iter().flat_map(|(_, _, k)| k).collect();
        for e in failing {
            eprintln!("wscope inspect: {e} (still at the end: its secrets since were not read)");
        }
        if let Some(err) = &error {
            eprintln!("wscope inspect: capture ended early: {err}");
            return Ok(ExitCode::from(2));
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The summary's lines about the kernel: what it received and dropped per interface.
    fn kernel_summary(ifaces: &[InterfaceStats]) -> String {
        use core::fmt::Write as _;
        let mut o = String::new();
        for i in ifaces {
            let _ = writeln!(
                o,
                "kernel       {}: {} packets received, {} dropped (buffer full), {} dropped \
                 by the interface ({:.3}% lost)",
                i.name,
                i.received,
                i.dropped,
                i.if_dropped,
                i.percent_dropped()
            );
        }
        o
    }

    /// The summary's line about the workers: how the kernel shared the traffic among them.
    fn workers_summary(runs: &[WorkerRun]) -> String {
        let share = |f: fn(&Stats) -> u64| {
            runs.iter()
                .map(|(r, _, _)| f(r.as_ref().unwrap_or_else(|(_, s)| s)).to_string())
                .collect::<Vec<_>>()
                .join(" + ")
        };
        format!(
            "workers      {}: packets {}, connections {}\n",
            runs.len(),
            share(|s| s.capture.packets),
            share(|s| s.connections)
        )
    }

    /// What one worker's run gave: its statistics (or the error that ended it, with the
    /// statistics until then) and its sockets' kernel counters.
    /// A worker's run: its statistics (or its error with them), its interfaces' counters and
    /// the followed key logs it could not read at the end.
    type WorkerRun = (
        Result<Stats, (String, Stats)>,
        Vec<InterfaceStats>,
        Vec<String>,
    );

    /// Worker `w`'s uid seed: the run's for the first worker, a different one for each other
    /// (each worker numbers its own connections, and uids are made from the seed and that
    /// number).
    fn worker_seed(seed: u64, w: usize) -> u64 {
        seed ^ (w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Sets the stop flag when the worker's thread unwinds, so the other workers end too.
    struct StopOnPanic<'a>(&'a AtomicBool);

    impl Drop for StopOnPanic<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.store(true, Ordering::Relaxed);
            }
        }
    }

    /// The kernel's counters of every worker's sockets, per interface: packets received and
    /// dropped by each socket summed; `if_dropped` (the interface's own count, which every
    /// socket reports) the largest.
    fn sum_interfaces<'a>(
        workers: impl IntoIterator<Item = &'a [InterfaceStats]>,
    ) -> Vec<InterfaceStats> {
        let mut total: Vec<InterfaceStats> = Vec::new();
        for ifaces in workers {
            if total.is_empty() {
                total = ifaces.to_vec();
                continue;
            }
            for (t, i) in total.iter_mut().zip(ifaces) {
                t.received += i.received;
                t.dropped += i.dropped;
                t.if_dropped = t.if_dropped.max(i.if_dropped);
            }
        }
        total
    }

    /// A worker's view of the shared sink: each call takes the lock, so whole events and rows
    /// go out one at a time. The JSON writer is the worker's own (made in its thread): it
    /// writes each line whole into the shared `--events` output.
    struct Worker<'a> {
        sink: &'a Mutex<LiveSink>,
        w: usize,
        events: Option<JsonLines<Shared>>,
        /// What the outputs read: other events do not take the lock.
        interest: Interest,
    }

    impl Worker<'_> {
        fn lock(&self) -> MutexGuard<'_, LiveSink> {
            self.sink.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// Runs `f` on the shared outputs with this worker's JSON writer, under the lock.
        fn fanout<R>(&mut self, f: impl FnOnce(&mut Fanout<'_>) -> R) -> R {
            let events = self.events.as_mut().map(|s| s as &mut dyn Sink);
            let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut sink.fanout(events))
        }
    }

    impl Sink for Worker<'_> {
        fn event(&mut self, ev: &Event<'_>) {
            if self.interest.wants(&ev.kind) {
                self.fanout(|f| f.event(ev));
            }
        }

        fn connection_closed(&mut self, conn: &ConnMeta) {
            self.fanout(|f| f.connection_closed(conn));
        }

        fn capture_note(&mut self, note: &CaptureNote) {
            self.fanout(|f| f.capture_note(note));
        }

        fn tick(&mut self, tick: &Tick<'_>) {
            let w = self.w;
            self.lock().tick_from(w, tick);
        }

        fn interest(&self) -> Interest {
            self.interest
        }
    }

    /// A buffered writer shared between a sink that writes and the tick that flushes it.
    #[derive(Clone)]
    struct Shared(Arc<Mutex<BufWriter<Box<dyn Write + Send>>>>);

    impl Shared {
        fn new(inner: Box<dyn Write + Send>) -> Self {
            Self(Arc::new(Mutex::new(BufWriter::with_capacity(
                64 << 10,
                inner,
            ))))
        }

        fn lock(&self) -> MutexGuard<'_, BufWriter<Box<dyn Write + Send>>> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.lock().write(buf)
        }

        fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
            self.lock().write_all(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            self.lock().flush()
        }
    }

    /// `websocket.log` and `weird.log` in a directory, rotated on demand.
    struct RotatingLogs {
        dir: PathBuf,
        style: Style,
        zeek_weirds_only: bool,
        logs: ZeekLogs<Shared>,
        files: (Shared, Shared),
        /// When the current files were opened (their rotated names say it).
        opened: Instant,
        /// Rotation interval and the next rotation time, in microseconds.
        rotate: Option<(u64, u64)>,
    }

    impl RotatingLogs {
        const NAMES: [&'static str; 2] = ["websocket", "weird"];

        fn open(args: &Args, dir: PathBuf) -> io::Result<Self> {
            let now = wscope_now();
            let rotate = args.live.rotate.map(|secs| {
                let every = secs.saturating_mul(1_000_000);
                (every, next_multiple(now.as_micros(), every))
            });
            let style = if args.json { Style::Json } else { Style::Ascii };
            let (logs, files) = Self::create(&dir, style, args.zeek_weirds_only, args.force)?;
            Ok(Self {
                dir,
                style,
                zeek_weirds_only: args.zeek_weirds_only,
                logs,
                files,
                opened: now,
                rotate,
            })
        }

        fn create(
            dir: &Path,
            style: Style,
            zeek_weirds_only: bool,
            force: bool,
        ) -> io::Result<(ZeekLogs<Shared>, (Shared, Shared))> {
            let open = |name: &str| -> io::Result<Shared> {
                let file: File = create_output(&dir.join(format!("{name}.log")), force)?;
                Ok(Shared::new(Box::new(file)))
            };
            let ws = open(Self::NAMES[0])?;
            let weird = open(Self::NAMES[1])?;
            let logs = ZeekLogs::new(ws.clone(), weird.clone(), style, zeek_weirds_only);
            Ok((logs, (ws, weird)))
        }

        fn flush(&mut self) -> io::Result<()> {
            self.files.0.flush()?;
            self.files.1.flush()
        }

        /// Rotates when `now` has reached the next rotation time.
        fn tick(&mut self, now: Instant) -> io::Result<()> {
            let Some((every, next)) = self.rotate else {
                return Ok(());
            };
            if now.as_micros() < next {
                return Ok(());
            }
            self.rotate = Some((every, next_multiple(now.as_micros(), every)));
            let (logs, files) = Self::create_temp(self)?;
            let old = core::mem::replace(&mut self.logs, logs);
            let old_files = core::mem::replace(&mut self.files, files);
            let opened = core::mem::replace(&mut self.opened, Instant::from_micros(next));
            Self::close(&self.dir, old, old_files, Some(opened))?;
            self.rename_current()
        }

        /// New files under temporary names, so the current ones can be closed and renamed
        /// first (`tail -F websocket.log` then follows the new file).
        fn create_temp(&self) -> io::Result<(ZeekLogs<Shared>, (Shared, Shared))> {
            let tmp = self.dir.join(".wscope-rotating");
            std::fs::create_dir_all(&tmp)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", tmp.display())))?;
            Self::create(&tmp, self.style, self.zeek_weirds_only, true)
        }

        /// Moves the files made by [`RotatingLogs::create_temp`] to their real names.
        fn rename_current(&self) -> io::Result<()> {
            let tmp = self.dir.join(".wscope-rotating");
            for name in Self::NAMES {
                let from = tmp.join(format!("{name}.log"));
                let to = self.dir.join(format!("{name}.log"));
                std::fs::rename(&from, &to)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", to.display())))?;
            }
            let _ = std::fs::remove_dir(&tmp);
            Ok(())
        }

        /// Finishes `logs` (the `#close` lines), then renames its files to their rotated names
        /// (`rotated`: the time they were opened) or, without rows, removes them.
        fn close(
            dir: &Path,
            logs: ZeekLogs<Shared>,
            mut files: (Shared, Shared),
            rotated: Option<Instant>,
        ) -> io::Result<()> {
            let rows = logs.rows;
            logs.finish()?;
            files.0.flush()?;
            files.1.flush()?;
            drop(files);
            for (name, rows) in Self::NAMES.into_iter().zip([rows.0, rows.1]) {
                let path = dir.join(format!("{name}.log"));
                if rows == 0 {
                    let _ = std::fs::remove_file(&path);
                } else if let Some(opened) = rotated {
                    let to = dir.join(format!("{name}.{}.log", format_date(opened.as_micros())));
                    std::fs::rename(&path, &to)
                        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", to.display())))?;
                }
            }
            Ok(())
        }

        /// Closes the logs at the end of the capture (rotated names when rotating, as Zeek
        /// rotates its logs when it terminates).
        fn finish(self) -> io::Result<()> {
            let rotated = self.rotate.map(|_| self.opened);
            Self::close(&self.dir, self.logs, self.files, rotated)
        }
    }

    /// The next multiple of `every` after `t` (microseconds since the epoch: UTC-aligned).
    fn next_multiple(t: u64, every: u64) -> u64 {
        (t / every.max(1))
            .saturating_add(1)
            .saturating_mul(every.max(1))
    }

    /// The wall clock as packet timestamps count it.
    #[allow(clippy::disallowed_methods)] // the CLI's live mode names its log files by time
    fn wscope_now() -> Instant {
        let us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        Instant::from_micros(us)
    }

    /// The outputs of a live run that the workers share, flushed (and the logs rotated) on the
    /// captures' ticks. (Each worker writes its `--events` lines itself, into `events_out`.)
    struct LiveSink {
        logs: Option<RotatingLogs>,
        events_out: Option<Shared>,
        list: Option<Listing<Shared>>,
        list_out: Option<Shared>,
        extract: Option<Extract>,
        /// `--stats-interval` in microseconds.
        stats_every: Option<u64>,
        /// When the last `capture_stats` was written, and the counters then.
        last_stats: Option<(Instant, Vec<InterfaceStats>)>,
        /// Each worker's kernel counters as of its last tick.
        interfaces: Vec<Vec<InterfaceStats>>,
        /// The first output error (the analysis goes on; reported at the end).
        error: Option<io::Error>,
    }

    impl LiveSink {
        /// The logs, a worker's `events` writer, the listing and the extraction as one sink.
        fn fanout<'a>(&'a mut self, events: Option<&'a mut dyn Sink>) -> Fanout<'a> {
            Fanout {
                extract: self.extract.as_mut(),
                sinks: [
                    self.logs.as_mut().map(|l| &mut l.logs as &mut dyn Sink),
                    events,
                    self.list.as_mut().map(|s| s as &mut dyn Sink),
                ],
            }
        }

        fn keep(&mut self, r: io::Result<()>) {
            if let Err(e) = r {
                self.error.get_or_insert(e);
            }
        }

        /// One `capture_stats` event per interface, to `--events` and the listing.
        fn capture_stats(&mut self, now: Instant, ifaces: &[InterfaceStats]) {
            let since = self.last_stats.as_ref().map(|(t, _)| *t);
            for i in ifaces {
                let mut o = serde_json::Map::new();
                o.insert("ts".into(), (now.as_micros() as f64 / 1e6).into());
                o.insert("event".into(), "capture_stats".into());
                o.insert("interface".into(), i.name.clone().into());
                if let Some(t) = since {
                    let d = now.as_micros().saturating_sub(t.as_micros());
                    o.insert("ts_delta".into(), (d as f64 / 1e6).into());
                }
                o.insert("received".into(), i.received.into());
                o.insert("dropped".into(), i.dropped.into());
                o.insert("if_dropped".into(), i.if_dropped.into());
                o.insert("percent_dropped".into(), i.percent_dropped().into());
                if let Some(out) = &mut self.events_out {
                    let r = serde_json::to_writer(&mut *out, &o)
                        .map_err(io::Error::from)
                        .and_then(|()| out.write_all(b"\n"));
                    self.keep(r);
                }
                if let Some(out) = &mut self.list_out {
                    let us = now.as_micros();
                    let r = writeln!(
                        out,
                        "{}.{:06} -                  STATS        {} received {} dropped {} \
                         if_dropped {}",
                        us / 1_000_000,
                        us % 1_000_000,
                        i.name,
                        i.received,
                        i.dropped,
                        i.if_dropped
                    );
                    self.keep(r);
                }
            }
            self.last_stats = Some((now, ifaces.to_vec()));
        }

        fn flush(&mut self) {
            for out in [&mut self.events_out, &mut self.list_out]
                .into_iter()
                .flatten()
            {
                let r = out.flush();
                if let Err(e) = r {
                    self.error.get_or_insert(e);
                }
            }
            if let Some(l) = &mut self.logs {
                let r = l.flush();
                self.keep(r);
            }
        }

        fn finish(mut self) -> io::Result<()> {
            if let Some(l) = self.logs.take() {
                l.finish()?;
            }
            if let Some(x) = self.extract.take() {
                x.finish()?;
            }
            self.flush();
            self.error.map_or(Ok(()), Err)
        }
    }

    impl LiveSink {
        /// Worker `w`'s tick: its counters are kept, the reports sum every worker's.
        fn tick_from(&mut self, w: usize, tick: &Tick<'_>) {
            if let Some(slot) = self.interfaces.get_mut(w) {
                slot.clear();
                slot.extend_from_slice(tick.interfaces);
            }
            if let Some(every) = self.stats_every {
                let due = match &self.last_stats {
                    None => true,
                    Some((t, _)) => tick.now.as_micros() >= t.as_micros().saturating_add(every),
                };
                let ifaces = sum_interfaces(self.interfaces.iter().map(Vec::as_slice));
                // The first report comes one interval after the start.
                if self.last_stats.is_none() {
                    self.last_stats = Some((tick.now, ifaces));
                } else if due {
                    self.capture_stats(tick.now, &ifaces);
                }
            }
            if let Some(l) = &mut self.logs {
                let r = l.tick(tick.now);
                self.keep(r);
            }
            self.flush();
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn workers_counters_are_summed_per_interface_but_the_interfaces_own_drops() {
            let iface = |name: &str, received, dropped, if_dropped| InterfaceStats {
                name: name.to_owned(),
                received,
                dropped,
                if_dropped,
            };
            let w0 = [iface("eth0", 100, 1, 7), iface("eth1", 10, 0, 0)];
            let w1 = [iface("eth0", 50, 2, 7), iface("eth1", 5, 3, 1)];
            assert_eq!(
                sum_interfaces([&w0[..], &w1[..]]),
                [iface("eth0", 150, 3, 7), iface("eth1", 15, 3, 1)]
            );
            assert_eq!(sum_interfaces([&w0[..]]), w0);
            assert!(sum_interfaces(core::iter::empty::<&[InterfaceStats]>()).is_empty());
            // Distinct seeds for the workers, the run's own for the first.
            assert_eq!(worker_seed(11, 0), 11);
            assert_ne!(worker_seed(11, 1), worker_seed(11, 2));
            assert_ne!(worker_seed(11, 1), 11);
        }

        #[test]
        fn rotation_times_are_multiples_of_the_interval() {
            assert_eq!(next_multiple(0, 60_000_000), 60_000_000);
            assert_eq!(next_multiple(59_999_999, 60_000_000), 60_000_000);
            assert_eq!(next_multiple(60_000_000, 60_000_000), 120_000_000);
            assert_eq!(next_multiple(u64::MAX, 60_000_000), u64::MAX);
        }
    }
}
