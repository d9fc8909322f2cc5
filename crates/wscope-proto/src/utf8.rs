//! Incremental UTF-8 validation across arbitrary chunk boundaries (RFC 6455 section 8.1).
//!
//! A text message may be split anywhere: between frames, between reads, inside a code point.
//! [`Utf8Validator`] keeps at most 3 bytes of an unfinished code point between chunks and fails
//! at the *first* byte that can no longer start or continue a valid sequence (the fail-fast
//! behaviour Autobahn case 6 checks), not at the end of the message. The bulk of each chunk is
//! validated with `simdutf8`.
//!
//! ```
//! use wscope_proto::utf8::Utf8Validator;
//!
//! let text = "κόσμε".as_bytes();
//! let mut v = Utf8Validator::new();
//! v.feed(&text[..1]).unwrap(); // inside the first code point
//! v.feed(&text[1..]).unwrap();
//! v.finish().unwrap();
//!
//! let mut v = Utf8Validator::new();
//! assert!(v.feed(&[0xce, 0xba, 0xed, 0xa0]).is_err()); // a surrogate fails at once
//! ```

use core::fmt;

/// Invalid UTF-8 was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Utf8Error {
    /// Index in the chunk just fed of the first byte that is not part of valid UTF-8
    /// (0 when the bad sequence began in an earlier chunk).
    pub valid_up_to: usize,
}

impl fmt::Display for Utf8Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid UTF-8 after {} bytes of the chunk",
            self.valid_up_to
        )
    }
}

impl core::error::Error for Utf8Error {}

/// Whole-buffer validation with the fast validator; returns the `str`.
pub fn from_utf8(bytes: &[u8]) -> Result<&str, Utf8Error> {
    simdutf8::compat::from_utf8(bytes).map_err(|e| Utf8Error {
        valid_up_to: e.valid_up_to(),
    })
}

/// Validates a byte stream fed in chunks.
#[derive(Clone, Debug, Default)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

/// Classification of a short byte sequence: valid and complete, a valid prefix, or invalid.
enum Prefix {
    Complete,
    Incomplete,
    Invalid,
}

fn classify(seq: &[u8]) -> Prefix {
    match simdutf8::compat::from_utf8(seq) {
        Ok(_) => Prefix::Complete,
        Err(e) if e.error_len().is_none() => Prefix::Incomplete,
        Err(_) => Prefix::Invalid,
    }
}

/// The length of the sequence that starts with `lead` (1–4), or 0 for an invalid lead byte.
const fn sequence_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 0,
    }
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub const fn new() -> Self {
        Self {
            partial: [0; 4],
            partial_len: 0,
        }
    }

    /// Validates the next chunk. Fails as soon as a byte makes the stream invalid, even if the
    /// code point it belongs to is not finished.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), Utf8Error> {
        let mut consumed_into_partial = 0;
        if self.partial_len > 0 {
            let have = self.partial_len as usize;
            let need = sequence_len(self.partial[0]);
            let take = (need - have).min(chunk.len());
            self.partial[have..have + take].copy_from_slice(&chunk[..take]);
            let seq = &self.partial[..have + take];
            match classify(seq) {
                Prefix::Complete => self.partial_len = 0,
                Prefix::Incomplete => {
                    self.partial_len = (have + take) as u8;
                    return Ok(());
                }
                Prefix::Invalid => {
                    self.partial_len = 0;
                    return Err(Utf8Error { valid_up_to: 0 });
                }
            }
            chunk = &chunk[take..];
            consumed_into_partial = take;
        }
        match simdutf8::compat::from_utf8(chunk) {
            Ok(_) => Ok(()),
            Err(e) => match e.error_len() {
                Some(_) => Err(Utf8Error {
                    valid_up_to: consumed_into_partial + e.valid_up_to(),
                }),
                None => {
                    // A valid prefix of a code point at the end of the chunk: keep it.
                    let tail = &chunk[e.valid_up_to()..];
                    self.partial[..tail.len()].copy_from_slice(tail);
                    self.partial_len = tail.len() as u8;
                    Ok(())
                }
            },
        }
    }

    /// Ends the message: fails if it stopped inside a code point. Resets the validator.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let incomplete = self.partial_len != 0;
        self.partial_len = 0;
        if incomplete {
            Err(Utf8Error { valid_up_to: 0 })
        } else {
            Ok(())
        }
    }

    /// Whether the validator is between code points.
    pub const fn is_boundary(&self) -> bool {
        self.partial_len == 0
    }

    /// Forgets any partial code point.
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_ok(chunks: &[&[u8]]) -> bool {
        let mut v = Utf8Validator::new();
        chunks.iter().all(|c| v.feed(c).is_ok()) && v.finish().is_ok()
    }

    #[test]
    fn splits_inside_code_points() {
        let s = "Hello-µ@ßöäüàá-UTF-8!! κόσμε 😀".as_bytes();
        for i in 0..s.len() {
            for j in i..s.len() {
                assert!(stream_ok(&[&s[..i], &s[i..j], &s[j..]]), "{i} {j}");
            }
        }
    }

    #[test]
    fn fails_fast() {
        // Autobahn 6.4.1: valid prefix, then a byte (0xf4 0x90) beyond U+10FFFF in the next chunk.
        let mut v = Utf8Validator::new();
        v.feed("κόσμε".as_bytes()).unwrap();
        v.feed(&[0xf4]).unwrap();
        assert!(v.feed(&[0x90]).is_err());
        // Lone continuation, 5-byte form, overlong, surrogate.
        for bad in [
            &[0x80][..],
            &[0xf8],
            &[0xc0, 0xaf],
            &[0xed, 0xa0],
            &[0xe0, 0x80],
        ] {
            let mut v = Utf8Validator::new();
            assert!(v.feed(bad).is_err(), "{bad:?}");
        }
        // Truncated at the end of the message.
        let mut v = Utf8Validator::new();
        v.feed(&[0xe2, 0x82]).unwrap();
        assert!(v.finish().is_err());
        // Noncharacters are valid.
        assert!(stream_ok(&["\u{fffe}\u{ffff}".as_bytes()]));
    }

    #[test]
    fn byte_at_a_time_matches_std() {
        let cases: [&[u8]; 6] = [
            b"plain ascii",
            "ß€😀".as_bytes(),
            &[0xe2, 0x28, 0xa1],
            &[0xf0, 0x9f, 0x98],
            &[
                0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80,
            ],
            &[0xf4, 0x8f, 0xbf, 0xbf],
        ];
        for c in cases {
            let mut v = Utf8Validator::new();
            let ok =
                c.iter().all(|b| v.feed(core::slice::from_ref(b)).is_ok()) && v.finish().is_ok();
            assert_eq!(ok, core::str::from_utf8(c).is_ok(), "{c:?}");
        }
    }
}
