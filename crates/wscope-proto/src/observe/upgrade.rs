//! [`Upgrade`]: what the request and the `101` response of an established WebSocket upgrade
//! said.

use crate::handshake::{AcceptKey, Request, Response, ACCEPT, PERMESSAGE_DEFLATE};

/// What both heads of a WebSocket upgrade said: Zeek's `WebSocket::Info` fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgrade {
    pub(super) request: Option<Request>,
    pub(super) response: Response,
    /// Whether the client accepts the answer ([`Upgrade::accepted`]), decided once when the
    /// upgrade is made.
    pub(super) accepted: bool,
    /// A WebSocket over an HTTP/2 stream (RFC 8441).
    pub(super) http2: bool,
}

impl Upgrade {
    /// The upgrade of a WebSocket over HTTP/2 (RFC 8441): the extended CONNECT's request view
    /// ([`crate::handshake::ExtendedConnect::request`]) and the server's 2xx answer
    /// ([`Response::from_parts`]); `accepted` is whether the answer passes
    /// [`crate::handshake::ExtendedConnect::check_response`] (there is no
    /// `Sec-WebSocket-Accept` to check in HTTP/2).
    pub const fn http2(request: Request, response: Response, accepted: bool) -> Self {
        Self {
            request: Some(request),
            response,
            accepted,
            http2: true,
        }
    }

    /// The upgrade of an HTTP/1.1 connection by a `101` (to `request`, when the observer saw
    /// it); `accepted`: the response has none of the problems [`Response::problems_for`] the
    /// request (without it, [`Response::problems_without_request`]) finds.
    pub(super) const fn http1(
        request: Option<Request>,
        response: Response,
        accepted: bool,
    ) -> Self {
        Self {
            request,
            response,
            accepted,
            http2: false,
        }
    }

    /// Whether this is a WebSocket over an HTTP/2 stream ([`Upgrade::http2`]).
    pub const fn is_http2(&self) -> bool {
        self.http2
    }

    /// The request the `101` answered (none when the observer saw none).
    pub const fn request(&self) -> Option<&Request> {
        self.request.as_ref()
    }

    /// The `101` response.
    pub const fn response(&self) -> &Response {
        &self.response
    }

    /// The request's `Host`.
    pub fn host(&self) -> Option<&str> {
        self.request.as_ref()?.host()
    }

    /// The request target (Zeek's `uri`).
    pub fn uri(&self) -> Option<&str> {
        self.request.as_ref().map(Request::target)
    }

    /// The request's `User-Agent`.
    pub fn user_agent(&self) -> Option<&str> {
        self.request.as_ref()?.user_agent()
    }

    /// The subprotocols the client offered, in order (Zeek's `client_protocols`).
    pub fn client_protocols(&self) -> impl Iterator<Item = &str> + '_ {
        self.request.iter().flat_map(Request::subprotocols)
    }

    /// The subprotocol the server chose (Zeek's `subprotocol`).
    pub fn subprotocol(&self) -> Option<&str> {
        self.response.subprotocol()
    }

    /// The extensions the client offered, one list element each, parameters included (Zeek's
    /// `client_extensions`).
    pub fn client_extensions(&self) -> impl Iterator<Item = &str> + '_ {
        self.request.iter().flat_map(Request::extension_elements)
    }

    /// The extensions the server accepted (Zeek's `server_extensions`).
    pub fn server_extensions(&self) -> impl Iterator<Item = &str> + '_ {
        self.response.extension_elements()
    }

    /// `Sec-WebSocket-Key` (Zeek's `client_key`).
    pub fn client_key(&self) -> Option<&str> {
        self.request.as_ref()?.key()
    }

    /// `Sec-WebSocket-Accept` (Zeek's `server_accept`).
    pub fn server_accept(&self) -> Option<&str> {
        self.response.accept()
    }

    /// The accept value the key calls for.
    pub fn expected_accept(&self) -> Option<AcceptKey> {
        self.request.as_ref()?.expected_accept()
    }

    /// Whether the accept value matches the key (`None` when either is missing).
    pub fn accept_matches(&self) -> Option<bool> {
        let found = self.response.headers().get(ACCEPT)?;
        Some(self.expected_accept()?.matches(found))
    }

    /// Whether a client following RFC 6455 §4.1 accepts this `101`: the response passes
    /// [`Response::validate_for`] the request (exactly one `Sec-WebSocket-Accept`, matching the
    /// key; `Upgrade` and `Connection`; at most one subprotocol, one the client offered; only
    /// extensions it offered). Without the request (the observer saw none), the checks that
    /// need no request: one `Sec-WebSocket-Accept`, `Upgrade`, `Connection`, well-formed
    /// subprotocol and extension headers.
    ///
    /// A rejected upgrade is no WebSocket session: a conforming client fails the connection
    /// (RFC 6455 §4.1) instead of sending frames.
    ///
    /// Over HTTP/2, the verdict given to [`Upgrade::http2`]. Worked out once, when the
    /// upgrade is made (the checks hash the key and read every header).
    pub const fn accepted(&self) -> bool {
        self.accepted
    }

    /// Whether the server accepted permessage-deflate (RSV1 is then allowed on data frames).
    pub fn permessage_deflate(&self) -> bool {
        self.response.extensions().is_ok_and(|exts| {
            exts.iter()
                .any(|e| e.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE))
        })
    }

    /// What the observer inflates with: the parameters of the response ([`Self::deflate_params`];
    /// none when they do not parse: the messages are then reported compressed).
    #[cfg(feature = "deflate")]
    pub(super) fn agreed_deflate(&self) -> Option<crate::deflate::DeflateParams> {
        self.deflate_params()
    }

    /// What the observer inflates with (nothing without feature `deflate`).
    #[cfg(not(feature = "deflate"))]
    pub(super) fn agreed_deflate(&self) -> Option<super::DeflateParams> {
        None
    }

    /// The permessage-deflate parameters the server's response agreed to, for inflating each
    /// direction passively (`None`: not negotiated, or a response that does not parse).
    /// Only context takeover matters to a passive inflater: it always inflates with the
    /// largest window.
    #[cfg(feature = "deflate")]
    pub fn deflate_params(&self) -> Option<crate::deflate::DeflateParams> {
        let exts = self.response.extensions().ok()?;
        let ext = exts
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE))?;
        let o = crate::deflate::Offer::from_extension(ext).ok()?;
        Some(crate::deflate::DeflateParams {
            server_no_context_takeover: o.server_no_context_takeover,
            client_no_context_takeover: o.client_no_context_takeover,
            server_max_window_bits: o.server_max_window_bits.unwrap_or(15),
            client_max_window_bits: o.client_max_window_bits.flatten().unwrap_or(15),
        })
    }
}
