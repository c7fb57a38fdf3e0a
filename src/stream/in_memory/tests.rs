//! The streamed path against `decide` on whole bodies: many batches, damaged elements.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use proptest::prelude::*;

use super::*;
use crate::test_util::{load, sample_tenants, shipped_rules, Call};

/// The shipped research-vendor `/tenants` route for `civic-surveys`, and the sample tenants
/// as `/tenants` returns them, one element each.
fn shipped() -> (Arc<Requested>, Vec<Vec<u8>>) {
    let policy = shipped_rules();
    let recipient = Arc::clone(policy.recipient("civic-surveys").unwrap());
    let route = recipient
        .kind
        .routes
        .iter()
        .position(|r| r.plan.streamable())
        .unwrap();
    (
        Call::tenants().requested(recipient, route),
        sample_tenants(),
    )
}

fn array(elements: &[&[u8]]) -> Vec<u8> {
    let mut body = b"[".to_vec();
    for (i, e) in elements.iter().enumerate() {
        if i > 0 {
            body.extend_from_slice(b",\n ");
        }
        body.extend_from_slice(e);
    }
    body.push(b']');
    body
}

#[test]
fn a_whole_export_over_several_batches_is_what_decide_makes_of_it() {
    let (job, tenants) = shipped();
    // Enough elements for three batches (BATCH_ELEMENTS each) and a part.
    let elements: Vec<&[u8]> = tenants
        .iter()
        .cycle()
        .take(BATCH_ELEMENTS * 3 + 17)
        .map(Vec::as_slice)
        .collect();
    let body = array(&elements);
    assert_eq!(disagreement(&job, &body, 64), None);

    // Not a vacuous agreement: some tenants are sent, some dropped, fields withheld.
    let made = filter_in_memory(&job, &body, 64, usize::MAX).unwrap();
    let sent: Value = serde_json::from_slice(&made.body).unwrap();
    let sent = sent.as_array().unwrap().len();
    assert!(
        sent > 0 && sent < elements.len(),
        "{sent} of {}",
        elements.len()
    );
    assert!(made.withheld.contains("[].date_of_birth"));
    assert!(made.withheld.contains("[]"), "an items rule dropped some");
    assert!(!made.subjects.is_empty());
}

#[test]
fn bodies_the_parser_refuses_are_refused_and_others_agree() {
    let (job, tenants) = shipped();
    let one = tenants[0].as_slice();
    let cases: Vec<Vec<u8>> = vec![
        b"[]".to_vec(),
        b" [ ] ".to_vec(),
        b"{}".to_vec(),
        b"null".to_vec(),
        b"[1, \"two\", null, [3]]".to_vec(),
        array(&[one, b"{\"id\":\"T-1\",\"id\":\"T-2\"}"]),
        array(&[one, b"{\"id\":\"T-\\ud800\"}"]),
        array(&[one, one]).into_iter().chain(*b" []").collect(),
        array(&[one])[..40].to_vec(),
        array(&[b"{\"a\":[[[[[[[[1]]]]]]]]}"]),
    ];
    for body in &cases {
        assert_eq!(
            disagreement(&job, body, 8),
            None,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    assert!(filter_in_memory(&job, &cases[2], 8, usize::MAX).is_err());
    assert!(filter_in_memory(&job, &cases[5], 8, usize::MAX).is_err());
}

#[test]
fn a_difference_is_named() {
    let same = InMemory::default();
    assert_eq!(first_difference(&same, &InMemory::default()), None);
    let mut other = InMemory::default();
    other.withheld.insert("[].ni_number".into());
    let told = first_difference(&same, &other).unwrap();
    assert!(told.starts_with("withheld:"), "{told}");
    other = InMemory {
        body: b"[]".to_vec(),
        ..InMemory::default()
    };
    assert!(first_difference(&same, &other)
        .unwrap()
        .starts_with("body:"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Arrays of sample tenants, one byte of the body possibly damaged: the streamed path and
    /// the buffered one refuse the same bodies and agree on the rest.
    #[test]
    fn damaged_exports_are_refused_or_agreed_on(
        picks in prop::collection::vec(0usize..1000, 0..12),
        damage in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let (job, tenants) = shipped();
        let elements: Vec<&[u8]> = picks.iter().map(|i| tenants[i % tenants.len()].as_slice()).collect();
        let mut body = array(&elements);
        if let Some((at, byte)) = damage {
            let at = at.index(body.len());
            body[at] = byte;
        }
        prop_assert_eq!(disagreement(&job, &body, 16), None);
    }
}

/// A streamed export whose rows are filtered by `decide` (an items rule inside the element)
/// and by the projector: a row that names no subject stops the export both ways, with its
/// own code, exactly where the buffered path refuses the body.
#[test]
fn a_row_without_a_subject_stops_a_streamed_export_as_decide_refuses_it() {
    for items in ["[].markers", "[]"] {
        let routes = format!(
            "[[route]]\nmethod = \"GET\"\npath = \"/tenants\"\nsubjects = [\"[].id\"]\n\
             allow = [\"[].name\", \"[].markers[].category\"]\n\n\
             [[route.items]]\npath = \"{items}\"\nkeep = \"has(item.ok) == false || item.ok == true\"\n"
        );
        let policy = load(&routes, None).unwrap();
        let recipient = Arc::clone(policy.recipient("acme-repairs").unwrap());
        assert!(recipient.kind.routes[0].plan.streamable(), "{items}");
        let job = Call::tenants().requested(recipient, 0);
        let body = br#"[{"id":"T-1","name":"Ada"},{"name":"Bob Smith"}]"#;
        assert_eq!(disagreement(&job, body, 16), None, "{items}");
        assert!(
            matches!(
                filter_in_memory(&job, body, 16, usize::MAX),
                Err(split::Error::Unidentified)
            ),
            "{items}"
        );
        let named = br#"[{"id":"T-1","name":"Ada"},{"id":"T-2","name":"Bob"}]"#;
        assert_eq!(disagreement(&job, named, 16), None, "{items}");
        assert!(filter_in_memory(&job, named, 16, usize::MAX).is_ok());
    }
}

/// A streamed route with scrub rules: free text at element paths, in nested arrays, inside
/// an object at a scrub path, behind escapes, in a derived field and in elements the
/// projector hands to `decide`; the same bytes and the same `scrubbed` both ways.
const SCRUBBED_EXPORT: &str = r#"
[[route]]
method = "GET"
path = "/tenants"
subjects = ["[].id"]
allow = ["[].id", "[].notes", "[].contacts[].description", "[].contacts[].kind", "[].extra"]

[[route.derive]]
field = "[].summary"
value = "'ring ' + item.id + ' on 07700 900123'"

[[route.scrub]]
paths = ["[].notes", "[].contacts[].description", "[].summary"]
patterns = ["phone", "email", "ni_number", "postcode", "date"]

[[route.scrub]]
paths = ["[].extra"]
patterns = ["email"]
"#;

fn scrubbed_job() -> Arc<Requested> {
    let policy = load(SCRUBBED_EXPORT, None).unwrap();
    let recipient = Arc::clone(policy.recipient("acme-repairs").unwrap());
    assert!(recipient.kind.routes[0].plan.streamable());
    Call::tenants().requested(recipient, 0)
}

#[test]
fn scrubbing_streamed_and_whole_sends_the_same_bytes() {
    let job = scrubbed_job();
    let body = br#"[
        {"id":"T-1","notes":"call 07700 900123 or jo@example.com","contacts":[
            {"description":"mobile \u0030\u0037700 900123","kind":"mobile 07700 900123"},
            {"description":"none","kind":"home"}]},
        {"id":"T-2","notes":14,"extra":{"mail":["jo@example.com", 07],"n":null}},
        {"id":"T-3","notes":"LS6 2AB","extra":"phone 07700 900123, mail a@b.io"},
        {"id":"T-4","notes":"nothing to see"}
    ]"#;
    // `07` is not JSON: the whole export is refused, both ways.
    assert_eq!(disagreement(&job, body, 16), None);
    let body = String::from_utf8_lossy(body).replace(", 07]", ", 7]");
    let body = body.as_bytes();
    assert_eq!(disagreement(&job, body, 16), None);
    let made = filter_in_memory(&job, body, 16, usize::MAX).unwrap();
    let sent: Value = serde_json::from_slice(&made.body).unwrap();
    assert_eq!(
        sent,
        serde_json::json!([
            {"id":"T-1","notes":"call [removed] or [removed]","contacts":[
                {"description":"mobile [removed]","kind":"mobile 07700 900123"},
                {"description":"none","kind":"home"}],
             "summary":"ring T-1 on [removed]"},
            {"id":"T-2","notes":14,"extra":{"mail":["[removed]", 7],"n":null},
             "summary":"ring T-2 on [removed]"},
            {"id":"T-3","notes":"[removed]","extra":"phone 07700 900123, mail [removed]",
             "summary":"ring T-3 on [removed]"},
            {"id":"T-4","notes":"nothing to see","summary":"ring T-4 on [removed]"}
        ])
    );
    assert_eq!(
        made.scrubbed.iter().collect::<Vec<_>>(),
        [
            "[].contacts[].description",
            "[].extra",
            "[].notes",
            "[].summary"
        ]
    );
    // Elements that are not objects go through `decide`, and agree too.
    let odd = br#"[{"id":"T-1","notes":"a@b.io"}, 5, "jo@example.com", {"id":"T-2","notes":"ok"}]"#;
    assert_eq!(disagreement(&job, odd, 16), None);
}

fn free_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "call",
        "07700 900123",
        "jo@example.com",
        "QQ 12 34 56 C",
        "LS6 2AB",
        "14/03/1979",
        "J-0001",
        "£120.50",
        "10:30",
        "\\u0030",
        "\\\"",
        "é",
        "",
    ]);
    prop::collection::vec(pieces, 0..6).prop_map(|p| p.join(" "))
}

proptest! {
    /// Whatever free text the elements hold, streamed and whole agree.
    #[test]
    fn scrubbed_exports_agree(texts in prop::collection::vec((free_text(), free_text()), 1..6)) {
        let job = scrubbed_job();
        let elements: Vec<String> = texts
            .iter()
            .enumerate()
            .map(|(i, (notes, contact))| format!(
                r#"{{"id":"T-{i}","notes":"{notes}","contacts":[{{"description":"{contact}"}}],"extra":["{notes}"]}}"#
            ))
            .collect();
        let elements: Vec<&[u8]> = elements.iter().map(String::as_bytes).collect();
        let body = array(&elements);
        prop_assert_eq!(disagreement(&job, &body, 16), None);
    }
}
