//! The C API (called as C would, through the `extern "C"` functions) against an in-process
//! wscope server: the `websock_recv` contract (a 1 MiB frame through a small buffer, the
//! timeout, pings answered with their payload and not returned, the close returned once then
//! -1), sending while another thread blocks in `websock_recv`, close reasons, refused
//! configurations, and callback mode (events, and `websock_close` while the event thread
//! receives).

#![allow(unsafe_code)] // calls the C API as C would
#![allow(clippy::disallowed_methods)] // measures the receive timeout with the real clock

use core::ffi::CStr;
use core::ffi::{c_char, c_int};
use core::time::Duration;
use std::ffi::CString;
use std::thread;
use std::time::Instant;

use wscope::blocking::Server;
use wscope::config::ServerConfig;
use wscope::{CloseCode, Message};
use wscope_ffi::*;

fn last_error() -> String {
    // SAFETY: websock_last_error always returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(websock_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn server() -> (Server, u16) {
    let s = Server::bind("127.0.0.1:0", ServerConfig::default()).expect("bind");
    let port = s.local_addr().expect("addr").port();
    (s, port)
}

fn open(host: &CString, port: u16) -> websock_handle_t {
    let mut cfg = websock_config_t {
        hostname: host.as_ptr().cast_mut(),
        port: c_int::from(port),
        time_out: 5,
        ..websock_config_t::default()
    };
    // SAFETY: a valid configuration.
    let h = unsafe { websock_open(&mut cfg) };
    assert!(!h.is_null(), "websock_open: {}", last_error());
    h
}

/// One call of websock_recv: (return value, header, bytes).
fn recv(h: websock_handle_t, cap: usize, timeout: c_int) -> (c_int, websock_msg_hdr_t, Vec<u8>) {
    let mut hdr = websock_msg_hdr_t {
        fin: 7,
        opcode: 7,
        payload_len: 7,
    };
    let mut buf = vec![0u8; cap];
    let mut len = c_int::try_from(cap).unwrap();
    // SAFETY: valid pointers; `buf` holds `len` bytes.
    let ret = unsafe {
        websock_recv(
            h,
            &mut hdr,
            buf.as_mut_ptr().cast::<c_char>(),
            &mut len,
            timeout,
        )
    };
    if ret >= 0 {
        assert_eq!(ret, len, "return value and *len agree");
        buf.truncate(usize::try_from(ret).unwrap());
    }
    (ret, hdr, buf)
}

#[test]
fn recv_contract() {
    const BIG: usize = 1 << 20;
    let (srv, port) = server();
    let big: Vec<u8> = (0..BIG).map(|i| (i * 31 + 7) as u8).collect();
    let expected = big.clone();
    let (go_close, close_now) = std::sync::mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let mut ws = srv.accept().expect("accept");
        ws.send_binary(&big).expect("send 1 MiB");
        ws.send_ping(b"are you there").expect("ping");
        // The client's receive loop answers the ping with the same payload.
        let pong = match ws.read().expect("read") {
            Message::Pong(p) => p,
            other => panic!("unexpected {other:?}"),
        };
        // Close from the server side once the client has seen its timeout; the client
        // answers it inside websock_recv.
        close_now.recv().expect("go");
        ws.close(CloseCode(3001), "done").expect("close");
        pong
    });

    let host = CString::new("127.0.0.1").unwrap();
    let h = open(&host, port);

    // The 1 MiB frame through a 1000-byte buffer: every piece carries the frame's header.
    let mut got = Vec::with_capacity(BIG);
    let mut pieces = 0;
    while got.len() < BIG {
        let (ret, hdr, bytes) = recv(h, 1000, 10);
        assert!(ret > 0, "recv: {ret} {}", last_error());
        assert!(ret <= 1000);
        assert_eq!((hdr.fin, hdr.opcode, hdr.payload_len), (1, 2, BIG as i64));
        got.extend_from_slice(&bytes);
        pieces += 1;
    }
    assert_eq!(got, expected);
    assert!(pieces >= BIG / 1000);

    // The ping is answered, not returned; nothing else arrives: 0 with opcode -1 after ~1 s
    // (not before; the upper bound only tells a timeout from a hang, with room for a loaded
    // machine).
    let t0 = Instant::now();
    let (ret, hdr, _) = recv(h, 64, 1);
    let waited = t0.elapsed();
    assert_eq!((ret, hdr.fin, hdr.opcode, hdr.payload_len), (0, -1, -1, 0));
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    go_close.send(()).unwrap();

    // The server's close: returned once with its payload, then -1.
    let (ret, hdr, bytes) = loop {
        let r = recv(h, 64, 5);
        if r.0 != 0 || r.1.opcode != -1 {
            break r;
        }
    };
    assert_eq!((ret, hdr.opcode, hdr.fin), (6, 8, 1));
    assert_eq!(bytes, b"\x0b\xb9done");
    let (ret, hdr, _) = recv(h, 64, 1);
    assert_eq!((ret, hdr.opcode), (-1, -1));
    assert!(!last_error().is_empty());
    // SAFETY: a live handle, closed once.
    unsafe { websock_close(h) };
    assert_eq!(peer.join().unwrap(), &b"are you there"[..]);
}

#[test]
fn send_while_another_thread_receives() {
    let (srv, port) = server();
    let peer = thread::spawn(move || {
        let mut ws = srv.accept().expect("accept");
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => ws.send_text(&t).expect("echo"),
                Ok(Message::Close(c)) => break c,
                Ok(_) => {}
                Err(e) => panic!("server: {e}"),
            }
        }
    });
    let host = CString::new("127.0.0.1").unwrap();
    let h = open(&host, port);
    let addr = h as usize; // the handle is usable from other threads
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        let h = addr as websock_handle_t;
        let mut msg = *b"from another thread";
        // SAFETY: a live handle; `msg` holds the given bytes.
        unsafe { websock_send_text(h, msg.as_mut_ptr().cast(), msg.len() as c_int) }
    });
    // Blocks here while the other thread sends.
    let (ret, hdr, bytes) = recv(h, 128, 5);
    assert_eq!(sender.join().unwrap(), 0);
    assert_eq!((ret, hdr.opcode, hdr.fin), (19, 1, 1));
    assert_eq!(bytes, b"from another thread");

    // Close reasons: invalid statuses refused, the reason cut to 123 bytes on a char boundary.
    let long = "é".repeat(100); // 200 bytes
    let mut reason = long.clone().into_bytes();
    // SAFETY: a live handle; `reason` and `invalid` hold the given bytes.
    unsafe {
        for bad in [1004, 1005, 1006, 1015, 2000, 9999, 999, 5000, -1, 70000] {
            assert_eq!(
                websock_close_reason(h, bad, core::ptr::null_mut(), 0),
                -1,
                "{bad}"
            );
        }
        assert_eq!(websock_close_reason(h, 0, reason.as_mut_ptr(), 3), -1);
        let mut invalid = *b"\xff\xfe";
        assert_eq!(websock_close_reason(h, 1000, invalid.as_mut_ptr(), 2), -1);
        assert_eq!(
            websock_close_reason(
                h,
                lws_close_status::LWS_CLOSE_STATUS_GOINGAWAY as c_int,
                reason.as_mut_ptr(),
                reason.len()
            ),
            0,
            "{}",
            last_error()
        );
        websock_close(h);
    }
    let close = peer.join().unwrap().expect("a close with a status");
    assert_eq!(close.code, CloseCode(1001));
    assert_eq!(close.reason, "é".repeat(61)); // 122 bytes: the 124th would split a character
}

#[test]
fn refused_configurations() {
    let (_srv, port) = server();
    let host = CString::new("127.0.0.1").unwrap();
    for clash in [
        "Host",
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
    ] {
        let name = CString::new(clash).unwrap();
        let val = CString::new("x").unwrap();
        let mut cfg = websock_config_t {
            hostname: host.as_ptr().cast_mut(),
            port: c_int::from(port),
            time_out: 2,
            num_hndshk_hdrs: 1,
            ..websock_config_t::default()
        };
        cfg.hndshk_hdrs[0] = websoc_hndshk_hdr_t {
            name: name.as_ptr().cast_mut(),
            val: val.as_ptr().cast_mut(),
        };
        // SAFETY: a valid configuration.
        let h = unsafe { websock_open(&mut cfg) };
        assert!(h.is_null(), "{clash} accepted");
        assert!(
            last_error().contains("clashes"),
            "{clash}: {}",
            last_error()
        );
    }
}

/// What the event handler saw: (event, opcode, fin, payload_len, bytes).
type Seen = std::sync::Mutex<Vec<(websock_cb_event_t, c_int, c_int, i64, Vec<u8>)>>;

unsafe extern "C" fn on_event(
    c: *mut core::ffi::c_void,
    evnt: websock_cb_event_t,
    msg_hdr: *mut websock_msg_hdr_t,
    payload: *mut c_char,
    len: c_int,
) {
    // SAFETY: `c` is the `Seen` passed to websock_set_event_handler; the other pointers are
    // valid for the call.
    let (seen, hdr, bytes) = unsafe {
        (
            &*c.cast::<Seen>(),
            *msg_hdr,
            core::slice::from_raw_parts(payload.cast::<u8>(), usize::try_from(len).unwrap()),
        )
    };
    seen.lock()
        .unwrap()
        .push((evnt, hdr.opcode, hdr.fin, hdr.payload_len, bytes.to_vec()));
}

#[test]
fn event_handler_reports_data_then_error() {
    let (srv, port) = server();
    let peer = thread::spawn(move || {
        let mut ws = srv.accept().expect("accept");
        ws.send_text("event").expect("send");
        ws.send_binary(&[7u8; 3000]).expect("send");
        ws.close(CloseCode::NORMAL, "").expect("close");
    });
    let host = CString::new("127.0.0.1").unwrap();
    let h = open(&host, port);
    let seen: Seen = std::sync::Mutex::new(Vec::new());
    let ctx = core::ptr::from_ref(&seen)
        .cast_mut()
        .cast::<core::ffi::c_void>();
    // SAFETY: a live handle; `seen` outlives the handler (the handle is closed below).
    let first = unsafe { websock_set_event_handler(h, Some(on_event), ctx) };
    assert_eq!(first, 0);
    // SAFETY: as above.
    let second = unsafe { websock_set_event_handler(h, Some(on_event), ctx) };
    assert_eq!(second, -1, "a second handler is refused");
    let t0 = Instant::now();
    while !seen
        .lock()
        .unwrap()
        .iter()
        .any(|e| e.0 == websock_cb_event_t::WEBSOCK_CB_EVENT_ERROR)
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "no error event");
        thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: a live handle, closed once; this joins the event thread.
    unsafe { websock_close(h) };
    peer.join().unwrap();
    let seen = seen.into_inner().unwrap();
    let data: Vec<_> = seen
        .iter()
        .filter(|e| e.0 == websock_cb_event_t::WEBSOCK_CB_EVENT_DATA)
        .collect();
    assert_eq!((data[0].1, data[0].2, data[0].3), (1, 1, 5));
    assert_eq!(data[0].4, b"event");
    let binary: Vec<u8> = data
        .iter()
        .filter(|e| e.1 == 2)
        .flat_map(|e| {
            assert_eq!(e.3, 3000);
            assert!(e.4.len() <= 1400);
            e.4.clone()
        })
        .collect();
    assert_eq!(binary, vec![7u8; 3000]);
    assert!(
        data.iter().any(|e| e.1 == 8),
        "the close is reported as data"
    );
    assert_eq!(
        seen.last().unwrap().0,
        websock_cb_event_t::WEBSOCK_CB_EVENT_ERROR
    );
}

/// `websock_close` while the event thread waits in a receive (the server sends nothing):
/// the thread is stopped and joined, the close goes out, all within the close bound.
#[test]
fn close_while_the_event_thread_receives() {
    let (srv, port) = server();
    let peer = thread::spawn(move || {
        let mut ws = srv.accept().expect("accept");
        // Nothing to send; read until the client's close (answered by the read).
        let mut got = None;
        while let Ok(m) = ws.read() {
            got = Some(m);
        }
        got
    });
    let host = CString::new("127.0.0.1").unwrap();
    let h = open(&host, port);
    let seen: &'static Seen = Box::leak(Box::new(std::sync::Mutex::new(Vec::new())));
    let ctx = core::ptr::from_ref(seen)
        .cast_mut()
        .cast::<core::ffi::c_void>();
    // SAFETY: a live handle; `seen` lives for the whole test run.
    let rc = unsafe { websock_set_event_handler(h, Some(on_event), ctx) };
    assert_eq!(rc, 0);
    // Let the thread enter its receive.
    thread::sleep(Duration::from_millis(300));
    let addr = h as usize;
    let (done, finished) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let t0 = Instant::now();
        // SAFETY: a live handle, closed once, by this thread only.
        unsafe { websock_close(addr as websock_handle_t) };
        let _ = done.send(t0.elapsed());
    });
    let bound = Duration::from_secs(u64::try_from(WEBSOCK_CLOSE_TIMEOUT).unwrap());
    let took = finished
        .recv_timeout(bound + Duration::from_secs(5))
        .expect("websock_close did not return (event thread not stopped)");
    assert!(took < bound + Duration::from_secs(2), "{took:?}");
    assert!(matches!(peer.join().unwrap(), Some(Message::Close(..))));
    assert!(seen.lock().unwrap().is_empty(), "nothing was received");
}

#[test]
fn write_timeout_arguments() {
    let (srv, port) = server();
    let t = thread::spawn(move || {
        let mut ws = srv.accept().expect("accept");
        while ws.read().is_ok() {}
    });
    let host = CString::new("127.0.0.1").unwrap();
    let h = open(&host, port);
    // SAFETY: a live handle, and NULL (a documented error).
    unsafe {
        assert_eq!(websock_set_write_timeout(core::ptr::null_mut(), 5), -1);
        assert!(last_error().contains("NULL handle"), "{}", last_error());
        assert_eq!(websock_set_write_timeout(h, 0), -1);
        assert!(last_error().contains("1 or more"), "{}", last_error());
        assert_eq!(websock_set_write_timeout(h, 3), 0);
        assert_eq!(last_error(), "");
        websock_close(h);
    }
    t.join().unwrap();
}

/// The C library built without TLS (`--no-default-features`): a `secured` configuration fails
/// at `websock_open`, before any connection, and `websock_last_error` names the missing
/// feature.
#[cfg(not(feature = "rustls"))]
#[test]
fn secured_without_tls_is_refused_with_the_reason() {
    let host = CString::new("127.0.0.1").unwrap();
    for secured in [1, 2] {
        let mut cfg = websock_config_t {
            hostname: host.as_ptr().cast_mut(),
            port: 9,
            time_out: 2,
            secured,
            ..websock_config_t::default()
        };
        // SAFETY: a valid configuration.
        let h = unsafe { websock_open(&mut cfg) };
        assert!(h.is_null(), "secured {secured} opened without TLS");
        assert!(
            last_error().contains("`rustls` feature"),
            "secured {secured}: {}",
            last_error()
        );
    }
}
