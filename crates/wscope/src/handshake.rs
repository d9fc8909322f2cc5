//! Opening handshake glue over the core's sans-IO machines (`wscope_proto::handshake`): the
//! drivers only move bytes; parsing, validation and response building are the core's.
//!
//! A server decides with a callback that sees the [`Request`] (path, headers, offered
//! subprotocols) and returns an [`Accept`] (subprotocol, extra headers) or a [`Reject`]
//! (status, headers).

use wscope_proto::handshake::{
    ClientHandshake, Key, Limits, Progress, RequestBuilder, ResponseBuilder, ServerHandshake,
    UpgradeError as CoreError,
};
pub use wscope_proto::handshake::{Request, Response};

#[cfg(feature = "deflate")]
pub(crate) use wscope_proto::deflate::{DeflateParams, Offer};

use crate::config::{ClientConfig, ServerConfig};
use crate::error::{Error, HandshakeError, Result};
use crate::session::fill_random;

/// The application accepts the upgrade.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accept {
    /// The subprotocol chosen from the client's offer, if any.
    pub subprotocol: Option<String>,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
}

impl Accept {
    /// Accepts without a subprotocol.
    pub fn new() -> Self {
        Self::default()
    }

    /// Chooses `p` (must be one the client offered).
    pub fn subprotocol(mut self, p: impl Into<String>) -> Self {
        self.subprotocol = Some(p.into());
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The application refuses the upgrade with an HTTP status.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reject {
    /// The status (e.g. 403, 404).
    pub status: u16,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
}

impl Reject {
    /// Refuses with `status`.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Accepts every request, choosing no subprotocol.
pub fn accept_all(_: &Request) -> Result<Accept, Reject> {
    Ok(Accept::new())
}

/// Server side: the request reader with the configured limits.
pub(crate) fn server_machine(cfg: &ServerConfig) -> ServerHandshake {
    ServerHandshake::new(
        Limits::default()
            .max_head_len(cfg.max_header_size)
            .max_headers(cfg.max_headers),
    )
}

/// A refusal to write before closing, and the error to return.
pub(crate) type Refusal = (Vec<u8>, Error);

/// Feeds bytes to the server machine: `Ok(Some((request, leftover)))` when complete.
/// On a bad request, `Err` carries the refusal to write before closing: the error's status
/// with a one-line body that says why and that this is a WebSocket endpoint (what a browser
/// or `curl` pointed at the port shows), or nothing at all for a TLS client on a plain port,
/// which could not read it.
pub(crate) fn server_feed<'b>(
    hs: &mut ServerHandshake,
    bytes: &'b [u8],
) -> Result<Option<(Request, &'b [u8])>, Refusal> {
    match hs.feed(bytes) {
        Ok(Progress::NeedMore) => Ok(None),
        Ok(Progress::Done { head, leftover }) => Ok(Some((head, leftover))),
        Err(e) => Err((refusal(&e), Error::Handshake(HandshakeError::Proto(e)))),
    }
}

/// The response that refuses a bad request (see [`server_feed`]).
fn refusal(e: &CoreError) -> Vec<u8> {
    let mut out = Vec::new();
    if *e == CoreError::TlsClientHello {
        return out;
    }
    let body = format!(
        "{}: {e}.\nThis is a WebSocket endpoint (RFC 6455): connect with a WebSocket client, \
         e.g. wscope connect ws://HOST:PORT/\n",
        e.http_status()
    );
    let _ = ResponseBuilder::reject(e)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(body.as_bytes())
        .write(&mut out);
    out
}

/// Stand-ins for the core's permessage-deflate offer and parameters in a build without the
/// `deflate` feature: no value of them exists, so every deflate path is statically dead.
#[cfg(not(feature = "deflate"))]
mod no_deflate {
    /// No permessage-deflate offer can be made without the `deflate` feature.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Offer {}

    /// No permessage-deflate parameters can be agreed without the `deflate` feature.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum DeflateParams {}
}
#[cfg(not(feature = "deflate"))]
pub(crate) use no_deflate::{DeflateParams, Offer};

/// What a server agreed to in its `101`.
#[derive(Debug, Default)]
pub(crate) struct Agreed {
    /// The chosen subprotocol.
    pub(crate) subprotocol: Option<String>,
    /// The permessage-deflate parameters, when an offer was accepted.
    pub(crate) deflate: Option<DeflateParams>,
}

/// What the server answers a valid request with, before it is written: the application's
/// [`Accept`] and the permessage-deflate answer the core negotiated (the header value and
/// the parameters).
#[derive(Debug)]
pub(crate) struct Answer {
    /// The application's acceptance (subprotocol, extra headers).
    pub(crate) accept: Accept,
    /// The permessage-deflate answer, when an offer was accepted.
    pub(crate) deflate: Option<(String, DeflateParams)>,
}

impl Answer {
    /// Runs the application's decision on `req`; with `cfg.deflate` set, the first
    /// acceptable permessage-deflate offer is answered (the core's negotiation decides).
    pub(crate) fn decide<F>(req: &Request, cfg: &ServerConfig, decide: F) -> Result<Self, Reject>
    where
        F: FnOnce(&Request) -> Result<Accept, Reject>,
    {
        let accept = decide(req)?;
        #[cfg(feature = "deflate")]
        let deflate = match (&cfg.deflate, req.extensions()) {
            (Some(d), Ok(offers)) => d.negotiate(&offers),
            _ => None,
        };
        #[cfg(not(feature = "deflate"))]
        let deflate = {
            let _ = cfg;
            None
        };
        Ok(Self { accept, deflate })
    }

    /// The core's `101` for `req` with this answer.
    pub(crate) fn builder<'a>(&'a self, req: &'a Request) -> ResponseBuilder<'a> {
        let mut b = ResponseBuilder::accept(req);
        if let Some((value, _)) = &self.deflate {
            b = b.extensions(value);
        }
        if let Some(p) = &self.accept.subprotocol {
            b = b.subprotocol(p);
        }
        for (k, v) in &self.accept.headers {
            b = b.header(k, v);
        }
        b
    }

    /// What the connection runs with once the `101` is sent.
    pub(crate) fn agreed(self) -> Agreed {
        Agreed {
            subprotocol: self.accept.subprotocol,
            deflate: self.deflate.map(|(_, p)| p),
        }
    }
}

/// Runs the application's decision and writes the response: `Ok(agreed)` with the 101 in
/// `out`, or `Err` with the refusal in `out`. With `cfg.deflate` set, the first acceptable
/// permessage-deflate offer is answered (the core's negotiation decides).
pub(crate) fn server_respond<F>(
    req: &Request,
    cfg: &ServerConfig,
    decide: F,
    out: &mut Vec<u8>,
) -> Result<Agreed>
where
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    match Answer::decide(req, cfg, decide) {
        Ok(answer) => match answer.builder(req).write(out) {
            Ok(()) => Ok(answer.agreed()),
            Err(e) => {
                out.clear();
                let _ = ResponseBuilder::status(500, wscope_proto::handshake::reason_phrase(500))
                    .write(out);
                Err(Error::Handshake(HandshakeError::Build(e)))
            }
        },
        Err(reject) => {
            let mut b = ResponseBuilder::status(reject.status, refusal_phrase(reject.status));
            for (k, v) in &reject.headers {
                b = b.header(k, v);
            }
            if b.write(out).is_err() {
                out.clear();
                let _ = ResponseBuilder::status(500, wscope_proto::handshake::reason_phrase(500))
                    .write(out);
            }
            Err(Error::Handshake(HandshakeError::Rejected {
                status: reject.status,
            }))
        }
    }
}

/// Client side: the permessage-deflate offer `cfg` makes (none without the `deflate`
/// feature), and its `Sec-WebSocket-Extensions` value, for HTTP/1.1 and HTTP/2 alike.
pub(crate) fn client_offer(cfg: &ClientConfig) -> (Option<Offer>, Option<String>) {
    #[cfg(feature = "deflate")]
    {
        let offer = cfg.deflate.map(|d| d.client_offer());
        let value = offer.as_ref().map(Offer::to_header_value);
        (offer, value)
    }
    #[cfg(not(feature = "deflate"))]
    {
        let _ = cfg;
        (None, None)
    }
}

/// Client side: writes the request for `cfg` into `out` and returns the response reader, with
/// the permessage-deflate offer made (if any).
pub(crate) fn client_start(
    cfg: &ClientConfig,
    out: &mut Vec<u8>,
) -> Result<(ClientHandshake, Option<Offer>)> {
    let mut random = [0u8; 16];
    fill_random(&mut random)?;
    let key = Key::from_random(random);
    let mut req = RequestBuilder::new(&cfg.host, &cfg.path, key)
        .port(cfg.port)
        .secure(cfg.secure);
    if let Some(o) = &cfg.origin {
        req = req.origin(o);
    }
    for p in &cfg.subprotocols {
        req = req.subprotocol(p);
    }
    for (k, v) in &cfg.headers {
        req = req.header(k, v);
    }
    let (offer, offer_value) = client_offer(cfg);
    if let Some(v) = &offer_value {
        req = req.extensions(v);
    }
    let hs =
        ClientHandshake::new(&req, out).map_err(|e| Error::Handshake(HandshakeError::Build(e)))?;
    Ok((hs, offer))
}

/// Client side: what the server's `101` agreed to: its subprotocol, and the
/// permessage-deflate parameters (`None` when it declined or nothing was offered); a response
/// that breaks the offer is an error.
pub(crate) fn client_agreed(
    cfg: &ClientConfig,
    offer: Option<&Offer>,
    response: &Response,
) -> Result<Agreed> {
    let subprotocol = response.subprotocol().map(str::to_owned);
    #[cfg(feature = "deflate")]
    let deflate = client_deflate(cfg, offer, response)?;
    #[cfg(not(feature = "deflate"))]
    let deflate = {
        let _ = (cfg, offer);
        None
    };
    Ok(Agreed {
        subprotocol,
        deflate,
    })
}

/// Client side: the permessage-deflate parameters the server's `101` agreed to (`None` when
/// it declined or nothing was offered); a response that breaks the offer is an error.
#[cfg(feature = "deflate")]
fn client_deflate(
    cfg: &ClientConfig,
    offer: Option<&Offer>,
    response: &Response,
) -> Result<Option<DeflateParams>> {
    let (Some(wishes), Some(offer)) = (cfg.deflate, offer) else {
        return Ok(None);
    };
    let exts = response
        .extensions()
        .map_err(|e| Error::Handshake(HandshakeError::Proto(e)))?;
    wishes
        .negotiated(offer, &exts)
        .map_err(|e| Error::Handshake(HandshakeError::Deflate(e)))
}

/// Feeds response bytes: `Ok(Some((response, leftover)))` once the 101 is complete and valid.
pub(crate) fn client_feed<'b>(
    hs: &mut ClientHandshake,
    bytes: &'b [u8],
) -> Result<Option<(Response, &'b [u8])>> {
    match hs.feed(bytes) {
        Ok(Progress::NeedMore) => Ok(None),
        Ok(Progress::Done { head, leftover }) => Ok(Some((head, leftover))),
        Err(CoreError::UnexpectedStatus { status }) => {
            Err(Error::Handshake(HandshakeError::Status { status }))
        }
        Err(e) => Err(Error::Handshake(HandshakeError::Proto(e))),
    }
}

/// The reason phrase of a refusal: the core's table, `Refused` for a status it has none for.
pub(crate) fn refusal_phrase(status: u16) -> &'static str {
    match wscope_proto::handshake::reason_phrase(status) {
        "" => "Refused",
        p => p,
    }
}

/// Reads of a refused connection before it is closed anyway.
pub(crate) const REFUSAL_READS: u32 = 16;
/// How long a refused connection is drained after its write side was shut.
pub(crate) const REFUSAL_LINGER: core::time::Duration = core::time::Duration::from_millis(100);

/// The refusal policy every driver follows: write the response, shut the write side, then
/// read and drop what the client still sends, at most [`REFUSAL_READS`] reads within
/// [`REFUSAL_LINGER`], so that closing does not reset the connection before the client has
/// read the response. This type counts; the driver does the I/O.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RefusalDrain {
    reads: u32,
    until: std::time::Instant,
}

impl RefusalDrain {
    /// A drain that starts at `now` (the write side was just shut).
    pub(crate) fn new(now: std::time::Instant) -> Self {
        Self {
            reads: 0,
            until: now + REFUSAL_LINGER,
        }
    }

    /// When the drain ends at the latest.
    #[cfg(feature = "tokio")]
    pub(crate) const fn until(&self) -> std::time::Instant {
        self.until
    }

    /// How long the next read may wait; `None` once the time is up.
    #[cfg(any(test, feature = "blocking"))]
    pub(crate) fn time_left(&self, now: std::time::Instant) -> Option<core::time::Duration> {
        Some(self.until.saturating_duration_since(now)).filter(|d| !d.is_zero())
    }

    /// Records a read of `n` bytes (`0`: end of stream or an error): whether to read again.
    pub(crate) fn record(&mut self, n: usize) -> bool {
        self.reads += 1;
        n > 0 && self.reads < REFUSAL_READS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_take_their_phrase_from_the_core_table() {
        assert_eq!(refusal_phrase(408), "Request Timeout");
        assert_eq!(
            refusal_phrase(408),
            wscope_proto::handshake::reason_phrase(408)
        );
        assert_eq!(refusal_phrase(503), "Service Unavailable");
        assert_eq!(refusal_phrase(599), "Refused");
    }

    #[test]
    fn a_refusal_drain_stops_at_the_end_of_stream_or_after_its_reads() {
        let t = crate::session::Clock::now_std();
        let mut d = RefusalDrain::new(t);
        assert_eq!(d.time_left(t), Some(REFUSAL_LINGER));
        assert_eq!(d.time_left(t + REFUSAL_LINGER), None);
        assert!(!d.record(0));
        let mut d = RefusalDrain::new(t);
        let reads = (0..100).take_while(|_| d.record(10)).count();
        assert_eq!(reads + 1, REFUSAL_READS as usize);
    }
}
