//! `rules/glossary.toml`: the plain-English words for each field path, so that the register
//! (and later the audit report) speaks to a person, not a developer.
//!
//! ```toml
//! [fields]
//! "tenant.phone" = "telephone number"
//! "[].age_band" = "age band"
//! ```
//!
//! A path without an entry is shown as itself: the glossary makes the register readable, it
//! never decides what is disclosed. `check` warns about disclosed paths it does not cover
//! ([`crate::register::coverage`]), so a new allow entry gets its words when it is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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
        let raw: RawGlossary = toml::from_str(text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(0),
            message: e.message().trim().to_owned(),
        })?;
        Ok(Glossary { fields: raw.fields })
    }

    /// A glossary of these entries, as a rules snapshot kept them.
    pub fn from_fields(fields: BTreeMap<String, String>) -> Glossary {
        Glossary { fields }
    }

    /// Every path with its words, sorted by path.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(p, w)| (p.as_str(), w.as_str()))
    }

    /// The words for `path`; failing the full path, the path without a leading `tenant.` or
    /// `[].` (repeatedly), so `[].tenant.phone` finds the words of `phone`.
    pub fn words(&self, path: &str) -> Option<&str> {
        let mut path = path;
        loop {
            if let Some(words) = self.fields.get(path) {
                return Some(words);
            }
            path = FALLBACK_PREFIXES
                .iter()
                .find_map(|prefix| path.strip_prefix(prefix))?;
        }
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
    fn no_file_is_an_empty_glossary() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(load(dir.path()).expect("loads").is_empty());
    }
}
