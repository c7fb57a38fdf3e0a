//! Signed audit checkpoints through the binary: `keygen --checkpoint`, then every kind of
//! tampering caught by `audit verify --checkpoints --public-key`, and `serve` writing them.
//!
//! `cargo test --test integration checkpoints:: -- --nocapture` prints
//! `tamper cases: N/N detected`, the figure `reliability/run` reports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use need_to_know::audit::checkpoint::Config;
use need_to_know::audit::{AuditLog, Options};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::support::cli::Cli;
use crate::support::disclosure;
use crate::support::gateway::Builder;

/// `keygen --checkpoint --out keys` in `dir`; the key files, checked as documented.
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let out = Cli::new(["keygen", "--checkpoint", "--out", name])
        .current_dir(dir)
        .success();
    let key = dir.join(name).join("checkpoint.key");
    let public = dir.join(name).join("checkpoint.pub");
    out.stdout_has(&[&format!("checkpoint_key = \"{name}/checkpoint.key\"")]);
    let private_pem = std::fs::read_to_string(&key).expect("key");
    assert!(private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(std::fs::read_to_string(&public)
        .expect("pub")
        .starts_with("-----BEGIN PUBLIC KEY-----\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "private key mode {mode:o}");
    }
    // Never over an existing key.
    Cli::new(["keygen", "--checkpoint", "--out", name])
        .current_dir(dir)
        .expect(1);
    assert_eq!(std::fs::read_to_string(&key).expect("key"), private_pem);
    (key, public)
}

/// Ten records with a checkpoint every four: checkpoints at 4, 8 and (on close) 10.
async fn ledger(dir: &Path, key: &Path) -> (PathBuf, PathBuf) {
    let path = dir.join("audit.jsonl");
    let checkpoints = dir.join("audit.jsonl.checkpoints");
    let options = Options {
        checkpoints: Some(Config {
            key: key.to_path_buf(),
            path: checkpoints.clone(),
            every: 4,
            interval: Duration::from_secs(3600),
        }),
    };
    let (log, _) = AuditLog::open_with(&path, &options).expect("open");
    for n in 0..10 {
        log.append(disclosure(n, &format!("T-{n}")))
            .await
            .expect("append");
    }
    log.close().await;
    (path, checkpoints)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Every record rewritten (one changed, as a forger would) into a new, consistent chain.
fn rehash(audit: &[String]) -> String {
    let mut prev = "0".repeat(64);
    let mut out = String::new();
    for (i, line) in audit.iter().enumerate() {
        let mut m: Map<String, Value> = serde_json::from_str(line).expect("record");
        m.remove("hash");
        if i == 2 {
            m.insert("withheld".into(), Value::Array(vec![]));
        }
        m.insert("prev_hash".into(), Value::String(prev.clone()));
        let jcs = serde_json_canonicalizer::to_vec(&m).expect("jcs");
        prev = hex::encode(Sha256::digest(&jcs));
        m.insert("hash".into(), Value::String(prev.clone()));
        out.push_str(&serde_json_canonicalizer::to_string(&m).expect("jcs"));
        out.push('\n');
    }
    out
}

struct Case {
    name: &'static str,
    /// The audit file and checkpoint file as tampered.
    audit: String,
    checkpoints: String,
    /// Use the other key's public key.
    wrong_key: bool,
    /// What the verdict must name.
    expect: &'static str,
}

#[tokio::test]
async fn every_kind_of_tampering_is_detected_and_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, public) = keygen(dir.path(), "keys");
    let (_, other_public) = keygen(dir.path(), "other");
    let (audit_path, ck_path) = ledger(dir.path(), &key).await;
    let audit = lines(&audit_path);
    let cks = lines(&ck_path);
    assert_eq!((audit.len(), cks.len()), (10, 3));

    // Untampered: exit 0, the last checkpoint and nothing unwitnessed.
    let pk = public.to_str().expect("utf-8");
    let verify = |audit: &Path, cks: &Path, key: &str| {
        Cli::new(["audit", "verify"])
            .arg(audit)
            .arg("--checkpoints")
            .arg(cks)
            .args(["--public-key", key])
            .current_dir(dir.path())
            .run()
    };
    let out = verify(&audit_path, &ck_path, pk);
    assert_eq!(out.code, Some(0), "{out}");
    out.stdout_has(&[
        "3 checkpoints verified, the last at record 10",
        "0 records after the last checkpoint",
    ]);

    let join = |l: &[String]| l.concat();
    let mut flipped = audit.clone();
    flipped[4] = flipped[4].replacen("J-4", "J-5", 1);
    let mut deleted = audit.clone();
    deleted.remove(4);
    let mut reordered = audit.clone();
    reordered.swap(4, 5);
    // The forger cuts the last record and signs a checkpoint for the new end without the key:
    // the old signature over new values.
    let cut = &audit[..9];
    let head9: Value = serde_json::from_str(&audit[8]).expect("record");
    let mut last: Map<String, Value> = serde_json::from_str(&cks[2]).expect("checkpoint");
    last.insert("size".into(), Value::from(9));
    last.insert("head".into(), head9["hash"].clone());
    let forged = format!(
        "{}{}{}\n",
        cks[0],
        cks[1],
        serde_json_canonicalizer::to_string(&last).expect("jcs")
    );
    let mut ck_reordered = cks.clone();
    ck_reordered.swap(0, 1);
    let case = |name, audit, checkpoints, expect| Case {
        name,
        audit,
        checkpoints,
        wrong_key: false,
        expect,
    };
    let cases = [
        case(
            "byte flip",
            join(&flipped),
            join(&cks),
            "line 5: hash does not match the record",
        ),
        case(
            "line deletion",
            join(&deleted),
            join(&cks),
            "line 5: prev_hash does not match line 4's hash",
        ),
        case(
            "reordering",
            join(&reordered),
            join(&cks),
            "line 5: prev_hash does not match line 4's hash",
        ),
        case(
            "truncation",
            join(&audit[..8]),
            join(&cks),
            "line 3: signed record 10, but the files hold only 8 records",
        ),
        case(
            "full re-hash",
            rehash(&audit),
            join(&cks),
            "line 1: signed head",
        ),
        case(
            "forged checkpoint line",
            join(cut),
            forged,
            "line 3: the signature of record 9 does not verify",
        ),
        Case {
            wrong_key: true,
            ..case(
                "wrong public key",
                join(&audit),
                join(&cks),
                "line 1: the signature of record 4 does not verify",
            )
        },
        case(
            "checkpoint lines reordered",
            join(&audit),
            join(&ck_reordered),
            "line 2: size 4 is not above line 1's size 8",
        ),
    ];
    let mut detected = 0;
    let mut missed = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let a = dir.path().join(format!("case-{i}.jsonl"));
        let c = dir.path().join(format!("case-{i}.checkpoints"));
        std::fs::write(&a, &case.audit).expect("write");
        std::fs::write(&c, &case.checkpoints).expect("write");
        let key = if case.wrong_key {
            other_public.to_str().expect("utf-8")
        } else {
            pk
        };
        let out = verify(&a, &c, key);
        if out.code == Some(1) && out.stdout.contains(case.expect) {
            detected += 1;
        } else {
            missed.push(format!("{}: {out}", case.name));
        }
    }
    println!("tamper cases: {detected}/{} detected", cases.len());
    assert!(missed.is_empty(), "missed:\n{}", missed.join("\n"));
}

/// The real `serve` with checkpoints on (set through the environment): requests through it,
/// SIGTERM, and the checkpoint file verifies with nothing left unwitnessed; the log carries
/// the `audit_checkpoint` event with size and head, and no personal data.
#[tokio::test]
async fn serve_writes_checkpoints_and_logs_them() {
    use crate::support::upstream::Upstream;
    let up = Upstream::new()
        .json("/api/jobs/J-1001", crate::support::job())
        .run()
        .await;
    let (dir, _config, keys) = Builder::before(&up).write();
    keygen(dir.path(), "keys");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], crate::support::free_port()));
    let serving = Cli::new(["serve"])
        .current_dir(dir.path())
        .env("NEED_TO_KNOW__AUDIT__CHECKPOINT_KEY", "keys/checkpoint.key")
        .env("NEED_TO_KNOW__AUDIT__CHECKPOINT_EVERY", "2")
        .env("RUST_LOG", "info")
        .serving(addr, Some(&dir.path().join("serve.log")))
        .await;
    for _ in 0..5 {
        let r = crate::support::http::get(addr, "/jobs/J-1001", Some(&keys[0].1)).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let status = serving.terminate(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0));

    let audit = "audit/disclosures.jsonl";
    let cks = "audit/disclosures.jsonl.checkpoints";
    let out = Cli::new(["audit", "verify", audit, "--checkpoints", cks])
        .args(["--public-key", "keys/checkpoint.pub"])
        .current_dir(dir.path())
        .success();
    // Every 2 of 5 records, and the last on shutdown.
    out.stdout_has(&[
        "3 checkpoints verified, the last at record 5",
        "0 records after the last checkpoint",
    ]);

    let logged = strip_ansi(&std::fs::read_to_string(dir.path().join("serve.log")).expect("log"));
    let events: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("audit_checkpoint"))
        .collect();
    assert_eq!(events.len(), 3, "{logged}");
    let last: Value = serde_json::from_str(&lines(&dir.path().join(cks))[2]).expect("ckpt");
    let head = last["head"].as_str().expect("head");
    assert!(events[2].contains("size=5"), "{}", events[2]);
    assert!(events[2].contains(head), "{}", events[2]);
    for value in ["Joan Example", "T-000142", "07700 900142"] {
        assert!(!logged.contains(value), "personal data in the log: {value}");
    }

    // The tail cut while the gateway was down: it refuses to start rather than sign on.
    let kept: String = lines(&dir.path().join(audit))[..3].concat();
    std::fs::write(dir.path().join(audit), kept).expect("cut");
    let out = Cli::new(["serve"])
        .current_dir(dir.path())
        .env("NEED_TO_KNOW__SERVER__LISTEN", addr.to_string())
        .env("NEED_TO_KNOW__AUDIT__CHECKPOINT_KEY", "keys/checkpoint.key")
        .expect(1);
    assert!(
        out.stderr.contains("the last checkpoint (record 5"),
        "{out}"
    );
}

/// `check` loads the checkpoint key as `serve` would, and names the file and the variable
/// that set it.
#[test]
fn check_names_a_checkpoint_key_that_cannot_be_used() {
    let (dir, _config, _keys) = Builder::new("http://127.0.0.1:9/api").write();
    std::fs::write(dir.path().join("bad.key"), "not a key").expect("write");
    Cli::new(["check", "--config", "need-to-know.toml"])
        .current_dir(dir.path())
        .env("NEED_TO_KNOW__AUDIT__CHECKPOINT_KEY", "bad.key")
        .expect(1)
        .stdout_has(&[
            "NEED_TO_KNOW__AUDIT__CHECKPOINT_KEY: audit.checkpoint_key: bad.key is not an Ed25519",
        ]);
}

/// The log as text: tracing colours its fields even into a file.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
