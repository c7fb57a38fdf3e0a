//! How the ledger is reached: the URL from the environment, reconciled with
//! `[audit.postgres] sslmode`, and the TLS connector that mode needs.
//!
//! The mode is decided once, at start, and never by the URL alone: a URL that names its own
//! `sslmode` must agree with the mode in effect, so a secret pasted from a hosting console
//! (often `sslmode=require`) cannot quietly weaken `verify-full`. Without `sslmode` in the
//! config the default follows the address: `disable` when every address the client connects
//! to is loopback ([`is_loopback`]), `verify-full` otherwise.

use std::net::IpAddr;

use tokio_postgres::config::{Host, SslMode as WireMode};
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::super::error::Error;

/// `[audit.postgres] sslmode`: libpq's names for the three modes offered. libpq's `prefer` and
/// `allow` fall back to clear text and `verify-ca` ignores the name, so they are not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Clear text: for a server on loopback (or a Unix socket), or behind a tunnel.
    Disable,
    /// TLS that encrypts but does not authenticate the server: anyone on the path who can
    /// answer in its place reads the records. `check` and `serve` warn of it.
    Require,
    /// TLS with the server's certificate checked against `ca` (or the platform's roots) and
    /// the host name in the URL.
    VerifyFull,
}

impl SslMode {
    pub const NAMES: &'static str = "\"disable\", \"require\" or \"verify-full\"";

    pub fn parse(text: &str) -> Option<SslMode> {
        match text {
            "disable" => Some(SslMode::Disable),
            "require" => Some(SslMode::Require),
            "verify-full" => Some(SslMode::VerifyFull),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Require => "require",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why no endpoint could be made, by the setting at fault (so `check` can place it).
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The URL itself (`url_env`).
    #[error("{0}")]
    Url(String),
    /// The URL's `sslmode` against the config's (`sslmode`).
    #[error("{0}")]
    Mode(String),
    /// The CA or the TLS configuration (`ca`).
    #[error("{0}")]
    Tls(String),
}

impl From<EndpointError> for Error {
    fn from(e: EndpointError) -> Error {
        Error::Postgres(e.to_string())
    }
}

/// A parsed URL with its mode decided and its TLS connector built. It holds the password:
/// `Debug` shows the mode only.
#[derive(Clone)]
pub struct Endpoint {
    config: tokio_postgres::Config,
    pub mode: SslMode,
    /// Every address the client connects to is loopback (see [`is_loopback`]).
    pub loopback: bool,
    tls: Option<MakeRustlsConnect>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("mode", &self.mode)
            .field("loopback", &self.loopback)
            .finish_non_exhaustive()
    }
}

// === impl Endpoint ===

impl Endpoint {
    /// Parses `url`, decides the mode (`configured`, else by address) and asks `tls` for the
    /// client config of a TLS mode: the rustls configs are built above this module.
    ///
    /// # Errors
    ///
    /// The URL does not parse, names an `sslmode` other than the one in effect, or `tls` fails.
    pub fn new(
        url: &str,
        configured: Option<SslMode>,
        tls: impl FnOnce(SslMode) -> Result<rustls::ClientConfig, String>,
    ) -> Result<Endpoint, EndpointError> {
        let (rest, named) = take_sslmode(url);
        let mut config: tokio_postgres::Config = rest
            .parse()
            .map_err(|e| EndpointError::Url(format!("the database URL is not valid: {e}")))?;
        // A form `take_sslmode` does not recognise (`sslmode = require`) still parsed: catch it.
        let named = named.or_else(|| match config.get_ssl_mode() {
            WireMode::Disable => Some("disable".to_owned()),
            WireMode::Require => Some("require".to_owned()),
            _ => None,
        });
        let loopback = is_loopback(&config);
        let mode = configured.unwrap_or(if loopback {
            SslMode::Disable
        } else {
            SslMode::VerifyFull
        });
        if let Some(named) = named.filter(|n| n != mode.as_str()) {
            let why = match configured {
                Some(_) => "audit.postgres.sslmode".to_owned(),
                None if loopback => "the default for a loopback host".to_owned(),
                None => "the default for a host that is not loopback".to_owned(),
            };
            return Err(EndpointError::Mode(format!(
                "the database URL says sslmode={named} but the mode in effect is {mode:?} ({why}): \
                 remove sslmode from the URL and set audit.postgres.sslmode",
                mode = mode.as_str()
            )));
        }
        config.ssl_mode(match mode {
            SslMode::Disable => WireMode::Disable,
            SslMode::Require | SslMode::VerifyFull => WireMode::Require,
        });
        let tls = match mode {
            SslMode::Disable => None,
            mode => Some(MakeRustlsConnect::new(
                tls(mode).map_err(EndpointError::Tls)?,
            )),
        };
        Ok(Endpoint {
            config,
            mode,
            loopback,
            tls,
        })
    }

    /// Connects and drives the connection on its own task. The error text of tokio-postgres
    /// names the failing step (a TLS one names the certificate problem) and the server's
    /// message, never the password.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the server cannot be reached or the handshake fails.
    pub async fn connect(&self, timeout: std::time::Duration) -> Result<Client, Error> {
        let mut config = self.config.clone();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(timeout);
        }
        let fail =
            |e: tokio_postgres::Error| Error::Postgres(format!("cannot connect: {}", chain(&e)));
        let client = match &self.tls {
            None => {
                let (client, connection) = config.connect(NoTls).await.map_err(fail)?;
                tokio::spawn(drive(connection));
                client
            }
            Some(tls) => {
                let (client, connection) = config.connect(tls.clone()).await.map_err(fail)?;
                tokio::spawn(drive(connection));
                client
            }
        };
        Ok(client)
    }
}

async fn drive<F: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: F) {
    if let Err(error) = connection.await {
        tracing::warn!(%error, "postgres connection closed");
    }
}

/// The error and its causes, `: `-separated: tokio-postgres' own text names only the step
/// ("error performing TLS handshake"), its cause says why ("invalid peer certificate: ...").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Loopback when every address the client will connect to is: each `hostaddr` when the URL
/// gives any (the host name is then only the name checked in the certificate), else each host
/// ([`is_loopback_host`], or a Unix-socket directory). A URL with no host is not loopback.
pub fn is_loopback(config: &tokio_postgres::Config) -> bool {
    let addrs = config.get_hostaddrs();
    if !addrs.is_empty() {
        return addrs.iter().all(IpAddr::is_loopback);
    }
    let hosts = config.get_hosts();
    !hosts.is_empty()
        && hosts.iter().all(|host| match host {
            Host::Tcp(name) => is_loopback_host(name),
            Host::Unix(_) => true,
        })
}

/// `localhost`, or an IP literal in 127.0.0.0/8 or `::1` (brackets allowed). No other name
/// counts, not even one that resolves to loopback today: the judgement is made from the text.
pub fn is_loopback_host(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost")
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The URL without its `sslmode`, and the value it named. Both forms tokio-postgres reads are
/// handled: a `postgres://` URL's query parameter, and a `sslmode=…` word of the key-value
/// form (outside quotes). Removed so that libpq's `verify-full` in a URL parses.
fn take_sslmode(url: &str) -> (String, Option<String>) {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if is_url {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_owned(), None);
        };
        let mut named = None;
        let kept: Vec<&str> = query
            .split('&')
            .filter(|param| match param.strip_prefix("sslmode=") {
                Some(value) => {
                    named = Some(value.to_owned());
                    false
                }
                None => true,
            })
            .collect();
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return (rest, named);
    }
    // Key-value form: words separated by whitespace outside single quotes.
    let mut named = None;
    let mut rest = String::with_capacity(url.len());
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    let bytes = url.as_bytes();
    for i in 0..=bytes.len() {
        let end_of_word = i == bytes.len() || (!quoted && bytes[i].is_ascii_whitespace());
        if end_of_word {
            let word = &url[start..i];
            match word.strip_prefix("sslmode=") {
                Some(value) => named = Some(value.trim_matches('\'').to_owned()),
                None => rest.push_str(word),
            }
            if i < bytes.len() {
                rest.push(char::from(bytes[i]));
            }
            start = i + 1;
            continue;
        }
        match bytes[i] {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'\'' => quoted = !quoted,
            _ => {}
        }
    }
    (rest, named)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifying(_: SslMode) -> Result<rustls::ClientConfig, String> {
        Ok(
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        )
    }

    fn mode_of(url: &str, configured: Option<SslMode>) -> Result<SslMode, String> {
        Endpoint::new(url, configured, verifying)
            .map(|e| e.mode)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_default_follows_the_address() {
        for url in [
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u@127.8.0.1/db",
            "postgres://u@localhost/db",
            "postgres://u@[::1]:5432/db",
            "host=/var/run/postgresql user=u",
            "postgres://u@db.example.org/db?hostaddr=127.0.0.1",
        ] {
            assert_eq!(mode_of(url, None), Ok(SslMode::Disable), "{url}");
        }
        for url in [
            "postgres://u@db.example.org/db",
            "postgres://u@10.0.0.5/db",
            "postgres://u@localhost.example.org/db",
            "postgres://u@localhost/db?hostaddr=10.1.2.3",
            "postgres://u@127.0.0.1,db.example.org/db",
            "user=u dbname=d",
        ] {
            assert_eq!(mode_of(url, None), Ok(SslMode::VerifyFull), "{url}");
        }
    }

    #[test]
    fn a_url_naming_its_own_mode_must_agree_with_the_one_in_effect() {
        let remote = "postgres://u:pw@db.example.org/db";
        let agree = format!("{remote}?sslmode=verify-full&application_name=x");
        assert_eq!(mode_of(&agree, None), Ok(SslMode::VerifyFull));
        let weaker = format!("{remote}?sslmode=require");
        let e = mode_of(&weaker, None).expect_err("a weaker mode in the URL");
        assert!(
            e.contains("sslmode=require") && e.contains("verify-full"),
            "{e}"
        );
        assert!(!e.contains("pw"), "the password leaked: {e}");
        assert_eq!(
            mode_of(&weaker, Some(SslMode::Require)),
            Ok(SslMode::Require)
        );
        let kv = "host=db.example.org sslmode = disable user=u";
        assert!(
            mode_of(kv, Some(SslMode::VerifyFull)).is_err(),
            "spaced form"
        );
        let kv = "host=db.example.org sslmode=verify-full password='a b'";
        assert_eq!(mode_of(kv, None), Ok(SslMode::VerifyFull));
        for libpq_only in ["prefer", "allow", "verify-ca"] {
            let url = format!("postgres://u@127.0.0.1/db?sslmode={libpq_only}");
            assert!(mode_of(&url, None).is_err(), "{libpq_only}");
        }
    }

    #[test]
    fn sslmode_is_taken_out_of_both_forms_and_nothing_else() {
        assert_eq!(
            take_sslmode("postgres://u@h/db?sslmode=verify-full"),
            (
                "postgres://u@h/db".to_owned(),
                Some("verify-full".to_owned())
            )
        );
        assert_eq!(
            take_sslmode("postgres://u@h/db?a=1&sslmode=disable&b=2"),
            (
                "postgres://u@h/db?a=1&b=2".to_owned(),
                Some("disable".to_owned())
            )
        );
        assert_eq!(
            take_sslmode("host=h password='x sslmode=disable'  user=u"),
            (
                "host=h password='x sslmode=disable'  user=u".to_owned(),
                None
            )
        );
        assert_eq!(
            take_sslmode("host=h sslmode=require user=u"),
            ("host=h  user=u".to_owned(), Some("require".to_owned()))
        );
    }
}
