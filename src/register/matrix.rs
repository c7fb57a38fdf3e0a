//! Who can see each field: the disclosed fields against the recipient types, across every
//! route, so that "who can see the phone number, by which route, and when" is one row.
//!
//! A field is grouped with its copies under `tenant.` and in lists (`phone`, `tenant.phone`,
//! `[].phone`), as the glossary words them ([`glossary::canonical`]): to a reader they are
//! one fact about a person, whichever record it is sent in.

use std::collections::BTreeMap;

use super::glossary::{self, Glossary, Special};
use super::{Disclosure, TypeEntry};

/// One field and, for each type, how it can see it.
#[derive(Debug, Clone)]
pub struct MatrixRow {
    /// The path without `tenant.` or `[].`: what groups the row.
    pub field: String,
    pub words: String,
    /// The paths as the rules write them, each once.
    pub paths: Vec<String>,
    pub special: Vec<Special>,
    /// One list per type, in the register's order of types; empty: that type never sees it.
    pub cells: Vec<Vec<Access>>,
}

/// One route by which a type sees a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// `always`, `condition` or `derived`: [`Disclosure::kind`].
    pub kind: &'static str,
    /// `Always`, `Only when: <reason>`, `Derived: <what>`.
    pub how: String,
    /// `GET /jobs/{job_id}`.
    pub route: String,
    /// The reasons of row filters and refusals that limit it further.
    pub limits: Vec<String>,
}

/// The matrix of `types`, rows in the order of their words.
pub fn build(types: &[TypeEntry], glossary: &Glossary) -> Vec<MatrixRow> {
    let mut rows: BTreeMap<String, MatrixRow> = BTreeMap::new();
    for (column, kind) in types.iter().enumerate() {
        for route in &kind.routes {
            let refused = route.rows.iter().find_map(|r| match &r.disclosure {
                Disclosure::Refused { reason, .. } => Some(format!("refused whole when: {reason}")),
                _ => None,
            });
            for r in &route.rows {
                if !matches!(
                    r.disclosure,
                    Disclosure::Always | Disclosure::Condition { .. } | Disclosure::Derived { .. }
                ) {
                    continue;
                }
                let field = glossary::canonical(&r.field).to_owned();
                let row = rows.entry(field.clone()).or_insert_with(|| MatrixRow {
                    words: glossary.words(&field).unwrap_or(&r.words).to_owned(),
                    field,
                    paths: Vec::new(),
                    special: Vec::new(),
                    cells: vec![Vec::new(); types.len()],
                });
                if !row.paths.contains(&r.field) {
                    row.paths.push(r.field.clone());
                }
                row.special.extend(&r.special);
                row.special.sort();
                row.special.dedup();
                let mut limits: Vec<String> = r
                    .only_entries
                    .iter()
                    .map(|reason| format!("entries: {reason}"))
                    .collect();
                limits.extend(refused.clone());
                let access = Access {
                    kind: r.disclosure.kind(),
                    how: r.disclosure.summary(),
                    route: route.name(),
                    limits,
                };
                if !row.cells[column].contains(&access) {
                    row.cells[column].push(access);
                }
            }
        }
    }
    let mut rows: Vec<MatrixRow> = rows.into_values().collect();
    rows.sort_by_cached_key(|r| (r.words.to_lowercase(), r.field.clone()));
    rows
}

// === impl MatrixRow ===

impl MatrixRow {
    /// The types that can see the field, in the register's order.
    pub fn receivers<'a>(&'a self, types: &'a [TypeEntry]) -> impl Iterator<Item = &'a TypeEntry> {
        types
            .iter()
            .zip(&self.cells)
            .filter(|(_, cell)| !cell.is_empty())
            .map(|(kind, _)| kind)
    }
}

// === impl Access ===

impl Access {
    /// `Always, by GET /tenants/{tenant_id}`, with its limits after.
    pub fn text(&self) -> String {
        let mut text = format!("{}, by {}", self.how, self.route);
        for limit in &self.limits {
            text.push_str("; ");
            text.push_str(limit);
        }
        text
    }
}
