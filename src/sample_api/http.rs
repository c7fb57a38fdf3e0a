//! The sample API over HTTP/1.1: routing, query filters, the optional bearer check.
//!
//! Behaves like the housing systems the gateway fronts: JSON everywhere, `{"error":"not
//! found"}` for unknown ids and paths, unknown query parameters ignored, and a bearer token
//! checked when one is configured so the gateway's upstream credential is exercised too.
//! A job takes writes (`PATCH` or `POST /jobs/{id}`, a JSON object merged into it, RFC 7396)
//! and answers with the updated job; they are held in memory for the life of the process.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use super::{JobFilter, SampleData};

/// A demo server still gets a head timeout: without a timer hyper's is silently off.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest write body read; a larger one is answered 400.
const MAX_WRITE_BYTES: usize = 64 * 1024;

/// What has been written to each job, by id: merged over the generated job in every later
/// answer. In memory only, so a demo starts from the generated data each time.
#[derive(Debug, Default)]
pub struct Writes(Mutex<HashMap<String, Map<String, Value>>>);

/// How long in-flight requests may finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `data` under `base` (`"/api"`; `""` for the root) until `shutdown` resolves, then
/// stops accepting and gives in-flight requests [`DRAIN_TIMEOUT`] to finish.
///
/// The caller binds `listener`, so tests bind `127.0.0.1:0` and read the port back. With
/// `expected_token`, every request must carry `Authorization: Bearer <token>` or gets 401.
pub async fn serve(
    listener: TcpListener,
    data: Arc<SampleData>,
    base: &str,
    expected_token: Option<String>,
    shutdown: impl Future<Output = ()>,
) {
    let base: Arc<str> = normalise_base(base).into();
    let token: Option<Arc<str>> = expected_token.map(Into::into);
    let writes = Arc::new(Writes::default());
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "sample api: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (data, base, token) = (data.clone(), base.clone(), token.clone());
        let writes = writes.clone();
        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
            let (data, base, token, writes) =
                (data.clone(), base.clone(), token.clone(), writes.clone());
            async move {
                let (parts, body) = request.into_parts();
                // A body too large or cut short is read as none: the write is then refused.
                let body = Limited::new(body, MAX_WRITE_BYTES)
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_default();
                let request = Request::from_parts(parts, ());
                let response =
                    handle_with(&data, &writes, &base, token.as_deref(), &request, &body);
                Ok::<_, Infallible>(response)
            }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "sample api: connection ended");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {}
    }
}

/// Answers one request that carries no body, with nothing written before.
pub fn handle<B>(
    data: &SampleData,
    base: &str,
    expected_token: Option<&str>,
    request: &Request<B>,
) -> Response<Full<Bytes>> {
    handle_with(data, &Writes::default(), base, expected_token, request, &[])
}

/// Answers one request whose body is `body`: the whole API as a function of the data and
/// what was written, so tests can call it without a socket and [`serve`] is only transport.
pub fn handle_with<B>(
    data: &SampleData,
    writes: &Writes,
    base: &str,
    expected_token: Option<&str>,
    request: &Request<B>,
    body: &[u8],
) -> Response<Full<Bytes>> {
    if !bearer_matches(request.headers(), expected_token) {
        let mut response = error(StatusCode::UNAUTHORIZED, "unauthorized");
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let base = normalise_base(base);
    let answer = match *request.method() {
        Method::GET | Method::HEAD => route(data, writes, &base, request.uri()),
        Method::PATCH | Method::POST => write(data, writes, &base, request.uri(), body),
        _ => {
            let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            response.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, PATCH, POST"),
            );
            return response;
        }
    };
    answer.unwrap_or_else(|| error(StatusCode::NOT_FOUND, "not found"))
}

/// `PATCH` or `POST /jobs/{id}`: `body`, a JSON object, merged into the job; the updated job.
fn write(
    data: &SampleData,
    writes: &Writes,
    base: &str,
    uri: &Uri,
    body: &[u8],
) -> Option<Response<Full<Bytes>>> {
    let id = uri.path().strip_prefix(base)?.strip_prefix("/jobs/")?;
    data.job(id)?;
    let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(body) else {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object",
        ));
    };
    {
        let mut written = writes.0.lock().unwrap_or_else(PoisonError::into_inner);
        merge(written.entry(id.to_owned()).or_default(), patch);
    }
    job(data, writes, id)
}

/// The job `id` as generated, with what was written to it merged in.
fn job(data: &SampleData, writes: &Writes, id: &str) -> Option<Response<Full<Bytes>>> {
    let mut value = serde_json::to_value(data.job_view(data.job(id)?)).ok()?;
    let written = writes.0.lock().unwrap_or_else(PoisonError::into_inner);
    if let (Value::Object(job), Some(patch)) = (&mut value, written.get(id)) {
        merge(job, patch.clone());
    }
    Some(json(&value))
}

/// RFC 7396 merge: objects merge key by key, `null` removes, anything else replaces.
fn merge(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        match (target.get_mut(&key), value) {
            (Some(Value::Object(inner)), Value::Object(patch)) => merge(inner, patch),
            (_, Value::Null) => {
                target.remove(&key);
            }
            (_, value) => {
                target.insert(key, value);
            }
        }
    }
}

/// Whether `headers` carry `Authorization: Bearer <expected>`; always true when nothing is
/// expected. Compared in constant time so timing says nothing about the token; exactly one
/// Authorization header is accepted, as a gateway sends.
pub fn bearer_matches(headers: &HeaderMap, expected: Option<&str>) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let value = value.as_bytes();
    let scheme = b"bearer ";
    if value.len() <= scheme.len() || !value[..scheme.len()].eq_ignore_ascii_case(scheme) {
        return false;
    }
    bool::from(value[scheme.len()..].ct_eq(expected.as_bytes()))
}

/// `"api/"` and `"/api"` are the same base; `"/"` is the root.
fn normalise_base(base: &str) -> String {
    let trimmed = base.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

fn route(
    data: &SampleData,
    writes: &Writes,
    base: &str,
    uri: &Uri,
) -> Option<Response<Full<Bytes>>> {
    let rest = uri.path().strip_prefix(base)?;
    let rest = rest.strip_prefix('/')?;
    let query = uri.query().unwrap_or("");
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["jobs"] => {
            let statuses = params(query, "status");
            let contractor_id = param(query, "contractor_id");
            let contractor_code = param(query, "contractor");
            let property_id = param(query, "property_id");
            let filter = JobFilter {
                statuses: statuses.iter().map(String::as_str).collect(),
                contractor_id: contractor_id.as_deref(),
                contractor_code: contractor_code.as_deref(),
                property_id: property_id.as_deref(),
            };
            let jobs: Vec<_> = data
                .jobs_matching(&filter)
                .into_iter()
                .map(|j| data.job_view(j))
                .collect();
            Some(json(&jobs))
        }
        ["jobs", id] => job(data, writes, id),
        ["tenants"] => {
            let tenants: Vec<&super::Tenant> = match param(query, "postcode_district") {
                Some(district) => data.tenants_in_district(&district),
                None => data.tenants().iter().collect(),
            };
            // Paged as housing APIs page: `offset` records skipped, at most `limit` sent.
            let number = |name| param(query, name).and_then(|v| v.parse::<usize>().ok());
            let page = tenants
                .into_iter()
                .skip(number("offset").unwrap_or(0))
                .take(number("limit").unwrap_or(usize::MAX));
            Some(json(&page.collect::<Vec<_>>()))
        }
        ["tenants", id] => data.tenant(id).map(json),
        ["properties", id] => data.property(id).map(json),
        ["properties", id, "occupants"] => data.occupants(id).map(|o| json(&o)),
        ["properties", id, "alerts"] => data.alerts(id).map(|a| json(&a)),
        ["former-tenants", id] => data.former_tenant(id).map(json),
        _ => None,
    }
}

/// The first value of `name` in a query string, percent- and `+`-decoded; empty counts as
/// absent so `?status=` does not filter everything out.
fn param(query: &str, name: &str) -> Option<String> {
    params(query, name).into_iter().next()
}

/// Every non-empty value of `name`, in order, as a front end sends a repeated filter
/// (`?status=scheduled&status=in_progress`).
fn params(query: &str, name: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(key, _)| decode(key) == name)
        .map(|(_, value)| decode(value))
        .filter(|value| !value.is_empty())
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json<T: Serialize + ?Sized>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => with_body(StatusCode::OK, body),
        // Only a map with non-string keys fails, and the model has none.
        Err(e) => {
            tracing::error!(error = %e, "sample api: serialising a record failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": message })
        .to_string()
        .into_bytes();
    with_body(status, body)
}

fn with_body(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
