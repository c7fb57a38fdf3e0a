#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn only(p: Pattern) -> Patterns {
    [p].into_iter().collect()
}

fn all() -> Patterns {
    Pattern::ALL.into_iter().collect()
}

/// Every written form a pattern must remove, as the rules documentation lists them.
const FORMS: &[(Pattern, &[&str])] = &[
    (
        Pattern::Phone,
        &[
            "07700 900123",
            "07700900123",
            "07700-900-123",
            "07700.900.123",
            "+44 7700 900123",
            "+447700900123",
            "+44 (0)20 7946 0018",
            "0044 20 7946 0018",
            "020 7946 0018",
            "020-7946-0018",
            "0113 496 0000",
            "(0113) 4960000",
            "(020) 7946 0018",
            "0800 123 456",
            "1234567890",
            "4412345678901",
        ],
    ),
    (
        Pattern::Email,
        &[
            "jo.bloggs@example.co.uk",
            "a@b.io",
            "first+tag@mail.example.org",
            "O'Neill@example.com",
        ],
    ),
    (
        Pattern::NiNumber,
        &[
            "QQ 12 34 56 C",
            "QQ123456C",
            "qq123456c",
            "QQ 123456 A",
            "AB123456",
        ],
    ),
    (
        Pattern::Postcode,
        &[
            "LS6 2AB", "ls62ab", "SW1A 1AA", "sw1a1aa", "M1 1AE", "B33 8TH", "CR2 6XH", "LN2 1AB",
        ],
    ),
    (
        Pattern::Date,
        &[
            "14/03/1979",
            "14-03-1979",
            "14.03.79",
            "4/3/79",
            "1979-03-14",
            "1979-03-14T10:30:00Z",
            "1979-03-14 10:30",
            "1979-03-14T10:30:00.123+01:00",
            "14 March 1979",
            "14th Mar 1979",
            "1st of June 2001",
            "March 14, 1979",
            "Sept 3rd, 2024",
        ],
    ),
];

/// Text no pattern may touch: references, amounts, times, plain words. (A day, a month and a
/// year are a date however they came together, so not all three are here.)
const ORDINARY: &[&str] = &[
    "J-0001", "T-0011", "KBS", "£120.50", "10:30", "boiler", "leaking", "flat", "two", "kitchen",
    "tap", "the", "Tuesday", "morning", "March", "year", "3rd", "floor", "WO-88213", "12.5%",
    "v1.2", "x", "ok.",
];

#[test]
fn each_written_form_is_removed_whole() {
    for (pattern, forms) in FORMS {
        for form in *forms {
            assert_eq!(
                text(form, only(*pattern)).as_deref(),
                Some(REMOVED),
                "{} should remove {form:?}",
                pattern.name()
            );
            let line = format!("please note {form} thanks");
            assert_eq!(
                text(&line, only(*pattern)),
                Some(format!("please note {REMOVED} thanks")),
                "{} in a sentence: {form:?}",
                pattern.name()
            );
        }
    }
}

#[test]
fn ordinary_text_is_left_alone() {
    for word in ORDINARY {
        assert_eq!(text(word, all()), None, "{word:?} was changed");
    }
    let job = "J-0001 for KBS: boiler leaking, quote £120.50, visit 10:30 on Tuesday";
    assert_eq!(text(job, all()), None);
}

#[test]
fn a_pattern_not_asked_for_is_left() {
    let line = "call 07700 900123 or jo@example.com";
    assert_eq!(
        text(line, only(Pattern::Email)).unwrap(),
        "call 07700 900123 or [removed]"
    );
    assert_eq!(
        text(line, only(Pattern::Phone)).unwrap(),
        "call [removed] or jo@example.com"
    );
}

#[test]
fn a_value_that_is_only_personal_data_becomes_exactly_removed() {
    assert_eq!(text("07700 900123, LS6 2AB", all()).unwrap(), REMOVED);
    assert_eq!(text(" jo@example.com ", all()).unwrap(), REMOVED);
    assert_eq!(
        text("Ring 07700 900123 before 14/03/2026", all()).unwrap(),
        "Ring [removed] before [removed]"
    );
}

#[test]
fn overlapping_matches_are_removed_once() {
    // A long number is both a phone number and a digit run.
    assert_eq!(
        text("ref 0113 496 0000 end", all()).unwrap(),
        "ref [removed] end"
    );
}

#[test]
fn pattern_names_parse_back() {
    for p in Pattern::ALL {
        assert_eq!(Pattern::parse(p.name()), Some(p));
    }
    assert_eq!(Pattern::parse("telephone"), None);
}

fn scrubs(entries: &[(&str, Patterns)]) -> Scrubs {
    Scrubs::new(
        entries
            .iter()
            .map(|(p, s)| (FieldPath::parse(p).unwrap(), *s)),
    )
}

#[test]
fn nested_and_array_paths_are_scrubbed_and_named() {
    let s = scrubs(&[
        ("description", all()),
        ("[].notes", all()),
        ("contacts[].description", only(Pattern::Phone)),
    ]);
    let mut body = json!({
        "description": "call 07700 900123",
        "contacts": [
            {"description": "mobile 07700900123", "name": "Sam"},
            {"description": "no number", "name": "07700 900123"}
        ],
        "other": "07700 900123"
    });
    let hits = s.apply(&mut body);
    assert_eq!(
        body,
        json!({
            "description": "call [removed]",
            "contacts": [
                {"description": "mobile [removed]", "name": "Sam"},
                {"description": "no number", "name": "07700 900123"}
            ],
            "other": "07700 900123"
        })
    );
    assert_eq!(
        hits.into_iter().collect::<Vec<_>>(),
        ["contacts[].description", "description"]
    );

    let mut list = json!([{"notes": "LS6 2AB"}, {"notes": 7700900123_u64}, {"notes": null}]);
    let hits = s.apply(&mut list);
    assert_eq!(
        list,
        json!([{"notes": "[removed]"}, {"notes": 7700900123_u64}, {"notes": null}])
    );
    assert_eq!(hits.into_iter().collect::<Vec<_>>(), ["[].notes"]);
}

#[test]
fn strings_inside_an_object_or_array_at_a_scrub_path_are_scrubbed() {
    let s = scrubs(&[("notes", only(Pattern::Email))]);
    let mut body = json!({"notes": {"a": ["mail jo@example.com", 3], "jo@example.com": true}});
    s.apply(&mut body);
    // Keys are left: scrubbing is for text values.
    assert_eq!(
        body,
        json!({"notes": {"a": ["mail [removed]", 3], "jo@example.com": true}})
    );
}

#[test]
fn nothing_found_records_nothing() {
    let s = scrubs(&[("description", all())]);
    let mut body = json!({"description": "boiler leaking"});
    assert!(s.apply(&mut body).is_empty());
    assert_eq!(body, json!({"description": "boiler leaking"}));
}

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(ORDINARY).prop_map(str::to_owned)
}

fn form() -> impl Strategy<Value = (Pattern, String)> {
    prop::sample::select(FORMS).prop_flat_map(|(p, forms)| {
        prop::sample::select(forms).prop_map(move |f| (p, f.to_owned()))
    })
}

proptest! {
    /// Ordinary words, however arranged, are never touched.
    #[test]
    fn ordinary_sentences_pass(words in prop::collection::vec(word(), 0..12)) {
        let line = words.join(" ");
        prop_assert_eq!(text(&line, all()), None);
    }

    /// A form between ordinary words is removed, whatever surrounds it, and the words stay.
    #[test]
    fn forms_in_sentences_are_removed(
        before in prop::collection::vec(word(), 0..5),
        (pattern, form) in form(),
        after in prop::collection::vec(word(), 0..5),
    ) {
        // Set off by `;`: a word that makes a longer date with the form (`March 3rd`
        // before `1979-03-14`) would rightly go with it.
        let line = [before.join(" "), form.clone(), after.join(" ")].join(" ; ");
        let clean = text(&line, only(pattern)).unwrap();
        prop_assert!(!clean.contains(&form), "{:?} left {:?} in {:?}", pattern, form, clean);
        // Words with letters stay; a number or time next to a form may be read as part of it
        // (`1979-03-14 10:30` is a date with its time), which errs on the side of removing.
        let words = before.iter().chain(&after).filter(|w| w.chars().any(|c| c.is_ascii_alphabetic()));
        for w in words {
            prop_assert!(clean.contains(w.as_str()), "{:?} lost {:?}: {:?}", pattern, w, clean);
        }
        // Scrubbing twice changes nothing more.
        prop_assert_eq!(text(&clean, only(pattern)), None);
    }
}

/// Free text as people type it: two spaces, a space-hyphen-space, a non-breaking space or
/// an en dash between the groups, a number glued to a word. Each is a phone number, National
/// Insurance number or postcode the documentation promises to remove.
#[test]
fn personal_data_with_unusual_separators_is_removed() {
    for leak in [
        "ring 07700  900123 after six",
        "ring 07700 - 900123 after six",
        "ring 07700\u{a0}900123 after six",
        "ring 07700\u{2013}900123 after six",
        "ring mob07700900123 after six",
        "NI QQ\u{a0}12\u{a0}34\u{a0}56\u{a0}C here",
        "NI QQ  12 34 56 C here",
        "lives at LS6\u{a0}2AB now",
        "lives at LS6  2AB now",
    ] {
        let got = text(leak, all());
        assert!(
            got.as_deref()
                .is_some_and(|t| !t.chars().any(|c| c.is_ascii_digit())),
            "{leak:?} was sent as {got:?}"
        );
    }
}

/// Numbers and dates typed as a list without spaces: `continues_a_number` reads the comma
/// and the digit before it as an amount or a time (`£12,30`), so every match after the
/// first is dropped and sent whole: "[removed],07700900123".
#[test]
fn every_item_of_a_comma_separated_list_is_removed() {
    for leak in [
        "home 01134960000,07700900123",
        "dates 14/03/1979,15/03/1980",
        "at 10:30,07700 900123",
    ] {
        let got = text(leak, all());
        assert!(
            got.as_deref()
                .is_some_and(|t| !t.contains("900123") && !t.contains("1980")),
            "{leak:?} was sent as {got:?}"
        );
    }
}
