//! wss:// echo servers on the Rust anchors of `../shared/bench` (tokio-tungstenite,
//! tokio-websockets, fastwebsockets), for `bench/bench_tls.py`. The shared anchors
//! speak no TLS; these put tokio-rustls (rustls 0.23, ring, as wscope uses) under the same
//! libraries at the same versions, with the same echo strategy as the shared anchors:
//! tungstenite and tokio-websockets feed each echo and flush once no more input is ready,
//! fastwebsockets writes each message as it completes (`FragmentCollector`); every library
//! answers pings and the closing handshake itself; 64 MiB message limit.
//!
//! Usage: tls-anchor-echo LIB PORT CERT_PEM KEY_PEM [--threads N]
//!
//! LIB is `tungstenite`, `tokio-websockets` or `fastwebsockets`. Binds 127.0.0.1:PORT.
//! Threads default to the CPUs the process may run on (1 under `taskset -c 0`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{rustls, TlsAcceptor};

const MAX_SIZE: usize = 64 << 20;

#[derive(Clone, Copy)]
enum Lib {
    Tungstenite,
    TokioWebsockets,
    Fastwebsockets,
}

type Tls = TlsStream<tokio::net::TcpStream>;

fn usage() -> ! {
    eprintln!("usage: tls-anchor-echo tungstenite|tokio-websockets|fastwebsockets PORT CERT_PEM KEY_PEM [--threads N]");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        usage();
    }
    let lib = match args[0].as_str() {
        "tungstenite" => Lib::Tungstenite,
        "tokio-websockets" => Lib::TokioWebsockets,
        "fastwebsockets" => Lib::Fastwebsockets,
        _ => usage(),
    };
    let port: u16 = args[1].parse().unwrap_or_else(|_| usage());
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    match &args[4..] {
        [] => {}
        [flag, n] if flag == "--threads" => threads = n.parse().unwrap_or_else(|_| usage()),
        _ => usage(),
    }
    let acceptor = acceptor(&args[2], &args[3]);
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .expect("runtime");
    rt.block_on(serve(lib, port, acceptor, threads));
}

fn acceptor(cert: &str, key: &str) -> TlsAcceptor {
    let chain = CertificateDer::pem_file_iter(cert)
        .expect("certificate file")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_file(key).expect("key PEM");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate and key");
    TlsAcceptor::from(Arc::new(config))
}

async fn serve(lib: Lib, port: u16, acceptor: TlsAcceptor, threads: usize) {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    let name = match lib {
        Lib::Tungstenite => "tungstenite",
        Lib::TokioWebsockets => "tokio-websockets",
        Lib::Fastwebsockets => "fastwebsockets",
    };
    eprintln!("tls-anchor-echo {name} listening on wss://127.0.0.1:{port} (threads={threads})");
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        tcp.set_nodelay(true).ok();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            match lib {
                Lib::Tungstenite => {
                    let config =
                        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                            .max_message_size(Some(MAX_SIZE))
                            .max_frame_size(Some(MAX_SIZE));
                    if let Ok(ws) =
                        tokio_tungstenite::accept_async_with_config(tls, Some(config)).await
                    {
                        echo_batched(ws, |m: &tokio_tungstenite::tungstenite::Message| {
                            m.is_text() || m.is_binary()
                        })
                        .await;
                    }
                }
                Lib::TokioWebsockets => {
                    let accepted = tokio_websockets::ServerBuilder::new()
                        .limits(tokio_websockets::Limits::default().max_payload_len(Some(MAX_SIZE)))
                        .accept(tls)
                        .await;
                    if let Ok((_request, ws)) = accepted {
                        echo_batched(ws, |m: &tokio_websockets::Message| {
                            m.is_text() || m.is_binary()
                        })
                        .await;
                    }
                }
                Lib::Fastwebsockets => fastwebsockets_connection(tls).await,
            }
        });
    }
}

/// Echoes every data message; feeds each echo and flushes once no more input is ready (how
/// the shared tungstenite and tokio-websockets anchors batch their writes).
async fn echo_batched<W, M, E>(mut ws: W, is_data: impl Fn(&M) -> bool)
where
    W: Stream<Item = Result<M, E>> + Sink<M, Error = E> + Unpin,
{
    let mut next = ws.next().await;
    loop {
        let msg = match next.take() {
            Some(Ok(m)) => m,
            // Echoes fed before the end still go out.
            _ => {
                let _ = ws.flush().await;
                return;
            }
        };
        if is_data(&msg) && ws.feed(msg).await.is_err() {
            return;
        }
        if let Some(ready) = ws.next().now_or_never() {
            next = ready;
            continue;
        }
        if ws.flush().await.is_err() {
            return;
        }
        next = ws.next().await;
    }
}

type Response = hyper::Response<http_body_util::Empty<bytes::Bytes>>;
type Upgrading =
    Pin<Box<dyn Future<Output = Result<Response, fastwebsockets::WebSocketError>> + Send>>;

/// fastwebsockets' upgrade goes through hyper, as in the shared anchor.
async fn fastwebsockets_connection(tls: Tls) {
    let service = hyper::service::service_fn(|mut req: hyper::Request<hyper::body::Incoming>| {
        let upgrading: Upgrading = Box::pin(async move {
            let (response, upgraded) = fastwebsockets::upgrade::upgrade(&mut req)?;
            tokio::spawn(async move {
                let _ = fastwebsockets_echo(upgraded).await;
            });
            Ok(response)
        });
        upgrading
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
        .with_upgrades()
        .await;
}

async fn fastwebsockets_echo(
    upgraded: fastwebsockets::upgrade::UpgradeFut,
) -> Result<(), fastwebsockets::WebSocketError> {
    use fastwebsockets::OpCode;
    let mut ws = upgraded.await?;
    ws.set_max_message_size(MAX_SIZE);
    ws.set_auto_pong(true);
    ws.set_auto_close(true);
    let mut ws = fastwebsockets::FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}
