//! The streamed element filter: one pass over the bytes of one array element.
//!
//! A streamed export filtered through [`super::decide`] spent most of its time building a
//! `Value` of every element (each key a `String`, each object a `BTreeMap`) and walking it,
//! to send four fields of forty. [`Projector::element`] reads the element's bytes once and
//! in that one pass:
//!
//! - checks them as strictly as [`crate::json::parse_strict`]: JSON grammar as serde_json
//!   reads it, duplicate keys at any depth, the nesting limit, and the numbers
//!   serde_json would change (each token read by the rules of [`crate::json::lex`]);
//! - writes what the allow tree grants, byte for byte as serde_json writes the `Value` that
//!   [`super::decide`] would have sent (keys sorted, strings and numbers as serde_json
//!   writes them);
//! - records the disclosed and withheld paths as the walk in [`super`] names them;
//! - scrubs the strings at the route's scrub paths with [`super::scrub`], as `decide` does;
//! - builds as a `Value` only what the `items` and `derive` rules and the route's `subjects`
//!   read ([`Reads`]), and hands that to [`PerElement`], which evaluates the rules exactly as
//!   `decide` does.
//!
//! It takes only the common shape of an export ([`Projector::new`]): items rules on `[]`,
//! derived fields `[].key`, and an allow tree naming keys of the elements. Any other route,
//! and any element that is not an object, goes through `decide`. The property tests in
//! `tests.rs` hold the two to the same output, paths and refusals.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::BuildHasher;
use std::ops::Range;

use serde_json::{Map, Value};

use super::cel::Reads;
use super::conditions::PerElement;
use super::scrub::Scrubs;
use super::{walk_value, AllowTree, Node, PathSet, Plan, Recorder, Removed, Why};
use crate::json::{lex, Error};
use crate::path::{FieldPath, RuleFormBuf, Segment};

/// Filters the elements of one streamed response; built once per response, reused per
/// element (its scratch buffers keep their capacity).
pub(crate) struct Projector<'a> {
    plan: &'a Plan,
    tree: Cow<'a, AllowTree>,
    /// What the rules and `subjects` read of an element.
    reads: Reads,
    /// The keys the `derive` rules set on each element, without duplicates.
    derived: Vec<&'a str>,
    max_depth: usize,
    /// What the element's own keys are to the walk and the rules, found by one hash lookup:
    /// most of an element's keys are neither allowed nor read, and then no tree is searched.
    top: HashMap<Box<[u8]>, TopKey, foldhash::fast::RandomState>,
    scratch: Scratch,
}

/// What one key of the element is: named by the allow tree, read by a rule, or set by a
/// derived field (so its upstream value is replaced).
#[derive(Debug, Clone, Copy, Default)]
struct TopKey {
    allowed: bool,
    read: bool,
    replaced: bool,
}

/// What became of one element.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict<'p> {
    /// Send these bytes (the filtered element).
    Sent(&'p [u8]),
    /// An `items` rule dropped it.
    Dropped,
    /// Not an object: filter it with `decide` instead (nothing was recorded).
    NotAnObject,
    /// Kept, but no `subjects` path names its data subject: nothing of the response may be
    /// sent from here on, as `decide` refuses a list with such a row.
    Unidentified,
}

/// The paths and subjects one segment of a stream has disclosed so far.
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) disclosed: PathSet,
    pub(crate) withheld: PathSet,
    pub(crate) subjects: BTreeSet<String>,
    /// Scrub paths where something was removed.
    pub(crate) scrubbed: PathSet,
}

impl Seen {
    /// Adds everything `other` saw.
    pub(crate) fn merge(&mut self, other: Seen) {
        self.disclosed.merge(other.disclosed);
        self.withheld.merge(other.withheld);
        self.subjects.extend(other.subjects);
        self.scrubbed.merge(other.scrubbed);
    }
}

/// Buffers reused from element to element.
#[derive(Default)]
struct Scratch {
    /// Filtered output of the current element: each value's bytes, then its parents'.
    arena: Vec<u8>,
    marks: Marks,
    /// Where the walk is, in rule form.
    buf: RuleFormBuf,
    /// One list of keys per nesting level, for duplicate keys and the sorted output.
    levels: Vec<Vec<Entry>>,
    /// Per nesting level, the keys of an object too large to compare one by one.
    large: Vec<HashSet<Vec<u8>, foldhash::fast::RandomState>>,
    /// One list of element outputs per nesting level.
    items: Vec<Vec<Range<usize>>>,
    /// Randomly seeded per response, so that upstream keys cannot be chosen to collide.
    hasher: foldhash::fast::RandomState,
    /// The scrub entries that removed something from the current element.
    scrubbed: BTreeSet<usize>,
}

/// Paths recorded for the current element, kept until the element is known to be sent.
#[derive(Default)]
struct Marks {
    paths: String,
    marks: Vec<(bool, Range<usize>)>,
}

/// Objects with more keys than this check duplicates with a hash set, not a scan.
const LINEAR_KEYS: usize = 64;

/// One key of an object being read, and where its filtered value is in the arena.
struct Entry {
    key: Key,
    /// The key's hash, so that looking for a duplicate compares numbers, not strings.
    hash: u64,
    out: Option<Range<usize>>,
}

/// A key: its bytes in the element when it has no escapes, else unescaped.
enum Key {
    Raw(Range<usize>),
    Owned(String),
}

/// How the walk meets a value.
#[derive(Clone, Copy)]
enum Walk<'t> {
    /// Neither sent nor recorded (withheld above, or replaced by a derived field): checked.
    Skip,
    /// Sent whole: every leaf in it is disclosed.
    Granted,
    /// Sent as structure where its shape matches the node, withheld otherwise.
    Node(&'t Node),
}

fn mode(node: &Node) -> Walk<'_> {
    if node.grant.is_some() {
        Walk::Granted
    } else {
        Walk::Node(node)
    }
}

/// One value read: its filtered bytes (when sent) and its `Value` (when read).
struct Got {
    out: Option<Range<usize>>,
    built: Option<Value>,
}

// === impl Projector ===

impl<'a> Projector<'a> {
    /// A projector for `plan` with the allow tree of this response (`when`s decided), or
    /// `None` when the route's rules take a shape it does not handle.
    pub(crate) fn new(plan: &'a Plan, tree: Cow<'a, AllowTree>, max_depth: usize) -> Option<Self> {
        let c = plan.conditions();
        let each_only = |p: &FieldPath| p.segments() == [Segment::Each];
        fn element_key(p: &FieldPath) -> Option<&str> {
            match p.segments() {
                [Segment::Each, Segment::Key(key)] => Some(key.as_str()),
                _ => None,
            }
        }
        if !c.items().iter().all(|i| each_only(&i.path)) {
            return None;
        }
        let mut derived: Vec<&str> = Vec::new();
        for d in c.derive() {
            let key = element_key(&d.field)?;
            if !derived.contains(&key) {
                derived.push(key);
            }
        }
        let element = tree.root.each.as_deref()?;
        if element.grant.is_some() || element.keys.is_empty() || !tree.root.keys.is_empty() {
            return None;
        }
        let mut reads = Reads::Nothing;
        for i in c.items() {
            reads.union(i.keep.item_reads());
        }
        for d in c.derive() {
            reads.union(d.value.item_reads());
        }
        for s in plan.subjects() {
            let (Segment::Each, rest) = s.segments().split_first()? else {
                return None;
            };
            // Keys down to the next `[]`, read whole from there.
            let keys: Vec<&str> = rest
                .iter()
                .map_while(|s| match s {
                    Segment::Key(k) => Some(k.as_str()),
                    Segment::Each => None,
                })
                .collect();
            reads.add(&keys);
        }
        let mut top: HashMap<Box<[u8]>, TopKey, _> = HashMap::default();
        let mut mark = |key: &str, f: fn(&mut TopKey)| {
            f(top.entry(key.as_bytes().into()).or_default());
        };
        for key in element.keys.keys() {
            mark(key, |t| t.allowed = true);
        }
        if let Reads::Fields(fields) = &reads {
            for key in fields.keys() {
                mark(key, |t| t.read = true);
            }
        }
        for key in &derived {
            mark(key, |t| t.replaced = true);
        }
        Some(Projector {
            plan,
            tree,
            reads,
            derived,
            max_depth,
            top,
            scratch: Scratch {
                buf: c.names(),
                ..Scratch::default()
            },
        })
    }

    /// Filters one element (`bytes`, white space around it allowed), recording into `seen`
    /// and naming failed rules in `errors`.
    ///
    /// # Errors
    ///
    /// What [`crate::json::parse_strict`] would refuse the element for.
    pub(crate) fn element(
        &mut self,
        bytes: &[u8],
        rules: &PerElement<'_>,
        seen: &mut Seen,
        errors: &mut BTreeSet<String>,
    ) -> Result<Verdict<'_>, Error> {
        let Some(element) = self.tree.root.each.as_deref() else {
            return Ok(Verdict::NotAnObject);
        };
        let scratch = &mut self.scratch;
        scratch.arena.clear();
        scratch.scrubbed.clear();
        scratch.marks.paths.clear();
        scratch.marks.marks.clear();
        // Back to the element's own path, also after an element that failed halfway.
        while !scratch.buf.is_root() {
            scratch.buf.pop();
        }
        scratch.buf.push_each();
        let scrubs = self.plan.scrubs();
        let mut pass = Pass {
            bytes,
            at: 0,
            max_depth: self.max_depth,
            top: &self.top,
            scrubs,
            scrubbing: scrubs.named(scratch.buf.as_str()),
            s: scratch,
        };
        pass.skip_ws();
        if pass.peek() != Some(b'{') {
            return Ok(Verdict::NotAnObject);
        }
        let got = pass.object(Walk::Node(element), &self.reads, 1, false)?;
        pass.skip_ws();
        if pass.at != bytes.len() {
            return Err(pass.malformed("trailing characters"));
        }
        let mut item = got.built.unwrap_or_else(|| Value::Object(Map::new()));
        if !rules.keep(&item, errors) {
            // As `decide` names an element an `items` rule took out: by its array alone.
            seen.withheld.insert("[]");
            return Ok(Verdict::Dropped);
        }
        let item_list = Value::Array(vec![item]);
        let ids = super::subjects(self.plan.subjects(), &item_list);
        if ids.is_empty() && !self.plan.subjects_optional() {
            return Ok(Verdict::Unidentified);
        }
        seen.subjects.extend(ids);
        let Value::Array(mut list) = item_list else {
            unreachable!("built as an array above")
        };
        item = list.pop().unwrap_or_default();
        rules.derive(&mut item, errors);

        // The element's entries: the upstream ones, less the derived keys, plus the derived
        // fields walked as `decide` walks them.
        let mut entries = std::mem::take(&mut scratch.levels[1]);
        for key in &self.derived {
            let Some(value) = item.get(*key) else {
                // The derivation failed: the field is gone, and an upstream value there was
                // present and not sent.
                if entries.iter().any(|e| key_str(bytes, &e.key) == *key) {
                    scratch.buf.push_key(key);
                    scratch.marks.mark(false, scratch.buf.as_str());
                    scratch.buf.pop();
                }
                continue;
            };
            scratch.buf.push_key(key);
            let out = match element.keys.get(*key) {
                Some(child) => {
                    let nothing = Removed::default();
                    walk_value(child, value, &mut scratch.buf, &nothing, &mut scratch.marks).map(
                        |mut kept| {
                            if !scrubs.is_empty() {
                                let at = [Segment::Each, Segment::Key((*key).to_owned())];
                                scrubs.apply_at(&at, &mut kept, &mut scratch.scrubbed);
                            }
                            let start = scratch.arena.len();
                            // A `Value` always serialises.
                            let _ = serde_json::to_writer(&mut scratch.arena, &kept);
                            start..scratch.arena.len()
                        },
                    )
                }
                None => {
                    scratch.marks.mark(false, scratch.buf.as_str());
                    None
                }
            };
            scratch.buf.pop();
            entries.push(Entry {
                key: Key::Owned((*key).to_owned()),
                hash: 0,
                out,
            });
        }
        let out = assemble_object(bytes, &mut scratch.arena, &mut entries);
        scratch.levels[1] = entries;
        for (disclosed, range) in &scratch.marks.marks {
            let path = &scratch.marks.paths[range.clone()];
            if *disclosed {
                seen.disclosed.insert(path);
            } else {
                seen.withheld.insert(path);
            }
        }
        for &entry in &scratch.scrubbed {
            seen.scrubbed.insert(scrubs.name(entry));
        }
        Ok(Verdict::Sent(&scratch.arena[out]))
    }
}

/// Writes `{"key":value,...}` of the entries that have output, sorted by key as serde_json's
/// map is, and returns where it is in the arena.
fn assemble_object(bytes: &[u8], arena: &mut Vec<u8>, entries: &mut [Entry]) -> Range<usize> {
    // Byte order is `String`'s order, so serde_json's map order.
    let entries = {
        let kept = partition_sent(entries);
        &mut entries[..kept]
    };
    entries.sort_unstable_by(|a, b| key_bytes(bytes, &a.key).cmp(key_bytes(bytes, &b.key)));
    let start = arena.len();
    arena.push(b'{');
    let mut first = true;
    for entry in entries.iter() {
        let Some(out) = &entry.out else { continue };
        if !first {
            arena.push(b',');
        }
        first = false;
        match &entry.key {
            Key::Raw(range) => {
                arena.push(b'"');
                arena.extend_from_slice(&bytes[range.clone()]);
                arena.push(b'"');
            }
            Key::Owned(key) => {
                // A string always serialises.
                let _ = serde_json::to_writer(&mut *arena, key);
            }
        }
        arena.push(b':');
        arena.extend_from_within(out.clone());
    }
    arena.push(b'}');
    start..arena.len()
}

/// Moves the entries with output to the front; how many there are.
fn partition_sent(entries: &mut [Entry]) -> usize {
    let mut kept = 0;
    for i in 0..entries.len() {
        if entries[i].out.is_some() {
            entries.swap(kept, i);
            kept += 1;
        }
    }
    kept
}

fn key_bytes<'k>(bytes: &'k [u8], key: &'k Key) -> &'k [u8] {
    match key {
        Key::Raw(range) => &bytes[range.clone()],
        Key::Owned(key) => key.as_bytes(),
    }
}

fn key_str<'k>(bytes: &'k [u8], key: &'k Key) -> &'k str {
    match key {
        // Checked as UTF-8 with the whole element; a key range never splits a character.
        Key::Raw(range) => std::str::from_utf8(&bytes[range.clone()]).unwrap_or_default(),
        Key::Owned(key) => key,
    }
}

// === the pass ===

/// Reading one element.
struct Pass<'b, 's> {
    bytes: &'b [u8],
    at: usize,
    max_depth: usize,
    top: &'s HashMap<Box<[u8]>, TopKey, foldhash::fast::RandomState>,
    scrubs: &'s Scrubs,
    /// The scrub entry the value being read is at or inside, if any: its strings are
    /// scrubbed as they are written.
    scrubbing: Option<usize>,
    s: &'s mut Scratch,
}

impl Recorder for Marks {
    const EVERY_PATH: bool = false;

    fn disclose(&mut self, path: &str, _grant: &str, leaf: bool) {
        if leaf {
            self.mark(true, path);
        }
    }

    fn traverse(&mut self, _path: &str) {}

    fn withhold(&mut self, path: &str, _why: Why) {
        self.mark(false, path);
    }
}

impl Marks {
    fn mark(&mut self, disclosed: bool, path: &str) {
        let start = self.paths.len();
        self.paths.push_str(path);
        self.marks.push((disclosed, start..self.paths.len()));
    }
}

impl Scratch {
    /// Records the path the walk is at.
    fn mark_here(&mut self, disclosed: bool) {
        self.marks.mark(disclosed, self.buf.as_str());
    }
}

impl<'s> Pass<'_, 's> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        self.at = lex::skip_ws(self.bytes, self.at);
    }

    fn malformed(&self, what: &str) -> Error {
        lex::malformed(what, self.at)
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), Error> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.malformed(what))
        }
    }

    /// Steps into a container (at its `{` or `[`) that is `depth` deep.
    fn enter(&mut self, depth: usize) -> Result<(), Error> {
        if depth > self.max_depth {
            return Err(Error::TooDeep(self.max_depth));
        }
        self.at += 1;
        Ok(())
    }

    /// Whether the container just entered closes at once with `close`; consumed if so.
    fn closes_empty(&mut self, close: u8) -> bool {
        self.skip_ws();
        let empty = self.peek() == Some(close);
        if empty {
            self.at += 1;
        }
        empty
    }

    /// After a member: `true` at a `,` (another follows), `false` at `close`.
    fn more(&mut self, close: u8) -> Result<bool, Error> {
        self.skip_ws();
        match self.peek() {
            Some(b',') => {
                self.at += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.at += 1;
                Ok(false)
            }
            _ => Err(self.malformed(if close == b'}' {
                "expected ',' or '}'"
            } else {
                "expected ',' or ']'"
            })),
        }
    }

    /// The key list of the object about to be read at `depth`, empty.
    fn fresh_keys(&mut self, depth: usize) {
        while self.s.levels.len() <= depth {
            self.s.levels.push(Vec::new());
        }
        self.s.levels[depth].clear();
    }

    /// One value, at `depth` containers below the element's top.
    fn value(&mut self, walk: Walk<'_>, reads: &Reads, depth: usize) -> Result<Got, Error> {
        if let (Walk::Skip, Reads::Nothing) = (walk, reads) {
            // Most of an element: neither sent nor read, only checked.
            self.skip_value(depth)?;
            return Ok(Got {
                out: None,
                built: None,
            });
        }
        self.skip_ws();
        // Where the walk records, `buf` names where it is: a scrub path there covers it.
        let outer = self.scrubbing;
        if outer.is_none() && !matches!(walk, Walk::Skip) {
            self.scrubbing = self.scrubs.named(self.s.buf.as_str());
        }
        let got = match self.peek() {
            Some(b'{') => self.object(walk, reads, depth + 1, true),
            Some(b'[') => self.array(walk, reads, depth + 1),
            Some(_) => self.scalar(walk, reads),
            None => Err(self.malformed("expected a value")),
        };
        self.scrubbing = outer;
        got
    }

    /// Checks one value that is neither sent nor read, as strictly as [`Pass::value`] does
    /// but with nothing recorded or built.
    fn skip_value(&mut self, depth: usize) -> Result<(), Error> {
        self.skip_ws();
        let (open, close) = match self.peek() {
            Some(b'{') => (true, b'}'),
            Some(b'[') => (false, b']'),
            Some(_) => return self.scalar_token().map(drop),
            None => return Err(self.malformed("expected a value")),
        };
        let depth = depth + 1;
        self.enter(depth)?;
        if open {
            self.fresh_keys(depth);
        }
        if self.closes_empty(close) {
            return Ok(());
        }
        loop {
            if open {
                let (key, hash) = self.key(depth)?;
                self.expect(b':', "expected ':'")?;
                self.s.levels[depth].push(Entry {
                    key,
                    hash,
                    out: None,
                });
            }
            self.skip_value(depth)?;
            if !self.more(close)? {
                return Ok(());
            }
        }
    }

    fn scalar(&mut self, walk: Walk<'_>, reads: &Reads) -> Result<Got, Error> {
        let start = self.at;
        let kind = self.scalar_token()?;
        let token = &self.bytes[start..self.at];
        let built = match reads {
            Reads::Nothing => None,
            _ => Some(scalar_value(token, kind)?),
        };
        let out = match walk {
            Walk::Skip => None,
            Walk::Node(_) => {
                self.s.mark_here(false);
                None
            }
            Walk::Granted => {
                self.s.mark_here(true);
                let at = self.s.arena.len();
                match self.scrubbed(token, kind) {
                    // A string always serialises.
                    Some(clean) => drop(serde_json::to_writer(&mut self.s.arena, &clean)),
                    None => write_scalar(&mut self.s.arena, token, kind)?,
                }
                Some(at..self.s.arena.len())
            }
        };
        Ok(Got { out, built })
    }

    /// The string `token` scrubbed, when the walk is at a scrub path and something was
    /// removed (noted for the audit); `None` to write the token as it came.
    fn scrubbed(&mut self, token: &[u8], kind: Scalar) -> Option<String> {
        let (Some(entry), Scalar::String { .. }) = (self.scrubbing, kind) else {
            return None;
        };
        let Ok(Value::String(text)) = scalar_value(token, kind) else {
            return None;
        };
        let clean = self.scrubs.string(entry, &text)?;
        self.s.scrubbed.insert(entry);
        Some(clean)
    }

    /// Reads a string, number or literal and says which; the token is `bytes[start..at]`.
    fn scalar_token(&mut self) -> Result<Scalar, Error> {
        match self.peek() {
            Some(b'"') => {
                let escaped = self.string()?;
                Ok(Scalar::String { escaped })
            }
            Some(b'-' | b'0'..=b'9') => {
                self.at = lex::number(self.bytes, self.at)?;
                Ok(Scalar::Number)
            }
            _ => match lex::literal(self.bytes, self.at) {
                Some(end) => {
                    self.at = end;
                    Ok(Scalar::Literal)
                }
                None => Err(self.malformed("expected a value")),
            },
        }
    }

    /// Reads a string starting at its quote; `true` when it holds escapes.
    fn string(&mut self) -> Result<bool, Error> {
        let (end, escaped) = lex::string(self.bytes, self.at)?;
        self.at = end;
        Ok(escaped)
    }

    /// Reads a key (at its quote) and checks it against the keys before it in its object.
    fn key(&mut self, depth: usize) -> Result<(Key, u64), Error> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return Err(self.malformed("expected a key"));
        }
        let start = self.at;
        let escaped = self.string()?;
        let key = if escaped {
            Key::Owned(lex::unescape(&self.bytes[start + 1..self.at - 1]))
        } else {
            Key::Raw(start + 1..self.at - 1)
        };
        let bytes = self.bytes;
        let name = key_bytes(bytes, &key);
        let hash = self.s.hasher.hash_one(name);
        let level = &self.s.levels[depth];
        let duplicate = if level.len() < LINEAR_KEYS {
            level
                .iter()
                .any(|e| e.hash == hash && key_bytes(bytes, &e.key) == name)
        } else {
            // A large object: hash its keys, so that one with many keys costs linear time.
            while self.s.large.len() <= depth {
                self.s.large.push(HashSet::default());
            }
            let set = &mut self.s.large[depth];
            if level.len() == LINEAR_KEYS {
                set.clear();
                set.extend(level.iter().map(|e| key_bytes(bytes, &e.key).to_vec()));
            }
            !set.insert(name.to_vec())
        };
        if duplicate {
            return Err(Error::DuplicateKey);
        }
        Ok((key, hash))
    }

    /// An object; `assemble` writes its output (the element's own is written by the caller,
    /// with the derived fields). Its entries are left in `levels[depth]`.
    fn object(
        &mut self,
        walk: Walk<'_>,
        reads: &Reads,
        depth: usize,
        assemble: bool,
    ) -> Result<Got, Error> {
        self.enter(depth)?;
        // How the walk treats the members: traversed by the node's keys, sent whole, or not.
        let (traverse, members) = match walk {
            Walk::Node(node) if !node.keys.is_empty() => (Some(node), Walk::Skip),
            Walk::Node(_) => {
                self.s.mark_here(false);
                (None, Walk::Skip)
            }
            other => (None, other),
        };
        let sent = traverse.is_some() || matches!(members, Walk::Granted);
        let mut built = match reads {
            Reads::Nothing => None,
            _ => Some(Map::new()),
        };
        self.fresh_keys(depth);
        if !self.closes_empty(b'}') {
            let bytes = self.bytes;
            loop {
                let (key, hash) = self.key(depth)?;
                self.expect(b':', "expected ':'")?;
                let name = key_str(bytes, &key);
                // At the element's top, the one lookup says which trees to search.
                let top = (depth == 1).then(|| {
                    self.top
                        .get(key_bytes(bytes, &key))
                        .copied()
                        .unwrap_or_default()
                });
                let child_walk = match (traverse, members) {
                    _ if top.is_some_and(|t| t.replaced) => Walk::Skip,
                    (Some(node), _) => {
                        let child = match top {
                            Some(t) if !t.allowed => None,
                            _ => node.keys.get(name),
                        };
                        match child {
                            Some(child) => mode(child),
                            None => {
                                self.s.buf.push_upstream_key(name);
                                self.s.mark_here(false);
                                self.s.buf.pop();
                                Walk::Skip
                            }
                        }
                    }
                    (None, m) => m,
                };
                let child_reads = match reads {
                    Reads::Fields(_) if top.is_some_and(|t| !t.read) => &Reads::Nothing,
                    Reads::Fields(fields) => fields.get(name).unwrap_or(&Reads::Nothing),
                    other => other,
                };
                let wanted = built.is_some() && child_reads.any();
                let recording = !matches!(child_walk, Walk::Skip);
                if recording {
                    self.s.buf.push_upstream_key(name);
                }
                let got = self.value(child_walk, child_reads, depth)?;
                if recording {
                    self.s.buf.pop();
                }
                if let (Some(map), true, Some(v)) = (built.as_mut(), wanted, got.built) {
                    map.insert(name.to_owned(), v);
                }
                self.s.levels[depth].push(Entry {
                    key,
                    hash,
                    out: got.out,
                });
                if !self.more(b'}')? {
                    break;
                }
            }
        }
        let mut out = None;
        if sent && assemble {
            let mut entries = std::mem::take(&mut self.s.levels[depth]);
            if entries.is_empty() && matches!(members, Walk::Granted) {
                self.s.mark_here(true); // an empty object sent is a leaf
            }
            out = Some(assemble_object(self.bytes, &mut self.s.arena, &mut entries));
            entries.clear();
            self.s.levels[depth] = entries;
        }
        Ok(Got {
            out,
            built: built.map(Value::Object),
        })
    }

    fn array(&mut self, walk: Walk<'_>, reads: &Reads, depth: usize) -> Result<Got, Error> {
        self.enter(depth)?;
        let element_walk = match walk {
            Walk::Node(node) => match node.each.as_deref() {
                Some(each) => Some(mode(each)),
                None => {
                    self.s.mark_here(false);
                    None
                }
            },
            Walk::Granted => Some(Walk::Granted),
            Walk::Skip => None,
        };
        // An array is read whole: a selection cannot reach into it.
        let element_reads = match reads {
            Reads::Nothing => &Reads::Nothing,
            _ => &Reads::All,
        };
        let mut built = element_reads.any().then(Vec::new);
        while self.s.items.len() <= depth {
            self.s.items.push(Vec::new());
        }
        let mut outs = std::mem::take(&mut self.s.items[depth]);
        outs.clear();
        if element_walk.is_some() {
            self.s.buf.push_each();
        }
        if !self.closes_empty(b']') {
            loop {
                let got = self.value(element_walk.unwrap_or(Walk::Skip), element_reads, depth)?;
                if let (Some(list), Some(v)) = (built.as_mut(), got.built) {
                    list.push(v);
                }
                if let Some(out) = got.out {
                    outs.push(out);
                }
                if !self.more(b']')? {
                    break;
                }
            }
        }
        if element_walk.is_some() {
            self.s.buf.pop();
        }
        let out = element_walk.map(|w| {
            if outs.is_empty() && matches!((w, walk), (Walk::Granted, Walk::Granted)) {
                self.s.mark_here(true); // an empty array sent is a leaf
            }
            let arena = &mut self.s.arena;
            let start = arena.len();
            arena.push(b'[');
            for (i, range) in outs.iter().enumerate() {
                if i > 0 {
                    arena.push(b',');
                }
                arena.extend_from_within(range.clone());
            }
            arena.push(b']');
            start..arena.len()
        });
        outs.clear();
        self.s.items[depth] = outs;
        Ok(Got {
            out,
            built: built.map(Value::Array),
        })
    }
}

/// What kind of scalar a token is.
#[derive(Clone, Copy)]
enum Scalar {
    String { escaped: bool },
    Number,
    Literal,
}

/// The token as serde_json would parse it.
fn scalar_value(token: &[u8], kind: Scalar) -> Result<Value, Error> {
    Ok(match kind {
        Scalar::String { escaped: false } => {
            Value::String(String::from_utf8_lossy(&token[1..token.len() - 1]).into_owned())
        }
        Scalar::String { escaped: true } => {
            Value::String(lex::unescape(&token[1..token.len() - 1]))
        }
        Scalar::Literal => match token {
            b"true" => Value::Bool(true),
            b"false" => Value::Bool(false),
            _ => Value::Null,
        },
        Scalar::Number => serde_json::from_slice(token)
            .map_err(|_| Error::Malformed("number out of range".into()))?,
    })
}

/// Writes the token as serde_json writes the `Value` it parses to.
fn write_scalar(arena: &mut Vec<u8>, token: &[u8], kind: Scalar) -> Result<(), Error> {
    match kind {
        // Without escapes a string is written back as it came: serde_json escapes only
        // quotes, backslashes and control characters, none of which can be in it raw.
        Scalar::String { escaped: false } | Scalar::Literal => arena.extend_from_slice(token),
        // A plain integer of up to 19 digits is a u64 that serde_json writes back as is.
        Scalar::Number if token.len() <= 19 && token.iter().all(u8::is_ascii_digit) => {
            arena.extend_from_slice(token);
        }
        _ => {
            let value = scalar_value(token, kind)?;
            // A `Value` always serialises.
            let _ = serde_json::to_writer(&mut *arena, &value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
