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

use crate::rules::diag::{line_of, Diagnostic};

/// Prefix of the environment overrides, as in `NEED_TO_KNOW__SERVER__LISTEN`.
pub const ENV_PREFIX: &str = "NEED_TO_KNOW";

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
    pub admin_listen: Option<SocketAddr>,
    pub limits: Limits,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    Required,
    Optional,
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
    path: PathBuf,
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
}

// === impl Settings ===

impl Settings {
    /// Reads `path`, applies the environment, and checks every value.
    ///
    /// # Errors
    ///
    /// Every problem found, each with the file and (where the file is at fault) the line.
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
        let raw: RawSettings = config::Config::builder()
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
            .map_err(|e| {
                Error(vec![Diagnostic::error(
                    path,
                    0,
                    format!("with environment overrides: {e}"),
                )])
            })?;
        Self::resolve(path, raw)
    }

    fn resolve(path: &Path, raw: RawSettings) -> Result<Settings, Error> {
        let base = path.parent().unwrap_or(Path::new(""));
        let at = |p: &Path| -> PathBuf {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let mut problems = Vec::new();
        let mut problem = |message: String| problems.push(Diagnostic::error(path, 0, message));

        let listen = parse_addr("server.listen", &raw.server.listen).unwrap_or_else(|e| {
            problem(e);
            SocketAddr::from(([127, 0, 0, 1], 0))
        });
        let header_read_timeout = parse_duration_or(
            "server.header_read_timeout",
            raw.server.header_read_timeout.as_deref(),
            "10s",
        )
        .unwrap_or_else(|e| {
            problem(e);
            Duration::from_secs(10)
        });
        let write_stall_timeout = parse_duration_or(
            "server.write_stall_timeout",
            raw.server.write_stall_timeout.as_deref(),
            "30s",
        )
        .unwrap_or_else(|e| {
            problem(e);
            Duration::from_secs(30)
        });
        let url = raw.upstream.url.parse::<http::Uri>().ok().filter(|u| {
            matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some()
        });
        let url = url.unwrap_or_else(|| {
            problem(format!(
                "upstream.url {:?} is not an http:// or https:// URL",
                redact_url(&raw.upstream.url)
            ));
            http::Uri::from_static("http://127.0.0.1/")
        });
        let timeout = parse_duration_or("upstream.timeout", raw.upstream.timeout.as_deref(), "10s")
            .unwrap_or_else(|e| {
                problem(e);
                Duration::from_secs(10)
            });
        let admin_listen = raw.admin.as_ref().and_then(|a| {
            parse_addr("admin.listen", &a.listen)
                .map_err(&mut problem)
                .ok()
        });
        let max_request_body = parse_size_or(
            "limits.max_request_body",
            raw.limits.max_request_body.as_deref(),
            "1MiB",
        )
        .unwrap_or_else(|e| {
            problem(e);
            0
        });
        let max_response_body = parse_size_or(
            "limits.max_response_body",
            raw.limits.max_response_body.as_deref(),
            "256MiB",
        )
        .unwrap_or_else(|e| {
            problem(e);
            0
        });
        let request_body_timeout = parse_duration_or(
            "limits.request_body_timeout",
            raw.limits.request_body_timeout.as_deref(),
            "10s",
        )
        .unwrap_or_else(|e| {
            problem(e);
            Duration::from_secs(10)
        });
        let max_depth = raw.limits.max_depth.unwrap_or(64);
        if max_depth == 0 || max_depth > 512 {
            problem(format!(
                "limits.max_depth {max_depth} must be between 1 and 512"
            ));
        }
        if let Some(name) = &raw.upstream.credential_env {
            if name.is_empty() {
                problem("upstream.credential_env is empty".to_string());
            }
        }
        if raw.rules.pseudonym_key_env.as_deref() == Some("") {
            problem("rules.pseudonym_key_env is empty".to_string());
        }
        if !problems.is_empty() {
            return Err(Error(problems));
        }
        Ok(Settings {
            source: path.to_path_buf(),
            server: Server {
                listen,
                tls: raw.server.tls.map(|t| Tls {
                    cert: at(&t.cert),
                    key: at(&t.key),
                    client_ca: t.client_ca.as_deref().map(at),
                    client_auth: t.client_auth.unwrap_or(ClientAuth::Required),
                    crl: t.crl.as_deref().map(at),
                }),
                insecure_plaintext: raw.server.insecure_plaintext,
                header_read_timeout,
                write_stall_timeout,
                max_connections: raw.server.max_connections.unwrap_or(4096),
            },
            upstream: Upstream {
                url,
                ca: raw.upstream.ca.as_deref().map(at),
                timeout,
                credential_env: raw.upstream.credential_env,
            },
            rules_dir: at(&raw.rules.dir),
            pseudonym_key_env: raw.rules.pseudonym_key_env,
            audit_path: at(&raw.audit.path),
            admin_listen,
            limits: Limits {
                max_request_body,
                max_response_body,
                max_depth,
                request_body_timeout,
            },
        })
    }
}

fn parse_addr(key: &str, text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("{key} {text:?} is not an address such as 127.0.0.1:8443"))
}

fn parse_duration_or(key: &str, text: Option<&str>, default: &str) -> Result<Duration, String> {
    let text = text.unwrap_or(default);
    humantime::parse_duration(text)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{key} {text:?} is not a duration such as \"10s\""))
}

fn parse_size_or(key: &str, text: Option<&str>, default: &str) -> Result<u64, String> {
    let text = text.unwrap_or(default);
    parse_size(text).ok_or_else(|| format!("{key} {text:?} is not a size such as \"1MiB\""))
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
