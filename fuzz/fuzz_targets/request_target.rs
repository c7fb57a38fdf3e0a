//! Request targets: bytes → `http::Uri` → `routes::authorize` against the fixed
//! repairs-contractor type. Never panics; a granted target rebuilt for the upstream never
//! holds anything another server could read as a different path.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use need_to_know::routes;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let method = match first % 4 {
        0 => http::Method::GET,
        1 => http::Method::POST,
        2 => http::Method::HEAD,
        _ => http::Method::DELETE,
    };
    let Ok(uri) = http::Uri::try_from(rest) else {
        return;
    };
    let policy = common::policy();
    let recipient = policy.recipient("acme-repairs").expect("fixed recipient");
    let caller = recipient.caller();
    let Ok(granted) = routes::authorize(&recipient.kind.routes, &method, &uri, caller) else {
        return;
    };
    let target = &granted.upstream_target;
    // The checks on slashes apply to the path: a query value may hold a raw '/' (RFC 3986
    // allows it), which is correctly re-encoded as %2F there.
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    for bad in ["//", "/../", "%2F", "%2f", "\\"] {
        assert!(
            !path.contains(bad),
            "upstream target {target:?} holds {bad:?} in its path (from {uri})"
        );
    }
    for bad in ["/", "\\", "#", "?"] {
        assert!(
            !query.contains(bad),
            "upstream target {target:?} holds a raw {bad:?} in its query (from {uri})"
        );
    }
    assert!(
        target.starts_with('/'),
        "upstream target {target:?} is not origin-form"
    );
    for segment in path.split('/').skip(1) {
        assert!(
            segment != "." && segment != ".." && segment != "%2E" && segment != "%2E%2E",
            "upstream target {target:?} holds a dot segment (from {uri})"
        );
    }
    assert!(
        target.bytes().all(|b| (0x21..=0x7e).contains(&b)),
        "upstream target {target:?} holds a byte outside printable ASCII (from {uri})"
    );
    assert_eq!(
        granted.route.method, method,
        "granted a route of another method"
    );
});
