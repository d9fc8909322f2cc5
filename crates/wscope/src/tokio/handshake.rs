//! `connect_async` / `accept_async`: TCP, proxy, TLS and the opening handshake on tokio.

use core::time::Duration;
#[cfg(feature = "rustls")]
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use wscope_proto::Role;

use super::{AsyncMaybeTlsStream, WebSocketStream};
use crate::config::{ClientConfig, ServerConfig};
use crate::error::{Error, HandshakeError, Result};
use crate::handshake::{
    accept_all, client_agreed, client_feed, client_start, server_feed, server_machine,
    server_respond, Accept, RefusalDrain, Reject, Request, Response,
};
use crate::session::{Clock, Session};
use crate::stream::Tcp;

/// A client connection as returned by [`connect_async`].
pub type ClientStream = WebSocketStream<AsyncMaybeTlsStream<Tcp<TcpStream>>>;

async fn timed<T>(
    t: Option<Duration>,
    f: impl core::future::Future<Output = Result<T>>,
) -> Result<T> {
    match t {
        Some(t) => tokio::time::timeout(t, f)
            .await
            .map_err(|_| Error::Timeout)?,
        None => f.await,
    }
}

/// Connects to a `ws://` or `wss://` URL with default settings.
///
/// ```no_run
/// use futures_util::{SinkExt, StreamExt};
/// use wscope::Message;
///
/// # async fn run() -> wscope::Result<()> {
/// let (mut ws, _response) = wscope::tokio::connect_async("ws://127.0.0.1:9001/").await?;
/// ws.send(Message::text("hello")).await?;
/// while let Some(msg) = ws.next().await {
///     println!("{:?}", msg?);
/// }
/// # Ok(())
/// # }
/// ```
pub async fn connect_async(url: &str) -> Result<(ClientStream, Response)> {
    connect_with_response(&ClientConfig::from_url(url)?).await
}

/// Connects with a full configuration.
pub async fn connect_with(cfg: &ClientConfig) -> Result<ClientStream> {
    connect_with_response(cfg).await.map(|(ws, _)| ws)
}

/// Connects with a full configuration; also returns the server's response. The whole
/// opening is bounded by [`ClientConfig::open_timeout`] when set.
pub async fn connect_with_response(cfg: &ClientConfig) -> Result<(ClientStream, Response)> {
    timed(cfg.open_timeout, open(cfg)).await
}

/// [`connect_with_response`] without the overall bound.
async fn open(cfg: &ClientConfig) -> Result<(ClientStream, Response)> {
    cfg.check_tls_available()?;
    let (host, port) = match &cfg.proxy {
        Some(p) => (p.host.as_str(), p.port),
        None => (cfg.host.as_str(), cfg.port),
    };
    let mut tcp = timed(cfg.connect_timeout, async {
        Ok(TcpStream::connect((host, port)).await?)
    })
    .await?;
    tcp.set_nodelay(cfg.nodelay)?;
    if let Some(p) = &cfg.proxy {
        timed(
            Some(cfg.handshake_timeout),
            crate::proxy::connect_async(&mut tcp, p, &cfg.host, cfg.port),
        )
        .await?;
    }
    #[cfg(feature = "rustls")]
    let stream = if cfg.secure {
        let tls = tokio_rustls::TlsConnector::from(cfg.tls.build()?);
        let name = cfg.tls.server_name(&cfg.host)?;
        let t = cfg.connect_timeout.unwrap_or(cfg.handshake_timeout);
        let tcp = Tcp::new(tcp);
        let s = timed(Some(t), async { Ok(tls.connect(name, tcp).await?) }).await?;
        AsyncMaybeTlsStream::ClientTls(Box::new(s))
    } else {
        AsyncMaybeTlsStream::Plain(Tcp::new(tcp))
    };
    // `check_tls_available` refused `wss://` before connecting.
    #[cfg(not(feature = "rustls"))]
    let stream = AsyncMaybeTlsStream::Plain(Tcp::new(tcp));
    timed(Some(cfg.handshake_timeout), client_handshake(stream, cfg)).await
}

/// Runs the client handshake over an already connected stream.
pub async fn client_handshake<S>(
    mut stream: S,
    cfg: &ClientConfig,
) -> Result<(WebSocketStream<S>, Response)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = Vec::with_capacity(512);
    let (mut hs, offer) = client_start(cfg, &mut request)?;
    stream.write_all(&request).await?;
    stream.flush().await?;
    let mut buf = vec![0u8; 4096];
    let (response, leftover) = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(HandshakeError::Eof.into());
        }
        if let Some((resp, leftover)) = client_feed(&mut hs, &buf[..n])? {
            break (resp, leftover.to_vec());
        }
    };
    let agreed = client_agreed(cfg, offer.as_ref(), &response)?;
    let session = Session::open(Role::Client, cfg.into(), &leftover, agreed);
    Ok((WebSocketStream::with_session(stream, session), response))
}

/// A server connection over TCP as returned by [`accept_tls`] on a [`Tcp`] stream (TLS when
/// the configuration has it).
pub type ServerStream = WebSocketStream<AsyncMaybeTlsStream<Tcp<TcpStream>>>;

/// Upgrades an accepted stream with default settings, accepting any request. `stream` is any
/// `AsyncRead + AsyncWrite + Unpin` byte stream: a `TcpStream`, a `UnixStream`, a stream
/// already wrapped in TLS, one end of `tokio::io::duplex`. The handshake is bounded by the
/// default [`ServerConfig::handshake_timeout`].
///
/// A bare `TcpStream` writes its vectored writes with `writev`, which raises `SIGPIPE` when
/// the peer has gone away. Rust programs ignore that signal. A host that leaves it at its
/// default action (a C program loading Rust code) is killed by it. [`Tcp::new`] wraps the
/// stream so that those writes are a `sendmsg` with `MSG_NOSIGNAL` (as [`connect_async`]
/// does for its own connection).
///
/// ```no_run
/// use futures_util::{SinkExt, StreamExt};
///
/// # async fn run() -> wscope::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// loop {
///     let (tcp, _) = listener.accept().await?;
///     tokio::spawn(async move {
///         let mut ws = wscope::tokio::accept_async(tcp).await?;
///         while let Some(msg) = ws.next().await {
///             let msg = msg?;
///             if msg.is_data() {
///                 ws.send(msg).await?;
///             }
///         }
///         Ok::<_, wscope::Error>(())
///     });
/// }
/// # }
/// ```
pub async fn accept_async<S>(stream: S) -> Result<WebSocketStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with_config(stream, &ServerConfig::default()).await
}

/// Upgrades an accepted stream with `cfg`, accepting any request (see [`accept_async`]).
/// TLS is [`accept_tls`]'s job: a configuration with [`ServerConfig::tls`] set is refused here
/// ([`HandshakeError::Config`]) rather than served in plain text.
pub async fn accept_with_config<S>(stream: S, cfg: &ServerConfig) -> Result<WebSocketStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(stream, cfg, accept_all).await.map(|(ws, _)| ws)
}

/// Upgrades an accepted stream: the request is read (bounded by the header size limit, 431,
/// and [`ServerConfig::handshake_timeout`]), checked by the core (400, 426) and shown to
/// `decide`, which accepts (subprotocol, headers) or rejects (status). Refusals are answered
/// before the error is returned. The same shape as [`crate::blocking::accept_with`].
///
/// ```no_run
/// use wscope::config::ServerConfig;
/// use wscope::handshake::{Accept, Reject};
///
/// # async fn run(tcp: tokio::net::TcpStream) -> wscope::Result<()> {
/// let (ws, request) = wscope::tokio::accept_with(tcp, &ServerConfig::default(), |req| {
///     match req.target() {
///         "/chat" => Ok(Accept::new().subprotocol("chat")),
///         _ => Err(Reject::new(404)),
///     }
/// })
/// .await?;
/// # Ok(())
/// # }
/// ```
pub async fn accept_with<S, F>(
    stream: S,
    cfg: &ServerConfig,
    decide: F,
) -> Result<(WebSocketStream<S>, Request)>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    #[cfg(feature = "rustls")]
    if cfg.tls.is_some() {
        return Err(HandshakeError::Config(
            "the server configuration has TLS: accept with accept_tls",
        )
        .into());
    }
    timed(
        Some(cfg.handshake_timeout),
        server_handshake(stream, cfg, decide),
    )
    .await
}

/// Upgrades an accepted stream, with TLS first when [`ServerConfig::tls`] is set (plain
/// otherwise), accepting any request. TLS and the upgrade together are bounded by
/// [`ServerConfig::handshake_timeout`]. For TCP, wrap the stream in [`Tcp`] (vectored writes
/// that never raise `SIGPIPE`) and set `TCP_NODELAY` as [`ServerConfig::nodelay`] says:
///
/// ```no_run
/// use wscope::config::ServerConfig;
/// use wscope::stream::Tcp;
///
/// # async fn run(tcp: tokio::net::TcpStream, cfg: ServerConfig) -> wscope::Result<()> {
/// tcp.set_nodelay(cfg.nodelay)?;
/// let ws: wscope::tokio::ServerStream = wscope::tokio::accept_tls(Tcp::new(tcp), &cfg).await?;
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "rustls")]
pub async fn accept_tls<S>(
    stream: S,
    cfg: &ServerConfig,
) -> Result<WebSocketStream<AsyncMaybeTlsStream<S>>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_tls_with(stream, cfg, accept_all)
        .await
        .map(|(ws, _)| ws)
}

/// [`accept_tls`] with the application's decision, as in [`accept_with`]. Feature `rustls`.
#[cfg(feature = "rustls")]
pub async fn accept_tls_with<S, F>(
    stream: S,
    cfg: &ServerConfig,
    decide: F,
) -> Result<(WebSocketStream<AsyncMaybeTlsStream<S>>, Request)>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let tls: Option<Arc<rustls::ServerConfig>> = cfg.tls.clone();
    // Boxed: the TLS and HTTP state stay out of the caller's future (see `server_handshake`).
    Box::pin(timed(Some(cfg.handshake_timeout), async move {
        let stream = match tls {
            Some(tls) => {
                let s = tokio_rustls::TlsAcceptor::from(tls).accept(stream).await?;
                AsyncMaybeTlsStream::ServerTls(Box::new(s))
            }
            None => AsyncMaybeTlsStream::Plain(stream),
        };
        server_handshake(stream, cfg, decide).await
    }))
    .await
}

/// Runs the server handshake over an accepted stream (no timeout of its own: wrap it in
/// `tokio::time::timeout`).
///
/// The handshake's state (the HTTP parser, buffers, a refusal's drain) lives in a box freed
/// when it ends: a server's connection task awaits this future first and keeps its size
/// for the connection's life, so inline it would cost every idle connection about 10 KB.
pub async fn server_handshake<S, F>(
    stream: S,
    cfg: &ServerConfig,
    decide: F,
) -> Result<(WebSocketStream<S>, Request)>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    Box::pin(server_handshake_inline(stream, cfg, decide)).await
}

async fn server_handshake_inline<S, F>(
    mut stream: S,
    cfg: &ServerConfig,
    decide: F,
) -> Result<(WebSocketStream<S>, Request)>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    let mut hs = server_machine(cfg);
    let mut buf = vec![0u8; 4096];
    let (request, leftover) = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(HandshakeError::Eof.into());
        }
        match server_feed(&mut hs, &buf[..n]) {
            Ok(None) => {}
            Ok(Some((req, leftover))) => break (req, leftover.to_vec()),
            Err((response, e)) => {
                refuse(&mut stream, &response).await;
                return Err(e);
            }
        }
    };
    let mut response = Vec::with_capacity(256);
    match server_respond(&request, cfg, decide, &mut response) {
        Ok(agreed) => {
            stream.write_all(&response).await?;
            stream.flush().await?;
            let session = Session::open(Role::Server, cfg.into(), &leftover, agreed);
            Ok((WebSocketStream::with_session(stream, session), request))
        }
        Err(e) => {
            refuse(&mut stream, &response).await;
            Err(e)
        }
    }
}

/// Writes a refusal, ends the connection, and drains briefly so the client gets the
/// response instead of a reset ([`RefusalDrain`]).
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, response: &[u8]) {
    let _ = stream.write_all(response).await;
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
    let mut drain = RefusalDrain::new(Clock::now_std());
    let mut sink = [0u8; 4096];
    let until = tokio::time::Instant::from_std(drain.until());
    let _ = tokio::time::timeout_at(until, async {
        loop {
            let n = stream.read(&mut sink).await.unwrap_or(0);
            if !drain.record(n) {
                break;
            }
        }
    })
    .await;
}
