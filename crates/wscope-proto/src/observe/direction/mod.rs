//! Frame decoding for one direction after the upgrade ([`WsDir`]): the decoder's events turned
//! into [`ObservedEvent`]s, the frame being reported, close and message bookkeeping, and loss
//! of framing.

mod resync;

use super::{Anomaly, ChunkInfo, DesyncCause, ObservedEvent, ObserverConfig};
use crate::close::zeek_status;
use crate::decoder::{DecoderConfig, MaskRule, Step};
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use crate::message::{AssemblerConfig, MessageDecoder, MessageEvent};
use crate::role::Direction;

/// A frame whose payload is being reported.
#[derive(Clone, Copy, Debug)]
pub(super) struct Track {
    pub(super) header: FrameHeader,
    pub(super) seen: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    Sync,
    Resync,
    /// A resync candidate whose chain of frames runs past the bytes seen so far: its frames
    /// are followed silently (not reported) until enough headers confirm it.
    Probe,
    Lost,
}

/// An owned copy of a decoder event, so that the decoder's borrow ends before the observer
/// updates its own state.
enum Raw {
    None,
    Frame(FrameHeader),
    Data {
        at: usize,
        len: usize,
        opcode: OpCode,
        compressed: bool,
        first: bool,
        frame_end: bool,
        message_end: bool,
    },
    ControlData {
        at: usize,
        len: usize,
    },
    Control(OpCode),
    Violation(ProtocolError),
    Failed(ProtocolError),
}

/// Where `chunk` sits in the buffer starting at address `base` of length `len`.
fn locate(base: usize, len: usize, chunk: &[u8]) -> (usize, usize) {
    let at = (chunk.as_ptr() as usize).wrapping_sub(base);
    if at <= len && chunk.len() <= len - at {
        (at, chunk.len())
    } else {
        (0, 0)
    }
}

/// Frame decoding for one direction after the upgrade.
#[derive(Debug)]
pub(super) struct WsDir {
    pub(super) dec: MessageDecoder,
    fcfg: DecoderConfig,
    acfg: AssemblerConfig,
    pub(super) mode: Mode,
    pub(super) frame: Option<Track>,
    pub(super) pending_message: Option<OpCode>,
    pub(super) pending_after_close: Option<OpCode>,
    /// This direction carried a close frame: frames after it are anomalies.
    sent_close: bool,
    /// The mask bit the last frame had; resynchronisation expects the same.
    expect_mask: bool,
    hdr: [u8; MAX_HEADER_LEN],
    hdr_len: usize,
    ctl: [u8; MAX_CONTROL_PAYLOAD],
    ctl_len: usize,
    /// Resync: a plausible but incomplete header at the end of the last buffer.
    win: [u8; MAX_HEADER_LEN],
    pub(super) win_len: usize,
    pub(super) skipped: u64,
    /// Headers still to check after a resynchronisation: each must be plausible and break no
    /// rule, or the resync point was a false header.
    probation: u8,
    /// Probe: payload bytes to pass over before the next expected header.
    pub(super) probe_skip: u64,
    /// Probe: plausible headers seen in the chain so far.
    probe_depth: u8,
    /// Probe: the evidence those headers carry, in bits.
    probe_bits: u32,
    /// The direction's permessage-deflate message layer (when negotiated and inflating).
    #[cfg(feature = "deflate")]
    inflater: Option<crate::deflate::MessageInflater>,
    /// The last compressed chunk inflated to bytes to report: `(opcode, message_end)` of
    /// the [`ObservedEvent::Inflated`] that comes next.
    #[cfg(feature = "deflate")]
    pending_inflated: Option<(OpCode, bool)>,
    /// The violations the last compressed chunk broke, in stream order (invalid UTF-8, then
    /// an inflate error), reported after its inflated bytes.
    pending_inflate_errors: [Option<ProtocolError>; 2],
}

impl WsDir {
    /// The direction's decoder; `deflate`: the sender of this direction resets its context
    /// after each message (`Some`: permessage-deflate was agreed and is to be inflated).
    pub(super) fn new(
        dir: Direction,
        cfg: &ObserverConfig,
        extension_rsv: u8,
        deflate: Option<bool>,
    ) -> Self {
        #[cfg(not(feature = "deflate"))]
        let _ = deflate;
        let mut fcfg = DecoderConfig::new(MaskRule::for_direction(dir)).reporting();
        fcfg.max_frame_len = cfg.max_frame_len;
        let acfg = AssemblerConfig {
            max_message_len: cfg.max_message_len,
            extension_rsv,
            validate_utf8: cfg.validate_utf8,
            control_chunks: true,
        };
        Self {
            dec: MessageDecoder::new(fcfg, acfg),
            fcfg,
            acfg,
            mode: Mode::Sync,
            frame: None,
            pending_message: None,
            pending_after_close: None,
            sent_close: false,
            expect_mask: dir == Direction::ClientToServer,
            hdr: [0; MAX_HEADER_LEN],
            hdr_len: 0,
            ctl: [0; MAX_CONTROL_PAYLOAD],
            ctl_len: 0,
            win: [0; MAX_HEADER_LEN],
            win_len: 0,
            skipped: 0,
            probation: 0,
            probe_skip: 0,
            probe_depth: 0,
            probe_bits: 0,
            #[cfg(feature = "deflate")]
            inflater: deflate.map(|no_context_takeover| {
                crate::deflate::MessageInflater::new(
                    no_context_takeover,
                    cfg.inflated_message_cap(),
                    cfg.validate_utf8,
                    crate::decoder::Strictness::Report,
                )
            }),
            #[cfg(feature = "deflate")]
            pending_inflated: None,
            pending_inflate_errors: [None, None],
        }
    }

    /// Bytes of inflated output held.
    pub(super) fn inflated_capacity(&self) -> usize {
        #[cfg(feature = "deflate")]
        {
            self.inflater
                .as_ref()
                .map_or(0, crate::deflate::MessageInflater::capacity)
        }
        #[cfg(not(feature = "deflate"))]
        {
            0
        }
    }

    /// Whether inflated bytes wait to be reported ([`Self::inflated`]).
    pub(super) fn has_inflated(&self) -> bool {
        #[cfg(feature = "deflate")]
        {
            self.pending_inflated.is_some()
        }
        #[cfg(not(feature = "deflate"))]
        {
            false
        }
    }

    /// The [`ObservedEvent::Inflated`] waiting, if any.
    pub(super) fn inflated(&mut self, dir: Direction) -> Option<ObservedEvent<'_>> {
        #[cfg(feature = "deflate")]
        {
            let (opcode, message_end) = self.pending_inflated.take()?;
            let data = self.inflater.as_ref().map_or(&[][..], |i| i.output());
            Some(ObservedEvent::Inflated {
                dir,
                data,
                opcode,
                message_end,
            })
        }
        #[cfg(not(feature = "deflate"))]
        {
            let _ = dir;
            None
        }
    }

    /// Framing is lost: drop all frame state and start looking for a header (or give up).
    pub(super) fn lose(&mut self, resync: bool) {
        self.mode = if resync { Mode::Resync } else { Mode::Lost };
        self.dec = MessageDecoder::new(self.fcfg, self.acfg);
        self.frame = None;
        self.pending_message = None;
        self.pending_after_close = None;
        // Inflated bytes waiting (their chunk was before the loss) are still reported.
        self.pending_inflate_errors = [None, None];
        self.win_len = 0;
        self.skipped = 0;
        self.probation = 0;
    }

    pub(super) fn step<'a>(
        &'a mut self,
        dir: Direction,
        buf: &'a mut [u8],
        cfg: &ObserverConfig,
    ) -> Step<ObservedEvent<'a>> {
        let anomaly = |consumed, anomaly| Step {
            consumed,
            event: Some(ObservedEvent::Anomaly { dir, anomaly }),
        };
        match self.mode {
            Mode::Lost => {
                return Step {
                    consumed: buf.len(),
                    event: None,
                }
            }
            Mode::Probe | Mode::Resync => {
                let max_len = cfg.resync_max_len();
                let (consumed, found) = if self.mode == Mode::Probe {
                    self.probe_step(buf, max_len)
                } else {
                    self.resync(buf, max_len)
                };
                return match found {
                    Some(a) => anomaly(consumed, a),
                    None => Step {
                        consumed,
                        event: None,
                    },
                };
            }
            Mode::Sync => {}
        }
        if self.has_inflated() {
            return Step {
                consumed: 0,
                event: self.inflated(dir),
            };
        }
        if let Some(e) = self.take_inflate_error() {
            return anomaly(0, Anomaly::Protocol(e));
        }
        if let Some(opcode) = self.pending_message {
            // Violations the decoder still holds (invalid UTF-8 at the end) come first.
            let held = match self.dec.decode(&mut []) {
                Ok(Step {
                    event: Some(MessageEvent::Violation(v)),
                    ..
                }) => Some(v),
                _ => None,
            };
            if let Some(v) = held {
                return anomaly(0, Anomaly::Protocol(v));
            }
            self.pending_message = None;
            return Step {
                consumed: 0,
                event: Some(ObservedEvent::Message { dir, opcode }),
            };
        }
        if let Some(opcode) = self.pending_after_close.take() {
            return anomaly(0, Anomaly::FrameAfterClose { opcode });
        }
        let base = buf.as_ptr() as usize;
        let len = buf.len();
        let (consumed, raw) = match self.dec.decode(&mut *buf) {
            Err(e) => (0, Raw::Failed(e)),
            Ok(step) => {
                let raw = match step.event {
                    None => Raw::None,
                    Some(MessageEvent::Frame(h)) => Raw::Frame(h),
                    Some(MessageEvent::Data {
                        opcode,
                        compressed,
                        chunk,
                        first,
                        frame_end,
                        message_end,
                    }) => {
                        let (at, len) = locate(base, len, chunk);
                        Raw::Data {
                            at,
                            len,
                            opcode,
                            compressed,
                            first,
                            frame_end,
                            message_end,
                        }
                    }
                    Some(MessageEvent::ControlData { chunk }) => {
                        let (at, len) = locate(base, len, chunk);
                        Raw::ControlData { at, len }
                    }
                    Some(MessageEvent::Control(c)) => {
                        let n = c.payload.len().min(MAX_CONTROL_PAYLOAD);
                        self.ctl[..n].copy_from_slice(&c.payload[..n]);
                        self.ctl_len = n;
                        Raw::Control(c.opcode)
                    }
                    Some(MessageEvent::Violation(v)) => Raw::Violation(v),
                };
                (step.consumed, raw)
            }
        };
        match raw {
            Raw::None => Step {
                consumed,
                event: None,
            },
            Raw::Failed(e) => {
                self.lose(cfg.resync);
                anomaly(
                    0,
                    Anomaly::Desync {
                        cause: DesyncCause::Framing(e),
                    },
                )
            }
            // A rule broken right after a resync point (a reserved opcode, invalid UTF-8 in
            // a "text" payload of random bytes) says the point was false. A continuation
            // without its start does not: the resync may have landed inside a message.
            Raw::Violation(v)
                if self.probation > 0 && v != ProtocolError::UnexpectedContinuation =>
            {
                self.lose(cfg.resync);
                anomaly(
                    consumed,
                    Anomaly::Desync {
                        cause: DesyncCause::FalseResync,
                    },
                )
            }
            Raw::Violation(v) => anomaly(consumed, Anomaly::Protocol(v)),
            Raw::Frame(header)
                if self.probation > 0 && !self.confirms(&header, cfg.resync_max_len()) =>
            {
                self.lose(cfg.resync);
                anomaly(
                    consumed,
                    Anomaly::Desync {
                        cause: DesyncCause::FalseResync,
                    },
                )
            }
            Raw::Frame(header) => {
                self.probation = self.probation.saturating_sub(1);
                self.hdr_len = header.emit(&mut self.hdr);
                self.frame = Some(Track { header, seen: 0 });
                self.expect_mask = header.mask.is_some();
                if self.sent_close {
                    self.pending_after_close = Some(header.opcode);
                }
                Step {
                    consumed,
                    event: Some(ObservedEvent::Frame {
                        dir,
                        header,
                        header_bytes: &self.hdr[..self.hdr_len],
                    }),
                }
            }
            Raw::Data {
                at,
                len,
                opcode,
                compressed,
                first,
                frame_end,
                message_end,
            } => {
                let remaining = self.advance(len, frame_end);
                if message_end {
                    self.pending_message = Some(opcode);
                }
                let buf: &'a [u8] = buf;
                let chunk = buf.get(at..at + len).unwrap_or(&[]);
                #[cfg(feature = "deflate")]
                if compressed {
                    self.inflate(chunk, opcode, first, message_end);
                }
                Step {
                    consumed,
                    event: Some(ObservedEvent::FrameData {
                        dir,
                        chunk,
                        info: ChunkInfo {
                            opcode,
                            compressed,
                            first,
                            remaining,
                            frame_end,
                            message_end,
                        },
                    }),
                }
            }
            Raw::ControlData { at, len } => {
                let (opcode, first) = self
                    .frame
                    .map_or((OpCode::CLOSE, true), |t| (t.header.opcode, t.seen == 0));
                let remaining = self.frame.map_or(0, |t| {
                    t.header.payload_len.saturating_sub(t.seen + len as u64)
                });
                let end = remaining == 0;
                self.advance(len, end);
                let buf: &'a [u8] = buf;
                Step {
                    consumed,
                    event: Some(ObservedEvent::FrameData {
                        dir,
                        chunk: buf.get(at..at + len).unwrap_or(&[]),
                        info: ChunkInfo {
                            opcode,
                            compressed: false,
                            first,
                            remaining,
                            frame_end: end,
                            message_end: end,
                        },
                    }),
                }
            }
            Raw::Control(opcode) => {
                self.frame = None;
                if opcode == OpCode::CLOSE {
                    self.sent_close = true;
                    self.pending_message = Some(opcode);
                    let payload = &self.ctl[..self.ctl_len];
                    let (status, reason) = zeek_status(payload);
                    Step {
                        consumed,
                        event: Some(ObservedEvent::Close {
                            dir,
                            status,
                            reason,
                            payload,
                        }),
                    }
                } else {
                    Step {
                        consumed,
                        event: Some(ObservedEvent::Message { dir, opcode }),
                    }
                }
            }
        }
    }

    /// Inflates a compressed chunk through the message layer (the endpoint's): its bytes and
    /// its violation are reported by the next steps, after the chunk's `FrameData`. Nothing
    /// is reported for an empty output unless it completes the message, nor for the chunks
    /// of a message that stopped inflating.
    #[cfg(feature = "deflate")]
    fn inflate(&mut self, chunk: &[u8], opcode: OpCode, first: bool, message_end: bool) {
        let Some(inflater) = self.inflater.as_mut() else {
            return;
        };
        match inflater.push(chunk, opcode == OpCode::TEXT, first, message_end) {
            Ok(Some(out)) => {
                if !out.is_empty() || message_end {
                    self.pending_inflated = Some((opcode, message_end));
                }
            }
            Ok(None) => {}
            Err(e) => {
                // Inflation that goes on (report mode after invalid UTF-8) still completes the
                // message; after an inflate error its end is never reported.
                let goes_on = !inflater.stopped();
                if !inflater.output().is_empty() || (goes_on && message_end) {
                    self.pending_inflated = Some((opcode, goes_on && message_end));
                }
                self.pending_inflate_errors = [Some(e), inflater.take_second_error()];
            }
        }
    }

    /// The next violation of the last compressed chunk still to report.
    pub(super) fn take_inflate_error(&mut self) -> Option<ProtocolError> {
        let [first, second] = &mut self.pending_inflate_errors;
        first.take().or_else(|| second.take())
    }

    /// Counts `len` payload bytes of the current frame; returns the bytes it still owes.
    pub(super) fn advance(&mut self, len: usize, frame_end: bool) -> u64 {
        let remaining = match self.frame.as_mut() {
            Some(t) => {
                t.seen = t.seen.saturating_add(len as u64);
                t.header.payload_len.saturating_sub(t.seen)
            }
            None => 0,
        };
        if frame_end {
            self.frame = None;
        }
        remaining
    }
}
