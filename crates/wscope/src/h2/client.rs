//! The client side: one HTTP/2 connection, several WebSockets on it (one stream each).

#[cfg(feature = "rustls")]
use std::sync::Arc;

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wscope_proto::handshake::check_response;
use wscope_proto::Role;

use super::server::H2WebSocket;
use super::stream::{to_io, H2Stream};
use super::Settings;
#[cfg(feature = "rustls")]
use super::ALPN_H2;
use crate::config::ClientConfig;
use crate::error::{Error, HandshakeError, Result};
use crate::handshake::{client_agreed, client_offer, Response};
use crate::session::Session;
use crate::stream::Tcp;
use crate::tokio::{AsyncMaybeTlsStream, WebSocketStream};

/// A client HTTP/2 connection for WebSockets (RFC 8441): [`Http2Client::websocket`] opens one
/// WebSocket per call, each on its own stream, all on this connection.
///
/// The connection's I/O runs in a task of its own (spawned on the current tokio runtime),
/// which ends when every handle and stream is dropped or the server closes.
///
/// ```no_run
/// use futures_util::{SinkExt, StreamExt};
/// use wscope::config::ClientConfig;
/// use wscope::h2::Http2Client;
/// use wscope::Message;
///
/// # async fn run() -> wscope::Result<()> {
/// let cfg = ClientConfig::from_url("ws://127.0.0.1:9001/echo")?; // h2c, prior knowledge
/// let client = Http2Client::connect(&cfg).await?;
/// let (mut a, _) = client.websocket(&cfg).await?;
/// let (mut b, _) = client.websocket(&cfg.clone().path("/other")).await?; // same connection
/// a.send(Message::text("on stream 1")).await?;
/// b.send(Message::text("on stream 3")).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Http2Client {
    send: SendRequest<Bytes>,
    scheme: &'static str,
    authority: String,
}

impl Http2Client {
    /// Connects to `cfg`'s host and port (through its proxy, if any): TLS with ALPN `h2`
    /// when [`ClientConfig::secure`], else cleartext HTTP/2 with prior knowledge (h2c), then
    /// the HTTP/2 handshake. Bounded as [`crate::tokio::connect_with`] is.
    ///
    /// # Errors
    ///
    /// Connection and TLS errors; [`HandshakeError::AlpnNotH2`] when the TLS server does not
    /// choose `h2`; [`HandshakeError::ExtendedConnectDisabled`] when the server does not
    /// allow extended CONNECT.
    pub async fn connect(cfg: &ClientConfig) -> Result<Self> {
        Self::connect_with(cfg, &Settings::default()).await
    }

    /// [`Http2Client::connect`] with these HTTP/2 settings.
    ///
    /// # Errors
    ///
    /// As for [`Http2Client::connect`].
    pub async fn connect_with(cfg: &ClientConfig, settings: &Settings) -> Result<Self> {
        let open = async {
            let io = open_transport(cfg).await?;
            Self::handshake_with(io, cfg, settings).await
        };
        match cfg.open_timeout {
            Some(t) => tokio::time::timeout(t, open)
                .await
                .map_err(|_| Error::Timeout)?,
            None => open.await,
        }
    }

    /// The HTTP/2 client handshake over a connected stream (cleartext, or TLS that
    /// negotiated `h2`); `cfg` gives the `:authority` and `:scheme` of every request.
    ///
    /// # Errors
    ///
    /// As for [`Http2Client::connect`], less the transport's.
    pub async fn handshake<S>(io: S, cfg: &ClientConfig) -> Result<Self>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Self::handshake_with(io, cfg, &Settings::default()).await
    }

    /// [`Http2Client::handshake`] with these HTTP/2 settings.
    ///
    /// # Errors
    ///
    /// As for [`Http2Client::handshake`].
    pub async fn handshake_with<S>(io: S, cfg: &ClientConfig, settings: &Settings) -> Result<Self>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let setup = async {
            let (send, mut conn) = h2::client::Builder::new()
                .initial_window_size(settings.stream_window)
                .initial_connection_window_size(settings.connection_window)
                .max_send_buffer_size(settings.max_send_buffer)
                .max_frame_size(settings.max_frame_size)
                .handshake::<_, Bytes>(io)
                .await
                .map_err(|e| Error::Io(to_io(e)))?;
            let ping = conn.ping_pong();
            tokio::spawn(async move {
                // The connection's end is seen by its streams (as errors or resets).
                let _ = conn.await;
            });
            // The server's SETTINGS open its preface: once a PING is answered they have been
            // applied, and whether it allows extended CONNECT is known (RFC 8441 section 3).
            if let Some(mut ping) = ping {
                ping.ping(h2::Ping::opaque())
                    .await
                    .map_err(|e| Error::Io(to_io(e)))?;
            }
            let send = send.ready().await.map_err(|e| Error::Io(to_io(e)))?;
            Ok::<_, Error>(send)
        };
        let send = tokio::time::timeout(cfg.handshake_timeout, setup)
            .await
            .map_err(|_| Error::Timeout)??;
        if !send.is_extended_connect_protocol_enabled() {
            return Err(HandshakeError::ExtendedConnectDisabled.into());
        }
        Ok(Self {
            send,
            scheme: if cfg.secure { "https" } else { "http" },
            authority: authority(&cfg.host, cfg.port, cfg.secure),
        })
    }

    /// Opens a WebSocket on a new stream of this connection: an extended CONNECT for
    /// `cfg.path` with `cfg`'s subprotocols, permessage-deflate offer, `Origin` and extra
    /// headers (the host, port and TLS of `cfg` are the connection's, not looked at). The
    /// answer is checked by the core ([`check_response`]): a 2xx, only what was offered.
    /// Bounded by [`ClientConfig::handshake_timeout`].
    ///
    /// # Errors
    ///
    /// [`HandshakeError::Connect`] with
    /// [`ConnectError::Status`](wscope_proto::handshake::ConnectError::Status) for a refusal (its
    /// status in [`HandshakeError::http_status`]), or with what the answer got wrong;
    /// [`HandshakeError::Deflate`]; the connection's failure as [`Error::Io`].
    pub async fn websocket(&self, cfg: &ClientConfig) -> Result<(H2WebSocket, Response)> {
        tokio::time::timeout(cfg.handshake_timeout, self.open_stream(cfg))
            .await
            .map_err(|_| Error::Timeout)?
    }

    async fn open_stream(&self, cfg: &ClientConfig) -> Result<(H2WebSocket, Response)> {
        let (offer, offer_value) = client_offer(cfg);
        let path = if cfg.path.is_empty() { "/" } else { &cfg.path };
        let uri = format!("{}://{}{}", self.scheme, self.authority, path);
        let mut request = http::Request::builder()
            .method(http::Method::CONNECT)
            .uri(uri)
            .header("sec-websocket-version", "13");
        if !cfg.subprotocols.is_empty() {
            request = request.header("sec-websocket-protocol", cfg.subprotocols.join(", "));
        }
        if let Some(v) = &offer_value {
            request = request.header("sec-websocket-extensions", v.as_str());
        }
        if let Some(o) = &cfg.origin {
            request = request.header("origin", o.as_str());
        }
        for (name, value) in &cfg.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let mut request = request
            .body(())
            .map_err(|_| HandshakeError::Config("a header name or value HTTP/2 cannot carry"))?;
        request
            .extensions_mut()
            .insert(h2::ext::Protocol::from_static("websocket"));
        let mut send = self
            .send
            .clone()
            .ready()
            .await
            .map_err(|e| Error::Io(to_io(e)))?;
        let (response, stream) = send
            .send_request(request, false)
            .map_err(|e| Error::Io(to_io(e)))?;
        let response = response.await.map_err(|e| Error::Io(to_io(e)))?;
        let (parts, body) = response.into_parts();
        let fields = parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()));
        let offered: Vec<&str> = cfg.subprotocols.iter().map(String::as_str).collect();
        let checked = check_response(
            parts.status.as_u16(),
            fields,
            &offered,
            offer_value.as_deref(),
        )
        .map_err(|e| Error::Handshake(HandshakeError::Connect(e)));
        let response = match checked {
            Ok(r) => r,
            Err(e) => {
                let mut stream = stream;
                stream.send_reset(h2::Reason::CANCEL);
                return Err(e);
            }
        };
        let agreed = client_agreed(cfg, offer.as_ref(), &response)?;
        let session = Session::open(Role::Client, cfg.into(), &[], agreed);
        Ok((
            WebSocketStream::with_session(H2Stream::new(stream, body), session),
            response,
        ))
    }

    /// Whether the server allows extended CONNECT (`SETTINGS_ENABLE_CONNECT_PROTOCOL`);
    /// always true for a client that [`Http2Client::handshake`] returned.
    pub fn is_extended_connect_enabled(&self) -> bool {
        self.send.is_extended_connect_protocol_enabled()
    }
}

/// The connected transport: TCP (through the proxy), then TLS with ALPN `h2` when asked.
async fn open_transport(cfg: &ClientConfig) -> Result<AsyncMaybeTlsStream<Tcp<TcpStream>>> {
    // A `wss://` configuration in a build without TLS fails before connecting.
    cfg.check_tls_available()?;
    let (host, port) = match &cfg.proxy {
        Some(p) => (p.host.as_str(), p.port),
        None => (cfg.host.as_str(), cfg.port),
    };
    let connect = TcpStream::connect((host, port));
    let mut tcp = match cfg.connect_timeout {
        Some(t) => tokio::time::timeout(t, connect)
            .await
            .map_err(|_| Error::Timeout)??,
        None => connect.await?,
    };
    tcp.set_nodelay(cfg.nodelay)?;
    if let Some(p) = &cfg.proxy {
        tokio::time::timeout(
            cfg.handshake_timeout,
            crate::proxy::connect_async(&mut tcp, p, &cfg.host, cfg.port),
        )
        .await
        .map_err(|_| Error::Timeout)??;
    }
    if !cfg.secure {
        return Ok(AsyncMaybeTlsStream::Plain(Tcp::new(tcp)));
    }
    #[cfg(not(feature = "rustls"))]
    return Err(crate::url::UrlError::TlsDisabled.into());
    #[cfg(feature = "rustls")]
    {
        let mut tls = (*cfg.tls.build()?).clone();
        tls.alpn_protocols = vec![ALPN_H2.to_vec()];
        let name = cfg.tls.server_name(&cfg.host)?;
        let t = cfg.connect_timeout.unwrap_or(cfg.handshake_timeout);
        let connect = tokio_rustls::TlsConnector::from(Arc::new(tls)).connect(name, Tcp::new(tcp));
        let s = tokio::time::timeout(t, connect)
            .await
            .map_err(|_| Error::Timeout)??;
        if s.get_ref().1.alpn_protocol() != Some(ALPN_H2) {
            return Err(HandshakeError::AlpnNotH2.into());
        }
        Ok(AsyncMaybeTlsStream::ClientTls(Box::new(s)))
    }
}

/// `:authority`: the host (an IPv6 address in brackets) and the port unless it is the
/// scheme's default.
fn authority(host: &str, port: u16, secure: bool) -> String {
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let default = if secure { 443 } else { 80 };
    if port == default {
        host
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_has_the_port_only_when_not_the_default() {
        assert_eq!(authority("example.com", 80, false), "example.com");
        assert_eq!(authority("example.com", 443, true), "example.com");
        assert_eq!(authority("example.com", 443, false), "example.com:443");
        assert_eq!(authority("::1", 8080, false), "[::1]:8080");
        assert_eq!(authority("127.0.0.1", 9001, true), "127.0.0.1:9001");
    }
}
