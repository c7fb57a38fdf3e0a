//! The request path, phase by phase, and the one place errors become responses.
//!
//! Phases run in a fixed order, each able to cut the request short:
//!
//! 1. **identify**: who is calling ([`identity`]); 401 when unknown.
//! 2. **authorize**: is the target clean and the route granted ([`routes`]); 400 or 403.
//! 3. **read**: the recipient's own request body, within `max_request_body`; 413.
//! 4. **forward**: the upstream exchange and its safety checks ([`upstream`]); 502 or 504.
//! 5. **filter**: [`filter::decide`], a pure function: `refuse` (403), `items`, `derive`,
//!    `when` and the allow-list; the body a recipient may see.
//! 6. **audit**: runs on success and failure alike; the record is durable before the
//!    response leaves, or the recipient gets 503 and nothing else.
//!
//! Errors are sorted by fault (client, upstream, us): client faults are not logged as errors,
//! and a 5xx body never carries inner detail.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};

use crate::audit::{self, AuditLog, Record};
use crate::config::Limits;
use crate::filter;
use crate::identity;
use crate::routes;
use crate::rules::{Policy, Recipient};
use crate::upstream::{self, Forward, Upstream};

/// Everything a request needs, shared by all connections.
#[derive(Debug)]
pub struct Gateway {
    policy: Arc<Policy>,
    upstream: Upstream,
    audit: AuditLog,
    limits: Limits,
}

/// Why a request ended without a filtered body.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error(transparent)]
    Identity(#[from] identity::Error),
    #[error(transparent)]
    Routes(#[from] routes::Error),
    #[error(transparent)]
    RequestBody(#[from] RequestBodyError),
    #[error(transparent)]
    Upstream(#[from] upstream::Error),
    /// A `refuse` rule held (or could not be evaluated): nothing of the body is sent.
    #[error("{0}")]
    Refused(filter::Refusal),
    #[error("the disclosure could not be recorded, so nothing was sent")]
    Audit(#[source] audit::Error),
}

/// A problem with the recipient's own request body.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    #[error("request body exceeds the {0}-byte limit")]
    TooLarge(u64),
    #[error("a {0} request carries no body")]
    Unexpected(http::Method),
    #[error("request body must be application/json")]
    NotJson,
    #[error("request body could not be read")]
    Read,
}

/// A granted, filtered answer, ready to be audited and sent.
struct Allowed {
    status: StatusCode,
    body: Option<Bytes>,
}

// === impl Gateway ===

impl Gateway {
    pub fn new(policy: Arc<Policy>, upstream: Upstream, audit: AuditLog, limits: Limits) -> Self {
        Gateway {
            policy,
            upstream,
            audit,
            limits,
        }
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Runs every phase for one request; never fails, since every error is a response.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let request_id = new_request_id();
        let mut record = Record {
            ts: audit::now_rfc3339(),
            request_id: request_id.clone(),
            recipient: None,
            recipient_type: None,
            method: request.method().to_string(),
            route: None,
            path: request.uri().path().to_string(),
            status: 0,
            purpose: None,
            lawful_basis: None,
            reasons: Vec::new(),
            subjects: Vec::new(),
            disclosed: Vec::new(),
            withheld: Vec::new(),
            extra: serde_json::Map::new(),
        };
        let outcome = self.decide(request, &mut record).await;
        let (status, body, error) = match outcome {
            Ok(allowed) => (allowed.status, allowed.body, None),
            Err(rejection) => {
                let (status, code, message) = describe(&rejection);
                log_rejection(&rejection, &record);
                (
                    status,
                    Some(error_body(code, &message, &request_id)),
                    Some(code),
                )
            }
        };
        record.status = status.as_u16();
        if let Some(code) = error {
            record.extra.insert("error".into(), Value::from(code));
        }
        let recipient = record.recipient.clone();
        let route = record.route.clone();
        let response = match self.audit.append(record).await {
            Ok(()) => response(status, body, &request_id),
            Err(e) => {
                tracing::error!(request_id, error = %e, "audit write failed; answering 503");
                let rejection = Rejection::Audit(e);
                let (status, code, message) = describe(&rejection);
                response(
                    status,
                    Some(error_body(code, &message, &request_id)),
                    &request_id,
                )
            }
        };
        tracing::info!(
            request_id,
            recipient = recipient.as_deref().unwrap_or("-"),
            route = route.as_deref().unwrap_or("-"),
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
        response
    }

    /// The phases up to and including the filter; the audit is the caller's.
    async fn decide(
        &self,
        request: Request<Incoming>,
        record: &mut Record,
    ) -> Result<Allowed, Rejection> {
        let (parts, body) = request.into_parts();

        // identify
        let recipient = identity::by_api_key(&self.policy, &parts.headers)?;
        note_recipient(record, &recipient);

        // authorize
        let granted = routes::authorize(&recipient.kind, &parts.method, &parts.uri)?;
        let route = granted.route;
        record.route = Some(route.template.to_string());

        // read
        let body = read_body(&parts, body, self.limits.max_request_body).await?;
        // Conditions may read a few headers; take them before the headers go upstream.
        let cel_headers = filter::pick_headers(&parts.headers);

        // forward
        let fetched = self
            .upstream
            .fetch(Forward {
                method: parts.method.clone(),
                target: granted.upstream_target,
                request_id: record.request_id.clone(),
                headers: parts.headers,
                body,
            })
            .await?;

        // filter
        let Some(upstream_body) = fetched.body else {
            return Ok(Allowed {
                status: fetched.status,
                body: None,
            });
        };
        let request = filter::Request {
            recipient: &recipient,
            method: parts.method.as_str(),
            path: parts.uri.path(),
            params: &granted.params,
            query: &granted.query,
            headers: &cel_headers,
            now: std::time::SystemTime::now(),
        };
        let outcome = filter::decide(route, &request, &upstream_body, false);
        record.subjects = outcome.subjects;
        record.reasons = outcome.reasons;
        record.disclosed = outcome.disclosed.into_iter().collect();
        record.withheld = outcome.withheld.into_iter().collect();
        if !outcome.rule_errors.is_empty() {
            // Rule sites (file:line kind), never values.
            record
                .extra
                .insert("rule_errors".into(), Value::from(outcome.rule_errors));
        }
        if let Some(refusal) = outcome.refusal {
            return Err(Rejection::Refused(refusal));
        }
        let Some(body) = outcome.body else {
            return Err(Rejection::Refused(filter::Refusal {
                reason: "no body could be decided".into(),
                erred: true,
            }));
        };
        let bytes = serde_json::to_vec(&body).map_err(|_| {
            // Serialising a Value cannot fail; refuse rather than send anything if it does.
            upstream::Error::Json(crate::json::Error::Malformed("unserialisable".into()))
        })?;
        Ok(Allowed {
            status: fetched.status,
            body: Some(Bytes::from(bytes)),
        })
    }
}

fn note_recipient(record: &mut Record, recipient: &Recipient) {
    record.recipient = Some(recipient.id.clone());
    record.recipient_type = Some(recipient.kind.name.clone());
    record.purpose = Some(recipient.kind.purpose.clone());
    record.lawful_basis = Some(recipient.kind.lawful_basis.to_string());
}

/// Reads the recipient's body for methods that carry one; GET and DELETE must not.
async fn read_body(
    parts: &http::request::Parts,
    body: Incoming,
    limit: u64,
) -> Result<Bytes, RequestBodyError> {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = parts.headers.contains_key(header::TRANSFER_ENCODING);
    let carries_body = chunked || declared.is_some_and(|n| n > 0);
    if declared.is_some_and(|n| n > limit) {
        return Err(RequestBodyError::TooLarge(limit));
    }
    let method = &parts.method;
    if *method == http::Method::GET
        || *method == http::Method::DELETE
        || *method == http::Method::HEAD
    {
        if carries_body {
            return Err(RequestBodyError::Unexpected(method.clone()));
        }
        return Ok(Bytes::new());
    }
    if carries_body {
        let json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let essence = v.split(';').next().unwrap_or_default().trim();
                essence.eq_ignore_ascii_case("application/json")
            });
        if !json {
            return Err(RequestBodyError::NotJson);
        }
    }
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit_usize).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(RequestBodyError::TooLarge(limit))
        }
        Err(_) => Err(RequestBodyError::Read),
    }
}

/// The one mapping from a rejection to status, stable code and message.
fn describe(rejection: &Rejection) -> (StatusCode, &'static str, String) {
    match rejection {
        Rejection::Identity(e) => (StatusCode::UNAUTHORIZED, e.code(), e.to_string()),
        Rejection::Routes(e) => (e.status(), e.code(), e.to_string()),
        Rejection::RequestBody(e) => match e {
            RequestBodyError::TooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                e.to_string(),
            ),
            _ => (StatusCode::BAD_REQUEST, "bad_request_body", e.to_string()),
        },
        Rejection::Upstream(e) => (e.status(), e.code(), e.to_string()),
        Rejection::Refused(r) => (StatusCode::FORBIDDEN, "refused_by_policy", r.to_string()),
        Rejection::Audit(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            rejection.to_string(),
        ),
    }
}

/// Client faults are routine; upstream faults are warnings; ours are errors.
fn log_rejection(rejection: &Rejection, record: &Record) {
    let recipient = record.recipient.as_deref().unwrap_or("-");
    let route = record.route.as_deref().unwrap_or("-");
    match rejection {
        Rejection::Upstream(e) => {
            tracing::warn!(request_id = %record.request_id, recipient, route, error = %e, "upstream fault")
        }
        Rejection::Audit(e) => {
            tracing::error!(request_id = %record.request_id, error = %e, "audit fault")
        }
        other => {
            tracing::debug!(request_id = %record.request_id, recipient, route, error = %other, "refused")
        }
    }
}

fn error_body(code: &str, message: &str, request_id: &str) -> Bytes {
    let body = json!({ "error": code, "message": message, "request_id": request_id });
    Bytes::from(body.to_string())
}

/// Only the allow-listed headers: content-type, content-length (set by hyper from the body),
/// date (set by hyper), cache-control and x-request-id.
fn response(status: StatusCode, body: Option<Bytes>, request_id: &str) -> Response<Full<Bytes>> {
    let has_body = body.is_some();
    let mut response = Response::new(Full::new(body.unwrap_or_default()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if has_body {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(id) = HeaderValue::try_from(request_id) {
        headers.insert("x-request-id", id);
    }
    response
}

/// 128 random bits as hex; falls back to time and a counter if the OS source fails, since a
/// request id must never stop a request.
fn new_request_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        bytes[..8].copy_from_slice(&nanos.to_be_bytes());
        bytes[8..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    }
    hex::encode(bytes)
}
