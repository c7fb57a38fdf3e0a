//! The command line: `serve`, `check`, `explain`, `keygen`, `audit verify|query`, `certs dev`.
//!
//! The only module that prints. Each command returns its exit code; errors that end a command
//! are `anyhow` errors, printed by `main` with their causes.

mod audit;
mod certs;
mod check;
mod demo;
mod explain;
mod keygen;
mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Exit code for a config or rules problem that stops `serve` (as linkerd2-proxy does).
pub const EXIT_CONFIG: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "need-to-know",
    version,
    about = "A data-minimisation gateway: each recipient gets only the fields its purpose justifies"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(ConfigArg),
    /// Validate the config and rules; print every problem as FILE:LINE: message.
    Check(ConfigArg),
    /// Dry run: the filtered body and, per field, why it was kept or withheld.
    Explain(explain::Args),
    /// Dev mode: a sample housing API and the gateway with the shipped rules, on loopback,
    /// and a curl command per recipient type to try.
    Demo {
        /// The rules directory to serve.
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// The gateway's port on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Make a new API key and the api_key_sha256 line for recipients.toml.
    Keygen,
    /// Read the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Make certificates.
    #[command(subcommand)]
    Certs(CertsCommand),
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Development certificates: a CA, a gateway certificate for 127.0.0.1/localhost, and one
    /// client certificate per recipient in the rules; prints the cert_sha256 lines.
    Dev {
        /// Where to write them (private keys are written 0600; never commit them).
        dir: PathBuf,
        #[arg(long, default_value = "need-to-know.toml")]
        config: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct ConfigArg {
    /// The config file.
    #[arg(long, default_value = "need-to-know.toml")]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain; exit 1 and name the first broken record.
    Verify { file: PathBuf },
    /// Print every disclosure about one data subject, oldest first.
    Query {
        file: PathBuf,
        /// The data subject's id (as named by a route's `subjects`).
        #[arg(long)]
        subject: String,
    },
}

/// Runs the parsed command line; the exit code on success.
///
/// # Errors
///
/// Whatever stopped the command; `main` prints it and exits 1.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Serve(args) => serve::run(&args.config),
        Command::Check(args) => Ok(check::run(&args.config)),
        Command::Explain(args) => explain::run(&args),
        Command::Demo { rules, port } => demo::run(&rules, port),
        Command::Keygen => keygen::run(),
        Command::Audit(AuditCommand::Verify { file }) => audit::verify(&file),
        Command::Audit(AuditCommand::Query { file, subject }) => audit::query(&file, &subject),
        Command::Certs(CertsCommand::Dev { dir, config }) => certs::dev(&dir, &config),
    }
}
