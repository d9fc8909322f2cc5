//! Per-direction reassembly, through generated captures and directly.

use wscope_inspect::decode::TcpFlags;
use wscope_inspect::tcp::reassembly::{ReassemblyContext, StreamEvent, StreamReassembler};
use wscope_inspect::tcp::{CloseReason, FlowConfig, Limit, TcpAnomaly};
use wscope_test_support::capture::{Framing, TcpSpec};

use crate::support::{run, run_bytes, Conv, Piece, Rng, Trace, C2S, S2C};

const REQ: &[u8] = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\r\n";
const RESP: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";

fn data(p: &[u8]) -> Vec<Piece> {
    vec![Piece::Data(p.to_vec())]
}

/// A full conversation in a given framing and address family.
fn conversation(framing: Framing, c: &str, s: &str) -> Trace {
    let mut t = Trace::new(framing);
    let mut cv = Conv::new(c, s, 1000, 5000);
    cv.handshake(&mut t);
    t.tcp(cv.client(&REQ[..20]));
    t.tcp(cv.client(&REQ[20..]));
    t.tcp(cv.server(RESP));
    t.tcp(cv.client(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"));
    cv.close(&mut t);
    t
}

#[test]
fn in_order_conversation_is_delivered_without_copies() {
    let (col, sum) = run(conversation(
        Framing::Ethernet,
        "10.1.1.1:50000",
        "10.2.2.2:80",
    ));
    let r = col.only();
    let meta = r.meta.unwrap();
    assert_eq!(meta.orig.to_string(), "10.1.1.1:50000");
    assert_eq!(meta.resp.to_string(), "10.2.2.2:80");
    assert!(!r.mid_stream);
    let mut client = REQ.to_vec();
    client.extend_from_slice(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58");
    assert_eq!(r.pieces(C2S), data(&client));
    assert_eq!(r.pieces(S2C), data(RESP));
    assert_eq!(r.eof, [1, 1]);
    assert_eq!(r.closed, vec![CloseReason::Finished]);
    let s = sum.flows.reassembly;
    assert_eq!(s.bytes_delivered, (client.len() + RESP.len()) as u64);
    assert_eq!(
        s.bytes_in_order, s.bytes_delivered,
        "all in-order bytes passed through"
    );
    assert_eq!(s.out_of_order_bytes, 0);
    assert_eq!(s.gaps, 0);
    assert_eq!(sum.flows.closed_finished, 1);
    assert_eq!(
        sum.flows.late_packets, 1,
        "the final ACK hits the closed connection"
    );
    assert!(sum.error.is_none());
}

#[test]
fn all_framings_and_ipv6_give_the_same_streams() {
    let reference = run(conversation(
        Framing::Ethernet,
        "10.1.1.1:50000",
        "10.2.2.2:80",
    ))
    .0;
    let want = reference.only();
    for framing in [
        Framing::Vlan(10),
        Framing::QinQ(1, 2),
        Framing::LinuxSll,
        Framing::LinuxSll2,
        Framing::Raw,
        Framing::Null,
        Framing::Loop,
    ] {
        for (c, s) in [
            ("10.1.1.1:50000", "10.2.2.2:80"),
            ("[2001:db8::10]:50000", "[2001:db8::20]:80"),
        ] {
            let (col, sum) = run(conversation(framing, c, s));
            let r = col.only();
            assert_eq!(r.pieces(C2S), want.pieces(C2S), "{framing:?} {c}");
            assert_eq!(r.pieces(S2C), want.pieces(S2C), "{framing:?} {c}");
            assert_eq!(r.closed, vec![CloseReason::Finished]);
            assert_eq!(r.meta.unwrap().orig.to_string(), c);
            if c.starts_with('[') {
                assert_eq!(sum.decode.tcp_ipv6, sum.decode.tcp);
            }
        }
    }
}

#[test]
fn out_of_order_segments_are_held_until_the_hole_fills() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut cv = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 100, 900);
    cv.handshake(&mut t);
    // Client sends A B C D; the capture sees C, A, D, B.
    t.tcp(cv.client_at(10, b"CCCCC"));
    t.tcp(cv.client_at(0, b"AAAAA"));
    t.tcp(cv.client_at(15, b"DDDDD"));
    t.tcp(cv.client_at(5, b"BBBBB"));
    cv.cseq += 20;
    cv.close(&mut t);
    let (col, sum) = run(t);
    let r = col.only();
    assert_eq!(r.pieces(C2S), data(b"AAAAABBBBBCCCCCDDDDD"));
    assert_eq!(r.gap_bytes(C2S), 0);
    let s = sum.flows.reassembly;
    assert_eq!(s.out_of_order_bytes, 10, "C and D were copied");
    assert_eq!(s.bytes_in_order, 10, "A and B were not");
    assert_eq!(s.buffered_peak, 10);
    assert_eq!(r.closed, vec![CloseReason::Finished]);
}

#[test]
fn retransmissions_and_keepalives_are_dropped() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut cv = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 7, 9);
    cv.handshake(&mut t);
    t.tcp(cv.client_at(0, b"hello "));
    t.tcp(cv.client_at(0, b"hello ")); // retransmission
    t.tcp(cv.client_at(6, b"world"));
    t.tcp(cv.client_at(0, b"hello world")); // repacketised retransmission
    t.tcp(cv.client_at(10, b"d")); // keep-alive style 1-byte probe of old data
    cv.cseq += 11;
    t.tcp(cv.server(b"ok"));
    cv.close(&mut t);
    let (col, sum) = run(t);
    let r = col.only();
    assert_eq!(r.pieces(C2S), data(b"hello world"));
    assert_eq!(r.pieces(S2C), data(b"ok"));
    assert_eq!(sum.flows.reassembly.duplicate_bytes, 6 + 11 + 1);
    assert!(r.anomalies.is_empty());
}

#[test]
fn overlaps_keep_the_first_bytes_and_report_differences() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut cv = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 50, 60);
    cv.handshake(&mut t);
    // Hole at [0, 5); [10, 20) buffered first.
    t.tcp(cv.client_at(10, b"0123456789"));
    // [5, 15) overlaps the buffered part with different bytes at [10, 15).
    t.tcp(cv.client_at(5, b"vwxyzABCDE"));
    // [3, 12) overlaps consistently ("xy" at 8..10 is what [5,15) put there? no: it is buffered
    // "vwxyz" at 5..10 and "01" at 10..12).
    t.tcp(cv.client_at(3, b"__vwxyz01"));
    // Fill the hole.
    t.tcp(cv.client_at(0, b"abc"));
    cv.cseq += 20;
    cv.close(&mut t);
    let (col, sum) = run(t);
    let r = col.only();
    assert_eq!(r.pieces(C2S), data(b"abc__vwxyz0123456789"));
    assert_eq!(
        r.anomalies,
        vec![(C2S, TcpAnomaly::InconsistentOverlap { offset: 10, len: 5 })]
    );
    assert_eq!(sum.flows.reassembly.inconsistent_overlaps, 1);
    assert!(sum.flows.reassembly.overlap_bytes >= 5 + 7);
}

#[test]
fn a_lost_segment_acknowledged_by_the_peer_becomes_a_gap_at_once() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut cv = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 1, 1);
    cv.handshake(&mut t);
    t.tcp(cv.client(b"first "));
    let _lost = cv.client(b"LOSTLOST"); // never captured
    t.tcp(cv.client(b"third"));
    // The server acknowledges everything: the hole cannot be filled any more.
    t.tcp(cv.server(b"ack"));
    t.tcp(cv.client(b" fourth"));
    cv.close(&mut t);
    let (col, sum) = run(t);
    let r = col.only();
    assert_eq!(
        r.pieces(C2S),
        vec![
            Piece::Data(b"first ".to_vec()),
            Piece::Gap(8),
            Piece::Data(b"third fourth".to_vec())
        ]
    );
    assert_eq!(sum.flows.reassembly.ack_gaps, 1);
    assert_eq!(r.eof, [1, 1]);
    assert_eq!(r.closed, vec![CloseReason::Finished]);
}

#[test]
fn without_ack_gaps_the_hole_is_given_up_at_the_end() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut cv = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 1, 1);
    cv.handshake(&mut t);
    t.tcp(cv.client(b"first "));
    let _lost = cv.client(b"LOSTLOST");
    t.tcp(cv.client(b"third"));
    t.tcp(cv.server(b"ack"));
    cv.close(&mut t);
    let cfg = FlowConfig {
        ack_gaps: false,
        ..FlowConfig::default()
    };
    let (col, _) = run_bytes(t.finish(), cfg);
    let r = col.only();
    assert_eq!(
        r.pieces(C2S),
        vec![
            Piece::Data(b"first ".to_vec()),
            Piece::Gap(8),
            Piece::Data(b"third".to_vec())
        ]
    );
    // The client's FIN came, the hole before it stayed: the connection ends at capture end,
    // and the flush completes the stream up to the FIN.
    assert_eq!(r.eof, [1, 1]);
    assert_eq!(r.closed, vec![CloseReason::CaptureEnd]);
}

#[test]
fn lost_tail_before_fin_is_a_gap_then_eof() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut cv = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 1, 1);
    cv.handshake(&mut t);
    t.tcp(cv.client(b"kept"));
    let _lost = cv.client(b"gone!");
    // FIN from the client after the lost bytes; nobody acknowledges them in the capture.
    t.tcp(TcpSpec::new(cv.c, cv.s).seq(cv.cseq).flags(TcpFlags::FIN));
    let (col, _) = run_bytes(
        t.finish(),
        FlowConfig {
            ack_gaps: false,
            ..FlowConfig::default()
        },
    );
    let r = col.only();
    assert_eq!(
        r.pieces(C2S),
        vec![Piece::Data(b"kept".to_vec()), Piece::Gap(5)]
    );
    assert_eq!(r.eof, [1, 0]);
    assert_eq!(r.closed, vec![CloseReason::CaptureEnd]);
}

#[test]
fn sequence_numbers_wrap_around() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut cv = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 0xFFFF_FFF0, 0xFFFF_FFFE);
    cv.handshake(&mut t);
    let body: Vec<u8> = (0..100u8).collect();
    // 10-byte segments straddling 2^32, two of them swapped, one retransmitted.
    let order = [0, 1, 3, 2, 4, 5, 5, 6, 7, 9, 8];
    for &k in &order {
        t.tcp(cv.client_at(k * 10, &body[(k * 10) as usize..(k * 10 + 10) as usize]));
    }
    cv.cseq = cv.cseq.wrapping_add(100);
    t.tcp(cv.server(&body));
    cv.close(&mut t);
    let (col, _) = run(t);
    let r = col.only();
    assert_eq!(r.pieces(C2S), data(&body));
    assert_eq!(r.pieces(S2C), data(&body));
    assert_eq!(r.closed, vec![CloseReason::Finished]);
}

#[test]
fn truncated_packets_give_gaps_for_the_missing_bytes() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut cv = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 1, 1);
    cv.handshake(&mut t);
    let payload = [b'x'; 500];
    let mut pkt = Vec::new();
    wscope_test_support::capture::encode_tcp(Framing::Ethernet, &cv.client(&payload), &mut pkt)
        .unwrap();
    t.raw_cut(&pkt, 54 + 100);
    t.tcp(cv.client(b"after"));
    cv.close(&mut t);
    let (col, sum) = run(t);
    let r = col.only();
    assert_eq!(
        r.pieces(C2S),
        vec![
            Piece::Data(vec![b'x'; 100]),
            Piece::Gap(400),
            Piece::Data(b"after".to_vec())
        ]
    );
    assert_eq!(sum.decode.tcp_truncated, 1);
    assert_eq!(sum.capture.truncated_packets, 1);
}

#[test]
fn direction_buffer_cap_forces_a_gap() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut cv = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 1, 1);
    cv.handshake(&mut t);
    // Hole of 10 bytes at the start, then 5 x 40 bytes out of order.
    for k in 0..5i64 {
        t.tcp(cv.client_at(10 + k * 40, &[b'a' + k as u8; 40]));
    }
    cv.cseq += 210;
    cv.close(&mut t);
    let cfg = FlowConfig {
        max_buffered_per_direction: 100,
        ack_gaps: false,
        ..FlowConfig::default()
    };
    let (col, sum) = run_bytes(t.finish(), cfg);
    let r = col.only();
    let mut want = vec![Piece::Gap(10)];
    let mut bytes = Vec::new();
    for k in 0..5u8 {
        bytes.extend_from_slice(&[b'a' + k; 40]);
    }
    want.push(Piece::Data(bytes));
    assert_eq!(r.pieces(C2S), want);
    assert_eq!(r.limits, vec![(C2S, Limit::DirectionBuffer { cap: 100 })]);
    assert_eq!(sum.flows.reassembly.direction_limit_hits, 1);
    assert!(sum.flows.reassembly.buffered_peak <= 100);
    assert_eq!(r.closed, vec![CloseReason::Finished]);
}

#[test]
fn total_buffer_cap_is_shared_by_all_connections() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut a = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 1, 1);
    let mut b = Conv::new("10.0.0.3:40000", "10.0.0.2:80", 1, 1);
    a.handshake(&mut t);
    b.handshake(&mut t);
    t.tcp(a.client_at(10, &[b'a'; 60]));
    t.tcp(b.client_at(10, &[b'b'; 60])); // 120 > 100: b's hole goes
    let cfg = FlowConfig {
        max_buffered_total: 100,
        ack_gaps: false,
        ..FlowConfig::default()
    };
    let (col, sum) = run_bytes(t.finish(), cfg);
    let ra = &col.conns[&1];
    let rb = &col.conns[&2];
    assert_eq!(rb.limits, vec![(C2S, Limit::TotalBuffer { cap: 100 })]);
    assert_eq!(rb.pieces(C2S)[0], Piece::Gap(10));
    assert!(ra.limits.is_empty());
    // a's bytes stay buffered until the capture ends.
    assert_eq!(
        ra.pieces(C2S),
        vec![Piece::Gap(10), Piece::Data(vec![b'a'; 60])]
    );
    assert_eq!(sum.flows.reassembly.total_limit_hits, 1);
}

#[test]
fn data_after_fin_is_dropped_and_reported() {
    let mut t = Trace::new(Framing::Ethernet);
    let mut cv = Conv::new("10.0.0.1:40000", "10.0.0.2:80", 1, 1);
    cv.handshake(&mut t);
    t.tcp(cv.client(b"bye"));
    t.tcp(
        TcpSpec::new(cv.c, cv.s)
            .seq(cv.cseq)
            .ack(cv.sseq)
            .flags(TcpFlags::FIN),
    );
    t.tcp(cv.client_at(0, b"more"));
    let (col, _) = run(t);
    let r = col.only();
    assert_eq!(r.pieces(C2S), data(b"bye"));
    assert_eq!(
        r.anomalies,
        vec![(C2S, TcpAnomaly::DataAfterFin { len: 4 })]
    );
    assert_eq!(r.eof, [1, 0]);
}

/// Random segmentation, reordering and duplication of a stream never changes it.
#[test]
fn reassembler_output_is_independent_of_segment_order() {
    let mut rng = Rng::new(0x5EED);
    for round in 0..300 {
        let len = 1 + rng.below(3000) as usize;
        let stream: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let isn = rng.next_u64() as u32;
        let mut segs = Vec::new();
        let mut at = 0;
        while at < len {
            let n = (1 + rng.below(200) as usize).min(len - at);
            segs.push((at, n));
            at += n;
        }
        // Duplicates, including re-cut ones.
        for _ in 0..rng.below(10) {
            let a = rng.below(len as u64) as usize;
            let n = (1 + rng.below(300) as usize).min(len - a);
            segs.push((a, n));
        }
        // Shuffle, but keep every byte in a window the buffer can hold.
        for i in (1..segs.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            segs.swap(i, j);
        }
        let mut cx = ReassemblyContext::new(1 << 20, 1 << 20);
        let mut r = StreamReassembler::new();
        r.start(isn);
        let mut out = Vec::new();
        let mut emit = |ev: StreamEvent<'_>| match ev {
            StreamEvent::Data(b) => out.extend_from_slice(b),
            other => panic!("round {round}: unexpected {other:?}"),
        };
        for &(a, n) in &segs {
            r.segment(
                isn.wrapping_add(a as u32),
                &stream[a..a + n],
                0,
                false,
                &mut cx,
                &mut emit,
            );
        }
        r.flush(&mut cx, &mut emit);
        assert_eq!(out, stream, "round {round}");
        assert_eq!(cx.buffered_total(), 0);
        assert_eq!(r.buffered(), 0);
    }
}

/// With losses and a small buffer: data + gaps always add up to the stream length, and every
/// delivered byte is at its right offset.
#[test]
fn reassembler_with_losses_keeps_offsets_right() {
    let mut rng = Rng::new(99);
    for round in 0..300 {
        let len = 1 + rng.below(5000) as usize;
        let stream: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let isn = rng.next_u64() as u32;
        let mut segs = Vec::new();
        let mut at = 0;
        while at < len {
            let n = (1 + rng.below(300) as usize).min(len - at);
            if rng.below(5) != 0 {
                segs.push((at, n));
            }
            at += n;
        }
        for i in (1..segs.len()).rev() {
            if rng.below(3) == 0 {
                let j = rng.below(i as u64 + 1) as usize;
                segs.swap(i, j);
            }
        }
        let cap = 1 + rng.below(2000) as usize;
        let mut cx = ReassemblyContext::new(cap, 1 << 20);
        let mut r = StreamReassembler::new();
        r.start(isn);
        let mut pos = 0usize;
        let mut ok = true;
        let mut emit = |ev: StreamEvent<'_>| match ev {
            StreamEvent::Data(b) => {
                ok &= stream.get(pos..pos + b.len()) == Some(b);
                pos += b.len();
            }
            StreamEvent::Gap(n) => pos += n as usize,
            StreamEvent::Limit(_) | StreamEvent::Eof => {}
            other => panic!("round {round}: unexpected {other:?}"),
        };
        for &(a, n) in &segs {
            r.segment(
                isn.wrapping_add(a as u32),
                &stream[a..a + n],
                0,
                false,
                &mut cx,
                &mut emit,
            );
            assert!(r.buffered() <= cap, "round {round}: cap exceeded");
        }
        // The FIN tells the stream's length; flushing completes it.
        r.segment(
            isn.wrapping_add(len as u32),
            &[],
            0,
            true,
            &mut cx,
            &mut emit,
        );
        r.flush(&mut cx, &mut emit);
        assert!(ok, "round {round}: bytes at wrong offsets");
        assert_eq!(pos, len, "round {round}: data + gaps != length");
        assert!(r.eof_sent());
    }
}

#[test]
fn retransmission_of_delivered_bytes_with_other_content_is_an_anomaly() {
    // Issue 23: bytes already delivered were dropped unseen, so a retransmission carrying
    // different bytes went unreported (Suricata: reassembly_overlap_different_data).
    let mut cx = ReassemblyContext::new(1 << 20, 1 << 20);
    let mut r = StreamReassembler::new();
    r.start(1000);
    let evs = core::cell::RefCell::new(Vec::new());
    let mut emit = |ev: StreamEvent<'_>| {
        if let StreamEvent::Anomaly(a) = ev {
            evs.borrow_mut().push(a);
        }
    };
    r.segment(1000, b"hello ", 0, false, &mut cx, &mut emit);
    r.segment(1006, b"world", 0, false, &mut cx, &mut emit);
    // The same bytes again, as one segment and as the originals: nothing to say.
    r.segment(1000, b"hello world", 0, false, &mut cx, &mut emit);
    r.segment(1006, b"world", 0, false, &mut cx, &mut emit);
    // A keep-alive probe: one byte before the next expected one, content arbitrary.
    r.segment(1010, b"\0", 0, false, &mut cx, &mut emit);
    assert!(evs.borrow().is_empty(), "{evs:?}");
    // Different content over the second segment, in a retransmission that also brings new
    // bytes; then over the first alone.
    r.segment(1006, b"WORLD!!", 0, false, &mut cx, &mut emit);
    r.segment(1000, b"HELLO ", 0, false, &mut cx, &mut emit);
    assert_eq!(
        *evs.borrow(),
        [
            TcpAnomaly::InconsistentOverlap { offset: 6, len: 5 },
            TcpAnomaly::InconsistentOverlap { offset: 0, len: 6 },
        ]
    );
    assert_eq!(cx.stats.inconsistent_overlaps, 2);
    assert_eq!(r.delivered(), 13);
}
