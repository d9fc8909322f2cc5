//! Writes `samples/websocket-demo.pcap`: two small WebSocket connections made by our own code.
//!
//! Connection 1 offers permessage-deflate, the server declines it and picks the `chat`
//! subprotocol: text, binary, a server message in three fragments with a ping between them,
//! a pong, then close 1000 both ways. Connection 2 negotiates permessage-deflate: compressed
//! messages both ways (the server's second one only inflates with the first one's context).
//!
//! ```text
//! cargo run -p wscope-inspect --example make_sample [OUTPUT]   # default samples/websocket-demo.pcap
//! ```
//!
//! The output is deterministic (fixed keys, masks and timestamps).

use core::net::SocketAddr;

use wscope_inspect::decode::TcpFlags;
use wscope_proto::deflate::Deflater;
use wscope_proto::frame::{FrameHeader, OpCode, MAX_HEADER_LEN, RSV1};
use wscope_proto::handshake::AcceptKey;
use wscope_proto::mask::apply_mask;
use wscope_proto::time::Instant;
use wscope_test_support::capture::{Framing, PcapWriter, TcpSpec};

/// One TCP connection being written.
struct Conv {
    client: SocketAddr,
    server: SocketAddr,
    cseq: u32,
    sseq: u32,
    ts: u64,
    mask: u32,
}

impl Conv {
    fn new(client: &str, server: &str, ts: u64, isn: u32) -> Self {
        Self {
            client: client.parse().expect("address"),
            server: server.parse().expect("address"),
            cseq: isn,
            sseq: isn.wrapping_mul(7).wrapping_add(99),
            ts,
            mask: isn,
        }
    }

    fn tick(&mut self, us: u64) -> Instant {
        self.ts += us;
        Instant::from_micros(self.ts)
    }

    fn open(&mut self, w: &mut PcapWriter<Vec<u8>>) -> std::io::Result<()> {
        let t = self.tick(0);
        w.write_tcp(
            t,
            Framing::Ethernet,
            &TcpSpec::new(self.client, self.server)
                .seq(self.cseq)
                .flags(TcpFlags::SYN),
        )?;
        self.cseq = self.cseq.wrapping_add(1);
        let t = self.tick(150);
        w.write_tcp(
            t,
            Framing::Ethernet,
            &TcpSpec::new(self.server, self.client)
                .seq(self.sseq)
                .ack(self.cseq)
                .flags(TcpFlags::SYN),
        )?;
        self.sseq = self.sseq.wrapping_add(1);
        let t = self.tick(60);
        w.write_tcp(
            t,
            Framing::Ethernet,
            &TcpSpec::new(self.client, self.server)
                .seq(self.cseq)
                .ack(self.sseq),
        )
    }

    /// Sends bytes from the client (`from_client`) or the server, in one segment.
    fn send(
        &mut self,
        w: &mut PcapWriter<Vec<u8>>,
        from_client: bool,
        bytes: &[u8],
    ) -> std::io::Result<()> {
        let t = self.tick(1_000);
        let (src, dst, seq, ack) = if from_client {
            (self.client, self.server, self.cseq, self.sseq)
        } else {
            (self.server, self.client, self.sseq, self.cseq)
        };
        w.write_tcp(
            t,
            Framing::Ethernet,
            &TcpSpec::new(src, dst)
                .seq(seq)
                .ack(ack)
                .flags(TcpFlags::PSH)
                .payload(bytes),
        )?;
        let n = bytes.len() as u32;
        if from_client {
            self.cseq = self.cseq.wrapping_add(n);
        } else {
            self.sseq = self.sseq.wrapping_add(n);
        }
        Ok(())
    }

    fn close(&mut self, w: &mut PcapWriter<Vec<u8>>) -> std::io::Result<()> {
        let t = self.tick(500);
        w.write_tcp(
            t,
            Framing::Ethernet,
            &TcpSpec::new(self.server, self.client)
                .seq(self.sseq)
                .ack(self.cseq)
                .flags(TcpFlags::FIN),
        )?;
        self.sseq = self.sseq.wrapping_add(1);
        let t = self.tick(80);
        w.write_tcp(
            t,
            Framing::Ethernet,
            &TcpSpec::new(self.client, self.server)
                .seq(self.cseq)
                .ack(self.sseq)
                .flags(TcpFlags::FIN),
        )?;
        self.cseq = self.cseq.wrapping_add(1);
        let t = self.tick(60);
        w.write_tcp(
            t,
            Framing::Ethernet,
            &TcpSpec::new(self.server, self.client)
                .seq(self.sseq)
                .ack(self.cseq),
        )
    }

    /// A frame; client frames are masked with a fixed, per-frame changing key.
    fn frame(
        &mut self,
        from_client: bool,
        fin: bool,
        rsv1: bool,
        op: OpCode,
        payload: &[u8],
    ) -> Vec<u8> {
        let mask = from_client.then(|| {
            self.mask = self.mask.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            self.mask.to_be_bytes()
        });
        let mut h = FrameHeader::new(fin, op, mask, payload.len() as u64);
        if rsv1 {
            h.rsv |= RSV1;
        }
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = h.emit(&mut head);
        let mut out = head[..n].to_vec();
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut out[start..], key, 0);
        }
        out
    }
}

fn request(host: &str, key: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET /chat HTTP/1.1\r\nHost: {host}\r\nUser-Agent: wscope-sample/0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

fn response(key: &str, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
        AcceptKey::for_key(key.as_bytes()).as_str()
    )
    .into_bytes()
}

/// The sample capture's bytes.
pub(crate) fn build() -> std::io::Result<Vec<u8>> {
    let mut w = PcapWriter::new(Vec::new(), Framing::Ethernet.link_type())?;
    let t0 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

    // Connection 1: deflate offered, declined; subprotocol chat.
    let mut c = Conv::new("192.0.2.10:50001", "198.51.100.20:8080", t0, 1_000);
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    c.open(&mut w)?;
    c.send(
        &mut w,
        true,
        &request(
            "demo.example:8080",
            key,
            "Sec-WebSocket-Protocol: chat, superchat\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
        ),
    )?;
    c.send(
        &mut w,
        false,
        &response(key, "Sec-WebSocket-Protocol: chat\r\n"),
    )?;
    let f = c.frame(true, true, false, OpCode::TEXT, b"Hello, wscope!");
    c.send(&mut w, true, &f)?;
    let f = c.frame(false, true, false, OpCode::TEXT, b"Hello, wscope!");
    c.send(&mut w, false, &f)?;
    let bin: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37)).collect();
    let f = c.frame(true, true, false, OpCode::BINARY, &bin);
    c.send(&mut w, true, &f)?;
    // A fragmented server message with a ping between its fragments, in one segment.
    let mut seg = c.frame(false, false, false, OpCode::TEXT, b"fragmented ");
    seg.extend(c.frame(false, false, false, OpCode::CONTINUATION, b"message "));
    seg.extend(c.frame(false, true, false, OpCode::PING, b"keepalive"));
    seg.extend(c.frame(
        false,
        true,
        false,
        OpCode::CONTINUATION,
        b"with a ping inside",
    ));
    c.send(&mut w, false, &seg)?;
    let f = c.frame(true, true, false, OpCode::PONG, b"keepalive");
    c.send(&mut w, true, &f)?;
    let f = c.frame(true, true, false, OpCode::CLOSE, b"\x03\xe8bye");
    c.send(&mut w, true, &f)?;
    let f = c.frame(false, true, false, OpCode::CLOSE, b"\x03\xe8");
    c.send(&mut w, false, &f)?;
    c.close(&mut w)?;

    // Connection 2: permessage-deflate accepted, context takeover.
    let mut c = Conv::new(
        "192.0.2.10:50002",
        "198.51.100.20:8080",
        t0 + 50_000,
        77_777,
    );
    let key = "x3JJHMbDL1EzLkh9GBhXDw==";
    c.open(&mut w)?;
    c.send(
        &mut w,
        true,
        &request(
            "demo.example:8080",
            key,
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
        ),
    )?;
    c.send(
        &mut w,
        false,
        &response(key, "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
    )?;
    let mut client_z = Deflater::new(6, 15, false);
    let mut server_z = Deflater::new(6, 15, false);
    let text = b"{\"op\":\"subscribe\",\"channel\":\"ticker\",\"symbols\":[\"ABC\",\"XYZ\"]}";
    let mut z = Vec::new();
    client_z.compress(text, true, &mut z);
    let f = c.frame(true, true, true, OpCode::TEXT, &z);
    c.send(&mut w, true, &f)?;
    for price in ["101.25", "101.50"] {
        let msg = format!("{{\"channel\":\"ticker\",\"symbol\":\"ABC\",\"price\":{price}}}");
        let mut z = Vec::new();
        server_z.compress(msg.as_bytes(), true, &mut z);
        let f = c.frame(false, true, true, OpCode::TEXT, &z);
        c.send(&mut w, false, &f)?;
    }
    let f = c.frame(true, true, false, OpCode::CLOSE, b"\x03\xe8");
    c.send(&mut w, true, &f)?;
    let f = c.frame(false, true, false, OpCode::CLOSE, b"\x03\xe8");
    c.send(&mut w, false, &f)?;
    c.close(&mut w)?;
    Ok(w.into_inner())
}

#[allow(dead_code)]
fn main() -> std::io::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "samples/websocket-demo.pcap".to_string());
    let bytes = build()?;
    std::fs::write(&out, &bytes)?;
    println!("wrote {out} ({} bytes)", bytes.len());
    Ok(())
}
