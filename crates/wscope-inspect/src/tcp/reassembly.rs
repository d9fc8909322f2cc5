//! One direction of a TCP connection as an in-order byte stream.
//!
//! A [`StreamReassembler`] maps sequence numbers to stream offsets (bytes since the first data
//! byte, as a `u64`, so sequence wrap-around is invisible past this point: each sequence number
//! is read as the nearest one to the next expected byte, within ±2 GiB) and emits
//! [`StreamEvent`]s:
//!
//! - Bytes at the next expected offset are emitted at once, borrowed from the segment.
//! - Bytes ahead of a hole are copied into a buffer keyed by offset and emitted when the hole
//!   fills.
//! - Bytes already delivered (retransmissions, keep-alives) are dropped. Bytes overlapping
//!   buffered bytes are compared: the first-seen bytes win, and a difference is reported as
//!   [`TcpAnomaly::InconsistentOverlap`] (Suricata's `reassembly_overlap_different_data`).
//!   Delivered bytes are not kept, but a hash of each of the last [`RECENT_PIECES`] pieces
//!   delivered is: a retransmission that covers one of them whole is compared with it, and a
//!   difference is the same anomaly. (One-byte keep-alive probes are not compared.)
//! - A hole is given up as a [`StreamEvent::Gap`] when it cannot be filled any more: the peer
//!   acknowledged bytes beyond it ([`StreamReassembler::acked`]), the buffer cap was reached
//!   (the oldest hole goes, with a [`StreamEvent::Limit`]), or the connection ends
//!   ([`StreamReassembler::flush`]). Bytes the snapshot length cut from an in-order segment are
//!   a gap at once.
//! - After the FIN's sequence number is reached, [`StreamEvent::Eof`] is emitted once; payload
//!   beyond it is dropped with [`TcpAnomaly::DataAfterFin`].

use core::hash::BuildHasher as _;
use std::collections::BTreeMap;

use super::{Limit, TcpAnomaly};

/// An event of one direction's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// In-order bytes.
    Data(&'a [u8]),
    /// Bytes lost.
    Gap(u64),
    /// The FIN was reached.
    Eof,
    /// A buffer cap was hit; the oldest hole is given up next.
    Limit(Limit),
    /// A TCP oddity.
    Anomaly(TcpAnomaly),
}

/// Counters over all directions sharing a [`ReassemblyContext`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Bytes emitted as data.
    pub bytes_delivered: u64,
    /// Bytes emitted as data straight from segments (no copy).
    pub bytes_in_order: u64,
    /// Gap events.
    pub gaps: u64,
    /// Bytes given up in gaps.
    pub gap_bytes: u64,
    /// Gaps declared because the peer acknowledged unseen bytes.
    pub ack_gaps: u64,
    /// Payload bytes dropped because they were already delivered (retransmissions).
    pub duplicate_bytes: u64,
    /// Payload bytes that overlapped buffered bytes (compared, then dropped).
    pub overlap_bytes: u64,
    /// Overlaps whose bytes differed.
    pub inconsistent_overlaps: u64,
    /// Pieces copied into out-of-order buffers.
    pub out_of_order_pieces: u64,
    /// Bytes copied into out-of-order buffers.
    pub out_of_order_bytes: u64,
    /// Highest total of buffered bytes at any time.
    pub buffered_peak: usize,
    /// Times a per-direction buffer cap was hit.
    pub direction_limit_hits: u64,
    /// Times the total buffer cap was hit.
    pub total_limit_hits: u64,
    /// Payload bytes after a FIN, dropped.
    pub data_after_fin_bytes: u64,
}

impl ReassemblyStats {
    /// Adds the counters of another table (of a parallel run); `buffered_peak` becomes the
    /// sum of the tables' peaks (an upper bound of the peak of their total).
    pub fn add(&mut self, o: &Self) {
        self.bytes_delivered += o.bytes_delivered;
        self.bytes_in_order += o.bytes_in_order;
        self.gaps += o.gaps;
        self.gap_bytes += o.gap_bytes;
        self.ack_gaps += o.ack_gaps;
        self.duplicate_bytes += o.duplicate_bytes;
        self.overlap_bytes += o.overlap_bytes;
        self.inconsistent_overlaps += o.inconsistent_overlaps;
        self.out_of_order_pieces += o.out_of_order_pieces;
        self.out_of_order_bytes += o.out_of_order_bytes;
        self.buffered_peak += o.buffered_peak;
        self.direction_limit_hits += o.direction_limit_hits;
        self.total_limit_hits += o.total_limit_hits;
        self.data_after_fin_bytes += o.data_after_fin_bytes;
    }
}

/// State shared by all directions of a flow table: the buffer caps, the bytes buffered in
/// total, and the counters.
#[derive(Clone, Debug)]
pub struct ReassemblyContext {
    /// Cap on buffered out-of-order bytes per direction.
    pub max_buffered: usize,
    /// Cap on buffered out-of-order bytes over all directions.
    pub max_buffered_total: usize,
    buffered_total: usize,
    /// Hashes delivered pieces, to compare retransmissions with them (seeded per process;
    /// hashes are only compared with each other, so output does not depend on the seed).
    hasher: hashbrown::DefaultHashBuilder,
    /// Counters.
    pub stats: ReassemblyStats,
}

impl ReassemblyContext {
    /// A context with the given caps.
    pub fn new(max_buffered: usize, max_buffered_total: usize) -> Self {
        Self {
            max_buffered,
            max_buffered_total,
            buffered_total: 0,
            hasher: hashbrown::DefaultHashBuilder::default(),
            stats: ReassemblyStats::default(),
        }
    }

    /// Out-of-order bytes buffered now, over all directions.
    pub const fn buffered_total(&self) -> usize {
        self.buffered_total
    }
}

/// The reassembly state of one direction.
///
/// ```
/// use wscope_inspect::tcp::reassembly::{ReassemblyContext, StreamEvent, StreamReassembler};
/// let mut cx = ReassemblyContext::new(1 << 20, 1 << 20);
/// let mut r = StreamReassembler::new();
/// r.start(1000);
/// let mut out = Vec::new();
/// let mut emit = |ev: StreamEvent<'_>| match ev {
///     StreamEvent::Data(b) => out.extend_from_slice(b),
///     other => panic!("{other:?}"),
/// };
/// r.segment(1005, b"world", 0, false, &mut cx, &mut emit); // ahead of a hole: buffered
/// r.segment(1000, b"hello", 0, false, &mut cx, &mut emit); // fills it: both come out
/// assert_eq!(out, b"helloworld");
/// ```
#[derive(Clone, Debug, Default)]
pub struct StreamReassembler {
    started: bool,
    closed: bool,
    eof_sent: bool,
    /// Sequence number of the byte at offset `delivered`.
    next_seq: u32,
    /// Offset of the next byte to emit.
    delivered: u64,
    /// Offset of the FIN (the stream's length), once seen.
    fin: Option<u64>,
    /// Out-of-order bytes by offset; never overlapping, all at offsets above `delivered`.
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    /// The last pieces delivered: (offset, length, hash), oldest overwritten first.
    recent: [(u64, u32, u64); RECENT_PIECES],
    recent_next: usize,
}

/// Delivered pieces remembered per direction (by hash, 24 bytes each) to compare
/// retransmissions with: a retransmission usually repeats one of the last few segments.
pub const RECENT_PIECES: usize = 4;

/// Nearest-reading of sequence numbers is trusted only this far from the expected one.
const MAX_ACK_JUMP: i64 = 1 << 30;

impl StreamReassembler {
    /// A direction not yet seen.
    pub const fn new() -> Self {
        Self {
            started: false,
            closed: false,
            eof_sent: false,
            next_seq: 0,
            delivered: 0,
            fin: None,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            recent: [(0, 0, 0); RECENT_PIECES],
            recent_next: 0,
        }
    }

    /// Sets the sequence number of the first data byte (ISN + 1 after a SYN, or the first
    /// sequence number seen mid-stream). Does nothing once started.
    pub fn start(&mut self, first_seq: u32) {
        if !self.started {
            self.started = true;
            self.next_seq = first_seq;
        }
    }

    /// Re-synchronises a direction that has not delivered anything yet (a SYN retransmitted
    /// with a new ISN, a SYN-ACK after a guess from the other side). Returns whether it did.
    pub fn restart(&mut self, first_seq: u32) -> bool {
        if self.delivered == 0 && self.pending.is_empty() && self.fin.is_none() {
            self.started = true;
            self.next_seq = first_seq;
            true
        } else {
            false
        }
    }

    /// Whether [`StreamReassembler::start`] was called.
    pub const fn is_started(&self) -> bool {
        self.started
    }

    /// Stream offset of the next byte to emit (bytes delivered plus gap bytes).
    pub const fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Sequence number of the next byte to emit.
    pub const fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// Out-of-order bytes buffered in this direction.
    pub const fn buffered(&self) -> usize {
        self.pending_bytes
    }

    /// Whether a FIN was seen.
    pub const fn fin_seen(&self) -> bool {
        self.fin.is_some()
    }

    /// Whether [`StreamEvent::Eof`] was emitted.
    pub const fn eof_sent(&self) -> bool {
        self.eof_sent
    }

    /// The stream offset of `seq`, read as the nearest to the next expected byte.
    fn offset_of(&self, seq: u32) -> i64 {
        self.delivered as i64 + i64::from(seq.wrapping_sub(self.next_seq) as i32)
    }

    /// Handles one segment of this direction: `payload` at `seq`, of which the capture lost
    /// the last `missing` bytes, with or without FIN.
    pub fn segment<F>(
        &mut self,
        seq: u32,
        payload: &[u8],
        missing: u32,
        fin: bool,
        cx: &mut ReassemblyContext,
        emit: &mut F,
    ) where
        F: FnMut(StreamEvent<'_>),
    {
        if !self.started {
            self.start(seq);
        }
        if self.closed {
            if !payload.is_empty() {
                emit(StreamEvent::Anomaly(TcpAnomaly::DataAfterClose {
                    len: payload.len() as u64,
                }));
            }
            return;
        }
        let seg_start = self.offset_of(seq);
        let cap_end = seg_start + payload.len() as i64;
        let wire_end = cap_end + i64::from(missing);
        let mut limit_end = wire_end;
        if let Some(f) = self.fin {
            let f = f as i64;
            if wire_end > f {
                let len = (wire_end - seg_start.max(f)) as u64;
                if len > 0 {
                    cx.stats.data_after_fin_bytes += len;
                    emit(StreamEvent::Anomaly(TcpAnomaly::DataAfterFin { len }));
                }
                limit_end = f;
            }
        }
        let data_end = cap_end.min(limit_end);
        let d = self.delivered as i64;
        // Bytes already delivered again: compare them with what was delivered, where known.
        let dup_end = data_end.min(d);
        if dup_end - seg_start > 1 {
            let dup = &payload[..(dup_end - seg_start) as usize];
            self.compare_delivered(seg_start, dup, cx, emit);
        }
        if data_end > d && data_end > seg_start {
            let s = seg_start.max(d);
            cx.stats.duplicate_bytes += (s - seg_start) as u64;
            let from = (s - seg_start) as usize;
            let to = (data_end - seg_start) as usize;
            self.insert(s as u64, &payload[from..to], cx, emit);
        } else if !payload.is_empty() && data_end <= d {
            cx.stats.duplicate_bytes += (data_end - seg_start).max(0) as u64;
        }
        // Bytes the snapshot length cut from a segment that is now in order: lost for good.
        if missing > 0 && data_end == cap_end && self.delivered as i64 == cap_end {
            let first = self.pending.keys().next().map_or(i64::MAX, |&k| k as i64);
            let target = wire_end.min(limit_end).min(first);
            if target > cap_end {
                self.skip_to(target as u64, cx, emit);
                self.drain(cx, emit);
            }
        }
        if fin {
            match self.fin {
                None if wire_end >= self.delivered as i64 => self.fin = Some(wire_end as u64),
                Some(f) if f as i64 == wire_end => {}
                _ => emit(StreamEvent::Anomaly(TcpAnomaly::InconsistentFin)),
            }
        }
        self.check_eof(emit);
    }

    /// The peer acknowledged everything before `ack`: holes below it can never be filled by
    /// a retransmission, so they become gaps now.
    pub fn acked<F>(&mut self, ack: u32, cx: &mut ReassemblyContext, emit: &mut F)
    where
        F: FnMut(StreamEvent<'_>),
    {
        if !self.started || self.closed {
            return;
        }
        let mut limit = self.offset_of(ack);
        if let Some(f) = self.fin {
            limit = limit.min(f as i64);
        }
        let d = self.delivered as i64;
        if limit <= d || limit - d > MAX_ACK_JUMP {
            return;
        }
        let limit = limit as u64;
        while self.delivered < limit {
            let first = self.pending.keys().next().map_or(limit, |&k| k.min(limit));
            if first > self.delivered {
                cx.stats.ack_gaps += 1;
                self.skip_to(first, cx, emit);
            }
            self.drain(cx, emit);
        }
        self.check_eof(emit);
    }

    /// Gives up every hole (the connection is ending): buffered bytes come out with gaps
    /// between them, and if a FIN was seen the stream is completed up to it (with a final gap
    /// if needed) and [`StreamEvent::Eof`] follows.
    pub fn flush<F>(&mut self, cx: &mut ReassemblyContext, emit: &mut F)
    where
        F: FnMut(StreamEvent<'_>),
    {
        if self.closed {
            return;
        }
        while let Some(&first) = self.pending.keys().next() {
            self.skip_to(first, cx, emit);
            self.drain(cx, emit);
        }
        if let Some(f) = self.fin {
            if self.delivered < f {
                self.skip_to(f, cx, emit);
            }
        }
        self.check_eof(emit);
    }

    /// Ends this direction: drops buffered bytes (without emitting them) and ignores later
    /// segments (reported as [`TcpAnomaly::DataAfterClose`]).
    pub fn close(&mut self, cx: &mut ReassemblyContext) {
        cx.buffered_total -= self.pending_bytes;
        self.pending_bytes = 0;
        self.pending = BTreeMap::new();
        self.closed = true;
    }

    fn check_eof<F: FnMut(StreamEvent<'_>)>(&mut self, emit: &mut F) {
        if !self.eof_sent && self.fin.is_some_and(|f| self.delivered >= f) {
            self.eof_sent = true;
            emit(StreamEvent::Eof);
        }
    }

    fn advance(&mut self, n: u64) {
        self.delivered += n;
        self.next_seq = self.next_seq.wrapping_add(n as u32);
    }

    fn deliver<F: FnMut(StreamEvent<'_>)>(
        &mut self,
        bytes: &[u8],
        cx: &mut ReassemblyContext,
        emit: &mut F,
    ) {
        if bytes.is_empty() {
            return;
        }
        cx.stats.bytes_delivered += bytes.len() as u64;
        if let Ok(len) = u32::try_from(bytes.len()) {
            // Costs a hash of each delivered byte (foldhash, several GB/s), no copy.
            let hash = cx.hasher.hash_one(bytes);
            self.recent[self.recent_next] = (self.delivered, len, hash);
            self.recent_next = (self.recent_next + 1) % RECENT_PIECES;
        }
        self.advance(bytes.len() as u64);
        emit(StreamEvent::Data(bytes));
    }

    /// `dup`, at stream offset `start`, repeats bytes already delivered: each remembered
    /// piece it covers whole must hash the same, or the retransmission changed them.
    fn compare_delivered<F: FnMut(StreamEvent<'_>)>(
        &self,
        start: i64,
        dup: &[u8],
        cx: &mut ReassemblyContext,
        emit: &mut F,
    ) {
        let end = start + dup.len() as i64;
        for &(off, len, hash) in &self.recent {
            let (o, e) = (off as i64, off as i64 + i64::from(len));
            if len == 0 || o < start || e > end {
                continue;
            }
            let piece = &dup[(o - start) as usize..(e - start) as usize];
            if cx.hasher.hash_one(piece) != hash {
                cx.stats.inconsistent_overlaps += 1;
                emit(StreamEvent::Anomaly(TcpAnomaly::InconsistentOverlap {
                    offset: off,
                    len: u64::from(len),
                }));
            }
        }
    }

    /// Declares `[delivered, target)` lost.
    fn skip_to<F: FnMut(StreamEvent<'_>)>(
        &mut self,
        target: u64,
        cx: &mut ReassemblyContext,
        emit: &mut F,
    ) {
        if target > self.delivered {
            let len = target - self.delivered;
            cx.stats.gaps += 1;
            cx.stats.gap_bytes += len;
            self.advance(len);
            emit(StreamEvent::Gap(len));
        }
    }

    /// Emits buffered pieces that start at the next expected offset.
    fn drain<F: FnMut(StreamEvent<'_>)>(&mut self, cx: &mut ReassemblyContext, emit: &mut F) {
        while let Some(entry) = self.pending.first_entry() {
            let k = *entry.key();
            if k > self.delivered {
                break;
            }
            let chunk = entry.remove();
            self.pending_bytes -= chunk.len();
            cx.buffered_total -= chunk.len();
            let skip = (self.delivered - k) as usize;
            if skip < chunk.len() {
                self.deliver(&chunk[skip..], cx, emit);
            }
        }
    }

    /// Places `data` at stream offset `off` (at or above `delivered`).
    fn insert<F: FnMut(StreamEvent<'_>)>(
        &mut self,
        off: u64,
        data: &[u8],
        cx: &mut ReassemblyContext,
        emit: &mut F,
    ) {
        let end = off + data.len() as u64;
        // Fast path: in order with nothing buffered.
        if off == self.delivered && self.pending.is_empty() {
            cx.stats.bytes_in_order += data.len() as u64;
            self.deliver(data, cx, emit);
            return;
        }
        let mut cursor = off;
        while cursor < end {
            if cursor < self.delivered {
                // Delivered meanwhile from buffered bytes (first seen wins).
                let to = self.delivered.min(end);
                cx.stats.overlap_bytes += to - cursor;
                cursor = to;
                continue;
            }
            if let Some((&k, chunk)) = self.pending.range(..=cursor).next_back() {
                let cend = k + chunk.len() as u64;
                if cend > cursor {
                    let oend = cend.min(end);
                    let new = &data[(cursor - off) as usize..(oend - off) as usize];
                    let old = &chunk[(cursor - k) as usize..(oend - k) as usize];
                    cx.stats.overlap_bytes += oend - cursor;
                    if new != old {
                        let first = new.iter().zip(old).position(|(a, b)| a != b).unwrap_or(0);
                        cx.stats.inconsistent_overlaps += 1;
                        emit(StreamEvent::Anomaly(TcpAnomaly::InconsistentOverlap {
                            offset: cursor + first as u64,
                            len: oend - cursor,
                        }));
                    }
                    cursor = oend;
                    continue;
                }
            }
            let next_k = self
                .pending
                .range(cursor..)
                .next()
                .map_or(u64::MAX, |(&k, _)| k);
            let pend = next_k.min(end);
            let piece = &data[(cursor - off) as usize..(pend - off) as usize];
            if cursor == self.delivered {
                cx.stats.bytes_in_order += piece.len() as u64;
                self.deliver(piece, cx, emit);
            } else {
                self.buffer(cursor, piece, cx, emit);
            }
            cursor = pend;
        }
        self.drain(cx, emit);
    }

    /// Copies an out-of-order piece into the buffer, giving up the oldest holes first if a cap
    /// would be exceeded.
    fn buffer<F: FnMut(StreamEvent<'_>)>(
        &mut self,
        at: u64,
        piece: &[u8],
        cx: &mut ReassemblyContext,
        emit: &mut F,
    ) {
        let n = piece.len();
        loop {
            let over_dir = self.pending_bytes + n > cx.max_buffered;
            let over_total = cx.buffered_total + n > cx.max_buffered_total;
            if !over_dir && !over_total {
                self.pending.insert(at, piece.to_vec());
                self.pending_bytes += n;
                cx.buffered_total += n;
                cx.stats.out_of_order_pieces += 1;
                cx.stats.out_of_order_bytes += n as u64;
                cx.stats.buffered_peak = cx.stats.buffered_peak.max(cx.buffered_total);
                return;
            }
            let limit = if over_dir {
                cx.stats.direction_limit_hits += 1;
                Limit::DirectionBuffer {
                    cap: cx.max_buffered,
                }
            } else {
                cx.stats.total_limit_hits += 1;
                Limit::TotalBuffer {
                    cap: cx.max_buffered_total,
                }
            };
            emit(StreamEvent::Limit(limit));
            let first = self.pending.keys().next().map_or(at, |&k| k.min(at));
            self.skip_to(first, cx, emit);
            self.drain(cx, emit);
            if self.delivered >= at {
                // The piece is next in line now.
                cx.stats.bytes_in_order += n as u64;
                self.deliver(piece, cx, emit);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(events: &mut Vec<String>) -> impl FnMut(StreamEvent<'_>) + '_ {
        move |ev| {
            events.push(match ev {
                StreamEvent::Data(b) => String::from_utf8_lossy(b).into_owned(),
                StreamEvent::Gap(n) => format!("<gap {n}>"),
                StreamEvent::Eof => "<eof>".into(),
                StreamEvent::Limit(_) => "<limit>".into(),
                StreamEvent::Anomaly(a) => format!("<{a:?}>"),
            })
        }
    }

    #[test]
    fn offsets_are_read_near_the_expected_sequence_number() {
        let mut r = StreamReassembler::new();
        r.start(u32::MAX - 1);
        assert_eq!(r.offset_of(u32::MAX - 1), 0);
        assert_eq!(r.offset_of(3), 5);
        assert_eq!(r.offset_of(u32::MAX - 11), -10);
    }

    #[test]
    fn restart_only_before_anything_happened() {
        let mut cx = ReassemblyContext::new(100, 100);
        let mut ev = Vec::new();
        let mut r = StreamReassembler::new();
        r.start(10);
        assert!(r.restart(20));
        assert_eq!(r.next_seq(), 20);
        r.segment(20, b"x", 0, false, &mut cx, &mut collect(&mut ev));
        assert!(!r.restart(30));
        assert_eq!(r.next_seq(), 21);
        assert_eq!(ev, vec!["x"]);
    }

    #[test]
    fn fin_flush_and_close() {
        let mut cx = ReassemblyContext::new(100, 100);
        let mut ev = Vec::new();
        let mut r = StreamReassembler::new();
        r.start(0);
        r.segment(0, b"ab", 0, false, &mut cx, &mut collect(&mut ev));
        r.segment(5, b"fg", 0, true, &mut cx, &mut collect(&mut ev));
        assert_eq!(r.buffered(), 2);
        assert!(r.fin_seen() && !r.eof_sent());
        r.flush(&mut cx, &mut collect(&mut ev));
        assert_eq!(ev, vec!["ab", "<gap 3>", "fg", "<eof>"]);
        r.close(&mut cx);
        r.segment(7, b"zz", 0, false, &mut cx, &mut collect(&mut ev));
        assert_eq!(ev.last().unwrap(), "<DataAfterClose { len: 2 }>");
        assert_eq!(cx.buffered_total(), 0);
    }

    #[test]
    fn acks_turn_holes_into_gaps_but_not_beyond_fin() {
        let mut cx = ReassemblyContext::new(100, 100);
        let mut ev = Vec::new();
        let mut r = StreamReassembler::new();
        r.start(100);
        r.segment(104, b"ef", 0, false, &mut cx, &mut collect(&mut ev));
        r.segment(108, b"", 0, true, &mut cx, &mut collect(&mut ev));
        // An acknowledgment of the FIN (109) covers holes up to the FIN only.
        r.acked(109, &mut cx, &mut collect(&mut ev));
        assert_eq!(ev, vec!["<gap 4>", "ef", "<gap 2>", "<eof>"]);
        // Stale or absurd acknowledgments do nothing.
        r.acked(50, &mut cx, &mut collect(&mut ev));
        r.acked(100 + (1 << 31), &mut cx, &mut collect(&mut ev));
        assert_eq!(ev.len(), 4);
    }
}
