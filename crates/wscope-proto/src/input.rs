//! Caller-owned input buffers: the bytes the core reads from and unmasks in place.
//!
//! The core never owns the network's bytes. It looks at [`Input::buf_mut`], may rewrite them in
//! place (unmasking), and tells how much it used with [`Input::consume`]. Payload chunks handed
//! out by the core are sub-slices of that buffer, valid until the next call that consumes.
//! [`SliceInput`] wraps a plain `&mut [u8]` (embedded, caller-managed memory); [`VecInput`] is a
//! growable buffer that compacts itself (drivers and the passive analyzer).

use alloc::vec::Vec;

/// A buffer of received bytes that the core reads and consumes from the front.
pub trait Input {
    /// The unconsumed bytes. Mutable so payloads can be unmasked in place.
    fn buf_mut(&mut self) -> &mut [u8];
    /// Marks `n` more bytes as used. Cumulative; the core never consumes more than
    /// `buf_mut().len()`.
    fn consume(&mut self, n: usize);
    /// Whether the peer has closed its sending half (no more bytes will come).
    fn is_eof(&self) -> bool;
}

/// A borrowed buffer: the caller owns the memory and learns how much was used.
#[derive(Debug)]
pub struct SliceInput<'a> {
    buf: &'a mut [u8],
    consumed: usize,
    eof: bool,
}

impl<'a> SliceInput<'a> {
    /// Wraps `buf`; `eof` tells whether the stream ends after it.
    pub fn new(buf: &'a mut [u8], eof: bool) -> Self {
        Self {
            buf,
            consumed: 0,
            eof,
        }
    }

    /// How many bytes have been consumed so far.
    pub const fn consumed(&self) -> usize {
        self.consumed
    }

    /// Gives the buffer back with the number of consumed bytes.
    pub fn into_consumed(self) -> usize {
        self.consumed
    }
}

impl Input for SliceInput<'_> {
    fn buf_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.consumed..]
    }

    fn consume(&mut self, n: usize) {
        self.consumed = (self.consumed + n).min(self.buf.len());
    }

    fn is_eof(&self) -> bool {
        self.eof
    }
}

/// An owned, growable input buffer: append at the back, consume from the front.
///
/// The storage is initialised once and reused: [`VecInput::spare`] hands out the free tail for
/// a `read` to fill and [`VecInput::commit`] records how much was filled, so reading into it
/// costs no extra copy. Consumed bytes are reclaimed when the buffer needs room.
#[derive(Debug, Default, Clone)]
pub struct VecInput {
    storage: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl VecInput {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            storage: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// An empty buffer with `cap` bytes of storage ready.
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            storage: alloc::vec![0; cap],
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// Appends received bytes.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.spare(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// A writable region of at least `min` bytes after the unconsumed data, for reading straight
    /// into the buffer; follow with [`VecInput::commit`] for the bytes actually written.
    pub fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.storage.len() - self.end < min && self.start > 0 {
            self.storage.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.storage.len() - self.end < min {
            let want = (self.end + min).max(self.storage.len() * 2);
            self.storage.resize(want, 0);
        }
        &mut self.storage[self.end..]
    }

    /// Records that `n` bytes of the region from [`VecInput::spare`] were filled.
    pub fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.storage.len());
    }

    /// Marks the end of the stream.
    pub fn set_eof(&mut self) {
        self.eof = true;
    }

    /// Number of unconsumed bytes.
    pub const fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether no unconsumed bytes remain.
    pub const fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// The unconsumed bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }

    /// Drops all unconsumed bytes (e.g. after a gap, when the analyzer resynchronises).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Bytes of storage held (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.storage.len()
    }
}

impl Input for VecInput {
    fn buf_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    fn is_eof(&self) -> bool {
        self.eof
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_input_consumes_cumulatively() {
        let mut data = *b"abcdef";
        let mut input = SliceInput::new(&mut data, false);
        input.consume(2);
        assert_eq!(input.buf_mut(), b"cdef");
        input.consume(10);
        assert!(input.buf_mut().is_empty());
        assert_eq!(input.into_consumed(), 6);
    }

    #[test]
    fn vec_input_appends_and_compacts() {
        let mut input = VecInput::new();
        input.extend_from_slice(&[1; 5000]);
        input.consume(4999);
        input.extend_from_slice(&[2; 10]);
        assert_eq!(input.len(), 11);
        assert_eq!(input.as_slice()[0], 1);
        assert_eq!(input.as_slice()[1], 2);
        input.consume(11);
        assert!(input.is_empty());
    }
}
