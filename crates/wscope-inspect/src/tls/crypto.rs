//! The cipher suites this analyzer decrypts and their key derivations: the TLS 1.3 key
//! schedule's `HKDF-Expand-Label` (RFC 8446 §7.1), the TLS 1.2 PRF (RFC 5246 §5) and the
//! record protection of both versions (RFC 8446 §5.2–5.3, RFC 5288, RFC 7905). All
//! cryptography is `ring`'s (`hkdf`, `hmac`, `aead`); this module only arranges its inputs.

use ring::{aead, hkdf, hmac};

/// The hash of a cipher suite (its PRF or HKDF hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
}

impl Hash {
    /// Output length in bytes.
    #[allow(clippy::len_without_is_empty)] // a hash length, never empty
    pub const fn len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
        }
    }

    const fn hkdf(self) -> hkdf::Algorithm {
        match self {
            Self::Sha256 => hkdf::HKDF_SHA256,
            Self::Sha384 => hkdf::HKDF_SHA384,
        }
    }

    const fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha384 => hmac::HMAC_SHA384,
        }
    }
}

/// The AEAD of a cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    /// AES-128-GCM.
    Aes128Gcm,
    /// AES-256-GCM.
    Aes256Gcm,
    /// ChaCha20-Poly1305.
    ChaCha20Poly1305,
}

impl Cipher {
    const fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            Self::Aes128Gcm => &aead::AES_128_GCM,
            Self::Aes256Gcm => &aead::AES_256_GCM,
            Self::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }

    /// Key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Self::Aes128Gcm => 16,
            Self::Aes256Gcm | Self::ChaCha20Poly1305 => 32,
        }
    }

    /// TLS 1.2 implicit IV length (RFC 5288: 4-byte salt; RFC 7905: 12 bytes).
    const fn tls12_fixed_iv_len(self) -> usize {
        match self {
            Self::Aes128Gcm | Self::Aes256Gcm => 4,
            Self::ChaCha20Poly1305 => 12,
        }
    }

    /// TLS 1.2 explicit nonce bytes at the front of each record (GCM: 8; ChaCha20: none).
    const fn tls12_explicit_len(self) -> usize {
        match self {
            Self::Aes128Gcm | Self::Aes256Gcm => 8,
            Self::ChaCha20Poly1305 => 0,
        }
    }
}

/// A cipher suite this analyzer decrypts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suite {
    /// The IANA code point.
    pub id: u16,
    /// The IANA name.
    pub name: &'static str,
    /// A TLS 1.3 suite.
    pub tls13: bool,
    /// Record protection.
    pub cipher: Cipher,
    /// PRF / HKDF hash.
    pub hash: Hash,
}

const fn s(id: u16, name: &'static str, tls13: bool, cipher: Cipher, hash: Hash) -> Suite {
    Suite {
        id,
        name,
        tls13,
        cipher,
        hash,
    }
}

/// Every suite decrypted: the three TLS 1.3 suites and the TLS 1.2 AEAD suites (ECDHE, DHE
/// and RSA key exchange; the key log gives the master secret, so the exchange does not matter).
pub const SUITES: &[Suite] = &[
    s(
        0x1301,
        "TLS_AES_128_GCM_SHA256",
        true,
        Cipher::Aes128Gcm,
        Hash::Sha256,
    ),
    s(
        0x1302,
        "TLS_AES_256_GCM_SHA384",
        true,
        Cipher::Aes256Gcm,
        Hash::Sha384,
    ),
    s(
        0x1303,
        "TLS_CHACHA20_POLY1305_SHA256",
        true,
        Cipher::ChaCha20Poly1305,
        Hash::Sha256,
    ),
    s(
        0xC02B,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        false,
        Cipher::Aes128Gcm,
        Hash::Sha256,
    ),
    s(
        0xC02C,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        false,
        Cipher::Aes256Gcm,
        Hash::Sha384,
    ),
    s(
        0xC02F,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        false,
        Cipher::Aes128Gcm,
        Hash::Sha256,
    ),
    s(
        0xC030,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        false,
        Cipher::Aes256Gcm,
        Hash::Sha384,
    ),
    s(
        0xCCA8,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        false,
        Cipher::ChaCha20Poly1305,
        Hash::Sha256,
    ),
    s(
        0xCCA9,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        false,
        Cipher::ChaCha20Poly1305,
        Hash::Sha256,
    ),
    s(
        0xCCAA,
        "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        false,
        Cipher::ChaCha20Poly1305,
        Hash::Sha256,
    ),
    s(
        0x009C,
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        false,
        Cipher::Aes128Gcm,
        Hash::Sha256,
    ),
    s(
        0x009D,
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        false,
        Cipher::Aes256Gcm,
        Hash::Sha384,
    ),
    s(
        0x009E,
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        false,
        Cipher::Aes128Gcm,
        Hash::Sha256,
    ),
    s(
        0x009F,
        "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        false,
        Cipher::Aes256Gcm,
        Hash::Sha384,
    ),
];

/// The suite with this code point, if decrypted.
pub fn suite(id: u16) -> Option<&'static Suite> {
    SUITES.iter().find(|s| s.id == id)
}

/// A byte count as a `ring` HKDF output length.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// `HKDF-Expand-Label(secret, label, context, len)` of RFC 8446 §7.1 into `out`.
pub fn hkdf_expand_label(hash: Hash, secret: &[u8], label: &[u8], context: &[u8], out: &mut [u8]) {
    let prk = hkdf::Prk::new_less_safe(hash.hkdf(), secret);
    let len = (out.len() as u16).to_be_bytes();
    let label_len = [(6 + label.len()) as u8];
    let ctx_len = [context.len() as u8];
    let info: [&[u8]; 6] = [&len, &label_len, b"tls13 ", label, &ctx_len, context];
    // Lengths here are at most 48 bytes: far within HKDF's 255 × hash length.
    let okm = prk
        .expand(&info, Len(out.len()))
        .expect("HKDF output within 255 hash lengths");
    okm.fill(out).expect("HKDF output within 255 hash lengths");
}

/// The TLS 1.2 PRF (RFC 5246 §5): `P_hash(secret, label + seed)` into `out`.
pub fn prf(hash: Hash, secret: &[u8], label: &[u8], seeds: &[&[u8]], out: &mut [u8]) {
    let key = hmac::Key::new(hash.hmac(), secret);
    // A(1) = HMAC(secret, label + seed)
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(label);
    for s in seeds {
        ctx.update(s);
    }
    let mut a = ctx.sign();
    let mut at = 0;
    while at < out.len() {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(label);
        for s in seeds {
            ctx.update(s);
        }
        let block = ctx.sign();
        let n = (out.len() - at).min(block.as_ref().len());
        out[at..at + n].copy_from_slice(&block.as_ref()[..n]);
        at += n;
        a = hmac::sign(&key, a.as_ref());
    }
}

/// Why a record did not decrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than its explicit nonce and tag.
    TooShort,
    /// The tag did not verify (wrong key, corrupted record, lost record).
    BadTag,
    /// TLS 1.3: the inner plaintext is all padding (no content type).
    NoContentType,
}

impl OpenError {
    /// A short description.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TooShort => "record shorter than its nonce and tag",
            Self::BadTag => "authentication failed (wrong key, corrupted or lost record)",
            Self::NoContentType => "TLS 1.3 inner plaintext without a content type",
        }
    }
}

/// One direction's record protection keys and sequence number.
pub struct RecordKeys {
    key: aead::LessSafeKey,
    iv: [u8; 12],
    cipher: Cipher,
    tls13: bool,
    seq: u64,
}

impl core::fmt::Debug for RecordKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecordKeys")
            .field("cipher", &self.cipher)
            .field("tls13", &self.tls13)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl RecordKeys {
    /// TLS 1.3 keys from a traffic secret (RFC 8446 §7.3).
    pub fn tls13(suite: &Suite, secret: &[u8]) -> Self {
        let mut key = [0u8; 32];
        let key = &mut key[..suite.cipher.key_len()];
        hkdf_expand_label(suite.hash, secret, b"key", b"", key);
        let mut iv = [0u8; 12];
        hkdf_expand_label(suite.hash, secret, b"iv", b"", &mut iv);
        Self::new(suite.cipher, key, iv, true)
    }

    /// TLS 1.2 keys of both directions (client's, server's) from the master secret
    /// (RFC 5246 §6.3; AEAD suites have no MAC keys).
    pub fn tls12_pair(
        suite: &Suite,
        master: &[u8],
        client_random: &[u8; 32],
        server_random: &[u8; 32],
    ) -> (Self, Self) {
        let kl = suite.cipher.key_len();
        let il = suite.cipher.tls12_fixed_iv_len();
        let mut block = [0u8; 2 * 32 + 2 * 12];
        let block = &mut block[..2 * kl + 2 * il];
        prf(
            suite.hash,
            master,
            b"key expansion",
            &[server_random, client_random],
            block,
        );
        let (ck, rest) = block.split_at(kl);
        let (sk, rest) = rest.split_at(kl);
        let (civ, siv) = rest.split_at(il);
        let iv = |b: &[u8]| {
            let mut iv = [0u8; 12];
            iv[..b.len()].copy_from_slice(b);
            iv
        };
        (
            Self::new(suite.cipher, ck, iv(civ), false),
            Self::new(suite.cipher, sk, iv(siv), false),
        )
    }

    fn new(cipher: Cipher, key: &[u8], iv: [u8; 12], tls13: bool) -> Self {
        let key = aead::UnboundKey::new(cipher.algorithm(), key).expect("key length of its suite");
        Self {
            key: aead::LessSafeKey::new(key),
            iv,
            cipher,
            tls13,
            seq: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn set_seq_for_test(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// The sequence number of the next record.
    pub const fn seq(&self) -> u64 {
        self.seq
    }

    /// Decrypts one record (`header`: its 5 bytes; `body`: its fragment, decrypted in place).
    /// Returns the content type and the range of `body` holding the plaintext.
    ///
    /// # Errors
    ///
    /// See [`OpenError`]; the sequence number does not advance then.
    pub fn open(
        &mut self,
        header: [u8; 5],
        body: &mut [u8],
    ) -> Result<(u8, core::ops::Range<usize>), OpenError> {
        let tag = aead::MAX_TAG_LEN;
        let mut nonce = self.iv;
        // TLS 1.3: the record header; TLS 1.2: sequence, type, version, plaintext length.
        let mut aad = [0u8; 13];
        let (start, aad_len): (usize, usize);
        if self.tls13 {
            for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
                *n ^= s;
            }
            start = 0;
            aad[..5].copy_from_slice(&header);
            aad_len = 5;
        } else {
            let explicit = self.cipher.tls12_explicit_len();
            if body.len() < explicit + tag {
                return Err(OpenError::TooShort);
            }
            if explicit > 0 {
                nonce[4..].copy_from_slice(&body[..8]);
            } else {
                for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
                    *n ^= s;
                }
            }
            start = explicit;
            let plain_len = (body.len() - explicit - tag) as u16;
            aad[..8].copy_from_slice(&self.seq.to_be_bytes());
            aad[8..11].copy_from_slice(&header[..3]);
            aad[11..].copy_from_slice(&plain_len.to_be_bytes());
            aad_len = 13;
        }
        if body.len() < start + tag {
            return Err(OpenError::TooShort);
        }
        let plain_len = self
            .key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(&aad[..aad_len]),
                &mut body[start..],
            )
            .map_err(|_| OpenError::BadTag)?
            .len();
        self.seq = self.seq.wrapping_add(1);
        if !self.tls13 {
            return Ok((header[0], start..start + plain_len));
        }
        // TLSInnerPlaintext: content, type, zero padding.
        let inner = &body[..plain_len];
        let Some(last) = inner.iter().rposition(|&b| b != 0) else {
            return Err(OpenError::NoContentType);
        };
        Ok((inner[last], 0..last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::tests::unhex;

    /// The TLS 1.2 PRF test vectors commonly used to check implementations (published with
    /// the IETF TLS WG discussion of RFC 5246's PRF, SHA-256 and SHA-384 variants).
    #[test]
    fn prf_sha256_vector() {
        let secret = unhex("9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35");
        let seed = unhex("a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c");
        let mut out = [0u8; 100];
        prf(Hash::Sha256, &secret, b"test label", &[&seed], &mut out);
        let want = unhex(
            "e3 f2 29 ba 72 7b e1 7b 8d 12 26 20 55 7c d4 53 c2 aa b2 1d 07 c3 d4 95 32 9b 52 d4 \
             e6 1e db 5a 6b 30 17 91 e9 0d 35 c9 c9 a4 6b 4e 14 ba f9 af 0f a0 22 f7 07 7d ef 17 \
             ab fd 37 97 c0 56 4b ab 4f bc 91 66 6e 9d ef 9b 97 fc e3 4f 79 67 89 ba a4 80 82 d1 \
             22 ee 42 c5 a7 2e 5a 51 10 ff f7 01 87 34 7b 66",
        );
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn prf_sha384_vector() {
        let secret = unhex("b8 0b 73 3d 6c ee fc dc 71 56 6e a4 8e 55 67 df");
        let seed = unhex("cd 66 5c f6 a8 44 7d d6 ff 8b 27 55 5e db 74 65");
        let mut out = [0u8; 148];
        prf(Hash::Sha384, &secret, b"test label", &[&seed], &mut out);
        let want = unhex(
            "7b 0c 18 e9 ce d4 10 ed 18 04 f2 cf a3 4a 33 6a 1c 14 df fb 49 00 bb 5f d7 94 21 07 \
             e8 1c 83 cd e9 ca 0f aa 60 be 9f e3 4f 82 b1 23 3c 91 46 a0 e5 34 cb 40 0f ed 27 00 \
             88 4f 9d c2 36 f8 0e dd 8b fa 96 11 44 c9 e8 d7 92 ec a7 22 a7 b3 2f c3 d4 16 d4 73 \
             eb c2 c5 fd 4a bf da d0 5d 91 84 25 9b 5b f8 cd 4d 90 fa 0d 31 e2 de c4 79 e4 f1 a2 \
             60 66 f2 ee a9 a6 92 36 a3 e5 26 55 c9 e9 ae e6 91 c8 f3 a2 68 54 30 8d 5e aa 3b e8 \
             5e 09 90 70 3d 73 e5 6f",
        );
        assert_eq!(&out[..], &want[..]);
    }
}
