//! `register`: the disclosure register of the shipped rules, in each format, names every
//! recipient type and every field those rules disclose, with the conditions, derivations and
//! refusals, and the HTML page is self-contained.

use std::path::Path;

use need_to_know::filter::cel::PseudonymKey;
use need_to_know::rules::{Policy, Secrets};

use crate::support::cli::{Cli, PSEUDONYM_KEY};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `need-to-know register --format FORMAT` in the repository, with the shipped config.
fn register(format: &str) -> String {
    Cli::new(["register", "--format", format])
        .in_repo()
        .pseudonym_key()
        .success()
        .stdout
}

fn shipped() -> Policy {
    let secrets = Secrets {
        pseudonym_key: Some(PseudonymKey::new(PSEUDONYM_KEY.as_bytes().to_vec()).expect("key")),
        pseudonym_key_env: None,
    };
    Policy::load_with(&root().join("rules"), &secrets).expect("shipped rules load")
}

/// Every path the shipped rules disclose: allow, `when` allow, derived fields.
fn disclosed_paths(policy: &Policy) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for kind in policy.types() {
        for route in &kind.routes {
            let paths = route
                .plan
                .allow()
                .iter()
                .chain(route.plan.conditions().when().iter().flat_map(|w| &w.allow))
                .chain(route.plan.conditions().derive().iter().map(|d| &d.field));
            for p in paths {
                out.push((kind.name.clone(), p.to_string()));
            }
        }
    }
    assert!(out.len() > 40, "the shipped rules disclose more than this");
    out
}

/// The same text as the HTML page shows it.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Every type and every disclosed path of the shipped rules appears in `text`; `show` is how
/// the format writes a path (escaped, with break opportunities, ...).
fn assert_names_everything(text: &str, show: impl Fn(&str) -> String, format: &str) {
    let policy = shipped();
    for kind in policy.types() {
        assert!(
            text.contains(&kind.name),
            "{format}: type {} missing",
            kind.name
        );
        for recipient in policy
            .recipients()
            .iter()
            .filter(|r| r.kind.name == kind.name)
        {
            assert!(
                text.contains(&recipient.id),
                "{format}: recipient {} missing",
                recipient.id
            );
        }
    }
    for (kind, path) in disclosed_paths(&policy) {
        assert!(
            text.contains(&show(&path)),
            "{format}: {kind} field {path} missing"
        );
    }
    for hash in policy.recipients().iter().filter_map(|r| r.api_key_sha256) {
        assert!(
            !text.contains(&hex(&hash)),
            "{format}: a key hash must never be in the register"
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn html_names_every_type_field_condition_derivation_and_refusal() {
    let html = register("html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<h1>Disclosure register</h1>"));
    // The generation hash covers the files' paths as loaded, so only its form is checked.
    let marker = "Rules generation</dt><dd><span class=\"hash\">";
    let at = html.find(marker).expect("the rules generation") + marker.len();
    let hash = html.get(at..at + 64).expect("a hash");
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
    assert_names_everything(
        &html,
        |p| {
            html_escape(p)
                .replace('.', ".<wbr>")
                .replace("[]", "[]<wbr>")
        },
        "html",
    );
    // The conditional field with its reason and condition.
    let row = html
        .lines()
        .find(|l| l.contains("tenant.<wbr>caution_markers[]<wbr>.<wbr>instruction"))
        .expect("caution marker instruction row");
    assert!(row.contains("Only when:"), "{row}");
    assert!(
        row.contains("contractor assigned to an open job at this property"),
        "{row}"
    );
    assert!(
        row.contains("body.contractor_code == recipient.attributes.contractor_code"),
        "{row}"
    );
    // A derived field, a row filter, the research refusal.
    let row = html
        .lines()
        .find(|l| l.contains("[]<wbr>.<wbr>age_band"))
        .expect("age band row");
    assert!(row.contains("Derived:"), "{row}");
    assert!(row.contains("age_band(item.date_of_birth)"), "{row}");
    assert!(row.contains("date of birth"), "{row}");
    assert!(html.contains("Row filter:"));
    assert!(html
        .contains("Refused when:</span> the tenant has objected to research or withdrawn consent"));
    // Plain words: the lawful bases and the glossary.
    assert!(html.contains("Contract (UK GDPR Art. 6(1)(b))"));
    assert!(html.contains("Legal obligation (UK GDPR Art. 6(1)(c))"));
    assert!(html.contains("Legitimate interests (UK GDPR Art. 6(1)(f))"));
    assert!(html.contains("telephone number"));
    // Citations from the comments above the rules.
    assert!(html.contains("Caution indicators may be shared with contractors"));
    assert!(html.contains("Research data we receive is anonymised"));
    assert!(html
        .contains("necessary to meet the conditions set out in the contract/agreement with you"));
}

#[test]
fn html_is_self_contained_and_well_formed() {
    let html = register("html");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external references"
    );
    assert!(
        !html.contains("<link") && !html.contains("<script"),
        "no stylesheet links or scripts"
    );
    assert!(html.contains("<style>") && html.contains("@media print"));
    for tag in [
        "html", "head", "body", "table", "thead", "tbody", "tr", "section", "dl", "ul", "ol",
    ] {
        let open =
            html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count();
        let close = html.matches(&format!("</{tag}>")).count();
        assert_eq!(open, close, "<{tag}> opened {open} times, closed {close}");
    }
    assert!(
        html.matches("<table").count() >= 7 + 5,
        "a fields table per route, recipients per type"
    );
    assert!(html.trim_end().ends_with("</html>"));
}

#[test]
fn markdown_names_every_type_field_condition_derivation_and_refusal() {
    let md = register("md");
    assert!(md.starts_with("# Disclosure register\n"));
    assert_names_everything(&md, |p| format!("`{p}`"), "md");
    let row = md
        .lines()
        .find(|l| l.contains("`tenant.caution_markers[].instruction`"))
        .expect("caution marker instruction row");
    assert!(
        row.contains("Only when: contractor assigned to an open job at this property"),
        "{row}"
    );
    let row = md
        .lines()
        .find(|l| l.contains("`[].age_band`"))
        .expect("age band row");
    assert!(row.contains("Derived:"), "{row}");
    assert!(md.contains("Refused when: the tenant has objected to research or withdrawn consent"));
    // Every table row has as many cells as its header: no `|` from the rules split one. The
    // field tables have three columns, the recipients tables five (with their attributes).
    for line in md.lines().filter(|l| l.starts_with("| ")) {
        let cells = line.replace("\\|", "").matches('|').count();
        assert!(cells == 4 || cells == 6, "{line}");
    }
}

/// The fields of one CSV record; quoted fields may hold commas and doubled quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && record.is_empty(),
        "a torn record"
    );
    records
}

#[test]
fn csv_has_a_row_per_field_and_rule() {
    let csv = register("csv");
    let records = parse_csv(&csv);
    let header = &records[0];
    assert_eq!(
        header,
        &[
            "type",
            "recipient_ids",
            "purpose",
            "lawful_basis",
            "method",
            "route",
            "field",
            "field_words",
            "disclosure",
            "condition_or_reason",
            "citation"
        ]
    );
    for r in &records[1..] {
        assert_eq!(r.len(), header.len(), "{r:?}");
        assert!(
            ["always", "condition", "derived", "row_filter", "refused"].contains(&r[8].as_str()),
            "{r:?}"
        );
        assert!(
            !r[10].is_empty(),
            "every shipped rule cites the notice: {r:?}"
        );
    }
    let policy = shipped();
    for (kind, path) in disclosed_paths(&policy) {
        assert!(
            records[1..].iter().any(|r| r[0] == kind && r[6] == path),
            "csv: {kind} field {path} missing"
        );
    }
    let caution = records
        .iter()
        .find(|r| r[6] == "tenant.caution_markers[].instruction")
        .expect("caution marker instruction");
    assert_eq!(caution[8], "condition");
    assert!(caution[9].starts_with("contractor assigned to an open job at this property"));
    assert_eq!(caution[1], "acme-repairs brightfix northgate-gas");
    let age = records
        .iter()
        .find(|r| r[0] == "research-vendor" && r[6] == "[].age_band")
        .expect("age band");
    assert_eq!(age[8], "derived");
    assert!(age[9].contains("age_band(item.date_of_birth)"));
    let refusal = records
        .iter()
        .find(|r| r[0] == "research-vendor" && r[8] == "refused")
        .expect("research refusal");
    assert!(refusal[9].starts_with("the tenant has objected to research or withdrawn consent"));
    assert_eq!(refusal[3], "legitimate_interests");
}

#[test]
fn the_shipped_glossary_covers_every_disclosed_path() {
    let policy = shipped();
    let glossary = need_to_know::register::glossary::load(&root().join("rules")).expect("glossary");
    let missing = need_to_know::register::coverage::missing(&policy, &glossary);
    assert!(missing.is_empty(), "no plain words for: {missing:?}");
    assert_eq!(
        glossary.words("tenant.phone"),
        Some("tenant's telephone number")
    );
    assert_eq!(glossary.words("[].age_band"), Some("age band"));
}

#[test]
fn missing_glossary_entries_are_named_by_file_and_line() {
    let policy = shipped();
    let empty = need_to_know::register::glossary::Glossary::default();
    let missing = need_to_know::register::coverage::missing(&policy, &empty);
    let file = root().join("rules/types/repairs-contractor.toml");
    let text = std::fs::read_to_string(&file).expect("read");
    let (_, line, _) = missing
        .iter()
        .find(|(f, _, p)| {
            f.ends_with("repairs-contractor.toml") && p == "tenant.caution_markers[].instruction"
        })
        .expect("the when allow entry is missing");
    let at = text.lines().nth(line - 1).expect("line");
    assert!(
        at.contains("\"tenant.caution_markers[].instruction\""),
        "line {line}: {at}"
    );
}

#[test]
fn writes_to_a_file_and_refuses_rules_with_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("register.html");
    Cli::new(["register", "--output"])
        .arg(&out)
        .in_repo()
        .pseudonym_key()
        .success();
    assert!(std::fs::read_to_string(&out)
        .expect("written")
        .contains("Disclosure register"));
    // Rules with an error do not load: no register, the config code, the error's FILE:LINE.
    let broken = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate::support::copy_dir(&root.join("rules"), &broken.path().join("rules"));
    std::fs::copy(
        root.join("need-to-know.toml"),
        broken.path().join("need-to-know.toml"),
    )
    .expect("config");
    let police = broken.path().join("rules/types/police.toml");
    let text = std::fs::read_to_string(&police).expect("police");
    std::fs::write(&police, text.replacen("allow = [", "alow = [", 1)).expect("write");
    let out = Cli::new(["register"])
        .current_dir(broken.path())
        .pseudonym_key()
        .expect(64);
    assert!(out.stdout.is_empty(), "{out}");
    assert!(out.stderr.contains("rules/types/police.toml:"), "{out}");
}
