//! The recipient's own request body, read and checked before anything goes upstream.

use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as _, Incoming};

use crate::config::Limits;
use crate::rejection::RequestBodyError;

/// Reads the recipient's body and checks it by what arrived, whatever the framing: over
/// HTTP/2 a body needs no content-length, so the headers alone cannot say whether one follows.
/// GET, DELETE and HEAD must carry no byte; any other body must be one JSON document, parsed
/// as strictly as an upstream body, under exactly one `application/json` content-type, so the
/// upstream reads the document the gateway checked.
pub(super) async fn read_body(
    parts: &http::request::Parts,
    body: Incoming,
    limits: &Limits,
) -> Result<Bytes, RequestBodyError> {
    let limit = limits.max_request_body;
    if parts.headers.contains_key(header::TRANSFER_ENCODING) {
        // hyper frames by the last coding and ignores the others; a body whose gzip (or any
        // other) coding would be silently dropped on its way upstream is refused instead.
        let codings: Vec<String> = parts
            .headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("\0").split(','))
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        if codings != ["chunked"] {
            return Err(RequestBodyError::TransferCoding);
        }
    }
    // Two content-types leave the upstream to choose one, maybe not the one checked here.
    let mut content_types = parts.headers.get_all(header::CONTENT_TYPE).iter();
    let content_type = content_types.next();
    if content_types.next().is_some() {
        return Err(RequestBodyError::ContentTypeRepeated);
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(RequestBodyError::TooLarge(limit));
    }
    let method = &parts.method;
    let bodiless = *method == http::Method::GET
        || *method == http::Method::DELETE
        || *method == http::Method::HEAD;
    // Framing that announces a body where none belongs is refused unread (a GET with both
    // Content-Length and Transfer-Encoding is how requests are smuggled), whether or not
    // its body turns out empty; a body that arrives unannounced is caught below.
    let announced =
        parts.headers.contains_key(header::TRANSFER_ENCODING) || declared.is_some_and(|n| n > 0);
    if bodiless && announced {
        return Err(RequestBodyError::Unexpected(method.clone()));
    }
    // The end of the stream known from the head (no content-length, or 0, over HTTP/1.1;
    // END_STREAM on the HEADERS frame over HTTP/2): nothing can arrive.
    let bytes = if body.is_end_stream() {
        Bytes::new()
    } else {
        let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
        match Limited::new(body, limit_usize).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(RequestBodyError::TooLarge(limit));
            }
            Err(_) => return Err(RequestBodyError::Read),
        }
    };
    if bytes.is_empty() {
        return Ok(bytes);
    }
    if bodiless {
        return Err(RequestBodyError::Unexpected(method.clone()));
    }
    let json = content_type.and_then(|v| v.to_str().ok()).is_some_and(|v| {
        let essence = v.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case("application/json")
    });
    if !json {
        return Err(RequestBodyError::NotJson);
    }
    crate::json::parse_strict(&bytes, limits.max_depth).map_err(RequestBodyError::Json)?;
    Ok(bytes)
}
