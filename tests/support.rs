//! Shared test support: a scriptable upstream, the gateway in process, a raw HTTP client,
//! and the sample records the tests serve.

#![allow(dead_code)]

pub mod cli;
pub mod fixtures;
pub mod gateway;
pub mod http;
pub mod postgres;
pub mod redis;
pub mod upstream;

use std::path::Path;

use need_to_know::audit::{now_rfc3339, Record};

pub use fixtures::job;

/// `N` distinct ports free on 127.0.0.1, for child processes to bind. Every listener is held
/// until all are picked: a port released and asked for again can come straight back, and a
/// gateway given the same port for `listen` and `admin` fails to start (CI saw it).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("addr").port())
}

/// One free port on 127.0.0.1 ([`free_ports`]).
pub fn free_port() -> u16 {
    let [port] = free_ports();
    port
}

/// Values in [`job`] that the repairs-contractor route must never disclose; tests search the
/// raw response bytes for each.
pub const WITHHELD_VALUES: &[&str] = &[
    "1961-04-09",         // tenant.date_of_birth
    "AB123456C",          // tenant.ni_number
    "Universal Credit",   // tenant.benefits
    "1432.17",            // tenant.arrears
    "diabetes",           // tenant.health
    "verbal abuse",       // tenant.caution_markers
    "attend in pairs",    // tenant.caution_markers
    "step-free access",   // tenant.access_needs[].code is withheld, description kept
    "T-000142",           // tenant.id
    "contractor_ref_771", // internal_notes
];

/// The strings of a JSON list, e.g. an audit record's `withheld`.
pub fn strs(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string"))
        .collect()
}

/// Asserts that none of [`WITHHELD_VALUES`] appears anywhere in `raw`.
pub fn assert_nothing_withheld(raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    for value in WITHHELD_VALUES {
        assert!(
            !text.contains(value),
            "withheld value {value:?} reached the recipient:\n{text}"
        );
    }
}

/// Copies the directory `from` to `to`, with everything below it, as `cp -r` does.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read the directory") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// A disclosure of job `J-{n}` to `acme-repairs` about `subject`, as the library writes it to
/// a ledger, told apart from the others by its request id `req-{n}`.
pub fn disclosure(n: usize, subject: &str) -> Record {
    Record {
        ts: now_rfc3339(),
        request_id: format!("req-{n}"),
        recipient: Some("acme-repairs".into()),
        recipient_type: Some("repairs-contractor".into()),
        method: "GET".into(),
        route: Some("/jobs/{job_id}".into()),
        path: format!("/jobs/J-{n}"),
        status: 200,
        purpose: Some("repairs".into()),
        lawful_basis: Some("contract".into()),
        reasons: vec![],
        subjects: vec![subject.into()],
        disclosed: vec!["id".into()],
        withheld: vec!["tenant.phone".into()],
        extra: serde_json::Map::new(),
    }
}
