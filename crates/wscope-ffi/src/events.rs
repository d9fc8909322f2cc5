//! Callback mode ([`websock_set_event_handler`]): a thread of the handle's own receives
//! (the same receive as [`websock_recv`]) and reports each piece of frame data to the
//! application's handler, then the end of the connection. [`websock_close`] stops and joins
//! the thread before it frees the handle.

use core::cell::Cell;
use core::ffi::{c_char, c_int, c_void};
use core::panic::AssertUnwindSafe;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::panic::catch_unwind;
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use wscope::blocking::SharedWebSocket;

use crate::api::{handle_ref, now, recv, Handle};
use crate::types::{
    websock_cb_event_t, websock_event_handler, websock_handle_t, websock_msg_hdr_t,
};

#[cfg(doc)]
use crate::{websock_close, websock_recv};

thread_local! {
    /// Set on event-handler threads (no `std::thread::current()`: on a thread created by C
    /// it allocates a handle that is never freed).
    static IN_EVENT_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// A running event thread.
#[derive(Debug)]
pub(crate) struct Events {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Bytes handed to the event handler per call (the SDK's 1400-byte buffer).
const EVENT_BUF: usize = 1400;

/// How long one receive of the event thread waits before it looks at its stop flag.
const EVENT_POLL: Duration = Duration::from_millis(100);

/// Starts a thread that receives on `handle` and reports each piece of frame data (up to 1400
/// bytes per call) to `cb` with `WEBSOCK_CB_EVENT_DATA`, and the end of the connection with
/// `WEBSOCK_CB_EVENT_ERROR` (the SDK's callback mode). Use either this or
/// [`websock_recv`] on a handle, not both. `cb` NULL stops a running handler. Returns 0, or
/// -1 (NULL handle, a handler already running). [`websock_close`] stops the thread first.
///
/// # Safety
/// `handle` is a live handle; `cb` stays callable and `cb_context` valid for it until the
/// handler is stopped or the handle closed.
#[no_mangle]
pub unsafe extern "C" fn websock_set_event_handler(
    handle: websock_handle_t,
    cb: websock_event_handler,
    cb_context: *mut c_void,
) -> c_int {
    ffi_fn!(websock_set_event_handler, -1, {
        // SAFETY: a live handle, as documented.
        let h = unsafe { handle_ref(handle)? };
        let mut slot = h.events.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(cb) = cb else {
            if let Some(ev) = slot.take() {
                stop_events(ev, None);
            }
            return Ok(0);
        };
        if slot.is_some() {
            return Err("a handler is already running".into());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        // The handle outlives the thread: websock_close joins it before freeing the handle.
        let addr = handle as usize;
        let ctx = cb_context as usize;
        let thread = std::thread::Builder::new()
            .name("websock-events".to_owned())
            .spawn(move || event_loop(addr, ctx, cb, &flag))
            .map_err(|e| e.to_string())?;
        *slot = Some(Events {
            stop,
            thread: Some(thread),
        });
        Ok(0)
    })
}

/// Stops the event thread and joins it. With `cut`, a thread still running at its instant
/// (a handler blocked in a send) gets its connection shut down, which ends the send.
pub(crate) fn stop_events(mut ev: Events, cut: Option<(&SharedWebSocket, Instant)>) {
    ev.stop.store(true, Ordering::Relaxed);
    if let Some(t) = ev.thread.take() {
        // From the handler itself (it stopped its own thread): no join, the loop just ends.
        if IN_EVENT_THREAD.with(Cell::get) {
            return;
        }
        if let Some((ws, at)) = cut {
            while !t.is_finished() {
                if now() >= at {
                    ws.abort();
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let _ = t.join();
    }
}

type Callback = unsafe extern "C" fn(
    *mut c_void,
    websock_cb_event_t,
    *mut websock_msg_hdr_t,
    *mut c_char,
    c_int,
);

fn event_loop(addr: usize, ctx: usize, cb: Callback, stop: &AtomicBool) {
    IN_EVENT_THREAD.with(|f| f.set(true));
    // SAFETY: the handle stays alive until websock_close has joined this thread.
    let h = unsafe { &*(addr as *const Handle) };
    let mut buf = vec![0u8; EVENT_BUF];
    while !stop.load(Ordering::Relaxed) {
        let r = catch_unwind(AssertUnwindSafe(|| {
            recv(&h.ws, &mut buf, EVENT_POLL).map_err(|e| e.to_string())
        }))
        .unwrap_or_else(|_| Err("internal error (panic caught)".to_owned()));
        match r {
            // Nothing before the timeout: look at the stop flag again.
            Ok((hdr, _)) if hdr.opcode == -1 => {}
            Ok((mut hdr, len)) => {
                // SAFETY: the application's callback with valid pointers for the call.
                unsafe {
                    cb(
                        ctx as *mut c_void,
                        websock_cb_event_t::WEBSOCK_CB_EVENT_DATA,
                        &mut hdr,
                        buf.as_mut_ptr().cast::<c_char>(),
                        len,
                    );
                }
            }
            Err(e) => {
                let mut hdr = websock_msg_hdr_t {
                    fin: -1,
                    opcode: -1,
                    payload_len: 0,
                };
                let mut text = e.into_bytes();
                let n = c_int::try_from(text.len()).unwrap_or(0);
                text.push(0);
                // SAFETY: as above; `text` is NUL-terminated and lives across the call.
                unsafe {
                    cb(
                        ctx as *mut c_void,
                        websock_cb_event_t::WEBSOCK_CB_EVENT_ERROR,
                        &mut hdr,
                        text.as_mut_ptr().cast::<c_char>(),
                        n,
                    );
                }
                return;
            }
        }
    }
}
