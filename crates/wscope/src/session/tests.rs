//! Tests of the session as a whole: keepalive, the clean end, the constructor and dispatch.

mod keepalive_tests {
    use crate::session::*;
    use wscope_proto::keepalive::Keepalive;
    use wscope_proto::Duration;

    #[test]
    fn an_arrival_moves_the_next_keepalive_deadline_to_one_interval_after_it() {
        let ka = Keepalive {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        };
        let cfg = Config {
            keepalive: Some(ka),
            ..Config::default()
        };
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
        Config {
            idle_timeout: Some(wscope_proto::Duration::ZERO),
            ..Config::default()
        }
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
        let cfg = Config {
            auto_close: false,
            ..Config::default()
        };
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
    use wscope_proto::deflate::DeflateParams;

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
        let ws = Config {
            idle_timeout: core_idle,
            ..Config::default()
        };
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
