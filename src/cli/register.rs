//! `register`: the disclosure register (UK GDPR Art. 30 view) of the loaded rules, as one
//! HTML page, Markdown or CSV, on standard output or into a file.
//!
//! The rules are loaded exactly as `serve` loads them (the pseudonym key included), so a
//! register is only ever made from rules that would be enforced; rules with errors print
//! their problems instead and exit with the config exit code.

use std::io::Write as _;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;

use crate::register::{glossary, Format, Register};

pub fn run(config: &Path, format: &str, output: Option<&Path>) -> anyhow::Result<u8> {
    let format = match format {
        "html" => Format::Html,
        "md" => Format::Markdown,
        "csv" => Format::Csv,
        other => anyhow::bail!("unknown format {other:?}: html, md or csv"),
    };
    let (settings, policy) = match super::load(config) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let glossary = match glossary::load(&settings.rules_dir) {
        Ok(g) => g,
        Err(e) => return Ok(super::config_problems([e.to_string()])),
    };
    let controller = settings.controller.as_ref();
    let register = Register::build(&policy, &glossary, controller, SystemTime::now());
    let text = register.render(format);
    match output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .context("writing the register")?;
            stdout.flush().context("writing the register")?;
        }
    }
    Ok(0)
}
