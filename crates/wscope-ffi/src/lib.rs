//! The `websock.h` C API: the embedded SDK's `websock_*` WebSocket client functions (the
//! InnoPhase Talaria TWO SDK) with libwebsockets' close status values and
//! `websock_close_reason` (libwebsockets' close statuses), over the [`wscope`] blocking client.
//!
//! A C program written for the SDK's header compiles unchanged against
//! `include/websock.h` (generated from this file with cbindgen) and then behaves
//! correctly: random handshake key, checked `Sec-WebSocket-Accept`, `time_out` bounding the
//! whole opening, pings answered with their payload, closes answered and sent. Every
//! protocol rule lives in `wscope` / `wscope-proto`; this crate only converts C arguments,
//! keeps the last error as text, and catches panics.
//!
//! The C boundary needs `unsafe` (raw pointers from C), so this crate allows it; elsewhere the
//! workspace denies it except in a few listed modules (`CONTRIBUTING.md`). Every entry point
//! runs inside [`std::panic::catch_unwind`]: a panic becomes the function's error return
//! (`NULL` or `-1`) with "internal error" as the last error, never an unwind into C.
//!
//! # Threads
//!
//! A handle may be used from several threads: one thread may block in [`websock_recv`]
//! while others call the send functions, with messages of any size: the connection is a
//! [`SharedWebSocket`] whose receive reads while a send writes (neither holds what the other
//! needs), so a server that echoes a large message while it reads it is served. Two threads
//! must not call [`websock_recv`] on the same handle at once (pieces of one frame would be
//! split between them), and [`websock_close`] must not run while any other call on the same
//! handle is in progress: it frees the handle.
//!
//! # Deadlines
//!
//! Every call returns by a bound: [`websock_open`] within `time_out` (name lookup, TCP, TLS
//! and the HTTP upgrade together); [`websock_recv`] by its timeout whatever the server sends
//! (a flood of pings included: pongs that cannot be written at once wait in a bounded
//! queue); a send fails when no byte could be written for the write timeout (`time_out`, or
//! [`websock_set_write_timeout`]); [`websock_close`] within [`WEBSOCK_CLOSE_TIMEOUT`]
//! seconds (plus, in callback mode, the time the handler takes to return).
//! [`websock_last_error`] is per thread. In callback mode ([`websock_set_event_handler`]) the
//! handler runs on a thread of the handle's own; it may send, and [`websock_close`] stops and
//! joins that thread before freeing the handle (so it must not be called from the handler).
#![allow(unsafe_code)] // the C boundary: raw pointers from C
#![allow(non_camel_case_types)] // the C names of the SDK's header

use core::cell::{Cell, RefCell};
use core::ffi::{c_char, c_int, c_longlong, c_uchar, c_void, CStr};
use core::fmt::Display;
use core::panic::AssertUnwindSafe;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::ffi::CString;
use std::panic::catch_unwind;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use wscope::blocking::{connect_with, SharedWebSocket};
use wscope::proto::close::CloseReason;
use wscope::simple::{Secured, WebsockConfig};
use wscope::{CloseCode, Error, OpCode, Partial};

/// Most extra handshake headers in [`websock_config_t::hndshk_hdrs`].
pub const WEBSOCK_MAX_HNDSHK_HDRS: usize = 10;

/// Largest `timeout` accepted by [`websock_recv`], in seconds (as in the SDK).
pub const WEBSOCK_MAX_RECV_TIMEOUT: c_int = 4_294_967;

/// Longest close reason in bytes (125-byte control payload minus the 2-byte status).
pub const WEBSOCK_MAX_CLOSE_REASON: usize = 123;

/// Opening timeout used when [`websock_config_t::time_out`] is 0 or negative, in seconds
/// (also the default write timeout then).
pub const WEBSOCK_DEFAULT_CONNECT_TIMEOUT: c_int = 30;

/// Longest time [`websock_close`] takes, in seconds: sending the close frame, waiting for the
/// server's close and for the end of the connection (in callback mode, plus the time the
/// handler takes to return from a call in progress).
pub const WEBSOCK_CLOSE_TIMEOUT: c_int = 5;

/// A connection handle returned by [`websock_open`]; `NULL` means no connection.
pub type websock_handle_t = *mut c_void;

/// One extra handshake header: `name` and `val` as NUL-terminated strings. When `val` is
/// `NULL`, `name` may hold `"Name: value"` (the format the SDK's comment describes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct websoc_hndshk_hdr_t {
    /// Header name (or `"Name: value"` when `val` is `NULL`).
    pub name: *mut c_char,
    /// Header value, or `NULL`.
    pub val: *mut c_char,
}

/// A certificate or key (PEM) for TLS.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ssl_wrap_cert_t {
    /// Path of a PEM file, read when `buf` is `NULL` (unused by the SDK; honoured here).
    pub path: *mut c_char,
    /// PEM data, or `NULL` for none.
    pub buf: *mut c_char,
    /// Bytes of PEM data in `buf`; 0 means `buf` is NUL-terminated.
    pub len: c_int,
}

/// Values of [`ssl_wrap_cfg_t::auth_mode`] (the SDK's names). The `secured` field of
/// [`websock_config_t`] decides verification here; `auth_mode` is accepted and ignored.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ssl_auth_mode_t {
    /// Peer certificate not checked.
    SSL_WRAP_VERIFY_NONE = 0,
    /// Checked, handshake goes on when it fails (treated as required here).
    SSL_WRAP_VERIFY_OPTIONAL = 1,
    /// Peer must present a valid certificate.
    SSL_WRAP_VERIFY_REQUIRED = 2,
}

/// TLS settings (used when [`websock_config_t::secured`] is 1 or 2).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ssl_wrap_cfg_t {
    /// CA certificates (PEM) to verify the server with (`secured` = 2); the built-in
    /// Mozilla roots when empty.
    pub ca_cert: ssl_wrap_cert_t,
    /// Client certificate chain (PEM), for servers that ask for one; needs `client_key`.
    pub client_cert: ssl_wrap_cert_t,
    /// Client private key (PEM).
    pub client_key: ssl_wrap_cert_t,
    /// An [`ssl_auth_mode_t`] value; ignored (see `secured`).
    pub auth_mode: c_int,
    /// mbedTLS maximum fragment length in the SDK; ignored.
    pub max_frag_len: c_int,
    /// Opaque in the SDK; ignored.
    pub p_data: *mut c_char,
}

/// Connection settings for [`websock_open`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct websock_config_t {
    /// Host name or IP address (v4 or v6) of the server. Required.
    pub hostname: *mut c_char,
    /// TCP port; 0 or negative means 80 (plain) or 443 (TLS).
    pub port: c_int,
    /// Request target, e.g. `"/chat?x=1"`; `NULL` or `""` means `"/"`.
    pub uri: *mut c_char,
    /// 0: plain `ws`; 1: TLS without verifying the server; 2: TLS, server verified.
    pub secured: c_int,
    /// TLS settings.
    pub ssl_config: ssl_wrap_cfg_t,
    /// Timeout in **seconds** (0 or negative: 30 s) for the whole of [`websock_open`]: name
    /// lookup, TCP connect, TLS handshake and HTTP upgrade together. Also the write timeout
    /// of the handle: a send fails when no byte could be written for this long (change it
    /// with [`websock_set_write_timeout`]).
    pub time_out: c_int,
    /// Extra handshake headers; the first `num_hndshk_hdrs` are used. Headers that clash
    /// with the implicit ones (`Host`, `Upgrade`, `Connection`, `Sec-WebSocket-Key`,
    /// `Sec-WebSocket-Version`) make [`websock_open`] fail. `Sec-WebSocket-Protocol` and
    /// `Origin` are honoured (the subprotocol reply is checked).
    pub hndshk_hdrs: [websoc_hndshk_hdr_t; WEBSOCK_MAX_HNDSHK_HDRS],
    /// How many entries of `hndshk_hdrs` are set (0 to 10).
    pub num_hndshk_hdrs: c_int,
}

impl Default for ssl_wrap_cert_t {
    /// No certificate (all NULL).
    fn default() -> Self {
        Self {
            path: core::ptr::null_mut(),
            buf: core::ptr::null_mut(),
            len: 0,
        }
    }
}

impl Default for ssl_wrap_cfg_t {
    /// No certificates, `SSL_WRAP_VERIFY_NONE`.
    fn default() -> Self {
        Self {
            ca_cert: ssl_wrap_cert_t::default(),
            client_cert: ssl_wrap_cert_t::default(),
            client_key: ssl_wrap_cert_t::default(),
            auth_mode: 0,
            max_frag_len: 0,
            p_data: core::ptr::null_mut(),
        }
    }
}

impl Default for websock_config_t {
    /// Everything zero or NULL, as `memset(&cfg, 0, sizeof cfg)` in C.
    fn default() -> Self {
        Self {
            hostname: core::ptr::null_mut(),
            port: 0,
            uri: core::ptr::null_mut(),
            secured: 0,
            ssl_config: ssl_wrap_cfg_t::default(),
            time_out: 0,
            hndshk_hdrs: [websoc_hndshk_hdr_t {
                name: core::ptr::null_mut(),
                val: core::ptr::null_mut(),
            }; WEBSOCK_MAX_HNDSHK_HDRS],
            num_hndshk_hdrs: 0,
        }
    }
}

/// What the bytes returned by [`websock_recv`] belong to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct websock_msg_hdr_t {
    /// 1 when the frame ends its message, 0 otherwise; -1 when `opcode` is -1.
    pub fin: c_int,
    /// Opcode of the frame the bytes belong to: 0 continuation, 1 text, 2 binary, 8 close,
    /// 10 pong. -1 when no frame data was returned (timeout, or only part of a header
    /// arrived): not an error, keep calling.
    pub opcode: c_int,
    /// Total payload length of that frame (not of the piece returned).
    pub payload_len: c_longlong,
}

/// libwebsockets' close status values (`enum lws_close_status`, lws-ws-close.h), for
/// [`websock_close_reason`]. `NOSTATUS` (0) means a close without a status; 1004, 1005,
/// 1006, 1015, 2000 and 9999 can never be sent and are refused.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lws_close_status {
    /// No status: the close frame carries no payload.
    LWS_CLOSE_STATUS_NOSTATUS = 0,
    /// 1000 normal closure.
    LWS_CLOSE_STATUS_NORMAL = 1000,
    /// 1001 going away.
    LWS_CLOSE_STATUS_GOINGAWAY = 1001,
    /// 1002 protocol error.
    LWS_CLOSE_STATUS_PROTOCOL_ERR = 1002,
    /// 1003 unacceptable data type.
    LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE = 1003,
    /// 1004 reserved (refused).
    LWS_CLOSE_STATUS_RESERVED = 1004,
    /// 1005 no status received: local only (refused).
    LWS_CLOSE_STATUS_NO_STATUS = 1005,
    /// 1006 abnormal closure: local only (refused).
    LWS_CLOSE_STATUS_ABNORMAL_CLOSE = 1006,
    /// 1007 invalid payload data.
    LWS_CLOSE_STATUS_INVALID_PAYLOAD = 1007,
    /// 1008 policy violation.
    LWS_CLOSE_STATUS_POLICY_VIOLATION = 1008,
    /// 1009 message too big.
    LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE = 1009,
    /// 1010 extension required.
    LWS_CLOSE_STATUS_EXTENSION_REQUIRED = 1010,
    /// 1011 unexpected condition.
    LWS_CLOSE_STATUS_UNEXPECTED_CONDITION = 1011,
    /// 1015 TLS failure: local only (refused).
    LWS_CLOSE_STATUS_TLS_FAILURE = 1015,
    /// lws-internal (refused).
    LWS_CLOSE_STATUS_CLIENT_TRANSACTION_DONE = 2000,
    /// lws-internal (refused).
    LWS_CLOSE_STATUS_NOSTATUS_CONTEXT_DESTROY = 9999,
}

// ------------------------------------------------------------------------------ internals

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
    /// Set on event-handler threads (no `std::thread::current()`: on a thread created by C
    /// it allocates a handle that is never freed).
    static IN_EVENT_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn set_error(msg: impl Display) {
    let text = msg.to_string().replace('\0', " ");
    let c = CString::new(text).unwrap_or_default();
    LAST_ERROR.with(|e| {
        if let Ok(mut slot) = e.try_borrow_mut() {
            *slot = Some(c);
        }
    });
}

fn clear_error() {
    LAST_ERROR.with(|e| {
        if let Ok(mut slot) = e.try_borrow_mut() {
            *slot = None;
        }
    });
}

/// Runs `f`, turning a panic into `on_panic` with a last error.
fn guard<T>(name: &str, on_panic: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        set_error(format_args!("{name}: internal error (panic caught)"));
        on_panic
    })
}

/// What `websock_close` sends.
#[derive(Debug)]
enum PendingClose {
    NoStatus,
    Status(CloseCode, String),
}

/// The object behind a [`websock_handle_t`].
#[derive(Debug)]
struct Handle {
    ws: SharedWebSocket,
    close: Mutex<Option<PendingClose>>,
    events: Mutex<Option<Events>>,
}

/// The clock (this crate is an I/O driver: it may read it).
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// # Safety
/// `h` is NULL or a live handle from [`websock_open`].
unsafe fn handle_ref<'a>(h: websock_handle_t) -> Result<&'a Handle, String> {
    if h.is_null() {
        return Err("NULL handle".to_owned());
    }
    // SAFETY: the caller passes a pointer returned by websock_open and not yet closed.
    Ok(unsafe { &*h.cast::<Handle>() })
}

/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn opt_str<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, String> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller guarantees a NUL-terminated string.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map(Some)
        .map_err(|_| format!("{what} is not valid UTF-8"))
}

/// # Safety
/// `p` is NULL (then `len` must be 0) or points to `len` readable bytes.
unsafe fn bytes<'a>(p: *const c_char, len: c_int, what: &str) -> Result<&'a [u8], String> {
    let n = usize::try_from(len).map_err(|_| format!("{what}: negative length {len}"))?;
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(format!("{what}: NULL pointer with length {n}"));
    }
    // SAFETY: the caller guarantees `len` readable bytes at `p`.
    Ok(unsafe { core::slice::from_raw_parts(p.cast::<u8>(), n) })
}

/// # Safety
/// Pointers in `c` are NULL or valid as documented on [`ssl_wrap_cert_t`].
unsafe fn pem(c: &ssl_wrap_cert_t, what: &str) -> Result<Option<Vec<u8>>, String> {
    if !c.buf.is_null() {
        let data = if c.len > 0 {
            // SAFETY: `len` bytes at `buf`, as documented.
            unsafe { bytes(c.buf, c.len, what)? }.to_vec()
        } else {
            // SAFETY: NUL-terminated when `len` is 0, as documented.
            unsafe { CStr::from_ptr(c.buf) }.to_bytes().to_vec()
        };
        return Ok((!data.is_empty()).then_some(data));
    }
    // SAFETY: NULL or a NUL-terminated path.
    match unsafe { opt_str(c.path, what)? } {
        Some(path) if !path.is_empty() => std::fs::read(path)
            .map(Some)
            .map_err(|e| format!("{what}: {path}: {e}")),
        _ => Ok(None),
    }
}

/// Converts the C configuration.
///
/// # Safety
/// Pointers in `c` are NULL or valid as documented on [`websock_config_t`].
#[allow(clippy::field_reassign_with_default)] // see the end: new fields keep their defaults
unsafe fn config_from_c(c: &websock_config_t) -> Result<WebsockConfig, String> {
    // SAFETY: the caller's configuration holds NULL or NUL-terminated strings.
    let hostname = unsafe { opt_str(c.hostname, "hostname")? }
        .filter(|h| !h.is_empty())
        .ok_or("hostname is required")?;
    let secured = match c.secured {
        0 => Secured::No,
        1 => Secured::NoVerify,
        2 => Secured::Verify,
        n => return Err(format!("secured must be 0, 1 or 2, not {n}")),
    };
    let port = match c.port {
        p if p <= 0 => {
            if secured == Secured::No {
                80
            } else {
                443
            }
        }
        p => u16::try_from(p).map_err(|_| format!("port {p} out of range"))?,
    };
    // SAFETY: as above.
    let uri = unsafe { opt_str(c.uri, "uri")? }
        .filter(|u| !u.is_empty())
        .unwrap_or("/");
    let n = usize::try_from(c.num_hndshk_hdrs)
        .ok()
        .filter(|&n| n <= WEBSOCK_MAX_HNDSHK_HDRS)
        .ok_or_else(|| format!("num_hndshk_hdrs must be 0 to 10, not {}", c.num_hndshk_hdrs))?;
    let mut headers = Vec::with_capacity(n);
    for (i, h) in c.hndshk_hdrs.iter().take(n).enumerate() {
        let what = format!("hndshk_hdrs[{i}]");
        // SAFETY: as above.
        let name = unsafe { opt_str(h.name, &what)? }.ok_or(format!("{what}.name is NULL"))?;
        // SAFETY: as above.
        let (name, val) = match unsafe { opt_str(h.val, &what)? } {
            Some(v) => (name, v),
            None => name.split_once(':').ok_or(format!(
                "{what}: val is NULL and name is not \"Name: value\""
            ))?,
        };
        headers.push((name.trim().to_owned(), val.trim().to_owned()));
    }
    let (ca_cert, client_cert, client_key) = if secured == Secured::No {
        (None, None, None)
    } else {
        let s = &c.ssl_config;
        (
            // SAFETY: the certificate entries are NULL or valid as documented.
            unsafe { pem(&s.ca_cert, "ssl_config.ca_cert")? },
            // SAFETY: as above.
            unsafe { pem(&s.client_cert, "ssl_config.client_cert")? },
            // SAFETY: as above.
            unsafe { pem(&s.client_key, "ssl_config.client_key")? },
        )
    };
    if client_cert.is_some() != client_key.is_some() {
        return Err("ssl_config: client_cert and client_key go together".to_owned());
    }
    let secs = if c.time_out > 0 {
        c.time_out
    } else {
        WEBSOCK_DEFAULT_CONNECT_TIMEOUT
    };
    // Field by field, so that settings added to `WebsockConfig` later keep their defaults.
    let mut w = WebsockConfig::default();
    w.hostname = hostname.to_owned();
    w.port = port;
    w.uri = uri.to_owned();
    w.secured = secured;
    w.ca_cert = ca_cert;
    w.client_cert = client_cert;
    w.client_key = client_key;
    w.time_out = Duration::from_secs(u64::from(secs.unsigned_abs()));
    w.hndshk_hdrs = headers;
    Ok(w)
}

fn open(cfg: &WebsockConfig) -> Result<Handle, String> {
    let client = cfg.client_config().map_err(|e| e.to_string())?;
    let (ws, _response) = connect_with(&client).map_err(|e| e.to_string())?;
    let write_timeout = client.write_timeout.unwrap_or(cfg.time_out);
    Ok(Handle {
        ws: SharedWebSocket::new(ws, write_timeout).map_err(|e| e.to_string())?,
        close: Mutex::new(None),
        events: Mutex::new(None),
    })
}

/// Sends one message; 0 or -1.
///
/// # Safety
/// `h` is a live handle; `payload` holds `len` bytes.
unsafe fn send(
    name: &str,
    h: websock_handle_t,
    payload: *const c_char,
    len: c_int,
    f: impl FnOnce(&SharedWebSocket, &[u8]) -> wscope::Result<()>,
) -> c_int {
    guard(name, -1, || {
        clear_error();
        // SAFETY: as documented on the public functions.
        let r = unsafe { handle_ref(h) }.and_then(|h| {
            // SAFETY: as documented on the public functions.
            let data = unsafe { bytes(payload, len, "payload")? };
            f(&h.ws, data).map_err(|e| e.to_string())
        });
        match r {
            Ok(()) => 0,
            Err(e) => {
                set_error(format_args!("{name}: {e}"));
                -1
            }
        }
    })
}

// ------------------------------------------------------------------------------ the C API

/// The last error of this thread as text (empty when the last call succeeded). The string
/// stays valid until the next `websock_*` call on the same thread; do not free it.
#[no_mangle]
pub extern "C" fn websock_last_error() -> *const c_char {
    guard("websock_last_error", c"".as_ptr(), || {
        LAST_ERROR.with(|e| match e.try_borrow() {
            Ok(slot) => slot.as_ref().map_or(c"".as_ptr(), |s| s.as_ptr()),
            Err(_) => c"".as_ptr(),
        })
    })
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
    guard("websock_open", core::ptr::null_mut(), || {
        clear_error();
        if cfg.is_null() {
            set_error("websock_open: NULL configuration");
            return core::ptr::null_mut();
        }
        // SAFETY: non-NULL, points to a configuration as documented.
        let c = unsafe { &*cfg };
        // SAFETY: the configuration's pointers are valid as documented.
        match unsafe { config_from_c(c) }.and_then(|cfg| open(&cfg)) {
            Ok(h) => Box::into_raw(Box::new(h)).cast::<c_void>(),
            Err(e) => {
                set_error(format_args!("websock_open: {e}"));
                core::ptr::null_mut()
            }
        }
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
    guard("websock_close", (), || {
        clear_error();
        if h.is_null() {
            return;
        }
        let until = now() + close_timeout();
        // SAFETY: a live handle from websock_open; ownership comes back here exactly once.
        let handle = unsafe { Box::from_raw(h.cast::<Handle>()) };
        // The event thread borrows the handle: stop and join it before anything is freed.
        let events = handle
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(ev) = events {
            // A handler blocked in a send is cut short after half the bound.
            let give_up = now() + close_timeout() / 2;
            stop_events(ev, Some((&handle.ws, give_up)));
        }
        let pending = handle
            .close
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let left = until.saturating_duration_since(now());
        let ws = handle.ws;
        let r = match pending {
            None => ws.close(Some(CloseCode::NORMAL), "", left),
            Some(PendingClose::Status(code, reason)) => ws.close(Some(code), &reason, left),
            Some(PendingClose::NoStatus) => ws.close(None, "", left),
        };
        match r {
            Ok(()) | Err(Error::Closed) => {}
            Err(e) => set_error(format_args!("websock_close: {e}")),
        }
    });
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
    // SAFETY: forwarded contract.
    unsafe {
        send(
            "websock_send_text",
            handle,
            payload,
            len,
            |ws, data| match core::str::from_utf8(data) {
                Ok(text) => ws.send_text(text),
                Err(_) => Err(Error::Proto(wscope::proto::ProtocolError::InvalidUtf8)),
            },
        )
    }
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
    // SAFETY: forwarded contract.
    unsafe {
        send("websock_send_binary", handle, payload, len, |ws, d| {
            ws.send_binary(d)
        })
    }
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
    // SAFETY: forwarded contract.
    unsafe {
        send("websock_send_ping", handle, payload, len, |ws, d| {
            ws.send_ping(d)
        })
    }
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
    // SAFETY: forwarded contract.
    unsafe {
        send("websock_send_pong", handle, payload, len, |ws, d| {
            ws.send_pong(d)
        })
    }
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
    guard("websock_recv", -1, || {
        clear_error();
        let fail = |e: &str| {
            set_error(format_args!("websock_recv: {e}"));
            -1
        };
        if msg_hdr.is_null() || len.is_null() {
            return fail("NULL msg_hdr or len");
        }
        // SAFETY: non-NULL and valid as documented.
        let hdr = unsafe { &mut *msg_hdr };
        *hdr = websock_msg_hdr_t {
            fin: -1,
            opcode: -1,
            payload_len: 0,
        };
        // SAFETY: non-NULL and valid as documented.
        let len = unsafe { &mut *len };
        let cap = match usize::try_from(*len) {
            Ok(n) if n > 0 && !buf.is_null() => n,
            _ => return fail("buf must be non-NULL and *len > 0"),
        };
        *len = 0;
        if !(0..=WEBSOCK_MAX_RECV_TIMEOUT).contains(&timeout) {
            return fail("timeout out of range (seconds, 0 to 4294967)");
        }
        // SAFETY: a live handle, as documented.
        let h = match unsafe { handle_ref(handle) } {
            Ok(h) => h,
            Err(e) => return fail(&e),
        };
        // SAFETY: `buf` holds `cap` writable bytes, as documented.
        let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), cap) };
        match recv_into(h, out, Duration::from_secs(timeout.unsigned_abs().into())) {
            Err(e) => fail(&e),
            Ok(None) => 0,
            Ok(Some(got)) => {
                *hdr = got.hdr;
                *len = got.len;
                got.len
            }
        }
    })
}

/// What one receive produced.
struct Got {
    hdr: websock_msg_hdr_t,
    len: c_int,
}

/// The receive loop shared by [`websock_recv`] and the event thread: waits up to `timeout`
/// for frame data (senders are not held up meanwhile); pings are answered by the connection
/// and skipped, the deadline holding across them. `Ok(None)`: nothing before the timeout.
fn recv_into(h: &Handle, out: &mut [u8], timeout: Duration) -> Result<Option<Got>, String> {
    let deadline = now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(now());
        match h.ws.recv_partial(out, left) {
            Err(e) => return Err(e.to_string()),
            Ok(Partial::Data { info, len: n, .. } | Partial::Control { info, len: n }) => {
                if info.opcode == OpCode::PING {
                    // Answered by the connection; not the application's business.
                    if now() >= deadline {
                        return Ok(None);
                    }
                    continue;
                }
                return Ok(Some(Got {
                    hdr: websock_msg_hdr_t {
                        fin: c_int::from(info.fin),
                        opcode: c_int::from(info.opcode.0),
                        payload_len: c_longlong::try_from(info.payload_len)
                            .unwrap_or(c_longlong::MAX),
                    },
                    len: c_int::try_from(n).unwrap_or(c_int::MAX),
                }));
            }
            Ok(Partial::Timeout) => return Ok(None),
        }
    }
}

/// Events reported to a [`websock_event_handler`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum websock_cb_event_t {
    /// Payload bytes of a frame (`msg_hdr`, `payload`, `len` as from [`websock_recv`]).
    WEBSOCK_CB_EVENT_DATA = 0,
    /// The connection failed or was closed (after the close frame was reported as DATA with
    /// opcode 8); `msg_hdr` has opcode -1, `payload` is the error text, `len` its length.
    /// No event follows; the handle must still be closed with [`websock_close`].
    WEBSOCK_CB_EVENT_ERROR = 1,
}

/// The application's event handler: `c` is the context given to
/// [`websock_set_event_handler`]. Called on the handle's own receive thread; it may send on
/// the handle but must not call [`websock_recv`] or [`websock_close`] on it.
pub type websock_event_handler = Option<
    unsafe extern "C" fn(
        c: *mut c_void,
        evnt: websock_cb_event_t,
        msg_hdr: *mut websock_msg_hdr_t,
        payload: *mut c_char,
        len: c_int,
    ),
>;

/// A running event thread.
#[derive(Debug)]
struct Events {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Bytes handed to the event handler per call (the SDK's 1400-byte buffer).
const EVENT_BUF: usize = 1400;

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
    guard("websock_set_event_handler", -1, || {
        clear_error();
        // SAFETY: a live handle, as documented.
        let h = match unsafe { handle_ref(handle) } {
            Ok(h) => h,
            Err(e) => {
                set_error(format_args!("websock_set_event_handler: {e}"));
                return -1;
            }
        };
        let mut slot = h.events.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(cb) = cb else {
            if let Some(ev) = slot.take() {
                stop_events(ev, None);
            }
            return 0;
        };
        if slot.is_some() {
            set_error("websock_set_event_handler: a handler is already running");
            return -1;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        // The handle outlives the thread: websock_close joins it before freeing the handle.
        let addr = handle as usize;
        let ctx = cb_context as usize;
        let thread = std::thread::Builder::new()
            .name("websock-events".to_owned())
            .spawn(move || event_loop(addr, ctx, cb, &flag));
        match thread {
            Ok(t) => {
                *slot = Some(Events {
                    stop,
                    thread: Some(t),
                });
                0
            }
            Err(e) => {
                set_error(format_args!("websock_set_event_handler: {e}"));
                -1
            }
        }
    })
}

/// Stops the event thread and joins it. With `cut`, a thread still running at its instant
/// (a handler blocked in a send) gets its connection shut down, which ends the send.
fn stop_events(mut ev: Events, cut: Option<(&SharedWebSocket, Instant)>) {
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

/// [`WEBSOCK_CLOSE_TIMEOUT`] as a duration.
fn close_timeout() -> Duration {
    Duration::from_secs(WEBSOCK_CLOSE_TIMEOUT.unsigned_abs().into())
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
            recv_into(h, &mut buf, Duration::from_millis(100))
        }))
        .unwrap_or_else(|_| Err("internal error (panic caught)".to_owned()));
        match r {
            Ok(None) => {}
            Ok(Some(mut got)) => {
                // SAFETY: the application's callback with valid pointers for the call.
                unsafe {
                    cb(
                        ctx as *mut c_void,
                        websock_cb_event_t::WEBSOCK_CB_EVENT_DATA,
                        &mut got.hdr,
                        buf.as_mut_ptr().cast::<c_char>(),
                        got.len,
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
    guard("websock_set_write_timeout", -1, || {
        clear_error();
        // SAFETY: a live handle, as documented.
        let h = match unsafe { handle_ref(handle) } {
            Ok(h) => h,
            Err(e) => {
                set_error(format_args!("websock_set_write_timeout: {e}"));
                return -1;
            }
        };
        if seconds < 1 {
            set_error(format_args!(
                "websock_set_write_timeout: seconds must be 1 or more, not {seconds}"
            ));
            return -1;
        }
        h.ws.set_write_timeout(Duration::from_secs(seconds.unsigned_abs().into()));
        0
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
    guard("websock_close_reason", -1, || {
        clear_error();
        let r = (|| -> Result<(), String> {
            // SAFETY: a live handle, as documented.
            let h = unsafe { handle_ref(handle)? };
            let reason: &[u8] = if len == 0 {
                &[]
            } else if buf.is_null() {
                return Err(format!("NULL buf with length {len}"));
            } else {
                // SAFETY: `len` readable bytes at `buf`, as documented.
                unsafe { core::slice::from_raw_parts(buf, len) }
            };
            let reason = core::str::from_utf8(reason).map_err(|_| "reason is not valid UTF-8")?;
            let pending = if status == 0 {
                if !reason.is_empty() {
                    return Err("a reason needs a status (NOSTATUS cannot carry one)".to_owned());
                }
                PendingClose::NoStatus
            } else {
                let code = u16::try_from(status)
                    .map(CloseCode)
                    .ok()
                    .filter(|c| c.is_valid_on_wire())
                    .ok_or_else(|| format!("status {status} may not be sent in a close frame"))?;
                PendingClose::Status(code, CloseReason::truncating(reason).as_str().to_owned())
            };
            *h.close.lock().unwrap_or_else(PoisonError::into_inner) = Some(pending);
            Ok(())
        })();
        match r {
            Ok(()) => 0,
            Err(e) => {
                set_error(format_args!("websock_close_reason: {e}"));
                -1
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank() -> websock_config_t {
        websock_config_t::default()
    }

    fn last_error() -> String {
        // SAFETY: websock_last_error returns a valid NUL-terminated string.
        unsafe { CStr::from_ptr(websock_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn config_defaults_and_header_forms() {
        let mut c = blank();
        let host = CString::new("example.com").unwrap();
        let h1 = CString::new("Sec-WebSocket-Protocol: mqtt").unwrap();
        let h2n = CString::new("X-Token").unwrap();
        let h2v = CString::new("abc").unwrap();
        c.hostname = host.as_ptr().cast_mut();
        c.secured = 1;
        c.hndshk_hdrs[0].name = h1.as_ptr().cast_mut();
        c.hndshk_hdrs[1].name = h2n.as_ptr().cast_mut();
        c.hndshk_hdrs[1].val = h2v.as_ptr().cast_mut();
        c.num_hndshk_hdrs = 2;
        c.time_out = 7;
        // SAFETY: all pointers are valid C strings or NULL.
        let w = unsafe { config_from_c(&c) }.unwrap();
        assert_eq!(w.port, 443);
        assert_eq!(w.uri, "/");
        assert_eq!(w.secured, Secured::NoVerify);
        assert_eq!(w.time_out, Duration::from_secs(7));
        assert_eq!(
            w.hndshk_hdrs,
            vec![
                ("Sec-WebSocket-Protocol".to_owned(), "mqtt".to_owned()),
                ("X-Token".to_owned(), "abc".to_owned())
            ]
        );
    }

    #[test]
    fn config_errors() {
        let mut c = blank();
        // SAFETY: NULL pointers only.
        assert!(unsafe { config_from_c(&c) }
            .unwrap_err()
            .contains("hostname"));
        let host = CString::new("h").unwrap();
        c.hostname = host.as_ptr().cast_mut();
        c.secured = 3;
        // SAFETY: valid pointers.
        assert!(unsafe { config_from_c(&c) }
            .unwrap_err()
            .contains("secured"));
        c.secured = 0;
        c.num_hndshk_hdrs = 11;
        // SAFETY: valid pointers.
        assert!(unsafe { config_from_c(&c) }
            .unwrap_err()
            .contains("num_hndshk_hdrs"));
        c.num_hndshk_hdrs = 1;
        // SAFETY: valid pointers.
        assert!(unsafe { config_from_c(&c) }.unwrap_err().contains("NULL"));
        c.num_hndshk_hdrs = 0;
        c.port = 70000;
        // SAFETY: valid pointers.
        assert!(unsafe { config_from_c(&c) }.unwrap_err().contains("port"));
    }

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
        let mut c = blank();
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
