//! Connection identifiers: a counter ([`ConnId`]) and a Zeek-style text uid ([`Uid`]).
//!
//! Zeek names each connection with a `C` followed by base62 digits of a random number. Ours
//! look the same but come from a seeded mix of the connection counter, so the same capture and
//! seed always give the same uids (runs can be diffed), while different seeds give unrelated
//! ones. A uid is stored inline (no allocation).

use core::fmt;

/// The n-th connection of a run, counting from 1 in the order connections are first seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Longest uid: `C` plus two 11-digit base62 halves.
const UID_MAX: usize = 1 + 11 + 11;

/// A Zeek-like connection uid such as `CcD4pNbhRyJfeRE3Mb`, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid {
    len: u8,
    bytes: [u8; UID_MAX],
}

impl Uid {
    /// The uid as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters and digits are ever written.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("C")
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uid({})", self.as_str())
    }
}

/// Makes uids from connection ids, deterministically for a given seed.
///
/// ```
/// use wscope_inspect::uid::{ConnId, UidGenerator};
/// let g = UidGenerator::new(0);
/// let a = g.uid(ConnId(1));
/// assert!(a.as_str().starts_with('C'));
/// assert_eq!(a, UidGenerator::new(0).uid(ConnId(1)));
/// assert_ne!(a, g.uid(ConnId(2)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UidGenerator {
    seed: u64,
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// SplitMix64 finaliser: a bijective, well-mixing map on u64.
const fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl UidGenerator {
    /// A generator for `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// The uid of connection `id`.
    pub fn uid(&self, id: ConnId) -> Uid {
        let hi = mix(self.seed ^ mix(id.0));
        let lo = mix(hi ^ self.seed.rotate_left(17) ^ id.0);
        Uid::from_halves(hi, lo)
    }
}

impl Uid {
    /// The uid of WebSocket stream `stream_id` of an HTTP/2 connection whose uid is `self`:
    /// deterministic (the same connection uid and stream give the same uid, whichever worker
    /// made it), unrelated to other streams' and connections' uids.
    ///
    /// ```
    /// use wscope_inspect::uid::{ConnId, UidGenerator};
    /// let c = UidGenerator::new(7).uid(ConnId(1));
    /// assert_ne!(c.for_stream(1), c.for_stream(3));
    /// assert_eq!(c.for_stream(1), c.for_stream(1));
    /// assert_ne!(c.for_stream(1), c);
    /// ```
    pub fn for_stream(&self, stream_id: u32) -> Self {
        // FNV-1a over the uid's text, then the same mixing as connection uids.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in &self.bytes[..usize::from(self.len)] {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let hi = mix(h ^ mix(u64::from(stream_id) | (1 << 40)));
        let lo = mix(hi ^ u64::from(stream_id));
        Self::from_halves(hi, lo)
    }

    fn from_halves(hi: u64, lo: u64) -> Self {
        let mut out = Uid {
            len: 1,
            bytes: [0; UID_MAX],
        };
        out.bytes[0] = b'C';
        // Zeek uids are 96 bits of base62; take 64 + 32 bits, like its 18-ish characters.
        for mut v in [hi, lo >> 32] {
            let mut digits = [0u8; 11];
            let mut n = 0;
            while v > 0 {
                digits[n] = BASE62[(v % 62) as usize];
                v /= 62;
                n += 1;
            }
            if n == 0 {
                digits[0] = b'0';
                n = 1;
            }
            for &d in digits[..n].iter().rev() {
                out.bytes[usize::from(out.len)] = d;
                out.len += 1;
            }
        }
        out
    }
}
