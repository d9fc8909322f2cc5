//! The broadcast benchmark's clients: opens many WebSocket connections to `bcast-server`,
//! measures the server's RSS over them while idle, then has it broadcast and counts what
//! arrives.
//!
//! ```text
//! bcast-load --addr 127.0.0.1:PORT --pid SERVER_PID --conns N [--msgs K] [--size BYTES]
//!            [--rounds R] [--offer EXTENSIONS] [--src 127.0.0.X] [--idle-only] [--label NAME]
//! ```
//!
//! The clients are raw sockets on one thread: a handshake, then frames are only parsed far
//! enough to count them (server frames are unmasked; compressed ones are counted, not
//! inflated: the tests check their contents, this measures the server). Per round the
//! server is asked to broadcast K messages of BYTES bytes (`send K BYTES` on the control
//! port, `PORT + 1`) and the round ends when every connection has received all K. Prints
//! one JSON line per round and a summary line: delivered messages per second, the server's
//! CPU time (all its threads' run time, from `/proc/PID/task/*/schedstat`) per delivery (and
//! the load's own, to tell whether the clients bound the rate), and its RSS per connection
//! (idle, after the handshakes; and after the rounds).

// A load tool: it is an I/O program that times what it does, not protocol logic.
#![allow(clippy::disallowed_methods)]

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

struct Opts {
    addr: SocketAddr,
    pid: u32,
    conns: usize,
    msgs: usize,
    size: usize,
    rounds: usize,
    offer: Option<String>,
    src: Option<std::net::IpAddr>,
    idle_only: bool,
    label: String,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        addr: "127.0.0.1:9001".parse().map_err(|e| format!("{e}"))?,
        pid: 0,
        conns: 1000,
        msgs: 100,
        size: 1024,
        rounds: 3,
        offer: None,
        src: None,
        idle_only: false,
        label: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => o.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--pid" => o.pid = value()?.parse().map_err(|e| format!("--pid: {e}"))?,
            "--conns" => o.conns = value()?.parse().map_err(|e| format!("--conns: {e}"))?,
            "--msgs" => o.msgs = value()?.parse().map_err(|e| format!("--msgs: {e}"))?,
            "--size" => o.size = value()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--rounds" => o.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--offer" => o.offer = Some(value()?),
            "--src" => o.src = Some(value()?.parse().map_err(|e| format!("--src: {e}"))?),
            "--idle-only" => o.idle_only = true,
            "--label" => o.label = value()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.pid == 0 {
        return Err("--pid SERVER_PID is required".into());
    }
    Ok(o)
}

/// The server's resident set, KiB.
fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The server's CPU time so far, seconds: the run time of all its threads from
/// `/proc/PID/task/*/schedstat` (nanoseconds; `/proc/PID/stat`'s user + system time counts
/// in 10 ms ticks, too coarse for a round of a second), or from `/proc/PID/stat` when
/// schedstat is not there.
fn cpu_secs(pid: u32) -> f64 {
    let mut ns = 0u64;
    let mut found = false;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let s = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            if let Some(v) = s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
            {
                ns += v;
                found = true;
            }
        }
    }
    if found {
        return ns as f64 / 1e9;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after the ')'.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Opens one connection and completes the handshake; returns the stream and whether the
/// server agreed to permessage-deflate.
async fn connect(o: &Opts) -> std::io::Result<(TcpStream, bool)> {
    let sock = TcpSocket::new_v4()?;
    if let Some(src) = o.src {
        sock.bind(SocketAddr::new(src, 0))?;
    }
    let mut tcp = sock.connect(o.addr).await?;
    let ext = o
        .offer
        .as_ref()
        .map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n",
        o.addr
    );
    tcp.write_all(req.as_bytes()).await?;
    // Read the response head byte by byte-ish: nothing follows it until a broadcast.
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed during the handshake"));
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 8192 {
            return Err(std::io::Error::other("response head too long"));
        }
    }
    let text = String::from_utf8_lossy(&head);
    if !text.starts_with("HTTP/1.1 101") {
        return Err(std::io::Error::other(format!("not upgraded: {text}")));
    }
    let deflate = text.to_ascii_lowercase().contains("permessage-deflate");
    Ok((tcp, deflate))
}

/// Frame counting over the received bytes (server frames: unmasked).
#[derive(Default)]
struct Counter {
    head: [u8; 14],
    head_len: usize,
    skip: u64,
    /// The frame being skipped ends a data message.
    data_fin: bool,
    messages: u64,
    compressed: u64,
}

impl Counter {
    fn header_len(&self) -> Option<usize> {
        if self.head_len < 2 {
            return None;
        }
        let base = match self.head[1] & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        Some(base + if self.head[1] & 0x80 != 0 { 4 } else { 0 })
    }

    fn feed(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            if self.skip > 0 {
                let take = (self.skip as usize).min(b.len());
                self.skip -= take as u64;
                b = &b[take..];
                if self.skip == 0 {
                    self.frame_done();
                }
                continue;
            }
            let want = self.header_len().unwrap_or(2);
            if self.head_len < want {
                let take = (want - self.head_len).min(b.len());
                self.head[self.head_len..self.head_len + take].copy_from_slice(&b[..take]);
                self.head_len += take;
                b = &b[take..];
                // The length byte may ask for more header.
                if self.header_len().is_some_and(|n| n > self.head_len) || self.head_len < 2 {
                    continue;
                }
            }
            let h = &self.head;
            let len = match h[1] & 0x7f {
                126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
                127 => u64::from_be_bytes(h[2..10].try_into().unwrap_or([0; 8])),
                n => u64::from(n),
            };
            let opcode = h[0] & 0x0f;
            self.data_fin = h[0] & 0x80 != 0 && opcode < 8;
            if h[0] & 0x40 != 0 {
                self.compressed += 1;
            }
            self.head_len = 0;
            self.skip = len;
            if len == 0 {
                self.frame_done();
            }
        }
    }

    fn frame_done(&mut self) {
        if self.data_fin {
            self.messages += 1;
        }
    }
}

thread_local! {
    /// One read buffer for every connection (the clients run on one thread).
    static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; 256 * 1024]);
}

/// Shared progress of the round in flight.
struct Progress {
    /// Messages each connection must have by the end of this round.
    target: std::cell::Cell<u64>,
    /// Connections that still miss some.
    left: std::cell::Cell<usize>,
    done: tokio::sync::Notify,
    compressed: std::cell::Cell<u64>,
    failed: std::cell::Cell<usize>,
}

async fn reader(tcp: TcpStream, p: Rc<Progress>) {
    let mut c = Counter::default();
    let mut reached = 0u64;
    loop {
        if tcp.readable().await.is_err() {
            break;
        }
        let r = BUF.with(|b| {
            let mut b = b.borrow_mut();
            match tcp.try_read(&mut b) {
                Ok(0) => Err(()),
                Ok(n) => {
                    c.feed(&b[..n]);
                    Ok(())
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
                Err(_) => Err(()),
            }
        });
        if r.is_err() {
            break;
        }
        let before = p.compressed.get();
        p.compressed.set(before + c.compressed);
        c.compressed = 0;
        while c.messages >= p.target.get() && p.target.get() > reached {
            reached = p.target.get();
            p.left.set(p.left.get() - 1);
            if p.left.get() == 0 {
                p.done.notify_one();
            }
        }
    }
    p.failed.set(p.failed.get() + 1);
}

async fn control(addr: SocketAddr, line: &str) -> std::io::Result<usize> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.write_all(format!("{line}\n").as_bytes()).await?;
    let mut reply = String::new();
    BufReader::new(tcp).read_line(&mut reply).await?;
    reply
        .trim()
        .strip_prefix("ok ")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("control answered {reply:?}")))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

async fn run(o: Opts) -> Result<(), String> {
    let ctl = SocketAddr::new(o.addr.ip(), o.addr.port() + 1);
    let rss0 = rss_kib(o.pid);
    let mut streams = Vec::with_capacity(o.conns);
    let mut agreed = 0;
    // Handshakes a few at a time (the accept backlog is finite).
    let mut pending = Vec::new();
    let oref = &o;
    for i in 0..o.conns {
        pending.push(connect(oref));
        if pending.len() == 64 || i + 1 == o.conns {
            for r in futures_util::future::join_all(pending.drain(..)).await {
                let (s, d) = r.map_err(|e| format!("connection {}: {e}", streams.len()))?;
                agreed += usize::from(d);
                streams.push(s);
            }
        }
    }
    // Every connection subscribed (accepted and upgraded) on the server.
    let start = Instant::now();
    loop {
        let n = control(ctl, "conns").await.map_err(|e| e.to_string())?;
        if n >= o.conns {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!("only {n} of {} connections subscribed", o.conns));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss_kib(o.pid);
    let idle_per_conn = (rss_idle.saturating_sub(rss0)) as f64 * 1024.0 / o.conns as f64;
    let base = format!(
        "\"label\":\"{}\",\"conns\":{},\"deflate_agreed\":{agreed},\"load\":\"{}\"",
        o.label,
        o.conns,
        load_average()
    );
    if o.idle_only {
        println!(
            "{{{base},\"kind\":\"idle\",\"rss_before_kib\":{rss0},\"rss_idle_kib\":{rss_idle},\
             \"idle_bytes_per_conn\":{idle_per_conn:.0}}}"
        );
        return Ok(());
    }
    let p = Rc::new(Progress {
        target: 0.into(),
        left: 0.into(),
        done: tokio::sync::Notify::new(),
        compressed: 0.into(),
        failed: 0.into(),
    });
    for s in streams {
        tokio::task::spawn_local(reader(s, p.clone()));
    }
    let (mut rates, mut costs, mut client_costs) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..o.rounds {
        p.target.set(((round + 1) * o.msgs) as u64);
        p.left.set(o.conns);
        let cpu0 = cpu_secs(o.pid);
        let own0 = cpu_secs(std::process::id());
        let t0 = Instant::now();
        control(ctl, &format!("send {} {}", o.msgs, o.size))
            .await
            .map_err(|e| e.to_string())?;
        let finished = tokio::time::timeout(Duration::from_secs(120), p.done.notified()).await;
        let secs = t0.elapsed().as_secs_f64();
        let cpu = cpu_secs(o.pid) - cpu0;
        let own = cpu_secs(std::process::id()) - own0;
        if finished.is_err() {
            return Err(format!(
                "round {round}: {} connections still missing messages after 120 s ({} failed)",
                p.left.get(),
                p.failed.get()
            ));
        }
        let deliveries = (o.conns * o.msgs) as f64;
        let rate = deliveries / secs;
        let us = cpu * 1e6 / deliveries;
        let client_us = own * 1e6 / deliveries;
        rates.push(rate);
        costs.push(us);
        client_costs.push(client_us);
        println!(
            "{{{base},\"kind\":\"round\",\"round\":{round},\"msgs\":{},\"size\":{},\"secs\":{secs:.4},\
             \"deliveries_per_s\":{rate:.0},\"server_cpu_s\":{cpu:.4},\"server_us_per_delivery\":{us:.3},\
             \"client_us_per_delivery\":{client_us:.3},\"compressed_frames\":{}}}",
            o.msgs,
            o.size,
            p.compressed.get()
        );
    }
    let rss_after = rss_kib(o.pid);
    let after_per_conn = (rss_after.saturating_sub(rss0)) as f64 * 1024.0 / o.conns as f64;
    println!(
        "{{{base},\"kind\":\"summary\",\"msgs\":{},\"size\":{},\"rounds\":{},\
         \"deliveries_per_s\":{:.0},\"server_us_per_delivery\":{:.3},\
         \"client_us_per_delivery\":{:.3},\"idle_bytes_per_conn\":{idle_per_conn:.0},\"after_bytes_per_conn\":{after_per_conn:.0},\
         \"compressed_frames\":{}}}",
        o.msgs,
        o.size,
        o.rounds,
        median(rates),
        median(costs),
        median(client_costs),
        p.compressed.get()
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bcast-load: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let local = tokio::task::LocalSet::new();
    match local.block_on(&rt, run(o)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bcast-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
