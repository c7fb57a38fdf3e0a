//! `audit verify`, `audit query`, `audit report`, `audit fields` ([`fields`]) and `audit
//! prove`/`check-proof` ([`proof`]), over one file
//! or rotated files in order; with `--postgres`, over every chain of the PostgreSQL ledger
//! ([`postgres`]).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::audit;

pub(super) mod fields;
pub(super) mod proof;

/// The config `audit report` reads when none is given, if it is there.
const DEFAULT_CONFIG: &str = "need-to-know.toml";

pub(super) mod postgres;

/// Prints the record count and exits 0, or names the first broken record and exits 1.
///
/// One file prints one line, as it always has (plus a second when the file continues a rotated
/// one). Several are checked as one chain: a line per file as it verifies, then a total, or the
/// first fault as `FILE: line N: reason`.
pub fn verify(files: &[PathBuf]) -> anyhow::Result<u8> {
    match files {
        [file] => verify_one(file),
        _ => verify_many(files),
    }
}

/// [`verify`], then the signed checkpoints against the files: a line saying how many verified
/// and which was the last (to compare with the log pipeline's `audit_checkpoint` events), and
/// how many records follow it unwitnessed. Exit 1 naming the checkpoint line at fault.
pub fn verify_checkpoints(
    files: &[PathBuf],
    checkpoints: &Path,
    public_key: &Path,
) -> anyhow::Result<u8> {
    let key = audit::checkpoint::PublicKey::load(public_key)?;
    let code = verify(files)?;
    if code != 0 {
        println!(
            "{}: not checked, the chain is broken",
            checkpoints.display()
        );
        return Ok(code);
    }
    match audit::checkpoint::verify(files, checkpoints, &key) {
        Ok(w) => {
            match &w.last {
                Some(c) => println!(
                    "{}: {} checkpoints verified, the last at record {} (ts {}, head {})",
                    checkpoints.display(),
                    w.checkpoints,
                    c.size,
                    c.ts,
                    c.head
                ),
                None => println!("{}: no checkpoints yet", checkpoints.display()),
            }
            println!(
                "{} records after the last checkpoint, not yet witnessed",
                w.unwitnessed()
            );
            Ok(0)
        }
        Err(e) if e.is_io() => Err(anyhow::anyhow!("{e}")),
        Err(e) => {
            println!("{e}");
            Ok(1)
        }
    }
}

fn verify_one(file: &Path) -> anyhow::Result<u8> {
    match audit::verify(file) {
        Ok(verified) => {
            print_verified(file, &verified);
            print_continues(file, &verified);
            Ok(0)
        }
        Err(audit::VerifyError::Io(e)) => {
            Err(e).with_context(|| format!("cannot read {}", file.display()))
        }
        Err(e) => {
            println!("{}: {e}", file.display());
            Ok(1)
        }
    }
}

fn verify_many(files: &[PathBuf]) -> anyhow::Result<u8> {
    let mut first = true;
    let result = audit::verify_files_with(files, |file, verified| {
        print_verified(file, verified);
        // Later files' links were checked against the file before; only the first's is open.
        if first {
            print_continues(file, verified);
        }
        first = false;
    });
    match result {
        Ok(total) => {
            println!(
                "total: {} records verified in {} files, head {}",
                total.records,
                files.len(),
                total.head
            );
            Ok(0)
        }
        // The message names the file and the OS error.
        Err(e) if e.is_io() => Err(anyhow::anyhow!("{e}")),
        Err(e) => {
            println!("{e}");
            Ok(1)
        }
    }
}

fn print_verified(file: &Path, verified: &audit::Verified) {
    println!(
        "{}: {} records verified, head {}",
        file.display(),
        verified.records,
        verified.head
    );
}

/// A file that starts with a rotation record proves its own chain but not the link before it:
/// say so, and which file holds the other end.
fn print_continues(file: &Path, verified: &audit::Verified) {
    if let Some(c) = &verified.continues_from {
        println!(
            "{}: continues from {} (the last hash of {}, {} records); verify it with that file",
            file.display(),
            c.prev_hash,
            c.previous_file,
            c.previous_records
        );
    }
}

/// One JSON object a line, oldest first (the files in the order given); nothing (exit 0) when
/// there are none.
pub fn query(files: &[PathBuf], subject: &str) -> anyhow::Result<u8> {
    for file in files {
        let lines = audit::query(file, subject)
            .with_context(|| format!("cannot query {}", file.display()))?;
        for (_, line) in lines {
            println!("{line}");
        }
    }
    Ok(0)
}

/// The subject access report on standard output, as HTML or JSON.
///
/// Each disclosure is described from the rules snapshot beside the ledger that its record
/// names, so the report needs no rules and runs anywhere the ledger and its `.rules`
/// directory are. `config` (given, or `need-to-know.toml` when there is one) adds the
/// `[controller]` and the rules for records without a snapshot. Exit 1 when the chain did
/// not verify or a disclosure could not be described faithfully.
pub fn report(
    postgres: bool,
    files: &[std::path::PathBuf],
    subject: &str,
    format: &str,
    (from, to): (Option<&str>, Option<&str>),
    exempt: &[String],
    config: Option<&Path>,
) -> anyhow::Result<u8> {
    for date in [from, to].into_iter().flatten() {
        check_date(date)?;
    }
    let default = Path::new(DEFAULT_CONFIG);
    let config = config.or_else(|| default.exists().then_some(default));
    let settings = match config {
        Some(config) => Some(crate::config::Settings::load(config).map_err(|e| {
            anyhow::anyhow!(
                "{e}\n--config names the [controller] and the rules for records without a \
                 rules snapshot: pass one that loads, or none"
            )
        })?),
        None => None,
    };
    let policy = match &settings {
        Some(settings) => Some(
            super::load_policy(settings)
                .context("the report describes records without a rules snapshot by these rules")?,
        ),
        None => None,
    };
    let snapshots = if postgres {
        Vec::new()
    } else {
        audit::snapshots::dirs_for(files)
    };
    let known = match &policy {
        Some(policy) => policy.types().map(|t| t.name.clone()).collect(),
        None => crate::report::snapshot_types(&snapshots),
    };
    if let Some(unknown) = exempt.iter().find(|kind| !known.contains(*kind)) {
        anyhow::bail!("--exempt {unknown}: no recipient type of that name in the rules");
    }
    let empty = crate::register::glossary::Glossary::default();
    let glossary = policy.as_ref().map_or(&empty, |p| p.glossary());
    let controller = settings.as_ref().and_then(|s| s.controller.as_ref());
    let options = crate::report::Options {
        from,
        to,
        policy: policy.as_ref(),
        snapshots: &snapshots,
        controller,
        exempt,
    };
    let report = if postgres {
        let (checked, lines) = postgres::report_input(config, subject)?;
        let lines = lines.into_iter().map(|l| (None, l)).collect();
        crate::report::build_from(checked, lines, subject, &options, glossary)
    } else {
        crate::report::build(files, subject, &options, glossary)
            .context("cannot read the audit files")?
    };
    if format == "json" {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_html());
    }
    // For the DPO's eyes, on the terminal: never in the report the tenant receives.
    for line in report.left_out_lines() {
        eprintln!("{line}");
    }
    if controller.is_none() {
        eprintln!(
            "{}: no [controller] section: the report cannot name the controller, its DPO or the retention period",
            config.unwrap_or(default).display()
        );
    }
    let mut code = 0;
    for problem in &report.problems {
        eprintln!("cannot describe a disclosure faithfully: {problem}");
        code = 1;
    }
    if let Some(problem) = &report.chain_problem {
        eprintln!(
            "the disclosure ledger did not verify ({problem}): this report cannot be relied on"
        );
        code = 1;
    }
    Ok(code)
}

/// A date as `--from`, `--to` and `--since` take it: `YYYY-MM-DD`, compared as text with the
/// day of each record's `ts`, so anything else would compare wrongly without a word.
fn check_date(date: &str) -> anyhow::Result<()> {
    let valid = date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-';
    if !valid {
        anyhow::bail!("{date:?} is not a date as YYYY-MM-DD");
    }
    Ok(())
}
