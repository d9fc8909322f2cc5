//! A simulated client/server pair: two [`Connection`]s wired to each other in memory, bytes
//! delivered in random-sized reads, time advanced by hand (after quinn-proto's test `Pair`).
//! Every closing-handshake and timeout test runs here, with no sockets and no clock.

use alloc::boxed::Box;
use alloc::string::String;

use alloc::vec::Vec;

use crate::close::{CloseCode, CloseFrameRef, CloseReason};
use crate::connection::{Config, Connection, Event, Outgoing, State};
use crate::frame::OpCode;
use crate::time::{Duration, Instant};
use wscope_test_support::Rng;

/// What one side received, owned.
#[derive(Debug, Default, PartialEq, Eq)]
struct Received {
    messages: Vec<(OpCode, Vec<u8>)>,
    pings: Vec<Vec<u8>>,
    pongs: Vec<Vec<u8>>,
    closes: Vec<Option<(u16, String)>>,
    partial: Vec<u8>,
}

struct Side {
    conn: Connection,
    inbox: Vec<u8>,
    got: Received,
    error: Option<crate::ProtocolError>,
}

struct Pair {
    client: Side,
    server: Side,
    rng: Rng,
    now: Instant,
    max_read: u64,
}

impl Pair {
    fn new(seed: u64, max_read: u64) -> Self {
        let mut mask_rng = Rng::new(seed ^ 0x9e37_79b9_7f4a_7c15);
        let masks = Box::new(move || (mask_rng.next_u64() as u32).to_le_bytes());
        Self {
            client: Side::new(Connection::client(Config::default(), masks, Instant::ZERO)),
            server: Side::new(Connection::server(Config::default(), Instant::ZERO)),
            rng: Rng::new(seed | 1),
            now: Instant::ZERO,
            max_read,
        }
    }

    /// Moves bytes both ways until nothing is left to deliver.
    fn drive(&mut self) {
        for _ in 0..100_000 {
            let moved_a = Self::deliver(
                &mut self.rng,
                self.now,
                self.max_read,
                &mut self.client,
                &mut self.server,
            );
            let moved_b = Self::deliver(
                &mut self.rng,
                self.now,
                self.max_read,
                &mut self.server,
                &mut self.client,
            );
            for side in [&mut self.client, &mut self.server] {
                side.conn.handle_timeout(self.now);
            }
            if !moved_a && !moved_b {
                return;
            }
        }
        panic!("pair did not settle");
    }

    /// Sends `from`'s queued replies to `to` and lets `to` read a random-sized piece.
    fn deliver(rng: &mut Rng, now: Instant, max_read: u64, from: &mut Side, to: &mut Side) -> bool {
        let mut out = Vec::new();
        from.conn.poll_transmit(&mut out);
        to.inbox.extend_from_slice(&out);
        if to.inbox.is_empty() {
            return false;
        }
        let n = (1 + rng.below(max_read)) as usize;
        let n = n.min(to.inbox.len());
        let mut read: Vec<u8> = to.inbox.drain(..n).collect();
        to.read(now, &mut read);
        true
    }

    fn send(&mut self, from_client: bool, msg: Outgoing<'_>) {
        let (side, other) = if from_client {
            (&mut self.client, &mut self.server)
        } else {
            (&mut self.server, &mut self.client)
        };
        let mut out = Vec::new();
        side.conn.send(&mut out, msg).unwrap();
        other.inbox.extend_from_slice(&out);
    }

    /// `from` starts the closing handshake at the pair's time.
    fn close(&mut self, from_client: bool, frame: Option<CloseFrameRef<'_>>) {
        let (side, other) = if from_client {
            (&mut self.client, &mut self.server)
        } else {
            (&mut self.server, &mut self.client)
        };
        let mut out = Vec::new();
        side.conn.close(self.now, &mut out, frame).unwrap();
        other.inbox.extend_from_slice(&out);
    }
}

impl Side {
    fn new(conn: Connection) -> Self {
        Self {
            conn,
            inbox: Vec::new(),
            got: Received::default(),
            error: None,
        }
    }

    fn read(&mut self, now: Instant, data: &mut [u8]) {
        let mut at = 0;
        loop {
            let step = match self.conn.recv(now, &mut data[at..]) {
                Ok(step) => step,
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            };
            at += step.consumed;
            match step.event {
                None => break,
                Some(Event::Frame(_)) => {}
                Some(Event::Data {
                    opcode,
                    chunk,
                    message_end,
                    ..
                }) => {
                    self.got.partial.extend_from_slice(chunk);
                    if message_end {
                        let m = core::mem::take(&mut self.got.partial);
                        self.got.messages.push((opcode, m));
                    }
                }
                Some(Event::Ping(p)) => self.got.pings.push(p.to_vec()),
                Some(Event::Pong(p)) => self.got.pongs.push(p.to_vec()),
                Some(Event::Close(c)) => self
                    .got
                    .closes
                    .push(c.map(|c| (c.code.0, String::from(c.reason)))),
            }
        }
        assert_eq!(
            at,
            data.len(),
            "connection must use every byte it was given"
        );
    }
}

#[test]
fn messages_survive_any_read_split() {
    for seed in 1..40u64 {
        let max_read = [1, 2, 7, 64, 1500, 70_000][(seed % 6) as usize];
        let mut pair = Pair::new(seed, max_read);
        let big: Vec<u8> = (0..70_000u32).map(|i| (i * 31) as u8).collect();
        pair.send(true, Outgoing::Text("héllo wörld"));
        pair.send(true, Outgoing::Binary(&big));
        pair.send(false, Outgoing::Binary(&big[..300]));
        pair.send(true, Outgoing::Ping(b"are you there"));
        pair.drive();
        assert_eq!(pair.server.got.messages.len(), 2, "seed {seed}");
        assert_eq!(
            pair.server.got.messages[0],
            (OpCode::TEXT, "héllo wörld".as_bytes().to_vec())
        );
        assert_eq!(pair.server.got.messages[1], (OpCode::BINARY, big.clone()));
        assert_eq!(
            pair.client.got.messages,
            [(OpCode::BINARY, big[..300].to_vec())]
        );
        // The ping was answered automatically with the same payload.
        assert_eq!(pair.client.got.pongs, [b"are you there".to_vec()]);
        assert!(pair.client.error.is_none() && pair.server.error.is_none());
    }
}

#[test]
fn fragmented_message_with_interleaved_pings() {
    let mut pair = Pair::new(7, 5);
    let mut out = Vec::new();
    let c = &mut pair.client.conn;
    c.send_frame(&mut out, OpCode::TEXT, "frag".as_bytes(), false)
        .unwrap();
    c.send(&mut out, Outgoing::Ping(b"1")).unwrap();
    c.send_frame(&mut out, OpCode::CONTINUATION, "men".as_bytes(), false)
        .unwrap();
    c.send(&mut out, Outgoing::Ping(b"2")).unwrap();
    c.send_frame(&mut out, OpCode::CONTINUATION, "ted".as_bytes(), true)
        .unwrap();
    pair.server.inbox.extend_from_slice(&out);
    pair.drive();
    assert_eq!(
        pair.server.got.messages,
        [(OpCode::TEXT, b"fragmented".to_vec())]
    );
    assert_eq!(pair.server.got.pings, [b"1".to_vec(), b"2".to_vec()]);
    assert_eq!(pair.client.got.pongs, [b"1".to_vec(), b"2".to_vec()]);
}

#[test]
fn client_initiated_close_handshake() {
    let mut pair = Pair::new(3, 3);
    let reason = CloseReason::new("done here").unwrap();
    pair.close(
        true,
        Some(CloseFrameRef::new(CloseCode::GOING_AWAY, reason).unwrap()),
    );
    assert_eq!(pair.client.conn.state(), State::CloseSent);
    pair.drive();
    assert_eq!(
        pair.server.got.closes,
        [Some((1001, String::from("done here")))]
    );
    assert_eq!(pair.client.got.closes, [Some((1001, String::new()))]);
    assert_eq!(pair.server.conn.state(), State::Closed);
    assert_eq!(pair.client.conn.state(), State::Closed);
    // The server closes the transport at once; the client waits for it (bounded).
    assert!(pair.server.conn.should_close_transport());
    assert!(!pair.client.conn.should_close_transport());
    pair.client.conn.handle_eof();
    assert!(pair.client.conn.should_close_transport());
    let status = pair.client.conn.close_status().unwrap();
    assert!(status.initiated_locally);
    assert_eq!(
        (status.remote, status.local),
        (CloseCode::GOING_AWAY, Some(CloseCode::GOING_AWAY))
    );
}

#[test]
fn server_initiated_close_and_client_linger_timeout() {
    let mut pair = Pair::new(11, 1000);
    pair.close(false, None);
    pair.drive();
    assert_eq!(pair.client.got.closes, [None]);
    assert_eq!(pair.server.got.closes, [None]);
    assert_eq!(
        pair.server.conn.close_status().unwrap().remote,
        CloseCode::NO_STATUS
    );
    // The client waits for the server to drop TCP; without it, the close timeout ends the wait.
    assert!(!pair.client.conn.should_close_transport());
    pair.now = pair.now + Duration::from_secs(6);
    pair.client.conn.handle_timeout(pair.now);
    assert!(pair.client.conn.should_close_transport());
}

#[test]
fn unanswered_close_times_out() {
    let mut pair = Pair::new(5, 10);
    let mut out = Vec::new();
    pair.client
        .conn
        .close(Instant::from_micros(1), &mut out, None)
        .unwrap();
    // The server never gets it; time passes.
    pair.client.conn.handle_timeout(Instant::from_micros(1));
    assert_eq!(pair.client.conn.state(), State::CloseSent);
    pair.client
        .conn
        .handle_timeout(Instant::from_micros(0) + Duration::from_secs(5));
    assert_eq!(pair.client.conn.state(), State::CloseSent);
    pair.client
        .conn
        .handle_timeout(Instant::from_micros(1) + Duration::from_secs(5));
    assert_eq!(pair.client.conn.state(), State::Closed);
    assert_eq!(
        pair.client.conn.close_status().unwrap().remote,
        CloseCode::ABNORMAL
    );
}

#[test]
fn protocol_error_fails_with_close_and_peer_sees_code() {
    let mut pair = Pair::new(9, 4);
    // The server (wrongly) sends a reserved opcode: the client must fail with 1002.
    pair.client.inbox.extend_from_slice(&[0x83, 0x00]);
    pair.drive();
    assert!(pair.client.error.is_some());
    assert_eq!(pair.server.got.closes, [Some((1002, String::new()))]);
    assert_eq!(pair.client.conn.state(), State::Closed);
    // Many pings in a row each get a pong (Autobahn 2.10).
    let mut pair = Pair::new(13, 9);
    for i in 0..10u8 {
        pair.send(true, Outgoing::Ping(&[i; 10]));
    }
    pair.drive();
    assert_eq!(pair.client.got.pongs.len(), 10);
}

#[cfg(feature = "deflate")]
#[test]
fn deflate_roundtrip_every_parameter_combination() {
    use crate::connection::DeflateOptions;
    use crate::deflate::DeflateParams;
    let text = "compress me, compress me, compress me please! ".repeat(40);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i / 7) as u8).collect();
    for (seed, (snct, cnct, sbits, cbits)) in [
        (false, false, 15, 15),
        (true, true, 9, 9),
        (true, false, 8, 12),
        (false, true, 15, 8),
    ]
    .into_iter()
    .enumerate()
    {
        let params = DeflateParams {
            server_no_context_takeover: snct,
            client_no_context_takeover: cnct,
            server_max_window_bits: sbits,
            client_max_window_bits: cbits,
        };
        let mut pair = Pair::new(seed as u64 + 21, 333);
        pair.client
            .conn
            .enable_deflate(params, DeflateOptions::default());
        pair.server
            .conn
            .enable_deflate(params, DeflateOptions::default());
        let mut wire = Vec::new();
        pair.client
            .conn
            .send(&mut wire, Outgoing::Text(&text))
            .unwrap();
        assert_eq!(wire[0], 0xc1, "RSV1 and FIN on a compressed text frame");
        assert!(wire.len() < text.len() / 4);
        pair.server.inbox.extend_from_slice(&wire);
        pair.send(true, Outgoing::Text(&text));
        pair.send(true, Outgoing::Text("tiny"));
        pair.send(false, Outgoing::Binary(&big));
        // A fragmented compressed message with a ping in between.
        let mut out = Vec::new();
        let c = &mut pair.client.conn;
        c.send_frame(&mut out, OpCode::BINARY, &big[..1000], false)
            .unwrap();
        c.send(&mut out, Outgoing::Ping(b"mid")).unwrap();
        c.send_frame(&mut out, OpCode::CONTINUATION, &big[1000..5000], true)
            .unwrap();
        assert_eq!(out[0] & 0x40, 0x40);
        pair.server.inbox.extend_from_slice(&out);
        pair.drive();
        let got = &pair.server.got.messages;
        assert_eq!(got.len(), 4, "combination {seed}");
        assert_eq!(got[0].1, text.as_bytes());
        assert_eq!(got[1].1, text.as_bytes());
        assert_eq!(got[2], (OpCode::TEXT, b"tiny".to_vec()));
        assert_eq!(got[3], (OpCode::BINARY, big[..5000].to_vec()));
        assert_eq!(pair.client.got.messages, [(OpCode::BINARY, big.clone())]);
        assert!(pair.server.error.is_none() && pair.client.error.is_none());
    }
}

#[cfg(feature = "deflate")]
#[test]
fn deflate_bomb_and_corruption_fail_with_right_codes() {
    use crate::connection::DeflateOptions;
    use crate::deflate::{DeflateParams, Deflater};
    // 8 MiB of zeros in a 8 KiB-ish message against a 1 MiB limit: 1009.
    let cfg = Config {
        max_message_len: 1 << 20,
        ..Config::default()
    };
    let mut server = Connection::server(cfg, Instant::ZERO);
    server.enable_deflate(DeflateParams::default(), DeflateOptions::default());
    let mut payload = Vec::new();
    Deflater::new(9, 15, false).compress(&alloc::vec![0u8; 8 << 20], true, &mut payload);
    let mut frame = Vec::new();
    let header = crate::frame::FrameHeader {
        rsv: crate::frame::RSV1,
        ..crate::frame::FrameHeader::new(
            true,
            OpCode::BINARY,
            Some([1, 2, 3, 4]),
            payload.len() as u64,
        )
    };
    crate::connection::write_frame(&mut frame, &header, &payload);
    let mut side = Side::new(server);
    side.read(Instant::ZERO, &mut frame);
    assert_eq!(side.error.map(|e| e.close_code().0), Some(1009));
    // Garbage with RSV1: 1007.
    let mut server = Connection::server(Config::default(), Instant::ZERO);
    server.enable_deflate(DeflateParams::default(), DeflateOptions::default());
    let mut side = Side::new(server);
    side.read(
        Instant::ZERO,
        &mut [0xc2, 0x84, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
    );
    assert_eq!(side.error.map(|e| e.close_code().0), Some(1007));
    // RSV1 without negotiation: 1002.
    let mut side = Side::new(Connection::server(Config::default(), Instant::ZERO));
    side.read(Instant::ZERO, &mut [0xc2, 0x80, 0, 0, 0, 0]);
    assert_eq!(side.error.map(|e| e.close_code().0), Some(1002));
}

/// A compressed text whose inflated bytes are invalid UTF-8 long before they pass the limit
/// is 1007 whether it arrives whole or byte by byte (it was 1009 read whole: the inflater
/// hit the limit before its output was validated). Found by the `connection` fuzz target.
#[cfg(feature = "deflate")]
#[test]
fn deflate_invalid_utf8_before_the_limit_is_1007_however_it_arrives() {
    use crate::connection::DeflateOptions;
    use crate::deflate::{DeflateParams, Deflater};
    let mut text = alloc::vec![0u8; 100_000];
    text[0] = 0xff;
    let mut payload = Vec::new();
    Deflater::new(6, 15, false).compress(&text, true, &mut payload);
    let header = crate::frame::FrameHeader {
        rsv: crate::frame::RSV1,
        ..crate::frame::FrameHeader::new(
            true,
            OpCode::TEXT,
            Some([1, 2, 3, 4]),
            payload.len() as u64,
        )
    };
    let mut frame = Vec::new();
    crate::connection::write_frame(&mut frame, &header, &payload);
    for read in [frame.len(), 1] {
        let cfg = Config {
            max_message_len: 3000,
            ..Config::default()
        };
        let mut side = Side::new(Connection::server(cfg, Instant::ZERO));
        side.conn
            .enable_deflate(DeflateParams::default(), DeflateOptions::default());
        let mut wire = frame.clone();
        for piece in wire.chunks_mut(read) {
            side.read(Instant::ZERO, piece);
        }
        assert_eq!(
            side.error,
            Some(crate::ProtocolError::InvalidUtf8),
            "reads of {read}"
        );
    }
}

#[test]
fn keepalive_pings_a_quiet_peer_and_fails_an_unresponsive_one() {
    use crate::keepalive::Keepalive;
    let ka = Keepalive {
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(5),
    };
    let cfg = Config {
        keepalive: Some(ka),
        ..Config::default()
    };
    let mut pair = Pair::new(21, 7);
    pair.server = Side::new(Connection::server(cfg, Instant::ZERO));
    // The timer started with the connection, at t = 0.
    assert_eq!(
        pair.server.conn.poll_timeout(),
        Some(Instant::ZERO + Duration::from_secs(10))
    );
    // Traffic in every interval: no ping.
    for k in 1..=3u64 {
        pair.send(true, Outgoing::Text("still here"));
        pair.now = Instant::ZERO + Duration::from_secs(10 * k);
        pair.drive();
    }
    assert!(pair.client.got.pings.is_empty());
    assert_eq!(pair.server.got.messages.len(), 3);
    // Quiet from t = 30 s: the server pings one interval after the last message arrived (and
    // at most two after: activity is looked at when the timer fires), and the client's
    // automatic pong answers it.
    let mut t = 30;
    while pair.client.got.pings.is_empty() {
        t += 1;
        assert!(t <= 50, "no ping by t = 50 s");
        pair.now = Instant::ZERO + Duration::from_secs(t);
        pair.drive(); // the timer fires: the ping is queued
        pair.drive(); // ... and delivered, and answered
    }
    assert!(
        t >= 40,
        "pinged at {t} s, less than an interval after the last message"
    );
    assert_eq!(pair.client.got.pings, [b"wscope keepalive".to_vec()]);
    assert_eq!(pair.server.got.pongs.len(), 1);
    pair.now = Instant::ZERO + Duration::from_secs(t + 5);
    pair.drive();
    assert_eq!(pair.server.conn.state(), State::Open);
    // A peer that stops answering: the next ping, one to two intervals after the answer (one
    // when the answer came in one read), goes unanswered and the server fails with 1011 after
    // the timeout.
    let mut out = Vec::new();
    loop {
        pair.now = pair.server.conn.poll_timeout().unwrap();
        assert!(
            pair.now <= Instant::ZERO + Duration::from_secs(t + 20),
            "no second ping by {:?}",
            pair.now
        );
        pair.server.conn.handle_timeout(pair.now);
        if pair.server.conn.poll_transmit(&mut out) {
            break; // the ping, lost on the way
        }
    }
    assert!(pair.now >= Instant::ZERO + Duration::from_secs(t + 10));
    pair.server
        .conn
        .handle_timeout(pair.now + Duration::from_secs(5));
    assert_eq!(pair.server.conn.state(), State::Closed);
    let status = pair.server.conn.close_status().unwrap();
    assert_eq!(status.local, Some(CloseCode::INTERNAL_ERROR));
    assert_eq!(status.remote, CloseCode::ABNORMAL);
    assert!(status.keepalive_timed_out);
    pair.drive();
    assert_eq!(
        pair.client.got.closes,
        [Some((1011, String::from("keepalive timeout")))]
    );
    assert!(pair.server.conn.should_close_transport());
}

#[test]
fn idle_timeout_closes_a_quiet_connection_with_1001() {
    let cfg = Config {
        idle_timeout: Some(Duration::from_secs(10)),
        ..Config::default()
    };
    let mut pair = Pair::new(31, 7);
    pair.server = Side::new(Connection::server(cfg, pair.now));
    // A message every 8 s keeps it open.
    for k in 1..=3u64 {
        pair.send(true, Outgoing::Text("still here"));
        pair.now = Instant::ZERO + Duration::from_secs(8 * k);
        pair.drive();
    }
    assert_eq!(pair.server.conn.state(), State::Open);
    assert_eq!(
        pair.server.conn.poll_timeout(),
        Some(Instant::ZERO + Duration::from_secs(34))
    );
    // Quiet for 10 s: the server closes with 1001, the client answers, both are closed.
    pair.now = Instant::ZERO + Duration::from_secs(34);
    pair.drive(); // the timer fires: the close is queued
    pair.drive(); // ... delivered, and answered
    assert_eq!(
        pair.client.got.closes,
        [Some((1001, String::from("idle timeout")))]
    );
    assert_eq!(pair.server.got.closes, [Some((1001, String::new()))]);
    let status = pair.server.conn.close_status().unwrap();
    assert!(status.idle_timed_out && status.initiated_locally);
    assert_eq!(status.remote, CloseCode::GOING_AWAY);
    assert!(pair.server.conn.should_close_transport());
    assert!(!pair.client.conn.close_status().unwrap().idle_timed_out);
}
