//! The file ledger on its own: how many records it makes durable when many requests append at
//! once, without the HTTP stack, the upstream or the filter in front of it.
//!
//! `cargo run --release --example ledger_load -- DIR SECONDS CONCURRENCY` opens a fresh ledger
//! at `DIR/ledger.jsonl` (removing one left from a previous run), starts `CONCURRENCY` tasks
//! that each append the audit record of a repairs-contractor `/jobs/J-0001` response in a loop,
//! every append awaiting its own durability as a request does, and after a 1 s warm-up counts
//! for `SECONDS`. It prints one line of `key=value` figures: durable records/s, mean records
//! per fsync and fsyncs/s, read from the writer's own counters (`AuditLog::stats`), the same
//! ones `/metrics` shows.
//!
//! `bench/run` runs it beside the gateway's own audit row: the gateway's figure is bounded by
//! its request path's CPU, this one by the ledger (serialising, chaining, write, fdatasync).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use need_to_know::audit::{now_rfc3339, AuditLog, Record};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(seconds), Some(concurrency)) = (args.next(), args.next(), args.next())
    else {
        bail!("usage: ledger_load DIR SECONDS CONCURRENCY");
    };
    let dir = PathBuf::from(dir);
    let seconds: u64 = seconds.parse().context("SECONDS is a whole number")?;
    let concurrency: usize = concurrency
        .parse()
        .context("CONCURRENCY is a whole number")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join("ledger.jsonl");
    if path.exists() {
        std::fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
    }

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(load(path, Duration::from_secs(seconds), concurrency))
}

async fn load(path: PathBuf, measure: Duration, concurrency: usize) -> anyhow::Result<()> {
    let (ledger, _) = AuditLog::open(&path).context("open the ledger")?;
    let stats = ledger.stats();
    let stop = Instant::now() + Duration::from_secs(1) + measure;

    let appenders: Vec<_> = (0..concurrency)
        .map(|task| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < stop {
                    ledger.append(job_record(task, n)).await?;
                    n += 1;
                }
                anyhow::Ok(())
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(1)).await;
    let (records_before, fsyncs_before) = counts(&stats);
    let started = Instant::now();
    tokio::time::sleep(measure).await;
    let (records_after, fsyncs_after) = counts(&stats);
    let elapsed = started.elapsed().as_secs_f64();

    for appender in appenders {
        appender.await??;
    }
    ledger.close().await;

    let records = records_after - records_before;
    let fsyncs = fsyncs_after - fsyncs_before;
    println!(
        "records_per_s={:.0} records_per_fsync={:.1} fsyncs_per_s={:.0} concurrency={concurrency}",
        records as f64 / elapsed,
        records as f64 / fsyncs.max(1) as f64,
        fsyncs as f64 / elapsed,
    );
    Ok(())
}

fn counts(stats: &need_to_know::audit::Stats) -> (u64, u64) {
    (
        stats.records_written.load(Ordering::Relaxed),
        stats.batches.load(Ordering::Relaxed),
    )
}

/// What the gateway records for J-0001 served to `acme-repairs` (about 1.5 KB on disk).
fn job_record(task: usize, n: u64) -> Record {
    let paths = |list: &[&str]| list.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    Record {
        ts: now_rfc3339(),
        request_id: format!("{task:08x}{n:024x}"),
        recipient: Some("acme-repairs".into()),
        recipient_type: Some("repairs-contractor".into()),
        method: "GET".into(),
        route: Some("/jobs/{job_id}".into()),
        path: "/jobs/J-0001".into(),
        status: 200,
        purpose: Some(
            "Carry out repairs, maintenance and safety checks at the tenant's home".into(),
        ),
        lawful_basis: Some("contract".into()),
        reasons: vec!["contractor assigned to an open job at this property".into()],
        subjects: vec!["T-0001".into()],
        disclosed: paths(&[
            "appointment.date",
            "appointment.slot",
            "description",
            "id",
            "priority",
            "property.address.line1",
            "property.address.postcode",
            "property.address.town",
            "status",
            "tenant.access_needs[].description",
            "tenant.caution_markers[].category",
            "tenant.caution_markers[].instruction",
            "tenant.email",
            "tenant.name",
            "tenant.phone",
        ]),
        withheld: paths(&[
            "contractor_id",
            "internal_notes",
            "property.id",
            "reported",
            "tenant.access_needs[].code",
            "tenant.address",
            "tenant.arrears",
            "tenant.benefits",
            "tenant.caution_markers[]",
            "tenant.caution_markers[].applied",
            "tenant.caution_markers[].id",
            "tenant.caution_markers[].review_by",
            "tenant.caution_markers[].tenant_informed",
            "tenant.communication_needs",
            "tenant.consent",
            "tenant.date_of_birth",
            "tenant.forwarding_address",
            "tenant.health",
            "tenant.household",
            "tenant.id",
            "tenant.ni_number",
            "tenant.no_lone_working",
            "tenant.property_id",
            "tenant.sharing_restrictions",
            "tenant.tenancy",
        ]),
        extra: Default::default(),
    }
}
