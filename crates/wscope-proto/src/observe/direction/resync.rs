//! Resynchronisation after framing is lost: the scan for the first plausible frame header,
//! across buffers.

use super::{Mode, WsDir};
use crate::frame::{FrameHeader, HeaderStatus, OpCode, MAX_HEADER_LEN, RSV1};
use crate::message::MessageDecoder;
use crate::observe::Anomaly;

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
    fn chain_ok(&self, buf: &[u8], start: i64, total: u64, max_len: u64) -> bool {
        let next = i128::from(start) + i128::from(total);
        match usize::try_from(next) {
            Ok(n) if n < buf.len() => {
                !matches!(self.plausible(&buf[n..], max_len, true), Plausible::No)
            }
            _ => true,
        }
    }

    /// Framing found at the current position: report it.
    fn synced(&mut self) -> Anomaly<'static> {
        self.mode = Mode::Sync;
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
        for j in 0..wlen {
            match self.plausible(&tmp[j..wlen + extra], max_len, false) {
                Plausible::Yes(total)
                    if self.chain_ok(buf, j as i64 - wlen as i64, total, max_len) =>
                {
                    self.skipped += j as u64;
                    let mut part = [0u8; MAX_HEADER_LEN];
                    let plen = wlen - j;
                    part[..plen].copy_from_slice(&tmp[j..wlen]);
                    let found = self.synced();
                    // The header continues into `buf` (invariant), so the decoder only stores
                    // these bytes as the start of a header.
                    let _ = self.dec.decode(&mut part[..plen]);
                    return (0, Some(found));
                }
                Plausible::Maybe if window_maybe.is_none() => window_maybe = Some(j),
                _ => {}
            }
        }
        let mut buf_maybe = None;
        for p in 0..buf.len() {
            match self.plausible(&buf[p..], max_len, false) {
                Plausible::Yes(total) if self.chain_ok(buf, p as i64, total, max_len) => {
                    self.skipped += (wlen + p) as u64;
                    return (p, Some(self.synced()));
                }
                Plausible::Maybe if buf_maybe.is_none() => buf_maybe = Some(p),
                _ => {}
            }
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
