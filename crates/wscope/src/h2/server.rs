//! The server side: an HTTP/2 connection that advertises `SETTINGS_ENABLE_CONNECT_PROTOCOL`
//! and hands out a [`WebSocketStream`] per accepted extended CONNECT.

use std::sync::Arc;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::RecvStream;
use http::{HeaderMap, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};
use wscope_proto::handshake::{ExtendedConnect, PseudoHeaders};
use wscope_proto::Role;

use super::stream::{to_io, H2Stream};
use super::Settings;
use crate::config::ServerConfig;
use crate::error::{Error, HandshakeError, Result};
use crate::handshake::{accept_all, Accept, Answer, Reject, Request};
use crate::session::Session;
use crate::tokio::WebSocketStream;

/// A WebSocket accepted on an HTTP/2 connection.
pub type H2WebSocket = WebSocketStream<H2Stream>;

/// An HTTP/2 server connection whose streams carry WebSockets (RFC 8441).
///
/// [`Http2Server::handshake`] reads the client preface and sends our SETTINGS with
/// `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1` (RFC 8441 section 3). Then
/// [`Http2Server::accept`] / [`Http2Server::accept_with`] take the streams one at a time:
/// each extended CONNECT is checked by the core ([`ExtendedConnect::validate`]), shown to the
/// application, and answered `200` (with the chosen subprotocol and permessage-deflate
/// parameters, negotiated by the same code as for HTTP/1.1) or refused with its status
/// (400, 501, or the application's). Other requests get `400`.
///
/// As with any `h2` connection, the connection's I/O (for every stream) is driven by the
/// task that calls `accept`: keep calling it, and run each [`H2WebSocket`] in a task of its
/// own. A connection on which no WebSocket is open for [`ServerConfig::handshake_timeout`]
/// is closed with GOAWAY (then `accept` returns `None`).
///
/// ```no_run
/// use futures_util::{SinkExt, StreamExt};
/// use wscope::config::ServerConfig;
/// use wscope::h2::Http2Server;
///
/// # async fn run(tcp: tokio::net::TcpStream) -> wscope::Result<()> {
/// let mut conn = Http2Server::handshake(tcp, &ServerConfig::default()).await?;
/// while let Some(accepted) = conn.accept().await {
///     let Ok((mut ws, _request)) = accepted else { continue }; // a refused stream
///     tokio::spawn(async move {
///         while let Some(Ok(msg)) = ws.next().await {
///             if msg.is_data() && ws.send(msg).await.is_err() {
///                 break;
///             }
///         }
///     });
/// }
/// # Ok(())
/// # }
/// ```
pub struct Http2Server<S> {
    conn: h2::server::Connection<S, Bytes>,
    cfg: ServerConfig,
    /// The connection failed: `accept` returns `None` from now on.
    done: bool,
    /// GOAWAY was sent (a shutdown, or no WebSocket for the handshake timeout).
    going_away: bool,
    /// One clone per WebSocket handed out and still alive: the count tells an idle
    /// connection.
    open: Arc<()>,
}

impl<S> core::fmt::Debug for Http2Server<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Http2Server")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Http2Server<S> {
    /// The HTTP/2 server handshake over `io` (cleartext h2c with prior knowledge, or a TLS
    /// stream that negotiated ALPN `h2`), with the default [`Settings`], bounded by
    /// [`ServerConfig::handshake_timeout`].
    ///
    /// # Errors
    ///
    /// The client's preface is not HTTP/2 or does not arrive in time; I/O errors.
    pub async fn handshake(io: S, cfg: &ServerConfig) -> Result<Self> {
        Self::handshake_with(io, cfg, &Settings::default()).await
    }

    /// [`Http2Server::handshake`] with these HTTP/2 settings.
    ///
    /// # Errors
    ///
    /// As for [`Http2Server::handshake`].
    pub async fn handshake_with(io: S, cfg: &ServerConfig, settings: &Settings) -> Result<Self> {
        let mut builder = h2::server::Builder::new();
        builder
            .enable_connect_protocol()
            .initial_window_size(settings.stream_window)
            .initial_connection_window_size(settings.connection_window)
            .max_concurrent_streams(settings.max_concurrent_streams)
            .max_send_buffer_size(settings.max_send_buffer)
            .max_frame_size(settings.max_frame_size)
            .max_header_list_size(u32::try_from(cfg.max_header_size).unwrap_or(u32::MAX));
        let conn = tokio::time::timeout(cfg.handshake_timeout, builder.handshake(io))
            .await
            .map_err(|_| Error::Timeout)?
            .map_err(|e| Error::Io(to_io(e)))?;
        Ok(Self {
            conn,
            cfg: cfg.clone(),
            done: false,
            going_away: false,
            open: Arc::new(()),
        })
    }

    /// The next WebSocket, accepting every valid extended CONNECT (no subprotocol chosen).
    /// See [`Http2Server::accept_with`].
    pub async fn accept(&mut self) -> Option<Result<(H2WebSocket, ExtendedConnect)>> {
        self.accept_with(accept_all).await
    }

    /// The next stream: `Some(Ok)` with the WebSocket and its request when it was accepted;
    /// `Some(Err)` for a stream that was refused (answered already; the connection goes on:
    /// call again) or for the connection's failure (then `None` follows); `None` when the
    /// client has closed the connection.
    ///
    /// `decide` sees the request as a [`Request`] (its target is `:path`, its `Host` is
    /// `:authority`), exactly as an HTTP/1.1 server's callback does.
    pub async fn accept_with<F>(
        &mut self,
        decide: F,
    ) -> Option<Result<(H2WebSocket, ExtendedConnect)>>
    where
        F: FnOnce(&Request) -> core::result::Result<Accept, Reject>,
    {
        if self.done {
            return None;
        }
        let accepted = loop {
            if self.going_away {
                break self.conn.accept().await;
            }
            // A connection with no WebSocket for the handshake timeout is closed (GOAWAY),
            // as an HTTP/1.1 connection that never completes its upgrade is: a client cannot
            // hold a connection open without using it.
            match tokio::time::timeout(self.cfg.handshake_timeout, self.conn.accept()).await {
                Ok(accepted) => break accepted,
                Err(_) if Arc::strong_count(&self.open) == 1 => self.graceful_shutdown(),
                Err(_) => {}
            }
        };
        match accepted {
            None => {
                self.done = true;
                None
            }
            Some(Err(e)) => {
                self.done = true;
                Some(Err(Error::Io(to_io(e))))
            }
            Some(Ok((request, respond))) => Some(self.answer(request, respond, decide)),
        }
    }

    /// Starts a graceful shutdown: GOAWAY, streams already open run on; `accept` returns
    /// `None` once they are all done.
    pub fn graceful_shutdown(&mut self) {
        self.going_away = true;
        self.conn.graceful_shutdown();
    }

    /// Answers one request: `200` and the WebSocket, or the refusal.
    fn answer<F>(
        &self,
        request: http::Request<RecvStream>,
        mut respond: SendResponse<Bytes>,
        decide: F,
    ) -> Result<(H2WebSocket, ExtendedConnect)>
    where
        F: FnOnce(&Request) -> core::result::Result<Accept, Reject>,
    {
        let (parts, body) = request.into_parts();
        let req = extended_connect(&parts);
        if let Err(e) = req.validate() {
            let mut head = status_only(e.http_status());
            for (name, value) in e.response_fields() {
                head.headers_mut()
                    .insert(*name, http::HeaderValue::from_static(value));
            }
            let _ = respond.send_response(head, true);
            return Err(Error::Handshake(HandshakeError::Connect(e)));
        }
        let answer = match Answer::decide(req.request(), &self.cfg, decide) {
            Ok(answer) => answer,
            Err(reject) => {
                let mut head = status_only(reject.status);
                add_headers(head.headers_mut(), &reject.headers);
                let _ = respond.send_response(head, true);
                return Err(Error::Handshake(HandshakeError::Rejected {
                    status: reject.status,
                }));
            }
        };
        let deflate = answer.deflate.as_ref().map(|(value, _)| value.as_str());
        let fields = match req.response_fields(answer.accept.subprotocol.as_deref(), deflate) {
            Ok(fields) => fields,
            Err(e) => {
                let _ = respond.send_response(status_only(500), true);
                return Err(Error::Handshake(HandshakeError::Build(e)));
            }
        };
        let mut head = status_only(200);
        for (name, value) in &fields {
            if let Ok(v) = http::HeaderValue::from_str(value) {
                head.headers_mut().append(*name, v);
            }
        }
        add_headers(head.headers_mut(), &answer.accept.headers);
        let send = respond
            .send_response(head, false)
            .map_err(|e| Error::Io(to_io(e)))?;
        let session = Session::open(Role::Server, (&self.cfg).into(), &[], answer.agreed());
        let stream = H2Stream::new(send, body).counted(self.open.clone());
        let ws = WebSocketStream::with_session(stream, session);
        Ok((ws, req))
    }
}

/// The core's view of a request head: its pseudo-header fields and regular fields.
pub(crate) fn extended_connect(parts: &http::request::Parts) -> ExtendedConnect {
    let protocol = parts.extensions.get::<h2::ext::Protocol>();
    let mut pseudo = PseudoHeaders::default();
    pseudo.method = Some(parts.method.as_str());
    pseudo.protocol = protocol.map(h2::ext::Protocol::as_str);
    pseudo.scheme = parts.uri.scheme_str();
    pseudo.authority = parts.uri.authority().map(http::uri::Authority::as_str);
    pseudo.path = parts
        .uri
        .path_and_query()
        .map(http::uri::PathAndQuery::as_str);
    let fields = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    ExtendedConnect::from_parts(pseudo, fields)
}

/// A response head with `status` and no fields (500 when the status is out of range).
fn status_only(status: u16) -> Response<()> {
    let mut head = Response::new(());
    *head.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    head
}

/// Adds the application's headers; a name or value HTTP/2 cannot carry is left out (HTTP/2
/// field names are lower case: `http` lowers them).
fn add_headers(map: &mut HeaderMap, headers: &[(String, String)]) {
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            map.append(n, v);
        }
    }
}
