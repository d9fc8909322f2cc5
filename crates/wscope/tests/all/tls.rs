//! TLS with a generated CA and certificate (rcgen), blocking and tokio.

use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use wscope::blocking::{self, Server};
use wscope::config::{ClientConfig, ServerConfig};
use wscope::tls::{server_config_from_pem, TlsConfig};
use wscope::{CloseCode, Error, Message};

use crate::util::{certificates, payload};

fn tls_server_config() -> (ServerConfig, String) {
    let (ca, cert, key) = certificates();
    let cfg = ServerConfig::default()
        .tls(server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap());
    (cfg, ca)
}

/// A blocking TLS server on an ephemeral port: (server, port, the CA's PEM).
fn tls_server() -> (Server, u16, String) {
    let (cfg, ca) = tls_server_config();
    let server = Server::bind("127.0.0.1:0", cfg).unwrap();
    let port = server.local_addr().unwrap().port();
    (server, port, ca)
}

#[test]
fn blocking_tls_round_trip_with_custom_ca_and_sni() {
    let (server, port, ca) = tls_server();
    let t = std::thread::spawn(move || {
        let mut ws = server.accept().unwrap();
        loop {
            match ws.read() {
                Ok(m) if m.is_data() => ws.send(m).unwrap(),
                Ok(_) => {}
                Err(e) => return e,
            }
        }
    });
    let client = ClientConfig::new("127.0.0.1", port)
        .tls(TlsConfig::new().with_ca_pem(ca).with_sni("localhost"));
    let (mut ws, _) = blocking::connect_with(&client).unwrap();
    ws.send_text("over tls").unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("over tls"));
    let big = payload(3 << 20);
    ws.send(Message::binary(big.clone())).unwrap();
    assert!(ws.read().unwrap() == Message::binary(big));
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert!(matches!(t.join().unwrap(), Error::ConnectionClosed));
}

#[test]
fn blocking_tls_verification_is_on_by_default() {
    let (server, port, _ca) = tls_server();
    let t = std::thread::spawn(move || server.accept().map(|_| ()));
    let client = ClientConfig::new("127.0.0.1", port).tls(TlsConfig::new().with_sni("localhost"));
    let err = blocking::connect_with(&client).unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err:?}");
    assert!(t.join().unwrap().is_err());
}

/// A blocking TLS server presenting `cert` (PEM, with `key`) that echoes, one connection at a
/// time: its port.
fn serve_cert(cert: &str, key: &str) -> u16 {
    let cfg = ServerConfig::default()
        .tls(server_config_from_pem(cert.as_bytes(), key.as_bytes()).unwrap());
    let server = Server::bind("127.0.0.1:0", cfg).unwrap();
    let port = server.local_addr().unwrap().port();
    // Refused clients fail their accept; the server goes on (for as long as the tests run).
    std::thread::spawn(move || loop {
        let Ok(mut ws) = server.accept() else {
            continue;
        };
        while let Ok(m) = ws.read() {
            if m.is_data() && ws.send(m).is_err() {
                break;
            }
        }
    });
    port
}

/// A self-signed CA:TRUE certificate for localhost (what `openssl req -x509` makes) is
/// refused as a server certificate, with the problem named, unless it is the pinned CA
/// itself; the name is still checked then.
#[test]
fn a_pinned_self_signed_ca_certificate_is_trusted_with_its_name() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use wscope::tls::CertificateProblem;
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap().pem();
    let port = serve_cert(&cert, &key.serialize_pem());
    let connect =
        |tls: TlsConfig| blocking::connect_with(&ClientConfig::new("127.0.0.1", port).tls(tls));
    let problem = |err: Error| match err {
        Error::Tls(e) => CertificateProblem::of(&e),
        other => panic!("{other:?}"),
    };

    // Not pinned: the webpki roots do not know it, and it is a CA.
    let err = connect(TlsConfig::new().with_sni("localhost")).unwrap_err();
    assert_eq!(problem(err), Some(CertificateProblem::CaUsedAsEndEntity));

    // Pinned: trusted.
    let pinned = TlsConfig::new().with_ca_pem(cert.clone());
    let (mut ws, _) = connect(pinned.clone().with_sni("localhost")).unwrap();
    ws.send_text("pinned").unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("pinned"));
    ws.close(CloseCode::NORMAL, "").unwrap();

    // Pinned, but another name: refused for the name.
    let err = connect(pinned.with_sni("example.com")).unwrap_err();
    assert_eq!(problem(err), Some(CertificateProblem::NotValidForName));
    let err = connect(TlsConfig::new().with_ca_pem(cert).with_sni("127.0.0.1")).unwrap_err();
    assert!(
        err.to_string().contains("not issued for this name"),
        "{err}"
    );

    // Another pinned certificate: not trusted.
    let mut other = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let other = other
        .self_signed(&KeyPair::generate().unwrap())
        .unwrap()
        .pem();
    let err = connect(TlsConfig::new().with_ca_pem(other).with_sni("localhost")).unwrap_err();
    assert!(problem(err).is_some());
}

#[test]
fn a_missing_ca_file_is_named() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-ca.pem");
    match TlsConfig::new().with_ca_file(&path) {
        Err(Error::File { path: p, source }) => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    let err = wscope::tls::server_config_from_files(&path, &path).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read {}", path.display())),
        "{err}"
    );
}

#[test]
fn blocking_tls_insecure_only_when_asked() {
    let (server, port, _ca) = tls_server();
    let t = std::thread::spawn(move || {
        let mut ws = server.accept().unwrap();
        while ws.read().is_ok() {}
    });
    let client = ClientConfig::new("127.0.0.1", port).tls(TlsConfig::new().insecure());
    let (mut ws, _) = blocking::connect_with(&client).unwrap();
    ws.close(CloseCode::NORMAL, "").unwrap();
    t.join().unwrap();
}

#[test]
fn tokio_tls_round_trip() {
    let rt = crate::util::current_thread_rt();
    rt.block_on(async {
        let (cfg, ca) = tls_server_config();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = wscope::tokio::accept_tls(wscope::stream::Tcp::new(tcp), &cfg)
                .await
                .unwrap();
            while let Some(m) = ws.next().await {
                let m = m.unwrap();
                if m.is_data() {
                    ws.send(m).await.unwrap();
                }
            }
        });
        let client = ClientConfig::new("localhost", port).tls(TlsConfig::new().with_ca_pem(ca));
        let mut ws = wscope::tokio::connect_with(&client).await.unwrap();
        ws.send(Message::text("tls async")).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::text("tls async")
        );
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        assert!(matches!(ws.next().await, Some(Ok(Message::Close(_)))));
        assert!(ws.next().await.is_none());
        server.await.unwrap();
    });
}

#[test]
fn blocking_tls_client_certificate() {
    use std::sync::Arc;
    let (ca, cert, key) = certificates();
    // The same CA signs a client certificate the server requires.
    let (client_cert, client_key) = {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        // Re-create the CA from its PEM is not possible without its key: make a fresh pair.
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let client_ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["client".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &client_ca, &ca_key)
            .unwrap();
        ((client_ca.pem(), leaf.pem()), leaf_key.serialize_pem())
    };
    let ((client_ca_pem, client_leaf_pem), client_key_pem) = (client_cert, client_key);
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(client_ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        wscope::tls::provider(),
    )
    .build()
    .unwrap();
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
        .map(Result::unwrap)
        .collect();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let server_tls = rustls::ServerConfig::builder_with_provider(wscope::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    let cfg = ServerConfig::default().tls(Arc::new(server_tls));
    let server = Server::bind("127.0.0.1:0", cfg).unwrap();
    let port = server.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        // First connection: no client certificate, refused by TLS.
        assert!(server.accept().is_err());
        let mut ws = server.accept().unwrap();
        let m = ws.read().unwrap();
        ws.send(m).unwrap();
        while ws.read().is_ok() {}
    });
    let base = TlsConfig::new()
        .with_ca_pem(ca.clone())
        .with_sni("localhost");
    let anonymous = ClientConfig::new("127.0.0.1", port).tls(base.clone());
    let refused = blocking::connect_with(&anonymous).and_then(|(mut ws, _)| {
        ws.send_text("x")?;
        ws.read()
    });
    assert!(refused.is_err());
    let with_cert = ClientConfig::new("127.0.0.1", port)
        .tls(base.with_client_auth_pem(client_leaf_pem, client_key_pem));
    let (mut ws, _) = blocking::connect_with(&with_cert).unwrap();
    ws.send_text("mutual").unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("mutual"));
    ws.close(CloseCode::NORMAL, "").unwrap();
    t.join().unwrap();
}

/// A TLS server that ends the TCP connection without `close_notify`: right after answering
/// the WebSocket close (`after_close`), or in the middle of the connection.
fn server_without_close_notify(after_close: bool) -> (u16, String, std::thread::JoinHandle<()>) {
    let (server, port, ca) = tls_server();
    let t = std::thread::spawn(move || {
        let mut ws = server.accept().unwrap();
        loop {
            match ws.read().unwrap() {
                // `read` has flushed the answer to the close.
                Message::Close(_) if after_close => break,
                m if m.is_data() && !after_close => break,
                m if m.is_data() => ws.send(m).unwrap(),
                _ => {}
            }
        }
        ws.get_ref()
            .tcp()
            .shutdown(std::net::Shutdown::Both)
            .unwrap();
    });
    (port, ca, t)
}

/// The end of a connection before its closing handshake.
fn assert_unexpected_eof(err: &Error) {
    assert!(
        matches!(err, Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof),
        "{err:?}"
    );
}

#[test]
fn blocking_tls_end_without_close_notify_after_the_closing_handshake_is_clean() {
    let (port, ca, t) = server_without_close_notify(true);
    let client = ClientConfig::new("localhost", port).tls(TlsConfig::new().with_ca_pem(ca));
    let (mut ws, _) = blocking::connect_with(&client).unwrap();
    ws.send_text("one").unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("one"));
    ws.close(CloseCode::NORMAL, "bye").unwrap();
    assert_eq!(ws.close_status().unwrap().remote, CloseCode::NORMAL);
    t.join().unwrap();
}

#[test]
fn blocking_tls_end_without_close_notify_before_the_closing_handshake_is_an_error() {
    let (port, ca, t) = server_without_close_notify(false);
    let client = ClientConfig::new("localhost", port).tls(TlsConfig::new().with_ca_pem(ca));
    let (mut ws, _) = blocking::connect_with(&client).unwrap();
    ws.send_text("one").unwrap();
    let err = ws.read().unwrap_err();
    assert_unexpected_eof(&err);
    t.join().unwrap();
}

#[test]
fn tokio_tls_end_without_close_notify() {
    let rt = crate::util::current_thread_rt();
    rt.block_on(async {
        // After the closing handshake: the stream ends cleanly.
        let (port, ca, t) = server_without_close_notify(true);
        let client = ClientConfig::new("localhost", port).tls(TlsConfig::new().with_ca_pem(ca));
        let mut ws = wscope::tokio::connect_with(&client).await.unwrap();
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        assert!(matches!(ws.next().await, Some(Ok(Message::Close(_)))));
        assert!(ws.next().await.is_none());
        tokio::task::spawn_blocking(move || t.join().unwrap())
            .await
            .unwrap();

        // Before it: an unexpected end.
        let (port, ca, t) = server_without_close_notify(false);
        let client = ClientConfig::new("localhost", port).tls(TlsConfig::new().with_ca_pem(ca));
        let mut ws = wscope::tokio::connect_with(&client).await.unwrap();
        ws.send(Message::text("one")).await.unwrap();
        let err = ws.next().await.unwrap().unwrap_err();
        assert_unexpected_eof(&err);
        assert!(ws.next().await.is_none());
        tokio::task::spawn_blocking(move || t.join().unwrap())
            .await
            .unwrap();
    });
}
