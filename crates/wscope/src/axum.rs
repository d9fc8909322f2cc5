//! An axum 0.8 extractor for WebSocket upgrades (feature `axum`), with permessage-deflate.
//!
//! [`WebSocketUpgrade`] works as axum's own `ws::WebSocketUpgrade` does: take it as a
//! handler argument, set the subprotocols ([`WebSocketUpgrade::protocols`]) and limits, and
//! return [`WebSocketUpgrade::on_upgrade`]'s response; the callback gets a [`WebSocket`]
//! (the tokio driver: a `Stream` and `Sink` of [`crate::Message`]s) once the `101` is sent.
//! On top of axum's: compression ([`WebSocketUpgrade::compression`], RFC 7692, negotiated by
//! the core) and the core's handshake rules (a request that breaks RFC 6455 is refused with
//! 400 or 426, the reason in the body).
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use futures_util::{SinkExt, StreamExt};
//! use wscope::axum::{WebSocket, WebSocketUpgrade};
//! use wscope::DeflateConfig;
//!
//! async fn ws(upgrade: WebSocketUpgrade) -> axum::response::Response {
//!     upgrade
//!         .protocols(["chat"])
//!         .max_message_size(1 << 20)
//!         .compression(DeflateConfig::default())
//!         .on_upgrade(echo)
//! }
//!
//! async fn echo(mut ws: WebSocket) {
//!     while let Some(Ok(msg)) = ws.next().await {
//!         if msg.is_data() && ws.send(msg).await.is_err() {
//!             break;
//!         }
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = Router::new().route("/ws", get(ws));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

use core::future::Future;
use core::time::Duration;
use std::borrow::Cow;

use ::hyper::upgrade::OnUpgrade;
use axum_core::body::Body;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use wscope_proto::handshake::Request as CoreRequest;

#[cfg(feature = "deflate")]
use crate::config::{DeflateConfig, DeflateOptions};
use crate::config::{ServerConfig, WsConfig};
use crate::error::Error;
use crate::handshake::Accept;
use crate::hyper::{core_request, prepare, HyperWebSocket, UpgradeRejection};

/// The connection [`WebSocketUpgrade::on_upgrade`] hands to its callback.
pub type WebSocket = HyperWebSocket;

/// The extractor's rejection: why the request cannot be upgraded, answered with its status
/// (400, 426) and the reason as the body.
pub type WebSocketUpgradeRejection = UpgradeRejection;

impl IntoResponse for UpgradeRejection {
    fn into_response(self) -> Response {
        self.into_http_response::<Body>()
    }
}

/// What happens when the connection fails between the `101` and the callback (the client
/// went away): see [`WebSocketUpgrade::on_failed_upgrade`].
pub trait OnFailedUpgrade: Send + 'static {
    /// Called with the error.
    fn call(self, error: Error);
}

impl<F> OnFailedUpgrade for F
where
    F: FnOnce(Error) + Send + 'static,
{
    fn call(self, error: Error) {
        self(error);
    }
}

/// The default [`OnFailedUpgrade`]: the failure is dropped.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct DefaultOnFailedUpgrade;

impl OnFailedUpgrade for DefaultOnFailedUpgrade {
    fn call(self, _error: Error) {}
}

/// An axum extractor that upgrades the request to a WebSocket; the request was checked by
/// the core when it was extracted (a rejection answers 400 or 426).
///
/// The connection's settings start from [`ServerConfig::default`] (64 MiB messages, no
/// compression, no idle timeout) and change with the builder methods.
pub struct WebSocketUpgrade<F = DefaultOnFailedUpgrade> {
    request: CoreRequest,
    on_upgrade: OnUpgrade,
    config: ServerConfig,
    selected: Option<String>,
    on_failed_upgrade: F,
}

impl<F> core::fmt::Debug for WebSocketUpgrade<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("target", &self.request.target())
            .field("config", &self.config)
            .field("selected", &self.selected)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade<DefaultOnFailedUpgrade> {
    type Rejection = WebSocketUpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let request = core_request(&parts.method, &parts.uri, parts.version, &parts.headers)?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(UpgradeRejection::NotUpgradable)?;
        Ok(Self {
            request,
            on_upgrade,
            config: ServerConfig::default(),
            selected: None,
            on_failed_upgrade: DefaultOnFailedUpgrade,
        })
    }
}

impl<F: OnFailedUpgrade> WebSocketUpgrade<F> {
    /// The subprotocols this endpoint speaks: the first one the client offers (in the
    /// client's order) that is in `protocols` is chosen and sent back in the `101`; none
    /// chosen when they have none in common.
    #[must_use]
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Cow<'static, str>>,
    {
        let known: Vec<Cow<'static, str>> = protocols.into_iter().map(Into::into).collect();
        self.selected = self
            .request
            .subprotocols()
            .find(|offered| known.iter().any(|k| k == offered))
            .map(str::to_owned);
        self
    }

    /// The subprotocol chosen by [`Self::protocols`].
    pub fn selected_protocol(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    /// The subprotocols the client offered, in its order.
    pub fn requested_protocols(&self) -> impl Iterator<Item = &str> + '_ {
        self.request.subprotocols()
    }

    /// The request as the core checked it (target, headers, offers).
    pub fn request(&self) -> &CoreRequest {
        &self.request
    }

    /// The largest message accepted (1009 beyond); 64 MiB by default.
    #[must_use]
    pub fn max_message_size(mut self, max: usize) -> Self {
        self.config.ws.max_message_len = max as u64;
        self
    }

    /// The largest frame accepted (1009 beyond); 64 MiB by default.
    #[must_use]
    pub fn max_frame_size(mut self, max: usize) -> Self {
        self.config.ws.max_frame_len = max as u64;
        self
    }

    /// Accepts permessage-deflate offers (RFC 7692) with these settings (context takeover,
    /// window sizes); the core negotiates and compresses. Off by default.
    /// Feature `deflate`.
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn compression(mut self, deflate: DeflateConfig) -> Self {
        self.config.deflate = Some(deflate);
        self
    }

    /// Compression level, size threshold and memLevel once deflate is agreed. Feature
    /// `deflate`.
    #[cfg(feature = "deflate")]
    #[must_use]
    pub fn compression_options(mut self, options: DeflateOptions) -> Self {
        self.config.deflate_options = options;
        self
    }

    /// Closes the connection (1001) when nothing arrives for `timeout`.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = Some(timeout);
        self
    }

    /// All the connection's limits and behaviour at once (frame and message sizes, close
    /// timeout, keepalive pings).
    #[must_use]
    pub fn ws_config(mut self, ws: WsConfig) -> Self {
        self.config.ws = ws;
        self
    }

    /// A whole server configuration (its `ws`, `deflate`, `deflate_options` and
    /// `idle_timeout` are used; TLS and the handshake's own limits are axum's business).
    #[must_use]
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// What to do when the connection fails between the `101` and the callback.
    pub fn on_failed_upgrade<C: OnFailedUpgrade>(self, callback: C) -> WebSocketUpgrade<C> {
        WebSocketUpgrade {
            request: self.request,
            on_upgrade: self.on_upgrade,
            config: self.config,
            selected: self.selected,
            on_failed_upgrade: callback,
        }
    }

    /// Answers the request with `101 Switching Protocols` and runs `callback` with the
    /// connection, in a task of its own, once hyper has handed it over.
    pub fn on_upgrade<C, Fut>(self, callback: C) -> Response
    where
        C: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let selected = self.selected;
        let decide = move |_: &CoreRequest| {
            Ok(match selected {
                Some(p) => Accept::new().subprotocol(p),
                None => Accept::new(),
            })
        };
        match prepare(&self.request, Some(self.on_upgrade), &self.config, decide) {
            Ok((response, upgraded)) => {
                let on_failed = self.on_failed_upgrade;
                tokio::spawn(async move {
                    match upgraded.await {
                        Ok(ws) => callback(ws).await,
                        Err(e) => on_failed.call(e),
                    }
                });
                response.map(|_| Body::empty())
            }
            Err(e) => e.into_response(),
        }
    }
}
