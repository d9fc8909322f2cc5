//! Decodes a file of WebSocket frames and prints every frame, then every message.
//!
//! ```text
//! cargo run -p wscope-proto --example parse_frames -- crates/wscope-proto/examples/sample-frames.bin
//! cargo run -p wscope-proto --example parse_frames -- FILE [any|client|server]
//! ```
//!
//! The file is the bytes of one direction of a connection after the handshake. The second
//! argument is that direction: `client` frames must be masked, `server` frames must not be,
//! and `any` (the default) accepts both. The file is fed to the decoders in 4 KiB reads, as a
//! socket would deliver it, through a [`VecInput`]. Both passes run in report mode, so a broken
//! rule is printed as a violation (with the close code an endpoint would send) and decoding
//! goes on wherever framing is still known.

use std::process::ExitCode;

use wscope_proto::close::CloseFrame;
use wscope_proto::decoder::{DecoderConfig, FrameDecoder, FrameEvent, MaskRule};
use wscope_proto::frame::{FrameHeader, LengthForm, OpCode};
use wscope_proto::input::{Input, VecInput};
use wscope_proto::message::{AssemblerConfig, MessageDecoder, MessageEvent};
use wscope_proto::ProtocolError;

/// The size of each simulated read.
const READ: usize = 4096;
/// How many payload bytes are shown per frame or message.
const PREVIEW: usize = 48;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(path), rule) = (args.next(), args.next()) else {
        eprintln!("usage: parse_frames FILE [any|client|server]");
        return ExitCode::from(2);
    };
    let rule = match rule.as_deref() {
        None | Some("any") => MaskRule::Any,
        Some("client") => MaskRule::Required,
        Some("server") => MaskRule::Forbidden,
        Some(other) => {
            eprintln!("unknown direction {other:?}: any, client or server");
            return ExitCode::from(2);
        }
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{path}: {} bytes", bytes.len());
    let cfg = DecoderConfig::new(rule).reporting();

    println!("\n== frames");
    let frames_ok = print_frames(cfg, &bytes);
    println!("\n== messages");
    let messages_ok = print_messages(cfg, &bytes);
    if frames_ok && messages_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Feeds `bytes` to `step` in reads of [`READ`] bytes; `step` decodes from the input and says
/// whether to call again (an event came out) or wait for the next read.
fn feed(
    bytes: &[u8],
    mut step: impl FnMut(&mut VecInput) -> Result<bool, ProtocolError>,
) -> Result<(), ProtocolError> {
    let mut input = VecInput::new();
    for read in bytes.chunks(READ) {
        input.extend_from_slice(read);
        while step(&mut input)? {}
    }
    // Once more with no new bytes: an event that needs no input may still be due.
    while step(&mut input)? {}
    Ok(())
}

/// Pass 1: the frame layer. One line per frame, plus violations.
fn print_frames(cfg: DecoderConfig, bytes: &[u8]) -> bool {
    let mut dec = FrameDecoder::new(cfg);
    let mut offset = 0usize; // bytes consumed so far, to tell where each frame starts
    let mut count = 0usize;
    let mut current: Option<(usize, FrameHeader, Vec<u8>)> = None;
    let result = feed(bytes, |input| {
        let step = dec.decode(input.buf_mut())?;
        let consumed = step.consumed;
        let more = match step.event {
            None => false,
            Some(FrameEvent::Violation(v)) => {
                println!(
                    "  violation: {v} [{}] (close {})",
                    v.name(),
                    v.close_code().0
                );
                true
            }
            Some(FrameEvent::Header(h)) => {
                let start = offset + consumed - h.header_len();
                current = Some((start, h, Vec::new()));
                true
            }
            Some(FrameEvent::Payload { chunk, last, .. }) => {
                if let Some((start, h, preview)) = current.as_mut() {
                    let room = PREVIEW.saturating_sub(preview.len());
                    preview.extend_from_slice(&chunk[..room.min(chunk.len())]);
                    if last {
                        println!("  #{count} @{start}: {}", describe_header(h));
                        println!("      payload: {}", show(preview, h.payload_len));
                        count += 1;
                        current = None;
                    }
                }
                true
            }
        };
        input.consume(consumed);
        offset += consumed;
        Ok(more)
    });
    if let Some((start, h, _)) = &current {
        let missing = dec.payload_remaining();
        println!("  #{count} @{start}: {}", describe_header(h));
        println!(
            "      payload: cut short, {} of {} bytes present",
            h.payload_len - missing,
            h.payload_len
        );
    }
    finish(
        "frames",
        count,
        result,
        current.is_some() || !dec.is_at_boundary(),
    )
}

/// Pass 2: the message layer. One line per message and per control frame.
fn print_messages(cfg: DecoderConfig, bytes: &[u8]) -> bool {
    let mut dec = MessageDecoder::new(
        cfg,
        AssemblerConfig {
            control_chunks: false,
            ..AssemblerConfig::default()
        },
    );
    let mut count = 0usize;
    // The message being received: opcode, frames, length, preview.
    let mut open: Option<(OpCode, usize, u64, Vec<u8>)> = None;
    let result = feed(bytes, |input| {
        let step = dec.decode(input.buf_mut())?;
        let consumed = step.consumed;
        let more = match step.event {
            None => false,
            Some(MessageEvent::Frame(_)) | Some(MessageEvent::ControlData { .. }) => true,
            Some(MessageEvent::Violation(v)) => {
                println!(
                    "  violation: {v} [{}] (close {})",
                    v.name(),
                    v.close_code().0
                );
                true
            }
            Some(MessageEvent::Data {
                opcode,
                chunk,
                first,
                frame_end,
                message_end,
                ..
            }) => {
                if first {
                    open = Some((opcode, 0, 0, Vec::new()));
                }
                if let Some((opcode, frames, len, preview)) = open.as_mut() {
                    *len += chunk.len() as u64;
                    *frames += usize::from(frame_end);
                    let room = PREVIEW.saturating_sub(preview.len());
                    preview.extend_from_slice(&chunk[..room.min(chunk.len())]);
                    if message_end {
                        let frames_word = if *frames == 1 { "frame" } else { "frames" };
                        println!(
                            "  message #{count}: {opcode}, {len} bytes in {frames} {frames_word}: {}",
                            show(preview, *len)
                        );
                        count += 1;
                        open = None;
                    }
                }
                true
            }
            Some(MessageEvent::Control(c)) => {
                if c.opcode == OpCode::CLOSE {
                    match c.close() {
                        Ok(Some(CloseFrame { code, reason })) => {
                            println!("  control: close {code} {reason:?}")
                        }
                        Ok(None) => println!("  control: close without status"),
                        Err(e) => println!("  control: close, malformed: {e}"),
                    }
                } else {
                    let len = c.payload.len() as u64;
                    println!(
                        "  control: {}, {len} bytes: {}",
                        c.opcode,
                        show(c.payload, len)
                    );
                }
                true
            }
        };
        input.consume(consumed);
        Ok(more)
    });
    finish("messages", count, result, open.is_some())
}

/// The closing line of a pass; `false` when framing was lost.
fn finish(what: &str, count: usize, result: Result<(), ProtocolError>, cut_short: bool) -> bool {
    // "1 frame", "2 frames".
    let what = if count == 1 {
        what.trim_end_matches('s')
    } else {
        what
    };
    match result {
        Ok(()) if cut_short => {
            println!("  {count} complete {what}; the file ends inside one more");
            true
        }
        Ok(()) => {
            println!("  {count} {what}");
            true
        }
        Err(e) => {
            println!(
                "  {count} {what}, then framing is lost: {e} (close {})",
                e.close_code().0
            );
            false
        }
    }
}

fn describe_header(h: &FrameHeader) -> String {
    let form = match h.length_form {
        LengthForm::Short => "7-bit",
        LengthForm::Extended16 => "16-bit",
        LengthForm::Extended64 => "64-bit",
    };
    let mask = match h.mask {
        Some(k) => format!(
            "masked key={:02x}{:02x}{:02x}{:02x}",
            k[0], k[1], k[2], k[3]
        ),
        None => "unmasked".to_owned(),
    };
    format!(
        "fin={} rsv={:03b} opcode={} {mask} len={} ({form} length)",
        u8::from(h.fin),
        h.rsv,
        h.opcode,
        h.payload_len
    )
}

/// The first bytes of a payload: as text when they are UTF-8 (an incomplete code point at the
/// cut is dropped), else as hex.
fn show(preview: &[u8], total: u64) -> String {
    let text = match core::str::from_utf8(preview) {
        Ok(s) => Some(s),
        Err(e) if e.error_len().is_none() => core::str::from_utf8(&preview[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    let shown = text.map_or(0, str::len) as u64;
    let more = if total > shown { "…" } else { "" };
    match text {
        Some(s) if !s.chars().any(|c| c.is_control()) => format!("{s:?}{more}"),
        _ => {
            let hex: Vec<String> = preview
                .iter()
                .take(16)
                .map(|b| format!("{b:02x}"))
                .collect();
            let more = if total > 16 { " …" } else { "" };
            format!("[{}{more}]", hex.join(" "))
        }
    }
}
