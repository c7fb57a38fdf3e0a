//! Hot-path benchmarks: the filter, the strict JSON parse, a streamed export and the audit
//! record hash.
//!
//! Run with `cargo bench --bench filter`; see bench/README.md for the figures and the
//! target they are compared against ("filter + conditions on the 2 KB record: ≤ 5 µs per
//! request on one core").
//!
//! Every input is built once, outside the timed loop, from the shipped rules (`rules/`) and
//! the sample API's invented data generated for 2026-06-01, with the request clock fixed at
//! noon that day, so a run measures the same path whatever day it is run. The setup asserts
//! that path (the repairs `when` held, one caution marker survived `items`, the research
//! tenant was kept with its three derived fields), so a change to the rules or the sample
//! data that silently turns a bench into a refusal fails loudly instead.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use need_to_know::audit::{canonical, Record, GENESIS_HASH};
use need_to_know::filter::{self, cel::PseudonymKey, Outcome};
use need_to_know::json::split::{self, Splitter};
use need_to_know::json::{self, DEFAULT_MAX_DEPTH};
use need_to_know::rules::{Policy, Recipient, Route, Secrets};
use need_to_know::sample_api::{Date, SampleData, JOB_ACME_SCHEDULED};
use need_to_know::stream::{self, Requested};

/// The allocator the binary uses (src/main.rs), so the figures are the gateway's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// 2026-06-01T12:00:00Z, the sample data's `today` at noon.
const NOW_UNIX: u64 = 1_780_315_200;

struct Fixture {
    policy: Policy,
    /// J-0001 as `/jobs/J-0001` returns it, parsed.
    job: Value,
    /// The same, as the bytes the upstream sends.
    job_bytes: Vec<u8>,
    /// `[tenant]`: one consenting tenant, as `/tenants?postcode_district=` returns a list.
    tenants: Value,
    /// About 100 KB of the sample tenants, as `/tenants` streams them.
    export: Vec<u8>,
}

fn fixture() -> Fixture {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let key = PseudonymKey::new(b"a-bench-key-of-at-least-32-bytes!!".to_vec())
        .expect("the key is long enough");
    let secrets = Secrets {
        pseudonym_key: Some(key),
        pseudonym_key_env: None,
    };
    let policy = Policy::load_with(&dir, &secrets).expect("the shipped rules load");

    let data = SampleData::generate(Date::from_ymd(2026, 6, 1).expect("a valid date"));
    let job = data
        .job(JOB_ACME_SCHEDULED)
        .expect("the showcase job exists");
    let job = serde_json::to_value(data.job_view(job)).expect("a job serialises");
    let job_bytes = serde_json::to_vec(&job).expect("a value serialises");

    // The first tenant the research route keeps, so items, the three derives and the allow
    // walk all run (an objector would be dropped by `items` and skip the derives).
    let route = route(&policy, "civic-surveys", "/tenants");
    let recipient = policy.recipient("civic-surveys").expect("civic-surveys");
    let tenants = data
        .tenants()
        .iter()
        .map(|t| Value::Array(vec![serde_json::to_value(t).expect("a tenant serialises")]))
        .find(|list| {
            let out = decide(route, recipient, "/tenants", &BTreeMap::new(), list);
            out.body
                .as_ref()
                .and_then(Value::as_array)
                .is_some_and(|kept| kept.len() == 1)
        })
        .expect("some tenant consents to research");

    let mut export = b"[".to_vec();
    for tenant in data.tenants().iter().cycle() {
        if export.len() >= 100 * 1024 {
            break;
        }
        if export.len() > 1 {
            export.extend_from_slice(b",\n");
        }
        serde_json::to_writer(&mut export, tenant).expect("a tenant serialises");
    }
    export.push(b']');

    Fixture {
        policy,
        job,
        job_bytes,
        tenants,
        export,
    }
}

fn route<'p>(policy: &'p Policy, recipient: &str, template: &str) -> &'p Route {
    policy
        .recipient(recipient)
        .expect("the recipient exists")
        .kind
        .routes
        .iter()
        .find(|r| r.template.as_str() == template)
        .expect("the route exists")
}

fn decide(
    route: &Route,
    recipient: &Recipient,
    path: &str,
    params: &BTreeMap<String, String>,
    body: &Value,
) -> Outcome {
    let request = filter::Request {
        caller: recipient.caller(),
        method: "GET",
        path,
        params,
        query: &filter::Query::default(),
        headers: &[],
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_UNIX),
        lookups: filter::Lookups::none(),
        body: None,
    };
    filter::decide(&route.plan, &request, body, false)
}

/// The record the pipeline would chain for `outcome`, as `AuditLog::append` hands it to the
/// writer: the `Record` as a JSON object, `prev_hash` added.
fn audit_record(policy: &Policy, outcome: &Outcome) -> Map<String, Value> {
    let recipient = policy.recipient("acme-repairs").expect("acme-repairs");
    let mut extra = Map::new();
    extra.insert("rules_generation".into(), Value::from(policy.generation()));
    let record = Record {
        ts: "2026-06-01T12:00:00.123Z".into(),
        request_id: "0193f2a4-7c1e-7b3d-9a51-2f6e8d4c0b17".into(),
        recipient: Some(recipient.id.clone()),
        recipient_type: Some(recipient.kind.name.clone()),
        method: "GET".into(),
        route: Some("/jobs/{job_id}".into()),
        path: format!("/jobs/{JOB_ACME_SCHEDULED}"),
        status: 200,
        purpose: Some(recipient.kind.purpose.clone()),
        lawful_basis: Some(recipient.kind.lawful_basis.to_string()),
        reasons: outcome.reasons.clone(),
        subjects: outcome.subjects.clone(),
        disclosed: outcome.disclosed.iter().cloned().collect(),
        withheld: outcome.withheld.iter().cloned().collect(),
        extra,
    };
    let Value::Object(mut map) = serde_json::to_value(record).expect("a record serialises") else {
        panic!("a record serialises to an object");
    };
    map.insert("prev_hash".into(), Value::from(GENESIS_HASH));
    map
}

/// What `audit::chain::hash_of` computes (it is crate-private): lower-case hex SHA-256 of
/// the RFC 8785 (JCS) serialisation, by the gateway's own JCS writer.
fn record_hash(record: &Map<String, Value>) -> String {
    let mut bytes = Vec::with_capacity(2048);
    canonical::write_object(&mut bytes, record, |_, _| {}).expect("a record canonicalises");
    hex::encode(Sha256::digest(&bytes))
}

/// The same with the reference JCS crate, which the writer used before (and the tests
/// still check against).
fn record_hash_reference(record: &Map<String, Value>) -> String {
    let bytes = serde_json_canonicalizer::to_vec(record).expect("a record canonicalises");
    hex::encode(Sha256::digest(&bytes))
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    let acme = f.policy.recipient("acme-repairs").expect("acme-repairs");
    let civic = f.policy.recipient("civic-surveys").expect("civic-surveys");
    let jobs = route(&f.policy, "acme-repairs", "/jobs/{job_id}");
    let tenants = route(&f.policy, "civic-surveys", "/tenants");
    let job_path = format!("/jobs/{JOB_ACME_SCHEDULED}");
    let job_params = BTreeMap::from([("job_id".to_owned(), JOB_ACME_SCHEDULED.to_owned())]);
    let no_params = BTreeMap::new();

    // The path each bench is meant to take.
    let job_outcome = decide(jobs, acme, &job_path, &job_params, &f.job);
    assert!(job_outcome.refusal.is_none(), "{:?}", job_outcome.refusal);
    assert_eq!(job_outcome.reasons.len(), 1, "the `when` should hold");
    assert!(
        job_outcome.rule_errors.is_empty(),
        "{:?}",
        job_outcome.rule_errors
    );
    let markers = job_outcome
        .body
        .as_ref()
        .and_then(|b| b.pointer("/tenant/caution_markers"))
        .and_then(Value::as_array)
        .map(Vec::len);
    assert_eq!(markers, Some(1), "`items` should keep one marker of three");
    let row = decide(tenants, civic, "/tenants", &no_params, &f.tenants);
    assert!(row.rule_errors.is_empty(), "{:?}", row.rule_errors);
    let kept = row.body.as_ref().and_then(|b| b.get(0));
    for field in ["respondent_id", "age_band", "postcode_district"] {
        assert!(
            kept.is_some_and(|t| t.get(field).is_some()),
            "derived {field} missing"
        );
    }
    let record = audit_record(&f.policy, &job_outcome);
    let record_bytes = serde_json_canonicalizer::to_vec(&record).expect("canonicalises");
    eprintln!(
        "inputs: job record {} B, tenant row {} B, audit record {} B (JCS)",
        f.job_bytes.len(),
        serde_json::to_vec(&f.tenants).map_or(0, |v| v.len()),
        record_bytes.len()
    );

    let jobs_allow = filter::AllowTree::new(jobs.plan.allow());
    let mut g = c.benchmark_group("filter");
    g.bench_function("allow_2kb", |b| {
        b.iter(|| filter::allow(black_box(&jobs_allow), black_box(&f.job)))
    });
    g.bench_function("decide_2kb", |b| {
        b.iter(|| {
            decide(
                black_box(jobs),
                acme,
                &job_path,
                &job_params,
                black_box(&f.job),
            )
        })
    });
    g.bench_function("decide_tenant_export_row", |b| {
        b.iter(|| {
            decide(
                black_box(tenants),
                civic,
                "/tenants",
                &no_params,
                black_box(&f.tenants),
            )
        })
    });
    g.finish();

    let mut g = c.benchmark_group("json");
    g.throughput(Throughput::Bytes(f.job_bytes.len() as u64));
    g.bench_function("parse_strict_2kb", |b| {
        b.iter(|| json::parse_strict(black_box(&f.job_bytes), DEFAULT_MAX_DEPTH))
    });
    g.bench_function("serde_json_2kb", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&f.job_bytes)))
    });
    g.finish();

    // The streamed path of the research export: the splitter alone, then the splitter and the
    // one-pass element filter, as `stream::filter_in_memory` runs them on one thread.
    let export_job = Arc::new(Requested {
        recipient: Arc::clone(civic),
        route: civic
            .kind
            .routes
            .iter()
            .position(|r| r.template.as_str() == "/tenants" && r.plan.streamable())
            .expect("the research route streams"),
        method: "GET".into(),
        path: "/tenants".into(),
        params: BTreeMap::new(),
        query: filter::Query::default(),
        headers: Vec::new(),
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_UNIX),
    });
    let exported = stream::filter_in_memory(&export_job, &f.export, DEFAULT_MAX_DEPTH, 1 << 20)
        .expect("the export filters");
    assert!(
        exported.body.len() > 2 && !exported.withheld.is_empty(),
        "the export should send some tenants and withhold fields"
    );
    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Bytes(f.export.len() as u64));
    g.bench_function("split_100kb", |b| {
        b.iter(|| {
            let mut splitter = Splitter::new(DEFAULT_MAX_DEPTH, 1 << 20);
            let mut n = 0usize;
            splitter
                .feed_bytes(black_box(&f.export), |element| {
                    n += element.len();
                    Ok::<_, split::Error>(())
                })
                .expect("the export splits");
            n
        })
    });
    g.bench_function("export_in_memory_100kb", |b| {
        b.iter(|| {
            stream::filter_in_memory(
                &export_job,
                black_box(&f.export),
                DEFAULT_MAX_DEPTH,
                1 << 20,
            )
        })
    });
    g.finish();

    let mut g = c.benchmark_group("audit");
    g.throughput(Throughput::Bytes(record_bytes.len() as u64));
    g.bench_function("record_hash", |b| {
        b.iter(|| record_hash(black_box(&record)))
    });
    g.bench_function("record_hash_reference_jcs", |b| {
        b.iter(|| record_hash_reference(black_box(&record)))
    });
    g.finish();
}

criterion_group!(filter_benches, benches);
criterion_main!(filter_benches);
