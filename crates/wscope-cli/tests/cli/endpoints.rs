//! `serve` and `connect` as a user meets them: the help, the messages of their errors (stderr
//! and exit status), the server's refusals, limits, pipe mode and shutdown.

use core::time::Duration;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;

use wscope::{CloseCode, Message};

fn wscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wscope"))
}

/// Runs `wscope` with `args` to its end (stdin closed).
fn run(args: &[&str]) -> Output {
    wscope().args(args).stdin(Stdio::null()).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A running `wscope serve` whose stderr is collected line by line (kept open: the server
/// never writes into a closed pipe), killed when dropped.
struct Served {
    child: Child,
    url: String,
    port: u16,
    lines: mpsc::Receiver<String>,
}

impl Served {
    /// Starts `wscope serve --port 0` with `args` and waits for the address it announces.
    fn start(args: &[&str]) -> Self {
        let mut child = wscope()
            .args(["serve", "--port", "0"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(30)).unwrap();
        let url = first.split_whitespace().last().unwrap().to_owned();
        assert!(url.starts_with("ws"), "{first}");
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        Self {
            child,
            url,
            port,
            lines,
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn stdin(&mut self) -> ChildStdin {
        self.child.stdin.take().unwrap()
    }

    fn stdout(&mut self) -> BufReader<ChildStdout> {
        BufReader::new(self.child.stdout.take().unwrap())
    }

    /// Waits for a line of stderr that contains `text` (up to 20 s for each line); returns it.
    fn expect_line(&self, text: &str) -> String {
        let mut seen = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(20)) {
            if line.contains(text) {
                return line;
            }
            seen.push(line);
        }
        panic!("no stderr line with {text:?}; got {seen:?}");
    }

    /// Sends a signal (by the `kill` command) to the server.
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (up to 20 s) for the server to exit; its exit code.
    fn wait_exit(&mut self) -> Option<i32> {
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the server did not exit");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request` on a fresh connection and reads the answer to its end (at most 10 s).
fn raw_exchange(addr: &str, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(request).unwrap();
    let mut got = Vec::new();
    match tcp.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("no answer and no end in 10 s: {e}"),
    }
    String::from_utf8_lossy(&got).into_owned()
}

const UPGRADE: &str = "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n";

/// A port nothing listens on (bound, then freed).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A directory for this test's files.
fn dir(name: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: PathBuf, text: &str) -> String {
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

// ---- help ----

#[test]
fn help_describes_every_subcommand() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for (name, words) in [
        ("serve", "Run a WebSocket server"),
        ("connect", "Connect to a WebSocket server"),
        ("inspect", "pcap/pcapng"),
        ("parse", "raw frames"),
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(name) && l.contains(words)),
            "{name}: {help}"
        );
    }
    // The summary is about the whole tool, not only serve and connect.
    let about = help.lines().next().unwrap();
    assert!(about.contains("analysis"), "{about}");
}

#[test]
fn a_mistyped_subcommand_gets_a_suggestion() {
    let out = run(&["srve"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("unrecognized subcommand 'srve'"), "{err}");
    assert!(err.contains("similar subcommand exists: 'serve'"), "{err}");
}

#[test]
fn serve_help_hides_the_io_uring_tuning_flags() {
    let out = run(&["serve", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("--io-uring"), "{help}");
    for flag in [
        "--uring-entries",
        "--uring-no-poll-first",
        "--uring-no-multishot",
        "--uring-no-registered-files",
        "--uring-no-defer-taskrun",
    ] {
        assert!(
            !help.lines().any(|l| l.trim_start().starts_with(flag)),
            "{flag} listed: {help}"
        );
    }
    // Hidden, not gone: the benchmark scripts still pass them.
    let out = run(&["serve", "--io-uring", "--uring-entries", "8", "--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The pipe mode and the shutdown are explained.
    assert!(help.contains("each line of stdin goes to every connected client"));
    assert!(help.contains("SIGTERM closes every client with 1001"));
}

// ---- errors that name the address, the port or the file ----

#[test]
fn address_in_use_names_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = run(&["serve", "--echo", "--port", &port]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}: ")),
        "{err}"
    );
    assert!(err.contains("Address already in use"), "{err}");
    assert!(err.contains("pick another --port"), "{err}");
}

#[cfg(target_os = "linux")]
#[test]
fn address_in_use_names_the_address_io_uring() {
    if wscope::uring::supported().is_err() {
        eprintln!("skipped: no io_uring");
        return;
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = run(&[
        "serve",
        "--echo",
        "--io-uring",
        "--threads",
        "1",
        "--port",
        &port,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}: ")),
        "{err}"
    );
}

#[test]
fn connection_refused_names_host_and_port() {
    let port = free_port();
    let out = run(&["connect", &format!("ws://127.0.0.1:{port}/")]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot connect to 127.0.0.1:{port}: ")),
        "{err}"
    );
    assert!(err.contains("Connection refused"), "{err}");
}

#[test]
fn missing_certificate_files_are_named() {
    let d = dir("missing-files");
    let (cert, key) = (d.join("no-cert.pem"), d.join("no-key.pem"));
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let out = run(&["serve", "--echo", "--tls-cert", cert, "--tls-key", key]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("cannot read {cert}: ")), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");

    let out = run(&["connect", "wss://127.0.0.1:1/", "--ca", key]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("cannot read {key}: ")), "{err}");
}

// ---- TLS errors, translated, and the pinned self-signed certificate ----

/// A self-signed certificate for localhost as `openssl req -x509 -newkey ... -nodes -subj
/// /CN=localhost -addext subjectAltName=DNS:localhost` makes it: CA:TRUE. (cert, key) PEM.
fn self_signed_ca_true() -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// `wscope serve --echo` on TLS with `cert` and `key` (PEM text) written under `name`.
fn serve_tls(name: &str, cert: &str, key: &str) -> Served {
    let d = dir(name);
    let cert = write(d.join("cert.pem"), cert);
    let key = write(d.join("key.pem"), key);
    Served::start(&["--echo", "--tls-cert", &cert, "--tls-key", &key])
}

/// `wscope connect URL extra...` with "pinned\n" on stdin.
fn connect_tls(url: &str, extra: &[&str]) -> Output {
    let mut client = wscope()
        .args(["connect", url])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    client.stdin.take().unwrap().write_all(b"pinned\n").unwrap();
    client.wait_with_output().unwrap()
}

#[test]
fn a_pinned_ca_true_self_signed_certificate_is_trusted() {
    let (cert, key) = self_signed_ca_true();
    let server = serve_tls("pinned-ca-true", &cert, &key);
    let url = format!("wss://localhost:{}/", server.port);
    let d = dir("pinned-ca-true");
    let pinned = write(d.join("pinned.pem"), &cert);
    let out = connect_tls(&url, &["--ca", &pinned]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "pinned\n");

    // Not pinned: the message says what the certificate is and what to do.
    let out = connect_tls(&url, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(
            "is a CA certificate (CA:TRUE) used as a server certificate: pass that \
             exact certificate with --ca FILE to trust it (or --insecure"
        ),
        "{err}"
    );

    // Pinned, but the name is still checked.
    let url_ip = format!("wss://127.0.0.1:{}/", server.port);
    let out = connect_tls(&url_ip, &["--ca", &pinned]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("not issued for this name (127.0.0.1)"),
        "{err}"
    );
    assert!(err.contains("--sni NAME"), "{err}");

    // Another certificate pinned: not trusted, and the message says what to do.
    let (other, _) = self_signed_ca_true();
    let other = write(d.join("other.pem"), &other);
    let out = connect_tls(&url, &["--ca", &other]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("certificate not trusted"), "{err}");
    assert!(err.contains("--ca FILE"), "{err}");
    assert!(!err.contains("Other(OtherError"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn an_unknown_issuer_says_to_pass_ca_or_insecure() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    // A server certificate from a private CA the client does not know.
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let server = serve_tls("unknown-issuer", &cert.pem(), &key.serialize_pem());
    let url = format!("wss://localhost:{}/", server.port);
    let out = connect_tls(&url, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "certificate not trusted (localhost:{}): the server's certificate is not issued \
             by a trusted CA: pass --ca FILE",
            server.port
        )),
        "{err}"
    );
    assert!(err.contains("--insecure"), "{err}");
    assert!(!err.contains("UnknownIssuer"), "{err}");
    // --insecure, as the message says, gets through.
    let out = connect_tls(&url, &["--insecure"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "pinned\n");
}

#[test]
fn a_ca_certificate_used_as_server_certificate_is_named() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    // A root, and an intermediate CA (CA:TRUE) for localhost that the server presents.
    let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root_key = KeyPair::generate().unwrap();
    let root = root.self_signed(&root_key).unwrap();
    let mut mid = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    mid.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mid_key = KeyPair::generate().unwrap();
    let mid = mid.signed_by(&mid_key, &root, &root_key).unwrap();
    let server = serve_tls("ca-as-leaf", &mid.pem(), &mid_key.serialize_pem());
    let url = format!("wss://localhost:{}/", server.port);
    let d = dir("ca-as-leaf");
    let root = write(d.join("root.pem"), &root.pem());
    let out = connect_tls(&url, &["--ca", &root]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("is a CA certificate (CA:TRUE) used as a server certificate"),
        "{err}"
    );
    assert!(
        err.contains("pass that exact certificate with --ca FILE"),
        "{err}"
    );
    assert!(!err.contains("CaUsedAsEndEntity"), "{err}");
    // Which is what pinning it does.
    let mid = write(d.join("mid.pem"), &mid.pem());
    let out = connect_tls(&url, &["--ca", &mid]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

// ---- the server's refusals ----

#[test]
fn a_tls_client_on_a_plain_port_is_closed_at_once_and_logged() {
    tls_client_on_a_plain_port(&[]);
}

#[cfg(target_os = "linux")]
#[test]
fn a_tls_client_on_a_plain_port_is_closed_at_once_and_logged_io_uring() {
    if wscope::uring::supported().is_ok() {
        tls_client_on_a_plain_port(&["--io-uring", "--threads", "1"]);
    }
}

fn tls_client_on_a_plain_port(extra: &[&str]) {
    let mut args = vec!["--echo"];
    args.extend_from_slice(extra);
    let server = Served::start(&args);
    // The start of a ClientHello: a handshake record of TLS 1.0, 5 bytes of body.
    let got = raw_exchange(
        &server.addr(),
        &[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0, 0, 1, 3],
    );
    assert_eq!(got, "", "nothing but the close");
    let line = server.expect_line("a TLS client connected to this plain ws:// port");
    assert!(line.contains("--tls-cert"), "{line}");
    // A real TLS client fails at once too.
    let out = connect_tls(
        &format!("wss://127.0.0.1:{}/", server.port),
        &["--insecure"],
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_plain_http_get_is_told_this_is_a_websocket_endpoint() {
    let server = Served::start(&["--echo"]);
    let got = raw_exchange(
        &server.addr(),
        b"GET / HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\n\r\n",
    );
    assert!(got.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{got}");
    let body = got.split("\r\n\r\n").nth(1).unwrap();
    assert!(body.contains("missing Upgrade header"), "{body}");
    assert!(body.contains("This is a WebSocket endpoint"), "{body}");
    let length = format!("Content-Length: {}\r\n", body.len());
    assert!(got.contains(&length), "{got}");
}

#[test]
fn an_upgrade_request_with_a_body_is_refused_with_400() {
    let server = Served::start(&["--echo"]);
    let request = format!("{UPGRADE}Content-Length: 6\r\n\r\nhello!");
    let got = raw_exchange(&server.addr(), request.as_bytes());
    assert!(got.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{got}");
    assert!(got.contains("declares a body (Content-Length)"), "{got}");
    let request = format!("{UPGRADE}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    let got = raw_exchange(&server.addr(), request.as_bytes());
    assert!(got.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{got}");
    assert!(got.contains("declares a body (Transfer-Encoding)"), "{got}");
    // Content-Length: 0 declares no body.
    let request = format!("{UPGRADE}Content-Length: 0\r\n\r\n");
    let got = raw_exchange_head(&server.addr(), request.as_bytes());
    assert!(got.starts_with("HTTP/1.1 101 "), "{got}");
}

/// Sends `request` and reads the response head only.
fn raw_exchange_head(addr: &str, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(request).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

// ---- limits ----

#[test]
fn idle_timeout_closes_a_quiet_client_with_1001() {
    idle_timeout_closes_a_quiet_client(&[]);
}

#[cfg(target_os = "linux")]
#[test]
fn idle_timeout_closes_a_quiet_client_with_1001_io_uring() {
    if wscope::uring::supported().is_ok() {
        idle_timeout_closes_a_quiet_client(&["--io-uring", "--threads", "1"]);
    }
}

fn idle_timeout_closes_a_quiet_client(extra: &[&str]) {
    let mut args = vec!["--echo", "--idle-timeout", "0.3"];
    args.extend_from_slice(extra);
    let server = Served::start(&args);
    let (mut ws, _) = wscope::blocking::connect(&server.url).unwrap();
    match ws.read().unwrap() {
        Message::Close(Some(c)) => {
            assert_eq!(c.code, CloseCode::GOING_AWAY);
            assert_eq!(c.reason, "idle timeout");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn over_max_connections_a_client_gets_503_at_once() {
    over_max_connections_a_client_gets_503(&[]);
}

#[cfg(target_os = "linux")]
#[test]
fn over_max_connections_a_client_gets_503_at_once_io_uring() {
    if wscope::uring::supported().is_ok() {
        over_max_connections_a_client_gets_503(&["--io-uring", "--threads", "2"]);
    }
}

/// `serve --echo --max-connections 2 extra...`: the third client gets a 503, and a place
/// freed by a closed connection is taken again.
fn over_max_connections_a_client_gets_503(extra: &[&str]) {
    let mut args = vec!["--echo", "--max-connections", "2"];
    args.extend_from_slice(extra);
    let server = Served::start(&args);
    let (mut a, _) = wscope::blocking::connect(&server.url).unwrap();
    let (_b, _) = wscope::blocking::connect(&server.url).unwrap();
    let got = raw_exchange(&server.addr(), format!("{UPGRADE}\r\n").as_bytes());
    assert!(
        got.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{got}"
    );
    assert!(got.contains("503: 2 connection(s) already open."), "{got}");
    let line = server.expect_line("refused with 503");
    assert!(
        line.contains("2 connection(s) already open (--max-connections)"),
        "{line}"
    );
    // A closed connection frees its place.
    a.close(CloseCode::NORMAL, "").unwrap();
    while !matches!(a.read(), Err(_) | Ok(Message::Close(_))) {}
    drop(a);
    let mut upgraded = false;
    for _ in 0..100 {
        let head = raw_exchange_head(&server.addr(), format!("{UPGRADE}\r\n").as_bytes());
        if head.starts_with("HTTP/1.1 101 ") {
            upgraded = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(upgraded, "a place is free again");
}

#[test]
fn over_max_connections_per_ip_a_client_gets_503() {
    over_max_connections_per_ip_a_client_gets_503_on(&[]);
}

#[cfg(target_os = "linux")]
#[test]
fn over_max_connections_per_ip_a_client_gets_503_io_uring() {
    if wscope::uring::supported().is_ok() {
        over_max_connections_per_ip_a_client_gets_503_on(&["--io-uring", "--threads", "1"]);
    }
}

fn over_max_connections_per_ip_a_client_gets_503_on(extra: &[&str]) {
    let mut args = vec!["--echo", "--max-connections-per-ip", "1"];
    args.extend_from_slice(extra);
    let server = Served::start(&args);
    let (mut a, _) = wscope::blocking::connect(&server.url).unwrap();
    let got = raw_exchange(&server.addr(), format!("{UPGRADE}\r\n").as_bytes());
    assert!(
        got.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{got}"
    );
    assert!(
        got.contains("1 connection(s) already open from 127.0.0.1."),
        "{got}"
    );
    let line = server.expect_line("refused with 503");
    assert!(
        line.contains("from 127.0.0.1 (--max-connections-per-ip)"),
        "{line}"
    );
    // The one let in still works.
    a.send(Message::text("still here")).unwrap();
    assert_eq!(a.read().unwrap(), Message::text("still here"));
}

// ---- pipe mode ----

#[test]
fn serve_without_echo_pipes_stdin_to_clients_and_messages_to_stdout() {
    let mut server = Served::start(&[]);
    let mut stdin = server.stdin();
    let mut stdout = server.stdout();
    // Typed before anyone is connected: held for the first client.
    stdin.write_all(b"early line\n").unwrap();
    stdin.flush().unwrap();
    let (mut a, _) = wscope::blocking::connect(&server.url).unwrap();
    assert_eq!(a.read().unwrap(), Message::text("early line"));
    let (mut b, _) = wscope::blocking::connect(&server.url).unwrap();
    server.expect_line("connected");
    server.expect_line("connected");
    // A line goes to every client.
    stdin.write_all(b"to both\n").unwrap();
    stdin.flush().unwrap();
    assert_eq!(a.read().unwrap(), Message::text("to both"));
    assert_eq!(b.read().unwrap(), Message::text("to both"));
    // What clients send is printed, one message a line.
    a.send(Message::text("from a")).unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "from a\n");
    b.send(Message::binary(b"from b".to_vec())).unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "from b\n");
    a.close(CloseCode::NORMAL, "").unwrap();
    server.expect_line("disconnected");
}

// ---- shutdown ----

#[test]
fn sigterm_closes_every_client_with_1001_and_exits_0() {
    sigterm_closes_every_client_with_1001(
        &["--echo"],
        "SIGTERM: closing 100 connection(s) with 1001",
    );
}

#[cfg(target_os = "linux")]
#[test]
fn sigterm_closes_every_client_with_1001_and_exits_0_io_uring() {
    if wscope::uring::supported().is_err() {
        eprintln!("skipped: no io_uring");
        return;
    }
    sigterm_closes_every_client_with_1001(
        &["--echo", "--io-uring", "--threads", "2"],
        "SIGTERM: closing every connection with 1001",
    );
}

/// 100 clients of `serve extra...`, all open and served; after SIGTERM each receives a close
/// with 1001, the server logs `line` and exits with 0.
fn sigterm_closes_every_client_with_1001(extra: &[&str], line: &str) {
    const CLIENTS: usize = 100;
    let mut server = Served::start(extra);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let codes = rt.block_on(async {
        use futures_util::{SinkExt, StreamExt};
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let (ws, _) = wscope::tokio::connect_async(&server.url).await.unwrap();
            clients.push(ws);
        }
        // Every connection is open and served: one echo each.
        for ws in &mut clients {
            ws.send(Message::text("up")).await.unwrap();
        }
        for ws in &mut clients {
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("up"));
        }
        server.signal("TERM");
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|mut ws| {
                tokio::spawn(async move {
                    let got = tokio::time::timeout(Duration::from_secs(20), ws.next()).await;
                    match got {
                        Ok(Some(Ok(Message::Close(Some(c))))) => Some(c.code),
                        other => panic!("{other:?}"),
                    }
                })
            })
            .collect();
        let mut codes = Vec::new();
        for t in tasks {
            codes.push(t.await.unwrap());
        }
        codes
    });
    assert_eq!(codes.len(), CLIENTS);
    assert!(
        codes.iter().all(|c| *c == Some(CloseCode::GOING_AWAY)),
        "{codes:?}"
    );
    server.expect_line(line);
    assert_eq!(server.wait_exit(), Some(0));
}

/// `--http2`: 50 WebSocket streams on one HTTP/2 connection and 10 HTTP/1.1 clients; after
/// SIGTERM every one of them receives a close with 1001 (the HTTP/2 connection a GOAWAY), the
/// count is of TCP connections, and the server exits with 0.
#[test]
fn sigterm_closes_http2_streams_with_1001_too() {
    let mut server = Served::start(&["--echo", "--http2"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let codes = rt.block_on(async {
        use futures_util::{SinkExt, StreamExt};
        let cfg = wscope::config::ClientConfig::from_url(&server.url).unwrap();
        let h2 = wscope::h2::Http2Client::connect(&cfg).await.unwrap();
        let mut streams = Vec::new();
        for _ in 0..50 {
            streams.push(h2.websocket(&cfg).await.unwrap().0);
        }
        let mut plain = Vec::new();
        for _ in 0..10 {
            plain.push(wscope::tokio::connect_async(&server.url).await.unwrap().0);
        }
        for ws in &mut streams {
            ws.send(Message::text("up")).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("up"));
        }
        for ws in &mut plain {
            ws.send(Message::text("up")).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("up"));
        }
        server.signal("TERM");
        async fn close_code<S>(mut ws: wscope::tokio::WebSocketStream<S>) -> Option<CloseCode>
        where
            S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
        {
            match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
                Ok(Some(Ok(Message::Close(Some(c))))) => Some(c.code),
                other => panic!("{other:?}"),
            }
        }
        let mut codes = Vec::new();
        for ws in streams {
            codes.push(close_code(ws).await);
        }
        for ws in plain {
            codes.push(close_code(ws).await);
        }
        codes
    });
    assert_eq!(codes.len(), 60);
    assert!(
        codes.iter().all(|c| *c == Some(CloseCode::GOING_AWAY)),
        "{codes:?}"
    );
    server.expect_line("SIGTERM: closing 11 connection(s) with 1001");
    assert_eq!(server.wait_exit(), Some(0));
}

#[test]
fn sigint_exits_0_without_clients() {
    let mut server = Served::start(&["--echo"]);
    server.signal("INT");
    assert_eq!(server.wait_exit(), Some(0));
    server.expect_line("SIGINT: closing 0 connection(s)");
}

// ---- key logs: connect/serve write them, inspect decrypts a capture with them ----

/// One TCP connection relayed through the test, every byte recorded with its direction.
type Recorded = std::sync::Arc<std::sync::Mutex<Vec<(bool, Vec<u8>)>>>;

/// Listens on a free port and relays one connection to `upstream`, recording both ways.
fn recording_relay(upstream: String) -> (u16, Recorded, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let rec: Recorded = Recorded::default();
    let r = rec.clone();
    let h = std::thread::spawn(move || {
        let (client, _) = listener.accept().unwrap();
        let server = TcpStream::connect(upstream).unwrap();
        let pump = |mut from: TcpStream, mut to: TcpStream, orig: bool, rec: Recorded| {
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                loop {
                    let n = match from.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    // Record before forwarding: the capture's order is the causal order.
                    rec.lock().unwrap().push((orig, buf[..n].to_vec()));
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = to.shutdown(std::net::Shutdown::Write);
            })
        };
        let a = pump(
            client.try_clone().unwrap(),
            server.try_clone().unwrap(),
            true,
            r.clone(),
        );
        let b = pump(server, client, false, r);
        a.join().unwrap();
        b.join().unwrap();
    });
    (port, rec, h)
}

/// The recorded bytes as a pcap of one TCP connection (handshake, data, FINs).
fn recorded_pcap(rec: &Recorded, path: &std::path::Path) {
    use wscope_inspect::decode::TcpFlags;
    use wscope_inspect::wscope_proto::time::Instant;
    use wscope_test_support::capture::{Framing, PcapWriter, TcpSpec};
    let c: core::net::SocketAddr = "10.1.0.1:50000".parse().unwrap();
    let s: core::net::SocketAddr = "10.1.0.2:443".parse().unwrap();
    let mut w = PcapWriter::new(Vec::new(), Framing::Ethernet.link_type()).unwrap();
    let (mut cseq, mut sseq, mut ts) = (100u32, 900u32, 1_700_000_000_000_000u64);
    let mut put = |w: &mut PcapWriter<Vec<u8>>, spec: TcpSpec<'_>| {
        ts += 100;
        w.write_tcp(Instant::from_micros(ts), Framing::Ethernet, &spec)
            .unwrap();
    };
    put(&mut w, TcpSpec::new(c, s).seq(cseq).flags(TcpFlags::SYN));
    put(
        &mut w,
        TcpSpec::new(s, c)
            .seq(sseq)
            .ack(cseq + 1)
            .flags(TcpFlags::SYN),
    );
    cseq += 1;
    sseq += 1;
    for (orig, bytes) in rec.lock().unwrap().iter() {
        for seg in bytes.chunks(1400) {
            let (spec, seq) = if *orig {
                (TcpSpec::new(c, s).seq(cseq).ack(sseq), &mut cseq)
            } else {
                (TcpSpec::new(s, c).seq(sseq).ack(cseq), &mut sseq)
            };
            put(&mut w, spec.flags(TcpFlags::PSH).payload(seg));
            *seq = seq.wrapping_add(seg.len() as u32);
        }
    }
    put(
        &mut w,
        TcpSpec::new(c, s).seq(cseq).ack(sseq).flags(TcpFlags::FIN),
    );
    put(
        &mut w,
        TcpSpec::new(s, c)
            .seq(sseq)
            .ack(cseq + 1)
            .flags(TcpFlags::FIN),
    );
    std::fs::write(path, w.into_inner()).unwrap();
}

/// The round trip of the README: `connect --keylog`, a capture, `inspect --keylog`. The
/// server's key log (`serve --keylog`) decrypts the same capture; without keys the
/// connection is reported undecrypted and is no session.
#[test]
fn key_logs_of_connect_and_serve_decrypt_a_capture() {
    let (cert, key) = self_signed_ca_true();
    let d = dir("keylog-round-trip");
    let server_keys = d.join("server.keys");
    let client_keys = d.join("client.keys");
    let _ = std::fs::remove_file(&server_keys);
    let _ = std::fs::remove_file(&client_keys);
    let cert_path = write(d.join("cert.pem"), &cert);
    let key_path = write(d.join("key.pem"), &key);
    let server = Served::start(&[
        "--echo",
        "--tls-cert",
        &cert_path,
        "--tls-key",
        &key_path,
        "--keylog",
        server_keys.to_str().unwrap(),
    ]);
    let (port, rec, relay) = recording_relay(server.addr());
    let url = format!("wss://localhost:{port}/");
    let out = connect_tls(
        &url,
        &[
            "--ca",
            &cert_path,
            "--keylog",
            client_keys.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "pinned\n");
    relay.join().unwrap();
    let pcap = d.join("wss.pcap");
    recorded_pcap(&rec, &pcap);
    let want = {
        use sha2::Digest as _;
        let d = sha2::Sha256::digest(b"pinned");
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    for keys in [&client_keys, &server_keys] {
        let text = std::fs::read_to_string(keys).unwrap();
        assert!(text.contains("CLIENT_TRAFFIC_SECRET_0 "), "{text}");
        let out = run(&[
            "inspect",
            pcap.to_str().unwrap(),
            "--keylog",
            keys.to_str().unwrap(),
            "--digest",
            "--events",
            "-",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let events = String::from_utf8(out.stdout).unwrap();
        let established: Vec<&str> = events
            .lines()
            .filter(|l| l.contains("\"event\":\"established\""))
            .collect();
        assert_eq!(established.len(), 1, "{events}");
        assert!(
            established[0].contains("\"tls\":{\"version\":\"TLSv1.3\""),
            "{events}"
        );
        assert!(established[0].contains("\"sni\":\"localhost\""), "{events}");
        // The line sent and its echo, by SHA-256.
        let messages = events
            .lines()
            .filter(|l| l.contains("\"event\":\"message\"") && l.contains(&want))
            .count();
        assert_eq!(messages, 2, "{events}");
    }
    // A malformed key log line is named with its line number and skipped; a missing key log
    // is an error naming it.
    let bad = write(d.join("bad.keys"), "# comment\nCLIENT_RANDOM zz 00\n");
    let out = run(&["inspect", "-q", pcap.to_str().unwrap(), "--keylog", &bad]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("bad.keys:2: key log line skipped: client random is not 64 hex"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "inspect",
        pcap.to_str().unwrap(),
        "--keylog",
        "/nonexistent/k",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/k: cannot read the key log"),
        "{}",
        stderr(&out)
    );
    let out = run(&["inspect", pcap.to_str().unwrap(), "--events", "-"]);
    let events = String::from_utf8(out.stdout).unwrap();
    assert!(events.contains("\"event\":\"tls_undecrypted\""), "{events}");
    assert!(!events.contains("\"event\":\"established\""), "{events}");
}

/// `SSLKEYLOGFILE` is honoured without `--keylog`.
#[test]
fn connect_honours_sslkeylogfile() {
    let (cert, key) = self_signed_ca_true();
    let server = serve_tls("sslkeylogfile", &cert, &key);
    let d = dir("sslkeylogfile");
    let keys = d.join("env.keys");
    let _ = std::fs::remove_file(&keys);
    let pinned = write(d.join("pinned.pem"), &cert);
    let mut client = wscope()
        .args([
            "connect",
            &format!("wss://localhost:{}/", server.port),
            "--ca",
            &pinned,
        ])
        .env("SSLKEYLOGFILE", &keys)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    client.stdin.take().unwrap().write_all(b"x\n").unwrap();
    let out = client.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&keys).unwrap();
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        assert!(text.contains(label), "{label}: {text}");
    }
}

// ---- HTTP/2 (RFC 8441) ----

/// `wscope connect [--http2] URL extra...` with `lines` on stdin, to its end.
fn connect_with_lines(url: &str, extra: &[&str], lines: &str) -> Output {
    let mut client = wscope()
        .args(["connect", url])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    client
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    client.wait_with_output().unwrap()
}

#[test]
fn serve_http2_takes_both_versions_on_one_port_and_connect_http2_uses_it() {
    let server = Served::start(&["--echo", "--http2"]);
    let expected = format!("ws://127.0.0.1:{}", server.port);
    assert_eq!(
        server.url, expected,
        "the URL is the first line's last word"
    );
    let url = format!("{}/h2", server.url);
    for extra in [&["--http2"][..], &[]] {
        let out = connect_with_lines(&url, extra, "one\ntwo\n");
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {}", stderr(&out));
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "one\ntwo\n");
    }
    // TLS: ALPN decides.
    let (cert, key) = self_signed_ca_true();
    let d = dir("serve-http2-tls");
    let cert_file = write(d.join("cert.pem"), &cert);
    let key_file = write(d.join("key.pem"), &key);
    let tls = Served::start(&[
        "--echo",
        "--http2",
        "--tls-cert",
        &cert_file,
        "--tls-key",
        &key_file,
    ]);
    let url = format!("wss://localhost:{}/", tls.port);
    for extra in [&["--http2", "--ca", &cert_file][..], &["--ca", &cert_file]] {
        let out = connect_with_lines(&url, extra, "over tls\n");
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {}", stderr(&out));
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "over tls\n");
    }
}

#[test]
fn connect_http2_to_a_tls_server_without_h2_says_so() {
    let (cert, key) = self_signed_ca_true();
    let server = serve_tls("no-h2-alpn", &cert, &key);
    let d = dir("no-h2-alpn");
    let pinned = write(d.join("pinned.pem"), &cert);
    let url = format!("wss://localhost:{}/", server.port);
    let out = connect_with_lines(&url, &["--http2", "--ca", &pinned], "x\n");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("did not choose HTTP/2 (ALPN h2)"), "{err}");
}

#[test]
fn connect_http2_to_a_server_without_h2c_says_what_to_check() {
    let server = Served::start(&["--echo"]);
    let out = connect_with_lines(&server.url, &["--http2"], "x\n");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("127.0.0.1:{}", server.port)), "{err}");
    assert!(err.contains("is it an HTTP/2 WebSocket server?"), "{err}");
    assert!(err.contains("wscope serve --http2"), "{err}");
}
