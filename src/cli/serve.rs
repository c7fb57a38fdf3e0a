//! `serve`: load everything, refuse to start on any problem, then run until told to stop.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::audit::AuditLog;
use crate::cli::EXIT_CONFIG;
use crate::config::{AuditBackend, Settings};
use crate::diag::Diagnostic;
use crate::limits;
use crate::metrics::Metrics;
use crate::pipeline::Gateway;
use crate::reload;
use crate::rules::Policy;
use crate::server;
use crate::tls::Reloadable;
use crate::upstream::Upstream;

pub fn run(config: &Path) -> anyhow::Result<u8> {
    let settings = match Settings::load(config) {
        Ok(s) => s,
        Err(e) => return Ok(refuse(e.0.iter().map(ToString::to_string))),
    };
    let policy = match settings.load_policy() {
        Ok(p) => p,
        Err(e) => return Ok(refuse(e.0.iter().map(ToString::to_string))),
    };
    for warning in policy.warnings() {
        tracing::warn!("{warning}");
    }
    let (errors, warnings): (Vec<_>, Vec<_>) = preflight(&settings)
        .into_iter()
        .partition(Diagnostic::is_error);
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    if !errors.is_empty() {
        return Ok(refuse(errors.iter().map(ToString::to_string)));
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(settings, policy))
}

/// What `serve` refuses to start on, or warns of, beyond the config and rules as loaded,
/// decided from the settings and the environment before anything is opened or bound:
/// plain HTTP off loopback, an upstream credential or Redis URL variable that is not set, the
/// PostgreSQL ledger's URL, mode and CA, Redis' CA, and signed checkpoints with the PostgreSQL
/// ledger. `check` prints the same list, so a config that passes `check` is not refused here.
pub(super) fn preflight(settings: &Settings) -> Vec<Diagnostic> {
    let mut problems: Vec<Diagnostic> = settings.plaintext().into_iter().collect();
    if let Err(message) = crate::upstream::credential(&settings.upstream) {
        problems.push(settings.error_at("upstream.credential_env", message));
    }
    if let Some(shared) = &settings.limits.shared {
        match limits::redis::client(shared) {
            Err(message) => {
                let key = if message.starts_with("limits.redis_ca") {
                    "limits.redis_ca"
                } else {
                    "limits.redis_url_env"
                };
                problems.push(settings.error_at(key, message));
            }
            Ok(client) => problems.extend(
                limits::redis::clear_text_warning(&client)
                    .map(|m| settings.warning_at("limits.redis_url_env", m)),
            ),
        }
    }
    if let AuditBackend::Postgres(pg) = &settings.audit_backend {
        match super::audit::postgres::endpoint(pg) {
            Err((key, message)) => problems.push(settings.error_at(key, message)),
            Ok(endpoint) => problems.extend(
                super::audit::postgres::endpoint_warning(&endpoint)
                    .map(|m| settings.warning_at("audit.postgres.sslmode", m)),
            ),
        }
    }
    if checkpoints_unsupported(settings) {
        problems.push(settings.error_at("audit.checkpoint_key", CHECKPOINTS_NEED_THE_FILE));
    }
    problems
}

/// Why `serve` refuses signed checkpoints with the PostgreSQL ledger.
const CHECKPOINTS_NEED_THE_FILE: &str = "signed checkpoints (audit.checkpoint_key) are for the file ledger; PostgreSQL chains are checked by audit verify --postgres";

/// Signed checkpoints cover the file ledger's lines only; a PostgreSQL chain is verified
/// from the database.
fn checkpoints_unsupported(settings: &Settings) -> bool {
    matches!(settings.audit_backend, AuditBackend::Postgres(_))
        && settings.audit_checkpoints.is_some()
}

fn refuse(problems: impl IntoIterator<Item = String>) -> u8 {
    for p in problems {
        eprintln!("{p}");
    }
    eprintln!(
        "need-to-know: not starting: fix the problems above (need-to-know check lists them all)"
    );
    EXIT_CONFIG
}

async fn serve(settings: Settings, policy: Policy) -> anyhow::Result<u8> {
    let listener = tokio::net::TcpListener::bind(settings.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
    let admin = match settings.admin_listen {
        None => None,
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (admin)"))?,
        ),
    };
    match run_gateway(settings, policy, listener, admin, shutdown_signal(), |_| {}).await {
        Ok(code) => Ok(code),
        // A certificate or credential problem is a config problem: the config exit code.
        Err(e @ (StartError::Tls(_) | StartError::Upstream(_) | StartError::Limits(_))) => {
            Ok(refuse([e.to_string()]))
        }
        Err(e) => Err(e.into()),
    }
}

/// Why the gateway could not start, after the config and rules were accepted.
#[derive(Debug, thiserror::Error)]
pub(super) enum StartError {
    #[error("{0}")]
    Tls(#[from] crate::tls::Error),
    #[error("cannot open the audit log {path}: {source}")]
    Audit {
        path: std::path::PathBuf,
        source: crate::audit::Error,
    },
    #[error("cannot open the audit ledger: {0}")]
    Ledger(crate::audit::Error),
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    Limits(String),
}

/// The ledger `[audit] backend` names: the file, or this replica's chain in PostgreSQL (the
/// URL read from the environment here, and nowhere else).
async fn open_audit(settings: &Settings) -> Result<(AuditLog, crate::audit::Opened), StartError> {
    match &settings.audit_backend {
        AuditBackend::File => AuditLog::open_with(&settings.audit_path, &audit_options(settings))
            .map_err(|source| StartError::Audit {
                path: settings.audit_path.clone(),
                source,
            }),
        AuditBackend::Postgres(_) if checkpoints_unsupported(settings) => Err(StartError::Ledger(
            crate::audit::Error::Unsupported(CHECKPOINTS_NEED_THE_FILE),
        )),
        AuditBackend::Postgres(pg) => {
            let endpoint = super::audit::postgres::endpoint(pg).map_err(|(key, m)| {
                StartError::Ledger(crate::audit::Error::Postgres(format!("{key}: {m}")))
            })?;
            tracing::info!(chain = %pg.chain, sslmode = %endpoint.mode, "audit ledger: PostgreSQL");
            let target = crate::audit::postgres::Target {
                endpoint,
                chain: pg.chain.clone(),
            };
            AuditLog::open_postgres(target)
                .await
                .map_err(StartError::Ledger)
        }
    }
}

/// Everything `serve` and `demo` share: the audit, the upstream, the gateway, the admin
/// endpoints, reload on SIGHUP and on file changes, and the server until `shutdown`.
/// `ready` runs once the gateway is built, before the first connection is accepted.
pub(super) async fn run_gateway(
    settings: Settings,
    policy: Policy,
    listener: tokio::net::TcpListener,
    admin: Option<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()>,
    ready: impl FnOnce(&Arc<Gateway>),
) -> Result<u8, StartError> {
    let tls = match &settings.server.tls {
        None => None,
        Some(t) => Some(Arc::new(Reloadable::new(t.clone())?)),
    };
    let (audit, opened) = open_audit(&settings).await?;
    tracing::info!(records = opened.records, head = %opened.head, "audit log open");
    if let Some(side) = &opened.recovered_torn_tail {
        tracing::warn!(side_file = %side.display(), "a torn last audit record was moved aside");
    }
    let upstream =
        Upstream::new(&settings.upstream, &settings.limits).map_err(StartError::Upstream)?;
    tracing::info!(
        listen = %listener.local_addr().map_or_else(|_| settings.server.listen.to_string(), |a| a.to_string()),
        recipients = policy.recipients().len(),
        rules_generation = policy.generation(),
        "serving"
    );
    let metrics = Arc::new(Metrics::new(audit.stats()));
    let limiter = limits::from_settings(
        settings.limits.shared.as_ref(),
        metrics.shared_limiter.clone(),
    )
    .await
    .map_err(StartError::Limits)?;
    if settings.limits.shared.is_some() {
        tracing::info!("rate limits shared across replicas in Redis");
    }
    let gateway = Arc::new(
        Gateway::new(
            Arc::new(policy),
            upstream,
            audit.clone(),
            settings.limits.clone(),
            limiter,
            metrics,
        )
        .map_err(StartError::Ledger)?,
    );
    if let Some(admin) = admin {
        if let Ok(addr) = admin.local_addr() {
            tracing::info!(listen = %addr, "admin endpoints: /healthz /readyz /metrics");
        }
        tokio::spawn(crate::admin::run(
            admin,
            gateway.clone(),
            std::future::pending(),
        ));
    }
    tokio::spawn(reload::watch_rules(
        gateway.clone(),
        settings.clone(),
        Duration::from_secs(2),
    ));
    on_sighup(gateway.clone(), settings.clone(), tls.clone());
    rotate_on_sigusr1(audit.clone());
    let options = server::Options {
        header_read_timeout: settings.server.header_read_timeout,
        write_stall_timeout: settings.server.write_stall_timeout,
        idle_timeout: settings.server.idle_timeout,
        max_connections: settings.server.max_connections,
        drain_timeout: Duration::from_secs(30),
        tls,
    };
    ready(&gateway);
    server::run(listener, gateway, options, shutdown).await;
    audit.close().await;
    tracing::info!("stopped");
    Ok(0)
}

fn audit_options(settings: &Settings) -> crate::audit::Options {
    crate::audit::Options {
        checkpoints: settings.audit_checkpoints.clone(),
    }
}

/// SIGHUP reloads the rules and re-reads the certificate files; whatever fails to load is
/// logged and the old version stays in use.
fn on_sighup(gateway: Arc<Gateway>, settings: Settings, tls: Option<Arc<Reloadable>>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: reload only on file changes");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading");
            let _ = reload::reload_rules(&gateway, &settings);
            if let Some(tls) = &tls {
                match tls.reload() {
                    Ok(()) => tracing::info!("tls certificates reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "tls reload failed; keeping the old certificates")
                    }
                }
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (gateway, settings, tls);
}

/// SIGUSR1 rotates the audit file: the current one is renamed aside and a new one starts
/// with a rotation record chained to its last hash (deploy/README.md, "Rotating").
fn rotate_on_sigusr1(audit: AuditLog) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
            tracing::warn!("cannot listen for SIGUSR1: the audit file will not be rotated online");
            return;
        };
        while usr1.recv().await.is_some() {
            match audit.rotate().await {
                Ok(rotated) => tracing::info!(rotated = %rotated.display(), "audit file rotated"),
                Err(e) => tracing::error!(error = %e, "audit rotation failed"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = audit;
}

/// Ctrl-C or SIGTERM. The handlers are installed when this is called, not when the future is
/// first polled: a signal that comes after the caller has said it is ready (demo's guide
/// printed, the port open) but before the server polls this must stop it gracefully, not end
/// the process by the signal's default action.
pub(super) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {},
                    _ = terminate.recv() => {},
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down: finishing in-flight requests");
    }
}
