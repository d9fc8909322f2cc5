//! Workers that take turns reading: a parallel run over classic pcap and pcapng files in
//! which every byte is read and decoded once, by one worker.
//!
//! The files are cut into chunks at packet-record (pcapng: block) boundaries: chunk `c` holds
//! the records (blocks) that start in its nominal byte range (about half the capture reader's
//! buffer, a quarter when the workers render output). Below, a "worker" is one shard's
//! thread, and `N` the number of shards ([`super::SHARDS_PER_WORKER`] per worker when the
//! workers render output; then [`Tokens`] lets only as many of them run at once as there are
//! workers). Worker `c % N` reads chunk `c`, decodes it and builds every worker's batch of it
//! with the dispatcher's code ([`InBatch::push_segment`]): it keeps its own batch and sends
//! the others. The batches do not copy the payloads: they share the chunk's bytes
//! (read-only) and refer to ranges of them. Every worker then handles chunk 0's batch, chunk
//! 1's, … in order, whoever made them, so the merge sees the rounds of one dispatcher.
//!
//! What a chunk needs from the chunks before it:
//!
//! - **Where it starts and its first packet number.** A worker reads its chunk's nominal
//!   range before it knows where the first record starts. The record headers are then walked
//!   in chunk order by a [`Walker`] that any worker drives: whoever has just read a chunk
//!   walks every chunk that is read and whose predecessor is walked (a few nanoseconds a
//!   record, in memory), and sends each walk to the chunk's reader. So a worker never waits
//!   for another one to come round to a chunk: it reads ahead ([`ahead`]) and decodes its
//!   chunks as their walks come.
//! - **pcapng: the section.** The walker carries the section's byte order, its interface
//!   table (link type, timestamp resolution and offset) and the key logs read since the last
//!   packet from chunk to chunk (reset at each file's start, as a new capture reader would
//!   start). Each block is read with the capture reader's own code
//!   ([`crate::capture::ng_block`], pcap-parser); a record carries its link type and time.
//!   Key logs of Decryption Secrets Blocks are given to every worker after the packet that
//!   follows them, where the one-thread loop takes them (at most as many, dropped at a file's
//!   end in the same way). A block the walk cannot read exactly as the reader would (cut,
//!   malformed, of a size the reader's buffer might grow for, a section header of unknown
//!   byte order) ends the chunks: the rest of the run goes through one capture reader, as
//!   below, so errors and counters are one thread's.
//! - **The capture clock.** A chunk is clocked from zero; its ticks are the points where its
//!   own clock enters a new step, and its batches carry its latest time. The workers resolve
//!   them against the latest time of the chunks before ([`super::WorkerClock`]): a tick of
//!   the capture clock is always at one of those points, so the ticks and times are exactly
//!   the dispatcher's.
//! - **IP fragments.** A chunk is decoded with a fresh [`Decoder`]. If it holds a fragment, it
//!   is decoded again, in turn (after every chunk before it), with the one decoder that keeps
//!   the fragments of the whole run. Reassembled payloads are copied into the batches. A
//!   worker does not wait for that turn: it goes on with its batches and rounds and is told
//!   when the turn moves on ([`Fragments`]; waiting could close a cycle with the merging
//!   thread).
//!
//! A record the reader's buffer might have to grow for (very large, rare) ends the chunks:
//! the rest of the run is read by one worker through a [`crate::capture::Capture`], as one chunk, so the
//! reader's buffer rules (and errors) stay exactly those of one thread. A record cut short
//! at the end of a file is the one thread's `Truncated` error at the same offset.
//!
//! Each worker sends its output to the merging thread [`group`] chunks at a time.
//!
//! Memory: a chunk's bytes are held until every worker has handled its batch of it; a worker
//! reads at most [`ahead`] chunks past the chunk it handles, so about that many and `N` more
//! chunks are held at once (the buffers are reused).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::sync::mpsc::{channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use wscope_proto::time::Instant;

use super::{
    analyse, merge_rounds, Clock, FromWorker, InBatch, Merger, OutBatch, ReadEnd, WorkerClock,
    WorkerSetup, READ_ROUNDS_IN_FLIGHT, SHARD_ROUNDS_IN_FLIGHT,
};
use crate::analyzer::Slot;
use crate::capture::{
    ng_block, CaptureError, CaptureErrorKind, CaptureReader, CaptureStats, Interface, LinkType,
    NgBlock, Packet, Snapshot, MAX_SECRETS_BLOCKS,
};
use crate::decode::{DecodeStats, Decoder};
use crate::sink::Sink;
use crate::tcp::{FlowStats, FlowTable};

/// How far ahead a worker reads, in chunks past the chunk it handles (each chunk read is held,
/// with a batch for every worker, until every worker has handled its batch of it): half as
/// many chunks as threads `running` at once (workers; with shards that take turns, their
/// tokens), at least one. A thread that has not read the chunk the others wait for gets the
/// CPU they leave, and with more running, a chunk's reader need not first handle the chunk
/// before it, read by another. Measured with two workers on bench (BENCHMARKS.md, "Parallel
/// analysis"): with the workers rendering output, one chunk ahead was as fast as two with
/// 5 % less memory, and a round of shards ahead 5 % faster on large messages for 9 % more;
/// with `-o` alone, one chunk ahead was 3-5 % faster than two rounds of the workers' chunks
/// (the chunks read ahead had left the reader's cache by the time they were walked and
/// decoded), with a fifth less memory.
const fn ahead(running: u64) -> u64 {
    running.div_ceil(2)
}

/// Chunks per round of output sent to the merging thread: one when the workers render output
/// (whose text is held until merged), else a few (the records of `-o` alone are few; fewer
/// rounds, fewer hand-offs).
const fn group(local: bool) -> u64 {
    if local {
        1
    } else {
        8
    }
}
/// The size of a classic pcap file header.
const FILE_HEADER: u64 = 24;
/// The size of a classic pcap record header.
const RECORD_HEADER: u64 = 16;

/// One file of the run (classic pcap or pcapng).
#[derive(Debug)]
struct PcapFile {
    /// A pcapng file (its blocks are walked with the capture reader's code, [`ng_block`]).
    ng: bool,
    /// Where its first record or block starts.
    data_start: u64,
    /// The name in errors (as the capture reader names it).
    name: String,
    file: File,
    /// The length in the snapshot.
    len: u64,
    link: LinkType,
    nanos: bool,
    big_endian: bool,
    /// The number of its first chunk.
    first: u64,
    chunks: u64,
}

/// The chunks of a run: every file is a classic pcap or a pcapng file.
#[derive(Debug)]
pub(super) struct Plan {
    files: Vec<PcapFile>,
    /// Nominal chunk length.
    chunk: u64,
    /// The capture reader's starting buffer size: a record of this size or more may make it
    /// grow (or fail), so such a record ends the chunks.
    buffer: usize,
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

#[cfg(not(unix))]
fn read_at(_file: &File, _buf: &mut [u8], _at: u64) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

impl Plan {
    /// The chunks of the snapshot's files, or `None` when a file is neither a classic pcap file
    /// with a whole header nor a pcapng file that the capture reader opens: the workers then
    /// read the capture themselves.
    pub(super) fn new(snapshot: &Snapshot, local: bool) -> Option<Self> {
        if !cfg!(unix) {
            return None;
        }
        Self::with_chunk(
            snapshot,
            (snapshot.buffer_len() / if local { 4 } else { 2 }) as u64,
        )
    }

    /// Like [`Plan::new`] with a chosen nominal chunk length.
    pub(super) fn with_chunk(snapshot: &Snapshot, chunk: u64) -> Option<Self> {
        let chunk = chunk.max(1);
        let mut files = Vec::with_capacity(snapshot.files().len());
        let mut first = 0;
        for (path, len) in snapshot.files() {
            let len = *len;
            let file = File::open(path).ok()?;
            let name = path.display().to_string();
            let mut magic = [0u8; 4];
            if len >= 4
                && read_at(&file, &mut magic, 0).is_ok()
                && magic == [0x0A, 0x0D, 0x0D, 0x0A]
            {
                // The file must open as the capture reader opens it (its first block a
                // section header); otherwise the workers read the capture themselves.
                let mut check = io::Read::take(File::open(path).ok()?, len);
                CaptureReader::with_buffer_len(&mut check, &name, snapshot.buffer_len()).ok()?;
                let chunks = len.div_ceil(chunk).max(1);
                files.push(PcapFile {
                    ng: true,
                    data_start: 0,
                    name,
                    file,
                    len,
                    link: LinkType(0),
                    nanos: false,
                    big_endian: false,
                    first,
                    chunks,
                });
                first += chunks;
                continue;
            }
            if len < FILE_HEADER {
                return None;
            }
            let mut h = [0u8; FILE_HEADER as usize];
            read_at(&file, &mut h, 0).ok()?;
            let (big_endian, nanos) = match u32::from_le_bytes([h[0], h[1], h[2], h[3]]) {
                0xA1B2_C3D4 => (false, false),
                0xA1B2_3C4D => (false, true),
                0xD4C3_B2A1 => (true, false),
                0x4D3C_B2A1 => (true, true),
                _ => return None,
            };
            let network = u32_at(&h, 20, big_endian);
            let chunks = (len - FILE_HEADER).div_ceil(chunk).max(1);
            files.push(PcapFile {
                ng: false,
                data_start: FILE_HEADER,
                name,
                file,
                len,
                // The upper bits may carry FCS information; the type is the low 16 bits.
                link: LinkType(network & 0xFFFF),
                nanos,
                big_endian,
                first,
                chunks,
            });
            first += chunks;
        }
        Some(Self {
            files,
            chunk,
            buffer: snapshot.buffer_len(),
        })
    }

    /// Chunk `c`: its file, and its nominal byte range.
    fn locate(&self, c: u64) -> Option<(usize, u64, u64)> {
        let f = self.files.partition_point(|f| f.first + f.chunks <= c);
        let file = self.files.get(f)?;
        let k = c - file.first;
        let start = file.data_start + k * self.chunk;
        let end = if k + 1 == file.chunks {
            file.len
        } else {
            start + self.chunk
        };
        Some((f, start, end))
    }
}

fn u32_at(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big_endian {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}

/// What the walk of a chunk says about the next one.
#[derive(Debug)]
enum Chain {
    /// The next chunk's first record starts at this offset of its file (the file header's
    /// end for the first chunk of a file); `number` packets came before it.
    At { offset: u64, number: u64 },
    /// The rest of the run goes through a capture reader, after `number` packets.
    Rest { number: u64 },
    /// The run ended after `number` packets.
    End { number: u64 },
}

/// The order in which chunks with IP fragments (and the rest of a run read through a capture
/// reader) are decoded, and the decoder that keeps the fragments.
///
/// A worker never waits here: it asks for its turn ([`Fragments::try_take`]) and, until it
/// comes, goes on handling batches and sending its rounds. Waiting would hold up the merging
/// thread, which needs this worker's next round, while the chunks before this one may be
/// read by workers that wait for room in the merging thread's queue: a cycle. The worker is
/// told ([`Msg::Turn`]) when the turn moves on.
#[derive(Debug, Default)]
struct Fragments {
    state: Mutex<Turn>,
}

#[derive(Debug, Default)]
struct Turn {
    /// Every chunk before this one is decoded (or needs no fragments).
    next: u64,
    /// Chunks from `next` on without fragments.
    clean: BTreeSet<u64>,
    /// The run's decoder for fragments (`None` while a worker uses it).
    decoder: Option<Decoder>,
    /// A worker panicked: turns are given at once (the panic is passed on).
    gone: bool,
    /// Workers that asked for a turn that had not come, to be told when it moves on.
    waiting: Vec<usize>,
}

impl Turn {
    fn advance(&mut self) {
        while self.clean.remove(&self.next) {
            self.next += 1;
        }
    }
}

impl Fragments {
    fn new() -> Self {
        Self {
            state: Mutex::new(Turn {
                decoder: Some(Decoder::new()),
                ..Turn::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Turn> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Chunk `c` holds no fragment. Returns the workers to tell that the turn moved on.
    fn clean(&self, c: u64) -> Vec<usize> {
        let mut t = self.lock();
        t.clean.insert(c);
        t.advance();
        core::mem::take(&mut t.waiting)
    }

    /// The run's decoder if every chunk before `c` is decoded; otherwise `None`, and worker
    /// `me` is told when the turn moves on (it asks again then).
    fn try_take(&self, c: u64, me: usize) -> Option<Decoder> {
        let mut t = self.lock();
        if t.gone {
            return Some(Decoder::new());
        }
        if t.next == c {
            if let Some(d) = t.decoder.take() {
                return Some(d);
            }
        }
        if !t.waiting.contains(&me) {
            t.waiting.push(me);
        }
        None
    }

    /// Gives the decoder back after chunk `c`. Returns the workers to tell that the turn moved
    /// on.
    fn give(&self, c: u64, d: Decoder) -> Vec<usize> {
        let mut t = self.lock();
        t.decoder = Some(d);
        t.next = c + 1;
        t.advance();
        core::mem::take(&mut t.waiting)
    }

    /// A worker panicked: turns are given at once from now on (the workers are woken by
    /// [`Msg::Gone`]).
    fn abandon(&self) {
        self.lock().gone = true;
    }

    fn into_stats(self) -> DecodeStats {
        let t = self
            .state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        t.decoder.map(|d| *d.stats()).unwrap_or_default()
    }
}

/// Wakes the other workers when a worker panics (they wait for messages only), and gives
/// fragment turns at once from then on.
struct PanicGuard<'a> {
    fragments: &'a Fragments,
    to: Vec<Sender<Msg>>,
}

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.fragments.abandon();
            for tx in &self.to {
                let _ = tx.send(Msg::Gone);
            }
        }
    }
}

/// The right to analyse: at most as many shard threads as there are workers hold one at a
/// time. A thread gives its token back while it waits (for a batch, a walk or room in the
/// merger's queue), so a worker's worth of CPU goes to a shard that has work
/// while another shard waits.
#[derive(Debug)]
struct Tokens {
    free: Mutex<usize>,
    freed: Condvar,
    count: u64,
}

impl Tokens {
    fn new(n: usize) -> Self {
        Self {
            free: Mutex::new(n),
            freed: Condvar::new(),
            count: n as u64,
        }
    }

    /// How many tokens there are.
    const fn count(&self) -> u64 {
        self.count
    }

    /// Waits for a token; it is given back when the guard drops (a panic included).
    fn take(&self) -> Running<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Running(self)
    }
}

/// A token held (see [`Tokens`]).
struct Running<'a>(&'a Tokens);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.0.freed.notify_one();
    }
}

/// A record of the chunk being read: where its data is in the chunk's buffer.
#[derive(Clone, Copy, Debug)]
struct Record {
    at: usize,
    len: usize,
    orig_len: u32,
    ts: Instant,
    number: u64,
    link: LinkType,
}

/// What a worker found reading its chunks.
#[derive(Debug, Default)]
struct ChunkEnd {
    capture: CaptureStats,
    decode: DecodeStats,
    error: Option<CaptureError>,
    /// Packets in the run (known to the workers that saw its end).
    packets: Option<u64>,
    /// The rest of the run was read through a capture reader whose counters cover the whole
    /// run.
    whole: Option<CaptureStats>,
}

/// A chunk's walk: its records, what the walk counted, and what the next chunk is told.
#[derive(Debug)]
struct Walk {
    /// The chunk's bytes, from the start of its nominal range to the end of its last record.
    buf: Vec<u8>,
    records: Vec<Record>,
    /// The capture counters of its records (and of the file, for a file's first chunk).
    capture: CaptureStats,
    /// The error that ends the run in this chunk.
    error: Option<CaptureError>,
    /// Key logs of Decryption Secrets Blocks (pcapng), each given to the workers after the
    /// record of this index, as the one-thread loop takes them after the packet that follows
    /// them.
    secrets: Vec<(usize, Vec<u8>)>,
}

/// The state of the pcapng section being walked, carried from chunk to chunk.
#[derive(Debug, Default)]
struct NgState {
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// Key logs read since the last packet (given after the next packet of the file; dropped
    /// at the file's end, as the capture reader drops them).
    pending: Vec<Vec<u8>>,
}

/// What the walk says about one chunk, sent to the worker that reads it.
#[derive(Debug)]
enum Walked {
    /// The chunk's records.
    Records(Walk),
    /// The run ends before this chunk, after `number` packets.
    End { number: u64 },
    /// The rest of the run, after `number` packets, goes through a capture reader as this
    /// chunk.
    Rest { number: u64 },
}

/// The walk over the record headers of the chunks read, in order, by whichever worker has
/// just read a chunk (one at a time). Walking is cheap (the headers are in memory); a chunk
/// can be walked once it is read and the chunk before is walked, so no worker waits for
/// another to come round to it.
#[derive(Debug)]
struct Walker {
    state: Mutex<WalkState>,
}

#[derive(Debug)]
struct WalkState {
    /// The first chunk not walked.
    next: u64,
    /// Where it starts (`None` once the walk has ended).
    at: Option<Chain>,
    /// Chunks read and not walked: their nominal range's bytes, or the error reading them.
    read: HashMap<u64, io::Result<Vec<u8>>>,
    /// A worker is walking.
    walking: bool,
    /// The pcapng section being walked.
    ng: NgState,
}

impl Walker {
    fn new(plan: &Plan) -> Self {
        Self {
            state: Mutex::new(WalkState {
                next: 0,
                at: Some(Chain::At {
                    offset: plan.files.first().map_or(FILE_HEADER, |f| f.data_start),
                    number: 0,
                }),
                read: HashMap::new(),
                walking: false,
                ng: NgState::default(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WalkState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Chunk `c` is read (or failed to): walks what can be walked.
    fn read(&self, plan: &Plan, c: u64, bytes: io::Result<Vec<u8>>, to: &[Sender<Msg>]) {
        let mut st = self.lock();
        if st.at.is_some() {
            st.read.insert(c, bytes);
        }
        drop(st);
        self.walk(plan, to);
    }

    /// The walk has ended (before chunk `c`): chunks read from `c` on are not walked.
    fn ended(&self, c: u64) -> bool {
        let st = self.lock();
        st.at.is_none() && c >= st.next
    }

    /// Walks the chunks that can be walked, in order, and sends each chunk's walk to its
    /// reader (chunk `c` is read by worker `c % N`).
    fn walk(&self, plan: &Plan, to: &[Sender<Msg>]) {
        let n = to.len() as u64;
        loop {
            let mut st = self.lock();
            if st.walking {
                return;
            }
            let c = st.next;
            let (offset, number) = match st.at {
                None => return,
                Some(Chain::At { offset, number }) => (offset, number),
                Some(Chain::End { number }) => {
                    st.at = None;
                    st.read.clear();
                    let _ = to[(c % n) as usize].send(Msg::Walked(c, Walked::End { number }));
                    return;
                }
                Some(Chain::Rest { number }) => {
                    st.at = None;
                    st.read.clear();
                    let _ = to[(c % n) as usize].send(Msg::Walked(c, Walked::Rest { number }));
                    return;
                }
            };
            let Some(bytes) = st.read.remove(&c) else {
                return;
            };
            st.walking = true;
            let mut ng = core::mem::take(&mut st.ng);
            drop(st);
            let (walk, next) = plan.walk(c, bytes, offset, number, &mut ng);
            let _ = to[(c % n) as usize].send(Msg::Walked(c, walk));
            let mut st = self.lock();
            st.ng = ng;
            st.walking = false;
            st.next = c + 1;
            st.at = Some(next);
        }
    }
}

impl Plan {
    /// Walks the record headers of chunk `c` (its nominal range's `bytes`, or the error reading
    /// them), whose first record starts at `offset` after `number` packets. Reads the end of
    /// a record that crosses the range's end. Returns the walk and what the next chunk is told.
    fn walk(
        &self,
        c: u64,
        bytes: io::Result<Vec<u8>>,
        offset: u64,
        number: u64,
        ng: &mut NgState,
    ) -> (Walked, Chain) {
        let Some((f, start, end)) = self.locate(c) else {
            return (Walked::End { number }, Chain::End { number });
        };
        let file = &self.files[f];
        let mut capture = CaptureStats::default();
        if start == file.data_start {
            capture.sources += 1;
            *ng = NgState::default();
        }
        let (mut buf, mut error) = match bytes {
            Ok(b) => (b, None),
            Err(e) => (Vec::new(), Some(CaptureError::io(e, &file.name, start))),
        };
        let mut records = Vec::new();
        let mut secrets = Vec::new();
        let (mut off, mut number) = (offset, number);
        // Makes `buf` (the file from `start`) hold the file up to `to`.
        let cover = |buf: &mut Vec<u8>, to: u64| -> io::Result<()> {
            let have = start + buf.len() as u64;
            if have < to {
                let old = buf.len();
                buf.resize((to - start) as usize, 0);
                read_at(&file.file, &mut buf[old..], have)?;
            }
            Ok(())
        };
        let next = loop {
            if error.is_some() {
                break Chain::End { number };
            }
            if off >= file.len {
                break if let Some(next) = self.files.get(f + 1) {
                    Chain::At {
                        offset: next.data_start,
                        number,
                    }
                } else {
                    Chain::End { number }
                };
            }
            if off >= end {
                break Chain::At {
                    offset: off,
                    number,
                };
            }
            if file.ng {
                // A block this walk does not read exactly as the capture reader would (cut,
                // malformed, or one its buffer might grow for): the rest of the run goes
                // through a capture reader, which reports it as one thread does.
                let rest = Chain::Rest { number };
                if off + 12 > file.len {
                    break rest;
                }
                if let Err(e) = cover(&mut buf, off + 12) {
                    error = Some(CaptureError::io(e, &file.name, off));
                    continue;
                }
                let h = (off - start) as usize;
                let be = if u32_at(&buf, h, false) == 0x0A0D_0D0A {
                    // A section header's length is in its own byte order.
                    match u32_at(&buf, h + 8, false) {
                        0x1A2B_3C4D => false,
                        0x4D3C_2B1A => true,
                        _ => break rest,
                    }
                } else {
                    ng.big_endian
                };
                let total = u64::from(u32_at(&buf, h + 4, be));
                if total < 12 || total >= self.buffer as u64 || off + total > file.len {
                    break rest;
                }
                if let Err(e) = cover(&mut buf, off + total) {
                    error = Some(CaptureError::io(e, &file.name, off));
                    continue;
                }
                let Some(block) =
                    ng_block(&buf[h..h + total as usize], ng.big_endian, &ng.interfaces)
                else {
                    break rest;
                };
                match block {
                    NgBlock::Packet {
                        ts,
                        link,
                        at,
                        len,
                        orig_len,
                    } => {
                        number += 1;
                        for text in ng.pending.drain(..) {
                            secrets.push((records.len(), text));
                        }
                        records.push(Record {
                            at: h + at,
                            len,
                            orig_len,
                            ts,
                            number,
                            link,
                        });
                        capture.packets += 1;
                        capture.bytes += len as u64;
                        if (len as u64) < u64::from(orig_len) {
                            capture.truncated_packets += 1;
                        }
                    }
                    NgBlock::Section { big_endian } => {
                        ng.big_endian = big_endian;
                        ng.interfaces.clear();
                        capture.other_blocks += 1;
                    }
                    NgBlock::Interface(i) => {
                        ng.interfaces.push(i);
                        capture.other_blocks += 1;
                    }
                    NgBlock::UnknownInterface => capture.unknown_interface += 1,
                    NgBlock::Secrets(text) => {
                        capture.other_blocks += 1;
                        if ng.pending.len() < MAX_SECRETS_BLOCKS {
                            ng.pending.push(text);
                        }
                    }
                    NgBlock::Other => capture.other_blocks += 1,
                }
                off += total;
                continue;
            }
            if off + RECORD_HEADER > file.len {
                error = Some(CaptureError::new(
                    CaptureErrorKind::Truncated,
                    &file.name,
                    off,
                ));
                continue;
            }
            if let Err(e) = cover(&mut buf, off + RECORD_HEADER) {
                error = Some(CaptureError::io(e, &file.name, off));
                continue;
            }
            let h = (off - start) as usize;
            let be = file.big_endian;
            let caplen = u32_at(&buf, h + 8, be);
            if RECORD_HEADER + u64::from(caplen) >= self.buffer as u64 {
                break Chain::Rest { number };
            }
            let rec_end = off + RECORD_HEADER + u64::from(caplen);
            if rec_end > file.len {
                error = Some(CaptureError::new(
                    CaptureErrorKind::Truncated,
                    &file.name,
                    off,
                ));
                continue;
            }
            if let Err(e) = cover(&mut buf, rec_end) {
                error = Some(CaptureError::io(e, &file.name, off));
                continue;
            }
            let sec = u64::from(u32_at(&buf, h, be));
            let frac = u64::from(u32_at(&buf, h + 4, be));
            let frac = if file.nanos { frac / 1000 } else { frac };
            let orig_len = u32_at(&buf, h + 12, be);
            number += 1;
            records.push(Record {
                at: h + RECORD_HEADER as usize,
                len: caplen as usize,
                orig_len,
                ts: Instant::from_micros(sec.saturating_mul(1_000_000).saturating_add(frac)),
                number,
                link: file.link,
            });
            capture.packets += 1;
            capture.bytes += u64::from(caplen);
            if caplen < orig_len {
                capture.truncated_packets += 1;
            }
            off = rec_end;
        };
        let walk = Walk {
            buf,
            records,
            capture,
            error,
            secrets,
        };
        (Walked::Records(walk), next)
    }
}

/// What a worker is sent.
#[derive(Debug)]
enum Msg {
    /// The walk of one of its chunks (they come in order).
    Walked(u64, Walked),
    /// Worker `.0`'s batch of its next chunk (`None`: the run ended before that chunk).
    Batch(usize, Option<InBatch>),
    /// The fragment turn moved on: a worker that asked for it too early asks again.
    Turn,
    /// A worker panicked: the run stops (the panic is passed on).
    Gone,
}

/// A worker's channels.
struct Parts {
    /// Everything the worker is sent, in one queue, so that it can wait for whatever comes
    /// first (a walk or a batch).
    inbox: Receiver<Msg>,
    /// Every worker's inbox (its own included).
    to: Vec<Sender<Msg>>,
    /// Batches given back, for reuse.
    pool: Receiver<InBatch>,
    /// Gives a batch back to the worker that made it.
    pools: Vec<Sender<InBatch>>,
}

/// A worker's reading side.
struct Reader<'a> {
    plan: &'a Plan,
    snapshot: &'a Snapshot,
    fragments: &'a Fragments,
    walker: &'a Walker,
    n: usize,
    me: usize,
    parts: Parts,
    /// The walks of its chunks, in order, not decoded yet.
    walked: VecDeque<(u64, Walked)>,
    /// Each worker's batches of its chunks that this worker has not handled yet, in chunk
    /// order (`None`: the run ended there).
    ready: Vec<VecDeque<Option<InBatch>>>,
    /// A worker panicked.
    gone: bool,
    /// The worker reads no more chunks (the run ended at one of its chunks, or the rest of
    /// the run went through a capture reader).
    done: bool,
    /// The chunks read, shared with the batches made from them; a chunk no batch refers to
    /// any more is read into again.
    chunks: Vec<Arc<Vec<u8>>>,
    end: ChunkEnd,
    tokens: &'a Tokens,
    /// The token held while the thread works (`None` while it waits).
    running: Option<Running<'a>>,
    /// A chunk that waits for its fragment turn (the walks after it wait behind it).
    pending: Option<InTurn>,
    /// The turn moved on since the last try ([`Msg::Turn`]).
    turn_moved: bool,
}

/// What waits for its fragment turn ([`Fragments`]).
#[derive(Debug)]
enum InTurn {
    /// A chunk with IP fragments, decoded once with a fresh decoder: it is decoded again with
    /// the run's.
    Chunk {
        c: u64,
        chunk: Arc<Vec<u8>>,
        records: Vec<Record>,
        secrets: Vec<(usize, Vec<u8>)>,
        source: usize,
    },
    /// Chunk `c` is the rest of the run, after `number` packets ([`Reader::rest`]).
    Rest { c: u64, number: u64 },
}

impl<'a> Reader<'a> {
    /// Runs `wait` (which blocks) without holding a token.
    fn waiting<T>(&mut self, wait: impl FnOnce(&mut Self) -> T) -> T {
        self.running = None;
        let t = wait(self);
        self.running = Some(self.tokens.take());
        t
    }

    /// Takes a message from the inbox.
    fn take(&mut self, m: Msg) {
        match m {
            Msg::Walked(c, w) => self.walked.push_back((c, w)),
            Msg::Batch(from, b) => self.ready[from].push_back(b),
            Msg::Turn => self.turn_moved = true,
            Msg::Gone => self.gone = true,
        }
    }

    /// A buffer for the next chunk: a chunk no batch refers to any more, or a new one.
    fn fresh(&mut self) -> Vec<u8> {
        if let Some(i) = self.chunks.iter().position(|c| Arc::strong_count(c) == 1) {
            if let Ok(v) = Arc::try_unwrap(self.chunks.swap_remove(i)) {
                return v;
            }
        }
        Vec::new()
    }

    /// A batch for a new chunk (a given-back one when there is one).
    fn batch(&self) -> InBatch {
        match self.parts.pool.try_recv() {
            Ok(mut b) => {
                b.clear();
                b
            }
            Err(_) => InBatch::default(),
        }
    }

    /// The run ends at the worker's chunk: every worker is told.
    fn end_at(&mut self, number: u64) {
        for (w, tx) in self.parts.to.iter().enumerate() {
            if w != self.me {
                let _ = tx.send(Msg::Batch(self.me, None));
            }
        }
        self.ready[self.me].push_back(None);
        self.end.packets = self.end.packets.max(Some(number));
        self.done = true;
    }

    /// Hands the batches of a chunk out.
    fn hand_out(&mut self, batches: Vec<InBatch>, max: Instant, chunk: Option<&Arc<Vec<u8>>>) {
        for (w, mut b) in batches.into_iter().enumerate() {
            b.max = max;
            b.chunk = chunk.cloned();
            if w == self.me {
                self.ready[w].push_back(Some(b));
            } else {
                let _ = self.parts.to[w].send(Msg::Batch(self.me, Some(b)));
            }
        }
    }

    /// Reads chunk `c`'s nominal range and hands it to the walk.
    fn read(&mut self, c: u64) {
        if self.walker.ended(c) {
            return;
        }
        let bytes = match self.plan.locate(c) {
            Some((f, start, end)) => {
                let mut buf = self.fresh();
                buf.resize((end - start) as usize, 0);
                read_at(&self.plan.files[f].file, &mut buf, start).map(|()| buf)
            }
            None => Ok(Vec::new()),
        };
        self.walker.read(self.plan, c, bytes, &self.parts.to);
    }

    /// Decodes walked chunk `c` and hands its batches out (or ends the run there). A chunk
    /// with IP fragments, and the rest of the run, wait for their turn ([`Reader::pending`]).
    fn decode(&mut self, c: u64, walked: Walked) {
        let walk = match walked {
            Walked::Records(walk) => walk,
            Walked::End { number } => return self.end_at(number),
            Walked::Rest { number } => {
                self.pending = Some(InTurn::Rest { c, number });
                return self.in_turn();
            }
        };
        self.end.capture.add(&walk.capture);
        if walk.error.is_some() {
            self.end.error = walk.error;
        }
        let source = self.plan.locate(c).map_or(0, |(f, _, _)| f);
        // The batches refer to the chunk's bytes.
        let chunk = Arc::new(walk.buf);
        let records = walk.records;
        let secrets = walk.secrets;
        let mut batches: Vec<InBatch> = (0..self.n).map(|_| self.batch()).collect();
        let mut local = Decoder::new();
        let clock = decode_into(&chunk, &records, &secrets, &mut batches, &mut local, source);
        if local.stats().fragments > 0 {
            for b in batches {
                let _ = self.parts.pools[self.me].send(b);
            }
            self.pending = Some(InTurn::Chunk {
                c,
                chunk,
                records,
                secrets,
                source,
            });
            return self.in_turn();
        }
        let waiting = self.fragments.clean(c);
        self.tell(&waiting);
        self.end.decode.add(local.stats());
        self.hand_out(batches, clock.now(), Some(&chunk));
        self.chunks.push(chunk);
    }

    /// Decodes the pending chunk (or the rest of the run) if its fragment turn has come.
    fn in_turn(&mut self) {
        self.turn_moved = false;
        let Some(pending) = self.pending.take() else {
            return;
        };
        let (InTurn::Chunk { c, .. } | InTurn::Rest { c, .. }) = pending;
        let Some(mut d) = self.fragments.try_take(c, self.me) else {
            self.pending = Some(pending);
            return;
        };
        match pending {
            InTurn::Chunk {
                c,
                chunk,
                records,
                secrets,
                source,
            } => {
                let mut batches: Vec<InBatch> = (0..self.n).map(|_| self.batch()).collect();
                let clock = decode_into(&chunk, &records, &secrets, &mut batches, &mut d, source);
                let waiting = self.fragments.give(c, d);
                self.tell(&waiting);
                self.hand_out(batches, clock.now(), Some(&chunk));
                self.chunks.push(chunk);
            }
            InTurn::Rest { c, number } => {
                self.rest(c, number, d);
                self.done = true;
            }
        }
    }

    /// Tells these workers that the fragment turn moved on.
    fn tell(&self, workers: &[usize]) {
        for &w in workers {
            let _ = self.parts.to[w].send(Msg::Turn);
        }
    }

    /// Chunk `c` is the rest of the run, after `number` packets: read through a capture
    /// reader (which reads the files from the start again) with the run's `decoder`, in its
    /// turn. The next chunk's reader is told that the run ends there.
    fn rest(&mut self, c: u64, number: u64, mut decoder: Decoder) {
        let mut batches: Vec<InBatch> = (0..self.n).map(|_| self.batch()).collect();
        let mut capture = self.snapshot.open();
        let mut clock = Clock::default();
        let mut error = None;
        for _ in 0..number {
            match capture.next_packet() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        // The key logs read up to packet `number` were given out after it by the walked
        // chunks (pcapng).
        while capture.take_secrets().is_some() {}
        while error.is_none() {
            while let Some(text) = capture.take_secrets() {
                InBatch::push_secrets(&mut batches, &text);
            }
            let pkt = match capture.next_packet() {
                Ok(Some(pkt)) => pkt,
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            };
            let number = pkt.number;
            if let Some(seg) = decoder.decode(&pkt) {
                InBatch::push_segment(&mut batches, &mut clock, &seg, number, None);
            }
        }
        let waiting = self.fragments.give(c, decoder);
        self.tell(&waiting);
        self.end.error = error;
        self.end.whole = Some(capture.stats());
        let packets = capture.packets_read();
        self.end.packets = self.end.packets.max(Some(packets));
        self.hand_out(batches, clock.now(), None);
        let next = (c + 1) % self.n as u64;
        let _ =
            self.parts.to[next as usize].send(Msg::Walked(c + 1, Walked::End { number: packets }));
    }
}

/// Decodes the `records` of `chunk` into the batches, each record's `secrets` (by record
/// index) after it; the chunk's clock.
fn decode_into(
    chunk: &[u8],
    records: &[Record],
    secrets: &[(usize, Vec<u8>)],
    batches: &mut [InBatch],
    decoder: &mut Decoder,
    source: usize,
) -> Clock {
    let mut clock = Clock::default();
    let mut keys = secrets.iter().peekable();
    for (i, r) in records.iter().enumerate() {
        let pkt = Packet {
            ts: r.ts,
            link: r.link,
            data: &chunk[r.at..r.at + r.len],
            orig_len: r.orig_len,
            number: r.number,
            source,
        };
        if let Some(seg) = decoder.decode(&pkt) {
            InBatch::push_segment(batches, &mut clock, &seg, r.number, Some(chunk));
        }
        while let Some((_, text)) = keys.next_if(|(at, _)| *at == i) {
            InBatch::push_secrets(batches, text);
        }
    }
    clock
}

/// One worker. It reads its chunks ahead (up to [`ahead`] chunks past the chunk it
/// handles), decodes each once it is walked, handles every chunk's batch in order and sends
/// its output [`group`] chunks at a time. It waits only when it has nothing to do.
#[allow(clippy::too_many_arguments)]
fn chunk_worker(
    setup: WorkerSetup<'_>,
    plan: &Plan,
    snapshot: &Snapshot,
    fragments: &Fragments,
    walker: &Walker,
    me: usize,
    n: usize,
    parts: Parts,
    spares: &Receiver<OutBatch>,
    tx: &SyncSender<FromWorker>,
    tokens: &Tokens,
) -> ChunkEnd {
    let _guard = PanicGuard {
        fragments,
        to: parts.to.clone(),
    };
    let mut table: FlowTable<Slot> = FlowTable::new(setup.flow);
    let mut h = setup.handler();
    let mut clock = WorkerClock::default();
    let mut r = Reader {
        plan,
        snapshot,
        fragments,
        walker,
        n,
        me,
        parts,
        walked: VecDeque::new(),
        ready: (0..n).map(|_| VecDeque::new()).collect(),
        gone: false,
        done: false,
        chunks: Vec::new(),
        end: ChunkEnd::default(),
        tokens,
        running: Some(tokens.take()),
        pending: None,
        turn_moved: false,
    };
    let n64 = n as u64;
    let ahead = ahead(r.tokens.count());
    let group = group(setup.make.is_some());
    let mut next_read = me as u64;
    let mut c = 0u64;
    // A round of output is open (started and not sent).
    let mut open = false;
    loop {
        while let Ok(m) = r.parts.inbox.try_recv() {
            r.take(m);
        }
        if r.gone {
            break;
        }
        // Decoding first: it hands the other workers their batches. A chunk that waits for
        // its fragment turn is tried again when the turn moves on; meanwhile the worker goes
        // on with the batches it has.
        if r.pending.is_some() {
            if r.turn_moved {
                r.in_turn();
                continue;
            }
        } else if let Some((k, w)) = r.walked.pop_front() {
            if !r.done {
                r.decode(k, w);
            }
            continue;
        }
        if !r.done && next_read <= c + ahead {
            r.read(next_read);
            next_read += n64;
            continue;
        }
        let p = (c % n64) as usize;
        let Some(batch) = r.ready[p].pop_front() else {
            // Nothing to do until a message comes.
            match r.waiting(|r| r.parts.inbox.recv()) {
                Ok(m) => r.take(m),
                Err(_) => break,
            }
            continue;
        };
        let Some(mut input) = batch else { break };
        if !open {
            h.rec.start(spares.try_recv().unwrap_or_default());
            open = true;
        }
        analyse(&mut table, &mut h, &mut clock, &input);
        input.clear();
        let _ = r.parts.pools[p].send(input);
        c += 1;
        if c.is_multiple_of(group) {
            open = false;
            let out = FromWorker::round(h.rec.flush());
            let sent = r.waiting(|_| tx.send(out).is_ok());
            if !sent {
                break;
            }
        }
    }
    // The last chunks and the end of the capture, in one round (the end's keys come after
    // every packet's).
    if !open {
        h.rec.start(spares.try_recv().unwrap_or_default());
    }
    h.rec.set(u64::MAX, 0);
    table.finish_at(clock.base, &mut h);
    let last = FromWorker::last(table.stats(), &mut h.rec, &h.tls);
    r.running = None;
    let _ = tx.send(last);
    r.end
}

/// [`super::run`] over the chunks of `plan`: the workers take turns reading; the calling
/// thread only merges.
pub(super) fn run<S: Sink + ?Sized>(
    setup: WorkerSetup<'_>,
    workers: usize,
    n: usize,
    plan: &Plan,
    snapshot: &Snapshot,
    merger: &mut Merger<'_, '_, S>,
) -> (FlowStats, ReadEnd) {
    let fragments = Fragments::new();
    let walker = Walker::new(plan);
    let tokens = Tokens::new(workers);
    let mut to = Vec::with_capacity(n);
    let mut inboxes = Vec::with_capacity(n);
    let mut pool_tx = Vec::with_capacity(n);
    let mut pool_rx = Vec::with_capacity(n);
    for _ in 0..n {
        let (t, r) = channel::<Msg>();
        to.push(t);
        inboxes.push(Some(r));
        let (t, r) = channel::<InBatch>();
        pool_tx.push(t);
        pool_rx.push(Some(r));
    }
    let parts: Vec<Mutex<Option<Parts>>> = (0..n)
        .map(|me| {
            Mutex::new(Some(Parts {
                inbox: inboxes[me].take().expect("one inbox per worker"),
                to: to.clone(),
                pool: pool_rx[me].take().expect("one pool per worker"),
                pools: pool_tx.clone(),
            }))
        })
        .collect();
    // Only the workers hold the senders: a worker waiting for a message once every other
    // one is gone sees the end.
    drop(to);
    drop(pool_tx);
    let mut flows = FlowStats::default();
    let queued = if setup.make.is_some() {
        SHARD_ROUNDS_IN_FLIGHT
    } else {
        READ_ROUNDS_IN_FLIGHT
    };
    let ends = merge_rounds(n, queued, merger, &mut flows, |me, spares, tx| {
        let parts = parts[me]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .expect("one start per worker");
        chunk_worker(
            setup, plan, snapshot, &fragments, &walker, me, n, parts, &spares, &tx, &tokens,
        )
    });
    let mut end = ReadEnd {
        capture: CaptureStats::default(),
        decode: fragments.into_stats(),
        error: None,
        packets: 0,
    };
    let mut whole = None;
    for e in ends {
        end.capture.add(&e.capture);
        end.decode.add(&e.decode);
        if end.error.is_none() {
            end.error = e.error;
        }
        end.packets = end.packets.max(e.packets.unwrap_or(0));
        whole = whole.or(e.whole);
    }
    if let Some(w) = whole {
        end.capture = w;
    }
    (flows, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Capture;

    /// A classic pcap file of `n` records of 60 to 160 bytes (record `i`'s bytes all `i`).
    fn pcap(n: u8) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
        f.extend_from_slice(&[2, 0, 4, 0]);
        for v in [0u32, 0, 65535, 1] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        for i in 0..n {
            let len = 60 + u32::from(i) * 7 % 100;
            for v in [u32::from(i), 0, len, len] {
                f.extend_from_slice(&v.to_le_bytes());
            }
            f.extend(core::iter::repeat_n(i, len as usize));
        }
        f
    }

    /// A worker that asks for its fragment turn too early is not kept waiting: it gets
    /// nothing, and is named (once) to be told when the turn moves on, by a clean chunk or a
    /// decoder given back. Only the chunk whose turn it is gets the decoder, once.
    #[test]
    fn a_fragment_turn_asked_for_too_early_is_refused_and_the_worker_told_later() {
        let f = Fragments::new();
        // Chunk 2 (worker 1) and chunk 3 (worker 2) ask before chunks 0 and 1 are decoded.
        assert!(f.try_take(2, 1).is_none());
        assert!(f.try_take(2, 1).is_none());
        assert!(f.try_take(3, 2).is_none());
        // Chunk 0 holds no fragment: both are told, and chunk 2's turn has not come.
        assert_eq!(f.clean(0), vec![1, 2]);
        assert_eq!(f.clean(5), Vec::<usize>::new());
        assert!(f.try_take(2, 1).is_none());
        // Chunk 1 has fragments: it takes the decoder; chunk 2 must wait for it to be back.
        let d = f.try_take(1, 0).expect("chunk 1's turn");
        assert_eq!(f.give(1, d), vec![1]);
        let d = f.try_take(2, 1).expect("chunk 2's turn");
        assert!(f.try_take(3, 2).is_none(), "the decoder is out");
        assert_eq!(f.give(2, d), vec![2]);
        assert!(f.try_take(3, 2).is_some());
        // After a panic elsewhere, turns are given at once (the run stops anyway).
        let f = Fragments::new();
        f.abandon();
        assert!(f.try_take(7, 0).is_some());
    }

    #[test]
    fn no_more_shards_run_at_once_than_there_are_tokens_and_a_panic_gives_its_token_back() {
        let tokens = Tokens::new(2);
        let free = || *tokens.free.lock().unwrap();
        let a = tokens.take();
        let b = tokens.take();
        assert_eq!(free(), 0);
        let (tx, rx) = channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let _c = tokens.take();
                tx.send(()).unwrap();
            });
            // A third shard waits while both tokens are held…
            assert!(rx
                .recv_timeout(core::time::Duration::from_millis(100))
                .is_err());
            // … and runs once one is given back.
            drop(a);
            rx.recv().unwrap();
        });
        drop(b);
        assert_eq!(free(), 2);
        let panicked = std::thread::scope(|s| {
            s.spawn(|| {
                let _held = (tokens.take(), tokens.take());
                panic!("a shard panics while it runs");
            })
            .join()
        });
        assert!(panicked.is_err());
        assert_eq!(free(), 2);
    }

    #[test]
    fn chunks_are_walked_in_order_as_soon_as_they_and_the_chunk_before_are_read() {
        let dir = std::env::temp_dir().join(format!("wscope-walk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.pcap");
        let bytes = pcap(60);
        std::fs::write(&path, &bytes).unwrap();
        let snapshot = Capture::from_paths([&path]).snapshot().unwrap();
        // Chunks of 300 bytes: records cross their ends; some chunks start no record.
        let plan = Plan::with_chunk(&snapshot, 300).unwrap();
        let chunks = plan.files[0].chunks;
        assert!(chunks > 20, "{chunks}");
        let read = |c: u64| -> io::Result<Vec<u8>> {
            let (_, start, end) = plan.locate(c).unwrap();
            Ok(bytes[start as usize..end as usize].to_vec())
        };
        let (tx, rx): (Vec<_>, Vec<_>) = (0..3).map(|_| channel::<Msg>()).unzip();
        let walker = Walker::new(&plan);
        // Read last to first: nothing can be walked until chunk 0 is read, then every chunk
        // is, by that one call.
        for c in (1..chunks).rev() {
            walker.read(&plan, c, read(c), &tx);
            assert!(rx.iter().all(|r| r.try_recv().is_err()), "chunk {c}");
        }
        walker.read(&plan, 0, read(0), &tx);
        let mut data = Vec::new();
        let mut next_number = 1;
        for c in 0..=chunks {
            let Ok(Msg::Walked(k, walked)) = rx[(c % 3) as usize].try_recv() else {
                panic!("no walk for chunk {c}");
            };
            assert_eq!(k, c);
            match walked {
                Walked::Records(w) => {
                    assert!(w.error.is_none());
                    assert_eq!(w.capture.packets, w.records.len() as u64);
                    for r in &w.records {
                        assert_eq!(r.number, next_number);
                        next_number += 1;
                        data.push(w.buf[r.at..r.at + r.len].to_vec());
                    }
                }
                Walked::End { number } => {
                    assert_eq!(c, chunks, "the walk ends after the last chunk");
                    assert_eq!(number, 60);
                }
                Walked::Rest { .. } => panic!("no record is too big"),
            }
        }
        assert_eq!(data.len(), 60);
        for (i, d) in data.iter().enumerate() {
            assert_eq!(d.len(), 60 + i * 7 % 100);
            assert!(d.iter().all(|&b| usize::from(b) == i));
        }
        // Chunks read once the walk has ended are not kept.
        assert!(walker.ended(chunks + 1));
        walker.read(&plan, chunks + 2, Ok(Vec::new()), &tx);
        assert!(walker.lock().read.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A pcapng file: two sections (little-, then big-endian), each with two interfaces
    /// (Ethernet in microseconds, raw IP in nanoseconds), `n` Enhanced Packet Blocks per
    /// section alternating between them, a statistics block and a key log block between them.
    fn pcapng(n: u32) -> Vec<u8> {
        let mut f = Vec::new();
        for be in [false, true] {
            let w = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
            let h = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
            let mut block = |kind: u32, body: &[u8]| {
                let padded = body.len().div_ceil(4) * 4;
                let total = (12 + padded) as u32;
                f.extend(w(kind));
                f.extend(w(total));
                f.extend(body);
                f.resize(f.len() + padded - body.len(), 0);
                f.extend(w(total));
            };
            let mut shb = w(0x1A2B_3C4D).to_vec();
            shb.extend(h(1));
            shb.extend(h(0));
            shb.extend((-1i64).to_le_bytes());
            block(0x0A0D_0D0A, &shb);
            for (link, resol) in [(1u16, 6u8), (101, 9)] {
                let mut idb = h(link).to_vec();
                idb.extend(h(0));
                idb.extend(w(65535));
                idb.extend(h(9));
                idb.extend(h(1));
                idb.extend([resol, 0, 0, 0]);
                idb.extend([0, 0, 0, 0]);
                block(1, &idb);
            }
            for i in 0..n {
                let len = 60 + i * 7 % 100;
                let units = u64::from(i) * 1000 * (1 + 999 * u64::from(i % 2));
                let mut epb = w(i % 2).to_vec();
                epb.extend(w((units >> 32) as u32));
                epb.extend(w(units as u32));
                epb.extend(w(len));
                epb.extend(w(len + u32::from(be)));
                epb.extend(core::iter::repeat_n(i as u8, len as usize));
                block(6, &epb);
                if i % 5 == 2 {
                    block(5, &[0u8; 12]);
                    let mut dsb = w(0x544C_534B).to_vec();
                    dsb.extend(w(3));
                    dsb.extend(b"key");
                    block(10, &dsb);
                }
            }
        }
        f
    }

    #[test]
    fn pcapng_chunks_are_walked_as_the_capture_reader_reads_them() {
        let dir = std::env::temp_dir().join(format!("wscope-walkng-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.pcapng");
        let bytes = pcapng(40);
        std::fs::write(&path, &bytes).unwrap();
        // The one-thread reader's packets and counters.
        let mut one = Capture::from_paths([&path]);
        let mut want = Vec::new();
        while let Some(p) = one.next_packet().unwrap() {
            want.push((p.number, p.ts, p.link, p.orig_len, p.data.to_vec()));
        }
        assert_eq!(want.len(), 80);
        let snapshot = Capture::from_paths([&path]).snapshot().unwrap();
        let plan = Plan::with_chunk(&snapshot, 300).expect("pcapng files are chunked");
        let chunks = plan.files[0].chunks;
        assert!(chunks > 20, "{chunks}");
        let (tx, rx): (Vec<_>, Vec<_>) = (0..2).map(|_| channel::<Msg>()).unzip();
        let walker = Walker::new(&plan);
        for c in 0..chunks {
            let (_, start, end) = plan.locate(c).unwrap();
            walker.read(
                &plan,
                c,
                Ok(bytes[start as usize..end as usize].to_vec()),
                &tx,
            );
        }
        let mut got = Vec::new();
        let mut capture = CaptureStats::default();
        let mut keys = 0;
        for c in 0..=chunks {
            let Ok(Msg::Walked(k, walked)) = rx[(c % 2) as usize].try_recv() else {
                panic!("no walk for chunk {c}");
            };
            assert_eq!(k, c);
            match walked {
                Walked::Records(w) => {
                    assert!(w.error.is_none());
                    capture.add(&w.capture);
                    keys += w.secrets.len();
                    for r in &w.records {
                        let data = w.buf[r.at..r.at + r.len].to_vec();
                        got.push((r.number, r.ts, r.link, r.orig_len, data));
                    }
                }
                Walked::End { number } => {
                    // The last chunk (or the one after it, when the last block starts before
                    // the last chunk) is told the run ended.
                    assert!(c + 1 >= chunks, "{c} {chunks}");
                    assert_eq!(number, 80);
                    break;
                }
                Walked::Rest { .. } => panic!("every block is walked"),
            }
        }
        assert_eq!(got, want);
        assert_eq!(capture, one.stats());
        assert_eq!(keys, 16);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
