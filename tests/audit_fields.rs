//! `audit fields` on a ledger the real gateway wrote with the shipped rules in front of the
//! sample housing API: every path the upstream sent, per recipient type and route, with the
//! counts the requests imply; `--since` marks what is new; a tampered ledger is still listed,
//! and exits 1.

use std::path::Path;

use serde_json::Value;

use crate::support::cli::{Cli, Run};
use crate::support::http;

/// `audit fields LEDGER ARGS`.
fn fields(ledger: &Path, args: &[&str]) -> Cli {
    Cli::new(["audit", "fields"]).arg(ledger).args(args)
}

/// The JSON list's entries for one route.
fn on_route<'a>(list: &'a Value, kind: &str, route: &str) -> Vec<&'a Value> {
    list.as_array()
        .expect("an array")
        .iter()
        .filter(|p| p["recipient_type"] == kind && p["method"] == "GET" && p["route"] == route)
        .collect()
}

/// No subject id and no recipient id on either stream: the list is not personal data.
fn assert_names_no_one(run: &Run) {
    for id in ["T-0001", "T-0004", "J-0001", "acme-repairs", "nightline"] {
        assert!(
            !run.stdout.contains(id) && !run.stderr.contains(id),
            "{id} printed:\n{run}"
        );
    }
}

#[tokio::test]
async fn lists_every_path_the_upstream_sent_per_route_and_marks_the_new() {
    let (gw, _data) = crate::policy::start().await;
    let acme = gw.key("acme-repairs").to_string();
    let nightline = gw.key("nightline").to_string();
    for _ in 0..2 {
        let job = http::get(gw.addr, "/jobs/J-0001", Some(&acme)).await;
        assert_eq!(job.status, 200, "{}", job.text());
    }
    let tenant = http::get(gw.addr, "/tenants/T-0004", Some(&nightline)).await;
    assert_eq!(tenant.status, 200, "{}", tenant.text());
    // Refused before identity: no recipient type, so nothing to list.
    assert_eq!(http::get(gw.addr, "/jobs/J-0001", None).await.status, 401);

    let run = fields(&gw.audit_path, &["--format", "json"]).success();
    assert_names_no_one(&run);
    let list = run.json();
    let jobs = on_route(&list, "repairs-contractor", "/jobs/{job_id}");
    let tenants = on_route(&list, "out-of-hours-call-handler", "/tenants/{tenant_id}");
    assert!(!jobs.is_empty() && !tenants.is_empty(), "{list:#}");
    assert_eq!(
        list.as_array().expect("array").len(),
        jobs.len() + tenants.len(),
        "only the routes asked: {list:#}"
    );
    // Both job requests carried every path of the same job, each once.
    for p in &jobs {
        assert_eq!(p["records"], 2, "{p}");
        let (d, w) = (p["disclosed"].as_u64(), p["withheld"].as_u64());
        assert_eq!(d.zip(w).map(|(d, w)| d + w), Some(2), "{p}");
        assert!(p["first_seen"].as_str() <= p["last_seen"].as_str(), "{p}");
        assert_eq!(p["new"], false, "no --since: {p}");
    }
    let has = |list: &[&Value], key: &str| list.iter().any(|p| p[key].as_u64() > Some(0));
    assert!(
        has(&jobs, "disclosed") && has(&jobs, "withheld"),
        "{list:#}"
    );
    assert!(tenants.iter().all(|p| p["records"] == 1), "{list:#}");

    // `--since` the day of the first record: everything is new; a later day: nothing.
    let first_day = list.as_array().expect("array")[0]["first_seen"]
        .as_str()
        .and_then(|ts| ts.get(..10))
        .expect("a ts")
        .to_string();
    let new_since = |day: &str| -> Vec<bool> {
        let list = fields(&gw.audit_path, &["--format", "json", "--since", day])
            .success()
            .json();
        let list = list.as_array().expect("array");
        list.iter().map(|p| p["new"] == true).collect()
    };
    assert!(new_since(&first_day).iter().all(|&new| new));
    assert!(new_since("9999-12-31").iter().all(|&new| !new));
    let wrong = fields(&gw.audit_path, &["--since", "next week"]).expect(1);
    assert!(wrong.stderr.contains("YYYY-MM-DD"), "{wrong}");

    // The text: a heading per route, a line per path with the dates.
    let text = fields(&gw.audit_path, &["--since", &first_day]).success();
    assert_names_no_one(&text);
    text.stdout_has(&[
        "repairs-contractor GET /jobs/{job_id}\n",
        "out-of-hours-call-handler GET /tenants/{tenant_id}\n",
        &format!("  new  {}", jobs[0]["path"].as_str().expect("path")),
        " 2 records  ",
        &format!("{first_day} .. "),
        "paths first seen on or after",
    ]);
}

#[tokio::test]
async fn a_tampered_ledger_is_still_listed_and_exits_1() {
    let (gw, _data) = crate::policy::start().await;
    let acme = gw.key("acme-repairs").to_string();
    for _ in 0..2 {
        assert_eq!(
            http::get(gw.addr, "/jobs/J-0001", Some(&acme)).await.status,
            200
        );
    }
    let text = std::fs::read_to_string(&gw.audit_path).expect("the ledger");
    let tampered = gw.dir.path().join("tampered.jsonl");
    std::fs::write(
        &tampered,
        text.replacen("\"status\":200", "\"status\":201", 1),
    )
    .expect("write");
    let run = fields(&tampered, &[]).expect(1);
    run.stdout_has(&["repairs-contractor GET /jobs/{job_id}", " 2 records "]);
    assert!(
        run.stderr.contains("did not verify") && run.stderr.contains("line "),
        "{run}"
    );
    fields(&gw.audit_path, &[]).success();
}
