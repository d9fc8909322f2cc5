//! TLS through rustls with the ring provider.
//!
//! Clients verify the server by default against the webpki (Mozilla) roots; [`TlsConfig`]
//! can replace them with a CA from PEM, add a client certificate, override the SNI name, or,
//! only when asked explicitly, turn verification off ([`TlsConfig::insecure`]). Servers load
//! a certificate chain and key from PEM ([`server_config_from_pem`]).

use core::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::error::{Error, Result};

/// The ring crypto provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Client-side TLS settings (the seed's `ssl_wrap_cfg_t`).
#[derive(Clone, Default)]
pub struct TlsConfig {
    /// Trusted CAs in PEM. When set, these replace the webpki roots (unless
    /// [`TlsConfig::also_webpki_roots`] is on).
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

    /// Trusts the CAs in the PEM file at `path` instead of the webpki roots.
    pub fn with_ca_file(self, path: impl AsRef<Path>) -> Result<Self> {
        Ok(self.with_ca_pem(std::fs::read(path)?))
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

    /// Uses a complete rustls configuration as it is.
    pub fn with_rustls(mut self, cfg: Arc<ClientConfig>) -> Self {
        self.rustls = Some(cfg);
        self
    }

    /// Builds the rustls client configuration.
    pub fn build(&self) -> Result<Arc<ClientConfig>> {
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
            if let Some(pem) = &self.ca_pem {
                let certs = parse_certs(pem)?;
                if certs.is_empty() {
                    return Err(pem_error("no certificate in the CA PEM"));
                }
                for c in certs {
                    roots.add(c)?;
                }
            }
            builder.with_root_certificates(roots)
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

/// A server configuration from PEM files.
pub fn server_config_from_files(
    cert: impl AsRef<Path>,
    key: impl AsRef<Path>,
) -> Result<Arc<ServerConfig>> {
    server_config_from_pem(&std::fs::read(cert)?, &std::fs::read(key)?)
}

/// [`server_config_with_client_auth_pem`] from PEM files.
pub fn server_config_with_client_auth_files(
    cert: impl AsRef<Path>,
    key: impl AsRef<Path>,
    client_ca: impl AsRef<Path>,
) -> Result<Arc<ServerConfig>> {
    server_config_with_client_auth_pem(
        &std::fs::read(cert)?,
        &std::fs::read(key)?,
        &std::fs::read(client_ca)?,
    )
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
