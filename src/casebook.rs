//! Policy test cases (`rules/tests/*.toml`) for `need-to-know test`.
//!
//! A Data Protection Officer writes down, next to the rules, what must hold for a recipient
//! and request: the status, the paths that must be disclosed, the paths that must be withheld,
//! the reasons that must apply. Each case runs through [`dry_run::run`], the same code as
//! `serve` and `explain`, so a passing case is a statement about what recipients get.
//!
//! ```toml
//! [[case]]
//! name = "the assigned contractor sees the informed, current caution marker"
//! recipient = "acme-repairs"
//! path = "/jobs/J-0001"                 # method defaults to GET; headers, now optional
//! body_file = "bodies/job-J-0001.json"  # relative to rules/tests/; or body = '''{...}'''
//! status = 200
//! disclosed = ["tenant.caution_markers[].instruction"]
//! withheld = ["tenant.date_of_birth"]
//! reasons = ["contractor assigned to an open job at this property"]
//! absent = ["verbal abuse"]             # values that must appear nowhere in the response
//! lookups = { jobs = "bodies/jobs-open.json" }  # what each lookup answers; absent: it fails
//! ```
//!
//! A write (a POST, PUT or PATCH route with `accept`) also gives the recipient's own body,
//! `request_body = '''{"status": "completed"}'''` or `request_body_file = "bodies/x.json"`,
//! and may expect the accepted paths it held: `received = ["status"]`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;
use toml::Spanned;

use crate::diag::{line_of, Diagnostic};
use crate::dry_run::{self, Decided};
use crate::rules::{Policy, Recipient};

/// One case, ready to run.
#[derive(Debug, Clone)]
pub struct Case {
    pub file: PathBuf,
    pub line: usize,
    pub name: String,
    pub recipient: String,
    pub method: http::Method,
    pub target: String,
    pub headers: http::HeaderMap,
    pub now: SystemTime,
    pub body: Vec<u8>,
    /// What each of the route's lookups answers, by name ([`dry_run::Request::lookups`]).
    pub lookups: BTreeMap<String, Vec<u8>>,
    /// The recipient's own request body ([`dry_run::Request::body`]).
    pub request_body: Option<Vec<u8>>,
    pub expect: Expect,
}

/// What must hold.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub status: Option<u16>,
    pub disclosed: Vec<String>,
    pub withheld: Vec<String>,
    pub reasons: Vec<String>,
    /// Values that must not appear anywhere in what the recipient gets (a name left out).
    pub absent: Vec<String>,
    /// The accepted request-body paths the write must have held.
    pub received: Vec<String>,
}

/// A case's result: the failures (empty when it passed) and the decision, for the report.
#[derive(Debug)]
pub struct Ran {
    pub case: Case,
    pub failures: Vec<String>,
    pub decided: Option<Decided>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    case: Vec<Spanned<RawCase>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    recipient: String,
    #[serde(default = "get")]
    method: String,
    path: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    now: Option<String>,
    body: Option<String>,
    body_file: Option<PathBuf>,
    status: Option<u16>,
    #[serde(default)]
    disclosed: Vec<String>,
    #[serde(default)]
    withheld: Vec<String>,
    #[serde(default)]
    reasons: Vec<String>,
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default)]
    lookups: BTreeMap<String, PathBuf>,
    request_body: Option<String>,
    request_body_file: Option<PathBuf>,
    #[serde(default)]
    received: Vec<String>,
}

fn get() -> String {
    "GET".into()
}

/// The case files under `rules_dir/tests`, sorted; none is not an error.
pub fn files(rules_dir: &Path) -> Vec<PathBuf> {
    let dir = rules_dir.join("tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Loads every case in `files`.
///
/// # Errors
///
/// Every problem found, as `FILE:LINE: message`.
pub fn load(files: &[PathBuf]) -> Result<Vec<Case>, Vec<Diagnostic>> {
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                problems.push(Diagnostic::error(file, 0, format!("cannot read: {e}")));
                continue;
            }
        };
        let raw: RawFile = match toml::from_str(&text) {
            Ok(r) => r,
            Err(e) => {
                let line = e.span().map(|s| line_of(&text, s.start)).unwrap_or(0);
                problems.push(Diagnostic::error(file, line, e.message().to_string()));
                continue;
            }
        };
        for spanned in raw.case {
            let line = line_of(&text, spanned.span().start);
            match compile(file, line, spanned.into_inner()) {
                Ok(case) => cases.push(case),
                Err(message) => problems.push(Diagnostic::error(file, line, message)),
            }
        }
    }
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(problems)
    }
}

fn compile(file: &Path, line: usize, raw: RawCase) -> Result<Case, String> {
    let name = &raw.name;
    // Files a case names are relative to the case file.
    let read = |what: &str, path: &Path| {
        let path = file.parent().unwrap_or(Path::new("")).join(path);
        std::fs::read(&path)
            .map_err(|e| format!("case {name:?}: cannot read {what} {}: {e}", path.display()))
    };
    let body = match (&raw.body, &raw.body_file) {
        (Some(text), None) => text.clone().into_bytes(),
        (None, Some(path)) => read("body_file", path)?,
        _ => {
            return Err(format!(
                "case {name:?}: give exactly one of body and body_file"
            ))
        }
    };
    let request_body = match (&raw.request_body, &raw.request_body_file) {
        (None, None) => None,
        (Some(text), None) => Some(text.clone().into_bytes()),
        (None, Some(path)) => Some(read("request_body_file", path)?),
        _ => {
            return Err(format!(
                "case {name:?}: give at most one of request_body and request_body_file"
            ))
        }
    };
    let method = http::Method::from_bytes(raw.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("case {name:?}: method {:?} is not a method", raw.method))?;
    let mut headers = http::HeaderMap::new();
    for (k, v) in &raw.headers {
        let name_ = http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("case {name:?}: header name {k:?} is not valid"))?;
        let value = http::HeaderValue::from_str(v)
            .map_err(|_| format!("case {name:?}: header {k:?} has a value that cannot be sent"))?;
        headers.append(name_, value);
    }
    let now = match &raw.now {
        None => SystemTime::now(),
        Some(text) => humantime::parse_rfc3339_weak(text)
            .map_err(|_| format!("case {name:?}: now {text:?} is not an RFC 3339 time"))?,
    };
    let mut lookups = BTreeMap::new();
    for (lookup, path) in &raw.lookups {
        lookups.insert(lookup.clone(), read(&format!("lookup {lookup:?}"), path)?);
    }
    for path in raw
        .disclosed
        .iter()
        .chain(&raw.withheld)
        .chain(&raw.received)
    {
        crate::path::FieldPath::parse(path).map_err(|e| format!("case {name:?}: {e}"))?;
    }
    Ok(Case {
        file: file.to_path_buf(),
        line,
        name: raw.name,
        recipient: raw.recipient,
        method,
        target: raw.path,
        headers,
        now,
        body,
        lookups,
        request_body,
        expect: Expect {
            status: raw.status,
            disclosed: raw.disclosed,
            withheld: raw.withheld,
            reasons: raw.reasons,
            absent: raw.absent,
            received: raw.received,
        },
    })
}

impl Case {
    /// What `recipient` would get for this case's request and upstream body.
    pub fn decide(&self, recipient: &Arc<Recipient>, max_depth: usize) -> Decided {
        let request = dry_run::Request {
            recipient,
            method: self.method.clone(),
            target: self.target.clone(),
            headers: self.headers.clone(),
            now: self.now,
            lookups: self.lookups.clone(),
            body: self.request_body.clone(),
        };
        dry_run::run(&request, &self.body, max_depth)
    }
}

/// Runs one case against `policy`.
pub fn run(policy: &Policy, case: Case, max_depth: usize) -> Ran {
    let Some(recipient) = policy.recipient(&case.recipient) else {
        let failures = vec![format!("no recipient {:?} in the rules", case.recipient)];
        return Ran {
            case,
            failures,
            decided: None,
        };
    };
    let decided = case.decide(recipient, max_depth);
    let failures = check(&case.expect, &decided);
    Ran {
        case,
        failures,
        decided: Some(decided),
    }
}

/// Every way `decided` falls short of `expect`.
pub fn check(expect: &Expect, decided: &Decided) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(status) = expect.status {
        if status != decided.status {
            failures.push(format!("status is {}, expected {status}", decided.status));
        }
    }
    for path in &expect.disclosed {
        match decided.fields.get(path) {
            Some(d) if d.disclosed => {}
            Some(d) => failures.push(format!(
                "{path} is withheld ({}), expected disclosed",
                d.why
            )),
            None => failures.push(format!(
                "{path} is not in the upstream body, expected disclosed"
            )),
        }
    }
    for path in &expect.withheld {
        if !decided.fields.contains_key(path) {
            // A withheld expectation on a path the body does not have proves nothing.
            failures.push(format!(
                "{path} is not in the upstream body: the case cannot show it is withheld"
            ));
            continue;
        }
        let under = format!("{path}.");
        let each = format!("{path}[]");
        let leaked = decided.fields.iter().find(|(p, d)| {
            d.disclosed && (*p == path || p.starts_with(&under) || p.starts_with(&each))
        });
        if let Some((p, d)) = leaked {
            failures.push(format!(
                "{p} is disclosed ({}), expected {path} withheld",
                d.why
            ));
        }
    }
    let sent = decided.body.to_string();
    for value in &expect.absent {
        if sent.contains(value.as_str()) {
            failures.push(format!("{value:?} appears in what the recipient gets"));
        }
    }
    for path in &expect.received {
        if !decided.received.contains(path) {
            failures.push(format!(
                "{path} was not received (received: {:?})",
                decided.received
            ));
        }
    }
    for reason in &expect.reasons {
        if !decided.reasons.contains(reason) {
            failures.push(format!(
                "reason {reason:?} did not apply (applied: {:?})",
                decided.reasons
            ));
        }
    }
    failures
}
