//! The zlib codec of permessage-deflate: the per-direction compressor ([`Deflater`]) and
//! decompressor ([`Inflater`]), with zlib-rs, and the process-wide pool of contexts they give
//! up between messages without context takeover.
//!
//! A compressed message is raw DEFLATE data whose final sync-flush tail `00 00 ff ff` was
//! removed by the sender; RSV1 on its first frame marks it. The receiver appends the tail and
//! inflates. Without `*_no_context_takeover` the LZ77 window carries over between messages of a
//! direction, so each direction has one long-lived [`Inflater`] or [`Deflater`]. Their zlib
//! contexts are allocated by the first compressed message of the direction, not at the
//! handshake (an idle connection holds none), and given up after each message when the sender
//! does not take its context over (to a pool of a few for the process, which the next
//! message of any connection reuses).
//!
//! Decompression is streamed chunk by chunk into a reused buffer that grows in 32 KiB steps and
//! never past the caller's limit, so a small message that inflates to gigabytes (a
//! decompression bomb) stops at the limit with [`InflateError::TooLarge`] (close 1009) and
//! bounded memory; corrupt data is [`InflateError::Corrupt`] (close 1007). What the inflated
//! bytes mean (UTF-8 of text, the message cap) is the message layer's ([`super::message`]).

use alloc::vec::Vec;
use core::fmt;

use zlib_rs::{
    Deflate, DeflateConfig as ZConfig, DeflateFlush, Inflate, InflateFlush, Method, Status,
    Strategy,
};

use crate::error::ProtocolError;

/// The tail a sync flush ends with, removed by the sender and put back by the receiver.
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Output grows in steps of this size.
const STEP: usize = 32 * 1024;

/// Why a compressed message could not be inflated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InflateError {
    /// The data is not valid DEFLATE.
    Corrupt,
    /// The inflated message would exceed the limit.
    TooLarge {
        /// The limit in bytes.
        max: u64,
    },
}

impl InflateError {
    /// The protocol error an endpoint fails the connection with (1007 or 1009).
    pub const fn to_protocol_error(self) -> ProtocolError {
        match self {
            Self::Corrupt => ProtocolError::InflateFailed,
            Self::TooLarge { max } => ProtocolError::MessageTooLarge { max },
        }
    }
}

impl fmt::Display for InflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corrupt => f.write_str("compressed data is corrupt"),
            Self::TooLarge { max } => write!(f, "inflated message exceeds {max} bytes"),
        }
    }
}

impl core::error::Error for InflateError {}

/// The memLevel compressors use unless configured: 5, as Python `websockets` uses. zlib-rs
/// sizes only its literal buffers by it (`7 << (memLevel + 6)` bytes: 14 KiB at 5, 112 KiB
/// at zlib's default 8); its hash table is 128 KiB at any memLevel. Measured on JSON and
/// text messages with context takeover (`examples/deflate_tradeoff.rs`, table in
/// BENCHMARKS.md): at window 15, 5 gives the same output as 8 for messages up to 4 KiB and
/// 0.6-0.8% more at 64 KiB and 1 MiB, for 98 KiB less per compressing connection (273 KiB
/// against 371 KiB); below 5 the output grows faster (+3% at 2, +9% at 1).
pub const DEFAULT_MEM_LEVEL: u8 = 5;

/// Contexts freed after a message without context takeover wait here for the next message
/// that needs one, of any connection (at most [`pool::MAX`] of each kind in the process).
/// Reuse saves the allocation and, above all, keeps the memory reusable: blocks of 46-480 KiB
/// freed between the long-lived buffers of other connections fragment the heap, the allocator
/// cannot give those pages back, and the resident size grew as if every connection kept its
/// contexts (measured with `scripts/idle-memory.sh`: 277 KB per connection that had sent one
/// message without context takeover, against 58 KB without compression; 58 KB with the pool).
/// One pool for the process, not one per thread, so that a thread-per-connection server does
/// not keep a context per thread.
mod pool {
    use alloc::vec::Vec;
    use std::sync::{Mutex, MutexGuard};

    use zlib_rs::{Deflate, Inflate};

    /// Contexts (and buffers) kept per kind.
    pub(super) const MAX: usize = 8;

    static DEFLATERS: Mutex<Vec<(u32, Deflate)>> = Mutex::new(Vec::new());
    static INFLATERS: Mutex<Vec<Inflate>> = Mutex::new(Vec::new());
    static BUFFERS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

    /// The pool (whatever a panicking holder left: its entries are whole values).
    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A pooled compressor made with the settings `key` stands for, reset.
    pub(super) fn take_deflate(key: u32) -> Option<Deflate> {
        let mut p = lock(&DEFLATERS);
        let i = p.iter().position(|(k, _)| *k == key)?;
        Some(p.swap_remove(i).1)
    }

    /// Resets `z` and keeps it for the next message (drops it when the pool is full).
    pub(super) fn put_deflate(key: u32, mut z: Deflate) {
        z.reset();
        let mut p = lock(&DEFLATERS);
        if p.len() < MAX {
            p.push((key, z));
        }
    }

    /// A pooled decompressor, reset.
    pub(super) fn take_inflate() -> Option<Inflate> {
        lock(&INFLATERS).pop()
    }

    /// Resets `z` and keeps it for the next message.
    pub(super) fn put_inflate(mut z: Inflate) {
        z.reset(false);
        let mut p = lock(&INFLATERS);
        if p.len() < MAX {
            p.push(z);
        }
    }

    /// A pooled output buffer of an inflater (initialised, at most 32 KiB), or an empty one.
    pub(super) fn take_buffer() -> Vec<u8> {
        lock(&BUFFERS).pop().unwrap_or_default()
    }

    /// Keeps an inflater's output buffer for the next message.
    pub(super) fn put_buffer(buf: Vec<u8>) {
        if buf.is_empty() || buf.len() > super::STEP {
            return;
        }
        let mut p = lock(&BUFFERS);
        if p.len() < MAX {
            p.push(buf);
        }
    }
}

/// Decompresses the messages of one direction.
///
/// The zlib context (46 KiB with zlib-rs, whatever the window: it always allocates a 32 KiB
/// window) is allocated by the first message and kept between messages only when the sender takes its context over:
/// with `no_context_takeover` it is freed at the end of each message, and the output
/// storage with it at the next [`Self::release`].
pub struct Inflater {
    /// `None` until the first message, and between messages without context takeover.
    z: Option<Inflate>,
    reset_each_message: bool,
    /// Initialised storage, reused; `buf[..filled]` is the last output.
    buf: Vec<u8>,
    filled: usize,
    /// Bytes inflated so far in the current message.
    message_len: u64,
    /// The stream ended with a BFINAL block: ignore input until the message ends.
    finished: bool,
    /// A message is in progress (from its first chunk to its end).
    in_message: bool,
}

impl fmt::Debug for Inflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inflater")
            .field("message_len", &self.message_len)
            .field("has_context", &self.z.is_some())
            .finish_non_exhaustive()
    }
}

impl Inflater {
    /// An inflater; `no_context_takeover` says the sender resets its context per message.
    /// Allocates nothing until the first message.
    ///
    /// It always inflates with a 32 KiB window: a stream made with any smaller window inflates
    /// correctly with a larger one, so a sender that rounds 8 up to 9 bits still works (and
    /// zlib-rs allocates a 32 KiB window whatever the size asked for).
    pub const fn new(no_context_takeover: bool) -> Self {
        Self {
            z: None,
            reset_each_message: no_context_takeover,
            buf: Vec::new(),
            filled: 0,
            message_len: 0,
            finished: false,
            in_message: false,
        }
    }

    /// Inflates the next chunk of a compressed message into the internal buffer (replacing its
    /// previous content) and returns how many bytes it produced; read them with
    /// [`Self::output`]. `message_end` says the chunk ends the message (the tail is appended).
    /// The whole message may inflate to at most `limit` bytes.
    ///
    /// After an error, [`Self::output`] holds what the chunk inflated to before it (with
    /// [`InflateError::TooLarge`], up to one byte past the limit), the same bytes however the
    /// message was cut into chunks: a receiver that validates them first reports the error
    /// that comes first in the stream, independent of how the bytes arrived.
    pub fn inflate(
        &mut self,
        input: &[u8],
        message_end: bool,
        limit: u64,
    ) -> Result<usize, InflateError> {
        self.filled = 0;
        self.in_message = true;
        let mut result = self.run(input, InflateFlush::NoFlush, limit);
        if result.is_ok() && message_end {
            result = self.run(&TAIL, InflateFlush::SyncFlush, limit);
        }
        if message_end || result.is_err() {
            self.end_message();
        }
        result.map(|()| self.filled)
    }

    /// What the last [`Self::inflate`] produced.
    pub fn output(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// Whether a message is in progress (from its first chunk until its end or an error).
    pub const fn in_message(&self) -> bool {
        self.in_message
    }

    /// Gives up the message in progress (an observer lost its end): the next chunk starts a
    /// new stream, with a reset context even with context takeover.
    pub fn abandon_message(&mut self) {
        if self.in_message {
            self.finished = true;
            self.end_message();
        }
    }

    /// Bytes inflated so far in the current message.
    pub const fn message_len(&self) -> u64 {
        self.message_len
    }

    /// Bytes of output storage held (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Whether a zlib context is allocated now.
    pub const fn has_context(&self) -> bool {
        self.z.is_some()
    }

    /// Between messages, frees output storage the next message may not need: all of it
    /// without context takeover (the context is already gone then), all but 32 KiB with it.
    /// Call once the last [`Self::output`] has been used; [`Self::output`] is empty after.
    /// Does nothing in the middle of a message.
    pub fn release(&mut self) {
        if self.in_message {
            return;
        }
        self.filled = 0;
        if self.reset_each_message {
            pool::put_buffer(core::mem::take(&mut self.buf));
        } else if self.buf.len() > STEP {
            self.buf.truncate(STEP);
            self.buf.shrink_to_fit();
        }
    }

    fn end_message(&mut self) {
        self.message_len = 0;
        self.in_message = false;
        if self.reset_each_message {
            // The sender starts afresh: so do we, without holding the context meanwhile.
            if let Some(z) = self.z.take() {
                pool::put_inflate(z);
            }
        } else if self.finished {
            if let Some(z) = self.z.as_mut() {
                z.reset(false);
            }
        }
        self.finished = false;
        // Do not keep a bomb-sized buffer around.
        if self.buf.len() > 4 * STEP && self.filled < STEP {
            self.buf.truncate(STEP);
            self.buf.shrink_to_fit();
        }
    }

    fn run(
        &mut self,
        mut input: &[u8],
        flush: InflateFlush,
        limit: u64,
    ) -> Result<(), InflateError> {
        if self.buf.is_empty() {
            self.buf = pool::take_buffer();
        }
        let z = self
            .z
            .get_or_insert_with(|| pool::take_inflate().unwrap_or_else(|| Inflate::new(false, 15)));
        loop {
            if self.finished {
                return Ok(());
            }
            if self.buf.len() - self.filled < STEP / 2 {
                let grown = self.buf.len() + STEP;
                self.buf.resize(grown, 0);
            }
            // One byte more than allowed tells "too large" apart from "exactly at the limit".
            let allowed = limit.saturating_sub(self.message_len).saturating_add(1);
            let window = ((self.buf.len() - self.filled) as u64).min(allowed) as usize;
            let (before_in, before_out) = (z.total_in(), z.total_out());
            let out = &mut self.buf[self.filled..self.filled + window];
            let status = z.decompress(input, out, flush);
            let consumed = (z.total_in() - before_in) as usize;
            let produced = (z.total_out() - before_out) as usize;
            input = &input[consumed..];
            // Counted also when the data turns out corrupt: what came before the error is
            // output (see `inflate`).
            self.filled += produced;
            self.message_len += produced as u64;
            let status = status.map_err(|_| InflateError::Corrupt)?;
            if self.message_len > limit {
                return Err(InflateError::TooLarge { max: limit });
            }
            if status == Status::StreamEnd {
                self.finished = true;
                return Ok(());
            }
            if input.is_empty() && produced < window {
                return Ok(());
            }
            if consumed == 0 && produced == 0 {
                // Input left and room to write, yet no progress.
                return Err(InflateError::Corrupt);
            }
        }
    }
}

/// Compresses the messages of one direction.
///
/// The zlib context is allocated by the first message, not before, and kept between
/// messages only with context takeover: with `no_context_takeover` it is given up at the end
/// of each message (to a small pool the next message takes it from). With zlib-rs it takes `4 << window_bits` bytes (window and chain), a
/// 128 KiB hash table whatever the settings, and `7 << (mem_level + 6)` bytes of literal
/// buffers: 273 KiB at window 15 and memLevel 5, 161 KiB at window 12.
pub struct Deflater {
    /// `None` until the first message, and between messages without context takeover.
    z: Option<Deflate>,
    level: u8,
    window_bits: u8,
    mem_level: u8,
    reset_each_message: bool,
}

impl fmt::Debug for Deflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deflater")
            .field("level", &self.level)
            .field("window_bits", &self.window_bits)
            .field("mem_level", &self.mem_level)
            .field("reset_each_message", &self.reset_each_message)
            .field("has_context", &self.z.is_some())
            .finish()
    }
}

impl Deflater {
    /// A compressor at `level` (0–9) with a window of `window_bits` (9–15) and
    /// [`DEFAULT_MEM_LEVEL`]. zlib cannot produce raw DEFLATE with an 8-bit window, so
    /// negotiation never agrees to compress with 8; a value of 8 given here is raised to 9.
    /// Allocates nothing until the first message.
    pub const fn new(level: u32, window_bits: u8, no_context_takeover: bool) -> Self {
        let level = if level > 9 { 9 } else { level as u8 };
        let bits = if window_bits < 9 {
            9
        } else if window_bits > 15 {
            15
        } else {
            window_bits
        };
        Self {
            z: None,
            level,
            window_bits: bits,
            mem_level: DEFAULT_MEM_LEVEL,
            reset_each_message: no_context_takeover,
        }
    }

    /// The same compressor with zlib's memLevel (1–9, clamped): the size of its literal
    /// buffers, so of the blocks it emits; less memory, slightly larger output.
    #[must_use]
    pub const fn with_mem_level(mut self, mem_level: u8) -> Self {
        self.mem_level = if mem_level < 1 {
            1
        } else if mem_level > 9 {
            9
        } else {
            mem_level
        };
        self
    }

    /// Whether a zlib context is allocated now.
    pub const fn has_context(&self) -> bool {
        self.z.is_some()
    }

    /// The window it compresses with (9–15, as clamped by [`Self::new`]).
    pub const fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// The compression level (0–9).
    pub const fn level(&self) -> u8 {
        self.level
    }

    /// zlib's memLevel (1–9).
    pub const fn mem_level(&self) -> u8 {
        self.mem_level
    }

    /// The settings as one number, to find a pooled context made with them.
    fn pool_key(&self) -> u32 {
        u32::from(self.level) | u32::from(self.window_bits) << 8 | u32::from(self.mem_level) << 16
    }

    fn context(&mut self) -> &mut Deflate {
        let (level, bits, mem) = (self.level, self.window_bits, self.mem_level);
        let key = self.pool_key();
        self.z.get_or_insert_with(|| {
            if let Some(z) = pool::take_deflate(key) {
                return z;
            }
            Deflate::new_with_config(ZConfig {
                level: i32::from(level),
                method: Method::Deflated,
                window_bits: -i32::from(bits),
                mem_level: i32::from(mem),
                strategy: Strategy::Default,
            })
        })
    }

    /// Appends the compressed form of `input` (one frame's worth of a message) to `out`. With
    /// `fin` the message ends: the sync-flush tail is removed (an empty result becomes the single
    /// byte `00`) and the context is freed if it must not be taken over.
    pub fn compress(&mut self, input: &[u8], fin: bool, out: &mut Vec<u8>) {
        let start = out.len();
        let mut rest = input;
        let z = self.context();
        loop {
            // zlib-rs writes into initialised bytes: zeroed room, sized to the input left (the
            // output is usually smaller), then cut to what was produced.
            let room = (rest.len() / 2).clamp(256, 1 << 20);
            let len = out.len();
            out.resize(len + room, 0);
            let (before_in, before_out) = (z.total_in(), z.total_out());
            let status = z.compress(rest, &mut out[len..], DeflateFlush::SyncFlush);
            let consumed = (z.total_in() - before_in) as usize;
            let produced = (z.total_out() - before_out) as usize;
            out.truncate(len + produced);
            // A sync flush on a valid state cannot fail; treat an error as "nothing more to
            // write" rather than panicking.
            if status.is_err() {
                break;
            }
            rest = &rest[consumed..];
            let room_left = produced < room;
            if rest.is_empty() && room_left && produced > 0 && out[start..].ends_with(&TAIL) {
                break;
            }
            if rest.is_empty() && room_left && produced == 0 {
                break;
            }
        }
        if fin {
            if out[start..].ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            }
            if out.len() == start {
                out.push(0x00);
            }
            if self.reset_each_message {
                let key = self.pool_key();
                if let Some(z) = self.z.take() {
                    pool::put_deflate(key, z);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn context_takeover_shrinks_repeated_messages() {
        let text = b"The quick brown fox jumps over the lazy dog. ".repeat(20);
        let mut with = Deflater::new(6, 15, false);
        let mut without = Deflater::new(6, 15, true);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        with.compress(&text, true, &mut a);
        let first = a.len();
        a.clear();
        with.compress(&text, true, &mut a);
        without.compress(&text, true, &mut b);
        b.clear();
        without.compress(&text, true, &mut b);
        assert!(a.len() < first / 2, "{} vs {first}", a.len());
        assert_eq!(b.len(), first);
        // Both inflate with the matching inflater.
        let mut rx = Inflater::new(true);
        let n = rx.inflate(&b, true, 1 << 20).unwrap();
        assert_eq!(&rx.output()[..n], &text[..]);
    }

    #[test]
    fn contexts_are_allocated_by_the_first_message_and_kept_with_takeover() {
        let mut tx = Deflater::new(6, 15, false).with_mem_level(3);
        let mut rx = Inflater::new(false);
        assert!(!tx.has_context() && !rx.has_context());
        assert_eq!(rx.capacity(), 0);
        for text in ["hello hello hello", "hello hello again"] {
            let mut wire = Vec::new();
            tx.compress(text.as_bytes(), true, &mut wire);
            let n = rx.inflate(&wire, true, 1 << 20).unwrap();
            assert_eq!(&rx.output()[..n], text.as_bytes());
            rx.release();
            // Context takeover: the LZ77 state is kept between messages.
            assert!(tx.has_context() && rx.has_context());
        }
        // The output storage shrinks to 32 KiB between messages.
        let big = vec![b'x'; 1 << 20];
        let mut wire = Vec::new();
        tx.compress(&big, true, &mut wire);
        let n = rx.inflate(&wire, true, 1 << 21).unwrap();
        assert_eq!(n, 1 << 20);
        rx.release();
        assert!(rx.capacity() <= STEP, "{}", rx.capacity());
    }

    #[test]
    fn contexts_are_freed_after_each_message_without_takeover() {
        let mut tx = Deflater::new(6, 12, true);
        let mut rx = Inflater::new(true);
        for _ in 0..3 {
            let mut first = Vec::new();
            let mut last = Vec::new();
            tx.compress(b"a fragmented ", false, &mut first);
            // Within a message the contexts live.
            assert!(tx.has_context());
            tx.compress(b"message, a fragmented message", true, &mut last);
            assert!(!tx.has_context());
            let mut got = Vec::new();
            let n = rx.inflate(&first, false, 1 << 20).unwrap();
            got.extend_from_slice(&rx.output()[..n]);
            assert!(rx.has_context());
            rx.release(); // mid-message: nothing is freed
            assert!(rx.has_context());
            let n = rx.inflate(&last, true, 1 << 20).unwrap();
            got.extend_from_slice(&rx.output()[..n]);
            assert_eq!(got, b"a fragmented message, a fragmented message");
            assert!(!rx.has_context());
            rx.release();
            assert_eq!(rx.capacity(), 0);
        }
        // A failed message frees the context too.
        assert!(rx.inflate(&[0xff, 0xff, 0xff], true, 100).is_err());
        assert!(!rx.has_context());
    }

    #[test]
    fn pooled_contexts_start_afresh_for_every_message_of_every_connection() {
        // Two connections on one thread, without context takeover, their messages
        // interleaved (one of them fragmented around the other's): each message gets a reset
        // context, whoever used it before, and inflates back exactly.
        let text = |i: usize| alloc::format!("message {i}, message {i}, the same words again");
        let (mut a_tx, mut b_tx) = (Deflater::new(6, 15, true), Deflater::new(6, 15, true));
        let (mut a_rx, mut b_rx) = (Inflater::new(true), Inflater::new(true));
        let mut first_wire = None;
        for i in 0..6 {
            let (mut a1, mut a2, mut b) = (Vec::new(), Vec::new(), Vec::new());
            a_tx.compress(b"fragment, ", false, &mut a1);
            b_tx.compress(text(i).as_bytes(), true, &mut b);
            a_tx.compress(text(i).as_bytes(), true, &mut a2);
            let n = b_rx.inflate(&b, true, 1 << 20).unwrap();
            assert_eq!(&b_rx.output()[..n], text(i).as_bytes());
            b_rx.release();
            let mut got = Vec::new();
            let n = a_rx.inflate(&a1, false, 1 << 20).unwrap();
            got.extend_from_slice(&a_rx.output()[..n]);
            let n = a_rx.inflate(&a2, true, 1 << 20).unwrap();
            got.extend_from_slice(&a_rx.output()[..n]);
            a_rx.release();
            assert_eq!(got, [&b"fragment, "[..], text(i).as_bytes()].concat());
            // A fresh context each time: the same message compresses to the same bytes.
            if i == 0 {
                first_wire = Some(b.clone());
            }
            let mut again = Vec::new();
            b_tx.compress(text(0).as_bytes(), true, &mut again);
            assert_eq!(Some(&again), first_wire.as_ref());
        }
    }

    #[test]
    fn chunked_inflate_equals_whole_and_empty_message() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i >> 9) as u8)
            .collect();
        let mut tx = Deflater::new(6, 12, false);
        let mut wire = Vec::new();
        tx.compress(&data, true, &mut wire);
        for split in [1usize, 7, 1000, wire.len()] {
            let mut rx = Inflater::new(false);
            let mut got = Vec::new();
            let pieces: Vec<&[u8]> = wire.chunks(split).collect();
            for (i, p) in pieces.iter().enumerate() {
                let n = rx.inflate(p, i + 1 == pieces.len(), 1 << 30).unwrap();
                got.extend_from_slice(&rx.output()[..n]);
            }
            assert_eq!(got, data, "split {split}");
        }
        let mut empty = Vec::new();
        tx.compress(&[], true, &mut empty);
        let mut rx = Inflater::new(false);
        assert_eq!(rx.inflate(&empty, true, 10).unwrap(), 0);
        assert_eq!(rx.inflate(&[0x00], true, 10).unwrap(), 0);
    }

    #[test]
    fn fragments_compress_independently_flushed() {
        let mut tx = Deflater::new(6, 15, false);
        let mut f1 = Vec::new();
        let mut f2 = Vec::new();
        tx.compress(b"hello ", false, &mut f1);
        tx.compress(b"world", true, &mut f2);
        let mut rx = Inflater::new(false);
        let n1 = rx.inflate(&f1, false, 100).unwrap();
        let mut got = rx.output()[..n1].to_vec();
        let n2 = rx.inflate(&f2, true, 100).unwrap();
        got.extend_from_slice(&rx.output()[..n2]);
        assert_eq!(got, b"hello world");
    }

    #[test]
    fn bomb_stops_at_limit_with_bounded_memory() {
        // 16 MiB of zeros compresses to about 16 KiB; inflate with a 1 MiB limit.
        let zeros = vec![0u8; 16 << 20];
        let mut tx = Deflater::new(9, 15, true);
        let mut wire = Vec::new();
        tx.compress(&zeros, true, &mut wire);
        assert!(wire.len() < 40_000);
        let mut rx = Inflater::new(true);
        let err = rx.inflate(&wire, true, 1 << 20).unwrap_err();
        assert_eq!(err, InflateError::TooLarge { max: 1 << 20 });
        assert!(rx.capacity() <= (1 << 20) + 2 * STEP, "{}", rx.capacity());
        assert_eq!(err.to_protocol_error().close_code().0, 1009);
        // Exactly at the limit is fine.
        let mut tx = Deflater::new(9, 15, true);
        let mut wire = Vec::new();
        tx.compress(&zeros[..1000], true, &mut wire);
        assert_eq!(rx.inflate(&wire, true, 1000).unwrap(), 1000);
    }

    #[test]
    fn corrupt_data_is_1007() {
        let mut rx = Inflater::new(false);
        let err = rx
            .inflate(&[0xff, 0xff, 0xff, 0xff, 0x00], true, 1 << 20)
            .unwrap_err();
        assert_eq!(err, InflateError::Corrupt);
        assert_eq!(err.to_protocol_error().close_code().0, 1007);
    }

    #[test]
    fn bfinal_block_is_accepted() {
        // A complete raw deflate stream with BFINAL set ("hi").
        let mut z = Deflate::new(6, false, 15);
        let mut out = vec![0u8; 64];
        assert_eq!(
            z.compress(b"hi", &mut out, DeflateFlush::Finish),
            Ok(Status::StreamEnd)
        );
        out.truncate(z.total_out() as usize);
        let mut rx = Inflater::new(false);
        let n = rx.inflate(&out, true, 100).unwrap();
        assert_eq!(&rx.output()[..n], b"hi");
        // The next message starts a fresh stream.
        let mut tx = Deflater::new(6, 15, false);
        let mut wire = Vec::new();
        tx.compress(b"again", true, &mut wire);
        let n = rx.inflate(&wire, true, 100).unwrap();
        assert_eq!(&rx.output()[..n], b"again");
    }
}
