//! The text functions rules call: `normalize` to compare codes however the housing system
//! spelt their dashes and spaces, and `postcode_district` to cut an address down to the
//! district. Each is one function on `&str`, called by the CEL version and by
//! [`Functions::call_direct`](super::Functions::call_direct) alike, so the two cannot differ.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// `text` in NFKC, with every Unicode dash (the Pd category, and U+2212 MINUS SIGN) as ASCII
/// `-` and every Unicode space (White_Space: the Zs category, tabs, line breaks) as ASCII
/// ` `, runs of spaces collapsed to one, trimmed.
///
/// Why: a code typed in a word processor comes back as `VIO‑01` (U+2011, a non-breaking
/// hyphen) or `VIO 01` with a no-break space, and a rule comparing it with `'VIO-01'` would
/// silently not match. NFKC first folds compatibility forms (full-width `Ｖ`, `ﬁ`, the
/// small and full-width hyphens) so the folds below see one spelling of each character.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.nfkc() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(if is_dash(c) { '-' } else { c });
    }
    out
}

/// The Pd (dash punctuation) category, and U+2212 MINUS SIGN (category Sm), which is how a
/// minus or a dash often arrives from a spreadsheet.
fn is_dash(c: char) -> bool {
    c == '\u{2212}' || c.general_category() == GeneralCategory::DashPunctuation
}

/// The outward code of the last UK postcode in `text` (`LS6` from
/// `12  Hill Rd, Leeds ls6 2ab`), or `None` when there is none.
///
/// A postcode is an outward code (`A9`, `A99`, `AA9`, `AA99`, `A9A` or `AA9A`) and an inward
/// code (`9AA`), in either case, as one word or as two words with only white space between,
/// each word standing alone (not part of a longer run of letters and digits). The last one
/// is the one an address ends with, after house numbers and street names that might look
/// like one. A whole `text` that is a postcode once its white space is taken out (`L N2
/// 1AB`) counts too, as it always has.
pub fn postcode_district(text: &str) -> Option<String> {
    if let Some(district) = compact_postcode(text.chars().filter(|c| !c.is_whitespace())) {
        return Some(district);
    }
    let words = words(text);
    words.iter().enumerate().rev().find_map(|(i, word)| {
        if let Some(district) = compact_postcode(word.text.chars()) {
            return Some(district);
        }
        let before = words.get(i.checked_sub(1)?)?;
        let between = &text[before.end..word.start];
        (is_inward(word.text) && between.chars().all(char::is_whitespace))
            .then(|| outward(before.text))
            .flatten()
    })
}

/// A maximal run of letters and digits in `text`, and where it ends and the next begins.
struct Word<'a> {
    text: &'a str,
    start: usize,
    end: usize,
}

fn words(text: &str) -> Vec<Word<'_>> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (start, c.is_alphanumeric()) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                words.push(Word {
                    text: &text[s..i],
                    start: s,
                    end: i,
                });
                start = None;
            }
            _ => {}
        }
    }
    words
}

/// The district of `chars` when they are exactly an outward and an inward code.
fn compact_postcode(chars: impl Iterator<Item = char>) -> Option<String> {
    let compact: String = chars.collect();
    if !compact.is_ascii() || !(5..=7).contains(&compact.len()) {
        return None;
    }
    let (district, inward) = compact.split_at(compact.len() - 3);
    if is_inward(inward) {
        outward(district)
    } else {
        None
    }
}

fn is_inward(word: &str) -> bool {
    let b = word.as_bytes();
    b.len() == 3
        && b[0].is_ascii_digit()
        && b[1].is_ascii_alphabetic()
        && b[2].is_ascii_alphabetic()
}

/// `word` in capitals when it is shaped like an outward code.
fn outward(word: &str) -> Option<String> {
    let shape: String = word
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
    .then(|| word.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn normalize_folds_dashes_and_spaces() {
        for (text, want) in [
            ("VIO\u{2011}01", "VIO-01"),
            ("VIO\u{2010}01", "VIO-01"),
            ("VIO\u{2013}01", "VIO-01"),
            ("VIO\u{2212}01", "VIO-01"),
            ("VIO\u{FE58}01", "VIO-01"),
            ("VIO\u{FE63}01", "VIO-01"),
            ("VIO\u{FF0D}01", "VIO-01"),
            ("\u{FF36}\u{FF29}\u{FF2F}-01", "VIO-01"),
            ("  VIO\u{A0}\u{A0}01\t", "VIO 01"),
            ("a\u{202F}b\u{2003}c\u{3000}d\u{1680}e", "a b c d e"),
            ("line\r\n two", "line two"),
            ("\u{FB01}le", "file"),
            ("", ""),
            (" \u{A0}\t", ""),
            ("Caf\u{65}\u{301}", "Café"),
        ] {
            assert_eq!(normalize(text), want, "{text:?}");
        }
    }

    #[test]
    fn postcode_districts_of_bare_postcodes() {
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
            ("L N2 1AB", "LN2"),
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
    fn postcode_districts_inside_addresses() {
        for (address, want) in [
            ("12  Hill Rd, Leeds ls6 2ab", "LS6"),
            ("Flat 1A, 10 Downing St, London SW1A 2AA", "SW1A"),
            ("B33 8TH, then moved to 4 Elm Way, Lincoln LN2 1AB.", "LN2"),
            ("4 Elm Way,\u{A0}Lincoln\tLN2\u{A0}1AB", "LN2"),
            ("4 Elm Way, Lincoln, LN21AB (main)", "LN2"),
            ("Unit M1 1AE, ", "M1"),
        ] {
            assert_eq!(
                postcode_district(address).as_deref(),
                Some(want),
                "{address}"
            );
        }
        for none in [
            "12 Hill Rd, Leeds",
            "12 Hill Rd, Leeds LS6",
            "Leeds LS6, 2AB",
            "Leeds XLS6 2AB",
            "Leeds LS6 2ABC",
            "Leeds ŁS6 2AB",
        ] {
            assert_eq!(postcode_district(none), None, "{none}");
        }
    }

    proptest! {
        /// Padding and casing never change a postcode's district, wherever it sits.
        #[test]
        fn a_postcode_at_the_end_of_any_address_is_found(
            prefix in "[A-Za-z0-9 ,.]{0,30}",
            pc in prop::sample::select(vec!["LN2 1AB", "ls6 2ab", "EC1A1BB", "m1  1ae"]),
        ) {
            let want = postcode_district(pc).unwrap();
            let address = format!("{prefix}, {pc}");
            prop_assert_eq!(postcode_district(&address), Some(want));
        }

        /// normalize is idempotent and leaves no non-ASCII dash or space, and no double space.
        #[test]
        fn normalize_is_a_fixed_point(text in "\\PC{0,20}") {
            let once = normalize(&text);
            prop_assert_eq!(normalize(&once), once.clone());
            prop_assert!(!once.contains("  ") && once.trim() == once);
            prop_assert!(once
                .chars()
                .all(|c| c == ' ' || c == '-' || !(c.is_whitespace() || is_dash(c))));
        }
    }
}
