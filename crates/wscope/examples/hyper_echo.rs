//! An echo server on plain hyper 1.x with `wscope::hyper::upgrade_with`: WebSocket requests
//! are upgraded (subprotocol `echo` when offered, permessage-deflate), other requests get a
//! short text answer.
//!
//! ```text
//! cargo run --example hyper_echo --features hyper -- [PORT]        (default 9002)
//! wscope connect ws://127.0.0.1:9002/
//! ```

use core::convert::Infallible;
use core::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use wscope::handshake::Accept;
use wscope::{DeflateConfig, Error, ServerConfig};

/// Upgrades WebSocket requests and echoes their messages; answers the rest with text.
async fn service(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if !wscope::hyper::is_upgrade_request(&req) {
        return Ok(Response::new(Full::from(
            "a WebSocket echo server: connect with ws://\n",
        )));
    }
    let cfg = ServerConfig::default().deflate(DeflateConfig::default());
    let upgraded = wscope::hyper::upgrade_with(&mut req, &cfg, |request| {
        Ok(if request.subprotocols().any(|p| p == "echo") {
            Accept::new().subprotocol("echo")
        } else {
            Accept::new()
        })
    });
    match upgraded {
        Ok((response, ws)) => {
            tokio::spawn(async move {
                let mut ws = match ws.await {
                    Ok(ws) => ws,
                    Err(e) => return eprintln!("hyper_echo: upgrade: {e}"),
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_data() {
                        match ws.send(msg).await {
                            Ok(()) | Err(Error::AlreadyClosed) => {}
                            Err(_) => break,
                        }
                    }
                }
            });
            Ok(response.map(|_| Full::default()))
        }
        // 400 or 426 with the reason, as the core decided.
        Err(e) => Ok(e.into_http_response()),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(9002u16);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("hyper_echo: listening on ws://{addr}/");
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service_fn(service))
                .with_upgrades();
            if let Err(e) = conn.await {
                eprintln!("hyper_echo: {e}");
            }
        });
    }
}
