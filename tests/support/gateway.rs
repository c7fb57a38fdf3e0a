//! The real gateway, in process, on 127.0.0.1 with an OS-chosen port.
//!
//! Each test writes its own rules into a temporary directory, so tests never share state.
//! The gateway is assembled from the same library parts `serve` uses: config loaded from a
//! file, rules from a directory, the audit file, the upstream client and the server loop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use need_to_know::audit::AuditLog;
use need_to_know::config::Settings;
use need_to_know::pipeline::Gateway as Pipeline;
use need_to_know::server;
use need_to_know::upstream::Upstream;
use rustls::pki_types::pem::PemObject;
use tokio::sync::oneshot;

use crate::support::upstream::Listening;

/// A repairs-contractor type like the example in `docs/rules.md`, without conditions.
pub const REPAIRS_TYPE: &str = include_str!("../fixtures/gateway/types/repairs-contractor.toml");

/// [`REPAIRS_TYPE`] with `line` added to its head after the lawful basis: a setting of the
/// whole type, such as `rate_limit = "3/min"`.
pub fn repairs_type_with(line: &str) -> String {
    REPAIRS_TYPE.replacen(
        "lawful_basis = \"contract\"\n",
        &format!("lawful_basis = \"contract\"\n{line}\n"),
        1,
    )
}

/// Builds a gateway: rules, keys and config, then [`Builder::start`].
pub struct Builder {
    upstream: String,
    types: Vec<(String, String)>,
    recipients: Vec<(String, String, String)>,
    /// `[recipient.attributes]` lines, by recipient id.
    attributes: Vec<(String, String)>,
    extra_config: String,
    extra_limits: String,
    audit_path: Option<PathBuf>,
    env: Vec<(String, String)>,
    tls: Option<TlsSetup>,
    shipped: bool,
}

/// How the gateway's TLS is set up: the test's own CAs, made fresh per run.
#[derive(Clone, Copy)]
pub enum TlsSetup {
    /// Server TLS only; identity by API key.
    ServerOnly,
    /// Client certificates verified against the recipients' CA, `required` or `optional`.
    Mutual(&'static str),
}

/// The certificates a TLS test gateway was made with.
pub struct Certs {
    pub gateway_ca_pem: String,
    /// (recipient id, cert PEM, key PEM), issued by the recipients' CA.
    pub clients: Vec<(String, String, String)>,
    pub recipients_ca: need_to_know::certs::Authority,
}

/// A running gateway; dropping it stops the server.
pub struct Gateway {
    pub addr: SocketAddr,
    /// `/healthz`, `/readyz`, `/metrics`.
    pub admin_addr: SocketAddr,
    pub pipeline: Arc<Pipeline>,
    pub rules_dir: PathBuf,
    pub settings: Settings,
    pub audit_path: PathBuf,
    pub dir: tempfile::TempDir,
    keys: Vec<(String, String)>,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
    audit: AuditLog,
    pub certs: Option<Certs>,
}

impl Builder {
    /// A gateway in front of `upstream_url` with the repairs type and two contractors,
    /// `acme-repairs` and `brightfix`.
    pub fn new(upstream_url: &str) -> Builder {
        Builder {
            upstream: upstream_url.to_string(),
            types: vec![("repairs-contractor".into(), REPAIRS_TYPE.into())],
            recipients: vec![
                (
                    "acme-repairs".into(),
                    "ACME Repairs Ltd".into(),
                    "repairs-contractor".into(),
                ),
                (
                    "brightfix".into(),
                    "BrightFix Ltd".into(),
                    "repairs-contractor".into(),
                ),
            ],
            attributes: Vec::new(),
            extra_config: String::new(),
            extra_limits: String::new(),
            audit_path: None,
            env: Vec::new(),
            tls: None,
            shipped: false,
        }
    }

    /// A gateway in front of the fake upstream `up`, which serves the records under `/api`.
    pub fn before(up: &Listening) -> Builder {
        Builder::new(&format!("{}/api", up.url()))
    }

    /// A gateway whose upstream is a port that is (almost certainly) closed: a listener was
    /// bound there and dropped.
    pub fn closed_upstream() -> Builder {
        Builder::new(&format!(
            "http://127.0.0.1:{}/api",
            crate::support::free_port()
        ))
    }

    /// Serves a copy of the repository's own `rules/` (recipients with their development
    /// keys, `dev-<id>-key`), with a pseudonym key, as `demo` does.
    pub fn shipped_rules(mut self) -> Builder {
        self.shipped = true;
        self
    }

    /// Serves TLS with certificates made for this run. Under [`TlsSetup::Mutual`],
    /// `acme-repairs` is identified by its certificate's DNS SAN and `brightfix` by its
    /// certificate's SHA-256; both keep their API keys too.
    pub fn tls(mut self, setup: TlsSetup) -> Builder {
        self.tls = Some(setup);
        self
    }

    /// Replaces (or adds) the type file `types/<name>.toml`.
    pub fn kind(mut self, name: &str, text: &str) -> Builder {
        self.types.retain(|(n, _)| n != name);
        self.types.push((name.into(), text.into()));
        self
    }

    /// Adds the type file `types/<kind>.toml` holding `text`, and recipient `id` of that type.
    pub fn recipient_of(self, id: &str, kind: &str, text: &str) -> Builder {
        self.kind(kind, text).recipient(id, kind)
    }

    pub fn recipient(mut self, id: &str, kind: &str) -> Builder {
        self.recipients.push((id.into(), id.into(), kind.into()));
        self
    }

    /// Gives recipient `id` the attributes `text` (TOML lines such as `code = "KBS"`).
    pub fn attributes(mut self, id: &str, text: &str) -> Builder {
        self.attributes.push((id.into(), text.into()));
        self
    }

    /// TOML appended to the `[upstream]` table's section, e.g. `credential_env = "X"`.
    pub fn config(mut self, text: &str) -> Builder {
        self.extra_config.push_str(text);
        self.extra_config.push('\n');
        self
    }

    /// Adds lines to the `[limits]` section, e.g. `stream_threshold = "64KiB"`; a key set
    /// here must not be one the builder sets already.
    pub fn limits(mut self, text: &str) -> Builder {
        self.extra_limits.push_str(text);
        self.extra_limits.push('\n');
        self
    }

    pub fn audit_path(mut self, path: &Path) -> Builder {
        self.audit_path = Some(path.to_path_buf());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Builder {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Writes the files into a fresh temporary directory; returns it with the config path
    /// and the API keys made for each recipient.
    pub fn write(&self) -> (tempfile::TempDir, PathBuf, Vec<(String, String)>) {
        let (dir, config, keys, _) = self.write_all();
        (dir, config, keys)
    }

    fn write_all(
        &self,
    ) -> (
        tempfile::TempDir,
        PathBuf,
        Vec<(String, String)>,
        Option<Certs>,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (certs, tls_config) = self.make_certs(dir.path());
        let rules = dir.path().join("rules");
        if self.shipped {
            return self.write_shipped(dir, certs);
        }
        std::fs::create_dir_all(rules.join("types")).expect("rules dir");
        // The shipped glossary names the fields of the sample records, so the ledger does.
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/glossary.toml"),
            rules.join("glossary.toml"),
        )
        .expect("glossary");
        for (name, text) in &self.types {
            std::fs::write(rules.join("types").join(format!("{name}.toml")), text).expect("type");
        }
        let mut keys = Vec::new();
        let mut recipients = String::new();
        for (id, name, kind) in &self.recipients {
            let (key, hash) = need_to_know::identity::new_api_key().expect("random");
            recipients.push_str(&format!(
                "[[recipient]]\nid = \"{id}\"\nname = \"{name}\"\ntype = \"{kind}\"\napi_key_sha256 = \"{hash}\"\n"
            ));
            if let (Some(certs), Some(TlsSetup::Mutual(_))) = (&certs, self.tls) {
                if let Some((_, pem, _)) = certs.clients.iter().find(|(c, _, _)| c == id) {
                    if id == "brightfix" {
                        let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
                            .expect("pem");
                        let hash = need_to_know::identity::sha256_hex(der.as_ref());
                        recipients.push_str(&format!("cert_sha256 = \"{hash}\"\n"));
                    } else {
                        recipients.push_str(&format!(
                            "cert_san = \"{}\"\n",
                            need_to_know::certs::dev_san(id)
                        ));
                    }
                }
            }
            for (_, text) in self.attributes.iter().filter(|(of, _)| of == id) {
                recipients.push_str(&format!("[recipient.attributes]\n{text}\n"));
            }
            recipients.push('\n');
            keys.push((id.clone(), key));
        }
        std::fs::write(rules.join("recipients.toml"), recipients).expect("recipients");
        let audit = self
            .audit_path
            .clone()
            .unwrap_or_else(|| dir.path().join("audit").join("disclosures.jsonl"));
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nheader_read_timeout = \"2s\"\nwrite_stall_timeout = \"2s\"\nidle_timeout = \"3s\"\n{tls_config}\n[upstream]\nurl = \"{}\"\ntimeout = \"2s\"\n{}\n[rules]\ndir = \"rules\"\n\n[audit]\npath = \"{}\"\n\n[limits]\nmax_response_body = \"64KiB\"\nmax_depth = 16\nmax_request_body = \"1KiB\"\nrequest_body_timeout = \"2s\"\n{}",
            self.upstream,
            self.extra_config,
            audit.display(),
            self.extra_limits,
        );
        let config_path = dir.path().join("need-to-know.toml");
        std::fs::write(&config_path, config).expect("config");
        (dir, config_path, keys, certs)
    }

    fn write_shipped(
        &self,
        dir: tempfile::TempDir,
        certs: Option<Certs>,
    ) -> (
        tempfile::TempDir,
        PathBuf,
        Vec<(String, String)>,
        Option<Certs>,
    ) {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let rules = dir.path().join("rules");
        crate::support::copy_dir(&source, &rules);
        let recipients =
            std::fs::read_to_string(rules.join("recipients.toml")).expect("recipients");
        let keys = recipients
            .lines()
            .filter_map(|l| l.trim().strip_prefix("id = \""))
            .filter_map(|rest| rest.strip_suffix('"'))
            .map(|id| (id.to_string(), format!("dev-{id}-key")))
            .collect();
        std::env::set_var(
            "NTK_TEST_PSEUDONYM_KEY",
            "a-test-pseudonym-key-of-32-bytes-or-more",
        );
        let audit = dir.path().join("audit").join("disclosures.jsonl");
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[upstream]\nurl = \"{}\"\ntimeout = \"5s\"\n{}\n[rules]\ndir = \"rules\"\npseudonym_key_env = \"NTK_TEST_PSEUDONYM_KEY\"\n\n[audit]\npath = \"{}\"\n\n[limits]\nmax_response_body = \"16MiB\"\n",
            self.upstream,
            self.extra_config,
            audit.display()
        );
        let config_path = dir.path().join("need-to-know.toml");
        std::fs::write(&config_path, config).expect("config");
        (dir, config_path, keys, certs)
    }

    /// Fresh CAs and certificates for this run, and the `[server.tls]` table naming them.
    fn make_certs(&self, dir: &Path) -> (Option<Certs>, String) {
        use need_to_know::certs::{Authority, Validity};
        let Some(setup) = self.tls else {
            return (None, String::new());
        };
        let gateway_ca = Authority::new("test gateway CA").expect("ca");
        let server = gateway_ca
            .server(&["localhost", "127.0.0.1"])
            .expect("server cert");
        std::fs::write(dir.join("gateway.crt"), &server.cert_pem).expect("write");
        std::fs::write(dir.join("gateway.key"), &server.key_pem).expect("write");
        let recipients_ca = Authority::new("test recipients CA").expect("ca");
        std::fs::write(dir.join("recipients-ca.crt"), recipients_ca.cert_pem()).expect("write");
        let mut clients = Vec::new();
        for (id, _, _) in &self.recipients {
            let issued = recipients_ca
                .client(&need_to_know::certs::dev_san(id), Validity::default())
                .expect("client cert");
            clients.push((id.clone(), issued.cert_pem, issued.key_pem));
        }
        let mut table = "[server.tls]\ncert = \"gateway.crt\"\nkey = \"gateway.key\"\n".to_string();
        if let TlsSetup::Mutual(mode) = setup {
            table.push_str(&format!(
                "client_ca = \"recipients-ca.crt\"\nclient_auth = \"{mode}\"\n"
            ));
        }
        let certs = Certs {
            gateway_ca_pem: gateway_ca.cert_pem(),
            clients,
            recipients_ca,
        };
        (Some(certs), table)
    }

    /// Starts the gateway in this process.
    pub async fn start(self) -> Gateway {
        let (dir, config_path, keys, certs) = self.write_all();
        for (k, v) in &self.env {
            // Only the upstream credential is read from the process environment; tests
            // use distinct variable names, so setting them cannot race.
            std::env::set_var(k, v);
        }
        let settings = Settings::load_with_env(&config_path, []).expect("config loads");
        let policy = settings.load_policy().expect("rules load");
        let (audit, _) = AuditLog::open(&settings.audit_path).expect("audit opens");
        let upstream = Upstream::new(&settings.upstream, &settings.limits).expect("upstream");
        let metrics = Arc::new(need_to_know::metrics::Metrics::new(audit.stats()));
        let pipeline = Arc::new(
            Pipeline::new(
                Arc::new(policy),
                upstream,
                audit.clone(),
                settings.limits.clone(),
                Arc::new(need_to_know::limits::Local::new()),
                metrics,
            )
            .expect("the rules snapshot is kept"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let options = server::Options {
            header_read_timeout: settings.server.header_read_timeout,
            write_stall_timeout: settings.server.write_stall_timeout,
            idle_timeout: settings.server.idle_timeout,
            max_connections: 256,
            drain_timeout: Duration::from_secs(5),
            tls: settings.server.tls.clone().map(|t| {
                Arc::new(need_to_know::tls::Reloadable::new(t).expect("tls config loads"))
            }),
        };
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind admin");
        let admin_addr = admin.local_addr().expect("addr");
        tokio::spawn(need_to_know::admin::run(
            admin,
            pipeline.clone(),
            std::future::pending(),
        ));
        let done = tokio::spawn(server::run(
            listener,
            pipeline.clone(),
            options,
            async move {
                let _ = stopped.await;
            },
        ));
        Gateway {
            addr,
            admin_addr,
            pipeline,
            rules_dir: settings.rules_dir.clone(),
            settings: settings.clone(),
            audit_path: settings.audit_path,
            dir,
            keys,
            stop: Some(stop),
            done: Some(done),
            audit,
            certs,
        }
    }
}

/// The sample job ([`crate::support::job`]) at `/api/jobs/J-1001` of a fake upstream, and a
/// default gateway in front of it; the upstream stops when its [`Listening`] is dropped.
pub async fn before_the_job() -> (Listening, Gateway) {
    let up = crate::support::upstream::Upstream::new()
        .json("/api/jobs/J-1001", crate::support::job())
        .run()
        .await;
    let gw = Builder::before(&up).start().await;
    (up, gw)
}

impl Gateway {
    /// The API key made for recipient `id`.
    pub fn key(&self, id: &str) -> &str {
        self.keys
            .iter()
            .find(|(r, _)| r == id)
            .map(|(_, k)| k.as_str())
            .expect("a recipient of this gateway")
    }

    /// The client certificate and key (PEM) issued to recipient `id`.
    pub fn client_cert(&self, id: &str) -> (String, String) {
        let certs = self.certs.as_ref().expect("a TLS gateway");
        let (_, cert, key) = certs
            .clients
            .iter()
            .find(|(c, _, _)| c == id)
            .expect("a recipient");
        (cert.clone(), key.clone())
    }

    /// Every audit record so far, parsed.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.audit_path).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }

    /// Stops accepting, drains, and closes the audit.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
        self.audit.close().await;
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
