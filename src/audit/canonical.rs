//! RFC 8785 (JCS) serialisation of a JSON value, written for the audit chain's hot path.
//!
//! The chain hashes and writes every record in its JCS form, and the writer thread does it for
//! every request in turn, so its cost is the ledger's ceiling. `serde_json_canonicalizer`
//! re-encodes every key to UTF-16 and sorts a fresh vector per object (16% of the gateway's
//! CPU under load, all of it on the one writer thread); this writes the same bytes directly.
//!
//! What JCS asks, and how it is met here:
//! - object members sorted by the UTF-16 code units of their keys. UTF-8 byte order is code
//!   point order, which differs from UTF-16 order only between a character at or above
//!   U+10000 and one in U+E000..U+FFFF; a key holding neither (no byte 0xEE or above) sorts
//!   the same both ways, so only such keys pay for the UTF-16 comparison.
//! - strings as serde_json escapes them: `\"`, `\\`, `\b \t \n \f \r`, other control
//!   characters as `\u00xx` in lower-case hex, everything else as it is.
//! - numbers as ECMAScript prints a double. Integers of at most 2^53 in magnitude print as
//!   their digits; any other number goes to `serde_json_canonicalizer`, whose ECMAScript
//!   formatting is the subtle part worth not rewriting.
//!
//! A property test checks every output against `serde_json_canonicalizer`, byte for byte.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// The largest integer a double holds exactly; beyond it ECMAScript may print other digits.
const MAX_SAFE_INTEGER: u64 = 1 << 53;

/// The JCS form of `value`.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, value)?;
    Ok(out)
}

/// Appends the JCS form of `value` to `out`.
pub fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), serde_json::Error> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_string(out, s)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map, |_, _| {})?,
    }
    Ok(())
}

/// Appends the JCS form of `map`, calling `at_member(key, offset)` with the offset in `out`
/// where each member (its key's opening quote) starts, so the chain can find its own fields.
pub fn write_object(
    out: &mut Vec<u8>,
    map: &Map<String, Value>,
    mut at_member: impl FnMut(&str, usize),
) -> Result<(), serde_json::Error> {
    out.push(b'{');
    for (i, (key, value)) in sorted(map).into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        at_member(key, out.len());
        write_string(out, key)?;
        out.push(b':');
        write_value(out, value)?;
    }
    out.push(b'}');
    Ok(())
}

/// Appends `s` as a JSON string, escaped as JCS asks (which is how serde_json escapes).
pub fn write_string(out: &mut Vec<u8>, s: &str) -> Result<(), serde_json::Error> {
    serde_json::to_writer(out, s)
}

fn write_number(out: &mut Vec<u8>, n: &Number) -> Result<(), serde_json::Error> {
    let safe = n
        .as_u64()
        .filter(|u| *u <= MAX_SAFE_INTEGER)
        .map(|u| u.to_string())
        .or_else(|| {
            n.as_i64()
                .filter(|i| i.unsigned_abs() <= MAX_SAFE_INTEGER)
                .map(|i| i.to_string())
        });
    match safe {
        Some(digits) => out.extend_from_slice(digits.as_bytes()),
        None => out.extend_from_slice(&serde_json_canonicalizer::to_vec(&Value::Number(
            n.clone(),
        ))?),
    }
    Ok(())
}

/// The members of `map` in JCS order.
fn sorted(map: &Map<String, Value>) -> Vec<(&str, &Value)> {
    let mut members: Vec<(&str, &Value)> = map.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let byte_order_is_utf16_order = members.iter().all(|(k, _)| k.bytes().all(|b| b < 0xEE));
    if byte_order_is_utf16_order {
        // A serde_json map already iterates in byte order; this only checks it.
        members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    } else {
        members.sort_unstable_by(|a, b| utf16_order(a.0, b.0));
    }
    members
}

fn utf16_order(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(value: &Value) -> Vec<u8> {
        serde_json_canonicalizer::to_vec(value).unwrap()
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_]{0,8}",
            // Characters around the UTF-16 / code point order difference, and escapes.
            proptest::collection::vec(
                prop_oneof![
                    Just('a'),
                    Just('\u{7f}'),
                    Just('\u{e000}'),
                    Just('\u{ffff}'),
                    Just('\u{10000}'),
                    Just('\u{1f600}'),
                    Just('\u{1}'),
                    Just('"'),
                    Just('\\'),
                    Just('\u{2028}'),
                    any::<char>(),
                ],
                0..5
            )
            .prop_map(|cs| cs.into_iter().collect()),
        ]
    }

    fn number() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-(1i64 << 53)..=(1i64 << 53)).prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            number(),
            key().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(key(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// The same bytes as the reference implementation, for any value.
        #[test]
        fn matches_serde_json_canonicalizer(v in value()) {
            prop_assert_eq!(to_vec(&v).unwrap(), reference(&v));
        }
    }

    #[test]
    fn orders_keys_by_utf16_code_units_not_code_points() {
        // U+E000 sorts after U+1F600 in UTF-16 (0xD83D < 0xE000), before it by code point.
        let v = serde_json::json!({ "\u{e000}": 1, "\u{1f600}": 2, "a": 3 });
        let text = String::from_utf8(to_vec(&v).unwrap()).unwrap();
        assert_eq!(text, "{\"a\":3,\"\u{1f600}\":2,\"\u{e000}\":1}");
        assert_eq!(to_vec(&v).unwrap(), reference(&v));
    }

    #[test]
    fn large_integers_and_fractions_print_as_ecmascript_does() {
        for text in [
            "9007199254740993",
            "1e21",
            "0.1",
            "-0.0",
            "123456789012345678901",
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(to_vec(&v).unwrap(), reference(&v), "{text}");
        }
    }
}
