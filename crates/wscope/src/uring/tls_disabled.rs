//! The io_uring server's TLS layer in a build without the `rustls` feature: the same names as
//! `tls.rs`, but no `TlsLayer` can exist (it holds an uninhabited field), so every TLS path of
//! the loop is statically dead and a connection's `tls` is always `None`.

use core::convert::Infallible;
use std::io::IoSlice;

/// What reading decrypted bytes gave (never produced without TLS).
#[allow(dead_code)]
pub(super) enum Plain {
    /// This many bytes.
    Bytes(usize),
    /// Nothing decrypted is waiting.
    Empty,
    /// The peer's `close_notify`: no more application data.
    Closed,
}

/// No TLS: a value of this type cannot be made.
pub(super) struct TlsLayer {
    /// As in `tls.rs` (never read: there is no layer).
    pub(super) cipher_in: Vec<u8>,
    /// As in `tls.rs` (never read: there is no layer).
    pub(super) broken: bool,
    never: Infallible,
}

#[allow(clippy::unused_self)]
impl TlsLayer {
    pub(super) fn absorb(&mut self, _cipher: &mut &[u8]) -> Result<(), crate::Error> {
        match self.never {}
    }

    pub(super) fn read_plain(&mut self, _buf: &mut [u8]) -> Plain {
        match self.never {}
    }

    pub(super) fn encrypt(&mut self, _slices: &[IoSlice<'_>]) -> usize {
        match self.never {}
    }

    pub(super) fn close_notify(&mut self) {
        match self.never {}
    }

    pub(super) fn pending(&self) -> bool {
        match self.never {}
    }

    pub(super) fn notified(&self) -> bool {
        match self.never {}
    }

    pub(super) fn fill(&mut self) {
        match self.never {}
    }

    pub(super) fn unsent(&self) -> &[u8] {
        match self.never {}
    }

    pub(super) fn sent(&mut self, _n: usize) {
        match self.never {}
    }
}
