//! IP fragment reassembly for the packet decoder.
//!
//! IPv4 fragments and IPv6 packets with a fragment header are collected by `etherparse`'s
//! [`IpDefragPool`] until their datagram is whole; the datagram is then handed back for TCP
//! decoding like any unfragmented packet. The pool is kept bounded here: a datagram still
//! incomplete [`FRAGMENT_WINDOW`] fragments or [`FRAGMENT_TIMEOUT_US`] of capture time after
//! its last fragment is dropped, so a capture full of lone fragments (lost packets, an
//! attack) holds at most a fixed number of 64 KiB buffers.

use etherparse::defrag::{IpDefragError, IpDefragPayloadVec, IpDefragPool};
use etherparse::{IpNumber, SlicedPacket};
use wscope_proto::time::Instant;

/// A datagram whose last fragment is this many fragments old is given up.
pub const FRAGMENT_WINDOW: u64 = 512;
/// ... and so is one whose last fragment is this old in capture time (30 s, as Linux's
/// `ipfrag_time`).
pub const FRAGMENT_TIMEOUT_US: u64 = 30_000_000;
/// The pool is swept every this many fragments.
const SWEEP_EVERY: u64 = 64;

/// When a datagram's newest fragment arrived.
#[derive(Clone, Copy, Debug)]
struct Stamp {
    ts: Instant,
    seq: u64,
}

/// What one fragment did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fed {
    /// Kept; the datagram is not complete yet.
    Pending,
    /// The datagram is complete: its payload (the transport header and data) is in
    /// [`Defrag::datagram`], with this IP protocol number.
    Complete(IpNumber),
    /// The fragment cannot be used: cut by the snapshot length, malformed, or inconsistent
    /// with the fragments before it (overlapping ends, misaligned length, over 64 KiB).
    Rejected,
}

/// Fragments waiting for their datagram, bounded in count and age.
#[derive(Debug)]
pub(crate) struct Defrag {
    pool: IpDefragPool<Stamp, ()>,
    /// Fragments fed so far.
    fed: u64,
    /// The last completed datagram (its buffer goes back to the pool at the next completion).
    done: Option<IpDefragPayloadVec>,
}

impl Default for Defrag {
    fn default() -> Self {
        Self {
            pool: IpDefragPool::new(),
            fed: 0,
            done: None,
        }
    }
}

impl Defrag {
    /// Feeds one IP packet (starting at its IP header) that is a fragment.
    pub(crate) fn feed(&mut self, ip: &[u8], ts: Instant) -> Fed {
        self.fed += 1;
        if self.fed.is_multiple_of(SWEEP_EVERY) {
            self.sweep(ts);
        }
        let Ok(sliced) = SlicedPacket::from_ip(ip) else {
            return Fed::Rejected;
        };
        let stamp = Stamp { ts, seq: self.fed };
        match self.pool.process_sliced_packet(&sliced, stamp, ()) {
            Ok(None) => Fed::Pending,
            Ok(Some(datagram)) => {
                let proto = datagram.ip_number;
                if let Some(old) = self.done.replace(datagram) {
                    self.pool.return_buf(old);
                }
                Fed::Complete(proto)
            }
            Err(
                IpDefragError::UnalignedFragmentPayloadLen { .. }
                | IpDefragError::SegmentTooBig { .. }
                | IpDefragError::ConflictingEnd { .. }
                | IpDefragError::AllocationFailure { .. },
            ) => Fed::Rejected,
        }
    }

    /// The payload of the datagram the last [`Fed::Complete`] reported.
    pub(crate) fn datagram(&self) -> &[u8] {
        self.done.as_ref().map_or(&[][..], |d| &d.payload[..])
    }

    /// Drops datagrams that have waited too long, in fragments or in capture time.
    fn sweep(&mut self, now: Instant) {
        let fed = self.fed;
        self.pool.retain(|s| {
            fed.saturating_sub(s.seq) <= FRAGMENT_WINDOW
                && now.saturating_since(s.ts).as_micros() <= FRAGMENT_TIMEOUT_US
        });
    }
}
