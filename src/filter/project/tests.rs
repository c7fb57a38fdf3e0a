//! The projector against `decide`: the same bytes out, the same paths recorded, the same
//! subjects and rule errors, and the same elements refused.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::filter::{decide, Request};
use crate::json::lex::tests as lex_tests;
use crate::json::parse_strict;
use crate::json::split::{self, Splitter};
use crate::rules::{Policy, Route};
use crate::test_util::{policy, sample_tenants, shipped_rules, Call};

/// Rules that use every construct the projector takes: nested allow paths, `[]` inside an
/// element, a granted subtree, a `when`, an `items` rule that can err, derived fields (one
/// replacing an upstream key, one that can err) and subjects through a nested key.
const ROUTES: &str = r#"
[[route]]
method = "GET"
path = "/tenants"
subjects = ["[].id", "[].ref.id"]
# Elements are compared one by one; whether a response names its subjects is the stream's.
subjects_optional = true
allow = ["[].a", "[].b.c", "[].b.d[].e", "[].l[]", "[].n", "[].g"]

[[route.when]]
condition = "recipient.id == 'acme-repairs'"
reason = "acme"
allow = ["[].w", "[].b.x"]

[[route.items]]
path = "[]"
keep = "item.k != 'drop'"

[[route.derive]]
field = "[].dv"
value = "mask(item.a)"

[[route.derive]]
field = "[].n"
value = "pseudonym(item.id)"
"#;

/// What one path made of an element: the bytes sent (`None`: not sent), the paths, the
/// subjects and the rule errors; `Err` when the element was refused.
type Made = Result<
    (
        Option<Vec<u8>>,
        Vec<String>,
        Vec<String>,
        Vec<String>,
        Vec<String>,
    ),
    (),
>;

fn by_decide(route: &Route, request: &Request<'_>, bytes: &[u8], depth: usize) -> Made {
    let element = parse_strict(bytes, depth).map_err(|_| ())?;
    let out = decide(&route.plan, request, &Value::Array(vec![element]), false);
    if out.unidentified {
        return Err(());
    }
    let sent = match out.body {
        Some(Value::Array(mut items)) => items.pop().map(|v| serde_json::to_vec(&v).unwrap()),
        other => panic!("a streamed route always gives an array, not {other:?}"),
    };
    Ok((
        sent,
        out.disclosed.into_iter().collect(),
        out.withheld.into_iter().collect(),
        out.subjects,
        out.rule_errors,
    ))
}

/// `None` when the projector hands the element back to `decide` (not an object).
fn by_projector(
    projector: &mut Projector<'_>,
    rules: &PerElement<'_>,
    bytes: &[u8],
) -> Option<Made> {
    let mut seen = Seen::default();
    let mut errors = BTreeSet::new();
    let sent = match projector.element(bytes, rules, &mut seen, &mut errors) {
        Err(_) | Ok(Verdict::Unidentified) => return Some(Err(())),
        Ok(Verdict::NotAnObject) => return None,
        Ok(Verdict::Dropped) => None,
        Ok(Verdict::Sent(out)) => Some(out.to_vec()),
    };
    Some(Ok((
        sent,
        seen.disclosed.into_sorted().into_iter().collect(),
        seen.withheld.into_sorted().into_iter().collect(),
        seen.subjects.into_iter().collect(),
        errors.into_iter().collect(),
    )))
}

/// Runs `elements` through both paths for `recipient` on the first route of `policy`.
fn compare(policy: &Policy, recipient: &str, elements: &[Vec<u8>], depth: usize) -> usize {
    let recipient = policy.recipient(recipient).unwrap();
    let route = &recipient.kind.routes[0];
    let call = Call::tenants();
    let request = call.request(recipient);
    let rules = PerElement::new(&route.plan, &request);
    let mut when_errors = BTreeSet::new();
    let (mask, _) = rules.whens(&mut when_errors);
    let tree = rules.tree(mask);
    let mut projector =
        Projector::new(&route.plan, tree, depth).expect("the route takes the projector");
    let mut compared = 0;
    for bytes in elements {
        let Some(projected) = by_projector(&mut projector, &rules, bytes) else {
            continue;
        };
        let decided = by_decide(route, &request, bytes, depth);
        assert_eq!(
            projected,
            decided,
            "element {:?}",
            String::from_utf8_lossy(bytes)
        );
        compared += 1;
    }
    compared
}

/// The shipped rules, and the sample API's tenants as `/tenants` sends them.
fn shipped_export() -> (Policy, Vec<Vec<u8>>) {
    (shipped_rules(), sample_tenants())
}

fn routes_policy() -> Policy {
    policy(ROUTES)
}

#[test]
fn the_shipped_research_export_is_filtered_as_decide_filters_it() {
    let (policy, elements) = shipped_export();
    assert!(elements.len() > 10);
    let compared = compare(&policy, "civic-surveys", &elements, 63);
    assert_eq!(compared, elements.len());
}

#[test]
fn hostile_elements_are_refused_as_parse_strict_refuses_them() {
    let policy = routes_policy();
    let cases: Vec<&str> = vec![
        r#"{"a":1,"a":2}"#,
        r#"{"a":1,"\u0061":2}"#,
        r#"{"b":{"c":1,"c":2}}"#,
        r#"{"x":{"deep":{"y":1,"y":1}}}"#,
        r#"{"a":"\ud800"}"#,
        r#"{"a":"\udc00"}"#,
        r#"{"a":"\ud800\u0041"}"#,
        r#"{"a":"\x"}"#,
        r#"{"a":"\u12"}"#,
        "{\"a\":\"tab\there\"}",
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":.5}"#,
        r#"{"a":-}"#,
        r#"{"a":1e}"#,
        r#"{"a":1e400}"#,
        r#"{"a":-1e400}"#,
        r#"{"a":123e-10000000}"#,
        r#"{"a":100000000000000000001}"#,
        r#"{"a":-9223372036854775809}"#,
        r#"{"a":18446744073709551616}"#,
        r#"{"a":1,}"#,
        r#"{"a":[1,]}"#,
        r#"{"a":[1 2]}"#,
        r#"{"a" 1}"#,
        r#"{a:1}"#,
        r#"{'a':1}"#,
        r#"{"a":tru}"#,
        r#"{"a":NaN}"#,
        r#"{"a":1} x"#,
        r#"{"a":1}}"#,
        r#"{"a":"unterminated}"#,
        r#"{"a":[}"#,
        "{\"a\":\u{000c}1}",
        r#"{"k":"drop","a":1,"a":1}"#,
        // Accepted by both.
        r#"{"a":18446744073709551615}"#,
        r#"{"a":-9223372036854775808}"#,
        r#"{"a":1e-7,"g":[1.5,-0,0.0,1E+2]}"#,
        r#"{"a":"\ud83d\ude00 \/ \" \\ \u00e9"}"#,
        " \t\r\n{\"a\" : 1 } \n",
    ];
    let mut elements: Vec<Vec<u8>> = cases.iter().map(|c| c.as_bytes().to_vec()).collect();
    for utf8 in [
        &b"{\"a\":\"\xff\"}"[..],
        b"{\"a\":\"\xc3\"}",
        b"{\"a\":\"\xc0\xaf\"}",
        b"{\"a\":\"\xed\xa0\x80\"}",
        b"{\"a\":\"\xf4\x90\x80\x80\"}",
        b"{\"a\":\"\xe2\x82\"}",
        b"{\"\xc3(\":1}",
        b"{\"a\":1\xc3\xa9}",
        b"{\"a\":\"\xf0\x9f\x98\x80 caf\xc3\xa9 \xe2\x82\xac\"}",
        b"{\"\xc3\xa9\":\"\xc3\xa9\",\"b\":{\"c\":\"\xe2\x82\xac\"}}",
    ] {
        elements.push(utf8.to_vec());
    }
    let deep = format!("{{\"g\":{}{}}}", "[".repeat(70), "]".repeat(70));
    elements.push(deep.into_bytes());
    let compared = compare(&policy, "acme-repairs", &elements, 63);
    assert_eq!(compared, elements.len());
}

#[test]
fn large_objects_find_duplicates_too() {
    let policy = routes_policy();
    let keys: Vec<String> = (0..200).map(|i| format!("\"k{i}\":{i}")).collect();
    let unique = format!("{{{}}}", keys.join(","));
    let duplicated = format!("{{{},\"k7\":0}}", keys.join(","));
    let escaped = format!("{{{},\"\\u006b150\":0}}", keys.join(","));
    let elements = vec![
        unique.into_bytes(),
        duplicated.into_bytes(),
        escaped.into_bytes(),
    ];
    assert_eq!(compare(&policy, "acme-repairs", &elements, 63), 3);
}

// === random elements ===

/// JSON text for a scalar, in the spellings serde_json reads differently from how it writes.
fn scalar_text() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "null",
        "true",
        "false",
        "0",
        "-0",
        "7",
        "-12",
        "1.5",
        "1.50",
        "1e2",
        "1E+2",
        "-0.0",
        "2.5e-3",
        "123456789012345678",
        "12345678901234567890",
        "-9223372036854775808",
        "\"\"",
        "\"x\"",
        "\"drop\"",
        "\"T-1\"",
        "\"a\\\"b\"",
        "\"\\u00e9\"",
        "\"\\/\"",
        "\"é\"",
        "\"\\ud83d\\ude00\"",
        "\"tab\\t\"",
        "\"\\u0000\"",
    ])
    .prop_map(str::to_owned)
}

/// Keys the rules name, keys they do not, and escaped spellings of both.
fn key_text() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a", "b", "c", "d", "e", "g", "k", "l", "n", "w", "x", "id", "ref", "dv", "zz", "\\u0061",
        "q\\\"q", "sp ace", "é",
    ])
    .prop_map(|k| format!("\"{k}\""))
}

fn json_text() -> impl Strategy<Value = String> {
    scalar_text().prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((key_text(), inner), 0..6).prop_map(|entries| {
                let body: Vec<String> = entries
                    .into_iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect();
                format!("{{{}}}", body.join(" ,"))
            }),
        ]
    })
}

/// An element: an object, mostly of the keys the rules name.
fn element_text() -> impl Strategy<Value = String> {
    prop::collection::vec((key_text(), json_text()), 0..9).prop_map(|entries| {
        let body: Vec<String> = entries
            .into_iter()
            .map(|(k, v)| format!("{k} : {v}"))
            .collect();
        format!("{{{}}}", body.join(","))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the element, both paths send the same bytes and record the same, or both
    /// refuse it; for both recipients (the `when` holds for one).
    #[test]
    fn random_elements_are_filtered_as_decide_filters_them(text in element_text()) {
        let policy = routes_policy();
        let elements = vec![text.into_bytes()];
        for recipient in ["acme-repairs", "brightfix"] {
            compare(&policy, recipient, &elements, 63);
        }
    }

    /// A byte changed anywhere: both paths still agree on whether the element is JSON.
    #[test]
    fn damaged_elements_are_refused_as_decide_refuses_them(
        text in element_text(),
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(b"{}[],:\"\\ 0159eE.-+tufnlx\x01\x7f\xc3".to_vec()),
    ) {
        let policy = routes_policy();
        let mut bytes = text.into_bytes();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        compare(&policy, "acme-repairs", &[bytes], 63);
    }

    /// Nesting limits are the same, whatever the limit.
    #[test]
    fn nesting_limits_agree(text in element_text(), depth in 1usize..6) {
        let policy = routes_policy();
        compare(&policy, "acme-repairs", &[text.into_bytes()], depth);
    }
}

// === the readers of upstream JSON against serde_json ===

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// One token (a number or a string, exact or not), where each reader meets it: the
    /// strict parser, the splitter at any frame boundaries, and the element filter at a key
    /// it sends, one a rule reads and one it only checks. Where serde_json holds the token
    /// exactly, every reader takes it as serde_json reads it; elsewhere every one refuses.
    #[test]
    fn the_readers_agree_with_serde_json_where_it_is_exact(
        token in prop_oneof![lex_tests::number_text(), lex_tests::string_text()],
        chunk in 1usize..24,
    ) {
        let want = lex_tests::serde_exact(&token);
        let element = format!(r#"{{"a":{token},"k":{token},"z":[{token}]}}"#);
        let want_element = want.clone().map(|v| serde_json::json!({"a": v, "k": v, "z": [v]}));
        prop_assert_eq!(parse_strict(element.as_bytes(), 63).ok(), want_element.clone());
        // The element filter sends what `decide` sends of that parse, or refuses with it.
        prop_assert_eq!(compare(&routes_policy(), "acme-repairs", &[element.clone().into_bytes()], 63), 1);

        let body = format!("[{element}, {token}]");
        let mut splitter = Splitter::new(64, 1 << 20);
        let mut pieces = Vec::new();
        for frame in body.as_bytes().chunks(chunk) {
            splitter
                .feed_bytes(frame, |e| {
                    pieces.push(String::from_utf8_lossy(e).into_owned());
                    Ok::<_, split::Error>(())
                })
                .unwrap();
        }
        splitter.finish().unwrap();
        prop_assert_eq!(pieces, vec![element, format!(" {token}")]);
        let mut splitter = Splitter::new(64, 1 << 20);
        let mut values = Vec::new();
        let fed = body.as_bytes().chunks(chunk).try_for_each(|frame| {
            splitter.feed(frame, |v| {
                values.push(v);
                Ok::<_, split::Error>(())
            })
        });
        match (fed, want_element, want) {
            (Ok(()), Some(element), Some(token)) => prop_assert_eq!(values, vec![element, token]),
            (Err(_), None, None) => {}
            (fed, _, want) => prop_assert!(false, "{:?} split as {:?}, serde_json {:?}", body, fed, want),
        }
    }
}

/// Time per element on the shipped research export, for profiling; not a pass/fail test.
/// `cargo test --release --lib project::tests::timing -- --ignored --nocapture`
#[test]
#[ignore = "prints a timing"]
fn timing() {
    let (policy, elements) = shipped_export();
    let recipient = policy.recipient("civic-surveys").unwrap();
    let route = &recipient.kind.routes[0];
    let call = Call::tenants();
    let request = call.request(recipient);
    let rules = PerElement::new(&route.plan, &request);
    let (mask, _) = rules.whens(&mut BTreeSet::new());
    let tree = rules.tree(mask);
    let mut projector = Projector::new(&route.plan, tree, 63).unwrap();
    let bytes: usize = elements.iter().map(Vec::len).sum();
    let wanted: usize = std::env::var("TIMING_ELEMENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let rounds = wanted / elements.len() + 1;
    let start = std::time::Instant::now();
    let mut seen = Seen::default();
    for _ in 0..rounds {
        for e in &elements {
            let mut errors = BTreeSet::new();
            let _ = projector
                .element(e, &rules, &mut seen, &mut errors)
                .unwrap();
        }
    }
    let took = start.elapsed();
    let n = rounds * elements.len();
    println!(
        "projector: {:.2} µs per element, {:.0} MB/s ({n} elements of {} B on average)",
        took.as_secs_f64() * 1e6 / n as f64,
        (bytes * rounds) as f64 / took.as_secs_f64() / 1e6,
        bytes / elements.len()
    );
}
