//! Conditional disclosure: `when`, `items`, `derive` and `refuse` (`docs/rules.md`), and
//! [`decide`], the one function `serve` and `explain` call on an upstream body.
//!
//! The order is fixed, and each step can only narrow what the next one sees:
//!
//! 1. `refuse`, on the upstream body: if it holds (or cannot be evaluated) nothing of the body
//!    is sent. It reads the body as it came, since an objection is usually held in a field
//!    no recipient is sent.
//! 2. `items`, in rule order: array elements whose `keep` does not hold (or errs) are
//!    dropped. A `keep` may read `body` only where no items rule filters (the loader refuses
//!    anything else), so no element's fate depends on another that is not sent.
//! 3. `when`, on the body without every dropped row: an answer that depended on a dropped
//!    row would tell the recipient about it.
//! 4. `derive`, on that same narrowed body: computed fields are set on it; a derivation that
//!    errs removes the field, so an upstream value at that path can never pass in its place.
//! 5. the allow tree: the route's allow list, the derived fields, and the allow lists of the
//!    `when` rules that held (an error counts as not holding); then [`super::allow`].
//!
//! **An evaluation error never grants.** Each failing rule is named in the outcome by its
//! file and line, never with the values involved; the request path counts them (the
//! `rule_errors` metric) and records them.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use super::cel::{self, EvalError, Expr, Functions, Reads, Uses};
use super::eval;
use super::lookup::Lookups;
use super::plan::{Caller, Plan};
use super::query::Query;
use super::{
    allow_explained_without, allow_without, each_inner_path, subjects, subjects_without, AllowTree,
    Decision, Removed,
};
use crate::path::{FieldPath, KnownKeys, RuleFormBuf, Segment};

mod elements;

pub use elements::Element;
use elements::Elements;

/// Routes with at most this many `when` rules get an allow tree per subset, compiled at
/// load; beyond it the tree is built per request (still from compiled paths).
const PRECOMPUTED_WHENS: usize = 6;

/// The most `when` rules a route may have: the held set is a 64-bit mask.
pub const MAX_WHENS: usize = 64;

/// Extra fields when a condition holds.
#[derive(Debug)]
pub struct When {
    pub condition: Expr,
    pub reason: String,
    pub allow: Vec<FieldPath>,
    /// `FILE:LINE when`, for the audit's `rule_errors`.
    pub site: String,
}

/// Keep only the elements of the array at `path` for which `keep` holds.
#[derive(Debug)]
pub struct Items {
    pub path: FieldPath,
    pub keep: Expr,
    /// Which entries are kept, in the rule author's words; `None` when the rule gives none.
    pub reason: Option<String>,
    /// Send an array left with no element as `[]`; by default it is not sent at all, since
    /// an empty array says there were rows and all were held back.
    pub keep_empty: bool,
    pub site: String,
}

/// A computed field; `field` ends with a key (checked at load).
#[derive(Debug)]
pub struct Derive {
    pub field: FieldPath,
    pub value: Expr,
    pub site: String,
}

/// Refuse the whole response when `condition` holds.
#[derive(Debug)]
pub struct Refuse {
    pub condition: Expr,
    pub reason: String,
    /// The status the recipient gets: 403, or 404 to look like a record that does not exist.
    pub status: u16,
    pub site: String,
}

/// The statuses a `refuse` rule may answer with.
pub const REFUSE_STATUSES: [u16; 2] = [403, 404];

/// The compiled disclosure rules of one route.
#[derive(Debug)]
pub struct Conditions {
    when: Vec<When>,
    items: Vec<Items>,
    derive: Vec<Derive>,
    refuse: Option<Refuse>,
    /// The allow list and the derived fields, with the reasons `explain` gives.
    base: AllowTree,
    /// `base` plus the `when` allow lists of each subset, indexed by the bit mask of the
    /// `when`s that held; empty when there are more than [`PRECOMPUTED_WHENS`].
    trees: Vec<AllowTree>,
    functions: Functions,
    uses: Uses,
    /// What the rules together read of `body`: all a request converts to CEL.
    body_reads: Reads,
    /// The keys the whole policy names, set once every route is loaded: upstream keys
    /// outside it are recorded as `*`. Until set, every upstream key is (fail closed).
    known: Arc<KnownKeys>,
}

/// What `decide` needs to know about the request, for the CEL `recipient` and `request`.
#[derive(Debug)]
pub struct Request<'a> {
    pub caller: Caller<'a>,
    pub method: &'a str,
    pub path: &'a str,
    /// The route template's parameters.
    pub params: &'a BTreeMap<String, String>,
    pub query: &'a Query,
    /// Only the headers in [`cel::HEADERS`], as [`pick_headers`] takes them.
    pub headers: &'a [(&'static str, String)],
    pub now: SystemTime,
    /// The answers to the route's lookups, bound as `lookup` ([`Lookups::none`] for none).
    pub lookups: &'a Lookups,
    /// The recipient's parsed request body on a write route, bound as `request.body`;
    /// `None` on a read, where `request.body` is then an error.
    pub body: Option<&'a Value>,
}

/// Everything decided about one upstream body.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `None` when refused: nothing of the body is sent.
    pub body: Option<Value>,
    pub refusal: Option<Refusal>,
    /// The body would have disclosed something, but no `subjects` path named a data subject,
    /// so the disclosure could not be found by a subject access request: nothing is sent.
    pub unidentified: bool,
    /// Rule-form paths sent and withheld, sorted and without duplicates.
    pub disclosed: BTreeSet<String>,
    pub withheld: BTreeSet<String>,
    /// Rule-form scrub paths where free text had something removed ([`super::scrub`]).
    pub scrubbed: BTreeSet<String>,
    /// Data-subject ids from the route's `subjects`, read from the upstream body.
    pub subjects: Vec<String>,
    /// The reasons of the `when` rules that held, or of the refusal.
    pub reasons: Vec<String>,
    /// `FILE:LINE kind` of each rule whose evaluation failed, sorted.
    pub rule_errors: Vec<String>,
    /// Per upstream path, why it was or was not sent; only when asked for (`explain`).
    pub fields: Option<BTreeMap<String, Decision>>,
    /// Per element of an array an `items` rule filters, what decided; only when asked for
    /// (`explain`), else empty.
    pub elements: Vec<Element>,
}

/// Why a response was refused: for the audit and `explain`, never for the recipient, who
/// gets one answer whatever the rule and whether it held or erred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    /// The refusal condition could not be evaluated, so the response was refused to be safe.
    pub erred: bool,
    /// The status the recipient gets ([`Refuse::status`]).
    pub status: u16,
}

/// The request headers a condition may read, taken before the request is forwarded.
pub fn pick_headers(headers: &http::HeaderMap) -> Vec<(&'static str, String)> {
    cel::HEADERS
        .iter()
        .filter_map(|&name| {
            let value = headers.get(name)?.to_str().ok()?;
            Some((name, value.to_owned()))
        })
        .collect()
}

// === impl Conditions ===

impl Conditions {
    /// Compiles the allow trees of a route; `functions` are the route's CEL functions.
    pub fn new(
        allow: &[FieldPath],
        when: Vec<When>,
        items: Vec<Items>,
        derive: Vec<Derive>,
        refuse: Option<Refuse>,
        functions: Functions,
    ) -> Conditions {
        let mut base = AllowTree::default();
        for path in allow {
            base.insert(path);
        }
        for d in &derive {
            base.insert_granted(&d.field, format!("derived: {}", d.value.source()));
        }
        let mut uses = Uses::default();
        let mut body_reads = Reads::Nothing;
        for e in when
            .iter()
            .map(|w| &w.condition)
            .chain(items.iter().map(|i| &i.keep))
            .chain(derive.iter().map(|d| &d.value))
            .chain(refuse.iter().map(|r| &r.condition))
        {
            uses = uses.union(e.uses());
            body_reads.union(e.body_reads());
        }
        let mut conditions = Conditions {
            when,
            items,
            derive,
            refuse,
            base,
            trees: Vec::new(),
            functions,
            uses,
            body_reads,
            known: Arc::default(),
        };
        if conditions.when.len() <= PRECOMPUTED_WHENS {
            conditions.trees = (0..1u64 << conditions.when.len())
                .map(|mask| conditions.build_tree(mask))
                .collect();
        }
        conditions
    }

    /// A route with an allow list only.
    pub fn plain(allow: &[FieldPath], kind: &str) -> Conditions {
        Conditions::new(
            allow,
            Vec::new(),
            Vec::new(),
            Vec::new(),
            None,
            Functions::new(kind, None),
        )
    }

    pub fn when(&self) -> &[When] {
        &self.when
    }

    pub fn items(&self) -> &[Items] {
        &self.items
    }

    pub fn derive(&self) -> &[Derive] {
        &self.derive
    }

    pub fn refuse(&self) -> Option<&Refuse> {
        self.refuse.as_ref()
    }

    /// The route's CEL functions, for the lookups' placeholders.
    pub(crate) fn functions(&self) -> &Functions {
        &self.functions
    }

    /// Puts the keys the whole policy names in use for this route's recorded paths.
    pub fn set_known_keys(&mut self, known: Arc<KnownKeys>) {
        self.known = known;
    }

    /// Adds the keys this route's rules name to `known`: their paths and the fields their
    /// expressions read.
    pub fn name_keys(&self, known: &mut KnownKeys) {
        for w in &self.when {
            w.allow.iter().for_each(|p| known.add_path(p));
        }
        for i in &self.items {
            known.add_path(&i.path);
        }
        for d in &self.derive {
            known.add_path(&d.field);
        }
        let exprs = self
            .when
            .iter()
            .map(|w| &w.condition)
            .chain(self.items.iter().map(|i| &i.keep))
            .chain(self.derive.iter().map(|d| &d.value))
            .chain(self.refuse.iter().map(|r| &r.condition));
        for e in exprs {
            e.body_reads().name_keys(known);
            e.item_reads().name_keys(known);
        }
    }

    /// An empty recorded name for a walk over an upstream body of this route.
    pub(crate) fn names(&self) -> RuleFormBuf {
        RuleFormBuf::naming(Arc::clone(&self.known))
    }

    fn has_rules(&self) -> bool {
        !self.when.is_empty()
            || !self.items.is_empty()
            || !self.derive.is_empty()
            || self.refuse.is_some()
    }

    fn build_tree(&self, mask: u64) -> AllowTree {
        let mut tree = self.base.clone();
        for (i, w) in self.when.iter().enumerate() {
            if mask & (1 << i) != 0 {
                for path in &w.allow {
                    tree.insert_granted(path, format!("when {:?}: allow \"{path}\"", w.reason));
                }
            }
        }
        tree
    }

    fn tree(&self, mask: u64) -> Cow<'_, AllowTree> {
        match usize::try_from(mask).ok().and_then(|m| self.trees.get(m)) {
            Some(tree) => Cow::Borrowed(tree),
            None => Cow::Owned(self.build_tree(mask)),
        }
    }
}

// === decide ===

/// How a `when` rule came out, for `explain`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    Yes,
    No,
    Erred,
}

/// How the `when` rules of one response came out.
struct Whens {
    /// Bit `i` set when rule `i` held: the allow tree to use ([`Conditions::tree`]).
    mask: u64,
    /// Each rule's outcome, for `explain`.
    held: Vec<Held>,
    /// The reasons of the rules that held, in rule order.
    reasons: Vec<String>,
}

/// Evaluates the `when` rules in order with `holds`; one that errs does not hold and is
/// named in `errors`. The one `when` step, whole body and streamed alike.
fn whens(
    when: &[When],
    holds: impl Fn(&Expr) -> Result<bool, EvalError>,
    errors: &mut BTreeSet<String>,
) -> Whens {
    let mut out = Whens {
        mask: 0,
        held: Vec::with_capacity(when.len()),
        reasons: Vec::new(),
    };
    for (i, w) in when.iter().enumerate() {
        out.held.push(match holds(&w.condition) {
            Ok(true) => {
                out.mask |= 1 << i;
                out.reasons.push(w.reason.clone());
                Held::Yes
            }
            Ok(false) => Held::No,
            Err(_) => {
                note_in(errors, &w.site);
                Held::Erred
            }
        });
    }
    out
}

/// Whether an `items` rule keeps the element `inputs.item`: `Err` (with why) when its `keep`
/// cannot be evaluated, which drops the element as `false` does. The one `items` test,
/// whole body and streamed alike.
fn keeps<'s, 'r: 's, 'v: 's>(
    rule: &Items,
    inputs: &cel::Inputs<'_>,
    scope: &dyn Fn() -> &'s cel::Scope<'r, 'v>,
) -> Result<bool, EvalError> {
    eval::holds(&rule.keep, inputs, scope)
}

/// Sets a derived field's value `result` at `key` of `parent`, or removes the key when the
/// derivation erred, so an upstream value can never pass in its place; true when that
/// removed an upstream value. The one `derive` write, whole body and streamed alike.
fn set_derived(parent: &mut Value, key: &str, result: &Result<Value, EvalError>) -> bool {
    let Value::Object(map) = parent else {
        return false; // not an object: no field to set
    };
    match result {
        Ok(v) => {
            map.insert(key.to_owned(), v.clone());
            false
        }
        Err(_) => map.remove(key).is_some(),
    }
}

/// Rule errors of one request: each rule named once, however many elements it failed on.
#[derive(Default)]
struct Errors(BTreeSet<String>);

impl Errors {
    fn note(&mut self, site: &str) {
        note_in(&mut self.0, site);
    }
}

/// Names `site` in `errors`, once however often it fails.
fn note_in(errors: &mut BTreeSet<String>, site: &str) {
    if !errors.contains(site) {
        errors.insert(site.to_owned());
    }
}

/// [`decide`] the simple way, as the oracle ([`eval::as_oracle`]): the body copied before the
/// item filters even when no derived field needs it, every value bound to CEL converted
/// whole, and no direct answers. Kept for the property that the fast way (in place, only what
/// is read converted, answered directly where certain) decides the same.
#[cfg(test)]
pub(crate) fn decide_copying(
    plan: &Plan,
    request: &Request<'_>,
    upstream: &Value,
    explain: bool,
) -> Outcome {
    eval::as_oracle(|| decide(plan, request, upstream, explain))
}

/// One view of the body for the interpreter: the upstream body without the values in
/// `removed`, bound into a CEL scope the first time an expression needs one.
struct View<'a, 'v> {
    c: &'v Conditions,
    request: &'v Request<'v>,
    upstream: &'v Value,
    removed: Option<&'a Removed>,
    scope: OnceCell<cel::Scope<'v, 'v>>,
}

impl<'a, 'v> View<'a, 'v> {
    /// The upstream body as it came.
    fn new(c: &'v Conditions, request: &'v Request<'v>, upstream: &'v Value) -> Self {
        View {
            c,
            request,
            upstream,
            removed: None,
            scope: OnceCell::new(),
        }
    }

    /// The upstream body without the values in `removed`.
    fn without(
        c: &'v Conditions,
        request: &'v Request<'v>,
        upstream: &'v Value,
        removed: &'a Removed,
    ) -> Self {
        View {
            removed: Some(removed),
            ..View::new(c, request, upstream)
        }
    }

    fn scope(&self) -> &cel::Scope<'v, 'v> {
        self.scope.get_or_init(|| {
            let mut scope = self.c.functions.root().new_inner_scope();
            if self.c.has_rules() {
                let nothing = Removed::default();
                let removed = self.removed.unwrap_or(&nothing);
                bind(
                    &mut scope,
                    self.c.uses,
                    eval::bound(&self.c.body_reads),
                    self.request,
                    (self.upstream, removed),
                );
            }
            scope
        })
    }

    /// Whether a condition holds on this view ([`eval::holds`]); `inputs.body_removed` must
    /// be this view's `removed`.
    fn holds(&self, e: &Expr, inputs: &cel::Inputs<'_>) -> Result<bool, EvalError> {
        eval::holds(e, inputs, &|| self.scope())
    }
}

/// Decides what of `upstream` the caller of `request` gets under `plan`: the one function
/// behind `serve`, `explain` and (later) `test` and `diff`.
///
/// Pure: no I/O and no clock (the time is `request.now`); the only side effect is the
/// rule-error counters. With `explain`, [`Outcome::fields`] holds a decision for every path
/// of the upstream body, and [`Outcome::elements`] one for every element an `items` rule
/// looked at, recorded as the rule decides it (`apply_items`).
pub fn decide(plan: &Plan, request: &Request<'_>, upstream: &Value, explain: bool) -> Outcome {
    let c = plan.conditions();
    let mut errors = Errors::default();
    let nothing_removed = Removed::default();
    let now = cel::date_time(request.now);
    // Each step sees `body` as the steps before it left it: `refuse` and the `items` rules the
    // upstream body (an items rule reads none of the rows items filter), `when` and `derive`
    // the body without every dropped row. The CEL scope of a view is built only
    // when an expression needs the interpreter: the simple conditions are answered directly
    // on the JSON ([`eval`]; debug builds ask the interpreter too, to compare).
    let upstream_view = View::new(c, request, upstream);
    let upstream_inputs = cel::Inputs {
        request,
        body: c.uses.body.then_some(upstream),
        body_removed: &nothing_removed,
        item: None,
        item_removed: &nothing_removed,
        now,
    };

    // refuse
    if let Some(r) = &c.refuse {
        let refused = match upstream_view.holds(&r.condition, &upstream_inputs) {
            Ok(held) => held.then_some(false),
            Err(_) => {
                errors.note(&r.site);
                Some(true)
            }
        };
        if let Some(erred) = refused {
            // A refusal is made on behalf of everyone the body names.
            let subjects = subjects(plan.subjects(), upstream);
            return refused_outcome(c, r, erred, subjects, errors, upstream, explain);
        }
    }

    // items, on the upstream body in place: what they take out is noted in `removed`
    let mut notes: BTreeMap<String, Decision> = BTreeMap::new();
    let mut dropped: BTreeSet<String> = BTreeSet::new();
    let mut removed = Removed::default();
    let mut per_element = explain.then(|| Elements::new(plan.subjects(), upstream));
    for rule in &c.items {
        // `check` refuses a rule that reads `body` where any items rule filters, so what it
        // reads is the same before and after any drop: the upstream body will do.
        apply_items(
            rule,
            c.names(),
            upstream,
            &mut removed,
            (&|| upstream_view.scope(), &upstream_inputs),
            &mut errors,
            &mut dropped,
            (&mut notes, per_element.as_mut()),
            explain,
        );
    }
    let elements = per_element.map(Elements::into_list).unwrap_or_default();
    let narrowed_view =
        (!removed.is_empty() && c.uses.body).then(|| View::without(c, request, upstream, &removed));
    let narrowed = narrowed_view.as_ref().unwrap_or(&upstream_view);
    let narrowed_inputs = cel::Inputs {
        body_removed: &removed,
        ..upstream_inputs
    };

    // when, on the narrowed body: its answer must not depend on a dropped row
    let Whens {
        mask,
        held,
        reasons,
    } = whens(
        &c.when,
        |e| narrowed.holds(e, &narrowed_inputs),
        &mut errors.0,
    );

    // The subjects are those whose records remain after the item filters: an element
    // dropped (an objector left out of a sample) was not disclosed, so a subject access
    // report must not list this disclosure for them.
    let subjects = subjects_without(plan.subjects(), upstream, &removed);
    // derive writes into the body: then, and only then, it is copied (without what the
    // item filters took out); it reads `body` as `when` does, narrowed. The oracle always
    // copies: it checks that the walk in place sends what a copy would.
    let mut body = Cow::Borrowed(upstream);
    let mut skip = &removed;
    if !c.derive.is_empty() || eval::oracle() {
        body = Cow::Owned(removed.copy_without(upstream));
        skip = &nothing_removed;
    }
    for rule in &c.derive {
        apply_derive(
            rule,
            body.to_mut(),
            (&|| narrowed.scope(), &narrowed_inputs, &c.functions),
            &mut errors,
            (&mut notes, &mut dropped),
            explain,
        );
    }

    // allow
    let tree = c.tree(mask);
    let (filtered, fields) = if explain {
        let (filtered, fields) = allow_explained_without(&tree, &body, skip, c.names());
        (filtered, Some(fields))
    } else {
        (allow_without(&tree, &body, skip, c.names()), None)
    };
    let mut withheld = filtered.withheld;
    for path in dropped {
        if !withheld.iter().any(|w| covers(w, &path)) {
            withheld.insert(path);
        }
    }
    let fields = fields.map(|mut fields| {
        // Paths seen only in dropped elements or failed derivations; the walk's own
        // decision wins where there is one.
        for (path, note) in notes {
            fields.entry(path).or_insert(note);
        }
        explain_whens(&mut fields, &c.when, &held);
        fields
    });
    let identified = plan.subjects_optional()
        || (filtered.disclosed.is_empty() || !subjects.is_empty())
            && (tree.root.each.is_none() || every_row_named(plan, upstream, &removed));
    if identified {
        // Scrubbed last, on what the grants passed: it narrows a disclosure, never widens one.
        let mut body = filtered.body;
        let scrubbed = plan.scrubs().apply(&mut body);
        return Outcome {
            body: Some(body),
            refusal: None,
            unidentified: false,
            disclosed: filtered.disclosed,
            withheld,
            scrubbed,
            subjects,
            reasons,
            rule_errors: errors.0.into_iter().collect(),
            fields,
            elements,
        };
    }
    let why = "not sent: no subjects path named a data subject (of the response, or of a row of it), so the disclosure could not be recorded against anyone";
    let mut outcome = nothing_sent(c, why, upstream, explain);
    outcome.unidentified = true;
    // Kept rows included: which of them names no subject is what the reader looks for.
    outcome.elements = elements;
    outcome.reasons = reasons;
    outcome.rule_errors = errors.0.into_iter().collect();
    outcome
}

/// Whether every row of a list response that is sent names a data subject, when the route's
/// subjects are rows' fields (`[].id`): else a subject access request for the person in an
/// unnamed row could never find the disclosure, however many other rows name theirs. Rows
/// the item filters dropped are not sent and need no name; an empty row `{}` is sent (it
/// tells the recipient one more person is there) and does.
fn every_row_named(plan: &Plan, upstream: &Value, dropped: &Removed) -> bool {
    let Value::Array(rows) = upstream else {
        return true;
    };
    let in_row: Vec<FieldPath> = plan
        .subjects()
        .iter()
        .filter_map(FieldPath::in_element)
        .collect();
    if in_row.is_empty() {
        return true;
    }
    rows.iter()
        .filter(|row| !dropped.has(row))
        .all(|row| !subjects_without(&in_row, row, dropped).is_empty())
}

// === per element, for streamed routes ===

/// The rules of a streamed route, evaluated the way [`decide`] evaluates them on a
/// one-element array, for [`super::project`], through the same steps ([`whens`], [`keeps`],
/// [`set_derived`]): the `when`s once per response ([`Self::whens`]), then per element the
/// `items` at `[]` ([`Self::keep`]) and the derives at `[].key` ([`Self::derive`]).
/// [`Plan::streamable`] has checked that no rule reads `body` and that there is no `refuse`,
/// so nothing here needs the whole body, and a `when` decided before the `items` is the
/// `when` decided after them: the order is the one above.
pub(crate) struct PerElement<'a> {
    c: &'a Conditions,
    request: &'a Request<'a>,
    /// Built only when an expression needs the interpreter, as in [`decide`].
    scope: OnceCell<cel::Scope<'a, 'a>>,
    now: chrono::DateTime<chrono::FixedOffset>,
}

/// The `body` a streamed route's scope is bound with: its rules never read it.
static NO_BODY: Value = Value::Null;

impl<'a> PerElement<'a> {
    pub(crate) fn new(plan: &'a Plan, request: &'a Request<'a>) -> Self {
        PerElement {
            c: plan.conditions(),
            request,
            scope: OnceCell::new(),
            now: cel::date_time(request.now),
        }
    }

    fn scope(&self) -> &cel::Scope<'a, 'a> {
        self.scope.get_or_init(|| {
            let mut scope = self.c.functions.root().new_inner_scope();
            if self.c.has_rules() {
                bind(
                    &mut scope,
                    self.c.uses,
                    &self.c.body_reads,
                    self.request,
                    (&NO_BODY, &Removed::default()),
                );
            }
            scope
        })
    }

    fn inputs<'i>(&'i self, item: Option<&'i Value>, removed: &'i Removed) -> cel::Inputs<'i> {
        cel::Inputs {
            request: self.request,
            body: None,
            body_removed: removed,
            item,
            item_removed: removed,
            now: self.now,
        }
    }

    /// Which `when`s held (a bit mask, for [`Self::tree`]) and their reasons; a `when` that
    /// errs is named in `errors` and does not hold.
    pub(crate) fn whens(&self, errors: &mut BTreeSet<String>) -> (u64, Vec<String>) {
        let nothing = Removed::default();
        let inputs = self.inputs(None, &nothing);
        let out = whens(
            &self.c.when,
            |e| eval::holds(e, &inputs, &|| self.scope()),
            errors,
        );
        (out.mask, out.reasons)
    }

    /// The allow tree when the `when`s in `mask` held.
    pub(crate) fn tree(&self, mask: u64) -> Cow<'a, AllowTree> {
        self.c.tree(mask)
    }

    /// Whether every `items` rule keeps the element `item`; one that errs drops it and is
    /// named in `errors`. The rules run in order and stop at the first that drops.
    pub(crate) fn keep(&self, item: &Value, errors: &mut BTreeSet<String>) -> bool {
        let nothing = Removed::default();
        for rule in &self.c.items {
            let inputs = self.inputs(Some(item), &nothing);
            match keeps(rule, &inputs, &|| self.scope()) {
                Ok(true) => {}
                Ok(false) => return false,
                Err(_) => {
                    note_in(errors, &rule.site);
                    return false;
                }
            }
        }
        true
    }

    /// Sets each derived field on the element `item`, in rule order (a later rule sees what
    /// an earlier one set); a derivation that errs removes the field and is named in
    /// `errors`. An element that is not an object gets no field.
    pub(crate) fn derive(&self, item: &mut Value, errors: &mut BTreeSet<String>) {
        let nothing = Removed::default();
        for rule in &self.c.derive {
            let Some(Segment::Key(key)) = rule.field.segments().last() else {
                continue; // the loader refuses a field that does not end with a key
            };
            let result = {
                let inputs = self.inputs(Some(&*item), &nothing);
                eval::derived(&rule.value, &inputs, &|| self.scope(), &self.c.functions)
            };
            if result.is_err() {
                note_in(errors, &rule.site);
            }
            set_derived(item, key, &result);
        }
    }
}

/// Binds the variables the route's rules read; `now` always, since `age_band` reads it.
/// `body` is bound without the values in `removed`; `lookup` holds only the lookups that
/// succeeded, so reading one that failed is an error.
pub(super) fn bind<'v>(
    scope: &mut cel::Scope<'_, 'v>,
    uses: Uses,
    body_reads: &Reads,
    request: &'v Request<'_>,
    (upstream, removed): (&'v Value, &Removed),
) {
    if uses.body {
        scope.add_variable_as_val("body", cel::to_val_reading(upstream, body_reads, removed));
    }
    if uses.recipient {
        scope.add_variable_as_val("recipient", request.caller.to_cel());
    }
    if uses.request {
        scope.add_variable_as_val(
            "request",
            cel::record(
                vec![
                    ("method", cel::string_val(request.method)),
                    ("path", cel::string_val(request.path)),
                    (
                        "params",
                        cel::string_map(
                            request.params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                        ),
                    ),
                    ("query", request.query.to_cel()),
                    (
                        "headers",
                        cel::string_map(request.headers.iter().map(|(k, v)| (*k, v.as_str()))),
                    ),
                ]
                .into_iter()
                .chain(request.body.map(|b| ("body", cel::to_val(b))))
                .collect(),
            ),
        );
    }
    if uses.lookup {
        scope.add_variable_as_val("lookup", cel::json_map(request.lookups.succeeded()));
    }
    scope.add_variable_as_val("now", cel::timestamp(request.now));
}

fn refused_outcome(
    c: &Conditions,
    r: &Refuse,
    erred: bool,
    subjects: Vec<String>,
    errors: Errors,
    upstream: &Value,
    explain: bool,
) -> Outcome {
    let why = if erred {
        format!(
            "refused: the refuse condition could not be evaluated ({:?})",
            r.reason
        )
    } else {
        format!("refused: {}", r.reason)
    };
    let mut outcome = nothing_sent(c, &why, upstream, explain);
    outcome.refusal = Some(Refusal {
        reason: r.reason.clone(),
        erred,
        status: r.status,
    });
    outcome.subjects = subjects;
    outcome.reasons = vec![r.reason.clone()];
    outcome.rule_errors = errors.0.into_iter().collect();
    outcome
}

/// An outcome that sends nothing of `upstream`: every path withheld, `why` for each.
fn nothing_sent(c: &Conditions, why: &str, upstream: &Value, explain: bool) -> Outcome {
    let nothing = AllowTree::default();
    let none = Removed::default();
    let (filtered, fields) = if explain {
        let (filtered, mut fields) = allow_explained_without(&nothing, upstream, &none, c.names());
        for decision in fields.values_mut() {
            decision.why = why.to_owned();
        }
        (filtered, Some(fields))
    } else {
        (allow_without(&nothing, upstream, &none, c.names()), None)
    };
    Outcome {
        body: None,
        refusal: None,
        unidentified: false,
        disclosed: BTreeSet::new(),
        withheld: filtered.withheld,
        scrubbed: BTreeSet::new(),
        subjects: Vec::new(),
        reasons: Vec::new(),
        rule_errors: Vec::new(),
        fields,
        elements: Vec::new(),
    }
}

/// Calls `f` on every value at `segments` under `value`, through `[]`, skipping what
/// `removed` holds; where `f` returns false the value is removed (its key, or its array
/// element: added to `removed`, the upstream body itself is never changed), and the rule-form
/// path of a removed key is added to `taken`, so that the audit lists it as withheld.
///
/// With `strict`, a value on the way that is neither of the shape the path expects nor
/// `null` is removed too (and `mismatch` set): an item filter must not be bypassed by an
/// upstream that changed `tenant` from an object to an array under an allow entry `tenant`.
struct Visit<'a> {
    strict: bool,
    mismatch: bool,
    removed: &'a mut Removed,
    /// Where the walk is, in rule form; its keys are the rule's own.
    at: RuleFormBuf,
    /// With `trace`, the index of each enclosing array element, for `explain`; else empty,
    /// so the request path does not allocate for it.
    trace: bool,
    trail: Vec<usize>,
    taken: &'a mut BTreeSet<String>,
}

/// What [`Visit::visit`] calls on each value at the path: the value, what is removed so far,
/// where it is in rule form, and the index of each enclosing element (with `trace`).
type AtTarget<'f> = dyn FnMut(&Value, &mut Removed, &RuleFormBuf, &[usize]) -> bool + 'f;

impl Visit<'_> {
    fn visit(&mut self, value: &Value, segments: &[Segment], f: &mut AtTarget<'_>) -> bool {
        let Some((first, rest)) = segments.split_first() else {
            return f(value, self.removed, &self.at, &self.trail);
        };
        match (first, value) {
            (Segment::Key(key), Value::Object(map)) => {
                if let Some(child) = map.get(key) {
                    self.at.push_key(key);
                    if !self.removed.has(child) && !self.visit(child, rest, f) {
                        self.removed.insert(child);
                        self.taken.insert(self.at.as_str().to_owned());
                    }
                    self.at.pop();
                }
            }
            (Segment::Each, Value::Array(items)) => {
                self.at.push_each();
                for (i, el) in items.iter().enumerate() {
                    if self.trace {
                        self.trail.push(i);
                    }
                    if !self.removed.has(el) && !self.visit(el, rest, f) {
                        self.removed.insert(el);
                        self.taken.insert(self.at.as_str().to_owned());
                    }
                    if self.trace {
                        self.trail.pop();
                    }
                }
                self.at.pop();
            }
            (_, Value::Null) => {}
            _ if self.strict => {
                self.mismatch = true;
                return false;
            }
            _ => {}
        }
        true
    }
}

/// [`visit`] on a body being written (the derived fields, on the route's own copy): where
/// `f` returns false the value is removed for real.
fn visit_mut(
    value: &mut Value,
    segments: &[Segment],
    strict: bool,
    mismatch: &mut bool,
    f: &mut dyn FnMut(&mut Value) -> bool,
) -> bool {
    let Some((first, rest)) = segments.split_first() else {
        return f(value);
    };
    match (first, value) {
        (Segment::Key(key), Value::Object(map)) => {
            if let Some(child) = map.get_mut(key) {
                if !visit_mut(child, rest, strict, mismatch, f) {
                    map.remove(key);
                }
            }
        }
        (Segment::Each, Value::Array(items)) => {
            items.retain_mut(|el| visit_mut(el, rest, strict, mismatch, f));
        }
        (_, Value::Null) => {}
        _ if strict => {
            *mismatch = true;
            return false;
        }
        _ => {}
    }
    true
}

/// The recorded name of a rule's own path, from `buf` (empty, naming upstream keys as the
/// route does).
fn rule_form(segments: &[Segment], mut buf: RuleFormBuf) -> RuleFormBuf {
    for segment in segments {
        match segment {
            Segment::Key(k) => buf.push_key(k),
            Segment::Each => buf.push_each(),
        }
    }
    buf
}

#[allow(clippy::too_many_arguments)]
fn apply_items<'s, 'r: 's, 'v: 's>(
    rule: &Items,
    names: RuleFormBuf,
    body: &Value,
    removed: &mut Removed,
    (scope, inputs): (&dyn Fn() -> &'s cel::Scope<'r, 'v>, &cel::Inputs<'_>),
    errors: &mut Errors,
    dropped: &mut BTreeSet<String>,
    (notes, mut per_element): (&mut BTreeMap<String, Decision>, Option<&mut Elements<'_>>),
    explain: bool,
) {
    // `path` names the array to filter; the root array has no name, so `[]` alone names it
    // (as `[].id` names a field of its elements).
    let root = rule.path.segments() == [Segment::Each];
    let segments: &[Segment] = if root { &[] } else { rule.path.segments() };
    let mut buf = rule_form(if root { &[] } else { rule.path.segments() }, names);
    let path = rule.path.to_string();
    let mut note = |el: &Value, why: &str, buf: &mut RuleFormBuf, removed: &Removed| {
        if !explain {
            return;
        }
        buf.push_each();
        let why = format!("items {path:?}: {why}");
        notes
            .entry(buf.as_str().to_owned())
            .or_insert_with(|| Decision {
                disclosed: false,
                why: why.clone(),
            });
        each_inner_path(el, buf, removed, &mut |p, _| {
            notes.entry(p.to_owned()).or_insert_with(|| Decision {
                disclosed: false,
                why: why.clone(),
            });
        });
        buf.pop();
    };
    let mut erred = false;
    let mut any_dropped = false;
    let mut emptied = false;
    let mut visit = Visit {
        strict: true,
        mismatch: false,
        removed,
        at: RuleFormBuf::new(),
        trace: per_element.is_some(),
        trail: Vec::new(),
        taken: dropped,
    };
    // The root is never removed: a root of the wrong shape only sets `mismatch`.
    visit.visit(body, segments, &mut |target, removed, at, trail| {
        let Value::Array(elements) = target else {
            if target.is_null() {
                return true; // no elements to filter
            }
            // Not an array: the rule cannot be applied, so nothing of it is kept.
            erred = true;
            if let Some(record) = per_element.as_deref_mut() {
                record.not_an_array(rule, trail);
            }
            return false;
        };
        for (index, el) in elements.iter().enumerate() {
            if removed.has(el) {
                continue;
            }
            let item = cel::Inputs {
                item: Some(el),
                item_removed: removed,
                ..*inputs
            };
            let kept = keeps(rule, &item, scope);
            if let Some(record) = per_element.as_deref_mut() {
                record.decided(rule, trail, (index, el), &kept);
            }
            let keep = match kept {
                Ok(true) => continue,
                Ok(false) => "keep was false".to_owned(),
                Err(e) => {
                    erred = true;
                    format!("keep could not be evaluated ({e}), dropped")
                }
            };
            any_dropped = true;
            note(el, &keep, &mut buf, removed);
            removed.insert(el);
        }
        // An empty array would tell the recipient whether there were rows to hide, so it is
        // not sent at all (an empty upstream array too, or its presence would tell the same).
        if rule.keep_empty || at.as_str().is_empty() || elements.iter().any(|el| !removed.has(el)) {
            return true;
        }
        emptied = true;
        false
    });
    if erred || visit.mismatch {
        errors.note(&rule.site);
    }
    if any_dropped {
        buf.push_each();
        dropped.insert(buf.as_str().to_owned());
        buf.pop();
    }
    if emptied && explain {
        notes
            .entry(buf.as_str().to_owned())
            .or_insert_with(|| Decision {
                disclosed: false,
                why: format!("items {path:?}: no element kept, so the array is not sent"),
            });
    }
}

#[allow(clippy::too_many_arguments)]
fn apply_derive<'s, 'r: 's, 'v: 's>(
    rule: &Derive,
    body: &mut Value,
    (scope, inputs, functions): (
        &dyn Fn() -> &'s cel::Scope<'r, 'v>,
        &cel::Inputs<'_>,
        &Functions,
    ),
    errors: &mut Errors,
    (notes, withheld): (&mut BTreeMap<String, Decision>, &mut BTreeSet<String>),
    explain: bool,
) {
    let segments = rule.field.segments();
    let Some((Segment::Key(key), parent)) = segments.split_last() else {
        return; // the loader refuses a field that does not end with a key
    };
    // `item` is the element of the innermost `[]`: evaluate there, then set below it.
    let split = parent.iter().rposition(|s| *s == Segment::Each);
    let (outer, inner) = match split {
        Some(i) => (&parent[..=i], &parent[i + 1..]),
        None => (&parent[..0], parent),
    };
    let mut failure: Option<EvalError> = None;
    // An upstream value the failed derivation removed was present and not sent.
    let mut removed_upstream = false;
    let mut derive_one = |at: &mut Value, item: bool| {
        let here = cel::Inputs {
            item: item.then_some(&*at),
            ..*inputs
        };
        let result = eval::derived(&rule.value, &here, scope, functions);
        visit_mut(at, inner, false, &mut false, &mut |parent| {
            removed_upstream |= set_derived(parent, key, &result);
            true
        });
        if let Err(e) = result {
            failure.get_or_insert(e);
        }
        true
    };
    if split.is_some() {
        visit_mut(body, outer, false, &mut false, &mut |el| {
            derive_one(el, true)
        });
    } else {
        derive_one(body, false);
    }
    if removed_upstream {
        withheld.insert(rule.field.to_string());
    }
    if let Some(e) = failure {
        errors.note(&rule.site);
        if explain {
            notes.insert(
                rule.field.to_string(),
                Decision {
                    disclosed: false,
                    why: format!(
                        "derived: {} could not be evaluated ({e}), omitted",
                        rule.value.source()
                    ),
                },
            );
        }
    }
}

/// Whether the rule-form path `top` is `path` or an ancestor of it.
fn covers(top: &str, path: &str) -> bool {
    top.is_empty()
        || path == top
        || path
            .strip_prefix(top)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// Names the `when` rule that would have granted a withheld path, had it held.
fn explain_whens(fields: &mut BTreeMap<String, Decision>, when: &[When], held: &[Held]) {
    for (path, decision) in fields.iter_mut() {
        if decision.disclosed
            || !(decision.why == super::Why::NotAllowed.to_string()
                || decision.why.starts_with("inside withheld"))
        {
            continue;
        }
        let Ok(p) = FieldPath::parse(path) else {
            continue;
        };
        let rule = when.iter().zip(held).find(|(w, h)| {
            **h != Held::Yes && w.allow.iter().any(|a| p.is_under(a) || a.is_under(&p))
        });
        if let Some((w, h)) = rule {
            decision.why = match h {
                Held::Erred => format!("when {:?}: the condition could not be evaluated", w.reason),
                _ => format!("when {:?}: the condition did not hold", w.reason),
            };
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.erred {
            f.write_str("refused by policy: the refusal condition could not be evaluated")
        } else {
            write!(f, "refused by policy: {}", self.reason)
        }
    }
}

#[cfg(test)]
mod tests;
