//! `keygen`: a new API key, and the line to paste into `recipients.toml`.

use anyhow::Context;

use crate::identity;

pub fn run() -> anyhow::Result<u8> {
    let (key, hash) =
        identity::new_api_key().context("the operating system's random source failed")?;
    println!("{key}");
    println!("api_key_sha256 = \"{hash}\"");
    Ok(0)
}
