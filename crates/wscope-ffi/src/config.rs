//! Converting C arguments: NUL-terminated strings, byte buffers, PEM certificates and the
//! whole [`websock_config_t`] into a [`WebsockConfig`]. The checks on the settings
//! themselves (headers, TLS) are `wscope`'s; here only what C can get wrong (NULL, lengths,
//! UTF-8, ranges).

use core::ffi::{c_char, c_int, CStr};
use core::time::Duration;

use wscope::simple::{Secured, WebsockConfig};

use crate::types::{
    ssl_wrap_cert_t, websock_config_t, WEBSOCK_DEFAULT_CONNECT_TIMEOUT, WEBSOCK_MAX_HNDSHK_HDRS,
};

/// # Safety
/// `p` is NULL or a NUL-terminated string.
pub(crate) unsafe fn opt_str<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, String> {
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
pub(crate) unsafe fn bytes<'a>(
    p: *const c_char,
    len: c_int,
    what: &str,
) -> Result<&'a [u8], String> {
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
pub(crate) unsafe fn config_from_c(c: &websock_config_t) -> Result<WebsockConfig, String> {
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

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use super::*;

    fn blank() -> websock_config_t {
        websock_config_t::default()
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
}
