//! Messages encoded once and sent to many connections (a broadcast): [`PreparedMessage`].
//!
//! A server's frames are not masked, so the bytes of a whole data message (header and
//! payload) are the same for every receiver: they are encoded once into one [`Bytes`] and
//! each connection queues that `Bytes` (a reference count, no copy, no encoding). With
//! permessage-deflate the compressed frame is shared by the connections that compress every
//! message with a fresh context (no context takeover on the server's side, RFC 7692 section
//! 7.1.1) and the same settings; it is compressed once per set of settings, on first use.
//! Every other connection (a client, which must mask; a server that takes its compression
//! context over) sends it as it would send any other message. The send rules are the core's
//! either way: not inside a fragmented message, not after a close.

use std::fmt;
use std::sync::Arc;
#[cfg(feature = "deflate")]
use std::sync::Mutex;

use bytes::Bytes;
#[cfg(feature = "deflate")]
use wscope_proto::connection::SharedCompression;
#[cfg(feature = "deflate")]
use wscope_proto::frame::RSV1;
use wscope_proto::frame::{FrameHeader, MAX_HEADER_LEN};
use wscope_proto::OpCode;

use crate::message::{DataKind, Utf8Bytes};

/// A whole text or binary message encoded once as a server frame, to be sent to many
/// connections without encoding it again (`send_prepared` on the tokio and blocking
/// drivers). Cloning shares it.
///
/// ```
/// use wscope::PreparedMessage;
///
/// let msg = PreparedMessage::text("to everyone");
/// assert_eq!(msg.len(), 11);
/// // for ws in &mut clients { ws.send_prepared(&msg).await?; }
/// ```
#[derive(Clone)]
pub struct PreparedMessage(Arc<Inner>);

struct Inner {
    kind: DataKind,
    /// The unmasked, uncompressed frame: header, then payload.
    frame: EncodedFrame,
    /// Compressed frames, one per set of compressor settings a connection asked for.
    #[cfg(feature = "deflate")]
    compressed: Mutex<Vec<(SharedCompression, EncodedFrame)>>,
}

/// One encoded server frame: header and payload in one buffer.
#[derive(Clone)]
pub(crate) struct EncodedFrame {
    bytes: Bytes,
    header_len: usize,
}

impl EncodedFrame {
    fn new(header: &FrameHeader, payload: &[u8]) -> Self {
        let mut h = [0u8; MAX_HEADER_LEN];
        let header_len = header.emit(&mut h);
        let mut v = Vec::with_capacity(header_len + payload.len());
        v.extend_from_slice(&h[..header_len]);
        v.extend_from_slice(payload);
        Self {
            bytes: Bytes::from(v),
            header_len,
        }
    }

    /// Header and payload, borrowed.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(crate) fn frame_ref(&self) -> &Bytes {
        &self.bytes
    }

    /// The payload (shared).
    pub(crate) fn payload(&self) -> Bytes {
        self.bytes.slice(self.header_len..)
    }

    /// The payload's length.
    pub(crate) fn payload_len(&self) -> u64 {
        (self.bytes.len() - self.header_len) as u64
    }
}

impl PreparedMessage {
    fn new(kind: DataKind, payload: &[u8]) -> Self {
        let header = FrameHeader::new(true, kind.opcode(), None, payload.len() as u64);
        Self(Arc::new(Inner {
            kind,
            frame: EncodedFrame::new(&header, payload),
            #[cfg(feature = "deflate")]
            compressed: Mutex::new(Vec::new()),
        }))
    }

    /// A text message, encoded now (the payload is copied once, behind the header).
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::new(DataKind::Text, text.into().as_str().as_bytes())
    }

    /// A binary message, encoded now (the payload is copied once, behind the header).
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::new(DataKind::Binary, &data.into())
    }

    /// Text or binary.
    pub fn kind(&self) -> DataKind {
        self.0.kind
    }

    /// The payload's length (uncompressed).
    pub fn len(&self) -> usize {
        self.0.frame.payload_len() as usize
    }

    /// The payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload (shared, no copy).
    pub fn payload(&self) -> Bytes {
        self.0.frame.payload()
    }

    /// How many compressed forms were made so far (one per set of compressor settings
    /// among the connections it was sent on that share compressed frames).
    pub fn compressed_forms(&self) -> usize {
        #[cfg(not(feature = "deflate"))]
        return 0;
        #[cfg(feature = "deflate")]
        self.0
            .compressed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub(crate) fn opcode(&self) -> OpCode {
        self.0.kind.opcode()
    }

    /// The whole uncompressed server frame, borrowed.
    pub(crate) fn frame_ref(&self) -> &Bytes {
        &self.0.frame.bytes
    }

    #[cfg(feature = "deflate")]
    /// The frame compressed with `settings` (fresh context, the whole message): made on the
    /// first call for these settings, shared after.
    pub(crate) fn compressed(&self, settings: SharedCompression) -> EncodedFrame {
        let mut forms = self.0.compressed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, f)) = forms.iter().find(|(s, _)| *s == settings) {
            return f.clone();
        }
        let mut out = Vec::new();
        settings.deflater().compress(
            &self.0.frame.bytes[self.0.frame.header_len..],
            true,
            &mut out,
        );
        let mut header = FrameHeader::new(true, self.opcode(), None, out.len() as u64);
        header.rsv = RSV1;
        let frame = EncodedFrame::new(&header, &out);
        forms.push((settings, frame.clone()));
        frame
    }
}

impl fmt::Debug for PreparedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedMessage")
            .field("kind", &self.0.kind)
            .field("len", &self.len())
            .field("compressed_forms", &self.compressed_forms())
            .finish()
    }
}
