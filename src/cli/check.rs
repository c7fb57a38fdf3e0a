//! `check`: load the config and rules as `serve` would, bind nothing, print every problem.

use std::path::Path;

use crate::config::Settings;
use crate::diag::Diagnostic;

/// The certificate and key files, loaded as `serve` would load them.
fn check_tls(settings: &Settings) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    let mut push = |e: crate::tls::Error| {
        let (file, message) = match e {
            crate::tls::Error::File { path, reason } => (path, reason),
            other => (settings.source.clone(), other.to_string()),
        };
        problems.push(Diagnostic::error(&file, 0, message));
    };
    if let Some(tls) = &settings.server.tls {
        if let Err(e) = crate::tls::server_config(tls) {
            push(e);
        }
    }
    if settings.upstream.url.scheme_str() == Some("https") {
        if let Err(e) = crate::tls::upstream_client_config(settings.upstream.ca.as_deref()) {
            push(e);
        }
    }
    problems
}

/// Prints each problem as `FILE:LINE: message`, then a count; 0 without errors, 1 with any.
pub fn run(config: &Path) -> u8 {
    let mut problems: Vec<Diagnostic> = Vec::new();
    match Settings::load(config) {
        Err(e) => problems.extend(e.0),
        Ok(settings) => {
            match settings.load_policy_offline() {
                Err(e) => problems.extend(e.0),
                Ok((policy, missing_key)) => {
                    problems.extend(
                        missing_key.map(|m| settings.error_at("rules.pseudonym_key_env", m)),
                    );
                    problems.extend(policy.warnings().iter().cloned());
                    problems.extend(crate::register::coverage::missing_warnings(
                        &policy,
                        policy.glossary(),
                    ));
                }
            }
            problems.extend(check_tls(&settings));
            if let Some(c) = &settings.audit_checkpoints {
                if let Err(e) = crate::audit::checkpoint::SigningKey::load(&c.key) {
                    let message = format!("audit.checkpoint_key: {e}");
                    problems.push(settings.error_at("audit.checkpoint_key", message));
                }
            }
            problems.extend(super::serve::preflight(&settings));
        }
    }
    let errors = problems.iter().filter(|d| d.is_error()).count();
    let warnings = problems.len() - errors;
    for problem in &problems {
        println!("{problem}");
    }
    println!("{errors} error(s), {warnings} warning(s)");
    u8::from(errors > 0)
}
