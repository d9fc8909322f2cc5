//! Writing captures: classic pcap and pcapng files, and TCP packets to put in them.
//!
//! Used to generate sample captures and test traffic from our own code (tests and examples
//! only: it is not part of `wscope-inspect`'s API). [`encode_tcp`] builds
//! a TCP segment over IPv4 or IPv6 (header checksums included, through `etherparse`) inside one
//! of the link layers the reader understands ([`Framing`]); [`PcapWriter`] and [`PcapNgWriter`]
//! store packets with microsecond timestamps (pcapng: any `if_tsresol` per interface).
//!
//! ```
//! use wscope_inspect::capture::CaptureReader;
//! use wscope_inspect::decode::TcpFlags;
//! use wscope_test_support::capture::{Framing, PcapWriter, TcpSpec};
//! use wscope_proto::time::Instant;
//!
//! let mut w = PcapWriter::new(Vec::new(), Framing::Ethernet.link_type())?;
//! let spec = TcpSpec::new("10.0.0.1:40000".parse().unwrap(), "10.0.0.2:80".parse().unwrap())
//!     .seq(1)
//!     .flags(TcpFlags::SYN);
//! w.write_tcp(Instant::from_micros(1_000_000), Framing::Ethernet, &spec)?;
//! let bytes = w.into_inner();
//!
//! let mut r = CaptureReader::with_name(&bytes[..], "mem").unwrap();
//! let pkt = r.next_packet().unwrap().unwrap();
//! assert_eq!(pkt.ts, Instant::from_micros(1_000_000));
//! # Ok::<(), std::io::Error>(())
//! ```

use core::net::{IpAddr, SocketAddr};
use std::io::{self, Write};

use etherparse::PacketBuilder;
use wscope_proto::time::Instant;

use wscope_inspect::capture::LinkType;
use wscope_inspect::decode::TcpFlags;

/// Snapshot length written in headers.
pub const SNAPLEN: u32 = 262_144;

/// The link layer around an IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Ethernet II.
    Ethernet,
    /// Ethernet II with one 802.1Q tag (the VLAN id).
    Vlan(u16),
    /// Ethernet II with an 802.1ad outer tag and an 802.1Q inner tag (outer, inner).
    QinQ(u16, u16),
    /// Linux cooked capture v1.
    LinuxSll,
    /// Linux cooked capture v2.
    LinuxSll2,
    /// Raw IP (`LINKTYPE_RAW`).
    Raw,
    /// BSD loopback, little-endian family (`LINKTYPE_NULL`).
    Null,
    /// OpenBSD loopback, big-endian family (`LINKTYPE_LOOP`).
    Loop,
}

impl Framing {
    /// The link type of packets with this framing.
    pub const fn link_type(self) -> LinkType {
        match self {
            Self::Ethernet | Self::Vlan(_) | Self::QinQ(..) => LinkType::ETHERNET,
            Self::LinuxSll => LinkType::LINUX_SLL,
            Self::LinuxSll2 => LinkType::LINUX_SLL2,
            Self::Raw => LinkType::RAW,
            Self::Null => LinkType::NULL,
            Self::Loop => LinkType::LOOP,
        }
    }

    /// Appends this link layer's header for an IPv4 (`v6 == false`) or IPv6 packet.
    pub fn write_header(self, v6: bool, out: &mut Vec<u8>) {
        let et: u16 = if v6 { 0x86DD } else { 0x0800 };
        let macs = [
            0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // destination
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source
        ];
        match self {
            Self::Ethernet => {
                out.extend_from_slice(&macs);
                out.extend_from_slice(&et.to_be_bytes());
            }
            Self::Vlan(id) => {
                out.extend_from_slice(&macs);
                out.extend_from_slice(&0x8100u16.to_be_bytes());
                out.extend_from_slice(&(id & 0x0FFF).to_be_bytes());
                out.extend_from_slice(&et.to_be_bytes());
            }
            Self::QinQ(outer, inner) => {
                out.extend_from_slice(&macs);
                out.extend_from_slice(&0x88A8u16.to_be_bytes());
                out.extend_from_slice(&(outer & 0x0FFF).to_be_bytes());
                out.extend_from_slice(&0x8100u16.to_be_bytes());
                out.extend_from_slice(&(inner & 0x0FFF).to_be_bytes());
                out.extend_from_slice(&et.to_be_bytes());
            }
            Self::LinuxSll => {
                out.extend_from_slice(&0u16.to_be_bytes()); // packet type: to us
                out.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
                out.extend_from_slice(&6u16.to_be_bytes()); // address length
                out.extend_from_slice(&macs[6..]);
                out.extend_from_slice(&[0, 0]); // address padding to 8 bytes
                out.extend_from_slice(&et.to_be_bytes());
            }
            Self::LinuxSll2 => {
                out.extend_from_slice(&et.to_be_bytes());
                out.extend_from_slice(&[0, 0]); // reserved
                out.extend_from_slice(&1u32.to_be_bytes()); // interface index
                out.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
                out.push(0); // packet type
                out.push(6); // address length
                out.extend_from_slice(&macs[6..]);
                out.extend_from_slice(&[0, 0]);
            }
            Self::Raw => {}
            Self::Null => {
                let fam: u32 = if v6 { 30 } else { 2 };
                out.extend_from_slice(&fam.to_le_bytes());
            }
            Self::Loop => {
                let fam: u32 = if v6 { 24 } else { 2 };
                out.extend_from_slice(&fam.to_be_bytes());
            }
        }
    }
}

/// A TCP segment to encode.
#[derive(Clone, Copy, Debug)]
pub struct TcpSpec<'a> {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (written when [`TcpFlags::ACK`] is set).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window.
    pub window: u16,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> TcpSpec<'a> {
    /// A segment from `src` to `dst` with sequence 0, no flags, window 65535, no payload.
    pub const fn new(src: SocketAddr, dst: SocketAddr) -> Self {
        Self {
            src,
            dst,
            seq: 0,
            ack: 0,
            flags: TcpFlags(0),
            window: 65535,
            payload: &[],
        }
    }

    /// With this sequence number.
    #[must_use]
    pub const fn seq(mut self, seq: u32) -> Self {
        self.seq = seq;
        self
    }

    /// With this acknowledgment number, and the ACK flag set.
    #[must_use]
    pub const fn ack(mut self, ack: u32) -> Self {
        self.ack = ack;
        self.flags = TcpFlags(self.flags.0 | TcpFlags::ACK.0);
        self
    }

    /// With these flags added.
    #[must_use]
    pub const fn flags(mut self, flags: TcpFlags) -> Self {
        self.flags = TcpFlags(self.flags.0 | flags.0);
        self
    }

    /// With this payload.
    #[must_use]
    pub const fn payload(mut self, payload: &'a [u8]) -> Self {
        self.payload = payload;
        self
    }
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Appends a whole packet (link header, IP header, TCP header, payload) to `out`.
///
/// Fails if the two addresses are of different families or the payload does not fit an IP
/// packet.
pub fn encode_tcp(framing: Framing, spec: &TcpSpec<'_>, out: &mut Vec<u8>) -> io::Result<()> {
    let v6 = match (spec.src.ip(), spec.dst.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => false,
        (IpAddr::V6(_), IpAddr::V6(_)) => true,
        _ => return Err(invalid("source and destination address families differ")),
    };
    framing.write_header(v6, out);
    let ip = match (spec.src.ip(), spec.dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => return Err(invalid("source and destination address families differ")),
    };
    let mut b = ip.tcp(spec.src.port(), spec.dst.port(), spec.seq, spec.window);
    let f = spec.flags;
    if f.syn() {
        b = b.syn();
    }
    if f.fin() {
        b = b.fin();
    }
    if f.rst() {
        b = b.rst();
    }
    if f.contains(TcpFlags::PSH) {
        b = b.psh();
    }
    if f.ack() {
        b = b.ack(spec.ack);
    }
    b.write(out, spec.payload)
        .map_err(|_| invalid("payload too large for an IP packet"))
}

/// Splits the unfragmented IP packet `ip` (IPv4, or IPv6 without extension headers) into
/// fragments carrying at most `max_payload` bytes of its payload each (rounded down to a
/// multiple of 8), as a router would. IPv4 fragments keep the packet's identification and
/// get fresh header checksums; IPv6 fragments get a fragment header with `id`.
///
/// ```
/// use wscope_test_support::capture::{encode_tcp, fragment_ip, Framing, TcpSpec};
/// let spec = TcpSpec::new("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap())
///     .payload(&[7; 3000]);
/// let mut ip = Vec::new();
/// encode_tcp(Framing::Raw, &spec, &mut ip)?;
/// let frags = fragment_ip(&ip, 1480, 0)?;
/// assert_eq!(frags.len(), 3); // 20 + 3000 bytes of TCP in 1480-byte pieces
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn fragment_ip(ip: &[u8], max_payload: usize, id: u32) -> io::Result<Vec<Vec<u8>>> {
    let step = max_payload & !7;
    if step == 0 {
        return Err(invalid("fragments must carry at least 8 bytes"));
    }
    match ip.first().map(|b| b >> 4) {
        Some(4) => {
            let hl = usize::from(ip[0] & 0x0f) * 4;
            let total = ip
                .get(2..4)
                .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
            if hl < 20 || total < hl || total > ip.len() {
                return Err(invalid("not a whole IPv4 packet"));
            }
            let (head, body) = (&ip[..hl], &ip[hl..total]);
            let mut out = Vec::new();
            for (i, piece) in body.chunks(step).enumerate() {
                let at = i * step;
                let more = at + piece.len() < body.len();
                let mut f = head.to_vec();
                let len = u16::try_from(hl + piece.len()).map_err(|_| invalid("too large"))?;
                f[2..4].copy_from_slice(&len.to_be_bytes());
                let field = (u16::from(more) << 13) | (at / 8) as u16;
                f[6..8].copy_from_slice(&field.to_be_bytes());
                f[10..12].copy_from_slice(&[0, 0]);
                let sum = ipv4_checksum(&f);
                f[10..12].copy_from_slice(&sum.to_be_bytes());
                f.extend_from_slice(piece);
                out.push(f);
            }
            Ok(out)
        }
        Some(6) if ip.len() >= 40 => {
            let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            let body = ip
                .get(40..40 + plen)
                .ok_or_else(|| invalid("not a whole IPv6 packet"))?;
            let next = ip[6];
            let mut out = Vec::new();
            for (i, piece) in body.chunks(step).enumerate() {
                let at = i * step;
                let more = at + piece.len() < body.len();
                let mut f = ip[..40].to_vec();
                let len = u16::try_from(8 + piece.len()).map_err(|_| invalid("too large"))?;
                f[4..6].copy_from_slice(&len.to_be_bytes());
                f[6] = 44;
                f.push(next);
                f.push(0);
                let field = u16::try_from(at).map_err(|_| invalid("too large"))? | u16::from(more);
                f.extend_from_slice(&field.to_be_bytes());
                f.extend_from_slice(&id.to_be_bytes());
                f.extend_from_slice(piece);
                out.push(f);
            }
            Ok(out)
        }
        _ => Err(invalid("not an IPv4 or IPv6 packet")),
    }
}

/// The IPv4 header checksum of `header` (with its checksum field zeroed).
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes a classic pcap file (little-endian, microsecond timestamps).
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    w: W,
    scratch: Vec<u8>,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header for `link`.
    pub fn new(mut w: W, link: LinkType) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&link.0.to_le_bytes());
        w.write_all(&h)?;
        Ok(Self {
            w,
            scratch: Vec::new(),
        })
    }

    /// Writes one packet captured whole.
    pub fn write_packet(&mut self, ts: Instant, data: &[u8]) -> io::Result<()> {
        self.write_packet_cut(ts, data, data.len())
    }

    /// Writes one packet of which only the first `caplen` bytes were captured.
    pub fn write_packet_cut(&mut self, ts: Instant, data: &[u8], caplen: usize) -> io::Result<()> {
        let caplen = caplen.min(data.len());
        let secs = u32::try_from(ts.as_micros() / 1_000_000)
            .map_err(|_| invalid("timestamp beyond 2106"))?;
        let usecs = (ts.as_micros() % 1_000_000) as u32;
        let orig = u32::try_from(data.len()).map_err(|_| invalid("packet too large"))?;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&usecs.to_le_bytes());
        h[8..12].copy_from_slice(&(caplen as u32).to_le_bytes());
        h[12..16].copy_from_slice(&orig.to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(&data[..caplen])
    }

    /// Encodes and writes one TCP packet.
    pub fn write_tcp(
        &mut self,
        ts: Instant,
        framing: Framing,
        spec: &TcpSpec<'_>,
    ) -> io::Result<()> {
        let mut buf = mem_take(&mut self.scratch);
        buf.clear();
        let r = encode_tcp(framing, spec, &mut buf).and_then(|()| self.write_packet(ts, &buf));
        self.scratch = buf;
        r
    }

    /// Encodes one TCP packet and writes it as IP fragments of at most `max_payload` bytes
    /// each (see [`fragment_ip`]), in order, all at `ts`. Returns how many were written.
    pub fn write_tcp_fragmented(
        &mut self,
        ts: Instant,
        framing: Framing,
        spec: &TcpSpec<'_>,
        max_payload: usize,
    ) -> io::Result<usize> {
        let mut ip = Vec::new();
        encode_tcp(Framing::Raw, spec, &mut ip)?;
        let frags = fragment_ip(&ip, max_payload, spec.seq)?;
        let v6 = spec.src.is_ipv6();
        for f in &frags {
            let mut pkt = Vec::with_capacity(f.len() + 20);
            framing.write_header(v6, &mut pkt);
            pkt.extend_from_slice(f);
            self.write_packet(ts, &pkt)?;
        }
        Ok(frags.len())
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(mut self) -> W {
        let _ = self.w.flush();
        self.w
    }
}

fn mem_take(v: &mut Vec<u8>) -> Vec<u8> {
    core::mem::take(v)
}

/// Writes a pcapng file (little-endian): one section, interfaces added as needed.
#[derive(Debug)]
pub struct PcapNgWriter<W: Write> {
    w: W,
    resolutions: Vec<u8>,
}

fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

impl<W: Write> PcapNgWriter<W> {
    /// Writes the section header block.
    pub fn new(mut w: W) -> io::Result<Self> {
        let mut b = Vec::with_capacity(28);
        b.extend_from_slice(&0x0A0D_0D0Au32.to_le_bytes());
        b.extend_from_slice(&28u32.to_le_bytes());
        b.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
        b.extend_from_slice(&28u32.to_le_bytes());
        w.write_all(&b)?;
        Ok(Self {
            w,
            resolutions: Vec::new(),
        })
    }

    /// Describes a new interface and returns its id. `tsresol` is the raw `if_tsresol` value
    /// (6 = microseconds, 9 = nanoseconds, `0x80 | n` = 2^-n seconds).
    pub fn add_interface(&mut self, link: LinkType, tsresol: u8) -> io::Result<u32> {
        let mut body = Vec::new();
        body.extend_from_slice(&(link.0 as u16).to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&SNAPLEN.to_le_bytes());
        // if_tsresol option (code 9, length 1), padded, then opt_endofopt.
        body.extend_from_slice(&9u16.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.push(tsresol);
        pad4(&mut body);
        body.extend_from_slice(&[0, 0, 0, 0]);
        self.block(1, &body)?;
        self.resolutions.push(tsresol);
        Ok((self.resolutions.len() - 1) as u32)
    }

    /// Writes an enhanced packet block with a timestamp in the interface's units.
    pub fn write_packet_units(&mut self, iface: u32, units: u64, data: &[u8]) -> io::Result<()> {
        if iface as usize >= self.resolutions.len() {
            return Err(invalid("unknown interface"));
        }
        let len = u32::try_from(data.len()).map_err(|_| invalid("packet too large"))?;
        let mut body = Vec::with_capacity(20 + data.len() + 4);
        body.extend_from_slice(&iface.to_le_bytes());
        body.extend_from_slice(&((units >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(units as u32).to_le_bytes());
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(data);
        pad4(&mut body);
        self.block(6, &body)
    }

    /// Writes an enhanced packet block, converting `ts` to the interface's resolution
    /// (decimal resolutions only; binary ones are written in microseconds scaled by 2^n/10^6).
    pub fn write_packet(&mut self, iface: u32, ts: Instant, data: &[u8]) -> io::Result<()> {
        let res = *self
            .resolutions
            .get(iface as usize)
            .ok_or_else(|| invalid("unknown interface"))?;
        let per_sec: u128 = if res & 0x80 == 0 {
            10u128.pow(u32::from(res.min(19)))
        } else {
            1u128 << (res & 0x7F).min(63)
        };
        let units = u128::from(ts.as_micros()) * per_sec / 1_000_000;
        self.write_packet_units(iface, u64::try_from(units).unwrap_or(u64::MAX), data)
    }

    fn block(&mut self, kind: u32, body: &[u8]) -> io::Result<()> {
        let total = u32::try_from(12 + body.len()).map_err(|_| invalid("block too large"))?;
        self.w.write_all(&kind.to_le_bytes())?;
        self.w.write_all(&total.to_le_bytes())?;
        self.w.write_all(body)?;
        self.w.write_all(&total.to_le_bytes())
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(mut self) -> W {
        let _ = self.w.flush();
        self.w
    }
}

/// A pcapng whose packets the analyzer must skip and count: two on an interface of an
/// unsupported link type (147, user 0), then (with `local_use_block`) an empty block of the
/// local-use type `0x80000001`, one TCP SYN on a raw-IP interface, and that packet again naming
/// interface 7, which was never described.
pub fn pcapng_with_skipped_packets(local_use_block: bool) -> Vec<u8> {
    let c: SocketAddr = "10.0.0.1:40000".parse().expect("address");
    let s: SocketAddr = "10.0.0.2:80".parse().expect("address");
    let mut syn = Vec::new();
    encode_tcp(
        Framing::Raw,
        &TcpSpec::new(c, s).seq(1).flags(TcpFlags::SYN),
        &mut syn,
    )
    .expect("a SYN");
    let mut w = PcapNgWriter::new(Vec::new()).expect("in memory");
    let user = w.add_interface(LinkType(147), 6).expect("in memory");
    let raw = w.add_interface(LinkType::RAW, 6).expect("in memory");
    for us in [1_000_000, 1_000_001] {
        w.write_packet(user, Instant::from_micros(us), b"opaque")
            .expect("in memory");
    }
    let mut bytes = w.into_inner();
    // The SYN's enhanced packet block, written on its own and cut out of that file.
    let mut w = PcapNgWriter::new(Vec::new()).expect("in memory");
    w.add_interface(LinkType(147), 6).expect("in memory");
    w.add_interface(LinkType::RAW, 6).expect("in memory");
    w.write_packet(raw, Instant::from_micros(1_000_002), &syn)
        .expect("in memory");
    let second = w.into_inner();
    let epb = 12 + 20 + syn.len().div_ceil(4) * 4;
    let packet = &second[second.len() - epb..];
    if local_use_block {
        for word in [0x8000_0001u32, 12, 12] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
    }
    bytes.extend_from_slice(packet);
    let mut stray = packet.to_vec();
    stray[8..12].copy_from_slice(&7u32.to_le_bytes());
    bytes.extend_from_slice(&stray);
    bytes
}
