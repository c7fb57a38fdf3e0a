//! Tests of target checks and matching.

use super::*;
use crate::rules::{RecipientType, Route};

/// A recipient type with `routes` (method, template, query), loaded through the rules
/// loader like any other.
fn kind(routes: &[(&str, &str, &[&str])]) -> std::sync::Arc<RecipientType> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("types")).expect("types");
    let mut text = "type = \"t\"\npurpose = \"p\"\nlawful_basis = \"contract\"\n".to_string();
    for (method, template, query) in routes {
        let query: Vec<String> = query.iter().map(|q| format!("{q:?}")).collect();
        text.push_str(&format!(
            "[[route]]\nmethod = \"{method}\"\npath = \"{template}\"\nquery = [{}]\nallow = [\"id\"]\n",
            query.join(", ")
        ));
    }
    std::fs::write(dir.path().join("types/t.toml"), text).expect("type");
    let hash = "d76c5488b91bf9b125e97aa6176d0d893c7da3115169ed61aabcb169124d10b8";
    std::fs::write(
        dir.path().join("recipients.toml"),
        format!(
            "[[recipient]]\nid = \"r\"\nname = \"R\"\ntype = \"t\"\napi_key_sha256 = \"{hash}\"\n"
        ),
    )
    .expect("recipients");
    let policy = crate::rules::Policy::load(dir.path()).expect("rules load");
    let kind = policy.types().next().expect("one type").clone();
    kind
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
        grant(&k.routes, &http::Method::GET, target).err(),
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
            if let Ok(g) = authorize(&k.routes, &http::Method::GET, &uri) {
                let path = g.upstream_target.split('?').next().unwrap_or_default();
                let again = decode_path(path).expect("rebuilt target is clean");
                let original = decode_path(uri.path()).expect("granted target was clean");
                proptest::prop_assert_eq!(&again, &original);
                proptest::prop_assert_eq!(format!("/{}", again.join("/")), g.path);
            }
        }
    }
}
