//! Live capture on network interfaces (feature `live`): a [`PacketSource`] over libpcap.
//!
//! [`LiveCapture`] opens one libpcap handle per interface (on Linux libpcap uses an
//! `AF_PACKET` socket with a `TPACKET_V3` memory-mapped ring of [`LiveConfig::buffer_size`]
//! bytes), applies the BPF filter, optionally joins a `PACKET_FANOUT` group (several processes
//! share one interface's traffic, each connection to one of them; or, with
//! [`LiveCapture::open_shares`], several captures of one process, one per analysis thread),
//! and hands packets to the analyzer as a file capture does: [`Packet { ts, link, data }`](Packet),
//! with the kernel's timestamp. It runs until it is stopped (the [`LiveConfig::stop`] flag,
//! which the CLI sets on SIGINT/SIGTERM) or for [`LiveConfig::duration`]; packets the kernel
//! already holds when it is stopped are still read.
//!
//! This is the one place of the crate that reads the clock (the rest takes time from packets):
//! at least twice a second it returns a [`Next::Tick`] with the wall-clock time and the kernel
//! counters of each interface ([`InterfaceStats`]), so idle connections expire when the
//! network goes quiet and the sinks flush their output.
//!
//! Two socket calls have no libpcap API and are made with `libc`: `poll` over the handles, and
//! `setsockopt(PACKET_FANOUT)` on libpcap's socket (the only `unsafe` code of the crate).
//!
//! ```no_run
//! use wscope_inspect::analyzer::{Analyzer, AnalyzerConfig};
//! use wscope_inspect::event::Event;
//! use wscope_inspect::live::{LiveCapture, LiveConfig};
//!
//! let mut cfg = LiveConfig::new(["eth0"]);
//! cfg.filter = Some("tcp port 80".into());
//! cfg.duration = Some(std::time::Duration::from_secs(10));
//! let mut live = LiveCapture::open(cfg)?;
//! let stats = Analyzer::new(AnalyzerConfig::default())
//!     .run_source(&mut live, &mut |ev: &Event<'_>| println!("{} {}", ev.ts, ev.kind.name()));
//! for i in live.interface_stats() {
//!     println!("{}: {} received, {} dropped", i.name, i.received, i.dropped);
//! }
//! # drop(stats);
//! # Ok::<(), wscope_inspect::live::LiveError>(())
//! ```

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::io;
use std::os::fd::AsRawFd as _;
use std::sync::Arc;

use wscope_proto::time::Instant;

use crate::capture::{CaptureError, CaptureStats, LinkType, Packet};
use crate::source::{InterfaceStats, Next, PacketSource, Tick};
use crate::tls::keylog::{KeyLogError, KeyLogFollower};

/// Default snapshot length: bytes kept of each packet (tcpdump's default).
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// Default kernel buffer (the `TPACKET_V3` ring) per interface: 64 MiB.
pub const DEFAULT_BUFFER_SIZE: u32 = 64 << 20;

/// Ticks come at least this often.
const TICK_EVERY: Duration = Duration::from_millis(500);

/// The ring hands packets over in blocks, retired at the latest after this long
/// (`tp_retire_blk_tov`, from libpcap's read timeout).
const BLOCK_TIMEOUT_MS: i32 = 100;

/// How far behind the clock a packet may still arrive: [`Tick::settled`] is `now` minus this.
const SETTLE: Duration = Duration::from_secs(1);

/// After a stop, how long packets already captured are still read.
const DRAIN: Duration = Duration::from_millis(300);

/// Settings of a [`LiveCapture`].
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Interfaces to capture on (`eth0`; `any` for all, as libpcap names it).
    pub interfaces: Vec<String>,
    /// A BPF filter in libpcap's syntax (`tcp port 80 or tcp port 443`).
    pub filter: Option<String>,
    /// Bytes kept of each packet ([`DEFAULT_SNAPLEN`]).
    pub snaplen: u32,
    /// Capture packets not addressed to this host too (as tcpdump does by default).
    pub promiscuous: bool,
    /// Kernel buffer per interface in bytes ([`DEFAULT_BUFFER_SIZE`]).
    pub buffer_size: u32,
    /// Join this `PACKET_FANOUT` group (hash mode, IP fragments reassembled first): every
    /// process that joins the same group on the same interface gets a share of the
    /// connections, both directions of each connection going to the same process.
    pub fanout_group: Option<u16>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop when this becomes true (the CLI sets it from SIGINT/SIGTERM).
    pub stop: Arc<AtomicBool>,
}

impl LiveConfig {
    /// Defaults for capturing on `interfaces`: tcpdump's snapshot length, promiscuous, a
    /// 64 MiB buffer, no filter, no fanout, no time limit.
    pub fn new<S: Into<String>>(interfaces: impl IntoIterator<Item = S>) -> Self {
        Self {
            interfaces: interfaces.into_iter().map(Into::into).collect(),
            filter: None,
            snaplen: DEFAULT_SNAPLEN,
            promiscuous: true,
            buffer_size: DEFAULT_BUFFER_SIZE,
            fanout_group: None,
            duration: None,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Why a live capture could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum LiveError {
    /// The filter does not compile (libpcap's message in `detail`).
    Filter {
        /// The filter as given.
        filter: String,
        /// What libpcap said.
        detail: String,
    },
    /// Joining the `PACKET_FANOUT` group failed (another group member with other settings,
    /// or a kernel without fanout).
    Fanout {
        /// The interface.
        interface: String,
        /// The group id (0: a new group, whose id the kernel was to pick).
        group: u16,
        /// The `setsockopt` error.
        error: io::Error,
    },
    /// No interface was named.
    NoInterface,
    /// The interface does not exist.
    NoSuchInterface {
        /// The interface as named.
        interface: String,
    },
    /// The process may not capture: packet sockets need `CAP_NET_RAW`.
    NoPrivilege {
        /// The interface.
        interface: String,
        /// What libpcap said.
        detail: String,
    },
    /// libpcap could not open or set up the interface for another reason.
    Open {
        /// The interface.
        interface: String,
        /// What libpcap said.
        detail: String,
    },
}

/// One interface being captured.
struct Interface {
    name: String,
    cap: pcap::Capture<pcap::Active>,
    link: LinkType,
    stats: InterfaceStats,
    /// The last raw (32-bit, wrapping) counters read from libpcap.
    raw: (u32, u32, u32),
}

/// Packets from network interfaces, until stopped (see the [module docs](self)).
pub struct LiveCapture {
    interfaces: Vec<Interface>,
    /// The same counters, in the form ticks hand out.
    counters: Vec<InterfaceStats>,
    stop: Arc<AtomicBool>,
    deadline: Option<std::time::Instant>,
    /// Set once stopped: read what the kernel holds until then, then end.
    drain_until: Option<std::time::Instant>,
    last_tick: std::time::Instant,
    /// Interface to read first next time (round robin).
    next_interface: usize,
    /// The packet handed out last (see [`LiveCapture::next`] for why it is copied).
    buf: Vec<u8>,
    stats: CaptureStats,
    ended: bool,
    /// Key logs followed as they grow ([`LiveCapture::follow_keylog`]), each with the error of
    /// its last poll if it failed.
    keylogs: Vec<(KeyLogFollower, Option<KeyLogError>)>,
    /// When they were last polled.
    keylog_polled: std::time::Instant,
}

/// How often followed key logs are polled for new lines (a `fstat` each): a connection whose
/// secrets are written after its ServerHello waits about this long for them.
pub const KEYLOG_POLL_EVERY: Duration = Duration::from_millis(2);

impl fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveCapture")
            .field("interfaces", &self.counters)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl LiveCapture {
    /// Opens every interface of `cfg` (all or none).
    ///
    /// # Errors
    ///
    /// A missing interface, a filter that does not compile, no privilege to capture
    /// ([`LiveError::NoPrivilege`] names `CAP_NET_RAW`), a fanout group that cannot be
    /// joined, or anything else libpcap refuses.
    pub fn open(cfg: LiveConfig) -> Result<Self, LiveError> {
        if cfg.interfaces.is_empty() {
            return Err(LiveError::NoInterface);
        }
        let mut interfaces = Vec::with_capacity(cfg.interfaces.len());
        for name in &cfg.interfaces {
            let join = cfg.fanout_group.map(Join::Group);
            interfaces.push(open_interface(name, &cfg, join)?.0);
        }
        Ok(Self::with_interfaces(interfaces, &cfg))
    }

    /// Opens `n` captures of `cfg`'s interfaces that share the traffic, one for each of `n`
    /// analysis threads: on each interface their sockets join one `PACKET_FANOUT` group in
    /// hash mode, so every connection (both directions) reaches exactly one of them. The group
    /// is [`LiveConfig::fanout_group`] when set (other processes may be members too), else a
    /// new one whose id the kernel picks (`PACKET_FANOUT_FLAG_UNIQUEID`), so no other process
    /// can join it by chance. One capture, without a group unless one is set, when `n` is 1.
    ///
    /// # Errors
    ///
    /// As [`LiveCapture::open`]; nothing stays open after an error.
    pub fn open_shares(cfg: LiveConfig, n: usize) -> Result<Vec<Self>, LiveError> {
        if n <= 1 {
            return Ok(vec![Self::open(cfg)?]);
        }
        if cfg.interfaces.is_empty() {
            return Err(LiveError::NoInterface);
        }
        // The first capture makes (or joins) each interface's group; the others join it.
        let mut first = Vec::with_capacity(cfg.interfaces.len());
        let mut groups = Vec::with_capacity(cfg.interfaces.len());
        for name in &cfg.interfaces {
            let join = cfg.fanout_group.map_or(Join::New, Join::Group);
            let (iface, group) = open_interface(name, &cfg, Some(join))?;
            first.push(iface);
            groups.push(group.unwrap_or_default());
        }
        let mut all = Vec::with_capacity(n);
        all.push(Self::with_interfaces(first, &cfg));
        for _ in 1..n {
            let mut interfaces = Vec::with_capacity(cfg.interfaces.len());
            for (name, &group) in cfg.interfaces.iter().zip(&groups) {
                interfaces.push(open_interface(name, &cfg, Some(Join::Group(group)))?.0);
            }
            all.push(Self::with_interfaces(interfaces, &cfg));
        }
        Ok(all)
    }

    fn with_interfaces(interfaces: Vec<Interface>, cfg: &LiveConfig) -> Self {
        let counters = interfaces.iter().map(|i| i.stats.clone()).collect();
        let start = monotonic();
        Self {
            interfaces,
            counters,
            stop: Arc::clone(&cfg.stop),
            deadline: cfg.duration.map(|d| start + d),
            drain_until: None,
            last_tick: start,
            next_interface: 0,
            buf: Vec::new(),
            stats: CaptureStats {
                sources: cfg.interfaces.len() as u64,
                ..CaptureStats::default()
            },
            ended: false,
            keylogs: Vec::new(),
            keylog_polled: start,
        }
    }

    /// The kernel's counters per interface, as of the last tick or the end.
    pub fn interface_stats(&self) -> &[InterfaceStats] {
        &self.counters
    }

    /// Reads the kernel counters of every interface.
    fn refresh_stats(&mut self) {
        for (i, c) in self.interfaces.iter_mut().zip(&mut self.counters) {
            if let Ok(s) = i.cap.stats() {
                // libpcap's counters are 32 bits and wrap: extend them.
                let (r, d, f) = i.raw;
                i.stats.received += u64::from(s.received.wrapping_sub(r));
                i.stats.dropped += u64::from(s.dropped.wrapping_sub(d));
                i.stats.if_dropped += u64::from(s.if_dropped.wrapping_sub(f));
                i.raw = (s.received, s.dropped, s.if_dropped);
            }
            c.clone_from(&i.stats);
        }
    }

    /// Reads one packet from the first interface that has one (round robin) into `buf`.
    fn read_one(&mut self) -> Result<Option<(usize, pcap::PacketHeader)>, CaptureError> {
        let n = self.interfaces.len();
        for k in 0..n {
            let idx = (self.next_interface + k) % n;
            let iface = &mut self.interfaces[idx];
            match iface.cap.next_packet() {
                Ok(p) => {
                    self.buf.clear();
                    self.buf.extend_from_slice(p.data);
                    let header = *p.header;
                    self.next_interface = (idx + 1) % n;
                    return Ok(Some((idx, header)));
                }
                Err(pcap::Error::TimeoutExpired) => {}
                Err(e) => {
                    return Err(CaptureError::interface(
                        &iface.name,
                        io::Error::other(e.to_string()),
                    ))
                }
            }
        }
        Ok(None)
    }

    /// Waits until an interface may have packets, or `timeout`.
    fn wait(&self, timeout: Duration) {
        let mut fds: Vec<libc::pollfd> = self
            .interfaces
            .iter()
            .map(|i| libc::pollfd {
                fd: i.cap.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = i32::try_from(timeout.as_millis())
            .unwrap_or(i32::MAX)
            .max(1);
        poll(&mut fds, ms);
    }
}

impl PacketSource for LiveCapture {
    /// The next packet, or a tick when one is due (every 500 ms), or the end once stopped and
    /// drained.
    ///
    /// The packet's bytes are copied out of libpcap's ring into a buffer of the capture (one
    /// `memcpy` of at most the snapshot length, no allocation once the buffer has grown): a
    /// packet borrowed straight from one of several handles inside the read loop is what
    /// today's borrow checker cannot accept without `unsafe`.
    fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        loop {
            if self.ended {
                return Ok(Next::End);
            }
            let mono = monotonic();
            if self.drain_until.is_none()
                && (self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| mono >= d))
            {
                self.drain_until = Some(mono + DRAIN);
            }
            // Stopped: what the kernel held is read for DRAIN, then the capture ends even if
            // traffic goes on.
            if self.drain_until.is_some_and(|until| mono >= until) {
                self.ended = true;
                self.refresh_stats();
                return Ok(Next::End);
            }
            if mono.saturating_duration_since(self.last_tick) >= TICK_EVERY {
                self.last_tick = mono;
                self.refresh_stats();
                let now = wall_clock();
                return Ok(Next::Tick(Tick {
                    now,
                    settled: Instant::from_micros(
                        now.as_micros().saturating_sub(SETTLE.as_micros() as u64),
                    ),
                    interfaces: &self.counters,
                }));
            }
            if let Some((idx, h)) = self.read_one()? {
                let secs = u64::try_from(h.ts.tv_sec).unwrap_or(0);
                let us = u64::try_from(h.ts.tv_usec).unwrap_or(0);
                self.stats.packets += 1;
                self.stats.bytes += self.buf.len() as u64;
                if h.caplen < h.len {
                    self.stats.truncated_packets += 1;
                }
                return Ok(Next::Packet(Packet {
                    ts: Instant::from_micros(secs.saturating_mul(1_000_000).saturating_add(us)),
                    link: self.interfaces[idx].link,
                    data: &self.buf,
                    orig_len: h.len,
                    number: self.stats.packets,
                    source: idx,
                }));
            }
            // Nothing to read: wait for packets, the next tick or the end of the drain.
            let mut wait =
                TICK_EVERY.saturating_sub(mono.saturating_duration_since(self.last_tick));
            if let Some(until) = self.drain_until {
                wait = wait.min(until.saturating_duration_since(mono));
            }
            if let Some(d) = self.deadline {
                wait = wait.min(d.saturating_duration_since(mono));
            }
            // Short waits: the stop flag is checked at least every 100 ms.
            self.wait(wait.min(Duration::from_millis(100)));
        }
    }

    fn stats(&self) -> CaptureStats {
        self.stats
    }

    /// The lines the followed key logs gained since the last poll (polled at most every
    /// [`KEYLOG_POLL_EVERY`]). A key log that cannot be read now is tried again at the next
    /// poll.
    fn take_secrets(&mut self) -> Option<Vec<u8>> {
        if self.keylogs.is_empty() {
            return None;
        }
        let mono = monotonic();
        if mono.saturating_duration_since(self.keylog_polled) < KEYLOG_POLL_EVERY {
            return None;
        }
        self.keylog_polled = mono;
        let mut text: Option<Vec<u8>> = None;
        for (f, failed) in &mut self.keylogs {
            match f.poll() {
                Ok(lines) => {
                    *failed = None;
                    if let Some(lines) = lines {
                        text.get_or_insert_with(Vec::new).extend_from_slice(&lines);
                    }
                }
                Err(e) => *failed = Some(e),
            }
        }
        text
    }
}

impl LiveCapture {
    /// Follows a key log that a program is still writing (a browser's `SSLKEYLOGFILE`): the
    /// lines it gains are handed out as secrets ([`PacketSource::take_secrets`]) as the
    /// capture runs. Analyse with [`crate::Analyzer::keys_may_follow`], so that a connection
    /// whose secrets are written after its ServerHello waits for them.
    pub fn follow_keylog(&mut self, follower: KeyLogFollower) {
        self.keylogs.push((follower, None));
    }

    /// The followed key logs that could not be read at their last poll (one that exists but
    /// cannot be opened or read, such as another user's file): their secrets were not read
    /// since. A key log that fails is tried again at every poll and goes on from where it was,
    /// so one that recovers loses nothing and is not listed.
    pub fn keylog_errors(&self) -> impl Iterator<Item = &KeyLogError> {
        self.keylogs.iter().filter_map(|(_, e)| e.as_ref())
    }
}

/// How a socket joins a `PACKET_FANOUT` group.
#[derive(Clone, Copy, Debug)]
enum Join {
    /// The group with this id (made by the first member).
    Group(u16),
    /// A new group whose id the kernel picks.
    New,
}

/// Opens one interface; with `join`, its socket joins that fanout group, whose id is returned.
fn open_interface(
    name: &str,
    cfg: &LiveConfig,
    join: Option<Join>,
) -> Result<(Interface, Option<u16>), LiveError> {
    let fail = |e: pcap::Error| classify(name, &e.to_string());
    let cap = pcap::Capture::from_device(name)
        .map_err(fail)?
        .snaplen(i32::try_from(cfg.snaplen).unwrap_or(i32::MAX))
        .promisc(cfg.promiscuous)
        .buffer_size(i32::try_from(cfg.buffer_size).unwrap_or(i32::MAX))
        .timeout(BLOCK_TIMEOUT_MS)
        .open()
        .map_err(fail)?;
    let mut cap = cap.setnonblock().map_err(fail)?;
    if let Some(filter) = &cfg.filter {
        cap.filter(filter, true).map_err(|e| LiveError::Filter {
            filter: filter.clone(),
            detail: e.to_string(),
        })?;
    }
    let group = join
        .map(|join| {
            let fd = cap.as_raw_fd();
            let joined = join_fanout(fd, join).and_then(|()| match join {
                Join::Group(g) => Ok(g),
                Join::New => fanout_id(fd),
            });
            joined.map_err(|error| LiveError::Fanout {
                interface: name.to_owned(),
                group: match join {
                    Join::Group(g) => g,
                    Join::New => 0,
                },
                error,
            })
        })
        .transpose()?;
    let link = LinkType(u32::try_from(cap.get_datalink().0).unwrap_or(u32::MAX));
    let iface = Interface {
        name: name.to_owned(),
        cap,
        link,
        stats: InterfaceStats {
            name: name.to_owned(),
            ..InterfaceStats::default()
        },
        raw: (0, 0, 0),
    };
    Ok((iface, group))
}

/// Sorts libpcap's open errors (which it gives as text only) into [`LiveError`]s.
fn classify(name: &str, detail: &str) -> LiveError {
    let lower = detail.to_ascii_lowercase();
    let interface = name.to_owned();
    if lower.contains("permission")
        || lower.contains("not permitted")
        || lower.contains("cap_net_raw")
    {
        LiveError::NoPrivilege {
            interface,
            detail: detail.to_owned(),
        }
    } else if lower.contains("no such device") {
        LiveError::NoSuchInterface { interface }
    } else {
        LiveError::Open {
            interface,
            detail: detail.to_owned(),
        }
    }
}

// From <linux/if_packet.h> (not in the libc crate).
const PACKET_FANOUT: libc::c_int = 0x12;
const PACKET_FANOUT_HASH: u32 = 0x0;
const PACKET_FANOUT_FLAG_DEFRAG: u32 = 0x8000;
const PACKET_FANOUT_FLAG_UNIQUEID: u32 = 0x2000;

/// Joins a fanout group in hash mode (the kernel's symmetric flow hash, so both directions of
/// a connection reach the same socket), with IP fragments reassembled first: group `g`, or a
/// new one with an id the kernel picks ([`fanout_id`] reads it).
#[allow(unsafe_code)]
fn join_fanout(fd: libc::c_int, join: Join) -> io::Result<()> {
    let mode = PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG;
    let arg: u32 = match join {
        Join::Group(g) => u32::from(g) | (mode << 16),
        Join::New => (mode | PACKET_FANOUT_FLAG_UNIQUEID) << 16,
    };
    // SAFETY: `fd` is libpcap's open packet socket, which outlives the call; the option value
    // is a valid `u32` on the stack and its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            PACKET_FANOUT,
            core::ptr::from_ref(&arg).cast(),
            size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The id of the fanout group the socket `fd` is a member of.
#[allow(unsafe_code)]
fn fanout_id(fd: libc::c_int) -> io::Result<u16> {
    let mut value: u32 = 0;
    let mut len = size_of::<u32>() as libc::socklen_t;
    // SAFETY: `fd` is libpcap's open packet socket, which outlives the call; `value` is a
    // valid, exclusively borrowed `u32` on the stack and `len` holds its exact size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            PACKET_FANOUT,
            core::ptr::from_mut(&mut value).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        // The id is the low 16 bits (the mode and flags above them).
        Ok((value & 0xFFFF) as u16)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `poll(2)` over `fds`; an interruption by a signal or an error just ends the wait.
#[allow(unsafe_code)]
fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) {
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd structures
    // for the whole call.
    let _ = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
}

/// The monotonic clock, for intervals (ticks, `--duration`, the drain after a stop).
#[allow(clippy::disallowed_methods)] // the live input layer is where the clock is read
fn monotonic() -> std::time::Instant {
    std::time::Instant::now()
}

/// The wall clock as packet timestamps count it (microseconds since the Unix epoch).
#[allow(clippy::disallowed_methods)] // the live input layer is where the clock is read
fn wall_clock() -> Instant {
    let us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    Instant::from_micros(us)
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Filter { filter, detail } => {
                write!(f, "bad capture filter {filter:?}: {detail}")
            }
            Self::Fanout {
                interface,
                group,
                error,
            } if *group == 0 => write!(
                f,
                "{interface}: cannot make a PACKET_FANOUT group for the workers: {error} (Linux \
                 4.12 or later)"
            ),
            Self::Fanout {
                interface,
                group,
                error,
            } => write!(
                f,
                "{interface}: cannot join PACKET_FANOUT group {group}: {error} (the group's other \
                 members must use the same mode)"
            ),
            Self::NoInterface => f.write_str("no interface to capture on"),
            Self::NoSuchInterface { interface } => {
                write!(f, "{interface}: no such network interface")
            }
            Self::NoPrivilege { interface, detail } => write!(
                f,
                "{interface}: no permission to capture: live capture needs the CAP_NET_RAW \
                 capability (run as root, or `setcap cap_net_raw,cap_net_admin=eip` on the \
                 wscope binary) ({detail})"
            ),
            Self::Open { interface, detail } => {
                write!(f, "{interface}: cannot start the capture: {detail}")
            }
        }
    }
}

impl core::error::Error for LiveError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Fanout { error, .. } => Some(error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_errors_are_sorted_by_cause() {
        let e = classify("eth9", "socket: Operation not permitted");
        assert!(matches!(e, LiveError::NoPrivilege { .. }));
        assert!(e.to_string().contains("CAP_NET_RAW"), "{e}");
        let e = classify(
            "eth9",
            "Attempt to create packet socket failed - CAP_NET_RAW may be required",
        );
        assert!(matches!(e, LiveError::NoPrivilege { .. }));
        let e = classify(
            "eth9",
            "eth9: No such device exists (SIOCGIFHWADDR: No such device)",
        );
        assert_eq!(e.to_string(), "eth9: no such network interface");
        assert!(matches!(
            classify("eth9", "something else"),
            LiveError::Open { .. }
        ));
    }

    #[test]
    fn no_interface_is_an_error() {
        let cfg = LiveConfig::new(Vec::<String>::new());
        assert!(matches!(
            LiveCapture::open(cfg),
            Err(LiveError::NoInterface)
        ));
    }

    #[test]
    fn a_missing_interface_is_named() {
        let cfg = LiveConfig::new(["wscope-nonexistent0"]);
        match LiveCapture::open(cfg) {
            Err(LiveError::NoSuchInterface { interface }) => {
                assert_eq!(interface, "wscope-nonexistent0");
            }
            // Without the privilege to open a packet socket, that comes first.
            Err(LiveError::NoPrivilege { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}
