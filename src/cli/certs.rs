//! `certs dev DIR`: development certificates for trying TLS and mTLS locally.

use std::path::Path;

use anyhow::Context;

use crate::certs;
use crate::config::Settings;

pub fn dev(dir: &Path, config: &Path) -> anyhow::Result<u8> {
    let settings = Settings::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    // With the config's secrets: rules that use pseudonym() do not load without the key.
    let policy = super::load_policy(&settings)?;
    let ids: Vec<String> = policy.recipients().iter().map(|r| r.id.clone()).collect();
    let set =
        certs::write_dev_set(dir, &ids).context("cannot make the development certificates")?;
    for file in &set.files {
        println!("wrote {}", file.display());
    }
    println!();
    println!("# For rules/recipients.toml (either line identifies the recipient):");
    for (id, san, hash) in &set.clients {
        println!("# {id}");
        println!("cert_sha256 = \"{hash}\"");
        println!("cert_san = \"{san}\"");
    }
    Ok(0)
}
