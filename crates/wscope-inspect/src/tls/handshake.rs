//! The few handshake fields decryption needs, read from handshake message bodies: the
//! ClientHello's random, SNI, offered ALPN and early data; the ServerHello's random, version
//! and cipher suite (and whether it is a HelloRetryRequest); the ALPN of EncryptedExtensions
//! (TLS 1.3) or the ServerHello (TLS 1.2).
//!
//! Written by hand rather than with `tls-parser`: these are six fields behind bounds-checked
//! length prefixes, `tls-parser` would add a second `nom` major version and `phf` to the
//! build, and its full-message parsing (every extension into a typed value) costs more than
//! the analyzer needs per connection. Every read is bounds checked; a malformed message is an
//! `Err`, never a panic.

/// The HelloRetryRequest's special ServerHello.random (RFC 8446 §4.1.3).
pub const HRR_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
];

/// Handshake message types used.
pub mod msg {
    /// ClientHello.
    pub const CLIENT_HELLO: u8 = 1;
    /// ServerHello (and HelloRetryRequest).
    pub const SERVER_HELLO: u8 = 2;
    /// EncryptedExtensions (TLS 1.3).
    pub const ENCRYPTED_EXTENSIONS: u8 = 8;
    /// Finished.
    pub const FINISHED: u8 = 20;
    /// KeyUpdate (TLS 1.3).
    pub const KEY_UPDATE: u8 = 24;
}

const EXT_SNI: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_EARLY_DATA: u16 = 42;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// A malformed handshake message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// A bounds-checked reader.
struct Rd<'a>(&'a [u8]);

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed(what));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], Malformed> {
        let n = self.u8(what)?;
        self.take(usize::from(n), what)
    }
    fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], Malformed> {
        let n = self.u16(what)?;
        self.take(usize::from(n), what)
    }
}

/// What a ClientHello says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// ClientHello.random: the key log's index.
    pub random: [u8; 32],
    /// The server name (SNI), if sent and printable.
    pub sni: Option<String>,
    /// Offered ALPN protocols.
    pub alpn: Vec<String>,
    /// The client offered 0-RTT data.
    pub early_data: bool,
}

/// What a ServerHello says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerHello {
    /// ServerHello.random.
    pub random: [u8; 32],
    /// The negotiated version (`supported_versions` when present, else the legacy field).
    pub version: u16,
    /// The chosen cipher suite.
    pub suite: u16,
    /// This is a HelloRetryRequest.
    pub retry: bool,
}

/// Iterates the extensions block `(type, data)`.
fn extensions<'a>(
    mut r: Rd<'a>,
    mut f: impl FnMut(u16, &'a [u8]) -> Result<(), Malformed>,
) -> Result<(), Malformed> {
    if r.0.is_empty() {
        return Ok(());
    }
    let mut ext = Rd(r.vec16("extensions length")?);
    while !ext.0.is_empty() {
        let ty = ext.u16("extension type")?;
        let data = ext.vec16("extension length")?;
        f(ty, data)?;
    }
    Ok(())
}

fn printable(b: &[u8]) -> Option<String> {
    let s = core::str::from_utf8(b).ok()?;
    (!s.is_empty() && s.len() <= 255 && s.bytes().all(|c| c.is_ascii_graphic()))
        .then(|| s.to_owned())
}

fn alpn_list(data: &[u8]) -> Result<Vec<String>, Malformed> {
    let mut r = Rd(data);
    let mut list = Rd(r.vec16("ALPN list")?);
    let mut out = Vec::new();
    while !list.0.is_empty() {
        let p = list.vec8("ALPN protocol")?;
        // At most 16 protocols kept.
        if out.len() < 16 {
            out.push(String::from_utf8_lossy(p).into_owned());
        }
    }
    Ok(out)
}

/// Parses a ClientHello body (after the 4-byte handshake header).
///
/// # Errors
///
/// A field runs past the end.
pub fn client_hello(body: &[u8]) -> Result<ClientHello, Malformed> {
    let mut r = Rd(body);
    r.u16("legacy_version")?;
    let mut ch = ClientHello::default();
    ch.random.copy_from_slice(r.take(32, "random")?);
    r.vec8("session id")?;
    r.vec16("cipher suites")?;
    r.vec8("compression methods")?;
    extensions(r, |ty, data| {
        match ty {
            EXT_SNI => {
                let mut r = Rd(data);
                let mut list = Rd(r.vec16("server name list")?);
                while !list.0.is_empty() {
                    let kind = list.u8("server name type")?;
                    let name = list.vec16("server name")?;
                    if kind == 0 && ch.sni.is_none() {
                        ch.sni = printable(name);
                    }
                }
            }
            EXT_ALPN => ch.alpn = alpn_list(data)?,
            EXT_EARLY_DATA => ch.early_data = true,
            _ => {}
        }
        Ok(())
    })?;
    Ok(ch)
}

/// Parses a ServerHello body; also returns the ALPN it selected (TLS 1.2 carries it here).
///
/// # Errors
///
/// A field runs past the end.
pub fn server_hello(body: &[u8]) -> Result<(ServerHello, Option<String>), Malformed> {
    let mut r = Rd(body);
    let legacy = r.u16("legacy_version")?;
    let mut random = [0u8; 32];
    random.copy_from_slice(r.take(32, "random")?);
    r.vec8("session id")?;
    let suite = r.u16("cipher suite")?;
    r.u8("compression method")?;
    let mut version = legacy;
    let mut alpn = None;
    extensions(r, |ty, data| {
        match ty {
            EXT_SUPPORTED_VERSIONS => version = Rd(data).u16("supported_versions")?,
            EXT_ALPN => alpn = alpn_list(data)?.into_iter().next(),
            _ => {}
        }
        Ok(())
    })?;
    Ok((
        ServerHello {
            random,
            version,
            suite,
            retry: random == HRR_RANDOM,
        },
        alpn,
    ))
}

/// The ALPN protocol an EncryptedExtensions body selects, and whether it accepts early data.
///
/// # Errors
///
/// A field runs past the end.
pub fn encrypted_extensions(body: &[u8]) -> Result<(Option<String>, bool), Malformed> {
    let mut alpn = None;
    let mut early = false;
    extensions(Rd(body), |ty, data| {
        match ty {
            EXT_ALPN => alpn = alpn_list(data)?.into_iter().next(),
            EXT_EARLY_DATA => early = true,
            _ => {}
        }
        Ok(())
    })?;
    Ok((alpn, early))
}

/// Handshake messages of one direction out of record payloads: the messages decryption needs
/// (hellos, EncryptedExtensions, Finished, KeyUpdate) are gathered whole, up to
/// [`MAX_KEPT`] bytes; others (certificates, tickets) are skipped by their length, never held.
#[derive(Debug, Default)]
pub struct Reader {
    hdr: [u8; 4],
    hdr_len: usize,
    /// Body bytes still owed by the current message.
    need: usize,
    keep: bool,
    body: Vec<u8>,
}

/// The largest handshake message gathered (a ClientHello with post-quantum key shares is a
/// few KiB).
pub const MAX_KEPT: usize = 1 << 16;

impl Reader {
    /// Whether a message is partly read (a key change must not fall inside one).
    pub const fn is_mid_message(&self) -> bool {
        self.hdr_len > 0
    }

    /// Feeds handshake-content bytes; calls `f(type, body)` per whole message (`body` empty
    /// for skipped types).
    ///
    /// # Errors
    ///
    /// A kept message longer than [`MAX_KEPT`], or the error `f` returns.
    pub fn push<E>(
        &mut self,
        mut data: &[u8],
        mut f: impl FnMut(u8, &[u8]) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<Malformed>,
    {
        while !data.is_empty() {
            if self.hdr_len < 4 {
                let n = (4 - self.hdr_len).min(data.len());
                self.hdr[self.hdr_len..self.hdr_len + n].copy_from_slice(&data[..n]);
                self.hdr_len += n;
                data = &data[n..];
                if self.hdr_len < 4 {
                    return Ok(());
                }
                let len = u32::from_be_bytes([0, self.hdr[1], self.hdr[2], self.hdr[3]]) as usize;
                self.keep = matches!(
                    self.hdr[0],
                    msg::CLIENT_HELLO
                        | msg::SERVER_HELLO
                        | msg::ENCRYPTED_EXTENSIONS
                        | msg::KEY_UPDATE
                );
                if self.keep && len > MAX_KEPT {
                    return Err(E::from(Malformed("handshake message over 64 KiB")));
                }
                self.need = len;
                self.body.clear();
            }
            let n = self.need.min(data.len());
            if self.keep {
                self.body.extend_from_slice(&data[..n]);
            }
            self.need -= n;
            data = &data[n..];
            if self.need == 0 {
                self.hdr_len = 0;
                let body = core::mem::take(&mut self.body);
                let r = f(self.hdr[0], &body);
                self.body = body;
                r?;
                if self.body.capacity() > 1 << 14 {
                    self.body = Vec::new();
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch_bytes() -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend([7u8; 32]);
        b.push(0);
        b.extend([0, 2, 0x13, 1]);
        b.extend([1, 0]);
        let mut ext = Vec::new();
        // SNI "example.com"
        let name = b"example.com";
        ext.extend([0, 0]);
        ext.extend(((name.len() + 5) as u16).to_be_bytes());
        ext.extend(((name.len() + 3) as u16).to_be_bytes());
        ext.push(0);
        ext.extend((name.len() as u16).to_be_bytes());
        ext.extend(name);
        // ALPN h2, http/1.1
        ext.extend([0, 16, 0, 14, 0, 12, 2, b'h', b'2', 8]);
        ext.extend(b"http/1.1");
        ext.extend([0, 42, 0, 0]);
        b.extend((ext.len() as u16).to_be_bytes());
        b.extend(ext);
        b
    }

    #[test]
    fn client_hello_fields() {
        let ch = client_hello(&ch_bytes()).unwrap();
        assert_eq!(ch.random, [7; 32]);
        assert_eq!(ch.sni.as_deref(), Some("example.com"));
        assert_eq!(ch.alpn, ["h2", "http/1.1"]);
        assert!(ch.early_data);
        // Every truncation is an error, never a panic.
        let b = ch_bytes();
        for n in 0..b.len() {
            let _ = client_hello(&b[..n]);
        }
        assert!(client_hello(&b[..40]).is_err());
    }

    #[test]
    fn reader_keeps_wanted_messages_and_skips_others() {
        let mut stream = vec![11, 0, 0, 3, 1, 2, 3]; // Certificate: skipped
        stream.extend([24, 0, 0, 1, 0]); // KeyUpdate
        stream.extend([20, 0, 0, 2, 9, 9]); // Finished
        let mut seen = Vec::new();
        let mut r = Reader::default();
        for b in &stream {
            r.push::<Malformed>(core::slice::from_ref(b), |t, body| {
                seen.push((t, body.to_vec()));
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(seen, [(11, vec![]), (24, vec![0]), (20, vec![])]);
        assert!(!r.is_mid_message());
        let big = [1u8, 0x02, 0, 0];
        assert!(r.push::<Malformed>(&big, |_, _| Ok(())).is_err());
    }
}
