//! Output: Zeek logs ([`zeek`]: `websocket.log`, `weird.log`), the sink that writes them
//! ([`ZeekLogs`]), and JSON Lines events ([`json`]).
//!
//! A parallel run ([`crate::parallel`]) can have the logs' rows rendered by its workers: each
//! worker renders the rows of its connections with a [`ZeekRows`], and the merging thread
//! hands them, in the order of one run, to the logs ([`ZeekOutput`]), which only add the
//! header and copy the lines.

pub mod json;
pub mod zeek;

use std::io::{self, Write};

use crate::event::{Event, EventKind};
use crate::sink::Sink;
use zeek::{render_row, Style, Value, ZeekLog, WEBSOCKET_COLUMNS, WEIRD_COLUMNS};

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
    style: Style,
    /// Only anomalies Zeek reports go to `weird.log` (exact Zeek output).
    zeek_weirds_only: bool,
    error: Option<io::Error>,
    /// Rows written to each log.
    pub rows: (u64, u64),
    /// The row being written (its buffer reused).
    line: Vec<u8>,
}

impl<W: Write> ZeekLogs<W> {
    /// Logs written to `websocket` and `weird` in `style`.
    pub fn new(websocket: W, weird: W, style: Style, zeek_weirds_only: bool) -> Self {
        Self {
            websocket: ZeekLog::new(websocket, "websocket", WEBSOCKET_COLUMNS, style),
            weird: ZeekLog::new(weird, "weird", WEIRD_COLUMNS, style),
            style,
            zeek_weirds_only,
            error: None,
            rows: (0, 0),
            line: Vec::new(),
        }
    }

    /// Writes the `#close` lines and returns both writers, or the first write error.
    pub fn finish(self) -> io::Result<(W, W)> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok((self.websocket.finish()?, self.weird.finish()?))
    }

    /// The renderer of these logs' rows (same style and filter).
    pub const fn renderer(&self) -> ZeekRows {
        ZeekRows {
            style: self.style,
            zeek_weirds_only: self.zeek_weirds_only,
        }
    }

    fn write(&mut self, ev: &Event<'_>) -> io::Result<()> {
        let mut line = core::mem::take(&mut self.line);
        line.clear();
        let r = match self.renderer().render(ev, &mut line) {
            Ok(Some((log, ts))) => self.put(log, ts, &line),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        self.line = line;
        r
    }

    /// Writes a rendered row to its log, counting it.
    fn put(&mut self, log: LogKind, ts: u64, line: &[u8]) -> io::Result<()> {
        match log {
            LogKind::Websocket => {
                self.rows.0 += 1;
                self.websocket.write_rendered(ts, line)
            }
            LogKind::Weird => {
                self.rows.1 += 1;
                self.weird.write_rendered(ts, line)
            }
        }
    }
}

/// The two logs of [`ZeekLogs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogKind {
    /// `weird.log`: one row per anomaly.
    Weird,
    /// `websocket.log`: one row per upgrade.
    Websocket,
}

/// Renders the rows [`ZeekLogs`] writes for an event, into memory: what the workers of a
/// parallel run do with the events of their connections (see [`ZeekOutput`]). Cheap to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZeekRows {
    style: Style,
    zeek_weirds_only: bool,
}

impl ZeekRows {
    /// Appends the row `ev` gives (an `established` event: a `websocket.log` row; an anomaly:
    /// a `weird.log` row, unless only Zeek's weirds are written and Zeek has no name for it)
    /// to `out`, newline included, and says which log it belongs to and its time
    /// (microseconds); `None` (nothing appended) for any other event.
    ///
    /// # Errors
    ///
    /// A row that cannot be rendered (JSON style only); nothing is appended then.
    pub fn render(&self, ev: &Event<'_>, out: &mut Vec<u8>) -> io::Result<Option<(LogKind, u64)>> {
        if !matches!(
            ev.kind,
            EventKind::Established(..) | EventKind::Anomaly { .. }
        ) {
            return Ok(None);
        }
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
                let row = [
                    Value::Time(ts),
                    Value::Str(uid.as_str().as_bytes()),
                    id[0].clone(),
                    id[1].clone(),
                    id[2].clone(),
                    id[3].clone(),
                    opt(up.host()),
                    opt(up.uri()),
                    opt(up.user_agent()),
                    opt(up.subprotocol()),
                    vec(protos),
                    vec(server_ext),
                    vec(client_ext),
                ];
                render_row(self.style, WEBSOCKET_COLUMNS, &row, out)?;
                Ok(Some((LogKind::Websocket, ts)))
            }
            EventKind::Anomaly {
                name,
                zeek_weird,
                detail,
            } => {
                if self.zeek_weirds_only && zeek_weird.is_none() {
                    return Ok(None);
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
                render_row(self.style, WEIRD_COLUMNS, &row, out)?;
                Ok(Some((LogKind::Weird, ts)))
            }
            _ => Ok(None),
        }
    }
}

/// Zeek logs whose rows are rendered elsewhere (by the workers of a parallel run, with the
/// [`ZeekRows`] of [`ZeekOutput::renderer`]) and written here in order: the logs add the header
/// before the first row and count the rows. Capture notes ([`Sink::capture_note`]) are still
/// written by the logs themselves. [`ZeekLogs`] is one.
pub trait ZeekOutput: Sink {
    /// How the rows are to be rendered.
    fn renderer(&self) -> ZeekRows;

    /// Writes a row rendered by [`ZeekOutput::renderer`] for an event of time `ts`
    /// (microseconds) to `log`. A write error is kept, as the logs keep it for events.
    fn put_row(&mut self, log: LogKind, ts: u64, line: &[u8]);
}

impl<W: Write> ZeekOutput for ZeekLogs<W> {
    fn renderer(&self) -> ZeekRows {
        Self::renderer(self)
    }

    fn put_row(&mut self, log: LogKind, ts: u64, line: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.put(log, ts, line) {
            self.error = Some(e);
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
