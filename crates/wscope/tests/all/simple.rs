//! The websock_* facade: recv contract, timeouts, sending while another thread receives.

use core::time::Duration;
use std::sync::Arc;

use wscope::config::ServerConfig;
use wscope::simple::{MsgHdr, Websock, WebsockConfig};

use crate::util::echo_server;

fn open(port: u16) -> Websock {
    Websock::open(&WebsockConfig {
        hostname: "127.0.0.1".into(),
        port,
        uri: "/mqtt".into(),
        hndshk_hdrs: vec![("Sec-WebSocket-Protocol".into(), "mqtt".into())],
        ..WebsockConfig::default()
    })
    .unwrap()
}

#[test]
fn recv_contract() {
    let (addr, server) = echo_server(ServerConfig::default());
    let ws = open(addr.port());
    let mut hdr = MsgHdr::default();
    let mut buf = [0u8; 4];
    // Timeout: 0 bytes, opcode -1, not an error.
    assert_eq!(
        ws.recv(&mut hdr, &mut buf, Duration::from_millis(30))
            .unwrap(),
        0
    );
    assert_eq!(hdr.opcode, -1);
    ws.send_text("Hello World").unwrap();
    let mut got = Vec::new();
    while got.len() < 11 {
        let n = ws
            .recv(&mut hdr, &mut buf, Duration::from_secs(10))
            .unwrap();
        assert_eq!((hdr.fin, hdr.opcode, hdr.payload_len), (1, 1, 11));
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"Hello World");
    ws.close();
    server.join().unwrap().unwrap();
}

#[test]
fn send_while_another_thread_receives() {
    let (addr, server) = echo_server(ServerConfig::default());
    let ws = Arc::new(open(addr.port()));
    let rx = {
        let ws = ws.clone();
        std::thread::spawn(move || {
            let mut hdr = MsgHdr::default();
            let mut buf = [0u8; 64];
            let mut seen = Vec::new();
            while seen.len() < 20 {
                let n = ws
                    .recv(&mut hdr, &mut buf, Duration::from_secs(10))
                    .unwrap();
                if hdr.opcode == 2 {
                    seen.push(buf[..n].to_vec());
                }
            }
            seen
        })
    };
    for i in 0u8..20 {
        ws.send_binary(&[i; 8]).unwrap();
    }
    let seen = rx.join().unwrap();
    assert_eq!(seen, (0u8..20).map(|i| vec![i; 8]).collect::<Vec<_>>());
    Arc::try_unwrap(ws).unwrap().close();
    server.join().unwrap().unwrap();
}
