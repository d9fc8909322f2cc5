//! Passive WebSocket over HTTP/2 (RFC 8441): an input layer between TCP reassembly (or TLS
//! decryption) and the WebSocket [`Session`], as [`crate::tls`] is one for `wss://`.
//!
//! ```text
//!   in-order bytes of a connection (cleartext, or decrypted TLS)
//!        │  the client's first bytes are the preface `PRI * HTTP/2.0…` (h2c prior
//!        │  knowledge), or TLS selected ALPN `h2`: an HTTP/2 connection ([`App::H2`])
//!        ▼
//!   reader      frames per direction: DATA streamed, padding removed, others whole (capped)
//!   hpack       header blocks (HEADERS/PUSH_PROMISE + CONTINUATION, capped), one decoder
//!               per direction, dynamic table and header list caps
//!   conn        streams: extended CONNECT `:protocol websocket` + `2xx` → a Session per
//!               stream (own uid, `stream_id`), fed the stream's DATA in order; END_STREAM,
//!               RST_STREAM (`reset`), GOAWAY and the TCP end end it
//!        ▼
//!   the same events as an HTTP/1.1 upgrade's, on the stream's ConnMeta
//! ```
//!
//! Each WebSocket stream is a session of its own: its events carry a [`ConnMeta`] with the
//! stream's [`ConnMeta::stream_id`] and uid ([`crate::uid::Uid::for_stream`]); its
//! `established` event has the `:authority` as `host`, the `:path` as `uri`, and the JSON
//! `http2: true`. A reset stream gives an [`EventKind::Reset`](crate::event::EventKind::Reset)
//! before its `connection_end`.
//!
//! Protocol breaches are anomalies (`http2_hpack_error`, `http2_data_unknown_stream`,
//! `http2_frame_too_large`, `http2_header_block_too_large`, `http2_protocol_error`, …)
//! reported on connections that carried a WebSocket stream or whose server offered extended
//! CONNECT (other HTTP/2 traffic is not this analyzer's business); they never stop the other
//! streams. Memory is bounded: [`Http2Config`].
//!
//! Not followed: HTTP/2 connections seen without their preface (mid-stream), h2c reached by
//! an HTTP/1.1 `Upgrade: h2c`.

pub mod conn;
pub mod frame;
pub mod hpack;
pub mod reader;

use wscope_proto::role::Direction;
use wscope_proto::time::Instant;

pub use conn::{H2Conn, Http2Config};

use crate::session::{Session, SessionConfig, TcpNote};
use crate::sink::Sink;
use crate::tcp::{CloseReason, ConnMeta};

/// The application layer of a connection: nothing yet, HTTP/1.1 (and what it upgrades to),
/// or HTTP/2.
#[derive(Debug, Default)]
pub enum App {
    /// No payload yet.
    #[default]
    None,
    /// HTTP/1.1: one [`Session`].
    Http {
        /// The session.
        session: Box<Session>,
        /// The client sent bytes (before, server bytes alone do not decide: an h2c server
        /// may speak first).
        client_seen: bool,
    },
    /// The client's first bytes are the start of the HTTP/2 preface but too few to tell it
    /// from an HTTP/1.1 request (`P` may begin `POST`, `PR` `PROPFIND`): they are held (at
    /// most the preface's 24 bytes) until more come, then go to the layer they decide.
    Held {
        /// The client's bytes so far, a proper prefix of the preface.
        held: Vec<u8>,
        /// The session settings, for the layer made when they are released.
        cfg: SessionConfig,
        /// Time of their arrival.
        ts: Instant,
    },
    /// HTTP/2.
    H2(Box<H2Conn>),
}

impl App {
    /// Whether the connection's `101` is one its client rejects (HTTP/1.1 only; see
    /// [`crate::session::SessionCounters::rejected`]).
    pub fn rejected(&self) -> bool {
        match self {
            Self::Http { session, .. } => session.counters().rejected,
            _ => false,
        }
    }

    /// The HTTP/1.1 session, if the connection is one.
    pub fn session(&self) -> Option<&Session> {
        match self {
            Self::Http { session, .. } => Some(session),
            _ => None,
        }
    }

    /// In-order bytes of one direction; `alpn_h2`: TLS selected ALPN `h2`. The layer is
    /// chosen with the first bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn data<S: Sink + ?Sized>(
        &mut self,
        cfg: SessionConfig,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        bytes: &[u8],
        alpn_h2: bool,
        sink: &mut S,
    ) {
        let client = dir == Direction::ClientToServer;
        if let Self::Held { held, .. } = self {
            if client {
                held.extend_from_slice(bytes);
                if !alpn_h2 && could_be_either(held) {
                    return;
                }
                let held = core::mem::take(held);
                *self = Self::None;
                return self.data(cfg, conn, ts, dir, &held, alpn_h2, sink);
            }
            // Server bytes first (an h2c server's SETTINGS): the held client bytes came
            // before them.
            self.release(conn, sink);
        }
        if client && !alpn_h2 && matches!(self, Self::None) && could_be_either(bytes) {
            *self = Self::Held {
                held: bytes.to_vec(),
                cfg,
                ts,
            };
            return;
        }
        let preface = client && is_preface_start(bytes);
        match self {
            Self::None if alpn_h2 || preface => {
                *self = Self::H2(Box::new(H2Conn::new(cfg.http2, cfg)));
            }
            // An h2c server's SETTINGS came first: the client's preface decides. (Not once the
            // server's bytes upgraded the connection to WebSocket: that session is HTTP/1.1's,
            // and it must end with its `connection_end`.)
            Self::Http {
                client_seen: false,
                session,
            } if preface && !session.is_websocket() => {
                *self = Self::H2(Box::new(H2Conn::new(cfg.http2, cfg)));
            }
            Self::None => {
                *self = Self::Http {
                    session: Box::new(Session::new(cfg)),
                    client_seen: false,
                };
            }
            _ => {}
        }
        match self {
            Self::None | Self::Held { .. } => {}
            Self::Http {
                session,
                client_seen,
            } => {
                *client_seen |= client;
                session.data(conn, ts, dir, bytes, sink);
            }
            Self::H2(h2) => h2.data(conn, ts, dir, bytes, sink),
        }
    }

    /// `len` bytes of a direction were lost (a connection without payload yet becomes an
    /// HTTP/1.1 one, as before HTTP/2 existed).
    #[allow(clippy::too_many_arguments)]
    pub fn gap<S: Sink + ?Sized>(
        &mut self,
        cfg: SessionConfig,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        len: u64,
        start: bool,
        sink: &mut S,
    ) {
        self.release(conn, sink);
        if let Self::None = self {
            if !start {
                return;
            }
            *self = Self::Http {
                session: Box::new(Session::new(cfg)),
                client_seen: false,
            };
        }
        match self {
            Self::None | Self::Held { .. } => {}
            Self::Http { session, .. } => session.gap(conn, ts, dir, len, sink),
            Self::H2(h2) => h2.gap(conn, ts, dir, len, sink),
        }
    }

    /// A direction ended.
    pub fn eof<S: Sink + ?Sized>(
        &mut self,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        sink: &mut S,
    ) {
        self.release(conn, sink);
        match self {
            Self::None | Self::Held { .. } => {}
            Self::Http { session, .. } => session.eof(conn, ts, dir, sink),
            Self::H2(h2) => h2.eof(conn, ts, dir, sink),
        }
    }

    /// A TCP-level limit or anomaly.
    pub fn tcp_note<S: Sink + ?Sized>(
        &mut self,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        note: TcpNote,
        sink: &mut S,
    ) {
        self.release(conn, sink);
        match self {
            Self::None | Self::Held { .. } => {}
            Self::Http { session, .. } => session.tcp_note(conn, ts, dir, note, sink),
            Self::H2(h2) => h2.tcp_note(conn, ts, dir, note, sink),
        }
    }

    /// The TCP connection ended.
    pub fn end<S: Sink + ?Sized>(
        &mut self,
        conn: &ConnMeta,
        ts: Instant,
        reason: CloseReason,
        sink: &mut S,
    ) {
        self.release(conn, sink);
        match self {
            Self::None | Self::Held { .. } => {}
            Self::Http { session, .. } => session.end(conn, ts, reason, sink),
            Self::H2(h2) => h2.end(conn, ts, reason, sink),
        }
    }
}

impl App {
    /// Hands held client bytes to the layer they decide now (more bytes will not come first).
    fn release<S: Sink + ?Sized>(&mut self, conn: &ConnMeta, sink: &mut S) {
        if let Self::Held { held, cfg, ts } = self {
            let (held, cfg, ts) = (core::mem::take(held), *cfg, *ts);
            *self = Self::None;
            let preface = is_preface_start(&held);
            *self = if preface {
                Self::H2(Box::new(H2Conn::new(cfg.http2, cfg)))
            } else {
                Self::Http {
                    session: Box::new(Session::new(cfg)),
                    client_seen: true,
                }
            };
            match self {
                Self::Http { session, .. } => {
                    session.data(conn, ts, Direction::ClientToServer, &held, sink);
                }
                Self::H2(h2) => h2.data(conn, ts, Direction::ClientToServer, &held, sink),
                Self::None | Self::Held { .. } => {}
            }
        }
    }
}

/// Whether a client's first bytes are too few to tell the HTTP/2 preface from an HTTP/1.1
/// request line: a proper prefix of the preface shorter than `PRI * ` (the first six bytes
/// differ from every HTTP/1.1 method's request line).
fn could_be_either(bytes: &[u8]) -> bool {
    bytes.len() < 6 && is_preface_start(bytes)
}

/// Whether `bytes` start as the client preface does (all of it, or the part that came).
fn is_preface_start(bytes: &[u8]) -> bool {
    let n = bytes.len().min(frame::PREFACE.len());
    n > 0 && bytes[..n] == frame::PREFACE[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server's `101` for the RFC 6455 example key.
    const RESPONSE_101: &[u8] =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

    fn meta() -> ConnMeta {
        ConnMeta::new(
            core::net::SocketAddr::from(([10, 0, 0, 1], 1)),
            core::net::SocketAddr::from(([10, 0, 0, 2], 80)),
        )
    }

    #[test]
    fn the_layer_is_chosen_by_the_clients_first_bytes() {
        let cfg = SessionConfig::default();
        let mut sink = |_: &crate::event::Event<'_>| {};
        let t = Instant::ZERO;
        // An h2c server that speaks first (its SETTINGS), then the client's preface.
        let mut app = App::default();
        let settings = [0, 0, 0, 4, 0, 0, 0, 0, 0];
        app.data(
            cfg,
            &meta(),
            t,
            Direction::ServerToClient,
            &settings,
            false,
            &mut sink,
        );
        assert!(matches!(app, App::Http { .. }));
        app.data(
            cfg,
            &meta(),
            t,
            Direction::ClientToServer,
            frame::PREFACE,
            false,
            &mut sink,
        );
        assert!(matches!(app, App::H2(_)));
        // A preface cut after its first bytes.
        let mut app = App::default();
        app.data(
            cfg,
            &meta(),
            t,
            Direction::ClientToServer,
            b"PRI * ",
            false,
            &mut sink,
        );
        assert!(matches!(app, App::H2(_)));
        // HTTP/1.1 stays HTTP/1.1, also once the client spoke.
        let mut app = App::default();
        app.data(
            cfg,
            &meta(),
            t,
            Direction::ClientToServer,
            b"GET / HTTP/1.1\r\n",
            false,
            &mut sink,
        );
        app.data(
            cfg,
            &meta(),
            t,
            Direction::ClientToServer,
            frame::PREFACE,
            false,
            &mut sink,
        );
        assert!(matches!(app, App::Http { .. }));
        // ALPN h2 decides without the preface.
        let mut app = App::default();
        app.data(
            cfg,
            &meta(),
            t,
            Direction::ServerToClient,
            &settings,
            true,
            &mut sink,
        );
        assert!(matches!(app, App::H2(_)));
        // A gap before any byte: HTTP/1.1, as before HTTP/2 was read.
        let mut app = App::default();
        app.gap(
            cfg,
            &meta(),
            t,
            Direction::ClientToServer,
            10,
            false,
            &mut sink,
        );
        assert!(matches!(app, App::None));
        app.gap(
            cfg,
            &meta(),
            t,
            Direction::ClientToServer,
            10,
            true,
            &mut sink,
        );
        assert!(app.session().is_some());
    }

    /// The client's request was lost and the server's `101` came first: a (rejected) upgrade.
    /// Client bytes that begin like the preface then do not make it HTTP/2, and the session
    /// ends with its `connection_end` (the fuzzer found it dropped, with no end).
    #[test]
    fn a_server_upgrade_seen_first_keeps_the_connection_http1() {
        let cfg = SessionConfig::default();
        let kinds = core::cell::RefCell::new(Vec::new());
        let mut sink = |e: &crate::event::Event<'_>| kinds.borrow_mut().push(e.kind.name());
        let t = Instant::ZERO;
        let mut app = App::default();
        app.data(
            cfg,
            &meta(),
            t,
            Direction::ServerToClient,
            RESPONSE_101,
            false,
            &mut sink,
        );
        assert!(kinds.borrow().contains(&"established"));
        app.data(
            cfg,
            &meta(),
            t,
            Direction::ClientToServer,
            b"PRI * HTTP/2.0",
            false,
            &mut sink,
        );
        assert!(matches!(app, App::Http { .. }));
        app.end(&meta(), t, CloseReason::CaptureEnd, &mut sink);
        let kinds = kinds.borrow();
        assert_eq!(
            kinds.iter().filter(|k| **k == "connection_end").count(),
            1,
            "{kinds:?}"
        );
    }

    /// The client's first segment is a lone `P` (of `POST`): held, not taken for the HTTP/2
    /// preface; the request that follows is HTTP/1.1 and its upgrade is seen whole. A lone
    /// `PR` that the connection ends with still counts as a cut preface.
    #[test]
    fn a_first_byte_that_may_begin_the_preface_waits_for_the_next() {
        let cfg = SessionConfig::default();
        let established = core::cell::Cell::new(0);
        let mut sink = |e: &crate::event::Event<'_>| {
            if matches!(e.kind, crate::event::EventKind::Established(..)) {
                established.set(established.get() + 1);
            }
        };
        let t = Instant::ZERO;
        let c = Direction::ClientToServer;
        let mut app = App::default();
        app.data(cfg, &meta(), t, c, b"P", false, &mut sink);
        assert!(matches!(app, App::Held { .. }));
        app.data(
            cfg,
            &meta(),
            t,
            c,
            b"OST / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            false,
            &mut sink,
        );
        assert!(matches!(app, App::Http { .. }));
        app.data(
            cfg,
            &meta(),
            t,
            Direction::ServerToClient,
            RESPONSE_101,
            false,
            &mut sink,
        );
        assert!(app.session().is_some_and(Session::is_websocket));
        let mut app = App::default();
        app.data(cfg, &meta(), t, c, b"PR", false, &mut sink);
        assert!(matches!(app, App::Held { .. }));
        app.eof(&meta(), t, c, &mut sink);
        assert!(matches!(app, App::H2(_)));
        assert_eq!(established.get(), 1);
    }
}
