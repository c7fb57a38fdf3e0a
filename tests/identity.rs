//! Who is calling: API keys, and the swap of the recipient's credential for the gateway's.

use crate::support::gateway::{self, Builder};
use crate::support::http;
use crate::support::job;
use crate::support::upstream::Upstream;

#[tokio::test]
async fn a_good_key_is_served() {
    let (up, gw) = gateway::before_the_job().await;
    let r = http::get(gw.addr, "/jobs/J-1001", Some(gw.key("acme-repairs"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.count(), 1);
}

#[tokio::test]
async fn missing_unknown_and_malformed_credentials_are_401_and_reach_nothing() {
    let (up, gw) = gateway::before_the_job().await;
    let cases: [&[(&str, &str)]; 5] = [
        &[],
        &[("Authorization", "Bearer not-a-key-anyone-holds")],
        &[("Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")],
        &[("Authorization", "Bearer")],
        &[("Authorization", "Bearer a b")],
    ];
    for headers in cases {
        let r = http::request(gw.addr, "GET", "/jobs/J-1001", None, headers).await;
        assert_eq!(r.status, 401, "{headers:?}: {}", r.text());
        assert_eq!(r.error(), "unauthenticated");
        assert!(r.json()["request_id"].is_string());
    }
    // Two Authorization headers are ambiguous: which one would a proxy behind us read?
    let key = gw.key("acme-repairs").to_string();
    let bearer = format!("Bearer {key}");
    let r = http::request(
        gw.addr,
        "GET",
        "/jobs/J-1001",
        None,
        &[("Authorization", &bearer), ("Authorization", &bearer)],
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        up.count(),
        0,
        "no unauthenticated request may reach the upstream"
    );
}

#[tokio::test]
async fn the_recipients_key_never_goes_upstream_and_the_gateways_credential_does() {
    let up = Upstream::new().json("/api/jobs/J-1001", job()).run().await;
    let gw = Builder::before(&up)
        .config("credential_env = \"NTK_TEST_UPSTREAM_TOKEN_A\"")
        .env("NTK_TEST_UPSTREAM_TOKEN_A", "gateway-secret-token")
        .start()
        .await;
    let key = gw.key("acme-repairs").to_string();
    let r = http::request(
        gw.addr,
        "GET",
        "/jobs/J-1001",
        Some(&key),
        &[
            ("Cookie", "session=abc"),
            ("X-Forwarded-For", "10.0.0.1"),
            ("Accept-Language", "en-GB"),
            ("X-Debug", "1"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = &up.requests()[0];
    let header = |name: &str| {
        seen.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(header("authorization"), ["Bearer gateway-secret-token"]);
    assert_eq!(header("accept-language"), ["en-GB"]);
    for dropped in ["cookie", "x-forwarded-for", "x-debug"] {
        assert!(header(dropped).is_empty(), "{dropped} was forwarded");
    }
    let all = format!("{:?}", seen.headers);
    assert!(
        !all.contains(&key),
        "the recipient's key reached the upstream"
    );
    assert_eq!(
        header("x-request-id"),
        [r.header("x-request-id").expect("id").to_string()]
    );
}
