//! WebSocket upgrades inside a hyper 1.x server (feature `hyper`).
//!
//! hyper parses the HTTP request; [`upgrade`] hands its method, target, version and header
//! fields to the core ([`wscope_proto::handshake::Request::from_parts`]: nothing is parsed
//! again), which checks them by the same rules as a request read from a socket (400, 426).
//! The application decides as with the other drivers ([`upgrade_with`]: subprotocol, extra
//! headers, or a refusal), permessage-deflate is negotiated by the core when
//! [`ServerConfig::deflate`] is set, and the `101` goes back as an `http::Response` for the
//! service to return. The [`UpgradeFut`] resolves, once hyper has sent the `101`, to a
//! [`HyperWebSocket`]: the tokio driver's [`WebSocketStream`] over hyper's upgraded
//! connection.
//!
//! ```no_run
//! use http_body_util::Full;
//! use hyper::body::{Bytes, Incoming};
//! use hyper::{Request, Response};
//!
//! async fn service(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
//!     match wscope::hyper::upgrade(&mut req) {
//!         Ok((response, ws)) => {
//!             tokio::spawn(async move {
//!                 use futures_util::{SinkExt, StreamExt};
//!                 let mut ws = ws.await?;
//!                 while let Some(msg) = ws.next().await {
//!                     let msg = msg?;
//!                     if msg.is_data() {
//!                         ws.send(msg).await?;
//!                     }
//!                 }
//!                 Ok::<_, wscope::Error>(())
//!             });
//!             // The 101 has no body: give it the service's body type.
//!             Ok(response.map(|_| Full::default()))
//!         }
//!         // 400 or 426, with the reason in the body.
//!         Err(e) => Ok(e.into_http_response()),
//!     }
//! }
//! ```
//!
//! hyper must be told to keep the connection for the upgrade:
//! `hyper::server::conn::http1::Builder::new().serve_connection(io, service).with_upgrades()`.
//!
//! With feature `http2` as well, the same [`upgrade`] / [`upgrade_with`] accept WebSocket
//! over HTTP/2 (RFC 8441) from a hyper HTTP/2 server built with
//! `hyper::server::conn::http2::Builder::new(exec).enable_connect_protocol()`: an extended
//! CONNECT is checked by the core ([`wscope_proto::handshake::ExtendedConnect`]; 400, or 501
//! for a `:protocol` other than `websocket`), `decide` sees it as a [`CoreRequest`] (target
//! `:path`, `Host` `:authority`), and the answer is a `200` whose stream hyper hands over as
//! the upgraded connection, with the same [`UpgradeFut`].

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{ready, Context, Poll};

use ::hyper::upgrade::{OnUpgrade, Upgraded};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode, Uri, Version};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use wscope_proto::handshake::{
    BuildError, Request as CoreRequest, UpgradeError as CoreError, ACCEPT, CONNECTION, EXTENSIONS,
    PROTOCOL, UPGRADE, VERSION, WEBSOCKET_VERSION,
};
use wscope_proto::Role;

use crate::config::{DeflateOptions, ServerConfig, WsConfig};
use crate::error::{Error, Result};
use crate::handshake::{accept_all, refusal_phrase, Accept, Agreed, Answer, Reject};
use crate::session::{Session, SessionOptions};
use crate::tokio::WebSocketStream;

/// A server connection upgraded by hyper: the tokio driver over hyper's `Upgraded`.
pub type HyperWebSocket = WebSocketStream<TokioIo<Upgraded>>;

/// The `101` response body: none.
pub type UpgradeBody = Empty<::hyper::body::Bytes>;

/// Why a request cannot be upgraded, with the HTTP status to answer it with
/// ([`UpgradeRejection::status`]); [`UpgradeRejection::into_http_response`] builds that response.
#[derive(Debug)]
#[non_exhaustive]
pub enum UpgradeRejection {
    /// The request is not a valid WebSocket upgrade: the core's verdict, with its status
    /// (400, or 426 for a missing or unsupported `Sec-WebSocket-Version`).
    Invalid(CoreError),
    /// The connection cannot switch protocols: the request did not come through a hyper
    /// server with upgrades enabled (`serve_connection(..).with_upgrades()`), or it came
    /// over HTTP/2 without extended CONNECT (RFC 8441; accepted with feature `http2`).
    /// Answered with 426.
    NotUpgradable,
    /// The application refused the request ([`upgrade_with`]'s `decide`).
    Rejected(Reject),
    /// The `101` cannot be written as the application asked (a subprotocol the client did
    /// not offer, a header the server writes itself, a forbidden character). Answered with
    /// 500.
    Build(BuildError),
    /// An HTTP/2 extended CONNECT (RFC 8441) breaks the core's rules: 400, or 501 for an
    /// unsupported `:protocol` (feature `http2`).
    InvalidConnect(wscope_proto::handshake::ConnectError),
}

impl UpgradeRejection {
    /// The HTTP status this failure is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid(e) => e.http_status(),
            Self::NotUpgradable => 426,
            Self::Rejected(r) => r.status,
            Self::Build(_) => 500,
            Self::InvalidConnect(e) => e.http_status(),
        }
    }

    /// The response for this failure: its status, `Sec-WebSocket-Version: 13` with 426, the
    /// application's headers for a refusal, and a one-line `text/plain` body saying why.
    pub fn into_http_response<B: From<String>>(self) -> Response<B> {
        let status = self.status();
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = format!("{} {}: {self}\n", code.as_u16(), refusal_phrase(status));
        let mut response = Response::new(B::from(body));
        *response.status_mut() = code;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if status == 426 {
            headers.insert(VERSION, HeaderValue::from_static(WEBSOCKET_VERSION));
        }
        if let Self::InvalidConnect(e) = &self {
            for (k, v) in e.response_fields() {
                headers.insert(*k, HeaderValue::from_static(v));
            }
        }
        if let Self::Rejected(r) = self {
            for (k, v) in r.headers {
                if let (Ok(k), Ok(v)) = (
                    HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(&v),
                ) {
                    headers.append(k, v);
                }
            }
        }
        response
    }
}

impl fmt::Display for UpgradeRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "not a valid WebSocket upgrade: {e}"),
            Self::NotUpgradable => {
                f.write_str("this connection cannot be upgraded to a WebSocket (HTTP/1.1 only)")
            }
            Self::Rejected(r) => write!(f, "the upgrade was refused with HTTP {}", r.status),
            Self::Build(e) => write!(f, "cannot build the 101 response: {e}"),
            Self::InvalidConnect(e) => write!(f, "not a valid WebSocket extended CONNECT: {e}"),
        }
    }
}

impl core::error::Error for UpgradeRejection {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Invalid(e) => Some(e),
            Self::Build(e) => Some(e),
            Self::InvalidConnect(e) => Some(e),
            Self::NotUpgradable | Self::Rejected(_) => None,
        }
    }
}

impl From<UpgradeRejection> for Error {
    fn from(e: UpgradeRejection) -> Self {
        use crate::error::HandshakeError;
        Self::Handshake(match e {
            UpgradeRejection::Invalid(e) => HandshakeError::Proto(e),
            UpgradeRejection::NotUpgradable => {
                HandshakeError::Config("the connection cannot be upgraded")
            }
            UpgradeRejection::Rejected(r) => HandshakeError::Rejected { status: r.status },
            UpgradeRejection::Build(e) => HandshakeError::Build(e),
            UpgradeRejection::InvalidConnect(e) => HandshakeError::Connect(e),
        })
    }
}

/// Whether `req` asks for a WebSocket upgrade (`Upgrade: websocket`, `Connection: upgrade`;
/// with feature `http2`, also an HTTP/2 `CONNECT` with `:protocol websocket`): lets one route
/// serve both plain HTTP and WebSocket clients.
pub fn is_upgrade_request<B>(req: &http::Request<B>) -> bool {
    #[cfg(feature = "http2")]
    if req.method() == Method::CONNECT {
        return req
            .extensions()
            .get::<::hyper::ext::Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"));
    }
    has_token(req.headers(), http::header::UPGRADE, "websocket")
        && has_token(req.headers(), http::header::CONNECTION, "upgrade")
}

fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .any(|v| wscope_proto::handshake::has_token(v.as_bytes(), token))
}

/// Upgrades `req` with the default [`ServerConfig`], accepting it whatever it asks (no
/// subprotocol, no compression). See [`upgrade_with`].
pub fn upgrade<B>(
    req: &mut http::Request<B>,
) -> core::result::Result<(Response<UpgradeBody>, UpgradeFut), UpgradeRejection> {
    upgrade_with(req, &ServerConfig::default(), accept_all)
}

/// Upgrades `req`: the core checks it (an error carries the status to answer, 400 or 426),
/// `decide` sees the checked request and accepts it (subprotocol, extra headers) or refuses
/// it (status), permessage-deflate is negotiated when [`ServerConfig::deflate`] is set. The
/// `101` response is returned for the service to send, with a future of the connection;
/// the connection's limits and timers are `cfg`'s ([`ServerConfig::ws`],
/// [`ServerConfig::idle_timeout`], [`ServerConfig::deflate_options`]). hyper's own limits
/// apply to the request head; [`ServerConfig::handshake_timeout`] and TLS are the server's
/// business and not used here.
///
/// Takes hyper's upgrade handle out of the request's extensions: call it once per request.
pub fn upgrade_with<B, F>(
    req: &mut http::Request<B>,
    cfg: &ServerConfig,
    decide: F,
) -> core::result::Result<(Response<UpgradeBody>, UpgradeFut), UpgradeRejection>
where
    F: FnOnce(&CoreRequest) -> core::result::Result<Accept, Reject>,
{
    #[cfg(feature = "http2")]
    if req.version() == Version::HTTP_2 && req.method() == Method::CONNECT {
        return h2::upgrade(req, cfg, decide);
    }
    let request = core_request(req.method(), req.uri(), req.version(), req.headers())?;
    prepare(
        &request,
        req.extensions_mut().remove::<OnUpgrade>(),
        cfg,
        decide,
    )
}

/// The request as the core sees it, checked by the core's rules.
pub(crate) fn core_request(
    method: &Method,
    uri: &Uri,
    version: Version,
    headers: &HeaderMap,
) -> core::result::Result<CoreRequest, UpgradeRejection> {
    let minor = match version {
        Version::HTTP_11 => 1,
        Version::HTTP_10 | Version::HTTP_09 => 0,
        // HTTP/2 and HTTP/3 upgrade with extended CONNECT (RFC 8441, RFC 9220).
        _ => return Err(UpgradeRejection::NotUpgradable),
    };
    // The target as sent: origin form (path and query), or the whole URI when it was sent
    // in absolute form.
    let target = match (uri.scheme(), uri.path_and_query()) {
        (None, Some(pq)) => pq.as_str().to_owned(),
        (None, None) => "/".to_owned(),
        (Some(_), _) => uri.to_string(),
    };
    let fields = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    let request = CoreRequest::from_parts(method.as_str(), &target, minor, fields);
    request.validate().map_err(UpgradeRejection::Invalid)?;
    Ok(request)
}

/// Decides on a checked request and builds the `101` and the future of the connection.
pub(crate) fn prepare<F>(
    request: &CoreRequest,
    on_upgrade: Option<OnUpgrade>,
    cfg: &ServerConfig,
    decide: F,
) -> core::result::Result<(Response<UpgradeBody>, UpgradeFut), UpgradeRejection>
where
    F: FnOnce(&CoreRequest) -> core::result::Result<Accept, Reject>,
{
    let on_upgrade = on_upgrade.ok_or(UpgradeRejection::NotUpgradable)?;
    let answer = Answer::decide(request, cfg, decide).map_err(UpgradeRejection::Rejected)?;
    let response = switching_response(request, &answer)?;
    Ok((response, UpgradeFut::new(on_upgrade, cfg, answer)))
}

/// The `101` for `request` with `answer`: the core's builder checks it (a subprotocol the
/// client offered, no header the server writes itself, valid characters), then the same
/// fields go into an `http::Response`.
fn switching_response(
    request: &CoreRequest,
    answer: &Answer,
) -> core::result::Result<Response<UpgradeBody>, UpgradeRejection> {
    let mut checked = Vec::with_capacity(256);
    answer
        .builder(request)
        .write(&mut checked)
        .map_err(UpgradeRejection::Build)?;
    let accept = request
        .expected_accept()
        .ok_or(UpgradeRejection::Build(BuildError::MissingKey))?;
    let value = |v: &str| {
        HeaderValue::from_str(v).map_err(|_| {
            UpgradeRejection::Build(BuildError::InvalidField {
                field: "header value",
            })
        })
    };
    let mut response = Response::new(Empty::new());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(ACCEPT, value(accept.as_str())?);
    if let Some(p) = &answer.accept.subprotocol {
        headers.insert(PROTOCOL, value(p)?);
    }
    if let Some((ext, _)) = &answer.deflate {
        headers.insert(EXTENSIONS, value(ext)?);
    }
    for (k, v) in &answer.accept.headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
            UpgradeRejection::Build(BuildError::InvalidField {
                field: "header name",
            })
        })?;
        headers.append(name, value(v)?);
    }
    Ok(response)
}

/// RFC 8441 extended CONNECT through hyper's HTTP/2 server (feature `http2`).
#[cfg(feature = "http2")]
mod h2 {
    use http::header::{HeaderName, HeaderValue};
    use http::{Response, StatusCode};
    use http_body_util::Empty;
    use wscope_proto::handshake::{ExtendedConnect, PseudoHeaders, Request as CoreRequest};

    use super::{UpgradeBody, UpgradeFut, UpgradeRejection};
    use crate::config::ServerConfig;
    use crate::handshake::{Accept, Answer, Reject};

    /// Checks the extended CONNECT, decides, and builds the `200` and the future of the
    /// stream (hyper hands a CONNECT stream over as an upgrade once the 2xx is sent).
    pub(super) fn upgrade<B, F>(
        req: &mut http::Request<B>,
        cfg: &ServerConfig,
        decide: F,
    ) -> Result<(Response<UpgradeBody>, UpgradeFut), UpgradeRejection>
    where
        F: FnOnce(&CoreRequest) -> Result<Accept, Reject>,
    {
        let connect = {
            let protocol = req.extensions().get::<::hyper::ext::Protocol>();
            let uri = req.uri();
            let mut pseudo = PseudoHeaders::default();
            pseudo.method = Some(req.method().as_str());
            pseudo.protocol = protocol.map(::hyper::ext::Protocol::as_str);
            pseudo.scheme = uri.scheme_str();
            pseudo.authority = uri.authority().map(http::uri::Authority::as_str);
            pseudo.path = uri.path_and_query().map(http::uri::PathAndQuery::as_str);
            let fields = req
                .headers()
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes()));
            ExtendedConnect::from_parts(pseudo, fields)
        };
        connect
            .validate()
            .map_err(UpgradeRejection::InvalidConnect)?;
        let on_upgrade = req
            .extensions_mut()
            .remove::<::hyper::upgrade::OnUpgrade>()
            .ok_or(UpgradeRejection::NotUpgradable)?;
        let answer =
            Answer::decide(connect.request(), cfg, decide).map_err(UpgradeRejection::Rejected)?;
        let deflate = answer.deflate.as_ref().map(|(value, _)| value.as_str());
        let fields = connect
            .response_fields(answer.accept.subprotocol.as_deref(), deflate)
            .map_err(UpgradeRejection::Build)?;
        let mut response = Response::new(Empty::new());
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        let invalid = |field| {
            UpgradeRejection::Build(wscope_proto::handshake::BuildError::InvalidField { field })
        };
        for (name, value) in &fields {
            headers.append(
                *name,
                HeaderValue::from_str(value).map_err(|_| invalid("header value"))?,
            );
        }
        for (k, v) in &answer.accept.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| invalid("header name"))?;
            headers.append(
                name,
                HeaderValue::from_str(v).map_err(|_| invalid("header value"))?,
            );
        }
        Ok((response, UpgradeFut::new(on_upgrade, cfg, answer)))
    }
}

/// What the connection is opened with once hyper hands it over.
#[derive(Debug)]
struct Open {
    ws: WsConfig,
    idle: Option<core::time::Duration>,
    agreed: Agreed,
    deflate_options: DeflateOptions,
}

/// The connection after the `101`: resolves once hyper has sent the response and handed
/// the connection over (an error when the client went away first). Drive it in a task of
/// its own (`tokio::spawn`), after returning the response to hyper.
#[must_use = "the upgraded connection is only there once this future is awaited"]
pub struct UpgradeFut {
    on_upgrade: OnUpgrade,
    open: Option<Open>,
}

impl UpgradeFut {
    /// The future of the connection `answer` accepted, opened with `cfg`'s settings.
    fn new(on_upgrade: OnUpgrade, cfg: &ServerConfig, answer: Answer) -> Self {
        Self {
            on_upgrade,
            open: Some(Open {
                ws: cfg.ws,
                idle: cfg.idle_timeout,
                agreed: answer.agreed(),
                deflate_options: cfg.session_deflate_options(),
            }),
        }
    }
}

impl fmt::Debug for UpgradeFut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeFut")
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl Future for UpgradeFut {
    type Output = Result<HyperWebSocket>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let upgraded = ready!(Pin::new(&mut this.on_upgrade).poll(cx));
        let Some(open) = this.open.take() else {
            return Poll::Ready(Err(Error::AlreadyClosed));
        };
        let upgraded = upgraded.map_err(|e| Error::Io(std::io::Error::other(e)))?;
        // hyper hands over the bytes it read past the request head through `Upgraded`'s
        // reads: nothing is left over here.
        let opts = SessionOptions::new(open.ws, open.idle, open.deflate_options);
        let session = Session::open(Role::Server, opts, &[], open.agreed);
        Poll::Ready(Ok(WebSocketStream::with_session(
            TokioIo::new(upgraded),
            session,
        )))
    }
}
