//! The subject access report (UK GDPR Art. 15): every disclosure about one tenant, grouped by
//! organisation, in plain words, for `audit report`: the page a DPO sends the tenant.
//!
//! It answers what Art. 15(1) asks: who received the data (organisation, purpose, lawful
//! basis), what, when, for how long records are kept, and the tenant's rights, with the
//! controller's and the DPO's contacts. The chain is verified first and the report says
//! whether it verified: on a tampered ledger it says where the break is, and marks every
//! record after it as unverified. Disclosures with the same fields to the same organisation
//! are one line with a count and the first and last date, expandable to every date.
//! Refusals made on the tenant's behalf (research refused because they objected) are listed
//! too, since they answer "who asked for my data".
//!
//! Each disclosure is described by the rules it was made under, not the rules of today: the
//! record names its rules snapshot (`rules_snapshot`, kept beside the ledger by `serve`), and
//! the organisation's name and the fields' plain words come from it ([`describe`]). Records
//! older than snapshots, or a ledger whose snapshots were not kept, fall back to the rules the
//! config names. What cannot be described either way, or a snapshot that does not match its
//! digest, is said at the top of the report and in the organisation's section.
//!
//! The DPO may leave out disclosures to some recipient types (`--exempt police`, when telling
//! the tenant could prejudice an investigation, DPA 2018 Sch. 2 para 2): those never reach the
//! report, and [`Report::left_out`] lists them for the DPO alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::audit;
use crate::config::Controller;
use crate::register::glossary::Glossary;
use crate::register::html::escape;
use crate::rules::Policy;

mod describe;
pub use describe::snapshot_types;
use describe::Describer;

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    pub subject: String,
    pub generated: String,
    /// Who answers for the data; `None` when the config has no `[controller]`.
    pub controller: Option<Controller>,
    /// The ledger's files or chains: for the DPO's JSON, never printed on the tenant's page.
    pub files: Vec<String>,
    /// `None` when the chain verified; otherwise what `audit verify` said.
    pub chain_problem: Option<String>,
    /// How many records verified: all of them, or those before the break.
    pub records_checked: u64,
    /// The period asked for (`--from`, `--to`); `None` for the whole ledger.
    pub from: Option<String>,
    pub to: Option<String>,
    /// The first and last record about the subject in the period: what the report covers.
    pub first_record: Option<String>,
    pub last_record: Option<String>,
    pub recipients: Vec<RecipientSection>,
    /// What could not be described faithfully (no snapshot and no rules, a snapshot that
    /// does not match its digest): the report cannot be relied on while any is listed.
    pub problems: Vec<String>,
    /// What `--exempt` left out: for the DPO, never in the report itself.
    #[serde(skip)]
    pub left_out: Vec<LeftOut>,
}

/// Everything one organisation received (or was refused) about the subject.
#[derive(Debug, Serialize)]
pub struct RecipientSection {
    pub id: String,
    pub name: String,
    pub recipient_type: String,
    pub purpose: String,
    pub lawful_basis: String,
    /// Where the name and the fields' words come from: `snapshot` (the rules of the time),
    /// `rules` (the config's rules, for records without a snapshot) or `unresolved`.
    pub described_from: &'static str,
    /// What the reader should know about that description, each once.
    pub notes: Vec<String>,
    /// Disclosures of the same fields, together.
    pub groups: Vec<Group>,
    /// Every disclosure, oldest first.
    pub disclosures: Vec<Disclosure>,
    pub refusals: Vec<Refusal>,
}

/// Disclosures of one set of fields to one organisation.
#[derive(Debug, Serialize)]
pub struct Group {
    /// Plain words, each once.
    pub fields: Vec<String>,
    pub count: usize,
    pub first: String,
    pub last: String,
    /// The reasons that applied to any of them, each once.
    pub reasons: Vec<String>,
    /// The indexes of its disclosures in [`RecipientSection::disclosures`].
    pub disclosures: Vec<usize>,
}

#[derive(Debug, Serialize)]
pub struct Disclosure {
    pub when: String,
    pub request: String,
    /// Plain words, each once, in the order of the paths.
    pub fields: Vec<String>,
    pub reasons: Vec<String>,
    pub reference: Option<String>,
    /// After the point where the ledger failed to verify: it may have been altered.
    pub unverified: bool,
}

#[derive(Debug, Serialize)]
pub struct Refusal {
    pub when: String,
    pub request: String,
    pub reason: String,
    pub unverified: bool,
}

/// Disclosures the DPO's exemption left out of the report.
#[derive(Debug)]
pub struct LeftOut {
    pub recipient: String,
    pub recipient_type: String,
    pub count: usize,
    pub first: String,
    pub last: String,
}

/// What the report is made from and how.
#[derive(Debug, Default)]
pub struct Options<'a> {
    /// Inclusive dates, `YYYY-MM-DD`, compared with each record's `ts`.
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    /// The rules for records without a snapshot (older ledgers, PostgreSQL).
    pub policy: Option<&'a Policy>,
    /// Where the ledger's rules snapshots are ([`audit::snapshots::dirs_for`]).
    pub snapshots: &'a [PathBuf],
    pub controller: Option<&'a Controller>,
    /// Recipient types whose disclosures are left out, for the DPO's list instead.
    pub exempt: &'a [String],
}

/// Where a record is in the ledger: its source (file or chain) and its line or sequence
/// number there, 1-based; `None` when the backend cannot say.
pub type Position = Option<(usize, u64)>;

/// Builds the report for `subject` over `files` (oldest first).
///
/// # Errors
///
/// When a file cannot be read; a broken chain is reported inside the report, not as an error.
pub fn build(
    files: &[PathBuf],
    subject: &str,
    options: &Options<'_>,
    glossary: &Glossary,
) -> Result<Report, audit::Error> {
    let mut verified_before = Vec::new();
    let verdict = audit::verify_files_with(files, |_, v| verified_before.push(v.records));
    let checked = match verdict {
        Ok(v) => Checked {
            problem: None,
            records: v.records,
            broken_at: None,
            sources: Vec::new(),
        },
        Err(e) => {
            let broken_at = break_point(&e, files);
            // Records of the files that verified, and of the broken one before its bad line.
            let before: u64 = verified_before.iter().sum::<u64>()
                + broken_at.map_or(0, |(_, line)| line.saturating_sub(1));
            Checked {
                problem: Some(e.to_string()),
                records: before,
                broken_at,
                sources: Vec::new(),
            }
        }
    };
    let checked = Checked {
        sources: files.iter().map(|f| f.display().to_string()).collect(),
        ..checked
    };
    let mut lines = Vec::new();
    for (i, file) in files.iter().enumerate() {
        for (line, text) in audit::query(file, subject)? {
            lines.push((Some((i, line)), text));
        }
    }
    Ok(build_from(checked, lines, subject, options, glossary))
}

/// The file and line where verification failed, when the error says.
fn break_point(e: &audit::VerifyError, files: &[PathBuf]) -> Option<(usize, u64)> {
    use audit::VerifyError as E;
    let index = |file: &PathBuf| files.iter().position(|f| f == file);
    match e {
        E::Broken { line, .. } | E::Torn { line } if files.len() == 1 => Some((0, *line)),
        E::InFile { file, error } => match error.as_ref() {
            E::Broken { line, .. } | E::Torn { line } => Some((index(file)?, *line)),
            _ => Some((index(file)?, 1)),
        },
        E::Gap { file, line, .. } => Some((index(file)?, *line)),
        _ => None,
    }
}

/// What verifying the ledger found, for the report's header: `problem` is `None` when every
/// chain verified.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub problem: Option<String>,
    /// Records verified: all, or those before the break.
    pub records: u64,
    /// Where it broke, when known: every record at or after it is unverified.
    pub broken_at: Position,
    /// The files read, or the chains (`postgres:CHAIN`), as the report names its sources.
    pub sources: Vec<String>,
}

impl Checked {
    /// Whether a record at `at` is vouched for by the verification.
    fn vouches_for(&self, at: Position) -> bool {
        match (&self.problem, self.broken_at, at) {
            (None, _, _) => true,
            (Some(_), Some(broken), Some(at)) => at < broken,
            (Some(_), _, _) => false,
        }
    }
}

/// The report from the subject's records, oldest first, whichever backend they came from
/// (`build` for files; the PostgreSQL ledger's query for `audit report --postgres`).
/// `glossary` is the rules' (`options.policy`), for records without a rules snapshot.
pub fn build_from(
    checked: Checked,
    lines: Vec<(Position, String)>,
    subject: &str,
    options: &Options<'_>,
    glossary: &Glossary,
) -> Report {
    let mut describer = Describer::new(options.snapshots, options.policy, glossary);
    let mut problems: Vec<String> = Vec::new();
    // An organisation is described as the rules of the time named it: a renamed recipient's
    // earlier disclosures stay under the name they were made to.
    let mut sections: BTreeMap<(String, String, String, String, String), RecipientSection> =
        BTreeMap::new();
    let mut left_out: BTreeMap<String, LeftOut> = BTreeMap::new();
    let (mut first_record, mut last_record) = (None::<String>, None::<String>);
    for (at, line) in lines {
        let Ok(record) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let ts = text(&record, "ts");
        let day = ts.get(..10).unwrap_or_default();
        if options.from.is_some_and(|f| day < f) || options.to.is_some_and(|t| day > t) {
            continue;
        }
        let id = text(&record, "recipient");
        if id.is_empty() {
            continue;
        }
        let kind = text(&record, "recipient_type");
        let status = record["status"].as_u64().unwrap_or_default();
        let disclosed = (200..300).contains(&status);
        if disclosed && options.exempt.contains(&kind) {
            let entry = left_out.entry(id.clone()).or_insert_with(|| LeftOut {
                recipient: id.clone(),
                recipient_type: kind.clone(),
                count: 0,
                first: ts.clone(),
                last: ts.clone(),
            });
            entry.count += 1;
            entry.last.clone_from(&ts);
            continue;
        }
        first_record.get_or_insert_with(|| ts.clone());
        last_record = Some(ts.clone());
        let described = describer.describe(&record, &id, &kind);
        let key = (
            id.clone(),
            described.name.clone(),
            kind.clone(),
            described.purpose.clone(),
            described.lawful_basis.clone(),
        );
        let section = sections.entry(key).or_insert_with(|| RecipientSection {
            id: id.clone(),
            name: described.name.clone(),
            recipient_type: kind.clone(),
            purpose: described.purpose.clone(),
            lawful_basis: described.lawful_basis.clone(),
            described_from: described.from,
            notes: Vec::new(),
            groups: Vec::new(),
            disclosures: Vec::new(),
            refusals: Vec::new(),
        });
        for note in described.notes.iter().chain(&described.problem) {
            if !section.notes.contains(note) {
                section.notes.push(note.clone());
            }
        }
        if let Some(problem) = &described.problem {
            let problem = format!("{id}: {problem}");
            if !problems.contains(&problem) {
                problems.push(problem);
            }
        }
        let request = format!("{} {}", text(&record, "method"), text(&record, "route"));
        let reasons: Vec<String> = strings(&record["reasons"]);
        let unverified = !checked.vouches_for(at);
        if disclosed {
            let mut fields = Vec::new();
            for path in strings(&record["disclosed"]) {
                let words = words_for(describer.glossary(&described), &path);
                if !fields.contains(&words) {
                    fields.push(words);
                }
            }
            section.disclosures.push(Disclosure {
                when: ts,
                request,
                fields,
                reasons,
                reference: record["disclosure_reference"].as_str().map(str::to_string),
                unverified,
            });
        } else if text(&record, "error") == "refused_by_policy" {
            section.refusals.push(Refusal {
                when: ts,
                request,
                reason: reasons.join("; "),
                unverified,
            });
        }
    }
    let mut recipients: Vec<RecipientSection> = sections.into_values().collect();
    for section in &mut recipients {
        section.groups = groups(&section.disclosures);
    }
    Report {
        subject: subject.to_string(),
        generated: audit::now_rfc3339(),
        controller: options.controller.cloned(),
        files: checked.sources,
        records_checked: checked.records,
        chain_problem: checked.problem,
        from: options.from.map(str::to_string),
        to: options.to.map(str::to_string),
        first_record,
        last_record,
        recipients,
        problems,
        left_out: left_out.into_values().collect(),
    }
}

/// The disclosures grouped by their set of fields, in the order each set first appears.
fn groups(disclosures: &[Disclosure]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for (i, d) in disclosures.iter().enumerate() {
        let set: BTreeSet<&String> = d.fields.iter().collect();
        let found = groups
            .iter_mut()
            .find(|g| g.fields.iter().collect::<BTreeSet<_>>() == set);
        let group = match found {
            Some(g) => g,
            None => {
                groups.push(Group {
                    fields: d.fields.clone(),
                    count: 0,
                    first: d.when.clone(),
                    last: d.when.clone(),
                    reasons: Vec::new(),
                    disclosures: Vec::new(),
                });
                groups.last_mut().expect("just pushed")
            }
        };
        group.count += 1;
        group.last.clone_from(&d.when);
        group.disclosures.push(i);
        for reason in &d.reasons {
            if !group.reasons.contains(reason) {
                group.reasons.push(reason.clone());
            }
        }
    }
    groups
}

/// The words for a disclosed leaf, or for the nearest field above it that has words: the
/// audit names `appointment.date`, the glossary says what `appointment` is.
fn words_for(glossary: &Glossary, path: &str) -> String {
    let mut at = path;
    loop {
        if let Some(words) = glossary.words(at) {
            return words.to_string();
        }
        let parent = at
            .strip_suffix("[]")
            .or_else(|| at.rfind('.').map(|i| &at[..i]));
        match parent {
            Some(p) if !p.is_empty() => at = p,
            _ => return path.to_string(),
        }
    }
}

fn text(record: &Value, key: &str) -> String {
    record[key].as_str().unwrap_or_default().to_string()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `2026-12-01T13:51:59.866Z` as `2026-12-01 13:51` (UTC): seconds mean nothing to a reader.
fn minute(ts: &str) -> String {
    match ts.get(..16) {
        Some(m) => format!("{} UTC", m.replace('T', " ")),
        None => ts.to_string(),
    }
}

/// `2026-12-01T13:51:59.866Z` as `2026-12-01`.
fn day(ts: &str) -> &str {
    ts.get(..10).unwrap_or(ts)
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The lawful basis in words a tenant can read.
fn basis_words(basis: &str) -> &'static str {
    match basis {
        "contract" => "to carry out our contract (tenancy agreement) with you",
        "legal_obligation" => "because the law requires it",
        "vital_interests" => "to protect someone's life",
        "public_task" => "to carry out a task in the public interest",
        "legitimate_interests" => "in our legitimate interests, balanced against yours",
        "consent" => "because you consented",
        _ => "not recorded",
    }
}

/// The tenant's rights over their data (UK GDPR Arts. 15 to 21, 77), in plain words.
const RIGHTS: &[(&str, &str)] = &[
    (
        "See your data",
        "You can ask for a copy of the personal data we hold about you, as you have with this report.",
    ),
    (
        "Correct it",
        "If anything we hold about you is wrong or incomplete, you can ask us to correct it.",
    ),
    (
        "Have it deleted",
        "You can ask us to delete your data where we no longer need it or have no lawful reason to keep it.",
    ),
    (
        "Limit its use",
        "You can ask us to stop using your data, other than storing it, while a concern is looked into.",
    ),
    (
        "Object",
        "You can object to our sharing your data where we rely on our legitimate interests, for example for research or mailings; we will stop unless we have a compelling reason.",
    ),
    (
        "Complain",
        "If you are unhappy with how we have used your data, you can complain to the Information Commissioner's Office (ICO), the UK's data protection regulator: ico.org.uk/make-a-complaint or 0303 123 1113. Please contact us first so we can try to put things right.",
    ),
];

// === HTML ===

impl Report {
    /// One self-contained, printable HTML page.
    pub fn to_html(&self) -> String {
        let mut out = String::with_capacity(16384);
        let made = day(&self.generated);
        out.push_str("<!doctype html><html lang=\"en-GB\"><head><meta charset=\"utf-8\">");
        out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        out.push_str(&format!(
            "<title>Subject access report: {}</title>",
            escape(&self.subject)
        ));
        out.push_str(STYLE);
        // Every printed page says whose report it is, when it was made, and which page it is.
        out.push_str(&format!(
            "<style>@page{{@bottom-left{{content:\"Subject access report for {} \\00b7  made {}\";font:9pt system-ui,Arial,sans-serif;color:#555}}@bottom-right{{content:\"Page \" counter(page) \" of \" counter(pages);font:9pt system-ui,Arial,sans-serif;color:#555}}}}</style>",
            css_string(&self.subject),
            css_string(made)
        ));
        out.push_str("</head><body><main>");
        let controller = self
            .controller
            .as_ref()
            .map_or_else(|| "We".to_owned(), |c| escape(&c.name));
        out.push_str(&format!(
            "<h1>Who we shared your data with</h1><p class=\"lead\">Subject access report for tenant <strong>{}</strong>, made {} by {}.</p>",
            escape(&self.subject),
            escape(made),
            controller
        ));
        out.push_str(&format!("<p class=\"period\">{}</p>", self.period_words()));
        self.verification_html(&mut out);
        if !self.problems.is_empty() {
            out.push_str("<div class=\"bad\"><p><strong>Warning: some disclosures below could not be described as they were made.</strong> The names and words the rules used at the time could not be found or did not match the ledger, so this report cannot be relied on until they are:</p><ul>");
            for problem in &self.problems {
                out.push_str(&format!("<li>{}</li>", escape(problem)));
            }
            out.push_str("</ul></div>");
        }
        if self.recipients.is_empty() {
            out.push_str(
                "<p>We found no disclosure of your data to any organisation in this period.</p>",
            );
        }
        for r in &self.recipients {
            section_html(r, &mut out);
        }
        self.about_html(&mut out);
        out.push_str("</main></body></html>\n");
        out
    }

    /// The period covered, stated in words.
    fn period_words(&self) -> String {
        let asked = match (&self.from, &self.to) {
            (None, None) => "everything in our disclosure ledger".to_owned(),
            (Some(f), None) => format!("from {} onwards", escape(f)),
            (None, Some(t)) => format!("up to {}", escape(t)),
            (Some(f), Some(t)) => format!("from {} to {}", escape(f), escape(t)),
        };
        match (&self.first_record, &self.last_record) {
            (Some(first), Some(last)) => format!(
                "This report covers {asked}: the disclosures about you recorded from {} to {}.",
                escape(day(first)),
                escape(day(last))
            ),
            _ => format!("This report covers {asked}."),
        }
    }

    fn verification_html(&self, out: &mut String) {
        match &self.chain_problem {
            None => out.push_str(&format!(
                "<p class=\"ok\">Our disclosure ledger was checked before this report was made: all {} records are intact (the hash chain verified).</p>",
                self.records_checked
            )),
            Some(problem) => out.push_str(&format!(
                "<p class=\"bad\"><strong>Warning: our disclosure ledger did not verify.</strong> It may have been altered after it was written, so this report may be incomplete or wrong. The first {} records verified; entries after that point are marked <em>unverified</em>. The check said: {}</p>",
                self.records_checked,
                escape(problem)
            )),
        }
    }

    /// Retention, rights, and how to reach the controller and its DPO.
    fn about_html(&self, out: &mut String) {
        out.push_str("<section class=\"about\"><h2>Your rights, and how to reach us</h2>");
        match &self.controller {
            Some(c) => {
                out.push_str(&format!(
                    "<dl><dt>Data controller</dt><dd>{}</dd><dt>Contact</dt><dd>{}</dd><dt>Data Protection Officer</dt><dd>{}</dd><dt>How long we keep these records</dt><dd>{}</dd></dl>",
                    escape(&c.name),
                    escape(&c.contact),
                    escape(&c.dpo_contact),
                    escape(&c.retention)
                ));
            }
            None => out.push_str(
                "<p class=\"bad\">The controller's name and contacts are not configured ([controller] in the config): add them before sending this report.</p>",
            ),
        }
        out.push_str("<dl class=\"rights\">");
        for (right, words) in RIGHTS {
            out.push_str(&format!("<dt>{right}</dt><dd>{words}</dd>"));
        }
        out.push_str("</dl></section>");
    }

    /// The DPO's list of what `--exempt` left out, one line each.
    pub fn left_out_lines(&self) -> Vec<String> {
        self.left_out
            .iter()
            .map(|l| {
                format!(
                    "left out of the report: {} to {} ({}), {} to {}: exempt by recipient type {}; record the exemption relied on (e.g. DPA 2018 Sch. 2 para 2) in the request's file",
                    count(l.count, "disclosure"),
                    l.recipient,
                    l.recipient_type,
                    day(&l.first),
                    day(&l.last),
                    l.recipient_type
                )
            })
            .collect()
    }
}

/// One organisation: who, why, on what basis, then what it received, grouped.
fn section_html(r: &RecipientSection, out: &mut String) {
    out.push_str(&format!(
        "<section><h2>{}</h2><p class=\"meta\"><span class=\"kind\">{}</span> &middot; {} &middot; {}</p>",
        escape(&r.name),
        escape(&r.recipient_type.replace('-', " ")),
        count(r.disclosures.len(), "disclosure"),
        count(r.refusals.len(), "refused request")
    ));
    for note in &r.notes {
        out.push_str(&format!("<p class=\"bad\">{}</p>", escape(note)));
    }
    out.push_str(&format!(
        "<dl><dt>Why</dt><dd>{}</dd><dt>Lawful basis</dt><dd>{}</dd></dl>",
        escape(&r.purpose),
        escape(basis_words(&r.lawful_basis))
    ));
    if !r.groups.is_empty() {
        out.push_str("<table><thead><tr><th>What we shared</th><th>How often</th><th>Why</th></tr></thead><tbody>");
        for g in &r.groups {
            let what = if g.fields.is_empty() {
                "nothing about you".to_string()
            } else {
                g.fields
                    .iter()
                    .map(|f| escape(f))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let when = if g.count == 1 {
                format!("once, on {}", escape(day(&g.first)))
            } else {
                format!(
                    "{} times, from {} to {}",
                    g.count,
                    escape(day(&g.first)),
                    escape(day(&g.last))
                )
            };
            let why = if g.reasons.is_empty() {
                "&ndash;".to_string()
            } else {
                g.reasons
                    .iter()
                    .map(|s| escape(s))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            out.push_str(&format!(
                "<tr><td>{what}</td><td class=\"often\">{when}</td><td>{why}</td></tr>"
            ));
            let dates: Vec<String> = g
                .disclosures
                .iter()
                .map(|&i| {
                    let d = &r.disclosures[i];
                    let mut line = escape(&minute(&d.when));
                    if let Some(reference) = &d.reference {
                        line.push_str(&format!(" &middot; their reference {}", escape(reference)));
                    }
                    if d.unverified {
                        line.push_str(" <strong class=\"unverified\">unverified</strong>");
                    }
                    line
                })
                .collect();
            // On screen the dates fold away; on paper they are a plain list.
            out.push_str(
                "<tr class=\"dates\"><td colspan=\"3\"><details><summary>Every date</summary><ul>",
            );
            for line in &dates {
                out.push_str(&format!("<li>{line}</li>"));
            }
            out.push_str(&format!(
                "</ul></details><p class=\"print-only\">On: {}</p></td></tr>",
                dates.join("; ")
            ));
        }
        out.push_str("</tbody></table>");
    }
    if !r.refusals.is_empty() {
        out.push_str("<h3>Requests we refused</h3><ul>");
        for f in &r.refusals {
            out.push_str(&format!(
                "<li><span class=\"when\">{}</span>: {}{}</li>",
                escape(&minute(&f.when)),
                escape(&f.reason),
                if f.unverified {
                    " <strong class=\"unverified\">unverified</strong>"
                } else {
                    ""
                }
            ));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
}

/// `text` inside a CSS string literal: quotes, backslashes and line breaks escaped.
fn css_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '\\' | '<' | '>' => out.push_str(&format!("\\{:x} ", u32::from(c))),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "<style>
body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',Arial,sans-serif;color:#1b1b1b;background:#fff;margin:0}
main{max-width:60rem;margin:0 auto;padding:2rem 1.5rem}
h1{font-size:1.9rem;margin:0 0 .25rem}
h2{font-size:1.35rem;margin:0 0 .2rem}
h3{font-size:1.05rem;margin:1rem 0 .25rem}
.lead{font-size:1.1rem;margin-top:0}
.ok{background:#e8f5e9;border-left:6px solid #2e7d32;padding:.6rem .9rem}
.bad{background:#fdecea;border-left:6px solid #b71c1c;padding:.6rem .9rem}
.unverified{color:#b71c1c}
section{border-top:2px solid #ddd;margin-top:1.5rem;padding-top:1rem}
.meta{color:#555;margin:0 0 .5rem}
.kind{text-transform:capitalize}
dl{display:grid;grid-template-columns:12rem 1fr;gap:.2rem .8rem;margin:.5rem 0 1rem}
dt{font-weight:600}
dd{margin:0}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #ccc;padding:.4rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}
tr.dates td{border-top:0;padding-top:0;font-size:.9rem}
details ul{margin:.3rem 0;columns:2}
.when{white-space:nowrap;font-variant-numeric:tabular-nums}
td.often{width:11rem}
.print-only{display:none}
@media print{main{padding:0;max-width:none}details{display:none}.print-only{display:block;margin:0}
 tr,dt,dd{break-inside:avoid}h2,h3,.meta{break-after:avoid-page}thead{display:table-header-group}}
@page{size:A4;margin:18mm 16mm 20mm}
</style>";

#[cfg(test)]
mod tests;
