//! The admin listener: `/healthz`, `/readyz` and `/metrics`, on its own address (never the
//! recipients' port), for probes and Prometheus.
//!
//! - `/healthz`: the process is up and serving this listener.
//! - `/readyz`: rules are loaded, the last audit append succeeded (with PostgreSQL: the
//!   ledger can commit now), the last audit checkpoint write (if checkpoints are on)
//!   succeeded, and the upstream accepts a connection within a second. 503 with the failing
//!   checks otherwise.
//! - `/metrics`: the Prometheus text format.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::pipeline::Gateway;

/// How long `/readyz` waits for the upstream to accept a connection.
const UPSTREAM_PROBE: Duration = Duration::from_secs(1);

/// Serves the admin endpoints until `shutdown` resolves.
pub async fn run(listener: TcpListener, gateway: Arc<Gateway>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let gateway = gateway.clone();
                async move { Ok::<_, std::convert::Infallible>(route(&gateway, request).await) }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(gateway: &Gateway, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != http::Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => readiness(gateway).await,
        "/metrics" => {
            let mut response = text(StatusCode::OK, gateway.metrics().encode());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

async fn readiness(gateway: &Gateway) -> Response<Full<Bytes>> {
    let mut failing = Vec::new();
    if gateway.policy().recipients().is_empty() {
        failing.push("rules: no recipients loaded");
    }
    let stats = gateway.audit().stats();
    if stats.probed.load(Ordering::Relaxed) {
        // A watched store (PostgreSQL): ready follows it, so it comes back without traffic.
        if stats.unavailable.load(Ordering::Relaxed) {
            failing.push("audit: the ledger cannot commit");
        }
    } else if !gateway.metrics().audit_ok.load(Ordering::Relaxed) {
        failing.push("audit: the last append failed");
    }
    if gateway.metrics().audit_checkpoint_failing() {
        failing.push("audit: the last checkpoint write failed");
    }
    if !gateway.upstream().probe(UPSTREAM_PROBE).await {
        failing.push("upstream: not accepting connections");
    }
    if failing.is_empty() {
        text(StatusCode::OK, "ready\n".into())
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready\n{}\n", failing.join("\n")),
        )
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}
