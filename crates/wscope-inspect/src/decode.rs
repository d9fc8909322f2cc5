//! Packet decoding: link layer → IPv4/IPv6 → TCP, producing [`Segment`]s.
//!
//! The link layer (Ethernet with any number of 802.1Q / 802.1ad tags up to four, Linux cooked
//! v1 and v2, BSD NULL and LOOP, raw IP) is stripped here by looking at a few fixed offsets;
//! the IP and TCP headers are read with `etherparse`'s borrowed header views, leniently: a
//! packet cut short by the snapshot length still gives its TCP header and the captured part of
//! its payload, and [`Segment::missing`] says how many payload bytes the capture lost.
//! Ethernet padding is never taken for payload (the IP length decides).
//!
//! Everything that is not TCP (ARP, UDP, ICMP, other link types, broken headers) is skipped and
//! counted in [`DecodeStats`]. The free function [`decode`] borrows the packet bytes, allocates
//! nothing and reports IP fragments as [`Skip::Fragment`]; a [`Decoder`] also reassembles
//! IPv4 and IPv6 fragments (bounded: see [`FRAGMENT_WINDOW`]) and decodes the whole datagram.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use etherparse::{IpNumber, LaxIpSlice, TcpSlice};
use wscope_proto::time::Instant;

use crate::capture::{LinkType, Packet};
use crate::defrag::{Defrag, Fed};
pub use crate::defrag::{FRAGMENT_TIMEOUT_US, FRAGMENT_WINDOW};

/// TCP header flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from the sender.
    pub const FIN: Self = Self(0x01);
    /// Synchronise sequence numbers.
    pub const SYN: Self = Self(0x02);
    /// Reset the connection.
    pub const RST: Self = Self(0x04);
    /// Push.
    pub const PSH: Self = Self(0x08);
    /// The acknowledgment number is valid.
    pub const ACK: Self = Self(0x10);
    /// The urgent pointer is valid.
    pub const URG: Self = Self(0x20);
    /// ECN echo.
    pub const ECE: Self = Self(0x40);
    /// Congestion window reduced.
    pub const CWR: Self = Self(0x80);

    /// Whether all flags in `other` are set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// SYN set.
    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }

    /// FIN set.
    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }

    /// RST set.
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }

    /// ACK set.
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for TcpFlags {
    /// tcpdump-like letters: `S`, `F`, `R`, `P`, `.` (ACK), `U`, `E`, `W`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::SYN, 'S'),
            (Self::FIN, 'F'),
            (Self::RST, 'R'),
            (Self::PSH, 'P'),
            (Self::ACK, '.'),
            (Self::URG, 'U'),
            (Self::ECE, 'E'),
            (Self::CWR, 'W'),
        ];
        for (flag, c) in names {
            if self.contains(flag) {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

/// A TCP connection's identity: the two endpoints, in a canonical order so that both
/// directions of a connection give the same key. (The protocol is always TCP.)
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    lo_addr: [u8; 16],
    hi_addr: [u8; 16],
    lo_port: u16,
    hi_port: u16,
    v6: bool,
}

impl FlowKey {
    /// The key of the connection a packet from `src` to `dst` belongs to, and whether `src` is
    /// the key's [`FlowKey::lo`] end.
    ///
    /// ```
    /// use wscope_inspect::decode::FlowKey;
    /// let a: std::net::SocketAddr = "10.0.0.1:40000".parse().unwrap();
    /// let b: std::net::SocketAddr = "10.0.0.2:80".parse().unwrap();
    /// let (k1, a_is_lo) = FlowKey::new(a, b);
    /// let (k2, b_is_lo) = FlowKey::new(b, a);
    /// assert_eq!(k1, k2);
    /// assert_ne!(a_is_lo, b_is_lo);
    /// ```
    pub fn new(src: SocketAddr, dst: SocketAddr) -> (Self, bool) {
        let (s, v6s) = addr_bytes(src.ip());
        let (d, v6d) = addr_bytes(dst.ip());
        let src_lo = (s, src.port()) <= (d, dst.port());
        let key = if src_lo {
            Self {
                lo_addr: s,
                hi_addr: d,
                lo_port: src.port(),
                hi_port: dst.port(),
                v6: v6s || v6d,
            }
        } else {
            Self {
                lo_addr: d,
                hi_addr: s,
                lo_port: dst.port(),
                hi_port: src.port(),
                v6: v6s || v6d,
            }
        };
        (key, src_lo)
    }

    /// The endpoint that sorts first.
    pub fn lo(&self) -> SocketAddr {
        SocketAddr::new(self.ip(self.lo_addr), self.lo_port)
    }

    /// The endpoint that sorts second.
    pub fn hi(&self) -> SocketAddr {
        SocketAddr::new(self.ip(self.hi_addr), self.hi_port)
    }

    /// Whether the endpoints are IPv6 addresses.
    pub const fn is_ipv6(&self) -> bool {
        self.v6
    }

    fn ip(&self, b: [u8; 16]) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(b))
        } else {
            IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15]))
        }
    }
}

impl fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlowKey({} <-> {})", self.lo(), self.hi())
    }
}

fn addr_bytes(ip: IpAddr) -> ([u8; 16], bool) {
    match ip {
        IpAddr::V4(a) => (a.to_ipv6_mapped().octets(), false),
        IpAddr::V6(a) => (a.octets(), true),
    }
}

/// One decoded TCP segment, borrowing its payload from the packet.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Capture time.
    pub ts: Instant,
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful when [`TcpFlags::ACK`] is set).
    pub ack: u32,
    /// Header flags.
    pub flags: TcpFlags,
    /// Advertised window (unscaled).
    pub window: u16,
    /// The captured payload.
    pub payload: &'a [u8],
    /// Payload bytes the packet carried on the wire but the capture cut off (snapshot length).
    pub missing: u32,
}

impl Segment<'_> {
    /// The connection key and whether `src` is its `lo` end.
    pub fn key(&self) -> (FlowKey, bool) {
        FlowKey::new(self.src, self.dst)
    }

    /// Payload length on the wire (captured plus missing).
    pub fn wire_len(&self) -> u64 {
        self.payload.len() as u64 + u64::from(self.missing)
    }
}

/// Why a packet gave no TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Skip {
    /// The link type is not one [`decode`] understands.
    UnsupportedLink,
    /// The link layer carries something other than IPv4/IPv6 (ARP, LLDP, ...).
    NotIp,
    /// An IP packet of another protocol (UDP, ICMP, ...).
    NotTcp,
    /// An IPv4 or IPv6 fragment ([`decode`] does not reassemble; a [`Decoder`] does).
    Fragment,
    /// The packet ends inside a link, IP or TCP header.
    Truncated,
    /// A header is invalid (bad version, header length, data offset).
    Malformed,
}

/// Counters over decoded packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Packets looked at.
    pub packets: u64,
    /// TCP segments produced.
    pub tcp: u64,
    /// Of those, over IPv6.
    pub tcp_ipv6: u64,
    /// TCP segments whose payload the capture cut short.
    pub tcp_truncated: u64,
    /// Skipped: unsupported link type.
    pub unsupported_link: u64,
    /// Skipped: not IP.
    pub not_ip: u64,
    /// Skipped: IP but not TCP.
    pub not_tcp: u64,
    /// IP fragments seen (each is also counted, when its datagram is complete, as what the
    /// datagram holds: `tcp`, `not_tcp`, ...).
    pub fragments: u64,
    /// Datagrams reassembled from fragments.
    pub reassembled: u64,
    /// Fragments that could not be used: cut by the snapshot length, malformed, or
    /// inconsistent with the fragments before them. (Datagrams that never complete are
    /// dropped after [`FRAGMENT_WINDOW`] fragments or [`FRAGMENT_TIMEOUT_US`].)
    pub bad_fragments: u64,
    /// Skipped: cut inside a header.
    pub truncated: u64,
    /// Skipped: invalid header.
    pub malformed: u64,
}

impl DecodeStats {
    /// Adds the counters of another decoder (one that read another share of the traffic).
    pub fn add(&mut self, o: &Self) {
        self.packets += o.packets;
        self.tcp += o.tcp;
        self.tcp_ipv6 += o.tcp_ipv6;
        self.tcp_truncated += o.tcp_truncated;
        self.unsupported_link += o.unsupported_link;
        self.not_ip += o.not_ip;
        self.not_tcp += o.not_tcp;
        self.fragments += o.fragments;
        self.reassembled += o.reassembled;
        self.bad_fragments += o.bad_fragments;
        self.truncated += o.truncated;
        self.malformed += o.malformed;
    }

    fn count(&mut self, r: &Result<Segment<'_>, Skip>) {
        self.packets += 1;
        self.count_content(r);
    }

    fn count_content(&mut self, r: &Result<Segment<'_>, Skip>) {
        match r {
            Ok(seg) => {
                self.tcp += 1;
                if seg.src.is_ipv6() {
                    self.tcp_ipv6 += 1;
                }
                if seg.missing > 0 {
                    self.tcp_truncated += 1;
                }
            }
            Err(Skip::UnsupportedLink) => self.unsupported_link += 1,
            Err(Skip::NotIp) => self.not_ip += 1,
            Err(Skip::NotTcp) => self.not_tcp += 1,
            Err(Skip::Fragment) => self.fragments += 1,
            Err(Skip::Truncated) => self.truncated += 1,
            Err(Skip::Malformed) => self.malformed += 1,
        }
    }
}

/// A decoder that reassembles IP fragments and counts what it skips.
#[derive(Debug, Default)]
pub struct Decoder {
    stats: DecodeStats,
    defrag: Defrag,
}

impl Decoder {
    /// A decoder with zeroed counters and no fragments held.
    pub fn new() -> Self {
        Self::default()
    }

    /// The TCP segment in `pkt`, if it holds one. A fragment that completes its datagram
    /// gives the datagram's segment, which borrows the decoder until the next call.
    pub fn decode<'s>(&'s mut self, pkt: &Packet<'s>) -> Option<Segment<'s>> {
        let r = decode(pkt.link, pkt.ts, pkt.data);
        if !matches!(r, Err(Skip::Fragment)) {
            self.stats.count(&r);
            return r.ok();
        }
        self.stats.packets += 1;
        self.stats.fragments += 1;
        let Ok(ip) = strip_link(pkt.link, pkt.data) else {
            return None;
        };
        match self.defrag.feed(ip, pkt.ts) {
            Fed::Pending => None,
            Fed::Rejected => {
                self.stats.bad_fragments += 1;
                None
            }
            Fed::Complete(proto) => {
                self.stats.reassembled += 1;
                let r = if proto == IpNumber::TCP {
                    match ip_addrs(ip) {
                        Some((src, dst)) => {
                            tcp_segment(pkt.ts, src, dst, self.defrag.datagram(), 0)
                        }
                        None => Err(Skip::Malformed),
                    }
                } else {
                    Err(Skip::NotTcp)
                };
                self.stats.count_content(&r);
                r.ok()
            }
        }
    }

    /// Counters so far.
    pub const fn stats(&self) -> &DecodeStats {
        &self.stats
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
/// VLAN tags looked through before giving up.
const MAX_VLAN_TAGS: usize = 4;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// The IP packet inside a link-layer frame.
fn strip_link(link: LinkType, data: &[u8]) -> Result<&[u8], Skip> {
    fn ethertype_payload(et: u16, rest: &[u8]) -> Result<&[u8], Skip> {
        match et {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Ok(rest),
            _ => Err(Skip::NotIp),
        }
    }
    match link {
        LinkType::ETHERNET => {
            let mut et = be16(data, 12).ok_or(Skip::Truncated)?;
            let mut at = 14;
            let mut tags = 0;
            while matches!(et, ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD) {
                tags += 1;
                if tags > MAX_VLAN_TAGS {
                    return Err(Skip::NotIp);
                }
                et = be16(data, at + 2).ok_or(Skip::Truncated)?;
                at += 4;
            }
            ethertype_payload(et, data.get(at..).ok_or(Skip::Truncated)?)
        }
        LinkType::LINUX_SLL => {
            let et = be16(data, 14).ok_or(Skip::Truncated)?;
            ethertype_payload(et, data.get(16..).ok_or(Skip::Truncated)?)
        }
        LinkType::LINUX_SLL2 => {
            let et = be16(data, 0).ok_or(Skip::Truncated)?;
            ethertype_payload(et, data.get(20..).ok_or(Skip::Truncated)?)
        }
        LinkType::NULL | LinkType::LOOP => {
            let fam = data.get(..4).ok_or(Skip::Truncated)?;
            // NULL is in the capturing host's byte order, LOOP in network order: accept both.
            let le = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let be = u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let is_ip = |f: u32| matches!(f, 2 | 10 | 23 | 24 | 28 | 30);
            if is_ip(le) || is_ip(be) {
                Ok(&data[4..])
            } else {
                Err(Skip::NotIp)
            }
        }
        LinkType::RAW | LinkType::RAW_BSD12 | LinkType::RAW_BSD14 => Ok(data),
        LinkType::IPV4 => match data.first().map(|b| b >> 4) {
            Some(4) => Ok(data),
            Some(_) => Err(Skip::Malformed),
            None => Err(Skip::Truncated),
        },
        LinkType::IPV6 => match data.first().map(|b| b >> 4) {
            Some(6) => Ok(data),
            Some(_) => Err(Skip::Malformed),
            None => Err(Skip::Truncated),
        },
        _ => Err(Skip::UnsupportedLink),
    }
}

/// Decodes one packet into a TCP segment.
///
/// ```
/// use wscope_inspect::capture::LinkType;
/// use wscope_inspect::decode::{decode, Skip};
/// use wscope_proto::time::Instant;
/// // An ARP frame is not IP.
/// let mut arp = vec![0u8; 42];
/// arp[12] = 0x08;
/// arp[13] = 0x06;
/// assert_eq!(decode(LinkType::ETHERNET, Instant::ZERO, &arp).unwrap_err(), Skip::NotIp);
/// ```
pub fn decode(link: LinkType, ts: Instant, data: &[u8]) -> Result<Segment<'_>, Skip> {
    let ip = strip_link(link, data)?;
    let (slice, _ext_err) = LaxIpSlice::from_slice(ip).map_err(|e| match e {
        etherparse::err::ip::LaxHeaderSliceError::Len(_) => Skip::Truncated,
        etherparse::err::ip::LaxHeaderSliceError::Content(_) => Skip::Malformed,
    })?;
    let payload = slice.payload();
    if payload.fragmented {
        return Err(Skip::Fragment);
    }
    if payload.ip_number != IpNumber::TCP {
        return Err(Skip::NotTcp);
    }
    let missing = if payload.incomplete {
        let declared = match &slice {
            LaxIpSlice::Ipv4(s) => usize::from(s.header().total_len()),
            LaxIpSlice::Ipv6(s) => 40 + usize::from(s.header().payload_length()),
        };
        u32::try_from(declared.saturating_sub(ip.len())).unwrap_or(u32::MAX)
    } else {
        0
    };
    let (src, dst) = slice_addrs(&slice);
    tcp_segment(ts, src, dst, payload.payload, missing)
}

/// The source and destination of an IP packet.
fn slice_addrs(slice: &LaxIpSlice<'_>) -> (IpAddr, IpAddr) {
    match slice {
        LaxIpSlice::Ipv4(s) => {
            let h = s.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
            )
        }
        LaxIpSlice::Ipv6(s) => {
            let h = s.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
            )
        }
    }
}

/// The addresses of the IP packet `ip` (a fragment the defragmenter accepted).
fn ip_addrs(ip: &[u8]) -> Option<(IpAddr, IpAddr)> {
    LaxIpSlice::from_slice(ip)
        .ok()
        .map(|(slice, _)| slice_addrs(&slice))
}

/// The segment in the TCP bytes `tcp` (header and payload) sent from `src` to `dst`.
fn tcp_segment(
    ts: Instant,
    src: IpAddr,
    dst: IpAddr,
    tcp: &[u8],
    missing: u32,
) -> Result<Segment<'_>, Skip> {
    let tcp = TcpSlice::from_slice(tcp).map_err(|e| match e {
        etherparse::err::tcp::HeaderSliceError::Len(_) => Skip::Truncated,
        etherparse::err::tcp::HeaderSliceError::Content(_) => Skip::Malformed,
    })?;
    let flags = tcp.header_slice().get(13).copied().unwrap_or(0);
    Ok(Segment {
        ts,
        src: SocketAddr::new(src, tcp.source_port()),
        dst: SocketAddr::new(dst, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: TcpFlags(flags),
        window: tcp.window_size(),
        payload: tcp.payload(),
        missing,
    })
}
