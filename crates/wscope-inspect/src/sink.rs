//! Where events go: the [`Sink`] trait (any `FnMut(&Event)` closure is one), a collecting
//! [`VecSink`], and the Net::Inspect-style callback view ([`WsInspect`] through
//! [`InspectAdapter`]).

use hashbrown::HashMap;
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
}

/// Packets the analyzer skipped for a reason of the capture itself, counted over a run:
/// `unsupported_link_type` (a link layer it does not decode) and `undeclared_interface` (a
/// pcapng packet naming an interface no block described). They are in [`Stats`] too.
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
/// whole, data streamed.
pub trait WsInspect {
    /// A whole control frame (ping, pong, close, reserved control opcodes), payload unmasked.
    fn in_wsctl(&mut self, conn: &ConnMeta, dir: Direction, opcode: OpCode, payload: &[u8]);

    /// A piece of a data message: `init` on the first piece of a message, `eom` on the last,
    /// `bytes_left` still owed by the frame, `mask` of the frame and its header bytes (on the
    /// first piece of each frame; empty otherwise). A frame with an empty payload gives one
    /// call with empty `data`.
    #[allow(clippy::too_many_arguments)]
    fn in_wsdata(
        &mut self,
        conn: &ConnMeta,
        dir: Direction,
        opcode: OpCode,
        data: &[u8],
        eom: bool,
        init: bool,
        bytes_left: u64,
        mask: Option<[u8; 4]>,
        header: &[u8],
    );
}

/// Per direction of a connection: the frame being reported.
#[derive(Debug, Default)]
struct InspectDir {
    opcode: Option<OpCode>,
    mask: Option<[u8; 4]>,
    header: Vec<u8>,
    header_pending: bool,
    control: Vec<u8>,
    in_message: bool,
}

/// Adapts the event stream to a [`WsInspect`] implementation (a [`Sink`] itself).
#[derive(Debug)]
pub struct InspectAdapter<T> {
    inner: T,
    state: HashMap<(ConnId, usize), InspectDir>,
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

impl<T: WsInspect> Sink for InspectAdapter<T> {
    fn event(&mut self, ev: &Event<'_>) {
        let key = (ev.conn.id, ev.dir.index());
        match &ev.kind {
            EventKind::Frame {
                header,
                header_bytes,
            } => {
                let st = self.state.entry(key).or_default();
                st.opcode = Some(header.opcode);
                st.mask = header.mask;
                st.header.clear();
                st.header.extend_from_slice(header_bytes);
                st.header_pending = true;
                st.control.clear();
                // Empty data frames give no FrameData: report them here.
                if header.payload_len == 0 && !header.opcode.is_control() {
                    let init = !st.in_message;
                    st.in_message = !header.fin;
                    let op = header.opcode;
                    let mask = st.mask;
                    let hdr = core::mem::take(&mut st.header);
                    st.header_pending = false;
                    self.inner
                        .in_wsdata(ev.conn, ev.dir, op, &[], header.fin, init, 0, mask, &hdr);
                }
            }
            EventKind::FrameData {
                data,
                opcode,
                first,
                remaining,
                frame_end,
                message_end,
                ..
            } => {
                let st = self.state.entry(key).or_default();
                if opcode.is_control() {
                    let room = MAX_CONTROL_PAYLOAD.saturating_sub(st.control.len());
                    st.control.extend_from_slice(&data[..data.len().min(room)]);
                    if *frame_end {
                        st.header_pending = false;
                        let payload = core::mem::take(&mut st.control);
                        self.inner.in_wsctl(ev.conn, ev.dir, *opcode, &payload);
                    }
                } else {
                    let header = if st.header_pending {
                        st.header_pending = false;
                        core::mem::take(&mut st.header)
                    } else {
                        Vec::new()
                    };
                    st.in_message = !*message_end;
                    let mask = st.mask;
                    self.inner.in_wsdata(
                        ev.conn,
                        ev.dir,
                        *opcode,
                        data,
                        *message_end,
                        *first,
                        *remaining,
                        mask,
                        &header,
                    );
                }
            }
            EventKind::Message { opcode, .. } if opcode.is_control() => {
                // A control frame with an empty payload has no FrameData.
                let st = self.state.entry(key).or_default();
                if st.header_pending {
                    st.header_pending = false;
                    let payload = core::mem::take(&mut st.control);
                    self.inner.in_wsctl(ev.conn, ev.dir, *opcode, &payload);
                }
            }
            _ => {}
        }
    }

    fn connection_closed(&mut self, conn: &ConnMeta) {
        self.state.remove(&(conn.id, 0));
        self.state.remove(&(conn.id, 1));
    }
}
