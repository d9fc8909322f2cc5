//! wss:// decryption end to end: real TLS 1.2 and 1.3 peers (rustls, in memory) carry a
//! WebSocket conversation; their bytes become a capture, their secrets a key log; the analyzer
//! must find every message with the SHA-256 of what was sent, whatever the suite, and report
//! connections without keys as undecrypted, never as sessions.

use core::fmt::Write as _;
use std::io::{Cursor, Read, Write};
use std::sync::{Arc, Mutex};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use sha2::{Digest, Sha256};
use wscope_inspect::analyzer::{Analyzer, AnalyzerConfig, Stats};
use wscope_inspect::capture::{Capture, CaptureError, CaptureStats};
use wscope_inspect::event::{OwnedEvent, OwnedKind};
use wscope_inspect::source::{Next, PacketSource, Tick};
use wscope_inspect::tls::keylog::KeyLog;
use wscope_inspect::wscope_proto::time::{Duration, Instant};
use wscope_inspect::{Event, EventKind};
use wscope_test_support::capture::{Framing, PcapNgWriter};
use wscope_test_support::wire::{frame, upgrade_request, upgrade_response};

use crate::support::{Conv, Trace};

/// Key log lines as rustls reports them.
#[derive(Debug, Default)]
struct Keys(Mutex<String>);

impl rustls::KeyLog for Keys {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let mut s = self.0.lock().unwrap();
        let _ = writeln!(s, "{label} {} {}", hex(client_random), hex(secret));
    }
}

impl Keys {
    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
    fn keylog(&self) -> KeyLog {
        let mut k = KeyLog::new();
        k.add_reader(self.text().as_bytes(), "test").unwrap();
        assert_eq!(k.stats().malformed, 0);
        k
    }
}

/// A CA and a leaf for "example.test": (ca, leaf chain, leaf key).
fn certificates() -> (
    CertificateDer<'static>,
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["example.test".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    (
        ca.der().clone(),
        vec![leaf.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    )
}

#[derive(Clone, Copy, Debug)]
struct Setup {
    tls13: bool,
    /// A rustls cipher suite name (`TLS13_AES_128_GCM_SHA256`, …).
    suite: &'static str,
    /// The server only takes P-256 key shares: a HelloRetryRequest (TLS 1.3).
    hrr: bool,
    alpn: &'static [u8],
}

fn configs(setup: Setup, keys: &Arc<Keys>) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    // ring has no post-quantum key exchange (hence the deprecation); X25519/P-256 suffice.
    #[allow(deprecated)]
    let base = rustls::crypto::ring::default_provider();
    let suites: Vec<_> = base
        .cipher_suites
        .iter()
        .copied()
        .filter(|s| format!("{:?}", s.suite()) == setup.suite)
        .collect();
    assert_eq!(suites.len(), 1, "{}", setup.suite);
    let provider = CryptoProvider {
        cipher_suites: suites,
        ..base.clone()
    };
    let mut server_provider = provider.clone();
    if setup.hrr {
        server_provider.kx_groups = vec![rustls::crypto::ring::kx_group::SECP256R1];
    }
    let versions: &[&rustls::SupportedProtocolVersion] = if setup.tls13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12]
    };
    let (ca, chain, key) = certificates();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let mut client = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.key_log = keys.clone();
    client.alpn_protocols = vec![setup.alpn.to_vec()];
    let mut server = ServerConfig::builder_with_provider(Arc::new(server_provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    server.alpn_protocols = vec![setup.alpn.to_vec()];
    (Arc::new(client), Arc::new(server))
}

/// One TLS connection between the two configs, written into `trace` as TCP segments.
struct Wire<'t> {
    trace: &'t mut Trace,
    conv: Conv,
    client: ClientConnection,
    server: ServerConnection,
}

impl<'t> Wire<'t> {
    fn open(
        trace: &'t mut Trace,
        conv: Conv,
        client: &Arc<ClientConfig>,
        server: &Arc<ServerConfig>,
    ) -> Self {
        let name = rustls::pki_types::ServerName::try_from("example.test").unwrap();
        let mut w = Self {
            trace,
            conv,
            client: ClientConnection::new(client.clone(), name).unwrap(),
            server: ServerConnection::new(server.clone()).unwrap(),
        };
        w.client.set_buffer_limit(None);
        w.server.set_buffer_limit(None);
        w.conv.handshake(w.trace);
        while w.client.is_handshaking() || w.server.is_handshaking() {
            w.flush();
        }
        w.flush();
        w
    }

    /// Moves every pending TLS byte both ways (and into the capture).
    fn flush(&mut self) {
        loop {
            let mut moved = false;
            let mut buf = Vec::new();
            while self.client.wants_write() {
                self.client.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                moved = true;
                for seg in buf.chunks(1400) {
                    let spec = self.conv.client(seg);
                    self.trace.tcp(spec);
                }
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    self.server.read_tls(&mut rd).unwrap();
                    self.server.process_new_packets().unwrap();
                    let _ = self.server.reader().read_to_end(&mut Vec::new());
                }
            }
            let mut buf = Vec::new();
            while self.server.wants_write() {
                self.server.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                moved = true;
                for seg in buf.chunks(1400) {
                    let spec = self.conv.server(seg);
                    self.trace.tcp(spec);
                }
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    self.client.read_tls(&mut rd).unwrap();
                    self.client.process_new_packets().unwrap();
                    let _ = self.client.reader().read_to_end(&mut Vec::new());
                }
            }
            // Drain the plaintext so the buffers never fill.
            let mut sink = Vec::new();
            let _ = self.server.reader().read_to_end(&mut sink);
            let _ = self.client.reader().read_to_end(&mut sink);
            if !moved {
                break;
            }
        }
    }

    fn client_send(&mut self, bytes: &[u8]) {
        self.client.writer().write_all(bytes).unwrap();
        self.flush();
    }

    fn server_send(&mut self, bytes: &[u8]) {
        self.server.writer().write_all(bytes).unwrap();
        self.flush();
    }

    fn close(mut self) {
        self.client.send_close_notify();
        self.server.send_close_notify();
        self.flush();
        self.conv.close(self.trace);
    }
}

fn sha(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8 ^ seed).collect()
}

/// A WebSocket conversation over `w`; returns the SHA-256 of each message (client's, server's)
/// in order.
fn conversation(w: &mut Wire<'_>, key_update: bool) -> (Vec<[u8; 32]>, Vec<[u8; 32]>) {
    let mask = Some([1, 2, 3, 4]);
    let (mut c, mut s) = (Vec::new(), Vec::new());
    w.client_send(&upgrade_request("/chat", "example.test", None));
    w.server_send(&upgrade_response(None));
    let hello = b"hello over wss";
    w.client_send(&frame(true, false, 1, mask, hello));
    c.push(sha(hello));
    // 1 MiB across many records, in one write.
    let big = payload(1 << 20, 7);
    w.server_send(&frame(true, false, 2, None, &big));
    s.push(sha(&big));
    // A fragmented message with a ping between its fragments.
    let mut fragments = frame(false, false, 1, mask, b"frag");
    fragments.extend(frame(true, false, 9, mask, b"ping"));
    fragments.extend(frame(true, false, 0, mask, b"mented"));
    w.client_send(&fragments);
    c.push(sha(b"ping"));
    c.push(sha(b"fragmented"));
    if key_update {
        w.client.refresh_traffic_keys().unwrap();
        w.server.refresh_traffic_keys().unwrap();
        w.flush();
    }
    let after = payload(70_000, 3);
    w.client_send(&frame(true, false, 2, mask, &after));
    c.push(sha(&after));
    w.server_send(&frame(true, false, 1, None, b"bye"));
    s.push(sha(b"bye"));
    w.client_send(&frame(true, false, 8, mask, &[3, 232]));
    w.server_send(&frame(true, false, 8, None, &[3, 232]));
    c.push(sha(&[3, 232]));
    s.push(sha(&[3, 232]));
    (c, s)
}

fn analyze(capture: Vec<u8>, keys: KeyLog) -> (Vec<OwnedEvent>, Stats) {
    let mut cfg = AnalyzerConfig::default();
    cfg.session.digest = true;
    let mut cap = Capture::from_reader(Cursor::new(capture), "mem");
    let mut events = Vec::new();
    let stats = Analyzer::new(cfg)
        .with_keylog(keys)
        .run(&mut cap, &mut |ev: &Event<'_>| {
            if let EventKind::Established(_, tls) = &ev.kind {
                // The established event carries the TLS parameters of a wss:// session.
                let tls = tls.expect("a wss session's established event has its TLS info");
                assert!(tls.decrypted);
                assert_eq!(tls.sni.as_deref(), Some("example.test"));
            }
            events.push(OwnedEvent::from(ev));
        })
        .unwrap();
    (events, stats)
}

fn digests(events: &[OwnedEvent], orig: bool) -> Vec<[u8; 32]> {
    events
        .iter()
        .filter(|e| e.is_orig() == orig)
        .filter_map(|e| match &e.kind {
            OwnedKind::Message { sha256, .. } => *sha256,
            _ => None,
        })
        .collect()
}

fn anomalies(events: &[OwnedEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            OwnedKind::Anomaly { name, detail, .. } => Some(format!("{name}: {detail}")),
            _ => None,
        })
        .collect()
}

fn tls_reports(events: &[OwnedEvent]) -> Vec<wscope_inspect::tls::TlsInfo> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            OwnedKind::Tls(i) => Some((**i).clone()),
            _ => None,
        })
        .collect()
}

/// One conversation per setup: every message decoded with the right digest.
fn check(setup: Setup, key_update: bool) {
    let keys = Arc::new(Keys::default());
    let (cc, sc) = configs(setup, &keys);
    let mut trace = Trace::new(Framing::Ethernet);
    let mut w = Wire::open(
        &mut trace,
        Conv::new("10.0.0.1:40000", "10.0.0.2:443", 1000, 9000),
        &cc,
        &sc,
    );
    if setup.hrr {
        assert_eq!(
            w.client.handshake_kind(),
            Some(rustls::HandshakeKind::FullWithHelloRetryRequest)
        );
    }
    let (c, s) = conversation(&mut w, key_update);
    w.close();
    let (events, stats) = analyze(trace.finish(), keys.keylog());
    assert_eq!(anomalies(&events), Vec::<String>::new(), "{setup:?}");
    assert_eq!(stats.sessions, 1, "{setup:?}");
    assert_eq!(digests(&events, true), c, "{setup:?} client messages");
    assert_eq!(digests(&events, false), s, "{setup:?} server messages");
    let r = tls_reports(&events);
    assert_eq!(r.len(), 1);
    assert!(r[0].decrypted);
    assert_eq!(r[0].alpn.as_deref(), Some("http/1.1"));
    assert_eq!(r[0].version, if setup.tls13 { 0x0304 } else { 0x0303 });
    assert_eq!(r[0].cipher_name(), setup.suite.replace("TLS13_", "TLS_"));
    assert_eq!((stats.tls.decrypted, stats.tls.undecrypted), (1, 0));
}

const H11: &[u8] = b"http/1.1";

fn v13(suite: &'static str) -> Setup {
    Setup {
        tls13: true,
        suite,
        hrr: false,
        alpn: H11,
    }
}

fn v12(suite: &'static str) -> Setup {
    Setup {
        tls13: false,
        suite,
        hrr: false,
        alpn: H11,
    }
}

#[test]
fn tls13_aes_128_gcm() {
    check(v13("TLS13_AES_128_GCM_SHA256"), false);
}

#[test]
fn tls13_aes_256_gcm_with_key_update() {
    check(v13("TLS13_AES_256_GCM_SHA384"), true);
}

#[test]
fn tls13_chacha20_poly1305() {
    check(v13("TLS13_CHACHA20_POLY1305_SHA256"), false);
}

#[test]
fn tls13_hello_retry_request() {
    check(
        Setup {
            hrr: true,
            ..v13("TLS13_AES_128_GCM_SHA256")
        },
        false,
    );
}

#[test]
fn tls12_ecdhe_aes_128_gcm() {
    check(v12("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"), false);
}

#[test]
fn tls12_ecdhe_aes_256_gcm() {
    check(v12("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"), false);
}

#[test]
fn tls12_ecdhe_chacha20_poly1305() {
    check(v12("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"), false);
}

/// Two connections with one client config: the second resumes (TLS 1.3 PSK, TLS 1.2
/// ticket); both decrypt.
#[test]
fn resumed_sessions_decrypt() {
    for setup in [
        v13("TLS13_AES_128_GCM_SHA256"),
        v12("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    ] {
        let keys = Arc::new(Keys::default());
        let (cc, sc) = configs(setup, &keys);
        let mut trace = Trace::new(Framing::Ethernet);
        let mut want = Vec::new();
        for port in [40000, 40001] {
            let conv = Conv::new(&format!("10.0.0.1:{port}"), "10.0.0.2:443", 1000, 9000);
            let mut w = Wire::open(&mut trace, conv, &cc, &sc);
            // A resumed connection; its handshake has no Certificate.
            if port == 40001 {
                assert_eq!(
                    w.client.handshake_kind(),
                    Some(rustls::HandshakeKind::Resumed)
                );
            }
            let (c, _) = conversation(&mut w, false);
            want.extend(c);
            w.close();
        }
        let (events, stats) = analyze(trace.finish(), keys.keylog());
        assert_eq!(anomalies(&events), Vec::<String>::new(), "{setup:?}");
        assert_eq!(stats.sessions, 2);
        assert_eq!(digests(&events, true), want, "{setup:?}");
    }
}

/// Without keys: one `tls_undecrypted` report with the SNI, no session, no anomaly. With the
/// wrong keys: `tls_decrypt_failed` with the record number, no session either.
#[test]
fn no_keys_and_wrong_keys() {
    let setup = v13("TLS13_AES_128_GCM_SHA256");
    let keys = Arc::new(Keys::default());
    let (cc, sc) = configs(setup, &keys);
    let mut trace = Trace::new(Framing::Ethernet);
    let mut w = Wire::open(
        &mut trace,
        Conv::new("10.0.0.1:40000", "10.0.0.2:443", 1000, 9000),
        &cc,
        &sc,
    );
    conversation(&mut w, false);
    w.close();
    let capture = trace.finish();

    let (events, stats) = analyze(capture.clone(), KeyLog::new());
    assert_eq!(stats.sessions, 0);
    assert_eq!(stats.message_count(), 0);
    assert_eq!(anomalies(&events), Vec::<String>::new());
    let r = tls_reports(&events);
    assert_eq!(r.len(), 1);
    assert!(!r[0].decrypted);
    assert_eq!(r[0].sni.as_deref(), Some("example.test"));
    assert_eq!(r[0].reason, Some("no key for this client random"));
    assert_eq!(stats.tls.undecrypted, 1);
    assert_eq!(stats.tls.undecrypted_sni.get("example.test"), Some(&1));

    // Same client random, every secret flipped.
    let wrong: String = keys
        .text()
        .lines()
        .map(|l| {
            let mut p: Vec<String> = l.split(' ').map(str::to_owned).collect();
            p[2] = p[2].chars().rev().collect();
            p.join(" ") + "\n"
        })
        .collect();
    let mut k = KeyLog::new();
    k.add_reader(wrong.as_bytes(), "wrong").unwrap();
    let (events, stats) = analyze(capture, k);
    assert_eq!(stats.sessions, 0);
    let a = anomalies(&events);
    assert_eq!(a.len(), 2, "{a:?}");
    assert!(
        a.iter()
            .all(|a| a.starts_with("tls_decrypt_failed: record ")),
        "{a:?}"
    );
}

/// A source whose key log comes late, as in a live capture that follows a browser's key log:
/// each text of `texts` is handed out as secrets once its number of packets has been read.
/// With `tick`, a live source's tick at that capture time comes after the last packet.
struct LateKeys {
    cap: Capture,
    texts: Vec<(u64, Vec<u8>)>,
    read: u64,
    tick: Option<Instant>,
}

impl PacketSource for LateKeys {
    fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        self.read += 1;
        match PacketSource::next(&mut self.cap)? {
            Next::End => match self.tick.take() {
                Some(t) => Ok(Next::Tick(Tick {
                    now: t,
                    settled: t,
                    interfaces: &[],
                })),
                None => Ok(Next::End),
            },
            next => Ok(next),
        }
    }

    fn stats(&self) -> CaptureStats {
        PacketSource::stats(&self.cap)
    }

    fn take_secrets(&mut self) -> Option<Vec<u8>> {
        let due = self
            .texts
            .first()
            .is_some_and(|(after, _)| self.read >= *after);
        due.then(|| self.texts.remove(0).1)
    }
}

/// The events of `capture` whose key log `text` comes after `after` packets, analysed as a
/// live capture with a followed key log is.
fn analyze_late(capture: Vec<u8>, text: &str, after: u64) -> (Vec<OwnedEvent>, Stats) {
    analyze_late_texts(capture, vec![(after, text.as_bytes().to_vec())])
}

/// [`analyze_late`] with the key log in several pieces, each after its number of packets.
fn analyze_late_texts(capture: Vec<u8>, texts: Vec<(u64, Vec<u8>)>) -> (Vec<OwnedEvent>, Stats) {
    let mut cfg = AnalyzerConfig::default();
    cfg.session.digest = true;
    let mut src = LateKeys {
        cap: Capture::from_reader(Cursor::new(capture), "mem"),
        texts,
        read: 0,
        tick: None,
    };
    let mut events = Vec::new();
    let stats = Analyzer::new(cfg)
        .keys_may_follow(true)
        .run_source(&mut src, &mut |ev: &Event<'_>| {
            events.push(OwnedEvent::from(ev))
        })
        .unwrap();
    (events, stats)
}

/// Secrets written after the ServerHello that needs them (a browser writes them as it
/// derives them): the connection waits, holding what both sides send, and is decrypted from
/// its start when they come, with every event and time it has when the keys are there from
/// the start. TLS 1.3 and 1.2, the secrets arriving at every packet of the handshake, the
/// upgrade and the first messages.
#[test]
fn secrets_written_after_the_server_hello_decrypt_the_connection_from_its_start() {
    for setup in [
        v13("TLS13_AES_128_GCM_SHA256"),
        v12("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    ] {
        let mut sent = (Vec::new(), Vec::new());
        let (capture, keys) = recorded(setup, |w| sent = conversation(w, false), true);
        let (c, s) = sent;
        let (want, want_stats) = analyze(capture.clone(), keys.keylog());
        assert_eq!(digests(&want, true), c);
        assert_eq!(digests(&want, false), s);
        for after in 1..=40 {
            let (got, stats) = analyze_late(capture.clone(), &keys.text(), after);
            assert_eq!(got, want, "{setup:?}: secrets after {after} packets");
            assert_eq!(
                format!("{stats:?}"),
                format!("{want_stats:?}"),
                "{setup:?}: secrets after {after} packets"
            );
        }
    }
}

/// A short wss:// conversation (TLS 1.3, an upgrade and one message each way; with `close`,
/// close_notify and FIN both ways, else the capture ends first) as a classic pcap, and its
/// key log.
fn short_conversation(close: bool) -> (Vec<u8>, Arc<Keys>) {
    let setup = v13("TLS13_CHACHA20_POLY1305_SHA256");
    let talk = |w: &mut Wire<'_>| {
        let mask = Some([9, 8, 7, 6]);
        w.client_send(&upgrade_request("/chat", "example.test", None));
        w.server_send(&upgrade_response(None));
        w.client_send(&frame(true, false, 1, mask, b"hello, late keys"));
        w.server_send(&frame(true, false, 1, None, b"welcome"));
    };
    recorded(setup, talk, close)
}

/// One TLS connection of `setup` between 10.0.0.1:40000 and 10.0.0.2:443 as a classic pcap,
/// with what `talk` sends over it (with `close`, then close_notify and FIN both ways), and its
/// key log.
fn recorded(setup: Setup, talk: impl FnOnce(&mut Wire<'_>), close: bool) -> (Vec<u8>, Arc<Keys>) {
    let keys = Arc::new(Keys::default());
    let (cc, sc) = configs(setup, &keys);
    let mut trace = Trace::new(Framing::Ethernet);
    let mut w = Wire::open(
        &mut trace,
        Conv::new("10.0.0.1:40000", "10.0.0.2:443", 1000, 9000),
        &cc,
        &sc,
    );
    talk(&mut w);
    if close {
        w.close();
    }
    (trace.finish(), keys)
}

/// The conversation of [`short_conversation`] as pcapng with its key log in a Decryption
/// Secrets Block after its first `before` packets.
fn secrets_block_after(pcap: &[u8], keys: &Keys, before: usize) -> Vec<u8> {
    // Split the classic pcap's records after `before` of them (two pcaps, one header each).
    let mut at = 24;
    for _ in 0..before {
        let caplen = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
    }
    let (head, tail) = ([&pcap[..at]].concat(), [&pcap[..24], &pcap[at..]].concat());
    let mut ng = PcapNgWriter::new(Vec::new()).unwrap();
    let iface = ng.add_interface(Framing::Ethernet.link_type(), 6).unwrap();
    let mut file = ng.into_inner();
    file.extend(pcap_as_pcapng_blocks(&head, iface));
    file.extend(dsb_block(&keys.text().into_bytes()));
    file.extend(pcap_as_pcapng_blocks(&tail, iface));
    file
}

/// A Decryption Secrets Block after the ServerHello that needs it (a capture tool writing the
/// secrets it learns as it goes): with [`Analyzer::keys_may_follow`] the connection waits
/// for it and is decrypted from its start, with the events of keys given first; without, it
/// is undecrypted, as the key was not there when the ServerHello came.
#[test]
fn a_secrets_block_after_the_server_hello() {
    let (pcap, keys) = short_conversation(false);
    let (want, _) = analyze(pcap.clone(), keys.keylog());
    let mut cfg = AnalyzerConfig::default();
    cfg.session.digest = true;
    let run = |file: &[u8], follow: bool| {
        let mut cap = Capture::from_reader(Cursor::new(file.to_vec()), "mem");
        let mut events = Vec::new();
        // Waiting connections are revisited in the one thread's order: three workers asked
        // for, one used.
        let analyzer = Analyzer::new(cfg).workers(3).keys_may_follow(follow);
        assert_eq!(analyzer.worker_count(), if follow { 1 } else { 3 });
        let stats = analyzer
            .run(&mut cap, &mut |ev: &Event<'_>| {
                events.push(OwnedEvent::from(ev))
            })
            .unwrap();
        (events, stats)
    };
    // After the ServerHello (the handshake's sixth packet or later) and before the last
    // packet (a block after a file's last packet is dropped with its reader, as documented).
    for before in 6..11 {
        let file = secrets_block_after(&pcap, &keys, before);
        let (got, stats) = run(&file, true);
        assert_eq!(got, want, "secrets after {before} packets");
        assert_eq!(stats.sessions, 1);
        let (got, stats) = run(&file, false);
        assert_eq!(
            stats.sessions, 0,
            "secrets after {before} packets, not waited for"
        );
        assert!(!tls_reports(&got)[0].decrypted);
    }
}

/// Writes the `capture` fuzz seed of [`a_secrets_block_after_the_server_hello`] (control
/// byte: digests, secrets followed) into fuzz/seeds/capture/; replayed by
/// `capture_seeds_replay_and_reach_websocket`.
#[test]
#[ignore = "writes fuzz/seeds/capture/"]
fn write_capture_seed_secrets_block_after_the_server_hello() {
    let (pcap, keys) = short_conversation(false);
    let mut seed = vec![0x10 | 0x08];
    seed.extend(secrets_block_after(&pcap, &keys, 8));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/capture");
    std::fs::write(dir.join("tls13-secrets-block-after-server-hello-18"), seed).unwrap();
}

/// Secrets that come after the last packet of a short conversation: the connection is
/// decrypted when they come, though no packet of it follows; the ends of its directions (FIN)
/// that came while it waited are kept in order after its data. Secrets that never come: the
/// connection is undecrypted, as without a key log, and what it held is gone.
#[test]
fn secrets_after_the_last_packet_or_never() {
    for close in [false, true] {
        secrets_after_the_last_packet(close);
    }
}

/// See above: the secrets after the last packet (with `close`, after the client's FIN).
fn secrets_after_the_last_packet(close: bool) {
    let (capture, keys) = short_conversation(close);
    let packets = {
        let mut cap = Capture::from_reader(Cursor::new(capture.clone()), "mem");
        let mut n = 0u64;
        while cap.next_packet().unwrap().is_some() {
            n += 1;
        }
        n
    };
    let (want, want_stats) = analyze(capture.clone(), keys.keylog());
    assert_eq!(want_stats.sessions, 1);
    assert_eq!(
        digests(&want, true),
        [sha(b"hello, late keys")],
        "the client's message"
    );
    // With a close: after the client's FIN (held, then replayed after the data), before the
    // server's, which ends the connection (a connection that ends while it waits is given up).
    let after = if close { packets - 2 } else { packets };
    let (got, stats) = analyze_late(capture.clone(), &keys.text(), after);
    assert_eq!(got, want);
    assert_eq!(format!("{stats:?}"), format!("{want_stats:?}"));

    let (none, stats) = analyze_late(capture.clone(), &keys.text(), u64::MAX);
    let (no_keys, no_keys_stats) = analyze(capture, KeyLog::new());
    assert_eq!(stats.sessions, 0);
    assert_eq!(anomalies(&none), Vec::<String>::new());
    assert_eq!(tls_reports(&none), tls_reports(&no_keys));
    assert_eq!(stats.tls, no_keys_stats.tls);
    assert_eq!(
        tls_reports(&none)[0].reason,
        Some("no key for this client random")
    );
}

/// TLS 1.3 secrets that come line by line: the handshake secrets and the server's traffic
/// secret first, the client's traffic secret later. The connection waits until both traffic
/// secrets are there (with only the server's, the client's records would not decrypt).
#[test]
fn tls13_waits_for_both_traffic_secrets() {
    let (pcap, keys) = short_conversation(false);
    let (want, _) = analyze(pcap.clone(), keys.keylog());
    let text = keys.text();
    let (client_traffic, others): (Vec<&str>, Vec<&str>) = text
        .lines()
        .partition(|l| l.starts_with("CLIENT_TRAFFIC_SECRET_0 "));
    assert_eq!(client_traffic.len(), 1);
    let line = |l: &[&str]| {
        l.iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .into_bytes()
    };
    let (got, stats) =
        analyze_late_texts(pcap, vec![(6, line(&others)), (9, line(&client_traffic))]);
    assert_eq!(got, want);
    assert_eq!(stats.sessions, 1);
}

/// A live source ticks while a connection waits for secrets that do not come: the tick
/// that finds it waiting longer than `MAX_AWAIT` ends the wait (undecrypted, reported as it
/// is without a key log: at its ServerHello's time), before the capture ends; a tick before
/// that leaves it waiting until the end.
#[test]
fn a_tick_ends_a_wait_for_secrets_that_do_not_come() {
    let (pcap, keys) = short_conversation(false);
    let (no_keys, _) = analyze(pcap.clone(), KeyLog::new());
    let no_keys: Vec<_> = no_keys
        .iter()
        .filter(|e| matches!(e.kind, OwnedKind::Tls(_)))
        .map(|e| format!("tls decrypted=false at {}", e.ts))
        .collect();
    let last = {
        let mut cap = Capture::from_reader(Cursor::new(pcap.clone()), "mem");
        let mut ts = Instant::ZERO;
        while let Some(p) = cap.next_packet().unwrap() {
            ts = p.ts;
        }
        ts
    };
    for (after, given_up_at_tick) in [(1, false), (4, false), (6, true)] {
        let tick = last + Duration::from_secs(after);
        let mut src = LateKeys {
            cap: Capture::from_reader(Cursor::new(pcap.clone()), "mem"),
            texts: vec![(u64::MAX, keys.text().into_bytes())],
            read: 0,
            tick: Some(tick),
        };
        /// Events and ticks, in order.
        #[derive(Default)]
        struct Log(Vec<String>);
        impl wscope_inspect::Sink for Log {
            fn event(&mut self, ev: &Event<'_>) {
                if let EventKind::Tls(info) = &ev.kind {
                    self.0
                        .push(format!("tls decrypted={} at {}", info.decrypted, ev.ts));
                }
            }
            fn tick(&mut self, _tick: &Tick<'_>) {
                self.0.push("tick".to_owned());
            }
        }
        let mut log = Log::default();
        let stats = Analyzer::new(AnalyzerConfig::default())
            .keys_may_follow(true)
            .run_source(&mut src, &mut log)
            .unwrap();
        assert_eq!(stats.sessions, 0);
        let report = no_keys[0].clone();
        let want = if given_up_at_tick {
            [report, "tick".to_owned()]
        } else {
            ["tick".to_owned(), report]
        };
        assert_eq!(log.0, want, "a tick {after} s after the last packet");
    }
}

/// A corrupted record in the server's direction: that direction stops with
/// `tls_decrypt_failed` naming the record; the client's direction and another connection in
/// the same capture are decoded completely.
#[test]
fn corrupted_record_stops_only_its_direction() {
    let setup = v13("TLS13_CHACHA20_POLY1305_SHA256");
    let keys = Arc::new(Keys::default());
    let (cc, sc) = configs(setup, &keys);
    let mut trace = Trace::new(Framing::Ethernet);
    let mut w = Wire::open(
        &mut trace,
        Conv::new("10.0.0.1:40000", "10.0.0.2:443", 1000, 9000),
        &cc,
        &sc,
    );
    w.client_send(&upgrade_request("/", "example.test", None));
    w.server_send(&upgrade_response(None));
    // A record written by hand into the capture, not to the client: one flipped byte.
    w.server
        .writer()
        .write_all(&frame(true, false, 1, None, b"lost"))
        .unwrap();
    let mut rec = Vec::new();
    w.server.write_tls(&mut rec).unwrap();
    rec[10] ^= 0x40;
    let spec = w.conv.server(&rec);
    w.trace.tcp(spec);
    let mask = Some([9, 9, 9, 9]);
    w.client_send(&frame(true, false, 1, mask, b"still here"));
    w.client_send(&frame(true, false, 1, mask, b"and here"));
    w.conv.close(w.trace);
    // A second, clean connection after it.
    let mut w2 = Wire::open(
        &mut trace,
        Conv::new("10.0.0.3:40000", "10.0.0.2:443", 5, 7),
        &cc,
        &sc,
    );
    let (c2, s2) = conversation(&mut w2, false);
    w2.close();
    let (events, stats) = analyze(trace.finish(), keys.keylog());
    let a = anomalies(&events);
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(a[0].starts_with("tls_decrypt_failed: record "), "{a:?}");
    assert_eq!(stats.sessions, 2);
    let first: Vec<_> = events
        .iter()
        .filter(|e| e.conn.id.0 == 1)
        .cloned()
        .collect();
    assert_eq!(
        digests(&first, true),
        vec![sha(b"still here"), sha(b"and here")]
    );
    assert_eq!(digests(&first, false), Vec::<[u8; 32]>::new());
    let second: Vec<_> = events
        .iter()
        .filter(|e| e.conn.id.0 == 2)
        .cloned()
        .collect();
    assert_eq!(digests(&second, true), c2);
    assert_eq!(digests(&second, false), s2);
}

/// Keys from a pcapng Decryption Secrets Block, with no key log given.
#[test]
fn keys_from_a_decryption_secrets_block() {
    let setup = v12("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384");
    let keys = Arc::new(Keys::default());
    let (cc, sc) = configs(setup, &keys);
    let mut trace = Trace::new(Framing::Ethernet);
    let mut w = Wire::open(
        &mut trace,
        Conv::new("10.0.0.1:40000", "10.0.0.2:443", 1000, 9000),
        &cc,
        &sc,
    );
    let (c, s) = conversation(&mut w, false);
    w.close();
    let pcap = trace.finish();
    // The same packets as pcapng, a DSB after the interface block.
    let mut ng = PcapNgWriter::new(Vec::new()).unwrap();
    let iface = ng.add_interface(Framing::Ethernet.link_type(), 6).unwrap();
    let mut head = ng.into_inner();
    head.extend(dsb_block(&keys.text().into_bytes()));
    // Drop the second writer's section header and interface: reuse the first ones.
    head.extend(pcap_as_pcapng_blocks(&pcap, iface));
    let (events, stats) = analyze(head, KeyLog::new());
    assert_eq!(anomalies(&events), Vec::<String>::new());
    assert_eq!(stats.sessions, 1);
    assert_eq!(digests(&events, true), c);
    assert_eq!(digests(&events, false), s);
}

/// Truncated and corrupted TLS never panics: every prefix and some byte flips of a capture.
#[test]
fn cut_and_flipped_tls_never_panics() {
    let setup = v13("TLS13_AES_128_GCM_SHA256");
    let keys = Arc::new(Keys::default());
    let (cc, sc) = configs(setup, &keys);
    let mut trace = Trace::new(Framing::Ethernet);
    trace.step = 10;
    let mut w = Wire::open(
        &mut trace,
        Conv::new("10.0.0.1:40000", "10.0.0.2:443", 1000, 9000),
        &cc,
        &sc,
    );
    w.client_send(&upgrade_request("/", "example.test", None));
    w.server_send(&upgrade_response(None));
    w.close();
    let capture = trace.finish();
    let k = keys.keylog();
    let mut rng = wscope_test_support::Rng::new(19);
    for i in 0..200 {
        let mut c = capture.clone();
        let at = 24 + rng.below((c.len() - 24) as u64) as usize;
        c[at] ^= 1 << (i % 8);
        let mut cap = Capture::from_reader(Cursor::new(c), "flip");
        let _ = Analyzer::new(AnalyzerConfig::default())
            .with_keylog(k.clone())
            .run(&mut cap, &mut |_: &Event<'_>| {});
    }
}

/// One small conversation as a `tls` fuzz seed (layout in `fuzzing::fuzz_tls`): the key log,
/// the client's bytes, the server's bytes.
fn fuzz_seed(setup: Setup, key_update: bool) -> Vec<u8> {
    let keys = Arc::new(Keys::default());
    let (cc, sc) = configs(setup, &keys);
    let mut trace = Trace::new(Framing::Ethernet);
    let mut w = Wire::open(
        &mut trace,
        Conv::new("10.0.0.1:40000", "10.0.0.2:443", 1000, 9000),
        &cc,
        &sc,
    );
    let mut streams: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut record = |w: &mut Wire<'_>| {
        for (i, side) in [true, false].into_iter().enumerate() {
            let mut buf = Vec::new();
            if side {
                while w.client.wants_write() {
                    w.client.write_tls(&mut buf).unwrap();
                }
            } else {
                while w.server.wants_write() {
                    w.server.write_tls(&mut buf).unwrap();
                }
            }
            streams[i].extend_from_slice(&buf);
            if side {
                w.server.read_tls(&mut &buf[..]).unwrap();
                w.server.process_new_packets().unwrap();
            } else {
                w.client.read_tls(&mut &buf[..]).unwrap();
                w.client.process_new_packets().unwrap();
            }
        }
    };
    // The handshake went through `Wire::open`; its bytes are in the capture. Start over with
    // a fresh connection recorded byte for byte.
    let name = rustls::pki_types::ServerName::try_from("example.test").unwrap();
    w.client = ClientConnection::new(cc.clone(), name).unwrap();
    w.server = ServerConnection::new(sc.clone()).unwrap();
    while w.client.is_handshaking() || w.server.is_handshaking() {
        record(&mut w);
    }
    record(&mut w);
    w.client
        .writer()
        .write_all(&upgrade_request("/", "example.test", None))
        .unwrap();
    record(&mut w);
    w.server
        .writer()
        .write_all(&upgrade_response(None))
        .unwrap();
    record(&mut w);
    if key_update {
        w.client.refresh_traffic_keys().unwrap();
        record(&mut w);
    }
    w.client
        .writer()
        .write_all(&frame(true, false, 1, Some([1, 2, 3, 4]), b"seed"))
        .unwrap();
    w.server
        .writer()
        .write_all(&frame(true, false, 2, None, &[7; 300]))
        .unwrap();
    record(&mut w);
    let [c, s] = streams;
    let text = keys.text();
    let mut seed = vec![4u8 | 2];
    for part in [text.as_bytes(), &c[..]] {
        seed.extend((part.len() as u16).to_be_bytes());
        seed.extend_from_slice(part);
    }
    seed.extend_from_slice(&s);
    seed
}

/// Writes the `tls` fuzz seeds (`fuzz/seeds/tls/`): run with
/// `cargo test -p wscope-inspect --test all write_tls_fuzz_seeds -- --ignored`. Real
/// handshakes are random, so a new run gives new files; the committed ones are replayed by
/// `tls_fuzz_seeds_replay_and_decrypt`.
#[test]
#[ignore = "writes fuzz/seeds/tls/"]
fn write_tls_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/tls");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, setup, ku) in [
        ("tls13-aes128", v13("TLS13_AES_128_GCM_SHA256"), false),
        (
            "tls13-chacha-keyupdate",
            v13("TLS13_CHACHA20_POLY1305_SHA256"),
            true,
        ),
        (
            "tls13-hrr",
            Setup {
                hrr: true,
                ..v13("TLS13_AES_256_GCM_SHA384")
            },
            false,
        ),
        (
            "tls12-aes256",
            v12("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
            false,
        ),
        (
            "tls12-chacha",
            v12("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
            false,
        ),
    ] {
        std::fs::write(dir.join(name), fuzz_seed(setup, ku)).unwrap();
    }
}

/// The committed `tls` fuzz seeds decrypt through the fuzz body (so the fuzzer starts from
/// traffic that reaches the record layer's decryption), and no prefix of them panics.
#[test]
fn tls_fuzz_seeds_replay_and_decrypt() {
    use wscope_inspect::fuzzing::fuzz_tls;
    let files = wscope_test_support::seeds::seed_files("tls", 5);
    for f in files {
        let data = std::fs::read(&f).unwrap();
        let plain = fuzz_tls(&data);
        assert!(plain > 300, "{}: {plain} bytes decrypted", f.display());
        for end in (0..data.len()).step_by(97) {
            let _ = fuzz_tls(&data[..end]);
        }
        for ctl in 0..8u8 {
            let mut d = data.clone();
            d[0] = ctl;
            let _ = fuzz_tls(&d);
        }
        // The follow differential (bit 3): the key log given late, after chunk 0 to 15, at
        // chunk sizes 700 and 64 KiB, alternating or not.
        for late in 0..16u8 {
            for ctl in [0x0a, 0x0b, 0x0e, 0x0f] {
                let mut d = data.clone();
                d[0] = ctl | (late << 4);
                assert_eq!(fuzz_tls(&d), fuzz_tls(&data), "{}", f.display());
            }
        }
    }
}

/// ALPN h2: decrypted, reported and counted, and read as HTTP/2 (RFC 8441): its WebSocket
/// streams are sessions, their `established` events carry the TLS parameters, and nothing is
/// misread as HTTP/1.1 (no anomaly).
#[test]
fn alpn_h2_websocket_streams_are_analysed() {
    use crate::http2::{data, H2Script};
    use crate::support::C2S;
    let setup = Setup {
        alpn: b"h2",
        ..v13("TLS13_AES_128_GCM_SHA256")
    };
    let keys = Arc::new(Keys::default());
    let (cc, sc) = configs(setup, &keys);
    let mut trace = Trace::new(Framing::Ethernet);
    let mut w = Wire::open(
        &mut trace,
        Conv::new("10.0.0.1:40000", "10.0.0.2:443", 1000, 9000),
        &cc,
        &sc,
    );
    let mut s = H2Script::new();
    let mut sent = Vec::new();
    for id in [1u32, 3] {
        s.connect(id, "/tls", &[], None);
        s.answer(id, "200", &[]);
        let text = payload(3000 + id as usize, id as u8);
        let frame = frame(true, false, 2, Some([1, 2, 3, 4]), &text);
        s.send(C2S, data(id, false, Some(3), &frame));
        sent.push(sha(&text));
    }
    for (dir, bytes) in &s.sends {
        if *dir == C2S {
            w.client_send(bytes);
        } else {
            w.server_send(bytes);
        }
    }
    w.close();
    let mut cfg = AnalyzerConfig::default();
    cfg.session.http_anomalies = true;
    cfg.session.digest = true;
    let capture = trace.finish();
    let mut cap = Capture::from_reader(Cursor::new(capture.clone()), "mem");
    let mut events = Vec::new();
    let stats = Analyzer::new(cfg)
        .with_keylog(keys.keylog())
        .run(&mut cap, &mut |ev: &Event<'_>| {
            if let EventKind::Established(up, tls) = &ev.kind {
                assert!(up.is_http2());
                assert_eq!(tls.and_then(|t| t.alpn.as_deref()), Some("h2"));
            }
            events.push(OwnedEvent::from(ev))
        })
        .unwrap();
    assert_eq!(anomalies(&events), Vec::<String>::new());
    assert_eq!(
        (stats.sessions, stats.tls.decrypted, stats.tls.h2),
        (2, 1, 1)
    );
    assert_eq!(digests(&events, true), sent);
    let streams: Vec<Option<u32>> = events
        .iter()
        .filter(|e| matches!(e.kind, OwnedKind::Established(_)))
        .map(|e| e.conn.stream_id)
        .collect();
    assert_eq!(streams, [Some(1), Some(3)]);
    // The secrets written after the ServerHello: the HTTP/2 connection waits, then its
    // streams are sessions with the same events (digests on, HTTP anomalies off as in
    // analyze_late; compared with a run of the same settings and the keys first).
    let (first, _) = analyze(capture.clone(), keys.keylog());
    for after in [6, 10, 14] {
        let (late, stats) = analyze_late(capture.clone(), &keys.text(), after);
        assert_eq!(late, first, "h2: secrets after {after} packets");
        assert_eq!(stats.sessions, 2);
    }
}

/// A resumed TLS 1.3 connection with 0-RTT data accepted: the early records (under a key the
/// key log does not give) are passed over, everything after them decrypts.
#[test]
fn early_data_is_skipped_and_the_rest_decrypts() {
    let setup = v13("TLS13_AES_128_GCM_SHA256");
    let keys = Arc::new(Keys::default());
    let (cc, sc) = configs(setup, &keys);
    let mut c = (*cc).clone();
    c.enable_early_data = true;
    let mut s = (*sc).clone();
    s.max_early_data_size = 16384;
    let (cc, sc) = (Arc::new(c), Arc::new(s));
    let mut trace = Trace::new(Framing::Ethernet);
    // A first connection leaves a ticket that allows early data.
    let mut w = Wire::open(
        &mut trace,
        Conv::new("10.0.0.1:40000", "10.0.0.2:443", 1000, 9000),
        &cc,
        &sc,
    );
    let (mut want, _) = conversation(&mut w, false);
    w.close();
    let name = rustls::pki_types::ServerName::try_from("example.test").unwrap();
    let mut w = Wire {
        trace: &mut trace,
        conv: Conv::new("10.0.0.1:40001", "10.0.0.2:443", 3000, 7000),
        client: ClientConnection::new(cc.clone(), name).unwrap(),
        server: ServerConnection::new(sc.clone()).unwrap(),
    };
    w.client.set_buffer_limit(None);
    w.server.set_buffer_limit(None);
    w.conv.handshake(w.trace);
    w.client
        .early_data()
        .expect("a ticket that allows early data")
        .write_all(b"0-RTT bytes the analyzer cannot read")
        .unwrap();
    while w.client.is_handshaking() || w.server.is_handshaking() {
        w.flush();
    }
    w.flush();
    assert!(w.client.is_early_data_accepted());
    let (c2, _) = conversation(&mut w, false);
    want.extend(c2);
    w.close();
    let (events, stats) = analyze(trace.finish(), keys.keylog());
    assert_eq!(anomalies(&events), Vec::<String>::new());
    assert_eq!(stats.sessions, 2);
    assert_eq!(digests(&events, true), want);
}

/// A ClientHello the server never answered: reported undecrypted (with its SNI) when the
/// connection ends, no session.
#[test]
fn an_unanswered_client_hello_is_reported_at_the_end() {
    let setup = v13("TLS13_AES_128_GCM_SHA256");
    let keys = Arc::new(Keys::default());
    let (cc, _) = configs(setup, &keys);
    let name = rustls::pki_types::ServerName::try_from("example.test").unwrap();
    let mut client = ClientConnection::new(cc, name).unwrap();
    let mut hello = Vec::new();
    client.write_tls(&mut hello).unwrap();
    let mut trace = Trace::new(Framing::Ethernet);
    let mut conv = Conv::new("10.0.0.1:40000", "10.0.0.2:443", 1000, 9000);
    conv.handshake(&mut trace);
    let spec = conv.client(&hello);
    trace.tcp(spec);
    conv.close(&mut trace);
    let (events, stats) = analyze(trace.finish(), KeyLog::new());
    let r = tls_reports(&events);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].reason, Some("the handshake did not complete"));
    assert_eq!(r[0].sni.as_deref(), Some("example.test"));
    assert_eq!((stats.sessions, stats.tls.undecrypted), (0, 1));
}

/// Keys from a Decryption Secrets Block in the middle of a pcapng file that the workers read
/// in chunks (`--workers N`): after 300 KB of other packets (chunks of 16 KiB), the keys
/// reach every worker before the TLS packets, as with one thread.
#[test]
fn keys_from_a_decryption_secrets_block_mid_file_with_workers() {
    for big in [false, true] {
        dsb_mid_file(big);
    }
}

/// See above; with `big`, a packet block too big for the chunks follows the DSB (the rest of
/// the run, DSB included, goes through one reader). The DSB also holds two lines that are not
/// key log lines: counted once whatever the number of workers (each worker reads every
/// line), with the first one's problem, and told in a capture note; the `--keylog` file's
/// own malformed line (read before the run, reported there) is not counted again.
fn dsb_mid_file(big: bool) {
    let setup = v12("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384");
    let keys = Arc::new(Keys::default());
    let (cc, sc) = configs(setup, &keys);
    let mut trace = Trace::new(Framing::Ethernet);
    let mut w = Wire::open(
        &mut trace,
        Conv::new("10.0.0.1:40000", "10.0.0.2:443", 1000, 9000),
        &cc,
        &sc,
    );
    let (c, s) = conversation(&mut w, false);
    w.close();
    let pcap = trace.finish();
    // Section, interface, 300 packets of 1000 zero bytes (not IP), then the DSB.
    let mut ng = PcapNgWriter::new(Vec::new()).unwrap();
    let iface = ng.add_interface(Framing::Ethernet.link_type(), 6).unwrap();
    for i in 0..300 {
        ng.write_packet(iface, Instant::from_micros(i), &[0u8; 1000])
            .unwrap();
    }
    let mut file = ng.into_inner();
    let mut text = keys.text().into_bytes();
    text.extend_from_slice(b"NOT_A_LABEL 00 11\nCLIENT_RANDOM 1234 5678\n");
    file.extend(dsb_block(&text));
    if big {
        let mut ng = PcapNgWriter::new(Vec::new()).unwrap();
        ng.add_interface(Framing::Ethernet.link_type(), 6).unwrap();
        ng.write_packet(iface, Instant::from_micros(300), &[0u8; 100_000])
            .unwrap();
        file.extend(without_section_header(&ng.into_inner()));
    }
    // The conversation's packets, through a second writer whose section header and
    // interface are dropped (the first ones are reused).
    file.extend(pcap_as_pcapng_blocks(&pcap, iface));
    let path = std::env::temp_dir().join(format!(
        "wscope-dsb-mid-{}-{big}.pcapng",
        std::process::id()
    ));
    std::fs::write(&path, &file).unwrap();
    let mut cfg = AnalyzerConfig::default();
    cfg.session.digest = true;
    let mut outputs = Vec::new();
    let mut before = KeyLog::new();
    before.add_bytes(b"# a comment\nnot a key log line\n", "keys.log");
    assert_eq!(before.stats().malformed, 1);
    for workers in [1, 2, 3] {
        let mut cap = Capture::from_paths([&path]).buffer_len(1 << 16);
        let mut sink = Notes::default();
        let stats = Analyzer::new(cfg)
            .with_keylog(before.clone())
            .workers(workers)
            .run(&mut cap, &mut sink)
            .unwrap();
        let events = sink.events;
        assert_eq!(
            (stats.tls.keylog_malformed, stats.tls.keylog_problem),
            (2, Some("unknown label")),
            "{workers} workers, big {big}"
        );
        assert_eq!(sink.notes.len(), 1, "{workers} workers, big {big}");
        let note = &sink.notes[0];
        assert_eq!((note.name, note.count), ("keylog_malformed", 2));
        assert!(
            note.detail.ends_with("(the first: unknown label)"),
            "{}",
            note.detail
        );
        assert_eq!(anomalies(&events), Vec::<String>::new(), "{workers}");
        assert_eq!(stats.sessions, 1, "{workers}");
        assert_eq!(digests(&events, true), c, "{workers} workers, big {big}");
        assert_eq!(digests(&events, false), s, "{workers} workers, big {big}");
        outputs.push((format!("{events:?}"), stats.capture));
    }
    let _ = std::fs::remove_file(&path);
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
}

/// Records the events and the capture notes of a run.
#[derive(Default)]
struct Notes {
    events: Vec<OwnedEvent>,
    notes: Vec<wscope_inspect::sink::CaptureNote>,
}

impl wscope_inspect::Sink for Notes {
    fn event(&mut self, ev: &Event<'_>) {
        self.events.push(OwnedEvent::from(ev));
    }

    fn capture_note(&mut self, note: &wscope_inspect::sink::CaptureNote) {
        self.notes.push(note.clone());
    }
}

/// A pcapng Decryption Secrets Block of TLS key log text.
fn dsb_block(text: &[u8]) -> Vec<u8> {
    let padded = text.len().div_ceil(4) * 4;
    let total = (16 + padded + 4) as u32;
    let mut b = Vec::with_capacity(total as usize);
    b.extend(0x0000_000Au32.to_le_bytes());
    b.extend(total.to_le_bytes());
    b.extend(0x544C_534Bu32.to_le_bytes());
    b.extend((text.len() as u32).to_le_bytes());
    b.extend(text);
    b.resize(b.len() + padded - text.len(), 0);
    b.extend(total.to_le_bytes());
    b
}

/// A pcapng writer's output without its section header and first interface block.
fn without_section_header(body: &[u8]) -> Vec<u8> {
    let shb = u32::from_le_bytes(body[4..8].try_into().unwrap()) as usize;
    let idb = u32::from_le_bytes(body[shb + 4..shb + 8].try_into().unwrap()) as usize;
    body[shb + idb..].to_vec()
}

/// The packets of a classic pcap file as pcapng packet blocks on interface `iface` (the
/// first of an Ethernet section written before them), with no section header of their own.
fn pcap_as_pcapng_blocks(pcap: &[u8], iface: u32) -> Vec<u8> {
    let mut ng = PcapNgWriter::new(Vec::new()).unwrap();
    let i2 = ng.add_interface(Framing::Ethernet.link_type(), 6).unwrap();
    assert_eq!(i2, iface);
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let u = |o: usize| u32::from_le_bytes(pcap[o..o + 4].try_into().unwrap());
        let (secs, usecs, caplen) = (u(at), u(at + 4), u(at + 8) as usize);
        let ts = Instant::from_micros(u64::from(secs) * 1_000_000 + u64::from(usecs));
        ng.write_packet(i2, ts, &pcap[at + 16..at + 16 + caplen])
            .unwrap();
        at += 16 + caplen;
    }
    without_section_header(&ng.into_inner())
}
