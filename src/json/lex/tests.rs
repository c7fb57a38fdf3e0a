//! The token rules one by one, and against serde_json on single tokens.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use proptest::prelude::*;
use serde_json::Value;

use super::*;

/// What [`string`] makes of `text`: where it ends and whether it has escapes, or the message.
fn string_of(text: &[u8]) -> Result<(usize, bool), String> {
    string(text, 0).map_err(|e| e.to_string())
}

fn number_of(text: &str) -> Result<usize, String> {
    number(text.as_bytes(), 0).map_err(|e| e.to_string())
}

#[test]
fn white_space_is_the_four_of_rfc_8259() {
    for b in [b' ', b'\t', b'\n', b'\r'] {
        assert!(is_ws(b), "{b:#x}");
    }
    for b in [0x0b, 0x0c, 0xa0, b'x', 0] {
        assert!(!is_ws(b), "{b:#x}");
    }
    assert_eq!(skip_ws(b" \t\r\n1", 0), 4);
    assert_eq!(skip_ws(b"1 ", 1), 2);
    assert_eq!(skip_ws(b"\x0c1", 0), 0);
    assert_eq!(skip_ws(b"", 0), 0);
}

#[test]
fn every_escape_serde_json_knows_is_accepted() {
    for escape in [
        r#"\""#,
        r"\\",
        r"\/",
        r"\b",
        r"\f",
        r"\n",
        r"\r",
        r"\t",
        r"\u0000",
        r"\u0041",
        r"\u00e9",
        r"\u00E9",
        r"\uFFFF",
        r"\uffff",
        r"\ud83d\ude00",
        r"\uD83D\uDE00",
        r"\udbff\udfff",
        r"\ud800\udc00",
    ] {
        let text = format!("\"a{escape}b\" ");
        assert_eq!(
            string_of(text.as_bytes()),
            Ok((text.len() - 1, true)),
            "{escape}"
        );
        let undone = unescape(&text.as_bytes()[1..text.len() - 2]);
        let want: String = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(undone, want, "{escape}");
    }
}

#[test]
fn unknown_escapes_are_refused_where_they_are() {
    for (text, message) in [
        (r#""\x""#, "malformed json: invalid escape at byte 2"),
        (r#""\'""#, "malformed json: invalid escape at byte 2"),
        (r#""\U0041""#, "malformed json: invalid escape at byte 2"),
        (r#""\u12""#, "malformed json: invalid \\u escape at byte 3"),
        (
            r#""\u12g4""#,
            "malformed json: invalid \\u escape at byte 3",
        ),
        (
            r#""\u+123""#,
            "malformed json: invalid \\u escape at byte 3",
        ),
        ("\"\\", "malformed json: invalid escape at byte 2"),
    ] {
        assert_eq!(
            string_of(text.as_bytes()),
            Err(message.to_owned()),
            "{text}"
        );
    }
}

#[test]
fn surrogate_escapes_come_in_high_low_pairs() {
    for (text, message) in [
        (r#""\ud800""#, "lone surrogate in a string at byte 7"),
        (r#""\udc00""#, "lone surrogate in a string at byte 7"),
        (r#""\udfff\ud800""#, "lone surrogate in a string at byte 7"),
        (r#""\ud800\u0041""#, "lone surrogate in a string at byte 13"),
        (r#""\ud800\ud800""#, "lone surrogate in a string at byte 13"),
        (r#""\ud800x""#, "lone surrogate in a string at byte 7"),
        (r#""\ud800\n""#, "lone surrogate in a string at byte 7"),
        (r#""\ud800\u12""#, "invalid \\u escape at byte 9"),
    ] {
        assert_eq!(
            string_of(text.as_bytes()),
            Err(format!("malformed json: {message}")),
            "{text}"
        );
    }
}

#[test]
fn raw_control_characters_are_refused_and_delete_is_not() {
    for b in 0u8..0x20 {
        let text = [b'"', b'a', b, b'"'];
        assert_eq!(
            string_of(&text),
            Err("malformed json: control character in a string at byte 2".to_owned()),
            "{b:#x}"
        );
    }
    assert_eq!(string_of(b"\"\x7f\""), Ok((3, false)));
}

#[test]
fn utf8_is_checked_one_character_at_a_time() {
    for ok in [
        &b"\"caf\xc3\xa9\""[..],
        b"\"\xe2\x82\xac\"",
        b"\"\xf0\x9f\x98\x80\"",
        b"\"\xf4\x8f\xbf\xbf\"",
        b"\"\xed\x9f\xbf\"",
    ] {
        assert_eq!(string_of(ok), Ok((ok.len(), false)), "{ok:?}");
    }
    for (bad, at) in [
        (&b"\"\xff\""[..], 1),
        (b"\"a\xc3\"", 2),
        (b"\"\xc3(\"", 1),
        (b"\"\xc0\xaf\"", 1),
        (b"\"\xe0\x80\xaf\"", 1),
        (b"\"\xed\xa0\x80\"", 1),
        (b"\"\xf4\x90\x80\x80\"", 1),
        (b"\"\xf5\x80\x80\x80\"", 1),
        (b"\"\x80\"", 1),
        (b"\"\xe2\x82", 1),
    ] {
        assert_eq!(
            string_of(bad),
            Err(format!("malformed json: invalid utf-8 at byte {at}")),
            "{bad:?}"
        );
    }
}

#[test]
fn a_string_ends_at_its_closing_quote() {
    assert_eq!(string_of(br#""" x"#), Ok((2, false)));
    assert_eq!(string_of(br#""a\"b"x"#), Ok((6, true)));
    assert_eq!(string_of(br#""a\\"x"#), Ok((5, true)));
    assert_eq!(string(br#"[1,"ab"]"#, 3).unwrap(), (7, false));
    for open in [&br#""abc"#[..], br#"""#, br#""a\""#] {
        assert_eq!(
            string_of(open),
            Err(format!(
                "malformed json: unterminated string at byte {}",
                open.len()
            )),
            "{open:?}"
        );
    }
}

#[test]
fn string_end_resumes_across_frames() {
    let mut escape = false;
    assert_eq!(string_end(br#"ab"c"#, 0, &mut escape), Some(2));
    assert_eq!(string_end(br#"a\"b"c"#, 0, &mut escape), Some(4));
    assert_eq!(string_end(br#"a\\"c"#, 0, &mut escape), Some(3));
    assert_eq!(string_end(b"abc", 0, &mut escape), None);
    assert!(!escape);
    // A frame that ends on a backslash: the next frame's first byte is escaped.
    assert_eq!(string_end(br"ab\", 0, &mut escape), None);
    assert!(escape);
    assert_eq!(string_end(b"", 0, &mut escape), None);
    assert!(escape);
    assert_eq!(string_end(br#""x""#, 0, &mut escape), Some(2));
    assert!(!escape);
    // Every split of a string body finds the same end.
    let body = br#"a\\\"b\u0041\\"#;
    let whole = [&body[..], b"\"]"].concat();
    for cut in 0..=whole.len() {
        let (first, second) = whole.split_at(cut);
        let mut escape = false;
        let end = match string_end(first, 0, &mut escape) {
            Some(end) => end,
            None => cut + string_end(second, 0, &mut escape).unwrap(),
        };
        assert_eq!(end, body.len(), "cut at {cut}");
    }
}

#[test]
fn numbers_by_the_grammar() {
    for ok in [
        "0",
        "-0",
        "7",
        "-7",
        "10",
        "0.0",
        "-0.0",
        "1.0",
        "1.50",
        "0e0",
        "0E+0",
        "1e2",
        "1E-2",
        "1e+2",
        "-1.5e-3",
        "123456789012345678",
        "0.000001",
    ] {
        assert_eq!(number_of(ok), Ok(ok.len()), "{ok}");
    }
    // The token ends where the grammar does; what follows is the caller's.
    assert_eq!(number_of("12,"), Ok(2));
    assert_eq!(number_of("1.5]"), Ok(3));
    assert_eq!(number_of("1e5x"), Ok(3));
    assert_eq!(number_of("-0 "), Ok(2));
    assert_eq!(number(b"[1,-2]", 3).unwrap(), 5);
    for (bad, message) in [
        ("01", "leading zero in a number at byte 1"),
        ("-01", "leading zero in a number at byte 2"),
        ("00", "leading zero in a number at byte 1"),
        ("-", "invalid number at byte 1"),
        ("-a", "invalid number at byte 1"),
        ("+1", "invalid number at byte 0"),
        (".5", "invalid number at byte 0"),
        ("1.", "invalid number at byte 2"),
        ("1.e5", "invalid number at byte 2"),
        ("1e", "invalid number at byte 2"),
        ("1e+", "invalid number at byte 3"),
        ("1E-x", "invalid number at byte 3"),
        ("-.5", "invalid number at byte 1"),
    ] {
        assert_eq!(
            number_of(bad),
            Err(format!("malformed json: {message}")),
            "{bad}"
        );
    }
}

#[test]
fn numbers_serde_json_would_change_are_refused() {
    for ok in [
        "9007199254740993",
        "-9007199254740993",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551615",
        "1.0",
        "0.1",
        "1e308",
        "-1.7976931348623157e308",
        "1e-300",
        "5e-324",
        "0e-999",
        "0.000e-99999",
        "-0.0e0",
        "1.00000000000000000000000000001",
        "100000000000000000000.0",
        "1e20",
    ] {
        assert_eq!(number_of(ok), Ok(ok.len()), "{ok}");
    }
    for (bad, message) in [
        ("18446744073709551616", "integer beyond 64 bits"),
        ("-9223372036854775809", "integer beyond 64 bits"),
        ("100000000000000000001", "integer beyond 64 bits"),
        ("-18446744073709551615", "integer beyond 64 bits"),
        ("123e-10000000", "underflows to zero"),
        ("1e-400", "underflows to zero"),
        ("-2e-324", "underflows to zero"),
        ("0.0000001e-330", "underflows to zero"),
    ] {
        assert_eq!(
            number_of(bad),
            Err(format!(
                "number at byte 0 cannot be held exactly: {message}"
            )),
            "{bad}"
        );
    }
    for far in ["1e400", "-1e400", "1e309", "2e308"] {
        assert_eq!(
            number_of(far),
            Err("malformed json: number out of range at byte 0".to_owned()),
            "{far}"
        );
    }
    // The index in the error is the token's in the bytes read.
    assert_eq!(
        number(b"[1,1e-400]", 3).unwrap_err().to_string(),
        "number at byte 3 cannot be held exactly: underflows to zero"
    );
}

#[test]
fn literals() {
    assert_eq!(literal(b"true", 0), Some(4));
    assert_eq!(literal(b"false,", 0), Some(5));
    assert_eq!(literal(b"[null]", 1), Some(5));
    for bad in ["tru", "nul", "True", "NULL", "nan", "", "f"] {
        assert_eq!(literal(bad.as_bytes(), 0), None, "{bad}");
    }
    assert_eq!(literal(b"null", 4), None);
}

// === against serde_json ===

/// A number spelling, often one near a limit: digits of any length, a fraction, an exponent
/// near the ends of `f64`, a leading zero now and then.
pub(crate) fn number_text() -> impl Strategy<Value = String> {
    let int = prop_oneof![
        Just("0".to_owned()),
        "[1-9][0-9]{0,24}",
        "0[0-9]{1,3}",
        prop::sample::select(vec![
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "9007199254740993",
        ])
        .prop_map(str::to_owned),
    ];
    let frac = prop_oneof![Just(String::new()), "\\.[0-9]{0,20}"];
    let exp = prop_oneof![
        Just(String::new()),
        ("[eE]", "[+-]?", 0u32..400).prop_map(|(e, s, n)| format!("{e}{s}{n}")),
        ("[eE]", "[+-]?").prop_map(|(e, s)| format!("{e}{s}")),
    ];
    ("-?", int, frac, exp).prop_map(|(sign, int, frac, exp)| format!("{sign}{int}{frac}{exp}"))
}

/// A string token: plain characters, every escape, surrogate escapes paired and alone, raw
/// control characters.
pub(crate) fn string_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[ -!#-\\[\\]-~]{1,4}",
        "[\u{80}-\u{10ffff}]",
        prop::sample::select(vec![
            "\\\"",
            "\\\\",
            "\\/",
            "\\b",
            "\\f",
            "\\n",
            "\\r",
            "\\t",
            "\\u0041",
            "\\u00e9",
            "\\ud83d\\ude00",
            "\\ud800",
            "\\udc00",
            "\\ud800\\u0041",
            "\\x",
            "\\u12",
            "\t",
            "\u{1}",
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|pieces| format!("\"{}\"", pieces.concat()))
}

/// What serde_json makes of one token when it holds it exactly: `None` if it refuses the
/// token or would change it (an integer it keeps as a float, a non-zero float it reads as
/// zero).
pub(crate) fn serde_exact(token: &str) -> Option<Value> {
    let value: Value = serde_json::from_str(token).ok()?;
    if let Value::Number(n) = &value {
        let float = token.contains(['.', 'e', 'E']);
        // `-0` is the one integer serde_json holds as a float, and it holds it exactly.
        if !float && n.is_f64() && n.as_f64() != Some(0.0) {
            return None;
        }
        let mantissa = token.split(['e', 'E']).next().unwrap_or_default();
        if float && n.as_f64() == Some(0.0) && mantissa.contains(|c: char| ('1'..='9').contains(&c))
        {
            return None;
        }
    }
    Some(value)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// A number is accepted, whole, exactly when serde_json holds it exactly.
    #[test]
    fn numbers_as_serde_json_holds_them(text in number_text()) {
        let lexed = number(text.as_bytes(), 0);
        let want = serde_exact(&text);
        prop_assert_eq!(
            lexed.as_ref().ok() == Some(&text.len()),
            want.is_some(),
            "{} lexed {:?}",
            &text,
            lexed
        );
    }

    /// A string is accepted exactly when serde_json reads it, with serde_json's text.
    #[test]
    fn strings_as_serde_json_reads_them(text in string_text()) {
        let lexed = string(text.as_bytes(), 0);
        let want = serde_exact(&text);
        match (&lexed, &want) {
            (Ok((end, escaped)), Some(Value::String(s))) => {
                prop_assert_eq!(*end, text.len());
                prop_assert_eq!(*escaped, text.contains('\\'));
                let body = &text.as_bytes()[1..text.len() - 1];
                let got = if *escaped {
                    unescape(body)
                } else {
                    String::from_utf8(body.to_vec()).unwrap()
                };
                prop_assert_eq!(&got, s);
                let mut escape = false;
                prop_assert_eq!(string_end(text.as_bytes(), 1, &mut escape), Some(text.len() - 1));
            }
            (Err(_), None) => {}
            _ => prop_assert!(false, "{} lexed {:?}, serde_json {:?}", &text, lexed, want),
        }
    }
}
