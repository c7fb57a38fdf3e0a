//! Tests of rule loading.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::test_util::load;

/// The problems of loading `routes`, as `check` prints them but without the file name.
pub(super) fn problems(routes: &str, key: Option<&[u8]>) -> Vec<String> {
    let diagnostics = match load(routes, key) {
        Ok(policy) => policy.warnings().to_vec(),
        Err(e) => e.0,
    };
    diagnostics
        .iter()
        // Every route here but one names no subjects; that warning has its own test.
        .filter(|d| !d.to_string().contains("route names no subjects"))
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
            "{ROUTE}\n[[route.items]]\npath = \"tenant.caution_markers\"\nkeep = \"itme.informed\"\nreason = \"r\"\n\n[[route.derive]]\nfield = \"band\"\nvalue = \"agee_band(body.tenant.dob)\"\n\n[route.refuse]\ncondition = \"item.x\"\nreason = \"objection\"\n"
        ),
        None,
    );
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got[0].starts_with("12: items keep: unknown variable \"itme\""),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("17: derive value: unknown function \"agee_band\""),
        "{got:?}"
    );
    assert!(
        got[2].starts_with("20: refuse condition: `item` is bound only inside an array"),
        "{got:?}"
    );
}

#[test]
fn paths_of_items_and_derive_are_checked() {
    let got = problems(
        &format!(
            "{ROUTE}\n[[route.items]]\npath = \"tenant..markers\"\nkeep = \"true\"\nreason = \"r\"\n\n[[route.derive]]\nfield = \"tenants[]\"\nvalue = \"1\"\n"
        ),
        None,
    );
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("11: items path: malformed path"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("16: derive field \"tenants[]\" must end with a key"),
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
    let policy = crate::test_util::shipped_rules();
    assert!(policy.warnings().is_empty(), "{:?}", policy.warnings());
    let kind = &policy.recipient("acme-repairs").unwrap().kind;
    let c = &kind.routes[0].plan.conditions();
    assert_eq!(c.when().len(), 1);
    assert_eq!(c.items().len(), 1);
}

// === loading a whole rules directory ===

use super::*;

pub(super) fn write_rules(type_text: &str, recipients: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("types")).expect("types");
    std::fs::write(dir.path().join("types/repairs.toml"), type_text).expect("type");
    std::fs::write(dir.path().join("recipients.toml"), recipients).expect("recipients");
    dir
}

pub(super) const TYPE: &str = r#"type = "repairs"
purpose = "Repairs"
lawful_basis = "contract"
rate_limit = "60/min"

[[route]]
method = "GET"
path = "/jobs/{id}"
allow = ["id", "tenant.name"]
"#;

pub(super) const RECIPIENT: &str = r#"[[recipient]]
id = "acme"
name = "ACME"
type = "repairs"
api_key_sha256 = "D76C5488B91BF9B125E97AA6176D0D893C7DA3115169ED61AABCB169124D10B8"
"#;

#[test]
fn a_good_policy_compiles() {
    let dir = write_rules(TYPE, RECIPIENT);
    let policy = Policy::load(dir.path()).expect("loads");
    let acme = policy.recipient("acme").expect("acme");
    assert_eq!(acme.kind.name, "repairs");
    assert_eq!(
        acme.kind.rate_limit,
        Some(Rate {
            count: 60,
            per: Duration::from_secs(60)
        })
    );
    assert_eq!(acme.kind.routes.len(), 1);
    assert_eq!(
        acme.api_key_sha256.map(hex::encode).as_deref(),
        Some("d76c5488b91bf9b125e97aa6176d0d893c7da3115169ed61aabcb169124d10b8")
    );
    assert_eq!(policy.generation().len(), 64);
}

#[test]
fn the_generation_changes_with_the_rules() {
    let a = Policy::load(write_rules(TYPE, RECIPIENT).path()).expect("a");
    let b = Policy::load(write_rules(&TYPE.replace("Repairs", "Repairs!"), RECIPIENT).path())
        .expect("b");
    assert_ne!(a.generation(), b.generation());
}

/// The generation names the rules, not how their directory was typed: the register's
/// generation must match the ledger's records whether `serve` was given `rules`, `./rules`
/// or an absolute path, from whatever working directory.
#[test]
fn the_generation_is_the_same_however_the_directory_is_named() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let secrets = Secrets {
        pseudonym_key: Some(crate::filter::cel::PseudonymKey::new(vec![7; 32]).expect("key")),
        pseudonym_key_env: None,
    };
    let generation = |dir: &std::path::Path| {
        Policy::load_with(dir, &secrets)
            .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
            .generation()
            .to_owned()
    };
    let absolute = generation(&root.join("rules"));
    for dir in [
        root.join("rules/."),
        root.join("rules/types/.."),
        root.join("src/../rules"),
    ] {
        assert_eq!(generation(&dir), absolute, "{dir:?}");
    }
    // Unit tests run in the package's directory, so these are relative to the repository.
    if std::env::current_dir().ok().as_deref() == Some(root) {
        for dir in ["rules", "./rules"] {
            assert_eq!(generation(std::path::Path::new(dir)), absolute, "{dir}");
        }
    }
}

#[test]
fn a_type_in_the_wrong_file_is_an_error() {
    let dir = write_rules(
        &TYPE.replace("type = \"repairs\"", "type = \"other\""),
        RECIPIENT,
    );
    let err = Policy::load(dir.path()).expect_err("wrong file");
    assert!(
        err.0
            .iter()
            .any(|d| d.line == 1 && d.message.contains("other.toml")),
        "{:?}",
        err.0
    );
}

#[test]
fn rates() {
    assert_eq!(Rate::parse("5/s").map(|r| r.count), Some(5));
    assert_eq!(
        Rate::parse("120/min").map(|r| r.per),
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        Rate::parse("1000/h").map(|r| r.per),
        Some(Duration::from_secs(3600))
    );
    for bad in ["0/s", "x/s", "5/day", "5", "-1/s"] {
        assert_eq!(Rate::parse(bad), None, "{bad}");
    }
}

#[test]
fn max_in_flight_is_a_positive_count_at_its_line() {
    let with = |n: &str| TYPE.replace("rate_limit = \"60/min\"", &format!("max_in_flight = {n}"));
    let dir = write_rules(&with("8"), RECIPIENT);
    let policy = Policy::load(dir.path()).expect("loads");
    assert_eq!(
        policy.recipient("acme").expect("acme").kind.max_in_flight,
        Some(8)
    );
    for bad in ["0", "-3"] {
        let dir = write_rules(&with(bad), RECIPIENT);
        let err = Policy::load(dir.path()).expect_err("not a count");
        assert!(
            err.0
                .iter()
                .any(|d| d.line == 4 && d.message.contains("max_in_flight")),
            "{:?}",
            err.0
        );
    }
}

#[test]
fn refuse_status_is_403_or_404() {
    let refuse = |status: &str| {
        problems(
            &format!("{ROUTE}\n[route.refuse]\ncondition = \"true\"\nreason = \"r\"\n{status}\n"),
            None,
        )
    };
    assert!(refuse("").is_empty(), "{:?}", refuse(""));
    assert!(refuse("status = 404").is_empty());
    let got = refuse("status = 200");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("13: refuse status 200 must be 403 or 404"),
        "{got:?}"
    );
}

#[test]
fn a_route_without_subjects_is_warned_about_unless_they_are_optional() {
    let warned = |route: &str| match load(route, None) {
        Ok(policy) => policy
            .warnings()
            .iter()
            .filter(|d| d.to_string().contains("route names no subjects"))
            .map(|d| (d.is_error(), d.to_string()))
            .collect::<Vec<_>>(),
        Err(e) => panic!("{e:?}"),
    };
    let got = warned(ROUTE);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(!got[0].0, "a warning, not an error: {got:?}");
    assert!(got[0].1.contains("repairs-contractor.toml:5:"), "{got:?}");
    assert!(warned(&ROUTE.replace("allow =", "subjects_optional = true\nallow =")).is_empty());
    assert!(warned(&ROUTE.replace("allow =", "subjects = [\"tenant.id\"]\nallow =")).is_empty());
}

#[test]
fn an_items_rule_without_a_reason_is_a_warning_and_an_empty_one_an_error() {
    let items = format!("{ROUTE}\n[[route.items]]\npath = \"markers\"\nkeep = \"item.ok\"\n");
    let got = problems(&items, None);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("10: warning: items rule has no reason"),
        "{got:?}"
    );
    let got = problems(&format!("{items}reason = \"  \"\n"), None);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("13: reason is empty"), "{got:?}");
    let policy = load(
        &format!("{items}reason = \"only the markers that are ok\"\n"),
        None,
    )
    .unwrap();
    let kind = policy.types().next().unwrap();
    let reason = kind.routes[0].plan.conditions().items()[0]
        .reason
        .as_deref();
    assert_eq!(reason, Some("only the markers that are ok"));
}

#[test]
fn an_items_rule_may_not_read_body_where_items_filter() {
    let items = |path: &str, keep: &str| {
        format!("\n[[route.items]]\npath = \"{path}\"\nkeep = \"{keep}\"\nreason = \"r\"\n")
    };
    // Another rule's array, its own array, or a value above either read whole: refused.
    for keep in [
        "size(body.tenant.markers) == 1",
        "body.tenant.markers.exists(m, m.informed == false)",
        "size(body.tenant) > 3",
    ] {
        let rules = format!(
            "{ROUTE}{}{}",
            items("tenant.contacts", keep),
            items("tenant.markers", "item.informed")
        );
        let got = problems(&rules, None);
        assert_eq!(got.len(), 1, "{keep}: {got:?}");
        assert!(
            got[0].starts_with("12: items keep reads body where the items rule on"),
            "{got:?}"
        );
    }
    let own = format!(
        "{ROUTE}{}",
        items("tenant.markers", "size(body.tenant.markers) < 9")
    );
    assert_eq!(problems(&own, None).len(), 1);
    // Fields no items rule filters: allowed.
    let elsewhere = format!(
        "{ROUTE}{}{}",
        items("tenant.contacts", "body.tenant.name == 'Ada'"),
        items("tenant.markers", "item.informed")
    );
    assert!(problems(&elsewhere, None).is_empty());
}

#[test]
fn every_rule_keeps_where_it_is_written() {
    let rules = format!(
        r#"{ROUTE}
# notice.txt: "when"
[[route.when]]
condition = "true"
reason = "r"
allow = ["a", "b"]

# notice.txt: "items"
[[route.items]]
path = "list"
keep = "item.ok"
reason = "r"

[[route.derive]]
field = "tenant.band"
value = "1"

# notice.txt: "refuse"
[route.refuse]
condition = "false"
reason = "r"
"#
    );
    let policy = load(&rules, None).unwrap();
    let kind = policy.types().next().unwrap();
    let route = &kind.routes[0];
    let sites = &route.rule_sites;
    // Three header lines, then the route from line 5.
    assert_eq!(route.site.line, 5);
    assert_eq!(route.site.comment, None);
    let lines = |sites: &[super::Site]| sites.iter().map(|s| s.line).collect::<Vec<_>>();
    assert_eq!(lines(&sites.allow), [8, 8]);
    assert_eq!(route.plan.allow().len(), sites.allow.len());
    let conditions = route.plan.conditions();
    let when = &sites.when[0];
    assert_eq!((when.rule.line, lines(&when.allow)), (11, vec![14, 14]));
    assert_eq!(when.rule.comment.as_deref(), Some("notice.txt: \"when\""));
    assert_eq!(lines(&sites.items), [17]);
    assert_eq!(conditions.items()[0].reason.as_deref(), Some("r"));
    assert_eq!(sites.derive[0].comment, None);
    let refuse = sites.refuse.as_ref().unwrap();
    assert_eq!(refuse.comment.as_deref(), Some("notice.txt: \"refuse\""));
    // The audit's `rule_errors` name the same lines.
    let cited =
        |site: &super::Site, what: &str| format!("{}:{} {what}", site.file.display(), site.line);
    assert_eq!(conditions.when()[0].site, cited(&when.rule, "when"));
    assert_eq!(conditions.items()[0].site, cited(&sites.items[0], "items"));
    assert_eq!(
        conditions.derive()[0].site,
        cited(&sites.derive[0], "derive")
    );
    assert_eq!(conditions.refuse().unwrap().site, cited(refuse, "refuse"));
}

#[test]
fn max_items_must_be_at_least_one_and_caps_an_array_answer() {
    let capped = |n: &str| format!("{ROUTE}max_items = {n}\n");
    assert_eq!(
        problems(&capped("0"), None),
        ["9: max_items 0 must be a whole number of at least 1"]
    );
    assert_eq!(
        problems(&capped("-3"), None),
        ["9: max_items -3 must be a whole number of at least 1"]
    );
    let policy = crate::test_util::policy(&capped("2"));
    let plan = &policy.recipient("acme-repairs").unwrap().kind.routes[0].plan;
    assert_eq!(plan.too_many_items(&serde_json::json!([1, 2])), None);
    assert_eq!(plan.too_many_items(&serde_json::json!([1, 2, 3])), Some(2));
    assert_eq!(
        plan.too_many_items(&serde_json::json!({"a": [1, 2, 3]})),
        None,
        "not a list answer"
    );
}
