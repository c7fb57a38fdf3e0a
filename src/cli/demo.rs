//! `demo`: the sample housing API and the gateway with the shipped rules, on loopback, and
//! what to try.
//!
//! It runs from any directory (an installed binary, a container): the shipped rules are built
//! into the binary (the list `build.rs` writes) and written out to the run directory, which
//! also holds the config and the audit file. The run directory is a fresh temporary one,
//! removed when the demo stops unless `--keep`, or the `--dir` the user names, never removed.
//! The upstream credential and, unless already set, the pseudonym key are made fresh (random,
//! in this process's environment only). The recipients' keys are the development keys in
//! `rules/recipients.toml` (`dev-<id>-key`).
//!
//! Every line the guide prints is a shell comment or a command that runs as printed, from any
//! directory: the `need-to-know` commands name the running executable by its full path.
//!
//! With `--tls` the gateway speaks only TLS, with a development CA and certificates made for
//! the run (in the run directory's `certs/`): one recipient is known by its client
//! certificate's name (`cert_san`), one by the certificate's hash (`cert_sha256`), and the
//! others by their API keys over TLS.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::cli::serve::{run_gateway, shutdown_signal};
use crate::config::Settings;
use crate::sample_api::{self, Date, SampleData};

const UPSTREAM_TOKEN_ENV: &str = "NEED_TO_KNOW_DEMO_UPSTREAM_TOKEN";
/// The demo's data controller, an invented housing provider, for the report and the register.
const CONTROLLER: &str = "[controller]\nname = \"Lincoln Homes Ltd (an invented housing provider)\"\ncontact = \"Customer Services, 1 Example Street, Lincoln LN1 1AA; customer.services@example.org\"\ndpo_contact = \"Data Protection Officer, at the same address; dpo@example.org\"\nretention = \"Disclosure records are kept for six years after the tenancy ends, then deleted.\"\n";
const PSEUDONYM_KEY_ENV: &str = "NEED_TO_KNOW_PSEUDONYM_KEY";

/// Every file under the repository's `rules/` when this binary was built, as (path below
/// `rules/` with `/` separators, contents).
const SHIPPED_RULES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/shipped_rules.rs"));

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Serve this rules directory instead of the shipped rules (which are built into the
    /// binary and written to the run directory's rules/).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// The run directory, for the config, the audit file and the shipped rules; never removed
    /// (without it: a fresh temporary directory, removed when the demo stops).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the temporary run directory when the demo stops.
    #[arg(long)]
    keep: bool,
    /// The gateway's port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Serve over TLS with certificates made for the run: acme-repairs is known by its client
    /// certificate's name, nightline by its certificate's hash, the others by API key.
    #[arg(long, conflicts_with = "rules")]
    tls: bool,
}

/// The recipients the `--tls` demo knows by client certificate: (id, by the certificate's
/// hash rather than its name).
const BY_CERTIFICATE: [(&str, bool); 2] = [("acme-repairs", false), ("nightline", true)];

/// The files of a `--tls` demo, in the run directory's `certs/`.
struct Tls {
    certs: PathBuf,
}

/// Where the demo keeps its config, audit file and rules, and whether it goes when it stops.
struct RunDir {
    path: PathBuf,
    remove: bool,
}

/// What the guide needs to print commands that run as printed.
struct Guide {
    addr: SocketAddr,
    admin: SocketAddr,
    /// The run directory, and whether it goes when the demo stops.
    dir: PathBuf,
    removed: bool,
    config: PathBuf,
    audit: PathBuf,
    /// The running executable, for the `need-to-know` commands.
    exe: PathBuf,
    /// The pseudonym key this process made, which the commands that load the rules need in
    /// their environment; `None` when it came from the environment, which then has it.
    made_key: Option<String>,
    tls: Option<Tls>,
}

pub fn run(args: &Args) -> anyhow::Result<u8> {
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    let dir = RunDir::create(args)?;
    let result = prepare(args, &dir).and_then(|(rules, tls)| {
        // Set before the runtime starts any thread: only this process sees them.
        let (token, _) = crate::identity::new_api_key().context("random source")?;
        std::env::set_var(UPSTREAM_TOKEN_ENV, &token);
        let made_key = match std::env::var(PSEUDONYM_KEY_ENV) {
            Ok(_) => None,
            Err(_) => {
                let (key, _) = crate::identity::new_api_key().context("random source")?;
                std::env::set_var(PSEUDONYM_KEY_ENV, &key);
                Some(key)
            }
        };
        let guide = Guide {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            config: dir.path.join("need-to-know.toml"),
            audit: dir.path.join("disclosures.jsonl"),
            dir: dir.path.clone(),
            removed: dir.remove,
            exe,
            made_key,
            tls,
        };
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        runtime.block_on(demo(rules, args.port, token, guide))
    });
    println!();
    dir.finish();
    result
}

/// The rules directory to serve: `--rules`, or the shipped rules written out to the run
/// directory (over any copy an earlier run left there); with `--tls`, the certificates made
/// for the run, and the shipped recipients told which of them identify by certificate.
fn prepare(args: &Args, dir: &RunDir) -> anyhow::Result<(PathBuf, Option<Tls>)> {
    if let Some(rules) = &args.rules {
        let rules = rules
            .canonicalize()
            .with_context(|| format!("no rules directory at {}", rules.display()))?;
        return Ok((rules, None));
    }
    let rules = dir.path.join("rules");
    for (name, text) in SHIPPED_RULES {
        let path = rules.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !args.tls {
        return Ok((rules, None));
    }
    let certs = dir.path.join("certs");
    let recipients = rules.join("recipients.toml");
    let text = std::fs::read_to_string(&recipients)
        .with_context(|| format!("cannot read {}", recipients.display()))?;
    let ids = recipient_ids(&text)?;
    let set = crate::certs::write_dev_set(&certs, &ids)
        .context("cannot make the development certificates")?;
    let mut text = text;
    for (id, by_hash) in BY_CERTIFICATE {
        let Some((_, san, sha256)) = set.clients.iter().find(|(c, _, _)| c == id) else {
            anyhow::bail!("the shipped rules have no recipient {id}");
        };
        let line = format!("id = \"{id}\"\n");
        let identity = if by_hash {
            format!("cert_sha256 = \"{sha256}\"\n")
        } else {
            format!("cert_san = \"{san}\"\n")
        };
        text = text.replacen(&line, &format!("{line}{identity}"), 1);
    }
    std::fs::write(&recipients, text)
        .with_context(|| format!("cannot write {}", recipients.display()))?;
    Ok((rules, Some(Tls { certs })))
}

/// The ids of the `[[recipient]]` entries of a `recipients.toml`.
fn recipient_ids(text: &str) -> anyhow::Result<Vec<String>> {
    let doc: toml::Table = toml::from_str(text).context("the shipped recipients.toml")?;
    let ids = doc
        .get("recipient")
        .and_then(toml::Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|r| r.get("id").and_then(toml::Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(ids)
}

async fn demo(rules: PathBuf, port: u16, token: String, mut guide: Guide) -> anyhow::Result<u8> {
    let data = Arc::new(SampleData::generate(Date::today()));
    let sample = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind the sample API")?;
    let sample_addr = sample.local_addr()?;
    tokio::spawn(sample_api::serve(
        sample,
        data,
        "/api",
        Some(token),
        std::future::pending(),
    ));

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port} (try --port 0)"))?;
    guide.addr = listener.local_addr()?;
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind admin")?;
    guide.admin = admin.local_addr()?;
    let config = &guide.config;
    std::fs::write(
        config,
        format!(
            "[server]\nlisten = \"{addr}\"\n{tls}\n[upstream]\nurl = \"http://{sample_addr}/api\"\ntimeout = \"5s\"\ncredential_env = \"{UPSTREAM_TOKEN_ENV}\"\n\n[rules]\ndir = {rules:?}\npseudonym_key_env = \"{PSEUDONYM_KEY_ENV}\"\n\n[audit]\npath = {audit:?}\n\n[admin]\nlisten = \"{admin_addr}\"\n\n{CONTROLLER}",
            addr = guide.addr,
            tls = guide.tls.as_ref().map(Tls::config).unwrap_or_default(),
            admin_addr = guide.admin,
            rules = rules.display().to_string(),
            audit = guide.audit.display().to_string(),
        ),
    )
    .with_context(|| format!("cannot write {}", config.display()))?;
    let settings = Settings::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let policy = super::load_policy(&settings)?;
    let code = run_gateway(
        settings,
        policy,
        listener,
        Some(admin),
        shutdown_signal(),
        |_| guide.print(),
    )
    .await?;
    Ok(code)
}

// === impl Tls ===

impl Tls {
    /// The `[server.tls]` table: client certificates asked for, API keys still accepted.
    fn config(&self) -> String {
        let file = |name: &str| format!("{:?}", self.certs.join(name).display().to_string());
        format!(
            "\n[server.tls]\ncert = {}\nkey = {}\nclient_ca = {}\nclient_auth = \"optional\"\n",
            file("gateway.crt"),
            file("gateway.key"),
            file("recipients-ca.crt"),
        )
    }

    /// curl's options to trust the gateway and to present recipient `id`: its certificate
    /// when it is known by one, else `api_key`.
    fn curl_options(&self, id: &str, api_key: &str) -> String {
        let ca = quote(&self.certs.join("gateway-ca.crt")).into_owned();
        if BY_CERTIFICATE.iter().any(|(c, _)| *c == id) {
            let cert = quote(&self.certs.join(format!("{id}.crt"))).into_owned();
            let key = quote(&self.certs.join(format!("{id}.key"))).into_owned();
            format!("--cacert {ca} --cert {cert} --key {key} ")
        } else {
            format!("--cacert {ca} {api_key}")
        }
    }
}

// === impl RunDir ===

impl RunDir {
    /// `--dir` (made if need be, kept), or a fresh temporary directory (removed at the end
    /// unless `--keep`). The path is made absolute: the printed commands run from anywhere.
    fn create(args: &Args) -> anyhow::Result<RunDir> {
        let (path, remove) = match &args.dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                (dir.clone(), false)
            }
            None => {
                let dir = std::env::temp_dir().join(format!(
                    "need-to-know-demo-{}-{}",
                    std::process::id(),
                    unix_millis()
                ));
                std::fs::create_dir(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                (dir, !args.keep)
            }
        };
        let path = path
            .canonicalize()
            .with_context(|| format!("cannot find {}", path.display()))?;
        Ok(RunDir { path, remove })
    }

    /// Removes the directory if it is the demo's to remove, and says which happened.
    fn finish(self) {
        if !self.remove {
            println!("The run directory is kept: {}", self.path.display());
            return;
        }
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => println!(
                "Removed the run directory {} (--keep keeps it)",
                self.path.display()
            ),
            Err(e) => eprintln!("cannot remove {}: {e}", self.path.display()),
        }
    }
}

// === impl Guide ===

impl Guide {
    /// One `curl` per thing worth seeing, with what it shows, then the `need-to-know`
    /// commands over what they left in the audit file; every other line is a comment.
    fn print(&self) {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{}", self.addr);
        let curl = |id: &str, extra: &str, path: &str| {
            let api_key = format!("-H 'Authorization: Bearer dev-{id}-key' ");
            let identity = match &self.tls {
                Some(tls) => tls.curl_options(id, &api_key),
                None => api_key,
            };
            format!("curl -s {identity}{extra}'{base}{path}'")
        };
        let reference = "-H 'x-disclosure-reference: REF-2026-0042' ";
        let tries: Vec<(&str, String)> = vec![
        (
            "Repairs contractor, its own open job: contact details, access needs, and the one caution\n  marker the tenant was told of and is still in date (the uninformed and the expired ones are withheld);\n  the son's phone number and email typed into the access notes arrive as [removed]",
            curl("acme-repairs", "", "/jobs/J-0001"),
        ),
        (
            "The same contractor's job list, open jobs only: the gateway adds its contractor code\n  (contractor=ACM) for it, so it lists its own jobs and nobody else's",
            curl("acme-repairs", "", "/jobs?status=scheduled&status=in_progress"),
        ),
        (
            "Asking for another contractor's list: refused (403 binding_mismatch), nothing fetched",
            curl("acme-repairs", "", "/jobs?contractor=BFX"),
        ),
        (
            "The same contractor on its completed job: no caution markers",
            curl("acme-repairs", "", "/jobs/J-0003"),
        ),
        (
            "The same contractor on another contractor's job: refused, answered as a job that does\n  not exist (404), so job references cannot be guessed",
            curl("acme-repairs", "", "/jobs/J-0002"),
        ),
        (
            "The same contractor writes back: its job is completed. Only the fields the route accepts\n  may be sent (another is refused, 400), only on its own job (403 on another's), and the\n  housing system's answer is filtered as a read's is; the record lists what was received",
            curl(
                "acme-repairs",
                "-X PATCH -H 'Content-Type: application/json' -d '{\"status\": \"completed\", \"completion_notes\": \"Boiler serviced\"}' ",
                "/jobs/J-0001",
            ),
        ),
        (
            "The same contractor, before its visit, asks for the property's caution alerts (kept apart\n  in the housing system): the gateway looks up the contractor's own jobs there first, and\n  passes the one alert the tenant was told of and that has not ended",
            curl("acme-repairs", "", "/properties/P-0001/alerts"),
        ),
        (
            "A contractor with no open job at that property asks for them: answered as not found (404)",
            curl("northgate-gas", "", "/properties/P-0001/alerts"),
        ),
        (
            "Out-of-hours call handler: contact details, communication needs and the no-lone-working\n  flag; nothing financial or medical",
            curl("nightline", "", "/tenants/T-0004"),
        ),
        (
            "Research vendor, a survey sample: the name and phone to invite each tenant, an age band,\n  postcode district and a pseudonymous respondent id, never a date of birth or address;\n  tenants who objected are left out",
            curl("civic-surveys", "", "/tenants?postcode_district=LN2"),
        ),
        (
            "Research vendor asking for every tenant at once: refused (400 too_many_items), a survey\n  samples at most 100 records an answer",
            curl("civic-surveys", "", "/tenants"),
        ),
        (
            "The same, a page at a time: the first 50 tenants, objectors left out",
            curl("civic-surveys", "", "/tenants?limit=50&offset=0"),
        ),
        (
            "Research vendor, a tenant who objected to research: refused (403)",
            curl("civic-surveys", "", "/tenants/T-0002"),
        ),
        (
            "Utility debt agent, a former tenant, with its request reference: the name, forwarding\n  address and tenancy dates only",
            curl("fenland-water-recoveries", reference, "/former-tenants/T-0003"),
        ),
        (
            "Mailing house, a mailing list for LN2: names and postal addresses only; tenants who\n  objected to mailings or to all non-essential sharing, and former tenants, are left out",
            curl("lincs-print-post", "", "/tenants?postcode_district=LN2"),
        ),
        (
            "NHS trust partnership, who occupies a property: contact details, tenancy start and\n  household size; nothing medical or financial",
            curl("ulh-occupancy", "", "/properties/P-0007/occupants"),
        ),
        (
            "Council tax, with its reference: the occupants' contact details, address and tenancy dates",
            curl("lincoln-council-tax", reference, "/properties/P-0007/occupants"),
        ),
        (
            "Police without a crime or incident reference: refused (403)",
            curl("lincs-police", "", "/tenants/T-0001"),
        ),
        (
            "Police with a reference: identity, address and tenancy dates; the reference is audited",
            curl("lincs-police", reference, "/tenants/T-0001"),
        ),
    ];
        println!();
        println!("# need-to-know demo: the gateway is on {base}, in front of a sample housing API");
        println!("# (invented tenants; it serves /api/jobs, /api/tenants, /api/properties, /api/former-tenants).");
        println!(
            "# The run directory (config, audit file, rules): {}",
            self.dir.display()
        );
        if self.removed {
            println!("# It is removed when the demo stops (--keep keeps it).");
        } else {
            println!("# It is kept when the demo stops.");
        }
        if let Some(tls) = &self.tls {
            println!(
                "# TLS only, with certificates made for this run in {}: acme-repairs is known by",
                tls.certs.display()
            );
            println!(
                "# its client certificate's name (cert_san), nightline by the certificate's hash"
            );
            println!("# (cert_sha256), the others by their API keys over TLS.");
        }
        println!();
        for (what, command) in &tries {
            println!("# {}", what.replace('\n', "\n# "));
            println!("{command}");
            println!();
        }
        let audit = quote(&self.audit);
        let config = quote(&self.config);
        let report = self.dir.join("report-T-0001.html");
        let register = self.dir.join("register.html");
        println!("# Everything disclosed about tenant T-0001, from the hash-chained audit log:");
        println!(
            "{} audit query {audit} --subject T-0001",
            self.command(false)
        );
        println!("# The chain checked, record by record:");
        println!("{} audit verify {audit}", self.command(false));
        println!(
            "# Tenant T-0001's subject access report, a page written to {}:",
            report.display()
        );
        println!(
            "{} audit report {audit} --subject T-0001 --config {config} > {}",
            self.command(true),
            quote(&report)
        );
        println!(
            "# The disclosure register (what each recipient type may receive, and why), a page"
        );
        println!("# written to {}:", register.display());
        println!(
            "{} register --config {config} --output {}",
            self.command(true),
            quote(&register)
        );
        println!();
        println!(
            "# Metrics and probes: http://{admin}/metrics  http://{admin}/readyz",
            admin = self.admin
        );
        println!("# Ctrl-C stops the demo.");
    }

    /// The running executable, quoted; with `rules`, after the pseudonym key this process
    /// made, which a command loading the rules needs and the user's shell does not have.
    fn command(&self, rules: bool) -> String {
        let exe = quote(&self.exe);
        match (&self.made_key, rules) {
            (Some(key), true) => format!("{PSEUDONYM_KEY_ENV}={} {exe}", shell_quote(key)),
            _ => exe.into_owned(),
        }
    }
}

/// A path as one word for a POSIX shell.
fn quote(path: &Path) -> Cow<'_, str> {
    match path.to_string_lossy() {
        Cow::Borrowed(text) => shell_quote(text),
        Cow::Owned(text) => Cow::Owned(shell_quote(&text).into_owned()),
    }
}

/// `text` as one word for a POSIX shell: as it is when no character in it is special (`=`
/// counts, since a first word holding one would be an assignment), else in single quotes,
/// each single quote in it written `'\''`.
fn shell_quote(text: &str) -> Cow<'_, str> {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+:,./-".contains(&b));
    if plain {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!("'{}'", text.replace('\'', r"'\''")))
    }
}

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(
            shell_quote("/usr/bin/need-to-know"),
            "/usr/bin/need-to-know"
        );
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("a=b"), "'a=b'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn the_shipped_rules_are_built_in() {
        let names: Vec<&str> = SHIPPED_RULES.iter().map(|(name, _)| *name).collect();
        for name in ["recipients.toml", "glossary.toml", "types/police.toml"] {
            assert!(names.contains(&name), "{name} not in {names:?}");
        }
        assert!(names.iter().any(|n| n.starts_with("tests/bodies/")));
    }
}
