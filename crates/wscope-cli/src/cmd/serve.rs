//! `wscope serve --echo`: a WebSocket echo server.

use core::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use wscope::config::ServerConfig;
use wscope::tokio::{accept_with_config, DataKind};

/// Run a WebSocket server.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Echo every text and binary message back with the same type.
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
    /// Serve on the io_uring driver instead of tokio (Linux only).
    #[arg(long)]
    io_uring: bool,
    /// With --io-uring (tuning for measurements): submission-queue entries.
    #[arg(long, default_value_t = URING_ENTRIES, requires = "io_uring")]
    uring_entries: u32,
    /// With --io-uring (tuning for measurements): try each receive at once instead of
    /// waiting for readiness first (IORING_RECVSEND_POLL_FIRST off).
    #[arg(long, requires = "io_uring")]
    uring_no_poll_first: bool,
    /// With --io-uring (tuning for measurements): one-shot receives only, no multishot
    /// receives into provided buffers.
    #[arg(long, requires = "io_uring")]
    uring_no_multishot: bool,
    /// With --io-uring (tuning for measurements): plain descriptors in every operation, no
    /// registered file table.
    #[arg(long, requires = "io_uring")]
    uring_no_registered_files: bool,
    /// With --io-uring (tuning for measurements): a plain ring, without
    /// IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN.
    #[arg(long, requires = "io_uring")]
    uring_no_defer_taskrun: bool,
    /// Port, positional (for benchmark harnesses that append it).
    #[arg(value_name = "PORT")]
    port_pos: Option<u16>,
    #[command(flatten)]
    keepalive: super::KeepaliveArgs,
    /// Print one line per connection error to stderr.
    #[arg(long, short)]
    verbose: bool,
}

pub(crate) fn run(args: Args) -> ExitCode {
    if !args.echo {
        eprintln!("wscope serve: only --echo is implemented; pass --echo");
        return ExitCode::from(2);
    }
    let port = args.port.or(args.port_pos).unwrap_or(9001);
    let mut cfg = ServerConfig::default();
    cfg.ws.max_message_len = args.max_message;
    cfg.ws.max_frame_len = args.max_message;
    cfg.ws.keepalive = args.keepalive.keepalive();
    if args.compress {
        cfg.deflate = Some(wscope::config::DeflateConfig {
            server_max_window_bits: args.deflate_window_bits,
            client_max_window_bits: args.deflate_window_bits,
            ..wscope::config::DeflateConfig::default()
        });
        cfg.deflate_options.level = args.deflate_level;
        cfg.deflate_options.mem_level = args.deflate_mem_level;
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let tls = match &args.tls_client_ca {
            None => wscope::tls::server_config_from_files(cert, key),
            Some(ca) => wscope::tls::server_config_with_client_auth_files(cert, key, ca),
        };
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
    if args.io_uring {
        let tuning = uring::Tuning {
            entries: args.uring_entries,
            poll_first: !args.uring_no_poll_first,
            multishot: !args.uring_no_multishot,
            register_files: !args.uring_no_registered_files,
            defer_taskrun: !args.uring_no_defer_taskrun,
        };
        let threads = args.threads.unwrap_or_else(super::available_cpus);
        return uring::run(addr, cfg, tuning, threads, args.verbose);
    }
    let rt = match super::runtime(args.threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wscope serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let verbose = args.verbose;
    match rt.block_on(serve(addr, Arc::new(cfg), verbose)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wscope serve: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr, cfg: Arc<ServerConfig>, verbose: bool) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let scheme = if cfg.tls.is_some() { "wss" } else { "ws" };
    eprintln!(
        "wscope serve: echo on {scheme}://{}",
        listener.local_addr()?
    );
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                if verbose {
                    eprintln!("accept: {e}");
                }
                tokio::time::sleep(core::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let cfg = cfg.clone();
        tokio::spawn(async move {
            if let Err(e) = echo(tcp, &cfg).await {
                if verbose {
                    eprintln!("{peer}: {e}");
                }
            }
        });
    }
}

async fn echo(tcp: tokio::net::TcpStream, cfg: &ServerConfig) -> wscope::Result<()> {
    let mut ws = accept_with_config(tcp, cfg).await?;
    let mut buf = Vec::new();
    while let Some(got) = ws.recv_into(&mut buf).await {
        let kind: DataKind = got?;
        if ws.is_write_full() {
            ws.flush_writes().await?;
        }
        match ws.feed_data(kind, &mut buf) {
            Ok(()) => {}
            // The peer started closing while we echoed: the stream ends by itself.
            Err(wscope::Error::Closed) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
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
            if self.verbose {
                eprintln!("handshake: {error}");
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
        threads: usize,
        verbose: bool,
    ) -> ExitCode {
        match start(addr, &cfg, &t, threads.max(1), verbose) {
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
        threads: usize,
        verbose: bool,
    ) -> std::io::Result<()> {
        let tune = |s: UringServer| {
            s.ring_entries(t.entries)
                .recv_poll_first(t.poll_first)
                .recv_multishot(t.multishot)
                .register_files(t.register_files)
                .defer_taskrun(t.defer_taskrun)
        };
        let first = if threads == 1 {
            UringServer::bind(addr, cfg.clone())?
        } else {
            UringServer::bind_reuseport(addr, cfg.clone())?
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
        let (done, first_done) = std::sync::mpsc::channel();
        for server in servers {
            let done = done.clone();
            std::thread::Builder::new()
                .name("wscope-uring".into())
                .spawn(move || {
                    let run = core::panic::AssertUnwindSafe(|| server.run(EchoService { verbose }));
                    let result = std::panic::catch_unwind(run)
                        .unwrap_or_else(|_| Err(std::io::Error::other("a server thread panicked")));
                    let _ = done.send(result);
                })?;
        }
        drop(done);
        // Any server that ends (they only end on an error or a panic) ends the command.
        first_done
            .recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("every server thread is gone")))
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

    pub(super) fn run(_: SocketAddr, _: ServerConfig, _: Tuning, _: usize, _: bool) -> ExitCode {
        eprintln!("wscope serve: --io-uring is only available on Linux");
        ExitCode::from(2)
    }
}
