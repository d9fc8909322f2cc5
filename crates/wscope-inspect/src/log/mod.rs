//! Output: Zeek logs ([`zeek`]: `websocket.log`, `weird.log`), the sink that writes them
//! ([`ZeekLogs`]), and JSON Lines events ([`json`]).

pub mod json;
pub mod zeek;

use std::io::{self, Write};

use crate::event::{Event, EventKind};
use crate::sink::Sink;
use zeek::{Style, Value, ZeekLog, WEBSOCKET_COLUMNS, WEIRD_COLUMNS};

/// The `source` column Zeek writes for each of its WebSocket weirds; `wscope` for ours.
pub fn weird_source(zeek_weird: Option<&str>) -> &'static str {
    match zeek_weird {
        Some("protocol_data_with_HTTP_upgrade_reply") => "HTTP",
        Some("websocket_control_frame_size_exceeded") => "WEBSOCKET",
        Some(_) => "WebSocket",
        None => "wscope",
    }
}

/// The `name` column of `weird.log`: Zeek's weird name, or `websocket_<name>` for anomalies
/// Zeek does not report.
pub fn weird_name(name: &str, zeek_weird: Option<&'static str>) -> String {
    zeek_weird.map_or_else(|| format!("websocket_{name}"), String::from)
}

/// A [`Sink`] writing `websocket.log` (one row per upgrade) and `weird.log` (one row per
/// anomaly) in Zeek's formats.
#[derive(Debug)]
pub struct ZeekLogs<W: Write> {
    websocket: ZeekLog<W>,
    weird: ZeekLog<W>,
    /// Only anomalies Zeek reports go to `weird.log` (exact Zeek output).
    zeek_weirds_only: bool,
    error: Option<io::Error>,
    /// Rows written to each log.
    pub rows: (u64, u64),
}

impl<W: Write> ZeekLogs<W> {
    /// Logs written to `websocket` and `weird` in `style`.
    pub fn new(websocket: W, weird: W, style: Style, zeek_weirds_only: bool) -> Self {
        Self {
            websocket: ZeekLog::new(websocket, "websocket", WEBSOCKET_COLUMNS, style),
            weird: ZeekLog::new(weird, "weird", WEIRD_COLUMNS, style),
            zeek_weirds_only,
            error: None,
            rows: (0, 0),
        }
    }

    /// Writes the `#close` lines and returns both writers, or the first write error.
    pub fn finish(self) -> io::Result<(W, W)> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok((self.websocket.finish()?, self.weird.finish()?))
    }

    fn write(&mut self, ev: &Event<'_>) -> io::Result<()> {
        let c = ev.conn;
        let ts = ev.ts.as_micros();
        let id = [
            Value::Addr(c.orig.ip()),
            Value::Port(c.orig.port()),
            Value::Addr(c.resp.ip()),
            Value::Port(c.resp.port()),
        ];
        match &ev.kind {
            EventKind::Established(up, _) => {
                let protos: Vec<&[u8]> = up.client_protocols().map(str::as_bytes).collect();
                let server_ext: Vec<&[u8]> = up.server_extensions().map(str::as_bytes).collect();
                let client_ext: Vec<&[u8]> = up.client_extensions().map(str::as_bytes).collect();
                let uid = c.uid;
                let mut row = vec![Value::Time(ts), Value::Str(uid.as_str().as_bytes())];
                row.extend(id);
                row.extend([
                    opt(up.host()),
                    opt(up.uri()),
                    opt(up.user_agent()),
                    opt(up.subprotocol()),
                    vec(protos),
                    vec(server_ext),
                    vec(client_ext),
                ]);
                self.rows.0 += 1;
                self.websocket.write_row(ts, &row)
            }
            EventKind::Anomaly {
                name,
                zeek_weird,
                detail,
            } => {
                if self.zeek_weirds_only && zeek_weird.is_none() {
                    return Ok(());
                }
                let uid = c.uid;
                let wname = weird_name(name, *zeek_weird);
                let mut row = vec![Value::Time(ts), Value::Str(uid.as_str().as_bytes())];
                row.extend(id);
                row.extend([
                    Value::Str(wname.as_bytes()),
                    if detail.is_empty() {
                        Value::Unset
                    } else {
                        Value::Str(detail.as_bytes())
                    },
                    Value::Bool(false),
                    Value::Str(b"zeek"),
                    Value::Str(weird_source(*zeek_weird).as_bytes()),
                ]);
                self.rows.1 += 1;
                self.weird.write_row(ts, &row)
            }
            _ => Ok(()),
        }
    }
}

impl<W: Write> Sink for ZeekLogs<W> {
    /// `websocket.log` rows come from `established` events, `weird.log` rows from anomalies.
    fn interest(&self) -> crate::sink::Interest {
        crate::sink::Interest::ESTABLISHED.union(crate::sink::Interest::ANOMALY)
    }

    /// A `weird.log` row without a connection (uid and addresses unset), as Zeek writes for
    /// weirds that concern no connection; not with `zeek_weirds_only`.
    fn capture_note(&mut self, note: &crate::sink::CaptureNote) {
        if self.error.is_some() || self.zeek_weirds_only {
            return;
        }
        let ts = note.ts.map_or(0, |t| t.as_micros());
        let row = [
            Value::Time(ts),
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Str(note.name.as_bytes()),
            Value::Str(note.detail.as_bytes()),
            Value::Bool(false),
            Value::Str(b"zeek"),
            Value::Str(b"wscope"),
        ];
        self.rows.1 += 1;
        if let Err(e) = self.weird.write_row(ts, &row) {
            self.error = Some(e);
        }
    }

    fn event(&mut self, ev: &Event<'_>) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.write(ev) {
            self.error = Some(e);
        }
    }
}

fn opt(s: Option<&str>) -> Value<'_> {
    s.map_or(Value::Unset, |s| Value::Str(s.as_bytes()))
}

fn vec(v: Vec<&[u8]>) -> Value<'_> {
    if v.is_empty() {
        Value::Unset
    } else {
        Value::Vector(v)
    }
}
