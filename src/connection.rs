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
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::tls::PeerIdentity;

/// One connection, as its requests see it.
#[derive(Debug)]
pub struct Connection {
    remote: SocketAddr,
    identity: Option<PeerIdentity>,
    write_stall_timeout: Duration,
    close: Closer,
}

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
        };
        (connection, Closed(notify))
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
