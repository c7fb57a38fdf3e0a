//! The command line: `serve`, `check`, `explain`, `keygen`, `audit verify|query|prove|...`,
//! `certs dev`.
//!
//! The only module that prints. Each command returns its exit code; errors that end a command
//! are `anyhow` errors, printed by `main` with their causes.

mod audit;
mod certs;
mod check;
#[cfg(feature = "demo")]
mod demo;
mod diff;
mod explain;
mod keygen;
mod register;
#[cfg(feature = "demo")]
mod sample_api;
mod serve;
mod test;

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

impl Cli {
    /// Whether the command serves connections (and must see a closed socket as an error to
    /// handle), rather than print output that may be piped into `head`.
    pub fn serves(&self) -> bool {
        match &self.command {
            Command::Serve(_) => true,
            #[cfg(feature = "demo")]
            Command::Demo(_) | Command::SampleApi { .. } => true,
            _ => false,
        }
    }
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
    #[cfg(feature = "demo")]
    Demo(demo::Args),
    /// The sample housing API alone, as an upstream for `serve` (on 127.0.0.1:8080, where the
    /// shipped need-to-know.toml expects it).
    #[cfg(feature = "demo")]
    SampleApi {
        /// The address to listen on.
        #[arg(long, default_value = sample_api::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
        /// Ask every request for `Authorization: Bearer` and this variable's value, as the
        /// gateway sends it with `[upstream] credential_env`.
        #[arg(long, value_name = "VAR")]
        token_env: Option<String>,
    },
    /// Run the policy test cases in rules/tests/*.toml; FILE:LINE per failing case.
    Test(ConfigArg),
    /// What a rules change would do, field by field, over the policy test cases; exit 1
    /// when disclosure widens, unless --accept.
    Diff {
        #[arg(long, default_value = "need-to-know.toml")]
        config: PathBuf,
        /// The rules directory as it was (e.g. a checkout of the last release's rules/).
        #[arg(long)]
        against: PathBuf,
        /// An upstream body (JSON file) to decide for every case's request too; repeatable.
        #[arg(long = "body")]
        bodies: Vec<PathBuf>,
        /// Exit 0 even when disclosure widens: the widening is deliberate.
        #[arg(long)]
        accept: bool,
    },
    /// The disclosure register (UK GDPR Art. 30 view): per recipient type its recipients,
    /// purpose, lawful basis and, route by route, every field it may receive and why.
    Register {
        #[arg(long, default_value = "need-to-know.toml")]
        config: PathBuf,
        /// html (one printable, self-contained page), md or csv.
        #[arg(long, default_value = "html", value_parser = ["html", "md", "csv"])]
        format: String,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Make a new API key and the api_key_sha256 line for recipients.toml; with --checkpoint,
    /// the Ed25519 key pair that signs audit checkpoints.
    Keygen(keygen::Args),
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
    Verify {
        /// The audit file, or rotated files oldest first and the current one last: checked as
        /// one chain across them.
        #[arg(required_unless_present = "postgres", conflicts_with = "postgres")]
        files: Vec<PathBuf>,
        /// The checkpoint file: every signed checkpoint must match the files, which then
        /// must start at the chain's first file (needs --public-key).
        #[arg(long, requires = "public_key")]
        checkpoints: Option<PathBuf>,
        /// The checkpoint public key (PEM SPKI, from `keygen --checkpoint`).
        #[arg(long, requires = "checkpoints")]
        public_key: Option<PathBuf>,
        #[command(flatten)]
        pg: PostgresArgs,
    },
    /// Write one chain of the PostgreSQL ledger as the JSONL file it would have been, which
    /// `audit verify FILE` accepts unchanged.
    Export {
        #[command(flatten)]
        pg: PostgresArgs,
        /// The chain (a replica's `[audit.postgres] chain`).
        #[arg(long)]
        chain: String,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Create or upgrade the PostgreSQL ledger's schema (serve also does this at start).
    Migrate {
        #[command(flatten)]
        pg: PostgresArgs,
    },
    /// The subject access report: every disclosure about one tenant, by recipient, in plain
    /// words; the chain is verified first and the report says whether it did.
    Report {
        /// The audit file, or rotated files oldest first and the current one last.
        #[arg(required_unless_present = "postgres", conflicts_with = "postgres")]
        files: Vec<PathBuf>,
        /// Read every chain of the PostgreSQL ledger instead of files (URL from the
        /// environment variable --config names, default NEED_TO_KNOW_PG_URL).
        #[arg(long)]
        postgres: bool,
        /// The data subject's id.
        #[arg(long)]
        subject: String,
        /// html (a self-contained page) or json.
        #[arg(long, default_value = "html", value_parser = ["html", "json"])]
        format: String,
        /// Only disclosures on or after this date (YYYY-MM-DD).
        #[arg(long)]
        from: Option<String>,
        /// Only disclosures on or before this date (YYYY-MM-DD).
        #[arg(long)]
        to: Option<String>,
        /// Leave out disclosures to recipients of this type (repeatable), for instance when
        /// telling the tenant could prejudice an investigation; the DPO gets a list of what
        /// was left out on stderr.
        #[arg(long, value_name = "TYPE")]
        exempt: Vec<String>,
        /// The config whose [controller] names who answers for the data, and whose rules
        /// describe records without a rules snapshot (default: need-to-know.toml, if there
        /// is one). Not needed otherwise: each record names its snapshot beside the ledger.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Upstream drift: every path the housing system sent, per recipient type and route,
    /// with how many records carried it, when first and last seen, and whether it was
    /// disclosed, withheld or both; the chain is verified first.
    Fields {
        /// The audit file, or rotated files oldest first and the current one last.
        #[arg(required_unless_present = "postgres", conflicts_with = "postgres")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        pg: PostgresArgs,
        /// Mark paths first seen on or after this date (YYYY-MM-DD) as new.
        #[arg(long)]
        since: Option<String>,
        /// text (grouped by route, aligned) or json (an array, one object per path).
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Every record about one data subject with its inclusion proof against a checkpoint of
    /// the whole chain, signed now: JSON the subject can check offline (`audit check-proof`).
    Prove {
        /// The audit file, or rotated files oldest first (from the chain's first file) and the
        /// current one last; the chain is verified first.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The data subject's id (as named by a route's `subjects`).
        #[arg(long)]
        subject: String,
        /// The checkpoint private key; its verifier key (`.vkey`) must be beside it.
        #[arg(long)]
        key: PathBuf,
        /// The checkpoint's origin line (default: need-to-know/<file name of the last FILE>).
        #[arg(long)]
        origin: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Check a proof file offline: each checkpoint's signature, then each record's inclusion.
    CheckProof {
        proof: PathBuf,
        /// The verifier key (`<name>+<hash>+<key>`), or a file holding it (checkpoint.vkey).
        #[arg(long)]
        key: String,
    },
    /// Print every disclosure about one data subject, oldest first.
    Query {
        /// The audit file, or rotated files oldest first and the current one last.
        #[arg(required_unless_present = "postgres", conflicts_with = "postgres")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        pg: PostgresArgs,
        /// The data subject's id (as named by a route's `subjects`).
        #[arg(long)]
        subject: String,
    },
}

/// Where the PostgreSQL ledger is: the URL is read from an environment variable only.
#[derive(Debug, clap::Args)]
struct PostgresArgs {
    /// Read every chain of the PostgreSQL ledger instead of files.
    #[arg(long)]
    postgres: bool,
    /// The config whose `[audit.postgres] url_env` names the variable holding the URL
    /// (without it: NEED_TO_KNOW_PG_URL).
    #[arg(long, requires = "postgres")]
    config: Option<PathBuf>,
}

/// The config and the rules as `serve` loads them (with their secrets); on any problem,
/// prints them all and gives the config exit code.
fn load(config: &std::path::Path) -> Result<(crate::config::Settings, crate::rules::Policy), u8> {
    let settings = crate::config::Settings::load(config)
        .map_err(|e| config_problems(e.0.iter().map(ToString::to_string)))?;
    let policy = load_offline(&settings)
        .map_err(|e| config_problems(e.0.iter().map(ToString::to_string)))?;
    Ok((settings, policy))
}

/// [`Settings::load_policy_offline`](crate::config::Settings::load_policy_offline), its note
/// printed to stderr as the one warning line.
fn load_offline(
    settings: &crate::config::Settings,
) -> Result<crate::rules::Policy, crate::rules::Error> {
    let (policy, note) = settings.load_policy_offline()?;
    if let Some(note) = note {
        eprintln!("{}", settings.warning_at("rules.pseudonym_key_env", note));
    }
    Ok(policy)
}

/// Prints problems to stderr, one a line; the config exit code.
fn config_problems(problems: impl IntoIterator<Item = String>) -> u8 {
    for p in problems {
        eprintln!("{p}");
    }
    EXIT_CONFIG
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
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::run(&args),
        #[cfg(feature = "demo")]
        Command::SampleApi { listen, token_env } => sample_api::run(listen, token_env.as_deref()),
        Command::Test(args) => test::run(&args.config),
        Command::Diff {
            config,
            against,
            bodies,
            accept,
        } => diff::run(&config, &against, &bodies, accept),
        Command::Register {
            config,
            format,
            output,
        } => register::run(&config, &format, output.as_deref()),
        Command::Keygen(args) => keygen::run(&args),
        Command::Audit(AuditCommand::Verify { pg, .. }) if pg.postgres => {
            audit::postgres::verify(pg.config.as_deref())
        }
        Command::Audit(AuditCommand::Verify {
            files,
            checkpoints,
            public_key,
            ..
        }) => match (checkpoints, public_key) {
            (Some(checkpoints), Some(key)) => audit::verify_checkpoints(&files, &checkpoints, &key),
            _ => audit::verify(&files),
        },
        Command::Audit(AuditCommand::Query { pg, subject, .. }) if pg.postgres => {
            audit::postgres::query(pg.config.as_deref(), &subject)
        }
        Command::Audit(AuditCommand::Query { files, subject, .. }) => {
            audit::query(&files, &subject)
        }
        Command::Audit(AuditCommand::Prove {
            files,
            subject,
            key,
            origin,
            output,
        }) => audit::proof::prove(&files, &subject, &key, origin.as_deref(), output.as_deref()),
        Command::Audit(AuditCommand::CheckProof { proof, key }) => {
            audit::proof::check(&proof, &key)
        }
        Command::Audit(AuditCommand::Export { pg, chain, output }) => {
            if !pg.postgres {
                anyhow::bail!("audit export reads the PostgreSQL ledger: pass --postgres");
            }
            audit::postgres::export(pg.config.as_deref(), &chain, output.as_deref())
        }
        Command::Audit(AuditCommand::Migrate { pg }) => {
            if !pg.postgres {
                anyhow::bail!("audit migrate is for the PostgreSQL ledger: pass --postgres");
            }
            audit::postgres::migrate(pg.config.as_deref())
        }
        Command::Audit(AuditCommand::Report {
            postgres,
            files,
            subject,
            format,
            from,
            to,
            exempt,
            config,
        }) => audit::report(
            postgres,
            &files,
            &subject,
            &format,
            (from.as_deref(), to.as_deref()),
            &exempt,
            config.as_deref(),
        ),
        Command::Audit(AuditCommand::Fields {
            files,
            pg,
            since,
            format,
        }) => {
            let source = if pg.postgres {
                audit::fields::Source::Postgres(pg.config.as_deref())
            } else {
                audit::fields::Source::Files(&files)
            };
            audit::fields::run(source, since.as_deref(), &format)
        }
        Command::Certs(CertsCommand::Dev { dir, config }) => certs::dev(&dir, &config),
    }
}

/// The rules `settings` name, loaded as the offline commands load them ([`load_offline`]);
/// every problem in the error, one per line, as `check` prints them.
fn load_policy(settings: &crate::config::Settings) -> anyhow::Result<crate::rules::Policy> {
    load_offline(settings).map_err(|e| {
        anyhow::anyhow!(
            "{}",
            e.0.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}
