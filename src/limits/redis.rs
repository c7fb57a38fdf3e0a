//! One rate budget per recipient for the whole deployment, in Redis.
//!
//! Each check is one atomic Lua script (`gcra.lua`: GCRA on the Redis server's clock, sent by
//! EVALSHA, with EVAL when the server does not hold it yet), so N replicas together admit a
//! recipient's `rate_limit` and no more. Keys are `need-to-know:limit:<recipient id>` and
//! expire once they no longer constrain anyone.
//!
//! Redis is a dependency that can fail. Every call is bounded by `redis_timeout`; a failure
//! or timeout drops the connection and the request is decided by `on_redis_error`: `local`
//! (this replica's governor limiter at `rate / replicas_hint`) or `refuse` (503). While the
//! connection is down, requests do not wait for Redis at all: a background task reconnects,
//! at most every [`RECONNECT_EVERY`], and the first answer from Redis ends the outage. An
//! outage is logged once when it starts and once when it ends, never per request; the
//! metrics count failed calls, requests decided without Redis, and whether that is now.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::redis::aio::MultiplexedConnection;
use ::redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, RedisError, Script,
    TlsCertificates,
};

use super::{rate_of, whole_seconds, Check, Error, Exceeded, Limiter, Local};
use crate::audit::postgres::endpoint::is_loopback_host;
use crate::config::{OnRedisError, SharedLimits};
use crate::metrics;
use crate::rules::{Rate, Recipient};

/// Prefix of every key this limiter writes, so the gateway can share a Redis with others.
pub const KEY_PREFIX: &str = "need-to-know:limit:";

/// Least time between two connection attempts while Redis is down.
pub const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// A connection attempt (TCP, AUTH, SELECT) may take this long; it runs in the background.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The shared limiter: Redis, with this replica's own limiter behind it.
pub struct Shared {
    inner: Arc<Inner>,
}

struct Inner {
    /// Holds the URL, password included; never printed (no `Debug` on `Shared`).
    client: Client,
    script: Script,
    /// The live connection and its generation, so a late failure on an old connection does
    /// not drop a newer one.
    conn: Mutex<Option<(u64, MultiplexedConnection)>>,
    generation: AtomicU64,
    reconnecting: AtomicBool,
    last_attempt: Mutex<Option<Instant>>,
    fallback: Local,
    on_error: OnRedisError,
    replicas_hint: u32,
    timeout: Duration,
    /// In an outage: set when the first failure is logged, cleared on the next answer.
    degraded: AtomicBool,
    metrics: metrics::SharedLimiter,
}

/// Why Redis gave no decision.
#[derive(Debug, thiserror::Error)]
enum Unanswered {
    #[error("not connected")]
    NotConnected,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Redis(#[from] RedisError),
    #[error("unexpected answer from the rate-limit script")]
    Answer,
}

// === impl Shared ===

impl Shared {
    /// Reads the URL from `redis_url_env` and tries one connection. Redis being down is not
    /// an error here: the replica starts in the fallback and keeps reconnecting.
    ///
    /// # Errors
    ///
    /// The variable is unset, does not hold a `redis://`, `rediss://` (or `unix://`) URL, or
    /// `redis_ca` cannot be used. The message names the variable, never its value.
    pub async fn connect(
        settings: &SharedLimits,
        metrics: metrics::SharedLimiter,
    ) -> Result<Shared, String> {
        let client = client(settings)?;
        let inner = Arc::new(Inner {
            client,
            script: Script::new(include_str!("gcra.lua")),
            conn: Mutex::new(None),
            generation: AtomicU64::new(0),
            reconnecting: AtomicBool::new(false),
            last_attempt: Mutex::new(Some(Instant::now())),
            fallback: Local::new(),
            on_error: settings.on_error,
            replicas_hint: settings.replicas_hint,
            timeout: settings.timeout,
            degraded: AtomicBool::new(false),
            metrics,
        });
        match inner.open().await {
            Ok(()) => tracing::info!("shared rate limits: connected to Redis"),
            Err(e) => inner.enter_outage(&e),
        }
        Ok(Shared { inner })
    }
}

/// The Redis client for the URL in `redis_url_env`; no connection is made. A `rediss://` URL
/// is TLS with the server's certificate checked against `redis_ca` (else the platform's
/// roots) and the URL's host; the redis crate's `#insecure` (no check) is refused, as is a
/// `redis_ca` with a clear-text `redis://` URL.
///
/// # Errors
///
/// As [`Shared::connect`]: the variable is unset, does not hold a URL the client takes, or
/// `redis_ca` cannot be used; the message starts with the setting at fault.
pub fn client(settings: &SharedLimits) -> Result<Client, String> {
    let name = &settings.redis_url_env;
    let url = std::env::var(name)
        .map_err(|_| format!("limits.redis_url_env: the environment variable {name} is not set"))?;
    let not_a_url =
        || format!("limits.redis_url_env: {name} does not hold a redis:// or rediss:// URL");
    let info = url
        .as_str()
        .into_connection_info()
        .map_err(|_| not_a_url())?;
    match (info.addr(), &settings.redis_ca) {
        (ConnectionAddr::TcpTls { insecure: true, .. }, _) => Err(format!(
            "limits.redis_url_env: {name} asks for #insecure (no certificate check); set limits.redis_ca to the server's CA instead"
        )),
        (ConnectionAddr::TcpTls { .. }, ca) => {
            let root_cert = match ca {
                None => None,
                Some(ca) => {
                    crate::tls::load_certs(ca).map_err(|e| format!("limits.redis_ca: {e}"))?;
                    Some(std::fs::read(ca).map_err(|e| format!("limits.redis_ca: {}: {e}", ca.display()))?)
                }
            };
            let certificates = TlsCertificates {
                client_tls: None,
                root_cert,
            };
            Client::build_with_tls(info, certificates).map_err(|e| format!("limits.redis_ca: {e}"))
        }
        (_, Some(_)) => Err(format!(
            "limits.redis_ca is set but {name} holds a redis:// URL, which is clear text: use rediss://"
        )),
        (_, None) => Client::open(info).map_err(|_| not_a_url()),
    }
}

/// A clear-text `redis://` URL whose host is not loopback: the password and the recipient
/// ids cross the network readable. A warning, since the operator wrote the scheme.
pub fn clear_text_warning(client: &Client) -> Option<String> {
    match client.get_connection_info().addr() {
        ConnectionAddr::Tcp(host, _) if !is_loopback_host(host) => Some(
            "limits.redis_url_env: the URL is redis:// to a host that is not loopback, so Redis is reached in clear text; use rediss:// (with limits.redis_ca)".to_owned(),
        ),
        _ => None,
    }
}

impl Limiter for Shared {
    fn check<'a>(&'a self, recipient: &'a Recipient) -> Check<'a> {
        Box::pin(async move {
            let Some(rate) = rate_of(recipient) else {
                return Ok(());
            };
            let inner = &self.inner;
            match inner.ask(&recipient.id, rate).await {
                Ok(decided) => {
                    inner.end_outage();
                    decided.map_err(Error::from)
                }
                Err(why) => {
                    if !matches!(why, Unanswered::NotConnected) {
                        inner.metrics.errors.inc();
                    }
                    inner.metrics.fallback_decisions.inc();
                    inner.enter_outage(&why);
                    reconnect_soon(&self.inner);
                    match inner.on_error {
                        OnRedisError::Refuse => Err(Error::Unavailable),
                        OnRedisError::Local => inner
                            .fallback
                            .check_rate(&recipient.id, share(rate, inner.replicas_hint))
                            .map_err(Error::from),
                    }
                }
            }
        })
    }
}

// === impl Inner ===

impl Inner {
    /// One GCRA decision from Redis, within `timeout`.
    async fn ask(&self, id: &str, rate: Rate) -> Result<Result<(), Exceeded>, Unanswered> {
        let Some((generation, mut conn)) = self.connection() else {
            return Err(Unanswered::NotConnected);
        };
        let count = rate.count.max(1);
        let interval_us = u64::try_from(rate.per.as_micros() / u128::from(count))
            .unwrap_or(u64::MAX)
            .max(1);
        let mut invocation = self.script.key(format!("{KEY_PREFIX}{id}"));
        invocation.arg(interval_us).arg(count);
        let answer = tokio::time::timeout(
            self.timeout,
            invocation.invoke_async::<(i64, i64)>(&mut conn),
        )
        .await;
        let answer = match answer {
            Err(_) => Err(Unanswered::Timeout(self.timeout)),
            Ok(Err(e)) => Err(Unanswered::Redis(e)),
            Ok(Ok(answer)) => Ok(answer),
        };
        match answer {
            Ok((1, _)) => Ok(Ok(())),
            Ok((0, wait_us)) => Ok(Err(Exceeded {
                retry_after_secs: whole_seconds(Duration::from_micros(
                    u64::try_from(wait_us).unwrap_or(0),
                )),
            })),
            Ok(_) => Err(Unanswered::Answer),
            Err(e) => {
                self.drop_connection(generation);
                Err(e)
            }
        }
    }

    fn connection(&self) -> Option<(u64, MultiplexedConnection)> {
        lock(&self.conn).clone()
    }

    fn drop_connection(&self, generation: u64) {
        let mut conn = lock(&self.conn);
        if conn.as_ref().is_some_and(|(g, _)| *g == generation) {
            *conn = None;
        }
    }

    /// Opens a connection and puts it in use.
    async fn open(&self) -> Result<(), Unanswered> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(self.timeout));
        let opened = tokio::time::timeout(
            CONNECT_TIMEOUT * 2,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| Unanswered::Timeout(CONNECT_TIMEOUT * 2))??;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *lock(&self.conn) = Some((generation, opened));
        Ok(())
    }

    /// Logged once per outage; the gauge says it is on.
    fn enter_outage(&self, why: &Unanswered) {
        self.metrics.fallback_active.set(1);
        if !self.degraded.swap(true, Ordering::Relaxed) {
            let fallback = match self.on_error {
                OnRedisError::Local => "deciding on this replica at rate / replicas_hint",
                OnRedisError::Refuse => "refusing rate-limited requests with 503",
            };
            tracing::warn!(
                error = %why,
                replicas_hint = self.replicas_hint,
                "shared rate limits: Redis unavailable; {fallback} until it answers"
            );
        }
    }

    fn end_outage(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            self.metrics.fallback_active.set(0);
            tracing::info!("shared rate limits: Redis answers again; one budget per recipient");
        }
    }
}

/// Starts one background reconnection, unless one runs or the last began too recently.
fn reconnect_soon(inner: &Arc<Inner>) {
    {
        let mut last = lock(&inner.last_attempt);
        if last.is_some_and(|at| at.elapsed() < RECONNECT_EVERY) {
            return;
        }
        if inner.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        *last = Some(Instant::now());
    }
    let inner = inner.clone();
    tokio::spawn(async move {
        if let Err(e) = inner.open().await {
            tracing::debug!(error = %e, "shared rate limits: reconnect failed");
        }
        inner.reconnecting.store(false, Ordering::Release);
    });
}

/// This replica's part of `rate` when it decides alone: `count / replicas`, at least 1.
fn share(rate: Rate, replicas: u32) -> Rate {
    Rate {
        count: (rate.count / replicas.max(1)).max(1),
        per: rate.per,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client for `url` in a variable of this test's own (tests run in parallel).
    fn client_for(var: &str, url: &str, redis_ca: Option<&str>) -> Result<Client, String> {
        std::env::set_var(var, url);
        client(&SharedLimits {
            redis_url_env: var.to_owned(),
            on_error: OnRedisError::Local,
            replicas_hint: 1,
            timeout: Duration::from_millis(100),
            redis_ca: redis_ca.map(Into::into),
        })
    }

    #[test]
    fn tls_is_checked_or_the_url_is_refused() {
        let var = "NTK_UNIT_REDIS_URL_TLS";
        let insecure = client_for(var, "rediss://127.0.0.1:6380/#insecure", None);
        assert!(insecure.is_err_and(|e| e.contains("#insecure")));
        let clear_with_ca = client_for(var, "redis://127.0.0.1:6379/", Some("ca.crt"));
        assert!(clear_with_ca.is_err_and(|e| e.starts_with("limits.redis_ca is set")));
        let missing = client_for(var, "rediss://127.0.0.1:6380/", Some("/nonexistent/ca.crt"));
        assert!(missing.is_err_and(|e| e.starts_with("limits.redis_ca: ")));
        let tls = client_for(var, "rediss://redis.example.org:6380/", None).expect("rediss");
        assert_eq!(clear_text_warning(&tls), None);
        let clear = client_for(var, "redis://redis.example.org:6379/", None).expect("redis");
        assert!(clear_text_warning(&clear).is_some());
        let local = client_for(var, "redis://127.0.0.1:6379/", None).expect("loopback");
        assert_eq!(clear_text_warning(&local), None);
    }

    #[test]
    fn a_replica_alone_takes_its_share_and_never_nothing() {
        let per = Duration::from_secs(60);
        assert_eq!(share(Rate { count: 60, per }, 3).count, 20);
        assert_eq!(share(Rate { count: 5, per }, 2).count, 2);
        assert_eq!(share(Rate { count: 1, per }, 4).count, 1);
        assert_eq!(share(Rate { count: 7, per }, 1).count, 7);
    }
}
