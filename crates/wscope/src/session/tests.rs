//! Tests of the session as a whole: keepalive, the clean end, the constructor and dispatch.

mod keepalive_tests {
    use crate::session::*;
    use wscope_proto::keepalive::Keepalive;
    use wscope_proto::Duration;

    #[test]
    fn an_arrival_moves_the_next_keepalive_deadline_to_one_interval_after_it() {
        let ka = Keepalive::new(Duration::from_secs(10), Duration::from_secs(5));
        let cfg = Config::default().keepalive(Some(ka));
        let mut s = Session::server(cfg, &[]);
        let first = s
            .conn
            .poll_timeout()
            .expect("armed when the session starts");
        // The arrival is later than the start (both within one clock tick would make it a
        // peer that has been quiet for the whole interval at the first deadline).
        while s.clock.now() + ka.interval <= first {
            core::hint::spin_loop();
        }
        // A pong arrives (masked, empty): the read is the arrival.
        s.read_buf()[..6].copy_from_slice(&[0x8a, 0x80, 0, 0, 0, 0]);
        s.commit_read(6);
        let after = s.clock.now();
        assert!(s.next_incoming().expect("a valid pong").is_some());
        // The check at the first deadline finds the arrival: the next deadline is one interval
        // after it (not one interval after the check, as without the arrival's time).
        s.conn.handle_timeout(first);
        let next = s.conn.poll_timeout().expect("re-armed");
        assert!(next <= after + ka.interval, "{next:?} after {after:?}");
        assert!(next < first + ka.interval, "{next:?} vs {first:?}");
    }
}

/// The clean end comes from the core's close status alone.
mod end_tests {
    use crate::session::*;
    use wscope_proto::CloseCode;

    /// A connection the core closes for the idle timeout at its first tick.
    fn idle_at_once() -> Config {
        Config::default().idle_timeout(Some(wscope_proto::Duration::ZERO))
    }

    fn unexpected_eof(s: &Session) -> bool {
        matches!(s.end_error(), Some(Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof)
    }

    #[test]
    fn an_end_without_any_close_is_unexpected() {
        let mut s = Session::server(Config::default(), &[]);
        s.commit_read(0);
        assert!(unexpected_eof(&s));
    }

    #[test]
    fn an_end_after_the_applications_close_is_clean() {
        let mut s = Session::server(Config::default(), &[]);
        s.close(Some(CloseCode::NORMAL), "bye").expect("open");
        s.commit_read(0);
        assert!(s.end_error().is_none());
    }

    #[test]
    fn an_end_after_a_peer_close_not_answered_yet_is_clean() {
        let cfg = Config::default().auto_close(false);
        // A masked close with 1000.
        let wire = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];
        let mut s = Session::server(cfg, &wire);
        assert!(matches!(s.next_incoming(), Ok(Some(Incoming::Close(_)))));
        s.commit_read(0);
        assert!(s.end_error().is_none());
    }

    #[test]
    fn an_end_after_the_idle_close_without_a_reply_is_unexpected() {
        let mut s = Session::server(idle_at_once(), &[]);
        s.on_tick();
        assert_eq!(s.conn.state(), State::CloseSent);
        s.commit_read(0);
        assert!(unexpected_eof(&s));
    }

    /// The core sends the idle close; it goes to the write queue at once, past the hold on
    /// replies that bounds pongs for a peer that does not read (as the application's close).
    #[test]
    fn the_idle_close_is_queued_past_the_reply_hold() {
        let mut s = Session::server(idle_at_once(), &[]);
        s.hold_replies_over = 0;
        s.on_tick();
        assert_eq!(s.conn.state(), State::CloseSent);
        assert!(!s.conn.has_pending_transmit());
        let mut sl = [std::io::IoSlice::new(&[]); 4];
        let n = s.write_slices(&mut sl);
        let wire: Vec<u8> = sl[..n].iter().flat_map(|x| x.to_vec()).collect();
        assert_eq!(wire[..4], [0x88, 14, 0x03, 0xe9]);
        assert_eq!(&wire[4..], b"idle timeout");
    }
}

/// The one constructor after a handshake and the one message dispatch.
mod open_tests {
    use crate::message::Message;
    use crate::session::*;
    use std::io::IoSlice;
    #[cfg(feature = "deflate")]
    use wscope_proto::deflate::DeflateParams;

    #[cfg(feature = "deflate")]
    #[test]
    fn open_applies_what_the_handshake_agreed() {
        let agreed = Agreed {
            subprotocol: Some("chat".into()),
            deflate: Some(DeflateParams::default()),
        };
        let opts = SessionOptions::new(Config::default(), None, DeflateOptions::default());
        let s = Session::open(Role::Server, opts, &[], agreed);
        assert_eq!(s.subprotocol(), Some("chat"));
        assert!(s.conn.deflate_enabled());
        let plain = Session::open(Role::Client, opts, &[], Agreed::default());
        assert_eq!(plain.subprotocol(), None);
        assert!(!plain.conn.deflate_enabled());
    }

    /// The endpoint's idle timeout (`ClientConfig`/`ServerConfig::idle_timeout`, the
    /// drivers' `from_raw` parameter) takes the place of the core config's when it is set.
    #[test]
    fn the_endpoint_idle_timeout_goes_into_the_core_config() {
        let core_idle = Some(wscope_proto::Duration::from_secs(9));
        let ws = Config::default().idle_timeout(core_idle);
        let d = DeflateOptions::default();
        let opts = SessionOptions::new(ws, Some(StdDuration::from_secs(2)), d);
        assert_eq!(
            opts.ws.idle_timeout,
            Some(wscope_proto::Duration::from_secs(2))
        );
        assert_eq!(SessionOptions::new(ws, None, d).ws.idle_timeout, core_idle);
        let cfg = ServerConfig {
            idle_timeout: Some(StdDuration::from_millis(1500)),
            ..ServerConfig::default()
        };
        let s = Session::open(Role::Server, (&cfg).into(), &[], Agreed::default());
        assert_eq!(
            s.conn.config().idle_timeout,
            Some(wscope_proto::Duration::from_millis(1500))
        );
    }

    #[test]
    fn send_message_encodes_data_and_starts_the_close() {
        let mut s = Session::server(Config::default(), &[]);
        s.send_message(Message::Text("hi".into())).expect("open");
        s.send_message(Message::ping(vec![1])).expect("open");
        s.send_message(Message::Close(None)).expect("open");
        assert_eq!(s.conn.state(), State::CloseSent);
        let mut sl = [IoSlice::new(&[]); 4];
        let n = s.write_slices(&mut sl);
        let wire: Vec<u8> = sl[..n].iter().flat_map(|x| x.to_vec()).collect();
        assert_eq!(wire, [0x81, 2, b'h', b'i', 0x89, 1, 1, 0x88, 0]);
        assert!(matches!(
            s.send_message(Message::binary(vec![0])),
            Err(Error::AlreadyClosed)
        ));
    }
}

/// `Bytes` payloads: received messages hand out the assembled buffer, sent ones are queued
/// as they are; prepared messages are encoded (and compressed) once for many connections.
mod bytes_tests {
    #[cfg(feature = "deflate")]
    use crate::handshake::Agreed;
    use crate::message::{Message, Utf8Bytes};
    use crate::prepared::PreparedMessage;
    use crate::session::write_queue::SHARE_MIN;
    use crate::session::*;
    use bytes::Bytes;
    use std::io::IoSlice;
    use wscope_proto::connection::SendError;
    #[cfg(feature = "deflate")]
    use wscope_proto::deflate::DeflateParams;
    use wscope_proto::mask::apply_mask;

    /// Addresses and lengths of the pending write slices.
    fn slices(s: &Session) -> Vec<(usize, usize)> {
        let mut sl = [IoSlice::new(&[]); 16];
        let n = s.write_slices(&mut sl);
        sl[..n]
            .iter()
            .map(|x| (x.as_ptr() as usize, x.len()))
            .collect()
    }

    /// Everything `from` has queued, taken out of its write queue.
    fn take_wire(from: &mut Session) -> Vec<u8> {
        let mut wire = Vec::new();
        while from.out.len() > 0 {
            let mut sl = [IoSlice::new(&[]); 16];
            let n = from.write_slices(&mut sl);
            let before = wire.len();
            for x in &sl[..n] {
                wire.extend_from_slice(x);
            }
            let written = wire.len() - before;
            from.out.advance(written);
        }
        wire
    }

    /// Feeds `wire` to `to` as reads and returns the messages it decodes.
    fn receive(to: &mut Session, mut wire: &[u8]) -> Vec<Message> {
        let mut got = Vec::new();
        loop {
            while let Some(inc) = to.next_incoming().expect("valid frames") {
                got.push(to.make_message(inc));
            }
            if wire.is_empty() {
                return got;
            }
            let buf = to.read_buf();
            let n = buf.len().min(wire.len());
            buf[..n].copy_from_slice(&wire[..n]);
            to.commit_read(n);
            wire = &wire[n..];
        }
    }

    #[cfg(feature = "deflate")]
    fn deflate_session(role: Role, params: DeflateParams) -> Session {
        let agreed = Agreed {
            subprotocol: None,
            deflate: Some(params),
        };
        let opts = SessionOptions::new(Config::default(), None, DeflateOptions::default());
        Session::open(role, opts, &[], agreed)
    }

    #[cfg(feature = "deflate")]
    fn no_server_takeover(window: u8) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: true,
            server_max_window_bits: window,
            ..DeflateParams::default()
        }
    }

    /// A compressible text of about 1 KiB, different for each `n` in words and in length, so
    /// that a back-reference into the wrong history decodes to other text.
    fn text(n: usize) -> String {
        words(n, 1000 + n * 13)
    }

    /// Text as [`text`] makes it, of at least `len` bytes.
    fn words(n: usize, len: usize) -> String {
        const WORDS: [&str; 8] = ["alpha", "be", "gamma", "d", "epsilon", "zeta", "eta", "th"];
        let mut x = (n as u32).wrapping_mul(2_654_435_761) | 1;
        let mut out = String::new();
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            out.push_str(WORDS[(x % 8) as usize]);
            out.push(' ');
        }
        out
    }

    #[test]
    fn a_received_message_is_the_assembled_buffer_itself() {
        let mut s = Session::server(Config::default(), &[]);
        let key = [9, 8, 7, 6];
        let mut payload = vec![b'x'; 1000];
        apply_mask(&mut payload, key, 0);
        let mut wire = vec![0x81, 0xfe, 0x03, 0xe8];
        wire.extend_from_slice(&key);
        wire.extend_from_slice(&payload);
        s.read_buf()[..wire.len()].copy_from_slice(&wire);
        s.commit_read(wire.len());
        let got = s.next_incoming().expect("valid").expect("a message");
        let assembled = s.msg.as_ptr() as usize;
        let Message::Text(t) = s.make_message(got) else {
            panic!("a text message")
        };
        assert_eq!(t.as_ptr() as usize, assembled, "no copy");
        assert_eq!(&*t, "x".repeat(1000));
    }

    #[test]
    fn a_server_queues_a_large_bytes_payload_as_it_is() {
        let mut s = Session::server(Config::default(), &[]);
        let payload = Bytes::from(vec![5u8; OWNED_MIN + 1]);
        let kept = payload.clone();
        s.send_message(Message::Binary(payload)).expect("open");
        let sl = slices(&s);
        assert_eq!(sl.len(), 2, "header, then the payload");
        assert_eq!(sl[1], (kept.as_ptr() as usize, kept.len()));
        let mut peer = Session::client(Config::default(), &[]);
        let wire = take_wire(&mut s);
        assert_eq!(receive(&mut peer, &wire), [Message::Binary(kept)]);
    }

    #[test]
    fn a_client_masks_an_unshared_payload_in_place_and_copies_a_shared_one() {
        let mut c = Session::client(Config::default(), &[]);
        let v = vec![3u8; OWNED_MIN + 10];
        let at = v.as_ptr() as usize;
        c.send_message(Message::binary(v)).expect("open");
        assert_eq!(slices(&c)[1].0, at, "masked in its own allocation");
        let shared = Bytes::from(vec![4u8; OWNED_MIN + 10]);
        c.send_message(Message::Binary(shared.clone()))
            .expect("open");
        assert!(
            shared.iter().all(|&b| b == 4),
            "a payload still held elsewhere is not masked in place"
        );
        let mut server = Session::server(Config::default(), &[]);
        let wire = take_wire(&mut c);
        let got = receive(&mut server, &wire);
        assert_eq!(
            got,
            [
                Message::binary(vec![3u8; OWNED_MIN + 10]),
                Message::Binary(shared)
            ]
        );
    }

    #[test]
    fn utf8_bytes_checks_once_and_converts_without_copies() {
        let b = Bytes::from_static(b"h\xc3\xa9llo");
        let t = Utf8Bytes::try_from(b.clone()).expect("valid UTF-8");
        assert_eq!(t, "héllo");
        assert_eq!(t.len(), 6);
        assert_eq!(Bytes::from(t.clone()).as_ptr(), b.as_ptr());
        assert!(Utf8Bytes::try_from(Bytes::from_static(b"\xff")).is_err());
        assert!(Utf8Bytes::try_from(vec![0xc3]).is_err());
        let s = String::from("owned");
        let at = s.as_ptr();
        let t = Utf8Bytes::from(s);
        assert_eq!(t.as_ptr(), at);
        assert_eq!(String::from(t), "owned");
        assert_eq!(
            Message::text("a"),
            Message::Text(Utf8Bytes::from_static("a"))
        );
        assert_eq!(
            Message::binary(vec![1]).into_data(),
            Bytes::from_static(&[1])
        );
    }

    #[test]
    fn a_prepared_message_is_one_frame_shared_by_every_server_connection() {
        let long = words(0, 3 * SHARE_MIN);
        let msg = PreparedMessage::text(long.clone());
        let mut servers: Vec<Session> = (0..3)
            .map(|_| Session::server(Config::default(), &[]))
            .collect();
        for s in &mut servers {
            s.send_prepared(&msg).expect("open");
        }
        let first = slices(&servers[0]);
        assert_eq!(first.len(), 1);
        for s in &servers[1..] {
            assert_eq!(slices(s), first, "the same bytes, not a copy");
        }
        let wire = take_wire(&mut servers[2]);
        let mut client = Session::client(Config::default(), &[]);
        assert_eq!(receive(&mut client, &wire), [Message::text(long)]);
    }

    #[test]
    fn small_prepared_frames_are_copied_into_one_write() {
        let msgs: Vec<PreparedMessage> = (0..40).map(|n| PreparedMessage::text(text(n))).collect();
        let mut s = Session::server(Config::default(), &[]);
        for m in &msgs {
            s.send_prepared(m).expect("open");
        }
        let sl = slices(&s);
        // About 40 KiB of frames: a few buffers of about SMALL_BUF, not 40 slices, and not
        // one buffer grown to hold them all.
        assert!(sl.len() <= 4, "{} slices", sl.len());
        assert!(sl.iter().all(|&(_, len)| len < 2 * SHARE_MIN * 4), "{sl:?}");
        let wire = take_wire(&mut s);
        let want: Vec<Message> = (0..40).map(|n| Message::text(text(n))).collect();
        let mut client = Session::client(Config::default(), &[]);
        assert_eq!(receive(&mut client, &wire), want);
    }

    #[test]
    #[cfg(feature = "tokio")] // the vectored queue is the tokio driver's
    fn on_a_vectored_transport_small_prepared_frames_are_written_from_the_message() {
        let msgs: Vec<PreparedMessage> = (0..40).map(|n| PreparedMessage::text(text(n))).collect();
        let mut servers: Vec<Session> = (0..2)
            .map(|_| Session::server(Config::default(), &[]))
            .collect();
        for s in &mut servers {
            s.out.set_vectored(true);
            s.send_message(Message::text("own, before")).expect("open");
            for m in &msgs[..8] {
                s.send_prepared(m).expect("open");
            }
        }
        // The own message is copied into the queue's buffer; every prepared frame is a slice
        // of the message itself, the same bytes for both connections (no copy per delivery).
        for s in &servers {
            let sl = slices(s);
            assert_eq!(sl.len(), 9, "{sl:?}");
            for (m, &(at, len)) in msgs.iter().zip(&sl[1..]) {
                assert_eq!(
                    (at, len),
                    (m.frame_ref().as_ptr() as usize, m.frame_ref().len())
                );
            }
        }
        let s = &mut servers[0];
        for m in &msgs[8..] {
            s.send_prepared(m).expect("open");
        }
        let wire = take_wire(s);
        let mut want = vec![Message::text("own, before")];
        want.extend((0..40).map(|n| Message::text(text(n))));
        let mut client = Session::client(Config::default(), &[]);
        assert_eq!(receive(&mut client, &wire), want);
    }

    #[test]
    fn a_prepared_message_follows_the_send_rules() {
        let msg = PreparedMessage::binary(vec![1, 2, 3]);
        let mut s = Session::server(Config::default(), &[]);
        s.send_data_frame(OpCode::TEXT, b"frag", false)
            .expect("open");
        // Not inside a fragmented message: refused, the fragmented one goes on intact.
        assert!(matches!(
            s.send_prepared(&msg),
            Err(Error::Send(SendError::FragmentSequence))
        ));
        s.send_data_frame(OpCode::CONTINUATION, b"ment", true)
            .expect("open");
        s.send_prepared(&msg).expect("between messages");
        let wire = take_wire(&mut s);
        let mut client = Session::client(Config::default(), &[]);
        assert_eq!(
            receive(&mut client, &wire),
            [Message::text("fragment"), Message::binary(vec![1, 2, 3])]
        );
        // Not after a close.
        s.close(None, "").expect("open");
        assert!(matches!(s.send_prepared(&msg), Err(Error::AlreadyClosed)));
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn without_server_context_takeover_one_compressed_frame_is_shared() {
        // Long enough that its compressed frame is queued shared, not copied.
        let long = words(1, 64 * 1024);
        let msg = PreparedMessage::text(long.clone());
        let mut a = deflate_session(Role::Server, no_server_takeover(15));
        let mut b = deflate_session(Role::Server, no_server_takeover(15));
        a.send_prepared(&msg).expect("open");
        b.send_prepared(&msg).expect("open");
        assert_eq!(msg.compressed_forms(), 1);
        assert_eq!(slices(&a), slices(&b), "one compressed frame for both");
        let wire = take_wire(&mut a);
        assert_eq!(wire[0], 0xc1, "FIN, RSV1, text");
        assert!(wire.len() < long.len() / 2, "compressed");
        assert!(wire.len() > SHARE_MIN, "shared, not copied");
        let mut client = deflate_session(Role::Client, no_server_takeover(15));
        assert_eq!(receive(&mut client, &wire), [Message::text(long)]);
        // Another window: another compressed form, which its own client decodes.
        let short = PreparedMessage::text(text(1));
        let mut c = deflate_session(Role::Server, no_server_takeover(10));
        c.send_prepared(&short).expect("open");
        c.send_prepared(&msg).expect("open");
        assert_eq!(short.compressed_forms(), 1);
        assert_eq!(msg.compressed_forms(), 2);
        let wire = take_wire(&mut c);
        let mut client = deflate_session(Role::Client, no_server_takeover(10));
        assert_eq!(
            receive(&mut client, &wire),
            [Message::text(text(1)), Message::text(words(1, 64 * 1024))]
        );
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn a_server_with_context_takeover_compresses_prepared_messages_itself() {
        let params = DeflateParams::default();
        let mut server = deflate_session(Role::Server, params);
        let mut client = deflate_session(Role::Client, params);
        let mut want = Vec::new();
        for n in 0..6 {
            if n % 2 == 0 {
                server
                    .send_prepared(&PreparedMessage::text(text(n)))
                    .expect("open");
            } else {
                server.send_message(Message::text(text(n))).expect("open");
            }
            want.push(Message::text(text(n)));
        }
        let wire = take_wire(&mut server);
        // Every message compressed with the connection's own context, which the client's
        // inflater follows: a frame compressed elsewhere in between would break the history
        // the later ones refer back to.
        let plain: usize = want.iter().map(Message::len).sum();
        assert!(
            wire.len() < plain / 2,
            "compressed: {} of {plain}",
            wire.len()
        );
        assert_eq!(receive(&mut client, &wire), want);
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn under_the_threshold_a_prepared_message_goes_plain_and_shared() {
        let msg = PreparedMessage::binary(Bytes::from_static(b"tiny"));
        let mut s = deflate_session(Role::Server, no_server_takeover(15));
        s.send_prepared(&msg).expect("open");
        assert_eq!(msg.compressed_forms(), 0);
        let wire = take_wire(&mut s);
        assert_eq!(wire, [0x82, 4, b't', b'i', b'n', b'y']);
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn a_client_sends_a_prepared_message_masked() {
        let msg = PreparedMessage::text(text(2));
        for params in [
            None,
            Some(no_server_takeover(15)),
            Some(DeflateParams::default()),
        ] {
            let (mut c, mut s) = match params {
                None => (
                    Session::client(Config::default(), &[]),
                    Session::server(Config::default(), &[]),
                ),
                Some(p) => (
                    deflate_session(Role::Client, p),
                    deflate_session(Role::Server, p),
                ),
            };
            c.send_prepared(&msg).expect("open");
            c.send_prepared(&msg).expect("open");
            let wire = take_wire(&mut c);
            assert_ne!(wire[1] & 0x80, 0, "masked");
            assert_eq!(
                receive(&mut s, &wire),
                [Message::text(text(2)), Message::text(text(2))]
            );
        }
    }
}
