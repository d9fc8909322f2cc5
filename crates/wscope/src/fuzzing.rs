//! Fuzzing entry points for the endpoint layer, as `wscope_proto::fuzzing` is for the core:
//! the bodies of the targets in `fuzz/fuzz_targets/` that need a driver's session. They live
//! in the library so that a normal `cargo test` replays the committed seeds through them
//! (`tests/all/seeds.rs`); the fuzz targets only call them.
//!
//! Not part of the API: names and behaviour may change at any time.
//!
//! | target (`fuzz/fuzz_targets/`) | body |
//! |---|---|
//! | `partial_receive` | [`fuzz_partial_receive`] |

use wscope_proto::close::CloseFrame as WireCloseFrame;
use wscope_proto::connection::{Config, DeflateOptions};
use wscope_proto::deflate::DeflateParams;
use wscope_proto::OpCode;

use crate::message::{Message, Partial};
use crate::session::{Session, Timeouts};

/// Caller buffer sizes for the partial receive (control byte bits 0–2).
const BUFS: [usize; 8] = [1, 2, 3, 7, 16, 64, 125, 1000];

/// How the input is handed to the session (control byte bits 5–7): read sizes.
const READS: [usize; 8] = [1, 2, 5, 13, 64, 300, 4096, usize::MAX];

/// Feeds `data[1..]` as a server's bytes to a client session configured by `data[0]`, once
/// through the whole-message receive (`read`) and once through the partial receive
/// (`recv_partial`, the seed's `websock_recv`) with a small buffer, and checks that the two
/// agree.
///
/// Control byte: bits 0–2 the partial receive's buffer size, bit 3 permessage-deflate on,
/// bit 4 small limits (frames of 1000 bytes, messages of 3000), bits 5–7 the read size the
/// input arrives in.
///
/// Asserts: every piece fits the buffer; a message's pieces, joined, are the whole receive's
/// message (inflated when compressed), with the first frame's opcode, and control frames
/// carry the same payload (cut to the buffer); no empty piece that ends nothing; the same error
/// ends both runs, at the same point.
pub fn fuzz_partial_receive(data: &[u8]) {
    let Some((&ctl, stream)) = data.split_first() else {
        return;
    };
    let buf_len = BUFS[usize::from(ctl & 7)];
    let whole = receive(ctl, stream, None);
    let pieces = receive(ctl, stream, Some(buf_len));
    assert_eq!(whole.error, pieces.error, "errors differ");
    let cut = |records: &[Record]| -> Vec<Record> {
        records
            .iter()
            .map(|r| match r {
                Record::Control(op, p) => Record::Control(*op, p[..p.len().min(buf_len)].to_vec()),
                other => other.clone(),
            })
            .collect()
    };
    assert_eq!(cut(&whole.records), pieces.records, "the receives disagree");
}

/// What a receive delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Record {
    /// A whole data message: its opcode and payload.
    Data(OpCode, Vec<u8>),
    /// A control frame: its opcode and payload (a close's status and reason as on the wire).
    Control(OpCode, Vec<u8>),
}

/// One run of [`fuzz_partial_receive`].
struct Run {
    records: Vec<Record>,
    error: Option<String>,
}

/// Receives `stream` with whole messages (`partial` is `None`) or pieces of at most
/// `partial` bytes.
fn receive(ctl: u8, stream: &[u8], partial: Option<usize>) -> Run {
    let small = ctl & 16 != 0;
    let cfg = Config {
        max_frame_len: if small { 1000 } else { 64 << 20 },
        max_message_len: if small { 3000 } else { 64 << 20 },
        ..Config::default()
    };
    let mut s = Session::client(cfg, &[], Timeouts { idle: None });
    if ctl & 8 != 0 {
        s.conn
            .enable_deflate(DeflateParams::default(), DeflateOptions::default());
    }
    let read = READS[usize::from(ctl >> 5)];
    let mut run = Run {
        records: Vec::new(),
        error: None,
    };
    let mut buf = vec![0; partial.unwrap_or(0)];
    let mut message: Option<(OpCode, Vec<u8>)> = None;
    let mut rest = stream;
    while !rest.is_empty() {
        let room = s.read_buf();
        let n = rest.len().min(read).min(room.len());
        room[..n].copy_from_slice(&rest[..n]);
        s.commit_read(n);
        rest = &rest[n..];
        loop {
            let got = match partial {
                None => s.next_incoming().map(|got| {
                    got.map(|g| {
                        let m = s.make_message(g);
                        run.records.push(whole_record(m));
                    })
                }),
                Some(_) => s
                    .next_partial(&mut buf)
                    .map(|got| got.map(|p| piece(p, &buf, &mut message, &mut run.records))),
            };
            match got {
                Ok(Some(())) => {}
                Ok(None) => break,
                Err(e) => {
                    run.error = Some(e.to_string());
                    return run;
                }
            }
        }
    }
    run
}

/// A whole receive's message as a record.
fn whole_record(m: Message) -> Record {
    match m {
        Message::Text(t) => Record::Data(OpCode::TEXT, t.into_bytes()),
        Message::Binary(b) => Record::Data(OpCode::BINARY, b),
        Message::Ping(p) => Record::Control(OpCode::PING, p),
        Message::Pong(p) => Record::Control(OpCode::PONG, p),
        Message::Close(c) => {
            let mut payload = [0u8; 125];
            let n = c.map_or(0, |c| {
                WireCloseFrame {
                    code: c.code,
                    reason: &c.reason,
                }
                .emit(&mut payload)
            });
            Record::Control(OpCode::CLOSE, payload[..n].to_vec())
        }
    }
}

/// Adds a partial receive's piece to the message being joined, or records it.
fn piece(
    p: Partial,
    buf: &[u8],
    message: &mut Option<(OpCode, Vec<u8>)>,
    records: &mut Vec<Record>,
) {
    match p {
        Partial::Data {
            info,
            len,
            frame_end,
        } => {
            assert!(len <= buf.len(), "a piece larger than the buffer");
            assert!(len > 0 || frame_end, "an empty piece that ends nothing");
            let (_, bytes) = message.get_or_insert_with(|| (info.opcode, Vec::new()));
            bytes.extend_from_slice(&buf[..len]);
            if frame_end && info.fin {
                let (op, bytes) = message.take().expect("the message just extended");
                records.push(Record::Data(op, bytes));
            }
        }
        Partial::Control { info, len } => {
            assert!(len <= buf.len(), "a control piece larger than the buffer");
            records.push(Record::Control(info.opcode, buf[..len].to_vec()));
        }
        Partial::Timeout => panic!("a timeout from a session (only drivers time out)"),
    }
}
