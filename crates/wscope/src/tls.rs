//! TLS through rustls with the ring provider.
//!
//! Clients verify the server by default against the webpki (Mozilla) roots; [`TlsConfig`]
//! can replace them with a CA from PEM, add a client certificate, override the SNI name, or,
//! only when asked explicitly, turn verification off ([`TlsConfig::insecure`]). Servers load
//! a certificate chain and key from PEM ([`server_config_from_pem`]).
//!
//! A certificate given as a CA is also *pinned*: a server that presents exactly that
//! certificate is trusted even where path validation refuses it, as curl does. That is what
//! makes the common self-signed recipe work (`openssl req -x509 -newkey rsa:2048 -nodes
//! -subj /CN=localhost -addext subjectAltName=DNS:localhost` makes a `CA:TRUE` certificate,
//! which path validation refuses as a server certificate). The name is still checked, and
//! so is the handshake's signature with the certificate's key.
//!
//! [`CertificateProblem`] says, in the terms a user acts on, why a server's certificate was
//! refused.
//!
//! Key logs: both sides can write their TLS secrets in the NSS key log format
//! ([`TlsConfig::key_log`], [`server_config_with_key_log`], [`KeyLogWriter`] for a file,
//! [`env_key_log`] for `SSLKEYLOGFILE`), so that `wscope inspect --keylog` (or Wireshark)
//! decrypts a capture of the connections.

use core::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};

use crate::error::{Error, Result};

/// What receives the TLS secrets of a connection (rustls' trait, re-exported).
pub use rustls::KeyLog;

/// The ring crypto provider.
///
/// rustls 0.23.48 deprecates `ring::default_provider` because ring has no post-quantum key
/// exchange (X25519MLKEM768); that needs the aws-lc-rs provider, a large C build this crate
/// does not take on. The ring provider is still supported and offers X25519, P-256 and P-384,
/// so the deprecation is allowed here, at the one place the provider is made.
pub fn provider() -> Arc<CryptoProvider> {
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    Arc::new(provider)
}

/// Client-side TLS settings (the embedded-SDK-style API's `ssl_wrap_cfg_t`).
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct TlsConfig {
    /// Trusted CAs in PEM. When set, these replace the webpki roots (unless
    /// [`TlsConfig::also_webpki_roots`] is on). Each certificate is also pinned: a server
    /// presenting exactly one of them is trusted (its name is still checked), even a
    /// self-signed `CA:TRUE` one.
    pub ca_pem: Option<Vec<u8>>,
    /// Keep the webpki roots even when `ca_pem` is set.
    pub also_webpki_roots: bool,
    /// Client certificate chain (PEM) for mutual TLS; needs `client_key_pem`.
    pub client_cert_pem: Option<Vec<u8>>,
    /// Private key (PEM, PKCS#8, PKCS#1 or SEC1) of the client certificate.
    pub client_key_pem: Option<Vec<u8>>,
    /// Server name to send in SNI and verify, instead of the connection's host.
    pub sni: Option<String>,
    /// Do not verify the server's certificate at all. Dangerous: only when asked explicitly.
    pub insecure: bool,
    /// A complete rustls configuration; overrides every other field when set.
    pub rustls: Option<Arc<ClientConfig>>,
    /// Where the TLS secrets of each connection go, in the NSS key log format that
    /// Wireshark and `wscope inspect --keylog` read ([`KeyLogWriter`] for a file,
    /// [`env_key_log`] for `SSLKEYLOGFILE`). Anyone with the file can decrypt the captured
    /// traffic: for debugging only. Default: none.
    pub key_log: Option<Arc<dyn KeyLog>>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("also_webpki_roots", &self.also_webpki_roots)
            .field("client_cert", &self.client_cert_pem.is_some())
            .field("sni", &self.sni)
            .field("insecure", &self.insecure)
            .field("rustls", &self.rustls.is_some())
            .field("key_log", &self.key_log.is_some())
            .finish()
    }
}

impl TlsConfig {
    /// Verification against the webpki roots, no client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the CAs in `pem` instead of the webpki roots.
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Trusts the CAs in the PEM file at `path` instead of the webpki roots. A file that
    /// cannot be read is an [`Error::File`] naming it.
    pub fn with_ca_file(self, path: impl AsRef<Path>) -> Result<Self> {
        Ok(self.with_ca_pem(read_file(path.as_ref())?))
    }

    /// Presents a client certificate (chain and key in PEM).
    pub fn with_client_auth_pem(
        mut self,
        cert: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.client_cert_pem = Some(cert.into());
        self.client_key_pem = Some(key.into());
        self
    }

    /// Sends and verifies `name` instead of the host connected to.
    pub fn with_sni(mut self, name: impl Into<String>) -> Self {
        self.sni = Some(name.into());
        self
    }

    /// Turns certificate verification off. Anyone on the path can read and change the
    /// traffic: use only for tests or when explicitly asked.
    pub fn insecure(mut self) -> Self {
        self.insecure = true;
        self
    }

    /// Writes the connection secrets to `log` (see [`TlsConfig::key_log`]).
    pub fn with_key_log(mut self, log: Arc<dyn KeyLog>) -> Self {
        self.key_log = Some(log);
        self
    }

    /// Builds the rustls client configuration.
    pub fn build(&self) -> Result<Arc<ClientConfig>> {
        let cfg = self.build_without_key_log()?;
        Ok(match &self.key_log {
            None => cfg,
            Some(log) => {
                let mut c = (*cfg).clone();
                c.key_log = log.clone();
                Arc::new(c)
            }
        })
    }

    fn build_without_key_log(&self) -> Result<Arc<ClientConfig>> {
        if let Some(cfg) = &self.rustls {
            return Ok(cfg.clone());
        }
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        } else {
            let mut roots = RootCertStore::empty();
            if self.ca_pem.is_none() || self.also_webpki_roots {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            match &self.ca_pem {
                None => builder.with_root_certificates(roots),
                Some(pem) => {
                    let pinned = parse_certs(pem)?;
                    if pinned.is_empty() {
                        return Err(pem_error("no certificate in the CA PEM"));
                    }
                    for c in &pinned {
                        roots.add(c.clone())?;
                    }
                    let webpki =
                        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                            .build()
                            .map_err(|e| Error::Tls(rustls::Error::General(e.to_string())))?;
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(PinnedOrWebPki {
                            webpki,
                            pinned,
                        }))
                }
            }
        };
        let cfg = match (&self.client_cert_pem, &self.client_key_pem) {
            (Some(cert), Some(key)) => {
                builder.with_client_auth_cert(parse_certs(cert)?, parse_key(key)?)?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(pem_error(
                    "client certificate and key must be given together",
                ))
            }
        };
        Ok(Arc::new(cfg))
    }

    /// The name to verify the server as: the SNI override or `host`.
    pub(crate) fn server_name(&self, host: &str) -> Result<ServerName<'static>> {
        let name = self.sni.as_deref().unwrap_or(host);
        ServerName::try_from(name.to_owned()).map_err(|_| {
            Error::Tls(rustls::Error::General(format!(
                "invalid server name {name:?}"
            )))
        })
    }
}

fn pem_error(what: &str) -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        what.to_owned(),
    ))
}

fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(&format!("bad certificate PEM: {e}")))
}

fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| pem_error(&format!("bad private key PEM: {e}")))
}

/// A server configuration from a certificate chain and private key in PEM.
pub fn server_config_from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>> {
    server_config(cert_pem, key_pem, None)
}

/// A server configuration from a certificate chain and private key in PEM that requires
/// every client to present a certificate issued by one of the CAs in `client_ca_pem`
/// (mutual TLS); a client without one fails the TLS handshake.
pub fn server_config_with_client_auth_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: &[u8],
) -> Result<Arc<ServerConfig>> {
    server_config(cert_pem, key_pem, Some(client_ca_pem))
}

fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: Option<&[u8]>,
) -> Result<Arc<ServerConfig>> {
    let certs = parse_certs(cert_pem)?;
    if certs.is_empty() {
        return Err(pem_error("no certificate in the PEM"));
    }
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            let cas = parse_certs(pem)?;
            if cas.is_empty() {
                return Err(pem_error("no certificate in the client CA PEM"));
            }
            for c in cas {
                roots.add(c)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .map_err(|e| Error::Tls(rustls::Error::General(e.to_string())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    Ok(Arc::new(
        builder.with_single_cert(certs, parse_key(key_pem)?)?,
    ))
}

/// A server configuration from PEM files. A file that cannot be read is an
/// [`Error::File`] naming it.
pub fn server_config_from_files(
    cert: impl AsRef<Path>,
    key: impl AsRef<Path>,
) -> Result<Arc<ServerConfig>> {
    server_config_from_pem(&read_file(cert.as_ref())?, &read_file(key.as_ref())?)
}

/// [`server_config_with_client_auth_pem`] from PEM files.
pub fn server_config_with_client_auth_files(
    cert: impl AsRef<Path>,
    key: impl AsRef<Path>,
    client_ca: impl AsRef<Path>,
) -> Result<Arc<ServerConfig>> {
    server_config_with_client_auth_pem(
        &read_file(cert.as_ref())?,
        &read_file(key.as_ref())?,
        &read_file(client_ca.as_ref())?,
    )
}

/// A key log that appends the NSS key log format (`LABEL <client random> <secret>`, hex) to
/// a file, as `SSLKEYLOGFILE` does in browsers and curl, for `wscope inspect --keylog` or
/// Wireshark to decrypt a capture of the connections. Lines are written whole, under a lock,
/// so connections on several threads can share one.
pub struct KeyLogWriter {
    path: std::path::PathBuf,
    file: std::sync::Mutex<std::fs::File>,
}

impl fmt::Debug for KeyLogWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyLogWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl KeyLogWriter {
    /// Opens (creates, appends to) the key log at `path`; the error names the path. On Unix
    /// a new file is readable by its owner only.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts.open(path).map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("{}: cannot open the key log: {e}", path.display()),
            ))
        })?;
        Ok(Self {
            path: path.to_owned(),
            file: std::sync::Mutex::new(file),
        })
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl KeyLog for KeyLogWriter {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        use std::io::Write as _;
        let mut line = String::with_capacity(label.len() + 2 + 2 * (32 + 48) + 1);
        line.push_str(label);
        line.push(' ');
        for b in client_random {
            line.push_str(&format!("{b:02x}"));
        }
        line.push(' ');
        for b in secret {
            line.push_str(&format!("{b:02x}"));
        }
        line.push('\n');
        if let Ok(mut f) = self.file.lock() {
            // A key log that cannot be written must not break the connection.
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// The key log named by the `SSLKEYLOGFILE` environment variable (rustls' `KeyLogFile`),
/// when it is set; `None` otherwise.
pub fn env_key_log() -> Option<Arc<dyn KeyLog>> {
    std::env::var_os("SSLKEYLOGFILE")
        .filter(|v| !v.is_empty())
        .map(|_| Arc::new(rustls::KeyLogFile::new()) as Arc<dyn KeyLog>)
}

/// `cfg` with its connection secrets written to `log` (see [`TlsConfig::key_log`]).
pub fn server_config_with_key_log(
    cfg: &Arc<ServerConfig>,
    log: Arc<dyn KeyLog>,
) -> Arc<ServerConfig> {
    let mut c = (**cfg).clone();
    c.key_log = log;
    Arc::new(c)
}

/// Reads a whole file; the error names it.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::File {
        path: path.to_owned(),
        source,
    })
}

/// Why a server's certificate was refused, in the terms a user acts on (see
/// [`CertificateProblem::of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateProblem {
    /// The certificate is a CA certificate (`CA:TRUE`, as `openssl req -x509` makes them)
    /// presented as a server certificate. Pinning exactly that certificate as the CA trusts
    /// it ([`TlsConfig::with_ca_pem`]).
    CaUsedAsEndEntity,
    /// The certificate has expired (or is not valid yet).
    Expired,
    /// The certificate is not issued for the name connected to (or given as SNI).
    NotValidForName,
    /// The certificate is not issued by a trusted CA (self-signed, or a private CA that is
    /// not among the trusted ones).
    UnknownIssuer,
}

impl CertificateProblem {
    /// The problem behind a TLS error, when it is about the server's certificate.
    pub fn of(error: &rustls::Error) -> Option<Self> {
        let rustls::Error::InvalidCertificate(e) = error else {
            return None;
        };
        match e {
            CertificateError::UnknownIssuer => Some(Self::UnknownIssuer),
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => Some(Self::Expired),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Some(Self::NotValidForName)
            }
            CertificateError::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
                Some(webpki::Error::CaUsedAsEndEntity) => Some(Self::CaUsedAsEndEntity),
                _ => None,
            },
            _ => None,
        }
    }
}

impl fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CaUsedAsEndEntity => {
                "the server's certificate is a CA certificate (CA:TRUE) used as a server \
                 certificate"
            }
            Self::Expired => "the server's certificate has expired or is not valid yet",
            Self::NotValidForName => "the server's certificate is not issued for this name",
            Self::UnknownIssuer => "the server's certificate is not issued by a trusted CA",
        })
    }
}

/// The webpki verifier, and a server that presents exactly one of the pinned certificates
/// (the ones given as CAs) is trusted as well: its name is still checked, and the
/// handshake's signatures are checked with its key as always.
#[derive(Debug)]
struct PinnedOrWebPki {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Ok(verified) => Ok(verified),
            Err(e)
                if self
                    .pinned
                    .iter()
                    .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                // Trusted by its bytes: only the name is left to check.
                let parsed = ParsedCertificate::try_from(end_entity).map_err(|_| e)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Accepts any certificate (still checks the handshake signatures, so the session is at least
/// bound to the key the server presented).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_log_writer_appends_nss_lines_and_names_its_path() {
        let dir = std::env::temp_dir().join(format!("wscope-keylog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.log");
        let _ = std::fs::remove_file(&path);
        let w = KeyLogWriter::create(&path).unwrap();
        w.log("CLIENT_TRAFFIC_SECRET_0", &[0xab; 32], &[0x01, 0xff]);
        // A second writer appends.
        KeyLogWriter::create(&path)
            .unwrap()
            .log("CLIENT_RANDOM", &[0; 32], &[2; 48]);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            format!("CLIENT_TRAFFIC_SECRET_0 {} 01ff", "ab".repeat(32))
        );
        assert!(lines[1].starts_with("CLIENT_RANDOM 0000"));
        let e = KeyLogWriter::create(dir.join("no/such/dir/keys.log")).unwrap_err();
        assert!(
            e.to_string()
                .contains("no/such/dir/keys.log: cannot open the key log"),
            "{e}"
        );
        // The client configuration carries it.
        let cfg = TlsConfig::new().with_key_log(Arc::new(w)).build().unwrap();
        assert!(cfg.key_log.will_log("CLIENT_RANDOM"));
        assert!(!TlsConfig::new()
            .build()
            .unwrap()
            .key_log
            .will_log("CLIENT_RANDOM"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
