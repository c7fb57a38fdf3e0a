//! `rules/glossary.toml`: the plain-English words for each field path, so that the register
//! (and later the audit report) speaks to a person, not a developer.
//!
//! ```toml
//! [fields]
//! "tenant.phone" = "telephone number"
//! "[].age_band" = "age band"
//!
//! [special]
//! # UK GDPR Art. 9 and Art. 10 data: a path marks everything under it
//! "health" = ["health"]
//! "caution_markers" = ["health", "criminal_offence"]
//! ```
//!
//! `[special]` marks the fields that may hold special category data (Art. 9), criminal
//! offence data (Art. 10), or data the controller handles with the same care (`sensitive`),
//! so the register flags every disclosure of them. A path there is matched like a word
//! lookup (with or without a leading `tenant.` or `[].`), and covers the paths under it; one
//! that covers no path of `[fields]` is an error, since it would flag nothing.
//!
//! A path without an entry is shown as itself: the glossary makes the register readable, it
//! never decides what is disclosed. `check` warns about disclosed paths it does not cover
//! ([`crate::register::coverage`]), so a new allow entry gets its words when it is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::diag::{line_of, Diagnostic};

/// The file's name inside the rules directory.
pub const FILE: &str = "glossary.toml";

/// Prefixes a lookup drops when the full path has no entry: the same field under a job's
/// `tenant` or in a list of tenants reads the same.
const FALLBACK_PREFIXES: &[&str] = &["tenant.", "[]."];

/// Field paths in rule form and their words.
#[derive(Debug, Clone, Default)]
pub struct Glossary {
    fields: BTreeMap<String, String>,
    /// `[special]`: paths and the categories of data they may hold.
    special: BTreeMap<String, Vec<Special>>,
}

/// A category of data the law guards more closely than other personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Special {
    Health,
    RacialOrEthnicOrigin,
    PoliticalOpinions,
    ReligiousOrPhilosophicalBeliefs,
    TradeUnionMembership,
    Genetic,
    Biometric,
    SexLifeOrSexualOrientation,
    CriminalOffence,
    /// Not a category of Art. 9 or 10, but handled with the same care by the controller
    /// (vulnerability and caution indicators).
    Sensitive,
}

/// The glossary could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlossary {
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    special: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
}

/// Loads `rules_dir/glossary.toml`; no file is an empty glossary (every path shows as itself).
///
/// # Errors
///
/// [`Error::Read`] when the file exists but cannot be read, [`Error::Parse`] when it is not
/// a `[fields]` table of strings.
pub fn load(rules_dir: &Path) -> Result<Glossary, Error> {
    let path = rules_dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Glossary::default()),
        Err(source) => return Err(Error::Read { path, source }),
    };
    Glossary::parse(&path, &text)
}

// === impl Glossary ===

impl Glossary {
    /// Parses the text of a glossary; `path` is for messages.
    ///
    /// # Errors
    ///
    /// [`Error::Parse`] when it is not a `[fields]` table of strings.
    pub fn parse(path: &Path, text: &str) -> Result<Glossary, Error> {
        let error = |offset: Option<usize>, message: String| Error::Parse {
            path: path.to_path_buf(),
            line: offset.map_or(0, |at| line_of(text, at)),
            message,
        };
        let raw: RawGlossary = toml::from_str(text)
            .map_err(|e| error(e.span().map(|s| s.start), e.message().trim().to_owned()))?;
        let mut glossary = Glossary {
            fields: raw.fields,
            special: BTreeMap::new(),
        };
        for (key, list) in raw.special {
            let at = Some(list.span().start);
            if canonical(&key) != key {
                let message = format!("special path {key:?}: write it as {:?}, which also covers it under tenant. and in lists", canonical(&key));
                return Err(error(at, message));
            }
            if !glossary.paths().any(|p| under(canonical(p), &key)) {
                let message = format!("special path {key:?} covers no path of [fields]");
                return Err(error(at, message));
            }
            let mut categories = Vec::new();
            for name in list.into_inner() {
                let category = Special::parse(name.get_ref()).ok_or_else(|| {
                    let message = format!(
                        "special category {:?} is not one of {}",
                        name.get_ref(),
                        Special::ALL
                            .iter()
                            .map(|c| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    error(Some(name.span().start), message)
                })?;
                categories.push(category);
            }
            if categories.is_empty() {
                return Err(error(at, format!("special path {key:?} names no category")));
            }
            glossary.special.insert(key, categories);
        }
        Ok(glossary)
    }

    /// A glossary of these entries, as a rules snapshot kept them (the words only: a
    /// report has no use for the special categories).
    pub fn from_fields(fields: BTreeMap<String, String>) -> Glossary {
        Glossary {
            fields,
            special: BTreeMap::new(),
        }
    }

    /// Every path with its words, sorted by path.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(p, w)| (p.as_str(), w.as_str()))
    }

    /// The words for `path`; failing the full path, the path without a leading `tenant.` or
    /// `[].` (repeatedly), so `[].tenant.phone` finds the words of `phone`.
    pub fn words(&self, path: &str) -> Option<&str> {
        fallbacks(path).find_map(|p| self.fields.get(p).map(String::as_str))
    }

    /// The categories of special data `path` may hold, in order, none twice: those of a
    /// `[special]` path it is under, or (when it discloses a whole subtree) one under it.
    pub fn special(&self, path: &str) -> Vec<Special> {
        let field = canonical(path);
        // `tenant` or `[]` alone: the whole record, so everything marked in it.
        let whole = field.is_empty() || field == "tenant" || field == "[]";
        let mut out: Vec<Special> = self
            .special
            .iter()
            .filter(|(key, _)| whole || under(field, key) || under(key, field))
            .flat_map(|(_, categories)| categories.iter().copied())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The words for `path`, or the path itself.
    pub fn words_or_path<'a>(&'a self, path: &'a str) -> &'a str {
        self.words(path).unwrap_or(path)
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The field paths it has words for.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }
}

/// `path` and then each shorter form a lookup falls back to.
fn fallbacks(path: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(path), |p| {
        FALLBACK_PREFIXES
            .iter()
            .find_map(|prefix| p.strip_prefix(prefix))
    })
}

/// `path` without any leading `tenant.` or `[].`: the same field wherever it is nested, as the
/// register's field matrix groups it.
pub fn canonical(path: &str) -> &str {
    fallbacks(path).last().unwrap_or(path)
}

/// Whether `path` is `key` or under it, by whole keys (`health.x` and `health[]` are under
/// `health`; `healthy` is not).
fn under(path: &str, key: &str) -> bool {
    path.strip_prefix(key)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

// === impl Special ===

impl Special {
    pub const ALL: [Special; 10] = [
        Special::Health,
        Special::RacialOrEthnicOrigin,
        Special::PoliticalOpinions,
        Special::ReligiousOrPhilosophicalBeliefs,
        Special::TradeUnionMembership,
        Special::Genetic,
        Special::Biometric,
        Special::SexLifeOrSexualOrientation,
        Special::CriminalOffence,
        Special::Sensitive,
    ];

    /// The name `[special]` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Special::Health => "health",
            Special::RacialOrEthnicOrigin => "racial_or_ethnic_origin",
            Special::PoliticalOpinions => "political_opinions",
            Special::ReligiousOrPhilosophicalBeliefs => "religious_or_philosophical_beliefs",
            Special::TradeUnionMembership => "trade_union_membership",
            Special::Genetic => "genetic",
            Special::Biometric => "biometric",
            Special::SexLifeOrSexualOrientation => "sex_life_or_sexual_orientation",
            Special::CriminalOffence => "criminal_offence",
            Special::Sensitive => "sensitive",
        }
    }

    pub fn parse(name: &str) -> Option<Special> {
        Special::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// As the register names it, with the article that sets it apart.
    pub fn words(self) -> &'static str {
        match self {
            Special::Health => "health (Art. 9)",
            Special::RacialOrEthnicOrigin => "racial or ethnic origin (Art. 9)",
            Special::PoliticalOpinions => "political opinions (Art. 9)",
            Special::ReligiousOrPhilosophicalBeliefs => {
                "religious or philosophical beliefs (Art. 9)"
            }
            Special::TradeUnionMembership => "trade union membership (Art. 9)",
            Special::Genetic => "genetic data (Art. 9)",
            Special::Biometric => "biometric data (Art. 9)",
            Special::SexLifeOrSexualOrientation => "sex life or sexual orientation (Art. 9)",
            Special::CriminalOffence => "criminal offence data (Art. 10)",
            Special::Sensitive => "sensitive (handled as special category)",
        }
    }
}

// === impl Error ===

impl Error {
    /// The error as `check` prints problems: `FILE:LINE: message`.
    pub fn to_diagnostic(&self) -> Diagnostic {
        match self {
            Error::Read { path, source } => {
                Diagnostic::error(path, 0, format!("cannot read: {source}"))
            }
            Error::Parse {
                path,
                line,
                message,
            } => Diagnostic::error(path, *line, message.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glossary(text: &str) -> Glossary {
        Glossary::parse(Path::new("glossary.toml"), text).expect("parses")
    }

    #[test]
    fn exact_path_first_then_without_prefix() {
        let g = glossary(
            "[fields]\n\"tenant.phone\" = \"telephone number\"\n\"phone\" = \"phone\"\n\"name\" = \"name\"\n",
        );
        assert_eq!(g.words("tenant.phone"), Some("telephone number"));
        assert_eq!(g.words("[].phone"), Some("phone"));
        assert_eq!(g.words("tenant.name"), Some("name"));
        assert_eq!(g.words("[].tenant.phone"), Some("telephone number"));
        assert_eq!(g.words("email"), None);
        assert_eq!(g.words_or_path("email"), "email");
    }

    #[test]
    fn unknown_tables_and_non_strings_are_errors_with_a_line() {
        let e = Glossary::parse(Path::new("g.toml"), "[feilds]\na = \"b\"\n").expect_err("typo");
        assert!(matches!(e, Error::Parse { line: 1, .. }), "{e}");
        let e = Glossary::parse(Path::new("g.toml"), "[fields]\n\na = 1\n").expect_err("number");
        assert!(matches!(e, Error::Parse { line: 3, .. }), "{e}");
    }

    #[test]
    fn special_paths_flag_the_fields_under_them_and_the_subtrees_holding_them() {
        let g = glossary(
            "[fields]\n\"tenant.caution_markers[].category\" = \"c\"\n\"health.conditions\" = \"h\"\n\
             [special]\n\"caution_markers\" = [\"health\", \"criminal_offence\"]\n\"health\" = [\"health\"]\n",
        );
        let both = [Special::Health, Special::CriminalOffence];
        assert_eq!(g.special("tenant.caution_markers[].category"), both);
        assert_eq!(g.special("[].caution_markers"), both);
        assert_eq!(g.special("health.conditions"), [Special::Health]);
        assert_eq!(
            g.special("tenant"),
            both,
            "a whole tenant record holds them"
        );
        assert_eq!(g.special("healthy"), []);
        assert_eq!(g.special("tenant.phone"), []);
        assert_eq!(canonical("[].tenant.phone"), "phone");
    }

    #[test]
    fn special_paths_and_categories_are_checked_with_a_line() {
        let text = "[fields]\na = \"a\"\n[special]\n\nb = [\"health\"]\n";
        let e = Glossary::parse(Path::new("g.toml"), text).expect_err("covers nothing");
        assert!(matches!(e, Error::Parse { line: 5, .. }), "{e}");
        let text = "[fields]\na = \"a\"\n[special]\na = [\"helth\"]\n";
        let e = Glossary::parse(Path::new("g.toml"), text).expect_err("typo");
        assert!(matches!(e, Error::Parse { line: 4, .. }), "{e}");
        assert!(
            e.to_string().contains("\"helth\" is not one of health"),
            "{e}"
        );
        let e =
            Glossary::parse(Path::new("g.toml"), "[special]\na = \"health\"\n").expect_err("list");
        assert!(matches!(e, Error::Parse { line: 2, .. }), "{e}");
    }

    #[test]
    fn no_file_is_an_empty_glossary() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(load(dir.path()).expect("loads").is_empty());
    }
}
