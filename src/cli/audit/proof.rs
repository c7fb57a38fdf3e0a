//! `audit prove` and `audit check-proof`: a data subject's records with inclusion proofs
//! against a signed checkpoint, and their offline check (`audit::proof`).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::audit::checkpoint::note::Verifier;
use crate::audit::checkpoint::SigningKey;
use crate::audit::proof;

/// The proofs as pretty JSON on standard output (or `output`).
///
/// The key's name comes from the verifier key `keygen --checkpoint` wrote beside the private
/// key (`checkpoint.vkey` next to `checkpoint.key`), which must be the same key's. `origin`
/// defaults to `need-to-know/<file name of the current (last) file>`.
pub fn prove(
    files: &[PathBuf],
    subject: &str,
    key_path: &Path,
    origin: Option<&str>,
    output: Option<&Path>,
) -> anyhow::Result<u8> {
    let key = SigningKey::load(key_path)?;
    let verifier_path = key_path.with_extension("vkey");
    let verifier = read_verifier(&verifier_path)?;
    if verifier.key() != &key.public_key() {
        anyhow::bail!(
            "{} is not the verifier key of {}",
            verifier_path.display(),
            key_path.display()
        );
    }
    let origin = match origin {
        Some(origin) => origin.to_owned(),
        None => default_origin(files),
    };
    // A note's lines are text: a control character (a newline above all) would change its body.
    if origin.is_empty() || origin.chars().any(char::is_control) {
        anyhow::bail!("--origin must be one line of text");
    }
    let proofs = proof::prove(files, subject, &key, &verifier, &origin)?;
    let json = serde_json::to_string_pretty(&proofs)? + "\n";
    match output {
        Some(path) => std::fs::write(path, json)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{json}"),
    }
    eprintln!(
        "{} record(s) about the subject proven against a checkpoint of {origin}",
        proofs.records.len()
    );
    Ok(0)
}

/// Exit 0 with a line per checkpoint proven against, or 1 naming the record that fails.
pub fn check(proof_path: &Path, key: &str) -> anyhow::Result<u8> {
    let verifier = match Verifier::parse(key) {
        Ok(verifier) => verifier,
        Err(_) => read_verifier(Path::new(key))?,
    };
    let text = std::fs::read_to_string(proof_path)
        .with_context(|| format!("cannot read {}", proof_path.display()))?;
    let proofs: proof::Proofs = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a proof file", proof_path.display()))?;
    match proof::check(&proofs, &verifier) {
        Ok(signed) => {
            println!(
                "{}: {} record(s) proven",
                proof_path.display(),
                proofs.records.len()
            );
            if let Some(last) = signed.last() {
                println!(
                    "checkpoint: {} size {} signed by {}",
                    last.origin,
                    last.size,
                    verifier.name()
                );
            }
            Ok(0)
        }
        Err(e) => {
            println!("{}: NOT proven: {e}", proof_path.display());
            Ok(1)
        }
    }
}

fn read_verifier(path: &Path) -> anyhow::Result<Verifier> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the verifier key {}", path.display()))?;
    Verifier::parse(&text).with_context(|| format!("{}", path.display()))
}

fn default_origin(files: &[PathBuf]) -> String {
    let name = files
        .last()
        .and_then(|f| f.file_name())
        .map_or_else(|| "audit".into(), |n| n.to_string_lossy().into_owned());
    format!("need-to-know/{name}")
}
