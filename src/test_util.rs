//! What the unit tests share: policies loaded from rule text or from `tests/fixtures/`, the
//! shipped rules, the fixed days the tests are set on, and requests as a test makes them.
//!
//! The example of `docs/rules.md` is read from the same fixture files the integration tests,
//! the fuzz targets and the benches read, so that it is written once.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::filter::cel::PseudonymKey;
use crate::filter::{decide, Outcome, Query, Request};
use crate::rules::{Policy, Recipient, Secrets};
use crate::stream::Requested;

/// The example's two contractors, `acme-repairs` and `brightfix`, with fixed key hashes.
pub(crate) const RECIPIENTS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/jobs/recipients.toml"
));

/// The repairs-contractor type of the example in `docs/rules.md`, in full: the job route
/// with its caution-marker `when` and `items`, a derived age band and a refusal.
pub(crate) const REPAIRS_CONTRACTOR: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/jobs/types/repairs-contractor.toml"
));

/// The allow list of the job route of [`REPAIRS_CONTRACTOR`], for tests of the allow-list
/// filter alone.
pub(crate) fn example_allow() -> Vec<String> {
    let kind: toml::Table = REPAIRS_CONTRACTOR.parse().unwrap();
    let allow = &kind["route"].as_array().unwrap()[0]["allow"];
    allow
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

/// The header [`load`] puts before the routes it is given: three lines, so that a test can
/// name the line of a rule in its own text (the text's first line is line 4).
const HEAD: &str = r#"type = "repairs-contractor"
purpose = "Carry out repairs"
lawful_basis = "contract"
"#;

/// Words for fields the test bodies hold and no test rule names, so that the paths recorded
/// for them are written out (a key nothing names is recorded as `*`).
const GLOSSARY: &str = r#"
[fields]
"tenant.ni_number" = "National Insurance number"
"tenant.ni" = "National Insurance number"
"tenant.caution_markers[].detail" = "caution marker (incident detail)"
"list[].x" = "x"
"#;

/// The pseudonym key of the policies the tests load with one.
pub(crate) const TEST_KEY: [u8; 32] = [7; 32];

/// Writes a rules folder in `dir`: [`RECIPIENTS`], the glossary, and the repairs-contractor
/// type of `routes` after a short header.
pub(crate) fn write_rules(dir: &Path, routes: &str) {
    write_type(dir, &format!("{HEAD}{routes}"));
}

/// Writes a rules folder in `dir` whose repairs-contractor type is `kind`, header and all.
fn write_type(dir: &Path, kind: &str) {
    std::fs::create_dir_all(dir.join("types")).unwrap();
    std::fs::write(dir.join("recipients.toml"), RECIPIENTS).unwrap();
    std::fs::write(dir.join("glossary.toml"), GLOSSARY).unwrap();
    std::fs::write(dir.join("types/repairs-contractor.toml"), kind).unwrap();
}

/// Loads `routes` (after the type header) with the two recipients.
pub(crate) fn load(routes: &str, key: Option<&[u8]>) -> Result<Policy, crate::rules::Error> {
    load_type(&format!("{HEAD}{routes}"), key)
}

/// Loads the repairs-contractor type `kind`, header and all, with the two recipients.
fn load_type(kind: &str, key: Option<&[u8]>) -> Result<Policy, crate::rules::Error> {
    let dir = tempfile::tempdir().unwrap();
    write_type(dir.path(), kind);
    Policy::load_with(dir.path(), &secrets(key))
}

/// Loads `routes` as [`load`] does, with a pseudonym key, and panics with every problem.
pub(crate) fn policy(routes: &str) -> Policy {
    loaded(load(routes, Some(&TEST_KEY)))
}

/// The example of `docs/rules.md`: [`RECIPIENTS`] and [`REPAIRS_CONTRACTOR`], with a key.
pub(crate) fn example() -> Policy {
    loaded(load_type(REPAIRS_CONTRACTOR, Some(&TEST_KEY)))
}

fn loaded(policy: Result<Policy, crate::rules::Error>) -> Policy {
    match policy {
        Ok(p) => p,
        Err(e) => panic!(
            "{:?}",
            e.0.iter().map(ToString::to_string).collect::<Vec<_>>()
        ),
    }
}

/// The rules the crate ships (`rules/`), with [`TEST_KEY`].
pub(crate) fn shipped_rules() -> Policy {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    Policy::load_with(&dir, &secrets(Some(&TEST_KEY))).unwrap()
}

fn secrets(key: Option<&[u8]>) -> Secrets {
    Secrets {
        pseudonym_key: key.map(|k| PseudonymKey::new(k.to_vec()).unwrap()),
        pseudonym_key_env: None,
    }
}

/// 2025-03-01T00:00:00Z, the day the job tests are set on: a marker reviewed by 2026 is
/// current, one reviewed by 2024 has expired.
pub(crate) fn job_day() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_740_787_200)
}

/// 2026-06-01T12:00:00Z, the day [`sample_tenants`] are made for.
pub(crate) fn sample_day() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_780_315_200)
}

/// The sample API's tenants as `/tenants` returns them, one element each.
pub(crate) fn sample_tenants() -> Vec<Vec<u8>> {
    let data = crate::sample_api::SampleData::generate(
        crate::sample_api::Date::from_ymd(2026, 6, 1).unwrap(),
    );
    data.tenants()
        .iter()
        .map(|t| serde_json::to_vec(t).unwrap())
        .collect()
}

/// A request as a test makes it: it owns what a [`Request`] borrows.
pub(crate) struct Call {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) params: BTreeMap<String, String>,
    pub(crate) query: Query,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) now: SystemTime,
}

// === impl Call ===

impl Call {
    /// `GET /jobs/J1` (`job_id` is `J1`) on [`job_day`].
    pub(crate) fn job() -> Call {
        Call {
            method: "GET",
            path: "/jobs/J1",
            params: BTreeMap::from([("job_id".to_owned(), "J1".to_owned())]),
            query: Query::default(),
            headers: Vec::new(),
            now: job_day(),
        }
    }

    /// `GET /tenants` on [`sample_day`].
    pub(crate) fn tenants() -> Call {
        Call {
            method: "GET",
            path: "/tenants",
            params: BTreeMap::new(),
            query: Query::default(),
            headers: Vec::new(),
            now: sample_day(),
        }
    }

    /// This call with the request header `name` set to `value`.
    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Call {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// This call by `recipient`, as `decide` takes it.
    pub(crate) fn request<'a>(&'a self, recipient: &'a Recipient) -> Request<'a> {
        Request {
            caller: recipient.caller(),
            method: self.method,
            path: self.path,
            params: &self.params,
            query: &self.query,
            headers: &self.headers,
            now: self.now,
            lookups: crate::filter::Lookups::none(),
            body: None,
        }
    }

    /// This call by `recipient`, granted its type's route `route`, as the streamed filter
    /// takes it.
    pub(crate) fn requested(&self, recipient: Arc<Recipient>, route: usize) -> Arc<Requested> {
        Arc::new(Requested {
            recipient,
            route,
            method: self.method.into(),
            path: self.path.into(),
            params: self.params.clone(),
            query: self.query.clone(),
            headers: self.headers.clone(),
            now: self.now,
        })
    }

    /// What `decide` makes of `body` on the first route of `recipient` in `policy`.
    pub(crate) fn decide(
        &self,
        policy: &Policy,
        recipient: &str,
        body: &Value,
        explain: bool,
    ) -> Outcome {
        let recipient = policy.recipient(recipient).unwrap();
        let route = &recipient.kind.routes[0];
        decide(&route.plan, &self.request(recipient), body, explain)
    }
}
