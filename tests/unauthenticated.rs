//! Refusals before the recipient is known: each record holds a bounded target.

use crate::support::gateway::Builder;
use crate::support::http;
use crate::support::upstream::Upstream;

/// The most bytes of a target a record carries.
const MAX_PATH: usize = 512;

#[tokio::test]
async fn a_refusal_records_a_bounded_target() {
    let up = Upstream::new().run().await;
    let gw = Builder::new(&format!("{}/api", up.url())).start().await;
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
