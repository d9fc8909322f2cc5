//! Keepalive: ping a peer that has gone quiet, and give up on one that stays quiet.
//!
//! The rule, as a timer with time given as data (no clock here): when nothing at all was
//! received during an `interval`, send a ping; when nothing at all arrives within `timeout`
//! after it, the peer is unresponsive and the connection fails (close 1011, as Python
//! websockets does on a keepalive timeout). Any received byte counts as life, a pong or a data
//! frame alike, so a busy connection never pings.
//!
//! The timer starts when it is made ([`KeepaliveTimer::new`] takes the time) and is told when
//! bytes arrive ([`KeepaliveTimer::on_receive`], with their time): the ping goes out exactly
//! one interval after the last byte, and after the answer to a ping the next interval starts
//! at the answer, whatever the timeout.
//!
//! ```
//! use wscope_proto::keepalive::{Keepalive, KeepaliveAction, KeepaliveTimer};
//! use wscope_proto::{Duration, Instant};
//!
//! let cfg = Keepalive::new(Duration::from_secs(20), Duration::from_secs(10));
//! let t0 = Instant::from_micros(0);
//! let mut t = KeepaliveTimer::new(cfg, t0);
//! let check = t.poll_timeout().unwrap();
//! assert_eq!(check, t0 + Duration::from_secs(20));
//! assert_eq!(t.handle_timeout(check), KeepaliveAction::SendPing); // 20 s of silence
//! let answered = check + Duration::from_secs(2);
//! t.on_receive(answered); // the pong arrives: the next interval starts now
//! assert_eq!(t.handle_timeout(answered), KeepaliveAction::None);
//! assert_eq!(t.poll_timeout(), Some(answered + Duration::from_secs(20)));
//! ```

use crate::time::{Duration, Instant};

/// Keepalive settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Keepalive {
    /// Ping after this long without receiving anything.
    pub interval: Duration,
    /// Fail the connection when nothing arrives this long after the ping.
    pub timeout: Duration,
}

/// Builder methods, one per field and of the same name: start from `Keepalive::default()` (or a
/// constructor) and chain them; the struct is `#[non_exhaustive]`, so fields may be added without
/// breaking callers.
impl Keepalive {
    /// Ping after `interval` without receiving anything, fail when nothing arrives within
    /// `timeout` after the ping.
    #[must_use]
    pub const fn new(interval: Duration, timeout: Duration) -> Self {
        Self { interval, timeout }
    }

    /// Sets [`Keepalive::interval`]: ping after this long without receiving anything.
    #[must_use]
    pub const fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets [`Keepalive::timeout`]: fail the connection when nothing arrives this long after the
    /// ping.
    #[must_use]
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// What the connection must do after [`KeepaliveTimer::handle_timeout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeepaliveAction {
    /// Nothing.
    None,
    /// Send a ping now.
    SendPing,
    /// The peer did not answer: fail the connection.
    TimedOut,
}

/// The keepalive state of one connection.
#[derive(Clone, Copy, Debug)]
pub struct KeepaliveTimer {
    cfg: Keepalive,
    /// Next time to look at the activity flag, or the ping's deadline; `None` once timed out.
    at: Option<Instant>,
    /// A ping is out and unanswered.
    pinging: bool,
    /// Something was received since the timer last fired.
    received: bool,
    /// When bytes last arrived.
    last_rx: Instant,
}

impl KeepaliveTimer {
    /// A timer started at `now`: the first check is one interval later.
    pub fn new(cfg: Keepalive, now: Instant) -> Self {
        Self {
            cfg,
            at: Some(now + cfg.interval),
            pinging: false,
            received: false,
            last_rx: now,
        }
    }

    /// Bytes arrived from the peer at `now`. While a ping is out this is its answer: the next
    /// ping, if the peer stays quiet, goes out one interval after `now` (not one after the
    /// ping's deadline).
    pub fn on_receive(&mut self, now: Instant) {
        self.received = true;
        self.last_rx = now;
        if self.pinging {
            self.pinging = false;
            self.at = Some(now + self.cfg.interval);
        }
    }

    /// When [`Self::handle_timeout`] must be called next.
    pub const fn poll_timeout(&self) -> Option<Instant> {
        self.at
    }

    /// Gives the current time; returns what to do.
    pub fn handle_timeout(&mut self, now: Instant) -> KeepaliveAction {
        let Some(at) = self.at else {
            return KeepaliveAction::None;
        };
        if now < at {
            return KeepaliveAction::None;
        }
        if core::mem::take(&mut self.received) {
            self.pinging = false;
            // One interval after the last byte (it may already have passed: then the peer has
            // been quiet for an interval, and the ping goes now).
            let next = self.last_rx.min(now) + self.cfg.interval;
            if next > now {
                self.at = Some(next);
                return KeepaliveAction::None;
            }
        }
        if self.pinging {
            self.at = None;
            self.pinging = false;
            return KeepaliveAction::TimedOut;
        }
        self.pinging = true;
        self.at = Some(now + self.cfg.timeout);
        KeepaliveAction::SendPing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: Keepalive = Keepalive {
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(5),
    };

    fn at(s: u64) -> Instant {
        Instant::from_micros(s * 1_000_000)
    }

    #[test]
    fn quiet_peer_is_pinged_then_timed_out() {
        let mut t = KeepaliveTimer::new(CFG, at(0));
        assert_eq!(t.poll_timeout(), Some(at(10)));
        assert_eq!(t.handle_timeout(at(9)), KeepaliveAction::None);
        assert_eq!(t.handle_timeout(at(10)), KeepaliveAction::SendPing);
        assert_eq!(t.poll_timeout(), Some(at(15)));
        assert_eq!(t.handle_timeout(at(15)), KeepaliveAction::TimedOut);
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn any_received_byte_is_life() {
        let mut t = KeepaliveTimer::new(CFG, at(0));
        // Traffic in every interval: never a ping.
        for k in 1..=5 {
            t.on_receive(at(10 * k));
            assert_eq!(t.handle_timeout(at(10 * k)), KeepaliveAction::None);
            assert_eq!(t.poll_timeout(), Some(at(10 * k + 10)));
        }
        // Quiet: ping; the answer arrives; the next ping is an interval after the answer.
        assert_eq!(t.handle_timeout(at(60)), KeepaliveAction::SendPing);
        t.on_receive(at(61));
        assert_eq!(t.handle_timeout(at(61)), KeepaliveAction::None);
        assert_eq!(t.poll_timeout(), Some(at(71)));
        assert_eq!(t.handle_timeout(at(71)), KeepaliveAction::SendPing);
        assert_eq!(t.poll_timeout(), Some(at(76)));
    }

    #[test]
    fn a_long_timeout_does_not_delay_the_next_ping() {
        // Timeout much longer than the interval: an answered ping still leads to the next
        // ping one interval after the answer, not after the timeout.
        let mut t = KeepaliveTimer::new(
            Keepalive {
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(60),
            },
            at(0),
        );
        assert_eq!(t.handle_timeout(at(1)), KeepaliveAction::SendPing);
        t.on_receive(at(2));
        assert_eq!(t.handle_timeout(at(2)), KeepaliveAction::None);
        assert_eq!(t.handle_timeout(at(3)), KeepaliveAction::SendPing);
        // Unanswered now: it times out after the timeout, not before.
        assert_eq!(t.handle_timeout(at(62)), KeepaliveAction::None);
        assert_eq!(t.handle_timeout(at(63)), KeepaliveAction::TimedOut);
    }

    #[test]
    fn with_receive_times_the_ping_comes_one_interval_after_the_last_byte() {
        let mut t = KeepaliveTimer::new(CFG, at(0));
        // A byte at 1 s: the check at 10 s moves the deadline to 11 s, not 20 s.
        t.on_receive(at(1));
        assert_eq!(t.handle_timeout(at(10)), KeepaliveAction::None);
        assert_eq!(t.poll_timeout(), Some(at(11)));
        assert_eq!(t.handle_timeout(at(11)), KeepaliveAction::SendPing);
        // The answer at 13 s: next ping at 23 s.
        t.on_receive(at(13));
        assert_eq!(t.poll_timeout(), Some(at(23)));
        // Bytes at 20 s, then a late tick (a busy driver at 31 s): quiet for over an
        // interval already, so the ping goes at once.
        t.on_receive(at(20));
        assert_eq!(t.handle_timeout(at(31)), KeepaliveAction::SendPing);
        assert_eq!(t.poll_timeout(), Some(at(36)));
        assert_eq!(t.handle_timeout(at(36)), KeepaliveAction::TimedOut);
    }

    #[test]
    fn a_byte_at_the_start_still_leads_to_a_ping_one_interval_later() {
        let mut t = KeepaliveTimer::new(CFG, at(0));
        t.on_receive(at(0));
        assert_eq!(t.handle_timeout(at(10)), KeepaliveAction::SendPing);
    }
}
