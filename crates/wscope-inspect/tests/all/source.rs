//! Packet sources other than files: ticks of a live capture expire idle connections and reach
//! the sink, in order with the packets.

use std::io::Cursor;

use wscope_inspect::analyzer::{Analyzer, AnalyzerConfig};
use wscope_inspect::capture::{Capture, CaptureError, CaptureStats};
use wscope_inspect::event::Event;
use wscope_inspect::sink::Sink;
use wscope_inspect::source::{InterfaceStats, Next, PacketSource, Tick};
use wscope_inspect::tcp::ConnMeta;
use wscope_proto::time::Instant;
use wscope_test_support::capture::Framing;
use wscope_test_support::wire::{frame, upgrade_request, upgrade_response};

use crate::support::{Conv, Trace};

/// A capture file replayed with ticks inserted after given packet counts, as a live source
/// gives them.
struct Scripted {
    capture: Capture,
    /// (packets read before it, time) of each tick still to come, in order.
    ticks: Vec<(u64, Instant)>,
    counters: Vec<InterfaceStats>,
}

impl PacketSource for Scripted {
    fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        let read = self.capture.stats().packets;
        if self.ticks.first().is_some_and(|&(n, _)| n <= read) {
            let (_, now) = self.ticks.remove(0);
            self.counters[0].received = read;
            return Ok(Next::Tick(Tick {
                now,
                settled: now,
                interfaces: &self.counters,
            }));
        }
        Ok(self.capture.next_packet()?.map_or(Next::End, Next::Packet))
    }

    fn stats(&self) -> CaptureStats {
        self.capture.stats()
    }
}

/// Records what reaches the sink, in order.
#[derive(Default)]
struct Log(Vec<String>);

impl Sink for Log {
    fn event(&mut self, ev: &Event<'_>) {
        self.0.push(ev.kind.name().to_string());
    }

    fn connection_closed(&mut self, _conn: &ConnMeta) {
        self.0.push("closed".into());
    }

    fn tick(&mut self, tick: &Tick<'_>) {
        let received: u64 = tick.interfaces.iter().map(|i| i.received).sum();
        self.0.push(format!("tick {received}"));
    }
}

/// One WebSocket session that sends a message and then goes quiet (no FIN), 7 packets.
fn quiet_session() -> (Vec<u8>, u64) {
    let mut t = Trace::new(Framing::Ethernet);
    let mut cv = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    cv.handshake(&mut t);
    let req = upgrade_request("/", "h", None);
    let resp = upgrade_response(None);
    let msg = frame(true, false, 0x1, Some([1, 2, 3, 4]), b"hello");
    t.tcp(cv.client(&req));
    t.tcp(cv.server(&resp));
    t.tcp(cv.client(&msg));
    t.tcp(cv.server(b""));
    let last = t.ts;
    (t.finish(), last)
}

fn run(ticks: Vec<(u64, Instant)>) -> Vec<String> {
    let (pcap, _) = quiet_session();
    let mut src = Scripted {
        capture: Capture::from_reader(Cursor::new(pcap), "quiet.pcap"),
        ticks,
        counters: vec![InterfaceStats {
            name: "veth0".into(),
            ..InterfaceStats::default()
        }],
    };
    let mut log = Log::default();
    let stats = Analyzer::new(AnalyzerConfig::default())
        .run_source(&mut src, &mut log)
        .expect("run");
    assert_eq!(stats.sessions, 1);
    log.0
}

#[test]
fn a_quiet_capture_expires_idle_connections_on_a_tick() {
    let (_, last) = quiet_session();
    // 301 s after the last packet (the idle timeout is 300 s): the connection ends at the
    // tick, before the capture does, and the sink hears of the tick after that.
    let events = run(vec![(7, Instant::from_micros(last + 301_000_000))]);
    let closed = events.iter().position(|e| e == "closed").expect("closed");
    let tick = events.iter().position(|e| e == "tick 7").expect("tick");
    assert_eq!(tick, closed + 1, "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("tick 7"));
}

#[test]
fn ticks_before_the_idle_timeout_close_nothing() {
    let (_, last) = quiet_session();
    let events = run(vec![
        (3, Instant::from_micros(last)),
        (7, Instant::from_micros(last + 10_000_000)),
    ]);
    // The ticks arrive in order with the packets; the connection only ends with the capture.
    let ticks: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].starts_with("tick"))
        .collect();
    assert_eq!(ticks.len(), 2, "{events:?}");
    assert_eq!(events[ticks[0]], "tick 3");
    assert!(!events[..ticks[0]].contains(&"established".to_string()));
    assert_eq!(
        events.last().map(String::as_str),
        Some("closed"),
        "{events:?}"
    );
}

#[test]
fn a_file_capture_is_a_packet_source_without_ticks() {
    let (pcap, _) = quiet_session();
    let mut log = Log::default();
    let mut cap = Capture::from_reader(Cursor::new(pcap), "quiet.pcap");
    let stats = Analyzer::new(AnalyzerConfig::default())
        .run_source(&mut cap, &mut log)
        .expect("run");
    assert_eq!(stats.capture.packets, 7);
    assert!(!log.0.iter().any(|e| e.starts_with("tick")));
    assert_eq!(log.0.last().map(String::as_str), Some("closed"));
}
