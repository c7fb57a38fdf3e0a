//! A throw-away `redis-server` on a free 127.0.0.1 port, in a temporary directory.
//!
//! The binary is `NEED_TO_KNOW_REDIS_SERVER`, else `redis-server` on `PATH`. Without one a
//! test prints "skipped" and returns, except under `CI=true`, where it fails: CI must never
//! pass without running the Redis tests (`.ci/run` installs the server).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped) server; dropping it kills the process.
pub struct Redis {
    binary: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    /// Set by [`Redis::serve_tls`]: TLS only (`--port 0 --tls-port`), no client certificates.
    tls: bool,
}

impl Redis {
    /// Starts a server, or returns `None` (having said so) when none is installed.
    ///
    /// # Panics
    ///
    /// No server binary under `CI=true`, or the server does not answer PING within 10 s.
    pub fn start(test: &str) -> Option<Redis> {
        let Some(binary) = find_binary() else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: no redis-server (set NEED_TO_KNOW_REDIS_SERVER or install redis-server); CI=true, so this fails");
            }
            eprintln!("{test}: skipped: no redis-server (NEED_TO_KNOW_REDIS_SERVER or PATH)");
            return None;
        };
        let port = super::free_port();
        let mut redis = Redis {
            binary,
            dir: tempfile::tempdir().expect("tempdir"),
            port,
            child: None,
            tls: false,
        };
        redis.restart();
        Some(redis)
    }

    /// `redis://127.0.0.1:<port>/`, or `rediss://` once [`Redis::serve_tls`] was called.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// Restarts the server taking TLS only, presenting `cert`.
    pub fn serve_tls(&mut self, cert: &need_to_know::certs::Issued, ca_pem: &str) {
        let dir = self.dir.path();
        std::fs::write(dir.join("server.crt"), &cert.cert_pem).expect("server.crt");
        std::fs::write(dir.join("server.key"), &cert.key_pem).expect("server.key");
        std::fs::write(dir.join("ca.crt"), ca_pem).expect("ca.crt");
        self.tls = true;
        self.restart();
    }

    /// Kills the server and waits for it to exit; nothing is saved, so a restart is empty.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, and waits until it answers PING.
    pub fn restart(&mut self) {
        self.stop();
        let dir = self.dir.path();
        let port = self.port.to_string();
        let listen: Vec<std::ffi::OsString> = if self.tls {
            let file = |name: &str| dir.join(name).into_os_string();
            vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port.into(),
                "--tls-cert-file".into(),
                file("server.crt"),
                "--tls-key-file".into(),
                file("server.key"),
                "--tls-ca-cert-file".into(),
                file("ca.crt"),
                "--tls-auth-clients".into(),
                "no".into(),
            ]
        } else {
            vec!["--port".into(), port.into()]
        };
        let child = Command::new(&self.binary)
            .current_dir(self.dir.path())
            .args(listen)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    /// SIGSTOP: the server keeps its port open but answers nothing (a hung Redis).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`Redis::pause`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([which, &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// PING answered; with TLS, the port taking connections (the test's client speaks none).
    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        if self.tls {
            return true;
        }
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut answer = [0u8; 7];
        stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn find_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NEED_TO_KNOW_REDIS_SERVER") {
        let path = PathBuf::from(path);
        return is_executable(&path).then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join("redis-server"))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
