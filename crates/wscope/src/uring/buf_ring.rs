//! The provided-buffer ring that multishot receives fill (`IORING_REGISTER_PBUF_RING`,
//! Linux 5.19+): the kernel takes a free buffer for each chunk it receives and names it in
//! the completion; the loop copies the chunk into the session's input and gives the buffer
//! back at once, so a few buffers serve every connection.

// Memory shared with the kernel: the ring of buffer descriptors and the buffers themselves.
#![allow(unsafe_code)]

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, Ordering};
use std::alloc;
use std::io;

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// The kernel maps the descriptor ring by pages.
const PAGE: usize = 4096;
/// Gap between buffers, in bytes: an odd number of cache lines, so the buffers' first bytes
/// (all a short message touches) fall into different cache sets instead of competing for
/// the same few, as buffers a power of two apart would.
const STAGGER: usize = 5 * 64;

/// A registered ring of `entries` buffers of `buf_len` bytes each, buffer group `bgid`.
///
/// The kernel writes into a buffer only while it is *provided* (in the ring); once a
/// completion names it, it is ours until [`Self::give_back`]. The memory is raw (never a
/// Rust reference over the whole area) because the kernel writes other buffers while we
/// read one.
pub(super) struct BufRing {
    ring: NonNull<BufRingEntry>,
    ring_layout: Layout,
    bufs: NonNull<u8>,
    bufs_layout: Layout,
    buf_len: usize,
    /// Distance between the starts of two buffers (see [`STAGGER`]).
    stride: usize,
    entries: u16,
    /// Our copy of the ring's tail: where the next given-back buffer goes.
    tail: u16,
    /// Buffers given back since the tail was last published to the kernel.
    unpublished: bool,
    bgid: u16,
}

impl BufRing {
    /// Allocates the ring and its buffers, registers them as buffer group `bgid` and provides
    /// every buffer. `entries` must be a power of two (at most 32768).
    pub(super) fn register(
        uring: &IoUring,
        entries: u16,
        buf_len: usize,
        bgid: u16,
    ) -> io::Result<Self> {
        debug_assert!(entries.is_power_of_two() && entries <= 1 << 15);
        let stride = buf_len + STAGGER;
        let invalid = |_| io::Error::from(io::ErrorKind::InvalidInput);
        let ring_layout =
            Layout::from_size_align(usize::from(entries) * size_of::<BufRingEntry>(), PAGE)
                .map_err(invalid)?;
        let bufs_layout =
            Layout::from_size_align(usize::from(entries) * stride, PAGE).map_err(invalid)?;
        // SAFETY: both layouts have a non-zero size (entries >= 1, buf_len >= 1).
        let ring = NonNull::new(unsafe { alloc::alloc_zeroed(ring_layout) }.cast::<BufRingEntry>());
        // SAFETY: as above.
        let bufs = NonNull::new(unsafe { alloc::alloc(bufs_layout) });
        let (Some(ring), Some(bufs)) = (ring, bufs) else {
            alloc::handle_alloc_error(ring_layout);
        };
        // SAFETY: the ring is page-aligned, zeroed (tail 0) and `entries` long. It and the
        // buffers stay allocated until `unregister` succeeds; a ring that is never
        // unregistered is leaked (there is no `Drop`).
        let registered = unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(ring.as_ptr() as u64, entries, bgid, 0)
        };
        if let Err(e) = registered {
            // SAFETY: allocated above with these layouts; the kernel did not take them.
            unsafe {
                alloc::dealloc(ring.as_ptr().cast(), ring_layout);
                alloc::dealloc(bufs.as_ptr(), bufs_layout);
            }
            return Err(e);
        }
        let mut this = Self {
            ring,
            ring_layout,
            bufs,
            bufs_layout,
            buf_len,
            stride,
            entries,
            tail: 0,
            unpublished: false,
            bgid,
        };
        for bid in 0..entries {
            this.give_back(bid);
        }
        this.publish();
        Ok(this)
    }

    /// The buffer group the receives select from.
    pub(super) const fn group(&self) -> u16 {
        self.bgid
    }

    /// The first `len` bytes of buffer `bid`, which a completion reported as filled.
    pub(super) fn chunk(&self, bid: u16, len: usize) -> &[u8] {
        let bid = usize::from(bid % self.entries);
        // SAFETY: buffer `bid` lies inside the allocation; the kernel filled it and does not
        // touch it again until it is given back, which needs `&mut self` (so not while this
        // borrow lives).
        unsafe {
            core::slice::from_raw_parts(
                self.bufs.as_ptr().add(bid * self.stride),
                len.min(self.buf_len),
            )
        }
    }

    /// Returns buffer `bid` to the ring (visible to the kernel at the next [`Self::publish`]).
    pub(super) fn give_back(&mut self, bid: u16) {
        let bid = bid % self.entries;
        let slot = usize::from(self.tail & (self.entries - 1));
        // SAFETY: `slot` < `entries`, inside the ring. The kernel reads only entries between
        // its head and the published tail; this one is past the published tail.
        let entry = unsafe { &mut *self.ring.as_ptr().add(slot) };
        // SAFETY: as for `chunk`, the buffer address is inside the allocation.
        let addr = unsafe { self.bufs.as_ptr().add(usize::from(bid) * self.stride) };
        entry.set_addr(addr as u64);
        entry.set_len(u32::try_from(self.buf_len).unwrap_or(u32::MAX));
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        self.unpublished = true;
    }

    /// Makes the buffers given back so far available to the kernel.
    pub(super) fn publish(&mut self) {
        if !self.unpublished {
            return;
        }
        self.unpublished = false;
        // SAFETY: the tail field is the `resv` field of the first entry (the kernel ABI):
        // inside the ring, 2-byte aligned, and the kernel reads it with acquire ordering.
        unsafe {
            let tail = BufRingEntry::tail(self.ring.as_ptr()).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }

    /// Unregisters the ring and frees its memory; if the kernel refuses to let go, the
    /// memory is leaked instead of freed under it.
    pub(super) fn unregister(self, uring: &IoUring) {
        if uring.submitter().unregister_buf_ring(self.bgid).is_ok() {
            // SAFETY: allocated in `register` with these layouts; the kernel no longer
            // refers to either allocation.
            unsafe {
                alloc::dealloc(self.ring.as_ptr().cast(), self.ring_layout);
                alloc::dealloc(self.bufs.as_ptr(), self.bufs_layout);
            }
        }
        // Without `Drop`, the memory is otherwise leaked (never freed under the kernel).
    }
}
