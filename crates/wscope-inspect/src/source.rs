//! Packet sources: what the analyzer reads packets from, a capture file or a live interface.
//!
//! A [`PacketSource`] hands out the same [`Packet { ts, link, data }`](Packet) a file capture
//! does, one at a time, borrowed until the next call. A live source also says, at least once a
//! second, that time has passed ([`Next::Tick`]), with or without packets: the analyzer then
//! expires idle connections by that time (so a capture that goes quiet still ends its
//! connections) and tells its sink ([`crate::Sink::tick`]), which flushes its output. A file
//! never ticks: its time is its packets' time.
//!
//! This module reads no clock: a live source brings its own (`crate::live`, the `live`
//! feature) and hands the time over in the tick, as packets carry theirs.
//!
//! ```
//! use wscope_inspect::capture::{CaptureError, CaptureStats, LinkType, Packet};
//! use wscope_inspect::source::{Next, PacketSource};
//!
//! /// Replays one packet, then ends.
//! struct One(Option<Vec<u8>>, CaptureStats);
//!
//! impl PacketSource for One {
//!     fn next(&mut self) -> Result<Next<'_>, CaptureError> {
//!         let Some(data) = self.0.as_deref() else {
//!             return Ok(Next::End);
//!         };
//!         self.1.packets += 1;
//!         let pkt = Packet {
//!             ts: wscope_inspect::wscope_proto::time::Instant::from_micros(1),
//!             link: LinkType::ETHERNET,
//!             data,
//!             orig_len: data.len() as u32,
//!             number: 1,
//!             source: 0,
//!         };
//!         Ok(Next::Packet(pkt))
//!     }
//!
//!     fn stats(&self) -> CaptureStats {
//!         self.1
//!     }
//! }
//! ```

use wscope_proto::time::Instant;

use crate::capture::{Capture, CaptureError, CaptureStats, Packet};

/// What a [`PacketSource`] has next.
#[derive(Debug)]
pub enum Next<'a> {
    /// The input has ended (a file's last packet was read, a live capture was stopped).
    End,
    /// One packet, borrowed until the next call.
    Packet(Packet<'a>),
    /// Time passed (live sources only, at least once a second): see [`Tick`].
    Tick(Tick<'a>),
}

/// Time passing in a live capture, with the interfaces' kernel counters.
#[derive(Clone, Copy, Debug)]
pub struct Tick<'a> {
    /// The source's clock now (microseconds since the Unix epoch, like packet timestamps).
    pub now: Instant,
    /// A time no packet still to come will be older than: connections idle since before it
    /// are expired. A little before `now`, as the kernel hands packets over in batches.
    pub settled: Instant,
    /// Kernel counters per interface, cumulative since the capture started.
    pub interfaces: &'a [InterfaceStats],
}

/// What the kernel counted for one interface of a live capture (libpcap's `pcap_stats`),
/// from the start of the capture: the same counters as `tcpdump` prints when it stops, and
/// what Zeek's `capture_loss.log` estimates from the traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfaceStats {
    /// The interface's name (`eth0`).
    pub name: String,
    /// Packets that passed the filter, whether or not there was room to keep them.
    pub received: u64,
    /// Packets dropped because the capture buffer was full (the reader did not keep up).
    pub dropped: u64,
    /// Packets dropped by the network interface or its driver, where it says so.
    pub if_dropped: u64,
}

impl InterfaceStats {
    /// Dropped packets (buffer and interface) per hundred received; 0 without traffic.
    pub fn percent_dropped(&self) -> f64 {
        let lost = self.dropped.saturating_add(self.if_dropped);
        if self.received == 0 {
            0.0
        } else {
            lost as f64 * 100.0 / self.received as f64
        }
    }
}

/// Where the analyzer's packets come from ([`crate::Analyzer::run_source`]).
pub trait PacketSource {
    /// The next packet, a tick, or the end. After an error or [`Next::End`] the source is
    /// finished: later calls return [`Next::End`].
    ///
    /// # Errors
    ///
    /// The input could not be read (a file cut short or damaged, an interface gone).
    fn next(&mut self) -> Result<Next<'_>, CaptureError>;

    /// Counters so far (packets and bytes handed out).
    fn stats(&self) -> CaptureStats;

    /// Key log text not yet taken: the next TLS Decryption Secrets Block read (pcapng
    /// files), or the lines a followed key log gained (a live capture); default: none.
    fn take_secrets(&mut self) -> Option<Vec<u8>> {
        None
    }
}

impl PacketSource for Capture {
    fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        Ok(self.next_packet()?.map_or(Next::End, Next::Packet))
    }

    fn stats(&self) -> CaptureStats {
        Capture::stats(self)
    }

    fn take_secrets(&mut self) -> Option<Vec<u8>> {
        Capture::take_secrets(self)
    }
}
