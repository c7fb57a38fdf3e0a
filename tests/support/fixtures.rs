//! The shared policy files and bodies of `tests/fixtures/`, which the fuzz targets and the
//! benches read too, so that the example every suite tests against is written once.

use serde_json::Value;

/// The repairs-contractor type of the example in `docs/rules.md`, in full: the job route
/// with its caution-marker `when` and `items`, a derived age band and a refusal.
pub const REPAIRS_CONTRACTOR: &str = include_str!("../fixtures/jobs/types/repairs-contractor.toml");

/// The example's two contractors, `acme-repairs` and `brightfix`, with fixed key hashes.
pub const JOB_RECIPIENTS: &str = include_str!("../fixtures/jobs/recipients.toml");

/// The caution-marker rules of [`REPAIRS_CONTRACTOR`] and nothing after them: the type cut
/// before its `derive`, so that no derived field or refusal answers for the markers.
pub fn marker_rules() -> &'static str {
    let end = REPAIRS_CONTRACTOR
        .find("[[route.derive]]")
        .expect("the example type has a derive");
    &REPAIRS_CONTRACTOR[..end]
}

/// A repair job as the housing management system returns it: everything it knows
/// (`fixtures/jobs/bodies/J-1001.json`).
pub fn job() -> Value {
    serde_json::from_str(include_str!("../fixtures/jobs/bodies/J-1001.json"))
        .expect("the job fixture is JSON")
}
