//! Accepting and the opening handshake on the io_uring server: the listener's accepts, a new
//! connection's set-up, the request bytes a receive read, and the refusal of a request (the
//! response, then a bounded drain).

use core::mem;
use core::net::SocketAddr;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Instant;

use wscope_proto::Role;

use super::conn::{ConnState, Phase};
use super::event_loop::EventLoop;
use super::ops::*;
use super::tls::TlsLayer;
use super::{Conn, ConnId, Service, ACCEPT_BACKOFF};
use crate::error::{Error, HandshakeError};
use crate::handshake::{
    server_feed, server_machine, server_respond, REFUSAL_LINGER, REFUSAL_READS,
};
use crate::session::{Clock, Session};

impl<S: Service> EventLoop<S> {
    /// Stops listening now: connections still in the accept queue are reset, and the socket
    /// leaves its `SO_REUSEPORT` group, so the group's other servers take every new
    /// connection. Closing the descriptor would not do: the pending accept poll keeps the
    /// socket open until the kernel has torn the ring down, after `run` returned.
    pub(super) fn close_listener(&self) {
        let _ = socket2::SockRef::from(&self.listener).shutdown(Shutdown::Read);
    }

    /// Accepts waiting connections, then re-arms the poll on the listener (or backs off).
    pub(super) fn accept(&mut self, now: Instant) {
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

    pub(super) fn add_conn(&mut self, stream: TcpStream, peer: SocketAddr, now: Instant) {
        let (permit, over) = match self.limits.as_ref().map(|l| l.acquire(peer.ip())) {
            None => (None, None),
            Some(Ok(permit)) => (Some(permit), None),
            Some(Err(over)) => (None, Some(over)),
        };
        #[cfg(feature = "rustls")]
        if over.is_some() && self.cfg.tls.is_some() {
            // A TLS client could not read a plain 503: closed at once.
            if let Some(over) = over {
                self.service
                    .on_handshake_failed(Error::Handshake(HandshakeError::OverLimit(over)));
            }
            return;
        }
        #[cfg(feature = "rustls")]
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
        #[cfg(not(feature = "rustls"))]
        let tls: Option<Box<TlsLayer>> = None;
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

    /// Bytes of the request head arrived in the handshake buffer.
    pub(super) fn handshake_input(&mut self, c: &mut ConnState, n: usize) {
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
                    self.session_options,
                    leftover,
                    agreed,
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

    /// Switches to writing `response` and closing (no operation is in flight here: the
    /// handshake buffer moves on to the new phase untouched).
    pub(super) fn refuse(&mut self, c: &mut ConnState, response: Vec<u8>, e: Error) {
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

    pub(super) fn drive_refusal(&mut self, c: &mut ConnState, now: Instant) {
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
}
