//! Tests of target checks and matching.

use super::*;
use crate::rules::{Policy, RecipientType, Route};

/// A recipient type with `routes` (method, template, query), loaded through the rules
/// loader like any other.
fn kind(routes: &[(&str, &str, &[&str])]) -> std::sync::Arc<RecipientType> {
    let mut text = String::new();
    for (method, template, query) in routes {
        let query: Vec<String> = query.iter().map(|q| format!("{q:?}")).collect();
        text.push_str(&format!(
            "[[route]]\nmethod = \"{method}\"\npath = \"{template}\"\nquery = [{}]\nallow = [\"id\"]\n",
            query.join(", ")
        ));
    }
    let policy = policy(&text);
    let kind = policy.types().next().expect("one type").clone();
    kind
}

/// The rules of type `t` with `routes` (TOML), and its one recipient `r`, whose
/// `contractor_code` is `KBS`.
fn policy(routes: &str) -> Policy {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("types")).expect("types");
    let text = format!("type = \"t\"\npurpose = \"p\"\nlawful_basis = \"contract\"\n{routes}");
    std::fs::write(dir.path().join("types/t.toml"), text).expect("type");
    let hash = "d76c5488b91bf9b125e97aa6176d0d893c7da3115169ed61aabcb169124d10b8";
    std::fs::write(
        dir.path().join("recipients.toml"),
        format!(
            "[[recipient]]\nid = \"r\"\nname = \"R\"\ntype = \"t\"\napi_key_sha256 = \"{hash}\"\n\
             [recipient.attributes]\ncontractor_code = \"KBS\"\n"
        ),
    )
    .expect("recipients");
    crate::rules::Policy::load(dir.path()).expect("rules load")
}

/// A caller with no attributes, for routes that bind nothing.
fn caller() -> Caller<'static> {
    const NONE: &BTreeMap<String, String> = &BTreeMap::new();
    Caller {
        id: "r",
        kind: "t",
        name: "R",
        attributes: NONE,
    }
}

fn authorize_str<'a>(
    kind: &'a RecipientType,
    method: &str,
    target: &str,
) -> Result<Granted<'a, Route>, Error> {
    let uri: http::Uri = target.parse().expect("uri");
    authorize(
        &kind.routes,
        &http::Method::from_bytes(method.as_bytes()).expect("method"),
        &uri,
        caller(),
    )
}

#[test]
fn templates_parse_and_refuse() {
    assert!(Template::parse("/jobs/{job_id}").is_ok());
    assert!(Template::parse("/").is_ok());
    for bad in [
        "",
        "jobs",
        "/jobs/",
        "//jobs",
        "/jobs/{}",
        "/jobs/{a}{b}",
        "/jobs/x{a}",
        "/a/{x}/{x}",
        "/a/..",
        "/a b",
    ] {
        assert!(Template::parse(bad).is_err(), "{bad:?} should be refused");
    }
    assert_eq!(
        Template::parse("/jobs/{id}").expect("t").shape(),
        Template::parse("/jobs/{job_id}").expect("t").shape()
    );
}

#[test]
fn literal_beats_parameter() {
    let k = kind(&[("GET", "/jobs/{id}", &[]), ("GET", "/jobs/open", &[])]);
    let g = authorize_str(&k, "GET", "/jobs/open").expect("granted");
    assert_eq!(g.route.template.as_str(), "/jobs/open");
    assert!(
        std::ptr::eq(g.route, &k.routes[g.index]),
        "the index names the route"
    );
    let g = authorize_str(&k, "GET", "/jobs/J1").expect("granted");
    assert_eq!(g.route.template.as_str(), "/jobs/{id}");
    assert!(
        std::ptr::eq(g.route, &k.routes[g.index]),
        "the index names the route"
    );
    assert_eq!(g.params.get("id").map(String::as_str), Some("J1"));
}

#[test]
fn method_and_path_refusals() {
    let k = kind(&[("GET", "/jobs/{id}", &["x"])]);
    assert_eq!(
        authorize_str(&k, "POST", "/jobs/1").err(),
        Some(Error::MethodNotGranted)
    );
    assert_eq!(
        authorize_str(&k, "GET", "/tenants/1").err(),
        Some(Error::NotGranted)
    );
    assert!(matches!(
        authorize_str(&k, "GET", "/jobs/%2F").err(),
        Some(Error::Malformed(_))
    ));
    assert!(matches!(
        authorize_str(&k, "GET", "/jobs/1?y=1").err(),
        Some(Error::QueryNotAllowed(_))
    ));
    assert!(matches!(
        authorize_str(&k, "GET", "/jobs/1?x=1&x=2").err(),
        Some(Error::QueryRepeated(_))
    ));
    let g = authorize_str(&k, "GET", "/jobs/a%20b?x=%2Fc").err();
    assert!(
        matches!(g, Some(Error::Malformed(_))),
        "a space is refused: {g:?}"
    );
    let g = authorize_str(&k, "GET", "/jobs/a%41?x=c+d").expect("granted");
    assert_eq!(g.upstream_target, "/jobs/aA?x=c%2Bd");
}

#[test]
fn the_decoded_path_is_the_one_sent_upstream() {
    let k = kind(&[("GET", "/jobs/{id}", &[]), ("GET", "/", &[])]);
    let g = authorize_str(&k, "GET", "/jobs/%4A%2D%31").expect("granted");
    assert_eq!(g.path, "/jobs/J-1");
    assert_eq!(g.upstream_target, "/jobs/J-1");
    // An encoded '?' is data in its segment: plain in the path, encoded again upstream.
    let g = authorize_str(&k, "GET", "/%6Aobs/a%3Fb").expect("granted");
    assert_eq!(g.path, "/jobs/a?b");
    assert_eq!(g.upstream_target, "/jobs/a%3Fb");
    let g = authorize_str(&k, "GET", "/").expect("granted");
    assert_eq!((g.path.as_str(), g.upstream_target.as_str()), ("/", "/"));
    // Decoded before any route is looked at: a path no route grants has its form too.
    let target = Target::parse(&"/tenants/%54-1?x=1".parse().expect("uri")).expect("clean");
    assert_eq!(target.path(), "/tenants/T-1");
    assert_eq!(
        grant(&k.routes, &http::Method::GET, target, caller()).err(),
        Some(Error::NotGranted)
    );
}

proptest::proptest! {
    /// Matching never panics, and whatever it grants names the route it truly matched:
    /// the rebuilt upstream target decodes to the same segments.
    #[test]
    fn matching_never_panics(target in "/[a-zA-Z0-9%./;_~?&=+\\\\-]{0,40}") {
        let k = kind(&[("GET", "/jobs/{id}", &["q"]), ("GET", "/jobs/{id}/notes", &[])]);
        if let Ok(uri) = target.parse::<http::Uri>() {
            if let Ok(g) = authorize(&k.routes, &http::Method::GET, &uri, caller()) {
                let path = g.upstream_target.split('?').next().unwrap_or_default();
                let again = decode_path(path).expect("rebuilt target is clean");
                let original = decode_path(uri.path()).expect("granted target was clean");
                proptest::prop_assert_eq!(&again, &original);
                proptest::prop_assert_eq!(format!("/{}", again.join("/")), g.path);
            }
        }
    }
}

#[test]
fn a_repeatable_parameter_is_forwarded_in_order_and_others_may_not_repeat() {
    let k = kind(&[("GET", "/jobs", &["status", "StatusCode[]"])]);
    let g =
        authorize_str(&k, "GET", "/jobs?StatusCode=20&status=open&StatusCode=80").expect("granted");
    assert_eq!(
        g.upstream_target,
        "/jobs?StatusCode=20&status=open&StatusCode=80"
    );
    assert_eq!(
        g.query.values("StatusCode").collect::<Vec<_>>(),
        ["20", "80"]
    );
    assert_eq!(
        authorize_str(&k, "GET", "/jobs?status=open&status=closed").err(),
        Some(Error::QueryRepeated("status".into()))
    );
    // The rules' `[]` is not part of the name a request sends.
    assert_eq!(
        authorize_str(&k, "GET", "/jobs?StatusCode[]=20").err(),
        Some(Error::QueryNotAllowed("StatusCode[]".into()))
    );
}

#[test]
fn listing_a_parameter_both_ways_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("types")).expect("types");
    let text = "type = \"t\"\npurpose = \"p\"\nlawful_basis = \"contract\"\n[[route]]\nmethod = \"GET\"\npath = \"/jobs\"\nquery = [\"a\", \"a[]\", \"[]\"]\nallow = [\"id\"]\n";
    std::fs::write(dir.path().join("types/t.toml"), text).expect("type");
    std::fs::write(dir.path().join("recipients.toml"), "").expect("recipients");
    let errors: Vec<String> = crate::rules::Policy::load(dir.path())
        .expect_err("refused")
        .0
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].ends_with("t.toml:7: query parameter \"a\" is listed twice"));
    assert!(errors[1].ends_with("t.toml:7: query parameter name \"[]\" is not valid"));
}

/// `GET /jobs` (`status` allowed) with `contractor` bound to the recipient's contractor code,
/// and `GET /contractors/{code}/jobs` with `code` bound to it, as `r` (`KBS`) asks.
fn bound(target: &str) -> Result<String, Error> {
    bound_as(target, None)
}

/// [`bound`], asked by `as_caller` instead when given.
fn bound_as(target: &str, as_caller: Option<Caller<'_>>) -> Result<String, Error> {
    let policy = policy(
        r#"
[[route]]
method = "GET"
path = "/jobs"
query = ["status"]
allow = ["id"]
bind = [{ param = "query.contractor", value = "recipient.attributes.contractor_code" }]

[[route]]
method = "GET"
path = "/contractors/{code}/jobs"
allow = ["id"]
bind = [{ param = "path.code", value = "recipient.attributes.contractor_code" }]
"#,
    );
    let r = policy.recipient("r").expect("r");
    let uri: http::Uri = target.parse().expect("uri");
    let caller = as_caller.unwrap_or_else(|| r.caller());
    let g = authorize(&r.kind.routes, &http::Method::GET, &uri, caller)?;
    Ok(g.upstream_target)
}

#[test]
fn a_bound_parameter_is_added_checked_and_never_changed() {
    // Absent: added after the request's own parameters.
    assert_eq!(
        bound("/jobs?status=open").as_deref(),
        Ok("/jobs?status=open&contractor=KBS")
    );
    assert_eq!(bound("/jobs").as_deref(), Ok("/jobs?contractor=KBS"));
    // The same value: fine, where it was sent.
    assert_eq!(
        bound("/jobs?contractor=KBS&status=open").as_deref(),
        Ok("/jobs?contractor=KBS&status=open")
    );
    // Another value: refused, and the message names the parameter, not a value.
    let refused = bound("/jobs?status=open&contractor=ACME").unwrap_err();
    assert_eq!(refused, Error::BindingMismatch("query.contractor".into()));
    assert_eq!(
        (refused.status(), refused.code()),
        (http::StatusCode::FORBIDDEN, "binding_mismatch")
    );
    assert!(!refused.to_string().contains("KBS") && !refused.to_string().contains("ACME"));
    // Sent twice, even with the bound value: a bound parameter is taken once (400).
    assert_eq!(
        bound("/jobs?contractor=KBS&contractor=KBS").unwrap_err(),
        Error::QueryRepeated("contractor".into())
    );
    // A path parameter must hold the bound value.
    assert_eq!(
        bound("/contractors/KBS/jobs").as_deref(),
        Ok("/contractors/KBS/jobs")
    );
    assert_eq!(
        bound("/contractors/ACME/jobs").unwrap_err(),
        Error::BindingMismatch("path.code".into())
    );
    // A value that cannot be computed (a caller without the attribute, which `check`
    // refuses for the recipients it loads) refuses: fail closed.
    let failed = bound_as("/jobs?status=open", Some(caller())).unwrap_err();
    assert_eq!(failed, Error::BindingFailed("query.contractor".into()));
    assert_eq!(
        (failed.status(), failed.code()),
        (http::StatusCode::FORBIDDEN, "binding_mismatch")
    );
}

proptest::proptest! {
    /// However many values a repeatable parameter is sent with, each is forwarded and read in
    /// the order sent, among the other parameters.
    #[test]
    fn repeated_values_keep_their_order(
        values in proptest::collection::vec("[a-zA-Z0-9~._-]{0,6}", 1..6),
        status_at in 0usize..6,
    ) {
        let k = kind(&[("GET", "/jobs", &["status", "StatusCode[]"])]);
        let mut pairs: Vec<String> = values.iter().map(|v| format!("StatusCode={v}")).collect();
        pairs.insert(status_at.min(pairs.len()), "status=open".to_owned());
        let target = format!("/jobs?{}", pairs.join("&"));
        let g = authorize_str(&k, "GET", &target).expect("granted");
        proptest::prop_assert_eq!(&g.upstream_target, &target);
        let read: Vec<&str> = g.query.values("StatusCode").collect();
        proptest::prop_assert_eq!(read, values.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

/// A recipient whose bound attribute is the empty string (`contractor_code = ""`, which
/// `recipients.toml` accepts) is forwarded as `/jobs?status=open&contractor=`: a housing
/// system that reads an empty filter as none answers every contractor's jobs. An empty
/// bound value cannot restrict anything, so it must refuse as a value that cannot be
/// computed does.
#[test]
fn an_empty_bound_value_never_goes_upstream() {
    let attributes: BTreeMap<String, String> =
        [("contractor_code".to_owned(), String::new())].into();
    let empty = Caller {
        attributes: &attributes,
        ..caller()
    };
    assert_eq!(
        bound_as("/jobs?status=open", Some(empty)),
        Err(Error::BindingFailed("query.contractor".into()))
    );
}
