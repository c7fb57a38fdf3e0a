//! Request-target hygiene and route grants.
//!
//! Runs after identity and before anything leaves for the upstream. The target is checked
//! first, on its raw bytes: anything another HTTP implementation might read differently from
//! us (an encoded slash, a dot segment, a double slash, a control byte, a `;` parameter, a
//! double encoding) is refused with 400, so the route we grant is the route the upstream
//! serves. Then the method and path are matched against the recipient type's routes (403 when
//! none grants them), and the query is checked against the route's list (400 for any other
//! parameter, or a repeat of one the route does not let repeat). Last, the parameters the
//! route binds for the recipient are set ([`binding`]: 403 for a different value). What goes
//! upstream is rebuilt from the decoded parts, never the raw text.
//!
//! The decoded path is computed once, by [`Target::parse`], and that one value is what the
//! audit records, what a condition reads as `request.path` and what the upstream target is
//! re-encoded from: none of them can disagree about which resource a request named.

pub mod binding;

use std::collections::BTreeMap;
use std::fmt;

use crate::filter::{Caller, Query};
pub use binding::Bindings;

/// Why a request was not granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("malformed request target: {0}")]
    Malformed(&'static str),
    #[error("query parameter {0:?} is not allowed on this route")]
    QueryNotAllowed(String),
    #[error("query parameter {0:?} is given more than once")]
    QueryRepeated(String),
    #[error("malformed query string: {0}")]
    MalformedQuery(&'static str),
    #[error("parameter {0} does not hold the value the gateway sets for this recipient")]
    BindingMismatch(String),
    #[error("parameter {0} is set by the gateway, and its value for this recipient could not be computed")]
    BindingFailed(String),
    #[error("no route granted for this path")]
    NotGranted,
    #[error("method not granted for this path")]
    MethodNotGranted,
}

impl Error {
    pub fn status(&self) -> http::StatusCode {
        match self {
            Error::NotGranted
            | Error::MethodNotGranted
            | Error::BindingMismatch(_)
            | Error::BindingFailed(_) => http::StatusCode::FORBIDDEN,
            _ => http::StatusCode::BAD_REQUEST,
        }
    }

    /// The stable code in the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Malformed(_) => "malformed_target",
            Error::QueryNotAllowed(_) | Error::QueryRepeated(_) | Error::MalformedQuery(_) => {
                "query_not_allowed"
            }
            // Both: the request cannot go upstream with the value the rules set. A binding
            // that cannot be computed is a gap in the rules `check` reports; the recipient
            // is told no more than for a wrong value.
            Error::BindingMismatch(_) | Error::BindingFailed(_) => "binding_mismatch",
            Error::NotGranted => "route_not_granted",
            Error::MethodNotGranted => "method_not_granted",
        }
    }
}

/// A route template such as `/jobs/{job_id}`, compiled at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    segments: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Param(String),
}

#[derive(Debug, thiserror::Error)]
#[error("path template {template:?}: {reason}")]
pub struct TemplateError {
    template: String,
    reason: &'static str,
}

/// A request target whose path is checked and decoded, before any route is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `/` and the decoded segments joined by `/`; no segment holds a `/`, so splitting on it
    /// gives the segments back.
    path: String,
    /// The raw query, decoded only against a route's list.
    query: Option<String>,
}

/// What matching a request needs of a granted route. The rules' routes carry it; matching
/// knows nothing else of them.
pub trait Grant {
    fn method(&self) -> &http::Method;
    fn template(&self) -> &Template;
    /// Query parameters the recipient may send, by name (without `[]`); any other is refused
    /// with 400, but for those `bindings` set.
    fn query(&self) -> &BTreeMap<String, Takes>;
    /// The parameters the gateway sets for each recipient.
    fn bindings(&self) -> &Bindings;
}

/// How often a route takes a query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// At most once: a repeat is ambiguous (which one does the upstream read?), so 400.
    Once,
    /// Any number of times (`"StatusCode[]"` in the rules): every value is forwarded, in
    /// order, and CEL reads a list.
    Repeated,
}

/// A granted request: the route, its parameters, and what to send upstream.
#[derive(Debug)]
pub struct Granted<'a, R> {
    pub route: &'a R,
    /// Where `route` is in the routes it was granted from: a streamed response's job names
    /// its route by it.
    pub index: usize,
    pub params: BTreeMap<String, String>,
    /// The query as forwarded: the request's parameters, then the bound ones it left out.
    pub query: Query,
    /// The normalised path ([`Target::path`]), which the upstream target is built from.
    pub path: String,
    /// The upstream path and query, rebuilt from the decoded parts, percent-encoded.
    pub upstream_target: String,
}

// === impl Template ===

impl Template {
    /// Parses `/literal/{param}/...`. Literals hold only unreserved characters.
    ///
    /// # Errors
    ///
    /// When the template is empty, lacks the leading `/`, has an empty segment, a malformed or
    /// repeated `{param}`, or a literal character a target could not carry verbatim.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let fail = |reason| TemplateError {
            template: text.to_string(),
            reason,
        };
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| fail("must start with '/'"))?;
        let mut segments = Vec::new();
        if !rest.is_empty() {
            for segment in rest.split('/') {
                if segment.is_empty() {
                    return Err(fail("has an empty segment"));
                }
                if let Some(inner) = segment.strip_prefix('{') {
                    let name = inner
                        .strip_suffix('}')
                        .ok_or_else(|| fail("a parameter must be a whole segment, as {name}"))?;
                    if name.is_empty()
                        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(fail(
                            "a parameter name may hold only letters, digits and '_'",
                        ));
                    }
                    if segments.iter().any(|p| p == &Part::Param(name.to_string())) {
                        return Err(fail("a parameter name is used twice"));
                    }
                    segments.push(Part::Param(name.to_string()));
                } else {
                    if segment == "." || segment == ".." || !segment.bytes().all(is_unreserved) {
                        return Err(fail("a literal segment may hold only letters, digits, '-', '.', '_' and '~'"));
                    }
                    segments.push(Part::Literal(segment.to_string()));
                }
            }
        }
        Ok(Template {
            text: text.to_string(),
            segments,
        })
    }

    /// The template with parameter names erased, so `/jobs/{id}` and `/jobs/{job_id}` compare
    /// equal when looking for duplicate routes.
    pub fn shape(&self) -> String {
        let mut out = String::new();
        for part in &self.segments {
            out.push('/');
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Param(_) => out.push_str("{}"),
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the template has the parameter `{name}`.
    pub fn has_param(&self, name: &str) -> bool {
        self.segments
            .iter()
            .any(|p| matches!(p, Part::Param(n) if n == name))
    }

    /// Matches decoded segments; the parameters on success.
    fn matches(&self, segments: &[&str]) -> Option<BTreeMap<String, String>> {
        if segments.len() != self.segments.len() {
            return None;
        }
        let mut params = BTreeMap::new();
        for (part, &segment) in self.segments.iter().zip(segments) {
            match part {
                Part::Literal(l) if l == segment => {}
                Part::Literal(_) => return None,
                Part::Param(name) => {
                    params.insert(name.clone(), segment.to_string());
                }
            }
        }
        Some(params)
    }

    /// Orders overlapping templates: at the first segment where they differ, a literal is more
    /// specific than a parameter (`/jobs/open` before `/jobs/{id}`).
    fn specificity(&self) -> Vec<bool> {
        self.segments
            .iter()
            .map(|p| matches!(p, Part::Literal(_)))
            .collect()
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

// === impl Target ===

impl Target {
    /// Checks an origin-form target and decodes its path, segment by segment, refusing
    /// anything two implementations could read differently.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] (400) for an absolute target or a path [`decode_path`] refuses.
    pub fn parse(uri: &http::Uri) -> Result<Target, Error> {
        if uri.scheme().is_some() || uri.authority().is_some() {
            return Err(Error::Malformed(
                "only origin-form targets (a path) are accepted",
            ));
        }
        let segments = decode_path(uri.path())?;
        let mut path = String::with_capacity(uri.path().len());
        for segment in &segments {
            path.push('/');
            path.push_str(segment);
        }
        if path.is_empty() {
            path.push('/');
        }
        Ok(Target {
            path,
            query: uri.query().map(str::to_string),
        })
    }

    /// The normalised path: percent-decoding applied as for routing.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The decoded segments, as [`Target::parse`] joined them.
    fn segments(&self) -> Vec<&str> {
        match self.path.strip_prefix('/') {
            Some("") | None => Vec::new(),
            Some(rest) => rest.split('/').collect(),
        }
    }
}

// === grants ===

/// Checks the target and finds the one of `routes` that grants `method` on it to `caller`:
/// [`Target::parse`], then [`grant`].
///
/// # Errors
///
/// 400 ([`Error::Malformed`], query errors) for a target that is ambiguous or names a
/// parameter the route does not allow; 403 for a path or method not granted, or a bound
/// parameter with another value.
pub fn authorize<'a, R: Grant>(
    routes: &'a [R],
    method: &http::Method,
    uri: &http::Uri,
    caller: Caller<'_>,
) -> Result<Granted<'a, R>, Error> {
    grant(routes, method, Target::parse(uri)?, caller)
}

/// Finds the one of `routes` that grants `method` on a decoded `target` to `caller`, and
/// sets the parameters the route binds for it.
///
/// # Errors
///
/// 400 for a query parameter the route does not allow; 403 for a path or method not granted,
/// or a bound parameter with another value than the binding's.
pub fn grant<'a, R: Grant>(
    routes: &'a [R],
    method: &http::Method,
    target: Target,
    caller: Caller<'_>,
) -> Result<Granted<'a, R>, Error> {
    let segments = target.segments();
    let mut candidates: Vec<(usize, &R, BTreeMap<String, String>)> = routes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.template().matches(&segments).map(|p| (i, r, p)))
        .collect();
    if candidates.is_empty() {
        return Err(Error::NotGranted);
    }
    // Most specific template first; among equals, the method decides.
    candidates.sort_by_key(|c| std::cmp::Reverse(c.1.template().specificity()));
    let best = candidates[0].1.template().specificity();
    let (index, route, params) = candidates
        .into_iter()
        .take_while(|(_, r, _)| r.template().specificity() == best)
        .find(|(_, r, _)| r.method() == method)
        .ok_or(Error::MethodNotGranted)?;
    let mut query = check_query(route, target.query.as_deref())?;
    route.bindings().apply(caller, &mut query, &params)?;
    let mut upstream_target = String::new();
    for segment in &segments {
        upstream_target.push('/');
        percent_encode_into(segment, &mut upstream_target);
    }
    if upstream_target.is_empty() {
        upstream_target.push('/');
    }
    let mut sep = '?';
    for (k, v) in query.pairs() {
        upstream_target.push(sep);
        sep = '&';
        percent_encode_into(k, &mut upstream_target);
        upstream_target.push('=');
        percent_encode_into(v, &mut upstream_target);
    }
    Ok(Granted {
        route,
        index,
        params,
        query,
        path: target.path,
        upstream_target,
    })
}

/// Exactly one `Host` header, holding a host name or address and an optional port: a
/// missing, repeated or malformed one is ambiguous about which site the request is for.
///
/// # Errors
///
/// [`Error::Malformed`] (400).
pub fn check_host(headers: &http::HeaderMap) -> Result<(), Error> {
    let mut hosts = headers.get_all(http::header::HOST).iter();
    let host = hosts.next().ok_or(Error::Malformed("no Host header"))?;
    if hosts.next().is_some() {
        return Err(Error::Malformed("more than one Host header"));
    }
    let valid = !host.is_empty()
        && host.as_bytes().iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        });
    if !valid {
        return Err(Error::Malformed("invalid Host header"));
    }
    Ok(())
}

/// Splits and decodes the raw path, refusing anything two implementations could read
/// differently.
fn decode_path(raw: &str) -> Result<Vec<String>, Error> {
    let rest = raw
        .strip_prefix('/')
        .ok_or(Error::Malformed("the path must start with '/'"))?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let mut segments = Vec::new();
    for segment in rest.split('/') {
        if segment.is_empty() {
            return Err(Error::Malformed(
                "empty path segment (double or trailing slash)",
            ));
        }
        if segment.contains(';') {
            return Err(Error::Malformed("path parameters (';') are not accepted"));
        }
        let decoded = percent_decode(segment)?;
        if decoded == "." || decoded == ".." {
            return Err(Error::Malformed("dot segment"));
        }
        segments.push(decoded);
    }
    Ok(segments)
}

/// Decodes one path segment or query component. Refuses a malformed escape, an encoded slash
/// or backslash, an encoded `%` (double encoding), and any byte outside printable ASCII, raw
/// or encoded: ids and parameters never need them, and look-alike characters hide there.
fn percent_decode(text: &str) -> Result<String, Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let decoded = if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(Error::Malformed("malformed percent-encoding"))?;
            i += 3;
            match hex {
                b'/' => return Err(Error::Malformed("encoded slash")),
                b'\\' => return Err(Error::Malformed("encoded backslash")),
                b'%' => return Err(Error::Malformed("encoded percent sign (double encoding)")),
                0 => return Err(Error::Malformed("NUL byte")),
                _ => hex,
            }
        } else {
            i += 1;
            if b == b'\\' {
                return Err(Error::Malformed("backslash"));
            }
            b
        };
        if !(0x21..=0x7e).contains(&decoded) {
            return Err(Error::Malformed("control, space or non-ASCII character"));
        }
        out.push(decoded);
    }
    String::from_utf8(out).map_err(|_| Error::Malformed("not UTF-8"))
}

/// Parses the query string, keeping only the route's parameters (all others are refused),
/// and those the route binds (each checked by the binding after).
fn check_query<R: Grant>(route: &R, raw: Option<&str>) -> Result<Query, Error> {
    let mut out = Query::default();
    let Some(raw) = raw.filter(|q| !q.is_empty()) else {
        return Ok(out);
    };
    for pair in raw.split('&') {
        if pair.is_empty() {
            return Err(Error::MalformedQuery("empty parameter"));
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let name =
            percent_decode(k).map_err(|_| Error::MalformedQuery("malformed parameter name"))?;
        // '+' is left as itself: decoding it as a space is a form convention, not a URI one,
        // and the upstream sees the value re-encoded either way.
        let value =
            percent_decode(v).map_err(|_| Error::MalformedQuery("malformed parameter value"))?;
        let takes = match route.query().get(&name) {
            Some(takes) => *takes,
            None if route.bindings().binds_query(&name) => Takes::Once,
            None => return Err(Error::QueryNotAllowed(name)),
        };
        if takes == Takes::Once && out.values(&name).next().is_some() {
            return Err(Error::QueryRepeated(name));
        }
        out.push(&name, &value, takes == Takes::Repeated);
    }
    Ok(out)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn percent_encode_into(text: &str, out: &mut String) {
    for &b in text.as_bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests;
