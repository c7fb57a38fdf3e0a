//! The filter: what of an upstream body a recipient may see.
//!
//! [`decide`] is the one pure function from a compiled route, the request and an upstream
//! body to the filtered body and the record of what was sent, what was not and why. `serve`
//! and `explain` both call it, so what a DPO previews is what a recipient gets. It applies the
//! conditional rules ([`conditions`], in CEL: [`cel`]), then the allow-list walk below,
//! [`allow`], then scrubs free text in what it passed ([`scrub`]).
//!
//! The filter builds its output from the grants instead of deleting what looks sensitive
//! from a copy: a field reaches the output only when the walk reached it through the allow
//! tree. Anything the tree does not name, and any value whose shape differs from what the
//! tree expects (an array where it names object keys, an object where it names `[]`, a
//! scalar where it names either), is withheld. A new upstream field, a renamed field or a
//! changed shape therefore fails closed.
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use serde_json::{Map, Value};

use crate::path::{FieldPath, RuleFormBuf, Segment};

pub mod cel;
pub mod conditions;
pub mod eval;
pub mod lookup;
mod plan;
pub(crate) mod project;
mod query;
pub mod scrub;
pub mod write;

pub use conditions::{decide, pick_headers, Element, Outcome, Refusal, Request};
pub use lookup::Lookups;
pub use plan::{Caller, Plan};
pub use query::Query;

/// The compiled allow list of one route: a trie of the allow entries.
///
/// Compiled once when rules load, so a request pays one lookup per upstream key. A node where
/// an entry ends is terminal and passes its whole subtree, because naming a key grants
/// everything under it (`appointment` grants `appointment.date` and `appointment.slot`).
#[derive(Debug, Clone, Default)]
pub struct AllowTree {
    root: Node,
}

#[derive(Debug, Clone, Default)]
struct Node {
    /// Set when an allow entry ends here: the text that `explain` gives as the reason, by
    /// default the entry in rule form. A terminal node keeps no children: they would grant
    /// nothing the node does not already grant.
    grant: Option<String>,
    keys: BTreeMap<String, Node>,
    each: Option<Box<Node>>,
}

/// What the filter decided for one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filtered {
    /// The body the recipient receives.
    pub body: Value,
    /// Rule-form paths of the leaf values sent (scalars, and empty arrays or objects sent as
    /// granted values), never with an array index.
    pub disclosed: BTreeSet<String>,
    /// Rule-form paths present upstream but not sent, each naming the top-most path of a
    /// withheld subtree once.
    pub withheld: BTreeSet<String>,
}

/// Why one upstream path was or was not sent, for `explain`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub disclosed: bool,
    pub why: String,
}

// === impl AllowTree ===

impl AllowTree {
    /// Compiles the allow entries of a route.
    pub fn new(paths: &[FieldPath]) -> Self {
        let mut tree = Self::default();
        for path in paths {
            tree.insert(path);
        }
        tree
    }

    /// A tree granting everything `self` grants and `paths` too, for the extra fields of a
    /// `when` rule whose condition held. `self` is left as compiled, since it is shared by
    /// every request on the route.
    pub fn union(&self, paths: &[FieldPath]) -> Self {
        let mut tree = self.clone();
        for path in paths {
            tree.insert(path);
        }
        tree
    }

    /// Adds an allow entry; `explain` names the entry itself as the reason
    /// (`allow "tenant.name"`).
    pub fn insert(&mut self, path: &FieldPath) {
        self.insert_granted(path, format!("allow \"{path}\""));
    }

    /// Adds an allow entry with the reason `explain` should give for the fields it passes,
    /// e.g. the entry and the `when` rule that added it.
    ///
    /// A path under an entry already present changes nothing: the first grant of a subtree
    /// is the one reported.
    pub fn insert_granted(&mut self, path: &FieldPath, grant: impl Into<String>) {
        let mut node = &mut self.root;
        for segment in path.segments() {
            if node.grant.is_some() {
                return;
            }
            node = match segment {
                Segment::Key(key) => node.keys.entry(key.clone()).or_default(),
                Segment::Each => node.each.get_or_insert_with(Default::default),
            };
        }
        if node.grant.is_none() {
            node.grant = Some(grant.into());
            node.keys.clear();
            node.each = None;
        }
    }

    /// Whether the tree grants nothing.
    pub fn is_empty(&self) -> bool {
        self.root.keys.is_empty() && self.root.each.is_none()
    }
}

/// Filters `body` through `tree`.
///
/// The root keeps its kind: an object stays an object holding only granted keys, an array
/// stays an array of the elements that pass the `[]` entries (none when there are none). A
/// scalar body cannot hold a granted field, so it becomes `null` and is recorded as
/// withheld under the empty path `""`.
///
/// Upstream keys are named as written: for tests and previews. What goes to the ledger is
/// named through [`Conditions`](conditions::Conditions), which writes unknown keys as `*`.
pub fn allow(tree: &AllowTree, body: &Value) -> Filtered {
    allow_without(tree, body, &Removed::default(), RuleFormBuf::new())
}

/// [`allow`] on `body` as if the values in `removed` were not there, naming paths from `buf`.
fn allow_without(tree: &AllowTree, body: &Value, removed: &Removed, buf: RuleFormBuf) -> Filtered {
    let mut sets = Sets::default();
    let body = walk_root(&tree.root, body, removed, &mut sets, buf);
    sets.into_filtered(body)
}

/// [`allow`], plus a decision for every path present in the upstream body, in rule form.
///
/// Inner paths of a withheld subtree are listed too, each naming the subtree. When one
/// rule-form path meets several elements of an array with different outcomes, it is
/// reported as disclosed if any element sent it.
pub fn allow_explained(tree: &AllowTree, body: &Value) -> (Filtered, BTreeMap<String, Decision>) {
    allow_explained_without(tree, body, &Removed::default(), RuleFormBuf::new())
}

fn allow_explained_without(
    tree: &AllowTree,
    body: &Value,
    removed: &Removed,
    buf: RuleFormBuf,
) -> (Filtered, BTreeMap<String, Decision>) {
    let mut explain = Explain::default();
    let body = walk_root(&tree.root, body, removed, &mut explain, buf);
    (explain.sets.into_filtered(body), explain.fields)
}

/// The values at `paths` in the upstream body, through `[]` too: strings as they are,
/// numbers as their JSON text, anything else ignored; sorted, without duplicates.
///
/// Read from the upstream body rather than the filtered one, because the audit must name the
/// data subject even when the recipient is not told the id.
pub fn subjects(paths: &[FieldPath], body: &Value) -> Vec<String> {
    subjects_without(paths, body, &Removed::default())
}

/// [`subjects`] of `body` as if the values in `removed` were not there.
fn subjects_without(paths: &[FieldPath], body: &Value, removed: &Removed) -> Vec<String> {
    let mut out = BTreeSet::new();
    for path in paths {
        collect_subjects(path.segments(), body, removed, &mut out);
    }
    out.into_iter().collect()
}

/// Adds to `out` the values at `segments` under `value`, through `[]` too, skipping what
/// `removed` holds: strings as they are, numbers as their JSON text, anything else ignored.
fn collect_subjects(
    segments: &[Segment],
    value: &Value,
    removed: &Removed,
    out: &mut BTreeSet<String>,
) {
    let Some((first, rest)) = segments.split_first() else {
        match value {
            Value::String(s) => {
                out.insert(s.clone());
            }
            Value::Number(n) => {
                out.insert(n.to_string());
            }
            _ => {}
        }
        return;
    };
    match (first, value) {
        (Segment::Key(key), Value::Object(map)) => {
            if let Some(child) = map.get(key).filter(|c| !removed.has(c)) {
                collect_subjects(rest, child, removed, out);
            }
        }
        (Segment::Each, Value::Array(items)) => {
            for item in items.iter().filter(|c| !removed.has(c)) {
                collect_subjects(rest, item, removed, out);
            }
        }
        _ => {}
    }
}

/// Values an item filter took out of the upstream body, by address, so that the body is
/// filtered in place instead of copied: the walk, [`subjects`] and the inner paths skip them
/// as if they had been deleted.
///
/// An address names one value only while the body is borrowed unchanged, which it is for
/// the whole of one `decide`; a route with derived fields, which must write into the body,
/// copies it without these values first ([`Removed::copy_without`]). A `BTreeSet`, not a
/// `HashSet`: the walk asks about every value once any is removed, and comparing two
/// addresses is cheaper than hashing one with SipHash (callgrind: 3% of `decide`).
#[derive(Debug, Default, Clone)]
pub(crate) struct Removed(BTreeSet<*const Value>);

impl Removed {
    pub(crate) fn insert(&mut self, value: &Value) {
        self.0.insert(std::ptr::from_ref(value));
    }

    pub(crate) fn has(&self, value: &Value) -> bool {
        !self.0.is_empty() && self.0.contains(&std::ptr::from_ref(value))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `value` without the removed values under it.
    pub(crate) fn copy_without(&self, value: &Value) -> Value {
        if self.is_empty() {
            return value.clone();
        }
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter(|(_, v)| !self.has(v))
                    .map(|(k, v)| (k.clone(), self.copy_without(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .filter(|v| !self.has(v))
                    .map(|v| self.copy_without(v))
                    .collect(),
            ),
            scalar => scalar.clone(),
        }
    }
}

// === the walk ===

/// What the walk tells whoever keeps score. [`allow`] keeps two sets; `explain` also keeps a
/// reason per path. One walk serves both, so the preview cannot drift from the real thing.
trait Recorder {
    /// Whether the walk should also report every path inside a withheld subtree; off for
    /// the request path, which names only the top of the subtree.
    const EVERY_PATH: bool;

    /// A value sent because `grant` passes it; `leaf` for scalars and empty containers.
    fn disclose(&mut self, path: &str, grant: &str, leaf: bool);
    /// A container sent as structure because it holds granted fields.
    fn traverse(&mut self, path: &str);
    /// The top of a subtree not sent.
    fn withhold(&mut self, path: &str, why: Why);
    /// A path inside the withheld subtree `top` (only when `EVERY_PATH`).
    fn inside_withheld(&mut self, _path: &str, _top: &str) {}
}

/// Why a subtree was withheld.
#[derive(Debug, Clone, Copy)]
enum Why {
    NotAllowed,
    /// The tree names keys and/or `[]` here (`object`, `array`), but found another kind.
    Shape {
        object: bool,
        array: bool,
        found: Kind,
    },
    ScalarBody,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl Kind {
    fn of(value: &Value) -> Self {
        match value {
            Value::Object(_) => Kind::Object,
            Value::Array(_) => Kind::Array,
            Value::String(_) => Kind::String,
            Value::Number(_) => Kind::Number,
            Value::Bool(_) => Kind::Bool,
            Value::Null => Kind::Null,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Null => "null",
        })
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::NotAllowed => f.write_str("not in the allow list"),
            Why::Shape {
                object,
                array,
                found,
            } => {
                let expected = match (object, array) {
                    (true, true) => "an object or an array",
                    (true, false) => "an object",
                    _ => "an array",
                };
                write!(
                    f,
                    "the allow list names fields inside {expected} here, upstream sent {found}"
                )
            }
            Why::ScalarBody => f.write_str("the body is not an object or an array"),
        }
    }
}

/// The root is not a field: it keeps its kind and only its contents are filtered. `buf` is
/// the root's (empty) name, and says how upstream keys are written.
fn walk_root(
    root: &Node,
    body: &Value,
    skip: &Removed,
    rec: &mut impl Recorder,
    mut buf: RuleFormBuf,
) -> Value {
    match body {
        Value::Object(map) => Value::Object(walk_object(root, map, &mut buf, skip, rec)),
        Value::Array(items) => match &root.each {
            Some(each) => Value::Array(walk_array(each, items, &mut buf, skip, rec)),
            None => {
                buf.push_each();
                for item in items.iter().filter(|v| !skip.has(v)) {
                    withhold(item, Why::NotAllowed, &mut buf, skip, rec);
                }
                Value::Array(Vec::new())
            }
        },
        scalar => {
            withhold(scalar, Why::ScalarBody, &mut buf, skip, rec);
            Value::Null
        }
    }
}

/// Filters one value reached through `node`; `None` when it is withheld.
fn walk_value(
    node: &Node,
    value: &Value,
    buf: &mut RuleFormBuf,
    skip: &Removed,
    rec: &mut impl Recorder,
) -> Option<Value> {
    if let Some(grant) = &node.grant {
        rec.disclose(buf.as_str(), grant, is_leaf(value, skip));
        each_inner_path(value, buf, skip, &mut |path, leaf| {
            rec.disclose(path, grant, leaf)
        });
        return Some(skip.copy_without(value));
    }
    match value {
        Value::Object(map) if !node.keys.is_empty() => {
            rec.traverse(buf.as_str());
            Some(Value::Object(walk_object(node, map, buf, skip, rec)))
        }
        Value::Array(items) if node.each.is_some() => {
            rec.traverse(buf.as_str());
            let each = node.each.as_deref()?;
            Some(Value::Array(walk_array(each, items, buf, skip, rec)))
        }
        other => {
            let why = Why::Shape {
                object: !node.keys.is_empty(),
                array: node.each.is_some(),
                found: Kind::of(other),
            };
            withhold(other, why, buf, skip, rec);
            None
        }
    }
}

/// Keeps the keys `node` names, each filtered by its child; every other key is withheld.
fn walk_object(
    node: &Node,
    map: &Map<String, Value>,
    buf: &mut RuleFormBuf,
    skip: &Removed,
    rec: &mut impl Recorder,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in map {
        if skip.has(value) {
            continue;
        }
        match node.keys.get(key) {
            Some(child) => {
                buf.push_key(key);
                if let Some(kept) = walk_value(child, value, buf, skip, rec) {
                    out.insert(key.clone(), kept);
                }
            }
            None => {
                buf.push_upstream_key(key);
                withhold(value, Why::NotAllowed, buf, skip, rec);
            }
        }
        buf.pop();
    }
    out
}

/// Filters every element by the `[]` node; withheld elements are dropped from the array.
fn walk_array(
    each: &Node,
    items: &[Value],
    buf: &mut RuleFormBuf,
    skip: &Removed,
    rec: &mut impl Recorder,
) -> Vec<Value> {
    buf.push_each();
    let kept = items
        .iter()
        .filter(|item| !skip.has(item))
        .filter_map(|item| walk_value(each, item, buf, skip, rec))
        .collect();
    buf.pop();
    kept
}

fn withhold<R: Recorder>(
    value: &Value,
    why: Why,
    buf: &mut RuleFormBuf,
    skip: &Removed,
    rec: &mut R,
) {
    rec.withhold(buf.as_str(), why);
    if R::EVERY_PATH {
        let top = buf.as_str().to_owned();
        each_inner_path(value, buf, skip, &mut |path, _| {
            rec.inside_withheld(path, &top)
        });
    }
}

/// Calls `f` with the rule-form path of every place strictly inside `value` (but not inside
/// `skip`), and whether it is a leaf.
fn each_inner_path(
    value: &Value,
    buf: &mut RuleFormBuf,
    skip: &Removed,
    f: &mut impl FnMut(&str, bool),
) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter().filter(|(_, c)| !skip.has(c)) {
                buf.push_upstream_key(key);
                f(buf.as_str(), is_leaf(child, skip));
                each_inner_path(child, buf, skip, f);
                buf.pop();
            }
        }
        Value::Array(items) => {
            buf.push_each();
            for child in items.iter().filter(|c| !skip.has(c)) {
                f(buf.as_str(), is_leaf(child, skip));
                each_inner_path(child, buf, skip, f);
            }
            buf.pop();
        }
        _ => {}
    }
}

/// A leaf is what the audit lists as a disclosed value: a scalar, or a container with
/// nothing in it (sending `"benefits": []` says something too), once `skip` is taken out.
fn is_leaf(value: &Value, skip: &Removed) -> bool {
    match value {
        Value::Object(map) => map.values().all(|v| skip.has(v)),
        Value::Array(items) => items.iter().all(|v| skip.has(v)),
        _ => true,
    }
}

// === recorders ===

/// The request path's score: two sets, no reasons.
#[derive(Default)]
struct Sets {
    disclosed: PathSet,
    withheld: PathSet,
}

impl Sets {
    fn into_filtered(self, body: Value) -> Filtered {
        Filtered {
            body,
            disclosed: self.disclosed.into_sorted(),
            withheld: self.withheld.into_sorted(),
        }
    }
}

/// Paths met in one walk, sorted once at the end. Hashed while the walk runs: a `BTreeSet`
/// compared each new path with half a dozen others sharing long prefixes
/// (`tenant.caution_markers[].…`), and those comparisons were a fifth of `decide` (callgrind).
/// foldhash is randomly seeded per process, so upstream keys cannot be chosen to collide.
#[derive(Default)]
pub(crate) struct PathSet(HashSet<String, foldhash::fast::RandomState>);

impl PathSet {
    /// Inserts without allocating when the path is already there, as it is for every
    /// element of an array after the first.
    pub(crate) fn insert(&mut self, path: &str) {
        if !self.0.contains(path) {
            self.0.insert(path.to_owned());
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds every path of `other`.
    pub(crate) fn merge(&mut self, other: PathSet) {
        self.0.extend(other.0);
    }

    pub(crate) fn into_sorted(self) -> BTreeSet<String> {
        self.0.into_iter().collect()
    }
}

impl Recorder for Sets {
    const EVERY_PATH: bool = false;

    fn disclose(&mut self, path: &str, _grant: &str, leaf: bool) {
        if leaf {
            self.disclosed.insert(path);
        }
    }

    fn traverse(&mut self, _path: &str) {}

    fn withhold(&mut self, path: &str, _why: Why) {
        self.withheld.insert(path);
    }
}

/// `explain`'s score: the sets, and a decision per path.
#[derive(Default)]
struct Explain {
    sets: Sets,
    fields: BTreeMap<String, Decision>,
}

impl Explain {
    /// Records a decision unless one is there already; a disclosure replaces a withholding,
    /// since the path did reach the recipient in some element.
    fn decide(&mut self, path: &str, disclosed: bool, why: impl FnOnce() -> String) {
        match self.fields.get_mut(path) {
            Some(existing) if disclosed && !existing.disclosed => {
                *existing = Decision {
                    disclosed,
                    why: why(),
                }
            }
            Some(_) => {}
            None => {
                self.fields.insert(
                    path.to_owned(),
                    Decision {
                        disclosed,
                        why: why(),
                    },
                );
            }
        }
    }
}

impl Recorder for Explain {
    const EVERY_PATH: bool = true;

    fn disclose(&mut self, path: &str, grant: &str, leaf: bool) {
        self.sets.disclose(path, grant, leaf);
        self.decide(path, true, || grant.to_owned());
    }

    fn traverse(&mut self, path: &str) {
        self.decide(path, true, || "holds allowed fields".to_owned());
    }

    fn withhold(&mut self, path: &str, why: Why) {
        self.sets.withhold(path, why);
        self.decide(path, false, || why.to_string());
    }

    fn inside_withheld(&mut self, path: &str, top: &str) {
        let top = if top.is_empty() { "the body" } else { top };
        self.decide(path, false, || format!("inside withheld {top}"));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests;
