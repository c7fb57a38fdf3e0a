//! Tests of lookups: compiling them (each misuse a load error at its line), filling in their
//! targets, and the rule that a failed lookup never grants and always refuses.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::filter::{decide, Outcome};
use crate::rules::Policy;
use crate::test_util::{load, policy, Call};

/// A job route whose lookup `jobs` GETs the property's jobs, then `rest` (its `when` and
/// `refuse`). After the header [`load`] puts first, `rest` starts on line 15.
fn route(rest: &str) -> String {
    format!(
        r#"
[[route]]
method = "GET"
path = "/jobs/{{job_id}}"
subjects = ["tenant.id"]
allow = ["id"]

[[route.lookup]]
name = "jobs"
path = "/properties/{{body.property.id}}/jobs"
query = {{ contractor = "recipient.id" }}

{rest}"#
    )
}

const WHEN: &str = r#"[[route.when]]
condition = "lookup.jobs.exists(j, j.contractor == recipient.id && j.status == 'open')"
reason = "contractor with an open job at the property"
allow = ["tenant.caution_markers"]
"#;

const REFUSE: &str = r#"[route.refuse]
condition = "!lookup.jobs.exists(j, j.contractor == recipient.id && j.status == 'open')"
reason = "no open job at this property"
"#;

fn job() -> Value {
    json!({"id": "J1", "property": {"id": "P 7/B"},
           "tenant": {"id": "T-1", "caution_markers": [{"instruction": "attend in pairs"}]}})
}

fn open_jobs(contractor: &str) -> Value {
    json!([{"contractor": contractor, "status": "open", "note": "MARKER-9f3"}])
}

/// `decide` on the first route for `acme-repairs`, with `lookups` answered.
fn run(policy: &Policy, lookups: &Lookups) -> Outcome {
    let recipient = policy.recipient("acme-repairs").unwrap();
    let call = Call::job();
    let mut request = call.request(recipient);
    request.lookups = lookups;
    decide(&recipient.kind.routes[0].plan, &request, &job(), true)
}

fn answered(jobs: Result<Value, String>) -> Lookups {
    let mut lookups = Lookups::default();
    lookups.insert("jobs", jobs);
    lookups
}

/// The problems of loading `routes`, as `check` prints them, without the file name.
fn problems(routes: &str) -> Vec<String> {
    match load(routes, None) {
        Ok(_) => Vec::new(),
        Err(e) => {
            e.0.iter()
                .filter(|d| d.is_error())
                .map(|d| {
                    let text = d.to_string();
                    let name = "repairs-contractor.toml:";
                    text[text.find(name).unwrap() + name.len()..].to_owned()
                })
                .collect()
        }
    }
}

#[test]
fn a_lookup_that_answers_is_read_by_the_rules() {
    let p = policy(&route(WHEN));
    let sent = run(&p, &answered(Ok(open_jobs("acme-repairs"))));
    assert_eq!(
        sent.reasons,
        ["contractor with an open job at the property"]
    );
    assert!(sent.body.unwrap()["tenant"]["caution_markers"].is_array());
    let other = run(&p, &answered(Ok(open_jobs("brightfix"))));
    assert!(other.reasons.is_empty());
    assert!(other.rule_errors.is_empty());

    let p = policy(&route(REFUSE));
    assert!(run(&p, &answered(Ok(open_jobs("acme-repairs"))))
        .refusal
        .is_none());
    let refused = run(&p, &answered(Ok(open_jobs("brightfix"))));
    assert!(!refused.refusal.unwrap().erred);
}

/// Every way a lookup fails (non-2xx, not JSON, timeout, too large, a placeholder error)
/// reaches the filter as a failed answer: a `when` reading it does not grant, and a `refuse`
/// reading it refuses, whatever else holds.
#[test]
fn a_failed_lookup_never_grants_and_always_refuses() {
    let whys = [
        "upstream answered 404 Not Found",
        "upstream response is not JSON",
        "the lookups did not finish within 2s",
        "upstream response exceeds the 65536-byte limit",
        "the placeholder {body.property.id} could not be evaluated (a field or key is missing)",
    ];
    let when = policy(&route(WHEN));
    let refuse = policy(&route(REFUSE));
    for why in whys {
        let failed = answered(Err(why.to_owned()));
        let o = run(&when, &failed);
        assert!(o.reasons.is_empty(), "{why}");
        assert!(o.body.unwrap()["tenant"].is_null(), "{why}");
        assert_eq!(o.rule_errors.len(), 1, "{why}");
        assert!(
            o.rule_errors[0].ends_with(":16 when"),
            "{:?}",
            o.rule_errors
        );
        let o = run(&refuse, &failed);
        assert!(o.refusal.unwrap().erred, "{why}");
        assert!(o.body.is_none());
    }
    // Not made at all (a route whose body was never parsed) is the same.
    let o = run(&refuse, Lookups::none());
    assert!(o.refusal.unwrap().erred);
}

#[test]
fn targets_fill_each_placeholder_as_one_encoded_segment() {
    let p = policy(&route(WHEN));
    let recipient = p.recipient("acme-repairs").unwrap();
    let call = Call::job();
    let request = call.request(recipient);
    let plan = &recipient.kind.routes[0].plan;
    let target = |body: &Value| targets(plan, &request, body).pop().unwrap().1;
    assert_eq!(
        target(&job()).unwrap(),
        "/properties/P%207%2FB/jobs?contractor=acme-repairs"
    );
    assert_eq!(
        target(&json!({"property": {"id": 42}})).unwrap(),
        "/properties/42/jobs?contractor=acme-repairs"
    );
    assert_eq!(
        target(&json!({"property": {"id": "../../tenants"}})).unwrap(),
        "/properties/..%2F..%2Ftenants/jobs?contractor=acme-repairs"
    );
    for bad in [
        json!({}),
        json!({"property": {"id": ""}}),
        json!({"property": {"id": ".."}}),
        json!({"property": {"id": ["P1"]}}),
        json!({"property": {"id": null}}),
        json!({"property": {"id": 1.5}}),
    ] {
        let why = target(&bad).unwrap_err();
        assert!(why.contains("{body.property.id}"), "{why}");
    }
}

#[test]
fn misuse_is_a_load_error_at_its_line() {
    let lookup = |path: &str| {
        format!(
            "\n[[route]]\nmethod = \"GET\"\npath = \"/jobs/{{job_id}}\"\nallow = [\"id\"]\n\n[[route.lookup]]\nname = \"jobs\"\npath = \"{path}\"\n"
        )
    };
    let at = |problems: Vec<String>, line: usize, needle: &str| {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(&format!("{line}:")) && p.contains(needle)),
            "no {needle:?} at line {line} in {problems:?}"
        );
    };
    // `path` is on line 12 of the file.
    at(
        problems(&lookup("/p/{body.id ==}")),
        12,
        "placeholder {body.id ==}: CEL syntax error",
    );
    at(
        problems(&lookup("/p/{bodee.id}")),
        12,
        "unknown variable \"bodee\"",
    );
    at(problems(&lookup("/p/{item.id}")), 12, "`item`");
    at(problems(&lookup("/p/{body.id")), 12, "without its `}`");
    at(problems(&lookup("/p/x?y=1")), 12, "'?' is not allowed");
    at(problems(&lookup("p/{body.id}")), 12, "must start with `/`");
    at(problems(&lookup("/p/../{body.id}")), 12, "`..` segment");
    // A placeholder's braces may hold a map; a quoted brace does not close it.
    assert_eq!(
        problems(&lookup("/p/{ {'a}': body.id}['a}'] }")),
        Vec::<String>::new()
    );

    let more = (0..5)
        .map(|i| format!("[[route.lookup]]\nname = \"l{i}\"\npath = \"/p/{i}\"\n"))
        .collect::<String>();
    let text = format!(
        "\n[[route]]\nmethod = \"GET\"\npath = \"/jobs/{{job_id}}\"\nallow = [\"id\"]\n{more}"
    );
    // The fifth lookup's table starts on line 21.
    at(problems(&text), 21, "at most 4 lookups");

    let reads = |condition: &str| {
        route(&format!(
            "[[route.when]]\ncondition = \"{condition}\"\nreason = \"r\"\nallow = [\"tenant\"]\n"
        ))
    };
    // The condition is on line 17.
    at(
        problems(&reads("lookup.alerts.size() > 0")),
        17,
        "no lookup \"alerts\"",
    );
    at(
        problems(&reads("has(lookup.jobs)")),
        17,
        "has(lookup.<name>) is not allowed",
    );
    at(problems(&reads("size(lookup) > 0")), 17, "as lookup.<name>");
    at(
        problems(&reads("lookup['jobs'].size() > 0")),
        17,
        "as lookup.<name>",
    );
    assert_eq!(problems(&reads("has(lookup.jobs.x)")), Vec::<String>::new());

    let twice = route("[[route.lookup]]\nname = \"jobs\"\npath = \"/x\"\n");
    at(problems(&twice), 17, "declared twice");
    let reads_lookup = route("[[route.lookup]]\nname = \"more\"\npath = \"/x/{lookup.jobs.id}\"\n");
    at(problems(&reads_lookup), 18, "cannot read lookup");
    let bad_name = route("[[route.lookup]]\nname = \"a-b\"\npath = \"/x\"\n");
    at(problems(&bad_name), 17, "lookup name \"a-b\"");
}

#[test]
fn a_route_with_lookups_is_buffered() {
    let p = policy(&route(WHEN).replace("/jobs/{job_id}", "/jobs").replace(
        "subjects = [\"tenant.id\"]\nallow = [\"id\"]",
        "subjects = [\"[].id\"]\nallow = [\"[].id\"]",
    ));
    let plan = &p.recipient("acme-repairs").unwrap().kind.routes[0].plan;
    assert_eq!(
        plan.buffered_because(),
        Some("has lookups, whose placeholders read the whole body")
    );
}

#[test]
fn debug_never_shows_an_answer() {
    let lookups = answered(Ok(open_jobs("acme-repairs")));
    let text = format!("{lookups:?}");
    assert!(!text.contains("MARKER-9f3"), "{text}");
    assert!(text.contains("jobs"), "{text}");
}

proptest! {
    /// Whatever a value holds, its encoding is one segment of unreserved characters and
    /// escapes, and decodes back to it.
    #[test]
    fn encoding_is_one_segment_and_reversible(text in ".*") {
        let encoded = encode(&text);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        let mut decoded = Vec::new();
        let bytes = encoded.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                decoded.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
        prop_assert_eq!(decoded, text.as_bytes());
    }
}

/// A placeholder that indexes a map by a body value errs with CEL's `NoSuchKey`, whose key
/// is the value: the reason is logged ("lookup failed") and shown by `explain`, so it must
/// not hold the tenant's data.
#[test]
fn a_placeholder_error_never_holds_a_body_value() {
    let p = policy(&route(WHEN).replace(
        "/properties/{body.property.id}/jobs",
        "/properties/{ {'north': 'N1'}[body.tenant.name] }/jobs",
    ));
    let recipient = p.recipient("acme-repairs").unwrap();
    let call = Call::job();
    let request = call.request(recipient);
    let plan = &recipient.kind.routes[0].plan;
    let body = json!({"tenant": {"name": "Jo Bloggs"}});
    let why = targets(plan, &request, &body).pop().unwrap().1.unwrap_err();
    assert!(!why.contains("Jo Bloggs"), "{why}");
}

/// "What a lookup answers is never sent to the recipient": a `derive` reading it would send
/// it (here the lookup's `note`, a second record's text, as the job's `note`), so the loader
/// refuses a derived value that reads `lookup`.
#[test]
fn a_derived_field_never_carries_a_lookup_answer() {
    let rules = route(
        r#"[[route.derive]]
field = "note"
value = "lookup.jobs[0].note"
"#,
    );
    let problems = problems(&rules);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("a derived value may not read lookup")),
        "{problems:?}"
    );
}

/// A lookup's query value that is empty asks for `?contractor=`, which a housing system may
/// read as no filter at all; a placeholder refuses an empty value for that reason, and a
/// query value should too.
#[test]
fn an_empty_lookup_query_value_fails_the_lookup() {
    let p = policy(&route(WHEN).replace(
        "query = { contractor = \"recipient.id\" }",
        "query = { contractor = \"body.contractor\" }",
    ));
    let recipient = p.recipient("acme-repairs").unwrap();
    let call = Call::job();
    let request = call.request(recipient);
    let plan = &recipient.kind.routes[0].plan;
    let body = json!({"property": {"id": "P1"}, "contractor": ""});
    let target = targets(plan, &request, &body).pop().unwrap().1;
    assert!(target.is_err(), "requested {target:?}");
}
