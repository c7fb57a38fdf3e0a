//! The lookups of a granted route: GETs of further upstream records, after the main response
//! and before the filter, whose answers the rules read as `lookup.<name>`.
//!
//! Each goes through the same [`Upstream`] client and checks as the forwarded request: the
//! gateway's own credential, never a header of the recipient's, and the same status, content
//! type, size and strict-JSON checks. They run together, within `upstream.timeout` overall.
//! A lookup that fails is not an error of the request: it is absent from [`Lookups`], so
//! every rule reading it errs and fails closed. What a lookup answered is never logged or
//! recorded; the record lists the templates of the lookups made.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use serde_json::Value;

use crate::filter::lookup::Lookup;
use crate::filter::Lookups;
use crate::upstream::{Forward, Payload, Upstream};

/// What the lookups of one request found: the answers, and the templates of those requested
/// upstream (a lookup whose placeholder failed is not), sorted, for the record.
#[derive(Default)]
pub(super) struct Looked {
    pub(super) lookups: Lookups,
    pub(super) made: Vec<String>,
}

/// Fetches each lookup whose target could be filled in, together.
pub(super) async fn fetch(
    upstream: &Upstream,
    targets: Vec<(&Lookup, Result<String, String>)>,
    request_id: &str,
) -> Looked {
    let mut looked = Looked::default();
    let mut pending = Vec::new();
    for (lookup, target) in targets {
        match target {
            Ok(target) => {
                looked.made.push(lookup.template().to_owned());
                pending.push((lookup.name(), target));
            }
            Err(why) => failed(&mut looked.lookups, request_id, lookup.name(), why),
        }
    }
    looked.made.sort();
    let fetches = pending
        .iter()
        .map(|(_, target)| one(upstream, target, request_id));
    let timeout = upstream.timeout();
    match tokio::time::timeout(timeout, join_all(fetches.collect())).await {
        Ok(answers) => {
            for ((name, _), answer) in pending.iter().zip(answers) {
                match answer {
                    Ok(value) => looked.lookups.insert(name, Ok(value)),
                    Err(why) => failed(&mut looked.lookups, request_id, name, why),
                }
            }
        }
        Err(_) => {
            for (name, _) in &pending {
                let why = format!("the lookups did not finish within {timeout:?}");
                failed(&mut looked.lookups, request_id, name, why);
            }
        }
    }
    looked
}

/// One lookup's GET: the parsed answer, or why there is none (without values).
async fn one(upstream: &Upstream, target: &str, request_id: &str) -> Result<Value, String> {
    let forward = Forward {
        method: http::Method::GET,
        target: target.to_owned(),
        request_id: request_id.to_owned(),
        headers: http::HeaderMap::new(),
        body: Bytes::new(),
    };
    match upstream.fetch(forward, false).await {
        Ok(fetched) => match fetched.body {
            Some(Payload::Parsed(value)) => Ok(value),
            _ => Err("the upstream answered with no body".into()),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// Records a failed lookup, and logs its name and why (never a value: the reasons are the
/// rule's own text and the upstream's status).
fn failed(lookups: &mut Lookups, request_id: &str, name: &str, why: String) {
    tracing::warn!(request_id, lookup = name, why = %why, "lookup failed");
    lookups.insert(name, Err(why));
}

/// Runs `futures` together and returns their outputs in order: the few lookups of a route,
/// without spawning tasks (they borrow the request).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
