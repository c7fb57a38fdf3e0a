//! Lookups: a second upstream record a route's rules read as `lookup.<name>`, never disclosed.
//!
//! A `[[route.lookup]]` names a path template whose `{...}` placeholders are CEL expressions
//! over `body`, `request` and `recipient`, and optional query parameters, each a CEL
//! expression too. After the main response arrives, the gateway fills them in ([`targets`],
//! with the same scope building as the conditions, so `body` is the upstream body), GETs each
//! from the upstream with its own credential, and hands the parsed answers to
//! [`super::decide`] in [`Lookups`]. The filter binds those that succeeded as `lookup`; one
//! that failed is absent, so any rule reading it errs: a `when` does not grant and a `refuse`
//! refuses. The loader refuses `has(lookup.x)`, which would answer a failure with `false`.
//!
//! Each placeholder's value becomes exactly one path segment, percent-encoded, so a body
//! value can never climb out of the template (`../`) or add a query; a value that is not a
//! string or an int, an empty one, `.` or `..` is a placeholder error and the lookup fails.

use std::collections::BTreeMap;
use std::fmt;

use ::cel::Value as CelValue;
use serde_json::Value;

use super::cel::{self, Expr, Reads, Uses};
use super::conditions::{bind, Request};
use super::{Plan, Removed};

/// The most lookups one route may make: each is an upstream request made for every request
/// on the route.
pub const MAX_LOOKUPS: usize = 4;

/// One `[[route.lookup]]`, compiled.
#[derive(Debug)]
pub struct Lookup {
    name: String,
    /// The path template as written: what the audit records, never the filled-in path.
    template: String,
    path: Vec<Part>,
    query: Vec<(String, Expr)>,
}

#[derive(Debug)]
enum Part {
    Text(String),
    Placeholder(Box<Expr>),
}

/// The answers to one request's lookups, by name: the parsed JSON, or why it failed (a
/// phrase without values). Hand-written `Debug`: the answers are never to reach a log line.
#[derive(Clone, Default, PartialEq)]
pub struct Lookups(BTreeMap<String, Result<Value, String>>);

// === impl Lookup ===

impl Lookup {
    /// Compiles a lookup: `template` is the path with its `{CEL}` placeholders, `query` the
    /// parameters' compiled expressions (each checked with [`check_placeholder`]).
    ///
    /// # Errors
    ///
    /// Every problem of the template, each a message for the line of `path`.
    pub fn new(
        name: &str,
        template: &str,
        query: Vec<(String, Expr)>,
    ) -> Result<Lookup, Vec<String>> {
        let path = parse_template(template)?;
        Ok(Lookup {
            name: name.to_owned(),
            template: template.to_owned(),
            path,
            query,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The path template as written.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// Adds the fields of `body` its placeholders read to `known`: the policy names them, so
    /// the record may write them out.
    pub fn name_keys(&self, known: &mut crate::path::KnownKeys) {
        for e in self.exprs() {
            e.body_reads().name_keys(known);
        }
    }

    /// Whether a placeholder reads the upstream `body`: a write route's lookups run before
    /// there is one.
    pub fn reads_body(&self) -> bool {
        self.exprs().any(|e| e.uses().body)
    }

    /// Whether a placeholder calls `pseudonym()`, which needs the key.
    pub fn uses_pseudonym(&self) -> bool {
        self.exprs().any(|e| e.uses().pseudonym)
    }

    fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.path
            .iter()
            .filter_map(|p| match p {
                Part::Placeholder(e) => Some(&**e),
                Part::Text(_) => None,
            })
            .chain(self.query.iter().map(|(_, e)| e))
    }

    /// The upstream target (path and query) in `scope`.
    fn target(&self, scope: &cel::Scope<'_, '_>) -> Result<String, String> {
        let mut target = String::new();
        for part in &self.path {
            match part {
                Part::Text(text) => target.push_str(text),
                Part::Placeholder(e) => {
                    let value = e.eval(scope).map_err(|why| placeholder_error(e, &why))?;
                    let text = text_of(&value)
                        .filter(|t| !t.is_empty() && t != "." && t != "..")
                        .ok_or_else(|| {
                            format!(
                                "the placeholder {{{}}} gave {}, not a non-empty string or int",
                                e.source(),
                                value.type_of()
                            )
                        })?;
                    target.push_str(&encode(&text));
                }
            }
        }
        for (i, (name, e)) in self.query.iter().enumerate() {
            let value = e.eval(scope).map_err(|why| placeholder_error(e, &why))?;
            // An empty value would ask for `?contractor=`, which a housing system may read as
            // no filter at all: it fails the lookup, as an empty placeholder does.
            let text = text_of(&value)
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| {
                    format!(
                        "the query parameter {name:?} gave {}, not a non-empty string or int",
                        value.type_of()
                    )
                })?;
            target.push(if i == 0 { '?' } else { '&' });
            target.push_str(name);
            target.push('=');
            target.push_str(&encode(&text));
        }
        Ok(target)
    }
}

fn placeholder_error(e: &Expr, why: &cel::EvalError) -> String {
    format!(
        "the placeholder {{{}}} could not be evaluated ({why})",
        e.source()
    )
}

/// A string as it is, an int in decimal; `None` for any other value.
fn text_of(value: &CelValue) -> Option<String> {
    match value {
        CelValue::String(s) => Some(s.as_str().to_owned()),
        CelValue::Int(i) => Some(i.to_string()),
        CelValue::UInt(u) => Some(u.to_string()),
        _ => None,
    }
}

/// Whether a placeholder or query expression may be used: it must not read `lookup` (the
/// lookups run together, none before another) nor `item` (there is no element).
///
/// # Errors
///
/// Why not, for the line of the expression.
pub fn check_placeholder(e: &Expr) -> Result<(), String> {
    if e.uses().lookup {
        return Err("a lookup's placeholders cannot read lookup: lookups run together".into());
    }
    Ok(())
}

/// The template's literal text and placeholders. The literal text must start with `/` and
/// hold only unreserved characters and `/`, with no empty, `.` or `..` segment, so that the
/// template alone decides where the request goes.
fn parse_template(template: &str) -> Result<Vec<Part>, Vec<String>> {
    let mut parts = Vec::new();
    let mut errors = Vec::new();
    let mut text = String::new();
    // The template with each placeholder as `x`, to check its segments.
    let mut shape = String::new();
    let mut chars = template.char_indices();
    while let Some((at, c)) = chars.next() {
        if c == '}' {
            errors.push(format!("lookup path {template:?}: a `}}` without its `{{`"));
            continue;
        }
        if c != '{' {
            if !(c.is_ascii_alphanumeric() || "-._~/".contains(c)) {
                errors.push(format!(
                    "lookup path {template:?}: {c:?} is not allowed outside a placeholder (letters, digits, `-._~/`; a query goes in `query`)"
                ));
            }
            text.push(c);
            shape.push(c);
            continue;
        }
        let Some(end) = closing_brace(&template[at + 1..]) else {
            errors.push(format!("lookup path {template:?}: a `{{` without its `}}`"));
            break;
        };
        let source = &template[at + 1..at + 1 + end];
        for _ in 0..source.chars().count() + 1 {
            chars.next();
        }
        if !text.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut text)));
        }
        shape.push('x');
        match Expr::compile(source, false) {
            Ok(e) => match check_placeholder(&e) {
                Ok(()) => parts.push(Part::Placeholder(Box::new(e))),
                Err(why) => errors.push(format!("placeholder {{{source}}}: {why}")),
            },
            Err(compile) => errors.extend(
                compile
                    .into_iter()
                    .map(|e| format!("placeholder {{{source}}}: {}", e.message)),
            ),
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    let segments_ok = shape.starts_with('/')
        && shape[1..]
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    if !segments_ok {
        errors.push(format!(
            "lookup path {template:?} must start with `/` and have no empty, `.` or `..` segment"
        ));
    }
    if errors.is_empty() {
        Ok(parts)
    } else {
        Err(errors)
    }
}

/// The byte offset of the `}` closing a placeholder that starts just before `rest`: braces
/// of CEL maps nest, and braces inside quoted strings do not count.
fn closing_brace(rest: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '{' => depth += 1,
                '}' if depth == 0 => return Some(i),
                '}' => depth -= 1,
                _ => {}
            },
        }
    }
    None
}

/// Percent-encodes every byte but the unreserved ones (RFC 3986): the result is one path
/// segment, or one query value, whatever it held.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The target of each lookup of `plan` for this request and upstream body, in rule order:
/// the placeholders are evaluated in a scope bound as the conditions' is, so `body` is the
/// upstream body as it came.
pub fn targets<'p>(
    plan: &'p Plan,
    request: &Request<'_>,
    upstream: &Value,
) -> Vec<(&'p Lookup, Result<String, String>)> {
    let lookups = plan.lookups();
    if lookups.is_empty() {
        return Vec::new();
    }
    let mut uses = Uses::default();
    let mut reads = Reads::Nothing;
    for e in lookups.iter().flat_map(Lookup::exprs) {
        uses = uses.union(e.uses());
        reads.union(e.body_reads());
    }
    let mut scope = plan.conditions().functions().root().new_inner_scope();
    bind(
        &mut scope,
        uses,
        &reads,
        request,
        (upstream, &Removed::default()),
    );
    lookups.iter().map(|l| (l, l.target(&scope))).collect()
}

// === impl Lookups ===

impl Lookups {
    /// No lookups: for a route that makes none.
    pub fn none() -> &'static Lookups {
        static NONE: Lookups = Lookups(BTreeMap::new());
        &NONE
    }

    /// Records the answer to the lookup `name`, or why there is none.
    pub fn insert(&mut self, name: &str, result: Result<Value, String>) {
        self.0.insert(name.to_owned(), result);
    }

    /// Each lookup by name, with its answer or why it failed.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Result<Value, String>)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The lookups that succeeded, as CEL binds them.
    pub(crate) fn succeeded(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_ref().ok()?)))
    }
}

/// Names and whether each succeeded, never the answers.
impl fmt::Debug for Lookups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(k, v)| (k, if v.is_ok() { "answered" } else { "failed" })),
            )
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests;
