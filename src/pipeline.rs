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
//!    strict JSON document under exactly one `application/json` content-type; 400. On a
//!    write route (`POST`, `PUT`, `PATCH`), only the paths its `accept` lists (400
//!    `field_not_accepted`), then its lookups and `require` rules ([`filter::write`]); 403.
//! 5. **forward**: the upstream exchange and its safety checks ([`upstream`]); 502 or 504.
//! 6. **filter**: [`filter::decide`], a pure function: `refuse` (403), `items`, `when`,
//!    `derive` and the allow-list; the body a recipient may see.
//! 7. **audit**: runs on success and failure alike; the record is durable before the
//!    response leaves, or the recipient gets 503 and nothing else. A refusal before
//!    identify beyond its client address's budget is answered without a record of its own
//!    and counted in a summary record instead ([`limits::unidentified`]).
//!
//! A large array response on a streaming route ([`stream`]) runs filter and audit per
//! segment of elements instead, in its own task, as the body arrives.
//!
//! Each phase returns what it found, and [`Gateway::handle`] fills the request's record from
//! that in one place: start the record, run the phases, then audit and respond.
//!
//! Every rejection, a streamed response's too, is told from one table ([`Rejection`]).
//! Errors are sorted by fault (client, upstream, us): client faults are not logged as errors,
//! and a 5xx body never carries inner detail. A broken invariant of the gateway's own is a
//! 500 `internal_error`, and nothing of the body is sent.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use serde_json::Value;

use crate::audit::{AuditLog, Record};
use crate::config::Limits;
use crate::connection::Connection;
use crate::filter;
use crate::identity;
use crate::limits::in_flight::{InFlight, Slot};
use crate::limits::unidentified::Unidentified;
use crate::limits::{self, Limiter};
use crate::metrics::{Metrics, ReasonLabels, RequestLabels, TypeLabels};
use crate::rejection::{describe, error_body, log_rejection, recorded_code};
pub use crate::rejection::{refusal_answer, Rejection, RequestBodyError};
use crate::routes;
use crate::rules::{Policy, Recipient, Route};
use crate::stream;
use crate::tls::PeerIdentity;
use crate::upstream::{Fetched, Forward, Payload, Upstream};
use request_body::read_body;
use trail::Seen;

mod lookups;
mod request_body;
mod trail;
mod unidentified;

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

/// What the filter phase answers a granted request with, ready to be audited and sent.
enum Answer {
    /// The upstream's status and no body (204 No Content).
    Empty(StatusCode),
    /// A filtered body, whole.
    Whole(StatusCode, Bytes),
    /// A body filtered as it arrives, in its own task, which records it segment by segment.
    /// Boxed: a job is large beside the other answers.
    Stream(Box<stream::Job>),
}

/// What a whole (not streamed) request ends with, unless its record cannot be written.
struct Reply {
    status: StatusCode,
    body: Option<Bytes>,
    retry_after: Option<u64>,
    /// For a rejection: the code its record names, and the label the refusal metric
    /// counts it by (a policy refusal's rule reason, text from the rules and never from a
    /// body; else the code).
    refused: Option<(&'static str, String)>,
}

/// The one step before any policy is put in use: records under it name its snapshot
/// (`rules_snapshot`), and the ledger refuses a record naming one it has not kept.
fn keep_snapshot(audit: &AuditLog, policy: &Policy) -> Result<(), crate::audit::Error> {
    let sealed = policy.snapshot();
    audit.keep_rules(&sealed.digest, &sealed.bytes)
}

// === impl Gateway ===

impl Gateway {
    /// The gateway serving `policy`, once the ledger has kept its rules snapshot.
    ///
    /// # Errors
    ///
    /// When the snapshot cannot be kept ([`Gateway::replace_policy`]).
    pub fn new(
        policy: Arc<Policy>,
        upstream: Upstream,
        audit: AuditLog,
        limits: Limits,
        limiter: Arc<dyn Limiter>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, crate::audit::Error> {
        keep_snapshot(&audit, &policy)?;
        metrics.set_generation(policy.generation());
        Ok(Gateway {
            policy: ArcSwap::new(policy),
            upstream,
            audit,
            unidentified: Unidentified::new(&limits.unauthenticated),
            limits,
            limiter,
            in_flight: InFlight::new(),
            metrics,
        })
    }

    /// The rules in use now.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// Puts `policy` in use for every request that starts from now on, once the ledger has
    /// kept its rules snapshot: every record made under it names a snapshot already durable.
    ///
    /// # Errors
    ///
    /// When the snapshot cannot be kept; the rules in use stay.
    pub fn replace_policy(&self, policy: Arc<Policy>) -> Result<(), crate::audit::Error> {
        keep_snapshot(&self.audit, &policy)?;
        self.metrics.set_generation(policy.generation());
        self.policy.store(policy);
        Ok(())
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
        let started = Instant::now();
        let policy = self.policy.load_full();
        let mut record = trail::start(&request, &policy);
        let decided = self
            .decide(&policy, request, connection.identity(), &mut record)
            .await;
        let reply = match decided {
            Ok(Answer::Stream(job)) => return self.stream(*job, record, started, connection).await,
            Ok(Answer::Empty(status)) => Reply::sent(status, None),
            Ok(Answer::Whole(status, body)) => Reply::sent(status, Some(body)),
            Err(rejection) => Reply::refused(&rejection, &record),
        };
        self.audit_and_respond(record, reply, started, connection)
            .await
    }

    /// The audit phase of a whole answer, then the response: the record is durable before
    /// the response leaves, or the recipient gets 503 and nothing else.
    async fn audit_and_respond(
        &self,
        mut record: Record,
        reply: Reply,
        started: Instant,
        connection: &Connection,
    ) -> Response<Body> {
        let Reply {
            status,
            body,
            retry_after,
            refused,
        } = reply;
        let request_id = record.request_id.clone();
        record.status = status.as_u16();
        if let Some((code, reason)) = &refused {
            record.extra.insert("error".into(), Value::from(*code));
            let reason = ReasonLabels {
                reason: reason.clone(),
            };
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
        let suppressed = refused.is_some()
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

    /// The phases up to and including the filter, in order; each returns what it found, and
    /// the record is filled from that here. The audit is the caller's.
    async fn decide(
        &self,
        policy: &Policy,
        request: Request<Incoming>,
        peer: Option<&PeerIdentity>,
        record: &mut Record,
    ) -> Result<Answer, Rejection> {
        let (parts, body) = request.into_parts();

        // A request must name one host, unambiguously (RFC 9112 section 3.2); HTTP/2 carries
        // it as :authority instead.
        if parts.version == http::Version::HTTP_11 {
            routes::check_host(&parts.headers)?;
        }

        let recipient = identify(policy, peer, &parts.headers)?;
        trail::note_recipient(record, &recipient);

        // Decoded once: the record, the conditions' `request.path` and the upstream target
        // all take this one value.
        let target = decode_target(&parts)?;
        record.set_path(target.path());
        let granted = authorize(&recipient, &parts.method, target)?;
        record.route = Some(granted.route.template.to_string());

        let slot = self.limit(&recipient).await?;

        let body = self.read(&parts, body).await?;
        // Conditions may read a few headers; take them before the headers go upstream.
        let headers = filter::pick_headers(&parts.headers);
        if let Some(reference) = disclosure_reference(&headers) {
            record
                .extra
                .insert("disclosure_reference".into(), Value::from(reference));
        }

        let written = accept(&granted.route.plan, &body)?;
        let asked = Asked {
            recipient: &recipient,
            method: parts.method.clone(),
            version: parts.version,
            granted,
            headers,
            body: written.map(|(value, received)| {
                record.set_received(received);
                value
            }),
        };

        // A write's lookups and requires run before anything goes upstream.
        let now = std::time::SystemTime::now();
        let before = match asked.body {
            Some(_) => Some(self.require(&asked, now, record).await?),
            None => None,
        };
        let fetched = self
            .forward(&asked, parts.headers, body, &record.request_id)
            .await?;

        let looked = match before {
            Some(looked) => looked,
            None => {
                let looked = self
                    .look_up(&fetched, &asked, now, &record.request_id)
                    .await;
                note_lookups(record, &looked);
                looked
            }
        };

        let (seen, answer) = self.filter(fetched, asked, slot, &looked.lookups, now);
        if let Some(seen) = seen {
            self.metrics
                .rule_errors
                .inc_by(seen.rule_errors.len() as u64);
            seen.note(record);
        }
        answer
    }

    /// limit: the recipient's rate ([`limits`]), then its `max_in_flight` slot. The slot is
    /// held until the answer is decided; a streamed one moves it into its job, which holds it
    /// until the body has ended.
    async fn limit(&self, recipient: &Recipient) -> Result<Slot, Rejection> {
        self.limiter.check(recipient).await?;
        Ok(self.in_flight.enter(recipient)?)
    }

    /// read: the recipient's own body, within `request_body_timeout` ([`read_body`]).
    async fn read(&self, parts: &http::request::Parts, body: Incoming) -> Result<Bytes, Rejection> {
        let timeout = self.limits.request_body_timeout;
        let read = tokio::time::timeout(timeout, read_body(parts, body, &self.limits)).await;
        Ok(read.map_err(|_| RequestBodyError::Timeout(timeout))??)
    }

    /// forward: the upstream exchange ([`upstream`]), timed and counted.
    async fn forward(
        &self,
        asked: &Asked<'_>,
        headers: http::HeaderMap,
        body: Bytes,
        request_id: &str,
    ) -> Result<Fetched, Rejection> {
        // An HTTP/1.0 client gets a streamed body delimited by the connection's close, so an
        // abort would look like a normal end: it takes the buffered path instead.
        let may_stream = asked.granted.route.plan.streamable()
            && !matches!(
                asked.version,
                http::Version::HTTP_09 | http::Version::HTTP_10
            );
        let started = Instant::now();
        let forward = Forward {
            method: asked.method.clone(),
            target: asked.granted.upstream_target.clone(),
            request_id: request_id.to_owned(),
            headers,
            body,
        };
        let fetched = self.upstream.fetch(forward, may_stream).await;
        self.metrics
            .upstream_seconds
            .observe(started.elapsed().as_secs_f64());
        let fetched = fetched?;
        self.metrics.upstream_bytes.inc_by(fetched.bytes_read);
        Ok(fetched)
    }

    /// A write's lookups ([`lookups`]), whose placeholders read the request and not the
    /// upstream body, then its `require` rules ([`filter::write::require`]): one false or
    /// erring refuses with 403, and nothing goes upstream. The lookups' answers are kept for
    /// the filter of the upstream's answer.
    async fn require(
        &self,
        asked: &Asked<'_>,
        now: std::time::SystemTime,
        record: &mut Record,
    ) -> Result<lookups::Looked, Rejection> {
        let plan = &asked.granted.route.plan;
        let looked = if plan.lookups().is_empty() {
            lookups::Looked::default()
        } else {
            let request = asked.filter_request(now, filter::Lookups::none());
            let targets = filter::lookup::targets(plan, &request, &Value::Null);
            lookups::fetch(&self.upstream, targets, &record.request_id).await
        };
        note_lookups(record, &looked);
        let request = asked.filter_request(now, &looked.lookups);
        if let Err(refusal) = filter::write::require(plan, &request) {
            record.reasons = vec![refusal.reason.clone()];
            return Err(Rejection::Refused(refusal));
        }
        Ok(looked)
    }

    /// The route's lookups ([`lookups`]), between forward and filter: their placeholders
    /// read the parsed upstream body, so a body that is not parsed (none, or streamed) has
    /// none made.
    async fn look_up(
        &self,
        fetched: &Fetched,
        asked: &Asked<'_>,
        now: std::time::SystemTime,
        request_id: &str,
    ) -> lookups::Looked {
        let plan = &asked.granted.route.plan;
        let Some(Payload::Parsed(body)) = &fetched.body else {
            return lookups::Looked::default();
        };
        if plan.lookups().is_empty() {
            return lookups::Looked::default();
        }
        let request = asked.filter_request(now, filter::Lookups::none());
        let targets = filter::lookup::targets(plan, &request, body);
        lookups::fetch(&self.upstream, targets, request_id).await
    }

    /// filter: what of the upstream body the recipient may see. A parsed body is decided
    /// here by [`filter::decide`], which also says what the record holds of it; a streamed
    /// one becomes a job that decides and records it as it arrives.
    fn filter(
        &self,
        fetched: Fetched,
        asked: Asked<'_>,
        slot: Slot,
        lookups: &filter::Lookups,
        now: std::time::SystemTime,
    ) -> (Option<Seen>, Result<Answer, Rejection>) {
        let upstream_body = match fetched.body {
            None => return (None, Ok(Answer::Empty(fetched.status))),
            Some(Payload::Stream(body)) => {
                return (None, self.stream_job(fetched.status, body, asked, slot));
            }
            Some(Payload::Parsed(value)) => value,
        };
        if let Some(max) = asked.granted.route.plan.too_many_items(&upstream_body) {
            return (None, Err(Rejection::TooManyItems(max)));
        }
        let request = asked.filter_request(now, lookups);
        let outcome = filter::decide(&asked.granted.route.plan, &request, &upstream_body, false);
        let seen = Seen {
            subjects: outcome.subjects,
            reasons: outcome.reasons,
            disclosed: outcome.disclosed.into_iter().collect(),
            withheld: outcome.withheld.into_iter().collect(),
            scrubbed: outcome.scrubbed,
            rule_errors: outcome.rule_errors,
        };
        let answer = match (outcome.refusal, outcome.unidentified, outcome.body) {
            (Some(refusal), _, _) => Err(Rejection::Refused(refusal)),
            (None, true, _) => Err(Rejection::SubjectsUnidentified),
            (None, false, None) => Err(Rejection::Internal(
                "the filter decided no body and no refusal",
            )),
            (None, false, Some(body)) => match serde_json::to_vec(&body) {
                Ok(bytes) => Ok(Answer::Whole(fetched.status, Bytes::from(bytes))),
                Err(_) => Err(Rejection::Internal(
                    "the filtered body could not be serialised",
                )),
            },
        };
        (Some(seen), answer)
    }

    /// The job that filters and records a streamed body in its own task ([`stream`]).
    fn stream_job(
        &self,
        status: StatusCode,
        body: Incoming,
        asked: Asked<'_>,
        slot: Slot,
    ) -> Result<Answer, Rejection> {
        let Asked {
            recipient,
            method,
            version,
            granted,
            headers,
            body: _,
        } = asked;
        let route = granted.index;
        let limits = stream::Limits {
            max_body: self.limits.max_streamed_body,
            max_element: usize::try_from(self.limits.max_stream_element).unwrap_or(usize::MAX),
            max_depth: self.limits.max_depth,
            idle_timeout: self.upstream.timeout(),
        };
        Ok(Answer::Stream(Box::new(stream::Job {
            request: stream::Requested {
                route,
                method: method.to_string(),
                path: granted.path,
                params: granted.params,
                query: granted.query,
                headers,
                now: std::time::SystemTime::now(),
                recipient: Arc::clone(recipient),
            },
            status,
            body,
            limits,
            slot: Arc::new(slot),
            version,
        })))
    }
}

/// The request as the phases after `limit` need it.
struct Asked<'r> {
    recipient: &'r Arc<Recipient>,
    method: http::Method,
    version: http::Version,
    granted: routes::Granted<'r, Route>,
    /// The few headers conditions may read, taken before the headers go upstream.
    headers: Vec<(&'static str, String)>,
    /// A write's parsed body, as `request.body`; `None` on a read.
    body: Option<Value>,
}

// === impl Asked ===

impl Asked<'_> {
    /// The request as [`filter::decide`] and the lookups' placeholders see it.
    fn filter_request<'a>(
        &'a self,
        now: std::time::SystemTime,
        lookups: &'a filter::Lookups,
    ) -> filter::Request<'a> {
        filter::Request {
            caller: self.recipient.caller(),
            method: self.method.as_str(),
            path: &self.granted.path,
            params: &self.granted.params,
            query: &self.granted.query,
            headers: &self.headers,
            now,
            lookups,
            body: self.body.as_ref(),
        }
    }
}

// === impl Reply ===

impl Reply {
    fn sent(status: StatusCode, body: Option<Bytes>) -> Reply {
        Reply {
            status,
            body,
            retry_after: None,
            refused: None,
        }
    }

    /// The answer to a rejection, from the one table; logged by its fault.
    fn refused(rejection: &Rejection, record: &Record) -> Reply {
        let (status, code, message) = describe(rejection);
        log_rejection(rejection, record);
        let retry_after = match rejection {
            Rejection::Limits(limits::Error::Exceeded(e)) => Some(e.retry_after_secs),
            Rejection::InFlight(_) => Some(1),
            _ => None,
        };
        let recorded = recorded_code(rejection);
        let reason = match (rejection, record.reasons.first()) {
            (Rejection::Refused(_), Some(why)) => why.clone(),
            _ => recorded.to_owned(),
        };
        Reply {
            status,
            body: Some(error_body(code, &message, &record.request_id)),
            retry_after,
            refused: Some((recorded, reason)),
        }
    }
}

/// On a write route, the recipient's body parsed, with the accepted paths it holds; a path
/// it may not send refuses the write (400) before anything goes upstream.
fn accept(
    plan: &filter::Plan,
    body: &Bytes,
) -> Result<Option<(Value, std::collections::BTreeSet<String>)>, Rejection> {
    let Some(write) = plan.write() else {
        return Ok(None);
    };
    // An empty body sends no field (an action such as "cancel"): forwarded empty, read by
    // the requires as `{}`.
    if body.is_empty() {
        return Ok(Some((
            Value::Object(Default::default()),
            Default::default(),
        )));
    }
    // `read` parsed it strictly already; this is the value the rules read.
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| Rejection::Internal("a checked request body did not parse"))?;
    let received = filter::write::received(&write.accept, &value)?;
    Ok(Some((value, received)))
}

/// The templates of the lookups made, in the record.
fn note_lookups(record: &mut Record, looked: &lookups::Looked) {
    if !looked.made.is_empty() {
        record
            .extra
            .insert("lookups".into(), Value::from(looked.made.clone()));
    }
}

/// identify: who is calling, by client certificate or API key ([`identity`]).
fn identify(
    policy: &Policy,
    peer: Option<&PeerIdentity>,
    headers: &http::HeaderMap,
) -> Result<Arc<Recipient>, Rejection> {
    Ok(identity::identify(policy, peer, headers)?)
}

/// The request target, decoded for routing. HTTP/2 carries scheme and authority as
/// pseudo-headers, so its URI is absolute; only the path and query name the resource.
/// HTTP/1.1's absolute-form stays refused.
fn decode_target(parts: &http::request::Parts) -> Result<routes::Target, Rejection> {
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
    Ok(routes::Target::parse(target)?)
}

/// authorize: is the decoded target one of the recipient's granted routes ([`routes`]).
fn authorize<'r>(
    recipient: &'r Recipient,
    method: &http::Method,
    target: routes::Target,
) -> Result<routes::Granted<'r, Route>, Rejection> {
    Ok(routes::grant(
        &recipient.kind.routes,
        method,
        target,
        recipient.caller(),
    )?)
}

/// A request-driven disclosure (police, debt agents) names its reference; the audit keeps
/// it, so the DPO can match each disclosure to the request that asked for it.
fn disclosure_reference(headers: &[(&'static str, String)]) -> Option<String> {
    headers
        .iter()
        .find(|(name, _)| *name == "x-disclosure-reference")
        .map(|(_, reference)| reference.clone())
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
