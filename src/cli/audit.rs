//! `audit verify` and `audit query`.

use std::path::Path;

use anyhow::Context;

use crate::audit;

/// Prints the record count and exits 0, or names the first broken record and exits 1.
pub fn verify(file: &Path) -> anyhow::Result<u8> {
    match audit::verify(file) {
        Ok(verified) => {
            println!(
                "{}: {} records verified, head {}",
                file.display(),
                verified.records,
                verified.head
            );
            Ok(0)
        }
        Err(audit::VerifyError::Io(e)) => {
            Err(e).with_context(|| format!("cannot read {}", file.display()))
        }
        Err(e) => {
            println!("{}: {e}", file.display());
            Ok(1)
        }
    }
}

/// One JSON object a line, oldest first; nothing (exit 0) when there are none.
pub fn query(file: &Path, subject: &str) -> anyhow::Result<u8> {
    let lines =
        audit::query(file, subject).with_context(|| format!("cannot query {}", file.display()))?;
    for line in lines {
        println!("{line}");
    }
    Ok(0)
}
