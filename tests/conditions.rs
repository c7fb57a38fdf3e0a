//! Conditional disclosure through the real server: `when`, `items`, `derive` and `refuse`
//! (`docs/rules.md`), checked on the raw bytes a recipient receives and on the audit record,
//! and the rule that an evaluation error never grants.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{Days, Months, NaiveDate};
use serde_json::{json, Value};

use crate::support::fixtures::marker_rules;
use crate::support::gateway::Builder;
use crate::support::upstream::Upstream;
use crate::support::{assert_nothing_withheld, http, job, strs, WITHHELD_VALUES};

/// The repairs-contractor type as shipped: the caution-marker `when` and `items` rules.
const SHIPPED_REPAIRS: &str = include_str!("../rules/types/repairs-contractor.toml");
/// The housing system's codes the shipped recipients.toml gives the two contractors.
const SHIPPED_CODE_ACME: &str = "contractor_code = \"ACM\"";
const SHIPPED_CODE_BRIGHTFIX: &str = "contractor_code = \"BFX\"";

const MARKER_REASON: &str = "contractor assigned to an open job at this property";

/// Asserts that no `needle` appears anywhere in the raw response.
fn assert_absent(raw: &[u8], needles: &[&str]) {
    let text = String::from_utf8_lossy(raw);
    for needle in needles {
        assert!(
            !text.contains(needle),
            "{needle:?} reached the recipient:\n{text}"
        );
    }
}

/// Today's date in London, as `age_band` counts it.
fn today() -> NaiveDate {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    chrono::DateTime::from_timestamp(i64::try_from(secs).expect("secs"), 0)
        .expect("a time")
        .with_timezone(&chrono_tz::Europe::London)
        .date_naive()
}

/// The 1-based line of the first line of `text` that is exactly `line`, after `after` matches.
fn line_of(text: &str, line: &str, skip: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == line)
        .nth(skip)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("no line {line:?} in the rules"))
}

/// Checks a `rule_errors` entry names `FILE:LINE kind` of the type file `file`.
fn assert_site(site: &str, file: &str, line: usize, kind: &str) {
    assert!(
        site.ends_with(&format!("{file}:{line} {kind}")),
        "rule error site {site:?} is not {file}:{line} {kind}"
    );
}

// === when and items: caution markers ===

/// [`job`] with three caution markers: one informed and current, one the tenant was never
/// told of, one past its review date. Each marker also has incident detail no rule allows.
fn job_with_markers(id: &str, status: &str) -> Value {
    let mut body = job();
    body["id"] = json!(id);
    body["status"] = json!(status);
    body["tenant"]["caution_markers"] = json!([
        { "category": "verbal abuse", "instruction": "attend in pairs",
          "incident": "shouted at the gas engineer", "tenant_informed": true,
          "review_by": "2099-06-01T00:00:00Z" },
        { "category": "aggressive dog", "instruction": "ask for the dog to be secured",
          "incident": "dog bit a surveyor", "tenant_informed": false,
          "review_by": "2099-06-01T00:00:00Z" },
        { "category": "threatening behaviour", "instruction": "call the office before attending",
          "incident": "threatened staff in 2019", "tenant_informed": true,
          "review_by": "2020-01-01T00:00:00Z" }
    ]);
    body
}

/// Marker text that must never reach anyone: the uninformed and the expired markers, the
/// incident detail of all three, and the keys the items rule reads.
const NEVER_SENT_MARKER_TEXT: &[&str] = &[
    "aggressive dog",
    "ask for the dog",
    "threatening behaviour",
    "call the office",
    "shouted at",
    "dog bit",
    "threatened staff",
    "incident",
    "tenant_informed",
    "review_by",
    "2099-06-01",
];

#[tokio::test]
async fn caution_markers_reach_only_the_assigned_contractor_on_an_open_job() {
    let up = Upstream::new()
        .json("/api/jobs/J-1", job_with_markers("J-1", "scheduled"))
        .json("/api/jobs/J-2", job_with_markers("J-2", "in_progress"))
        .json("/api/jobs/J-3", job_with_markers("J-3", "completed"))
        .run()
        .await;
    let gw = Builder::before(&up)
        .kind("repairs-contractor", marker_rules())
        .start()
        .await;
    let acme = gw.key("acme-repairs").to_string();
    let brightfix = gw.key("brightfix").to_string();

    // The assigned contractor on an open job: only the informed, current marker, and only
    // its category and instruction.
    for job_id in ["J-1", "J-2"] {
        let r = http::get(gw.addr, &format!("/jobs/{job_id}"), Some(&acme)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json()["tenant"]["caution_markers"],
            json!([{ "category": "verbal abuse", "instruction": "attend in pairs" }]),
            "{job_id}"
        );
        assert_absent(&r.raw, NEVER_SENT_MARKER_TEXT);
        let others: Vec<&str> = WITHHELD_VALUES
            .iter()
            .copied()
            .filter(|v| !matches!(*v, "verbal abuse" | "attend in pairs"))
            .collect();
        assert_absent(&r.raw, &others);
    }

    // Another contractor of the same type on the same job, and the assigned contractor on a
    // completed job: no marker at all.
    let other = http::get(gw.addr, "/jobs/J-1", Some(&brightfix)).await;
    let completed = http::get(gw.addr, "/jobs/J-3", Some(&acme)).await;
    for r in [&other, &completed] {
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.json()["tenant"].get("caution_markers").is_none(),
            "{}",
            r.text()
        );
        assert_nothing_withheld(&r.raw);
        assert_absent(&r.raw, NEVER_SENT_MARKER_TEXT);
        assert_absent(&r.raw, &["caution_markers"]);
    }

    let records = gw.audit_records();
    assert_eq!(records.len(), 4);
    for granted in &records[..2] {
        assert_eq!(granted["status"], 200);
        assert_eq!(granted["recipient"], "acme-repairs");
        assert_eq!(granted["reasons"], json!([MARKER_REASON]));
        let disclosed = strs(&granted["disclosed"]);
        assert!(disclosed.contains(&"tenant.caution_markers[].category"));
        assert!(disclosed.contains(&"tenant.caution_markers[].instruction"));
        let withheld = strs(&granted["withheld"]);
        // The two dropped markers, named once in rule form, and the fields of the kept one
        // that no rule allows.
        for path in [
            "tenant.caution_markers[]",
            "tenant.caution_markers[].incident",
            "tenant.caution_markers[].review_by",
            "tenant.caution_markers[].tenant_informed",
        ] {
            assert!(withheld.contains(&path), "{path} not in {withheld:?}");
        }
        assert!(
            !withheld.contains(&"tenant.caution_markers"),
            "{withheld:?}"
        );
        assert!(granted.get("rule_errors").is_none(), "{granted}");
    }
    for (refused, who) in [(&records[2], "brightfix"), (&records[3], "acme-repairs")] {
        assert_eq!(refused["status"], 200);
        assert_eq!(refused["recipient"], who);
        assert_eq!(refused["reasons"], json!([]), "{refused}");
        let disclosed = strs(&refused["disclosed"]);
        assert!(
            !disclosed
                .iter()
                .any(|p| p.starts_with("tenant.caution_markers")),
            "{disclosed:?}"
        );
        let withheld = strs(&refused["withheld"]);
        // The whole subtree is withheld, so it is named once at its top.
        assert!(withheld.contains(&"tenant.caution_markers"), "{withheld:?}");
        assert!(
            !withheld
                .iter()
                .any(|p| p.starts_with("tenant.caution_markers[")),
            "{withheld:?}"
        );
        assert!(refused.get("rule_errors").is_none(), "{refused}");
    }
}

/// The sample API's job for the showcase tenant, as `GET /jobs/{id}` returns it.
fn sample_job(id: &str) -> Value {
    use chrono::Datelike;
    let t = today();
    let date = need_to_know::sample_api::Date::from_ymd(t.year(), t.month(), t.day())
        .expect("today is a date");
    let data = need_to_know::sample_api::SampleData::generate(date);
    let job = data.job(id).expect("a showcase job");
    serde_json::to_value(data.job_view(job)).expect("a job serialises")
}

/// The sample API's marker texts that no contractor may ever see (not informed, expired).
const SAMPLE_NEVER_SENT: &[&str] = &[
    "aggressive dog",
    "ask for the dog to be secured before entering",
    "threatening behaviour",
    "call the office before attending",
];

#[tokio::test]
async fn the_sample_apis_uninformed_and_expired_markers_never_reach_a_contractor() {
    use need_to_know::sample_api::{
        JOB_ACME_COMPLETED, JOB_ACME_SCHEDULED, JOB_BRIGHTFIX_SAME_TENANT,
    };
    let up = Upstream::new()
        .json(
            &format!("/api/jobs/{JOB_ACME_SCHEDULED}"),
            sample_job(JOB_ACME_SCHEDULED),
        )
        .json(
            &format!("/api/jobs/{JOB_BRIGHTFIX_SAME_TENANT}"),
            sample_job(JOB_BRIGHTFIX_SAME_TENANT),
        )
        .json(
            &format!("/api/jobs/{JOB_ACME_COMPLETED}"),
            sample_job(JOB_ACME_COMPLETED),
        )
        .run()
        .await;
    let gw = Builder::before(&up)
        .kind("repairs-contractor", SHIPPED_REPAIRS)
        .attributes("acme-repairs", SHIPPED_CODE_ACME)
        .attributes("brightfix", SHIPPED_CODE_BRIGHTFIX)
        .start()
        .await;
    for (who, job_id) in [
        ("acme-repairs", JOB_ACME_SCHEDULED),
        ("brightfix", JOB_ACME_SCHEDULED),
        ("brightfix", JOB_BRIGHTFIX_SAME_TENANT),
        ("acme-repairs", JOB_BRIGHTFIX_SAME_TENANT),
        ("acme-repairs", JOB_ACME_COMPLETED),
    ] {
        let r = http::get(gw.addr, &format!("/jobs/{job_id}"), Some(gw.key(who))).await;
        // The shipped rules refuse another contractor's job whole, as a job that does not exist.
        assert!(
            r.status == 200 || (r.status == 404 && r.error() == "upstream_error"),
            "{who} {job_id}: {}",
            r.text()
        );
        assert_absent(&r.raw, SAMPLE_NEVER_SENT);
        assert_absent(&r.raw, &["review_by", "tenant_informed", "applied"]);
        // Each showcase contractor is assigned to its own open job at the marked tenant's home;
        // there, the informed current marker may be sent (the next test checks it is).
        let assigned = (who == "acme-repairs" && job_id == JOB_ACME_SCHEDULED)
            || (who == "brightfix" && job_id == JOB_BRIGHTFIX_SAME_TENANT);
        if !assigned {
            assert_absent(
                &r.raw,
                &["verbal abuse", "attend in pairs", "caution_markers"],
            );
        }
    }
}

/// The shipped rule reads `timestamp(item.review_by)`, and CEL's `timestamp()` takes RFC 3339
/// only: the sample API must write `review_by` as a timestamp, or every marker fails to
/// evaluate and is dropped, and the assigned contractor never gets the safety instruction the
/// rule exists to give.
#[tokio::test]
async fn the_shipped_rules_give_the_assigned_contractor_the_sample_apis_current_marker() {
    use need_to_know::sample_api::JOB_ACME_SCHEDULED;
    let up = Upstream::new()
        .json(
            &format!("/api/jobs/{JOB_ACME_SCHEDULED}"),
            sample_job(JOB_ACME_SCHEDULED),
        )
        .run()
        .await;
    let gw = Builder::before(&up)
        .kind("repairs-contractor", SHIPPED_REPAIRS)
        .attributes("acme-repairs", SHIPPED_CODE_ACME)
        .attributes("brightfix", SHIPPED_CODE_BRIGHTFIX)
        .start()
        .await;
    let r = http::get(
        gw.addr,
        &format!("/jobs/{JOB_ACME_SCHEDULED}"),
        Some(gw.key("acme-repairs")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let records = gw.audit_records();
    assert_eq!(
        r.json()["tenant"]["caution_markers"],
        json!([{ "category": "verbal abuse", "instruction": "attend in pairs" }]),
        "audit: {}",
        records[0]
    );
    assert_absent(&r.raw, SAMPLE_NEVER_SENT);
    assert!(records[0].get("rule_errors").is_none(), "{}", records[0]);
}

/// A date-only `review_by` ("2027-06-01", as [`job`] has it) is not a CEL timestamp: the keep
/// errs, so the marker is dropped, and the audit names the items rule.
#[tokio::test]
async fn a_date_only_review_by_cannot_be_evaluated_and_drops_the_marker() {
    let up = Upstream::new().json("/api/jobs/J-1001", job()).run().await;
    let gw = Builder::before(&up)
        .kind("repairs-contractor", marker_rules())
        .start()
        .await;
    let r = http::get(gw.addr, "/jobs/J-1001", Some(gw.key("acme-repairs"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_nothing_withheld(&r.raw);
    let records = gw.audit_records();
    let record = &records[0];
    // The when held: the job is acme's and scheduled. The marker fell to the items rule,
    // and the array it left empty is not sent either.
    assert_eq!(record["reasons"], json!([MARKER_REASON]));
    assert!(
        strs(&record["withheld"]).contains(&"tenant.caution_markers"),
        "{record}"
    );
    let errors = strs(&record["rule_errors"]);
    assert_eq!(errors.len(), 1, "{record}");
    assert_site(
        errors[0],
        "repairs-contractor.toml",
        line_of(marker_rules(), "[[route.items]]", 0),
        "items",
    );
    assert_absent(
        record.to_string().as_bytes(),
        &["2027-06-01", "verbal abuse"],
    );
}

// === derive: age bands ===

const SURVEY_TYPE: &str = include_str!("fixtures/conditions/survey-vendor-age-band.toml");

#[tokio::test]
async fn age_bands_change_on_the_birthday_itself() {
    // Born on this day N years ago: the Nth birthday is today. Born on tomorrow's date N
    // years ago: today is the day before it.
    let day_of = |n: u32| {
        today()
            .checked_sub_months(Months::new(12 * n))
            .expect("a date")
    };
    let day_before = |n: u32| {
        (today() + Days::new(1))
            .checked_sub_months(Months::new(12 * n))
            .expect("a date")
    };
    let cases = [
        (day_before(18), "under 18"),
        (day_of(18), "18-24"),
        (day_before(25), "18-24"),
        (day_of(25), "25-34"),
        (day_before(35), "25-34"),
        (day_of(35), "35-44"),
        (day_before(65), "55-64"),
        (day_of(65), "65+"),
    ];
    let mut up = Upstream::new();
    for (i, (born, _)) in cases.iter().enumerate() {
        up = up.json(
            &format!("/api/tenants/T-{i}"),
            json!({ "id": format!("T-{i}"), "name": format!("Tenant {i}"),
                    "date_of_birth": born.format("%Y-%m-%d").to_string() }),
        );
    }
    let up = up.run().await;
    let gw = Builder::before(&up)
        .recipient_of("survey-co", "survey-vendor", SURVEY_TYPE)
        .start()
        .await;
    let before = today();
    let mut seen = Vec::new();
    for (i, (born, _)) in cases.iter().enumerate() {
        let r = http::get(
            gw.addr,
            &format!("/tenants/T-{i}"),
            Some(gw.key("survey-co")),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let dob = born.format("%Y-%m-%d").to_string();
        assert_absent(&r.raw, &[&dob, "date_of_birth"]);
        seen.push((dob, r.json()));
    }
    if today() != before {
        // Midnight in London passed mid-test: every expected band moved by a day.
        return;
    }
    for ((dob, body), (_, band)) in seen.iter().zip(cases.iter()) {
        assert_eq!(
            body,
            &json!({ "name": body["name"], "age_band": band }),
            "born {dob}, today {before}"
        );
    }
    for record in gw.audit_records() {
        assert_eq!(strs(&record["disclosed"]), ["age_band", "name"], "{record}");
        assert!(
            strs(&record["withheld"]).contains(&"date_of_birth"),
            "{record}"
        );
        assert!(record.get("rule_errors").is_none(), "{record}");
    }
}

// === refuse ===

const OBJECTION_REASON: &str = "the tenant has objected to this use";

const OBJECTION_TYPE: &str = include_str!("fixtures/conditions/survey-vendor-objection.toml");

#[tokio::test]
async fn an_objection_refuses_the_whole_response() {
    let up = Upstream::new()
        .json(
            "/api/tenants/T-2",
            json!({ "id": "T-2", "name": "Priya Objector", "phone": "07700 900222",
                    "date_of_birth": "1979-03-14", "sharing_restrictions": ["research"] }),
        )
        .json(
            "/api/tenants/T-5",
            json!({ "id": "T-5", "name": "Sam Willing", "phone": "07700 900555",
                    "sharing_restrictions": ["marketing"] }),
        )
        .run()
        .await;
    let gw = Builder::before(&up)
        .recipient_of("survey-co", "survey-vendor", OBJECTION_TYPE)
        .start()
        .await;
    let key = gw.key("survey-co").to_string();

    let r = http::get(gw.addr, "/tenants/T-2", Some(&key)).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.error(), "refused_by_policy");
    // The recipient is not told what the rule found: the reason is in the audit record only.
    assert_eq!(r.json()["message"], "refused by policy", "{}", r.text());
    assert!(!r.text().contains("objected"), "{}", r.text());
    assert_absent(
        &r.raw,
        &[
            "Priya",
            "Objector",
            "07700 900222",
            "T-2",
            "1979-03-14",
            "research",
        ],
    );

    // Someone who objected to something else is served.
    let ok = http::get(gw.addr, "/tenants/T-5", Some(&key)).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(
        ok.json(),
        json!({ "name": "Sam Willing", "phone": "07700 900555" })
    );

    let records = gw.audit_records();
    assert_eq!(records.len(), 2);
    let refused = &records[0];
    assert_eq!(refused["status"], 403);
    assert_eq!(refused["request_id"], r.header("x-request-id").expect("id"));
    assert_eq!(refused["reasons"], json!([OBJECTION_REASON]));
    assert_eq!(refused["subjects"], json!(["T-2"]));
    assert_eq!(refused["disclosed"], json!([]));
    assert!(refused.get("rule_errors").is_none(), "{refused}");
    assert_eq!(records[1]["status"], 200);
    assert_eq!(records[1]["reasons"], json!([]));
    assert_eq!(records[1]["subjects"], json!(["T-5"]));
}

// === evaluation errors fail closed ===

const ERRING_TYPE: &str = include_str!("fixtures/conditions/erring.toml");

#[tokio::test]
async fn an_evaluation_error_never_grants_in_any_construct() {
    let up = Upstream::new()
        // No `flags`: the `when` cannot be evaluated.
        .json(
            "/api/when/W-1",
            json!({ "id": "W-1", "secret": "vip-secret-value" }),
        )
        // The first marker has no `informed`: its `keep` errs; the second's holds.
        .json(
            "/api/items/I-1",
            json!({ "id": "I-1", "markers": [
                { "label": "marker-without-flag" },
                { "label": "marker-informed", "informed": true }
            ] }),
        )
        // No `dob`, and an upstream `band` that must not pass in the derived one's place.
        .json(
            "/api/derive/D-1",
            json!({ "id": "D-1", "band": "upstream-band-value" }),
        )
        // No `sharing_restrictions`: the refusal cannot be evaluated.
        .json(
            "/api/refuse/R-1",
            json!({ "id": "R-1", "name": "Rory Unreadable" }),
        )
        .run()
        .await;
    let gw = Builder::before(&up)
        .recipient_of("erring-co", "erring", ERRING_TYPE)
        .start()
        .await;
    let key = gw.key("erring-co").to_string();

    let when = http::get(gw.addr, "/when/W-1", Some(&key)).await;
    assert_eq!(when.status, 200, "{}", when.text());
    assert_eq!(when.json(), json!({ "id": "W-1" }));
    assert_absent(&when.raw, &["vip-secret-value", "secret"]);

    let items = http::get(gw.addr, "/items/I-1", Some(&key)).await;
    assert_eq!(items.status, 200, "{}", items.text());
    assert_eq!(
        items.json(),
        json!({ "id": "I-1", "markers": [{ "label": "marker-informed" }] })
    );
    assert_absent(&items.raw, &["marker-without-flag"]);

    let derive = http::get(gw.addr, "/derive/D-1", Some(&key)).await;
    assert_eq!(derive.status, 200, "{}", derive.text());
    assert_eq!(derive.json(), json!({ "id": "D-1" }));
    assert_absent(&derive.raw, &["upstream-band-value", "band"]);

    let refuse = http::get(gw.addr, "/refuse/R-1", Some(&key)).await;
    assert_eq!(refuse.status, 403, "{}", refuse.text());
    assert_eq!(refuse.error(), "refused_by_policy");
    assert_absent(&refuse.raw, &["Rory", "Unreadable", "R-1"]);

    let file = "erring.toml";
    let records = gw.audit_records();
    assert_eq!(records.len(), 4);
    let expected = [
        (200, line_of(ERRING_TYPE, "[[route.when]]", 0), "when"),
        (200, line_of(ERRING_TYPE, "[[route.items]]", 0), "items"),
        (200, line_of(ERRING_TYPE, "[[route.derive]]", 0), "derive"),
        (403, line_of(ERRING_TYPE, "[route.refuse]", 0), "refuse"),
    ];
    for (record, (status, line, kind)) in records.iter().zip(expected) {
        assert_eq!(record["status"], status, "{record}");
        let errors = strs(&record["rule_errors"]);
        assert_eq!(errors.len(), 1, "{record}");
        assert_site(errors[0], file, line, kind);
        // The site, never the values involved.
        let text = record.to_string();
        assert_absent(
            text.as_bytes(),
            &[
                "vip-secret-value",
                "marker-without-flag",
                "upstream-band-value",
                "Rory",
            ],
        );
    }
    assert_eq!(records[0]["reasons"], json!([]));
    assert!(strs(&records[0]["withheld"]).contains(&"secret"));
    assert!(strs(&records[1]["withheld"]).contains(&"markers[]"));
    assert!(!strs(&records[2]["disclosed"]).contains(&"band"));
    assert_eq!(records[3]["subjects"], json!(["R-1"]));
    assert_eq!(records[3]["disclosed"], json!([]));
}

// === request-driven disclosure ===

const POLICE_TYPE: &str = include_str!("fixtures/conditions/police-force.toml");

#[tokio::test]
async fn a_disclosure_needs_its_request_reference_and_the_audit_keeps_it() {
    let tenant = json!({ "id": "T-9", "name": "Alex Suspect", "phone": "07700 900999" });
    let up = Upstream::new()
        .json("/api/tenants/T-9", tenant.clone())
        .json("/api/strict/T-9", tenant)
        .run()
        .await;
    let gw = Builder::before(&up)
        .recipient_of("county-police", "police-force", POLICE_TYPE)
        .start()
        .await;
    let key = gw.key("county-police").to_string();
    let reference = ("X-Disclosure-Reference", "DPA-2026-0042");

    let missing = http::get(gw.addr, "/tenants/T-9", Some(&key)).await;
    assert_eq!(missing.status, 403, "{}", missing.text());
    assert_eq!(missing.error(), "refused_by_policy");
    assert!(!missing
        .text()
        .contains("no disclosure request reference given"));
    assert_absent(&missing.raw, &["Alex", "Suspect", "07700 900999"]);

    let given = http::request(gw.addr, "GET", "/tenants/T-9", Some(&key), &[reference]).await;
    assert_eq!(given.status, 200, "{}", given.text());
    assert_eq!(
        given.json(),
        json!({ "name": "Alex Suspect", "phone": "07700 900999" })
    );

    // A condition that reads the header directly errs when it is missing: refused too.
    let erring = http::get(gw.addr, "/strict/T-9", Some(&key)).await;
    assert_eq!(erring.status, 403, "{}", erring.text());
    assert_eq!(erring.error(), "refused_by_policy");
    assert_absent(&erring.raw, &["Alex", "Suspect"]);
    // A refusal that held and one that erred look the same to the recipient.
    let without_id = |r: &http::Response| {
        let mut v = r.json();
        v.as_object_mut().expect("object").remove("request_id");
        v
    };
    assert_eq!(without_id(&missing), without_id(&erring));
    let wrong = http::request(
        gw.addr,
        "GET",
        "/strict/T-9",
        Some(&key),
        &[("X-Disclosure-Reference", "FOI-1")],
    )
    .await;
    assert_eq!(wrong.status, 403, "{}", wrong.text());
    let strict = http::request(gw.addr, "GET", "/strict/T-9", Some(&key), &[reference]).await;
    assert_eq!(strict.status, 200, "{}", strict.text());
    assert_eq!(strict.json(), json!({ "name": "Alex Suspect" }));

    // The header is for the policy and the audit: the upstream never sees it.
    for seen in up.requests() {
        assert!(
            !seen
                .headers
                .iter()
                .any(|(n, _)| n == "x-disclosure-reference"),
            "{seen:?}"
        );
    }

    let records = gw.audit_records();
    assert_eq!(records.len(), 5);
    let statuses: Vec<&Value> = records.iter().map(|r| &r["status"]).collect();
    assert_eq!(
        statuses,
        [
            &json!(403),
            &json!(200),
            &json!(403),
            &json!(403),
            &json!(200)
        ]
    );
    assert!(
        records[0].get("disclosure_reference").is_none(),
        "{}",
        records[0]
    );
    assert_eq!(
        records[0]["reasons"],
        json!(["no disclosure request reference given"])
    );
    assert!(records[0].get("rule_errors").is_none(), "{}", records[0]);
    assert_eq!(records[1]["disclosure_reference"], "DPA-2026-0042");
    assert_eq!(records[1]["subjects"], json!(["T-9"]));
    assert!(records[2].get("disclosure_reference").is_none());
    let errors = strs(&records[2]["rule_errors"]);
    assert_eq!(errors.len(), 1, "{}", records[2]);
    assert_site(
        errors[0],
        "police-force.toml",
        line_of(POLICE_TYPE, "[route.refuse]", 1),
        "refuse",
    );
    assert_eq!(records[3]["disclosure_reference"], "FOI-1");
    assert!(records[3].get("rule_errors").is_none(), "{}", records[3]);
    assert_eq!(records[4]["disclosure_reference"], "DPA-2026-0042");
}

// === an array at the root ===

const SAMPLE_TYPE: &str = include_str!("fixtures/conditions/survey-vendor-root-array.toml");

#[tokio::test]
async fn items_and_derive_apply_to_each_element_of_a_root_array() {
    let born = |years: u32| {
        today()
            .checked_sub_months(Months::new(12 * years))
            .and_then(|d| d.checked_sub_days(Days::new(100)))
            .expect("a date")
            .format("%Y-%m-%d")
            .to_string()
    };
    let (dob_a, dob_b, dob_c) = (born(30), born(70), born(40));
    let up = Upstream::new()
        .json(
            "/api/tenants",
            json!([
                { "id": "T-1", "name": "Ada Willing", "date_of_birth": dob_a,
                  "sharing_restrictions": [] },
                { "id": "T-2", "name": "Priya Objector", "date_of_birth": dob_b,
                  "sharing_restrictions": ["marketing", "research"] },
                { "id": "T-3", "name": "Bob Willing", "date_of_birth": dob_c,
                  "sharing_restrictions": ["marketing"] }
            ]),
        )
        .run()
        .await;
    let gw = Builder::before(&up)
        .recipient_of("survey-co", "survey-vendor", SAMPLE_TYPE)
        .start()
        .await;
    let r = http::get(gw.addr, "/tenants", Some(gw.key("survey-co"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let records = gw.audit_records();
    assert_eq!(
        r.json(),
        json!([
            { "name": "Ada Willing", "age_band": "25-34" },
            { "name": "Bob Willing", "age_band": "35-44" }
        ]),
        "audit: {}",
        records[0]
    );
    assert_absent(
        &r.raw,
        &[
            "Priya",
            "Objector",
            "65+",
            &dob_a,
            &dob_b,
            &dob_c,
            "date_of_birth",
            "sharing_restrictions",
            "T-1",
            "T-3",
        ],
    );
    let record = &records[0];
    assert!(record.get("rule_errors").is_none(), "{record}");
    assert_eq!(strs(&record["disclosed"]), ["[].age_band", "[].name"]);
    let withheld = strs(&record["withheld"]);
    assert!(withheld.contains(&"[].date_of_birth"), "{withheld:?}");
    // The objector's element, dropped whole, is named in rule form.
    assert!(withheld.contains(&"[]"), "{withheld:?}");
    // Subjects are those disclosed: the objector left out of the sample is not listed, so a
    // subject access report does not tell them their data went to the vendor.
    let subjects = strs(&record["subjects"]);
    assert_eq!(subjects, ["T-1", "T-3"], "{subjects:?}");
}

/// `request.path` in a condition is the path routing decoded, the same one the audit
/// records and the upstream is asked for: on the buffered path and on a streamed one.
#[tokio::test]
async fn request_path_in_a_condition_is_the_decoded_path() {
    let kind = include_str!("fixtures/conditions/repairs-contractor-request-path.toml");
    let list: Vec<Value> = (0..300)
        .map(|i| json!({"id": format!("J-{i}"), "status": "open", "tenant": {"id": format!("T-{i}")}}))
        .collect();
    let up = Upstream::new()
        .json("/api/jobs/J-1001", job())
        .route(
            "GET",
            "/api/jobs",
            crate::support::upstream::Reply::Chunked {
                chunks: vec![serde_json::to_vec(&list).expect("list")],
                end: crate::support::upstream::End::Finish,
            },
        )
        .run()
        .await;
    let gw = Builder::before(&up)
        .kind("repairs-contractor", kind)
        .limits("stream_threshold = \"1KiB\"")
        .start()
        .await;
    let key = gw.key("acme-repairs").to_string();

    let r = http::get(gw.addr, "/jobs/%4A-1001", Some(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["priority"], "urgent", "{}", r.text());

    let r = http::get(gw.addr, "/%6Aobs", Some(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("transfer-encoding"),
        Some("chunked"),
        "not streamed"
    );
    let (body, terminated) = crate::support::http::dechunk(&r.body);
    assert!(terminated);
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body[0]["status"], "open", "{body}");

    let records = gw.audit_records();
    assert_eq!(records[0]["path"], "/jobs/J-1001");
    assert_eq!(strs(&records[0]["reasons"]), ["the path as decoded"]);
    assert!(records.len() > 2, "{records:?}");
    for r in &records[1..] {
        assert_eq!(r["path"], "/jobs");
        if r["stream"].get("segment").is_some() {
            assert_eq!(strs(&r["reasons"]), ["the list path as decoded"], "{r}");
        }
    }
    gw.stop().await;
}
