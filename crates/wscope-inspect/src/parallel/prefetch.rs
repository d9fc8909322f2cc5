//! Fetching the payloads of a batch's next segments into the worker's cache before it
//! handles them.
//!
//! A worker's payloads were written by another core: the thread that read the chunk (the
//! kernel copies it into that thread's buffer) or the dispatcher (which copies them into the
//! batch). The first thing to touch each payload in the worker (the reassembler's hash of the
//! bytes it delivers) then waits for every cache line to come from the other core, one
//! segment after the other: with two workers on bench, that hash took 19 % of the run's
//! samples instead of 9 % with one thread. [`Ahead`] keeps the payloads of the next
//! [`SEGMENTS`] segments on their way into the worker's cache (L2) while it handles the
//! current one, so the transfers overlap the work. (Fetching only the first 4 lines of each
//! payload and leaving the rest to the hardware prefetcher measured no better than nothing;
//! the first 8 of a full segment's 23, about as good as all. See BENCHMARKS.md, "Parallel
//! analysis".)
//!
//! The hint changes no result. On targets other than x86-64 and AArch64 it does nothing.

use super::{InBatch, Item, SegRec};

/// How many segments ahead of the one handled have their payloads fetched.
pub(super) const SEGMENTS: usize = 4;

/// The cache line size assumed (x86-64 and most AArch64 cores).
const LINE: usize = 64;

/// The cursor over a batch's items that fetches the payloads of the segments ahead of the
/// handled one, each once, in order.
#[derive(Debug, Default)]
pub(super) struct Ahead {
    /// The first item not looked at yet.
    next: usize,
    /// Segments fetched and not handled yet.
    fetched: usize,
}

impl Ahead {
    /// Item `i`, a segment, is about to be handled: keeps [`SEGMENTS`] segments after it
    /// fetched (calls `fetch` for each segment not fetched yet, in order).
    pub(super) fn at(&mut self, items: &[Item], i: usize, mut fetch: impl FnMut(&SegRec)) {
        if i < self.next {
            // Fetched when an earlier segment was handled.
            self.fetched -= 1;
        } else {
            self.next = i + 1;
        }
        while self.fetched < SEGMENTS {
            let Some(item) = items.get(self.next) else {
                break;
            };
            if let Item::Seg(s) = item {
                fetch(s);
                self.fetched += 1;
            }
            self.next += 1;
        }
    }

    /// [`Ahead::at`] for a batch's items, fetching the payloads into this core's cache.
    pub(super) fn prefetch(&mut self, batch: &InBatch, i: usize) {
        self.at(&batch.items, i, |s| prefetch(batch.payload(s)));
    }
}

/// Asks the CPU to bring `bytes` into its level 2 cache. A hint: nothing is read, no
/// instruction waits for it, and it never faults.
#[allow(unsafe_code)] // the prefetch intrinsic (x86-64) and instruction (AArch64)
fn prefetch(bytes: &[u8]) {
    for line in bytes.chunks(LINE) {
        let p = line.as_ptr();
        #[cfg(target_arch = "x86_64")]
        // SAFETY: PREFETCHT1 only hints the cache; it cannot fault or change memory, and `p`
        // points into a live slice anyway. SSE is part of the x86-64 baseline.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T1 }>(p.cast());
        }
        #[cfg(target_arch = "aarch64")]
        // SAFETY: PRFM only hints the cache; it cannot fault or change memory, and `p` points
        // into a live slice anyway.
        unsafe {
            core::arch::asm!(
                "prfm pldl2keep, [{0}]",
                in(reg) p,
                options(nostack, preserves_flags, readonly)
            );
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let _ = p;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;
    use wscope_proto::time::Instant;

    fn seg(number: u64) -> Item {
        let addr = core::net::SocketAddr::from(([10, 0, 0, 1], 80));
        Item::Seg(SegRec {
            number,
            now: Instant::ZERO,
            ts: Instant::ZERO,
            src: addr,
            dst: addr,
            seq: 0,
            ack: 0,
            flags: TcpFlags::default(),
            window: 0,
            missing: 0,
            payload: (0, 0),
            shared: false,
        })
    }

    #[test]
    fn each_segment_is_fetched_once_in_order_and_at_most_segments_ahead() {
        // Segments 1..=9 among ticks and secrets, and a batch whose segments are all ahead
        // of the end (fewer than SEGMENTS left).
        let mut items = Vec::new();
        for n in 1..=9u64 {
            if n % 3 == 0 {
                items.push(Item::Tick {
                    number: n,
                    now: Instant::ZERO,
                });
            }
            if n == 5 {
                items.push(Item::Secrets(0, 0));
            }
            items.push(seg(n));
        }
        let mut ahead = Ahead::default();
        let mut fetched = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Item::Seg(s) = item else { continue };
            ahead.at(&items, i, |f| fetched.push(f.number));
            // The handled segment's successors up to SEGMENTS of them are fetched, and no
            // more.
            let expect_last = (s.number + SEGMENTS as u64).min(9);
            assert_eq!(fetched.last().copied(), Some(expect_last));
            assert!(fetched.iter().all(|&f| f <= s.number + SEGMENTS as u64));
        }
        // Each once, in order; the first is handled without being fetched ahead.
        assert_eq!(fetched, (2..=9).collect::<Vec<_>>());
    }

    #[test]
    fn a_fresh_cursor_fetches_nothing_for_a_batch_of_one_segment() {
        let items = [seg(1)];
        let mut ahead = Ahead::default();
        let mut fetched = 0;
        ahead.at(&items, 0, |_| fetched += 1);
        assert_eq!(fetched, 0);
    }
}
