//! Who a record's recipient was and what its fields are called, as the rules of the time
//! said: from the rules snapshot the record names, checked against its digest; failing that
//! (a ledger from before snapshots, or PostgreSQL), from the rules the config names.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use serde_json::Value;

use crate::audit::{self, snapshots};
use crate::register::glossary::Glossary;
use crate::rules::snapshot::Snapshot;
use crate::rules::Policy;

/// How one record's recipient is described, and from what.
pub(super) struct Described {
    pub name: String,
    pub purpose: String,
    pub lawful_basis: String,
    /// `snapshot`, `rules` or `unresolved`.
    pub from: &'static str,
    /// For the reader: the description is not from the rules of the time.
    pub notes: Vec<String>,
    /// Why it could not be described faithfully: the report cannot be relied on.
    pub problem: Option<String>,
    /// The snapshot whose glossary gives the fields' words; `None`: the rules' glossary.
    glossary: Option<String>,
}

/// Opens each snapshot once, however many records name it.
pub(super) struct Describer<'a> {
    dirs: &'a [PathBuf],
    policy: Option<&'a Policy>,
    rules_glossary: &'a Glossary,
    /// By digest: `None` when no directory holds it, else it opened or why not.
    opened: HashMap<String, Option<Result<Opened, String>>>,
}

struct Opened {
    snapshot: Snapshot,
    glossary: Glossary,
}

// === impl Describer ===

impl<'a> Describer<'a> {
    pub(super) fn new(
        dirs: &'a [PathBuf],
        policy: Option<&'a Policy>,
        rules_glossary: &'a Glossary,
    ) -> Self {
        Describer {
            dirs,
            policy,
            rules_glossary,
            opened: HashMap::new(),
        }
    }

    /// The recipient `id` (of type `kind`) of `record`. The purpose and lawful basis the
    /// record states itself win: they are under the hash chain.
    pub(super) fn describe(&mut self, record: &Value, id: &str, kind: &str) -> Described {
        let generation = record["rules_generation"].as_str().unwrap_or_default();
        let recorded = |key: &str| record[key].as_str().unwrap_or_default().to_owned();
        let (purpose, lawful_basis) = (recorded("purpose"), recorded("lawful_basis"));
        let mut problem = None;
        let mut missing = "the record was written before rules snapshots were kept".to_owned();
        if let Some(digest) = record[audit::RULES_SNAPSHOT].as_str() {
            match self.open(digest) {
                Some(Ok(opened)) if opened.snapshot.generation != generation => {
                    problem = Some(format!(
                        "rules snapshot {digest} is of rules generation {}, not the record's {generation}",
                        opened.snapshot.generation
                    ));
                }
                Some(Ok(opened)) => match opened.snapshot.recipients.get(id) {
                    Some(organisation) => {
                        let stated = opened.snapshot.types.get(kind);
                        return Described {
                            name: organisation.name.clone(),
                            purpose: or(purpose, stated.map(|t| &t.purpose)),
                            lawful_basis: or(lawful_basis, stated.map(|t| &t.lawful_basis)),
                            from: "snapshot",
                            notes: Vec::new(),
                            problem: None,
                            glossary: Some(digest.to_owned()),
                        };
                    }
                    None => {
                        problem = Some(format!("rules snapshot {digest} does not name {id}"));
                    }
                },
                Some(Err(reason)) => {
                    problem = Some(format!("rules snapshot {digest} cannot be used: {reason}"));
                }
                None => missing = format!("its rules snapshot {digest} is not beside the ledger"),
            }
        }
        match self.policy.and_then(|p| p.recipient(id).map(|r| (p, r))) {
            Some((policy, recipient)) => {
                let mut notes = Vec::new();
                if policy.generation() != generation {
                    notes.push(format!(
                        "described from the rules in force now, not those of the disclosure ({})",
                        problem.as_deref().unwrap_or(&missing)
                    ));
                }
                Described {
                    name: recipient.name.clone(),
                    purpose: or(purpose, Some(&recipient.kind.purpose)),
                    lawful_basis: or(lawful_basis, Some(&recipient.kind.lawful_basis.to_string())),
                    from: "rules",
                    notes,
                    problem,
                    glossary: None,
                }
            }
            None => {
                let rules = match self.policy {
                    Some(_) => "the rules in force do not name it",
                    None => "no rules were given (--config)",
                };
                Described {
                    name: id.to_owned(),
                    purpose,
                    lawful_basis,
                    from: "unresolved",
                    notes: Vec::new(),
                    problem: Some(
                        problem
                            .unwrap_or_else(|| format!("cannot be named: {missing}, and {rules}")),
                    ),
                    glossary: None,
                }
            }
        }
    }

    /// The glossary `described` is worded by.
    pub(super) fn glossary(&self, described: &Described) -> &Glossary {
        described
            .glossary
            .as_ref()
            .and_then(|digest| self.opened.get(digest))
            .and_then(|o| o.as_ref()?.as_ref().ok())
            .map_or(self.rules_glossary, |o| &o.glossary)
    }

    fn open(&mut self, digest: &str) -> Option<&Result<Opened, String>> {
        if !self.opened.contains_key(digest) {
            let opened = match snapshots::read(self.dirs, digest) {
                Ok(None) => None,
                Ok(Some(bytes)) => Some(
                    Snapshot::open(&bytes, digest)
                        .map(|snapshot| Opened {
                            glossary: snapshot.glossary(),
                            snapshot,
                        })
                        .map_err(|e| e.to_string()),
                ),
                Err(e) => Some(Err(format!("cannot be read: {e}"))),
            };
            self.opened.insert(digest.to_owned(), opened);
        }
        self.opened.get(digest)?.as_ref()
    }
}

/// The recipient types the snapshots in `dirs` name, for checking `--exempt` without rules.
pub fn snapshot_types(dirs: &[PathBuf]) -> BTreeSet<String> {
    let mut types = BTreeSet::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            let Some(digest) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let bytes = std::fs::read(&path).unwrap_or_default();
            if let Ok(snapshot) = Snapshot::open(&bytes, digest) {
                types.extend(snapshot.types.into_keys());
            }
        }
    }
    types
}

/// What the record says, or else what the rules said.
fn or(recorded: String, stated: Option<&String>) -> String {
    match stated {
        Some(stated) if recorded.is_empty() => stated.clone(),
        _ => recorded,
    }
}
