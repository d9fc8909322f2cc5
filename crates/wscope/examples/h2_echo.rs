//! Echo client for WebSocket over HTTP/2 (RFC 8441) against our HTTP/1.1 path: N WebSocket
//! streams on one HTTP/2 connection, or (`--http1`) N HTTP/1.1 connections, against one
//! `wscope serve --echo --http2` (which serves both on one port).
//!
//! ```text
//! cargo run --release --features http2 --example h2_echo -- --addr 127.0.0.1:9001 \
//!     [--streams N] [--size S[K|M]] [--duration S | --messages M] [--http1] \
//!     [--tls-ca CA.pem] [--host NAME] [--manifest FILE] [--label L]
//! ```
//!
//! - **Benchmark** (`--duration`, the default 3 s after 0.5 s of warm-up): every stream (or
//!   connection) keeps one message in flight and checks every echo byte for byte. Prints one
//!   JSON line: `msgs_per_s`, `p50_us`, `p99_us`, `ok`.
//! - **Known traffic** (`--messages M`): each stream sends M text messages whose text is
//!   `h2end stream S message M ` repeated to `--size` bytes, then closes with 1000 and
//!   checks the close reply. With `--manifest FILE` every message sent is written there as a
//!   line `S<TAB>M<TAB>text`, to check a capture's decoded messages against (the passive
//!   analyzer's tests).
//!
//! TLS with `--tls-ca` (the server's certificate must be for `--host`, `localhost` by
//! default); the key log goes where SSLKEYLOGFILE says.

// A load generator measures time: it is an I/O program, not protocol logic.
#![allow(clippy::disallowed_methods)]

use core::cell::RefCell;
use core::time::Duration;
use std::io::Write as _;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use wscope::config::ClientConfig;
use wscope::h2::Http2Client;
use wscope::tls::TlsConfig;
use wscope::tokio::WebSocketStream;
use wscope::{CloseCode, Message};

#[derive(Clone, Debug)]
struct Args {
    addr: String,
    host: String,
    streams: usize,
    size: usize,
    duration: f64,
    warmup: f64,
    messages: Option<usize>,
    http1: bool,
    tls_ca: Option<String>,
    manifest: Option<String>,
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
        host: "localhost".into(),
        streams: 1,
        size: 1024,
        duration: 3.0,
        warmup: 0.5,
        messages: None,
        http1: false,
        tls_ca: None,
        manifest: None,
        label: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--http1" {
            a.http1 = true;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {v}");
        match flag.as_str() {
            "--addr" => a.addr.clone_from(&v),
            "--host" => a.host.clone_from(&v),
            "--streams" => a.streams = v.parse().map_err(|_| bad())?,
            "--size" => a.size = parse_size(&v).ok_or_else(bad)?,
            "--duration" => a.duration = v.parse().map_err(|_| bad())?,
            "--warmup" => a.warmup = v.parse().map_err(|_| bad())?,
            "--messages" => a.messages = Some(v.parse().map_err(|_| bad())?),
            "--tls-ca" => a.tls_ca = Some(v),
            "--manifest" => a.manifest = Some(v),
            "--label" => a.label.clone_from(&v),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if a.addr.is_empty() || a.streams == 0 || a.size == 0 {
        return Err(
            "usage: h2_echo --addr HOST:PORT [--streams N] [--size S[K|M]] \
             [--duration S | --messages M] [--http1] [--tls-ca CA.pem] [--host NAME] \
             [--manifest FILE] [--label L]"
                .into(),
        );
    }
    Ok(a)
}

/// The client configuration for `args` (path `/echo`).
fn config(a: &Args) -> Result<ClientConfig, String> {
    let port = a
        .addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or("--addr needs a port")?;
    let mut cfg = ClientConfig::new(a.host.as_str(), port).path("/echo");
    if let Some(ca) = &a.tls_ca {
        let mut tls = TlsConfig::new()
            .with_ca_file(ca)
            .map_err(|e| e.to_string())?;
        tls.key_log = wscope::tls::env_key_log();
        cfg = cfg.tls(tls);
    } else {
        cfg.host = a
            .addr
            .rsplit_once(':')
            .map(|(h, _)| h.to_owned())
            .unwrap_or_default();
    }
    Ok(cfg)
}

/// The text of message `m` of stream `s`, `size` bytes.
fn known_text(s: usize, m: usize, size: usize) -> String {
    let unit = format!("h2end stream {s} message {m} ");
    let mut text = unit.repeat(size / unit.len() + 1);
    text.truncate(size);
    text
}

#[derive(Default)]
struct Totals {
    measured: u64,
    lat_us: Vec<u32>,
    errors: Vec<String>,
}

/// One stream or connection of the benchmark: ping-pong echoes until `end`, latencies of
/// those after `from` recorded.
async fn bench_one<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: WebSocketStream<S>,
    payload: Vec<u8>,
    from: Instant,
    end: Instant,
    totals: Rc<RefCell<Totals>>,
) {
    let mut result = Ok(());
    while Instant::now() < end {
        let t0 = Instant::now();
        if let Err(e) = ws.send(Message::binary(payload.clone())).await {
            result = Err(e.to_string());
            break;
        }
        match ws.next().await {
            Some(Ok(Message::Binary(b))) if b == payload => {}
            other => {
                result = Err(format!("bad echo: {other:?}"));
                break;
            }
        }
        if t0 >= from {
            let mut t = totals.borrow_mut();
            t.measured += 1;
            t.lat_us
                .push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
        }
    }
    let _ = ws.close(CloseCode::NORMAL, "").await;
    while let Some(Ok(_)) = ws.next().await {}
    if let Err(e) = result {
        totals.borrow_mut().errors.push(e);
    }
}

/// One stream of the known traffic: `n` messages, echoes checked, a close.
async fn known_one<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: WebSocketStream<S>,
    s: usize,
    n: usize,
    size: usize,
) -> Result<(), String> {
    for m in 0..n {
        let text = known_text(s, m, size);
        ws.send(Message::text(text.clone()))
            .await
            .map_err(|e| e.to_string())?;
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t == text => {}
            other => return Err(format!("stream {s} message {m}: bad echo {other:?}")),
        }
    }
    ws.close(CloseCode::NORMAL, "done")
        .await
        .map_err(|e| e.to_string())?;
    match ws.next().await {
        Some(Ok(Message::Close(_))) => {}
        other => return Err(format!("stream {s}: no close reply: {other:?}")),
    }
    while let Some(m) = ws.next().await {
        m.map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn run(a: Args) -> Result<(), String> {
    let cfg = config(&a)?;
    if let Some(path) = &a.manifest {
        let n = a.messages.unwrap_or(0);
        let mut f = std::fs::File::create(path).map_err(|e| format!("{path}: {e}"))?;
        for s in 0..a.streams {
            for m in 0..n {
                writeln!(f, "{s}\t{m}\t{}", known_text(s, m, a.size))
                    .map_err(|e| format!("{path}: {e}"))?;
            }
        }
    }
    let client = if a.http1 {
        None
    } else {
        Some(
            Http2Client::connect(&cfg)
                .await
                .map_err(|e| e.to_string())?,
        )
    };
    let start = Instant::now();
    let from = start + Duration::from_secs_f64(a.warmup);
    let end = from + Duration::from_secs_f64(a.duration);
    let totals = Rc::new(RefCell::new(Totals::default()));
    let local = tokio::task::LocalSet::new();
    let payload: Vec<u8> = (0..a.size).map(|i| (i * 7) as u8).collect();
    let mut tasks = Vec::new();
    for s in 0..a.streams {
        macro_rules! spawn {
            ($ws:expr) => {{
                let ws = $ws;
                match a.messages {
                    Some(n) => {
                        let size = a.size;
                        tasks
                            .push(local.spawn_local(async move { known_one(ws, s, n, size).await }))
                    }
                    None => {
                        let (p, t) = (payload.clone(), totals.clone());
                        tasks.push(local.spawn_local(async move {
                            bench_one(ws, p, from, end, t).await;
                            Ok(())
                        }))
                    }
                }
            }};
        }
        match &client {
            Some(c) => spawn!(c.websocket(&cfg).await.map_err(|e| e.to_string())?.0),
            None => spawn!(wscope::tokio::connect_with(&cfg)
                .await
                .map_err(|e| e.to_string())?),
        }
    }
    let results = local
        .run_until(async move {
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.map_err(|e| e.to_string()).and_then(|r| r));
            }
            out
        })
        .await;
    if let Some(e) = results.into_iter().find_map(Result::err) {
        return Err(e);
    }
    let mode = if a.http1 { "http1" } else { "h2" };
    if a.messages.is_some() {
        println!(
            "{{\"label\":\"{}\",\"mode\":\"{mode}\",\"streams\":{},\"messages\":{},\"ok\":true}}",
            a.label,
            a.streams,
            a.messages.unwrap_or(0)
        );
        return Ok(());
    }
    let mut t = totals.borrow_mut();
    t.lat_us.sort_unstable();
    let pct = |p: f64| {
        t.lat_us
            .get(((t.lat_us.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{{\"label\":\"{}\",\"mode\":\"{mode}\",\"streams\":{},\"size\":{},\"msgs_per_s\":{:.0},\
         \"p50_us\":{},\"p99_us\":{},\"ok\":{},\"errors\":{}}}",
        a.label,
        a.streams,
        a.size,
        t.measured as f64 / a.duration,
        pct(0.5),
        pct(0.99),
        t.errors.is_empty(),
        t.errors.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("h2_echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("h2_echo: {e}");
            ExitCode::FAILURE
        }
    }
}
