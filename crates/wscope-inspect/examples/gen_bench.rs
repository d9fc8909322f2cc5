//! Writes a large, realistic WebSocket capture for benchmarks (default ≥ 1 GiB).
//!
//! ```text
//! cargo run --release -p wscope-inspect --example gen_bench -- OUTPUT.pcap [MEGABYTES] [large|tls|large,tls]
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
            let server = rustls::ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone()],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
                )
                .unwrap();
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

struct Conn {
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
    let configs = if tls_mode {
        let keys = std::fs::File::create(format!("{path}.keys"))?;
        tls_configs(&std::sync::Arc::new(KeyFile(std::sync::Mutex::new(keys))))
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
                let ext = if rng.below(3) == 0 {
                    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                } else {
                    ""
                };
                let req = format!("GET /stream/{next_id} HTTP/1.1\r\nHost: feed.example\r\nUser-Agent: bench/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n");
                let resp = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n", AcceptKey::for_key(key.as_bytes()).as_str());
                // tls: the TLS handshake, then the HTTP one inside it, in causal order.
                let mut heads: Vec<(usize, Vec<u8>)> = Vec::new();
                match &mut conn.tls {
                    None => {
                        heads.push((0, req.into_bytes()));
                        heads.push((1, resp.into_bytes()));
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
                        heads.push((0, t.send(true, req.as_bytes())));
                        heads.push((1, t.send(false, resp.as_bytes())));
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
