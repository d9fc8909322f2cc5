//! Interop battery of the blocking client against another library's echo server
//! (`conformance/interop/py_peer.py serve`, `node_peer.js serve`); `scripts/interop.sh`
//! runs it.
//!
//! ```text
//! cargo run --example interop_client -- ws://127.0.0.1:9001 [--ca ca.pem] [--label NAME]
//! ```
//!
//! The peer echoes text and binary messages with their type and understands three text
//! commands: `cmd:close:CODE:REASON` (it closes with that status), `cmd:frag:N:TEXT` (it sends
//! TEXT as one message in N fragments) and `cmd:ping:PAYLOAD` (it pings, and after the
//! matching pong sends `pong-ok:PAYLOAD`). Every check compares real content: whole echoed
//! payloads byte for byte (16 MiB included), exact close codes and reasons.
//! Prints `ok NAME` / `FAIL NAME: why` per test and `LABEL: N passed, M failed`; exits 1 on
//! any failure.

use core::time::Duration;
use std::process::ExitCode;

use wscope::blocking::{self, WebSocket};
use wscope::config::ClientConfig;
use wscope::tls::TlsConfig;
use wscope::{CloseCode, Error, Message, OpCode};
use wscope_test_support::Rng;

type TestResult = Result<(), String>;

struct Target {
    url: String,
    ca: Option<String>,
}

impl Target {
    fn open(&self) -> Result<WebSocket, String> {
        let mut cfg = ClientConfig::from_url(&self.url).map_err(|e| format!("url: {e}"))?;
        if let Some(ca) = &self.ca {
            cfg.tls = TlsConfig::new()
                .with_ca_file(ca)
                .map_err(|e| format!("CA file {ca}: {e}"))?;
        }
        let (ws, _response) = blocking::connect_with(&cfg).map_err(|e| format!("connect: {e}"))?;
        Ok(ws)
    }
}

/// Deterministic pseudo-random bytes: the same for a seed on every run.
fn pattern(n: usize, seed: u64) -> Vec<u8> {
    Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)).bytes(n)
}

/// About `n` bytes of text mixing 1- to 4-byte UTF-8 sequences.
fn big_text(n: usize) -> String {
    let unit = "wscope ✓ é ж 漢 😀 ";
    let mut s = String::with_capacity(n + unit.len());
    while s.len() + unit.len() <= n {
        s.push_str(unit);
    }
    s
}

fn e2s(e: Error) -> String {
    e.to_string()
}

/// Reads the next text or binary message, skipping pings and pongs.
fn read_data(ws: &mut WebSocket) -> Result<Message, String> {
    loop {
        match ws.read().map_err(e2s)? {
            m @ (Message::Text(_) | Message::Binary(_)) => return Ok(m),
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Close(c) => return Err(format!("unexpected close {c:?}")),
        }
    }
}

fn describe(m: &Message) -> String {
    match m {
        Message::Text(t) if t.len() <= 64 => format!("text {t:?}"),
        Message::Text(t) => format!("text of {} bytes", t.len()),
        Message::Binary(b) => format!("binary of {} bytes", b.len()),
        other => format!("{other:?}"),
    }
}

fn expect_echo(ws: &mut WebSocket, sent: &Message) -> TestResult {
    let got = read_data(ws)?;
    if &got == sent {
        Ok(())
    } else {
        Err(format!("sent {}, got {}", describe(sent), describe(&got)))
    }
}

fn t_text(ws: &mut WebSocket) -> TestResult {
    for s in ["hello wscope", "unicode: ✓ é ж 漢 😀", ""] {
        ws.send_text(s).map_err(e2s)?;
        expect_echo(ws, &Message::text(s))?;
    }
    Ok(())
}

fn t_binary(ws: &mut WebSocket) -> TestResult {
    for data in [
        pattern(1000, 1),
        Vec::new(),
        (0..76_800u32).map(|i| i as u8).collect(),
    ] {
        ws.send_binary(&data).map_err(e2s)?;
        expect_echo(ws, &Message::binary(data))?;
    }
    Ok(())
}

fn t_frag_send(ws: &mut WebSocket) -> TestResult {
    let parts = ["frag-one|", "frag-two ✓|", "frag-three"];
    for (i, p) in parts.iter().enumerate() {
        let op = if i == 0 {
            OpCode::TEXT
        } else {
            OpCode::CONTINUATION
        };
        ws.send_frame(op, p.as_bytes(), i + 1 == parts.len())
            .map_err(e2s)?;
    }
    expect_echo(ws, &Message::text(parts.concat()))?;
    let bins: Vec<Vec<u8>> = (0..4).map(|i| pattern(70_000, 10 + i)).collect();
    for (i, p) in bins.iter().enumerate() {
        let op = if i == 0 {
            OpCode::BINARY
        } else {
            OpCode::CONTINUATION
        };
        ws.send_frame(op, p, i + 1 == bins.len()).map_err(e2s)?;
    }
    expect_echo(ws, &Message::binary(bins.concat()))
}

fn t_frag_recv(ws: &mut WebSocket) -> TestResult {
    // The peer splits the text into 7 fragments (Node ws: by bytes, so UTF-8 sequences are
    // cut across frames; Python websockets: by characters).
    let text = "fragmented by the peer: ✓ é ж 漢 😀 ".repeat(20);
    ws.send_text(&format!("cmd:frag:7:{text}")).map_err(e2s)?;
    expect_echo(ws, &Message::text(text))
}

fn t_pipelined(ws: &mut WebSocket) -> TestResult {
    let msgs: Vec<Message> = (0..200u64)
        .map(|i| {
            if i % 2 == 1 {
                Message::text(format!("msg {i}"))
            } else {
                Message::binary(pattern(100 + i as usize, 100 + i))
            }
        })
        .collect();
    for m in &msgs {
        ws.feed(m.clone()).map_err(e2s)?;
    }
    ws.flush().map_err(e2s)?;
    for (i, m) in msgs.iter().enumerate() {
        expect_echo(ws, m).map_err(|e| format!("message {i}: {e}"))?;
    }
    Ok(())
}

fn t_ping(ws: &mut WebSocket) -> TestResult {
    for payload in [b"interop-ping".to_vec(), Vec::new(), pattern(125, 7)] {
        ws.send_ping(&payload).map_err(e2s)?;
        match ws.read_timeout(Duration::from_secs(10)).map_err(e2s)? {
            Some(Message::Pong(p)) if p == payload => {}
            other => {
                return Err(format!(
                    "expected a pong of {} bytes, got {other:?}",
                    payload.len()
                ))
            }
        }
    }
    Ok(())
}

fn t_server_ping(ws: &mut WebSocket) -> TestResult {
    ws.send_text("cmd:ping:server-ping-42").map_err(e2s)?;
    let mut saw_ping = false;
    loop {
        match ws.read().map_err(e2s)? {
            Message::Ping(p) if p[..] == b"server-ping-42"[..] => saw_ping = true,
            Message::Text(t) if t == "pong-ok:server-ping-42" => break,
            other => return Err(format!("unexpected {}", describe(&other))),
        }
    }
    if saw_ping {
        Ok(())
    } else {
        Err("pong-ok came but the ping was never reported".into())
    }
}

fn t_big_binary(ws: &mut WebSocket) -> TestResult {
    let data = pattern(16 << 20, 99);
    ws.send_binary(&data).map_err(e2s)?;
    match read_data(ws)? {
        Message::Binary(b) if b == data => Ok(()),
        Message::Binary(b) => {
            let first = b.iter().zip(&data).position(|(a, c)| a != c);
            Err(format!(
                "16 MiB echo differs: {} bytes back, first difference at {first:?}",
                b.len()
            ))
        }
        other => Err(format!("got {}", describe(&other))),
    }
}

fn t_big_text(ws: &mut WebSocket) -> TestResult {
    let s = big_text(4 << 20);
    ws.send_text(&s).map_err(e2s)?;
    expect_echo(ws, &Message::text(s))
}

/// Reads until the peer's close; returns its status.
fn read_close(ws: &mut WebSocket) -> Result<Option<(u16, String)>, String> {
    loop {
        match ws.read().map_err(e2s)? {
            Message::Close(c) => return Ok(c.map(|c| (c.code.0, c.reason))),
            Message::Ping(_) | Message::Pong(_) => {}
            other => return Err(format!("expected a close, got {}", describe(&other))),
        }
    }
}

fn expect_end(ws: &mut WebSocket) -> TestResult {
    match ws.read() {
        Err(Error::ConnectionClosed) => Ok(()),
        other => Err(format!(
            "after the close: expected ConnectionClosed, got {other:?}"
        )),
    }
}

fn t_client_close(ws: &mut WebSocket) -> TestResult {
    let reason = "client bye ✓";
    ws.start_close(Some(CloseCode(4001)), reason).map_err(e2s)?;
    // Both peers echo the whole close payload (code and reason).
    match read_close(ws)? {
        Some((4001, r)) if r == reason => expect_end(ws),
        other => Err(format!("expected close 4001 {reason:?}, got {other:?}")),
    }
}

fn t_server_close(t: &Target) -> TestResult {
    let mut ws = t.open()?;
    ws.send_text("cmd:close:4002:server bye ✓").map_err(e2s)?;
    match read_close(&mut ws)? {
        Some((4002, r)) if r == "server bye ✓" => expect_end(&mut ws),
        other => Err(format!(
            "expected close 4002 \"server bye ✓\", got {other:?}"
        )),
    }
}

fn t_close_normal(t: &Target) -> TestResult {
    let mut ws = t.open()?;
    ws.send_binary(&[0, 1]).map_err(e2s)?;
    expect_echo(&mut ws, &Message::binary(vec![0, 1]))?;
    ws.close(CloseCode::NORMAL, "").map_err(e2s)?;
    match ws.close_status() {
        Some(s) if s.remote == CloseCode::NORMAL => Ok(()),
        other => Err(format!("close status {other:?}, expected the peer's 1000")),
    }
}

fn main() -> ExitCode {
    let mut url = None;
    let mut ca = None;
    let mut label = "wscope-client".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ca" => ca = args.next(),
            "--label" => label = args.next().unwrap_or(label),
            u => url = Some(u.to_owned()),
        }
    }
    let Some(url) = url else {
        eprintln!("usage: interop_client URL [--ca FILE] [--label NAME]");
        return ExitCode::from(2);
    };
    let target = Target { url, ca };
    let (mut passed, mut failed) = (0u32, 0u32);
    let mut report = |name: &str, r: TestResult| match r {
        Ok(()) => {
            passed += 1;
            println!("ok   {label} {name}");
        }
        Err(e) => {
            failed += 1;
            println!("FAIL {label} {name}: {e}");
        }
    };

    type ConnTest = fn(&mut WebSocket) -> TestResult;
    let on_one_connection: [(&str, ConnTest); 11] = [
        ("text", t_text),
        ("binary", t_binary),
        ("fragmented-send", t_frag_send),
        ("fragmented-receive", t_frag_recv),
        ("pipelined-200", t_pipelined),
        ("ping-pong", t_ping),
        ("server-ping", t_server_ping),
        ("16MiB-binary", t_big_binary),
        ("4MiB-text", t_big_text),
        ("close-4001-with-reason", t_client_close),
        ("closed-after-close", expect_end_after_close),
    ];
    match target.open() {
        Ok(mut ws) => {
            for (name, t) in on_one_connection {
                report(name, t(&mut ws));
            }
        }
        Err(e) => report("connect", Err(e)),
    }
    report("server-close-4002-with-reason", t_server_close(&target));
    report("close-1000", t_close_normal(&target));
    println!("{label}: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// After the closing handshake every call fails with `AlreadyClosed`.
fn expect_end_after_close(ws: &mut WebSocket) -> TestResult {
    match ws.send_text("too late") {
        Err(Error::AlreadyClosed) => Ok(()),
        other => Err(format!(
            "send after close: expected AlreadyClosed, got {other:?}"
        )),
    }
}
