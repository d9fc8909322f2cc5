//! Memory of permessage-deflate, counted by a global allocator (its own test binary, with a
//! single test, so no other test allocates meanwhile): negotiating it allocates no zlib
//! context, the first message does, and without context takeover nothing is kept after it.

use wscope_proto::connection::{Config, Connection, DeflateOptions, Outgoing};
use wscope_proto::deflate::{DeflateParams, Deflater};
use wscope_proto::Instant;
use wscope_test_support::CountingAlloc;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc::new();

fn live() -> usize {
    GLOBAL.live()
}

/// A client's compressed text message, masked with a zero key.
fn compressed_frame(tx: &mut Deflater, text: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    tx.compress(text.as_bytes(), true, &mut payload);
    let mut frame = vec![0xc1, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(&payload);
    frame
}

/// Bytes `conns` server connections hold, all kept open: (after the handshake, after each
/// received one message and sent one, and read again).
fn held(params: DeflateParams, conns: usize) -> (usize, usize) {
    let mut servers = Vec::new();
    let mut out = Vec::with_capacity(1 << 16);
    // Each connection's first message, from a client compressor of its own.
    let mut wires: Vec<Vec<u8>> = (0..conns)
        .map(|i| {
            let mut tx = Deflater::new(6, 15, params.client_no_context_takeover);
            compressed_frame(
                &mut tx,
                &format!("message {i} from the client, hello hello"),
            )
        })
        .collect();
    let before = live();
    for _ in 0..conns {
        let mut server = Connection::server(Config::default(), Instant::ZERO);
        server.enable_deflate(params, DeflateOptions::default());
        servers.push(server);
    }
    let idle = live() - before;
    for (server, wire) in servers.iter_mut().zip(&mut wires) {
        let mut at = 0;
        while at < wire.len() {
            let step = server
                .recv(Instant::ZERO, &mut wire[at..])
                .expect("valid frame");
            at += step.consumed;
        }
        out.clear();
        server
            .send(
                &mut out,
                Outgoing::Text("a reply long enough to be compressed"),
            )
            .expect("send");
        // The driver has used the inflated data.
        server.release_inflated();
    }
    (idle / conns, (live() - before) / conns)
}

#[test]
fn negotiated_deflate_allocates_on_first_message_and_frees_without_takeover() {
    const CONNS: usize = 32;
    let takeover = DeflateParams::default();
    let (idle, active) = held(takeover, CONNS);
    // No zlib context at the handshake (it was about 420 KB per connection: both contexts).
    assert!(idle < 4 * 1024, "an idle connection holds {idle} bytes");
    // With context takeover a message leaves both contexts (about 350 KB at window 15).
    assert!(
        active > 200 * 1024,
        "an active connection holds only {active} bytes"
    );
    let no_takeover = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflateParams::default()
    };
    let (idle, after) = held(no_takeover, CONNS);
    assert!(idle < 4 * 1024, "an idle connection holds {idle} bytes");
    // Without takeover nothing stays with a connection after its message: the contexts go
    // back to the thread's pool (a few, shared by every connection), the buffers are freed.
    assert!(
        after < 4 * 1024 + 500 * 1024 / CONNS,
        "without takeover {after} bytes per connection are kept after a message"
    );
}
