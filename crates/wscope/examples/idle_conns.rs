//! Opens many WebSocket connections and holds them idle, for measuring a server's memory per
//! idle connection (`scripts/idle-memory.sh` runs it against `wscope serve --echo
//! [--compress]` and reads the server's RSS before and after).
//!
//! ```text
//! cargo run --release --example idle_conns -- --addr 127.0.0.1:9001 --conns 2000 \
//!     [--plain] [--no-takeover] [--send-one] [--hold 30]
//! ```
//!
//! Connections are opened one after the other, each offering permessage-deflate (the
//! default wishes, or both `*_no_context_takeover` with `--no-takeover`; none with `--plain`).
//! With `--send-one` each sends one compressible text
//! message of about 1 KiB and reads its echo before going idle, so a server with context
//! takeover holds its compression contexts from then on. Prints `ready CONNS NEGOTIATED`
//! once all are open, then holds them for `--hold` seconds (or until standard input closes,
//! whichever comes first) and exits.

// A load tool: it is an I/O program, not protocol logic.
#![allow(clippy::disallowed_methods)]

use core::time::Duration;
use std::io::{Read, Write};
use std::process::ExitCode;

use futures_util::{SinkExt, StreamExt};
use wscope::config::{ClientConfig, DeflateConfig};
use wscope::tokio::connect_with_response;
use wscope::Message;

struct Args {
    addr: String,
    conns: usize,
    plain: bool,
    no_takeover: bool,
    send_one: bool,
    hold: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: String::new(),
        conns: 1000,
        plain: false,
        no_takeover: false,
        send_one: false,
        hold: 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => a.addr = value()?,
            "--conns" => a.conns = value()?.parse().map_err(|e| format!("--conns: {e}"))?,
            "--hold" => a.hold = value()?.parse().map_err(|e| format!("--hold: {e}"))?,
            "--plain" => a.plain = true,
            "--no-takeover" => a.no_takeover = true,
            "--send-one" => a.send_one = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.addr.is_empty() {
        return Err("--addr is required".into());
    }
    Ok(a)
}

/// About 1 KiB of text from a small vocabulary, different per connection.
fn message(seed: usize) -> String {
    const WORDS: [&str; 16] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
    ];
    let mut x = seed as u64 * 0x9e37_79b9_7f4a_7c15 + 1;
    let mut s = String::new();
    while s.len() < 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(WORDS[(x % 16) as usize]);
        s.push(' ');
    }
    s
}

async fn run(a: Args) -> Result<(), String> {
    let (host, port) = a.addr.rsplit_once(':').ok_or("--addr must be HOST:PORT")?;
    let port: u16 = port.parse().map_err(|e| format!("port: {e}"))?;
    let mut cfg = ClientConfig::new(host, port);
    if !a.plain {
        cfg = cfg.deflate(
            DeflateConfig::default()
                .server_no_context_takeover(a.no_takeover)
                .client_no_context_takeover(a.no_takeover),
        );
    }
    let mut held = Vec::with_capacity(a.conns);
    let mut negotiated = 0usize;
    for i in 0..a.conns {
        let (mut ws, response) = connect_with_response(&cfg)
            .await
            .map_err(|e| format!("connection {i}: {e}"))?;
        if response
            .headers()
            .get_str("sec-websocket-extensions")
            .is_some_and(|v| v.contains("permessage-deflate"))
        {
            negotiated += 1;
        }
        if a.send_one {
            let text = message(i);
            ws.send(Message::text(text.clone()))
                .await
                .map_err(|e| format!("send {i}: {e}"))?;
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t == text => {}
                other => return Err(format!("echo {i}: {other:?}")),
            }
        }
        held.push(ws);
    }
    println!("ready {} {negotiated}", held.len());
    let _ = std::io::stdout().flush();
    // Hold until the time is up or standard input closes.
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = [0u8; 64];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
    });
    let _ = tokio::time::timeout(Duration::from_secs(a.hold), stdin_closed).await;
    drop(held);
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("idle_conns: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("idle_conns: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("idle_conns: {e}");
            ExitCode::FAILURE
        }
    }
}
