//! The upstream bodies `bench/run` serves from nginx, written from the sample API's invented
//! data so the shipped rules' conditions and item filters really run on them.
//!
//! `cargo run --release --example bench_fixtures -- DIR MIB` writes:
//!
//! - `DIR/job.json`: J-0001 exactly as the sample API's `/jobs/J-0001` returns it (about
//!   2 KB: a tenant with access needs and three caution markers, assigned to `acme-repairs`
//!   and scheduled, so the repairs-contractor `when` holds and `items` keeps one marker);
//! - `DIR/export.json`: about `MIB` MiB of tenant records as `/tenants` returns them, the
//!   sample tenants repeated with fresh ids (`T-0000001`...) so every subject is distinct
//!   (`MIB` 0: the job record only).
//!
//! The data is generated for today, the day the bench runs, because the caution markers'
//! `review_by` dates are relative to it and the gateway evaluates them against its own clock.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use need_to_know::sample_api::{Date, SampleData, JOB_ACME_SCHEDULED};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(mib)) = (args.next(), args.next()) else {
        bail!("usage: bench_fixtures DIR MIB");
    };
    let dir = PathBuf::from(dir);
    let mib: u64 = mib.parse().context("MIB is a whole number of MiB")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;

    let data = SampleData::generate(Date::today());
    let job = data.job(JOB_ACME_SCHEDULED).context("the showcase job")?;
    let job = serde_json::to_vec(&data.job_view(job))?;
    std::fs::write(dir.join("job.json"), &job)?;

    if mib == 0 {
        println!("job.json {} B", job.len());
        return Ok(());
    }
    let target = mib * 1024 * 1024;
    let path = dir.join("export.json");
    let mut out = BufWriter::new(File::create(&path)?);
    let mut written = 1u64;
    out.write_all(b"[")?;
    let mut n = 0u64;
    'fill: loop {
        for tenant in data.tenants() {
            n += 1;
            let mut tenant = tenant.clone();
            tenant.id = format!("T-{n:07}");
            let row = serde_json::to_vec(&tenant)?;
            if n > 1 {
                out.write_all(b",")?;
                written += 1;
            }
            out.write_all(&row)?;
            written += row.len() as u64;
            if written + 1 >= target {
                break 'fill;
            }
        }
    }
    out.write_all(b"]")?;
    out.flush()?;
    println!(
        "job.json {} B; export.json {} B, {n} tenants",
        job.len(),
        written + 1
    );
    Ok(())
}
