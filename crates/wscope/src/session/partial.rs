//! Partial receive: payload handed out as it arrives, into the caller's buffer
//! (`websock_recv` of the embedded-SDK-style API).

use wscope_proto::connection::Event;
use wscope_proto::{Input, OpCode};

use super::Session;
use crate::error::{Error, Result};
use crate::message::{FrameInfo, Partial};

impl Session {
    /// Partial receive: like [`Self::next_incoming`] but hands out payload as it arrives,
    /// copied into `buf`, at most `buf.len()` bytes per call (`websock_recv` of the
    /// embedded-SDK-style API).
    pub(crate) fn next_partial(&mut self, buf: &mut [u8]) -> Result<Option<Partial>> {
        let r = self.partial_loop(buf);
        // Inflated data is in `buf` (or kept in `partial_rest`): the inflater's copy can go.
        self.conn.release_inflated();
        self.flush_transmit();
        self.check_masks()?;
        r
    }

    fn partial_loop(&mut self, buf: &mut [u8]) -> Result<Option<Partial>> {
        if let Some(piece) = self.partial_rest_piece(buf) {
            return Ok(Some(piece));
        }
        loop {
            if buf.is_empty() {
                if let Some(info) = self.partial {
                    return Ok(Some(Partial::Data {
                        info,
                        len: 0,
                        frame_end: false,
                    }));
                }
            }
            let input = self.input.buf_mut();
            let full = input.len();
            let limit = if self.partial.is_some() {
                full.min(buf.len())
            } else {
                full
            };
            let step = match self.conn.recv(self.rx_at, &mut input[..limit]) {
                Ok(step) => step,
                Err(e) => return Err(Error::Proto(e)),
            };
            let consumed = step.consumed;
            let control_info = self.control_info;
            let got = match step.event {
                None => {
                    self.input.consume(consumed);
                    if limit < full {
                        continue;
                    }
                    return Ok(None);
                }
                Some(Event::Frame(h)) => {
                    let info = FrameInfo {
                        fin: h.fin,
                        opcode: h.opcode,
                        payload_len: h.payload_len,
                    };
                    if h.opcode.is_control() {
                        self.control_info = Some(info);
                    } else {
                        self.partial = Some(info);
                    }
                    None
                }
                Some(Event::Data {
                    chunk, frame_end, ..
                }) => {
                    let n = chunk.len().min(buf.len());
                    buf[..n].copy_from_slice(&chunk[..n]);
                    let info = self.partial.unwrap_or(FrameInfo {
                        fin: frame_end,
                        opcode: OpCode::CONTINUATION,
                        payload_len: 0,
                    });
                    // Only inflated chunks outgrow the buffer (the input given to the core
                    // is cut to its size): keep the rest for the next calls.
                    let rest = &chunk[n..];
                    let frame_end = if rest.is_empty() {
                        frame_end
                    } else {
                        self.partial_rest.clear();
                        self.partial_rest.extend_from_slice(rest);
                        self.partial_at = 0;
                        self.partial_rest_ends_frame = frame_end;
                        false
                    };
                    if frame_end {
                        self.partial = None;
                    }
                    // Compressed input that inflated to nothing yet: nothing to hand out.
                    (n > 0 || frame_end).then_some(Partial::Data {
                        info,
                        len: n,
                        frame_end,
                    })
                }
                Some(Event::Ping(p)) => Some(control_piece(control_info, OpCode::PING, p, buf)),
                Some(Event::Pong(p)) => Some(control_piece(control_info, OpCode::PONG, p, buf)),
                Some(Event::Close(c)) => {
                    let mut payload = [0u8; 125];
                    let n = c.map_or(0, |c| c.emit(&mut payload));
                    Some(control_piece(
                        control_info,
                        OpCode::CLOSE,
                        &payload[..n],
                        buf,
                    ))
                }
            };
            self.input.consume(consumed);
            if let Some(got) = got {
                return Ok(Some(got));
            }
        }
    }

    /// The next piece of inflated payload kept from an earlier call, if any.
    fn partial_rest_piece(&mut self, buf: &mut [u8]) -> Option<Partial> {
        let rest = &self.partial_rest[self.partial_at..];
        if rest.is_empty() {
            return None;
        }
        let info = self.partial?;
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.partial_at += n;
        let done = self.partial_at == self.partial_rest.len();
        if done {
            self.partial_rest.clear();
            self.partial_at = 0;
        }
        let frame_end = done && self.partial_rest_ends_frame;
        if frame_end {
            self.partial = None;
        }
        Some(Partial::Data {
            info,
            len: n,
            frame_end,
        })
    }
}

fn control_piece(
    info: Option<FrameInfo>,
    opcode: OpCode,
    payload: &[u8],
    buf: &mut [u8],
) -> Partial {
    let n = payload.len().min(buf.len());
    buf[..n].copy_from_slice(&payload[..n]);
    Partial::Control {
        info: info.unwrap_or(FrameInfo {
            fin: true,
            opcode,
            payload_len: payload.len() as u64,
        }),
        len: n,
    }
}

#[cfg(all(test, feature = "deflate"))]
mod partial_tests {
    use super::*;
    use wscope_proto::connection::Config;
    use wscope_proto::connection::DeflateOptions;
    use wscope_proto::deflate::{DeflateParams, Deflater};
    use wscope_proto::frame::{FrameHeader, MAX_HEADER_LEN};

    #[test]
    fn partial_receive_of_a_compressed_message_loses_nothing() {
        let text: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut payload = Vec::new();
        Deflater::new(6, 15, false).compress(&text, true, &mut payload);
        let header = FrameHeader {
            rsv: wscope_proto::frame::RSV1,
            ..FrameHeader::new(true, OpCode::BINARY, None, payload.len() as u64)
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = header.emit(&mut head);
        let mut wire = head[..n].to_vec();
        wire.extend_from_slice(&payload);
        let mut s = Session::client(Config::default(), &wire);
        s.conn
            .enable_deflate(DeflateParams::default(), DeflateOptions::default());
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        for _ in 0..10_000 {
            match s.next_partial(&mut buf).expect("valid") {
                Some(Partial::Data { len, frame_end, .. }) => {
                    got.extend_from_slice(&buf[..len]);
                    if frame_end {
                        break;
                    }
                }
                Some(other) => panic!("{other:?}"),
                None => break,
            }
        }
        assert_eq!(got.len(), text.len());
        assert!(got == text);
    }
}
