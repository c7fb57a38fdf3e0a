//! CEL for the rules: compiling expressions at load, the functions beyond standard CEL, and
//! the conversions between upstream JSON and CEL values.
//!
//! Every expression is compiled once, when the rules load, and checked there: a syntax error,
//! a variable other than those [`VARIABLES`] names, or a function neither standard CEL nor
//! ours is a load error, so `check` reports it and `serve` never starts with it. At request
//! time a program only runs against a scope built from the request.
//!
//! Evaluation errors carry values (`ExecutionError` embeds what it could not compare), so
//! they never reach a log line or the audit: [`describe`] reduces one to a value-free phrase.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use cel::common::ast::{EntryExpr, Expr as Node};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelTimestamp,
    CelUInt,
};
pub use cel::common::value::Val;
use cel::objects::Key;
use cel::{Context, Env, ExecutionError, FunctionContext, Program, Value as CelValue};

/// A CEL scope: the shared root of a route, or a request's child of it.
pub use ::cel::Context as Scope;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

mod direct;
mod reads;
pub(crate) use direct::{Direct, Inputs};
pub use reads::Reads;

use super::Removed;

/// The variables an expression may name (listed for rule writers in `docs/rules.md`).
pub const VARIABLES: &[&str] = &["body", "item", "recipient", "request", "now"];

/// The functions beyond standard CEL.
pub const FUNCTIONS: &[&str] = &["age_band", "postcode_district", "pseudonym", "mask"];

/// The request headers a condition may read, by lower-case name. A fixed, short list: a
/// condition must never see credentials (`authorization`) or anything the recipient did not
/// send on purpose for the policy.
pub const HEADERS: &[&str] = &["x-disclosure-reference"];

/// The shortest pseudonym key accepted, in bytes: HMAC-SHA256 is as strong as its key.
pub const MIN_KEY_BYTES: usize = 32;

/// Hex digits of a pseudonym: 128 bits, plenty to tell tenants apart, short to read.
const PSEUDONYM_HEX: usize = 32;

/// A compiled expression and what it refers to.
pub struct Expr {
    program: Program,
    source: String,
    uses: Uses,
    /// What it reads of `body` and of `item`: a request converts only that.
    body_reads: Reads,
    item_reads: Reads,
    /// The same condition for [`Direct`] evaluation, when it is in that subset.
    direct: Option<Direct>,
}

/// Which variables and functions an expression refers to, so a request builds only what is
/// read (the body is converted only for a route whose rules read `body`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uses {
    pub body: bool,
    pub item: bool,
    pub recipient: bool,
    pub request: bool,
    pub pseudonym: bool,
}

/// Why an expression does not compile, each with the line within the expression (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub line: usize,
    pub message: String,
}

/// The secret `pseudonym()` is keyed with; read from the environment at load, never logged.
#[derive(Clone)]
pub struct PseudonymKey(Arc<Vec<u8>>);

/// The root CEL context of one route: the environment and our functions, shared by every
/// request on it. Requests add their variables in a child scope.
pub struct Functions {
    root: Context<'static, 'static>,
    /// `pseudonym()`'s key for this type, for [`Direct`] evaluation (the CEL function holds
    /// its own copy).
    mac: Option<Hmac<Sha256>>,
}

/// Why an evaluation failed, without the values involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError(pub String);

// === compiling ===

impl Uses {
    pub fn union(self, other: Uses) -> Uses {
        Uses {
            body: self.body || other.body,
            item: self.item || other.item,
            recipient: self.recipient || other.recipient,
            request: self.request || other.request,
            pseudonym: self.pseudonym || other.pseudonym,
        }
    }
}

/// The standard environment, built once per process: expressions compile and run against it.
fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(Env::stdlib()))
}

/// Standard CEL type names, which an expression may name as identifiers (`type(x) == int`).
const TYPE_NAMES: &[&str] = &[
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
    "timestamp",
    "duration",
];

impl Expr {
    /// Compiles `source`; `item` says whether `item` is bound where it runs (inside `[]`).
    ///
    /// # Errors
    ///
    /// Every problem found: a syntax error, or each unknown variable or function.
    pub fn compile(source: &str, item: bool) -> Result<Expr, Vec<CompileError>> {
        let program = env().compile(source).map_err(|e| {
            e.errors
                .iter()
                .map(|e| CompileError {
                    line: usize::try_from(e.pos.0).unwrap_or(1).max(1),
                    message: format!(
                        "CEL syntax error at column {}: {}",
                        e.pos.1,
                        e.msg.trim_start_matches("Syntax error: ")
                    ),
                })
                .collect::<Vec<_>>()
        })?;
        let mut refs = Refs::default();
        refs.walk(program.expression(), &mut Vec::new());
        let mut errors = Vec::new();
        let mut uses = Uses::default();
        for name in &refs.variables {
            match name.as_str() {
                "body" => uses.body = true,
                "item" if item => uses.item = true,
                "item" => errors.push(CompileError {
                    line: 1,
                    message: "`item` is bound only inside an array (a path with `[]`)".into(),
                }),
                "recipient" => uses.recipient = true,
                "request" => uses.request = true,
                "now" => {}
                n if TYPE_NAMES.contains(&n) => {}
                other => errors.push(CompileError {
                    line: 1,
                    message: format!(
                        "unknown variable {other:?}: the variables are {}",
                        VARIABLES.join(", ")
                    ),
                }),
            }
        }
        for name in &refs.functions {
            if is_operator(name) {
                continue;
            }
            if FUNCTIONS.contains(&name.as_str()) {
                uses.pseudonym |= name == "pseudonym";
                continue;
            }
            if !is_standard_function(name) {
                errors.push(CompileError {
                    line: 1,
                    message: format!(
                        "unknown function {name:?}: standard CEL and {} are available",
                        FUNCTIONS.join(", ")
                    ),
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let body_reads = Reads::of(program.expression(), "body");
        let item_reads = Reads::of(program.expression(), "item");
        let direct = Direct::compile(program.expression());
        Ok(Expr {
            program,
            source: source.to_owned(),
            uses,
            body_reads,
            item_reads,
            direct,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn uses(&self) -> Uses {
        self.uses
    }

    /// What the expression reads of `body`.
    pub fn body_reads(&self) -> &Reads {
        &self.body_reads
    }

    /// What the expression reads of `item`.
    pub fn item_reads(&self) -> &Reads {
        &self.item_reads
    }

    /// What the expression reads of the variable `name`, found from the AST on each call:
    /// for the loader's checks, not for requests.
    pub fn reads(&self, name: &str) -> Reads {
        Reads::of(self.program.expression(), name)
    }

    /// Whether [`Expr::eval_bool_direct`] can answer for this expression at all.
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// The condition's value without the interpreter, when [`Direct`] is certain of it;
    /// `None`: run [`Expr::eval_bool`], which gives CEL's answer or error.
    pub(crate) fn eval_bool_direct(&self, inputs: &Inputs<'_>) -> Option<bool> {
        self.direct.as_ref()?.eval_bool(inputs)
    }

    /// The expression's value without the interpreter, when [`Direct`] is certain of it:
    /// for a derived field, one of our functions on a string. `None`: run [`Expr::eval`].
    pub(crate) fn eval_direct(&self, inputs: &Inputs<'_>, functions: &Functions) -> Option<Value> {
        self.direct.as_ref()?.eval_value(inputs, functions)
    }

    /// Runs the program in `scope`.
    ///
    /// # Errors
    ///
    /// Whatever stopped the evaluation, described without values.
    pub fn eval(&self, scope: &Context<'_, '_>) -> Result<CelValue, EvalError> {
        self.program.execute(scope).map_err(|e| describe(&e))
    }

    /// Runs the program and requires a boolean: anything else is an error, never a grant.
    ///
    /// # Errors
    ///
    /// An evaluation error, or a result that is not a bool.
    pub fn eval_bool(&self, scope: &Context<'_, '_>) -> Result<bool, EvalError> {
        match self.eval(scope)? {
            CelValue::Bool(b) => Ok(b),
            other => Err(EvalError(format!(
                "the condition gave {}, not a bool",
                other.type_of()
            ))),
        }
    }
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expr").field(&self.source).finish()
    }
}

/// Operators and macro internals (`_==_`, `!_`, `@in`, `@not_strictly_false`): never
/// spellable as a function call, so not the author's to get wrong.
fn is_operator(name: &str) -> bool {
    name.starts_with('@')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// Whether the standard environment declares `name`, globally or as a member function.
///
/// `cel` offers no lookup by name, but refuses to add a context function that an
/// environment overload already names: that refusal is the lookup.
fn is_standard_function(name: &str) -> bool {
    let mut probe = Context::with_env(Arc::clone(env()));
    probe.add_function(name, |x: i64| x).is_err()
}

/// Variables and functions referred to, with comprehension variables (`x` in
/// `list.exists(x, ...)`) in scope only where they are bound.
#[derive(Default)]
struct Refs {
    variables: std::collections::BTreeSet<String>,
    functions: std::collections::BTreeSet<String>,
}

impl Refs {
    fn walk(&mut self, e: &cel::IdedExpr, bound: &mut Vec<String>) {
        match &e.expr {
            Node::Unspecified | Node::Literal(_) => {}
            Node::Ident(name) => {
                if !name.starts_with('@') && !bound.contains(name) {
                    self.variables.insert(name.clone());
                }
            }
            Node::Select(s) => self.walk(&s.operand, bound),
            Node::Call(call) => {
                self.functions.insert(call.func_name.clone());
                if let Some(target) = &call.target {
                    self.walk(target, bound);
                }
                for arg in &call.args {
                    self.walk(arg, bound);
                }
            }
            Node::List(list) => {
                for el in &list.elements {
                    self.walk(el, bound);
                }
            }
            Node::Map(map) => self.entries(&map.entries, bound),
            Node::Struct(s) => self.entries(&s.entries, bound),
            Node::Comprehension(c) => {
                self.walk(&c.iter_range, bound);
                self.walk(&c.accu_init, bound);
                let depth = bound.len();
                bound.push(c.iter_var.clone());
                if let Some(v) = &c.iter_var2 {
                    bound.push(v.clone());
                }
                bound.push(c.accu_var.clone());
                self.walk(&c.loop_cond, bound);
                self.walk(&c.loop_step, bound);
                self.walk(&c.result, bound);
                bound.truncate(depth);
            }
        }
    }

    fn entries(&mut self, entries: &[cel::common::ast::IdedEntryExpr], bound: &mut Vec<String>) {
        for entry in entries {
            match &entry.expr {
                EntryExpr::StructField(f) => self.walk(&f.value, bound),
                EntryExpr::MapEntry(m) => {
                    self.walk(&m.key, bound);
                    self.walk(&m.value, bound);
                }
            }
        }
    }
}

/// A value-free description of an evaluation error: field and function names and types are
/// fine to print, the values compared are not.
pub fn describe(e: &ExecutionError) -> EvalError {
    EvalError(match e {
        ExecutionError::NoSuchKey(key) => format!("no field {key:?}"),
        ExecutionError::UndeclaredReference(name) => format!("{name:?} is not defined"),
        ExecutionError::NoSuchOverload(o) => o.to_string(),
        ExecutionError::FunctionError { function, .. } => format!("{function}() failed"),
        ExecutionError::UnexpectedType { want, .. } => format!("a value is not {want}"),
        ExecutionError::InvalidArgumentCount { expected, actual } => {
            format!("expected {expected} argument(s), got {actual}")
        }
        ExecutionError::DivisionByZero(_) | ExecutionError::RemainderByZero(_) => {
            "division by zero".into()
        }
        ExecutionError::IndexOutOfBounds(_) => "index out of bounds".into(),
        ExecutionError::ValuesNotComparable(..) => "values of different types compared".into(),
        _ => "evaluation error".into(),
    })
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// === impl PseudonymKey ===

impl PseudonymKey {
    /// # Errors
    ///
    /// When the key is shorter than [`MIN_KEY_BYTES`].
    pub fn new(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the pseudonym key must be at least {MIN_KEY_BYTES} bytes"
            ));
        }
        Ok(PseudonymKey(Arc::new(bytes)))
    }

    /// The HMAC state for one recipient type: the key is first mixed with the type, so two
    /// types given the same tenant id get unrelated pseudonyms and cannot join on them.
    fn for_type(&self, kind: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        mac.update(b"need-to-know pseudonym v1\0");
        mac.update(kind.as_bytes());
        let type_key = mac.finalize().into_bytes();
        <Hmac<Sha256> as KeyInit>::new_from_slice(&type_key)
            .expect("HMAC takes a key of any length")
    }
}

/// Hand-written: the key must never reach a log line.
impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PseudonymKey(..)")
    }
}

// === impl Functions ===

impl Functions {
    /// The functions for routes of recipient type `kind`; without a key `pseudonym()` fails
    /// (the loader refuses rules that use it without one, so that is only a backstop).
    pub fn new(kind: &str, key: Option<&PseudonymKey>) -> Functions {
        let mut root = Context::with_env(Arc::clone(env()));
        let mac = key.map(|k| k.for_type(kind));
        let direct_mac = mac.clone();
        // None of our names is a standard overload, so adding cannot fail; if it ever did,
        // the call would be undefined and every use would fail closed.
        let _ = root.add_function("age_band", age_band_fn);
        let _ = root.add_function("postcode_district", |v: CelValue| {
            let text = string_arg("postcode_district", &v)?;
            postcode_district(text).map(CelValue::from).ok_or_else(|| {
                ExecutionError::function_error("postcode_district", "not a UK postcode")
            })
        });
        let _ = root.add_function("mask", |v: CelValue| {
            let text = string_arg("mask", &v)?;
            Ok::<_, ExecutionError>(CelValue::from(mask(text)))
        });
        let _ = root.add_function("pseudonym", move |v: CelValue| {
            let Some(mac) = &mac else {
                return Err(ExecutionError::function_error("pseudonym", "no key"));
            };
            let text = match &v {
                CelValue::String(s) => s.as_str().to_owned(),
                CelValue::Int(i) => i.to_string(),
                CelValue::UInt(u) => u.to_string(),
                _ => {
                    return Err(ExecutionError::function_error(
                        "pseudonym",
                        "takes a string or an integer",
                    ))
                }
            };
            Ok(CelValue::from(pseudonym(mac, &text)))
        });
        Functions {
            root,
            mac: direct_mac,
        }
    }

    /// `name(text)` for our functions, as the CEL versions compute it on a string (and
    /// `pseudonym` on an integer's digits); `None` where CEL's would fail, so the caller
    /// asks CEL and gets its error.
    pub(crate) fn call_direct(
        &self,
        name: &str,
        text: &str,
        now: chrono::DateTime<chrono::FixedOffset>,
    ) -> Option<String> {
        match name {
            "age_band" => age_band(parse_date(text)?, now.date_naive()).map(str::to_owned),
            "postcode_district" => postcode_district(text),
            "mask" => Some(mask(text)),
            "pseudonym" => Some(pseudonym(self.mac.as_ref()?, text)),
            _ => None,
        }
    }

    /// The shared root scope; requests add their variables in a child of it.
    pub fn root(&self) -> &Context<'static, 'static> {
        &self.root
    }
}

impl fmt::Debug for Functions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Functions(..)")
    }
}

fn string_arg<'a>(function: &str, v: &'a CelValue) -> Result<&'a str, ExecutionError> {
    match v {
        CelValue::String(s) => Ok(s.as_str()),
        _ => Err(ExecutionError::function_error(function, "takes a string")),
    }
}

fn age_band_fn(ftx: &FunctionContext, v: CelValue) -> Result<CelValue, ExecutionError> {
    let text = string_arg("age_band", &v)?;
    let now = ftx
        .ptx
        .get_variable("now")
        .and_then(|n| {
            n.downcast_ref::<CelTimestamp>()
                .map(|t| t.inner().date_naive())
        })
        .ok_or_else(|| ExecutionError::function_error("age_band", "now is not set"))?;
    let born = parse_date(text)
        .ok_or_else(|| ExecutionError::function_error("age_band", "not a YYYY-MM-DD date"))?;
    age_band(born, now)
        .map(CelValue::from)
        .ok_or_else(|| ExecutionError::function_error("age_band", "date of birth in the future"))
}

/// A strict `YYYY-MM-DD`: chrono alone would also take `2025-1-5`.
fn parse_date(text: &str) -> Option<chrono::NaiveDate> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    // Digits only, by the shape: read them directly (chrono's parser compiles its format
    // string on every call, which was most of a streamed element's `age_band`).
    let number = |range: std::ops::Range<usize>| {
        b[range]
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
    };
    let year = i32::try_from(number(0..4)).ok()?;
    chrono::NaiveDate::from_ymd_opt(year, number(5..7), number(8..10))
}

/// The band of the age reached on `today` by someone born on `born`.
///
/// Age counts whole years: a birthday is reached on its date, and someone born on 29
/// February reaches it on 1 March in a common year (as UK law counts it).
pub fn age_band(born: chrono::NaiveDate, today: chrono::NaiveDate) -> Option<&'static str> {
    use chrono::Datelike;
    let mut age = today.year() - born.year();
    if (today.month(), today.day()) < (born.month(), born.day()) {
        age -= 1;
    }
    Some(match age {
        a if a < 0 => return None,
        0..=17 => "under 18",
        18..=24 => "18-24",
        25..=34 => "25-34",
        35..=44 => "35-44",
        45..=54 => "45-54",
        55..=64 => "55-64",
        _ => "65+",
    })
}

/// The outward code of a UK postcode (`LN2` from `ln2 1ab`), or `None` when `text` is not
/// shaped like one: outward `A9`, `A99`, `AA9`, `AA99`, `A9A` or `AA9A`, inward `9AA`.
pub fn postcode_district(text: &str) -> Option<String> {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if !compact.is_ascii() || !(5..=7).contains(&compact.len()) {
        return None;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    let i = inward.as_bytes();
    if !(i[0].is_ascii_digit() && i[1].is_ascii_alphabetic() && i[2].is_ascii_alphabetic()) {
        return None;
    }
    let shape: String = outward
        .bytes()
        .map(|b| {
            if b.is_ascii_digit() {
                '9'
            } else if b.is_ascii_alphabetic() {
                'A'
            } else {
                '?'
            }
        })
        .collect();
    matches!(
        shape.as_str(),
        "A9" | "A99" | "AA9" | "AA99" | "A9A" | "AA9A"
    )
    .then(|| outward.to_owned())
}

/// Every character but the last three replaced by `*`; a value of three characters or fewer
/// is masked whole, since its last three would be all of it.
pub fn mask(text: &str) -> String {
    let n = text.chars().count();
    if n <= 3 {
        return "*".repeat(n);
    }
    text.chars()
        .enumerate()
        .map(|(i, c)| if i + 3 < n { '*' } else { c })
        .collect()
}

fn pseudonym(mac: &Hmac<Sha256>, text: &str) -> String {
    let mut mac = mac.clone();
    mac.update(text.as_bytes());
    let digest = mac.finalize().into_bytes();
    // Only the bytes the pseudonym keeps are encoded (two hex digits each).
    const _: () = assert!(PSEUDONYM_HEX % 2 == 0);
    hex::encode(&digest[..PSEUDONYM_HEX / 2])
}

// === conversions ===

/// The upstream JSON as a CEL value, borrowing its strings.
pub fn to_val<'v>(json: &'v Value) -> Box<dyn Val + 'v> {
    match json {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                Box::new(CelUInt::from(u))
            } else {
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Value::String(s) => Box::new(CelString::from(s.as_str())),
        Value::Array(items) => {
            Box::new(CelList::from(items.iter().map(to_val).collect::<Vec<_>>()))
        }
        Value::Object(map) => Box::new(CelMap::from(
            map.iter()
                .map(|(k, v)| (CelMapKey::from(k.as_str()), to_val(v)))
                .collect::<HashMap<_, _>>(),
        )),
    }
}

/// The parts of the upstream JSON that `reads` names, as a CEL value, as if the values in
/// `removed` (by an item filter) were not there: an object read only through selections
/// becomes a map of just the selected keys; anything else is converted whole, so an
/// expression sees exactly what it would on the whole value.
pub(crate) fn to_val_reading<'v>(
    json: &'v Value,
    reads: &Reads,
    removed: &Removed,
) -> Box<dyn Val + 'v> {
    match (reads, json) {
        (Reads::Fields(fields), Value::Object(map)) => Box::new(CelMap::from(
            fields
                .iter()
                .filter_map(|(key, r)| {
                    let (k, v) = map.get_key_value(key.as_str())?;
                    (!removed.has(v))
                        .then(|| (CelMapKey::from(k.as_str()), to_val_reading(v, r, removed)))
                })
                .collect::<HashMap<_, _>>(),
        )),
        _ if removed.is_empty() => to_val(json),
        (_, Value::Array(items)) => Box::new(CelList::from(
            items
                .iter()
                .filter(|v| !removed.has(v))
                .map(|v| to_val_reading(v, &Reads::All, removed))
                .collect::<Vec<_>>(),
        )),
        (_, Value::Object(map)) => Box::new(CelMap::from(
            map.iter()
                .filter(|(_, v)| !removed.has(v))
                .map(|(k, v)| {
                    (
                        CelMapKey::from(k.as_str()),
                        to_val_reading(v, &Reads::All, removed),
                    )
                })
                .collect::<HashMap<_, _>>(),
        )),
        _ => to_val(json),
    }
}

/// A string map (route parameters, query, headers) as a CEL map.
pub fn string_map<'v>(entries: impl IntoIterator<Item = (&'v str, &'v str)>) -> Box<dyn Val + 'v> {
    Box::new(CelMap::from(
        entries
            .into_iter()
            .map(|(k, v)| {
                (
                    CelMapKey::from(k),
                    Box::new(CelString::from(v)) as Box<dyn Val + 'v>,
                )
            })
            .collect::<HashMap<_, _>>(),
    ))
}

/// A map of the given values, as `recipient` and `request` are built.
pub fn record<'v>(entries: Vec<(&'static str, Box<dyn Val + 'v>)>) -> Box<dyn Val + 'v> {
    Box::new(CelMap::from(
        entries
            .into_iter()
            .map(|(k, v)| (CelMapKey::from(k), v))
            .collect::<HashMap<_, _>>(),
    ))
}

pub fn string_val(s: &str) -> Box<dyn Val + '_> {
    Box::new(CelString::from(s))
}

/// `now` as a CEL timestamp (UTC).
pub fn timestamp(now: SystemTime) -> Box<dyn Val + 'static> {
    Box::new(CelTimestamp::from(date_time(now)))
}

/// `now` as the date and time CEL compares (UTC), for [`timestamp`] and [`Inputs`].
pub fn date_time(now: SystemTime) -> chrono::DateTime<chrono::FixedOffset> {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let utc = chrono::DateTime::from_timestamp(secs, since.subsec_nanos()).unwrap_or_default();
    utc.fixed_offset()
}

/// A derived value as JSON; `None` for what JSON cannot hold (bytes, durations, NaN...), which
/// omits the field rather than guess.
pub fn to_json(v: &CelValue) -> Option<Value> {
    Some(match v {
        CelValue::Null => Value::Null,
        CelValue::Bool(b) => Value::Bool(*b),
        CelValue::Int(i) => Value::from(*i),
        CelValue::UInt(u) => Value::from(*u),
        CelValue::Float(f) => Value::Number(serde_json::Number::from_f64(*f)?),
        CelValue::String(s) => Value::String(s.as_str().to_owned()),
        CelValue::Timestamp(t) => Value::String(t.to_rfc3339()),
        CelValue::List(items) => Value::Array(items.iter().map(to_json).collect::<Option<_>>()?),
        CelValue::Map(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map.map.iter() {
                let key = match k {
                    Key::String(s) => s.as_str().to_owned(),
                    Key::Int(i) => i.to_string(),
                    Key::Uint(u) => u.to_string(),
                    Key::Bool(b) => b.to_string(),
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn age_band_boundaries() {
        let born = d(2000, 6, 15);
        let cases = [
            (d(2018, 6, 14), "under 18"),
            (d(2018, 6, 15), "18-24"),
            (d(2025, 6, 14), "18-24"),
            (d(2025, 6, 15), "25-34"),
            (d(2035, 6, 14), "25-34"),
            (d(2035, 6, 15), "35-44"),
            (d(2045, 6, 15), "45-54"),
            (d(2055, 6, 15), "55-64"),
            (d(2065, 6, 14), "55-64"),
            (d(2065, 6, 15), "65+"),
            (d(2000, 6, 15), "under 18"),
        ];
        for (today, band) in cases {
            assert_eq!(age_band(born, today), Some(band), "{today}");
        }
        assert_eq!(age_band(born, d(2000, 6, 14)), None);
    }

    #[test]
    fn leap_day_birthday_is_reached_on_the_first_of_march() {
        let born = d(2004, 2, 29);
        assert_eq!(age_band(born, d(2022, 2, 28)), Some("under 18"));
        assert_eq!(age_band(born, d(2022, 3, 1)), Some("18-24"));
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(parse_date("1985-12-10"), Some(d(1985, 12, 10)));
        for bad in [
            "1985-1-10",
            "1985-13-10",
            "1985-02-30",
            "10/12/1985",
            "",
            "1985-12-10T00",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn postcode_districts() {
        for (pc, want) in [
            ("LN2 1AB", "LN2"),
            ("ln21ab", "LN2"),
            ("  ln2   1ab ", "LN2"),
            ("M1 1AE", "M1"),
            ("B33 8TH", "B33"),
            ("CR2 6XH", "CR2"),
            ("DN55 1PT", "DN55"),
            ("W1A 0AX", "W1A"),
            ("EC1A 1BB", "EC1A"),
        ] {
            assert_eq!(postcode_district(pc).as_deref(), Some(want), "{pc}");
        }
        for bad in [
            "",
            "LN2",
            "LN2 1A",
            "123 4AB",
            "LN2 AAB",
            "LN2-1AB",
            "LLLL2 1AB",
            "ŁN2 1AB",
        ] {
            assert_eq!(postcode_district(bad), None, "{bad}");
        }
    }

    #[test]
    fn masks_all_but_the_last_three() {
        assert_eq!(mask("07700 900123"), "*********123");
        assert_eq!(mask("abcd"), "*bcd");
        assert_eq!(mask("abc"), "***");
        assert_eq!(mask(""), "");
        assert_eq!(mask("ééééé"), "**ééé");
    }

    #[test]
    fn pseudonyms_are_stable_per_type_and_differ_across_types() {
        let key = PseudonymKey::new(vec![7u8; 32]).unwrap();
        let a = key.for_type("repairs-contractor");
        let b = key.for_type("research-vendor");
        let p = pseudonym(&a, "T-4471");
        assert_eq!(p, pseudonym(&a, "T-4471"));
        assert_eq!(p.len(), 32);
        assert!(p
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(p, pseudonym(&b, "T-4471"));
        assert_ne!(p, pseudonym(&a, "T-4472"));
        assert!(PseudonymKey::new(vec![1u8; 31]).is_err());
        assert_eq!(format!("{key:?}"), "PseudonymKey(..)");
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn compile_checks_names() {
        assert!(Expr::compile("body.a == 1 && [1].exists(x, x > 0)", false).is_ok());
        assert!(Expr::compile("size(body.a) > 0 && body.s.startsWith('a')", false).is_ok());
        assert!(Expr::compile("timestamp(body.t) > now - duration('1h')", false).is_ok());
        assert!(Expr::compile("type(body.a) == int", false).is_ok());
        let e = Expr::compile("bodee.a == 1", false).unwrap_err();
        assert!(e[0].message.contains("unknown variable \"bodee\""), "{e:?}");
        let e = Expr::compile("frobnicate(body.a)", false).unwrap_err();
        assert!(
            e[0].message.contains("unknown function \"frobnicate\""),
            "{e:?}"
        );
        let e = Expr::compile("item.a", false).unwrap_err();
        assert!(e[0].message.contains("`item`"), "{e:?}");
        assert!(Expr::compile("item.a", true).is_ok());
        let e = Expr::compile("body.a ==", false).unwrap_err();
        assert!(
            e[0].message.starts_with("CEL syntax error at column"),
            "{e:?}"
        );
        let e = Expr::compile("body.a &&\n  body.b ==", false).unwrap_err();
        assert_eq!(e[0].line, 2, "{e:?}");
        let x = Expr::compile("pseudonym(body.id)", false).unwrap();
        assert!(x.uses().pseudonym && x.uses().body && !x.uses().request);
    }

    fn run(source: &str, body: &Value) -> Result<CelValue, EvalError> {
        let functions = Functions::new("t", Some(&PseudonymKey::new(vec![1; 32]).unwrap()));
        let root: &Context<'_, '_> = functions.root();
        let mut scope = root.new_inner_scope();
        scope.add_variable_as_val("body", to_val(body));
        scope.add_variable_as_val(
            "now",
            timestamp(UNIX_EPOCH + std::time::Duration::from_secs(1_740_000_000)),
        );
        Expr::compile(source, false).unwrap().eval(&scope)
    }

    #[test]
    fn evaluates_against_json() {
        let body = serde_json::json!({"n": 1, "s": "LN2 1AB", "l": ["a"], "f": 1.5, "dob": "1985-12-10",
            "t": "2030-01-01T00:00:00Z"});
        assert_eq!(
            run("body.n == 1 && 'a' in body.l && body.f > 1.0", &body),
            Ok(CelValue::Bool(true))
        );
        assert_eq!(
            run("postcode_district(body.s)", &body),
            Ok(CelValue::from("LN2"))
        );
        assert_eq!(
            run("age_band(body.dob)", &body),
            Ok(CelValue::from("35-44"))
        );
        assert_eq!(
            run("timestamp(body.t) > now", &body),
            Ok(CelValue::Bool(true))
        );
        assert_eq!(
            run("body.missing == 1", &body),
            Err(EvalError("no field \"missing\"".into()))
        );
        assert_eq!(
            run("age_band(body.s)", &body),
            Err(EvalError("age_band() failed".into()))
        );
        assert!(run("postcode_district('nope')", &body).is_err());
        let p = run("pseudonym(body.n)", &body).unwrap();
        assert_eq!(p, run("pseudonym('1')", &body).unwrap());
    }

    #[test]
    fn derived_values_to_json() {
        assert_eq!(to_json(&CelValue::from("x")), Some(Value::from("x")));
        assert_eq!(to_json(&CelValue::Float(f64::NAN)), None);
        assert_eq!(to_json(&CelValue::Bytes(Arc::new(vec![1]))), None);
    }
}
