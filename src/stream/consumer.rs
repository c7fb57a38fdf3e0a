//! Whether the connection is taking a streamed body, seen from the filter task.
//!
//! hyper has no write timeout; [`crate::server`]'s write-stall rule lives on the socket, and
//! catches an HTTP/1.1 client that stops reading, since hyper then blocks writing to it. An
//! HTTP/2 stream whose peer never opens its flow-control window blocks nothing on the
//! socket: hyper 1.12's `PipeToSendStream::poll` keeps the chunk it took from the body until
//! the stream has capacity, and does not poll the body meanwhile, so the body can neither see
//! the stall nor fail to reset its stream; pings and other streams keep the socket moving. The
//! stream would hold its upstream connection, its filter task, its segments and its
//! `max_in_flight` slot for as long as the peer likes.
//!
//! So on HTTP/2 the stall is seen from the producer's side. The body notes each frame it
//! hands to hyper, and each time hyper comes back for more, which it does only once the frame
//! it held has its window ([`Progress`]); it hands at most [`FRAME_BYTES`] at a time, so a
//! consumer that moves at all is seen to move. Whenever the filter task waits on its consumer
//! (a full channel, every released byte accepted before the final record, the body's end), it
//! gives up once nothing has moved for `write_stall_timeout`: the export is aborted and recorded so
//! (`recipient_stalled`), the upstream body is dropped, and the connection is closed through
//! its [`Closer`]. A connection, not the one stream, because hyper gives nothing outside the
//! body a handle on a stream, and the body is the part hyper no longer polls; the other
//! streams on that connection are the same client's.
//!
//! On HTTP/1.1 the socket rule stays the only one: hyper takes frames into its write buffer a
//! whole frame at a time, so a reader slow enough (bytes a second) would be seen taking
//! nothing while its socket still moves, and a slow but moving reader is never cut.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Notify};

use super::Msg;
use crate::connection::Closer;
use crate::rejection::Rejection;

/// The most bytes the body hands hyper at once: one HTTP/2 DATA frame of the default size, so
/// progress shows at least every 16 KiB.
pub const FRAME_BYTES: usize = 16 * 1024;

/// What the body has handed to the connection; written by the body, read by the filter task.
#[derive(Debug)]
pub struct Progress {
    base: Instant,
    /// When the connection last took or accepted anything, in milliseconds after `base`.
    last_ms: AtomicU64,
    /// Bytes handed out so far.
    taken: AtomicU64,
    /// Bytes the connection has come back for more after: hyper polls the body again only
    /// once the frame it holds is written (HTTP/1.1) or given stream window (HTTP/2), so a
    /// frame handed out but never accepted is one still waiting for its window.
    accepted: AtomicU64,
    /// The body has ended, cleanly or not: nothing more will be taken.
    ended: AtomicBool,
    changed: Notify,
}

/// The stall rule of one streamed response, and what to do when it trips.
#[derive(Debug)]
pub struct Watch {
    progress: Arc<Progress>,
    /// `None`: only the socket's rule applies (HTTP/1.x).
    timeout: Option<Duration>,
    closer: Closer,
}

// === impl Progress ===

impl Progress {
    /// Fresh: nothing taken, the clock starting now.
    pub fn new() -> Arc<Progress> {
        Arc::new(Progress {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            changed: Notify::new(),
        })
    }

    /// hyper polled the body: whatever it was handed before, it has accepted.
    pub fn polled(&self) {
        let taken = self.taken.load(Ordering::Acquire);
        if self.accepted.swap(taken, Ordering::AcqRel) != taken {
            self.moved();
        }
    }

    /// The body handed hyper `bytes` more.
    pub fn took(&self, bytes: usize) {
        self.taken.fetch_add(bytes as u64, Ordering::AcqRel);
        self.moved();
    }

    /// The body has ended (its last frame, or an error, was handed out).
    pub fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.moved();
    }

    /// Bytes hyper has accepted: see [`Progress::polled`].
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Acquire)
    }

    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    fn moved(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Release);
        self.changed.notify_one();
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Acquire))
    }
}

// === impl Watch ===

impl Watch {
    pub fn new(progress: Arc<Progress>, timeout: Option<Duration>, closer: Closer) -> Watch {
        Watch {
            progress,
            timeout,
            closer,
        }
    }

    /// Puts `msg` in the channel once it has room.
    ///
    /// # Errors
    ///
    /// `recipient_gone` when the body was dropped, `recipient_stalled` when it took nothing
    /// for the timeout first.
    pub async fn send(&self, tx: &mpsc::Sender<Msg>, msg: Msg) -> Result<(), Rejection> {
        tokio::select! {
            permit = tx.reserve() => match permit {
                Ok(permit) => {
                    permit.send(msg);
                    Ok(())
                }
                Err(_) => Err(Rejection::RecipientGone),
            },
            () = self.stalled() => Err(self.stall()),
        }
    }

    /// Waits until `done` holds of the progress.
    ///
    /// # Errors
    ///
    /// As [`Watch::send`].
    pub async fn until(
        &self,
        tx: &mpsc::Sender<Msg>,
        done: impl Fn(&Progress) -> bool,
    ) -> Result<(), Rejection> {
        loop {
            // Made before the check: a change between the two still wakes it.
            let changed = self.progress.changed.notified();
            if done(&self.progress) {
                return Ok(());
            }
            tokio::select! {
                () = changed => {}
                () = tx.closed() => return Err(Rejection::RecipientGone),
                () = self.stalled() => return Err(self.stall()),
            }
        }
    }

    /// Closes the connection the response is on.
    pub fn close_connection(&self) {
        self.closer.close();
    }

    /// Resolves once nothing was taken for the timeout; never without one.
    async fn stalled(&self) {
        let Some(timeout) = self.timeout else {
            return std::future::pending().await;
        };
        loop {
            let deadline = self.progress.last() + timeout;
            if deadline <= Instant::now() {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }

    fn stall(&self) -> Rejection {
        Rejection::RecipientStalled(self.timeout.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed unwrap is a failed test
    use std::net::SocketAddr;

    use super::*;
    use crate::connection::Connection;

    fn watch(timeout: Option<Duration>) -> (Watch, Arc<Progress>, crate::connection::Closed) {
        let addr = SocketAddr::from(([127, 0, 0, 1], 9));
        let (connection, closed) = Connection::new(addr, None, Duration::from_secs(1));
        let progress = Progress::new();
        (
            Watch::new(Arc::clone(&progress), timeout, connection.closer()),
            progress,
            closed,
        )
    }

    #[tokio::test]
    async fn a_consumer_that_takes_nothing_stalls_the_send() {
        let (watch, _, _) = watch(Some(Duration::from_millis(200)));
        let (tx, _rx) = mpsc::channel(1);
        watch.send(&tx, Msg::Done).await.unwrap();
        let started = Instant::now();
        let e = watch.send(&tx, Msg::Done).await.unwrap_err();
        assert!(matches!(e, Rejection::RecipientStalled(_)), "{e}");
        assert!(started.elapsed() >= Duration::from_millis(150));
    }

    #[tokio::test]
    async fn a_consumer_that_keeps_taking_is_never_stalled() {
        let (watch, progress, _) = watch(Some(Duration::from_millis(200)));
        let (tx, _rx) = mpsc::channel::<Msg>(1);
        let taker = tokio::spawn(async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                progress.took(1);
                progress.polled();
            }
        });
        // A second past the timeout, and never stalled: it ends when 10 bytes are accepted.
        watch.until(&tx, |p| p.accepted() == 10).await.unwrap();
        taker.await.unwrap();
    }

    #[tokio::test]
    async fn a_frame_handed_out_but_never_accepted_stalls() {
        let (watch, progress, _) = watch(Some(Duration::from_millis(200)));
        let (tx, _rx) = mpsc::channel::<Msg>(1);
        progress.polled();
        progress.took(100);
        // Polled again with nothing new: no progress, and the frame is still not accepted.
        let e = watch.until(&tx, |p| p.accepted() >= 100).await.unwrap_err();
        assert!(matches!(e, Rejection::RecipientStalled(_)), "{e}");
    }

    #[tokio::test]
    async fn without_a_timeout_only_a_dropped_body_ends_the_wait() {
        let (watch, _, _) = watch(None);
        let (tx, rx) = mpsc::channel::<Msg>(1);
        let waited =
            tokio::time::timeout(Duration::from_millis(300), watch.until(&tx, |p| p.ended())).await;
        assert!(waited.is_err(), "no stall rule without a timeout");
        drop(rx);
        let e = watch.until(&tx, |p| p.ended()).await.unwrap_err();
        assert!(matches!(e, Rejection::RecipientGone), "{e}");
    }

    #[tokio::test]
    async fn closing_reaches_the_server() {
        let (watch, _, closed) = watch(None);
        watch.close_connection();
        tokio::time::timeout(Duration::from_secs(1), closed.wait())
            .await
            .unwrap();
    }
}
