//! The broadcast benchmark's server: one process, one library, every connection subscribed
//! to one fan-out channel.
//!
//! ```text
//! bcast-server LIB PORT [--threads N] [--deflate] [--no-takeover] [--window BITS]
//! ```
//!
//! `LIB` is one of
//! - `wscope`: each message is a `wscope::PreparedMessage`, encoded (and, with
//!   `--deflate --no-takeover`, compressed) once and published to a `wscope::tokio::Broadcast`
//!   group that every connection joined: each connection's task runs
//!   `WebSocketStream::next_with` (reads, and writes what the group published);
//! - `wscope-chan`: the same prepared messages through the channel below, as the anchors get
//!   theirs (the pattern of `wscope` before the group existed);
//! - `wscope-bytes`: each message is a `Message::Binary(Bytes)` encoded per connection (the
//!   payload is shared, the frame is built N times), to show what encoding once saves;
//! - `axum`: axum 0.8's own `ws` (tokio-tungstenite), `Message::Binary(Bytes)` per connection;
//! - `fastwebsockets`: fastwebsockets 0.10 over hyper's upgrade, one `write_frame` per message
//!   (it has no feed/flush batching);
//! - `raw`: the floor under the channel pattern, no WebSocket library after the handshake:
//!   wscope's handshake, then the same task and channel as `wscope-chan`, each batch's
//!   frames (encoded once, in the control task) copied into one buffer and written with
//!   one `write` (`try_write` until done); reads are drained and ignored.
//!
//! WebSocket connections on `PORT` (path `/`); every connection is also read (pings, the
//! close), as a real server's are.
//! A control port at `PORT + 1` takes lines: `conns` (answers `ok N`, the connections
//! subscribed now) and `send K SIZE` (broadcasts K binary messages of SIZE compressible
//! bytes to every subscribed connection, answers `ok N`). Each connection's task takes one
//! message from the channel, everything else already waiting, queues them all and writes
//! once (feed + flush), where the library allows it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

/// One broadcast message in the form each library sends.
#[derive(Clone)]
struct Item {
    /// The payload (`wscope-bytes`, `axum`, `fastwebsockets`).
    raw: Bytes,
    /// Encoded once (`wscope`, `wscope-chan`).
    prepared: Option<wscope::PreparedMessage>,
    /// The whole server frame, encoded once (`raw`).
    frame: Bytes,
}

/// Messages a slow connection may fall behind before it loses some (reported on stderr).
const CHANNEL: usize = 8192;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lib {
    Wscope,
    WscopeChan,
    WscopeBytes,
    Raw,
    Axum,
    Fastwebsockets,
}

struct Opts {
    lib: Lib,
    port: u16,
    threads: usize,
    deflate: bool,
    no_takeover: bool,
    window: u8,
}

fn parse_args() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let lib = match args.next().as_deref() {
        Some("wscope") => Lib::Wscope,
        Some("wscope-chan") => Lib::WscopeChan,
        Some("wscope-bytes") => Lib::WscopeBytes,
        Some("raw") => Lib::Raw,
        Some("axum") => Lib::Axum,
        Some("fastwebsockets") => Lib::Fastwebsockets,
        other => return Err(format!("unknown library {other:?}")),
    };
    let port = args
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or("PORT must be a number")?;
    let mut o = Opts {
        lib,
        port,
        threads: 1,
        deflate: false,
        no_takeover: false,
        window: 15,
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => {
                o.threads = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--threads N")?
            }
            "--deflate" => o.deflate = true,
            "--no-takeover" => o.no_takeover = true,
            "--window" => {
                o.window = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--window BITS")?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.deflate && !matches!(o.lib, Lib::Wscope | Lib::WscopeChan | Lib::WscopeBytes) {
        return Err("only wscope has permessage-deflate here".into());
    }
    Ok(o)
}

/// Connections subscribed now.
static CONNS: AtomicUsize = AtomicUsize::new(0);

/// A compressible payload of `size` bytes (words and numbers, like a JSON feed).
fn payload(i: usize, size: usize) -> Bytes {
    let mut v = Vec::with_capacity(size + 64);
    let mut n = 0;
    while v.len() < size {
        v.extend_from_slice(format!("{{\"seq\":{i},\"item\":{n},\"name\":\"tick\"}},").as_bytes());
        n += 1;
    }
    v.truncate(size);
    Bytes::from(v)
}

/// An unmasked server frame: binary, FIN, `payload` (RFC 6455 section 5.2).
fn frame(payload: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(payload.len() + 10);
    v.push(0x82);
    match payload.len() {
        n @ 0..=125 => v.push(n as u8),
        n @ 126..=0xffff => {
            v.push(0x7e);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            v.push(0x7f);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    v.extend_from_slice(payload);
    Bytes::from(v)
}

async fn control(
    listener: TcpListener,
    tx: broadcast::Sender<Item>,
    group: wscope::tokio::Broadcast,
    lib: Lib,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let tx = tx.clone();
        let group = group.clone();
        tokio::spawn(async move {
            let (rd, mut wr) = tcp.into_split();
            let mut lines = BufReader::new(rd).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let words: Vec<&str> = line.split_whitespace().collect();
                if let ["send", k, size] = words[..] {
                    let (Ok(k), Ok(size)) = (k.parse::<usize>(), size.parse::<usize>()) else {
                        let _ = wr.write_all(b"error\n").await;
                        continue;
                    };
                    for i in 0..k {
                        let raw = payload(i, size);
                        if lib == Lib::Wscope {
                            group.publish(&wscope::PreparedMessage::binary(raw));
                            continue;
                        }
                        let prepared = (lib == Lib::WscopeChan)
                            .then(|| wscope::PreparedMessage::binary(raw.clone()));
                        let frame = if lib == Lib::Raw { frame(&raw) } else { Bytes::new() };
                        let _ = tx.send(Item {
                            raw,
                            prepared,
                            frame,
                        });
                    }
                }
                let reply = format!("ok {}\n", CONNS.load(Ordering::Relaxed));
                if wr.write_all(reply.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Takes the next message and everything already waiting behind it (up to `max`).
async fn next_batch(rx: &mut broadcast::Receiver<Item>, max: usize) -> Option<Vec<Item>> {
    let first = loop {
        match rx.recv().await {
            Ok(m) => break m,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                eprintln!("bcast-server: a connection lost {n} messages (lagged)");
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    };
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(m) => batch.push(m),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Messages queued before one write.
const BATCH: usize = 64;

async fn wscope_conn(
    tcp: TcpStream,
    cfg: Arc<wscope::ServerConfig>,
    mut rx: broadcast::Receiver<Item>,
    prepared: bool,
) -> wscope::Result<()> {
    let _ = tcp.set_nodelay(true);
    let mut ws = wscope::tokio::accept_with_config(tcp, &cfg).await?;
    CONNS.fetch_add(1, Ordering::Relaxed);
    loop {
        // Reading too, as a real server does (pings, the close): both are cancel-safe.
        let batch = tokio::select! {
            got = ws.next() => match got {
                Some(Ok(_)) => continue,
                _ => return Ok(()),
            },
            batch = next_batch(&mut rx, BATCH) => batch,
        };
        let Some(batch) = batch else {
            return Ok(());
        };
        for item in batch {
            match (&item.prepared, prepared) {
                (Some(p), true) => {
                    if ws.is_write_full() {
                        ws.flush_writes().await?;
                    }
                    ws.feed_prepared(p)?;
                }
                _ => ws.feed(wscope::Message::Binary(item.raw)).await?,
            }
        }
        ws.flush_writes().await?;
    }
}

/// `wscope`: the connection joins the group and `next_with` reads it and writes what the
/// group publishes.
async fn wscope_group_conn(
    tcp: TcpStream,
    cfg: Arc<wscope::ServerConfig>,
    group: wscope::tokio::Broadcast,
) -> wscope::Result<()> {
    let _ = tcp.set_nodelay(true);
    let mut ws = wscope::tokio::accept_with_config(tcp, &cfg).await?;
    let mut member = group.join();
    CONNS.fetch_add(1, Ordering::Relaxed);
    while let Some(got) = ws.next_with(&mut member).await {
        match got {
            Ok(_) => {}
            Err(wscope::Error::Lagged { missed }) => {
                eprintln!("bcast-server: a connection lost {missed} messages (lagged)");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `raw`: wscope's handshake, then the channel pattern writing the encoded frames straight
/// into the socket: what the channel, the tasks and the kernel cost without a library.
async fn raw_conn(
    tcp: TcpStream,
    cfg: Arc<wscope::ServerConfig>,
    mut rx: broadcast::Receiver<Item>,
) -> wscope::Result<()> {
    let _ = tcp.set_nodelay(true);
    let ws = wscope::tokio::accept_with_config(tcp, &cfg).await?;
    CONNS.fetch_add(1, Ordering::Relaxed);
    let tcp = ws.get_ref();
    let mut out = Vec::with_capacity(BATCH * 1100);
    let mut scratch = vec![0u8; 4096];
    loop {
        let batch = tokio::select! {
            r = tcp.readable() => {
                if r.is_err() {
                    return Ok(());
                }
                match tcp.try_read(&mut scratch) {
                    Ok(0) => return Ok(()),
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            batch = next_batch(&mut rx, BATCH) => batch,
        };
        let Some(batch) = batch else {
            return Ok(());
        };
        out.clear();
        for item in &batch {
            out.extend_from_slice(&item.frame);
        }
        let mut left = &out[..];
        while !left.is_empty() {
            match tcp.try_write(left) {
                Ok(n) => left = &left[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => tcp.writable().await?,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

async fn axum_conn(mut ws: axum::extract::ws::WebSocket, mut rx: broadcast::Receiver<Item>) {
    CONNS.fetch_add(1, Ordering::Relaxed);
    loop {
        let batch = tokio::select! {
            got = ws.recv() => match got {
                Some(Ok(_)) => continue,
                _ => return,
            },
            batch = next_batch(&mut rx, BATCH) => batch,
        };
        let Some(batch) = batch else {
            return;
        };
        for item in batch {
            if ws
                .feed(axum::extract::ws::Message::Binary(item.raw))
                .await
                .is_err()
            {
                return;
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
    }
}

async fn fastws_conn(
    fut: fastwebsockets::upgrade::UpgradeFut,
    mut rx: broadcast::Receiver<Item>,
) -> Result<(), fastwebsockets::WebSocketError> {
    let ws = fut.await?;
    CONNS.fetch_add(1, Ordering::Relaxed);
    // Its reads are not cancel-safe: a reader task on the read half, as its docs do.
    let (mut rd, mut wr) = ws.split(tokio::io::split);
    tokio::spawn(async move {
        let mut ignore = |_| async { Ok::<_, fastwebsockets::WebSocketError>(()) };
        while let Ok(frame) = rd.read_frame(&mut ignore).await {
            if frame.opcode == fastwebsockets::OpCode::Close {
                break;
            }
        }
    });
    while let Some(batch) = next_batch(&mut rx, BATCH).await {
        for item in batch {
            let frame = fastwebsockets::Frame::binary(fastwebsockets::Payload::Borrowed(&item.raw));
            wr.write_frame(frame).await?;
        }
    }
    Ok(())
}

fn server_config(o: &Opts) -> wscope::ServerConfig {
    let mut cfg = wscope::ServerConfig::default();
    if o.deflate {
        cfg = cfg.deflate(
            wscope::DeflateConfig::default()
                .server_no_context_takeover(o.no_takeover)
                .server_max_window_bits(o.window),
        );
    }
    cfg
}

async fn serve(o: Opts) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", o.port)).await?;
    let ctl = TcpListener::bind(("127.0.0.1", o.port + 1)).await?;
    let (tx, _) = broadcast::channel::<Item>(CHANNEL);
    let group = wscope::tokio::Broadcast::new(CHANNEL);
    tokio::spawn(control(ctl, tx.clone(), group.clone(), o.lib));
    eprintln!("bcast-server ready on 127.0.0.1:{}", o.port);
    match o.lib {
        Lib::Wscope => {
            let cfg = Arc::new(server_config(&o));
            loop {
                let (tcp, _) = listener.accept().await?;
                let cfg = cfg.clone();
                let group = group.clone();
                tokio::spawn(async move {
                    let _ = wscope_group_conn(tcp, cfg, group).await;
                });
            }
        }
        Lib::WscopeChan | Lib::WscopeBytes | Lib::Raw => {
            let cfg = Arc::new(server_config(&o));
            let (prepared, raw) = (o.lib == Lib::WscopeChan, o.lib == Lib::Raw);
            loop {
                let (tcp, _) = listener.accept().await?;
                let rx = tx.subscribe();
                let cfg = cfg.clone();
                tokio::spawn(async move {
                    let _ = if raw {
                        raw_conn(tcp, cfg, rx).await
                    } else {
                        wscope_conn(tcp, cfg, rx, prepared).await
                    };
                });
            }
        }
        Lib::Axum => {
            use axum::extract::ws::WebSocketUpgrade;
            let app = axum::Router::new().route(
                "/",
                axum::routing::get(move |ws: WebSocketUpgrade| {
                    let rx = tx.subscribe();
                    async move { ws.on_upgrade(move |socket| axum_conn(socket, rx)) }
                }),
            );
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app).await
        }
        Lib::Fastwebsockets => loop {
            let (tcp, _) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            let tx = tx.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |mut req: hyper::Request<hyper::body::Incoming>| {
                        let rx = tx.subscribe();
                        async move {
                            let (resp, fut) = fastwebsockets::upgrade::upgrade(&mut req)?;
                            tokio::spawn(async move {
                                let _ = fastws_conn(fut, rx).await;
                            });
                            Ok::<_, fastwebsockets::WebSocketError>(resp)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        },
    }
}

fn main() -> std::process::ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bcast-server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.threads.max(1))
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(serve(o)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bcast-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
