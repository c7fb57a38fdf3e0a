//! Scrubbing free text: phone numbers, email addresses, National Insurance numbers,
//! postcodes and dates found inside allowed string fields become `[removed]`.
//!
//! A housing system's free-text fields (a job's `description`, a note) are written by people
//! and hold whatever they typed: "tenant says call her on 07700 900123". A route may need
//! the text but not the number in it; `[[route.scrub]]` names the fields and the kinds of
//! personal data to take out. Scrubbing is defence in depth, never a grant: it runs on what
//! the allow list already passed, so a scrub path outside the grants changes nothing (and
//! `check` refuses it).
//!
//! [`text`] is the one scrubber; the whole-body filter ([`Scrubs::apply`] on the body
//! `decide` built) and the streamed one ([`super::project`], as it writes each string)
//! both call it, so a streamed export and a buffered answer send the same bytes.
//!
//! The patterns err on the side of removing: a reference that looks like a phone number
//! goes too. What each one matches, with examples, is in `docs/rules.md` and the tests below.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::path::{FieldPath, Segment};

/// What a match is replaced with.
pub const REMOVED: &str = "[removed]";

/// A kind of personal data that free text may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pattern {
    Phone,
    Email,
    NiNumber,
    Postcode,
    Date,
}

/// A set of [`Pattern`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Patterns(u8);

/// The scrub rules of one route, compiled: which paths, which patterns.
#[derive(Debug, Default)]
pub struct Scrubs {
    /// Each scrub path with its patterns; the index is what the walks report.
    entries: Vec<Entry>,
    /// The entries by path, for the trie walk over a `Value`.
    root: Node,
    /// The entries by rule-form path, for the streamed filter, which knows where it is as
    /// text ([`crate::path::RuleFormBuf`]).
    by_name: HashMap<String, usize>,
}

#[derive(Debug)]
struct Entry {
    path: FieldPath,
    /// `path` in rule form: what the audit's `scrubbed` lists.
    name: String,
    patterns: Patterns,
}

#[derive(Debug, Default)]
struct Node {
    entry: Option<usize>,
    keys: BTreeMap<String, Node>,
    each: Option<Box<Node>>,
}

// === impl Pattern ===

impl Pattern {
    pub const ALL: [Pattern; 5] = [
        Pattern::Phone,
        Pattern::Email,
        Pattern::NiNumber,
        Pattern::Postcode,
        Pattern::Date,
    ];

    /// The pattern a rule names (`"ni_number"`), or `None`.
    pub fn parse(name: &str) -> Option<Pattern> {
        Pattern::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The name rules use.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Phone => "phone",
            Pattern::Email => "email",
            Pattern::NiNumber => "ni_number",
            Pattern::Postcode => "postcode",
            Pattern::Date => "date",
        }
    }

    /// The pattern's expressions, compiled the first time any text is scrubbed for it.
    fn regexes(self) -> &'static [Regex] {
        static COMPILED: LazyLock<Vec<Vec<Regex>>> = LazyLock::new(|| {
            Pattern::ALL
                .iter()
                .map(|p| {
                    p.sources()
                        .iter()
                        .map(|s| Regex::new(s).expect("the scrub patterns are tested to compile"))
                        .collect()
                })
                .collect()
        });
        &COMPILED[self as usize]
    }

    /// The regular expressions of each pattern. `(?-u:\b)` is an ASCII word boundary: the
    /// Unicode one would keep the regex crate off its fast engines.
    fn sources(self) -> &'static [&'static str] {
        match self {
            // UK numbers as people write them, with up to three spaces (of any kind), dots,
            // hyphens or dashes between digits:
            // national (0, not 00, and 9 to 11 more digits), `+44`/`0044` with an optional `(0)`, an
            // area code in brackets; and any run of 10 to 13 digits.
            Pattern::Phone => &[
                r"(?:\+|(?-u:\b)00)\s{0,2}44[\s.\-\u{2010}-\u{2015}]{0,3}(?:\(0\)[\s.\-\u{2010}-\u{2015}]{0,3})?[0-9](?:[\s.\-\u{2010}-\u{2015}]{0,3}[0-9]){8,9}(?-u:\b)",
                r"\(0[0-9]{2,4}\)[\s.\-\u{2010}-\u{2015}]{0,3}[0-9](?:[\s.\-\u{2010}-\u{2015}]{0,3}[0-9]){4,8}(?-u:\b)",
                // No boundary before: a number glued to a word (`mob07700900123`) is one too.
                r"0[1-9](?:[\s.\-\u{2010}-\u{2015}]{0,3}[0-9]){8,10}(?-u:\b)",
                r"(?-u:\b)[0-9]{10,13}(?-u:\b)",
            ],
            // anything@domain.tld
            Pattern::Email => &[r"[\w.!#$%&'*+/=?^`{|}~\-]+@[\w\-]+(?:\.[\w\-]+)*\.[\w\-]{2,}"],
            // Two letters, six digits in pairs, an optional A-D suffix; up to two spaces (of
            // any kind) between the groups.
            Pattern::NiNumber => &[
                r"(?i)(?-u:\b)[a-z]{2}\s{0,2}[0-9]{2}\s{0,2}[0-9]{2}\s{0,2}[0-9]{2}(?:\s{0,2}[a-d])?(?-u:\b)",
            ],
            // Outward code (A9, A99, A9A, AA9, AA99, AA9A), up to two spaces, inward 9AA.
            Pattern::Postcode => {
                &[r"(?i)(?-u:\b)[a-z]{1,2}[0-9][a-z0-9]?\s{0,2}[0-9][a-z]{2}(?-u:\b)"]
            }
            // Day-month-year with `/`, `-` or `.`; ISO 8601 with an optional time; the day
            // and the month's name (full or short) in either order, with a year.
            Pattern::Date => &[
                r"(?-u:\b)[0-9]{1,2}[/.\-][0-9]{1,2}[/.\-](?:[0-9]{4}|[0-9]{2})(?-u:\b)",
                r"(?-u:\b)[0-9]{4}[/.\-][0-9]{2}[/.\-][0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+\-][0-9]{2}:?[0-9]{2})?)?(?-u:\b)",
                concat!(
                    r"(?i)(?-u:\b)(?:0?[1-9]|[12][0-9]|3[01])(?:st|nd|rd|th)? +(?:of +)?",
                    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?",
                    r",? +[0-9]{4}(?-u:\b)",
                ),
                concat!(
                    r"(?i)(?-u:\b)(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?",
                    r" +(?:0?[1-9]|[12][0-9]|3[01])(?:st|nd|rd|th)?,? +[0-9]{4}(?-u:\b)",
                ),
            ],
        }
    }
}

// === impl Patterns ===

impl Patterns {
    pub fn insert(&mut self, pattern: Pattern) {
        self.0 |= 1 << pattern as u8;
    }

    pub fn contains(self, pattern: Pattern) -> bool {
        self.0 & (1 << pattern as u8) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Pattern> {
        Pattern::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}

impl FromIterator<Pattern> for Patterns {
    fn from_iter<I: IntoIterator<Item = Pattern>>(iter: I) -> Self {
        let mut set = Patterns::default();
        for p in iter {
            set.insert(p);
        }
        set
    }
}

/// `text` with every match of `patterns` replaced by [`REMOVED`], or `None` when nothing
/// matched. Matches that overlap or touch are removed as one. A text that is nothing but
/// matches (with spaces and punctuation between them) becomes exactly `[removed]`, so the
/// recipient is not told how many there were.
pub fn text(text: &str, patterns: Patterns) -> Option<String> {
    let mut found: Vec<(usize, usize)> = patterns
        .iter()
        .flat_map(|p| p.regexes())
        .flat_map(|re| re.find_iter(text).map(|m| (m.start(), m.end())))
        .filter(|&(start, _)| !continues_a_number(text, start))
        .collect();
    if found.is_empty() {
        return None;
    }
    found.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut kept_words = false;
    let mut spans = found.into_iter().peekable();
    while let Some((start, mut end)) = spans.next() {
        while let Some(&(s, e)) = spans.peek() {
            if s > end {
                break;
            }
            end = end.max(e);
            spans.next();
        }
        let between = &text[at..start];
        kept_words |= between.chars().any(char::is_alphanumeric);
        out.push_str(between);
        out.push_str(REMOVED);
        at = end;
    }
    kept_words |= text[at..].chars().any(char::is_alphanumeric);
    out.push_str(&text[at..]);
    Some(if kept_words { out } else { REMOVED.to_owned() })
}

/// Whether the match at `start` is a day of the month that continues a time or an amount
/// (`10:30 March 2026`, `£12.30 March 2026`): one or two digits then a space or a letter,
/// right after `:`, `.` or `,` and a digit. The regex crate has no look-behind to say so.
/// Anything longer (a phone number, a date in figures after a comma) is not a day, and is
/// removed even in a list typed without spaces (`01134960000,07700900123`).
fn continues_a_number(text: &str, start: usize) -> bool {
    let bytes = text.as_bytes();
    let mut before = bytes[..start].iter().rev().take(2);
    let after_a_number = matches!(before.next(), Some(b':' | b'.' | b','))
        && before.next().is_some_and(u8::is_ascii_digit);
    let digits = bytes[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let then_words = bytes
        .get(start + digits)
        .is_some_and(|b| *b == b' ' || b.is_ascii_alphabetic());
    after_a_number && (1..=2).contains(&digits) && then_words
}

// === impl Scrubs ===

impl Scrubs {
    /// Compiles scrub paths with their patterns. The loader has checked that no path is
    /// listed twice or lies inside another, so each string has at most one entry above it.
    pub fn new(entries: impl IntoIterator<Item = (FieldPath, Patterns)>) -> Scrubs {
        let mut scrubs = Scrubs::default();
        for (path, patterns) in entries {
            let index = scrubs.entries.len();
            let mut node = &mut scrubs.root;
            for segment in path.segments() {
                node = match segment {
                    Segment::Key(key) => node.keys.entry(key.clone()).or_default(),
                    Segment::Each => node.each.get_or_insert_with(Default::default),
                };
            }
            node.entry = Some(index);
            let name = path.to_string();
            scrubs.by_name.insert(name.clone(), index);
            scrubs.entries.push(Entry {
                path,
                name,
                patterns,
            });
        }
        scrubs
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The scrub paths with their patterns, in rule order.
    pub fn paths(&self) -> impl Iterator<Item = (&FieldPath, Patterns)> {
        self.entries.iter().map(|e| (&e.path, e.patterns))
    }

    /// The entry whose path, in rule form, is `name` (as a walk names where it is).
    pub(crate) fn named(&self, name: &str) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        self.by_name.get(name).copied()
    }

    /// Entry `index`'s path in rule form.
    pub(crate) fn name(&self, index: usize) -> &str {
        &self.entries[index].name
    }

    /// Scrubs one string by entry `index`'s patterns; `None` when nothing matched.
    pub(crate) fn string(&self, index: usize, value: &str) -> Option<String> {
        text(value, self.entries[index].patterns)
    }

    /// Scrubs the filtered `body` in place and returns the scrub paths where something was
    /// removed, in rule form.
    pub fn apply(&self, body: &mut Value) -> BTreeSet<String> {
        let mut hits = BTreeSet::new();
        self.apply_at(&[], body, &mut hits);
        hits.into_iter().map(|i| self.name(i).to_owned()).collect()
    }

    /// Scrubs `value`, found at `at` in the body, by the entries at or above `at` and those
    /// below it; notes the entries that removed something in `hits`.
    pub(crate) fn apply_at(&self, at: &[Segment], value: &mut Value, hits: &mut BTreeSet<usize>) {
        if self.entries.is_empty() {
            return;
        }
        let mut node = &self.root;
        for segment in at {
            if let Some(entry) = node.entry {
                return self.every_string(entry, value, hits);
            }
            let next = match segment {
                Segment::Key(key) => node.keys.get(key),
                Segment::Each => node.each.as_deref(),
            };
            let Some(next) = next else { return };
            node = next;
        }
        self.walk(node, value, hits);
    }

    fn walk(&self, node: &Node, value: &mut Value, hits: &mut BTreeSet<usize>) {
        if let Some(entry) = node.entry {
            return self.every_string(entry, value, hits);
        }
        match value {
            Value::Object(map) => {
                for (key, child) in &node.keys {
                    if let Some(v) = map.get_mut(key) {
                        self.walk(child, v, hits);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(each) = &node.each {
                    for item in items {
                        self.walk(each, item, hits);
                    }
                }
            }
            _ => {}
        }
    }

    /// A scrub path names free text; every string at or inside it is scrubbed (an object
    /// or array there can hold text too). Numbers, booleans and null hold none and are left
    /// as they are, and so are object keys.
    fn every_string(&self, entry: usize, value: &mut Value, hits: &mut BTreeSet<usize>) {
        match value {
            Value::String(s) => {
                if let Some(clean) = self.string(entry, s) {
                    *s = clean;
                    hits.insert(entry);
                }
            }
            Value::Object(map) => map
                .values_mut()
                .for_each(|v| self.every_string(entry, v, hits)),
            Value::Array(items) => items
                .iter_mut()
                .for_each(|v| self.every_string(entry, v, hits)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
