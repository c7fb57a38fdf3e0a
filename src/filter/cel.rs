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
use cel::extractors::Arguments;
use cel::objects::Key;
use cel::{Context, Env, ExecutionError, FunctionContext, Program, Value as CelValue};

/// A CEL scope: the shared root of a route, or a request's child of it.
pub use ::cel::Context as Scope;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

mod dates;
mod direct;
mod reads;
mod text;
pub use dates::{age_band, check_format, date, date_with};
pub(crate) use direct::{Direct, Inputs};
pub use reads::Reads;
pub use text::{normalize, postcode_district};

use super::Removed;

/// The variables an expression may name (listed for rule writers in `docs/rules.md`).
pub const VARIABLES: &[&str] = &["body", "item", "recipient", "request", "now", "lookup"];

/// The functions beyond standard CEL.
pub const FUNCTIONS: &[&str] = &[
    "age_band",
    "postcode_district",
    "pseudonym",
    "mask",
    "normalize",
    "date",
];

/// The functions of CEL's strings extension an expression may call (`s.lowerAscii()`,
/// `list.join(', ')`): those rule writers need to compare codes and names as the housing
/// system spells them. The extension's others (`format`, `reverse`, `strings.quote`) stay
/// unknown, so what a rule may call is exactly what `docs/rules.md` lists.
pub const STRING_FUNCTIONS: &[&str] = &[
    "charAt",
    "indexOf",
    "lastIndexOf",
    "lowerAscii",
    "upperAscii",
    "replace",
    "split",
    "substring",
    "trim",
    "join",
];

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
    /// The lookups it reads (`lookup.<name>`), which the route must declare.
    lookups: std::collections::BTreeSet<String>,
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
    pub lookup: bool,
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
            lookup: self.lookup || other.lookup,
        }
    }
}

/// The standard environment with the strings extension, built once per process:
/// expressions compile and run against it.
fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        env.add_extension(cel::extensions::strings)
            .expect("the strings extension names no standard overload");
        Arc::new(env)
    })
}

/// The standard environment alone, to tell standard functions from the extension's.
fn stdlib() -> &'static Arc<Env> {
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
                "lookup" => uses.lookup = true,
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
                        "unknown function {name:?}: standard CEL, the string functions {} \
                         and {} are available",
                        STRING_FUNCTIONS.join(", "),
                        FUNCTIONS.join(", ")
                    ),
                });
            }
        }
        // A failed lookup is not in `lookup`: `has(lookup.x)` would answer false instead of
        // failing, and a rule reading `lookup` whole could not be checked against the route.
        if refs.lookup_whole {
            errors.push(CompileError {
                line: 1,
                message: "read a lookup as lookup.<name>, not `lookup` itself".into(),
            });
        }
        if refs.lookup_has {
            errors.push(CompileError {
                line: 1,
                message: "has(lookup.<name>) is not allowed: a lookup that failed is an error wherever it is read".into(),
            });
        }
        errors.extend(
            refs.misuses
                .into_iter()
                .map(|message| CompileError { line: 1, message }),
        );
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
            lookups: refs.lookups,
        })
    }

    /// The names of the lookups it reads, as `lookup.<name>`.
    pub fn lookups(&self) -> &std::collections::BTreeSet<String> {
        &self.lookups
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

/// Whether `name` is one of [`STRING_FUNCTIONS`] or the standard environment declares it,
/// globally or as a member function.
///
/// `cel` offers no lookup by name, but refuses to add a context function that an
/// environment overload already names: that refusal is the lookup.
fn is_standard_function(name: &str) -> bool {
    if STRING_FUNCTIONS.contains(&name) {
        return true;
    }
    let mut probe = Context::with_env(Arc::clone(stdlib()));
    probe.add_function(name, |x: i64| x).is_err()
}

/// Variables and functions referred to, with comprehension variables (`x` in
/// `list.exists(x, ...)`) in scope only where they are bound.
#[derive(Default)]
struct Refs {
    variables: std::collections::BTreeSet<String>,
    functions: std::collections::BTreeSet<String>,
    /// The `x` of each `lookup.x`.
    lookups: std::collections::BTreeSet<String>,
    /// `lookup` read other than as `lookup.x`.
    lookup_whole: bool,
    /// `has(lookup.x)`, which a failed lookup would answer with false.
    lookup_has: bool,
    /// How calls of our functions misuse them, found at load rather than on every request.
    misuses: Vec<String>,
}

impl Refs {
    fn walk(&mut self, e: &cel::IdedExpr, bound: &mut Vec<String>) {
        match &e.expr {
            Node::Unspecified | Node::Literal(_) => {}
            Node::Ident(name) => {
                if !name.starts_with('@') && !bound.contains(name) {
                    self.lookup_whole |= name == "lookup";
                    self.variables.insert(name.clone());
                }
            }
            Node::Select(s) => match &s.operand.expr {
                Node::Ident(name) if name == "lookup" && !bound.contains(name) => {
                    self.variables.insert(name.clone());
                    self.lookup_has |= s.test;
                    self.lookups.insert(s.field.clone());
                }
                _ => self.walk(&s.operand, bound),
            },
            Node::Call(call) => {
                self.functions.insert(call.func_name.clone());
                self.misuses.extend(misuse(call));
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

/// How a call of one of our [`FUNCTIONS`] is wrong whatever the data: called as a method,
/// with the wrong number of arguments, or `date()` with a literal format chrono cannot read.
fn misuse(call: &cel::common::ast::CallExpr) -> Option<String> {
    let name = call.func_name.as_str();
    if !FUNCTIONS.contains(&name) {
        return None;
    }
    if call.target.is_some() {
        return Some(format!(
            "{name}() is a function, not a method: write {name}(x), not x.{name}()"
        ));
    }
    let arities = if name == "date" { 1..=2 } else { 1..=1 };
    if !arities.contains(&call.args.len()) {
        let wanted = if name == "date" { "1 or 2" } else { "1" };
        return Some(format!(
            "{name}() takes {wanted} argument(s), not {}",
            call.args.len()
        ));
    }
    match call.args.get(1).map(|a| &a.expr) {
        Some(Node::Literal(cel::common::ast::LiteralValue::String(format))) => {
            check_format(format.inner())
                .err()
                .map(|why| format!("date(): the format {:?}: {why}", format.inner()))
        }
        _ => None,
    }
}

/// A value-free description of an evaluation error: field and function names and types are
/// fine to print, the values compared are not.
pub fn describe(e: &ExecutionError) -> EvalError {
    EvalError(match e {
        // The key may come from the data (`m[body.name]`): never printed.
        ExecutionError::NoSuchKey(_) => "a field or key is missing".into(),
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
                ExecutionError::function_error("postcode_district", "no UK postcode in the text")
            })
        });
        let _ = root.add_function("date", date_fn);
        let _ = root.add_function("normalize", |v: CelValue| {
            let text = string_arg("normalize", &v)?;
            Ok::<_, ExecutionError>(CelValue::from(normalize(text)))
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

    /// `name(text)` for our functions that give a string, as the CEL versions compute it on
    /// a string (and `pseudonym` on an integer's digits), calling the same functions; `None`
    /// where CEL's would fail, or for a function that gives no string (`date`), so the caller
    /// asks CEL and gets its answer or error.
    pub(crate) fn call_direct(
        &self,
        name: &str,
        text: &str,
        now: chrono::DateTime<chrono::FixedOffset>,
    ) -> Option<String> {
        match name {
            "age_band" => date(text)
                .and_then(|born| age_band(born, now))
                .ok()
                .map(str::to_owned),
            "postcode_district" => postcode_district(text),
            "mask" => Some(mask(text)),
            "normalize" => Some(normalize(text)),
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

/// `age_band(x)`: `x` a date as [`date`] reads it, or a timestamp; the age on `now`.
fn age_band_fn(ftx: &FunctionContext, v: CelValue) -> Result<CelValue, ExecutionError> {
    let fail = |why| ExecutionError::function_error("age_band", why);
    let now = ftx
        .ptx
        .get_variable("now")
        .and_then(|n| n.downcast_ref::<CelTimestamp>().map(|t| *t.inner()))
        .ok_or_else(|| fail("now is not set"))?;
    let born = match &v {
        CelValue::String(s) => date(s.as_str()).map_err(fail)?,
        CelValue::Timestamp(t) => *t,
        _ => return Err(fail("takes a date string or a timestamp")),
    };
    age_band(born, now).map(CelValue::from).map_err(fail)
}

/// `date(s)` or `date(s, format)`: a timestamp, or an error saying why not.
fn date_fn(Arguments(args): Arguments) -> Result<CelValue, ExecutionError> {
    let fail = |why| ExecutionError::function_error("date", why);
    let text = |v: &CelValue| match v {
        CelValue::String(s) => Ok(s.as_str().to_owned()),
        _ => Err(fail("takes strings")),
    };
    let t = match args.as_slice() {
        [s] => date(&text(s)?).map_err(fail)?,
        [s, format] => date_with(&text(s)?, &text(format)?).map_err(fail)?,
        _ => return Err(ExecutionError::invalid_argument_count(2, args.len())),
    };
    Ok(CelValue::Timestamp(t))
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

/// Named JSON values (the lookups that succeeded) as a CEL map, each converted whole.
pub fn json_map<'v>(entries: impl IntoIterator<Item = (&'v str, &'v Value)>) -> Box<dyn Val + 'v> {
    Box::new(CelMap::from(
        entries
            .into_iter()
            .map(|(k, v)| (CelMapKey::from(k), to_val(v)))
            .collect::<HashMap<_, _>>(),
    ))
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
        for (source, message) in [
            ("date()", "date() takes 1 or 2 argument(s), not 0"),
            (
                "date('a', 'b', 'c')",
                "date() takes 1 or 2 argument(s), not 3",
            ),
            (
                "age_band(body.a, now)",
                "age_band() takes 1 argument(s), not 2",
            ),
            ("normalize()", "normalize() takes 1 argument(s), not 0"),
            (
                "postcode_district(body.a, 1)",
                "postcode_district() takes 1",
            ),
            (
                "body.a.normalize()",
                "normalize() is a function, not a method",
            ),
            (
                "date(body.a, '%d/%m/%Y %Z')",
                "date(): the format \"%d/%m/%Y %Z\": %Z",
            ),
            ("date(body.a, '%Y %')", "not a strftime format"),
        ] {
            let e = Expr::compile(source, false).unwrap_err();
            assert!(
                e.iter().any(|e| e.message.contains(message)),
                "{source}: {e:?}"
            );
        }
        assert!(Expr::compile("date(body.a, body.format) < now", false).is_ok());
        assert!(Expr::compile("date(body.a, '%d/%m/%Y') < now", false).is_ok());
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
            Err(EvalError("a field or key is missing".into()))
        );
        assert_eq!(
            run("age_band(body.s)", &body),
            Err(EvalError("age_band() failed".into()))
        );
        assert!(run("postcode_district('nope')", &body).is_err());
        assert_eq!(
            run("postcode_district('12  Hill Rd, Leeds ls6 2ab')", &body),
            Ok(CelValue::from("LS6"))
        );
        assert_eq!(
            run(
                "normalize('VIO\u{2011} 01') == normalize(' VIO-\u{a0}01')",
                &body
            ),
            Ok(CelValue::Bool(true))
        );
        for wrong in ["normalize(body.n)", "postcode_district(body.l)", "mask(1)"] {
            assert!(run(wrong, &body).is_err(), "{wrong}");
        }
        let p = run("pseudonym(body.n)", &body).unwrap();
        assert_eq!(p, run("pseudonym('1')", &body).unwrap());
    }

    #[test]
    fn the_string_functions_are_cel_s_extension() {
        let body = serde_json::json!({"code": " Vio-01 ", "names": ["A", "B"]});
        for (source, want) in [
            ("'abc'.charAt(1)", CelValue::from("b")),
            ("'abcabc'.indexOf('c')", CelValue::Int(2)),
            ("'abcabc'.lastIndexOf('c')", CelValue::Int(5)),
            ("body.code.trim().lowerAscii()", CelValue::from("vio-01")),
            ("body.code.trim().upperAscii()", CelValue::from("VIO-01")),
            ("body.code.replace('-', '')", CelValue::from(" Vio01 ")),
            ("size('a,b,c'.split(','))", CelValue::Int(3)),
            ("'VIO-01'.substring(0, 3)", CelValue::from("VIO")),
            ("body.names.join(', ')", CelValue::from("A, B")),
        ] {
            assert_eq!(run(source, &body), Ok(want), "{source}");
        }
        assert!(run("'abc'.charAt(7)", &body).is_err());
        assert!(run("body.names.charAt(0)", &body).is_err());
        for name in STRING_FUNCTIONS {
            assert!(is_standard_function(name), "{name}");
        }
    }

    #[test]
    fn the_rest_of_the_strings_extension_is_unknown() {
        for source in [
            "'abc'.reverse()",
            "'%s'.format(['a'])",
            "strings.quote('a')",
        ] {
            let e = Expr::compile(source, false).unwrap_err();
            let unknown = e.iter().find(|e| e.message.contains("unknown function"));
            assert!(
                unknown.is_some_and(|e| e.message.contains("lowerAscii")),
                "{source}: {e:?}"
            );
        }
    }

    /// `now` in [`run`] is 2025-02-19T21:20:00Z.
    #[test]
    fn dates_through_cel() {
        let body = serde_json::json!({"alert": "1979-03-14T00:00:00", "dob": "1985-12-10",
            "placeholder": "0001-01-01", "unknown": "1900-01-01", "us": "07/11/2023", "n": 1});
        for source in [
            "date(body.alert) < now",
            "date(body.alert) == timestamp('1979-03-14T00:00:00Z')",
            "date(body.dob) == date('1985-12-10T00:00:00')",
            "date(body.unknown) < now && date(body.placeholder) < date(body.unknown)",
            "date(body.us, '%m/%d/%Y') == date('2023-07-11')",
            "date('2023-07-11').getDate('Europe/London') == 11",
            "date('2023-07-11').getDate() == 10",
            "age_band(date(body.dob)) == age_band(body.dob)",
            "age_band(timestamp('1985-12-10T00:00:00Z')) == '35-44'",
            "age_band('1985-12-10T00:00:00') == '35-44'",
            "age_band('2025-02-19') == 'under 18'",
            "date(body.dob).getFullYear() == 1985",
        ] {
            assert_eq!(run(source, &body), Ok(CelValue::Bool(true)), "{source}");
        }
        for source in [
            "date(body.n)",
            "date(now)",
            "date(body.us)",
            "date(body.us, 1)",
            "date('2024-03-31T01:30:00')",
            "date('0000-12-31')",
            "age_band(body.placeholder)",
            "age_band(body.unknown)",
            "age_band('2025-02-20')",
            "age_band(body.n)",
            "age_band(date(body.placeholder))",
        ] {
            assert!(
                run(source, &body).is_err(),
                "{source}: {:?}",
                run(source, &body)
            );
        }
        assert_eq!(
            run("age_band(body.placeholder)", &body),
            Err(EvalError("age_band() failed".into()))
        );
        assert_eq!(
            run("date(body.alert)", &body).map(|t| to_json(&t)),
            Ok(Some(Value::from("1979-03-14T00:00:00+00:00")))
        );
    }

    #[test]
    fn derived_values_to_json() {
        assert_eq!(to_json(&CelValue::from("x")), Some(Value::from("x")));
        assert_eq!(to_json(&CelValue::Float(f64::NAN)), None);
        assert_eq!(to_json(&CelValue::Bytes(Arc::new(vec![1]))), None);
    }
}
