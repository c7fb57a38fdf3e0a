//! Tests of the rules-level comparison.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use super::{between, Change};
use crate::rules::{Policy, Secrets};
use crate::test_util::{policy, write_rules};

const JOB: &str = r#"
[[route]]
method = "GET"
path = "/jobs/{job_id}"
subjects = ["tenant.id"]
allow = ["id", "tenant.name"]

[[route.when]]
condition = "body.status == 'open'"
reason = "an open job"
allow = ["tenant.phone"]

[[route.items]]
path = "tenant.caution_markers"
keep = "item.tenant_informed"

[route.refuse]
condition = "body.contractor_id != recipient.id"
reason = "another contractor's job"
"#;

fn widenings(changes: &[Change]) -> Vec<&str> {
    changes
        .iter()
        .filter(|c| c.widens)
        .map(|c| c.text.as_str())
        .collect()
}

fn changes(old: &str, new: &str) -> Vec<Change> {
    between(&policy(old), &policy(new))
}

#[test]
fn the_same_rules_have_no_change() {
    assert_eq!(changes(JOB, JOB), []);
}

#[test]
fn a_field_added_to_an_untested_route_widens() {
    let occupants = "\n[[route]]\nmethod = \"GET\"\npath = \"/properties/{property_id}/occupants\"\nsubjects = [\"[].id\"]\nallow = [\"[].name\"]\n";
    let wider = occupants.replace(
        "[\"[].name\"]",
        "[\"[].name\", \"[].date_of_birth\", \"[].ni_number\"]",
    );
    let got = changes(&format!("{JOB}{occupants}"), &format!("{JOB}{wider}"));
    assert_eq!(
        widenings(&got),
        [
            "repairs-contractor receives [].date_of_birth on GET /properties/{property_id}/occupants: added",
            "repairs-contractor receives [].ni_number on GET /properties/{property_id}/occupants: added",
        ]
    );
    // And back: narrower, nothing to accept.
    let back = changes(&format!("{JOB}{wider}"), &format!("{JOB}{occupants}"));
    assert_eq!(back.len(), 2, "{back:?}");
    assert!(widenings(&back).is_empty(), "{back:?}");
}

#[test]
fn a_refusal_or_item_filter_removed_widens_and_one_added_does_not() {
    let no_refuse = &JOB[..JOB.find("[route.refuse]").unwrap()];
    let got = changes(JOB, no_refuse);
    assert_eq!(widenings(&got).len(), 1, "{got:?}");
    assert!(got[0]
        .text
        .contains("is refused (403) when body.contractor_id != recipient.id"));
    assert!(widenings(&changes(no_refuse, JOB)).is_empty());

    let no_items = JOB.replace(
        "[[route.items]]\npath = \"tenant.caution_markers\"\nkeep = \"item.tenant_informed\"\n",
        "",
    );
    let got = changes(JOB, &no_items);
    assert_eq!(
        widenings(&got),
        ["repairs-contractor on GET /jobs/{job_id} keeps only the tenant.caution_markers elements where item.tenant_informed: removed"]
    );
}

#[test]
fn an_edited_condition_is_a_widening_to_review() {
    let edited = JOB.replace("body.status == 'open'", "body.status != 'closed'");
    let got = changes(JOB, &edited);
    let widened = widenings(&got);
    assert_eq!(widened.len(), 1, "{got:?}");
    assert!(widened[0].contains("when body.status != 'closed'") && widened[0].ends_with("added"));
    assert_eq!(got.len(), 2, "the old condition removed too: {got:?}");
}

#[test]
fn routes_query_parameters_and_derived_fields_added_widen() {
    let more = format!(
        "{}\n[[route.derive]]\nfield = \"tenant.band\"\nvalue = \"age_band(body.tenant.dob)\"\n\n[[route]]\nmethod = \"GET\"\npath = \"/tenants\"\nquery = [\"postcode\"]\nsubjects = [\"[].id\"]\nallow = [\"[].name\"]\n",
        JOB
    );
    let got = changes(JOB, &more);
    let widened = widenings(&got);
    for expected in [
        "repairs-contractor may call GET /tenants: added",
        "repairs-contractor may send the query parameter postcode on GET /tenants: added",
        "repairs-contractor receives [].name on GET /tenants: added",
        "repairs-contractor receives tenant.band = age_band(body.tenant.dob) on GET /jobs/{job_id}: added",
    ] {
        assert!(widened.contains(&expected), "{expected} not in {widened:#?}");
    }
}

/// Recipients, their types, credentials and rate limits, from a rules folder whose
/// recipients.toml is `recipients`.
fn with_recipients(recipients: &str) -> Policy {
    let dir = tempfile::tempdir().unwrap();
    write_rules(dir.path(), JOB);
    std::fs::write(dir.path().join("recipients.toml"), recipients).unwrap();
    Policy::load_with(dir.path(), &Secrets::default()).unwrap()
}

const ONE: &str = "[[recipient]]\nid = \"acme\"\nname = \"ACME\"\ntype = \"repairs-contractor\"\napi_key_sha256 = \"d76c5488b91bf9b125e97aa6176d0d893c7da3115169ed61aabcb169124d10b8\"\nrate_limit = \"10/min\"\n";

#[test]
fn a_new_recipient_credential_or_higher_rate_widens() {
    let base = with_recipients(ONE);
    let second = format!("{ONE}\n[[recipient]]\nid = \"other\"\nname = \"Other\"\ntype = \"repairs-contractor\"\ncert_san = \"other.example\"\n");
    let got = between(&base, &with_recipients(&second));
    let widened = widenings(&got);
    assert!(
        widened.contains(&"recipient other is of type repairs-contractor: added"),
        "{got:#?}"
    );
    assert!(
        widened
            .contains(&"recipient other is identified by a certificate for other.example: added"),
        "{got:#?}"
    );

    let faster = ONE.replace("10/min", "1/s");
    let got = between(&base, &with_recipients(&faster));
    assert_eq!(
        widenings(&got),
        ["recipient acme: rate limit 10 requests per minute becomes 1 request per second"]
    );
    let slower = ONE.replace("10/min", "100/h");
    let got = between(&base, &with_recipients(&slower));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(widenings(&got).is_empty(), "{got:?}");

    let new_key = ONE.replace("d76c5488b91bf9b1", "0000000000000000");
    let got = between(&base, &with_recipients(&new_key));
    assert_eq!(
        widenings(&got),
        ["recipient acme is identified by the API key whose SHA-256 begins 0000000000000000: added"]
    );
}

#[test]
fn a_scrub_pattern_dropped_widens() {
    let scrubbed = format!(
        "{JOB}\n[[route.scrub]]\npaths = [\"tenant.name\"]\npatterns = [\"phone\", \"email\"]\n"
    );
    let fewer = scrubbed.replace("[\"phone\", \"email\"]", "[\"phone\"]");
    assert_eq!(
        widenings(&changes(&scrubbed, &fewer)),
        ["repairs-contractor on GET /jobs/{job_id} scrubs email from tenant.name: removed"]
    );
    assert!(widenings(&changes(JOB, &scrubbed)).is_empty());
}

#[test]
fn an_accepted_path_added_or_a_require_removed_widens() {
    let write = "\n[[route]]\nmethod = \"PATCH\"\npath = \"/jobs/{job_id}\"\nsubjects_optional = true\naccept = [\"status\"]\nallow = [\"id\"]\n[[route.require]]\ncondition = \"request.body.status == 'completed'\"\nreason = \"only completion\"\n";
    let wider = write.replace("[\"status\"]", "[\"status\", \"priority\"]");
    let got = changes(&format!("{JOB}{write}"), &format!("{JOB}{wider}"));
    assert_eq!(
        widenings(&got),
        ["repairs-contractor may write priority on PATCH /jobs/{job_id}: added"]
    );
    let unchecked = &write[..write.find("[[route.require]]").unwrap()];
    let got = changes(&format!("{JOB}{write}"), &format!("{JOB}{unchecked}"));
    assert_eq!(
        widenings(&got),
        ["repairs-contractor on PATCH /jobs/{job_id} writes only when request.body.status == 'completed' (\"only completion\"): removed"]
    );
}
