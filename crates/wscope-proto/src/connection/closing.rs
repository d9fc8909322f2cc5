//! The closing handshake and the timers: how a connection ends ([`CloseStatus`]), the close
//! the application sends, the peer's close, failures, and the close timeout, keepalive and
//! idle timers that [`Connection::handle_timeout`] fires.

use alloc::vec::Vec;

use super::{Connection, Core, SendError, State};
use crate::close::{CloseCode, CloseFrameRef, MAX_REASON_LEN};
use crate::error::ProtocolError;
use crate::frame::{OpCode, MAX_CONTROL_PAYLOAD};
use crate::idle::IdleTimer;
use crate::keepalive::{KeepaliveAction, KeepaliveTimer};
use crate::time::Instant;

/// How the connection ended, once it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseStatus {
    /// The status the peer sent: `NO_STATUS` (1005) for an empty close, `ABNORMAL` (1006) when
    /// no close arrived.
    pub remote: CloseCode,
    /// The status we sent, if we sent a close.
    pub local: Option<CloseCode>,
    /// We sent the first close.
    pub initiated_locally: bool,
    /// We failed the connection because the peer broke the protocol.
    pub failed: Option<ProtocolError>,
    /// We failed the connection because the peer did not answer a keepalive ping (we sent
    /// 1011).
    pub keepalive_timed_out: bool,
    /// We started the close because nothing arrived for the idle timeout (we sent 1001).
    pub idle_timed_out: bool,
    reason: [u8; MAX_REASON_LEN],
    reason_len: u8,
}

impl CloseStatus {
    /// A status with no close received from the peer (yet): remote `ABNORMAL` (1006).
    const fn without_peer(local: Option<CloseCode>, initiated_locally: bool) -> Self {
        Self {
            remote: CloseCode::ABNORMAL,
            local,
            initiated_locally,
            failed: None,
            keepalive_timed_out: false,
            idle_timed_out: false,
            reason: [0; MAX_REASON_LEN],
            reason_len: 0,
        }
    }

    /// The reason the peer gave.
    pub fn remote_reason(&self) -> &str {
        crate::utf8::from_utf8(&self.reason[..usize::from(self.reason_len)]).unwrap_or("")
    }
}

/// The payload of keepalive pings.
const KEEPALIVE_PING: &[u8] = b"wscope keepalive";
/// The close reason sent when a keepalive ping goes unanswered.
const KEEPALIVE_TIMEOUT_REASON: &str = "keepalive timeout";
/// The close reason sent when nothing arrived for the idle timeout.
const IDLE_TIMEOUT_REASON: &str = "idle timeout";

/// The closing handshake's timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wait {
    /// No timer runs.
    None,
    /// The wait (for the peer's close, or for the server to close the transport) ends then.
    Until(Instant),
    /// The wait ran out.
    Expired,
}

impl Connection {
    /// Sends a close (status and reason, or `None` for an empty payload) at `now` and starts
    /// the closing handshake: no data frame may follow, and the close timeout runs from
    /// `now`. Answering the peer's close when `auto_close` is off is done with this too.
    pub fn close(
        &mut self,
        now: Instant,
        out: &mut Vec<u8>,
        frame: Option<CloseFrameRef<'_>>,
    ) -> Result<(), SendError> {
        if !self.can_send() {
            return Err(SendError::Closed);
        }
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let n = match frame {
            Some(f) => {
                CloseFrameRef::new(f.code, crate::close::CloseReason::truncating(f.reason))?;
                f.emit(&mut payload)
            }
            None => 0,
        };
        self.core.encode(out, OpCode::CLOSE, true, &payload[..n]);
        let local = frame.map(|f| f.code);
        if self.core.state == State::CloseReceived {
            let mut status = self.core.peer_close.take().unwrap_or(CloseStatus {
                remote: CloseCode::NO_STATUS,
                local: None,
                initiated_locally: false,
                failed: None,
                keepalive_timed_out: false,
                idle_timed_out: false,
                reason: [0; MAX_REASON_LEN],
                reason_len: 0,
            });
            status.local = local;
            self.core.status = Some(status);
            self.core.enter_closed(now);
        } else {
            self.core
                .enter_close_sent(CloseStatus::without_peer(local, true), now);
        }
        Ok(())
    }

    /// The peer closed its half of the transport (read returned 0).
    pub fn handle_eof(&mut self) {
        self.core.eof = true;
        if self.core.state != State::Closed {
            // After our close (`CloseSent`) the status says so already (no close from the
            // peer: 1006); otherwise there is none yet.
            if self.core.state != State::CloseSent || self.core.status.is_none() {
                self.core.status = Some(CloseStatus::without_peer(None, false));
            }
            self.core.state = State::Closed;
        }
        self.core.wait = Wait::None;
    }

    /// Gives the current time: fires the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.core.state == State::Open
            && self
                .core
                .idle
                .as_mut()
                .is_some_and(|t| t.handle_timeout(now))
        {
            self.core.close_idle(now);
        }
        if self.core.state == State::Open {
            let action = self
                .core
                .keepalive
                .as_mut()
                .map_or(KeepaliveAction::None, |k| k.handle_timeout(now));
            match action {
                KeepaliveAction::None => {}
                KeepaliveAction::SendPing => self.core.queue_control(OpCode::PING, KEEPALIVE_PING),
                KeepaliveAction::TimedOut => self.core.fail_unresponsive(now),
            }
        }
        match self.core.wait {
            Wait::Until(t) if now >= t => {
                self.core.wait = Wait::Expired;
                // No close from the peer: the status (remote 1006) stays as our close set it.
                if self.core.state == State::CloseSent {
                    self.core.state = State::Closed;
                }
            }
            _ => {}
        }
    }

    /// When [`Self::handle_timeout`] must be called next, if a timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let close = match self.core.wait {
            Wait::Until(t) => Some(t),
            _ => None,
        };
        let (keepalive, idle) = match self.core.state {
            State::Open => (
                self.core
                    .keepalive
                    .as_ref()
                    .and_then(KeepaliveTimer::poll_timeout),
                self.core.idle.as_ref().and_then(IdleTimer::poll_timeout),
            ),
            _ => (None, None),
        };
        [close, keepalive, idle].into_iter().flatten().min()
    }

    /// Whether the driver should now close the transport (after flushing `poll_transmit`): a
    /// server as soon as the connection is closed; a client once the server closed its side or
    /// the close timeout ran out.
    pub fn should_close_transport(&self) -> bool {
        self.core.state == State::Closed
            && self.core.queued.is_empty()
            && (!self.core.role.is_client()
                || self.core.eof
                || self.core.wait == Wait::Expired
                || self.core.wait == Wait::None)
    }
}

impl Core {
    pub(super) fn on_peer_close(&mut self, close: Option<CloseFrameRef<'_>>, now: Instant) {
        let mut status = CloseStatus {
            remote: close.map_or(CloseCode::NO_STATUS, |c| c.code),
            local: None,
            initiated_locally: self.state == State::CloseSent,
            failed: None,
            keepalive_timed_out: false,
            // The peer answered the close the idle timeout started.
            idle_timed_out: self.status.is_some_and(|s| s.idle_timed_out),
            reason: [0; MAX_REASON_LEN],
            reason_len: 0,
        };
        if let Some(c) = close {
            let n = c.reason.len().min(MAX_REASON_LEN);
            status.reason[..n].copy_from_slice(&c.reason.as_bytes()[..n]);
            status.reason_len = n as u8;
        }
        match self.state {
            State::CloseSent => {
                status.local = self.status.and_then(|s| s.local);
                self.status = Some(status);
                self.enter_closed(now);
            }
            _ => {
                if self.cfg.auto_close {
                    // Echo the status (RFC 6455 section 5.5.1); an empty close gets an empty one.
                    let code = close.map(|c| c.code);
                    self.queue_close(code.map(|code| CloseFrameRef { code, reason: "" }));
                    status.local = code;
                    self.status = Some(status);
                    self.enter_closed(now);
                } else {
                    self.peer_close = Some(status);
                    self.state = State::CloseReceived;
                }
            }
        }
    }

    pub(super) fn fail(&mut self, e: ProtocolError, now: Instant) {
        if matches!(self.state, State::Open | State::CloseReceived) {
            let code = e.close_code();
            self.queue_close(Some(CloseFrameRef { code, reason: "" }));
            self.status = Some(CloseStatus {
                failed: Some(e),
                ..CloseStatus::without_peer(Some(code), true)
            });
        } else if let Some(s) = self.status.as_mut() {
            s.failed = Some(e);
        }
        self.enter_closed(now);
    }

    pub(super) fn enter_closed(&mut self, now: Instant) {
        self.state = State::Closed;
        // A client waits (bounded) for the server to close the transport first.
        self.wait = if self.role.is_client() && !self.eof {
            Wait::Until(now + self.cfg.close_timeout)
        } else {
            Wait::None
        };
    }

    /// Nothing arrived for the idle timeout: start the closing handshake with 1001.
    pub(super) fn close_idle(&mut self, now: Instant) {
        let status = self.queue_timer_close(CloseCode::GOING_AWAY, IDLE_TIMEOUT_REASON);
        let status = CloseStatus {
            idle_timed_out: true,
            ..status
        };
        self.enter_close_sent(status, now);
    }

    /// The keepalive ping went unanswered: close with 1011 and fail the connection.
    pub(super) fn fail_unresponsive(&mut self, now: Instant) {
        let status = self.queue_timer_close(CloseCode::INTERNAL_ERROR, KEEPALIVE_TIMEOUT_REASON);
        self.status = Some(CloseStatus {
            keepalive_timed_out: true,
            ..status
        });
        self.enter_closed(now);
    }

    /// Queues the close a timer sends on its own and returns the status it starts (ours,
    /// nothing from the peer yet).
    fn queue_timer_close(&mut self, code: CloseCode, reason: &'static str) -> CloseStatus {
        self.queue_close(Some(CloseFrameRef { code, reason }));
        CloseStatus::without_peer(Some(code), true)
    }

    /// We sent the first close: wait for the peer's, at most the close timeout from `now`.
    pub(super) fn enter_close_sent(&mut self, status: CloseStatus, now: Instant) {
        self.status = Some(status);
        self.state = State::CloseSent;
        self.wait = Wait::Until(now + self.cfg.close_timeout);
    }

    /// Queues a close frame the core sends on its own (an echo, a failure, a keepalive
    /// timeout): its payload encoded by [`CloseFrameRef::emit`], empty for `None`.
    pub(super) fn queue_close(&mut self, close: Option<CloseFrameRef<'_>>) {
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let n = close.map_or(0, |c| c.emit(&mut payload));
        self.queue_control(OpCode::CLOSE, &payload[..n]);
    }
}
