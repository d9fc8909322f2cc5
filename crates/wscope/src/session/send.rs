//! Sending: messages and frames encoded by the core into the write queue, large payloads
//! queued by ownership, the closing handshake started.

use std::io::IoSlice;

use bytes::Bytes;

use wscope_proto::close::CloseReason;
#[cfg(feature = "deflate")]
use wscope_proto::connection::SharedSend;
use wscope_proto::connection::{Outgoing, SendError, State};
use wscope_proto::frame::{FrameHeader, MAX_HEADER_LEN};
use wscope_proto::mask::apply_mask;
use wscope_proto::{CloseCode, CloseFrameRef as WireCloseFrame, OpCode};

use super::Session;
use crate::error::{Error, Result};
use crate::message::Message;
use crate::prepared::PreparedMessage;

/// How many times the write limit a broadcast member queues in prepared frames (see
/// [`Session::broadcast_full`]).
#[cfg(feature = "tokio")]
const BROADCAST_QUEUE: usize = 4;

/// Payloads from this size on are queued by ownership instead of being copied.
pub(crate) const OWNED_MIN: usize = 16 * 1024;

impl Session {
    /// Queues bytes that are not frames ahead of everything queued later: a server's `101`
    /// response, so it and the replies to frames that came with the request leave in one
    /// write (the io_uring server).
    #[cfg(all(target_os = "linux", feature = "io-uring"))]
    pub(crate) fn queue_raw(&mut self, bytes: &[u8]) {
        self.out.append(|buf| buf.extend_from_slice(bytes));
    }

    /// Moves the core's own frames (pongs, close replies, the closes its timers send) to the
    /// write queue (unless [`Self::hold_replies_over`] bytes already wait there while the
    /// connection is open: once it is closing the core queues nothing more, and its close
    /// must not wait behind the hold, as the application's close does not).
    pub(crate) fn flush_transmit(&mut self) {
        let hold = self.conn.state() == State::Open && self.out.len() >= self.hold_replies_over;
        if self.conn.has_pending_transmit() && !hold {
            let conn = &mut self.conn;
            self.out.append(|buf| conn.poll_transmit(buf));
            // A keepalive ping or a reply masked without a proper key is dropped here.
            let _ = self.check_masks();
        }
    }

    /// Whether the write queue is over its limit (writers should flush first).
    pub(crate) fn write_full(&self) -> bool {
        self.out.len() >= self.write_limit
    }

    /// Whether a broadcast member must stop queueing published messages: the queue's own
    /// memory is at the write limit, or everything queued (prepared frames by reference
    /// included) at [`BROADCAST_QUEUE`] times it. Prepared frames cost the queue a slot, not
    /// their bytes, and a longer queue goes out in fewer, larger writes: 1,000 clients
    /// receiving 1 KiB messages cost the server about a fifth less CPU per delivery with
    /// 512 KiB per write than with 128 KiB (the kernel wakes the reader once per write
    /// rather than once per 128 KiB).
    #[cfg(feature = "tokio")]
    pub(crate) fn broadcast_full(&self) -> bool {
        self.out.owned_len() >= self.write_limit
            || self.out.len() >= BROADCAST_QUEUE * self.write_limit
    }

    /// Queues any [`Message`]: text and binary by ownership ([`Self::send_bytes`]), a close
    /// starts the closing handshake ([`Self::close`]), pings and pongs are copied. The one
    /// dispatch every driver's `send`/`feed` goes through.
    pub(crate) fn send_message(&mut self, msg: Message) -> Result<()> {
        match msg {
            Message::Text(t) => self.send_bytes(OpCode::TEXT, t.into_bytes()),
            Message::Binary(b) => self.send_bytes(OpCode::BINARY, b),
            Message::Close(Some(c)) => self.close(Some(c.code), &c.reason),
            Message::Close(None) => self.close(None, ""),
            Message::Ping(p) => self.send(Outgoing::Ping(&p)),
            Message::Pong(p) => self.send(Outgoing::Pong(&p)),
        }
    }

    /// Encodes a message (borrowed payload, copied into the write queue).
    pub(crate) fn send(&mut self, msg: Outgoing<'_>) -> Result<()> {
        let conn = &mut self.conn;
        self.out
            .append(|buf| conn.send(buf, msg))
            .map_err(send_error)?;
        self.check_masks()
    }

    /// Encodes a whole data message from an owned payload: a large payload is taken and
    /// queued as it is (masked in place by a client) instead of being copied; a small one is
    /// copied and `payload` is cleared, keeping its allocation for the caller.
    pub(crate) fn send_vec(&mut self, opcode: OpCode, payload: &mut Vec<u8>) -> Result<()> {
        // Compression needs the encoder's copy anyway; the zero-copy path is for plain frames.
        if payload.len() < OWNED_MIN || self.conn.deflate_enabled() {
            self.send_data_frame(opcode, payload, true)?;
            payload.clear();
            return Ok(());
        }
        let header = self
            .conn
            .data_header(opcode, payload.len() as u64, true)
            .map_err(send_error)?;
        self.check_masks()?;
        let mut payload = core::mem::take(payload);
        self.push_header(&header, &mut payload);
        self.out.push_owned(payload);
        Ok(())
    }

    /// Encodes a whole data message from a [`Bytes`] payload: a large one is queued as it is
    /// by a server (no copy; the `Bytes` is released once written), masked in place by a
    /// client when no one else holds it (copied once to be masked otherwise); a small one is
    /// copied into the write queue's buffer.
    pub(crate) fn send_bytes(&mut self, opcode: OpCode, payload: Bytes) -> Result<()> {
        // Compression needs the encoder's copy anyway; the zero-copy path is for plain frames.
        if payload.len() < OWNED_MIN || self.conn.deflate_enabled() {
            return self.send_data_frame(opcode, &payload, true);
        }
        let header = self
            .conn
            .data_header(opcode, payload.len() as u64, true)
            .map_err(send_error)?;
        self.check_masks()?;
        self.push_frame(&header, payload);
        Ok(())
    }

    /// Queues `header` and then `payload`: shared as it is when unmasked, masked in a buffer
    /// of its own otherwise (the payload's own allocation when no one else holds it).
    fn push_frame(&mut self, header: &FrameHeader, payload: Bytes) {
        if header.mask.is_some() {
            let mut owned = Vec::from(payload);
            self.push_header(header, &mut owned);
            self.out.push_owned(owned);
        } else {
            self.push_header(header, &mut []);
            self.out.push_shared(payload);
        }
    }

    /// Queues a message encoded once for many connections ([`PreparedMessage`]), through
    /// the core's send rules (not inside a fragmented message, not after a close). A server
    /// without permessage-deflate queues the prepared frame itself (header and payload
    /// shared, no encoding); with permessage-deflate and no context takeover on its side it
    /// queues the frame compressed once for its settings; a server that takes its
    /// compression context over compresses it with its own compressor, and a client masks a
    /// copy, as for any other message.
    pub(crate) fn send_prepared(&mut self, msg: &PreparedMessage) -> Result<()> {
        let opcode = msg.opcode();
        #[cfg(feature = "deflate")]
        match self.conn.shared_send(msg.len()) {
            SharedSend::Compressed(settings) => {
                let compressed = msg.compressed(settings);
                let header = self
                    .conn
                    .precompressed_header(opcode, compressed.payload_len())
                    .map_err(send_error)?;
                self.check_masks()?;
                if header.mask.is_none() {
                    self.out.push_shared_ref(compressed.frame_ref());
                } else {
                    self.push_frame(&header, compressed.payload());
                }
                return self.check_masks();
            }
            SharedSend::PerConnection => {
                self.send_data_frame(opcode, &msg.payload(), true)?;
                return self.check_masks();
            }
            // `Plain`, and any kind a later core adds: the uncompressed frame below.
            _ => {}
        }
        let header = self
            .conn
            .data_header(opcode, msg.len() as u64, true)
            .map_err(send_error)?;
        self.check_masks()?;
        if header.mask.is_none() {
            // Server frames are unmasked: the prepared header is this header.
            self.out.push_prepared(msg);
        } else {
            self.push_frame(&header, msg.payload());
        }
        self.check_masks()
    }

    /// [`Self::send_prepared`] for a message the caller gives up (a broadcast member's
    /// outbox): on a server connection that queues prepared frames by reference and sends
    /// this one plain, the message itself is queued (no reference taken and dropped per
    /// delivery). On failure the message comes back with the error.
    #[cfg(feature = "tokio")]
    pub(crate) fn send_prepared_owned(
        &mut self,
        msg: PreparedMessage,
    ) -> core::result::Result<(), (Error, PreparedMessage)> {
        #[cfg(feature = "deflate")]
        let plain = self.conn.shared_send(msg.len()) == SharedSend::Plain;
        #[cfg(not(feature = "deflate"))]
        let plain = true;
        if !(plain
            && self.conn.role() == wscope_proto::Role::Server
            && self.out.takes_prepared(&msg))
        {
            return self.send_prepared(&msg).map_err(|e| (e, msg));
        }
        match self.conn.data_header(msg.opcode(), msg.len() as u64, true) {
            // A server's header: unmasked, the prepared one.
            Ok(_) => {
                self.out.push_prepared_owned(msg);
                Ok(())
            }
            Err(e) => Err((send_error(e), msg)),
        }
    }

    fn push_header(&mut self, header: &FrameHeader, payload: &mut [u8]) {
        if let Some(key) = header.mask {
            apply_mask(payload, key, 0);
        }
        let mut h = [0u8; MAX_HEADER_LEN];
        let n = header.emit(&mut h);
        self.out.append(|buf| buf.extend_from_slice(&h[..n]));
    }

    /// Encodes one data frame (for fragmented sends): `opcode` TEXT/BINARY first, then
    /// CONTINUATION; `fin` ends the message.
    pub(crate) fn send_data_frame(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        fin: bool,
    ) -> Result<()> {
        let conn = &mut self.conn;
        self.out
            .append(|buf| conn.send_frame(buf, opcode, payload, fin))
            .map_err(send_error)?;
        self.check_masks()
    }

    /// Starts the closing handshake with `code` and `reason` (cut to 123 bytes), or with an
    /// empty close when `code` is `None`.
    pub(crate) fn close(&mut self, code: Option<CloseCode>, reason: &str) -> Result<()> {
        let frame = code.map(|code| WireCloseFrame {
            code,
            reason: CloseReason::truncating(reason).as_str(),
        });
        let now = self.clock.now();
        let conn = &mut self.conn;
        self.out
            .append(|buf| conn.close(now, buf, frame))
            .map_err(send_error)?;
        self.check_masks()
    }

    /// Pending write bytes as slices (at most 16).
    pub(crate) fn write_slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.out.slices(dst)
    }
}

fn send_error(e: SendError) -> Error {
    match e {
        SendError::Closed => Error::AlreadyClosed,
        e => Error::Send(e),
    }
}
