//! One HTTP/2 connection: both directions' frames ([`super::reader`]), header blocks
//! ([`super::hpack`]), and its streams. A stream whose request is an extended CONNECT for
//! `websocket` (RFC 8441 §4) and whose answer is a `2xx` becomes a WebSocket [`Session`] of its
//! own: its DATA, in order, per direction, feed that session as an HTTP/1.1 upgrade's bytes
//! feed its connection's.
//!
//! Streams are tracked only while they matter: a request is kept from its HEADERS to its
//! answer only when it is a WebSocket CONNECT, and a WebSocket stream until it ends. Other
//! streams cost nothing after their HEADERS; DATA on them is passed over. DATA on a stream
//! never opened is an anomaly. At most [`Http2Config::max_streams`] streams are tracked.

use std::borrow::Cow;
use std::collections::BTreeMap;

use wscope_proto::handshake::{ExtendedConnect, PseudoHeaders, Response};
use wscope_proto::observe::Upgrade;
use wscope_proto::role::Direction;
use wscope_proto::time::Instant;

use super::frame::{self, FrameHeader, FrameType};
use super::hpack::{Head, HeaderDecoder, HpackError, HpackLimits};
use super::reader::{Item, Reader};
use crate::event::{Event, EventKind};
use crate::session::{Session, SessionConfig, TcpNote};
use crate::sink::Sink;
use crate::tcp::{CloseReason, ConnMeta};

/// Limits of the HTTP/2 layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Http2Config {
    /// HPACK limits (dynamic table, header list).
    pub hpack: HpackLimits,
    /// Largest header block (HEADERS or PUSH_PROMISE and its CONTINUATIONs) gathered;
    /// beyond, the block is dropped (`http2_header_block_too_large`) and the direction's
    /// header blocks can no longer be decoded (default 64 KiB).
    pub max_header_block: usize,
    /// Most streams tracked at once (WebSocket requests waiting for their answer, and
    /// WebSocket streams); more are not followed (`http2_stream_limit`; default 1024).
    pub max_streams: usize,
    /// Most anomalies reported per connection; the others are counted (default 100).
    pub max_anomalies: u32,
}

impl Default for Http2Config {
    fn default() -> Self {
        Self {
            hpack: HpackLimits::default(),
            max_header_block: 64 << 10,
            max_streams: 1024,
            max_anomalies: 100,
        }
    }
}

/// A tracked stream.
#[derive(Debug)]
enum Stream {
    /// A WebSocket CONNECT waiting for its answer.
    Requested(Box<Head>),
    /// A WebSocket session.
    WebSocket(Box<WsStream>),
}

/// A WebSocket over one stream.
#[derive(Debug)]
struct WsStream {
    meta: ConnMeta,
    session: Session,
    /// Directions that ended the stream (END_STREAM).
    ended: [bool; 2],
    /// The client rejects the answer: no frames are read.
    rejected: bool,
}

/// A header block being gathered (HEADERS/PUSH_PROMISE, then CONTINUATION).
#[derive(Debug)]
struct Block {
    stream: u32,
    end_stream: bool,
    /// A PUSH_PROMISE's block (decoded for the table, not a request or answer).
    push: bool,
    bytes: Vec<u8>,
    /// Over the cap: dropped.
    dropped: bool,
}

/// One direction.
#[derive(Debug)]
struct Side {
    reader: Reader,
    hpack: HeaderDecoder,
    block: Option<Block>,
    /// The highest stream id this side opened (client: odd; server: even, by PUSH_PROMISE).
    max_opened: u32,
}

/// The HTTP/2 state of one TCP connection (see the [module docs](self)).
#[derive(Debug)]
pub struct H2Conn {
    cfg: Http2Config,
    session: SessionConfig,
    sides: [Side; 2],
    streams: BTreeMap<u32, Stream>,
    /// The server announced `SETTINGS_ENABLE_CONNECT_PROTOCOL` = 1 (RFC 8441 §3).
    connect_protocol: bool,
    /// A WebSocket stream was seen: anomalies are reported.
    websocket: bool,
    anomalies: u32,
    /// Anomalies not reported (over the cap, or on a connection without WebSocket).
    suppressed: u64,
    /// The stream limit was reported.
    limit_reported: bool,
}

/// What the connection needs to emit events.
struct Cx<'a, S: ?Sized> {
    conn: &'a ConnMeta,
    ts: Instant,
    sink: &'a mut S,
}

impl H2Conn {
    /// The state of a connection whose client preface starts now.
    pub fn new(cfg: Http2Config, session: SessionConfig) -> Self {
        let side = |client: bool| Side {
            reader: Reader::new(client, cfg.max_header_block.max(1 << 14)),
            hpack: HeaderDecoder::new(cfg.hpack),
            block: None,
            max_opened: 0,
        };
        Self {
            cfg,
            session,
            sides: [side(true), side(false)],
            streams: BTreeMap::new(),
            connect_protocol: false,
            websocket: false,
            anomalies: 0,
            suppressed: 0,
            limit_reported: false,
        }
    }

    /// Streams tracked now.
    pub fn tracked(&self) -> usize {
        self.streams.len()
    }

    /// Anomalies not reported: over [`Http2Config::max_anomalies`], or on a connection that
    /// neither carried a WebSocket stream nor offered extended CONNECT.
    pub const fn suppressed_anomalies(&self) -> u64 {
        self.suppressed
    }

    /// Whether the server announced `SETTINGS_ENABLE_CONNECT_PROTOCOL`.
    pub const fn connect_protocol(&self) -> bool {
        self.connect_protocol
    }

    /// In-order bytes of one direction.
    pub fn data<S: Sink + ?Sized>(
        &mut self,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        bytes: &[u8],
        sink: &mut S,
    ) {
        let mut cx = Cx { conn, ts, sink };
        let d = dir.index();
        // The reader hands out borrowed items while the rest of the state changes.
        let mut reader = core::mem::replace(&mut self.sides[d].reader, Reader::new(false, 0));
        reader.feed(bytes, &mut |item| self.item(&mut cx, dir, item));
        // SETTINGS of this direction change the other direction's reader only.
        self.sides[d].reader = reader;
    }

    /// `len` bytes of a direction were lost: its frames and header blocks can no longer be
    /// followed (the WebSocket streams' other direction goes on).
    pub fn gap<S: Sink + ?Sized>(
        &mut self,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        len: u64,
        sink: &mut S,
    ) {
        let side = &mut self.sides[dir.index()];
        if side.reader.is_stopped() {
            return;
        }
        side.reader.stop();
        side.hpack.lose();
        side.block = None;
        let mut cx = Cx { conn, ts, sink };
        self.anomaly(
            &mut cx,
            dir,
            None,
            "http2_gap",
            format!("{len} bytes lost: the frames of this direction can no longer be followed"),
        );
        let ids: Vec<u32> = self.ws_ids();
        for id in ids {
            if let Some(Stream::WebSocket(ws)) = self.streams.get_mut(&id) {
                if !ws.rejected {
                    ws.session.gap(&ws.meta, ts, dir, len, cx.sink);
                }
            }
        }
    }

    /// A direction ended (TCP FIN): every WebSocket stream ends in that direction.
    pub fn eof<S: Sink + ?Sized>(
        &mut self,
        _conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        sink: &mut S,
    ) {
        for s in self.streams.values_mut() {
            if let Stream::WebSocket(ws) = s {
                if !ws.rejected && !ws.ended[dir.index()] {
                    ws.session.eof(&ws.meta, ts, dir, sink);
                }
            }
        }
    }

    /// A TCP-level note: reported once on the connection, when it carried a WebSocket.
    pub fn tcp_note<S: Sink + ?Sized>(
        &mut self,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        note: TcpNote,
        sink: &mut S,
    ) {
        // The first WebSocket stream's session words it (it is established).
        if let Some(ws) = self.streams.values_mut().find_map(|s| match s {
            Stream::WebSocket(ws) => Some(ws),
            Stream::Requested(_) => None,
        }) {
            ws.session.tcp_note(conn, ts, dir, note, sink);
        }
    }

    /// The TCP connection ended: every WebSocket stream still open ends with it, in stream
    /// order.
    pub fn end<S: Sink + ?Sized>(
        &mut self,
        _conn: &ConnMeta,
        ts: Instant,
        reason: CloseReason,
        sink: &mut S,
    ) {
        let streams = core::mem::take(&mut self.streams);
        for (_, s) in streams {
            if let Stream::WebSocket(mut ws) = s {
                end_stream(&mut ws, ts, reason, sink);
            }
        }
    }

    fn ws_ids(&self) -> Vec<u32> {
        self.streams
            .iter()
            .filter(|(_, s)| matches!(s, Stream::WebSocket(_)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// One item of direction `dir`.
    fn item<S: Sink + ?Sized>(&mut self, cx: &mut Cx<'_, S>, dir: Direction, item: Item<'_>) {
        match item {
            Item::BadPreface => {
                self.anomaly(
                    cx,
                    dir,
                    None,
                    "http2_bad_preface",
                    "the client's bytes are not the HTTP/2 connection preface".into(),
                );
            }
            Item::Data { header, bytes } => self.stream_data(cx, dir, &header, bytes),
            Item::DataEnd(h) => {
                if self.expecting_continuation(cx, dir, &h) {
                    return;
                }
                self.data_unknown(cx, dir, &h);
                if h.has(frame::END_STREAM) {
                    self.stream_end(cx, dir, h.stream);
                }
            }
            Item::BadPadding(h, e) => {
                self.anomaly(
                    cx,
                    dir,
                    None,
                    "http2_frame_error",
                    format!("stream {}: {e}", h.stream),
                );
            }
            Item::Oversized { header, max } => {
                self.anomaly(
                    cx,
                    dir,
                    None,
                    "http2_frame_too_large",
                    format!(
                        "{:?} frame of {} bytes on stream {}: over the peer's \
                         SETTINGS_MAX_FRAME_SIZE of {max}",
                        header.kind, header.len, header.stream
                    ),
                );
            }
            Item::Skipped(h) => {
                let what = format!(
                    "{:?} frame of {} bytes on stream {} passed over (over {} bytes)",
                    h.kind, h.len, h.stream, self.cfg.max_header_block
                );
                if matches!(
                    h.kind,
                    FrameType::Headers | FrameType::Continuation | FrameType::PushPromise
                ) {
                    let side = &mut self.sides[dir.index()];
                    side.hpack.lose();
                    side.block = None;
                    self.anomaly(cx, dir, None, "http2_header_block_too_large", what);
                } else if !matches!(h.kind, FrameType::Unknown(_)) {
                    self.anomaly(cx, dir, None, "http2_frame_too_large", what);
                }
            }
            Item::Frame(h, payload) => self.frame(cx, dir, &h, payload),
        }
    }

    /// A frame arrived while a header block waits for its CONTINUATION: a protocol error
    /// (RFC 9113 §6.10); the block is dropped and the table is lost. Returns whether it was
    /// so.
    fn expecting_continuation<S: Sink + ?Sized>(
        &mut self,
        cx: &mut Cx<'_, S>,
        dir: Direction,
        h: &FrameHeader,
    ) -> bool {
        let side = &mut self.sides[dir.index()];
        let Some(b) = &side.block else {
            return false;
        };
        if h.kind == FrameType::Continuation && h.stream == b.stream {
            return false;
        }
        let stream = b.stream;
        side.block = None;
        side.hpack.lose();
        self.anomaly(
            cx,
            dir,
            None,
            "http2_protocol_error",
            format!(
                "{:?} frame on stream {} while the header block of stream {stream} waits for \
                 its CONTINUATION",
                h.kind, h.stream
            ),
        );
        true
    }

    fn frame<S: Sink + ?Sized>(
        &mut self,
        cx: &mut Cx<'_, S>,
        dir: Direction,
        h: &FrameHeader,
        payload: &[u8],
    ) {
        if self.expecting_continuation(cx, dir, h) && h.kind != FrameType::Headers {
            return;
        }
        let r = match h.kind {
            FrameType::Headers => self.headers(cx, dir, h, payload),
            FrameType::Continuation => {
                self.continuation(cx, dir, h, payload);
                Ok(())
            }
            FrameType::PushPromise => self.push_promise(cx, dir, h, payload),
            FrameType::Settings => self.settings(dir, h, payload),
            FrameType::RstStream => frame::rst_stream(h, payload).map(|code| {
                self.reset(cx, dir, h.stream, code);
            }),
            FrameType::GoAway => frame::goaway(h, payload).map(|(last, _code)| {
                self.goaway(cx, dir, last);
            }),
            // Flow control, liveness and priorities change nothing for an observer.
            FrameType::Data
            | FrameType::Priority
            | FrameType::Ping
            | FrameType::WindowUpdate
            | FrameType::Unknown(_) => Ok(()),
        };
        if let Err(e) = r {
            self.anomaly(
                cx,
                dir,
                None,
                "http2_frame_error",
                format!("stream {}: {e}", h.stream),
            );
        }
    }

    fn settings(
        &mut self,
        dir: Direction,
        h: &FrameHeader,
        payload: &[u8],
    ) -> Result<(), frame::FrameError> {
        for (id, value) in frame::settings(h, payload)? {
            match id {
                // Frames sent TO this side are limited by it.
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    self.sides[dir.reverse().index()]
                        .reader
                        .set_max_frame(value);
                }
                frame::SETTINGS_ENABLE_CONNECT_PROTOCOL if dir == Direction::ServerToClient => {
                    self.connect_protocol = value == 1;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn headers<S: Sink + ?Sized>(
        &mut self,
        cx: &mut Cx<'_, S>,
        dir: Direction,
        h: &FrameHeader,
        payload: &[u8],
    ) -> Result<(), frame::FrameError> {
        if h.stream == 0 {
            return Err(frame::FrameError::BadStream {
                kind: h.kind,
                stream: 0,
            });
        }
        let fragment = frame::headers_fragment(h, payload)?;
        self.start_block(cx, dir, h, fragment, false);
        Ok(())
    }

    fn push_promise<S: Sink + ?Sized>(
        &mut self,
        cx: &mut Cx<'_, S>,
        dir: Direction,
        h: &FrameHeader,
        payload: &[u8],
    ) -> Result<(), frame::FrameError> {
        // Padding as HEADERS, then the promised stream id instead of priority fields.
        let plain = FrameHeader {
            flags: h.flags & !frame::PRIORITY,
            ..*h
        };
        let body = frame::headers_fragment(&plain, payload)?;
        let Some((id, fragment)) = body.split_first_chunk::<4>() else {
            return Err(frame::FrameError::BadLength {
                kind: h.kind,
                len: h.len,
            });
        };
        let promised = u32::from_be_bytes(*id) & 0x7fff_ffff;
        let side = &mut self.sides[dir.index()];
        side.max_opened = side.max_opened.max(promised);
        self.start_block(cx, dir, h, fragment, true);
        Ok(())
    }

    fn start_block<S: Sink + ?Sized>(
        &mut self,
        cx: &mut Cx<'_, S>,
        dir: Direction,
        h: &FrameHeader,
        fragment: &[u8],
        push: bool,
    ) {
        let block = Block {
            stream: h.stream,
            end_stream: h.has(frame::END_STREAM),
            push,
            bytes: Vec::new(),
            dropped: false,
        };
        self.sides[dir.index()].block = Some(block);
        self.add_fragment(cx, dir, fragment, h.has(frame::END_HEADERS));
    }

    fn continuation<S: Sink + ?Sized>(
        &mut self,
        cx: &mut Cx<'_, S>,
        dir: Direction,
        h: &FrameHeader,
        payload: &[u8],
    ) {
        if self.sides[dir.index()].block.is_none() {
            self.anomaly(
                cx,
                dir,
                None,
                "http2_protocol_error",
                format!("CONTINUATION on stream {} without a header block", h.stream),
            );
            return;
        }
        self.add_fragment(cx, dir, payload, h.has(frame::END_HEADERS));
    }

    fn add_fragment<S: Sink + ?Sized>(
        &mut self,
        cx: &mut Cx<'_, S>,
        dir: Direction,
        fragment: &[u8],
        end: bool,
    ) {
        let cap = self.cfg.max_header_block;
        let side = &mut self.sides[dir.index()];
        let Some(block) = side.block.as_mut() else {
            return;
        };
        if !block.dropped {
            if block.bytes.len().saturating_add(fragment.len()) > cap {
                // Endless CONTINUATION or a huge block: dropped, and with it the table.
                block.dropped = true;
                block.bytes = Vec::new();
                side.hpack.lose();
                let stream = block.stream;
                self.anomaly(
                    cx,
                    dir,
                    Some(stream),
                    "http2_header_block_too_large",
                    format!("header block of stream {stream} over {cap} bytes: dropped"),
                );
            } else {
                block.bytes.extend_from_slice(fragment);
            }
        }
        if !end {
            return;
        }
        let Some(block) = self.sides[dir.index()].block.take() else {
            return;
        };
        if block.dropped {
            return;
        }
        let decoded = self.sides[dir.index()].hpack.decode(&block.bytes);
        match decoded {
            Ok(head) if !block.push => self.head(cx, dir, block.stream, head, block.end_stream),
            Ok(_) => {}
            Err(e) => {
                let name = match e {
                    HpackError::ListTooLarge { .. } => "http2_header_list_too_large",
                    _ => "http2_hpack_error",
                };
                // A request that cannot be read is not followed; its answer is not either.
                if let Some(Stream::Requested(_)) = self.streams.get(&block.stream) {
                    self.streams.remove(&block.stream);
                }
                self.anomaly(cx, dir, None, name, format!("stream {}: {e}", block.stream));
            }
        }
    }

    /// A decoded header block of `stream`.
    fn head<S: Sink + ?Sized>(
        &mut self,
        cx: &mut Cx<'_, S>,
        dir: Direction,
        stream: u32,
        head: Head,
        end_stream: bool,
    ) {
        match dir {
            Direction::ClientToServer => {
                let side = &mut self.sides[dir.index()];
                let new = stream > side.max_opened;
                if new {
                    side.max_opened = stream;
                }
                if new && head.is_websocket_connect() {
                    if self.streams.len() >= self.cfg.max_streams {
                        if !self.limit_reported {
                            self.limit_reported = true;
                            let max = self.cfg.max_streams;
                            self.anomaly(
                                cx,
                                dir,
                                None,
                                "http2_stream_limit",
                                format!("{max} streams tracked: stream {stream} and later ones are not followed"),
                            );
                        }
                        return;
                    }
                    self.streams
                        .insert(stream, Stream::Requested(Box::new(head)));
                } else if end_stream {
                    self.stream_end(cx, dir, stream);
                }
            }
            Direction::ServerToClient => {
                let Some(status) = head.status else {
                    // Trailers.
                    if end_stream {
                        self.stream_end(cx, dir, stream);
                    }
                    return;
                };
                match self.streams.get(&stream) {
                    Some(Stream::Requested(_)) if (100..200).contains(&status) => return,
                    Some(Stream::Requested(_)) => {}
                    Some(Stream::WebSocket(_)) => {
                        if end_stream {
                            self.stream_end(cx, dir, stream);
                        }
                        return;
                    }
                    None => return,
                }
                let Some(Stream::Requested(req)) = self.streams.remove(&stream) else {
                    return;
                };
                if !(200..300).contains(&status) {
                    // Refused: no WebSocket.
                    return;
                }
                self.establish(cx, stream, &req, &head, status);
                if end_stream {
                    self.stream_end(cx, dir, stream);
                }
            }
        }
    }

    /// A `2xx` to a WebSocket CONNECT: a session for the stream, its `established` event and
    /// the request's problems.
    fn establish<S: Sink + ?Sized>(
        &mut self,
        cx: &mut Cx<'_, S>,
        stream: u32,
        req: &Head,
        resp: &Head,
        status: u16,
    ) {
        let mut pseudo = PseudoHeaders::default();
        pseudo.method = req.method.as_deref();
        pseudo.protocol = req.protocol.as_deref();
        pseudo.scheme = req.scheme.as_deref();
        pseudo.authority = req.authority.as_deref();
        pseudo.path = req.path.as_deref();
        let connect = ExtendedConnect::from_parts(pseudo, req.field_pairs());
        let accepted = connect.check_response(status, resp.field_pairs());
        let response = Response::from_parts(status, resp.field_pairs());
        let upgrade = Upgrade::http2(connect.request().clone(), response, accepted.is_ok());
        let meta = cx.conn.for_stream(stream);
        let mut ws = Box::new(WsStream {
            meta,
            session: Session::after_upgrade(self.session, upgrade),
            ended: [false; 2],
            rejected: accepted.is_err(),
        });
        self.websocket = true;
        // The `established` event.
        ws.session
            .data(&ws.meta, cx.ts, Direction::ServerToClient, &[], cx.sink);
        let mut problems = connect.problems();
        if let Err(e) = accepted {
            problems.push(e);
        }
        for e in problems {
            cx.sink.event(&Event {
                ts: cx.ts,
                conn: &ws.meta,
                dir: Direction::ClientToServer,
                kind: EventKind::Anomaly {
                    name: e.name(),
                    zeek_weird: None,
                    detail: Cow::Owned(e.to_string()),
                },
            });
        }
        self.streams.insert(stream, Stream::WebSocket(ws));
    }

    fn stream_data<S: Sink + ?Sized>(
        &mut self,
        cx: &mut Cx<'_, S>,
        dir: Direction,
        h: &FrameHeader,
        bytes: &[u8],
    ) {
        match self.streams.get_mut(&h.stream) {
            Some(Stream::WebSocket(ws)) if !ws.rejected && !ws.ended[dir.index()] => {
                ws.session.data(&ws.meta, cx.ts, dir, bytes, cx.sink);
            }
            // A rejected answer (no frames are read), or DATA after END_STREAM.
            Some(Stream::WebSocket(_)) => {}
            // DATA before the answer (RFC 8441 §5: the client waits for it): passed over.
            Some(Stream::Requested(_)) => {}
            // Not tracked: another kind of stream, or one never opened (see `data_unknown`).
            None => {}
        }
    }

    /// The end of a DATA frame on a stream that is not tracked: an anomaly when the stream was
    /// never opened (idle, RFC 9113 §5.1; client streams are odd, pushed ones even).
    fn data_unknown<S: Sink + ?Sized>(
        &mut self,
        cx: &mut Cx<'_, S>,
        dir: Direction,
        h: &FrameHeader,
    ) {
        if self.streams.contains_key(&h.stream) {
            return;
        }
        let opener = if h.stream % 2 == 1 {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        if h.stream == 0 || h.stream > self.sides[opener.index()].max_opened {
            self.anomaly(
                cx,
                dir,
                None,
                "http2_data_unknown_stream",
                format!(
                    "DATA frame of {} bytes on stream {}, never opened",
                    h.len, h.stream
                ),
            );
        }
    }

    /// `dir` ended `stream` (END_STREAM).
    fn stream_end<S: Sink + ?Sized>(&mut self, cx: &mut Cx<'_, S>, dir: Direction, stream: u32) {
        let Some(Stream::WebSocket(ws)) = self.streams.get_mut(&stream) else {
            return;
        };
        let d = dir.index();
        if ws.ended[d] {
            return;
        }
        ws.ended[d] = true;
        if !ws.rejected {
            ws.session.eof(&ws.meta, cx.ts, dir, cx.sink);
        }
        if ws.ended == [true, true] {
            if let Some(Stream::WebSocket(mut ws)) = self.streams.remove(&stream) {
                end_stream(&mut ws, cx.ts, CloseReason::StreamEnd, cx.sink);
            }
        }
    }

    /// RST_STREAM from `dir`'s sender.
    fn reset<S: Sink + ?Sized>(
        &mut self,
        cx: &mut Cx<'_, S>,
        dir: Direction,
        stream: u32,
        code: u32,
    ) {
        match self.streams.remove(&stream) {
            Some(Stream::WebSocket(mut ws)) => {
                cx.sink.event(&Event {
                    ts: cx.ts,
                    conn: &ws.meta,
                    dir,
                    kind: EventKind::Reset { error_code: code },
                });
                end_stream(&mut ws, cx.ts, CloseReason::StreamReset(dir), cx.sink);
            }
            Some(Stream::Requested(_)) | None => {}
        }
    }

    /// GOAWAY from `dir`'s sender: the streams its peer opened above `last` were not and will
    /// not be processed (RFC 9113 §6.8).
    fn goaway<S: Sink + ?Sized>(&mut self, cx: &mut Cx<'_, S>, dir: Direction, last: u32) {
        // Streams the receiver of the GOAWAY opened: odd for a server's GOAWAY.
        let parity = u32::from(dir == Direction::ServerToClient);
        let gone: Vec<u32> = self
            .streams
            .range(last.saturating_add(1)..)
            .map(|(id, _)| *id)
            .filter(|id| id % 2 == parity)
            .collect();
        for id in gone {
            if let Some(Stream::WebSocket(mut ws)) = self.streams.remove(&id) {
                end_stream(&mut ws, cx.ts, CloseReason::GoAway(dir), cx.sink);
            }
        }
    }

    /// Reports an anomaly (on the connection, or on a WebSocket stream), within the cap and
    /// when the connection is one worth reporting on: it carried a WebSocket, its server
    /// offered extended CONNECT, or HTTP anomalies are wanted.
    fn anomaly<S: Sink + ?Sized>(
        &mut self,
        cx: &mut Cx<'_, S>,
        dir: Direction,
        stream: Option<u32>,
        name: &'static str,
        detail: String,
    ) {
        let worth = self.websocket || self.connect_protocol || self.session.http_anomalies;
        if !worth || self.anomalies >= self.cfg.max_anomalies {
            self.suppressed += 1;
            return;
        }
        self.anomalies += 1;
        let meta = match stream.and_then(|s| self.streams.get(&s)) {
            Some(Stream::WebSocket(ws)) => ws.meta,
            _ => *cx.conn,
        };
        cx.sink.event(&Event {
            ts: cx.ts,
            conn: &meta,
            dir,
            kind: EventKind::Anomaly {
                name,
                zeek_weird: None,
                detail: Cow::Owned(detail),
            },
        });
    }
}

/// Ends a WebSocket stream's session: its `connection_end` (also for a rejected one, which
/// had an `established`), and the sinks forget it.
fn end_stream<S: Sink + ?Sized>(ws: &mut WsStream, ts: Instant, reason: CloseReason, sink: &mut S) {
    ws.session.end(&ws.meta, ts, reason, sink);
    sink.connection_closed(&ws.meta);
}
