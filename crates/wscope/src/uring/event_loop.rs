//! The loop behind [`UringServer::run`]: connection states boxed in a slab, one ring, one
//! `io_uring_enter` per iteration. The buffer rules it keeps are in the module doc
//! ([`super`]); the push sites in `ops.rs` say which rule covers each entry.
//!
//! This file holds the loop itself: its state, its set-up, one iteration (reap, fire the
//! timers, accept, drive, submit and wait) and the ring's construction. Its parts live
//! beside it, one job each: `accept.rs` (accepting, the opening handshake, refusals),
//! `completions.rs` (an open connection's receive and send completions, TLS, and its drive),
//! `shutdown.rs` (teardown, going away, the cleanup on drop), `timers.rs` (the deadline
//! heap), `conn.rs` (a connection's state), and `ops.rs`, which builds and pushes the
//! submission-queue entries. All the driver's `unsafe` code is in `ops.rs` and, for the
//! provided buffers the kernel writes into, `buf_ring.rs`; no other file has any (the crate
//! denies `unsafe_code`, and only these two allow it).

use core::cmp::Reverse;
use core::mem;
use core::time::Duration;
use std::collections::BinaryHeap;
use std::io;
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};

use super::buf_ring::BufRing;
use super::conn::{ConnState, Held, Phase};
use super::ops::*;
use super::{ConnId, Service, UringServer, ACCEPT_BACKOFF};
use crate::config::ServerConfig;
use crate::limits::ConnectionLimits;
use crate::session::{Clock, SessionOptions};

/// The server's state while it runs.
pub(super) struct EventLoop<S: Service> {
    pub(super) ring: IoUring,
    pub(super) listener: TcpListener,
    pub(super) cfg: ServerConfig,
    pub(super) session_options: SessionOptions,
    pub(super) service: S,
    /// Connection states by slot (the slot is in every operation's `user_data`).
    pub(super) conns: Vec<Option<Box<ConnState>>>,
    pub(super) free: Vec<usize>,
    pub(super) live: usize,
    pub(super) generation: u32,
    /// (deadline, slot, id), earliest first; entries whose connection moved on are skipped.
    pub(super) timers: BinaryHeap<Reverse<(Instant, usize, ConnId)>>,
    /// Connections to drive in this iteration.
    pub(super) dirty: Vec<usize>,
    /// Entries the kernel could not take yet (submission queue full and busy), in order.
    pub(super) backlog: Vec<squeue::Entry>,
    /// The message buffer swapped with a session's and handed to the service.
    pub(super) scratch: Vec<u8>,
    /// Completions reaped in this iteration: (user_data, result, flags).
    pub(super) cqes: Vec<(u64, i32, u32)>,
    /// The provided buffers of multishot receives (`None`: one-shot receives only).
    pub(super) bufs: Option<BufRing>,
    /// Receives of open connections are multishot (`bufs` is there and the kernel takes
    /// them).
    pub(super) multishot: bool,
    /// Size of the registered file table (0: none).
    pub(super) file_table: u32,
    pub(super) accept_armed: bool,
    pub(super) accept_ready: bool,
    pub(super) accept_retry: Option<Instant>,
    pub(super) stop: Option<UnixStream>,
    pub(super) stopped: bool,
    pub(super) limits: Option<ConnectionLimits>,
    /// A graceful stop ([`super::StopHandle::going_away`]) was asked for, with this grace.
    pub(super) going_away: Option<Duration>,
    /// The graceful stop is under way: the loop ends at this time at the latest.
    pub(super) going_away_until: Option<Instant>,
    /// `ioprio` of the receives of open connections.
    pub(super) recv_flags: u16,
}

impl<S: Service> EventLoop<S> {
    pub(super) fn new(server: UringServer, service: S) -> io::Result<Self> {
        let ring = build_ring(server.entries, server.defer_taskrun)?;
        let file_table = if server.register_files {
            FILE_TABLE_SIZES
                .into_iter()
                .find(|&n| ring.submitter().register_files_sparse(n).is_ok())
                .unwrap_or(0)
        } else {
            0
        };
        // Multishot receives need provided-buffer rings (Linux 5.19+) and multishot receive
        // itself (6.0+, found out at the first one): one-shot receives otherwise.
        let bufs = if server.multishot {
            BufRing::register(&ring, PROVIDED_BUFS, PROVIDED_BUF_LEN, BUF_GROUP).ok()
        } else {
            None
        };
        server.listener.set_nonblocking(true)?;
        if let Some(s) = &server.stop {
            s.set_nonblocking(true)?;
        }
        let session_options = SessionOptions::from(&server.cfg);
        Ok(Self {
            ring,
            listener: server.listener,
            cfg: server.cfg,
            session_options,
            service,
            conns: Vec::new(),
            free: Vec::new(),
            live: 0,
            generation: 0,
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            backlog: Vec::new(),
            scratch: Vec::new(),
            cqes: Vec::new(),
            multishot: bufs.is_some(),
            file_table,
            bufs,
            accept_armed: false,
            accept_ready: true,
            accept_retry: None,
            stop: server.stop,
            stopped: false,
            limits: server.limits,
            going_away: None,
            going_away_until: None,
            recv_flags: if server.poll_first {
                RECVSEND_POLL_FIRST
            } else {
                0
            },
        })
    }

    pub(super) fn run(mut self) -> io::Result<()> {
        self.arm_stop_poll();
        loop {
            self.reap();
            if self.stopped {
                return self.stop_all();
            }
            let now = Clock::now_std();
            if let Some(grace) = self.going_away.take() {
                self.go_away(now + grace);
            }
            if let Some(until) = self.going_away_until {
                if self.live == 0 {
                    return Ok(());
                }
                if now >= until {
                    return self.stop_all();
                }
            }
            self.fire_timers(now);
            if self.accept_retry.is_some_and(|t| t <= now) {
                self.accept_retry = None;
                self.accept_ready = true;
            }
            if self.accept_ready && self.going_away_until.is_none() {
                self.accept(now);
            }
            self.drive_dirty(now);
            let deadline = [self.next_deadline(), self.going_away_until]
                .into_iter()
                .flatten()
                .min();
            self.submit_and_wait(now, deadline)?;
        }
    }

    /// Takes the completions and applies each to its connection.
    pub(super) fn reap(&mut self) {
        self.cqes.clear();
        for cqe in self.ring.completion() {
            self.cqes.push((cqe.user_data(), cqe.result(), cqe.flags()));
        }
        let cqes = mem::take(&mut self.cqes);
        for &(ud, res, flags) in &cqes {
            let slot = (ud >> KIND_BITS) as usize;
            match ud & ((1 << KIND_BITS) - 1) {
                RECV => {
                    self.with_conn(slot, |this, c| this.recv_done(c, res));
                }
                RECV_MULTI => {
                    let bid = cqueue::buffer_select(flags);
                    self.with_conn(slot, |this, c| this.multi_done(c, res, flags, bid));
                    if let (Some(bid), Some(bufs)) = (bid, self.bufs.as_mut()) {
                        bufs.give_back(bid);
                    }
                }
                SEND => {
                    self.with_conn(slot, |this, c| this.send_done(c, res));
                }
                ACCEPT => {
                    self.accept_armed = false;
                    if res < 0 && res != -libc::ECANCELED {
                        self.accept_retry = Some(Clock::now_std() + ACCEPT_BACKOFF);
                    } else {
                        self.accept_ready = true;
                    }
                }
                STOP => self.on_stop_message(),
                // A cancel request's own completion: no buffer, nothing to do.
                _ => {}
            }
        }
        self.cqes = cqes;
        if let Some(bufs) = self.bufs.as_mut() {
            bufs.publish();
        }
    }

    /// Runs `f` on the connection in `slot` (taken out of the slab meanwhile), then frees it
    /// if it is closing and the kernel holds none of its buffers any more.
    pub(super) fn with_conn(&mut self, slot: usize, f: impl FnOnce(&mut Self, &mut ConnState)) {
        let Some(c) = self.conns.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let mut held = Held(Some(c));
        if let Some(c) = held.0.as_deref_mut() {
            f(self, c);
        }
        let Some(c) = held.0.take() else {
            return;
        };
        if c.closing && !c.busy() {
            self.release(c);
        } else {
            self.conns[slot] = Some(c);
        }
    }

    pub(super) fn mark_dirty(&mut self, c: &mut ConnState) {
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(c.slot);
        }
    }

    /// Drives every connection something happened to.
    fn drive_dirty(&mut self, now: Instant) {
        let mut dirty = mem::take(&mut self.dirty);
        for &slot in &dirty {
            self.with_conn(slot, |this, c| {
                c.dirty = false;
                this.drive(c, now);
            });
        }
        dirty.clear();
        dirty.append(&mut self.dirty);
        self.dirty = dirty;
    }

    /// Moves one connection on: decode, hand out messages, queue its next receive and send.
    fn drive(&mut self, c: &mut ConnState, now: Instant) {
        if c.closing {
            return;
        }
        match c.phase {
            Phase::Handshake { .. } => {
                if !c.recv {
                    self.post_recv(c);
                }
                // The TLS handshake's messages.
                if !c.sending && c.tls_unsent() {
                    self.post_send(c);
                }
            }
            Phase::Refusing { .. } => self.drive_refusal(c, now),
            Phase::Open(_) => self.drive_open(c, now),
        }
        if !c.closing {
            self.schedule(c, now);
        }
    }

    /// The one `io_uring_enter` of an iteration: submit everything, wait for a completion or
    /// until `deadline`.
    pub(super) fn submit_and_wait(
        &mut self,
        now: Instant,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        self.flush_backlog();
        let r = match deadline {
            Some(at) => {
                let ts = types::Timespec::from(at.saturating_duration_since(now));
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submit_and_wait(1),
        };
        match r {
            Ok(_) => Ok(()),
            // Timed out, interrupted, or the completion queue needs reaping first.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// Errors after which the same operation is simply queued again.
pub(super) fn retryable(res: i32) -> bool {
    matches!(-res, libc::EAGAIN | libc::EINTR | libc::ENOBUFS)
}

/// Sets up the ring, or explains why the kernel does not offer what this driver needs.
pub(super) fn build_ring(entries: u32, defer_taskrun: bool) -> io::Result<IoUring> {
    let cq = entries.saturating_mul(4);
    // One thread submits and reaps, and completion work runs only when it waits: fewer
    // interrupts of the loop (Linux 6.1+; plain ring on older kernels).
    let deferred = if defer_taskrun {
        IoUring::builder()
            .setup_cqsize(cq)
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(entries)
    } else {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    };
    let ring = match deferred {
        Ok(r) => r,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => IoUring::builder()
            .setup_cqsize(cq)
            .build(entries)
            .map_err(unavailable)?,
        Err(e) => return Err(unavailable(e)),
    };
    if !ring.params().is_feature_ext_arg() {
        return Err(unavailable(io::Error::new(
            io::ErrorKind::Unsupported,
            "the kernel lacks IORING_FEAT_EXT_ARG (Linux 5.11+)",
        )));
    }
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(unavailable)?;
    for (code, name) in [
        (opcode::Recv::CODE, "RECV"),
        (opcode::Send::CODE, "SEND"),
        (opcode::SendMsg::CODE, "SENDMSG"),
        (opcode::PollAdd::CODE, "POLL_ADD"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    ] {
        if !probe.is_supported(code) {
            return Err(unavailable(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("the kernel does not support IORING_OP_{name}"),
            )));
        }
    }
    Ok(ring)
}

fn unavailable(e: io::Error) -> io::Error {
    let hint = match e.raw_os_error() {
        Some(libc::ENOSYS) => " (the kernel has no io_uring)",
        Some(libc::EPERM) => " (disabled: see sysctl kernel.io_uring_disabled or a seccomp filter)",
        _ => "",
    };
    io::Error::new(e.kind(), format!("io_uring is not available: {e}{hint}"))
}
