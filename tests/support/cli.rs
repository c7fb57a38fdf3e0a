//! The built binary run as an operator runs it: [`Cli`] builds one command line, and [`Run`]
//! is what it printed, shown whole (command, exit code, stdout, stderr) when an expectation on
//! it fails, so that a failing CLI test says what the command did rather than `false`.

use std::ffi::OsStr;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

/// The binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_need-to-know");

/// A pseudonym key of 32 bytes or more: the shipped rules call `pseudonym()`, so they do not
/// load without one.
pub const PSEUDONYM_KEY: &str = "a-test-key-of-at-least-32-bytes!!";

/// One `need-to-know` command line: arguments, directory and environment.
pub struct Cli {
    command: std::process::Command,
    shown: String,
}

/// What a finished command printed, and how it exited.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    shown: String,
}

/// A `serve` process listening on `addr`; dropping it kills the process.
pub struct Serving {
    child: tokio::process::Child,
    pub addr: SocketAddr,
}

/// Sends SIGTERM to `child`, as an operator's service manager (or Ctrl-C) does to stop it.
pub fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
}

// === impl Cli ===

impl Cli {
    /// `need-to-know ARGS` in the current directory. `RUST_LOG` is removed: what a test reads
    /// is what the command prints, not what a developer's environment asks it to log.
    pub fn new<I, S>(args: I) -> Cli
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = std::process::Command::new(BIN);
        command.env_remove("RUST_LOG");
        Cli {
            command,
            shown: "need-to-know".to_string(),
        }
        .args(args)
    }

    /// Runs in the repository, where the shipped `need-to-know.toml` and `rules/` are.
    pub fn in_repo(self) -> Cli {
        self.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cli {
        self.shown
            .push_str(&format!(" (in {})", dir.as_ref().display()));
        self.command.current_dir(dir);
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cli {
        self.shown
            .push_str(&format!(" {}", arg.as_ref().to_string_lossy()));
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(self, args: I) -> Cli
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        args.into_iter().fold(self, Cli::arg)
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Cli {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Cli {
        self.command.env_remove(key);
        self
    }

    /// Sets `NEED_TO_KNOW_PSEUDONYM_KEY` to [`PSEUDONYM_KEY`].
    pub fn pseudonym_key(self) -> Cli {
        self.env("NEED_TO_KNOW_PSEUDONYM_KEY", PSEUDONYM_KEY)
    }

    /// Runs the command to its end, whatever its exit code.
    pub fn run(mut self) -> Run {
        let out = self.command.output().expect("run need-to-know");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).expect("need-to-know prints UTF-8"),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            shown: self.shown,
        }
    }

    /// Runs the command and asserts that it exits with `code`.
    pub fn expect(self, code: i32) -> Run {
        let run = self.run();
        assert_eq!(run.code, Some(code), "expected exit code {code}: {run}");
        run
    }

    /// Runs the command and asserts that it succeeds.
    pub fn success(self) -> Run {
        self.expect(0)
    }

    /// The command as a process for the test to start and stop itself: its standard output
    /// goes nowhere, and dropping the child kills it.
    pub fn process(self) -> tokio::process::Command {
        let mut command = tokio::process::Command::from(self.command);
        command.stdout(Stdio::null()).kill_on_drop(true);
        command
    }

    /// Starts the command, a `serve`, listening on `addr` (set through the environment), with
    /// its standard error to the file `log` (to a file, not a pipe nobody reads, which a
    /// gateway logging per request would fill) or nowhere, and waits until `addr` takes
    /// connections.
    ///
    /// # Panics
    /// If the process exits first (with its log), or does not listen within ten seconds.
    pub async fn serving(self, addr: SocketAddr, log: Option<&Path>) -> Serving {
        let mut command = self
            .env("NEED_TO_KNOW__SERVER__LISTEN", addr.to_string())
            .process();
        if let Some(log) = log {
            command.stderr(std::fs::File::create(log).expect("log file"));
        } else {
            command.stderr(Stdio::null());
        }
        let mut child = command.spawn().expect("spawn serve");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Serving { child, addr };
            }
            if let Ok(Some(status)) = child.try_wait() {
                let logged = log.and_then(|l| std::fs::read_to_string(l).ok());
                panic!(
                    "serve on {addr} exited {status} before it listened: {}",
                    logged.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("serve did not listen on {addr}");
    }
}

// === impl Run ===

impl Run {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Standard output as one JSON document (`--format json`).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self}"))
    }

    /// Asserts that standard output holds each of `needles`.
    pub fn stdout_has(&self, needles: &[&str]) -> &Run {
        for needle in needles {
            assert!(
                self.stdout.contains(needle),
                "no {needle:?} in stdout: {self}"
            );
        }
        self
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self
            .code
            .map_or_else(|| "a signal".to_string(), |c| c.to_string());
        write!(
            f,
            "`{}` exited with {code}\n--- stdout\n{}\n--- stderr\n{}\n---",
            self.shown, self.stdout, self.stderr
        )
    }
}

// === impl Serving ===

impl Serving {
    /// Sends SIGTERM, as an operator's service manager does to stop it.
    pub fn sigterm(&self) {
        sigterm(&self.child);
    }

    /// Waits (up to `within`) for the process to exit.
    pub async fn exit(mut self, within: Duration) -> ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("serve exits")
            .expect("wait")
    }

    /// [`Serving::sigterm`], then [`Serving::exit`].
    pub async fn terminate(self, within: Duration) -> ExitStatus {
        self.sigterm();
        self.exit(within).await
    }
}
