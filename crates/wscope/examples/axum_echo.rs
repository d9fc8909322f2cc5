//! An echo server on axum with the `wscope::axum::WebSocketUpgrade` extractor: every text and
//! binary message comes back with its type, on any path. `scripts/autobahn.sh` (with
//! `AUTOBAHN_AXUM=1`) and `scripts/interop.sh` run the conformance suites against it.
//!
//! ```text
//! cargo run --example axum_echo --features axum -- [--compress] [--host 127.0.0.1] [--port] 9001
//! ```
//!
//! `--compress` accepts permessage-deflate offers (what axum's own `ws` cannot do). Messages
//! and frames up to 64 MiB, as `wscope serve --echo`.

use core::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use futures_util::{SinkExt, StreamExt};
use wscope::axum::{WebSocket, WebSocketUpgrade};
use wscope::{DeflateConfig, Error};

/// Echoes data messages until the connection ends; pings and the closing handshake are
/// answered by the core.
async fn echo(mut ws: WebSocket) {
    while let Some(msg) = ws.next().await {
        let Ok(msg) = msg else { break };
        if msg.is_data() {
            match ws.send(msg).await {
                // The peer started closing while we echoed: read on to the end.
                Ok(()) | Err(Error::AlreadyClosed) => {}
                Err(_) => break,
            }
        }
    }
}

#[derive(Debug)]
struct Args {
    host: String,
    port: u16,
    compress: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: "127.0.0.1".to_owned(),
        port: 9001,
        compress: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--compress" => args.compress = true,
            "--host" => args.host = it.next().ok_or("--host needs a value")?,
            "--port" => {
                let p = it.next().ok_or("--port needs a value")?;
                args.port = p.parse().map_err(|e| format!("bad port {p}: {e}"))?;
            }
            "-h" | "--help" => {
                return Err("usage: axum_echo [--compress] [--host HOST] [--port] PORT".into())
            }
            p => args.port = p.parse().map_err(|e| format!("bad port {p}: {e}"))?,
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("axum_echo: {e}");
            return ExitCode::from(2);
        }
    };
    let compress = args.compress;
    let app = Router::new().fallback(move |upgrade: WebSocketUpgrade| async move {
        let upgrade = if compress {
            upgrade.compression(DeflateConfig::default())
        } else {
            upgrade
        };
        upgrade.on_upgrade(echo)
    });
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("axum_echo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let addr: SocketAddr = match format!("{}:{}", args.host, args.port).parse() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("axum_echo: bad address {}:{}: {e}", args.host, args.port);
                return ExitCode::from(2);
            }
        };
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("axum_echo: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        eprintln!(
            "axum_echo: listening on ws://{addr}/{}",
            if compress {
                " (permessage-deflate)"
            } else {
                ""
            }
        );
        match axum::serve(listener, app).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("axum_echo: {addr}: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
