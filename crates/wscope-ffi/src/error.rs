//! Errors of the C API: the per-thread last error that [`websock_last_error`] returns, the
//! [`CallError`] an entry point fails with, and [`ffi_fn!`], the one guard every entry point
//! runs its body in (panics caught, last error cleared, then set from the error on failure).

use core::cell::RefCell;
use core::ffi::c_char;
use core::fmt;
use core::panic::AssertUnwindSafe;
use std::ffi::CString;
use std::panic::catch_unwind;

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Why a C API call failed. `Display` is the text after the function's name in
/// [`websock_last_error`].
#[derive(Debug)]
pub(crate) enum CallError {
    /// The caller broke the API's contract: a NULL pointer, a value out of range, a call in
    /// the wrong mode (API misuse, not the server's doing).
    Arg(String),
    /// The connection failed or refused: handshake, protocol violation (with the close code
    /// sent), transport, timeout (the [`wscope::Error`] says which).
    Conn(wscope::Error),
}

impl From<wscope::Error> for CallError {
    fn from(e: wscope::Error) -> Self {
        Self::Conn(e)
    }
}

impl From<String> for CallError {
    fn from(e: String) -> Self {
        Self::Arg(e)
    }
}

impl From<&str> for CallError {
    fn from(e: &str) -> Self {
        Self::Arg(e.to_owned())
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Arg(text) => f.write_str(text),
            Self::Conn(e) => e.fmt(f),
        }
    }
}

/// Runs the body of the C entry point `$name` (its signature stays a plain `extern "C" fn`
/// so that cbindgen sees it): clears the thread's last error, runs `$body` (a block of type
/// `Result<T, CallError>`) and returns its value, or `$on_error` with the last error set to
/// `"$name: <error>"`; a panic also becomes `$on_error` (last error `"$name: internal error
/// (panic caught)"`), never an unwind into C.
macro_rules! ffi_fn {
    ($name:ident, $on_error:expr, $body:block) => {
        $crate::error::run(
            stringify!($name),
            $on_error,
            || -> Result<_, $crate::error::CallError> { $body },
        )
    };
}

/// What [`ffi_fn!`] expands to.
pub(crate) fn run<T: Copy>(
    name: &str,
    on_error: T,
    body: impl FnOnce() -> Result<T, CallError>,
) -> T {
    guard(name, on_error, || {
        clear_error();
        body().unwrap_or_else(|e| {
            set_error(format_args!("{name}: {e}"));
            on_error
        })
    })
}

/// Runs `f`, turning a panic into `on_panic` with a last error (for code that does not
/// clear the last error: [`websock_last_error`], the event thread).
pub(crate) fn guard<T>(name: &str, on_panic: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        set_error(format_args!("{name}: internal error (panic caught)"));
        on_panic
    })
}

/// Sets this thread's last error (NUL bytes become spaces).
pub(crate) fn set_error(msg: impl fmt::Display) {
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

/// The calling thread's last error as a `String` (tests of this crate).
#[cfg(test)]
pub(crate) fn last_error() -> String {
    // SAFETY: websock_last_error returns a valid NUL-terminated string.
    unsafe { core::ffi::CStr::from_ptr(websock_last_error()) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffi_fn_clears_sets_and_catches() {
        set_error("old");
        assert_eq!(ffi_fn!(some_call, -1, { Ok(7) }), 7);
        assert_eq!(last_error(), "");
        assert_eq!(ffi_fn!(some_call, -1, { Err("bad\0arg".into()) }), -1);
        assert_eq!(last_error(), "some_call: bad arg");
        let e = wscope::Error::AlreadyClosed;
        let text = e.to_string();
        assert_eq!(ffi_fn!(other_call, -1, { Err(e.into()) }), -1);
        assert_eq!(last_error(), format!("other_call: {text}"));
        let r: i32 = ffi_fn!(panicky, -1, {
            if last_error().is_empty() {
                panic!("boom");
            }
            Ok(0)
        });
        assert_eq!(r, -1);
        assert_eq!(last_error(), "panicky: internal error (panic caught)");
    }
}
