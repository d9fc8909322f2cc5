//! Shared helpers: frame builders, proptest strategies, and decoding drivers that feed a
//! stream in reads of given sizes and collect what comes out.

use proptest::prelude::*;
use proptest::sample::Index;

use wscope_proto::decoder::{DecoderConfig, FrameDecoder, FrameEvent};
use wscope_proto::frame::{FrameHeader, LengthForm, OpCode, MAX_HEADER_LEN};
use wscope_proto::mask::apply_mask;
use wscope_proto::message::{AssemblerConfig, MessageDecoder, MessageEvent};
use wscope_proto::ProtocolError;

/// Deterministic bytes from a seed (splitmix64), so large payloads are cheap to generate and
/// shrink.
pub(crate) fn bytes_from_seed(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A frame to put on the wire: its header (as a decoder must report it) and its plain payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WireFrame {
    pub(crate) header: FrameHeader,
    pub(crate) payload: Vec<u8>,
}

impl WireFrame {
    /// A frame whose length uses `form`, widened to the minimal form when too small (as
    /// [`FrameHeader::emit`] does), so `header` is what parsing the emitted bytes gives.
    pub(crate) fn new(
        fin: bool,
        rsv: u8,
        opcode: OpCode,
        mask: Option<[u8; 4]>,
        form: LengthForm,
        payload: Vec<u8>,
    ) -> Self {
        let len = payload.len() as u64;
        let minimal = LengthForm::minimal(len);
        let length_form = if form_rank(form) < form_rank(minimal) {
            minimal
        } else {
            form
        };
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len: len,
            non_minimal: length_form != minimal,
            length_form,
        };
        Self { header, payload }
    }

    /// Appends the frame: header through [`FrameHeader::emit`], payload masked with
    /// [`apply_mask`] when the header has a key.
    pub(crate) fn emit_into(&self, wire: &mut Vec<u8>) {
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = self.header.emit(&mut head);
        wire.extend_from_slice(&head[..n]);
        let start = wire.len();
        wire.extend_from_slice(&self.payload);
        if let Some(key) = self.header.mask {
            apply_mask(&mut wire[start..], key, 0);
        }
    }

    /// The frame's size on the wire.
    pub(crate) fn wire_len(&self) -> usize {
        self.header.header_len() + self.payload.len()
    }
}

/// Emits frames one after the other.
pub(crate) fn emit_all(frames: &[WireFrame]) -> Vec<u8> {
    let mut wire = Vec::new();
    for f in frames {
        f.emit_into(&mut wire);
    }
    wire
}

fn form_rank(form: LengthForm) -> u8 {
    match form {
        LengthForm::Short => 0,
        LengthForm::Extended16 => 1,
        LengthForm::Extended64 => 2,
    }
}

/// Payload lengths weighted to hit every length form: small, around the 126 and 65536
/// boundaries, and now and then a 64 KiB frame.
pub(crate) fn arb_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0usize..=130,
        3 => 120usize..=700,
        1 => 65_530usize..=65_540,
    ]
}

pub(crate) fn arb_form() -> impl Strategy<Value = LengthForm> {
    prop_oneof![
        4 => Just(LengthForm::Short),
        1 => Just(LengthForm::Extended16),
        1 => Just(LengthForm::Extended64),
    ]
}

/// Any frame: random FIN, RSV bits, opcode (reserved ones included), mask and length form.
pub(crate) fn arb_frame() -> impl Strategy<Value = WireFrame> {
    (
        any::<bool>(),
        prop_oneof![4 => Just(0u8), 1 => 0u8..8],
        prop_oneof![4 => 0u8..3, 2 => 8u8..11, 1 => 0u8..16],
        proptest::option::of(any::<[u8; 4]>()),
        arb_form(),
        arb_len(),
        any::<u64>(),
    )
        .prop_map(|(fin, rsv, op, mask, form, len, seed)| {
            WireFrame::new(fin, rsv, OpCode(op), mask, form, bytes_from_seed(len, seed))
        })
}

/// Read sizes, used in turn until the stream is used up.
pub(crate) fn arb_reads() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        Just(vec![1]),
        proptest::collection::vec(1usize..20, 1..6),
        proptest::collection::vec(1usize..5000, 1..4),
    ]
}

/// Cut points of a slice of `len` bytes, sorted (duplicates give empty pieces).
pub(crate) fn cuts(indices: &[Index], len: usize) -> Vec<usize> {
    let mut c: Vec<usize> = indices.iter().map(|i| i.index(len + 1)).collect();
    c.sort_unstable();
    c
}

/// The end of each read of `total` bytes with sizes taken in turn from `reads`.
pub(crate) fn read_ends(total: usize, reads: &[usize]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut pos = 0;
    let mut k = 0;
    while pos < total {
        pos = (pos + reads[k % reads.len()].max(1)).min(total);
        k += 1;
        ends.push(pos);
    }
    ends
}

/// What a [`FrameDecoder`] found: each frame's header and its payload chunks joined, the
/// violations, and the error it stopped with.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct FrameRun {
    pub(crate) frames: Vec<(FrameHeader, Vec<u8>)>,
    pub(crate) violations: Vec<ProtocolError>,
    pub(crate) error: Option<ProtocolError>,
}

/// Decodes `wire` (a copy: unmasking is in place) in reads of the given sizes.
pub(crate) fn run_frame_decoder(cfg: DecoderConfig, wire: &[u8], reads: &[usize]) -> FrameRun {
    let mut data = wire.to_vec();
    let mut dec = FrameDecoder::new(cfg);
    let mut run = FrameRun::default();
    let mut pos = 0;
    for end in read_ends(data.len(), reads) {
        let mut at = pos;
        loop {
            let step = match dec.decode(&mut data[at..end]) {
                Ok(step) => step,
                Err(e) => {
                    run.error = Some(e);
                    return run;
                }
            };
            at += step.consumed;
            match step.event {
                None => break,
                Some(FrameEvent::Header(h)) => run.frames.push((h, Vec::new())),
                Some(FrameEvent::Payload { chunk, offset, .. }) => {
                    let (_, payload) = run.frames.last_mut().expect("payload after a header");
                    assert_eq!(offset, payload.len() as u64, "contiguous payload offsets");
                    payload.extend_from_slice(chunk);
                }
                Some(FrameEvent::Violation(v)) => run.violations.push(v),
                Some(_) => {}
            }
        }
        assert_eq!(at, end, "a `None` event means the read was used up");
        pos = end;
    }
    // An empty stream still gets one call, which must ask for input.
    if wire.is_empty() {
        assert_eq!(dec.decode(&mut []).map(|s| s.event), Ok(None));
    }
    run
}

/// One thing the message layer delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// A whole data message (its chunks joined).
    Message { opcode: OpCode, data: Vec<u8> },
    /// A data message the stream ended inside.
    Partial { opcode: OpCode, data: Vec<u8> },
    /// A whole control frame.
    Control { opcode: OpCode, payload: Vec<u8> },
}

/// What a [`MessageDecoder`] delivered; violations are kept apart because where a read ends
/// moves them between the chunks of a frame.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct MessageRun {
    pub(crate) delivered: Vec<Delivered>,
    pub(crate) violations: Vec<ProtocolError>,
    pub(crate) error: Option<ProtocolError>,
}

/// Decodes `wire` (a copy) with a [`MessageDecoder`] in reads of the given sizes.
pub(crate) fn run_message_decoder(
    cfg: DecoderConfig,
    acfg: AssemblerConfig,
    wire: &[u8],
    reads: &[usize],
) -> MessageRun {
    let mut data = wire.to_vec();
    let mut dec = MessageDecoder::new(cfg, acfg);
    let mut run = MessageRun::default();
    let mut open: Option<(OpCode, Vec<u8>)> = None;
    let mut pos = 0;
    let mut ends = read_ends(data.len(), reads);
    // One more call with nothing new: a zero-length frame's last chunk or a control frame
    // ready at the very end still comes out.
    ends.push(data.len());
    for end in ends {
        let mut at = pos;
        loop {
            let step = match dec.decode(&mut data[at..end]) {
                Ok(step) => step,
                Err(e) => {
                    run.error = Some(e);
                    return run;
                }
            };
            at += step.consumed;
            match step.event {
                None => break,
                Some(MessageEvent::Frame(_)) | Some(MessageEvent::ControlData { .. }) => {}
                Some(MessageEvent::Data {
                    opcode,
                    chunk,
                    first,
                    message_end,
                    ..
                }) => {
                    if first {
                        open = Some((opcode, Vec::new()));
                    }
                    let (op, buf) = open.as_mut().expect("data inside a message");
                    assert_eq!(*op, opcode);
                    buf.extend_from_slice(chunk);
                    if message_end {
                        let (opcode, data) = open.take().expect("open message");
                        run.delivered.push(Delivered::Message { opcode, data });
                    }
                }
                Some(MessageEvent::Control(c)) => run.delivered.push(Delivered::Control {
                    opcode: c.opcode,
                    payload: c.payload.to_vec(),
                }),
                Some(MessageEvent::Violation(v)) => run.violations.push(v),
                // `#[non_exhaustive]`: events added later are not part of this record.
                Some(_) => {}
            }
        }
        assert_eq!(at, end, "a `None` event means the read was used up");
        pos = end;
    }
    if let Some((opcode, data)) = open {
        run.delivered.push(Delivered::Partial { opcode, data });
    }
    run
}
