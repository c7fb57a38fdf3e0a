//! Lookups through the real gateway: a route that refuses unless a second upstream record
//! (the property's jobs) holds an open job of the caller, fetched with the gateway's own
//! credential, never disclosed, and failing closed in every way it can fail.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::gateway::Builder;
use crate::support::upstream::{Reply, Upstream};
use crate::support::{http, strs};

/// Caution markers go only to a contractor holding an open job at the tenant's property, as
/// the property's jobs (a lookup) say.
const TYPE: &str = r#"type = "repairs-contractor"
purpose = "Carry out repairs, maintenance and safety checks at the tenant's home"
lawful_basis = "contract"

[[route]]
method = "GET"
path = "/tenants/{tenant_id}/cautions"
subjects = ["tenant_id"]
allow = ["tenant_id", "markers[].instruction"]

[[route.lookup]]
name = "jobs"
path = "/properties/{body.property_id}/jobs"
query = { status = "'open'" }

[route.refuse]
condition = "!lookup.jobs.exists(j, j.contractor_id == recipient.id && j.status == 'open')"
reason = "no open job of the contractor at the property"
"#;

/// What no response and no ledger line may ever hold: it is only in the lookup's answer.
const MARKER: &str = "LOOKUP-ONLY-7f3a";

const CREDENTIAL_ENV: &str = "NTK_TEST_LOOKUP_CREDENTIAL";
const CREDENTIAL: &str = "gateway-own-secret-for-lookups";

fn cautions() -> Value {
    json!({"tenant_id": "T-1", "property_id": "P 7/B",
           "markers": [{"instruction": "attend in pairs", "detail": "not for contractors"}]})
}

fn jobs() -> Value {
    json!([
        {"id": "J-1", "contractor_id": "acme-repairs", "status": "open", "note": MARKER},
        {"id": "J-2", "contractor_id": "brightfix", "status": "closed", "note": MARKER}
    ])
}

/// The upstream path the lookup fills in for [`cautions`]: one encoded segment.
const LOOKUP_PATH: &str = "/api/properties/P%207%2FB/jobs";

async fn gateway_with(
    jobs: Reply,
) -> (
    crate::support::upstream::Listening,
    crate::support::gateway::Gateway,
) {
    let up = Upstream::new()
        .json("/api/tenants/T-1/cautions", cautions())
        .route("GET", LOOKUP_PATH, jobs)
        .run()
        .await;
    let gw = Builder::before(&up)
        .kind("repairs-contractor", TYPE)
        .config(&format!("credential_env = \"{CREDENTIAL_ENV}\""))
        .env(CREDENTIAL_ENV, CREDENTIAL)
        .start()
        .await;
    (up, gw)
}

#[tokio::test]
async fn the_contractor_with_an_open_job_is_answered_and_another_refused() {
    let (up, gw) = gateway_with(Reply::Json(200, jobs())).await;

    let granted = http::get(
        gw.addr,
        "/tenants/T-1/cautions",
        Some(gw.key("acme-repairs")),
    )
    .await;
    assert_eq!(
        granted.status,
        200,
        "{}",
        String::from_utf8_lossy(&granted.raw)
    );
    assert_eq!(
        granted.json(),
        json!({"tenant_id": "T-1", "markers": [{"instruction": "attend in pairs"}]})
    );
    let refused = http::get(gw.addr, "/tenants/T-1/cautions", Some(gw.key("brightfix"))).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["error"], "refused_by_policy");

    // The lookup went upstream as a GET with the gateway's credential, not the recipient's.
    let lookups: Vec<_> = up
        .requests()
        .into_iter()
        .filter(|r| r.path == LOOKUP_PATH)
        .collect();
    assert_eq!(lookups.len(), 2);
    for seen in &lookups {
        assert_eq!(seen.method, "GET");
        assert_eq!(seen.query.as_deref(), Some("status=open"));
        let auth: Vec<&str> = seen
            .headers
            .iter()
            .filter(|(n, _)| n == "authorization")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(auth, [format!("Bearer {CREDENTIAL}")]);
    }

    // Its answer is never disclosed: not in a response, not in the ledger.
    for response in [&granted, &refused] {
        assert!(!String::from_utf8_lossy(&response.raw).contains(MARKER));
    }
    let ledger = std::fs::read_to_string(&gw.audit_path).expect("the ledger");
    assert!(!ledger.contains(MARKER), "{ledger}");
    assert!(
        !ledger.contains("P%207"),
        "the filled-in path is recorded: {ledger}"
    );
    let records = gw.audit_records();
    let recorded: Vec<&Value> = records.iter().filter(|r| r["route"].is_string()).collect();
    assert_eq!(recorded.len(), 2);
    for r in recorded {
        assert_eq!(r["lookups"], json!(["/properties/{body.property_id}/jobs"]));
    }
    // The field a placeholder reads is named by the policy, so the record names it too.
    assert!(
        strs(&records[0]["withheld"]).contains(&"property_id"),
        "{}",
        records[0]
    );
    assert_eq!(records.last().expect("a record")["status"], 403);
    gw.stop().await;
}

/// Every way the lookup can fail refuses: the refuse rule cannot be evaluated.
#[tokio::test]
async fn a_lookup_that_fails_refuses() {
    let failures = [
        ("non-2xx", Reply::Json(404, json!({"error": "not found"}))),
        ("5xx", Reply::Json(500, json!({"note": MARKER}))),
        (
            "not JSON",
            Reply::Raw {
                status: 200,
                headers: vec![("content-type".into(), "text/html".into())],
                body: MARKER.as_bytes().to_vec(),
            },
        ),
        (
            "malformed JSON",
            Reply::Raw {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: b"[{\"contractor_id\": \"acme-repairs\", \"status\": \"open\"".to_vec(),
            },
        ),
        (
            "too large",
            Reply::Json(
                200,
                json!([{"contractor_id": "acme-repairs", "status": "open",
                                     "pad": "x".repeat(70_000)}]),
            ),
        ),
        ("timeout", Reply::Hang),
    ];
    for (what, reply) in failures {
        let (_up, gw) = gateway_with(reply).await;
        let started = std::time::Instant::now();
        let r = http::get(
            gw.addr,
            "/tenants/T-1/cautions",
            Some(gw.key("acme-repairs")),
        )
        .await;
        assert_eq!(r.status, 403, "{what}: {}", String::from_utf8_lossy(&r.raw));
        assert!(
            !String::from_utf8_lossy(&r.raw).contains("attend in pairs"),
            "{what}"
        );
        // Within the upstream timeout (2 s in these tests), with some slack.
        assert!(started.elapsed() < Duration::from_secs(5), "{what}");
        let records = gw.audit_records();
        let record = records.last().expect("a record");
        assert_eq!(record["error"], "refused_by_policy", "{what}");
        assert!(record["rule_errors"][0]
            .as_str()
            .is_some_and(|s| s.ends_with(" refuse")));
        gw.stop().await;
    }
}

/// A placeholder that cannot be filled in makes no request and refuses.
#[tokio::test]
async fn a_placeholder_that_errs_makes_no_request_and_refuses() {
    let up = Upstream::new()
        .json(
            "/api/tenants/T-1/cautions",
            json!({"tenant_id": "T-1", "markers": []}),
        )
        .run()
        .await;
    let gw = Builder::before(&up)
        .kind("repairs-contractor", TYPE)
        .start()
        .await;
    let r = http::get(
        gw.addr,
        "/tenants/T-1/cautions",
        Some(gw.key("acme-repairs")),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(up.count(), 1, "only the main request went upstream");
    let records = gw.audit_records();
    assert!(records.last().expect("a record").get("lookups").is_none());
    gw.stop().await;
}

// === offline: test cases and explain ===

/// The rules of [`TYPE`] written out with a config, as `test` and `explain` read them, with
/// the main body and the jobs lookup's answer under `rules/tests/bodies/`.
fn offline() -> (tempfile::TempDir, std::path::PathBuf) {
    let builder = Builder::new("http://127.0.0.1:9/api").kind("repairs-contractor", TYPE);
    let (dir, config, _keys) = builder.write();
    let bodies = dir.path().join("rules/tests/bodies");
    std::fs::create_dir_all(&bodies).expect("bodies dir");
    std::fs::write(bodies.join("cautions.json"), cautions().to_string()).expect("body");
    std::fs::write(bodies.join("jobs.json"), jobs().to_string()).expect("lookup body");
    (dir, config)
}

/// A test case supplies what the lookup answers (relative to the case file, as `body_file`);
/// a case that supplies none sees the lookup fail, as it would live.
#[test]
fn a_policy_test_case_supplies_a_lookups_answer() {
    let (dir, config) = offline();
    std::fs::write(
        dir.path().join("rules/tests/cautions.toml"),
        r#"[[case]]
name = "the contractor with an open job sees the markers"
recipient = "acme-repairs"
path = "/tenants/T-1/cautions"
body_file = "bodies/cautions.json"
lookups = { jobs = "bodies/jobs.json" }
status = 200
disclosed = ["markers[].instruction"]
absent = ["LOOKUP-ONLY-7f3a"]

[[case]]
name = "a contractor without one is refused"
recipient = "brightfix"
path = "/tenants/T-1/cautions"
body_file = "bodies/cautions.json"
lookups = { jobs = "bodies/jobs.json" }
status = 403

[[case]]
name = "without the lookup's answer the route refuses"
recipient = "acme-repairs"
path = "/tenants/T-1/cautions"
body_file = "bodies/cautions.json"
status = 403
"#,
    )
    .expect("cases");
    crate::support::cli::Cli::new(["test", "--config"])
        .arg(&config)
        .success()
        .stdout_has(&["3 passed, 0 failed"]);

    std::fs::write(
        dir.path().join("rules/tests/missing.toml"),
        "[[case]]\nname = \"n\"\nrecipient = \"acme-repairs\"\npath = \"/tenants/T-1/cautions\"\nbody_file = \"bodies/cautions.json\"\nlookups = { jobs = \"bodies/nope.json\" }\n",
    )
    .expect("case");
    crate::support::cli::Cli::new(["test", "--config"])
        .arg(&config)
        .expect(1)
        .stdout_has(&["missing.toml:1: case \"n\": cannot read lookup \"jobs\""]);
}

/// `explain --lookup NAME=FILE` answers a lookup from a file and says which were supplied
/// and which failed, never what they answered.
#[test]
fn explain_takes_a_lookups_answer_from_a_file() {
    let (dir, config) = offline();
    let bodies = dir.path().join("rules/tests/bodies");
    let explain = |recipient: &str, lookup: bool| {
        let mut cli = crate::support::cli::Cli::new(["explain", "--config"])
            .arg(&config)
            .args(["--recipient", recipient, "--path", "/tenants/T-1/cautions"])
            .arg("--body")
            .arg(bodies.join("cautions.json"));
        if lookup {
            cli = cli
                .arg("--lookup")
                .arg(format!("jobs={}", bodies.join("jobs.json").display()));
        }
        cli.success()
    };
    let out = explain("acme-repairs", true);
    let json = out.json();
    assert_eq!(json["status"], 200, "{out}");
    assert_eq!(json["lookups"], json!({"jobs": "supplied"}));
    assert!(!out.stdout.contains(MARKER), "{out}");

    let out = explain("brightfix", true);
    assert_eq!(out.json()["status"], 403, "{out}");

    let out = explain("acme-repairs", false);
    let json = out.json();
    assert_eq!(json["status"], 403, "{out}");
    assert_eq!(json["lookups"]["jobs"], "failed (no body supplied for it)");
    assert_eq!(
        json["rule_errors"].as_array().map(Vec::len),
        Some(1),
        "{out}"
    );
}
