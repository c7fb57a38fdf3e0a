//! `demo`: the sample housing API and the gateway with the shipped rules, on loopback, and
//! what to try.
//!
//! Everything the demo needs is made fresh: the upstream credential and the pseudonym key
//! (random, in this process's environment only), the config and the audit file (in a
//! temporary directory, kept afterwards so it can be inspected). The recipients' keys are the
//! development keys in `rules/recipients.toml` (`dev-<id>-key`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::cli::serve::{run_gateway, shutdown_signal};
use crate::config::Settings;
use crate::sample_api::{self, Date, SampleData};

const UPSTREAM_TOKEN_ENV: &str = "NEED_TO_KNOW_DEMO_UPSTREAM_TOKEN";
const PSEUDONYM_KEY_ENV: &str = "NEED_TO_KNOW_PSEUDONYM_KEY";

pub fn run(rules: &Path, port: u16) -> anyhow::Result<u8> {
    let rules = rules.canonicalize().with_context(|| {
        format!(
            "no rules directory at {} (run the demo from the repository's root, or pass --rules)",
            rules.display()
        )
    })?;
    let dir = std::env::temp_dir().join(format!(
        "need-to-know-demo-{}-{}",
        std::process::id(),
        unix_millis()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Set before the runtime starts any thread: only this process sees them.
    let (token, _) = crate::identity::new_api_key().context("random source")?;
    std::env::set_var(UPSTREAM_TOKEN_ENV, &token);
    if std::env::var(PSEUDONYM_KEY_ENV).is_err() {
        let (key, _) = crate::identity::new_api_key().context("random source")?;
        std::env::set_var(PSEUDONYM_KEY_ENV, key);
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(demo(rules, dir, port, token))
}

async fn demo(rules: PathBuf, dir: PathBuf, port: u16, token: String) -> anyhow::Result<u8> {
    let data = Arc::new(SampleData::generate(Date::today()));
    let sample = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind the sample API")?;
    let sample_addr = sample.local_addr()?;
    tokio::spawn(sample_api::serve(
        sample,
        data,
        "/api",
        Some(token),
        std::future::pending(),
    ));

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port} (try --port 0)"))?;
    let addr = listener.local_addr()?;
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind admin")?;
    let admin_addr = admin.local_addr()?;
    let audit = dir.join("disclosures.jsonl");
    let config = dir.join("need-to-know.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"{addr}\"\n\n[upstream]\nurl = \"http://{sample_addr}/api\"\ntimeout = \"5s\"\ncredential_env = \"{UPSTREAM_TOKEN_ENV}\"\n\n[rules]\ndir = {rules:?}\npseudonym_key_env = \"{PSEUDONYM_KEY_ENV}\"\n\n[audit]\npath = {audit:?}\n\n[admin]\nlisten = \"{admin_addr}\"\n",
            rules = rules.display().to_string(),
            audit = audit.display().to_string(),
        ),
    )
    .with_context(|| format!("cannot write {}", config.display()))?;
    let settings = Settings::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let policy = super::load_policy(&settings)?;
    let code = run_gateway(
        settings,
        policy,
        listener,
        Some(admin),
        shutdown_signal(),
        |_| {
            print_guide(addr, admin_addr, &audit);
        },
    )
    .await?;
    println!();
    println!("The audit file is kept for you: {}", audit.display());
    Ok(code)
}

/// One `curl` per thing worth seeing, with what it shows.
fn print_guide(addr: SocketAddr, admin: SocketAddr, audit: &Path) {
    let base = format!("http://{addr}");
    let curl = |id: &str, extra: &str, path: &str| {
        format!("curl -s {extra}-H 'Authorization: Bearer dev-{id}-key' '{base}{path}'")
    };
    let reference = "-H 'x-disclosure-reference: REF-2026-0042' ";
    let tries: Vec<(&str, String)> = vec![
        (
            "Repairs contractor, its own open job: contact details, access needs, and the one caution\n  marker the tenant was told of and is still in date (the uninformed and the expired ones are withheld)",
            curl("acme-repairs", "", "/jobs/J-0001"),
        ),
        (
            "The same contractor on its completed job: no caution markers",
            curl("acme-repairs", "", "/jobs/J-0003"),
        ),
        (
            "The same contractor on another contractor's job: refused, answered as a job that does\n  not exist (404), so job references cannot be guessed",
            curl("acme-repairs", "", "/jobs/J-0002"),
        ),
        (
            "Out-of-hours call handler: contact details, communication needs and the no-lone-working\n  flag; nothing financial or medical",
            curl("nightline", "", "/tenants/T-0004"),
        ),
        (
            "Research vendor, a survey sample: age band, postcode district and a pseudonymous\n  respondent id, never a date of birth or address; tenants who objected are left out",
            curl("civic-surveys", "", "/tenants?postcode_district=LN2"),
        ),
        (
            "Research vendor, a tenant who objected to research: refused (403)",
            curl("civic-surveys", "", "/tenants/T-0002"),
        ),
        (
            "Utility debt agent, a former tenant, with its request reference: forwarding address and\n  tenancy dates only",
            curl("fenland-water-recoveries", reference, "/former-tenants/T-0003"),
        ),
        (
            "Police without a crime or incident reference: refused (403)",
            curl("lincs-police", "", "/tenants/T-0001"),
        ),
        (
            "Police with a reference: identity, address and tenancy dates; the reference is audited",
            curl("lincs-police", reference, "/tenants/T-0001"),
        ),
    ];
    println!();
    println!("need-to-know demo: the gateway is on {base}, in front of a sample housing API");
    println!("(invented tenants; it serves /api/jobs, /api/tenants, /api/properties, /api/former-tenants).");
    println!();
    for (what, command) in &tries {
        println!("# {what}");
        println!("{command}");
        println!();
    }
    println!("# Everything disclosed about tenant T-0001, from the hash-chained audit log:");
    println!(
        "need-to-know audit query {} --subject T-0001",
        audit.display()
    );
    println!("need-to-know audit verify {}", audit.display());
    println!();
    println!("# Metrics and probes: http://{admin}/metrics  http://{admin}/readyz");
    println!("# Ctrl-C stops the demo.");
}

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}
