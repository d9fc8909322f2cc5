//! Whole-message receive: the decode loop over the core's `recv`, the read sizes, and direct
//! reads of large payloads straight into the message buffer.

use bytes::Bytes;
use wscope_proto::connection::Event;
use wscope_proto::{Input, OpCode};

use super::{Incoming, Session};
use crate::error::{Error, Result};
use crate::message::{CloseFrame, Message, Utf8Bytes};

/// Size of one socket read (and of the input buffer's first allocation).
pub(crate) const READ_CHUNK: usize = 64 * 1024;
/// Size of one socket read inside a large message.
const BIG_READ: usize = 256 * 1024;
/// Frames with at least this much payload left are read straight into the message.
#[cfg(any(feature = "tokio", all(target_os = "linux", feature = "io-uring")))]
const DIRECT_MIN: u64 = 32 * 1024;
/// ... unless the frame is larger than this: then its payload goes through the input buffer.
/// Measured on echoes of 16 MiB frames (the kernel's copy into a cold 16 MiB buffer is the
/// cost): reading 256 KiB pieces into the input buffer, which stays in cache, and copying
/// them on took 7.0-8.8 ms of server CPU per echo against 11.6-14.3 ms for direct reads; at
/// 1 MiB direct reads are still the cheaper (431-546 us against 464-714 us).
#[cfg(any(feature = "tokio", all(target_os = "linux", feature = "io-uring")))]
const DIRECT_MAX: u64 = 4 << 20;
/// Size of the read after a large message, which holds the next frame's header: kept short
/// because payload read into the input buffer is copied to the message buffer, while the
/// rest of a large frame is then read straight into it (a 256 KiB read here cost the copy of
/// a quarter of each 1 MiB echo).
const AFTER_BIG_READ: usize = 4 * 1024;
/// Messages from this size on are read with [`BIG_READ`].
const BIG_MESSAGE: u64 = 256 * 1024;
/// Size of the reads of a connection until one fills its buffer (and of the input buffer's
/// first allocation): an idle connection, or one that only ever receives small messages
/// (pings, a broadcast's subscriber), holds this much instead of [`READ_CHUNK`] (the input
/// buffer is initialised, so all of it is resident: 64 KiB per idle connection before).
pub(crate) const FIRST_READ: usize = 2 * 1024;

impl Session {
    /// Where the next read goes: free bytes after the unconsumed input, `READ_CHUNK` of them
    /// (`BIG_READ` inside a large message, `AFTER_BIG_READ` right after one, `FIRST_READ`
    /// until a read has filled what it was given).
    pub(crate) fn read_buf(&mut self) -> &mut [u8] {
        let len = if self.big {
            BIG_READ
        } else if self.after_big {
            AFTER_BIG_READ
        } else if !self.warm {
            FIRST_READ
        } else {
            READ_CHUNK
        };
        self.read_len = len;
        let spare = self.input.spare(len);
        &mut spare[..len]
    }

    /// Records `n` bytes read into [`Self::read_buf`]; `0` means end of stream. A read that
    /// filled its buffer means more is coming: reads are full-sized from then on.
    pub(crate) fn commit_read(&mut self, n: usize) {
        if n >= self.read_len {
            self.warm = true;
        }
        if n == 0 {
            self.drained = false;
            self.eof = true;
            self.input.set_eof();
            self.conn.handle_eof();
        } else {
            self.input.commit(n);
            self.received();
        }
    }

    /// Appends bytes the driver received into a buffer of its own (the io_uring driver's
    /// provided buffers), as [`Self::commit_read`] records bytes read into [`Self::read_buf`].
    #[cfg(all(target_os = "linux", feature = "io-uring"))]
    pub(crate) fn push_input(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
        self.received();
    }

    /// A data message ended: after a large one the next read is short (see
    /// [`AFTER_BIG_READ`]), and reads are normal-sized again.
    fn message_ended(&mut self) {
        self.after_big = self.big;
        self.big = false;
    }

    /// Bookkeeping for bytes that arrived: decode again, the next read is a normal one, the
    /// core's keepalive and idle timers count them.
    fn received(&mut self) {
        self.drained = false;
        self.after_big = false;
        self.note_arrival();
    }

    /// Bytes arrived now: the time the core's `recv` gets for them, and the core's keepalive
    /// and idle timers start over from here (decoding may come later: a partial receive, a
    /// tick between the read and the decode).
    fn note_arrival(&mut self) {
        let now = self.clock.now();
        self.rx_at = now;
        self.conn.handle_received_at(now);
    }

    /// Decodes buffered input until a message or control frame is complete (`Some`) or the
    /// input is used up (`None`: read more). Replies the core queued are moved to the write
    /// queue. A protocol violation is returned once, with the failing close already queued.
    pub(crate) fn next_incoming(&mut self) -> Result<Option<Incoming>> {
        if self.drained {
            self.flush_transmit();
            self.check_masks()?;
            return Ok(None);
        }
        let r = self.decode_loop();
        // Inflated data is in the message buffer now: the inflater's copy can go.
        self.conn.release_inflated();
        self.drained = matches!(r, Ok(None));
        self.flush_transmit();
        self.check_masks()?;
        r
    }

    fn decode_loop(&mut self) -> Result<Option<Incoming>> {
        loop {
            let step = match self.conn.recv(self.rx_at, self.input.buf_mut()) {
                Ok(step) => step,
                Err(e) => return Err(Error::Proto(e)),
            };
            let consumed = step.consumed;
            let got = match step.event {
                None => {
                    self.input.consume(consumed);
                    return Ok(None);
                }
                Some(Event::Frame(h)) => {
                    if h.opcode.is_data() && h.opcode != OpCode::CONTINUATION {
                        if self.msg.is_empty() && (self.msg.capacity() as u64) < h.payload_len {
                            if let Some(v) = self.out.take_recycled() {
                                if v.capacity() > self.msg.capacity() {
                                    self.msg = v;
                                }
                            }
                        }
                        // Never trust the declared size beyond what is sensible to hold now.
                        let want = h.payload_len.min(READ_CHUNK as u64 * 4) as usize;
                        self.msg.reserve(want);
                    }
                    if h.opcode.is_data() {
                        self.frame_left = h.payload_len;
                        self.frame_len = h.payload_len;
                        if h.payload_len >= BIG_MESSAGE {
                            self.big = true;
                        }
                    }
                    None
                }
                Some(Event::Data {
                    opcode,
                    chunk,
                    message_end,
                    ..
                }) => {
                    self.msg.extend_from_slice(chunk);
                    self.frame_left = self.frame_left.saturating_sub(chunk.len() as u64);
                    if message_end {
                        self.message_ended();
                    }
                    message_end.then_some(Incoming::Data(opcode))
                }
                Some(Event::Ping(p)) => Some(Incoming::Ping(p.to_vec())),
                Some(Event::Pong(p)) => Some(Incoming::Pong(p.to_vec())),
                Some(Event::Close(c)) => {
                    Some(Incoming::Close(c.as_ref().map(CloseFrame::from_wire)))
                }
            };
            self.input.consume(consumed);
            if let Some(got) = got {
                return Ok(Some(got));
            }
        }
    }

    /// When the input is empty and the current data frame has a large payload left: how many
    /// bytes a read may put straight into the message buffer (never past the frame's end),
    /// saving the copy from the input buffer.
    #[cfg(any(feature = "tokio", all(target_os = "linux", feature = "io-uring")))]
    pub(crate) fn direct_read_len(&self) -> Option<usize> {
        // Inflated data is not the wire bytes: with deflate on, everything goes through the
        // input buffer and the connection's decoder.
        if self.input.is_empty()
            && self.frame_left >= DIRECT_MIN
            && self.frame_len <= DIRECT_MAX
            && !self.conn.deflate_enabled()
        {
            // Room for the rest of the frame at once (at most DIRECT_MAX, and the decoder has
            // already held the frame to the message size limit): growing the buffer piece by
            // piece would copy what it holds on every reallocation (768 KiB more per 1 MiB
            // message), as a recycled buffer too small for this frame would.
            Some(self.frame_left as usize)
        } else {
            None
        }
    }

    /// Whether the latest data frame was large enough for direct reads: the driver then
    /// expects more of them and reads with one-shot receives, which can go straight into
    /// the message buffer (see [`Self::direct_read_len`]).
    #[cfg(all(target_os = "linux", feature = "io-uring"))]
    pub(crate) fn expects_large(&self) -> bool {
        self.frame_len >= DIRECT_MIN
    }

    /// Reads into the message buffer (see [`Self::direct_read_len`]).
    #[cfg(any(feature = "tokio", all(target_os = "linux", feature = "io-uring")))]
    pub(crate) fn direct_buf(&mut self, want: usize) -> &mut Vec<u8> {
        self.msg.reserve(want);
        &mut self.msg
    }

    /// Decodes bytes a direct read appended to the message buffer from `start` on: the core
    /// unmasks and checks them in place; they are payload of the current frame only.
    #[cfg(any(feature = "tokio", all(target_os = "linux", feature = "io-uring")))]
    pub(crate) fn commit_direct(&mut self, start: usize) -> Result<Option<Incoming>> {
        self.drained = false;
        self.note_arrival();
        let mut at = start;
        let mut done = None;
        while at < self.msg.len() {
            let step = match self.conn.recv(self.rx_at, &mut self.msg[at..]) {
                Ok(step) => step,
                Err(e) => {
                    self.flush_transmit();
                    return Err(Error::Proto(e));
                }
            };
            if step.consumed == 0 {
                break;
            }
            at += step.consumed;
            if let Some(Event::Data {
                opcode,
                message_end,
                ..
            }) = step.event
            {
                self.frame_left = self.frame_left.saturating_sub(step.consumed as u64);
                if message_end {
                    self.message_ended();
                    done = Some(Incoming::Data(opcode));
                }
            }
        }
        // Anything not consumed (impossible by construction) is not payload: drop it.
        self.msg.truncate(at);
        Ok(done)
    }

    /// Bytes of the message assembled so far (the tokio driver's direct reads; io_uring does
    /// not use it).
    #[cfg(feature = "tokio")]
    pub(crate) fn msg_len(&self) -> usize {
        self.msg.len()
    }

    /// Takes the assembled message bytes (after [`Incoming::Data`]).
    pub(crate) fn take_message(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.msg)
    }

    /// Swaps the assembled message with `buf` (cleared), so both buffers are reused.
    #[cfg(any(feature = "tokio", all(target_os = "linux", feature = "io-uring")))]
    pub(crate) fn swap_message(&mut self, buf: &mut Vec<u8>) {
        buf.clear();
        core::mem::swap(&mut self.msg, buf);
    }

    /// Converts an [`Incoming`] to an owned [`Message`]: the assembled buffer becomes the
    /// payload's [`Bytes`] as it is (no copy).
    pub(crate) fn make_message(&mut self, got: Incoming) -> Message {
        match got {
            Incoming::Data(op) => {
                let data = Bytes::from(self.take_message());
                if op == OpCode::TEXT {
                    match Utf8Bytes::from_utf8(data) {
                        Ok(s) => Message::Text(s),
                        // Only reachable with UTF-8 validation turned off in the config.
                        Err((b, _)) => Message::Binary(b),
                    }
                } else {
                    Message::Binary(data)
                }
            }
            Incoming::Ping(p) => Message::Ping(p.into()),
            Incoming::Pong(p) => Message::Pong(p.into()),
            Incoming::Close(c) => Message::Close(c),
        }
    }
}

/// How large frames are read: the drivers' read sizes come from here.
#[cfg(all(test, feature = "tokio"))]
mod read_size_tests {
    use super::*;
    use wscope_proto::connection::Config;
    use wscope_proto::mask::apply_mask;

    /// A masked binary frame of `len` bytes with a 64-bit length, as a client sends it.
    fn masked_frame(len: usize) -> Vec<u8> {
        let key = [1, 2, 3, 4];
        let mut wire = vec![0x82, 0xff];
        wire.extend_from_slice(&(len as u64).to_be_bytes());
        wire.extend_from_slice(&key);
        let mut payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        apply_mask(&mut payload, key, 0);
        wire.extend_from_slice(&payload);
        wire
    }

    /// Puts `bytes` where the next read would (the input buffer), as a driver's read does.
    fn read_into_input(s: &mut Session, bytes: &[u8]) {
        let buf = s.read_buf();
        assert!(
            bytes.len() <= buf.len(),
            "a read returns at most what it asked for"
        );
        buf[..bytes.len()].copy_from_slice(bytes);
        s.commit_read(bytes.len());
    }

    #[test]
    fn a_large_frame_is_read_whole_into_the_message_then_a_short_read_follows() {
        const LEN: usize = 1 << 20;
        let mut s = Session::server(Config::default(), &[]);
        assert_eq!(s.read_buf().len(), FIRST_READ);
        let wire = masked_frame(LEN);
        // The first reads hold the header and the start of the payload: a short one, then
        // (it filled its buffer) a large one.
        read_into_input(&mut s, &wire[..FIRST_READ]);
        assert!(s.next_incoming().expect("valid").is_none());
        read_into_input(&mut s, &wire[FIRST_READ..READ_CHUNK]);
        assert!(s.next_incoming().expect("valid").is_none());
        // The rest of the frame goes straight into the message buffer, in one read's room.
        let left = wire.len() - READ_CHUNK;
        assert_eq!(s.direct_read_len(), Some(left));
        let msg = s.direct_buf(left);
        let start = msg.len();
        assert!(msg.capacity() - start >= left);
        msg.extend_from_slice(&wire[READ_CHUNK..]);
        let done = s.commit_direct(start).expect("valid");
        assert!(matches!(done, Some(Incoming::Data(OpCode::BINARY))));
        let got = s.take_message();
        assert_eq!(got.len(), LEN);
        assert!(got.iter().enumerate().all(|(i, &b)| b == i as u8));
        // Right after a large message, the next read is short (little to copy from the input
        // buffer if another large frame follows); the one after is a normal one.
        assert_eq!(s.read_buf().len(), AFTER_BIG_READ);
        read_into_input(&mut s, &[0x82, 0x81, 0, 0, 0, 0, 7]);
        assert!(matches!(
            s.next_incoming().expect("valid"),
            Some(Incoming::Data(OpCode::BINARY))
        ));
        assert_eq!(s.take_message(), [7]);
        assert_eq!(s.read_buf().len(), READ_CHUNK);
    }

    #[test]
    fn an_idle_connection_holds_a_small_input_buffer_until_a_read_fills_it() {
        let mut s = Session::server(Config::default(), &[]);
        // A ping: a read that does not fill the buffer keeps reads (and the buffer) small.
        assert_eq!(s.read_buf().len(), FIRST_READ);
        read_into_input(&mut s, &[0x89, 0x80, 0, 0, 0, 0]);
        assert!(s.next_incoming().expect("valid").is_some());
        assert_eq!(s.read_buf().len(), FIRST_READ);
        assert!(
            s.input.capacity() <= 2 * FIRST_READ,
            "{}",
            s.input.capacity()
        );
        // A read that fills it: more is coming, reads are full-sized from now on.
        let wire = masked_frame(3 * FIRST_READ);
        read_into_input(&mut s, &wire[..FIRST_READ]);
        assert_eq!(s.read_buf().len(), READ_CHUNK);
        read_into_input(&mut s, &wire[FIRST_READ..]);
        assert!(matches!(
            s.next_incoming().expect("valid"),
            Some(Incoming::Data(OpCode::BINARY))
        ));
        assert_eq!(s.read_buf().len(), READ_CHUNK);
    }

    #[test]
    fn frames_over_the_direct_limit_are_read_through_the_input_buffer() {
        let mut s = Session::server(Config::default(), &[]);
        let mut wire = vec![0x82, 0xff];
        wire.extend_from_slice(&(DIRECT_MAX + 1).to_be_bytes());
        wire.extend_from_slice(&[0; 4]);
        wire.extend_from_slice(&[0; 100]);
        read_into_input(&mut s, &wire);
        assert!(s.next_incoming().expect("valid").is_none());
        // No message-sized reservation on the declared length: big reads into the input.
        assert_eq!(s.direct_read_len(), None);
        assert_eq!(s.read_buf().len(), BIG_READ);
    }
}
