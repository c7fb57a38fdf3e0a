//! Prometheus metrics for `/metrics`, with the prometheus-client crate.
//!
//! Labels carry only recipient ids, recipient types, route templates, statuses and refusal
//! codes: never a raw path (it holds tenant and job ids) and never a field value.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::audit::Stats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub recipient: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabels {
    pub recipient_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GenerationLabels {
    pub generation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

/// The shared (Redis) rate limiter's health; cloned into the limiter, which updates it.
#[derive(Clone, Debug, Default)]
pub struct SharedLimiter {
    /// Redis calls that failed or timed out; each request they concerned was decided by the
    /// fallback (`local`) or refused (`refuse`).
    pub errors: Counter,
    /// Requests decided without Redis (by the local share, or refused), in or out of a call.
    pub fallback_decisions: Counter,
    /// 1 while this replica decides without Redis (an outage), 0 while Redis answers.
    pub fallback_active: Gauge,
}

/// Every metric the gateway keeps.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Histogram,
    pub upstream_seconds: Histogram,
    pub upstream_bytes: Counter,
    pub response_bytes: Counter,
    pub fields_withheld: Family<TypeLabels, Counter>,
    pub refusals: Family<ReasonLabels, Counter>,
    /// Refusals before identity beyond their address's budget: answered, not recorded one
    /// by one (each is in a summary record).
    pub unauthenticated_refusals_suppressed: Counter,
    pub rule_errors: Counter,
    pub audit_write_seconds: Histogram,
    pub audit_failures: Counter,
    audit_records: Gauge<u64, AtomicU64>,
    audit_fsyncs: Gauge<u64, AtomicU64>,
    audit_checkpoints: Gauge<u64, AtomicU64>,
    audit_checkpoint_failures: Gauge<u64, AtomicU64>,
    /// Group commits (fsyncs of the file, or PostgreSQL transactions): records per commit is
    /// `audit_records / audit_commits`.
    audit_commits: Gauge<u64, AtomicU64>,
    pub rules_generation: Family<GenerationLabels, Gauge>,
    pub reloads: Family<ResultLabels, Counter>,
    pub shared_limiter: SharedLimiter,
    /// The last audit append succeeded; `/readyz` reads it.
    pub audit_ok: AtomicBool,
    audit_stats: Arc<Stats>,
}

impl Metrics {
    pub fn new(audit_stats: Arc<Stats>) -> Metrics {
        let mut registry = Registry::with_prefix("need_to_know");
        let seconds = || Histogram::new(exponential_buckets(0.0001, 2.0, 18));
        let metrics = Metrics {
            requests: Family::default(),
            request_seconds: seconds(),
            upstream_seconds: seconds(),
            upstream_bytes: Counter::default(),
            response_bytes: Counter::default(),
            fields_withheld: Family::default(),
            refusals: Family::default(),
            unauthenticated_refusals_suppressed: Counter::default(),
            rule_errors: Counter::default(),
            audit_write_seconds: seconds(),
            audit_failures: Counter::default(),
            audit_records: Gauge::default(),
            audit_fsyncs: Gauge::default(),
            audit_checkpoints: Gauge::default(),
            audit_checkpoint_failures: Gauge::default(),
            audit_commits: Gauge::default(),
            rules_generation: Family::default(),
            reloads: Family::default(),
            shared_limiter: SharedLimiter::default(),
            audit_ok: AtomicBool::new(true),
            audit_stats,
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "requests",
            "Requests by recipient, route template and status",
            metrics.requests.clone(),
        );
        r.register(
            "request_seconds",
            "Time from request to response",
            metrics.request_seconds.clone(),
        );
        r.register(
            "upstream_seconds",
            "Time of the upstream exchange",
            metrics.upstream_seconds.clone(),
        );
        r.register(
            "upstream_bytes",
            "Bytes read from upstream bodies",
            metrics.upstream_bytes.clone(),
        );
        r.register(
            "response_bytes",
            "Body bytes sent to recipients",
            metrics.response_bytes.clone(),
        );
        r.register(
            "fields_withheld",
            "Withheld field paths, by recipient type",
            metrics.fields_withheld.clone(),
        );
        r.register(
            "refusals",
            "Requests refused, by error code or policy reason",
            metrics.refusals.clone(),
        );
        r.register(
            "unauthenticated_refusals_suppressed",
            "Refusals before identity over their address's budget: answered, counted in a summary record instead of one each",
            metrics.unauthenticated_refusals_suppressed.clone(),
        );
        r.register(
            "rule_errors",
            "CEL evaluation errors (each one failed closed)",
            metrics.rule_errors.clone(),
        );
        r.register(
            "audit_write_seconds",
            "Time for an audit record to become durable",
            metrics.audit_write_seconds.clone(),
        );
        r.register(
            "audit_failures",
            "Audit appends that failed (answered 503)",
            metrics.audit_failures.clone(),
        );
        r.register(
            "audit_records",
            "Audit records made durable since start",
            metrics.audit_records.clone(),
        );
        r.register(
            "audit_fsyncs",
            "Audit fsyncs since start (records per fsync = records / fsyncs)",
            metrics.audit_fsyncs.clone(),
        );
        r.register(
            "audit_checkpoints",
            "Signed audit checkpoints written since start",
            metrics.audit_checkpoints.clone(),
        );
        r.register(
            "audit_checkpoint_failures",
            "Audit checkpoint writes that failed since start (records stayed durable; retried)",
            metrics.audit_checkpoint_failures.clone(),
        );
        r.register(
            "audit_commits",
            "Audit group commits since start, file fsyncs or PostgreSQL transactions (records per commit = records / commits)",
            metrics.audit_commits.clone(),
        );
        r.register(
            "rules_generation",
            "The rules in use (1 for the current generation)",
            metrics.rules_generation.clone(),
        );
        r.register(
            "rules_reloads",
            "Rules reloads by result",
            metrics.reloads.clone(),
        );
        r.register(
            "shared_limiter_errors",
            "Redis rate-limit calls that failed or timed out (each decided by the fallback)",
            metrics.shared_limiter.errors.clone(),
        );
        r.register(
            "shared_limiter_fallback_decisions",
            "Requests whose rate limit was decided without Redis (local share or 503)",
            metrics.shared_limiter.fallback_decisions.clone(),
        );
        r.register(
            "shared_limiter_fallback",
            "1 while rate limits are decided without Redis, 0 while Redis answers",
            metrics.shared_limiter.fallback_active.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// The last checkpoint write failed (and none has succeeded since); `/readyz` reads it.
    pub fn audit_checkpoint_failing(&self) -> bool {
        self.audit_stats.checkpoint_failing.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        self.audit_records
            .set(self.audit_stats.records_written.load(Ordering::Relaxed));
        let commits = self.audit_stats.batches.load(Ordering::Relaxed);
        self.audit_fsyncs.set(commits);
        self.audit_commits.set(commits);
        self.audit_checkpoints
            .set(self.audit_stats.checkpoints.load(Ordering::Relaxed));
        self.audit_checkpoint_failures
            .set(self.audit_stats.checkpoint_failures.load(Ordering::Relaxed));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    pub fn observe_audit(&self, took: Duration, ok: bool) {
        self.audit_write_seconds.observe(took.as_secs_f64());
        self.audit_ok.store(ok, Ordering::Relaxed);
        if !ok {
            self.audit_failures.inc();
        }
    }

    /// Marks `generation` as the rules in use.
    pub fn set_generation(&self, generation: &str) {
        self.rules_generation.clear();
        self.rules_generation
            .get_or_create(&GenerationLabels {
                generation: generation.to_string(),
            })
            .set(1);
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}
