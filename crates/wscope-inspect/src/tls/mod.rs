//! Passive `wss://`: TLS 1.2 and 1.3 decryption from key logs, as an input layer between TCP
//! reassembly and the HTTP/WebSocket [`Session`](crate::session::Session).
//!
//! ```text
//!   ConnectionEvent::Data (reassembled TCP bytes of one direction)
//!        │  first payload byte 0x16/0x17 + 0x03: a TLS connection, else cleartext (unchanged)
//!        ▼
//!   TLS records (5-byte headers, fragments up to 2^14 + 2048 bytes)
//!        │  ClientHello.random → key log (files, pcapng Decryption Secrets Blocks)
//!        │  TLS 1.3: HKDF traffic keys (handshake, application, KeyUpdate);
//!        │  TLS 1.2: PRF key block from the master secret; AEAD records (ring)
//!        ▼
//!   decrypted application data → Session::data (or the HTTP/2 layer for ALPN h2), the
//!   same pipeline as cleartext
//! ```
//!
//! A TLS connection whose keys are not in the key log is reported once with an
//! [`EventKind::Tls`] event whose [`TlsInfo::decrypted`] is `false` (JSON `tls_undecrypted`)
//! and is never a WebSocket session; its bytes are dropped unread. A decrypted connection
//! gets an [`EventKind::Tls`] event (JSON `tls`) once its parameters are known, and its
//! `established` event carries the [`TlsInfo`]. A record that does not decrypt is an anomaly
//! (`tls_decrypt_failed`, with the record number of its direction); that direction stops,
//! the other and every other flow go on. A TCP gap stops decryption of its direction
//! (`tls_gap`): the record sequence is lost with it.
//!
//! Memory per connection: one partial record per direction (at most 2^14 + 2048 + 5 bytes),
//! the handshake messages decryption reads (at most 64 KiB, only while they arrive) and the
//! keys. Records are decrypted in place.
//!
//! **A key log that is still being written** (live capture of a browser's `SSLKEYLOGFILE`,
//! [`TlsLayer::keys_may_follow`]): the client writes a connection's secrets as it derives
//! them, so they may reach the analyzer after the ServerHello that needs them. Such a
//! connection then waits: what both directions send next is held, in order and with its
//! capture times (at most [`MAX_AWAIT_BYTES`], for at most [`MAX_AWAIT`] of capture time),
//! and when the secrets come ([`TlsLayer::add_secrets`], then [`TlsLayer::revisit`]) it is
//! decrypted from the ServerHello on, with the events and times it would have had if the
//! secrets had been there from the start. When the wait ends otherwise (those limits, the
//! connection's end) it goes on with the secrets there are, as it would have without the
//! wait: undecrypted without any.
//!
//! A connection that selects ALPN `h2` is counted ([`TlsStats::h2`]) and its plaintext is
//! read as HTTP/2 ([`crate::http2`]): its WebSocket streams (RFC 8441) are sessions whose
//! `established` events carry the [`TlsInfo`] too.
//!
//! Not decrypted: CBC and other non-AEAD suites, SSL 3.0 / TLS 1.0–1.1, TLS 1.3 0-RTT data
//! (skipped: its records are passed over until the handshake keys decrypt), compressed TLS.

pub mod crypto;
pub mod handshake;
pub mod keylog;

use core::cell::RefCell;
use core::fmt;
use std::borrow::Cow;
use std::collections::HashSet;

use wscope_proto::role::Direction;
use wscope_proto::time::Instant;

use crate::decode::FlowKey;
use crate::event::{Event, EventKind};
use crate::http2::App;
use crate::session::{SessionConfig, TcpNote};
use crate::sink::Sink;
use crate::tcp::ConnMeta;
use crypto::{RecordKeys, Suite};
use handshake::msg;
use keylog::{KeyLog, Label, Secret};

/// The largest record fragment accepted (RFC 5246 §6.2.3: 2^14 + 2048; TLS 1.3 allows less).
pub const MAX_FRAGMENT: usize = (1 << 14) + 2048;

/// The most bytes a connection holds while it waits for its secrets (both directions; see
/// [`TlsLayer::keys_may_follow`]). Past this it goes on with the secrets there are.
pub const MAX_AWAIT_BYTES: usize = 256 << 10;

/// How long, in capture time after its ServerHello, a connection waits for its secrets (see
/// [`TlsLayer::keys_may_follow`]); a client writes them within a round trip. Checked on the
/// ticks of a live capture.
pub const MAX_AWAIT: wscope_proto::time::Duration = wscope_proto::time::Duration::from_secs(5);

/// Record content types.
const CCS: u8 = 20;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;

/// What is known of a TLS connection (see the [module docs](self)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// Negotiated version (`0x0303` TLS 1.2, `0x0304` TLS 1.3); 0 before the ServerHello.
    pub version: u16,
    /// Negotiated cipher suite; 0 before the ServerHello.
    pub suite: u16,
    /// The server name the client asked for (SNI).
    pub sni: Option<String>,
    /// The application protocol the server selected (ALPN: `http/1.1`, `h2`).
    pub alpn: Option<String>,
    /// The connection's application data is decrypted.
    pub decrypted: bool,
    /// Why not, when it is not.
    pub reason: Option<&'static str>,
}

impl TlsInfo {
    /// `TLSv1.3`, `TLSv1.2`, … (`unknown` before the ServerHello).
    pub fn version_name(&self) -> Cow<'static, str> {
        match self.version {
            0x0304 => "TLSv1.3".into(),
            0x0303 => "TLSv1.2".into(),
            0x0302 => "TLSv1.1".into(),
            0x0301 => "TLSv1.0".into(),
            0x0300 => "SSLv3".into(),
            0 => "unknown".into(),
            v => format!("0x{v:04x}").into(),
        }
    }

    /// The cipher suite's IANA name for the suites decrypted, else its code point in hex.
    pub fn cipher_name(&self) -> Cow<'static, str> {
        match crypto::suite(self.suite) {
            Some(s) => s.name.into(),
            None if self.suite == 0 => "unknown".into(),
            None => format!("0x{:04X}", self.suite).into(),
        }
    }
}

impl fmt::Display for TlsInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.version_name(), self.cipher_name())?;
        if let Some(sni) = &self.sni {
            write!(f, " sni={sni}")?;
        }
        if let Some(alpn) = &self.alpn {
            write!(f, " alpn={alpn}")?;
        }
        Ok(())
    }
}

/// The most distinct server names [`TlsStats::undecrypted_sni`] keeps; others are counted
/// under `(other)`.
pub const MAX_SNI_KEPT: usize = 1000;

/// TLS counters of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsStats {
    /// TLS connections reported.
    pub connections: u64,
    /// Of those, decrypted.
    pub decrypted: u64,
    /// Of those, not decrypted (no key, unsupported suite or version, handshake not seen).
    pub undecrypted: u64,
    /// Undecrypted connections per SNI (`(none)` without one).
    pub undecrypted_sni: std::collections::BTreeMap<String, u64>,
    /// Decrypted connections that selected ALPN `h2` (read as HTTP/2, [`crate::http2`]).
    pub h2: u64,
    /// Key log lines that came during the run (pcapng Decryption Secrets Blocks, lines a
    /// followed key log gained) and were malformed ([`TlsLayer::malformed_during_run`]).
    pub keylog_malformed: u64,
    /// What was wrong with the first of them.
    pub keylog_problem: Option<&'static str>,
}

impl TlsStats {
    /// Adds the counters of another run (another share of the traffic). The SNI table keeps
    /// its bound: names beyond it are counted as `(other)`.
    pub fn add(&mut self, o: &Self) {
        self.connections += o.connections;
        self.decrypted += o.decrypted;
        self.undecrypted += o.undecrypted;
        self.h2 += o.h2;
        for (name, n) in &o.undecrypted_sni {
            self.count_sni(name, *n);
        }
        self.add_key_log(o);
    }

    /// Takes the key log counters of another share of the run. Every share reads every key
    /// log line (each worker its own copy), so the counts are not summed: the larger is kept.
    pub(crate) fn add_key_log(&mut self, o: &Self) {
        self.keylog_malformed = self.keylog_malformed.max(o.keylog_malformed);
        self.keylog_problem = self.keylog_problem.or(o.keylog_problem);
    }

    /// Records what `tls` says about the key log lines that came during the run.
    pub(crate) fn note_key_log(&mut self, tls: &TlsLayer) {
        (self.keylog_malformed, self.keylog_problem) = tls.malformed_during_run();
    }

    /// Counts one `tls`/`tls_undecrypted` report.
    pub fn count(&mut self, info: &TlsInfo) {
        self.connections += 1;
        if info.decrypted {
            self.decrypted += 1;
            if info.alpn.as_deref() == Some("h2") {
                self.h2 += 1;
            }
        } else {
            self.undecrypted += 1;
            self.count_sni(info.sni.as_deref().unwrap_or("(none)"), 1);
        }
    }

    /// Counts `n` undecrypted connections for SNI `name`, within the table's bound (names
    /// beyond it are counted as `(other)`).
    fn count_sni(&mut self, name: &str, n: u64) {
        let key = if self.undecrypted_sni.len() < MAX_SNI_KEPT
            || self.undecrypted_sni.contains_key(name)
        {
            name
        } else {
            "(other)"
        };
        *self.undecrypted_sni.entry(key.to_owned()).or_default() += n;
    }
}

/// One direction of a TLS connection.
#[derive(Debug, Default)]
struct Dir {
    /// Bytes of a partial record.
    buf: Vec<u8>,
    hs: handshake::Reader,
    /// Keys records are decrypted with now.
    keys: Option<RecordKeys>,
    /// TLS 1.2: keys the next ChangeCipherSpec turns on.
    pending: Option<RecordKeys>,
    /// TLS 1.3: the current traffic secret (for KeyUpdate).
    secret: Option<Secret>,
    /// TLS 1.3: the application traffic secret the Finished message switches to.
    next: Option<Secret>,
    /// Records that fail to decrypt are passed over (0-RTT data before the handshake keys;
    /// handshake records when only application secrets are known) until one decrypts.
    trial: bool,
    /// Records seen, from 1.
    records: u64,
    stopped: bool,
}

/// What a TLS connection hands out while it is fed.
pub(crate) enum Out<'a> {
    /// Decrypted application data.
    Data(&'a [u8]),
    /// An anomaly of this direction.
    Anomaly(&'static str, String),
    /// The connection's parameters are known (report once).
    Report,
}

/// One TLS connection's decryption state.
#[derive(Debug, Default)]
pub(crate) struct TlsConn {
    info: TlsInfo,
    client_random: Option<[u8; 32]>,
    early_offered: bool,
    suite: Option<&'static Suite>,
    tls13: bool,
    reported: bool,
    /// Nothing more is read (no keys, unsupported, not TLS).
    opaque: bool,
    dirs: [Dir; 2],
    /// The key log may still bring this connection's secrets ([`TlsLayer::keys_may_follow`]).
    follow: bool,
    /// Waiting for the secrets of its client random (only with `follow`).
    awaiting: Option<Box<Awaiting>>,
}

/// A connection waiting for its secrets: the ServerHello that needs them and what came after.
#[derive(Debug)]
struct Awaiting {
    sh: handshake::ServerHello,
    /// The ServerHello's time (set by the layer when the wait begins).
    ts: Option<Instant>,
    /// The connection's events since, in order, with their directions and times.
    held: Vec<(Direction, Instant, Held)>,
    /// What they cost, counted against [`MAX_AWAIT_BYTES`].
    bytes: usize,
}

/// One event of a waiting connection, replayed in order once its secrets come.
#[derive(Debug)]
enum Held {
    Data(Vec<u8>),
    Gap(u64),
    Eof,
    Note(TcpNote),
}

/// What a held event costs beyond its bytes (so that events without bytes are bounded too).
pub(crate) const HELD_EVENT_COST: usize = 64;

/// Why a record stream stops.
struct Stop(&'static str, String);

impl From<handshake::Malformed> for Stop {
    fn from(m: handshake::Malformed) -> Self {
        Self("tls_malformed_handshake", m.0.to_owned())
    }
}

impl TlsConn {
    /// The connection's parameters.
    pub(crate) const fn info(&self) -> &TlsInfo {
        &self.info
    }

    /// A connection seen mid-stream: never decrypted.
    fn opaque(reason: &'static str, version: u16) -> Self {
        let mut c = Self::default();
        c.make_opaque(reason);
        c.info.version = version;
        c
    }

    fn make_opaque(&mut self, reason: &'static str) {
        self.opaque = true;
        self.awaiting = None;
        self.info.decrypted = false;
        self.info.reason = Some(reason);
        for d in &mut self.dirs {
            *d = Dir::default();
        }
    }

    /// Bytes held in partial records (both directions), and while waiting for the secrets.
    pub(crate) fn held(&self) -> usize {
        self.dirs.iter().map(|d| d.buf.len()).sum::<usize>()
            + self.awaiting.as_ref().map_or(0, |a| a.bytes)
    }

    /// Whether the connection waits for its secrets.
    pub(crate) fn is_awaiting(&self) -> bool {
        self.awaiting.is_some()
    }

    /// Whether the connection's bytes are still read.
    pub(crate) const fn is_opaque(&self) -> bool {
        self.opaque
    }

    /// Reports the connection once (called after `feed`; the caller emits the event).
    fn report(&mut self, out: &mut dyn FnMut(Out<'_>, &TlsInfo)) {
        if !self.reported {
            self.reported = true;
            out(Out::Report, &self.info);
        }
    }

    /// A TCP gap in `dir`: its records can no longer be followed.
    pub(crate) fn gap(&mut self, dir: Direction, len: u64, out: &mut dyn FnMut(Out<'_>, &TlsInfo)) {
        let d = &mut self.dirs[dir.index()];
        if self.opaque || d.stopped {
            return;
        }
        *d = Dir {
            stopped: true,
            ..Dir::default()
        };
        out(
            Out::Anomaly(
                "tls_gap",
                format!("{len} bytes lost: decryption of this direction stops"),
            ),
            &self.info,
        );
    }

    /// Feeds in-order bytes of `dir`.
    pub(crate) fn feed(
        &mut self,
        dir: Direction,
        bytes: &[u8],
        keys: &KeyLog,
        out: &mut dyn FnMut(Out<'_>, &TlsInfo),
    ) {
        let di = dir.index();
        if self.opaque || self.dirs[di].stopped {
            return;
        }
        let mut at = 0usize;
        // Whole records straight from `bytes` are copied into the direction's buffer once
        // (they are decrypted in place); a partial one waits there.
        self.dirs[di].buf.extend_from_slice(bytes);
        loop {
            if self.awaiting.is_some() {
                // The records after the ServerHello wait in the buffer for the secrets (the
                // layer holds what comes later, see `TlsLayer::hold`).
                break;
            }
            let buf = &self.dirs[di].buf;
            if buf.len() - at < 5 {
                break;
            }
            let header: [u8; 5] = buf[at..at + 5].try_into().expect("5 bytes");
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            if !(CCS..=24).contains(&header[0]) || header[1] != 3 || len > MAX_FRAGMENT {
                let n = self.dirs[di].records + 1;
                let what = if (CCS..=24).contains(&header[0]) && header[1] == 3 {
                    format!("record {n} of {len} bytes, over 2^14 + 2048")
                } else {
                    format!(
                        "record {n}: header {:02x} {:02x} {:02x} is not TLS",
                        header[0], header[1], header[2]
                    )
                };
                self.stop(di, Stop("tls_bad_record", what), out);
                return;
            }
            if buf.len() - at < 5 + len {
                break;
            }
            self.dirs[di].records += 1;
            let range = at + 5..at + 5 + len;
            at += 5 + len;
            if let Err(stop) = self.record(dir, header, range, keys, out) {
                self.stop(di, stop, out);
                return;
            }
            if self.opaque {
                self.dirs[di].buf = Vec::new();
                self.report(out);
                return;
            }
        }
        let buf = &mut self.dirs[di].buf;
        buf.drain(..at);
        if buf.is_empty() && buf.capacity() > 2 * MAX_FRAGMENT {
            *buf = Vec::new();
        }
    }

    fn stop(
        &mut self,
        di: usize,
        Stop(name, detail): Stop,
        out: &mut dyn FnMut(Out<'_>, &TlsInfo),
    ) {
        self.dirs[di] = Dir {
            stopped: true,
            ..Dir::default()
        };
        // A connection that stops before its report (a malformed hello) is still reported.
        if self.opaque {
            self.report(out);
            return;
        }
        out(Out::Anomaly(name, detail), &self.info);
    }

    /// One whole record, at `range` of the direction's buffer.
    fn record(
        &mut self,
        dir: Direction,
        header: [u8; 5],
        range: core::ops::Range<usize>,
        keys: &KeyLog,
        out: &mut dyn FnMut(Out<'_>, &TlsInfo),
    ) -> Result<(), Stop> {
        let di = dir.index();
        let ct = header[0];
        let d = &mut self.dirs[di];
        if ct == CCS {
            // TLS 1.2: the sender's next records are protected. TLS 1.3: compatibility noise.
            if !self.tls13 {
                if let Some(k) = d.pending.take() {
                    d.keys = Some(k);
                }
            }
            return Ok(());
        }
        let (ct, plain) = if let Some(k) = d.keys.as_mut() {
            let record_no = d.records;
            let body = &mut d.buf[range.clone()];
            match k.open(header, body) {
                Ok((ct, r)) => {
                    d.trial = false;
                    (ct, range.start + r.start..range.start + r.end)
                }
                Err(_) if d.trial => return Ok(()),
                Err(e) => {
                    return Err(Stop(
                        "tls_decrypt_failed",
                        format!(
                            "record {record_no} (sequence {}): {}; this direction is no longer \
                             decrypted",
                            k.seq(),
                            e.as_str()
                        ),
                    ));
                }
            }
        } else if ct == APPLICATION_DATA {
            // Protected data without keys yet: 0-RTT data before the ServerHello, or a
            // direction whose keys were never given. Passed over.
            return Ok(());
        } else {
            (ct, range)
        };
        match ct {
            HANDSHAKE => {
                let mut hs = core::mem::take(&mut self.dirs[di].hs);
                let buf = core::mem::take(&mut self.dirs[di].buf);
                let r = hs.push(&buf[plain], |t, body| self.message(dir, t, body, keys, out));
                self.dirs[di].buf = buf;
                self.dirs[di].hs = hs;
                r
            }
            APPLICATION_DATA => {
                if !plain.is_empty() {
                    out(Out::Data(&self.dirs[di].buf[plain]), &self.info);
                }
                Ok(())
            }
            // Alerts (close_notify and errors) and anything else end nothing here: TCP ends
            // the connection.
            _ => Ok(()),
        }
    }

    /// One whole handshake message of `dir`.
    fn message(
        &mut self,
        dir: Direction,
        ty: u8,
        body: &[u8],
        keys: &KeyLog,
        out: &mut dyn FnMut(Out<'_>, &TlsInfo),
    ) -> Result<(), Stop> {
        let di = dir.index();
        match (dir, ty) {
            // After a HelloRetryRequest the second ClientHello keeps the same random.
            (Direction::ClientToServer, msg::CLIENT_HELLO) if self.client_random.is_none() => {
                let ch = handshake::client_hello(body)?;
                self.client_random = Some(ch.random);
                self.info.sni = ch.sni;
                self.early_offered = ch.early_data;
            }
            (Direction::ServerToClient, msg::SERVER_HELLO) => {
                let (sh, alpn) = handshake::server_hello(body)?;
                if sh.retry {
                    return Ok(());
                }
                self.info.version = sh.version;
                self.info.suite = sh.suite;
                self.info.alpn = alpn;
                if self.follow && !self.has_secrets(&sh, keys) {
                    self.awaiting = Some(Box::new(Awaiting {
                        sh,
                        ts: None,
                        held: Vec::new(),
                        bytes: 0,
                    }));
                    return Ok(());
                }
                self.server_hello(sh, keys);
                if self.opaque || !self.tls13 {
                    // TLS 1.2 knows everything now; TLS 1.3 waits for EncryptedExtensions.
                    self.report(out);
                }
            }
            (Direction::ServerToClient, msg::ENCRYPTED_EXTENSIONS) => {
                let (alpn, _early) = handshake::encrypted_extensions(body)?;
                self.info.alpn = alpn;
                self.report(out);
            }
            (_, msg::FINISHED) if self.tls13 => {
                let Some(suite) = self.suite else {
                    return Ok(());
                };
                let d = &mut self.dirs[di];
                if let Some(next) = d.next.take() {
                    d.keys = Some(RecordKeys::tls13(suite, next.as_bytes()));
                    d.secret = Some(next);
                    d.trial = false;
                }
            }
            (_, msg::KEY_UPDATE) if self.tls13 => {
                let Some(suite) = self.suite else {
                    return Ok(());
                };
                let d = &mut self.dirs[di];
                if let Some(cur) = d.secret {
                    let mut next = [0u8; 48];
                    let next = &mut next[..suite.hash.len()];
                    crypto::hkdf_expand_label(
                        suite.hash,
                        cur.as_bytes(),
                        b"traffic upd",
                        b"",
                        next,
                    );
                    let next = Secret::new(next).expect("hash length");
                    d.keys = Some(RecordKeys::tls13(suite, next.as_bytes()));
                    d.secret = Some(next);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the key log has all the secrets a ServerHello's connection is decrypted with
    /// (TLS 1.3: both application traffic secrets, which clients write after the handshake
    /// ones; TLS 1.2: the master secret). A ServerHello that cannot be decrypted anyway (no
    /// ClientHello seen, a suite or version not decrypted) needs none.
    fn has_secrets(&self, sh: &handshake::ServerHello, keys: &KeyLog) -> bool {
        let (Some(random), Some(suite)) = (self.client_random, crypto::suite(sh.suite)) else {
            return true;
        };
        match sh.version {
            0x0304 if suite.tls13 => {
                keys.get(&random, Label::ClientTraffic0).is_some()
                    && keys.get(&random, Label::ServerTraffic0).is_some()
            }
            0x0303 if !suite.tls13 => keys.get(&random, Label::ClientRandom).is_some(),
            _ => true,
        }
    }

    /// Looks the keys up and installs them.
    fn server_hello(&mut self, sh: handshake::ServerHello, keys: &KeyLog) {
        let Some(random) = self.client_random else {
            self.make_opaque("the ClientHello was not seen");
            return;
        };
        let Some(suite) = crypto::suite(sh.suite) else {
            self.make_opaque("cipher suite not decrypted (only AEAD suites are)");
            return;
        };
        match sh.version {
            0x0304 if suite.tls13 => {
                self.tls13 = true;
                self.suite = Some(suite);
                let get = |l| keys.get(&random, l).copied();
                let (cht, sht) = (get(Label::ClientHandshake), get(Label::ServerHandshake));
                let (ca, sa) = (get(Label::ClientTraffic0), get(Label::ServerTraffic0));
                if ca.is_none() && sa.is_none() {
                    self.make_opaque("no key for this client random");
                    return;
                }
                let hash_len = suite.hash.len();
                let fits = |s: &Option<Secret>| s.is_none_or(|s| s.as_bytes().len() == hash_len);
                if ![cht, sht, ca, sa].iter().all(fits) {
                    self.make_opaque("key log secrets do not fit the cipher suite's hash");
                    return;
                }
                for (d, hs, app) in [(0, cht, ca), (1, sht, sa)] {
                    let dir = &mut self.dirs[d];
                    match hs {
                        Some(hs) => {
                            dir.keys = Some(RecordKeys::tls13(suite, hs.as_bytes()));
                            dir.secret = Some(hs);
                            dir.next = app;
                            // The client may send 0-RTT records before its handshake ones.
                            dir.trial = d == 0 && self.early_offered;
                        }
                        None => {
                            // No handshake secret: skip records until the application keys
                            // decrypt one.
                            if let Some(app) = app {
                                dir.keys = Some(RecordKeys::tls13(suite, app.as_bytes()));
                                dir.secret = Some(app);
                                dir.trial = true;
                            }
                        }
                    }
                }
                self.info.decrypted = true;
            }
            0x0303 if !suite.tls13 => {
                let Some(master) = keys.get(&random, Label::ClientRandom) else {
                    self.make_opaque("no key for this client random");
                    return;
                };
                self.suite = Some(suite);
                let (c, s) = RecordKeys::tls12_pair(suite, master.as_bytes(), &random, &sh.random);
                self.dirs[0].pending = Some(c);
                self.dirs[1].pending = Some(s);
                self.info.decrypted = true;
            }
            _ => self.make_opaque("protocol version not decrypted (TLS 1.2 and 1.3 are)"),
        }
    }
}

/// Per-connection TLS state kept in the flow table next to the [`Session`](crate::session::Session) (a word for a
/// cleartext connection).
#[derive(Debug, Default)]
pub struct TlsSlot(SlotState);

#[derive(Debug, Default)]
enum SlotState {
    /// No payload seen yet.
    #[default]
    New,
    Plain,
    Tls(Box<TlsConn>),
}

/// Whether a connection's first payload bytes are a TLS record: handshake (a ClientHello,
/// or a ServerHello seen first) or application data (mid-stream).
fn looks_like_tls(bytes: &[u8]) -> Option<bool> {
    match bytes {
        [HANDSHAKE, 3, minor, ..] if *minor <= 4 => Some(true),
        [APPLICATION_DATA, 3, 1..=4, ..] => Some(false),
        _ => None,
    }
}

/// The TLS layer of a run: the key log (files, then Decryption Secrets Blocks as the capture
/// brings them).
#[derive(Debug, Default)]
pub struct TlsLayer {
    keys: KeyLog,
    /// The key log's malformed lines and warnings before the run (those of the files read
    /// beforehand, reported where they were read).
    before: (u64, usize),
    /// The key log may still grow ([`TlsLayer::keys_may_follow`]).
    follow: bool,
    /// The connections waiting for their secrets.
    waiting: RefCell<HashSet<FlowKey>>,
}

/// Adds the [`TlsInfo`] to the `established` event of a decrypted session.
struct WithTls<'a, S: ?Sized> {
    info: &'a TlsInfo,
    sink: &'a mut S,
}

impl<S: Sink + ?Sized> Sink for WithTls<'_, S> {
    fn event(&mut self, ev: &Event<'_>) {
        if let EventKind::Established(up, None) = ev.kind {
            self.sink.event(&Event {
                ts: ev.ts,
                conn: ev.conn,
                dir: ev.dir,
                kind: EventKind::Established(up, Some(self.info)),
            });
        } else {
            self.sink.event(ev);
        }
    }

    fn connection_closed(&mut self, conn: &ConnMeta) {
        self.sink.connection_closed(conn);
    }
}

impl TlsLayer {
    /// A layer with these keys.
    pub fn new(keys: KeyLog) -> Self {
        Self {
            before: (keys.stats().malformed, keys.warnings().len()),
            keys,
            follow: false,
            waiting: RefCell::default(),
        }
    }

    /// Whether the key log may still bring secrets during the run (a live capture following a
    /// key log that a browser is writing). Then a connection whose secrets are missing at its
    /// ServerHello waits for them, holding what it sends (see the [module docs](self));
    /// without, it is undecrypted at once. Off by default: a capture file's key log is
    /// complete before the run.
    #[must_use]
    pub fn keys_may_follow(mut self, follow: bool) -> Self {
        self.follow = follow;
        self
    }

    /// The connections waiting for their secrets: hand each to [`TlsLayer::revisit`] after
    /// new secrets, and now and then (a tick), so that they go on or give up.
    pub fn waiting(&self) -> Vec<FlowKey> {
        self.waiting.borrow().iter().copied().collect()
    }

    /// The key log.
    pub const fn keys(&self) -> &KeyLog {
        &self.keys
    }

    /// Adds key log text that comes during the run: a pcapng Decryption Secrets Block, or the
    /// lines a followed key log gained.
    pub fn add_secrets(&mut self, text: &[u8]) {
        self.keys.add_bytes(text, "key log text of the capture");
    }

    /// The key log lines added during the run ([`TlsLayer::add_secrets`]) that were malformed
    /// and skipped: how many, and what was wrong with the first.
    pub fn malformed_during_run(&self) -> (u64, Option<&'static str>) {
        let (malformed, warnings) = self.before;
        (
            self.keys.stats().malformed - malformed,
            self.keys.warnings().get(warnings).map(|w| w.problem),
        )
    }

    /// In-order bytes of one direction: cleartext goes to the session as it is, TLS through
    /// decryption. The session is made with the first bytes it gets.
    #[allow(clippy::too_many_arguments)]
    pub fn data<S: Sink + ?Sized>(
        &self,
        slot: &mut TlsSlot,
        session: &mut App,
        cfg: SessionConfig,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        bytes: &[u8],
        sink: &mut S,
    ) {
        if let SlotState::New = slot.0 {
            slot.0 = match looks_like_tls(bytes) {
                None => SlotState::Plain,
                Some(true) => SlotState::Tls(Box::new(TlsConn {
                    follow: self.follow,
                    ..TlsConn::default()
                })),
                Some(false) => SlotState::Tls(Box::new(TlsConn::opaque("handshake not seen", 0))),
            };
        }
        match &mut slot.0 {
            SlotState::New | SlotState::Plain => {
                session.data(cfg, conn, ts, dir, bytes, false, sink);
            }
            SlotState::Tls(tls) => {
                let mut out = |o: Out<'_>, info: &TlsInfo| {
                    emit(session, cfg, conn, ts, dir, o, info, sink);
                };
                if tls.is_opaque() {
                    tls.report(&mut out);
                    return;
                }
                if tls.is_awaiting() {
                    self.resume(tls, session, cfg, conn, ts, sink, false);
                    if tls.is_awaiting() {
                        let held = Held::Data(bytes.to_vec());
                        self.hold(tls, session, cfg, conn, ts, dir, held, sink);
                        return;
                    }
                    // Resumed: the new bytes follow the held ones.
                    let mut out = |o: Out<'_>, info: &TlsInfo| {
                        emit(session, cfg, conn, ts, dir, o, info, sink);
                    };
                    tls.feed(dir, bytes, &self.keys, &mut out);
                    return;
                }
                tls.feed(dir, bytes, &self.keys, &mut out);
                if let Some(a) = tls.awaiting.as_mut() {
                    // The ServerHello in these bytes has no secrets yet.
                    a.ts = Some(ts);
                    self.waiting.borrow_mut().insert(conn.key);
                }
            }
        }
    }

    /// A connection named by [`TlsLayer::waiting`], after new secrets or on a tick at capture
    /// time `now`: decrypted once all its secrets have come; after [`MAX_AWAIT`], it goes on
    /// with those there are (undecrypted without any); else it waits on.
    #[allow(clippy::too_many_arguments)]
    pub fn revisit<S: Sink + ?Sized>(
        &self,
        slot: &mut TlsSlot,
        session: &mut App,
        cfg: SessionConfig,
        conn: &ConnMeta,
        now: Instant,
        sink: &mut S,
    ) {
        let SlotState::Tls(tls) = &mut slot.0 else {
            self.waiting.borrow_mut().remove(&conn.key);
            return;
        };
        if !tls.is_awaiting() {
            self.waiting.borrow_mut().remove(&conn.key);
            return;
        }
        self.resume(tls, session, cfg, conn, now, sink, false);
        let since = tls.awaiting.as_ref().and_then(|a| a.ts);
        if since.is_some_and(|t| now.saturating_since(t) > MAX_AWAIT) {
            self.resume(tls, session, cfg, conn, now, sink, true);
        }
    }

    /// Goes on with a waiting connection once the key log has all its secrets (`force`: with
    /// whatever it has, as without the wait; none makes it undecrypted): its ServerHello
    /// first, then what came with it and what was held, in order and each with its time.
    #[allow(clippy::too_many_arguments)]
    fn resume<S: Sink + ?Sized>(
        &self,
        tls: &mut TlsConn,
        session: &mut App,
        cfg: SessionConfig,
        conn: &ConnMeta,
        now: Instant,
        sink: &mut S,
        force: bool,
    ) {
        let Some(a) = tls.awaiting.as_ref() else {
            return;
        };
        if !force && !tls.has_secrets(&a.sh, &self.keys) {
            return;
        }
        let a = tls.awaiting.take().expect("waiting");
        self.waiting.borrow_mut().remove(&conn.key);
        let sh_ts = a.ts.unwrap_or(now);
        {
            let dir = Direction::ServerToClient;
            let mut out = |o: Out<'_>, info: &TlsInfo| {
                emit(session, cfg, conn, sh_ts, dir, o, info, sink);
            };
            tls.server_hello(a.sh, &self.keys);
            if tls.opaque || !tls.tls13 {
                tls.report(&mut out);
            }
        }
        let rest = [
            (Direction::ServerToClient, sh_ts, Held::Data(Vec::new())),
            (Direction::ClientToServer, sh_ts, Held::Data(Vec::new())),
        ];
        for (dir, ts, held) in rest.into_iter().chain(a.held) {
            self.deliver(tls, session, cfg, conn, ts, dir, held, sink);
        }
    }

    /// One event of a connection that does not wait (or no longer does).
    #[allow(clippy::too_many_arguments)]
    fn deliver<S: Sink + ?Sized>(
        &self,
        tls: &mut TlsConn,
        session: &mut App,
        cfg: SessionConfig,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        held: Held,
        sink: &mut S,
    ) {
        let mut out = |o: Out<'_>, info: &TlsInfo| {
            emit(session, cfg, conn, ts, dir, o, info, sink);
        };
        match held {
            Held::Data(_) if tls.is_opaque() => tls.report(&mut out),
            Held::Data(bytes) => tls.feed(dir, &bytes, &self.keys, &mut out),
            Held::Gap(len) => {
                tls.gap(dir, len, &mut out);
                session.gap(cfg, conn, ts, dir, len, false, sink);
            }
            Held::Eof => session.eof(conn, ts, dir, sink),
            Held::Note(note) => session.tcp_note(conn, ts, dir, note, sink),
        }
    }

    /// Holds an event of a waiting connection. Past [`MAX_AWAIT_BYTES`] the wait ends with
    /// the secrets there are (see [`Self::resume`]) and the event goes on.
    #[allow(clippy::too_many_arguments)]
    fn hold<S: Sink + ?Sized>(
        &self,
        tls: &mut TlsConn,
        session: &mut App,
        cfg: SessionConfig,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        held: Held,
        sink: &mut S,
    ) {
        let a = tls.awaiting.as_mut().expect("waiting");
        let cost = HELD_EVENT_COST
            + if let Held::Data(b) = &held {
                b.len()
            } else {
                0
            };
        if a.bytes + cost <= MAX_AWAIT_BYTES {
            a.bytes += cost;
            a.held.push((dir, ts, held));
            return;
        }
        self.resume(tls, session, cfg, conn, ts, sink, true);
        self.deliver(tls, session, cfg, conn, ts, dir, held, sink);
    }

    /// Whether a connection's events wait for its TLS secrets (see
    /// [`TlsLayer::keys_may_follow`]): hand them to [`TlsLayer::eof`] and
    /// [`TlsLayer::tcp_note`], which keep them in order with its data.
    fn awaiting(slot: &mut TlsSlot) -> Option<&mut TlsConn> {
        match &mut slot.0 {
            SlotState::Tls(tls) if tls.is_awaiting() => Some(tls),
            _ => None,
        }
    }

    /// The end of one direction, for the session (kept in order with the data of a
    /// connection waiting for its secrets).
    #[allow(clippy::too_many_arguments)]
    pub fn eof<S: Sink + ?Sized>(
        &self,
        slot: &mut TlsSlot,
        session: &mut App,
        cfg: SessionConfig,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        sink: &mut S,
    ) {
        match Self::awaiting(slot) {
            Some(tls) => self.hold(tls, session, cfg, conn, ts, dir, Held::Eof, sink),
            None => session.eof(conn, ts, dir, sink),
        }
    }

    /// A TCP limit or anomaly, for the session (kept in order with the data of a connection
    /// waiting for its secrets).
    #[allow(clippy::too_many_arguments)]
    pub fn tcp_note<S: Sink + ?Sized>(
        &self,
        slot: &mut TlsSlot,
        session: &mut App,
        cfg: SessionConfig,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        note: TcpNote,
        sink: &mut S,
    ) {
        match Self::awaiting(slot) {
            Some(tls) => self.hold(tls, session, cfg, conn, ts, dir, Held::Note(note), sink),
            None => session.tcp_note(conn, ts, dir, note, sink),
        }
    }

    /// Lost bytes of one direction.
    #[allow(clippy::too_many_arguments)]
    pub fn gap<S: Sink + ?Sized>(
        &self,
        slot: &mut TlsSlot,
        session: &mut App,
        cfg: SessionConfig,
        conn: &ConnMeta,
        ts: Instant,
        dir: Direction,
        len: u64,
        sink: &mut S,
    ) {
        if let SlotState::Tls(tls) = &mut slot.0 {
            if tls.is_awaiting() {
                self.hold(tls, session, cfg, conn, ts, dir, Held::Gap(len), sink);
            } else {
                self.deliver(tls, session, cfg, conn, ts, dir, Held::Gap(len), sink);
            }
            return;
        }
        session.gap(cfg, conn, ts, dir, len, true, sink);
    }

    /// The connection ended: a connection waiting for its secrets is decrypted if they have
    /// come (else given up), and a TLS connection not reported yet (its ServerHello never
    /// came) is reported as undecrypted.
    pub fn closed<S: Sink + ?Sized>(
        &self,
        slot: &mut TlsSlot,
        session: &mut App,
        cfg: SessionConfig,
        conn: &ConnMeta,
        ts: Instant,
        sink: &mut S,
    ) {
        if let SlotState::Tls(tls) = &mut slot.0 {
            // The wait ends with the secrets there are.
            self.resume(tls, session, cfg, conn, ts, sink, true);
            if !tls.reported {
                tls.make_opaque("the handshake did not complete");
                let mut session = App::None;
                let cfg = SessionConfig::default();
                let dir = Direction::ServerToClient;
                let mut out = |o: Out<'_>, info: &TlsInfo| {
                    emit(&mut session, cfg, conn, ts, dir, o, info, sink);
                };
                tls.report(&mut out);
            }
        }
    }

    /// The TLS parameters of a connection, if it is a TLS one.
    pub fn info(slot: &TlsSlot) -> Option<&TlsInfo> {
        match &slot.0 {
            SlotState::Tls(t) => Some(t.info()),
            _ => None,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn emit<S: Sink + ?Sized>(
    session: &mut App,
    cfg: SessionConfig,
    conn: &ConnMeta,
    ts: Instant,
    dir: Direction,
    o: Out<'_>,
    info: &TlsInfo,
    sink: &mut S,
) {
    match o {
        // HTTP/2 when ALPN says so (counted as TlsStats::h2 too).
        Out::Data(plain) => {
            let h2 = info.alpn.as_deref() == Some("h2");
            session.data(cfg, conn, ts, dir, plain, h2, &mut WithTls { info, sink });
        }
        Out::Anomaly(name, detail) => sink.event(&Event {
            ts,
            conn,
            dir,
            kind: EventKind::Anomaly {
                name,
                zeek_weird: None,
                detail: Cow::Owned(detail),
            },
        }),
        Out::Report => sink.event(&Event {
            ts,
            conn,
            dir: Direction::ServerToClient,
            kind: EventKind::Tls(info),
        }),
    }
}

#[cfg(test)]
mod tests;
