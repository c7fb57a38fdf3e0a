//! A throw-away PostgreSQL server for one test: initdb into a temporary directory, started on
//! a free 127.0.0.1 port, stoppable and restartable (the "stopped under load" test), removed
//! when dropped.
//!
//! The binaries come from `NEED_TO_KNOW_PG_BINDIR`, else the newest `/usr/lib/postgresql/*/bin`.
//! initdb and pg_ctl refuse to run as root, so as root they run as the unprivileged user
//! `ntk-ci` (created here if missing, as `.ci/run` does). Without binaries a test is skipped
//! with a message, except under `CI=true`, where it fails: CI can never pass without them.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The unprivileged user the server runs as when the tests run as root.
const RUN_AS: &str = "ntk-ci";

pub struct Postgres {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    pub port: u16,
    run_as: Option<&'static str>,
    /// Set by [`Postgres::serve_tls`]: the server then takes TLS (`ssl = on`).
    tls: bool,
}

impl Postgres {
    /// A running server, or `None` (after saying so) when no server binary is installed.
    ///
    /// # Panics
    ///
    /// Under `CI=true` without binaries, and when the server cannot be set up.
    pub fn start_or_skip(test: &str) -> Option<Postgres> {
        let Some(bindir) = bindir() else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: CI=true but no PostgreSQL server binaries (install postgresql or set NEED_TO_KNOW_PG_BINDIR)");
            }
            eprintln!("{test}: skipped: no PostgreSQL server binaries (install postgresql or set NEED_TO_KNOW_PG_BINDIR)");
            return None;
        };
        let run_as = is_root().then(|| {
            ensure_user();
            RUN_AS
        });
        let dir = tempfile::Builder::new()
            .prefix("ntk-pg-")
            .tempdir()
            .expect("tempdir");
        if let Some(user) = run_as {
            let ok = Command::new("chown")
                .args(["-R", user])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(ok.success(), "cannot chown the data directory to {user}");
        }
        let pg = Postgres {
            dir,
            bindir,
            port: super::free_port(),
            run_as,
            tls: false,
        };
        let out = pg.run(
            "initdb",
            &[
                "-D",
                &pg.data().display().to_string(),
                "-U",
                "ntk",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(out.status.success(), "initdb failed: {}", text(&out));
        pg.start();
        Some(pg)
    }

    /// The connection URL (trust authentication on loopback; no password to leak).
    pub fn url(&self) -> String {
        format!("postgres://ntk@127.0.0.1:{}/postgres", self.port)
    }

    /// A client of the gateway's own connector, in clear text as on loopback by default.
    pub async fn client(&self) -> tokio_postgres::Client {
        let endpoint = need_to_know::audit::postgres::Endpoint::new(&self.url(), None, |_| {
            Err("loopback is reached in clear text".to_owned())
        })
        .expect("a loopback URL");
        need_to_know::audit::postgres::connect(&endpoint)
            .await
            .expect("connect")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Restarts the server with TLS on, presenting `cert`. The key is written mode 0600 and
    /// owned by the server's user, as PostgreSQL demands.
    pub fn serve_tls(&mut self, cert: &need_to_know::certs::Issued) {
        use std::os::unix::fs::PermissionsExt;
        let (crt, key) = (
            self.dir.path().join("server.crt"),
            self.dir.path().join("server.key"),
        );
        std::fs::write(&crt, &cert.cert_pem).expect("server.crt");
        std::fs::write(&key, &cert.key_pem).expect("server.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        if let Some(user) = self.run_as {
            let ok = Command::new("chown")
                .arg(user)
                .args([&crt, &key])
                .status()
                .expect("chown");
            assert!(ok.success(), "cannot chown the TLS files to {user}");
        }
        self.tls = true;
        self.stop();
        self.start();
    }

    /// Starts the server (again) on the same port and waits until it accepts connections.
    pub fn start(&self) {
        let mut options = format!(
            "-p {} -h 127.0.0.1 -k {} -c max_connections=50",
            self.port,
            self.dir.path().display()
        );
        if self.tls {
            let dir = self.dir.path().display();
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key"
            ));
        }
        let log = self.dir.path().join("server.log");
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &log.display().to_string(),
                "-o",
                &options,
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{log_text}",
            text(&out)
        );
    }

    /// Stops the server now (`-m fast`: connections are cut, as in an outage).
    pub fn stop(&self) {
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
        assert!(out.status.success(), "pg_ctl stop failed: {}", text(&out));
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let program = self.bindir.join(tool);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `NEED_TO_KNOW_PG_BINDIR`, else the highest-versioned `/usr/lib/postgresql/*/bin` holding a
/// `postgres` binary.
fn bindir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("NEED_TO_KNOW_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return dir.join("postgres").exists().then_some(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn ensure_user() {
    // Tests run in parallel threads: one of them creates the user, the others wait for it.
    static MADE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    MADE.get_or_init(make_user);
}

fn make_user() {
    let exists = Command::new("id")
        .arg(RUN_AS)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !exists {
        let _ = Command::new("useradd")
            .args(["-r", "-M", "-s", "/usr/sbin/nologin", RUN_AS])
            .status();
        let made = Command::new("id")
            .arg(RUN_AS)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(made, "cannot create the user {RUN_AS} to run PostgreSQL as");
    }
}
