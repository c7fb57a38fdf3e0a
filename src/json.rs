//! Strict parsing of upstream bodies.
//!
//! The filter decides what a recipient sees from the parsed body, so the parse must mean one
//! thing only. `serde_json::Value` keeps the last of two equal keys; another reader (the
//! recipient's, a logging pipeline) may keep the first, so `{"name": "ok", "name": "secret"}`
//! could be filtered as one document and read as another. This parser refuses such a body,
//! and bodies nested deeper than the gateway is willing to walk, instead of guessing; the
//! pipeline answers 502 and no byte of the body leaves.
pub mod split;

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

pub(crate) mod lex;

/// Why an upstream body was refused.
///
/// No variant carries any byte of the document: bodies hold personal data, and errors end
/// up in logs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("malformed json: {0}")]
    Malformed(String),
    #[error("duplicate key in object")]
    DuplicateKey,
    #[error("nesting deeper than {0}")]
    TooDeep(usize),
    #[error("number at byte {0} cannot be held exactly: {1}")]
    InexactNumber(usize, &'static str),
}

/// The deepest nesting serde_json itself accepts: it counts 128 levels down from the top and
/// fails on reaching zero, so 127 nested containers parse and 128 do not. A larger
/// `max_depth` is capped here, which keeps the stack bounded whatever the caller asks for.
pub const SERDE_JSON_MAX_DEPTH: usize = 127;

/// The nesting limit the gateway uses for upstream bodies.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Parses `bytes` as one JSON document, refusing duplicate keys at any depth and nesting
/// deeper than `max_depth`.
///
/// Depth counts containers: a scalar is depth 0, `[]` and `{}` depth 1, `[[]]` depth 2. The
/// depth is checked on entering a container, before its contents are parsed, so a long run
/// of `[[[[` is refused after `max_depth + 1` brackets with the stack still shallow.
/// `max_depth` above [`SERDE_JSON_MAX_DEPTH`] acts as that limit.
///
/// # Errors
///
/// - [`Error::Malformed`]: not UTF-8, not JSON (trailing comma, single quotes, `NaN`,
///   leading zeros, raw control characters in a string, a byte-order mark...), a lone
///   surrogate escape, a number outside `f64`, or anything but white space after the value.
/// - [`Error::DuplicateKey`]: two keys of one object are equal once unescaped.
/// - [`Error::TooDeep`]: nesting deeper than the (capped) `max_depth`.
/// - [`Error::InexactNumber`]: a number serde_json would change (`json::lex` has the rule).
pub fn parse_strict(bytes: &[u8], max_depth: usize) -> Result<Value, Error> {
    let max_depth = max_depth.min(SERDE_JSON_MAX_DEPTH);
    // serde_json checks UTF-8 inside strings only when it reads them; checking the whole
    // input first makes "invalid UTF-8" one rule with one message.
    let text =
        std::str::from_utf8(bytes).map_err(|e| lex::malformed("invalid utf-8", e.valid_up_to()))?;
    let refusal = Cell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = StrictValue {
        depth: 0,
        max_depth,
        refusal: &refusal,
    };
    let parsed = seed.deserialize(&mut de).and_then(|value| {
        de.end()?;
        Ok(value)
    });
    match parsed {
        Ok(value) => {
            check_numbers(text)?;
            Ok(value)
        }
        // Our own refusals travel through serde_json as a custom error; the cell says which.
        Err(e) => Err(refusal
            .take()
            .map(Error::from)
            .unwrap_or_else(|| malformed(&e, max_depth))),
    }
}

/// Refuses the numbers serde_json would silently change, by the rule of [`lex::number`].
///
/// Runs on text that has already parsed, so strings need only be delimited, and a token is
/// a number exactly when it starts with `-` or a digit outside a string.
fn check_numbers(text: &str) -> Result<(), Error> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let mut escape = false;
                i = lex::string_end(bytes, i + 1, &mut escape).map_or(bytes.len(), |end| end + 1);
            }
            b'-' | b'0'..=b'9' => i = lex::number(bytes, i)?,
            _ => i += 1,
        }
    }
    Ok(())
}

/// Describes a serde_json error without the document: syntax and end-of-input errors are
/// fixed phrases plus a position; a data error could quote a value, so it is not repeated.
fn malformed(e: &serde_json::Error, max_depth: usize) -> Error {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => {
            let text = e.to_string();
            // serde_json's own limit, reached only when `max_depth` is at the cap.
            if text.starts_with("recursion limit exceeded") {
                Error::TooDeep(max_depth)
            } else {
                Error::Malformed(text)
            }
        }
        Category::Data | Category::Io => Error::Malformed(format!(
            "invalid data at line {} column {}",
            e.line(),
            e.column()
        )),
    }
}

/// Why the visitor stopped, kept beside the parse because serde's error type only carries
/// text.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    DuplicateKey,
    TooDeep(usize),
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::DuplicateKey => Error::DuplicateKey,
            Refusal::TooDeep(max) => Error::TooDeep(max),
        }
    }
}

// === impl StrictValue ===

/// Builds a `Value` like serde_json's own, but with the depth of the value it is about to
/// read and a place to say why it refused.
#[derive(Clone, Copy)]
struct StrictValue<'r> {
    /// Containers enclosing the value being read.
    depth: usize,
    max_depth: usize,
    refusal: &'r Cell<Option<Refusal>>,
}

impl StrictValue<'_> {
    fn refuse<E: de::Error>(&self, refusal: Refusal) -> E {
        self.refusal.set(Some(refusal));
        E::custom("refused")
    }

    /// Called on entering a container, before reading anything inside it.
    fn enter<E: de::Error>(&self) -> Result<Self, E> {
        let depth = self.depth + 1;
        if depth > self.max_depth {
            return Err(self.refuse(Refusal::TooDeep(self.max_depth)));
        }
        Ok(Self { depth, ..*self })
    }
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a json value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // serde_json already refuses 1e400 ("number out of range"); a non-finite float
        // cannot be a JSON number, so refuse rather than turn it into null.
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // Keys are compared unescaped, so `"a"` and `"\u0061"` are the same key. One
            // lookup per key: the vacant entry is where the value goes.
            match object.entry(key) {
                serde_json::map::Entry::Occupied(_) => {
                    return Err(self.refuse(Refusal::DuplicateKey));
                }
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(map.next_value_seed(inner)?);
                }
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(text: &str) -> Result<Value, Error> {
        parse_strict(text.as_bytes(), DEFAULT_MAX_DEPTH)
    }

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn refuses_numbers_it_cannot_hold_exactly() {
        for text in [
            "[100000000000000000000]",
            "[-237462374673276894279832749832423479823246327846]",
            "[123e-10000000]",
            "{\"a\": [\"x\\\"1\", 1.5e-400]}",
        ] {
            assert!(
                matches!(parse(text), Err(Error::InexactNumber(..))),
                "{text}: {:?}",
                parse(text)
            );
        }
        for text in [
            "[18446744073709551615, -9223372036854775808, 0e-999, 0.0, 1e-300, 2.5]",
            "[\"100000000000000000000\", \"1e-99999\"]",
        ] {
            assert!(parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn parses_what_serde_json_parses() {
        let text = r#" {"id": "J1", "n": -1.5e3, "big": 18446744073709551615, "neg": -9,
            "ok": true, "none": null, "list": [1, "two", {"three": [3]}],
            "esc": "caf\u00e9 \ud83d\ude00 \"q\"", "empty": {}, "nothing": []} "#;
        let value = parse(text).unwrap();
        let want: Value = serde_json::from_str(text).unwrap();
        assert_eq!(value, want);
        assert_eq!(value["esc"], json!("café 😀 \"q\""));
        assert_eq!(parse("0").unwrap(), json!(0));
        assert_eq!(parse("\"x\"").unwrap(), json!("x"));
        assert_eq!(parse("null\n\t\r ").unwrap(), Value::Null);
    }

    #[test]
    fn refuses_duplicate_keys_at_the_top() {
        assert!(matches!(
            parse(r#"{"a": 1, "a": 2}"#),
            Err(Error::DuplicateKey)
        ));
        assert!(matches!(
            parse(r#"{"a": 1, "b": 0, "a": 1}"#),
            Err(Error::DuplicateKey)
        ));
    }

    #[test]
    fn refuses_duplicate_keys_nested_in_an_array_element() {
        let text = r#"{"tenant": {"access_needs": [{"code": "A"},
            {"code": "B", "description": "ok", "description": "secret"}]}}"#;
        assert!(matches!(parse(text), Err(Error::DuplicateKey)));
        assert!(matches!(
            parse(r#"[[{"x": {"y": 1, "y": 1}}]]"#),
            Err(Error::DuplicateKey)
        ));
    }

    #[test]
    fn refuses_keys_equal_once_unescaped() {
        assert!(matches!(
            parse(r#"{"a": 1, "\u0061": 2}"#),
            Err(Error::DuplicateKey)
        ));
        assert!(matches!(
            parse(r#"{"é": 1, "\u00e9": 2}"#),
            Err(Error::DuplicateKey)
        ));
    }

    #[test]
    fn equal_keys_in_different_objects_are_fine() {
        let value = parse(r#"[{"a": 1}, {"a": 2}, {"b": {"a": 3}, "a": 4}]"#).unwrap();
        assert_eq!(value[2]["a"], json!(4));
        // Keys differing only in case are different keys.
        assert!(parse(r#"{"a": 1, "A": 2}"#).is_ok());
    }

    #[test]
    fn depth_counts_containers() {
        assert!(parse_strict(b"1", 0).is_ok());
        assert!(matches!(parse_strict(b"[]", 0), Err(Error::TooDeep(0))));
        assert!(parse_strict(b"[]", 1).is_ok());
        assert!(parse_strict(b"{}", 1).is_ok());
        assert!(parse_strict(b"[[]]", 2).is_ok());
        assert!(matches!(parse_strict(b"[[]]", 1), Err(Error::TooDeep(1))));
        assert!(matches!(
            parse_strict(br#"{"a": {"b": []}}"#, 2),
            Err(Error::TooDeep(2))
        ));
        assert!(parse_strict(br#"{"a": {"b": []}}"#, 3).is_ok());
        assert!(parse_strict(br#"[1, [2], {"a": 3}]"#, 2).is_ok());
    }

    #[test]
    fn default_depth_limit() {
        assert!(parse(&nested(64)).is_ok());
        assert!(matches!(parse(&nested(65)), Err(Error::TooDeep(64))));
    }

    #[test]
    fn limit_above_serde_json_cap_is_capped() {
        assert!(parse_strict(nested(127).as_bytes(), 1000).is_ok());
        assert!(matches!(
            parse_strict(nested(128).as_bytes(), 1000),
            Err(Error::TooDeep(SERDE_JSON_MAX_DEPTH))
        ));
        assert!(matches!(
            parse_strict(nested(128).as_bytes(), 127),
            Err(Error::TooDeep(127))
        ));
    }

    #[test]
    fn a_megabyte_of_open_brackets_is_refused_without_overflow() {
        let text = "[".repeat(1 << 20);
        assert!(matches!(parse(&text), Err(Error::TooDeep(64))));
        let text = "{\"a\":".repeat(200_000);
        assert!(matches!(parse(&text), Err(Error::TooDeep(64))));
        let text = "[".repeat(1 << 20);
        assert!(matches!(
            parse_strict(text.as_bytes(), usize::MAX),
            Err(Error::TooDeep(SERDE_JSON_MAX_DEPTH))
        ));
    }

    #[test]
    fn refuses_anything_after_the_document() {
        for text in ["{} {}", "1 2", "[] x", "{}\u{0}", "\"a\"\"b\"", "{},"] {
            assert!(matches!(parse(text), Err(Error::Malformed(_))), "{text:?}");
        }
    }

    #[test]
    fn refuses_invalid_utf8() {
        for bytes in [
            &b"\"\xff\""[..],
            b"\"\xc3\x28\"",
            b"{\"a\xed\xa0\x80\": 1}",
            b"\xfe",
        ] {
            let err = parse_strict(bytes, DEFAULT_MAX_DEPTH).unwrap_err();
            assert!(matches!(err, Error::Malformed(_)), "{bytes:?}");
        }
    }

    #[test]
    fn refuses_lone_surrogates() {
        for text in [
            r#""\ud800""#,
            r#""\udc00""#,
            r#"{"\ud83d": 1}"#,
            r#""\ud800\u0041""#,
        ] {
            assert!(matches!(parse(text), Err(Error::Malformed(_))), "{text:?}");
        }
    }

    #[test]
    fn refuses_numbers_outside_f64() {
        for text in ["1e400", "-1e400", "[1e999]"] {
            assert!(matches!(parse(text), Err(Error::Malformed(_))), "{text:?}");
        }
    }

    /// A selection of JSONTestSuite `n_*` cases (https://github.com/nst/JSONTestSuite).
    #[test]
    fn refuses_json_test_suite_must_reject_cases() {
        let cases = [
            "",
            " ",
            "[1,]",
            r#"{"a": 1,}"#,
            "['single']",
            "{'a': 1}",
            r#"{"a" 1}"#,
            r#"{"a": 1 "b": 2}"#,
            "[NaN]",
            "[Infinity]",
            "[-Infinity]",
            "[01]",
            "[-01]",
            "[1.]",
            "[.1]",
            "[+1]",
            "[0x1]",
            "[\"a\u{0}b\"]",
            "[\"tab\there\"]",
            "[\"new\nline\"]",
            "\u{feff}{}",
            "[\"\\x41\"]",
            "[\"\\u12\"]",
            "[1 2]",
            "{\"a\":}",
            "{1: 2}",
            "[",
            "{",
            "\"open",
            "[true, fals]",
            "nul",
            "/* comment */ {}",
            "[1] // comment",
        ];
        for text in cases {
            assert!(matches!(parse(text), Err(Error::Malformed(_))), "{text:?}");
        }
    }

    #[test]
    fn malformed_message_does_not_echo_the_document() {
        let secret = "AB12CDE-secret";
        let texts = [
            format!(r#"{{"ni": "{secret}",}}"#),
            format!(r#"{{"ni": '{secret}'}}"#),
            format!(r#"{{"ni": "{secret}"}} {secret}"#),
            format!(r#"{{"{secret}" 1}}"#),
            format!("[{secret}]"),
        ];
        for text in &texts {
            let err = parse(text).unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, Error::Malformed(_)), "{message}");
            assert!(!message.contains("AB12"), "{message}");
            assert!(message.contains("line"), "{message}");
        }
    }

    #[test]
    fn error_messages_are_lowercase() {
        assert_eq!(Error::DuplicateKey.to_string(), "duplicate key in object");
        assert_eq!(Error::TooDeep(64).to_string(), "nesting deeper than 64");
        let err = parse("[1,]").unwrap_err().to_string();
        assert!(err.starts_with("malformed json: trailing comma"), "{err}");
    }
}
