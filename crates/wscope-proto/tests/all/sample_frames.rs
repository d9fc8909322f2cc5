//! `examples/sample-frames.bin` is what its generator writes, and decodes to what the README
//! says it holds.

use wscope_proto::close::{CloseCode, CloseFrame};
use wscope_proto::decoder::{frames, DecoderConfig, MaskRule};
use wscope_proto::frame::{LengthForm, OpCode};
use wscope_proto::message::AssemblerConfig;

use crate::common::{run_message_decoder, Delivered};

#[path = "../../examples/support/sample_frames.rs"]
mod generator;

fn committed() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample-frames.bin");
    std::fs::read(path).expect("the sample file is committed")
}

#[test]
fn committed_file_matches_the_generator() {
    assert!(
        committed() == generator::sample_frames(),
        "examples/sample-frames.bin is stale: run \
         `cargo run -p wscope-proto --example gen_sample_frames -- \
         crates/wscope-proto/examples/sample-frames.bin`"
    );
}

#[test]
fn sample_holds_the_documented_frames() {
    let mut wire = committed();
    let parsed: Vec<_> = frames(&mut wire)
        .map(|f| {
            let f = f.expect("whole frames");
            (
                f.header.fin,
                f.header.opcode,
                f.header.mask.is_some(),
                f.header.length_form,
            )
        })
        .collect();
    assert_eq!(
        parsed,
        [
            (true, OpCode::TEXT, true, LengthForm::Short),
            (false, OpCode::TEXT, true, LengthForm::Short),
            (true, OpCode::PING, true, LengthForm::Short),
            (true, OpCode::CONTINUATION, true, LengthForm::Short),
            (true, OpCode::BINARY, true, LengthForm::Extended64),
            (true, OpCode::CLOSE, true, LengthForm::Short),
        ]
    );
}

#[test]
fn sample_decodes_to_the_documented_messages() {
    let wire = committed();
    // A client's stream: every frame masked, so the strict client-to-server rule accepts it.
    let run = run_message_decoder(
        DecoderConfig::new(MaskRule::Required),
        AssemblerConfig::default(),
        &wire,
        &[4096],
    );
    assert_eq!(run.error, None);
    assert!(run.violations.is_empty());
    let close = match run.delivered.last() {
        Some(Delivered::Control {
            opcode: OpCode::CLOSE,
            payload,
        }) => payload.clone(),
        other => panic!("last is not a close: {other:?}"),
    };
    let close = CloseFrame::parse(&close).unwrap().unwrap();
    assert_eq!((close.code, close.reason), (CloseCode::NORMAL, "bye"));
    assert_eq!(
        run.delivered[..4],
        [
            Delivered::Message {
                opcode: OpCode::TEXT,
                data: b"Hello, wscope!".to_vec()
            },
            Delivered::Control {
                opcode: OpCode::PING,
                payload: b"are you there?".to_vec()
            },
            Delivered::Message {
                opcode: OpCode::TEXT,
                data: "Hello, wörld".as_bytes().to_vec()
            },
            Delivered::Message {
                opcode: OpCode::BINARY,
                data: generator::binary_payload()
            },
        ]
    );
    assert_eq!(generator::binary_payload().len(), generator::BINARY_LEN);
}
