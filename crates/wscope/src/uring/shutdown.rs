//! The end of connections and of the loop: a connection's teardown and release, the stop
//! message, going away (1001 to every connection, bounded), and the cleanup that keeps the
//! kernel's buffers alive until their operations are cancelled.

use core::mem;
use core::time::Duration;
use std::io;
use std::net::Shutdown;
use std::time::Instant;

use io_uring::cqueue;
use wscope_proto::CloseCode;

use super::conn::{ConnState, Phase};
use super::event_loop::EventLoop;
use super::ops::*;
use super::Service;
use crate::error::Error;
use crate::session::Clock;

impl<S: Service> EventLoop<S> {
    /// Ends a connection: shuts the socket down and cancels what is in flight; the state is
    /// freed when the last completion arrived (`with_conn`).
    pub(super) fn teardown(&mut self, c: &mut ConnState) {
        if c.closing {
            return;
        }
        c.closing = true;
        c.linger_until = None;
        let _ = c.stream.shutdown(Shutdown::Both);
        let multi = c.multi && !c.multi_cancelled;
        c.multi_cancelled |= c.multi;
        for (busy, kind) in [(c.recv, RECV), (c.sending, SEND), (multi, RECV_MULTI)] {
            if busy {
                self.post_cancel(user_data(c.slot, kind), user_data(c.slot, CANCEL));
            }
        }
    }

    /// Frees a closed connection whose operations have all completed, and tells the service.
    pub(super) fn release(&mut self, mut c: Box<ConnState>) {
        debug_assert!(!c.busy());
        self.live -= 1;
        self.free.push(c.slot);
        if c.fixed {
            // The table's reference would keep the socket open after `c` is dropped. (If the
            // kernel refused, the slot is overwritten by its next connection's registration.)
            let _ = self
                .ring
                .submitter()
                .register_files_update(c.slot as u32, &[-1]);
        }
        if c.opened {
            let error = c.error.take().or_else(|| match &c.phase {
                Phase::Open(session) => session.end_error(),
                _ => None,
            });
            self.service.on_close(c.id, error);
        } else if let Some(e) = c.error.take() {
            self.service.on_handshake_failed(e);
        }
        // Dropping `c` closes the socket.
    }

    /// The stop handle's socket is readable: a stop, a graceful stop (with its grace), or
    /// the handle was dropped (end of file), which stops as well.
    pub(super) fn on_stop_message(&mut self) {
        let mut msg = [0u8; 5];
        let n = self
            .stop
            .as_ref()
            .map_or(Ok(0), |mut s| io::Read::read(&mut s, &mut msg));
        match (n, msg) {
            (Ok(5), [super::STOP_GOING_AWAY, a, b, c, d]) if self.going_away_until.is_none() => {
                let ms = u32::from_le_bytes([a, b, c, d]);
                self.going_away = Some(Duration::from_millis(u64::from(ms)));
                self.arm_stop_poll();
            }
            _ => self.stopped = true,
        }
    }

    /// Starts a graceful stop: no more accepts, every open connection gets a close with 1001
    /// (going away), connections still in their handshake or refusal end now. `run` returns
    /// once all have ended, or at `until`.
    pub(super) fn go_away(&mut self, until: Instant) {
        self.going_away_until = Some(until);
        self.close_listener();
        for slot in 0..self.conns.len() {
            self.with_conn(slot, |this, c| {
                if c.closing {
                    return;
                }
                if let Phase::Open(session) = &mut c.phase {
                    if session.conn.can_send() {
                        // A close cannot fail on a connection that can still send.
                        let _ = session.close(Some(CloseCode::GOING_AWAY), "server shutting down");
                    }
                    this.mark_dirty(c);
                } else {
                    c.fail(Error::Io(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "server shutting down",
                    )));
                    this.teardown(c);
                }
            });
        }
    }

    /// A stop was requested: close every connection and wait (bounded) for the kernel to
    /// finish with their buffers; the service hears `on_close` for each.
    pub(super) fn stop_all(&mut self) -> io::Result<()> {
        self.close_listener();
        for slot in 0..self.conns.len() {
            self.with_conn(slot, |this, c| {
                c.fail(Error::Io(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "server stopped",
                )));
                this.teardown(c);
            });
        }
        let until = Clock::now_std() + DRAIN_LIMIT;
        while self.live > 0 {
            let now = Clock::now_std();
            if now >= until {
                break;
            }
            self.submit_and_wait(now, Some(until))?;
            self.reap();
        }
        Ok(())
    }
}

impl<S: Service> Drop for EventLoop<S> {
    /// Whatever is still in flight (an error return, a panic, a stop that ran out of time)
    /// is cancelled and awaited for up to a second without calling the service; connections
    /// whose operations still have not completed are leaked, never freed under the kernel.
    fn drop(&mut self) {
        self.close_listener();
        let mut cancels = Vec::new();
        for c in self.conns.iter_mut().flatten() {
            if c.busy() && !c.closing {
                c.closing = true;
                let _ = c.stream.shutdown(Shutdown::Both);
                let multi = c.multi && !c.multi_cancelled;
                for (busy, kind) in [(c.recv, RECV), (c.sending, SEND), (multi, RECV_MULTI)] {
                    if busy {
                        cancels.push(user_data(c.slot, kind));
                    }
                }
            }
        }
        for target in cancels {
            self.post_cancel(target, user_data(0, CANCEL));
        }
        let until = Clock::now_std() + DRAIN_LIMIT;
        loop {
            let busy = self.conns.iter().flatten().any(|c| c.busy());
            let now = Clock::now_std();
            if !busy || now >= until {
                break;
            }
            if self.submit_and_wait(now, Some(until)).is_err() {
                break;
            }
            self.cqes.clear();
            for cqe in self.ring.completion() {
                self.cqes.push((cqe.user_data(), cqe.result(), cqe.flags()));
            }
            for &(ud, _, flags) in &self.cqes {
                let slot = (ud >> KIND_BITS) as usize;
                if let Some(c) = self.conns.get_mut(slot).and_then(Option::as_deref_mut) {
                    match ud & ((1 << KIND_BITS) - 1) {
                        RECV => c.recv = false,
                        SEND => c.sending = false,
                        RECV_MULTI if !cqueue::more(flags) => c.multi = false,
                        _ => {}
                    }
                }
            }
        }
        let mut leaked = false;
        for c in self.conns.drain(..).flatten() {
            if c.busy() {
                leaked = true;
                mem::forget(c);
            }
        }
        // The provided buffers are freed only when no receive can still pick one.
        // (`BufRing` has no `Drop`: one dropped without `unregister` leaks its memory.)
        if let Some(bufs) = self.bufs.take() {
            if !leaked {
                bufs.unregister(&self.ring);
            }
        }
        // The backlog's entries were never submitted: their buffers are not the kernel's.
    }
}
