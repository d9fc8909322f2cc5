//! TCP: the flow table and per-direction reassembly.
//!
//! [`FlowTable`] turns decoded [`Segment`](crate::decode::Segment)s into per-connection
//! [`ConnectionEvent`]s delivered to a [`ConnectionHandler`]: `Open`, then the two in-order byte
//! streams as `Data` (with `Gap` where bytes were lost), `Eof` per direction after a FIN, and
//! `Closed` exactly once. Limits and oddities come as `Limit` and `Anomaly` events on the
//! connection they concern. The rules are in [`reassembly`] (one direction) and [`flow`] (the
//! table: who is the originator, timeouts, caps).
//!
//! ## Zero copy
//!
//! Bytes that arrive in order are handed to the handler straight from the packet buffer; only
//! bytes that arrive ahead of a hole are copied, into that direction's out-of-order buffer, and
//! released (in order) when the hole fills or is given up as a gap.
//!
//! ## Memory
//!
//! Out-of-order bytes are capped per direction and in total, the number of connections is
//! capped (least recently used ones are evicted), and connections time out by packet time.
//! See [`FlowConfig`].

pub mod flow;
pub mod reassembly;

use core::net::SocketAddr;

use wscope_proto::role::Direction;
use wscope_proto::time::{Duration, Instant};

use crate::decode::FlowKey;
use crate::uid::{ConnId, Uid};

pub use flow::{FlowStats, FlowTable};
pub use reassembly::StreamReassembler;

/// Limits and timeouts of the flow table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    /// Most connections tracked at once (closed ones waiting out `close_linger` included); when
    /// full, the least recently active one is evicted (closed with [`CloseReason::Evicted`]).
    pub max_flows: usize,
    /// Most out-of-order bytes held per direction; reaching it gives up the oldest hole as a
    /// gap ([`Limit::DirectionBuffer`]).
    pub max_buffered_per_direction: usize,
    /// Most out-of-order bytes held over all connections ([`Limit::TotalBuffer`]).
    pub max_buffered_total: usize,
    /// A connection with traffic (both directions seen, or any payload) is closed after this
    /// long without packets ([`CloseReason::IdleTimeout`]).
    pub idle_timeout: Duration,
    /// A connection that never got past its first direction without payload (a lone SYN, a
    /// scan probe) is closed after this long ([`CloseReason::IdleTimeout`]).
    pub handshake_timeout: Duration,
    /// How long a closed connection is remembered so late packets (the last ACK, a
    /// retransmitted FIN) do not start a new one.
    pub close_linger: Duration,
    /// Treat bytes the peer acknowledges but the capture never showed as lost at once
    /// (a gap), instead of waiting for the connection to end.
    pub ack_gaps: bool,
    /// Seed of the uid generator ([`crate::uid::UidGenerator`]): the same seed gives the same
    /// uids. The default, 0, keeps library runs deterministic; the `wscope` CLI draws a random
    /// seed per run (uids are random in Zeek too) unless given `--uid-seed`.
    pub uid_seed: u64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            max_flows: 1 << 18,
            max_buffered_per_direction: 1 << 20,
            max_buffered_total: 256 << 20,
            idle_timeout: Duration::from_secs(300),
            handshake_timeout: Duration::from_secs(30),
            close_linger: Duration::from_secs(5),
            ack_gaps: true,
            uid_seed: 0,
        }
    }
}

/// What the handler knows about a connection; passed with every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnMeta {
    /// Counter in order of first packet, from 1.
    pub id: ConnId,
    /// Zeek-like uid, deterministic for a given [`FlowConfig::uid_seed`]: made from the
    /// connection's id, or, for tables fed with [`FlowTable::handle_packet`] (the analyzer),
    /// from the number of its first packet.
    pub uid: Uid,
    /// The canonical key.
    pub key: FlowKey,
    /// The originator (client): sender of the first SYN, or of the first packet seen.
    pub orig: SocketAddr,
    /// The responder (server).
    pub resp: SocketAddr,
    /// Time of the first packet.
    pub start: Instant,
    /// The connection was already running when the capture first saw it (no SYN from the
    /// originator and no SYN-ACK to it).
    pub mid_stream: bool,
    /// The HTTP/2 stream of a WebSocket over HTTP/2 (RFC 8441): each such stream is a
    /// session of its own, with this id and its own [`ConnMeta::uid`]
    /// ([`Uid::for_stream`] of the connection's); `None` for a connection's own events.
    pub stream_id: Option<u32>,
}

impl ConnMeta {
    /// The metadata of one connection from `orig` to `resp` opened at time zero, for feeding a
    /// [`crate::session::Session`] by hand (outside a capture): id 1, its uid from seed 0.
    pub fn new(orig: SocketAddr, resp: SocketAddr) -> Self {
        let id = ConnId(1);
        Self {
            id,
            uid: crate::uid::UidGenerator::new(0).uid(id),
            key: FlowKey::new(orig, resp).0,
            orig,
            resp,
            start: Instant::ZERO,
            mid_stream: false,
            stream_id: None,
        }
    }

    /// The metadata of WebSocket stream `stream_id` of this (HTTP/2) connection: the same
    /// connection, the stream's id and uid ([`Uid::for_stream`]).
    #[must_use]
    pub fn for_stream(&self, stream_id: u32) -> Self {
        Self {
            uid: self.uid.for_stream(stream_id),
            stream_id: Some(stream_id),
            ..*self
        }
    }

    /// What tells sessions apart: the connection's id and the stream's (0 for the
    /// connection itself).
    pub fn session_key(&self) -> (ConnId, u32) {
        (self.id, self.stream_id.unwrap_or(0))
    }
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Both directions sent FIN and all data up to it was delivered (or given up as gaps).
    Finished,
    /// A RST was seen from the given direction's sender.
    Reset(Direction),
    /// No packet for the configured timeout.
    IdleTimeout,
    /// Evicted to make room under [`FlowConfig::max_flows`].
    Evicted,
    /// A new SYN with another sequence number reused the address pair.
    Reused,
    /// The capture ended ([`FlowTable::finish`]).
    CaptureEnd,
    /// A WebSocket over HTTP/2: both sides ended the stream (END_STREAM, RFC 9113 §5.1).
    StreamEnd,
    /// A WebSocket over HTTP/2: the given direction's sender reset the stream (RST_STREAM,
    /// RFC 9113 §6.4).
    StreamReset(Direction),
    /// A WebSocket over HTTP/2: the given direction's sender sent a GOAWAY whose last stream
    /// id is below the stream's (RFC 9113 §6.8).
    GoAway(Direction),
}

/// Where a connection closed by a pass over the table (a timeout or the end of the capture)
/// stands among the others that pass closes, given to [`ConnectionHandler::close_order`] just
/// before its events.
///
/// A pass closes its connections in increasing order of this value (compare with `Ord`):
/// expired handshake-only connections, then expired active ones, each by the number of their
/// last packet; at the end, by the number of their first packet. The order depends only on
/// the connection, not on which others share the table, so that tables that each hold a share
/// of the connections can be merged into the order of one table holding them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CloseOrder {
    /// Timed out by [`FlowTable::advance_time`] (or before a segment).
    Expiry {
        /// On the active list (`false`: handshake-only; these go first).
        active: bool,
        /// Number of its last packet.
        last_packet: u64,
    },
    /// Closed by [`FlowTable::finish`].
    CaptureEnd {
        /// Number of its first packet.
        first_packet: u64,
    },
}

/// A limit that was hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// [`FlowConfig::max_buffered_per_direction`] reached in this direction: the oldest hole
    /// became a gap.
    DirectionBuffer {
        /// The cap in bytes.
        cap: usize,
    },
    /// [`FlowConfig::max_buffered_total`] reached: the oldest hole of this direction became a
    /// gap.
    TotalBuffer {
        /// The cap in bytes.
        cap: usize,
    },
}

/// Something odd in a direction's TCP stream (the stream goes on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TcpAnomaly {
    /// A retransmission overlapping held data carried different bytes; the first-seen bytes
    /// were kept. `offset` is the stream offset of the first differing byte.
    InconsistentOverlap {
        /// Stream offset (bytes since the start of this direction) of the first difference.
        offset: u64,
        /// Length of the overlap that was compared.
        len: u64,
    },
    /// Payload after the FIN's sequence number (dropped).
    DataAfterFin {
        /// Bytes dropped.
        len: u64,
    },
    /// A second FIN at another sequence number than the first (ignored).
    InconsistentFin,
    /// Payload after this direction was reset or the connection closed (dropped).
    DataAfterClose {
        /// Bytes dropped.
        len: u64,
    },
}

/// What happens on a connection, in order, delivered to a [`ConnectionHandler`].
///
/// Per connection: `Open` first; then, per direction, `Data` and `Gap` in stream order with
/// `Limit`/`Anomaly` interleaved where they happen, and at most one `Eof`; `Closed` last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEvent<'a> {
    /// A new connection.
    Open {
        /// Its key.
        key: FlowKey,
        /// Time of its first packet.
        ts: Instant,
        /// Seen mid-stream (see [`ConnMeta::mid_stream`]).
        mid_stream: bool,
    },
    /// In-order bytes. Valid only during the call (borrowed from the packet or the buffer).
    Data {
        /// Direction; `ClientToServer` is from the originator.
        dir: Direction,
        /// Time of the packet that made these bytes available.
        ts: Instant,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// `len` bytes of this direction were lost (not captured); the stream continues after them.
    Gap {
        /// Direction.
        dir: Direction,
        /// Time of the packet (or end) that made the loss certain.
        ts: Instant,
        /// Bytes lost.
        len: u64,
    },
    /// The sender closed this direction (FIN) and everything before it was delivered.
    Eof {
        /// Direction.
        dir: Direction,
        /// Time.
        ts: Instant,
    },
    /// The connection ended; no more events for it.
    Closed {
        /// Time of the packet or timeout that ended it.
        ts: Instant,
        /// Why.
        reason: CloseReason,
    },
    /// A limit was hit in this direction.
    Limit {
        /// Direction.
        dir: Direction,
        /// Time.
        ts: Instant,
        /// Which limit.
        limit: Limit,
    },
    /// A TCP oddity in this direction.
    Anomaly {
        /// Direction.
        dir: Direction,
        /// Time.
        ts: Instant,
        /// What.
        anomaly: TcpAnomaly,
    },
}

/// Receives connection events from a [`FlowTable`].
///
/// Each connection carries a `State` owned by the table (created with `Default` before `Open`,
/// dropped after `Closed`), so a handler finds its per-connection data without a lookup of its
/// own.
///
/// Any `FnMut(&ConnMeta, ConnectionEvent<'_>)` closure is a handler with no state:
///
/// ```
/// use wscope_inspect::tcp::{ConnMeta, ConnectionEvent, FlowConfig, FlowTable};
/// let mut table: FlowTable<()> = FlowTable::new(FlowConfig::default());
/// let mut bytes = 0usize;
/// let mut handler = |_: &ConnMeta, ev: ConnectionEvent<'_>| {
///     if let ConnectionEvent::Data { bytes: b, .. } = ev {
///         bytes += b.len();
///     }
/// };
/// table.finish(&mut handler);
/// assert_eq!(bytes, 0);
/// ```
pub trait ConnectionHandler {
    /// Per-connection state kept in the flow table.
    type State: Default;

    /// One event of one connection.
    fn on_event(&mut self, state: &mut Self::State, conn: &ConnMeta, event: ConnectionEvent<'_>);

    /// The table is about to close `conn` in a pass over several connections (timeouts, the
    /// end of the capture); its events follow. Default: nothing. See [`CloseOrder`].
    fn close_order(&mut self, _conn: &ConnMeta, _order: CloseOrder) {}

    /// TLS key log text from a pcapng Decryption Secrets Block, before the packets that
    /// follow it (default: ignored).
    fn secrets(&mut self, keylog: &[u8]) {
        let _ = keylog;
    }

    /// Adds to `into` the connections whose state waits for something other than their
    /// packets (TLS secrets that a growing key log may still bring): the table hands each to
    /// [`ConnectionHandler::revisit`] after new [`ConnectionHandler::secrets`] and on each
    /// tick of a live source ([`crate::reassemble_source`]). Default: none.
    fn waiting(&mut self, into: &mut Vec<FlowKey>) {
        let _ = into;
    }

    /// One connection named by [`ConnectionHandler::waiting`], at the table's time `now`
    /// (default: nothing).
    fn revisit(&mut self, state: &mut Self::State, conn: &ConnMeta, now: Instant) {
        let _ = (state, conn, now);
    }
}

impl<F> ConnectionHandler for F
where
    F: FnMut(&ConnMeta, ConnectionEvent<'_>),
{
    type State = ();

    fn on_event(&mut self, _state: &mut (), conn: &ConnMeta, event: ConnectionEvent<'_>) {
        self(conn, event);
    }
}
