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
    for route in policy.types().flat_map(|kind| &kind.routes) {
        let conditions = route.plan.conditions();
        let sites = &route.rule_sites;
        let allow = route.plan.allow().iter().zip(&sites.allow);
        let when = conditions
            .when()
            .iter()
            .zip(&sites.when)
            .flat_map(|(when, site)| when.allow.iter().zip(&site.allow));
        let derive = conditions
            .derive()
            .iter()
            .zip(&sites.derive)
            .map(|(derive, site)| (&derive.field, site));
        for (path, site) in allow.chain(when).chain(derive) {
            let path = path.to_string();
            if glossary.words(&path).is_none() {
                out.push((site.file.to_path_buf(), site.line, path));
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
