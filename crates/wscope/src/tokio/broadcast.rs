//! [`Broadcast`]: a fan-out group of tokio connections, where one [`PreparedMessage`] is
//! published to every member with one call.
//!
//! What it is for: a pub/sub server (a chat room, a price feed) sends the same message to
//! thousands of connections. With a channel per connection (`tokio::sync::broadcast`) every
//! connection's task is woken for every message and takes each one through the channel's
//! bookkeeping. Here [`Broadcast::publish`] appends the message once to the group's log (a
//! reference, no encoding, no copy, whatever the number of members) and wakes only the
//! members that had sent everything before it; each member's task, in
//! [`WebSocketStream::next_with`], moves everything new into its write queue through the
//! connection's send rules (the frame itself, not a copy, on a socket) and writes it with as
//! few system calls as the socket allows.
//!
//! What it leaves to others: the send rules are the core's (`Connection::shared_send`, the
//! sequencing of data frames, nothing after a close): a published message goes through
//! [`crate::session::Session`]'s `send_prepared` like any other prepared message, so a frame
//! is never interleaved with the connection's own sends (pongs, the close), nothing is written
//! after this side's close frame, and permessage-deflate members share a compressed frame
//! only where the negotiated parameters allow it.
//!
//! Memory stays bounded: the group keeps its last `capacity` messages, and a member holds no
//! more than its connection's write queue (about 128 KiB); a member that falls further behind
//! than the group keeps (its peer does not read) skips the oldest messages, and
//! [`WebSocketStream::next_with`] reports how many with [`Error::Lagged`] (as
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

use core::sync::atomic::{AtomicU64, Ordering};
use core::task::Waker;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::error::{Error, Result};
use crate::prepared::PreparedMessage;
use crate::session::Session;

#[cfg(doc)]
use super::WebSocketStream;

/// A fan-out group: [`Self::publish`] makes one [`PreparedMessage`] the next message of
/// every member ([`Self::join`]). Cloning shares the group. Members are served by their
/// connection's task in [`WebSocketStream::next_with`].
///
/// The group keeps the last `capacity` messages published (references to them), which the
/// members read at their own pace: a publish costs the same however many members there are
/// (it appends one reference and wakes the members that had nothing left to send), and each
/// member takes everything new in one go.
#[derive(Clone)]
pub struct Broadcast {
    group: Arc<Group>,
}

/// The group's state, shared by its handles and members.
struct Group {
    /// Messages kept at most.
    capacity: usize,
    /// The messages kept, oldest first.
    log: RwLock<Log>,
    /// Sequence number of the next message published (the end of the log), read without the
    /// lock by members going idle.
    end: AtomicU64,
    /// Members and the wakers of those waiting for the next message.
    members: Mutex<Members>,
}

/// The last messages published: `ring[i]` has sequence number `start + i`.
#[derive(Default)]
struct Log {
    ring: VecDeque<PreparedMessage>,
    start: u64,
}

/// The members' slots (reused), the wakers of those waiting, and their count.
#[derive(Default)]
struct Members {
    slots: Vec<WaitSlot>,
    free: Vec<usize>,
    /// Slots whose waker the next publish wakes (each once: see [`WaitSlot::listed`]).
    listed: Vec<usize>,
    count: usize,
}

#[derive(Default)]
struct WaitSlot {
    /// The member's task, stored when it had sent everything published.
    waker: Option<Waker>,
    /// The slot is in [`Members::listed`] (until the next publish).
    listed: bool,
}

impl Broadcast {
    /// A group that keeps the last `capacity` messages (at least 1): a member that falls
    /// further behind than that loses the oldest ones ([`Error::Lagged`]).
    pub fn new(capacity: usize) -> Self {
        Self {
            group: Arc::new(Group {
                capacity: capacity.max(1),
                log: RwLock::new(Log::default()),
                end: AtomicU64::new(0),
                members: Mutex::new(Members::default()),
            }),
        }
    }

    /// Adds a member: it receives every message published from now on, until it is dropped
    /// or its connection ends.
    pub fn join(&self) -> Member {
        let mut m = self.group.lock_members();
        let slot = match m.free.pop() {
            Some(i) => i,
            None => {
                m.slots.push(WaitSlot::default());
                m.slots.len() - 1
            }
        };
        m.count += 1;
        // Under the members' lock: a publish now either came before (not for this member)
        // or comes after this read.
        let cursor = self.group.end.load(Ordering::Acquire);
        Member {
            group: self.group.clone(),
            slot: Some(slot),
            cursor,
        }
    }

    /// Publishes `msg` to every member (one reference to the one encoded frame, however many
    /// members), and wakes the members that had sent everything before it. Returns the
    /// number of members.
    pub fn publish(&self, msg: &PreparedMessage) -> usize {
        {
            let mut log = self.group.write_log();
            if log.ring.len() >= self.group.capacity {
                log.ring.pop_front();
                log.start += 1;
            }
            log.ring.push_back(msg.clone());
            self.group
                .end
                .store(log.start + log.ring.len() as u64, Ordering::Release);
        }
        let mut m = self.group.lock_members();
        let Members {
            slots,
            listed,
            count,
            ..
        } = &mut *m;
        for i in listed.drain(..) {
            if let Some(s) = slots.get_mut(i) {
                s.listed = false;
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
        }
        *count
    }

    /// Members now.
    pub fn len(&self) -> usize {
        self.group.lock_members().count
    }

    /// The group has no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages the group keeps at most.
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
    fn lock_members(&self) -> MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_log(&self) -> std::sync::RwLockReadGuard<'_, Log> {
        self.log.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_log(&self) -> std::sync::RwLockWriteGuard<'_, Log> {
        self.log.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// One connection's membership of a [`Broadcast`]: pass it to
/// [`WebSocketStream::next_with`]. Dropping it leaves the group; so does the end of its
/// connection.
pub struct Member {
    group: Arc<Group>,
    /// The member's slot in the group (`None` once left).
    slot: Option<usize>,
    /// Sequence number of the next message to send.
    cursor: u64,
}

/// What [`Member::deliver`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Nothing waits: the member's task is woken by the next publish.
    Idle,
    /// The write queue is full: more waits, to be queued once some is written.
    Full,
    /// Messages were dropped before the ones now waiting (the member fell behind by more
    /// than the group keeps).
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
        self.slot.is_some()
    }

    /// Leaves the group now (dropping the member does too): nothing more is sent for it.
    pub fn leave(&mut self) {
        if let Some(i) = self.slot.take() {
            let mut m = self.group.lock_members();
            if let Some(s) = m.slots.get_mut(i) {
                s.waker = None;
            }
            m.free.push(i);
            m.count -= 1;
        }
    }

    /// Messages published that this member has not sent yet (at most the group's
    /// capacity; 0 once it left).
    pub fn pending(&self) -> usize {
        if self.slot.is_none() {
            return 0;
        }
        let log = self.group.read_log();
        let end = log.start + log.ring.len() as u64;
        (end - self.cursor.max(log.start)) as usize
    }

    /// Moves the published messages this member has not sent into `session`'s write queue,
    /// in order and through the core's send rules, until none is left or the queue is
    /// full. `waker` is stored to be woken by the next publish when none is left.
    pub(crate) fn deliver(&mut self, session: &mut Session, waker: &Waker) -> Result<Delivery> {
        let Some(slot) = self.slot else {
            return Ok(Delivery::Left);
        };
        loop {
            if self.cursor < self.group.end.load(Ordering::Acquire) {
                let log = self.group.read_log();
                if self.cursor < log.start {
                    let missed = log.start - self.cursor;
                    self.cursor = log.start;
                    return Ok(Delivery::Lagged(missed));
                }
                let first = (self.cursor - log.start) as usize;
                for msg in log.ring.iter().skip(first) {
                    if session.broadcast_full() {
                        return Ok(Delivery::Full);
                    }
                    match session.send_prepared_owned(msg.clone()) {
                        Ok(()) => self.cursor += 1,
                        Err((Error::AlreadyClosed, _)) => {
                            drop(log);
                            self.leave();
                            return Ok(Delivery::Left);
                        }
                        Err((
                            Error::Send(wscope_proto::connection::SendError::FragmentSequence),
                            _,
                        )) => return Ok(Delivery::Blocked),
                        Err((e, _)) => return Err(e),
                    }
                }
                continue;
            }
            // Everything sent: wait for the next publish. The end is read again under the
            // members' lock, which a publish takes after moving the end: either this sees the
            // new end, or that publish sees this waker.
            let mut m = self.group.lock_members();
            let end = self.group.end.load(Ordering::Acquire);
            if self.cursor < end {
                continue;
            }
            let Members { slots, listed, .. } = &mut *m;
            if let Some(s) = slots.get_mut(slot) {
                // Stored once per wait (a publish takes it), not on every poll.
                if !s.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    s.waker = Some(waker.clone());
                }
                if !s.listed {
                    s.listed = true;
                    listed.push(slot);
                }
            }
            return Ok(Delivery::Idle);
        }
    }
}

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
        // 64 KiB of pipe that nobody reads, behind the write queue.
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
        for n in 0..300u32 {
            let mut payload = vec![0u8; 4000];
            payload[..4].copy_from_slice(&n.to_be_bytes());
            group.publish(&PreparedMessage::binary(payload));
            assert!(m.pending() <= CAP, "{} waiting", m.pending());
            count(settle(&mut ws, &mut m).await);
            // The queue's own memory within the write limit, prepared frames by reference
            // within four times it.
            let out = &ws.session.out;
            assert!(out.owned_len() < ws.session.write_limit + 4100);
            assert!(
                out.len() < 4 * ws.session.write_limit + 4100,
                "{}",
                out.len()
            );
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
        assert_eq!(seq.len() as u64 + missed, 300);
        assert_eq!(seq.last(), Some(&299));
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
        // The close was queued before the published messages were delivered: nothing
        // follows it.
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, 0x88);
    }

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Count(core::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_member_is_woken_once_per_wait_and_never_missed() {
        let group = Broadcast::new(16);
        let mut m = group.join();
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let wakes = || count.0.load(Ordering::SeqCst);
        let mut session = Session::server(Config::default(), &[]);
        assert_eq!(m.deliver(&mut session, &waker).unwrap(), Delivery::Idle);
        // Polled again while waiting: still one registration.
        assert_eq!(m.deliver(&mut session, &waker).unwrap(), Delivery::Idle);
        group.publish(&PreparedMessage::text("1"));
        group.publish(&PreparedMessage::text("2"));
        assert_eq!(wakes(), 1, "woken once for the two");
        assert_eq!(m.pending(), 2);
        assert_eq!(m.deliver(&mut session, &waker).unwrap(), Delivery::Idle);
        assert_eq!(m.pending(), 0);
        // A spurious poll between two waits, then a publish: woken again.
        assert_eq!(m.deliver(&mut session, &waker).unwrap(), Delivery::Idle);
        group.publish(&PreparedMessage::text("3"));
        assert_eq!(wakes(), 2);
        // Woken, but the task polls only after the next publish: nothing is lost.
        group.publish(&PreparedMessage::text("4"));
        assert_eq!(m.deliver(&mut session, &waker).unwrap(), Delivery::Idle);
        group.publish(&PreparedMessage::text("5"));
        assert_eq!(wakes(), 3);
        assert_eq!(m.deliver(&mut session, &waker).unwrap(), Delivery::Idle);
        let mut wire = Vec::new();
        while session.out.len() > 0 {
            let mut sl = [std::io::IoSlice::new(&[]); 16];
            let n = session.write_slices(&mut sl);
            let before = wire.len();
            for x in &sl[..n] {
                wire.extend_from_slice(x);
            }
            session.out.advance(wire.len() - before);
        }
        let texts: Vec<Vec<u8>> = frames(&wire).into_iter().map(|(_, p)| p).collect();
        assert_eq!(texts, [b"1", b"2", b"3", b"4", b"5"].map(|t| t.to_vec()));
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
