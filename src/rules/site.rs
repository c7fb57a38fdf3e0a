//! Where each rule is written: its file, its line and the comment its author put above it.
//!
//! Serving needs none of this, but the register and `check` do: the register cites, beside
//! each disclosure, the comment above its rule (in the shipped rules, the privacy notice's
//! words that justify it) and the line to find it at; `check` points at the line that
//! discloses a path the glossary has no words for. The loader finds them while it has the
//! text and the spans, so nothing reads the rule files a second time.

use std::path::Path;
use std::sync::Arc;

use toml::Spanned;

use super::raw;
use crate::diag::line_of;

/// Where one rule, entry or key is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub file: Arc<Path>,
    /// 1-based.
    pub line: usize,
    /// The `#` lines directly above it, joined with spaces as the author wrapped them;
    /// `None` without any.
    pub comment: Option<String>,
}

/// Where each rule of a route is written, in the order its [`Plan`](crate::filter::Plan)
/// holds them: `allow[i]` is where `plan.allow()[i]` is written, `when[i]` the
/// `conditions().when()[i]`, and so on. The loader builds a route only when every rule of it
/// compiled, so the two always line up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSites {
    pub allow: Vec<Site>,
    pub when: Vec<WhenSite>,
    pub items: Vec<Site>,
    pub derive: Vec<Site>,
    pub refuse: Option<Site>,
    /// Where each binding's `value` is written.
    pub bind: Vec<Site>,
}

/// A `[[route.when]]` and each of its allow entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhenSite {
    pub rule: Site,
    pub allow: Vec<Site>,
}

/// A rule file's text, kept so that spans can be turned into lines and sites.
pub(super) struct Source {
    pub path: Arc<Path>,
    pub text: String,
}

// === impl Source ===

impl Source {
    pub fn line<T>(&self, spanned: &Spanned<T>) -> usize {
        line_of(&self.text, spanned.span().start)
    }

    /// Where a key or table is written, with the comment above it. A `[[route]]` or
    /// `[[route.when]]` table's span starts at its header, so this is the header's comment.
    pub fn site<T>(&self, spanned: &Spanned<T>) -> Site {
        let offset = spanned.span().start;
        Site {
            file: Arc::clone(&self.path),
            line: line_of(&self.text, offset),
            comment: join(comment_above(lines_above(&self.text, offset))),
        }
    }

    /// Where an entry of a list is written. Entries on the lines under an uncommented entry
    /// line share the comment above that line, as a list spread over lines reads; the
    /// `allow = [` line ends the search, so one rule's comment is never taken for another's
    /// entry.
    pub fn entry_site(&self, entry: &Spanned<String>) -> Site {
        let offset = entry.span().start;
        let entries = |l: &&str| l.starts_with('"') || l.starts_with('\'');
        let above = lines_above(&self.text, offset).skip_while(entries);
        Site {
            comment: join(comment_above(above)),
            ..self.site(entry)
        }
    }

    /// The sites of a route's rules, in the order the loader compiles them.
    pub fn rule_sites(&self, route: &raw::Route) -> RuleSites {
        RuleSites {
            allow: route.allow.iter().map(|a| self.entry_site(a)).collect(),
            when: route
                .when
                .iter()
                .map(|w| WhenSite {
                    rule: self.site(w),
                    allow: w
                        .get_ref()
                        .allow
                        .iter()
                        .map(|a| self.entry_site(a))
                        .collect(),
                })
                .collect(),
            items: route.items.iter().map(|i| self.site(i)).collect(),
            derive: route.derive.iter().map(|d| self.site(d)).collect(),
            refuse: route.refuse.as_ref().map(|r| self.site(r)),
            bind: route
                .bind
                .iter()
                .map(|b| self.site(&b.get_ref().value))
                .collect(),
        }
    }
}

// === comments ===

/// The lines above the one holding byte `offset` of `text`, nearest first, trimmed.
fn lines_above(text: &str, offset: usize) -> impl Iterator<Item = &str> {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    before[..line_start].lines().rev().map(str::trim)
}

/// The run of `#` lines at the start of `above` (nearest first), in reading order, each
/// without its `#`.
fn comment_above<'a>(above: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut comment: Vec<&str> = above
        .map_while(|l| l.strip_prefix('#'))
        .map(str::trim)
        .collect();
    comment.reverse();
    comment
}

/// The comment lines as one citation: joined with spaces, blank lines dropped.
fn join(comment: Vec<&str>) -> Option<String> {
    let text = comment
        .into_iter()
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed unwrap is a failed test
    use super::*;

    const TEXT: &str = r#"type = "t"
# notice.txt: "why the purpose"
purpose = "p"
lawful_basis = "contract"

# What the route is for.
#
# It reads on.
[[route]]
method = "GET"
path = "/x"
allow = [
  # notice.txt: "a and b"
  "a", "b",
  "c",
  # notice.txt: "d"
  "d",

  "e",
]

# notice.txt: "when"
[[route.when]]
condition = "true"
reason = "r"
allow = ["e"]
"#;

    fn source() -> (Source, raw::RecipientType) {
        let raw = toml::from_str(TEXT).unwrap();
        let source = Source {
            path: Arc::from(Path::new("t.toml")),
            text: TEXT.to_owned(),
        };
        (source, raw)
    }

    #[test]
    fn finds_the_comment_above_each_rule() {
        let (source, raw) = source();
        let comment = |s: &Site| s.comment.clone().unwrap_or_default();
        assert_eq!(
            comment(&source.site(&raw.purpose)),
            "notice.txt: \"why the purpose\""
        );
        assert_eq!(source.site(&raw.lawful_basis).comment, None);
        let route = &raw.route[0];
        let site = source.site(route);
        assert_eq!(
            (site.line, comment(&site).as_str()),
            (9, "What the route is for. It reads on.")
        );
        let sites = source.rule_sites(route.get_ref());
        let allow: Vec<(usize, String)> =
            sites.allow.iter().map(|s| (s.line, comment(s))).collect();
        let ab = "notice.txt: \"a and b\"".to_owned();
        assert_eq!(
            allow,
            [
                (14, ab.clone()),
                (14, ab.clone()),
                (15, ab),
                (17, "notice.txt: \"d\"".to_owned()),
                // A blank line ends the list the comment is about.
                (19, String::new()),
            ]
        );
        assert_eq!(sites.when[0].rule.line, 23);
        assert_eq!(comment(&sites.when[0].rule), "notice.txt: \"when\"");
        assert_eq!(sites.when[0].allow[0].line, 26);
    }
}
