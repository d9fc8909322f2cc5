//! One direction's bytes → HTTP/2 frames (RFC 9113 §4), incrementally: the client's
//! connection preface, frame headers, DATA payloads streamed as they arrive (padding removed,
//! nothing buffered), and the payload of other frames gathered whole up to a cap.
//!
//! Memory: a partial frame header (9 bytes) and the payload of one non-DATA frame, at most
//! [`Reader::new`]'s `cap` bytes; a larger one is passed over ([`Item::Skipped`]).

use super::frame::{self, FrameHeader, FrameType, HEADER_LEN, PADDED, PREFACE};

/// What a [`Reader`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// The bytes are not the client connection preface (RFC 9113 §3.4): the direction
    /// stops.
    BadPreface,
    /// A piece of a DATA frame's data (padding removed).
    Data {
        /// The frame's header.
        header: FrameHeader,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// The end of a DATA frame (after its last piece; for END_STREAM).
    DataEnd(FrameHeader),
    /// A DATA frame whose padding does not fit (RFC 9113 §6.1): its payload is passed over.
    BadPadding(FrameHeader, frame::FrameError),
    /// A whole frame other than DATA.
    Frame(FrameHeader, &'a [u8]),
    /// A frame longer than the receiver's `SETTINGS_MAX_FRAME_SIZE` (RFC 9113 §4.2): reported
    /// when its header is read; the frame is still read.
    Oversized {
        /// Its header.
        header: FrameHeader,
        /// The receiver's limit.
        max: u32,
    },
    /// A frame other than DATA whose payload was over the cap: passed over.
    Skipped(FrameHeader),
}

/// Where the reader is.
#[derive(Debug)]
enum State {
    /// Bytes of the client preface still to match.
    Preface(usize),
    /// Reading a frame header.
    Header,
    /// In a DATA frame: the pad length byte is next (`pad` is `None`), then `data` bytes of
    /// data, then `pad` bytes of padding.
    Data {
        h: FrameHeader,
        data: u32,
        pad: Option<u32>,
    },
    /// In another frame: `left` payload bytes to come, gathered in `body` when `keep`.
    Body {
        h: FrameHeader,
        left: u32,
        keep: bool,
    },
    /// Nothing more is read.
    Stopped,
}

/// The frame reader of one direction (see the [module docs](self)).
#[derive(Debug)]
pub struct Reader {
    state: State,
    hdr: [u8; HEADER_LEN],
    hdr_len: usize,
    body: Vec<u8>,
    /// The receiver's `SETTINGS_MAX_FRAME_SIZE`.
    max_frame: u32,
    /// Largest non-DATA payload gathered.
    cap: usize,
}

impl Reader {
    /// A reader; `client` for the client's direction (which starts with the preface).
    /// Non-DATA payloads over `cap` bytes are passed over.
    pub const fn new(client: bool, cap: usize) -> Self {
        Self {
            state: if client {
                State::Preface(PREFACE.len())
            } else {
                State::Header
            },
            hdr: [0; HEADER_LEN],
            hdr_len: 0,
            body: Vec::new(),
            max_frame: frame::DEFAULT_MAX_FRAME_SIZE,
            cap,
        }
    }

    /// The receiver announced `SETTINGS_MAX_FRAME_SIZE` `v` (RFC 9113 §6.5.2; values out of
    /// range are ignored).
    pub fn set_max_frame(&mut self, v: u32) {
        if (frame::DEFAULT_MAX_FRAME_SIZE..=frame::MAX_MAX_FRAME_SIZE).contains(&v) {
            self.max_frame = v;
        }
    }

    /// Stops reading (a gap: frame boundaries are lost).
    pub fn stop(&mut self) {
        self.state = State::Stopped;
        self.body = Vec::new();
    }

    /// Whether the reader stopped.
    pub const fn is_stopped(&self) -> bool {
        matches!(self.state, State::Stopped)
    }

    /// Bytes held (a partial frame's payload).
    pub fn held(&self) -> usize {
        self.body.capacity()
    }

    /// Reads `bytes`, handing out what it finds in order.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut dyn FnMut(Item<'_>)) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Stopped => return,
                State::Preface(left) => {
                    let at = PREFACE.len() - *left;
                    let n = (*left).min(bytes.len());
                    if bytes[..n] != PREFACE[at..at + n] {
                        self.state = State::Stopped;
                        out(Item::BadPreface);
                        return;
                    }
                    *left -= n;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        self.state = State::Header;
                    }
                }
                State::Header => {
                    let n = (HEADER_LEN - self.hdr_len).min(bytes.len());
                    self.hdr[self.hdr_len..self.hdr_len + n].copy_from_slice(&bytes[..n]);
                    self.hdr_len += n;
                    bytes = &bytes[n..];
                    if self.hdr_len == HEADER_LEN {
                        self.hdr_len = 0;
                        let h = FrameHeader::parse(&self.hdr);
                        self.begin(h, out);
                    }
                }
                State::Data { h, data, pad } => {
                    let h = *h;
                    let Some(p) = *pad else {
                        // The pad length byte.
                        let first = bytes[0];
                        bytes = &bytes[1..];
                        match frame::pad_len(&h, first) {
                            Ok(p) => {
                                *pad = Some(p);
                                *data = h.len - 1 - p;
                            }
                            Err(e) => {
                                out(Item::BadPadding(h, e));
                                self.state = State::Body {
                                    h,
                                    left: h.len - 1,
                                    keep: false,
                                };
                                continue;
                            }
                        }
                        self.data_end_if_done(out);
                        continue;
                    };
                    if *data > 0 {
                        let n = bytes.len().min(*data as usize);
                        *data -= n as u32;
                        out(Item::Data {
                            header: h,
                            bytes: &bytes[..n],
                        });
                        bytes = &bytes[n..];
                    } else {
                        let n = bytes.len().min(p as usize);
                        *pad = Some(p - n as u32);
                        bytes = &bytes[n..];
                    }
                    self.data_end_if_done(out);
                }
                State::Body { h, left, keep } => {
                    let n = bytes.len().min(*left as usize);
                    *left -= n as u32;
                    if *keep {
                        self.body.extend_from_slice(&bytes[..n]);
                    }
                    bytes = &bytes[n..];
                    if *left == 0 {
                        let (h, keep) = (*h, *keep);
                        self.state = State::Header;
                        self.body_done(h, keep, out);
                    }
                }
            }
        }
    }

    /// A frame header was read.
    fn begin(&mut self, h: FrameHeader, out: &mut dyn FnMut(Item<'_>)) {
        if h.len > self.max_frame {
            out(Item::Oversized {
                header: h,
                max: self.max_frame,
            });
        }
        if h.kind == FrameType::Data {
            if h.has(PADDED) {
                if h.len == 0 {
                    let e = frame::FrameError::BadLength {
                        kind: h.kind,
                        len: 0,
                    };
                    out(Item::BadPadding(h, e));
                    self.state = State::Header;
                    return;
                }
                self.state = State::Data {
                    h,
                    data: 0,
                    pad: None,
                };
            } else {
                self.state = State::Data {
                    h,
                    data: h.len,
                    pad: Some(0),
                };
                self.data_end_if_done(out);
            }
            return;
        }
        let keep = h.len as usize <= self.cap;
        if keep {
            self.body.clear();
        }
        if h.len == 0 {
            self.state = State::Header;
            self.body_done(h, keep, out);
        } else {
            self.state = State::Body {
                h,
                left: h.len,
                keep,
            };
        }
    }

    fn data_end_if_done(&mut self, out: &mut dyn FnMut(Item<'_>)) {
        if let State::Data {
            h,
            data: 0,
            pad: Some(0),
        } = self.state
        {
            self.state = State::Header;
            out(Item::DataEnd(h));
        }
    }

    fn body_done(&mut self, h: FrameHeader, keep: bool, out: &mut dyn FnMut(Item<'_>)) {
        if keep {
            out(Item::Frame(h, &self.body));
            self.body.clear();
            if self.body.capacity() > 1 << 16 {
                self.body = Vec::new();
            }
        } else if h.kind != FrameType::Data {
            // (A DATA frame's payload is passed over after its `BadPadding`.)
            out(Item::Skipped(h));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items as owned text, for comparing.
    fn read(r: &mut Reader, bytes: &[u8]) -> Vec<String> {
        let mut v = Vec::new();
        r.feed(bytes, &mut |i| {
            v.push(match i {
                Item::Data { header, bytes } => {
                    format!("data {} {}", header.stream, String::from_utf8_lossy(bytes))
                }
                Item::DataEnd(h) => format!("end {} {}", h.stream, h.flags),
                Item::Frame(h, p) => format!("frame {:?} {} {}", h.kind, h.stream, p.len()),
                other => format!("{other:?}"),
            });
        });
        v
    }

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let l = (payload.len() as u32).to_be_bytes();
        let mut v = vec![l[1], l[2], l[3], kind, flags];
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn preface_then_frames_in_any_split() {
        let mut all = PREFACE.to_vec();
        all.extend(frame(0x4, 0, 0, &[0, 5, 0, 0, 0x40, 0]));
        // DATA, padded: pad length 3, "hello", 3 bytes of padding, END_STREAM.
        all.extend(frame(0x0, 0x9, 1, b"\x03hello\0\0\0"));
        all.extend(frame(0x0, 0x0, 3, b""));
        let whole = {
            let mut r = Reader::new(true, 1024);
            read(&mut r, &all)
        };
        let joined = |v: Vec<String>| {
            // Data pieces joined per frame, for comparing splits.
            let mut out: Vec<String> = Vec::new();
            for s in v {
                match (out.last_mut(), s.strip_prefix("data 1 ")) {
                    (Some(last), Some(rest)) if last.starts_with("data 1 ") => last.push_str(rest),
                    _ => out.push(s),
                }
            }
            out
        };
        assert_eq!(
            whole,
            ["frame Settings 0 6", "data 1 hello", "end 1 9", "end 3 0"]
        );
        for cut in 1..all.len() {
            let mut r = Reader::new(true, 1024);
            let mut v = read(&mut r, &all[..cut]);
            v.extend(read(&mut r, &all[cut..]));
            assert_eq!(joined(v), whole, "cut at {cut}");
        }
        // Byte by byte.
        let mut r = Reader::new(true, 1024);
        let v: Vec<String> = all.iter().flat_map(|b| read(&mut r, &[*b])).collect();
        assert_eq!(joined(v), whole);
    }

    #[test]
    fn bad_preface_stops() {
        let mut r = Reader::new(true, 1024);
        assert_eq!(read(&mut r, b"GET / HTTP/1.1\r\n"), ["BadPreface"]);
        assert!(r.is_stopped());
        assert!(read(&mut r, b"more").is_empty());
    }

    #[test]
    fn oversized_skipped_and_bad_padding() {
        let mut r = Reader::new(false, 8);
        let mut bytes = frame(0x1, 0x4, 1, &[0; 20]);
        bytes.extend(frame(0x0, 0x8, 1, b"\x09abc"));
        bytes.extend(frame(0x6, 0, 0, &[0; 8]));
        let v = read(&mut r, &bytes);
        assert_eq!(v.len(), 3, "{v:?}");
        assert!(v[0].starts_with("Skipped"), "{v:?}");
        assert!(v[1].starts_with("BadPadding"), "{v:?}");
        assert_eq!(v[2], "frame Ping 0 8");
        // Over the receiver's max frame size: reported, still read.
        let mut r = Reader::new(false, 1 << 20);
        let v = read(&mut r, &frame(0x0, 0x1, 1, &vec![b'x'; 0x4001]));
        assert!(v[0].starts_with("Oversized"), "{v:?}");
        assert_eq!(v.last().map(String::as_str), Some("end 1 1"));
        r.set_max_frame(0x8000);
        let v = read(&mut r, &frame(0x0, 0x1, 1, &vec![b'x'; 0x4001]));
        assert!(!v[0].starts_with("Oversized"), "{v:?}");
    }
}
