//! TLS between the ring and a connection (`wss://` on the io_uring server): rustls' server
//! connection, fed the ciphertext the kernel received and asked for the ciphertext to send.
//!
//! The kernel never sees a connection's plaintext buffers under TLS: receives land in
//! [`TlsLayer::cipher_in`] (or the loop's provided buffers), sends leave from
//! [`TlsLayer::cipher_out`]. Plaintext moves between rustls and the session with ordinary
//! copies, so the buffer rules of the module docs apply to these two buffers only: `cipher_in`
//! is not touched while a one-shot receive is in flight, and `cipher_out` is neither appended
//! to nor cleared while a send is.

use std::io::{IoSlice, Read, Write};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};

/// Size of the ciphertext receive buffer (one-shot receives): four full TLS records.
const CIPHER_IN: usize = 4 * (16 * 1024 + 256);

/// Plaintext rustls takes from the write queue before the ciphertext is sent: the write
/// queue, not rustls, holds the backlog the session's backpressure is judged on.
const PLAIN_LIMIT: usize = 64 * 1024;

/// What reading decrypted bytes gave.
pub(super) enum Plain {
    /// This many bytes.
    Bytes(usize),
    /// Nothing decrypted is waiting.
    Empty,
    /// The peer's `close_notify`: no more application data.
    Closed,
}

/// One connection's TLS state and ciphertext buffers.
pub(super) struct TlsLayer {
    conn: ServerConnection,
    /// Target of one-shot receives (all of it, `CIPHER_IN` bytes).
    pub(super) cipher_in: Vec<u8>,
    /// Ciphertext to send; `cipher_out[sent..]` is left (and in flight while a send is).
    cipher_out: Vec<u8>,
    sent: usize,
    /// rustls refused the peer's bytes: only the alert it queued goes out now.
    pub(super) broken: bool,
    /// `close_notify` was queued.
    notified: bool,
}

impl TlsLayer {
    /// A server connection on `cfg`.
    pub(super) fn new(cfg: Arc<ServerConfig>) -> Result<Self, rustls::Error> {
        let mut conn = ServerConnection::new(cfg)?;
        conn.set_buffer_limit(Some(PLAIN_LIMIT));
        Ok(Self {
            conn,
            cipher_in: vec![0; CIPHER_IN],
            cipher_out: Vec::new(),
            sent: 0,
            broken: false,
            notified: false,
        })
    }

    /// Takes as much of `cipher` as rustls accepts now and decrypts it; the caller then reads
    /// the plaintext out ([`Self::read_plain`]) before offering the rest. Errors are the
    /// peer's fault (a bad record, a failed handshake): the alert is queued to send.
    pub(super) fn absorb(&mut self, cipher: &mut &[u8]) -> Result<(), crate::Error> {
        if self.broken || cipher.is_empty() {
            *cipher = &[];
            return Ok(());
        }
        let r = self
            .conn
            .read_tls(cipher)
            .map_err(crate::Error::Io)
            .and_then(|_| self.conn.process_new_packets().map_err(crate::Error::Tls));
        if r.is_err() {
            self.broken = true;
            *cipher = &[];
        }
        r.map(drop)
    }

    /// Copies decrypted bytes into `buf`.
    pub(super) fn read_plain(&mut self, buf: &mut [u8]) -> Plain {
        if buf.is_empty() {
            return Plain::Empty;
        }
        match self.conn.reader().read(buf) {
            Ok(0) => Plain::Closed,
            Ok(n) => Plain::Bytes(n),
            // `WouldBlock`: nothing yet. (`UnexpectedEof` needs the end of the stream, which
            // the loop never reports to rustls: it handles the transport's end itself.)
            Err(_) => Plain::Empty,
        }
    }

    /// Hands rustls plaintext to encrypt from `slices` (in order) and gathers the records into
    /// the ciphertext to send; returns how many plaintext bytes it took, which the caller
    /// removes from where they came from. Nothing after a failure or `close_notify`. Call only
    /// with no send in flight (see [`Self::fill`]).
    pub(super) fn encrypt(&mut self, slices: &[IoSlice<'_>]) -> usize {
        if self.broken || self.notified {
            return 0;
        }
        let took = self.conn.writer().write_vectored(slices).unwrap_or(0);
        self.fill();
        took
    }

    /// Queues `close_notify` (once).
    pub(super) fn close_notify(&mut self) {
        if !self.notified && !self.broken {
            self.notified = true;
            self.conn.send_close_notify();
        }
    }

    /// Whether `close_notify` was queued.
    pub(super) const fn notified(&self) -> bool {
        self.notified
    }

    /// Ciphertext waits to be sent (in `cipher_out` or still inside rustls).
    pub(super) fn pending(&self) -> bool {
        self.sent < self.cipher_out.len() || self.conn.wants_write()
    }

    /// Moves what rustls has to send (handshake messages, records, alerts) into the
    /// ciphertext to send. Call only with no send in flight: the buffer may move.
    pub(super) fn fill(&mut self) {
        if self.sent == self.cipher_out.len() {
            self.cipher_out.clear();
            self.sent = 0;
        }
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.cipher_out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    /// The ciphertext not sent yet: what the next send takes (the kernel's until
    /// [`Self::sent`] is called with the send's result).
    pub(super) fn unsent(&self) -> &[u8] {
        &self.cipher_out[self.sent..]
    }

    /// Records `n` bytes of [`Self::out`] as sent.
    pub(super) fn sent(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.cipher_out.len());
    }
}
