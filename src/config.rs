//! The gateway's settings: `need-to-know.toml`, then `NEED_TO_KNOW__SECTION__KEY` overrides.
//!
//! The file is read twice on purpose. A plain `toml` parse first, so that a typo or a bad value
//! is reported with its line (`check` prints `FILE:LINE: message`); then the `config` crate
//! layers the environment over it, which is how container deployments set the listen address
//! or the audit path without editing the file. Unknown keys are errors: a misspelt setting must
//! never silently fall back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::audit::postgres::SslMode;
use crate::diag::{line_of, Diagnostic};
use crate::filter::cel::PseudonymKey;
use crate::rules::{self, Policy, Rate, Secrets};

mod origin;

pub use origin::Origin;
use origin::Origins;

/// Prefix of the environment overrides, as in `NEED_TO_KNOW__SERVER__LISTEN`.
pub const ENV_PREFIX: &str = "NEED_TO_KNOW";

/// What each optional setting is when neither the file nor the environment sets it: the one
/// place these values are written (the shipped `need-to-know.toml` and the README quote them).
mod defaults {
    use std::time::Duration;

    use super::UnauthenticatedLimits;
    use crate::rules::Rate;

    pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    pub const MAX_CONNECTIONS: usize = 4096;
    pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
    pub const MAX_REQUEST_BODY: u64 = 1 << 20;
    pub const MAX_RESPONSE_BODY: u64 = 256 << 20;
    pub const REQUEST_BODY_TIMEOUT: Duration = Duration::from_secs(10);
    /// Written once, where the JSON parser documents it.
    pub const MAX_DEPTH: usize = crate::json::DEFAULT_MAX_DEPTH;
    pub const STREAM_THRESHOLD: u64 = 1 << 20;
    pub const MAX_STREAMED_BODY: u64 = 4 << 30;
    pub const MAX_STREAM_ELEMENT: u64 = 1 << 20;
    pub const REPLICAS_HINT: u32 = 1;
    pub const REDIS_TIMEOUT: Duration = Duration::from_millis(100);
    pub const CHECKPOINT_EVERY: u64 = 1000;
    pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);
    /// 10 a second with a burst of 20 per address, a summary a minute: a client that lost
    /// its key retries well within it, a flood is recorded as one line a minute.
    pub const UNAUTHENTICATED: UnauthenticatedLimits = UnauthenticatedLimits {
        rate: Rate {
            count: 10,
            per: Duration::from_secs(1),
        },
        burst: 20,
        summary_interval: Duration::from_secs(60),
    };
}

/// Everything the gateway needs to start, with relative paths resolved against the directory
/// of the config file (so `serve --config /etc/need-to-know/need-to-know.toml` works from `/`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub source: PathBuf,
    pub server: Server,
    pub upstream: Upstream,
    pub rules_dir: PathBuf,
    /// The environment variable holding the key of `pseudonym()` in the rules, if any.
    pub pseudonym_key_env: Option<String>,
    pub audit_path: PathBuf,
    /// Signed checkpoints of the audit chain; `None` when `audit.checkpoint_key` is unset.
    pub audit_checkpoints: Option<crate::audit::checkpoint::Config>,
    /// Where the ledger lives: the file at `audit_path` (default) or PostgreSQL.
    pub audit_backend: AuditBackend,
    pub admin_listen: Option<SocketAddr>,
    pub limits: Limits,
    /// Who is answerable for the data: what the subject access report and the register say.
    pub controller: Option<Controller>,
    /// Where each setting was written, for problems found with it later.
    origins: Origins,
}

/// The data controller, as the subject access report and the register name it (UK GDPR
/// Art. 15(1) and 30(1)): plain text, shown as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Controller {
    /// The organisation: "Lincoln Homes Ltd".
    pub name: String,
    /// How a tenant reaches it: a postal address, an email address, a phone number.
    pub contact: String,
    /// How a tenant reaches its Data Protection Officer.
    pub dpo_contact: String,
    /// How long disclosure records are kept, in words: "six years after the tenancy ends".
    pub retention: String,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    pub tls: Option<Tls>,
    pub insecure_plaintext: bool,
    /// A client that has not sent its whole request head by then is cut off (slowloris).
    pub header_read_timeout: Duration,
    /// A response write that makes no progress for this long closes the connection (slow read).
    pub write_stall_timeout: Duration,
    /// A connection with no request under way for this long is closed: HTTP/2 has no other
    /// bound on a client that opens a connection, answers pings and asks for nothing.
    pub idle_timeout: Duration,
    /// Most connections served at once; further ones wait in the kernel's accept queue.
    pub max_connections: usize,
}

#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
    pub crl: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    #[default]
    Required,
    Optional,
}

/// `[audit] backend`: the JSONL file every replica owns, or one PostgreSQL ledger shared by
/// several replicas, one chain each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuditBackend {
    #[default]
    File,
    Postgres(AuditPostgres),
}

/// `[audit.postgres]`. The URL is not here: it holds a password, so it is only ever read from
/// the environment variable `url_env` names, at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPostgres {
    pub url_env: String,
    /// This replica's chain; two live replicas must never share one.
    pub chain: String,
    /// `sslmode`; `None`: decided from the URL's host ([`crate::audit::postgres::endpoint`]),
    /// or `verify-full` when `ca` is set.
    pub sslmode: Option<SslMode>,
    /// `ca`: the PEM file of the CA that signed the server's certificate (`verify-full`);
    /// without it the platform's roots.
    pub ca: Option<PathBuf>,
}

/// Default of `[audit.postgres] url_env`.
pub const DEFAULT_PG_URL_ENV: &str = "NEED_TO_KNOW_PG_URL";

impl AuditPostgres {
    /// The database URL from the environment; the error names the variable, never a value.
    ///
    /// # Errors
    ///
    /// The variable is unset (or not UTF-8).
    pub fn url(&self) -> Result<String, String> {
        std::env::var(&self.url_env).map_err(|_| {
            format!(
                "audit.backend is \"postgres\" but the environment variable {} (the database URL) is not set",
                self.url_env
            )
        })
    }
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub url: http::Uri,
    pub ca: Option<PathBuf>,
    /// Bounds the whole exchange: connect, request, response head and body.
    pub timeout: Duration,
    pub credential_env: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_request_body: u64,
    pub max_response_body: u64,
    /// Deepest nesting of objects and arrays accepted in an upstream body.
    pub max_depth: usize,
    /// A recipient's request body must arrive within this (slow-body attacks hold a
    /// connection otherwise); 408 beyond it.
    pub request_body_timeout: Duration,
    /// A response on a streaming route streams when its Content-Length is over this, or
    /// absent; below it the buffered path is cheaper (see [`crate::stream`]).
    pub stream_threshold: u64,
    /// The most a streamed response may carry from upstream; it is never held whole.
    pub max_streamed_body: u64,
    /// The largest one element of a streamed array may be: what streaming holds in memory.
    pub max_stream_element: u64,
    /// One rate budget per recipient for every replica, in Redis; `None`: per replica.
    pub shared: Option<SharedLimits>,
    /// The budget of refusals recorded one by one per client address before anyone is
    /// identified.
    pub unauthenticated: UnauthenticatedLimits,
}

/// `[limits] unauthenticated_rate`, `unauthenticated_burst`, `unauthenticated_summary_interval`:
/// how many refusals before identity (401, a bad Host) one client address may have recorded
/// one by one; beyond it they are answered as usual and counted in one summary record per
/// interval (see [`crate::limits::unidentified`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnauthenticatedLimits {
    pub rate: Rate,
    pub burst: u32,
    pub summary_interval: Duration,
}

/// `[limits] shared = "redis"`: the rate limits every replica shares.
#[derive(Debug, Clone)]
pub struct SharedLimits {
    /// The environment variable holding the Redis URL (and its password); the URL itself is
    /// never in the file, so it never reaches a log or `check`'s output.
    pub redis_url_env: String,
    pub on_error: OnRedisError,
    /// How many replicas share the budget: the local fallback allows `rate / replicas_hint`.
    pub replicas_hint: u32,
    /// Longest a Redis call may take before the request is decided by the fallback.
    pub timeout: Duration,
    /// `redis_ca`: the PEM file of the CA that signed a `rediss://` server's certificate;
    /// without it the platform's roots.
    pub redis_ca: Option<PathBuf>,
}

/// What a replica does while Redis cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRedisError {
    /// This replica's own limiter, at `rate / replicas_hint`.
    Local,
    /// 503 for every limited request until Redis answers again.
    Refuse,
}

/// The config could not be read or is wrong; `check` prints these as `FILE:LINE: message`.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct Error(pub Vec<Diagnostic>);

// === raw form, as written in the file ===

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    server: RawServer,
    upstream: RawUpstream,
    rules: RawRules,
    audit: RawAudit,
    admin: Option<RawAdmin>,
    #[serde(default)]
    limits: RawLimits,
    controller: Option<Controller>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: String,
    tls: Option<RawTls>,
    #[serde(default)]
    insecure_plaintext: bool,
    header_read_timeout: Option<String>,
    write_stall_timeout: Option<String>,
    idle_timeout: Option<String>,
    max_connections: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    client_auth: Option<ClientAuth>,
    crl: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    url: String,
    ca: Option<PathBuf>,
    timeout: Option<String>,
    credential_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    dir: PathBuf,
    pseudonym_key_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    /// Required with the file ledger; unused (and may be left out) with PostgreSQL.
    path: Option<PathBuf>,
    checkpoint_key: Option<PathBuf>,
    checkpoint_path: Option<PathBuf>,
    checkpoint_every: Option<u64>,
    checkpoint_interval: Option<String>,
    backend: Option<String>,
    postgres: Option<RawAuditPostgres>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuditPostgres {
    url_env: Option<String>,
    chain: Option<String>,
    sslmode: Option<String>,
    ca: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_request_body: Option<String>,
    max_response_body: Option<String>,
    max_depth: Option<usize>,
    request_body_timeout: Option<String>,
    shared: Option<String>,
    redis_url_env: Option<String>,
    on_redis_error: Option<String>,
    replicas_hint: Option<u32>,
    redis_timeout: Option<String>,
    redis_ca: Option<PathBuf>,
    stream_threshold: Option<String>,
    max_streamed_body: Option<String>,
    max_stream_element: Option<String>,
    unauthenticated_rate: Option<String>,
    unauthenticated_burst: Option<u32>,
    unauthenticated_summary_interval: Option<String>,
}

// === impl Settings ===

impl Settings {
    /// Reads `path`, applies the environment, and checks every value.
    ///
    /// # Errors
    ///
    /// Every problem found, each at the line of its key in the file, or at the environment
    /// variable that set it.
    pub fn load(path: &Path) -> Result<Settings, Error> {
        Self::load_with_env(path, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given (tests pass their own).
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error(vec![Diagnostic::error(
                path,
                0,
                format!("cannot read config: {e}"),
            )])
        })?;
        // First pass: the file alone, for errors with a line number.
        if let Err(e) = toml::from_str::<RawSettings>(&text) {
            let line = e.span().map(|s| line_of(&text, s.start)).unwrap_or(0);
            return Err(Error(vec![Diagnostic::error(
                path,
                line,
                e.message().to_string(),
            )]));
        }
        // Second pass: the file with the environment layered over it.
        let overrides: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        let origins = Origins::new(&text, ENV_PREFIX, overrides.keys());
        let layered = |overrides: config::Map<String, String>| -> Result<RawSettings, _> {
            config::Config::builder()
                .add_source(config::File::from_str(&text, config::FileFormat::Toml))
                .add_source(
                    config::Environment::with_prefix(ENV_PREFIX)
                        .prefix_separator("__")
                        .separator("__")
                        .try_parsing(true)
                        .source(Some(overrides)),
                )
                .build()
                .and_then(config::Config::try_deserialize)
        };
        let raw = layered(overrides.clone()).map_err(|e| {
            // The file alone deserialized, so overrides are at fault: layer each alone over
            // the file to name every variable that fails by itself.
            let message = |e: config::ConfigError| format!("with environment overrides: {e}");
            let mut vars: Vec<_> = overrides.iter().collect();
            vars.sort();
            let mut problems: Vec<Diagnostic> = vars
                .into_iter()
                .filter_map(|(var, value)| {
                    let alone = config::Map::from([(var.clone(), value.clone())]);
                    let e = layered(alone).err()?;
                    Some(Origin::Env(var.clone()).error(path, message(e)))
                })
                .collect();
            if problems.is_empty() {
                problems.push(Diagnostic::error(path, 0, message(e)));
            }
            Error(problems)
        })?;
        Self::resolve(path, raw, origins)
    }

    /// Where the setting `key` (dotted, as `limits.max_depth`) in effect was written: a
    /// problem found with it after loading (a file it names, a variable it names that is
    /// unset) is placed there.
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.of(key)
    }

    /// An error about the setting `key`, at its line or at the variable that set it.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> Diagnostic {
        self.origin(key).error(&self.source, message)
    }

    /// A warning about the setting `key`, at its line or at the variable that set it.
    pub fn warning_at(&self, key: &str, message: impl Into<String>) -> Diagnostic {
        self.origin(key).warning(&self.source, message)
    }

    /// Loads the rules these settings name, with the pseudonym key from the environment
    /// variable `rules.pseudonym_key_env` names (read here, once, never per request). It lives
    /// with the settings so that the rules know nothing of where their directory and secrets
    /// come from. This is `serve`'s loading: without the key, rules using `pseudonym()` fail.
    ///
    /// # Errors
    ///
    /// As [`Policy::load`]; also when the key is set but too short, or a rule uses
    /// `pseudonym()` and there is no key.
    pub fn load_policy(&self) -> Result<Policy, rules::Error> {
        Policy::load_with(&self.rules_dir, &self.secrets()?)
    }

    /// The rules as the commands that read them without serving them load them (`check`,
    /// `explain`, `test`, `diff`, `register`, `audit report`): they need the real key only to
    /// show the gateway's very pseudonyms. Without it, `pseudonym()` runs under a key made for
    /// this run, and the returned note, placed at `rules.pseudonym_key_env`, says so when a
    /// rule uses it: a warning for most, an error for `check`, since `serve` would refuse.
    ///
    /// # Errors
    ///
    /// As [`Settings::load_policy`], except for a missing key.
    pub fn load_policy_offline(&self) -> Result<(Policy, Option<String>), rules::Error> {
        let mut secrets = self.secrets()?;
        if secrets.pseudonym_key.is_some() {
            return Ok((Policy::load_with(&self.rules_dir, &secrets)?, None));
        }
        secrets.pseudonym_key = Some(throwaway_key().map_err(|message| {
            rules::Error(vec![self.error_at("rules.pseudonym_key_env", message)])
        })?);
        let policy = Policy::load_with(&self.rules_dir, &secrets)?;
        let note = uses_pseudonym(&policy).then(|| {
            let missing = match &self.pseudonym_key_env {
                Some(name) => format!("the environment variable {name} is not set"),
                None => "rules.pseudonym_key_env is not set".to_owned(),
            };
            format!(
                "{missing}: pseudonym() uses a throw-away key for this run, so its values differ \
                 from the gateway's (serve refuses to start without the key)"
            )
        });
        Ok((policy, note))
    }

    /// The secrets the rules may use, read from the environment.
    fn secrets(&self) -> Result<Secrets, rules::Error> {
        let mut secrets = Secrets {
            pseudonym_key: None,
            pseudonym_key_env: self.pseudonym_key_env.clone(),
        };
        if let Some(name) = &self.pseudonym_key_env {
            if let Some(value) = std::env::var_os(name).filter(|v| !v.is_empty()) {
                match PseudonymKey::new(value.as_encoded_bytes().to_vec()) {
                    Ok(key) => secrets.pseudonym_key = Some(key),
                    Err(e) => {
                        return Err(rules::Error(vec![self.error_at(
                            "rules.pseudonym_key_env",
                            format!("rules.pseudonym_key_env: environment variable {name}: {e}"),
                        )]))
                    }
                }
            }
        }
        Ok(secrets)
    }

    /// Plain HTTP is for loopback (a sidecar, the demo) unless the operator insists: without
    /// `[server.tls]` on any other address, tenant data would cross the network in clear.
    /// An error when `serve` must refuse to start, a warning when it serves plain HTTP (it
    /// logs it), nothing with TLS; `serve` and `check` both ask here. Placed at `listen`.
    pub fn plaintext(&self) -> Option<Diagnostic> {
        let server = &self.server;
        if server.tls.is_some() {
            return None;
        }
        let addr = server.listen;
        let (file, at) = (&self.source, self.origin("server.listen"));
        if addr.ip().is_loopback() {
            return Some(at.warning(
                file,
                format!("server.listen {addr}: serving plain HTTP without TLS ([server.tls] is not set)"),
            ));
        }
        if server.insecure_plaintext {
            return Some(at.warning(
                file,
                format!("server.listen {addr} is not a loopback address and [server.tls] is not set: serving tenant data in plain HTTP, as insecure_plaintext = true allows (only behind a TLS-terminating proxy)"),
            ));
        }
        Some(at.error(
            file,
            format!("server.listen {addr} is not a loopback address and [server.tls] is not set: refusing to serve tenant data in plain text (set insecure_plaintext = true only behind a TLS-terminating proxy)"),
        ))
    }

    fn resolve(path: &Path, raw: RawSettings, origins: Origins) -> Result<Settings, Error> {
        let base = path.parent().unwrap_or(Path::new(""));
        let at = |p: &Path| -> PathBuf {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let mut problems = Problems::default();

        let listen = parse_addr("server.listen", &raw.server.listen).unwrap_or_else(|p| {
            problems.push(p);
            SocketAddr::from(([127, 0, 0, 1], 0))
        });
        let server = &raw.server;
        let header_read_timeout = problems.take(parse_duration_or(
            "server.header_read_timeout",
            server.header_read_timeout.as_deref(),
            defaults::HEADER_READ_TIMEOUT,
        ));
        let idle_timeout = problems.take(parse_duration_or(
            "server.idle_timeout",
            server.idle_timeout.as_deref(),
            defaults::IDLE_TIMEOUT,
        ));
        let write_stall_timeout = problems.take(parse_duration_or(
            "server.write_stall_timeout",
            server.write_stall_timeout.as_deref(),
            defaults::WRITE_STALL_TIMEOUT,
        ));
        let url = raw.upstream.url.parse::<http::Uri>().ok().filter(|u| {
            matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some()
        });
        let url = problems.take(url.ok_or_else(|| {
            Problem::new(
                "upstream.url",
                format!(
                    "upstream.url {:?} is not an http:// or https:// URL",
                    redact_url(&raw.upstream.url)
                ),
            )
        }));
        let timeout = problems.take(parse_duration_or(
            "upstream.timeout",
            raw.upstream.timeout.as_deref(),
            defaults::UPSTREAM_TIMEOUT,
        ));
        let admin_listen = raw.admin.as_ref().and_then(|a| {
            parse_addr("admin.listen", &a.listen)
                .map_err(|p| problems.push(p))
                .ok()
        });
        let limits = &raw.limits;
        let max_request_body = problems.take(parse_size_or(
            "limits.max_request_body",
            limits.max_request_body.as_deref(),
            defaults::MAX_REQUEST_BODY,
        ));
        let max_response_body = problems.take(parse_size_or(
            "limits.max_response_body",
            limits.max_response_body.as_deref(),
            defaults::MAX_RESPONSE_BODY,
        ));
        let request_body_timeout = problems.take(parse_duration_or(
            "limits.request_body_timeout",
            limits.request_body_timeout.as_deref(),
            defaults::REQUEST_BODY_TIMEOUT,
        ));
        let stream_threshold = problems.take(parse_size_or(
            "limits.stream_threshold",
            limits.stream_threshold.as_deref(),
            defaults::STREAM_THRESHOLD,
        ));
        let max_streamed_body = problems.take(parse_size_or(
            "limits.max_streamed_body",
            limits.max_streamed_body.as_deref(),
            defaults::MAX_STREAMED_BODY,
        ));
        let max_stream_element = problems.take(parse_size_or(
            "limits.max_stream_element",
            limits.max_stream_element.as_deref(),
            defaults::MAX_STREAM_ELEMENT,
        ));
        if max_stream_element == 0 {
            problems.add(
                "limits.max_stream_element",
                "limits.max_stream_element must be more than 0",
            );
        }
        let max_depth = limits.max_depth.unwrap_or(defaults::MAX_DEPTH);
        if max_depth == 0 || max_depth > 512 {
            problems.add(
                "limits.max_depth",
                format!("limits.max_depth {max_depth} must be between 1 and 512"),
            );
        }
        let shared = problems.take(shared_limits(limits, at));
        let unauthenticated = problems.take(unauthenticated_limits(limits));
        if raw.upstream.credential_env.as_deref() == Some("") {
            problems.add(
                "upstream.credential_env",
                "upstream.credential_env is empty",
            );
        }
        if raw.rules.pseudonym_key_env.as_deref() == Some("") {
            problems.add(
                "rules.pseudonym_key_env",
                "rules.pseudonym_key_env is empty",
            );
        }
        let audit_path = raw.audit.path.as_deref().map(at).unwrap_or_default();
        let checkpoint_every = raw
            .audit
            .checkpoint_every
            .unwrap_or(defaults::CHECKPOINT_EVERY);
        if checkpoint_every == 0 {
            problems.add(
                "audit.checkpoint_every",
                "audit.checkpoint_every must be at least 1",
            );
        }
        let checkpoint_interval = problems.take(parse_duration_or(
            "audit.checkpoint_interval",
            raw.audit.checkpoint_interval.as_deref(),
            defaults::CHECKPOINT_INTERVAL,
        ));
        let audit_checkpoints = match raw.audit.checkpoint_key.as_deref() {
            Some(key) => Some(crate::audit::checkpoint::Config {
                key: at(key),
                path: raw.audit.checkpoint_path.as_deref().map_or_else(
                    || {
                        let mut p = audit_path.clone().into_os_string();
                        p.push(".checkpoints");
                        PathBuf::from(p)
                    },
                    at,
                ),
                every: checkpoint_every,
                interval: checkpoint_interval,
            }),
            None => {
                let set = [
                    ("checkpoint_path", raw.audit.checkpoint_path.is_some()),
                    ("checkpoint_every", raw.audit.checkpoint_every.is_some()),
                    (
                        "checkpoint_interval",
                        raw.audit.checkpoint_interval.is_some(),
                    ),
                ];
                // A checkpoint setting without a key would silently keep checkpoints off.
                for (key, _) in set.iter().filter(|(_, set)| *set) {
                    problems.add(
                        format!("audit.{key}"),
                        format!("audit.{key} is set but audit.checkpoint_key is not: checkpoints are off without a key"),
                    );
                }
                None
            }
        };
        let audit_backend = problems.take(audit_backend(&raw.audit, at));
        if matches!(audit_backend, AuditBackend::File) && raw.audit.path.is_none() {
            problems.add(
                "audit.path",
                "audit.path is required with the file ledger (audit.backend \"file\", the default)",
            );
        }
        if !problems.0.is_empty() {
            let placed = problems.0.into_iter();
            return Err(Error(
                placed
                    .map(|p| origins.of(&p.key).error(path, p.message))
                    .collect(),
            ));
        }
        Ok(Settings {
            source: path.to_path_buf(),
            server: Server {
                listen,
                tls: raw.server.tls.map(|t| Tls {
                    cert: at(&t.cert),
                    key: at(&t.key),
                    client_ca: t.client_ca.as_deref().map(at),
                    client_auth: t.client_auth.unwrap_or_default(),
                    crl: t.crl.as_deref().map(at),
                }),
                insecure_plaintext: raw.server.insecure_plaintext,
                header_read_timeout,
                write_stall_timeout,
                idle_timeout,
                max_connections: raw
                    .server
                    .max_connections
                    .unwrap_or(defaults::MAX_CONNECTIONS),
            },
            upstream: Upstream {
                url,
                ca: raw.upstream.ca.as_deref().map(at),
                timeout,
                credential_env: raw.upstream.credential_env,
            },
            rules_dir: at(&raw.rules.dir),
            pseudonym_key_env: raw.rules.pseudonym_key_env,
            audit_path,
            audit_checkpoints,
            audit_backend,
            admin_listen,
            controller: raw.controller,
            limits: Limits {
                max_request_body,
                max_response_body,
                max_depth,
                request_body_timeout,
                shared,
                unauthenticated,
                stream_threshold,
                max_streamed_body,
                max_stream_element,
            },
            origins,
        })
    }
}

// === problems found while resolving ===

/// A problem with one setting, by its dotted key: `resolve` places it at the key's line, or at
/// the environment variable that set it, once every value has been checked.
#[derive(Debug)]
struct Problem {
    key: String,
    message: String,
}

impl Problem {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Every problem found so far: `resolve` checks every value before it gives up.
#[derive(Debug, Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.push(Problem::new(key, message));
    }

    /// The value, or a placeholder that is never used: with any problem, `resolve` returns
    /// the problems instead of settings.
    fn take<T: Default>(&mut self, value: Result<T, Problem>) -> T {
        value.unwrap_or_else(|p| {
            self.push(p);
            T::default()
        })
    }
}

/// `[limits] shared`, `redis_url_env`, `on_redis_error`, `replicas_hint`, `redis_timeout`,
/// `redis_ca`.
///
/// A Redis key without `shared = "redis"` is an error, not ignored: it most likely means the
/// operator believes the limits are shared when they are not.
fn shared_limits(
    raw: &RawLimits,
    at: impl Fn(&Path) -> PathBuf,
) -> Result<Option<SharedLimits>, Problem> {
    match raw.shared.as_deref() {
        Some("redis") => {}
        Some(other) => {
            return Err(Problem::new(
                "limits.shared",
                format!(
                    "limits.shared {other:?} is not a shared limiter (the one there is: \"redis\")"
                ),
            ))
        }
        None => {
            let set = [
                ("redis_url_env", raw.redis_url_env.is_some()),
                ("on_redis_error", raw.on_redis_error.is_some()),
                ("replicas_hint", raw.replicas_hint.is_some()),
                ("redis_timeout", raw.redis_timeout.is_some()),
                ("redis_ca", raw.redis_ca.is_some()),
            ];
            return match set.iter().find(|(_, is_set)| *is_set) {
                Some((key, _)) => Err(Problem::new(
                    format!("limits.{key}"),
                    format!("limits.{key} is set but limits.shared is not \"redis\": the limits would stay per replica"),
                )),
                None => Ok(None),
            };
        }
    }
    let redis_url_env = match raw.redis_url_env.as_deref() {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => {
            return Err(Problem::new(
                "limits.redis_url_env",
                "limits.redis_url_env is required with limits.shared = \"redis\" (the name of the variable holding the URL)",
            ))
        }
    };
    let on_error = match raw.on_redis_error.as_deref() {
        None | Some("local") => OnRedisError::Local,
        Some("refuse") => OnRedisError::Refuse,
        Some(other) => {
            return Err(Problem::new(
                "limits.on_redis_error",
                format!("limits.on_redis_error {other:?} must be \"local\" or \"refuse\""),
            ))
        }
    };
    let replicas_hint = raw.replicas_hint.unwrap_or(defaults::REPLICAS_HINT);
    if replicas_hint == 0 {
        return Err(Problem::new(
            "limits.replicas_hint",
            "limits.replicas_hint must be at least 1",
        ));
    }
    let timeout = parse_duration_or(
        "limits.redis_timeout",
        raw.redis_timeout.as_deref(),
        defaults::REDIS_TIMEOUT,
    )?;
    Ok(Some(SharedLimits {
        redis_url_env,
        on_error,
        replicas_hint,
        timeout,
        redis_ca: raw.redis_ca.as_deref().map(at),
    }))
}

impl Default for UnauthenticatedLimits {
    fn default() -> Self {
        defaults::UNAUTHENTICATED
    }
}

fn unauthenticated_limits(raw: &RawLimits) -> Result<UnauthenticatedLimits, Problem> {
    let defaults = defaults::UNAUTHENTICATED;
    let rate = match raw.unauthenticated_rate.as_deref() {
        None => defaults.rate,
        Some(text) => Rate::parse(text).ok_or_else(|| {
            Problem::new(
                "limits.unauthenticated_rate",
                format!("limits.unauthenticated_rate {text:?} is not a rate such as \"10/s\""),
            )
        })?,
    };
    let burst = raw.unauthenticated_burst.unwrap_or(defaults.burst);
    if burst == 0 {
        return Err(Problem::new(
            "limits.unauthenticated_burst",
            "limits.unauthenticated_burst must be at least 1",
        ));
    }
    let summary_interval = parse_duration_or(
        "limits.unauthenticated_summary_interval",
        raw.unauthenticated_summary_interval.as_deref(),
        defaults.summary_interval,
    )?;
    Ok(UnauthenticatedLimits {
        rate,
        burst,
        summary_interval,
    })
}

fn audit_backend(raw: &RawAudit, at: impl Fn(&Path) -> PathBuf) -> Result<AuditBackend, Problem> {
    match raw.backend.as_deref() {
        None | Some("file") => {
            if raw.postgres.is_some() {
                return Err(Problem::new(
                    "audit.postgres",
                    "[audit.postgres] is set but audit.backend is not \"postgres\"",
                ));
            }
            Ok(AuditBackend::File)
        }
        Some("postgres") => {
            let pg = raw.postgres.as_ref();
            let url_env = pg
                .and_then(|p| p.url_env.clone())
                .unwrap_or_else(|| DEFAULT_PG_URL_ENV.to_string());
            if url_env.is_empty() {
                return Err(Problem::new(
                    "audit.postgres.url_env",
                    "audit.postgres.url_env is empty",
                ));
            }
            let chain = match pg.and_then(|p| p.chain.clone()) {
                Some(chain) => chain,
                None => host_name().ok_or(Problem::new(
                    "audit.postgres.chain",
                    "audit.postgres.chain is not set and the host name cannot be read; set it",
                ))?,
            };
            check_chain_name(&chain).map_err(|e| Problem::new("audit.postgres.chain", e))?;
            let sslmode = match pg.and_then(|p| p.sslmode.as_deref()) {
                None => None,
                Some(text) => Some(SslMode::parse(text).ok_or_else(|| {
                    Problem::new(
                        "audit.postgres.sslmode",
                        format!("audit.postgres.sslmode {text:?} must be {}", SslMode::NAMES),
                    )
                })?),
            };
            let ca = pg.and_then(|p| p.ca.as_deref()).map(at);
            if let (Some(_), Some(mode @ (SslMode::Disable | SslMode::Require))) = (&ca, sslmode) {
                return Err(Problem::new(
                    "audit.postgres.ca",
                    format!("audit.postgres.ca is set but audit.postgres.sslmode is {:?}, which checks no certificate: set sslmode = \"verify-full\"", mode.as_str()),
                ));
            }
            Ok(AuditBackend::Postgres(AuditPostgres {
                url_env,
                chain,
                sslmode,
                ca,
            }))
        }
        Some(other) => Err(Problem::new(
            "audit.backend",
            format!("audit.backend {other:?} is not \"file\" or \"postgres\""),
        )),
    }
}

/// A chain name is printed by the DPO tools and used in `--chain`: keep it to a plain token.
pub fn check_chain_name(chain: &str) -> Result<(), String> {
    let plain = chain
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if chain.is_empty() || chain.len() > 128 || !plain {
        return Err(format!(
            "audit.postgres.chain {chain:?} must be 1 to 128 letters, digits, '.', '-' or '_'"
        ));
    }
    Ok(())
}

/// The host name, the default chain: one per replica, as a pod or VM name is.
fn host_name() -> Option<String> {
    let from_kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    from_kernel
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

fn parse_addr(key: &str, text: &str) -> Result<SocketAddr, Problem> {
    text.parse().map_err(|_| {
        Problem::new(
            key,
            format!("{key} {text:?} is not an address such as 127.0.0.1:8443"),
        )
    })
}

fn parse_duration_or(
    key: &str,
    text: Option<&str>,
    default: Duration,
) -> Result<Duration, Problem> {
    let Some(text) = text else {
        return Ok(default);
    };
    humantime::parse_duration(text)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Problem::new(
                key,
                format!("{key} {text:?} is not a duration such as \"10s\""),
            )
        })
}

fn parse_size_or(key: &str, text: Option<&str>, default: u64) -> Result<u64, Problem> {
    let Some(text) = text else {
        return Ok(default);
    };
    parse_size(text).ok_or_else(|| {
        Problem::new(
            key,
            format!("{key} {text:?} is not a size such as \"1MiB\""),
        )
    })
}

/// Parses `512`, `64KiB`, `1MiB`, `2GiB` (and the decimal `KB`, `MB`, `GB`).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// A URL as it may appear in a message: any user information (a password) is removed.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) if !host.contains('/') || rest.find('@') < rest.find('/') => {
                format!("{scheme}://***@{host}")
            }
            _ => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// A pseudonym key for one run of an offline command, from the operating system's random
/// source: never written anywhere, so nothing made with it can be joined with anything else.
/// One per process, so that `diff`'s old and new rules give the same pseudonyms.
fn throwaway_key() -> Result<PseudonymKey, String> {
    static KEY: std::sync::OnceLock<Result<PseudonymKey, String>> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        use ring::rand::SecureRandom;
        let mut bytes = vec![0u8; crate::filter::cel::MIN_KEY_BYTES];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| "the operating system's random source failed".to_owned())?;
        PseudonymKey::new(bytes)
    })
    .clone()
}

/// Whether any rule of `policy` calls `pseudonym()`: a condition, derived value, binding,
/// require or lookup placeholder.
fn uses_pseudonym(policy: &Policy) -> bool {
    policy.types().flat_map(|t| &t.routes).any(|route| {
        if route.plan.lookups().iter().any(|l| l.uses_pseudonym()) {
            return true;
        }
        let c = route.plan.conditions();
        let requires = route
            .plan
            .write()
            .map(|w| w.require.as_slice())
            .unwrap_or_default();
        c.when()
            .iter()
            .map(|w| &w.condition)
            .chain(c.items().iter().map(|i| &i.keep))
            .chain(c.derive().iter().map(|d| &d.value))
            .chain(c.refuse().map(|r| &r.condition))
            .chain(route.bind.iter().map(|b| &b.value))
            .chain(requires.iter().map(|r| &r.condition))
            .any(|e| e.uses().pseudonym)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("need-to-know.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    const MINIMAL: &str = r#"
[server]
listen = "127.0.0.1:8443"
[upstream]
url = "http://127.0.0.1:8080/api"
[rules]
dir = "rules"
[audit]
path = "var/audit.jsonl"
"#;

    /// Without the key, an offline load says so whichever rule calls `pseudonym()`: here only
    /// a binding does, which `serve` would refuse to load without the key.
    #[test]
    fn a_pseudonym_in_a_binding_alone_is_noted_when_there_is_no_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::test_util::write_rules(
            &dir.path().join("rules"),
            "[[route]]\nmethod = \"GET\"\npath = \"/jobs\"\nsubjects = [\"[].id\"]\nallow = [\"[].id\"]\n\n[[route.bind]]\nparam = \"query.who\"\nvalue = \"pseudonym(recipient.id)\"\n",
        );
        let text = MINIMAL.replace(
            "dir = \"rules\"",
            "dir = \"rules\"\npseudonym_key_env = \"NTK_TEST_NEVER_SET_PSEUDONYM_KEY\"",
        );
        let s = Settings::load_with_env(&write(dir.path(), &text), []).expect("loads");
        assert!(
            s.load_policy().is_err(),
            "serve's loading refuses without the key"
        );
        let (_, note) = s.load_policy_offline().expect("offline loading runs");
        assert!(note.is_some_and(|n| n.contains("throw-away key")));
    }

    #[test]
    fn defaults_and_relative_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Settings::load_with_env(&write(dir.path(), MINIMAL), []).expect("loads");
        assert_eq!(s.rules_dir, dir.path().join("rules"));
        assert_eq!(s.limits.max_response_body, 256 << 20);
        assert_eq!(s.limits.max_depth, 64);
        assert_eq!(s.upstream.timeout, Duration::from_secs(10));
    }

    #[test]
    fn audit_backend_is_the_file_unless_postgres_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Settings::load_with_env(&write(dir.path(), MINIMAL), []).expect("loads");
        assert_eq!(s.audit_backend, AuditBackend::File);

        let text = format!("{MINIMAL}backend = \"postgres\"\n[audit.postgres]\nchain = \"gw-1\"\n");
        let s = Settings::load_with_env(&write(dir.path(), &text), []).expect("loads");
        let want = AuditPostgres {
            url_env: DEFAULT_PG_URL_ENV.into(),
            chain: "gw-1".into(),
            sslmode: None,
            ca: None,
        };
        assert_eq!(s.audit_backend, AuditBackend::Postgres(want));

        // The chain from the environment, as a replica's manifest sets it.
        let env = [
            (
                "NEED_TO_KNOW__AUDIT__BACKEND".to_string(),
                "postgres".to_string(),
            ),
            (
                "NEED_TO_KNOW__AUDIT__POSTGRES__CHAIN".to_string(),
                "pod-2".to_string(),
            ),
        ];
        let s = Settings::load_with_env(&write(dir.path(), MINIMAL), env).expect("loads");
        assert!(matches!(s.audit_backend, AuditBackend::Postgres(p) if p.chain == "pod-2"));
    }

    #[test]
    fn bad_audit_backend_settings_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (extra, want) in [
            ("backend = \"sqlite\"\n", "audit.backend \"sqlite\" is not"),
            (
                "backend = \"postgres\"\n[audit.postgres]\nchain = \"a b\"\n",
                "audit.postgres.chain \"a b\" must be",
            ),
            (
                "backend = \"postgres\"\n[audit.postgres]\nurl_env = \"\"\n",
                "audit.postgres.url_env is empty",
            ),
            (
                "[audit.postgres]\nchain = \"a\"\n",
                "audit.backend is not \"postgres\"",
            ),
            (
                "backend = \"postgres\"\n[audit.postgres]\nurl = \"x\"\n",
                "unknown field",
            ),
        ] {
            let text = format!("{MINIMAL}{extra}");
            let e = Settings::load_with_env(&write(dir.path(), &text), []).expect_err(extra);
            assert!(e.to_string().contains(want), "{extra}: {e}");
        }
    }

    #[test]
    fn postgres_tls_settings_are_read_and_misuse_is_placed_at_its_key() {
        let pg = "backend = \"postgres\"\n[audit.postgres]\nchain = \"a\"\n";
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!("{MINIMAL}{pg}sslmode = \"verify-full\"\nca = \"certs/db-ca.crt\"\n");
        let path = write(dir.path(), &text);
        let s = Settings::load_with_env(&path, []).expect("loads");
        let AuditBackend::Postgres(p) = s.audit_backend else {
            panic!("postgres")
        };
        assert_eq!(p.sslmode, Some(SslMode::VerifyFull));
        assert_eq!(p.ca, Some(dir.path().join("certs/db-ca.crt")));

        let unknown = problems(&format!("{MINIMAL}{pg}sslmode = \"verify-ca\"\n"), &[]);
        assert_eq!(
            unknown,
            [format!(
                "FILE:13: audit.postgres.sslmode \"verify-ca\" must be {}",
                SslMode::NAMES
            )]
        );
        let unchecked = problems(
            &format!("{MINIMAL}{pg}sslmode = \"require\"\nca = \"ca.crt\"\n"),
            &[],
        );
        assert_eq!(unchecked.len(), 1, "{unchecked:?}");
        assert!(
            unchecked[0].starts_with("FILE:14: audit.postgres.ca is set but"),
            "{unchecked:?}"
        );
    }

    #[test]
    fn environment_overrides_a_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = [(
            "NEED_TO_KNOW__SERVER__LISTEN".to_string(),
            "127.0.0.1:9999".to_string(),
        )];
        let s = Settings::load_with_env(&write(dir.path(), MINIMAL), env).expect("loads");
        assert_eq!(s.server.listen.port(), 9999);
    }

    #[test]
    fn unknown_key_names_its_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = MINIMAL.replace("dir = \"rules\"", "dir = \"rules\"\ndirr = \"x\"");
        let err = Settings::load_with_env(&write(dir.path(), &text), []).expect_err("unknown key");
        let d = &err.0[0];
        assert_eq!(d.line, 8, "{d}");
        assert!(d.message.contains("dirr"), "{d}");
    }

    /// The problems `load_with_env` finds in `text` with `env`, as `check` prints them.
    fn problems(text: &str, env: &[(&str, &str)]) -> Vec<String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), text);
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let err = Settings::load_with_env(&path, env).expect_err("a problem");
        let file = format!("{}:", path.display());
        err.0
            .iter()
            .map(|d| d.to_string().replace(&file, "FILE:"))
            .collect()
    }

    #[test]
    fn each_problem_is_at_the_line_of_its_key() {
        // MINIMAL ends at line 9; [limits] is line 10.
        let text = format!("{MINIMAL}[limits]\nmax_request_body = \"1 lot\"\nmax_depth = 0\n");
        assert_eq!(
            problems(&text, &[]),
            [
                "FILE:11: limits.max_request_body \"1 lot\" is not a size such as \"1MiB\"",
                "FILE:12: limits.max_depth 0 must be between 1 and 512",
            ]
        );
        let text = MINIMAL.replace("listen = \"127.0.0.1:8443\"", "listen = \"localhost\"");
        assert_eq!(
            problems(&text, &[]),
            ["FILE:3: server.listen \"localhost\" is not an address such as 127.0.0.1:8443"]
        );
    }

    #[test]
    fn a_key_that_is_left_out_is_placed_at_its_table() {
        let text = format!("{MINIMAL}[limits]\nshared = \"redis\"\n");
        let redis = problems(&text, &[]);
        assert_eq!(redis.len(), 1, "{redis:?}");
        assert!(
            redis[0].starts_with("FILE:10: limits.redis_url_env is required"),
            "{redis:?}"
        );
        let text = MINIMAL.replace("path = \"var/audit.jsonl\"\n", "");
        let audit = problems(&text, &[]);
        assert!(
            audit[0].starts_with("FILE:8: audit.path is required"),
            "{audit:?}"
        );
    }

    #[test]
    fn a_problem_from_an_override_names_its_variable() {
        let text = format!("{MINIMAL}[limits]\nmax_depth = 5\n");
        let env = [("NEED_TO_KNOW__LIMITS__MAX_DEPTH", "0")];
        assert_eq!(
            problems(&text, &env),
            ["NEED_TO_KNOW__LIMITS__MAX_DEPTH: limits.max_depth 0 must be between 1 and 512"]
        );
        // Values the file's types refuse, and a key that does not exist: each variable named.
        let env = [
            ("NEED_TO_KNOW__SERVER__INSECURE_PLAINTEXT", "maybe"),
            ("NEED_TO_KNOW__LIMITS__MAX_DEPTHH", "1"),
            ("NEED_TO_KNOW__SERVER__LISTEN", "127.0.0.1:9"),
        ];
        let found = problems(&text, &env);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("NEED_TO_KNOW__LIMITS__MAX_DEPTHH: with environment overrides: unknown field `max_depthh`"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("NEED_TO_KNOW__SERVER__INSECURE_PLAINTEXT: with environment overrides: invalid type"),
            "{found:?}"
        );
    }

    #[test]
    fn defaults_fill_what_the_file_leaves_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Settings::load_with_env(&write(dir.path(), MINIMAL), []).expect("loads");
        assert_eq!(s.server.header_read_timeout, defaults::HEADER_READ_TIMEOUT);
        assert_eq!(s.server.max_connections, defaults::MAX_CONNECTIONS);
        assert_eq!(s.limits.max_request_body, defaults::MAX_REQUEST_BODY);
        assert_eq!(s.limits.max_streamed_body, 4 << 30);
        assert_eq!(s.limits.unauthenticated, defaults::UNAUTHENTICATED);
        assert_eq!(s.audit_backend, AuditBackend::File);
    }

    #[test]
    fn checkpoints_default_next_to_the_audit_file_and_need_a_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Settings::load_with_env(&write(dir.path(), MINIMAL), []).expect("loads");
        assert!(s.audit_checkpoints.is_none());
        let text = MINIMAL.replace(
            "path = \"var/audit.jsonl\"",
            "path = \"var/audit.jsonl\"\ncheckpoint_key = \"keys/checkpoint.key\"\ncheckpoint_every = 10",
        );
        let s = Settings::load_with_env(&write(dir.path(), &text), []).expect("loads");
        let c = s.audit_checkpoints.expect("on");
        assert_eq!(c.path, dir.path().join("var/audit.jsonl.checkpoints"));
        assert_eq!(c.key, dir.path().join("keys/checkpoint.key"));
        assert_eq!((c.every, c.interval), (10, Duration::from_secs(10)));
        let text = MINIMAL.replace(
            "path = \"var/audit.jsonl\"",
            "path = \"var/audit.jsonl\"\ncheckpoint_every = 0",
        );
        let e = Settings::load_with_env(&write(dir.path(), &text), []).expect_err("no key");
        assert!(e.to_string().contains("checkpoint_key is not"), "{e}");
    }

    #[test]
    fn audit_path_is_required_for_the_file_ledger_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let without_path = MINIMAL.replace("path = \"var/audit.jsonl\"\n", "");
        assert_ne!(without_path, MINIMAL);
        let e = Settings::load_with_env(&write(dir.path(), &without_path), []).expect_err("file");
        assert!(e.to_string().contains("audit.path is required"), "{e}");
        let pg = without_path.replace(
            "[audit]\n",
            "[audit]\nbackend = \"postgres\"\n[audit.postgres]\nchain = \"gw-1\"\n",
        );
        let s = Settings::load_with_env(&write(dir.path(), &pg), []).expect("postgres");
        assert!(matches!(s.audit_backend, AuditBackend::Postgres(_)));
    }

    #[test]
    fn shared_limits_need_a_url_variable_and_known_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let load = |limits: &str| {
            let text = format!("{MINIMAL}[limits]\n{limits}\n");
            Settings::load_with_env(&write(dir.path(), &text), [])
        };
        let s =
            load("shared = \"redis\"\nredis_url_env = \"R\"\nreplicas_hint = 3").expect("loads");
        let shared = s.limits.shared.expect("shared");
        assert_eq!(shared.redis_url_env, "R");
        assert_eq!(shared.on_error, OnRedisError::Local);
        assert_eq!(shared.replicas_hint, 3);
        assert_eq!(shared.timeout, Duration::from_millis(100));
        assert_eq!(shared.redis_ca, None);
        let s = load("shared = \"redis\"\nredis_url_env = \"R\"\nredis_ca = \"ca.crt\"")
            .expect("loads");
        let shared = s.limits.shared.expect("shared");
        assert_eq!(shared.redis_ca, Some(dir.path().join("ca.crt")));
        assert!(load("").expect("loads").limits.shared.is_none());
        for (bad, says) in [
            ("shared = \"redis\"", "redis_url_env is required"),
            ("shared = \"memcached\"", "not a shared limiter"),
            ("redis_url_env = \"R\"", "limits.shared is not"),
            (
                "redis_ca = \"ca.crt\"",
                "limits.redis_ca is set but limits.shared",
            ),
            (
                "shared = \"redis\"\nredis_url_env = \"R\"\non_redis_error = \"ignore\"",
                "on_redis_error",
            ),
            (
                "shared = \"redis\"\nredis_url_env = \"R\"\nreplicas_hint = 0",
                "replicas_hint",
            ),
        ] {
            let err = load(bad).expect_err(bad).to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn plaintext_is_refused_off_loopback_at_the_line_of_listen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let load = |text: &str, env: Vec<(String, String)>| {
            Settings::load_with_env(&write(dir.path(), text), env).expect("loads")
        };
        // Loopback: served, with a warning.
        let d = load(MINIMAL, vec![]).plaintext().expect("a warning");
        assert!(!d.is_error(), "{d}");
        assert_eq!(d.line, 3, "{d}");
        // Any other address: refused, at the line of listen.
        let open = MINIMAL.replace("127.0.0.1:8443", "0.0.0.0:8443");
        let d = load(&open, vec![]).plaintext().expect("an error");
        assert!(d.is_error(), "{d}");
        assert_eq!(d.line, 3, "{d}");
        assert!(d.message.contains("not a loopback address"), "{d}");
        // Insisted on: served, with a warning.
        let insisted = open.replace("[upstream]", "insecure_plaintext = true\n[upstream]");
        let d = load(&insisted, vec![]).plaintext().expect("a warning");
        assert!(!d.is_error(), "{d}");
        // An address from the environment is not the file's line.
        let env = vec![(
            "NEED_TO_KNOW__SERVER__LISTEN".to_string(),
            "[::]:8443".to_string(),
        )];
        let d = load(MINIMAL, env).plaintext().expect("an error");
        assert!(d.is_error(), "{d}");
        assert_eq!(d.file, Path::new("NEED_TO_KNOW__SERVER__LISTEN"), "{d}");
        assert_eq!(d.line, 0, "{d}");
        // With TLS there is nothing to say.
        let tls = MINIMAL.replace(
            "[upstream]",
            "[server.tls]\ncert = \"c\"\nkey = \"k\"\n[upstream]",
        );
        assert!(load(&tls, vec![]).plaintext().is_none());
    }

    #[test]
    fn the_unauthenticated_budget_has_defaults_and_checked_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let load = |limits: &str| {
            let text = format!("{MINIMAL}[limits]\n{limits}\n");
            Settings::load_with_env(&write(dir.path(), &text), [])
        };
        let s = load("").expect("loads");
        assert_eq!(s.limits.unauthenticated, UnauthenticatedLimits::default());
        let s = load(
            "unauthenticated_rate = \"2/min\"\nunauthenticated_burst = 3\n\
             unauthenticated_summary_interval = \"1s\"",
        )
        .expect("loads");
        let u = s.limits.unauthenticated;
        assert_eq!((u.rate.count, u.rate.per), (2, Duration::from_secs(60)));
        assert_eq!(u.burst, 3);
        assert_eq!(u.summary_interval, Duration::from_secs(1));
        for (bad, says) in [
            ("unauthenticated_rate = \"fast\"", "unauthenticated_rate"),
            ("unauthenticated_burst = 0", "unauthenticated_burst"),
            (
                "unauthenticated_summary_interval = \"0s\"",
                "unauthenticated_summary_interval",
            ),
        ] {
            let err = load(bad).expect_err(bad).to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("1 GiB"), Some(1 << 30));
        assert_eq!(parse_size("1XB"), None);
        assert_eq!(parse_size("MiB"), None);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("https://u:pw@host/x"), "https://***@host/x");
        assert_eq!(redact_url("http://host/x"), "http://host/x");
    }
}
