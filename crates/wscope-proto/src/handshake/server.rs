//! The server side of the handshake: read and check the request, then answer it with
//! [`super::ResponseBuilder`].

use super::error::UpgradeError;
use super::header::{early_error, feed_head, HeadBuffer};
use super::request::Request;
use super::{Limits, Progress};

/// A server's opening handshake, sans-IO: [`ServerHandshake::feed`] takes the bytes read from
/// the client, in any split, until the request head is complete; then it checks the request
/// (RFC 6455 section 4.2.1) and hands it over for the application to accept or refuse.
///
/// The head is held up to [`Limits::max_head_len`] bytes, so a client that sends header bytes
/// forever gets [`UpgradeError::HeadTooLarge`] (431) at the limit.
///
/// ```
/// use wscope_proto::handshake::{Progress, ResponseBuilder, ServerHandshake};
///
/// let mut hs = ServerHandshake::default();
/// let mut out = Vec::new();
/// match hs.feed(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
///                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n") {
///     Ok(Progress::Done { head, .. }) => ResponseBuilder::accept(&head).write(&mut out).unwrap(),
///     Ok(Progress::NeedMore) => {}
///     Err(e) => ResponseBuilder::reject(&e).write(&mut out).unwrap(),
/// }
/// assert!(out.starts_with(b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ServerHandshake {
    limits: Limits,
    head: HeadBuffer,
    state: State,
}

/// The content type of a TLS handshake record, the first byte a TLS client sends (RFC 8446
/// section 5.1). No HTTP request starts with it.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Reading,
    Done,
    Failed(UpgradeError),
}

impl ServerHandshake {
    /// A handshake waiting for a request, with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            head: HeadBuffer::default(),
            state: State::Reading,
        }
    }

    /// Whether a valid request has been received.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes the next bytes read from the client.
    ///
    /// `NeedMore` until the request head is complete; then `Done` with the checked request and
    /// the bytes of this read that follow it (frames the client sent without waiting). An
    /// error tells the status to refuse with ([`UpgradeError::http_status`]); the same error
    /// comes back on every later call. After `Done`, [`UpgradeError::AlreadyComplete`].
    pub fn feed<'b>(&mut self, bytes: &'b [u8]) -> Result<Progress<'b, Request>, UpgradeError> {
        match self.state {
            State::Reading => {}
            State::Done => return Err(UpgradeError::AlreadyComplete),
            State::Failed(e) => return Err(e),
        }
        if self.head.is_empty() && bytes.first() == Some(&TLS_HANDSHAKE_RECORD) {
            self.state = State::Failed(UpgradeError::TlsClientHello);
            return Err(UpgradeError::TlsClientHello);
        }
        let result = match feed_head(&mut self.head, bytes, &self.limits, Request::from_head) {
            // Bytes that are not HTTP at all are refused as soon as they are seen, not after
            // the head limit or the handshake timeout.
            Ok(None) => early_error(self.head.bytes(), true).map_or(Ok(Progress::NeedMore), Err),
            Ok(Some((request, leftover))) => request.validate().map(|()| Progress::Done {
                head: request,
                leftover,
            }),
            Err(e) => Err(e),
        };
        match &result {
            Ok(Progress::NeedMore) => {}
            Ok(Progress::Done { .. }) => self.state = State::Done,
            Err(e) => self.state = State::Failed(*e),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{ResponseBuilder, KEY};
    use alloc::vec::Vec;

    const REQ: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn byte_at_a_time_then_leftover() {
        let mut hs = ServerHandshake::default();
        for (i, b) in REQ.iter().enumerate().take(REQ.len() - 1) {
            assert_eq!(
                hs.feed(core::slice::from_ref(b)).unwrap(),
                Progress::NeedMore,
                "{i}"
            );
        }
        let last = [b'\n', 0x81, 0x80];
        match hs.feed(&last).unwrap() {
            Progress::Done { head, leftover } => {
                assert_eq!(head.target(), "/chat");
                assert_eq!(head.raw(), REQ);
                assert_eq!(leftover, [0x81, 0x80]);
            }
            Progress::NeedMore => panic!(),
        }
        assert!(hs.is_done());
        assert_eq!(hs.feed(b"more"), Err(UpgradeError::AlreadyComplete));
    }

    #[test]
    fn endless_headers_hit_431_at_the_limit() {
        let limits = Limits {
            max_head_len: 1024,
            max_headers: 100,
        };
        let mut hs = ServerHandshake::new(limits);
        assert_eq!(hs.feed(b"GET / HTTP/1.1\r\n"), Ok(Progress::NeedMore));
        let mut sent = 16;
        let err = loop {
            match hs.feed(b"X-Slow: a\r\n") {
                Ok(Progress::NeedMore) => sent += 11,
                Ok(Progress::Done { .. }) => panic!(),
                Err(e) => break e,
            }
            assert!(sent <= 1024);
        };
        assert_eq!(err, UpgradeError::HeadTooLarge { limit: 1024 });
        assert_eq!(err.http_status(), 431);
        assert_eq!(hs.feed(b"\r\n"), Err(err));
        let mut out = Vec::new();
        ResponseBuilder::reject(&err).write(&mut out).unwrap();
        assert!(out.starts_with(b"HTTP/1.1 431 "));
        // Many small headers: the count limit.
        let mut hs = ServerHandshake::new(Limits {
            max_head_len: 1 << 20,
            max_headers: 5,
        });
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for _ in 0..6 {
            many.extend_from_slice(b"A: b\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            hs.feed(&many),
            Err(UpgradeError::TooManyHeaders { limit: 5 })
        );
    }

    #[test]
    fn invalid_requests_are_refused_with_their_status() {
        let cases: &[(&str, &str, u16)] = &[
            ("GET", "DELETE", 400),
            (
                "Sec-WebSocket-Version: 13",
                "Sec-WebSocket-Version: 12",
                426,
            ),
            ("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=", 400),
            ("HTTP/1.1\r\n", "HTTP/1.1 junk\r\n", 400),
        ];
        for (from, to, status) in cases {
            let text = core::str::from_utf8(REQ).unwrap().replace(from, to);
            let mut hs = ServerHandshake::default();
            let err = hs.feed(text.as_bytes()).unwrap_err();
            assert_eq!(err.http_status(), *status, "{from} -> {to}: {err}");
        }
        let text = core::str::from_utf8(REQ)
            .unwrap()
            .replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
        assert_eq!(
            ServerHandshake::default().feed(text.as_bytes()),
            Err(UpgradeError::MissingHeader { name: KEY })
        );
    }

    /// A TLS client on a plain port is refused at its first byte, and bytes that cannot start
    /// an HTTP request as soon as they are seen: neither waits for the head limit or the
    /// handshake timeout.
    #[test]
    fn not_http_is_refused_at_once() {
        // The start of a ClientHello: handshake record, TLS 1.0 record version, length.
        let mut hs = ServerHandshake::default();
        assert_eq!(
            hs.feed(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]),
            Err(UpgradeError::TlsClientHello)
        );
        assert_eq!(hs.feed(REQ), Err(UpgradeError::TlsClientHello));
        // One byte at a time as well.
        let mut hs = ServerHandshake::default();
        assert_eq!(hs.feed(&[0x16]), Err(UpgradeError::TlsClientHello));
        // Not TLS, not HTTP: an SSH banner's version string is no HTTP token.
        let mut hs = ServerHandshake::default();
        let err = hs.feed(b"SSH-2.0-OpenSSH_9.6\r\n").unwrap_err();
        assert!(matches!(err, UpgradeError::MalformedHttp { .. }), "{err}");
        assert_eq!(err.http_status(), 400);
        // A valid request in small pieces is still read to its end.
        let mut hs = ServerHandshake::default();
        let (most, last) = REQ.split_at(REQ.len() - 1);
        for chunk in most.chunks(7) {
            assert_eq!(hs.feed(chunk), Ok(Progress::NeedMore));
        }
        assert!(matches!(hs.feed(last), Ok(Progress::Done { .. })));
    }
}
