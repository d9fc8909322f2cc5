//! The passive observer: both directions of one TCP connection, from the HTTP upgrade to the
//! last frame, reported as events and never enforced.
//!
//! It serves the Zeek-like analyzer and the Net::Inspect-like streaming inspection alike. The
//! caller (a TCP reassembler, a test) feeds each direction's in-order bytes with
//! [`Observer::feed`], which has the same contract as [`MessageDecoder::decode`]: it looks at
//! the caller's unconsumed bytes, may unmask them in place, and answers with a [`Step`]: how
//! many bytes it used and at most one [`ObservedEvent`]. Drop `consumed` bytes and call again
//! until the event is `None` (all bytes used). Lost bytes are announced with
//! [`Observer::gap`] and the end of a direction with [`Observer::eof`]; the events they cause
//! come out of the next `feed` for that direction (an empty buffer will do).
//!
//! # What happens on a connection
//!
//! 1. **HTTP.** Requests (client side) and responses (server side) are parsed with
//!    [`crate::handshake`] and reported as [`ObservedEvent::Request`] and
//!    [`ObservedEvent::Response`]. Bodies with a `Content-Length` or chunked coding are skipped,
//!    so keep-alive exchanges before the upgrade are followed. After a request that asks for an
//!    upgrade, the client direction answers [`ObservedEvent::Paused`] (nothing consumed) until
//!    the response arrives: only the response tells whether the next client bytes are frames or
//!    HTTP. Keep those bytes, feed the server direction, then feed them again.
//! 2. **Upgrade.** A `101` whose `Upgrade` names `websocket` gives
//!    [`ObservedEvent::Established`] with what both heads said ([`Upgrade`]). The handshake
//!    rules ([`Request::problems`], [`Response::problems_for`]) are then applied as
//!    [`UpgradePolicy`] says: `Lenient` (Zeek) reports each problem as an anomaly and goes on
//!    (a wrong accept value is [`Anomaly::WrongAccept`], Zeek's `websocket_wrong_accept_header`);
//!    `Strict` (Net::Inspect) reports the first as [`ObservedEvent::BadUpgrade`] and stops. Bytes
//!    after the `101` head in the same buffer are frames: they are decoded and also reported as
//!    [`Anomaly::DataWithUpgradeReply`] (Zeek's `protocol_data_with_HTTP_upgrade_reply`, the
//!    count of those bytes). A `101` to another protocol, or an HTTP stream that cannot be
//!    followed, ends with [`ObservedEvent::Stopped`].
//! 3. **Frames.** Each direction has a [`MessageDecoder`] in [`Strictness::Report`](crate::decoder::Strictness::Report) mode with
//!    the direction's mask rule: every rule broken comes out as [`Anomaly::Protocol`] and
//!    decoding goes on. The observer adds frames after a close, gaps, loss of framing and its
//!    recovery.
//!
//! # Events of one frame
//!
//! Zeek's order: [`ObservedEvent::Frame`] (with the raw header bytes), then
//! [`ObservedEvent::FrameData`] chunks of unmasked payload, then for a close frame
//! [`ObservedEvent::Close`], then [`ObservedEvent::Message`] when the frame ends a message
//! (control frames are one-frame messages; the opcode is the message's first). Anomalies come as
//! soon as they are known: those about a header (mask rule, length encoding) just before its
//! `Frame`, those about a message rule just after it, an invalid UTF-8 text right after the
//! chunk that shows it. Under permessage-deflate (feature `deflate`, [`ObserverConfig::inflate`])
//! each `FrameData` chunk of a compressed message is followed by [`ObservedEvent::Inflated`]
//! with what it inflated to, then by the rule it broke once inflated (corrupt data, the cap
//! [`ObserverConfig::max_inflated_message_len`], invalid UTF-8 of inflated text), decided by
//! the endpoint's own message layer (`deflate::MessageInflater`), so an endpoint and
//! the observer agree on every compressed message. A control frame between the fragments of a message is reported as its
//! own frame and message and does not break the data message (Zeek fails there).
//!
//! `FrameData` carries what Net::Inspect's `in_wsdata` gets: the message's opcode, `first`
//! (`init`: first chunk of a message), the bytes still owed by the frame (`bytes_left`), and
//! `message_end` (`eom`). Differences from Zeek a consumer may want to undo: a frame with an
//! empty payload gives one `FrameData` with an empty chunk (Net::Inspect's `in_wsdata('')` with
//! `eom`; Zeek gives none); chunks are as large as the caller's buffer (cut them to
//! `payload_chunk_size`); an oversized control frame's chunks hold all its payload while its
//! `Close` holds the first 125 bytes (Zeek delivers 125 bytes in both).
//!
//! # Gaps
//!
//! A gap inside a payload keeps the direction in sync ([`MessageDecoder::skip`]; the mask
//! offset keeps counting) and gives [`Anomaly::Gap`] with `in_payload: true`, then `Message` if
//! the gap ended a message. Anywhere else framing is lost: [`Anomaly::Desync`], and the direction
//! resynchronises by scanning for the first plausible frame header (see
//! [`ObserverConfig::resync`]), reported as [`Anomaly::Resync`] with the number of bytes skipped.
//! Nothing is ever buffered beyond a 14-byte partial header, a 125-byte control payload and an
//! HTTP head of at most [`Limits::max_head_len`] bytes.
//!
//! ```
//! use wscope_proto::observe::{ObservedEvent, Observer, ObserverConfig};
//! use wscope_proto::role::Direction::{ClientToServer as C, ServerToClient as S};
//!
//! let mut obs = Observer::new(ObserverConfig::default());
//! let mut names = Vec::new();
//! let mut run = |obs: &mut Observer, dir, bytes: &[u8]| {
//!     let mut buf = bytes.to_vec();
//!     let mut at = 0;
//!     loop {
//!         let step = obs.feed(dir, &mut buf[at..]);
//!         at += step.consumed;
//!         match step.event {
//!             None | Some(ObservedEvent::Paused { .. }) => break,
//!             Some(ev) => names.push(ev.name()),
//!         }
//!     }
//! };
//! run(&mut obs, C, b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
//! // The 101 with a ping in the same segment.
//! run(&mut obs, S, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
//!     Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x89\x04Zeek");
//! // The client's masked pong.
//! run(&mut obs, C, &[0x8a, 0x84, 1, 2, 3, 4, b'Z' ^ 1, b'e' ^ 2, b'e' ^ 3, b'k' ^ 4]);
//! assert_eq!(names, [
//!     "request", "response", "established", "anomaly", // protocol_data_with_HTTP_upgrade_reply
//!     "frame", "frame_data", "message",                // server ping
//!     "frame", "frame_data", "message",                // client pong
//! ]);
//! ```

mod body;
mod config;
mod direction;
mod event;
mod upgrade;

#[cfg(test)]
mod tests;

pub use config::{ObserverConfig, UpgradePolicy};
pub use event::{Anomaly, AnomalyDetail, ChunkInfo, DesyncCause, ObservedEvent, StopReason};
pub use upgrade::Upgrade;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use body::{request_body, response_body, Body};
use direction::{Mode, WsDir};

use crate::decoder::Step;
use crate::frame::{OpCode, RSV1};
use crate::handshake::header::{early_error, HeadBuffer, Push};
use crate::handshake::{Request, Response, UpgradeError, ACCEPT, UPGRADE};
use crate::message::GapOutcome;
use crate::role::Direction;

/// What the observer keeps of the permessage-deflate agreement (nothing without the feature).
#[cfg(feature = "deflate")]
type DeflateParams = crate::deflate::DeflateParams;
#[cfg(not(feature = "deflate"))]
type DeflateParams = NoDeflate;

/// Stands for the permessage-deflate parameters without feature `deflate`.
#[cfg(not(feature = "deflate"))]
#[derive(Clone, Copy, Debug)]
enum NoDeflate {}

#[cfg(not(feature = "deflate"))]
impl NoDeflate {
    const fn no_context_takeover(self, _: crate::role::Role) -> bool {
        match self {}
    }
}

#[cfg(doc)]
use crate::handshake::Limits;
#[cfg(doc)]
use crate::message::MessageDecoder;

#[derive(Clone, Debug)]
enum HttpDir {
    Head(HeadBuffer),
    Body { body: Body, then_pause: bool },
    Paused,
}

/// Events produced outside `feed` (by `gap` and `eof`), waiting for the next `feed`.
#[derive(Clone, Copy, Debug)]
enum Deferred {
    Anomaly(Anomaly<'static>),
    Message(OpCode),
    Eof,
}

/// At most this many deferred events are kept per direction (a caller calling `gap` in a loop
/// without feeding cannot grow memory).
const MAX_DEFERRED: usize = 32;

#[derive(Debug)]
struct DirState {
    http: HttpDir,
    ws: Option<WsDir>,
    deferred: VecDeque<Deferred>,
    eof: bool,
    /// A gap hit this direction while it waited for the upgrade: start by resynchronising.
    lost_before_upgrade: bool,
}

impl DirState {
    fn new() -> Self {
        Self {
            http: HttpDir::Head(HeadBuffer::default()),
            ws: None,
            deferred: VecDeque::new(),
            eof: false,
            lost_before_upgrade: false,
        }
    }

    fn defer(&mut self, d: Deferred) {
        if self.deferred.len() < MAX_DEFERRED {
            self.deferred.push_back(d);
        }
    }

    /// Moves the frame layer's pending events into the deferred queue, so that events caused
    /// by a gap or the end of stream come after them.
    fn flush_pending(&mut self) {
        if let Some(ws) = self.ws.as_mut() {
            while let Some(e) = ws.take_inflate_error() {
                if self.deferred.len() < MAX_DEFERRED {
                    self.deferred
                        .push_back(Deferred::Anomaly(Anomaly::Protocol(e)));
                }
            }
            if let Some(op) = ws.pending_message.take() {
                if self.deferred.len() < MAX_DEFERRED {
                    self.deferred.push_back(Deferred::Message(op));
                }
            }
            if let Some(opcode) = ws.pending_after_close.take() {
                if self.deferred.len() < MAX_DEFERRED {
                    self.deferred
                        .push_back(Deferred::Anomaly(Anomaly::FrameAfterClose { opcode }));
                }
            }
        }
    }
}

/// Connection-level events waiting to be reported.
#[derive(Clone, Copy, Debug)]
enum ConnEvent {
    Established,
    Problem(Direction, UpgradeError),
    Anomaly(Direction, Anomaly<'static>),
    BadUpgrade(UpgradeError),
    Stopped(StopReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Http,
    WebSocket,
    Stopped,
}

/// A request waiting for its response.
#[derive(Clone, Copy, Debug)]
struct Pending {
    head: bool,
}

/// The two-direction passive observer of one connection (see the [module docs](self)).
#[derive(Debug)]
pub struct Observer {
    cfg: ObserverConfig,
    phase: Phase,
    dirs: [DirState; 2],
    request: Option<Request>,
    response: Option<Response>,
    pending: VecDeque<Pending>,
    upgrade: Option<Upgrade>,
    conn: VecDeque<ConnEvent>,
}

impl Observer {
    /// An observer at the start of a connection (HTTP first).
    pub fn new(cfg: ObserverConfig) -> Self {
        Self {
            cfg,
            phase: Phase::Http,
            dirs: [DirState::new(), DirState::new()],
            request: None,
            response: None,
            pending: VecDeque::new(),
            upgrade: None,
            conn: VecDeque::new(),
        }
    }

    /// An observer of a connection whose handshake was not seen: both directions are frames
    /// from the first byte (fuzzing seeds, captures that start after the upgrade). No extension
    /// is assumed, so RSV bits are anomalies.
    pub fn after_handshake(cfg: ObserverConfig) -> Self {
        let mut obs = Self::new(cfg);
        obs.start_websocket(0, None);
        obs
    }

    /// An observer of a connection whose handshake was not seen but which agreed on
    /// permessage-deflate with `params` (fuzzing, differential tests): RSV1 marks compressed
    /// messages, inflated as [`ObserverConfig::inflate`] says.
    #[cfg(feature = "deflate")]
    pub fn after_deflate_handshake(
        cfg: ObserverConfig,
        params: crate::deflate::DeflateParams,
    ) -> Self {
        let mut obs = Self::new(cfg);
        obs.start_websocket(RSV1, Some(params));
        obs
    }

    /// An observer of a WebSocket whose handshake happened elsewhere and is known: a stream of
    /// an HTTP/2 connection (RFC 8441, [`Upgrade::http2`]). Both directions are frames from
    /// the first byte, permessage-deflate as the upgrade agreed; the first
    /// [`Observer::feed`] reports [`ObservedEvent::Established`].
    pub fn after_upgrade(cfg: ObserverConfig, upgrade: Upgrade) -> Self {
        let mut obs = Self::new(cfg);
        let (extension_rsv, deflate) = if upgrade.permessage_deflate() {
            (RSV1, upgrade.agreed_deflate())
        } else {
            (0, None)
        };
        obs.start_websocket(extension_rsv, deflate);
        obs.upgrade = Some(upgrade);
        obs.conn.push_back(ConnEvent::Established);
        obs
    }

    /// The settings.
    pub const fn config(&self) -> &ObserverConfig {
        &self.cfg
    }

    /// The upgrade, once established.
    pub const fn upgrade(&self) -> Option<&Upgrade> {
        self.upgrade.as_ref()
    }

    /// Bytes of inflated output the observer holds for both directions (for memory
    /// accounting; 0 without permessage-deflate).
    pub fn inflated_capacity(&self) -> usize {
        self.dirs
            .iter()
            .filter_map(|d| d.ws.as_ref())
            .map(WsDir::inflated_capacity)
            .sum()
    }

    /// Whether frames are being decoded (the upgrade was seen and accepted).
    pub fn is_websocket(&self) -> bool {
        self.phase == Phase::WebSocket
    }

    /// Whether the observer stopped analysing the connection.
    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    /// Whether `dir` is waiting for the other direction ([`ObservedEvent::Paused`]).
    pub fn is_paused(&self, dir: Direction) -> bool {
        self.phase == Phase::Http && matches!(self.dirs[dir.index()].http, HttpDir::Paused)
    }

    /// Frames from now on; `deflate`: the permessage-deflate parameters agreed (only context
    /// takeover matters to a passive inflater, which always inflates with the largest window).
    fn start_websocket(&mut self, extension_rsv: u8, deflate: Option<DeflateParams>) {
        self.phase = Phase::WebSocket;
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            let cfg = self.cfg;
            let d = &mut self.dirs[dir.index()];
            let sender = match dir {
                Direction::ClientToServer => crate::role::Role::Client,
                Direction::ServerToClient => crate::role::Role::Server,
            };
            let inflate = deflate
                .filter(|_| cfg.inflate)
                .map(|p| p.no_context_takeover(sender));
            let mut ws = WsDir::new(dir, &cfg, extension_rsv, inflate);
            if d.lost_before_upgrade {
                ws.lose(cfg.resync);
            }
            d.ws = Some(ws);
        }
    }

    fn stop(&mut self, reason: StopReason) {
        self.phase = Phase::Stopped;
        self.conn.push_back(ConnEvent::Stopped(reason));
    }

    /// Decodes the next event from the front of `buf`, bytes of direction `dir`.
    ///
    /// Same contract as [`MessageDecoder::decode`]: drop `consumed` bytes and call again until
    /// the event is `None`, which means all bytes were used. Payload chunks are unmasked in
    /// `buf`. The one exception is [`ObservedEvent::Paused`]: the remaining bytes were not
    /// consumed and must be fed again after the other direction has been fed.
    pub fn feed<'a>(&'a mut self, dir: Direction, buf: &'a mut [u8]) -> Step<ObservedEvent<'a>> {
        let i = dir.index();
        // Inflated bytes of the last chunk come before what a gap or the end caused since.
        if self.dirs[i].ws.as_ref().is_some_and(WsDir::has_inflated) {
            let event = self.dirs[i].ws.as_mut().and_then(|ws| ws.inflated(dir));
            return Step { consumed: 0, event };
        }
        if let Some(d) = self.dirs[i].deferred.pop_front() {
            let event = match d {
                Deferred::Anomaly(anomaly) => ObservedEvent::Anomaly { dir, anomaly },
                Deferred::Message(opcode) => ObservedEvent::Message { dir, opcode },
                Deferred::Eof => ObservedEvent::Eof { dir },
            };
            return Step {
                consumed: 0,
                event: Some(event),
            };
        }
        if let Some(c) = self.conn.pop_front() {
            return Step {
                consumed: 0,
                event: Some(self.conn_event(c)),
            };
        }
        if self.dirs[i].eof && !buf.is_empty() {
            return Step {
                consumed: buf.len(),
                event: Some(ObservedEvent::Anomaly {
                    dir,
                    anomaly: Anomaly::DataAfterEof { len: buf.len() },
                }),
            };
        }
        match self.phase {
            Phase::Stopped => Step {
                consumed: buf.len(),
                event: None,
            },
            Phase::Http => self.feed_http(dir, buf),
            Phase::WebSocket => {
                let cfg = self.cfg;
                match self.dirs[i].ws.as_mut() {
                    Some(ws) => ws.step(dir, buf, &cfg),
                    None => Step {
                        consumed: buf.len(),
                        event: None,
                    },
                }
            }
        }
    }

    fn conn_event(&self, c: ConnEvent) -> ObservedEvent<'_> {
        match c {
            ConnEvent::Established => match &self.upgrade {
                Some(u) => ObservedEvent::Established(u),
                None => ObservedEvent::Stopped {
                    reason: StopReason::Abandoned,
                },
            },
            ConnEvent::Problem(dir, UpgradeError::AcceptMismatch) => {
                let upgrade = self.upgrade.as_ref();
                let found = upgrade.and_then(|u| u.response.headers().get(ACCEPT));
                let expected = upgrade.and_then(Upgrade::expected_accept);
                let anomaly = match (expected, found) {
                    (Some(expected), Some(found)) => Anomaly::WrongAccept { expected, found },
                    _ => Anomaly::Handshake(UpgradeError::AcceptMismatch),
                };
                ObservedEvent::Anomaly { dir, anomaly }
            }
            ConnEvent::Problem(dir, e) => ObservedEvent::Anomaly {
                dir,
                anomaly: Anomaly::Handshake(e),
            },
            ConnEvent::Anomaly(dir, anomaly) => ObservedEvent::Anomaly { dir, anomaly },
            ConnEvent::BadUpgrade(e) => ObservedEvent::BadUpgrade(e),
            ConnEvent::Stopped(reason) => ObservedEvent::Stopped { reason },
        }
    }

    /// Follows HTTP in `dir`: skips bodies, collects a head and reports it.
    fn feed_http<'a>(&'a mut self, dir: Direction, buf: &[u8]) -> Step<ObservedEvent<'a>> {
        let i = dir.index();
        let limits = self.cfg.limits;
        let mut at = 0;
        loop {
            let rest = buf.get(at..).unwrap_or(&[]);
            let d = &mut self.dirs[i];
            match &mut d.http {
                HttpDir::Paused => {
                    let event = (at < buf.len()).then_some(ObservedEvent::Paused { dir });
                    return Step {
                        consumed: at,
                        event,
                    };
                }
                HttpDir::Body { body, then_pause } => {
                    if rest.is_empty() {
                        return Step {
                            consumed: at,
                            event: None,
                        };
                    }
                    match body.skip(rest) {
                        Ok((used, done)) => {
                            at += used;
                            if done || body.is_done() {
                                d.http = if *then_pause {
                                    HttpDir::Paused
                                } else {
                                    HttpDir::Head(HeadBuffer::default())
                                };
                            }
                        }
                        Err(()) => return self.abandon(dir, buf.len(), Anomaly::BadBody),
                    }
                }
                HttpDir::Head(hb) => {
                    if rest.is_empty() {
                        return Step {
                            consumed: at,
                            event: None,
                        };
                    }
                    match hb.push(rest, limits.max_head_len) {
                        Err(e) => return self.abandon(dir, buf.len(), Anomaly::Handshake(e)),
                        Ok(Push::NeedMore) => {
                            let request = dir == Direction::ClientToServer;
                            if let Some(e) = early_error(hb.bytes(), request) {
                                return self.abandon(dir, buf.len(), Anomaly::Handshake(e));
                            }
                            return Step {
                                consumed: buf.len(),
                                event: None,
                            };
                        }
                        Ok(Push::Candidate { used }) => {
                            at += used;
                            let head = hb.take();
                            let have = head.len();
                            let parsed = match dir {
                                Direction::ClientToServer => Request::from_head(head, &limits)
                                    .map(|r| r.map(|(r, n)| (Head::Request(r), n))),
                                Direction::ServerToClient => Response::from_head(head, &limits)
                                    .map(|r| r.map(|(r, n)| (Head::Response(r), n))),
                            };
                            match parsed {
                                Ok(Err(back)) => hb.restore(back),
                                Ok(Ok((head, len))) => {
                                    at -= have.saturating_sub(len).min(at);
                                    let after = buf.len() - at;
                                    return match head {
                                        Head::Request(r) => self.on_request(at, r),
                                        Head::Response(r) => self.on_response(at, after, r),
                                    };
                                }
                                Err(e) => {
                                    return self.abandon(dir, buf.len(), Anomaly::Handshake(e))
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Reports `anomaly`, consumes everything and stops.
    fn abandon(
        &mut self,
        dir: Direction,
        consumed: usize,
        anomaly: Anomaly<'static>,
    ) -> Step<ObservedEvent<'_>> {
        self.stop(StopReason::Abandoned);
        Step {
            consumed,
            event: Some(ObservedEvent::Anomaly { dir, anomaly }),
        }
    }

    fn on_request(&mut self, consumed: usize, req: Request) -> Step<ObservedEvent<'_>> {
        let dir = Direction::ClientToServer;
        let Ok(body) = request_body(&req) else {
            return self.abandon(dir, consumed, Anomaly::BadBody);
        };
        if self.pending.len() >= self.cfg.max_pending_requests {
            let limit = self.cfg.max_pending_requests;
            return self.abandon(dir, consumed, Anomaly::TooManyPendingRequests { limit });
        }
        let upgrade = req.wants_upgrade();
        self.pending.push_back(Pending {
            head: req.method().eq_ignore_ascii_case("HEAD"),
        });
        self.dirs[dir.index()].http = match body {
            Some(body) => HttpDir::Body {
                body,
                then_pause: upgrade,
            },
            None if upgrade => HttpDir::Paused,
            None => HttpDir::Head(HeadBuffer::default()),
        };
        let req = self.request.insert(req);
        Step {
            consumed,
            event: Some(ObservedEvent::Request(req)),
        }
    }

    fn on_response(
        &mut self,
        consumed: usize,
        after: usize,
        resp: Response,
    ) -> Step<ObservedEvent<'_>> {
        let dir = Direction::ServerToClient;
        let status = resp.status();
        let informational = (100..200).contains(&status) && status != 101;
        let matched = if informational {
            self.pending.front().copied()
        } else {
            self.pending.pop_front()
        };
        if matched.is_none() && status != 101 {
            // (A 101 without a request is reported as `UnsolicitedUpgrade` instead.)
            self.conn
                .push_back(ConnEvent::Anomaly(dir, Anomaly::UnmatchedResponse));
        }
        // The request this answers, when it is the last one seen.
        let request = if matched.is_some() && self.pending.is_empty() && !informational {
            self.request.take()
        } else {
            None
        };
        if status == 101 {
            let asked_websocket = request
                .as_ref()
                .is_some_and(|r| r.headers().has_token(UPGRADE, "websocket"));
            let says_websocket = resp.headers().has_token(UPGRADE, "websocket");
            let no_upgrade_header = resp.headers().count(UPGRADE) == 0;
            if !(says_websocket || (no_upgrade_header && asked_websocket)) {
                self.stop(StopReason::OtherProtocol);
                let resp = self.response.insert(resp);
                return Step {
                    consumed,
                    event: Some(ObservedEvent::Response(resp)),
                };
            }
            return self.on_upgrade(consumed, after, request, resp);
        }
        if !informational {
            let to_head = matched.is_some_and(|m| m.head);
            match response_body(&resp, to_head) {
                Err(()) => {
                    self.conn
                        .push_back(ConnEvent::Anomaly(dir, Anomaly::BadBody));
                    self.stop(StopReason::Abandoned);
                }
                Ok(Some(Body::UntilClose)) => self.stop(StopReason::BodyUntilClose),
                Ok(Some(body)) => {
                    self.dirs[dir.index()].http = HttpDir::Body {
                        body,
                        then_pause: false,
                    };
                }
                Ok(None) => {}
            }
            // A refused upgrade: the client speaks HTTP again (unless bytes were lost while it
            // waited, which leaves no way to find its next head).
            let client = &mut self.dirs[Direction::ClientToServer.index()];
            if matches!(client.http, HttpDir::Paused) {
                client.http = HttpDir::Head(HeadBuffer::default());
                if client.lost_before_upgrade && self.phase != Phase::Stopped {
                    self.stop(StopReason::Abandoned);
                }
            }
        }
        let resp = self.response.insert(resp);
        Step {
            consumed,
            event: Some(ObservedEvent::Response(resp)),
        }
    }

    fn on_upgrade(
        &mut self,
        consumed: usize,
        after: usize,
        request: Option<Request>,
        response: Response,
    ) -> Step<ObservedEvent<'_>> {
        let mut problems: Vec<(Direction, UpgradeError)> = Vec::new();
        // What a client following RFC 6455 §4.1 checks in the response ([`Upgrade::accepted`]).
        let response_problems = match &request {
            Some(req) => {
                problems.extend(
                    req.problems()
                        .into_iter()
                        .map(|e| (Direction::ClientToServer, e)),
                );
                response.problems_for(req)
            }
            None => {
                problems.push((Direction::ServerToClient, UpgradeError::UnsolicitedUpgrade));
                response.problems_without_request()
            }
        };
        let accepted = response_problems.is_empty();
        problems.extend(
            response_problems
                .into_iter()
                .map(|e| (Direction::ServerToClient, e)),
        );
        let upgrade = Upgrade::http1(request, response, accepted);
        let (extension_rsv, deflate) = if upgrade.permessage_deflate() {
            (RSV1, upgrade.agreed_deflate())
        } else {
            (0, None)
        };
        match (self.cfg.policy, problems.first()) {
            (UpgradePolicy::Strict, Some(&(_, first))) => {
                self.phase = Phase::Stopped;
                self.conn.push_back(ConnEvent::BadUpgrade(first));
            }
            _ => {
                self.start_websocket(extension_rsv, deflate);
                self.conn.push_back(ConnEvent::Established);
                for (dir, e) in problems {
                    self.conn.push_back(ConnEvent::Problem(dir, e));
                }
                if after > 0 {
                    self.conn.push_back(ConnEvent::Anomaly(
                        Direction::ServerToClient,
                        Anomaly::DataWithUpgradeReply { len: after },
                    ));
                }
            }
        }
        let upgrade = self.upgrade.insert(upgrade);
        Step {
            consumed,
            event: Some(ObservedEvent::Response(&upgrade.response)),
        }
    }

    /// `len` bytes of `dir` were lost (a capture or reassembly gap). The events it causes
    /// ([`Anomaly::Gap`], `Message` when the gap ended a message, [`Anomaly::Desync`]) come out
    /// of the next [`Observer::feed`] for `dir`.
    ///
    /// Inside a payload the direction stays in sync. Elsewhere after the upgrade, framing is
    /// lost and the direction resynchronises. Before the upgrade, a gap inside a body of known
    /// length is skipped; anywhere else in HTTP the connection is abandoned.
    pub fn gap(&mut self, dir: Direction, len: u64) {
        if len == 0 {
            return;
        }
        let resync = self.cfg.resync;
        let i = dir.index();
        match self.phase {
            Phase::Stopped => {
                self.dirs[i].defer(Deferred::Anomaly(Anomaly::Gap {
                    len,
                    in_payload: false,
                }));
            }
            Phase::WebSocket => {
                let d = &mut self.dirs[i];
                d.flush_pending();
                let Some(ws) = d.ws.as_mut() else { return };
                let mut events: [Option<Deferred>; 3] = [None; 3];
                match ws.mode {
                    Mode::Sync => match ws.dec.skip(len) {
                        GapOutcome::InPayload {
                            frame_end,
                            message_end,
                        } => {
                            ws.advance(usize::try_from(len).unwrap_or(usize::MAX), frame_end);
                            events[0] = Some(Deferred::Anomaly(Anomaly::Gap {
                                len,
                                in_payload: true,
                            }));
                            events[1] = message_end.map(Deferred::Message);
                        }
                        GapOutcome::FramingLost => {
                            ws.lose(resync);
                            events[0] = Some(Deferred::Anomaly(Anomaly::Gap {
                                len,
                                in_payload: false,
                            }));
                            events[1] = Some(Deferred::Anomaly(Anomaly::Desync {
                                cause: DesyncCause::Gap,
                            }));
                        }
                    },
                    Mode::Probe if ws.win_len == 0 && len <= ws.probe_skip => {
                        // Lost inside a probed frame's payload: the chain goes on.
                        ws.probe_skip -= len;
                        ws.skipped += len;
                        events[0] = Some(Deferred::Anomaly(Anomaly::Gap {
                            len,
                            in_payload: false,
                        }));
                    }
                    Mode::Resync | Mode::Probe => {
                        // The bytes kept are no longer followed by what they were before.
                        ws.mode = Mode::Resync;
                        ws.skipped += ws.win_len as u64;
                        ws.win_len = 0;
                        events[0] = Some(Deferred::Anomaly(Anomaly::Gap {
                            len,
                            in_payload: false,
                        }));
                    }
                    Mode::Lost => {
                        events[0] = Some(Deferred::Anomaly(Anomaly::Gap {
                            len,
                            in_payload: false,
                        }));
                    }
                }
                for e in events.into_iter().flatten() {
                    d.defer(e);
                }
            }
            Phase::Http => {
                let d = &mut self.dirs[i];
                let (in_body, abandon) = match &mut d.http {
                    HttpDir::Body { body, .. } => {
                        let ok = body.gap(len);
                        (ok, !ok)
                    }
                    HttpDir::Paused => {
                        d.lost_before_upgrade = true;
                        (false, false)
                    }
                    HttpDir::Head(_) => (false, true),
                };
                if let HttpDir::Body { body, then_pause } = &d.http {
                    if body.is_done() {
                        d.http = if *then_pause {
                            HttpDir::Paused
                        } else {
                            HttpDir::Head(HeadBuffer::default())
                        };
                    }
                }
                d.defer(Deferred::Anomaly(Anomaly::Gap {
                    len,
                    in_payload: in_body,
                }));
                if abandon {
                    self.stop(StopReason::Abandoned);
                }
            }
        }
    }

    /// `dir` ended (FIN or RST). The events it causes (an anomaly when it ended inside a head,
    /// a body, a frame or a message, then [`ObservedEvent::Eof`]) come out of the next
    /// [`Observer::feed`] for `dir`; bytes fed for `dir` afterwards are an anomaly.
    pub fn eof(&mut self, dir: Direction) {
        let phase = self.phase;
        let d = &mut self.dirs[dir.index()];
        if d.eof {
            return;
        }
        d.eof = true;
        d.flush_pending();
        let anomaly = match phase {
            Phase::Stopped => None,
            Phase::Http => match &d.http {
                HttpDir::Head(hb) if !hb.is_empty() => Some(Anomaly::EofInHead),
                HttpDir::Body {
                    body: Body::UntilClose,
                    ..
                } => None,
                HttpDir::Body { .. } => Some(Anomaly::EofInBody),
                _ => None,
            },
            Phase::WebSocket => match d.ws.as_mut() {
                Some(ws) if ws.mode == Mode::Sync => {
                    if let Some(t) = ws.frame {
                        Some(Anomaly::EofInFrame {
                            remaining: t.header.payload_len.saturating_sub(t.seen),
                        })
                    } else if !ws.dec.frame_decoder().is_at_boundary() {
                        Some(Anomaly::EofInFrame { remaining: 0 })
                    } else if ws.dec.in_message() {
                        Some(Anomaly::EofInMessage)
                    } else {
                        None
                    }
                }
                _ => None,
            },
        };
        if let Some(a) = anomaly {
            d.defer(Deferred::Anomaly(a));
        }
        d.defer(Deferred::Eof);
    }
}

/// A parsed head, either side.
enum Head {
    Request(Request),
    Response(Response),
}
