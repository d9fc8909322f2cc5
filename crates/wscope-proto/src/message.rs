//! Message assembly over the frame decoder: continuation rules, interleaved control frames,
//! reserved opcodes and bits, incremental UTF-8 validation and the message size limit.
//!
//! [`MessageDecoder`] wraps a [`FrameDecoder`] and turns its frame events into
//! [`MessageEvent`]s, one per call, with the same input/consume contract. Data is still streamed:
//! a text or binary message comes out as [`MessageEvent::Data`] chunks (sub-slices of the
//! caller's buffer, unmasked in place) with `frame_end`/`message_end` flags, never buffered.
//! Control frames, which may arrive between the fragments of a message (RFC 6455 section 5.4),
//! are collected in a 125-byte array and delivered whole as [`MessageEvent::Control`], so a
//! control frame split across reads still arrives as one event.
//!
//! Every rule is checked here once, for endpoints and observers alike: with
//! [`Strictness::Enforce`] the first violation is an error whose
//! [`close_code`](ProtocolError::close_code) is what Autobahn expects (1002, 1007, 1009); with
//! [`Strictness::Report`] it becomes a [`MessageEvent::Violation`] and decoding goes on.
//!
//! ```
//! use wscope_proto::decoder::{DecoderConfig, MaskRule};
//! use wscope_proto::message::{AssemblerConfig, MessageDecoder, MessageEvent};
//!
//! // "Hel" (text, FIN=0), a ping in between, "lo" (continuation, FIN=1).
//! let mut wire = [0x01, 0x03, b'H', b'e', b'l', 0x89, 0x01, b'!', 0x80, 0x02, b'l', b'o'];
//! let mut dec = MessageDecoder::new(DecoderConfig::new(MaskRule::Forbidden), AssemblerConfig::default());
//! let (mut text, mut pings, mut ends) = (Vec::new(), 0, 0);
//! let mut at = 0;
//! loop {
//!     let step = dec.decode(&mut wire[at..]).unwrap();
//!     at += step.consumed;
//!     match step.event {
//!         Some(MessageEvent::Data { chunk, message_end, .. }) => {
//!             text.extend_from_slice(chunk);
//!             ends += usize::from(message_end);
//!         }
//!         Some(MessageEvent::Control(c)) => { assert_eq!(c.payload, b"!"); pings += 1 }
//!         Some(_) => {}
//!         None => break,
//!     }
//! }
//! assert_eq!((text.as_slice(), pings, ends), (&b"Hello"[..], 1, 1));
//! ```

use crate::close::CloseFrameRef;
use crate::decoder::{DecoderConfig, FrameDecoder, FrameEvent, SkipOutcome, Step, Strictness};
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, RSV1};
use crate::utf8::Utf8Validator;

/// Settings of the message layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssemblerConfig {
    /// Messages longer than this (sum of their frames' payloads) are refused with 1009.
    pub max_message_len: u64,
    /// RSV bits that a negotiated extension defines (`RSV1` once permessage-deflate is agreed);
    /// any other RSV bit is a protocol error.
    pub extension_rsv: u8,
    /// Validate text messages as UTF-8 (1007 at the first invalid byte).
    pub validate_utf8: bool,
    /// Emit [`MessageEvent::ControlData`] for each chunk of a control frame's payload
    /// (observers want them; endpoints only need the whole [`MessageEvent::Control`]).
    pub control_chunks: bool,
}

/// Builder methods, one per field and of the same name: start from `AssemblerConfig::default()` (or
/// a constructor) and chain them; the struct is `#[non_exhaustive]`, so fields may be added without
/// breaking callers.
impl AssemblerConfig {
    /// Sets [`AssemblerConfig::max_message_len`]: messages longer than this (sum of their frames'
    /// payloads) are refused with 1009.
    #[must_use]
    pub const fn max_message_len(mut self, max_message_len: u64) -> Self {
        self.max_message_len = max_message_len;
        self
    }

    /// Sets [`AssemblerConfig::extension_rsv`]: RSV bits that a negotiated extension defines
    /// (`RSV1` once permessage-deflate is agreed); any other RSV bit is a protocol error.
    #[must_use]
    pub const fn extension_rsv(mut self, extension_rsv: u8) -> Self {
        self.extension_rsv = extension_rsv;
        self
    }

    /// Sets [`AssemblerConfig::validate_utf8`]: validate text messages as UTF-8 (1007 at the first
    /// invalid byte).
    #[must_use]
    pub const fn validate_utf8(mut self, validate_utf8: bool) -> Self {
        self.validate_utf8 = validate_utf8;
        self
    }

    /// Sets [`AssemblerConfig::control_chunks`]: emit [`MessageEvent::ControlData`] for each chunk
    /// of a control frame's payload (observers want them; endpoints only need the whole
    /// [`MessageEvent::Control`]).
    #[must_use]
    pub const fn control_chunks(mut self, control_chunks: bool) -> Self {
        self.control_chunks = control_chunks;
        self
    }
}

impl Default for AssemblerConfig {
    /// 64 MiB messages, no extension, UTF-8 validated.
    fn default() -> Self {
        Self {
            max_message_len: 64 << 20,
            extension_rsv: 0,
            validate_utf8: true,
            control_chunks: true,
        }
    }
}

/// A whole control frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "closed: a control frame is an opcode and a payload"
)]
pub struct ControlFrame<'a> {
    /// Close, ping, pong (or a reserved control opcode in report mode).
    pub opcode: OpCode,
    /// The payload, at most 125 bytes (an oversized frame in report mode is cut to 125).
    pub payload: &'a [u8],
    /// The payload length the header declared.
    pub declared_len: u64,
}

impl<'a> ControlFrame<'a> {
    /// For a close frame: its status and reason if well formed (`Ok(None)`: no status). A
    /// frame that declared more than 125 bytes is malformed by its length
    /// ([`ProtocolError::ControlFrameTooLong`]), whatever its first 125 bytes hold.
    pub fn close(&self) -> Result<Option<CloseFrameRef<'a>>, ProtocolError> {
        if self.declared_len > MAX_CONTROL_PAYLOAD as u64 {
            return Err(ProtocolError::ControlFrameTooLong {
                len: self.declared_len,
            });
        }
        CloseFrameRef::parse(self.payload)
    }
}

/// One thing the message layer found.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageEvent<'a> {
    /// A frame header, for every frame (data and control) before its payload. Endpoints can
    /// ignore it; observers report it (Zeek's `websocket_frame`).
    Frame(FrameHeader),
    /// A chunk of a data message's payload, unmasked.
    Data {
        /// The opcode of the message's first frame (text or binary).
        opcode: OpCode,
        /// The message's first frame had RSV1 set under an extension (permessage-deflate):
        /// the chunk is compressed and was not UTF-8 checked.
        compressed: bool,
        /// The bytes: a sub-slice of the caller's buffer.
        chunk: &'a [u8],
        /// This is the first chunk of the message (Net::Inspect's `init`).
        first: bool,
        /// This chunk ends its frame.
        frame_end: bool,
        /// This chunk ends the message (the frame ends and had FIN).
        message_end: bool,
    },
    /// A chunk of a control frame's payload as it arrives (observers' `websocket_frame_data`);
    /// the whole frame follows as [`MessageEvent::Control`].
    ControlData {
        /// The bytes: a sub-slice of the caller's buffer.
        chunk: &'a [u8],
    },
    /// A whole control frame.
    Control(ControlFrame<'a>),
    /// [`Strictness::Report`] only: a rule was broken; decoding goes on.
    Violation(ProtocolError),
}

/// What [`MessageDecoder::skip`] did with a gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GapOutcome {
    /// The gap fell inside a payload; decoding is still in sync.
    InPayload {
        /// The gap ended the frame.
        frame_end: bool,
        /// The gap ended a message (a final data frame, or a control frame): its first opcode.
        message_end: Option<OpCode>,
    },
    /// The gap covered a header: framing is lost and state was dropped.
    FramingLost,
}

#[derive(Clone, Copy, Debug)]
struct Message {
    opcode: OpCode,
    compressed: bool,
    len: u64,
    first: bool,
    too_large_reported: bool,
}

#[derive(Clone, Copy, Debug)]
enum Current {
    Data { fin: bool },
    Control { opcode: OpCode, declared_len: u64 },
}

/// A FIFO of up to four pending violations (report mode).
#[derive(Clone, Copy, Debug, Default)]
struct Pending {
    items: [Option<ProtocolError>; 4],
}

impl Pending {
    fn push(&mut self, v: ProtocolError) {
        if let Some(slot) = self.items.iter_mut().find(|s| s.is_none()) {
            *slot = Some(v);
        }
    }

    fn pop(&mut self) -> Option<ProtocolError> {
        let first = self.items[0].take()?;
        self.items.rotate_left(1);
        Some(first)
    }
}

/// Frame decoding plus message rules for one direction of a connection.
#[derive(Clone, Debug)]
pub struct MessageDecoder {
    frames: FrameDecoder,
    cfg: AssemblerConfig,
    message: Option<Message>,
    current: Option<Current>,
    utf8: Utf8Validator,
    utf8_failed: bool,
    control: [u8; MAX_CONTROL_PAYLOAD],
    control_len: u8,
    control_ready: bool,
    pending: Pending,
    failed: Option<ProtocolError>,
}

impl MessageDecoder {
    /// A decoder at the start of a stream. The strictness of `frames` applies to both layers.
    pub const fn new(frames: DecoderConfig, cfg: AssemblerConfig) -> Self {
        Self {
            frames: FrameDecoder::new(frames),
            cfg,
            message: None,
            current: None,
            utf8: Utf8Validator::new(),
            utf8_failed: false,
            control: [0; MAX_CONTROL_PAYLOAD],
            control_len: 0,
            control_ready: false,
            pending: Pending { items: [None; 4] },
            failed: None,
        }
    }

    /// The message-layer settings.
    pub const fn config(&self) -> &AssemblerConfig {
        &self.cfg
    }

    /// Changes the message-layer settings (e.g. `extension_rsv` once an extension is agreed).
    pub fn set_config(&mut self, cfg: AssemblerConfig) {
        self.cfg = cfg;
    }

    /// The frame decoder underneath.
    pub fn frame_decoder(&mut self) -> &mut FrameDecoder {
        &mut self.frames
    }

    /// Whether a fragmented message is open (its final frame not seen yet).
    pub const fn in_message(&self) -> bool {
        self.message.is_some()
    }

    /// Whether the text message in progress is valid UTF-8 so far and ends between code
    /// points, i.e. what its final frame ending here would need (`true` when no text is
    /// checked). Report mode keeps decoding after an invalid byte; this keeps the verdict.
    pub(crate) const fn text_valid_so_far(&self) -> bool {
        !self.utf8_failed && self.utf8.is_boundary()
    }

    /// Whether the decoder is at a frame boundary with nothing pending.
    pub fn is_at_frame_boundary(&self) -> bool {
        self.frames.is_at_boundary() && !self.control_ready && self.pending.items[0].is_none()
    }

    /// Skips `len` lost bytes of this direction (a capture gap).
    ///
    /// Inside a payload the decoder stays in sync (the mask offset keeps counting); a text
    /// message that lost bytes is no longer UTF-8 checked. A gap that ends a frame ends it, and
    /// ends its message when the frame had FIN. Anywhere else framing is lost: all state is
    /// dropped and the next byte is taken as a frame header.
    pub fn skip(&mut self, len: u64) -> GapOutcome {
        match self.frames.skip(len) {
            SkipOutcome::InPayload { frame_end: false } => {
                self.utf8_failed = true;
                GapOutcome::InPayload {
                    frame_end: false,
                    message_end: None,
                }
            }
            SkipOutcome::InPayload { frame_end: true } => {
                let mut message_end = None;
                match self.current.take() {
                    Some(Current::Data { fin }) => {
                        if fin {
                            message_end = self.message.take().map(|m| m.opcode);
                        }
                        self.utf8_failed = true;
                    }
                    Some(Current::Control { opcode, .. }) => message_end = Some(opcode),
                    None => {}
                }
                GapOutcome::InPayload {
                    frame_end: true,
                    message_end,
                }
            }
            SkipOutcome::FramingLost => {
                self.message = None;
                self.current = None;
                self.control_ready = false;
                self.pending = Pending::default();
                self.utf8.reset();
                GapOutcome::FramingLost
            }
        }
    }

    fn strict(&self) -> bool {
        self.frames.config().strictness == Strictness::Enforce
    }

    /// Records a violation: an error in enforce mode, a pending event in report mode.
    fn violate(&mut self, v: ProtocolError) -> Result<(), ProtocolError> {
        if self.strict() {
            self.failed = Some(v);
            Err(v)
        } else {
            self.pending.push(v);
            Ok(())
        }
    }

    /// Decodes the next event from the front of `buf` (same contract as
    /// [`FrameDecoder::decode`]: drop `consumed` bytes, call again until the event is `None`).
    pub fn decode<'a>(
        &'a mut self,
        buf: &'a mut [u8],
    ) -> Result<Step<MessageEvent<'a>>, ProtocolError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if let Some(v) = self.pending.pop() {
            return Ok(Step {
                consumed: 0,
                event: Some(MessageEvent::Violation(v)),
            });
        }
        let mut at = 0;
        if !self.cfg.control_chunks {
            // Collect a control payload without surfacing its chunks.
            while matches!(self.current, Some(Current::Control { .. }))
                && !self.control_ready
                && !self.frames.is_at_boundary()
            {
                let step = match self.frames.decode(&mut buf[at..]) {
                    Ok(step) => step,
                    Err(e) => {
                        self.failed = Some(e);
                        return Err(e);
                    }
                };
                at += step.consumed;
                match step.event {
                    Some(FrameEvent::Payload { chunk, last, .. }) => {
                        self.payload(chunk, last)?;
                    }
                    Some(FrameEvent::Violation(v)) => self.pending.push(v),
                    Some(FrameEvent::Header(_)) | None => break,
                }
            }
            if let Some(v) = self.pending.pop() {
                return Ok(Step {
                    consumed: at,
                    event: Some(MessageEvent::Violation(v)),
                });
            }
            if !self.control_ready && matches!(self.current, Some(Current::Control { .. })) {
                return Ok(Step {
                    consumed: at,
                    event: None,
                });
            }
        }
        if self.control_ready {
            self.control_ready = false;
            let Some(Current::Control {
                opcode,
                declared_len,
            }) = self.current.take()
            else {
                return Ok(Step {
                    consumed: 0,
                    event: None,
                });
            };
            let payload = &self.control[..usize::from(self.control_len)];
            return Ok(Step {
                consumed: at,
                event: Some(MessageEvent::Control(ControlFrame {
                    opcode,
                    payload,
                    declared_len,
                })),
            });
        }
        let step = match self.frames.decode(&mut buf[at..]) {
            Ok(step) => step,
            Err(e) => {
                self.failed = Some(e);
                return Err(e);
            }
        };
        let consumed = at + step.consumed;
        let event = match step.event {
            None => None,
            Some(FrameEvent::Violation(v)) => Some(MessageEvent::Violation(v)),
            Some(FrameEvent::Header(h)) => {
                self.begin_frame(&h)?;
                Some(MessageEvent::Frame(h))
            }
            Some(FrameEvent::Payload { chunk, last, .. }) => Some(self.payload(chunk, last)?),
        };
        Ok(Step { consumed, event })
    }

    fn begin_frame(&mut self, h: &FrameHeader) -> Result<(), ProtocolError> {
        if h.opcode.is_reserved() {
            self.violate(ProtocolError::ReservedOpcode { opcode: h.opcode })?;
        }
        if h.rsv & !self.cfg.extension_rsv != 0 {
            self.violate(ProtocolError::ReservedBits { rsv: h.rsv })?;
        } else if h.rsv1() && (h.opcode.is_control() || h.opcode == OpCode::CONTINUATION) {
            self.violate(ProtocolError::CompressedNonFirstFrame)?;
        }
        if h.opcode.is_control() {
            if !h.fin {
                self.violate(ProtocolError::FragmentedControlFrame)?;
            }
            if h.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                self.violate(ProtocolError::ControlFrameTooLong { len: h.payload_len })?;
            }
            self.control_len = 0;
            self.current = Some(Current::Control {
                opcode: h.opcode,
                declared_len: h.payload_len,
            });
            return Ok(());
        }
        if h.opcode == OpCode::CONTINUATION {
            if self.message.is_none() {
                self.violate(ProtocolError::UnexpectedContinuation)?;
                self.start_message(OpCode::CONTINUATION, false);
            }
        } else {
            if self.message.is_some() {
                self.violate(ProtocolError::ExpectedContinuation { opcode: h.opcode })?;
            }
            let compressed = h.rsv1() && self.cfg.extension_rsv & RSV1 != 0;
            self.start_message(h.opcode, compressed);
        }
        let max = self.cfg.max_message_len;
        if let Some(m) = self.message.as_mut() {
            m.len = m.len.saturating_add(h.payload_len);
            if m.len > max && !m.too_large_reported {
                m.too_large_reported = true;
                self.violate(ProtocolError::MessageTooLarge { max })?;
            }
        }
        self.current = Some(Current::Data { fin: h.fin });
        Ok(())
    }

    fn start_message(&mut self, opcode: OpCode, compressed: bool) {
        self.message = Some(Message {
            opcode,
            compressed,
            len: 0,
            first: true,
            too_large_reported: false,
        });
        self.utf8.reset();
        self.utf8_failed = false;
    }

    fn payload<'a>(
        &mut self,
        chunk: &'a [u8],
        last: bool,
    ) -> Result<MessageEvent<'a>, ProtocolError> {
        match self.current {
            Some(Current::Control { .. }) => {
                let have = usize::from(self.control_len);
                let take = (MAX_CONTROL_PAYLOAD - have).min(chunk.len());
                self.control[have..have + take].copy_from_slice(&chunk[..take]);
                self.control_len = (have + take) as u8;
                if last {
                    self.control_ready = true;
                    if let Some(Current::Control {
                        opcode: OpCode::CLOSE,
                        ..
                    }) = self.current
                    {
                        if let Err(e) = CloseFrameRef::parse(&self.control[..have + take]) {
                            // An oversized close was already reported as such.
                            if !matches!(e, ProtocolError::ControlFrameTooLong { .. }) {
                                self.violate(e)?;
                            }
                        }
                    }
                }
                Ok(MessageEvent::ControlData { chunk })
            }
            Some(Current::Data { fin }) => {
                let Some(mut msg) = self.message else {
                    return Err(ProtocolError::UnexpectedContinuation);
                };
                let message_end = last && fin;
                let check = self.cfg.validate_utf8
                    && msg.opcode == OpCode::TEXT
                    && !msg.compressed
                    && !self.utf8_failed;
                if check {
                    let mut ok = self.utf8.feed(chunk).is_ok();
                    if ok && message_end {
                        ok = self.utf8.finish().is_ok();
                    }
                    if !ok {
                        self.utf8_failed = true;
                        self.violate(ProtocolError::InvalidUtf8)?;
                    }
                }
                let first = msg.first;
                msg.first = false;
                self.message = if message_end { None } else { Some(msg) };
                if last {
                    self.current = None;
                }
                Ok(MessageEvent::Data {
                    opcode: msg.opcode,
                    compressed: msg.compressed,
                    chunk,
                    first,
                    frame_end: last,
                    message_end,
                })
            }
            None => Ok(MessageEvent::ControlData { chunk }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::MaskRule;
    use alloc::vec::Vec;

    #[derive(Debug, PartialEq, Eq)]
    enum Ev {
        Frame(OpCode, bool),
        Data(Vec<u8>, bool, bool),
        Control(OpCode, Vec<u8>),
        Violation(ProtocolError),
    }

    fn run(wire: &[u8], report: bool, chunk: usize) -> Result<Vec<Ev>, ProtocolError> {
        let mut data = wire.to_vec();
        let mut fcfg = DecoderConfig::new(MaskRule::Forbidden);
        if report {
            fcfg = fcfg.reporting();
        }
        let mut dec = MessageDecoder::new(fcfg, AssemblerConfig::default());
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let end = (pos + chunk).min(data.len());
            let mut at = pos;
            loop {
                let step = dec.decode(&mut data[at..end])?;
                at += step.consumed;
                match step.event {
                    None => break,
                    Some(MessageEvent::Frame(h)) => out.push(Ev::Frame(h.opcode, h.fin)),
                    Some(MessageEvent::Data {
                        chunk,
                        frame_end,
                        message_end,
                        ..
                    }) => out.push(Ev::Data(chunk.to_vec(), frame_end, message_end)),
                    Some(MessageEvent::ControlData { .. }) => {}
                    Some(MessageEvent::Control(c)) => {
                        out.push(Ev::Control(c.opcode, c.payload.to_vec()))
                    }
                    Some(MessageEvent::Violation(v)) => out.push(Ev::Violation(v)),
                }
            }
            pos = end;
        }
        // Drain an event that needs no input (a zero-length frame's end, a ready control frame).
        loop {
            let step = dec.decode(&mut [])?;
            match step.event {
                None => break,
                Some(MessageEvent::Data {
                    chunk,
                    frame_end,
                    message_end,
                    ..
                }) => out.push(Ev::Data(chunk.to_vec(), frame_end, message_end)),
                Some(MessageEvent::Control(c)) => {
                    out.push(Ev::Control(c.opcode, c.payload.to_vec()))
                }
                Some(MessageEvent::Violation(v)) => out.push(Ev::Violation(v)),
                Some(_) => {}
            }
        }
        Ok(out)
    }

    fn merged_data(evs: &[Ev]) -> Vec<u8> {
        evs.iter()
            .filter_map(|e| {
                if let Ev::Data(d, ..) = e {
                    Some(d.as_slice())
                } else {
                    None
                }
            })
            .flatten()
            .copied()
            .collect()
    }

    #[test]
    fn control_between_fragments_split_anywhere() {
        let wire = [
            0x01, 0x03, b'H', b'e', b'l', 0x89, 0x02, b'p', b'!', 0x80, 0x02, b'l', b'o',
        ];
        for chunk in 1..wire.len() {
            let evs = run(&wire, false, chunk).unwrap();
            assert_eq!(merged_data(&evs), b"Hello");
            assert!(
                evs.contains(&Ev::Control(OpCode::PING, b"p!".to_vec())),
                "{chunk}"
            );
            assert_eq!(
                evs.iter()
                    .filter(|e| matches!(e, Ev::Data(_, _, true)))
                    .count(),
                1
            );
        }
    }

    #[test]
    fn autobahn_protocol_errors() {
        let cases: &[(&[u8], ProtocolError)] = &[
            (&[0x80, 0x00], ProtocolError::UnexpectedContinuation),
            (
                &[0x01, 0x00, 0x01, 0x00],
                ProtocolError::ExpectedContinuation {
                    opcode: OpCode::TEXT,
                },
            ),
            (
                &[0x83, 0x00],
                ProtocolError::ReservedOpcode { opcode: OpCode(3) },
            ),
            (
                &[0x8b, 0x00],
                ProtocolError::ReservedOpcode {
                    opcode: OpCode(0xb),
                },
            ),
            (&[0xc1, 0x00], ProtocolError::ReservedBits { rsv: 4 }),
            (&[0x09, 0x00], ProtocolError::FragmentedControlFrame),
            (
                &[0x89, 0x7e, 0x00, 0x7e],
                ProtocolError::ControlFrameTooLong { len: 126 },
            ),
            (&[0x88, 0x01, 0x03], ProtocolError::CloseOneBytePayload),
            (
                &[0x88, 0x02, 0x03, 0xed],
                ProtocolError::InvalidCloseCode {
                    code: crate::close::CloseCode(1005),
                },
            ),
            (&[0x81, 0x02, 0xc0, 0xaf], ProtocolError::InvalidUtf8),
            (&[0x01, 0x01, 0xe2, 0x80, 0x00], ProtocolError::InvalidUtf8),
        ];
        for (wire, err) in cases {
            assert_eq!(run(wire, false, 64).unwrap_err(), *err, "{wire:x?}");
            assert!(
                run(wire, true, 64).unwrap().contains(&Ev::Violation(*err)),
                "{wire:x?}"
            );
        }
    }

    #[test]
    fn utf8_fails_fast_inside_a_fragment() {
        // Valid start, then an invalid byte in a non-final fragment: error before the message ends.
        let wire = [0x01, 0x04, b'o', b'k', 0xf8, b'x'];
        assert_eq!(
            run(&wire, false, 64).unwrap_err(),
            ProtocolError::InvalidUtf8
        );
        // A code point split across fragments is fine.
        let e = "é".as_bytes();
        let wire = [0x01, 0x01, e[0], 0x80, 0x01, e[1]];
        assert_eq!(merged_data(&run(&wire, false, 1).unwrap()), e);
    }

    #[test]
    fn message_size_limit_is_1009() {
        let mut dec = MessageDecoder::new(
            DecoderConfig::new(MaskRule::Forbidden),
            AssemblerConfig {
                max_message_len: 4,
                ..AssemblerConfig::default()
            },
        );
        let mut wire = [0x02, 0x03, 1, 2, 3, 0x80, 0x02, 4, 5];
        let step = dec.decode(&mut wire).unwrap();
        assert_eq!(step.consumed, 2);
        let step = dec.decode(&mut wire[2..]).unwrap();
        assert_eq!(step.consumed, 3);
        let err = dec.decode(&mut wire[5..]).unwrap_err();
        assert_eq!(err.close_code().0, 1009);
    }

    #[test]
    fn empty_frames_and_messages() {
        let wire = [0x81, 0x00, 0x02, 0x00, 0x80, 0x00, 0x88, 0x00];
        let evs = run(&wire, false, 64).unwrap();
        let ends = evs
            .iter()
            .filter(|e| matches!(e, Ev::Data(_, true, true)))
            .count();
        assert_eq!(ends, 2);
        assert_eq!(evs.last(), Some(&Ev::Control(OpCode::CLOSE, Vec::new())));
    }
}
