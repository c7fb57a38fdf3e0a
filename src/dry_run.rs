//! A request decided without a network: route matching and [`filter::decide`] on an upstream
//! body given as bytes.
//!
//! `explain`, `test` and `diff` all go through [`run`], and `run` goes through the same
//! `routes::authorize`, `json::parse_strict` and `filter::decide` as `serve`, so what a DPO
//! previews, tests and compares is what a recipient would get. On a route whose arrays may
//! stream, `serve` filters a large array with the streamed filter instead; `run` then runs
//! that too, answers with what it sent, and refuses (500) if the two ever disagree.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::filter::{self, AllowTree, Decision, Element};
use crate::rejection::{self, Rejection, RequestBodyError};
use crate::rules::Recipient;
use crate::{json, routes, stream, upstream};

/// The request id error bodies carry in a dry run: there is no request.
pub const REQUEST_ID: &str = "dry-run";

/// One request to decide.
pub struct Request<'a> {
    pub recipient: &'a Arc<Recipient>,
    pub method: http::Method,
    /// Path and query, as a recipient would send them.
    pub target: String,
    pub headers: http::HeaderMap,
    pub now: SystemTime,
    /// What each lookup answers, by name, as bytes of the upstream body it stands for; a
    /// lookup of the route not given here fails, as one that fails live.
    pub lookups: BTreeMap<String, Vec<u8>>,
    /// The recipient's own request body, for a write route (`accept`, `require`).
    pub body: Option<Vec<u8>>,
}

/// What the recipient would get, and why.
#[derive(Debug, Clone)]
pub struct Decided {
    pub status: u16,
    /// The filtered body, or the gateway's error body.
    pub body: Value,
    pub reasons: Vec<String>,
    /// Per upstream path, in rule form: disclosed or not, and what decided.
    pub fields: BTreeMap<String, Decision>,
    /// Per element of an array an `items` rule filters: kept or dropped, by which rule, why.
    /// Recorded by the same `decide`; on a streamed route the streamed filter has sent the
    /// same array, or the run is refused.
    pub elements: Vec<Element>,
    pub rule_errors: Vec<String>,
    pub disclosed: BTreeSet<String>,
    pub withheld: BTreeSet<String>,
    /// Scrub paths where free text had something removed.
    pub scrubbed: BTreeSet<String>,
    /// The route template that matched, when one did.
    pub route: Option<String>,
    /// Per lookup, by name: `supplied`, or `failed (why)`; never what it answered.
    pub lookups: BTreeMap<String, String>,
    /// On a write: the accepted request-body paths the body held, as the record lists them.
    pub received: BTreeSet<String>,
}

impl Decided {
    /// The readable form: status, reasons, body, one line per path, then one per element an
    /// `items` rule decided.
    pub fn to_text(&self) -> String {
        let e = self;
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "status: {}", e.status);
        for r in &e.reasons {
            let _ = writeln!(out, "reason: {r}");
        }
        for r in &e.rule_errors {
            let _ = writeln!(out, "rule error: {r}");
        }
        for (name, how) in &e.lookups {
            let _ = writeln!(out, "lookup {name}: {how}");
        }
        for s in &e.scrubbed {
            let _ = writeln!(out, "scrubbed: {s}");
        }
        for r in &e.received {
            let _ = writeln!(out, "received: {r}");
        }
        let body = serde_json::to_string_pretty(&e.body).unwrap_or_default();
        let _ = writeln!(out, "body:\n{body}\n");
        let width = e
            .fields
            .keys()
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(out, "{:<width$}  {:<9}  WHY", "PATH", "DISCLOSED");
        for (path, d) in &e.fields {
            let yes = if d.disclosed { "yes" } else { "no" };
            let _ = writeln!(out, "{path:<width$}  {yes:<9}  {}", d.why);
        }
        if !e.elements.is_empty() {
            let _ = writeln!(out, "\n{}", elements_table(&e.elements));
        }
        out
    }
}

/// One line per element: where it is, kept or dropped, its subject, the rule, why, the keep.
fn elements_table(elements: &[Element]) -> String {
    use std::fmt::Write;
    let rows: Vec<[String; 5]> = elements
        .iter()
        .map(|el| {
            let at = match (el.path.as_str(), el.index) {
                ("[]", Some(i)) => format!("[{i}]"),
                (path, Some(i)) => format!("{path}[{i}]"),
                (path, None) => path.to_owned(),
            };
            let kept = if el.kept { "kept" } else { "dropped" };
            let subject = el.subject.clone().unwrap_or_else(|| "-".to_owned());
            [
                at,
                kept.to_owned(),
                subject,
                el.rule.clone(),
                el.why.clone(),
            ]
        })
        .collect();
    let head = ["ELEMENT", "KEPT", "SUBJECT", "RULE", "WHY"];
    let width = |c: usize| {
        rows.iter()
            .map(|r| r[c].chars().count())
            .chain([head[c].len()])
            .max()
            .unwrap_or_default()
    };
    let widths = [width(0), width(1), width(2), width(3), width(4)];
    let mut out = String::new();
    let mut line = |cells: [&str; 5], keep: &str| {
        for (cell, w) in cells.iter().zip(widths) {
            let _ = write!(out, "{cell:<w$}  ");
        }
        let _ = writeln!(out, "{keep}");
    };
    line(head, "KEEP");
    for (row, el) in rows.iter().zip(elements) {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]], &el.keep);
    }
    out
}

/// Decides `request` against an upstream body.
pub fn run(request: &Request<'_>, bytes: &[u8], max_depth: usize) -> Decided {
    let upstream = match json::parse_strict(bytes, max_depth) {
        Ok(v) => v,
        Err(e) => {
            let detail = format!("the upstream body cannot be filtered safely: {e}");
            let rejection = Rejection::Upstream(upstream::Error::Json(e));
            return rejected(&rejection, Some(detail), &Value::Null);
        }
    };
    let Ok(uri) = request.target.parse::<http::Uri>() else {
        let rejection = Rejection::Routes(routes::Error::Malformed("not a URI"));
        let detail = "malformed request target".to_owned();
        return rejected(&rejection, Some(detail), &upstream);
    };
    let granted = match routes::authorize(
        &request.recipient.kind.routes,
        &request.method,
        &uri,
        request.recipient.caller(),
    ) {
        Ok(g) => g,
        Err(e) => return rejected(&Rejection::Routes(e), None, &upstream),
    };
    if let Some(max) = granted.route.plan.too_many_items(&upstream) {
        let detail = format!("the upstream answer holds more than max_items = {max} elements");
        return rejected(&Rejection::TooManyItems(max), Some(detail), &upstream);
    }
    let written = match written(request, &granted.route.plan, max_depth) {
        Ok(written) => written,
        Err((rejection, detail)) => return rejected(&rejection, detail, &upstream),
    };
    let cel_headers = filter::pick_headers(&request.headers);
    let mut decide_request = filter::Request {
        caller: request.recipient.caller(),
        method: request.method.as_str(),
        path: &granted.path,
        params: &granted.params,
        query: &granted.query,
        headers: &cel_headers,
        now: request.now,
        lookups: filter::Lookups::none(),
        body: written.as_ref().map(|(value, _)| value),
    };
    let (lookups, looked) = look_up(request, &granted, &decide_request, &upstream, max_depth);
    decide_request.lookups = &lookups;
    let received = written.as_ref().map(|(_, r)| r.clone()).unwrap_or_default();
    if let Err(refusal) = filter::write::require(&granted.route.plan, &decide_request) {
        let reason = refusal.reason.clone();
        let mut decided = rejected(&Rejection::Refused(refusal), None, &upstream);
        decided.reasons = vec![reason];
        decided.route = Some(granted.route.template.to_string());
        decided.lookups = looked;
        decided.received = received;
        return decided;
    }
    let mut outcome = filter::decide(&granted.route.plan, &decide_request, &upstream, true);
    if granted.route.plan.streamable() && upstream.is_array() {
        let streamed = streamed(request, &granted, bytes, max_depth);
        if let Some(difference) = stream::difference(&streamed, &outcome) {
            let rejection = Rejection::Internal("the streamed and buffered filters disagree");
            let detail = format!("the streamed and buffered filters disagree: {difference}");
            return rejected(&rejection, Some(detail), &upstream);
        }
        // They agree: what is shown is what the streamed filter sent.
        if let (Ok(made), Some(body)) = (streamed, outcome.body.as_mut()) {
            match serde_json::from_slice(&made.body) {
                Ok(sent) => *body = sent,
                Err(e) => {
                    let rejection = Rejection::Internal("the streamed filter sent malformed JSON");
                    let detail = format!("the streamed filter sent malformed JSON: {e}");
                    return rejected(&rejection, Some(detail), &upstream);
                }
            }
        }
    }
    // What serve would answer, from the one mapping serve uses.
    let refused = |rejection: Rejection| {
        let (status, code, message) = rejection::describe(&rejection);
        (status.as_u16(), error_body(code, &message))
    };
    let (status, body) = match (outcome.refusal.clone(), outcome.body) {
        (None, Some(body)) => (200, body),
        (Some(refusal), _) => refused(Rejection::Refused(refusal)),
        (None, None) if outcome.unidentified => refused(Rejection::SubjectsUnidentified),
        (None, None) => refused(Rejection::Internal(
            "the filter decided no body and no refusal",
        )),
    };
    Decided {
        status,
        body,
        reasons: outcome.reasons,
        fields: outcome.fields.unwrap_or_default(),
        elements: outcome.elements,
        rule_errors: outcome.rule_errors,
        disclosed: outcome.disclosed,
        withheld: outcome.withheld,
        scrubbed: outcome.scrubbed,
        route: Some(granted.route.template.to_string()),
        lookups: looked,
        received,
    }
}

/// On a write route, the recipient's body parsed and the accepted paths it holds, checked
/// as `serve` checks them; the rejection serve would answer with, and what went wrong.
#[allow(clippy::type_complexity)]
fn written(
    request: &Request<'_>,
    plan: &filter::Plan,
    max_depth: usize,
) -> Result<Option<(Value, BTreeSet<String>)>, (Rejection, Option<String>)> {
    let Some(write) = plan.write() else {
        return Ok(None);
    };
    // As serve: an empty body sends no field, and the requires read it as `{}`.
    let Some(bytes) = request.body.as_deref().filter(|b| !b.is_empty()) else {
        return Ok(Some((Value::Object(Default::default()), BTreeSet::new())));
    };
    let value = json::parse_strict(bytes, max_depth)
        .map_err(|e| (RequestBodyError::Json(e).into(), None))?;
    let received = filter::write::received(&write.accept, &value).map_err(|e| (e.into(), None))?;
    Ok(Some((value, received)))
}

/// The route's lookups, answered from the bodies the request supplies: their targets are
/// filled in as `serve` fills them, so a placeholder that errs fails here too. Returns the
/// answers for [`filter::decide`] and, per name, whether each was supplied or why it failed.
fn look_up(
    request: &Request<'_>,
    granted: &routes::Granted<'_, crate::rules::Route>,
    decide_request: &filter::Request<'_>,
    upstream: &Value,
    max_depth: usize,
) -> (filter::Lookups, BTreeMap<String, String>) {
    let plan = &granted.route.plan;
    let mut lookups = filter::Lookups::default();
    let mut looked = BTreeMap::new();
    for (lookup, target) in filter::lookup::targets(plan, decide_request, upstream) {
        let name = lookup.name();
        let answer = target.and_then(|_| match request.lookups.get(name) {
            Some(bytes) => json::parse_strict(bytes, max_depth)
                .map_err(|e| format!("the supplied body cannot be filtered safely: {e}")),
            None => Err("no body supplied for it".to_owned()),
        });
        let how = match &answer {
            Ok(_) => "supplied".to_owned(),
            Err(why) => format!("failed ({why})"),
        };
        looked.insert(name.to_owned(), how);
        lookups.insert(name, answer);
    }
    for name in request.lookups.keys() {
        looked
            .entry(name.clone())
            .or_insert_with(|| "supplied, but the route has no lookup of that name".to_owned());
    }
    (lookups, looked)
}

/// What the streamed filter makes of the array `bytes` on the granted route.
fn streamed(
    request: &Request<'_>,
    granted: &routes::Granted<'_, crate::rules::Route>,
    bytes: &[u8],
    max_depth: usize,
) -> Result<stream::InMemory, crate::json::split::Error> {
    let job = Arc::new(stream::Requested {
        recipient: Arc::clone(request.recipient),
        route: granted.index,
        method: request.method.as_str().to_owned(),
        path: granted.path.clone(),
        params: granted.params.clone(),
        query: granted.query.clone(),
        headers: filter::pick_headers(&request.headers),
        now: request.now,
    });
    stream::filter_in_memory(&job, bytes, max_depth, usize::MAX)
}

pub fn error_body(code: &str, message: &str) -> Value {
    json!({ "error": code, "message": message, "request_id": REQUEST_ID })
}

/// A request that never reached the filter: everything upstream is withheld. Status and code
/// are what serve answers, from its one table; `detail`, when given, is the message instead,
/// since the one who runs a dry run may be told what went wrong where a recipient is not.
fn rejected(rejection: &Rejection, detail: Option<String>, upstream: &Value) -> Decided {
    let (status, code, message) = rejection::describe(rejection);
    let message = detail.unwrap_or(message);
    let (filtered, mut fields) = filter::allow_explained(&AllowTree::default(), upstream);
    for d in fields.values_mut() {
        d.why.clone_from(&message);
    }
    Decided {
        status: status.as_u16(),
        body: error_body(code, &message),
        reasons: Vec::new(),
        fields,
        elements: Vec::new(),
        rule_errors: Vec::new(),
        disclosed: BTreeSet::new(),
        withheld: filtered.withheld,
        scrubbed: BTreeSet::new(),
        route: None,
        lookups: BTreeMap::new(),
        received: BTreeSet::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed unwrap is a failed test
    use super::*;
    use crate::sample_api::{Date, SampleData};
    use crate::test_util::{sample_day, shipped_rules, Call};

    /// `explain` on the shipped research export runs the streamed filter and shows exactly
    /// what it sends and records: the same bytes, the same disclosed and withheld paths.
    #[test]
    fn explain_on_a_streamed_route_shows_what_the_streamed_filter_sends() {
        // (A longer answer is refused whole: see `explain_refuses_a_list_over_max_items`.)
        let policy = shipped_rules();
        let recipient = policy.recipient("civic-surveys").unwrap();
        let now = sample_day();
        let data = SampleData::generate(Date::from_ymd(2026, 6, 1).unwrap());
        // A page within the route's max_items, as `?limit=100` gives it.
        let bytes = serde_json::to_vec(&data.tenants()[..100]).unwrap();
        let request = Request {
            recipient,
            method: http::Method::GET,
            target: "/tenants?limit=100".into(),
            headers: http::HeaderMap::new(),
            now,
            lookups: BTreeMap::new(),
            body: None,
        };
        let decided = run(&request, &bytes, 64);
        assert_eq!(decided.status, 200, "{}", decided.body);

        let route = recipient
            .kind
            .routes
            .iter()
            .position(|r| r.plan.streamable() && r.template.as_str() == "/tenants")
            .expect("the research export streams");
        let job = Call::tenants().requested(Arc::clone(recipient), route);
        let streamed = stream::filter_in_memory(&job, &bytes, 64, usize::MAX).unwrap();
        assert_eq!(serde_json::to_vec(&decided.body).unwrap(), streamed.body);
        assert_eq!(decided.disclosed, streamed.disclosed);
        assert_eq!(decided.withheld, streamed.withheld);
        // Not a vacuous agreement: tenants are dropped and fields withheld.
        let sent = decided.body.as_array().unwrap().len();
        assert!(sent > 0 && sent < data.tenants().len(), "{sent}");
        assert!(!decided.withheld.is_empty());
        assert!(decided.fields.values().any(|d| !d.disclosed));
    }

    /// An answer longer than the route's `max_items` is refused as `serve` refuses it.
    #[test]
    fn explain_refuses_a_list_over_max_items() {
        let policy = shipped_rules();
        let recipient = policy.recipient("civic-surveys").unwrap();
        let data = SampleData::generate(Date::from_ymd(2026, 6, 1).unwrap());
        let request = Request {
            recipient,
            method: http::Method::GET,
            target: "/tenants".into(),
            headers: http::HeaderMap::new(),
            now: sample_day(),
            lookups: BTreeMap::new(),
            body: None,
        };
        let decided = run(&request, &serde_json::to_vec(data.tenants()).unwrap(), 64);
        assert_eq!(decided.status, 400, "{}", decided.body);
        assert_eq!(decided.body["error"], "too_many_items");
        assert!(decided.disclosed.is_empty());
    }

    /// On the shipped research export, which streams, the elements `explain` lists as kept are
    /// as many as the streamed filter sent, and each names its tenant.
    #[test]
    fn explain_lists_each_row_the_streamed_export_kept_or_left_out() {
        let policy = shipped_rules();
        let data = SampleData::generate(Date::from_ymd(2026, 6, 1).unwrap());
        // A page within the route's max_items, as `?limit=100` gives it.
        let tenants = &data.tenants()[..100];
        let request = Request {
            recipient: policy.recipient("civic-surveys").unwrap(),
            method: http::Method::GET,
            target: "/tenants?limit=100".into(),
            headers: http::HeaderMap::new(),
            now: sample_day(),
            lookups: BTreeMap::new(),
            body: None,
        };
        let decided = run(&request, &serde_json::to_vec(tenants).unwrap(), 64);
        assert_eq!(decided.status, 200, "{}", decided.body);
        assert_eq!(decided.elements.len(), tenants.len());
        for (i, (e, tenant)) in decided.elements.iter().zip(tenants).enumerate() {
            assert_eq!((e.path.as_str(), e.index), ("[]", Some(i)));
            assert_eq!(e.subject.as_deref(), Some(tenant.id.as_str()));
        }
        let kept = decided.elements.iter().filter(|e| e.kept).count();
        assert_eq!(kept, decided.body.as_array().unwrap().len());
        assert!(kept > 0 && kept < tenants.len(), "{kept}");
        assert_eq!(
            decided
                .to_text()
                .lines()
                .filter(|l| l.contains("  dropped  "))
                .count(),
            tenants.len() - kept
        );
    }

    /// `explain` shows the scrubbed body and which scrub paths removed something.
    #[test]
    fn explain_shows_what_was_scrubbed() {
        let policy = crate::test_util::policy(
            "[[route]]\nmethod = \"GET\"\npath = \"/jobs/{job_id}\"\nsubjects = [\"tenant.id\"]\n\
             allow = [\"description\", \"notes\"]\n\n\
             [[route.scrub]]\npaths = [\"description\", \"notes\"]\npatterns = [\"phone\"]\n",
        );
        let recipient = policy.recipient("acme-repairs").unwrap();
        let request = Request {
            recipient,
            method: http::Method::GET,
            target: "/jobs/J1".into(),
            headers: http::HeaderMap::new(),
            lookups: BTreeMap::new(),
            now: sample_day(),
            body: None,
        };
        let body =
            br#"{"description": "ring 07700 900123", "notes": "none", "tenant": {"id": "T-1"}}"#;
        let decided = run(&request, body, 64);
        assert_eq!(decided.status, 200, "{}", decided.body);
        assert_eq!(decided.body["description"], "ring [removed]");
        assert_eq!(decided.scrubbed.iter().collect::<Vec<_>>(), ["description"]);
        assert!(decided.to_text().contains("scrubbed: description\n"));
    }
}
