//! Audit file rotation through the binary: files made by the library (`AuditLog::open`,
//! `append`, `rotate`), then `audit verify A B` and `audit query A B --subject X` over them.

use std::path::{Path, PathBuf};

use need_to_know::audit::AuditLog;
use serde_json::Value;

use crate::support::cli::Cli;
use crate::support::disclosure;

/// `need-to-know audit COMMAND FILES.. TAIL..`.
fn audit(command: &str, files: &[&Path], tail: &[&str]) -> Cli {
    Cli::new(["audit", command]).args(files).args(tail)
}

/// Three records (subjects T-1, T-2, T-1), a rotation, two more (T-1, T-2).
/// Returns (dir, rotated file, current file).
async fn two_files() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("disclosures.jsonl");
    let (log, _) = AuditLog::open(&path).expect("open");
    for (n, s) in [(0, "T-1"), (1, "T-2"), (2, "T-1")] {
        log.append(disclosure(n, s)).await.expect("append");
    }
    let old = log.rotate().await.expect("rotate");
    for (n, s) in [(3, "T-1"), (4, "T-2")] {
        log.append(disclosure(n, s)).await.expect("append");
    }
    log.close().await;
    (dir, old, path)
}

fn head_of(out: &str, file: &Path) -> String {
    let prefix = format!("{}: ", file.display());
    let line = out
        .lines()
        .find(|l| l.starts_with(&prefix) && l.contains("records verified"))
        .unwrap_or_else(|| panic!("no line for {}: {out}", file.display()));
    line.rsplit(' ').next().expect("head").to_owned()
}

#[tokio::test]
async fn verify_over_rotated_files_prints_each_and_a_total() {
    let (_dir, old, path) = two_files().await;
    let text = audit("verify", &[&old, &path], &[]).success().stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with(&format!("{}: 3 records verified, head ", old.display())));
    assert!(lines[1].starts_with(&format!("{}: 3 records verified, head ", path.display())));
    let head = head_of(&text, &path);
    assert_eq!(
        lines[2],
        format!("total: 6 records verified in 2 files, head {head}")
    );
}

#[tokio::test]
async fn one_rotated_file_verifies_alone_and_says_what_it_continues() {
    let (_dir, old, path) = two_files().await;
    let text = audit("verify", &[&path], &[]).success().stdout;
    let old_out = audit("verify", &[&old], &[]).run().stdout;
    // The single-file line is unchanged; the old file's one line is all it prints.
    assert_eq!(old_out.lines().count(), 1, "{old_out}");
    let old_head = head_of(&old_out, &old);
    let name = old.file_name().and_then(|n| n.to_str()).expect("name");
    let second = text.lines().nth(1).expect("a continues line");
    assert_eq!(
        second,
        format!(
            "{}: continues from {old_head} (the last hash of {name}, 3 records); verify it with \
             that file",
            path.display()
        )
    );
}

#[tokio::test]
async fn a_cut_old_file_or_the_wrong_order_names_the_file_and_line() {
    let (_dir, old, path) = two_files().await;
    let text = std::fs::read_to_string(&old).expect("read");
    let kept: Vec<&str> = text.lines().take(2).collect();
    std::fs::write(&old, kept.join("\n") + "\n").expect("write");

    let text = audit("verify", &[&old, &path], &[]).expect(1).stdout;
    let lines: Vec<&str> = text.lines().collect();
    // The cut file still verifies on its own; the break is where the next file links to it.
    assert!(lines[0].starts_with(&format!("{}: 2 records verified", old.display())));
    assert!(
        lines[1].starts_with(&format!(
            "{}: line 1: prev_hash is not the last hash of",
            path.display()
        )),
        "{text}"
    );
    assert_eq!(lines.len(), 2, "no total after a break: {text}");

    audit("verify", &[&path, &old], &[])
        .expect(1)
        .stdout_has(&[&format!("{}: line 1: not a rotation record", old.display())]);
}

#[tokio::test]
async fn query_over_rotated_files_lists_oldest_first() {
    let (_dir, old, path) = two_files().await;
    let out = audit("query", &[&old, &path], &["--subject", "T-1"]).success();
    let ids: Vec<String> = out
        .stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            v["request_id"].as_str().expect("id").to_owned()
        })
        .collect();
    assert_eq!(ids, ["req-0", "req-2", "req-3"]);
    // The rotation record has no subjects, so it never matches.
    let none = audit("query", &[&old, &path], &["--subject", "T-9"]).success();
    assert!(none.stdout.is_empty(), "{none}");
}
