//! Accepts connections and hands each request to the [`Gateway`].
//!
//! The caller binds the listener (so tests can bind `127.0.0.1:0` and read the port back) and
//! passes a shutdown future. HTTP/1.1 with keep-alive; hyper is given a timer, without which
//! its header-read timeout silently does nothing, so a client that dribbles its request head
//! (slowloris) is cut off. Connections beyond `max_connections` wait in the accept queue.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::pipeline::Gateway;

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct Options {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub drain_timeout: Duration,
}

/// Largest request head accepted; hyper answers 431 beyond it.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests finish
/// within `drain_timeout`.
pub async fn run(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    options: Options,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(MAX_HEAD_BYTES);
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
        let gateway = gateway.clone();
        let service = service_fn(move |request| {
            let gateway = gateway.clone();
            async move { Ok::<_, std::convert::Infallible>(gateway.handle(request).await) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                log_connection_error(peer, &e);
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
}

/// Malformed requests and timeouts are the client's doing: debug, not error.
fn log_connection_error(peer: SocketAddr, e: &hyper::Error) {
    if e.is_timeout() || e.is_parse() || e.is_incomplete_message() {
        tracing::debug!(peer = %peer.ip(), error = %e, "connection ended");
    } else {
        tracing::debug!(peer = %peer.ip(), error = %e, "connection error");
    }
}
