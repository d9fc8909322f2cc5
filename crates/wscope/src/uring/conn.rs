//! One connection of the io_uring server: where it is ([`Phase`]), its state
//! ([`ConnState`]: the socket, the flags of its operations in flight, the buffers handed to
//! the kernel), and the TLS plumbing into its session.

use core::mem;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Instant;

use io_uring::types;

use wscope_proto::handshake::ServerHandshake;

use super::ops::{Target, MAX_IOV};
use super::tls::{Plain, TlsLayer};
use super::ConnId;
use crate::error::Error;
use crate::limits::Permit;
use crate::session::{Incoming, Session};

/// Where a connection is.
pub(super) enum Phase {
    /// Reading the request head into `buf`.
    Handshake {
        hs: ServerHandshake,
        buf: Vec<u8>,
        deadline: Instant,
    },
    /// Writing a refusal (`out[sent..]` left), then draining what the client still sends
    /// into `buf` for a short while so the refusal is not lost to a reset.
    Refusing {
        out: Vec<u8>,
        sent: usize,
        buf: Vec<u8>,
        deadline: Instant,
        reads: u32,
        shut: bool,
    },
    /// The WebSocket session.
    Open(Box<Session>),
}

/// One connection. Always boxed: `iov` and `msghdr` are handed to the kernel by address.
pub(super) struct ConnState {
    pub(super) id: ConnId,
    pub(super) slot: usize,
    pub(super) stream: TcpStream,
    /// The socket is also in the registered file table, at `slot`.
    pub(super) fixed: bool,
    pub(super) phase: Phase,
    /// A receive is in flight: its target buffer must stay put.
    pub(super) recv: bool,
    /// A multishot receive (into the provided buffers) is armed: its last completion, the
    /// one without `IORING_CQE_F_MORE`, has not arrived. It writes into no buffer of the
    /// connection, so decoding goes on meanwhile.
    pub(super) multi: bool,
    /// A cancel of the multishot receive was queued.
    pub(super) multi_cancelled: bool,
    /// A send is in flight: its source bytes (and `iov`, `msghdr`) must stay put.
    pub(super) sending: bool,
    /// The iovec array of an in-flight vectored send.
    pub(super) iov: [libc::iovec; MAX_IOV],
    /// The message header of an in-flight vectored send (pointing at `iov`).
    pub(super) msghdr: libc::msghdr,
    /// The earliest deadline this connection has in the timer heap.
    pub(super) timer_at: Option<Instant>,
    /// Queued in the loop's list of connections to drive.
    pub(super) dirty: bool,
    /// Received bytes wait to be decoded.
    pub(super) input_ready: bool,
    /// A receive straight into the message buffer is in flight (large frames, as in the tokio
    /// driver): the message's length before it.
    pub(super) direct: Option<usize>,
    /// What a completed direct receive finished (a whole message), to hand out.
    pub(super) direct_done: Option<Incoming>,
    /// The peer closed its side.
    pub(super) eof: bool,
    /// The session reported a protocol violation (its failing close is queued).
    pub(super) failed: bool,
    /// The service's `on_message` failed: no more messages are handed to it.
    pub(super) app_failed: bool,
    /// The service saw `on_open` (so it gets `on_close`).
    pub(super) opened: bool,
    /// Teardown started: the socket is shut down, in-flight operations are cancelled, and
    /// the state is freed once their completions arrived.
    pub(super) closing: bool,
    /// The transport should close but the write queue is still being flushed: give up at
    /// this time (the close timeout) if the peer does not take the bytes.
    pub(super) linger_until: Option<Instant>,
    /// Why the connection ended, if it is not the session's own verdict.
    pub(super) error: Option<Error>,
    /// TLS (`wss://`): receives and sends carry its ciphertext, never the phase's buffers
    /// (except a refusal's drain reads, which are thrown away).
    pub(super) tls: Option<Box<TlsLayer>>,
    /// This connection's place under the server's connection limits, given back when the
    /// state is freed.
    pub(super) _permit: Option<Permit>,
}

impl ConnState {
    pub(super) fn busy(&self) -> bool {
        self.recv || self.sending || self.multi
    }

    pub(super) fn target(&self) -> Target {
        if self.fixed {
            Target::Fixed(types::Fixed(self.slot as u32))
        } else {
            Target::Fd(types::Fd(self.stream.as_raw_fd()))
        }
    }

    pub(super) fn fail(&mut self, e: Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// TLS has ciphertext to send (queued, in flight, or still inside rustls).
    pub(super) fn tls_unsent(&self) -> bool {
        self.tls.as_deref().is_some_and(TlsLayer::pending)
    }
}

/// A connection taken out of the slab while it is worked on. If a service callback panics,
/// the unwinding drops this guard: with operations in flight it leaks the state instead of
/// freeing memory the kernel may still use.
pub(super) struct Held(pub(super) Option<Box<ConnState>>);

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            if c.busy() {
                mem::forget(c);
            }
        }
    }
}

/// Ciphertext for an open connection: rustls decrypts it and the plaintext goes into the
/// session's input; a TLS failure fails the session (only the alert goes out after it). No
/// loop state is needed, so `cipher` may be one of the loop's provided buffers.
pub(super) fn tls_into_session(c: &mut ConnState, cipher: &[u8]) {
    let mut rest = cipher;
    while !rest.is_empty() && !c.closing {
        let (Some(tls), Phase::Open(session)) = (c.tls.as_deref_mut(), &mut c.phase) else {
            return;
        };
        if let Err(e) = tls.absorb(&mut rest) {
            c.failed = true;
            c.fail(e);
            return;
        }
        c.input_ready = true;
        c.eof |= plaintext_into_session(tls, session);
    }
}

/// Moves what rustls decrypted into the session's input; `true` at the peer's
/// `close_notify` (the end of the input, committed as such).
pub(super) fn plaintext_into_session(tls: &mut TlsLayer, session: &mut Session) -> bool {
    loop {
        match tls.read_plain(session.read_buf()) {
            Plain::Bytes(n) => session.commit_read(n),
            Plain::Empty => return false,
            Plain::Closed => {
                session.commit_read(0);
                return true;
            }
        }
    }
}
