//! [`Broadcast`]: a fan-out group of tokio connections, where one [`PreparedMessage`] is
//! published to every member with one call.
//!
//! What it is for: a pub/sub server (a chat room, a price feed) sends the same message to
//! thousands of connections. With a channel per connection (`tokio::sync::broadcast`) every
//! connection's task is woken for every message and takes each one through the channel's
//! bookkeeping. Here [`Broadcast::publish`] appends the shared frame to each member's
//! *outbox* (a reference count, no encoding, no copy) and wakes a member only when its outbox
//! goes from empty to non-empty; the member's task, in [`WebSocketStream::next_with`], moves
//! everything waiting into its write queue through the connection's send rules and writes it
//! with as few system calls as the socket allows.
//!
//! What it leaves to others: the send rules are the core's (`Connection::shared_send`, the
//! sequencing of data frames, nothing after a close): a published message goes through
//! [`crate::session::Session`]'s `send_prepared` like any other prepared message, so a frame
//! is never interleaved with the connection's own sends (pongs, the close), nothing is written
//! after this side's close frame, and permessage-deflate members share a compressed frame
//! only where the negotiated parameters allow it.
//!
//! Memory stays bounded: a member's outbox holds at most the group's capacity; when a member
//! does not keep up (its peer does not read), the oldest messages waiting for it are dropped
//! and [`WebSocketStream::next_with`] reports how many with [`Error::Lagged`] (as
//! `tokio::sync::broadcast` does), after which the member goes on with the newer ones.
//!
//! ```no_run
//! use wscope::tokio::{accept_async, Broadcast};
//! use wscope::{Message, PreparedMessage};
//!
//! # async fn serve(listener: tokio::net::TcpListener) -> wscope::Result<()> {
//! let room = Broadcast::new(1024);
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let room = room.clone();
//!     tokio::spawn(async move {
//!         let mut ws = accept_async(tcp).await?;
//!         let mut member = room.join();
//!         // Reads this connection's messages and, meanwhile, writes what the room publishes.
//!         while let Some(msg) = ws.next_with(&mut member).await {
//!             match msg {
//!                 Ok(Message::Text(t)) => {
//!                     room.publish(&PreparedMessage::text(t));
//!                 }
//!                 Ok(_) => {}
//!                 Err(wscope::Error::Lagged { .. }) => {} // missed some; goes on
//!                 Err(e) => return Err(e),
//!             }
//!         }
//!         Ok::<(), wscope::Error>(())
//!     });
//! }
//! # }
//! ```

use core::task::Waker;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::prepared::PreparedMessage;
use crate::session::Session;

#[cfg(doc)]
use super::WebSocketStream;

/// A fan-out group: [`Self::publish`] queues one [`PreparedMessage`] for every member
/// ([`Self::join`]). Cloning shares the group. Members are served by their connection's
/// task in [`WebSocketStream::next_with`].
#[derive(Clone)]
pub struct Broadcast {
    group: Arc<Group>,
}

/// The group's state, shared by its handles and members.
struct Group {
    /// Messages an outbox holds at most.
    capacity: usize,
    members: Mutex<Members>,
}

/// The members' outboxes, in slots that are reused.
#[derive(Default)]
struct Members {
    slots: Vec<Option<Arc<Slot>>>,
    free: Vec<usize>,
    count: usize,
}

/// One member's outbox, shared by the group (which fills it) and the member (which empties
/// it).
#[derive(Default)]
struct Slot {
    outbox: Mutex<Outbox>,
}

#[derive(Default)]
struct Outbox {
    queue: VecDeque<PreparedMessage>,
    /// The member's task, stored when it found the outbox empty: woken by the next publish.
    waker: Option<Waker>,
    /// Messages dropped because the outbox was full, not yet reported.
    missed: u64,
}

impl Broadcast {
    /// A group whose members each hold at most `capacity` messages waiting (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            group: Arc::new(Group {
                capacity: capacity.max(1),
                members: Mutex::new(Members::default()),
            }),
        }
    }

    /// Adds a member: it receives every message published from now on, until it is dropped
    /// or its connection ends.
    pub fn join(&self) -> Member {
        let slot = Arc::new(Slot::default());
        let mut m = self.group.lock();
        let index = match m.free.pop() {
            Some(i) => {
                if let Some(s) = m.slots.get_mut(i) {
                    *s = Some(slot.clone());
                }
                i
            }
            None => {
                m.slots.push(Some(slot.clone()));
                m.slots.len() - 1
            }
        };
        m.count += 1;
        Member {
            slot,
            group: self.group.clone(),
            index: Some(index),
            taken: VecDeque::new(),
        }
    }

    /// Queues `msg` for every member (a reference to the one encoded frame each); a member
    /// whose outbox is full loses its oldest waiting message (see [`Error::Lagged`]).
    /// Returns the number of members.
    pub fn publish(&self, msg: &PreparedMessage) -> usize {
        let m = self.group.lock();
        for slot in m.slots.iter().flatten() {
            let waker = {
                let mut o = slot.lock();
                if o.queue.len() >= self.group.capacity {
                    o.queue.pop_front();
                    o.missed += 1;
                }
                o.queue.push_back(msg.clone());
                // Stored only while the member had nothing to do: it is woken once per
                // empty-to-non-empty change, not once per message.
                o.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
        m.count
    }

    /// Members now.
    pub fn len(&self) -> usize {
        self.group.lock().count
    }

    /// The group has no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages a member's outbox holds at most.
    pub fn capacity(&self) -> usize {
        self.group.capacity
    }
}

impl core::fmt::Debug for Broadcast {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Broadcast")
            .field("members", &self.len())
            .field("capacity", &self.group.capacity)
            .finish()
    }
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One connection's membership of a [`Broadcast`]: pass it to
/// [`WebSocketStream::next_with`]. Dropping it leaves the group; so does the end of its
/// connection.
pub struct Member {
    slot: Arc<Slot>,
    group: Arc<Group>,
    /// The slot's index in the group (`None` once left).
    index: Option<usize>,
    /// Messages taken out of the outbox, not yet queued on the connection (its write queue
    /// was full).
    taken: VecDeque<PreparedMessage>,
}

/// What [`Member::deliver`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Nothing waits: the member's task is woken by the next publish.
    Idle,
    /// The write queue is full: more waits, to be queued once some is written.
    Full,
    /// Messages were dropped before the ones now waiting (the outbox was full).
    Lagged(u64),
    /// The connection is in the middle of a fragmented message of its own: published
    /// messages wait until it ends.
    Blocked,
    /// The connection is closing or closed: the member left the group.
    Left,
}

impl Member {
    /// The member still belongs to its group (it leaves when its connection closes).
    pub fn is_joined(&self) -> bool {
        self.index.is_some()
    }

    /// Leaves the group now (dropping the member does too): nothing more is queued for it
    /// and what waits is dropped.
    pub fn leave(&mut self) {
        if let Some(i) = self.index.take() {
            let mut m = self.group.lock();
            if let Some(s) = m.slots.get_mut(i) {
                *s = None;
                m.free.push(i);
                m.count -= 1;
            }
        }
        self.taken.clear();
        let mut o = self.slot.lock();
        o.queue = VecDeque::new();
        o.waker = None;
    }

    /// Messages waiting for this member (in its outbox and taken from it).
    pub fn pending(&self) -> usize {
        self.taken.len() + self.slot.lock().queue.len()
    }

    /// Moves the published messages waiting for this member into `session`'s write queue,
    /// in order and through the core's send rules, until none is left or the queue is
    /// full. `waker` is stored to be woken by the next publish when none is left.
    pub(crate) fn deliver(&mut self, session: &mut Session, waker: &Waker) -> Result<Delivery> {
        if self.index.is_none() {
            return Ok(Delivery::Left);
        }
        loop {
            while !self.taken.is_empty() {
                if session.write_full() {
                    return Ok(Delivery::Full);
                }
                let Some(msg) = self.taken.pop_front() else {
                    break;
                };
                match session.send_prepared_owned(msg) {
                    Ok(()) => {}
                    Err((Error::AlreadyClosed, _)) => {
                        self.leave();
                        return Ok(Delivery::Left);
                    }
                    Err((
                        Error::Send(wscope_proto::connection::SendError::FragmentSequence),
                        msg,
                    )) => {
                        self.taken.push_front(msg);
                        return Ok(Delivery::Blocked);
                    }
                    Err((e, _)) => return Err(e),
                }
            }
            let missed = {
                let mut o = self.slot.lock();
                if o.queue.is_empty() {
                    if !o.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
                        o.waker = Some(waker.clone());
                    }
                    // Nothing waits: an idle member keeps no queue memory beyond a small one.
                    if self.taken.capacity() > SPARE_KEEP {
                        self.taken = VecDeque::new();
                    }
                    return Ok(Delivery::Idle);
                }
                // Swap: the outbox keeps the (empty) buffer taken last time, no allocation.
                core::mem::swap(&mut o.queue, &mut self.taken);
                core::mem::take(&mut o.missed)
            };
            if missed > 0 {
                return Ok(Delivery::Lagged(missed));
            }
        }
    }
}

/// Queue slots an idle member keeps for the next burst.
const SPARE_KEEP: usize = 64;

impl Drop for Member {
    fn drop(&mut self) {
        self.leave();
    }
}

impl core::fmt::Debug for Member {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Member")
            .field("joined", &self.is_joined())
            .field("pending", &self.pending())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use wscope_proto::connection::Config;
    use wscope_proto::{CloseCode, Role};

    use super::*;
    use crate::message::Message;
    use crate::tokio::WebSocketStream;

    /// A server connection over a pipe of `pipe` bytes, and the client's raw end.
    fn server(pipe: usize) -> (WebSocketStream<DuplexStream>, DuplexStream) {
        let (server_io, client_io) = tokio::io::duplex(pipe);
        (
            WebSocketStream::from_raw_socket(server_io, Role::Server, Config::default()),
            client_io,
        )
    }

    /// Unmasked frames in `wire`: (opcode byte, payload).
    fn frames(mut wire: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while wire.len() >= 2 {
            let (len, at) = match wire[1] & 0x7f {
                0x7e => (usize::from(u16::from_be_bytes([wire[2], wire[3]])), 4),
                0x7f => panic!("no 64-bit lengths here"),
                n => (usize::from(n), 2),
            };
            out.push((wire[0], wire[at..at + len].to_vec()));
            wire = &wire[at + len..];
        }
        assert!(wire.is_empty(), "a frame cut short");
        out
    }

    /// Runs `next_with` until it has nothing more to do for 20 ms (what it returned).
    async fn settle(
        ws: &mut WebSocketStream<DuplexStream>,
        m: &mut Member,
    ) -> Vec<Option<Result<Message>>> {
        let mut got = Vec::new();
        while let Ok(r) = tokio::time::timeout(Duration::from_millis(20), ws.next_with(m)).await {
            let end = r.is_none();
            got.push(r);
            if end {
                break;
            }
        }
        got
    }

    /// Reads what the server wrote so far.
    async fn drain(client: &mut DuplexStream) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut buf = vec![0; 1 << 16];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(20), client.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            wire.extend_from_slice(&buf[..n]);
        }
        wire
    }

    #[tokio::test]
    async fn published_messages_go_out_whole_in_order_with_the_connections_own_sends() {
        let group = Broadcast::new(64);
        let (mut ws, mut client) = server(1 << 20);
        let mut m = group.join();
        assert_eq!(group.len(), 1);
        for n in 0..3u8 {
            assert_eq!(group.publish(&PreparedMessage::binary(vec![n; 300])), 1);
        }
        // A ping from the peer: its pong is the core's own send.
        client
            .write_all(&[0x89, 0x82, 0, 0, 0, 0, 7, 7])
            .await
            .unwrap();
        assert!(matches!(
            settle(&mut ws, &mut m).await[..],
            [Some(Ok(Message::Ping(_)))]
        ));
        futures_util::SinkExt::send(&mut ws, Message::binary(vec![9; 10]))
            .await
            .unwrap();
        group.publish(&PreparedMessage::text("after"));
        settle(&mut ws, &mut m).await;
        let got = frames(&drain(&mut client).await);
        let want: Vec<(u8, Vec<u8>)> = vec![
            (0x82, vec![0; 300]),
            (0x82, vec![1; 300]),
            (0x82, vec![2; 300]),
            (0x8a, vec![7, 7]),
            (0x82, vec![9; 10]),
            (0x81, b"after".to_vec()),
        ];
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_member_whose_peer_does_not_read_lags_within_its_bound() {
        const CAP: usize = 8;
        let group = Broadcast::new(CAP);
        // 64 KiB of pipe that nobody reads, behind a 128 KiB write queue.
        let (mut ws, mut client) = server(1 << 16);
        let mut m = group.join();
        let (mut missed, mut lagged) = (0, 0);
        let mut count = |got: Vec<Option<Result<Message>>>| {
            for r in got {
                if let Some(Err(Error::Lagged { missed: k })) = r {
                    missed += k;
                    lagged += 1;
                }
            }
        };
        for n in 0..100u32 {
            let mut payload = vec![0u8; 4000];
            payload[..4].copy_from_slice(&n.to_be_bytes());
            group.publish(&PreparedMessage::binary(payload));
            assert!(m.pending() <= 2 * CAP, "{} waiting", m.pending());
            count(settle(&mut ws, &mut m).await);
            assert!(ws.session.out.len() < ws.session.write_limit + 4100);
        }
        // Now the peer reads: what was not dropped arrives, in order, whole, after the
        // member was told how many it lost.
        let reader = tokio::spawn(async move { drain(&mut client).await });
        count(settle(&mut ws, &mut m).await);
        assert!(lagged > 0 && missed > 0);
        let got = frames(&reader.await.unwrap());
        let seq: Vec<u32> = got
            .iter()
            .map(|(op, p)| {
                assert_eq!((*op, p.len()), (0x82, 4000));
                u32::from_be_bytes([p[0], p[1], p[2], p[3]])
            })
            .collect();
        assert!(seq.windows(2).all(|w| w[0] < w[1]), "{seq:?}");
        assert_eq!(seq.len() as u64 + missed, 100);
        assert_eq!(seq.last(), Some(&99));
    }

    #[tokio::test]
    async fn nothing_is_written_after_the_close_frame_and_the_member_leaves() {
        let group = Broadcast::new(16);
        let (mut ws, mut client) = server(1 << 20);
        let mut m = group.join();
        group.publish(&PreparedMessage::text("before"));
        ws.close(CloseCode::NORMAL, "bye").await.unwrap();
        assert!(m.is_joined());
        assert_eq!(group.publish(&PreparedMessage::text("after")), 1);
        settle(&mut ws, &mut m).await;
        assert!(!m.is_joined(), "a closing connection leaves the group");
        assert_eq!(group.len(), 0);
        assert_eq!(group.publish(&PreparedMessage::text("later")), 0);
        assert_eq!(m.pending(), 0);
        let got = frames(&drain(&mut client).await);
        // The close was queued before the member's outbox was delivered: nothing follows it.
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, 0x88);
    }

    #[tokio::test]
    async fn members_that_are_dropped_or_whose_connection_ended_leave() {
        let group = Broadcast::new(16);
        let a = group.join();
        let mut b = group.join();
        let c = group.join();
        assert_eq!(group.len(), 3);
        drop(a);
        assert_eq!(group.publish(&PreparedMessage::text("x")), 2);
        // A slot is reused by the next member, which gets only what is published after it.
        let mut d = group.join();
        assert_eq!(group.len(), 3);
        assert_eq!((b.pending(), c.pending(), d.pending()), (1, 1, 0));
        b.leave();
        assert_eq!(group.len(), 2);
        // The connection ends: `next_with` returns `None` and the member has left.
        let (mut ws, client) = server(1 << 16);
        drop(client);
        while let Some(r) = ws.next_with(&mut d).await {
            assert!(r.is_err(), "{r:?}");
        }
        assert!(!d.is_joined());
        assert_eq!(group.len(), 1);
        drop(c);
        assert!(group.is_empty());
    }
}
