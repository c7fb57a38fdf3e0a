//! Operating it: rate limits, the admin endpoints and metrics, and hot reload of the rules.

use crate::support::gateway::{self, Builder, REPAIRS_TYPE};
use crate::support::upstream::{Reply, Upstream};
use crate::support::{http, job};

#[tokio::test]
async fn over_the_rate_limit_is_429_with_retry_after_and_audited() {
    let up = Upstream::new().json("/api/jobs/J-1001", job()).run().await;
    let limited = gateway::repairs_type_with("rate_limit = \"3/min\"");
    let gw = Builder::before(&up)
        .kind("repairs-contractor", &limited)
        .start()
        .await;
    let key = gw.key("acme-repairs").to_string();
    for _ in 0..3 {
        assert_eq!(
            http::get(gw.addr, "/jobs/J-1001", Some(&key)).await.status,
            200
        );
    }
    let r = http::get(gw.addr, "/jobs/J-1001", Some(&key)).await;
    r.assert_rate_limited(1..=20);
    assert_eq!(up.count(), 3, "the refused request reached the upstream");
    // Another recipient of the same type has its own budget.
    assert_eq!(
        http::get(gw.addr, "/jobs/J-1001", Some(gw.key("brightfix")))
            .await
            .status,
        200
    );
    let records = gw.audit_records();
    assert_eq!(records[3]["status"], 429);
    assert_eq!(records[3]["error"], "rate_limited");
}

#[tokio::test]
async fn metrics_hold_the_counters_and_no_tenant_value() {
    let (_up, gw) = gateway::before_the_job().await;
    let key = gw.key("acme-repairs").to_string();
    assert_eq!(
        http::get(gw.addr, "/jobs/J-1001", Some(&key)).await.status,
        200
    );
    assert_eq!(http::get(gw.addr, "/jobs/J-1001", None).await.status, 401);
    assert_eq!(
        http::get(gw.addr, "/tenants/T-000142", Some(&key))
            .await
            .status,
        403
    );
    let health = http::get(gw.admin_addr, "/healthz", None).await;
    assert_eq!(health.status, 200);
    let ready = http::get(gw.admin_addr, "/readyz", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    let m = http::get(gw.admin_addr, "/metrics", None).await;
    assert_eq!(m.status, 200);
    let text = String::from_utf8_lossy(&m.body).into_owned();
    for expected in [
        r#"need_to_know_requests_total{recipient="acme-repairs",route="/jobs/{job_id}",status="200"} 1"#,
        r#"need_to_know_requests_total{recipient="-",route="-",status="401"} 1"#,
        r#"need_to_know_refusals_total{reason="route_not_granted"} 1"#,
        r#"need_to_know_fields_withheld_total{recipient_type="repairs-contractor"} 12"#,
        "need_to_know_request_seconds_bucket",
        "need_to_know_upstream_seconds_bucket",
        "need_to_know_audit_write_seconds_bucket",
        "need_to_know_audit_records 3",
        "need_to_know_rules_generation{generation=",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // Labels are route templates and ids of recipients, never a tenant's data or raw path.
    for value in ["T-000142", "J-1001", "Joan", "1961-04-09", "/tenants/"] {
        assert!(!text.contains(value), "{value} in /metrics");
    }
}

#[tokio::test]
async fn readyz_fails_when_the_upstream_is_down() {
    let gw = Builder::closed_upstream().start().await;
    let ready = http::get(gw.admin_addr, "/readyz", None).await;
    assert_eq!(ready.status, 503);
    assert!(ready.text().contains("upstream"), "{}", ready.text());
}

#[tokio::test]
async fn a_broken_reload_keeps_the_old_rules_and_a_good_one_takes_effect() {
    let up = Upstream::new()
        .json("/api/jobs/J-1001", job())
        .json("/api/tenants/T-000142", job()["tenant"].clone())
        .run()
        .await;
    let gw = Builder::before(&up).start().await;
    let key = gw.key("acme-repairs").to_string();
    let type_file = gw.rules_dir.join("types/repairs-contractor.toml");
    let before = gw.pipeline.policy().generation().to_string();

    // A typo: the old rules stay, and the gateway stays ready.
    std::fs::write(&type_file, REPAIRS_TYPE.replace("allow = [", "alow = [")).expect("write");
    let err = need_to_know::reload::reload_rules(&gw.pipeline, &gw.settings).expect_err("broken");
    assert!(
        err.0
            .iter()
            .any(|d| d.to_string().contains("repairs-contractor.toml:")),
        "{err:?}"
    );
    assert_eq!(gw.pipeline.policy().generation(), before);
    assert_eq!(
        http::get(gw.addr, "/jobs/J-1001", Some(&key)).await.status,
        200
    );
    assert_eq!(http::get(gw.admin_addr, "/readyz", None).await.status, 200);

    // A good change: the next request is decided under it, and the audit says which rules.
    let widened = format!(
        "{REPAIRS_TYPE}\n[[route]]\nmethod = \"GET\"\npath = \"/tenants/{{id}}\"\nsubjects = [\"id\"]\nallow = [\"name\"]\n"
    );
    std::fs::write(&type_file, widened).expect("write");
    need_to_know::reload::reload_rules(&gw.pipeline, &gw.settings).expect("good");
    let after = gw.pipeline.policy().generation().to_string();
    assert_ne!(after, before);
    let r = http::get(gw.addr, "/tenants/T-000142", Some(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), serde_json::json!({ "name": "Joan Example" }));
    let records = gw.audit_records();
    assert_eq!(records[0]["rules_generation"], before.as_str());
    assert_eq!(
        records.last().expect("record")["rules_generation"],
        after.as_str()
    );
    let metrics = String::from_utf8_lossy(&http::get(gw.admin_addr, "/metrics", None).await.body)
        .into_owned();
    assert!(
        metrics.contains(r#"need_to_know_rules_reloads_total{result="error"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"need_to_know_rules_reloads_total{result="ok"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_change_under_the_rules_dir_is_picked_up_by_the_watcher() {
    let up = Upstream::new()
        .json(
            "/api/tenants/T-1",
            serde_json::json!({ "id": "T-1", "name": "A", "dob": "x" }),
        )
        .run()
        .await;
    let gw = Builder::before(&up).start().await;
    let key = gw.key("acme-repairs").to_string();
    tokio::spawn(need_to_know::reload::watch_rules(
        gw.pipeline.clone(),
        gw.settings.clone(),
        std::time::Duration::from_millis(100),
    ));
    assert_eq!(
        http::get(gw.addr, "/tenants/T-1", Some(&key)).await.status,
        403
    );
    let widened = format!(
        "{REPAIRS_TYPE}\n[[route]]\nmethod = \"GET\"\npath = \"/tenants/{{id}}\"\nsubjects = [\"id\"]\nallow = [\"name\"]\n"
    );
    std::fs::write(gw.rules_dir.join("types/repairs-contractor.toml"), widened).expect("write");
    let mut status = 0;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        status = http::get(gw.addr, "/tenants/T-1", Some(&key)).await.status;
        if status == 200 {
            break;
        }
    }
    assert_eq!(status, 200, "the watcher did not reload within 5 s");
}

/// Slow read (`reliability/run`, item 7): one recipient holding many requests open must not
/// starve the others. Over its type's `max_in_flight` it gets 429 at once, nothing goes
/// upstream, the refusal is audited and counted; another recipient of the same type is still
/// served.
#[tokio::test]
async fn over_max_in_flight_is_429_for_that_recipient_only() {
    let up = Upstream::new()
        .route(
            "GET",
            "/api/jobs/J-1001",
            Reply::Slow(std::time::Duration::from_millis(800), job()),
        )
        .run()
        .await;
    let gw = Builder::before(&up)
        .kind(
            "repairs-contractor",
            &gateway::repairs_type_with("max_in_flight = 2"),
        )
        .start()
        .await;
    let acme = gw.key("acme-repairs").to_string();
    let addr = gw.addr;
    let held: Vec<_> = (0..2)
        .map(|_| {
            let key = acme.clone();
            tokio::spawn(async move { http::get(addr, "/jobs/J-1001", Some(&key)).await })
        })
        .collect();
    // Both slow requests are under way (the upstream holds each 800 ms).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let over = http::get(addr, "/jobs/J-1001", Some(&acme)).await;
    assert_eq!(over.status, 429, "{}", over.text());
    assert_eq!(over.error(), "too_many_in_flight");
    assert_eq!(over.header("retry-after"), Some("1"));
    let other = http::get(addr, "/jobs/J-1001", Some(gw.key("brightfix"))).await;
    assert_eq!(other.status, 200, "{}", other.text());
    for h in held {
        assert_eq!(h.await.expect("request task").status, 200);
    }
    // The slots are free again.
    assert_eq!(
        http::get(addr, "/jobs/J-1001", Some(&acme)).await.status,
        200
    );
    assert_eq!(up.count(), 4, "the refused request reached the upstream");
    let refused: Vec<_> = gw
        .audit_records()
        .into_iter()
        .filter(|r| r["error"] == "too_many_in_flight")
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["recipient"], "acme-repairs");
    assert_eq!(refused[0]["status"], 429);
    let metrics = http::get(gw.admin_addr, "/metrics", None).await.text();
    assert!(
        metrics.contains(r#"need_to_know_refusals_total{reason="too_many_in_flight"} 1"#),
        "{metrics}"
    );
    gw.stop().await;
}
