//! One TCP connection → one [`Observer`]: timestamps, uid, direction, payload chunking,
//! message lengths and digests. The observer inflates permessage-deflate messages itself (with
//! the endpoint's message layer, so its anomalies are the endpoint's close reasons); the
//! session only counts and digests what it reports.
//!
//! The TCP layer hands in-order bytes of each direction ([`Session::data`]), lost bytes
//! ([`Session::gap`]) and ends ([`Session::eof`]). Each direction's bytes are appended once to
//! that direction's buffer, fed to the observer (which unmasks payload in place), and dropped as
//! soon as the observer consumed them; only a direction the observer paused (a client that
//! sent bytes after an upgrade request, before the server's answer was seen) keeps bytes, up to
//! [`SessionConfig::max_paused_bytes`].
//!
//! Differences from the raw observer stream, to match Zeek: a frame with an empty payload gives
//! no `FrameData` (set [`SessionConfig::empty_frame_data`] to keep it), and `FrameData` is cut
//! into pieces of at most [`SessionConfig::payload_chunk_size`] bytes (sub-slices, no copy).

use std::borrow::Cow;

use sha2::{Digest, Sha256};
use wscope_proto::frame::OpCode;
use wscope_proto::observe::{ObservedEvent, Observer, ObserverConfig, Upgrade};
use wscope_proto::role::Direction;
use wscope_proto::time::Instant;

use crate::event::{ChunkInfo, ConnectionEnd, Event, EventKind};
use crate::sink::Sink;
use crate::tcp::{CloseReason, ConnMeta, Limit, TcpAnomaly};

/// Settings of a [`Session`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Observer settings (handshake limits, UTF-8 checks, resynchronisation, inflation of
    /// permessage-deflate messages and its cap: [`ObserverConfig::inflate`],
    /// [`ObserverConfig::max_inflated_message_len`]).
    pub observer: ObserverConfig,
    /// Largest `FrameData` chunk (default 8192, as Zeek's `payload_chunk_size`); 0 means 1.
    pub payload_chunk_size: usize,
    /// Report a `FrameData` with an empty chunk for frames with an empty payload (Zeek reports
    /// none; default `false`).
    pub empty_frame_data: bool,
    /// Compute the SHA-256 of each message's application payload.
    pub digest: bool,
    /// Most bytes kept for a paused direction; beyond, they are dropped as a gap.
    pub max_paused_bytes: usize,
    /// Report anomalies found before an upgrade (HTTP that cannot be followed, which is what
    /// any non-HTTP connection looks like); default `false`: they are only counted.
    pub http_anomalies: bool,
    /// Limits of the HTTP/2 layer (WebSocket over HTTP/2, [`crate::http2`]).
    pub http2: crate::http2::Http2Config,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            observer: ObserverConfig::default(),
            payload_chunk_size: 8192,
            empty_frame_data: false,
            digest: false,
            max_paused_bytes: 1 << 20,
            http_anomalies: false,
            http2: crate::http2::Http2Config::default(),
        }
    }
}

/// Per-direction message accounting.
#[derive(Debug, Default)]
struct DirState {
    /// Application bytes of the current data message (inflated when compressed).
    data_len: u64,
    /// Raw payload bytes of the current data message.
    raw_len: u64,
    data_hash: Option<Sha256>,
    /// The observer inflates this direction's compressed messages (permessage-deflate agreed
    /// with parameters that parse, and inflation on).
    inflates: bool,
    /// The current data message is compressed and the observer inflates it: its application
    /// data comes as `Inflated` events.
    inflating: bool,
    /// The observer reported the end of the current message's inflated data (it inflated
    /// completely).
    inflated_whole: bool,
    ctl_len: u64,
    ctl_hash: Option<Sha256>,
    /// A data message has begun (a frame was seen) and has not ended.
    data_open: bool,
    /// A control frame has begun and has not ended.
    ctl_open: bool,
    /// This direction sent a close frame.
    sent_close: bool,
}

impl DirState {
    fn new(digest: bool) -> Self {
        Self {
            data_hash: new_hash(digest),
            ctl_hash: new_hash(digest),
            ..Self::default()
        }
    }
}

/// What a session counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCounters {
    /// The connection upgraded to WebSocket (a `101` was seen, see [`Self::rejected`]).
    pub established: bool,
    /// The `101` is one the client must reject ([`Upgrade::accepted`] is false): not a
    /// WebSocket session, although it is reported as [`EventKind::Established`].
    pub rejected: bool,
    /// Bytes dropped because a paused direction overflowed.
    pub paused_dropped: u64,
    /// Anomalies before any upgrade that were not reported (see
    /// [`SessionConfig::http_anomalies`]).
    pub http_anomalies: u64,
}

/// The analysis of one TCP connection (see the [module docs](self)).
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    obs: Observer,
    buf: [Vec<u8>; 2],
    dirs: [DirState; 2],
    counters: SessionCounters,
}

const BOTH: [Direction; 2] = [Direction::ClientToServer, Direction::ServerToClient];

impl Session {
    /// A session for a new connection.
    pub fn new(cfg: SessionConfig) -> Self {
        Self {
            cfg,
            obs: Observer::new(cfg.observer),
            buf: [Vec::new(), Vec::new()],
            dirs: [DirState::new(cfg.digest), DirState::new(cfg.digest)],
            counters: SessionCounters::default(),
        }
    }

    /// A session for a connection whose handshake was not seen (as Zeek's fuzzer configures
    /// its analyzer): both directions carry frames from the first byte.
    pub fn after_handshake(cfg: SessionConfig) -> Self {
        Self {
            obs: Observer::after_handshake(cfg.observer),
            ..Self::new(cfg)
        }
    }

    /// A session for a WebSocket whose handshake is known but was not made of this session's
    /// bytes: a stream of an HTTP/2 connection (RFC 8441, [`Upgrade::http2`]). Its
    /// [`EventKind::Established`] comes out of the first call of [`Session::data`] (an empty
    /// `bytes` will do).
    pub fn after_upgrade(cfg: SessionConfig, upgrade: Upgrade) -> Self {
        Self {
            obs: Observer::after_upgrade(cfg.observer, upgrade),
            ..Self::new(cfg)
        }
    }

    /// The upgrade, once seen.
    pub fn upgrade(&self) -> Option<&Upgrade> {
        self.obs.upgrade()
    }

    /// Whether the connection upgraded to WebSocket.
    pub const fn is_websocket(&self) -> bool {
        self.counters.established
    }

    /// Counters.
    pub const fn counters(&self) -> SessionCounters {
        self.counters
    }

    /// Bytes held (paused directions, the observer's inflated output), for memory accounting.
    pub fn buffered(&self) -> usize {
        self.buf.iter().map(Vec::capacity).sum::<usize>() + self.obs.inflated_capacity()
    }

    /// In-order bytes of one direction.
    pub fn data<S: Sink + ?Sized>(
        &mut self,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        bytes: &[u8],
        sink: &mut S,
    ) {
        if self.obs.is_stopped() {
            return;
        }
        let d = dir.index();
        let room = self.cfg.max_paused_bytes.max(1 << 16);
        if !self.buf[d].is_empty() && self.buf[d].len().saturating_add(bytes.len()) > room {
            // A paused direction overflowed: drop what is held and report it as lost.
            let lost = self.buf[d].len() as u64;
            self.buf[d].clear();
            self.counters.paused_dropped += lost;
            self.obs.gap(dir, lost);
        }
        self.buf[d].extend_from_slice(bytes);
        self.drive(conn, ts, dir, sink);
    }

    /// `len` bytes of a direction were lost.
    pub fn gap<S: Sink + ?Sized>(
        &mut self,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        len: u64,
        sink: &mut S,
    ) {
        if self.obs.is_stopped() {
            return;
        }
        self.obs.gap(dir, len);
        self.drive(conn, ts, dir, sink);
    }

    /// A direction ended.
    pub fn eof<S: Sink + ?Sized>(
        &mut self,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        sink: &mut S,
    ) {
        if self.obs.is_stopped() {
            return;
        }
        // Bytes still held by a paused direction can no longer be interpreted.
        self.obs.eof(dir);
        self.drive(conn, ts, dir, sink);
        self.buf[dir.index()] = Vec::new();
    }

    /// A TCP-level limit or anomaly; reported only on WebSocket connections.
    pub fn tcp_note<S: Sink + ?Sized>(
        &mut self,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        note: TcpNote,
        sink: &mut S,
    ) {
        if !self.counters.established {
            return;
        }
        let (name, detail) = match note {
            TcpNote::Limit(Limit::DirectionBuffer { cap }) => (
                "tcp_direction_buffer_limit",
                format!("out-of-order buffer of {cap} bytes full"),
            ),
            TcpNote::Limit(Limit::TotalBuffer { cap }) => (
                "tcp_total_buffer_limit",
                format!("total out-of-order buffer of {cap} bytes full"),
            ),
            TcpNote::Anomaly(TcpAnomaly::InconsistentOverlap { offset, len }) => (
                "tcp_inconsistent_overlap",
                format!("{len} bytes at stream offset {offset} retransmitted differently"),
            ),
            TcpNote::Anomaly(TcpAnomaly::DataAfterFin { len }) => {
                ("tcp_data_after_fin", format!("{len} bytes"))
            }
            TcpNote::Anomaly(TcpAnomaly::InconsistentFin) => {
                ("tcp_inconsistent_fin", String::from("second FIN elsewhere"))
            }
            TcpNote::Anomaly(TcpAnomaly::DataAfterClose { len }) => {
                ("tcp_data_after_close", format!("{len} bytes"))
            }
        };
        let kind = EventKind::Anomaly {
            name,
            zeek_weird: None,
            detail: Cow::Owned(detail),
        };
        emit(sink, conn, ts, dir, kind);
    }

    /// The TCP connection ended for `reason`: a WebSocket connection gets its
    /// [`EventKind::ConnectionEnd`] (nothing for other connections). `dir` of the event is the
    /// sender of a RST, the originator's otherwise.
    pub fn end<S: Sink + ?Sized>(
        &mut self,
        conn: &ConnMeta,
        ts: Instant,
        reason: CloseReason,
        sink: &mut S,
    ) {
        if !self.counters.established {
            return;
        }
        let dir = match reason {
            CloseReason::Reset(dir) => dir,
            _ => Direction::ClientToServer,
        };
        let end = ConnectionEnd {
            reason,
            clean: self.dirs.iter().all(|d| d.sent_close),
            message_cut: self.dirs.iter().any(|d| d.data_open || d.ctl_open),
        };
        emit(sink, conn, ts, dir, EventKind::ConnectionEnd(end));
    }

    /// Feeds `dir`, then the other direction while it holds bytes the first one unblocked.
    fn drive<S: Sink + ?Sized>(
        &mut self,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        sink: &mut S,
    ) {
        self.pump(conn, ts, dir, sink);
        for _ in 0..2 {
            let other = dir.reverse();
            if self.buf[other.index()].is_empty() || self.obs.is_paused(other) {
                break;
            }
            self.pump(conn, ts, other, sink);
            if self.buf[dir.index()].is_empty() || self.obs.is_paused(dir) {
                break;
            }
            self.pump(conn, ts, dir, sink);
        }
    }

    /// Feeds one direction's buffer until the observer wants more or pauses.
    fn pump<S: Sink + ?Sized>(
        &mut self,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        sink: &mut S,
    ) {
        let d = dir.index();
        let Self {
            cfg,
            obs,
            buf,
            dirs,
            counters,
        } = self;
        let buf = &mut buf[d];
        let mut at = 0usize;
        loop {
            let step = obs.feed(dir, &mut buf[at..]);
            at += step.consumed;
            let Some(ev) = step.event else { break };
            if matches!(ev, ObservedEvent::Paused { .. }) {
                break;
            }
            handle(cfg, dirs, counters, conn, ts, ev, sink);
            if at > buf.len() {
                break;
            }
        }
        let at = at.min(buf.len());
        if at == buf.len() {
            buf.clear();
            if buf.capacity() > 1 << 18 {
                *buf = Vec::new();
            }
        } else {
            buf.drain(..at);
        }
    }
}

/// A TCP-level note for [`Session::tcp_note`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpNote {
    /// A reassembly limit was hit.
    Limit(Limit),
    /// A TCP oddity.
    Anomaly(TcpAnomaly),
}

fn new_hash(on: bool) -> Option<Sha256> {
    on.then(Sha256::new)
}

/// The application payload of a data message as it is delivered: the frame bytes, or the
/// inflated bytes of a compressed message.
struct AppData {
    opcode: OpCode,
    message_end: bool,
}

impl AppData {
    /// Counts and digests `data` for the message, then reports it as `MessageData` (an empty
    /// piece only when it ends the message).
    #[allow(clippy::too_many_arguments)]
    fn deliver<S: Sink + ?Sized>(
        &self,
        len: &mut u64,
        hash: &mut Option<Sha256>,
        data: &[u8],
        sink: &mut S,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
    ) {
        *len += data.len() as u64;
        if let Some(h) = hash.as_mut() {
            h.update(data);
        }
        if !data.is_empty() || self.message_end {
            let kind = EventKind::MessageData {
                data,
                opcode: self.opcode,
                message_end: self.message_end,
            };
            emit(sink, conn, ts, dir, kind);
        }
    }
}

fn emit<S: Sink + ?Sized>(
    sink: &mut S,
    conn: &ConnMeta,
    ts: Instant,
    dir: Direction,
    kind: EventKind<'_>,
) {
    sink.event(&Event {
        ts,
        conn,
        dir,
        kind,
    });
}

/// Turns one observer event into analyzer events.
fn handle<S: Sink + ?Sized>(
    cfg: &SessionConfig,
    dirs: &mut [DirState; 2],
    counters: &mut SessionCounters,
    conn: &ConnMeta,
    ts: Instant,
    ev: ObservedEvent<'_>,
    sink: &mut S,
) {
    let (dir, kind) = match ev {
        ObservedEvent::Established(up) => {
            counters.established = true;
            counters.rejected = !up.accepted();
            for dir in BOTH {
                let st = &mut dirs[dir.index()];
                st.data_hash = new_hash(cfg.digest);
                st.ctl_hash = new_hash(cfg.digest);
                // As the observer decides (`ObserverConfig::inflate`).
                st.inflates = cfg.observer.inflate && up.deflate_params().is_some();
            }
            (Direction::ServerToClient, EventKind::Established(up, None))
        }
        ObservedEvent::Frame {
            dir,
            header,
            header_bytes,
        } => {
            let st = &mut dirs[dir.index()];
            if header.opcode.is_control() {
                st.ctl_open = true;
            } else {
                st.data_open = true;
            }
            let kind = EventKind::Frame {
                header,
                header_bytes,
            };
            (dir, kind)
        }
        ObservedEvent::FrameData { dir, chunk, info } => {
            let st = &mut dirs[dir.index()];
            frame_data(cfg, st, conn, ts, dir, chunk, info, sink);
            return;
        }
        ObservedEvent::Inflated {
            dir,
            data,
            opcode,
            message_end,
        } => {
            let st = &mut dirs[dir.index()];
            st.inflated_whole |= message_end;
            let app = AppData {
                opcode,
                message_end,
            };
            app.deliver(
                &mut st.data_len,
                &mut st.data_hash,
                data,
                sink,
                conn,
                ts,
                dir,
            );
            return;
        }
        ObservedEvent::Close {
            dir,
            status,
            reason,
            ..
        } => {
            dirs[dir.index()].sent_close = true;
            (dir, EventKind::Close { status, reason })
        }
        ObservedEvent::Message { dir, opcode } => {
            let st = &mut dirs[dir.index()];
            let (len, hash) = if opcode.is_control() {
                st.ctl_open = false;
                let len = core::mem::take(&mut st.ctl_len);
                (
                    len,
                    core::mem::replace(&mut st.ctl_hash, new_hash(cfg.digest)),
                )
            } else {
                // A message that stopped inflating counts its raw length.
                let len = if st.inflating && !st.inflated_whole {
                    st.raw_len
                } else {
                    st.data_len
                };
                st.data_open = false;
                st.data_len = 0;
                st.raw_len = 0;
                st.inflating = false;
                st.inflated_whole = false;
                (
                    len,
                    core::mem::replace(&mut st.data_hash, new_hash(cfg.digest)),
                )
            };
            let sha256 = if cfg.digest {
                hash.map(|h| h.finalize().into())
            } else {
                None
            };
            let kind = EventKind::Message {
                opcode,
                len,
                sha256,
            };
            (dir, kind)
        }
        ObservedEvent::Anomaly { dir, anomaly } => {
            if !counters.established && !cfg.http_anomalies {
                counters.http_anomalies += 1;
                return;
            }
            let kind = EventKind::Anomaly {
                name: anomaly.name(),
                zeek_weird: anomaly.zeek_weird(),
                detail: Cow::Owned(anomaly.detail().to_string()),
            };
            (dir, kind)
        }
        ObservedEvent::BadUpgrade(e) => {
            let kind = EventKind::Anomaly {
                name: "bad_upgrade",
                zeek_weird: None,
                detail: Cow::Owned(e.to_string()),
            };
            (Direction::ServerToClient, kind)
        }
        // Requests, responses, pauses, ends and stops carry nothing for the log.
        _ => return,
    };
    emit(sink, conn, ts, dir, kind);
}

#[allow(clippy::too_many_arguments)]
fn frame_data<S: Sink + ?Sized>(
    cfg: &SessionConfig,
    st: &mut DirState,
    conn: &ConnMeta,
    ts: Instant,
    dir: Direction,
    chunk: &[u8],
    info: ChunkInfo,
    sink: &mut S,
) {
    // Zeek-style frame_data, cut to the chunk size.
    if !chunk.is_empty() || cfg.empty_frame_data {
        let size = cfg.payload_chunk_size.max(1);
        let total = chunk.len();
        let mut start = 0usize;
        loop {
            let end = total.min(start.saturating_add(size));
            let last = end == total;
            let piece = ChunkInfo {
                first: info.first && start == 0,
                remaining: info.remaining.saturating_add((total - end) as u64),
                frame_end: info.frame_end && last,
                message_end: info.message_end && last,
                ..info
            };
            let kind = EventKind::FrameData {
                data: &chunk[start..end],
                info: piece,
            };
            emit(sink, conn, ts, dir, kind);
            if last {
                break;
            }
            start = end;
        }
    }
    if info.opcode.is_control() {
        st.ctl_len += chunk.len() as u64;
        if let Some(h) = st.ctl_hash.as_mut() {
            h.update(chunk);
        }
        return;
    }
    st.raw_len += chunk.len() as u64;
    if info.compressed && st.inflates {
        // The observer reports what it inflates to (`Inflated`), violations included.
        st.inflating = true;
        return;
    }
    let app = AppData {
        opcode: info.opcode,
        message_end: info.message_end,
    };
    app.deliver(
        &mut st.data_len,
        &mut st.data_hash,
        chunk,
        sink,
        conn,
        ts,
        dir,
    );
}
