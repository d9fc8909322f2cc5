//! `wscope parse FILE|-`: decode a file of raw WebSocket frames.
//!
//! Prints every frame (offset, FIN, RSV, opcode, mask key, payload length, payload preview,
//! close status and reason), every message (first opcode, length, UTF-8 validity across its
//! fragments; a control frame is a message of its own) and every anomaly (rule violations,
//! a truncated last frame) with its byte offset. `--json` prints one JSON object per line
//! with `"type": "frame" | "message" | "anomaly"`.
//!
//! The reading is the core's: [`wscope::proto::dissect::Dissector`] cuts the stream into
//! frames (64-bit lengths read whole, masked payloads unmasked), messages and violations (with
//! the close codes an endpoint would send), under exactly the endpoint's rules. This module
//! only formats what it yields. The input is streamed: each frame is printed as soon as it is
//! complete, then its violations and the messages it ends, so memory stays bounded whatever
//! the input (a read buffer, and for `--json` the first 4 MiB of a frame's and a message's
//! payload: longer payloads are cut in the output and marked `"payload_truncated": true`).
//! Input never makes it panic: a truncated or unframeable tail is reported as an anomaly after
//! every complete frame before it. A pcap or pcapng file is refused with a pointer to
//! `wscope inspect`.

use std::fs;
use std::io::{self, Read, Write};
use std::process::ExitCode;

use serde_json::{json, Map, Value};
use wscope::proto::close::CloseFrameRef as CloseFrame;
use wscope::proto::decoder::FramesError;
use wscope::proto::dissect::{
    Dissected, Dissector, MessageInfo, TruncatedFrame, Unfinished, Violation,
};
use wscope::proto::frame::FrameHeader;
use wscope::proto::mask::apply_mask;
use wscope::proto::{MaskRule, OpCode, ProtocolError};

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
    pub(crate) const fn mask_rule(self) -> MaskRule {
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

/// Runs the subcommand: 0 when the input was read (anomalies included), 2 on I/O errors and
/// for a pcap or pcapng capture (which `wscope inspect` reads).
pub(crate) fn run(args: Args) -> ExitCode {
    let input: io::Result<Box<dyn Read>> = if args.file == "-" {
        Ok(Box::new(io::stdin().lock()))
    } else {
        fs::File::open(&args.file).map(|f| Box::new(f) as Box<dyn Read>)
    };
    let mut input = match input {
        Ok(i) => i,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("wscope parse: {}: the file does not exist", args.file);
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("wscope parse: {}: {e}", args.file);
            return ExitCode::from(2);
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = parse_stream(&mut input, args.direction, args.json, &mut out);
    match result.and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wscope parse: {}: {e}", args.file);
            ExitCode::from(2)
        }
    }
}

/// Payload bytes kept per frame and per message for the JSON output (its `payload` fields);
/// beyond this the hex is cut and `"payload_truncated": true` says so. This and the read
/// buffer are all the memory a run holds, whatever the input: frames are cut and printed as
/// they stream in.
const JSON_KEEP: usize = 4 << 20;

/// Payload bytes kept for the text output: enough for the preview and a close frame's status
/// and reason.
const TEXT_KEEP: usize = 1024;

/// Bytes read at a time.
const READ_LEN: usize = 64 << 10;

/// The first bytes of a payload or message (up to a cap) and its whole length.
#[derive(Default)]
struct Kept {
    bytes: Vec<u8>,
    len: u64,
}

impl Kept {
    fn push(&mut self, chunk: &[u8], cap: usize) {
        let room = cap.saturating_sub(self.bytes.len());
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        self.len = self.len.saturating_add(chunk.len() as u64);
    }

    fn truncated(&self) -> bool {
        (self.bytes.len() as u64) < self.len
    }
}

/// One frame: its header and its (unmasked) payload, as much as is kept.
struct FrameRec {
    offset: u64,
    header: FrameHeader,
    header_len: usize,
    payload: Kept,
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

/// A printable preview of a payload of `len` bytes whose first bytes are `head`: the text if
/// it is UTF-8, else hex; cut at [`PREVIEW_LEN`] bytes.
fn preview(head: &[u8], len: u64) -> String {
    let cut = &head[..head.len().min(PREVIEW_LEN)];
    let longer = len > PREVIEW_LEN as u64;
    let more = if longer { "…" } else { "" };
    match core::str::from_utf8(cut) {
        Ok(s) => format!("{s:?}{more}"),
        Err(e) if e.error_len().is_none() && longer => {
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

/// A close frame's status and reason, or why it is malformed (from the dissector).
type Close<'a> = Option<Result<Option<CloseFrame<'a>>, ProtocolError>>;

impl<W: Write> Printer<'_, W> {
    fn emit_json(&mut self, v: &Value) -> io::Result<()> {
        serde_json::to_writer(&mut *self.out, v).map_err(io::Error::from)?;
        self.out.write_all(b"\n")
    }

    fn frame(&mut self, f: &FrameRec, close: Close<'_>) -> io::Result<()> {
        self.summary.frames += 1;
        let h = &f.header;
        let key = h.mask.map(u32::from_be_bytes);
        let payload = &f.payload.bytes;
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
            m.insert("payload".into(), json!(hex(payload)));
            // The bytes as on the wire: masked again with the frame's key.
            let mut raw = payload.clone();
            if let Some(k) = h.mask {
                apply_mask(&mut raw, k, 0);
            }
            m.insert("raw_payload".into(), json!(hex(&raw)));
            drop(raw);
            if f.payload.truncated() {
                m.insert("payload_truncated".into(), json!(true));
            }
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
            preview(payload, f.payload.len),
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

    /// A message, with the first bytes of its payload.
    fn message(&mut self, m: &MessageInfo, head: &[u8]) -> io::Result<()> {
        self.summary.messages += 1;
        let truncated = (head.len() as u64) < m.len;
        if self.json {
            let mut v = json!({
                "type": "message",
                "offset": m.offset,
                "opcode": m.opcode.0,
                "frames": m.frames,
                "length": m.len,
                "complete": m.complete,
                "utf8_valid": m.text_valid,
                "payload": hex(head),
            });
            if let (Value::Object(o), true) = (&mut v, truncated) {
                o.insert("payload_truncated".into(), json!(true));
            }
            return self.emit_json(&v);
        }
        let validity = match m.text_valid {
            Some(true) => ", valid UTF-8",
            Some(false) => ", INVALID UTF-8",
            None => "",
        };
        let unfinished = if m.complete { "" } else { " (unfinished)" };
        writeln!(
            self.out,
            "message @{}: {}, {} bytes in {} frame{}{}{}: {}",
            m.offset,
            opcode_name(m.opcode),
            m.len,
            m.frames,
            if m.frames == 1 { "" } else { "s" },
            validity,
            unfinished,
            preview(head, m.len),
        )
    }

    fn anomaly(&mut self, offset: u64, kind: &str, detail: &str, extra: Value) -> io::Result<()> {
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

    /// A rule violation, with the close code it implies.
    fn violation(&mut self, v: Violation) -> io::Result<()> {
        let detail = v.error.to_string();
        self.anomaly(
            v.offset,
            v.error.name(),
            &detail,
            json!({ "close_code": v.error.close_code().0 }),
        )
    }
}

/// Decodes `data` and prints its frames, messages and anomalies to `out`.
#[cfg(test)]
pub(crate) fn parse_bytes(
    data: &[u8],
    dir: Dir,
    as_json: bool,
    out: &mut impl Write,
) -> io::Result<Summary> {
    parse_stream(&mut &data[..], dir, as_json, out)
}

/// Reads frames from `input` and prints each one (then its violations and the messages it
/// ends) as soon as it is complete, in bounded memory ([`JSON_KEEP`], [`READ_LEN`]).
///
/// # Errors
///
/// Read and write errors; [`io::ErrorKind::InvalidData`] when the input starts like a pcap or
/// pcapng capture (`wscope inspect` reads those).
pub(crate) fn parse_stream(
    input: &mut impl Read,
    dir: Dir,
    as_json: bool,
    out: &mut impl Write,
) -> io::Result<Summary> {
    let mut buf = vec![0u8; READ_LEN];
    // The first read is made to hold at least the four bytes of a file magic.
    let mut n = 0;
    while n < 4 {
        match read_some(input, &mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    if crate::cmd::inspect::is_capture_magic(&buf[..n]) {
        // A capture file is not a stream of frames: say where it goes.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "this is a pcap/pcapng capture, not raw WebSocket frames: use `wscope inspect FILE`",
        ));
    }
    let mut dissector = Dissector::new(dir.mask_rule());
    let mut printer = StreamPrinter::new(out, as_json);
    while n > 0 && !dissector.is_framing_lost() {
        let mut at = 0;
        loop {
            let step = dissector.decode(&mut buf[at..n]);
            at += step.consumed;
            match step.event {
                Some(item) => printer.item(item)?,
                None => break,
            }
        }
        n = read_some(input, &mut buf)?;
    }
    printer.end(dissector.finish())
}

/// One `read`, retried when interrupted.
fn read_some(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match input.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// Turns the dissector's items into output lines: a frame with its violations when it ends,
/// then the messages it ends.
struct StreamPrinter<'w, W: Write> {
    p: Printer<'w, W>,
    /// Payload bytes kept per frame and message ([`JSON_KEEP`] or [`TEXT_KEEP`]).
    keep: usize,
    /// The frame being read.
    frame: Option<FrameRec>,
    /// Violations found in it, printed after it.
    violations: Vec<Violation>,
    /// The first payload bytes of the messages not yet ended, by the offset of their first
    /// frame (the open message, and the one its frame's end may have started).
    messages: Vec<(u64, Vec<u8>)>,
    /// The violation that lost framing: printed at the end of the input.
    lost: Option<Violation>,
}

impl<'w, W: Write> StreamPrinter<'w, W> {
    fn new(out: &'w mut W, json: bool) -> Self {
        Self {
            p: Printer {
                out,
                json,
                summary: Summary::default(),
            },
            keep: if json { JSON_KEEP } else { TEXT_KEEP },
            frame: None,
            violations: Vec::new(),
            messages: Vec::new(),
            lost: None,
        }
    }

    fn item(&mut self, item: Dissected<'_>) -> io::Result<()> {
        match item {
            Dissected::Frame(f) => {
                self.frame = Some(FrameRec {
                    offset: f.offset,
                    header: f.header,
                    header_len: f.header_bytes.len(),
                    payload: Kept::default(),
                });
            }
            Dissected::Payload(c) => {
                if let Some(f) = self.frame.as_mut() {
                    f.payload.push(c.chunk, self.keep);
                }
            }
            Dissected::Violation(v) if v.error.is_framing_lost() => self.lost = Some(v),
            Dissected::Violation(v) => self.violations.push(v),
            Dissected::FrameEnd(end) => {
                let Some(f) = self.frame.take() else {
                    return Ok(());
                };
                self.p.frame(&f, end.close())?;
                for v in self.violations.drain(..) {
                    self.p.violation(v)?;
                }
                // The frame's first bytes join its message's.
                let at = match self.messages.iter().position(|(o, _)| *o == end.message) {
                    Some(i) => i,
                    None => {
                        self.messages.push((end.message, Vec::new()));
                        self.messages.len() - 1
                    }
                };
                let head = &mut self.messages[at].1;
                let room = self.keep.saturating_sub(head.len());
                let bytes = &f.payload.bytes;
                head.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            Dissected::Message(m) => {
                let head = self.take_message(m.offset);
                self.p.message(&m, &head)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The kept bytes of the message starting at `offset`, forgotten here.
    fn take_message(&mut self, offset: u64) -> Vec<u8> {
        match self.messages.iter().position(|(o, _)| *o == offset) {
            Some(i) => self.messages.swap_remove(i).1,
            None => Vec::new(),
        }
    }

    /// The end of the input: the open message, then what stopped the dissector (lost framing
    /// or a truncated frame), then the text summary line.
    fn end(mut self, left: Unfinished) -> io::Result<Summary> {
        if let Some(open) = left.message {
            self.p.anomaly(
                open.offset,
                "unfinished_message",
                "the input ends before the message's final (FIN) frame",
                json!({}),
            )?;
            let head = self.take_message(open.offset);
            self.p.message(&open, &head)?;
        }
        if let Some(v) = self.lost {
            let what = if v.error == ProtocolError::LengthMsbSet {
                FramesError::LengthMsbSet {
                    offset: usize::try_from(v.offset).unwrap_or(usize::MAX),
                }
                .to_string()
            } else {
                format!("frame at offset {}: {}", v.offset, v.error)
            };
            self.p.anomaly(
                v.offset,
                v.error.name(),
                &format!("{what}; framing is lost, the rest of the input is not parsed"),
                json!({ "close_code": v.error.close_code().0 }),
            )?;
        } else if let Some(t) = left.frame {
            self.truncated(&t)?;
        }
        let s = self.p.summary;
        if !self.p.json {
            writeln!(
                self.p.out,
                "{} frame(s), {} message(s), {} anomal{}",
                s.frames,
                s.messages,
                s.anomalies,
                if s.anomalies == 1 { "y" } else { "ies" }
            )?;
        }
        Ok(s)
    }

    /// Reports a frame cut by the end of the input.
    fn truncated(&mut self, t: &TruncatedFrame) -> io::Result<()> {
        let expected = match t.header {
            Some(h) => format!(
                "payload of {} bytes after a {}-byte header",
                h.payload_len,
                h.header_len()
            ),
            None => format!(
                "frame header: at least {} more byte(s)",
                t.need.saturating_sub(t.have)
            ),
        };
        let detail = format!(
            "input ends inside the frame at offset {}: {} of {} bytes present; \
             expected {expected}",
            t.offset, t.have, t.need
        );
        self.p.anomaly(
            t.offset,
            "truncated",
            &detail,
            json!({ "have": t.have, "need": t.need, "expected": expected }),
        )
    }
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
    fn oversized_close_frame_is_malformed_by_its_whole_length() {
        // Only the first bytes of a payload are kept for the text output.
        let mut wire = vec![0x88, 126, 0x07, 0xd0, 0x03, 0xe8];
        wire.extend(core::iter::repeat_n(b'x', 1998));
        let mut out = Vec::new();
        parse_bytes(&wire, Dir::Server, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("close: malformed (control frame payload 2000 > 125)"),
            "{text}"
        );
        let (v, _) = run_json(&wire, Dir::Server);
        assert_eq!(
            of_type(&v, "frame")[0]["close_error"],
            "control_frame_size_exceeded"
        );
    }

    #[test]
    fn json_payloads_over_the_cap_are_cut_and_marked() {
        let len = JSON_KEEP + 10;
        let mut wire = vec![0x82, 127];
        wire.extend_from_slice(&(len as u64).to_be_bytes());
        wire.extend(core::iter::repeat_n(0xab, len));
        let (v, s) = run_json(&wire, Dir::Any);
        assert_eq!(s.frames, 1);
        let f = of_type(&v, "frame")[0];
        assert_eq!(f["payload_len"], len);
        assert_eq!(f["payload_truncated"], true);
        assert_eq!(f["payload"].as_str().unwrap().len(), 2 * JSON_KEEP);
        let m = of_type(&v, "message")[0];
        assert_eq!(m["length"], len);
        assert_eq!(m["payload_truncated"], true);
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
