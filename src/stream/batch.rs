//! Filtering a streamed response's elements in batches, off the async runtime.
//!
//! Filtering is the whole cost of a large export, and it is CPU work: done inline in the
//! response's task it used one core while the other idled, and held a runtime worker for
//! as long as each frame took. The splitter (cheap, and sequential by nature) stays in the
//! task; it gathers elements into a [`Batch`] of about [`BATCH_BYTES`], which
//! [`Batch::filter`] filters on a blocking thread while the task reads on. The results are
//! merged in the order the batches were made, so the answer and its audit records are the
//! same as filtering one element after another.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use super::Requested;
use crate::filter;
use crate::filter::conditions::PerElement;
use crate::filter::project::{Projector, Seen, Verdict};
use crate::json;
use crate::json::split;

/// Elements are handed to a filter thread this many bytes at a time: several hundred export
/// rows, so handing over costs nothing next to filtering, and little held at once.
pub const BATCH_BYTES: usize = 256 * 1024;

/// At most half a segment's elements per batch, so the two threads share a segment.
pub const BATCH_ELEMENTS: usize = super::SEGMENT_ELEMENTS / 2;

/// Elements split out of the body, waiting to be filtered together.
#[derive(Default)]
pub struct Batch {
    bytes: Vec<u8>,
    /// Where each element ends in `bytes`.
    ends: Vec<usize>,
}

/// What filtering one batch gave: the elements sent (comma-separated, no brackets) and what
/// the segment's record must say of them.
#[derive(Default)]
pub struct Filtered {
    pub out: Vec<u8>,
    pub elements: usize,
    pub sent: usize,
    pub seen: Seen,
    pub rule_errors: BTreeSet<String>,
}

// === impl Batch ===

impl Batch {
    /// Adds one element's bytes (as the splitter found them).
    pub fn push(&mut self, element: &[u8]) {
        self.bytes.extend_from_slice(element);
        self.ends.push(self.bytes.len());
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn elements(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// Filters every element for `job`, with the allow tree of the `when`s in `mask`, and
    /// each element at most `depth` deep.
    ///
    /// # Errors
    ///
    /// The first element refused (malformed, duplicate keys, too deep...): then nothing of
    /// the batch may be sent.
    pub fn filter(
        &self,
        job: &Arc<Requested>,
        mask: u64,
        depth: usize,
    ) -> Result<Filtered, split::Error> {
        let route = job.granted_route().ok_or(split::Error::NotArray)?;
        let request = job.filter_request();
        let rules = PerElement::new(&route.plan, &request);
        let mut projector = Projector::new(&route.plan, rules.tree(mask), depth);
        let mut done = Filtered::default();
        let mut start = 0;
        for &end in &self.ends {
            let bytes = &self.bytes[start..end];
            start = end;
            done.elements += 1;
            let verdict = match projector.as_mut() {
                Some(p) => p.element(bytes, &rules, &mut done.seen, &mut done.rule_errors)?,
                None => Verdict::NotAnObject,
            };
            match verdict {
                Verdict::Sent(out) => done.push(out),
                Verdict::Dropped => {}
                Verdict::Unidentified => return Err(split::Error::Unidentified),
                // No projector for this route, or not an object: the general path.
                Verdict::NotAnObject => {
                    let element = json::parse_strict(bytes, depth)?;
                    done.decide(route, &request, element)?;
                }
            }
        }
        Ok(done)
    }
}

// === impl Filtered ===

impl Filtered {
    fn push(&mut self, element: &[u8]) {
        if self.sent > 0 {
            self.out.push(b',');
        }
        self.out.extend_from_slice(element);
        self.sent += 1;
    }

    /// Filters one element exactly as the buffered path filters it inside the array.
    fn decide(
        &mut self,
        route: &crate::rules::Route,
        request: &filter::Request<'_>,
        element: Value,
    ) -> Result<(), split::Error> {
        let outcome = filter::decide(&route.plan, request, &Value::Array(vec![element]), false);
        if outcome.unidentified {
            return Err(split::Error::Unidentified);
        }
        self.seen.subjects.extend(outcome.subjects);
        for path in &outcome.disclosed {
            self.seen.disclosed.insert(path);
        }
        for path in &outcome.withheld {
            self.seen.withheld.insert(path);
        }
        for path in &outcome.scrubbed {
            self.seen.scrubbed.insert(path);
        }
        self.rule_errors.extend(outcome.rule_errors);
        // `shape` excludes refuse rules, so a body always comes back; refuse rather than guess.
        let Some(Value::Array(items)) = outcome.body else {
            return Err(split::Error::NotArray);
        };
        for item in items {
            let bytes = serde_json::to_vec(&item).map_err(|_| split::Error::NotArray)?;
            self.push(&bytes);
        }
        Ok(())
    }
}
