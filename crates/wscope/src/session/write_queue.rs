//! The write queue: bytes waiting to be written, with buffers kept for reuse.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::Bytes;

use crate::prepared::PreparedMessage;

/// Small write buffers kept for reuse.
const SMALL_BUF: usize = 16 * 1024;
/// Shared bytes up to this size are copied into the open buffer instead of being queued as
/// a segment of their own: many small frames then go out in one write of one slice (a
/// broadcast's 1 KiB prepared frames), where as segments they would take one iovec each
/// and several writes per batch; the copy costs less than the extra system calls.
pub(crate) const SHARE_MIN: usize = 4 * 1024;

/// Segment slots an empty queue keeps.
const SEGS_KEEP: usize = 64;

/// One queued piece: a buffer of the queue's own, or bytes shared with the application (a
/// [`Bytes`] payload, a prepared message's frame) that are written as they are.
enum Seg {
    Own(Vec<u8>),
    Shared(Bytes),
    /// A prepared message's whole frame, written from the message itself (see
    /// [`WriteQueue::push_prepared`]).
    Prepared(PreparedMessage),
}

impl Seg {
    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Own(v) => v,
            Self::Shared(b) => b,
            Self::Prepared(m) => m.frame_ref(),
        }
    }
}

/// Bytes waiting to be written: small frames are appended to a shared buffer, large owned
/// payloads are queued as they are (a server's echo goes out as header + payload, no copy).
#[derive(Default)]
pub(crate) struct WriteQueue {
    segs: VecDeque<Seg>,
    head: usize,
    queued: usize,
    tail_open: bool,
    spare: Vec<Vec<u8>>,
    recycled: Vec<Vec<u8>>,
    /// The transport writes many slices in one call (see [`Self::set_vectored`]).
    vectored: bool,
    /// Bytes of [`Seg::Prepared`] segments queued (whole segments): memory shared with the
    /// application, not the queue's own.
    referenced: usize,
}

impl WriteQueue {
    /// Appends to the open small buffer; `f` writes into it.
    /// A buffer filled to [`SMALL_BUF`] is closed first: a burst of small frames goes into
    /// several buffers of about that size (reused, see [`Self::pop_front`]) rather than one
    /// that keeps growing (each growth a copy, and past glibc's mmap threshold a fresh
    /// mapping for every burst).
    pub(super) fn append<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let full = matches!(self.segs.back(), Some(Seg::Own(v)) if v.len() >= SMALL_BUF);
        if !self.tail_open || full || !matches!(self.segs.back(), Some(Seg::Own(_))) {
            let buf = self
                .spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(SMALL_BUF));
            self.segs.push_back(Seg::Own(buf));
            self.tail_open = true;
        }
        let Some(Seg::Own(tail)) = self.segs.back_mut() else {
            unreachable!("an owned segment is at the back")
        };
        let before = tail.len();
        let r = f(tail);
        self.queued += tail.len() - before;
        r
    }

    /// Closes the open small buffer: whatever is appended from now on goes to a new segment,
    /// so the bytes queued so far are never moved or reallocated until [`Self::advance`]
    /// passes them. A completion-based driver calls this when it hands the pending slices to
    /// the kernel (the io_uring server), whose send reads them after the call returns.
    #[cfg(all(target_os = "linux", feature = "io-uring"))]
    pub(crate) fn seal(&mut self) {
        self.tail_open = false;
    }

    pub(super) fn push_owned(&mut self, v: Vec<u8>) {
        if v.is_empty() {
            return;
        }
        self.queued += v.len();
        self.segs.push_back(Seg::Own(v));
        self.tail_open = false;
    }

    /// Queues shared bytes as they are (no copy): they are written from the `Bytes` itself,
    /// which is dropped once written. Below [`SHARE_MIN`] bytes they are copied into the
    /// open buffer instead.
    pub(super) fn push_shared(&mut self, b: Bytes) {
        if b.is_empty() {
            return;
        }
        if b.len() < SHARE_MIN {
            self.append(|buf| buf.extend_from_slice(&b));
            return;
        }
        self.queued += b.len();
        self.segs.push_back(Seg::Shared(b));
        self.tail_open = false;
    }

    /// [`Self::push_shared`] for bytes the caller keeps: small ones are copied straight from
    /// `b`, and only large ones take a reference (two atomic operations per frame saved on
    /// a broadcast's small frames).
    pub(super) fn push_shared_ref(&mut self, b: &Bytes) {
        if b.len() < SHARE_MIN {
            if !b.is_empty() {
                self.append(|buf| buf.extend_from_slice(b));
            }
            return;
        }
        self.push_shared(b.clone());
    }

    /// The transport takes many slices in one write (`writev` on a socket): a prepared
    /// message's frame is then queued as it is, whatever its size ([`Self::push_prepared`]).
    /// Off by default (a TLS stream writes one slice per call: small frames are better
    /// copied together).
    #[cfg(feature = "tokio")]
    pub(crate) fn set_vectored(&mut self, on: bool) {
        self.vectored = on;
    }

    /// Queues a prepared message's whole frame (unmasked, uncompressed). With a vectored
    /// transport it is written from the message itself, whatever its size: a broadcast's
    /// frames go to the kernel straight from the one copy every connection shares (cache
    /// hot), where copying each into every connection's buffer first cost a copy per
    /// delivery and touched a buffer per connection. Otherwise as [`Self::push_shared_ref`].
    pub(super) fn push_prepared(&mut self, msg: &PreparedMessage) {
        if self.takes_prepared(msg) {
            self.push_prepared_owned(msg.clone());
        } else {
            self.push_shared_ref(msg.frame_ref());
        }
    }

    /// Whether [`Self::push_prepared`] queues `msg` itself (a vectored transport, a frame
    /// under [`SHARE_MIN`]; larger ones are shared as `Bytes`).
    pub(super) fn takes_prepared(&self, msg: &PreparedMessage) -> bool {
        self.vectored && msg.frame_ref().len() < SHARE_MIN
    }

    /// Queues `msg` itself (see [`Self::takes_prepared`]).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(super) fn push_prepared_owned(&mut self, msg: PreparedMessage) {
        self.queued += msg.frame_ref().len();
        self.referenced += msg.frame_ref().len();
        self.segs.push_back(Seg::Prepared(msg));
        self.tail_open = false;
    }

    /// Bytes still to write.
    pub(crate) const fn len(&self) -> usize {
        self.queued
    }

    /// Bytes still to write that the queue holds in memory of its own (not prepared frames
    /// queued by reference).
    #[cfg(feature = "tokio")]
    pub(crate) const fn owned_len(&self) -> usize {
        self.queued.saturating_sub(self.referenced)
    }

    /// Up to `dst.len()` slices of pending bytes, in order.
    pub(crate) fn slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (i, seg) in self.segs.iter().enumerate() {
            if n == dst.len() {
                break;
            }
            let seg = seg.as_slice();
            let s = if i == 0 { &seg[self.head..] } else { seg };
            if !s.is_empty() {
                dst[n] = IoSlice::new(s);
                n += 1;
            }
        }
        n
    }

    /// Marks `n` bytes as written.
    pub(crate) fn advance(&mut self, mut n: usize) {
        self.queued -= n.min(self.queued);
        while n > 0 {
            let Some(front) = self.segs.front() else {
                break;
            };
            let left = front.as_slice().len() - self.head;
            if n < left {
                self.head += n;
                return;
            }
            n -= left;
            self.head = 0;
            self.pop_front();
        }
        while self
            .segs
            .front()
            .is_some_and(|f| f.as_slice().len() == self.head)
        {
            self.head = 0;
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some(seg) = self.segs.pop_front() {
            if self.segs.is_empty() {
                self.tail_open = false;
                // A burst of prepared frames (a slice each) grew the ring: an idle
                // connection keeps a small one.
                if self.segs.capacity() > SEGS_KEEP {
                    self.segs.shrink_to(SEGS_KEEP);
                }
            }
            let mut seg = match seg {
                Seg::Own(v) => v,
                // A payload the application gave up (an echoed message) is reused as a
                // receive buffer; one still shared elsewhere is only released.
                Seg::Shared(b) if b.len() > 4 * SMALL_BUF && b.is_unique() => Vec::from(b),
                Seg::Shared(_) => return,
                Seg::Prepared(m) => {
                    self.referenced -= m.frame_ref().len().min(self.referenced);
                    return;
                }
            };
            seg.clear();
            if seg.capacity() <= 4 * SMALL_BUF {
                if self.spare.len() < 2 {
                    self.spare.push(seg);
                }
            } else if self.recycled.len() < 2 {
                self.recycled.push(seg);
            }
        }
    }

    /// Drops everything queued, spare buffers included (the connection is abandoned).
    pub(crate) fn clear(&mut self) {
        *self = Self {
            vectored: self.vectored,
            ..Self::default()
        };
    }

    /// A large buffer that was written out, for reuse as a receive buffer.
    pub(super) fn take_recycled(&mut self) -> Option<Vec<u8>> {
        self.recycled.pop()
    }
}

#[cfg(all(test, target_os = "linux", feature = "io-uring"))]
mod tests {
    use super::*;

    /// Address and contents of the first pending slice.
    fn first(q: &WriteQueue) -> (usize, Vec<u8>) {
        let mut s = [IoSlice::new(&[]); 4];
        assert!(q.slices(&mut s) > 0);
        (s[0].as_ptr() as usize, s[0].to_vec())
    }

    #[test]
    fn sealed_bytes_stay_in_place_until_advanced() {
        let mut q = WriteQueue::default();
        q.append(|b| b.extend_from_slice(b"in flight"));
        let (at, bytes) = first(&q);
        q.seal();
        // Enough appends to reallocate the first segment many times over, were it still open.
        for _ in 0..2000 {
            q.append(|b| b.extend_from_slice(&[7; 100]));
        }
        q.push_owned(vec![9; 50_000]);
        assert_eq!(first(&q), (at, bytes));
        assert_eq!(q.len(), 9 + 2000 * 100 + 50_000);
        // A partial completion moves within the sealed segment; the rest is still in place.
        q.advance(3);
        assert_eq!(first(&q), (at + 3, b"flight".to_vec()));
        q.advance(6);
        assert_eq!(first(&q).1[0], 7);
    }
}
