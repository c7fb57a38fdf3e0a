//! `audit fields`: the DPO's list of upstream drift, every path the housing system sent per
//! recipient type and route ([`crate::audit::fields`]), as aligned text or JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::audit::{self, fields::PathSeen};

/// Where the records are read from.
pub enum Source<'a> {
    /// Rotated files oldest first, then the current one.
    Files(&'a [PathBuf]),
    /// Every chain of the PostgreSQL ledger; the config naming its URL's variable.
    Postgres(Option<&'a Path>),
}

/// Verifies the chain, then lists every path; exit 1 (after listing) when the chain does not
/// verify, as `audit report` does, since the list may then be missing or hold altered records.
pub fn run(source: Source<'_>, since: Option<&str>, format: &str) -> anyhow::Result<u8> {
    if let Some(day) = since {
        super::check_date(day)?;
    }
    let mut drift = audit::fields::Drift::default();
    let problem = match source {
        Source::Postgres(config) => super::postgres::fields_input(config, &mut drift)?.problem,
        Source::Files(files) => {
            let problem = match audit::verify_files(files) {
                Ok(_) => None,
                Err(e) if e.is_io() => return Err(anyhow::anyhow!("{e}")),
                Err(e) => Some(e.to_string()),
            };
            for file in files {
                audit::each_record(file, |_, _, record| {
                    drift.add(record);
                    Ok(())
                })
                .with_context(|| format!("cannot read {}", file.display()))?;
            }
            problem
        }
    };
    let paths = drift.paths(since);
    if format == "json" {
        println!("{}", serde_json::to_string_pretty(&paths)?);
    } else {
        print!("{}", text(&paths, since));
    }
    if let Some(problem) = problem {
        eprintln!(
            "the disclosure ledger did not verify ({problem}): this list cannot be relied on"
        );
        return Ok(1);
    }
    Ok(0)
}

/// A heading `TYPE METHOD ROUTE` per route, then a line per path, columns aligned across the
/// whole list:
///
/// ```text
/// repairs-contractor GET /jobs/{job_id}
///   new  tenant.*      withheld    3 records  2026-11-20 .. 2026-12-01  (a key no rule names)
///        tenant.phone  disclosed  12 records  2026-11-02 .. 2026-12-01
/// ```
fn text(paths: &[PathSeen], since: Option<&str>) -> String {
    let mut out = String::new();
    if paths.is_empty() {
        out.push_str("no upstream paths in the ledger\n");
        return out;
    }
    let path_width = paths
        .iter()
        .map(|p| p.path.chars().count())
        .max()
        .unwrap_or(0);
    let count_width = paths
        .iter()
        .map(|p| p.records.to_string().len())
        .max()
        .unwrap_or(0);
    let mut route = None;
    for p in paths {
        let this = (&p.recipient_type, &p.method, &p.route);
        if route != Some(this) {
            if route.is_some() {
                out.push('\n');
            }
            let _ = writeln!(out, "{} {} {}", p.recipient_type, p.method, p.route);
            route = Some(this);
        }
        let mut line = format!(
            "  {}  {:path_width$}  {:9}  {:>count_width$} {:7}  {} .. {}",
            if p.new { "new" } else { "   " },
            p.path,
            p.fate(),
            p.records,
            if p.records == 1 { "record" } else { "records" },
            audit::fields::day_of(&p.first_seen),
            audit::fields::day_of(&p.last_seen),
        );
        if p.names_an_unnamed_key() {
            line.push_str("  (a key no rule names)");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if paths.iter().any(PathSeen::names_an_unnamed_key) {
        out.push_str(
            "\n* is a key no rule names, never written as sent since a key may itself be \
             personal data:\n  name the field in rules/glossary.toml and later records name \
             it\n",
        );
    }
    if let Some(day) = since {
        let new = paths.iter().filter(|p| p.new).count();
        let _ = match new {
            0 => writeln!(out, "\nno path first seen on or after {day}"),
            1 => writeln!(
                out,
                "\n1 path first seen on or after {day}: review the rules against it"
            ),
            n => writeln!(
                out,
                "\n{n} paths first seen on or after {day}: review the rules against them"
            ),
        };
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn seen(route: &str, path: &str, (disclosed, withheld): (u64, u64), new: bool) -> PathSeen {
        PathSeen {
            recipient_type: "repairs-contractor".into(),
            method: "GET".into(),
            route: route.into(),
            path: path.into(),
            disclosed,
            withheld,
            records: disclosed.max(withheld),
            first_seen: "2026-11-02T09:00:00.000Z".into(),
            last_seen: "2026-12-01T10:00:00.000Z".into(),
            new,
        }
    }

    #[test]
    fn text_groups_by_route_and_aligns_the_columns() {
        let paths = [
            seen("/jobs/{job_id}", "tenant.*", (0, 3), true),
            seen("/jobs/{job_id}", "tenant.ni_number", (0, 12), false),
            seen("/properties/{id}", "property.uprn", (1, 0), false),
        ];
        let expected = "\
repairs-contractor GET /jobs/{job_id}
  new  tenant.*          withheld    3 records  2026-11-02 .. 2026-12-01  (a key no rule names)
       tenant.ni_number  withheld   12 records  2026-11-02 .. 2026-12-01

repairs-contractor GET /properties/{id}
       property.uprn     disclosed   1 record   2026-11-02 .. 2026-12-01

* is a key no rule names, never written as sent since a key may itself be personal data:
  name the field in rules/glossary.toml and later records name it

1 path first seen on or after 2026-11-20: review the rules against it
";
        assert_eq!(text(&paths, Some("2026-11-20")), expected);
        assert_eq!(text(&[], None), "no upstream paths in the ledger\n");
    }
}
