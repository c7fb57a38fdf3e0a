//! The hyper client to the housing management system, and the checks on what it returns.
//!
//! Runs after a request is identified, granted and within its rate. The gateway calls the
//! upstream with its own credential (the recipient's never leaves the gateway), a fixed
//! allow-list of request headers, and a timeout over the whole exchange. The response must
//! then prove itself safe to filter before any of it is used: a 2xx, JSON by content type, in
//! identity or gzip encoding, within the size limit (counted as it arrives, never buffered
//! past it, and again after decoding), and parsing strictly (no duplicate keys, bounded
//! depth). Anything else is an error, and no byte of the body reaches the recipient.
//!
//! On a streaming route a large body is handed over unread once its head passed the same
//! checks ([`Payload::Stream`]); [`crate::stream`] then reads it with a timeout per frame.

use std::fmt;
use std::io::Read;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::Value;

use crate::config;
use crate::json;

/// Request headers a recipient may have passed on to the upstream, one value each (the
/// first); all others are dropped. The pipeline refuses a request with two content-types, so
/// the one it checked the body against is the one the upstream reads.
pub const FORWARDED_HEADERS: [HeaderName; 2] = [header::ACCEPT_LANGUAGE, header::CONTENT_TYPE];

/// What went wrong with the upstream exchange.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("upstream unreachable")]
    Unavailable(#[source] hyper_util::client::legacy::Error),
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    #[error("upstream answered with a redirect ({0})")]
    Redirect(StatusCode),
    #[error("upstream answered {0}")]
    Status(StatusCode),
    #[error("upstream answered with an unexpected status ({0})")]
    UnexpectedStatus(StatusCode),
    #[error("upstream response is not JSON")]
    NotJson,
    #[error("upstream response has an encoding the gateway cannot decode")]
    Encoding,
    #[error("upstream response exceeds the {0}-byte limit")]
    TooLarge(u64),
    #[error("upstream response body could not be read")]
    Body(#[source] hyper::Error),
    #[error("upstream response could not be decoded")]
    Decode(#[source] std::io::Error),
    #[error("upstream response is not safe to filter: {0}")]
    Json(#[from] json::Error),
}

impl Error {
    /// The status the recipient gets: the upstream's own 4xx/5xx, 504 on timeout, else 502.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::Status(s) => *s,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// The stable code in the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unavailable(_) => "upstream_unavailable",
            Error::Timeout(_) => "upstream_timeout",
            Error::Redirect(_) => "upstream_redirect",
            Error::Status(_) => "upstream_error",
            Error::UnexpectedStatus(_) => "upstream_bad_status",
            Error::NotJson => "upstream_not_json",
            Error::Encoding => "upstream_bad_encoding",
            Error::TooLarge(_) => "upstream_too_large",
            Error::Body(_) | Error::Decode(_) => "upstream_broken_body",
            Error::Json(_) => "upstream_malformed",
        }
    }

    /// Faults of the upstream, as opposed to the gateway's own.
    pub fn is_upstream_fault(&self) -> bool {
        true
    }
}

/// One request to send upstream.
pub struct Forward {
    pub method: Method,
    /// Path and query, already checked and re-encoded by `routes`.
    pub target: String,
    pub request_id: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A usable upstream answer.
#[derive(Debug)]
pub struct Fetched {
    pub status: StatusCode,
    /// `None` for 204 No Content.
    pub body: Option<Payload>,
    /// Bytes read so far: all of a parsed body, none of a streamed one.
    pub bytes_read: u64,
}

/// An upstream body: parsed whole, or left to [`crate::stream`] to read as it arrives.
#[derive(Debug)]
pub enum Payload {
    Parsed(Value),
    /// Checked so far for status, content type, no content coding and the declared length.
    Stream(Incoming),
}

/// The upstream endpoint and the client that reaches it.
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// `scheme://authority` and the base path without its trailing slash.
    origin: String,
    base_path: String,
    timeout: Duration,
    credential: Option<HeaderValue>,
    max_body: u64,
    max_depth: usize,
    stream_threshold: u64,
    max_streamed: u64,
}

// === impl Upstream ===

impl Upstream {
    /// # Errors
    ///
    /// When `credential_env` is set and the variable is missing or not a valid header value,
    /// or the URL's scheme is not supported by this build.
    pub fn new(settings: &config::Upstream, limits: &config::Limits) -> Result<Upstream, String> {
        let credential = credential(settings)?;
        let https = settings.url.scheme_str() == Some("https");
        let tls_config = if https {
            crate::tls::upstream_client_config(settings.ca.as_deref()).map_err(|e| e.to_string())?
        } else {
            // Never used: the origin is plain http. An empty root store trusts nothing.
            crate::tls::untrusting_client_config().map_err(|e| e.to_string())?
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(settings.timeout));
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        let url = &settings.url;
        let origin = format!(
            "{}://{}",
            url.scheme_str().unwrap_or("http"),
            url.authority().map(|a| a.as_str()).unwrap_or_default()
        );
        Ok(Upstream {
            client,
            origin,
            base_path: url.path().trim_end_matches('/').to_string(),
            timeout: settings.timeout,
            credential,
            max_body: limits.max_response_body,
            max_depth: limits.max_depth,
            stream_threshold: limits.stream_threshold,
            max_streamed: limits.max_streamed_body,
        })
    }

    /// Whether the upstream accepts a TCP connection within `within`: the readiness probe
    /// (a connection, not a request, so probes never touch tenant data).
    pub async fn probe(&self, within: Duration) -> bool {
        let authority = self
            .origin
            .split("://")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let https = self.origin.starts_with("https://");
        let target = if authority.contains(':') && !authority.ends_with(']') {
            authority
        } else {
            format!("{authority}:{}", if https { 443 } else { 80 })
        };
        matches!(
            tokio::time::timeout(within, tokio::net::TcpStream::connect(target)).await,
            Ok(Ok(_))
        )
    }

    /// The longest the upstream may take to answer, or, streaming, to send the next frame.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `forward` and returns the checked, parsed answer; on a `streamable` route a
    /// large identity-coded body is returned unread instead ([`Payload::Stream`]).
    ///
    /// # Errors
    ///
    /// See [`Error`]: every way the upstream can fail or answer with something unsafe.
    pub async fn fetch(&self, forward: Forward, streamable: bool) -> Result<Fetched, Error> {
        let request = self.request(forward);
        let deadline = tokio::time::Instant::now() + self.timeout;
        let response = tokio::time::timeout_at(deadline, self.head(request))
            .await
            .map_err(|_| Error::Timeout(self.timeout))??;
        if streamable && self.streams(&response) {
            // A declared length the stream could never finish: refuse before the first byte
            // rather than disclose a part and abort.
            if content_length(response.headers()).is_some_and(|n| n > self.max_streamed) {
                return Err(Error::TooLarge(self.max_streamed));
            }
            return Ok(Fetched {
                status: response.status(),
                body: Some(Payload::Stream(response.into_body())),
                bytes_read: 0,
            });
        }
        let (status, headers, raw, bytes_read) =
            tokio::time::timeout_at(deadline, self.read(response))
                .await
                .map_err(|_| Error::Timeout(self.timeout))??;
        if status == StatusCode::NO_CONTENT {
            return Ok(Fetched {
                status,
                body: None,
                bytes_read,
            });
        }
        let decoded = decode(&headers, raw, self.max_body)?;
        let body = json::parse_strict(&decoded, self.max_depth)?;
        Ok(Fetched {
            status,
            body: Some(Payload::Parsed(body)),
            bytes_read,
        })
    }

    /// Whether a checked response head should stream: a body, no content coding (gzip is
    /// decoded whole, on the buffered path), and a length over the threshold or none.
    fn streams(&self, response: &http::Response<Incoming>) -> bool {
        let headers = response.headers();
        if response.status() == StatusCode::NO_CONTENT
            || headers.contains_key(header::CONTENT_ENCODING)
        {
            return false;
        }
        match content_length(headers) {
            Some(length) => length > self.stream_threshold,
            None => true,
        }
    }

    fn request(&self, forward: Forward) -> http::Request<Full<Bytes>> {
        let uri = format!("{}{}{}", self.origin, self.base_path, forward.target);
        let mut request = http::Request::new(Full::new(forward.body));
        *request.method_mut() = forward.method;
        // The target was rebuilt from checked parts, so it always parses; a failure here would
        // leave the default "/" and the upstream would answer for the wrong resource, so
        // refuse by sending to an unparsable... rather: it cannot fail, see routes::authorize.
        *request.uri_mut() = uri.parse().unwrap_or_default();
        let headers = request.headers_mut();
        for name in FORWARDED_HEADERS {
            if let Some(value) = forward.headers.get(&name) {
                headers.insert(name, value.clone());
            }
        }
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, identity"),
        );
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("need-to-know/", env!("CARGO_PKG_VERSION"))),
        );
        if let Ok(id) = HeaderValue::try_from(forward.request_id) {
            headers.insert("x-request-id", id);
        }
        if let Some(credential) = &self.credential {
            headers.insert(header::AUTHORIZATION, credential.clone());
        }
        request
    }

    /// The response head, checked: status, content type, declared length.
    async fn head(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<Incoming>, Error> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(Error::Unavailable)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(Error::Redirect(status));
        }
        if status.is_client_error() || status.is_server_error() {
            // The body is dropped unread: it is never relayed, and the connection is not
            // worth saving.
            return Err(Error::Status(status));
        }
        if !status.is_success() {
            return Err(Error::UnexpectedStatus(status));
        }
        if status != StatusCode::NO_CONTENT {
            check_content_type(response.headers())?;
        }
        if let Some(length) = content_length(response.headers()) {
            // A length only the streaming path may carry is checked again when it streams.
            if length > self.max_body.max(self.max_streamed) {
                return Err(Error::TooLarge(self.max_body.max(self.max_streamed)));
            }
        }
        Ok(response)
    }

    /// The raw body bytes, read within the buffered size limit.
    async fn read(
        &self,
        response: http::Response<Incoming>,
    ) -> Result<(StatusCode, HeaderMap, Bytes, u64), Error> {
        let status = response.status();
        if content_length(response.headers()).is_some_and(|n| n > self.max_body) {
            return Err(Error::TooLarge(self.max_body));
        }
        let (parts, mut body) = response.into_parts();
        let mut buffer = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(Error::Body)?;
            if let Ok(data) = frame.into_data() {
                if (buffer.len() + data.len()) as u64 > self.max_body {
                    return Err(Error::TooLarge(self.max_body));
                }
                buffer.extend_from_slice(&data);
            }
        }
        let read = buffer.len() as u64;
        Ok((status, parts.headers, buffer.freeze(), read))
    }
}

/// The `Authorization` header the gateway sends upstream, from the variable
/// `credential_env` names; `None` when it names none.
///
/// # Errors
///
/// The variable is not set, or its value cannot be sent in a header. The message names the
/// variable, never its value.
pub fn credential(settings: &config::Upstream) -> Result<Option<HeaderValue>, String> {
    let Some(name) = &settings.credential_env else {
        return Ok(None);
    };
    let value = std::env::var(name)
        .map_err(|_| format!("upstream.credential_env names {name}, which is not set"))?;
    let mut header = HeaderValue::try_from(format!("Bearer {value}"))
        .map_err(|_| format!("the value of {name} cannot be sent in a header"))?;
    header.set_sensitive(true);
    Ok(Some(header))
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("origin", &self.origin)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// JSON is `application/json` or `application/<something>+json`, in UTF-8 if a charset is given.
fn check_content_type(headers: &HeaderMap) -> Result<(), Error> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let value = values.next().ok_or(Error::NotJson)?;
    if values.next().is_some() {
        return Err(Error::NotJson);
    }
    let text = value
        .to_str()
        .map_err(|_| Error::NotJson)?
        .to_ascii_lowercase();
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    let is_json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if !is_json {
        return Err(Error::NotJson);
    }
    for param in parts {
        let (name, value) = param.split_once('=').ok_or(Error::NotJson)?;
        if name.trim() == "charset" && value.trim().trim_matches('"') != "utf-8" {
            return Err(Error::NotJson);
        }
    }
    Ok(())
}

/// Undoes the content encoding: identity, or one layer of gzip with the limit applied to the
/// decoded bytes (a small gzip can expand a thousandfold).
///
/// A gzip body may hold several members, one after another: every one is decoded, and any
/// bytes after the last member that do not start another are an error. A decoder that
/// stopped at the end of the first member would hand the parser a body that ends where a
/// plain one would have trailing data, so what follows the JSON value would go unchecked;
/// decoded whole, the body meets [`json::parse_strict`]'s one rule for trailing bytes, as an
/// identity-coded body does.
fn decode(headers: &HeaderMap, raw: Bytes, limit: u64) -> Result<Bytes, Error> {
    let mut values = headers.get_all(header::CONTENT_ENCODING).iter();
    let Some(value) = values.next() else {
        return Ok(raw);
    };
    if values.next().is_some() {
        return Err(Error::Encoding);
    }
    let encoding = value
        .to_str()
        .map_err(|_| Error::Encoding)?
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" => Ok(raw),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            let mut reader =
                flate2::read::MultiGzDecoder::new(&raw[..]).take(limit.saturating_add(1));
            reader.read_to_end(&mut out).map_err(Error::Decode)?;
            if out.len() as u64 > limit {
                return Err(Error::TooLarge(limit));
            }
            Ok(Bytes::from(out))
        }
        _ => Err(Error::Encoding),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: HeaderName, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn content_types() {
        let ok = |v| check_content_type(&with(header::CONTENT_TYPE, v)).is_ok();
        assert!(ok("application/json"));
        assert!(ok("application/json; charset=utf-8"));
        assert!(ok("Application/JSON; charset=\"UTF-8\""));
        assert!(ok("application/problem+json"));
        assert!(!ok("text/html"));
        assert!(!ok("application/json; charset=latin1"));
        assert!(!ok("application/jsonx"));
        assert!(check_content_type(&HeaderMap::new()).is_err());
    }

    #[test]
    fn encodings() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&[b' '; 10_000]).expect("gzip");
        let packed = Bytes::from(gz.finish().expect("gzip"));
        let h = with(header::CONTENT_ENCODING, "gzip");
        assert_eq!(
            decode(&h, packed.clone(), 10_000).expect("fits").len(),
            10_000
        );
        assert!(matches!(decode(&h, packed, 9_999), Err(Error::TooLarge(_))));
        let br = with(header::CONTENT_ENCODING, "br");
        assert!(matches!(
            decode(&br, Bytes::new(), 10),
            Err(Error::Encoding)
        ));
        let bad = with(header::CONTENT_ENCODING, "gzip");
        assert!(matches!(
            decode(&bad, Bytes::from_static(b"not gzip"), 10),
            Err(Error::Decode(_))
        ));
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(bytes).expect("gzip");
        gz.finish().expect("gzip")
    }

    #[test]
    fn every_gzip_member_is_decoded_and_bytes_after_the_last_are_refused() {
        let h = with(header::CONTENT_ENCODING, "gzip");
        let two = [gzip(b"{\"a\":1}"), gzip(b"{\"b\":2}")].concat();
        let decoded = decode(&h, Bytes::from(two), 100).expect("two members");
        assert_eq!(&decoded[..], b"{\"a\":1}{\"b\":2}");
        // The second document is trailing data to the parser, as in a plain body.
        assert!(json::parse_strict(&decoded, 8).is_err());
        for tail in [&b"}}}garbage"[..], b"\0", b"\x1f"] {
            let body = [gzip(b"{\"a\":1}"), tail.to_vec()].concat();
            assert!(
                matches!(decode(&h, Bytes::from(body), 100), Err(Error::Decode(_))),
                "{tail:?}"
            );
        }
        // The limit counts the decoded bytes of every member together.
        let two = [gzip(&[b' '; 60]), gzip(&[b' '; 60])].concat();
        assert!(matches!(
            decode(&h, Bytes::from(two), 100),
            Err(Error::TooLarge(100))
        ));
    }
}
