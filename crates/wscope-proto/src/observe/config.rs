//! The observer's settings: [`ObserverConfig`] and the [`UpgradePolicy`] for handshake problems.

use crate::handshake::Limits;

#[cfg(doc)]
use super::{Anomaly, ObservedEvent, Observer};
#[cfg(doc)]
use crate::error::ProtocolError;

/// How the observer treats handshake problems after a `101` to WebSocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpgradePolicy {
    /// Zeek: each problem is an [`Anomaly`] and frames are decoded anyway.
    Lenient,
    /// Net::Inspect: the first problem (a wrong accept value included) is
    /// [`ObservedEvent::BadUpgrade`] and the connection is not analysed further.
    Strict,
}

/// Settings of an [`Observer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObserverConfig {
    /// Size limits for each HTTP head; a head over them is an anomaly and ends the analysis.
    pub limits: Limits,
    /// Lenient (report) or strict (stop) about handshake problems.
    pub policy: UpgradePolicy,
    /// Check that text messages are UTF-8 ([`ProtocolError::InvalidUtf8`] anomalies).
    pub validate_utf8: bool,
    /// Messages longer than this are reported ([`ProtocolError::MessageTooLarge`]).
    pub max_message_len: u64,
    /// Frames longer than this are reported ([`ProtocolError::FrameTooLarge`]).
    pub max_frame_len: u64,
    /// After framing is lost, look for the next plausible frame header (a supported opcode,
    /// reserved bits only as negotiated, the mask bit this direction has been using, a control
    /// frame final and at most 125 bytes, a minimal length of at most
    /// [`ObserverConfig::resync_max_frame_len`], and not a continuation). With `false`, the
    /// direction stays lost, as Zeek does after any gap.
    pub resync: bool,
    /// The longest frame accepted as a resynchronisation point (and never more than
    /// [`ObserverConfig::max_frame_len`], a limit the peers are known to keep).
    pub resync_max_frame_len: u64,
    /// Requests waiting for their response (pipelining) beyond this end the analysis.
    pub max_pending_requests: usize,
    /// Inflate permessage-deflate messages (feature `deflate`): their inflated bytes come out
    /// as [`ObservedEvent::Inflated`], and what breaks the rules an endpoint enforces on them
    /// (corrupt data, the cap, invalid UTF-8 of inflated text) as [`Anomaly::Protocol`], through
    /// the endpoint's own message layer (`deflate::MessageInflater`).
    pub inflate: bool,
    /// The cap on an inflated message, with [`ObserverConfig::max_message_len`] (the smaller
    /// of the two applies): beyond, [`ProtocolError::MessageTooLarge`] is reported and the
    /// rest of the message is not inflated. It bounds the memory a decompression bomb takes.
    pub max_inflated_message_len: u64,
}

/// Builder methods, one per field and of the same name: start from `ObserverConfig::default()` (or
/// a constructor) and chain them; the struct is `#[non_exhaustive]`, so fields may be added without
/// breaking callers.
impl ObserverConfig {
    /// Sets [`ObserverConfig::limits`]: size limits for each HTTP head; a head over them is an
    /// anomaly and ends the analysis.
    #[must_use]
    pub const fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`ObserverConfig::policy`]: lenient (report) or strict (stop) about handshake problems.
    #[must_use]
    pub const fn policy(mut self, policy: UpgradePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets [`ObserverConfig::validate_utf8`]: check that text messages are UTF-8
    /// ([`ProtocolError::InvalidUtf8`] anomalies).
    #[must_use]
    pub const fn validate_utf8(mut self, validate_utf8: bool) -> Self {
        self.validate_utf8 = validate_utf8;
        self
    }

    /// Sets [`ObserverConfig::max_message_len`]: messages longer than this are reported
    /// ([`ProtocolError::MessageTooLarge`]).
    #[must_use]
    pub const fn max_message_len(mut self, max_message_len: u64) -> Self {
        self.max_message_len = max_message_len;
        self
    }

    /// Sets [`ObserverConfig::max_frame_len`]: frames longer than this are reported
    /// ([`ProtocolError::FrameTooLarge`]).
    #[must_use]
    pub const fn max_frame_len(mut self, max_frame_len: u64) -> Self {
        self.max_frame_len = max_frame_len;
        self
    }

    /// Sets [`ObserverConfig::resync`]: after framing is lost, look for the next plausible frame
    /// header (a supported opcode, reserved bits only as negotiated, the mask bit this direction
    /// has been using, a control frame final and at most 125 bytes, a minimal length of at most
    /// [`ObserverConfig::resync_max_frame_len`], and not a continuation).
    #[must_use]
    pub const fn resync(mut self, resync: bool) -> Self {
        self.resync = resync;
        self
    }

    /// Sets [`ObserverConfig::resync_max_frame_len`]: the longest frame accepted as a
    /// resynchronisation point (and never more than [`ObserverConfig::max_frame_len`], a limit the
    /// peers are known to keep).
    #[must_use]
    pub const fn resync_max_frame_len(mut self, resync_max_frame_len: u64) -> Self {
        self.resync_max_frame_len = resync_max_frame_len;
        self
    }

    /// Sets [`ObserverConfig::max_pending_requests`]: requests waiting for their response
    /// (pipelining) beyond this end the analysis.
    #[must_use]
    pub const fn max_pending_requests(mut self, max_pending_requests: usize) -> Self {
        self.max_pending_requests = max_pending_requests;
        self
    }

    /// Sets [`ObserverConfig::inflate`]: inflate permessage-deflate messages (feature `deflate`):
    /// their inflated bytes come out as [`ObservedEvent::Inflated`], and what breaks the rules an
    /// endpoint enforces on them (corrupt data, the cap, invalid UTF-8 of inflated text) as
    /// [`Anomaly::Protocol`], through the endpoint's own message layer
    /// (`deflate::MessageInflater`).
    #[must_use]
    pub const fn inflate(mut self, inflate: bool) -> Self {
        self.inflate = inflate;
        self
    }

    /// Sets [`ObserverConfig::max_inflated_message_len`]: the cap on an inflated message, with
    /// [`ObserverConfig::max_message_len`] (the smaller of the two applies): beyond,
    /// [`ProtocolError::MessageTooLarge`] is reported and the rest of the message is not inflated.
    #[must_use]
    pub const fn max_inflated_message_len(mut self, max_inflated_message_len: u64) -> Self {
        self.max_inflated_message_len = max_inflated_message_len;
        self
    }
}

impl ObserverConfig {
    /// The longest frame a resynchronisation may start at or pass through:
    /// [`ObserverConfig::resync_max_frame_len`], bounded by [`ObserverConfig::max_frame_len`].
    pub const fn resync_max_len(&self) -> u64 {
        if self.max_frame_len < self.resync_max_frame_len {
            self.max_frame_len
        } else {
            self.resync_max_frame_len
        }
    }

    /// The cap on an inflated message: the smaller of [`ObserverConfig::max_message_len`] and
    /// [`ObserverConfig::max_inflated_message_len`].
    pub const fn inflated_message_cap(&self) -> u64 {
        if self.max_message_len < self.max_inflated_message_len {
            self.max_message_len
        } else {
            self.max_inflated_message_len
        }
    }
}

impl Default for ObserverConfig {
    /// Default [`Limits`] (16 KiB heads), lenient, UTF-8 checked, no size limits, resync on
    /// with frames up to 1 MiB, 32 pending requests, compressed messages inflated up to
    /// 64 MiB.
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            policy: UpgradePolicy::Lenient,
            validate_utf8: true,
            max_message_len: u64::MAX,
            max_frame_len: u64::MAX,
            resync: true,
            resync_max_frame_len: 1 << 20,
            max_pending_requests: 32,
            inflate: true,
            max_inflated_message_len: 64 << 20,
        }
    }
}
