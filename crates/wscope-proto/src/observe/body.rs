//! HTTP message bodies before the upgrade: their length from the head (`Content-Length`,
//! chunked coding, until close) and skipping their bytes, so that keep-alive exchanges are
//! followed.

use crate::handshake::{Headers, Request, Response};

/// The state of a chunked body being skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Chunked {
    /// In a chunk-size line (digits, then extensions up to LF).
    Size {
        value: u64,
        digits: u8,
        ext: bool,
        line: u16,
    },
    /// Inside chunk data.
    Data(u64),
    /// The CRLF after chunk data.
    DataEnd,
    /// Trailer lines, until an empty one.
    Trailer { line: u16 },
}

const CHUNK_START: Chunked = Chunked::Size {
    value: 0,
    digits: 0,
    ext: false,
    line: 0,
};
const MAX_CHUNK_LINE: u16 = 4096;

impl Chunked {
    /// Skips chunked-body bytes at the front of `buf`: how many were used and whether the body
    /// ended; `Err` for broken framing.
    fn skip(&mut self, buf: &[u8]) -> Result<(usize, bool), ()> {
        let mut i = 0;
        while let Some(&b) = buf.get(i) {
            match self {
                Self::Data(n) => {
                    let take = (*n).min((buf.len() - i) as u64);
                    i += take as usize;
                    *n -= take;
                    if *n == 0 {
                        *self = Self::DataEnd;
                    }
                    continue;
                }
                Self::Size {
                    value,
                    digits,
                    ext,
                    line,
                } => {
                    *line += 1;
                    if *line > MAX_CHUNK_LINE {
                        return Err(());
                    }
                    match b {
                        b'\n' if *digits == 0 => return Err(()),
                        b'\n' if *value == 0 => *self = Self::Trailer { line: 0 },
                        b'\n' => *self = Self::Data(*value),
                        b'\r' => {}
                        _ if *ext => {}
                        b';' | b' ' | b'\t' if *digits > 0 => *ext = true,
                        _ => {
                            let d = char::from(b).to_digit(16).ok_or(())?;
                            if *digits >= 15 {
                                return Err(());
                            }
                            *value = (*value << 4) | u64::from(d);
                            *digits += 1;
                        }
                    }
                }
                Self::DataEnd => match b {
                    b'\r' => {}
                    b'\n' => *self = CHUNK_START,
                    _ => return Err(()),
                },
                Self::Trailer { line } => match b {
                    b'\n' if *line == 0 => return Ok((i + 1, true)),
                    b'\n' => *line = 0,
                    b'\r' => {}
                    _ => {
                        *line += 1;
                        if *line > MAX_CHUNK_LINE {
                            return Err(());
                        }
                    }
                },
            }
            i += 1;
        }
        Ok((i, false))
    }
}

/// An HTTP body being skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Body {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
}

impl Body {
    pub(super) fn skip(&mut self, buf: &[u8]) -> Result<(usize, bool), ()> {
        match self {
            Self::Length(n) => {
                let take = (*n).min(buf.len() as u64);
                *n -= take;
                Ok((take as usize, *n == 0))
            }
            Self::Chunked(c) => c.skip(buf),
            Self::UntilClose => Ok((buf.len(), false)),
        }
    }

    /// Skips lost bytes; false when the gap did not fall inside data of known length.
    pub(super) fn gap(&mut self, len: u64) -> bool {
        match self {
            Self::Length(n) if len <= *n => {
                *n -= len;
                true
            }
            Self::Chunked(Chunked::Data(n)) if len <= *n => {
                *n -= len;
                if *n == 0 {
                    *self = Self::Chunked(Chunked::DataEnd);
                }
                true
            }
            Self::UntilClose => true,
            _ => false,
        }
    }

    pub(super) fn is_done(&self) -> bool {
        matches!(self, Self::Length(0))
    }
}

const TRANSFER_ENCODING: &str = "Transfer-Encoding";
const CONTENT_LENGTH: &str = "Content-Length";

/// The `Content-Length`: `Err` when values disagree or are not numbers.
fn content_length(h: &Headers) -> Result<Option<u64>, ()> {
    let mut found = None;
    for v in h.list(CONTENT_LENGTH) {
        let s = core::str::from_utf8(v).map_err(|_| ())?;
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        let n: u64 = s.parse().map_err(|_| ())?;
        if found.is_some_and(|f| f != n) {
            return Err(());
        }
        found = Some(n);
    }
    Ok(found)
}

fn last_coding_is_chunked(h: &Headers) -> bool {
    h.list(TRANSFER_ENCODING)
        .last()
        .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
}

pub(super) fn request_body(req: &Request) -> Result<Option<Body>, ()> {
    let h = req.headers();
    if h.count(TRANSFER_ENCODING) > 0 {
        return if last_coding_is_chunked(h) {
            Ok(Some(Body::Chunked(CHUNK_START)))
        } else {
            Err(())
        };
    }
    Ok(content_length(h)?.filter(|&n| n > 0).map(Body::Length))
}

pub(super) fn response_body(resp: &Response, to_head: bool) -> Result<Option<Body>, ()> {
    let s = resp.status();
    if (100..200).contains(&s) || s == 204 || s == 304 || to_head {
        return Ok(None);
    }
    let h = resp.headers();
    if h.count(TRANSFER_ENCODING) > 0 {
        return Ok(Some(if last_coding_is_chunked(h) {
            Body::Chunked(CHUNK_START)
        } else {
            Body::UntilClose
        }));
    }
    Ok(match content_length(h)? {
        Some(0) => None,
        Some(n) => Some(Body::Length(n)),
        None => Some(Body::UntilClose),
    })
}
