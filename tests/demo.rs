//! `demo` as an installed binary runs it: started in an empty directory, with no rules or
//! config beside it, every command its guide prints is run through `sh -c` exactly as
//! printed, from that directory, and answers as its description says; when it stops, its
//! temporary run directory is removed, or kept with `--keep`, and a named `--dir` is kept.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use crate::support::cli::{sigterm, Cli};

const CURL: &str = "/usr/bin/curl";
const PSEUDONYM_KEY_ENV: &str = "NEED_TO_KNOW_PSEUDONYM_KEY";
/// The guide's last line: everything before it has been printed.
const LAST_LINE: &str = "# Ctrl-C stops the demo.";
const RUN_DIR_LINE: &str = "# The run directory (config, audit file, rules): ";

/// A running `demo` and the guide it printed.
struct Demo {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    guide: Vec<String>,
    /// The empty directory it runs in, where the printed commands run too.
    cwd: tempfile::TempDir,
    /// Its TMPDIR, under which its temporary run directory goes.
    tmp: tempfile::TempDir,
}

/// What a printed `curl` line promises: the recipient's key, the path, whether it sends a
/// reference, the status, and a check of the body.
struct Promise {
    key: &'static str,
    path: &'static str,
    reference: bool,
    status: u16,
    check: fn(&Value),
}

// === impl Demo ===

impl Demo {
    /// `need-to-know demo --port 0 EXTRA` in a new empty directory, without a pseudonym key
    /// in its environment (as on a fresh machine), until its guide is printed.
    async fn start(extra: &[&str]) -> Demo {
        let cwd = tempfile::tempdir().expect("tempdir");
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut child = Cli::new(["demo", "--port", "0"])
            .args(extra)
            .current_dir(cwd.path())
            .env_remove(PSEUDONYM_KEY_ENV)
            .env("TMPDIR", tmp.path())
            .process()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn demo");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut guide = Vec::new();
        let read = async {
            while let Some(line) = stdout.next_line().await.expect("read stdout") {
                let last = line == LAST_LINE;
                guide.push(line);
                if last {
                    return true;
                }
            }
            false
        };
        let printed = tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .unwrap_or(false);
        assert!(
            printed,
            "demo did not print its guide (exit: {:?}):\n{}",
            child.try_wait(),
            guide.join("\n")
        );
        Demo {
            child,
            stdout,
            guide,
            cwd,
            tmp,
        }
    }

    /// The run directory the guide names.
    fn run_dir(&self) -> PathBuf {
        let line = self
            .guide
            .iter()
            .find_map(|l| l.strip_prefix(RUN_DIR_LINE))
            .unwrap_or_else(|| panic!("no run directory in:\n{}", self.guide.join("\n")));
        PathBuf::from(line)
    }

    /// Each command line of the guide with the comment lines just before it, joined.
    fn commands(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut what = Vec::new();
        for line in &self.guide {
            if let Some(comment) = line.strip_prefix('#') {
                what.push(comment.trim().to_string());
            } else if line.is_empty() {
                what.clear();
            } else {
                out.push((what.join(" "), line.clone()));
                what.clear();
            }
        }
        out
    }

    /// `sh -c LINE` in the demo's directory, with the demo's environment and a PATH that
    /// holds no `need-to-know`.
    fn sh(&self, line: &str) -> std::process::Output {
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(line)
            .current_dir(self.cwd.path())
            .env_remove(PSEUDONYM_KEY_ENV)
            .env_remove("RUST_LOG")
            .env("PATH", "/usr/bin:/bin")
            .output()
            .expect("run sh")
    }

    /// SIGTERM, as Ctrl-C; what it printed afterwards and how it exited.
    async fn stop(&mut self) -> (String, ExitStatus) {
        sigterm(&self.child);
        let mut rest = Vec::new();
        let read = async {
            while let Some(line) = self.stdout.next_line().await.expect("read stdout") {
                rest.push(line);
            }
        };
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("demo closes its stdout when it stops");
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("demo exits")
            .expect("wait");
        (rest.join("\n"), status)
    }
}

/// Every `curl` line the guide prints, by what its description says.
fn promises() -> Vec<Promise> {
    fn tenant(body: &Value) -> &Value {
        &body["tenant"]
    }
    vec![
        Promise {
            key: "dev-acme-repairs-key",
            path: "/jobs/J-0001",
            reference: false,
            status: 200,
            check: |body| {
                let t = tenant(body);
                assert!(
                    t["phone"].is_string() && t["access_needs"].is_array(),
                    "{body}"
                );
                let markers = t["caution_markers"].as_array().expect("caution markers");
                assert_eq!(markers.len(), 1, "{body}");
                let notes = body["access_notes"].as_str().expect("access notes");
                assert!(
                    notes.contains("[removed]") && !notes.contains("07700"),
                    "{body}"
                );
            },
        },
        Promise {
            key: "dev-acme-repairs-key",
            path: "/jobs?status=scheduled&status=in_progress",
            reference: false,
            status: 200,
            check: |body| {
                let jobs = body.as_array().expect("a job list");
                assert!(jobs.iter().any(|j| j["id"] == "J-0001"), "{body}");
                assert!(
                    jobs.iter().all(|j| j["id"] != "J-0002"),
                    "brightfix's job: {body}"
                );
                for job in jobs {
                    assert!(matches!(
                        job["status"].as_str(),
                        Some("scheduled" | "in_progress")
                    ));
                    assert!(job.get("tenant").is_none(), "{job}");
                }
            },
        },
        Promise {
            key: "dev-acme-repairs-key",
            path: "/jobs?contractor=BFX",
            reference: false,
            status: 403,
            check: |body| assert_eq!(body["error"], "binding_mismatch", "{body}"),
        },
        Promise {
            key: "dev-acme-repairs-key",
            path: "/jobs/J-0003",
            reference: false,
            status: 200,
            check: |body| {
                assert!(tenant(body)["phone"].is_string(), "{body}");
                assert!(tenant(body).get("caution_markers").is_none(), "{body}");
            },
        },
        Promise {
            key: "dev-acme-repairs-key",
            path: "/jobs/J-0002",
            reference: false,
            status: 404,
            check: |_| {},
        },
        // The PATCH of the job (after the GET of it, which takes the first promise of the path).
        Promise {
            key: "dev-acme-repairs-key",
            path: "/jobs/J-0001",
            reference: false,
            status: 200,
            check: |body| {
                assert_eq!(body["status"], "completed", "{body}");
                assert_eq!(body["completion_notes"], "Boiler serviced", "{body}");
                assert!(body.get("tenant").is_none(), "{body}");
            },
        },
        Promise {
            key: "dev-acme-repairs-key",
            path: "/properties/P-0001/alerts",
            reference: false,
            status: 200,
            check: |body| {
                let alerts = body["alerts"].as_array().expect("alerts");
                assert_eq!(alerts.len(), 1, "{body}");
                let mut keys: Vec<&String> =
                    alerts[0].as_object().expect("object").keys().collect();
                keys.sort();
                assert_eq!(keys, ["category", "instruction"], "{body}");
            },
        },
        Promise {
            key: "dev-northgate-gas-key",
            path: "/properties/P-0001/alerts",
            reference: false,
            status: 404,
            check: |_| {},
        },
        Promise {
            key: "dev-nightline-key",
            path: "/tenants/T-0004",
            reference: false,
            status: 200,
            check: |body| {
                assert!(body["phone"].is_string(), "{body}");
                assert!(body["communication_needs"].is_array(), "{body}");
                assert_eq!(body["no_lone_working"], true, "{body}");
                for withheld in [
                    "arrears",
                    "benefits",
                    "health",
                    "support_needs",
                    "ni_number",
                ] {
                    assert!(body.get(withheld).is_none(), "{withheld} in {body}");
                }
            },
        },
        Promise {
            key: "dev-civic-surveys-key",
            path: "/tenants?postcode_district=LN2",
            reference: false,
            status: 200,
            check: |body| {
                let sample = body.as_array().expect("a survey sample");
                assert!(!sample.is_empty());
                for one in sample {
                    assert!(one["age_band"].is_string(), "{one}");
                    assert!(one["respondent_id"].is_string(), "{one}");
                    assert_eq!(one["postcode_district"], "LN2", "{one}");
                    for withheld in ["date_of_birth", "address", "id"] {
                        assert!(one.get(withheld).is_none(), "{withheld} in {one}");
                    }
                }
            },
        },
        Promise {
            key: "dev-civic-surveys-key",
            path: "/tenants",
            reference: false,
            status: 400,
            check: |body| assert_eq!(body["error"], "too_many_items", "{body}"),
        },
        Promise {
            key: "dev-civic-surveys-key",
            path: "/tenants?limit=50&offset=0",
            reference: false,
            status: 200,
            check: |body| {
                let page = body.as_array().expect("a page");
                assert!(!page.is_empty() && page.len() <= 50, "{}", page.len());
                assert!(page.iter().all(|t| t.get("date_of_birth").is_none()));
            },
        },
        Promise {
            key: "dev-civic-surveys-key",
            path: "/tenants/T-0002",
            reference: false,
            status: 403,
            check: refused,
        },
        Promise {
            key: "dev-fenland-water-recoveries-key",
            path: "/former-tenants/T-0003",
            reference: true,
            status: 200,
            check: |body| {
                let mut keys: Vec<&String> = body.as_object().expect("object").keys().collect();
                keys.sort();
                assert_eq!(keys, ["forwarding_address", "name", "tenancy"], "{body}");
                assert!(body["tenancy"]["start"].is_string(), "{body}");
            },
        },
        Promise {
            key: "dev-lincs-print-post-key",
            path: "/tenants?postcode_district=LN2",
            reference: false,
            status: 200,
            check: |body| {
                let list = body.as_array().expect("a mailing list");
                assert!(!list.is_empty());
                for one in list {
                    let mut keys: Vec<&String> = one.as_object().expect("object").keys().collect();
                    keys.sort();
                    assert_eq!(keys, ["address", "name"], "{one}");
                }
            },
        },
        Promise {
            key: "dev-ulh-occupancy-key",
            path: "/properties/P-0007/occupants",
            reference: false,
            status: 200,
            check: |body| {
                each_row(
                    body,
                    &["/phone", "/tenancy/start"],
                    &["date_of_birth", "address", "health", "benefits", "arrears"],
                );
            },
        },
        Promise {
            key: "dev-lincoln-council-tax-key",
            path: "/properties/P-0007/occupants",
            reference: true,
            status: 200,
            check: |body| {
                each_row(
                    body,
                    &["/address/line1", "/tenancy/start"],
                    &["date_of_birth", "health", "household", "arrears"],
                );
            },
        },
        Promise {
            key: "dev-lincs-police-key",
            path: "/tenants/T-0001",
            reference: false,
            status: 403,
            check: refused,
        },
        Promise {
            key: "dev-lincs-police-key",
            path: "/tenants/T-0001",
            reference: true,
            status: 200,
            check: |body| {
                assert!(body["name"].is_string(), "{body}");
                assert!(body["address"].is_object(), "{body}");
                assert!(body["tenancy"]["start"].is_string(), "{body}");
            },
        },
    ]
}

/// `body` is a non-empty list whose every row carries a string at each `sent` pointer and
/// none of the `withheld` keys.
fn each_row(body: &Value, sent: &[&str], withheld: &[&str]) {
    let rows = body.as_array().expect("a list");
    assert!(!rows.is_empty(), "{body}");
    for row in rows {
        for pointer in sent {
            assert!(
                row.pointer(pointer).is_some_and(Value::is_string),
                "{pointer} missing from {row}"
            );
        }
        for field in withheld {
            assert!(row.get(field).is_none(), "{field} in {row}");
        }
    }
}

fn refused(body: &Value) {
    assert_eq!(body["error"], "refused_by_policy", "{body}");
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[tokio::test]
async fn every_printed_command_runs_as_printed_from_an_empty_directory() {
    every_printed_command_runs(&[]).await;
}

/// The same over TLS, with certificates made for the run: the curl lines trust the run's CA,
/// and two recipients present client certificates (by name and by hash) instead of keys.
#[tokio::test]
async fn with_tls_every_printed_command_runs_as_printed() {
    every_printed_command_runs(&["--tls"]).await;
}

async fn every_printed_command_runs(extra: &[&str]) {
    let tls = extra.contains(&"--tls");
    if !Path::new(CURL).exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI needs {CURL}"
        );
        println!("skipped: no {CURL}");
        return;
    }
    let mut demo = Demo::start(extra).await;
    let dir = demo.run_dir();
    assert!(
        dir.starts_with(demo.tmp.path().canonicalize().expect("tmp")),
        "{dir:?}"
    );
    assert!(
        dir.join("rules/recipients.toml").is_file(),
        "shipped rules in {dir:?}"
    );

    let mut promises = promises();
    let mut outputs = std::collections::BTreeMap::new();
    for (what, command) in demo.commands() {
        let out = demo.sh(&command);
        let shown = format!("`{command}` ({what})");
        assert!(
            out.status.success(),
            "{shown} exited {}:\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        if command.starts_with("curl ") {
            let at = promises
                .iter()
                .position(|p| {
                    let id = p.key.trim_start_matches("dev-").trim_end_matches("-key");
                    let identified = command.contains(&format!("Bearer {}'", p.key))
                        || command.contains(&format!("/{id}.crt "));
                    identified
                        && command.ends_with(&format!("{}'", p.path))
                        && command.contains("x-disclosure-reference") == p.reference
                })
                .unwrap_or_else(|| panic!("nothing promised for {shown}"));
            let promise = promises.remove(at);
            assert_eq!(command.contains("'https://"), tls, "{shown}");
            let status = demo.sh(&format!("{command} -o /dev/null -w '%{{http_code}}'"));
            assert_eq!(text(&status.stdout), promise.status.to_string(), "{shown}");
            let body: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!("{shown} answered no JSON ({e}): {}", text(&out.stdout))
            });
            (promise.check)(&body);
            continue;
        }
        let kind = ["audit query", "audit verify", "audit report", "register"]
            .into_iter()
            .find(|k| command.contains(&format!(" {k} ")))
            .unwrap_or_else(|| panic!("an unexpected command {shown}"));
        assert!(
            outputs.insert(kind, (what, text(&out.stdout))).is_none(),
            "{shown} twice"
        );
    }
    let left: Vec<String> = promises
        .iter()
        .map(|p| format!("{} {}", p.key, p.path))
        .collect();
    assert!(left.is_empty(), "not printed: {left:?}");

    let (_, query) = &outputs["audit query"];
    assert!(
        query.contains("T-0001") && query.contains("REF-2026-0042"),
        "{query}"
    );
    let (_, verify) = &outputs["audit verify"];
    assert!(verify.contains("records verified"), "{verify}");
    for (kind, page, needle) in [
        // The recipient's name comes from the rules, which load only with the pseudonym key.
        ("audit report", "report-T-0001.html", "Lincolnshire Police"),
        ("register", "register.html", "Disclosure register"),
    ] {
        let (what, _) = &outputs[kind];
        let page = dir.join(page);
        assert!(what.contains(&page.display().to_string()), "{kind}: {what}");
        let html = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{page:?}: {e}"));
        assert!(
            html.to_ascii_lowercase().starts_with("<!doctype html>") && html.contains(needle),
            "{kind}: no {needle:?} in {page:?}"
        );
    }

    let (printed, status) = demo.stop().await;
    assert!(status.success(), "{status}: {printed}");
    assert!(printed.contains("Removed the run directory"), "{printed}");
    assert!(!dir.exists(), "{dir:?} left behind");
}

#[tokio::test]
async fn keep_keeps_the_temporary_run_directory() {
    let mut demo = Demo::start(&["--keep"]).await;
    let dir = demo.run_dir();
    let (printed, status) = demo.stop().await;
    assert!(status.success(), "{status}: {printed}");
    assert!(printed.contains("The run directory is kept"), "{printed}");
    // Kept under the test's TMPDIR, which goes when `demo` drops.
    assert!(dir.join("disclosures.jsonl").is_file(), "{dir:?}");
}

#[tokio::test]
async fn a_named_run_directory_is_never_removed() {
    let named = tempfile::tempdir().expect("tempdir");
    let run = named.path().join("run");
    let mut demo = Demo::start(&["--dir", run.to_str().expect("UTF-8")]).await;
    assert_eq!(demo.run_dir(), run.canonicalize().expect("made"));
    let (printed, status) = demo.stop().await;
    assert!(status.success(), "{status}: {printed}");
    assert!(printed.contains("The run directory is kept"), "{printed}");
    for file in [
        "need-to-know.toml",
        "disclosures.jsonl",
        "rules/types/police.toml",
    ] {
        assert!(run.join(file).is_file(), "no {file} in {run:?}");
    }
}
