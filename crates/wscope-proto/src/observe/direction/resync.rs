//! Resynchronisation after framing is lost: the scan for the first plausible frame header,
//! across buffers.

use super::{Mode, WsDir};
use crate::frame::{FrameHeader, HeaderStatus, LengthForm, OpCode, MAX_HEADER_LEN, RSV1};
use crate::message::MessageDecoder;
use crate::observe::Anomaly;

/// How much evidence, in bits, a resynchronisation point needs before anything is reported.
///
/// Each plausible header in a chain is evidence that the chain is made of real frames: a
/// header with a 7-bit length passes the scan's tests at about 1 in 70 positions of random
/// bytes (6 bits), one with a 16-bit length at about 1 in 9,000 (13 bits), one with a 64-bit
/// length bounded by `resync_max_frame_len` almost never. A chain is taken once its headers
/// add up to this many bits: three frames of TLS-record size (1-16 KiB), two that end where a
/// read ends, or six small ones. In random bytes (ciphertext after a gap) a false chain then
/// turns up about once in 2^32 positions; three chained small headers (the rule before)
/// turned up about once per MiB and put false frames in the output (55 in 32 MiB).
const EVIDENCE_BITS: u32 = 32;

/// Headers in a chain (the candidate included) before it may be taken, whatever their bits.
const MIN_CHAIN: u8 = 2;

/// Evidence of a chain that ends exactly where the bytes read end: segments often end where
/// frames do, random bytes do about once in 128 positions.
const ALIGNED_BITS: u32 = 7;

/// How many frame headers after a resynchronisation point must confirm it.
const PROBATION_HEADERS: u8 = 3;

/// What the frames after a resync candidate say about it.
enum Chain {
    /// The visible headers of the chain carry [`EVIDENCE_BITS`] (see [`WsDir::chain`]).
    Verified,
    /// A following header is visible and implausible: a false candidate.
    Broken,
    /// The chain runs past the visible bytes: the next header is expected at `next`
    /// (relative to the buffer's start; inside it when that header is incomplete), after
    /// `depth` plausible headers (the candidate's included) carrying `bits` of evidence.
    Open { next: i128, depth: u8, bits: u32 },
}

/// What the resynchronisation scan thinks of the bytes at a position.
enum Plausible {
    No,
    Maybe,
    /// A complete header: the frame's total size (header and payload) and the evidence the
    /// header carries, in bits (see [`EVIDENCE_BITS`]).
    Yes {
        total: u64,
        bits: u32,
    },
}

/// The evidence a plausible header carries: about 5 bits for its first byte (opcode, reserved
/// bits, FIN of a control frame), 1 for the mask bit, 7 more for a 16-bit length (the marker
/// `126`), and for a 64-bit length also the high bits that `max_len` forces to zero.
fn header_bits(h: &FrameHeader, max_len: u64) -> u32 {
    6 + match h.length_form {
        LengthForm::Short => 0,
        LengthForm::Extended16 => 7,
        LengthForm::Extended64 => 7 + max_len.leading_zeros(),
    }
}

impl WsDir {
    /// Whether `bytes` (as much of the stream as is known from this position) start with a
    /// plausible frame header. `next` accepts a continuation too (a frame that follows a
    /// candidate may continue its message).
    fn plausible(&self, bytes: &[u8], max_len: u64, next: bool) -> Plausible {
        let Some(&b0) = bytes.first() else {
            return Plausible::Maybe;
        };
        let opcode = OpCode(b0 & 0x0f);
        let rsv = (b0 >> 4) & 0x7;
        let fin = b0 & 0x80 != 0;
        let control = opcode.is_control();
        let known = matches!(opcode.0, 0x1 | 0x2 | 0x8 | 0x9 | 0xA) || (next && opcode.0 == 0);
        let rsv_ok = rsv & !self.acfg.extension_rsv == 0 && !(control && rsv & RSV1 != 0);
        if !known || !rsv_ok || (control && !fin) {
            return Plausible::No;
        }
        if let Some(&b1) = bytes.get(1) {
            if (b1 & 0x80 != 0) != self.expect_mask || (control && b1 & 0x7f > 125) {
                return Plausible::No;
            }
        }
        match FrameHeader::parse(bytes) {
            Ok(HeaderStatus::Incomplete { .. }) => Plausible::Maybe,
            Ok(HeaderStatus::Complete(h)) if !h.non_minimal && h.payload_len <= max_len => {
                Plausible::Yes {
                    total: h.header_len() as u64 + h.payload_len,
                    bits: header_bits(&h, max_len),
                }
            }
            _ => Plausible::No,
        }
    }

    /// A candidate frame of `total` bytes (header and payload, carrying `bits` of evidence)
    /// starting at `start` in `buf` (negative for a header begun in the kept bytes): the
    /// headers that follow it are checked while they are visible, until the chain carries
    /// [`EVIDENCE_BITS`] over at least [`MIN_CHAIN`] headers. In random bytes (tunnelled TLS)
    /// a lone plausible header is common, a long chain of them is not.
    fn chain(&self, buf: &[u8], start: i64, total: u64, bits: u32, max_len: u64) -> Chain {
        let mut next = i128::from(start) + i128::from(total);
        let mut bits = bits;
        let mut depth = 1u8;
        loop {
            if depth >= MIN_CHAIN && bits >= EVIDENCE_BITS {
                return Chain::Verified;
            }
            if next == buf.len() as i128 {
                // Frames that end exactly where the read ends: a boundary that segments
                // often share with frames.
                bits = bits.saturating_add(ALIGNED_BITS);
                if depth >= MIN_CHAIN && bits >= EVIDENCE_BITS {
                    return Chain::Verified;
                }
                return Chain::Open { next, depth, bits };
            }
            let at = usize::try_from(next).ok().filter(|&n| n < buf.len());
            let Some(n) = at else {
                return Chain::Open { next, depth, bits };
            };
            match self.plausible(&buf[n..], max_len, true) {
                Plausible::No => return Chain::Broken,
                Plausible::Maybe => return Chain::Open { next, depth, bits },
                Plausible::Yes { total: t, bits: b } => {
                    next += i128::from(t);
                    bits = bits.saturating_add(b);
                    depth = depth.saturating_add(1);
                }
            }
        }
    }

    /// Starts probing a candidate whose chain is open (see [`Chain::Open`]): everything up to
    /// the next expected header is passed over; an incomplete header at the end of `buf` is
    /// kept. Returns the bytes of `buf` used (all of them).
    fn probe(
        &mut self,
        buf: &[u8],
        (next, depth, bits): (i128, u8, u32),
        skipped_before: u64,
    ) -> usize {
        self.mode = Mode::Probe;
        self.probe_depth = depth;
        self.probe_bits = bits;
        self.skipped += skipped_before;
        self.win_len = 0;
        match usize::try_from(next) {
            Ok(n) if n < buf.len() => {
                // An incomplete header: shorter than a whole one by construction.
                let kept = (buf.len() - n).min(MAX_HEADER_LEN);
                self.win[..kept].copy_from_slice(&buf[n..n + kept]);
                self.win_len = kept;
                self.probe_skip = 0;
            }
            _ => {
                self.probe_skip = u64::try_from(next)
                    .unwrap_or(0)
                    .saturating_sub(buf.len() as u64)
            }
        }
        buf.len()
    }

    /// Probe mode: passes over the frames of the candidate's chain and checks each header.
    /// Once the chain carries [`EVIDENCE_BITS`], framing is found at its last header (the
    /// frames before it were not reported); an implausible header sends the direction back
    /// to scanning.
    pub(super) fn probe_step(
        &mut self,
        buf: &[u8],
        max_len: u64,
    ) -> (usize, Option<Anomaly<'static>>) {
        let mut at = 0usize;
        loop {
            if self.probe_skip > 0 {
                let n = usize::try_from(self.probe_skip)
                    .unwrap_or(usize::MAX)
                    .min(buf.len() - at);
                self.probe_skip -= n as u64;
                self.skipped += n as u64;
                at += n;
                if self.probe_skip == 0 && at == buf.len() {
                    // The frame ends where the read does (see `chain`).
                    self.probe_bits = self.probe_bits.saturating_add(ALIGNED_BITS);
                }
                if self.probe_skip > 0 || at == buf.len() {
                    return (at, None);
                }
            }
            let wlen = self.win_len;
            let extra = (buf.len() - at).min(MAX_HEADER_LEN);
            let mut tmp = [0u8; 2 * MAX_HEADER_LEN];
            tmp[..wlen].copy_from_slice(&self.win[..wlen]);
            tmp[wlen..wlen + extra].copy_from_slice(&buf[at..at + extra]);
            match self.plausible(&tmp[..wlen + extra], max_len, true) {
                Plausible::No => {
                    // A false candidate: scan again from here.
                    self.skipped += wlen as u64;
                    self.win_len = 0;
                    self.mode = Mode::Resync;
                    let (used, found) = self.resync(&buf[at..], max_len);
                    return (at + used, found);
                }
                Plausible::Maybe => {
                    // The header continues in the next buffer (extra < a whole header).
                    self.win[wlen..wlen + extra].copy_from_slice(&buf[at..at + extra]);
                    self.win_len = wlen + extra;
                    return (at + extra, None);
                }
                Plausible::Yes { total, bits } => {
                    self.probe_depth = self.probe_depth.saturating_add(1);
                    self.probe_bits = self.probe_bits.saturating_add(bits);
                    if self.probe_depth >= MIN_CHAIN && self.probe_bits >= EVIDENCE_BITS {
                        let kept = self.win;
                        return (at, Some(self.synced_with(&kept[..wlen])));
                    }
                    self.skipped += wlen as u64;
                    self.win_len = 0;
                    self.probe_skip = total - wlen as u64;
                }
            }
        }
    }

    /// A header decoded in sync while on probation: whether it could start a frame here (the
    /// same test as the scan's, on the decoded header).
    pub(super) fn confirms(&self, header: &FrameHeader, max_len: u64) -> bool {
        let mut bytes = [0u8; MAX_HEADER_LEN];
        let n = header.emit(&mut bytes);
        !header.non_minimal
            && matches!(
                self.plausible(&bytes[..n], max_len, true),
                Plausible::Yes { .. }
            )
    }

    /// Framing found at a header whose first bytes, `head_start`, were kept from the last
    /// buffer (possibly none) and whose rest starts the current one: report it.
    fn synced_with(&mut self, head_start: &[u8]) -> Anomaly<'static> {
        let mut part = [0u8; MAX_HEADER_LEN];
        let n = head_start.len().min(MAX_HEADER_LEN);
        part[..n].copy_from_slice(&head_start[..n]);
        let found = self.synced();
        if n > 0 {
            // The header continues into the current buffer, so the decoder only stores these
            // bytes as the start of a header.
            let _ = self.dec.decode(&mut part[..n]);
        }
        found
    }

    /// Framing found at the current position: report it.
    fn synced(&mut self) -> Anomaly<'static> {
        self.mode = Mode::Sync;
        self.probation = PROBATION_HEADERS;
        self.dec = MessageDecoder::new(self.fcfg, self.acfg);
        self.win_len = 0;
        let skipped = core::mem::take(&mut self.skipped);
        Anomaly::Resync { skipped }
    }

    /// Looks for a plausible frame header: first at the positions of the bytes kept from the
    /// last buffer (joined with the start of this one), then in this buffer; the earliest
    /// complete plausible header wins. Returns bytes used and the anomaly to report when
    /// framing is found (the header then starts at `buf[used]`, or its first bytes are already
    /// held by the decoder).
    ///
    /// Invariant: no position of the kept bytes holds a plausible header complete within the
    /// kept bytes, so a header found there always continues into `buf`.
    pub(super) fn resync(&mut self, buf: &[u8], max_len: u64) -> (usize, Option<Anomaly<'static>>) {
        let wlen = self.win_len.min(MAX_HEADER_LEN);
        let extra = buf.len().min(MAX_HEADER_LEN);
        let mut tmp = [0u8; 2 * MAX_HEADER_LEN];
        tmp[..wlen].copy_from_slice(&self.win[..wlen]);
        tmp[wlen..wlen + extra].copy_from_slice(&buf[..extra]);
        let mut window_maybe = None;
        let mut open = None;
        for j in 0..wlen {
            let start = j as i64 - wlen as i64;
            match self.plausible(&tmp[j..wlen + extra], max_len, false) {
                Plausible::Yes { total, bits } => {
                    match self.chain(buf, start, total, bits, max_len) {
                        Chain::Verified => {}
                        Chain::Broken => continue,
                        Chain::Open { next, depth, bits } => {
                            open = open.or(Some(((next, depth, bits), j as u64)));
                            continue;
                        }
                    }
                }
                Plausible::Maybe => {
                    if window_maybe.is_none() {
                        window_maybe = Some(j);
                    }
                    continue;
                }
                Plausible::No => continue,
            }
            // A verified chain from the kept bytes.
            self.skipped += j as u64;
            return (0, Some(self.synced_with(&tmp[j..wlen])));
        }
        let mut buf_maybe = None;
        for p in 0..buf.len() {
            match self.plausible(&buf[p..], max_len, false) {
                Plausible::Yes { total, bits } => {
                    match self.chain(buf, p as i64, total, bits, max_len) {
                        Chain::Verified => {
                            self.skipped += (wlen + p) as u64;
                            return (p, Some(self.synced()));
                        }
                        Chain::Broken => {}
                        Chain::Open { next, depth, bits } => {
                            open = open.or(Some(((next, depth, bits), (wlen + p) as u64)));
                        }
                    }
                }
                Plausible::Maybe if buf_maybe.is_none() => buf_maybe = Some(p),
                _ => {}
            }
        }
        // No verified chain: follow the earliest candidate whose chain runs past `buf`.
        if let Some((chain, before)) = open {
            let used = self.probe(buf, chain, before);
            // Every byte of the window and of `buf` up to the next expected header is skipped.
            self.skipped += (wlen as u64 + used as u64)
                .saturating_sub(before)
                .saturating_sub(self.win_len as u64);
            return (used, None);
        }
        // Nothing complete: keep the earliest position that may still become a header.
        let keep = match (window_maybe, buf_maybe) {
            (Some(j), _) if extra == buf.len() => Some((j, &tmp[j..wlen + extra])),
            (_, Some(p)) => Some((wlen + p, &buf[p..])),
            _ => None,
        };
        match keep {
            Some((at, bytes)) if bytes.len() < MAX_HEADER_LEN => {
                self.win[..bytes.len()].copy_from_slice(bytes);
                self.win_len = bytes.len();
                self.skipped += at as u64;
            }
            _ => {
                self.win_len = 0;
                self.skipped += (wlen + buf.len()) as u64;
            }
        }
        (buf.len(), None)
    }
}
