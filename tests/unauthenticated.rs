//! Refusals before the recipient is known: each record holds a bounded target, and a client
//! address over its budget still gets its 401 but writes nothing to the ledger beyond one
//! summary per interval, so nobody without credentials can fill the ledger's disk.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::gateway::Builder;
use crate::support::http;
use crate::support::upstream::Upstream;

/// The most bytes of a target a record carries.
const MAX_PATH: usize = 512;

/// Sends `count` requests for `target` without credentials on one keep-alive connection, one
/// after another, and returns each response's status.
async fn keep_alive_refusals(addr: SocketAddr, target: String, count: usize) -> Vec<u16> {
    let mut stream = TcpStream::connect(addr).await.expect("connect to gateway");
    let request = format!("GET {target} HTTP/1.1\r\nHost: gateway.test\r\n\r\n");
    let mut statuses = Vec::with_capacity(count);
    let mut buf = Vec::new();
    for _ in 0..count {
        stream
            .write_all(request.as_bytes())
            .await
            .expect("write request");
        statuses.push(read_one(&mut stream, &mut buf).await);
    }
    statuses
}

/// Reads one response framed by Content-Length (the gateway's error bodies always carry
/// one) and returns its status; bytes past it stay in `buf`.
async fn read_one(stream: &mut TcpStream, buf: &mut Vec<u8>) -> u16 {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let (status, headers) = http::parse_head(&buf[..end]);
            let len = http::content_length(&headers);
            if buf.len() >= end + 4 + len {
                buf.drain(..end + 4 + len);
                return status;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("a response within 10 s")
            .expect("read");
        assert!(n > 0, "the gateway closed a keep-alive connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The value of an unlabelled counter in the Prometheus text.
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{metrics}"))
}

fn ledger_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test]
async fn a_refusal_records_a_bounded_target() {
    let up = Upstream::new().run().await;
    let gw = Builder::before(&up).start().await;
    let long = format!("/jobs/{}", "J".repeat(8000));
    let r = http::get(gw.addr, &long, None).await;
    assert_eq!(r.status, 401, "{}", r.text());
    // An extension method is a token of any length; it is cut as the target is.
    let method = "X".repeat(4000);
    let r = http::request(gw.addr, &method, "/jobs/J-1", None, &[]).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let records = gw.audit_records();
    assert_eq!(records.len(), 2);
    let path = records[0]["path"].as_str().expect("path");
    assert!(
        path.len() <= MAX_PATH,
        "{} bytes of path recorded",
        path.len()
    );
    assert!(path.starts_with("/jobs/JJJ"), "{path}");
    assert!(path.ends_with('…'), "a cut path is not marked: {path}");
    assert_eq!(records[0]["path_cut"], true);
    assert!(records[0].get("method_cut").is_none());
    let recorded = records[1]["method"].as_str().expect("method");
    assert!(
        recorded.len() < 100,
        "{} bytes of method recorded",
        recorded.len()
    );
    assert!(
        recorded.ends_with('…'),
        "a cut method is not marked: {recorded}"
    );
    assert_eq!(records[1]["method_cut"], true);
    assert_eq!(records[1]["path"], "/jobs/J-1");
    assert!(records[1].get("path_cut").is_none());
    gw.stop().await;
}

/// Four keep-alive clients without credentials, a thousand long targets each: every one is
/// answered 401, but only the address's budget is recorded one by one; the rest are counted
/// in `/metrics` and in one summary record per interval, which `audit verify` accepts.
#[tokio::test]
async fn an_unauthenticated_flood_grows_the_ledger_by_a_bounded_amount() {
    const CLIENTS: usize = 4;
    const EACH: usize = 1000;
    let up = Upstream::new().run().await;
    let gw = Builder::before(&up)
        .limits(
            "unauthenticated_rate = \"2/s\"\nunauthenticated_burst = 5\n\
             unauthenticated_summary_interval = \"1s\"",
        )
        .start()
        .await;
    let before = ledger_len(&gw.audit_path);
    let target = format!("/jobs/{}", "J".repeat(8 * 1024));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(keep_alive_refusals(gw.addr, target.clone(), EACH)))
        .collect();
    for client in clients {
        let statuses = client.await.expect("client task");
        assert!(statuses.iter().all(|&s| s == 401), "{statuses:?}");
    }
    let elapsed = started.elapsed();
    let total = (CLIENTS * EACH) as u64;
    let flood_growth = ledger_len(&gw.audit_path) - before;
    assert!(
        flood_growth < 64 * 1024,
        "{total} refusals grew the ledger by {flood_growth} bytes in {elapsed:?}"
    );

    // The summary of the last interval follows within one more interval.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (records, suppressed) = loop {
        let metrics = http::get(gw.admin_addr, "/metrics", None).await.text();
        let suppressed = counter(
            &metrics,
            "need_to_know_unauthenticated_refusals_suppressed_total",
        );
        let records = gw.audit_records();
        let summarised: u64 = records
            .iter()
            .filter(|r| r["error"] == "unauthenticated_refusals_summarised")
            .map(|r| r["count"].as_u64().expect("count"))
            .sum();
        if summarised == suppressed && suppressed > 0 {
            break (records, suppressed);
        }
        assert!(
            Instant::now() < deadline,
            "summaries hold {summarised} of {suppressed} suppressed refusals"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let growth = ledger_len(&gw.audit_path) - before;

    let one_by_one: Vec<&Value> = records
        .iter()
        .filter(|r| r["error"] == "unauthenticated")
        .collect();
    let summaries: Vec<&Value> = records
        .iter()
        .filter(|r| r["error"] == "unauthenticated_refusals_summarised")
        .collect();
    // Every refusal is either recorded or summarised, never lost.
    assert_eq!(one_by_one.len() as u64 + suppressed, total);
    // The burst, then the rate over the flood (with a second of slack).
    let budget = 5 + 2 * (elapsed.as_secs() + 1);
    assert!(
        one_by_one.len() as u64 <= budget,
        "{} refusals recorded one by one, budget {budget}",
        one_by_one.len()
    );
    for r in &one_by_one {
        assert!(r["path"].as_str().expect("path").len() <= MAX_PATH);
    }
    for s in &summaries {
        assert_eq!(s["status"], 401);
        assert!(s["recipient"].is_null());
        assert!(s["interval"]["seconds"].as_f64().expect("seconds") > 0.0);
        let line = s.to_string();
        assert!(!line.contains("127.0.0.1"), "an address in {line}");
        assert!(!line.contains("JJJJ"), "a target in {line}");
    }
    assert!(
        growth < 64 * 1024,
        "{total} refusals grew the ledger by {growth} bytes"
    );
    let verified = need_to_know::audit::verify(&gw.audit_path).expect("the ledger verifies");
    assert_eq!(verified.records as usize, records.len());
    eprintln!(
        "unauthenticated flood summary: {total} refusals of {} KiB targets on {CLIENTS} \
         keep-alive connections in {:.1} s ({:.0}/s); ledger grew {growth} bytes ({:.1} bytes \
         per refusal, {:.3} MB/s); {} recorded, {suppressed} suppressed in {} summary records",
        target.len() / 1024,
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        growth as f64 / total as f64,
        growth as f64 / 1e6 / elapsed.as_secs_f64(),
        one_by_one.len(),
        summaries.len(),
    );
    gw.stop().await;
}
