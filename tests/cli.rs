//! The binary: `check` naming file and line for each kind of problem, `keygen`, and `serve`
//! refusing to start.

use std::path::Path;

use crate::support::cli::Cli;
use crate::support::copy_dir;
use crate::support::gateway::{Builder, REPAIRS_TYPE};

#[test]
fn check_passes_on_the_shipped_config() {
    Cli::new(["check"])
        .in_repo()
        .pseudonym_key()
        .success()
        .stdout_has(&["0 error(s)"]);
}

#[test]
fn keygen_prints_a_key_and_its_hash_line() {
    let out = Cli::new(["keygen"]).success();
    let mut lines = out.stdout.lines();
    let key = lines.next().expect("key line");
    assert!(key.len() >= 43, "256 bits: {key}");
    let hash = need_to_know::identity::sha256_hex(key.as_bytes());
    assert_eq!(
        lines.next(),
        Some(format!("api_key_sha256 = \"{hash}\"").as_str())
    );
}

/// The labels are for the person, on stderr: stdout stays the two lines a script reads.
#[test]
fn keygen_labels_its_lines_on_stderr() {
    let out = Cli::new(["keygen"]).success();
    assert_eq!(out.stdout.lines().count(), 2, "{out}");
    assert!(
        out.stderr.contains("(line 1)") && out.stderr.contains("(line 2)"),
        "{out}"
    );
}

/// Without the pseudonym key, the commands that only read the rules run under a throw-away
/// key and say so in one warning line; `check` counts it as the error it is for `serve`, and
/// `serve` refuses to start.
#[test]
fn only_serve_needs_the_pseudonym_key() {
    let key = "NEED_TO_KNOW_PSEUDONYM_KEY";
    let warned = |run: &crate::support::cli::Run| {
        let lines: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.contains("throw-away key"))
            .collect();
        assert_eq!(lines.len(), 1, "one warning line: {run}");
        assert!(
            lines[0].starts_with("need-to-know.toml:") && lines[0].contains(": warning: "),
            "{run}"
        );
    };
    let test = Cli::new(["test"]).in_repo().env_remove(key).success();
    warned(&test);
    assert!(test.stdout.contains(" 0 failed"), "{test}");
    let explain = Cli::new([
        "explain",
        "--recipient",
        "civic-surveys",
        "--path",
        "/tenants/T-0001",
        "--body",
        "rules/tests/bodies/tenant-T-0001.json",
        "--now",
        "2026-06-01T00:00:00Z",
    ])
    .in_repo()
    .env_remove(key)
    .success();
    warned(&explain);
    assert!(
        explain.json()["body"]["respondent_id"].is_string(),
        "{explain}"
    );
    let diff = Cli::new(["diff", "--against", "rules"])
        .in_repo()
        .env_remove(key)
        .success();
    assert!(
        diff.stdout.contains("0 change(s)"),
        "the same pseudonyms old and new: {diff}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("register.html");
    let register = Cli::new(["register", "--output"])
        .arg(&page)
        .in_repo()
        .env_remove(key)
        .success();
    warned(&register);

    let check = Cli::new(["check"]).in_repo().env_remove(key).expect(1);
    assert!(
        check
            .stdout
            .lines()
            .any(|l| l.starts_with("need-to-know.toml:")
                && !l.contains("warning")
                && l.contains(&format!("{key} is not set"))),
        "{check}"
    );
    let serve = Cli::new(["serve"]).in_repo().env_remove(key).expect(64);
    assert!(serve.stderr.contains("pseudonym() needs a key"), "{serve}");
}

/// Piped into `head`, a command ends when the reader goes, without a panic.
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let bin = crate::support::cli::BIN;
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("'{bin}' test | head -1"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env(
            "NEED_TO_KNOW_PSEUDONYM_KEY",
            crate::support::cli::PSEUDONYM_KEY,
        )
        .output()
        .expect("sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

/// Writes a rules directory with `recipients` and one type file, and returns `check`'s lines.
fn check_with(type_text: &str, recipients: &str) -> (Option<i32>, String) {
    let (dir, _config, _keys) = Builder::new("http://127.0.0.1:9/api")
        .kind("repairs-contractor", type_text)
        .write();
    let rules = dir.path().join("rules");
    if !recipients.is_empty() {
        std::fs::write(rules.join("recipients.toml"), recipients).expect("recipients");
    }
    let out = Cli::new(["check", "--config", "need-to-know.toml"])
        .current_dir(dir.path())
        .run();
    (out.code, out.stdout)
}

const HASH_A: &str = "d76c5488b91bf9b125e97aa6176d0d893c7da3115169ed61aabcb169124d10b8";

fn one_recipient(extra: &str) -> String {
    format!("[[recipient]]\nid = \"acme\"\nname = \"ACME\"\ntype = \"repairs-contractor\"\napi_key_sha256 = \"{HASH_A}\"\n{extra}")
}

#[test]
fn check_names_file_and_line_for_each_kind_of_problem() {
    let file = "rules/types/repairs-contractor.toml";
    let cases: Vec<(String, String, String)> = vec![
        // syntax error
        (REPAIRS_TYPE.replace("query = []", "query = [") , one_recipient(""), format!("{file}:")),
        // unknown key
        (REPAIRS_TYPE.replace("query = []", "query = []\nalow = [\"x\"]"), one_recipient(""), format!("{file}:10:")),
        // malformed path
        (REPAIRS_TYPE.replace("\"tenant.email\",", "\"tenant..email\","), one_recipient(""), format!("{file}:14:")),
        // bad lawful basis
        (REPAIRS_TYPE.replace("lawful_basis = \"contract\"", "lawful_basis = \"because\""), one_recipient(""), format!("{file}:4:")),
        // bad rate
        (REPAIRS_TYPE.replace("lawful_basis = \"contract\"", "lawful_basis = \"contract\"\nrate_limit = \"lots\""), one_recipient(""), format!("{file}:5:")),
        // two routes with one method and template
        (format!("{REPAIRS_TYPE}\n[[route]]\nmethod = \"GET\"\npath = \"/jobs/{{id}}\"\nallow = [\"id\"]\n"), one_recipient(""), format!("{file}:25: route GET /jobs/{{id}} is already granted at line 6")),
        // a recipient whose type has no file
        (REPAIRS_TYPE.to_string(), one_recipient("").replace("type = \"repairs-contractor\"", "type = \"plumber\""), "rules/recipients.toml:4:".to_string()),
        // two recipients with one key hash
        (REPAIRS_TYPE.to_string(), format!("{}\n{}", one_recipient(""), one_recipient("").replace("id = \"acme\"", "id = \"acme2\"")), "rules/recipients.toml:11:".to_string()),
        // a malformed key hash
        (REPAIRS_TYPE.to_string(), one_recipient("").replace(HASH_A, "abc"), "rules/recipients.toml:5:".to_string()),
    ];
    for (type_text, recipients, expected) in cases {
        let (code, out) = check_with(&type_text, &recipients);
        assert_eq!(code, Some(1), "expected an error at {expected}:\n{out}");
        assert!(
            out.lines().any(|l| l.starts_with(&expected)),
            "expected a line starting {expected:?}:\n{out}"
        );
        assert!(
            out.contains("1 error(s)") || out.contains("error(s)"),
            "{out}"
        );
    }
}

#[test]
fn check_reports_every_problem_not_just_the_first() {
    let type_text = REPAIRS_TYPE
        .replace("lawful_basis = \"contract\"", "lawful_basis = \"because\"")
        .replace("\"tenant.email\",", "\"tenant..email\",");
    let recipients = one_recipient("rate_limit = \"often\"\n");
    let (code, out) = check_with(&type_text, &recipients);
    assert_eq!(code, Some(1));
    assert!(out.contains(":4: lawful_basis"), "{out}");
    assert!(out.contains(":14: allow"), "{out}");
    assert!(out.contains("recipients.toml:6: rate_limit"), "{out}");
}

#[test]
fn serve_refuses_to_start_on_bad_rules_and_on_plaintext_off_loopback() {
    let (dir, _config, _keys) = Builder::new("http://127.0.0.1:9/api")
        .kind(
            "repairs-contractor",
            &REPAIRS_TYPE.replace("lawful_basis = \"contract\"", "lawful_basis = \"x\""),
        )
        .write();
    let out = Cli::new(["serve"]).current_dir(dir.path()).expect(64);
    assert!(out.stderr.contains("repairs-contractor.toml:4:"), "{out}");

    let (dir, config, _keys) = Builder::new("http://127.0.0.1:9/api").write();
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("127.0.0.1:0", "0.0.0.0:0");
    std::fs::write(&config, text).expect("config");
    let out = Cli::new(["serve"]).current_dir(dir.path()).expect(64);
    assert!(out.stderr.contains("not a loopback address"), "{out}");
}

/// A bad value in the settings is reported at the line of its key, and one that comes from
/// an environment override names the variable, which is where the operator must fix it.
#[test]
fn check_names_the_line_of_a_bad_setting_or_the_variable_that_set_it() {
    let (dir, config, _keys) = Builder::new("http://127.0.0.1:9/api").write();
    let written = std::fs::read_to_string(&config).expect("config");
    let text = written.replace("max_depth = 16\n", "max_depth = 0\n");
    assert_ne!(text, written, "the test config sets limits.max_depth");
    std::fs::write(&config, &text).expect("config");
    let line = 1 + text
        .lines()
        .position(|l| l == "max_depth = 0")
        .expect("the edited line");
    let out = Cli::new(["check", "--config", "need-to-know.toml"])
        .current_dir(dir.path())
        .expect(1);
    assert_eq!(
        out.stdout,
        format!(
            "need-to-know.toml:{line}: limits.max_depth 0 must be between 1 and 512\n\
             1 error(s), 0 warning(s)\n"
        )
    );

    std::fs::write(&config, &written).expect("config");
    let out = Cli::new(["check", "--config", "need-to-know.toml"])
        .current_dir(dir.path())
        .env("NEED_TO_KNOW__LIMITS__MAX_DEPTH", "513")
        .expect(1);
    assert_eq!(
        out.stdout,
        "NEED_TO_KNOW__LIMITS__MAX_DEPTH: limits.max_depth 513 must be between 1 and 512\n\
         1 error(s), 0 warning(s)\n"
    );
}

/// Runs `check` and `serve` on the test config edited by `edit`; (check's exit code and
/// output, serve's exit code and standard error).
fn check_and_serve(edit: impl Fn(String) -> String) -> (Option<i32>, String, Option<i32>, String) {
    let (dir, config, _keys) = Builder::new("http://127.0.0.1:9/api").write();
    let text = edit(std::fs::read_to_string(&config).expect("config"));
    std::fs::write(&config, text).expect("config");
    let run = |command: &str| {
        Cli::new([command, "--config", "need-to-know.toml"])
            .current_dir(dir.path())
            .run()
    };
    let (check, serve) = (run("check"), run("serve"));
    (check.code, check.stdout, serve.code, serve.stderr)
}

/// What `serve` refuses at startup, `check` reports, from the one rule both call: plain HTTP
/// on an address other than loopback, without `[server.tls]` or `insecure_plaintext`.
#[test]
fn check_refuses_plaintext_off_loopback_as_serve_does() {
    let off_loopback = |text: String| {
        assert!(
            text.starts_with("[server]\nlisten = \"127.0.0.1:0\"\n"),
            "{text}"
        );
        text.replace("listen = \"127.0.0.1:0\"", "listen = \"0.0.0.0:8443\"")
    };
    let (code, out, serve_code, serve_err) = check_and_serve(off_loopback);
    assert_eq!(code, Some(1), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("not a loopback address"))
        .unwrap_or_else(|| panic!("no line names the plain-text listen address:\n{out}"));
    assert!(
        line.starts_with("need-to-know.toml:2: server.listen 0.0.0.0:8443 "),
        "{line}"
    );
    assert!(out.contains("1 error(s)"), "{out}");
    assert_eq!(serve_code, Some(64), "{serve_err}");
    assert!(
        serve_err.contains(line),
        "serve: {serve_err}\ncheck: {line}"
    );

    // Insisted on: check passes, with the warning serve logs.
    let insisted = |text: String| {
        off_loopback(text).replace(
            "listen = \"0.0.0.0:8443\"\n",
            "listen = \"0.0.0.0:8443\"\ninsecure_plaintext = true\n",
        )
    };
    let (dir, config, _keys) = Builder::new("http://127.0.0.1:9/api").write();
    let text = insisted(std::fs::read_to_string(&config).expect("config"));
    std::fs::write(&config, text).expect("config");
    let out = Cli::new(["check", "--config", "need-to-know.toml"])
        .current_dir(dir.path())
        .success();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("need-to-know.toml:2: warning: ") && l.contains("plain HTTP")),
        "{out}"
    );
    out.stdout_has(&["0 error(s)"]);
}

/// The other refusals `serve` makes from the settings before it serves, each reported by
/// `check` in serve's own words: an upstream credential or Redis URL variable that is not
/// set, and signed checkpoints with the PostgreSQL ledger.
#[test]
fn check_reports_the_startup_refusals_of_serve() {
    let unset = "NTK_TEST_NEVER_SET_4F1C";
    assert!(std::env::var_os(unset).is_none());
    // (case, a section header, the lines added under it, the key at fault, what check and
    // serve both say)
    let cases = [
        (
            "credential_env not set",
            "[upstream]\n",
            format!("credential_env = \"{unset}\"\n"),
            "credential_env = ",
            format!("upstream.credential_env names {unset}, which is not set"),
        ),
        (
            "redis_url_env not set",
            "[limits]\n",
            format!("shared = \"redis\"\nredis_url_env = \"{unset}\"\n"),
            "redis_url_env = ",
            format!("the environment variable {unset} is not set"),
        ),
        (
            "checkpoints with postgres",
            "[audit]\n",
            "backend = \"postgres\"\ncheckpoint_key = \"checkpoint.key\"\npostgres = { chain = \"gw-1\", url_env = \"PATH\" }\n".to_string(),
            "checkpoint_key = ",
            "signed checkpoints (audit.checkpoint_key) are for the file ledger".to_string(),
        ),
    ];
    for (name, header, lines, key, says) in cases {
        let key_line = std::cell::Cell::new(0);
        let (code, out, serve_code, serve_err) = check_and_serve(|text| {
            assert!(text.contains(header), "{name}: {header:?} not in\n{text}");
            let text = text.replacen(header, &format!("{header}{lines}"), 1);
            key_line.set(1 + text.lines().position(|l| l.starts_with(key)).expect(key));
            text
        });
        assert_eq!(code, Some(1), "{name}: {out}");
        let line = out
            .lines()
            .find(|l| l.contains(&says))
            .unwrap_or_else(|| panic!("{name}: no line says {says:?}:\n{out}"));
        let at = format!("need-to-know.toml:{}: ", key_line.get());
        assert!(line.starts_with(&at), "{name}: {line}");
        assert_eq!(serve_code, Some(64), "{name}: {serve_err}");
        assert!(serve_err.contains(&says), "{name}: {serve_err}");
    }
}

#[test]
fn check_names_the_certificate_file_at_fault_and_why() {
    use need_to_know::certs::{Authority, Validity};
    let (dir, config, _keys) = Builder::new("http://127.0.0.1:9/api").write();
    let with_tls = |table: &str| {
        let text = std::fs::read_to_string(&config).expect("config");
        let text = text.replace("[upstream]", &format!("{table}\n[upstream]"));
        std::fs::write(dir.path().join("tls.toml"), text).expect("write");
        let out = Cli::new(["check", "--config", "tls.toml"])
            .current_dir(dir.path())
            .run();
        (out.code, out.stdout)
    };
    // Missing files.
    let (code, out) = with_tls("[server.tls]\ncert = \"nope.crt\"\nkey = \"nope.key\"\n");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("nope.crt: cannot read"), "{out}");

    // An expired certificate, and a key that belongs to another certificate.
    let ca = Authority::new("ca").expect("ca");
    let expired = ca
        .client(
            "old.example",
            Validity {
                not_before: (2020, 1, 1),
                not_after: (2021, 1, 1),
            },
        )
        .expect("cert");
    let good = ca.server(&["localhost"]).expect("cert");
    let other = ca.server(&["localhost"]).expect("cert");
    std::fs::write(dir.path().join("old.crt"), &expired.cert_pem).expect("write");
    std::fs::write(dir.path().join("old.key"), &expired.key_pem).expect("write");
    std::fs::write(dir.path().join("good.crt"), &good.cert_pem).expect("write");
    std::fs::write(dir.path().join("other.key"), &other.key_pem).expect("write");
    let (code, out) = with_tls("[server.tls]\ncert = \"old.crt\"\nkey = \"old.key\"\n");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("old.crt: certificate expired"), "{out}");
    let (code, out) = with_tls("[server.tls]\ncert = \"good.crt\"\nkey = \"other.key\"\n");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("other.key: does not match the certificate"),
        "{out}"
    );
    // A key file holding a certificate instead of a key.
    let (code, out) = with_tls("[server.tls]\ncert = \"good.crt\"\nkey = \"good.crt\"\n");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("good.crt: holds no PEM private key"), "{out}");
}

/// SIGTERM while a slow upstream answer is in flight: the request finishes, its record is
/// in the audit, and the process exits 0.
#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_and_flushes_the_audit() {
    use crate::support::upstream::{Reply, Upstream};
    use std::time::Duration;
    let up = Upstream::new()
        .route(
            "GET",
            "/api/jobs/J-1001",
            Reply::Slow(Duration::from_millis(3000), crate::support::job()),
        )
        .run()
        .await;
    let (dir, _config, keys) = Builder::before(&up).write();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], crate::support::free_port()));
    let serving = Cli::new(["serve"])
        .current_dir(dir.path())
        // Longer than the slow upstream's 3 s answer.
        .env("NEED_TO_KNOW__UPSTREAM__TIMEOUT", "10s")
        .serving(addr, None)
        .await;
    let key = keys[0].1.clone();
    let request =
        tokio::spawn(
            async move { crate::support::http::get(addr, "/jobs/J-1001", Some(&key)).await },
        );
    // Wait for the upstream to see the request (CI machines can be slow to schedule it);
    // its answer takes seconds more, so SIGTERM lands while it is in flight.
    for _ in 0..200 {
        if up.count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(up.count(), 1, "the request is in flight");
    assert!(!request.is_finished(), "the request is still in flight");
    serving.sigterm();
    let response = request.await.expect("request task");
    assert_eq!(response.status, 200, "{}", response.text());
    let status = serving.exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0));
    let audit = std::fs::read_to_string(dir.path().join("audit/disclosures.jsonl")).expect("audit");
    let id = response.header("x-request-id").expect("id").to_string();
    assert!(
        audit.contains(&id),
        "the in-flight request's record is missing"
    );
    Cli::new(["audit", "verify", "audit/disclosures.jsonl"])
        .current_dir(dir.path())
        .success();
}

/// `test` on the shipped rules passes; a failing case is named by file and line, with its
/// explain, and the exit code is 1.
#[test]
fn policy_tests_pass_on_the_shipped_rules_and_a_failure_names_its_case() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Cli::new(["test"]).in_repo().pseudonym_key().success();
    out.stdout_has(&[" passed, 0 failed"]);
    assert!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("ok   "))
            .count()
            >= 10,
        "{out}"
    );

    // A copy of the rules with one wrong expectation added.
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&root.join("rules"), &dir.path().join("rules"));
    std::fs::write(
        dir.path().join("need-to-know.toml"),
        std::fs::read_to_string(root.join("need-to-know.toml")).expect("config"),
    )
    .expect("config");
    std::fs::write(
        dir.path().join("rules/tests/wrong.toml"),
        "# a wrong expectation\n\n[[case]]\nname = \"the research vendor sees a date of birth\"\nrecipient = \"civic-surveys\"\npath = \"/tenants/T-0001\"\nbody_file = \"bodies/tenant-T-0001.json\"\nstatus = 200\ndisclosed = [\"date_of_birth\"]\n",
    )
    .expect("case");
    Cli::new(["test"])
        .current_dir(dir.path())
        .pseudonym_key()
        .expect(1)
        .stdout_has(&[
            "FAIL rules/tests/wrong.toml:3: the research vendor sees a date of birth",
            "date_of_birth is withheld (not in the allow list), expected disclosed",
            "explain (GET /tenants/T-0001)",
            " passed, 1 failed",
        ]);
}

/// `diff` names what a recipient type gains and exits 1 until the widening is accepted.
#[test]
fn diff_names_a_gained_field_and_needs_accept() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let old = tempfile::tempdir().expect("tempdir");
    copy_dir(&root.join("rules"), &old.path().join("rules"));
    let police = old.path().join("rules/types/police.toml");
    let text = std::fs::read_to_string(&police).expect("police");
    std::fs::write(
        &police,
        text.replace("\"id\", \"name\", \"date_of_birth\",", "\"id\", \"name\","),
    )
    .expect("write");
    let diff = |extra: &[&str]| {
        Cli::new(["diff", "--against"])
            .in_repo()
            .arg(old.path().join("rules"))
            .args(extra)
            .pseudonym_key()
    };
    diff(&[]).expect(1).stdout_has(&[
        "police gains date_of_birth on GET /tenants/{tenant_id}",
        "1 widening disclosure",
    ]);
    diff(&["--accept"]).success();

    // The other way round it is a loss, which needs no acceptance.
    Cli::new(["diff", "--config"])
        .current_dir(old.path())
        .arg(root.join("need-to-know.toml"))
        .arg("--against")
        .arg(root.join("rules"))
        .pseudonym_key()
        .success();
}

/// A widening no test case reaches is still a widening: fields added to an untested route and a
/// new recipient, compared in the rules themselves, exit 1 until accepted; the route is named
/// as untested.
#[test]
fn diff_finds_widenings_no_test_case_reaches() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let new = tempfile::tempdir().expect("tempdir");
    copy_dir(&root.join("rules"), &new.path().join("rules"));
    let handler = new
        .path()
        .join("rules/types/out-of-hours-call-handler.toml");
    let text = std::fs::read_to_string(&handler).expect("type");
    let at = text.find("/occupants\"").expect("the occupants route");
    let allow = at + text[at..].find("allow = [").expect("its allow list") + "allow = [".len();
    let wider = format!(
        "{}\"[].date_of_birth\", \"[].ni_number\", {}",
        &text[..allow],
        &text[allow..]
    );
    std::fs::write(&handler, wider).expect("write");
    let recipients = new.path().join("rules/recipients.toml");
    let mut text = std::fs::read_to_string(&recipients).expect("recipients");
    text.push_str("\n[[recipient]]\nid = \"met-police\"\nname = \"Metropolitan Police\"\ntype = \"police\"\napi_key_sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n");
    std::fs::write(&recipients, text).expect("write");
    let config = new.path().join("need-to-know.toml");
    std::fs::copy(root.join("need-to-know.toml"), &config).expect("config");
    let diff = |extra: &[&str]| {
        Cli::new(["diff", "--config"])
            .arg(&config)
            .arg("--against")
            .arg(root.join("rules"))
            .args(extra)
            .current_dir(new.path())
            .pseudonym_key()
    };
    let out = diff(&[]).expect(1);
    out.stdout_has(&[
        "widens: out-of-hours-call-handler receives [].date_of_birth on GET /properties/{property_id}/occupants: added",
        "widens: out-of-hours-call-handler receives [].ni_number on GET /properties/{property_id}/occupants: added",
        "widens: recipient met-police is of type police: added",
        "untested: out-of-hours-call-handler GET /properties/{property_id}/occupants",
    ]);
    diff(&["--accept"]).success();
}

/// `explain` on the shipped rules lists each element an `items` rule decided, in JSON and as
/// text: two of four tenants left out of a research export, one of three caution markers kept.
#[test]
fn explain_lists_each_element_an_items_rule_kept_or_dropped() {
    let explain = |recipient: &str, path: &str, body: &str, format: &str| {
        Cli::new([
            "explain",
            "--recipient",
            recipient,
            "--path",
            path,
            "--body",
        ])
        .arg(Path::new("rules/tests/bodies").join(body))
        .args(["--now", "2026-06-01T00:00:00Z", "--format", format])
        .in_repo()
        .pseudonym_key()
        .success()
    };
    let seen = |run: &crate::support::cli::Run| -> Vec<(String, u64, bool, String)> {
        let out = run.json();
        for key in ["status", "body", "reasons", "fields"] {
            assert!(out.get(key).is_some(), "{key}: {run}");
        }
        let elements = out["elements"].as_array().expect("elements").clone();
        elements
            .iter()
            .map(|e| {
                let why = e["why"].as_str().expect("why");
                let kept = e["kept"].as_bool().expect("kept");
                let expected = if kept {
                    "the keep condition held"
                } else {
                    "the keep condition was false"
                };
                assert_eq!(why, expected, "{run}");
                assert!(
                    e["keep"].as_str().is_some_and(|k| k.contains("item.")),
                    "{run}"
                );
                (
                    format!(
                        "{} {}",
                        e["path"].as_str().expect("path"),
                        e["rule"].as_str().expect("rule")
                    ),
                    e["index"].as_u64().expect("index"),
                    kept,
                    e["subject"].as_str().expect("subject").to_owned(),
                )
            })
            .collect()
    };

    let tenants = (
        "civic-surveys",
        "/tenants?postcode_district=LN2",
        "tenants-LN2.json",
    );
    let run = explain(tenants.0, tenants.1, tenants.2, "json");
    assert_eq!(run.json()["status"], 200, "{run}");
    let research = items_rule_at("research-vendor");
    let rule = format!("[] {research}");
    let tenant = |i, kept, id: &str| (rule.clone(), i, kept, id.to_owned());
    assert_eq!(
        seen(&run),
        [
            tenant(0, false, "T-0011"),
            tenant(1, true, "T-0018"),
            tenant(2, true, "T-0022"),
            tenant(3, false, "T-0091"),
        ],
        "{run}"
    );
    explain(tenants.0, tenants.1, tenants.2, "text").stdout_has(&[
        "ELEMENT  KEPT     SUBJECT  RULE",
        &format!("[0]      dropped  T-0011   {research}  the keep condition was false"),
        &format!("[1]      kept     T-0018   {research}  the keep condition held"),
    ]);

    let run = explain("acme-repairs", "/jobs/J-0001", "job-J-0001.json", "json");
    let rule = format!(
        "tenant.caution_markers {}",
        items_rule_at("repairs-contractor")
    );
    let marker = |i, kept| (rule.clone(), i, kept, "T-0001".to_owned());
    assert_eq!(
        seen(&run),
        [marker(0, true), marker(1, false), marker(2, false)],
        "{run}"
    );
    explain("acme-repairs", "/jobs/J-0001", "job-J-0001.json", "text").stdout_has(&[
        "tenant.caution_markers[0]  kept     T-0001",
        "tenant.caution_markers[2]  dropped  T-0001",
    ]);
}

/// `rules/types/TYPE.toml:LINE` of the type's first `[[route.items]]`, as explain names it.
fn items_rule_at(kind: &str) -> String {
    let file = format!("rules/types/{kind}.toml");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(&file))
        .expect("the shipped type");
    let line = text
        .lines()
        .position(|l| l.trim() == "[[route.items]]")
        .expect("an items rule")
        + 1;
    format!("{file}:{line}")
}

/// `sample-api` serves the invented housing API alone, as `serve`'s upstream, and asks for
/// the bearer token the gateway would send when given the variable that holds it.
#[tokio::test]
async fn sample_api_serves_the_invented_housing_api_and_asks_for_its_token() {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", crate::support::free_port())
        .parse()
        .expect("addr");
    let listen = addr.to_string();
    let _api = Cli::new([
        "sample-api",
        "--listen",
        &listen,
        "--token-env",
        "SAMPLE_TOKEN",
    ])
    .env("SAMPLE_TOKEN", "a-sample-token")
    .serving(addr, None)
    .await;
    let job = crate::support::http::get(addr, "/api/jobs/J-0001", Some("a-sample-token")).await;
    assert_eq!(job.status, 200, "{}", job.text());
    assert_eq!(job.json()["id"], "J-0001");
    let refused = crate::support::http::get(addr, "/api/jobs/J-0001", None).await;
    assert_eq!(refused.status, 401);
}
