//! The flow table: TCP connections keyed by their address pair, with bounded memory.
//!
//! ## Who is the client
//!
//! The originator (client, [`Direction::ClientToServer`]) is the sender of a SYN without ACK.
//! If the first packet seen is a SYN-ACK, its receiver is the originator (the SYN was missed but
//! both initial sequence numbers are known, so the connection is not mid-stream). Otherwise the
//! capture started mid-connection: the sender of the first packet seen is taken as the
//! originator and the connection is marked [`ConnMeta::mid_stream`]. A lone RST opens nothing.
//!
//! ## Lifetime
//!
//! A connection ends (one [`ConnectionEvent::Closed`]) when both directions reached their FIN,
//! on a RST, after an idle timeout, when evicted, when a new SYN reuses its address pair, or at
//! [`FlowTable::finish`]. Before `Closed`, each direction is flushed: holes become gaps and
//! buffered bytes come out. A connection closed by FIN or RST is remembered for
//! [`FlowConfig::close_linger`] so its last ACKs do not open a new mid-stream connection.
//!
//! ## Time and limits
//!
//! Time is the packets' time (never the clock): the table's clock is the latest packet
//! timestamp seen. Connections sit on three least-recently-used lists (handshake only, active,
//! closed), each with its own timeout, so expiry costs a look at three list tails per packet.
//! When [`FlowConfig::max_flows`] is reached, a closed connection is forgotten first, then the
//! least recently used handshake-only one, then the least recently used active one. The hash
//! map is never iterated, so its random seed cannot change the order of events.

use core::mem;

use hashbrown::HashMap;
use wscope_proto::role::Direction;
use wscope_proto::time::{Duration, Instant};

use super::reassembly::{ReassemblyContext, ReassemblyStats, StreamEvent, StreamReassembler};
use super::{CloseOrder, CloseReason, ConnMeta, ConnectionEvent, ConnectionHandler, FlowConfig};
use crate::decode::{FlowKey, Segment};
use crate::uid::{ConnId, UidGenerator};

/// Counters of a [`FlowTable`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Segments handled.
    pub segments: u64,
    /// Connections opened.
    pub opened: u64,
    /// Connections open now (closed ones still lingering not counted).
    pub open_now: usize,
    /// Most connections tracked at once (lingering closed ones included).
    pub peak_tracked: usize,
    /// Closed after FIN in both directions.
    pub closed_finished: u64,
    /// Closed by RST.
    pub closed_reset: u64,
    /// Closed after an idle or handshake timeout.
    pub closed_timeout: u64,
    /// Closed to make room under `max_flows`.
    pub evicted: u64,
    /// Closed because a new SYN reused the address pair.
    pub reused: u64,
    /// Closed at the end of the capture.
    pub closed_at_end: u64,
    /// Packets for a connection already closed (ignored).
    pub late_packets: u64,
    /// RSTs with no connection (ignored).
    pub stray_resets: u64,
    /// Reassembly counters over all connections.
    pub reassembly: ReassemblyStats,
}

impl FlowStats {
    /// Adds the counters of another table (one worker's of a parallel run). `open_now`,
    /// `peak_tracked` and the reassembly buffer peak become sums over the tables (upper bounds
    /// of the peaks of their totals).
    pub fn add(&mut self, o: &Self) {
        self.segments += o.segments;
        self.opened += o.opened;
        self.open_now += o.open_now;
        self.peak_tracked += o.peak_tracked;
        self.closed_finished += o.closed_finished;
        self.closed_reset += o.closed_reset;
        self.closed_timeout += o.closed_timeout;
        self.evicted += o.evicted;
        self.reused += o.reused;
        self.closed_at_end += o.closed_at_end;
        self.late_packets += o.late_packets;
        self.stray_resets += o.stray_resets;
        self.reassembly.add(&o.reassembly);
    }
}

const NIL: u32 = u32::MAX;

/// The three LRU lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum List {
    /// One direction seen, no payload.
    Handshake = 0,
    /// Traffic.
    Active = 1,
    /// Closed, lingering.
    Closed = 2,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    prev: u32,
    next: u32,
    list: List,
}

/// Intrusive doubly linked lists over slot indices; head = most recently used.
#[derive(Debug, Default)]
struct Lists {
    nodes: Vec<Node>,
    head: [u32; 3],
    tail: [u32; 3],
}

impl Lists {
    fn new() -> Self {
        Self {
            nodes: Vec::new(),
            head: [NIL; 3],
            tail: [NIL; 3],
        }
    }

    fn ensure(&mut self, i: u32) {
        let need = i as usize + 1;
        if self.nodes.len() < need {
            self.nodes.resize(
                need,
                Node {
                    prev: NIL,
                    next: NIL,
                    list: List::Closed,
                },
            );
        }
    }

    fn push_front(&mut self, i: u32, list: List) {
        self.ensure(i);
        let l = list as usize;
        let old = self.head[l];
        self.nodes[i as usize] = Node {
            prev: NIL,
            next: old,
            list,
        };
        if old == NIL {
            self.tail[l] = i;
        } else {
            self.nodes[old as usize].prev = i;
        }
        self.head[l] = i;
    }

    fn unlink(&mut self, i: u32) {
        let Node { prev, next, list } = self.nodes[i as usize];
        let l = list as usize;
        if prev == NIL {
            self.head[l] = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.tail[l] = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        self.nodes[i as usize].prev = NIL;
        self.nodes[i as usize].next = NIL;
    }

    fn touch(&mut self, i: u32, list: List) {
        if self.head[list as usize] == i && self.nodes[i as usize].list == list {
            return;
        }
        self.unlink(i);
        self.push_front(i, list);
    }

    fn list_of(&self, i: u32) -> List {
        self.nodes[i as usize].list
    }

    fn tail(&self, list: List) -> Option<u32> {
        let t = self.tail[list as usize];
        (t != NIL).then_some(t)
    }
}

struct Conn<S> {
    meta: ConnMeta,
    orig_is_lo: bool,
    dirs: [StreamReassembler; 2],
    isn: [Option<u32>; 2],
    seen: [bool; 2],
    last: Instant,
    /// Number of the packet that opened it / touched it last (the LRU lists' order).
    first_packet: u64,
    last_packet: u64,
    state: S,
}

/// The flow table and reassembler of a whole capture.
///
/// `S` is the per-connection state of the [`ConnectionHandler`] used with it.
pub struct FlowTable<S> {
    cfg: FlowConfig,
    map: HashMap<FlowKey, u32>,
    slots: Vec<Option<Conn<S>>>,
    free: Vec<u32>,
    lists: Lists,
    cx: ReassemblyContext,
    uids: UidGenerator,
    next_id: u64,
    now: Instant,
    /// The `last` time given to connections by the packet being handled.
    packet_clock: Instant,
    /// Uids come from the first packet's number ([`FlowTable::handle_packet`] was used).
    packet_uids: bool,
    stats: FlowStats,
}

impl<S> core::fmt::Debug for FlowTable<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FlowTable")
            .field("tracked", &self.map.len())
            .field("now", &self.now)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Turns a direction's stream events into connection events for the handler.
fn emitter<'c, H: ConnectionHandler>(
    h: &'c mut H,
    state: &'c mut H::State,
    meta: &'c ConnMeta,
    dir: Direction,
    ts: Instant,
) -> impl for<'x> FnMut(StreamEvent<'x>) + 'c {
    move |ev| {
        let ev = match ev {
            StreamEvent::Data(bytes) => ConnectionEvent::Data { dir, ts, bytes },
            StreamEvent::Gap(len) => ConnectionEvent::Gap { dir, ts, len },
            StreamEvent::Eof => ConnectionEvent::Eof { dir, ts },
            StreamEvent::Limit(limit) => ConnectionEvent::Limit { dir, ts, limit },
            StreamEvent::Anomaly(anomaly) => ConnectionEvent::Anomaly { dir, ts, anomaly },
        };
        h.on_event(state, meta, ev);
    }
}

const DIRS: [Direction; 2] = [Direction::ClientToServer, Direction::ServerToClient];

impl<S: Default> FlowTable<S> {
    /// An empty table.
    pub fn new(cfg: FlowConfig) -> Self {
        Self {
            cfg,
            map: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            lists: Lists::new(),
            cx: ReassemblyContext::new(cfg.max_buffered_per_direction, cfg.max_buffered_total),
            uids: UidGenerator::new(cfg.uid_seed),
            next_id: 0,
            now: Instant::ZERO,
            packet_clock: Instant::ZERO,
            packet_uids: false,
            stats: FlowStats::default(),
        }
    }

    /// The configuration.
    pub const fn config(&self) -> &FlowConfig {
        &self.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> FlowStats {
        let mut s = self.stats;
        s.reassembly = self.cx.stats;
        s
    }

    /// Connections tracked now (open ones and closed ones still lingering).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no connection is tracked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The table's clock: the latest packet time seen (or given to
    /// [`FlowTable::advance_time`]).
    pub const fn now(&self) -> Instant {
        self.now
    }

    /// A rough count of the bytes the table holds (connection slots, hash map, list links and
    /// buffered out-of-order bytes; not the handler states' heap data).
    pub fn approx_memory(&self) -> usize {
        self.slots.capacity() * size_of::<Option<Conn<S>>>()
            + self.free.capacity() * size_of::<u32>()
            + self.lists.nodes.capacity() * size_of::<Node>()
            + self.map.capacity() * (size_of::<(FlowKey, u32)>() + 1)
            + self.cx.buffered_total()
    }

    /// Hands the open connections with these keys to [`ConnectionHandler::revisit`], at the
    /// table's time (keys no open connection has are passed over).
    pub fn revisit<H>(&mut self, keys: &[FlowKey], h: &mut H)
    where
        H: ConnectionHandler<State = S>,
    {
        let now = self.now;
        for key in keys {
            let Some(&i) = self.map.get(key) else {
                continue;
            };
            if self.lists.list_of(i) == List::Closed {
                continue;
            }
            if let Some(c) = self.slots[i as usize].as_mut() {
                h.revisit(&mut c.state, &c.meta, now);
            }
        }
    }

    /// Moves the clock to `now` (if later) and times out idle connections, without a packet.
    pub fn advance_time<H>(&mut self, now: Instant, h: &mut H)
    where
        H: ConnectionHandler<State = S>,
    {
        if now > self.now {
            self.now = now;
        }
        self.expire(h);
    }

    /// Handles one decoded segment: first times out idle connections (by the segment's time),
    /// then handles the segment.
    pub fn handle_segment<H>(&mut self, seg: &Segment<'_>, h: &mut H)
    where
        H: ConnectionHandler<State = S>,
    {
        if seg.ts > self.now {
            self.now = seg.ts;
        }
        self.expire(h);
        let number = self.stats.segments + 1;
        self.segment(seg, number, seg.ts, h);
    }

    /// Handles one decoded segment without timing anything out: the caller ticks the clock
    /// with [`FlowTable::advance_time`] at points of its choosing (the analyzer does so at
    /// fixed steps of capture time, so that tables that each see a share of the packets expire
    /// their connections at the same points as one table that sees them all).
    ///
    /// `number` is the packet's number in the capture (increasing); `now` is the capture
    /// clock at this packet (the latest packet time so far, this one's included). A
    /// connection's idle time counts from the `now` of its last packet, so the order of the
    /// LRU lists is the order of time, even when packet times go backwards. A connection's
    /// uid is made from the number of its first packet (not from its [`ConnMeta::id`]), so it
    /// is the same whichever other connections the table holds.
    pub fn handle_packet<H>(&mut self, seg: &Segment<'_>, number: u64, now: Instant, h: &mut H)
    where
        H: ConnectionHandler<State = S>,
    {
        if now > self.now {
            self.now = now;
        }
        self.packet_uids = true;
        self.segment(seg, number, now.max(seg.ts), h);
    }

    fn segment<H>(&mut self, seg: &Segment<'_>, number: u64, clock: Instant, h: &mut H)
    where
        H: ConnectionHandler<State = S>,
    {
        self.stats.segments += 1;
        self.packet_clock = clock;
        let (key, src_is_lo) = seg.key();
        let flags = seg.flags;
        let is_syn = flags.syn() && !flags.ack();
        let idx = match self.map.get(&key).copied() {
            Some(i) if self.lists.list_of(i) == List::Closed => {
                if is_syn {
                    self.remove(i);
                    self.create(seg, key, src_is_lo, number, h)
                } else {
                    self.stats.late_packets += 1;
                    return;
                }
            }
            Some(i) => {
                if is_syn && self.is_reuse(i, seg, src_is_lo) {
                    self.close(i, CloseReason::Reused, seg.ts, h);
                    self.create(seg, key, src_is_lo, number, h)
                } else {
                    i
                }
            }
            None => {
                if flags.rst() {
                    self.stats.stray_resets += 1;
                    return;
                }
                self.create(seg, key, src_is_lo, number, h)
            }
        };
        self.process(idx, seg, src_is_lo, number, h);
    }

    /// Ends the capture: every open connection is flushed and closed with
    /// [`CloseReason::CaptureEnd`], in the order they were opened, and the table is emptied.
    pub fn finish<H>(&mut self, h: &mut H)
    where
        H: ConnectionHandler<State = S>,
    {
        let now = self.now;
        self.finish_at(now, h);
    }

    /// [`FlowTable::finish`] with the clock first moved to `now` (if later), without timing
    /// anything out: for a table that saw only a share of the capture's packets.
    pub fn finish_at<H>(&mut self, now: Instant, h: &mut H)
    where
        H: ConnectionHandler<State = S>,
    {
        if now > self.now {
            self.now = now;
        }
        let mut open: Vec<(ConnId, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|c| (c.meta.id, i as u32)))
            .filter(|&(_, i)| self.lists.list_of(i) != List::Closed)
            .collect();
        open.sort_unstable();
        let now = self.now;
        for (_, i) in open {
            if let Some(c) = self.slots[i as usize].as_ref() {
                h.close_order(
                    &c.meta,
                    CloseOrder::CaptureEnd {
                        first_packet: c.first_packet,
                    },
                );
            }
            self.close(i, CloseReason::CaptureEnd, now, h);
        }
        self.map.clear();
        self.slots.clear();
        self.free.clear();
        self.lists = Lists::new();
    }

    fn is_reuse(&self, i: u32, seg: &Segment<'_>, src_is_lo: bool) -> bool {
        let Some(conn) = self.slots[i as usize].as_ref() else {
            return false;
        };
        let di = if src_is_lo == conn.orig_is_lo { 0 } else { 1 };
        match conn.isn[di] {
            Some(isn) if isn == seg.seq => false,
            // A new ISN on a direction that has carried nothing is a fresh attempt, not reuse.
            _ => {
                let d = &conn.dirs[di];
                d.delivered() > 0 || d.buffered() > 0 || d.fin_seen()
            }
        }
    }

    fn create<H>(
        &mut self,
        seg: &Segment<'_>,
        key: FlowKey,
        src_is_lo: bool,
        number: u64,
        h: &mut H,
    ) -> u32
    where
        H: ConnectionHandler<State = S>,
    {
        if self.map.len() >= self.cfg.max_flows.max(1) {
            self.evict_one(h);
        }
        let flags = seg.flags;
        let (orig, resp, orig_is_lo, mid_stream) = if flags.syn() && flags.ack() {
            (seg.dst, seg.src, !src_is_lo, false)
        } else if flags.syn() {
            (seg.src, seg.dst, src_is_lo, false)
        } else {
            (seg.src, seg.dst, src_is_lo, true)
        };
        self.next_id += 1;
        let id = ConnId(self.next_id);
        let meta = ConnMeta {
            id,
            // A uid that does not depend on which other connections share the table.
            uid: self
                .uids
                .uid(if self.packet_uids { ConnId(number) } else { id }),
            key,
            orig,
            resp,
            start: seg.ts,
            mid_stream,
            stream_id: None,
        };
        let mut conn = Conn {
            meta,
            orig_is_lo,
            dirs: [StreamReassembler::new(), StreamReassembler::new()],
            isn: [None, None],
            seen: [false, false],
            last: self.packet_clock,
            first_packet: number,
            last_packet: number,
            state: S::default(),
        };
        h.on_event(
            &mut conn.state,
            &conn.meta,
            ConnectionEvent::Open {
                key,
                ts: seg.ts,
                mid_stream,
            },
        );
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(conn);
                i
            }
            None => {
                self.slots.push(Some(conn));
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(key, i);
        self.lists.push_front(i, List::Handshake);
        self.stats.opened += 1;
        self.stats.open_now += 1;
        self.stats.peak_tracked = self.stats.peak_tracked.max(self.map.len());
        i
    }

    fn process<H>(&mut self, i: u32, seg: &Segment<'_>, src_is_lo: bool, number: u64, h: &mut H)
    where
        H: ConnectionHandler<State = S>,
    {
        let cx = &mut self.cx;
        let ack_gaps = self.cfg.ack_gaps;
        let Some(conn) = self.slots[i as usize].as_mut() else {
            return;
        };
        let di = if src_is_lo == conn.orig_is_lo { 0 } else { 1 };
        let oi = 1 - di;
        let dir = DIRS[di];
        let ts = seg.ts;
        let flags = seg.flags;
        conn.seen[di] = true;
        conn.last = self.packet_clock;
        conn.last_packet = number;

        let mut seq = seg.seq;
        if flags.syn() {
            seq = seg.seq.wrapping_add(1);
            if conn.isn[di] != Some(seg.seq) {
                if conn.dirs[di].is_started() {
                    conn.dirs[di].restart(seq);
                } else {
                    conn.dirs[di].start(seq);
                }
                conn.isn[di] = Some(seg.seq);
            }
        } else {
            conn.dirs[di].start(seg.seq);
        }
        if flags.ack() && !conn.dirs[oi].is_started() {
            conn.dirs[oi].start(seg.ack);
        }

        let Conn {
            meta, dirs, state, ..
        } = conn;
        {
            let mut emit = emitter(h, state, meta, dir, ts);
            dirs[di].segment(seq, seg.payload, seg.missing, flags.fin(), cx, &mut emit);
        }
        if flags.ack() && ack_gaps {
            let mut emit = emitter(h, state, meta, DIRS[oi], ts);
            dirs[oi].acked(seg.ack, cx, &mut emit);
        }

        let active = (conn.seen[0] && conn.seen[1]) || !seg.payload.is_empty();
        let list = if active || self.lists.list_of(i) == List::Active {
            List::Active
        } else {
            List::Handshake
        };
        self.lists.touch(i, list);

        if flags.rst() {
            self.close(i, CloseReason::Reset(dir), ts, h);
        } else if conn.dirs[0].eof_sent() && conn.dirs[1].eof_sent() {
            self.close(i, CloseReason::Finished, ts, h);
        }
    }

    /// Flushes both directions, emits `Closed`, drops the handler state. FIN/RST closes linger
    /// on the closed list; other closes free the slot.
    fn close<H>(&mut self, i: u32, reason: CloseReason, ts: Instant, h: &mut H)
    where
        H: ConnectionHandler<State = S>,
    {
        let cx = &mut self.cx;
        let Some(conn) = self.slots[i as usize].as_mut() else {
            return;
        };
        let Conn {
            meta, dirs, state, ..
        } = conn;
        for (d, dir) in DIRS.into_iter().enumerate() {
            if dirs[d].is_started() {
                let mut emit = emitter(h, state, meta, dir, ts);
                dirs[d].flush(cx, &mut emit);
            }
        }
        h.on_event(state, meta, ConnectionEvent::Closed { ts, reason });
        dirs[0].close(cx);
        dirs[1].close(cx);
        drop(mem::take(state));
        conn.last = match reason {
            // Lingers on the closed list, which is in packet order.
            CloseReason::Finished | CloseReason::Reset(_) => self.packet_clock,
            _ => ts,
        };
        self.stats.open_now -= 1;
        match reason {
            CloseReason::Finished => self.stats.closed_finished += 1,
            CloseReason::Reset(_) => self.stats.closed_reset += 1,
            CloseReason::IdleTimeout => self.stats.closed_timeout += 1,
            CloseReason::Evicted => self.stats.evicted += 1,
            CloseReason::Reused => self.stats.reused += 1,
            CloseReason::CaptureEnd => self.stats.closed_at_end += 1,
            // Ends of HTTP/2 streams, not of connections.
            CloseReason::StreamEnd | CloseReason::StreamReset(_) | CloseReason::GoAway(_) => {}
        }
        match reason {
            CloseReason::Finished | CloseReason::Reset(_) => self.lists.touch(i, List::Closed),
            _ => self.remove(i),
        }
    }

    /// Forgets a slot entirely.
    fn remove(&mut self, i: u32) {
        if let Some(conn) = self.slots[i as usize].take() {
            self.map.remove(&conn.meta.key);
            self.lists.unlink(i);
            self.free.push(i);
        }
    }

    fn timeout_of(&self, list: List) -> Duration {
        match list {
            List::Handshake => self.cfg.handshake_timeout,
            List::Active => self.cfg.idle_timeout,
            List::Closed => self.cfg.close_linger,
        }
    }

    fn expire<H>(&mut self, h: &mut H)
    where
        H: ConnectionHandler<State = S>,
    {
        for list in [List::Closed, List::Handshake, List::Active] {
            let timeout = self.timeout_of(list);
            while let Some(t) = self.lists.tail(list) {
                let last = match self.slots[t as usize].as_ref() {
                    Some(c) => c.last,
                    None => {
                        self.lists.unlink(t);
                        continue;
                    }
                };
                if self.now.saturating_since(last) <= timeout {
                    break;
                }
                if list == List::Closed {
                    self.remove(t);
                } else {
                    if let Some(c) = self.slots[t as usize].as_ref() {
                        h.close_order(
                            &c.meta,
                            CloseOrder::Expiry {
                                active: list == List::Active,
                                last_packet: c.last_packet,
                            },
                        );
                    }
                    self.close(t, CloseReason::IdleTimeout, last + timeout, h);
                }
            }
        }
    }

    fn evict_one<H>(&mut self, h: &mut H)
    where
        H: ConnectionHandler<State = S>,
    {
        if let Some(t) = self.lists.tail(List::Closed) {
            self.remove(t);
        } else if let Some(t) = self
            .lists
            .tail(List::Handshake)
            .or_else(|| self.lists.tail(List::Active))
        {
            let now = self.now;
            self.close(t, CloseReason::Evicted, now, h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(l: &Lists, list: List) -> Vec<u32> {
        let mut out = Vec::new();
        let mut i = l.head[list as usize];
        while i != NIL {
            out.push(i);
            i = l.nodes[i as usize].next;
        }
        // The backward links agree.
        let mut back = Vec::new();
        let mut i = l.tail[list as usize];
        while i != NIL {
            back.push(i);
            i = l.nodes[i as usize].prev;
        }
        back.reverse();
        assert_eq!(out, back);
        out
    }

    #[test]
    fn lru_lists_move_and_unlink() {
        let mut l = Lists::new();
        for i in 0..4 {
            l.push_front(i, List::Handshake);
        }
        assert_eq!(order(&l, List::Handshake), vec![3, 2, 1, 0]);
        assert_eq!(l.tail(List::Handshake), Some(0));
        l.touch(0, List::Handshake);
        assert_eq!(order(&l, List::Handshake), vec![0, 3, 2, 1]);
        l.touch(2, List::Active);
        assert_eq!(order(&l, List::Handshake), vec![0, 3, 1]);
        assert_eq!(order(&l, List::Active), vec![2]);
        assert_eq!(l.list_of(2), List::Active);
        l.unlink(1);
        l.unlink(0);
        assert_eq!(order(&l, List::Handshake), vec![3]);
        l.unlink(3);
        assert_eq!(l.tail(List::Handshake), None);
        assert_eq!(l.tail(List::Closed), None);
    }
}
