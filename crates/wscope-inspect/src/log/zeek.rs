//! Zeek's log formats: the ASCII (TSV) writer with its header block, and Zeek's JSON style.
//!
//! A log is a list of typed columns. The ASCII form starts with `#separator`, `#set_separator`,
//! `#empty_field`, `#unset_field`, `#path`, `#open`, `#fields` and `#types` lines and ends with
//! `#close`; an unset field is `-`, an empty vector `(empty)`, vector items are joined with `,`,
//! and bytes a reader could confuse (control bytes, the separators, a value equal to `-` or
//! `(empty)`) are written as `\xHH`. The JSON form writes one object per row with dotted
//! column names (`"id.orig_h"`), unset fields left out, times as seconds.
//!
//! `#open`/`#close` carry a date. Zeek uses the wall clock; we use the time of the first and
//! last record, so output depends only on the capture.

use core::net::IpAddr;
use std::io::{self, Write};

/// The type of a column, as written in the `#types` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// `time`: seconds with microseconds.
    Time,
    /// `string`.
    String,
    /// `addr`: an IPv4 or IPv6 address.
    Addr,
    /// `port`: a port number.
    Port,
    /// `count`: an unsigned integer.
    Count,
    /// `bool`: `T` or `F`.
    Bool,
    /// `vector[string]`.
    StringVector,
}

impl ColumnType {
    const fn name(self) -> &'static str {
        match self {
            Self::Time => "time",
            Self::String => "string",
            Self::Addr => "addr",
            Self::Port => "port",
            Self::Count => "count",
            Self::Bool => "bool",
            Self::StringVector => "vector[string]",
        }
    }
}

/// One field of a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// Microseconds since the Unix epoch.
    Time(u64),
    /// Raw bytes (escaped on output).
    Str(&'a [u8]),
    /// An address.
    Addr(IpAddr),
    /// A port.
    Port(u16),
    /// A count.
    Count(u64),
    /// A boolean.
    Bool(bool),
    /// A vector of strings.
    Vector(Vec<&'a [u8]>),
    /// No value (`-`).
    Unset,
}

/// Output style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Zeek's default tab-separated format with header lines.
    Ascii,
    /// Zeek's JSON style (`LogAscii::use_json=T`): one object per line.
    Json,
}

/// A writer for one Zeek log (`websocket`, `weird`, ...).
#[derive(Debug)]
pub struct ZeekLog<W: Write> {
    out: W,
    path: &'static str,
    columns: &'static [(&'static str, ColumnType)],
    style: Style,
    header_written: bool,
    last_ts: u64,
}

impl<W: Write> ZeekLog<W> {
    /// A log named `path` with the given columns.
    pub fn new(
        out: W,
        path: &'static str,
        columns: &'static [(&'static str, ColumnType)],
        style: Style,
    ) -> Self {
        Self {
            out,
            path,
            columns,
            style,
            header_written: false,
            last_ts: 0,
        }
    }

    /// Writes one row; `ts` (microseconds) dates the `#open` line of the first row and the
    /// `#close` line. `values` must match the columns in number.
    pub fn write_row(&mut self, ts: u64, values: &[Value<'_>]) -> io::Result<()> {
        let mut line = Vec::with_capacity(256);
        render_row(self.style, self.columns, values, &mut line)?;
        self.write_rendered(ts, &line)
    }

    /// Writes a row [`render_row`] made for this log's style and columns (the whole line,
    /// its newline included): the header first, when it is the first row, dated `ts`
    /// (microseconds), which also counts for the `#close` line.
    pub fn write_rendered(&mut self, ts: u64, line: &[u8]) -> io::Result<()> {
        if !self.header_written {
            self.header_written = true;
            if self.style == Style::Ascii {
                self.write_header(ts)?;
            }
        }
        self.last_ts = self.last_ts.max(ts);
        self.out.write_all(line)
    }

    /// Writes the `#close` line (ASCII, when a header was written) and flushes.
    pub fn finish(mut self) -> io::Result<W> {
        if self.header_written && self.style == Style::Ascii {
            writeln!(self.out, "#close\t{}", format_date(self.last_ts))?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    fn write_header(&mut self, ts: u64) -> io::Result<()> {
        let o = &mut self.out;
        writeln!(o, "#separator \\x09")?;
        writeln!(o, "#set_separator\t,")?;
        writeln!(o, "#empty_field\t(empty)")?;
        writeln!(o, "#unset_field\t-")?;
        writeln!(o, "#path\t{}", self.path)?;
        writeln!(o, "#open\t{}", format_date(ts))?;
        let names: Vec<&str> = self.columns.iter().map(|c| c.0).collect();
        writeln!(o, "#fields\t{}", names.join("\t"))?;
        let types: Vec<&str> = self.columns.iter().map(|c| c.1.name()).collect();
        writeln!(o, "#types\t{}", types.join("\t"))
    }
}

/// Appends one row of a log with `columns`, in `style`, to `out`: the line a [`ZeekLog`]
/// writes for it, newline included (what [`ZeekLog::write_rendered`] takes). `values` must
/// match the columns in number; on an error nothing is appended.
pub fn render_row(
    style: Style,
    columns: &[(&str, ColumnType)],
    values: &[Value<'_>],
    out: &mut Vec<u8>,
) -> io::Result<()> {
    if values.len() != columns.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "value count does not match columns",
        ));
    }
    match style {
        Style::Ascii => {
            render_ascii_row(values, out);
            Ok(())
        }
        Style::Json => {
            let start = out.len();
            let r = render_json_row(columns, values, out);
            if r.is_err() {
                out.truncate(start);
            }
            r
        }
    }
}

fn render_ascii_row(values: &[Value<'_>], line: &mut Vec<u8>) {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            line.push(b'\t');
        }
        match v {
            Value::Time(us) => line.extend_from_slice(format_time(*us).as_bytes()),
            Value::Str(s) => escape_field(line, s, false),
            Value::Addr(a) => line.extend_from_slice(a.to_string().as_bytes()),
            Value::Port(p) => line.extend_from_slice(p.to_string().as_bytes()),
            Value::Count(c) => line.extend_from_slice(c.to_string().as_bytes()),
            Value::Bool(b) => line.push(if *b { b'T' } else { b'F' }),
            Value::Vector(items) if items.is_empty() => line.extend_from_slice(b"(empty)"),
            Value::Vector(items) => {
                for (j, item) in items.iter().enumerate() {
                    if j > 0 {
                        line.push(b',');
                    }
                    escape_field(line, item, true);
                }
            }
            Value::Unset => line.push(b'-'),
        }
    }
    line.push(b'\n');
}

fn render_json_row(
    columns: &[(&str, ColumnType)],
    values: &[Value<'_>],
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let mut obj = serde_json::Map::new();
    for ((name, _), v) in columns.iter().zip(values) {
        let j = match v {
            Value::Time(us) => serde_json::json!(*us as f64 / 1e6),
            Value::Str(s) => serde_json::Value::String(json_string(s)),
            Value::Addr(a) => serde_json::Value::String(a.to_string()),
            Value::Port(p) => serde_json::json!(p),
            Value::Count(c) => serde_json::json!(c),
            Value::Bool(b) => serde_json::json!(b),
            Value::Vector(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|s| serde_json::Value::String(json_string(s)))
                    .collect(),
            ),
            Value::Unset => continue,
        };
        obj.insert((*name).to_string(), j);
    }
    serde_json::to_writer(&mut *out, &serde_json::Value::Object(obj))?;
    out.push(b'\n');
    Ok(())
}

/// Zeek's time format: seconds with six decimals.
pub fn format_time(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// `YYYY-MM-DD-HH-MM-SS` (UTC) for `#open`/`#close`.
pub fn format_date(us: u64) -> String {
    let secs = (us / 1_000_000) as i64;
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}-{:02}-{:02}-{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => String::from("1970-01-01-00-00-00"),
    }
}

/// Appends `s` escaped the way Zeek's ASCII writer does.
fn escape_field(out: &mut Vec<u8>, s: &[u8], in_vector: bool) {
    if s.is_empty() {
        // An empty string is written as nothing; Zeek prints an empty field for "".
        return;
    }
    if s == b"-" || s == b"(empty)" {
        out.extend_from_slice(format!("\\x{:02x}", s[0]).as_bytes());
        out.extend_from_slice(&s[1..]);
        return;
    }
    // Printable ASCII with nothing to escape (the usual field) goes in as it is.
    if s.iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'\\' && !(in_vector && b == b','))
    {
        out.extend_from_slice(s);
        return;
    }
    let text = core::str::from_utf8(s);
    for &b in s {
        let needs = b < 0x20
            || b == 0x7f
            || b == b'\\'
            || (in_vector && b == b',')
            || (b >= 0x80 && text.is_err());
        if needs {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        } else {
            out.push(b);
        }
    }
}

/// A JSON string for raw bytes: valid UTF-8 as is, other bytes as `\xHH` (Zeek's JSON style).
fn json_string(s: &[u8]) -> String {
    match core::str::from_utf8(s) {
        Ok(t) => t.to_string(),
        Err(_) => {
            let mut out = String::with_capacity(s.len() * 2);
            for chunk in s.utf8_chunks() {
                out.push_str(chunk.valid());
                for b in chunk.invalid() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            out
        }
    }
}

/// The columns of `websocket.log` (Zeek 7+, `base/protocols/websocket/main.zeek`).
pub const WEBSOCKET_COLUMNS: &[(&str, ColumnType)] = &[
    ("ts", ColumnType::Time),
    ("uid", ColumnType::String),
    ("id.orig_h", ColumnType::Addr),
    ("id.orig_p", ColumnType::Port),
    ("id.resp_h", ColumnType::Addr),
    ("id.resp_p", ColumnType::Port),
    ("host", ColumnType::String),
    ("uri", ColumnType::String),
    ("user_agent", ColumnType::String),
    ("subprotocol", ColumnType::String),
    ("client_protocols", ColumnType::StringVector),
    ("server_extensions", ColumnType::StringVector),
    ("client_extensions", ColumnType::StringVector),
];

/// The columns of `weird.log`.
pub const WEIRD_COLUMNS: &[(&str, ColumnType)] = &[
    ("ts", ColumnType::Time),
    ("uid", ColumnType::String),
    ("id.orig_h", ColumnType::Addr),
    ("id.orig_p", ColumnType::Port),
    ("id.resp_h", ColumnType::Addr),
    ("id.resp_p", ColumnType::Port),
    ("name", ColumnType::String),
    ("addl", ColumnType::String),
    ("notice", ColumnType::Bool),
    ("peer", ColumnType::String),
    ("source", ColumnType::String),
];

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn ascii_matches_zeek_layout() {
        let mut log = ZeekLog::new(Vec::new(), "websocket", WEBSOCKET_COLUMNS, Style::Ascii);
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        log.write_row(
            1_700_000_000_123_456,
            &[
                Value::Time(1_700_000_000_123_456),
                Value::Str(b"CHhAvVGS1DHFjwGM9"),
                Value::Addr(lo),
                Value::Port(53654),
                Value::Addr(lo),
                Value::Port(8080),
                Value::Str(b"localhost:8080"),
                Value::Str(b"/"),
                Value::Str(b"Python/3.10 websockets/12.0"),
                Value::Str(b"v1"),
                Value::Vector(vec![b"v1"]),
                Value::Unset,
                Value::Vector(vec![b"permessage-deflate; client_max_window_bits"]),
            ],
        )
        .unwrap();
        let text = String::from_utf8(log.finish().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#separator \\x09");
        assert_eq!(lines[4], "#path\twebsocket");
        assert_eq!(lines[5], "#open\t2023-11-14-22-13-20");
        assert!(lines[6].starts_with("#fields\tts\tuid\tid.orig_h"));
        assert_eq!(
            lines[8],
            "1700000000.123456\tCHhAvVGS1DHFjwGM9\t127.0.0.1\t53654\t127.0.0.1\t8080\tlocalhost:8080\t/\t\
             Python/3.10 websockets/12.0\tv1\tv1\t-\tpermessage-deflate; client_max_window_bits"
        );
        assert!(lines[9].starts_with("#close\t"));
    }

    #[test]
    fn every_byte_is_escaped_by_the_same_rule_in_plain_and_other_fields() {
        // Zeek's rule, byte by byte: control bytes, DEL, backslash, a comma in a vector, and
        // bytes >= 0x80 of invalid UTF-8 as \xHH.
        let rule = |s: &[u8], in_vector: bool| -> Vec<u8> {
            let valid = core::str::from_utf8(s).is_ok();
            let mut o = Vec::new();
            for &b in s {
                if b < 0x20
                    || b == 0x7f
                    || b == b'\\'
                    || (in_vector && b == b',')
                    || (b >= 0x80 && !valid)
                {
                    o.extend_from_slice(format!("\\x{b:02x}").as_bytes());
                } else {
                    o.push(b);
                }
            }
            o
        };
        let mut fields: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b'a', b, b'z']).collect();
        fields.extend([
            b"GET /chat?x=1,2 HTTP/1.1".to_vec(),
            "h\u{e9}llo, w\u{f6}rld".as_bytes().to_vec(),
            b"bad \xff utf-8, here".to_vec(),
            b"permessage-deflate; client_max_window_bits".to_vec(),
        ]);
        for f in &fields {
            for in_vector in [false, true] {
                let mut out = Vec::new();
                escape_field(&mut out, f, in_vector);
                assert_eq!(out, rule(f, in_vector), "{f:?} {in_vector}");
            }
        }
    }

    #[test]
    fn escaping_and_json() {
        let mut out = Vec::new();
        escape_field(&mut out, b"a\tb\x01\\", false);
        assert_eq!(out, b"a\\x09b\\x01\\x5c");
        out.clear();
        escape_field(&mut out, b"-", false);
        assert_eq!(out, b"\\x2d");
        out.clear();
        escape_field(&mut out, b"x,y", true);
        assert_eq!(out, b"x\\x2cy");

        let mut log = ZeekLog::new(Vec::new(), "weird", WEIRD_COLUMNS, Style::Json);
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        log.write_row(
            1_000_000,
            &[
                Value::Time(1_000_000),
                Value::Str(b"C1"),
                Value::Addr(a),
                Value::Port(40081),
                Value::Addr(b),
                Value::Port(80),
                Value::Str(b"websocket_control_frame_size_exceeded"),
                Value::Str(b"258 > 125"),
                Value::Bool(false),
                Value::Str(b"zeek"),
                Value::Str(b"WEBSOCKET"),
            ],
        )
        .unwrap();
        let text = String::from_utf8(log.finish().unwrap()).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["ts"], 1.0);
        assert_eq!(v["id.orig_p"], 40081);
        assert_eq!(v["addl"], "258 > 125");
        assert_eq!(v["notice"], false);
        assert_eq!(format_date(0), "1970-01-01-00-00-00");
    }
}
