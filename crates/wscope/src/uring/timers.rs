//! The io_uring server's timers: one heap of connection deadlines (handshake, refusal
//! drain, linger, the session's own timers), fired before each wait.

use core::cmp::Reverse;
use core::time::Duration;
use std::time::Instant;

use super::conn::{ConnState, Phase};
use super::event_loop::EventLoop;
use super::Service;
use crate::error::Error;

impl<S: Service> EventLoop<S> {
    /// Pops the timers that are due and lets their connections act on them.
    pub(super) fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((at, slot, id))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.with_conn(slot, |this, c| {
                if c.id != id || c.timer_at != Some(at) {
                    return; // an entry the connection no longer relies on
                }
                c.timer_at = None;
                this.mark_dirty(c);
                this.on_timer(c, now);
            });
        }
    }

    pub(super) fn on_timer(&mut self, c: &mut ConnState, now: Instant) {
        if c.closing {
            return;
        }
        if c.linger_until.is_some_and(|t| t <= now) {
            // The peer did not take the last bytes within the close timeout: reported as a
            // timeout (unless the connection failed for a reason of its own), as the tokio
            // and blocking drivers do.
            let unsent = match &c.phase {
                Phase::Open(session) => session.out.len() > 0,
                _ => false,
            };
            if c.sending || unsent {
                c.fail(Error::Timeout);
            }
            self.teardown(c);
            return;
        }
        match &mut c.phase {
            Phase::Handshake { deadline, .. } if *deadline <= now => {
                c.fail(Error::Timeout);
                self.teardown(c);
            }
            Phase::Refusing { deadline, .. } if *deadline <= now => self.teardown(c),
            Phase::Open(session) => session.on_tick(),
            _ => {}
        }
    }

    /// Puts the connection's next deadline in the timer heap, unless an earlier entry is
    /// there already (that one fires first and then re-schedules).
    pub(super) fn schedule(&mut self, c: &mut ConnState, now: Instant) {
        let phase = match &c.phase {
            Phase::Handshake { deadline, .. } | Phase::Refusing { deadline, .. } => Some(*deadline),
            Phase::Open(session) => session.deadline(),
        };
        let Some(at) = [phase, c.linger_until].into_iter().flatten().min() else {
            return;
        };
        // A deadline that has passed is handled in the next iteration, not in a busy loop.
        let at = at.max(now + Duration::from_millis(1));
        if c.timer_at.is_none_or(|t| at < t) {
            c.timer_at = Some(at);
            self.timers.push(Reverse((at, c.slot, c.id)));
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|r| r.0 .0);
        [timer, self.accept_retry].into_iter().flatten().min()
    }
}
