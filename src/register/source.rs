//! The rule files re-read for what the compiled [`Policy`](crate::rules::Policy) drops: the
//! line of each entry and the comment block above it, which cites the privacy notice.
//!
//! The loader keeps only a route's own line, because serving needs no more. The register
//! needs the citation of every allow entry, `when`, `items`, `derive` and `refuse`, so it
//! parses the type file again with spans. The compiled route is matched to its table by line;
//! the rules within a route are matched by position, which is the order the loader keeps.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::diag::line_of;

/// The rule files could not be read again, or no longer match the loaded rules.
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
    #[error("{}:{line}: no route starts here any more: the rules changed while the register was made", path.display())]
    Changed { path: PathBuf, line: usize },
}

/// One type file: the citation of its purpose and lawful basis, and its routes.
#[derive(Debug, Default)]
pub struct TypeSource {
    pub purpose: Vec<String>,
    pub lawful_basis: Vec<String>,
    pub routes: Vec<RouteSource>,
}

/// One `[[route]]`: its line, the comment above it, and each rule's line and citation.
#[derive(Debug, Default)]
pub struct RouteSource {
    pub line: usize,
    /// The comment above `[[route]]`: what the route is for, in the author's words.
    pub note: Vec<String>,
    pub allow: Vec<Entry>,
    pub when: Vec<Block>,
    pub items: Vec<Entry>,
    pub derive: Vec<Entry>,
    pub refuse: Option<Entry>,
}

/// A `[[route.when]]`: its own citation, and the line of each of its allow entries.
#[derive(Debug, Default)]
pub struct Block {
    pub entry: Entry,
    pub allow: Vec<usize>,
}

/// Where one rule is written and the comment lines directly above it, `#` stripped.
#[derive(Debug, Default, Clone)]
pub struct Entry {
    pub line: usize,
    pub comment: Vec<String>,
}

// The shape of a type file, only as far as lines go; the loader has checked everything else
// (unknown keys included), so nothing here is strict.

#[derive(Deserialize)]
struct RawType {
    purpose: Spanned<String>,
    lawful_basis: Spanned<String>,
    #[serde(default)]
    route: Vec<Spanned<RawRoute>>,
}

#[derive(Deserialize)]
struct RawRoute {
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    when: Vec<Spanned<RawWhen>>,
    #[serde(default)]
    items: Vec<Spanned<toml::Value>>,
    #[serde(default)]
    derive: Vec<Spanned<toml::Value>>,
    refuse: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
struct RawWhen {
    #[serde(default)]
    allow: Vec<Spanned<String>>,
}

// === impl TypeSource ===

impl TypeSource {
    /// Reads and parses one type file.
    ///
    /// # Errors
    ///
    /// [`Error::Read`] or [`Error::Parse`]: the file went away or broke since it was loaded.
    pub fn read(path: &Path) -> Result<TypeSource, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses the text of a type file; `path` is for messages only.
    ///
    /// # Errors
    ///
    /// [`Error::Parse`] when the text is not a type file.
    pub fn parse(path: &Path, text: &str) -> Result<TypeSource, Error> {
        let raw: RawType = toml::from_str(text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(0),
            message: e.message().to_string(),
        })?;
        let lines: Vec<&str> = text.lines().collect();
        let at = |offset: usize| line_of(text, offset);
        let entry = |line: usize| Entry {
            line,
            comment: comment_above(&lines, line),
        };
        // A table's span may start at its header or at its first key: cite from the header.
        let table = |offset: usize, header: &str| entry(header_line(&lines, at(offset), header));
        let routes = raw
            .route
            .iter()
            .map(|r| {
                let line = at(r.span().start);
                let route = r.get_ref();
                RouteSource {
                    line,
                    note: comment_above(&lines, header_line(&lines, line, "[[route]]")),
                    allow: route
                        .allow
                        .iter()
                        .map(|a| Entry {
                            line: at(a.span().start),
                            comment: entry_comment(&lines, at(a.span().start)),
                        })
                        .collect(),
                    when: route
                        .when
                        .iter()
                        .map(|w| Block {
                            entry: table(w.span().start, "[[route.when]]"),
                            allow: w
                                .get_ref()
                                .allow
                                .iter()
                                .map(|a| at(a.span().start))
                                .collect(),
                        })
                        .collect(),
                    items: route
                        .items
                        .iter()
                        .map(|i| table(i.span().start, "[[route.items]]"))
                        .collect(),
                    derive: route
                        .derive
                        .iter()
                        .map(|d| table(d.span().start, "[[route.derive]]"))
                        .collect(),
                    refuse: route
                        .refuse
                        .as_ref()
                        .map(|r| table(r.span().start, "[route.refuse]")),
                }
            })
            .collect();
        Ok(TypeSource {
            purpose: comment_above(&lines, at(raw.purpose.span().start)),
            lawful_basis: comment_above(&lines, at(raw.lawful_basis.span().start)),
            routes,
        })
    }

    /// The route whose `[[route]]` is at `line` (as [`crate::rules::Route::line`] holds).
    ///
    /// # Errors
    ///
    /// [`Error::Changed`] when none is: the file is not the one the policy was loaded from.
    pub fn route(&self, path: &Path, line: usize) -> Result<&RouteSource, Error> {
        self.routes
            .iter()
            .find(|r| r.line == line)
            .ok_or_else(|| Error::Changed {
                path: path.to_path_buf(),
                line,
            })
    }
}

// === comments ===

/// The contiguous `#` lines directly above 1-based `line`, in order, each without its `#`.
pub fn comment_above(lines: &[&str], line: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = line.saturating_sub(1);
    while i > 0 {
        let Some(text) = lines.get(i - 1).map(|l| l.trim()) else {
            break;
        };
        let Some(comment) = text.strip_prefix('#') else {
            break;
        };
        out.push(comment.trim().to_owned());
        i -= 1;
    }
    out.reverse();
    out
}

/// The comment above an allow entry. Entries written on the line under an uncommented entry
/// line share that line's comment, as a list spread over lines reads; the `allow = [` line
/// itself ends the search, so one route's comment is never taken for another's entry.
fn entry_comment(lines: &[&str], line: usize) -> Vec<String> {
    let mut line = line;
    loop {
        let comment = comment_above(lines, line);
        if !comment.is_empty() || line < 2 {
            return comment;
        }
        let above = lines.get(line - 2).map(|l| l.trim()).unwrap_or_default();
        if !above.starts_with('"') && !above.starts_with('\'') {
            return comment;
        }
        line -= 1;
    }
}

/// The line of the `header` a table's span at `line` belongs to: `line` itself when it is
/// the header, else the nearest header line above it.
fn header_line(lines: &[&str], line: usize, header: &str) -> usize {
    let mut i = line;
    while i > 0 {
        if lines.get(i - 1).is_some_and(|l| l.trim() == header) {
            return i;
        }
        i -= 1;
    }
    line
}

/// The comment lines as one citation: joined with spaces, as the author wrapped them.
pub fn join(comment: &[String]) -> String {
    comment
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"type = "t"
# notice.txt: "why the purpose"
purpose = "p"
lawful_basis = "contract"

# What the route is for.
[[route]]
method = "GET"
path = "/x"
allow = [
  # notice.txt: "a and b"
  "a", "b",
  "c",
  # notice.txt: "d"
  "d",
]

# notice.txt: "when"
[[route.when]]
condition = "true"
reason = "r"
allow = ["e"]

# notice.txt: "derive"
[[route.derive]]
field = "f"
value = "1"

# notice.txt: "refuse"
[route.refuse]
condition = "false"
reason = "r"
"#;

    #[test]
    fn finds_the_comment_above_each_rule() {
        let t = TypeSource::parse(Path::new("t.toml"), TEXT).expect("parses");
        assert_eq!(t.purpose, ["notice.txt: \"why the purpose\""]);
        assert!(t.lawful_basis.is_empty());
        let r = t.route(Path::new("t.toml"), 7).expect("route at line 7");
        assert_eq!(r.note, ["What the route is for."]);
        let allow: Vec<String> = r.allow.iter().map(|e| join(&e.comment)).collect();
        assert_eq!(
            allow,
            [
                "notice.txt: \"a and b\"",
                "notice.txt: \"a and b\"",
                "notice.txt: \"a and b\"",
                "notice.txt: \"d\""
            ]
        );
        assert_eq!(r.when[0].entry.line, 19);
        assert_eq!(join(&r.when[0].entry.comment), "notice.txt: \"when\"");
        assert_eq!(r.when[0].allow, [22]);
        assert_eq!(join(&r.derive[0].comment), "notice.txt: \"derive\"");
        assert_eq!(
            join(&r.refuse.as_ref().expect("refuse").comment),
            "notice.txt: \"refuse\""
        );
    }

    #[test]
    fn a_route_that_moved_is_an_error() {
        let t = TypeSource::parse(Path::new("t.toml"), TEXT).expect("parses");
        assert!(matches!(
            t.route(Path::new("t.toml"), 8),
            Err(Error::Changed { line: 8, .. })
        ));
    }
}
