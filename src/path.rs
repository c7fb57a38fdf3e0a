//! Field paths in rule form.
//!
//! A rules file names the fields a recipient may see as paths: keys joined by `.`, and `[]`
//! for every element of an array (`tenant.access_needs[].description`; `[].id` when the body
//! is an array at its root). Paths never index an array: a grant covers every element alike,
//! which is what a purpose justifies, and what an audit record can state without leaking how
//! many elements there were.
//!
//! The grammar is deliberately narrow. Keys are ASCII letters, digits, `_` and `-`, the way
//! JSON field names of the housing system are spelt, so a typo such as `tenant,name` or
//! `tenant .name` is a load error rather than a grant that silently matches nothing.
//!
//! Upstream bodies are not so tidy: a key may hold any character, `.` and `[` included. The
//! filter and the audit still have to name such a field, so [`RuleFormBuf`] renders it
//! JSON-quoted in brackets (`tenant["a.b"]`). That form is unambiguous and [`FieldPath::parse`]
//! refuses it, so a field with such a key can be reported but never granted.
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// An object key.
    Key(String),
    /// Every element of an array (`[]`).
    Each,
}

/// A parsed path such as `tenant.access_needs[].description` or `[].id`.
///
/// Never empty, and every key satisfies [`is_plain_key`]: both hold by construction, since
/// [`FieldPath::parse`] is the only way to build one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath {
    segments: Vec<Segment>,
}

/// Why a path in a rules file is not a path.
///
/// `reason` is a fixed phrase so that `check` can print it next to the file and line.
#[derive(Debug, thiserror::Error)]
#[error("malformed path {path:?}: {reason}")]
pub struct PathError {
    pub path: String,
    pub reason: &'static str,
}

// === impl FieldPath ===

impl FieldPath {
    /// The rest of a path that starts with `[]` (`[].tenant.id` gives `tenant.id`): where it
    /// leads inside one element of a root array. `None` for any other path, or for `[]` alone.
    pub fn in_element(&self) -> Option<FieldPath> {
        match self.segments.split_first() {
            Some((Segment::Each, rest)) if !rest.is_empty() => Some(FieldPath {
                segments: rest.to_vec(),
            }),
            _ => None,
        }
    }

    /// Parses a path in rule form.
    ///
    /// # Errors
    ///
    /// [`PathError`] when the text is empty, has an empty key (`a..b`, `.a`, `a.`), a `[`
    /// without `]`, anything inside the brackets, a character outside ASCII letters, digits,
    /// `_` and `-` in a key, or `[]` followed directly by a key (`a[]b`).
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let fail = |reason| PathError {
            path: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(fail("the path is empty"));
        }
        let bytes = text.as_bytes();
        let mut segments = Vec::new();
        let mut i = 0;
        // What the previous step allows next: at the start a key or `[]`; after a key `.`,
        // `[]` or the end; after `.` only a key; after `[]` `.`, `[]` or the end.
        let mut after_dot = false;
        while i < bytes.len() {
            match bytes[i] {
                b'[' => {
                    if after_dot {
                        return Err(fail("a '.' must be followed by a key, not '['"));
                    }
                    match bytes.get(i + 1) {
                        Some(b']') => {}
                        None => return Err(fail("'[' without ']'")),
                        Some(_) => {
                            return Err(fail(
                                "only '[]' is allowed: paths name every element, never an index",
                            ))
                        }
                    }
                    segments.push(Segment::Each);
                    i += 2;
                    match bytes.get(i) {
                        None | Some(b'.') | Some(b'[') => {}
                        Some(_) => {
                            return Err(fail("'[]' must be followed by '.', '[]' or the end"))
                        }
                    }
                }
                b'.' => {
                    if segments.is_empty() {
                        return Err(fail("the path starts with '.'"));
                    }
                    if after_dot {
                        return Err(fail("empty key between two dots"));
                    }
                    after_dot = true;
                    i += 1;
                    if i == bytes.len() {
                        return Err(fail("the path ends with '.'"));
                    }
                    continue;
                }
                b']' => return Err(fail("']' without '['")),
                _ => {
                    if !segments.is_empty() && !after_dot {
                        // Only reachable after `[]`, which is checked above; kept so that a
                        // key can never be glued to the previous step.
                        return Err(fail("keys must be separated by '.'"));
                    }
                    let start = i;
                    while i < bytes.len() && !matches!(bytes[i], b'.' | b'[' | b']') {
                        if !is_key_byte(bytes[i]) {
                            return Err(fail(
                                "keys may hold only ASCII letters, digits, '_' and '-'",
                            ));
                        }
                        i += 1;
                    }
                    segments.push(Segment::Key(text[start..i].to_owned()));
                }
            }
            after_dot = false;
        }
        Ok(Self { segments })
    }

    /// The steps of the path, root first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether `self` equals `other` or lies inside it, step by step (`tenant.name` is
    /// under `tenant`; `tenant_name` is not).
    pub fn is_under(&self, other: &FieldPath) -> bool {
        self.segments.starts_with(&other.segments)
    }
}

impl fmt::Display for FieldPath {
    /// Rule form, so that the printed path parses back to the same path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for segment in &self.segments {
            match segment {
                Segment::Key(key) => write_key(f, key, first)?,
                Segment::Each => f.write_str("[]")?,
            }
            first = false;
        }
        Ok(())
    }
}

impl std::str::FromStr for FieldPath {
    type Err = PathError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

// === impl RuleFormBuf ===

/// The rule-form name of the place a walk over an upstream body has reached.
///
/// The filter pushes a step on the way down and pops it on the way up, so one buffer serves
/// a whole walk without an allocation per field. Keys that [`FieldPath::parse`] would accept
/// are written plainly (`tenant.name`); any other key, including the empty key, is written
/// JSON-quoted in brackets (`tenant["a.b"]`, `[""]`). Plain keys, quoted keys and `[]` can
/// be told apart at every step, so two different upstream places never share a name, and a
/// quoted name can never equal an allow entry.
///
/// A buffer made [`RuleFormBuf::naming`] a policy's [`KnownKeys`] writes an upstream key that
/// no rule names as `*` ([`RuleFormBuf::push_upstream_key`]): these names go to the ledger,
/// and a key may itself be personal data.
#[derive(Debug, Clone, Default)]
pub struct RuleFormBuf {
    text: String,
    /// Length of `text` before each pushed step, to pop it again.
    marks: Vec<usize>,
    /// When set, the only upstream keys written as they are.
    known: Option<Arc<KnownKeys>>,
}

/// The object keys a policy's rules and glossary name, anywhere: in an allow entry, a
/// `subjects` path, an `items` path, a derived field, a field a condition reads, or a
/// glossary entry.
///
/// A name recorded from an upstream body (`withheld`, `disclosed`) writes only these keys as
/// they are; any other key is written `*`. An upstream may key a map by an NI number or a
/// household member's name, and such a key must never reach the ledger.
///
/// Looked up once per upstream key the walk records that the allow tree does not name; the
/// set is fixed when rules load, so a fast unkeyed hash is safe.
#[derive(Debug, Clone, Default)]
pub struct KnownKeys(HashSet<String, foldhash::fast::RandomState>);

impl KnownKeys {
    /// Adds every key of `path`.
    pub fn add_path(&mut self, path: &FieldPath) {
        for segment in path.segments() {
            if let Segment::Key(key) = segment {
                self.add(key);
            }
        }
    }

    pub fn add(&mut self, key: &str) {
        if !self.0.contains(key) {
            self.0.insert(key.to_owned());
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains(key)
    }
}

impl RuleFormBuf {
    /// An empty name: the root of the body.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty name whose upstream keys are written only when `known` names them.
    pub fn naming(known: Arc<KnownKeys>) -> Self {
        RuleFormBuf {
            known: Some(known),
            ..Self::default()
        }
    }

    /// Steps into the upstream key `key`: written as it is when the buffer names no known
    /// keys or they include it, else as `*` (which no rule path can spell).
    pub fn push_upstream_key(&mut self, key: &str) {
        match &self.known {
            Some(known) if !known.contains(key) => {
                self.marks.push(self.text.len());
                if !self.text.is_empty() {
                    self.text.push('.');
                }
                self.text.push('*');
            }
            _ => self.push_key(key),
        }
    }

    /// Steps into the object key `key`.
    pub fn push_key(&mut self, key: &str) {
        self.marks.push(self.text.len());
        let first = self.text.is_empty();
        // Writing to a String cannot fail.
        let _ = write_key(&mut self.text, key, first);
    }

    /// Steps into every element of an array.
    pub fn push_each(&mut self) {
        self.marks.push(self.text.len());
        self.text.push_str("[]");
    }

    /// Undoes the last push; at the root it does nothing.
    pub fn pop(&mut self) {
        if let Some(len) = self.marks.pop() {
            self.text.truncate(len);
        }
    }

    /// The name so far; empty at the root.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether no step has been pushed.
    pub fn is_root(&self) -> bool {
        self.marks.is_empty()
    }
}

/// Renders a sequence of upstream steps in rule form, quoting keys that rules cannot spell.
///
/// For a [`FieldPath`] this equals its `Display`.
pub fn render(segments: &[Segment]) -> String {
    let mut buf = RuleFormBuf::new();
    for segment in segments {
        match segment {
            Segment::Key(key) => buf.push_key(key),
            Segment::Each => buf.push_each(),
        }
    }
    buf.text
}

/// Whether `key` can appear in a rule as is: non-empty ASCII letters, digits, `_` and `-`.
pub fn is_plain_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(is_key_byte)
}

fn is_key_byte(byte: u8) -> bool {
    KEY_BYTES[usize::from(byte)]
}

/// The bytes of a plain key (`A-Z a-z 0-9 _ -`), as a table: the allow walk names every
/// upstream key it meets, and a lookup per byte is a third of the comparisons.
const KEY_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        b += 1;
    }
    table
};

/// Writes one key step: `.key` (or `key` first), or `["..."]` for a key rules cannot spell.
fn write_key(out: &mut impl fmt::Write, key: &str, first: bool) -> fmt::Result {
    if is_plain_key(key) {
        if !first {
            out.write_char('.')?;
        }
        out.write_str(key)
    } else {
        out.write_char('[')?;
        write_json_string(out, key)?;
        out.write_char(']')
    }
}

/// JSON string syntax (RFC 8259), written by hand because `fmt::Write` is not `io::Write`.
/// Quote, backslash and control characters are escaped; everything else is literal.
fn write_json_string(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in text.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if u32::from(c) < 0x20 || c == '\u{7f}' => write!(out, "\\u{:04x}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn key(k: &str) -> Segment {
        Segment::Key(k.to_owned())
    }

    #[test]
    fn parses_keys_and_each() {
        let cases: &[(&str, Vec<Segment>)] = &[
            ("id", vec![key("id")]),
            ("tenant.name", vec![key("tenant"), key("name")]),
            (
                "tenant.access_needs[].description",
                vec![
                    key("tenant"),
                    key("access_needs"),
                    Segment::Each,
                    key("description"),
                ],
            ),
            ("[].id", vec![Segment::Each, key("id")]),
            (
                "a[][].b",
                vec![key("a"), Segment::Each, Segment::Each, key("b")],
            ),
            (
                "tenant.caution_markers[]",
                vec![key("tenant"), key("caution_markers"), Segment::Each],
            ),
            ("[]", vec![Segment::Each]),
            ("[][]", vec![Segment::Each, Segment::Each]),
            ("date-of_birth2", vec![key("date-of_birth2")]),
        ];
        for (text, want) in cases {
            let path = FieldPath::parse(text).expect(text);
            assert_eq!(path.segments(), want.as_slice(), "{text}");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "id",
            "tenant.name",
            "tenant.access_needs[].description",
            "[].id",
            "a[][].b",
            "tenant.caution_markers[]",
            "[]",
        ] {
            let path = FieldPath::parse(text).unwrap();
            assert_eq!(path.to_string(), text);
            assert_eq!(FieldPath::parse(&path.to_string()).unwrap(), path);
            assert_eq!(render(path.segments()), text);
        }
    }

    #[test]
    fn rejects_malformed_paths_with_a_reason() {
        let cases = [
            ("", "the path is empty"),
            ("a..b", "empty key between two dots"),
            (".a", "the path starts with '.'"),
            ("a.", "the path ends with '.'"),
            ("a[", "'[' without ']'"),
            (
                "a[0]",
                "only '[]' is allowed: paths name every element, never an index",
            ),
            (
                "a[x].b",
                "only '[]' is allowed: paths name every element, never an index",
            ),
            ("a[]b", "'[]' must be followed by '.', '[]' or the end"),
            ("a]", "']' without '['"),
            ("a.[]", "a '.' must be followed by a key, not '['"),
            (
                "tenant,name",
                "keys may hold only ASCII letters, digits, '_' and '-'",
            ),
            (
                "tenant .name",
                "keys may hold only ASCII letters, digits, '_' and '-'",
            ),
            (
                "tenant.näme",
                "keys may hold only ASCII letters, digits, '_' and '-'",
            ),
            (
                "a.*",
                "keys may hold only ASCII letters, digits, '_' and '-'",
            ),
            (
                "[\"a.b\"]",
                "only '[]' is allowed: paths name every element, never an index",
            ),
            ("[].", "the path ends with '.'"),
            ("..", "the path starts with '.'"),
        ];
        for (text, reason) in cases {
            let err = FieldPath::parse(text).unwrap_err();
            assert_eq!(err.reason, reason, "{text:?}");
            assert_eq!(err.path, text);
        }
    }

    #[test]
    fn error_message_is_lowercase_and_names_the_path() {
        let err = FieldPath::parse("a..b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed path \"a..b\": empty key between two dots"
        );
    }

    #[test]
    fn is_under_compares_steps_not_text() {
        let p = |t| FieldPath::parse(t).unwrap();
        assert!(p("tenant.name").is_under(&p("tenant")));
        assert!(p("tenant").is_under(&p("tenant")));
        assert!(!p("tenant_name").is_under(&p("tenant")));
        assert!(!p("tenantx.name").is_under(&p("tenant")));
        assert!(p("a[].b").is_under(&p("a[]")));
        assert!(!p("tenant").is_under(&p("tenant.name")));
    }

    #[test]
    fn buf_quotes_keys_rules_cannot_spell() {
        let mut buf = RuleFormBuf::new();
        assert!(buf.is_root());
        buf.push_key("tenant");
        buf.push_key("a.b");
        assert_eq!(buf.as_str(), "tenant[\"a.b\"]");
        buf.pop();
        buf.push_key("");
        assert_eq!(buf.as_str(), "tenant[\"\"]");
        buf.pop();
        buf.push_key("[]");
        assert_eq!(buf.as_str(), "tenant[\"[]\"]");
        buf.pop();
        buf.push_key("q\"\\\n\u{1}é");
        assert_eq!(buf.as_str(), "tenant[\"q\\\"\\\\\\n\\u0001é\"]");
        buf.pop();
        buf.push_key("access_needs");
        buf.push_each();
        buf.push_key("description");
        assert_eq!(buf.as_str(), "tenant.access_needs[].description");
        buf.pop();
        buf.pop();
        buf.pop();
        buf.pop();
        assert_eq!(buf.as_str(), "");
        buf.pop();
        assert!(buf.is_root());
    }

    #[test]
    fn quoted_keys_are_valid_json_strings() {
        for key in ["a.b", "", "x\u{0}y", "\u{7f}", "😀", "[", "\"", "\\"] {
            let mut buf = RuleFormBuf::new();
            buf.push_key(key);
            let text = buf.as_str();
            let inner = &text[1..text.len() - 1];
            let back: String = serde_json::from_str(inner).unwrap();
            assert_eq!(back, key);
        }
    }

    #[test]
    fn rendered_upstream_names_never_parse_when_quoted() {
        let mut buf = RuleFormBuf::new();
        buf.push_each();
        buf.push_key("a.b");
        assert_eq!(buf.as_str(), "[][\"a.b\"]");
        assert!(FieldPath::parse(buf.as_str()).is_err());
        // A root key that needs quoting.
        let mut buf = RuleFormBuf::new();
        buf.push_key("tenant.name");
        assert_eq!(buf.as_str(), "[\"tenant.name\"]");
        assert!(FieldPath::parse(buf.as_str()).is_err());
    }

    #[test]
    fn distinct_upstream_places_get_distinct_names() {
        let places: Vec<Vec<Segment>> = vec![
            vec![key("a.b")],
            vec![key("a"), key("b")],
            vec![key("[]")],
            vec![Segment::Each],
            vec![key("a"), Segment::Each],
            vec![key("a[]")],
            vec![key("")],
            vec![key(""), key("")],
            vec![key("\"]")],
        ];
        let names: std::collections::BTreeSet<String> = places.iter().map(|p| render(p)).collect();
        assert_eq!(names.len(), places.len(), "{names:?}");
    }
}
