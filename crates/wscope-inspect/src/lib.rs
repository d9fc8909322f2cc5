//! # wscope-inspect: passive WebSocket analysis of packet captures
//!
//! This crate turns packet captures into WebSocket events and logs: a Zeek-style analyzer
//! (`websocket.log`, `weird.log`, JSON Lines events) with a Net::Inspect-style streaming view
//! ([`sink::WsInspect`]). Everything about the WebSocket protocol itself (handshake checks,
//! frames, messages, anomalies) lives in `wscope-proto` (re-exported as [`wscope_proto`]);
//! this crate adds what is about captures: packets, TCP connections, reassembly, timestamps,
//! uids and output. It reads no clock: time comes from the packets, and the same capture with
//! the same uid seed ([`tcp::FlowConfig::uid_seed`]) always gives the same output.
//!
//! ```text
//!   pcap / pcapng files, stdin
//!        │  capture      streaming reader (constant memory), link type and timestamp per packet
//!        ▼
//!   Packet { ts, link, data }
//!        │  decode       link → IPv4/IPv6 → TCP, borrowed views, non-TCP counted and skipped
//!        ▼
//!   Segment { ts, src, dst, seq, ack, flags, payload }
//!        │  tcp::flow    connections by address pair, originator, timeouts, caps, uids
//!        │  tcp::reassembly  per direction: in order, out of order, overlaps, gaps, FIN/RST
//!        ▼
//!   ConnectionEvent { Open, Data, Gap, Eof, Closed, Limit, Anomaly }   (per connection)
//!        │  session      one connection → wscope_proto::observe::Observer (which inflates), chunking, digests
//!        ▼
//!   Event { ts, conn, dir, kind }   → a Sink: log::ZeekLogs (websocket.log, weird.log),
//!                                     log::json::JsonLines, sink::InspectAdapter, closures
//! ```
//!
//! In-order payload travels from the capture buffer to the handler without a copy; only bytes
//! that arrive ahead of a hole are copied (and capped). Flows, buffers and timeouts are bounded
//! ([`tcp::FlowConfig`]).
//!
//! ## Example
//!
//! ```no_run
//! use wscope_inspect::analyzer::{Analyzer, AnalyzerConfig};
//! use wscope_inspect::capture::Capture;
//! use wscope_inspect::event::{Event, EventKind};
//! use wscope_inspect::wscope_proto::role::Direction;
//!
//! let mut capture = Capture::from_paths(["trace.pcap"]);
//! let mut client_messages = 0u64;
//! let run = Analyzer::new(AnalyzerConfig::default()).run(&mut capture, &mut |ev: &Event<'_>| {
//!     if let EventKind::Message { .. } = ev.kind {
//!         if ev.dir == Direction::ClientToServer {
//!             client_messages += 1;
//!         }
//!     }
//! });
//! match run {
//!     Ok(stats) => println!("{} sessions, {client_messages} client messages", stats.sessions),
//!     Err(e) => eprintln!("{e}"), // e.g. "trace.pcap: the file does not exist"
//! }
//! ```
//!
//! ## Modules
//!
//! - [`analyzer`]: the whole pipeline ([`Analyzer`]), its settings and [`Stats`].
//! - [`parallel`]: the same pipeline over worker threads, with the same output.
//! - [`capture`]: pcap/pcapng input, several files per run, stdin.
//! - [`source`]: what the analyzer reads packets from ([`source::PacketSource`]): a file
//!   capture, or (feature `live`) `live::LiveCapture` on network interfaces.
//! - [`decode`]: link, IP and TCP headers → [`decode::Segment`].
//! - [`tcp`]: the flow table ([`tcp::FlowTable`]), reassembly, the [`tcp::ConnectionHandler`]
//!   trait and its events ([`reassemble`] runs a capture through them).
//! - [`session`]: one TCP connection → WebSocket events.
//! - [`event`]: the events ([`Event`], [`EventKind`]).
//! - [`tls`]: `wss://` decryption (TLS 1.2/1.3) from key logs, in front of the session.
//! - [`http2`]: WebSocket over HTTP/2 (RFC 8441): frames, HPACK, streams, one session per
//!   WebSocket stream, in front of the session (h2c by its preface, or TLS with ALPN `h2`).
//! - [`sink`]: where events go ([`Sink`]) and the Net::Inspect-style callbacks.
//! - [`log`]: Zeek `websocket.log`/`weird.log` and JSON Lines writers.
//! - [`uid`]: connection ids and Zeek-style uids.
#![allow(
    clippy::exhaustive_structs,
    clippy::exhaustive_enums,
    reason = "the analyzer's public types are not yet reviewed for `#[non_exhaustive]` (other work is changing them); the core, the endpoints and the C API enforce the lint"
)]

pub use wscope_proto;

pub mod capture;
pub mod decode;
mod defrag;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "live")]
pub mod live;
pub mod source;
pub mod tcp;
pub mod uid;

use capture::{Capture, CaptureError, CaptureStats};
use decode::{DecodeStats, Decoder};
use source::{Next, PacketSource};
use tcp::{ConnectionHandler, FlowConfig, FlowStats, FlowTable};

/// What a [`reassemble`] run did.
#[derive(Debug)]
pub struct Summary {
    /// Capture counters.
    pub capture: CaptureStats,
    /// Decoding counters.
    pub decode: DecodeStats,
    /// Flow and reassembly counters.
    pub flows: FlowStats,
    /// The error that ended the capture early, if any (everything before it was analysed and
    /// all connections were closed).
    pub error: Option<CaptureError>,
}

/// Runs capture → decode → flow table over a whole [`Capture`], then closes every connection
/// still open ([`tcp::CloseReason::CaptureEnd`]).
///
/// A read error ends the run early but still closes the connections; it is returned in
/// [`Summary::error`].
pub fn reassemble<H: ConnectionHandler>(
    capture: &mut Capture,
    cfg: FlowConfig,
    handler: &mut H,
) -> Summary {
    reassemble_source(capture, cfg, handler, &mut |_, _| {})
}

/// [`reassemble`] over any [`PacketSource`]: on each [`source::Tick`] of a live source the
/// table expires connections idle since before [`source::Tick::settled`], then `on_tick` is
/// called with the handler.
pub fn reassemble_source<P, H, T>(
    capture: &mut P,
    cfg: FlowConfig,
    handler: &mut H,
    on_tick: &mut T,
) -> Summary
where
    P: PacketSource + ?Sized,
    H: ConnectionHandler,
    T: FnMut(&mut H, &source::Tick<'_>) + ?Sized,
{
    let mut decoder = Decoder::new();
    let mut table: FlowTable<H::State> = FlowTable::new(cfg);
    let mut waiting = Vec::new();
    let mut revisit = |table: &mut FlowTable<H::State>, handler: &mut H| {
        handler.waiting(&mut waiting);
        if !waiting.is_empty() {
            table.revisit(&waiting, handler);
            waiting.clear();
        }
    };
    // Key logs of pcapng Decryption Secrets Blocks read with the previous packet (the block
    // comes before the connections it serves), or lines a live source's followed key log
    // gained; whether there were any.
    let secrets = |capture: &mut P, handler: &mut H| {
        let mut any = false;
        while let Some(text) = capture.take_secrets() {
            handler.secrets(&text);
            any = true;
        }
        any
    };
    let error = loop {
        // Connections waiting for their secrets are revisited when secrets come.
        if secrets(capture, handler) {
            revisit(&mut table, handler);
        }
        match capture.next() {
            Ok(Next::Packet(pkt)) => {
                if let Some(seg) = decoder.decode(&pkt) {
                    table.handle_segment(&seg, handler);
                }
            }
            Ok(Next::Tick(tick)) => {
                table.advance_time(tick.settled, handler);
                revisit(&mut table, handler);
                on_tick(handler, &tick);
            }
            Ok(Next::End) => break None,
            Err(e) => break Some(e),
        }
    };
    // Secrets read at the end (a followed key log's last lines) still serve the connections
    // waiting for them, before the table closes them.
    if secrets(capture, handler) {
        revisit(&mut table, handler);
    }
    table.finish(handler);
    Summary {
        capture: capture.stats(),
        decode: *decoder.stats(),
        flows: table.stats(),
        error,
    }
}

pub mod analyzer;
pub mod event;
pub mod http2;
pub mod log;
pub mod parallel;
pub mod session;
pub mod sink;
pub mod tls;

pub use analyzer::{Analyzer, AnalyzerConfig, Stats};
pub use event::{Event, EventKind};
pub use sink::Sink;
