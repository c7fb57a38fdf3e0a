//! Which parts of `body` and `item` an expression reads, so a request converts only those
//! to CEL values.
//!
//! Converting a whole 2 KB upstream body to CEL maps and lists cost more than everything
//! else `decide` does, while the shipped rules read two fields of it (`body.contractor_id`,
//! `body.status`). [`Reads`] is found from the compiled AST at load: a variable reached only
//! through field selections (`body.tenant.name`, `has(body.x)`) is bound as a map holding
//! just the selected keys; any other use of it (passed to a function, compared whole,
//! indexed, iterated, its `size`) reads it [`Reads::All`] and it is converted whole.
//!
//! The analysis over-approximates and never under-approximates: an identifier of the same
//! name bound by a comprehension (`list.exists(item, item.a)`) adds its selections too, which
//! only converts more than needed. A pruned map differs from the whole one only in keys no
//! selection names, and nothing but a selection can reach it, so every expression evaluates
//! exactly as it would on the whole body.

use std::collections::BTreeMap;

use cel::common::ast::{EntryExpr, Expr as Node};
use cel::IdedExpr;

/// What an expression reads of one variable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Reads {
    /// Not at all.
    #[default]
    Nothing,
    /// As a whole: convert all of it.
    All,
    /// Only these fields, each read as its [`Reads`] says.
    Fields(BTreeMap<String, Reads>),
}

// === impl Reads ===

impl Reads {
    /// Adds every field name read to `known`.
    pub fn name_keys(&self, known: &mut crate::path::KnownKeys) {
        if let Reads::Fields(fields) = self {
            for (key, reads) in fields {
                known.add(key);
                reads.name_keys(known);
            }
        }
    }

    /// Whether what is read reaches the value at `segments` or anything under it: a
    /// selection down to it or past it, or a value above it read whole. An array is read
    /// whole, so a path through `[]` is reached by any read of the array.
    pub fn reaches(&self, segments: &[crate::path::Segment]) -> bool {
        match (self, segments.split_first()) {
            (Reads::Nothing, _) => false,
            (Reads::All, _) | (Reads::Fields(_), None) => true,
            (Reads::Fields(fields), Some((crate::path::Segment::Key(key), rest))) => {
                fields.get(key).is_some_and(|r| r.reaches(rest))
            }
            (Reads::Fields(_), Some((crate::path::Segment::Each, _))) => true,
        }
    }

    /// What `expr` reads of the variable `name`.
    pub fn of(expr: &IdedExpr, name: &str) -> Reads {
        let mut reads = Reads::Nothing;
        walk(expr, name, &mut reads);
        reads
    }

    /// Everything `self` or `other` reads.
    pub fn union(&mut self, other: &Reads) {
        match (&mut *self, other) {
            (_, Reads::Nothing) | (Reads::All, _) => {}
            (Reads::Nothing, _) | (_, Reads::All) => *self = other.clone(),
            (Reads::Fields(mine), Reads::Fields(theirs)) => {
                for (key, r) in theirs {
                    mine.entry(key.clone()).or_default().union(r);
                }
            }
        }
    }

    /// The fields selected by name below the field `key` (`x` of `recipient.attributes.x`
    /// when `key` is `attributes`), outermost first. Empty when `key` is not read, or read
    /// some other way than by selections (`recipient.attributes['x']`, `size(..)`).
    pub fn selected_under(&self, key: &str) -> Vec<&str> {
        match self {
            Reads::Fields(fields) => match fields.get(key) {
                Some(Reads::Fields(below)) => below.keys().map(String::as_str).collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// Whether anything is read.
    pub fn any(&self) -> bool {
        *self != Reads::Nothing
    }

    /// Marks the selection `path` (outermost field first) as read whole.
    pub(crate) fn add(&mut self, path: &[&str]) {
        let Some((first, rest)) = path.split_first() else {
            *self = Reads::All;
            return;
        };
        match self {
            Reads::All => {}
            Reads::Nothing => {
                *self = Reads::Fields(BTreeMap::new());
                self.add(path);
            }
            Reads::Fields(fields) => fields.entry((*first).to_owned()).or_default().add(rest),
        }
    }
}

/// Records in `reads` every use of `name` under `e`.
fn walk(e: &IdedExpr, name: &str, reads: &mut Reads) {
    match &e.expr {
        Node::Unspecified | Node::Literal(_) => {}
        Node::Ident(ident) => {
            if ident == name {
                reads.add(&[]);
            }
        }
        Node::Select(s) => {
            // A chain of selections from the variable: `name.a.b` reads `a.b` only.
            let mut path = vec![s.field.as_str()];
            let mut operand = &s.operand;
            loop {
                match &operand.expr {
                    Node::Select(inner) => {
                        path.push(inner.field.as_str());
                        operand = &inner.operand;
                    }
                    Node::Ident(ident) if ident == name => {
                        path.reverse();
                        reads.add(&path);
                        return;
                    }
                    _ => break,
                }
            }
            walk(operand, name, reads);
        }
        Node::Call(call) => {
            if let Some(target) = &call.target {
                walk(target, name, reads);
            }
            for arg in &call.args {
                walk(arg, name, reads);
            }
        }
        Node::List(list) => {
            for el in &list.elements {
                walk(el, name, reads);
            }
        }
        Node::Map(map) => entries(&map.entries, name, reads),
        Node::Struct(s) => entries(&s.entries, name, reads),
        Node::Comprehension(c) => {
            for part in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                walk(part, name, reads);
            }
        }
    }
}

fn entries(entries: &[cel::common::ast::IdedEntryExpr], name: &str, reads: &mut Reads) {
    for entry in entries {
        match &entry.expr {
            EntryExpr::StructField(f) => walk(&f.value, name, reads),
            EntryExpr::MapEntry(m) => {
                walk(&m.key, name, reads);
                walk(&m.value, name, reads);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn reads(source: &str, name: &str) -> Reads {
        let env = cel::Env::stdlib();
        Reads::of(env.compile(source).unwrap().expression(), name)
    }

    fn fields(entries: &[(&str, Reads)]) -> Reads {
        Reads::Fields(
            entries
                .iter()
                .map(|(k, r)| ((*k).to_owned(), r.clone()))
                .collect(),
        )
    }

    #[test]
    fn selections_read_only_their_fields() {
        let r = reads(
            "body.contractor_id == recipient.id && body.status in ['scheduled']",
            "body",
        );
        assert_eq!(
            r,
            fields(&[("contractor_id", Reads::All), ("status", Reads::All)])
        );
        let r = reads("has(body.a.b) && body.a.c.startsWith('x')", "body");
        assert_eq!(
            r,
            fields(&[("a", fields(&[("b", Reads::All), ("c", Reads::All)]))])
        );
        assert_eq!(reads("item.a", "body"), Reads::Nothing);
    }

    #[test]
    fn any_other_use_reads_the_whole_value() {
        for source in [
            "size(body) > 1",
            "body == {}",
            "body['a'] == 1",
            "body.exists(k, k == 'a')",
            "'a' in body",
            "body.a == 1 || type(body) == map",
            "[body][0].a == 1",
        ] {
            assert_eq!(reads(source, "body"), Reads::All, "{source}");
        }
    }

    #[test]
    fn a_whole_read_absorbs_its_fields() {
        let r = reads("body.a.b == 1 && size(body.a) == 2", "body");
        assert_eq!(r, fields(&[("a", Reads::All)]));
        let mut u = fields(&[("x", Reads::All)]);
        u.union(&Reads::All);
        assert_eq!(u, Reads::All);
    }
}
