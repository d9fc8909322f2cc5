//! Writes the seeds of the `capture` fuzz target (`fuzz/seeds/capture/`): a control byte
//! followed by a whole capture file. Two WebSocket conversations whose 3000-byte server
//! message crossed a 1000-byte MTU (IPv4 over Ethernet in pcap, IPv6 raw in pcapng; the
//! fragments in reverse order), and the bundled sample capture. Deterministic.
//!
//! `cargo run -p wscope-inspect --example make_capture_seeds` (from the repository root).

use core::net::SocketAddr;

use wscope_inspect::decode::TcpFlags;
use wscope_proto::time::Instant;
use wscope_test_support::capture::{
    encode_tcp, fragment_ip, Framing, PcapNgWriter, PcapWriter, TcpSpec,
};
use wscope_test_support::wire::{upgrade_request, upgrade_response};

/// The conversation after the TCP handshake: (from the client, bytes).
fn conversation() -> Vec<(bool, Vec<u8>)> {
    let req = &upgrade_request("/chat", "x", None)[..];
    let resp = &upgrade_response(None)[..];
    let mut big = vec![0x82, 126, 0x0b, 0xb8];
    big.extend((0..3000u32).map(|i| i as u8));
    let key = [1, 2, 3, 4];
    let mut hello = vec![0x81, 0x85];
    hello.extend_from_slice(&key);
    hello.extend(b"hello".iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    let close_client = vec![0x88, 0x82, 9, 9, 9, 9, 0x03 ^ 9, 0xe8 ^ 9];
    let close_server = vec![0x88, 0x02, 0x03, 0xe8];
    vec![
        (true, req.to_vec()),
        (false, resp.to_vec()),
        (true, hello),
        (false, big),
        (true, close_client),
        (false, close_server),
    ]
}

/// The packets of one whole connection, server segments over 1000 bytes fragmented.
fn packets(c: SocketAddr, s: SocketAddr, framing: Framing) -> Vec<Vec<u8>> {
    let mut pkts = Vec::new();
    let mut put = |spec: &TcpSpec<'_>| {
        let mut ip = Vec::new();
        encode_tcp(Framing::Raw, spec, &mut ip).expect("encodable");
        let pieces = if spec.payload.len() > 1000 {
            fragment_ip(&ip, 1000, 7).expect("fragmentable")
        } else {
            vec![ip]
        };
        for p in pieces.into_iter().rev() {
            let mut pkt = Vec::new();
            framing.write_header(c.is_ipv6(), &mut pkt);
            pkt.extend_from_slice(&p);
            pkts.push(pkt);
        }
    };
    put(&TcpSpec::new(c, s).seq(100).flags(TcpFlags::SYN));
    put(&TcpSpec::new(s, c).seq(900).ack(101).flags(TcpFlags::SYN));
    let (mut cs, mut ss) = (101u32, 901u32);
    for (from_client, bytes) in conversation() {
        if from_client {
            put(&TcpSpec::new(c, s).seq(cs).ack(ss).payload(&bytes));
            cs += bytes.len() as u32;
        } else {
            put(&TcpSpec::new(s, c).seq(ss).ack(cs).payload(&bytes));
            ss += bytes.len() as u32;
        }
    }
    put(&TcpSpec::new(s, c).seq(ss).ack(cs).flags(TcpFlags::FIN));
    put(&TcpSpec::new(c, s).seq(cs).ack(ss + 1).flags(TcpFlags::FIN));
    pkts
}

fn write_seeds(name: &str, file: &[u8], controls: &[u8]) {
    for ctl in controls {
        let mut seed = vec![*ctl];
        seed.extend_from_slice(file);
        let path = format!("fuzz/seeds/capture/{name}-{ctl:02x}");
        std::fs::write(&path, seed).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

fn main() {
    let ts = |n: usize| Instant::from_micros(1_000_000 + n as u64);
    let v4 = packets(
        "10.7.0.1:41000".parse().unwrap(),
        "10.7.0.2:80".parse().unwrap(),
        Framing::Ethernet,
    );
    let mut w = PcapWriter::new(Vec::new(), Framing::Ethernet.link_type()).expect("in memory");
    for (n, p) in v4.iter().enumerate() {
        w.write_packet(ts(n), p).expect("in memory");
    }
    write_seeds("frag-v4-ethernet", &w.into_inner(), &[0x00, 0x0d]);

    let v6 = packets(
        "[2001:db8::1]:41000".parse().unwrap(),
        "[2001:db8::2]:80".parse().unwrap(),
        Framing::Raw,
    );
    let mut w = PcapNgWriter::new(Vec::new()).expect("in memory");
    let iface = w
        .add_interface(Framing::Raw.link_type(), 6)
        .expect("in memory");
    for (n, p) in v6.iter().enumerate() {
        w.write_packet(iface, ts(n), p).expect("in memory");
    }
    write_seeds("frag-v6-raw-pcapng", &w.into_inner(), &[0x00, 0x0d]);

    let sample =
        std::fs::read("samples/websocket-demo.pcap").expect("run from the repository root");
    write_seeds("sample", &sample, &[0x00, 0x06]);
}
