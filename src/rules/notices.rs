//! `rules/notices.toml`: the privacy notices the rules cite, so that the register names a
//! notice by its title, version and address rather than by the id a comment cites it by.
//!
//! ```toml
//! [[notice]]
//! id = "sharing"                       # what comments cite: # sharing: "the quoted words"
//! title = "Sharing your information with other organisations"
//! version = "v3, May 2024"             # optional: the version or date, as published
//! url = "https://www.example.org/privacy-notice/sharing"
//! ```
//!
//! A comment in a type file cites a notice as `ID: "quoted words"`. With this file present,
//! `check` warns about a citation whose id it does not name, at the comment's line: a register
//! filed with a dangling citation points a reader nowhere. The notices only describe; they
//! never change what is disclosed, so a problem in a citation is a warning, while a malformed
//! notice (a typo in a key, no title, a duplicate id) is an error like any rule.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::diag::{line_of, Diagnostic};

/// The file's name inside the rules directory.
pub const FILE: &str = "notices.toml";

/// One privacy notice the rules rest on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// What a citation names it by.
    pub id: String,
    pub title: String,
    /// The version or date as the notice itself labels it; `None` when not recorded.
    pub version: Option<String>,
    /// Where a reader finds the notice (an `https://` address).
    pub url: String,
}

/// The notices, in the order the file lists them.
#[derive(Debug, Clone, Default)]
pub struct Notices(Vec<Notice>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotices {
    #[serde(default)]
    notice: Vec<Spanned<RawNotice>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotice {
    id: Spanned<String>,
    title: Spanned<String>,
    version: Option<Spanned<String>>,
    url: Spanned<String>,
}

// === impl Notices ===

impl Notices {
    /// Parses `text`; `path` is for the problems, every one of which is returned.
    pub fn parse(path: &Path, text: &str) -> (Notices, Vec<Diagnostic>) {
        let mut problems = Vec::new();
        let line = |offset: usize| line_of(text, offset);
        let raw: RawNotices = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let at = e.span().map_or(0, |s| line(s.start));
                problems.push(Diagnostic::error(path, at, e.message().trim()));
                return (Notices::default(), problems);
            }
        };
        let mut notices: Vec<Notice> = Vec::new();
        for spanned in raw.notice {
            let raw = spanned.into_inner();
            let mut error = |at: usize, message: String| {
                problems.push(Diagnostic::error(path, line(at), message));
            };
            let id = raw.id.get_ref();
            if id.is_empty() || !id.chars().all(is_id_char) {
                let message = format!("notice id {id:?} must be letters, digits, '_', '-' and '.', as a citation names it (ID: \"quote\")");
                error(raw.id.span().start, message);
            } else if notices.iter().any(|n| n.id == *id) {
                error(
                    raw.id.span().start,
                    format!("notice id {id:?} is listed twice"),
                );
            }
            if raw.title.get_ref().trim().is_empty() {
                error(raw.title.span().start, "notice title is empty".to_owned());
            }
            let url = raw.url.get_ref();
            if !url.starts_with("https://") || url.len() <= 8 || url.contains(char::is_whitespace) {
                let message = format!("notice url {url:?} is not an https:// address");
                error(raw.url.span().start, message);
            }
            let version = raw.version.map(|v| {
                if v.get_ref().trim().is_empty() {
                    error(
                        v.span().start,
                        "notice version is empty: leave it out instead".to_owned(),
                    );
                }
                v.into_inner().trim().to_owned()
            });
            notices.push(Notice {
                id: raw.id.into_inner(),
                title: raw.title.into_inner().trim().to_owned(),
                version,
                url: raw.url.into_inner(),
            });
        }
        (Notices(notices), problems)
    }

    pub fn get(&self, id: &str) -> Option<&Notice> {
        self.0.iter().find(|n| n.id == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Notice> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The warning for a citation of `id` at `path:line` when no notice has that id.
    pub fn check_citation(&self, path: &Path, line: usize, id: &str) -> Option<Diagnostic> {
        self.get(id).is_none().then(|| {
            Diagnostic::warning(
                path,
                line,
                format!("cites notice {id:?}, which {FILE} does not name: the register shows the id instead of a title"),
            )
        })
    }
}

// === impl Notice ===

impl Notice {
    /// The title with its version: `Sharing your information (v3, May 2024)`.
    pub fn label(&self) -> String {
        match &self.version {
            Some(version) => format!("{} ({version})", self.title),
            None => self.title.clone(),
        }
    }
}

// === citations ===

/// A piece of a citation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CitationPart<'a> {
    /// The id of the notice cited, without the colon after it.
    Document(&'a str),
    Text(&'a str),
}

/// Every notice id cited in the `#` comment lines of `text`, with its 1-based line.
pub fn citations(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(comment) = line.trim_start().strip_prefix('#') else {
            continue;
        };
        for part in citation_parts(comment) {
            if let CitationPart::Document(id) = part {
                out.push((i + 1, id.to_owned()));
            }
        }
    }
    out
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// `sharing: "quote"; use: "more"` split into the notice ids it cites and the text between:
/// an id is a run of id characters directly followed by `: "`, so a renderer can replace it
/// with the notice's title and `check` can find the ones no notice names.
pub fn citation_parts(citation: &str) -> Vec<CitationPart<'_>> {
    let mut parts = Vec::new();
    let mut rest = citation;
    while let Some(colon) = rest.find(": \"") {
        let start = rest[..colon]
            .rfind(|c: char| !is_id_char(c))
            .map_or(0, |i| i + 1);
        if start == colon {
            parts.push(CitationPart::Text(&rest[..colon + 1]));
        } else {
            if start > 0 {
                parts.push(CitationPart::Text(&rest[..start]));
            }
            parts.push(CitationPart::Document(&rest[start..colon]));
        }
        rest = &rest[colon + 1..];
    }
    if !rest.is_empty() {
        parts.push(CitationPart::Text(rest));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[notice]]
id = "sharing.txt"
title = "Sharing your information"
version = "v3"
url = "https://www.example.org/sharing"

[[notice]]
id = "use"
title = "How we use your information"
url = "https://www.example.org/use"
"#;

    fn parse(text: &str) -> (Notices, Vec<String>) {
        let (notices, problems) = Notices::parse(Path::new("notices.toml"), text);
        (notices, problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn loads_titles_versions_and_addresses() {
        let (notices, problems) = parse(GOOD);
        assert!(problems.is_empty(), "{problems:?}");
        let sharing = notices.get("sharing.txt").expect("sharing");
        assert_eq!(sharing.label(), "Sharing your information (v3)");
        assert_eq!(
            notices.get("use").expect("use").label(),
            "How we use your information"
        );
        assert_eq!(notices.iter().count(), 2);
    }

    #[test]
    fn unknown_keys_and_bad_entries_are_errors_at_their_line() {
        let (_, problems) =
            parse("[[notice]]\nid = \"a\"\ntitel = \"x\"\nurl = \"https://x.org\"\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("notices.toml:3: unknown field `titel`"),
            "{problems:?}"
        );
        let text =
            "[[notice]]\nid = \"a b\"\ntitle = \" \"\nurl = \"http://x.org\"\nversion = \"\"\n\
                    [[notice]]\nid = \"c\"\ntitle = \"t\"\nurl = \"https://x.org\"\n\
                    [[notice]]\nid = \"c\"\ntitle = \"t\"\nurl = \"https://x.org\"\n";
        let (_, problems) = parse(text);
        let lines: Vec<&str> = problems
            .iter()
            .map(|p| p.split(": ").next().unwrap_or_default())
            .collect();
        assert_eq!(
            lines,
            [
                "notices.toml:2",
                "notices.toml:3",
                "notices.toml:4",
                "notices.toml:5",
                "notices.toml:11"
            ],
            "{problems:?}"
        );
        assert!(problems[4].contains("listed twice"), "{problems:?}");
    }

    #[test]
    fn citations_of_unnamed_notices_are_warnings_at_the_comment() {
        let (notices, _) = parse(GOOD);
        let text = "type = \"t\"\n# sharing.txt: \"ok\"; use: \"ok\"\npurpose = \"p\"\n\n  # typo.txt: \"quote\"\nx = 1 # not: \"a comment line\"\n";
        let cited = citations(text);
        assert_eq!(cited.len(), 3, "{cited:?}");
        let warnings: Vec<String> = cited
            .iter()
            .filter_map(|(line, id)| notices.check_citation(Path::new("t.toml"), *line, id))
            .map(|d| d.to_string())
            .collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("t.toml:5: warning: cites notice \"typo.txt\""),
            "{warnings:?}"
        );
    }

    #[test]
    fn citations_set_the_notice_ids_apart() {
        assert_eq!(
            citation_parts("000_ab.txt: \"one\"; use: \"two\": after"),
            [
                CitationPart::Document("000_ab.txt"),
                CitationPart::Text(" \"one\"; "),
                CitationPart::Document("use"),
                CitationPart::Text(" \"two\": after"),
            ]
        );
        assert_eq!(
            citation_parts("said \": \"x\""),
            [CitationPart::Text("said \":"), CitationPart::Text(" \"x\"")]
        );
        assert_eq!(
            citation_parts("no notice"),
            [CitationPart::Text("no notice")]
        );
    }
}
