//! Time as data: the core never reads a clock.
//!
//! [`Instant`] is a count of microseconds since an origin the caller chooses (process start,
//! the first packet of a capture). Drivers convert from `std::time::Instant`; the analyzer
//! uses packet timestamps, so its runs are deterministic.

use core::fmt;
use core::ops::{Add, Sub};

/// A span of time in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[allow(
    clippy::exhaustive_structs,
    reason = "closed: a count of nanoseconds, nothing more"
)]
pub struct Duration(pub u64);

impl Duration {
    /// Zero.
    pub const ZERO: Self = Self(0);

    /// From whole milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms.saturating_mul(1000))
    }

    /// From whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        Self(s.saturating_mul(1_000_000))
    }

    /// From microseconds.
    pub const fn from_micros(us: u64) -> Self {
        Self(us)
    }

    /// In microseconds.
    pub const fn as_micros(self) -> u64 {
        self.0
    }
}

impl From<core::time::Duration> for Duration {
    fn from(d: core::time::Duration) -> Self {
        Self(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }
}

impl From<Duration> for core::time::Duration {
    fn from(d: Duration) -> Self {
        Self::from_micros(d.0)
    }
}

/// A point in time: microseconds since a caller-chosen origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[allow(
    clippy::exhaustive_structs,
    reason = "closed: a count of nanoseconds, nothing more"
)]
pub struct Instant(pub u64);

impl Instant {
    /// The origin.
    pub const ZERO: Self = Self(0);

    /// From microseconds since the origin.
    pub const fn from_micros(us: u64) -> Self {
        Self(us)
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self` (zero if `earlier` is later).
    pub const fn saturating_since(self, earlier: Self) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Self;
    fn add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d.0))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Self) -> Duration {
        self.saturating_since(earlier)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}
