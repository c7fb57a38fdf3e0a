//! The disclosure ledger: one chained record per request (refusals too), written before the
//! response leaves, and 503 with nothing else when it cannot be written.

use std::path::Path;

use crate::support::cli::Cli;
use crate::support::gateway::{self, Builder};
use crate::support::upstream::Upstream;
use crate::support::{http, job, strs};

#[tokio::test]
async fn every_request_is_recorded_with_its_decision() {
    let (_up, gw) = gateway::before_the_job().await;
    let key = gw.key("acme-repairs").to_string();
    let ok = http::get(gw.addr, "/jobs/J-1001", Some(&key)).await;
    assert_eq!(ok.status, 200);
    // The record is durable before the response leaves, so it is on disk now.
    let records = gw.audit_records();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["request_id"], ok.header("x-request-id").expect("id"));
    assert_eq!(r["recipient"], "acme-repairs");
    assert_eq!(r["recipient_type"], "repairs-contractor");
    assert_eq!(r["method"], "GET");
    assert_eq!(r["route"], "/jobs/{job_id}");
    assert_eq!(r["path"], "/jobs/J-1001");
    assert_eq!(r["status"], 200);
    assert_eq!(r["lawful_basis"], "contract");
    assert_eq!(
        r["purpose"],
        "Carry out repairs, maintenance and safety checks at the tenant's home"
    );
    assert_eq!(r["subjects"], serde_json::json!(["T-000142"]));
    assert_eq!(r["prev_hash"], "0".repeat(64));
    assert_eq!(
        strs(&r["disclosed"]),
        [
            "appointment.date",
            "appointment.slot",
            "description",
            "id",
            "priority",
            "property.address",
            "status",
            "tenant.access_needs[].description",
            "tenant.email",
            "tenant.name",
            "tenant.phone",
        ]
    );
    assert_eq!(
        strs(&r["withheld"]),
        [
            "contractor_id",
            "internal_notes",
            "property.id",
            "property.tenure",
            "tenant.access_needs[].code",
            "tenant.arrears",
            "tenant.benefits",
            "tenant.caution_markers",
            "tenant.date_of_birth",
            "tenant.health",
            "tenant.id",
            "tenant.ni_number",
        ]
    );

    // Refusals are recorded too, chained on.
    assert_eq!(http::get(gw.addr, "/jobs/J-1001", None).await.status, 401);
    assert_eq!(
        http::get(gw.addr, "/tenants/T-1", Some(&key)).await.status,
        403
    );
    assert_eq!(
        http::get(gw.addr, "/jobs/%2e%2e", Some(&key)).await.status,
        400
    );
    let records = gw.audit_records();
    assert_eq!(records.len(), 4);
    assert_eq!(records[1]["status"], 401);
    assert!(records[1]["recipient"].is_null());
    assert_eq!(records[1]["error"], "unauthenticated");
    assert_eq!(records[2]["status"], 403);
    assert_eq!(
        records[2]["recipient"],
        "brightfix".replace("brightfix", "acme-repairs")
    );
    assert_eq!(records[3]["status"], 400);
    for pair in records.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }
}

#[tokio::test]
async fn the_chain_verifies_and_one_changed_byte_is_named_by_line() {
    let (_up, gw) = gateway::before_the_job().await;
    let key = gw.key("acme-repairs").to_string();
    for _ in 0..3 {
        assert_eq!(
            http::get(gw.addr, "/jobs/J-1001", Some(&key)).await.status,
            200
        );
    }
    let path = gw.audit_path.clone();
    Cli::new(["audit", "verify"])
        .arg(&path)
        .success()
        .stdout_has(&["3 records"]);

    // Change one byte of the second record: "Joan" is not in it, but its status is.
    let text = std::fs::read_to_string(&path).expect("read");
    let second_start = text.find('\n').expect("two lines") + 1;
    let at = second_start + text[second_start..].find("\"status\":200").expect("status") + 10;
    let mut bytes = text.into_bytes();
    bytes[at] = b'4';
    let tampered = path.with_extension("tampered.jsonl");
    std::fs::write(&tampered, &bytes).expect("write");
    Cli::new(["audit", "verify"])
        .arg(&tampered)
        .expect(1)
        .stdout_has(&["line 2"]);
}

#[tokio::test]
async fn audit_query_lists_one_subjects_disclosures() {
    let (_up, gw) = gateway::before_the_job().await;
    assert_eq!(
        http::get(gw.addr, "/jobs/J-1001", Some(gw.key("acme-repairs")))
            .await
            .status,
        200
    );
    assert_eq!(http::get(gw.addr, "/jobs/J-1001", None).await.status, 401);
    assert_eq!(
        http::get(gw.addr, "/jobs/J-1001", Some(gw.key("brightfix")))
            .await
            .status,
        200
    );
    let path = gw.audit_path.to_str().expect("utf-8").to_string();
    let out = Cli::new(["audit", "query", &path, "--subject", "T-000142"]).success();
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["recipient"], "acme-repairs");
    assert_eq!(lines[1]["recipient"], "brightfix");
    let none = Cli::new(["audit", "query", &path, "--subject", "T-999"]).success();
    assert!(none.stdout.is_empty(), "{none}");
}

#[tokio::test]
async fn an_audit_that_cannot_be_written_gets_503_and_nothing_else() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full on this system");
        return;
    }
    let up = Upstream::new().json("/api/jobs/J-1001", job()).run().await;
    let gw = Builder::before(&up)
        .audit_path(Path::new("/dev/full"))
        .start()
        .await;
    let key = gw.key("acme-repairs").to_string();
    for _ in 0..3 {
        let r = http::get(gw.addr, "/jobs/J-1001", Some(&key)).await;
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(r.error(), "audit_unavailable");
        assert!(
            !r.text().contains("Joan"),
            "a disclosure left without its record"
        );
        assert!(
            !r.text().contains("Boiler"),
            "a disclosure left without its record"
        );
    }
    // Refusals cannot be recorded either, so they are 503 too.
    assert_eq!(http::get(gw.addr, "/jobs/J-1001", None).await.status, 503);
}

/// The record's `path` is the path routing decoded, the one the upstream was asked for, not
/// the escapes a client chose to write it in; a target routing cannot decode is recorded as
/// received, cut to 512 bytes.
#[tokio::test]
async fn a_percent_encoded_path_is_recorded_as_routing_decodes_it() {
    let (up, gw) = gateway::before_the_job().await;
    let key = gw.key("acme-repairs").to_string();
    let ok = http::get(gw.addr, "/jobs/%4A%2D%31%30%30%31", Some(&key)).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(up.requests()[0].path, "/api/jobs/J-1001");
    // Decoded for a path no route grants, too.
    let not_granted = http::get(gw.addr, "/tenants/%54-0001", Some(&key)).await;
    assert_eq!(not_granted.status, 403, "{}", not_granted.text());
    // An encoded slash is refused before decoding: recorded as sent.
    let malformed = http::get(gw.addr, "/jobs/J-1%2F..", Some(&key)).await;
    assert_eq!(malformed.status, 400, "{}", malformed.text());
    let records = gw.audit_records();
    let paths: Vec<&str> = records
        .iter()
        .map(|r| r["path"].as_str().expect("path"))
        .collect();
    assert_eq!(paths, ["/jobs/J-1001", "/tenants/T-0001", "/jobs/J-1%2F.."]);
    gw.stop().await;
}
