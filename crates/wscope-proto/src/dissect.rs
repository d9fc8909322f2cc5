//! The dissector: an annotated reading of one direction's frames, for tools that show a stream
//! rather than act on it (`wscope parse`, a Kaitai-style frame listing).
//!
//! [`Dissector::decode`] follows the crate's input contract: it looks at the caller's unconsumed
//! bytes, may unmask them in place, and returns a [`Step`] with the bytes it used and at most one
//! [`Dissected`] item; the caller drops `consumed` bytes and calls again until the item is `None`
//! (all bytes used, more input needed). Every item carries its stream offset (bytes fed before it,
//! counted from 0):
//!
//! - [`Dissected::Frame`]: a frame header, its fields and its bytes as on the wire;
//! - [`Dissected::Payload`]: the frame's payload in chunks, **unmasked in place** as sub-slices
//!   of the caller's buffer (a zero-length frame gives one empty chunk), the last one marked;
//! - [`Dissected::Violation`]: a broken rule, as the [`ProtocolError`] an endpoint would fail
//!   the connection with (so [`ProtocolError::close_code`] gives 1002, 1007 or 1009), tied to the
//!   offset of the frame it was found in;
//! - [`Dissected::FrameEnd`]: the frame is complete and all of its violations were reported;
//!   for a control frame it holds the whole payload, so a close frame's status and reason are
//!   at hand ([`FrameEnd::close`]);
//! - [`Dissected::Message`]: a message ended ([`MessageInfo`]: where its first frame starts,
//!   its opcode, length and frame count, whether it was complete, and for text whether it is
//!   valid UTF-8). A control frame is a message of its own. A data message left open by a new
//!   text or binary frame ends, unfinished, right after that frame's `FrameEnd`; one still open
//!   when the input ends is in [`Dissector::finish`], with a frame cut by the end of the input.
//!
//! Nothing here makes a rule of its own: the frames go through one [`MessageDecoder`] in
//! [`Strictness::Report`](crate::decoder::Strictness::Report) mode, the observer's strictness,
//! with the direction's [`MaskRule`]. Where a message starts and ends, and what counts as a
//! violation, is what that decoder says. Memory is bounded whatever the input: a frame header
//! (at most 14 bytes), one control payload (at most 125 bytes) and a few counters are held;
//! data payloads never are. A 64-bit length with its top bit set loses framing: it is reported
//! as a violation and the rest of the input is skipped ([`Dissector::is_framing_lost`]).
//!
//! ```
//! use wscope_proto::decoder::MaskRule;
//! use wscope_proto::dissect::{Dissected, Dissector};
//!
//! // "Hel" (text, FIN=0), a ping "!" in between, "lo" (continuation, FIN=1), then a frame
//! // with a reserved opcode.
//! let mut wire = [0x01, 0x03, b'H', b'e', b'l', 0x89, 0x01, b'!', 0x80, 0x02, b'l', b'o', 0x83, 0x00];
//! let mut dis = Dissector::new(MaskRule::Forbidden);
//! let (mut text, mut lines, mut control) = (Vec::new(), Vec::new(), false);
//! let mut at = 0;
//! loop {
//!     let step = dis.decode(&mut wire[at..]);
//!     at += step.consumed;
//!     match step.event {
//!         Some(Dissected::Frame(f)) => control = f.header.opcode.is_control(),
//!         Some(Dissected::Payload(p)) if !control => text.extend_from_slice(p.chunk),
//!         Some(Dissected::Message(m)) => lines.push(format!(
//!             "message @{}: opcode {}, {} bytes in {} frame(s)",
//!             m.offset, m.opcode.0, m.len, m.frames
//!         )),
//!         Some(Dissected::Violation(v)) => lines.push(format!(
//!             "@{}: {} (close code {})",
//!             v.offset, v.error.name(), v.error.close_code().0
//!         )),
//!         Some(_) => {}
//!         None => break,
//!     }
//! }
//! assert_eq!(text, b"Hello");
//! assert_eq!(
//!     lines,
//!     [
//!         "message @5: opcode 9, 1 bytes in 1 frame(s)",
//!         "message @0: opcode 1, 5 bytes in 2 frame(s)",
//!         "@12: reserved_opcode (close code 1002)",
//!         "message @12: opcode 3, 0 bytes in 1 frame(s)",
//!     ]
//! );
//! let end = dis.finish();
//! assert_eq!((end.message, end.frame), (None, None));
//! ```

use crate::close::CloseFrameRef;
use crate::decoder::{DecoderConfig, MaskRule, Step};
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, HeaderStatus, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use crate::message::{AssemblerConfig, ControlFrame, MessageDecoder, MessageEvent};

/// One thing the [`Dissector`] found, in stream order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dissected<'a> {
    /// A frame header; its payload chunks follow.
    Frame(FrameStart<'a>),
    /// The frame is complete: every payload chunk and every violation of it were reported.
    FrameEnd(FrameEnd<'a>),
    /// A message ended (right after the `FrameEnd` of the frame that ended it).
    Message(MessageInfo),
    /// A chunk of the current frame's payload, unmasked in place.
    Payload(PayloadChunk<'a>),
    /// A rule was broken; dissection goes on (unless framing is lost).
    Violation(Violation),
}

/// A frame header as read: [`Dissected::Frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrameStart<'a> {
    /// Stream offset of the header's first byte.
    pub offset: u64,
    /// The decoded header.
    pub header: FrameHeader,
    /// The header's bytes as on the wire (2 to 14 bytes, mask key included).
    pub header_bytes: &'a [u8],
}

/// A piece of a frame's payload: [`Dissected::Payload`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PayloadChunk<'a> {
    /// Stream offset of `chunk[0]`.
    pub offset: u64,
    /// Position of `chunk[0]` within the frame's payload.
    pub position: u64,
    /// The bytes, unmasked in place: a sub-slice of the buffer given to
    /// [`Dissector::decode`].
    pub chunk: &'a [u8],
    /// This chunk ends the frame's payload.
    pub last: bool,
}

/// A complete frame: [`Dissected::FrameEnd`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrameEnd<'a> {
    /// Stream offset of the frame's first header byte.
    pub offset: u64,
    /// The frame's header.
    pub header: FrameHeader,
    /// The message the frame belongs to: the offset of that message's first frame (a control
    /// frame's own offset), as in [`MessageInfo::offset`].
    pub message: u64,
    /// For a control frame: the whole frame (payload cut to 125 bytes if it was longer).
    pub control: Option<ControlFrame<'a>>,
}

impl<'a> FrameEnd<'a> {
    /// For a close frame: its status and reason if it is well formed (`Ok(None)`: no status),
    /// else the violation that makes it malformed. `None` for any other frame.
    pub fn close(&self) -> Option<Result<Option<CloseFrameRef<'a>>, ProtocolError>> {
        self.control
            .filter(|c| c.opcode == OpCode::CLOSE)
            .map(|c| c.close())
    }
}

/// A message: [`Dissected::Message`], or the one left open in [`Unfinished::message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageInfo {
    /// Stream offset of the message's first frame.
    pub offset: u64,
    /// The opcode of its first frame (a continuation opcode when the message started with a
    /// continuation frame that had nothing to continue).
    pub opcode: OpCode,
    /// Complete frames in the message (1 for a control frame).
    pub frames: u64,
    /// Payload bytes of those frames.
    pub len: u64,
    /// The message ended with its final (FIN) frame; `false` for a message cut off by a new
    /// text or binary frame or by the end of the input.
    pub complete: bool,
    /// For a text message: whether its payload (of the frames counted) is valid UTF-8, a code
    /// point split across fragments included. `None` for any other message.
    pub text_valid: Option<bool>,
}

/// A broken rule: [`Dissected::Violation`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Violation {
    /// Stream offset of the frame it was found in (the frame whose header begins there).
    pub offset: u64,
    /// The rule, with the close code an endpoint would send
    /// ([`ProtocolError::close_code`]).
    pub error: ProtocolError,
}

/// What the end of the input left unfinished: [`Dissector::finish`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unfinished {
    /// The data message still open: its final frame never came (counting complete frames
    /// only).
    pub message: Option<MessageInfo>,
    /// The frame cut by the end of the input.
    pub frame: Option<TruncatedFrame>,
}

/// A frame cut by the end of the input: [`Unfinished::frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TruncatedFrame {
    /// Stream offset of the frame's first byte.
    pub offset: u64,
    /// Bytes of the frame present (header and payload).
    pub have: u64,
    /// Bytes the whole frame needs (header and payload); for a cut header, the bytes the
    /// header needs at least.
    pub need: u64,
    /// The header, if it was complete (the cut is in the payload).
    pub header: Option<FrameHeader>,
}

/// Dissects one direction of a WebSocket stream into frames, payload chunks, messages and
/// violations, with their stream offsets (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Dissector {
    dec: MessageDecoder,
    /// Stream offset of the next byte fed.
    pos: u64,
    state: State,
    /// The current frame's header bytes as on the wire.
    header: [u8; MAX_HEADER_LEN],
    header_len: u8,
    /// The current control frame's payload (cut at 125 bytes).
    control: [u8; MAX_CONTROL_PAYLOAD],
    control_len: u8,
    /// The open data message, counting its complete frames.
    message: Option<MessageInfo>,
    /// Messages ended by the last complete frame, reported after its `FrameEnd`.
    ended: [Option<MessageInfo>; 2],
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Reading the header of the frame starting at `offset`.
    Header { offset: u64 },
    /// Reading the payload of a frame.
    Payload(Frame),
    /// The frame's last payload byte was seen: its last violations (and, for a control frame,
    /// the whole frame) are collected before it ends.
    Ending(Frame),
    /// A header made framing impossible: the rest of the input is skipped.
    Lost,
}

/// The frame being read.
#[derive(Clone, Copy, Debug)]
struct Frame {
    offset: u64,
    header: FrameHeader,
    /// Payload bytes seen.
    seen: u64,
    /// What the message decoder said about the frame's data, from its first chunk on (`None`
    /// until then, and for a control frame).
    data: Option<DataFrame>,
}

/// A data frame as the message decoder sees it.
#[derive(Clone, Copy, Debug)]
struct DataFrame {
    /// The frame starts a new message.
    first: bool,
    /// The message's opcode.
    opcode: OpCode,
    /// The frame ends its message.
    message_end: bool,
}

/// A [`MessageEvent`] with its borrows dropped, so the decoder can be asked about its state
/// afterwards; a payload chunk is found again in the caller's buffer by its length.
enum Found {
    Chunk { len: usize, data: Option<DataFrame> },
    Control,
    Frame(FrameHeader),
    Nothing,
    Violation(ProtocolError),
}

impl Dissector {
    /// A dissector at the start of a stream, checking the mask bit by `mask` (RFC 6455
    /// section 5.1: [`MaskRule::Required`] for client-to-server traffic,
    /// [`MaskRule::Forbidden`] for server-to-client, [`MaskRule::Any`] when unknown). Lengths
    /// that are not minimally encoded are violations; frames and messages have no size
    /// limit.
    pub const fn new(mask: MaskRule) -> Self {
        let messages = AssemblerConfig {
            max_message_len: u64::MAX,
            extension_rsv: 0,
            validate_utf8: true,
            control_chunks: true,
        };
        Self {
            dec: MessageDecoder::new(DecoderConfig::new(mask).reporting(), messages),
            pos: 0,
            state: State::Header { offset: 0 },
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            control: [0; MAX_CONTROL_PAYLOAD],
            control_len: 0,
            message: None,
            ended: [None; 2],
        }
    }

    /// Stream offset of the next byte to be fed: all bytes consumed so far.
    pub const fn offset(&self) -> u64 {
        self.pos
    }

    /// Whether framing was lost (a 64-bit length with its top bit set, reported as a
    /// [`ProtocolError::LengthMsbSet`] violation): from then on all input is consumed and
    /// skipped.
    pub const fn is_framing_lost(&self) -> bool {
        matches!(self.state, State::Lost)
    }

    /// Dissects the next item from the front of `buf`.
    ///
    /// Returns the bytes used and at most one item. Drop `consumed` bytes and call again until
    /// the item is `None`: then all of `buf` was used and more input is needed (or the input is
    /// over: see [`finish`](Self::finish)). Payload chunks are unmasked in `buf` itself.
    /// Never fails and never panics: every problem in the input is a
    /// [`Dissected::Violation`].
    pub fn decode<'a>(&'a mut self, buf: &'a mut [u8]) -> Step<Dissected<'a>> {
        if let Some(m) = self.ended[0].take() {
            self.ended.rotate_left(1);
            return item(0, Dissected::Message(m));
        }
        let (offset, frame) = match self.state {
            State::Lost => {
                self.pos = self.pos.saturating_add(buf.len() as u64);
                return Step {
                    consumed: buf.len(),
                    event: None,
                };
            }
            State::Ending(f) => return self.end_frame(f),
            State::Header { offset } => (offset, None),
            State::Payload(f) => (f.offset, Some(f)),
        };
        let (consumed, found) = match self.dec.decode(buf) {
            Ok(step) => (step.consumed, found(step.event)),
            Err(error) => {
                // Report mode fails only when framing is lost (a 64-bit length with its top
                // bit set): nothing after this header can be cut into frames.
                self.state = State::Lost;
                self.pos = self.pos.saturating_add(buf.len() as u64);
                let error = Violation { offset, error };
                return item(buf.len(), Dissected::Violation(error));
            }
        };
        let start = self.pos;
        self.pos = self.pos.saturating_add(consumed as u64);
        if frame.is_none() {
            // Everything used before the header event belongs to the header (at most 14
            // bytes, some of them held by the frame decoder across calls).
            let have = usize::from(self.header_len);
            let take = consumed.min(MAX_HEADER_LEN - have);
            self.header[have..have + take].copy_from_slice(&buf[..take]);
            self.header_len = (have + take) as u8;
        }
        match (found, frame) {
            (Found::Violation(error), _) => {
                item(consumed, Dissected::Violation(Violation { offset, error }))
            }
            (Found::Frame(header), None) => {
                self.state = State::Payload(Frame {
                    offset,
                    header,
                    seen: 0,
                    data: None,
                });
                let header_bytes = &self.header[..usize::from(self.header_len)];
                item(
                    consumed,
                    Dissected::Frame(FrameStart {
                        offset,
                        header,
                        header_bytes,
                    }),
                )
            }
            (Found::Chunk { len, data }, Some(mut f)) => {
                let position = f.seen;
                f.seen = f.seen.saturating_add(len as u64);
                if f.data.is_none() {
                    f.data = data;
                }
                if let (Some(d), Some(now)) = (f.data.as_mut(), data) {
                    d.message_end = now.message_end;
                }
                let last = f.seen >= f.header.payload_len;
                self.state = if last {
                    State::Ending(f)
                } else {
                    State::Payload(f)
                };
                // The decoder hands out each payload chunk as the tail of the bytes it used.
                let from = consumed.saturating_sub(len);
                let buf: &'a [u8] = buf;
                item(
                    consumed,
                    Dissected::Payload(PayloadChunk {
                        offset: start.saturating_add(from as u64),
                        position,
                        chunk: buf.get(from..consumed).unwrap_or_default(),
                        last,
                    }),
                )
            }
            // `Nothing`: all of `buf` was used. The others do not occur in report mode with
            // control chunks on (a control frame comes whole only after its last chunk).
            (Found::Nothing | Found::Control | Found::Frame(_) | Found::Chunk { .. }, _) => Step {
                consumed,
                event: None,
            },
        }
    }

    /// The frame's payload is all seen: reports its remaining violations, then the frame end,
    /// and queues the messages it ends.
    fn end_frame(&mut self, f: Frame) -> Step<Dissected<'_>> {
        let mut control = false;
        while !self.dec.is_at_frame_boundary() {
            // Nothing is left to read in this frame: the decoder only hands out what it holds
            // (violations found at the last chunk, then a control frame), using no bytes.
            let pending = match self.dec.decode(&mut []) {
                Ok(Step {
                    event: Some(MessageEvent::Violation(v)),
                    ..
                }) => Some(v),
                Ok(Step {
                    event: Some(MessageEvent::Control(c)),
                    ..
                }) => {
                    let n = c.payload.len().min(MAX_CONTROL_PAYLOAD);
                    self.control[..n].copy_from_slice(&c.payload[..n]);
                    self.control_len = n as u8;
                    control = true;
                    None
                }
                Ok(_) | Err(_) => break,
            };
            if let Some(error) = pending {
                return item(
                    0,
                    Dissected::Violation(Violation {
                        offset: f.offset,
                        error,
                    }),
                );
            }
        }
        let message = self.count_frame(&f);
        self.state = State::Header { offset: self.pos };
        self.header_len = 0;
        let control = control.then(|| ControlFrame {
            opcode: f.header.opcode,
            payload: &self.control[..usize::from(self.control_len)],
            declared_len: f.header.payload_len,
        });
        item(
            0,
            Dissected::FrameEnd(FrameEnd {
                offset: f.offset,
                header: f.header,
                message,
                control,
            }),
        )
    }

    /// Adds a complete frame to its message and queues the messages it ends; returns the
    /// offset of the frame's message.
    fn count_frame(&mut self, f: &Frame) -> u64 {
        let Some(d) = f.data else {
            // A control frame is a message of its own.
            self.push_ended(MessageInfo {
                offset: f.offset,
                opcode: f.header.opcode,
                frames: 1,
                len: f.header.payload_len,
                complete: true,
                text_valid: None,
            });
            return f.offset;
        };
        let fresh = MessageInfo {
            offset: f.offset,
            opcode: d.opcode,
            frames: 0,
            len: 0,
            complete: false,
            text_valid: None,
        };
        if d.first {
            // The decoder started a new message: one still open was cut off by this frame.
            if let Some(old) = self.message.replace(fresh) {
                self.push_ended(old);
            }
        }
        let m = self.message.get_or_insert(fresh);
        m.frames = m.frames.saturating_add(1);
        m.len = m.len.saturating_add(f.header.payload_len);
        if m.opcode == OpCode::TEXT {
            m.text_valid = Some(self.dec.text_valid_so_far());
        }
        let offset = m.offset;
        if d.message_end {
            m.complete = true;
            let done = *m;
            self.message = None;
            self.push_ended(done);
        }
        offset
    }

    fn push_ended(&mut self, m: MessageInfo) {
        if let Some(slot) = self.ended.iter_mut().find(|s| s.is_none()) {
            *slot = Some(m);
        }
    }

    /// What the end of the input leaves unfinished: the open data message and the frame cut
    /// short. Call it once all input was fed (every [`decode`](Self::decode) call answered
    /// `None`); nothing is unfinished after lost framing but the message before it.
    pub fn finish(&self) -> Unfinished {
        let frame = match self.state {
            State::Header { offset } if self.header_len > 0 => {
                let have = usize::from(self.header_len);
                let need = match FrameHeader::parse(&self.header[..have]) {
                    Ok(HeaderStatus::Incomplete { needed }) => have + needed,
                    Ok(HeaderStatus::Complete(_)) | Err(_) => have,
                };
                Some(TruncatedFrame {
                    offset,
                    have: have as u64,
                    need: need as u64,
                    header: None,
                })
            }
            State::Payload(f) => {
                let head = f.header.header_len() as u64;
                Some(TruncatedFrame {
                    offset: f.offset,
                    have: head.saturating_add(f.seen),
                    need: head.saturating_add(f.header.payload_len),
                    header: Some(f.header),
                })
            }
            State::Header { .. } | State::Ending(_) | State::Lost => None,
        };
        Unfinished {
            message: self.message,
            frame,
        }
    }
}

/// A step with an item.
const fn item(consumed: usize, event: Dissected<'_>) -> Step<Dissected<'_>> {
    Step {
        consumed,
        event: Some(event),
    }
}

fn found(event: Option<MessageEvent<'_>>) -> Found {
    match event {
        None => Found::Nothing,
        Some(MessageEvent::Frame(h)) => Found::Frame(h),
        Some(MessageEvent::Data {
            opcode,
            chunk,
            first,
            message_end,
            ..
        }) => Found::Chunk {
            len: chunk.len(),
            data: Some(DataFrame {
                first,
                opcode,
                message_end,
            }),
        },
        Some(MessageEvent::ControlData { chunk }) => Found::Chunk {
            len: chunk.len(),
            data: None,
        },
        Some(MessageEvent::Control(_)) => Found::Control,
        Some(MessageEvent::Violation(v)) => Found::Violation(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close::CloseCode;
    use alloc::vec::Vec;

    /// An owned item, with payload chunks of a frame joined.
    #[derive(Debug, PartialEq, Eq)]
    enum Item {
        Frame(u64, OpCode, Vec<u8>),
        Payload(u64, Vec<u8>),
        FrameEnd(u64, u64),
        Message(MessageInfo),
        Violation(u64, ProtocolError),
    }

    /// Dissects `wire` fed `size` bytes at a time.
    fn run(mask: MaskRule, wire: &[u8], size: usize) -> (Vec<Item>, Unfinished) {
        let mut data = wire.to_vec();
        let mut dis = Dissector::new(mask);
        let mut out: Vec<Item> = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let end = (pos + size.max(1)).min(data.len());
            let mut at = pos;
            loop {
                let step = dis.decode(&mut data[at..end]);
                at += step.consumed;
                match step.event {
                    None => break,
                    Some(Dissected::Frame(f)) => {
                        assert_eq!(f.header_bytes.len(), f.header.header_len());
                        out.push(Item::Frame(
                            f.offset,
                            f.header.opcode,
                            f.header_bytes.to_vec(),
                        ))
                    }
                    Some(Dissected::Payload(p)) => match out.last_mut() {
                        Some(Item::Payload(_, bytes)) if p.position > 0 => {
                            bytes.extend_from_slice(p.chunk)
                        }
                        _ => out.push(Item::Payload(p.offset, p.chunk.to_vec())),
                    },
                    Some(Dissected::FrameEnd(e)) => out.push(Item::FrameEnd(e.offset, e.message)),
                    Some(Dissected::Message(m)) => out.push(Item::Message(m)),
                    Some(Dissected::Violation(v)) => out.push(Item::Violation(v.offset, v.error)),
                }
            }
            assert_eq!(
                at, end,
                "the dissector must use all bytes before asking for more"
            );
            pos = end;
        }
        assert_eq!(dis.offset(), wire.len() as u64);
        (out, dis.finish())
    }

    fn msg(offset: u64, opcode: OpCode, frames: u64, len: u64, complete: bool) -> MessageInfo {
        MessageInfo {
            offset,
            opcode,
            frames,
            len,
            complete,
            text_valid: (opcode == OpCode::TEXT).then_some(true),
        }
    }

    #[test]
    fn rfc_masked_hello() {
        // RFC 6455 section 5.7: a masked "Hello" from a client.
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        for size in [1, 2, 5, 11] {
            let (items, end) = run(MaskRule::Required, &wire, size);
            assert_eq!(
                items,
                [
                    Item::Frame(0, OpCode::TEXT, wire[..6].to_vec()),
                    Item::Payload(6, b"Hello".to_vec()),
                    Item::FrameEnd(0, 0),
                    Item::Message(msg(0, OpCode::TEXT, 1, 5, true)),
                ],
                "size {size}"
            );
            assert_eq!(end, Unfinished::default());
        }
    }

    #[test]
    fn fragments_with_a_ping_between_and_utf8_split() {
        // "é" (c3 a9) split over two fragments, a ping "p" between them.
        let wire = [0x01, 0x01, 0xc3, 0x89, 0x01, b'p', 0x80, 0x01, 0xa9];
        let (items, _) = run(MaskRule::Forbidden, &wire, 1);
        assert_eq!(
            items,
            [
                Item::Frame(0, OpCode::TEXT, alloc::vec![0x01, 0x01]),
                Item::Payload(2, alloc::vec![0xc3]),
                Item::FrameEnd(0, 0),
                Item::Frame(3, OpCode::PING, alloc::vec![0x89, 0x01]),
                Item::Payload(5, b"p".to_vec()),
                Item::FrameEnd(3, 3),
                Item::Message(msg(3, OpCode::PING, 1, 1, true)),
                Item::Frame(6, OpCode::CONTINUATION, alloc::vec![0x80, 0x01]),
                Item::Payload(8, alloc::vec![0xa9]),
                Item::FrameEnd(6, 0),
                Item::Message(msg(0, OpCode::TEXT, 2, 2, true)),
            ]
        );
    }

    #[test]
    fn violations_carry_frame_offsets_and_close_codes() {
        // Reserved opcode 3, a continuation with nothing to continue, RSV bits on a text
        // frame, then invalid UTF-8 (ed a0 80 is a surrogate).
        let wire = [
            0x83, 0x00, 0x80, 0x00, 0xc1, 0x00, 0x81, 0x03, 0xed, 0xa0, 0x80,
        ];
        let (items, _) = run(MaskRule::Any, &wire, 64);
        let violations: Vec<_> = items
            .iter()
            .filter_map(|i| match i {
                Item::Violation(at, e) => Some((*at, e.name(), e.close_code().0)),
                _ => None,
            })
            .collect();
        assert_eq!(
            violations,
            [
                (0, "reserved_opcode", 1002),
                (2, "unexpected_continuation", 1002),
                (4, "reserved_bits_set", 1002),
                (6, "invalid_utf8", 1007),
            ]
        );
        let messages: Vec<_> = items
            .iter()
            .filter_map(|i| match i {
                Item::Message(m) => Some((m.offset, m.opcode, m.text_valid)),
                _ => None,
            })
            .collect();
        assert_eq!(
            messages,
            [
                (0, OpCode(3), None),
                (2, OpCode::CONTINUATION, None),
                (4, OpCode::TEXT, Some(true)),
                (6, OpCode::TEXT, Some(false)),
            ]
        );
    }

    #[test]
    fn mask_rule_per_direction() {
        let masked = [0x82, 0x81, 1, 2, 3, 4, 0xaa ^ 1];
        let (items, _) = run(MaskRule::Forbidden, &masked, 3);
        assert_eq!(
            items[0],
            Item::Violation(0, ProtocolError::MaskedServerFrame)
        );
        assert_eq!(items[2], Item::Payload(6, alloc::vec![0xaa]));
        let (items, _) = run(MaskRule::Required, &[0x82, 0x00], 2);
        assert_eq!(
            items[0],
            Item::Violation(0, ProtocolError::UnmaskedClientFrame)
        );
        let (items, _) = run(MaskRule::Any, &masked, 1);
        assert!(!items.iter().any(|i| matches!(i, Item::Violation(..))));
    }

    #[test]
    fn a_new_message_cuts_off_the_open_one_after_its_frame_end() {
        // "ab" (text, FIN=0), then a binary frame: the text message ends unfinished.
        let wire = [0x01, 0x02, b'a', b'b', 0x82, 0x01, 0xff];
        let (items, end) = run(MaskRule::Any, &wire, 64);
        assert_eq!(
            items[3..],
            [
                Item::Frame(4, OpCode::BINARY, alloc::vec![0x82, 0x01]),
                Item::Violation(
                    4,
                    ProtocolError::ExpectedContinuation {
                        opcode: OpCode::BINARY
                    }
                ),
                Item::Payload(6, alloc::vec![0xff]),
                Item::FrameEnd(4, 4),
                Item::Message(msg(0, OpCode::TEXT, 1, 2, false)),
                Item::Message(msg(4, OpCode::BINARY, 1, 1, true)),
            ]
        );
        assert_eq!(end, Unfinished::default());
    }

    #[test]
    fn close_frames_and_their_status() {
        let mut wire = [0x88, 0x05, 0x03, 0xe8, b'b', b'y', b'e'];
        let mut dis = Dissector::new(MaskRule::Forbidden);
        let mut at = 0;
        let mut close = None;
        loop {
            let step = dis.decode(&mut wire[at..]);
            at += step.consumed;
            match step.event {
                Some(Dissected::FrameEnd(e)) => {
                    let c = e.close().unwrap().unwrap().unwrap();
                    close = Some((c.code, alloc::string::String::from(c.reason)));
                }
                Some(_) => {}
                None => break,
            }
        }
        assert_eq!(close, Some((CloseCode::NORMAL, "bye".into())));
        // Longer than 125 bytes: malformed by its length, whatever the first bytes hold.
        let mut big = alloc::vec![0x88, 0x7e, 0x00, 0xc8, 0x03, 0xe8];
        big.extend(core::iter::repeat_n(b'x', 198));
        let mut dis = Dissector::new(MaskRule::Forbidden);
        let mut at = 0;
        let mut seen = Vec::new();
        loop {
            let step = dis.decode(&mut big[at..]);
            at += step.consumed;
            match step.event {
                Some(Dissected::FrameEnd(e)) => seen.push(e.close().unwrap().unwrap_err()),
                Some(Dissected::Violation(v)) => seen.push(v.error),
                Some(_) => {}
                None => break,
            }
        }
        let too_long = ProtocolError::ControlFrameTooLong { len: 200 };
        assert_eq!(seen, [too_long, too_long]);
        // A one-byte close payload and a code that may not be sent (1005).
        let (items, _) = run(
            MaskRule::Any,
            &[0x88, 0x01, 0x03, 0x88, 0x02, 0x03, 0xed],
            1,
        );
        let errors: Vec<_> = items
            .iter()
            .filter_map(|i| match i {
                Item::Violation(at, e) => Some((*at, *e)),
                _ => None,
            })
            .collect();
        assert_eq!(
            errors,
            [
                (0, ProtocolError::CloseOneBytePayload),
                (
                    3,
                    ProtocolError::InvalidCloseCode {
                        code: CloseCode(1005)
                    }
                ),
            ]
        );
        // The violation of a close frame comes before its end.
        assert!(matches!(items[2], Item::Violation(0, _)));
        assert!(matches!(items[3], Item::FrameEnd(0, 0)));
    }

    #[test]
    fn the_end_of_input_leaves_a_message_and_a_cut_frame() {
        // A text fragment, then a continuation cut after 1 of its 5 bytes.
        let wire = [0x01, 0x01, b'a', 0x80, 0x05, b'b'];
        let (_, end) = run(MaskRule::Any, &wire, 2);
        let mut open = msg(0, OpCode::TEXT, 1, 1, false);
        open.text_valid = Some(true);
        assert_eq!(end.message, Some(open));
        let header = FrameHeader::parse(&[0x80, 0x05]).unwrap();
        let HeaderStatus::Complete(header) = header else {
            panic!("complete header")
        };
        assert_eq!(
            end.frame,
            Some(TruncatedFrame {
                offset: 3,
                have: 3,
                need: 7,
                header: Some(header),
            })
        );
        // A header cut after its first 3 bytes (a 16-bit length needs 4).
        let (items, end) = run(
            MaskRule::Any,
            &[0x81, 0x02, b'h', b'i', 0x81, 0xfe, 0x01],
            1,
        );
        assert_eq!(items.len(), 4);
        assert_eq!(
            end.frame,
            Some(TruncatedFrame {
                offset: 4,
                have: 3,
                need: 8,
                header: None,
            })
        );
        // A frame declaring 2^62 bytes: nothing is allocated for it.
        let mut huge = alloc::vec![0x82, 0x7f];
        huge.extend_from_slice(&(1u64 << 62).to_be_bytes());
        huge.extend_from_slice(&[0; 100]);
        let (_, end) = run(MaskRule::Any, &huge, 7);
        assert_eq!(
            end.frame.map(|f| (f.have, f.need)),
            Some((110, 10 + (1 << 62)))
        );
    }

    #[test]
    fn a_length_with_its_top_bit_set_loses_framing() {
        let mut wire = alloc::vec![0x81, 0x01, b'a', 0x01, 0x00, 0x82, 0x7f];
        wire.extend_from_slice(&(1u64 << 63).to_be_bytes());
        wire.extend_from_slice(&[0x81, 0x00, 0x81, 0x00]);
        for size in [1, 4, 64] {
            let (items, end) = run(MaskRule::Any, &wire, size);
            assert_eq!(
                items.last(),
                Some(&Item::Violation(5, ProtocolError::LengthMsbSet))
            );
            assert_eq!(ProtocolError::LengthMsbSet.close_code().0, 1002);
            let mut open = msg(3, OpCode::TEXT, 1, 0, false);
            open.text_valid = Some(true);
            assert_eq!(
                end,
                Unfinished {
                    message: Some(open),
                    frame: None
                },
                "size {size}"
            );
        }
    }

    #[test]
    fn zero_length_frames_give_one_empty_last_chunk() {
        let wire = [0x8a, 0x00, 0x82, 0x00];
        let (items, _) = run(MaskRule::Any, &wire, 1);
        assert_eq!(
            items,
            [
                Item::Frame(0, OpCode::PONG, alloc::vec![0x8a, 0x00]),
                Item::Payload(2, Vec::new()),
                Item::FrameEnd(0, 0),
                Item::Message(msg(0, OpCode::PONG, 1, 0, true)),
                Item::Frame(2, OpCode::BINARY, alloc::vec![0x82, 0x00]),
                Item::Payload(4, Vec::new()),
                Item::FrameEnd(2, 2),
                Item::Message(msg(2, OpCode::BINARY, 1, 0, true)),
            ]
        );
    }
}
