//! Writes: what a recipient may send on a `POST`, `PUT` or `PATCH` route, decided before
//! anything goes upstream.
//!
//! `accept` lists the request-body paths the recipient may send, in the allow-list's syntax;
//! [`received`] walks the recipient's parsed body and names the first path it holds that no
//! entry accepts, so the gateway refuses the write (400 `field_not_accepted`) instead of
//! passing on a field the upstream would act on. `[[route.require]]` conditions then read
//! `request` (with `request.body`), `recipient` and `lookup.<name>`; [`require`] refuses the
//! write (403, as a `refuse` rule) when one is false or cannot be evaluated. Both are pure:
//! `serve`, `explain` and the policy tests all call them.

use std::collections::BTreeSet;

use serde_json::Value;

use super::cel::{Expr, Reads, Uses};
use super::conditions::{bind, Refusal, Request};
use super::{Plan, Removed};
use crate::path::{render, FieldPath, Segment};

/// The write rules of one route: what the recipient may send, and what must hold first.
#[derive(Debug, Default)]
pub struct Write {
    pub accept: Vec<FieldPath>,
    pub require: Vec<Require>,
}

/// One `[[route.require]]`: a condition that must be true before the write is forwarded.
#[derive(Debug)]
pub struct Require {
    pub condition: Expr,
    /// Why, in plain words: the audit records it when the write is refused.
    pub reason: String,
    /// `FILE:LINE require`, for `explain` and the register.
    pub site: String,
}

/// Why a request body was not accepted. The path is in rule form, told to the recipient
/// who sent it; a value is never named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAccepted {
    #[error("the request body field \"{0}\" is not accepted on this route")]
    Field(String),
    /// An object or array where the accepted paths expect the other, or a plain value
    /// where they go deeper.
    #[error("the request body at \"{0}\" is not shaped as the accepted paths expect")]
    Shape(String),
}

/// The accepted paths `body` holds, sorted in rule form, or the first path it holds that no
/// `accept` entry covers. An entry accepts everything under it, as an allow entry does.
///
/// # Errors
///
/// [`NotAccepted`] naming the path in rule form (`"<body>"` for the root).
pub fn received(accept: &[FieldPath], body: &Value) -> Result<BTreeSet<String>, NotAccepted> {
    let mut received = BTreeSet::new();
    let mut at = Vec::new();
    walk(accept, body, &mut at, &mut received)?;
    Ok(received)
}

fn walk(
    accept: &[FieldPath],
    value: &Value,
    at: &mut Vec<Segment>,
    received: &mut BTreeSet<String>,
) -> Result<(), NotAccepted> {
    let shape = |at: &[Segment]| {
        NotAccepted::Shape(if at.is_empty() {
            "<body>".to_owned()
        } else {
            render(at)
        })
    };
    // Whether an accepted path goes on from `at` with a key (an object) or `[]` (an array).
    let goes_on = |object: bool| {
        accept.iter().any(|p| {
            p.segments().starts_with(at)
                && p.segments()
                    .get(at.len())
                    .is_some_and(|s| matches!(s, Segment::Key(_)) == object)
        })
    };
    match value {
        Value::Object(_) if !goes_on(true) => Err(shape(at)),
        Value::Array(_) if !goes_on(false) => Err(shape(at)),
        Value::Object(map) => {
            for (key, child) in map {
                at.push(Segment::Key(key.clone()));
                step(accept, child, at, received)?;
                at.pop();
            }
            // An empty object where keys are expected sends nothing.
            Ok(())
        }
        Value::Array(items) => {
            at.push(Segment::Each);
            for item in items {
                step(accept, item, at, received)?;
            }
            at.pop();
            Ok(())
        }
        _ => Err(shape(at)),
    }
}

/// `value` at `at`: accepted whole by an entry naming `at`, walked into when an entry goes
/// deeper, else not accepted.
fn step(
    accept: &[FieldPath],
    value: &Value,
    at: &mut Vec<Segment>,
    received: &mut BTreeSet<String>,
) -> Result<(), NotAccepted> {
    if let Some(whole) = accept.iter().find(|p| p.segments() == at.as_slice()) {
        received.insert(whole.to_string());
        return Ok(());
    }
    if accept.iter().any(|p| p.segments().starts_with(at)) {
        return walk(accept, value, at, received);
    }
    Err(NotAccepted::Field(render(at)))
}

/// Evaluates every `require` of `plan` for `request` (whose `body` is the recipient's and
/// whose lookups ran before forwarding): the first that is false or errs refuses, with 403.
///
/// # Errors
///
/// The [`Refusal`] to answer with, its reason the rule's.
pub fn require(plan: &Plan, request: &Request<'_>) -> Result<(), Refusal> {
    let Some(write) = plan.write() else {
        return Ok(());
    };
    if write.require.is_empty() {
        return Ok(());
    }
    let uses = (write.require.iter()).fold(Uses::default(), |u, r| u.union(r.condition.uses()));
    let mut scope = plan.conditions().functions().root().new_inner_scope();
    // The loader refuses a require reading the upstream `body`: there is none yet.
    static NOTHING: Value = Value::Null;
    bind(
        &mut scope,
        uses,
        &Reads::Nothing,
        request,
        (&NOTHING, &Removed::default()),
    );
    for rule in &write.require {
        let held = rule.condition.eval_bool(&scope);
        if !matches!(held, Ok(true)) {
            return Err(Refusal {
                reason: rule.reason.clone(),
                erred: held.is_err(),
                status: 403,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests;
