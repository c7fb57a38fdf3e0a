//! The PostgreSQL ledger through the real binary: two `serve` processes on one throw-away
//! PostgreSQL (tests/support/postgres.rs), each with its own chain, and the DPO tools over
//! every chain. Skipped (with a message) without PostgreSQL binaries, failed under `CI=true`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::cli::{Cli, Serving};
use crate::support::gateway::Builder;
use crate::support::http;
use crate::support::postgres::Postgres;
use crate::support::upstream::Upstream;

/// The data subject of every record: `tenant.id` of the sample job.
const SUBJECT: &str = "T-000142";

/// One `need-to-know serve` process writing chain `chain`.
struct Replica {
    serving: Serving,
    addr: SocketAddr,
    admin: SocketAddr,
}

/// `serve` in `dir` writing chain `chain`, with its admin endpoint on `admin`.
fn serve_command(dir: &Path, pg: &Postgres, chain: &str, admin: SocketAddr) -> Cli {
    cli(pg, &["serve"])
        .current_dir(dir)
        .env("NEED_TO_KNOW__ADMIN__LISTEN", admin.to_string())
        .env("NEED_TO_KNOW__AUDIT__BACKEND", "postgres")
        .env("NEED_TO_KNOW__AUDIT__POSTGRES__CHAIN", chain)
        .env("RUST_LOG", "warn")
}

/// The log of chain `chain`'s replica: to a file, since an outage logs per request.
fn log_of(dir: &Path, chain: &str) -> PathBuf {
    dir.join(format!("{chain}.log"))
}

/// Starts a replica and waits until it serves.
async fn replica(dir: &Path, pg: &Postgres, chain: &str) -> Replica {
    let [port, admin_port] = crate::support::free_ports();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let serving = serve_command(dir, pg, chain, admin)
        .serving(addr, Some(&log_of(dir, chain)))
        .await;
    Replica {
        serving,
        addr,
        admin,
    }
}

impl Replica {
    /// SIGTERM and wait: in-flight records are committed before it exits.
    async fn stop(self) {
        let status = self.serving.terminate(Duration::from_secs(20)).await;
        assert_eq!(status.code(), Some(0));
    }

    async fn admin_get(&self, path: &str) -> http::Response {
        http::get(self.admin, path, None).await
    }
}

/// The CLI with the ledger's URL in the environment.
fn cli(pg: &Postgres, args: &[&str]) -> Cli {
    Cli::new(args).env("NEED_TO_KNOW_PG_URL", pg.url())
}

/// The sample job behind the gateway; the gateway's files (rules, config) in a fresh dir.
async fn setup() -> (
    crate::support::upstream::Listening,
    tempfile::TempDir,
    String,
) {
    let up = Upstream::new()
        .json("/api/jobs/J-1001", crate::support::job())
        .run()
        .await;
    let (dir, _config, keys) = Builder::before(&up).write();
    let key = keys[0].1.clone();
    (up, dir, key)
}

/// `audit query --postgres` for the subject: the request ids, in the order printed.
fn queried_ids(pg: &Postgres) -> Vec<String> {
    let out = cli(pg, &["audit", "query", "--postgres", "--subject", SUBJECT]).success();
    let records: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record a line"))
        .collect();
    let ts: Vec<&str> = records
        .iter()
        .map(|r| r["ts"].as_str().expect("ts"))
        .collect();
    assert!(
        ts.windows(2).all(|w| w[0] <= w[1]),
        "not oldest first: {ts:?}"
    );
    records
        .iter()
        .map(|r| r["request_id"].as_str().expect("id").to_string())
        .collect()
}

async fn get_job(addr: SocketAddr, key: &str) -> http::Response {
    http::get(addr, "/jobs/J-1001", Some(key)).await
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Two replicas, one ledger: both chains verify, the query returns every disclosure from both
/// in order, an exported chain passes the file verifier, and a restarted replica continues its
/// chain from its last committed row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_ledger_and_the_tools_read_every_chain() {
    let Some(pg) = Postgres::start_or_skip("two_replicas_share_one_ledger") else {
        return;
    };
    let (_up, dir, key) = setup().await;
    let a = replica(dir.path(), &pg, "replica-a").await;
    let b = replica(dir.path(), &pg, "replica-b").await;

    let mut sent = BTreeSet::new();
    let requests: Vec<_> = (0..20)
        .map(|i| {
            let addr = if i % 2 == 0 { a.addr } else { b.addr };
            let key = key.clone();
            tokio::spawn(async move { get_job(addr, &key).await })
        })
        .collect();
    for r in requests {
        let response = r.await.expect("task");
        assert_eq!(response.status, 200, "{}", response.text());
        sent.insert(response.header("x-request-id").expect("id").to_string());
    }

    cli(&pg, &["audit", "verify", "--postgres"])
        .success()
        .stdout_has(&[
            "chain replica-a: 10 records verified",
            "chain replica-b: 10 records verified",
            "total: 20 records verified in 2 chains",
        ]);

    let ids = queried_ids(&pg);
    assert_eq!(ids.len(), 20, "{ids:?}");
    assert_eq!(ids.iter().cloned().collect::<BTreeSet<_>>(), sent);

    // The subject access report reads every chain too.
    let config = dir.path().join("need-to-know.toml");
    let report = cli(
        &pg,
        &["audit", "report", "--postgres", "--subject", SUBJECT],
    )
    .args(["--format", "json", "--config"])
    .arg(&config)
    .success()
    .json();
    assert_eq!(report["chain_problem"], Value::Null, "{report}");
    assert_eq!(report["records_checked"], 20, "{report}");
    assert_eq!(
        report["files"],
        serde_json::json!(["postgres:replica-a", "postgres:replica-b"])
    );
    let disclosures = report["recipients"][0]["disclosures"]
        .as_array()
        .expect("list");
    assert_eq!(disclosures.len(), 20, "{report}");
    // So does the list of what the upstream sent: each path of the job, in all 20 records.
    let fields = cli(&pg, &["audit", "fields", "--postgres", "--format", "json"])
        .success()
        .json();
    let paths = fields.as_array().expect("an array");
    assert!(!paths.is_empty(), "{fields}");
    assert!(paths.iter().all(|p| p["records"] == 20), "{fields}");

    let exported = dir.path().join("replica-a.jsonl");
    cli(
        &pg,
        &["audit", "export", "--postgres", "--chain", "replica-a"],
    )
    .arg("--output")
    .arg(&exported)
    .success();
    cli(&pg, &["audit", "verify"])
        .arg(&exported)
        .success()
        .stdout_has(&["10 records verified"]);

    let metrics = a.admin_get("/metrics").await.text();
    assert_eq!(
        metric(&metrics, "need_to_know_audit_records"),
        10,
        "{metrics}"
    );
    let commits = metric(&metrics, "need_to_know_audit_commits");
    assert!((1..=10).contains(&commits), "{commits} commits");

    // A restart continues the chain from its last committed row.
    a.stop().await;
    let a = replica(dir.path(), &pg, "replica-a").await;
    assert_eq!(get_job(a.addr, &key).await.status, 200);
    cli(&pg, &["audit", "verify", "--postgres"])
        .run()
        .stdout_has(&["chain replica-a: 11 records verified"]);
    a.stop().await;
    b.stop().await;
}

/// A second replica started with a chain name already in use refuses to start, saying why,
/// and the first keeps its chain unforked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_with_the_same_chain_refuses_to_start() {
    let Some(pg) = Postgres::start_or_skip("a_second_replica_with_the_same_chain") else {
        return;
    };
    let (_up, dir, key) = setup().await;
    let a = replica(dir.path(), &pg, "shared").await;
    let second = dir.path().join("second");
    std::fs::create_dir(&second).expect("dir");
    std::fs::copy(
        dir.path().join("need-to-know.toml"),
        second.join("need-to-know.toml"),
    )
    .expect("copy the config");
    crate::support::copy_dir(&dir.path().join("rules"), &second.join("rules"));
    let [port, admin_port] = crate::support::free_ports();
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let mut command = serve_command(&second, &pg, "shared", admin)
        .env("NEED_TO_KNOW__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .process();
    let log = log_of(&second, "shared");
    command.stderr(std::fs::File::create(&log).expect("log file"));
    let status = tokio::time::timeout(Duration::from_secs(20), command.status())
        .await
        .expect("exits")
        .expect("run");
    let err = std::fs::read_to_string(&log).expect("log");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("audit chain \"shared\" is in use by another running replica"),
        "{err}"
    );
    assert_eq!(get_job(a.addr, &key).await.status, 200);
    cli(&pg, &["audit", "verify", "--postgres"])
        .run()
        .stdout_has(&["chain shared: 1 records verified"]);
    a.stop().await;
}

/// An edited row is named by chain and seq, and the exit code is 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_row_is_named_by_chain_and_seq() {
    let Some(pg) = Postgres::start_or_skip("a_tampered_row_is_named") else {
        return;
    };
    let (_up, dir, key) = setup().await;
    let a = replica(dir.path(), &pg, "tamper").await;
    for _ in 0..3 {
        assert_eq!(get_job(a.addr, &key).await.status, 200);
    }
    a.stop().await;
    let client = pg.client().await;
    let changed = client
        .execute(
            "UPDATE audit_ledger SET record = replace(record, 'acme-repairs', 'someone-else')
             WHERE chain = 'tamper' AND seq = 2",
            &[],
        )
        .await
        .expect("update");
    assert_eq!(changed, 1);
    cli(&pg, &["audit", "verify", "--postgres"])
        .expect(1)
        .stdout_has(&["chain tamper: seq 2: hash does not match the record"]);
}

/// What the load loop saw: every 200's request id, and how many 503s.
#[derive(Default)]
struct Seen {
    ok: Vec<String>,
    unavailable: u64,
    other: Vec<u16>,
}

/// `clients` concurrent loops over `addrs` until `stop` is set.
fn load(
    addrs: Vec<SocketAddr>,
    key: String,
    clients: usize,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|i| {
            let (addrs, key, stop, seen) = (addrs.clone(), key.clone(), stop.clone(), seen.clone());
            tokio::spawn(async move {
                let addr = addrs[i % addrs.len()];
                while !stop.load(Ordering::Relaxed) {
                    let response = get_job(addr, &key).await;
                    let mut seen = seen.lock().expect("lock");
                    match response.status {
                        200 => seen
                            .ok
                            .push(response.header("x-request-id").expect("id").to_string()),
                        503 => seen.unavailable += 1,
                        other => seen.other.push(other),
                    }
                }
            })
        })
        .collect()
}

/// PostgreSQL stopped under load: requests get 503 and `/readyz` goes unready; once it is back
/// the replicas reconnect, and every 200 the clients received has its row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_gives_503_and_every_200_has_its_row() {
    let Some(pg) = Postgres::start_or_skip("postgres_stopped_under_load") else {
        return;
    };
    let (_up, dir, key) = setup().await;
    let a = replica(dir.path(), &pg, "load-a").await;
    let b = replica(dir.path(), &pg, "load-b").await;
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let tasks = load(
        vec![a.addr, b.addr],
        key.clone(),
        16,
        stop.clone(),
        seen.clone(),
    );

    tokio::time::sleep(Duration::from_millis(700)).await;
    pg.stop();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The ledger's health is checked every second; allow a loaded machine a few more.
    let mut ready = a.admin_get("/readyz").await;
    for _ in 0..40 {
        if ready.status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = a.admin_get("/readyz").await;
    }
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(ready.text().contains("audit: the ledger cannot commit"));
    let during = seen.lock().expect("lock").unavailable;
    assert!(during > 0, "no 503 while PostgreSQL was down");
    pg.start();
    let back = Instant::now();
    // The replicas reconnect within the backoff (at most 5 s) and answer 200 again.
    let ok_at_restart = seen.lock().expect("lock").ok.len();
    let mut recovered = false;
    while back.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if seen.lock().expect("lock").ok.len() > ok_at_restart + 20 {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "no 200s after PostgreSQL came back");
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("load task");
    }
    let mut ready_again = false;
    for _ in 0..50 {
        if a.admin_get("/readyz").await.status == 200 && b.admin_get("/readyz").await.status == 200
        {
            ready_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready_again, "/readyz did not come back");
    // Group commit: with 8 clients a replica, some commits carried several records.
    let metrics = a.admin_get("/metrics").await.text();
    let records = metric(&metrics, "need_to_know_audit_records");
    let commits = metric(&metrics, "need_to_know_audit_commits");
    assert!(records > commits, "{records} records in {commits} commits");
    a.stop().await;
    b.stop().await;

    let seen = seen.lock().expect("lock");
    assert!(
        seen.other.is_empty(),
        "unexpected statuses: {:?}",
        seen.other
    );
    let rows: BTreeSet<String> = queried_ids(&pg).into_iter().collect();
    let missing: Vec<&String> = seen.ok.iter().filter(|id| !rows.contains(*id)).collect();
    assert!(missing.is_empty(), "200s without a row: {missing:?}");
    cli(&pg, &["audit", "verify", "--postgres"]).success();
    eprintln!(
        "outage: {} x 200 (all in the ledger), {} x 503, down {:?}; replica a: {records} records in {commits} commits",
        seen.ok.len(),
        seen.unavailable,
        back - down
    );
}

/// The throughput figure: durable records/s into PostgreSQL at 64 concurrent requests over
/// two replicas, and mean records per commit. Run with
/// `cargo test --release --test integration ledger_postgres::throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement, not a check: run it on purpose"]
async fn throughput_at_64_concurrent_over_two_replicas() {
    let Some(pg) = Postgres::start_or_skip("throughput") else {
        return;
    };
    let (_up, dir, key) = setup().await;
    let a = replica(dir.path(), &pg, "bench-a").await;
    let b = replica(dir.path(), &pg, "bench-b").await;
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    // Warm up, then measure from the replicas' own counters.
    let tasks = load(vec![a.addr, b.addr], key, 64, stop.clone(), seen.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counts = |text: String| {
        (
            metric(&text, "need_to_know_audit_records"),
            metric(&text, "need_to_know_audit_commits"),
        )
    };
    let (ra0, ca0) = counts(a.admin_get("/metrics").await.text());
    let (rb0, cb0) = counts(b.admin_get("/metrics").await.text());
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (ra1, ca1) = counts(a.admin_get("/metrics").await.text());
    let (rb1, cb1) = counts(b.admin_get("/metrics").await.text());
    let took = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("load task");
    }
    let records = (ra1 - ra0) + (rb1 - rb0);
    let commits = (ca1 - ca0) + (cb1 - cb0);
    assert_eq!(seen.lock().expect("lock").unavailable, 0);
    println!(
        "postgres ledger, 64 concurrent over 2 replicas: {records} records in {took:.1} s = {:.0} records/s; {commits} commits, {:.2} records per commit",
        records as f64 / took,
        records as f64 / commits.max(1) as f64
    );
    a.stop().await;
    b.stop().await;
}

/// `serve` with the ledger at `sslmode = "verify-full"`, checked against the CA in `ca`.
fn verify_full(cli: Cli, ca: &Path) -> Cli {
    cli.env("NEED_TO_KNOW__AUDIT__POSTGRES__SSLMODE", "verify-full")
        .env("NEED_TO_KNOW__AUDIT__POSTGRES__CA", ca)
}

/// The ledger over TLS with a CA made for the run: `verify-full` connects (the gateway's
/// session is TLS, its record is read back by `audit query` over the same TLS); a server
/// certificate from another CA, or from the right CA for another name, is refused, and `serve`
/// does not start, as with any ledger it cannot open, naming the certificate problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_over_tls_is_verified_and_a_wrong_certificate_refused() {
    use need_to_know::certs::Authority;
    let Some(mut pg) = Postgres::start_or_skip("the_ledger_over_tls") else {
        return;
    };
    let ca = Authority::new("ledger test CA").expect("CA");
    pg.serve_tls(&ca.server(&["localhost", "127.0.0.1"]).expect("cert"));
    let (_up, dir, key) = setup().await;
    let ca_file = dir.path().join("ledger-ca.crt");
    std::fs::write(&ca_file, ca.cert_pem()).expect("CA file");

    let [port, admin_port] = crate::support::free_ports();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let serving = verify_full(serve_command(dir.path(), &pg, "tls-a", admin), &ca_file)
        .serving(addr, Some(&log_of(dir.path(), "tls-a")))
        .await;
    let r = get_job(addr, &key).await;
    assert_eq!(r.status, 200);
    let request_id = r.header("x-request-id").expect("a request id").to_owned();
    let client = pg.client().await;
    let tls_sessions: i64 = client
        .query_one("SELECT count(*) FROM pg_stat_ssl WHERE ssl", &[])
        .await
        .expect("pg_stat_ssl")
        .get(0);
    assert!(tls_sessions >= 1, "the gateway's session is not TLS");
    let status = serving.terminate(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0));
    let query = [
        "audit",
        "query",
        "--postgres",
        "--config",
        "need-to-know.toml",
    ];
    verify_full(cli(&pg, &query), &ca_file)
        .args(["--subject", SUBJECT])
        .current_dir(dir.path())
        .env("NEED_TO_KNOW__AUDIT__BACKEND", "postgres")
        .success()
        .stdout_has(&[&request_id]);

    // A CA that did not sign the server's certificate.
    let other = dir.path().join("other-ca.crt");
    let other_ca = Authority::new("another CA").expect("CA");
    std::fs::write(&other, other_ca.cert_pem()).expect("CA file");
    let refused = |pg: &Postgres, ca: &Path| {
        verify_full(serve_command(dir.path(), pg, "tls-b", admin), ca)
            .env("NEED_TO_KNOW__SERVER__LISTEN", "127.0.0.1:0")
            .run()
    };
    let run = refused(&pg, &other);
    assert!(!run.success(), "served with an unknown CA: {run}");
    for needle in [
        "cannot open the audit ledger",
        "TLS handshake",
        "UnknownIssuer",
    ] {
        assert!(run.stderr.contains(needle), "no {needle:?}: {run}");
    }

    // The right CA, a certificate for another name.
    pg.serve_tls(&ca.server(&["db.elsewhere.test"]).expect("cert"));
    let run = refused(&pg, &ca_file);
    assert!(
        !run.success(),
        "served with a certificate for another name: {run}"
    );
    for needle in ["TLS handshake", "certificate not valid for name"] {
        assert!(run.stderr.contains(needle), "no {needle:?}: {run}");
    }
}

/// `check` places a ledger CA that cannot be read, and an sslmode that is not offered, at
/// their lines in the config file, and warns of `require`.
#[test]
fn check_names_a_missing_ledger_ca_and_an_unknown_sslmode_at_their_lines() {
    let (_dir, path, _keys) = Builder::new("http://127.0.0.1:9/api").write();
    let text = std::fs::read_to_string(&path).expect("config");
    let pg = "\n[audit.postgres]\nchain = \"gw-1\"\nca = \"missing-ca.crt\"\n";
    let text = text.replace("[audit]\n", "[audit]\nbackend = \"postgres\"\n") + pg;
    std::fs::write(&path, &text).expect("config");
    let line_of =
        |text: &str, key: &str| 1 + text.lines().position(|l| l.starts_with(key)).expect(key);
    let check = || {
        Cli::new(["check", "--config"])
            .arg(&path)
            .pseudonym_key()
            .env(
                "NEED_TO_KNOW_PG_URL",
                "postgres://ntk@127.0.0.1:5432/postgres",
            )
            .expect(1)
    };
    let run = check();
    let want = format!(
        "need-to-know.toml:{}: audit.postgres.ca: ",
        line_of(&text, "ca =")
    );
    assert!(run.stdout.contains(&want), "no {want:?}: {run}");
    assert!(run.stdout.contains("missing-ca.crt: cannot read"), "{run}");

    let text = text.replace("ca = \"missing-ca.crt\"", "sslmode = \"prefer\"");
    std::fs::write(&path, &text).expect("config");
    let run = check();
    let want = format!(
        "need-to-know.toml:{}: audit.postgres.sslmode \"prefer\" must be",
        line_of(&text, "sslmode =")
    );
    assert!(run.stdout.contains(&want), "no {want:?}: {run}");

    // Kept for libpq's sake, and warned of: it does not authenticate the server.
    let text = text.replace("sslmode = \"prefer\"", "sslmode = \"require\"");
    std::fs::write(&path, &text).expect("config");
    let run = Cli::new(["check", "--config"])
        .arg(&path)
        .pseudonym_key()
        .env(
            "NEED_TO_KNOW_PG_URL",
            "postgres://ntk@db.example.org/postgres",
        )
        .success();
    let want = format!(
        "need-to-know.toml:{}: warning: audit.postgres.sslmode \"require\" encrypts but does not authenticate",
        line_of(&text, "sslmode =")
    );
    assert!(run.stdout.contains(&want), "no {want:?}: {run}");
}
