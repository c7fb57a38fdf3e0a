//! Rate limits shared across replicas: two real `need-to-know serve` processes on one
//! throw-away Redis. One budget per recipient for both; Redis stopped or hung, the configured
//! fallback (visible in `/metrics`); Redis back, one budget again.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::cli::Cli;
use crate::support::gateway::{repairs_type_with, Builder};
use crate::support::http;
use crate::support::job;
use crate::support::redis::Redis;
use crate::support::upstream::{Listening, Upstream};

/// One replica: the real binary, on its own ports and its own audit file.
struct Replica {
    addr: SocketAddr,
    admin: SocketAddr,
    child: tokio::process::Child,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The written rules and config, shared by the replicas (so they share the API keys too).
struct Deployment {
    dir: tempfile::TempDir,
    keys: Vec<(String, String)>,
    redis_url: String,
    _upstream: Listening,
}

impl Deployment {
    /// Writes rules with `rate` on the repairs type and `[limits] shared = "redis"`.
    async fn new(redis: &Redis, rate: &str, on_error: &str) -> Deployment {
        let upstream = Upstream::new().json("/api/jobs/J-1001", job()).run().await;
        let limited = repairs_type_with(&format!("rate_limit = \"{rate}\""));
        let (dir, config, keys) = Builder::before(&upstream)
            .recipient_of("probe", "repairs-contractor", &limited)
            .write();
        let text = std::fs::read_to_string(&config).expect("config");
        let text = text.replace(
            "[limits]\n",
            &format!(
                "[limits]\nshared = \"redis\"\nredis_url_env = \"NTK_TEST_REDIS_URL\"\non_redis_error = \"{on_error}\"\nreplicas_hint = 2\nredis_timeout = \"200ms\"\n"
            ),
        );
        std::fs::write(
            &config,
            format!("{text}\n[admin]\nlisten = \"127.0.0.1:0\"\n"),
        )
        .expect("config");
        Deployment {
            dir,
            keys,
            redis_url: redis.url(),
            _upstream: upstream,
        }
    }

    fn key(&self, id: &str) -> String {
        self.keys
            .iter()
            .find(|(r, _)| r == id)
            .map(|(_, k)| k.clone())
            .expect("a recipient")
    }

    /// Starts replica `n` and waits for its admin endpoint.
    async fn replica(&self, n: usize) -> Replica {
        let [port, admin_port] = crate::support::free_ports();
        let log =
            std::fs::File::create(self.dir.path().join(format!("serve-{n}.log"))).expect("log");
        let child = Cli::new(["serve"])
            .current_dir(self.dir.path())
            .env("NEED_TO_KNOW__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "NEED_TO_KNOW__ADMIN__LISTEN",
                format!("127.0.0.1:{admin_port}"),
            )
            .env(
                "NEED_TO_KNOW__AUDIT__PATH",
                self.dir.path().join(format!("audit-{n}.jsonl")),
            )
            .env("NTK_TEST_REDIS_URL", &self.redis_url)
            .env("RUST_LOG", "need_to_know=info")
            .process()
            .stderr(log)
            .spawn()
            .expect("spawn serve");
        let replica = Replica {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            admin: SocketAddr::from(([127, 0, 0, 1], admin_port)),
            child,
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(replica.admin).await.is_ok()
                && tokio::net::TcpStream::connect(replica.addr).await.is_ok()
            {
                return replica;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("replica {n} did not start:\n{}", self.log(n));
    }

    fn log(&self, n: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("serve-{n}.log"))).unwrap_or_default()
    }
}

async fn status(replica: &Replica, key: &str) -> u16 {
    http::get(replica.addr, "/jobs/J-1001", Some(key))
        .await
        .status
}

/// The value of one unlabelled metric in the replica's `/metrics`.
async fn metric(replica: &Replica, name: &str) -> f64 {
    let text = http::get(replica.admin, "/metrics", None).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// Sends `probe` requests to `replica` until its fallback gauge reads `want` (5 s at most).
async fn until_fallback(replica: &Replica, probe: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let _ = status(replica, probe).await;
        if metric(replica, "need_to_know_shared_limiter_fallback").await == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "need_to_know_shared_limiter_fallback never read {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_recipients_limit_holds_across_two_replicas() {
    let Some(redis) = Redis::start("a_recipients_limit_holds_across_two_replicas") else {
        return;
    };
    let d = Deployment::new(&redis, "4/min", "local").await;
    let (a, b) = (d.replica(1).await, d.replica(2).await);
    let acme = d.key("acme-repairs");
    // Four between them, whichever replica each lands on.
    for (n, replica) in [&a, &b, &a, &b].into_iter().enumerate() {
        assert_eq!(
            status(replica, &acme).await,
            200,
            "request {n}\n{}",
            d.log(1)
        );
    }
    // The fifth is over the one budget, on either replica.
    for replica in [&a, &b] {
        let r = http::get(replica.addr, "/jobs/J-1001", Some(&acme)).await;
        r.assert_rate_limited(1..=15);
    }
    // Another recipient has its own budget.
    assert_eq!(status(&b, &d.key("brightfix")).await, 200);
    for replica in [&a, &b] {
        assert_eq!(
            metric(replica, "need_to_know_shared_limiter_fallback").await,
            0.0
        );
        assert_eq!(
            metric(replica, "need_to_know_shared_limiter_errors_total").await,
            0.0
        );
    }
}

#[tokio::test]
async fn redis_stopped_falls_back_to_a_local_share_then_shares_again() {
    let Some(mut redis) = Redis::start("redis_stopped_falls_back_to_a_local_share") else {
        return;
    };
    let d = Deployment::new(&redis, "6/min", "local").await;
    let (a, b) = (d.replica(1).await, d.replica(2).await);
    let (acme, probe) = (d.key("acme-repairs"), d.key("probe"));
    assert_eq!(status(&a, &acme).await, 200);
    assert_eq!(status(&b, &acme).await, 200);

    redis.stop();
    // Each replica alone: 6/min divided by replicas_hint 2 is 3, from a fresh local budget.
    for n in 0..3 {
        assert_eq!(
            status(&a, &acme).await,
            200,
            "local request {n}\n{}",
            d.log(1)
        );
    }
    assert_eq!(status(&a, &acme).await, 429);
    until_fallback(&b, &probe, 1.0).await;
    for replica in [&a, &b] {
        assert_eq!(
            metric(replica, "need_to_know_shared_limiter_fallback").await,
            1.0
        );
        assert!(metric(replica, "need_to_know_shared_limiter_errors_total").await >= 1.0);
    }
    assert!(metric(&a, "need_to_know_shared_limiter_fallback_decisions_total").await >= 4.0);
    // Logged once per outage, not per request.
    let outage_lines = d.log(1).matches("Redis unavailable").count();
    assert_eq!(outage_lines, 1, "{}", d.log(1));

    // Back, empty (nothing was saved): one budget of 6 for both replicas again.
    redis.restart();
    until_fallback(&a, &probe, 0.0).await;
    until_fallback(&b, &probe, 0.0).await;
    let mut allowed = 0;
    for replica in [&a, &b].into_iter().cycle().take(8) {
        if status(replica, &acme).await == 200 {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed, 6,
        "8 requests over both replicas on a 6/min budget"
    );
    assert!(d.log(1).contains("Redis answers again"), "{}", d.log(1));
}

#[tokio::test]
async fn redis_stopped_with_refuse_is_503_until_it_is_back() {
    let Some(mut redis) = Redis::start("redis_stopped_with_refuse_is_503") else {
        return;
    };
    let d = Deployment::new(&redis, "60/min", "refuse").await;
    let a = d.replica(1).await;
    let acme = d.key("acme-repairs");
    assert_eq!(status(&a, &acme).await, 200);
    redis.stop();
    let r = http::get(a.addr, "/jobs/J-1001", Some(&acme)).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.error(), "rate_limit_unavailable");
    crate::support::assert_nothing_withheld(&r.body);
    assert_eq!(
        metric(&a, "need_to_know_shared_limiter_fallback").await,
        1.0
    );
    let metrics = http::get(a.admin, "/metrics", None).await.text();
    assert!(
        metrics.contains(r#"need_to_know_refusals_total{reason="rate_limit_unavailable"}"#),
        "{metrics}"
    );
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    while status(&a, &acme).await != 200 {
        assert!(
            Instant::now() < deadline,
            "still refused after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        metric(&a, "need_to_know_shared_limiter_fallback").await,
        0.0
    );
}

#[tokio::test]
async fn a_hung_redis_does_not_hang_the_request() {
    let Some(redis) = Redis::start("a_hung_redis_does_not_hang_the_request") else {
        return;
    };
    let d = Deployment::new(&redis, "60/min", "local").await;
    let a = d.replica(1).await;
    let acme = d.key("acme-repairs");
    assert_eq!(status(&a, &acme).await, 200);
    redis.pause();
    let started = Instant::now();
    let first = status(&a, &acme).await;
    let took = started.elapsed();
    let second = status(&a, &acme).await;
    redis.resume();
    assert_eq!((first, second), (200, 200), "{}", d.log(1));
    // redis_timeout is 200 ms; the request then decides locally.
    assert!(took < Duration::from_secs(1), "the request waited {took:?}");
    assert!(metric(&a, "need_to_know_shared_limiter_errors_total").await >= 1.0);
}

/// Accuracy across replicas: both replicas hammered for a window by 8 clients; the requests
/// admitted against the budget GCRA allows (burst + window x rate). Run with
/// `cargo test --test integration limits_redis::accuracy -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement: 20 s of load"]
async fn accuracy_of_the_shared_limit_across_two_replicas() {
    let Some(redis) = Redis::start("accuracy") else {
        return;
    };
    let (count, per_secs, window) = (120u64, 60u64, Duration::from_secs(20));
    let d = Deployment::new(&redis, &format!("{count}/min"), "local").await;
    let replicas = std::sync::Arc::new([d.replica(1).await, d.replica(2).await]);
    let key = d.key("acme-repairs");
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..8usize {
        let (replicas, key) = (replicas.clone(), key.clone());
        clients.push(tokio::spawn(async move {
            let (mut allowed, mut refused) = (0u64, 0u64);
            let mut n = c;
            while started.elapsed() < window {
                match status(&replicas[n % 2], &key).await {
                    200 => allowed += 1,
                    429 => refused += 1,
                    other => panic!("status {other}"),
                }
                n += 1;
            }
            (allowed, refused)
        }));
    }
    let (mut allowed, mut refused) = (0, 0);
    for c in clients {
        let (a, r) = c.await.expect("client");
        allowed += a;
        refused += r;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let budget = count as f64 + elapsed * count as f64 / per_secs as f64;
    println!(
        "shared limit {count}/min (burst {count}), 2 replicas, 8 clients, {elapsed:.1} s: allowed {allowed}, refused {refused}, budget {budget:.1} ({:+.2}%)",
        (allowed as f64 - budget) / budget * 100.0
    );
    assert!(allowed as f64 <= budget + 1.0, "over budget");
    assert!(allowed as f64 >= budget - 2.0, "under budget");
}

#[tokio::test]
async fn a_replica_started_while_redis_is_down_falls_back_then_joins() {
    let Some(mut redis) = Redis::start("a_replica_started_while_redis_is_down") else {
        return;
    };
    let d = Deployment::new(&redis, "60/min", "local").await;
    redis.stop();
    let a = d.replica(1).await;
    let (acme, probe) = (d.key("acme-repairs"), d.key("probe"));
    assert_eq!(status(&a, &acme).await, 200, "{}", d.log(1));
    assert_eq!(
        metric(&a, "need_to_know_shared_limiter_fallback").await,
        1.0
    );
    redis.restart();
    until_fallback(&a, &probe, 0.0).await;
}

/// The URL (and its password) is only ever in the environment: a bad or missing one stops
/// `serve` with the config exit code, naming the variable and never its value.
#[test]
fn a_bad_redis_url_stops_serve_without_printing_it() {
    let (dir, config, _) = Builder::new("http://127.0.0.1:9/api").write();
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replace(
        "[limits]\n",
        "[limits]\nshared = \"redis\"\nredis_url_env = \"NTK_TEST_BAD_REDIS_URL\"\n",
    );
    std::fs::write(&config, text).expect("config");
    for url in [None, Some("http://user:s3cret-pw@redis.example:6379/")] {
        let mut serve = Cli::new(["serve"])
            .current_dir(dir.path())
            .env_remove("NTK_TEST_BAD_REDIS_URL");
        if let Some(url) = url {
            serve = serve.env("NTK_TEST_BAD_REDIS_URL", url);
        }
        let out = serve.expect(64);
        assert!(out.stderr.contains("NTK_TEST_BAD_REDIS_URL"), "{out}");
        assert!(
            !out.stderr.contains("s3cret-pw"),
            "the URL's password was printed: {out}"
        );
    }
}

/// `rediss://` with `limits.redis_ca`, a CA made for the run: the one budget is kept in Redis
/// over verified TLS (the server takes no clear text). With a CA that did not sign the
/// server's certificate the handshake is refused: the replica logs the outage naming the
/// certificate problem and decides by its fallback, as for any Redis it cannot reach.
#[tokio::test]
async fn redis_over_tls_is_verified_and_a_wrong_ca_refused() {
    use need_to_know::certs::Authority;
    let Some(mut redis) = Redis::start("redis_over_tls_is_verified") else {
        return;
    };
    let ca = Authority::new("limits test CA").expect("CA");
    let cert = ca.server(&["localhost", "127.0.0.1"]).expect("cert");
    redis.serve_tls(&cert, &ca.cert_pem());
    let d = Deployment::new(&redis, "2/min", "refuse").await;
    assert!(d.redis_url.starts_with("rediss://"), "{}", d.redis_url);
    let config = d.dir.path().join("need-to-know.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replace(
        "shared = \"redis\"\n",
        "shared = \"redis\"\nredis_ca = \"redis-ca.crt\"\n",
    );
    std::fs::write(&config, text).expect("config");
    let ca_file = d.dir.path().join("redis-ca.crt");
    std::fs::write(&ca_file, ca.cert_pem()).expect("CA file");

    let a = d.replica(1).await;
    let acme = d.key("acme-repairs");
    assert_eq!(status(&a, &acme).await, 200, "{}", d.log(1));
    assert_eq!(status(&a, &acme).await, 200, "{}", d.log(1));
    let r = http::get(a.addr, "/jobs/J-1001", Some(&acme)).await;
    r.assert_rate_limited(1..=60);
    assert_eq!(
        metric(&a, "need_to_know_shared_limiter_fallback").await,
        0.0
    );
    drop(a);

    std::fs::write(
        &ca_file,
        Authority::new("another CA").expect("CA").cert_pem(),
    )
    .expect("CA file");
    let b = d.replica(2).await;
    // on_redis_error = "refuse": no decision without Redis.
    assert_eq!(status(&b, &d.key("brightfix")).await, 503);
    assert_eq!(
        metric(&b, "need_to_know_shared_limiter_fallback").await,
        1.0
    );
    let log = d.log(2);
    assert!(
        log.contains("Redis unavailable") && log.contains("UnknownIssuer"),
        "the refusal is not named:\n{log}"
    );
}
