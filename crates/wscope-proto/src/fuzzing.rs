//! Fuzzing entry points (after rustls' `internal::fuzzing`): the bodies of the targets in
//! `fuzz/fuzz_targets/`. They live in the library so that they build with the crate on stable
//! and a normal `cargo test` replays the committed seed files through them
//! (`tests/all/seeds.rs`); the fuzz targets only call them.
//!
//! Not part of the API: names and behaviour may change at any time.
//!
//! Each function takes arbitrary bytes, must never panic on its own, and asserts the invariants
//! the layer documents. For the decoders the first byte is a control byte (mask rule,
//! strictness, limits, how the rest is split into reads); the remaining bytes are the stream.
//! Every decoder body decodes its stream twice, once whole and once split, and asserts that the
//! two runs agree.
//!
//! | target (`fuzz/fuzz_targets/`) | body |
//! |---|---|
//! | `frame_decoder` | [`fuzz_frame_decoder`] |
//! | `message` | [`fuzz_message_decoder`] |
//! | `dissect` | [`fuzz_dissector`] |
//! | `close_payload` | [`fuzz_close_payload`] |
//! | `frames_iter` | [`fuzz_frames_iter`] |
//! | `utf8` | [`fuzz_utf8`] |
//! | `handshake_request` | [`fuzz_handshake_request`] |
//! | `handshake_response` | [`fuzz_handshake_response`] |
//! | `observer` | [`fuzz_observer`] |
//! | `connection` | [`fuzz_connection`] |
//! | `deflate_diff` | [`fuzz_deflate_diff`] |

use alloc::vec::Vec;

use crate::close::{
    zeek_status, CloseClass, CloseCode, CloseFrameRef, CloseReason, MAX_REASON_LEN,
};
use crate::decoder::{frames, DecoderConfig, FrameDecoder, FrameEvent, FramesError, MaskRule};
use crate::decoder::{Step, Strictness};
use crate::dissect::{
    Dissected, Dissector, MessageInfo, Unfinished, Violation as DissectViolation,
};
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, HeaderStatus, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, RSV1};
use crate::mask::apply_mask_scalar;
use crate::message::{AssemblerConfig, MessageDecoder, MessageEvent};
use crate::time::Instant;
use crate::utf8::{self, Utf8Validator};

/// Read sizes the control byte chooses from (bits 5–7): one byte at a time, sizes that cut
/// headers (2, 3, 5, 7, 13 bytes), and a large read.
const SPLITS: [usize; 8] = [1, 2, 3, 5, 7, 13, 64, 4096];

/// Upper bound on consecutive events that use no input (violations, a header already parsed,
/// a zero-length payload, a ready control frame): more means the decoder is spinning.
const MAX_IDLE_EVENTS: usize = 12;

/// Decodes `data[1..]` with a [`FrameDecoder`] configured by `data[0]`, whole and in reads of
/// a size `data[0]` picks, and checks the decoding contract.
///
/// Control byte: bits 0–1 mask rule (0 required, 1 forbidden, 2–3 any), bit 2 report mode,
/// bit 3 non-minimal lengths allowed, bit 4 a 1000-byte frame limit, bits 5–7 the read size.
///
/// Asserts: `consumed <= buf.len()`; a `None` event means the whole buffer was used; every
/// frame is one header, then payload chunks at contiguous offsets, the last with `last: true`
/// and the declared length in all; violations only in report mode; in report mode the only
/// error is `LengthMsbSet`; errors are sticky; the whole and the split runs agree exactly.
pub fn fuzz_frame_decoder(data: &[u8]) {
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    let cfg = frame_config(ctl);
    let split = SPLITS[usize::from(ctl >> 5)];
    let whole = decode_frames(cfg, stream, usize::MAX);
    let pieces = decode_frames(cfg, stream, split);
    assert_eq!(
        whole, pieces,
        "a split changed what the frame decoder found"
    );
}

/// Decodes `data[2..]` with a [`MessageDecoder`] configured by `data[0]` (as in
/// [`fuzz_frame_decoder`]) and `data[1]`, whole and split, and checks the message layer against
/// the frame layer.
///
/// Second control byte: bit 0 control chunks surfaced, bit 1 UTF-8 validated, bit 2
/// permessage-deflate's RSV1 allowed, bit 3 a 300-byte message limit.
///
/// Asserts: the [`fuzz_frame_decoder`] contract items that apply; data chunks add up to each
/// frame's declared length and end with `frame_end`, `message_end` only on a final frame;
/// control frames are delivered whole with their declared length and the first 125 bytes of
/// their payload; report mode never errors except `LengthMsbSet`; the frame headers and payload
/// bytes are those a [`FrameDecoder`] with the same settings finds; whole and split runs agree
/// (up to where an error stops an enforcing decoder).
pub fn fuzz_message_decoder(data: &[u8]) {
    let [ctl, actl, stream @ ..] = data else {
        return;
    };
    let fcfg = frame_config(*ctl);
    let acfg = AssemblerConfig {
        control_chunks: actl & 1 != 0,
        validate_utf8: actl & 2 != 0,
        extension_rsv: if actl & 4 != 0 { RSV1 } else { 0 },
        max_message_len: if actl & 8 != 0 { 300 } else { 64 << 20 },
    };
    let split = SPLITS[usize::from(ctl >> 5)];
    let whole = decode_messages(fcfg, acfg, stream, usize::MAX);
    let pieces = decode_messages(fcfg, acfg, stream, split);
    assert_eq!(whole.violations, pieces.violations, "violations differ");
    assert_eq!(whole.error, pieces.error, "errors differ");
    if whole.error.is_none() {
        assert_eq!(whole.events, pieces.events, "a split changed the messages");
    } else {
        // An error stops an enforcing decoder inside a payload at a point that depends on the
        // reads: compare everything before the frame it stopped in.
        assert_eq!(
            without_trailing_data(&whole.events),
            without_trailing_data(&pieces.events),
            "a split changed the messages before the error"
        );
    }

    // The message layer sees exactly the frames the frame layer sees.
    let frames = decode_frames(fcfg, stream, usize::MAX);
    let frame_headers: Vec<FrameHeader> = frames
        .iter()
        .filter_map(|r| match r {
            FrameRecord::Header(h) => Some(*h),
            _ => None,
        })
        .collect();
    let message_headers: Vec<FrameHeader> = whole
        .events
        .iter()
        .filter_map(|r| match r {
            MessageRecord::Frame(h) => Some(*h),
            _ => None,
        })
        .collect();
    if whole.error.is_none() || fcfg.strictness == Strictness::Report {
        assert_eq!(frame_headers, message_headers, "frame headers differ");
    } else {
        assert!(
            frame_headers.starts_with(&message_headers),
            "message layer invented a frame"
        );
    }
    if fcfg.strictness == Strictness::Report {
        // Payload bytes are the frame layer's (data chunks, or control chunks when surfaced).
        let frame_payloads = frames.iter().filter_map(|r| match r {
            FrameRecord::Payload(p) => Some(p.as_slice()),
            _ => None,
        });
        let mut message_payloads = whole.events.iter().filter_map(|r| match r {
            MessageRecord::Data { bytes, .. } | MessageRecord::ControlData(bytes) => {
                Some(bytes.as_slice())
            }
            _ => None,
        });
        let kinds = whole.events.iter().filter_map(|r| match r {
            MessageRecord::Frame(h) => Some(h.opcode.is_control()),
            _ => None,
        });
        for (payload, is_control) in frame_payloads.zip(kinds) {
            if is_control && !acfg.control_chunks {
                continue;
            }
            assert_eq!(Some(payload), message_payloads.next(), "payload differs");
        }
    }
}

/// Dissects `data[1..]` with a [`Dissector`] under the mask rule `data[0]` picks (bits 0–1,
/// as in [`fuzz_frame_decoder`]), whole and in reads of the size bits 5–7 pick.
///
/// Asserts: `consumed <= buf.len()`; a `None` item means the whole buffer was used; a bounded
/// number of items in a row use no input; each frame is a header whose bytes parse to it, at
/// the offset where the previous frame ended, then payload chunks at contiguous positions and
/// stream offsets, the last one marked and the declared length in all, then its end; a close
/// frame's end parses it like [`CloseFrameRef::parse`] (or calls it too long); messages have at
/// least one frame; after lost framing nothing but input use; [`Dissector::offset`] counts
/// every byte; the whole and the split runs agree (payload chunks joined).
pub fn fuzz_dissector(data: &[u8]) {
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    let mask = frame_config(ctl).mask;
    let split = SPLITS[usize::from(ctl >> 5)];
    let whole = dissect(mask, stream, usize::MAX);
    let pieces = dissect(mask, stream, split);
    assert_eq!(whole, pieces, "a split changed what the dissector found");
}

/// An owned [`Dissected`] item, a frame's payload chunks joined.
#[derive(Debug, PartialEq, Eq)]
enum DissectRecord {
    Frame(u64, FrameHeader),
    Payload(u64, Vec<u8>),
    FrameEnd(u64, u64, OwnedClose),
    Message(MessageInfo),
    Violation(DissectViolation),
    End(Unfinished),
}

/// A close frame's status and reason (owned), or why it is malformed.
type OwnedClose = Option<Result<Option<(CloseCode, Vec<u8>)>, ProtocolError>>;

/// Items in a row that use no input: up to 3 frame and 4 message violations and the header of
/// one frame, its empty payload, a close violation, its end and the two messages it ends.
const MAX_IDLE_ITEMS: usize = 16;

/// Runs a [`Dissector`] over `stream` in reads of `split` bytes, checking the contract.
fn dissect(mask: MaskRule, stream: &[u8], split: usize) -> Vec<DissectRecord> {
    let mut data = stream.to_vec();
    let mut dis = Dissector::new(mask);
    let mut out = Vec::new();
    // The current frame: its offset, header and payload bytes seen; where the next one starts.
    let mut frame: Option<(u64, FrameHeader, u64)> = None;
    let mut next_frame = 0u64;
    let mut payload: Option<usize> = None;
    let mut pos = 0;
    while pos < data.len() {
        let end = pos.saturating_add(split).min(data.len());
        let mut at = pos;
        let mut idle = 0;
        loop {
            let lost = dis.is_framing_lost();
            let buf_len = end - at;
            let step = dis.decode(&mut data[at..end]);
            assert!(step.consumed <= buf_len, "consumed more than given");
            at += step.consumed;
            idle = if step.consumed == 0 { idle + 1 } else { 0 };
            assert!(idle <= MAX_IDLE_ITEMS, "the dissector is spinning");
            let Some(item) = step.event else {
                assert_eq!(at, end, "`None` before the buffer was used");
                break;
            };
            assert!(!lost, "an item after lost framing");
            match item {
                Dissected::Frame(f) => {
                    assert!(frame.is_none(), "a header inside a frame");
                    assert_eq!(f.offset, next_frame, "a frame not where the last one ended");
                    assert_eq!(
                        FrameHeader::parse(f.header_bytes),
                        Ok(HeaderStatus::Complete(f.header)),
                        "header bytes do not parse to the header"
                    );
                    frame = Some((f.offset, f.header, 0));
                    payload = None;
                    out.push(DissectRecord::Frame(f.offset, f.header));
                }
                Dissected::Payload(p) => {
                    let Some((offset, header, seen)) = frame.as_mut() else {
                        panic!("payload outside a frame");
                    };
                    assert_eq!(p.position, *seen, "payload chunks not contiguous");
                    let head = header.header_len() as u64;
                    assert_eq!(p.offset, *offset + head + p.position, "wrong chunk offset");
                    *seen += p.chunk.len() as u64;
                    assert_eq!(p.last, *seen == header.payload_len, "wrong `last`");
                    assert!(*seen <= header.payload_len, "more payload than declared");
                    match payload.and_then(|i| out.get_mut(i)) {
                        Some(DissectRecord::Payload(_, bytes)) => {
                            bytes.extend_from_slice(p.chunk);
                        }
                        _ => {
                            payload = Some(out.len());
                            out.push(DissectRecord::Payload(p.offset, p.chunk.to_vec()));
                        }
                    }
                }
                Dissected::FrameEnd(e) => {
                    let Some((offset, header, seen)) = frame.take() else {
                        panic!("a frame end outside a frame");
                    };
                    assert_eq!((e.offset, e.header), (offset, header), "wrong frame ended");
                    assert_eq!(seen, header.payload_len, "a frame ended early");
                    next_frame = offset + header.header_len() as u64 + seen;
                    let close = e
                        .close()
                        .map(|c| c.map(|c| c.map(|c| (c.code, c.reason.as_bytes().to_vec()))));
                    if let (Some(c), Some(control)) = (&close, e.control) {
                        if header.payload_len <= MAX_CONTROL_PAYLOAD as u64 {
                            let parsed = CloseFrameRef::parse(control.payload)
                                .map(|c| c.map(|c| (c.code, c.reason.as_bytes().to_vec())));
                            assert_eq!(c, &parsed, "close parsed differently");
                        } else {
                            assert!(c.is_err(), "an oversized close frame parsed");
                        }
                    }
                    out.push(DissectRecord::FrameEnd(e.offset, e.message, close));
                }
                Dissected::Message(m) => {
                    assert!(m.frames >= 1, "a message without frames");
                    out.push(DissectRecord::Message(m));
                }
                Dissected::Violation(v) => out.push(DissectRecord::Violation(v)),
            }
        }
        pos = end;
    }
    assert_eq!(dis.offset(), stream.len() as u64, "bytes not counted");
    out.push(DissectRecord::End(dis.finish()));
    out
}

/// Parses `data` as a close frame payload and checks every close rule against it.
///
/// Asserts: an empty payload is "no status"; a parsed status has a wire-valid code, the first
/// two bytes big-endian, the rest as its reason, and emits back to the same bytes; each refusal
/// is the one the rules imply (1-byte payload, over 125 bytes, invalid code, invalid UTF-8
/// reason) with close code 1002 or 1007; [`zeek_status`] agrees; [`CloseReason::truncating`]
/// of the longest valid UTF-8 prefix is a prefix of at most 123 bytes that no longer prefix
/// would fit; the code's class agrees with [`CloseCode::is_valid_on_wire`].
pub fn fuzz_close_payload(data: &[u8]) {
    let (zeek_code, zeek_reason) = zeek_status(data);
    if data.len() >= 2 {
        assert_eq!(zeek_code, u16::from_be_bytes([data[0], data[1]]));
        assert_eq!(zeek_reason, &data[2..]);
    } else {
        assert_eq!((zeek_code, zeek_reason), (0, &[][..]));
    }
    match CloseFrameRef::parse(data) {
        Ok(None) => assert!(data.is_empty()),
        Ok(Some(close)) => {
            assert!((2..=MAX_CONTROL_PAYLOAD).contains(&data.len()));
            assert_eq!(close.code, CloseCode(zeek_code));
            assert!(close.code.is_valid_on_wire());
            assert_eq!(close.reason.as_bytes(), &data[2..]);
            let reason = CloseReason::new(close.reason).expect("a parsed reason fits");
            let again = CloseFrameRef::new(close.code, reason).expect("a parsed code is sendable");
            let mut out = [0u8; MAX_CONTROL_PAYLOAD];
            let n = again.emit(&mut out);
            assert_eq!(n, again.encoded_len());
            assert_eq!(&out[..n], data);
        }
        Err(e) => {
            let expected = if data.len() == 1 {
                ProtocolError::CloseOneBytePayload
            } else if data.len() > MAX_CONTROL_PAYLOAD {
                ProtocolError::ControlFrameTooLong {
                    len: data.len() as u64,
                }
            } else if !CloseCode(zeek_code).is_valid_on_wire() {
                ProtocolError::InvalidCloseCode {
                    code: CloseCode(zeek_code),
                }
            } else {
                assert!(core::str::from_utf8(&data[2..]).is_err());
                ProtocolError::InvalidCloseReason
            };
            assert_eq!(e, expected);
            assert!(matches!(e.close_code().0, 1002 | 1007));
        }
    }

    let code = CloseCode(zeek_code);
    let on_wire_class = matches!(
        code.class(),
        CloseClass::Protocol | CloseClass::Registered | CloseClass::Private
    );
    assert_eq!(code.is_valid_on_wire(), on_wire_class);

    let text = match core::str::from_utf8(data) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default(),
    };
    check_truncating(text);
}

/// Iterates `data` with [`frames`] and checks it against a permissive [`FrameDecoder`] and
/// against re-emission.
///
/// Asserts: frames are contiguous from offset 0; each one's header and unmasked payload are the
/// decoder's; emitting each header and re-masking its payload gives back the input bytes; the
/// iterator stops with `Truncated` (consistent `offset`, `have`, `need`) or `LengthMsbSet`
/// exactly where the decoder runs out or fails, and yields nothing after that.
pub fn fuzz_frames_iter(data: &[u8]) {
    // Enforcing, any mask, non-minimal lengths allowed, no limit: only `LengthMsbSet` can fail.
    let cfg = DecoderConfig::new(MaskRule::Any);
    let records = decode_frames(cfg, data, usize::MAX);
    let mut decoded = records.iter();

    let mut buf = data.to_vec();
    let mut iter = frames(&mut buf);
    let mut expected_offset = 0usize;
    let mut failure = None;
    for item in iter.by_ref() {
        match item {
            Ok(frame) => {
                assert!(failure.is_none(), "frames() went on after an error");
                assert_eq!(frame.offset, expected_offset);
                let hlen = frame.header.header_len();
                let end = expected_offset + hlen + frame.payload.len();
                assert_eq!(frame.payload.len() as u64, frame.header.payload_len);
                assert_eq!(decoded.next(), Some(&FrameRecord::Header(frame.header)));
                assert_eq!(
                    decoded.next(),
                    Some(&FrameRecord::Payload(frame.payload.to_vec()))
                );

                let mut wire = [0u8; MAX_HEADER_LEN];
                let n = frame.header.emit(&mut wire);
                assert_eq!(n, hlen);
                assert_eq!(&wire[..n], &data[expected_offset..expected_offset + hlen]);
                let mut payload = frame.payload.to_vec();
                if let Some(key) = frame.header.mask {
                    apply_mask_scalar(&mut payload, key, 0);
                }
                assert_eq!(payload, &data[expected_offset + hlen..end]);
                expected_offset = end;
            }
            Err(e) => {
                assert!(failure.is_none(), "frames() gave two errors");
                failure = Some(e);
            }
        }
    }
    assert_eq!(iter.next(), None);

    match failure {
        None => {
            assert_eq!(expected_offset, data.len());
            assert_eq!(decoded.next(), None);
        }
        Some(FramesError::LengthMsbSet { offset }) => {
            assert_eq!(offset, expected_offset);
            assert_eq!(
                decoded.next(),
                Some(&FrameRecord::Error(ProtocolError::LengthMsbSet))
            );
        }
        Some(FramesError::Truncated { offset, have, need }) => {
            assert_eq!(offset, expected_offset);
            assert_eq!(have, data.len() - offset);
            assert!(need > have as u64);
            // The decoder saw the same partial frame: its header if complete, then what there is
            // of the payload.
            match decoded.next() {
                Some(FrameRecord::Header(h)) => {
                    let hlen = h.header_len();
                    assert_eq!(need, hlen as u64 + h.payload_len);
                    let mut partial = data[offset + hlen..].to_vec();
                    if let Some(key) = h.mask {
                        apply_mask_scalar(&mut partial, key, 0);
                    }
                    match decoded.next() {
                        Some(FrameRecord::Payload(p)) => assert_eq!(p, &partial),
                        None => assert!(partial.is_empty()),
                        other => panic!("unexpected record after a header: {other:?}"),
                    }
                }
                None => {
                    assert!(have < MAX_HEADER_LEN);
                    assert!(matches!(
                        FrameHeader::parse(&data[offset..]),
                        Ok(HeaderStatus::Incomplete { .. })
                    ));
                }
                other => panic!("decoder found {other:?} where frames() ran out"),
            }
        }
    }
}

/// Validates `data[1..]` with a [`Utf8Validator`] fed in reads of the sizes `data[0]` picks and
/// compares with `core::str::from_utf8` on the whole.
///
/// Control byte: the reads alternate between `1 + (data[0] & 0xf)` and `1 + 3 * (data[0] >> 4)`
/// bytes.
///
/// Asserts: the validator accepts exactly what the standard library accepts; it fails fast, in
/// the read that holds the first byte after which no valid continuation exists, with
/// `valid_up_to` pointing at the start of the bad sequence within that read (0 when it began in
/// an earlier read); [`utf8::from_utf8`] agrees with the standard library, `valid_up_to`
/// included.
pub fn fuzz_utf8(data: &[u8]) {
    let Some((&ctl, text)) = data.split_first() else {
        return;
    };
    let std_result = core::str::from_utf8(text);
    match (utf8::from_utf8(text), std_result) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.valid_up_to, b.valid_up_to()),
        (a, b) => panic!("utf8::from_utf8 {a:?} but std {b:?}"),
    }

    // Where a fail-fast validator must stop: the first byte after which `text[..=k]` is no
    // longer the prefix of any valid UTF-8.
    let fail_at = std_result.err().and_then(|e| {
        let start = e.valid_up_to();
        let len = e.error_len()?;
        let prefix_ok = match core::str::from_utf8(&text[..start + len]) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        };
        // A maximal valid prefix of a sequence is cut by the byte after it; a lone bad byte
        // fails by itself.
        Some((start, if prefix_ok { start + len } else { start }))
    });

    let sizes = [1 + usize::from(ctl & 0xf), 1 + 3 * usize::from(ctl >> 4)];
    let mut v = Utf8Validator::new();
    let mut at = 0;
    let mut k = 0;
    let mut failed = false;
    while at < text.len() {
        let end = (at + sizes[k % 2]).min(text.len());
        k += 1;
        match v.feed(&text[at..end]) {
            Ok(()) => {
                if let Some((_, stop)) = fail_at {
                    assert!(stop >= end, "validator missed the bad byte at {stop}");
                }
            }
            Err(e) => {
                let Some((start, stop)) = fail_at else {
                    panic!("validator refused valid UTF-8 at read {at}..{end}");
                };
                assert!(
                    (at..end).contains(&stop),
                    "failed in read {at}..{end}, bad byte at {stop}"
                );
                assert_eq!(e.valid_up_to, start.saturating_sub(at));
                failed = true;
                break;
            }
        }
        at = end;
    }
    if !failed {
        let finished = v.finish();
        assert_eq!(finished.is_ok(), std_result.is_ok());
        if let Some((_, stop)) = fail_at {
            panic!("validator accepted a bad byte at {stop}");
        }
    }

    // A validator fed everything at once agrees too.
    let mut once = Utf8Validator::new();
    let ok = once.feed(text).is_ok() && once.finish().is_ok();
    assert_eq!(ok, std_result.is_ok());
}

/// The decoder settings a control byte picks (see [`fuzz_frame_decoder`]).
fn frame_config(ctl: u8) -> DecoderConfig {
    let rule = match ctl & 3 {
        0 => MaskRule::Required,
        1 => MaskRule::Forbidden,
        _ => MaskRule::Any,
    };
    let mut cfg = DecoderConfig::new(rule);
    if ctl & 4 != 0 {
        cfg = cfg.reporting();
    }
    cfg.allow_non_minimal = ctl & 8 != 0;
    if ctl & 16 != 0 {
        cfg.max_frame_len = 1000;
    }
    cfg
}

/// What a [`FrameDecoder`] run found, with payload chunks joined per frame.
#[derive(Debug, PartialEq, Eq)]
enum FrameRecord {
    Header(FrameHeader),
    Payload(Vec<u8>),
    Violation(ProtocolError),
    Error(ProtocolError),
}

/// Decodes `stream` in reads of `split` bytes, asserting the decoding contract on the way.
///
/// A frame's payload record is created by its first chunk, so a stream that ends right after a
/// header gives the same records however it is split.
fn decode_frames(cfg: DecoderConfig, stream: &[u8], split: usize) -> Vec<FrameRecord> {
    let report = cfg.strictness == Strictness::Report;
    let mut buf = stream.to_vec();
    let mut dec = FrameDecoder::new(cfg);
    let mut out = Vec::new();
    // Inside a frame: (declared length, payload bytes seen so far).
    let mut frame: Option<(u64, u64)> = None;
    let mut pos = 0usize;
    loop {
        let end = pos.saturating_add(split).min(buf.len());
        let mut at = pos;
        let mut idle = 0;
        loop {
            let len = end - at;
            let step = match dec.decode(&mut buf[at..end]) {
                Ok(step) => step,
                Err(e) => {
                    assert!(
                        !report || e == ProtocolError::LengthMsbSet,
                        "report mode: {e:?}"
                    );
                    assert_eq!(dec.decode(&mut []), Err(e), "errors are sticky");
                    out.push(FrameRecord::Error(e));
                    return out;
                }
            };
            let Step { consumed, event } = step;
            assert!(consumed <= len, "consumed {consumed} of {len}");
            idle = if consumed == 0 { idle + 1 } else { 0 };
            assert!(idle <= MAX_IDLE_EVENTS, "decoder spins without input");
            match event {
                None => {
                    assert_eq!(consumed, len, "`None` must use the whole buffer");
                    break;
                }
                Some(FrameEvent::Violation(v)) => {
                    assert!(report, "violation {v:?} in enforce mode");
                    assert!(frame.is_none(), "violation inside a frame");
                    out.push(FrameRecord::Violation(v));
                }
                Some(FrameEvent::Header(h)) => {
                    assert!(frame.is_none(), "header inside a frame");
                    assert!(h.payload_len >> 63 == 0);
                    assert!(!dec.is_at_boundary());
                    frame = Some((h.payload_len, 0));
                    out.push(FrameRecord::Header(h));
                }
                Some(FrameEvent::Payload {
                    chunk,
                    offset,
                    last,
                }) => {
                    let Some((declared, seen)) = frame else {
                        panic!("payload outside a frame");
                    };
                    assert_eq!(consumed, chunk.len());
                    assert_eq!(offset, seen, "payload offsets must be contiguous");
                    let seen = seen + chunk.len() as u64;
                    assert!(seen <= declared);
                    assert_eq!(last, seen == declared, "`last` iff the payload is complete");
                    assert_eq!(dec.payload_remaining(), declared - seen);
                    match out.last_mut() {
                        Some(FrameRecord::Payload(p)) if offset > 0 => p.extend_from_slice(chunk),
                        _ => out.push(FrameRecord::Payload(chunk.to_vec())),
                    }
                    frame = if last { None } else { Some((declared, seen)) };
                }
            }
            at += consumed;
        }
        if end == buf.len() {
            break;
        }
        pos = end;
    }
    // Input exhausted: the decoder is at a boundary exactly when no frame is open (a header
    // split by the end of input is held inside, so it may also be mid-header).
    if frame.is_some() {
        assert!(!dec.is_at_boundary());
    }
    out
}

/// What a [`MessageDecoder`] run found.
#[derive(Debug, Default)]
struct MessageRun {
    events: Vec<MessageRecord>,
    violations: Vec<ProtocolError>,
    error: Option<ProtocolError>,
}

/// The data message in progress, as the events tell it.
#[derive(Debug)]
struct MessageTrack {
    open: bool,
    opcode: OpCode,
    expect_first: bool,
}

/// Message events with data chunks joined per frame and violations kept apart (where a split
/// falls moves a violation between chunks, not between frames).
#[derive(Debug, PartialEq, Eq)]
enum MessageRecord {
    Frame(FrameHeader),
    Data {
        opcode: OpCode,
        compressed: bool,
        first: bool,
        bytes: Vec<u8>,
        frame_end: bool,
        message_end: bool,
    },
    ControlData(Vec<u8>),
    Control {
        opcode: OpCode,
        payload: Vec<u8>,
        declared_len: u64,
    },
}

fn without_trailing_data(events: &[MessageRecord]) -> &[MessageRecord] {
    match events.split_last() {
        Some((MessageRecord::Data { .. } | MessageRecord::ControlData(_), rest)) => rest,
        _ => events,
    }
}

/// Decodes `stream` in reads of `split` bytes with a [`MessageDecoder`], asserting the message
/// contract on the way.
fn decode_messages(
    fcfg: DecoderConfig,
    acfg: AssemblerConfig,
    stream: &[u8],
    split: usize,
) -> MessageRun {
    let report = fcfg.strictness == Strictness::Report;
    let mut buf = stream.to_vec();
    let mut dec = MessageDecoder::new(fcfg, acfg);
    let mut run = MessageRun::default();
    // The frame in progress: its header and the payload bytes seen so far.
    let mut frame: Option<(FrameHeader, u64)> = None;
    // A control frame whose payload is complete, waiting for its `Control` event.
    let mut control_done: Option<(FrameHeader, Vec<u8>)> = None;
    let mut control_bytes: Vec<u8> = Vec::new();
    let mut message = MessageTrack {
        open: false,
        opcode: OpCode::CONTINUATION,
        expect_first: false,
    };
    let mut pos = 0usize;
    loop {
        let end = pos.saturating_add(split).min(buf.len());
        let mut at = pos;
        let mut idle = 0;
        loop {
            let len = end - at;
            let step = match dec.decode(&mut buf[at..end]) {
                Ok(step) => step,
                Err(e) => {
                    assert!(
                        !report || e == ProtocolError::LengthMsbSet,
                        "report mode: {e:?}"
                    );
                    run.error = Some(e);
                    break;
                }
            };
            let Step { consumed, event } = step;
            assert!(consumed <= len, "consumed {consumed} of {len}");
            idle = if consumed == 0 { idle + 1 } else { 0 };
            assert!(idle <= MAX_IDLE_EVENTS, "decoder spins without input");
            match event {
                None => {
                    assert_eq!(consumed, len, "`None` must use the whole buffer");
                    break;
                }
                Some(MessageEvent::Violation(v)) => {
                    assert!(report, "violation {v:?} in enforce mode");
                    run.violations.push(v);
                }
                Some(MessageEvent::Frame(h)) => {
                    assert!(frame.is_none(), "frame header inside a frame");
                    assert!(
                        control_done.is_none(),
                        "frame header before a pending control"
                    );
                    frame = Some((h, 0));
                    control_bytes.clear();
                    if !h.opcode.is_control() && (h.opcode != OpCode::CONTINUATION || !message.open)
                    {
                        // A new message (in report mode also an orphan continuation, or a new
                        // message that cuts an open one short).
                        message = MessageTrack {
                            open: true,
                            opcode: h.opcode,
                            expect_first: true,
                        };
                    }
                    run.events.push(MessageRecord::Frame(h));
                }
                Some(MessageEvent::Data {
                    opcode,
                    compressed,
                    chunk,
                    first,
                    frame_end,
                    message_end,
                }) => {
                    let Some((h, seen)) = frame else {
                        panic!("data outside a frame");
                    };
                    assert!(!h.opcode.is_control(), "data chunk of a control frame");
                    assert_eq!(consumed, chunk.len());
                    let seen = seen + chunk.len() as u64;
                    assert!(seen <= h.payload_len);
                    assert_eq!(frame_end, seen == h.payload_len);
                    assert_eq!(message_end, frame_end && h.fin);
                    assert!(!compressed || acfg.extension_rsv & RSV1 != 0);
                    assert_eq!(opcode, message.opcode, "a message keeps its first opcode");
                    assert_eq!(
                        first, message.expect_first,
                        "`first` on the first chunk only"
                    );
                    message.expect_first = false;
                    if message_end {
                        message.open = false;
                    }
                    frame = if frame_end { None } else { Some((h, seen)) };
                    match run.events.last_mut() {
                        Some(MessageRecord::Data {
                            bytes,
                            frame_end: fe,
                            message_end: me,
                            ..
                        }) if !*fe => {
                            bytes.extend_from_slice(chunk);
                            *fe = frame_end;
                            *me = message_end;
                        }
                        _ => run.events.push(MessageRecord::Data {
                            opcode,
                            compressed,
                            first,
                            bytes: chunk.to_vec(),
                            frame_end,
                            message_end,
                        }),
                    }
                }
                Some(MessageEvent::ControlData { chunk }) => {
                    assert!(
                        acfg.control_chunks,
                        "control chunks surfaced when not asked"
                    );
                    let Some((h, seen)) = frame else {
                        panic!("control data outside a frame");
                    };
                    assert!(h.opcode.is_control());
                    assert_eq!(consumed, chunk.len());
                    let seen = seen + chunk.len() as u64;
                    assert!(seen <= h.payload_len);
                    control_bytes.extend_from_slice(chunk);
                    if seen == h.payload_len {
                        frame = None;
                        control_done = Some((h, core::mem::take(&mut control_bytes)));
                    } else {
                        frame = Some((h, seen));
                    }
                    match run.events.last_mut() {
                        Some(MessageRecord::ControlData(bytes)) => bytes.extend_from_slice(chunk),
                        _ => run.events.push(MessageRecord::ControlData(chunk.to_vec())),
                    }
                }
                Some(MessageEvent::Control(c)) => {
                    assert!(c.opcode.is_control());
                    assert!(c.payload.len() <= MAX_CONTROL_PAYLOAD);
                    let h = if acfg.control_chunks {
                        let Some((h, all)) = control_done.take() else {
                            panic!("control frame before its payload ended");
                        };
                        let keep = all.len().min(MAX_CONTROL_PAYLOAD);
                        assert_eq!(c.payload, &all[..keep]);
                        h
                    } else {
                        let Some((h, _)) = frame.take() else {
                            panic!("control frame outside a frame");
                        };
                        h
                    };
                    assert_eq!(c.opcode, h.opcode);
                    assert_eq!(c.declared_len, h.payload_len);
                    assert_eq!(
                        c.payload.len() as u64,
                        h.payload_len.min(MAX_CONTROL_PAYLOAD as u64)
                    );
                    run.events.push(MessageRecord::Control {
                        opcode: c.opcode,
                        payload: c.payload.to_vec(),
                        declared_len: c.declared_len,
                    });
                }
            }
            at += consumed;
        }
        if run.error.is_some() {
            let e = run.error;
            assert_eq!(dec.decode(&mut []).err(), e, "errors are sticky");
            return run;
        }
        if end == buf.len() {
            break;
        }
        pos = end;
    }
    run
}

/// Checks [`CloseReason::truncating`] on `text`.
fn check_truncating(text: &str) {
    let cut = CloseReason::truncating(text).as_str();
    assert!(cut.len() <= MAX_REASON_LEN);
    assert!(text.starts_with(cut));
    if text.len() <= MAX_REASON_LEN {
        assert_eq!(cut, text);
    } else {
        // The longest prefix that fits: the next character would not.
        let next = text[cut.len()..].chars().next().map_or(0, char::len_utf8);
        assert!(cut.len() + next > MAX_REASON_LEN);
    }
}

/// Feeds `data[1..]` as a client's request head to a [`ServerHandshake`] (small limits), whole
/// and in two pieces split where `data[0]` says, and to [`Request::parse`].
///
/// Asserts: the whole and the split runs agree (the head ends at the same byte, or the same
/// error); leftover bytes are a suffix of the piece that completed the head; an error always
/// has an HTTP status of 400 or more and a refusal response can be written for it.
///
/// [`ServerHandshake`]: crate::handshake::ServerHandshake
/// [`Request::parse`]: crate::handshake::Request::parse
pub fn fuzz_handshake_request(data: &[u8]) {
    use crate::handshake::{Limits, Progress, Request, ResponseBuilder, ServerHandshake};
    let Some((&ctl, head)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_head_len: 1024,
        max_headers: 16,
    };
    // Where the head ended in the input (or the error), once the handshake is done.
    let outcome = |pieces: &[&[u8]]| -> Option<Result<usize, crate::handshake::UpgradeError>> {
        let mut hs = ServerHandshake::new(limits);
        let mut fed = 0;
        for piece in pieces {
            fed += piece.len();
            match hs.feed(piece) {
                Ok(Progress::NeedMore) => {}
                Ok(Progress::Done { head, leftover }) => {
                    // What follows the head in the piece that completed it.
                    assert!(piece.ends_with(leftover));
                    let _ = head.validate();
                    let _ = head.subprotocols().count();
                    let _ = head.extensions();
                    return Some(Ok(fed - leftover.len()));
                }
                Err(e) => {
                    assert!(e.http_status() >= 400);
                    let mut out = Vec::new();
                    let _ = ResponseBuilder::reject(&e).write(&mut out);
                    return Some(Err(e));
                }
            }
        }
        None
    };
    let at = usize::from(ctl) % (head.len() + 1);
    let whole = outcome(&[head]);
    let split = outcome(&[&head[..at], &head[at..]]);
    // A split can only finish later, never differently: compare when both finished.
    if let (Some(a), Some(b)) = (&whole, &split) {
        assert_eq!(a.is_ok(), b.is_ok(), "whole {a:?} split {b:?}");
        if let (Ok(x), Ok(y)) = (a, b) {
            assert_eq!(x, y);
        }
    }
    if let Ok(Progress::Done { leftover, .. }) = Request::parse(head, &limits) {
        assert!(head.ends_with(leftover));
    }
}

/// Feeds `data[1..]` as a server's response head to a [`ClientHandshake`] that sent a fixed
/// request, in two pieces split where `data[0]` says, and to [`Response::parse`]; a completed
/// response is checked against the request. Asserts leftover bytes are a suffix of the input.
///
/// [`ClientHandshake`]: crate::handshake::ClientHandshake
/// [`Response::parse`]: crate::handshake::Response::parse
pub fn fuzz_handshake_response(data: &[u8]) {
    use crate::handshake::{ClientHandshake, Key, Limits, Progress, RequestBuilder, Response};
    let Some((&ctl, head)) = data.split_first() else {
        return;
    };
    let key = Key::from_random([7; 16]);
    let req = RequestBuilder::new("example.com", "/chat", key)
        .subprotocol("chat")
        .extensions("permessage-deflate; client_max_window_bits");
    let mut out = Vec::new();
    let Ok(mut hs) = ClientHandshake::new(&req, &mut out) else {
        return;
    };
    let at = usize::from(ctl) % (head.len() + 1);
    for piece in [&head[..at], &head[at..]] {
        match hs.feed(piece) {
            Ok(Progress::NeedMore) => {}
            Ok(Progress::Done {
                head: resp,
                leftover,
            }) => {
                assert!(data.ends_with(leftover));
                let _ = resp.extensions();
                break;
            }
            Err(_) => break,
        }
    }
    let limits = Limits::default();
    if let Ok(Progress::Done { leftover, .. }) = Response::parse(head, &limits) {
        assert!(head.ends_with(leftover));
    }
}

/// Drives the two-direction [`Observer`] with `data[1..]` cut into reads whose sizes and
/// directions come from the bytes themselves, with gaps and end of stream, starting either
/// with HTTP (`data[0]` bit 0 clear) or directly with frames (Zeek fuzz corpus style).
///
/// Asserts: `consumed <= buf.len()`; a `None` event leaves the direction waiting (all used, or
/// paused until the other direction speaks); the number of events is bounded by the input
/// (no spinning).
///
/// [`Observer`]: crate::observe::Observer
pub fn fuzz_observer(data: &[u8]) {
    use crate::observe::{Observer, ObserverConfig};
    use crate::role::Direction;
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    let mut obs = if ctl & 1 == 0 {
        Observer::new(ObserverConfig::default())
    } else {
        Observer::after_handshake(ObserverConfig::default())
    };
    let read = 1 + usize::from(ctl >> 2) * 3;
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut budget = 64 + stream.len() * 8;
    let drive = |obs: &mut Observer, dir: Direction, buf: &mut Vec<u8>, budget: &mut usize| {
        let mut at = 0;
        loop {
            assert!(
                *budget > 0,
                "observer keeps producing events without using input"
            );
            *budget -= 1;
            let len = buf.len() - at;
            let step = obs.feed(dir, &mut buf[at..]);
            assert!(step.consumed <= len);
            at += step.consumed;
            if step.event.is_none() {
                break;
            }
        }
        buf.drain(..at);
    };
    for (i, chunk) in stream.chunks(read).enumerate() {
        let dir = if (chunk[0] ^ i as u8) & 1 == 0 {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        if ctl & 2 != 0 && chunk[0] == 0xff {
            obs.gap(dir, u64::from(chunk.len() as u8));
        }
        let buf = &mut pending[dir.index()];
        buf.extend_from_slice(chunk);
        // A paused direction keeps its bytes; bound what a fuzzer can make it hold.
        if buf.len() > 1 << 16 {
            buf.clear();
        }
        drive(&mut obs, dir, buf, &mut budget);
        let other = dir.reverse();
        drive(&mut obs, other, &mut pending[other.index()], &mut budget);
    }
    for dir in [Direction::ClientToServer, Direction::ServerToClient] {
        obs.eof(dir);
        drive(&mut obs, dir, &mut pending[dir.index()], &mut budget);
    }
}

/// Feeds `data[1..]` as the peer's bytes to a [`Connection`] configured by `data[0]`, whole
/// and in reads of a size `data[0]` picks, and checks the endpoint's contract.
///
/// Control byte: bit 0 the role (0: a server, the input is a client's; 1: a client), bit 1
/// permessage-deflate on (with feature `deflate`; bit 2: the peer resets its context after
/// each message), bit 3 small limits (frames of 1000 bytes, messages of 3000), bit 4
/// `auto_pong` and `auto_close` off, bits 5–7 the read size.
///
/// Asserts: `consumed <= buf.len()` and a `None` event means the buffer was used; no
/// spinning; a message's chunks come first to `message_end` with one opcode, inflated or not
/// within `max_message_len`, and a complete text message is valid UTF-8; an error comes once,
/// with close code 1002, 1007 or 1009, leaves the connection closed and swallowing input, and
/// its close is the last frame sent; what the connection sends is a valid frame stream in its
/// direction (masked from a client only), control frames only (pongs carrying pings' payloads,
/// in order), one close at most and last; the whole and the split runs agree.
///
/// [`Connection`]: crate::connection::Connection
pub fn fuzz_connection(data: &[u8]) {
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    let split = SPLITS[usize::from(ctl >> 5)];
    let whole = run_connection(ctl, stream, usize::MAX);
    let pieces = run_connection(ctl, stream, split);
    assert_eq!(whole.error, pieces.error, "errors differ");
    assert_eq!(
        whole.records, pieces.records,
        "a split changed what was received"
    );
}

/// What a [`crate::connection::Connection`] delivered, messages joined.
#[derive(Debug, PartialEq, Eq)]
enum ConnRecord {
    Frame(FrameHeader),
    Message(OpCode, Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(CloseCode, Vec<u8>)>),
}

/// One run of [`fuzz_connection`].
struct ConnRun {
    records: Vec<ConnRecord>,
    error: Option<ProtocolError>,
}

fn run_connection(ctl: u8, stream: &[u8], read: usize) -> ConnRun {
    use crate::connection::{Config, Connection, Event, State};
    let small = ctl & 8 != 0;
    let cfg = Config {
        max_frame_len: if small { 1000 } else { 64 << 20 },
        max_message_len: if small { 3000 } else { 64 << 20 },
        auto_pong: ctl & 16 == 0,
        auto_close: ctl & 16 == 0,
        ..Config::default()
    };
    let client = ctl & 1 != 0;
    let mut conn = if client {
        Connection::client(
            cfg,
            alloc::boxed::Box::new(|| [0x12, 0x34, 0x56, 0x78]),
            Instant::ZERO,
        )
    } else {
        Connection::server(cfg, Instant::ZERO)
    };
    #[cfg(feature = "deflate")]
    if ctl & 2 != 0 {
        let params = crate::deflate::DeflateParams {
            client_no_context_takeover: ctl & 4 != 0,
            server_no_context_takeover: ctl & 4 != 0,
            ..Default::default()
        };
        conn.enable_deflate(params, crate::connection::DeflateOptions::default());
    }

    let mut buf = stream.to_vec();
    let mut run = ConnRun {
        records: Vec::new(),
        error: None,
    };
    let mut sent = Vec::new();
    let mut message: Option<(OpCode, Vec<u8>)> = None;
    let (mut start, mut end, mut idle) = (0, 0, 0);
    loop {
        let avail = end - start;
        let step = match conn.recv(Instant::ZERO, &mut buf[start..end]) {
            Ok(step) => step,
            Err(e) => {
                let code = e.close_code().0;
                assert!(
                    matches!(code, 1002 | 1007 | 1009),
                    "{e:?} closes with {code}"
                );
                run.error = Some(e);
                break;
            }
        };
        assert!(step.consumed <= avail, "consumed more than given");
        start += step.consumed;
        let Some(event) = step.event else {
            assert_eq!(start, end, "no event before the buffer was used");
            if end == buf.len() {
                break;
            }
            end = end.saturating_add(read).min(buf.len());
            idle = 0;
            continue;
        };
        idle = if step.consumed == 0 { idle + 1 } else { 0 };
        assert!(idle <= MAX_IDLE_EVENTS, "spinning without input");
        match event {
            Event::Frame(h) => run.records.push(ConnRecord::Frame(h)),
            Event::Data {
                opcode,
                chunk,
                first,
                message_end,
                ..
            } => {
                let (kind, bytes) = if first {
                    assert!(message.is_none(), "a message started inside another");
                    message.insert((opcode, Vec::new()))
                } else {
                    message.as_mut().expect("a chunk outside any message")
                };
                assert_eq!(*kind, opcode, "the opcode changed inside a message");
                bytes.extend_from_slice(chunk);
                assert!(
                    bytes.len() as u64 <= cfg.max_message_len,
                    "message over the limit"
                );
                if message_end {
                    let (kind, bytes) = message.take().expect("the message just extended");
                    if kind == OpCode::TEXT && cfg.validate_utf8 {
                        assert!(
                            core::str::from_utf8(&bytes).is_ok(),
                            "invalid UTF-8 delivered"
                        );
                    }
                    run.records.push(ConnRecord::Message(kind, bytes));
                }
            }
            Event::Ping(p) => run.records.push(ConnRecord::Ping(p.to_vec())),
            Event::Pong(p) => run.records.push(ConnRecord::Pong(p.to_vec())),
            Event::Close(c) => run.records.push(ConnRecord::Close(
                c.map(|c| (c.code, c.reason.as_bytes().to_vec())),
            )),
        }
        conn.poll_transmit(&mut sent);
    }
    conn.poll_transmit(&mut sent);
    if run.error.is_some() {
        assert_eq!(conn.state(), State::Closed, "a failed connection is closed");
        let rest = buf.len() - start;
        let after = conn
            .recv(Instant::ZERO, &mut buf[start..])
            .expect("input after a failure is ignored");
        assert!(after.consumed == rest && after.event.is_none());
    }
    check_sent(&mut sent, client, &run, cfg.auto_pong);
    run
}

/// What a connection sent: its own control frames only, in the role's masking, pongs that
/// answer received pings in order, and at most one close, last (the failing close after an
/// error).
fn check_sent(sent: &mut [u8], client: bool, run: &ConnRun, auto_pong: bool) {
    let mut pings = run.records.iter().filter_map(|r| match r {
        ConnRecord::Ping(p) => Some(p.as_slice()),
        _ => None,
    });
    let mut close = None;
    for frame in frames(sent) {
        let frame = frame.expect("a connection sent a malformed frame");
        let h = frame.header;
        assert!(close.is_none(), "a frame after the close");
        assert!(h.fin && h.rsv == 0 && h.opcode.is_control());
        assert_eq!(h.mask.is_some(), client, "masking against the role");
        assert!(frame.payload.len() <= MAX_CONTROL_PAYLOAD);
        match h.opcode {
            OpCode::PONG => {
                assert!(auto_pong, "a pong nobody asked for");
                assert!(pings.any(|p| p == frame.payload), "a pong without its ping");
            }
            OpCode::CLOSE => {
                close = Some(CloseFrameRef::parse(frame.payload).expect("a malformed close sent"));
            }
            op => panic!("the connection sent {op:?} on its own"),
        }
    }
    if let Some(e) = run.error {
        let code = close.flatten().map(|c| c.code);
        assert_eq!(
            code,
            Some(e.close_code()),
            "the failing close was not sent last"
        );
    }
}

/// The script of a differential permessage-deflate run ([`check_deflate_agreement`]): the
/// agreed parameters, the cap, and the messages a client sends.
#[cfg(feature = "deflate")]
#[derive(Clone, Debug)]
pub struct DeflateScript {
    /// `client_no_context_takeover` as agreed (the receivers reset their context per message).
    pub client_no_context_takeover: bool,
    /// The sender resets its context per message (when it does not and the agreement says it
    /// must, the receivers lose the back-references: corrupt data).
    pub sender_resets: bool,
    /// `max_message_len` of both receivers, and the observer's inflated-message cap.
    pub cap: u64,
    /// The messages, in order.
    pub messages: Vec<ScriptMessage>,
    /// Read size of the endpoint.
    pub endpoint_read: usize,
    /// Feed size of the observer.
    pub observer_read: usize,
}

/// One message of a [`DeflateScript`].
#[cfg(feature = "deflate")]
#[derive(Clone, Debug)]
pub struct ScriptMessage {
    /// Text (else binary).
    pub text: bool,
    /// The payload before compression.
    pub payload: Vec<u8>,
    /// Compressed (RSV1 on the first frame).
    pub compress: bool,
    /// Frames it is cut into (at least 1).
    pub fragments: usize,
    /// Corrupts the compressed bytes: `(position, xor)`, the position taken modulo the length.
    pub corrupt: Option<(usize, u8)>,
}

#[cfg(feature = "deflate")]
impl DeflateScript {
    /// The client's frames (masked), as on the wire.
    pub fn wire(&self) -> Vec<u8> {
        use crate::deflate::Deflater;
        let mut tx = Deflater::new(6, 15, self.sender_resets);
        let mut wire = Vec::new();
        for (n, m) in self.messages.iter().enumerate() {
            let count = m.fragments.max(1);
            let step = m.payload.len().div_ceil(count).max(1);
            let mut parts: Vec<&[u8]> = m.payload.chunks(step).collect();
            parts.resize(count.max(parts.len()), &[]);
            let mut frames: Vec<Vec<u8>> = Vec::new();
            for (i, part) in parts.iter().enumerate() {
                let fin = i + 1 == parts.len();
                if m.compress {
                    let mut out = Vec::new();
                    tx.compress(part, fin, &mut out);
                    frames.push(out);
                } else {
                    frames.push(part.to_vec());
                }
            }
            if let (Some((at, xor)), true) = (m.corrupt, m.compress) {
                let total: usize = frames.iter().map(Vec::len).sum();
                if total > 0 {
                    let mut at = at % total;
                    for f in &mut frames {
                        if let Some(b) = f.get_mut(at) {
                            *b ^= xor.max(1);
                            break;
                        }
                        at -= f.len();
                    }
                }
            }
            let last = frames.len() - 1;
            for (i, payload) in frames.iter().enumerate() {
                let opcode = match (i, m.text) {
                    (0, true) => OpCode::TEXT,
                    (0, false) => OpCode::BINARY,
                    _ => OpCode::CONTINUATION,
                };
                let key = [n as u8, i as u8, 0x5a, 0xa5];
                let mut header =
                    FrameHeader::new(i == last, opcode, Some(key), payload.len() as u64);
                if i == 0 && m.compress {
                    header.rsv = RSV1;
                }
                crate::connection::write_frame(&mut wire, &header, payload);
            }
        }
        wire
    }
}

/// What one receiver made of a [`DeflateScript`]: the data messages it completed, the bytes
/// of the message it was in when it found its first violation, and that violation.
#[cfg(feature = "deflate")]
#[derive(Debug, Default, PartialEq, Eq)]
struct Received {
    messages: Vec<(OpCode, Vec<u8>)>,
    partial: Vec<u8>,
    error: Option<ProtocolError>,
}

/// Feeds the frames of `script` to an endpoint [`Connection`] (a server) and to an
/// [`Observer`] of the same connection, and asserts that they agree on every violation (the
/// same first [`ProtocolError`], so the same close code) and every inflated byte: the same
/// messages before it, and the bytes the endpoint delivered of the failing message are a prefix
/// of what the observer delivered of it. A script without a violation gives no anomaly.
/// Returns the violation both found.
///
/// [`Connection`]: crate::connection::Connection
/// [`Observer`]: crate::observe::Observer
#[cfg(feature = "deflate")]
pub fn check_deflate_agreement(script: &DeflateScript) -> Option<ProtocolError> {
    let wire = script.wire();
    let endpoint = deflate_endpoint(script, &wire);
    let observer = deflate_observer(script, &wire);
    assert_eq!(
        endpoint.error, observer.error,
        "the first violations differ"
    );
    assert_eq!(
        endpoint.messages, observer.messages,
        "inflated messages differ"
    );
    assert!(
        observer.partial.starts_with(&endpoint.partial),
        "the failing message's bytes differ"
    );
    if endpoint.error.is_none() {
        assert_eq!(endpoint.partial, observer.partial);
    }
    endpoint.error
}

#[cfg(feature = "deflate")]
fn deflate_params(script: &DeflateScript) -> crate::deflate::DeflateParams {
    crate::deflate::DeflateParams {
        client_no_context_takeover: script.client_no_context_takeover,
        ..crate::deflate::DeflateParams::default()
    }
}

#[cfg(feature = "deflate")]
fn deflate_endpoint(script: &DeflateScript, wire: &[u8]) -> Received {
    use crate::connection::{Config, Connection, DeflateOptions, Event};
    let cfg = Config {
        max_message_len: script.cap,
        max_frame_len: u64::MAX,
        ..Config::default()
    };
    let mut conn = Connection::server(cfg, Instant::ZERO);
    conn.enable_deflate(deflate_params(script), DeflateOptions::default());
    let mut got = Received::default();
    let mut buf = wire.to_vec();
    let read = script.endpoint_read.max(1);
    let (mut start, mut end) = (0, 0);
    let mut current: Option<OpCode> = None;
    loop {
        match conn.recv(Instant::ZERO, &mut buf[start..end]) {
            Err(e) => {
                got.error = Some(e);
                return got;
            }
            Ok(step) => {
                start += step.consumed;
                match step.event {
                    None => {
                        if end == buf.len() {
                            return got;
                        }
                        end = end.saturating_add(read).min(buf.len());
                    }
                    Some(Event::Data {
                        opcode,
                        chunk,
                        first,
                        message_end,
                        ..
                    }) => {
                        if first {
                            current = Some(opcode);
                            got.partial.clear();
                        }
                        got.partial.extend_from_slice(chunk);
                        if message_end {
                            let op = current.take().unwrap_or(opcode);
                            got.messages.push((op, core::mem::take(&mut got.partial)));
                        }
                    }
                    Some(_) => {}
                }
            }
        }
    }
}

#[cfg(feature = "deflate")]
fn deflate_observer(script: &DeflateScript, wire: &[u8]) -> Received {
    use crate::observe::{Anomaly, ChunkInfo, ObservedEvent, Observer, ObserverConfig};
    use crate::role::Direction::ClientToServer as C;
    let cfg = ObserverConfig {
        max_message_len: script.cap,
        max_inflated_message_len: script.cap,
        max_frame_len: u64::MAX,
        ..ObserverConfig::default()
    };
    let mut obs = Observer::after_deflate_handshake(cfg, deflate_params(script));
    let mut got = Received::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut budget = 64 + wire.len() * 16;
    for piece in wire.chunks(script.observer_read.max(1)) {
        pending.extend_from_slice(piece);
        let mut at = 0;
        loop {
            assert!(budget > 0, "the observer spins");
            budget -= 1;
            let step = obs.feed(C, &mut pending[at..]);
            at += step.consumed;
            let Some(event) = step.event else { break };
            match event {
                ObservedEvent::FrameData {
                    chunk,
                    info:
                        ChunkInfo {
                            opcode,
                            compressed,
                            first,
                            ..
                        },
                    ..
                } if !opcode.is_control() => {
                    if first {
                        got.partial.clear();
                    }
                    if !compressed {
                        got.partial.extend_from_slice(chunk);
                    }
                }
                ObservedEvent::Inflated { data, .. } => got.partial.extend_from_slice(data),
                ObservedEvent::Message { opcode, .. } if !opcode.is_control() => {
                    got.messages
                        .push((opcode, core::mem::take(&mut got.partial)));
                }
                ObservedEvent::Anomaly { anomaly, .. } => {
                    let e = match anomaly {
                        Anomaly::Protocol(e) => e,
                        other => panic!("unexpected anomaly {other:?}"),
                    };
                    got.error = Some(e);
                    return got;
                }
                _ => {}
            }
        }
        pending.drain(..at);
    }
    got
}

/// The `deflate_diff` target: `check_deflate_agreement` on a script read from `data`.
///
/// `data[0]`: bit 0 `client_no_context_takeover`, bit 1 the sender resets its context, bits
/// 2–3 the cap (64, 1000, 100 000 bytes, 16 MiB), bits 5–7 the read sizes. Then per message a
/// byte of flags (bit 0 text, bit 1 compressed, bits 2–3 fragments − 1, bit 4 corrupt, bit 5
/// the payload is zeros, `len × 1024` of them), a length byte `len`, the payload (`len` bytes,
/// or none for zeros) and with bit 4 two bytes (position, xor). Without feature `deflate` it
/// does nothing.
pub fn fuzz_deflate_diff(data: &[u8]) {
    #[cfg(feature = "deflate")]
    {
        let Some((&ctl, mut rest)) = data.split_first() else {
            return;
        };
        let mut script = DeflateScript {
            client_no_context_takeover: ctl & 1 != 0,
            sender_resets: ctl & 2 != 0,
            cap: [64, 1000, 100_000, 16 << 20][usize::from(ctl >> 2 & 3)],
            messages: Vec::new(),
            endpoint_read: SPLITS[usize::from(ctl >> 5)],
            observer_read: SPLITS[usize::from(ctl >> 5 ^ 5)],
        };
        while let [flags, len, tail @ ..] = rest {
            let zeros = flags & 32 != 0;
            let n = usize::from(*len);
            let (payload, tail) = if zeros {
                (alloc::vec![0u8; n * 1024], tail)
            } else {
                let n = n.min(tail.len());
                (tail[..n].to_vec(), &tail[n..])
            };
            let (corrupt, tail) = match (flags & 16 != 0, tail) {
                (true, [at, xor, tail @ ..]) => (Some((usize::from(*at), *xor)), tail),
                _ => (None, tail),
            };
            script.messages.push(ScriptMessage {
                text: flags & 1 != 0,
                payload,
                compress: flags & 2 != 0,
                fragments: 1 + usize::from(flags >> 2 & 3),
                corrupt,
            });
            rest = tail;
            if script.messages.len() >= 16 {
                break;
            }
        }
        check_deflate_agreement(&script);
    }
    #[cfg(not(feature = "deflate"))]
    let _ = data;
}
