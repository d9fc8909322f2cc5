//! Prepared messages sent to many connections over real sockets: clients with and without
//! permessage-deflate, with and without the server's context takeover, all receive every
//! message in order, interleaved with messages sent the normal way.

use futures_util::{SinkExt, StreamExt};
use wscope::config::{ClientConfig, DeflateConfig, ServerConfig};
use wscope::{blocking, CloseCode, Message, PreparedMessage};

/// A compressible text, different for each `n`.
fn text(n: usize) -> String {
    format!("broadcast number {n}: ") + &"the same words again and again, ".repeat(20 + n)
}

/// What each client offers: nothing, no server context takeover (twice, to share one
/// compressed frame), the server's context takeover, a smaller server window.
fn offers() -> Vec<Option<DeflateConfig>> {
    let no_takeover = DeflateConfig::default().server_no_context_takeover(true);
    vec![
        None,
        Some(no_takeover),
        Some(no_takeover),
        Some(DeflateConfig::default()),
        Some(no_takeover.server_max_window_bits(10)),
    ]
}

#[test]
fn tokio_broadcast_reaches_every_kind_of_client() {
    const ROUNDS: usize = 6;
    let rt = crate::util::current_thread_rt();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let offers = offers();
        let n = offers.len();
        let server = tokio::spawn(async move {
            let cfg = ServerConfig::default().deflate(DeflateConfig::default());
            let mut conns = Vec::new();
            for _ in 0..n {
                let (tcp, _) = listener.accept().await.unwrap();
                conns.push(wscope::tokio::accept_with_config(tcp, &cfg).await.unwrap());
            }
            let mut prepared = Vec::new();
            for round in 0..ROUNDS {
                if round % 3 == 2 {
                    for ws in &mut conns {
                        ws.send(Message::text(text(round))).await.unwrap();
                    }
                } else {
                    let msg = PreparedMessage::text(text(round));
                    for ws in &mut conns {
                        ws.send_prepared(&msg).await.unwrap();
                    }
                    prepared.push(msg);
                }
            }
            for mut ws in conns {
                while let Some(m) = ws.next().await {
                    if m.is_err() {
                        break;
                    }
                }
            }
            prepared
        });
        let mut clients = Vec::new();
        for offer in offers {
            let mut cfg = ClientConfig::from_url(&format!("ws://{addr}/")).unwrap();
            if let Some(d) = offer {
                cfg = cfg.deflate(d);
            }
            clients.push(wscope::tokio::connect_with(&cfg).await.unwrap());
        }
        for ws in &mut clients {
            for round in 0..ROUNDS {
                let got = ws.next().await.unwrap().unwrap();
                assert_eq!(got, Message::text(text(round)), "round {round}");
            }
            ws.close(CloseCode::NORMAL, "").await.unwrap();
        }
        for prepared in server.await.unwrap() {
            // One compressed frame per window among the clients without takeover (15, 10).
            assert_eq!(prepared.compressed_forms(), 2);
        }
    });
}

/// The fan-out group over sockets (vectored writes), on a runtime with two worker threads
/// (publishing from one thread while members write from the other): every kind of client
/// gets every published message in order, with the connections' own replies in between;
/// the clients without the server's context takeover share a compressed frame per window.
#[test]
fn tokio_group_reaches_every_kind_of_client() {
    const MSGS: usize = 40;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let offers = offers();
        let n = offers.len();
        let group = wscope::tokio::Broadcast::new(4 * MSGS);
        let g = group.clone();
        let server = tokio::spawn(async move {
            let cfg = ServerConfig::default().deflate(DeflateConfig::default());
            let mut tasks = Vec::new();
            for _ in 0..n {
                let (tcp, _) = listener.accept().await.unwrap();
                let mut ws = wscope::tokio::accept_with_config(tcp, &cfg).await.unwrap();
                let mut member = g.join();
                tasks.push(tokio::spawn(async move {
                    while let Some(msg) = ws.next_with(&mut member).await {
                        match msg.unwrap() {
                            // The connection's own send, between published messages.
                            Message::Text(t) if t.as_str() == "own?" => {
                                ws.send(Message::text("own!")).await.unwrap()
                            }
                            Message::Close(_) | Message::Ping(_) => {}
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                    assert!(!member.is_joined());
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        let mut clients = Vec::new();
        for offer in offers {
            let mut cfg = ClientConfig::from_url(&format!("ws://{addr}/")).unwrap();
            if let Some(d) = offer {
                cfg = cfg.deflate(d);
            }
            clients.push(wscope::tokio::connect_with(&cfg).await.unwrap());
        }
        while group.len() < n {
            tokio::task::yield_now().await;
        }
        let mut prepared = Vec::new();
        for i in 0..MSGS {
            if i == MSGS / 2 {
                for ws in &mut clients {
                    ws.send(Message::text("own?")).await.unwrap();
                }
            }
            let msg = PreparedMessage::text(text(i));
            assert_eq!(group.publish(&msg), n);
            prepared.push(msg);
        }
        for ws in &mut clients {
            let mut own = 0;
            let mut next = 0;
            while next < MSGS || own == 0 {
                match ws.next().await.unwrap().unwrap() {
                    Message::Text(t) if t.as_str() == "own!" => own += 1,
                    got => {
                        assert_eq!(got, Message::text(text(next)), "message {next}");
                        next += 1;
                    }
                }
            }
            assert_eq!(own, 1);
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            while let Some(m) = ws.next().await {
                assert!(matches!(m, Ok(Message::Close(_))), "{m:?}");
            }
        }
        server.await.unwrap();
        assert!(group.is_empty());
        for msg in prepared {
            // One compressed frame per window among the clients without takeover (15, 10).
            assert_eq!(msg.compressed_forms(), 2);
        }
    });
}

#[test]
fn blocking_send_prepared_goes_to_each_connection() {
    let msg = PreparedMessage::binary(vec![7u8; 3000]);
    let (addr, server) = crate::util::one_shot_server(ServerConfig::default(), move |server| {
        let mut ws = server.accept().unwrap();
        ws.send_prepared(&msg).unwrap();
        ws.send_prepared(&msg).unwrap();
        ws.close(CloseCode::NORMAL, "").unwrap();
        while ws.read().is_ok() {}
    });
    let (mut ws, _) = blocking::connect(&format!("ws://{addr}/")).unwrap();
    for _ in 0..2 {
        assert_eq!(ws.read().unwrap(), Message::binary(vec![7u8; 3000]));
    }
    assert!(matches!(ws.read().unwrap(), Message::Close(_)));
    server.join().unwrap();
}
