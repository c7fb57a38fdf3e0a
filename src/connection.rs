//! What a request knows of the connection it arrived on: the peer's address, the verified
//! client certificate, the server's write-stall rule, and a way to close the connection from
//! the request's side.
//!
//! [`crate::server`] makes one per accepted connection and hands it, shared, to every request
//! on it. The address keys the budget of refusals made before anyone is identified
//! ([`crate::limits::unidentified`]); it is personal data, so it is never written to the
//! ledger or a label. The closer exists because hyper gives a response body no way to reset
//! its own HTTP/2 stream while it waits for flow-control window (see [`crate::stream`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::tls::PeerIdentity;

/// One connection, as its requests see it.
#[derive(Debug)]
pub struct Connection {
    remote: SocketAddr,
    identity: Option<PeerIdentity>,
    write_stall_timeout: Duration,
    close: Closer,
    busy: Arc<Busyness>,
}

/// How many requests are under way on a connection, and since when it has had none.
#[derive(Debug)]
struct Busyness {
    base: Instant,
    under_way: AtomicUsize,
    /// When the last request ended, in milliseconds after `base`.
    last_ms: AtomicU64,
}

/// A request under way on its connection, from its head to the end of its response (a
/// streamed body holds one until it ends); dropped, it counts the connection idle from now.
#[derive(Debug)]
pub struct Busy(Arc<Busyness>);

/// Closes the connection it was taken from; cheap to clone, and harmless to call twice or
/// after the connection has ended.
#[derive(Debug, Clone)]
pub struct Closer(Arc<Notify>);

/// Resolves once a [`Closer`] of the connection has been called: the server then drops the
/// connection, and every stream and body on it.
#[derive(Debug)]
pub struct Closed(Arc<Notify>);

// === impl Connection ===

impl Connection {
    /// A connection from `remote`, with the certificate it presented (if any); the server
    /// selects on the returned [`Closed`] beside serving it.
    pub fn new(
        remote: SocketAddr,
        identity: Option<PeerIdentity>,
        write_stall_timeout: Duration,
    ) -> (Connection, Closed) {
        let notify = Arc::new(Notify::new());
        let connection = Connection {
            remote,
            identity,
            write_stall_timeout,
            close: Closer(Arc::clone(&notify)),
            busy: Arc::new(Busyness {
                base: Instant::now(),
                under_way: AtomicUsize::new(0),
                last_ms: AtomicU64::new(0),
            }),
        };
        (connection, Closed(notify))
    }

    /// Marks a request under way until the guard is dropped.
    pub fn busy(&self) -> Busy {
        self.busy.under_way.fetch_add(1, Ordering::SeqCst);
        Busy(Arc::clone(&self.busy))
    }

    /// Resolves once the connection has had no request under way for `timeout`, checked a
    /// few times per `timeout`: a connection that asks for nothing is closed.
    pub async fn idle_for(&self, timeout: Duration) {
        let check = (timeout / 4).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(check).await;
            let b = &self.busy;
            if b.under_way.load(Ordering::SeqCst) > 0 {
                continue;
            }
            let idle_since = Duration::from_millis(b.last_ms.load(Ordering::SeqCst));
            if b.base.elapsed().saturating_sub(idle_since) >= timeout {
                return;
            }
        }
    }

    /// The peer's address, as the socket saw it.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// The verified client certificate, if the connection presented one.
    pub fn identity(&self) -> Option<&PeerIdentity> {
        self.identity.as_ref()
    }

    /// How long a response may make no progress before the connection is cut.
    pub fn write_stall_timeout(&self) -> Duration {
        self.write_stall_timeout
    }

    pub fn closer(&self) -> Closer {
        self.close.clone()
    }
}

// === impl Busy ===

impl Drop for Busy {
    fn drop(&mut self) {
        let now = u64::try_from(self.0.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_ms.store(now, Ordering::SeqCst);
        self.0.under_way.fetch_sub(1, Ordering::SeqCst);
    }
}

// === impl Closer ===

impl Closer {
    pub fn close(&self) {
        // `notify_one` keeps a permit when nobody waits yet, so a close is never lost.
        self.0.notify_one();
    }
}

// === impl Closed ===

impl Closed {
    pub async fn wait(&self) {
        self.0.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_is_idle_only_with_nothing_under_way() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 9));
        let (connection, _closed) = Connection::new(addr, None, Duration::from_secs(1));
        let timeout = Duration::from_millis(100);
        let busy = connection.busy();
        let waited = tokio::time::timeout(timeout * 4, connection.idle_for(timeout)).await;
        assert!(waited.is_err(), "idle while a request was under way");
        drop(busy);
        let started = Instant::now();
        tokio::time::timeout(timeout * 10, connection.idle_for(timeout))
            .await
            .expect("idle once nothing is under way");
        assert!(started.elapsed() >= timeout);
    }

    #[tokio::test]
    async fn a_close_before_anyone_waits_is_kept() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 9));
        let (connection, closed) = Connection::new(addr, None, Duration::from_secs(1));
        connection.closer().close();
        connection.closer().close();
        tokio::time::timeout(Duration::from_secs(1), closed.wait())
            .await
            .expect("the close was kept");
        assert_eq!(connection.remote(), addr);
    }
}
