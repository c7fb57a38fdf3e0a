//! A raw HTTP/1.1 client over TCP, so tests see exactly the bytes a recipient would, and can
//! send targets that a well-behaved client library would normalise away.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response, as received.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Lower-case names, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Every byte received, head and body.
    pub raw: Vec<u8>,
}

impl Response {
    /// Asserts a 429 `rate_limited` whose Retry-After is a whole number of seconds in
    /// `seconds`.
    pub fn assert_rate_limited(&self, seconds: std::ops::RangeInclusive<u64>) {
        assert_eq!(self.status, 429, "{}", self.text());
        assert_eq!(self.error(), "rate_limited");
        let retry: u64 = self
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .expect("Retry-After");
        assert!(seconds.contains(&retry), "{retry}");
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The `error` code of a gateway error body.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// `GET target` with an optional Bearer key, `Connection: close`.
pub async fn get(addr: SocketAddr, target: &str, key: Option<&str>) -> Response {
    request(addr, "GET", target, key, &[]).await
}

pub async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
) -> Response {
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n");
    if let Some(key) = key {
        head.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    send_raw(addr, head.as_bytes()).await
}

/// Writes `bytes`, reads until the server closes (at most 10 s), and parses the first
/// response. A connection closed without any response gives status 0.
pub async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect to gateway");
    stream.write_all(bytes).await.expect("write request");
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await;
    match read {
        Ok(Ok(_)) => {}
        // A reset after the response was sent still leaves the bytes we got.
        Ok(Err(_)) => {}
        Err(_) => panic!("the gateway did not close the connection within 10 s"),
    }
    parse(raw)
}

fn parse(raw: Vec<u8>) -> Response {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Response {
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
            raw,
        };
    };
    let (status, headers) = parse_head(&raw[..end]);
    let body = raw[end + 4..].to_vec();
    Response {
        status,
        headers,
        body,
        raw,
    }
}

/// The status and headers (names lower-cased) of a response head, the bytes before its blank
/// line; the status is 0 when the first line is not a status line.
pub fn parse_head(head: &[u8]) -> (u16, Vec<(String, String)>) {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers)
}

/// The `content-length` of headers from [`parse_head`]; 0 when there is none or it is not a
/// number, as for the gateway's responses that have no body.
pub fn content_length(headers: &[(String, String)]) -> usize {
    headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// A TLS client trusting `ca_pem`, presenting `client` (cert PEM, key PEM) if given.
pub fn tls_connector(ca_pem: &str, client: Option<(&str, &str)>) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("ca pem")).expect("ca");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("cert pem");
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key pem");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client cert")
        }
    };
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// `GET target` over TLS. `Err` when the handshake (or the first read) fails, as it does
/// for a refused client certificate under TLS 1.3.
pub async fn tls_get(
    addr: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
    target: &str,
    key: Option<&str>,
) -> std::io::Result<Response> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut stream = connector.connect(name, tcp).await?;
    let mut head = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(key) = key {
        head.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut raw = Vec::new();
    match tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if raw.is_empty() => return Err(e),
        Ok(Err(_)) => {}
        Err(_) => panic!("no answer over TLS within 10 s"),
    }
    Ok(parse(raw))
}

/// A TLS front for a plain upstream: terminates TLS with `cert`/`key` and relays bytes, so
/// the gateway can be tested against an https upstream behind a private CA.
pub async fn tls_front(backend: SocketAddr, cert_pem: &str, key_pem: &str) -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("cert pem");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key pem");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    addr
}

/// The body of a chunked HTTP/1.1 response, and whether its terminating chunk arrived.
pub fn dechunk(body: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size = std::str::from_utf8(&rest[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        let Some(size) = size else {
            return (out, false);
        };
        rest = &rest[eol + 2..];
        if size == 0 {
            return (out, rest.starts_with(b"\r\n"));
        }
        if rest.len() < size + 2 {
            out.extend_from_slice(&rest[..rest.len().min(size)]);
            return (out, false);
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}
