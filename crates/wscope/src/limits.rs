//! Connection limits for servers: at most so many connections at once, in all and per client
//! IP address ([`ConnectionLimits`]). A server takes a [`Permit`] for each accepted
//! connection and refuses the connection (`503 Service Unavailable`) when none is left; the
//! permit is given back when it is dropped. One `ConnectionLimits` may be shared (it is a
//! handle) by several servers, e.g. the `SO_REUSEPORT` servers of one port, so the limits hold
//! for all of them together.
//!
//! ```
//! use wscope::limits::ConnectionLimits;
//!
//! let limits = ConnectionLimits::new(Some(2), Some(1));
//! let a = limits.acquire([10, 0, 0, 1].into()).unwrap();
//! assert!(limits.acquire([10, 0, 0, 1].into()).is_err()); // one per address
//! let _b = limits.acquire([10, 0, 0, 2].into()).unwrap();
//! assert!(limits.acquire([10, 0, 0, 3].into()).is_err()); // two in all
//! drop(a);
//! assert!(limits.acquire([10, 0, 0, 3].into()).is_ok());
//! ```

use core::fmt;
use core::net::IpAddr;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The limits and the connections counted against them (a cheap handle: clones share the
/// counts).
#[derive(Clone, Debug, Default)]
pub struct ConnectionLimits {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    total: Option<usize>,
    per_ip: Option<usize>,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl ConnectionLimits {
    /// At most `total` connections at once, and at most `per_ip` from one IP address (`None`:
    /// no limit).
    pub fn new(total: Option<usize>, per_ip: Option<usize>) -> Self {
        Self {
            inner: Arc::new(Inner {
                total,
                per_ip,
                counts: Mutex::new(Counts::default()),
            }),
        }
    }

    /// Counts a new connection from `ip`, or says which limit it would pass.
    pub fn acquire(&self, ip: IpAddr) -> Result<Permit, LimitExceeded> {
        let mut c = self.counts();
        if let Some(limit) = self.inner.total.filter(|&max| c.total >= max) {
            return Err(LimitExceeded::Total { limit });
        }
        let from_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
        if let Some(limit) = self.inner.per_ip.filter(|&max| from_ip >= max) {
            return Err(LimitExceeded::PerIp { ip, limit });
        }
        c.total += 1;
        *c.per_ip.entry(ip).or_insert(0) += 1;
        Ok(Permit {
            limits: self.clone(),
            ip,
        })
    }

    /// The connections counted now.
    pub fn count(&self) -> usize {
        self.counts().total
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts stay consistent even if a holder panicked: every update is one step.
        self.inner
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One connection counted against [`ConnectionLimits`]; dropping it gives the place back.
#[derive(Debug)]
pub struct Permit {
    limits: ConnectionLimits,
    ip: IpAddr,
}

impl Permit {
    /// The address the connection comes from.
    pub const fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.limits.counts();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

/// The limit a refused connection would have passed; servers answer it with 503.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitExceeded {
    /// `limit` connections from `ip` are open already.
    PerIp {
        /// The client's address.
        ip: IpAddr,
        /// The per-address limit.
        limit: usize,
    },
    /// `limit` connections are open already.
    Total {
        /// The limit.
        limit: usize,
    },
}

impl LimitExceeded {
    /// The HTTP status a server answers with: 503 Service Unavailable.
    pub const fn http_status(&self) -> u16 {
        503
    }

    /// The whole response a server refuses with: `503 Service Unavailable`, `Retry-After: 1`
    /// and a short plain-text body naming the limit.
    pub fn response(&self) -> Vec<u8> {
        let status = self.http_status();
        let body = format!("{status}: {self}.\nThis is a WebSocket endpoint; try again later.\n");
        let mut response = Vec::new();
        let _ = wscope_proto::handshake::ResponseBuilder::status(
            status,
            wscope_proto::handshake::reason_phrase(status),
        )
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Retry-After", "1")
        .body(body.as_bytes())
        .write(&mut response);
        response
    }
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PerIp { ip, limit } => {
                write!(f, "{limit} connection(s) already open from {ip}")
            }
            Self::Total { limit } => write!(f, "{limit} connection(s) already open"),
        }
    }
}

impl core::error::Error for LimitExceeded {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_503_that_names_the_limit() {
        let r = LimitExceeded::Total { limit: 3 }.response();
        let text = String::from_utf8(r).expect("ascii");
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
        assert!(text.contains("Retry-After: 1\r\n"), "{text}");
        assert!(text.ends_with("503: 3 connection(s) already open.\nThis is a WebSocket endpoint; try again later.\n"), "{text}");
    }

    #[test]
    fn counts_per_address_and_in_all_and_gives_places_back() {
        let limits = ConnectionLimits::new(Some(3), Some(2));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = limits.acquire(a).unwrap();
        let a2 = limits.acquire(a).unwrap();
        assert_eq!(
            limits.acquire(a).unwrap_err(),
            LimitExceeded::PerIp { ip: a, limit: 2 }
        );
        let b1 = limits.acquire(b).unwrap();
        assert_eq!(
            limits.acquire(b).unwrap_err(),
            LimitExceeded::Total { limit: 3 }
        );
        assert_eq!(limits.count(), 3);
        drop(a1);
        let shared = limits.clone();
        let a3 = shared.acquire(a).unwrap();
        assert_eq!(a3.ip(), a);
        drop((a2, a3, b1));
        assert_eq!(limits.count(), 0);
        assert_eq!(
            LimitExceeded::Total { limit: 3 }.to_string(),
            "3 connection(s) already open"
        );
        // No limits: anything goes.
        let free = ConnectionLimits::default();
        let many: Vec<_> = (0..100).map(|_| free.acquire(a).unwrap()).collect();
        assert_eq!(free.count(), many.len());
    }
}
