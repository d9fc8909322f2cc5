//! The tokio server of `wscope serve`: the accept loop with its connection limits, one task per
//! connection (echo, or the stdin/stdout pipe), and the shutdown on SIGINT/SIGTERM.
//!
//! - **Limits.** A connection over `--max-connections` or `--max-connections-per-ip`
//!   ([`ConnectionLimits`]) is refused at once, before its request is read: a plain-text
//!   `503 Service Unavailable` (on a TLS port the connection is just closed, a TLS client
//!   could not read it), and a line on stderr. Connections still in their handshake count.
//! - **Pipe mode** (no `--echo`). Each line of stdin goes to every connected client, as a text
//!   message (a binary one when it is not UTF-8); stdin is read only while at least one client
//!   is connected, so lines typed before the first client wait for it. Every data message
//!   received, from any client, is written to stdout followed by a newline.
//! - **HTTP/2** (`--http2`). The same port serves WebSocket over HTTP/2 (RFC 8441): on TLS
//!   the client's ALPN choice decides, in cleartext the client preface; every WebSocket
//!   stream of an HTTP/2 connection is a client of its own (echo or pipe), while the limits
//!   count TCP connections. On shutdown the connection sends GOAWAY and its streams close
//!   with 1001 like any client.
//! - **Shutdown.** SIGINT or SIGTERM stops accepting, sends every client a close with 1001
//!   (going away), waits up to [`CLOSE_GRACE`] for the connections to end (the clients' close
//!   replies), and returns.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::Write as _;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, watch, Notify, Semaphore};
use wscope::config::ServerConfig;
use wscope::limits::{ConnectionLimits, LimitExceeded, Permit};
use wscope::proto::handshake::UpgradeError as CoreError;
use wscope::stream::Tcp;
use wscope::tokio::{accept_tls, DataKind, WebSocketStream};
use wscope::{CloseCode, HandshakeError};

use super::{Mode, ServeError};

/// How long the shutdown waits for the clients' close replies.
pub(super) const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Connections being refused (503) at once; more over-limit connections are closed without
/// an answer.
const MAX_REFUSALS: usize = 64;
/// Lines of stdin held for a client that is slow to take them; one that falls further
/// behind loses the oldest (and a line on stderr says how many).
const LINE_BACKLOG: usize = 1024;

/// How the server runs, from the command line.
#[derive(Clone, Copy, Debug)]
pub(super) struct Options {
    /// Echo or pipe.
    pub(super) mode: Mode,
    /// A line per connection error.
    pub(super) verbose: bool,
    /// Serve HTTP/2 (RFC 8441) too, on the same port.
    pub(super) http2: bool,
}

/// Runs the server on `addr` until SIGINT or SIGTERM.
pub(super) async fn serve(
    addr: SocketAddr,
    mut cfg: ServerConfig,
    opts: Options,
    limits: ConnectionLimits,
) -> Result<(), ServeError> {
    let Options {
        mode,
        verbose,
        http2,
    } = opts;
    if http2 {
        // One TLS port for both versions: the client's ALPN choice decides.
        cfg.tls = cfg.tls.as_ref().map(wscope::h2::server_tls_with_alpn);
    }
    // Signal handlers first: a signal right after the address is announced is not lost.
    let mut stop = Stop::new().map_err(ServeError::Signal)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServeError::Listen { addr, source })?;
    let scheme = if cfg.tls.is_some() { "wss" } else { "ws" };
    let what = match mode {
        Mode::Echo => "echo",
        Mode::Pipe => "stdin/stdout",
    };
    // The URL stays the line's last word (scripts and tests read it there).
    let versions = if http2 { " (HTTP/1.1 and HTTP/2)" } else { "" };
    eprintln!("wscope serve: {what}{versions} on {scheme}://{local}");
    let (shutdown_tx, shutdown) = watch::channel(false);
    let (lines, _) = broadcast::channel(LINE_BACKLOG);
    let (open_tx, open) = watch::channel(0usize);
    let shared = Arc::new(Shared {
        cfg,
        mode,
        verbose,
        http2,
        limits,
        all_gone: Notify::new(),
        shutdown,
        lines,
        open: open_tx,
    });
    if mode == Mode::Pipe {
        tokio::spawn(read_stdin(shared.clone(), open));
    }
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let signal = loop {
        let (tcp, peer) = tokio::select! {
            signal = stop.recv() => break signal,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    if verbose {
                        eprintln!("wscope serve: accept: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        match shared.limits.acquire(peer.ip()) {
            Ok(permit) => {
                let slot = Slot {
                    shared: shared.clone(),
                    permit: Some(permit),
                };
                tokio::spawn(connection(tcp, peer, shared.clone(), slot));
            }
            Err(over) => {
                eprintln!("wscope serve: {peer}: {}", over_limit(over));
                // At most so many refusals at once: past that (a flood), closed at once.
                if let Ok(turn) = refusals.clone().try_acquire_owned() {
                    let tls = shared.cfg.tls.is_some();
                    tokio::spawn(async move {
                        refuse_busy(tcp, tls, over).await;
                        drop(turn);
                    });
                }
            }
        }
    };
    drop(listener);
    // Registered for the wake-up before counting: the last connection's cannot be missed.
    let gone = shared.all_gone.notified();
    let n = shared.limits.count();
    eprintln!("wscope serve: {signal}: closing {n} connection(s) with 1001 (going away)");
    let _ = shutdown_tx.send(true);
    if n > 0 && tokio::time::timeout(CLOSE_GRACE, gone).await.is_err() {
        eprintln!(
            "wscope serve: {} connection(s) did not finish closing in {} s",
            shared.limits.count(),
            CLOSE_GRACE.as_secs()
        );
    }
    Ok(())
}

/// What every connection task shares.
struct Shared {
    cfg: ServerConfig,
    mode: Mode,
    verbose: bool,
    /// HTTP/2 is served too (ALPN or the client preface decides).
    http2: bool,
    /// Every connection holds a permit (unlimited when no limit was asked for), so the
    /// shutdown knows how many are left.
    limits: ConnectionLimits,
    /// Notified when the last connection ends.
    all_gone: Notify,
    /// Becomes `true` on SIGINT/SIGTERM.
    shutdown: watch::Receiver<bool>,
    /// Pipe mode: stdin's lines, to every connection.
    lines: broadcast::Sender<Line>,
    /// Pipe mode: how many clients are connected (past their handshake).
    open: watch::Sender<usize>,
}

/// The log line of a TLS client on a plain port.
pub(super) const TLS_ON_PLAIN_PORT: &str = "a TLS client connected to this plain ws:// port \
    (closed at once); serve wss:// with --tls-cert and --tls-key";

/// A line of stdin, without its newline: text when it is UTF-8.
#[derive(Clone, Debug)]
struct Line {
    kind: DataKind,
    bytes: Arc<[u8]>,
}

/// The log line (and the 503 body) of a refused connection: the limit and its flag.
pub(super) fn over_limit(over: LimitExceeded) -> String {
    let flag = match over {
        LimitExceeded::PerIp { .. } => "--max-connections-per-ip",
        _ => "--max-connections",
    };
    format!("refused with 503: {over} ({flag})")
}

/// A connection's place in the counts; the last one to go wakes the shutdown.
struct Slot {
    shared: Arc<Shared>,
    permit: Option<Permit>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.permit.take());
        if self.shared.limits.count() == 0 {
            self.shared.all_gone.notify_waiters();
        }
    }
}

/// A client past its handshake, counted for the stdin reader while it lives.
struct Open<'a>(&'a watch::Sender<usize>);

impl<'a> Open<'a> {
    fn new(open: &'a watch::Sender<usize>) -> Self {
        open.send_modify(|n| *n += 1);
        Self(open)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// SIGINT and SIGTERM.
pub(super) struct Stop {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Stop {
    pub(super) fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// The next signal's name.
    pub(super) async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => "SIGINT",
                _ = self.term.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// One connection: the handshake, then echo or pipe until it ends.
async fn connection(tcp: TcpStream, peer: SocketAddr, shared: Arc<Shared>, _slot: Slot) {
    // Subscribed before the client counts as open: no line read for it is missed.
    let lines = shared.lines.subscribe();
    if let Err(e) = tcp.set_nodelay(shared.cfg.nodelay) {
        if shared.verbose {
            eprintln!("wscope serve: {peer}: TCP_NODELAY: {e}");
        }
    }
    if shared.http2 {
        http2::connection(tcp, peer, shared).await;
        return;
    }
    let ws = match accept_tls(Tcp::new(tcp), &shared.cfg).await {
        Ok(ws) => ws,
        Err(wscope::Error::Handshake(HandshakeError::Proto(CoreError::TlsClientHello))) => {
            eprintln!("wscope serve: {peer}: {TLS_ON_PLAIN_PORT}");
            return;
        }
        Err(e) => {
            if shared.verbose {
                eprintln!("wscope serve: {peer}: handshake: {e}");
            }
            return;
        }
    };
    serve_open(ws, peer, &shared, lines).await;
}

/// An open WebSocket, counted for the stdin reader, until its end (logged in pipe mode).
async fn serve_open<S: AsyncRead + AsyncWrite + Unpin>(
    ws: WebSocketStream<S>,
    peer: impl core::fmt::Display,
    shared: &Shared,
    lines: broadcast::Receiver<Line>,
) {
    let open = Open::new(&shared.open);
    if shared.mode == Mode::Pipe {
        eprintln!("wscope serve: {peer} connected");
    }
    let result = run_open(ws, shared, lines).await;
    drop(open);
    match result {
        Err(e) if shared.verbose || shared.mode == Mode::Pipe => {
            eprintln!("wscope serve: {peer}: {e}");
        }
        _ if shared.mode == Mode::Pipe => eprintln!("wscope serve: {peer} disconnected"),
        _ => {}
    }
}

/// An open connection until its end: messages are echoed or printed, stdin's lines sent
/// (pipe mode), and a shutdown closes it with 1001 (then it runs on until the client's reply
/// or the close timeout).
async fn run_open<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: WebSocketStream<S>,
    shared: &Shared,
    mut lines: broadcast::Receiver<Line>,
) -> wscope::Result<()> {
    let mut shutdown = shared.shutdown.clone();
    let pipe = shared.mode == Mode::Pipe;
    let mut closing = false;
    let mut stdin_open = pipe;
    let mut buf = Vec::new();
    loop {
        if !closing && *shutdown.borrow_and_update() {
            closing = true;
            match ws
                .close(CloseCode::GOING_AWAY, "server shutting down")
                .await
            {
                Ok(()) | Err(wscope::Error::AlreadyClosed) => {}
                Err(e) => return Err(e),
            }
        }
        tokio::select! {
            changed = shutdown.changed(), if !closing => {
                if changed.is_err() {
                    // The server is gone without a shutdown: nothing to wait for.
                    return Ok(());
                }
            }
            line = lines.recv(), if stdin_open && !closing => match line {
                Ok(line) => {
                    if ws.is_write_full() {
                        ws.flush_writes().await?;
                    }
                    match ws.feed_data(line.kind, &mut line.bytes.to_vec()) {
                        Ok(()) | Err(wscope::Error::AlreadyClosed) => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!("wscope serve: a slow client missed {n} line(s) of stdin");
                }
                Err(broadcast::error::RecvError::Closed) => stdin_open = false,
            },
            got = ws.recv_into(&mut buf) => {
                let Some(got) = got else { return Ok(()) };
                let kind = got?;
                if pipe {
                    print_message(&buf);
                    continue;
                }
                if ws.is_write_full() {
                    ws.flush_writes().await?;
                }
                match ws.feed_data(kind, &mut buf) {
                    // The peer started closing while we echoed: the stream ends by itself.
                    Ok(()) | Err(wscope::Error::AlreadyClosed) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// Writes a received message and a newline to stdout, in one piece.
fn print_message(payload: &[u8]) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (the reader went away) only loses the output.
    let _ = out
        .write_all(payload)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
}

/// Pipe mode: reads stdin a line at a time, while at least one client is connected, and hands
/// each line to every connection.
async fn read_stdin(shared: Arc<Shared>, mut open: watch::Receiver<usize>) {
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut line = Vec::new();
    loop {
        if open.wait_for(|&n| n > 0).await.is_err() {
            return;
        }
        line.clear();
        match stdin.read_until(b'\n', &mut line).await {
            Ok(0) => {
                eprintln!("wscope serve: end of stdin; still printing what clients send");
                return;
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("wscope serve: stdin: {e}");
                return;
            }
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        let kind = if core::str::from_utf8(&line).is_ok() {
            DataKind::Text
        } else {
            DataKind::Binary
        };
        // No receiver: every client left between the wait and the read; the line is lost,
        // as a line typed into a closed connection would be.
        let _ = shared.lines.send(Line {
            kind,
            bytes: Arc::from(line.as_slice()),
        });
    }
}

/// Refuses a connection over a limit: `503 Service Unavailable` on a plain port, a plain
/// close on a TLS port. Bounded: a second at most.
async fn refuse_busy(mut tcp: TcpStream, tls: bool, over: LimitExceeded) {
    if tls {
        return;
    }
    let response = over.response();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        tcp.write_all(&response).await?;
        tcp.shutdown().await?;
        // Read what the client sent (its request) so that closing does not reset the
        // connection before the client has read the 503.
        let mut sink = [0u8; 4096];
        while tcp.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// `--http2`: one TCP connection that may speak HTTP/1.1 or HTTP/2.
mod http2 {
    use core::net::SocketAddr;
    use std::sync::Arc;

    use tokio::io::{AsyncRead, AsyncWrite};
    use tokio::net::TcpStream;
    use wscope::h2::{Http2Server, HttpVersion};
    use wscope::handshake::accept_all;
    use wscope::stream::Tcp;

    use super::{serve_open, Shared};

    /// Tells the version (ALPN on TLS, the preface in cleartext) and serves the connection.
    pub(super) async fn connection(tcp: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
        let cfg = &shared.cfg;
        let log = |what: &str, e: &dyn core::fmt::Display| {
            if shared.verbose {
                eprintln!("wscope serve: {peer}: {what}: {e}");
            }
        };
        let Some(tls) = cfg.tls.clone() else {
            let sniffed =
                tokio::time::timeout(cfg.handshake_timeout, wscope::h2::sniff(Tcp::new(tcp)));
            let (version, io) = match sniffed.await {
                Ok(Ok(x)) => x,
                Ok(Err(e)) => return log("handshake", &e),
                Err(_) => return log("handshake", &"timed out"),
            };
            if version == HttpVersion::Http2 {
                return http2_streams(io, peer, shared.clone()).await;
            }
            let lines = shared.lines.subscribe();
            match wscope::tokio::accept_with(io, cfg, accept_all).await {
                Ok((ws, _)) => serve_open(ws, peer, &shared, lines).await,
                Err(e) => log("handshake", &e),
            }
            return;
        };
        let accepted = tokio::time::timeout(
            cfg.handshake_timeout,
            wscope::h2::accept_tls(Tcp::new(tcp), tls),
        );
        let (version, io) = match accepted.await {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return log("TLS", &e),
            Err(_) => return log("TLS", &"timed out"),
        };
        if version == HttpVersion::Http2 {
            return http2_streams(io, peer, shared.clone()).await;
        }
        let lines = shared.lines.subscribe();
        let upgraded = tokio::time::timeout(
            cfg.handshake_timeout,
            wscope::tokio::server_handshake(io, cfg, accept_all),
        );
        match upgraded.await {
            Ok(Ok((ws, _))) => serve_open(ws, peer, &shared, lines).await,
            Ok(Err(e)) => log("handshake", &e),
            Err(_) => log("handshake", &"timed out"),
        }
    }

    /// An HTTP/2 connection: every accepted WebSocket stream runs in a task of its own,
    /// while this one drives the connection's I/O; a shutdown sends GOAWAY.
    async fn http2_streams<S>(io: S, peer: SocketAddr, shared: Arc<Shared>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut conn = match Http2Server::handshake(io, &shared.cfg).await {
            Ok(conn) => conn,
            Err(e) => {
                if shared.verbose {
                    eprintln!("wscope serve: {peer}: HTTP/2 handshake: {e}");
                }
                return;
            }
        };
        let mut shutdown = shared.shutdown.clone();
        let mut going_away = false;
        loop {
            let accepted = tokio::select! {
                changed = shutdown.changed(), if !going_away => {
                    going_away = true;
                    if changed.is_ok() {
                        conn.graceful_shutdown();
                    }
                    continue;
                }
                accepted = conn.accept() => accepted,
            };
            match accepted {
                None => return,
                Some(Ok((ws, _))) => {
                    let id = ws.get_ref().stream_id();
                    let shared = shared.clone();
                    // Subscribed before the stream counts as open (see `connection`).
                    let lines = shared.lines.subscribe();
                    tokio::spawn(async move {
                        let who = format!("{peer} stream {id}");
                        serve_open(ws, who, &shared, lines).await;
                    });
                }
                Some(Err(e)) => {
                    if shared.verbose {
                        eprintln!("wscope serve: {peer}: HTTP/2: {e}");
                    }
                }
            }
        }
    }
}
