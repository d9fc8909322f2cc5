//! The flow table: orientation, lifetime, timeouts, caps, uids, memory.

use std::io::Cursor;

use wscope_inspect::capture::Capture;
use wscope_inspect::decode::TcpFlags;
use wscope_inspect::tcp::{CloseReason, ConnMeta, ConnectionEvent, FlowConfig, FlowTable};
use wscope_inspect::uid::{ConnId, UidGenerator};
use wscope_proto::role::Direction;
use wscope_proto::time::Duration;
use wscope_test_support::capture::{Framing, TcpSpec};

use crate::support::{addr, run, run_bytes, Conv, Piece, Trace, C2S, S2C};

#[test]
fn mid_stream_connection_takes_the_first_sender_as_originator() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut cv = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 70_000, 90_000);
    // No handshake: the first packet seen is server data.
    t.tcp(cv.server(b"server first"));
    t.tcp(cv.client(b"client reply"));
    t.tcp(cv.server(b" more"));
    let (col, sum) = run(t);
    let r = col.only();
    assert!(r.mid_stream);
    let meta = r.meta.unwrap();
    assert_eq!(meta.orig, addr("10.0.0.2:80"));
    assert!(meta.mid_stream);
    // ClientToServer is the originator's direction: here the server's bytes.
    assert_eq!(r.bytes(C2S), b"server first more");
    assert_eq!(r.bytes(S2C), b"client reply");
    assert_eq!(r.closed, vec![CloseReason::CaptureEnd]);
    assert_eq!(sum.flows.closed_at_end, 1);
}

#[test]
fn syn_ack_first_makes_its_receiver_the_originator() {
    let mut t = Trace::new(Framing::Ethernet);
    let c = addr("10.0.0.1:40000");
    let s = addr("10.0.0.2:80");
    t.tcp(TcpSpec::new(s, c).seq(500).ack(101).flags(TcpFlags::SYN));
    t.tcp(TcpSpec::new(c, s).seq(101).ack(501).payload(b"hi"));
    t.tcp(TcpSpec::new(s, c).seq(501).ack(103).payload(b"yo"));
    let (col, _) = run(t);
    let r = col.only();
    assert!(!r.mid_stream);
    assert_eq!(r.meta.unwrap().orig, c);
    assert_eq!(r.bytes(C2S), b"hi");
    assert_eq!(r.bytes(S2C), b"yo");
}

#[test]
fn late_acks_after_close_do_not_open_a_connection() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut cv = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 1, 1);
    cv.handshake(&mut t);
    t.tcp(cv.client(b"x"));
    cv.close(&mut t);
    // A retransmitted FIN and another ACK, still within the linger time.
    t.tcp(
        TcpSpec::new(cv.s, cv.c)
            .seq(cv.sseq - 1)
            .ack(cv.cseq)
            .flags(TcpFlags::FIN),
    );
    t.tcp(TcpSpec::new(cv.c, cv.s).seq(cv.cseq).ack(cv.sseq));
    let (col, sum) = run(t);
    assert_eq!(col.conns.len(), 1);
    assert_eq!(sum.flows.late_packets, 3);
    assert_eq!(col.only().closed, vec![CloseReason::Finished]);
}

#[test]
fn rst_closes_the_connection_and_flushes_holes() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut cv = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 1, 1);
    cv.handshake(&mut t);
    t.tcp(cv.client(b"abc"));
    t.tcp(cv.client_at(2, b"fgh")); // hole at [3, 5)
    t.tcp(TcpSpec::new(cv.s, cv.c).seq(cv.sseq).flags(TcpFlags::RST));
    // Later packets for the reset connection are ignored.
    t.tcp(cv.client_at(5, b"late"));
    // A lone RST for an unknown connection opens nothing.
    t.tcp(TcpSpec::new(addr("10.9.9.9:1"), addr("10.9.9.8:2")).flags(TcpFlags::RST));
    let (col, sum) = run(t);
    let r = col.only();
    assert_eq!(
        r.pieces(C2S),
        vec![
            Piece::Data(b"abc".to_vec()),
            Piece::Gap(2),
            Piece::Data(b"fgh".to_vec())
        ]
    );
    assert_eq!(
        r.closed,
        vec![CloseReason::Reset(Direction::ServerToClient)]
    );
    assert_eq!(r.eof, [0, 0]);
    assert_eq!(sum.flows.closed_reset, 1);
    assert_eq!(sum.flows.stray_resets, 1);
    assert_eq!(sum.flows.late_packets, 1);
}

#[test]
fn port_reuse_after_close_and_while_open() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut a = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 1, 1);
    a.handshake(&mut t);
    t.tcp(a.client(b"one"));
    a.close(&mut t);
    // Same ports, new ISN, right after the close: a new connection.
    let mut b = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 7777, 8888);
    b.handshake(&mut t);
    t.tcp(b.client(b"two"));
    // And again while the second is still open (it carried data): reuse.
    let mut c = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 99_999, 5);
    c.handshake(&mut t);
    t.tcp(c.client(b"three"));
    c.close(&mut t);
    let (col, sum) = run(t);
    assert_eq!(col.conns.len(), 3);
    assert_eq!(col.conns[&1].closed, vec![CloseReason::Finished]);
    assert_eq!(col.conns[&2].closed, vec![CloseReason::Reused]);
    assert_eq!(col.conns[&3].closed, vec![CloseReason::Finished]);
    assert_eq!(col.conns[&1].bytes(C2S), b"one");
    assert_eq!(col.conns[&2].bytes(C2S), b"two");
    assert_eq!(col.conns[&3].bytes(C2S), b"three");
    assert_eq!(sum.flows.reused, 1);
}

#[test]
fn retransmitted_syn_is_not_a_new_connection() {
    let mut t = Trace::new(Framing::Ethernet);
    let c = addr("10.0.0.1:40000");
    let s = addr("10.0.0.2:80");
    t.tcp(TcpSpec::new(c, s).seq(10).flags(TcpFlags::SYN));
    t.tcp(TcpSpec::new(c, s).seq(10).flags(TcpFlags::SYN));
    // A new attempt with another ISN before anything was sent: same connection, resynced.
    t.tcp(TcpSpec::new(c, s).seq(500).flags(TcpFlags::SYN));
    t.tcp(TcpSpec::new(s, c).seq(9000).ack(501).flags(TcpFlags::SYN));
    t.tcp(TcpSpec::new(c, s).seq(501).ack(9001).payload(b"data"));
    let (col, _) = run(t);
    let r = col.only();
    assert_eq!(r.bytes(C2S), b"data");
    assert!(!r.mid_stream);
}

#[test]
fn idle_and_handshake_timeouts_use_packet_time() {
    let mut t = Trace::new(Framing::Ethernet);
    let base = t.ts;
    let mut a = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 1, 1);
    a.handshake(&mut t);
    t.tcp(a.client(b"active"));
    // A lone SYN: handshake-only.
    t.tcp(
        TcpSpec::new(addr("10.0.0.5:1234"), addr("10.0.0.2:80"))
            .seq(1)
            .flags(TcpFlags::SYN),
    );
    // 60 s later: the SYN-only connection (30 s) has timed out, the active one (300 s) not.
    t.at(base + 60_000_000);
    let mut b = Conv::new("10.0.0.3:40000", "10.0.0.2:80", 1, 1);
    b.handshake(&mut t);
    // 350 s after the start: the first one times out too (the third is 290 s idle).
    t.at(base + 350_000_000);
    t.tcp(b.client(b"still here"));
    let (col, sum) = run(t);
    assert_eq!(col.conns[&2].closed, vec![CloseReason::IdleTimeout]);
    assert_eq!(col.conns[&1].closed, vec![CloseReason::IdleTimeout]);
    assert_eq!(col.conns[&3].closed, vec![CloseReason::CaptureEnd]);
    assert_eq!(sum.flows.closed_timeout, 2);
    assert_eq!(col.conns[&1].bytes(C2S), b"active");
}

#[test]
fn flow_cap_evicts_least_recently_used() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut convs: Vec<Conv> = (0..4)
        .map(|i| Conv::new(&format!("10.0.0.{}:4000", i + 1), "10.0.0.100:80", 1, 1))
        .collect();
    for cv in &mut convs {
        cv.handshake(&mut t);
    }
    // Touch connection 1 so that 2 is the least recently used when 5 arrives.
    t.tcp(convs[0].client(b"keep me"));
    let mut e = Conv::new("10.0.0.50:4000", "10.0.0.100:80", 1, 1);
    e.handshake(&mut t);
    let cfg = FlowConfig {
        max_flows: 4,
        ..FlowConfig::default()
    };
    let (col, sum) = run_bytes(t.finish(), cfg);
    assert_eq!(col.conns[&2].closed, vec![CloseReason::Evicted]);
    for id in [1, 3, 4, 5] {
        assert_eq!(
            col.conns[&id].closed,
            vec![CloseReason::CaptureEnd],
            "conn {id}"
        );
    }
    assert_eq!(sum.flows.evicted, 1);
    assert_eq!(sum.flows.peak_tracked, 4);
}

fn syn_flood(n: u32) -> Vec<u8> {
    let mut t = Trace::new(Framing::Ethernet);
    t.step = 1; // 1 µs apart: nothing times out
    let dst = addr("10.255.0.1:80");
    for i in 0..n {
        let src = format!(
            "10.{}.{}.{}:{}",
            (i >> 16) & 0xFF,
            (i >> 8) & 0xFF,
            i & 0xFF,
            1024 + (i % 60000)
        );
        t.tcp(TcpSpec::new(addr(&src), dst).seq(i).flags(TcpFlags::SYN));
    }
    t.finish()
}

#[test]
fn hundred_thousand_syn_only_flows_stay_bounded() {
    let bytes = syn_flood(100_000);

    // With a cap: never more than the cap, and every eviction reported.
    let mut cap = Capture::from_reader(Cursor::new(bytes.clone()), "flood");
    let mut closed = [0u64; 2];
    let mut handler = |_: &ConnMeta, ev: ConnectionEvent<'_>| {
        if let ConnectionEvent::Closed { reason, .. } = ev {
            match reason {
                CloseReason::Evicted => closed[0] += 1,
                _ => closed[1] += 1,
            }
        }
    };
    let sum = wscope_inspect::reassemble(
        &mut cap,
        FlowConfig {
            max_flows: 10_000,
            ..FlowConfig::default()
        },
        &mut handler,
    );
    assert_eq!(sum.flows.opened, 100_000);
    assert_eq!(sum.flows.peak_tracked, 10_000);
    assert_eq!(sum.flows.evicted, 90_000);
    assert_eq!(closed, [90_000, 10_000]);

    // With the default cap all 100k are tracked; memory stays small (no buffers, compact
    // slots).
    let mut table: FlowTable<()> = FlowTable::new(FlowConfig::default());
    let mut cap = Capture::from_reader(Cursor::new(bytes), "flood");
    let mut dec = wscope_inspect::decode::Decoder::new();
    let mut nop = |_: &ConnMeta, _: ConnectionEvent<'_>| {};
    while let Some(p) = cap.next_packet().unwrap() {
        let seg = dec.decode(&p).unwrap();
        table.handle_segment(&seg, &mut nop);
    }
    assert_eq!(table.len(), 100_000);
    let mem = table.approx_memory();
    assert!(mem < 80 << 20, "{} bytes for 100k flows", mem);
    table.finish(&mut nop);
    assert!(table.is_empty());
}

#[test]
fn handshake_timeout_clears_a_syn_flood_by_itself() {
    let mut t = Trace::new(Framing::Ethernet);
    t.step = 10_000; // 10 ms apart: 200 s in all, 30 s timeout
    let dst = addr("10.255.0.1:80");
    for i in 0..20_000u32 {
        let src = format!("10.1.{}.{}:{}", (i >> 8) & 0xFF, i & 0xFF, 2000 + i % 1000);
        t.tcp(TcpSpec::new(addr(&src), dst).seq(i).flags(TcpFlags::SYN));
    }
    let (_, sum) = run(t);
    assert_eq!(sum.flows.opened, 20_000);
    assert!(
        sum.flows.peak_tracked <= 3_002,
        "peak {}",
        sum.flows.peak_tracked
    );
    assert!(sum.flows.closed_timeout > 16_000);
}

#[test]
fn uids_are_deterministic_and_distinct() {
    let g = UidGenerator::new(0);
    let mut seen = std::collections::HashSet::new();
    for i in 1..=10_000 {
        let u = g.uid(ConnId(i));
        let s = u.as_str();
        assert!(s.starts_with('C') && s.len() >= 12 && s.len() <= 23, "{s}");
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(seen.insert(s.to_owned()), "duplicate {s}");
        assert_eq!(u, UidGenerator::new(0).uid(ConnId(i)));
    }
    assert_ne!(g.uid(ConnId(1)), UidGenerator::new(1).uid(ConnId(1)));

    // Through the pipeline: two runs, same uids.
    let make = || {
        let mut t = Trace::new(Framing::Ethernet);
        for i in 0..3 {
            let mut cv = Conv::new(&format!("10.0.0.{}:1000", i + 1), "10.0.0.9:80", 1, 1);
            cv.handshake(&mut t);
        }
        t.finish()
    };
    let uids = |bytes| {
        let (col, _) = run_bytes(bytes, FlowConfig::default());
        col.conns
            .values()
            .map(|r| r.meta.unwrap().uid.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(uids(make()), uids(make()));
}

#[test]
fn advance_time_expires_without_packets() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut cv = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 1, 1);
    cv.handshake(&mut t);
    let bytes = t.finish();
    let mut table: FlowTable<()> = FlowTable::new(FlowConfig {
        idle_timeout: Duration::from_secs(10),
        ..FlowConfig::default()
    });
    let mut closed = Vec::new();
    let mut h = |_: &ConnMeta, ev: ConnectionEvent<'_>| {
        if let ConnectionEvent::Closed { reason, ts } = ev {
            closed.push((reason, ts));
        }
    };
    let mut cap = Capture::from_reader(Cursor::new(bytes), "m");
    let mut dec = wscope_inspect::decode::Decoder::new();
    while let Some(p) = cap.next_packet().unwrap() {
        if let Some(seg) = dec.decode(&p) {
            table.handle_segment(&seg, &mut h);
        }
    }
    let last = table.now();
    table.advance_time(last + Duration::from_secs(5), &mut h);
    assert_eq!(table.len(), 1);
    table.advance_time(last + Duration::from_secs(11), &mut h);
    assert_eq!(table.len(), 0);
    assert_eq!(
        closed,
        vec![(CloseReason::IdleTimeout, last + Duration::from_secs(10))]
    );
}
