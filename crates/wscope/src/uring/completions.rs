//! An open connection's input and output on the io_uring server: the completions of its
//! receives (one-shot, multishot) and sends, TLS records in and plaintext out, and the drive
//! that decodes its input, hands messages to the service and queues its next operations.

use core::mem;
use core::time::Duration;
use std::io;
use std::time::Instant;

use io_uring::cqueue;
use wscope_proto::CloseCode;

use super::conn::{plaintext_into_session, tls_into_session, ConnState, Phase};
use super::event_loop::{retryable, EventLoop};
use super::ops::*;
use super::tls::{Plain, TlsLayer};
use super::{Conn, Service};
use crate::error::{Error, HandshakeError};
use crate::message::DataKind;
use crate::session::Incoming;

impl<S: Service> EventLoop<S> {
    pub(super) fn recv_done(&mut self, c: &mut ConnState, res: i32) {
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
    pub(super) fn multi_done(&mut self, c: &mut ConnState, res: i32, flags: u32, bid: Option<u16>) {
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

    pub(super) fn send_done(&mut self, c: &mut ConnState, res: i32) {
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

    /// Ciphertext arrived: rustls decrypts it and the plaintext goes where the phase wants
    /// it (the request head, the session's input). A TLS failure refuses the handshake or
    /// fails the session; either way only the alert goes out after it.
    pub(super) fn tls_received(&mut self, c: &mut ConnState, cipher: &[u8]) {
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
    pub(super) fn tls_plaintext(&mut self, c: &mut ConnState) {
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

    pub(super) fn drive_open(&mut self, c: &mut ConnState, now: Instant) {
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
}
