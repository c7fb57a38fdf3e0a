//! What a recipient sees: only allow-listed fields (checked on the raw bytes), only
//! allow-listed headers, and a 502 with no upstream byte whenever the upstream's answer
//! cannot be filtered safely.

use crate::support::gateway::{self, Builder};
use crate::support::upstream::{Reply, Upstream};
use crate::support::{assert_nothing_withheld, http, job};
use serde_json::json;

#[tokio::test]
async fn only_allow_listed_fields_reach_the_recipient() {
    let (_up, gw) = gateway::before_the_job().await;
    let r = http::get(gw.addr, "/jobs/J-1001", Some(gw.key("acme-repairs"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_nothing_withheld(&r.raw);
    assert_eq!(
        r.json(),
        json!({
            "id": "J-1001",
            "status": "scheduled",
            "priority": "urgent",
            "description": "Boiler not heating water",
            "appointment": { "date": "2026-12-03", "slot": "AM" },
            "property": { "address": "12 Minster Yard, Lincoln LN2 1PX" },
            "tenant": {
                "name": "Joan Example",
                "phone": "07700 900142",
                "email": "joan@example.org",
                "access_needs": [
                    { "description": "Uses a wheelchair" },
                    { "description": "Deaf: text, do not call" }
                ]
            }
        })
    );
}

/// A phone number typed into an allowed free-text field reaches the recipient as
/// `[removed]`, the rest of the text as written; the record names the scrubbed paths, and
/// the ledger still verifies.
#[tokio::test]
async fn free_text_is_scrubbed_and_the_record_says_where() {
    let mut job = job();
    job["description"] = json!("Boiler not heating water; tenant says ring 07700 900142 after 5pm");
    job["tenant"]["access_needs"][1]["description"] = json!("Deaf: text 07700 900142");
    let up = Upstream::new().json("/api/jobs/J-1001", job).run().await;
    let scrub = "\n[[route.scrub]]\npaths = [\"description\", \"tenant.access_needs[].description\"]\npatterns = [\"phone\", \"email\"]\n\n[[route]]\nmethod = \"GET\"\npath = \"/jobs\"\n";
    let kind = gateway::REPAIRS_TYPE.replacen(
        "\n[[route]]\nmethod = \"GET\"\npath = \"/jobs\"\n",
        scrub,
        1,
    );
    assert_ne!(kind, gateway::REPAIRS_TYPE);
    let gw = Builder::before(&up)
        .kind("repairs-contractor", &kind)
        .start()
        .await;
    let r = http::get(gw.addr, "/jobs/J-1001", Some(gw.key("acme-repairs"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = r.json();
    assert_eq!(
        sent["description"],
        "Boiler not heating water; tenant says ring [removed] after 5pm"
    );
    assert_eq!(
        sent["tenant"]["access_needs"],
        json!([{ "description": "Uses a wheelchair" }, { "description": "Deaf: text [removed]" }])
    );
    // Scrubbing narrows what the grants pass, and only where it is asked to: the phone field
    // itself is granted and sent.
    assert_eq!(sent["tenant"]["phone"], "07700 900142");
    assert_eq!(r.text().matches("07700 900142").count(), 1);

    let records = gw.audit_records();
    let record = records.last().unwrap();
    assert_eq!(
        record["scrubbed"],
        json!(["description", "tenant.access_needs[].description"])
    );
    assert!(record["disclosed"]
        .as_array()
        .unwrap()
        .contains(&json!("description")));
    crate::support::cli::Cli::new(["audit", "verify"])
        .arg(&gw.audit_path)
        .success()
        .stdout_has(&["1 records"]);
}

#[tokio::test]
async fn an_array_rooted_body_is_filtered_per_element() {
    let body = json!([
        { "id": "J-1", "status": "open", "tenant": { "id": "T-1", "date_of_birth": "1961-04-09" } },
        { "id": "J-2", "status": "closed", "tenant": { "id": "T-2", "date_of_birth": "1961-04-09" } }
    ]);
    let up = Upstream::new().json("/api/jobs", body).run().await;
    let gw = Builder::before(&up).start().await;
    let r = http::get(gw.addr, "/jobs", Some(gw.key("acme-repairs"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!([{ "id": "J-1", "status": "open" }, { "id": "J-2", "status": "closed" }])
    );
    assert!(!r.text().contains("1961-04-09"));
}

#[tokio::test]
async fn only_allow_listed_headers_reach_the_recipient() {
    let body = serde_json::to_vec(&job()).expect("json");
    let up = Upstream::new()
        .route(
            "GET",
            "/api/jobs/J-1001",
            Reply::Raw {
                status: 200,
                headers: vec![
                    (
                        "Content-Type".into(),
                        "application/json; charset=utf-8".into(),
                    ),
                    ("Set-Cookie".into(), "upstream-session=1".into()),
                    ("Server".into(), "HousingSystem/9.1".into()),
                    ("X-Tenant-Risk".into(), "high".into()),
                    ("Cache-Control".into(), "public, max-age=3600".into()),
                    ("ETag".into(), "\"T-000142-v7\"".into()),
                ],
                body,
            },
        )
        .run()
        .await;
    let gw = Builder::before(&up).start().await;
    let r = http::get(gw.addr, "/jobs/J-1001", Some(gw.key("acme-repairs"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // `connection: close` answers the test client's own `Connection: close`.
    let mut names: Vec<&str> = r
        .headers
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| *n != "connection")
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "cache-control",
            "content-length",
            "content-type",
            "date",
            "x-request-id"
        ]
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("content-length")
            .and_then(|v| v.parse::<usize>().ok()),
        Some(r.body.len())
    );
    assert_nothing_withheld(&r.raw);
}

#[tokio::test]
async fn a_gzip_body_is_decoded_then_filtered() {
    let up = Upstream::new()
        .route("GET", "/api/jobs/J-1001", Reply::Gzip(job()))
        .run()
        .await;
    let gw = Builder::before(&up).start().await;
    let r = http::get(gw.addr, "/jobs/J-1001", Some(gw.key("acme-repairs"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["tenant"]["name"], "Joan Example");
    assert_nothing_withheld(&r.raw);
}

/// `bytes` as one gzip member.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// A gzip'd body is held to the rules of a plain one: anything after the JSON value, whether
/// inside the member, in a second member or as bytes after the member, is refused, and none
/// of it reaches the recipient.
#[tokio::test]
async fn gzip_trailing_data_is_refused_as_for_a_plain_body() {
    let doc = serde_json::to_vec(&job()).expect("json");
    let with_garbage = [&doc[..], b"}}}garbage"].concat();
    let second = serde_json::to_vec(&json!({ "id": "J-1002" })).expect("json");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage after the JSON, inside the member",
            gzip(&with_garbage),
            "upstream_malformed",
        ),
        (
            "garbage after the member",
            [gzip(&doc), b"}}}garbage".to_vec()].concat(),
            "upstream_broken_body",
        ),
        (
            "a second member holding more JSON",
            [gzip(&doc), gzip(&second)].concat(),
            "upstream_malformed",
        ),
        (
            "a second member holding the garbage",
            [gzip(&doc), gzip(b"}}}garbage")].concat(),
            "upstream_malformed",
        ),
    ];
    let mut upstream = Upstream::new().route("GET", "/api/jobs/J-1001", Reply::Gzip(job()));
    for (i, (_, body, _)) in cases.iter().enumerate() {
        let reply = raw("application/json", Some("gzip"), body);
        upstream = upstream.route("GET", &format!("/api/jobs/case-{i}"), reply);
    }
    let up = upstream.run().await;
    let gw = Builder::before(&up).start().await;
    let key = gw.key("acme-repairs").to_string();
    for (i, (name, _, code)) in cases.iter().enumerate() {
        let r = http::get(gw.addr, &format!("/jobs/case-{i}"), Some(&key)).await;
        assert_eq!(r.status, 502, "{name}: {}", r.text());
        assert_eq!(r.error(), *code, "{name}");
        assert!(
            !r.text().contains("J-100"),
            "{name}: upstream bytes relayed"
        );
        assert_nothing_withheld(&r.raw);
    }
    // A single, whole member is still served.
    let r = http::get(gw.addr, "/jobs/J-1001", Some(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], "J-1001");
}

fn raw(content_type: &str, encoding: Option<&str>, body: &[u8]) -> Reply {
    let mut headers = vec![("Content-Type".to_string(), content_type.to_string())];
    if let Some(e) = encoding {
        headers.push(("Content-Encoding".to_string(), e.to_string()));
    }
    Reply::Raw {
        status: 200,
        headers,
        body: body.to_vec(),
    }
}

/// Every unsafe answer gets the same treatment: the given status, the gateway's own error
/// body, and none of the upstream's bytes.
#[tokio::test]
async fn unsafe_upstream_answers_are_refused_without_relaying_a_byte() {
    let secret = "1961-04-09";
    let doc = format!(r#"{{"id":"J-1001","tenant":{{"date_of_birth":"{secret}"}}}}"#);
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let big = format!(
        r#"{{"id":"J-1001","pad":"{}","dob":"{secret}"}}"#,
        "x".repeat(70 * 1024)
    );
    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        (
            "html",
            raw("text/html", None, doc.as_bytes()),
            502,
            "upstream_not_json",
        ),
        (
            "no content type",
            Reply::Raw {
                status: 200,
                headers: vec![],
                body: doc.clone().into_bytes(),
            },
            502,
            "upstream_not_json",
        ),
        (
            "latin-1",
            raw("application/json; charset=iso-8859-1", None, doc.as_bytes()),
            502,
            "upstream_not_json",
        ),
        (
            "brotli",
            raw("application/json", Some("br"), doc.as_bytes()),
            502,
            "upstream_bad_encoding",
        ),
        (
            "bad gzip",
            raw("application/json", Some("gzip"), doc.as_bytes()),
            502,
            "upstream_broken_body",
        ),
        (
            "malformed",
            raw("application/json", None, format!("{doc},").as_bytes()),
            502,
            "upstream_malformed",
        ),
        (
            "truncated",
            raw("application/json", None, &doc.as_bytes()[..doc.len() - 2]),
            502,
            "upstream_malformed",
        ),
        (
            "duplicate key",
            raw(
                "application/json",
                None,
                format!(r#"{{"id":"J-1001","tenant":{{"name":"a","name":"{secret}"}}}}"#)
                    .as_bytes(),
            ),
            502,
            "upstream_malformed",
        ),
        (
            "too deep",
            raw("application/json", None, deep.as_bytes()),
            502,
            "upstream_malformed",
        ),
        (
            "too large",
            raw("application/json", None, big.as_bytes()),
            502,
            "upstream_too_large",
        ),
        ("endless", Reply::Endless, 502, "upstream_too_large"),
        (
            "reset mid-body",
            Reply::ResetMidBody {
                first: doc.as_bytes()[..20].to_vec(),
            },
            502,
            "upstream_broken_body",
        ),
        (
            "redirect",
            Reply::Redirect(302, "http://127.0.0.1:1/elsewhere".into()),
            502,
            "upstream_redirect",
        ),
        (
            "not modified",
            Reply::Raw {
                status: 304,
                headers: vec![],
                body: vec![],
            },
            502,
            "upstream_redirect",
        ),
        (
            "not found",
            Reply::Json(404, json!({ "error": "no job", "tenant": secret })),
            404,
            "upstream_error",
        ),
        (
            "server error",
            Reply::Json(500, json!({ "trace": secret })),
            500,
            "upstream_error",
        ),
        (
            "unavailable",
            Reply::Json(503, json!({ "trace": secret })),
            503,
            "upstream_error",
        ),
        ("hang", Reply::Hang, 504, "upstream_timeout"),
        (
            "head then hang",
            Reply::HeadThenHang {
                status: 200,
                content_type: "application/json".into(),
                declared_len: 500,
                first: doc.as_bytes()[..20].to_vec(),
            },
            504,
            "upstream_timeout",
        ),
    ];
    let mut upstream = Upstream::new();
    for (i, (_, reply, _, _)) in cases.iter().enumerate() {
        upstream = upstream.route("GET", &format!("/api/jobs/case-{i}"), reply.clone());
    }
    let up = upstream.run().await;
    let gw = Builder::before(&up).start().await;
    let key = gw.key("acme-repairs").to_string();
    let checks = cases
        .iter()
        .enumerate()
        .map(|(i, (name, _, status, code))| {
            let key = key.clone();
            let addr = gw.addr;
            let (name, status, code) = (name.to_string(), *status, code.to_string());
            async move {
                let started = std::time::Instant::now();
                let r = http::get(addr, &format!("/jobs/case-{i}"), Some(&key)).await;
                assert_eq!(r.status, status, "{name}: {}", r.text());
                assert_eq!(r.error(), code, "{name}");
                assert!(
                    !r.text().contains(secret),
                    "{name}: upstream bytes were relayed"
                );
                assert!(
                    !r.text().contains("J-1001"),
                    "{name}: upstream bytes were relayed"
                );
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(5),
                    "{name}: took {:?}",
                    started.elapsed()
                );
            }
        });
    futures_join_all(checks).await;
    // Every one of them is in the audit, with its status.
    let records = gw.audit_records();
    assert_eq!(records.len(), cases.len());
    for (_, _, status, _) in &cases {
        assert!(records.iter().any(|r| r["status"] == *status));
    }
    eprintln!(
        "unsafe upstream summary: {n}/{n} refused with the gateway's own body and audited, \
         0 upstream bytes relayed, each within 5 s (incl. reset mid-body 502, hang 504, head \
         then hang 504; upstream timeout 2 s)",
        n = cases.len()
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_502() {
    let gw = Builder::closed_upstream().start().await;
    let r = http::get(gw.addr, "/jobs/J-1001", Some(gw.key("acme-repairs"))).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.error(), "upstream_unavailable");
}

#[tokio::test]
async fn no_content_passes_with_no_body() {
    let up = Upstream::new()
        .route(
            "GET",
            "/api/jobs/J-1001",
            Reply::Raw {
                status: 204,
                headers: vec![],
                body: vec![],
            },
        )
        .run()
        .await;
    let gw = Builder::before(&up).start().await;
    let r = http::get(gw.addr, "/jobs/J-1001", Some(gw.key("acme-repairs"))).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
}

/// Runs the futures concurrently (the slow cases wait on the timeout together).
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    for h in handles {
        if let Err(e) = h.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}
