//! The `wscope` binary: `serve --echo` and `connect` end to end.

use core::time::Duration;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use wscope::{CloseCode, Message};

#[path = "cli/endpoints.rs"]
mod endpoints;

/// A running `wscope serve`, killed when dropped, however the test ends (a panicking test
/// leaves no server behind).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `wscope serve --echo` on an ephemeral port; returns the server and its address.
fn serve(extra: &[&str]) -> (Server, String) {
    spawn_server(Command::new(env!("CARGO_BIN_EXE_wscope")), extra)
}

/// Runs `cmd` with `serve --echo --port 0` and `extra` appended, and reads the URL the server
/// announces on its first line of standard error.
fn spawn_server(mut cmd: Command, extra: &[&str]) -> (Server, String) {
    let mut child = cmd
        .args(["serve", "--echo", "--port", "0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.split_whitespace().last().unwrap().to_owned();
    assert!(url.starts_with("ws"), "{line}");
    (Server(child), url)
}

#[test]
fn serve_echo_keeps_message_types_and_big_messages() {
    let (_server, url) = serve(&[]);
    let (mut ws, _) = wscope::blocking::connect(&url).unwrap();
    ws.send(Message::text("text stays text")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("text stays text"));
    ws.send(Message::binary(vec![7u8; 10])).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(vec![7u8; 10]));
    let big: Vec<u8> = (0..(20usize << 20)).map(|i| i as u8).collect();
    ws.send(Message::binary(big.clone())).unwrap();
    assert!(ws.read().unwrap() == Message::binary(big));
    ws.close(CloseCode::NORMAL, "").unwrap();
}

#[test]
fn serve_echo_refuses_over_max_message_with_1009() {
    let (_server, url) = serve(&["--max-message", "1000"]);
    let (mut ws, _) = wscope::blocking::connect(&url).unwrap();
    ws.send(Message::binary(vec![0u8; 2000])).unwrap();
    match ws.read().unwrap() {
        Message::Close(Some(c)) => assert_eq!(c.code, CloseCode::MESSAGE_TOO_BIG),
        other => panic!("{other:?}"),
    }
}

#[test]
fn connect_sends_stdin_lines_and_prints_replies() {
    let (_server, url) = serve(&[]);
    let mut client = Command::new(env!("CARGO_BIN_EXE_wscope"))
        .args(["connect", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    client
        .stdin
        .take()
        .unwrap()
        .write_all(b"first line\nsecond \xe2\x9c\x93\n")
        .unwrap();
    let out = client.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "first line\nsecond ✓\n"
    );
}

#[test]
fn serve_compress_negotiates_the_window_bits_asked_for() {
    let (_server, url) = serve(&[
        "--compress",
        "--deflate-window-bits",
        "12",
        "--deflate-level",
        "1",
    ]);
    let cfg = wscope::config::ClientConfig::from_url(&url)
        .unwrap()
        .deflate(wscope::config::DeflateConfig::default());
    let (mut ws, response) = wscope::blocking::connect_with(&cfg).unwrap();
    let agreed = response
        .headers()
        .get_str("sec-websocket-extensions")
        .unwrap()
        .to_owned();
    assert!(agreed.starts_with("permessage-deflate"), "{agreed}");
    assert!(agreed.contains("server_max_window_bits=12"), "{agreed}");
    assert!(agreed.contains("client_max_window_bits=12"), "{agreed}");
    let text = "compress me, compress me, compress me ".repeat(500);
    ws.send(Message::text(text.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text(text));
    ws.close(CloseCode::NORMAL, "").unwrap();
}

#[test]
fn serve_refuses_window_bits_outside_9_to_15() {
    for bits in ["8", "16"] {
        let out = Command::new(env!("CARGO_BIN_EXE_wscope"))
            .args([
                "serve",
                "--echo",
                "--compress",
                "--deflate-window-bits",
                bits,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "bits {bits}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("deflate-window-bits"));
    }
}

#[test]
fn serve_pings_a_quiet_client_when_asked() {
    let (_server, url) = serve(&["--ping-interval", "0.1"]);
    let (mut ws, _) = wscope::blocking::connect(&url).unwrap();
    // Nothing sent: the server's keepalive ping arrives (and is answered by the client).
    match ws.read().unwrap() {
        Message::Ping(p) => assert_eq!(p, &b"wscope keepalive"[..]),
        other => panic!("expected a keepalive ping, got {other:?}"),
    }
    // Still open: the automatic pong counted as life.
    ws.send(Message::text("after the ping")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("after the ping"));
    ws.close(CloseCode::NORMAL, "").unwrap();
}

#[test]
fn ping_timeout_needs_ping_interval() {
    let out = Command::new(env!("CARGO_BIN_EXE_wscope"))
        .args(["serve", "--echo", "--ping-timeout", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_wscope"))
        .args(["serve", "--echo", "--ping-interval", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Whether the kernel runs the io_uring driver; tests return early (and say so) where not.
#[cfg(target_os = "linux")]
fn uring_available() -> bool {
    match wscope::uring::supported() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn serve_io_uring_echoes_types_big_messages_compressed_and_pings() {
    if !uring_available() {
        return;
    }
    // A long ping timeout: an unoptimised client masking 20 MiB on a loaded machine is silent
    // for longer than the interval, and must not be cut off for it.
    let (_server, url) = serve(&[
        "--io-uring",
        "--compress",
        "--ping-interval",
        "0.2",
        "--ping-timeout",
        "60",
    ]);
    let (mut ws, _) = wscope::blocking::connect(&url).unwrap();
    // Keepalive pings may come at any time while the client only reads: skip them.
    fn read<S: wscope::blocking::Transport>(ws: &mut wscope::blocking::WebSocket<S>) -> Message {
        loop {
            match ws.read().unwrap() {
                Message::Ping(_) => {}
                other => return other,
            }
        }
    }
    ws.send(Message::text("text stays text")).unwrap();
    assert_eq!(read(&mut ws), Message::text("text stays text"));
    ws.send(Message::binary(vec![7u8; 10])).unwrap();
    assert_eq!(read(&mut ws), Message::binary(vec![7u8; 10]));
    // Quiet now: the keepalive ping comes. (Before the big message: a ping answered during
    // it would put the next one a whole ping timeout later, see `wscope_proto::keepalive`.)
    match ws.read().unwrap() {
        Message::Ping(p) => assert_eq!(p, &b"wscope keepalive"[..]),
        other => panic!("expected a keepalive ping, got {other:?}"),
    }
    let big: Vec<u8> = (0..(20usize << 20)).map(|i| i as u8).collect();
    ws.send(Message::binary(big.clone())).unwrap();
    assert!(read(&mut ws) == Message::binary(big));
    ws.close(CloseCode::NORMAL, "").unwrap();
    // permessage-deflate through the same driver.
    let cfg = wscope::config::ClientConfig::from_url(&url)
        .unwrap()
        .deflate(wscope::config::DeflateConfig::default());
    let (mut ws, response) = wscope::blocking::connect_with(&cfg).unwrap();
    let agreed = response.headers().get_str("sec-websocket-extensions");
    assert!(agreed.is_some_and(|a| a.starts_with("permessage-deflate")));
    let text = "compress me, compress me, compress me ".repeat(500);
    ws.send(Message::text(text.clone())).unwrap();
    assert_eq!(read(&mut ws), Message::text(text));
    ws.close(CloseCode::NORMAL, "").unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn serve_io_uring_on_two_threads_echoes_every_connection() {
    if !uring_available() {
        return;
    }
    let (_server, url) = serve(&["--io-uring", "--threads", "2"]);
    // Connections land on either thread's listener (the library test checks the spread).
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let (mut ws, _) = wscope::blocking::connect(&url).unwrap();
                for j in 0..20 {
                    let text = format!("client {i} message {j}");
                    ws.send(Message::text(text.clone())).unwrap();
                    assert_eq!(ws.read().unwrap(), Message::text(text));
                }
                ws.close(CloseCode::NORMAL, "").unwrap();
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

/// A CA and a certificate for `localhost` signed by it, written as PEM files under the
/// target directory: (ca_pem, cert_path, key_path).
fn certificate_files(name: &str) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let (ca, leaf, leaf_key) = ca_and_leaf("localhost");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, leaf).unwrap();
    std::fs::write(&key, leaf_key).unwrap();
    (ca, cert, key)
}

/// A fresh CA and a certificate for `name` it issued: (ca_pem, cert_pem, key_pem).
fn ca_and_leaf(name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

/// `serve --echo` with `--tls-cert`/`--tls-key` and `extra`: wss:// announced, and a client
/// that trusts the CA echoes through it.
fn tls_echo_through(name: &str, extra: &[&str]) {
    let (ca, cert, key) = certificate_files(name);
    let mut args = vec![
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (_server, url) = serve(&args);
    assert!(url.starts_with("wss://"), "{url}");
    let port: u16 = url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let cfg = wscope::config::ClientConfig::new("127.0.0.1", port).tls(
        wscope::tls::TlsConfig::new()
            .with_ca_pem(ca)
            .with_sni("localhost"),
    );
    let (mut ws, _) = wscope::blocking::connect_with(&cfg).unwrap();
    ws.send(Message::text("over tls")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("over tls"));
    let big: Vec<u8> = (0..(2usize << 20)).map(|i| i as u8).collect();
    ws.send(Message::binary(big.clone())).unwrap();
    assert!(ws.read().unwrap() == Message::binary(big));
    ws.close(CloseCode::NORMAL, "").unwrap();
}

#[test]
fn serve_tls_echoes() {
    tls_echo_through("tls-tokio", &[]);
}

#[cfg(target_os = "linux")]
#[test]
fn serve_io_uring_tls_echoes() {
    if uring_available() {
        tls_echo_through("tls-uring", &["--io-uring"]);
    }
}

/// `serve --tls-client-ca` lets in only a client with a certificate from that CA; `connect
/// --cert/--key` presents one, and `--sni` names the server's certificate (issued for
/// localhost) while connecting to the announced 127.0.0.1.
#[test]
fn mutual_tls_between_serve_and_connect() {
    mutual_tls_through("mtls-tokio", &[]);
}

#[cfg(target_os = "linux")]
#[test]
fn mutual_tls_between_serve_io_uring_and_connect() {
    if uring_available() {
        mutual_tls_through("mtls-uring", &["--io-uring"]);
    }
}

fn mutual_tls_through(name: &str, extra: &[&str]) {
    let (ca, cert, key) = certificate_files(name);
    let dir = cert.parent().unwrap().to_owned();
    let (client_ca, client_cert, client_key) = ca_and_leaf("wscope client");
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let ca = file("ca.pem", &ca);
    let client_ca = file("client-ca.pem", &client_ca);
    let client_cert = file("client-cert.pem", &client_cert);
    let client_key = file("client-key.pem", &client_key);
    let mut args = vec![
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--tls-client-ca",
        &client_ca,
    ];
    args.extend_from_slice(extra);
    let (_server, url) = serve(&args);
    let connect = |extra: &[&str]| {
        let mut client = Command::new(env!("CARGO_BIN_EXE_wscope"))
            .args(["connect", &url, "--ca", &ca, "--sni", "localhost"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        client.stdin.take().unwrap().write_all(b"mutual\n").unwrap();
        client.wait_with_output().unwrap()
    };
    let out = connect(&["--cert", &client_cert, "--key", &client_key]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "mutual\n");
    let anonymous = connect(&[]);
    assert!(!anonymous.status.success());
    assert!(anonymous.stdout.is_empty());
}

/// Starts `wscope serve --echo` with at most `fds` open file descriptors (through the shell's
/// `ulimit -n`); returns the server and its `host:port`.
fn serve_with_fd_limit(fds: u32, extra: &[&str]) -> (Server, String) {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!("ulimit -n {fds} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_wscope"));
    let (server, url) = spawn_server(sh, extra);
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .to_owned();
    (server, addr)
}

/// Sends an upgrade request and waits up to `wait` for the response's first bytes: true if
/// they are a `101`, false if nothing came in time.
fn upgraded(tcp: &mut std::net::TcpStream, wait: Duration) -> bool {
    use std::io::Read;
    tcp.set_read_timeout(Some(wait)).unwrap();
    let mut head = [0u8; 12];
    match tcp.read_exact(&mut head) {
        Ok(()) => {
            assert_eq!(&head, b"HTTP/1.1 101", "{}", String::from_utf8_lossy(&head));
            // The rest of the response, up to its blank line.
            let mut tail = Vec::new();
            let mut b = [0u8; 1];
            while !tail.ends_with(b"\r\n\r\n") {
                tcp.read_exact(&mut b).unwrap();
                tail.push(b[0]);
            }
            true
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            false
        }
        Err(e) => panic!("{e}"),
    }
}

/// A masked text frame "hi" goes out and its echo comes back on a raw, upgraded connection.
fn echoes_hi(tcp: &mut std::net::TcpStream) {
    use std::io::Read;
    let key = [9u8, 8, 7, 6];
    let mut frame = vec![0x81, 0x82];
    frame.extend_from_slice(&key);
    frame.extend(b"hi".iter().zip(key).map(|(b, k)| b ^ k));
    tcp.write_all(&frame).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut echo = [0u8; 4];
    tcp.read_exact(&mut echo).unwrap();
    assert_eq!(echo, [0x81, 0x02, b'h', b'i']);
}

/// Out of file descriptors, a server keeps serving the connections it has, leaves the others
/// waiting in the listen queue, and takes them once some of its connections close.
fn serve_outlives_running_out_of_file_descriptors(extra: &[&str]) {
    const LIMIT: u32 = 48;
    const CLIENTS: usize = 64;
    let (mut server, addr) = serve_with_fd_limit(LIMIT, extra);
    let request = wscope_test_support::wire::upgrade_request("/", "localhost", None);
    let mut conns: Vec<std::net::TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
            tcp.write_all(&request).unwrap();
            tcp
        })
        .collect();
    let wait = Duration::from_millis(300);
    let served: Vec<bool> = conns.iter_mut().map(|c| upgraded(c, wait)).collect();
    let n = served.iter().filter(|s| **s).count();
    assert!(
        n > 0 && n < CLIENTS,
        "{n} of {CLIENTS} upgraded under a limit of {LIMIT} fds"
    );
    // The server is at its limit: what it accepted still works.
    for (c, _) in conns.iter_mut().zip(&served).filter(|(_, s)| **s) {
        echoes_hi(c);
    }
    // Closing what was served frees descriptors: the waiting connections are taken now.
    let mut waiting: Vec<_> = conns
        .drain(..)
        .zip(served)
        .filter_map(|(c, s)| (!s).then_some(c))
        .collect();
    assert!(
        waiting.len() <= n,
        "the rest fits in what the served ones free"
    );
    for c in &mut waiting {
        assert!(
            upgraded(c, Duration::from_secs(10)),
            "served once fds are free"
        );
        echoes_hi(c);
    }
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "the server is still running"
    );
}

#[test]
fn serve_outlives_running_out_of_file_descriptors_tokio() {
    serve_outlives_running_out_of_file_descriptors(&["--threads", "1"]);
}

#[test]
fn serve_outlives_running_out_of_file_descriptors_io_uring() {
    if !uring_available() {
        return;
    }
    // One server thread: the descriptors the server keeps for itself (a ring, a listener and
    // a stop handle per thread, the signal handlers) do not grow with the machine's CPUs.
    serve_outlives_running_out_of_file_descriptors(&["--io-uring", "--threads", "1"]);
}

#[path = "cli/inspect.rs"]
mod inspect;
