//! What a rules change does, read from the rules themselves: every grant, condition, refusal,
//! route, recipient, identity and rate limit of the old and the new policy, compared.
//!
//! Each policy is flattened into statements ("civic-surveys may call GET /tenants",
//! "research-vendor receives [].name on GET /tenants"), each marked with the direction its
//! presence moves disclosure: a grant widens it, a refusal or an item filter narrows it. A
//! statement in one policy and not the other is a change, and a change widens disclosure when
//! a widening statement appears or a narrowing one disappears. A condition edited in place is
//! therefore an old rule gone and a new one come: reviewed as a widening, since whether the
//! new text holds more often is not something a comparison of texts can know.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Policy, Rate, Recipient, RecipientType, Route};
use crate::routes::Takes;

/// One difference between two policies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// Whether it may disclose more than before: a reviewer must accept it.
    pub widens: bool,
    /// The change in words, e.g. `police receives ni_number on GET /tenants/{tenant_id}: added`.
    pub text: String,
}

/// What a statement's presence does to disclosure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Grants something: adding it widens.
    Grants,
    /// Holds something back: removing it widens.
    Holds,
    /// Describes (a purpose, a name): shown, never a widening by itself.
    Describes,
}

/// Every difference between `old` and `new`, sorted, each once.
pub fn between(old: &Policy, new: &Policy) -> Vec<Change> {
    let (before, after) = (statements(old), statements(new));
    let mut changes = Vec::new();
    for (text, &direction) in &after {
        if !before.contains_key(text) {
            changes.push(Change {
                widens: direction == Direction::Grants,
                text: format!("{text}: added"),
            });
        }
    }
    for (text, &direction) in &before {
        if !after.contains_key(text) {
            changes.push(Change {
                widens: direction == Direction::Holds,
                text: format!("{text}: removed"),
            });
        }
    }
    changes.extend(rate_changes(old, new));
    changes.sort();
    changes.dedup();
    changes
}

/// The policy as statements, each with its direction.
fn statements(policy: &Policy) -> BTreeMap<String, Direction> {
    let mut out = BTreeMap::new();
    for kind in policy.types() {
        type_statements(kind, &mut out);
    }
    for recipient in policy.recipients() {
        recipient_statements(recipient, &mut out);
    }
    out
}

fn type_statements(kind: &RecipientType, out: &mut BTreeMap<String, Direction>) {
    let t = &kind.name;
    out.insert(
        format!("{t}: purpose {:?}", kind.purpose),
        Direction::Describes,
    );
    out.insert(
        format!("{t}: lawful basis {}", kind.lawful_basis.as_str()),
        Direction::Describes,
    );
    for route in &kind.routes {
        route_statements(t, route, out);
    }
}

fn route_statements(t: &str, route: &Route, out: &mut BTreeMap<String, Direction>) {
    let on = format!("{} {}", route.method, route.template);
    let mut put = |text: String, direction| {
        out.insert(text, direction);
    };
    put(format!("{t} may call {on}"), Direction::Grants);
    for (name, takes) in &route.query {
        let repeated = match takes {
            Takes::Once => "",
            Takes::Repeated => " (repeatable)",
        };
        put(
            format!("{t} may send the query parameter {name}{repeated} on {on}"),
            Direction::Grants,
        );
    }
    // A binding scopes the route to the caller ("my jobs"): one gone lets a recipient ask for
    // anyone's.
    for binding in route.bind.iter() {
        put(
            format!(
                "{t} on {on} has {} set by the gateway to {}",
                binding.param,
                binding.value.source()
            ),
            Direction::Holds,
        );
    }
    let plan = &route.plan;
    if let Some(max) = plan.max_items() {
        put(
            format!("{t} on {on} is answered at most {max} items at a time"),
            Direction::Holds,
        );
    }
    for path in plan.allow() {
        put(format!("{t} receives {path} on {on}"), Direction::Grants);
    }
    // A data subject no longer recorded is a disclosure a subject access request would miss.
    for path in plan.subjects() {
        put(
            format!("{t} on {on} records {path} as the data subject"),
            Direction::Holds,
        );
    }
    if plan.subjects_optional() {
        put(
            format!("{t} on {on} may disclose without naming a data subject"),
            Direction::Grants,
        );
    }
    // What the rules may read beside the response: never disclosed, but a new source of facts.
    for lookup in plan.lookups() {
        put(
            format!(
                "{t} on {on} looks up {} at {}",
                lookup.name(),
                lookup.template()
            ),
            Direction::Describes,
        );
    }
    // Scrubbing holds back what free text would otherwise carry: one pattern a statement, so
    // that a pattern dropped from a path is a widening of its own.
    for (path, patterns) in plan.scrubs().paths() {
        for pattern in patterns.iter() {
            put(
                format!("{t} on {on} scrubs {} from {path}", pattern.name()),
                Direction::Holds,
            );
        }
    }
    let c = plan.conditions();
    for w in c.when() {
        for path in &w.allow {
            put(
                format!(
                    "{t} receives {path} on {on} when {} ({:?})",
                    w.condition.source(),
                    w.reason
                ),
                Direction::Grants,
            );
        }
    }
    for d in c.derive() {
        put(
            format!("{t} receives {} = {} on {on}", d.field, d.value.source()),
            Direction::Grants,
        );
    }
    for i in c.items() {
        let mut text = format!(
            "{t} on {on} keeps only the {} elements where {}",
            i.path,
            i.keep.source()
        );
        if i.keep_empty {
            text.push_str(" (an emptied list is sent as [])");
        }
        put(text, Direction::Holds);
    }
    // A write: each accepted path lets the recipient change a record (an added one widens);
    // each require holds a write back.
    if let Some(write) = plan.write() {
        for path in &write.accept {
            put(format!("{t} may write {path} on {on}"), Direction::Grants);
        }
        for r in &write.require {
            put(
                format!(
                    "{t} on {on} writes only when {} ({:?})",
                    r.condition.source(),
                    r.reason
                ),
                Direction::Holds,
            );
        }
    }
    if let Some(r) = c.refuse() {
        put(
            format!(
                "{t} on {on} is refused ({}) when {} ({:?})",
                r.status,
                r.condition.source(),
                r.reason
            ),
            Direction::Holds,
        );
    }
}

fn recipient_statements(r: &Recipient, out: &mut BTreeMap<String, Direction>) {
    let id = &r.id;
    let mut put = |text: String, direction| {
        out.insert(text, direction);
    };
    put(
        format!("recipient {id} is of type {}", r.kind.name),
        Direction::Grants,
    );
    put(
        format!("recipient {id} is named {:?}", r.name),
        Direction::Describes,
    );
    // An attribute may scope what the recipient is given (a binding, a condition): a new or
    // changed value is reviewed as a widening.
    for (name, value) in &r.attributes {
        put(
            format!("recipient {id} has the attribute {name} = {value:?}"),
            Direction::Grants,
        );
    }
    // A new credential is a new way in, whoever holds it.
    if let Some(hash) = &r.api_key_sha256 {
        put(
            format!(
                "recipient {id} is identified by the API key whose SHA-256 begins {}",
                short(hash)
            ),
            Direction::Grants,
        );
    }
    if let Some(hash) = &r.cert_sha256 {
        put(
            format!(
                "recipient {id} is identified by the certificate whose SHA-256 begins {}",
                short(hash)
            ),
            Direction::Grants,
        );
    }
    if let Some(san) = &r.cert_san {
        put(
            format!("recipient {id} is identified by a certificate for {san}"),
            Direction::Grants,
        );
    }
}

/// The first 8 bytes in hex: enough to tell keys apart in a review.
fn short(hash: &[u8; 32]) -> String {
    hash[..8].iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Rate limits and concurrency, compared by size: a higher limit (or none) widens how much
/// can be taken in an hour; a lower one narrows it.
fn rate_changes(old: &Policy, new: &Policy) -> Vec<Change> {
    let mut limits: BTreeMap<String, (Option<Limit>, Option<Limit>)> = BTreeMap::new();
    let mut note = |policy: &Policy, after: bool| {
        for kind in policy.types() {
            let slots = [
                (
                    format!("{}: rate limit", kind.name),
                    kind.rate_limit.map(Limit::Rate),
                ),
                (
                    format!("{}: max_in_flight", kind.name),
                    kind.max_in_flight.map(Limit::InFlight),
                ),
            ];
            for (key, limit) in slots {
                let entry = limits.entry(key).or_default();
                *(if after { &mut entry.1 } else { &mut entry.0 }) = limit;
            }
        }
        for r in policy.recipients() {
            let entry = limits
                .entry(format!("recipient {}: rate limit", r.id))
                .or_default();
            *(if after { &mut entry.1 } else { &mut entry.0 }) = r.rate_limit.map(Limit::Rate);
        }
    };
    note(old, false);
    note(new, true);
    limits
        .into_iter()
        .filter(|(_, (before, after))| before != after)
        .map(|(what, (before, after))| {
            let widens = match (before, after) {
                (_, None) => true,
                (None, Some(_)) => false,
                (Some(b), Some(a)) => a.size() > b.size(),
            };
            let show = |l: Option<Limit>| l.map_or_else(|| "none".to_owned(), |l| l.to_string());
            Change {
                widens,
                text: format!("{what} {} becomes {}", show(before), show(after)),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    Rate(Rate),
    InFlight(u32),
}

impl Limit {
    /// Comparable sizes: requests an hour, or requests at once.
    fn size(self) -> f64 {
        match self {
            Limit::Rate(r) => r.per_hour(),
            Limit::InFlight(n) => f64::from(n),
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Rate(r) => r.fmt(f),
            Limit::InFlight(n) => write!(f, "{n} at once"),
        }
    }
}

#[cfg(test)]
mod tests;
