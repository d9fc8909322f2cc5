//! Property tests: each layer against a model simple enough to be obviously right.
//!
//! Case counts are modest (256 cases per property) so the suite stays fast on CI's 2 cores; the
//! fuzzers (`fuzz/`) search the same invariants for longer.

use proptest::prelude::*;
use proptest::sample::Index;

use wscope_proto::close::{CloseCode, CloseFrameRef, CloseReason, MAX_REASON_LEN};
use wscope_proto::decoder::{frames, DecoderConfig, FramesError, MaskRule};
use wscope_proto::dissect::{Dissected, Dissector, MessageInfo, Unfinished, Violation};
use wscope_proto::frame::{FrameHeader, HeaderStatus, LengthForm, OpCode, MAX_HEADER_LEN};
use wscope_proto::mask::{apply_mask, apply_mask_scalar};
use wscope_proto::message::AssemblerConfig;
use wscope_proto::utf8::Utf8Validator;
use wscope_proto::ProtocolError;

use crate::common::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// (a) Any split of a stream decodes like the whole stream.

proptest! {
    #![proptest_config(config(256))]

    /// Enforcing, mask optional, non-minimal lengths allowed: the decoder must give back exactly
    /// the frames that were emitted, whole and in reads of any sizes.
    #[test]
    fn frame_decoder_any_split_gives_the_emitted_frames(
        frames in proptest::collection::vec(arb_frame(), 0..6),
        reads in arb_reads(),
    ) {
        let wire = emit_all(&frames);
        let expected: Vec<_> = frames.iter().map(|f| (f.header, f.payload.clone())).collect();
        let whole = run_frame_decoder(DecoderConfig::new(MaskRule::Any), &wire, &[wire.len()]);
        prop_assert_eq!(&whole.frames, &expected);
        prop_assert_eq!(whole.error, None);
        let split = run_frame_decoder(DecoderConfig::new(MaskRule::Any), &wire, &reads);
        prop_assert_eq!(&split, &whole);
    }

    /// Reporting with rules that the random frames break (mask required, minimal lengths, a
    /// size limit): violations come out, decoding goes on, and a split changes nothing.
    #[test]
    fn frame_decoder_report_mode_split_equals_whole(
        frames in proptest::collection::vec(arb_frame(), 0..6),
        reads in arb_reads(),
        rule in prop_oneof![Just(MaskRule::Required), Just(MaskRule::Forbidden)],
    ) {
        let wire = emit_all(&frames);
        let mut cfg = DecoderConfig::new(rule).reporting();
        cfg.max_frame_len = 1000;
        let whole = run_frame_decoder(cfg, &wire, &[wire.len()]);
        let expected: Vec<_> = frames.iter().map(|f| (f.header, f.payload.clone())).collect();
        prop_assert_eq!(&whole.frames, &expected);
        prop_assert_eq!(whole.error, None);
        let broken = frames
            .iter()
            .filter(|f| {
                f.header.mask.is_some() != (rule == MaskRule::Required)
                    || f.header.non_minimal
                    || f.header.payload_len > 1000
            })
            .count();
        prop_assert_eq!(broken > 0, !whole.violations.is_empty());
        let split = run_frame_decoder(cfg, &wire, &reads);
        prop_assert_eq!(&split, &whole);
    }

    /// Valid message streams (fragmented text and binary, controls between fragments, a close at
    /// the end): the message decoder delivers exactly the messages and control frames that were
    /// sent, in order, whole and split.
    #[test]
    fn message_decoder_any_split_gives_the_sent_messages(
        stream in arb_message_stream(),
        reads in arb_reads(),
        control_chunks in any::<bool>(),
    ) {
        let (rule, wire, expected) = stream;
        let acfg = AssemblerConfig::default().control_chunks(control_chunks);
        let whole = run_message_decoder(DecoderConfig::new(rule), acfg, &wire, &[wire.len()]);
        prop_assert_eq!(whole.error, None);
        prop_assert_eq!(&whole.delivered, &expected);
        let split = run_message_decoder(DecoderConfig::new(rule), acfg, &wire, &reads);
        prop_assert_eq!(&split, &whole);
    }

    /// Random frame streams break message rules everywhere: in report mode the decoder never
    /// fails and delivers the same things however the stream is split; enforcing, it stops with
    /// the same error after delivering the same things.
    #[test]
    fn message_decoder_rule_breaking_streams_split_equals_whole(
        frames in proptest::collection::vec(arb_frame(), 0..8),
        reads in arb_reads(),
        report in any::<bool>(),
        control_chunks in any::<bool>(),
    ) {
        let wire = emit_all(&frames);
        let mut cfg = DecoderConfig::new(MaskRule::Any);
        if report {
            cfg = cfg.reporting();
        }
        let acfg = AssemblerConfig::default().control_chunks(control_chunks);
        let whole = run_message_decoder(cfg, acfg, &wire, &[wire.len()]);
        if report {
            prop_assert_eq!(whole.error, None);
        }
        let split = run_message_decoder(cfg, acfg, &wire, &reads);
        prop_assert_eq!(&split.violations, &whole.violations);
        prop_assert_eq!(split.error, whole.error);
        if whole.error.is_none() {
            prop_assert_eq!(&split.delivered, &whole.delivered);
        } else {
            // An error in the middle of a message: the partial data before it depends on reads.
            let complete = |d: &[Delivered]| -> Vec<Delivered> {
                d.iter().filter(|x| !matches!(x, Delivered::Partial { .. })).cloned().collect()
            };
            prop_assert_eq!(complete(&split.delivered), complete(&whole.delivered));
        }
    }
}

/// A valid stream of messages for one direction: the mask rule, the wire bytes and what the
/// message layer must deliver.
fn arb_message_stream() -> impl Strategy<Value = (MaskRule, Vec<u8>, Vec<Delivered>)> {
    let message = (
        any::<bool>(),
        proptest::collection::vec(any::<char>(), 0..200),
        arb_len(),
        any::<u64>(),
        proptest::collection::vec(any::<Index>(), 0..4),
        proptest::collection::vec(proptest::option::of(arb_control()), 4),
    );
    (
        any::<bool>(),
        proptest::collection::vec(message, 0..5),
        proptest::option::of((
            1000u16..1004,
            proptest::collection::vec(any::<char>(), 0..40),
        )),
        any::<u64>(),
    )
        .prop_map(|(client, messages, close, key_seed)| {
            let rule = if client {
                MaskRule::Required
            } else {
                MaskRule::Forbidden
            };
            let mut keys = bytes_from_seed(4 * 64, key_seed).into_iter();
            let mut key = move || -> Option<[u8; 4]> {
                client.then(|| {
                    let mut k = [0u8; 4];
                    for b in &mut k {
                        *b = keys.next().unwrap_or(0x5a);
                    }
                    k
                })
            };
            let mut frames = Vec::new();
            let mut expected = Vec::new();
            for (text, chars, len, seed, cut_at, controls) in messages {
                let (opcode, data) = if text {
                    (OpCode::TEXT, chars.iter().collect::<String>().into_bytes())
                } else {
                    (OpCode::BINARY, bytes_from_seed(len, seed))
                };
                // Fragments cut anywhere, inside code points too; forms vary with the seed.
                let mut bounds = cuts(&cut_at, data.len());
                bounds.push(data.len());
                let mut start = 0;
                for (i, end) in bounds.iter().copied().enumerate() {
                    let op = if i == 0 { opcode } else { OpCode::CONTINUATION };
                    let fin = i + 1 == bounds.len();
                    let form = match (seed >> (2 * i)) & 3 {
                        0 => LengthForm::Extended16,
                        1 => LengthForm::Extended64,
                        _ => LengthForm::Short,
                    };
                    let piece = data[start..end].to_vec();
                    frames.push(WireFrame::new(fin, 0, op, key(), form, piece));
                    start = end;
                    if !fin {
                        if let Some(Some((cop, payload))) = controls.get(i) {
                            frames.push(WireFrame::new(
                                true,
                                0,
                                *cop,
                                key(),
                                LengthForm::Short,
                                payload.clone(),
                            ));
                            expected.push(Delivered::Control {
                                opcode: *cop,
                                payload: payload.clone(),
                            });
                        }
                    }
                }
                expected.push(Delivered::Message { opcode, data });
            }
            if let Some((code, reason)) = close {
                let reason: String = reason.into_iter().collect();
                let close = CloseFrameRef::new(CloseCode(code), CloseReason::truncating(&reason))
                    .expect("1000-1003 may be sent");
                let mut payload = [0u8; 125];
                let n = close.emit(&mut payload);
                frames.push(WireFrame::new(
                    true,
                    0,
                    OpCode::CLOSE,
                    key(),
                    LengthForm::Short,
                    payload[..n].to_vec(),
                ));
                expected.push(Delivered::Control {
                    opcode: OpCode::CLOSE,
                    payload: payload[..n].to_vec(),
                });
            }
            (rule, emit_all(&frames), expected)
        })
}

fn arb_control() -> impl Strategy<Value = (OpCode, Vec<u8>)> {
    (
        prop_oneof![Just(OpCode::PING), Just(OpCode::PONG)],
        proptest::collection::vec(any::<u8>(), 0..=125),
    )
}

// ---------------------------------------------------------------------------------------------
// (b) FrameHeader: emit then parse gives the header back.

fn arb_header() -> impl Strategy<Value = FrameHeader> {
    (
        any::<bool>(),
        0u8..8,
        0u8..16,
        proptest::option::of(any::<[u8; 4]>()),
        prop_oneof![
            0u64..=125,
            126u64..=0xffff,
            0x1_0000u64..(1 << 63),
            Just((1u64 << 63) - 1),
            Just(0xffff),
            Just(0x1_0000),
        ],
        arb_form(),
    )
        .prop_map(|(fin, rsv, op, mask, len, form)| FrameHeader {
            fin,
            rsv,
            opcode: OpCode(op),
            mask,
            payload_len: len,
            non_minimal: false,
            length_form: form,
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn header_emit_parse_round_trip(h in arb_header()) {
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = h.emit(&mut out);
        // The form actually written: the one asked for, widened if too small.
        let minimal = LengthForm::minimal(h.payload_len);
        let written = match (h.length_form, minimal) {
            (LengthForm::Short, m) => m,
            (LengthForm::Extended16, LengthForm::Extended64) => LengthForm::Extended64,
            (f, _) => f,
        };
        let expected = FrameHeader {
            length_form: written,
            non_minimal: written != minimal,
            ..h
        };
        prop_assert_eq!(n, expected.header_len());
        prop_assert_eq!(FrameHeader::parse(&out[..n]), Ok(HeaderStatus::Complete(expected)));
        // Trailing bytes are not part of the header.
        let mut longer = out[..n].to_vec();
        longer.extend_from_slice(&[0xaa; 20]);
        prop_assert_eq!(FrameHeader::parse(&longer), Ok(HeaderStatus::Complete(expected)));
        // Every proper prefix is incomplete, and says how much is missing (exactly, once the
        // length byte is in).
        for cut in 0..n {
            match FrameHeader::parse(&out[..cut]) {
                Ok(HeaderStatus::Incomplete { needed }) => {
                    prop_assert!(needed > 0 && cut + needed <= n);
                    if cut >= 2 {
                        prop_assert_eq!(cut + needed, n);
                    }
                }
                other => prop_assert!(false, "prefix {} gave {:?}", cut, other),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (c) Masking.

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn mask_is_an_involution_and_matches_the_scalar_reference(
        data in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            (0usize..5000, any::<u64>()).prop_map(|(n, s)| bytes_from_seed(n, s)),
        ],
        key in any::<[u8; 4]>(),
        offset in 0u64..(1 << 62),
        align in 0usize..16,
        split in any::<Index>(),
    ) {
        // At an unaligned address too.
        let mut backing = vec![0u8; data.len() + 16];
        let buf = &mut backing[align..align + data.len()];
        buf.copy_from_slice(&data);
        apply_mask(buf, key, offset);
        let mut reference = data.clone();
        apply_mask_scalar(&mut reference, key, offset);
        prop_assert_eq!(&buf[..], &reference[..]);
        apply_mask(buf, key, offset);
        prop_assert_eq!(&buf[..], &data[..]);

        // Masking in two pieces, the second at its running offset, changes nothing.
        let at = split.index(data.len() + 1);
        let mut pieces = data.clone();
        let (a, b) = pieces.split_at_mut(at);
        apply_mask(a, key, offset);
        apply_mask(b, key, offset + at as u64);
        prop_assert_eq!(&pieces, &reference);

        // The key only matters modulo 4 of the offset.
        let mut shifted = data.clone();
        apply_mask(&mut shifted, key, offset % 4);
        prop_assert_eq!(&shifted, &reference);
    }
}

// ---------------------------------------------------------------------------------------------
// (d) Incremental UTF-8 validation equals `core::str::from_utf8` on the whole.

fn arb_maybe_utf8() -> impl Strategy<Value = Vec<u8>> {
    let valid = proptest::collection::vec(any::<char>(), 0..100)
        .prop_map(|c| c.into_iter().collect::<String>().into_bytes());
    let mutated = (
        proptest::collection::vec(any::<char>(), 1..100),
        proptest::collection::vec((any::<Index>(), any::<u8>(), 0u8..3), 1..4),
    )
        .prop_map(|(chars, edits)| {
            let mut bytes = chars.into_iter().collect::<String>().into_bytes();
            for (at, byte, how) in edits {
                let i = at.index(bytes.len());
                match how {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => bytes.truncate(i.max(1)),
                }
            }
            bytes
        });
    prop_oneof![
        2 => valid,
        3 => mutated,
        2 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => proptest::collection::vec(prop_oneof![0x80u8..=0xff, Just(b'a')], 0..32),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn utf8_validator_any_split_equals_std(
        bytes in arb_maybe_utf8(),
        cut_at in proptest::collection::vec(any::<Index>(), 0..6),
    ) {
        let std_result = core::str::from_utf8(&bytes);
        let mut bounds = cuts(&cut_at, bytes.len());
        bounds.push(bytes.len());
        let mut v = Utf8Validator::new();
        let mut start = 0;
        let mut failed_in = None;
        for end in bounds {
            if v.feed(&bytes[start..end]).is_err() {
                failed_in = Some(start..end);
                break;
            }
            start = end;
        }
        let ok = failed_in.is_none() && v.finish().is_ok();
        prop_assert_eq!(ok, std_result.is_ok());

        // Fail fast: the piece that fails is the one holding the first byte after which no
        // valid continuation exists, not the end of the message.
        if let Err(e) = std_result {
            if let Some(len) = e.error_len() {
                let start = e.valid_up_to();
                let prefix_ok = match core::str::from_utf8(&bytes[..start + len]) {
                    Ok(_) => true,
                    Err(p) => p.error_len().is_none(),
                };
                let stop = if prefix_ok { start + len } else { start };
                let piece = failed_in.clone().expect("an invalid byte fails a feed");
                prop_assert!(piece.contains(&stop), "failed in {:?}, bad byte at {}", piece, stop);
            } else {
                // Cut short at the end: only `finish` can tell.
                prop_assert!(failed_in.is_none());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (e) Close reasons are cut to valid UTF-8 of at most 123 bytes.

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn close_reason_truncating_is_a_maximal_utf8_prefix(
        chars in proptest::collection::vec(
            prop_oneof![any::<char>(), Just('a'), Just('é'), Just('€'), Just('😀')],
            0..160,
        ),
        code in prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999],
    ) {
        let text: String = chars.into_iter().collect();
        let reason = CloseReason::truncating(&text);
        let cut = reason.as_str();
        prop_assert!(cut.len() <= MAX_REASON_LEN);
        prop_assert!(text.starts_with(cut));
        prop_assert!(core::str::from_utf8(cut.as_bytes()).is_ok());
        if text.len() <= MAX_REASON_LEN {
            prop_assert_eq!(cut, text.as_str());
        } else {
            let next = text[cut.len()..].chars().next().map_or(0, char::len_utf8);
            prop_assert!(cut.len() + next > MAX_REASON_LEN, "a longer prefix would fit");
        }
        // And the close frame built from it parses back to the same code and reason.
        let frame = CloseFrameRef::new(CloseCode(code), reason).expect("sendable code");
        let mut out = [0u8; 125];
        let n = frame.emit(&mut out);
        prop_assert_eq!(n, 2 + cut.len());
        let parsed = CloseFrameRef::parse(&out[..n]).expect("valid").expect("has a status");
        prop_assert_eq!(parsed.code, CloseCode(code));
        prop_assert_eq!(parsed.reason, cut);
    }
}

// ---------------------------------------------------------------------------------------------
// (f) `frames()` over an emitted stream returns the emitted frames.

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn frames_iterator_returns_the_emitted_frames(
        sent in proptest::collection::vec(arb_frame(), 0..6),
        cut in any::<Index>(),
    ) {
        let wire = emit_all(&sent);
        let mut buf = wire.clone();
        let got: Vec<_> = frames(&mut buf)
            .map(|f| f.map(|f| (f.offset, f.header, f.payload.to_vec())))
            .collect();
        let mut offset = 0;
        let mut expected = Vec::new();
        for f in &sent {
            expected.push(Ok((offset, f.header, f.payload.clone())));
            offset += f.wire_len();
        }
        prop_assert_eq!(got, expected);

        // Cut the stream anywhere: the frames wholly before the cut, then `Truncated` for the
        // frame the cut falls in, with how much of it is there and how much it needs.
        let end = cut.index(wire.len() + 1);
        let mut short = wire[..end].to_vec();
        let got: Vec<_> = frames(&mut short)
            .map(|f| f.map(|f| (f.offset, f.header, f.payload.to_vec())))
            .collect();
        let mut expected = Vec::new();
        let mut offset = 0;
        for f in &sent {
            if offset == end {
                break;
            }
            if offset + f.wire_len() <= end {
                expected.push(Ok((offset, f.header, f.payload.clone())));
            } else {
                let have = end - offset;
                let need = if have >= f.header.header_len() {
                    f.wire_len() as u64
                } else {
                    // The header itself is cut: what parsing the prefix says is missing.
                    match FrameHeader::parse(&wire[offset..end]) {
                        Ok(HeaderStatus::Incomplete { needed }) => (have + needed) as u64,
                        other => panic!("{other:?}"),
                    }
                };
                expected.push(Err(FramesError::Truncated { offset, have, need }));
                break;
            }
            offset += f.wire_len();
        }
        prop_assert_eq!(got, expected);
    }
}

// ---------------------------------------------------------------------------------------------
// (g) The dissector: any split gives the same items as the whole stream, and the frames are the
// emitted ones, with their offsets and header bytes.

/// An owned [`Dissected`] item; a frame's payload chunks are joined (their cuts depend on the
/// reads) and must be contiguous.
#[derive(Debug, PartialEq, Eq)]
enum Dissection {
    Frame(u64, FrameHeader, Vec<u8>),
    Payload(u64, Vec<u8>),
    FrameEnd(
        u64,
        u64,
        Option<Result<Option<(u16, String)>, ProtocolError>>,
    ),
    Message(MessageInfo),
    Violation(Violation),
}

/// Dissects `wire` fed in reads of the given sizes; returns the items and what was left
/// unfinished.
fn run_dissector(mask: MaskRule, wire: &[u8], reads: &[usize]) -> (Vec<Dissection>, Unfinished) {
    let mut data = wire.to_vec();
    let mut dis = Dissector::new(mask);
    let mut items = Vec::new();
    // The item holding the current frame's payload.
    let mut payload: Option<usize> = None;
    let mut pos = 0;
    for end in read_ends(data.len(), reads) {
        let mut at = pos;
        loop {
            let step = dis.decode(&mut data[at..end]);
            at += step.consumed;
            let item = match step.event {
                None => break,
                Some(Dissected::Frame(f)) => {
                    payload = None;
                    Dissection::Frame(f.offset, f.header, f.header_bytes.to_vec())
                }
                Some(Dissected::Payload(p)) => {
                    // Violations may come between the chunks of a frame (invalid UTF-8).
                    if let Some(Dissection::Payload(start, bytes)) =
                        payload.and_then(|i| items.get_mut(i))
                    {
                        assert_eq!(*start + bytes.len() as u64, p.offset);
                        assert_eq!(bytes.len() as u64, p.position);
                        bytes.extend_from_slice(p.chunk);
                        continue;
                    }
                    assert_eq!(p.position, 0);
                    payload = Some(items.len());
                    Dissection::Payload(p.offset, p.chunk.to_vec())
                }
                Some(Dissected::FrameEnd(e)) => Dissection::FrameEnd(
                    e.offset,
                    e.message,
                    e.close()
                        .map(|c| c.map(|c| c.map(|c| (c.code.0, c.reason.to_owned())))),
                ),
                Some(Dissected::Message(m)) => Dissection::Message(m),
                Some(Dissected::Violation(v)) => Dissection::Violation(v),
                Some(other) => panic!("unknown item {other:?}"),
            };
            items.push(item);
        }
        assert_eq!(
            at, end,
            "the dissector must use all bytes before asking for more"
        );
        pos = end;
    }
    assert_eq!(dis.offset(), wire.len() as u64);
    (items, dis.finish())
}

proptest! {
    #![proptest_config(config(256))]

    /// Random frames (every rule broken somewhere), cut anywhere, with now and then a length
    /// that loses framing: any split gives what the whole stream gives, and every frame before
    /// the cut comes out as emitted, at its offset.
    #[test]
    fn dissector_any_split_equals_whole(
        sent in proptest::collection::vec(arb_frame(), 0..8),
        reads in arb_reads(),
        cut in any::<Index>(),
        lose_framing in any::<bool>(),
        rule in prop_oneof![Just(MaskRule::Any), Just(MaskRule::Required), Just(MaskRule::Forbidden)],
    ) {
        let mut wire = emit_all(&sent);
        if lose_framing {
            wire.extend_from_slice(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00]);
        }
        let wire = &wire[..cut.index(wire.len() + 1)];
        let whole = run_dissector(rule, wire, &[wire.len().max(1)]);
        let split = run_dissector(rule, wire, &reads);
        prop_assert_eq!(&split, &whole);

        let frames: Vec<_> = whole.0.iter().filter_map(|i| match i {
            Dissection::Frame(at, h, bytes) => Some((*at, *h, bytes.clone())),
            _ => None,
        }).collect();
        let mut at = 0u64;
        for (f, got) in sent.iter().zip(&frames) {
            let mut head = [0u8; MAX_HEADER_LEN];
            let n = f.header.emit(&mut head);
            prop_assert_eq!(got, &(at, f.header, head[..n].to_vec()));
            at += f.wire_len() as u64;
        }
        // Every complete frame has its payload, unmasked, and ends; a message per control
        // frame and per final data frame.
        let payloads: Vec<_> = whole.0.iter().filter_map(|i| match i {
            Dissection::Payload(_, p) => Some(p.clone()),
            _ => None,
        }).collect();
        let ends = whole.0.iter().filter(|i| matches!(i, Dissection::FrameEnd(..))).count();
        for (f, p) in sent.iter().zip(&payloads[..ends]) {
            prop_assert_eq!(&f.payload, p);
        }
        let lost = whole.0.iter().any(|i| matches!(
            i,
            Dissection::Violation(Violation { error: ProtocolError::LengthMsbSet, .. })
        ));
        prop_assert_eq!(lost, lose_framing && wire.len() >= emit_all(&sent).len() + 10);
        if lost {
            prop_assert_eq!(ends, sent.len());
            prop_assert_eq!(whole.1.frame, None);
        } else {
            prop_assert_eq!(whole.1.frame.is_some(), ends < frames.len() || wire.len() > at_end(&frames, &sent));
        }
    }
}

/// Where the frames that had a header reported end on the wire.
fn at_end(frames: &[(u64, FrameHeader, Vec<u8>)], sent: &[WireFrame]) -> usize {
    frames.iter().zip(sent).map(|(_, f)| f.wire_len()).sum()
}

/// The rule-breaking stream properties above really break rules: a fixed stream with one of
/// each violation gives each of them, in order, in report mode.
#[test]
fn report_mode_lists_every_violation_in_order() {
    let frames = [
        WireFrame::new(
            false,
            0,
            OpCode::CONTINUATION,
            None,
            LengthForm::Short,
            b"x".to_vec(),
        ),
        WireFrame::new(false, 0, OpCode(3), None, LengthForm::Short, vec![]),
        WireFrame::new(false, 0, OpCode::PING, None, LengthForm::Short, vec![]),
        WireFrame::new(
            true,
            0,
            OpCode::TEXT,
            None,
            LengthForm::Short,
            vec![0xc0, 0xaf],
        ),
    ];
    let wire = emit_all(&frames);
    let run = run_message_decoder(
        DecoderConfig::new(MaskRule::Forbidden).reporting(),
        AssemblerConfig::default(),
        &wire,
        &[1],
    );
    assert_eq!(run.error, None);
    assert_eq!(
        run.violations,
        [
            ProtocolError::UnexpectedContinuation,
            ProtocolError::ReservedOpcode { opcode: OpCode(3) },
            ProtocolError::ExpectedContinuation { opcode: OpCode(3) },
            ProtocolError::FragmentedControlFrame,
            ProtocolError::ExpectedContinuation {
                opcode: OpCode::TEXT
            },
            ProtocolError::InvalidUtf8,
        ]
    );
}
