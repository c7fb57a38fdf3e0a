//! Upstream bytes → strict parse → `filter::decide` on the repairs-contractor job route.
//!
//! Asserts the disclosure invariant: every leaf of the body sent lies under a grant of the
//! request (the allow list, the derived field, and the `when` allow list only when its
//! condition holds), a refused outcome carries no body, the refusal fires when the body says
//! so, a derived field carries only what the derivation yields, and `explain` previews exactly
//! the body that `serve` sends.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use need_to_know::filter;
use need_to_know::json;
use need_to_know::path::{self, FieldPath, Segment};
use serde_json::Value;

fn paths(list: &[&str]) -> Vec<FieldPath> {
    list.iter()
        .map(|p| FieldPath::parse(p).expect("fixed path"))
        .collect()
}

/// Every leaf of `value` (scalars, empty arrays, empty objects) with its path, `[]` for
/// array elements. The root itself is not a field and is never reported.
fn leaves(value: &Value, at: &mut Vec<Segment>, out: &mut Vec<(Vec<Segment>, bool)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                at.push(Segment::Key(k.clone()));
                leaves(v, at, out);
                at.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => {
            at.push(Segment::Each);
            for v in items {
                leaves(v, at, out);
            }
            at.pop();
        }
        other => {
            if !at.is_empty() {
                let empty_container = matches!(other, Value::Object(_) | Value::Array(_));
                out.push((at.clone(), empty_container));
            }
        }
    }
}

/// A scalar must be under a grant; an empty container may also be structure on the way to
/// one (a traversed `tenant` whose granted keys were absent is sent as `{}`).
fn granted(leaf: &[Segment], empty_container: bool, grants: &[FieldPath]) -> bool {
    grants.iter().any(|g| {
        leaf.starts_with(g.segments()) || (empty_container && g.segments().starts_with(leaf))
    })
}

fn when_holds(body: &Value) -> bool {
    body.get("contractor_id") == Some(&Value::String("acme-repairs".into()))
        && matches!(body.get("status"), Some(Value::String(s)) if s == "scheduled" || s == "in_progress")
}

fn refuse_holds(body: &Value) -> bool {
    matches!(body.get("sharing_restrictions"), Some(Value::Array(a)) if a.contains(&Value::String("repairs".into())))
}

const AGE_BANDS: &[&str] = &[
    "under 18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+",
];

fuzz_target!(|data: &[u8]| {
    let Ok(upstream) = json::parse_strict(data, json::DEFAULT_MAX_DEPTH) else {
        return;
    };
    let policy = common::policy();
    let recipient = policy.recipient("acme-repairs").expect("fixed recipient");
    let route = &recipient.kind.routes[0];
    let params = common::job_params();
    let request = common::job_request(&params, &[]);
    let out = filter::decide(&route.plan, &request, &upstream, false);
    let explained = filter::decide(&route.plan, &request, &upstream, true);
    assert_eq!(
        out.body, explained.body,
        "explain previews a different body"
    );
    assert_eq!(
        out.disclosed, explained.disclosed,
        "explain previews different disclosed paths"
    );

    if out.refusal.is_some() {
        assert!(out.body.is_none(), "refused outcome carries a body");
        assert!(
            out.disclosed.is_empty(),
            "refused outcome discloses {:?}",
            out.disclosed
        );
        return;
    }
    assert!(
        !refuse_holds(&upstream),
        "sharing_restrictions holds \"repairs\" but not refused"
    );
    let Some(body) = &out.body else {
        panic!("outcome neither refused nor carrying a body");
    };

    let mut grants = route.plan.allow().to_vec();
    grants.extend(paths(&["tenant.age_band"]));
    if when_holds(&upstream) {
        grants.extend(paths(&[
            "tenant.caution_markers[].category",
            "tenant.caution_markers[].instruction",
        ]));
    }
    let mut found = Vec::new();
    leaves(body, &mut Vec::new(), &mut found);
    for (leaf, empty_container) in &found {
        assert!(
            granted(leaf, *empty_container, &grants),
            "leaf {} sent but not granted; body {body}",
            path::render(leaf)
        );
    }

    if let Some(band) = body.get("tenant").and_then(|t| t.get("age_band")) {
        assert!(
            matches!(band, Value::String(s) if AGE_BANDS.contains(&s.as_str())),
            "tenant.age_band is {band}, not a derived band"
        );
    }
});
