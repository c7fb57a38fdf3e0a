//! The subject access report (UK GDPR Art. 15): every disclosure about one tenant, grouped by
//! recipient, in plain words, for `audit report`.
//!
//! The chain is verified first and the report says whether it verified: a report built on a
//! tampered ledger must say so on its face. Field paths become words through the rules'
//! glossary, and refusals made on the tenant's behalf (research refused because they
//! objected) are listed as well, since they are part of the answer to "who asked for my data".

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::audit;
use crate::register::glossary::Glossary;
use crate::register::html::escape;
use crate::rules::Policy;

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    pub subject: String,
    pub generated: String,
    pub files: Vec<String>,
    /// `None` when the chain verified; otherwise what `audit verify` said.
    pub chain_problem: Option<String>,
    /// How many records verified; `None` (null) when the chain did not, since then no
    /// count of intact records can be vouched for.
    pub records_checked: Option<u64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub recipients: Vec<RecipientSection>,
}

/// Everything one recipient received (or was refused) about the subject.
#[derive(Debug, Serialize)]
pub struct RecipientSection {
    pub id: String,
    pub name: String,
    pub recipient_type: String,
    pub purpose: String,
    pub lawful_basis: String,
    pub disclosures: Vec<Disclosure>,
    pub refusals: Vec<Refusal>,
}

#[derive(Debug, Serialize)]
pub struct Disclosure {
    pub when: String,
    pub request: String,
    /// Plain words, each once, in the order of the paths.
    pub fields: Vec<String>,
    pub reasons: Vec<String>,
    pub reference: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Refusal {
    pub when: String,
    pub request: String,
    pub reason: String,
}

/// Builds the report for `subject` over `files` (oldest first), between `from` and `to`
/// (inclusive dates, `YYYY-MM-DD`, compared with each record's `ts`).
///
/// # Errors
///
/// When a file cannot be read; a broken chain is reported inside the report, not as an error.
pub fn build(
    files: &[PathBuf],
    subject: &str,
    from: Option<&str>,
    to: Option<&str>,
    policy: Option<&Policy>,
    glossary: &Glossary,
) -> Result<Report, audit::Error> {
    let (chain_problem, records_checked) = match audit::verify_files(files) {
        Ok(v) => (None, v.records),
        Err(e) => (Some(e.to_string()), 0),
    };
    let mut lines = Vec::new();
    for file in files {
        lines.extend(audit::query(file, subject)?);
    }
    let checked = Checked {
        problem: chain_problem,
        records: records_checked,
        sources: files.iter().map(|f| f.display().to_string()).collect(),
    };
    Ok(build_from(
        checked, lines, subject, from, to, policy, glossary,
    ))
}

/// What verifying the ledger found, for the report's header: `problem` is `None` when every
/// chain verified.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub problem: Option<String>,
    pub records: u64,
    /// The files read, or the chains (`postgres:CHAIN`), as the report names its sources.
    pub sources: Vec<String>,
}

/// The report from the subject's records, oldest first, whichever backend they came from
/// (`build` for files; the PostgreSQL ledger's query for `audit report --postgres`).
pub fn build_from(
    checked: Checked,
    lines: Vec<String>,
    subject: &str,
    from: Option<&str>,
    to: Option<&str>,
    policy: Option<&Policy>,
    glossary: &Glossary,
) -> Report {
    let Checked {
        problem: chain_problem,
        records: records_checked,
        sources,
    } = checked;
    let mut sections: BTreeMap<String, RecipientSection> = BTreeMap::new();
    {
        for line in lines {
            let Ok(record) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let ts = text(&record, "ts");
            let day = ts.get(..10).unwrap_or_default();
            if from.is_some_and(|f| day < f) || to.is_some_and(|t| day > t) {
                continue;
            }
            let id = text(&record, "recipient");
            if id.is_empty() {
                continue;
            }
            let section = sections.entry(id.clone()).or_insert_with(|| {
                let name = policy.and_then(|p| p.recipient(&id)).map_or_else(
                    || format!("{id} (no longer in the rules)"),
                    |r| r.name.clone(),
                );
                RecipientSection {
                    id: id.clone(),
                    name,
                    recipient_type: text(&record, "recipient_type"),
                    purpose: text(&record, "purpose"),
                    lawful_basis: text(&record, "lawful_basis"),
                    disclosures: Vec::new(),
                    refusals: Vec::new(),
                }
            });
            let request = format!("{} {}", text(&record, "method"), text(&record, "route"));
            let status = record["status"].as_u64().unwrap_or_default();
            let reasons: Vec<String> = strings(&record["reasons"]);
            if (200..300).contains(&status) {
                let mut fields = Vec::new();
                for path in strings(&record["disclosed"]) {
                    let words = words_for(glossary, &path);
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
                });
            } else if text(&record, "error") == "refused_by_policy" {
                section.refusals.push(Refusal {
                    when: ts,
                    request,
                    reason: reasons.join("; "),
                });
            }
        }
    }
    Report {
        subject: subject.to_string(),
        generated: audit::now_rfc3339(),
        files: sources,
        records_checked: chain_problem.is_none().then_some(records_checked),
        chain_problem,
        from: from.map(str::to_string),
        to: to.map(str::to_string),
        recipients: sections.into_values().collect(),
    }
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

// === HTML ===

impl Report {
    /// One self-contained, printable HTML page.
    pub fn to_html(&self) -> String {
        let mut out = String::with_capacity(8192);
        out.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
        out.push_str(&format!(
            "<title>Subject access report: {}</title>",
            escape(&self.subject)
        ));
        out.push_str(STYLE);
        out.push_str("</head><body><main>");
        out.push_str(&format!(
            "<h1>Who we shared your data with</h1><p class=\"lead\">Subject access report for tenant <strong>{}</strong>, made {}.</p>",
            escape(&self.subject),
            escape(&self.generated[..10.min(self.generated.len())])
        ));
        match &self.chain_problem {
            None => out.push_str(&format!(
                "<p class=\"ok\">The disclosure ledger was checked before this report was made: all {} records are intact (the hash chain verified).</p>",
                self.records_checked.unwrap_or_default()
            )),
            Some(problem) => out.push_str(&format!(
                "<p class=\"bad\"><strong>Warning: the disclosure ledger did not verify.</strong> It may have been altered, so this report may be incomplete. The check said: {}</p>",
                escape(problem)
            )),
        }
        if self.from.is_some() || self.to.is_some() {
            out.push_str(&format!(
                "<p>Period: {} to {}.</p>",
                escape(self.from.as_deref().unwrap_or("the start of the ledger")),
                escape(self.to.as_deref().unwrap_or("today"))
            ));
        }
        if self.recipients.is_empty() {
            out.push_str(
                "<p>We found no disclosure of your data to any organisation in this period.</p>",
            );
        }
        for r in &self.recipients {
            out.push_str(&format!(
                "<section><h2>{}</h2><p class=\"meta\"><span class=\"kind\">{}</span> &middot; {} &middot; {}</p>",
                escape(&r.name),
                escape(&r.recipient_type.replace('-', " ")),
                count(r.disclosures.len(), "disclosure"),
                count(r.refusals.len(), "refused request")
            ));
            out.push_str(&format!(
                "<dl><dt>Why</dt><dd>{}</dd><dt>Lawful basis</dt><dd>{}</dd></dl>",
                escape(&r.purpose),
                escape(basis_words(&r.lawful_basis))
            ));
            if !r.disclosures.is_empty() {
                out.push_str("<table><thead><tr><th>When</th><th>What we shared</th><th>Why this time</th></tr></thead><tbody>");
                for d in &r.disclosures {
                    let mut why = d
                        .reasons
                        .iter()
                        .map(|s| escape(s))
                        .collect::<Vec<_>>()
                        .join("; ");
                    if let Some(reference) = &d.reference {
                        if !why.is_empty() {
                            why.push_str("; ");
                        }
                        why.push_str(&format!("their reference {}", escape(reference)));
                    }
                    out.push_str(&format!(
                        "<tr><td class=\"when\">{}</td><td>{}</td><td>{}</td></tr>",
                        escape(&minute(&d.when)),
                        if d.fields.is_empty() {
                            "nothing about you".to_string()
                        } else {
                            d.fields
                                .iter()
                                .map(|f| escape(f))
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                        if why.is_empty() {
                            "&ndash;".to_string()
                        } else {
                            why
                        }
                    ));
                }
                out.push_str("</tbody></table>");
            }
            if !r.refusals.is_empty() {
                out.push_str("<h3>Requests we refused</h3><ul>");
                for f in &r.refusals {
                    out.push_str(&format!(
                        "<li><span class=\"when\">{}</span>: {}</li>",
                        escape(&minute(&f.when)),
                        escape(&f.reason)
                    ));
                }
                out.push_str("</ul>");
            }
            out.push_str("</section>");
        }
        out.push_str(&format!(
            "<footer>Made by need-to-know from {}.</footer></main></body></html>\n",
            self.files
                .iter()
                .map(|f| escape(f))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        out
    }
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
section{border-top:2px solid #ddd;margin-top:1.5rem;padding-top:1rem;break-inside:avoid}
.meta{color:#555;margin:0 0 .5rem}
.kind{text-transform:capitalize}
dl{display:grid;grid-template-columns:9rem 1fr;gap:.2rem .8rem;margin:.5rem 0 1rem}
dt{font-weight:600}
dd{margin:0}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #ccc;padding:.4rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}
.when{white-space:nowrap;font-variant-numeric:tabular-nums}
footer{margin-top:2rem;color:#666;font-size:.85rem}
@media print{main{padding:0}section{page-break-inside:avoid}}
</style>";
