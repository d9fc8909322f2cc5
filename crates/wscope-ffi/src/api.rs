//! The entry points of a connection: open, send, receive, close. Each converts its C
//! arguments and calls the handle's [`Websock`] (`wscope::simple`), where the `websock_*`
//! semantics live (pings answered and not returned, the close answered and returned once,
//! every call bounded); [`ffi_fn!`] turns errors and panics into the C return value and the
//! last error.

use core::ffi::{c_char, c_int, c_void};
use core::time::Duration;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use wscope::simple::{MsgHdr, Websock};
use wscope::Error;

use crate::config::{bytes, config_from_c};
use crate::error::CallError;
use crate::events::{stop_events, Events};
use crate::lws::PendingClose;
use crate::types::{
    websock_config_t, websock_handle_t, websock_msg_hdr_t, WEBSOCK_CLOSE_TIMEOUT,
    WEBSOCK_MAX_RECV_TIMEOUT,
};

#[cfg(doc)]
use crate::{websock_close_reason, websock_last_error};

/// The object behind a [`websock_handle_t`].
#[derive(Debug)]
pub(crate) struct Handle {
    /// The connection, with the `websock_*` semantics.
    pub(crate) ws: Websock,
    /// What [`websock_close`] sends, when [`websock_close_reason`] set it.
    pub(crate) close: Mutex<Option<PendingClose>>,
    /// The event thread of callback mode, while it runs.
    pub(crate) events: Mutex<Option<Events>>,
}

/// The handle behind `h`.
///
/// # Safety
/// `h` is NULL or a live handle from [`websock_open`].
pub(crate) unsafe fn handle_ref<'a>(h: websock_handle_t) -> Result<&'a Handle, CallError> {
    if h.is_null() {
        return Err("NULL handle".into());
    }
    // SAFETY: the caller passes a pointer returned by websock_open and not yet closed.
    Ok(unsafe { &*h.cast::<Handle>() })
}

/// The clock (this crate is an I/O driver: it may read it).
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// [`WEBSOCK_CLOSE_TIMEOUT`] as a duration.
pub(crate) fn close_timeout() -> Duration {
    Duration::from_secs(WEBSOCK_CLOSE_TIMEOUT.unsigned_abs().into())
}

/// Opens a connection: TCP (and TLS when `secured` is 1 or 2) within `time_out` seconds,
/// then the opening handshake with the five implicit headers (`Host` with `:port` when not
/// the default, `Upgrade`, `Connection`, a random `Sec-WebSocket-Key`,
/// `Sec-WebSocket-Version: 13`) plus the extra ones; the reply must be a valid 101 with the
/// right `Sec-WebSocket-Accept`. Returns `NULL` on failure, with the reason in
/// [`websock_last_error`].
///
/// # Safety
/// `cfg` is NULL or points to a [`websock_config_t`] whose pointers are NULL or valid
/// NUL-terminated strings (and PEM buffers of the given lengths).
#[no_mangle]
pub unsafe extern "C" fn websock_open(cfg: *mut websock_config_t) -> websock_handle_t {
    ffi_fn!(websock_open, core::ptr::null_mut(), {
        if cfg.is_null() {
            return Err("NULL configuration".into());
        }
        // SAFETY: non-NULL, points to a configuration whose pointers are valid as documented.
        let cfg = unsafe { config_from_c(&*cfg)? };
        let h = Handle {
            ws: Websock::open(&cfg)?,
            close: Mutex::new(None),
            events: Mutex::new(None),
        };
        Ok(Box::into_raw(Box::new(h)).cast::<c_void>())
    })
}

/// Closes the connection: sends a close frame (status 1000, or what
/// [`websock_close_reason`] set), waits for the server's close, closes the TCP/TLS
/// connection and frees the handle, all within [`WEBSOCK_CLOSE_TIMEOUT`] seconds (in
/// callback mode, plus the time the handler takes to return from a call in progress; a send
/// the handler is blocked in is cut short). `NULL` is ignored. The handle must not be used
/// afterwards, nor concurrently with this call.
///
/// # Safety
/// `h` is NULL or a live handle from [`websock_open`], not used by any other thread.
#[no_mangle]
pub unsafe extern "C" fn websock_close(h: websock_handle_t) {
    ffi_fn!(websock_close, (), {
        if h.is_null() {
            return Ok(());
        }
        let until = now() + close_timeout();
        // SAFETY: a live handle from websock_open; ownership comes back here exactly once.
        let handle = unsafe { Box::from_raw(h.cast::<Handle>()) };
        // The event thread uses the handle where it is: stop and join it before anything is
        // moved out of the box (a mutex the thread holds would move locked) or freed.
        let events = handle
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(ev) = events {
            // A handler blocked in a send is cut short after half the bound.
            let give_up = now() + close_timeout() / 2;
            stop_events(ev, Some((handle.ws.shared(), give_up)));
        }
        let Handle { ws, close, .. } = *handle;
        let pending = close.into_inner().unwrap_or_else(PoisonError::into_inner);
        let (code, reason) = pending
            .as_ref()
            .map_or((Some(wscope::CloseCode::NORMAL), ""), PendingClose::parts);
        let left = until.saturating_duration_since(now());
        ws.close_within(code, reason, left)?;
        Ok(())
    })
}

/// Sends a text message of `len` bytes (valid UTF-8, else -1). Returns 0 on success, -1 on
/// error ([`websock_last_error`]).
///
/// # Safety
/// `handle` is a live handle; `payload` points to `len` readable bytes (or is NULL with
/// `len` 0).
#[no_mangle]
pub unsafe extern "C" fn websock_send_text(
    handle: websock_handle_t,
    payload: *mut c_char,
    len: c_int,
) -> c_int {
    ffi_fn!(websock_send_text, -1, {
        // SAFETY: as documented.
        let (ws, data) = unsafe { send_args(handle, payload, len)? };
        let text = core::str::from_utf8(data)
            .map_err(|_| Error::Proto(wscope::proto::ProtocolError::InvalidUtf8))?;
        ws.send_text(text)?;
        Ok(0)
    })
}

/// Sends a binary message of `len` bytes. Returns 0 on success, -1 on error.
///
/// # Safety
/// As [`websock_send_text`].
#[no_mangle]
pub unsafe extern "C" fn websock_send_binary(
    handle: websock_handle_t,
    payload: *mut c_char,
    len: c_int,
) -> c_int {
    ffi_fn!(websock_send_binary, -1, {
        // SAFETY: as documented.
        let (ws, data) = unsafe { send_args(handle, payload, len)? };
        ws.send_binary(data)?;
        Ok(0)
    })
}

/// Sends a ping with up to 125 bytes of payload. Returns 0 on success, -1 on error.
///
/// # Safety
/// As [`websock_send_text`].
#[no_mangle]
pub unsafe extern "C" fn websock_send_ping(
    handle: websock_handle_t,
    payload: *mut c_char,
    len: c_int,
) -> c_int {
    ffi_fn!(websock_send_ping, -1, {
        // SAFETY: as documented.
        let (ws, data) = unsafe { send_args(handle, payload, len)? };
        ws.send_ping(data)?;
        Ok(0)
    })
}

/// Sends an unsolicited pong (a heartbeat) with up to 125 bytes of payload; pings from the
/// server are answered automatically. Returns 0 on success, -1 on error.
///
/// # Safety
/// As [`websock_send_text`].
#[no_mangle]
pub unsafe extern "C" fn websock_send_pong(
    handle: websock_handle_t,
    payload: *mut c_char,
    len: c_int,
) -> c_int {
    ffi_fn!(websock_send_pong, -1, {
        // SAFETY: as documented.
        let (ws, data) = unsafe { send_args(handle, payload, len)? };
        ws.send_pong(data)?;
        Ok(0)
    })
}

/// The connection and the payload of a send.
///
/// # Safety
/// `h` is a live handle; `payload` holds `len` bytes (or is NULL with `len` 0).
unsafe fn send_args<'a>(
    h: websock_handle_t,
    payload: *const c_char,
    len: c_int,
) -> Result<(&'a Websock, &'a [u8]), CallError> {
    // SAFETY: as documented on the public functions.
    let h = unsafe { handle_ref(h)? };
    // SAFETY: as documented on the public functions.
    let data = unsafe { bytes(payload, len, "payload")? };
    Ok((&h.ws, data))
}

/// Receives: waits up to `timeout` **seconds** (0: only what has already arrived) for frame
/// data and copies at most `*len` payload bytes of the next frame into `buf`.
///
/// Returns the number of bytes copied (also stored in `*len`), or -1 on error (closed
/// connection, protocol violation by the server — the close with 1002/1007/1009 has then
/// been sent —, transport error, bad arguments; see [`websock_last_error`]). `msg_hdr` tells
/// which frame the bytes belong to: `fin`, `opcode` of this frame (0 for a continuation) and
/// the frame's total `payload_len`. When `msg_hdr->opcode` is -1 nothing was received (the
/// timeout expired or only part of a header arrived) and the return value is 0: keep
/// calling. An empty frame returns 0 with `opcode` ≥ 0. A frame longer than `*len` comes
/// over several calls with the same header.
///
/// Returns by the timeout whatever arrives. Pings are answered internally with a pong
/// echoing their payload and are not returned (a pong the socket does not take at once
/// waits in a bounded queue; the server's latest pings are answered when it is full).
/// Pongs are returned (opcode 10). The server's close is answered and returned once
/// (opcode 8, payload = status and reason); later calls return -1.
///
/// # Safety
/// `handle` is a live handle, `msg_hdr` and `len` are valid pointers, `buf` points to
/// `*len` writable bytes. One thread at a time may call this on a handle.
#[no_mangle]
pub unsafe extern "C" fn websock_recv(
    handle: websock_handle_t,
    msg_hdr: *mut websock_msg_hdr_t,
    buf: *mut c_char,
    len: *mut c_int,
    timeout: c_int,
) -> c_int {
    ffi_fn!(websock_recv, -1, {
        if msg_hdr.is_null() || len.is_null() {
            return Err("NULL msg_hdr or len".into());
        }
        // SAFETY: non-NULL and valid as documented.
        let hdr = unsafe { &mut *msg_hdr };
        *hdr = c_hdr(&MsgHdr::default());
        // SAFETY: non-NULL and valid as documented.
        let len = unsafe { &mut *len };
        let cap = match usize::try_from(*len) {
            Ok(n) if n > 0 && !buf.is_null() => n,
            _ => return Err("buf must be non-NULL and *len > 0".into()),
        };
        *len = 0;
        if !(0..=WEBSOCK_MAX_RECV_TIMEOUT).contains(&timeout) {
            return Err("timeout out of range (seconds, 0 to 4294967)".into());
        }
        // SAFETY: a live handle, as documented.
        let h = unsafe { handle_ref(handle)? };
        // SAFETY: `buf` holds `cap` writable bytes, as documented.
        let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), cap) };
        let timeout = Duration::from_secs(timeout.unsigned_abs().into());
        let (got, n) = recv(&h.ws, out, timeout)?;
        *hdr = got;
        *len = n;
        Ok(n)
    })
}

/// One receive, shared by [`websock_recv`] and the event thread: at most `out.len()` bytes
/// (fewer than `c_int::MAX`) and their header.
pub(crate) fn recv(
    ws: &Websock,
    out: &mut [u8],
    timeout: Duration,
) -> Result<(websock_msg_hdr_t, c_int), CallError> {
    let mut hdr = MsgHdr::default();
    let n = ws.recv(&mut hdr, out, timeout)?;
    Ok((c_hdr(&hdr), c_int::try_from(n).unwrap_or(c_int::MAX)))
}

/// The C form of a [`MsgHdr`].
fn c_hdr(h: &MsgHdr) -> websock_msg_hdr_t {
    websock_msg_hdr_t {
        fin: h.fin,
        opcode: h.opcode,
        payload_len: h.payload_len,
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use super::*;
    use crate::error::last_error;
    use crate::websock_close_reason;

    #[test]
    fn null_arguments_are_errors_not_crashes() {
        // SAFETY: NULL is a documented input for all of these.
        unsafe {
            assert!(websock_open(core::ptr::null_mut()).is_null());
            assert!(last_error().contains("NULL configuration"));
            assert_eq!(
                websock_send_text(core::ptr::null_mut(), core::ptr::null_mut(), 0),
                -1
            );
            assert!(last_error().contains("NULL handle"));
            let mut hdr = websock_msg_hdr_t {
                fin: 5,
                opcode: 5,
                payload_len: 5,
            };
            let mut len = 0;
            assert_eq!(
                websock_recv(
                    core::ptr::null_mut(),
                    &mut hdr,
                    core::ptr::null_mut(),
                    &mut len,
                    0
                ),
                -1
            );
            assert_eq!(hdr.opcode, -1);
            assert_eq!(
                websock_close_reason(core::ptr::null_mut(), 1000, core::ptr::null_mut(), 0),
                -1
            );
            websock_close(core::ptr::null_mut());
        }
    }

    #[test]
    fn open_fails_with_text_on_refused_connection() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut c = websock_config_t::default();
        let host = CString::new("127.0.0.1").unwrap();
        c.hostname = host.as_ptr().cast_mut();
        c.port = c_int::from(port);
        c.time_out = 2;
        // SAFETY: valid configuration.
        let h = unsafe { websock_open(&mut c) };
        assert!(h.is_null());
        assert!(
            last_error().starts_with("websock_open: "),
            "{}",
            last_error()
        );
    }
}
