//! Unit tests of the endpoint state machine: automatic replies, violations, the closing
//! handshake and its timeout, fragment sequencing, deflate memory, the idle timeout.

use super::*;
use crate::close::{CloseCode, CloseReason};
use crate::mask::apply_mask;
use alloc::vec;

const T0: Instant = Instant::ZERO;

fn counter_masks() -> Box<dyn MaskSource> {
    let mut n: u32 = 0x1234_5678;
    Box::new(move || {
        n = n.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        n.to_le_bytes()
    })
}

/// Feeds `wire` to `conn`, returning owned copies of the events (stops at an error).
fn feed(conn: &mut Connection, wire: &[u8]) -> (Vec<alloc::string::String>, Option<ProtocolError>) {
    feed_at(conn, T0, wire)
}

/// [`feed`], the bytes arriving at `now`.
fn feed_at(
    conn: &mut Connection,
    now: Instant,
    wire: &[u8],
) -> (Vec<alloc::string::String>, Option<ProtocolError>) {
    let mut data = wire.to_vec();
    let mut at = 0;
    let mut out = Vec::new();
    loop {
        match conn.recv(now, &mut data[at..]) {
            Ok(step) => {
                at += step.consumed;
                match step.event {
                    None => return (out, None),
                    Some(Event::Frame(_)) => {}
                    Some(e) => out.push(alloc::format!("{e:?}")),
                }
            }
            Err(e) => return (out, Some(e)),
        }
    }
}

#[test]
fn pong_and_close_are_automatic() {
    let mut server = Connection::server(Config::default(), T0);
    let wire = [
        0x89,
        0x82,
        1,
        2,
        3,
        4,
        b'h' ^ 1,
        b'i' ^ 2,
        0x88,
        0x82,
        9,
        9,
        9,
        9,
        0x03 ^ 9,
        0xe8 ^ 9,
    ];
    let (events, err) = feed(&mut server, &wire);
    assert_eq!(err, None);
    assert_eq!(events.len(), 2);
    let mut out = Vec::new();
    assert!(server.poll_transmit(&mut out));
    assert_eq!(out, [0x8a, 0x02, b'h', b'i', 0x88, 0x02, 0x03, 0xe8]);
    assert_eq!(server.state(), State::Closed);
    assert!(server.should_close_transport());
    assert_eq!(server.close_status().unwrap().remote, CloseCode::NORMAL);
    // Input after the close is ignored.
    let (events, err) = feed(&mut server, &[0x81, 0x80, 0, 0, 0, 0]);
    assert!(events.is_empty() && err.is_none());
}

#[test]
fn violation_queues_the_right_close() {
    for (wire, code) in [
        (vec![0x81, 0x00], 1002u16),                // unmasked at a server
        (vec![0x81, 0x81, 0, 0, 0, 0, 0xff], 1007), // invalid UTF-8
        (vec![0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4], 1009), // 4 GiB frame
    ] {
        let mut server = Connection::server(Config::default(), T0);
        let (_, err) = feed(&mut server, &wire);
        assert_eq!(err.map(|e| e.close_code().0), Some(code));
        let mut out = Vec::new();
        server.poll_transmit(&mut out);
        assert_eq!(out, [0x88, 0x02, (code >> 8) as u8, code as u8]);
        assert_eq!(server.state(), State::Closed);
    }
}

#[test]
fn client_masks_and_closing_handshake_times_out() {
    let mut client = Connection::client(Config::default(), counter_masks(), T0);
    let mut out = Vec::new();
    client.send(&mut out, Outgoing::Binary(b"abc")).unwrap();
    assert_eq!(out[1], 0x83);
    let key = [out[2], out[3], out[4], out[5]];
    let mut payload = out[6..].to_vec();
    apply_mask(&mut payload, key, 0);
    assert_eq!(payload, b"abc");

    out.clear();
    let reason = CloseReason::new("bye").unwrap();
    let t = Instant::from_micros(10);
    client
        .close(
            t,
            &mut out,
            Some(CloseFrameRef::new(CloseCode::NORMAL, reason).unwrap()),
        )
        .unwrap();
    assert_eq!(client.state(), State::CloseSent);
    assert_eq!(
        client.send(&mut out, Outgoing::Text("x")),
        Err(SendError::Closed)
    );
    assert_eq!(client.poll_timeout(), Some(t + Duration::from_secs(5)));
    client.handle_timeout(t + Duration::from_secs(4));
    assert_eq!(client.state(), State::CloseSent);
    client.handle_timeout(t + Duration::from_secs(5));
    assert_eq!(client.state(), State::Closed);
    assert_eq!(client.close_status().unwrap().remote, CloseCode::ABNORMAL);
}

#[test]
fn fragment_sequencing_on_send() {
    let mut s = Connection::server(Config::default(), T0);
    let mut out = Vec::new();
    assert_eq!(
        s.send_frame(&mut out, OpCode::CONTINUATION, b"", true),
        Err(SendError::FragmentSequence)
    );
    s.send_frame(&mut out, OpCode::TEXT, b"a", false).unwrap();
    assert_eq!(
        s.send_frame(&mut out, OpCode::BINARY, b"b", true),
        Err(SendError::FragmentSequence)
    );
    s.send(&mut out, Outgoing::Ping(b"p")).unwrap();
    s.send_frame(&mut out, OpCode::CONTINUATION, b"b", true)
        .unwrap();
    assert_eq!(out, [0x01, 0x01, b'a', 0x89, 0x01, b'p', 0x80, 0x01, b'b']);
    assert_eq!(
        s.send(&mut out, Outgoing::Ping(&[0; 126])),
        Err(SendError::ControlTooLong { len: 126 })
    );
    let bad = CloseFrameRef {
        code: CloseCode::NO_STATUS,
        reason: "",
    };
    assert!(matches!(
        s.close(T0, &mut out, Some(bad)),
        Err(SendError::Close(_))
    ));
}

/// A masked (zero key) compressed text frame from a client.
#[cfg(feature = "deflate")]
fn compressed_text(tx: &mut crate::deflate::Deflater, text: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    tx.compress(text.as_bytes(), true, &mut payload);
    assert!(payload.len() < 126);
    let mut frame = vec![0xc1, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(&payload);
    frame
}

#[cfg(feature = "deflate")]
#[test]
fn an_idle_deflate_connection_holds_no_zlib_context() {
    use crate::deflate::{DeflateParams, Deflater};
    for no_takeover in [false, true] {
        let params = DeflateParams {
            server_no_context_takeover: no_takeover,
            client_no_context_takeover: no_takeover,
            ..DeflateParams::default()
        };
        let mut server = Connection::server(Config::default(), T0);
        server.enable_deflate(params, DeflateOptions::default());
        // Negotiated, idle: nothing allocated.
        assert_eq!(server.deflate_memory(), Some(DeflateMemory::default()));
        let mut tx = Deflater::new(6, 15, no_takeover);
        for text in ["compressed hello hello", "compressed hello again"] {
            let (events, err) = feed(&mut server, &compressed_text(&mut tx, text));
            assert_eq!(err, None);
            assert_eq!(events.len(), 1);
            let chunk = alloc::format!("chunk: {:?}", text.as_bytes());
            assert!(events[0].contains(&chunk), "{events:?}");
            let mut out = Vec::new();
            server
                .send(&mut out, Outgoing::Text("a reply long enough to compress"))
                .unwrap();
            assert_eq!(out[0], 0xc1, "compressed reply");
            let held = server.deflate_memory().unwrap();
            // With takeover both contexts persist across messages; without, each is
            // freed after its message, and the buffers with them.
            assert_eq!(held.inflate_context, !no_takeover, "{held:?}");
            assert_eq!(held.deflate_context, !no_takeover, "{held:?}");
            if no_takeover {
                assert_eq!(held.buffer_bytes, 0, "{held:?}");
            }
        }
    }
}

/// A message compressed once may go as it is only where this side resets its compression
/// context after every message; the send rules apply to it as to any other.
#[cfg(feature = "deflate")]
#[test]
fn shared_compression_only_without_our_context_takeover() {
    use crate::deflate::DeflateParams;
    let mut plain = Connection::server(Config::default(), T0);
    assert_eq!(plain.shared_send(1000), SharedSend::Plain);
    assert_eq!(
        plain.precompressed_header(OpCode::TEXT, 10),
        Err(SendError::NotShareable)
    );
    let mut takeover = Connection::server(Config::default(), T0);
    takeover.enable_deflate(DeflateParams::default(), DeflateOptions::default());
    assert_eq!(takeover.shared_send(1000), SharedSend::PerConnection);
    assert_eq!(
        takeover.shared_send(3),
        SharedSend::Plain,
        "under the threshold"
    );
    assert_eq!(
        takeover.precompressed_header(OpCode::TEXT, 10),
        Err(SendError::NotShareable)
    );
    let params = DeflateParams {
        server_no_context_takeover: true,
        server_max_window_bits: 11,
        ..DeflateParams::default()
    };
    let mut shared = Connection::server(Config::default(), T0);
    shared.enable_deflate(params, DeflateOptions::default());
    let SharedSend::Compressed(settings) = shared.shared_send(1000) else {
        panic!("shareable")
    };
    assert_eq!(settings.window_bits, 11);
    let h = shared.precompressed_header(OpCode::BINARY, 10).unwrap();
    assert_eq!((h.rsv, h.fin, h.mask), (crate::frame::RSV1, true, None));
    // Not inside a fragmented message, not as a continuation, not after a close.
    let mut out = Vec::new();
    shared
        .send_frame(&mut out, OpCode::TEXT, b"a", false)
        .unwrap();
    assert_eq!(
        shared.precompressed_header(OpCode::TEXT, 10),
        Err(SendError::FragmentSequence)
    );
    assert_eq!(
        shared.precompressed_header(OpCode::CONTINUATION, 10),
        Err(SendError::FragmentSequence)
    );
    shared
        .send_frame(&mut out, OpCode::CONTINUATION, b"b", true)
        .unwrap();
    shared.close(T0, &mut out, None).unwrap();
    assert_eq!(
        shared.precompressed_header(OpCode::TEXT, 10),
        Err(SendError::Closed)
    );
}

#[test]
fn empty_close_gets_empty_reply() {
    let mut server = Connection::server(Config::default(), T0);
    let (events, _) = feed(&mut server, &[0x88, 0x80, 1, 2, 3, 4]);
    assert_eq!(events, ["Close(None)"]);
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    assert_eq!(out, [0x88, 0x00]);
    assert_eq!(server.close_status().unwrap().remote, CloseCode::NO_STATUS);
}

fn at(secs: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(secs)
}

fn idle_after(secs: u64) -> Config {
    Config {
        idle_timeout: Some(Duration::from_secs(secs)),
        ..Config::default()
    }
}

/// A masked empty pong, as a client sends it.
const PONG: [u8; 6] = [0x8a, 0x80, 0, 0, 0, 0];

#[test]
fn idle_timeout_closes_with_1001_after_the_interval_without_bytes() {
    let mut server = Connection::server(idle_after(10), at(0));
    assert_eq!(server.poll_timeout(), Some(at(10)));
    server.handle_timeout(at(9));
    assert_eq!(server.state(), State::Open);
    assert!(!server.has_pending_transmit());
    server.handle_timeout(at(10));
    assert_eq!(server.state(), State::CloseSent);
    let mut out = Vec::new();
    assert!(server.poll_transmit(&mut out));
    let mut close = vec![0x88, 14, 0x03, 0xe9];
    close.extend_from_slice(b"idle timeout");
    assert_eq!(out, close);
    let status = *server.close_status().unwrap();
    assert!(status.idle_timed_out && status.initiated_locally);
    assert_eq!(status.local, Some(CloseCode::GOING_AWAY));
    // The close timeout runs now; the application can send nothing more.
    assert_eq!(server.poll_timeout(), Some(at(15)));
    assert_eq!(
        server.send(&mut out, Outgoing::Text("late")),
        Err(SendError::Closed)
    );
    // The peer answers: the handshake is over, and the status still says why it began.
    let (events, err) = feed_at(&mut server, at(12), &[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe9]);
    assert_eq!((events.len(), err), (1, None));
    assert_eq!(server.state(), State::Closed);
    let status = server.close_status().unwrap();
    assert!(status.idle_timed_out);
    assert_eq!(status.remote, CloseCode::GOING_AWAY);
}

#[test]
fn idle_close_unanswered_ends_with_the_close_timeout_and_keeps_its_mark() {
    let mut server = Connection::server(idle_after(10), at(0));
    server.handle_timeout(at(10));
    server.handle_timeout(at(15));
    assert_eq!(server.state(), State::Closed);
    let status = server.close_status().unwrap();
    assert!(status.idle_timed_out);
    assert_eq!(status.remote, CloseCode::ABNORMAL);
    // The transport ending after the idle close keeps the mark too.
    let mut server = Connection::server(idle_after(10), at(0));
    server.handle_timeout(at(10));
    server.handle_eof();
    assert!(server.close_status().unwrap().idle_timed_out);
}

#[test]
fn received_bytes_push_the_idle_timeout_back() {
    let mut server = Connection::server(idle_after(10), at(0));
    for k in 1..=3 {
        let (_, err) = feed_at(&mut server, at(8 * k), &PONG);
        assert_eq!(err, None);
        assert_eq!(server.poll_timeout(), Some(at(8 * k + 10)));
        server.handle_timeout(at(8 * k + 9));
        assert_eq!(server.state(), State::Open);
    }
    // Bytes a driver buffers and decodes later count from their arrival.
    server.handle_received_at(at(30));
    assert_eq!(server.poll_timeout(), Some(at(40)));
    server.handle_timeout(at(39));
    assert_eq!(server.state(), State::Open);
    server.handle_timeout(at(40));
    assert_eq!(server.state(), State::CloseSent);
}

#[test]
fn no_idle_close_once_closing() {
    // After the application's close only the close timeout runs.
    let mut server = Connection::server(idle_after(10), at(0));
    let mut out = Vec::new();
    let bye = CloseFrameRef {
        code: CloseCode::NORMAL,
        reason: "",
    };
    server.close(at(1), &mut out, Some(bye)).unwrap();
    assert_eq!(server.poll_timeout(), Some(at(6)));
    server.handle_timeout(at(10));
    assert_eq!(server.state(), State::Closed);
    assert!(!server.has_pending_transmit());
    assert!(!server.close_status().unwrap().idle_timed_out);
    // After the peer's close, not answered yet, nothing runs.
    let cfg = Config {
        auto_close: false,
        ..idle_after(10)
    };
    let mut server = Connection::server(cfg, at(0));
    feed_at(&mut server, at(1), &[0x88, 0x80, 0, 0, 0, 0]);
    assert_eq!(server.state(), State::CloseReceived);
    assert_eq!(server.poll_timeout(), None);
    server.handle_timeout(at(20));
    assert_eq!(server.state(), State::CloseReceived);
    assert!(!server.has_pending_transmit());
}

#[test]
fn poll_timeout_is_the_earliest_of_all_timers() {
    use crate::keepalive::Keepalive;
    let cfg = Config {
        keepalive: Some(Keepalive {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        }),
        ..idle_after(20)
    };
    let mut client = Connection::client(cfg, counter_masks(), at(0));
    // Keepalive at 10 before idle at 20.
    assert_eq!(client.poll_timeout(), Some(at(10)));
    client.handle_timeout(at(10));
    let mut out = Vec::new();
    assert!(client.poll_transmit(&mut out), "the keepalive ping");
    // The ping's deadline at 15 before idle at 20.
    assert_eq!(client.poll_timeout(), Some(at(15)));
    // An answer at 12: keepalive at 22, idle at 32.
    feed_at(&mut client, at(12), &[0x8a, 0x00]);
    assert_eq!(client.poll_timeout(), Some(at(22)));
    // Idle before keepalive.
    let mut client = Connection::client(
        Config {
            idle_timeout: Some(Duration::from_secs(7)),
            ..cfg
        },
        counter_masks(),
        at(0),
    );
    assert_eq!(client.poll_timeout(), Some(at(7)));
    // Closing: the close timeout (5 s) alone.
    client.close(at(1), &mut out, None).unwrap();
    assert_eq!(client.poll_timeout(), Some(at(6)));
    // Idle and keepalive due at once: the idle close goes, and no ping after it.
    let mut server = Connection::server(
        Config {
            idle_timeout: Some(Duration::from_secs(10)),
            ..cfg
        },
        at(0),
    );
    server.handle_timeout(at(10));
    out.clear();
    server.poll_transmit(&mut out);
    assert_eq!(&out[..4], [0x88, 14, 0x03, 0xe9]);
    assert_eq!(out.len(), 16);
}
