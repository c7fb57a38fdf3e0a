//! Shared by the targets: a fixed rules directory (`tests/fixtures/jobs/`), written once per
//! process and loaded.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use need_to_know::filter::Request;
use need_to_know::rules::Policy;

/// The example's two contractors, with fixed key hashes (`tests/fixtures/jobs/`).
pub const RECIPIENTS: &str = include_str!("../../tests/fixtures/jobs/recipients.toml");

/// The repairs-contractor type of the example in `docs/rules.md`, whose `refuse` reads
/// "repairs" so that it can fire for this type, with more routes for `request_target`.
pub const REPAIRS_CONTRACTOR: &str = concat!(
    include_str!("../../tests/fixtures/jobs/types/repairs-contractor.toml"),
    "\n",
    include_str!("../../tests/fixtures/jobs/more-routes.toml"),
);

/// A directory of this process under the system temp dir, created if missing.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ntk-fuzz-{name}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("types")).expect("create scratch dir");
    dir
}

pub fn write_rules(dir: &Path, recipients: &str, type_file: &str, type_text: &str) {
    std::fs::write(dir.join("recipients.toml"), recipients).expect("write recipients.toml");
    std::fs::write(dir.join("types").join(type_file), type_text).expect("write type file");
}

/// The fixed policy, loaded once and kept for the life of the process.
pub fn policy() -> &'static Policy {
    thread_local! {
        static POLICY: &'static Policy = {
            let dir = scratch("policy");
            write_rules(&dir, RECIPIENTS, "repairs-contractor.toml", REPAIRS_CONTRACTOR);
            let policy = match Policy::load(&dir) {
                Ok(p) => p,
                Err(e) => panic!(
                    "fixed fuzz policy does not load: {:?}",
                    e.0.iter().map(ToString::to_string).collect::<Vec<_>>()
                ),
            };
            let _ = std::fs::remove_dir_all(&dir);
            Box::leak(Box::new(policy))
        };
    }
    POLICY.with(|p| *p)
}

/// The empty query the job request borrows.
static NO_QUERY: std::sync::OnceLock<need_to_know::filter::Query> = std::sync::OnceLock::new();

/// `GET /jobs/J1` by acme-repairs on 2025-03-01, with `params` from [`job_params`] and the
/// condition-readable `headers`.
pub fn job_request<'a>(
    params: &'a BTreeMap<String, String>,
    headers: &'a [(&'static str, String)],
) -> Request<'a> {
    let recipient = policy().recipient("acme-repairs").expect("fixed recipient");
    Request {
        caller: recipient.caller(),
        method: "GET",
        path: "/jobs/J1",
        params,
        query: NO_QUERY.get_or_init(Default::default),
        headers,
        // 2025-03-01T00:00:00Z
        now: UNIX_EPOCH + Duration::from_secs(1_740_787_200),
        lookups: need_to_know::filter::Lookups::none(),
        body: None,
    }
}

/// The route parameters of `/jobs/J1`.
pub fn job_params() -> BTreeMap<String, String> {
    BTreeMap::from([("job_id".to_owned(), "J1".to_owned())])
}
