//! A chat server on axum with the `wscope::axum::WebSocketUpgrade` extractor: rooms, and
//! every message broadcast to everyone in the room, compressed with permessage-deflate
//! where the browser offers it.
//!
//! ```text
//! cargo run --example axum_chat --features axum -- [PORT]        (default 3000)
//! open http://127.0.0.1:3000/ in two browser tabs, or:
//! wscope connect ws://127.0.0.1:3000/ws/lobby
//! ```
//!
//! `GET /ws/{room}` upgrades (subprotocol `chat` when offered); each text message is sent to
//! every connection in the room, with the sender's number in front. A room exists while
//! someone is in it.

use core::net::SocketAddr;
use core::sync::atomic::{AtomicU64, Ordering};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::response::{Html, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast;
use wscope::axum::{WebSocket, WebSocketUpgrade};
use wscope::{DeflateConfig, Message};

/// Messages a slow client may fall behind by before it misses some.
const ROOM_BACKLOG: usize = 256;

/// The rooms, by name, and the next visitor's number.
#[derive(Default)]
struct Chat {
    rooms: Mutex<HashMap<String, broadcast::Sender<String>>>,
    visitors: AtomicU64,
}

impl Chat {
    /// Joins `room` (made on first use).
    fn join(&self, room: &str) -> broadcast::Sender<String> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms
            .entry(room.to_owned())
            .or_insert_with(|| broadcast::channel(ROOM_BACKLOG).0)
            .clone()
    }

    /// Forgets `room` once nobody is in it.
    fn leave(&self, room: &str) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if rooms.get(room).is_some_and(|tx| tx.receiver_count() == 0) {
            rooms.remove(room);
        }
    }
}

async fn upgrade(
    upgrade: WebSocketUpgrade,
    Path(room): Path<String>,
    State(chat): State<Arc<Chat>>,
) -> Response {
    upgrade
        .protocols(["chat"])
        .max_message_size(64 * 1024)
        .compression(DeflateConfig::default())
        .on_upgrade(move |ws| visit(ws, room, chat))
}

/// One visitor: their messages go to the room, the room's messages come to them.
async fn visit(ws: WebSocket, room: String, chat: Arc<Chat>) {
    let me = chat.visitors.fetch_add(1, Ordering::Relaxed) + 1;
    let tx = chat.join(&room);
    let mut rx = tx.subscribe();
    let _ = tx.send(format!("* visitor {me} joined {room}"));
    let (mut sink, mut stream) = ws.split();
    // The room to this visitor.
    let mut forward = tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(line) => {
                    if sink.send(Message::text(line)).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let note = format!("* you missed {n} messages");
                    if sink.send(Message::text(note)).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    // This visitor to the room.
    let tx2 = tx.clone();
    let room2 = room.clone();
    let mut receive = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            match msg {
                Message::Text(text) => {
                    let _ = tx2.send(format!("{me}@{room2}: {text}"));
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    });
    // Whichever side ends first ends the visit.
    tokio::select! {
        _ = &mut forward => receive.abort(),
        _ = &mut receive => forward.abort(),
    }
    let _ = tx.send(format!("* visitor {me} left {room}"));
    drop(tx);
    chat.leave(&room);
}

/// A page to try it in a browser.
async fn page() -> Html<&'static str> {
    Html(
        r#"<!doctype html><meta charset="utf-8"><title>wscope chat</title>
<p>Room <input id="room" value="lobby"> <button id="join">join</button></p>
<pre id="log" style="height:20em;overflow:auto;border:1px solid #ccc"></pre>
<input id="msg" size="60" placeholder="message, Enter to send">
<script>
let ws;
const log = (s) => { const l = document.getElementById("log"); l.textContent += s + "\n"; l.scrollTop = l.scrollHeight; };
document.getElementById("join").onclick = () => {
  if (ws) ws.close();
  ws = new WebSocket(`ws://${location.host}/ws/${encodeURIComponent(document.getElementById("room").value)}`, ["chat"]);
  ws.onmessage = (e) => log(e.data);
  ws.onclose = (e) => log(`* closed ${e.code} ${e.reason}`);
};
document.getElementById("msg").onkeydown = (e) => {
  if (e.key === "Enter" && ws) { ws.send(e.target.value); e.target.value = ""; }
};
</script>"#,
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000u16);
    let app = Router::new()
        .route("/", get(page))
        .route("/ws/{room}", get(upgrade))
        .with_state(Arc::new(Chat::default()));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("axum_chat: http://{addr}/ (WebSocket: ws://{addr}/ws/ROOM)");
    axum::serve(listener, app).await
}
