//! TLS and mutual TLS on 127.0.0.1 with certificates made per run: identity by certificate
//! hash and by SAN, refusals of foreign, expired and missing certificates (with nothing
//! reaching the upstream), API keys under "optional", and an https upstream behind a
//! private CA.

use need_to_know::certs::{Authority, Validity};

use crate::support::gateway::{Builder, TlsSetup};
use crate::support::upstream::Upstream;
use crate::support::{assert_nothing_withheld, http, job};

#[tokio::test]
async fn a_good_client_certificate_identifies_by_san_and_by_hash() {
    let up = Upstream::new().json("/api/jobs/J-1001", job()).run().await;
    let gw = Builder::before(&up)
        .tls(TlsSetup::Mutual("required"))
        .start()
        .await;
    let ca = gw.certs.as_ref().expect("certs").gateway_ca_pem.clone();
    for id in ["acme-repairs", "brightfix"] {
        let (cert, key) = gw.client_cert(id);
        let client = http::tls_connector(&ca, Some((&cert, &key)));
        let r = http::tls_get(gw.addr, &client, "/jobs/J-1001", None)
            .await
            .expect("served");
        assert_eq!(r.status, 200, "{id}: {}", r.text());
        assert_nothing_withheld(&r.raw);
    }
    let records = gw.audit_records();
    assert_eq!(records[0]["recipient"], "acme-repairs"); // by cert_san
    assert_eq!(records[1]["recipient"], "brightfix"); // by cert_sha256
}

#[tokio::test]
async fn foreign_expired_and_missing_certificates_are_refused_under_required() {
    let up = Upstream::new().json("/api/jobs/J-1001", job()).run().await;
    let gw = Builder::before(&up)
        .tls(TlsSetup::Mutual("required"))
        .start()
        .await;
    let certs = gw.certs.as_ref().expect("certs");
    let ca = certs.gateway_ca_pem.clone();
    let san = need_to_know::certs::dev_san("acme-repairs");
    // Same name, another CA.
    let other_ca = Authority::new("someone else's CA").expect("ca");
    let foreign = other_ca.client(&san, Validity::default()).expect("cert");
    // The right CA, but long expired.
    let expired = certs
        .recipients_ca
        .client(
            &san,
            Validity {
                not_before: (2020, 1, 1),
                not_after: (2021, 1, 1),
            },
        )
        .expect("cert");
    let key = gw.key("acme-repairs").to_string();
    let cases = [
        (
            "foreign CA",
            Some((foreign.cert_pem.as_str(), foreign.key_pem.as_str())),
        ),
        (
            "expired",
            Some((expired.cert_pem.as_str(), expired.key_pem.as_str())),
        ),
        ("no certificate", None),
    ];
    for (name, client) in cases {
        let connector = http::tls_connector(&ca, client);
        let result = http::tls_get(gw.addr, &connector, "/jobs/J-1001", Some(&key)).await;
        match result {
            Err(_) => {}
            Ok(r) => assert!(r.status == 0 || r.status == 401, "{name}: {}", r.text()),
        }
    }
    assert_eq!(up.count(), 0, "a refused certificate reached the upstream");
}

#[tokio::test]
async fn a_certificate_that_names_no_recipient_is_401() {
    let up = Upstream::new().json("/api/jobs/J-1001", job()).run().await;
    let gw = Builder::before(&up)
        .tls(TlsSetup::Mutual("required"))
        .start()
        .await;
    let certs = gw.certs.as_ref().expect("certs");
    let stranger = certs
        .recipients_ca
        .client("stranger.example", Validity::default())
        .expect("cert");
    let connector = http::tls_connector(
        &certs.gateway_ca_pem,
        Some((&stranger.cert_pem, &stranger.key_pem)),
    );
    let r = http::tls_get(gw.addr, &connector, "/jobs/J-1001", None)
        .await
        .expect("handshake");
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn optional_client_auth_accepts_an_api_key_and_refuses_a_mismatch() {
    let up = Upstream::new().json("/api/jobs/J-1001", job()).run().await;
    let gw = Builder::before(&up)
        .tls(TlsSetup::Mutual("optional"))
        .start()
        .await;
    let ca = gw.certs.as_ref().expect("certs").gateway_ca_pem.clone();
    let no_cert = http::tls_connector(&ca, None);
    let r = http::tls_get(gw.addr, &no_cert, "/jobs/J-1001", Some(gw.key("brightfix")))
        .await
        .expect("served");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = http::tls_get(gw.addr, &no_cert, "/jobs/J-1001", None)
        .await
        .expect("served");
    assert_eq!(r.status, 401);
    // acme's certificate with brightfix's key: which is it? Neither.
    let (cert, key_pem) = gw.client_cert("acme-repairs");
    let with_cert = http::tls_connector(&ca, Some((&cert, &key_pem)));
    let r = http::tls_get(
        gw.addr,
        &with_cert,
        "/jobs/J-1001",
        Some(gw.key("brightfix")),
    )
    .await
    .expect("served");
    assert_eq!(r.status, 401, "{}", r.text());
    // The certificate with its own recipient's key is fine.
    let r = http::tls_get(
        gw.addr,
        &with_cert,
        "/jobs/J-1001",
        Some(gw.key("acme-repairs")),
    )
    .await
    .expect("served");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.count(), 2);
}

#[tokio::test]
async fn server_tls_with_api_keys() {
    let up = Upstream::new().json("/api/jobs/J-1001", job()).run().await;
    let gw = Builder::before(&up).tls(TlsSetup::ServerOnly).start().await;
    let connector = http::tls_connector(&gw.certs.as_ref().expect("certs").gateway_ca_pem, None);
    let r = http::tls_get(
        gw.addr,
        &connector,
        "/jobs/J-1001",
        Some(gw.key("acme-repairs")),
    )
    .await
    .expect("served");
    assert_eq!(r.status, 200, "{}", r.text());
    // Plain HTTP to a TLS port gets nothing useful.
    let r = http::get(gw.addr, "/jobs/J-1001", Some(gw.key("acme-repairs"))).await;
    assert_ne!(r.status, 200);
}

#[tokio::test]
async fn an_https_upstream_behind_a_private_ca() {
    let up = Upstream::new().json("/api/jobs/J-1001", job()).run().await;
    let ca = Authority::new("housing system CA").expect("ca");
    let cert = ca.server(&["127.0.0.1", "localhost"]).expect("cert");
    let front = http::tls_front(up.addr, &cert.cert_pem, &cert.key_pem).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_path = dir.path().join("upstream-ca.crt");
    std::fs::write(&ca_path, ca.cert_pem()).expect("write");
    let gw = Builder::new(&format!("https://127.0.0.1:{}/api", front.port()))
        .config(&format!("ca = \"{}\"", ca_path.display()))
        .start()
        .await;
    let r = http::get(gw.addr, "/jobs/J-1001", Some(gw.key("acme-repairs"))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_nothing_withheld(&r.raw);

    // Without the private CA the platform roots do not trust it: 502, nothing relayed.
    let other = Authority::new("another CA").expect("ca");
    let other_path = dir.path().join("other-ca.crt");
    std::fs::write(&other_path, other.cert_pem()).expect("write");
    let gw = Builder::new(&format!("https://127.0.0.1:{}/api", front.port()))
        .config(&format!("ca = \"{}\"", other_path.display()))
        .start()
        .await;
    let r = http::get(gw.addr, "/jobs/J-1001", Some(gw.key("acme-repairs"))).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.error(), "upstream_unavailable");
}

#[tokio::test]
async fn http2_by_alpn_is_served_and_filtered() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let up = Upstream::new().json("/api/jobs/J-1001", job()).run().await;
    let gw = Builder::before(&up).tls(TlsSetup::ServerOnly).start().await;
    let ca = gw.certs.as_ref().expect("certs").gateway_ca_pem.clone();
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(gw.addr)
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2");
    tokio::spawn(connection);
    let request = ::http::Request::get("https://localhost/jobs/J-1001")
        .header(
            "authorization",
            format!("Bearer {}", gw.key("acme-repairs")),
        )
        .body(Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_nothing_withheld(&body);
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(json["tenant"]["name"], "Joan Example");
}
