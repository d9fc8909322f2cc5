//! The clock the drivers read for the core, which never does (time is data there).

use core::time::Duration as StdDuration;
use std::time::Instant as StdInstant;

use wscope_proto::Instant;

/// Reads the clock for the core, which never does (time is data there).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    origin: StdInstant,
}

impl Clock {
    #[allow(clippy::disallowed_methods)] // drivers are where the clock is read
    pub(crate) fn new() -> Self {
        Self {
            origin: StdInstant::now(),
        }
    }

    #[allow(clippy::disallowed_methods)]
    pub(crate) fn now_std() -> StdInstant {
        StdInstant::now()
    }

    pub(crate) fn now(&self) -> Instant {
        self.core_instant(Self::now_std())
    }

    pub(crate) fn core_instant(self, t: StdInstant) -> Instant {
        let us = t.saturating_duration_since(self.origin).as_micros();
        Instant::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
    }

    pub(crate) fn std_instant(self, t: Instant) -> StdInstant {
        self.origin + StdDuration::from_micros(t.as_micros())
    }
}
