//! The request's record: started before anyone is identified, then filled from what each
//! phase returns, and audited whether the request was answered or refused.

use std::collections::BTreeSet;

use http::Request;
use hyper::body::Incoming;
use serde_json::Value;

use crate::audit::{self, Record};
use crate::rules::{Policy, Recipient};

/// What the record says of a body the filter decided, whether or not it is sent.
pub(super) struct Seen {
    pub(super) subjects: Vec<String>,
    pub(super) reasons: Vec<String>,
    pub(super) disclosed: Vec<String>,
    pub(super) withheld: Vec<String>,
    /// Scrub paths where free text had something removed.
    pub(super) scrubbed: BTreeSet<String>,
    /// `FILE:LINE kind` of each rule that could not be evaluated; sites, never values.
    pub(super) rule_errors: Vec<String>,
}

// === impl Seen ===

impl Seen {
    /// Puts what the filter saw in the record; rule sites, never values.
    pub(super) fn note(self, record: &mut Record) {
        record.subjects = self.subjects;
        record.reasons = self.reasons;
        record.disclosed = self.disclosed;
        record.withheld = self.withheld;
        record.set_scrubbed(self.scrubbed);
        if !self.rule_errors.is_empty() {
            record
                .extra
                .insert("rule_errors".into(), Value::from(self.rule_errors));
        }
    }
}

/// The record a request starts with, before anyone is identified: its method, its path as
/// received (`decide` puts the decoded one in its place once routing has decoded it), and
/// the generation of the rules it is decided under with the digest of their snapshot, which
/// describes the decision once those rules are gone.
pub(super) fn start(request: &Request<Incoming>, policy: &Policy) -> Record {
    let mut record = blank(new_request_id(), 0, serde_json::Map::new());
    // Bounded: these are written before anyone is identified.
    record.set_method(request.method().as_str());
    record.set_path(request.uri().path());
    record
        .extra
        .insert("rules_generation".into(), Value::from(policy.generation()));
    record.extra.insert(
        audit::RULES_SNAPSHOT.into(),
        Value::from(policy.snapshot().digest.as_str()),
    );
    record
}

/// A record that knows nothing yet: a request's before its phases, or a summary's.
pub(super) fn blank(
    request_id: String,
    status: u16,
    extra: serde_json::Map<String, Value>,
) -> Record {
    Record {
        ts: audit::now_rfc3339(),
        request_id,
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
    }
}

pub(super) fn note_recipient(record: &mut Record, recipient: &Recipient) {
    record.recipient = Some(recipient.id.clone());
    record.recipient_type = Some(recipient.kind.name.clone());
    record.purpose = Some(recipient.kind.purpose.clone());
    record.lawful_basis = Some(recipient.kind.lawful_basis.to_string());
}

/// 128 random bits as hex; falls back to time and a counter if the OS source fails, since a
/// request id must never stop a request.
pub(super) fn new_request_id() -> String {
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
