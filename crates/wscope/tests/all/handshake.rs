//! Malformed handshakes get 400 / 426 / 431 and the socket closed; the slowloris client is
//! cut off by the handshake timeout.

use core::time::Duration;
use std::io::Write;
use std::net::TcpStream;

use wscope::config::ServerConfig;
use wscope::{Error, HandshakeError};

use crate::util::{one_shot_server, read_to_end};

/// Sends `request` to a server that accepts once; returns (response bytes until EOF, server result).
fn exchange(cfg: ServerConfig, request: &[u8]) -> (String, Result<(), Error>) {
    let (addr, server) = one_shot_server(cfg, |server| server.accept().map(|_| ()));
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let response = read_to_end(&mut s);
    (
        String::from_utf8_lossy(&response).into_owned(),
        server.join().unwrap(),
    )
}

fn status_of(response: &str) -> &str {
    response.get(9..12).unwrap_or("")
}

#[test]
fn missing_key_is_400() {
    let (resp, r) = exchange(
        ServerConfig::default(),
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert_eq!(status_of(&resp), "400", "{resp}");
    match r {
        Err(Error::Handshake(HandshakeError::Proto(e))) => assert_eq!(e.http_status(), 400),
        other => panic!("{other:?}"),
    }
}

#[test]
fn not_http_is_400() {
    let (resp, r) = exchange(ServerConfig::default(), b"SSH-2.0-OpenSSH_9.6\r\n");
    assert_eq!(status_of(&resp), "400", "{resp}");
    assert!(resp.contains("This is a WebSocket endpoint"), "{resp}");
    assert!(matches!(r, Err(Error::Handshake(_))));
}

/// A TLS client on a plain port is closed at once, without an HTTP answer it could not read
/// (and without waiting for the end of a head that never comes).
#[test]
fn a_tls_client_hello_is_closed_without_an_answer() {
    let (resp, r) = exchange(ServerConfig::default(), b"\x16\x03\x01\x02\x00\x01");
    assert_eq!(resp, "");
    match r {
        Err(Error::Handshake(HandshakeError::Proto(e))) => {
            assert_eq!(e, wscope::proto::handshake::UpgradeError::TlsClientHello);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn post_is_400() {
    let (resp, _) = exchange(
        ServerConfig::default(),
        b"POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert_eq!(status_of(&resp), "400", "{resp}");
}

#[test]
fn wrong_version_is_426_with_supported_version() {
    let (resp, r) = exchange(
        ServerConfig::default(),
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    );
    assert_eq!(status_of(&resp), "426", "{resp}");
    assert!(resp.contains("Sec-WebSocket-Version: 13"), "{resp}");
    assert!(matches!(r, Err(Error::Handshake(HandshakeError::Proto(_)))));
}

#[test]
fn oversized_head_is_431() {
    let cfg = ServerConfig::default().max_header_size(1024);
    let mut req = b"GET / HTTP/1.1\r\nHost: x\r\nX-Filler: ".to_vec();
    req.extend(core::iter::repeat_n(b'a', 4000));
    req.extend_from_slice(b"\r\n\r\n");
    let (resp, r) = exchange(cfg, &req);
    assert_eq!(status_of(&resp), "431", "{resp}");
    match r {
        Err(Error::Handshake(e)) => assert_eq!(e.http_status(), Some(431)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn slowloris_is_cut_off() {
    let cfg = ServerConfig::default().handshake_timeout(Duration::from_millis(300));
    let (addr, server) = one_shot_server(cfg, |server| server.accept().map(|_| ()));
    let mut s = TcpStream::connect(addr).unwrap();
    // One header byte at a time, forever (bounded here): the server must give up first, and
    // the socket is closed then (reads end).
    crate::util::trickle_until_cut_off(&mut s, || server.is_finished());
    assert!(matches!(server.join().unwrap(), Err(Error::Timeout)));
}

#[test]
fn client_rejects_bad_accept() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _ = crate::util::read_head(&mut s);
        s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        )
        .unwrap();
    });
    let err = wscope::blocking::connect(&format!("ws://{addr}/")).unwrap_err();
    assert!(
        matches!(err, Error::Handshake(HandshakeError::Proto(_))),
        "{err:?}"
    );
    t.join().unwrap();
}
