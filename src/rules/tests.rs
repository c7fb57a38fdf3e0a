//! Tests of rule loading; `check`'s file:line output is tested through the binary in
//! tests/cli.rs.

use super::*;

fn write_rules(type_text: &str, recipients: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("types")).expect("types");
    std::fs::write(dir.path().join("types/repairs.toml"), type_text).expect("type");
    std::fs::write(dir.path().join("recipients.toml"), recipients).expect("recipients");
    dir
}

const TYPE: &str = r#"type = "repairs"
purpose = "Repairs"
lawful_basis = "contract"
rate_limit = "60/min"

[[route]]
method = "GET"
path = "/jobs/{id}"
allow = ["id", "tenant.name"]
"#;

const RECIPIENT: &str = r#"[[recipient]]
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
fn conditional_rules_are_refused_until_supported() {
    let text = format!("{TYPE}\n[route.refuse]\ncondition = \"true\"\nreason = \"x\"\n");
    let err = Policy::load(write_rules(&text, RECIPIENT).path());
    assert!(err.is_err());
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
