//! Frame encoding: messages, data frames and control frames written into the caller's
//! buffer, fragment sequencing, masking with the client's keys.

use alloc::vec::Vec;

use super::{Connection, Core, Outgoing, SendError};
use crate::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use crate::mask::apply_mask;
use crate::role::Role;

impl Connection {
    /// Encodes a message or control frame into `out`.
    pub fn send(&mut self, out: &mut Vec<u8>, msg: Outgoing<'_>) -> Result<(), SendError> {
        match msg {
            Outgoing::Text(t) => self.send_frame(out, OpCode::TEXT, t.as_bytes(), true),
            Outgoing::Binary(b) => self.send_frame(out, OpCode::BINARY, b, true),
            Outgoing::Ping(p) => self.send_control(out, OpCode::PING, p),
            Outgoing::Pong(p) => self.send_control(out, OpCode::PONG, p),
        }
    }

    /// Encodes one data frame: `opcode` is TEXT or BINARY for a message's first frame and
    /// CONTINUATION after; `fin` ends the message. Sequencing is checked.
    ///
    /// For text the caller is responsible for the message being valid UTF-8 as a whole.
    pub fn send_frame(
        &mut self,
        out: &mut Vec<u8>,
        opcode: OpCode,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        #[cfg(feature = "deflate")]
        if let Some(compress) = self.compress_decision(opcode, payload.len(), fin) {
            if compress {
                return self.send_compressed(out, opcode, payload, fin);
            }
        }
        let header = self.sequence(opcode, payload.len() as u64, fin)?;
        write_frame(out, &header, payload);
        Ok(())
    }

    /// Checks sequencing and builds the header of a data frame without writing its payload,
    /// for zero-copy vectored writes: a server writes the header, then the payload as it is; a
    /// client must first mask its payload with `header.mask` ([`crate::mask::apply_mask`],
    /// offset 0).
    pub fn data_header(
        &mut self,
        opcode: OpCode,
        len: u64,
        fin: bool,
    ) -> Result<FrameHeader, SendError> {
        // This path never compresses: it cannot continue a compressed fragmented message.
        #[cfg(feature = "deflate")]
        if opcode == OpCode::CONTINUATION
            && self
                .core
                .deflate
                .as_ref()
                .is_some_and(|d| d.sending_compressed)
        {
            return Err(SendError::FragmentSequence);
        }
        self.sequence(opcode, len, fin)
    }

    /// Checks that a data frame may go now (the connection is not closing, fragments in
    /// order) and builds its header with the next masking key: every data path's first step.
    pub(super) fn sequence(
        &mut self,
        opcode: OpCode,
        len: u64,
        fin: bool,
    ) -> Result<FrameHeader, SendError> {
        if !self.can_send() {
            return Err(SendError::Closed);
        }
        match (opcode, self.core.sending) {
            (OpCode::TEXT | OpCode::BINARY, None) => {}
            (OpCode::CONTINUATION, Some(_)) => {}
            (OpCode::TEXT | OpCode::BINARY | OpCode::CONTINUATION, _) => {
                return Err(SendError::FragmentSequence)
            }
            (opcode, _) => return Err(SendError::NotData { opcode }),
        }
        self.core.sending = if fin {
            None
        } else if opcode == OpCode::CONTINUATION {
            self.core.sending
        } else {
            Some(opcode)
        };
        Ok(FrameHeader::new(fin, opcode, self.core.next_mask(), len))
    }

    /// Encodes a ping or pong (payload at most 125 bytes).
    fn send_control(
        &mut self,
        out: &mut Vec<u8>,
        opcode: OpCode,
        payload: &[u8],
    ) -> Result<(), SendError> {
        if !self.can_send() {
            return Err(SendError::Closed);
        }
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlTooLong { len: payload.len() });
        }
        self.core.encode(out, opcode, true, payload);
        Ok(())
    }
}

impl Core {
    pub(super) fn queue_control(&mut self, opcode: OpCode, payload: &[u8]) {
        if opcode == OpCode::PONG && self.queued.len() + payload.len() > self.cfg.max_queued_replies
        {
            return;
        }
        let mut frame = Vec::with_capacity(MAX_HEADER_LEN + payload.len());
        self.encode(&mut frame, opcode, true, payload);
        self.queued.extend(frame);
    }

    pub(super) fn next_mask(&mut self) -> Option<[u8; 4]> {
        match (self.role, self.masks.as_mut()) {
            (Role::Client, Some(m)) => Some(m.next_mask()),
            (Role::Client, None) => Some([0; 4]),
            (Role::Server, _) => None,
        }
    }

    pub(super) fn encode(&mut self, out: &mut Vec<u8>, opcode: OpCode, fin: bool, payload: &[u8]) {
        let header = FrameHeader::new(fin, opcode, self.next_mask(), payload.len() as u64);
        write_frame(out, &header, payload);
    }
}

/// Writes `header` and `payload` to `out`, masking the payload copy when the header has a key.
/// Writes `header` and `payload` to `out`, masking the payload copy when the header has a key.
pub(crate) fn write_frame(out: &mut Vec<u8>, header: &FrameHeader, payload: &[u8]) {
    let mut h = [0u8; MAX_HEADER_LEN];
    let n = header.emit(&mut h);
    out.reserve(n + payload.len());
    out.extend_from_slice(&h[..n]);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = header.mask {
        apply_mask(&mut out[start..], key, 0);
    }
}
