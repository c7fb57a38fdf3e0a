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
