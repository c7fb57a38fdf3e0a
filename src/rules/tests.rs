//! Tests of rule loading.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::filter::conditions::tests::load;

/// The problems of loading `routes`, as `check` prints them but without the file name.
fn problems(routes: &str, key: Option<&[u8]>) -> Vec<String> {
    let diagnostics = match load(routes, key) {
        Ok(policy) => policy.warnings().to_vec(),
        Err(e) => e.0,
    };
    diagnostics
        .iter()
        .map(|d| {
            let text = d.to_string();
            let name = "repairs-contractor.toml:";
            match text.find(name) {
                Some(i) => text[i + name.len()..].to_owned(),
                None => text,
            }
        })
        .collect()
}

const ROUTE: &str = r#"
[[route]]
method = "GET"
path = "/jobs/{job_id}"
allow = ["id", "tenant"]
"#;

#[test]
fn cel_syntax_error_is_reported_at_its_line() {
    let got = problems(
        &format!(
            "{ROUTE}\n[[route.when]]\ncondition = \"body.status ==\"\nreason = \"r\"\nallow = [\"x\"]\n"
        ),
        None,
    );
    // Three header lines, then the route from line 5; the condition is on line 11.
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("11: when condition: CEL syntax error at column"),
        "{got:?}"
    );
}

#[test]
fn multi_line_expression_errors_point_into_the_expression() {
    let got = problems(
        &format!(
            "{ROUTE}\n[[route.when]]\ncondition = '''\nbody.status == 'open' &&\n  body.x ==\n'''\nreason = \"r\"\nallow = [\"x\"]\n"
        ),
        None,
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("14: when condition: CEL syntax error"),
        "{got:?}"
    );
}

#[test]
fn unknown_variable_and_function_are_reported_at_their_lines() {
    let got = problems(
        &format!(
            "{ROUTE}\n[[route.items]]\npath = \"tenant.caution_markers\"\nkeep = \"itme.informed\"\n\n[[route.derive]]\nfield = \"band\"\nvalue = \"agee_band(body.tenant.dob)\"\n\n[route.refuse]\ncondition = \"item.x\"\nreason = \"objection\"\n"
        ),
        None,
    );
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got[0].starts_with("12: items keep: unknown variable \"itme\""),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("16: derive value: unknown function \"agee_band\""),
        "{got:?}"
    );
    assert!(
        got[2].starts_with("19: refuse condition: `item` is bound only inside an array"),
        "{got:?}"
    );
}

#[test]
fn paths_of_items_and_derive_are_checked() {
    let got = problems(
        &format!(
            "{ROUTE}\n[[route.items]]\npath = \"tenant..markers\"\nkeep = \"true\"\n\n[[route.derive]]\nfield = \"tenants[]\"\nvalue = \"1\"\n"
        ),
        None,
    );
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("11: items path: malformed path"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("15: derive field \"tenants[]\" must end with a key"),
        "{got:?}"
    );
}

#[test]
fn warns_on_redundant_when_paths_and_derived_collisions() {
    let got = problems(
        &format!(
            "{ROUTE}\n[[route.when]]\ncondition = \"true\"\nreason = \"r\"\nallow = [\"tenant.name\", \"extra\"]\n\n[[route.derive]]\nfield = \"extra.band\"\nvalue = \"'x'\"\n"
        ),
        None,
    );
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with(
            "13: warning: when allow \"tenant.name\" is already granted by allow \"tenant\""
        ),
        "{got:?}"
    );
    assert!(
        got[1].starts_with(
            "16: warning: derived field \"extra.band\" overlaps the allowed path \"extra\""
        ),
        "{got:?}"
    );
}

#[test]
fn pseudonym_needs_a_key() {
    let rules =
        format!("{ROUTE}\n[[route.derive]]\nfield = \"ref\"\nvalue = \"pseudonym(body.id)\"\n");
    let got = problems(&rules, None);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("12: pseudonym() needs a key"), "{got:?}");
    assert!(problems(&rules, Some(&[1; 32])).is_empty());
}

#[test]
fn empty_reason_is_an_error() {
    let got = problems(
        &format!("{ROUTE}\n[route.refuse]\ncondition = \"false\"\nreason = \" \"\n"),
        None,
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("12: reason is empty"), "{got:?}");
}

#[test]
fn the_shipped_rules_load_cleanly_with_their_conditions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let policy = crate::rules::Policy::load(&dir).unwrap();
    assert!(policy.warnings().is_empty(), "{:?}", policy.warnings());
    let kind = &policy.recipient("acme-repairs").unwrap().kind;
    let c = &kind.routes[0].conditions;
    assert_eq!(c.when().len(), 1);
    assert_eq!(c.items().len(), 1);
}
