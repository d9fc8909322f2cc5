//! The events of the analyzer: Zeek's WebSocket events with a uid, a packet timestamp and a
//! direction, plus anomalies.
//!
//! Per frame, in Zeek's order: [`EventKind::Frame`], zero or more [`EventKind::FrameData`]
//! (none for an empty payload, as in Zeek), [`EventKind::Close`] for a close frame, then
//! [`EventKind::Message`] when the frame ends a message (control frames are one-frame
//! messages). [`EventKind::Established`] comes once per connection, when the `101` is seen.
//! [`EventKind::MessageData`] carries the application payload of data messages (decompressed
//! under permessage-deflate) for consumers that want message contents; it is not a Zeek event
//! and the JSON Lines writer leaves it out.
//!
//! A `101` that the client must reject (RFC 6455 §4.1: missing, wrong or duplicated
//! `Sec-WebSocket-Accept`, a subprotocol or extension it did not offer) still gives
//! [`EventKind::Established`], as Zeek writes a `websocket.log` row for it; whether the client
//! accepts it is [`Upgrade::accepted`], decided by the core's handshake checks, and such a
//! connection is not counted as a session ([`crate::analyzer::Stats::rejected_upgrades`]).
//!
//! Every connection that had an `Established` ends with one [`EventKind::ConnectionEnd`]
//! (its last event): why the TCP connection ended (FIN, RST and who sent it, idle timeout,
//! end of capture), whether the closing handshake was completed (`clean`) and whether a
//! message was cut. Sessions that closed cleanly get one too, so a log has one end record per
//! start record.

use std::borrow::Cow;

pub use wscope_proto::frame::{FrameHeader, OpCode};
pub use wscope_proto::observe::{ChunkInfo, Upgrade};
use wscope_proto::role::Direction;
use wscope_proto::time::Instant;

use crate::tcp::{CloseReason, ConnMeta};
pub use crate::tls::TlsInfo;

/// One analyzer event.
#[derive(Debug)]
pub struct Event<'a> {
    /// Time of the packet that made the event known.
    pub ts: Instant,
    /// The connection (uid, addresses).
    pub conn: &'a ConnMeta,
    /// The direction the event concerns (`ClientToServer`: from the originator).
    pub dir: Direction,
    /// What happened.
    pub kind: EventKind<'a>,
}

impl Event<'_> {
    /// Whether the event concerns the originator's direction (Zeek's `is_orig`).
    pub const fn is_orig(&self) -> bool {
        self.dir.is_orig()
    }
}

/// What an [`Event`] reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum EventKind<'a> {
    /// The `101` to WebSocket (Zeek's `websocket_established`); `dir` is the server's. The
    /// second field holds the TLS parameters of a `wss://` session decrypted from a key log.
    Established(&'a Upgrade, Option<&'a TlsInfo>),
    /// A TLS connection's parameters, once known (after the ServerHello, or TLS 1.3's
    /// EncryptedExtensions); `dir` is the server's. JSON `tls` when it is decrypted, else
    /// `tls_undecrypted` (no key, unsupported suite, handshake not seen): such a connection is
    /// never a WebSocket session.
    Tls(&'a TlsInfo),
    /// A frame header (Zeek's `websocket_frame`).
    Frame {
        /// The parsed header (FIN, RSV, opcode, payload length, mask).
        header: FrameHeader,
        /// The header as on the wire (2 to 14 bytes).
        header_bytes: &'a [u8],
    },
    /// A chunk of unmasked payload (Zeek's `websocket_frame_data`), at most
    /// [`crate::session::SessionConfig::payload_chunk_size`] bytes; raw (still compressed) for a
    /// compressed message.
    FrameData {
        /// The bytes.
        data: &'a [u8],
        /// Where the chunk stands in its frame and message (opcode, Net::Inspect's `init`,
        /// `bytes_left` and `eom`, compression), as the observer reported it.
        info: ChunkInfo,
    },
    /// Application payload of a data message: the frame data itself, or what it inflated to.
    /// Not a Zeek event; for extraction and content inspection.
    MessageData {
        /// The bytes.
        data: &'a [u8],
        /// The message's opcode.
        opcode: OpCode,
        /// Last piece of the message.
        message_end: bool,
    },
    /// A close frame (Zeek's `websocket_close`), after its data.
    Close {
        /// Status code; 0 when the payload has fewer than two bytes.
        status: u16,
        /// Reason (the payload after the status).
        reason: &'a [u8],
    },
    /// The end of a message (Zeek's `websocket_message`).
    Message {
        /// Opcode of the message's first frame.
        opcode: OpCode,
        /// Application payload bytes of the whole message (decompressed length for a message
        /// that inflated; raw length when inflation failed).
        len: u64,
        /// SHA-256 of the application payload (with the digest option on).
        sha256: Option<[u8; 32]>,
    },
    /// The stream of a WebSocket over HTTP/2 was reset (RST_STREAM, RFC 9113 §6.4); `dir` is
    /// the sender's. The session's [`EventKind::ConnectionEnd`] follows. Not a Zeek event.
    Reset {
        /// The HTTP/2 error code (RFC 9113 §7; `CANCEL` is 0x8).
        error_code: u32,
    },
    /// The end of a WebSocket connection (one per connection that had an
    /// [`EventKind::Established`], after its last other event; not a Zeek event): how the TCP
    /// connection ended, whether both sides sent a close frame, and whether a message was cut.
    ConnectionEnd(ConnectionEnd),
    /// Something unusual.
    Anomaly {
        /// Stable snake_case name (`wrong_accept_header`, `inflate_failed`, `tcp_gap`, …).
        name: &'static str,
        /// Zeek's weird name, where Zeek has this anomaly.
        zeek_weird: Option<&'static str>,
        /// Details (Zeek's `addl` for Zeek weirds).
        detail: Cow<'a, str>,
    },
}

impl EventKind<'_> {
    /// The event name used in the JSON Lines output: `established`, `frame`, `frame_data`,
    /// `message_data`, `close`, `message`, `reset`, `connection_end`, `anomaly`, `tls`,
    /// `tls_undecrypted`.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Established(..) => "established",
            Self::Tls(info) => {
                if info.decrypted {
                    "tls"
                } else {
                    "tls_undecrypted"
                }
            }
            Self::Frame { .. } => "frame",
            Self::FrameData { .. } => "frame_data",
            Self::MessageData { .. } => "message_data",
            Self::Close { .. } => "close",
            Self::Message { .. } => "message",
            Self::Reset { .. } => "reset",
            Self::ConnectionEnd(_) => "connection_end",
            Self::Anomaly { .. } => "anomaly",
        }
    }
}

/// How a WebSocket connection ended ([`EventKind::ConnectionEnd`]).
///
/// Every connection that had an [`EventKind::Established`] gets one, also when it ended with a
/// closing handshake (`clean`), so that a log keeps one end record per session as it keeps one
/// start record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionEnd {
    /// What ended the TCP connection: FIN both ways, a RST (with its sender), the idle
    /// timeout, the end of the capture, eviction or reuse of the address pair.
    pub reason: CloseReason,
    /// Both directions sent a close frame (RFC 6455 §7.1.4: the closing handshake was
    /// completed).
    pub clean: bool,
    /// A message was still incomplete in either direction (frames of a data message without
    /// its final frame, or a frame whose payload did not all arrive).
    pub message_cut: bool,
}

/// An owned copy of an [`Event`], for collecting events (tests, small captures).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedEvent {
    /// Packet time.
    pub ts: Instant,
    /// The connection.
    pub conn: ConnMeta,
    /// Direction.
    pub dir: Direction,
    /// What happened.
    pub kind: OwnedKind,
}

impl OwnedEvent {
    /// Zeek's `is_orig`.
    pub const fn is_orig(&self) -> bool {
        self.dir.is_orig()
    }
}

/// The owned form of [`EventKind`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OwnedKind {
    /// See [`EventKind::Established`].
    Established(Box<Upgrade>),
    /// See [`EventKind::Tls`].
    Tls(Box<TlsInfo>),
    /// See [`EventKind::Frame`].
    Frame {
        /// Header.
        header: FrameHeader,
        /// Header bytes.
        header_bytes: Vec<u8>,
    },
    /// See [`EventKind::FrameData`].
    FrameData {
        /// Bytes.
        data: Vec<u8>,
        /// Place in the frame and message.
        info: ChunkInfo,
    },
    /// See [`EventKind::MessageData`].
    MessageData {
        /// Bytes.
        data: Vec<u8>,
        /// Opcode.
        opcode: OpCode,
        /// Ends the message.
        message_end: bool,
    },
    /// See [`EventKind::Close`].
    Close {
        /// Status.
        status: u16,
        /// Reason.
        reason: Vec<u8>,
    },
    /// See [`EventKind::Message`].
    Message {
        /// Opcode.
        opcode: OpCode,
        /// Length.
        len: u64,
        /// Digest.
        sha256: Option<[u8; 32]>,
    },
    /// See [`EventKind::Reset`].
    Reset {
        /// HTTP/2 error code.
        error_code: u32,
    },
    /// See [`EventKind::ConnectionEnd`].
    ConnectionEnd(ConnectionEnd),
    /// See [`EventKind::Anomaly`].
    Anomaly {
        /// Name.
        name: &'static str,
        /// Zeek weird name.
        zeek_weird: Option<&'static str>,
        /// Details.
        detail: String,
    },
}

impl From<&Event<'_>> for OwnedEvent {
    fn from(ev: &Event<'_>) -> Self {
        let kind = match &ev.kind {
            EventKind::Established(u, _) => OwnedKind::Established(Box::new((*u).clone())),
            EventKind::Tls(info) => OwnedKind::Tls(Box::new((*info).clone())),
            EventKind::Frame {
                header,
                header_bytes,
            } => OwnedKind::Frame {
                header: *header,
                header_bytes: header_bytes.to_vec(),
            },
            EventKind::FrameData { data, info } => OwnedKind::FrameData {
                data: data.to_vec(),
                info: *info,
            },
            EventKind::MessageData {
                data,
                opcode,
                message_end,
            } => OwnedKind::MessageData {
                data: data.to_vec(),
                opcode: *opcode,
                message_end: *message_end,
            },
            EventKind::Close { status, reason } => OwnedKind::Close {
                status: *status,
                reason: reason.to_vec(),
            },
            EventKind::Message {
                opcode,
                len,
                sha256,
            } => OwnedKind::Message {
                opcode: *opcode,
                len: *len,
                sha256: *sha256,
            },
            EventKind::Reset { error_code } => OwnedKind::Reset {
                error_code: *error_code,
            },
            EventKind::ConnectionEnd(end) => OwnedKind::ConnectionEnd(*end),
            EventKind::Anomaly {
                name,
                zeek_weird,
                detail,
            } => OwnedKind::Anomaly {
                name,
                zeek_weird: *zeek_weird,
                detail: detail.to_string(),
            },
        };
        Self {
            ts: ev.ts,
            conn: *ev.conn,
            dir: ev.dir,
            kind,
        }
    }
}
