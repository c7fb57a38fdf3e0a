//! Accepts connections, completes the TLS handshake, and hands each request to the
//! [`Gateway`] with its [`Connection`]: the peer's address, the verified client certificate,
//! and a closer the request may use to end the connection.
//!
//! The caller binds the listener (so tests can bind `127.0.0.1:0` and read the port back) and
//! passes a shutdown future. With TLS, each connection takes the server config current at its
//! accept, so a certificate reload applies to new connections and never breaks open ones; a
//! handshake that does not finish within the header-read timeout is dropped.
//! HTTP/1.1 with keep-alive, and HTTP/2 (by ALPN over TLS, or prior knowledge in plain
//! text); hyper is given a timer, without which
//! its header-read timeout silently does nothing, so a client that dribbles its request head
//! (slowloris) is cut off, and a client that stops reading its responses (slow read) by
//! [`write_stall`]. Connections beyond `max_connections` wait in the accept queue.
//!
//! For as long as it serves, it has the gateway summarise the refusals before identity it
//! answered without recording one by one ([`Gateway::summarise_unidentified`]), a last time
//! after the drain, so the caller can close the ledger with nothing left uncounted.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

mod write_stall;

use crate::connection::{Closed, Connection};
use crate::pipeline::Gateway;
use crate::tls::{PeerIdentity, Reloadable};

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct Options {
    pub header_read_timeout: Duration,
    /// A response write that makes no progress for this long closes the connection.
    pub write_stall_timeout: Duration,
    /// A connection with no request under way for this long is closed.
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub drain_timeout: Duration,
    /// TLS, when `[server.tls]` is set; plain HTTP otherwise.
    pub tls: Option<Arc<Reloadable>>,
}

/// Largest request head accepted; hyper answers 431 beyond it.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Concurrent HTTP/2 streams per connection.
const MAX_STREAMS: u32 = 100;

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests finish
/// within `drain_timeout`.
pub async fn run(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    options: Options,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let (stop_summaries, summaries_stopped) = tokio::sync::oneshot::channel::<()>();
    let summaries = tokio::spawn({
        let gateway = gateway.clone();
        async move {
            let stop = async {
                let _ = summaries_stopped.await;
            };
            gateway.summarise_unidentified(stop).await;
        }
    });
    let permits = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        // Rapid reset (CVE-2023-44487): a client that cancels streams it opened is cut off.
        .max_pending_accept_reset_streams(Some(20))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let stream = write_stall::WriteStall::new(stream, options.write_stall_timeout);
        let gateway = gateway.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = options.tls.as_ref().map(|t| t.current());
        let handshake_timeout = options.header_read_timeout;
        let write_stall_timeout = options.write_stall_timeout;
        let idle_timeout = options.idle_timeout;
        tokio::spawn(async move {
            let timeouts = (write_stall_timeout, idle_timeout);
            match tls {
                None => {
                    serve_accepted(stream, peer, None, (builder, gateway, watcher), timeouts).await;
                }
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    let stream = match tokio::time::timeout(
                        handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %peer.ip(), error = %e, "tls handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(peer = %peer.ip(), "tls handshake timed out");
                            return;
                        }
                    };
                    let identity = PeerIdentity::of(stream.get_ref().1);
                    let with = (builder, gateway, watcher);
                    serve_accepted(stream, peer, identity, with, timeouts).await;
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(options.drain_timeout) => {
            tracing::warn!("drain timeout: closing the remaining connections");
        }
    }
    let _ = stop_summaries.send(());
    if summaries.await.is_err() {
        tracing::error!("the summary task of unidentified refusals panicked");
    }
}

/// Serves one accepted connection (with TLS, once its handshake is done), with the client
/// certificate it presented: its requests share one [`Connection`].
async fn serve_accepted<S>(
    io: S,
    peer: SocketAddr,
    identity: Option<PeerIdentity>,
    (builder, gateway, watcher): (auto::Builder<TokioExecutor>, Arc<Gateway>, Watcher),
    (write_stall_timeout, idle_timeout): (Duration, Duration),
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (context, closed) = Connection::new(peer, identity, write_stall_timeout);
    let context = Arc::new(context);
    let connection =
        builder.serve_connection(TokioIo::new(io), service(gateway, Arc::clone(&context)));
    let ends = Ends {
        closed,
        context,
        idle_timeout,
    };
    serve(peer, watcher.watch(connection), ends).await;
}

/// What ends a connection besides its client: a request closing it, or idleness.
struct Ends {
    closed: Closed,
    context: Arc<Connection>,
    idle_timeout: Duration,
}

/// Serves one connection until it ends, until a request closes it through its
/// [`Connection`]'s closer, or until it has had no request under way for `idle_timeout` (an
/// HTTP/2 client that answers pings and asks for nothing would otherwise hold its connection,
/// and one of `max_connections`, for ever): the connection is then dropped, with every
/// stream and body on it.
async fn serve<E>(peer: SocketAddr, connection: impl Future<Output = Result<(), E>>, ends: Ends)
where
    E: AsRef<dyn std::error::Error + Send + Sync>,
{
    tokio::select! {
        served = connection => {
            if let Err(e) = served {
                log_connection_error(peer, e.as_ref());
            }
        }
        () = ends.closed.wait() => {
            tracing::debug!(peer = %peer.ip(), "connection closed by a request");
        }
        () = ends.context.idle_for(ends.idle_timeout) => {
            tracing::debug!(peer = %peer.ip(), "idle connection closed");
        }
    }
}

/// The per-connection service: every request on it carries the connection's context.
fn service(
    gateway: Arc<Gateway>,
    connection: Arc<Connection>,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<crate::pipeline::Body>,
    Error = std::convert::Infallible,
    Future = impl Future<
        Output = Result<http::Response<crate::pipeline::Body>, std::convert::Infallible>,
    > + Send,
> + Clone {
    service_fn(move |request| {
        let gateway = gateway.clone();
        let connection = connection.clone();
        async move {
            let _busy = connection.busy();
            Ok(gateway.handle(request, &connection).await)
        }
    })
}

/// Malformed requests and timeouts are the client's doing: debug, not error.
fn log_connection_error(peer: SocketAddr, e: &(dyn std::error::Error + Send + Sync)) {
    tracing::debug!(peer = %peer.ip(), error = %e, "connection ended with an error");
}
