//! `wscope parse FILE|-`: decode a file of raw WebSocket frames.
//!
//! Prints every frame (offset, FIN, RSV, opcode, mask key, payload length, payload preview,
//! close status and reason), every message (first opcode, length, UTF-8 validity across its
//! fragments; a control frame is a message of its own) and every anomaly (rule violations,
//! a truncated last frame) with its byte offset. `--json` prints one JSON object per line
//! with `"type": "frame" | "message" | "anomaly"`.
//!
//! Frames are cut with [`wscope_proto::decoder::frames`] (64-bit lengths read whole, masked
//! payloads unmasked) and the same bytes go through a reporting
//! [`wscope_proto::MessageDecoder`], so the rules checked are exactly the endpoint's. Input
//! never makes it panic: a truncated or unframeable tail is reported as an anomaly after
//! every complete frame before it.

use std::fs;
use std::io::{self, Read, Write};
use std::process::ExitCode;

use serde_json::{json, Map, Value};
use wscope::proto::close::CloseFrame;
use wscope::proto::decoder::{frames, FramesError};
use wscope::proto::frame::{FrameHeader, HeaderStatus};
use wscope::proto::{
    AssemblerConfig, DecoderConfig, MaskRule, MessageDecoder, MessageEvent, OpCode, ProtocolError,
};

/// How many payload bytes the human-readable output shows per frame.
const PREVIEW_LEN: usize = 32;

/// Which direction the frames travelled, i.e. which mask rule applies.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum Dir {
    /// Client to server: every frame must be masked.
    Client,
    /// Server to client: no frame may be masked.
    Server,
    /// Unknown: masked and unmasked frames are both accepted.
    #[default]
    Any,
}

impl Dir {
    const fn mask_rule(self) -> MaskRule {
        match self {
            Self::Client => MaskRule::Required,
            Self::Server => MaskRule::Forbidden,
            Self::Any => MaskRule::Any,
        }
    }
}

/// Arguments of `wscope parse`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// File of raw frames (no HTTP handshake), or `-` for standard input.
    pub(crate) file: String,
    /// Direction of the frames: decides which mask bit is a violation.
    #[arg(long, value_enum, default_value_t = Dir::Any)]
    pub(crate) direction: Dir,
    /// One JSON object per line (frames, messages, anomalies) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Counts of what [`parse_bytes`] printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Complete frames.
    pub(crate) frames: usize,
    /// Messages (data messages, finished or not, and control frames).
    pub(crate) messages: usize,
    /// Anomalies (violations and truncation).
    pub(crate) anomalies: usize,
}

/// Runs the subcommand: 0 when the input was read (anomalies included), 2 on I/O errors.
pub(crate) fn run(args: Args) -> ExitCode {
    let data = if args.file == "-" {
        let mut buf = Vec::new();
        io::stdin().lock().read_to_end(&mut buf).map(|_| buf)
    } else {
        fs::read(&args.file)
    };
    let data = match data {
        Ok(d) => d,
        Err(e) => {
            eprintln!("wscope parse: {}: {e}", args.file);
            return ExitCode::from(2);
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match parse_bytes(&data, args.direction, args.json, &mut out).and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wscope parse: {e}");
            ExitCode::from(2)
        }
    }
}

/// One complete frame, owned.
struct FrameRec {
    offset: usize,
    header: FrameHeader,
    header_len: usize,
    payload: Vec<u8>,
}

/// A data message being assembled.
struct MsgRec {
    offset: usize,
    opcode: OpCode,
    frames: usize,
    payload: Vec<u8>,
}

/// Where output goes: text or JSON lines.
struct Printer<'w, W: Write> {
    out: &'w mut W,
    json: bool,
    summary: Summary,
}

fn hex(bytes: &[u8]) -> String {
    use core::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A printable preview: the text if it is UTF-8, else hex; cut at [`PREVIEW_LEN`] bytes.
fn preview(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(PREVIEW_LEN)];
    let more = if bytes.len() > PREVIEW_LEN { "…" } else { "" };
    match core::str::from_utf8(cut) {
        Ok(s) => format!("{s:?}{more}"),
        Err(e) if e.error_len().is_none() && bytes.len() > PREVIEW_LEN => {
            // Cut inside a code point: show the valid prefix.
            let s = core::str::from_utf8(&cut[..e.valid_up_to()]).unwrap_or_default();
            format!("{s:?}…")
        }
        Err(_) => format!("0x{}{more}", hex(cut)),
    }
}

fn opcode_name(op: OpCode) -> String {
    op.name()
        .map_or_else(|| format!("reserved 0x{:x}", op.0), str::to_owned)
}

impl<W: Write> Printer<'_, W> {
    fn emit_json(&mut self, v: &Value) -> io::Result<()> {
        serde_json::to_writer(&mut *self.out, v).map_err(io::Error::from)?;
        self.out.write_all(b"\n")
    }

    fn frame(&mut self, f: &FrameRec, raw: &[u8]) -> io::Result<()> {
        self.summary.frames += 1;
        let h = &f.header;
        let key = h.mask.map(u32::from_be_bytes);
        let close = (h.opcode == OpCode::CLOSE).then(|| CloseFrame::parse(&f.payload));
        if self.json {
            let mut m = Map::new();
            m.insert("type".into(), json!("frame"));
            m.insert("offset".into(), json!(f.offset));
            m.insert("fin".into(), json!(h.fin));
            m.insert("rsv".into(), json!(h.rsv));
            m.insert("opcode".into(), json!(h.opcode.0));
            m.insert("masked".into(), json!(h.mask.is_some()));
            m.insert("mask_key".into(), json!(key));
            m.insert("header_len".into(), json!(f.header_len));
            m.insert("payload_len".into(), json!(h.payload_len));
            m.insert("payload".into(), json!(hex(&f.payload)));
            m.insert("raw_payload".into(), json!(hex(raw)));
            if let Some(close) = close {
                match close {
                    Ok(Some(c)) => {
                        m.insert("close_status".into(), json!(c.code.0));
                        m.insert("close_reason".into(), json!(c.reason));
                    }
                    Ok(None) => {
                        m.insert("close_status".into(), Value::Null);
                    }
                    Err(e) => {
                        m.insert("close_error".into(), json!(e.name()));
                    }
                }
            }
            return self.emit_json(&Value::Object(m));
        }
        let mask = key.map_or_else(|| "-".to_owned(), |k| format!("{k:08x}"));
        writeln!(
            self.out,
            "frame @{}: fin={} rsv={} opcode={} ({}) mask={} len={} payload={}",
            f.offset,
            u8::from(h.fin),
            h.rsv,
            h.opcode.0,
            opcode_name(h.opcode),
            mask,
            h.payload_len,
            preview(&f.payload),
        )?;
        match close {
            Some(Ok(Some(c))) => {
                writeln!(self.out, "  close: status {} reason {:?}", c.code, c.reason)
            }
            Some(Ok(None)) => writeln!(self.out, "  close: no status"),
            Some(Err(e)) => writeln!(self.out, "  close: malformed ({e})"),
            None => Ok(()),
        }
    }

    fn message(&mut self, m: &MsgRec, complete: bool) -> io::Result<()> {
        self.summary.messages += 1;
        let utf8 = (m.opcode == OpCode::TEXT).then(|| core::str::from_utf8(&m.payload).is_ok());
        if self.json {
            return self.emit_json(&json!({
                "type": "message",
                "offset": m.offset,
                "opcode": m.opcode.0,
                "frames": m.frames,
                "length": m.payload.len(),
                "complete": complete,
                "utf8_valid": utf8,
                "payload": hex(&m.payload),
            }));
        }
        let validity = match utf8 {
            Some(true) => ", valid UTF-8",
            Some(false) => ", INVALID UTF-8",
            None => "",
        };
        let unfinished = if complete { "" } else { " (unfinished)" };
        writeln!(
            self.out,
            "message @{}: {}, {} bytes in {} frame{}{}{}: {}",
            m.offset,
            opcode_name(m.opcode),
            m.payload.len(),
            m.frames,
            if m.frames == 1 { "" } else { "s" },
            validity,
            unfinished,
            preview(&m.payload),
        )
    }

    fn anomaly(&mut self, offset: usize, kind: &str, detail: &str, extra: Value) -> io::Result<()> {
        self.summary.anomalies += 1;
        if self.json {
            let mut v = json!({
                "type": "anomaly",
                "offset": offset,
                "kind": kind,
                "detail": detail,
            });
            if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
                m.extend(e);
            }
            return self.emit_json(&v);
        }
        writeln!(self.out, "anomaly @{offset}: {kind}: {detail}")
    }

    fn violation(&mut self, offset: usize, v: ProtocolError) -> io::Result<()> {
        let detail = v.to_string();
        self.anomaly(
            offset,
            v.name(),
            &detail,
            json!({ "close_code": v.close_code().0 }),
        )
    }
}

/// Decodes `data` and prints its frames, messages and anomalies to `out`.
pub(crate) fn parse_bytes(
    data: &[u8],
    dir: Dir,
    as_json: bool,
    out: &mut impl Write,
) -> io::Result<Summary> {
    let mut p = Printer {
        out,
        json: as_json,
        summary: Summary::default(),
    };

    // 1. Cut the buffer into complete frames (payloads unmasked in the copy).
    let mut work = data.to_vec();
    let mut recs = Vec::new();
    let mut tail_error = None;
    for item in frames(&mut work) {
        match item {
            Ok(f) => recs.push(FrameRec {
                offset: f.offset,
                header: f.header,
                header_len: f.header.header_len(),
                payload: f.payload.to_vec(),
            }),
            Err(e) => tail_error = Some(e),
        }
    }

    // 2. The same frames through the reporting message decoder, one frame at a time so that
    //    each violation is tied to the frame that caused it.
    let assembler = AssemblerConfig {
        max_message_len: u64::MAX,
        ..AssemblerConfig::default()
    };
    let mut dec = MessageDecoder::new(DecoderConfig::new(dir.mask_rule()).reporting(), assembler);
    let mut msg: Option<MsgRec> = None;
    for f in &recs {
        let end = f.offset + f.header_len + f.payload.len();
        let raw = &data[f.offset + f.header_len..end];
        p.frame(f, raw)?;
        let mut bytes = data[f.offset..end].to_vec();
        let mut at = 0;
        let mut violations = Vec::new();
        let mut data_end = false;
        let mut control = false;
        loop {
            let step = match dec.decode(&mut bytes[at..]) {
                Ok(s) => s,
                Err(e) => {
                    // Report mode only fails when framing is lost; frames() already cut the
                    // buffer, so this is reported and the decoder restarted.
                    violations.push(e);
                    dec = MessageDecoder::new(
                        DecoderConfig::new(dir.mask_rule()).reporting(),
                        assembler,
                    );
                    break;
                }
            };
            at += step.consumed;
            match step.event {
                None => break,
                Some(MessageEvent::Violation(v)) => violations.push(v),
                Some(MessageEvent::Data { message_end, .. }) => data_end |= message_end,
                Some(MessageEvent::Control(_)) => control = true,
                Some(MessageEvent::Frame(_) | MessageEvent::ControlData { .. }) => {}
            }
        }
        for v in violations {
            p.violation(f.offset, v)?;
        }
        let h = &f.header;
        if h.opcode.is_control() || control {
            p.message(
                &MsgRec {
                    offset: f.offset,
                    opcode: h.opcode,
                    frames: 1,
                    payload: f.payload.clone(),
                },
                true,
            )?;
            continue;
        }
        // A data frame (or a reserved data opcode): extend the open message or start one,
        // following the message decoder's own view of where messages start and end.
        if h.opcode != OpCode::CONTINUATION {
            if let Some(old) = msg.take() {
                // A new text/binary frame while a message was open: the old one ends unfinished.
                p.message(&old, false)?;
            }
        }
        let m = msg.get_or_insert_with(|| MsgRec {
            offset: f.offset,
            opcode: h.opcode,
            frames: 0,
            payload: Vec::new(),
        });
        m.frames += 1;
        m.payload.extend_from_slice(&f.payload);
        if h.fin || data_end {
            if let Some(done) = msg.take() {
                p.message(&done, true)?;
            }
        }
    }
    if let Some(open) = msg.take() {
        p.anomaly(
            open.offset,
            "unfinished_message",
            "the input ends before the message's final (FIN) frame",
            json!({}),
        )?;
        p.message(&open, false)?;
    }

    // 3. What stopped the frame cutter.
    match tail_error {
        Some(FramesError::Truncated { offset, have, need }) => {
            let rest = data.get(offset..).unwrap_or_default();
            let expected = match FrameHeader::parse(rest) {
                Ok(HeaderStatus::Complete(h)) => format!(
                    "payload of {} bytes after a {}-byte header",
                    h.payload_len,
                    h.header_len()
                ),
                Ok(HeaderStatus::Incomplete { needed }) => {
                    format!("frame header: at least {needed} more byte(s)")
                }
                Err(e) => e.to_string(),
            };
            let detail = format!(
                "input ends inside the frame at offset {offset}: {have} of {need} bytes present; expected {expected}"
            );
            p.anomaly(
                offset,
                "truncated",
                &detail,
                json!({ "have": have, "need": need, "expected": expected }),
            )?;
        }
        Some(e @ FramesError::LengthMsbSet { offset }) => {
            p.anomaly(
                offset,
                "length_msb_set",
                &format!("{e}; framing is lost, the rest of the input is not parsed"),
                json!({ "close_code": 1002 }),
            )?;
        }
        None => {}
    }
    if !as_json {
        let s = p.summary;
        writeln!(
            p.out,
            "{} frame(s), {} message(s), {} anomal{}",
            s.frames,
            s.messages,
            s.anomalies,
            if s.anomalies == 1 { "y" } else { "ies" }
        )?;
    }
    Ok(p.summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_json(data: &[u8], dir: Dir) -> (Vec<Value>, Summary) {
        let mut out = Vec::new();
        let s = parse_bytes(data, dir, true, &mut out).unwrap();
        let lines = String::from_utf8(out).unwrap();
        let v = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (v, s)
    }

    fn of_type<'a>(v: &'a [Value], t: &str) -> Vec<&'a Value> {
        v.iter().filter(|x| x["type"] == t).collect()
    }

    #[test]
    fn rfc_masked_hello_is_unmasked() {
        // RFC 6455 section 5.7: a masked "Hello" from a client.
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (v, s) = run_json(&wire, Dir::Client);
        assert_eq!(
            s,
            Summary {
                frames: 1,
                messages: 1,
                anomalies: 0
            }
        );
        let f = of_type(&v, "frame")[0];
        assert_eq!(f["masked"], true);
        assert_eq!(f["mask_key"], 0x37fa_213d_u32);
        assert_eq!(f["payload"], hex(b"Hello"));
        assert_eq!(f["raw_payload"], "7f9f4d5158");
        let m = of_type(&v, "message")[0];
        assert_eq!(m["utf8_valid"], true);
        assert_eq!(m["opcode"], 1);
    }

    #[test]
    fn server_direction_flags_masked_frame() {
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (v, _) = run_json(&wire, Dir::Server);
        let a = of_type(&v, "anomaly");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0]["kind"], "masked_server_frame");
        assert_eq!(a[0]["offset"], 0);
    }

    #[test]
    fn sixty_four_bit_length() {
        let mut wire = vec![0x82, 127];
        wire.extend_from_slice(&70_000u64.to_be_bytes());
        wire.extend(core::iter::repeat_n(0xab, 70_000));
        wire.extend_from_slice(&[0x89, 0x00]);
        let (v, s) = run_json(&wire, Dir::Any);
        assert_eq!(s.frames, 2);
        assert_eq!(s.anomalies, 0);
        let f = of_type(&v, "frame");
        assert_eq!(f[0]["payload_len"], 70_000);
        assert_eq!(f[0]["header_len"], 10);
        assert_eq!(f[1]["offset"], 70_010);
        assert_eq!(f[1]["opcode"], 9);
    }

    #[test]
    fn utf8_split_across_fragments_and_ping_between() {
        // "é" = c3 a9 split over two fragments, a ping in between.
        let wire = [0x01, 0x01, 0xc3, 0x89, 0x01, b'p', 0x80, 0x01, 0xa9];
        let (v, s) = run_json(&wire, Dir::Any);
        assert_eq!(
            s,
            Summary {
                frames: 3,
                messages: 2,
                anomalies: 0
            }
        );
        let m = of_type(&v, "message");
        assert_eq!(m[0]["opcode"], 9);
        assert_eq!(m[1]["opcode"], 1);
        assert_eq!(m[1]["frames"], 2);
        assert_eq!(m[1]["utf8_valid"], true);
        assert_eq!(m[1]["payload"], "c3a9");
    }

    #[test]
    fn truncated_keeps_complete_frames() {
        let wire = [0x81, 0x02, b'h', b'i', 0x82, 0x05, 1, 2];
        let (v, s) = run_json(&wire, Dir::Any);
        assert_eq!(s.frames, 1);
        let a = of_type(&v, "anomaly");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0]["kind"], "truncated");
        assert_eq!(a[0]["offset"], 4);
        assert_eq!(a[0]["have"], 4);
        assert_eq!(a[0]["need"], 7);
    }

    #[test]
    fn truncated_header_and_every_prefix_is_safe() {
        let mut wire = vec![0x81, 0xfe, 0x01, 0x00, 1, 2, 3, 4];
        wire.extend(core::iter::repeat_n(b'x', 256));
        wire.extend_from_slice(&[0x88, 0x05, 0x03, 0xe8, b'b', b'y', b'e']);
        for cut in 0..=wire.len() {
            let mut out = Vec::new();
            parse_bytes(&wire[..cut], Dir::Any, cut % 2 == 0, &mut out).unwrap();
        }
        let (v, _) = run_json(&wire[..3], Dir::Any);
        let a = of_type(&v, "anomaly");
        assert_eq!(a[0]["kind"], "truncated");
        assert!(a[0]["expected"].as_str().unwrap().contains("header"));
    }

    #[test]
    fn close_status_and_reason() {
        let wire = [0x88, 0x05, 0x03, 0xe8, b'b', b'y', b'e'];
        let (v, _) = run_json(&wire, Dir::Server);
        let f = of_type(&v, "frame")[0];
        assert_eq!(f["close_status"], 1000);
        assert_eq!(f["close_reason"], "bye");
        let mut out = Vec::new();
        parse_bytes(&wire, Dir::Server, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("close: status 1000"), "{text}");
    }

    #[test]
    fn violations_are_reported_with_offsets() {
        // Reserved opcode 3, then a continuation with no message, then RSV bits on a text frame.
        let wire = [0x83, 0x00, 0x80, 0x00, 0xc1, 0x00];
        let (v, _) = run_json(&wire, Dir::Any);
        let kinds: Vec<(u64, String)> = of_type(&v, "anomaly")
            .iter()
            .map(|a| {
                (
                    a["offset"].as_u64().unwrap(),
                    a["kind"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert!(
            kinds.contains(&(0, "reserved_opcode".to_owned())),
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&(2, "unexpected_continuation".to_owned())),
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&(4, "reserved_bits_set".to_owned())),
            "{kinds:?}"
        );
    }

    #[test]
    fn invalid_utf8_and_unfinished_message() {
        let wire = [0x81, 0x03, 0xed, 0xa0, 0x80, 0x01, 0x01, b'a'];
        let (v, _) = run_json(&wire, Dir::Any);
        let m = of_type(&v, "message");
        assert_eq!(m[0]["utf8_valid"], false);
        assert_eq!(m[1]["complete"], false);
        let a = of_type(&v, "anomaly");
        assert!(a.iter().any(|x| x["kind"] == "unfinished_message"));
    }

    #[test]
    fn msb_length_is_reported() {
        let mut wire = vec![0x82, 127];
        wire.extend_from_slice(&(1u64 << 63).to_be_bytes());
        let (v, s) = run_json(&wire, Dir::Any);
        assert_eq!(s.frames, 0);
        assert_eq!(of_type(&v, "anomaly")[0]["kind"], "length_msb_set");
    }
}
