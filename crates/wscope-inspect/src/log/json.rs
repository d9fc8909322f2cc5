//! JSON Lines events (`--events`): one object per event, schema in `docs/events.md`.

use core::fmt;
use std::io::{self, Write};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::ser::{SerializeStruct as _, Serializer};
use serde::Serialize;
use serde_json::{json, Map, Value};
use wscope_proto::time::Instant;

use crate::event::{Event, EventKind};
use crate::sink::{CaptureNote, Sink};
use crate::tcp::{CloseReason, ConnMeta};

/// Hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    HexText(bytes).to_string()
}

/// Zeek's opcode name, `unknown-N` for reserved opcodes.
pub fn opcode_name(op: wscope_proto::frame::OpCode) -> String {
    op.name()
        .map_or_else(|| format!("unknown-{}", op.0), String::from)
}

/// Text for possibly non-UTF-8 bytes: valid UTF-8 as is, other bytes as `\xHH`.
pub fn lossless_text(s: &[u8]) -> String {
    Lossless(s).to_string()
}

/// The JSON object of one event (`None` for [`EventKind::MessageData`], which is not part of
/// the schema). [`JsonLines`] writes the same object without building a [`Value`].
pub fn event_json(ev: &Event<'_>) -> Option<Value> {
    let mut b64 = String::new();
    let view = EventJson::new(ev, &mut b64)?;
    serde_json::to_value(view).ok()
}

/// One event as JSON, serialised straight from the borrowed [`Event`]: no map, no owned
/// strings. `data_b64` is encoded beforehand into a buffer the caller keeps.
#[derive(Clone, Copy, Debug)]
pub struct EventJson<'e, 'a> {
    ev: &'e Event<'a>,
    b64: &'e str,
}

impl<'e, 'a> EventJson<'e, 'a> {
    /// The view of `ev`, with `buf` (cleared first) holding the base64 of a `frame_data`
    /// chunk; `None` for [`EventKind::MessageData`].
    pub fn new(ev: &'e Event<'a>, buf: &'e mut String) -> Option<Self> {
        buf.clear();
        match &ev.kind {
            EventKind::MessageData { .. } => return None,
            EventKind::FrameData { data, .. } => STANDARD.encode_string(data, buf),
            _ => {}
        }
        Some(Self { ev, b64: buf })
    }
}

impl Serialize for EventJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ev = self.ev;
        let mut o = s.serialize_struct("event", 16)?;
        o.serialize_field("ts", &seconds(ev.ts))?;
        o.serialize_field("uid", ev.conn.uid.as_str())?;
        o.serialize_field("id", &Id(ev.conn))?;
        o.serialize_field("event", ev.kind.name())?;
        o.serialize_field("is_orig", &ev.is_orig())?;
        match &ev.kind {
            EventKind::Established(up) => {
                o.serialize_field("host", &up.host())?;
                o.serialize_field("uri", &up.uri())?;
                o.serialize_field("user_agent", &up.user_agent())?;
                o.serialize_field("subprotocol", &up.subprotocol())?;
                o.serialize_field("client_protocols", &Strs(|| up.client_protocols()))?;
                o.serialize_field("server_extensions", &Strs(|| up.server_extensions()))?;
                o.serialize_field("client_extensions", &Strs(|| up.client_extensions()))?;
                o.serialize_field("client_key", &up.client_key())?;
                o.serialize_field("server_accept", &up.server_accept())?;
                o.serialize_field("accepted", &up.accepted())?;
            }
            EventKind::Frame { header, .. } => {
                o.serialize_field("fin", &header.fin)?;
                o.serialize_field("rsv", &header.rsv)?;
                o.serialize_field("opcode", &header.opcode.0)?;
                o.serialize_field("payload_len", &header.payload_len)?;
                if let Some(m) = header.mask {
                    o.serialize_field("mask", &u32::from_be_bytes(m))?;
                }
            }
            EventKind::FrameData { data, info } => {
                o.serialize_field("opcode", &info.opcode.0)?;
                o.serialize_field("len", &data.len())?;
                o.serialize_field("data_b64", self.b64)?;
                if info.compressed {
                    o.serialize_field("compressed", &true)?;
                }
            }
            EventKind::Close { status, reason } => {
                o.serialize_field("status", status)?;
                o.serialize_field("reason", &Text(reason))?;
            }
            EventKind::Message {
                opcode,
                len,
                sha256,
            } => {
                o.serialize_field("opcode", &opcode.0)?;
                o.serialize_field("len", len)?;
                if let Some(d) = sha256 {
                    o.serialize_field("sha256", &Hex(d))?;
                }
            }
            EventKind::ConnectionEnd(end) => {
                let (cause, by) = cause(end.reason);
                o.serialize_field("cause", cause)?;
                if let Some(by) = by {
                    o.serialize_field("by", by)?;
                }
                o.serialize_field("clean", &end.clean)?;
                o.serialize_field("message_cut", &end.message_cut)?;
            }
            EventKind::Anomaly {
                name,
                zeek_weird,
                detail,
            } => {
                o.serialize_field("name", name)?;
                o.serialize_field("detail", detail)?;
                if let Some(w) = zeek_weird {
                    o.serialize_field("zeek_weird", w)?;
                }
            }
            // Left out by `EventJson::new`.
            EventKind::MessageData { .. } => {}
        }
        o.end()
    }
}

/// The `cause` of a `connection_end` event, and for a RST who sent it (`orig`, `resp`).
pub const fn cause(reason: CloseReason) -> (&'static str, Option<&'static str>) {
    match reason {
        CloseReason::Finished => ("fin", None),
        CloseReason::Reset(dir) => ("rst", Some(if dir.is_orig() { "orig" } else { "resp" })),
        CloseReason::IdleTimeout => ("idle", None),
        CloseReason::Evicted => ("evicted", None),
        CloseReason::Reused => ("reused", None),
        CloseReason::CaptureEnd => ("capture_end", None),
    }
}

/// Packet time as JSON seconds (microsecond precision).
fn seconds(ts: Instant) -> f64 {
    ts.as_micros() as f64 / 1e6
}

/// The `id` object: addresses and ports, orig (the client) first.
struct Id<'a>(&'a ConnMeta);

impl Serialize for Id<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut o = s.serialize_struct("id", 4)?;
        o.serialize_field("orig_h", &Collect(c.orig.ip()))?;
        o.serialize_field("orig_p", &c.orig.port())?;
        o.serialize_field("resp_h", &Collect(c.resp.ip()))?;
        o.serialize_field("resp_p", &c.resp.port())?;
        o.end()
    }
}

/// A value written as the JSON string of its `Display`, without an owned copy.
struct Collect<T>(T);

impl<T: fmt::Display> Serialize for Collect<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// A list of strings made on demand.
struct Strs<F>(F);

impl<'s, F, I> Serialize for Strs<F>
where
    F: Fn() -> I,
    I: Iterator<Item = &'s str>,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((self.0)())
    }
}

/// Bytes as [`lossless_text`] writes them, as a JSON string.
struct Text<'a>(&'a [u8]);

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Lossless(self.0))
    }
}

/// The `Display` of [`lossless_text`].
struct Lossless<'a>(&'a [u8]);

impl fmt::Display for Lossless<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// Bytes as lower-case hex, as a JSON string.
struct Hex<'a>(&'a [u8]);

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&HexText(self.0))
    }
}

/// The `Display` of [`hex`].
struct HexText<'a>(&'a [u8]);

impl fmt::Display for HexText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A [`Sink`] writing JSON Lines.
///
/// Each line is serialised into a buffer the writer keeps (as is the base64 of `frame_data`),
/// then written with one `write_all`: no allocation per event once the buffers have grown.
#[derive(Debug)]
pub struct JsonLines<W: Write> {
    out: W,
    error: Option<io::Error>,
    /// The line being written.
    line: Vec<u8>,
    /// The base64 of the current `frame_data` chunk.
    b64: String,
    /// Lines written.
    pub lines: u64,
}

impl<W: Write> JsonLines<W> {
    /// Writes to `out`.
    pub const fn new(out: W) -> Self {
        Self {
            out,
            error: None,
            line: Vec::new(),
            b64: String::new(),
            lines: 0,
        }
    }

    /// Flushes and returns the writer, or the first write error.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The JSON object of a [`CaptureNote`]: `ts` (when the run had packets), `event`
/// (`capture_note`), `name`, `count`, `detail`.
pub fn capture_note_json(note: &CaptureNote) -> Value {
    let mut o = Map::new();
    if let Some(ts) = note.ts {
        o.insert("ts".into(), json!(ts.as_micros() as f64 / 1e6));
    }
    o.insert("event".into(), json!("capture_note"));
    o.insert("name".into(), json!(note.name));
    o.insert("count".into(), json!(note.count));
    o.insert("detail".into(), json!(note.detail));
    Value::Object(o)
}

impl<W: Write> Sink for JsonLines<W> {
    fn capture_note(&mut self, note: &CaptureNote) {
        if self.error.is_some() {
            return;
        }
        let r = serde_json::to_writer(&mut self.out, &capture_note_json(note))
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        match r {
            Ok(()) => self.lines += 1,
            Err(e) => self.error = Some(e),
        }
    }

    fn event(&mut self, ev: &Event<'_>) {
        if self.error.is_some() {
            return;
        }
        let Some(view) = EventJson::new(ev, &mut self.b64) else {
            return;
        };
        self.line.clear();
        let r = serde_json::to_writer(&mut self.line, &view)
            .map_err(io::Error::from)
            .and_then(|()| {
                self.line.push(b'\n');
                self.out.write_all(&self.line)
            });
        match r {
            Ok(()) => self.lines += 1,
            Err(e) => self.error = Some(e),
        }
        // A huge chunk's buffers are not kept.
        if self.line.capacity() > 1 << 20 {
            self.line = Vec::new();
            self.b64 = String::new();
        }
    }
}
