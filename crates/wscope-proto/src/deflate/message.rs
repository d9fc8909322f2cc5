//! The message layer of permessage-deflate: one answer, for endpoints and observers alike, to
//! "is this compressed message valid, and what does it inflate to".
//!
//! A [`MessageInflater`] takes the payload chunks of compressed messages
//! ([`crate::message::MessageEvent::Data`] with `compressed: true`) of one direction, inflates
//! them with the direction's [`Inflater`] within the message cap, and validates inflated text
//! incrementally with [`Utf8Validator`]. A violation is a [`ProtocolError`], so its close code
//! ([`ProtocolError::close_code`]: 1007 or 1009) and its name in logs ([`ProtocolError::name`])
//! come from one place:
//!
//! | what | error | close |
//! |---|---|---|
//! | the data is not valid DEFLATE | [`ProtocolError::InflateFailed`] | 1007 |
//! | the inflated message passes the cap | [`ProtocolError::MessageTooLarge`] | 1009 |
//! | inflated text is not UTF-8 | [`ProtocolError::InvalidUtf8`] | 1007 |
//!
//! The first error in the stream wins, however the message was cut into chunks: the bytes a
//! chunk inflated to before an inflate error are validated first. Those bytes (cut to the cap)
//! are still delivered ([`MessageInflater::output`]): an analyzer digests and extracts them.
//! [`Connection`](crate::connection::Connection) runs it in [`Strictness::Enforce`] (the first
//! error fails the connection); the [`Observer`](crate::observe::Observer) in
//! [`Strictness::Report`], where a message goes on inflating after invalid UTF-8 (reported once)
//! and stops after an inflate error (its later chunks are skipped). In report mode a chunk
//! that breaks both rules (invalid UTF-8 in what it inflated to, then an inflate error) returns
//! the first and keeps the second for [`MessageInflater::take_second_error`], so the errors
//! reported do not depend on where the chunks were cut.
//!
//! ```
//! use wscope_proto::decoder::Strictness;
//! use wscope_proto::deflate::{Deflater, MessageInflater};
//! use wscope_proto::ProtocolError;
//!
//! let mut tx = Deflater::new(6, 15, false);
//! let mut rx = MessageInflater::new(false, 1 << 20, true, Strictness::Enforce);
//! let mut wire = Vec::new();
//! tx.compress("héllo".as_bytes(), true, &mut wire);
//! let text = rx.push(&wire, true, true, true).unwrap();
//! assert_eq!(text, Some("héllo".as_bytes()));
//! // A compressed "text" that is not UTF-8: 1007.
//! wire.clear();
//! tx.compress(&[0x68, 0xff], true, &mut wire);
//! let err = rx.push(&wire, true, true, true).unwrap_err();
//! assert_eq!((err, err.close_code().0), (ProtocolError::InvalidUtf8, 1007));
//! ```

use core::fmt;

use super::codec::{InflateError, Inflater};
use crate::decoder::Strictness;
use crate::error::ProtocolError;
use crate::utf8::Utf8Validator;

/// Inflates and validates the compressed messages of one direction (see the
/// [module docs](self)).
pub struct MessageInflater {
    inflater: Inflater,
    utf8: Utf8Validator,
    max_message_len: u64,
    validate_utf8: bool,
    strictness: Strictness,
    /// The current message is text still being validated.
    checking: bool,
    /// The current message stopped: its later chunks are skipped.
    stopped: bool,
    /// Bytes of the inflater's output to deliver (the output cut to the cap).
    delivered: usize,
    /// Report mode: the inflate error that the last chunk met after invalid UTF-8.
    second: Option<ProtocolError>,
}

impl fmt::Debug for MessageInflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageInflater")
            .field("inflater", &self.inflater)
            .field("max_message_len", &self.max_message_len)
            .field("strictness", &self.strictness)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl MessageInflater {
    /// A message inflater; `no_context_takeover` says the sender resets its context after each
    /// message; inflated messages may be at most `max_message_len` bytes; inflated text is
    /// checked with `validate_utf8`. Allocates nothing until the first message.
    pub const fn new(
        no_context_takeover: bool,
        max_message_len: u64,
        validate_utf8: bool,
        strictness: Strictness,
    ) -> Self {
        Self {
            inflater: Inflater::new(no_context_takeover),
            utf8: Utf8Validator::new(),
            max_message_len,
            validate_utf8,
            strictness,
            checking: false,
            stopped: false,
            delivered: 0,
            second: None,
        }
    }

    /// Inflates the next payload chunk of a compressed message: `text` for a text message,
    /// `first` for its first chunk, `message_end` for its last.
    ///
    /// `Ok(Some(bytes))`: what the chunk inflated to (often empty: deflate output lags its
    /// input). `Ok(None)`: the message stopped at an earlier error and the chunk was skipped.
    /// `Err`: the first rule this chunk breaks; [`Self::output`] then holds the bytes inflated
    /// before it (cut to the cap), to deliver before the error.
    pub fn push(
        &mut self,
        chunk: &[u8],
        text: bool,
        first: bool,
        message_end: bool,
    ) -> Result<Option<&[u8]>, ProtocolError> {
        self.delivered = 0;
        self.second = None;
        if first {
            if self.inflater.in_message() {
                // The last message never ended (an observer lost its end): its stream is no
                // base for this one.
                self.inflater.abandon_message();
            }
            self.stopped = false;
            self.checking = self.validate_utf8 && text;
            self.utf8.reset();
        }
        if self.stopped {
            return Ok(None);
        }
        let inflated = self
            .inflater
            .inflate(chunk, message_end, self.max_message_len);
        let out = self.inflater.output();
        let mut result = inflated
            .map(|_| ())
            .map_err(InflateError::to_protocol_error);
        if self.checking {
            // Also after an inflate error: the bytes inflated before it come first in the
            // stream, so invalid UTF-8 among them is the error to report, however the chunks
            // cut the message (1007 rather than a 1009 that a whole read would find first).
            let mut ok = self.utf8.feed(out).is_ok();
            if ok && message_end && result.is_ok() {
                ok = self.utf8.finish().is_ok();
            }
            if !ok {
                // The inflate error comes after the text: an observer reports it too (a later
                // chunk would have met it had the message been cut before it).
                if let (Err(e), Strictness::Report) = (result, self.strictness) {
                    self.second = Some(e);
                }
                result = Err(ProtocolError::InvalidUtf8);
                self.checking = false;
            }
        }
        // Past the cap the inflater produced one byte more than allowed (to tell "too large"
        // from "exactly at the cap"): it is not the message's.
        self.delivered = match inflated {
            Err(InflateError::TooLarge { .. }) => out.len().saturating_sub(1),
            _ => out.len(),
        };
        match result {
            Ok(()) => Ok(Some(self.output())),
            Err(e) => {
                // The inflater ended the message after its own errors; after invalid UTF-8
                // only an enforcing receiver stops (it fails the connection anyway).
                self.stopped = inflated.is_err() || self.strictness == Strictness::Enforce;
                Err(e)
            }
        }
    }

    /// Report mode: the second rule the last [`Self::push`] broke, after the invalid UTF-8 it
    /// returned: the inflate error (or the cap) that the chunk met after the text. Taken once.
    pub const fn take_second_error(&mut self) -> Option<ProtocolError> {
        self.second.take()
    }

    /// What the last [`Self::push`] inflated to (before its error, if any), cut to the cap.
    pub fn output(&self) -> &[u8] {
        self.inflater.output().get(..self.delivered).unwrap_or(&[])
    }

    /// Whether the current message stopped at an error (its later chunks are skipped).
    pub const fn stopped(&self) -> bool {
        self.stopped
    }

    /// The cap on an inflated message, in bytes.
    pub const fn max_message_len(&self) -> u64 {
        self.max_message_len
    }

    /// Whether a zlib context is allocated now.
    pub const fn has_context(&self) -> bool {
        self.inflater.has_context()
    }

    /// Bytes of output storage held (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.inflater.capacity()
    }

    /// Between messages, frees output storage the next message may not need
    /// ([`Inflater::release`]); [`Self::output`] is empty after. Does nothing in the middle of
    /// a message.
    pub fn release(&mut self) {
        self.inflater.release();
        if self.inflater.output().is_empty() {
            self.delivered = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use super::*;
    use crate::deflate::Deflater;

    fn compressed(data: &[u8]) -> Vec<u8> {
        let mut wire = Vec::new();
        Deflater::new(6, 15, false).compress(data, true, &mut wire);
        wire
    }

    /// Pushes `wire` in pieces of `split` bytes; returns what was delivered and the first
    /// error.
    fn run(
        rx: &mut MessageInflater,
        wire: &[u8],
        split: usize,
    ) -> (Vec<u8>, Option<ProtocolError>) {
        let mut got = Vec::new();
        let pieces: Vec<&[u8]> = wire.chunks(split.max(1)).collect();
        let n = pieces.len().max(1);
        for i in 0..n {
            let piece = pieces.get(i).copied().unwrap_or(&[]);
            match rx.push(piece, true, i == 0, i + 1 == n) {
                Ok(Some(out)) => got.extend_from_slice(out),
                Ok(None) => {}
                Err(e) => {
                    got.extend_from_slice(rx.output());
                    return (got, Some(e));
                }
            }
        }
        (got, None)
    }

    #[test]
    fn the_first_error_in_the_stream_wins_however_split() {
        // Invalid UTF-8 at byte 0 of a message far over the cap: 1007, not 1009.
        let mut text = vec![b'a'; 100_000];
        text[0] = 0xff;
        let wire = compressed(&text);
        for split in [1, 3, 100, wire.len()] {
            let mut rx = MessageInflater::new(false, 3000, true, Strictness::Enforce);
            assert_eq!(
                run(&mut rx, &wire, split).1,
                Some(ProtocolError::InvalidUtf8)
            );
        }
        // Valid text over the cap: 1009, with exactly the cap delivered.
        let wire = compressed(&vec![b'a'; 100_000]);
        for split in [1, 7, wire.len()] {
            let mut rx = MessageInflater::new(false, 3000, true, Strictness::Report);
            let (got, err) = run(&mut rx, &wire, split);
            assert_eq!(err, Some(ProtocolError::MessageTooLarge { max: 3000 }));
            assert_eq!(got.len(), 3000, "split {split}");
        }
    }

    #[test]
    fn bytes_before_corruption_are_delivered() {
        let mut c = Vec::new();
        Deflater::new(6, 15, false).compress(b"a valid start", false, &mut c);
        c.extend_from_slice(&[0xff; 16]);
        for split in [1, 5, c.len()] {
            let mut rx = MessageInflater::new(false, 1 << 20, true, Strictness::Report);
            let (got, err) = run(&mut rx, &c, split);
            assert_eq!(err, Some(ProtocolError::InflateFailed));
            assert_eq!(got, b"a valid start");
            assert!(rx.stopped());
        }
    }

    #[test]
    fn report_mode_reports_both_errors_of_one_chunk_as_split_chunks_would() {
        // Text that is not UTF-8, then corrupt DEFLATE: in report mode both are reported, in
        // stream order, whether one chunk or several carry them (the fuzzer found the whole
        // chunk reporting only the first); enforce mode stops at the first.
        let mut c = Vec::new();
        Deflater::new(6, 15, false).compress(b"bad \xff text", false, &mut c);
        c.extend_from_slice(&[0xff; 16]);
        for split in [1, 2, 5, c.len()] {
            let mut rx = MessageInflater::new(false, 1 << 20, true, Strictness::Report);
            let mut errors = Vec::new();
            let pieces: Vec<&[u8]> = c.chunks(split).collect();
            for (i, piece) in pieces.iter().enumerate() {
                if let Err(e) = rx.push(piece, true, i == 0, i + 1 == pieces.len()) {
                    errors.push(e);
                    errors.extend(rx.take_second_error());
                }
            }
            assert_eq!(
                errors,
                [ProtocolError::InvalidUtf8, ProtocolError::InflateFailed],
                "split {split}"
            );
            assert!(rx.stopped());
            assert_eq!(rx.take_second_error(), None);
        }
        let mut rx = MessageInflater::new(false, 1 << 20, true, Strictness::Enforce);
        assert_eq!(
            rx.push(&c, true, true, true),
            Err(ProtocolError::InvalidUtf8)
        );
        assert_eq!(rx.take_second_error(), None);
    }

    #[test]
    fn report_mode_goes_on_after_invalid_utf8_and_enforce_mode_stops() {
        let mut tx = Deflater::new(6, 15, false);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        tx.compress(&[0xc3], false, &mut a);
        tx.compress(b"(after)", true, &mut b);
        let mut report = MessageInflater::new(false, 1 << 20, true, Strictness::Report);
        // The first piece ends inside a sequence: fine so far.
        assert_eq!(report.push(&a, true, true, false), Ok(Some(&[0xc3][..])));
        assert_eq!(
            report.push(&b, true, false, true),
            Err(ProtocolError::InvalidUtf8)
        );
        assert_eq!(report.output(), b"(after)");
        assert!(!report.stopped());
        // Binary is not checked.
        let mut rx = MessageInflater::new(false, 1 << 20, true, Strictness::Enforce);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut tx = Deflater::new(6, 15, false);
        tx.compress(&[0xff], true, &mut a);
        tx.compress(&[0xff], true, &mut b);
        assert_eq!(rx.push(&a, false, true, true), Ok(Some(&[0xff][..])));
        assert_eq!(
            rx.push(&b, true, true, true),
            Err(ProtocolError::InvalidUtf8)
        );
        assert!(rx.stopped());
        assert_eq!(rx.push(&[], true, false, true), Ok(None));
    }
}
