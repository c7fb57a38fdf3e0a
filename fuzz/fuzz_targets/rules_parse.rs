//! Arbitrary text as a recipient type file, next to a fixed `recipients.toml`: `Policy::load`
//! must answer Ok or Err, never panic.
#![no_main]

#[path = "common.rs"]
mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use need_to_know::rules::Policy;

/// The example's contractors, as recipients of type `x`: the type file under test.
fn recipients() -> &'static str {
    static RECIPIENTS: OnceLock<String> = OnceLock::new();
    RECIPIENTS
        .get_or_init(|| common::RECIPIENTS.replace("type = \"repairs-contractor\"", "type = \"x\""))
}

/// One directory per process, reused by every input.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::scratch("rules"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = dir();
    common::write_rules(dir, recipients(), "x.toml", text);
    let _ = Policy::load(dir);
});
