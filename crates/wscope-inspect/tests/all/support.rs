//! Test support: capture builders, an event collector, running the analyzer, and rendering
//! events in Zeek's `print` format. The seeded RNG, the pcap writer and the corpus locator come
//! from `wscope-test-support`.

use core::net::SocketAddr;
use std::collections::BTreeMap;
use std::io::Cursor;

use wscope_inspect::analyzer::{Analyzer, AnalyzerConfig, Stats};
use wscope_inspect::capture::Capture;
use wscope_inspect::decode::TcpFlags;
use wscope_inspect::event::{OwnedEvent, OwnedKind};
use wscope_inspect::log::json::opcode_name;
use wscope_inspect::log::zeek::Style;
use wscope_inspect::log::ZeekLogs;
use wscope_inspect::sink::{Sink, VecSink};
use wscope_inspect::tcp::{
    CloseReason, ConnMeta, ConnectionEvent, ConnectionHandler, FlowConfig, Limit, TcpAnomaly,
};
use wscope_inspect::Summary;
use wscope_proto::observe::Upgrade;
use wscope_proto::role::Direction;
use wscope_proto::time::Instant;
use wscope_test_support::capture::{Framing, PcapWriter, TcpSpec};
pub(crate) use wscope_test_support::corpus::corpus;
pub(crate) use wscope_test_support::Rng;

pub(crate) const C2S: Direction = Direction::ClientToServer;
pub(crate) const S2C: Direction = Direction::ServerToClient;

pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// Builds a pcap in memory, one TCP packet at a time; time advances 1 ms per packet unless set.
pub(crate) struct Trace {
    pub(crate) framing: Framing,
    w: PcapWriter<Vec<u8>>,
    pub(crate) ts: u64,
    /// Microseconds added before each packet.
    pub(crate) step: u64,
}

impl Trace {
    pub(crate) fn new(framing: Framing) -> Self {
        Self {
            framing,
            w: PcapWriter::new(Vec::new(), framing.link_type()).expect("header"),
            ts: 1_700_000_000_000_000,
            step: 1000,
        }
    }

    pub(crate) fn tcp(&mut self, spec: TcpSpec<'_>) -> &mut Self {
        self.ts += self.step;
        self.w
            .write_tcp(Instant::from_micros(self.ts), self.framing, &spec)
            .expect("write");
        self
    }

    pub(crate) fn at(&mut self, micros: u64) -> &mut Self {
        self.ts = micros;
        self
    }

    pub(crate) fn raw_cut(&mut self, data: &[u8], caplen: usize) -> &mut Self {
        self.ts += 1000;
        self.w
            .write_packet_cut(Instant::from_micros(self.ts), data, caplen)
            .expect("write");
        self
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.w.into_inner()
    }
}

/// A client/server pair with running sequence numbers, for writing conversations.
pub(crate) struct Conv {
    pub(crate) c: SocketAddr,
    pub(crate) s: SocketAddr,
    pub(crate) cseq: u32,
    pub(crate) sseq: u32,
}

impl Conv {
    pub(crate) fn new(c: &str, s: &str, cisn: u32, sisn: u32) -> Self {
        Self {
            c: addr(c),
            s: addr(s),
            cseq: cisn,
            sseq: sisn,
        }
    }

    pub(crate) fn handshake(&mut self, t: &mut Trace) {
        t.tcp(
            TcpSpec::new(self.c, self.s)
                .seq(self.cseq)
                .flags(TcpFlags::SYN),
        );
        t.tcp(
            TcpSpec::new(self.s, self.c)
                .seq(self.sseq)
                .ack(self.cseq.wrapping_add(1))
                .flags(TcpFlags::SYN),
        );
        self.cseq = self.cseq.wrapping_add(1);
        self.sseq = self.sseq.wrapping_add(1);
        t.tcp(TcpSpec::new(self.c, self.s).seq(self.cseq).ack(self.sseq));
    }

    /// A client segment at the running sequence number (which then advances).
    pub(crate) fn client<'a>(&mut self, data: &'a [u8]) -> TcpSpec<'a> {
        let spec = TcpSpec::new(self.c, self.s)
            .seq(self.cseq)
            .ack(self.sseq)
            .flags(TcpFlags::PSH)
            .payload(data);
        self.cseq = self.cseq.wrapping_add(data.len() as u32);
        spec
    }

    /// A server segment at the running sequence number (which then advances).
    pub(crate) fn server<'a>(&mut self, data: &'a [u8]) -> TcpSpec<'a> {
        let spec = TcpSpec::new(self.s, self.c)
            .seq(self.sseq)
            .ack(self.cseq)
            .flags(TcpFlags::PSH)
            .payload(data);
        self.sseq = self.sseq.wrapping_add(data.len() as u32);
        spec
    }

    /// A client segment at an explicit offset from the running client sequence number
    /// (which does not move).
    pub(crate) fn client_at<'a>(&self, delta: i64, data: &'a [u8]) -> TcpSpec<'a> {
        TcpSpec::new(self.c, self.s)
            .seq(self.cseq.wrapping_add(delta as u32))
            .ack(self.sseq)
            .flags(TcpFlags::PSH)
            .payload(data)
    }

    /// Both FINs and the last ACK.
    pub(crate) fn close(&mut self, t: &mut Trace) {
        t.tcp(
            TcpSpec::new(self.c, self.s)
                .seq(self.cseq)
                .ack(self.sseq)
                .flags(TcpFlags::FIN),
        );
        self.cseq = self.cseq.wrapping_add(1);
        t.tcp(
            TcpSpec::new(self.s, self.c)
                .seq(self.sseq)
                .ack(self.cseq)
                .flags(TcpFlags::FIN),
        );
        self.sseq = self.sseq.wrapping_add(1);
        t.tcp(TcpSpec::new(self.c, self.s).seq(self.cseq).ack(self.sseq));
    }
}

/// A piece of a reassembled stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Data(Vec<u8>),
    Gap(u64),
}

/// What one connection produced.
#[derive(Clone, Debug, Default)]
pub(crate) struct Record {
    pub(crate) meta: Option<ConnMeta>,
    pub(crate) opened: u32,
    pub(crate) mid_stream: bool,
    pub(crate) streams: [Vec<Piece>; 2],
    pub(crate) eof: [u32; 2],
    pub(crate) closed: Vec<CloseReason>,
    pub(crate) limits: Vec<(Direction, Limit)>,
    pub(crate) anomalies: Vec<(Direction, TcpAnomaly)>,
    pub(crate) after_close: u32,
    pub(crate) order_ok: bool,
}

impl Record {
    /// The bytes of a direction, with gaps left out.
    pub(crate) fn bytes(&self, dir: Direction) -> Vec<u8> {
        let mut v = Vec::new();
        for p in &self.streams[dir.index()] {
            if let Piece::Data(d) = p {
                v.extend_from_slice(d);
            }
        }
        v
    }

    /// The stream of a direction, adjacent data merged.
    pub(crate) fn pieces(&self, dir: Direction) -> Vec<Piece> {
        let mut out: Vec<Piece> = Vec::new();
        for p in &self.streams[dir.index()] {
            match (out.last_mut(), p) {
                (Some(Piece::Data(a)), Piece::Data(b)) => a.extend_from_slice(b),
                (Some(Piece::Gap(a)), Piece::Gap(b)) => *a += b,
                _ => out.push(p.clone()),
            }
        }
        out
    }

    pub(crate) fn gap_bytes(&self, dir: Direction) -> u64 {
        self.streams[dir.index()]
            .iter()
            .map(|p| match p {
                Piece::Gap(n) => *n,
                Piece::Data(_) => 0,
            })
            .sum()
    }
}

/// Collects events per connection id, checking the event order contract.
#[derive(Default)]
pub(crate) struct Collector {
    pub(crate) conns: BTreeMap<u64, Record>,
    pub(crate) events: u64,
}

impl ConnectionHandler for Collector {
    type State = u32;

    fn on_event(&mut self, state: &mut u32, conn: &ConnMeta, ev: ConnectionEvent<'_>) {
        self.events += 1;
        *state += 1;
        let r = self.conns.entry(conn.id.0).or_insert_with(|| Record {
            order_ok: true,
            ..Record::default()
        });
        if !r.closed.is_empty() {
            r.after_close += 1;
        }
        match ev {
            ConnectionEvent::Open {
                mid_stream, key, ..
            } => {
                if *state != 1 || key != conn.key {
                    r.order_ok = false;
                }
                r.opened += 1;
                r.mid_stream = mid_stream;
                r.meta = Some(*conn);
            }
            ConnectionEvent::Data { dir, bytes, .. } => {
                assert!(!bytes.is_empty(), "empty data event");
                if r.eof[dir.index()] > 0 {
                    r.order_ok = false;
                }
                r.streams[dir.index()].push(Piece::Data(bytes.to_vec()));
            }
            ConnectionEvent::Gap { dir, len, .. } => {
                assert!(len > 0, "empty gap event");
                if r.eof[dir.index()] > 0 {
                    r.order_ok = false;
                }
                r.streams[dir.index()].push(Piece::Gap(len));
            }
            ConnectionEvent::Eof { dir, .. } => r.eof[dir.index()] += 1,
            ConnectionEvent::Closed { reason, .. } => r.closed.push(reason),
            ConnectionEvent::Limit { dir, limit, .. } => r.limits.push((dir, limit)),
            ConnectionEvent::Anomaly { dir, anomaly, .. } => r.anomalies.push((dir, anomaly)),
            _ => {}
        }
        if r.opened == 0 {
            r.order_ok = false;
        }
    }
}

impl Collector {
    /// Every connection opened once, closed once, nothing after close, order kept.
    pub(crate) fn check_contract(&self) {
        for (id, r) in &self.conns {
            assert_eq!(r.opened, 1, "conn {id}: opened {} times", r.opened);
            assert_eq!(r.closed.len(), 1, "conn {id}: closed {:?}", r.closed);
            assert_eq!(r.after_close, 0, "conn {id}: events after close");
            assert!(r.order_ok, "conn {id}: event order broken");
            assert!(r.eof.iter().all(|&e| e <= 1), "conn {id}: eof twice");
        }
    }

    pub(crate) fn only(&self) -> &Record {
        assert_eq!(
            self.conns.len(),
            1,
            "expected one connection: {:#?}",
            self.conns.keys()
        );
        self.conns.values().next().expect("one")
    }
}

/// Runs the whole pipeline over capture bytes.
pub(crate) fn run_bytes(bytes: Vec<u8>, cfg: FlowConfig) -> (Collector, Summary) {
    let mut cap = Capture::from_reader(Cursor::new(bytes), "mem").buffer_len(1 << 16);
    let mut col = Collector::default();
    let summary = wscope_inspect::reassemble(&mut cap, cfg, &mut col);
    col.check_contract();
    (col, summary)
}

pub(crate) fn run(t: Trace) -> (Collector, Summary) {
    run_bytes(t.finish(), FlowConfig::default())
}

// --- the analyzer and Zeek's renderings ---------------------------------------------------

/// Runs one capture file, collecting events.
pub(crate) fn run_file(path: &std::path::Path, cfg: AnalyzerConfig) -> (Vec<OwnedEvent>, Stats) {
    let mut cap = Capture::from_paths([path]);
    let mut sink = VecSink::default();
    let stats = Analyzer::new(cfg)
        .run(&mut cap, &mut sink)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (sink.events, stats)
}

/// Runs a capture into Zeek logs; returns (websocket.log, weird.log) texts.
pub(crate) fn run_logs(path: &std::path::Path, zeek_only: bool) -> (String, String) {
    let mut cap = Capture::from_paths([path]);
    let mut logs = ZeekLogs::new(Vec::new(), Vec::new(), Style::Ascii, zeek_only);
    let _ = Analyzer::new(AnalyzerConfig::default()).run(&mut cap, &mut logs);
    let (a, b) = logs.finish().unwrap();
    (String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap())
}

/// btest's uids: the n-th connection of a run.
pub(crate) fn zeek_uid(n: u64) -> &'static str {
    match n {
        1 => "CHhAvVGS1DHFjwGM9",
        2 => "ClEkJM2Vm5giqnMf4h",
        3 => "C4J4Th3PJpwUYZZ6gc",
        _ => "C?",
    }
}

/// Data lines of a Zeek log (no `#` lines, no zeek-cut column line), ts normalised.
pub(crate) fn log_rows(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("ts\t") && !l.is_empty())
        .map(normalise_ts)
        .collect()
}

/// Replaces a leading 10-digit epoch timestamp with btest's `XXXXXXXXXX.XXXXXX`.
pub(crate) fn normalise_ts(l: &str) -> String {
    let b = l.as_bytes();
    if b.len() > 17 && b[..10].iter().all(u8::is_ascii_digit) && b[10] == b'.' {
        format!("XXXXXXXXXX.XXXXXX{}", &l[17..])
    } else {
        l.to_string()
    }
}

/// Maps our uids to btest's (by connection order) in a log text.
pub(crate) fn map_uids(text: &str, events_or_ids: &[(String, u64)]) -> String {
    let mut t = text.to_string();
    for (uid, n) in events_or_ids {
        t = t.replace(uid.as_str(), zeek_uid(*n));
    }
    t
}

/// (uid, connection number) of every connection in the events.
pub(crate) fn uids(events: &[OwnedEvent]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = events
        .iter()
        .map(|e| (e.conn.uid.as_str().to_string(), e.conn.id.0))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Zeek's rendering of a string in `print`: printable ASCII as is, other bytes `\xHH`.
pub(crate) fn zeek_str(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        if (0x20..0x7f).contains(&c) {
            s.push(char::from(c));
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    s
}

fn tf(b: bool) -> &'static str {
    if b {
        "T"
    } else {
        "F"
    }
}

fn opt(s: Option<&str>) -> String {
    s.map_or_else(|| "<uninitialized>".to_string(), String::from)
}

fn vector<'a>(it: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = it.collect();
    if v.is_empty() {
        "<uninitialized>".to_string()
    } else {
        format!("[{}]", v.join(", "))
    }
}

/// The `WebSocket::Info` record as Zeek prints it.
pub(crate) fn info_record(ev: &OwnedEvent, up: &Upgrade) -> String {
    let c = &ev.conn;
    format!(
        "[ts=XXXXXXXXXX.XXXXXX, uid={}, id=[orig_h={}, orig_p={}/tcp, resp_h={}, resp_p={}/tcp, proto=6, ctx=[]], host={}, uri={}, user_agent={}, subprotocol={}, client_protocols={}, server_extensions={}, client_extensions={}, client_key={}, server_accept={}]",
        zeek_uid(c.id.0),
        c.orig.ip(),
        c.orig.port(),
        c.resp.ip(),
        c.resp.port(),
        opt(up.host()),
        opt(up.uri()),
        opt(up.user_agent()),
        opt(up.subprotocol()),
        vector(up.client_protocols()),
        vector(up.server_extensions()),
        vector(up.client_extensions()),
        opt(up.client_key()),
        opt(up.server_accept()),
    )
}

/// Which events the btest script printed, and how.
#[derive(Clone, Copy)]
pub(crate) struct Script {
    /// `websocket_established` prints the Info record (events.zeek) or just the aid.
    pub(crate) established_record: bool,
    /// `websocket_message` is printed.
    pub(crate) message: bool,
}

/// Renders events as the btest script printed them.
pub(crate) fn zeek_print(events: &[OwnedEvent], script: Script) -> Vec<String> {
    let mut out = Vec::new();
    for ev in events {
        let uid = zeek_uid(ev.conn.id.0);
        let o = tf(ev.is_orig());
        match &ev.kind {
            OwnedKind::Established(up) => {
                if script.established_record {
                    out.push(format!(
                        "websocket_established, {uid}, 7, {}",
                        info_record(ev, up)
                    ));
                } else {
                    out.push(format!("websocket_established, {uid}, 7"));
                }
            }
            OwnedKind::Frame { header, .. } => out.push(format!(
                "websocket_frame, {uid}, {o}, fin, {}, rsv, {}, opcode, {}, payload_len, {}",
                tf(header.fin),
                header.rsv,
                opcode_name(header.opcode),
                header.payload_len
            )),
            OwnedKind::FrameData { data, .. } => out.push(format!(
                "websocket_frame_data, {uid}, {o}, len, {}, data, {}",
                data.len(),
                zeek_str(&data[..data.len().min(120)])
            )),
            OwnedKind::Close { status, reason } => out.push(format!(
                "websocket_close, {uid}, {o}, status, {status}, reason, {}",
                zeek_str(reason)
            )),
            OwnedKind::Message { opcode, .. } if script.message => out.push(format!(
                "websocket_message, {uid}, {o}, opcode, {}",
                opcode_name(*opcode)
            )),
            _ => {}
        }
    }
    out
}

/// Baseline lines (the btest header line dropped).
pub(crate) fn baseline(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with("### BTest"))
        .map(String::from)
        .collect()
}

/// Asserts two line lists are equal, showing the first difference.
pub(crate) fn assert_lines(what: &str, ours: &[String], theirs: &[String]) {
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(a, b, "{what}: first difference at line {}", i + 1);
    }
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{what}: {} lines, baseline has {}",
        ours.len(),
        theirs.len()
    );
}

/// A sink that counts events (for runs where collecting would be too much).
#[derive(Default)]
pub(crate) struct CountSink(pub(crate) u64);

impl Sink for CountSink {
    fn event(&mut self, _ev: &wscope_inspect::Event<'_>) {
        self.0 += 1;
    }
}
