//! The C types and constants of `websock.h`: the embedded SDK's structures with their C
//! names and layouts (`#[repr(C)]`), the callback types, and the limits of the API. No
//! behaviour: the entry points convert these ([`crate::config`]) and call
//! [`wscope::simple`]. (libwebsockets' close statuses are in [`crate::lws`].)

use core::ffi::{c_char, c_int, c_longlong, c_void};

#[cfg(doc)]
use crate::{
    websock_close, websock_open, websock_recv, websock_set_event_handler, websock_set_write_timeout,
};

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
