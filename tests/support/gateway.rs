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
use need_to_know::rules::Policy;
use need_to_know::server;
use need_to_know::upstream::Upstream;
use tokio::sync::oneshot;

/// A repairs-contractor type like DESIGN section 4's, without conditions.
pub const REPAIRS_TYPE: &str = r#"
type = "repairs-contractor"
purpose = "Carry out repairs, maintenance and safety checks at the tenant's home"
lawful_basis = "contract"

[[route]]
method = "GET"
path = "/jobs/{job_id}"
query = []
subjects = ["tenant.id"]
allow = [
  "id", "status", "priority", "description", "appointment",
  "property.address",
  "tenant.name", "tenant.phone", "tenant.email",
  "tenant.access_needs[].description",
]

[[route]]
method = "GET"
path = "/jobs"
query = ["status", "page"]
subjects = ["[].tenant.id"]
allow = ["[].id", "[].status"]
"#;

/// Builds a gateway: rules, keys and config, then [`Builder::start`].
pub struct Builder {
    upstream: String,
    types: Vec<(String, String)>,
    recipients: Vec<(String, String, String)>,
    extra_config: String,
    audit_path: Option<PathBuf>,
    env: Vec<(String, String)>,
}

/// A running gateway; dropping it stops the server.
pub struct Gateway {
    pub addr: SocketAddr,
    pub audit_path: PathBuf,
    pub dir: tempfile::TempDir,
    keys: Vec<(String, String)>,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
    audit: AuditLog,
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
            extra_config: String::new(),
            audit_path: None,
            env: Vec::new(),
        }
    }

    /// Replaces (or adds) the type file `types/<name>.toml`.
    pub fn kind(mut self, name: &str, text: &str) -> Builder {
        self.types.retain(|(n, _)| n != name);
        self.types.push((name.into(), text.into()));
        self
    }

    pub fn recipient(mut self, id: &str, kind: &str) -> Builder {
        self.recipients.push((id.into(), id.into(), kind.into()));
        self
    }

    /// TOML appended to the `[upstream]` table's section, e.g. `credential_env = "X"`.
    pub fn config(mut self, text: &str) -> Builder {
        self.extra_config.push_str(text);
        self.extra_config.push('\n');
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
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = dir.path().join("rules");
        std::fs::create_dir_all(rules.join("types")).expect("rules dir");
        for (name, text) in &self.types {
            std::fs::write(rules.join("types").join(format!("{name}.toml")), text).expect("type");
        }
        let mut keys = Vec::new();
        let mut recipients = String::new();
        for (id, name, kind) in &self.recipients {
            let (key, hash) = need_to_know::identity::new_api_key().expect("random");
            recipients.push_str(&format!(
                "[[recipient]]\nid = \"{id}\"\nname = \"{name}\"\ntype = \"{kind}\"\napi_key_sha256 = \"{hash}\"\n\n"
            ));
            keys.push((id.clone(), key));
        }
        std::fs::write(rules.join("recipients.toml"), recipients).expect("recipients");
        let audit = self
            .audit_path
            .clone()
            .unwrap_or_else(|| dir.path().join("audit").join("disclosures.jsonl"));
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nheader_read_timeout = \"2s\"\n\n[upstream]\nurl = \"{}\"\ntimeout = \"2s\"\n{}\n[rules]\ndir = \"rules\"\n\n[audit]\npath = \"{}\"\n\n[limits]\nmax_response_body = \"64KiB\"\nmax_depth = 16\nmax_request_body = \"1KiB\"\n",
            self.upstream,
            self.extra_config,
            audit.display()
        );
        let config_path = dir.path().join("need-to-know.toml");
        std::fs::write(&config_path, config).expect("config");
        (dir, config_path, keys)
    }

    /// Starts the gateway in this process.
    pub async fn start(self) -> Gateway {
        let (dir, config_path, keys) = self.write();
        for (k, v) in &self.env {
            // Only the upstream credential is read from the process environment; tests
            // use distinct variable names, so setting them cannot race.
            std::env::set_var(k, v);
        }
        let settings = Settings::load_with_env(&config_path, []).expect("config loads");
        let policy = Policy::load(&settings.rules_dir).expect("rules load");
        let (audit, _) = AuditLog::open(&settings.audit_path).expect("audit opens");
        let upstream = Upstream::new(&settings.upstream, &settings.limits).expect("upstream");
        let pipeline = Arc::new(Pipeline::new(
            Arc::new(policy),
            upstream,
            audit.clone(),
            settings.limits.clone(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let options = server::Options {
            header_read_timeout: settings.server.header_read_timeout,
            max_connections: 256,
            drain_timeout: Duration::from_secs(5),
        };
        let done = tokio::spawn(server::run(listener, pipeline, options, async move {
            let _ = stopped.await;
        }));
        Gateway {
            addr,
            audit_path: settings.audit_path,
            dir,
            keys,
            stop: Some(stop),
            done: Some(done),
            audit,
        }
    }
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
