//! The client side of the handshake: write the request, then read and check the response.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::error::{BuildError, UpgradeError};
use super::header::{feed_head, parse_extensions, HeadBuffer};
use super::request::RequestBuilder;
use super::response::{Offer, Response};
use super::{AcceptKey, Key, Limits, Progress};

/// A client's opening handshake, sans-IO: [`ClientHandshake::new`] writes the request into the
/// caller's buffer; [`ClientHandshake::feed`] takes the bytes read back, in any split, until the
/// response is complete and checked.
///
/// The response must be `101` with `Upgrade: websocket`, `Connection: upgrade`, the
/// `Sec-WebSocket-Accept` matching the key, at most one subprotocol and only one that was
/// offered, and only extensions that were offered. Any other status is
/// [`UpgradeError::UnexpectedStatus`] (redirects and authentication are the caller's
/// business: the error carries the status).
///
/// ```
/// use wscope_proto::handshake::{ClientHandshake, UpgradeError, Key, Progress, RequestBuilder};
///
/// let req = RequestBuilder::new("example.com", "/", Key::from_random(*b"the sample nonce"));
/// let mut out = Vec::new();
/// let mut hs = ClientHandshake::new(&req, &mut out).unwrap();
/// let reply = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
///               Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x02hi";
/// // One byte at a time, as a slow server would send it: the head ends 4 bytes before the
/// // end; those 4 bytes (a text frame) are the WebSocket stream's first bytes.
/// let mut i = 0;
/// let resp = loop {
///     match hs.feed(&reply[i..i + 1]).unwrap() {
///         Progress::NeedMore => i += 1,
///         Progress::Done { head, leftover } => {
///             assert!(leftover.is_empty()); // that read ended with the head
///             break head;
///         }
///     }
/// };
/// assert_eq!((resp.status(), &reply[i + 1..]), (101, &b"\x81\x02hi"[..]));
/// assert_eq!(hs.feed(b"x"), Err(UpgradeError::AlreadyComplete));
/// ```
#[derive(Clone, Debug)]
pub struct ClientHandshake {
    key: Key,
    accept: AcceptKey,
    subprotocols: Vec<String>,
    extensions: Vec<String>,
    limits: Limits,
    head: HeadBuffer,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Reading,
    Done,
    Failed(UpgradeError),
}

impl ClientHandshake {
    /// Writes `request` into `out` and returns the state machine waiting for the response,
    /// with the default [`Limits`].
    pub fn new(request: &RequestBuilder<'_>, out: &mut Vec<u8>) -> Result<Self, BuildError> {
        request.write(out)?;
        let extensions = request
            .offered_extensions()
            .and_then(|e| parse_extensions(e.as_bytes()).ok())
            .unwrap_or_default()
            .iter()
            .map(|e| e.name.to_string())
            .collect();
        Ok(Self {
            key: request.key(),
            accept: request.key().accept(),
            subprotocols: request
                .offered_subprotocols()
                .iter()
                .map(|p| p.to_string())
                .collect(),
            extensions,
            limits: Limits::default(),
            head: HeadBuffer::default(),
            state: State::Reading,
        })
    }

    /// Sets the size limits for the response head.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The key sent.
    pub const fn key(&self) -> Key {
        self.key
    }

    /// The `Sec-WebSocket-Accept` value the server must answer with.
    pub const fn expected_accept(&self) -> AcceptKey {
        self.accept
    }

    /// Whether the response has been received and accepted.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes the next bytes read from the server.
    ///
    /// `NeedMore` until the response head is complete; then `Done` with the checked response
    /// and the bytes of this read that follow it (the first WebSocket frames). After an error
    /// the same error comes back on every call; after `Done`, [`UpgradeError::AlreadyComplete`].
    pub fn feed<'b>(&mut self, bytes: &'b [u8]) -> Result<Progress<'b, Response>, UpgradeError> {
        match self.state {
            State::Reading => {}
            State::Done => return Err(UpgradeError::AlreadyComplete),
            State::Failed(e) => return Err(e),
        }
        let result = self.read(bytes);
        match &result {
            Ok(Progress::NeedMore) => {}
            Ok(Progress::Done { .. }) => self.state = State::Done,
            Err(e) => self.state = State::Failed(*e),
        }
        result
    }

    fn read<'b>(&mut self, bytes: &'b [u8]) -> Result<Progress<'b, Response>, UpgradeError> {
        let Some((response, leftover)) =
            feed_head(&mut self.head, bytes, &self.limits, Response::from_head)?
        else {
            return Ok(Progress::NeedMore);
        };
        let protocol = |p: &[u8]| self.subprotocols.iter().any(|o| o.as_bytes() == p);
        let extension = |name: &str| self.extensions.iter().any(|o| o.eq_ignore_ascii_case(name));
        let offer = Offer {
            accept: Some(self.accept),
            protocol: &protocol,
            extension: &extension,
        };
        let mut first = None;
        response.check(&offer, &mut |e| {
            first.get_or_insert(e);
        });
        match first {
            Some(e) => Err(e),
            None => Ok(Progress::Done {
                head: response,
                leftover,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::ACCEPT;

    fn start(builder: RequestBuilder<'_>) -> ClientHandshake {
        let mut out = Vec::new();
        ClientHandshake::new(&builder, &mut out).unwrap()
    }

    fn rfc_client() -> ClientHandshake {
        start(
            RequestBuilder::new(
                "server.example.com",
                "/chat",
                Key::from_random(*b"the sample nonce"),
            )
            .subprotocol("chat")
            .subprotocol("superchat")
            .extensions("permessage-deflate; client_max_window_bits"),
        )
    }

    const OK: &[u8] =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n";

    #[test]
    fn every_split_gives_the_same_response_and_leftover() {
        let mut wire = OK.to_vec();
        wire.extend_from_slice(&[0x89, 0x04, b'Z', b'e', b'e', b'k']);
        for cut in 0..=wire.len() {
            let mut hs = rfc_client();
            let (a, b) = wire.split_at(cut);
            // The head ends in the first read when the cut is at or after its end; the
            // leftover is then what that read holds after it.
            let (resp, leftover) = match hs.feed(a).unwrap() {
                Progress::Done { head, leftover } => {
                    assert!(cut >= OK.len());
                    (head, leftover.to_vec())
                }
                Progress::NeedMore => match hs.feed(b).unwrap() {
                    Progress::Done { head, leftover } => (head, leftover.to_vec()),
                    Progress::NeedMore => panic!("cut {cut}"),
                },
            };
            assert_eq!(resp.subprotocol(), Some("chat"));
            assert_eq!(resp.raw(), OK);
            let expected = if cut >= OK.len() {
                &wire[OK.len()..cut]
            } else {
                &wire[OK.len()..]
            };
            assert_eq!(leftover, expected, "cut {cut}");
            assert!(hs.is_done());
        }
    }

    #[test]
    fn rejections_are_sticky() {
        let mut hs = rfc_client();
        let bad = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        let err = UpgradeError::UnexpectedStatus { status: 403 };
        assert_eq!(hs.feed(bad), Err(err));
        assert_eq!(hs.feed(b""), Err(err));
        let mut hs = rfc_client();
        let wrong = core::str::from_utf8(OK)
            .unwrap()
            .replace("xOo=", "xOo=-wrong");
        assert_eq!(hs.feed(wrong.as_bytes()), Err(UpgradeError::AcceptMismatch));
        let mut hs = rfc_client();
        let other = core::str::from_utf8(OK)
            .unwrap()
            .replace("Protocol: chat", "Protocol: mqtt");
        assert_eq!(
            hs.feed(other.as_bytes()),
            Err(UpgradeError::SubprotocolNotOffered)
        );
        let mut hs = rfc_client();
        let ext = core::str::from_utf8(OK).unwrap().replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n",
        );
        assert!(matches!(hs.feed(ext.as_bytes()), Ok(Progress::Done { .. })));
        let mut hs = rfc_client();
        let ext = core::str::from_utf8(OK).unwrap().replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Extensions: x-webkit-deflate-frame\r\n\r\n",
        );
        assert_eq!(
            hs.feed(ext.as_bytes()),
            Err(UpgradeError::ExtensionNotOffered)
        );
        let mut hs = rfc_client();
        let missing = core::str::from_utf8(OK)
            .unwrap()
            .replace("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", "");
        assert_eq!(
            hs.feed(missing.as_bytes()),
            Err(UpgradeError::MissingHeader { name: ACCEPT })
        );
        // Nothing offered: any subprotocol is refused.
        let mut hs = start(RequestBuilder::new(
            "h",
            "/",
            Key::from_random(*b"the sample nonce"),
        ));
        assert_eq!(hs.feed(OK), Err(UpgradeError::SubprotocolNotOffered));
    }

    #[test]
    fn response_head_limit() {
        let mut hs = rfc_client().with_limits(Limits {
            max_head_len: 100,
            max_headers: 10,
        });
        let mut fed = 0;
        let result = loop {
            match hs.feed(b"X") {
                Ok(Progress::NeedMore) => fed += 1,
                other => break other,
            }
        };
        assert_eq!(result, Err(UpgradeError::HeadTooLarge { limit: 100 }));
        assert_eq!(fed, 100);
        assert_eq!(hs.key().as_str(), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(
            hs.expected_accept().as_str(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
