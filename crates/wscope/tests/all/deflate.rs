//! permessage-deflate (RFC 7692) between our client and our server, both drivers.

use std::io::{Read, Write};

use futures_util::{SinkExt, StreamExt};
use wscope::blocking;
use wscope::config::{ClientConfig, DeflateConfig, ServerConfig};
use wscope::{CloseCode, Message, OpCode};

use crate::util::{echo_server, payload};

fn compressing_server() -> ServerConfig {
    ServerConfig::default().deflate(DeflateConfig::default())
}

#[test]
fn blocking_round_trip_with_every_parameter_combination() {
    let text = "a fairly compressible sentence, repeated. ".repeat(500);
    let big = payload(1 << 20);
    for (snct, cnct, sbits, cbits) in [
        (false, false, 15, 15),
        (true, true, 9, 9),
        (true, false, 10, 15),
        (false, true, 15, 11),
    ] {
        let wishes = DeflateConfig::default()
            .server_no_context_takeover(snct)
            .client_no_context_takeover(cnct)
            .server_max_window_bits(sbits)
            .client_max_window_bits(cbits);
        let (addr, server) = echo_server(compressing_server());
        let cfg = ClientConfig::from_url(&format!("ws://{addr}/"))
            .unwrap()
            .deflate(wishes);
        let (mut ws, resp) = blocking::connect_with(&cfg).unwrap();
        let agreed = resp
            .headers()
            .get_str("Sec-WebSocket-Extensions")
            .unwrap()
            .to_owned();
        assert!(agreed.starts_with("permessage-deflate"), "{agreed}");
        assert_eq!(
            agreed.contains("server_no_context_takeover"),
            snct,
            "{agreed}"
        );
        for _ in 0..3 {
            ws.send(Message::text(text.clone())).unwrap();
            assert_eq!(ws.read().unwrap(), Message::text(text.clone()));
        }
        ws.send(Message::binary(big.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::binary(big.clone()));
        ws.send_frame(OpCode::TEXT, b"frag", false).unwrap();
        ws.send_ping(b"mid").unwrap();
        ws.send_frame(OpCode::CONTINUATION, b"mented", true)
            .unwrap();
        assert_eq!(ws.read().unwrap(), Message::pong(b"mid".to_vec()));
        assert_eq!(ws.read().unwrap(), Message::text("fragmented"));
        ws.close(CloseCode::NORMAL, "").unwrap();
        server.join().unwrap().unwrap();
    }
}

#[test]
fn server_without_deflate_declines_and_traffic_is_plain() {
    let (addr, server) = echo_server(ServerConfig::default());
    let cfg = ClientConfig::from_url(&format!("ws://{addr}/"))
        .unwrap()
        .deflate(DeflateConfig::default());
    let (mut ws, resp) = blocking::connect_with(&cfg).unwrap();
    assert!(resp.headers().get("Sec-WebSocket-Extensions").is_none());
    ws.send(Message::text("plain")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("plain"));
    ws.close(CloseCode::NORMAL, "").unwrap();
    server.join().unwrap().unwrap();
}

#[test]
fn inflation_bomb_is_refused_with_1009() {
    // The server allows 1 MiB messages; the client sends 32 MiB of zeros compressed (~32 KiB).
    let mut scfg = compressing_server();
    scfg.ws.max_message_len = 1 << 20;
    let (addr, server) = echo_server(scfg);
    let cfg = ClientConfig::from_url(&format!("ws://{addr}/"))
        .unwrap()
        .deflate(DeflateConfig::default());
    let (mut ws, _) = blocking::connect_with(&cfg).unwrap();
    ws.send(Message::binary(vec![0u8; 32 << 20])).unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(Some(c))) => {
                assert_eq!(c.code, CloseCode::MESSAGE_TOO_BIG);
                break;
            }
            Ok(Message::Close(None)) => panic!("close without status"),
            Ok(_) => {}
            Err(e) => {
                assert_eq!(
                    ws.close_status().map(|s| s.remote),
                    Some(CloseCode::MESSAGE_TOO_BIG),
                    "{e}"
                );
                break;
            }
        }
    }
    let _ = server.join().unwrap();
}

#[test]
fn raw_offer_gets_rfc7692_response() {
    let (addr, server) = echo_server(compressing_server());
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Extensions: permessage-deflate; foo, permessage-deflate; server_max_window_bits=8, \
          permessage-deflate; client_no_context_takeover; server_max_window_bits=12\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    // The bogus offer and the 8-bit one are declined; the third is accepted as asked.
    assert!(
        head.contains(
            "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_max_window_bits=12\r\n"
        ),
        "{head}"
    );
    drop(s);
    let _ = server.join().unwrap();
}

#[test]
fn tokio_round_trip() {
    let rt = crate::util::current_thread_rt();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let cfg = compressing_server();
            let mut ws = wscope::tokio::accept_with_config(tcp, &cfg).await.unwrap();
            while let Some(Ok(m)) = ws.next().await {
                if matches!(m, Message::Text(_) | Message::Binary(_)) {
                    ws.send(m).await.unwrap();
                }
            }
        });
        let cfg = ClientConfig::from_url(&format!("ws://{addr}/"))
            .unwrap()
            .deflate(DeflateConfig::default().client_no_context_takeover(true));
        let mut ws = wscope::tokio::connect_with(&cfg).await.unwrap();
        let text = "tokio compresses too ".repeat(300);
        for _ in 0..4 {
            ws.send(Message::text(text.clone())).await.unwrap();
            assert_eq!(
                ws.next().await.unwrap().unwrap(),
                Message::text(text.clone())
            );
        }
        ws.close(CloseCode::NORMAL, "done").await.unwrap();
        server.await.unwrap();
    });
}

/// The seed's partial receive with permessage-deflate on: every inflated byte comes out,
/// piece by piece, even when one piece of compressed input inflates to far more than the
/// caller's buffer (it handed out only the first buffer's worth and dropped the rest).
#[test]
fn partial_receive_of_compressed_messages_loses_nothing() {
    let text = "a fairly compressible sentence, repeated. ".repeat(2000);
    let (addr, server) = echo_server(compressing_server());
    let cfg = ClientConfig::from_url(&format!("ws://{addr}/"))
        .unwrap()
        .deflate(DeflateConfig::default());
    let (mut ws, _) = blocking::connect_with(&cfg).unwrap();
    for _ in 0..2 {
        ws.send(Message::text(text.clone())).unwrap();
        let mut got = Vec::new();
        for (info, bytes) in crate::util::frame_pieces(&mut ws, 64) {
            assert_eq!(info.opcode, OpCode::TEXT);
            got.extend_from_slice(&bytes);
        }
        assert_eq!(got.len(), text.len());
        assert!(got == text.as_bytes());
    }
    ws.close(CloseCode::NORMAL, "").unwrap();
    server.join().unwrap().unwrap();
}
