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
//! | `direct_reads` | `fuzz_direct_reads` (with the `tokio` feature) |

use wscope_proto::close::CloseFrameRef as WireCloseFrame;
use wscope_proto::connection::Config;
use wscope_proto::OpCode;
#[cfg(feature = "deflate")]
use wscope_proto::{connection::DeflateOptions, deflate::DeflateParams};

use crate::message::{Message, Partial};
use crate::session::Session;

/// Caller buffer sizes for the partial receive (control byte bits 0–2).
const BUFS: [usize; 8] = [1, 2, 3, 7, 16, 64, 125, 1000];

/// How the input is handed to the session (control byte bits 5–7): read sizes.
const READS: [usize; 8] = [1, 2, 5, 13, 64, 300, 4096, usize::MAX];

/// Feeds `data[1..]` as a server's bytes to a client session configured by `data[0]`, once
/// through the whole-message receive (`read`) and once through the partial receive
/// (`recv_partial`, `websock_recv` of the embedded-SDK-style API) with a small buffer, and
/// checks that the two agree.
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
    let cfg = Config::default()
        .max_frame_len(if small { 1000 } else { 64 << 20 })
        .max_message_len(if small { 3000 } else { 64 << 20 });
    let mut s = Session::client(cfg, &[]);
    // Without the `deflate` feature the compressed inputs are refused as RSV1 frames.
    #[cfg(feature = "deflate")]
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
        Message::Text(t) => Record::Data(OpCode::TEXT, Vec::from(t.into_bytes())),
        Message::Binary(b) => Record::Data(OpCode::BINARY, Vec::from(b)),
        Message::Ping(p) => Record::Control(OpCode::PING, Vec::from(p)),
        Message::Pong(p) => Record::Control(OpCode::PONG, Vec::from(p)),
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

/// Read sizes for [`fuzz_direct_reads`] (control byte bits 0–2). No single bytes: through
/// the input buffer a 260 KiB frame would take 260 k reads, and the fuzzer would crawl.
#[cfg(feature = "tokio")]
const DIRECT_READS: [usize; 8] = [7, 100, 1000, 4096, 16_384, 40_000, 65_536, usize::MAX];

/// Builds a client's frame stream from `data[1..]` (three bytes per frame, so that frames of
/// up to 260 KiB come from short inputs) and receives it with a server session twice: once
/// with every read going through the input buffer, once with large frames' payload read
/// straight into the message buffer when the session offers it (the tokio and io_uring
/// drivers' direct reads); both in reads of the size `data[0]` picks.
///
/// Frame bytes: `b0` fin (bit 7), RSV bits (4–6) and opcode (0–3); `b1` bit 7 set: a large
/// frame of `(b1 & 0x7f) * 2048 + b2` bytes, else `b1 + b2 % 126` bytes; the mask key and
/// the (ASCII) payload follow from the bytes. The stream stops at 4 MiB.
///
/// Asserts: a direct read finds room reserved for the whole rest of its frame; both runs
/// receive the same messages and control frames and end with the same error (a direct
/// read that took bytes past its frame would not).
#[cfg(feature = "tokio")]
pub fn fuzz_direct_reads(data: &[u8]) {
    let Some((&ctl, specs)) = data.split_first() else {
        return;
    };
    let wire = client_frames(specs);
    let read = DIRECT_READS[usize::from(ctl & 7)];
    let through_input = receive_server(&wire, read, false);
    let direct = receive_server(&wire, read, true);
    assert_eq!(through_input.error, direct.error, "errors differ");
    assert_eq!(
        through_input.records, direct.records,
        "direct reads changed what was received"
    );
}

/// The frames `specs` describe, masked (see [`fuzz_direct_reads`]).
#[cfg(feature = "tokio")]
fn client_frames(specs: &[u8]) -> Vec<u8> {
    use wscope_proto::frame::{FrameHeader, MAX_HEADER_LEN};
    let mut wire = Vec::new();
    for (i, spec) in specs.chunks_exact(3).enumerate() {
        if wire.len() > 4 << 20 {
            break;
        }
        let [b0, b1, b2] = [spec[0], spec[1], spec[2]];
        let len = if b1 & 0x80 != 0 {
            usize::from(b1 & 0x7f) * 2048 + usize::from(b2)
        } else {
            usize::from(b1) + usize::from(b2 % 126)
        };
        let key = [b2, b1, b0, i as u8];
        let header = FrameHeader {
            rsv: (b0 >> 4) & 7,
            ..FrameHeader::new(b0 & 0x80 != 0, OpCode(b0 & 0x0f), Some(key), len as u64)
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = header.emit(&mut head);
        wire.extend_from_slice(&head[..n]);
        let start = wire.len();
        wire.extend((0..len).map(|k| b'a' + ((k + i) % 26) as u8));
        wscope_proto::mask::apply_mask(&mut wire[start..], key, 0);
    }
    wire
}

/// Receives `wire` with a server session in reads of `read` bytes, taking the direct reads
/// the session offers when `direct`.
#[cfg(feature = "tokio")]
fn receive_server(wire: &[u8], read: usize, direct: bool) -> Run {
    let mut s = Session::server(Config::default(), &[]);
    let mut run = Run {
        records: Vec::new(),
        error: None,
    };
    let mut rest = wire;
    loop {
        loop {
            match s.next_incoming() {
                Ok(Some(got)) => {
                    let m = s.make_message(got);
                    run.records.push(whole_record(m));
                }
                Ok(None) => break,
                Err(e) => {
                    run.error = Some(e.to_string());
                    return run;
                }
            }
        }
        if rest.is_empty() {
            return run;
        }
        match s.direct_read_len().filter(|_| direct) {
            Some(want) => {
                let start = s.msg_len();
                let n = rest.len().min(read).min(want);
                let msg = s.direct_buf(want);
                assert!(msg.capacity() - msg.len() >= want, "no room reserved");
                msg.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                match s.commit_direct(start) {
                    Ok(Some(got)) => {
                        let m = s.make_message(got);
                        run.records.push(whole_record(m));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        run.error = Some(e.to_string());
                        return run;
                    }
                }
            }
            None => {
                let room = s.read_buf();
                let n = rest.len().min(read).min(room.len());
                room[..n].copy_from_slice(&rest[..n]);
                s.commit_read(n);
                rest = &rest[n..];
            }
        }
    }
}
