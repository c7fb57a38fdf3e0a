//! Shared test support: a scriptable upstream, the gateway in process, a raw HTTP client,
//! and the sample records the tests serve.

#![allow(dead_code)]

pub mod gateway;
pub mod http;
pub mod postgres;
pub mod redis;
pub mod upstream;

use serde_json::{json, Value};

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

/// A repair job as the housing management system returns it: everything it knows.
pub fn job() -> Value {
    json!({
        "id": "J-1001",
        "status": "scheduled",
        "priority": "urgent",
        "description": "Boiler not heating water",
        "contractor_id": "acme-repairs",
        "internal_notes": "contractor_ref_771",
        "appointment": { "date": "2026-12-03", "slot": "AM" },
        "property": {
            "id": "P-0042",
            "address": "12 Minster Yard, Lincoln LN2 1PX",
            "tenure": "assured"
        },
        "tenant": {
            "id": "T-000142",
            "name": "Joan Example",
            "phone": "07700 900142",
            "email": "joan@example.org",
            "date_of_birth": "1961-04-09",
            "ni_number": "AB123456C",
            "benefits": ["Universal Credit"],
            "arrears": 1432.17,
            "health": { "conditions": ["diabetes"] },
            "access_needs": [
                { "code": "step-free access", "description": "Uses a wheelchair" },
                { "code": "BSL", "description": "Deaf: text, do not call" }
            ],
            "caution_markers": [
                { "category": "verbal abuse", "instruction": "attend in pairs",
                  "tenant_informed": true, "review_by": "2027-06-01" }
            ]
        }
    })
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
