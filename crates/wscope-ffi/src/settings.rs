//! Settings of an open handle: its write timeout and the close that [`websock_close`]
//! sends (libwebsockets' `lws_close_reason`, rules in [`crate::lws`]).

use core::ffi::{c_int, c_uchar};
use core::time::Duration;
use std::sync::PoisonError;

use crate::api::handle_ref;
use crate::lws::PendingClose;
use crate::types::websock_handle_t;

#[cfg(doc)]
use crate::{lws_close_status, websock_close};

/// Sets the write timeout of a handle, in **seconds** (1 or more): a send (or the pongs and
/// close frames the handle writes itself) fails when no byte could be written for this long,
/// because the server does not read; the connection is then unusable (-1 from every call but
/// [`websock_close`]). The default is the configuration's `time_out`. Sends already waiting
/// keep the timeout they started with. Returns 0, or -1 (NULL handle, `seconds` < 1).
///
/// # Safety
/// `handle` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn websock_set_write_timeout(
    handle: websock_handle_t,
    seconds: c_int,
) -> c_int {
    ffi_fn!(websock_set_write_timeout, -1, {
        // SAFETY: a live handle, as documented.
        let h = unsafe { handle_ref(handle)? };
        if seconds < 1 {
            return Err(format!("seconds must be 1 or more, not {seconds}").into());
        }
        let timeout = Duration::from_secs(seconds.unsigned_abs().into());
        h.ws.shared().set_write_timeout(timeout);
        Ok(0)
    })
}

/// Sets the status and reason that [`websock_close`] sends (libwebsockets'
/// `lws_close_reason`, with the rules it lacks): `status` is an [`lws_close_status`] value
/// or any code valid on the wire (1000-1003, 1007-1014, 3000-4999); others (1004-1006,
/// 1015, 2000, 9999, ...) are refused with -1. `LWS_CLOSE_STATUS_NOSTATUS` (0) with no
/// reason sends a close without payload. The reason (`len` bytes at `buf`, may be NULL/0)
/// must be UTF-8 and is cut to 123 bytes on a character boundary. A later call replaces an
/// earlier one. Returns 0 or -1.
///
/// # Safety
/// `handle` is a live handle; `buf` points to `len` readable bytes (or is NULL with `len` 0).
#[no_mangle]
pub unsafe extern "C" fn websock_close_reason(
    handle: websock_handle_t,
    status: c_int,
    buf: *mut c_uchar,
    len: usize,
) -> c_int {
    ffi_fn!(websock_close_reason, -1, {
        // SAFETY: a live handle, as documented.
        let h = unsafe { handle_ref(handle)? };
        let reason: &[u8] = if len == 0 {
            &[]
        } else if buf.is_null() {
            return Err(format!("NULL buf with length {len}").into());
        } else {
            // SAFETY: `len` readable bytes at `buf`, as documented.
            unsafe { core::slice::from_raw_parts(buf, len) }
        };
        let reason = core::str::from_utf8(reason).map_err(|_| "reason is not valid UTF-8")?;
        let pending = PendingClose::from_c(status, reason)?;
        *h.close.lock().unwrap_or_else(PoisonError::into_inner) = Some(pending);
        Ok(0)
    })
}
