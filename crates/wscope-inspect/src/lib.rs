//! # wscope-inspect: passive WebSocket analysis of packet captures
//!
//! This crate turns packet captures into WebSocket events and logs. Everything about the
//! WebSocket protocol itself (handshake checks, frames, messages, anomalies) lives in
//! `wscope-proto`; this crate adds what is about captures: packets, TCP connections,
//! reassembly, timestamps, uids and output. It is deterministic: time comes from the packets,
//! never from the clock, and the same capture always gives the same output.
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
//!        │  (later) session   one connection → wscope_proto::observe observer
//!        ▼
//!   (later) events and logs   websocket.log (Zeek), JSON lines, anomalies
//! ```
//!
//! In-order payload travels from the capture buffer to the handler without a copy; only bytes
//! that arrive ahead of a hole are copied (and capped). Flows, buffers and timeouts are bounded
//! ([`tcp::FlowConfig`]).
//!
//! ## Example
//!
//! ```no_run
//! use wscope_inspect::capture::Capture;
//! use wscope_inspect::tcp::{ConnMeta, ConnectionEvent, FlowConfig};
//! use wscope_proto::role::Direction;
//!
//! let mut capture = Capture::from_paths(["trace.pcap"]);
//! let mut client_bytes = 0u64;
//! let summary = wscope_inspect::reassemble(&mut capture, FlowConfig::default(),
//!     &mut |conn: &ConnMeta, ev: ConnectionEvent<'_>| {
//!         if let ConnectionEvent::Data { dir: Direction::ClientToServer, bytes, .. } = ev {
//!             client_bytes += bytes.len() as u64;
//!         }
//!     });
//! if let Some(err) = summary.error {
//!     eprintln!("capture ended early: {err}");
//! }
//! ```
//!
//! ## Modules
//!
//! - [`capture`]: pcap/pcapng input, several files per run, stdin.
//! - [`decode`]: link, IP and TCP headers → [`decode::Segment`].
//! - [`tcp`]: the flow table ([`tcp::FlowTable`]), reassembly, the [`tcp::ConnectionHandler`]
//!   trait and its events.
//! - [`uid`]: connection ids and deterministic Zeek-style uids.
//! - [`write`](mod@write): writing pcap/pcapng files and TCP packets (samples and tests).

pub mod capture;
pub mod decode;
mod defrag;
#[doc(hidden)]
pub mod fuzzing;
pub mod tcp;
pub mod uid;
pub mod write;

use capture::{Capture, CaptureError, CaptureStats};
use decode::{DecodeStats, Decoder};
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
    let mut decoder = Decoder::new();
    let mut table: FlowTable<H::State> = FlowTable::new(cfg);
    let error = loop {
        match capture.next_packet() {
            Ok(Some(pkt)) => {
                if let Some(seg) = decoder.decode(&pkt) {
                    table.handle_segment(&seg, handler);
                }
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
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
pub mod log;
pub mod session;
pub mod sink;

pub use analyzer::{Analyzer, AnalyzerConfig, Stats};
pub use event::{Event, EventKind};
pub use sink::Sink;
