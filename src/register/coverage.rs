//! Which disclosed paths the glossary has no words for, so that `check` can say so where the
//! path is written.

use std::path::PathBuf;

use crate::diag::Diagnostic;
use crate::rules::glossary::{self, Glossary};
use crate::rules::Policy;

/// Every disclosed path (allow, `when` allow, derived field) the glossary has no words for,
/// as `(file, line, path)` in file and line order, for `check` to warn about.
pub fn missing(policy: &Policy, glossary: &Glossary) -> Vec<(PathBuf, usize, String)> {
    let mut out = Vec::new();
    for kind in policy.types() {
        for route in &kind.routes {
            // The entry lines are only in the file; without it, the route's line will do.
            let source = super::source::TypeSource::read(&route.file).ok();
            let source = source
                .as_ref()
                .and_then(|s| s.route(&route.file, route.line).ok());
            let mut found = |line: Option<usize>, path: String| {
                if glossary.words(&path).is_none() {
                    out.push((route.file.clone(), line.unwrap_or(route.line), path));
                }
            };
            for (i, path) in route.plan.allow().iter().enumerate() {
                let line = source.and_then(|s| s.allow.get(i)).map(|e| e.line);
                found(line, path.to_string());
            }
            for (w, when) in route.plan.conditions().when().iter().enumerate() {
                for (i, path) in when.allow.iter().enumerate() {
                    let line = source
                        .and_then(|s| s.when.get(w))
                        .and_then(|b| b.allow.get(i).copied());
                    found(line, path.to_string());
                }
            }
            for (d, derive) in route.plan.conditions().derive().iter().enumerate() {
                let line = source.and_then(|s| s.derive.get(d)).map(|e| e.line);
                found(line, derive.field.to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// [`missing`] as `check` prints it: one warning per path, at the line that discloses it.
pub fn missing_warnings(policy: &Policy, glossary: &Glossary) -> Vec<Diagnostic> {
    missing(policy, glossary)
        .into_iter()
        .map(|(file, line, path)| {
            Diagnostic::warning(
                &file,
                line,
                format!("disclosed path \"{path}\" has no plain words in {}: the register shows the path itself", glossary::FILE),
            )
        })
        .collect()
}
