//! HPACK header blocks (RFC 7541) of one direction: a `loona-hpack` decoder with a dynamic
//! table cap, and the fields this analyzer keeps, with a header list size cap.
//!
//! Only what the WebSocket rules and the logs need is kept ([`Head`]): the pseudo-header
//! fields and a few regular fields (`user-agent`, `origin`, `host`, `sec-websocket-*`). Every
//! field still counts towards the header list size (RFC 9113 §6.5.2: name + value + 32
//! bytes), so a block that expands to a huge list (an "HPACK bomb": a few bytes naming a large
//! table entry again and again) costs time bounded by the block size and no memory.
//!
//! ```
//! use wscope_inspect::http2::hpack::{HeaderDecoder, HpackLimits};
//! let mut enc = loona_hpack::Encoder::new();
//! let block = enc.encode([(&b":status"[..], &b"200"[..])]);
//! let mut dec = HeaderDecoder::new(HpackLimits::default());
//! let head = dec.decode(&block).unwrap();
//! assert_eq!(head.status, Some(200));
//! ```

use core::fmt;

/// Limits of a [`HeaderDecoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HpackLimits {
    /// Largest dynamic table a peer may ask for with a size update (RFC 7541 §6.3); beyond,
    /// decoding fails (default 64 KiB, what browsers announce).
    pub max_table_size: usize,
    /// Largest decoded header list (name + value + 32 per field, RFC 9113 §6.5.2) whose
    /// fields are kept; a larger one is [`HpackError::ListTooLarge`] (default 64 KiB).
    pub max_header_list: usize,
}

impl Default for HpackLimits {
    fn default() -> Self {
        Self {
            max_table_size: 64 << 10,
            max_header_list: 64 << 10,
        }
    }
}

/// The fields of one header block that the analyzer keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// `:method`.
    pub method: Option<String>,
    /// `:protocol` (RFC 8441 §4).
    pub protocol: Option<String>,
    /// `:scheme`.
    pub scheme: Option<String>,
    /// `:authority`.
    pub authority: Option<String>,
    /// `:path`.
    pub path: Option<String>,
    /// `:status` (a response); `Some(0)` when it is not a number.
    pub status: Option<u16>,
    /// The regular fields kept, in order, names in lower case.
    pub fields: Vec<(String, Vec<u8>)>,
}

/// Regular fields kept in a [`Head`].
const KEPT: [&str; 7] = [
    "host",
    "origin",
    "sec-websocket-extensions",
    "sec-websocket-key",
    "sec-websocket-protocol",
    "sec-websocket-version",
    "user-agent",
];

impl Head {
    /// Whether this is an extended CONNECT for a WebSocket (RFC 8441 §4).
    pub fn is_websocket_connect(&self) -> bool {
        self.method.as_deref() == Some("CONNECT")
            && self
                .protocol
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case("websocket"))
    }

    /// The regular fields, as the handshake rules take them.
    pub fn field_pairs(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    fn add(&mut self, name: &[u8], value: &[u8]) {
        let text = || String::from_utf8_lossy(value).into_owned();
        match name {
            b":method" => self.method = Some(text()),
            b":protocol" => self.protocol = Some(text()),
            b":scheme" => self.scheme = Some(text()),
            b":authority" => self.authority = Some(text()),
            b":path" => self.path = Some(text()),
            b":status" => {
                let s = core::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse().ok());
                self.status = Some(s.unwrap_or(0));
            }
            _ => {
                if let Some(n) = KEPT
                    .iter()
                    .find(|k| name.eq_ignore_ascii_case(k.as_bytes()))
                {
                    self.fields.push(((*n).to_owned(), value.to_vec()));
                }
            }
        }
    }
}

/// Why a header block was not decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HpackError {
    /// The block does not decode (RFC 7541 §2.3.3, §5, §6; an endpoint answers
    /// `COMPRESSION_ERROR`, 0x9). The direction's dynamic table can no longer be followed.
    Decode(String),
    /// The decoded list is larger than [`HpackLimits::max_header_list`] (an endpoint answers
    /// with a `431` or resets the stream); the table stays in step.
    ListTooLarge {
        /// Header list size, counted up to where it passed the limit.
        size: usize,
    },
}

impl HpackError {
    /// The HTTP/2 error code an endpoint answers with (RFC 9113 §7): `COMPRESSION_ERROR`
    /// (0x9) or `ENHANCE_YOUR_CALM` (0xb).
    pub const fn code(&self) -> u32 {
        match self {
            Self::Decode(_) => 0x9,
            Self::ListTooLarge { .. } => 0xb,
        }
    }
}

impl fmt::Display for HpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "HPACK: {e}"),
            Self::ListTooLarge { size } => {
                write!(
                    f,
                    "header list of more than {size} bytes (name + value + 32 each)"
                )
            }
        }
    }
}

impl core::error::Error for HpackError {}

/// The HPACK decoder of one direction.
pub struct HeaderDecoder {
    dec: loona_hpack::Decoder<'static>,
    limits: HpackLimits,
    /// A block failed to decode: the dynamic table is lost.
    broken: bool,
}

impl fmt::Debug for HeaderDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderDecoder")
            .field("limits", &self.limits)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl HeaderDecoder {
    /// A decoder with an empty dynamic table of the default size (4096, RFC 9113 §6.5.2).
    pub fn new(limits: HpackLimits) -> Self {
        let mut dec = loona_hpack::Decoder::new();
        dec.set_max_allowed_table_size(limits.max_table_size);
        Self {
            dec,
            limits,
            broken: false,
        }
    }

    /// Whether a block failed to decode: later blocks cannot be read (their indices refer to
    /// a table that was lost).
    pub const fn is_broken(&self) -> bool {
        self.broken
    }

    /// Forgets the dynamic table for good (a block was lost, e.g. cut by a TCP gap or too
    /// large to be kept).
    pub fn lose(&mut self) {
        self.broken = true;
    }

    /// Decodes one whole header block (HEADERS or PUSH_PROMISE with its CONTINUATIONs).
    ///
    /// # Errors
    ///
    /// [`HpackError::Decode`] for a block that does not decode, or any block after one, and
    /// [`HpackError::ListTooLarge`] for a list over the limit.
    pub fn decode(&mut self, block: &[u8]) -> Result<Head, HpackError> {
        if self.broken {
            return Err(HpackError::Decode(
                "an earlier header block was lost; the dynamic table cannot be followed".into(),
            ));
        }
        let mut head = Head::default();
        let mut size = 0usize;
        let max = self.limits.max_header_list;
        let r = self.dec.decode_with_cb(block, |name, value| {
            size = size.saturating_add(name.len() + value.len() + 32);
            if size <= max {
                head.add(&name, &value);
            }
        });
        if let Err(e) = r {
            self.broken = true;
            return Err(HpackError::Decode(e.to_string()));
        }
        if size > max {
            return Err(HpackError::ListTooLarge { size });
        }
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(enc: &mut loona_hpack::Encoder<'_>, fields: &[(&str, &str)]) -> Vec<u8> {
        enc.encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    #[test]
    fn keeps_pseudo_headers_and_websocket_fields() {
        let mut enc = loona_hpack::Encoder::new();
        let block = encode(
            &mut enc,
            &[
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "https"),
                (":path", "/chat?x=1"),
                (":authority", "example.com"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-protocol", "chat"),
                ("cookie", "not kept"),
            ],
        );
        let mut dec = HeaderDecoder::new(HpackLimits::default());
        let head = dec.decode(&block).unwrap();
        assert!(head.is_websocket_connect());
        assert_eq!(head.path.as_deref(), Some("/chat?x=1"));
        assert_eq!(head.authority.as_deref(), Some("example.com"));
        assert_eq!(
            head.field_pairs().collect::<Vec<_>>(),
            vec![
                ("sec-websocket-version", &b"13"[..]),
                ("sec-websocket-protocol", &b"chat"[..])
            ]
        );
        // The dynamic table carries over to the next block of the direction.
        let again = encode(&mut enc, &[(":method", "CONNECT"), (":path", "/chat?x=1")]);
        assert_eq!(
            dec.decode(&again).unwrap().path.as_deref(),
            Some("/chat?x=1")
        );
    }

    #[test]
    fn hpack_bomb_is_refused_without_keeping_it() {
        // One 4000-byte entry in the table, then a block naming it 2000 times (2 bytes each):
        // 8 MB of header list from 4 KB of input.
        let mut enc = loona_hpack::Encoder::new();
        let big = "a".repeat(4000);
        let first = encode(&mut enc, &[("x-big", &big)]);
        let mut dec = HeaderDecoder::new(HpackLimits::default());
        assert!(dec.decode(&first).is_ok());
        // Index 62: the first dynamic entry (RFC 7541 §2.3.3).
        let bomb = vec![0x80 | 62; 2000];
        match dec.decode(&bomb) {
            Err(e @ HpackError::ListTooLarge { .. }) => assert_eq!(e.code(), 0xb),
            other => panic!("{other:?}"),
        }
        // The table is still in step.
        assert!(!dec.is_broken());
        assert!(dec.decode(&[0x80 | 62]).is_ok());
    }

    #[test]
    fn bad_blocks_break_the_direction() {
        let mut dec = HeaderDecoder::new(HpackLimits::default());
        // Index 70 does not exist.
        let e = dec.decode(&[0x80 | 70]).unwrap_err();
        assert_eq!(e.code(), 0x9);
        assert!(dec.is_broken());
        // A valid block after it cannot be trusted.
        assert!(dec.decode(&[0x82]).is_err());
        // A table size update over the cap.
        let mut dec = HeaderDecoder::new(HpackLimits {
            max_table_size: 4096,
            ..HpackLimits::default()
        });
        // 0x3f 81 20: size update to 31 + 1 + 32 * 128 = 4128 (5-bit prefix integer).
        assert!(dec.decode(&[0x3f, 0x81, 0x20, 0x82]).is_err());
    }
}
