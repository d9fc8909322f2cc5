//! Idle timeout: close a connection on which nothing has arrived for a while.
//!
//! The rule, as a timer with time given as data (no clock here): when nothing at all was
//! received for `timeout`, the connection starts the closing handshake with 1001 (going away)
//! and the reason "idle timeout". Any received byte restarts the wait. Unlike
//! [`crate::keepalive`] the peer is not asked whether it is still there: a quiet peer is
//! dropped, a live one that simply has nothing to say included.
//!
//! ```
//! use wscope_proto::idle::IdleTimer;
//! use wscope_proto::{Duration, Instant};
//!
//! let t0 = Instant::from_micros(0);
//! let mut t = IdleTimer::new(Duration::from_secs(30), t0);
//! assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(30)));
//! t.on_receive(t0 + Duration::from_secs(10)); // bytes arrive: the wait starts over
//! assert!(!t.handle_timeout(t0 + Duration::from_secs(30)));
//! assert!(t.handle_timeout(t0 + Duration::from_secs(40))); // 30 s of silence: close
//! assert_eq!(t.poll_timeout(), None); // it fires once
//! ```

use crate::time::{Duration, Instant};

/// The idle state of one connection.
#[derive(Clone, Copy, Debug)]
pub struct IdleTimer {
    timeout: Duration,
    /// When bytes last arrived (or the timer started); `None` once the timer fired.
    last_rx: Option<Instant>,
}

impl IdleTimer {
    /// A timer started at `now`: it fires `timeout` after `now` unless bytes arrive.
    pub const fn new(timeout: Duration, now: Instant) -> Self {
        Self {
            timeout,
            last_rx: Some(now),
        }
    }

    /// Bytes arrived from the peer at `now`: the wait starts over from `now`.
    pub fn on_receive(&mut self, now: Instant) {
        if let Some(t) = self.last_rx.as_mut() {
            *t = (*t).max(now);
        }
    }

    /// When [`Self::handle_timeout`] must be called next (`None` once it fired).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.last_rx.map(|t| t + self.timeout)
    }

    /// Gives the current time; returns `true`, once, when nothing has arrived for the
    /// timeout: the connection must close.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        match self.poll_timeout() {
            Some(at) if now >= at => {
                self.last_rx = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Instant {
        Instant::from_micros(s * 1_000_000)
    }

    #[test]
    fn fires_once_after_the_timeout_without_bytes() {
        let mut t = IdleTimer::new(Duration::from_secs(10), at(0));
        assert_eq!(t.poll_timeout(), Some(at(10)));
        assert!(!t.handle_timeout(at(9)));
        assert!(t.handle_timeout(at(10)));
        assert_eq!(t.poll_timeout(), None);
        assert!(!t.handle_timeout(at(30)));
        // Bytes after it fired do not re-arm it.
        t.on_receive(at(31));
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn received_bytes_push_it_back() {
        let mut t = IdleTimer::new(Duration::from_secs(10), at(0));
        for k in 1..=5 {
            t.on_receive(at(9 * k));
            assert!(!t.handle_timeout(at(9 * k + 9)));
            assert_eq!(t.poll_timeout(), Some(at(9 * k + 10)));
        }
        // A time given out of order does not move it back.
        t.on_receive(at(1));
        assert_eq!(t.poll_timeout(), Some(at(55)));
        assert!(t.handle_timeout(at(55)));
    }

    #[test]
    fn a_zero_timeout_fires_at_the_start() {
        let mut t = IdleTimer::new(Duration::ZERO, at(3));
        assert!(t.handle_timeout(at(3)));
    }
}
