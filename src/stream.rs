//! Streaming large array responses, element by element, without giving up fail-closed.
//!
//! A research export (every tenant, 100 MB) would need gigabytes as one parsed `Value`. A
//! route whose rules only ever look inside one element can be filtered as the body arrives:
//! [`split::Splitter`] finds each top-level element and the one-pass filter
//! ([`crate::filter::project`]) checks and filters its bytes as [`crate::json::parse_strict`]
//! and [`filter::decide`] would a one-element array; where the route's rules take a shape it
//! does not handle, those two do it. Either way the streamed answer is the buffered answer,
//! byte for byte. Memory is bounded by the largest element and one segment, not by the body.
//!
//! # Which routes stream
//!
//! Decided once when rules load ([`filter::Plan::streamable`]), never guessed per request. A route streams when
//! every path it names (`allow`, `subjects`, each `when`'s `allow`, `items` and `derive`)
//! starts with `[]`, it allows at least one, no `when`, `items` or `derive` expression reads
//! `body`, and it has no `refuse` rule (a refusal is about the whole response and must come
//! before any byte). A response on such a route streams when it is 2xx with a body, has no
//! content coding, and its Content-Length is over `[limits] stream_threshold` or absent.
//! Every other response keeps the buffered path within `max_response_body`; a streamed one
//! may run to `max_streamed_body`, each element at most `max_stream_element`.
//!
//! # Threads
//!
//! The response's task reads and splits; the filtering, the whole cost of an export, runs
//! in batches of elements on one thread per core ([`batch`], [`pool`]), two batches ahead
//! of the next, merged in the order they were split. What is sent, and what each segment's
//! record says, is what filtering one element after another would give.
//!
//! # Audit before disclosure
//!
//! Elements are released in segments of [`SEGMENT_ELEMENTS`] elements or [`SEGMENT_BYTES`]
//! of output, whichever comes first (checked after each upstream frame). Before a segment's
//! bytes leave, one audit record for it is durable: the request's usual fields, the
//! segment's `subjects`, `disclosed` and `withheld`, and `stream: {"segment": n, ...}`. The
//! last record of the request is `stream: {"state": "complete" | "aborted", ...}` with the
//! counts and, when aborted, `error`. Every record is an ordinary chained [`Record`], so
//! `audit verify`, `audit query --subject` and the subject access report see streamed
//! disclosures like any other. The closing `]` is sent only after the body ended cleanly and
//! the final record is durable.
//!
//! # Failing closed
//!
//! A malformed or duplicate-key element, bad UTF-8, data after the array, an element or
//! body over its limit, an upstream reset, an upstream silent for `upstream.timeout`, or an
//! audit write failure, all abort the response. Before the first byte the recipient gets
//! the usual JSON error (502, 503, 504). After it, the response body fails: hyper closes an
//! HTTP/1.1 connection without the terminating chunk and resets an HTTP/2 stream, and what
//! arrived (`[{..},{..}`) does not parse as JSON.
//!
//! # A recipient that stops taking it
//!
//! The response holds what it costs (its `max_in_flight` slot, its upstream connection, its
//! task and segments) until its body has ended. The final record waits until the connection
//! has accepted every released byte. A recipient that takes nothing for `write_stall_timeout` is
//! cut off: on HTTP/1.1 by the socket's rule, on HTTP/2 by the filter task ([`consumer`]),
//! which records the export aborted (`recipient_stalled`) and closes the connection.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::audit::{AuditLog, Record};
use crate::connection::Connection;
use crate::filter;
use crate::filter::conditions::PerElement;
use crate::filter::project::Seen;
use crate::json::split;
use crate::limits::in_flight::Slot;
use crate::metrics::Metrics;
use crate::rejection::{describe, log_rejection, Rejection};
use crate::rules::{Recipient, Route};
use crate::upstream;
use batch::{Batch, Filtered, BATCH_BYTES, BATCH_ELEMENTS};
use consumer::{Progress, Watch, FRAME_BYTES};
pub use in_memory::{difference, disagreement, filter_in_memory, InMemory};

mod batch;
pub mod consumer;
mod in_memory;
mod pool;

/// Elements per segment: one audit record (one fsync) per thousand elements keeps the audit
/// cost small next to the filter, and a record's `subjects` list readable.
pub const SEGMENT_ELEMENTS: usize = 1000;

/// Output bytes per segment: the most filtered output held back waiting for its record.
pub const SEGMENT_BYTES: usize = 1 << 20;

/// Segments in flight between the filter task and the connection: the filter works on the
/// next segment while the last one is written to the socket, and no further.
const CHANNEL_SEGMENTS: usize = 2;

/// Batches of elements being filtered at once while the next is gathered: one per core of
/// the machines we size for, and a bound on what a response holds beyond its segment.
const BATCHES_IN_FLIGHT: usize = 2;

/// Limits of one streamed response.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body: u64,
    pub max_element: usize,
    pub max_depth: usize,
    /// The longest the upstream may go without sending a frame.
    pub idle_timeout: Duration,
}

/// Everything a streamed response needs, owned, because it outlives the request handler.
pub struct Job {
    pub request: Requested,
    pub status: StatusCode,
    pub body: Incoming,
    pub limits: Limits,
    /// The recipient's `max_in_flight` slot: the filter task and the response body each
    /// hold it, so it is free only once the body has ended (or failed, or was dropped with
    /// its connection) and the task has made its last record. Released at the response head,
    /// one recipient could hold any number of exports open at once.
    pub slot: Arc<Slot>,
    /// The request's HTTP version: HTTP/2 streams get the filter task's stall rule.
    pub version: http::Version,
}

/// The request a streamed response answers, for the filter's `recipient` and `request`.
pub struct Requested {
    pub recipient: Arc<Recipient>,
    /// The index of the granted route in `recipient.kind.routes`.
    pub route: usize,
    pub method: String,
    pub path: String,
    pub params: BTreeMap<String, String>,
    pub query: filter::Query,
    pub headers: Vec<(&'static str, String)>,
    pub now: SystemTime,
}

impl Requested {
    /// The granted route; `None` only if `route` is not an index of the recipient's routes.
    pub fn granted_route(&self) -> Option<&Route> {
        self.recipient.kind.routes.get(self.route)
    }

    /// The request as the filter sees it.
    pub fn filter_request(&self) -> filter::Request<'_> {
        filter::Request {
            caller: self.recipient.caller(),
            method: &self.method,
            path: &self.path,
            params: &self.params,
            query: &self.query,
            headers: &self.headers,
            now: self.now,
            lookups: filter::Lookups::none(),
            // A write is never streamed ([`filter::Plan::streamable`]).
            body: None,
        }
    }
}

/// What the filter task hands to the connection.
#[derive(Debug)]
pub enum Msg {
    /// Bytes whose audit record is durable.
    Data(Bytes),
    /// The body ended cleanly (the closing `]` was the last data).
    Done,
    /// Stop: the body must fail. What the recipient gets if nothing was sent yet is the
    /// rejection table's answer.
    Abort(Rejection),
}

/// The response body of a streamed response: data as the filter task releases it, in frames
/// of at most [`FRAME_BYTES`], and an error (so a broken transfer) for anything but a clean
/// end, including a task that died.
#[derive(Debug)]
pub struct Body {
    /// What is left of the last message, handed out a frame at a time.
    pending: Bytes,
    rx: mpsc::Receiver<Msg>,
    done: bool,
    /// Each frame handed out, for the filter task's stall rule.
    progress: Arc<Progress>,
    /// The request's `max_in_flight` slot, until hyper drops the body.
    _slot: Arc<Slot>,
    /// The connection counts as busy (not idle) until the body ends.
    _busy: crate::connection::Busy,
}

/// The error a streamed body fails with; never shown to the recipient.
#[derive(Debug, thiserror::Error)]
#[error("streamed response aborted: {0}")]
pub struct Aborted(&'static str);

// === impl Body ===

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        self.progress.polled();
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(FRAME_BYTES);
                let frame = self.pending.split_to(n);
                self.progress.took(n);
                return Poll::Ready(Some(Ok(Frame::data(frame))));
            }
            if self.done {
                return Poll::Ready(None);
            }
            let end = match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Msg::Data(bytes))) => {
                    self.pending = bytes;
                    continue;
                }
                Poll::Ready(Some(Msg::Done)) => None,
                Poll::Ready(Some(Msg::Abort(a))) => Some(Err(Aborted(describe(&a).1))),
                Poll::Ready(None) => Some(Err(Aborted("filter task ended"))),
            };
            self.done = true;
            self.progress.end();
            return Poll::Ready(end);
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.pending.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Starts filtering `job` in its own task and waits for its first message.
///
/// `Ok` is the response body, first segment included; `Err` means nothing was sent and the
/// recipient should get the error (the task has already recorded it). On HTTP/2 the task
/// applies `connection`'s write-stall timeout to the body and closes `connection` when it
/// trips ([`consumer`]).
pub async fn start(
    job: Job,
    record: Record,
    audit: AuditLog,
    metrics: Arc<Metrics>,
    connection: &Connection,
) -> Result<Body, Rejection> {
    let (tx, mut rx) = mpsc::channel(CHANNEL_SEGMENTS);
    let slot = Arc::clone(&job.slot);
    let progress = Progress::new();
    let per_stream = job.version >= http::Version::HTTP_2;
    let watch = Watch::new(
        Arc::clone(&progress),
        per_stream.then(|| connection.write_stall_timeout()),
        connection.closer(),
    );
    let request_id = record.request_id.clone();
    tokio::spawn(run(job, record, audit, metrics, tx, watch));
    match rx.recv().await {
        Some(Msg::Data(first)) => Ok(Body {
            pending: first,
            rx,
            done: false,
            progress,
            _slot: slot,
            _busy: connection.busy(),
        }),
        Some(Msg::Abort(abort)) => Err(abort),
        Some(Msg::Done) | None => {
            let rejection = Rejection::Internal("the filter task ended before its first message");
            tracing::error!(request_id, error = %rejection, "internal fault");
            Err(rejection)
        }
    }
}

/// One segment being filled: its output and what its audit record will say.
#[derive(Default)]
struct Pending {
    out: BytesMut,
    elements: usize,
    sent: usize,
    seen: Seen,
}

/// Counts over the whole response, for the final record.
#[derive(Default)]
struct Totals {
    segments: u64,
    elements: u64,
    sent: u64,
    upstream_bytes: u64,
    response_bytes: u64,
    rule_errors: BTreeSet<String>,
}

/// The filter task: reads, splits, filters, records, releases; one final record either way,
/// made once the connection has accepted every released byte (or cannot).
async fn run(
    job: Job,
    template: Record,
    audit: AuditLog,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<Msg>,
    watch: Watch,
) {
    let Job {
        request,
        status,
        mut body,
        limits,
        slot: _slot,
        version: _,
    } = job;
    let mut totals = Totals::default();
    let mut template = template;
    template.status = status.as_u16();
    let io = Io {
        template: &template,
        audit: &audit,
        metrics: &metrics,
        tx: &tx,
        subjects_optional: request
            .granted_route()
            .is_some_and(|route| route.plan.subjects_optional()),
        watch: &watch,
    };
    let request = Arc::new(request);
    let outcome = pump(&request, &mut body, limits, io, &mut totals).await;
    // Nothing more is read upstream: its connection goes now, not when the recipient is done.
    drop(body);
    let outcome = match outcome {
        Ok(()) => {
            let released = totals.response_bytes;
            watch.until(&tx, |p| p.accepted() >= released).await
        }
        Err(abort) => Err(abort),
    };
    if let Err(abort) = &outcome {
        log_rejection(abort, &template);
    }
    let stalled = matches!(&outcome, Err(Rejection::RecipientStalled(_)));
    if stalled {
        watch.close_connection();
    }
    let started = totals.segments > 0;
    let (state, abort) = match outcome {
        Ok(()) => ("complete", None),
        Err(abort) => ("aborted", Some(abort)),
    };
    let mut record = template;
    record.ts = crate::audit::now_rfc3339();
    let told = abort.as_ref().map(describe);
    record.status = match &told {
        Some((status, _, _)) if !started => status.as_u16(),
        _ => status.as_u16(),
    };
    record.extra.insert(
        "stream".into(),
        json!({
            "state": state,
            "segments": totals.segments,
            "elements": totals.elements,
            "sent_elements": totals.sent,
            "upstream_bytes": totals.upstream_bytes,
            "response_bytes": totals.response_bytes,
        }),
    );
    if let Some((_, code, _)) = &told {
        record.extra.insert("error".into(), Value::from(*code));
    }
    if !totals.rule_errors.is_empty() {
        metrics.rule_errors.inc_by(totals.rule_errors.len() as u64);
        let errors: Vec<String> = totals.rule_errors.into_iter().collect();
        record
            .extra
            .insert("rule_errors".into(), Value::from(errors));
    }
    let request_id = record.request_id.clone();
    let appended = audit.append(record).await;
    metrics.upstream_bytes.inc_by(totals.upstream_bytes);
    let last = match (abort, appended) {
        (None, Ok(())) => vec![Msg::Data(Bytes::from_static(b"]")), Msg::Done],
        // Nothing sent yet, and the refusal itself could not be recorded: answer as the
        // buffered path does when the audit fails (503), not with the upstream's error.
        (Some(_), Err(e)) if !started => {
            tracing::error!(request_id, error = %e, "audit write failed; refusing with 503");
            vec![Msg::Abort(Rejection::Audit(e))]
        }
        (Some(a), _) => vec![Msg::Abort(a)],
        (None, Err(e)) => {
            tracing::error!(request_id, error = %e, "audit write failed; aborting the stream");
            vec![Msg::Abort(Rejection::Audit(e))]
        }
    };
    tracing::info!(
        request_id,
        state,
        segments = totals.segments,
        elements = totals.elements,
        sent = totals.sent,
        bytes = totals.response_bytes,
        "streamed response"
    );
    if stalled {
        return;
    }
    // The slot and the stream are held until the body ends; one that stalls before it does
    // (its last bytes waiting for window) is cut off too.
    let mut ended = Ok(());
    for msg in last {
        ended = watch.send(&tx, msg).await;
        if ended.is_err() {
            break;
        }
    }
    if ended.is_ok() {
        ended = watch.until(&tx, Progress::ended).await;
    }
    if matches!(ended, Err(Rejection::RecipientStalled(_))) {
        tracing::debug!(
            request_id,
            "the recipient stopped taking the end of the response"
        );
        watch.close_connection();
    }
}

/// Where released segments go: the ledger first, then the connection.
#[derive(Clone, Copy)]
struct Io<'a> {
    template: &'a Record,
    audit: &'a AuditLog,
    metrics: &'a Metrics,
    tx: &'a mpsc::Sender<Msg>,
    /// The route's `subjects_optional`: else a segment that discloses without naming a
    /// data subject aborts the response, as `decide` refuses such a body.
    subjects_optional: bool,
    watch: &'a Watch,
}

/// Everything up to the final record; `Err` as soon as anything is wrong.
async fn pump(
    job: &Arc<Requested>,
    body: &mut Incoming,
    limits: Limits,
    io: Io<'_>,
    totals: &mut Totals,
) -> Result<(), Rejection> {
    let route = job.granted_route().ok_or(Rejection::Internal(
        "the streamed route is not the recipient's",
    ))?;
    // The `when`s cannot depend on an element (checked at load), so they are decided once
    // for the whole response; one that errs is a rule error even when the array is empty.
    let request = job.filter_request();
    let (mask, reasons) = PerElement::new(&route.plan, &request).whens(&mut totals.rule_errors);
    let mut splitter = split::Splitter::new(limits.max_depth, limits.max_element);
    let depth = splitter.element_depth();
    // With `max_items`, nothing is released until the array has ended within it: a longer
    // answer is refused whole (400) before its first byte, as the buffered filter refuses it.
    let cap = route.plan.max_items();
    let hold = cap.is_some();
    let mut read_elements = 0usize;
    let mut segment = Pending::default();
    segment.out.put_u8(b'[');
    let mut filtering = Filtering {
        job,
        mask,
        depth,
        batch: Batch::default(),
        in_flight: VecDeque::new(),
        spare: Vec::new(),
        any_sent: false,
    };
    loop {
        let batch = &mut filtering.batch;
        let frame = (&mut splitter, batch, &mut read_elements);
        let mut read = read_frame(body, limits, frame, totals).await;
        if let Some(max) = cap.filter(|&max| read_elements > max) {
            read = Err(Rejection::TooManyItems(max));
        }
        match read {
            Ok(true) => {}
            Ok(false) => break,
            Err(abort) => {
                // What was split out before the upstream failed is filtered and released as
                // far as whole segments go, as it would have been had it been filtered as it
                // arrived; then the transfer is aborted.
                filtering.submit();
                drain(
                    &mut filtering,
                    (0, hold),
                    &mut segment,
                    &reasons,
                    io,
                    totals,
                )
                .await?;
                return Err(abort);
            }
        }
        if filtering.batch.len() >= BATCH_BYTES || filtering.batch.elements() >= BATCH_ELEMENTS {
            filtering.submit();
        }
        // Filter ahead: wait only while more batches than cores are under way.
        drain(
            &mut filtering,
            (BATCHES_IN_FLIGHT, hold),
            &mut segment,
            &reasons,
            io,
            totals,
        )
        .await?;
    }
    filtering.submit();
    drain(
        &mut filtering,
        (0, hold),
        &mut segment,
        &reasons,
        io,
        totals,
    )
    .await?;
    // The last segment, even when empty: the first message must carry the opening `[`.
    if segment.elements > 0 || totals.segments == 0 {
        release(&mut segment, &reasons, io, totals).await?;
    }
    Ok(())
}

/// Reads the next upstream frame into the splitter: `Ok(false)` when the body ended (and
/// the array with it), `Err` for an upstream that failed, overran or sent what is not an
/// array of elements.
async fn read_frame(
    body: &mut Incoming,
    limits: Limits,
    (splitter, batch, elements): (&mut split::Splitter, &mut Batch, &mut usize),
    totals: &mut Totals,
) -> Result<bool, Rejection> {
    let frame = tokio::time::timeout(limits.idle_timeout, next_data(body)).await;
    let data = match frame {
        Err(_) => return Err(Rejection::UpstreamSilent(limits.idle_timeout)),
        Ok(None) => {
            splitter.finish()?;
            return Ok(false);
        }
        Ok(Some(Err(e))) => return Err(upstream::Error::Body(e).into()),
        Ok(Some(Ok(data))) => data,
    };
    totals.upstream_bytes += data.len() as u64;
    if totals.upstream_bytes > limits.max_body {
        return Err(upstream::Error::TooLarge(limits.max_body).into());
    }
    splitter.feed_bytes(&data, |element| {
        *elements += 1;
        batch.push(element);
        Ok::<_, split::Error>(())
    })?;
    Ok(true)
}

/// Merges filtered batches into the segment, in order, releasing each segment as it fills
/// unless `hold` (the answer is counted against `max_items` first); waits while more than
/// `most` batches are under way, and takes any that finished anyway.
async fn drain(
    filtering: &mut Filtering<'_>,
    (most, hold): (usize, bool),
    segment: &mut Pending,
    reasons: &[String],
    io: Io<'_>,
    totals: &mut Totals,
) -> Result<(), Rejection> {
    while let Some(done) = filtering.next_done(most).await? {
        filtering.merge(done, segment, totals);
        let full = segment.elements >= SEGMENT_ELEMENTS || segment.out.len() >= SEGMENT_BYTES;
        if full && !hold {
            release(segment, reasons, io, totals).await?;
        }
    }
    Ok(())
}

/// Batches of one response's elements being filtered on blocking threads, in order.
struct Filtering<'j> {
    job: &'j Arc<Requested>,
    mask: u64,
    depth: usize,
    batch: Batch,
    in_flight: VecDeque<oneshot::Receiver<(Batch, Result<Filtered, split::Error>)>>,
    /// Batches filtered and emptied, kept for their buffers.
    spare: Vec<Batch>,
    any_sent: bool,
}

impl Filtering<'_> {
    /// Hands the batch gathered so far to a blocking thread.
    fn submit(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let next = self.spare.pop().unwrap_or_default();
        let mut batch = std::mem::replace(&mut self.batch, next);
        let (job, mask, depth) = (Arc::clone(self.job), self.mask, self.depth);
        self.in_flight.push_back(pool::spawn(move || {
            let filtered = batch.filter(&job, mask, depth);
            batch.clear();
            (batch, filtered)
        }));
    }

    /// The oldest batch's result, waiting for it while more than `most` are under way, or
    /// if it has finished anyway; `None` when there is nothing to take yet.
    async fn next_done(&mut self, most: usize) -> Result<Option<Filtered>, Rejection> {
        let waiting = self.in_flight.len();
        let Some(front) = self.in_flight.front_mut() else {
            return Ok(None);
        };
        let result = match front.try_recv() {
            Ok(result) => Ok(result),
            Err(oneshot::error::TryRecvError::Empty) if waiting <= most => return Ok(None),
            Err(oneshot::error::TryRecvError::Empty) => front.await.map_err(drop),
            Err(oneshot::error::TryRecvError::Closed) => Err(()),
        };
        self.in_flight.pop_front();
        match result {
            Ok((batch, filtered)) => {
                self.spare.push(batch);
                Ok(Some(filtered?))
            }
            // The filter panicked: a bug, and nothing of the batch can be sent.
            Err(()) => Err(Rejection::Internal("the filter of a batch panicked")),
        }
    }

    /// Adds a filtered batch to the segment being filled.
    fn merge(&mut self, done: Filtered, segment: &mut Pending, totals: &mut Totals) {
        if !done.out.is_empty() {
            if self.any_sent {
                segment.out.put_u8(b',');
            }
            self.any_sent = true;
            segment.out.extend_from_slice(&done.out);
        }
        segment.elements += done.elements;
        segment.sent += done.sent;
        totals.elements += done.elements as u64;
        totals.sent += done.sent as u64;
        segment.seen.merge(done.seen);
        totals.rule_errors.extend(done.rule_errors);
    }
}

/// Makes the segment's record durable, then hands its bytes to the connection.
async fn release(
    segment: &mut Pending,
    reasons: &[String],
    io: Io<'_>,
    totals: &mut Totals,
) -> Result<(), Rejection> {
    let Io {
        template,
        audit,
        metrics,
        tx,
        subjects_optional,
        watch,
    } = io;
    if !subjects_optional && segment.seen.subjects.is_empty() && !segment.seen.disclosed.is_empty()
    {
        return Err(Rejection::SubjectsUnidentified);
    }
    let done = std::mem::take(segment);
    let mut record = template.clone();
    record.ts = crate::audit::now_rfc3339();
    record.reasons = reasons.to_vec();
    record.subjects = done.seen.subjects.into_iter().collect();
    record.disclosed = done.seen.disclosed.into_sorted().into_iter().collect();
    record.withheld = done.seen.withheld.into_sorted().into_iter().collect();
    record.set_scrubbed(done.seen.scrubbed.into_sorted());
    record.extra.insert(
        "stream".into(),
        json!({
            "segment": totals.segments + 1,
            "elements": done.elements,
            "sent_elements": done.sent,
        }),
    );
    let started = std::time::Instant::now();
    let appended = audit.append(record).await;
    metrics.observe_audit(started.elapsed(), appended.is_ok());
    if let Err(e) = appended {
        return Err(Rejection::Audit(e));
    }
    totals.segments += 1;
    let bytes = done.out.freeze();
    totals.response_bytes += bytes.len() as u64;
    metrics.response_bytes.inc_by(bytes.len() as u64);
    watch.send(tx, Msg::Data(bytes)).await
}

/// The next data frame of an upstream body; trailers are skipped.
async fn next_data(body: &mut Incoming) -> Option<Result<Bytes, hyper::Error>> {
    loop {
        match body.frame().await? {
            Err(e) => return Some(Err(e)),
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    return Some(Ok(data));
                }
            }
        }
    }
}
