//! Fuzzing entry points of the analyzer: the bodies of `fuzz/fuzz_targets/capture.rs` (whole
//! captures) and `fuzz/fuzz_targets/segments.rs` (one conversation, whole against cut into
//! segments). They live in the library so that they build on stable and a normal `cargo test`
//! replays the committed seeds (`fuzz/seeds/capture/`, `fuzz/seeds/segments/`) through them.
//!
//! Not part of the API: names and behaviour may change at any time.

use core::sync::atomic::{AtomicU64, Ordering};
use std::io::Cursor;
use std::path::Path;

use crate::analyzer::{Analyzer, AnalyzerConfig};
use crate::capture::Capture;
use crate::event::{Event, EventKind};
use crate::log::json::JsonLines;
use crate::log::zeek::Style;
use crate::log::ZeekLogs;
use crate::parallel::{LocalOutput, LocalWriter};
use crate::sink::Sink;

/// Chunk sizes the control byte chooses from.
const CHUNKS: [usize; 4] = [1, 7, 100, 4096];

/// Runs the analyzer over arbitrary bytes taken as a capture file (pcap or pcapng), after a
/// control byte that picks the `frame_data` chunk size, whether to inflate, to digest, and
/// whether TLS connections wait for secrets that come later (bit 4,
/// [`Analyzer::keys_may_follow`]: pcapng Decryption Secrets Blocks after the ServerHello
/// that needs them), and whether to check that workers reading the file in chunks give the
/// same output (bit 5, the chunk length in bits 6 and 7). Asserts the
/// invariants the analyzer documents: chunks within the configured size, counters that
/// agree, and no more output than input can explain.
pub fn fuzz_capture(data: &[u8]) {
    let Some((&ctl, file)) = data.split_first() else {
        return;
    };
    let mut cfg = AnalyzerConfig::default();
    let chunk = CHUNKS[usize::from(ctl & 3)];
    cfg.session.payload_chunk_size = chunk;
    cfg.session.observer.inflate = ctl & 4 != 0;
    cfg.session.digest = ctl & 8 != 0;
    let mut cap = Capture::from_reader(Cursor::new(file.to_vec()), "fuzz");
    let mut data_bytes = 0u64;
    let (mut starts, mut ends) = (0u64, 0u64);
    // Connections whose `101` the client must reject: their frames are reported but not
    // counted in the statistics (no session follows).
    let mut rejected = std::collections::HashSet::new();
    let analyzer = Analyzer::new(cfg).keys_may_follow(ctl & 16 != 0);
    let stats = analyzer.run(&mut cap, &mut |ev: &Event<'_>| match &ev.kind {
        EventKind::FrameData { data, .. } => {
            assert!(data.len() <= chunk, "chunk of {} over {chunk}", data.len());
            if !rejected.contains(&ev.conn.uid) {
                data_bytes += data.len() as u64;
            }
        }
        EventKind::Established(up, _) => {
            starts += 1;
            if !up.accepted() {
                rejected.insert(ev.conn.uid);
            }
        }
        EventKind::ConnectionEnd(_) => ends += 1,
        _ => {}
    });
    // One end record per upgrade, accepted or not.
    assert_eq!(starts, ends);
    // Fuzz input may be cut anywhere: what was analysed before the error is checked too.
    let stats = stats.unwrap_or_else(crate::analyzer::Error::into_stats);
    assert_eq!(stats.decode.packets, stats.capture.packets);
    assert!(stats.decode.reassembled <= stats.decode.fragments);
    assert!(stats.sessions + stats.rejected_upgrades <= stats.connections);
    assert_eq!(stats.sessions + stats.rejected_upgrades, starts);
    assert!(stats.mid_stream <= stats.connections);
    // Without inflation every frame_data byte of a session is a payload byte some counted
    // frame declared.
    if !cfg.session.observer.inflate {
        assert!(data_bytes <= stats.payload_bytes);
    }
    if ctl & 32 != 0 && ctl & 16 == 0 {
        same_output_in_parallel(file, cfg, ctl);
    }
}

/// Nominal chunk lengths of the parallel differential (bits 6 and 7 of the control byte).
const PARALLEL_CHUNKS: [u64; 4] = [16, 61, 400, 4096];

/// Distinguishes the temporary files of concurrent calls in one process.
static PARALLEL_FILES: AtomicU64 = AtomicU64::new(0);

/// The parallel differential (control bit 5): `file`, written to a temporary file, analysed
/// by one thread and by 2 or 3 workers reading it in small chunks (records, blocks and IP
/// fragments across chunk ends; shards taking turns), must give the same events, logs and
/// statistics, as [`crate::parallel`] promises.
fn same_output_in_parallel(file: &[u8], cfg: AnalyzerConfig, ctl: u8) {
    let n = PARALLEL_FILES.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "wscope-fuzz-parallel-{}-{n}.cap",
        std::process::id()
    ));
    if std::fs::write(&path, file).is_err() {
        return;
    }
    let one = outputs(&Analyzer::new(cfg), &path);
    let workers = 2 + file.len() % 2;
    let chunk = PARALLEL_CHUNKS[usize::from(ctl >> 6)];
    let many = outputs(
        &Analyzer::new(cfg).workers(workers).with_chunk_len(chunk),
        &path,
    );
    let _ = std::fs::remove_file(&path);
    for (what, (a, b)) in [
        "events",
        "local events",
        "websocket.log",
        "weird.log",
        "stats",
    ]
    .iter()
    .zip(one.iter().zip(&many))
    {
        assert!(
            a == b,
            "{what} differ with {workers} workers, chunks of {chunk}:\n{a}\n--\n{b}"
        );
    }
}

/// A run's statistics (or error and statistics) as text to compare between worker counts:
/// the peaks, summed over the workers' tables (an upper bound), are left out.
pub fn comparable_stats(r: Result<crate::Stats, crate::analyzer::Error>) -> String {
    let unpeak = |mut s: crate::Stats| {
        s.flows.peak_tracked = 0;
        s.flows.reassembly.buffered_peak = 0;
        format!("{s:?}")
    };
    match r {
        Ok(s) => unpeak(s),
        Err(e) => {
            let msg = e.to_string();
            format!("{msg} {}", unpeak(e.into_stats()))
        }
    }
}

/// One run's events (main sink), events rendered by the workers, websocket.log, weird.log and
/// statistics (or error).
fn outputs(analyzer: &Analyzer, path: &Path) -> [String; 5] {
    let mut cap = Capture::from_paths([path]);
    let mut main = JsonLines::new(Vec::new());
    let make = |w: LocalWriter| Box::new(JsonLines::in_memory(w)) as Box<dyn Sink>;
    let mut local_json = Vec::new();
    let mut local = LocalOutput {
        make: &make,
        out: &mut local_json,
        error: None,
    };
    let mut logs = ZeekLogs::new(Vec::new(), Vec::new(), Style::Ascii, false);
    let r = analyzer.run_with_outputs(&mut cap, &mut main, Some(&mut local), Some(&mut logs), true);
    assert!(local.error.is_none());
    let stats = comparable_stats(r);
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    let (ws, weird) = logs.finish().unwrap_or_default();
    [
        text(main.finish().unwrap_or_default()),
        text(local_json),
        text(ws),
        text(weird),
        stats,
    ]
}

/// Segment sizes [`fuzz_segments`] cuts each direction into.
const SEGMENTS: [usize; 4] = [1, 3, 64, 1460];

/// A WebSocket handshake that offers permessage-deflate, and the answers without it and with it.
const SEG_REQUEST: &[u8] =
    b"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
const SEG_RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
const SEG_RESPONSE_DEFLATE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";

/// Feeds one conversation to an analyzer [`Session`](crate::session::Session) twice: each
/// direction whole, and cut into segments (directions alternating), and checks that how TCP
/// cut the bytes changes nothing but where `frame_data` chunks end.
///
/// `data[0]`: bits 0–1 the segment size, bit 2 inflate, bit 3 the server accepts
/// permessage-deflate, bit 4 digests, bits 5–7 a small `frame_data` chunk size. `data[1]`
/// splits the rest: that many bytes (at most what is there) are the client's frames after the
/// handshake, the others the server's.
///
/// Asserts, per direction: the same frames (headers), the same payload per frame (the chunks
/// joined, each within the chunk size), the same application data per message (inflated when
/// compressed, joined), the same messages (opcode, length, digest) and closes, in order; and
/// the same anomalies, in order; up to a desync, after which the observer's search for the
/// next frame depends on the reads.
pub fn fuzz_segments(data: &[u8]) {
    let [ctl, cut, rest @ ..] = data else {
        return;
    };
    let (client, server) = rest.split_at(usize::from(*cut).min(rest.len()));
    let whole = conversation(*ctl, client, server, usize::MAX);
    let cut_up = conversation(*ctl, client, server, SEGMENTS[usize::from(ctl & 3)]);
    // Anomalies are compared in their own order: one raised inside a chunk of payload comes
    // before or after that chunk's data depending on where the segment ends. After a desync
    // the comparison stops: where the observer finds frames again depends on what each read
    // holds (it wants proof in the bytes at hand before it trusts a header).
    let split = |dirs: [Vec<Seen>; 2]| {
        dirs.map(|mut seen| {
            if let Some(at) = seen.iter().position(|s| *s == Seen::Anomaly("desync")) {
                seen.truncate(at + 1);
            }
            let (anomalies, rest): (Vec<Seen>, Vec<Seen>) = seen
                .into_iter()
                .partition(|s| matches!(s, Seen::Anomaly(_)));
            (rest, anomalies)
        })
    };
    assert_eq!(
        split(whole),
        split(cut_up),
        "segmentation changed what the analyzer reported"
    );
}

/// What the analyzer reported in one direction, chunking undone.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Established,
    /// A frame's header and its payload (the `frame_data` chunks joined, recorded where the
    /// header was: anomalies raised inside the frame come before or after its last chunk
    /// depending on the segments).
    Frame {
        fin: bool,
        rsv: u8,
        opcode: u8,
        masked: bool,
        len: u64,
        payload: Vec<u8>,
    },
    AppData(Vec<u8>),
    Message {
        opcode: u8,
        len: u64,
        sha256: Option<[u8; 32]>,
    },
    Close(u16, Vec<u8>),
    Anomaly(&'static str),
}

/// One direction's records and the chunks being joined.
#[derive(Default, Debug, PartialEq, Eq)]
struct DirSeen {
    seen: Vec<Seen>,
    /// Where the current frame's record is.
    frame: Option<usize>,
    app: Vec<u8>,
}

impl DirSeen {
    fn flush_app(&mut self) {
        if !self.app.is_empty() {
            let app = core::mem::take(&mut self.app);
            self.seen.push(Seen::AppData(app));
        }
    }
}

/// Runs the conversation in segments of `segment` bytes; the records per direction.
fn conversation(ctl: u8, client: &[u8], server: &[u8], segment: usize) -> [Vec<Seen>; 2] {
    use crate::session::{Session, SessionConfig};
    use crate::tcp::ConnMeta;
    use wscope_proto::role::Direction;
    use wscope_proto::time::Instant;

    let chunk = if ctl >> 5 == 0 {
        4096
    } else {
        usize::from(ctl >> 5) * 5
    };
    let cfg = SessionConfig {
        observer: wscope_proto::observe::ObserverConfig::default().inflate(ctl & 4 != 0),
        digest: ctl & 16 != 0,
        payload_chunk_size: chunk,
        ..SessionConfig::default()
    };
    let conn = ConnMeta::new(
        core::net::SocketAddr::from(([10, 0, 0, 1], 40000)),
        core::net::SocketAddr::from(([10, 0, 0, 2], 80)),
    );
    let mut dirs: [DirSeen; 2] = Default::default();
    let mut sink = |ev: &Event<'_>| {
        let d = &mut dirs[ev.dir.index()];
        match &ev.kind {
            EventKind::Established(..) => d.seen.push(Seen::Established),
            EventKind::Tls(_) => {}
            EventKind::Frame { header, .. } => {
                d.frame = Some(d.seen.len());
                d.seen.push(Seen::Frame {
                    fin: header.fin,
                    rsv: header.rsv,
                    opcode: header.opcode.0,
                    masked: header.mask.is_some(),
                    len: header.payload_len,
                    payload: Vec::new(),
                });
            }
            EventKind::FrameData { data, .. } => {
                assert!(data.len() <= chunk, "a frame_data chunk over {chunk}");
                let Some(Seen::Frame { payload, .. }) = d.frame.and_then(|i| d.seen.get_mut(i))
                else {
                    panic!("frame_data without a frame");
                };
                payload.extend_from_slice(data);
            }
            EventKind::MessageData {
                data, message_end, ..
            } => {
                d.app.extend_from_slice(data);
                if *message_end {
                    d.flush_app();
                }
            }
            EventKind::Message {
                opcode,
                len,
                sha256,
            } => {
                d.flush_app();
                d.seen.push(Seen::Message {
                    opcode: opcode.0,
                    len: *len,
                    sha256: *sha256,
                });
            }
            EventKind::Close { status, reason } => {
                d.seen.push(Seen::Close(*status, reason.to_vec()))
            }
            EventKind::Anomaly { name, .. } => d.seen.push(Seen::Anomaly(name)),
            // `Session::end` is not called here; no HTTP/2 here.
            EventKind::ConnectionEnd(_) | EventKind::Reset { .. } => {}
        }
    };
    let mut session = Session::new(cfg);
    let response = if ctl & 8 != 0 {
        SEG_RESPONSE_DEFLATE
    } else {
        SEG_RESPONSE
    };
    // The handshake first, request then response, each whole; then the two directions'
    // frames alternate segment by segment.
    session.data(
        &conn,
        Instant::from_micros(1),
        Direction::ClientToServer,
        SEG_REQUEST,
        &mut sink,
    );
    session.data(
        &conn,
        Instant::from_micros(2),
        Direction::ServerToClient,
        response,
        &mut sink,
    );
    let (mut c, mut s, mut t) = (client, server, 2);
    while !c.is_empty() || !s.is_empty() {
        for (dir, rest) in [
            (Direction::ClientToServer, &mut c),
            (Direction::ServerToClient, &mut s),
        ] {
            let n = rest.len().min(segment);
            if n > 0 {
                t += 1;
                session.data(&conn, Instant::from_micros(t), dir, &rest[..n], &mut sink);
                *rest = &rest[n..];
            }
        }
    }
    dirs.map(|mut d| {
        d.flush_app();
        d.seen
    })
}

/// Chunk sizes [`fuzz_tls`] feeds each direction in.
const TLS_CHUNKS: [usize; 4] = [1, 5, 700, 1 << 16];

/// The body of `fuzz/fuzz_targets/tls.rs`: the key log parser, the handshake parsers and the
/// TLS layer of one connection over arbitrary bytes. Layout: byte 0 picks the chunk size
/// (bits 0-1), whether the directions alternate chunk by chunk (bit 2) and whether the
/// follow differential runs (bit 3, the chunk the key log comes after in bits 4-7); then a
/// key log (u16 big-endian length, text), the client's bytes (u16 length), the server's bytes
/// (the rest). Asserts what the layer documents: no panic, at most one report, decrypted
/// bytes never more than the bytes fed, and at most one partial record held per direction.
/// The differential feeds the same chunks through [`crate::tls::TlsLayer`] into a session
/// twice: with the key log first, and with it followed ([`TlsLayer::keys_may_follow`]) and
/// given late; the events must be the same (a wait ends with the decryption and times the
/// keys give), unless what was held could pass [`crate::tls::MAX_AWAIT_BYTES`]. Returns
/// the decrypted application bytes (the seed replay checks that real seeds decrypt).
///
/// [`TlsLayer::keys_may_follow`]: crate::tls::TlsLayer::keys_may_follow
pub fn fuzz_tls(data: &[u8]) -> usize {
    use crate::tls::keylog::KeyLog;
    use crate::tls::{handshake, Out, TlsConn, MAX_FRAGMENT};
    use wscope_proto::role::Direction;

    let Some((&ctl, rest)) = data.split_first() else {
        return 0;
    };
    fn take<'a>(d: &mut &'a [u8]) -> &'a [u8] {
        let n = match d {
            [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
            _ => d.len(),
        };
        let d2 = &d[d.len().min(2)..];
        let n = n.min(d2.len());
        let (a, b) = d2.split_at(n);
        *d = b;
        a
    }
    let mut rest = rest;
    let keytext = take(&mut rest);
    let client = take(&mut rest);
    let server = rest;
    let mut keys = KeyLog::new();
    keys.add_bytes(keytext, "fuzz");
    assert!(keys.warnings().len() <= crate::tls::keylog::MAX_WARNINGS);
    // The parsers alone, on every input.
    let _ = handshake::client_hello(client);
    let _ = handshake::server_hello(server);
    let _ = handshake::encrypted_extensions(server);

    let chunk = TLS_CHUNKS[usize::from(ctl & 3)];
    let mut conn = TlsConn::default();
    let (mut plain, mut reports) = (0usize, 0usize);
    let mut out = |o: Out<'_>, _: &crate::tls::TlsInfo| match o {
        Out::Data(d) => plain += d.len(),
        Out::Report => reports += 1,
        Out::Anomaly(..) => {}
    };
    let (mut c, mut s) = (client.chunks(chunk), server.chunks(chunk));
    let alternate = ctl & 4 != 0;
    loop {
        // Alternating: a chunk of each direction in turn; else all the client's bytes first.
        let a = c.next();
        let b = if alternate || a.is_none() {
            s.next()
        } else {
            None
        };
        if a.is_none() && b.is_none() {
            break;
        }
        if let Some(a) = a {
            conn.feed(Direction::ClientToServer, a, &keys, &mut out);
        }
        if let Some(b) = b {
            conn.feed(Direction::ServerToClient, b, &keys, &mut out);
        }
        assert!(conn.held() <= 2 * (5 + MAX_FRAGMENT + chunk));
    }
    assert!(reports <= 1, "{reports} reports");
    assert!(plain <= client.len() + server.len());
    if ctl & 8 != 0 {
        let feed = TlsFeed {
            client,
            server,
            chunk,
            alternate,
        };
        let first = feed.events(keytext, None);
        let late = feed.events(keytext, Some(usize::from(ctl >> 4)));
        let chunks = client.len().div_ceil(chunk) + server.len().div_ceil(chunk);
        if chunks * crate::tls::HELD_EVENT_COST + client.len() + server.len()
            <= crate::tls::MAX_AWAIT_BYTES
        {
            assert_eq!(first, late, "the key log first, or followed and given late");
        }
    }
    plain
}

/// The chunks of [`fuzz_tls`], in its order.
struct TlsFeed<'a> {
    client: &'a [u8],
    server: &'a [u8],
    chunk: usize,
    alternate: bool,
}

impl TlsFeed<'_> {
    /// The events of the chunks through a TLS layer into a session, the connection ended
    /// after them: with the key log `keytext` first (`late` None), or followed and given
    /// after chunk `late` (at the end at the latest).
    fn events(&self, keytext: &[u8], late: Option<usize>) -> Vec<crate::event::OwnedEvent> {
        use crate::http2::App;
        use crate::session::SessionConfig;
        use crate::tcp::{CloseReason, ConnMeta};
        use crate::tls::keylog::KeyLog;
        use crate::tls::{TlsLayer, TlsSlot};
        use wscope_proto::role::Direction;
        use wscope_proto::time::{Duration, Instant};

        let mut keys = KeyLog::new();
        if late.is_none() {
            keys.add_bytes(keytext, "fuzz");
        }
        let mut layer = TlsLayer::new(keys).keys_may_follow(late.is_some());
        let (mut slot, mut app) = (TlsSlot::default(), App::default());
        let cfg = SessionConfig::default();
        let conn = ConnMeta::new(
            core::net::SocketAddr::from(([10, 0, 0, 1], 40000)),
            core::net::SocketAddr::from(([10, 0, 0, 2], 443)),
        );
        let mut events = Vec::new();
        let mut sink = |ev: &Event<'_>| events.push(crate::event::OwnedEvent::from(ev));
        let mut ts = Instant::from_micros(1_000_000);
        let mut given = late.is_none();
        let give = |layer: &mut TlsLayer, slot: &mut TlsSlot, app: &mut App, ts, sink: &mut _| {
            layer.add_secrets(keytext);
            for _ in layer.waiting() {
                layer.revisit(slot, app, cfg, &conn, ts, sink);
            }
        };
        let (mut c, mut s) = (
            self.client.chunks(self.chunk),
            self.server.chunks(self.chunk),
        );
        let mut n = 0usize;
        loop {
            let a = c.next();
            let b = if self.alternate || a.is_none() {
                s.next()
            } else {
                None
            };
            if a.is_none() && b.is_none() {
                break;
            }
            for (dir, bytes) in [
                (Direction::ClientToServer, a),
                (Direction::ServerToClient, b),
            ] {
                let Some(bytes) = bytes else { continue };
                if !given && late == Some(n) {
                    give(&mut layer, &mut slot, &mut app, ts, &mut sink);
                    given = true;
                }
                layer.data(&mut slot, &mut app, cfg, &conn, ts, dir, bytes, &mut sink);
                ts = ts + Duration::from_millis(1);
                n += 1;
            }
        }
        if !given {
            give(&mut layer, &mut slot, &mut app, ts, &mut sink);
        }
        layer.closed(&mut slot, &mut app, cfg, &conn, ts, &mut sink);
        app.end(&conn, ts, CloseReason::CaptureEnd, &mut sink);
        events
    }
}

/// Chunk sizes [`fuzz_http2`] feeds each direction in.
const H2_CHUNKS: [usize; 4] = [1, 9, 600, 1 << 16];

/// The body of `fuzz/fuzz_targets/http2.rs`: the HTTP/2 layer of one connection (frames,
/// HPACK, streams, the WebSocket sessions of its streams) over arbitrary bytes. Layout:
/// byte 0 picks the chunk size (bits 0-1), whether the directions alternate chunk by chunk
/// (bit 2) and whether the client preface is put before the client's bytes (bit 3, so the
/// fuzzer need not find it); then the client's bytes (u16 big-endian length), the server's
/// (the rest). Small limits (8 streams, 4 KiB header blocks) so that they are reached.
/// Asserts what the layer documents: no panic, at most `max_streams` streams tracked, and
/// one `connection_end` per `established` once the connection ends, each stream's events on
/// one uid. Returns the number of WebSocket sessions (the seed replay checks that seeds
/// reach them).
pub fn fuzz_http2(data: &[u8]) -> usize {
    use std::collections::HashMap;

    use wscope_proto::role::Direction;
    use wscope_proto::time::Instant;

    use crate::http2::{frame::PREFACE, H2Conn, Http2Config};
    use crate::session::SessionConfig;
    use crate::tcp::{CloseReason, ConnMeta};

    let Some((&ctl, rest)) = data.split_first() else {
        return 0;
    };
    let n = match rest {
        [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
        _ => rest.len(),
    };
    let rest = &rest[rest.len().min(2)..];
    let (client, server) = rest.split_at(n.min(rest.len()));
    let mut client_bytes = Vec::new();
    if ctl & 8 != 0 {
        client_bytes.extend_from_slice(PREFACE);
    }
    client_bytes.extend_from_slice(client);
    let cfg = SessionConfig {
        http2: Http2Config {
            max_streams: 8,
            max_header_block: 4096,
            ..Http2Config::default()
        },
        http_anomalies: true,
        digest: true,
        ..SessionConfig::default()
    };
    let meta = ConnMeta::new(
        core::net::SocketAddr::from(([10, 0, 0, 1], 40000)),
        core::net::SocketAddr::from(([10, 0, 0, 2], 80)),
    );
    let mut h2 = H2Conn::new(cfg.http2, cfg);
    // Per stream uid: (stream id, established, ended).
    let mut seen: HashMap<String, (Option<u32>, u32, u32)> = HashMap::new();
    let mut sink = |ev: &Event<'_>| {
        let Some(stream) = ev.conn.stream_id else {
            return;
        };
        let e = seen
            .entry(ev.conn.uid.to_string())
            .or_insert((Some(stream), 0, 0));
        assert_eq!(e.0, Some(stream), "one uid, one stream");
        match ev.kind {
            EventKind::Established(..) => e.1 += 1,
            EventKind::ConnectionEnd(_) => e.2 += 1,
            _ => {}
        }
    };
    let chunk = H2_CHUNKS[usize::from(ctl & 3)];
    let alternate = ctl & 4 != 0;
    let (mut c, mut s) = (client_bytes.chunks(chunk), server.chunks(chunk));
    loop {
        let a = c.next();
        let b = if alternate || a.is_none() {
            s.next()
        } else {
            None
        };
        if a.is_none() && b.is_none() {
            break;
        }
        if let Some(a) = a {
            h2.data(
                &meta,
                Instant::ZERO,
                Direction::ClientToServer,
                a,
                &mut sink,
            );
        }
        if let Some(b) = b {
            h2.data(
                &meta,
                Instant::ZERO,
                Direction::ServerToClient,
                b,
                &mut sink,
            );
        }
        assert!(h2.tracked() <= 8, "{} streams tracked", h2.tracked());
    }
    h2.end(&meta, Instant::ZERO, CloseReason::CaptureEnd, &mut sink);
    for (uid, (_, est, end)) in &seen {
        assert!(
            *est <= 1 && *end == *est,
            "{uid}: {est} established, {end} ends"
        );
    }
    seen.values().filter(|v| v.1 == 1).count()
}
