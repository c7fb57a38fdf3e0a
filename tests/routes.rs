//! Request-target hygiene, route and method grants, query allow-lists, repeatable parameters
//! and bindings: every refusal happens before the upstream sees anything.

use crate::support::gateway::{self, Builder};
use crate::support::http;
use crate::support::job;
use crate::support::upstream::Upstream;
use serde_json::json;

#[tokio::test]
async fn ungranted_paths_and_methods_are_403() {
    let (up, gw) = gateway::before_the_job().await;
    let key = gw.key("acme-repairs").to_string();
    for (method, target, code) in [
        ("GET", "/tenants/T-000142", "route_not_granted"),
        ("GET", "/jobs/J-1001/notes", "route_not_granted"),
        ("GET", "/", "route_not_granted"),
        ("DELETE", "/jobs/J-1001", "method_not_granted"),
        ("POST", "/jobs/J-1001", "method_not_granted"),
        ("get", "/jobs/J-1001", "method_not_granted"),
    ] {
        let r = http::request(gw.addr, method, target, Some(&key), &[]).await;
        assert_eq!(r.status, 403, "{method} {target}: {}", r.text());
        assert_eq!(r.error(), code, "{method} {target}");
    }
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn ambiguous_targets_are_400_and_reach_nothing() {
    let (up, gw) = gateway::before_the_job().await;
    let key = gw.key("acme-repairs").to_string();
    for target in [
        "/jobs/J-1001%2Fnotes",
        "/jobs/J-1001%2fnotes",
        "/jobs/J-1001%5Cx",
        "/jobs/..",
        "/jobs/%2e%2e",
        "/jobs/.",
        "/jobs/./J-1001",
        "/jobs/../tenants/T-000142",
        "//jobs/J-1001",
        "/jobs//J-1001",
        "/jobs/J-1001/",
        "/jobs/J-1001%00",
        "/jobs/J-1001%0a",
        "/jobs/J-1001%7f",
        "/jobs/J-1001%252e",
        "/jobs/J-1001;x=1",
        "/jobs/J-1001%zz",
        "/jobs/J%C3%A9",
        "http://127.0.0.1/jobs/J-1001",
    ] {
        let r = http::get(gw.addr, target, Some(&key)).await;
        assert_eq!(r.status, 400, "{target}: {}", r.text());
        assert_eq!(r.error(), "malformed_target", "{target}");
    }
    // Raw bytes hyper refuses itself also never reach the upstream.
    let r = http::send_raw(
        gw.addr,
        format!("GET /jobs/J\\1001 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(r.status == 400 || r.status == 0, "{}", r.text());
    assert_eq!(up.count(), 0, "an ambiguous target reached the upstream");
}

#[tokio::test]
async fn only_the_routes_query_parameters_pass() {
    let up = Upstream::new()
        .json(
            "/api/jobs",
            json!([{ "id": "J-1", "status": "open", "tenant": { "id": "T-1" } }]),
        )
        .run()
        .await;
    let gw = Builder::before(&up).start().await;
    let key = gw.key("acme-repairs").to_string();
    for target in [
        "/jobs?tenant=T-1",
        "/jobs?status=open&status=closed",
        "/jobs?status=open&&page=2",
        "/jobs?status=%00",
        "/jobs?STATUS=open",
    ] {
        let r = http::get(gw.addr, target, Some(&key)).await;
        assert_eq!(r.status, 400, "{target}: {}", r.text());
        assert_eq!(r.error(), "query_not_allowed", "{target}");
    }
    assert_eq!(up.count(), 0);
    let r = http::get(gw.addr, "/jobs?status=open&page=2", Some(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!([{ "id": "J-1", "status": "open" }]));
    let seen = &up.requests()[0];
    assert_eq!(seen.path, "/api/jobs");
    assert_eq!(seen.query.as_deref(), Some("status=open&page=2"));
}

#[tokio::test]
async fn path_parameters_are_forwarded_re_encoded() {
    let up = Upstream::new()
        .json("/api/jobs/J~1.a_b-c", job())
        .run()
        .await;
    let gw = Builder::before(&up).start().await;
    let key = gw.key("acme-repairs").to_string();
    let r = http::get(gw.addr, "/jobs/J%7E1.a_b-c", Some(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.requests()[0].path, "/api/jobs/J~1.a_b-c");
}

/// A body larger than `max_request_body` is refused with 413 on its declared length, before
/// it is read, and a GET that carries a body at all is refused: nothing reaches the upstream.
#[tokio::test]
async fn oversized_and_unexpected_request_bodies_are_refused_before_reading() {
    let (up, gw) = gateway::before_the_job().await;
    let key = gw.key("acme-repairs").to_string();
    // The test config's limit is 1 KiB; only the head is sent, so a gateway that waited to
    // read the body would hang here instead of answering.
    let head = format!(
        "GET /jobs/J-1001 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Length: 5000000\r\nConnection: close\r\n\r\n"
    );
    let r = http::send_raw(gw.addr, head.as_bytes()).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.error(), "request_too_large");
    let r = http::send_raw(
        gw.addr,
        format!("GET /jobs/J-1001 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}").as_bytes(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(up.count(), 0);
}

/// A contractor type whose `GET /jobs` binds `contractor` to the recipient's contractor code
/// and lets `StatusCode` repeat; a condition grants `priority` when it sees the bound value
/// and both status codes.
const BOUND_JOBS: &str = r#"type = "jobs-contractor"
purpose = "Carry out repairs"
lawful_basis = "contract"

[[route]]
method = "GET"
path = "/jobs"
query = ["status", "StatusCode[]"]
subjects = ["[].tenant.id"]
allow = ["[].id", "[].status"]

[[route.bind]]
param = "query.contractor"
value = "recipient.attributes.contractor_code"

[[route.when]]
condition = "request.query.contractor == 'KBS' && request.query.StatusCode == ['20', '80']"
reason = "the contractor's own jobs in both states"
allow = ["[].priority"]
"#;

async fn bound_jobs() -> (
    crate::support::upstream::Listening,
    crate::support::gateway::Gateway,
) {
    let up = Upstream::new()
        .json(
            "/api/jobs",
            json!([{ "id": "J-1", "status": "open", "priority": "high", "tenant": { "id": "T-1" } }]),
        )
        .run()
        .await;
    let gw = Builder::before(&up)
        .recipient_of("kbs", "jobs-contractor", BOUND_JOBS)
        .attributes("kbs", "contractor_code = \"KBS\"")
        .start()
        .await;
    (up, gw)
}

#[tokio::test]
async fn a_bound_parameter_is_set_upstream_and_another_value_is_refused() {
    let (up, gw) = bound_jobs().await;
    let key = gw.key("kbs").to_string();
    let r = http::get(gw.addr, "/jobs?status=open", Some(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!([{ "id": "J-1", "status": "open" }]));
    assert_eq!(
        up.requests()[0].query.as_deref(),
        Some("status=open&contractor=KBS")
    );
    // The same value is fine; another is refused before anything goes upstream.
    let r = http::get(gw.addr, "/jobs?contractor=KBS", Some(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.requests()[1].query.as_deref(), Some("contractor=KBS"));
    let r = http::get(gw.addr, "/jobs?status=open&contractor=ACME", Some(&key)).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.error(), "binding_mismatch");
    assert!(
        !r.text().contains("KBS") && !r.text().contains("ACME"),
        "{}",
        r.text()
    );
    let r = http::get(gw.addr, "/jobs?contractor=KBS&contractor=KBS", Some(&key)).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error(), "query_not_allowed");
    assert_eq!(up.count(), 2, "a refused request reached the upstream");
    let records = gw.audit_records();
    let refused = &records[records.len() - 2];
    assert_eq!(refused["status"], 403);
    assert_eq!(refused["error"], "binding_mismatch");
    assert_eq!(refused["recipient"], "kbs");
}

#[tokio::test]
async fn a_repeatable_parameter_is_forwarded_in_order_and_read_as_a_list() {
    let (up, gw) = bound_jobs().await;
    let key = gw.key("kbs").to_string();
    let r = http::get(gw.addr, "/jobs?StatusCode=20&StatusCode=80", Some(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The condition saw the bound contractor and the list of both codes.
    assert_eq!(
        r.json(),
        json!([{ "id": "J-1", "status": "open", "priority": "high" }])
    );
    assert_eq!(
        up.requests()[0].query.as_deref(),
        Some("StatusCode=20&StatusCode=80&contractor=KBS")
    );
    // `status` may not repeat.
    let r = http::get(gw.addr, "/jobs?status=a&status=b", Some(&key)).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error(), "query_not_allowed");
    assert_eq!(up.count(), 1);
}
