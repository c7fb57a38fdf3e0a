//! Arbitrary text as a recipient type file, next to a fixed `recipients.toml`: `Policy::load`
//! must answer Ok or Err, never panic.
#![no_main]

#[path = "common.rs"]
mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use need_to_know::rules::Policy;

const RECIPIENTS: &str = r#"
[[recipient]]
id = "acme-repairs"
name = "ACME Repairs Ltd"
type = "x"
api_key_sha256 = "d76c5488b91bf9b125e97aa6176d0d893c7da3115169ed61aabcb169124d10b8"

[[recipient]]
id = "brightfix"
name = "BrightFix Property Services"
type = "x"
api_key_sha256 = "07224c755616395574b992c131c9d9b8b0088d228793e22adbd34df77e92021d"
"#;

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
    common::write_rules(dir, RECIPIENTS, "x.toml", text);
    let _ = Policy::load(dir);
});
