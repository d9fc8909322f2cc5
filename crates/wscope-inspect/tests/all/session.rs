//! Sessions: pausing, chunking, Zeek's empty-payload rule, gaps, mid-stream, inflation, and
//! the Net::Inspect callback view.

use wscope_inspect::analyzer::{Analyzer, AnalyzerConfig};
use wscope_inspect::capture::Capture;
use wscope_inspect::event::{OwnedEvent, OwnedKind};
use wscope_inspect::session::{Session, SessionConfig};
use wscope_inspect::sink::{FrameInfo, InspectAdapter, Sink, VecSink, WsInspect};
use wscope_inspect::tcp::ConnMeta;
use wscope_proto::deflate::Deflater;
use wscope_proto::frame::OpCode;
use wscope_proto::observe::ObserverConfig;
use wscope_proto::role::Direction::{self, ClientToServer as C, ServerToClient as S};
use wscope_proto::time::Instant;

use wscope_test_support::capture::Framing;
use wscope_test_support::wire::{frame, upgrade_request, upgrade_response};

use crate::robustness::meta;
use crate::support::{Conv, Trace};

fn req() -> Vec<u8> {
    upgrade_request("/x", "h", Some("permessage-deflate"))
}

fn resp() -> Vec<u8> {
    upgrade_response(None)
}

fn resp_deflate() -> Vec<u8> {
    upgrade_response(Some("permessage-deflate"))
}

const K: Option<[u8; 4]> = Some([1, 2, 3, 4]);

struct Run {
    s: Session,
    sink: VecSink,
    conn: ConnMeta,
    t: u64,
}

impl Run {
    fn new(cfg: SessionConfig) -> Self {
        Self {
            s: Session::new(cfg),
            sink: VecSink::default(),
            conn: meta(),
            t: 0,
        }
    }
    fn data(&mut self, dir: Direction, b: &[u8]) {
        self.t += 1;
        self.s.data(
            &self.conn,
            Instant::from_micros(self.t),
            dir,
            b,
            &mut self.sink,
        );
    }
    fn names(&self) -> Vec<&'static str> {
        self.sink.events.iter().map(|e| kind_name(e)).collect()
    }
}

fn kind_name(e: &OwnedEvent) -> &'static str {
    match &e.kind {
        OwnedKind::Established(_) => "established",
        OwnedKind::Frame { .. } => "frame",
        OwnedKind::FrameData { .. } => "frame_data",
        OwnedKind::MessageData { .. } => "message_data",
        OwnedKind::Close { .. } => "close",
        OwnedKind::Message { .. } => "message",
        OwnedKind::Anomaly { name, .. } => name,
        _ => "other",
    }
}

#[test]
fn paused_client_bytes_are_kept_until_the_101() {
    let mut r = Run::new(SessionConfig::default());
    // The client sends its first frame right after the request, before the 101 is seen.
    let mut b = req();
    b.extend(frame(true, false, 1, K, b"early"));
    r.data(C, &b);
    assert!(r.names().is_empty(), "{:?}", r.names());
    r.data(S, &resp());
    assert_eq!(
        r.names(),
        [
            "established",
            "frame",
            "frame_data",
            "message_data",
            "message"
        ]
    );
    // The frame's events carry the time of the packet that released them (the 101's).
    assert!(r
        .sink
        .events
        .iter()
        .all(|e| e.ts == Instant::from_micros(2)));
    assert!(r.sink.events[1].is_orig());
}

#[test]
fn response_coalesced_with_frames() {
    let mut r = Run::new(SessionConfig::default());
    r.data(C, &req());
    let mut b = resp();
    b.extend(frame(true, false, 9, None, b"Zeek"));
    r.data(S, &b);
    assert_eq!(
        r.names(),
        [
            "established",
            "data_with_upgrade_reply",
            "frame",
            "frame_data",
            "message"
        ]
    );
}

#[test]
fn chunks_are_cut_to_the_configured_size() {
    let mut r = Run::new(SessionConfig {
        payload_chunk_size: 4,
        ..SessionConfig::default()
    });
    r.data(C, &req());
    r.data(S, &resp());
    r.sink.events.clear();
    r.data(S, &frame(true, false, 2, None, b"0123456789"));
    let chunks: Vec<_> = r
        .sink
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            OwnedKind::FrameData { data, info } => Some((
                data.clone(),
                info.first,
                info.remaining,
                info.frame_end,
                info.message_end,
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        chunks,
        [
            (b"0123".to_vec(), true, 6, false, false),
            (b"4567".to_vec(), false, 2, false, false),
            (b"89".to_vec(), false, 0, true, true),
        ]
    );
}

#[test]
fn empty_payload_gives_no_frame_data_like_zeek() {
    for keep in [false, true] {
        let mut r = Run::new(SessionConfig {
            empty_frame_data: keep,
            ..SessionConfig::default()
        });
        r.data(C, &req());
        r.data(S, &resp());
        r.sink.events.clear();
        r.data(C, &frame(true, false, 8, K, b""));
        let want: &[&str] = if keep {
            &["frame", "frame_data", "close", "message"]
        } else {
            &["frame", "close", "message"]
        };
        assert_eq!(r.names(), want);
        let close = r.sink.events.iter().find_map(|e| match &e.kind {
            OwnedKind::Close { status, .. } => Some(*status),
            _ => None,
        });
        assert_eq!(close, Some(0));
    }
}

#[test]
fn ping_between_fragments_keeps_the_message() {
    let mut r = Run::new(SessionConfig {
        digest: true,
        ..SessionConfig::default()
    });
    r.data(C, &req());
    r.data(S, &resp());
    r.sink.events.clear();
    let mut b = frame(false, false, 1, K, b"Hello ");
    b.extend(frame(true, false, 9, K, b"p"));
    b.extend(frame(true, false, 0, K, b"world"));
    r.data(C, &b);
    let msgs: Vec<_> = r
        .sink
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            OwnedKind::Message {
                opcode,
                len,
                sha256,
            } => Some((*opcode, *len, sha256.is_some())),
            _ => None,
        })
        .collect();
    assert_eq!(msgs, [(OpCode::PING, 1, true), (OpCode::TEXT, 11, true)]);
    use sha2::Digest as _;
    let digest: [u8; 32] = sha2::Sha256::digest(b"Hello world").into();
    assert!(r
        .sink
        .events
        .iter()
        .any(|e| matches!(&e.kind, OwnedKind::Message { sha256: Some(d), .. } if *d == digest)));
}

#[test]
fn gap_inside_payload_keeps_sync() {
    let mut r = Run::new(SessionConfig::default());
    r.data(C, &req());
    r.data(S, &resp());
    r.sink.events.clear();
    let f = frame(true, false, 2, None, &[9u8; 100]);
    r.data(S, &f[..30]);
    r.s.gap(&r.conn, Instant::from_micros(9), S, 50, &mut r.sink);
    r.data(S, &f[80..]);
    r.data(S, &frame(true, false, 1, None, b"after"));
    let names = r.names();
    assert!(names.contains(&"gap"), "{names:?}");
    assert_eq!(
        names.iter().filter(|n| **n == "message").count(),
        2,
        "{names:?}"
    );
    assert!(!names.contains(&"desync"));
}

#[test]
fn mid_stream_connection_gives_no_session() {
    let mut r = Run::new(SessionConfig::default());
    r.data(S, &frame(true, false, 1, None, b"hello"));
    r.data(C, &frame(true, false, 1, K, b"hello"));
    assert!(r.sink.events.is_empty(), "{:?}", r.names());
    assert!(!r.s.is_websocket());
}

/// The application data delivered (`MessageData` events), joined.
fn message_data(r: &Run) -> Vec<u8> {
    r.sink
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            OwnedKind::MessageData { data, .. } => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn deflate_inflates_and_reports_failures() {
    let mut r = Run::new(SessionConfig {
        digest: true,
        ..SessionConfig::default()
    });
    r.data(C, &req());
    r.data(S, &resp_deflate());
    r.sink.events.clear();
    let mut z = Deflater::new(6, 15, false);
    let text = b"compress me compress me compress me compress me";
    let mut c = Vec::new();
    z.compress(text, true, &mut c);
    // Two frames: RSV1 on the first only.
    let (a, b) = c.split_at(c.len() / 2);
    let mut bytes = frame(false, true, 1, None, a);
    bytes.extend(frame(true, false, 0, None, b));
    r.data(S, &bytes);
    let inflated = message_data(&r);
    assert_eq!(inflated, text);
    assert!(r
        .sink
        .events
        .iter()
        .any(|e| matches!(&e.kind, OwnedKind::Message { len, .. } if *len == text.len() as u64)));
    // Corrupt data: an anomaly, the raw bytes still in frame_data, len = raw length.
    r.sink.events.clear();
    let junk = [0xffu8; 20];
    r.data(S, &frame(true, true, 2, None, &junk));
    let names = r.names();
    assert!(names.contains(&"inflate_failed"), "{names:?}");
    assert!(r.sink.events.iter().any(
        |e| matches!(&e.kind, OwnedKind::FrameData { data, info } if info.compressed && data[..] == junk)
    ));
    assert!(r
        .sink
        .events
        .iter()
        .any(|e| matches!(&e.kind, OwnedKind::Message { len: 20, .. })));
}

/// A compressed message that turns corrupt part-way: what inflated before the corruption is
/// delivered, the same bytes whether the frame came in one segment or byte by byte.
#[test]
fn bytes_inflated_before_corruption_are_delivered_however_segmented() {
    let text = b"a valid start, then garbage: a valid start, then garbage";
    let mut c = Vec::new();
    Deflater::new(6, 15, false).compress(text, false, &mut c);
    c.extend_from_slice(&[0xff; 24]);
    let wire = frame(true, true, 1, None, &c);
    let delivered = |segment: usize| {
        let mut r = Run::new(SessionConfig::default());
        r.data(C, &req());
        r.data(S, &resp_deflate());
        r.sink.events.clear();
        for piece in wire.chunks(segment) {
            r.data(S, piece);
        }
        assert!(r.names().contains(&"inflate_failed"), "{:?}", r.names());
        message_data(&r)
    };
    let whole = delivered(wire.len());
    assert_eq!(whole, text);
    assert_eq!(delivered(1), whole);
    assert_eq!(delivered(7), whole);
}

#[test]
fn inflation_is_capped() {
    let mut r = Run::new(SessionConfig {
        observer: ObserverConfig::default().max_inflated_message_len(1000),
        ..SessionConfig::default()
    });
    r.data(C, &req());
    r.data(S, &resp_deflate());
    r.sink.events.clear();
    let mut z = Deflater::new(9, 15, true);
    let mut c = Vec::new();
    z.compress(&vec![0u8; 1 << 20], true, &mut c);
    assert!(c.len() < 2000);
    r.data(S, &frame(true, true, 2, None, &c));
    let out: usize = r
        .sink
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            OwnedKind::MessageData { data, .. } => Some(data.len()),
            _ => None,
        })
        .sum();
    assert_eq!(out, 1000, "inflated data up to the limit");
    assert!(r.names().contains(&"message_too_large"), "{:?}", r.names());
}

/// Invalid UTF-8 inside a compressed text message is the `invalid_utf8` anomaly an endpoint
/// fails with (1007); the analyzer used to inflate it silently. The message still inflates
/// to the end (data and length as sent), whatever the segments.
#[test]
fn invalid_utf8_inside_a_compressed_text_is_an_anomaly() {
    let text = b"caf\xc3 au lait, caf\xc3 au lait";
    let mut c = Vec::new();
    Deflater::new(6, 15, false).compress(text, true, &mut c);
    let wire = frame(true, true, 1, None, &c);
    for segment in [1, 5, wire.len()] {
        let mut r = Run::new(SessionConfig::default());
        r.data(C, &req());
        r.data(S, &resp_deflate());
        r.sink.events.clear();
        for piece in wire.chunks(segment) {
            r.data(S, piece);
        }
        let anomalies: Vec<&str> = r
            .sink
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                OwnedKind::Anomaly { name, .. } => Some(*name),
                _ => None,
            })
            .collect();
        assert_eq!(anomalies, ["invalid_utf8"], "segments of {segment}");
        assert_eq!(message_data(&r), text);
        assert!(r.sink.events.iter().any(
            |e| matches!(&e.kind, OwnedKind::Message { len, .. } if *len == text.len() as u64)
        ));
    }
    // Binary is not text: no anomaly.
    let mut r = Run::new(SessionConfig::default());
    r.data(C, &req());
    r.data(S, &resp_deflate());
    r.sink.events.clear();
    let mut c = Vec::new();
    Deflater::new(6, 15, false).compress(text, true, &mut c);
    r.data(S, &frame(true, true, 2, None, &c));
    assert!(!r.names().contains(&"invalid_utf8"), "{:?}", r.names());
}

#[derive(Default)]
struct Calls(Vec<String>);

impl WsInspect for Calls {
    fn in_wsctl(
        &mut self,
        _: &ConnMeta,
        dir: Direction,
        payload: &[u8],
        info: Option<&FrameInfo<'_>>,
    ) {
        let dir = u8::from(dir.is_orig());
        let Some(i) = info else {
            assert!(payload.is_empty());
            self.0.push(format!("end {dir}"));
            return;
        };
        let close = i
            .close
            .map(|c| {
                format!(
                    " close={} {:?}",
                    c.status,
                    String::from_utf8_lossy(c.reason)
                )
            })
            .unwrap_or_default();
        self.0.push(format!(
            "ctl {dir} {} {:?} mask={} hdr={}{close}",
            i.opcode.0,
            String::from_utf8_lossy(payload),
            i.mask.is_some(),
            i.header.len(),
        ));
    }
    fn in_wsdata(
        &mut self,
        _: &ConnMeta,
        dir: Direction,
        data: &[u8],
        eom: bool,
        i: &FrameInfo<'_>,
    ) {
        self.0.push(format!(
            "data {} {} {:?} eom={eom} init={} left={} mask={} hdr={}",
            u8::from(dir.is_orig()),
            i.opcode.0,
            String::from_utf8_lossy(data),
            i.init,
            i.bytes_left,
            i.mask.is_some(),
            i.header.len()
        ));
    }
}

#[test]
fn net_inspect_view() {
    let mut s = Session::new(SessionConfig::default());
    let conn = meta();
    let mut a = InspectAdapter::new(Calls::default());
    let t = Instant::ZERO;
    s.data(&conn, t, C, &req(), &mut a);
    s.data(&conn, t, S, &resp(), &mut a);
    // A ping split over two segments is delivered whole.
    let p = frame(true, false, 9, None, b"keepalive");
    s.data(&conn, t, S, &p[..5], &mut a);
    s.data(&conn, t, S, &p[5..], &mut a);
    let mut b = frame(false, false, 1, K, b"ab");
    b.extend(frame(true, false, 0, K, b""));
    s.data(&conn, t, C, &b, &mut a);
    // Close frames carry their status and reason; one without a status says 1005.
    s.data(
        &conn,
        t,
        C,
        &frame(true, false, 8, K, b"\x03\xe8bye"),
        &mut a,
    );
    s.data(&conn, t, S, &frame(true, false, 8, None, b""), &mut a);
    // The end of the connection: one call per direction without frame info.
    a.connection_closed(&conn);
    let calls = a.into_inner().0;
    assert_eq!(
        calls,
        [
            "ctl 0 9 \"keepalive\" mask=false hdr=2",
            "data 1 1 \"ab\" eom=false init=true left=0 mask=true hdr=6",
            // A continuation frame carries the message's opcode (Net::Inspect's frameinfo).
            "data 1 1 \"\" eom=true init=false left=0 mask=true hdr=6",
            "ctl 1 8 \"\\u{3}\u{fffd}bye\" mask=true hdr=6 close=1000 \"bye\"",
            "ctl 0 8 \"\" mask=false hdr=2 close=1005 \"\"",
            "end 1",
            "end 0",
        ]
    );
}

/// The Net::Inspect view through the whole analyzer: a connection that the capture closes
/// gets its end-of-connection calls, one per direction.
#[test]
fn net_inspect_view_ends_with_the_connection() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut c = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 100, 900);
    c.handshake(&mut t);
    t.tcp(c.client(&req()));
    t.tcp(c.server(&resp()));
    t.tcp(c.client(&frame(true, false, 9, K, b"hi")));
    c.close(&mut t);
    let mut cap = Capture::from_reader(std::io::Cursor::new(t.finish()), "mem");
    let mut a = InspectAdapter::new(Calls::default());
    Analyzer::new(AnalyzerConfig::default())
        .run(&mut cap, &mut a)
        .expect("run");
    assert_eq!(
        a.into_inner().0,
        ["ctl 1 9 \"hi\" mask=true hdr=6", "end 1", "end 0"]
    );
}
