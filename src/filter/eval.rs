//! Evaluating a rule's expression for a request: the one place that says how.
//!
//! A condition ([`holds`]) or a derived value ([`derived`]) is answered directly on the JSON
//! when [`cel::Direct`] is certain of the answer, and otherwise by the CEL interpreter in the
//! caller's scope, with `item` bound in a child of it. The scope is given as a function, so a
//! caller builds it only the first time an expression needs the interpreter: the shipped rules
//! are all answered directly, and building a scope was most of `decide`. The result is CEL's
//! answer or CEL's error; the callers count an error and never grant on one.
//!
//! **Shadow mode.** In test and debug builds (`cfg(any(test, debug_assertions))`, the fuzz
//! builds too) every direct answer is asked of the interpreter as well, in the same scope with
//! the same bindings, and a disagreement panics naming the expression (never the values), so
//! every test and fuzz run that reaches a condition compares the two. `Direct` promises to
//! answer only what is certain: where it answers, CEL gives that answer and does not fail.
//! So the interpreter failing where `Direct` answered is a disagreement too, not a tolerated
//! difference; where `Direct` is unsure (`None`) there is nothing to compare, since the
//! interpreter alone answers. A release build compiles the comparison away and builds no scope
//! for it.
//!
//! **The oracle.** Tests compare [`super::decide`] with the reference way of deciding
//! (`decide_copying`): no direct answers, every value bound to the interpreter whole, the body
//! copied before the item filters. That is [`as_oracle`], a mode of this thread in test
//! builds only; a build of the gateway has no such mode ([`oracle`] is `false`).

use serde_json::Value;

use super::cel::{self, EvalError, Expr, Functions, Inputs, PseudonymKey, Reads, Scope};
use super::conditions::{bind, Request};
use super::Removed;

/// Whether the condition `expr` holds on `inputs`; `scope` gives the interpreter's scope of
/// the view `inputs` describe (`inputs.body_removed` is what its `body` is bound without).
///
/// # Errors
///
/// CEL's error, or a value that is not a bool: never a grant.
pub(crate) fn holds<'s, 'r: 's, 'v: 's>(
    expr: &Expr,
    inputs: &Inputs<'_>,
    scope: &dyn Fn() -> &'s Scope<'r, 'v>,
) -> Result<bool, EvalError> {
    let interpreted = || interpret(expr, inputs, scope, Expr::eval_bool);
    match direct(|| expr.eval_bool_direct(inputs)) {
        Some(held) => {
            shadow(expr, &held, interpreted);
            Ok(held)
        }
        None => interpreted(),
    }
}

/// A derived field's value on `inputs`, as JSON, the same way as [`holds`].
///
/// # Errors
///
/// CEL's error, or a value JSON cannot hold: the field is then omitted.
pub(crate) fn derived<'s, 'r: 's, 'v: 's>(
    expr: &Expr,
    inputs: &Inputs<'_>,
    scope: &dyn Fn() -> &'s Scope<'r, 'v>,
    functions: &Functions,
) -> Result<Value, EvalError> {
    let interpreted = || interpret(expr, inputs, scope, interpret_json);
    match direct(|| expr.eval_direct(inputs, functions)) {
        Some(value) => {
            shadow(expr, &value, interpreted);
            Ok(value)
        }
        None => interpreted(),
    }
}

/// Runs `run` on `expr` in `scope`, or with `inputs.item` there in a child of it, bound
/// without what `inputs.item_removed` holds, as much of it as `expr` reads.
fn interpret<'s, 'r: 's, 'v: 's, T>(
    expr: &Expr,
    inputs: &Inputs<'_>,
    scope: &dyn Fn() -> &'s Scope<'r, 'v>,
    run: impl FnOnce(&Expr, &Scope<'_, '_>) -> Result<T, EvalError>,
) -> Result<T, EvalError> {
    let scope = scope();
    let Some(item) = inputs.item else {
        return run(expr, scope);
    };
    let mut inner = scope.new_inner_scope();
    inner.add_variable_as_val(
        "item",
        cel::to_val_reading(item, bound(expr.item_reads()), inputs.item_removed),
    );
    run(expr, &inner)
}

fn interpret_json(expr: &Expr, scope: &Scope<'_, '_>) -> Result<Value, EvalError> {
    expr.eval(scope)
        .and_then(|v| cel::to_json(&v).ok_or_else(|| EvalError("the value is not JSON".into())))
}

/// What of a variable the interpreter is given: the parts the expressions read (the rest is
/// never reached, [`Reads`]), or all of it for the oracle.
pub(crate) fn bound(reads: &Reads) -> &Reads {
    static ALL: Reads = Reads::All;
    if oracle() {
        &ALL
    } else {
        reads
    }
}

/// `Direct`'s answer, or `None` (unsure) for the oracle, which asks the interpreter alone.
fn direct<T>(answer: impl FnOnce() -> Option<T>) -> Option<T> {
    if oracle() {
        None
    } else {
        answer()
    }
}

// === shadow mode ===

/// In test and debug builds: panics when the interpreter does not give `direct`'s answer.
#[cfg(any(test, debug_assertions))]
fn shadow<T: PartialEq>(
    expr: &Expr,
    direct: &T,
    interpreted: impl FnOnce() -> Result<T, EvalError>,
) {
    if let Some(why) = differ(direct, &interpreted()) {
        panic!(
            "cel::Direct and the interpreter disagree on {:?}: {why}",
            expr.source()
        );
    }
}

/// In a release build: nothing, and no scope built.
#[cfg(not(any(test, debug_assertions)))]
#[inline(always)]
fn shadow<T>(_: &Expr, _: &T, _: impl FnOnce() -> Result<T, EvalError>) {}

/// How the interpreter's result differs from a direct answer, without the values: an error
/// where `Direct` answered is a difference (see the module comment).
fn differ<T: PartialEq>(direct: &T, interpreted: &Result<T, EvalError>) -> Option<String> {
    match interpreted {
        Ok(v) if v == direct => None,
        Ok(_) => Some("the interpreter gives another value".into()),
        Err(e) => Some(format!("the interpreter fails ({e})")),
    }
}

/// Compares [`cel::Direct`] with the interpreter on the expression `source` (compiled with
/// `item` bound), as a condition and as a derived value, with `body` and `item` bound as a
/// route's scope binds them. Objects holding `"dropped": true` are read as an item filter
/// leaves them: not there. For the fuzz target `eval_direct` and the property tests.
///
/// Returns whether `Direct` answered (and the interpreter agreed); `Ok(false)` too when
/// `source` is not a rule expression.
///
/// # Errors
///
/// How the two disagree, naming the expression (the inputs are the caller's).
pub fn compare(
    source: &str,
    request: &Request<'_>,
    body: &Value,
    item: &Value,
) -> Result<bool, String> {
    let Ok(expr) = Expr::compile(source, true) else {
        return Ok(false);
    };
    let key = PseudonymKey::new(vec![7; cel::MIN_KEY_BYTES]).expect("the key is long enough");
    let functions = Functions::new("compare", Some(&key));
    let mut removed = Removed::default();
    for value in [body, item] {
        mark_dropped(value, &mut removed);
    }
    let mut scope = functions.root().new_inner_scope();
    bind(
        &mut scope,
        expr.uses(),
        expr.body_reads(),
        request,
        (body, &removed),
    );
    let inputs = Inputs {
        request,
        body: Some(body),
        body_removed: &removed,
        item: Some(item),
        item_removed: &removed,
        now: cel::date_time(request.now),
    };
    let scope = || &scope;
    let disagree = |why: String| format!("on {source:?} as a {why}");
    let mut answered = false;
    if let Some(held) = expr.eval_bool_direct(&inputs) {
        answered = true;
        let interpreted = interpret(&expr, &inputs, &scope, Expr::eval_bool);
        if let Some(why) = differ(&held, &interpreted) {
            return Err(disagree(format!("condition: {why}")));
        }
    }
    if let Some(value) = expr.eval_direct(&inputs, &functions) {
        answered = true;
        let interpreted = interpret(&expr, &inputs, &scope, interpret_json);
        if let Some(why) = differ(&value, &interpreted) {
            return Err(disagree(format!("derived value: {why}")));
        }
    }
    Ok(answered)
}

/// Adds to `removed` every object under `value` (not `value` itself) holding `"dropped": true`.
fn mark_dropped(value: &Value, removed: &mut Removed) {
    let children: Box<dyn Iterator<Item = &Value>> = match value {
        Value::Array(items) => Box::new(items.iter()),
        Value::Object(map) => Box::new(map.values()),
        _ => return,
    };
    for child in children {
        if child.get("dropped") == Some(&Value::Bool(true)) {
            removed.insert(child);
        }
        mark_dropped(child, removed);
    }
}

// === the oracle ===

#[cfg(test)]
thread_local! {
    static ORACLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with this thread evaluating as the oracle: the interpreter alone, every value
/// bound whole, the body copied (the module comment).
#[cfg(test)]
pub(crate) fn as_oracle<R>(f: impl FnOnce() -> R) -> R {
    /// Ends the mode however `f` ends: proptest catches a panic and runs the next case.
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            ORACLE.set(false);
        }
    }
    ORACLE.set(true);
    let _reset = Reset;
    f()
}

/// Whether this thread evaluates as the oracle ([`as_oracle`]); never outside tests.
#[inline]
pub(crate) fn oracle() -> bool {
    #[cfg(test)]
    return ORACLE.get();
    #[cfg(not(test))]
    false
}

#[cfg(test)]
mod tests;
