//! Test support: capture builders and an event collector.

use core::net::SocketAddr;
use std::collections::BTreeMap;
use std::io::Cursor;

use wscope_inspect::capture::Capture;
use wscope_inspect::decode::TcpFlags;
use wscope_inspect::tcp::{
    CloseReason, ConnMeta, ConnectionEvent, ConnectionHandler, FlowConfig, Limit, TcpAnomaly,
};
use wscope_inspect::write::{Framing, PcapWriter, TcpSpec};
use wscope_inspect::Summary;
use wscope_proto::role::Direction;
use wscope_proto::time::Instant;

pub(crate) const C2S: Direction = Direction::ClientToServer;
pub(crate) const S2C: Direction = Direction::ServerToClient;

pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// A tiny deterministic PRNG (xorshift64*).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
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
