//! The analyzer: capture → TCP connections → [`Session`](crate::session::Session)s (one per
//! connection, or one per WebSocket stream of an HTTP/2 connection, [`crate::http2`]) → events
//! in a [`Sink`].
//!
//! ```no_run
//! use wscope_inspect::analyzer::{Analyzer, AnalyzerConfig};
//! use wscope_inspect::capture::Capture;
//! use wscope_inspect::event::{Event, EventKind};
//!
//! let mut capture = Capture::from_paths(["trace.pcap"]);
//! let mut messages = 0;
//! let run = Analyzer::new(AnalyzerConfig::default()).run(&mut capture, &mut |ev: &Event<'_>| {
//!     if let EventKind::Message { .. } = ev.kind {
//!         messages += 1;
//!     }
//! });
//! match run {
//!     Ok(stats) => println!("{} sessions, {messages} messages", stats.sessions),
//!     // "trace.pcap: the file does not exist", "trace.pcap: capture truncated at byte 1234"
//!     Err(e) => eprintln!("{e} ({} packets analysed before)", e.stats().capture.packets),
//! }
//! ```

use core::fmt;
use std::collections::BTreeMap;

use wscope_proto::time::Instant;

use crate::capture::{Capture, CaptureError, CaptureErrorKind, CaptureStats};
use crate::decode::DecodeStats;
use crate::event::{Event, EventKind};
use crate::http2::App;
use crate::log::ZeekOutput;
use crate::parallel::{LocalOutput, LocalWriter, WithLocal};
use crate::session::{SessionConfig, TcpNote};
use crate::sink::{CaptureNote, Sink};
use crate::source::PacketSource;
use crate::tcp::{ConnMeta, ConnectionEvent, ConnectionHandler, FlowConfig, FlowStats};
use crate::tls::keylog::KeyLog;
use crate::tls::{TlsLayer, TlsSlot, TlsStats};

/// Settings of an [`Analyzer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnalyzerConfig {
    /// Flow table and reassembly limits.
    pub flow: FlowConfig,
    /// Per-connection analysis.
    pub session: SessionConfig,
}

/// What a run found. Deterministic for a given capture and configuration.
#[derive(Debug, Default)]
pub struct Stats {
    /// Capture counters (packets, bytes).
    pub capture: CaptureStats,
    /// Decoding counters.
    pub decode: DecodeStats,
    /// Flow and reassembly counters.
    pub flows: FlowStats,
    /// TCP connections seen.
    pub connections: u64,
    /// Connections seen mid-stream.
    pub mid_stream: u64,
    /// Connections that upgraded to WebSocket (with a `101` the client accepts).
    pub sessions: u64,
    /// `101` responses the client must reject ([`Upgrade::accepted`]): reported as
    /// `established` events and `websocket.log` rows, as Zeek does, but not sessions; nothing
    /// that follows on such a connection is counted (frames, messages, closes), its anomalies
    /// are.
    ///
    /// [`Upgrade::accepted`]: crate::event::Upgrade::accepted
    pub rejected_upgrades: u64,
    /// Frames.
    pub frames: u64,
    /// Frame payload bytes (as on the wire).
    pub payload_bytes: u64,
    /// Application bytes of messages (inflated when compressed).
    pub message_bytes: u64,
    /// Messages per opcode (the first frame's).
    pub messages: BTreeMap<u8, u64>,
    /// Close frames per status (0: no status).
    pub closes: BTreeMap<u16, u64>,
    /// Anomalies per name.
    pub anomalies: BTreeMap<&'static str, u64>,
    /// TLS connections: decrypted, undecrypted (by SNI), ALPN `h2`.
    pub tls: TlsStats,
    /// Time of the first and last packet of a connection event.
    pub first_ts: Option<Instant>,
    /// See `first_ts`.
    pub last_ts: Option<Instant>,
}

/// Why [`Analyzer::run`] stopped before the end of its capture: a source that could not be
/// opened or read, that is not a capture, or that is cut or malformed. Everything before the
/// failing byte was analysed and every connection was closed; [`Error::stats`] holds what the
/// run found up to there. `Display` names the source and the problem
/// (`trace.pcap: the file does not exist`).
#[derive(Debug)]
pub struct Error {
    capture: CaptureError,
    stats: Box<Stats>,
}

impl Error {
    /// The capture error: its kind, source name and byte offset.
    pub const fn capture_error(&self) -> &CaptureError {
        &self.capture
    }

    /// What went wrong (shorthand for `capture_error().kind()`).
    pub const fn kind(&self) -> CaptureErrorKind {
        self.capture.kind()
    }

    /// What the run found before the error.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The statistics of the run before the error, by value.
    pub fn into_stats(self) -> Stats {
        *self.stats
    }
}

impl Stats {
    /// Counts `ev` of a connection whose `101` the client rejects when `rejected` (then only
    /// the upgrade and anomalies count); an `Established` event sets `rejected`.
    pub(crate) fn count_in_connection(&mut self, ev: &Event<'_>, rejected: &mut bool) {
        if ev.conn.stream_id.is_some() {
            // A WebSocket over HTTP/2: a rejected stream feeds no session (see `http2`).
            self.count(ev);
            return;
        }
        match &ev.kind {
            EventKind::Established(up, _) => {
                *rejected = !up.accepted();
                self.count(ev);
            }
            EventKind::Anomaly { .. } => self.count(ev),
            _ if *rejected => {}
            _ => self.count(ev),
        }
    }

    /// Counts one event.
    pub fn count(&mut self, ev: &Event<'_>) {
        match &ev.kind {
            EventKind::Established(up, _) if up.accepted() => self.sessions += 1,
            EventKind::Established(..) => self.rejected_upgrades += 1,
            EventKind::Tls(info) => self.tls.count(info),
            EventKind::Frame { header, .. } => {
                self.frames += 1;
                self.payload_bytes = self.payload_bytes.saturating_add(header.payload_len);
            }
            EventKind::Message { opcode, len, .. } => {
                *self.messages.entry(opcode.0).or_default() += 1;
                self.message_bytes = self.message_bytes.saturating_add(*len);
            }
            EventKind::Close { status, .. } => *self.closes.entry(*status).or_default() += 1,
            EventKind::Anomaly { name, .. } => *self.anomalies.entry(name).or_default() += 1,
            _ => {}
        }
    }

    /// Adds the statistics of another run over another share of the traffic (a live capture's
    /// worker: `live::LiveCapture::open_shares`, feature `live`): every counter summed (the
    /// flow table's peaks become upper bounds), the first and last times the earliest and
    /// latest.
    pub fn add(&mut self, o: &Self) {
        self.capture.add(&o.capture);
        self.decode.add(&o.decode);
        self.flows.add(&o.flows);
        self.connections += o.connections;
        self.mid_stream += o.mid_stream;
        self.add_worker_counts(o);
        self.tls.add(&o.tls);
        self.first_ts = match (self.first_ts, o.first_ts) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_ts = self.last_ts.max(o.last_ts);
    }

    /// Adds the per-connection counts a worker of a parallel run made (everything but the
    /// connections, times and TLS counters, which the merging thread counts), and what its
    /// TLS layer says about the key log lines of the run.
    pub(crate) fn add_worker_counts(&mut self, o: &Self) {
        self.sessions += o.sessions;
        self.rejected_upgrades += o.rejected_upgrades;
        self.frames += o.frames;
        self.payload_bytes = self.payload_bytes.saturating_add(o.payload_bytes);
        self.message_bytes = self.message_bytes.saturating_add(o.message_bytes);
        for (k, v) in &o.messages {
            *self.messages.entry(*k).or_default() += v;
        }
        for (k, v) in &o.closes {
            *self.closes.entry(*k).or_default() += v;
        }
        for (k, v) in &o.anomalies {
            *self.anomalies.entry(k).or_default() += v;
        }
        self.tls.add_key_log(&o.tls);
    }

    /// Total messages.
    pub fn message_count(&self) -> u64 {
        self.messages.values().sum()
    }
}

/// Runs captures through the whole pipeline (see the [module docs](self)), in the calling
/// thread or, with [`Analyzer::workers`], over worker threads with the same output.
#[derive(Clone, Debug, Default)]
pub struct Analyzer {
    cfg: AnalyzerConfig,
    workers: usize,
    /// TLS secrets (`--keylog`); pcapng Decryption Secrets Blocks add to them during a run.
    keys: KeyLog,
    /// The source's secrets may come after the connections that need them
    /// ([`Analyzer::keys_may_follow`]).
    follow_keys: bool,
    /// The nominal chunk length of a parallel run over pcap and pcapng files instead of the
    /// one the capture's read buffer gives (fuzzing: many chunks out of a small file).
    chunk_len: Option<u64>,
}

/// The per-connection state kept in the flow table: the session, and the TLS layer in front
/// of it (see [`crate::tls`]).
#[derive(Debug, Default)]
pub struct Slot(App, TlsSlot);

impl Slot {
    /// Whether the connection's `101` is one the client rejects (then only the upgrade and
    /// anomalies are counted).
    pub(crate) fn rejected(&self) -> bool {
        self.0.rejected()
    }

    /// The connection ended: a TLS connection whose handshake never completed is reported
    /// (`tls_undecrypted`), its session, if it had one, reports how it ended
    /// (`connection_end`), and the slot is emptied.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn closed<S: Sink + ?Sized>(
        &mut self,
        tls: &TlsLayer,
        cfg: SessionConfig,
        conn: &ConnMeta,
        ts: Instant,
        reason: crate::tcp::CloseReason,
        out: &mut S,
    ) {
        tls.closed(&mut self.1, &mut self.0, cfg, conn, ts, out);
        self.0.end(conn, ts, reason, out);
        *self = Self::default();
    }
}

struct Handler<'s, S: ?Sized> {
    cfg: SessionConfig,
    sink: &'s mut S,
    stats: Stats,
    tls: TlsLayer,
}

/// Counts events on their way to the user's sink.
struct Counting<'a, S: ?Sized> {
    stats: &'a mut Stats,
    sink: &'a mut S,
    /// The connection's `101` is one the client rejects: only the upgrade and anomalies count.
    rejected: bool,
}

impl<S: Sink + ?Sized> Sink for Counting<'_, S> {
    fn event(&mut self, ev: &Event<'_>) {
        self.stats.count_in_connection(ev, &mut self.rejected);
        self.sink.event(ev);
    }

    fn connection_closed(&mut self, conn: &ConnMeta) {
        self.sink.connection_closed(conn);
    }
}

impl<S: Sink + ?Sized> ConnectionHandler for Handler<'_, S> {
    type State = Slot;

    fn secrets(&mut self, keylog: &[u8]) {
        self.tls.add_secrets(keylog);
    }

    fn waiting(&mut self, into: &mut Vec<crate::decode::FlowKey>) {
        into.extend(self.tls.waiting());
    }

    fn revisit(&mut self, state: &mut Slot, conn: &ConnMeta, now: Instant) {
        let mut out = Counting {
            stats: &mut self.stats,
            sink: &mut *self.sink,
            rejected: state.0.rejected(),
        };
        self.tls
            .revisit(&mut state.1, &mut state.0, self.cfg, conn, now, &mut out);
    }

    fn on_event(&mut self, state: &mut Slot, conn: &ConnMeta, event: ConnectionEvent<'_>) {
        let mut out = Counting {
            stats: &mut self.stats,
            sink: &mut *self.sink,
            rejected: state.0.rejected(),
        };
        match event {
            ConnectionEvent::Open { ts, mid_stream, .. } => {
                out.stats.connections += 1;
                if mid_stream {
                    out.stats.mid_stream += 1;
                }
                out.stats.first_ts.get_or_insert(ts);
                // The session is made with the first payload: SYN-only flows (scans) cost
                // nothing but their flow table entry.
                *state = Slot::default();
            }
            ConnectionEvent::Data { ts, .. } => {
                out.stats.last_ts = Some(ts);
                session_event(self.cfg, &self.tls, state, conn, event, &mut out);
            }
            ConnectionEvent::Closed { ts, reason } => {
                out.stats.last_ts = Some(out.stats.last_ts.map_or(ts, |t| t.max(ts)));
                state.closed(&self.tls, self.cfg, conn, ts, reason, &mut out);
                out.sink.connection_closed(conn);
            }
            _ => session_event(self.cfg, &self.tls, state, conn, event, &mut out),
        }
    }
}

/// Hands a connection's `Data`, `Gap`, `Eof`, `Limit` and `Anomaly` events to its session
/// (made with the first data or gap), through `tls`'s decryption when the connection is a TLS
/// one; `Open` and `Closed` are the caller's.
pub(crate) fn session_event<S: Sink + ?Sized>(
    cfg: SessionConfig,
    tls: &TlsLayer,
    state: &mut Slot,
    conn: &ConnMeta,
    event: ConnectionEvent<'_>,
    out: &mut S,
) {
    match event {
        ConnectionEvent::Data { dir, ts, bytes } => {
            tls.data(&mut state.1, &mut state.0, cfg, conn, ts, dir, bytes, out);
        }
        ConnectionEvent::Gap { dir, ts, len } => {
            tls.gap(&mut state.1, &mut state.0, cfg, conn, ts, dir, len, out);
        }
        ConnectionEvent::Eof { dir, ts } => {
            tls.eof(&mut state.1, &mut state.0, cfg, conn, ts, dir, out);
        }
        ConnectionEvent::Limit { dir, ts, limit } => {
            let note = TcpNote::Limit(limit);
            tls.tcp_note(&mut state.1, &mut state.0, cfg, conn, ts, dir, note, out);
        }
        ConnectionEvent::Anomaly { dir, ts, anomaly } => {
            let note = TcpNote::Anomaly(anomaly);
            tls.tcp_note(&mut state.1, &mut state.0, cfg, conn, ts, dir, note, out);
        }
        ConnectionEvent::Open { .. } | ConnectionEvent::Closed { .. } => {}
    }
}

impl Analyzer {
    /// An analyzer with these settings.
    pub fn new(cfg: AnalyzerConfig) -> Self {
        Self {
            cfg,
            workers: 1,
            keys: KeyLog::new(),
            follow_keys: false,
            chunk_len: None,
        }
    }

    /// Parallel runs over pcap and pcapng files cut them into chunks of `len` bytes instead of
    /// a quarter or half of the capture's read buffer (fuzzing: many chunks from a small file).
    pub(crate) const fn with_chunk_len(mut self, len: u64) -> Self {
        self.chunk_len = Some(len);
        self
    }

    /// The chunk length set by [`Analyzer::with_chunk_len`].
    pub(crate) const fn chunk_len(&self) -> Option<u64> {
        self.chunk_len
    }

    /// Decrypts TLS connections (`wss://`) whose secrets are in `keys` (see [`crate::tls`]).
    /// Secrets in pcapng Decryption Secrets Blocks are used without this.
    #[must_use]
    pub fn with_keylog(mut self, keys: KeyLog) -> Self {
        self.keys = keys;
        self
    }

    /// Whether the source's secrets ([`PacketSource::take_secrets`]) may come after the
    /// ServerHello that needs them: a live capture following a key log that a browser is
    /// still writing (`live::LiveCapture::follow_keylog`, feature `live`). Then such a connection
    /// waits for its secrets and is decrypted from the start when they come (see
    /// [`TlsLayer::keys_may_follow`]). A capture file's Decryption Secrets Block after the
    /// ServerHello it serves is waited for the same way. Off by default (a key log given
    /// with [`Analyzer::with_keylog`] is complete); on, a file is analysed in one thread.
    #[must_use]
    pub const fn keys_may_follow(mut self, follow: bool) -> Self {
        self.follow_keys = follow;
        self
    }

    /// The TLS layer of a run (or of one worker).
    fn tls_layer(&self) -> TlsLayer {
        TlsLayer::new(self.keys.clone()).keys_may_follow(self.follow_keys)
    }

    /// Analyses with `n` worker threads (connections sharded by their address pair; see
    /// [`crate::parallel`]); 0 and 1 mean the calling thread alone. The events, their order
    /// and the statistics are the same for every `n`, except where a flow table limit is hit
    /// ([`FlowConfig::max_flows`], [`FlowConfig::max_buffered_total`]), which applies to each
    /// shard's table (one shard per worker, or [`crate::parallel::SHARDS_PER_WORKER`] when the
    /// workers render output).
    #[must_use]
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = if n == 0 { 1 } else { n };
        self
    }

    /// The number of worker threads ([`Analyzer::workers`]); one with
    /// [`Analyzer::keys_may_follow`], whose connections are revisited as secrets come in the
    /// one thread's order.
    pub const fn worker_count(&self) -> usize {
        if self.workers == 0 || self.follow_keys {
            1
        } else {
            self.workers
        }
    }

    /// The settings.
    pub const fn config(&self) -> &AnalyzerConfig {
        &self.cfg
    }

    /// The TLS secrets given with [`Analyzer::with_keylog`].
    pub(crate) const fn keys(&self) -> &KeyLog {
        &self.keys
    }

    /// Analyses a whole capture (all its sources), delivering events to `sink`.
    ///
    /// # Errors
    ///
    /// A source that cannot be opened or read, is empty, is not a pcap/pcapng capture, or is
    /// cut or malformed ends the run early: everything before it is analysed, every
    /// connection is closed (so the sink saw complete sessions), and the [`Error`] carries the
    /// statistics up to there.
    pub fn run<S: Sink + ?Sized>(
        &self,
        capture: &mut Capture,
        sink: &mut S,
    ) -> Result<Stats, Error> {
        self.run_with_local(capture, sink, None, true)
    }

    /// Analyses everything a [`PacketSource`] gives until it ends: a file capture as
    /// [`Analyzer::run`] does, or a live capture until it is stopped. On each tick of a live
    /// source, connections idle since before [`Tick::settled`](crate::source::Tick) are
    /// expired and the sink's [`Sink::tick`] is called (at least once a second).
    ///
    /// # Errors
    ///
    /// As [`Analyzer::run`]: a source that fails ends the run, with every connection closed.
    pub fn run_source<P: PacketSource + ?Sized, S: Sink + ?Sized>(
        &self,
        capture: &mut P,
        sink: &mut S,
    ) -> Result<Stats, Error> {
        let mut h = Handler {
            cfg: self.cfg.session,
            sink,
            stats: Stats::default(),
            tls: self.tls_layer(),
        };
        let summary = crate::reassemble_source(
            capture,
            self.cfg.flow,
            &mut h,
            &mut |h: &mut Handler<'_, S>, tick| h.sink.tick(tick),
        );
        h.stats.tls.note_key_log(&h.tls);
        let stats = h.stats;
        Self::finish(stats, summary, sink, None, None)
    }

    /// [`Analyzer::run`] with a second output rendered by the workers themselves (see
    /// [`LocalOutput`]); with one worker, its sink runs next to `sink`. With `payload` false,
    /// `sink` gets the `FrameData` and `MessageData` events with empty `data` (for sinks that
    /// never look at it, such as [`crate::log::ZeekLogs`]: less to copy between threads).
    ///
    /// # Errors
    ///
    /// As [`Analyzer::run`]. An error writing to [`LocalOutput::out`] is kept in
    /// [`LocalOutput::error`].
    pub fn run_with_local<S: Sink + ?Sized>(
        &self,
        capture: &mut Capture,
        sink: &mut S,
        local: Option<&mut LocalOutput<'_>>,
        payload: bool,
    ) -> Result<Stats, Error> {
        self.run_with_outputs(capture, sink, local, None, payload)
    }

    /// [`Analyzer::run_with_local`] with Zeek logs (`logs`, [`ZeekOutput`]) whose rows the
    /// workers render, each for its own connections, and the calling thread only writes in
    /// order: the logs are the same as when `logs` is one more sink next to `sink` (which is
    /// what the one-worker path does), while the calling thread, which merges, has less to
    /// do. `sink` should then not hold the same logs.
    ///
    /// # Errors
    ///
    /// As [`Analyzer::run_with_local`]. An error writing the logs is kept by them.
    pub fn run_with_outputs<S: Sink + ?Sized>(
        &self,
        capture: &mut Capture,
        sink: &mut S,
        mut local: Option<&mut LocalOutput<'_>>,
        mut logs: Option<&mut dyn ZeekOutput>,
        payload: bool,
    ) -> Result<Stats, Error> {
        if self.worker_count() > 1 {
            let (stats, summary) = crate::parallel::run(
                self,
                capture,
                &mut *sink,
                local.as_deref_mut(),
                reborrow(&mut logs),
                payload,
            );
            return Self::finish(stats, summary, sink, local, logs);
        }
        match logs {
            // One thread: the logs are one more sink.
            Some(logs) => {
                let mut both = Both(&mut *sink, logs);
                let (stats, summary) = self.run_one(capture, &mut both, local.as_deref_mut());
                Self::finish(stats, summary, &mut both, local, None)
            }
            None => {
                let (stats, summary) = self.run_one(capture, &mut *sink, local.as_deref_mut());
                Self::finish(stats, summary, sink, local, None)
            }
        }
    }

    /// The one-thread path of [`Analyzer::run_with_local`].
    fn run_one<S: Sink + ?Sized>(
        &self,
        capture: &mut Capture,
        sink: &mut S,
        local: Option<&mut LocalOutput<'_>>,
    ) -> (Stats, crate::Summary) {
        if let Some(out) = local {
            let buf = LocalWriter::default();
            let mut both = WithLocal {
                main: &mut *sink,
                local: (out.make)(buf.clone()),
                buf,
                out,
            };
            let mut h = Handler {
                cfg: self.cfg.session,
                sink: &mut both,
                stats: Stats::default(),
                tls: self.tls_layer(),
            };
            let summary = crate::parallel::reassemble_ticked(capture, self.cfg.flow, &mut h);
            h.stats.tls.note_key_log(&h.tls);
            let stats = h.stats;
            both.drain(true);
            (stats, summary)
        } else {
            let mut h = Handler {
                cfg: self.cfg.session,
                sink: &mut *sink,
                stats: Stats::default(),
                tls: self.tls_layer(),
            };
            let summary = crate::parallel::reassemble_ticked(capture, self.cfg.flow, &mut h);
            h.stats.tls.note_key_log(&h.tls);
            (h.stats, summary)
        }
    }

    /// The capture notes and counters of a finished run: its statistics, or the error that
    /// ended it with them.
    fn finish<S: Sink + ?Sized>(
        mut stats: Stats,
        summary: crate::Summary,
        sink: &mut S,
        mut local: Option<&mut LocalOutput<'_>>,
        mut logs: Option<&mut dyn ZeekOutput>,
    ) -> Result<Stats, Error> {
        let keylog = stats
            .tls
            .keylog_problem
            .map_or_else(String::new, |p| format!(" (the first: {p})"));
        let notes = [
            (
                "unsupported_link_type",
                summary.decode.unsupported_link,
                "packets skipped: link layer not decoded (Ethernet, raw IPv4/IPv6, Linux \
                 cooked v1/v2 and BSD loopback are)",
                "",
            ),
            (
                "undeclared_interface",
                summary.capture.unknown_interface,
                "pcapng packets skipped: their interface was never described",
                "",
            ),
            (
                "keylog_malformed",
                stats.tls.keylog_malformed,
                "key log lines that came during the capture (pcapng Decryption Secrets Blocks, \
                 lines a followed key log gained) were malformed and skipped",
                &keylog,
            ),
        ];
        for (name, count, what, more) in notes {
            if count > 0 {
                let note = CaptureNote {
                    ts: stats.last_ts,
                    name,
                    count,
                    detail: format!("{count} {what}{more}"),
                };
                sink.capture_note(&note);
                if let Some(l) = logs.as_deref_mut() {
                    l.capture_note(&note);
                }
                if let Some(l) = local.as_deref_mut() {
                    l.capture_note(&note);
                }
            }
        }
        stats.capture = summary.capture;
        stats.decode = summary.decode;
        stats.flows = summary.flows;
        match summary.error {
            None => Ok(stats),
            Some(capture) => Err(Error {
                capture,
                stats: Box::new(stats),
            }),
        }
    }
}

/// The logs of `logs`, for a shorter time.
fn reborrow<'a>(logs: &'a mut Option<&mut dyn ZeekOutput>) -> Option<&'a mut dyn ZeekOutput> {
    match logs {
        Some(l) => Some(&mut **l),
        None => None,
    }
}

/// Two sinks, each given every call in turn.
struct Both<'a, 'b, S: ?Sized>(&'a mut S, &'b mut dyn ZeekOutput);

impl<S: Sink + ?Sized> Sink for Both<'_, '_, S> {
    fn event(&mut self, ev: &Event<'_>) {
        self.0.event(ev);
        self.1.event(ev);
    }

    fn connection_closed(&mut self, conn: &ConnMeta) {
        self.0.connection_closed(conn);
        self.1.connection_closed(conn);
    }

    fn capture_note(&mut self, note: &CaptureNote) {
        self.0.capture_note(note);
        self.1.capture_note(note);
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.capture.fmt(f)
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.capture)
    }
}
