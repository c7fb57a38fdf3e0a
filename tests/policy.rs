//! The shipped policy (`rules/`) against the sample housing API, as `demo` runs them: for each
//! recipient type, the disclosures its rules' comments promise, field by field, and the
//! withheld values absent from the raw bytes. And: every allow entry, condition and refusal
//! in `rules/` cites the privacy notice it comes from.

use std::path::Path;
use std::sync::Arc;

use need_to_know::sample_api::{self, Date, SampleData};
use serde_json::Value;

use crate::support::cli::Cli;
use crate::support::gateway::{Builder, Gateway};
use crate::support::http;

/// The sample API (with an expected token) and the gateway with the shipped rules before it.
pub(crate) async fn start() -> (Gateway, Arc<SampleData>) {
    let data = Arc::new(SampleData::generate(Date::today()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::env::set_var("NTK_TEST_POLICY_UPSTREAM_TOKEN", "policy-test-token");
    tokio::spawn(sample_api::serve(
        listener,
        data.clone(),
        "/api",
        Some("policy-test-token".into()),
        std::future::pending(),
    ));
    let gw = Builder::new(&format!("http://{addr}/api"))
        .shipped_rules()
        .config("credential_env = \"NTK_TEST_POLICY_UPSTREAM_TOKEN\"")
        .start()
        .await;
    (gw, data)
}

/// The upstream record, as the sample API would serve it, as JSON.
fn upstream_tenant(data: &SampleData, id: &str) -> Value {
    serde_json::to_value(data.tenant(id).expect("a sample tenant")).expect("json")
}

fn assert_absent(raw: &[u8], values: &[&str], what: &str) {
    let text = String::from_utf8_lossy(raw);
    for v in values {
        assert!(!v.is_empty());
        assert!(
            !text.contains(v),
            "{what}: withheld value {v:?} reached the recipient:\n{text}"
        );
    }
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn repairs_contractor_sees_markers_only_on_its_own_open_job() {
    let (gw, data) = start().await;
    let key = gw.key("acme-repairs").to_string();
    let tenant = upstream_tenant(&data, sample_api::TENANT_WITH_MARKERS);
    let withheld = [
        tenant["date_of_birth"].as_str().expect("dob"),
        tenant["ni_number"].as_str().expect("ni"),
        tenant["benefits"][0].as_str().expect("benefit"),
        tenant["health"]["conditions"][0].as_str().expect("health"),
        "ask for the dog to be secured", // CM-0002: the tenant was not informed
        "call the office before attending", // CM-0003: past its review date
        "Tenant chased twice",           // internal notes
        "07700 900555",                  // her son's number, typed into the access notes
        "tom.fenwick@example.org",       // and his email
    ];

    // Its own scheduled job: contact, access needs, and the one informed, current marker.
    let r = http::get(gw.addr, "/jobs/J-0001", Some(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_absent(&r.raw, &withheld, "acme on J-0001");
    let body = r.json();
    assert_eq!(
        keys(&body),
        [
            "access_notes",
            "appointment",
            "description",
            "id",
            "priority",
            "property",
            "status",
            "tenant"
        ]
    );
    assert_eq!(
        keys(&body["tenant"]),
        ["access_needs", "caution_markers", "email", "name", "phone"]
    );
    assert_eq!(body["tenant"]["name"], tenant["name"]);
    assert_eq!(
        body["tenant"]["access_needs"][0],
        serde_json::json!({ "description": tenant["access_needs"][0]["description"] })
    );
    assert_eq!(
        body["tenant"]["caution_markers"],
        serde_json::json!([{ "category": "verbal abuse", "instruction": "attend in pairs" }])
    );
    assert_eq!(keys(&body["property"]), ["address"]);

    // Its own completed job: no markers at all.
    let r = http::get(gw.addr, "/jobs/J-0003", Some(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_absent(
        &r.raw,
        &["attend in pairs", "verbal abuse"],
        "acme on its completed job",
    );
    assert_absent(&r.raw, &withheld, "acme on J-0003");

    // Another contractor's job: refused whole, answered exactly as a job that does not exist,
    // so job references cannot be enumerated.
    let r = http::get(gw.addr, "/jobs/J-0002", Some(&key)).await;
    let missing = http::get(gw.addr, "/jobs/J-9999", Some(&key)).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(missing.status, 404, "{}", missing.text());
    let without_id = |r: &http::Response| {
        let mut v = r.json();
        v.as_object_mut().expect("object").remove("request_id");
        let headers: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
        (v, headers.join(","))
    };
    assert_eq!(without_id(&r), without_id(&missing));
    assert!(!r.text().contains("contractor"), "{}", r.text());
    assert_absent(
        &r.raw,
        &[
            tenant["name"].as_str().expect("name"),
            tenant["phone"].as_str().expect("phone"),
        ],
        "acme on brightfix's job",
    );

    let records = gw.audit_records();
    assert_eq!(
        records[0]["reasons"],
        serde_json::json!(["contractor assigned to an open job at this property"])
    );
    assert!(records[0]["withheld"]
        .as_array()
        .expect("list")
        .iter()
        .any(|p| p == "tenant.caution_markers[]"));
    assert_eq!(records[1]["reasons"], serde_json::json!([]));
    assert_eq!(
        records[2]["reasons"],
        serde_json::json!(["the job is assigned to another contractor"])
    );
}

#[tokio::test]
async fn out_of_hours_handler_sees_contact_and_communication_needs_only() {
    let (gw, data) = start().await;
    let key = gw.key("nightline").to_string();
    let tenant = upstream_tenant(&data, sample_api::TENANT_NO_LONE_WORKING);
    let r = http::get(gw.addr, "/tenants/T-0004", Some(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(
        keys(&body),
        [
            "access_needs",
            "address",
            "communication_needs",
            "email",
            "id",
            "name",
            "no_lone_working",
            "phone"
        ]
    );
    assert_eq!(body["no_lone_working"], true);
    assert_eq!(
        body["communication_needs"][0]["description"],
        tenant["communication_needs"][0]["description"]
    );
    assert_absent(
        &r.raw,
        &[
            tenant["date_of_birth"].as_str().expect("dob"),
            tenant["ni_number"].as_str().expect("ni"),
        ],
        "nightline",
    );
    assert!(
        !r.text().contains("arrears")
            && !r.text().contains("benefits")
            && !r.text().contains("health")
    );

    let r = http::get(gw.addr, "/properties/P-0001/occupants", Some(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    for occupant in r.json().as_array().expect("array") {
        assert_eq!(
            keys(occupant)
                .iter()
                .filter(|k| [
                    "date_of_birth",
                    "arrears",
                    "health",
                    "benefits",
                    "caution_markers"
                ]
                .contains(&k.as_str()))
                .count(),
            0
        );
    }
    // Jobs are not its business.
    assert_eq!(
        http::get(gw.addr, "/jobs/J-0001", Some(&key)).await.status,
        403
    );
}

#[tokio::test]
async fn research_vendor_gets_bands_and_a_pseudonym_and_never_an_objector() {
    let (gw, data) = start().await;
    let key = gw.key("civic-surveys").to_string();
    let district = "LN2";
    let r = http::get(
        gw.addr,
        &format!("/tenants?postcode_district={district}"),
        Some(&key),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rows = r.json();
    let rows = rows.as_array().expect("array");
    let upstream: Vec<Value> = data
        .tenants_in_district(district)
        .into_iter()
        .map(|t| serde_json::to_value(t).expect("json"))
        .collect();
    let agreeing: Vec<&Value> = upstream
        .iter()
        .filter(|t| {
            let restrictions = t["sharing_restrictions"].as_array().expect("list");
            !restrictions
                .iter()
                .any(|r| r == "research" || r == "all_non_essential")
                && t["consent"]["research"] == true
        })
        .collect();
    assert!(
        !agreeing.is_empty() && agreeing.len() < upstream.len(),
        "the sample needs both kinds"
    );
    assert_eq!(rows.len(), agreeing.len(), "objectors must be left out");
    for row in rows {
        assert_eq!(
            keys(row),
            [
                "age_band",
                "email",
                "household",
                "name",
                "phone",
                "postcode_district",
                "respondent_id"
            ]
        );
        assert_eq!(row["postcode_district"], district);
        assert!(row["age_band"]
            .as_str()
            .is_some_and(|b| b.contains('-') || b.ends_with('+') || b == "under 18"));
    }
    let dobs: Vec<&str> = upstream
        .iter()
        .filter_map(|t| t["date_of_birth"].as_str())
        .collect();
    let ids: Vec<&str> = upstream.iter().filter_map(|t| t["id"].as_str()).collect();
    let lines: Vec<&str> = upstream
        .iter()
        .filter_map(|t| t["address"]["line1"].as_str())
        .collect();
    assert_absent(&r.raw, &dobs, "research sample: dates of birth");
    assert_absent(&r.raw, &ids, "research sample: tenant ids");
    assert_absent(&r.raw, &lines, "research sample: addresses");
    for objector in upstream.iter().filter(|t| !agreeing.contains(t)) {
        assert_absent(
            &r.raw,
            &[objector["phone"].as_str().expect("phone")],
            "an objector's phone",
        );
    }

    // The tenant who objected: refused, nothing of them, and not told why: the reason is what
    // the rule found in data the vendor is not sent. It is in the audit record.
    let objector = upstream_tenant(&data, sample_api::TENANT_RESEARCH_OBJECTION);
    let r = http::get(gw.addr, "/tenants/T-0002", Some(&key)).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.error(), "refused_by_policy");
    assert!(!r.text().contains("objected"), "{}", r.text());
    assert!(!r.text().contains("consent"), "{}", r.text());
    assert_absent(
        &r.raw,
        &[
            objector["name"].as_str().expect("name"),
            objector["phone"].as_str().expect("phone"),
        ],
        "the objector",
    );
    let last = gw.audit_records().pop().expect("record");
    assert_eq!(last["subjects"], serde_json::json!(["T-0002"]));
    assert_eq!(last["status"], 403);
    assert_eq!(last["error"], "refused_by_policy");
    assert!(last["reasons"][0]
        .as_str()
        .expect("reason")
        .contains("objected"));
}

#[tokio::test]
async fn request_driven_recipients_need_a_reference_and_it_is_audited() {
    let (gw, data) = start().await;
    let former = upstream_tenant(&data, sample_api::FORMER_TENANT);
    let agent = gw.key("fenland-water-recoveries").to_string();
    let police = gw.key("lincs-police").to_string();

    for (key, target) in [
        (&agent, "/former-tenants/T-0003"),
        (&police, "/tenants/T-0001"),
    ] {
        let r = http::get(gw.addr, target, Some(key)).await;
        assert_eq!(r.status, 403, "{target}: {}", r.text());
        // One answer for every refusal; the rule's reason is in the audit record.
        assert_eq!(r.error(), "refused_by_policy", "{}", r.text());
        assert!(!r.text().contains("x-disclosure-reference"), "{}", r.text());
        let last = gw.audit_records().pop().expect("record");
        assert!(last["reasons"][0]
            .as_str()
            .expect("reason")
            .contains("x-disclosure-reference"));
    }
    let reference = [("x-disclosure-reference", "WATER-2026-117")];
    let r = http::request(
        gw.addr,
        "GET",
        "/former-tenants/T-0003",
        Some(&agent),
        &reference,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(keys(&body), ["forwarding_address", "name", "tenancy"]);
    assert_eq!(keys(&body["tenancy"]), ["end", "start"]);
    assert_eq!(body["forwarding_address"], former["forwarding_address"]);
    assert_absent(
        &r.raw,
        &[
            former["phone"].as_str().expect("phone"),
            former["date_of_birth"].as_str().expect("dob"),
        ],
        "the debt agent",
    );
    let record = gw.audit_records().pop().expect("record");
    assert_eq!(record["disclosure_reference"], "WATER-2026-117");
    assert_eq!(record["lawful_basis"], "legitimate_interests");

    // A current tenant is not a former tenant: the upstream says 404, and that is all they learn.
    let r = http::request(
        gw.addr,
        "GET",
        "/former-tenants/T-0001",
        Some(&agent),
        &reference,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());

    let r = http::request(
        gw.addr,
        "GET",
        "/tenants/T-0001",
        Some(&police),
        &[("x-disclosure-reference", "CRIME-LN-4471")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        keys(&r.json()),
        ["address", "date_of_birth", "id", "name", "phone", "tenancy"]
    );
    let tenant = upstream_tenant(&data, sample_api::TENANT_WITH_MARKERS);
    assert_absent(
        &r.raw,
        &[
            tenant["ni_number"].as_str().expect("ni"),
            "verbal abuse",
            tenant["health"]["conditions"][0].as_str().expect("h"),
        ],
        "police",
    );
    let record = gw.audit_records().pop().expect("record");
    assert_eq!(record["disclosure_reference"], "CRIME-LN-4471");
    assert_eq!(record["lawful_basis"], "legal_obligation");
}

/// A line of `rules/` that cites a notice: `# 000_7c66653068035281.txt: "..."`.
fn cites(line: &str) -> bool {
    let comment = line.trim_start();
    comment.starts_with('#')
        && ["000_7c66653068035281.txt", "002_1225e6a6b6537e52.txt"]
            .iter()
            .any(|f| comment.contains(f))
        && comment.contains('"')
}

#[test]
fn every_allow_entry_condition_and_refusal_cites_the_notice() {
    let types = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/types");
    let mut files: Vec<_> = std::fs::read_dir(&types)
        .expect("types")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "a type file per recipient in the notices");
    let mut missing = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        let mut in_allow = false;
        // Whether the comment block just above (inside an allow list: since the last entry
        // line) holds a citation.
        let mut cited = false;
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim();
            if t.starts_with('#') {
                cited |= cites(t);
                continue;
            }
            let at = format!(
                "{}:{}",
                file.file_name().expect("name").to_string_lossy(),
                i + 1
            );
            if in_allow {
                if t.starts_with(']') {
                    in_allow = false;
                } else if t.starts_with('"') && !cited {
                    missing.push(format!("{at}: allow entry without a citation above it"));
                }
                if !t.is_empty() && !t.starts_with(']') {
                    // The next entry line needs its own comment, unless it is on the same line.
                    cited = false;
                }
                continue;
            }
            if t.starts_with("allow = [") || t.starts_with("accept = [") {
                in_allow = true;
                // The allow list's first entry may be cited by the comment inside the list.
                cited = false;
                continue;
            }
            if [
                "[[route.when]]",
                "[[route.items]]",
                "[[route.derive]]",
                "[route.refuse]",
                "[[route.require]]",
            ]
            .contains(&t)
                && !cited
            {
                missing.push(format!("{at}: {t} without a citation above it"));
            }
            if (t.starts_with("purpose =") || t.starts_with("lawful_basis =")) && !cited {
                missing.push(format!("{at}: {t} without a citation above it"));
            }
            if !t.is_empty() {
                cited = false;
            }
        }
    }
    assert!(missing.is_empty(), "uncited rules:\n{}", missing.join("\n"));
}

/// The strings of a JSON list.
fn strings(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

/// A report section's first disclosure names the tenant's phone in the glossary's words, not
/// as the path the ledger records.
fn assert_phone_in_plain_words(section: &Value) {
    let fields = strings(&section["disclosures"][0]["fields"]);
    assert!(
        fields.iter().any(|f| f.contains("telephone")),
        "plain words: {fields:?}"
    );
    assert!(
        !fields.iter().any(|f| f.contains("tenant.phone")),
        "a path left untranslated: {fields:?}"
    );
}

/// The subject access report after real traffic: its counts match `audit query`, refusals
/// made on the tenant's behalf are listed, fields are in plain words, and a tampered ledger
/// is flagged on the report's face.
#[tokio::test]
async fn the_subject_access_report_matches_the_audit_and_flags_tampering() {
    let (gw, _data) = start().await;
    let acme = gw.key("acme-repairs").to_string();
    let police = gw.key("lincs-police").to_string();
    assert_eq!(
        http::get(gw.addr, "/jobs/J-0001", Some(&acme)).await.status,
        200
    );
    assert_eq!(
        http::get(gw.addr, "/jobs/J-0002", Some(&acme)).await.status,
        404
    );
    assert_eq!(
        http::get(gw.addr, "/tenants/T-0001", Some(&police))
            .await
            .status,
        403
    );
    let reference = [("x-disclosure-reference", "CRIME-LN-9")];
    assert_eq!(
        http::request(gw.addr, "GET", "/tenants/T-0001", Some(&police), &reference)
            .await
            .status,
        200
    );
    assert_eq!(
        http::get(gw.addr, "/tenants/T-0004", Some(gw.key("nightline")))
            .await
            .status,
        200
    );

    // Policy refusals are counted by their rule's reason.
    let metrics = http::get(gw.admin_addr, "/metrics", None).await;
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        metrics.contains(
            r#"need_to_know_refusals_total{reason="the job is assigned to another contractor"} 1"#
        ),
        "{metrics}"
    );

    let config = gw.dir.path().join("need-to-know.toml");
    // The gateway's files and the ledger, with the pseudonym key the gateway was given.
    let audit = |command: &str, ledger: &Path, tail: &[&str]| {
        Cli::new(["audit", command])
            .arg(ledger)
            .args(["--subject", "T-0001"])
            .args(tail)
            .env(
                "NTK_TEST_PSEUDONYM_KEY",
                "a-test-pseudonym-key-of-32-bytes-or-more",
            )
    };
    let queried = audit("query", &gw.audit_path, &[])
        .run()
        .stdout
        .lines()
        .count();
    let report = audit("report", &gw.audit_path, &["--format", "json", "--config"])
        .arg(&config)
        .success()
        .json();
    assert!(report["chain_problem"].is_null(), "{report}");
    let sections = report["recipients"].as_array().expect("list");
    let counted: usize = sections
        .iter()
        .map(|s| {
            s["disclosures"].as_array().map_or(0, Vec::len)
                + s["refusals"].as_array().map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(counted, queried, "the report and audit query disagree");
    let acme_section = sections
        .iter()
        .find(|s| s["id"] == "acme-repairs")
        .expect("acme");
    assert_eq!(acme_section["name"], "ACME Repairs Ltd");
    assert_eq!(
        acme_section["disclosures"].as_array().expect("list").len(),
        1
    );
    assert_eq!(
        acme_section["refusals"][0]["reason"],
        "the job is assigned to another contractor"
    );
    assert_phone_in_plain_words(acme_section);
    let police_section = sections
        .iter()
        .find(|s| s["id"] == "lincs-police")
        .expect("police");
    assert_eq!(police_section["disclosures"][0]["reference"], "CRIME-LN-9");
    assert_eq!(
        police_section["refusals"].as_array().expect("list").len(),
        1
    );
    assert!(
        sections.iter().all(|s| s["id"] != "nightline"),
        "T-0004's disclosure is not T-0001's"
    );

    // The HTML is one self-contained page.
    let html = audit("report", &gw.audit_path, &["--config"])
        .arg(&config)
        .run()
        .stdout;
    assert!(html.contains("Who we shared your data with") && html.contains("ACME Repairs Ltd"));
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("src=\"http"));

    let text = std::fs::read_to_string(&gw.audit_path).expect("audit");
    let tampered = gw.dir.path().join("tampered.jsonl");
    std::fs::write(
        &tampered,
        text.replacen("\"status\":200", "\"status\":201", 1),
    )
    .expect("write");
    // Tampering shows on the report's face, and in its exit code: only the records before the
    // break are counted as intact, every entry from it on is marked unverified, and the
    // altered ledger is not passed off as a good one.
    let report = audit("report", &tampered, &["--format", "json", "--config"])
        .arg(&config)
        .expect(1);
    assert!(report.stderr.contains("did not verify"), "{report}");
    let report = report.json();
    assert!(
        report["chain_problem"]
            .as_str()
            .is_some_and(|p| p.contains("line")),
        "{report}"
    );
    let tampered_line = text
        .lines()
        .position(|l| l.contains("\"status\":200"))
        .expect("a disclosure") as u64;
    assert_eq!(report["records_checked"], tampered_line, "{report}");
    let flags: Vec<bool> = report["recipients"]
        .as_array()
        .expect("list")
        .iter()
        .flat_map(|s| s["disclosures"].as_array().expect("list").iter())
        .map(|d| d["unverified"].as_bool().expect("flag"))
        .collect();
    assert!(
        flags.iter().any(|&u| u),
        "the altered record is unverified: {report}"
    );
    let html = audit("report", &tampered, &["--config"])
        .arg(&config)
        .expect(1);
    assert!(html.stdout.contains("did not verify"), "{html}");

    // Without the rules a report would name recipients by id and fields by path as if that
    // were the answer: it is refused, saying why, and nothing is printed.
    let elsewhere = audit(
        "report",
        &gw.audit_path,
        &["--config", "/nonexistent/need-to-know.toml"],
    )
    .expect(1);
    assert!(elsewhere.stdout.is_empty(), "{elsewhere}");
    assert!(elsewhere.stderr.contains("--config"), "{elsewhere}");
    // Without the pseudonym key the report is the same page (it shows no pseudonym), and the
    // one warning line says the key was not given.
    let keyless = audit("report", &gw.audit_path, &["--config"])
        .arg(&config)
        .env_remove("NTK_TEST_PSEUDONYM_KEY")
        .success();
    assert!(keyless.stdout.contains("ACME Repairs Ltd"), "{keyless}");
    assert!(keyless.stderr.contains("throw-away key"), "{keyless}");
}

/// The ledger describes itself: with only the ledger file and its rules snapshots copied to
/// another directory, and no config, the report names each organisation as the rules named
/// it when the disclosure was made (a recipient renamed since keeps its old name on its old
/// disclosures) and words the fields by the glossary of the time. An altered snapshot, or
/// none at all, is said on the report's face and exits 1.
#[tokio::test]
async fn the_report_needs_only_the_ledger_and_its_snapshots_and_keeps_old_names() {
    let (gw, _data) = start().await;
    let acme = gw.key("acme-repairs").to_string();
    // A contractor's job and the police's request, both about T-0001.
    let reference = [("x-disclosure-reference", "CRIME-LN-9")];
    for (path, who, headers) in [
        ("/jobs/J-0001", "acme-repairs", &[][..]),
        ("/tenants/T-0001", "lincs-police", &reference[..]),
    ] {
        let r = http::request(gw.addr, "GET", path, Some(gw.key(who)), headers).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let police_name = gw
        .pipeline
        .policy()
        .recipient("lincs-police")
        .expect("police")
        .name
        .clone();
    let first = gw.pipeline.policy().snapshot().digest.clone();
    let snapshots = gw.audit_path.with_file_name(format!(
        "{}.rules",
        gw.audit_path.file_name().expect("name").to_string_lossy()
    ));
    assert!(
        snapshots.join(format!("{first}.json")).is_file(),
        "kept when serving began"
    );

    // The contractor is renamed; the reload keeps the new rules' snapshot before using them.
    let recipients = gw.rules_dir.join("recipients.toml");
    let text = std::fs::read_to_string(&recipients).expect("recipients");
    std::fs::write(
        &recipients,
        text.replacen("\"ACME Repairs Ltd\"", "\"ACME Property Care Ltd\"", 1),
    )
    .expect("write");
    need_to_know::reload::reload_rules(&gw.pipeline, &gw.settings).expect("reloads");
    let second = gw.pipeline.policy().snapshot().digest.clone();
    assert_ne!(second, first);
    assert!(snapshots.join(format!("{second}.json")).is_file());
    assert_eq!(
        http::get(gw.addr, "/jobs/J-0001", Some(&acme)).await.status,
        200
    );
    let records = gw.audit_records();
    assert_eq!(records[0]["rules_snapshot"], first.as_str());
    assert_eq!(
        records.last().expect("record")["rules_snapshot"],
        second.as_str()
    );

    // Only the ledger and its snapshot directory, elsewhere; no config, no rules.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let ledger = elsewhere.path().join("disclosures.jsonl");
    std::fs::copy(&gw.audit_path, &ledger).expect("copy the ledger");
    let copied = elsewhere.path().join("disclosures.jsonl.rules");
    std::fs::create_dir(&copied).expect("dir");
    for entry in std::fs::read_dir(&snapshots).expect("snapshots").flatten() {
        std::fs::copy(entry.path(), copied.join(entry.file_name())).expect("copy a snapshot");
    }
    let report = |dir: &Path| {
        Cli::new([
            "audit",
            "report",
            "disclosures.jsonl",
            "--subject",
            "T-0001",
        ])
        .args(["--format", "json"])
        .current_dir(dir)
    };
    let out = report(elsewhere.path()).success().json();
    assert_eq!(out["problems"], serde_json::json!([]), "{out:#}");
    let sections = out["recipients"].as_array().expect("list");
    let named = |name: &str| {
        sections
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no section for {name}: {out:#}"))
    };
    for (name, count) in [("ACME Repairs Ltd", 1), ("ACME Property Care Ltd", 1)] {
        let section = named(name);
        assert_eq!(section["id"], "acme-repairs");
        assert_eq!(section["described_from"], "snapshot");
        assert_eq!(
            section["disclosures"].as_array().map(Vec::len),
            Some(count),
            "{name}: {out:#}"
        );
        assert_phone_in_plain_words(section);
    }
    assert_eq!(
        named(&police_name)["disclosures"][0]["reference"],
        "CRIME-LN-9"
    );
    assert!(
        named("ACME Repairs Ltd")["disclosures"][0]["when"]
            .as_str()
            .expect("when")
            < named("ACME Property Care Ltd")["disclosures"][0]["when"]
                .as_str()
                .expect("when"),
        "the old name is on the earlier disclosure"
    );

    // An altered snapshot is not believed: said at the top, for the organisation, exit 1.
    let altered = copied.join(format!("{first}.json"));
    let text = std::fs::read_to_string(&altered).expect("snapshot");
    std::fs::write(
        &altered,
        text.replace("ACME Repairs Ltd", "Someone Else Ltd"),
    )
    .expect("write");
    let run = report(elsewhere.path()).expect(1);
    assert!(run.stderr.contains("cannot describe"), "{run}");
    let out = run.json();
    assert!(
        out["problems"]
            .as_array()
            .expect("list")
            .iter()
            .any(|p| p.as_str().is_some_and(|p| p.contains("altered"))),
        "{out:#}"
    );
    assert!(!out.to_string().contains("Someone Else Ltd"), "{out:#}");
    let html = Cli::new([
        "audit",
        "report",
        "disclosures.jsonl",
        "--subject",
        "T-0001",
    ])
    .current_dir(elsewhere.path())
    .expect(1);
    assert!(
        html.stdout
            .contains("could not be described as they were made"),
        "{html}"
    );

    // Without snapshots and without rules nothing can be named: said, exit 1.
    std::fs::remove_dir_all(&copied).expect("remove");
    let out = report(elsewhere.path()).expect(1).json();
    assert!(out["problems"].to_string().contains("--config"), "{out:#}");
}

/// The shipped repairs rules on J-0001 with its `tenant` sent as an array of one object: the
/// address would be disclosed while no `subjects` path names the tenant, so nothing is sent
/// (a subject access request for the tenant could not have found it), and the ledger lists
/// the tenant as withheld.
#[tokio::test]
async fn a_job_whose_tenant_cannot_be_identified_is_not_disclosed() {
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/tests/bodies/job-J-0001.json"),
    )
    .expect("J-0001");
    let mut job: Value = serde_json::from_slice(&body).expect("json");
    let tenant = job["tenant"].take();
    job["tenant"] = Value::Array(vec![tenant]);
    let up = crate::support::upstream::Upstream::new()
        .json("/api/jobs/J-0001", job)
        .run()
        .await;
    let gw = Builder::before(&up).shipped_rules().start().await;
    let r = http::get(gw.addr, "/jobs/J-0001", Some(gw.key("acme-repairs"))).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.error(), "subjects_unidentified");
    assert!(!r.text().contains("Yarrow"), "{}", r.text());
    let record = gw.audit_records().pop().expect("record");
    assert_eq!(record["status"], 502);
    assert_eq!(record["disclosed"], serde_json::json!([]));
    let withheld = strings(&record["withheld"]);
    assert!(
        withheld.contains(&"tenant") && withheld.contains(&"property"),
        "{record}"
    );
}
