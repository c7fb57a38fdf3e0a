//! `audit prove` and `audit check-proof` over a ledger the audit writer made, across a
//! rotation; and the same proof file checked by an independent implementation: a Go program
//! on the Go project's own C2SP note and RFC 6962 code (tests/go-verify), which must accept it
//! and must refuse a flipped bit in the line, a proof hash, the root and the signature.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use need_to_know::audit::AuditLog;
use serde_json::Value;

use crate::support::cli::Cli;
use crate::support::disclosure;

/// Thirteen records about T-0, T-1 and T-2 in turn, rotated after seven: two files, one chain.
async fn ledger(dir: &Path) -> Vec<PathBuf> {
    let path = dir.join("audit.jsonl");
    let (log, _) = AuditLog::open(&path).expect("open");
    let mut archived = None;
    for n in 0..13 {
        if n == 7 {
            archived = Some(log.rotate().await.expect("rotate"));
        }
        log.append(disclosure(n, &format!("T-{}", n % 3)))
            .await
            .expect("append");
    }
    log.close().await;
    vec![archived.expect("rotated"), path]
}

fn keygen(dir: &Path) -> (PathBuf, PathBuf) {
    let out = Cli::new(["keygen", "--checkpoint", "--out", "keys", "--name", "gw-1"])
        .current_dir(dir)
        .success();
    out.stdout_has(&["verifier key: keys/checkpoint.vkey"]);
    let vkey = dir.join("keys/checkpoint.vkey");
    let text = std::fs::read_to_string(&vkey).expect("vkey");
    assert!(text.starts_with("gw-1+") && text.ends_with('\n'), "{text}");
    (dir.join("keys/checkpoint.key"), vkey)
}

fn prove(dir: &Path, files: &[PathBuf], key: &Path, subject: &str) -> (PathBuf, Value) {
    let out = dir.join(format!("proof-{subject}.json"));
    Cli::new(["audit", "prove"])
        .args(files)
        .args([
            "--subject",
            subject,
            "--origin",
            "housing.example/need-to-know/gw-1",
        ])
        .arg("--key")
        .arg(key)
        .arg("--output")
        .arg(&out)
        .success();
    let json = serde_json::from_str(&std::fs::read_to_string(&out).expect("proof")).expect("json");
    (out, json)
}

#[tokio::test]
async fn a_subjects_records_are_proven_and_checked_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = ledger(dir.path()).await;
    let (key, vkey) = keygen(dir.path());
    let (path, json) = prove(dir.path(), &files, &key, "T-1");

    // T-1 is in requests 1, 4, 7 and 10; the rotation record is leaf 7, so 1, 4, 8, 11 of 14.
    let records = json["records"].as_array().expect("records");
    let indexes: Vec<u64> = records
        .iter()
        .map(|r| r["index"].as_u64().expect("index"))
        .collect();
    assert_eq!(indexes, [1, 4, 8, 11]);
    let lines: Vec<String> = files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("read")
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(lines.len(), 14);
    for r in records {
        let index = usize::try_from(r["index"].as_u64().expect("index")).expect("usize");
        assert_eq!(r["line"].as_str(), Some(lines[index].as_str()));
        let note = r["checkpoint"].as_str().expect("note");
        assert!(
            note.starts_with("housing.example/need-to-know/gw-1\n14\n"),
            "{note}"
        );
        assert!(note.contains("\n\n\u{2014} gw-1 "), "{note}");
    }

    let checked = Cli::new(["audit", "check-proof"])
        .arg(&path)
        .arg("--key")
        .arg(&vkey)
        .success();
    checked.stdout_has(&["4 record(s) proven", "size 14 signed by gw-1"]);

    // The wrong key, and a changed line, are refused.
    let (_, other) = {
        let d = tempfile::tempdir().expect("tempdir");
        let pair = keygen(d.path());
        (d, std::fs::read_to_string(pair.1).expect("vkey"))
    };
    Cli::new(["audit", "check-proof"])
        .arg(&path)
        .args(["--key", other.trim()])
        .expect(1)
        .stdout_has(&["NOT proven"]);
    let bent = dir.path().join("bent.json");
    let mut changed = json.clone();
    changed["records"][0]["line"] = Value::from(lines[1].replace("T-1", "T-9"));
    std::fs::write(&bent, changed.to_string()).expect("write");
    Cli::new(["audit", "check-proof"])
        .arg(&bent)
        .arg("--key")
        .arg(&vkey)
        .expect(1)
        .stdout_has(&["record 1: the line is not in the tree"]);

    go_verifier(dir.path(), &json, &vkey);
}

#[tokio::test]
async fn prove_refuses_a_broken_chain_and_a_ledger_not_from_its_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = ledger(dir.path()).await;
    let (key, _) = keygen(dir.path());
    let refused = |files: &[PathBuf], origin: &str, why: &str| {
        let out = Cli::new(["audit", "prove"])
            .args(files)
            .args(["--subject", "T-1", "--origin", origin, "--key"])
            .arg(&key)
            .expect(1);
        assert!(out.stderr.contains(why), "{}", out.stderr);
    };
    refused(&files[1..], "o", "give every file from the chain's first");
    refused(&files, "a\nb", "--origin must be one line");
    let text = std::fs::read_to_string(&files[0]).expect("read");
    std::fs::write(&files[0], text.replacen("T-1", "T-8", 1)).expect("write");
    refused(&files, "o", "the chain does not verify");
}

/// Builds tests/go-verify offline and runs it on the proof and on four bent copies.
fn go_verifier(dir: &Path, json: &Value, vkey: &Path) {
    let Some(bin) = build_go_verifier() else {
        return;
    };
    let run = |proof: &Value, what: &str| {
        let path = dir.join(format!("go-{what}.json"));
        std::fs::write(&path, proof.to_string()).expect("write");
        let out = Command::new(&bin)
            .arg(&path)
            .arg(vkey)
            .output()
            .expect("run go-verify");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, stdout) = run(json, "good");
    assert!(ok, "the Go verifier refused a good proof: {stdout}");
    assert!(stdout.contains("OK: 4 record(s)"), "{stdout}");

    let flip_b64 = |text: &str| {
        let mut bytes = STANDARD.decode(text).expect("base64");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        STANDARD.encode(bytes)
    };
    let note = json["records"][0]["checkpoint"]
        .as_str()
        .expect("note")
        .to_owned();
    let (body, sig_line) = note.rsplit_once("\n\n").expect("note");
    let mut body_lines: Vec<String> = body.lines().map(str::to_owned).collect();
    body_lines[2] = flip_b64(&body_lines[2]);
    let bent_root = format!("{}\n\n{sig_line}", body_lines.join("\n"));
    let (prefix, sig) = sig_line.trim_end().rsplit_once(' ').expect("sig");
    let bent_sig = format!("{body}\n\n{prefix} {}\n", flip_b64(sig));

    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut line = json.clone();
    let text = line["records"][0]["line"]
        .as_str()
        .expect("line")
        .to_owned();
    // One bit: 'r' (0x72) of "req-" becomes 's' (0x73).
    line["records"][0]["line"] = Value::from(text.replacen("\"req-", "\"seq-", 1));
    cases.push(("line", line));
    let mut hash = json.clone();
    let first = hash["records"][0]["proof"][0]
        .as_str()
        .expect("hash")
        .to_owned();
    hash["records"][0]["proof"][0] = Value::from(flip_b64(&first));
    cases.push(("proof hash", hash));
    let mut root = json.clone();
    root["records"][0]["checkpoint"] = Value::from(bent_root);
    cases.push(("root", root));
    let mut sig = json.clone();
    sig["records"][0]["checkpoint"] = Value::from(bent_sig);
    cases.push(("signature", sig));
    for (what, proof) in cases {
        let (ok, stdout) = run(&proof, &what.replace(' ', "-"));
        assert!(
            !ok,
            "the Go verifier accepted a flipped bit in the {what}: {stdout}"
        );
        assert!(stdout.contains("FAIL"), "{what}: {stdout}");
    }
}

/// The verifier built from Debian's Go toolchain and golang.org/x/mod source, without the
/// network; `None` (the test says "skipped") where there is no Go, except under CI.
fn build_go_verifier() -> Option<PathBuf> {
    let have_go = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    let have_mod = Path::new("/usr/share/gocode/src/golang.org/x/mod/sumdb/note").is_dir();
    if !(have_go && have_mod) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI needs golang-go and golang-golang-x-mod-dev for the Go proof verifier"
        );
        eprintln!("skipped: the Go proof verifier (no go, or no golang-golang-x-mod-dev)");
        return None;
    }
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let bin = tmp.join("go-verify");
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go-verify"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", tmp.join("gocache"))
        .env("GOPATH", tmp.join("gopath"))
        .output()
        .expect("run go build");
    assert!(
        out.status.success(),
        "go build tests/go-verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(bin)
}
