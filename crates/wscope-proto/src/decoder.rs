//! The streaming frame decoder: bytes in, frame headers and unmasked payload chunks out.
//!
//! [`FrameDecoder::decode`] looks at the caller's unconsumed bytes and returns a [`Step`]: how
//! many bytes it used and at most one [`FrameEvent`]. Payload chunks are **sub-slices of the
//! caller's buffer, unmasked in place**: nothing is copied and no payload is ever buffered or
//! waited for. Only a header split across reads (at most 14 bytes) is kept inside. Any split of
//! the stream, down to one byte at a time, gives the same headers and the same payload bytes.
//!
//! Every frame gives exactly one [`FrameEvent::Header`] followed by one or more
//! [`FrameEvent::Payload`] chunks, the last with `last: true` (a zero-length frame gives one
//! empty chunk), so consumers can rely on a frame always ending with a `last` chunk.
//!
//! Header rules that depend on the direction of traffic (the mask rule), the minimal length
//! encoding and the frame size limit are checked here. With [`Strictness::Enforce`] (endpoints)
//! a violation is an error carrying its close code; with [`Strictness::Report`] (observers) it
//! comes out as [`FrameEvent::Violation`] and decoding goes on, because framing is still known.
//! Only a length with its top bit set loses framing; that is an error in both modes.
//!
//! ```
//! use wscope_proto::decoder::{DecoderConfig, FrameDecoder, FrameEvent, MaskRule};
//!
//! // A masked client frame "Hello" (RFC 6455 section 5.7), fed one byte at a time.
//! let mut wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! let mut dec = FrameDecoder::new(DecoderConfig::new(MaskRule::Required));
//! let mut text = Vec::new();
//! for i in 0..wire.len() {
//!     let mut at = i;
//!     loop {
//!         let step = dec.decode(&mut wire[at..i + 1]).unwrap();
//!         at += step.consumed;
//!         match step.event {
//!             Some(FrameEvent::Payload { chunk, .. }) => text.extend_from_slice(chunk),
//!             Some(_) => {}
//!             None => break,
//!         }
//!     }
//! }
//! assert_eq!(text, b"Hello");
//! ```

use core::mem;

use crate::error::ProtocolError;
use crate::frame::{FrameHeader, HeaderError, HeaderStatus, MAX_HEADER_LEN};
use crate::mask::apply_mask;
use crate::role::Direction;

/// Which mask bit a direction of traffic must carry (RFC 6455 section 5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "closed: a direction is masked, unmasked, or either"
)]
pub enum MaskRule {
    /// Client to server: every frame must be masked.
    Required,
    /// Server to client: no frame may be masked.
    Forbidden,
    /// Unknown direction (a file of frames): either is accepted.
    Any,
}

impl MaskRule {
    /// The rule for frames travelling in `dir`.
    pub const fn for_direction(dir: Direction) -> Self {
        match dir {
            Direction::ClientToServer => Self::Required,
            Direction::ServerToClient => Self::Forbidden,
        }
    }
}

/// What to do when the peer breaks a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "closed: enforce or report: the two uses of the decoder"
)]
pub enum Strictness {
    /// Endpoints: the first violation is an error and decoding stops.
    Enforce,
    /// Observers: a violation is reported as an event and decoding goes on where framing is
    /// still known.
    Report,
}

/// Settings of a [`FrameDecoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecoderConfig {
    /// The mask rule for this direction.
    pub mask: MaskRule,
    /// Frames whose declared payload is longer are refused (1009). `u64::MAX` for no limit.
    pub max_frame_len: u64,
    /// Accept lengths that are not minimally encoded (most implementations do; RFC 6455 says
    /// senders MUST NOT produce them).
    pub allow_non_minimal: bool,
    /// Enforce or report.
    pub strictness: Strictness,
}

/// Builder methods, one per field and of the same name: start from `DecoderConfig::default()` (or a
/// constructor) and chain them; the struct is `#[non_exhaustive]`, so fields may be added without
/// breaking callers.
impl DecoderConfig {
    /// Sets [`DecoderConfig::mask`]: the mask rule for this direction.
    #[must_use]
    pub const fn mask(mut self, mask: MaskRule) -> Self {
        self.mask = mask;
        self
    }

    /// Sets [`DecoderConfig::max_frame_len`]: frames whose declared payload is longer are refused
    /// (1009).
    #[must_use]
    pub const fn max_frame_len(mut self, max_frame_len: u64) -> Self {
        self.max_frame_len = max_frame_len;
        self
    }

    /// Sets [`DecoderConfig::allow_non_minimal`]: accept lengths that are not minimally encoded
    /// (most implementations do; RFC 6455 says senders MUST NOT produce them).
    #[must_use]
    pub const fn allow_non_minimal(mut self, allow_non_minimal: bool) -> Self {
        self.allow_non_minimal = allow_non_minimal;
        self
    }

    /// Sets [`DecoderConfig::strictness`]: enforce or report.
    #[must_use]
    pub const fn strictness(mut self, strictness: Strictness) -> Self {
        self.strictness = strictness;
        self
    }
}

impl DecoderConfig {
    /// Enforcing, no frame size limit, non-minimal lengths accepted.
    pub const fn new(mask: MaskRule) -> Self {
        Self {
            mask,
            max_frame_len: u64::MAX,
            allow_non_minimal: true,
            strictness: Strictness::Enforce,
        }
    }

    /// The same settings in report mode (for observers).
    pub const fn reporting(mut self) -> Self {
        self.strictness = Strictness::Report;
        self.allow_non_minimal = false;
        self
    }
}

/// One thing the decoder found.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameEvent<'a> {
    /// A complete frame header; payload chunks follow.
    Header(FrameHeader),
    /// A piece of the current frame's payload, unmasked in place in the caller's buffer.
    Payload {
        /// The bytes (a sub-slice of the buffer given to [`FrameDecoder::decode`]).
        chunk: &'a [u8],
        /// Position of `chunk[0]` within the frame's payload.
        offset: u64,
        /// This chunk ends the frame.
        last: bool,
    },
    /// [`Strictness::Report`] only: the header just reported breaks a rule; decoding goes on.
    Violation(ProtocolError),
}

/// The result of one decoding step.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
#[allow(
    clippy::exhaustive_structs,
    reason = "closed: bytes consumed and at most one event: the shape of every sans-IO step"
)]
pub struct Step<E> {
    /// Bytes of the given buffer that were used; drop them before the next call.
    pub consumed: usize,
    /// The event found, or `None` when more input is needed (then all of the buffer was used).
    pub event: Option<E>,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Collecting a header; `have` bytes of it are in `partial`.
    Header { have: u8 },
    /// Violations of the header just parsed wait to be reported, then the header itself.
    Report {
        header: FrameHeader,
        pending: Violations,
    },
    /// Inside a payload.
    Payload {
        mask: Option<[u8; 4]>,
        offset: u64,
        remaining: u64,
    },
    /// Framing is lost.
    Failed(ProtocolError),
}

/// A small set of header violations, in the order they are reported.
#[derive(Clone, Copy, Debug, Default)]
struct Violations {
    items: [Option<ProtocolError>; 3],
}

impl Violations {
    fn push(&mut self, v: ProtocolError) {
        if let Some(slot) = self.items.iter_mut().find(|s| s.is_none()) {
            *slot = Some(v);
        }
    }

    fn pop_front(&mut self) -> Option<ProtocolError> {
        let first = self.items[0].take()?;
        self.items.rotate_left(1);
        Some(first)
    }

    fn first(&self) -> Option<ProtocolError> {
        self.items[0]
    }
}

/// A streaming decoder for one direction of a WebSocket connection.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    cfg: DecoderConfig,
    state: State,
    partial: [u8; MAX_HEADER_LEN],
}

impl FrameDecoder {
    /// A decoder at a frame boundary.
    pub const fn new(cfg: DecoderConfig) -> Self {
        Self {
            cfg,
            state: State::Header { have: 0 },
            partial: [0; MAX_HEADER_LEN],
        }
    }

    /// The settings.
    pub const fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// Whether the decoder is between frames with no partial header held.
    pub const fn is_at_boundary(&self) -> bool {
        matches!(self.state, State::Header { have: 0 })
    }

    /// Payload bytes still expected in the current frame (0 between frames).
    pub const fn payload_remaining(&self) -> u64 {
        match self.state {
            State::Payload { remaining, .. } => remaining,
            _ => 0,
        }
    }

    /// Decodes the next event from the front of `buf`.
    ///
    /// Returns the number of bytes used and at most one event. Call again with the unused bytes
    /// until the event is `None`. Payload chunks are unmasked in `buf` itself.
    pub fn decode<'a>(&mut self, buf: &'a mut [u8]) -> Result<Step<FrameEvent<'a>>, ProtocolError> {
        if buf.is_empty() && matches!(self.state, State::Header { .. }) {
            // The common "input used up" call: nothing to parse.
            return Ok(Step {
                consumed: 0,
                event: None,
            });
        }
        match self.state {
            State::Failed(e) => Err(e),
            State::Report {
                header,
                mut pending,
            } => {
                if let Some(v) = pending.pop_front() {
                    self.state = State::Report { header, pending };
                    return Ok(Step {
                        consumed: 0,
                        event: Some(FrameEvent::Violation(v)),
                    });
                }
                Ok(Step {
                    consumed: 0,
                    event: Some(self.start_payload(header)),
                })
            }
            State::Payload {
                mask,
                offset,
                remaining,
            } => {
                let n = remaining.min(buf.len() as u64) as usize;
                if n == 0 && remaining > 0 {
                    return Ok(Step {
                        consumed: 0,
                        event: None,
                    });
                }
                let chunk = &mut buf[..n];
                if let Some(key) = mask {
                    apply_mask(chunk, key, offset);
                }
                let remaining = remaining - n as u64;
                self.state = if remaining == 0 {
                    State::Header { have: 0 }
                } else {
                    State::Payload {
                        mask,
                        offset: offset + n as u64,
                        remaining,
                    }
                };
                let last = remaining == 0;
                Ok(Step {
                    consumed: n,
                    event: Some(FrameEvent::Payload {
                        chunk,
                        offset,
                        last,
                    }),
                })
            }
            State::Header { have } => self.decode_header(buf, have as usize),
        }
    }

    fn decode_header<'a>(
        &mut self,
        buf: &'a mut [u8],
        have: usize,
    ) -> Result<Step<FrameEvent<'a>>, ProtocolError> {
        let (parsed, consumed) = if have == 0 {
            match FrameHeader::parse(buf) {
                Ok(HeaderStatus::Complete(h)) => (Ok(h), h.header_len()),
                Ok(HeaderStatus::Incomplete { .. }) => {
                    // Fewer than 14 bytes: keep them all.
                    self.partial[..buf.len()].copy_from_slice(buf);
                    self.state = State::Header {
                        have: buf.len() as u8,
                    };
                    return Ok(Step {
                        consumed: buf.len(),
                        event: None,
                    });
                }
                Err(e) => (Err(e), 0),
            }
        } else {
            let take = (MAX_HEADER_LEN - have).min(buf.len());
            self.partial[have..have + take].copy_from_slice(&buf[..take]);
            match FrameHeader::parse(&self.partial[..have + take]) {
                Ok(HeaderStatus::Complete(h)) => (Ok(h), h.header_len() - have),
                Ok(HeaderStatus::Incomplete { .. }) => {
                    self.state = State::Header {
                        have: (have + take) as u8,
                    };
                    return Ok(Step {
                        consumed: take,
                        event: None,
                    });
                }
                Err(e) => (Err(e), 0),
            }
        };
        let header = match parsed {
            Ok(h) => h,
            Err(HeaderError::LengthMsbSet) => {
                self.state = State::Failed(ProtocolError::LengthMsbSet);
                return Err(ProtocolError::LengthMsbSet);
            }
        };
        let violations = self.check(&header);
        match (self.cfg.strictness, violations.first()) {
            (_, None) => Ok(Step {
                consumed,
                event: Some(self.start_payload(header)),
            }),
            (Strictness::Enforce, Some(v)) => {
                self.state = State::Failed(v);
                Err(v)
            }
            (Strictness::Report, Some(_)) => {
                let mut pending = violations;
                let first = pending.pop_front().map(FrameEvent::Violation);
                self.state = State::Report { header, pending };
                Ok(Step {
                    consumed,
                    event: first,
                })
            }
        }
    }

    fn start_payload<'a>(&mut self, header: FrameHeader) -> FrameEvent<'a> {
        self.state = State::Payload {
            mask: header.mask,
            offset: 0,
            remaining: header.payload_len,
        };
        FrameEvent::Header(header)
    }

    fn check(&self, h: &FrameHeader) -> Violations {
        let mut v = Violations::default();
        match (self.cfg.mask, h.mask.is_some()) {
            (MaskRule::Required, false) => v.push(ProtocolError::UnmaskedClientFrame),
            (MaskRule::Forbidden, true) => v.push(ProtocolError::MaskedServerFrame),
            _ => {}
        }
        if h.non_minimal && !self.cfg.allow_non_minimal {
            v.push(ProtocolError::NonMinimalLength);
        }
        if h.payload_len > self.cfg.max_frame_len {
            v.push(ProtocolError::FrameTooLarge {
                len: h.payload_len,
                max: self.cfg.max_frame_len,
            });
        }
        v
    }

    /// Skips `len` bytes of lost input (a capture gap). Inside a payload the mask offset keeps
    /// counting, so decoding stays in sync and the gap is reported as lost payload; the return
    /// value is how many of the bytes fell inside the current payload. Bytes beyond the payload
    /// (or a gap at a header) lose framing: the decoder resets to expect a header, which may
    /// be wrong, and the caller should treat this direction as desynchronised.
    pub fn skip(&mut self, len: u64) -> SkipOutcome {
        match self.state {
            State::Payload {
                mask,
                offset,
                remaining,
            } if len < remaining => {
                self.state = State::Payload {
                    mask,
                    offset: offset + len,
                    remaining: remaining - len,
                };
                SkipOutcome::InPayload { frame_end: false }
            }
            State::Payload { remaining, .. } if len == remaining => {
                self.state = State::Header { have: 0 };
                SkipOutcome::InPayload { frame_end: true }
            }
            _ => {
                self.state = State::Header { have: 0 };
                SkipOutcome::FramingLost
            }
        }
    }

    /// Forgets all state: the next byte is taken as the start of a frame header.
    pub fn reset(&mut self) {
        self.state = State::Header { have: 0 };
    }

    /// Takes the decoder's state, leaving it reset (used by the observer to resynchronise).
    pub fn take(&mut self) -> Self {
        mem::replace(self, Self::new(self.cfg))
    }
}

/// What [`FrameDecoder::skip`] did with a gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipOutcome {
    /// The gap was inside the current payload; decoding is still in sync.
    InPayload {
        /// The gap reached exactly the end of the frame.
        frame_end: bool,
    },
    /// The gap covered a header (or went past the payload): framing is lost.
    FramingLost,
}

/// A frame found by [`frames`]: where it starts, its header and its payload, unmasked.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParsedFrame<'a> {
    /// Offset of the first header byte in the buffer.
    pub offset: usize,
    /// The header.
    pub header: FrameHeader,
    /// The payload, unmasked in place.
    pub payload: &'a [u8],
}

/// Why [`frames`] stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FramesError {
    /// The buffer ends inside the frame starting at `offset`.
    Truncated {
        /// Where the frame starts.
        offset: usize,
        /// How many bytes of the frame are present.
        have: usize,
        /// How many bytes the whole frame needs (header + payload).
        need: u64,
    },
    /// A header with a 64-bit length whose top bit is set; framing is lost.
    LengthMsbSet {
        /// Where the frame starts.
        offset: usize,
    },
}

impl core::fmt::Display for FramesError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated { offset, have, need } => {
                write!(
                    f,
                    "frame at offset {offset} is truncated: {have} of {need} bytes present"
                )
            }
            Self::LengthMsbSet { offset } => {
                write!(
                    f,
                    "frame at offset {offset} has a 64-bit length with the top bit set"
                )
            }
        }
    }
}

impl core::error::Error for FramesError {}

/// Iterates the frames of a whole buffer, unmasking each payload in place (the Kaitai
/// `websocket.ksy` use case, without its bugs: 64-bit lengths are read whole and masked
/// payloads come out unmasked).
///
/// ```
/// use wscope_proto::decoder::frames;
///
/// let mut buf = [0x01, 0x03, b'H', b'e', b'l', 0x89, 0x00, 0x80, 0x02, b'l', b'o'];
/// let parsed: Vec<_> = frames(&mut buf).collect::<Result<_, _>>().unwrap();
/// assert_eq!(parsed.len(), 3);
/// assert_eq!(parsed[2].payload, b"lo");
/// assert_eq!(parsed[1].offset, 5);
/// ```
pub fn frames(buf: &mut [u8]) -> Frames<'_> {
    Frames {
        rest: buf,
        offset: 0,
        done: false,
    }
}

/// The iterator returned by [`frames`].
#[derive(Debug)]
pub struct Frames<'a> {
    rest: &'a mut [u8],
    offset: usize,
    done: bool,
}

impl<'a> Frames<'a> {
    /// Offset of the first byte not yet parsed.
    pub const fn offset(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<ParsedFrame<'a>, FramesError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let offset = self.offset;
        let header = match FrameHeader::parse(self.rest) {
            Ok(HeaderStatus::Complete(h)) => h,
            Ok(HeaderStatus::Incomplete { needed }) => {
                self.done = true;
                let have = self.rest.len();
                return Some(Err(FramesError::Truncated {
                    offset,
                    have,
                    need: (have + needed) as u64,
                }));
            }
            Err(HeaderError::LengthMsbSet) => {
                self.done = true;
                return Some(Err(FramesError::LengthMsbSet { offset }));
            }
        };
        let hlen = header.header_len();
        let need = hlen as u64 + header.payload_len;
        if need > self.rest.len() as u64 {
            self.done = true;
            return Some(Err(FramesError::Truncated {
                offset,
                have: self.rest.len(),
                need,
            }));
        }
        let rest = mem::take(&mut self.rest);
        let (frame, tail) = rest.split_at_mut(need as usize);
        self.rest = tail;
        self.offset += need as usize;
        let payload = &mut frame[hlen..];
        if let Some(key) = header.mask {
            apply_mask(payload, key, 0);
        }
        Some(Ok(ParsedFrame {
            offset,
            header,
            payload,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::OpCode;
    use alloc::vec::Vec;

    /// Decodes `wire` fed in pieces of the given sizes; returns headers and concatenated payload
    /// per frame, plus violations.
    pub(crate) fn decode_split(
        cfg: DecoderConfig,
        wire: &[u8],
        sizes: &[usize],
    ) -> Result<Vec<(FrameHeader, Vec<u8>)>, ProtocolError> {
        let mut data = wire.to_vec();
        let mut dec = FrameDecoder::new(cfg);
        let mut out: Vec<(FrameHeader, Vec<u8>)> = Vec::new();
        let mut pos = 0;
        let mut k = 0;
        while pos < data.len() || !dec.is_at_boundary() {
            let size = sizes
                .get(k % sizes.len().max(1))
                .copied()
                .unwrap_or(1)
                .max(1);
            k += 1;
            let end = (pos + size).min(data.len());
            let mut at = pos;
            loop {
                let step = dec.decode(&mut data[at..end])?;
                at += step.consumed;
                match step.event {
                    Some(FrameEvent::Header(h)) => out.push((h, Vec::new())),
                    Some(FrameEvent::Payload { chunk, offset, .. }) => {
                        let cur = &mut out.last_mut().unwrap().1;
                        assert_eq!(offset, cur.len() as u64);
                        cur.extend_from_slice(chunk);
                    }
                    Some(FrameEvent::Violation(_)) => {}
                    None => break,
                }
            }
            assert_eq!(at, end, "decoder must use all bytes before asking for more");
            pos = end;
            if pos == data.len() && !dec.is_at_boundary() {
                break;
            }
        }
        Ok(out)
    }

    #[test]
    fn rfc_examples_any_split() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&[0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
        wire.extend_from_slice(&[0x01, 0x03, b'H', b'e', b'l', 0x80, 0x02, b'l', b'o']);
        wire.extend_from_slice(&[0x89, 0x00]);
        let mut big = alloc::vec![0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0];
        big.extend((0..65536u32).map(|i| i as u8));
        wire.extend_from_slice(&big);
        let whole = decode_split(
            DecoderConfig::new(MaskRule::Forbidden),
            &wire,
            &[wire.len()],
        )
        .unwrap();
        assert_eq!(whole.len(), 5);
        assert_eq!(whole[4].1.len(), 65536);
        for size in [1, 2, 3, 7, 13, 14, 100, 4096] {
            let split =
                decode_split(DecoderConfig::new(MaskRule::Forbidden), &wire, &[size]).unwrap();
            assert_eq!(split, whole, "size {size}");
        }
    }

    #[test]
    fn zero_length_frame_gives_one_last_chunk() {
        let mut wire = [0x8a, 0x00];
        let mut dec = FrameDecoder::new(DecoderConfig::new(MaskRule::Any));
        let step = dec.decode(&mut wire).unwrap();
        assert_eq!(step.consumed, 2);
        assert!(matches!(step.event, Some(FrameEvent::Header(h)) if h.opcode == OpCode::PONG));
        let step = dec.decode(&mut []).unwrap();
        assert_eq!(
            step.event,
            Some(FrameEvent::Payload {
                chunk: &[],
                offset: 0,
                last: true
            })
        );
        assert!(dec.is_at_boundary());
    }

    #[test]
    fn mask_rule_enforced_and_reported() {
        let wire = [0x81, 0x02, b'h', b'i'];
        let err = decode_split(DecoderConfig::new(MaskRule::Required), &wire, &[4]).unwrap_err();
        assert_eq!(err, ProtocolError::UnmaskedClientFrame);
        let mut data = wire;
        let mut dec = FrameDecoder::new(DecoderConfig::new(MaskRule::Required).reporting());
        let step = dec.decode(&mut data).unwrap();
        assert_eq!(step.consumed, 2);
        assert_eq!(
            step.event,
            Some(FrameEvent::Violation(ProtocolError::UnmaskedClientFrame))
        );
        let step = dec.decode(&mut data[2..]).unwrap();
        assert!(matches!(step.event, Some(FrameEvent::Header(_))));
        let step = dec.decode(&mut data[2..]).unwrap();
        assert_eq!(
            step.event,
            Some(FrameEvent::Payload {
                chunk: b"hi",
                offset: 0,
                last: true
            })
        );
        let masked = [0x81, 0x80, 1, 2, 3, 4];
        let err = decode_split(DecoderConfig::new(MaskRule::Forbidden), &masked, &[6]).unwrap_err();
        assert_eq!(err, ProtocolError::MaskedServerFrame);
    }

    #[test]
    fn huge_declared_frame_is_refused_without_allocation() {
        let mut wire = [0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        let mut cfg = DecoderConfig::new(MaskRule::Forbidden);
        cfg.max_frame_len = 16 << 20;
        let mut dec = FrameDecoder::new(cfg);
        let err = dec.decode(&mut wire).unwrap_err();
        assert_eq!(err.close_code().0, 1009);
        let mut msb = [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1];
        let mut dec = FrameDecoder::new(DecoderConfig::new(MaskRule::Any).reporting());
        assert_eq!(
            dec.decode(&mut msb).unwrap_err(),
            ProtocolError::LengthMsbSet
        );
        assert_eq!(
            dec.decode(&mut msb).unwrap_err(),
            ProtocolError::LengthMsbSet
        );
    }

    #[test]
    fn skip_inside_payload_keeps_mask_offset() {
        let key = [9, 8, 7, 6];
        let mut payload: Vec<u8> = (0..20u8).collect();
        apply_mask(&mut payload, key, 0);
        let mut wire = alloc::vec![0x82, 0x94, 9, 8, 7, 6];
        wire.extend_from_slice(&payload);
        let mut dec = FrameDecoder::new(DecoderConfig::new(MaskRule::Required));
        let step = dec.decode(&mut wire[..6]).unwrap();
        assert!(matches!(step.event, Some(FrameEvent::Header(_))));
        let step = dec.decode(&mut wire[6..10]).unwrap();
        assert!(matches!(
            step.event,
            Some(FrameEvent::Payload {
                chunk: &[0, 1, 2, 3],
                ..
            })
        ));
        assert_eq!(dec.skip(5), SkipOutcome::InPayload { frame_end: false });
        let step = dec.decode(&mut wire[15..]).unwrap();
        assert_eq!(
            step.event,
            Some(FrameEvent::Payload {
                chunk: &[9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
                offset: 9,
                last: true
            })
        );
        assert_eq!(dec.skip(3), SkipOutcome::FramingLost);
    }

    #[test]
    fn frames_iterator_handles_truncation_and_64bit() {
        let mut buf = [0x82, 0x7f, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3];
        let mut it = frames(&mut buf);
        assert_eq!(
            it.next(),
            Some(Err(FramesError::Truncated {
                offset: 0,
                have: 13,
                need: 10 + (1 << 32)
            }))
        );
        assert_eq!(it.next(), None);
        let mut buf = [0x81, 0x82, 1, 2, 3, 4, b'o' ^ 1, b'k' ^ 2, 0x81];
        let mut it = frames(&mut buf);
        assert_eq!(it.next().unwrap().unwrap().payload, b"ok");
        assert!(matches!(
            it.next(),
            Some(Err(FramesError::Truncated { offset: 8, .. }))
        ));
    }
}
