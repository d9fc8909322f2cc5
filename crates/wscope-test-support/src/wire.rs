//! WebSocket bytes for tests, built by hand from RFC 6455 (not with the core's encoder, which
//! the tests check): frames, and the opening handshake of RFC 6455 §1.3.

/// The example key of RFC 6455 §1.3.
pub const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// The `Sec-WebSocket-Accept` value that answers [`RFC_KEY`].
pub const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// One frame: FIN, RSV1 (the permessage-deflate bit), the 4-bit opcode `op`, the masking key
/// if any (the payload is then masked), and the shortest length form for `payload`.
pub fn frame(fin: bool, rsv1: bool, op: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(14 + payload.len());
    out.push((u8::from(fin) << 7) | (u8::from(rsv1) << 6) | (op & 0x0f));
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(m | n as u8),
        n @ 126..=0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A client's upgrade request for `path` on `host` with [`RFC_KEY`], version 13 and, when
/// given, a `Sec-WebSocket-Extensions` offer.
pub fn upgrade_request(path: &str, host: &str, extensions: Option<&str>) -> Vec<u8> {
    let mut s = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(ext) = extensions {
        s.push_str(&format!("Sec-WebSocket-Extensions: {ext}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// The server's `101` answer to [`upgrade_request`] ([`RFC_ACCEPT`]) and, when given, the
/// agreed `Sec-WebSocket-Extensions`.
pub fn upgrade_response(extensions: Option<&str>) -> Vec<u8> {
    let mut s = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {RFC_ACCEPT}\r\n"
    );
    if let Some(ext) = extensions {
        s.push_str(&format!("Sec-WebSocket-Extensions: {ext}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_examples() {
        // §5.7: a single-frame unmasked text message, and the masked one.
        assert_eq!(
            frame(true, false, 1, None, b"Hello"),
            [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
        assert_eq!(
            frame(true, false, 1, Some([0x37, 0xfa, 0x21, 0x3d]), b"Hello"),
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        // 256 bytes: 16-bit length; 65536 bytes: 64-bit length.
        assert_eq!(
            frame(true, false, 2, None, &[0; 256])[..4],
            [0x82, 0x7e, 0x01, 0x00]
        );
        assert_eq!(
            frame(true, false, 2, None, &[0; 65536])[..10],
            [0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]
        );
        assert_eq!(frame(false, true, 1, None, b"")[0], 0x41);
    }

    #[test]
    fn handshake_texts() {
        let req =
            String::from_utf8(upgrade_request("/x", "h", Some("permessage-deflate"))).unwrap();
        assert!(req.starts_with("GET /x HTTP/1.1\r\nHost: h\r\n"));
        assert!(req.contains("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
        assert!(req.ends_with("Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"));
        let resp = String::from_utf8(upgrade_response(None)).unwrap();
        assert!(resp.ends_with("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"));
    }
}
