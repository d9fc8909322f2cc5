//! Tests of the observer: whole sessions in any split, upgrades, gaps, resynchronisation, HTTP
//! before the upgrade, end of stream, and bounded memory on garbage.

use super::*;
use crate::close::zeek_status;
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, HeaderStatus, MAX_HEADER_LEN};
use crate::handshake::{AcceptKey, Limits, KEY, PROTOCOL};
use crate::mask::apply_mask;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::{format, vec::Vec};
use Direction::{ClientToServer as C, ServerToClient as S};

const REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    User-Agent: test/1.0\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
    Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";
const RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
    Sec-WebSocket-Protocol: chat\r\n\r\n";
const ACCEPT_VALUE: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// An owned, comparable record of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Request(String),
    Response(u16),
    Established,
    BadUpgrade(UpgradeError),
    Frame(Direction, bool, u8, u64),
    Data {
        dir: Direction,
        bytes: Vec<u8>,
        opcode: u8,
        first: bool,
        frame_end: bool,
        message_end: bool,
    },
    Close(Direction, u16, Vec<u8>),
    /// Inflated bytes of a compressed message, `message_end`.
    Inflated(Direction, Vec<u8>, bool),
    Message(Direction, u8),
    Anomaly(Direction, &'static str, String),
    Eof(Direction),
    Stopped(StopReason),
}

fn data(dir: Direction, bytes: &[u8], opcode: u8, first: bool, message_end: bool) -> Ev {
    Ev::Data {
        dir,
        bytes: bytes.to_vec(),
        opcode,
        first,
        frame_end: true,
        message_end,
    }
}

fn anomaly(dir: Direction, name: &'static str, detail: &str) -> Ev {
    Ev::Anomaly(dir, name, detail.to_string())
}

/// Feeds an observer like a reassembler would: per-direction buffers, fed until `None`,
/// paused bytes kept and retried after the other direction.
struct Driver {
    obs: Observer,
    pending: [Vec<u8>; 2],
    events: Vec<Ev>,
    /// Per direction: the current frame's payload length and bytes seen, to check
    /// `remaining`.
    frame: [Option<(u64, u64)>; 2],
}

impl Driver {
    fn new(obs: Observer) -> Self {
        Self {
            obs,
            pending: [Vec::new(), Vec::new()],
            events: Vec::new(),
            frame: [None, None],
        }
    }

    fn send(&mut self, dir: Direction, bytes: &[u8]) {
        self.pending[dir.index()].extend_from_slice(bytes);
        self.pump_all(dir);
    }

    fn gap(&mut self, dir: Direction, len: u64) {
        assert!(self.pending[dir.index()].is_empty() || self.obs.is_paused(dir));
        self.obs.gap(dir, len);
        self.pump_all(dir);
    }

    fn eof(&mut self, dir: Direction) {
        self.obs.eof(dir);
        self.pump_all(dir);
    }

    fn pump_all(&mut self, first: Direction) {
        loop {
            let a = self.pump(first);
            let b = self.pump(first.reverse());
            if !a && !b {
                break;
            }
        }
    }

    /// Feeds what `dir` has; true when an event came out.
    fn pump(&mut self, dir: Direction) -> bool {
        let i = dir.index();
        let mut buf = core::mem::take(&mut self.pending[i]);
        let mut at = 0;
        let mut any = false;
        loop {
            let step = self.obs.feed(dir, &mut buf[at..]);
            at += step.consumed;
            let Some(ev) = step.event else {
                assert_eq!(at, buf.len(), "None must mean all consumed");
                break;
            };
            if let ObservedEvent::Paused { dir: d } = ev {
                assert_eq!(d, dir);
                break;
            }
            any = true;
            let rec = record(&mut self.frame, ev);
            self.events.push(rec);
        }
        buf.drain(..at);
        self.pending[i] = buf;
        any
    }

    /// Events with consecutive data chunks of a frame merged.
    fn merged(&self) -> Vec<Ev> {
        let mut out: Vec<Ev> = Vec::new();
        for ev in &self.events {
            if let (
                Some(Ev::Data {
                    dir: d0,
                    bytes: b0,
                    frame_end: fe0,
                    message_end: me0,
                    ..
                }),
                Ev::Data {
                    dir,
                    bytes,
                    frame_end,
                    message_end,
                    first,
                    ..
                },
            ) = (out.last_mut(), ev)
            {
                if *d0 == *dir && !*fe0 {
                    assert!(!first);
                    b0.extend_from_slice(bytes);
                    *fe0 = *frame_end;
                    *me0 = *message_end;
                    continue;
                }
            }
            out.push(ev.clone());
        }
        out
    }
}

fn record(frames: &mut [Option<(u64, u64)>; 2], ev: ObservedEvent<'_>) -> Ev {
    match ev {
        ObservedEvent::Request(r) => Ev::Request(r.target().to_string()),
        ObservedEvent::Response(r) => Ev::Response(r.status()),
        ObservedEvent::Established(_) => Ev::Established,
        ObservedEvent::BadUpgrade(e) => Ev::BadUpgrade(e),
        ObservedEvent::Frame {
            dir,
            header,
            header_bytes,
        } => {
            // The raw header bytes parse back to the same header.
            assert_eq!(
                FrameHeader::parse(header_bytes),
                Ok(HeaderStatus::Complete(header))
            );
            assert_eq!(header_bytes.len(), header.header_len());
            frames[dir.index()] = Some((header.payload_len, 0));
            Ev::Frame(dir, header.fin, header.opcode.0, header.payload_len)
        }
        ObservedEvent::FrameData {
            dir,
            chunk,
            info:
                ChunkInfo {
                    opcode,
                    first,
                    remaining,
                    frame_end,
                    message_end,
                    ..
                },
        } => {
            let f = frames[dir.index()].as_mut().expect("data without a frame");
            f.1 += chunk.len() as u64;
            assert_eq!(remaining, f.0 - f.1, "remaining");
            assert_eq!(frame_end, remaining == 0);
            Ev::Data {
                dir,
                bytes: chunk.to_vec(),
                opcode: opcode.0,
                first,
                frame_end,
                message_end,
            }
        }
        ObservedEvent::Close {
            dir,
            status,
            reason,
            payload,
        } => {
            assert_eq!(zeek_status(payload), (status, reason));
            Ev::Close(dir, status, reason.to_vec())
        }
        ObservedEvent::Inflated {
            dir,
            data,
            message_end,
            ..
        } => Ev::Inflated(dir, data.to_vec(), message_end),
        ObservedEvent::Message { dir, opcode } => Ev::Message(dir, opcode.0),
        ObservedEvent::Anomaly { dir, anomaly } => {
            if let Anomaly::Gap {
                len,
                in_payload: true,
            } = anomaly
            {
                if let Some(f) = frames[dir.index()].as_mut() {
                    f.1 += len;
                }
            }
            Ev::Anomaly(dir, anomaly.name(), format!("{}", anomaly.detail()))
        }
        ObservedEvent::Eof { dir } => Ev::Eof(dir),
        ObservedEvent::Stopped { reason } => Ev::Stopped(reason),
        ObservedEvent::Paused { .. } => unreachable!("handled by the driver"),
    }
}

fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let h = FrameHeader::new(fin, OpCode(opcode), mask, payload.len() as u64);
    let mut out = [0u8; MAX_HEADER_LEN];
    let n = h.emit(&mut out);
    let mut v = out[..n].to_vec();
    let start = v.len();
    v.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut v[start..], key, 0);
    }
    v
}

fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, payload, Some([0x37, 0xfa, 0x21, 0x3d]))
}

fn server(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, payload, None)
}

/// A tiny deterministic generator for split points.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Runs a script of segments, each cut into random pieces.
fn run_split(script: &[(Direction, Vec<u8>)], seed: u64, max_piece: usize) -> Vec<Ev> {
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    let mut rng = Rng(seed | 1);
    for (dir, bytes) in script {
        let mut at = 0;
        while at < bytes.len() {
            let n = 1 + rng.below(max_piece);
            let end = (at + n).min(bytes.len());
            d.send(*dir, &bytes[at..end]);
            at = end;
        }
    }
    d.merged()
}

fn run_whole(script: &[(Direction, Vec<u8>)]) -> Driver {
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    for (dir, bytes) in script {
        d.send(*dir, bytes);
    }
    d
}

fn session() -> Vec<(Direction, Vec<u8>)> {
    let mut server_frames = server(false, 2, b"Hel");
    server_frames.extend(server(true, 9, b"p"));
    server_frames.extend(server(true, 0, b"lo"));
    vec![
        (C, REQUEST.as_bytes().to_vec()),
        (S, RESPONSE.as_bytes().to_vec()),
        (C, client(true, 1, b"Hello")),
        (S, server_frames),
        (C, client(true, 8, b"\x03\xe8bye")),
        (S, server(true, 8, b"")),
    ]
}

#[test]
fn typical_session_exact_events_any_split() {
    let expected = vec![
        Ev::Request("/chat".into()),
        Ev::Response(101),
        Ev::Established,
        Ev::Frame(C, true, 1, 5),
        data(C, b"Hello", 1, true, true),
        Ev::Message(C, 1),
        Ev::Frame(S, false, 2, 3),
        Ev::Data {
            dir: S,
            bytes: b"Hel".to_vec(),
            opcode: 2,
            first: true,
            frame_end: true,
            message_end: false,
        },
        // A ping between fragments is its own message; the binary message goes on.
        Ev::Frame(S, true, 9, 1),
        data(S, b"p", 9, true, true),
        Ev::Message(S, 9),
        Ev::Frame(S, true, 0, 2),
        data(S, b"lo", 2, false, true),
        Ev::Message(S, 2),
        Ev::Frame(C, true, 8, 5),
        data(C, b"\x03\xe8bye", 8, true, true),
        Ev::Close(C, 1000, b"bye".to_vec()),
        Ev::Message(C, 8),
        Ev::Frame(S, true, 8, 0),
        data(S, b"", 8, true, true),
        Ev::Close(S, 0, Vec::new()),
        Ev::Message(S, 8),
    ];
    let script = session();
    let whole = run_whole(&script);
    assert_eq!(whole.merged(), expected);
    for seed in 1..150 {
        assert_eq!(
            run_split(&script, seed, 1 + (seed as usize % 40)),
            expected,
            "seed {seed}"
        );
    }
    // One byte at a time.
    assert_eq!(run_split(&script, 7, 1), expected);
}

#[test]
fn established_carries_both_heads() {
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    d.send(C, REQUEST.as_bytes());
    d.send(S, RESPONSE.as_bytes());
    let u = d.obs.upgrade().expect("established");
    assert_eq!(u.host(), Some("server.example.com"));
    assert_eq!(u.uri(), Some("/chat"));
    assert_eq!(u.user_agent(), Some("test/1.0"));
    assert_eq!(
        u.client_protocols().collect::<Vec<_>>(),
        ["chat", "superchat"]
    );
    assert_eq!(u.subprotocol(), Some("chat"));
    assert_eq!(
        u.client_extensions().collect::<Vec<_>>(),
        ["permessage-deflate; client_max_window_bits"]
    );
    assert_eq!(u.server_extensions().count(), 0);
    assert_eq!(u.client_key(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
    assert_eq!(u.server_accept(), Some(ACCEPT_VALUE));
    assert_eq!(u.accept_matches(), Some(true));
    assert!(!u.permessage_deflate());
    assert!(d.obs.is_websocket());
    assert_eq!(u.request().map(Request::method), Some("GET"));
    assert_eq!(u.response().status(), 101);
}

/// RFC 6455 §4.1: the `101`s a client must reject, decided by the handshake's own checks.
#[test]
fn upgrades_the_client_rejects() {
    let accepted = |request: &str, response: &str| {
        let mut d = Driver::new(Observer::new(ObserverConfig::default()));
        if !request.is_empty() {
            d.send(C, request.as_bytes());
        }
        d.send(S, response.as_bytes());
        let up = d.obs.upgrade().expect("established");
        // The verdict decided when the upgrade was made is the response checks' own.
        let by_checks = match up.request() {
            Some(r) => up.response().validate_for(r).is_ok(),
            None => up.response().problems_without_request().is_empty(),
        };
        assert_eq!(up.accepted(), by_checks, "{response}");
        up.accepted()
    };
    let accept_line = format!("Sec-WebSocket-Accept: {ACCEPT_VALUE}\r\n");
    assert!(accepted(REQUEST, RESPONSE));
    let cases = [
        ("missing accept", RESPONSE.replace(&accept_line, "")),
        (
            "wrong accept",
            RESPONSE.replace(ACCEPT_VALUE, "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ),
        (
            "duplicated accept",
            RESPONSE.replace(&accept_line, &format!("{accept_line}{accept_line}")),
        ),
        (
            "subprotocol not offered",
            RESPONSE.replace("Protocol: chat", "Protocol: mqtt"),
        ),
        (
            "extension not offered",
            RESPONSE.replace("\r\n\r\n", "\r\nSec-WebSocket-Extensions: x-webkit\r\n\r\n"),
        ),
        (
            "no Connection: upgrade",
            RESPONSE.replace("Connection: Upgrade\r\n", ""),
        ),
    ];
    for (what, response) in &cases {
        assert!(!accepted(REQUEST, response), "{what}");
    }
    // An offered extension is fine.
    let deflate = RESPONSE.replace(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    );
    assert!(accepted(REQUEST, &deflate));
    // Without the request only what needs none is checked: a wrong accept value cannot be
    // told, a missing one can.
    assert!(accepted("", &cases[1].1));
    assert!(!accepted("", &cases[0].1));
}

#[test]
fn wrong_accept_is_an_anomaly_and_analysis_goes_on() {
    let wrong = RESPONSE.replace(ACCEPT_VALUE, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=-wrong");
    let script = vec![
        (C, REQUEST.as_bytes().to_vec()),
        (S, wrong.into_bytes()),
        (S, server(true, 9, b"Zeek")),
    ];
    let d = run_whole(&script);
    assert_eq!(
        d.merged(),
        vec![
            Ev::Request("/chat".into()),
            Ev::Response(101),
            Ev::Established,
            anomaly(
                S,
                "wrong_accept_header",
                "expected=s3pPLMBiTxaQ9kYGzzhZRbK+xOo=, found=s3pPLMBiTxaQ9kYGzzhZRbK+xOo=-wrong"
            ),
            Ev::Frame(S, true, 9, 4),
            data(S, b"Zeek", 9, true, true),
            Ev::Message(S, 9),
        ]
    );
    assert_eq!(
        d.obs.upgrade().and_then(Upgrade::accept_matches),
        Some(false)
    );
    let a = Anomaly::WrongAccept {
        expected: AcceptKey::for_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        found: b"x",
    };
    assert_eq!(a.zeek_weird(), Some("websocket_wrong_accept_header"));

    // Strict (Net::Inspect): the connection is declared bad, frames are not analysed.
    let cfg = ObserverConfig {
        policy: UpgradePolicy::Strict,
        ..ObserverConfig::default()
    };
    let mut d = Driver::new(Observer::new(cfg));
    for (dir, bytes) in &script {
        d.send(*dir, bytes);
    }
    assert_eq!(
        d.merged(),
        vec![
            Ev::Request("/chat".into()),
            Ev::Response(101),
            Ev::BadUpgrade(UpgradeError::AcceptMismatch),
        ]
    );
    assert!(d.obs.is_stopped());
}

#[test]
fn ping_coalesced_with_the_101() {
    let ping = server(true, 9, b"Zeek");
    let mut coalesced = RESPONSE.as_bytes().to_vec();
    coalesced.extend_from_slice(&ping);
    let pong = client(true, 10, b"Zeek");
    let separate = run_whole(&[
        (C, REQUEST.as_bytes().to_vec()),
        (S, RESPONSE.as_bytes().to_vec()),
        (S, ping.clone()),
        (C, pong.clone()),
    ])
    .merged();
    let together =
        run_whole(&[(C, REQUEST.as_bytes().to_vec()), (S, coalesced), (C, pong)]).merged();
    let weird = anomaly(S, "data_with_upgrade_reply", "6");
    assert_eq!(together[3], weird);
    let without: Vec<Ev> = together.iter().filter(|e| **e != weird).cloned().collect();
    assert_eq!(without, separate);
    assert!(!separate.contains(&weird));
    assert_eq!(
        &separate[3..],
        &[
            Ev::Frame(S, true, 9, 4),
            data(S, b"Zeek", 9, true, true),
            Ev::Message(S, 9),
            Ev::Frame(C, true, 10, 4),
            data(C, b"Zeek", 10, true, true),
            Ev::Message(C, 10),
        ]
    );
    let a = Anomaly::DataWithUpgradeReply { len: 6 };
    assert_eq!(
        a.zeek_weird(),
        Some("protocol_data_with_HTTP_upgrade_reply")
    );
    assert_eq!(format!("{}", a.detail()), "6");
}

fn established() -> Driver {
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    d.send(C, REQUEST.as_bytes());
    d.send(S, RESPONSE.as_bytes());
    d.events.clear();
    d
}

/// Five small frames of `opcode` in `dir` (enough evidence for a resynchronisation when
/// they end a read: 5 x 6 bits and 7 for the end) and the events they give once in sync.
fn small_frames(dir: Direction, opcode: u8) -> (Vec<u8>, Vec<Ev>) {
    let mut wire = Vec::new();
    let mut evs = Vec::new();
    for p in [&b"two"[..], b"three", b"four", b"five", b"six"] {
        wire.extend(if dir == C {
            client(true, opcode, p)
        } else {
            server(true, opcode, p)
        });
        evs.push(Ev::Frame(dir, true, opcode, p.len() as u64));
        evs.push(data(dir, p, opcode, true, true));
        evs.push(Ev::Message(dir, opcode));
    }
    (wire, evs)
}

#[test]
fn oversized_close_frame_like_zeek() {
    // oversized-close-frame.pcapng: status 1000 + 256 x "C", 64-bit length form.
    let mut payload = vec![0x03, 0xe8];
    payload.extend_from_slice(&[b'C'; 256]);
    let mut wire = vec![0x88, 0x7f, 0, 0, 0, 0, 0, 0, 0x01, 0x02];
    wire.extend_from_slice(&payload);
    let mut d = established();
    d.send(S, &wire);
    let evs = d.merged();
    assert_eq!(
        evs[0],
        anomaly(
            S,
            "non_minimal_length",
            "payload length not minimally encoded"
        )
    );
    assert_eq!(evs[1], Ev::Frame(S, true, 8, 258));
    assert_eq!(
        evs[2],
        anomaly(S, "control_frame_size_exceeded", "258 > 125")
    );
    assert_eq!(evs[3], data(S, &payload, 8, true, true));
    match &evs[4] {
        Ev::Close(S, 1000, reason) => assert_eq!(reason.len(), 123),
        other => panic!("{other:?}"),
    }
    assert_eq!(evs[5], Ev::Message(S, 8));
    assert_eq!(evs.len(), 6);
    let a = Anomaly::Protocol(ProtocolError::ControlFrameTooLong { len: 258 });
    assert_eq!(
        a.zeek_weird(),
        Some("websocket_control_frame_size_exceeded")
    );
}

#[test]
fn gap_inside_payload_keeps_sync_and_mask_offset() {
    let payload: Vec<u8> = (0..20u8).collect();
    let wire = client(true, 2, &payload);
    let hl = 6;
    let mut d = established();
    d.send(C, &wire[..hl + 5]);
    d.gap(C, 7);
    d.send(C, &wire[hl + 12..]);
    d.send(C, &client(true, 1, b"ok"));
    assert_eq!(
        d.events,
        vec![
            Ev::Frame(C, true, 2, 20),
            Ev::Data {
                dir: C,
                bytes: payload[..5].to_vec(),
                opcode: 2,
                first: true,
                frame_end: false,
                message_end: false
            },
            anomaly(C, "gap", "7 bytes lost inside a payload"),
            // Unmasked correctly after the gap: the key position kept counting.
            Ev::Data {
                dir: C,
                bytes: payload[12..].to_vec(),
                opcode: 2,
                first: false,
                frame_end: true,
                message_end: true
            },
            Ev::Message(C, 2),
            Ev::Frame(C, true, 1, 2),
            data(C, b"ok", 1, true, true),
            Ev::Message(C, 1),
        ]
    );
}

#[test]
fn gap_ending_a_final_frame_ends_its_message() {
    let mut d = established();
    let wire = server(true, 1, b"abcdef");
    d.send(S, &wire[..4]);
    d.gap(S, 4);
    d.send(S, &server(true, 9, b""));
    let evs = d.merged();
    assert_eq!(
        evs,
        vec![
            Ev::Frame(S, true, 1, 6),
            Ev::Data {
                dir: S,
                bytes: b"ab".to_vec(),
                opcode: 1,
                first: true,
                frame_end: false,
                message_end: false
            },
            anomaly(S, "gap", "4 bytes lost inside a payload"),
            Ev::Message(S, 1),
            Ev::Frame(S, true, 9, 0),
            data(S, b"", 9, true, true),
            Ev::Message(S, 9),
        ]
    );
}

#[test]
fn gap_at_a_header_desyncs_then_resyncs() {
    let mut d = established();
    d.send(S, &server(true, 1, b"one"));
    // A frame whose header and first payload bytes are lost; the rest of its payload
    // ('a' = 0x61 has RSV bits set, never a plausible header) then good frames.
    d.gap(S, 5);
    // Two small good frames are not proof enough (12 bits and 7 for ending the read) ...
    let mut rest = vec![b'a'; 30];
    rest.extend(server(true, 1, b"two"));
    rest.extend(server(true, 1, b"three"));
    d.send(S, &rest);
    let lost = vec![
        Ev::Frame(S, true, 1, 3),
        data(S, b"one", 1, true, true),
        Ev::Message(S, 1),
        anomaly(S, "gap", "5 bytes lost outside a payload"),
        anomaly(S, "desync", "framing lost after a gap"),
    ];
    assert_eq!(d.merged(), lost);
    // ... five are.
    let mut d = established();
    d.send(S, &server(true, 1, b"one"));
    d.gap(S, 5);
    let (frames, evs) = small_frames(S, 1);
    let mut rest = vec![b'a'; 30];
    rest.extend(frames);
    d.send(S, &rest);
    let mut want = lost;
    want.push(anomaly(S, "resync", "framing found after 30 bytes"));
    want.extend(evs);
    assert_eq!(d.merged(), want);
}

#[test]
fn resync_across_reads_and_mask_rule() {
    // The plausible header is split across two reads (the kept-bytes path), or its frame
    // is, in the client direction where frames are masked: unmasked-looking garbage is
    // skipped. Framing is found at the first good frame when its chain is visible at once;
    // when the chain runs past the first read, the frames of the chain are followed
    // silently and framing is found at the third (three headers with 16-bit lengths carry
    // enough evidence).
    let goods: Vec<Vec<u8>> = [130, 140, 150, 160, 170]
        .iter()
        .map(|&n| vec![b'p'; n])
        .collect();
    let mut found_at = Vec::new();
    for cut in 0..12 {
        let mut d = established();
        d.gap(C, 3);
        let frames: Vec<Vec<u8>> = goods.iter().map(|p| client(true, 2, p)).collect();
        let goods: Vec<&[u8]> = goods.iter().map(Vec::as_slice).collect();
        // Unmasked headers and a continuation: never a resynchronisation point here.
        let mut stream = vec![b'a', 0x82, 0x05, b'a', 0x81, 0x00];
        for f in &frames {
            stream.extend_from_slice(f);
        }
        let split = 6 + cut.min(frames[0].len());
        d.send(C, &stream[..split]);
        d.send(C, &stream[split..]);
        let evs = d.merged();
        let reported: Vec<&[u8]> = evs
            .iter()
            .filter_map(|e| match e {
                Ev::Data { bytes, .. } => Some(bytes.as_slice()),
                _ => None,
            })
            .collect();
        assert!(reported.len() >= 2, "cut {cut}: {evs:?}");
        let first = goods.len() - reported.len();
        found_at.push(first);
        assert_eq!(reported, goods[first..], "cut {cut}");
        let skipped = 6 + frames[..first].iter().map(Vec::len).sum::<usize>();
        assert_eq!(
            &evs[..3],
            &[
                anomaly(C, "gap", "3 bytes lost outside a payload"),
                anomaly(C, "desync", "framing lost after a gap"),
                anomaly(C, "resync", &format!("framing found after {skipped} bytes")),
            ],
            "cut {cut}"
        );
        assert_eq!(
            &evs[3..6],
            &[
                Ev::Frame(C, true, 2, goods[first].len() as u64),
                data(C, goods[first], 2, true, true),
                Ev::Message(C, 2)
            ],
            "cut {cut}"
        );
    }
    // Cuts in the first header (8 bytes): its chain is visible in the second read, found at
    // once. Cuts in its payload: probed, found at the third frame.
    assert_eq!(
        found_at,
        [0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2],
        "{found_at:?}"
    );
    // A plausible header whose successor is visible and implausible is rejected: here
    // `81 01 'x'` (followed by 'a') and `01 78 …` (120 bytes, then 'a').
    let mut d = established();
    d.gap(S, 1);
    let mut stream = vec![0x81, 0x01, b'x'];
    stream.extend_from_slice(&[b'a'; 200]);
    let (frames, evs) = small_frames(S, 1);
    stream.extend(frames);
    d.send(S, &stream);
    let mut want = vec![anomaly(S, "resync", "framing found after 203 bytes")];
    want.extend(evs);
    assert_eq!(d.merged()[2..], want);
    // Resync off: the direction stays lost (Zeek).
    let cfg = ObserverConfig {
        resync: false,
        ..ObserverConfig::default()
    };
    let mut d = Driver::new(Observer::new(cfg));
    d.send(C, REQUEST.as_bytes());
    d.send(S, RESPONSE.as_bytes());
    d.events.clear();
    d.gap(S, 2);
    d.send(S, &server(true, 1, b"x"));
    assert_eq!(
        d.merged(),
        vec![
            anomaly(S, "gap", "2 bytes lost outside a payload"),
            anomaly(S, "desync", "framing lost after a gap"),
        ]
    );
}

#[test]
fn resync_points_respect_the_frame_length_limit() {
    // Frames over `max_frame_len` (a limit the peers keep) are no resynchronisation point.
    let run = |max_frame_len: u64| {
        let cfg = ObserverConfig {
            max_frame_len,
            ..ObserverConfig::default()
        };
        let mut d = Driver::new(Observer::new(cfg));
        d.send(C, REQUEST.as_bytes());
        d.send(S, RESPONSE.as_bytes());
        d.events.clear();
        d.gap(S, 3);
        let mut wire = vec![b'a'; 10];
        for _ in 0..4 {
            wire.extend(server(true, 2, &[0x55; 300]));
        }
        d.send(S, &wire);
        let evs = d.merged();
        let count = |f: &dyn Fn(&Ev) -> bool| evs.iter().filter(|e| f(e)).count();
        (
            count(&|e| matches!(e, Ev::Frame(..))),
            count(&|e| matches!(e, Ev::Anomaly(_, "resync", _))),
        )
    };
    assert_eq!(run(u64::MAX), (4, 1));
    // Not even a resynchronisation later found false (by the frames' own violations).
    assert_eq!(run(200), (0, 0));
}

#[test]
fn length_with_top_bit_loses_framing_then_resyncs() {
    let mut d = established();
    let mut wire = vec![0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1];
    let (frames, evs) = small_frames(S, 2);
    wire.extend(frames);
    d.send(S, &wire);
    let mut want = vec![
        anomaly(
            S,
            "desync",
            "framing lost: 64-bit payload length with the top bit set",
        ),
        anomaly(S, "resync", "framing found after 10 bytes"),
    ];
    want.extend(evs);
    assert_eq!(d.merged(), want);
}

#[test]
fn frames_after_close() {
    let mut d = established();
    d.send(S, &server(true, 8, b"\x03\xe8"));
    d.send(S, &server(true, 1, b"late"));
    assert_eq!(
        d.merged(),
        vec![
            Ev::Frame(S, true, 8, 2),
            data(S, b"\x03\xe8", 8, true, true),
            Ev::Close(S, 1000, Vec::new()),
            Ev::Message(S, 8),
            Ev::Frame(S, true, 1, 4),
            anomaly(S, "frame_after_close", "text frame after close"),
            data(S, b"late", 1, true, true),
            Ev::Message(S, 1),
        ]
    );
}

#[test]
fn protocol_violations_are_reported_and_decoding_goes_on() {
    let names = |dir: Direction, wire: Vec<u8>| {
        let mut d = established();
        d.send(dir, &wire);
        d.merged()
            .into_iter()
            .filter_map(|e| match e {
                Ev::Anomaly(_, name, _) => Some(name),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // wstunnel-http: unmasked client frames.
    assert_eq!(names(C, server(true, 2, b"x")), ["unmasked_client_frame"]);
    assert_eq!(names(S, client(true, 2, b"x")), ["masked_server_frame"]);
    assert_eq!(names(S, server(true, 3, b"")), ["reserved_opcode"]);
    assert_eq!(names(S, vec![0xc1, 0x00]), ["reserved_bits_set"]);
    assert_eq!(
        names(S, server(false, 9, b"")),
        ["fragmented_control_frame"]
    );
    assert_eq!(names(S, server(true, 0, b"x")), ["unexpected_continuation"]);
    let mut two = server(false, 1, b"a");
    two.extend(server(true, 2, b"b"));
    assert_eq!(names(S, two), ["expected_continuation"]);
    assert_eq!(
        names(S, server(true, 8, b"\x03")),
        ["close_one_byte_payload"]
    );
    assert_eq!(
        names(S, server(true, 8, b"\x03\xed")),
        ["invalid_close_code"]
    );
    // Invalid UTF-8: the anomaly comes before the message's end.
    let mut d = established();
    d.send(S, &server(true, 1, b"\xc0\xaf"));
    d.send(S, &server(true, 1, b"fine"));
    let evs = d.merged();
    assert_eq!(
        &evs[..4],
        &[
            Ev::Frame(S, true, 1, 2),
            data(S, b"\xc0\xaf", 1, true, true),
            anomaly(S, "invalid_utf8", "text message is not valid UTF-8"),
            Ev::Message(S, 1),
        ]
    );
    assert_eq!(evs[5], data(S, b"fine", 1, true, true));
    // A 1-byte close: status 0 like Zeek, after the anomaly.
    let mut d = established();
    d.send(S, &server(true, 8, b"\x03"));
    assert_eq!(
        d.merged()[2..],
        [
            anomaly(
                S,
                "close_one_byte_payload",
                "close frame with a 1-byte payload"
            ),
            Ev::Close(S, 0, Vec::new()),
            Ev::Message(S, 8),
        ]
    );
}

#[test]
fn keep_alive_exchanges_before_the_upgrade() {
    let script = vec![
        // Two pipelined requests in one segment, one of them HEAD.
        (C, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\n\r\n".to_vec()),
        (
            S,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
                .to_vec(),
        ),
        // A POST with a chunked body, answered with a chunked body.
        (
            C,
            b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n"
                .to_vec(),
        ),
        (
            S,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                .to_vec(),
        ),
        (C, REQUEST.as_bytes().to_vec()),
        (S, RESPONSE.as_bytes().to_vec()),
        (S, server(true, 1, b"hi")),
    ];
    let expected = vec![
        Ev::Request("/a".into()),
        Ev::Request("/b".into()),
        Ev::Response(200),
        Ev::Response(200),
        Ev::Request("/c".into()),
        Ev::Response(100),
        Ev::Response(200),
        Ev::Request("/chat".into()),
        Ev::Response(101),
        Ev::Established,
        Ev::Frame(S, true, 1, 2),
        data(S, b"hi", 1, true, true),
        Ev::Message(S, 1),
    ];
    assert_eq!(run_whole(&script).merged(), expected);
    for seed in 1..60 {
        assert_eq!(run_split(&script, seed, 9), expected, "seed {seed}");
    }
}

#[test]
fn paused_client_bytes_wait_for_the_response() {
    // The client sends a frame right after its request, before the 101 arrives.
    let mut first = REQUEST.as_bytes().to_vec();
    first.extend(client(true, 1, b"early"));
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    d.send(C, &first);
    assert_eq!(d.events, vec![Ev::Request("/chat".into())]);
    assert!(d.obs.is_paused(C));
    assert_eq!(d.pending[0].len(), 11);
    d.send(S, RESPONSE.as_bytes());
    assert_eq!(
        d.merged()[1..],
        [
            Ev::Response(101),
            Ev::Established,
            Ev::Frame(C, true, 1, 5),
            data(C, b"early", 1, true, true),
            Ev::Message(C, 1),
        ]
    );
    // A refused upgrade: the client speaks HTTP again.
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    d.send(C, REQUEST.as_bytes());
    d.send(C, b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    d.send(S, b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        d.merged(),
        vec![
            Ev::Request("/chat".into()),
            Ev::Response(401),
            Ev::Request("/next".into()),
        ]
    );
    assert!(!d.obs.is_websocket() && !d.obs.is_stopped());
}

#[test]
fn stops_for_other_protocols_and_unfollowable_http() {
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    d.send(
        C,
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
    );
    d.send(S, b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nPRI * HTTP/2.0");
    d.send(C, b"\x00\x00\x12\x04");
    assert_eq!(
        d.merged(),
        vec![
            Ev::Request("/".into()),
            Ev::Response(101),
            Ev::Stopped(StopReason::OtherProtocol),
        ]
    );
    // Not HTTP at all (a TLS ClientHello): found at once, not after 16 KiB.
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    d.send(C, &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
    assert_eq!(
        d.merged(),
        vec![
            anomaly(C, "malformed_http", "malformed HTTP head: invalid token"),
            Ev::Stopped(StopReason::Abandoned),
        ]
    );
    // A response body until close.
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    d.send(C, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    d.send(S, b"HTTP/1.1 200 OK\r\n\r\nbody");
    assert_eq!(
        d.merged(),
        vec![
            Ev::Request("/".into()),
            Ev::Response(200),
            Ev::Stopped(StopReason::BodyUntilClose),
        ]
    );
    // A bad Content-Length.
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    d.send(C, b"GET / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n");
    assert_eq!(
        d.merged(),
        vec![
            anomaly(C, "bad_http_body", "HTTP body length cannot be determined"),
            Ev::Stopped(StopReason::Abandoned),
        ]
    );
}

#[test]
fn http_head_limit_bounds_memory() {
    let cfg = ObserverConfig {
        limits: Limits {
            max_head_len: 2048,
            max_headers: 100,
        },
        ..ObserverConfig::default()
    };
    let mut d = Driver::new(Observer::new(cfg));
    d.send(C, b"GET / HTTP/1.1\r\n");
    let mut sent = 16;
    while !d.obs.is_stopped() {
        d.send(C, b"X-Slow: a\r\n");
        sent += 11;
        assert!(sent <= 2048 + 11);
    }
    assert_eq!(
        d.merged(),
        vec![
            anomaly(
                C,
                "head_too_large",
                "HTTP head longer than the limit of 2048 bytes"
            ),
            Ev::Stopped(StopReason::Abandoned),
        ]
    );
    // Afterwards bytes are consumed and ignored.
    d.events.clear();
    d.send(C, &[b'x'; 10_000]);
    assert!(d.events.is_empty() && d.pending[0].is_empty());
}

#[test]
fn eof_inside_frames_messages_and_heads() {
    let mut d = established();
    d.send(S, &server(true, 2, b"abcdef")[..4]);
    d.eof(S);
    assert_eq!(
        d.events[2..],
        [
            anomaly(
                S,
                "eof_in_frame",
                "end of stream inside a frame, 4 payload bytes missing"
            ),
            Ev::Eof(S),
        ]
    );
    d.send(S, b"zz");
    assert_eq!(
        d.events.last(),
        Some(&anomaly(
            S,
            "data_after_eof",
            "2 bytes after the end of stream"
        ))
    );
    let mut d = established();
    d.send(C, &client(false, 1, b"part"));
    d.send(C, &[0x80]);
    d.eof(C);
    assert_eq!(
        d.merged()[2..],
        [
            anomaly(
                C,
                "eof_in_frame",
                "end of stream inside a frame, 0 payload bytes missing"
            ),
            Ev::Eof(C),
        ]
    );
    let mut d = established();
    d.send(C, &client(false, 1, b"part"));
    d.eof(C);
    assert_eq!(
        d.merged()[2..],
        [
            anomaly(
                C,
                "eof_in_message",
                "end of stream inside a fragmented message"
            ),
            Ev::Eof(C),
        ]
    );
    // The message end still pending comes before the end of stream.
    let mut d = established();
    d.send(S, &server(true, 8, b""));
    let n = d.events.len();
    d.eof(S);
    assert_eq!(d.events[n..], [Ev::Eof(S)]);
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    d.send(C, b"GET / HT");
    d.eof(C);
    assert_eq!(
        d.merged(),
        vec![
            anomaly(C, "eof_in_head", "end of stream inside an HTTP head"),
            Ev::Eof(C)
        ]
    );
}

#[test]
fn handshake_problems_with_zeek_weird_names() {
    let req = REQUEST.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
    let resp = RESPONSE.replace(
        "Sec-WebSocket-Protocol: chat\r\n",
        "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n",
    );
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    d.send(C, req.as_bytes());
    d.send(S, resp.as_bytes());
    let evs = d.merged();
    assert_eq!(
        evs[3..],
        [
            anomaly(C, "missing_header", "missing Sec-WebSocket-Key header"),
            anomaly(
                S,
                "duplicate_header",
                "Sec-WebSocket-Protocol header appears more than once"
            ),
        ]
    );
    assert_eq!(
        Anomaly::Handshake(UpgradeError::MissingHeader { name: KEY }).zeek_weird(),
        Some("websocket_missing_key_header")
    );
    assert_eq!(
        Anomaly::Handshake(UpgradeError::DuplicateHeader { name: PROTOCOL }).zeek_weird(),
        Some("websocket_multiple_protocol_headers")
    );
    // A 101 nobody asked for.
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    d.send(S, RESPONSE.as_bytes());
    assert_eq!(
        d.merged(),
        vec![
            Ev::Response(101),
            Ev::Established,
            anomaly(
                S,
                "unsolicited_upgrade",
                "101 response with no upgrade request"
            ),
        ]
    );
}

#[test]
fn deflate_allows_rsv1_on_data_frames() {
    let resp = RESPONSE.replace(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    );
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    d.send(C, REQUEST.as_bytes());
    d.send(S, resp.as_bytes());
    assert!(d.obs.upgrade().is_some_and(Upgrade::permessage_deflate));
    let mut compressed = server(true, 1, &[0xf2, 0x48, 0x05, 0x00]);
    compressed[0] |= 0x40;
    let mut buf = compressed;
    let mut at = 0;
    let mut saw = false;
    loop {
        let step = d.obs.feed(S, &mut buf[at..]);
        at += step.consumed;
        match step.event {
            None => break,
            Some(ObservedEvent::FrameData {
                info: ChunkInfo { compressed, .. },
                ..
            }) => {
                assert!(compressed);
                saw = true;
            }
            Some(ObservedEvent::Anomaly { anomaly, .. }) => panic!("{anomaly:?}"),
            Some(_) => {}
        }
    }
    assert!(saw);
    // Without the extension the same frame is an anomaly.
    let mut fresh = Driver::new(Observer::after_handshake(ObserverConfig::default()));
    let mut f = server(true, 1, b"x");
    f[0] |= 0x40;
    fresh.send(S, &f);
    assert_eq!(
        fresh.merged()[1],
        anomaly(
            S,
            "reserved_bits_set",
            "reserved bits 0b100 set without an extension"
        )
    );
}

#[test]
fn observer_after_handshake_decodes_from_the_first_byte() {
    let mut d = Driver::new(Observer::after_handshake(ObserverConfig::default()));
    d.send(C, &client(true, 1, b"hi"));
    d.send(S, &server(true, 2, b"yo"));
    assert_eq!(
        d.merged(),
        vec![
            Ev::Frame(C, true, 1, 2),
            data(C, b"hi", 1, true, true),
            Ev::Message(C, 1),
            Ev::Frame(S, true, 2, 2),
            data(S, b"yo", 2, true, true),
            Ev::Message(S, 2),
        ]
    );
}

#[test]
fn gaps_before_the_upgrade() {
    // Inside a body of known length: followed.
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    d.send(C, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    d.send(S, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab");
    d.gap(S, 6);
    d.send(S, b"ij");
    d.send(C, REQUEST.as_bytes());
    d.send(S, RESPONSE.as_bytes());
    assert!(d.obs.is_websocket());
    assert!(d
        .events
        .contains(&anomaly(S, "gap", "6 bytes lost inside a payload")));
    // In a head: abandoned.
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    d.send(C, b"GET / HTTP/1.1\r\n");
    d.gap(C, 10);
    assert_eq!(
        d.merged(),
        vec![
            anomaly(C, "gap", "10 bytes lost outside a payload"),
            Ev::Stopped(StopReason::Abandoned),
        ]
    );
    // While the client waits for the 101: it starts by resynchronising.
    let mut d = Driver::new(Observer::new(ObserverConfig::default()));
    d.send(C, REQUEST.as_bytes());
    d.gap(C, 4);
    let mut tail = vec![b'a', b'a'];
    let (frames, evs) = small_frames(C, 1);
    tail.extend(frames);
    d.send(C, &tail);
    d.send(S, RESPONSE.as_bytes());
    let mut want = vec![
        Ev::Established,
        anomaly(C, "resync", "framing found after 2 bytes"),
    ];
    want.extend(evs);
    assert_eq!(d.merged()[3..], want);
}

#[test]
fn garbage_never_panics_and_memory_stays_bounded() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..200 {
        let mut obs = if round % 2 == 0 {
            Observer::after_handshake(ObserverConfig::default())
        } else {
            let mut o = Observer::new(ObserverConfig::default());
            let mut req = REQUEST.as_bytes().to_vec();
            let mut resp = RESPONSE.as_bytes().to_vec();
            let _ = o.feed(C, &mut req);
            while o.feed(S, &mut resp[..0]).event.is_some() {}
            let mut at = 0;
            loop {
                let step = o.feed(S, &mut resp[at..]);
                at += step.consumed;
                if step.event.is_none() {
                    break;
                }
            }
            o
        };
        for _ in 0..50 {
            let dir = if rng.below(2) == 0 { C } else { S };
            match rng.below(10) {
                0 => obs.gap(dir, rng.below(100) as u64),
                1 if rng.below(20) == 0 => obs.eof(dir),
                _ => {
                    let mut buf: Vec<u8> =
                        (0..rng.below(64)).map(|_| rng.below(256) as u8).collect();
                    let mut at = 0;
                    let mut n = 0;
                    loop {
                        let step = obs.feed(dir, &mut buf[at..]);
                        at += step.consumed;
                        n += 1;
                        assert!(n < 10_000, "no progress");
                        match step.event {
                            None | Some(ObservedEvent::Paused { .. }) => break,
                            Some(_) => {}
                        }
                    }
                }
            }
        }
        for d in &obs.dirs {
            assert!(d.deferred.len() <= MAX_DEFERRED);
            if let HttpDir::Head(hb) = &d.http {
                assert!(hb.len() <= obs.cfg.limits.max_head_len);
            }
        }
    }
}

/// Under permessage-deflate each compressed chunk's `FrameData` is followed by what it
/// inflated to, then by the rule it broke, then by the message's end; invalid UTF-8 inside a
/// compressed text is the endpoint's `invalid_utf8`. The inflated bytes also come before what
/// a gap or the end of stream right after the chunk causes.
#[cfg(feature = "deflate")]
#[test]
fn compressed_messages_are_inflated_in_order() {
    use crate::deflate::{DeflateParams, Deflater};
    let mut wire = Vec::new();
    Deflater::new(6, 15, false).compress(b"caf\xc3!", true, &mut wire);
    let mut f = frame(true, 1, &wire, None);
    f[0] |= 0x40; // RSV1 (RFC 7692 section 6)
    let mut d = Driver::new(Observer::after_deflate_handshake(
        ObserverConfig::default(),
        DeflateParams::default(),
    ));
    d.send(S, &f);
    d.eof(S);
    assert_eq!(
        d.merged()[1..],
        [
            data(S, &wire, 1, true, true),
            Ev::Inflated(S, b"caf\xc3!".to_vec(), true),
            anomaly(S, "invalid_utf8", "text message is not valid UTF-8"),
            Ev::Message(S, 1),
            Ev::Eof(S),
        ]
    );
    // Inflation off: the compressed bytes only.
    let cfg = ObserverConfig {
        inflate: false,
        ..ObserverConfig::default()
    };
    let mut d = Driver::new(Observer::after_deflate_handshake(
        cfg,
        DeflateParams::default(),
    ));
    d.send(S, &f);
    assert_eq!(
        d.merged()[1..],
        [data(S, &wire, 1, true, true), Ev::Message(S, 1)]
    );
    // A gap and the end right after a chunk come after its inflated bytes.
    let mut part = Vec::new();
    Deflater::new(6, 15, true).compress(b"first part", false, &mut part);
    let mut f = frame(false, 2, &part, None);
    f[0] |= 0x40; // RSV1 (RFC 7692 section 6)
    let mut obs =
        Observer::after_deflate_handshake(ObserverConfig::default(), DeflateParams::default());
    let mut buf = f.clone();
    let step = obs.feed(S, &mut buf);
    assert!(matches!(step.event, Some(ObservedEvent::Frame { .. })));
    let at = step.consumed;
    let step = obs.feed(S, &mut buf[at..]);
    assert!(matches!(step.event, Some(ObservedEvent::FrameData { .. })));
    obs.gap(S, 10);
    let names: Vec<&str> = (0..3)
        .map(|_| obs.feed(S, &mut []).event.map_or("none", |e| e.name()))
        .collect();
    assert_eq!(names, ["inflated", "anomaly", "anomaly"]);
}

/// An observer made for a known upgrade (a WebSocket over HTTP/2, RFC 8441): `Established`
/// first, then frames from the first byte, RSV1 allowed when permessage-deflate was agreed,
/// and the verdict given to [`Upgrade::http2`] is the one `accepted` reports.
#[test]
fn after_upgrade_starts_with_established_and_reads_frames() {
    let fields: [(&str, &[u8]); 1] = [("sec-websocket-extensions", b"permessage-deflate")];
    let request = Request::from_parts("CONNECT", "/chat", 1, fields);
    let response = Response::from_parts(200, fields);
    let up = Upgrade::http2(request.clone(), response.clone(), true);
    assert!(up.is_http2() && up.accepted() && up.permessage_deflate());
    // No Sec-WebSocket-Accept in HTTP/2: the HTTP/1.1 rules would reject it.
    assert!(!Upgrade::http2(request, response, false).accepted());
    let mut d = Driver::new(Observer::after_upgrade(ObserverConfig::default(), up));
    d.send(C, &client(true, 1, b"Hello"));
    assert_eq!(d.events.first(), Some(&Ev::Established));
    assert!(d.events.contains(&Ev::Message(C, 1)), "{:?}", d.events);
    assert!(
        !d.events.iter().any(|e| matches!(e, Ev::Anomaly(..))),
        "{:?}",
        d.events
    );
}
