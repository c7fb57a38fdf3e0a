//! The request path, phase by phase, and the one place errors become responses.
//!
//! Phases run in a fixed order, each able to cut the request short:
//!
//! 1. **identify**: who is calling, by client certificate or API key ([`identity`]); 401.
//! 2. **authorize**: is the target clean and the route granted ([`routes`]); 400 or 403.
//! 3. **limit**: is the recipient within its rate ([`limits`]); 429 with `Retry-After`, or
//!    503 when the shared limiter cannot answer and is configured to refuse; then is it
//!    within its `max_in_flight` concurrent requests ([`limits::in_flight`]); 429.
//! 4. **read**: the recipient's own request body, within `max_request_body`; 413. Checked
//!    by the bytes that arrive, whatever the framing: none on GET, DELETE or HEAD, else one
//!    strict JSON document under exactly one `application/json` content-type; 400.
//! 5. **forward**: the upstream exchange and its safety checks ([`upstream`]); 502 or 504.
//! 6. **filter**: [`filter::decide`], a pure function: `refuse` (403), `items`, `derive`,
//!    `when` and the allow-list; the body a recipient may see.
//! 7. **audit**: runs on success and failure alike; the record is durable before the
//!    response leaves, or the recipient gets 503 and nothing else. A refusal before
//!    identify beyond its client address's budget is answered without a record of its own
//!    and counted in a summary record instead ([`limits::unidentified`]).
//!
//! A large array response on a streaming route ([`stream`]) runs filter and audit per
//! segment of elements instead, in its own task, as the body arrives.
//!
//! Errors are sorted by fault (client, upstream, us): client faults are not logged as errors,
//! and a 5xx body never carries inner detail.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use serde_json::{json, Value};

use crate::audit::{self, AuditLog, Record};
use crate::config::Limits;
use crate::connection::Connection;
use crate::filter;
use crate::identity;
use crate::limits::in_flight::InFlight;
use crate::limits::unidentified::{Summary, Unidentified};
use crate::limits::{self, Limiter};
use crate::metrics::{Metrics, ReasonLabels, RequestLabels, TypeLabels};
use crate::routes;
use crate::rules::{Policy, Recipient};
use crate::stream;
use crate::tls::PeerIdentity;
use crate::upstream::{Forward, Payload, Upstream};
use rejection::error_body;
pub(crate) use rejection::{describe, log_rejection};
pub use rejection::{refusal_answer, Rejection};
use request_body::read_body;
pub use request_body::RequestBodyError;

mod rejection;
mod request_body;

/// A response body: whole, or streamed element by element ([`stream::Body`]).
pub type Body = Either<Full<Bytes>, stream::Body>;

/// Everything a request needs, shared by all connections.
pub struct Gateway {
    /// Swapped whole on reload; each request loads it once and decides under that one.
    policy: ArcSwap<Policy>,
    upstream: Upstream,
    audit: AuditLog,
    limits: Limits,
    limiter: Arc<dyn Limiter>,
    in_flight: InFlight,
    /// Per client address, how many refusals before identity are recorded one by one.
    unidentified: Unidentified,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

/// A granted, filtered answer, ready to be audited and sent.
struct Allowed {
    status: StatusCode,
    body: Option<Bytes>,
    /// Set instead of `body` when the response streams; filter and audit are its own.
    stream: Option<stream::Job>,
}

// === impl Gateway ===

impl Gateway {
    pub fn new(
        policy: Arc<Policy>,
        upstream: Upstream,
        audit: AuditLog,
        limits: Limits,
        limiter: Arc<dyn Limiter>,
        metrics: Arc<Metrics>,
    ) -> Self {
        metrics.set_generation(policy.generation());
        Gateway {
            policy: ArcSwap::new(policy),
            upstream,
            audit,
            unidentified: Unidentified::new(&limits.unauthenticated),
            limits,
            limiter,
            in_flight: InFlight::new(),
            metrics,
        }
    }

    /// The rules in use now.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// Puts `policy` in use for every request that starts from now on.
    pub fn replace_policy(&self, policy: Arc<Policy>) {
        self.metrics.set_generation(policy.generation());
        self.policy.store(policy);
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Runs every phase for one request; never fails, since every error is a response.
    ///
    /// `connection` is the one the request came on: its verified client certificate, if it
    /// presented one, and the peer's address.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        connection: &Connection,
    ) -> Response<Body> {
        let peer = connection.identity();
        let started = Instant::now();
        let request_id = new_request_id();
        let mut record = Record {
            ts: audit::now_rfc3339(),
            request_id: request_id.clone(),
            recipient: None,
            recipient_type: None,
            method: String::new(),
            route: None,
            path: String::new(),
            status: 0,
            purpose: None,
            lawful_basis: None,
            reasons: Vec::new(),
            subjects: Vec::new(),
            disclosed: Vec::new(),
            withheld: Vec::new(),
            extra: serde_json::Map::new(),
        };
        // Bounded: these are written before anyone is identified. Refused before routing can
        // decode it, the path is recorded as received; `decide` sets the decoded one.
        record.set_method(request.method().as_str());
        record.set_path(request.uri().path());
        let policy = self.policy.load_full();
        record
            .extra
            .insert("rules_generation".into(), Value::from(policy.generation()));
        let outcome = self.decide(&policy, request, peer, &mut record).await;
        let mut retry_after = None;
        let (status, body, error) = match outcome {
            Ok(Allowed {
                stream: Some(job), ..
            }) => return self.stream(job, record, started, connection).await,
            Ok(allowed) => (allowed.status, allowed.body, None),
            Err(rejection) => {
                let (status, code, message) = describe(&rejection);
                log_rejection(&rejection, &record);
                match &rejection {
                    Rejection::Limits(limits::Error::Exceeded(e)) => {
                        retry_after = Some(e.retry_after_secs);
                    }
                    Rejection::InFlight(_) => retry_after = Some(1),
                    _ => {}
                }
                let body = error_body(code, &message, &request_id);
                // The ledger says what happened, even where the recipient is told otherwise.
                let recorded = match &rejection {
                    Rejection::Refused(_) => "refused_by_policy",
                    _ => code,
                };
                (status, Some(body), Some(recorded))
            }
        };
        record.status = status.as_u16();
        if let Some(code) = error {
            record.extra.insert("error".into(), Value::from(code));
            // A policy refusal is counted by its rule's reason (text from the rules, never
            // from a body); every other refusal by its error code.
            let reason = match (code, record.reasons.first()) {
                ("refused_by_policy", Some(why)) => why.clone(),
                _ => code.to_string(),
            };
            let reason = ReasonLabels { reason };
            self.metrics.refusals.get_or_create(&reason).inc();
        }
        if let Some(kind) = &record.recipient_type {
            let labels = TypeLabels {
                recipient_type: kind.clone(),
            };
            let withheld = record.withheld.len() as u64;
            self.metrics
                .fields_withheld
                .get_or_create(&labels)
                .inc_by(withheld);
        }
        let recipient = record.recipient.clone();
        let route = record.route.clone();
        // Nobody is accountable for a refusal before identity: beyond its address's budget
        // it is answered all the same, and only counted, before anything reaches the disk.
        let suppressed = error.is_some()
            && recipient.is_none()
            && !self.unidentified.admit(connection.remote().ip());
        let appended = if suppressed {
            self.unidentified.suppress(status.as_u16());
            self.metrics.unauthenticated_refusals_suppressed.inc();
            Ok(())
        } else {
            let audit_started = Instant::now();
            let appended = self.audit.append(record).await;
            self.metrics
                .observe_audit(audit_started.elapsed(), appended.is_ok());
            appended
        };
        let response = match appended {
            Ok(()) => {
                let sent = body.as_ref().map_or(0, |b| b.len() as u64);
                self.metrics.response_bytes.inc_by(sent);
                whole(response(status, body, &request_id, retry_after))
            }
            Err(e) => {
                tracing::error!(request_id, error = %e, "audit write failed; answering 503");
                let rejection = Rejection::Audit(e);
                let (status, code, message) = describe(&rejection);
                let body = error_body(code, &message, &request_id);
                whole(response(status, Some(body), &request_id, None))
            }
        };
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                recipient: recipient.clone().unwrap_or_else(|| "-".into()),
                route: route.clone().unwrap_or_else(|| "-".into()),
                status: response.status().as_u16(),
            })
            .inc();
        self.metrics
            .request_seconds
            .observe(started.elapsed().as_secs_f64());
        if suppressed {
            // A flood's lines would fill the log's disk instead; the metric counts them.
            tracing::debug!(request_id, status = response.status().as_u16(), "request");
        } else {
            tracing::info!(
                request_id,
                recipient = recipient.as_deref().unwrap_or("-"),
                route = route.as_deref().unwrap_or("-"),
                status = response.status().as_u16(),
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "request"
            );
        }
        response
    }

    /// Records, every `[limits] unauthenticated_summary_interval` and once more when `stop`
    /// resolves, how many refusals before identity were answered but not recorded one by one
    /// (one record per status, only when there were any). The server runs it for as long as
    /// it serves.
    pub async fn summarise_unidentified(&self, stop: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(self.limits.unauthenticated.summary_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        tokio::pin!(stop);
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                () = &mut stop => true,
            };
            self.write_unidentified_summary().await;
            if stopping {
                return;
            }
        }
    }

    /// One summary record per status: `error`, `count` and `interval`, and no address or
    /// target. What cannot be written is kept for the next summary.
    async fn write_unidentified_summary(&self) {
        let Some(summary) = self.unidentified.take() else {
            return;
        };
        let seconds = summary
            .to
            .duration_since(summary.from)
            .unwrap_or_default()
            .as_secs_f64();
        let interval = json!({
            "from": audit::rfc3339(summary.from),
            "to": audit::rfc3339(summary.to),
            "seconds": (seconds * 1000.0).round() / 1000.0,
        });
        let mut statuses = summary.by_status.iter();
        while let Some((&status, &count)) = statuses.next() {
            let mut extra = serde_json::Map::new();
            extra.insert(
                "error".into(),
                Value::from("unauthenticated_refusals_summarised"),
            );
            extra.insert("count".into(), Value::from(count));
            extra.insert("interval".into(), interval.clone());
            let record = Record {
                ts: audit::now_rfc3339(),
                request_id: new_request_id(),
                recipient: None,
                recipient_type: None,
                method: String::new(),
                route: None,
                path: String::new(),
                status,
                purpose: None,
                lawful_basis: None,
                reasons: Vec::new(),
                subjects: Vec::new(),
                disclosed: Vec::new(),
                withheld: Vec::new(),
                extra,
            };
            if let Err(e) = self.audit.append(record).await {
                tracing::error!(error = %e, "cannot record the summary of unidentified refusals; kept for the next");
                let mut rest =
                    std::iter::once((status, count)).collect::<std::collections::BTreeMap<_, _>>();
                rest.extend(statuses.map(|(&s, &c)| (s, c)));
                self.unidentified.restore(Summary {
                    by_status: rest,
                    ..summary
                });
                return;
            }
        }
    }

    /// A streamed response: the filter task records each segment before it is sent, and the
    /// request ends as a 200 whose body may still fail, or as the error of a body that
    /// failed before its first byte (already recorded by the task).
    async fn stream(
        &self,
        job: stream::Job,
        record: Record,
        started: Instant,
        connection: &Connection,
    ) -> Response<Body> {
        let request_id = record.request_id.clone();
        let recipient = record.recipient.clone().unwrap_or_else(|| "-".into());
        let route = record.route.clone().unwrap_or_else(|| "-".into());
        let status = job.status;
        let body = stream::start(
            job,
            record,
            self.audit.clone(),
            self.metrics.clone(),
            connection,
        );
        let response = match body.await {
            Ok(body) => {
                let mut response =
                    response(status, None, &request_id, None).map(|_| Either::Right(body));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            Err(abort) => {
                let (status, code, message) = describe(&abort);
                let reason = ReasonLabels {
                    reason: code.to_string(),
                };
                self.metrics.refusals.get_or_create(&reason).inc();
                let body = error_body(code, &message, &request_id);
                whole(response(status, Some(body), &request_id, None))
            }
        };
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                recipient: recipient.clone(),
                route: route.clone(),
                status: response.status().as_u16(),
            })
            .inc();
        tracing::info!(
            request_id,
            recipient,
            route,
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request (streaming)"
        );
        response
    }

    /// The phases up to and including the filter; the audit is the caller's.
    async fn decide(
        &self,
        policy: &Policy,
        request: Request<Incoming>,
        peer: Option<&PeerIdentity>,
        record: &mut Record,
    ) -> Result<Allowed, Rejection> {
        let (parts, body) = request.into_parts();

        // A request must name one host, unambiguously (RFC 9112 section 3.2); HTTP/2 carries
        // it as :authority instead.
        if parts.version == http::Version::HTTP_11 {
            routes::check_host(&parts.headers)?;
        }

        // identify
        let recipient = identity::identify(policy, peer, &parts.headers)?;
        note_recipient(record, &recipient);

        // authorize
        // HTTP/2 carries scheme and authority as pseudo-headers, so its URI is absolute; only
        // the path and query name the resource. HTTP/1.1's absolute-form stays refused.
        let origin_form;
        let target = if parts.version == http::Version::HTTP_2 {
            origin_form = parts
                .uri
                .path_and_query()
                .map(|pq| http::Uri::from(pq.clone()))
                .unwrap_or_default();
            &origin_form
        } else {
            &parts.uri
        };
        // Decoded once: the record, the conditions' `request.path` and the upstream target
        // all take this one value.
        let target = routes::Target::parse(target)?;
        record.set_path(target.path());
        let granted = routes::grant(&recipient.kind.routes, &parts.method, target)?;
        let route = granted.route;
        record.route = Some(route.template.to_string());

        // limit
        self.limiter.check(&recipient).await?;
        // Held until the answer is decided; a streamed one moves it into its job, which
        // holds it until the body has ended.
        let slot = self.in_flight.enter(&recipient)?;

        // read
        let body = tokio::time::timeout(
            self.limits.request_body_timeout,
            read_body(&parts, body, &self.limits),
        )
        .await
        .map_err(|_| RequestBodyError::Timeout(self.limits.request_body_timeout))??;
        // Conditions may read a few headers; take them before the headers go upstream.
        let cel_headers = filter::pick_headers(&parts.headers);
        // A request-driven disclosure (police, debt agents) names its reference; the audit
        // keeps it, so the DPO can match each disclosure to the request that asked for it.
        if let Some((_, reference)) = cel_headers
            .iter()
            .find(|(name, _)| *name == "x-disclosure-reference")
        {
            record.extra.insert(
                "disclosure_reference".into(),
                Value::from(reference.clone()),
            );
        }

        // An HTTP/1.0 client gets a streamed body delimited by the connection's close, so an
        // abort would look like a normal end: it takes the buffered path instead.
        let may_stream = route.plan.streamable()
            && !matches!(
                parts.version,
                http::Version::HTTP_09 | http::Version::HTTP_10
            );

        // forward
        let upstream_started = Instant::now();
        let fetched = self
            .upstream
            .fetch(
                Forward {
                    method: parts.method.clone(),
                    target: granted.upstream_target,
                    request_id: record.request_id.clone(),
                    headers: parts.headers,
                    body,
                },
                may_stream,
            )
            .await;
        self.metrics
            .upstream_seconds
            .observe(upstream_started.elapsed().as_secs_f64());
        let fetched = fetched?;
        self.metrics.upstream_bytes.inc_by(fetched.bytes_read);

        // filter
        let upstream_body = match fetched.body {
            None => {
                return Ok(Allowed {
                    status: fetched.status,
                    body: None,
                    stream: None,
                })
            }
            Some(Payload::Parsed(value)) => value,
            Some(Payload::Stream(body)) => {
                let index = recipient
                    .kind
                    .routes
                    .iter()
                    .position(|r| std::ptr::eq(r, route));
                let Some(index) = index else {
                    return Err(Rejection::Internal(
                        "the granted route is not the recipient's",
                    ));
                };
                let limits = stream::Limits {
                    max_body: self.limits.max_streamed_body,
                    max_element: usize::try_from(self.limits.max_stream_element)
                        .unwrap_or(usize::MAX),
                    max_depth: self.limits.max_depth,
                    idle_timeout: self.upstream.timeout(),
                };
                return Ok(Allowed {
                    status: fetched.status,
                    body: None,
                    stream: Some(stream::Job {
                        request: stream::Requested {
                            route: index,
                            method: parts.method.to_string(),
                            path: granted.path,
                            params: granted.params,
                            query: granted.query,
                            headers: cel_headers,
                            now: std::time::SystemTime::now(),
                            recipient,
                        },
                        status: fetched.status,
                        body,
                        limits,
                        slot: Arc::new(slot),
                        version: parts.version,
                    }),
                });
            }
        };
        let request = filter::Request {
            caller: recipient.caller(),
            method: parts.method.as_str(),
            path: &granted.path,
            params: &granted.params,
            query: &granted.query,
            headers: &cel_headers,
            now: std::time::SystemTime::now(),
        };
        let outcome = filter::decide(&route.plan, &request, &upstream_body, false);
        record.subjects = outcome.subjects;
        record.reasons = outcome.reasons;
        record.disclosed = outcome.disclosed.into_iter().collect();
        record.withheld = outcome.withheld.into_iter().collect();
        if !outcome.rule_errors.is_empty() {
            self.metrics
                .rule_errors
                .inc_by(outcome.rule_errors.len() as u64);
            // Rule sites (file:line kind), never values.
            record
                .extra
                .insert("rule_errors".into(), Value::from(outcome.rule_errors));
        }
        if let Some(refusal) = outcome.refusal {
            return Err(Rejection::Refused(refusal));
        }
        if outcome.unidentified {
            return Err(Rejection::SubjectsUnidentified);
        }
        let Some(body) = outcome.body else {
            return Err(Rejection::Internal(
                "the filter decided no body and no refusal",
            ));
        };
        let bytes = serde_json::to_vec(&body)
            .map_err(|_| Rejection::Internal("the filtered body could not be serialised"))?;
        Ok(Allowed {
            status: fetched.status,
            body: Some(Bytes::from(bytes)),
            stream: None,
        })
    }
}

fn note_recipient(record: &mut Record, recipient: &Recipient) {
    record.recipient = Some(recipient.id.clone());
    record.recipient_type = Some(recipient.kind.name.clone());
    record.purpose = Some(recipient.kind.purpose.clone());
    record.lawful_basis = Some(recipient.kind.lawful_basis.to_string());
}

/// Only the allow-listed headers: content-type, content-length (set by hyper from the body),
/// date (set by hyper), cache-control and x-request-id.
fn response(
    status: StatusCode,
    body: Option<Bytes>,
    request_id: &str,
    retry_after: Option<u64>,
) -> Response<Full<Bytes>> {
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
    if let Some(secs) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn whole(response: Response<Full<Bytes>>) -> Response<Body> {
    response.map(Either::Left)
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
