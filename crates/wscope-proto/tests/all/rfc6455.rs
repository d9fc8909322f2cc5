//! Golden tests: the example frames of RFC 6455 section 5.7, byte for byte, through every way
//! the crate reads and writes frames.

use wscope_proto::close::{CloseCode, CloseFrameRef};
use wscope_proto::decoder::{frames, DecoderConfig, MaskRule};
use wscope_proto::frame::{FrameHeader, HeaderStatus, LengthForm, OpCode, MAX_HEADER_LEN};
use wscope_proto::mask::apply_mask;
use wscope_proto::message::AssemblerConfig;

use crate::common::{run_frame_decoder, run_message_decoder, Delivered};

/// "A single-frame unmasked text message (contains "Hello")".
const UNMASKED_HELLO: [u8; 7] = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
/// "A single-frame masked text message (contains "Hello")".
const MASKED_HELLO: [u8; 11] = [
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
/// "A fragmented unmasked text message": "Hel" then "lo".
const FRAGMENTED_HEL: [u8; 5] = [0x01, 0x03, 0x48, 0x65, 0x6c];
const FRAGMENTED_LO: [u8; 4] = [0x80, 0x02, 0x6c, 0x6f];
/// "Unmasked Ping request and masked Ping response" (the response is a pong).
const UNMASKED_PING: [u8; 7] = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
const MASKED_PONG: [u8; 11] = [
    0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
/// "256 bytes binary message in a single unmasked frame": the header.
const BINARY_256_HEADER: [u8; 4] = [0x82, 0x7e, 0x01, 0x00];
/// "64KiB binary message in a single unmasked frame": the header.
const BINARY_64K_HEADER: [u8; 10] = [0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];
/// The masking key of the masked examples.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn header(bytes: &[u8]) -> FrameHeader {
    match FrameHeader::parse(bytes) {
        Ok(HeaderStatus::Complete(h)) => h,
        other => panic!("{bytes:x?}: {other:?}"),
    }
}

fn emit(h: &FrameHeader, payload: &[u8]) -> Vec<u8> {
    let mut out = [0u8; MAX_HEADER_LEN];
    let n = h.emit(&mut out);
    let mut wire = out[..n].to_vec();
    let start = wire.len();
    wire.extend_from_slice(payload);
    if let Some(key) = h.mask {
        apply_mask(&mut wire[start..], key, 0);
    }
    wire
}

fn binary(len: usize, header: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
    let mut wire = header.to_vec();
    wire.extend_from_slice(&payload);
    (wire, payload)
}

#[test]
fn headers_parse_as_the_rfc_describes() {
    let h = header(&UNMASKED_HELLO);
    assert_eq!(
        (h.fin, h.rsv, h.opcode, h.mask, h.payload_len),
        (true, 0, OpCode::TEXT, None, 5)
    );
    let h = header(&MASKED_HELLO);
    assert_eq!(
        (h.opcode, h.mask, h.payload_len, h.header_len()),
        (OpCode::TEXT, Some(KEY), 5, 6)
    );
    let h = header(&FRAGMENTED_HEL);
    assert_eq!((h.fin, h.opcode, h.payload_len), (false, OpCode::TEXT, 3));
    let h = header(&FRAGMENTED_LO);
    assert_eq!(
        (h.fin, h.opcode, h.payload_len),
        (true, OpCode::CONTINUATION, 2)
    );
    let h = header(&UNMASKED_PING);
    assert_eq!((h.opcode, h.mask, h.payload_len), (OpCode::PING, None, 5));
    let h = header(&MASKED_PONG);
    assert_eq!(
        (h.opcode, h.mask, h.payload_len),
        (OpCode::PONG, Some(KEY), 5)
    );
    let h = header(&BINARY_256_HEADER);
    assert_eq!(
        (h.opcode, h.payload_len, h.length_form, h.non_minimal),
        (OpCode::BINARY, 256, LengthForm::Extended16, false)
    );
    let h = header(&BINARY_64K_HEADER);
    assert_eq!(
        (h.opcode, h.payload_len, h.length_form, h.non_minimal),
        (OpCode::BINARY, 65536, LengthForm::Extended64, false)
    );
}

#[test]
fn the_examples_are_what_the_crate_emits() {
    let cases: [(&[u8], FrameHeader, &[u8]); 6] = [
        (
            &UNMASKED_HELLO,
            FrameHeader::new(true, OpCode::TEXT, None, 5),
            b"Hello",
        ),
        (
            &MASKED_HELLO,
            FrameHeader::new(true, OpCode::TEXT, Some(KEY), 5),
            b"Hello",
        ),
        (
            &FRAGMENTED_HEL,
            FrameHeader::new(false, OpCode::TEXT, None, 3),
            b"Hel",
        ),
        (
            &FRAGMENTED_LO,
            FrameHeader::new(true, OpCode::CONTINUATION, None, 2),
            b"lo",
        ),
        (
            &UNMASKED_PING,
            FrameHeader::new(true, OpCode::PING, None, 5),
            b"Hello",
        ),
        (
            &MASKED_PONG,
            FrameHeader::new(true, OpCode::PONG, Some(KEY), 5),
            b"Hello",
        ),
    ];
    for (wire, h, payload) in cases {
        assert_eq!(emit(&h, payload), wire, "{h:?}");
    }
    let (wire, payload) = binary(256, &BINARY_256_HEADER);
    assert_eq!(
        emit(&FrameHeader::new(true, OpCode::BINARY, None, 256), &payload),
        wire
    );
    let (wire, payload) = binary(65536, &BINARY_64K_HEADER);
    assert_eq!(
        emit(
            &FrameHeader::new(true, OpCode::BINARY, None, 65536),
            &payload
        ),
        wire
    );
}

#[test]
fn masking_hello_gives_the_rfc_bytes() {
    let mut payload = *b"Hello";
    apply_mask(&mut payload, KEY, 0);
    assert_eq!(payload, MASKED_HELLO[6..]);
    apply_mask(&mut payload, KEY, 0);
    assert_eq!(&payload, b"Hello");
}

#[test]
fn all_examples_in_one_stream_decode_in_any_reads() {
    // Client-to-server frames are masked and server-to-client ones are not, so the examples
    // together form a stream of unknown direction: MaskRule::Any.
    let (big256, payload256) = binary(256, &BINARY_256_HEADER);
    let (big64k, payload64k) = binary(65536, &BINARY_64K_HEADER);
    let mut wire = Vec::new();
    for part in [
        &UNMASKED_HELLO[..],
        &MASKED_HELLO,
        &FRAGMENTED_HEL,
        &UNMASKED_PING,
        &FRAGMENTED_LO,
        &MASKED_PONG,
        &big256,
        &big64k,
    ] {
        wire.extend_from_slice(part);
    }
    let expected_payloads: [&[u8]; 8] = [
        b"Hello",
        b"Hello",
        b"Hel",
        b"Hello",
        b"lo",
        b"Hello",
        &payload256,
        &payload64k,
    ];
    for reads in [&[wire.len()][..], &[1], &[2, 3], &[13], &[7, 4096]] {
        let run = run_frame_decoder(DecoderConfig::new(MaskRule::Any), &wire, reads);
        assert_eq!(run.error, None);
        let payloads: Vec<&[u8]> = run.frames.iter().map(|(_, p)| p.as_slice()).collect();
        assert_eq!(payloads, expected_payloads, "reads {reads:?}");

        let messages = run_message_decoder(
            DecoderConfig::new(MaskRule::Any),
            AssemblerConfig::default(),
            &wire,
            reads,
        );
        assert_eq!(messages.error, None);
        assert_eq!(
            messages.delivered,
            [
                Delivered::Message {
                    opcode: OpCode::TEXT,
                    data: b"Hello".to_vec()
                },
                Delivered::Message {
                    opcode: OpCode::TEXT,
                    data: b"Hello".to_vec()
                },
                // The ping arrives between the fragments and is delivered before the message.
                Delivered::Control {
                    opcode: OpCode::PING,
                    payload: b"Hello".to_vec()
                },
                Delivered::Message {
                    opcode: OpCode::TEXT,
                    data: b"Hello".to_vec()
                },
                Delivered::Control {
                    opcode: OpCode::PONG,
                    payload: b"Hello".to_vec()
                },
                Delivered::Message {
                    opcode: OpCode::BINARY,
                    data: payload256.clone()
                },
                Delivered::Message {
                    opcode: OpCode::BINARY,
                    data: payload64k.clone()
                },
            ],
            "reads {reads:?}"
        );
    }

    let mut buf = wire.clone();
    let offsets: Vec<usize> = frames(&mut buf).map(|f| f.unwrap().offset).collect();
    assert_eq!(offsets, [0, 7, 18, 23, 30, 34, 45, 45 + 260]);
}

#[test]
fn the_mask_rule_is_per_direction() {
    // The masked examples are client frames: a server refuses them unmasked and vice versa.
    let run = run_frame_decoder(
        DecoderConfig::new(MaskRule::Required),
        &UNMASKED_HELLO,
        &[7],
    );
    assert_eq!(
        run.error,
        Some(wscope_proto::ProtocolError::UnmaskedClientFrame)
    );
    let run = run_frame_decoder(
        DecoderConfig::new(MaskRule::Forbidden),
        &MASKED_HELLO,
        &[11],
    );
    assert_eq!(
        run.error,
        Some(wscope_proto::ProtocolError::MaskedServerFrame)
    );
    let run = run_frame_decoder(DecoderConfig::new(MaskRule::Required), &MASKED_HELLO, &[11]);
    assert_eq!(run.frames[0].1, b"Hello");
}

#[test]
fn close_frame_with_status_and_reason() {
    // Section 5.5.1: a 2-byte status in network byte order, then UTF-8.
    let payload = [0x03, 0xe8, b'b', b'y', b'e'];
    let close = CloseFrameRef::parse(&payload).unwrap().unwrap();
    assert_eq!((close.code, close.reason), (CloseCode::NORMAL, "bye"));
    let mut out = [0u8; 125];
    let n = close.emit(&mut out);
    assert_eq!(&out[..n], payload);
}
