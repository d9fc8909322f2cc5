//! Parallel analysis: one capture, its connections sharded over worker threads, one output
//! that does not depend on the number of workers.
//!
//! ```text
//!   calling thread: capture → decode (+ IP defragmentation) → capture clock, ticks
//!        │  symmetric hash of the address pair → worker; batches of segments, bounded queues
//!        ▼
//!   worker 1..N: own FlowTable + Sessions → events recorded into a batch, each with a key
//!        │  (packet number, place in an expiry or end pass, order of emission)
//!        ▼
//!   calling thread: merges the workers' batches of one round by key → the Sink, Stats
//! ```
//!
//! ## Why the output is the same for any number of workers
//!
//! - Decoding and IP defragmentation happen in the calling thread, before sharding, so the
//!   fragments of a datagram are reassembled together and the datagram goes to the worker of
//!   its connection. Both directions of a connection hash to the same worker.
//! - Every event is keyed by what caused it: the number of the packet whose segment produced
//!   it, or a pass of the clock ([`FlowTable::advance_time`]) or the end of the capture, where
//!   the connection's [`CloseOrder`] places it. Within a connection, events keep their order.
//!   The merge of the workers' events by key is exactly the order one table produces.
//! - Time does not come from a worker's own packets: the capture clock (the latest segment
//!   time) travels with each segment, and connections time out only at clock *ticks*, when
//!   the clock enters a new [`TICK_US`] step. Ticks go to every worker at the same packet, and
//!   the one-worker path ticks at the same points.
//! - Uids are made from the uid seed and the number of the connection's first packet, so a
//!   worker knows them; connection ids ([`ConnMeta::id`]) are given by the merger, in the
//!   order connections opened, as one table numbers them.
//!
//! Run-wide counters are summed over the workers. The flow table limits
//! ([`FlowConfig::max_flows`], [`FlowConfig::max_buffered_total`]) apply to each shard's
//! table: with N shards up to N times as many connections and out-of-order bytes can be held,
//! and while a limit is hit the output can differ with N (which connections are evicted, where
//! the total buffer fills).
//!
//! ## Shards and workers
//!
//! Each shard of connections has its own thread and flow table. Usually a worker is one
//! shard. When the workers read the capture in chunks (below) and render output of their own
//! ([`LocalOutput`]), there are [`SHARDS_PER_WORKER`] times as many shards as workers, and a
//! shard analyses only while it holds one of the run's tokens (one per worker). A shard gives
//! its token back whenever it waits: for a batch another shard makes, or for room in its queue
//! to the merger. The shards' loads differ from round to round (a few large connections at a
//! time). With one shard per worker, the worker ahead soon filled its queue and stopped while
//! the one behind ran alone; now a waiting shard hands its CPU to one that has work. The output
//! does not depend on the number of shards either.
//!
//! Memory is bounded: at most [`ROUNDS_IN_FLIGHT`] rounds of at most [`ROUND_PACKETS`] packets
//! or [`ROUND_BYTES`] payload bytes are queued (per shard, [`SHARD_ROUNDS_IN_FLIGHT`] when
//! there are more shards than workers), and their buffers are reused.
//!
//! ## Workers that read the capture themselves
//!
//! When every source is a regular file ([`Capture`] can tell), nothing is dispatched: each
//! worker opens the files itself (up to their lengths when the run started, so all see the
//! same bytes), decodes every packet (IP defragmentation included), keeps the capture clock
//! and the round boundaries exactly as the dispatcher would, and handles the segments of its
//! own shard. No payload crosses threads; the calling thread only merges the workers' output.
//! Standard input, pipes and other readers still go through the dispatcher.
//!
//! When every file is a classic pcap or pcapng file (whose first block opens), the workers
//! do not each read the whole capture:
//! they take turns reading chunks of it, and each chunk's reader builds every worker's batch
//! of it, as the dispatcher would (see `parallel/chunks.rs`). Each byte is then read and
//! decoded once, and the batches share the chunk's bytes instead of copying the payloads.
//! Those payloads (and the dispatcher's copies) were written by another core: a worker asks
//! for the next few segments' payloads to be fetched into its cache while it handles the
//! current one (`parallel/prefetch.rs`).
//!
//! Either way, a worker records only the events the main sink reads ([`Sink::interest`]), and
//! `tls` ones (the merger counts TLS connections, whose table of names keeps the first ones
//! in the merged order; each record says whether the connection's upgrade is one the client
//! rejects); it counts the rest of the statistics itself.
//!
//! Output that depends only on an event and its connection is rendered by the workers, and
//! the merger only splices it in key order: JSON events ([`LocalOutput`]) and the rows of the
//! Zeek logs ([`ZeekOutput`], given to [`crate::Analyzer::run_with_outputs`]). For the logs,
//! a worker renders each row with the logs' [`ZeekRows`] and keeps its key, log and time; the
//! merger hands the rows in order to the logs, which write the header (dated by the first
//! row) before the first one. The logs are thus the same, byte for byte, as when they are a
//! sink of one thread.

mod chunks;
mod prefetch;

use core::cell::RefCell;
use core::ops::Range;
use std::borrow::Cow;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use wscope_proto::observe::ChunkInfo;
use wscope_proto::role::Direction;
use wscope_proto::time::Instant;

use crate::analyzer::{session_event, Slot, Stats};
use crate::capture::{Capture, CaptureError, CaptureStats, Snapshot};
use crate::decode::{DecodeStats, Decoder, Segment, TcpFlags};
use crate::event::{ConnectionEnd, Event, EventKind, FrameHeader, OpCode, TlsInfo, Upgrade};
use crate::log::{LogKind, ZeekOutput, ZeekRows};
use crate::session::SessionConfig;
use crate::sink::{Interest, Sink};
use crate::tcp::{
    CloseOrder, ConnMeta, ConnectionEvent, ConnectionHandler, FlowConfig, FlowStats, FlowTable,
};
use crate::tls::keylog::KeyLog;
use crate::tls::TlsLayer;
use crate::uid::ConnId;
use crate::Summary;

/// The capture clock ticks (connections may time out) when it enters a new step of this many
/// microseconds (100 ms).
pub const TICK_US: u64 = 100_000;
/// Most packets per round (one batch per worker).
pub const ROUND_PACKETS: usize = 512;
/// Most segment payload bytes per round.
pub const ROUND_BYTES: usize = 1 << 18;
/// Most rounds queued or being worked on at once.
pub const ROUNDS_IN_FLIGHT: usize = 4;
/// Most packets per round when the workers read the capture themselves and render no output
/// of their own ([`LocalOutput`]): only their few records are queued, so rounds can be
/// longer, with fewer hand-offs between threads. (With a local output, whose text is queued,
/// rounds are those of the dispatcher.)
pub const READ_ROUND_PACKETS: usize = 4096;
/// Most segment payload bytes per round when the workers read the capture themselves and
/// render no output.
pub const READ_ROUND_BYTES: usize = 1 << 20;
/// Most rounds of output a reading worker has queued when it renders no output.
pub const READ_ROUNDS_IN_FLIGHT: usize = 8;

/// Shards per worker when the workers read the capture in chunks and render output
/// ([`LocalOutput`]): each shard is a thread, and at most as many of them analyse at once as
/// there are workers. A shard that waits (its queue to the merger full, a batch not made yet)
/// gives its worker's CPU to another one, so the unequal load of the shards does not leave a
/// CPU idle. (Without a local output, each worker is one shard: its work is light enough that
/// more shards cost more than they balance.)
pub const SHARDS_PER_WORKER: usize = 2;
/// Most rounds of output each shard has queued when the workers read the capture in chunks and
/// render output.
pub const SHARD_ROUNDS_IN_FLIGHT: usize = 2;

/// Round limits (packets, payload bytes, rounds queued) of a run whose workers read the
/// capture themselves.
const fn read_rounds(local: bool) -> (usize, usize, usize) {
    if local {
        (ROUND_PACKETS, ROUND_BYTES, ROUNDS_IN_FLIGHT)
    } else {
        (READ_ROUND_PACKETS, READ_ROUND_BYTES, READ_ROUNDS_IN_FLIGHT)
    }
}

/// A writer into memory, for the sinks [`LocalOutput::make`] makes: what they write is taken
/// from it after each call. Cheap to clone (the clones share the buffer).
#[derive(Clone, Debug, Default)]
pub struct LocalWriter(Rc<RefCell<Vec<u8>>>);

impl LocalWriter {
    /// The buffer, to write into directly ([`crate::log::json::JsonLines::in_memory`]).
    pub(crate) fn buf(&self) -> core::cell::RefMut<'_, Vec<u8>> {
        self.0.borrow_mut()
    }

    fn len(&self) -> usize {
        self.0.borrow().len()
    }

    /// Swaps the buffer's contents with `v`.
    fn swap(&self, v: &mut Vec<u8>) {
        core::mem::swap(&mut *self.0.borrow_mut(), v);
    }
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Output rendered by the workers themselves ([`crate::Analyzer::run_with_local`]): each
/// worker makes its own sink with [`LocalOutput::make`] and gives it the events of its
/// connections; what the sinks write is merged in the order of one run and written to
/// [`LocalOutput::out`]. This takes the rendering (JSON events, say) off the merging thread.
///
/// The sink must write an event's output as it handles the event, and that output must depend
/// only on the event and the earlier events of its connection
/// ([`crate::log::json::JsonLines::in_memory`] and [`crate::log::json::JsonLines::unbuffered`]
/// qualify; Zeek logs, whose header names the first row's time, do not). Capture notes go to
/// one more sink made at the end.
pub struct LocalOutput<'a> {
    /// Makes a sink writing into the given writer (called in each worker's thread).
    pub make: &'a (dyn Fn(LocalWriter) -> Box<dyn Sink> + Sync),
    /// Where the merged output goes.
    pub out: &'a mut dyn Write,
    /// The first error writing to `out` (nothing more is written after it).
    pub error: Option<io::Error>,
}

impl core::fmt::Debug for LocalOutput<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalOutput")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl LocalOutput<'_> {
    /// Writes `b` to `out`, keeping the first error.
    pub(crate) fn write(&mut self, b: &[u8]) {
        if self.error.is_none() && !b.is_empty() {
            if let Err(e) = self.out.write_all(b) {
                self.error = Some(e);
            }
        }
    }

    /// Writes `slices` to `out` one after the other (vectored writes, no copy), keeping the
    /// first error.
    pub(crate) fn write_slices(&mut self, mut slices: &mut [IoSlice<'_>]) {
        while self.error.is_none() && !slices.is_empty() {
            match self.out.write_vectored(slices) {
                Ok(0) => self.error = Some(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.error = Some(e),
            }
        }
    }

    /// Gives `note` to a fresh sink and writes what it wrote.
    pub(crate) fn capture_note(&mut self, note: &crate::sink::CaptureNote) {
        let w = LocalWriter::default();
        let mut sink = (self.make)(w.clone());
        sink.capture_note(note);
        drop(sink);
        let mut v = Vec::new();
        w.swap(&mut v);
        self.write(&v);
    }
}

/// The main sink and a local one, in one thread (the one-worker path of
/// [`crate::Analyzer::run_with_local`]).
pub(crate) struct WithLocal<'a, 'o, S: ?Sized> {
    pub(crate) main: &'a mut S,
    pub(crate) local: Box<dyn Sink>,
    pub(crate) buf: LocalWriter,
    pub(crate) out: &'a mut LocalOutput<'o>,
}

impl<S: ?Sized> WithLocal<'_, '_, S> {
    /// Writes what the local sink wrote, when there is enough (or `all`).
    pub(crate) fn drain(&mut self, all: bool) {
        if all || self.buf.len() >= 1 << 16 {
            let mut v = Vec::new();
            self.buf.swap(&mut v);
            self.out.write(&v);
            v.clear();
            self.buf.swap(&mut v);
        }
    }
}

impl<S: Sink + ?Sized> Sink for WithLocal<'_, '_, S> {
    fn event(&mut self, ev: &Event<'_>) {
        self.main.event(ev);
        self.local.event(ev);
        self.drain(false);
    }

    fn connection_closed(&mut self, conn: &ConnMeta) {
        self.main.connection_closed(conn);
        self.local.connection_closed(conn);
        self.drain(false);
    }

    fn capture_note(&mut self, note: &crate::sink::CaptureNote) {
        self.main.capture_note(note);
    }
}

/// The capture clock: the latest segment time, and its ticks.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    now: Instant,
    step: Option<u64>,
}

impl Clock {
    /// A segment with time `ts` arrives: the clock's new time, and whether it ticks (before
    /// the segment is handled).
    pub(crate) fn segment(&mut self, ts: Instant) -> (Instant, bool) {
        if ts > self.now {
            self.now = ts;
        }
        let step = self.now.as_micros() / TICK_US;
        let tick = self.step != Some(step);
        self.step = Some(step);
        (self.now, tick)
    }

    /// The latest segment time.
    pub(crate) const fn now(&self) -> Instant {
        self.now
    }
}

/// Runs capture → decode → flow table like [`crate::reassemble`], with the expiry points of a
/// parallel run (connections time out at clock ticks only), so that one thread and N workers
/// give the same events.
pub(crate) fn reassemble_ticked<H: ConnectionHandler>(
    capture: &mut Capture,
    cfg: FlowConfig,
    handler: &mut H,
) -> Summary {
    let mut decoder = Decoder::new();
    let mut clock = Clock::default();
    let mut table: FlowTable<H::State> = FlowTable::new(cfg);
    let error = loop {
        // Key logs of pcapng Decryption Secrets Blocks, before the packets they serve.
        while let Some(text) = capture.take_secrets() {
            handler.secrets(&text);
        }
        match capture.next_packet() {
            Ok(Some(pkt)) => {
                let number = pkt.number;
                if let Some(seg) = decoder.decode(&pkt) {
                    let (now, tick) = clock.segment(seg.ts);
                    if tick {
                        table.advance_time(now, handler);
                    }
                    table.handle_packet(&seg, number, now, handler);
                }
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    table.finish_at(clock.now(), handler);
    Summary {
        capture: capture.stats(),
        decode: *decoder.stats(),
        flows: table.stats(),
        error,
    }
}

/// The worker of a connection: a hash of its two endpoints that does not depend on their
/// order.
fn shard(seg: &Segment<'_>, workers: usize) -> usize {
    fn end(a: core::net::SocketAddr) -> u64 {
        let ip = match a.ip() {
            core::net::IpAddr::V4(v4) => u64::from(u32::from(v4)),
            core::net::IpAddr::V6(v6) => {
                let b = u128::from(v6);
                (b as u64) ^ ((b >> 64) as u64).rotate_left(29)
            }
        };
        mix(ip ^ (u64::from(a.port()) << 48))
    }
    let h = mix(end(seg.src).wrapping_add(end(seg.dst)));
    (((h >> 32) * workers as u64) >> 32) as usize
}

/// SplitMix64's finaliser.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Where a record goes in the merged output: packet number (`u64::MAX` at the end), place
/// among the closes of a pass (`u64::MAX` for the packet's own segment), emission order.
type Key = (u64, u64, u32);

/// One segment, owned (its payload in the batch's byte buffer).
#[derive(Clone, Copy, Debug)]
struct SegRec {
    number: u64,
    now: Instant,
    ts: Instant,
    src: core::net::SocketAddr,
    dst: core::net::SocketAddr,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    missing: u32,
    /// Where the payload is: offset and length in the batch's bytes, or in its chunk when
    /// `shared`.
    payload: (u32, u32),
    shared: bool,
}

/// What a worker is given.
#[derive(Clone, Copy, Debug)]
enum Item {
    /// The clock ticked (before packet `number`).
    Tick { number: u64, now: Instant },
    /// A segment.
    Seg(SegRec),
    /// The key log text of a pcapng Decryption Secrets Block (a range of the batch's bytes),
    /// given to every worker before the packets that follow the block.
    Secrets(u32, u32),
}

/// A worker's share of one round.
#[derive(Debug, Default)]
struct InBatch {
    items: Vec<Item>,
    /// Payloads copied for this worker (all of them from the dispatcher; from a chunk, only
    /// those that are not in the chunk's bytes, such as reassembled IP fragments).
    bytes: Vec<u8>,
    /// The bytes of the chunk the batch was made from, shared by every worker's batch of it
    /// (read-only): a segment whose payload lies in them refers to them instead of being
    /// copied.
    chunk: Option<Arc<Vec<u8>>>,
    /// The latest segment time of the whole round (every shard), when the round's clock
    /// started from zero (a chunk read by a worker, see [`chunks`]); `Instant::ZERO` from the
    /// dispatcher, whose clock runs over the whole capture.
    max: Instant,
}

impl InBatch {
    /// A segment's payload: in the batch's bytes, or in its chunk's.
    fn payload(&self, s: &SegRec) -> &[u8] {
        let (at, len) = (s.payload.0 as usize, s.payload.1 as usize);
        let bytes = match (&self.chunk, s.shared) {
            (Some(chunk), true) => &chunk[..],
            _ => &self.bytes[..],
        };
        &bytes[at..at + len]
    }

    fn clear(&mut self) {
        self.items.clear();
        self.bytes.clear();
        self.chunk = None;
        self.max = Instant::ZERO;
    }

    /// Gives every worker's batch the key log text of a Decryption Secrets Block.
    fn push_secrets(batches: &mut [Self], text: &[u8]) {
        for b in batches {
            let at = b.bytes.len();
            b.bytes.extend_from_slice(text);
            b.items.push(Item::Secrets(at as u32, text.len() as u32));
        }
    }

    /// Puts segment `seg` of packet `number` in the batch of its worker, after a tick in every
    /// batch when `clock` ticks. A payload that lies in `shared` (the chunk the batches share,
    /// [`InBatch::chunk`]) is referred to by its place there; any other is copied into the
    /// batch. Returns the payload length. (The one place batches are built: the dispatcher and
    /// the chunk readers both call it.)
    fn push_segment(
        batches: &mut [Self],
        clock: &mut Clock,
        seg: &Segment<'_>,
        number: u64,
        shared: Option<&[u8]>,
    ) -> usize {
        let (now, tick) = clock.segment(seg.ts);
        if tick {
            for b in batches.iter_mut() {
                b.items.push(Item::Tick { number, now });
            }
        }
        let b = &mut batches[shard(seg, batches.len())];
        let (at, shared) = match shared.and_then(|c| place_in(c, seg.payload)) {
            Some(at) => (at, true),
            None => {
                let at = b.bytes.len();
                b.bytes.extend_from_slice(seg.payload);
                (at, false)
            }
        };
        b.items.push(Item::Seg(SegRec {
            number,
            now,
            ts: seg.ts,
            src: seg.src,
            dst: seg.dst,
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags,
            window: seg.window,
            missing: seg.missing,
            payload: (at as u32, seg.payload.len() as u32),
            shared,
        }));
        seg.payload.len()
    }
}

/// Where `part` starts in `whole`, if it is a part of it (compared by address: the payloads
/// the decoder returns are slices of the packet's bytes, or of its buffer for reassembled
/// IP fragments).
fn place_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len()).then_some(start)
}

/// The capture clock as a worker resolves it from its batches: a batch's clock values are
/// relative to the latest time of the rounds before it (`base`), and a tick in a batch is a
/// tick of the capture clock only if the resolved time enters a new step. For the
/// dispatcher's batches (`base` stays zero, every tick enters a new step) this changes
/// nothing; for chunks read by the workers it gives exactly the dispatcher's clock.
#[derive(Debug, Default)]
struct WorkerClock {
    base: Instant,
    step: Option<u64>,
}

/// Handles one batch in a worker: ticks, secrets and the segments of its shard.
fn analyse(
    table: &mut FlowTable<Slot>,
    h: &mut WorkerHandler,
    clock: &mut WorkerClock,
    input: &InBatch,
) {
    let mut ahead = prefetch::Ahead::default();
    for (i, item) in input.items.iter().enumerate() {
        match *item {
            Item::Tick { number, now } => {
                let now = clock.base.max(now);
                let step = now.as_micros() / TICK_US;
                if clock.step != Some(step) {
                    clock.step = Some(step);
                    h.rec.set(number, 0);
                    table.advance_time(now, h);
                }
            }
            Item::Secrets(at, len) => {
                let (at, len) = (at as usize, len as usize);
                h.tls.add_secrets(&input.bytes[at..at + len]);
            }
            Item::Seg(s) => {
                ahead.prefetch(input, i);
                h.rec.set(s.number, u64::MAX);
                let seg = Segment {
                    ts: s.ts,
                    src: s.src,
                    dst: s.dst,
                    seq: s.seq,
                    ack: s.ack,
                    flags: s.flags,
                    window: s.window,
                    payload: input.payload(&s),
                    missing: s.missing,
                };
                table.handle_packet(&seg, s.number, clock.base.max(s.now), h);
            }
        }
    }
    clock.base = clock.base.max(input.max);
}

/// What one event becomes in a worker's output; byte slices are ranges of the batch's bytes.
#[derive(Debug)]
enum RecKind {
    /// A connection opened (the merger numbers it).
    Open(Box<ConnMeta>, bool),
    /// The latest `Data` time (the last one of a batch; earlier ones are overwritten).
    DataTs,
    /// The connection closed.
    Closed,
    /// The upgrade and the TLS connection it came over (only when the main sink reads it).
    Established(Box<Upgrade>, Option<Box<TlsInfo>>),
    /// A TLS report, and whether the connection's `101` is one the client rejects (then it
    /// is not counted; the merger counts TLS reports, whose SNI table keeps the first names
    /// in the merged order).
    Tls(Box<TlsInfo>, bool),
    Frame {
        header: FrameHeader,
        header_bytes: Range<usize>,
    },
    FrameData {
        data: Range<usize>,
        info: ChunkInfo,
    },
    Reset(u32),
    ConnectionEnd(ConnectionEnd),
    MessageData {
        data: Range<usize>,
        opcode: OpCode,
        message_end: bool,
    },
    Close {
        status: u16,
        reason: Range<usize>,
    },
    Message {
        opcode: OpCode,
        len: u64,
        sha256: Option<[u8; 32]>,
    },
    Anomaly {
        name: &'static str,
        zeek_weird: Option<&'static str>,
        detail: Range<usize>,
    },
}

#[derive(Debug)]
struct Rec {
    key: Key,
    /// The worker's id of the connection.
    conn: ConnId,
    /// The HTTP/2 stream of a WebSocket over HTTP/2 ([`ConnMeta::stream_id`]).
    stream: Option<u32>,
    ts: Instant,
    dir: Direction,
    kind: RecKind,
}

/// A worker's output for one round.
#[derive(Debug, Default)]
struct OutBatch {
    recs: Vec<Rec>,
    bytes: Vec<u8>,
    /// What the worker's local sink wrote, and where each call's output ends.
    text: Vec<u8>,
    pieces: Vec<(Key, usize)>,
    /// The Zeek log rows the worker rendered ([`WorkerSetup::zeek`]), one after the other.
    rows: Vec<u8>,
    /// Each row of `rows`: its key, log, time (microseconds) and where it ends.
    row_ends: Vec<RowEnd>,
}

/// Where a Zeek log row rendered by a worker goes, and where it ends in [`OutBatch::rows`].
#[derive(Clone, Copy, Debug)]
struct RowEnd {
    key: Key,
    log: LogKind,
    ts: u64,
    end: usize,
}

impl OutBatch {
    fn clear(&mut self) {
        self.recs.clear();
        self.bytes.clear();
        self.text.clear();
        self.pieces.clear();
        self.rows.clear();
        self.row_ends.clear();
    }

    fn put(&mut self, b: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        start..self.bytes.len()
    }
}

enum ToWorker {
    Round { input: InBatch, spare: OutBatch },
    Finish { now: Instant, spare: OutBatch },
}

struct FromWorker {
    out: OutBatch,
    /// The input buffers, for reuse.
    input: InBatch,
    /// With the last batch: the worker's table counters.
    flows: Option<FlowStats>,
    /// With the last batch: the worker's event counts ([`Stats::add_worker_counts`]).
    stats: Option<Box<Stats>>,
}

impl FromWorker {
    /// A round's output, with no input buffers to hand back.
    fn round(out: OutBatch) -> Self {
        Self {
            out,
            input: InBatch::default(),
            flows: None,
            stats: None,
        }
    }

    /// A worker's last output: its recorder's final batch with its table's counters (`flows`),
    /// its event counts, and what its TLS layer says about the key log lines of the run.
    fn last(flows: FlowStats, rec: &mut Recorder, tls: &TlsLayer) -> Self {
        rec.stats.tls.note_key_log(tls);
        Self {
            out: rec.flush(),
            input: InBatch::default(),
            flows: Some(flows),
            stats: Some(Box::new(core::mem::take(&mut rec.stats))),
        }
    }
}

/// Records a worker's events with their keys.
struct Recorder {
    out: OutBatch,
    at: (u64, u64),
    seq: u32,
    /// Copy `FrameData`/`MessageData` bytes for the main sink.
    payload: bool,
    /// The worker's local sink and its buffer.
    local: Option<(Box<dyn Sink>, LocalWriter)>,
    /// Renders the rows of the Zeek logs, when the workers do.
    zeek: Option<ZeekRows>,
    /// The last `Data` of the batch: its place in `recs`, key and time.
    data_ts: Option<(usize, Key, Instant)>,
    /// The events the main sink reads; `established` and `tls` events are always recorded.
    interest: Interest,
    /// The counts of the worker's events (all but `tls` ones, which the merger counts).
    stats: Stats,
    /// The connection of the current event has a `101` the client rejects.
    rejected: bool,
}

impl Recorder {
    fn set(&mut self, number: u64, sub: u64) {
        self.at = (number, sub);
        self.seq = 0;
    }

    fn key(&mut self) -> Key {
        let k = (self.at.0, self.at.1, self.seq);
        self.seq += 1;
        k
    }

    fn push(&mut self, conn: &ConnMeta, ts: Instant, dir: Direction, kind: RecKind) -> Key {
        let key = self.key();
        self.out.recs.push(Rec {
            key,
            conn: conn.id,
            stream: conn.stream_id,
            ts,
            dir,
            kind,
        });
        key
    }

    /// After a call of the local sink: its output, if any, is the piece at `key`.
    fn piece(&mut self, key: Key) {
        if let Some((_, w)) = &self.local {
            let len = w.len();
            if len > self.out.pieces.last().map_or(0, |p| p.1) {
                self.out.pieces.push((key, len));
            }
        }
    }

    /// Ends a batch: the last `Data` time goes in its place.
    fn flush(&mut self) -> OutBatch {
        if let Some((at, key, ts)) = self.data_ts.take() {
            self.out.recs.insert(
                at,
                Rec {
                    key,
                    conn: ConnId(0),
                    stream: None,
                    ts,
                    dir: Direction::ClientToServer,
                    kind: RecKind::DataTs,
                },
            );
        }
        let mut out = core::mem::take(&mut self.out);
        if let Some((_, w)) = &self.local {
            w.swap(&mut out.text);
        }
        out
    }

    /// Starts a batch with the buffers of `spare` (emptied here: what it held is freed by the
    /// thread that made it).
    fn start(&mut self, mut spare: OutBatch) {
        spare.clear();
        if let Some((_, w)) = &self.local {
            w.swap(&mut spare.text);
        }
        self.out = spare;
    }
}

impl Sink for Recorder {
    fn event(&mut self, ev: &Event<'_>) {
        if !matches!(ev.kind, EventKind::Tls(_)) {
            self.stats.count_in_connection(ev, &mut self.rejected);
        }
        let key = self.key();
        if matches!(ev.kind, EventKind::Tls(_)) || self.interest.wants(&ev.kind) {
            self.record(key, ev);
        }
        if let Some(z) = self.zeek {
            let o = &mut self.out;
            // A row that cannot be rendered (JSON style only) is left out; nothing was added.
            if let Ok(Some((log, ts))) = z.render(ev, &mut o.rows) {
                o.row_ends.push(RowEnd {
                    key,
                    log,
                    ts,
                    end: o.rows.len(),
                });
            }
        }
        if let Some((l, _)) = &mut self.local {
            l.event(ev);
            self.piece(key);
        }
    }

    /// The end of a WebSocket stream of an HTTP/2 connection (the connection's own end is
    /// recorded by the handler).
    fn connection_closed(&mut self, conn: &ConnMeta) {
        if conn.stream_id.is_none() {
            return;
        }
        let key = self.push(
            conn,
            Instant::ZERO,
            Direction::ClientToServer,
            RecKind::Closed,
        );
        if let Some((l, _)) = &mut self.local {
            l.connection_closed(conn);
            self.piece(key);
        }
    }
}

impl Recorder {
    /// Records `ev` at `key` for the merger.
    fn record(&mut self, key: Key, ev: &Event<'_>) {
        let o = &mut self.out;
        let payload = self.payload;
        let put_data = |o: &mut OutBatch, b: &[u8]| if payload { o.put(b) } else { 0..0 };
        let kind = match &ev.kind {
            EventKind::Established(u, tls) => {
                RecKind::Established(Box::new((*u).clone()), tls.map(|t| Box::new(t.clone())))
            }
            EventKind::Tls(info) => RecKind::Tls(Box::new((*info).clone()), self.rejected),
            EventKind::Frame {
                header,
                header_bytes,
            } => RecKind::Frame {
                header: *header,
                header_bytes: o.put(header_bytes),
            },
            EventKind::FrameData { data, info } => RecKind::FrameData {
                data: put_data(o, data),
                info: *info,
            },
            EventKind::Reset { error_code } => RecKind::Reset(*error_code),
            EventKind::ConnectionEnd(end) => RecKind::ConnectionEnd(*end),
            EventKind::MessageData {
                data,
                opcode,
                message_end,
            } => RecKind::MessageData {
                data: put_data(o, data),
                opcode: *opcode,
                message_end: *message_end,
            },
            EventKind::Close { status, reason } => RecKind::Close {
                status: *status,
                reason: o.put(reason),
            },
            EventKind::Message {
                opcode,
                len,
                sha256,
            } => RecKind::Message {
                opcode: *opcode,
                len: *len,
                sha256: *sha256,
            },
            EventKind::Anomaly {
                name,
                zeek_weird,
                detail,
            } => RecKind::Anomaly {
                name,
                zeek_weird: *zeek_weird,
                detail: o.put(detail.as_bytes()),
            },
        };
        self.out.recs.push(Rec {
            key,
            conn: ev.conn.id,
            stream: ev.conn.stream_id,
            ts: ev.ts,
            dir: ev.dir,
            kind,
        });
    }
}

/// The connection handler of a worker.
struct WorkerHandler {
    cfg: SessionConfig,
    rec: Recorder,
    /// The key log, and the Decryption Secrets Blocks as the reader forwards them.
    tls: TlsLayer,
}

impl ConnectionHandler for WorkerHandler {
    type State = Slot;

    fn on_event(&mut self, state: &mut Slot, conn: &ConnMeta, event: ConnectionEvent<'_>) {
        self.rec.rejected = state.rejected();
        match event {
            ConnectionEvent::Open { ts, mid_stream, .. } => {
                self.rec.push(
                    conn,
                    ts,
                    Direction::ClientToServer,
                    RecKind::Open(Box::new(*conn), mid_stream),
                );
            }
            ConnectionEvent::Closed { ts, reason } => {
                state.closed(&self.tls, self.cfg, conn, ts, reason, &mut self.rec);
                let key = self
                    .rec
                    .push(conn, ts, Direction::ClientToServer, RecKind::Closed);
                if let Some((l, _)) = &mut self.rec.local {
                    l.connection_closed(conn);
                    self.rec.piece(key);
                }
            }
            ConnectionEvent::Data { ts, .. } => {
                let key = self.rec.key();
                self.rec.data_ts = Some((self.rec.out.recs.len(), key, ts));
                session_event(self.cfg, &self.tls, state, conn, event, &mut self.rec);
            }
            _ => session_event(self.cfg, &self.tls, state, conn, event, &mut self.rec),
        }
    }

    fn close_order(&mut self, _conn: &ConnMeta, order: CloseOrder) {
        let (number, sub) = match order {
            CloseOrder::Expiry {
                active,
                last_packet,
            } => (self.rec.at.0, (u64::from(active) << 62) | last_packet),
            CloseOrder::CaptureEnd { first_packet } => (u64::MAX, first_packet),
        };
        self.rec.set(number, sub);
    }
}

/// What a worker is set up with.
#[derive(Clone, Copy)]
struct WorkerSetup<'a> {
    flow: FlowConfig,
    session: SessionConfig,
    payload: bool,
    /// What the main sink reads ([`Sink::interest`]).
    interest: Interest,
    make: Option<&'a (dyn Fn(LocalWriter) -> Box<dyn Sink> + Sync)>,
    /// Renders the Zeek log rows in the workers ([`ZeekOutput`]).
    zeek: Option<ZeekRows>,
    keys: &'a KeyLog,
}

impl WorkerSetup<'_> {
    /// A worker's connection handler (its local sink made in the calling thread).
    fn handler(&self) -> WorkerHandler {
        let local = self.make.map(|make| {
            let w = LocalWriter::default();
            (make(w.clone()), w)
        });
        WorkerHandler {
            cfg: self.session,
            tls: TlsLayer::new(self.keys.clone()),
            rec: Recorder {
                out: OutBatch::default(),
                at: (0, 0),
                seq: 0,
                payload: self.payload,
                local,
                zeek: self.zeek,
                data_ts: None,
                interest: self.interest,
                stats: Stats::default(),
                rejected: false,
            },
        }
    }
}

fn worker(setup: WorkerSetup<'_>, rx: Receiver<ToWorker>, tx: SyncSender<FromWorker>) {
    let mut table: FlowTable<Slot> = FlowTable::new(setup.flow);
    let mut h = setup.handler();
    let mut clock = WorkerClock::default();
    for msg in rx {
        match msg {
            ToWorker::Round { mut input, spare } => {
                h.rec.start(spare);
                analyse(&mut table, &mut h, &mut clock, &input);
                input.clear();
                let out = h.rec.flush();
                if tx
                    .send(FromWorker {
                        out,
                        input,
                        flows: None,
                        stats: None,
                    })
                    .is_err()
                {
                    return;
                }
            }
            ToWorker::Finish { now, spare } => {
                h.rec.start(spare);
                h.rec.set(u64::MAX, 0);
                table.finish_at(now, &mut h);
                let _ = tx.send(FromWorker::last(table.stats(), &mut h.rec, &h.tls));
                return;
            }
        }
    }
}

/// What a reading worker found in the capture it read (the same for every worker).
struct ReadEnd {
    capture: CaptureStats,
    decode: DecodeStats,
    error: Option<CaptureError>,
    packets: u64,
}

/// A worker that reads the whole capture itself (a [`Snapshot`] of regular files): it decodes
/// every packet, keeps the capture clock and the round boundaries as the dispatcher of
/// [`run`] would, handles the segments of its own shard (`me` of `n`) and sends its output
/// round by round. No packet crosses threads; only the output does.
fn reading_worker(
    setup: WorkerSetup<'_>,
    me: usize,
    n: usize,
    mut capture: Capture,
    spares: Receiver<OutBatch>,
    tx: SyncSender<FromWorker>,
) -> ReadEnd {
    let mut table: FlowTable<Slot> = FlowTable::new(setup.flow);
    let mut h = setup.handler();
    let (max_packets, max_bytes, _) = read_rounds(setup.make.is_some());
    let mut decoder = Decoder::new();
    let mut clock = Clock::default();
    let (mut packets, mut bytes) = (0usize, 0usize);
    let error = loop {
        while let Some(text) = capture.take_secrets() {
            h.tls.add_secrets(&text);
        }
        let pkt = match capture.next_packet() {
            Ok(Some(pkt)) => pkt,
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        let number = pkt.number;
        if let Some(seg) = decoder.decode(&pkt) {
            let (now, tick) = clock.segment(seg.ts);
            if tick {
                h.rec.set(number, 0);
                table.advance_time(now, &mut h);
            }
            if shard(&seg, n) == me {
                h.rec.set(number, u64::MAX);
                table.handle_packet(&seg, number, now, &mut h);
            }
            packets += 1;
            bytes += seg.payload.len();
        }
        if packets >= max_packets || bytes >= max_bytes {
            (packets, bytes) = (0, 0);
            let sent = tx.send(FromWorker::round(h.rec.flush()));
            if sent.is_err() {
                break None;
            }
            h.rec.start(spares.try_recv().unwrap_or_default());
        }
    };
    // The last partial round and the end of the capture, in one batch (the end's keys come
    // after every packet's).
    h.rec.set(u64::MAX, 0);
    table.finish_at(clock.now(), &mut h);
    let _ = tx.send(FromWorker::last(table.stats(), &mut h.rec, &h.tls));
    ReadEnd {
        capture: capture.stats(),
        decode: *decoder.stats(),
        error,
        packets: capture.packets_read(),
    }
}

/// [`run`] over a [`Snapshot`]: every worker reads the capture itself
/// ([`reading_worker`]); the calling thread only merges.
fn run_reading<S: Sink + ?Sized>(
    setup: WorkerSetup<'_>,
    n: usize,
    snapshot: &Snapshot,
    merger: &mut Merger<'_, '_, S>,
) -> (FlowStats, ReadEnd) {
    let mut flows = FlowStats::default();
    let mut ends = merge_rounds(
        n,
        read_rounds(setup.make.is_some()).2,
        merger,
        &mut flows,
        |me, spares, tx| reading_worker(setup, me, n, snapshot.open(), spares, tx),
    );
    (flows, ends.swap_remove(0))
}

/// Runs `n` workers (`work(me, spares, out)`), each sending its output round by round (at
/// most `queued` rounds ahead; the last round with its counters), and merges the rounds in
/// order as they come. Returns what the workers returned, in order. A worker's panic is
/// passed on.
fn merge_rounds<S, T, F>(
    n: usize,
    queued: usize,
    merger: &mut Merger<'_, '_, S>,
    flows: &mut FlowStats,
    work: F,
) -> Vec<T>
where
    S: Sink + ?Sized,
    T: Send,
    F: Fn(usize, Receiver<OutBatch>, SyncSender<FromWorker>) -> T + Sync,
{
    std::thread::scope(|scope| {
        let work = &work;
        let mut from = Vec::with_capacity(n);
        let mut back = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for me in 0..n {
            let (otx, orx) = sync_channel::<FromWorker>(queued);
            let (btx, brx) = std::sync::mpsc::channel::<OutBatch>();
            handles.push(scope.spawn(move || work(me, brx, otx)));
            from.push(orx);
            back.push(btx);
        }
        let mut outs: Vec<OutBatch> = Vec::with_capacity(n);
        let mut last = false;
        while !last {
            outs.clear();
            for rx in &from {
                let Ok(m) = rx.recv() else {
                    last = true;
                    break;
                };
                if let Some(f) = m.flows {
                    flows.add(&f);
                    last = true;
                }
                if let Some(st) = m.stats {
                    merger.stats.add_worker_counts(&st);
                }
                outs.push(m.out);
            }
            if outs.len() < n {
                // A worker is gone (it panicked: the scope passes the panic on).
                break;
            }
            merger.round(&outs);
            // The worker empties the batch when it reuses it (`Recorder::start`).
            for (o, tx) in outs.drain(..).zip(&back) {
                let _ = tx.send(o);
            }
        }
        drop(from);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Delivers the merged records to the sink, numbering connections as one table would.
struct Merger<'s, 'l, S: ?Sized> {
    sink: &'s mut S,
    local: Option<&'s mut LocalOutput<'l>>,
    /// The Zeek logs whose rows the workers render.
    logs: Option<&'s mut dyn ZeekOutput>,
    stats: Stats,
    /// What the sink reads (`established` and `tls` records come for the counts).
    interest: Interest,
    next_id: u64,
    /// (worker, worker's id) → the connection as delivered.
    conns: hashbrown::HashMap<(usize, ConnId), ConnMeta>,
}

impl<S: Sink + ?Sized> Merger<'_, '_, S> {
    fn deliver(&mut self, w: usize, rec: &Rec, bytes: &[u8]) {
        let b = |r: &Range<usize>| &bytes[r.clone()];
        let kind = match &rec.kind {
            RecKind::Open(meta, mid_stream) => {
                self.stats.connections += 1;
                if *mid_stream {
                    self.stats.mid_stream += 1;
                }
                self.stats.first_ts.get_or_insert(rec.ts);
                self.next_id += 1;
                let id = ConnId(self.next_id);
                let mut m = **meta;
                m.id = id;
                self.conns.insert((w, rec.conn), m);
                return;
            }
            RecKind::DataTs => {
                self.stats.last_ts = Some(rec.ts);
                return;
            }
            RecKind::Closed if rec.stream.is_some() => {
                if let (Some(m), Some(s)) = (self.conns.get(&(w, rec.conn)), rec.stream) {
                    self.sink.connection_closed(&m.for_stream(s));
                }
                return;
            }
            RecKind::Closed => {
                let ts = rec.ts;
                self.stats.last_ts = Some(self.stats.last_ts.map_or(ts, |t| t.max(ts)));
                if let Some(m) = self.conns.remove(&(w, rec.conn)) {
                    self.sink.connection_closed(&m);
                }
                return;
            }
            RecKind::Established(u, tls) => EventKind::Established(u, tls.as_deref()),
            RecKind::Tls(info, _) => EventKind::Tls(info),
            RecKind::Frame {
                header,
                header_bytes,
            } => EventKind::Frame {
                header: *header,
                header_bytes: b(header_bytes),
            },
            RecKind::FrameData { data, info } => EventKind::FrameData {
                data: b(data),
                info: *info,
            },
            RecKind::Reset(error_code) => EventKind::Reset {
                error_code: *error_code,
            },
            RecKind::ConnectionEnd(end) => EventKind::ConnectionEnd(*end),
            RecKind::MessageData {
                data,
                opcode,
                message_end,
            } => EventKind::MessageData {
                data: b(data),
                opcode: *opcode,
                message_end: *message_end,
            },
            RecKind::Close { status, reason } => EventKind::Close {
                status: *status,
                reason: b(reason),
            },
            RecKind::Message {
                opcode,
                len,
                sha256,
            } => EventKind::Message {
                opcode: *opcode,
                len: *len,
                sha256: *sha256,
            },
            RecKind::Anomaly {
                name,
                zeek_weird,
                detail,
            } => EventKind::Anomaly {
                name,
                zeek_weird: *zeek_weird,
                detail: Cow::Borrowed(core::str::from_utf8(b(detail)).unwrap_or("")),
            },
        };
        let Some(conn) = self.conns.get(&(w, rec.conn)) else {
            return;
        };
        let stream_conn;
        let conn = match rec.stream {
            Some(s) => {
                stream_conn = conn.for_stream(s);
                &stream_conn
            }
            None => conn,
        };
        let ev = Event {
            ts: rec.ts,
            conn,
            dir: rec.dir,
            kind,
        };
        // The workers count everything else (the TLS counters keep the first names seen in
        // the merged order).
        if let RecKind::Tls(_, rejected) = &rec.kind {
            self.stats.count_in_connection(&ev, &mut { *rejected });
        }
        if self.interest.wants(&ev.kind) {
            self.sink.event(&ev);
        }
    }

    /// Merges one round (one batch per worker, each in key order).
    fn round(&mut self, outs: &[OutBatch]) {
        if let Some(logs) = self.logs.as_deref_mut() {
            let mut at = vec![0usize; outs.len()];
            while let Some(w) = first_next(outs, &at, |o, i| o.row_ends.get(i).map(|r| r.key)) {
                let o = &outs[w];
                let start = if at[w] == 0 {
                    0
                } else {
                    o.row_ends[at[w] - 1].end
                };
                let r = o.row_ends[at[w]];
                logs.put_row(r.log, r.ts, &o.rows[start..r.end]);
                at[w] += 1;
            }
        }
        if let Some(local) = self.local.as_deref_mut() {
            // The round's output in key order, written straight from the workers' text (no
            // copy): one slice per run of consecutive pieces of one worker.
            let mut at = vec![0usize; outs.len()];
            let mut slices: Vec<IoSlice<'_>> = Vec::new();
            let mut run: Option<(usize, usize, usize)> = None;
            while let Some(w) = first_next(outs, &at, |o, i| o.pieces.get(i).map(|p| p.0)) {
                let o = &outs[w];
                let start = if at[w] == 0 { 0 } else { o.pieces[at[w] - 1].1 };
                let end = o.pieces[at[w]].1;
                match &mut run {
                    // A worker's pieces follow each other in its text.
                    Some((rw, _, re)) if *rw == w => *re = end,
                    _ => {
                        if let Some((rw, rs, re)) = run.replace((w, start, end)) {
                            slices.push(IoSlice::new(&outs[rw].text[rs..re]));
                        }
                    }
                }
                at[w] += 1;
            }
            if let Some((rw, rs, re)) = run {
                slices.push(IoSlice::new(&outs[rw].text[rs..re]));
            }
            local.write_slices(&mut slices);
        }
        let mut at = vec![0usize; outs.len()];
        while let Some(w) = first_next(outs, &at, |o, i| o.recs.get(i).map(|r| r.key)) {
            self.deliver(w, &outs[w].recs[at[w]], &outs[w].bytes);
            at[w] += 1;
        }
    }
}

/// The worker whose next item of a round (its `at[w]`-th, whose key `key` gives) comes first in
/// the merged order; on equal keys the lowest worker. `None` once every worker's items are
/// taken.
fn first_next(
    outs: &[OutBatch],
    at: &[usize],
    key: impl Fn(&OutBatch, usize) -> Option<Key>,
) -> Option<usize> {
    let mut best: Option<(usize, Key)> = None;
    for (w, o) in outs.iter().enumerate() {
        if let Some(k) = key(o, at[w]) {
            if best.is_none_or(|(_, b)| k < b) {
                best = Some((w, k));
            }
        }
    }
    best.map(|(w, _)| w)
}

/// Runs a capture through `workers` worker threads (at least 2); see the [module docs](self).
/// Returns the event statistics (capture, decode and flow counters are in the summary).
pub(crate) fn run<S: Sink + ?Sized>(
    analyzer: &crate::Analyzer,
    capture: &mut Capture,
    sink: &mut S,
    local: Option<&mut LocalOutput<'_>>,
    logs: Option<&mut dyn ZeekOutput>,
    payload: bool,
) -> (Stats, Summary) {
    let cfg = analyzer.config();
    let (flow, session, workers) = (cfg.flow, cfg.session, analyzer.worker_count());
    let keys = analyzer.keys();
    let n = workers.max(1);
    let interest = sink.interest();
    let setup = WorkerSetup {
        flow,
        session,
        payload,
        interest,
        make: local.as_ref().map(|l| l.make),
        zeek: logs.as_ref().map(|l| l.renderer()),
        keys,
    };
    let mut merger = Merger {
        sink,
        local,
        logs: match logs {
            Some(l) => Some(l),
            None => None,
        },
        stats: Stats::default(),
        interest,
        next_id: 0,
        conns: hashbrown::HashMap::new(),
    };
    if let Some(snapshot) = capture.snapshot() {
        let plan = match analyzer.chunk_len() {
            Some(len) if cfg!(unix) => chunks::Plan::with_chunk(&snapshot, len),
            _ => chunks::Plan::new(&snapshot, setup.make.is_some()),
        };
        let (flows, end) = match plan {
            Some(plan) => {
                let shards = if setup.make.is_some() {
                    n * SHARDS_PER_WORKER
                } else {
                    n
                };
                chunks::run(setup, n, shards, &plan, &snapshot, &mut merger)
            }
            None => run_reading(setup, n, &snapshot, &mut merger),
        };
        capture.read_elsewhere(end.capture, end.packets);
        let summary = Summary {
            capture: end.capture,
            decode: end.decode,
            flows,
            error: end.error,
        };
        return (merger.stats, summary);
    }
    let mut decoder = Decoder::new();
    let mut clock = Clock::default();
    let mut flows = FlowStats::default();
    let error: Option<CaptureError> = std::thread::scope(|scope| {
        let mut to = Vec::with_capacity(n);
        let mut from = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = sync_channel::<ToWorker>(ROUNDS_IN_FLIGHT);
            let (otx, orx) = sync_channel::<FromWorker>(ROUNDS_IN_FLIGHT);
            scope.spawn(move || worker(setup, rx, otx));
            to.push(tx);
            from.push(orx);
        }
        let mut batches: Vec<InBatch> = (0..n).map(|_| InBatch::default()).collect();
        let mut in_pool: Vec<InBatch> = Vec::new();
        let mut out_pool: Vec<OutBatch> = Vec::new();
        let mut outs: Vec<OutBatch> = Vec::with_capacity(n);
        let mut in_flight = 0usize;
        let (mut packets, mut bytes) = (0usize, 0usize);

        // Receives and merges the oldest round; false if a worker is gone.
        let mut merge_one = |merger: &mut Merger<'_, '_, S>,
                             in_pool: &mut Vec<InBatch>,
                             out_pool: &mut Vec<OutBatch>,
                             flows: &mut FlowStats|
         -> bool {
            outs.clear();
            for rx in &from {
                let Ok(m) = rx.recv() else { return false };
                in_pool.push(m.input);
                if let Some(f) = m.flows {
                    flows.add(&f);
                }
                if let Some(st) = m.stats {
                    merger.stats.add_worker_counts(&st);
                }
                outs.push(m.out);
            }
            merger.round(&outs);
            for mut o in outs.drain(..) {
                o.clear();
                out_pool.push(o);
            }
            true
        };

        let error = loop {
            // Key logs of pcapng Decryption Secrets Blocks go to every worker, before the
            // packets that follow them.
            while let Some(text) = capture.take_secrets() {
                InBatch::push_secrets(&mut batches, &text);
            }
            let pkt = match capture.next_packet() {
                Ok(Some(pkt)) => pkt,
                Ok(None) => break None,
                Err(e) => break Some(e),
            };
            let number = pkt.number;
            if let Some(seg) = decoder.decode(&pkt) {
                bytes += InBatch::push_segment(&mut batches, &mut clock, &seg, number, None);
                packets += 1;
            }
            if packets >= ROUND_PACKETS || bytes >= ROUND_BYTES {
                (packets, bytes) = (0, 0);
                for (w, tx) in to.iter().enumerate() {
                    let input =
                        core::mem::replace(&mut batches[w], in_pool.pop().unwrap_or_default());
                    let spare = out_pool.pop().unwrap_or_default();
                    let _ = tx.send(ToWorker::Round { input, spare });
                }
                in_flight += 1;
                while in_flight >= ROUNDS_IN_FLIGHT {
                    in_flight -= 1;
                    merge_one(&mut merger, &mut in_pool, &mut out_pool, &mut flows);
                }
            }
        };
        // The last partial round, then the end of the capture.
        for (w, tx) in to.iter().enumerate() {
            let input = core::mem::take(&mut batches[w]);
            let spare = out_pool.pop().unwrap_or_default();
            let _ = tx.send(ToWorker::Round { input, spare });
        }
        in_flight += 1;
        let now = clock.now();
        for tx in &to {
            let spare = out_pool.pop().unwrap_or_default();
            let _ = tx.send(ToWorker::Finish { now, spare });
        }
        in_flight += 1;
        drop(to);
        while in_flight > 0 {
            in_flight -= 1;
            if !merge_one(&mut merger, &mut in_pool, &mut out_pool, &mut flows) {
                break;
            }
        }
        error
    });
    let summary = Summary {
        capture: capture.stats(),
        decode: *decoder.stats(),
        flows,
        error,
    };
    (merger.stats, summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(payload: &[u8], port: u16) -> Segment<'_> {
        Segment {
            ts: Instant::from_micros(1_000),
            src: core::net::SocketAddr::from(([10, 0, 0, 1], port)),
            dst: core::net::SocketAddr::from(([10, 0, 0, 2], 80)),
            seq: 1,
            ack: 0,
            flags: TcpFlags::ACK,
            window: 100,
            payload,
            missing: 0,
        }
    }

    /// The segments of a batch: (payload place, shared).
    fn places(b: &InBatch) -> Vec<((u32, u32), bool)> {
        b.items
            .iter()
            .filter_map(|i| match i {
                Item::Seg(s) => Some((s.payload, s.shared)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn payloads_in_the_shared_chunk_are_referred_to_and_others_copied() {
        let chunk: Vec<u8> = (0..=255).cycle().take(4000).collect();
        let reassembled = vec![9u8; 30];
        let mut batches = vec![InBatch::default()];
        let mut clock = Clock::default();
        let segs = [
            seg(&chunk[100..300], 1),
            seg(&reassembled, 2),
            seg(&chunk[3990..], 3),
            seg(&chunk[..0], 4),
        ];
        for (i, s) in segs.iter().enumerate() {
            InBatch::push_segment(&mut batches, &mut clock, s, i as u64 + 1, Some(&chunk));
        }
        let b = &batches[0];
        // Only the payload outside the chunk was copied.
        assert_eq!(b.bytes, reassembled);
        assert_eq!(
            places(b),
            [
                ((100, 200), true),
                ((0, 30), false),
                ((3990, 10), true),
                ((0, 0), true)
            ]
        );
        // A worker reads the same payloads back.
        let mut b = core::mem::take(&mut batches[0]);
        b.chunk = Some(Arc::new(chunk.clone()));
        for (item, s) in b
            .items
            .iter()
            .filter(|i| matches!(i, Item::Seg(_)))
            .zip(&segs)
        {
            let Item::Seg(r) = item else { unreachable!() };
            assert_eq!(b.payload(r), s.payload);
        }
        // The dispatcher (no shared chunk) copies every payload.
        let mut batches = vec![InBatch::default()];
        for (i, s) in segs.iter().enumerate() {
            InBatch::push_segment(&mut batches, &mut Clock::default(), s, i as u64 + 1, None);
        }
        assert_eq!(batches[0].bytes.len(), 200 + 30 + 10);
        assert!(places(&batches[0]).iter().all(|p| !p.1));
    }

    #[test]
    fn a_slice_is_placed_in_a_buffer_only_when_it_lies_inside() {
        let whole = vec![0u8; 64];
        let other = [0u8; 64];
        assert_eq!(place_in(&whole, &whole[10..20]), Some(10));
        assert_eq!(place_in(&whole, &whole[..]), Some(0));
        assert_eq!(place_in(&whole, &whole[64..]), Some(64));
        assert_eq!(place_in(&whole[..32], &whole[30..40]), None);
        assert_eq!(place_in(&whole[10..], &whole[..5]), None);
        // `other` lies wholly before or after `whole` in memory: never inside it.
        assert_eq!(place_in(&whole, &other[..]), None);
    }
}
