//! Where events go: the [`Sink`] trait (any `FnMut(&Event)` closure is one), a collecting
//! [`VecSink`], and the Net::Inspect-style callback view ([`WsInspect`] through
//! [`InspectAdapter`]).

use hashbrown::HashMap;
use wscope_proto::close::CloseCode;
use wscope_proto::frame::{OpCode, MAX_CONTROL_PAYLOAD};
use wscope_proto::role::Direction;
use wscope_proto::time::Instant;

use crate::event::{Event, EventKind, OwnedEvent};
use crate::source::Tick;
use crate::tcp::ConnMeta;
use crate::uid::ConnId;

/// Receives the analyzer's events, in order.
pub trait Sink {
    /// One event; borrowed data is valid only during the call.
    fn event(&mut self, ev: &Event<'_>);

    /// A connection ended: no more events for it (default: nothing).
    fn connection_closed(&mut self, _conn: &ConnMeta) {}

    /// Something about the capture rather than a connection, told once at the end of a run
    /// (default: nothing). See [`CaptureNote`].
    fn capture_note(&mut self, _note: &CaptureNote) {}

    /// Time passed in a live capture (at least once a second, with or without events; see
    /// [`Tick`]): a sink that buffers output flushes it here, so that logs can be followed
    /// as they grow (default: nothing). File captures never tick.
    fn tick(&mut self, _tick: &Tick<'_>) {}

    /// The kinds of events this sink reads (default: all). The analyzer may leave out the
    /// others (a parallel run does not send them across threads); it may also deliver them,
    /// so a sink must still ignore what it does not want. Asked once, before a run.
    fn interest(&self) -> Interest {
        Interest::ALL
    }
}

/// A set of event kinds ([`EventKind`] variants) a [`Sink`] reads ([`Sink::interest`]).
///
/// ```
/// use wscope_inspect::sink::Interest;
/// let logs = Interest::ESTABLISHED.union(Interest::ANOMALY);
/// assert!(logs.contains(Interest::ANOMALY));
/// assert!(!logs.contains(Interest::FRAME));
/// assert!(Interest::ALL.contains(logs));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Interest(u16);

impl Interest {
    /// No event.
    pub const NONE: Self = Self(0);
    /// [`EventKind::Established`].
    pub const ESTABLISHED: Self = Self(1);
    /// [`EventKind::Tls`].
    pub const TLS: Self = Self(1 << 1);
    /// [`EventKind::Frame`].
    pub const FRAME: Self = Self(1 << 2);
    /// [`EventKind::FrameData`].
    pub const FRAME_DATA: Self = Self(1 << 3);
    /// [`EventKind::MessageData`].
    pub const MESSAGE_DATA: Self = Self(1 << 4);
    /// [`EventKind::Close`].
    pub const CLOSE: Self = Self(1 << 5);
    /// [`EventKind::Message`].
    pub const MESSAGE: Self = Self(1 << 6);
    /// [`EventKind::ConnectionEnd`].
    pub const CONNECTION_END: Self = Self(1 << 7);
    /// [`EventKind::Anomaly`].
    pub const ANOMALY: Self = Self(1 << 8);
    /// [`EventKind::Reset`].
    pub const RESET: Self = Self(1 << 9);
    /// Every kind (also kinds added later).
    pub const ALL: Self = Self(u16::MAX);

    /// The kinds of both sets.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every kind of `other` is in this set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The set holding the kind of `kind` alone.
    pub const fn of(kind: &EventKind<'_>) -> Self {
        match kind {
            EventKind::Established(..) => Self::ESTABLISHED,
            EventKind::Tls(_) => Self::TLS,
            EventKind::Frame { .. } => Self::FRAME,
            EventKind::FrameData { .. } => Self::FRAME_DATA,
            EventKind::MessageData { .. } => Self::MESSAGE_DATA,
            EventKind::Close { .. } => Self::CLOSE,
            EventKind::Message { .. } => Self::MESSAGE,
            EventKind::ConnectionEnd(_) => Self::CONNECTION_END,
            EventKind::Anomaly { .. } => Self::ANOMALY,
            EventKind::Reset { .. } => Self::RESET,
        }
    }

    /// Whether events of `kind`'s kind are in this set.
    pub const fn wants(self, kind: &EventKind<'_>) -> bool {
        self.contains(Self::of(kind))
    }
}

/// What the analyzer skipped for a reason of the capture itself, counted over a run:
/// `unsupported_link_type` (packets of a link layer it does not decode),
/// `undeclared_interface` (pcapng packets naming an interface no block described) and
/// `keylog_malformed` (key log lines that came during the capture and were malformed). They
/// are in [`Stats`] too.
///
/// [`Stats`]: crate::analyzer::Stats
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureNote {
    /// Time of the last packet of the run, if any.
    pub ts: Option<Instant>,
    /// Stable snake_case name.
    pub name: &'static str,
    /// Packets concerned.
    pub count: u64,
    /// What it means, for people.
    pub detail: String,
}

impl<F: FnMut(&Event<'_>)> Sink for F {
    fn event(&mut self, ev: &Event<'_>) {
        self(ev);
    }
}

/// Collects owned copies of every event.
///
/// ```
/// use wscope_inspect::sink::{Sink, VecSink};
/// let sink = VecSink::default();
/// assert!(sink.events.is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct VecSink {
    /// The events, in order.
    pub events: Vec<OwnedEvent>,
}

impl Sink for VecSink {
    fn event(&mut self, ev: &Event<'_>) {
        self.events.push(OwnedEvent::from(ev));
    }
}

/// Net::Inspect's WebSocket callbacks (`Net::Inspect::L7::HTTP::WebSocket`): control frames
/// whole, data streamed, and one call per direction when the connection closes.
///
/// Payloads are unmasked (as the seed's documentation promises; Net::Inspect itself hands out
/// the masked bytes and an `unmask` helper). A close frame without a status code has status
/// 1005 here, as in Net::Inspect (RFC 6455 §7.1.5), where the Zeek-style `close` event says 0.
pub trait WsInspect {
    /// A whole control frame (ping, pong, close, reserved control opcodes), payload unmasked
    /// (at most 125 bytes), with its [`FrameInfo`] (a close frame's status and reason in
    /// [`FrameInfo::close`]).
    ///
    /// When a WebSocket connection closes, once per direction (the client's first) with an
    /// empty `payload` and no `info`: Net::Inspect's `in_wsctl($dir, '', $time)`.
    fn in_wsctl(
        &mut self,
        conn: &ConnMeta,
        dir: Direction,
        payload: &[u8],
        info: Option<&FrameInfo<'_>>,
    );

    /// A piece of a data message, unmasked: `eom` on the last piece of the message. `info`
    /// says the message's opcode, whether this is its first piece (`init`), the bytes the frame
    /// still owes, its mask and (on the first piece of each frame) its header. A frame with an
    /// empty payload gives one call with empty `data`.
    fn in_wsdata(
        &mut self,
        conn: &ConnMeta,
        dir: Direction,
        data: &[u8],
        eom: bool,
        info: &FrameInfo<'_>,
    );
}

/// Net::Inspect's `$frameinfo`: what a [`WsInspect`] callback learns about the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo<'a> {
    /// Data: the opcode of the message's first frame (also for continuation frames).
    /// Control: the frame's own.
    pub opcode: OpCode,
    /// The frame's masking key, when it was masked.
    pub mask: Option<[u8; 4]>,
    /// The frame's header as on the wire (2 to 14 bytes): on the first call for a frame (and
    /// on every control frame); empty otherwise.
    pub header: &'a [u8],
    /// The first piece of a message (`init`); always set for a control frame.
    pub init: bool,
    /// Payload bytes the frame still owes after this piece (`bytes_left`).
    pub bytes_left: u64,
    /// A close frame's status and reason.
    pub close: Option<CloseInfo<'a>>,
}

/// A close frame's status code and reason (RFC 6455 §5.5.1), as Net::Inspect's frameinfo has
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseInfo<'a> {
    /// The status code; 1005 ("no status received", RFC 6455 §7.1.5) when the payload has
    /// fewer than two bytes.
    pub status: u16,
    /// The bytes after the status code (not checked for UTF-8).
    pub reason: &'a [u8],
}

/// Per direction of a connection: the frame being reported.
#[derive(Debug, Default)]
struct InspectDir {
    /// The opcode of the current data message's first frame.
    opcode: Option<OpCode>,
    mask: Option<[u8; 4]>,
    header: Vec<u8>,
    header_pending: bool,
    control: Vec<u8>,
    /// The status of the close frame being reported, from its `Close` event (0 without one).
    close: Option<u16>,
    in_message: bool,
}

/// Adapts the event stream to a [`WsInspect`] implementation (a [`Sink`] itself).
#[derive(Debug)]
pub struct InspectAdapter<T> {
    inner: T,
    state: HashMap<((ConnId, u32), usize), InspectDir>,
}

impl<T: WsInspect> InspectAdapter<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            state: HashMap::new(),
        }
    }

    /// The wrapped callbacks.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

const BOTH: [Direction; 2] = [Direction::ClientToServer, Direction::ServerToClient];

impl<T: WsInspect> Sink for InspectAdapter<T> {
    fn event(&mut self, ev: &Event<'_>) {
        let key = (ev.conn.session_key(), ev.dir.index());
        match &ev.kind {
            EventKind::Established(..) => {
                // Both directions get their end-of-connection call, frames or not.
                for dir in BOTH {
                    self.state
                        .entry((ev.conn.session_key(), dir.index()))
                        .or_default();
                }
            }
            EventKind::Frame {
                header,
                header_bytes,
            } => {
                let st = self.state.entry(key).or_default();
                if !header.opcode.is_control() && !st.in_message {
                    st.opcode = Some(header.opcode);
                }
                st.mask = header.mask;
                st.header.clear();
                st.header.extend_from_slice(header_bytes);
                st.header_pending = true;
                st.control.clear();
                st.close = None;
                // Empty data frames give no FrameData: report them here.
                if header.payload_len == 0 && !header.opcode.is_control() {
                    st.header_pending = false;
                    let info = FrameInfo {
                        opcode: st.opcode.unwrap_or(header.opcode),
                        mask: st.mask,
                        header: &st.header,
                        init: !st.in_message,
                        bytes_left: 0,
                        close: None,
                    };
                    st.in_message = !header.fin;
                    self.inner
                        .in_wsdata(ev.conn, ev.dir, &[], header.fin, &info);
                }
            }
            EventKind::FrameData { data, info } if info.opcode.is_control() => {
                let st = self.state.entry(key).or_default();
                let room = MAX_CONTROL_PAYLOAD.saturating_sub(st.control.len());
                st.control.extend_from_slice(&data[..data.len().min(room)]);
            }
            EventKind::FrameData { data, info } => {
                let st = self.state.entry(key).or_default();
                let header: &[u8] = if st.header_pending { &st.header } else { &[] };
                st.header_pending = false;
                st.in_message = !info.message_end;
                let frame = FrameInfo {
                    opcode: info.opcode,
                    mask: st.mask,
                    header,
                    init: info.first,
                    bytes_left: info.remaining,
                    close: None,
                };
                self.inner
                    .in_wsdata(ev.conn, ev.dir, data, info.message_end, &frame);
            }
            EventKind::Close { status, .. } => {
                self.state.entry(key).or_default().close = Some(*status);
            }
            EventKind::Message { opcode, .. } if opcode.is_control() => {
                // The whole control frame, after its data and (for a close) its `Close`.
                let st = self.state.entry(key).or_default();
                if !st.header_pending {
                    return;
                }
                st.header_pending = false;
                let payload = &st.control;
                let close = st.close.map(|status| match payload.get(2..) {
                    Some(reason) => CloseInfo { status, reason },
                    None => CloseInfo {
                        status: CloseCode::NO_STATUS.0,
                        reason: &[],
                    },
                });
                let info = FrameInfo {
                    opcode: *opcode,
                    mask: st.mask,
                    header: &st.header,
                    init: true,
                    bytes_left: 0,
                    close,
                };
                self.inner.in_wsctl(ev.conn, ev.dir, payload, Some(&info));
            }
            _ => {}
        }
    }

    fn connection_closed(&mut self, conn: &ConnMeta) {
        for dir in BOTH {
            if self
                .state
                .remove(&(conn.session_key(), dir.index()))
                .is_some()
            {
                self.inner.in_wsctl(conn, dir, &[], None);
            }
        }
    }
}
