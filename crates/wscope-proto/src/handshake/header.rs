//! Header fields: the owned header block of a parsed head, comma-separated token lists, and the
//! `Sec-WebSocket-Extensions` grammar (RFC 6455 section 9.1) that permessage-deflate reuses.
//!
//! ```
//! use wscope_proto::handshake::{list_elements, parse_extensions};
//!
//! let value = b"permessage-deflate; client_max_window_bits, x-foo; a=\"1\"";
//! let elements: Vec<&[u8]> = list_elements(value).collect();
//! assert_eq!(elements, [&b"permessage-deflate; client_max_window_bits"[..], b"x-foo; a=\"1\""]);
//!
//! let exts = parse_extensions(value).unwrap();
//! assert_eq!(exts[0].name, "permessage-deflate");
//! assert_eq!(exts[0].params[0].name, "client_max_window_bits");
//! assert_eq!(exts[0].params[0].value, None);
//! assert_eq!(exts[1].param("a").and_then(|p| p.value.as_deref()), Some("1"));
//! ```

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::error::UpgradeError;
use super::{Limits, Progress};

/// A byte range inside a head buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// The range `start..end`.
    pub(crate) const fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// The range of `sub` inside `buf`, when `sub` is a sub-slice of `buf`.
    pub(crate) fn of(buf: &[u8], sub: &[u8]) -> Option<Self> {
        let base = buf.as_ptr() as usize;
        let at = (sub.as_ptr() as usize).checked_sub(base)?;
        let end = at.checked_add(sub.len())?;
        (end <= buf.len()).then_some(Self { start: at, end })
    }

    pub(crate) fn get(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start..self.end).unwrap_or(&[])
    }

    pub(crate) fn get_str(self, buf: &[u8]) -> &str {
        core::str::from_utf8(self.get(buf)).unwrap_or("")
    }
}

/// Whether `b` may appear in an HTTP token (RFC 9110 `tchar`).
pub const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`'
        | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// Whether `s` is a non-empty HTTP token (header names, subprotocols, extension names).
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Whether `value` may be written as a header value: no CR, LF, NUL or other control
/// character except horizontal tab.
pub fn is_valid_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

const fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// The elements of one comma-separated header value (RFC 9110 section 5.6.1), trimmed of
/// whitespace, empty elements skipped. Commas inside quoted strings do not split.
pub fn list_elements(value: &[u8]) -> ListElements<'_> {
    ListElements { rest: value }
}

/// Iterator returned by [`list_elements`].
#[derive(Clone, Debug)]
pub struct ListElements<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ListElements<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.rest.is_empty() {
            let mut in_quote = false;
            let mut escaped = false;
            let mut end = self.rest.len();
            for (i, &b) in self.rest.iter().enumerate() {
                if escaped {
                    escaped = false;
                } else if in_quote && b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_quote = !in_quote;
                } else if b == b',' && !in_quote {
                    end = i;
                    break;
                }
            }
            let (element, rest) = self.rest.split_at(end);
            self.rest = rest.get(1..).unwrap_or(&[]);
            let element = trim_ows(element);
            if !element.is_empty() {
                return Some(element);
            }
        }
        None
    }
}

/// Whether the comma-separated `value` contains `token`, compared ASCII case-insensitively.
pub fn has_token(value: &[u8], token: &str) -> bool {
    list_elements(value).any(|e| e.eq_ignore_ascii_case(token.as_bytes()))
}

/// One header field of a parsed head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "closed: a header field is a name and a value"
)]
pub struct Header<'a> {
    /// The name as received (a token; compare it case-insensitively).
    pub name: &'a str,
    /// The value as received, without surrounding whitespace. Not necessarily UTF-8.
    pub value: &'a [u8],
}

/// The header fields of a parsed HTTP head, in order, repeated fields kept.
///
/// Owns the head's bytes; every accessor returns slices of them. Names are compared ASCII
/// case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Headers {
    head: Vec<u8>,
    fields: Vec<(Span, Span)>,
}

impl Headers {
    pub(crate) fn new(head: Vec<u8>, fields: Vec<(Span, Span)>) -> Self {
        Self { head, fields }
    }

    /// The head whose first `len` bytes are `head` (the rest of the buffer is dropped), with
    /// its fields.
    pub(crate) fn kept(mut head: Vec<u8>, len: usize, fields: Vec<(Span, Span)>) -> Self {
        head.truncate(len);
        Self::new(head, fields)
    }

    /// The whole head as received (start line, header fields, final empty line).
    pub fn raw(&self) -> &[u8] {
        &self.head
    }

    /// The number of header fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no header fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// All fields in order.
    pub fn iter(&self) -> impl Iterator<Item = Header<'_>> + '_ {
        self.fields.iter().map(|&(n, v)| Header {
            name: n.get_str(&self.head),
            value: v.get(&self.head),
        })
    }

    /// The values of every field called `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        // Names compared as bytes: no UTF-8 check of every name at every lookup (the
        // handshake checks make dozens of lookups per head).
        self.fields
            .iter()
            .filter(move |(n, _)| n.get(&self.head).eq_ignore_ascii_case(name.as_bytes()))
            .map(|&(_, v)| v.get(&self.head))
    }

    /// The value of the first field called `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n.get(&self.head).eq_ignore_ascii_case(name.as_bytes()))
            .map(|&(_, v)| v.get(&self.head))
    }

    /// The value of the first field called `name`, if it is UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// How many fields are called `name`.
    pub fn count(&self, name: &str) -> usize {
        self.fields
            .iter()
            .filter(|(n, _)| n.get(&self.head).eq_ignore_ascii_case(name.as_bytes()))
            .count()
    }

    /// The comma-separated elements of every field called `name`, in order (a repeated list
    /// header means the same as one field with the values joined by commas).
    pub fn list<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name).flat_map(list_elements)
    }

    /// Whether the list header `name` contains `token` (ASCII case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name).any(|v| has_token(v, token))
    }

    /// Every extension of the list header `name`, parsed (all fields together).
    pub fn extensions(&self, name: &'static str) -> Result<Vec<Extension<'_>>, UpgradeError> {
        let mut out = Vec::new();
        for value in self.get_all(name) {
            let parsed =
                parse_extensions(value).map_err(|_| UpgradeError::InvalidHeader { name })?;
            out.extend(parsed);
        }
        Ok(out)
    }
}

/// One extension offered or accepted in `Sec-WebSocket-Extensions`: a name and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "closed: an extension is a name and its parameters (RFC 6455 section 9.1)"
)]
pub struct Extension<'a> {
    /// The extension's name (a token), e.g. `permessage-deflate`.
    pub name: &'a str,
    /// Its parameters in order.
    pub params: Vec<ExtensionParam<'a>>,
}

impl Extension<'_> {
    /// The first parameter called `name` (ASCII case-insensitive).
    pub fn param(&self, name: &str) -> Option<&ExtensionParam<'_>> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Extension<'_> {
    /// Writes the extension back in header syntax: `name; p1; p2=v`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        for p in &self.params {
            write!(f, "; {}", p.name)?;
            if let Some(v) = &p.value {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

/// A parameter of an [`Extension`]: `name` or `name=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_structs,
    reason = "closed: a parameter is a name and an optional value (RFC 6455 section 9.1)"
)]
pub struct ExtensionParam<'a> {
    /// The parameter's name (a token).
    pub name: &'a str,
    /// The value, unquoted and unescaped; a token either way (RFC 6455 section 9.1).
    pub value: Option<Cow<'a, str>>,
}

/// A `Sec-WebSocket-Extensions` value does not follow the grammar of RFC 6455 section 9.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExtensionSyntaxError {
    /// Byte offset of the first byte that does not fit.
    pub offset: usize,
}

impl fmt::Display for ExtensionSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid extension list at byte {}", self.offset)
    }
}

impl core::error::Error for ExtensionSyntaxError {}

struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn skip_ows(&mut self) {
        while self.peek().is_some_and(is_ows) {
            self.at += 1;
        }
    }

    fn err(&self) -> ExtensionSyntaxError {
        ExtensionSyntaxError { offset: self.at }
    }

    fn token(&mut self) -> Result<&'a str, ExtensionSyntaxError> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        let tok = self.s.get(start..self.at).unwrap_or(&[]);
        if tok.is_empty() {
            return Err(self.err());
        }
        core::str::from_utf8(tok).map_err(|_| self.err())
    }

    /// A quoted string; the cursor is on the opening quote. Its unescaped content must be a
    /// token (RFC 6455 section 9.1).
    fn quoted(&mut self) -> Result<Cow<'a, str>, ExtensionSyntaxError> {
        let open = self.at;
        self.at += 1;
        let start = self.at;
        let mut escapes = false;
        loop {
            match self.peek() {
                None => return Err(ExtensionSyntaxError { offset: open }),
                Some(b'"') => break,
                Some(b'\\') => {
                    escapes = true;
                    self.at += 2;
                }
                Some(_) => self.at += 1,
            }
        }
        let inner = self.s.get(start..self.at).unwrap_or(&[]);
        self.at += 1;
        let value: Cow<'a, str> = if escapes {
            let mut out = String::new();
            let mut it = inner.iter();
            while let Some(&b) = it.next() {
                let c = if b == b'\\' {
                    it.next().copied().unwrap_or(b'\\')
                } else {
                    b
                };
                out.push(char::from(c));
            }
            Cow::Owned(out)
        } else {
            Cow::Borrowed(
                core::str::from_utf8(inner).map_err(|_| ExtensionSyntaxError { offset: start })?,
            )
        };
        if is_token(value.as_bytes()) {
            Ok(value)
        } else {
            Err(ExtensionSyntaxError { offset: start })
        }
    }
}

/// Parses one `Sec-WebSocket-Extensions` value: `name; p1; p2=v, other` (empty list elements
/// are allowed and skipped; values may be tokens or quoted strings).
pub fn parse_extensions(value: &[u8]) -> Result<Vec<Extension<'_>>, ExtensionSyntaxError> {
    let mut c = Cursor { s: value, at: 0 };
    let mut out = Vec::new();
    loop {
        c.skip_ows();
        match c.peek() {
            None => return Ok(out),
            Some(b',') => {
                c.at += 1;
                continue;
            }
            Some(_) => {}
        }
        let name = c.token()?;
        let mut params = Vec::new();
        c.skip_ows();
        while c.peek() == Some(b';') {
            c.at += 1;
            c.skip_ows();
            let pname = c.token()?;
            c.skip_ows();
            let mut pvalue = None;
            if c.peek() == Some(b'=') {
                c.at += 1;
                c.skip_ows();
                pvalue = Some(if c.peek() == Some(b'"') {
                    c.quoted()?
                } else {
                    Cow::Borrowed(c.token()?)
                });
                c.skip_ows();
            }
            params.push(ExtensionParam {
                name: pname,
                value: pvalue,
            });
        }
        out.push(Extension { name, params });
        match c.peek() {
            None => return Ok(out),
            Some(b',') => c.at += 1,
            Some(_) => return Err(c.err()),
        }
    }
}

/// Accumulates a head across reads, up to a size limit, stopping at the end of the head so
/// that no byte after it is ever taken.
#[derive(Clone, Debug, Default)]
pub(crate) struct HeadBuffer {
    buf: Vec<u8>,
}

/// What [`HeadBuffer::push`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Push {
    /// All the input was taken; the head has not ended.
    NeedMore,
    /// The buffer now ends with an empty line (`\n\n` or `\n\r\n`), after taking `used` bytes
    /// of the input. It may still be an incomplete head (empty lines before the start line),
    /// which the caller finds out by parsing.
    Candidate { used: usize },
}

impl HeadBuffer {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn take(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.buf)
    }

    /// Puts back a buffer taken with [`HeadBuffer::take`] (the candidate was not a whole head).
    pub(crate) fn restore(&mut self, buf: Vec<u8>) {
        self.buf = buf;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes bytes of `input` up to the first possible end of the head. Fails with
    /// [`UpgradeError::HeadTooLarge`] as soon as the head would pass `limit` bytes.
    pub(crate) fn push(&mut self, input: &[u8], limit: usize) -> Result<Push, UpgradeError> {
        let have = self.buf.len();
        let before = |i: usize, back: usize| -> Option<u8> {
            // The byte `back` positions before input[i], looking into the buffer if needed.
            match i.checked_sub(back) {
                Some(j) => input.get(j).copied(),
                None => {
                    let k = back - i;
                    have.checked_sub(k).and_then(|j| self.buf.get(j).copied())
                }
            }
        };
        let end = input.iter().enumerate().find_map(|(i, &b)| {
            let ends = b == b'\n'
                && (before(i, 1) == Some(b'\n')
                    || (before(i, 1) == Some(b'\r') && before(i, 2) == Some(b'\n')));
            ends.then_some(i + 1)
        });
        let take = end.unwrap_or(input.len());
        if have.saturating_add(take) > limit {
            return Err(UpgradeError::HeadTooLarge { limit });
        }
        self.buf
            .extend_from_slice(input.get(..take).unwrap_or(input));
        Ok(match end {
            Some(used) => Push::Candidate { used },
            None => Push::NeedMore,
        })
    }
}

/// Feeds `input` into `hb` until a complete head parses.
///
/// `parse` gets the candidate head (ownership moves in); it answers `Ok(Ok((value, len)))` for a
/// complete head of `len` bytes, `Ok(Err(buffer))` (giving the buffer back) when the candidate
/// is not a complete head after all. Returns the value and the bytes of `input` after the head.
pub(crate) fn feed_head<'b, T>(
    hb: &mut HeadBuffer,
    input: &'b [u8],
    limits: &Limits,
    mut parse: impl FnMut(Vec<u8>, &Limits) -> HeadParse<T>,
) -> Result<Option<(T, &'b [u8])>, UpgradeError> {
    let mut at = 0;
    loop {
        let rest = input.get(at..).unwrap_or(&[]);
        match hb.push(rest, limits.max_head_len)? {
            Push::NeedMore => return Ok(None),
            Push::Candidate { used } => {
                at += used;
                let have = hb.len();
                match parse(hb.take(), limits)? {
                    Ok((value, len)) => {
                        // The head normally ends where the candidate does; if the parser stopped
                        // earlier, the extra bytes go back to the leftover.
                        let extra = have.saturating_sub(len).min(at);
                        return Ok(Some((value, input.get(at - extra..).unwrap_or(&[]))));
                    }
                    Err(buffer) => hb.restore(buffer),
                }
            }
        }
    }
}

/// Heads shorter than this are parsed as they grow, so that bytes that are not HTTP at all
/// are recognised early instead of being collected up to the size limit.
pub(crate) const EARLY_CHECK_LEN: usize = 1024;

/// A syntax error already visible in the start of a head that has not ended yet.
pub(crate) fn early_error(partial: &[u8], request: bool) -> Option<UpgradeError> {
    if partial.len() > EARLY_CHECK_LEN {
        return None;
    }
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let result = if request {
        httparse::Request::new(&mut fields).parse(partial)
    } else {
        httparse::Response::new(&mut fields).parse(partial)
    };
    match result {
        Err(httparse::Error::TooManyHeaders) | Ok(_) => None,
        Err(e) => Some(http_error(e, &Limits::default())),
    }
}

/// Maps an `httparse` error to ours.
/// What parsing a candidate head gives: the value and the head's length, the buffer back
/// when the head is not complete yet, or an error.
pub(crate) type HeadParse<T> = Result<Result<(T, usize), Vec<u8>>, UpgradeError>;

/// The result of a parse from the front of a byte stream with `from_head` (a request's or a
/// response's): the shell both head types share.
pub(crate) fn parse_progress<'b, T>(
    bytes: &'b [u8],
    limits: &Limits,
    from_head: fn(Vec<u8>, &Limits) -> HeadParse<T>,
) -> Result<Progress<'b, T>, UpgradeError> {
    let mut hb = HeadBuffer::default();
    Ok(match feed_head(&mut hb, bytes, limits, from_head)? {
        Some((head, leftover)) => Progress::Done { head, leftover },
        None => Progress::NeedMore,
    })
}

/// Header slots for httparse: at most `max_headers`, and no more than `head` can hold (a
/// field takes at least 3 bytes: `a:` and a newline).
pub(crate) fn header_slots(limits: &Limits, head: &[u8]) -> Vec<httparse::Header<'static>> {
    alloc::vec![httparse::EMPTY_HEADER; limits.max_headers.min(head.len() / 3 + 1)]
}

/// The head's length once httparse has seen all of it; `None` while it is partial.
pub(crate) fn complete_len(
    parsed: httparse::Result<usize>,
    limits: &Limits,
) -> Result<Option<usize>, UpgradeError> {
    match parsed {
        Ok(httparse::Status::Complete(n)) => Ok(Some(n)),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(http_error(e, limits)),
    }
}

pub(crate) fn http_error(e: httparse::Error, limits: &Limits) -> UpgradeError {
    match e {
        httparse::Error::TooManyHeaders => UpgradeError::TooManyHeaders {
            limit: limits.max_headers,
        },
        httparse::Error::HeaderName => UpgradeError::MalformedHttp {
            detail: "invalid header name",
        },
        httparse::Error::HeaderValue => UpgradeError::MalformedHttp {
            detail: "invalid header value",
        },
        httparse::Error::NewLine => UpgradeError::MalformedHttp {
            detail: "invalid new line",
        },
        httparse::Error::Status => UpgradeError::MalformedHttp {
            detail: "invalid status",
        },
        httparse::Error::Token => UpgradeError::MalformedHttp {
            detail: "invalid token",
        },
        httparse::Error::Version => UpgradeError::MalformedHttp {
            detail: "invalid HTTP version",
        },
    }
}

/// Turns `httparse` header slices into spans of `head`.
pub(crate) fn spans(
    head: &[u8],
    headers: &[httparse::Header<'_>],
) -> Result<Vec<(Span, Span)>, UpgradeError> {
    let bad = UpgradeError::MalformedHttp {
        detail: "header outside the head",
    };
    headers
        .iter()
        .map(|h| {
            let name = Span::of(head, h.name.as_bytes()).ok_or(bad)?;
            let value = Span::of(head, trim_ows(h.value)).ok_or(bad)?;
            Ok((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn lists_split_trim_and_respect_quotes() {
        let v: Vec<&[u8]> = list_elements(b" a ,, b\t,c=\"x,y\" ,").collect();
        assert_eq!(v, vec![&b"a"[..], b"b", b"c=\"x,y\""]);
        assert_eq!(list_elements(b"").count(), 0);
        assert_eq!(list_elements(b" , ,").count(), 0);
        assert!(has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(has_token(b"UPGRADE", "upgrade"));
        assert!(!has_token(b"upgrades, keep-alive", "upgrade"));
        // An unterminated quote swallows the rest without panicking.
        let v: Vec<&[u8]> = list_elements(b"a, \"b, c").collect();
        assert_eq!(v, vec![&b"a"[..], b"\"b, c"]);
    }

    #[test]
    fn extension_grammar() {
        let e = parse_extensions(
            b"permessage-deflate; client_max_window_bits; server_max_window_bits=10, x",
        )
        .unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].params.len(), 2);
        assert_eq!(e[0].params[1].value.as_deref(), Some("10"));
        assert_eq!(e[1].name, "x");
        assert!(e[1].params.is_empty());
        let q = parse_extensions(b"a;b=\"1\\5\"").unwrap();
        assert_eq!(q[0].params[0].value.as_deref(), Some("15"));
        assert!(matches!(q[0].params[0].value, Some(Cow::Owned(_))));
        assert_eq!(
            alloc::format!("{}", e[0]),
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10"
        );
        assert_eq!(parse_extensions(b"").unwrap(), vec![]);
        assert_eq!(parse_extensions(b" , ").unwrap(), vec![]);
        for bad in [
            &b"a;"[..],
            b"a b",
            b";a",
            b"a;b=",
            b"a;b=\"x y\"",
            b"a;b=\"unterminated",
            b"a;b=\"\"",
            b"a=1",
        ] {
            assert!(parse_extensions(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_extensions(b"a b"),
            Err(ExtensionSyntaxError { offset: 2 })
        );
    }

    #[test]
    fn head_buffer_stops_at_the_empty_line() {
        let mut hb = HeadBuffer::default();
        assert_eq!(hb.push(b"GET / HTTP/1.1\r\n", 100).unwrap(), Push::NeedMore);
        assert_eq!(hb.push(b"\r", 100).unwrap(), Push::NeedMore);
        assert_eq!(
            hb.push(b"\nrest", 100).unwrap(),
            Push::Candidate { used: 1 }
        );
        assert_eq!(hb.bytes(), b"GET / HTTP/1.1\r\n\r\n");
        let mut hb = HeadBuffer::default();
        assert_eq!(
            hb.push(b"X\n\nY", 100).unwrap(),
            Push::Candidate { used: 3 }
        );
        let mut hb = HeadBuffer::default();
        assert_eq!(
            hb.push(&[b'a'; 11], 10),
            Err(UpgradeError::HeadTooLarge { limit: 10 })
        );
        let mut hb = HeadBuffer::default();
        assert_eq!(
            hb.push(b"abcdefgh\r\n\r\n", 12).unwrap(),
            Push::Candidate { used: 12 }
        );
    }
}
