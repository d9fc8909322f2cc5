//! The client through an HTTP CONNECT proxy with basic auth (a tiny proxy in the test).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use wscope::blocking;
use wscope::config::{ClientConfig, ServerConfig};
use wscope::proxy::Proxy;
use wscope::{CloseCode, Message};

use crate::util::{echo_server, read_head};

/// Accepts one CONNECT, checks the credentials, then pipes bytes both ways.
fn proxy_once(expect_auth: &'static str) -> (u16, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        let head = read_head(&mut client);
        let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
        if !head.contains(expect_auth) {
            client
                .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                .unwrap();
            return head;
        }
        let upstream = TcpStream::connect(&target).unwrap();
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .unwrap();
        let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        let up = std::thread::spawn(move || pipe(&mut c2, &mut u2));
        let (mut c, mut u) = (client, upstream);
        pipe(&mut u, &mut c);
        let _ = up.join();
        head
    });
    (port, t)
}

fn pipe(from: &mut TcpStream, to: &mut TcpStream) {
    let mut buf = [0u8; 16384];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = to.shutdown(std::net::Shutdown::Write);
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

#[test]
fn connect_through_proxy_with_basic_auth() {
    let (addr, server) = echo_server(ServerConfig::default());
    let (proxy_port, proxy) = proxy_once("Proxy-Authorization: Basic dXNlcjpwYXNz");
    let cfg = ClientConfig::new("127.0.0.1", addr.port())
        .proxy(Proxy::new("127.0.0.1", proxy_port).with_basic_auth("user", "pass"));
    let (mut ws, _) = blocking::connect_with(&cfg).unwrap();
    ws.send_text("via proxy").unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("via proxy"));
    ws.close(CloseCode::NORMAL, "").unwrap();
    server.join().unwrap().unwrap();
    let head = proxy.join().unwrap();
    assert!(head.starts_with(&format!("CONNECT 127.0.0.1:{} HTTP/1.1\r\n", addr.port())));
}

#[test]
fn proxy_refusal_is_reported() {
    let (proxy_port, proxy) = proxy_once("never matches");
    let cfg = ClientConfig::new("127.0.0.1", 1).proxy(Proxy::new("127.0.0.1", proxy_port));
    let err = blocking::connect_with(&cfg).unwrap_err();
    assert!(
        matches!(
            err,
            wscope::Error::Handshake(wscope::HandshakeError::Proxy { status: 407 })
        ),
        "{err:?}"
    );
    proxy.join().unwrap();
}
