//! The loop behind [`UringServer::run`]: connection states boxed in a slab, one ring, one
//! `io_uring_enter` per iteration. The buffer rules it keeps are in the module doc
//! ([`super`]); the push sites in `ops.rs` say which rule covers each entry.
//!
//! The loop's parts live beside it: `ops.rs` builds and pushes the submission-queue entries
//! (all the driver's `unsafe` code, next to `buf_ring.rs`), `conn.rs` holds a connection's
//! state, `timers.rs` the deadline heap. This file has no `unsafe` code.

use core::cmp::Reverse;
use core::mem;
use core::net::SocketAddr;
use core::time::Duration;
use std::collections::BinaryHeap;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};
use wscope_proto::{CloseCode, Role};

use super::buf_ring::BufRing;
use super::conn::{plaintext_into_session, tls_into_session, ConnState, Held, Phase};
use super::ops::*;
use super::tls::{Plain, TlsLayer};
use super::{Conn, ConnId, Service, UringServer, ACCEPT_BACKOFF};
use crate::config::ServerConfig;
use crate::error::{Error, HandshakeError};
use crate::handshake::{
    server_feed, server_machine, server_respond, REFUSAL_LINGER, REFUSAL_READS,
};
use crate::limits::ConnectionLimits;
use crate::message::DataKind;
use crate::session::{Clock, Incoming, Session, Timeouts};

/// The server's state while it runs.
pub(super) struct EventLoop<S: Service> {
    pub(super) ring: IoUring,
    pub(super) listener: TcpListener,
    pub(super) cfg: ServerConfig,
    pub(super) timeouts: Timeouts,
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
        let timeouts = Timeouts {
            idle: server.cfg.idle_timeout,
        };
        Ok(Self {
            ring,
            listener: server.listener,
            cfg: server.cfg,
            timeouts,
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
    fn reap(&mut self) {
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

    fn recv_done(&mut self, c: &mut ConnState, res: i32) {
        c.recv = false;
        let direct = c.direct.take();
        self.mark_dirty(c);
        if c.closing {
            return;
        }
        if res == -libc::EINVAL && self.recv_flags != 0 && matches!(c.phase, Phase::Open(_)) {
            // A kernel before 5.19 refuses IORING_RECVSEND_POLL_FIRST: receive without it.
            self.recv_flags = 0;
            return;
        }
        if res < 0 {
            if !retryable(res) {
                c.fail(Error::Io(io::Error::from_raw_os_error(-res)));
                self.teardown(c);
            }
            return;
        }
        let n = res as usize;
        if n > 0 && c.tls.is_some() && !matches!(c.phase, Phase::Refusing { .. }) {
            // Ciphertext in the TLS layer's buffer (taken out while rustls reads it).
            let cipher = c
                .tls
                .as_deref_mut()
                .map(|t| mem::take(&mut t.cipher_in))
                .unwrap_or_default();
            self.tls_received(c, &cipher[..n.min(cipher.len())]);
            if let Some(t) = c.tls.as_deref_mut() {
                t.cipher_in = cipher;
            }
            return;
        }
        match &mut c.phase {
            Phase::Handshake { .. } if n == 0 => {
                c.fail(Error::Handshake(HandshakeError::Eof));
                self.teardown(c);
            }
            Phase::Handshake { .. } => self.handshake_input(c, n),
            Phase::Refusing { reads, .. } => {
                *reads += 1;
                c.eof = n == 0;
            }
            Phase::Open(session) => {
                c.eof = n == 0;
                c.input_ready = true;
                match direct {
                    Some(start) if n > 0 => {
                        commit_received(session.direct_buf(0), start, n);
                        match session.commit_direct(start) {
                            Ok(done) => c.direct_done = done,
                            Err(e) => {
                                c.failed = true;
                                c.input_ready = false;
                                if c.error.is_none() {
                                    c.error = Some(e);
                                }
                            }
                        }
                    }
                    _ => session.commit_read(n),
                }
            }
        }
    }

    /// A multishot receive reported: bytes in provided buffer `bid` (copied into the session's
    /// input here; the caller gives the buffer back), the end of the stream, or its end.
    fn multi_done(&mut self, c: &mut ConnState, res: i32, flags: u32, bid: Option<u16>) {
        if !cqueue::more(flags) {
            c.multi = false;
            c.multi_cancelled = false;
        }
        self.mark_dirty(c);
        if c.closing {
            return;
        }
        if res < 0 {
            match -res {
                // A kernel with provided-buffer rings but without multishot receive (5.19):
                // one-shot receives from now on.
                libc::EINVAL => self.multishot = false,
                // Cancelled (backpressure, a direct read, teardown), out of buffers for a
                // moment, or interrupted: `drive_open` arms it again when it wants input.
                libc::ECANCELED => {}
                _ if retryable(res) => {}
                _ => {
                    c.fail(Error::Io(io::Error::from_raw_os_error(-res)));
                    self.teardown(c);
                }
            }
            return;
        }
        if !matches!(c.phase, Phase::Open(_)) {
            return;
        }
        c.input_ready = true;
        if res > 0 && c.tls.is_some() {
            // rustls reads the ciphertext straight out of the provided buffer.
            if let (Some(bid), Some(bufs)) = (bid, &self.bufs) {
                tls_into_session(c, bufs.chunk(bid, res as usize));
            }
            return;
        }
        let Phase::Open(session) = &mut c.phase else {
            return;
        };
        match (res, bid, &self.bufs) {
            (0, ..) => {
                c.eof = true;
                session.commit_read(0);
            }
            (n, Some(bid), Some(bufs)) => session.push_input(bufs.chunk(bid, n as usize)),
            // Bytes without a buffer cannot happen (the kernel always names the buffer).
            _ => {}
        }
    }

    fn send_done(&mut self, c: &mut ConnState, res: i32) {
        c.sending = false;
        self.mark_dirty(c);
        if c.closing {
            return;
        }
        if res <= 0 {
            if res == 0 || !retryable(res) {
                let e = if res == 0 {
                    io::ErrorKind::WriteZero.into()
                } else {
                    io::Error::from_raw_os_error(-res)
                };
                // Only `close_notify` is left once it is queued: a peer that closed its
                // socket right after the closing handshake refuses it, and that is no error.
                if !c.tls.as_deref().is_some_and(TlsLayer::notified) {
                    c.fail(Error::Io(e));
                }
                self.teardown(c);
            }
            return;
        }
        let n = res as usize;
        if let Some(tls) = c.tls.as_deref_mut() {
            // The plaintext left its queue when rustls took it.
            tls.sent(n);
            return;
        }
        match &mut c.phase {
            Phase::Open(session) => session.out.advance(n),
            Phase::Refusing { sent, .. } => *sent += n,
            Phase::Handshake { .. } => {}
        }
    }

    /// Bytes of the request head arrived in the handshake buffer.
    fn handshake_input(&mut self, c: &mut ConnState, n: usize) {
        let Phase::Handshake { hs, buf, .. } = &mut c.phase else {
            return;
        };
        let (request, leftover) = match server_feed(hs, &buf[..n]) {
            Ok(None) => return,
            Ok(Some(got)) => got,
            Err((response, e)) => {
                self.refuse(c, response, e);
                return;
            }
        };
        let mut response = Vec::with_capacity(256);
        let decision = server_respond(
            &request,
            &self.cfg,
            |r| self.service.accept(r),
            &mut response,
        );
        match decision {
            Ok(agreed) => {
                let mut session = Box::new(Session::open(
                    Role::Server,
                    self.cfg.ws,
                    leftover,
                    self.timeouts,
                    agreed,
                    self.cfg.deflate_options,
                ));
                // The 101 goes first; replies to frames that came with the request follow it
                // in the same send.
                session.queue_raw(&response);
                c.phase = Phase::Open(session);
                c.opened = true;
                c.input_ready = true;
                if let Phase::Open(session) = &mut c.phase {
                    let mut conn = Conn { id: c.id, session };
                    self.service.on_open(&mut conn, &request);
                }
            }
            Err(e) => self.refuse(c, response, e),
        }
    }

    /// Ciphertext arrived: rustls decrypts it and the plaintext goes where the phase wants
    /// it (the request head, the session's input). A TLS failure refuses the handshake or
    /// fails the session; either way only the alert goes out after it.
    fn tls_received(&mut self, c: &mut ConnState, cipher: &[u8]) {
        if matches!(c.phase, Phase::Open(_)) {
            tls_into_session(c, cipher);
            return;
        }
        let mut rest = cipher;
        while !rest.is_empty() && !c.closing {
            let Some(tls) = c.tls.as_deref_mut() else {
                return;
            };
            if let Err(e) = tls.absorb(&mut rest) {
                match &c.phase {
                    Phase::Handshake { .. } => self.refuse(c, Vec::new(), e),
                    Phase::Open(_) => {
                        c.failed = true;
                        c.fail(e);
                    }
                    Phase::Refusing { .. } => {}
                }
                return;
            }
            self.tls_plaintext(c);
        }
    }

    /// Moves what rustls decrypted into the phase: the handshake buffer (parsed at once, so the
    /// phase may change on the way), the session's input, or nowhere (a refusal).
    fn tls_plaintext(&mut self, c: &mut ConnState) {
        loop {
            let Some(tls) = c.tls.as_deref_mut() else {
                return;
            };
            match &mut c.phase {
                Phase::Handshake { buf, .. } => match tls.read_plain(buf) {
                    Plain::Bytes(n) => self.handshake_input(c, n),
                    Plain::Empty => return,
                    Plain::Closed => {
                        c.fail(Error::Handshake(HandshakeError::Eof));
                        self.teardown(c);
                        return;
                    }
                },
                Phase::Open(session) => {
                    c.input_ready = true;
                    c.eof |= plaintext_into_session(tls, session);
                    return;
                }
                // Whatever follows a refused request is read and dropped (rustls holds only
                // so much decrypted data before it stops taking records).
                Phase::Refusing { .. } => {
                    if !matches!(tls.read_plain(&mut [0; 4096]), Plain::Bytes(_)) {
                        return;
                    }
                }
            }
        }
    }

    /// Switches to writing `response` and closing (no operation is in flight here: the
    /// handshake buffer moves on to the new phase untouched).
    fn refuse(&mut self, c: &mut ConnState, response: Vec<u8>, e: Error) {
        c.fail(e);
        let old = mem::replace(
            &mut c.phase,
            Phase::Refusing {
                out: response,
                sent: 0,
                buf: Vec::new(),
                deadline: Clock::now_std(),
                reads: 0,
                shut: false,
            },
        );
        if let (
            Phase::Handshake {
                buf: old_buf,
                deadline: old_deadline,
                ..
            },
            Phase::Refusing { buf, deadline, .. },
        ) = (old, &mut c.phase)
        {
            *buf = old_buf;
            *deadline = old_deadline;
        }
    }

    /// Stops listening now: connections still in the accept queue are reset, and the socket
    /// leaves its `SO_REUSEPORT` group, so the group's other servers take every new
    /// connection. Closing the descriptor would not do: the pending accept poll keeps the
    /// socket open until the kernel has torn the ring down, after `run` returned.
    fn close_listener(&self) {
        let _ = socket2::SockRef::from(&self.listener).shutdown(Shutdown::Read);
    }

    /// Accepts waiting connections, then re-arms the poll on the listener (or backs off).
    fn accept(&mut self, now: Instant) {
        self.accept_ready = false;
        for _ in 0..ACCEPT_BATCH {
            match self.listener.accept() {
                Ok((stream, peer)) => self.add_conn(stream, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(_) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: try again a little later instead of
                    // spinning on a listener that stays readable.
                    self.accept_retry = Some(now + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
        if !self.accept_armed {
            self.accept_armed = true;
            self.post_accept_poll();
        }
    }

    fn add_conn(&mut self, stream: TcpStream, peer: SocketAddr, now: Instant) {
        let (permit, over) = match self.limits.as_ref().map(|l| l.acquire(peer.ip())) {
            None => (None, None),
            Some(Ok(permit)) => (Some(permit), None),
            Some(Err(over)) => (None, Some(over)),
        };
        if over.is_some() && self.cfg.tls.is_some() {
            // A TLS client could not read a plain 503: closed at once.
            if let Some(over) = over {
                self.service
                    .on_handshake_failed(Error::Handshake(HandshakeError::OverLimit(over)));
            }
            return;
        }
        let tls = match &self.cfg.tls {
            Some(cfg) => match TlsLayer::new(cfg.clone()) {
                Ok(t) => Some(Box::new(t)),
                Err(e) => {
                    self.service.on_handshake_failed(Error::Tls(e));
                    return;
                }
            },
            None => None,
        };
        // Accepted sockets are blocking (accept4 does not inherit O_NONBLOCK): io_uring
        // waits for readiness itself.
        let _ = stream.set_nodelay(self.cfg.nodelay);
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        self.generation = self.generation.wrapping_add(1);
        let id = ConnId((u64::from(self.generation) << 32) | slot as u64);
        let fixed = u32::try_from(slot).is_ok_and(|i| {
            i < self.file_table
                && self
                    .ring
                    .submitter()
                    .register_files_update(i, &[stream.as_raw_fd()])
                    .is_ok()
        });
        let c = Box::new(ConnState {
            id,
            slot,
            stream,
            fixed,
            phase: Phase::Handshake {
                hs: server_machine(&self.cfg),
                buf: vec![0; HANDSHAKE_BUF],
                deadline: now + self.cfg.handshake_timeout,
            },
            recv: false,
            multi: false,
            multi_cancelled: false,
            sending: false,
            iov: [libc::iovec {
                iov_base: core::ptr::null_mut(),
                iov_len: 0,
            }; MAX_IOV],
            msghdr: empty_msghdr(),
            timer_at: None,
            dirty: true,
            input_ready: false,
            direct: None,
            direct_done: None,
            eof: false,
            failed: false,
            app_failed: false,
            opened: false,
            closing: false,
            linger_until: None,
            error: None,
            tls,
            _permit: permit,
        });
        let mut c = c;
        if let Some(over) = over {
            // Refused before its request is read: the 503 goes out, then the refusal drain.
            self.refuse(
                &mut c,
                over.response(),
                Error::Handshake(HandshakeError::OverLimit(over)),
            );
        }
        self.conns[slot] = Some(c);
        self.dirty.push(slot);
        self.live += 1;
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

    fn drive_refusal(&mut self, c: &mut ConnState, now: Instant) {
        let Phase::Refusing {
            out,
            sent,
            deadline,
            reads,
            shut,
            ..
        } = &mut c.phase
        else {
            return;
        };
        // Under TLS the response leaves through rustls (none after a TLS failure: its alert
        // is the answer), followed by `close_notify`.
        let plain_left = *sent < out.len() && !c.tls.as_deref().is_some_and(|t| t.broken);
        if plain_left || c.tls.as_deref().is_some_and(TlsLayer::pending) {
            if !c.sending {
                self.post_send(c);
            }
            return;
        }
        if let Some(tls) = c.tls.as_deref_mut().filter(|t| !t.broken && !t.notified()) {
            tls.close_notify();
            if !c.sending {
                self.post_send(c);
            }
            return;
        }
        if !*shut {
            let _ = c.stream.shutdown(Shutdown::Write);
            *shut = true;
            *deadline = (*deadline).min(now + REFUSAL_LINGER);
        }
        if c.eof || *reads >= REFUSAL_READS {
            self.teardown(c);
        } else if !c.recv {
            self.post_recv(c);
        }
    }

    fn drive_open(&mut self, c: &mut ConnState, now: Instant) {
        let Phase::Open(session) = &mut c.phase else {
            return;
        };
        // Decode only when no receive is in flight: the input buffer is the kernel's then.
        if c.input_ready && !c.recv {
            let mut direct_done = c.direct_done.take();
            loop {
                let got = match direct_done.take() {
                    Some(done) => Ok(Some(done)),
                    // Backpressure: the rest of the input waits until the peer reads.
                    None if session.write_full() => break,
                    None => session.next_incoming(),
                };
                match got {
                    Ok(None) => {
                        c.input_ready = false;
                        break;
                    }
                    Ok(Some(Incoming::Data(op))) => {
                        if c.app_failed {
                            continue;
                        }
                        session.swap_message(&mut self.scratch);
                        let mut conn = Conn { id: c.id, session };
                        let kind = DataKind::from_opcode(op).unwrap_or(DataKind::Binary);
                        if let Err(e) = self.service.on_message(&mut conn, kind, &mut self.scratch)
                        {
                            c.app_failed = true;
                            let _ = session.close(Some(CloseCode::INTERNAL_ERROR), "");
                            if c.error.is_none() {
                                c.error = Some(e);
                            }
                        }
                    }
                    Ok(Some(Incoming::Close(_) | Incoming::Ping(_) | Incoming::Pong(_))) => {}
                    Err(e) => {
                        // The failing close is queued: flush it, then end the transport.
                        c.failed = true;
                        c.input_ready = false;
                        if c.error.is_none() {
                            c.error = Some(e);
                        }
                        break;
                    }
                }
            }
        }
        let finished = c.failed || c.eof || session.should_close();
        // After a TLS failure the queued plaintext can never go out: only the alert counts.
        let plain = if c.tls.as_deref().is_some_and(|t| t.broken) {
            0
        } else {
            session.out.len()
        };
        let pending = plain + usize::from(c.tls.as_deref().is_some_and(TlsLayer::pending));
        let full = session.write_full();
        // (Under TLS the kernel's bytes are ciphertext: never straight into the message.)
        let direct = c.tls.is_none() && session.direct_read_len().is_some();
        let expects_large = session.expects_large();
        if finished && c.linger_until.is_none() {
            let close = Duration::from_micros(self.cfg.ws.close_timeout.as_micros());
            c.linger_until = Some(now + close);
        }
        if !c.sending && pending > 0 {
            self.post_send(c);
        }
        if finished {
            if !c.sending && pending == 0 {
                match c.tls.as_deref_mut().filter(|t| !t.broken && !t.notified()) {
                    // TLS ends with `close_notify`; the transport closes once it is sent.
                    Some(tls) => {
                        tls.close_notify();
                        self.post_send(c);
                        self.cancel_multi(c);
                    }
                    None => self.teardown(c),
                }
            } else {
                // Nothing more is decoded: stop reading while the last bytes go out.
                self.cancel_multi(c);
            }
        } else if full {
            // Backpressure: what arrives now could not be decoded, so stop reading.
            self.cancel_multi(c);
        } else if direct {
            // The rest of a large frame goes straight into the message buffer, by a one-shot
            // receive once the multishot one has ended.
            if c.multi {
                self.cancel_multi(c);
            } else if !c.recv && !c.input_ready {
                self.post_recv(c);
            }
        } else if !c.recv && !c.multi && !c.input_ready {
            // After a large frame, one-shot receives: a multishot one would drain the next
            // large frame through the provided buffers before a direct read could take over.
            if self.multishot && !expects_large {
                self.post_multi(c);
            } else {
                self.post_recv(c);
            }
        }
    }

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
    fn release(&mut self, mut c: Box<ConnState>) {
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

    /// The one `io_uring_enter` of an iteration: submit everything, wait for a completion or
    /// until `deadline`.
    fn submit_and_wait(&mut self, now: Instant, deadline: Option<Instant>) -> io::Result<()> {
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

    /// The stop handle's socket is readable: a stop, a graceful stop (with its grace), or
    /// the handle was dropped (end of file), which stops as well.
    fn on_stop_message(&mut self) {
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
    fn go_away(&mut self, until: Instant) {
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
    fn stop_all(&mut self) -> io::Result<()> {
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

/// Errors after which the same operation is simply queued again.
fn retryable(res: i32) -> bool {
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
