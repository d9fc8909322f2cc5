//! Submission-queue entries: how operations are named (`user_data`, [`Target`]), built and
//! pushed. All of the io_uring driver's `unsafe` code is here, each site with its SAFETY
//! comment; the buffer rules it keeps are in the module doc ([`super`]).

#![allow(unsafe_code)]

use core::mem;
use core::time::Duration;
use std::io::IoSlice;
use std::os::fd::AsRawFd;

use io_uring::{opcode, squeue, types};

use super::conn::{ConnState, Phase};
use super::event_loop::EventLoop;
use super::Service;

/// Operation kinds, in the low byte of `user_data`; the slot number is above them.
pub(super) const RECV: u64 = 1;
pub(super) const SEND: u64 = 2;
pub(super) const CANCEL: u64 = 3;
pub(super) const ACCEPT: u64 = 4;
pub(super) const STOP: u64 = 5;
/// A multishot receive into the provided buffers.
pub(super) const RECV_MULTI: u64 = 6;
pub(super) const KIND_BITS: u32 = 8;

/// `IORING_RECVSEND_POLL_FIRST` (ioprio of a receive): wait for readiness before the first
/// attempt. A kernel ABI constant the io-uring crate does not export.
pub(super) const RECVSEND_POLL_FIRST: u16 = 1;

/// Provided buffers for multishot receives: how many (a power of two) and how large. Each
/// is given back as soon as its bytes are copied into a session, so a few serve every
/// connection; 4 MiB in all.
pub(super) const PROVIDED_BUFS: u16 = 256;
pub(super) const PROVIDED_BUF_LEN: usize = 16 * 1024;
/// The buffer group of the provided buffers.
pub(super) const BUF_GROUP: u16 = 0;

/// Sizes of the registered file table to try, largest first (the kernel refuses one larger
/// than the descriptor limit); connections in slots past it use their plain descriptor.
pub(super) const FILE_TABLE_SIZES: [u32; 3] = [16_384, 4096, 1024];

/// Ciphertext gathered for one send under TLS (more waits in the write queue).
pub(super) const TLS_SEND: usize = 256 * 1024;
/// Most slices one vectored send takes from the write queue.
pub(super) const MAX_IOV: usize = 16;
/// Receive buffer for the request head (the handshake machine keeps what it needs).
pub(super) const HANDSHAKE_BUF: usize = 4096;
/// Accepts per listener wake-up before the poll is re-armed (other work gets a turn).
pub(super) const ACCEPT_BATCH: usize = 64;
/// How long stopping or dropping the loop waits for the kernel to finish with the buffers.
pub(super) const DRAIN_LIMIT: Duration = Duration::from_secs(1);

pub(super) const fn user_data(slot: usize, kind: u64) -> u64 {
    ((slot as u64) << KIND_BITS) | kind
}

/// A length for an SQE (larger buffers are sent or filled in several operations).
pub(super) fn sqe_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The descriptor an operation names: a slot of the registered file table (the kernel skips
/// the file lookup and reference count of every operation) or a plain descriptor.
#[derive(Clone, Copy)]
pub(super) enum Target {
    Fixed(types::Fixed),
    Fd(types::Fd),
}

/// Evaluates `$build` with `$t` bound to the [`Target`]'s descriptor type.
macro_rules! on_target {
    ($target:expr, $t:ident => $build:expr) => {
        match $target {
            Target::Fixed($t) => $build,
            Target::Fd($t) => $build,
        }
    };
}
/// An empty `msghdr` (no address, no iovecs, no control data).
pub(super) fn empty_msghdr() -> libc::msghdr {
    // SAFETY: `msghdr` is plain data (pointers, lengths, flags), valid all zero: no
    // address, no iovecs, no control data. (A struct literal would not build on libc
    // targets where it has private padding fields.)
    unsafe { mem::zeroed() }
}

/// Takes `n` bytes a completed receive wrote into `msg`'s spare capacity from `start` on.
pub(super) fn commit_received(msg: &mut Vec<u8>, start: usize, n: usize) {
    assert!(start == msg.len() && n <= msg.capacity() - start);
    // SAFETY: the receive wrote `n` bytes into the spare capacity that began at `start` (=
    // the length then, checked above; nothing touched the buffer while it was in flight),
    // and `n` is at most the length asked for, which `direct_buf` had reserved (checked).
    unsafe { msg.set_len(start + n) };
}

impl<S: Service> EventLoop<S> {
    /// Polls the listener for connections to accept.
    pub(super) fn post_accept_poll(&mut self) {
        let entry = opcode::PollAdd::new(types::Fd(self.listener.as_raw_fd()), libc::POLLIN as u32)
            .build()
            .user_data(user_data(0, ACCEPT));
        // SAFETY: a poll refers to no memory of ours; the listener outlives the ring's
        // use of it (the loop owns both).
        unsafe { self.push(entry) };
    }

    /// Cancels the operation named `target`; the cancel's own completion carries `ud`.
    pub(super) fn post_cancel(&mut self, target: u64, ud: u64) {
        let entry = opcode::AsyncCancel::new(target).build().user_data(ud);
        // SAFETY: a cancel refers to no memory; the operation it targets keeps its buffers
        // until its own completion, which is still awaited.
        unsafe { self.push(entry) };
    }

    /// Arms a multishot receive into the provided buffers (open connections only).
    pub(super) fn post_multi(&mut self, c: &mut ConnState) {
        debug_assert!(!c.recv && !c.multi && !c.closing);
        let Some(bufs) = &self.bufs else {
            self.post_recv(c);
            return;
        };
        let entry = on_target!(c.target(), t => opcode::RecvMulti::new(t, bufs.group()).build())
            .user_data(user_data(c.slot, RECV_MULTI));
        c.multi = true;
        c.multi_cancelled = false;
        // SAFETY: the receive writes only into provided buffers, which the loop owns and
        // keeps registered (and allocated) as long as the ring; the connection state is freed
        // only after the receive's last completion (`multi` is part of `busy`).
        unsafe { self.push(entry) };
    }

    /// Asks the kernel to end the connection's multishot receive, if one is armed.
    pub(super) fn cancel_multi(&mut self, c: &mut ConnState) {
        if !c.multi || c.multi_cancelled {
            return;
        }
        c.multi_cancelled = true;
        let entry = opcode::AsyncCancel::new(user_data(c.slot, RECV_MULTI))
            .build()
            .user_data(user_data(c.slot, CANCEL));
        // SAFETY: a cancel refers to no memory.
        unsafe { self.push(entry) };
    }

    /// Queues a receive into the buffer of the current phase.
    pub(super) fn post_recv(&mut self, c: &mut ConnState) {
        debug_assert!(!c.recv && !c.closing);
        let target = c.target();
        let (ptr, len, ioprio): (*mut u8, usize, u16) = match (&mut c.phase, c.tls.as_deref_mut()) {
            // Ciphertext: into the TLS layer's buffer.
            (Phase::Handshake { .. }, Some(tls)) => {
                (tls.cipher_in.as_mut_ptr(), tls.cipher_in.len(), 0)
            }
            (Phase::Open(_), Some(tls)) => (
                tls.cipher_in.as_mut_ptr(),
                tls.cipher_in.len(),
                self.recv_flags,
            ),
            (Phase::Handshake { buf, .. } | Phase::Refusing { buf, .. }, _) => {
                (buf.as_mut_ptr(), buf.len(), 0)
            }
            (Phase::Open(session), None) => match session.direct_read_len() {
                // A large frame's payload goes straight into the message buffer's spare
                // capacity (no copy from the input buffer).
                Some(want) => {
                    let msg = session.direct_buf(want);
                    c.direct = Some(msg.len());
                    let spare = &mut msg.spare_capacity_mut()[..want];
                    (spare.as_mut_ptr().cast(), want, self.recv_flags)
                }
                None => {
                    let buf = session.read_buf();
                    (buf.as_mut_ptr(), buf.len(), self.recv_flags)
                }
            },
        };
        let entry = on_target!(target, t => opcode::Recv::new(t, ptr, sqe_len(len))
            .ioprio(ioprio)
            .build())
        .user_data(user_data(c.slot, RECV));
        c.recv = true;
        // SAFETY: the target is the TLS layer's `cipher_in` (read and put back only in
        // `recv_done`, after the completion), the handshake buffer (a Vec owned by this phase,
        // which does not change while `recv` is set), the session's input buffer from `read_buf`, or the
        // reserved spare capacity of its message buffer (`direct_buf`), which nothing touches
        // until the completion clears `recv` (no `read_buf`, `next_incoming`, `commit_read`,
        // `direct_buf` or `take_message` before; decoding waits for `!recv`). The state is freed only when `recv` is
        // clear (`with_conn`, `Drop`), or leaked (`Held`, `Drop`).
        unsafe { self.push(entry) };
    }

    /// Queues a send of what the current phase has pending.
    pub(super) fn post_send(&mut self, c: &mut ConnState) {
        debug_assert!(!c.sending && !c.closing);
        if c.tls.is_some() {
            self.post_send_tls(c);
            return;
        }
        let target = c.target();
        let ud = user_data(c.slot, SEND);
        let entry = match &mut c.phase {
            Phase::Refusing { out, sent, .. } => {
                let rest = &out[*sent..];
                on_target!(target, t => opcode::Send::new(t, rest.as_ptr(), sqe_len(rest.len()))
                    .flags(libc::MSG_NOSIGNAL)
                    .build())
            }
            Phase::Open(session) => {
                let mut slices = [IoSlice::new(&[]); MAX_IOV];
                let n = session.write_slices(&mut slices);
                let entry = if n == 1 {
                    // One slice (small frames share a buffer): a plain send, the kernel's
                    // shorter path.
                    let (ptr, len) = (slices[0].as_ptr(), sqe_len(slices[0].len()));
                    on_target!(target, t => opcode::Send::new(t, ptr, len)
                        .flags(libc::MSG_NOSIGNAL)
                        .build())
                } else {
                    // A vectored send with MSG_NOSIGNAL (not writev): a peer gone away is an
                    // EPIPE here, never a SIGPIPE, whether or not the program ignores it.
                    for (iov, s) in c.iov.iter_mut().zip(&slices[..n]) {
                        *iov = libc::iovec {
                            iov_base: s.as_ptr().cast_mut().cast(),
                            iov_len: s.len(),
                        };
                    }
                    c.msghdr.msg_iov = c.iov.as_mut_ptr();
                    c.msghdr.msg_iovlen = n as _;
                    let msghdr: *const libc::msghdr = &c.msghdr;
                    on_target!(target, t => opcode::SendMsg::new(t, msghdr)
                        .flags(libc::MSG_NOSIGNAL as u32)
                        .build())
                };
                // From now on the queued bytes are the kernel's: appends go elsewhere.
                session.out.seal();
                entry
            }
            Phase::Handshake { .. } => return,
        };
        c.sending = true;
        // SAFETY: the source is the refusal buffer (owned by the phase, which does not change
        // while `sending` is set) or the write queue's pending segments, which were sealed
        // above: appends go to new segments, and segments are released only by `advance`
        // after this send's completion. `iov` and `msghdr` live in the boxed state, which does
        // not move and is freed only when `sending` is clear (or leaked).
        unsafe { self.push(entry.user_data(ud)) };
    }

    /// [`Self::post_send`] under TLS: the phase's pending plaintext goes into rustls (up to
    /// [`TLS_SEND`] of ciphertext at a time), and the ciphertext is sent.
    pub(super) fn post_send_tls(&mut self, c: &mut ConnState) {
        let target = c.target();
        let Some(tls) = c.tls.as_deref_mut() else {
            return;
        };
        tls.fill();
        match &mut c.phase {
            Phase::Open(session) => {
                while tls.unsent().len() < TLS_SEND {
                    let mut slices = [IoSlice::new(&[]); MAX_IOV];
                    let n = session.write_slices(&mut slices);
                    let took = if n == 0 { 0 } else { tls.encrypt(&slices[..n]) };
                    if took == 0 {
                        break;
                    }
                    session.out.advance(took);
                }
            }
            Phase::Refusing { out, sent, .. } => {
                *sent += tls.encrypt(&[IoSlice::new(&out[*sent..])]);
            }
            Phase::Handshake { .. } => {}
        }
        let bytes = tls.unsent();
        if bytes.is_empty() {
            return;
        }
        let (ptr, len) = (bytes.as_ptr(), sqe_len(bytes.len()));
        let entry = on_target!(target, t => opcode::Send::new(t, ptr, len)
            .flags(libc::MSG_NOSIGNAL)
            .build())
        .user_data(user_data(c.slot, SEND));
        c.sending = true;
        // SAFETY: the source is the TLS layer's unsent ciphertext, which is neither appended
        // to nor cleared while `sending` is set (`fill` and `encrypt` run only here, before
        // the push) and advances only by the completion's count (`send_done`); the layer is
        // boxed in the connection state, freed only when `sending` is clear (or leaked).
        unsafe { self.push(entry) };
    }

    /// Pushes an entry, handing a full submission queue to the kernel first; if the kernel
    /// cannot take it now either, the entry waits in the backlog (in order).
    ///
    /// # Safety
    ///
    /// Every buffer the entry refers to must stay valid, unmoved, and (for a receive) not
    /// otherwise accessed until the entry's completion has been reaped.
    pub(super) unsafe fn push(&mut self, entry: squeue::Entry) {
        if self.backlog.is_empty() {
            // SAFETY: forwarded from this function's contract.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            if self.ring.submit().is_ok() {
                // SAFETY: as above.
                if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                    return;
                }
            }
        }
        self.backlog.push(entry);
    }

    /// Moves the backlog into the submission queue, as far as it fits.
    pub(super) fn flush_backlog(&mut self) {
        let mut done = 0;
        while done < self.backlog.len() {
            // SAFETY: each backlog entry met `push`'s contract when it was queued, and its
            // buffers stay reserved (its connection's `recv`/`sending` flag is set) until its
            // completion, which cannot come before it is submitted.
            if unsafe { self.ring.submission().push(&self.backlog[done]) }.is_ok() {
                done += 1;
            } else if self.ring.submit().is_err() {
                break;
            }
        }
        self.backlog.drain(..done);
    }

    /// Polls the stop handle's socket (again).
    pub(super) fn arm_stop_poll(&mut self) {
        let Some(stop) = &self.stop else {
            return;
        };
        let entry = opcode::PollAdd::new(types::Fd(stop.as_raw_fd()), libc::POLLIN as u32)
            .build()
            .user_data(user_data(0, STOP));
        // SAFETY: a poll refers to no memory of ours; the descriptor stays open as long as
        // the loop (which owns it).
        unsafe { self.push(entry) };
    }
}
