//! Upstream bytes as a streamed export: the streamed path must agree with the buffered one.
//!
//! The body goes through `stream::filter_in_memory` (the splitter, the batches and the
//! one-pass element filter a streamed response runs) under the shipped research-vendor
//! `/tenants` route for `civic-surveys`, and through `json::parse_strict` + `filter::decide`
//! of the whole array. `stream::disagreement` must find nothing: both refuse the body, or the
//! streamed path sends the same bytes and records the same disclosed and withheld paths,
//! subjects, reasons and rule errors. The element filter is a second implementation of the
//! filter, so this is the check that it never sends what `decide` would withhold.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use need_to_know::filter::cel::PseudonymKey;
use need_to_know::rules::{Policy, Secrets};
use need_to_know::stream::{self, Requested};

/// The depth limit of the whole body; low, so nesting refusals are reached.
const MAX_DEPTH: usize = 12;

fn job() -> &'static Arc<Requested> {
    static JOB: OnceLock<Arc<Requested>> = OnceLock::new();
    JOB.get_or_init(|| {
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
        let secrets = Secrets {
            pseudonym_key: Some(PseudonymKey::new(vec![7; 32]).expect("32-byte key")),
            pseudonym_key_env: None,
        };
        let policy = Policy::load_with(&rules, &secrets).expect("the shipped rules load");
        let recipient = Arc::clone(
            policy
                .recipient("civic-surveys")
                .expect("shipped recipient"),
        );
        let route = recipient
            .kind
            .routes
            .iter()
            .position(|r| r.plan.streamable())
            .expect("the research export streams");
        Arc::new(Requested {
            recipient,
            route,
            method: "GET".into(),
            path: "/tenants".into(),
            params: BTreeMap::new(),
            query: Default::default(),
            headers: Vec::new(),
            // 2026-06-01T12:00:00Z
            now: UNIX_EPOCH + Duration::from_secs(1_780_315_200),
        })
    })
}

fuzz_target!(|data: &[u8]| {
    if let Some(difference) = stream::disagreement(job(), data, MAX_DEPTH) {
        panic!("{difference}");
    }
});
