//! Memory of permessage-deflate, counted by a global allocator (its own test binary, with a
//! single test, so no other test allocates meanwhile): negotiating it allocates no zlib
//! context, the first message does, and without context takeover nothing is kept after it.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};
use std::alloc::System;

use wscope_proto::connection::{Config, Connection, DeflateOptions, Outgoing};
use wscope_proto::deflate::{DeflateParams, Deflater};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator with the caller's arguments; the
// counter is only bookkeeping.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with `layout` (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// A client's compressed text message, masked with a zero key.
fn compressed_frame(tx: &mut Deflater, text: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    tx.compress(text.as_bytes(), true, &mut payload);
    let mut frame = vec![0xc1, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(&payload);
    frame
}

/// Bytes the server connection holds: (after the handshake, after one message each way,
/// after the next `recv`).
fn held(params: DeflateParams) -> (usize, usize) {
    let mut server = Connection::server(Config::default());
    let mut tx = Deflater::new(6, 15, params.client_no_context_takeover);
    let mut wire = compressed_frame(&mut tx, "a message compressed by the client, hello hello");
    let mut out = Vec::with_capacity(4096);
    let before = live();
    server.enable_deflate(params, DeflateOptions::default());
    let idle = live() - before;
    let mut at = 0;
    while at < wire.len() {
        let step = server.recv(&mut wire[at..]).expect("valid frame");
        at += step.consumed;
    }
    server
        .send(
            &mut out,
            Outgoing::Text("a reply long enough to be compressed"),
        )
        .expect("send");
    // The next read (nothing arrived) frees what the message left.
    let _ = server.recv(&mut []).expect("no input");
    (idle, live() - before)
}

#[test]
fn negotiated_deflate_allocates_on_first_message_and_frees_without_takeover() {
    let takeover = DeflateParams::default();
    let (idle, active) = held(takeover);
    // No zlib context at the handshake (it was about 400 KiB: both contexts).
    assert!(idle < 4 * 1024, "idle connection holds {idle} bytes");
    // With context takeover a message leaves both contexts (about 320 KiB at window 15).
    assert!(
        active > 200 * 1024,
        "active connection holds only {active} bytes"
    );
    let no_takeover = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflateParams::default()
    };
    let (idle, after) = held(no_takeover);
    assert!(idle < 4 * 1024, "idle connection holds {idle} bytes");
    assert!(
        after < 4 * 1024,
        "without takeover {after} bytes are kept after a message"
    );
}
