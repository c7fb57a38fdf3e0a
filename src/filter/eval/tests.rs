//! Direct evaluation against the interpreter: generated expressions of `cel::Direct`'s subset
//! (mixing types on purpose, and now and then a part outside it) over generated JSON, and
//! the shadow check that makes every other test compare the two as well.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

use super::*;
use crate::rules::Recipient;
use crate::test_util::{load, Call};

/// The keys the generated bodies hold and the expressions read, and one neither uses.
const KEYS: &[&str] = &["a", "n", "b", "s", "list", "o", "z", "missing"];

/// Strings a condition compares or a function parses: dates, timestamps (in and out of the
/// years CEL takes, and spelt as RFC 3339 allows), postcodes, the request's own values.
const STRINGS: &[&str] = &[
    "",
    "x",
    "é",
    "acme-repairs",
    "ACME Repairs Ltd",
    "ACME",
    "contractor_code",
    "repairs-contractor",
    "GET",
    "/jobs/J1",
    "J1",
    "ref",
    "1985-12-10",
    "2026-12-31",
    "1990-2-28",
    "2004-02-29",
    "LN2 1AB",
    "ln21ab",
    "EC1A 1BB",
    "2026-01-01T00:00:00Z",
    "2025-03-01T00:00:00Z",
    "2025-03-01T01:00:00+01:00",
    "2126-01-01T00:00:00.5+01:00",
    "2025-03-01t00:00:00z",
    "2025-03-01 00:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "10000-01-01T00:00:00Z",
    "1979-03-14T00:00:00",
    "2025-02-28T23:59:59.999",
    "2024-03-31T01:30:00",
    "2024-10-27T01:30:00",
    "0001-01-01",
    "1900-01-01",
    "9999-12-31",
    "07/11/2023",
    "VIO\u{2011}01",
    "12  Hill Rd, Leeds ls6 2ab",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        int(),
        Just(json!(u64::MAX)),
        prop::sample::select(vec![1.5f64, 2.0, -0.0]).prop_map(Value::from),
        string(),
    ]
}

fn int() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![0i64, 1, 2, -1, 12, i64::MAX, i64::MIN]).prop_map(Value::from)
}

fn string() -> impl Strategy<Value = Value> {
    prop::sample::select(STRINGS).prop_map(Value::from)
}

/// Any JSON over [`KEYS`]; an object now and then holds `"dropped": true`, which
/// [`compare`] reads as a row an item filter took out.
fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            object(inner),
        ]
    })
}

fn object(values: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_map(prop::sample::select(KEYS), values, 0..7),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(map, dropped)| {
            let mut object: serde_json::Map<String, Value> =
                map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if dropped {
                object.insert("dropped".into(), Value::Bool(true));
            }
            Value::Object(object)
        })
}

/// A record whose keys mostly hold the type their name suggests (`n` an int, `b` a bool,
/// `list` strings, `o` a record...), so that typed conditions meet typed values; now and then
/// any value, or any JSON instead of a record.
fn record() -> impl Strategy<Value = Value> {
    let field = |key: &'static str, named: BoxedStrategy<Value>| {
        prop::option::weighted(0.85, prop_oneof![4 => named, 1 => value()])
            .prop_map(move |v| v.map(|v| (key, v)))
    };
    let fields = (
        field("a", string().boxed()),
        field("s", string().boxed()),
        field("n", int().boxed()),
        field("b", any::<bool>().prop_map(Value::Bool).boxed()),
        field(
            "list",
            prop::collection::vec(prop_oneof![6 => string(), 1 => value()], 0..4)
                .prop_map(Value::Array)
                .boxed(),
        ),
        field("o", object(prop_oneof![string(), int(), scalar()]).boxed()),
        field("z", Just(Value::Null).boxed()),
    )
        .prop_map(|(a, s, n, b, list, o, z)| {
            Value::Object(
                [a, s, n, b, list, o, z]
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            )
        });
    prop_oneof![5 => fields, 1 => value()]
}

/// A selection of one of `keys` from `body` or `item`, by `.key` or `['key']`, now and then
/// one deeper.
fn path(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["body", "item"]),
        prop::sample::select(keys),
        prop::option::weighted(0.2, prop::sample::select(KEYS)),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(root, key, inner, indexed)| {
            let first = if indexed {
                format!("{root}['{key}']")
            } else {
                format!("{root}.{key}")
            };
            match inner {
                Some(k) => format!("{first}.{k}"),
                None => first,
            }
        })
}

fn any_path() -> impl Strategy<Value = String> {
    path(KEYS)
}

fn literal(values: &[&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(values.to_vec()).prop_map(str::to_owned)
}

/// A string operand: literals, paths, the recipient and the request (`request.query` is
/// outside the subset).
fn string_term() -> BoxedStrategy<String> {
    prop_oneof![
        3 => path(&["a", "s"]),
        2 => prop::sample::select(STRINGS).prop_map(|s| format!("'{s}'")),
        2 => literal(&[
            "recipient.id",
            "recipient.type",
            "recipient.name",
            "recipient.other",
            "recipient.attributes.contractor_code",
            "recipient.attributes['contractor_code']",
            "recipient.attributes.other",
            "request.method",
            "request.path",
            "request.params.job_id",
            "request.params['job_id']",
            "request.params.other",
            "request.headers['x-disclosure-reference']",
            "request.query.q",
        ]),
    ]
    .boxed()
}

fn int_term() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => path(&["n"]),
        2 => literal(&["0", "1", "2", "-1", "9223372036854775807", "1u", "1.5"]),
        1 => string_term().prop_map(|t| format!("size({t})")),
    ]
}

fn time_term() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("now".to_owned()),
        string_term().prop_map(|t| format!("timestamp({t})")),
        string_term().prop_map(|t| format!("date({t})")),
        string_term().prop_map(|t| format!("date({t}, '%m/%d/%Y')")),
    ]
}

fn other_term() -> impl Strategy<Value = String> {
    prop_oneof![
        path(&["b", "z", "o", "list"]),
        literal(&["null", "true", "false"]),
    ]
}

/// An operand of any type, for comparisons across types.
fn term() -> impl Strategy<Value = String> {
    prop_oneof![
        string_term(),
        int_term(),
        time_term(),
        other_term(),
        any_path()
    ]
}

/// Where `in` looks: lists of string literals, paths, and the request's maps.
fn haystack() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(STRINGS), 0..3).prop_map(|list| {
            let quoted: Vec<String> = list.iter().map(|s| format!("'{s}'")).collect();
            format!("[{}]", quoted.join(", "))
        }),
        path(&["list", "o", "a"]),
        literal(&[
            "request.params",
            "request.headers",
            "[1, 'x']",
            "recipient",
            "recipient.attributes"
        ]),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    let equal = || literal(&["==", "!="]);
    let order = || literal(&["==", "!=", "<", "<=", ">", ">="]);
    let compare = prop_oneof![
        3 => (string_term(), equal(), string_term()),
        3 => (int_term(), order(), int_term()),
        2 => (time_term(), order(), time_term()),
        2 => (other_term(), equal(), other_term()),
        1 => (term(), order(), term()),
    ]
    .prop_map(|(a, op, b)| format!("{a} {op} {b}"));
    let contains = (string_term(), haystack()).prop_map(|(a, b)| format!("{a} in {b}"));
    let leaf = prop_oneof![
        4 => compare,
        2 => contains,
        1 => path(&["b"]),
        1 => literal(&["true", "false", "has(item.a)"]),
    ];
    leaf.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| format!("!({c})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) && ({b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a}) || ({b})")),
        ]
    })
}

/// A derived value: one of our functions on an operand (`age_band` of a timestamp too).
fn derivation() -> impl Strategy<Value = String> {
    (
        literal(&[
            "age_band",
            "postcode_district",
            "pseudonym",
            "mask",
            "normalize",
        ]),
        prop_oneof![3 => string_term(), 1 => term(), 1 => time_term()],
    )
        .prop_map(|(f, t)| format!("{f}({t})"))
}

/// A recipient to read `recipient.*` of.
fn recipient() -> Arc<Recipient> {
    let policy = load(
        "[[route]]\nmethod = \"GET\"\npath = \"/jobs/{job_id}\"\nallow = [\"id\"]\n",
        None,
    )
    .unwrap();
    Arc::clone(policy.recipient("acme-repairs").unwrap())
}

/// Runs [`compare`] on `cases` of `expressions` over generated bodies and items, with and
/// without the request header a condition may read, and says how often `Direct` answered.
fn compare_generated(expressions: impl Strategy<Value = String>, cases: u32) -> (u32, u32) {
    let recipient = recipient();
    let without_header = Call::job();
    let with_header = Call::job().header("x-disclosure-reference", "ref");
    let answered = Cell::new(0);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let inputs = (expressions, record(), record(), any::<bool>());
    runner
        .run(&inputs, |(source, body, item, header)| {
            let call = if header {
                &with_header
            } else {
                &without_header
            };
            let request = call.request(&recipient);
            match compare(&source, &request, &body, &item) {
                Ok(direct) => answered.set(answered.get() + u32::from(direct)),
                Err(why) => prop_assert!(false, "{why}\nbody {body}\nitem {item}"),
            }
            Ok(())
        })
        .unwrap();
    (answered.get(), cases)
}

/// Wherever `Direct` answers a generated condition, the interpreter gives the same bool; and
/// it answers often enough for that to mean something.
#[test]
fn direct_conditions_are_what_the_interpreter_answers() {
    let (answered, cases) = compare_generated(condition(), 2000);
    assert!(
        answered * 5 > cases,
        "direct answered {answered} of {cases}"
    );
}

/// Wherever `Direct` computes a generated derivation, it is the interpreter's JSON.
#[test]
fn direct_derived_values_are_what_the_interpreter_derives() {
    let (answered, cases) = compare_generated(derivation(), 1000);
    assert!(
        answered * 10 > cases,
        "direct answered {answered} of {cases}"
    );
}

/// `GET /jobs/J1` on [`job_day`](crate::test_util::job_day) without its `job_id`, for the
/// expressions that read no parameter.
fn unparameterised() -> Call {
    Call {
        params: BTreeMap::new(),
        ..Call::job()
    }
}

/// [`compare`] on `source` for every body and item; how many `Direct` answered.
fn compare_grid(source: &str, request: &Request<'_>, bodies: &[Value], items: &[Value]) -> usize {
    let mut answered = 0;
    for body in bodies {
        for item in items {
            match compare(source, request, body, item) {
                Ok(direct) => answered += usize::from(direct),
                Err(why) => panic!("{why}: body {body} item {item}"),
            }
        }
    }
    answered
}

/// `cel::Direct` against the interpreter on a grid of conditions and values: wherever the
/// direct evaluation answers, CEL gives the same bool; and it answers often enough that the
/// comparison means something.
#[test]
fn direct_answers_only_what_cel_answers_the_same() {
    let exprs = [
        "item.a == 'x'",
        "item.a != 'x'",
        "item.a == recipient.id",
        "item.a == recipient.name || item.a == recipient.type",
        "body.a == item.a",
        "item.n < 2",
        "item.n <= 2",
        "item.n > 2",
        "item.n >= 2",
        "item.n == 2 && item.b",
        "item.b || item.n == 2",
        "!item.b",
        "item.a in ['x', 'y']",
        "'x' in item.list",
        "'a' in item",
        "'job_id' in request.params && request.params.job_id == 'J1'",
        "'x-disclosure-reference' in request.headers",
        "size(request.headers['x-disclosure-reference']) < 4",
        "request.method == 'GET' && request.path == '/jobs/J1'",
        "timestamp(item.a) > now",
        "timestamp(item.a) <= now",
        "date(item.a) > now",
        "date(item.a) == timestamp(item.a)",
        "size(item.a) == 1",
        "item.z == null",
        "item.a == null",
        "null == item.a || null != item.z",
    ];
    let items = [
        json!({"a": "x", "n": 2, "b": true, "list": ["x", "y"], "z": null}),
        json!({"a": "acme-repairs", "n": 1, "b": false, "list": ["y"]}),
        json!({"a": "Acme Repairs", "n": 3, "b": "true", "list": ["x", 1]}),
        json!({"a": "2026-11-30T12:00:00Z", "n": 2.0, "list": []}),
        json!({"a": "2126-01-01T00:00:00+01:00", "n": -5, "b": null, "list": null}),
        json!({"a": "é", "n": u64::MAX, "list": {"x": 1}}),
        json!({"a": "1979-03-14T00:00:00", "n": 2}),
        json!({"a": "0001-01-01", "b": true}),
        json!({"a": 7}),
        json!({"n": "2"}),
        json!([1, 2]),
        json!("x"),
    ];
    let bodies = [json!({"a": "x"}), json!({"a": 1}), json!({})];
    let recipient = recipient();
    let (mut answered, mut total) = (0, 0);
    for call in [
        Call::job(),
        Call::job().header("x-disclosure-reference", "ref"),
    ] {
        let request = call.request(&recipient);
        for source in exprs {
            assert!(
                Expr::compile(source, true).unwrap().is_direct(),
                "{source} is outside the subset"
            );
            answered += compare_grid(source, &request, &bodies, &items);
            total += bodies.len() * items.len();
        }
    }
    assert!(
        answered * 3 > total,
        "direct answered only {answered} of {total}"
    );
}

/// Derived values: wherever `cel::Direct` computes one, it is the JSON CEL's function gives.
#[test]
fn direct_derived_values_are_what_cel_derives() {
    let exprs = [
        "age_band(item.a)",
        "postcode_district(item.a)",
        "pseudonym(item.a)",
        "pseudonym(item.n)",
        "mask(item.a)",
        "normalize(item.a)",
        "age_band(body.a)",
    ];
    let items = [
        json!({"a": "1990-02-28", "n": 12}),
        json!({"a": "2026-12-31", "n": -1}),
        json!({"a": "1990-2-28", "n": u64::MAX}),
        json!({"a": "LN4 0RW", "n": 1.5}),
        json!({"a": "ln40rw"}),
        json!({"a": "not a postcode at all", "n": "12"}),
        json!({"a": "12  Hill Rd, Leeds ls6 2ab"}),
        json!({"a": " VIO\u{2011}01\u{a0} "}),
        json!({"a": "0001-01-01"}),
        json!({"a": "1900-01-01"}),
        json!({"a": "1979-03-14T00:00:00"}),
        json!({"a": "1990-02-28T23:30:00+00:00"}),
        json!({"a": "é", "n": null}),
        json!({"a": 7}),
        json!({}),
    ];
    let bodies = [json!({"a": "1950-06-01"}), json!({"a": 1})];
    let recipient = recipient();
    let call = unparameterised();
    let request = call.request(&recipient);
    let answered: usize = exprs
        .iter()
        .map(|source| compare_grid(source, &request, &bodies, &items))
        .sum();
    let total = exprs.len() * bodies.len() * items.len();
    assert!(
        answered * 4 > total,
        "direct answered only {answered} of {total}"
    );
}

/// Cases the generators once found, or that sit on an edge of the subset.
#[test]
fn known_edges_agree() {
    let recipient = recipient();
    let call = unparameterised();
    let request = call.request(&recipient);
    let body = json!({"a": "x", "list": ["x", {"dropped": true}], "o": {"a": {"dropped": true}}});
    let item = json!({"a": "2025-03-01t00:00:00z", "n": 1});
    for (source, answers) in [
        ("'x' in body.list", true),
        ("body.o.a == null", false),
        ("'a' in body.o", true),
        ("timestamp(item.a) <= now", true),
        ("date(item.a) <= now", true),
        ("date(item.a) == timestamp(item.a)", true),
        ("item.n == 1 || item.missing", true),
        ("item.missing || item.n == 1", false),
    ] {
        assert_eq!(
            compare(source, &request, &body, &item),
            Ok(answers),
            "{source}"
        );
    }
}

/// The shadow check is on in tests: a direct answer the interpreter cannot give (here
/// because the scope lacks the variable) panics, naming the expression only.
#[test]
#[should_panic(
    expected = "cel::Direct and the interpreter disagree on \"recipient.id == 'acme-repairs'\": the interpreter fails"
)]
fn a_direct_answer_the_interpreter_does_not_give_panics() {
    let recipient = recipient();
    let call = unparameterised();
    let request = call.request(&recipient);
    let nothing = Removed::default();
    let inputs = Inputs {
        request: &request,
        body: None,
        body_removed: &nothing,
        item: None,
        item_removed: &nothing,
        now: cel::date_time(request.now),
    };
    let expr = Expr::compile("recipient.id == 'acme-repairs'", false).unwrap();
    let functions = Functions::new("t", None);
    let empty = functions.root().new_inner_scope();
    let _ = holds(&expr, &inputs, &|| &empty);
}

/// The oracle asks the interpreter alone, and only on its own thread, for its own call.
#[test]
fn the_oracle_is_a_mode_of_one_call() {
    assert!(!oracle());
    assert!(as_oracle(oracle));
    assert!(!oracle());
    let _ = std::panic::catch_unwind(|| as_oracle(|| panic!("a failed case")));
    assert!(!oracle());
}
