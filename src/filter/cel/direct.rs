//! Direct evaluation of the simple conditions most rules are made of, on the upstream JSON as
//! it is, without building CEL values.
//!
//! The CEL interpreter needs every value it reads converted into its own types and a scope
//! built per request, and then walks its AST through trait objects: two thirds of `decide`
//! on the shipped rules, which are all of the form `body.a == recipient.id && body.b in
//! ['x', 'y']` or `item.flag && timestamp(item.date) > now`.
//!
//! [`Direct`] is compiled at load from the same AST, for the subset of CEL below, and answers
//! only when the answer is certain: every operand present and of the one type the operator
//! is defined on. Anything else (a missing key, a number, a type mismatch, an operator
//! outside the subset) is [`None`], and the caller asks the interpreter, which then gives
//! the answer or the error CEL defines. So a condition never decides differently here than
//! in CEL. `filter::eval`, the one caller, holds the two to that: in test and debug builds it
//! asks the interpreter too and panics on a difference; its property tests generate
//! expressions of the subset and JSON, and the fuzz target `eval_direct` arbitrary text.
//!
//! The subset: `null`/`true`/`false`/integer/string literals and lists of string literals;
//! `body`, `item`, `recipient` (with `attributes`), `request` (`method`, `path`, `params`,
//! `headers`) and `now`;
//! field selection; `m['key']` on a map; `&&`, `||`, `!`; `==` and `!=` on two values of the
//! same type (null, bool, int, string, timestamp); `<`, `<=`, `>`, `>=` on two ints or two
//! timestamps; `in` of a string in a list of strings or in a map's keys; `timestamp(string)`;
//! `date(string)` (the one function CEL's calls too, so the same answer and the same errors);
//! `size(string)`; and for a derived field, `age_band`, `postcode_district`, `pseudonym`,
//! `mask` or `normalize` of one of those.

use std::cmp::Ordering;

use cel::common::ast::{operators, Expr as Node, LiteralValue};
use cel::IdedExpr;
use chrono::{DateTime, Datelike, FixedOffset};
use serde_json::{Map, Value};

use super::super::conditions::Request;
use super::super::Removed;
use super::Functions;

/// A condition compiled for direct evaluation.
#[derive(Debug, Clone)]
pub(crate) struct Direct(Op);

/// What an evaluation can read: the request, and `body` and `item` each with what the item
/// filters have taken out of it (removed values are invisible, as they are to CEL).
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a> {
    pub(crate) request: &'a Request<'a>,
    pub(crate) body: Option<&'a Value>,
    /// What `body` is read without: the rows the item filters dropped before this rule.
    pub(crate) body_removed: &'a Removed,
    pub(crate) item: Option<&'a Value>,
    pub(crate) item_removed: &'a Removed,
    pub(crate) now: DateTime<FixedOffset>,
}

#[derive(Debug, Clone)]
enum Op {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Strings(Vec<String>),
    Var(Var),
    Select(Box<Op>, String),
    Index(Box<Op>, String),
    And(Box<Op>, Box<Op>),
    Or(Box<Op>, Box<Op>),
    Not(Box<Op>),
    Compare(Compare, Box<Op>, Box<Op>),
    In(Box<Op>, Box<Op>),
    Timestamp(Box<Op>),
    /// `date(s)`: only the one-argument form.
    Date(Box<Op>),
    Size(Box<Op>),
    /// One of our functions on a string, giving a string (`age_band`, `postcode_district`,
    /// `pseudonym`, `mask`, `normalize`): see [`Functions::call_direct`].
    Ours(String, Box<Op>),
}

#[derive(Debug, Clone, Copy)]
enum Var {
    Body,
    Item,
    Recipient,
    Request,
    Now,
}

#[derive(Debug, Clone, Copy)]
enum Compare {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A value met during evaluation, borrowed from the inputs where it can be.
#[derive(Debug, Clone)]
enum V<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(&'a str),
    Time(DateTime<FixedOffset>),
    /// A JSON object or array, read as if the values in the set were not there.
    Json(&'a Value, &'a Removed),
    Strings(&'a [String]),
    Recipient,
    /// `recipient.attributes`.
    Attributes,
    Request,
    Params,
    Headers,
}

// === compiling ===

impl Direct {
    /// The condition in the subset, or `None` when any part of it is outside.
    pub fn compile(expr: &IdedExpr) -> Option<Direct> {
        compile(expr).map(Direct)
    }

    /// The condition's value when it is certainly a bool; `None`: ask the interpreter.
    pub fn eval_bool(&self, inputs: &Inputs<'_>) -> Option<bool> {
        match eval(&self.0, inputs)? {
            V::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// A derived value: only one of our functions on a string (or `pseudonym` on an
    /// integer, which CEL passes as its digits), as JSON; `None`: ask the interpreter.
    pub fn eval_value(&self, inputs: &Inputs<'_>, functions: &Functions) -> Option<Value> {
        let Op::Ours(name, arg) = &self.0 else {
            return None;
        };
        let digits;
        let text = match eval(arg, inputs)? {
            V::Str(s) => s,
            V::Int(i) if name == "pseudonym" => {
                digits = i.to_string();
                &digits
            }
            _ => return None,
        };
        functions
            .call_direct(name, text, inputs.now)
            .map(Value::String)
    }
}

fn compile(e: &IdedExpr) -> Option<Op> {
    Some(match &e.expr {
        Node::Literal(LiteralValue::Null) => Op::Null,
        Node::Literal(LiteralValue::Boolean(b)) => Op::Bool(*b.inner()),
        Node::Literal(LiteralValue::Int(i)) => Op::Int(*i.inner()),
        Node::Literal(LiteralValue::String(s)) => Op::Str(s.inner().to_owned()),
        Node::List(list) if list.optional_indices.is_empty() => Op::Strings(
            list.elements
                .iter()
                .map(|el| match &el.expr {
                    Node::Literal(LiteralValue::String(s)) => Some(s.inner().to_owned()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?,
        ),
        Node::Ident(name) => Op::Var(match name.as_str() {
            "body" => Var::Body,
            "item" => Var::Item,
            "recipient" => Var::Recipient,
            "request" => Var::Request,
            "now" => Var::Now,
            _ => return None,
        }),
        // `test` is `has(...)`: outside the subset.
        Node::Select(s) if !s.test => Op::Select(Box::new(compile(&s.operand)?), s.field.clone()),
        Node::Call(call) if call.target.is_none() => {
            let arg = |i: usize| call.args.get(i).and_then(compile).map(Box::new);
            let two = call.args.len() == 2;
            match call.func_name.as_str() {
                operators::LOGICAL_AND if two => Op::And(arg(0)?, arg(1)?),
                operators::LOGICAL_OR if two => Op::Or(arg(0)?, arg(1)?),
                operators::LOGICAL_NOT if call.args.len() == 1 => Op::Not(arg(0)?),
                operators::IN if two => Op::In(arg(0)?, arg(1)?),
                operators::INDEX if two => match &call.args[1].expr {
                    Node::Literal(LiteralValue::String(key)) => {
                        Op::Index(arg(0)?, key.inner().to_owned())
                    }
                    _ => return None,
                },
                "timestamp" if call.args.len() == 1 => Op::Timestamp(arg(0)?),
                "date" if call.args.len() == 1 => Op::Date(arg(0)?),
                "size" if call.args.len() == 1 => Op::Size(arg(0)?),
                name if call.args.len() == 1 && super::FUNCTIONS.contains(&name) => {
                    Op::Ours(name.to_owned(), arg(0)?)
                }
                name if two => {
                    let compare = match name {
                        operators::EQUALS => Compare::Eq,
                        operators::NOT_EQUALS => Compare::Ne,
                        operators::LESS => Compare::Lt,
                        operators::LESS_EQUALS => Compare::Le,
                        operators::GREATER => Compare::Gt,
                        operators::GREATER_EQUALS => Compare::Ge,
                        _ => return None,
                    };
                    Op::Compare(compare, arg(0)?, arg(1)?)
                }
                _ => return None,
            }
        }
        _ => return None,
    })
}

// === evaluating ===

fn eval<'a>(op: &'a Op, inputs: &Inputs<'a>) -> Option<V<'a>> {
    Some(match op {
        Op::Null => V::Null,
        Op::Bool(b) => V::Bool(*b),
        Op::Int(i) => V::Int(*i),
        Op::Str(s) => V::Str(s),
        Op::Strings(list) => V::Strings(list),
        Op::Var(Var::Body) => json(inputs.body?, inputs.body_removed)?,
        Op::Var(Var::Item) => json(inputs.item?, inputs.item_removed)?,
        Op::Var(Var::Recipient) => V::Recipient,
        Op::Var(Var::Request) => V::Request,
        Op::Var(Var::Now) => V::Time(inputs.now),
        Op::Select(operand, field) | Op::Index(operand, field) => {
            member(eval(operand, inputs)?, field, inputs)?
        }
        // CEL's `&&` and `||` are commutative over errors (`error && false` is false); only
        // the certain cases are answered here, the rest go to CEL.
        Op::And(a, b) => match eval(a, inputs)? {
            V::Bool(false) => V::Bool(false),
            V::Bool(true) => V::Bool(as_bool(eval(b, inputs)?)?),
            _ => return None,
        },
        Op::Or(a, b) => match eval(a, inputs)? {
            V::Bool(true) => V::Bool(true),
            V::Bool(false) => V::Bool(as_bool(eval(b, inputs)?)?),
            _ => return None,
        },
        Op::Not(a) => V::Bool(!as_bool(eval(a, inputs)?)?),
        Op::Compare(how, a, b) => V::Bool(compare(*how, &eval(a, inputs)?, &eval(b, inputs)?)?),
        Op::In(needle, haystack) => {
            let V::Str(needle) = eval(needle, inputs)? else {
                return None;
            };
            V::Bool(contains(&eval(haystack, inputs)?, needle, inputs)?)
        }
        Op::Timestamp(text) => {
            let V::Str(text) = eval(text, inputs)? else {
                return None;
            };
            let t = DateTime::parse_from_rfc3339(text).ok()?;
            // CEL refuses timestamps outside years 1 to 9999; leave the edges to it.
            if !(2..=9998).contains(&t.year()) {
                return None;
            }
            V::Time(t)
        }
        Op::Date(text) => {
            let V::Str(text) = eval(text, inputs)? else {
                return None;
            };
            V::Time(super::date(text).ok()?)
        }
        // Only as a derived value's outermost call (`Direct::eval_value`).
        Op::Ours(..) => return None,
        // Of a string only: CEL counts its code points.
        Op::Size(text) => {
            let V::Str(text) = eval(text, inputs)? else {
                return None;
            };
            V::Int(i64::try_from(text.chars().count()).ok()?)
        }
    })
}

fn as_bool(v: V<'_>) -> Option<bool> {
    match v {
        V::Bool(b) => Some(b),
        _ => None,
    }
}

/// A JSON value as met: numbers other than `i64` are left to CEL (it has three number types).
fn json<'a>(value: &'a Value, removed: &'a Removed) -> Option<V<'a>> {
    Some(match value {
        Value::Null => V::Null,
        Value::Bool(b) => V::Bool(*b),
        Value::Number(n) => V::Int(n.as_i64()?),
        Value::String(s) => V::Str(s),
        Value::Array(_) | Value::Object(_) => V::Json(value, removed),
    })
}

/// `field` of `v`, as selection or as `v['field']`; a missing one is CEL's error, so `None`.
fn member<'a>(v: V<'a>, field: &str, inputs: &Inputs<'a>) -> Option<V<'a>> {
    let request = inputs.request;
    Some(match v {
        V::Json(Value::Object(map), removed) => json(child(map, field, removed)?, removed)?,
        V::Recipient => match field {
            "id" => V::Str(request.caller.id),
            "type" => V::Str(request.caller.kind),
            "name" => V::Str(request.caller.name),
            "attributes" => V::Attributes,
            _ => return None,
        },
        V::Request => match field {
            "method" => V::Str(request.method),
            "path" => V::Str(request.path),
            "params" => V::Params,
            "headers" => V::Headers,
            _ => return None,
        },
        // A missing attribute is CEL's error: the interpreter gives it.
        V::Attributes => V::Str(request.caller.attributes.get(field)?),
        V::Params => V::Str(request.params.get(field)?),
        V::Headers => V::Str(header(request, field)?),
        _ => return None,
    })
}

/// A key of a JSON object, as CEL sees it: a value an item filter removed is not there.
fn child<'a>(map: &'a Map<String, Value>, key: &str, removed: &Removed) -> Option<&'a Value> {
    map.get(key).filter(|v| !removed.has(v))
}

/// The header as CEL's map of them holds it: the last of a repeated name.
fn header<'a>(request: &'a Request<'a>, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .rev()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

fn compare(how: Compare, a: &V<'_>, b: &V<'_>) -> Option<bool> {
    let order = match (a, b) {
        (V::Int(x), V::Int(y)) => x.cmp(y),
        (V::Time(x), V::Time(y)) => x.cmp(y),
        (V::Str(x), V::Str(y)) if matches!(how, Compare::Eq | Compare::Ne) => x.cmp(y),
        (V::Bool(x), V::Bool(y)) if matches!(how, Compare::Eq | Compare::Ne) => x.cmp(y),
        (V::Null, V::Null) if matches!(how, Compare::Eq | Compare::Ne) => Ordering::Equal,
        _ => return None,
    };
    Some(match how {
        Compare::Eq => order == Ordering::Equal,
        Compare::Ne => order != Ordering::Equal,
        Compare::Lt => order == Ordering::Less,
        Compare::Le => order != Ordering::Greater,
        Compare::Gt => order == Ordering::Greater,
        Compare::Ge => order != Ordering::Less,
    })
}

/// `needle in haystack`: in a list, only when every element is a string (CEL compares
/// across types by its own rules); in a map, among its keys.
fn contains(haystack: &V<'_>, needle: &str, inputs: &Inputs<'_>) -> Option<bool> {
    match haystack {
        V::Strings(list) => Some(list.iter().any(|s| s == needle)),
        V::Json(Value::Array(items), removed) => {
            let mut found = false;
            for item in items {
                if removed.has(item) {
                    continue;
                }
                let Value::String(s) = item else { return None };
                found |= s == needle;
            }
            Some(found)
        }
        V::Json(Value::Object(map), removed) => Some(child(map, needle, removed).is_some()),
        V::Params => Some(inputs.request.params.contains_key(needle)),
        V::Attributes => Some(inputs.request.caller.attributes.contains_key(needle)),
        V::Headers => Some(header(inputs.request, needle).is_some()),
        _ => None,
    }
}
