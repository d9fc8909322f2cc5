//! JSON Lines events (`--events`): one object per event, schema in `docs/events.md`.
//!
//! [`JsonLines`] writes each event straight from the borrowed [`Event`]: the fields common to
//! every event (`ts`, `uid`, `id`, `event`, `is_orig`) around the `uid` and `id` of the
//! connection, serialised once per connection (kept until it closes), and the `ts`, once per
//! packet; the fields of each kind
//! through a hand-written [`Serialize`] over the event (no `serde_json::Value`, no map, no
//! owned strings); the payload's base64 encoded straight into the output buffer. Lines are
//! gathered in one buffer and handed to the writer in blocks of about 64 KiB: no allocation
//! per event once the buffers have grown. [`event_json`] gives the same object as a
//! [`Value`].
//!
//! Besides Zeek's events: `established` has `accepted` (`false` for a `101` the client must
//! reject, [`crate::event::Upgrade::accepted`]), and every WebSocket connection ends with a
//! `connection_end` line: `cause` (`fin`, `rst`, `idle`, `capture_end`, `evicted`, `reused`;
//! see [`cause`]), `by` (`orig` or `resp`, only for `rst`), `clean` (both sides sent a close
//! frame) and `message_cut` (a message was left incomplete), from
//! [`crate::event::ConnectionEnd`].

use core::cell::RefMut;
use core::fmt;
use std::io::{self, Write};

use hashbrown::hash_map::{Entry, HashMap};
use serde::ser::{SerializeStruct as _, Serializer};
use serde::Serialize;
use serde_json::{json, Map, Value};
use wscope_proto::time::Instant;

use crate::event::{Event, EventKind};
use crate::parallel::LocalWriter;
use crate::sink::{CaptureNote, Sink};
use crate::tcp::{CloseReason, ConnMeta};
use crate::uid::ConnId;

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

/// The JSON object of one event, as [`JsonLines`] writes it (`None` for
/// [`EventKind::MessageData`], which is not part of the schema).
pub fn event_json(ev: &Event<'_>) -> Option<Value> {
    let mut line = Vec::new();
    if !write_event(&mut line, &mut Prefix::default(), ev, true).ok()? {
        return None;
    }
    serde_json::from_slice(&line).ok()
}

/// A [`Sink`] writing JSON Lines (see the [module docs](self)).
///
/// Output is buffered (about 64 KiB): [`JsonLines::flush`] hands everything written so far to
/// the writer and flushes it, [`JsonLines::finish`] does so and returns the writer.
#[derive(Debug)]
pub struct JsonLines<W: Write> {
    out: W,
    error: Option<io::Error>,
    /// Lines not yet handed to `out`.
    buf: Vec<u8>,
    /// What lines share (made at the first event).
    prefix: Option<Prefix>,
    /// Lines written.
    pub lines: u64,
    /// Lines are handed to `out` once this many bytes are buffered (0: after every line).
    block: usize,
    /// `frame_data` lines carry the payload (`data_b64`).
    payload: bool,
    /// Event lines are rendered straight into the buffer this gives of `out`, an in-memory
    /// output ([`JsonLines::in_memory`]). A function, not the buffer's handle, so that the
    /// sink is `Send` whenever `W` is.
    direct: Option<BufOf<W>>,
}

impl JsonLines<LocalWriter> {
    /// Writes each event's line straight into `out`, a worker's in-memory output of a parallel
    /// run ([`crate::parallel::LocalOutput`]), as [`JsonLines::unbuffered`] does but without
    /// rendering it into a buffer of its own first (the lines are most of what the workers
    /// write: gigabytes with payloads).
    pub fn in_memory(out: LocalWriter) -> Self {
        let mut j = Self::with_block(out, 0);
        j.direct = Some(LocalWriter::buf);
        j
    }
}

/// How [`JsonLines::in_memory`] reaches its writer's buffer.
type BufOf<W> = for<'a> fn(&'a W) -> RefMut<'a, Vec<u8>>;

/// Lines gathered before they are handed to the writer.
const BLOCK: usize = 64 << 10;

/// Connections whose `uid` and `id` are kept serialised (about 130 bytes each).
const MAX_PREFIXES: usize = 1 << 14;

impl<W: Write> JsonLines<W> {
    /// Writes to `out`, in blocks of about 64 KiB.
    pub const fn new(out: W) -> Self {
        Self::with_block(out, BLOCK)
    }

    /// Writes each line to `out` as soon as it is made: for a writer that buffers already
    /// (the workers' in-memory output of [`crate::parallel::LocalOutput`]), or that another
    /// writer's lines must interleave with line by line.
    pub const fn unbuffered(out: W) -> Self {
        Self::with_block(out, 0)
    }

    const fn with_block(out: W, block: usize) -> Self {
        Self {
            out,
            error: None,
            buf: Vec::new(),
            prefix: None,
            lines: 0,
            block,
            payload: true,
            direct: None,
        }
    }

    /// Leaves the payload bytes out of `frame_data` lines: no `data_b64` field (the line keeps
    /// `len` and the rest). For when the events are wanted for their structure and sizes only:
    /// the payload's base64 is most of the output otherwise.
    #[must_use]
    pub const fn without_payload(mut self) -> Self {
        self.payload = false;
        self
    }

    /// Hands the buffered lines to the writer and flushes it; the first write error, if any
    /// (after an error nothing more is written).
    pub fn flush(&mut self) -> io::Result<()> {
        self.drain();
        if let Some(e) = &self.error {
            return Err(io::Error::new(e.kind(), e.to_string()));
        }
        self.out.flush()
    }

    /// Flushes and returns the writer, or the first write error.
    pub fn finish(mut self) -> io::Result<W> {
        self.drain();
        if let Some(e) = self.error {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// Hands the buffered lines to the writer.
    fn drain(&mut self) {
        if self.error.is_none() && !self.buf.is_empty() {
            if let Err(e) = self.out.write_all(&self.buf) {
                self.error = Some(e);
            }
        }
        self.buf.clear();
        // A huge line's buffer is not kept.
        if self.buf.capacity() > 16 * BLOCK {
            self.buf = Vec::new();
        }
    }

    /// Ends a line that was written (or not) from `start`.
    fn ended(&mut self, start: usize, r: serde_json::Result<bool>) {
        match r {
            Ok(true) => {
                self.lines += 1;
                if self.buf.len() >= self.block {
                    self.drain();
                }
            }
            Ok(false) => self.buf.truncate(start),
            Err(e) => {
                self.buf.truncate(start);
                self.error = Some(e.into());
            }
        }
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
        let start = self.buf.len();
        let r = serde_json::to_writer(&mut self.buf, &capture_note_json(note)).map(|()| {
            self.buf.push(b'\n');
            true
        });
        self.ended(start, r);
    }

    fn event(&mut self, ev: &Event<'_>) {
        if self.error.is_some() {
            return;
        }
        let prefix = self.prefix.get_or_insert_with(Prefix::default);
        if let Some(buf_of) = self.direct {
            let mut buf = buf_of(&self.out);
            let start = buf.len();
            match write_event(&mut buf, prefix, ev, self.payload) {
                Ok(true) => self.lines += 1,
                Ok(false) => buf.truncate(start),
                Err(e) => {
                    buf.truncate(start);
                    self.error = Some(e.into());
                }
            }
            return;
        }
        let start = self.buf.len();
        let r = write_event(&mut self.buf, prefix, ev, self.payload);
        self.ended(start, r);
    }

    fn connection_closed(&mut self, conn: &ConnMeta) {
        if let Some(p) = self.prefix.as_mut() {
            p.conns.remove(&conn.session_key());
        }
    }
}

/// What the lines of recent events share: `"uid":…,"id":{…}` of each connection with events
/// (until it closes), and the last `ts`.
#[derive(Debug, Default)]
struct Prefix {
    conns: HashMap<(ConnId, u32), Vec<u8>>,
    ts: Option<Instant>,
    ts_bytes: Vec<u8>,
}

impl Prefix {
    /// The `uid` and `id` of `conn`, serialised at its first event.
    fn conn(&mut self, conn: &ConnMeta) -> serde_json::Result<&[u8]> {
        // Bounded even when `connection_closed` is not passed on: start afresh.
        let key = conn.session_key();
        if self.conns.len() >= MAX_PREFIXES && !self.conns.contains_key(&key) {
            self.conns.clear();
        }
        match self.conns.entry(key) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(e) => {
                let mut bytes = b"\"uid\":".to_vec();
                serde_json::to_writer(&mut bytes, conn.uid.as_str())?;
                bytes.extend_from_slice(b",\"id\":");
                serde_json::to_writer(&mut bytes, &Id(conn))?;
                if let Some(s) = conn.stream_id {
                    bytes.extend_from_slice(b",\"stream_id\":");
                    serde_json::to_writer(&mut bytes, &s)?;
                }
                Ok(e.insert(bytes))
            }
        }
    }

    /// `ts` as JSON seconds.
    fn ts(&mut self, ts: Instant) -> serde_json::Result<&[u8]> {
        if self.ts != Some(ts) {
            self.ts = None;
            self.ts_bytes.clear();
            serde_json::to_writer(&mut self.ts_bytes, &seconds(ts))?;
            self.ts = Some(ts);
        }
        Ok(&self.ts_bytes)
    }
}

/// Appends the line of `ev` (newline included) to `buf`; `false` (nothing written) for
/// [`EventKind::MessageData`]. On an error `buf` holds part of a line. Without `payload`,
/// `frame_data` lines have no `data_b64`.
fn write_event(
    buf: &mut Vec<u8>,
    prefix: &mut Prefix,
    ev: &Event<'_>,
    payload: bool,
) -> serde_json::Result<bool> {
    if let EventKind::MessageData { .. } = ev.kind {
        return Ok(false);
    }
    buf.extend_from_slice(b"{\"ts\":");
    buf.extend_from_slice(prefix.ts(ev.ts)?);
    buf.push(b',');
    buf.extend_from_slice(prefix.conn(ev.conn)?);
    buf.extend_from_slice(b",\"event\":\"");
    // Event names are snake_case ASCII: nothing to escape.
    buf.extend_from_slice(ev.kind.name().as_bytes());
    buf.extend_from_slice(if ev.is_orig() {
        b"\",\"is_orig\":true"
    } else {
        b"\",\"is_orig\":false"
    });
    // The kind's own fields, as an object whose `{` becomes the `,` after `is_orig`.
    let at = buf.len();
    serde_json::to_writer(&mut *buf, &Fields(ev, payload))?;
    if let Some(b) = buf.get_mut(at) {
        *b = b',';
    }
    if let (EventKind::FrameData { data, info }, true) = (&ev.kind, payload) {
        splice_base64(buf, data, info.compressed);
    }
    buf.push(b'\n');
    Ok(true)
}

/// The fields of one kind of event (after the common ones), as a JSON object; with or
/// without the payload of `frame_data`.
struct Fields<'e, 'a>(&'e Event<'a>, bool);

impl Serialize for Fields<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ev = self.0;
        let mut o = s.serialize_struct("fields", 8)?;
        match &ev.kind {
            EventKind::Established(up, tls) => {
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
                // A WebSocket over HTTP/2 (RFC 8441): its stream has `stream_id` (every event).
                if ev.conn.stream_id.is_some() {
                    o.serialize_field("http2", &true)?;
                }
                // wss:// sessions decrypted from a key log only.
                if let Some(info) = tls {
                    o.serialize_field("tls", &TlsFields(info))?;
                }
            }
            EventKind::Tls(info) => {
                o.serialize_field("version", &info.version_name())?;
                o.serialize_field("cipher", &info.cipher_name())?;
                o.serialize_field("sni", &info.sni)?;
                o.serialize_field("alpn", &info.alpn)?;
                if let Some(reason) = info.reason {
                    o.serialize_field("reason", reason)?;
                }
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
                if self.1 {
                    // Filled in by `splice_base64`.
                    o.serialize_field("data_b64", "")?;
                }
                if info.compressed {
                    o.serialize_field("compressed", &true)?;
                }
            }
            EventKind::Close { status, reason } => {
                o.serialize_field("status", status)?;
                o.serialize_field("reason", &Collect(Lossless(reason)))?;
            }
            EventKind::Message {
                opcode,
                len,
                sha256,
            } => {
                o.serialize_field("opcode", &opcode.0)?;
                o.serialize_field("len", len)?;
                if let Some(d) = sha256 {
                    o.serialize_field("sha256", &Collect(HexText(d)))?;
                }
            }
            EventKind::Reset { error_code } => {
                o.serialize_field("error_code", error_code)?;
                o.serialize_field("error", crate::http2::frame::error_name(*error_code))?;
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
            // Not written (`write_event`).
            EventKind::MessageData { .. } => {}
        }
        o.end()
    }
}

/// The `tls` object of an `established` event: `version` (`TLSv1.3`), `cipher` (IANA name),
/// `sni`, `alpn` (null when absent).
struct TlsFields<'a>(&'a crate::tls::TlsInfo);

impl Serialize for TlsFields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let info = self.0;
        let mut o = s.serialize_struct("tls", 4)?;
        o.serialize_field("version", &info.version_name())?;
        o.serialize_field("cipher", &info.cipher_name())?;
        o.serialize_field("sni", &info.sni)?;
        o.serialize_field("alpn", &info.alpn)?;
        o.end()
    }
}

/// Writes the base64 of `data` into the empty `data_b64` string that ends the fields of a
/// `frame_data` line (before `"}` or `","compressed":true}`). The payload is most of the
/// output: serde would scan its base64 again for characters to escape, of which it has none.
fn splice_base64(line: &mut Vec<u8>, data: &[u8], compressed: bool) {
    let tail: &[u8] = if compressed {
        b"\",\"compressed\":true}"
    } else {
        b"\"}"
    };
    debug_assert!(line.ends_with(tail), "frame_data ends with data_b64");
    if !line.ends_with(tail) {
        return;
    }
    let at = line.len() - tail.len();
    line.truncate(at);
    base64_simd::STANDARD.encode_append(data, line);
    line.extend_from_slice(tail);
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
        CloseReason::StreamEnd => ("end_stream", None),
        CloseReason::StreamReset(dir) => ("rst_stream", Some(by(dir))),
        CloseReason::GoAway(dir) => ("goaway", Some(by(dir))),
    }
}

/// `orig` or `resp`: who sent what a `connection_end` names.
const fn by(dir: wscope_proto::role::Direction) -> &'static str {
    if dir.is_orig() {
        "orig"
    } else {
        "resp"
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ChunkInfo, OpCode};
    use wscope_proto::role::Direction;

    fn conn(port: u16) -> ConnMeta {
        let mut c = ConnMeta::new(
            ([192, 0, 2, 1], port).into(),
            ([198, 51, 100, 2], 80).into(),
        );
        c.id = ConnId(u64::from(port));
        c.uid = crate::uid::UidGenerator::new(0).uid(c.id);
        c
    }

    /// Interleaved connections and repeated times: every line is the event's own object,
    /// and nothing reaches the writer before a block is full or `flush`.
    #[test]
    fn lines_of_interleaved_connections() {
        let (a, b) = (conn(1000), conn(2000));
        let info = ChunkInfo {
            opcode: OpCode::TEXT,
            compressed: false,
            first: true,
            remaining: 0,
            frame_end: true,
            message_end: true,
        };
        let events: Vec<Event<'_>> = [(&a, 5), (&b, 5), (&a, 6), (&b, 6), (&a, 6)]
            .into_iter()
            .map(|(conn, t)| Event {
                ts: Instant::from_micros(1_700_000_000_000_000 + t),
                conn,
                dir: Direction::ServerToClient,
                kind: EventKind::FrameData {
                    data: b"\x00payload\"\n",
                    info,
                },
            })
            .collect();
        let mut out = Vec::new();
        let mut lines = JsonLines::new(&mut out);
        for ev in &events {
            lines.event(ev);
        }
        lines.connection_closed(&a);
        lines.event(&events[0]);
        assert_eq!(lines.lines, 6);
        assert!(lines.out.is_empty(), "buffered until flushed");
        lines.flush().expect("vec");
        let text = String::from_utf8(out).expect("utf-8");
        let got: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        let want: Vec<Value> = events
            .iter()
            .chain([&events[0]])
            .map(|e| event_json(e).expect("in the schema"))
            .collect();
        assert_eq!(got, want);
        assert_ne!(a.uid, b.uid);
        assert_eq!(got[1]["uid"], b.uid.as_str());
        assert_eq!(got[1]["id"]["orig_p"], 2000);
        assert_eq!(got[0]["data_b64"], "AHBheWxvYWQiCg==");
        assert_eq!(got[2]["ts"], 1_700_000_000.000_006);
    }
}
