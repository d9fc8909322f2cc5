//! Writes a large, realistic WebSocket capture for benchmarks (default ≥ 1 GiB).
//!
//! ```text
//! cargo run --release -p wscope-inspect --example gen_bench -- OUTPUT.pcap [MEGABYTES] [large|tls|h2|...]
//! ```
//!
//! Many connections, interleaved packet by packet; each does a real handshake (some with
//! permessage-deflate offered), then a mix of small text messages (JSON-like), medium binary
//! messages, some large fragmented messages (up to 1 MiB), pings and pongs, masked client
//! frames, and close 1000 both ways. TCP segments carry at most 1448 payload bytes, as on
//! Ethernet. Deterministic (fixed seed), no clock. With `large`, every message is a 16–64 MiB
//! binary message in four fragments instead.
//!
//! With `tls`, every connection is `wss://` on port 443: real TLS 1.3 (rustls, in memory; the
//! three suites in turn) carries the same handshake and messages, and the secrets go to
//! `OUTPUT.pcap.keys` for `wscope inspect --keylog` (and tshark's `tls.keylog_file`). The
//! WebSocket content is the same as without `tls` (same seed); the TLS randomness is not
//! deterministic.
//!
//! With `h2`, every connection is HTTP/2 (h2c prior knowledge; with `tls` too, ALPN `h2`)
//! carrying 8 WebSocket streams (RFC 8441 extended CONNECT, HPACK by `loona-hpack`): the same
//! messages (same seed, same order, same bytes) as without `h2`, each in DATA frames of at
//! most 16384 bytes on the connection's streams in turn; each stream closes with close 1000
//! both ways and END_STREAM.

use core::net::SocketAddr;
use std::io::{BufWriter, Write};

use wscope_inspect::decode::TcpFlags;
use wscope_proto::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use wscope_proto::handshake::AcceptKey;
use wscope_proto::mask::apply_mask;
use wscope_proto::time::Instant;
use wscope_test_support::capture::{Framing, PcapWriter, TcpSpec};
use wscope_test_support::Rng;

const MSS: usize = 1448;

/// A connection's two TLS ends (tls mode).
struct Tls {
    client: rustls::ClientConnection,
    server: rustls::ServerConnection,
}

impl Tls {
    /// Encrypts `plain` from one side; returns the TLS bytes it sent (the other side reads
    /// them, so its state follows).
    fn send(&mut self, from_client: bool, plain: &[u8]) -> Vec<u8> {
        if from_client {
            self.client.writer().write_all(plain).unwrap();
        } else {
            self.server.writer().write_all(plain).unwrap();
        }
        self.pump(from_client)
    }

    fn pump(&mut self, from_client: bool) -> Vec<u8> {
        use std::io::Read;
        let mut wire = Vec::new();
        if from_client {
            while self.client.wants_write() {
                self.client.write_tls(&mut wire).unwrap();
            }
        } else {
            while self.server.wants_write() {
                self.server.write_tls(&mut wire).unwrap();
            }
        }
        let mut rd = &wire[..];
        let mut sink = Vec::new();
        while !rd.is_empty() {
            if from_client {
                self.server.read_tls(&mut rd).unwrap();
                self.server.process_new_packets().unwrap();
                let _ = self.server.reader().read_to_end(&mut sink);
            } else {
                self.client.read_tls(&mut rd).unwrap();
                self.client.process_new_packets().unwrap();
                let _ = self.client.reader().read_to_end(&mut sink);
            }
            sink.clear();
        }
        wire
    }
}

/// Key log lines in the NSS format.
#[derive(Debug)]
struct KeyFile(std::sync::Mutex<std::fs::File>);

impl rustls::KeyLog for KeyFile {
    fn log(&self, label: &str, random: &[u8], secret: &[u8]) {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let _ = writeln!(
            self.0.lock().unwrap(),
            "{label} {} {}",
            hex(random),
            hex(secret)
        );
    }
}

/// Client and server configurations (one per TLS 1.3 suite) writing to `keys`.
fn tls_configs(
    keys: &std::sync::Arc<KeyFile>,
    alpn: &[u8],
) -> Vec<(
    std::sync::Arc<rustls::ClientConfig>,
    std::sync::Arc<rustls::ServerConfig>,
)> {
    use std::sync::Arc;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["feed.example".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    #[allow(deprecated)] // ring has no post-quantum key exchange; X25519 is what we need
    let base = rustls::crypto::ring::default_provider();
    base.cipher_suites
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .map(|suite| {
            let provider = Arc::new(rustls::crypto::CryptoProvider {
                cipher_suites: vec![*suite],
                ..base.clone()
            });
            let mut roots = rustls::RootCertStore::empty();
            roots.add(cert.der().clone()).unwrap();
            let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider.clone())))
                .with_no_client_auth();
            client.key_log = keys.clone();
            client.alpn_protocols = vec![alpn.to_vec()];
            let mut server = rustls::ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone()],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
                )
                .unwrap();
            server.alpn_protocols = vec![alpn.to_vec()];
            (Arc::new(client), Arc::new(server))
        })
        .collect()
}

/// Accepts any certificate: the benchmark's peers are both in this process.
#[derive(Debug)]
struct NoVerify(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// WebSocket streams per HTTP/2 connection (`h2` mode).
const H2_STREAMS: u32 = 8;

/// An HTTP/2 connection's generator state (`h2` mode).
struct H2 {
    enc: [loona_hpack::Encoder<'static>; 2],
    /// Messages sent so far (they go to the streams in turn).
    sent: u32,
}

/// One HTTP/2 frame.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8], out: &mut Vec<u8>) {
    let l = (payload.len() as u32).to_be_bytes();
    out.extend_from_slice(&[l[1], l[2], l[3], kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// `bytes` in DATA frames of at most 16384 bytes on `stream` (RFC 9113 §6.1).
fn h2_data(stream: u32, end: bool, bytes: &[u8], out: &mut Vec<u8>) {
    if bytes.is_empty() {
        h2_frame(0x0, u8::from(end), stream, &[], out);
        return;
    }
    let n = bytes.chunks(16384).count();
    for (i, c) in bytes.chunks(16384).enumerate() {
        h2_frame(0x0, u8::from(end && i + 1 == n), stream, c, out);
    }
}

/// The opening of an HTTP/2 connection with `H2_STREAMS` WebSocket streams: (client bytes,
/// server bytes).
fn h2_open(h: &mut H2, id: u32, ext: bool) -> (Vec<u8>, Vec<u8>) {
    let (mut c, mut s) = (Vec::new(), Vec::new());
    c.extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    h2_frame(0x4, 0, 0, &[], &mut c);
    // SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3), then both ACKs.
    h2_frame(0x4, 0, 0, &[0, 8, 0, 0, 0, 1], &mut s);
    h2_frame(0x4, 1, 0, &[], &mut c);
    h2_frame(0x4, 1, 0, &[], &mut s);
    for k in 0..H2_STREAMS {
        let stream = 2 * k + 1;
        let path = format!("/stream/{id}/{k}");
        let mut fields: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"https"),
            (b":path", path.as_bytes()),
            (b":authority", b"feed.example"),
            (b"user-agent", b"bench/1.0"),
            (b"sec-websocket-version", b"13"),
        ];
        if ext {
            fields.push((
                b"sec-websocket-extensions",
                b"permessage-deflate; client_max_window_bits",
            ));
        }
        let block = h.enc[0].encode(fields);
        h2_frame(0x1, 0x4, stream, &block, &mut c);
        let block = h.enc[1].encode([(&b":status"[..], &b"200"[..])]);
        h2_frame(0x1, 0x4, stream, &block, &mut s);
    }
    (c, s)
}

struct Conn {
    h2: Option<H2>,
    tls: Option<Tls>,
    c: SocketAddr,
    s: SocketAddr,
    seq: [u32; 2],
    /// Bytes queued per direction, sent MSS by MSS.
    out: [Vec<u8>; 2],
    at: [usize; 2],
    stage: u32,
    msgs_left: u32,
}

fn frame(rng: &mut Rng, client: bool, fin: bool, op: OpCode, payload: &[u8], out: &mut Vec<u8>) {
    let mask = client.then(|| (rng.next_u64() as u32).to_be_bytes());
    let h = FrameHeader::new(fin, op, mask, payload.len() as u64);
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = h.emit(&mut head);
    out.extend_from_slice(&head[..n]);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(k) = mask {
        apply_mask(&mut out[start..], k, 0);
    }
}

fn message(rng: &mut Rng, client: bool, large: bool, out: &mut Vec<u8>) {
    if large {
        // 16-64 MiB binary messages in 4 fragments (peak memory must not grow with them).
        let total = (16 << 20) + rng.below(48 << 20) as usize;
        let part: Vec<u8> = (0..total / 4).map(|i| (i >> 5) as u8).collect();
        for i in 0..4 {
            let op = if i == 0 {
                OpCode::BINARY
            } else {
                OpCode::CONTINUATION
            };
            frame(rng, client, i == 3, op, &part, out);
        }
        return;
    }
    let kind = rng.below(100);
    if kind < 70 {
        let n = 20 + rng.below(400) as usize;
        let mut t = format!("{{\"seq\":{},\"data\":\"", rng.next_u64());
        while t.len() < n {
            t.push(char::from(b'a' + rng.below(26) as u8));
        }
        t.push_str("\"}");
        frame(rng, client, true, OpCode::TEXT, t.as_bytes(), out);
    } else if kind < 93 {
        let n = 1024 + rng.below(15 * 1024) as usize;
        let p: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(31)).collect();
        frame(rng, client, true, OpCode::BINARY, &p, out);
    } else if kind < 94 {
        // A large message in fragments, a ping between two of them.
        let total = 64 * 1024 + rng.below(448 * 1024) as usize;
        let p: Vec<u8> = (0..total).map(|i| (i >> 3) as u8).collect();
        let parts = 2 + rng.below(6) as usize;
        let step = total.div_ceil(parts);
        for (i, chunk) in p.chunks(step).enumerate() {
            let op = if i == 0 {
                OpCode::BINARY
            } else {
                OpCode::CONTINUATION
            };
            if i == 1 {
                frame(rng, client, true, OpCode::PING, b"hb", out);
            }
            frame(rng, client, (i + 1) * step >= total, op, chunk, out);
        }
    } else {
        frame(rng, client, true, OpCode::PING, b"ping", out);
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "bench.pcap".to_string());
    let megabytes: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1100);
    let mode = args.next();
    // `large`, `tls`, or both (`large,tls`).
    let modes: Vec<&str> = mode.as_deref().unwrap_or("").split(',').collect();
    let large = modes.contains(&"large");
    let tls_mode = modes.contains(&"tls");
    let h2_mode = modes.contains(&"h2");
    let alpn: &[u8] = if h2_mode { b"h2" } else { b"http/1.1" };
    let configs = if tls_mode {
        let keys = std::fs::File::create(format!("{path}.keys"))?;
        tls_configs(
            &std::sync::Arc::new(KeyFile(std::sync::Mutex::new(keys))),
            alpn,
        )
    } else {
        Vec::new()
    };
    let target = megabytes << 20;
    let file = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    let mut w = PcapWriter::new(file, Framing::Ethernet.link_type())?;
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut ts = 1_767_225_600_000_000u64;
    let mut written = 24u64;
    let mut conns: Vec<Conn> = Vec::new();
    let mut next_id = 0u32;
    let mut stats = (0u64, 0u64);
    while written < target || !conns.is_empty() {
        while written < target && conns.len() < 64 {
            next_id += 1;
            let c = SocketAddr::from((
                [10, 1, (next_id >> 8) as u8, next_id as u8],
                20_000 + (next_id % 40_000) as u16,
            ));
            let s = SocketAddr::from((
                [10, 2, 0, (next_id % 8) as u8 + 1],
                if tls_mode {
                    443
                } else if next_id.is_multiple_of(2) {
                    80
                } else {
                    8080
                },
            ));
            let tls = (!configs.is_empty()).then(|| {
                let (cc, sc) = &configs[next_id as usize % configs.len()];
                let name = rustls::pki_types::ServerName::try_from("feed.example").unwrap();
                let mut t = Tls {
                    client: rustls::ClientConnection::new(cc.clone(), name).unwrap(),
                    server: rustls::ServerConnection::new(sc.clone()).unwrap(),
                };
                t.client.set_buffer_limit(None);
                t.server.set_buffer_limit(None);
                t
            });
            conns.push(Conn {
                h2: h2_mode.then(|| H2 {
                    enc: [loona_hpack::Encoder::new(), loona_hpack::Encoder::new()],
                    sent: 0,
                }),
                tls,
                c,
                s,
                seq: [rng.next_u64() as u32, rng.next_u64() as u32],
                out: [Vec::new(), Vec::new()],
                at: [0, 0],
                stage: 0,
                msgs_left: 20 + rng.below(400) as u32,
            });
        }
        let i = rng.below(conns.len() as u64) as usize;
        let conn = &mut conns[i];
        ts += 1 + rng.below(50);
        let t = Instant::from_micros(ts);
        match conn.stage {
            0 => {
                w.write_tcp(
                    t,
                    Framing::Ethernet,
                    &TcpSpec::new(conn.c, conn.s)
                        .seq(conn.seq[0])
                        .flags(TcpFlags::SYN),
                )?;
                conn.seq[0] = conn.seq[0].wrapping_add(1);
                w.write_tcp(
                    t,
                    Framing::Ethernet,
                    &TcpSpec::new(conn.s, conn.c)
                        .seq(conn.seq[1])
                        .ack(conn.seq[0])
                        .flags(TcpFlags::SYN),
                )?;
                conn.seq[1] = conn.seq[1].wrapping_add(1);
                written += 2 * (16 + 54);
                let key = "dGhlIHNhbXBsZSBub25jZQ==";
                let offer = rng.below(3) == 0;
                let ext = if offer {
                    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                } else {
                    ""
                };
                let req = format!("GET /stream/{next_id} HTTP/1.1\r\nHost: feed.example\r\nUser-Agent: bench/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n");
                let resp = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n", AcceptKey::for_key(key.as_bytes()).as_str());
                // tls: the TLS handshake, then the HTTP one inside it, in causal order.
                let mut heads: Vec<(usize, Vec<u8>)> = Vec::new();
                let (req, resp) = match &mut conn.h2 {
                    Some(h) => h2_open(h, next_id, offer),
                    None => (req.into_bytes(), resp.into_bytes()),
                };
                match &mut conn.tls {
                    None => {
                        heads.push((0, req));
                        heads.push((1, resp));
                    }
                    Some(t) => {
                        let mut from_client = true;
                        while t.client.is_handshaking() || t.server.is_handshaking() {
                            let wire = t.pump(from_client);
                            if !wire.is_empty() {
                                heads.push((usize::from(!from_client), wire));
                            }
                            from_client = !from_client;
                        }
                        heads.push((0, t.send(true, &req)));
                        heads.push((1, t.send(false, &resp)));
                    }
                }
                for (d, head) in heads
                    .iter()
                    .flat_map(|(d, h)| h.chunks(MSS).map(move |c| (*d, c)))
                {
                    let (src, dst) = if d == 0 {
                        (conn.c, conn.s)
                    } else {
                        (conn.s, conn.c)
                    };
                    w.write_tcp(
                        t,
                        Framing::Ethernet,
                        &TcpSpec::new(src, dst)
                            .seq(conn.seq[d])
                            .ack(conn.seq[1 - d])
                            .flags(TcpFlags::PSH)
                            .payload(head),
                    )?;
                    conn.seq[d] = conn.seq[d].wrapping_add(head.len() as u32);
                    written += 16 + 54 + head.len() as u64;
                }
                conn.stage = 1;
            }
            _ => {
                // Send one segment from a direction with data, else produce more.
                let d = if conn.at[0] < conn.out[0].len()
                    && (conn.at[1] >= conn.out[1].len() || rng.below(2) == 0)
                {
                    0
                } else {
                    1
                };
                if conn.at[d] < conn.out[d].len() {
                    let end = conn.out[d].len().min(conn.at[d] + MSS);
                    let (src, dst) = if d == 0 {
                        (conn.c, conn.s)
                    } else {
                        (conn.s, conn.c)
                    };
                    let payload = &conn.out[d][conn.at[d]..end];
                    w.write_tcp(
                        t,
                        Framing::Ethernet,
                        &TcpSpec::new(src, dst)
                            .seq(conn.seq[d])
                            .ack(conn.seq[1 - d])
                            .flags(TcpFlags::PSH)
                            .payload(payload),
                    )?;
                    conn.seq[d] = conn.seq[d].wrapping_add(payload.len() as u32);
                    written += 16 + 54 + payload.len() as u64;
                    stats.1 += payload.len() as u64;
                    conn.at[d] = end;
                    if conn.at[d] == conn.out[d].len() {
                        conn.out[d].clear();
                        conn.at[d] = 0;
                    }
                } else if conn.stage == 2 {
                    w.write_tcp(
                        t,
                        Framing::Ethernet,
                        &TcpSpec::new(conn.s, conn.c)
                            .seq(conn.seq[1])
                            .ack(conn.seq[0])
                            .flags(TcpFlags::FIN),
                    )?;
                    w.write_tcp(
                        t,
                        Framing::Ethernet,
                        &TcpSpec::new(conn.c, conn.s)
                            .seq(conn.seq[0])
                            .ack(conn.seq[1].wrapping_add(1))
                            .flags(TcpFlags::FIN),
                    )?;
                    written += 2 * (16 + 54);
                    conns.swap_remove(i);
                    continue;
                } else if conn.msgs_left == 0 || written >= target {
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    frame(&mut rng, true, true, OpCode::CLOSE, b"\x03\xe8", &mut a);
                    frame(&mut rng, false, true, OpCode::CLOSE, b"\x03\xe8", &mut b);
                    if conn.h2.is_some() {
                        // Every stream closes (the same close frames), then ends.
                        let (ca, cb) = (a.clone(), b.clone());
                        a.clear();
                        b.clear();
                        for k in 0..H2_STREAMS {
                            h2_data(2 * k + 1, false, &ca, &mut a);
                            h2_data(2 * k + 1, true, &[], &mut a);
                            h2_data(2 * k + 1, true, &cb, &mut b);
                        }
                    }
                    if let Some(t) = &mut conn.tls {
                        a = t.send(true, &a);
                        b = t.send(false, &b);
                    }
                    conn.out[0].extend_from_slice(&a);
                    conn.out[1].extend_from_slice(&b);
                    conn.stage = 2;
                } else {
                    conn.msgs_left -= 1;
                    stats.0 += 1;
                    let client = rng.below(4) == 0;
                    let d = usize::from(!client);
                    let mut plain = Vec::new();
                    message(&mut rng, client, large, &mut plain);
                    if let Some(h) = &mut conn.h2 {
                        let stream = 2 * (h.sent % H2_STREAMS) + 1;
                        h.sent += 1;
                        let mut framed = Vec::with_capacity(plain.len() + 64);
                        h2_data(stream, false, &plain, &mut framed);
                        plain = framed;
                    }
                    if let Some(t) = &mut conn.tls {
                        plain = t.send(client, &plain);
                    }
                    conn.out[d].extend_from_slice(&plain);
                }
            }
        }
    }
    let mut f = w.into_inner();
    f.flush()?;
    println!(
        "wrote {path}: {written} bytes, {next_id} connections, {} messages, {} TCP payload bytes",
        stats.0, stats.1
    );
    Ok(())
}
