//! `wscope connect URL`: a websocat-like client, over HTTP/1.1 or (`--http2`) HTTP/2.

use core::fmt;
use std::io::Write as _;
use std::process::ExitCode;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncBufReadExt;
use wscope::config::ClientConfig;
use wscope::tls::TlsConfig;
use wscope::tokio::WebSocketStream;
use wscope::Message;

/// Connect to a WebSocket server.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// ws:// or wss:// URL.
    url: String,
    /// Send stdin lines as binary messages instead of text.
    #[arg(long)]
    binary: bool,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "K:V")]
    headers: Vec<String>,
    /// Subprotocol to offer (repeatable).
    #[arg(long = "subprotocol", value_name = "NAME")]
    subprotocols: Vec<String>,
    /// `Origin` header.
    #[arg(long)]
    origin: Option<String>,
    /// Trust the CA certificates in this PEM file instead of the built-in roots. A server
    /// presenting exactly one of these certificates is trusted too (its name is still
    /// checked): pass a self-signed server's own certificate, even a CA:TRUE one as
    /// `openssl req -x509` makes them (as curl does).
    #[arg(long, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// Do not verify the server's certificate at all. DANGEROUS: anyone on the path can read
    /// and change the traffic. Prefer --ca FILE with the server's CA or its own certificate.
    #[arg(long)]
    insecure: bool,
    /// Client certificate chain (PEM) to present (mutual TLS); needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<std::path::PathBuf>,
    /// Private key (PEM) for --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<std::path::PathBuf>,
    /// Server name to send (SNI) and verify the certificate against, instead of the URL's host.
    #[arg(long, value_name = "NAME")]
    sni: Option<String>,
    /// Append the TLS secrets to FILE (NSS key log format) so that `wscope inspect --keylog
    /// FILE` or Wireshark can decrypt a capture of this connection. Without it, the
    /// SSLKEYLOGFILE environment variable names the file, as in browsers and curl.
    #[arg(long, value_name = "FILE")]
    keylog: Option<std::path::PathBuf>,
    /// Offer permessage-deflate (RFC 7692).
    #[arg(long)]
    compress: bool,
    #[command(flatten)]
    keepalive: super::KeepaliveArgs,
    /// HTTP proxy, `http://[user:pass@]host:port`.
    #[arg(long)]
    proxy: Option<String>,
    /// Speak WebSocket over HTTP/2 (RFC 8441): cleartext h2c with prior knowledge for ws://,
    /// TLS with ALPN h2 for wss://; the server must allow extended CONNECT.
    #[arg(long)]
    http2: bool,
}

pub(crate) fn run(args: Args) -> ExitCode {
    let rt = match super::runtime(Some(1)) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wscope connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(connect(args));
    // A read of stdin may still be blocked in tokio's blocking pool; do not wait for it (the
    // connection is over even if stdin stays open).
    rt.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wscope connect: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why `connect` failed, with the address and the flag that helps, where there is one.
#[derive(Debug)]
enum ConnectError {
    /// The flags cannot be used (a file that cannot be read, a bad URL or header).
    Setup(wscope::Error),
    /// Opening the connection to `addr` (TCP, proxy, TLS, handshake) failed.
    Open {
        /// `host:port` connected to (the proxy's, with --proxy).
        addr: String,
        /// The server name the certificate is checked against.
        name: String,
        source: wscope::Error,
    },
    /// The connection failed after it was open.
    Session(wscope::Error),
    /// `--http2`: the HTTP/2 connection to `addr` failed before any WebSocket was open (in
    /// cleartext most likely a server that does not speak h2c).
    Http2 {
        /// What failed to open, as for HTTP/1.1.
        open: Box<ConnectError>,
    },
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use wscope::tls::CertificateProblem;
        let (addr, name, source) = match self {
            Self::Setup(e) | Self::Session(e) => return e.fmt(f),
            Self::Open { addr, name, source } => (addr, name, source),
            Self::Http2 { open } => {
                return write!(
                    f,
                    "{open} (over HTTP/2: is it an HTTP/2 WebSocket server? ws:// speaks h2c \
                     by prior knowledge, wss:// asks for ALPN h2; `wscope serve --http2` \
                     serves both)"
                );
            }
        };
        match source {
            wscope::Error::Io(e) => write!(f, "cannot connect to {addr}: {e}"),
            wscope::Error::Timeout => write!(f, "cannot connect to {addr}: timed out"),
            wscope::Error::Tls(e) => match CertificateProblem::of(e) {
                Some(p @ CertificateProblem::UnknownIssuer) => write!(
                    f,
                    "certificate not trusted ({addr}): {p}: pass --ca FILE with its CA or the \
                     server's own certificate (or --insecure, which turns verification off)"
                ),
                Some(p @ CertificateProblem::CaUsedAsEndEntity) => write!(
                    f,
                    "certificate not trusted ({addr}): {p}: pass that exact certificate with \
                     --ca FILE to trust it (or --insecure, which turns verification off)"
                ),
                Some(p @ CertificateProblem::NotValidForName) => write!(
                    f,
                    "certificate not trusted ({addr}): {p} ({name}): connect with a name it is \
                     issued for, or pass --sni NAME"
                ),
                Some(p) => write!(f, "certificate not trusted ({addr}): {p}"),
                None => write!(f, "{addr}: TLS error: {e}"),
            },
            e => write!(f, "{addr}: {e}"),
        }
    }
}

fn config(args: &Args) -> wscope::Result<ClientConfig> {
    let mut cfg = ClientConfig::from_url(&args.url)?;
    cfg.ws.keepalive = args.keepalive.keepalive();
    if args.compress {
        cfg = cfg.deflate(wscope::config::DeflateConfig::default());
    }
    for h in &args.headers {
        let Some((k, v)) = h.split_once(':') else {
            return Err(wscope::HandshakeError::Config("--header takes NAME:VALUE").into());
        };
        cfg = cfg.header(k.trim(), v.trim());
    }
    for p in &args.subprotocols {
        cfg = cfg.subprotocol(p);
    }
    if let Some(o) = &args.origin {
        cfg = cfg.origin(o);
    }
    let mut tls = TlsConfig::new();
    if let Some(ca) = &args.ca {
        tls = tls.with_ca_file(ca)?;
    }
    if args.insecure {
        tls = tls.insecure();
    }
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        tls = tls.with_client_auth_pem(read(cert)?, read(key)?);
    }
    if let Some(name) = &args.sni {
        tls = tls.with_sni(name);
    }
    tls.key_log = match &args.keylog {
        Some(path) => Some(std::sync::Arc::new(wscope::tls::KeyLogWriter::create(
            path,
        )?)),
        None => wscope::tls::env_key_log(),
    };
    cfg.tls = tls;
    if let Some(p) = &args.proxy {
        cfg = cfg.proxy(wscope::proxy::Proxy::parse(p)?);
    }
    Ok(cfg)
}

/// Reads a file; the error names it.
fn read(path: &std::path::Path) -> wscope::Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| wscope::Error::File {
        path: path.to_owned(),
        source,
    })
}

async fn connect(args: Args) -> Result<(), ConnectError> {
    let cfg = config(&args).map_err(ConnectError::Setup)?;
    let open_error = |source| {
        let (host, port) = match &cfg.proxy {
            Some(p) => (&p.host, p.port),
            None => (&cfg.host, cfg.port),
        };
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let name = cfg.tls.sni.clone().unwrap_or_else(|| cfg.host.clone());
        ConnectError::Open { addr, name, source }
    };
    if args.http2 {
        let client = wscope::h2::Http2Client::connect(&cfg)
            .await
            .map_err(|e| match e {
                // The transport failed during the HTTP/2 handshake: say what to check.
                e @ (wscope::Error::Io(_) | wscope::Error::Timeout) => ConnectError::Http2 {
                    open: Box::new(open_error(e)),
                },
                e => open_error(e),
            })?;
        let (ws, _) = client.websocket(&cfg).await.map_err(open_error)?;
        return session(ws, args.binary).await;
    }
    let ws = wscope::tokio::connect_with(&cfg)
        .await
        .map_err(open_error)?;
    session(ws, args.binary).await
}

/// An open connection: stdin's lines out, received messages printed, until it ends.
async fn session<S>(ws: WebSocketStream<S>, binary: bool) -> Result<(), ConnectError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Some(p) = ws.subprotocol() {
        eprintln!("wscope connect: subprotocol {p}");
    }
    let (mut sink, mut stream) = ws.split();
    let reader = async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines.next_line().await? {
            let msg = if binary {
                Message::binary(line.into_bytes())
            } else {
                Message::text(line)
            };
            sink.send(msg).await?;
        }
        // stdin ended: close normally, then keep printing until the server's close.
        sink.close().await?;
        Ok::<_, wscope::Error>(())
    };
    let printer = async move {
        while let Some(msg) = stream.next().await {
            let mut out = std::io::stdout().lock();
            match msg? {
                Message::Text(t) => writeln!(out, "{t}")?,
                Message::Binary(b) => {
                    out.write_all(&b)?;
                    writeln!(out)?;
                }
                Message::Close(c) => {
                    if let Some(c) = c {
                        eprintln!("wscope connect: closed {} {}", c.code, c.reason);
                    }
                }
                Message::Ping(_) | Message::Pong(_) => {}
            }
            out.flush()?;
        }
        Ok::<_, wscope::Error>(())
    };
    tokio::pin!(reader);
    tokio::pin!(printer);
    // The printer ends with the connection; stdin may stay open forever.
    let result = tokio::select! {
        r = &mut printer => r,
        r = &mut reader => match r {
            Ok(()) => printer.await,
            Err(e) => Err(e),
        },
    };
    result.map_err(ConnectError::Session)
}
