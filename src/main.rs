//! need-to-know's entry point: parse the command line, set up logging, run, exit.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc, not the system allocator: a request allocates and frees many small values (the
/// parsed body, the filtered copy, the audit record), and glibc's malloc and free were a fifth
/// of the gateway's CPU under load (bench/README.md has the before and after).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = need_to_know::cli::Cli::parse();
    if !cli.serves() {
        end_quietly_on_a_closed_pipe();
    }
    // Logs go to stderr, so command output on stdout stays machine-readable.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match need_to_know::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("need-to-know: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// A command whose output is piped into `head` ends when the reader goes, as Unix tools do,
/// instead of panicking on the next write: the default action of SIGPIPE, which Rust sets
/// to "ignore" for every program. The servers keep "ignore", so that a recipient closing its
/// connection is an error to handle, never the end of the gateway.
fn end_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
