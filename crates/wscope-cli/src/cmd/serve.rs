//! `wscope serve`: a WebSocket server. `--echo` echoes every message (Autobahn, benchmarks);
//! without it the server is a pipe, like websocat's `-s`: stdin's lines go to every connected
//! client, and what clients send is printed (see `tokio_server`).

use core::fmt;
use core::net::SocketAddr;
use std::process::ExitCode;

use wscope::config::ServerConfig;
use wscope::limits::ConnectionLimits;

mod tokio_server;

/// Run a WebSocket server.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Without --echo: each line of stdin goes to every connected client as a \
    text message (binary when it is not UTF-8), and each message received from any client is \
    printed to stdout on a line of its own. stdin is read only while a client is connected, \
    so lines typed earlier wait for the first client.\n\n\
    SIGINT or SIGTERM closes every client with 1001 (going away), waits up to 2 s for their \
    close replies, and exits with status 0."
)]
pub(crate) struct Args {
    /// Echo every text and binary message back with the same type (default: pipe stdin to
    /// the clients and their messages to stdout).
    #[arg(long)]
    echo: bool,
    /// Port to listen on (may also be given as the last positional argument).
    #[arg(long, short)]
    port: Option<u16>,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Certificate chain (PEM) to serve TLS (wss) with; needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Require a client certificate issued by a CA in this PEM file (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_client_ca: Option<std::path::PathBuf>,
    /// Append the TLS secrets of every connection to FILE (NSS key log format), for
    /// `wscope inspect --keylog FILE` or Wireshark. Without it, the SSLKEYLOGFILE
    /// environment variable names the file.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    keylog: Option<std::path::PathBuf>,
    /// Accept permessage-deflate (RFC 7692) offers and compress replies.
    #[arg(long)]
    compress: bool,
    /// With --compress: the largest LZ77 window, as a power of two (9-15), for both
    /// directions. 15 (32 KiB) compresses best; 12 (4 KiB, Python websockets' server default)
    /// saves 112 KiB per compressing connection. Contexts exist only while compressed messages
    /// flow: an idle connection holds none (see BENCHMARKS.md for the figures).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u8).range(9..=15))]
    deflate_window_bits: u8,
    /// With --compress: zlib memLevel (1-9) of the compressor: its literal buffers take
    /// 7 << (N + 6) bytes (14 KiB at 5, 112 KiB at 8), for slightly larger output when lower.
    #[arg(long, default_value_t = wscope::config::DEFAULT_MEM_LEVEL,
          value_parser = clap::value_parser!(u8).range(1..=9))]
    deflate_mem_level: u8,
    /// With --compress: zlib compression level, 1 (fastest) to 9 (smallest).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=9))]
    deflate_level: u32,
    /// Largest message (and frame) accepted, in bytes; 1009 beyond.
    #[arg(long, default_value_t = 64 << 20)]
    max_message: u64,
    /// Worker threads (default: one per available CPU; one CPU means a current-thread runtime).
    /// With --io-uring: that many servers, each on its own thread and SO_REUSEPORT listener.
    #[arg(long)]
    threads: Option<usize>,
    /// Serve on the io_uring driver instead of tokio (Linux only; --echo only). Its tuning
    /// flags for measurements (--uring-entries, --uring-no-*) are left out of this help.
    #[arg(long)]
    io_uring: bool,
    /// With --io-uring (tuning for measurements): submission-queue entries.
    #[arg(long, default_value_t = URING_ENTRIES, requires = "io_uring", hide = true)]
    uring_entries: u32,
    /// With --io-uring (tuning for measurements): try each receive at once instead of
    /// waiting for readiness first (IORING_RECVSEND_POLL_FIRST off).
    #[arg(long, requires = "io_uring", hide = true)]
    uring_no_poll_first: bool,
    /// With --io-uring (tuning for measurements): one-shot receives only, no multishot
    /// receives into provided buffers.
    #[arg(long, requires = "io_uring", hide = true)]
    uring_no_multishot: bool,
    /// With --io-uring (tuning for measurements): plain descriptors in every operation, no
    /// registered file table.
    #[arg(long, requires = "io_uring", hide = true)]
    uring_no_registered_files: bool,
    /// With --io-uring (tuning for measurements): a plain ring, without
    /// IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN.
    #[arg(long, requires = "io_uring", hide = true)]
    uring_no_defer_taskrun: bool,
    /// Also serve WebSocket over HTTP/2 (RFC 8441) on the same port: with TLS the client's
    /// ALPN choice (h2 or http/1.1) decides, in cleartext the HTTP/2 client preface (h2c
    /// with prior knowledge) tells HTTP/2 from an HTTP/1.1 upgrade. Not with --io-uring.
    #[arg(long, conflicts_with = "io_uring")]
    http2: bool,
    /// Port, positional (for benchmark harnesses that append it).
    #[arg(value_name = "PORT")]
    port_pos: Option<u16>,
    #[command(flatten)]
    keepalive: super::KeepaliveArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Print one line per connection error to stderr.
    #[arg(long, short)]
    verbose: bool,
}

/// How long connections may stay and how many the server takes.
#[derive(clap::Args, Debug, Clone, Copy)]
struct LimitArgs {
    /// Close a connection with 1001 when nothing arrives from it for this many seconds
    /// (fractions allowed; pings and pongs count as something).
    #[arg(long, value_name = "SECS", value_parser = super::positive_secs)]
    idle_timeout: Option<f64>,
    /// Serve at most N connections at once; one more is answered `503 Service Unavailable`
    /// and closed at once (on a TLS port: closed), with a line on stderr.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,
    /// Serve at most N connections at once from one IP address; one more is refused as with
    /// --max-connections.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections_per_ip: Option<u32>,
}

/// What the server does with messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Echo each message to its sender.
    Echo,
    /// stdin's lines to every client, received messages to stdout.
    Pipe,
}

/// Why the server cannot run.
#[derive(Debug)]
enum ServeError {
    /// The address cannot be listened on (in use, not ours, no permission).
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The signal handlers cannot be installed.
    Signal(std::io::Error),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Listen { addr, source } => {
                write!(f, "cannot listen on {addr}: {source}")?;
                if source.kind() == std::io::ErrorKind::AddrInUse {
                    write!(f, " (another server runs there: pick another --port)")?;
                }
                Ok(())
            }
            Self::Signal(e) => write!(f, "cannot install the SIGINT/SIGTERM handlers: {e}"),
        }
    }
}

pub(crate) fn run(args: Args) -> ExitCode {
    let mode = if args.echo { Mode::Echo } else { Mode::Pipe };
    let port = args.port.or(args.port_pos).unwrap_or(9001);
    let mut cfg = ServerConfig::default();
    cfg.ws.max_message_len = args.max_message;
    cfg.ws.max_frame_len = args.max_message;
    cfg.ws.keepalive = args.keepalive.keepalive();
    cfg.idle_timeout = args
        .limits
        .idle_timeout
        .map(core::time::Duration::from_secs_f64);
    if args.compress {
        cfg.deflate = Some(
            wscope::config::DeflateConfig::default()
                .server_max_window_bits(args.deflate_window_bits)
                .client_max_window_bits(args.deflate_window_bits),
        );
        cfg.deflate_options.level = args.deflate_level;
        cfg.deflate_options.mem_level = args.deflate_mem_level;
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let tls = match &args.tls_client_ca {
            None => wscope::tls::server_config_from_files(cert, key),
            Some(ca) => wscope::tls::server_config_with_client_auth_files(cert, key, ca),
        };
        let log = match &args.keylog {
            Some(path) => wscope::tls::KeyLogWriter::create(path)
                .map(|w| Some(std::sync::Arc::new(w) as std::sync::Arc<dyn wscope::tls::KeyLog>)),
            None => Ok(wscope::tls::env_key_log()),
        };
        let tls = tls.and_then(|t| {
            Ok(match log? {
                Some(log) => wscope::tls::server_config_with_key_log(&t, log),
                None => t,
            })
        });
        match tls {
            Ok(tls) => cfg.tls = Some(tls),
            Err(e) => {
                eprintln!("wscope serve: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let addr: SocketAddr = match format!("{}:{port}", args.host).parse() {
        Ok(a) => a,
        Err(_) => match format!("[{}]:{port}", args.host).parse() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("wscope serve: bad address {}: {e}", args.host);
                return ExitCode::from(2);
            }
        },
    };
    let limits = ConnectionLimits::new(
        args.limits.max_connections.map(|n| n as usize),
        args.limits.max_connections_per_ip.map(|n| n as usize),
    );
    if args.io_uring {
        if mode == Mode::Pipe {
            eprintln!("wscope serve: --io-uring serves --echo only");
            return ExitCode::from(2);
        }
        let tuning = uring::Tuning {
            entries: args.uring_entries,
            poll_first: !args.uring_no_poll_first,
            multishot: !args.uring_no_multishot,
            register_files: !args.uring_no_registered_files,
            defer_taskrun: !args.uring_no_defer_taskrun,
        };
        let threads = args.threads.unwrap_or_else(super::available_cpus);
        return uring::run(addr, cfg, tuning, limits, threads, args.verbose);
    }
    let rt = match super::runtime(args.threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wscope serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = tokio_server::Options {
        mode,
        verbose: args.verbose,
        http2: args.http2,
    };
    let result = rt.block_on(tokio_server::serve(addr, cfg, opts, limits));
    // A read of stdin (pipe mode) may still be blocked in tokio's blocking pool: do not wait
    // for it.
    rt.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wscope serve: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The io_uring driver's default ring size.
#[cfg(target_os = "linux")]
const URING_ENTRIES: u32 = wscope::uring::DEFAULT_RING_ENTRIES;
#[cfg(not(target_os = "linux"))]
const URING_ENTRIES: u32 = 1024;

/// `--io-uring`: the echo on `wscope::uring`.
#[cfg(target_os = "linux")]
mod uring {
    use core::net::SocketAddr;
    use std::process::ExitCode;

    use wscope::config::ServerConfig;
    use wscope::limits::ConnectionLimits;
    use wscope::uring::{Conn, ConnId, Echo, Service, UringServer};
    use wscope::DataKind;

    /// [`Echo`], printing why connections ended with `--verbose`.
    struct EchoService {
        verbose: bool,
    }

    impl Service for EchoService {
        fn on_message(
            &mut self,
            conn: &mut Conn<'_>,
            kind: DataKind,
            payload: &mut Vec<u8>,
        ) -> wscope::Result<()> {
            Echo.on_message(conn, kind, payload)
        }

        fn on_close(&mut self, id: ConnId, error: Option<wscope::Error>) {
            if let (true, Some(e)) = (self.verbose, error) {
                eprintln!("connection {}: {e}", id.as_u64());
            }
        }

        fn on_handshake_failed(&mut self, error: wscope::Error) {
            use wscope::proto::handshake::UpgradeError as Core;
            use wscope::HandshakeError;
            match error {
                wscope::Error::Handshake(HandshakeError::OverLimit(over)) => {
                    eprintln!("wscope serve: {}", super::tokio_server::over_limit(over));
                }
                wscope::Error::Handshake(HandshakeError::Proto(Core::TlsClientHello)) => {
                    eprintln!("wscope serve: {}", super::tokio_server::TLS_ON_PLAIN_PORT);
                }
                e if self.verbose => eprintln!("handshake: {e}"),
                _ => {}
            }
        }
    }

    /// Ring settings from the command line.
    pub(super) struct Tuning {
        pub(super) entries: u32,
        pub(super) poll_first: bool,
        pub(super) multishot: bool,
        pub(super) register_files: bool,
        pub(super) defer_taskrun: bool,
    }

    pub(super) fn run(
        addr: SocketAddr,
        cfg: ServerConfig,
        t: Tuning,
        limits: ConnectionLimits,
        threads: usize,
        verbose: bool,
    ) -> ExitCode {
        match start(addr, &cfg, &t, &limits, threads.max(1), verbose) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wscope serve: {e}");
                ExitCode::FAILURE
            }
        }
    }

    /// Binds `threads` servers (one plain listener, or that many `SO_REUSEPORT` listeners on
    /// one port), announces the address, runs them, and returns when the first one stops.
    fn start(
        addr: SocketAddr,
        cfg: &ServerConfig,
        t: &Tuning,
        limits: &ConnectionLimits,
        threads: usize,
        verbose: bool,
    ) -> std::io::Result<()> {
        let tune = |s: UringServer| {
            s.ring_entries(t.entries)
                .recv_poll_first(t.poll_first)
                .recv_multishot(t.multishot)
                .register_files(t.register_files)
                .defer_taskrun(t.defer_taskrun)
                .connection_limits(limits.clone())
        };
        let named = |source: std::io::Error| {
            std::io::Error::new(
                source.kind(),
                super::ServeError::Listen { addr, source }.to_string(),
            )
        };
        let first = if threads == 1 {
            UringServer::bind(addr, cfg.clone()).map_err(named)?
        } else {
            UringServer::bind_reuseport(addr, cfg.clone()).map_err(named)?
        };
        // Port 0 was resolved by the first bind: the others join that port.
        let local = first.local_addr()?;
        let mut servers = vec![tune(first)];
        for _ in 1..threads {
            servers.push(tune(UringServer::bind_reuseport(local, cfg.clone())?));
        }
        // Refuse a kernel without io_uring before announcing an address that would not work.
        wscope::uring::supported()?;
        let how = match threads {
            1 => "io_uring".to_owned(),
            n => format!("io_uring, {n} threads"),
        };
        let scheme = if cfg.tls.is_some() { "wss" } else { "ws" };
        eprintln!("wscope serve: echo ({how}) on {scheme}://{local}");
        // Signal handlers before the servers run: a signal right after the announcement is
        // not lost. They wait on a thread of their own, with a small runtime.
        let signals = super::super::runtime(Some(1))?;
        let mut stop = signals
            .block_on(async { super::tokio_server::Stop::new() })
            .map_err(|e| std::io::Error::other(super::ServeError::Signal(e).to_string()))?;
        let (done, ended) = std::sync::mpsc::channel();
        let mut handles = Vec::new();
        for mut server in servers {
            handles.push(server.stop_handle()?);
            let done = done.clone();
            std::thread::Builder::new()
                .name("wscope-uring".into())
                .spawn(move || {
                    let run = core::panic::AssertUnwindSafe(|| server.run(EchoService { verbose }));
                    let result = std::panic::catch_unwind(run)
                        .unwrap_or_else(|_| Err(std::io::Error::other("a server thread panicked")));
                    let _ = done.send(Ended::Server(result));
                })?;
        }
        let signalled = done.clone();
        std::thread::Builder::new()
            .name("wscope-signals".into())
            .spawn(move || {
                let name = signals.block_on(stop.recv());
                let _ = signalled.send(Ended::Signal(name));
            })?;
        drop(done);
        let gone = || std::io::Error::other("every server thread is gone");
        match ended.recv().map_err(|_| gone())? {
            // A server only ends by itself on an error or a panic: that ends the command.
            Ended::Server(result) => result,
            Ended::Signal(name) => {
                eprintln!("wscope serve: {name}: closing every connection with 1001 (going away)");
                for h in &handles {
                    // A server that is gone already has nothing to close.
                    let _ = h.going_away(super::tokio_server::CLOSE_GRACE);
                }
                // Each server returns once its connections have ended, or after the grace.
                for _ in 0..threads {
                    match ended.recv().map_err(|_| gone())? {
                        Ended::Server(Ok(())) | Ended::Signal(_) => {}
                        Ended::Server(Err(e)) => return Err(e),
                    }
                }
                Ok(())
            }
        }
    }

    /// What ends the command: a server thread, or a signal.
    enum Ended {
        Server(std::io::Result<()>),
        Signal(&'static str),
    }
}

/// `--io-uring` elsewhere: refused.
#[cfg(not(target_os = "linux"))]
mod uring {
    use core::net::SocketAddr;
    use std::process::ExitCode;

    use wscope::config::ServerConfig;

    /// Ring settings from the command line (unused here).
    pub(super) struct Tuning {
        pub(super) entries: u32,
        pub(super) poll_first: bool,
        pub(super) multishot: bool,
        pub(super) register_files: bool,
        pub(super) defer_taskrun: bool,
    }

    pub(super) fn run(
        _: SocketAddr,
        _: ServerConfig,
        _: Tuning,
        _: wscope::limits::ConnectionLimits,
        _: usize,
        _: bool,
    ) -> ExitCode {
        eprintln!("wscope serve: --io-uring is only available on Linux");
        ExitCode::from(2)
    }
}
