//! `check`: load the config and rules as `serve` would, bind nothing, print every problem.

use std::path::Path;

use crate::config::Settings;
use crate::rules::diag::Diagnostic;
use crate::rules::Policy;

/// Prints each problem as `FILE:LINE: message`, then a count; 0 without errors, 1 with any.
pub fn run(config: &Path) -> u8 {
    let mut problems: Vec<Diagnostic> = Vec::new();
    match Settings::load(config) {
        Err(e) => problems.extend(e.0),
        Ok(settings) => match Policy::load_for(&settings) {
            Err(e) => problems.extend(e.0),
            Ok(policy) => problems.extend(policy.warnings().iter().cloned()),
        },
    }
    let errors = problems.iter().filter(|d| d.is_error()).count();
    let warnings = problems.len() - errors;
    for problem in &problems {
        println!("{problem}");
    }
    println!("{errors} error(s), {warnings} warning(s)");
    u8::from(errors > 0)
}
