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
