//! What the `items` rules decided for each array element, for `explain`.
//!
//! [`decide`](super::decide) records each decision where it makes it, in `apply_items`, and
//! only when explaining: `serve` passes no recorder, so it pays nothing for this. A DPO then
//! sees, per element, whether it was kept, by which rule, and why, without the values the
//! rule read.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::super::{collect_subjects, Removed};
use super::{EvalError, Items};
use crate::path::{self, FieldPath, Segment};

/// What decided one element of an array an `items` rule filters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Element {
    /// The rule's `path`, with the index of each enclosing element written in
    /// (`[2].caution_markers`); `[]` names the body itself.
    pub path: String,
    /// The element's index in the array as upstream sent it; `None` when the value at `path`
    /// is not an array, which the rule cannot filter, so it is not sent at all.
    pub index: Option<usize>,
    /// Whether the `items` rules kept it; the allow list still decides which of its fields
    /// are sent, and the response as a whole may still be refused.
    pub kept: bool,
    /// `FILE:LINE` of the rule that decided: the one that dropped it, or the last that kept it.
    pub rule: String,
    /// That rule's `keep` expression.
    pub keep: String,
    /// The data subject the route's `subjects` name inside the element, or else the one of
    /// the record that holds the array; several are joined with `, `.
    pub subject: Option<String>,
    pub why: String,
}

/// The decisions of one `decide`, in the order the rules made them.
pub(super) struct Elements<'v> {
    subjects: &'v [FieldPath],
    body: &'v Value,
    list: Vec<Element>,
    /// Where each element already decided is in `list`, by address (the body is borrowed
    /// unchanged), so that a later rule that drops it replaces the decision of an earlier one
    /// that kept it.
    at: HashMap<*const Value, usize>,
}

/// One step down to an element: a key, or an index into an array.
#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

// === impl Elements ===

impl<'v> Elements<'v> {
    pub(super) fn new(subjects: &'v [FieldPath], body: &'v Value) -> Self {
        Elements {
            subjects,
            body,
            list: Vec::new(),
            at: HashMap::new(),
        }
    }

    /// Records what `rule` made of the element `index` of the array it filters, reached
    /// through the enclosing elements `trail`.
    pub(super) fn decided(
        &mut self,
        rule: &Items,
        trail: &[usize],
        (index, element): (usize, &Value),
        result: &Result<bool, EvalError>,
    ) {
        let why = match result {
            Ok(true) => "the keep condition held".to_owned(),
            Ok(false) => "the keep condition was false".to_owned(),
            Err(e) => format!("the keep condition could not be evaluated ({e})"),
        };
        let decision = self.element(rule, trail, Some(index), matches!(result, Ok(true)), why);
        match self.at.get(&std::ptr::from_ref(element)) {
            Some(&i) => self.list[i] = decision,
            None => {
                self.at.insert(std::ptr::from_ref(element), self.list.len());
                self.list.push(decision);
            }
        }
    }

    /// Records that the value `rule` filters, reached through `trail`, is not an array.
    pub(super) fn not_an_array(&mut self, rule: &Items, trail: &[usize]) {
        let why = "not an array, so the rule cannot filter it and it is not sent".to_owned();
        let decision = self.element(rule, trail, None, false, why);
        self.list.push(decision);
    }

    pub(super) fn into_list(self) -> Vec<Element> {
        self.list
    }

    fn element(
        &self,
        rule: &Items,
        trail: &[usize],
        index: Option<usize>,
        kept: bool,
        why: String,
    ) -> Element {
        // The root array has no name: `[]` alone names it.
        let root = rule.path.segments() == [Segment::Each];
        let mut trail = trail.iter();
        let mut steps: Vec<Step<'_>> = if root {
            Vec::new()
        } else {
            rule.path
                .segments()
                .iter()
                .map(|s| match s {
                    Segment::Key(k) => Step::Key(k),
                    Segment::Each => Step::Index(trail.next().copied().unwrap_or_default()),
                })
                .collect()
        };
        let path = if root {
            "[]".to_owned()
        } else {
            written(&steps)
        };
        steps.extend(index.map(Step::Index));
        Element {
            path,
            index,
            kept,
            rule: rule
                .site
                .strip_suffix(" items")
                .unwrap_or(&rule.site)
                .to_owned(),
            keep: rule.keep.source().to_owned(),
            subject: self.subject(&steps),
            why,
        }
    }

    /// The subjects of the element at `steps`: a `subjects` path that goes into it names its
    /// own; one that leaves the way to it before, without passing through another array,
    /// names the record that holds it. One that passes through another array names other
    /// elements' subjects, not this one's.
    fn subject(&self, steps: &[Step<'_>]) -> Option<String> {
        let nothing = Removed::default();
        let mut ids = BTreeSet::new();
        for path in self.subjects {
            let mut value = self.body;
            let mut segments = path.segments();
            let mut steps = steps;
            loop {
                let next = match (segments.split_first(), steps.split_first()) {
                    (Some((Segment::Key(k), rest)), Some((Step::Key(s), more))) if k == s => {
                        value.get(k).map(|v| (v, rest, more))
                    }
                    (Some((Segment::Each, rest)), Some((Step::Index(i), more))) => {
                        value.get(i).map(|v| (v, rest, more))
                    }
                    (_, None) => {
                        collect_subjects(segments, value, &nothing, &mut ids);
                        None
                    }
                    _ => {
                        if !segments.contains(&Segment::Each) {
                            collect_subjects(segments, value, &nothing, &mut ids);
                        }
                        None
                    }
                };
                let Some((v, rest, more)) = next else { break };
                (value, segments, steps) = (v, rest, more);
            }
        }
        (!ids.is_empty()).then(|| ids.into_iter().collect::<Vec<_>>().join(", "))
    }
}

/// `steps` in rule form, indices written in: `tenant.caution_markers`, `[2].caution_markers`.
fn written(steps: &[Step<'_>]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Key(k) if path::is_plain_key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Key(k) => {
                out.push('[');
                out.push_str(&Value::String((*k).to_owned()).to_string());
                out.push(']');
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}
