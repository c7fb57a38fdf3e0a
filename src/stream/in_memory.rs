//! The streamed filter over a body held whole, for differential testing.
//!
//! [`filter_in_memory`] runs what a streamed response runs (the splitter, batches of the same
//! sizes, and [`Batch::filter`], which is the element filter) on the calling thread, without
//! the connection, the ledger or the filter threads. The fuzz target `stream_export` and the
//! tests hold its answer to `json::parse_strict` and `filter::decide` of the same bytes: the
//! same array sent, the same paths and subjects recorded, the same bodies refused.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use super::batch::{Batch, BATCH_BYTES, BATCH_ELEMENTS};
use super::Requested;
use crate::filter::conditions::PerElement;
use crate::filter::project::Seen;
use crate::filter::Outcome;
use crate::json::split;
use crate::{filter, json};

/// What the streamed path makes of one body: the array it sends, and the union of what its
/// segments' audit records say.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct InMemory {
    /// The array as the recipient receives it, `[` to `]`.
    pub body: Vec<u8>,
    pub disclosed: BTreeSet<String>,
    pub withheld: BTreeSet<String>,
    pub scrubbed: BTreeSet<String>,
    pub subjects: BTreeSet<String>,
    /// The reasons of the `when`s that held.
    pub reasons: Vec<String>,
    pub rule_errors: BTreeSet<String>,
}

/// Filters `body` for `job` as a streamed response would be; `max_depth` is the limit for the
/// whole body (as `json::parse_strict` takes it), `max_element` the longest element.
///
/// # Errors
///
/// What aborts a streamed response: a body that is not one JSON array, or the first element
/// refused (malformed, a duplicate key, too deep or too long).
pub fn filter_in_memory(
    job: &Arc<Requested>,
    body: &[u8],
    max_depth: usize,
    max_element: usize,
) -> Result<InMemory, split::Error> {
    let route = job.granted_route().ok_or(split::Error::NotArray)?;
    let request = job.filter_request();
    let mut made = InMemory::default();
    let (mask, reasons) = PerElement::new(&route.plan, &request).whens(&mut made.rule_errors);
    made.reasons = reasons;
    let mut splitter = split::Splitter::new(max_depth, max_element);
    let depth = splitter.element_depth();

    let mut seen = Seen::default();
    made.body.push(b'[');
    let mut filter = |batch: &mut Batch| -> Result<(), split::Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let done = batch.filter(job, mask, depth)?;
        batch.clear();
        if !done.out.is_empty() {
            if made.body.len() > 1 {
                made.body.push(b',');
            }
            made.body.extend_from_slice(&done.out);
        }
        seen.merge(done.seen);
        made.rule_errors.extend(done.rule_errors);
        Ok(())
    };
    let mut batch = Batch::default();
    splitter.feed_bytes(body, |element| {
        batch.push(element);
        if batch.len() >= BATCH_BYTES || batch.elements() >= BATCH_ELEMENTS {
            filter(&mut batch)?;
        }
        Ok::<_, split::Error>(())
    })?;
    splitter.finish()?;
    filter(&mut batch)?;
    made.body.push(b']');
    made.disclosed = seen.disclosed.into_sorted();
    made.withheld = seen.withheld.into_sorted();
    made.scrubbed = seen.scrubbed.into_sorted();
    made.subjects = seen.subjects;
    Ok(made)
}

/// Where the streamed path and the buffered one (`json::parse_strict`, then `filter::decide`
/// on the whole array) disagree about `body`; `None` when they agree.
///
/// They agree when both refuse it, or when the streamed path sends exactly the bytes
/// serde_json writes for `decide`'s body and records the same disclosed, withheld and scrubbed paths,
/// subjects, reasons and rule errors. A body that parses but is not an array must be refused
/// by the streamed path (the gateway answers 502 for it).
pub fn disagreement(job: &Arc<Requested>, body: &[u8], max_depth: usize) -> Option<String> {
    let streamed = filter_in_memory(job, body, max_depth, usize::MAX);
    let parsed = match json::parse_strict(body, max_depth) {
        Ok(Value::Array(items)) => Value::Array(items),
        Ok(_) | Err(_) => {
            return streamed
                .ok()
                .map(|_| "the streamed path sent a body the buffered path refuses".to_owned());
        }
    };
    let Some(route) = job.granted_route() else {
        return Some("the job names no granted route".to_owned());
    };
    let request = job.filter_request();
    let outcome = filter::decide(&route.plan, &request, &parsed, false);
    difference(&streamed, &outcome)
}

/// Where `streamed`, what the streamed path made of an array, and `outcome`, what
/// `filter::decide` made of the same array, disagree; `None` when they agree.
pub fn difference(streamed: &Result<InMemory, split::Error>, outcome: &Outcome) -> Option<String> {
    let streamed = match (streamed, outcome.unidentified) {
        // A row that names no data subject: refused both ways.
        (Err(split::Error::Unidentified), true) => return None,
        (Ok(_), true) => {
            return Some(
                "the streamed path sent a body decide refuses: a row names no subject".to_owned(),
            )
        }
        (Ok(made), false) => made,
        (Err(e), _) => {
            return Some(format!(
                "the streamed path refused a body decide takes: {e}"
            ))
        }
    };
    let Some(sent) = &outcome.body else {
        return Some("decide refused a streamable route's body".to_owned());
    };
    let buffered = InMemory {
        body: serde_json::to_vec(sent).unwrap_or_default(),
        disclosed: outcome.disclosed.clone(),
        withheld: outcome.withheld.clone(),
        scrubbed: outcome.scrubbed.clone(),
        subjects: outcome.subjects.iter().cloned().collect(),
        reasons: outcome.reasons.clone(),
        rule_errors: outcome.rule_errors.iter().cloned().collect(),
    };
    first_difference(streamed, &buffered)
}

/// The first field in which `streamed` and `buffered` differ, both values shown.
fn first_difference(streamed: &InMemory, buffered: &InMemory) -> Option<String> {
    if streamed.body != buffered.body {
        return Some(format!(
            "body: streamed {}, buffered {}",
            String::from_utf8_lossy(&streamed.body),
            String::from_utf8_lossy(&buffered.body)
        ));
    }
    let sets = [
        ("disclosed", &streamed.disclosed, &buffered.disclosed),
        ("withheld", &streamed.withheld, &buffered.withheld),
        ("scrubbed", &streamed.scrubbed, &buffered.scrubbed),
        ("subjects", &streamed.subjects, &buffered.subjects),
        ("rule_errors", &streamed.rule_errors, &buffered.rule_errors),
    ];
    for (name, a, b) in sets {
        if a != b {
            return Some(format!("{name}: streamed {a:?}, buffered {b:?}"));
        }
    }
    (streamed.reasons != buffered.reasons).then(|| {
        format!(
            "reasons: streamed {:?}, buffered {:?}",
            streamed.reasons, buffered.reasons
        )
    })
}

#[cfg(test)]
mod tests;
