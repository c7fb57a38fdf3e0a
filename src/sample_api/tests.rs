use std::sync::Arc;

use ::http::header::AUTHORIZATION;
use ::http::{HeaderMap, Request};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

fn today() -> Date {
    "2026-03-14".parse().unwrap()
}

fn data() -> SampleData {
    SampleData::generate(today())
}

fn value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

// === dates ===

#[test]
fn dates_round_trip_and_reject_impossible_days() {
    let d: Date = "2024-02-29".parse().unwrap();
    assert_eq!(d.to_string(), "2024-02-29");
    assert_eq!(d.add_days(1).to_string(), "2024-03-01");
    assert_eq!(d.add_days(-365 - 59).to_string(), "2023-01-01");
    assert_eq!(
        Date::from_ymd(1970, 1, 1)
            .unwrap()
            .add_days(0)
            .days_since(d),
        -19782
    );
    for bad in [
        "2025-02-29",
        "2025-13-01",
        "2025-04-31",
        "2025-1-01",
        "20250101",
        "abcd-ef-gh",
    ] {
        assert!(
            matches!(bad.parse::<Date>(), Err(Error::InvalidDate(_))),
            "{bad}"
        );
    }
}

// === generation ===

#[test]
fn same_date_gives_same_data() {
    let a = data();
    let b = data();
    assert_eq!(value(&a.tenants()), value(&b.tenants()));
    assert_eq!(value(&a.properties()), value(&b.properties()));
    assert_eq!(a.jobs(), b.jobs());
    let later = SampleData::generate(today().add_days(1));
    assert_ne!(value(&a.tenants()), value(&later.tenants()));
}

#[test]
fn counts_and_unique_ids() {
    let d = data();
    assert_eq!(d.tenants().len(), TENANT_COUNT);
    assert_eq!(d.properties().len(), PROPERTY_COUNT);
    assert_eq!(d.jobs().len(), JOB_COUNT);
    assert_eq!(d.tenant("T-0200").unwrap().id, "T-0200");
    assert_eq!(d.property("P-0150").unwrap().id, "P-0150");
    assert_eq!(d.job("J-0300").unwrap().id, "J-0300");
    let formers = d
        .tenants()
        .iter()
        .filter(|t| t.tenancy.status == TenancyStatus::Former)
        .count();
    assert!((10..60).contains(&formers), "{formers} former tenants");
}

#[test]
fn invented_identifiers_cannot_be_real() {
    let d = data();
    let mut phones = std::collections::HashSet::new();
    for t in d.tenants() {
        let digits = t
            .phone
            .strip_prefix("07700 900")
            .unwrap_or_else(|| panic!("{}", t.phone));
        assert!(
            digits.len() == 3 && digits.bytes().all(|b| b.is_ascii_digit()),
            "{}",
            t.phone
        );
        assert!(phones.insert(t.phone.clone()), "duplicate {}", t.phone);
        assert!(t.ni_number.starts_with("QQ "), "{}", t.ni_number);
        assert_eq!(t.ni_number.len(), "QQ 12 34 56 C".len());
        if let Some(email) = &t.email {
            assert!(
                email.ends_with("@example.org") || email.ends_with("@example.net"),
                "{email}"
            );
        }
        let outward = t.address.postcode.split(' ').next().unwrap();
        assert!(
            ["LN1", "LN2", "LN3", "LN4", "LN5", "LN6"].contains(&outward),
            "{}",
            t.address.postcode
        );
    }
}

#[test]
fn records_are_consistent() {
    let d = data();
    for p in d.properties() {
        for id in &p.occupant_ids {
            let t = d.tenant(id).unwrap();
            assert_eq!(t.tenancy.status, TenancyStatus::Current);
            assert_eq!(t.property_id, p.id);
            assert_eq!(t.address, p.address);
        }
    }
    for t in d.tenants() {
        assert!(t.date_of_birth < today());
        assert!(t.tenancy.start <= today());
        match t.tenancy.status {
            TenancyStatus::Current => {
                assert!(t.tenancy.end.is_none() && t.forwarding_address.is_none());
                assert!(d
                    .property(&t.property_id)
                    .unwrap()
                    .occupant_ids
                    .contains(&t.id));
            }
            TenancyStatus::Former => {
                let end = t.tenancy.end.unwrap();
                assert!(t.tenancy.start < end && end < today());
                assert!(t.forwarding_address.is_some());
                // Left before anyone now living there moved in.
                for other in d.occupants(&t.property_id).unwrap() {
                    assert!(other.tenancy.start > end, "{} vs {}", t.id, other.id);
                }
            }
        }
        if !t.sharing_restrictions.is_empty() {
            assert!(!t.consent.research);
        }
    }
    for j in d.jobs() {
        let t = d.tenant(&j.tenant_id).unwrap();
        assert_eq!(t.property_id, j.property_id);
        assert!(CONTRACTORS.contains(&j.contractor_id.as_str()));
        assert_eq!(
            j.appointment.is_some(),
            !matches!(j.status, JobStatus::Reported | JobStatus::Cancelled)
        );
    }
    // Every state occurs, and some generated markers have lapsed.
    for s in [
        "reported",
        "scheduled",
        "in_progress",
        "completed",
        "cancelled",
    ] {
        let filter = JobFilter {
            statuses: vec![s],
            ..JobFilter::default()
        };
        assert!(!d.jobs_matching(&filter).is_empty(), "{s}");
    }
    let markers: Vec<_> = d
        .tenants()
        .iter()
        .flat_map(|t| &t.caution_markers)
        .collect();
    assert!(markers.iter().any(|m| m.review_by < today()));
    assert!(markers.iter().any(|m| m.review_by > today()));
}

// === showcase ===

#[test]
fn showcase_tenant_with_markers() {
    let d = data();
    let t = d.tenant(TENANT_WITH_MARKERS).unwrap();
    assert_eq!(t.property_id, PROPERTY_WITH_MARKERS);
    let marker = |id: &str| t.caution_markers.iter().find(|m| m.id == id).unwrap();
    let informed = marker(MARKER_INFORMED_CURRENT);
    assert!(informed.tenant_informed && informed.applied < today() && informed.review_by > today());
    let hidden = marker(MARKER_NOT_INFORMED);
    assert!(!hidden.tenant_informed && hidden.review_by > today());
    let expired = marker(MARKER_EXPIRED);
    assert!(expired.tenant_informed && expired.review_by < today());
    assert_eq!(value(t)["arrears"], serde_json::json!(1432.17));
}

#[test]
fn showcase_jobs() {
    let d = data();
    let j1 = d.job(JOB_ACME_SCHEDULED).unwrap();
    assert_eq!(
        (j1.status, j1.contractor_id.as_str()),
        (JobStatus::Scheduled, "acme-repairs")
    );
    assert!(j1.appointment.unwrap().date > today());
    let j2 = d.job(JOB_BRIGHTFIX_SAME_TENANT).unwrap();
    assert_eq!(j2.contractor_id, "brightfix");
    let j3 = d.job(JOB_ACME_COMPLETED).unwrap();
    assert_eq!(
        (j3.status, j3.contractor_id.as_str()),
        (JobStatus::Completed, "acme-repairs")
    );
    for j in [j1, j2, j3] {
        assert_eq!(j.tenant_id, TENANT_WITH_MARKERS);
        assert_eq!(j.property_id, PROPERTY_WITH_MARKERS);
    }
    let j4 = d.job(JOB_NO_LONE_WORKING).unwrap();
    assert_eq!(
        (j4.contractor_id.as_str(), j4.tenant_id.as_str()),
        ("northgate-gas", TENANT_NO_LONE_WORKING)
    );
}

#[test]
fn showcase_other_tenants() {
    let d = data();
    let objector = d.tenant(TENANT_RESEARCH_OBJECTION).unwrap();
    assert_eq!(objector.sharing_restrictions, ["research"]);
    assert!(!objector.consent.research);

    let former = d.former_tenant(FORMER_TENANT).unwrap();
    assert_eq!(former.tenancy.status, TenancyStatus::Former);
    assert_eq!(former.tenancy.end, Some(today().add_days(-200)));
    assert_eq!(
        former.forwarding_address.as_ref().unwrap().postcode,
        "LN5 9QZ"
    );
    assert!(former.arrears_pence > 0);
    assert!(d.former_tenant(TENANT_WITH_MARKERS).is_none());
    assert!(!d
        .property(&former.property_id)
        .unwrap()
        .occupant_ids
        .contains(&former.id));

    let nlw = d.tenant(TENANT_NO_LONE_WORKING).unwrap();
    assert!(nlw.no_lone_working && !nlw.communication_needs.is_empty());
}

// === queries ===

#[test]
fn postcode_district_matches_outward_code_only() {
    let d = data();
    let ln2 = d.tenants_in_district("ln2");
    assert!(!ln2.is_empty());
    assert!(ln2.iter().all(|t| t.address.postcode.starts_with("LN2 ")));
    let total: usize = (1..=6)
        .map(|n| d.tenants_in_district(&format!("LN{n}")).len())
        .sum();
    assert_eq!(total, TENANT_COUNT);
    assert!(d.tenants_in_district("LN").is_empty());
    assert!(d.tenants_in_district("LN2 1").is_empty());
}

#[test]
fn bearer_check() {
    let mut headers = HeaderMap::new();
    assert!(bearer_matches(&headers, None));
    assert!(!bearer_matches(&headers, Some("s3cret")));
    headers.insert(AUTHORIZATION, "Bearer s3cret".parse().unwrap());
    assert!(bearer_matches(&headers, Some("s3cret")));
    assert!(!bearer_matches(&headers, Some("s3cre")));
    headers.insert(AUTHORIZATION, "bearer s3cret".parse().unwrap());
    assert!(bearer_matches(&headers, Some("s3cret")));
    headers.insert(AUTHORIZATION, "Basic s3cret".parse().unwrap());
    assert!(!bearer_matches(&headers, Some("s3cret")));
    headers.append(AUTHORIZATION, "Bearer s3cret".parse().unwrap());
    assert!(!bearer_matches(&headers, Some("s3cret")), "two headers");
}

// === over HTTP ===

struct Running {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(token: Option<&str>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let token = token.map(str::to_owned);
    let task = tokio::spawn(async move {
        serve(listener, Arc::new(data()), "/api", token, async {
            let _ = stopped.await;
        })
        .await;
    });
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

struct Reply {
    status: u16,
    head: String,
    body: Value,
}

/// Reads one response off a keep-alive connection: head, then Content-Length bytes.
async fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed mid-head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap();
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let status = head[9..12].parse().unwrap();
    let body = serde_json::from_slice(&buf[head_end..head_end + length]).unwrap();
    Reply { status, head, body }
}

async fn get_on(stream: &mut TcpStream, target: &str, auth: Option<&str>) -> Reply {
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {target} HTTP/1.1\r\nHost: sample\r\n{auth}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    read_reply(stream).await
}

async fn get(server: &Running, target: &str) -> Reply {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    get_on(&mut stream, target, None).await
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }
}

#[tokio::test]
async fn routes_answer_with_json() {
    let server = start(None).await;
    let d = data();

    let job = get(&server, "/api/jobs/J-0001").await;
    assert_eq!(job.status, 200);
    assert!(job
        .head
        .to_ascii_lowercase()
        .contains("content-type: application/json"));
    assert_eq!(job.body, value(&d.job_view(d.job("J-0001").unwrap())));
    assert_eq!(job.body["tenant"]["id"], "T-0001");
    assert_eq!(job.body["property"]["id"], "P-0001");
    assert_eq!(
        job.body["tenant"]["caution_markers"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let tenant = get(&server, "/api/tenants/T-0002").await;
    assert_eq!(
        tenant.body["sharing_restrictions"],
        serde_json::json!(["research"])
    );

    let property = get(&server, "/api/properties/P-0001").await;
    assert_eq!(property.body["occupant_ids"], serde_json::json!(["T-0001"]));
    assert!(["flat", "house", "bungalow"].contains(&property.body["type"].as_str().unwrap()));

    let occupants = get(&server, "/api/properties/P-0001/occupants").await;
    assert_eq!(occupants.body.as_array().unwrap().len(), 1);
    assert_eq!(occupants.body[0]["id"], "T-0001");

    let former = get(&server, "/api/former-tenants/T-0003").await;
    assert_eq!(former.status, 200);
    assert_eq!(former.body["tenancy"]["status"], "former");
    assert!(former.body["forwarding_address"].is_object());

    server.stop().await;
}

#[tokio::test]
async fn list_filters() {
    let server = start(None).await;
    let d = data();

    let acme_scheduled = get(
        &server,
        "/api/jobs?status=scheduled&contractor_id=acme-repairs&page=2",
    )
    .await;
    let list = acme_scheduled.body.as_array().unwrap();
    assert_eq!(
        list.len(),
        d.jobs_matching(&JobFilter {
            statuses: vec!["scheduled"],
            contractor_id: Some("acme-repairs"),
            ..JobFilter::default()
        })
        .len()
    );
    assert!(list.iter().any(|j| j["id"] == "J-0001"));
    assert!(list
        .iter()
        .all(|j| j["status"] == "scheduled" && j["contractor_id"] == "acme-repairs"));

    // As the housing system names contractors, with a repeated status, as front ends send it.
    let acme_open = get(
        &server,
        "/api/jobs?contractor=ACM&status=scheduled&status=in_progress&property_id=P-0001",
    )
    .await;
    let ids: Vec<&str> = acme_open
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["J-0001"], "acme's open jobs at P-0001");
    let open_anywhere = get(
        &server,
        "/api/jobs?contractor=ACM&status=scheduled&status=in_progress",
    )
    .await;
    let open = open_anywhere.body.as_array().unwrap();
    assert!(
        open.iter().any(|j| j["status"] == "in_progress"),
        "both statuses"
    );
    assert!(open.iter().all(|j| j["contractor_code"] == "ACM"
        && matches!(j["status"].as_str(), Some("scheduled" | "in_progress"))));

    let all = get(&server, "/api/jobs?unknown=1").await;
    assert_eq!(all.body.as_array().unwrap().len(), JOB_COUNT);
    let empty_filter = get(&server, "/api/jobs?status=").await;
    assert_eq!(empty_filter.body.as_array().unwrap().len(), JOB_COUNT);
    let in_progress = get(&server, "/api/jobs?status=in%5Fprogress").await;
    assert!(in_progress
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["status"] == "in_progress"));

    let ln2 = get(&server, "/api/tenants?postcode_district=LN2").await;
    let ln2 = ln2.body.as_array().unwrap();
    assert_eq!(ln2.len(), d.tenants_in_district("LN2").len());
    assert!(ln2.iter().all(|t| t["address"]["postcode"]
        .as_str()
        .unwrap()
        .starts_with("LN2 ")));

    let everyone = get(&server, "/api/tenants").await;
    assert_eq!(everyone.body.as_array().unwrap().len(), TENANT_COUNT);

    server.stop().await;
}

#[tokio::test]
async fn not_found() {
    let server = start(None).await;
    for target in [
        "/api/jobs/J-9999",
        "/api/tenants/T-0000",
        "/api/properties/P-9999",
        "/api/properties/P-9999/occupants",
        "/api/former-tenants/T-0001", // current tenant
        "/api/former-tenants/T-9999",
        "/api/nothing",
        "/api/jobs/J-0001/extra",
        "/jobs/J-0001", // outside the base
        "/apijobs/J-0001",
    ] {
        let reply = get(&server, target).await;
        assert_eq!(reply.status, 404, "{target}");
        assert_eq!(
            reply.body,
            serde_json::json!({ "error": "not found" }),
            "{target}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn keep_alive_and_bearer_token() {
    let server = start(Some("upstream-key")).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let denied = get_on(&mut stream, "/api/jobs/J-0001", None).await;
    assert_eq!(denied.status, 401);
    assert_eq!(denied.body, serde_json::json!({ "error": "unauthorized" }));
    let wrong = get_on(&mut stream, "/api/jobs/J-0001", Some("other-key")).await;
    assert_eq!(wrong.status, 401);
    // Same connection, three requests: keep-alive works.
    let ok = get_on(&mut stream, "/api/jobs/J-0001", Some("upstream-key")).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["id"], "J-0001");
    server.stop().await;
}

/// A write merges into the job and later reads see it; a body that is not an object, or
/// an unknown job, changes nothing.
#[tokio::test]
async fn a_job_takes_writes_and_answers_with_the_updated_job() {
    use http_body_util::BodyExt;
    let d = data();
    let writes = http::Writes::default();
    let patch = Request::patch("/api/jobs/J-0001").body(()).unwrap();
    let body = br#"{"status": "completed", "completion_notes": "boiler replaced"}"#;
    let r = http::handle_with(&d, &writes, "/api", None, &patch, body);
    assert_eq!(r.status(), 200);
    let get = Request::get("/api/jobs/J-0001").body(()).unwrap();
    let after = http::handle_with(&d, &writes, "/api", None, &get, b"");
    let after = after.into_body().collect().await.unwrap().to_bytes();
    let after: Value = serde_json::from_slice(&after).unwrap();
    assert_eq!(after["status"], "completed");
    assert_eq!(after["completion_notes"], "boiler replaced");
    assert_eq!(after["id"], "J-0001");
    let bad = http::handle_with(&d, &writes, "/api", None, &patch, b"[1]");
    assert_eq!(bad.status(), 400);
    let unknown = Request::patch("/api/jobs/J-9999999").body(()).unwrap();
    assert_eq!(
        http::handle_with(&d, &writes, "/api", None, &unknown, body).status(),
        404
    );
}

#[test]
fn handle_rejects_other_methods_and_accepts_root_base() {
    let d = data();
    let delete = Request::delete("/api/jobs/J-0001").body(()).unwrap();
    assert_eq!(handle(&d, "/api", None, &delete).status(), 405);
    let at_root = Request::get("/jobs/J-0002").body(()).unwrap();
    assert_eq!(handle(&d, "", None, &at_root).status(), 200);
    let trailing = Request::get("/api/jobs/J-0002").body(()).unwrap();
    assert_eq!(handle(&d, "api/", None, &trailing).status(), 200);
}

// === the policy test bodies ===

/// Everyone the policy tests' upstream bodies (`rules/tests/bodies/`) name is the person of
/// that id in the sample API, with the same name, date of birth and contact details: the
/// bodies are records a DPO can look up in the demo, not a second, contradicting cast.
#[test]
fn the_policy_test_bodies_name_people_as_the_sample_api_does() {
    let data = SampleData::generate("2026-06-01".parse().unwrap());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/tests/bodies");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let body: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut people = Vec::new();
        people_in(&body, &mut people);
        for person in people {
            let id = person["id"].as_str().unwrap();
            let known = data
                .tenant(id)
                .or_else(|| data.former_tenant(id))
                .unwrap_or_else(|| panic!("{}: {id} is not in the sample API", path.display()));
            let known = value(known);
            for field in ["name", "date_of_birth", "phone", "email", "address"] {
                if let Some(v) = person.get(field) {
                    assert_eq!(v, &known[field], "{}: {id}'s {field}", path.display());
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 40, "only {checked} fields checked");
}

/// The objects in `v` that are people: an `id` like `T-0001` and a `name`.
fn people_in<'v>(v: &'v Value, out: &mut Vec<&'v Value>) {
    match v {
        Value::Object(map) => {
            let is_person = map.get("id").and_then(Value::as_str).is_some_and(|id| {
                id.len() == 6 && id.starts_with("T-") && id[2..].bytes().all(|b| b.is_ascii_digit())
            }) && map.contains_key("name");
            if is_person {
                out.push(v);
            }
            map.values().for_each(|child| people_in(child, out));
        }
        Value::Array(items) => items.iter().for_each(|child| people_in(child, out)),
        _ => {}
    }
}

#[tokio::test]
async fn alerts_are_a_second_resource_written_as_real_systems_write_them() {
    let server = start(None).await;
    let alerts = get(&server, "/api/properties/P-0001/alerts").await;
    assert_eq!(alerts.status, 200);
    assert_eq!(alerts.body["property_id"], "P-0001");
    let list = alerts.body["alerts"].as_array().unwrap();
    let ids: Vec<&str> = list.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["CM-0001", "CM-0002", "CM-0003"]);
    let first = &list[0];
    assert_eq!(first["person_id"], TENANT_WITH_MARKERS);
    assert_eq!(first["code"], "VA\u{2011}1", "a non-breaking hyphen");
    let start = first["start_date"].as_str().unwrap();
    assert!(
        start.ends_with("T00:00:00") && start.len() == 19,
        "{start}: no zone"
    );
    let reviewed = first["last_reviewed"].as_str().unwrap();
    let (y, m, d) = data().tenant(TENANT_WITH_MARKERS).unwrap().caution_markers[0]
        .applied
        .ymd();
    assert_eq!(reviewed, format!("{m:02}/{d:02}/{y}"), "month first");
    assert_eq!(
        get(&server, "/api/properties/P-9999/alerts").await.status,
        404
    );
    server.stop().await;
}

#[test]
fn some_access_notes_carry_contact_details_as_free_text() {
    let d = data();
    let j1 = d.job("J-0001").unwrap();
    assert!(
        j1.access_notes.contains("07700 900555"),
        "{}",
        j1.access_notes
    );
    let with_contact = d
        .jobs()
        .iter()
        .filter(|j| j.access_notes.contains("07700") || j.access_notes.contains("@example.org"))
        .count();
    assert!(with_contact > d.jobs().len() / 4, "{with_contact}");
    assert!(d
        .jobs()
        .iter()
        .any(|j| !j.access_notes.chars().any(|c| c.is_ascii_digit())));
}
