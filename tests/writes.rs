//! Writes through the real gateway: a PATCH whose body may hold only the route's `accept`
//! paths, checked with a `require` over a lookup before anything goes upstream; an accepted
//! write is forwarded byte for byte and its record lists what was received.

use serde_json::{json, Value};

use crate::support::gateway::{Builder, Gateway};
use crate::support::http;
use crate::support::upstream::{Listening, Reply, Upstream};

/// The write route of the unit tests, after a type header.
fn type_file() -> String {
    let routes = include_str!("fixtures/writes/routes.toml");
    format!(
        "type = \"repairs-contractor\"\npurpose = \"Carry out repairs at the tenant's home\"\nlawful_basis = \"contract\"\n{routes}"
    )
}

const JOB: &str = "/api/jobs/J-1";

fn job() -> Value {
    json!({"id": "J-1", "tenant_id": "T-1", "contractor_code": "ACME", "status": "open",
           "appointment": {"date": "2025-03-01"}, "tenant_phone": "07700 900123"})
}

async fn gateway() -> (Listening, Gateway) {
    let mut updated = job();
    updated["status"] = json!("completed");
    let up = Upstream::new()
        .route("GET", JOB, Reply::Json(200, job()))
        .route("PATCH", JOB, Reply::Json(200, updated));
    gateway_before(up).await
}

/// The gateway with the write route before `up`, both contractors with their codes.
async fn gateway_before(up: Upstream) -> (Listening, Gateway) {
    let up = up.run().await;
    let gw = Builder::before(&up)
        .kind("repairs-contractor", &type_file())
        .attributes("acme-repairs", "contractor_code = \"ACME\"")
        .attributes("brightfix", "contractor_code = \"BFX\"")
        .start()
        .await;
    (up, gw)
}

async fn patch(gw: &Gateway, recipient: &str, body: &[u8]) -> http::Response {
    let head = format!(
        "PATCH /jobs/J-1 HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        gw.key(recipient),
        body.len()
    );
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    http::send_raw(gw.addr, &bytes).await
}

/// What the upstream was sent other than the lookups' GETs.
fn writes(up: &Listening) -> Vec<crate::support::upstream::Seen> {
    up.requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect()
}

#[tokio::test]
async fn an_accepted_write_goes_upstream_byte_for_byte() {
    let (up, gw) = gateway().await;
    // Odd spacing and key order: the upstream must get exactly these bytes.
    let body = br#"{ "status":"completed",  "appointment": {"date": "2025-03-02"}, "parts": [{"code": "P1"}]}"#;
    let r = patch(&gw, "acme-repairs", body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.raw));
    // The answer is filtered by `allow` as a read's is.
    assert_eq!(
        r.json(),
        json!({"id": "J-1", "status": "completed", "appointment": {"date": "2025-03-01"}})
    );
    let sent = writes(&up);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "PATCH");
    assert_eq!(sent[0].path, JOB);
    assert_eq!(sent[0].body, body.to_vec());
    let records = gw.audit_records();
    let record = records.last().expect("a record");
    assert_eq!(
        record["received"],
        json!(["appointment.date", "parts[].code", "status"])
    );
    assert_eq!(record["lookups"], json!(["/jobs/{request.params.job_id}"]));
    assert!(record["withheld"]
        .as_array()
        .is_some_and(|w| w.contains(&json!("tenant_id"))));
    gw.stop().await;
}

#[tokio::test]
async fn a_field_not_accepted_is_refused_and_nothing_goes_upstream() {
    let (up, gw) = gateway().await;
    let cases: [(&[u8], &str, &str); 4] = [
        (
            br#"{"status": "completed", "cost": 900}"#,
            "field_not_accepted",
            "\"cost\"",
        ),
        (
            br#"{"appointment": {"date": "d", "slot": "am"}}"#,
            "field_not_accepted",
            "\"appointment.slot\"",
        ),
        (
            br#"{"parts": [{"code": "P1", "price": 3}]}"#,
            "field_not_accepted",
            "\"parts[].price\"",
        ),
        (br#"["completed"]"#, "bad_request_body", "<body>"),
    ];
    for (body, code, named) in cases {
        let r = patch(&gw, "acme-repairs", body).await;
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.raw));
        assert_eq!(r.json()["error"], code);
        let message = r.json()["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains(named), "{message}");
        assert!(!message.contains("900"), "a value is named: {message}");
    }
    let r = patch(&gw, "acme-repairs", b"status=completed").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "bad_request_body");
    assert!(up.requests().is_empty(), "{:?}", up.requests());
    let records = gw.audit_records();
    assert_eq!(records.last().expect("a record")["status"], 400);
    gw.stop().await;
}

#[tokio::test]
async fn a_require_that_is_false_refuses_and_nothing_is_written() {
    let (up, gw) = gateway().await;
    let r = patch(&gw, "brightfix", br#"{"status": "completed"}"#).await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.raw));
    assert_eq!(r.json()["error"], "refused_by_policy");
    assert_eq!(r.json()["message"], "refused by policy");
    // Only the lookup's GET went upstream.
    assert!(writes(&up).is_empty());
    assert_eq!(up.requests().len(), 1);
    let records = gw.audit_records();
    let record = records.last().expect("a record");
    assert_eq!(record["error"], "refused_by_policy");
    assert_eq!(
        record["reasons"],
        json!(["only the contractor assigned to the job may update it"])
    );
    gw.stop().await;
}

/// A lookup that fails leaves the require unevaluable: refused, nothing written.
#[tokio::test]
async fn a_require_over_a_failed_lookup_refuses() {
    let up = Upstream::new().route("PATCH", JOB, Reply::Json(200, job()));
    let (up, gw) = gateway_before(up).await;
    let r = patch(&gw, "acme-repairs", br#"{"status": "completed"}"#).await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.raw));
    assert!(writes(&up).is_empty());
    gw.stop().await;
}
