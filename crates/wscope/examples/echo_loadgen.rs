//! Load generator for what the shared one in `../shared/bench` does not offer:
//! permessage-deflate (`bench/bench_deflate.py` runs it against `wscope serve --echo
//! --compress` and the anchors that compress, Python `websockets` and Node `ws`) and TLS
//! (`bench/bench_tls.py`, against our servers and those anchors over `wss://`).
//!
//! ```text
//! cargo run --release --example echo_loadgen -- --addr 127.0.0.1:9001 \
//!     [--conns 64] [--size 1K] [--window 1] [--duration 3] [--warmup 0.5] [--binary] \
//!     [--plain] [--tls-ca CA.pem] [--label L]
//! ```
//!
//! Every connection offers permessage-deflate (context takeover, the default wishes; none
//! with `--plain`), over TLS with `--tls-ca` (the server's certificate must be for
//! `localhost` and signed by that CA), and sends compressible messages: text built from a 64-word vocabulary by a seeded generator,
//! a different message each time (so context takeover helps, as with real JSON, but never
//! turns a message into a back-reference to the previous one). Each connection keeps
//! `window` messages in flight; every echo is compared byte for byte with what was sent.
//! Prints one JSON line (`msgs_per_s`, `p50_us`, `p99_us`, `received_total`, `ok`,
//! `errors`, `negotiated`), like the shared load generator.

// A load generator measures time: it is an I/O program, not protocol logic.
#![allow(clippy::disallowed_methods)]

use core::cell::RefCell;
use core::time::Duration;
use std::collections::VecDeque;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Instant;

use wscope::config::{ClientConfig, DeflateConfig};
use wscope::tls::TlsConfig;
use wscope::tokio::{connect_with_response, DataKind};
use wscope_test_support::Rng;

#[derive(Clone, Debug)]
struct Args {
    addr: String,
    conns: usize,
    size: usize,
    window: usize,
    duration: f64,
    warmup: f64,
    binary: bool,
    plain: bool,
    tls_ca: Option<String>,
    label: String,
}

fn parse_size(s: &str) -> Option<usize> {
    let (num, mul) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1024),
        b'M' | b'm' => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    num.parse::<usize>().ok()?.checked_mul(mul)
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: String::new(),
        conns: 1,
        size: 1024,
        window: 1,
        duration: 3.0,
        warmup: 0.5,
        binary: false,
        plain: false,
        tls_ca: None,
        label: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--binary" || flag == "--plain" {
            a.binary |= flag == "--binary";
            a.plain |= flag == "--plain";
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {v}");
        match flag.as_str() {
            "--addr" => a.addr.clone_from(&v),
            "--conns" => a.conns = v.parse().map_err(|_| bad())?,
            "--size" => a.size = parse_size(&v).ok_or_else(bad)?,
            "--window" => a.window = v.parse().map_err(|_| bad())?,
            "--duration" => a.duration = v.parse().map_err(|_| bad())?,
            "--warmup" => a.warmup = v.parse().map_err(|_| bad())?,
            "--label" => a.label.clone_from(&v),
            "--tls-ca" => a.tls_ca = Some(v),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.addr.is_empty() || a.conns == 0 || a.window == 0 || a.size == 0 {
        return Err(
            "usage: echo_loadgen --addr HOST:PORT [--conns N] [--size S[K|M]] \
                    [--window W] [--duration S] [--warmup S] [--binary] [--plain] \
                    [--tls-ca CA.pem] [--label L]"
                .into(),
        );
    }
    Ok(a)
}

const WORDS: [&str; 64] = [
    "id",
    "name",
    "value",
    "status",
    "ok",
    "error",
    "timestamp",
    "user",
    "session",
    "price",
    "quantity",
    "symbol",
    "bid",
    "ask",
    "open",
    "close",
    "high",
    "low",
    "volume",
    "trade",
    "order",
    "market",
    "limit",
    "stop",
    "buy",
    "sell",
    "true",
    "false",
    "null",
    "event",
    "update",
    "snapshot",
    "channel",
    "topic",
    "subscribe",
    "message",
    "payload",
    "sequence",
    "level",
    "depth",
    "book",
    "ticker",
    "account",
    "balance",
    "currency",
    "amount",
    "fee",
    "filled",
    "pending",
    "cancelled",
    "client",
    "server",
    "region",
    "zone",
    "latency",
    "count",
    "total",
    "items",
    "page",
    "next",
    "previous",
    "version",
    "type",
    "data",
];

/// `count` distinct messages of `size` bytes each: JSON-like text from the vocabulary, with
/// numbers, so it compresses about as well as typical application messages.
fn payloads(size: usize, count: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    (0..count)
        .map(|_| {
            let mut s = String::with_capacity(size + 32);
            s.push('{');
            while s.len() < size {
                let r = rng.next_u64();
                let key = WORDS[(r & 63) as usize];
                let val = WORDS[((r >> 6) & 63) as usize];
                let num = (r >> 12) % 100_000;
                s.push_str(&format!("\"{key}\":[\"{val}\",{num}],"));
            }
            s.truncate(size);
            s.into_bytes()
        })
        .collect()
}

#[derive(Default)]
struct Totals {
    received: u64,
    measured: u64,
    lat_us: Vec<u32>,
    errors: Vec<String>,
    negotiated: Option<String>,
}

async fn run_conn(
    args: Args,
    id: usize,
    messages: Rc<Vec<Vec<u8>>>,
    start: Instant,
    totals: Rc<RefCell<Totals>>,
) -> Result<(), String> {
    let (host, port) = args
        .addr
        .rsplit_once(':')
        .ok_or("address must be HOST:PORT")?;
    let port: u16 = port.parse().map_err(|_| "bad port")?;
    let mut cfg = ClientConfig::new(host, port);
    if !args.plain {
        cfg = cfg.deflate(DeflateConfig::default());
    }
    if let Some(ca) = &args.tls_ca {
        let tls = TlsConfig::new()
            .with_ca_file(ca)
            .map_err(|e| format!("{ca}: {e}"))?
            .with_sni("localhost");
        cfg = cfg.tls(tls);
    }
    let (mut ws, response) = connect_with_response(&cfg)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let agreed = response
        .headers()
        .get_str("sec-websocket-extensions")
        .unwrap_or("")
        .to_owned();
    if !args.plain && !agreed.contains("permessage-deflate") {
        return Err(format!("permessage-deflate not negotiated ({agreed:?})"));
    }
    totals.borrow_mut().negotiated.get_or_insert(agreed);
    let kind = if args.binary {
        DataKind::Binary
    } else {
        DataKind::Text
    };
    let warm_end = start + Duration::from_secs_f64(args.warmup);
    let end = warm_end + Duration::from_secs_f64(args.duration);
    let mut next = id * 7;
    let mut inflight: VecDeque<(usize, Instant)> = VecDeque::new();
    let mut out = Vec::new();
    let mut got = Vec::new();
    let mut send = |ws: &mut wscope::tokio::ClientStream, inflight: &mut VecDeque<_>| {
        let i = next % messages.len();
        next += 1;
        out.clear();
        out.extend_from_slice(&messages[i]);
        inflight.push_back((i, Instant::now()));
        ws.feed_data(kind, &mut out)
            .map_err(|e| format!("send: {e}"))
    };
    for _ in 0..args.window {
        send(&mut ws, &mut inflight)?;
    }
    ws.flush_writes().await.map_err(|e| format!("flush: {e}"))?;
    while let Some(r) = ws.recv_into(&mut got).await {
        let k = r.map_err(|e| format!("recv: {e}"))?;
        let Some((i, sent_at)) = inflight.pop_front() else {
            return Err("echo without a request".into());
        };
        if k != kind || got != messages[i] {
            return Err(format!("echo {i} differs ({} bytes back)", got.len()));
        }
        let now = Instant::now();
        {
            let mut t = totals.borrow_mut();
            t.received += 1;
            if now >= warm_end && now < end {
                t.measured += 1;
                let us = now.duration_since(sent_at).as_micros();
                t.lat_us.push(u32::try_from(us).unwrap_or(u32::MAX));
            }
        }
        if now >= end {
            if inflight.is_empty() {
                break;
            }
            continue;
        }
        send(&mut ws, &mut inflight)?;
        ws.flush_writes().await.map_err(|e| format!("flush: {e}"))?;
    }
    ws.close(wscope::CloseCode::NORMAL, "done")
        .await
        .map_err(|e| format!("close: {e}"))?;
    while let Some(r) = ws.recv_into(&mut got).await {
        if let Err(e) = r {
            return Err(format!("closing: {e}"));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("echo_loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let messages = Rc::new(payloads(args.size, 64));
    let totals = Rc::new(RefCell::new(Totals::default()));
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("echo_loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    let start = Instant::now();
    local.block_on(&rt, async {
        let mut tasks = Vec::new();
        for id in 0..args.conns {
            let (a, m, t) = (args.clone(), messages.clone(), totals.clone());
            tasks.push(tokio::task::spawn_local(async move {
                if let Err(e) = run_conn(a, id, m, start, t.clone()).await {
                    t.borrow_mut().errors.push(format!("conn {id}: {e}"));
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let mut t = totals.borrow_mut();
    t.lat_us.sort_unstable();
    let pct = |p: f64| -> u32 {
        let n = t.lat_us.len();
        if n == 0 {
            return 0;
        }
        let i = ((n as f64 * p) as usize).min(n - 1);
        t.lat_us[i]
    };
    let (p50, p99) = (pct(0.50), pct(0.99));
    let ok = t.errors.is_empty() && t.measured > 0;
    let errors: Vec<String> = t.errors.iter().take(5).map(|e| format!("{e:?}")).collect();
    println!(
        "{{\"label\":{:?},\"addr\":{:?},\"conns\":{},\"size\":{},\"window\":{},\"opcode\":{:?},\
         \"messages\":{},\"received_total\":{},\"msgs_per_s\":{:.1},\"p50_us\":{},\"p99_us\":{},\
         \"negotiated\":{:?},\"tls\":{},\"ok\":{},\"errors\":[{}]}}",
        args.label,
        args.addr,
        args.conns,
        args.size,
        args.window,
        if args.binary { "binary" } else { "text" },
        t.measured,
        t.received,
        t.measured as f64 / args.duration,
        p50,
        p99,
        t.negotiated.clone().unwrap_or_default(),
        args.tls_ca.is_some(),
        ok,
        errors.join(",")
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
