//! JSON Lines events (`--events`): one object per event, schema in `docs/events.md`.

use std::io::{self, Write};

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::event::{Event, EventKind};
use crate::sink::{CaptureNote, Sink};

/// Hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use core::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Zeek's opcode name, `unknown-N` for reserved opcodes.
pub fn opcode_name(op: wscope_proto::frame::OpCode) -> String {
    op.name()
        .map_or_else(|| format!("unknown-{}", op.0), String::from)
}

/// Text for possibly non-UTF-8 bytes: valid UTF-8 as is, other bytes as `\xHH`.
pub fn lossless_text(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for chunk in s.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The JSON object of one event (`None` for [`EventKind::MessageData`], which is not part of
/// the schema).
pub fn event_json(ev: &Event<'_>) -> Option<Value> {
    let c = ev.conn;
    let mut o = Map::new();
    let us = ev.ts.as_micros();
    o.insert("ts".into(), json!(us as f64 / 1e6));
    o.insert("uid".into(), json!(c.uid.as_str()));
    o.insert(
        "id".into(),
        json!({
            "orig_h": c.orig.ip().to_string(),
            "orig_p": c.orig.port(),
            "resp_h": c.resp.ip().to_string(),
            "resp_p": c.resp.port(),
        }),
    );
    o.insert("event".into(), json!(ev.kind.name()));
    o.insert("is_orig".into(), json!(ev.is_orig()));
    match &ev.kind {
        EventKind::Established(up, tls) => {
            let opt = |s: Option<&str>| s.map_or(Value::Null, |s| json!(s));
            o.insert("host".into(), opt(up.host()));
            o.insert("uri".into(), opt(up.uri()));
            o.insert("user_agent".into(), opt(up.user_agent()));
            o.insert("subprotocol".into(), opt(up.subprotocol()));
            o.insert(
                "client_protocols".into(),
                json!(up.client_protocols().collect::<Vec<_>>()),
            );
            o.insert(
                "server_extensions".into(),
                json!(up.server_extensions().collect::<Vec<_>>()),
            );
            o.insert(
                "client_extensions".into(),
                json!(up.client_extensions().collect::<Vec<_>>()),
            );
            o.insert("client_key".into(), opt(up.client_key()));
            o.insert("server_accept".into(), opt(up.server_accept()));
            // wss:// sessions decrypted from a key log only.
            if let Some(info) = tls {
                o.insert("tls".into(), tls_json(info));
            }
        }
        EventKind::Tls(info) => {
            if let Value::Object(t) = tls_json(info) {
                o.extend(t);
            }
            if let Some(reason) = info.reason {
                o.insert("reason".into(), json!(reason));
            }
        }
        EventKind::Frame { header, .. } => {
            o.insert("fin".into(), json!(header.fin));
            o.insert("rsv".into(), json!(header.rsv));
            o.insert("opcode".into(), json!(header.opcode.0));
            o.insert("payload_len".into(), json!(header.payload_len));
            if let Some(m) = header.mask {
                o.insert("mask".into(), json!(u32::from_be_bytes(m)));
            }
        }
        EventKind::FrameData {
            data,
            opcode,
            compressed,
            ..
        } => {
            o.insert("opcode".into(), json!(opcode.0));
            o.insert("len".into(), json!(data.len()));
            o.insert(
                "data_b64".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(data)),
            );
            if *compressed {
                o.insert("compressed".into(), json!(true));
            }
        }
        EventKind::MessageData { .. } => return None,
        EventKind::Close { status, reason } => {
            o.insert("status".into(), json!(status));
            o.insert("reason".into(), json!(lossless_text(reason)));
        }
        EventKind::Message {
            opcode,
            len,
            sha256,
        } => {
            o.insert("opcode".into(), json!(opcode.0));
            o.insert("len".into(), json!(len));
            if let Some(d) = sha256 {
                o.insert("sha256".into(), json!(hex(d)));
            }
        }
        EventKind::Anomaly {
            name,
            zeek_weird,
            detail,
        } => {
            o.insert("name".into(), json!(name));
            o.insert("detail".into(), json!(detail));
            if let Some(w) = zeek_weird {
                o.insert("zeek_weird".into(), json!(w));
            }
        }
    }
    Some(Value::Object(o))
}

/// The `tls` object: `version` (`TLSv1.3`), `cipher` (IANA name), `sni`, `alpn` (null when
/// absent).
fn tls_json(info: &crate::tls::TlsInfo) -> Value {
    let opt = |s: &Option<String>| s.as_deref().map_or(Value::Null, |s| json!(s));
    json!({
        "version": info.version_name(),
        "cipher": info.cipher_name(),
        "sni": opt(&info.sni),
        "alpn": opt(&info.alpn),
    })
}

/// A [`Sink`] writing JSON Lines.
#[derive(Debug)]
pub struct JsonLines<W: Write> {
    out: W,
    error: Option<io::Error>,
    /// Lines written.
    pub lines: u64,
}

impl<W: Write> JsonLines<W> {
    /// Writes to `out`.
    pub const fn new(out: W) -> Self {
        Self {
            out,
            error: None,
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
        let Some(v) = event_json(ev) else { return };
        let r = serde_json::to_writer(&mut self.out, &v)
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        match r {
            Ok(()) => self.lines += 1,
            Err(e) => self.error = Some(e),
        }
    }
}
