use serde_json::json;

use super::*;
use crate::filter::Lookups;
use crate::test_util::{load, policy, Call};

fn paths(list: &[&str]) -> Vec<FieldPath> {
    list.iter().map(|p| FieldPath::parse(p).unwrap()).collect()
}

fn accepted(accept: &[&str], body: Value) -> Result<Vec<String>, NotAccepted> {
    received(&paths(accept), &body).map(|r| r.into_iter().collect())
}

const ACCEPT: &[&str] = &["status", "appointment.date", "parts[].code"];

#[test]
fn accepted_paths_at_every_depth_are_received() {
    let body = json!({"status": "done", "appointment": {"date": "2025-03-01"}, "parts": [{"code": "P1"}, {"code": "P2"}]});
    assert_eq!(
        accepted(ACCEPT, body).unwrap(),
        ["appointment.date", "parts[].code", "status"]
    );
    // Only the paths the body holds are received.
    assert_eq!(
        accepted(ACCEPT, json!({"status": "x"})).unwrap(),
        ["status"]
    );
    assert!(accepted(ACCEPT, json!({})).unwrap().is_empty());
}

#[test]
fn an_entry_accepts_everything_under_it() {
    let body = json!({"appointment": {"date": "d", "slot": {"from": "9"}}});
    assert_eq!(accepted(&["appointment"], body).unwrap(), ["appointment"]);
}

#[test]
fn an_extra_key_at_each_level_is_named() {
    let cases = [
        (json!({"status": "x", "cost": 1}), "cost"),
        (
            json!({"appointment": {"date": "d", "slot": "am"}}),
            "appointment.slot",
        ),
        (
            json!({"parts": [{"code": "P1"}, {"code": "P2", "price": 3}]}),
            "parts[].price",
        ),
        (json!({"notes": "a secret"}), "notes"),
    ];
    for (body, path) in cases {
        assert_eq!(
            accepted(ACCEPT, body),
            Err(NotAccepted::Field(path.to_owned()))
        );
    }
    // The message names the path, never the value.
    let message = accepted(ACCEPT, json!({"notes": "a secret"}))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("\"notes\"") && !message.contains("secret"),
        "{message}"
    );
}

#[test]
fn a_body_not_shaped_as_the_paths_expect_is_refused() {
    let cases = [
        (json!("done"), "<body>"),
        (json!([{"status": "x"}]), "<body>"),
        (json!({"appointment": "tomorrow"}), "appointment"),
        (json!({"parts": {"code": "P1"}}), "parts"),
        (json!({"parts": ["P1"]}), "parts[]"),
    ];
    for (body, path) in cases {
        assert_eq!(
            accepted(ACCEPT, body),
            Err(NotAccepted::Shape(path.to_owned()))
        );
    }
}

/// The write route of `tests/fixtures/writes`, with a second require over the body.
const WRITE: &str = concat!(
    include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/writes/routes.toml"
    )),
    r#"
[[route.require]]
condition = "request.body.status in ['scheduled', 'completed']"
reason = "a job is only scheduled or completed"
"#
);

/// `require` over `body` with the lookup `job` answering `job` (or failing when `None`).
fn required(body: Value, job: Option<Value>) -> Result<(), Refusal> {
    let policy = policy(WRITE);
    let acme = policy.recipient("acme-repairs").unwrap();
    let route = &acme.kind.routes[0];
    let call = Call::job();
    let mut lookups = Lookups::default();
    lookups.insert(
        "job",
        job.ok_or_else(|| "the upstream answered 404".to_owned()),
    );
    let mut request = call.request(acme);
    request.method = "PATCH";
    request.lookups = &lookups;
    request.body = Some(&body);
    require(&route.plan, &request)
}

#[test]
fn every_require_must_hold() {
    let own = || Some(json!({"contractor_code": "ACME"}));
    assert_eq!(required(json!({"status": "completed"}), own()), Ok(()));
    let theirs = required(
        json!({"status": "completed"}),
        Some(json!({"contractor_code": "BFX"})),
    );
    let refusal = theirs.unwrap_err();
    assert_eq!(
        refusal.reason,
        "only the contractor assigned to the job may update it"
    );
    assert!(!refusal.erred);
    assert_eq!(refusal.status, 403);
    let second = required(json!({"status": "cancelled"}), own()).unwrap_err();
    assert_eq!(second.reason, "a job is only scheduled or completed");
}

/// A require that cannot be evaluated refuses: a failed lookup, a missing field.
#[test]
fn a_require_that_errs_refuses() {
    let failed = required(json!({"status": "completed"}), None).unwrap_err();
    assert!(failed.erred);
    assert_eq!(failed.status, 403);
    let missing = required(json!({}), Some(json!({"contractor_code": "ACME"}))).unwrap_err();
    assert!(missing.erred);
    let no_code = required(json!({"status": "completed"}), Some(json!({}))).unwrap_err();
    assert!(no_code.erred);
}

/// Each misuse is a load error at its line (the route text starts at line 4).
#[test]
fn misused_write_rules_are_load_errors() {
    let cases = [
        (
            "[[route]]\nmethod = \"PATCH\"\npath = \"/jobs/{job_id}\"\nallow = [\"id\"]\nsubjects_optional = true\n",
            ":4: a PATCH route needs accept",
        ),
        (
            "[[route]]\nmethod = \"GET\"\npath = \"/jobs/{job_id}\"\naccept = [\"status\"]\nallow = [\"id\"]\nsubjects_optional = true\n",
            ":7: accept on a GET route",
        ),
        (
            "[[route]]\nmethod = \"GET\"\npath = \"/jobs\"\nallow = [\"id\"]\nsubjects_optional = true\n[[route.require]]\ncondition = \"true\"\nreason = \"r\"\n",
            ":9: require on a GET route",
        ),
        (
            "[[route]]\nmethod = \"POST\"\npath = \"/jobs\"\naccept = [\"a..b\"]\nallow = [\"id\"]\nsubjects_optional = true\n",
            ":7: accept: malformed path",
        ),
        (
            "[[route]]\nmethod = \"POST\"\npath = \"/jobs\"\naccept = [\"status\"]\nallow = [\"id\"]\nsubjects_optional = true\n[[route.lookup]]\nname = \"job\"\npath = \"/jobs/{body.id}\"\n",
            ":12: lookup \"job\" reads body",
        ),
        (
            "[[route]]\nmethod = \"POST\"\npath = \"/jobs\"\naccept = [\"status\"]\nallow = [\"id\"]\nsubjects_optional = true\n[[route.require]]\ncondition = \"body.status == 'x'\"\nreason = \"r\"\n",
            ":11: require condition reads body",
        ),
    ];
    for (routes, expected) in cases {
        let error = load(routes, None).unwrap_err().0;
        let error: Vec<String> = error.iter().map(ToString::to_string).collect();
        let error = error.join("\n");
        assert!(error.contains(expected), "{expected:?} not in:\n{error}");
    }
}

/// The example in `docs/rules.md` loads as written, and refuses what the text says it does.
#[test]
fn the_documented_example_loads() {
    let docs = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.md"));
    let section = docs.split("## Writes").nth(1).unwrap();
    let example = section
        .split("```toml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let policy = policy(example);
    let acme = policy.recipient("acme-repairs").unwrap();
    let write = acme.kind.routes[0].plan.write().unwrap();
    assert_eq!(
        received(
            &write.accept,
            &json!({"status": "completed", "priority": "low"})
        ),
        Err(NotAccepted::Field("priority".into()))
    );
}
