//! `audit verify|query|export|report|fields|migrate --postgres`: the DPO's view over every
//! replica's chain in the PostgreSQL ledger. The URL comes from the environment variable the
//! config names (`[audit.postgres] url_env`, default `NEED_TO_KNOW_PG_URL`), never from the
//! command line, so the password stays out of shell history and `ps`.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::audit::postgres::endpoint::EndpointError;
use crate::audit::postgres::{self, read, Endpoint, SslMode};
use crate::config::{AuditBackend, AuditPostgres, Settings, DEFAULT_PG_URL_ENV};

/// `[audit.postgres]` of `config` when it names the PostgreSQL ledger, else the defaults (the
/// URL in `NEED_TO_KNOW_PG_URL`, the mode by its host).
fn settings(config: Option<&Path>) -> anyhow::Result<AuditPostgres> {
    if let Some(path) = config {
        let settings = Settings::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
        if let AuditBackend::Postgres(pg) = settings.audit_backend {
            return Ok(pg);
        }
    }
    Ok(AuditPostgres {
        url_env: DEFAULT_PG_URL_ENV.to_string(),
        chain: String::new(),
        sslmode: None,
        ca: None,
    })
}

/// How `[audit.postgres]` reaches the ledger: the URL from its variable, the mode, and the TLS
/// config that mode needs (`ca`, else the platform's roots, for `verify-full`). A `ca` without
/// `sslmode` means `verify-full`: a CA is given to be checked against.
///
/// # Errors
///
/// The setting at fault (for `check` to place) and why.
pub(crate) fn endpoint(pg: &AuditPostgres) -> Result<Endpoint, (&'static str, String)> {
    let url = pg.url().map_err(|m| ("audit.postgres.url_env", m))?;
    let configured = pg.sslmode.or(pg.ca.as_ref().map(|_| SslMode::VerifyFull));
    let tls = |mode| {
        let config = match mode {
            SslMode::VerifyFull => crate::tls::upstream_client_config(pg.ca.as_deref()),
            _ => crate::tls::unauthenticated_client_config(),
        };
        config.map_err(|e| match e {
            crate::tls::Error::Config(_) if pg.ca.is_none() => {
                "audit.postgres: no platform root certificates found to check the server with; set audit.postgres.ca".to_owned()
            }
            e => format!("audit.postgres.ca: {e}"),
        })
    };
    Endpoint::new(&url, configured, tls).map_err(|e| match e {
        EndpointError::Url(m) => ("audit.postgres.url_env", m),
        EndpointError::Mode(m) => ("audit.postgres.sslmode", m),
        EndpointError::Tls(m) => ("audit.postgres.ca", m),
    })
}

/// What `check` and `serve` warn of in the mode in effect: TLS that does not authenticate,
/// or clear text to a host that is not loopback.
pub(crate) fn endpoint_warning(endpoint: &Endpoint) -> Option<String> {
    match endpoint.mode {
        SslMode::Require => Some(
            "audit.postgres.sslmode \"require\" encrypts but does not authenticate the server: \
             anyone who can answer in its place reads the ledger; use \"verify-full\" with ca"
                .to_owned(),
        ),
        SslMode::Disable if !endpoint.loopback => Some(
            "audit.postgres.sslmode \"disable\": the ledger is reached in clear text on a host \
             that is not loopback"
                .to_owned(),
        ),
        _ => None,
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn client(config: Option<&Path>) -> anyhow::Result<tokio_postgres::Client> {
    let endpoint = endpoint(&settings(config)?)
        .map_err(|(key, message)| anyhow::anyhow!("{key}: {message}"))?;
    if let Some(warning) = endpoint_warning(&endpoint) {
        eprintln!("warning: {warning}");
    }
    Ok(postgres::connect(&endpoint).await?)
}

/// Every chain, a line each; the first broken row named as `chain NAME: seq N: reason`.
pub fn verify(config: Option<&Path>) -> anyhow::Result<u8> {
    runtime()?.block_on(async {
        let client = client(config).await?;
        let chains = read::chains(&client).await?;
        let mut code = 0;
        let mut total = 0;
        for chain in &chains {
            let verdict = read::verify_chain(&client, chain).await?;
            match &verdict.broken {
                None => {
                    total += verdict.records;
                    println!(
                        "chain {chain}: {} records verified, head {}",
                        verdict.records, verdict.head
                    );
                }
                Some((seq, reason)) => {
                    code = 1;
                    println!("chain {chain}: seq {seq}: {reason}");
                }
            }
        }
        if code == 0 {
            println!("total: {total} records verified in {} chains", chains.len());
        }
        Ok(code)
    })
}

/// Every disclosure about `subject` from every chain, one JSON object a line, oldest first.
pub fn query(config: Option<&Path>, subject: &str) -> anyhow::Result<u8> {
    runtime()?.block_on(async {
        let client = client(config).await?;
        for line in read::query(&client, subject).await? {
            println!("{line}");
        }
        Ok(0)
    })
}

/// One chain as the JSONL file it would have been, to `output` or standard output.
pub fn export(config: Option<&Path>, chain: &str, output: Option<&Path>) -> anyhow::Result<u8> {
    runtime()?.block_on(async {
        let client = client(config).await?;
        if !read::chains(&client).await?.iter().any(|c| c == chain) {
            anyhow::bail!("no chain {chain:?} in the ledger");
        }
        match output {
            Some(path) => {
                let file = std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                let mut out = std::io::BufWriter::new(file);
                let rows = read::export(&client, chain, &mut out).await?;
                out.into_inner()
                    .map_err(|e| e.into_error())
                    .and_then(|f| f.sync_all())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                eprintln!(
                    "{rows} records of chain {chain} written to {}",
                    path.display()
                );
            }
            None => {
                let stdout = std::io::stdout();
                let mut out = stdout.lock();
                read::export(&client, chain, &mut out).await?;
                out.flush()?;
            }
        }
        Ok(0)
    })
}

/// Creates or upgrades the schema, as `serve` does at start.
pub fn migrate(config: Option<&Path>) -> anyhow::Result<u8> {
    runtime()?.block_on(async {
        let mut client = client(config).await?;
        let applied = postgres::migrate(&mut client).await?;
        println!("{applied} migrations applied");
        Ok(0)
    })
}

/// The subject's records and the verdict over every chain, for the subject access report.
pub fn report_input(
    config: Option<&Path>,
    subject: &str,
) -> anyhow::Result<(crate::report::Checked, Vec<String>)> {
    runtime()?.block_on(async {
        let client = client(config).await?;
        let checked = checked(&client).await?;
        let lines = read::query(&client, subject).await?;
        Ok((checked, lines))
    })
}

/// Every record of every chain counted into `drift`, for `audit fields`; the verdict over
/// every chain, as for the report.
pub fn fields_input(
    config: Option<&Path>,
    drift: &mut crate::audit::fields::Drift,
) -> anyhow::Result<crate::report::Checked> {
    runtime()?.block_on(async {
        let client = client(config).await?;
        let checked = checked(&client).await?;
        for chain in read::chains(&client).await? {
            read::each_record(&client, &chain, |seq, record| {
                match serde_json::from_str(record) {
                    Ok(record) => drift.add(&record),
                    Err(_) => {
                        tracing::warn!(chain = %chain, seq, "audit fields: skipped a row that is not JSON");
                    }
                }
            })
            .await?;
        }
        Ok(checked)
    })
}

/// Every chain verified: how many records did, the first break, and the chains' names.
async fn checked(client: &tokio_postgres::Client) -> anyhow::Result<crate::report::Checked> {
    let mut checked = crate::report::Checked::default();
    for chain in read::chains(client).await? {
        let verdict = read::verify_chain(client, &chain).await?;
        checked.records += verdict.records;
        if let (None, Some((seq, reason))) = (&checked.problem, &verdict.broken) {
            checked.problem = Some(format!("chain {chain}: seq {seq}: {reason}"));
        }
        checked.sources.push(format!("postgres:{chain}"));
    }
    Ok(checked)
}
