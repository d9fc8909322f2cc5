//! WebSocket over HTTP/2 (RFC 8441), passive: captures built here frame by frame (HPACK by
//! `loona-hpack`'s encoder, one per direction as peers keep them), run through the analyzer:
//! many WebSocket streams on one connection (each its own session, uid and `stream_id`),
//! padding, CONTINUATION, RST_STREAM, GOAWAY, a refused answer, and hostile input (an HPACK
//! error, DATA on a stream never opened, endless CONTINUATION, an HPACK bomb, a flood of
//! streams) that never loses the other streams.

use std::collections::BTreeMap;
use std::io::Cursor;

use sha2::{Digest, Sha256};
use wscope_inspect::analyzer::{Analyzer, AnalyzerConfig, Stats};
use wscope_inspect::capture::Capture;
use wscope_inspect::event::{ConnectionEnd, Event, OwnedEvent, OwnedKind};
use wscope_inspect::http2::{H2Conn, Http2Config};
use wscope_inspect::log::json::JsonLines;
use wscope_inspect::session::SessionConfig;
use wscope_inspect::sink::Sink;
use wscope_inspect::tcp::{CloseReason, ConnMeta};
use wscope_proto::role::Direction;
use wscope_proto::time::Instant;
use wscope_test_support::capture::Framing;
use wscope_test_support::wire::frame as ws_frame;

use crate::support::{addr, Conv, Trace, C2S, S2C};

/// HTTP/2 frame types and flags used here (RFC 9113 §6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One HTTP/2 frame.
pub(crate) fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let l = (payload.len() as u32).to_be_bytes();
    let mut v = vec![l[1], l[2], l[3], kind, flags];
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// A DATA frame, padded with `pad` bytes when given.
pub(crate) fn data(stream: u32, end: bool, pad: Option<u8>, bytes: &[u8]) -> Vec<u8> {
    let flags = if end { END_STREAM } else { 0 };
    match pad {
        Some(p) => {
            let mut payload = vec![p];
            payload.extend_from_slice(bytes);
            payload.extend(core::iter::repeat_n(0, usize::from(p)));
            h2_frame(DATA, flags | PADDED, stream, &payload)
        }
        None => h2_frame(DATA, flags, stream, bytes),
    }
}

/// Both directions' HPACK encoders and the bytes to send, as a list of (direction, bytes).
pub(crate) struct H2Script {
    enc: [loona_hpack::Encoder<'static>; 2],
    pub(crate) sends: Vec<(Direction, Vec<u8>)>,
}

impl H2Script {
    /// The preface and both SETTINGS (the server's offers extended CONNECT), acknowledged.
    pub(crate) fn new() -> Self {
        let mut s = Self {
            enc: [loona_hpack::Encoder::new(), loona_hpack::Encoder::new()],
            sends: Vec::new(),
        };
        let mut c = PREFACE.to_vec();
        c.extend(h2_frame(SETTINGS, 0, 0, &[0, 4, 0, 0x10, 0, 0]));
        s.send(C2S, c);
        // SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441 §3).
        s.send(S2C, h2_frame(SETTINGS, 0, 0, &[0, 8, 0, 0, 0, 1]));
        s.send(C2S, h2_frame(SETTINGS, 1, 0, &[]));
        s.send(S2C, h2_frame(SETTINGS, 1, 0, &[]));
        s
    }

    pub(crate) fn send(&mut self, dir: Direction, bytes: Vec<u8>) {
        match self.sends.last_mut() {
            Some((d, b)) if *d == dir => b.extend(bytes),
            _ => self.sends.push((dir, bytes)),
        }
    }

    /// The HPACK block of `fields` for `dir`.
    pub(crate) fn block(&mut self, dir: Direction, fields: &[(&str, &str)]) -> Vec<u8> {
        self.enc[dir.index()].encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    /// A HEADERS frame (the block cut into CONTINUATIONs of `cut` bytes when given).
    pub(crate) fn headers(
        &mut self,
        dir: Direction,
        stream: u32,
        fields: &[(&str, &str)],
        end_stream: bool,
        cut: Option<usize>,
    ) {
        let block = self.block(dir, fields);
        let es = if end_stream { END_STREAM } else { 0 };
        let Some(cut) = cut else {
            self.send(dir, h2_frame(HEADERS, es | END_HEADERS, stream, &block));
            return;
        };
        let pieces: Vec<&[u8]> = block.chunks(cut).collect();
        for (i, p) in pieces.iter().enumerate() {
            let last = i + 1 == pieces.len();
            let end = if last { END_HEADERS } else { 0 };
            let f = if i == 0 {
                h2_frame(HEADERS, es | end, stream, p)
            } else {
                h2_frame(CONTINUATION, end, stream, p)
            };
            self.send(dir, f);
        }
    }

    /// An extended CONNECT for a WebSocket on `stream`.
    pub(crate) fn connect(
        &mut self,
        stream: u32,
        path: &str,
        extra: &[(&str, &str)],
        cut: Option<usize>,
    ) {
        let mut fields = vec![
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":path", path),
            (":authority", "example.com"),
            ("sec-websocket-version", "13"),
            ("user-agent", "h2-test"),
        ];
        fields.extend_from_slice(extra);
        self.headers(C2S, stream, &fields, false, cut);
    }

    /// The server's answer.
    pub(crate) fn answer(&mut self, stream: u32, status: &str, extra: &[(&str, &str)]) {
        let mut fields = vec![(":status", status)];
        fields.extend_from_slice(extra);
        self.headers(S2C, stream, &fields, false, None);
    }

    /// As a cleartext (h2c) capture.
    pub(crate) fn capture(&self, port: u16) -> Vec<u8> {
        let mut t = Trace::new(Framing::Ethernet);
        self.write(&mut t, port);
        t.finish()
    }

    /// Writes the connection (handshake, the sends in 1400-byte segments, FINs) to `t`.
    pub(crate) fn write(&self, t: &mut Trace, port: u16) {
        let mut conv = Conv::new(&format!("10.0.0.1:{port}"), "10.0.0.2:80", 1000, 50_000);
        conv.handshake(t);
        for (dir, bytes) in &self.sends {
            for seg in bytes.chunks(1400) {
                let spec = if *dir == C2S {
                    conv.client(seg)
                } else {
                    conv.server(seg)
                };
                t.tcp(spec);
            }
        }
        conv.close(t);
    }
}

fn sha(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn mask(i: u32) -> Option<[u8; 4]> {
    Some((i.wrapping_mul(0x9e37_79b9) | 1).to_be_bytes())
}

/// One session's stream id, events and their directions.
type Reported = (Option<u32>, Vec<OwnedKind>, Vec<Direction>);

/// Message digests a stream sent, per direction.
type Sent = BTreeMap<u32, [Vec<[u8; 32]>; 2]>;

/// What the analyzer reported, per session uid.
#[derive(Debug, Default)]
struct Sessions {
    /// uid → (stream id, events).
    by_uid: BTreeMap<String, Reported>,
    /// Anomalies on the connection itself.
    conn_anomalies: Vec<String>,
    stats: Stats,
}

fn analyze(capture: Vec<u8>, cfg: AnalyzerConfig) -> Sessions {
    let mut out = Sessions::default();
    let mut cap = Capture::from_reader(Cursor::new(capture), "h2");
    let mut sink = |ev: &Event<'_>| {
        let o = OwnedEvent::from(ev);
        if o.conn.stream_id.is_none() {
            if let OwnedKind::Anomaly { name, .. } = &o.kind {
                out.conn_anomalies.push(name.to_string());
            }
            return;
        }
        let e = out
            .by_uid
            .entry(o.conn.uid.to_string())
            .or_insert_with(|| (o.conn.stream_id, Vec::new(), Vec::new()));
        assert_eq!(e.0, o.conn.stream_id, "one uid, one stream");
        e.1.push(o.kind);
        e.2.push(o.dir);
    };
    let stats = Analyzer::new(cfg).run(&mut cap, &mut sink).unwrap();
    out.stats = stats;
    out
}

fn digest_cfg() -> AnalyzerConfig {
    let mut cfg = AnalyzerConfig::default();
    cfg.session.digest = true;
    cfg.flow.uid_seed = 21;
    cfg
}

/// Message digests of one session, per direction.
fn messages(kinds: &[OwnedKind], dirs: &[Direction], dir: Direction) -> Vec<[u8; 32]> {
    kinds
        .iter()
        .zip(dirs)
        .filter(|(_, d)| **d == dir)
        .filter_map(|(k, _)| match k {
            OwnedKind::Message {
                opcode,
                sha256: Some(h),
                ..
            } if opcode.0 == 1 || opcode.0 == 2 => Some(*h),
            _ => None,
        })
        .collect()
}

/// `n` WebSocket streams on one connection, two messages each way per stream, interleaved
/// across streams, with padded DATA, WebSocket frames cut across DATA frames, a request in
/// CONTINUATIONs, and a clean close on each. Returns the script and what each stream sent.
fn many_streams(n: u32) -> (H2Script, Sent) {
    let mut s = H2Script::new();
    let mut sent = Sent::new();
    for i in 0..n {
        let id = 2 * i + 1;
        let cut = (i == 5).then_some(7);
        let offer = [("sec-websocket-protocol", "chat, superchat")];
        s.connect(
            id,
            &format!("/chat/{id}?n={i}"),
            if i % 3 == 0 { &offer } else { &[] },
            cut,
        );
        let chosen = [("sec-websocket-protocol", "chat")];
        s.answer(id, "200", if i % 3 == 0 { &chosen } else { &[] });
        sent.insert(id, [Vec::new(), Vec::new()]);
    }
    for round in 0..2u32 {
        for i in 0..n {
            let id = 2 * i + 1;
            let text = format!(
                "stream {id} round {round} {}",
                "x".repeat((i * 37 % 300) as usize)
            );
            let frame = ws_frame(true, false, 0x1, mask(id + round), text.as_bytes());
            let pad = ((i + round) % 4 == 0).then_some((i % 7) as u8 + 1);
            if (i + round) % 5 == 0 {
                // One WebSocket frame in two DATA frames.
                let (a, b) = frame.split_at(frame.len() / 2);
                s.send(C2S, data(id, false, pad, a));
                s.send(C2S, data(id, false, None, b));
            } else {
                s.send(C2S, data(id, false, pad, &frame));
            }
            sent.get_mut(&id).unwrap()[0].push(sha(text.as_bytes()));
            let echo: Vec<u8> = text.bytes().rev().collect();
            s.send(
                S2C,
                data(id, false, pad, &ws_frame(true, false, 0x2, None, &echo)),
            );
            sent.get_mut(&id).unwrap()[1].push(sha(&echo));
            // Flow control frames change nothing.
            s.send(C2S, h2_frame(WINDOW_UPDATE, 0, id, &[0, 0, 0x10, 0]));
        }
    }
    for i in 0..n {
        let id = 2 * i + 1;
        let close = ws_frame(true, false, 0x8, mask(id), &[0x03, 0xe8]);
        s.send(C2S, data(id, false, None, &close));
        s.send(
            S2C,
            data(
                id,
                true,
                None,
                &ws_frame(true, false, 0x8, None, &[0x03, 0xe8]),
            ),
        );
        s.send(C2S, data(id, true, None, &[]));
    }
    (s, sent)
}

#[test]
fn a_hundred_websocket_streams_on_one_connection_are_each_their_own_session() {
    let (script, sent) = many_streams(100);
    let r = analyze(script.capture(40000), digest_cfg());
    assert_eq!(r.conn_anomalies, Vec::<String>::new());
    assert_eq!(r.by_uid.len(), 100, "one uid per stream");
    assert_eq!(r.stats.sessions, 100);
    assert_eq!(r.stats.connections, 1);
    let mut seen_streams = Vec::new();
    for (uid, (stream, kinds, dirs)) in &r.by_uid {
        let id = stream.unwrap();
        seen_streams.push(id);
        let OwnedKind::Established(up) = &kinds[0] else {
            panic!("{uid}: first event {:?}", kinds[0]);
        };
        assert!(up.is_http2() && up.accepted(), "{uid}");
        assert_eq!(up.host(), Some("example.com"));
        let i = (id - 1) / 2;
        assert_eq!(up.uri(), Some(format!("/chat/{id}?n={i}").as_str()));
        assert_eq!(up.user_agent(), Some("h2-test"));
        if i % 3 == 0 {
            assert_eq!(up.subprotocol(), Some("chat"));
            assert_eq!(
                up.client_protocols().collect::<Vec<_>>(),
                ["chat", "superchat"]
            );
        }
        let want = &sent[&id];
        assert_eq!(
            messages(kinds, dirs, C2S),
            want[0],
            "stream {id} client messages"
        );
        assert_eq!(
            messages(kinds, dirs, S2C),
            want[1],
            "stream {id} server messages"
        );
        let anomalies: Vec<_> = kinds
            .iter()
            .filter(|k| matches!(k, OwnedKind::Anomaly { .. }))
            .collect();
        assert!(anomalies.is_empty(), "stream {id}: {anomalies:?}");
        assert_eq!(
            kinds.last(),
            Some(&OwnedKind::ConnectionEnd(ConnectionEnd {
                reason: CloseReason::StreamEnd,
                clean: true,
                message_cut: false,
            })),
            "stream {id}"
        );
    }
    seen_streams.sort_unstable();
    assert_eq!(
        seen_streams,
        (0..100).map(|i| 2 * i + 1).collect::<Vec<_>>()
    );
}

/// The JSON events: every event of a stream's session carries `stream_id`, `established` has
/// `http2: true`, and the uids are those of the streams.
#[test]
fn json_events_carry_stream_id_and_http2() {
    let (script, _) = many_streams(3);
    let mut cap = Capture::from_reader(Cursor::new(script.capture(40001)), "h2");
    let mut json = JsonLines::new(Vec::new());
    Analyzer::new(digest_cfg())
        .run(&mut cap, &mut json)
        .unwrap();
    let text = String::from_utf8(json.finish().unwrap()).unwrap();
    let mut uids = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let stream = v["stream_id"]
            .as_u64()
            .unwrap_or_else(|| panic!("no stream_id: {line}"));
        let uid = v["uid"].as_str().unwrap().to_owned();
        assert_eq!(*uids.entry(uid).or_insert(stream), stream, "{line}");
        if v["event"] == "established" {
            assert_eq!(v["http2"], true, "{line}");
            assert_eq!(v["host"], "example.com", "{line}");
            assert_eq!(
                v["uri"],
                format!("/chat/{stream}?n={}", (stream - 1) / 2),
                "{line}"
            );
        } else {
            assert!(v.get("http2").is_none(), "{line}");
        }
        if v["event"] == "connection_end" {
            assert_eq!(v["cause"], "end_stream", "{line}");
        }
    }
    assert_eq!(uids.len(), 3);
}

/// RST_STREAM ends a WebSocket stream with a `reset` event; GOAWAY ends the streams above its
/// last stream id; the others go on.
#[test]
fn rst_stream_and_goaway_end_their_streams_only() {
    let mut s = H2Script::new();
    for id in [1, 3, 5] {
        s.connect(id, "/r", &[], None);
        s.answer(id, "200", &[]);
        let m = ws_frame(true, false, 0x1, mask(id), b"before");
        s.send(C2S, data(id, false, None, &m));
    }
    // CANCEL (0x8) from the client on stream 3.
    s.send(C2S, h2_frame(RST_STREAM, 0, 3, &[0, 0, 0, 8]));
    // The server goes away: last processed stream 1, so stream 5 ends.
    s.send(S2C, h2_frame(GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0]));
    let m = ws_frame(true, false, 0x1, mask(9), b"after");
    s.send(C2S, data(1, false, None, &m));
    let r = analyze(s.capture(40002), digest_cfg());
    let by_stream: BTreeMap<u32, &Vec<OwnedKind>> =
        r.by_uid.values().map(|(s, k, _)| (s.unwrap(), k)).collect();
    let end = |id: u32| by_stream[&id].last().cloned();
    // Stream 1 lives until the TCP connection ends (FINs).
    assert_eq!(
        end(1),
        Some(OwnedKind::ConnectionEnd(ConnectionEnd {
            reason: CloseReason::Finished,
            clean: false,
            message_cut: false,
        }))
    );
    assert_eq!(
        by_stream[&1]
            .iter()
            .filter(|k| matches!(k, OwnedKind::Message { .. }))
            .count(),
        2
    );
    let k3 = by_stream[&3];
    assert_eq!(k3[k3.len() - 2], OwnedKind::Reset { error_code: 8 });
    assert!(matches!(
        end(3),
        Some(OwnedKind::ConnectionEnd(ConnectionEnd {
            reason: CloseReason::StreamReset(Direction::ClientToServer),
            ..
        }))
    ));
    assert!(matches!(
        end(5),
        Some(OwnedKind::ConnectionEnd(ConnectionEnd {
            reason: CloseReason::GoAway(Direction::ServerToClient),
            ..
        }))
    ));
}

/// A refused CONNECT (404) is no session; a `200` whose subprotocol was not offered is an
/// `established` the client rejects (its frames are not read), as for HTTP/1.1.
#[test]
fn refused_and_rejected_answers() {
    let mut s = H2Script::new();
    s.connect(1, "/no", &[], None);
    s.answer(1, "404", &[]);
    s.connect(3, "/bad", &[("sec-websocket-protocol", "chat")], None);
    s.answer(3, "200", &[("sec-websocket-protocol", "other")]);
    s.send(
        C2S,
        data(3, false, None, &ws_frame(true, false, 1, mask(3), b"hi")),
    );
    // A plain GET on stream 5 with a body: not followed, no anomaly.
    s.headers(
        C2S,
        5,
        &[
            (":method", "POST"),
            (":path", "/"),
            (":scheme", "https"),
            (":authority", "a"),
        ],
        false,
        None,
    );
    s.send(C2S, data(5, true, None, b"form"));
    let r = analyze(s.capture(40003), digest_cfg());
    assert_eq!(r.by_uid.len(), 1);
    let (stream, kinds, _) = r.by_uid.values().next().unwrap();
    assert_eq!(*stream, Some(3));
    let OwnedKind::Established(up) = &kinds[0] else {
        panic!("{kinds:?}")
    };
    assert!(!up.accepted());
    assert!(
        kinds.iter().any(
            |k| matches!(k, OwnedKind::Anomaly { name, .. } if *name == "subprotocol_not_offered")
        ),
        "{kinds:?}"
    );
    assert!(!kinds.iter().any(|k| matches!(k, OwnedKind::Frame { .. })));
    assert_eq!((r.stats.sessions, r.stats.rejected_upgrades), (0, 1));
    assert!(r.conn_anomalies.is_empty(), "{:?}", r.conn_anomalies);
}

/// Hostile input on one connection: a header block that does not decode, DATA on a stream
/// never opened, a frame over the max frame size, endless CONTINUATION. Each is an anomaly;
/// the WebSocket stream opened before goes on, its messages all reported.
#[test]
fn protocol_breaches_are_anomalies_and_other_streams_go_on() {
    let mut s = H2Script::new();
    s.connect(1, "/ok", &[], None);
    s.answer(1, "200", &[]);
    let mut want = Vec::new();
    let msg = |s: &mut H2Script, want: &mut Vec<[u8; 32]>, text: &str| {
        s.send(
            C2S,
            data(
                1,
                false,
                None,
                &ws_frame(true, false, 1, mask(7), text.as_bytes()),
            ),
        );
        want.push(sha(text.as_bytes()));
    };
    msg(&mut s, &mut want, "one");
    // DATA on stream 99, never opened.
    s.send(C2S, data(99, false, None, b"stray"));
    msg(&mut s, &mut want, "two");
    // A DATA frame over 16384 bytes (the server never raised SETTINGS_MAX_FRAME_SIZE).
    let big = vec![b'b'; 20_000];
    let big_frame = ws_frame(true, false, 2, mask(8), &big);
    s.send(C2S, data(1, false, None, &big_frame));
    want.push(sha(&big));
    // The server's next header block does not decode (index 90 does not exist).
    s.send(S2C, h2_frame(HEADERS, END_HEADERS, 2, &[0x80 | 90]));
    msg(&mut s, &mut want, "three");
    // Endless CONTINUATION on a new client stream: 200 frames of 1000 bytes.
    s.send(C2S, h2_frame(HEADERS, 0, 7, &[0x82]));
    for _ in 0..200 {
        s.send(C2S, h2_frame(CONTINUATION, 0, 7, &[0x82; 1000]));
    }
    s.send(C2S, h2_frame(CONTINUATION, END_HEADERS, 7, &[0x82]));
    msg(&mut s, &mut want, "four");
    let r = analyze(s.capture(40004), digest_cfg());
    let mut names = r.conn_anomalies.clone();
    let (_, kinds, dirs) = r.by_uid.values().next().unwrap();
    for k in kinds {
        if let OwnedKind::Anomaly { name, .. } = k {
            names.push(name.to_string());
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "http2_data_unknown_stream",
            "http2_frame_too_large",
            "http2_header_block_too_large",
            "http2_hpack_error",
        ]
    );
    assert_eq!(messages(kinds, dirs, C2S), want);
}

/// A sink that counts events and checks the stream count stays bounded.
struct Count(u64);

impl Sink for Count {
    fn event(&mut self, _ev: &Event<'_>) {
        self.0 += 1;
    }
}

/// A flood of WebSocket CONNECTs never answered: at most `max_streams` are tracked (one
/// anomaly says so); an HPACK bomb is refused without keeping it.
#[test]
fn a_flood_of_streams_and_an_hpack_bomb_stay_bounded() {
    let cfg = SessionConfig {
        http2: Http2Config {
            max_streams: 64,
            ..Http2Config::default()
        },
        ..SessionConfig::default()
    };
    let meta = ConnMeta::new(addr("10.0.0.1:1"), addr("10.0.0.2:80"));
    let mut h2 = H2Conn::new(cfg.http2, cfg);
    let mut events: Vec<OwnedEvent> = Vec::new();
    let ts = Instant::ZERO;
    let mut s = H2Script::new();
    for (dir, bytes) in s.sends.drain(..) {
        h2.data(&meta, ts, dir, &bytes, &mut |ev: &Event<'_>| {
            events.push(ev.into())
        });
    }
    // 200 000 streams (a million takes the same memory, only longer in a debug build).
    let mut enc = loona_hpack::Encoder::new();
    let block = enc.encode([
        (&b":method"[..], &b"CONNECT"[..]),
        (b":protocol", b"websocket"),
        (b":path", b"/"),
        (b":authority", b"a"),
        (b":scheme", b"http"),
    ]);
    let mut buf = Vec::new();
    for i in 0..200_000u32 {
        buf.extend(h2_frame(HEADERS, END_HEADERS, 2 * i + 1, &block));
        if buf.len() > 1 << 16 {
            h2.data(&meta, ts, C2S, &buf, &mut |ev: &Event<'_>| {
                events.push(ev.into())
            });
            buf.clear();
        }
        assert!(h2.tracked() <= 64);
    }
    h2.data(&meta, ts, C2S, &buf, &mut |ev: &Event<'_>| {
        events.push(ev.into())
    });
    assert_eq!(h2.tracked(), 64);
    let names: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.kind {
            OwnedKind::Anomaly { name, .. } => Some(*name),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["http2_stream_limit"]);
    // An HPACK bomb from the server: a 4000-byte entry, then 60 000 references to it
    // (240 MB of header list) in one 60 KB block.
    let mut enc = loona_hpack::Encoder::new();
    let big = vec![b'v'; 4000];
    let first = enc.encode([(&b"x-big"[..], &big[..])]);
    let mut sink = |ev: &Event<'_>| events.push(ev.into());
    h2.data(
        &meta,
        ts,
        S2C,
        &h2_frame(HEADERS, END_HEADERS, 1, &first),
        &mut sink,
    );
    let bomb = vec![0x80 | 62; 60_000];
    h2.data(
        &meta,
        ts,
        S2C,
        &h2_frame(HEADERS, END_HEADERS, 3, &bomb),
        &mut sink,
    );
    let names: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.kind {
            OwnedKind::Anomaly { name, .. } => Some(*name),
            _ => None,
        })
        .collect();
    assert!(names.contains(&"http2_header_list_too_large"), "{names:?}");
    // Ending the connection ends nothing more (no WebSocket was established).
    let mut count = Count(0);
    h2.end(&meta, ts, CloseReason::Finished, &mut count);
    assert_eq!(count.0, 0);
}

/// Cut anywhere, flipped anywhere: never a panic.
#[test]
fn cut_and_flipped_h2_never_panics() {
    let (script, _) = many_streams(4);
    let mut rng = wscope_test_support::Rng::new(5);
    let all: Vec<(Direction, Vec<u8>)> = script.sends.clone();
    for round in 0..300 {
        let cfg = SessionConfig::default();
        let meta = ConnMeta::new(addr("10.0.0.1:1"), addr("10.0.0.2:80"));
        let mut h2 = H2Conn::new(cfg.http2, cfg);
        let mut sink = |_: &Event<'_>| {};
        for (dir, bytes) in &all {
            let mut b = bytes.clone();
            if round > 0 && !b.is_empty() {
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(b.len() as u64) as usize;
                    b[at] ^= 1 << rng.below(8);
                }
            }
            let cut = rng.below(b.len() as u64 + 1) as usize;
            h2.data(&meta, Instant::ZERO, *dir, &b[..cut], &mut sink);
            h2.data(&meta, Instant::ZERO, *dir, &b[cut..], &mut sink);
        }
        h2.end(&meta, Instant::ZERO, CloseReason::CaptureEnd, &mut sink);
    }
}

/// Several HTTP/2 connections with WebSocket streams of every fate: the same events, logs,
/// JSON and statistics with 1, 2 and 4 workers (stream uids included).
#[test]
fn http2_output_is_the_same_for_any_number_of_workers() {
    let mut t = Trace::new(Framing::Ethernet);
    for k in 0..6u16 {
        let (script, _) = many_streams(5 + u32::from(k));
        script.write(&mut t, 41000 + k);
    }
    let mut s = H2Script::new();
    for id in [1, 3, 5] {
        s.connect(id, "/r", &[], None);
        s.answer(id, "200", &[]);
    }
    s.send(C2S, h2_frame(RST_STREAM, 0, 3, &[0, 0, 0, 8]));
    s.send(S2C, h2_frame(GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0]));
    s.write(&mut t, 42000);
    let bytes = t.finish();
    let cap = || Capture::from_reader(Cursor::new(bytes.clone()), "h2");
    let n = crate::parallel::same_for_any_workers("h2", cap, digest_cfg());
    assert!(n > 300, "{n}");
}

/// A `http2` fuzz seed (`wscope_inspect::fuzzing::fuzz_http2`): control byte, the client's
/// bytes after the preface (u16 length), the server's.
fn fuzz_seed(script: &H2Script, ctl: u8) -> Vec<u8> {
    let mut c = Vec::new();
    let mut s = Vec::new();
    for (dir, bytes) in &script.sends {
        if *dir == C2S {
            c.extend_from_slice(bytes);
        } else {
            s.extend_from_slice(bytes);
        }
    }
    let c = &c[PREFACE.len()..];
    let mut out = vec![ctl];
    out.extend_from_slice(&(c.len() as u16).to_be_bytes());
    out.extend_from_slice(c);
    out.extend_from_slice(&s);
    out
}

/// The seeds: streams with padding, CONTINUATION and closes; resets and GOAWAY.
fn fuzz_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let (streams, _) = many_streams(3);
    let mut s = H2Script::new();
    for id in [1, 3, 5] {
        s.connect(
            id,
            "/r",
            &[("sec-websocket-extensions", "permessage-deflate")],
            None,
        );
        s.answer(
            id,
            "200",
            &[("sec-websocket-extensions", "permessage-deflate")],
        );
    }
    s.send(C2S, h2_frame(RST_STREAM, 0, 3, &[0, 0, 0, 8]));
    s.send(S2C, h2_frame(GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0]));
    vec![
        ("streams-alternating", fuzz_seed(&streams, 0x0e)),
        ("streams-whole", fuzz_seed(&streams, 0x0b)),
        ("reset-goaway-deflate", fuzz_seed(&s, 0x0b)),
    ]
}

/// Writes the `http2` fuzz seeds (`fuzz/seeds/http2/`): run with
/// `cargo test -p wscope-inspect --test all write_http2_fuzz_seeds -- --ignored`.
#[test]
#[ignore = "writes fuzz/seeds/http2/"]
fn write_http2_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/http2");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in fuzz_seeds() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// The committed `http2` fuzz seeds are what `fuzz_seeds` makes, they reach WebSocket
/// sessions through the fuzz body, and no prefix or control byte of them panics.
#[test]
fn http2_fuzz_seeds_replay_and_reach_websocket() {
    use wscope_inspect::fuzzing::fuzz_http2;
    let made = fuzz_seeds();
    let files = wscope_test_support::seeds::seed_files("http2", made.len());
    for f in files {
        let data = std::fs::read(&f).unwrap();
        let name = f.file_name().unwrap().to_str().unwrap();
        if let Some((_, want)) = made.iter().find(|(n, _)| *n == name) {
            assert_eq!(&data, want, "{name}: regenerate the seeds");
        }
        assert!(fuzz_http2(&data) >= 1, "{name}");
        for end in (0..data.len()).step_by(61) {
            let _ = fuzz_http2(&data[..end]);
        }
        for ctl in 0..16u8 {
            let mut d = data.clone();
            d[0] = ctl;
            let _ = fuzz_http2(&d);
        }
    }
}

/// Plain HTTP/2 (no extended CONNECT offered, no WebSocket stream) is not this analyzer's
/// business: its breaches are counted, not reported.
#[test]
fn plain_http2_breaches_are_counted_not_reported() {
    let cfg = SessionConfig::default();
    let meta = ConnMeta::new(addr("10.0.0.1:1"), addr("10.0.0.2:80"));
    let mut h2 = H2Conn::new(cfg.http2, cfg);
    let mut n = 0u32;
    let mut sink = |_: &Event<'_>| n += 1;
    let mut c = PREFACE.to_vec();
    c.extend(h2_frame(SETTINGS, 0, 0, &[]));
    c.extend(h2_frame(HEADERS, END_HEADERS, 1, &[0x80 | 90]));
    c.extend(data(9, true, None, b"x"));
    h2.data(&meta, Instant::ZERO, C2S, &c, &mut sink);
    h2.data(
        &meta,
        Instant::ZERO,
        S2C,
        &h2_frame(SETTINGS, 0, 0, &[]),
        &mut sink,
    );
    assert!(!h2.connect_protocol());
    assert_eq!(n, 0);
    assert_eq!(h2.suppressed_anomalies(), 2);
}

/// permessage-deflate agreed in the stream's HEADERS (`sec-websocket-extensions`) is what the
/// stream's session inflates with; a stream that did not agree it reports RSV1 as an anomaly.
#[test]
fn deflate_parameters_come_from_the_streams_headers() {
    // One stored (uncompressed) deflate block, without the trailing 00 00 ff ff (RFC 7692).
    let text = b"inflated over an HTTP/2 stream";
    let mut stored = vec![0x00];
    stored.extend_from_slice(&(text.len() as u16).to_le_bytes());
    stored.extend_from_slice(&(!(text.len() as u16)).to_le_bytes());
    stored.extend_from_slice(text);
    let mut s = H2Script::new();
    let ext = [("sec-websocket-extensions", "permessage-deflate")];
    s.connect(1, "/z", &ext, None);
    s.answer(1, "200", &ext);
    s.connect(3, "/plain", &ext, None);
    s.answer(3, "200", &[]);
    for id in [1, 3] {
        s.send(
            C2S,
            data(id, false, None, &ws_frame(true, true, 1, mask(id), &stored)),
        );
    }
    let r = analyze(s.capture(40005), digest_cfg());
    let by_stream: BTreeMap<u32, &Reported> =
        r.by_uid.values().map(|v| (v.0.unwrap(), v)).collect();
    let (_, k1, d1) = by_stream[&1];
    assert_eq!(messages(k1, d1, C2S), [sha(text)]);
    assert!(
        !k1.iter().any(|k| matches!(k, OwnedKind::Anomaly { .. })),
        "{k1:?}"
    );
    let (_, k3, _) = by_stream[&3];
    assert!(
        k3.iter().any(|k| matches!(k, OwnedKind::Anomaly { name, .. } if name.contains("rsv") || name.contains("reserved"))),
        "{k3:?}"
    );
}
