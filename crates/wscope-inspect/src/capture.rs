//! Capture input: pcap and pcapng files, read as a stream.
//!
//! [`CaptureReader`] reads one capture from any [`Read`] through `pcap-parser`'s streaming
//! reader: a fixed buffer is refilled as blocks are consumed, so a capture of any size is read
//! in constant memory (the buffer grows only for a single block larger than it, up to
//! [`MAX_BLOCK_LEN`]). [`Capture`] chains several sources (files, or `-` for standard input)
//! into one run, in the order given.
//!
//! Each packet comes out as a [`Packet`]: its timestamp in microseconds since the Unix epoch
//! (a [`wscope_proto::time::Instant`], so the analyzer never reads a clock), its [`LinkType`]
//! and its captured bytes, borrowed from the reader's buffer until the next call.
//!
//! pcapng files may describe several interfaces with different link types and timestamp
//! resolutions (`if_tsresol`, `if_tsoffset`); each packet is decoded with its own interface's
//! values, and a new section header starts a fresh interface list.
//!
//! Malformed input never panics: a truncated or garbage file yields the packets read so far and
//! then a [`CaptureError`] saying what went wrong and at which byte offset.

use core::fmt;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};
use wscope_proto::time::Instant;

/// Initial size of the read buffer.
pub const DEFAULT_BUFFER_LEN: usize = 1 << 20;

/// Largest single pcap record or pcapng block accepted; larger ones are reported as
/// [`CaptureErrorKind::BlockTooLarge`] instead of growing the buffer without bound.
pub const MAX_BLOCK_LEN: usize = 16 << 20;

/// Largest pcap record accepted when its header's snapshot length is smaller (libpcap's own
/// limit for most link types): a larger captured length means a damaged file.
const MAX_PCAP_RECORD: usize = 262_144;

/// A data-link type (`LINKTYPE_*` in the pcap registry) that says how a packet's bytes begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: a 4-byte address family in the capturing host's byte order (`DLT_NULL`).
    pub const NULL: Self = Self(0);
    /// Ethernet II, possibly with 802.1Q / 802.1ad VLAN tags.
    pub const ETHERNET: Self = Self(1);
    /// Raw IPv4 or IPv6, told apart by the version nibble.
    pub const RAW: Self = Self(101);
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    pub const LOOP: Self = Self(108);
    /// Linux "cooked" capture v1 (16-byte header).
    pub const LINUX_SLL: Self = Self(113);
    /// Raw IPv4 only.
    pub const IPV4: Self = Self(228);
    /// Raw IPv6 only.
    pub const IPV6: Self = Self(229);
    /// Linux "cooked" capture v2 (20-byte header).
    pub const LINUX_SLL2: Self = Self(276);
    /// `DLT_RAW` as numbered on some BSDs (12); same as [`LinkType::RAW`].
    pub const RAW_BSD12: Self = Self(12);
    /// `DLT_RAW` as numbered on OpenBSD (14); same as [`LinkType::RAW`].
    pub const RAW_BSD14: Self = Self(14);

    /// Whether [`crate::decode`] understands this link type.
    pub const fn is_supported(self) -> bool {
        matches!(self.0, 0 | 1 | 12 | 14 | 101 | 108 | 113 | 228 | 229 | 276)
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            0 => "NULL",
            1 => "ETHERNET",
            12 | 14 | 101 => "RAW",
            108 => "LOOP",
            113 => "LINUX_SLL",
            228 => "IPV4",
            229 => "IPV6",
            276 => "LINUX_SLL2",
            n => return write!(f, "LINKTYPE_{n}"),
        };
        f.write_str(name)
    }
}

/// The container format of a capture file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Classic libpcap (any byte order, microsecond or nanosecond timestamps).
    Pcap,
    /// pcapng.
    PcapNg,
}

/// One captured packet, borrowed from the reader until its next call.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Capture time in microseconds since the Unix epoch (sub-microsecond digits are cut).
    pub ts: Instant,
    /// How `data` begins.
    pub link: LinkType,
    /// The captured bytes (possibly fewer than `orig_len` when the snapshot length cut them).
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub orig_len: u32,
    /// 1-based packet number within the run (across all files of a [`Capture`]).
    pub number: u64,
    /// 0-based index of the source the packet came from (always 0 for a [`CaptureReader`]).
    pub source: usize,
}

/// What went wrong while reading a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaptureErrorKind {
    /// The source could not be opened or read (see [`CaptureError::io_kind`]).
    Io,
    /// The input is empty.
    Empty,
    /// The first bytes are neither a pcap nor a pcapng header.
    NotACapture,
    /// The input ends inside a header, record or block.
    Truncated,
    /// A record or block is malformed (bad length, bad structure).
    Malformed,
    /// A record or block is larger than [`MAX_BLOCK_LEN`] (or a pcap record larger than both
    /// the file's snapshot length and 256 KiB).
    BlockTooLarge,
    /// A live capture failed on its network interface (the interface went away).
    Interface,
}

/// An error reading a capture, with the source and byte offset where it happened.
#[derive(Debug)]
pub struct CaptureError {
    kind: CaptureErrorKind,
    source_name: String,
    offset: u64,
    io: Option<io::Error>,
}

impl CaptureError {
    pub(crate) fn new(kind: CaptureErrorKind, source_name: &str, offset: u64) -> Self {
        Self {
            kind,
            source_name: source_name.to_owned(),
            offset,
            io: None,
        }
    }

    pub(crate) fn io(err: io::Error, source_name: &str, offset: u64) -> Self {
        Self {
            kind: CaptureErrorKind::Io,
            source_name: source_name.to_owned(),
            offset,
            io: Some(err),
        }
    }

    /// A live capture failed on `interface`.
    pub fn interface(interface: &str, err: io::Error) -> Self {
        Self {
            kind: CaptureErrorKind::Interface,
            source_name: interface.to_owned(),
            offset: 0,
            io: Some(err),
        }
    }

    /// What went wrong.
    pub const fn kind(&self) -> CaptureErrorKind {
        self.kind
    }

    /// The name of the source (a path, `-` for standard input, or a caller-given name).
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Byte offset in the source of the header, record or block that failed.
    pub const fn offset(&self) -> u64 {
        self.offset
    }

    /// The I/O error kind, for [`CaptureErrorKind::Io`].
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        self.io.as_ref().map(io::Error::kind)
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.source_name.as_str() {
            "-" => "standard input",
            other => other,
        };
        // The problems a user meets first, said the way tshark says them.
        match (self.kind, self.io_kind()) {
            (CaptureErrorKind::Io, Some(io::ErrorKind::NotFound)) if self.offset == 0 => {
                return write!(f, "{name}: the file does not exist");
            }
            (CaptureErrorKind::Io, Some(io::ErrorKind::IsADirectory)) => {
                return write!(f, "{name}: is a directory, not a capture file");
            }
            (CaptureErrorKind::Io, Some(io::ErrorKind::PermissionDenied)) if self.offset == 0 => {
                return write!(f, "{name}: permission denied (cannot open the file)");
            }
            (CaptureErrorKind::Empty, _) => {
                let what = if self.source_name == "-" {
                    "no data"
                } else {
                    "the file is empty"
                };
                return write!(f, "{name}: {what}, not a pcap or pcapng capture");
            }
            (CaptureErrorKind::Interface, _) => {
                write!(f, "{name}: capture failed")?;
                if let Some(io) = &self.io {
                    write!(f, ": {io}")?;
                }
                return Ok(());
            }
            (CaptureErrorKind::NotACapture, _) => {
                return write!(
                    f,
                    "{name}: not a pcap or pcapng capture (unknown file header; raw WebSocket \
                     frames go to `wscope parse`)"
                );
            }
            _ => {}
        }
        let what = match self.kind {
            CaptureErrorKind::Io => "I/O error",
            CaptureErrorKind::Empty => "empty input",
            CaptureErrorKind::NotACapture => "not a pcap or pcapng file",
            CaptureErrorKind::Truncated => "capture truncated",
            CaptureErrorKind::Malformed => "malformed record or block",
            CaptureErrorKind::BlockTooLarge => "record or block too large",
            CaptureErrorKind::Interface => "capture failed",
        };
        write!(f, "{}: {what} at byte {}", self.source_name, self.offset)?;
        if let Some(io) = &self.io {
            write!(f, ": {io}")?;
        }
        Ok(())
    }
}

impl core::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        self.io
            .as_ref()
            .map(|e| e as &(dyn core::error::Error + 'static))
    }
}

/// Counters kept while reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Sources opened (files, standard input, readers).
    pub sources: u64,
    /// Packets returned.
    pub packets: u64,
    /// Captured bytes returned (sum of `data.len()`).
    pub bytes: u64,
    /// Packets whose captured length is below their length on the wire.
    pub truncated_packets: u64,
    /// pcapng blocks that carry no packet (section, interface, statistics, name resolution,
    /// custom, unknown ...).
    pub other_blocks: u64,
    /// pcapng packets that name an interface not described before them (skipped).
    pub unknown_interface: u64,
}

impl CaptureStats {
    /// Adds the counters of another capture (another share of the traffic).
    pub fn add(&mut self, o: &Self) {
        self.sources += o.sources;
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.truncated_packets += o.truncated_packets;
        self.other_blocks += o.other_blocks;
        self.unknown_interface += o.unknown_interface;
    }
}

/// A reader that makes its first `read` fill the whole buffer (or reach the end), so the
/// capture header parsed after that first read is complete even on a pipe. Later reads pass
/// through; `Interrupted` is retried.
struct FillFirst<R> {
    prefix: [u8; 4],
    prefix_len: usize,
    prefix_pos: usize,
    first: bool,
    inner: R,
}

impl<R: Read> Read for FillFirst<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        if self.prefix_pos < self.prefix_len {
            let take = (self.prefix_len - self.prefix_pos).min(buf.len());
            buf[..take].copy_from_slice(&self.prefix[self.prefix_pos..self.prefix_pos + take]);
            self.prefix_pos += take;
            n = take;
        }
        let fill_all = self.first;
        self.first = false;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => {
                    n += k;
                    if !fill_all {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if n > 0 => {
                    // Report what was read; the error comes back on the next call.
                    let _ = e;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

enum Inner<R: Read> {
    Legacy(LegacyPcapReader<FillFirst<R>>),
    Ng(PcapNGReader<FillFirst<R>>),
}

impl<R: Read> Inner<R> {
    fn it(&mut self) -> &mut dyn PcapReaderIterator {
        match self {
            Self::Legacy(r) => r,
            Self::Ng(r) => r,
        }
    }
}

/// A pcapng interface: what its packets' link type and timestamps are.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Interface {
    link: LinkType,
    /// Timestamp units per second.
    resolution: u64,
    /// Seconds added to every timestamp.
    offset_secs: i64,
}

/// One whole pcapng block as [`CaptureReader`] reads it (see [`ng_block`]).
#[derive(Debug)]
pub(crate) enum NgBlock {
    /// A packet: its time, link type, and where its data is in the block.
    Packet {
        ts: Instant,
        link: LinkType,
        at: usize,
        len: usize,
        orig_len: u32,
    },
    /// A Section Header Block: a new section in this byte order (no interfaces yet).
    Section { big_endian: bool },
    /// An Interface Description Block.
    Interface(Interface),
    /// A packet of an interface not described before it (skipped).
    UnknownInterface,
    /// A TLS Decryption Secrets Block's key log text.
    Secrets(Vec<u8>),
    /// Any other block (counted, skipped).
    Other,
}

/// Reads the pcapng block `block` (exactly one whole block, in a section of this byte order
/// with these interfaces) with the code of [`CaptureReader`]. `None` when it is not one
/// whole, well-formed block that the reader would read the same way on its own (the caller
/// then leaves it to a reader).
pub(crate) fn ng_block(
    block: &[u8],
    big_endian: bool,
    interfaces: &[Interface],
) -> Option<NgBlock> {
    if let Some(n) = skippable_ng_block(block, big_endian) {
        if n != block.len() {
            return None;
        }
        return Some(match tls_secrets(block, big_endian) {
            Some(OtherBlock::Secrets(text)) => NgBlock::Secrets(text),
            _ => NgBlock::Other,
        });
    }
    let parse = if big_endian {
        pcap_parser::pcapng::parse_block_be
    } else {
        pcap_parser::pcapng::parse_block_le
    };
    let (rem, b) = parse(block).ok()?;
    if !rem.is_empty() {
        return None;
    }
    let base = block.as_ptr() as usize;
    Some(match ng_step(block.len(), &b, interfaces, base) {
        Step::Packet(_, c) => NgBlock::Packet {
            ts: c.ts,
            link: c.link,
            at: c.start,
            len: c.len,
            orig_len: c.orig_len,
        },
        Step::Other(_, Some(OtherBlock::Section { big_endian })) => NgBlock::Section { big_endian },
        Step::Other(_, Some(OtherBlock::Interface(i))) => NgBlock::Interface(i),
        Step::Other(_, Some(OtherBlock::UnknownInterface)) => NgBlock::UnknownInterface,
        Step::Other(_, None) => NgBlock::Other,
        _ => return None,
    })
}

/// Where the current packet sits in the reader's buffer, with its metadata.
#[derive(Clone, Copy, Debug)]
struct Current {
    ts: Instant,
    link: LinkType,
    start: usize,
    len: usize,
    orig_len: u32,
}

/// What one parse step produced, with no borrow of the buffer left.
enum Step {
    Packet(usize, Current),
    Other(usize, Option<OtherBlock>),
    Eof,
    Refill,
    Grow,
    Fail(CaptureErrorKind),
}

enum OtherBlock {
    LegacyHeader {
        link: LinkType,
        nanos: bool,
        big_endian: bool,
        snaplen: u32,
    },
    Section {
        big_endian: bool,
    },
    Interface(Interface),
    UnknownInterface,
    /// The key log text of a TLS Decryption Secrets Block.
    Secrets(Vec<u8>),
}

/// Reads one pcap or pcapng capture from a [`Read`], packet by packet, in constant memory.
pub struct CaptureReader<R: Read> {
    inner: Inner<R>,
    format: Format,
    name: String,
    /// Bytes of the last returned block still to be consumed.
    pending: usize,
    /// Byte offset in the source of the block at the buffer's front.
    offset: u64,
    buffer_len: usize,
    legacy_link: LinkType,
    legacy_nanos: bool,
    legacy_be: bool,
    legacy_snaplen: u32,
    ng_be: bool,
    interfaces: Vec<Interface>,
    current: Option<Current>,
    done: bool,
    stats: CaptureStats,
    /// Key logs of Decryption Secrets Blocks not yet taken.
    secrets: Vec<Vec<u8>>,
}

impl<R: Read> fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureReader")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl CaptureReader<File> {
    /// Opens a capture file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| CaptureError::io(e, &name, 0))?;
        Self::with_name(file, &name)
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads a capture from `reader`; `name` is used in errors.
    ///
    /// Reads the first bytes to tell pcap from pcapng; fails with [`CaptureErrorKind::Empty`],
    /// [`CaptureErrorKind::NotACapture`] or [`CaptureErrorKind::Truncated`] when the header is
    /// not usable.
    pub fn with_name(reader: R, name: &str) -> Result<Self, CaptureError> {
        Self::with_buffer_len(reader, name, DEFAULT_BUFFER_LEN)
    }

    /// Like [`CaptureReader::with_name`] with a chosen initial buffer size (at least 64 KiB is
    /// used).
    pub fn with_buffer_len(
        mut reader: R,
        name: &str,
        buffer_len: usize,
    ) -> Result<Self, CaptureError> {
        let buffer_len = buffer_len.clamp(1 << 16, MAX_BLOCK_LEN);
        let mut prefix = [0u8; 4];
        let mut got = 0;
        while got < prefix.len() {
            match reader.read(&mut prefix[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CaptureError::io(e, name, 0)),
            }
        }
        if got == 0 {
            return Err(CaptureError::new(CaptureErrorKind::Empty, name, 0));
        }
        if got < prefix.len() {
            return Err(CaptureError::new(CaptureErrorKind::Truncated, name, 0));
        }
        let format = match u32::from_le_bytes(prefix) {
            0x0A0D_0D0A => Format::PcapNg,
            0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1 | 0xA1B2_CD34 => Format::Pcap,
            _ => return Err(CaptureError::new(CaptureErrorKind::NotACapture, name, 0)),
        };
        let fill = FillFirst {
            prefix,
            prefix_len: got,
            prefix_pos: 0,
            first: true,
            inner: reader,
        };
        let map_open = |e: PcapError<&'static [u8]>| {
            let kind = match e {
                PcapError::ReadError => CaptureErrorKind::Io,
                PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::Eof => {
                    CaptureErrorKind::Truncated
                }
                PcapError::HeaderNotRecognized => CaptureErrorKind::NotACapture,
                _ => CaptureErrorKind::Malformed,
            };
            CaptureError::new(kind, name, 0)
        };
        let inner = match format {
            Format::Pcap => {
                Inner::Legacy(LegacyPcapReader::new(buffer_len, fill).map_err(map_open)?)
            }
            Format::PcapNg => Inner::Ng(PcapNGReader::new(buffer_len, fill).map_err(map_open)?),
        };
        Ok(Self {
            inner,
            format,
            name: name.to_owned(),
            pending: 0,
            offset: 0,
            buffer_len,
            legacy_link: LinkType::ETHERNET,
            legacy_nanos: false,
            legacy_be: false,
            legacy_snaplen: 0,
            ng_be: false,
            interfaces: Vec::new(),
            current: None,
            done: false,
            stats: CaptureStats {
                sources: 1,
                ..CaptureStats::default()
            },
            secrets: Vec::new(),
        })
    }

    /// The key log text of the next TLS Decryption Secrets Block read and not yet taken
    /// (pcapng; what `editcap --inject-secrets tls,KEYS` writes).
    pub fn take_secrets(&mut self) -> Option<Vec<u8>> {
        if self.secrets.is_empty() {
            None
        } else {
            Some(self.secrets.remove(0))
        }
    }

    /// The container format.
    pub const fn format(&self) -> Format {
        self.format
    }

    /// The name used in errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counters so far.
    pub const fn stats(&self) -> &CaptureStats {
        &self.stats
    }

    /// The next packet, `Ok(None)` at the end of the capture.
    ///
    /// After an error the reader is finished: later calls return `Ok(None)`.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        if self.advance()? {
            Ok(self.packet(0, self.stats.packets))
        } else {
            Ok(None)
        }
    }

    /// Moves to the next packet; `Ok(false)` at the end. The packet is then read with
    /// [`CaptureReader::packet`]. (Split in two so callers can loop without holding a borrow.)
    fn advance(&mut self) -> Result<bool, CaptureError> {
        self.current = None;
        if self.done {
            return Ok(false);
        }
        if self.pending > 0 {
            self.inner.it().consume(self.pending);
            self.offset += self.pending as u64;
            self.pending = 0;
        }
        loop {
            let step = self.step();
            match step {
                Step::Packet(n, cur) => {
                    self.pending = n;
                    self.current = Some(cur);
                    self.stats.packets += 1;
                    self.stats.bytes += cur.len as u64;
                    if (cur.len as u64) < u64::from(cur.orig_len) {
                        self.stats.truncated_packets += 1;
                    }
                    return Ok(true);
                }
                Step::Other(n, block) => {
                    match block {
                        Some(OtherBlock::LegacyHeader {
                            link,
                            nanos,
                            big_endian,
                            snaplen,
                        }) => {
                            self.legacy_link = link;
                            self.legacy_nanos = nanos;
                            self.legacy_be = big_endian;
                            self.legacy_snaplen = snaplen;
                        }
                        Some(OtherBlock::Section { big_endian }) => {
                            self.ng_be = big_endian;
                            self.interfaces.clear();
                            self.stats.other_blocks += 1;
                        }
                        Some(OtherBlock::Interface(i)) => {
                            self.interfaces.push(i);
                            self.stats.other_blocks += 1;
                        }
                        Some(OtherBlock::UnknownInterface) => self.stats.unknown_interface += 1,
                        Some(OtherBlock::Secrets(text)) => {
                            self.stats.other_blocks += 1;
                            if self.secrets.len() < MAX_SECRETS_BLOCKS {
                                self.secrets.push(text);
                            }
                        }
                        None => self.stats.other_blocks += 1,
                    }
                    self.inner.it().consume(n);
                    self.offset += n as u64;
                }
                Step::Eof => {
                    self.done = true;
                    return Ok(false);
                }
                Step::Refill => {
                    let it = self.inner.it();
                    let before = it.data().len();
                    if it.refill().is_err() {
                        return Err(self.fail(CaptureErrorKind::Io));
                    }
                    let it = self.inner.it();
                    if it.data().len() == before && !it.reader_exhausted() {
                        // No room was left to read into: the block needs a bigger buffer.
                        self.grow()?;
                    }
                }
                Step::Grow => self.grow()?,
                Step::Fail(kind) => return Err(self.fail(kind)),
            }
        }
    }

    /// Grows the buffer for the block at its front, if that block's declared size is
    /// plausible.
    fn grow(&mut self) -> Result<(), CaptureError> {
        let data = self.inner.it().data();
        let u32_at = |at: usize, be: bool| -> Option<usize> {
            let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
            Some(if be {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            } as usize)
        };
        let (needed, limit) = match self.format {
            Format::Pcap => (
                u32_at(8, self.legacy_be).map(|caplen| caplen.saturating_add(24)),
                (self.legacy_snaplen as usize).max(MAX_PCAP_RECORD) + 24,
            ),
            Format::PcapNg => (u32_at(4, self.ng_be), MAX_BLOCK_LEN),
        };
        let needed = needed.unwrap_or(0);
        if needed > limit.min(MAX_BLOCK_LEN) {
            return Err(self.fail(CaptureErrorKind::BlockTooLarge));
        }
        let want = self
            .buffer_len
            .saturating_mul(2)
            .max(needed.saturating_add(1))
            .min(MAX_BLOCK_LEN.saturating_mul(2));
        if want <= self.buffer_len || !self.inner.it().grow(want) {
            return Err(self.fail(CaptureErrorKind::BlockTooLarge));
        }
        self.buffer_len = want;
        Ok(())
    }

    fn fail(&mut self, kind: CaptureErrorKind) -> CaptureError {
        self.done = true;
        CaptureError::new(kind, &self.name, self.offset)
    }

    /// Parses one block and turns it into a [`Step`] that holds no borrow.
    fn step(&mut self) -> Step {
        if self.format == Format::PcapNg {
            let data = self.inner.it().data();
            if let Some(n) = skippable_ng_block(data, self.ng_be) {
                return Step::Other(n, tls_secrets(&data[..n], self.ng_be));
            }
        }
        let legacy_link = self.legacy_link;
        let legacy_nanos = self.legacy_nanos;
        let interfaces = &self.interfaces;
        let it = self.inner.it();
        let base = it.data().as_ptr() as usize;
        let exhausted = it.reader_exhausted();
        match it.next() {
            Ok((n, block)) => match block {
                PcapBlockOwned::LegacyHeader(h) => {
                    // The upper bits may carry FCS information; the type is the low 16 bits.
                    let link = LinkType((h.network.0 as u32) & 0xFFFF);
                    Step::Other(
                        n,
                        Some(OtherBlock::LegacyHeader {
                            link,
                            nanos: h.is_nanosecond_precision(),
                            big_endian: h.is_bigendian(),
                            snaplen: h.snaplen,
                        }),
                    )
                }
                PcapBlockOwned::Legacy(b) => {
                    let frac = if legacy_nanos {
                        u64::from(b.ts_usec) / 1000
                    } else {
                        u64::from(b.ts_usec)
                    };
                    let ts = u64::from(b.ts_sec)
                        .saturating_mul(1_000_000)
                        .saturating_add(frac);
                    Step::Packet(
                        n,
                        Current {
                            ts: Instant::from_micros(ts),
                            link: legacy_link,
                            start: b.data.as_ptr() as usize - base,
                            len: b.data.len(),
                            orig_len: b.origlen,
                        },
                    )
                }
                PcapBlockOwned::NG(block) => ng_step(n, &block, interfaces, base),
            },
            Err(PcapError::Eof) => Step::Eof,
            Err(PcapError::Incomplete(_)) => {
                if exhausted {
                    Step::Fail(CaptureErrorKind::Truncated)
                } else {
                    Step::Refill
                }
            }
            Err(PcapError::UnexpectedEof) => Step::Fail(CaptureErrorKind::Truncated),
            Err(PcapError::BufferTooSmall) => Step::Grow,
            Err(PcapError::ReadError) => Step::Fail(CaptureErrorKind::Io),
            Err(_) => Step::Fail(CaptureErrorKind::Malformed),
        }
    }

    fn packet(&self, source: usize, number: u64) -> Option<Packet<'_>> {
        let cur = self.current?;
        let data = match &self.inner {
            Inner::Legacy(r) => r.data(),
            Inner::Ng(r) => r.data(),
        };
        let data = data.get(cur.start..cur.start + cur.len)?;
        Some(Packet {
            ts: cur.ts,
            link: cur.link,
            data,
            orig_len: cur.orig_len,
            number,
            source,
        })
    }
}

/// The length of the pcapng block at the start of `data` when it is one this reader does not
/// use (anything but section headers, interfaces and packets: statistics, name resolution,
/// custom, local-use and unknown types), complete and well formed: it is skipped by its
/// length, as the pcapng specification asks of readers, without being parsed. (The parser
/// took a valid empty block of an unknown type for a truncated capture.)
fn skippable_ng_block(data: &[u8], big_endian: bool) -> Option<usize> {
    const SECTION_HEADER: u32 = 0x0A0D_0D0A;
    const INTERFACE: u32 = 0x0000_0001;
    const SIMPLE_PACKET: u32 = 0x0000_0003;
    const ENHANCED_PACKET: u32 = 0x0000_0006;
    let word = |at: usize| -> Option<u32> {
        let b: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let kind = word(0)?;
    if matches!(
        kind,
        SECTION_HEADER | INTERFACE | SIMPLE_PACKET | ENHANCED_PACKET
    ) {
        return None;
    }
    let total = usize::try_from(word(4)?).ok()?;
    let well_formed = total >= 12 && total % 4 == 0 && word(total.checked_sub(4)?)? == word(4)?;
    well_formed.then_some(total)
}

/// Pending Decryption Secrets Blocks kept at most (each is used as soon as the next packet is
/// asked for).
pub(crate) const MAX_SECRETS_BLOCKS: usize = 64;

/// The key log text of a whole pcapng Decryption Secrets Block of TLS secrets (type
/// `0x0000000A`, secrets type `0x544c534b`, "TLSK"); `None` for any other block.
fn tls_secrets(block: &[u8], big_endian: bool) -> Option<OtherBlock> {
    const DSB: u32 = 0x0000_000A;
    const TLS_KEY_LOG: u32 = 0x544C_534B;
    let word = |at: usize| -> Option<u32> {
        let b: [u8; 4] = block.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    if word(0)? != DSB || word(8)? != TLS_KEY_LOG {
        return None;
    }
    let len = usize::try_from(word(12)?).ok()?;
    let text = block.get(16..16usize.checked_add(len)?)?;
    // The block's trailing length word must not be inside the secrets.
    (16 + len + 4 <= block.len()).then(|| OtherBlock::Secrets(text.to_vec()))
}

fn ng_step(n: usize, block: &Block<'_>, interfaces: &[Interface], base: usize) -> Step {
    match block {
        Block::SectionHeader(shb) => Step::Other(
            n,
            Some(OtherBlock::Section {
                big_endian: shb.big_endian(),
            }),
        ),
        Block::InterfaceDescription(idb) => {
            let resolution = ts_resolution(idb.if_tsresol).unwrap_or(1_000_000);
            Step::Other(
                n,
                Some(OtherBlock::Interface(Interface {
                    link: LinkType(u32::from(idb.linktype.0 as u16)),
                    resolution,
                    offset_secs: idb.if_tsoffset,
                })),
            )
        }
        Block::EnhancedPacket(epb) => {
            let Some(iface) = interfaces.get(epb.if_id as usize) else {
                return Step::Other(n, Some(OtherBlock::UnknownInterface));
            };
            let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
            let data = epb.packet_data();
            Step::Packet(
                n,
                Current {
                    ts: ng_time(units, iface),
                    link: iface.link,
                    start: data.as_ptr() as usize - base,
                    len: data.len(),
                    orig_len: epb.origlen,
                },
            )
        }
        Block::SimplePacket(spb) => {
            let Some(iface) = interfaces.first() else {
                return Step::Other(n, Some(OtherBlock::UnknownInterface));
            };
            let data = spb.packet_data();
            Step::Packet(
                n,
                Current {
                    ts: Instant::ZERO,
                    link: iface.link,
                    start: data.as_ptr() as usize - base,
                    len: data.len(),
                    orig_len: spb.origlen,
                },
            )
        }
        _ => Step::Other(n, None),
    }
}

/// Units per second of an `if_tsresol` value: `10^n`, or `2^n` when the top bit is set.
fn ts_resolution(raw: u8) -> Option<u64> {
    let n = u32::from(raw & 0x7F);
    if raw & 0x80 == 0 {
        10u64.checked_pow(n)
    } else {
        1u64.checked_shl(n).filter(|_| n < 64)
    }
}

/// pcapng timestamp units to microseconds since the epoch, with the interface's offset.
fn ng_time(units: u64, iface: &Interface) -> Instant {
    let micros = u128::from(units) * 1_000_000 / u128::from(iface.resolution);
    let offset = i128::from(iface.offset_secs) * 1_000_000;
    let total = (micros as i128 + offset).clamp(0, i128::from(u64::MAX));
    Instant::from_micros(total as u64)
}

/// A source of capture data for [`Capture`].
pub enum Source {
    /// A file path; `-` means standard input.
    Path(PathBuf),
    /// Standard input.
    Stdin,
    /// Any reader, with a name for errors. `Send`, so that a [`Capture`] can be made in one
    /// thread and read in another.
    Reader(Box<dyn Read + Send>, String),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(p) => f.debug_tuple("Path").field(p).finish(),
            Self::Stdin => f.write_str("Stdin"),
            Self::Reader(_, name) => f.debug_tuple("Reader").field(name).finish(),
        }
    }
}

impl Source {
    fn name(&self) -> String {
        match self {
            Self::Path(p) => p.display().to_string(),
            Self::Stdin => "-".to_owned(),
            Self::Reader(_, name) => name.clone(),
        }
    }

    /// Opens the source; a file path is read up to `limit` bytes when given.
    fn open(
        self,
        buffer_len: usize,
        limit: Option<u64>,
    ) -> Result<CaptureReader<Box<dyn Read + Send>>, CaptureError> {
        let name = self.name();
        let reader: Box<dyn Read + Send> = match self {
            Self::Path(p) if p.as_os_str() == "-" => Box::new(io::stdin()),
            Self::Path(p) => {
                let file = File::open(&p).map_err(|e| CaptureError::io(e, &name, 0))?;
                match limit {
                    Some(len) => Box::new(file.take(len)),
                    None => Box::new(file),
                }
            }
            Self::Stdin => Box::new(io::stdin()),
            Self::Reader(r, _) => r,
        };
        CaptureReader::with_buffer_len(reader, &name, buffer_len)
    }
}

/// Several capture sources read one after another as a single run.
///
/// Sources are opened lazily, in order. Packet numbers continue across sources. An error in one
/// source ends the run (the packets before it have been returned).
///
/// ```no_run
/// use wscope_inspect::capture::Capture;
/// let mut cap = Capture::from_paths(["a.pcap", "b.pcapng"]);
/// while let Some(pkt) = cap.next_packet()? {
///     println!("{} {} bytes", pkt.ts, pkt.data.len());
/// }
/// # Ok::<(), wscope_inspect::capture::CaptureError>(())
/// ```
#[derive(Debug)]
pub struct Capture {
    pending: VecDeque<Source>,
    /// For each pending source, the most bytes read from it (a snapshot's file lengths).
    limits: VecDeque<Option<u64>>,
    current: Option<CaptureReader<Box<dyn Read + Send>>>,
    index: usize,
    number: u64,
    closed: CaptureStats,
    failed: bool,
    buffer_len: usize,
}

impl Capture {
    /// A run over `sources`, in order.
    pub fn new(sources: impl IntoIterator<Item = Source>) -> Self {
        let pending: VecDeque<Source> = sources.into_iter().collect();
        Self {
            limits: pending.iter().map(|_| None).collect(),
            pending,
            current: None,
            index: 0,
            number: 0,
            closed: CaptureStats::default(),
            failed: false,
            buffer_len: DEFAULT_BUFFER_LEN,
        }
    }

    /// Uses read buffers of `len` bytes (at least 64 KiB; default [`DEFAULT_BUFFER_LEN`]).
    #[must_use]
    pub fn buffer_len(mut self, len: usize) -> Self {
        self.buffer_len = len;
        self
    }

    /// A run over file paths (`-` is standard input), in order.
    pub fn from_paths<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) -> Self {
        Self::new(
            paths
                .into_iter()
                .map(|p| Source::Path(p.as_ref().to_path_buf())),
        )
    }

    /// A run over a single reader.
    pub fn from_reader(reader: impl Read + Send + 'static, name: &str) -> Self {
        Self::new([Source::Reader(Box::new(reader), name.to_owned())])
    }

    /// If nothing was read yet and every source is a regular file (not standard input, a
    /// pipe or a reader), the files and their lengths now: a [`Snapshot`] that other threads
    /// can each read from the start ([`Snapshot::open`]), all seeing the same bytes even if a
    /// file grows meanwhile.
    pub(crate) fn snapshot(&self) -> Option<Snapshot> {
        if self.current.is_some() || self.number > 0 || self.failed || self.closed.sources > 0 {
            return None;
        }
        let mut files = Vec::with_capacity(self.pending.len());
        for (src, limit) in self.pending.iter().zip(&self.limits) {
            let Source::Path(p) = src else { return None };
            if p.as_os_str() == "-" || limit.is_some() {
                return None;
            }
            let meta = std::fs::metadata(p).ok()?;
            if !meta.is_file() {
                return None;
            }
            files.push((p.clone(), meta.len()));
        }
        Some(Snapshot {
            files,
            buffer_len: self.buffer_len,
        })
    }

    /// Marks the run as read elsewhere (from a [`Snapshot`]), with that run's counters and
    /// outcome: later calls of [`Capture::next_packet`] return `Ok(None)`.
    pub(crate) fn read_elsewhere(&mut self, stats: CaptureStats, number: u64) {
        self.pending.clear();
        self.limits.clear();
        self.current = None;
        self.closed = stats;
        self.number = number;
        self.failed = true;
    }

    /// Packets returned so far (the number of the last one).
    pub(crate) const fn packets_read(&self) -> u64 {
        self.number
    }

    /// Counters over all sources read so far.
    pub fn stats(&self) -> CaptureStats {
        let mut s = self.closed;
        if let Some(cur) = &self.current {
            add_stats(&mut s, cur.stats());
        }
        s
    }

    /// The key log text of a TLS Decryption Secrets Block of the current source read and not
    /// yet taken (see [`CaptureReader::take_secrets`]).
    pub fn take_secrets(&mut self) -> Option<Vec<u8>> {
        self.current.as_mut()?.take_secrets()
    }

    /// The next packet of the run, `Ok(None)` after the last source.
    ///
    /// After an error the run is over: later calls return `Ok(None)`.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        if self.failed {
            return Ok(None);
        }
        loop {
            if let Some(cur) = &mut self.current {
                match cur.advance() {
                    Ok(true) => break,
                    Ok(false) => {
                        let stats = *cur.stats();
                        add_stats(&mut self.closed, &stats);
                        self.current = None;
                        self.index += 1;
                    }
                    Err(e) => {
                        let stats = *cur.stats();
                        add_stats(&mut self.closed, &stats);
                        self.current = None;
                        self.failed = true;
                        return Err(e);
                    }
                }
            }
            let Some(next) = self.pending.pop_front() else {
                return Ok(None);
            };
            let limit = self.limits.pop_front().flatten();
            match next.open(self.buffer_len, limit) {
                Ok(r) => self.current = Some(r),
                Err(e) => {
                    self.closed.sources += 1;
                    self.failed = true;
                    return Err(e);
                }
            }
        }
        self.number += 1;
        let (index, number) = (self.index, self.number);
        Ok(self.current.as_ref().and_then(|c| c.packet(index, number)))
    }
}

/// The regular files of a [`Capture`] not yet read, with their lengths when it was taken
/// ([`Capture::snapshot`]).
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    files: Vec<(PathBuf, u64)>,
    buffer_len: usize,
}

impl Snapshot {
    /// A capture reading the files from the start, each up to its length in the snapshot.
    pub(crate) fn open(&self) -> Capture {
        let mut c = Capture::new(self.files.iter().map(|(p, _)| Source::Path(p.clone())))
            .buffer_len(self.buffer_len);
        c.limits = self.files.iter().map(|&(_, len)| Some(len)).collect();
        c
    }

    /// The files and their lengths.
    pub(crate) fn files(&self) -> &[(PathBuf, u64)] {
        &self.files
    }

    /// The size a capture reader's buffer starts with (as [`CaptureReader`] clamps it).
    pub(crate) fn buffer_len(&self) -> usize {
        self.buffer_len.clamp(1 << 16, MAX_BLOCK_LEN)
    }
}

fn add_stats(into: &mut CaptureStats, s: &CaptureStats) {
    into.sources += s.sources;
    into.packets += s.packets;
    into.bytes += s.bytes;
    into.truncated_packets += s.truncated_packets;
    into.other_blocks += s.other_blocks;
    into.unknown_interface += s.unknown_interface;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_resolution_decimal_and_binary() {
        assert_eq!(ts_resolution(6), Some(1_000_000));
        assert_eq!(ts_resolution(9), Some(1_000_000_000));
        assert_eq!(ts_resolution(0), Some(1));
        assert_eq!(ts_resolution(0x80 | 20), Some(1 << 20));
        assert_eq!(ts_resolution(0x80 | 63), Some(1 << 63));
        assert_eq!(ts_resolution(20), None);
        assert_eq!(ts_resolution(0x80 | 64), None);
    }

    #[test]
    fn ng_time_applies_resolution_and_offset() {
        let iface = |resolution, offset_secs| Interface {
            link: LinkType::ETHERNET,
            resolution,
            offset_secs,
        };
        assert_eq!(
            ng_time(1_234_567_891, &iface(1_000_000_000, 0)),
            Instant::from_micros(1_234_567)
        );
        assert_eq!(
            ng_time(3 << 20, &iface(1 << 20, 10)),
            Instant::from_micros(13_000_000)
        );
        // A negative offset below the epoch saturates at zero.
        assert_eq!(ng_time(5, &iface(1, -100)), Instant::ZERO);
        // Huge values saturate instead of overflowing.
        assert_eq!(
            ng_time(u64::MAX, &iface(1, i64::MAX)),
            Instant::from_micros(u64::MAX)
        );
    }

    #[test]
    fn link_type_names() {
        assert_eq!(LinkType::LINUX_SLL2.to_string(), "LINUX_SLL2");
        assert_eq!(LinkType(147).to_string(), "LINKTYPE_147");
        assert!(LinkType::LOOP.is_supported());
        assert!(!LinkType(147).is_supported());
    }
}
