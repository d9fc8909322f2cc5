//! Resynchronisation after framing is lost: the scan for the first plausible frame header,
//! across buffers.

use super::{Mode, WsDir};
use crate::frame::{FrameHeader, HeaderStatus, OpCode, MAX_HEADER_LEN, RSV1};
use crate::message::MessageDecoder;
use crate::observe::Anomaly;

/// How many following headers the scan checks, when visible, before taking a candidate.
const CHAIN_DEPTH: u8 = 2;

/// How many frame headers after a resynchronisation point must confirm it.
const PROBATION_HEADERS: u8 = 3;

/// What the frames after a resync candidate say about it.
enum Chain {
    /// [`CHAIN_DEPTH`] following headers are visible and plausible, or the chain ends exactly
    /// where the visible bytes end (see [`WsDir::chain`]).
    Verified,
    /// A following header is visible and implausible: a false candidate.
    Broken,
    /// The chain runs past the visible bytes: the next header is expected at `next`
    /// (relative to the buffer's start; inside it when that header is incomplete), after
    /// `depth` plausible headers (the candidate's included).
    Open { next: i128, depth: u8 },
}

/// What the resynchronisation scan thinks of the bytes at a position.
enum Plausible {
    No,
    Maybe,
    /// A complete header; the frame's total size (header and payload).
    Yes(u64),
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
                Plausible::Yes(h.header_len() as u64 + h.payload_len)
            }
            _ => Plausible::No,
        }
    }

    /// A candidate frame of `total` bytes (header and payload) starting at `start` in `buf`
    /// (negative for a header begun in the kept bytes): accepted unless the bytes right after
    /// it are visible and cannot start a frame.
    ///
    /// Up to [`CHAIN_DEPTH`] following headers are checked: in random bytes (tunnelled TLS) a
    /// lone plausible header is common, a chain of them is not.
    fn chain(&self, buf: &[u8], start: i64, total: u64, max_len: u64) -> Chain {
        let mut next = i128::from(start) + i128::from(total);
        for depth in 1..=CHAIN_DEPTH {
            // Frames that end exactly where the read ends: a boundary that segments often
            // share with frames. Taken as proof for a chain of two, or for a lone frame that
            // fills the read from its first byte; a lone frame ending there after other
            // bytes is too likely in random data (1 in about 9,000 positions).
            if next == buf.len() as i128 && (depth >= 2 || start == 0) {
                return Chain::Verified;
            }
            let at = usize::try_from(next).ok().filter(|&n| n < buf.len());
            let Some(n) = at else {
                return Chain::Open { next, depth };
            };
            match self.plausible(&buf[n..], max_len, true) {
                Plausible::No => return Chain::Broken,
                Plausible::Maybe => return Chain::Open { next, depth },
                Plausible::Yes(t) => next += i128::from(t),
            }
        }
        Chain::Verified
    }

    /// Starts probing a candidate whose chain is open (see [`Chain::Open`]): everything up to
    /// the next expected header is passed over; an incomplete header at the end of `buf` is
    /// kept. Returns the bytes of `buf` used (all of them).
    fn probe(&mut self, buf: &[u8], next: i128, depth: u8, skipped_before: u64) -> usize {
        self.mode = Mode::Probe;
        self.probe_depth = depth;
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
    /// Once [`CHAIN_DEPTH`] headers after the candidate are plausible, framing is found at
    /// the last one (the frames before it were not reported); an implausible header sends
    /// the direction back to scanning.
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
                Plausible::Yes(total) => {
                    self.probe_depth += 1;
                    if self.probe_depth > CHAIN_DEPTH {
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
                Plausible::Yes(_)
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
                Plausible::Yes(total) => match self.chain(buf, start, total, max_len) {
                    Chain::Verified => {}
                    Chain::Broken => continue,
                    Chain::Open { next, depth } => {
                        open = open.or(Some((next, depth, j as u64)));
                        continue;
                    }
                },
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
                Plausible::Yes(total) => match self.chain(buf, p as i64, total, max_len) {
                    Chain::Verified => {
                        self.skipped += (wlen + p) as u64;
                        return (p, Some(self.synced()));
                    }
                    Chain::Broken => {}
                    Chain::Open { next, depth } => {
                        open = open.or(Some((next, depth, (wlen + p) as u64)));
                    }
                },
                Plausible::Maybe if buf_maybe.is_none() => buf_maybe = Some(p),
                _ => {}
            }
        }
        // No verified chain: follow the earliest candidate whose chain runs past `buf`.
        if let Some((next, depth, before)) = open {
            let used = self.probe(buf, next, depth, before);
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
