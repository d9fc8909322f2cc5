//! `wscope parse FILE|-`: decode a file of raw WebSocket frames.
//!
//! Prints every frame (offset, FIN, RSV, opcode, mask key, payload length, payload preview,
//! close status and reason), every message (first opcode, length, UTF-8 validity across its
//! fragments; a control frame is a message of its own) and every anomaly (rule violations,
//! a truncated last frame) with its byte offset. `--json` prints one JSON object per line
//! with `"type": "frame" | "message" | "anomaly"`.
//!
//! The input is streamed: frames are cut by their headers (64-bit lengths read whole, masked
//! payloads unmasked) as the bytes arrive, and each is printed as soon as it is complete, so
//! memory stays bounded whatever the input (a read buffer, and for `--json` the first 4 MiB
//! of a frame's and a message's payload: longer payloads are cut in the output and marked
//! `"payload_truncated": true`). The same bytes go through a reporting
//! [`wscope_proto::MessageDecoder`], so the rules checked are exactly the endpoint's. Input
//! never makes it panic: a truncated or unframeable tail is reported as an anomaly after
//! every complete frame before it. A pcap or pcapng file is refused with a pointer to
//! `wscope inspect`.

use std::fs;
use std::io::{self, Read, Write};
use std::process::ExitCode;

use serde_json::{json, Map, Value};
use wscope::proto::close::CloseFrame;
use wscope::proto::decoder::FramesError;
use wscope::proto::frame::{FrameHeader, HeaderStatus, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use wscope::proto::mask::apply_mask;
use wscope::proto::utf8::Utf8Validator;
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

/// One complete frame: its header and its (unmasked) payload, as much as is kept.
struct FrameRec {
    offset: u64,
    header: FrameHeader,
    header_len: usize,
    payload: Kept,
}

/// UTF-8 validity of a text message so far.
#[derive(Clone)]
enum Utf8State {
    Open(Utf8Validator),
    Invalid,
}

impl Utf8State {
    fn feed(&mut self, chunk: &[u8]) {
        if let Self::Open(v) = self {
            if v.feed(chunk).is_err() {
                *self = Self::Invalid;
            }
        }
    }

    fn valid_at_end(&self) -> bool {
        match self {
            Self::Open(v) => v.clone().finish().is_ok(),
            Self::Invalid => false,
        }
    }
}

/// A data message being assembled.
struct MsgRec {
    offset: u64,
    opcode: OpCode,
    frames: usize,
    payload: Kept,
    utf8: Option<Utf8State>,
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

impl<W: Write> Printer<'_, W> {
    fn emit_json(&mut self, v: &Value) -> io::Result<()> {
        serde_json::to_writer(&mut *self.out, v).map_err(io::Error::from)?;
        self.out.write_all(b"\n")
    }

    fn frame(&mut self, f: &FrameRec) -> io::Result<()> {
        self.summary.frames += 1;
        let h = &f.header;
        let key = h.mask.map(u32::from_be_bytes);
        let payload = &f.payload.bytes;
        let close = (h.opcode == OpCode::CLOSE).then(|| {
            // Over 125 bytes a close frame is malformed whatever it holds (and only its first
            // bytes were kept).
            if f.payload.len > MAX_CONTROL_PAYLOAD as u64 {
                Err(ProtocolError::ControlFrameTooLong { len: f.payload.len })
            } else {
                CloseFrame::parse(payload)
            }
        });
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

    fn message(&mut self, m: &MsgRec, complete: bool) -> io::Result<()> {
        self.summary.messages += 1;
        let utf8 = (m.opcode == OpCode::TEXT)
            .then(|| m.utf8.as_ref().is_some_and(Utf8State::valid_at_end));
        if self.json {
            let mut v = json!({
                "type": "message",
                "offset": m.offset,
                "opcode": m.opcode.0,
                "frames": m.frames,
                "length": m.payload.len,
                "complete": complete,
                "utf8_valid": utf8,
                "payload": hex(&m.payload.bytes),
            });
            if let (Value::Object(o), true) = (&mut v, m.payload.truncated()) {
                o.insert("payload_truncated".into(), json!(true));
            }
            return self.emit_json(&v);
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
            m.payload.len,
            m.frames,
            if m.frames == 1 { "" } else { "s" },
            validity,
            unfinished,
            preview(&m.payload.bytes, m.payload.len),
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

    fn violation(&mut self, offset: u64, v: ProtocolError) -> io::Result<()> {
        let detail = v.to_string();
        self.anomaly(
            offset,
            v.name(),
            &detail,
            json!({ "close_code": v.close_code().0 }),
        )
    }
}

/// The frame being read: its header, its payload so far, and what the message decoder said
/// about its bytes.
struct Current {
    rec: FrameRec,
    /// Payload bytes still to come.
    remaining: u64,
    /// UTF-8 state of the message this frame belongs to, with this frame's bytes (committed
    /// to the message when the frame is complete).
    utf8: Option<Utf8State>,
    violations: Vec<ProtocolError>,
    data_end: bool,
    control: bool,
    /// The decoder failed inside this frame: it was restarted and gets the next frame.
    dec_failed: bool,
}

/// The reporting message decoder, fed the same bytes frame by frame so that each violation
/// is tied to the frame that caused it.
struct Checker {
    dec: MessageDecoder,
    dir: Dir,
    scratch: Vec<u8>,
}

impl Checker {
    fn new(dir: Dir) -> Self {
        Self {
            dec: MessageDecoder::new(Self::config(dir), Self::assembler()),
            dir,
            scratch: Vec::new(),
        }
    }

    fn config(dir: Dir) -> DecoderConfig {
        DecoderConfig::new(dir.mask_rule()).reporting()
    }

    fn assembler() -> AssemblerConfig {
        AssemblerConfig {
            max_message_len: u64::MAX,
            ..AssemblerConfig::default()
        }
    }

    /// Feeds bytes of the current frame (the decoder unmasks a copy, bounded by a read).
    fn feed(&mut self, bytes: &[u8], cur: &mut Current) {
        if cur.dec_failed || bytes.is_empty() {
            return;
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(bytes);
        let mut at = 0;
        loop {
            let step = match self.dec.decode(&mut self.scratch[at..]) {
                Ok(s) => s,
                Err(e) => {
                    // Report mode only fails when framing is lost; the frame was cut by its
                    // header already, so this is reported and the decoder restarted.
                    cur.violations.push(e);
                    self.dec = MessageDecoder::new(Self::config(self.dir), Self::assembler());
                    cur.dec_failed = true;
                    return;
                }
            };
            at += step.consumed;
            match step.event {
                None => return,
                Some(MessageEvent::Violation(v)) => cur.violations.push(v),
                Some(MessageEvent::Data { message_end, .. }) => cur.data_end |= message_end,
                Some(MessageEvent::Control(_)) => cur.control = true,
                Some(MessageEvent::Frame(_) | MessageEvent::ControlData { .. }) => {}
            }
        }
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

/// Reads frames from `input` and prints each one (then its violations and the message it
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
    let mut parser = StreamParser::new(out, dir, as_json);
    while n > 0 && parser.lost_at.is_none() {
        parser.feed(&buf[..n])?;
        n = read_some(input, &mut buf)?;
    }
    parser.end()
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

/// What the reading loop carries from one read to the next.
struct StreamParser<'w, W: Write> {
    p: Printer<'w, W>,
    checker: Checker,
    /// Payload bytes kept per frame and message ([`JSON_KEEP`] or [`TEXT_KEEP`]).
    keep: usize,
    /// The data message being assembled.
    msg: Option<MsgRec>,
    /// The frame whose payload is being read.
    cur: Option<Current>,
    /// Stream offset of the next frame.
    offset: u64,
    /// The first bytes of the next frame's header.
    hdr: [u8; MAX_HEADER_LEN],
    hdr_have: usize,
    /// Where a header made framing impossible (a 64-bit length with its top bit set).
    lost_at: Option<u64>,
    /// A payload chunk, unmasked (reused).
    chunk: Vec<u8>,
}

impl<'w, W: Write> StreamParser<'w, W> {
    fn new(out: &'w mut W, dir: Dir, json: bool) -> Self {
        Self {
            p: Printer {
                out,
                json,
                summary: Summary::default(),
            },
            checker: Checker::new(dir),
            keep: if json { JSON_KEEP } else { TEXT_KEEP },
            msg: None,
            cur: None,
            offset: 0,
            hdr: [0; MAX_HEADER_LEN],
            hdr_have: 0,
            lost_at: None,
            chunk: Vec::new(),
        }
    }

    /// Cuts `data` (the next bytes of the input) into frame headers and payload chunks and
    /// prints every frame it completes. Sets `lost_at` when a header makes framing
    /// impossible; the rest of the input is then not parsed.
    fn feed(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() && self.lost_at.is_none() {
            data = match self.cur.take() {
                None => self.header_bytes(data)?,
                Some(c) => self.payload_bytes(c, data)?,
            };
        }
        Ok(())
    }

    /// Header bytes: returns the input after them.
    fn header_bytes<'d>(&mut self, data: &'d [u8]) -> io::Result<&'d [u8]> {
        let have = self.hdr_have;
        let take = (MAX_HEADER_LEN - have).min(data.len());
        self.hdr[have..have + take].copy_from_slice(&data[..take]);
        match FrameHeader::parse(&self.hdr[..have + take]) {
            Ok(HeaderStatus::Incomplete { .. }) => {
                self.hdr_have = have + take;
                Ok(&data[take..])
            }
            Ok(HeaderStatus::Complete(h)) => {
                let hlen = h.header_len();
                self.hdr_have = 0;
                let mut c = self.start_frame(h);
                self.checker.feed(&self.hdr[..hlen], &mut c);
                if c.remaining == 0 {
                    self.finish_frame(c)?;
                } else {
                    self.cur = Some(c);
                }
                Ok(&data[hlen - have..])
            }
            Err(_) => {
                self.lost_at = Some(self.offset);
                Ok(&[])
            }
        }
    }

    /// Payload bytes of the current frame: returns the input after them.
    fn payload_bytes<'d>(&mut self, mut c: Current, data: &'d [u8]) -> io::Result<&'d [u8]> {
        let take = usize::try_from(c.remaining)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let raw = &data[..take];
        self.checker.feed(raw, &mut c);
        let pos = c.rec.header.payload_len - c.remaining;
        self.chunk.clear();
        self.chunk.extend_from_slice(raw);
        if let Some(k) = c.rec.header.mask {
            apply_mask(&mut self.chunk, k, pos);
        }
        c.rec.payload.push(&self.chunk, self.keep);
        if let Some(u) = c.utf8.as_mut() {
            u.feed(&self.chunk);
        }
        c.remaining -= take as u64;
        if c.remaining == 0 {
            self.finish_frame(c)?;
        } else {
            self.cur = Some(c);
        }
        Ok(&data[take..])
    }

    /// A frame whose header was read: which UTF-8 state its payload continues.
    fn start_frame(&self, header: FrameHeader) -> Current {
        let utf8 = if header.opcode == OpCode::TEXT {
            Some(Utf8State::Open(Utf8Validator::new()))
        } else if header.opcode == OpCode::CONTINUATION {
            self.msg.as_ref().and_then(|m| m.utf8.clone())
        } else {
            None
        };
        Current {
            rec: FrameRec {
                offset: self.offset,
                header,
                header_len: header.header_len(),
                payload: Kept::default(),
            },
            remaining: header.payload_len,
            utf8,
            violations: Vec::new(),
            data_end: false,
            control: false,
            dec_failed: false,
        }
    }

    /// A complete frame: prints it, its violations, and the message it completes.
    fn finish_frame(&mut self, c: Current) -> io::Result<()> {
        let f = c.rec;
        self.offset = f
            .offset
            .saturating_add(f.header_len as u64)
            .saturating_add(f.header.payload_len);
        self.p.frame(&f)?;
        for v in c.violations {
            self.p.violation(f.offset, v)?;
        }
        let h = f.header;
        if h.opcode.is_control() || c.control {
            return self.p.message(
                &MsgRec {
                    offset: f.offset,
                    opcode: h.opcode,
                    frames: 1,
                    payload: f.payload,
                    utf8: None,
                },
                true,
            );
        }
        // A data frame (or a reserved data opcode): extend the open message or start one,
        // following the message decoder's own view of where messages start and end.
        if h.opcode != OpCode::CONTINUATION {
            if let Some(old) = self.msg.take() {
                // A new text/binary frame while a message was open: it ends unfinished.
                self.p.message(&old, false)?;
            }
        }
        let m = self.msg.get_or_insert_with(|| MsgRec {
            offset: f.offset,
            opcode: h.opcode,
            frames: 0,
            payload: Kept::default(),
            utf8: None,
        });
        m.frames += 1;
        // The frame's kept bytes are the first of its payload: the message keeps what fits.
        let before = m.payload.len;
        m.payload.push(&f.payload.bytes, self.keep);
        m.payload.len = before.saturating_add(f.payload.len);
        if m.opcode == OpCode::TEXT {
            m.utf8 = c.utf8;
        }
        if h.fin || c.data_end {
            if let Some(done) = self.msg.take() {
                self.p.message(&done, true)?;
            }
        }
        Ok(())
    }

    /// The end of the input: the open message, then what stopped the frame cutter (a
    /// truncated frame or lost framing), then the text summary line.
    fn end(mut self) -> io::Result<Summary> {
        if let Some(open) = self.msg.take() {
            self.p.anomaly(
                open.offset,
                "unfinished_message",
                "the input ends before the message's final (FIN) frame",
                json!({}),
            )?;
            self.p.message(&open, false)?;
        }
        let offset = self.offset;
        if let Some(at) = self.lost_at {
            let e = FramesError::LengthMsbSet {
                offset: usize::try_from(at).unwrap_or(usize::MAX),
            };
            self.p.anomaly(
                at,
                "length_msb_set",
                &format!("{e}; framing is lost, the rest of the input is not parsed"),
                json!({ "close_code": ProtocolError::LengthMsbSet.close_code().0 }),
            )?;
        } else if let Some(c) = &self.cur {
            let h = &c.rec.header;
            let need = c.rec.header_len as u64 + h.payload_len;
            let expected = format!(
                "payload of {} bytes after a {}-byte header",
                h.payload_len, c.rec.header_len
            );
            self.truncated(offset, need - c.remaining, need, &expected)?;
        } else if self.hdr_have > 0 {
            let have = self.hdr_have;
            let (need, expected) = match FrameHeader::parse(&self.hdr[..have]) {
                Ok(HeaderStatus::Incomplete { needed }) => (
                    (have + needed) as u64,
                    format!("frame header: at least {needed} more byte(s)"),
                ),
                Ok(HeaderStatus::Complete(_)) | Err(_) => (have as u64, String::new()),
            };
            self.truncated(offset, have as u64, need, &expected)?;
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
    fn truncated(&mut self, offset: u64, have: u64, need: u64, expected: &str) -> io::Result<()> {
        let detail = format!(
            "input ends inside the frame at offset {offset}: {have} of {need} bytes present; \
             expected {expected}"
        );
        self.p.anomaly(
            offset,
            "truncated",
            &detail,
            json!({ "have": have, "need": need, "expected": expected }),
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
