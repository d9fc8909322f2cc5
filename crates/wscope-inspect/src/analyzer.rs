//! The analyzer: capture → TCP connections → [`Session`]s → events in a [`Sink`].
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
use crate::session::{Session, SessionConfig, TcpNote};
use crate::sink::{CaptureNote, Sink};
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
    /// Connections that upgraded to WebSocket.
    pub sessions: u64,
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
    /// Counts one event.
    pub fn count(&mut self, ev: &Event<'_>) {
        match &ev.kind {
            EventKind::Established(..) => self.sessions += 1,
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

    /// Total messages.
    pub fn message_count(&self) -> u64 {
        self.messages.values().sum()
    }
}

/// Runs captures through the whole pipeline (see the [module docs](self)).
#[derive(Clone, Debug, Default)]
pub struct Analyzer {
    cfg: AnalyzerConfig,
    /// TLS secrets (`--keylog`); pcapng Decryption Secrets Blocks add to them during a run.
    keys: KeyLog,
}

/// The per-connection state kept in the flow table: the session, and the TLS layer in front
/// of it (see [`crate::tls`]).
#[derive(Debug, Default)]
pub struct Slot(Option<Box<Session>>, TlsSlot);

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
}

impl<S: Sink + ?Sized> Sink for Counting<'_, S> {
    fn event(&mut self, ev: &Event<'_>) {
        self.stats.count(ev);
        self.sink.event(ev);
    }
}

impl<S: Sink + ?Sized> ConnectionHandler for Handler<'_, S> {
    type State = Slot;

    fn secrets(&mut self, keylog: &[u8]) {
        self.tls.add_secrets(keylog);
    }

    fn on_event(&mut self, state: &mut Slot, conn: &ConnMeta, event: ConnectionEvent<'_>) {
        let mut out = Counting {
            stats: &mut self.stats,
            sink: &mut *self.sink,
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
            ConnectionEvent::Data { dir, ts, bytes } => {
                out.stats.last_ts = Some(ts);
                // Cleartext straight to the session, TLS through decryption (crate::tls).
                let (s, t) = (&mut state.0, &mut state.1);
                self.tls
                    .data(t, s, self.cfg, conn, ts, dir, bytes, &mut out);
            }
            ConnectionEvent::Gap { dir, ts, len } => {
                let (s, t) = (&mut state.0, &mut state.1);
                self.tls.gap(t, s, self.cfg, conn, ts, dir, len, &mut out);
            }
            ConnectionEvent::Eof { dir, ts } => {
                if let Some(s) = state.0.as_mut() {
                    s.eof(conn, ts, dir, &mut out);
                }
            }
            ConnectionEvent::Limit { dir, ts, limit } => {
                if let Some(s) = state.0.as_mut() {
                    s.tcp_note(conn, ts, dir, TcpNote::Limit(limit), &mut out);
                }
            }
            ConnectionEvent::Anomaly { dir, ts, anomaly } => {
                if let Some(s) = state.0.as_mut() {
                    s.tcp_note(conn, ts, dir, TcpNote::Anomaly(anomaly), &mut out);
                }
            }
            ConnectionEvent::Closed { ts, .. } => {
                out.stats.last_ts = Some(out.stats.last_ts.map_or(ts, |t| t.max(ts)));
                // A TLS connection whose handshake never completed is still reported.
                TlsLayer::closed(&mut state.1, conn, ts, &mut out);
                *state = Slot::default();
                out.sink.connection_closed(conn);
            }
        }
    }
}

impl Analyzer {
    /// An analyzer with these settings.
    pub fn new(cfg: AnalyzerConfig) -> Self {
        Self {
            cfg,
            keys: KeyLog::new(),
        }
    }

    /// Decrypts TLS connections (`wss://`) whose secrets are in `keys` (see [`crate::tls`]).
    /// Secrets in pcapng Decryption Secrets Blocks are used without this.
    #[must_use]
    pub fn with_keylog(mut self, keys: KeyLog) -> Self {
        self.keys = keys;
        self
    }

    /// The settings.
    pub const fn config(&self) -> &AnalyzerConfig {
        &self.cfg
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
        let mut h = Handler {
            cfg: self.cfg.session,
            sink,
            stats: Stats::default(),
            tls: TlsLayer::new(self.keys.clone()),
        };
        let summary = crate::reassemble(capture, self.cfg.flow, &mut h);
        let notes = [
            (
                "unsupported_link_type",
                summary.decode.unsupported_link,
                "packets skipped: link layer not decoded (Ethernet, raw IPv4/IPv6, Linux \
                 cooked v1/v2 and BSD loopback are)",
            ),
            (
                "undeclared_interface",
                summary.capture.unknown_interface,
                "pcapng packets skipped: their interface was never described",
            ),
        ];
        for (name, count, what) in notes {
            if count > 0 {
                h.sink.capture_note(&CaptureNote {
                    ts: h.stats.last_ts,
                    name,
                    count,
                    detail: format!("{count} {what}"),
                });
            }
        }
        let mut stats = h.stats;
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
