//! A global allocator that counts the bytes live, for tests and examples that measure memory.
//!
//! A binary declares it once and reads it where it measures; nothing else in the process
//! should allocate meanwhile (give such a test its own test binary, with a single test):
//!
//! ```ignore
//! use wscope_test_support::CountingAlloc;
//!
//! #[global_allocator]
//! static GLOBAL: CountingAlloc = CountingAlloc::new();
//!
//! let before = GLOBAL.live();
//! let v = vec![0u8; 4096];
//! assert!(GLOBAL.live() - before >= 4096);
//! ```

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};
use std::alloc::System;

/// The system allocator, counting the bytes requested and not yet freed (the resident share
/// can be lower: untouched pages of a large allocation are never mapped in).
#[derive(Debug, Default)]
pub struct CountingAlloc {
    live: AtomicUsize,
}

impl CountingAlloc {
    /// A counter at zero, for a `#[global_allocator]` static.
    pub const fn new() -> Self {
        Self {
            live: AtomicUsize::new(0),
        }
    }

    /// The bytes allocated through this allocator and not yet freed.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

// SAFETY: every call is forwarded to the system allocator with the caller's arguments; the
// counter is only bookkeeping.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.live.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.live.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with `layout` (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}
