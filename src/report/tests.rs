//! Tests of the subject access report's content.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use super::*;

fn record(
    ts: &str,
    recipient: &str,
    kind: &str,
    disclosed: &[&str],
    reference: Option<&str>,
) -> String {
    let mut r = serde_json::json!({
        "ts": ts, "recipient": recipient, "recipient_type": kind, "method": "GET",
        "route": "/tenants/{tenant_id}", "status": 200, "purpose": "a purpose",
        "lawful_basis": "contract", "reasons": [], "subjects": ["T-0001"],
        "disclosed": disclosed, "withheld": [],
    });
    if let Some(reference) = reference {
        r["disclosure_reference"] = reference.into();
    }
    r.to_string()
}

fn controller() -> Controller {
    Controller {
        name: "Lincoln Homes Ltd".into(),
        contact: "1 Example Street, Lincoln".into(),
        dpo_contact: "dpo@example.org".into(),
        retention: "six years after the tenancy ends".into(),
    }
}

/// Thirty identical disclosures to one organisation and two of another set of fields.
fn lines() -> Vec<(Position, String)> {
    let mut lines = Vec::new();
    for day in 1..=30 {
        let ts = format!("2026-06-{day:02}T10:00:00Z");
        lines.push((
            Some((0, day)),
            record(&ts, "acme", "repairs-contractor", &["name", "phone"], None),
        ));
    }
    lines.push((
        Some((0, 31)),
        record(
            "2026-07-01T09:00:00Z",
            "acme",
            "repairs-contractor",
            &["name"],
            None,
        ),
    ));
    lines.push((
        Some((0, 32)),
        record(
            "2026-07-02T09:00:00Z",
            "police",
            "police",
            &["name", "address"],
            Some("CRIME-1"),
        ),
    ));
    lines
}

fn report(checked: Checked, exempt: &[String]) -> Report {
    let c = controller();
    let options = Options {
        controller: Some(&c),
        exempt,
        ..Options::default()
    };
    build_from(checked, lines(), "T-0001", &options, &Glossary::default())
}

fn verified() -> Checked {
    Checked {
        problem: None,
        records: 40,
        broken_at: None,
        sources: vec!["/srv/ledger/disclosures.jsonl".into()],
    }
}

#[test]
fn identical_disclosures_are_one_line_with_a_count_and_dates() {
    let r = report(verified(), &[]);
    let acme = &r.recipients[0];
    assert_eq!(acme.disclosures.len(), 31, "every date is kept");
    assert_eq!(acme.groups.len(), 2);
    let g = &acme.groups[0];
    assert_eq!(
        (g.count, g.first.as_str(), g.last.as_str()),
        (30, "2026-06-01T10:00:00Z", "2026-06-30T10:00:00Z")
    );
    let html = r.to_html();
    assert!(
        html.contains("30 times, from 2026-06-01 to 2026-06-30"),
        "{html}"
    );
    assert!(html.contains("once, on 2026-07-01"), "{html}");
    assert_eq!(
        html.matches("<li>2026-06-").count(),
        30,
        "expandable to every date"
    );
}

#[test]
fn the_page_states_the_period_the_controller_and_the_rights_and_no_path() {
    let html = report(verified(), &[]).to_html();
    for needle in [
        "the disclosures about you recorded from 2026-06-01 to 2026-07-02",
        "Lincoln Homes Ltd",
        "dpo@example.org",
        "six years after the tenancy ends",
        "Correct it",
        "Have it deleted",
        "Limit its use",
        "Object",
        "Information Commissioner",
        "counter(page)",
    ] {
        assert!(html.contains(needle), "{needle} not in the page");
    }
    assert!(
        !html.contains("/srv/ledger"),
        "an internal path on the tenant's page"
    );
}

#[test]
fn an_exempt_type_is_left_out_and_listed_for_the_dpo_only() {
    let r = report(verified(), &["police".to_owned()]);
    assert!(r.recipients.iter().all(|s| s.recipient_type != "police"));
    let html = r.to_html();
    let json = serde_json::to_string(&r).unwrap();
    for text in [&html, &json] {
        assert!(
            !text.contains("CRIME-1") && !text.contains("police"),
            "the exempt disclosure shows"
        );
    }
    let lines = r.left_out_lines();
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains("1 disclosure to police (police), 2026-07-02 to 2026-07-02"),
        "{}",
        lines[0]
    );
    // The period is that of what the report shows.
    assert_eq!(r.last_record.as_deref(), Some("2026-07-01T09:00:00Z"));
}

#[test]
fn records_from_the_break_on_are_marked_unverified() {
    let broken = Checked {
        problem: Some("line 20: hash mismatch".into()),
        records: 19,
        broken_at: Some((0, 20)),
        sources: Vec::new(),
    };
    let r = report(broken, &[]);
    assert_eq!(r.records_checked, 19);
    let flags: Vec<bool> = r.recipients[0]
        .disclosures
        .iter()
        .map(|d| d.unverified)
        .collect();
    assert!(
        flags[..19].iter().all(|u| !u) && flags[19..].iter().all(|&u| u),
        "{flags:?}"
    );
    let html = r.to_html();
    assert!(html.contains("did not verify") && html.contains("The first 19 records verified"));
    // Thirteen marked entries, on screen and on paper, and the warning that explains the mark.
    assert_eq!(html.matches(">unverified<").count(), 2 * 13 + 1);
    // Where the backend cannot say where it broke, nothing is vouched for.
    let unknown = Checked {
        broken_at: None,
        ..Checked {
            problem: Some("chain a: seq 3: gap".into()),
            ..Checked::default()
        }
    };
    let r = report(unknown, &[]);
    assert!(r
        .recipients
        .iter()
        .flat_map(|s| &s.disclosures)
        .all(|d| d.unverified));
}

// === described from the rules snapshot ===

use crate::rules::snapshot::{Organisation, Purpose, Snapshot};

/// A snapshot of rules naming `acme` as `name`, with words for `phone`.
fn snapshot(generation: &str, name: &str) -> Snapshot {
    Snapshot {
        generation: generation.into(),
        recipients: [(
            "acme".to_owned(),
            Organisation {
                name: name.into(),
                kind: "repairs-contractor".into(),
            },
        )]
        .into(),
        types: [(
            "repairs-contractor".to_owned(),
            Purpose {
                purpose: "Carry out repairs".into(),
                lawful_basis: "contract".into(),
            },
        )]
        .into(),
        glossary: [("phone".to_owned(), "telephone number".to_owned())].into(),
    }
}

/// Keeps `snapshot` beside `ledger` as `serve` would; returns its digest.
fn keep(ledger: &std::path::Path, snapshot: &Snapshot) -> String {
    let sealed = snapshot.seal();
    let dir = crate::audit::snapshots::dir_for(ledger);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{}.json", sealed.digest)), &sealed.bytes).unwrap();
    sealed.digest
}

/// A disclosure of `phone` to acme made under `generation`, naming snapshot `digest`.
fn described_record(day: u32, generation: &str, digest: &str) -> (Position, String) {
    let ts = format!("2026-06-{day:02}T10:00:00Z");
    let mut r: Value =
        serde_json::from_str(&record(&ts, "acme", "repairs-contractor", &["phone"], None)).unwrap();
    r["rules_generation"] = generation.into();
    r["rules_snapshot"] = digest.into();
    (Some((0, u64::from(day))), r.to_string())
}

fn described(ledger: &std::path::Path, lines: Vec<(Position, String)>) -> Report {
    let dirs = crate::audit::snapshots::dirs_for(&[ledger.to_path_buf()]);
    let options = Options {
        snapshots: &dirs,
        ..Options::default()
    };
    build_from(verified(), lines, "T-0001", &options, &Glossary::default())
}

#[test]
fn a_disclosure_is_described_by_the_snapshot_of_its_rules_and_a_rename_keeps_the_old_name() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("audit.jsonl");
    let old = keep(&ledger, &snapshot("g1", "ACME Repairs Ltd"));
    let new = keep(&ledger, &snapshot("g2", "ACME Property Services Ltd"));
    let r = described(
        &ledger,
        vec![
            described_record(1, "g1", &old),
            described_record(2, "g2", &new),
        ],
    );
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let names: Vec<&str> = r.recipients.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["ACME Property Services Ltd", "ACME Repairs Ltd"]);
    for section in &r.recipients {
        assert_eq!(section.described_from, "snapshot");
        assert!(section.notes.is_empty(), "{:?}", section.notes);
        assert_eq!(section.disclosures.len(), 1);
        assert_eq!(section.disclosures[0].fields, ["telephone number"]);
    }
    let old_section = r.recipients.iter().find(|s| s.name == "ACME Repairs Ltd");
    assert_eq!(
        old_section.unwrap().disclosures[0].when,
        "2026-06-01T10:00:00Z"
    );
}

#[test]
fn an_altered_snapshot_is_not_used_and_says_so_at_the_top_and_for_the_organisation() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("audit.jsonl");
    let digest = keep(&ledger, &snapshot("g1", "ACME Repairs Ltd"));
    let file = crate::audit::snapshots::dir_for(&ledger).join(format!("{digest}.json"));
    let altered = std::fs::read_to_string(&file)
        .unwrap()
        .replace("ACME Repairs Ltd", "Nobody Ltd");
    std::fs::write(&file, altered).unwrap();
    let r = described(&ledger, vec![described_record(1, "g1", &digest)]);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("altered"), "{:?}", r.problems);
    let section = &r.recipients[0];
    assert_eq!(section.described_from, "unresolved");
    assert_ne!(section.name, "Nobody Ltd");
    assert!(section.notes.iter().any(|n| n.contains("altered")));
    let html = r.to_html();
    assert!(
        html.contains("could not be described as they were made"),
        "{html}"
    );
    assert!(!html.contains("Nobody Ltd"), "{html}");
}

#[test]
fn without_a_snapshot_or_rules_the_organisation_is_flagged_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("audit.jsonl");
    let missing = "ab".repeat(32);
    let r = described(&ledger, vec![described_record(1, "g1", &missing)]);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(
        r.problems[0].contains("not beside the ledger") && r.problems[0].contains("--config"),
        "{:?}",
        r.problems
    );
    assert_eq!(r.recipients[0].described_from, "unresolved");
    assert_eq!(r.recipients[0].disclosures[0].fields, ["phone"]);
}

#[test]
fn a_snapshot_of_other_rules_than_the_record_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("audit.jsonl");
    let digest = keep(&ledger, &snapshot("g1", "ACME Repairs Ltd"));
    let r = described(&ledger, vec![described_record(1, "g2", &digest)]);
    assert!(
        r.problems.iter().any(|p| p.contains("not the record's g2")),
        "{:?}",
        r.problems
    );
}
