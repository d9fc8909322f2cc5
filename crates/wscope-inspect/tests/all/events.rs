//! What the analyzer says beyond Zeek's events: upgrades the client must reject
//! (`"accepted": false`, not sessions), the `connection_end` record of every WebSocket
//! connection, and the JSON Lines bytes of every kind of event.

use std::io::Cursor;
use wscope_proto::time::Duration;

use wscope_inspect::analyzer::{Analyzer, AnalyzerConfig, Stats};
use wscope_inspect::capture::Capture;
use wscope_inspect::decode::TcpFlags;
use wscope_inspect::event::{ConnectionEnd, OwnedKind};
use wscope_inspect::log::json::{event_json, JsonLines};
use wscope_inspect::log::zeek::Style;
use wscope_inspect::log::ZeekLogs;
use wscope_inspect::sink::{Sink, VecSink};
use wscope_inspect::tcp::{CloseReason, ConnMeta};
use wscope_inspect::Event;
use wscope_proto::role::Direction;
use wscope_test_support::capture::{Framing, TcpSpec};
use wscope_test_support::wire::{frame, upgrade_request, upgrade_response, RFC_ACCEPT};

use crate::support::{Conv, Trace};

const K: Option<[u8; 4]> = Some([0x11, 0x22, 0x33, 0x44]);

/// Every sink of a run: events, the Zeek logs and the JSON lines.
struct All {
    events: VecSink,
    logs: ZeekLogs<Vec<u8>>,
    json: JsonLines<Vec<u8>>,
    /// The same events through `event_json` (a `serde_json::Value` each).
    values: Vec<String>,
}

impl Sink for All {
    fn event(&mut self, ev: &Event<'_>) {
        self.events.event(ev);
        self.logs.event(ev);
        self.json.event(ev);
        self.values.extend(event_json(ev).map(|v| v.to_string()));
    }

    fn connection_closed(&mut self, conn: &ConnMeta) {
        self.events.connection_closed(conn);
    }
}

struct Output {
    events: Vec<OwnedKind>,
    stats: Stats,
    websocket_log: String,
    json: Vec<serde_json::Value>,
    json_text: String,
    values: Vec<String>,
}

fn analyse(pcap: Vec<u8>, cfg: AnalyzerConfig) -> Output {
    let mut cap = Capture::from_reader(Cursor::new(pcap), "mem");
    let mut all = All {
        events: VecSink::default(),
        logs: ZeekLogs::new(Vec::new(), Vec::new(), Style::Ascii, false),
        json: JsonLines::new(Vec::new()),
        values: Vec::new(),
    };
    let stats = Analyzer::new(cfg).run(&mut cap, &mut all).expect("run");
    let (websocket_log, _) = all.logs.finish().expect("logs");
    let json_text = String::from_utf8(all.json.finish().expect("json")).expect("utf-8");
    Output {
        events: all.events.events.into_iter().map(|e| e.kind).collect(),
        stats,
        websocket_log: String::from_utf8(websocket_log).expect("utf-8"),
        json: json_text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect(),
        json_text,
        values: all.values,
    }
}

fn of<'a>(out: &'a Output, event: &str) -> Vec<&'a serde_json::Value> {
    out.json.iter().filter(|v| v["event"] == event).collect()
}

/// A conversation: TCP handshake, the upgrade with `request` and `response`, a client text
/// message, a server ping, then the closing handshake and FINs.
fn conversation(request: &[u8], response: &[u8]) -> Vec<u8> {
    let mut t = Trace::new(Framing::Ethernet);
    let mut c = Conv::new("192.0.2.10:50001", "198.51.100.20:80", 1000, 5000);
    c.handshake(&mut t);
    t.tcp(c.client(request));
    t.tcp(c.server(response));
    t.tcp(c.client(&frame(true, false, 1, K, b"hello")));
    t.tcp(c.server(&frame(true, false, 9, None, b"ping")));
    t.tcp(c.client(&frame(true, false, 8, K, b"\x03\xe8")));
    t.tcp(c.server(&frame(true, false, 8, None, b"\x03\xe8")));
    c.close(&mut t);
    t.finish()
}

fn response_with(extra: &str) -> Vec<u8> {
    let ok = String::from_utf8(upgrade_response(None)).expect("ascii");
    ok.replace("\r\n\r\n", &format!("\r\n{extra}\r\n\r\n"))
        .into_bytes()
}

/// [`conversation`] with the RFC's handshake, analysed.
fn accepted_conversation() -> Output {
    let pcap = conversation(&upgrade_request("/", "h", None), &upgrade_response(None));
    analyse(pcap, AnalyzerConfig::default())
}

#[test]
fn an_accepted_upgrade_is_a_session() {
    let out = accepted_conversation();
    assert_eq!((out.stats.sessions, out.stats.rejected_upgrades), (1, 0));
    assert_eq!(out.stats.frames, 4);
    assert_eq!(out.stats.message_count(), 4);
    let est = of(&out, "established");
    assert_eq!(est.len(), 1);
    assert_eq!(est[0]["accepted"], true);
}

/// RFC 6455 §4.1: a `101` the client must fail is logged (Zeek writes its row) but is not a
/// session, and nothing after it is counted.
#[test]
fn upgrades_the_client_must_reject_are_not_sessions() {
    let ok = String::from_utf8(upgrade_response(None)).expect("ascii");
    let accept = format!("Sec-WebSocket-Accept: {RFC_ACCEPT}\r\n");
    let cases: [(&str, Vec<u8>); 5] = [
        ("missing accept", ok.replace(&accept, "").into_bytes()),
        (
            "wrong accept",
            ok.replace(RFC_ACCEPT, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                .into_bytes(),
        ),
        ("duplicated accept", response_with(accept.trim_end())),
        (
            "subprotocol not offered",
            response_with("Sec-WebSocket-Protocol: chat"),
        ),
        (
            "extension not offered",
            response_with("Sec-WebSocket-Extensions: permessage-deflate"),
        ),
    ];
    for (what, response) in cases {
        let out = analyse(
            conversation(&upgrade_request("/", "h", None), &response),
            AnalyzerConfig::default(),
        );
        assert_eq!(
            (out.stats.sessions, out.stats.rejected_upgrades),
            (0, 1),
            "{what}"
        );
        // No session statistics: the frames are reported as events, not counted.
        assert_eq!(out.stats.frames, 0, "{what}");
        assert_eq!(out.stats.message_count(), 0, "{what}");
        assert!(out.stats.closes.is_empty(), "{what}");
        assert!(
            out.events
                .iter()
                .any(|k| matches!(k, OwnedKind::Frame { .. })),
            "{what}"
        );
        // The handshake problem is an anomaly, and is counted.
        assert!(!out.stats.anomalies.is_empty(), "{what}");
        // Zeek's websocket.log row is kept.
        let rows = out
            .websocket_log
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        assert_eq!(rows, 1, "{what}");
        let est = of(&out, "established");
        assert_eq!(est.len(), 1, "{what}");
        assert_eq!(est[0]["accepted"], false, "{what}");
        // Its end is recorded all the same.
        assert_eq!(of(&out, "connection_end").len(), 1, "{what}");
    }
}

fn ends(out: &Output) -> Vec<ConnectionEnd> {
    out.events
        .iter()
        .filter_map(|k| match k {
            OwnedKind::ConnectionEnd(e) => Some(*e),
            _ => None,
        })
        .collect()
}

#[test]
fn a_clean_close_ends_with_fin_and_clean() {
    let out = accepted_conversation();
    assert_eq!(
        ends(&out),
        [ConnectionEnd {
            reason: CloseReason::Finished,
            clean: true,
            message_cut: false,
        }]
    );
    // The last event of the connection.
    assert!(matches!(
        out.events.last(),
        Some(OwnedKind::ConnectionEnd(_))
    ));
    let end = of(&out, "connection_end");
    assert_eq!(end[0]["cause"], "fin");
    assert_eq!(end[0]["clean"], true);
    assert_eq!(end[0]["message_cut"], false);
    assert!(end[0].get("by").is_none());
}

/// An upgraded connection up to the first fragment of a client message (not finished).
fn cut_session(t: &mut Trace, c: &mut Conv) {
    c.handshake(t);
    t.tcp(c.client(&upgrade_request("/", "h", None)));
    t.tcp(c.server(&upgrade_response(None)));
    t.tcp(c.client(&frame(false, false, 1, K, b"first half")));
}

#[test]
fn a_reset_ends_the_session_and_says_who_and_what_was_cut() {
    for (server_resets, by) in [(true, "resp"), (false, "orig")] {
        let mut t = Trace::new(Framing::Ethernet);
        let mut c = Conv::new("192.0.2.10:50001", "198.51.100.20:80", 1000, 5000);
        cut_session(&mut t, &mut c);
        let rst = if server_resets {
            TcpSpec::new(c.s, c.c).seq(c.sseq)
        } else {
            TcpSpec::new(c.c, c.s).seq(c.cseq)
        };
        t.tcp(rst.flags(TcpFlags::RST));
        let out = analyse(t.finish(), AnalyzerConfig::default());
        let dir = if server_resets {
            Direction::ServerToClient
        } else {
            Direction::ClientToServer
        };
        assert_eq!(
            ends(&out),
            [ConnectionEnd {
                reason: CloseReason::Reset(dir),
                clean: false,
                message_cut: true,
            }]
        );
        let end = of(&out, "connection_end");
        assert_eq!(end[0]["cause"], "rst");
        assert_eq!(end[0]["by"], by);
        assert_eq!(end[0]["is_orig"], !server_resets);
        assert_eq!(end[0]["message_cut"], true);
    }
}

#[test]
fn capture_end_and_idle_timeout_end_sessions() {
    // The capture stops in the middle of a message.
    let mut t = Trace::new(Framing::Ethernet);
    let mut c = Conv::new("192.0.2.10:50001", "198.51.100.20:80", 1000, 5000);
    cut_session(&mut t, &mut c);
    let out = analyse(t.finish(), AnalyzerConfig::default());
    assert_eq!(
        ends(&out),
        [ConnectionEnd {
            reason: CloseReason::CaptureEnd,
            clean: false,
            message_cut: true,
        }]
    );
    assert_eq!(of(&out, "connection_end")[0]["cause"], "capture_end");

    // Both sides close the TCP connection in the middle of the message, without a closing
    // handshake.
    let mut t = Trace::new(Framing::Ethernet);
    let mut c = Conv::new("192.0.2.10:50001", "198.51.100.20:80", 1000, 5000);
    cut_session(&mut t, &mut c);
    c.close(&mut t);
    let out = analyse(t.finish(), AnalyzerConfig::default());
    assert_eq!(
        ends(&out),
        [ConnectionEnd {
            reason: CloseReason::Finished,
            clean: false,
            message_cut: true,
        }]
    );

    // A whole message, then silence; a later packet of another connection expires it.
    let mut t = Trace::new(Framing::Ethernet);
    let mut c = Conv::new("192.0.2.10:50001", "198.51.100.20:80", 1000, 5000);
    c.handshake(&mut t);
    t.tcp(c.client(&upgrade_request("/", "h", None)));
    t.tcp(c.server(&upgrade_response(None)));
    t.tcp(c.client(&frame(true, false, 1, K, b"whole")));
    let later = t.ts + 600_000_000;
    t.at(later);
    let mut other = Conv::new("192.0.2.11:50002", "198.51.100.20:80", 1, 1);
    other.handshake(&mut t);
    let mut cfg = AnalyzerConfig::default();
    cfg.flow.idle_timeout = Duration::from_secs(60);
    let out = analyse(t.finish(), cfg);
    assert_eq!(
        ends(&out),
        [ConnectionEnd {
            reason: CloseReason::IdleTimeout,
            clean: false,
            message_cut: false,
        }]
    );
    assert_eq!(of(&out, "connection_end")[0]["cause"], "idle");
}

/// Connections that never upgraded get no `connection_end`.
#[test]
fn plain_http_gets_no_connection_end() {
    let pcap = conversation(
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    let out = analyse(pcap, AnalyzerConfig::default());
    assert!(out.events.is_empty(), "{:?}", out.events);
    assert_eq!(out.stats.connections, 1);
}

/// Two connections with every kind of event: IPv4 with permessage-deflate, a subprotocol, a
/// frame in the `101`'s segment (a Zeek weird), masked and fragmented messages, a close with
/// a reason that is not UTF-8; IPv6 ended by a RST in the middle of a message.
fn every_kind() -> Vec<u8> {
    let mut t = Trace::new(Framing::Ethernet);
    let mut c = Conv::new("192.0.2.10:50001", "198.51.100.20:8080", 1000, 5000);
    c.handshake(&mut t);
    let request = String::from_utf8(upgrade_request(
        "/chat?x=\"1\"",
        "example.com",
        Some("permessage-deflate; client_max_window_bits, x-other"),
    ))
    .expect("ascii")
    .replace(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Protocol: chat, superchat\r\nUser-Agent: t\u{e9}st\\1\r\n\r\n",
    );
    t.tcp(c.client(request.as_bytes()));
    let mut response = response_with(
        "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate",
    );
    response.extend(frame(true, false, 9, None, b"\x00\x01\xfe\xff"));
    t.tcp(c.server(&response));
    let mut z = wscope_proto::deflate::Deflater::new(6, 15, false);
    let mut packed = Vec::new();
    z.compress(b"compress me compress me compress me", true, &mut packed);
    t.tcp(c.server(&frame(true, true, 1, None, &packed)));
    let mut two = frame(false, false, 2, K, &[0u8, 1, 2, 3, 250]);
    two.extend(frame(true, false, 10, K, b""));
    two.extend(frame(true, false, 0, K, b"tail \"quoted\" \n line"));
    t.tcp(c.client(&two));
    t.tcp(c.client(&frame(true, false, 8, K, b"\x03\xe9bye \xff\xfe\x01")));
    t.tcp(c.server(&frame(true, false, 8, None, b"\x03\xe9")));
    c.close(&mut t);

    let mut c = Conv::new("[2001:db8::1]:40000", "[2001:db8::2]:80", 7, 70);
    c.handshake(&mut t);
    t.tcp(c.client(&upgrade_request("/", "v6.example", None)));
    t.tcp(c.server(&upgrade_response(None)));
    t.tcp(c.client(&frame(false, false, 1, K, b"cut")));
    t.tcp(TcpSpec::new(c.s, c.c).seq(c.sseq).flags(TcpFlags::RST));
    t.finish()
}

/// The JSON Lines bytes of every kind of event. The lines other than `connection_end` and
/// the `accepted` field are byte for byte what the `serde_json::Value` writer of earlier
/// versions wrote for the same capture.
#[test]
fn json_lines_of_every_kind() {
    let mut cfg = AnalyzerConfig::default();
    cfg.session.digest = true;
    let out = analyse(every_kind(), cfg);
    let expected = EVERY_KIND.trim_start();
    for (ours, theirs) in out.json_text.lines().zip(expected.lines()) {
        assert_eq!(ours, theirs);
    }
    assert_eq!(out.json_text, expected);
    // `event_json` builds the same objects.
    assert_eq!(out.values, expected.lines().collect::<Vec<_>>());
}

const EVERY_KIND: &str = r#"
{"ts":1700000000.005,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"established","is_orig":false,"host":"example.com","uri":"/chat?x=\"1\"","user_agent":"tést\\1","subprotocol":"chat","client_protocols":["chat","superchat"],"server_extensions":["permessage-deflate"],"client_extensions":["permessage-deflate; client_max_window_bits","x-other"],"client_key":"dGhlIHNhbXBsZSBub25jZQ==","server_accept":"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=","accepted":true}
{"ts":1700000000.005,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"anomaly","is_orig":false,"name":"data_with_upgrade_reply","detail":"6","zeek_weird":"protocol_data_with_HTTP_upgrade_reply"}
{"ts":1700000000.005,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"frame","is_orig":false,"fin":true,"rsv":0,"opcode":9,"payload_len":4}
{"ts":1700000000.005,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"frame_data","is_orig":false,"opcode":9,"len":4,"data_b64":"AAH+/w=="}
{"ts":1700000000.005,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"message","is_orig":false,"opcode":9,"len":4,"sha256":"c5dbae22661af6db18a1f676db82a7ef7de46d27c3a263a872f00478b0d99fc4"}
{"ts":1700000000.006,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"frame","is_orig":false,"fin":true,"rsv":4,"opcode":1,"payload_len":17}
{"ts":1700000000.006,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"frame_data","is_orig":false,"opcode":1,"len":17,"data_b64":"Ss7PLShKLS5WyE1VSMbOBgA=","compressed":true}
{"ts":1700000000.006,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"message","is_orig":false,"opcode":1,"len":35,"sha256":"e10583732b144ffa09ce4efb08348e90e6fa83a153a529df78cc703c230ff0a8"}
{"ts":1700000000.007,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"frame","is_orig":true,"fin":false,"rsv":0,"opcode":2,"payload_len":5,"mask":287454020}
{"ts":1700000000.007,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"frame_data","is_orig":true,"opcode":2,"len":5,"data_b64":"AAECA/o="}
{"ts":1700000000.007,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"frame","is_orig":true,"fin":true,"rsv":0,"opcode":10,"payload_len":0,"mask":287454020}
{"ts":1700000000.007,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"message","is_orig":true,"opcode":10,"len":0,"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}
{"ts":1700000000.007,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"frame","is_orig":true,"fin":true,"rsv":0,"opcode":0,"payload_len":20,"mask":287454020}
{"ts":1700000000.007,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"frame_data","is_orig":true,"opcode":2,"len":20,"data_b64":"dGFpbCAicXVvdGVkIiAKIGxpbmU="}
{"ts":1700000000.007,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"message","is_orig":true,"opcode":2,"len":25,"sha256":"efe942c1f4f894736604ea12f6abe734d31d5d07218e618a311cdbd56b2f5d04"}
{"ts":1700000000.008,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"frame","is_orig":true,"fin":true,"rsv":0,"opcode":8,"payload_len":9,"mask":287454020}
{"ts":1700000000.008,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"frame_data","is_orig":true,"opcode":8,"len":9,"data_b64":"A+lieWUg//4B"}
{"ts":1700000000.008,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"anomaly","is_orig":true,"name":"invalid_close_reason","detail":"close reason is not valid UTF-8"}
{"ts":1700000000.008,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"close","is_orig":true,"status":1001,"reason":"bye \\xff\\xfe\u0001"}
{"ts":1700000000.008,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"message","is_orig":true,"opcode":8,"len":9,"sha256":"919f645d99ae9095adf6101b74527cb62d04fa6a776f868da63f6d6df4338c4c"}
{"ts":1700000000.009,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"frame","is_orig":false,"fin":true,"rsv":0,"opcode":8,"payload_len":2}
{"ts":1700000000.009,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"frame_data","is_orig":false,"opcode":8,"len":2,"data_b64":"A+k="}
{"ts":1700000000.009,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"close","is_orig":false,"status":1001,"reason":""}
{"ts":1700000000.009,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"message","is_orig":false,"opcode":8,"len":2,"sha256":"1ce0736c78fb44ae96562a609300ec636c06cc4dfc63ba91d978488cff3d2f62"}
{"ts":1700000000.011,"uid":"C85ixkwLTX5y1z0nQX","id":{"orig_h":"192.0.2.10","orig_p":50001,"resp_h":"198.51.100.20","resp_p":8080},"event":"connection_end","is_orig":true,"cause":"fin","clean":true,"message_cut":false}
{"ts":1700000000.017,"uid":"CB2yRr39RQmq1IFl5I","id":{"orig_h":"2001:db8::1","orig_p":40000,"resp_h":"2001:db8::2","resp_p":80},"event":"established","is_orig":false,"host":"v6.example","uri":"/","user_agent":null,"subprotocol":null,"client_protocols":[],"server_extensions":[],"client_extensions":[],"client_key":"dGhlIHNhbXBsZSBub25jZQ==","server_accept":"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=","accepted":true}
{"ts":1700000000.018,"uid":"CB2yRr39RQmq1IFl5I","id":{"orig_h":"2001:db8::1","orig_p":40000,"resp_h":"2001:db8::2","resp_p":80},"event":"frame","is_orig":true,"fin":false,"rsv":0,"opcode":1,"payload_len":3,"mask":287454020}
{"ts":1700000000.018,"uid":"CB2yRr39RQmq1IFl5I","id":{"orig_h":"2001:db8::1","orig_p":40000,"resp_h":"2001:db8::2","resp_p":80},"event":"frame_data","is_orig":true,"opcode":1,"len":3,"data_b64":"Y3V0"}
{"ts":1700000000.019,"uid":"CB2yRr39RQmq1IFl5I","id":{"orig_h":"2001:db8::1","orig_p":40000,"resp_h":"2001:db8::2","resp_p":80},"event":"connection_end","is_orig":false,"cause":"rst","by":"resp","clean":false,"message_cut":true}
"#;
