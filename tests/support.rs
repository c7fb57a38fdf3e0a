//! Shared test support: a scriptable upstream, the gateway in process, a raw HTTP client,
//! and the sample records the tests serve.

#![allow(dead_code)]

pub mod fixtures;
pub mod gateway;
pub mod http;
pub mod postgres;
pub mod redis;
pub mod upstream;

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
