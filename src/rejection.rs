//! The one table from a rejection to what a recipient is told: status, stable code and
//! message. `serve`, a streamed response and `explain` all answer from it, so it sits below
//! all three.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

use crate::audit::{self, Record};
use crate::filter;
use crate::identity;
use crate::json::split;
use crate::limits::{self, in_flight};
use crate::routes;
use crate::upstream;

/// Why a request ended without a filtered body, or a streamed one was cut short.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error(transparent)]
    Identity(#[from] identity::Error),
    #[error(transparent)]
    Routes(#[from] routes::Error),
    #[error(transparent)]
    Limits(#[from] limits::Error),
    #[error(transparent)]
    InFlight(#[from] in_flight::Full),
    #[error(transparent)]
    RequestBody(#[from] RequestBodyError),
    /// A write's body holds a path its route does not `accept`: nothing goes upstream.
    #[error(transparent)]
    NotAccepted(#[from] filter::write::NotAccepted),
    #[error(transparent)]
    Upstream(#[from] upstream::Error),
    /// The upstream sent nothing for this long partway through a streamed body.
    #[error("upstream did not send for {0:?} during the body")]
    UpstreamSilent(Duration),
    /// A streamed body turned out, partway, not to be safe to filter or to name no subject.
    #[error(transparent)]
    Streamed(#[from] split::Error),
    /// A `refuse` rule held (or could not be evaluated): nothing of the body is sent.
    #[error("{0}")]
    Refused(filter::Refusal),
    /// An array answer longer than the route's `max_items`: nothing is sent, and the
    /// recipient asks again for less.
    #[error("the answer holds more than {0} items: ask for fewer with this route's query parameters (a narrower search, or a page)")]
    TooManyItems(usize),
    /// The body would disclose something but names no data subject: nothing is sent.
    #[error("the data subjects of the response could not be identified, so nothing was sent")]
    SubjectsUnidentified,
    #[error("the disclosure could not be recorded, so nothing was sent")]
    Audit(#[source] audit::Error),
    /// A streamed response's recipient took nothing for this long, so it was cut off.
    #[error("the recipient took nothing for {0:?}")]
    RecipientStalled(Duration),
    /// A streamed response's body was dropped: the recipient went away.
    #[error("the recipient closed the connection")]
    RecipientGone,
    /// Something the gateway holds true did not hold, named for the log. Nothing is sent:
    /// a bug must not disclose, and must not pass for the policy's or the upstream's doing.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// A problem with the recipient's own request body.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    #[error("request body exceeds the {0}-byte limit")]
    TooLarge(u64),
    #[error("a {0} request carries no body")]
    Unexpected(http::Method),
    #[error("request body must be application/json")]
    NotJson,
    #[error("more than one content-type header: a request may carry exactly one")]
    ContentTypeRepeated,
    /// The body claims JSON and is not one strict JSON document; the message names the
    /// problem and its position, never a byte of the body.
    #[error("request body is not valid JSON: {0}")]
    Json(#[source] crate::json::Error),
    #[error("request body could not be read")]
    Read,
    #[error("request body did not arrive within {0:?}")]
    Timeout(std::time::Duration),
    #[error("only a single chunked transfer coding is accepted")]
    TransferCoding,
}

// === impl Rejection ===

impl Rejection {
    /// The upstream's doing, as opposed to the recipient's or the gateway's.
    fn is_upstream_fault(&self) -> bool {
        match self {
            Rejection::Upstream(_) | Rejection::UpstreamSilent(_) => true,
            Rejection::Streamed(e) => !matches!(e, split::Error::Unidentified),
            _ => false,
        }
    }
}

/// The one mapping from a rejection to status, stable code and message.
pub(crate) fn describe(rejection: &Rejection) -> (StatusCode, &'static str, String) {
    match rejection {
        Rejection::Identity(e) => (StatusCode::UNAUTHORIZED, e.code(), e.to_string()),
        Rejection::Routes(e) => (e.status(), e.code(), e.to_string()),
        Rejection::Limits(e @ limits::Error::Exceeded(_)) => {
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
        }
        Rejection::Limits(e @ limits::Error::Unavailable) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "rate_limit_unavailable",
            e.to_string(),
        ),
        Rejection::InFlight(e) => (
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_in_flight",
            e.to_string(),
        ),
        Rejection::RequestBody(e) => match e {
            RequestBodyError::Timeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                e.to_string(),
            ),
            RequestBodyError::TooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                e.to_string(),
            ),
            RequestBodyError::ContentTypeRepeated => (
                StatusCode::BAD_REQUEST,
                "ambiguous_content_type",
                e.to_string(),
            ),
            _ => (StatusCode::BAD_REQUEST, "bad_request_body", e.to_string()),
        },
        Rejection::NotAccepted(e @ filter::write::NotAccepted::Field(_)) => {
            (StatusCode::BAD_REQUEST, "field_not_accepted", e.to_string())
        }
        Rejection::NotAccepted(e) => (StatusCode::BAD_REQUEST, "bad_request_body", e.to_string()),
        // Where in the body the JSON broke would tell the recipient the length of values it
        // is not sent; the log has it.
        Rejection::Upstream(e @ upstream::Error::Json(_)) => (
            e.status(),
            e.code(),
            "upstream response is not safe to filter".to_owned(),
        ),
        Rejection::Upstream(e) => (e.status(), e.code(), e.to_string()),
        Rejection::UpstreamSilent(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            rejection.to_string(),
        ),
        Rejection::Streamed(split::Error::Unidentified) => (
            StatusCode::BAD_GATEWAY,
            "subjects_unidentified",
            "the data subjects of the response could not be identified, so nothing more was sent"
                .to_owned(),
        ),
        // As for a buffered body: not where the JSON broke.
        Rejection::Streamed(e) => (
            StatusCode::BAD_GATEWAY,
            match e {
                split::Error::ElementTooLarge(_) => "upstream_too_large",
                _ => "upstream_malformed",
            },
            "upstream response is not safe to filter".to_owned(),
        ),
        Rejection::Refused(r) => refusal_answer(r),
        Rejection::TooManyItems(_) => (
            StatusCode::BAD_REQUEST,
            "too_many_items",
            rejection.to_string(),
        ),
        Rejection::SubjectsUnidentified => (
            StatusCode::BAD_GATEWAY,
            "subjects_unidentified",
            rejection.to_string(),
        ),
        Rejection::Audit(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            rejection.to_string(),
        ),
        Rejection::RecipientStalled(_) => (
            StatusCode::REQUEST_TIMEOUT,
            "recipient_stalled",
            rejection.to_string(),
        ),
        Rejection::RecipientGone => (
            StatusCode::BAD_REQUEST,
            "recipient_gone",
            rejection.to_string(),
        ),
        Rejection::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the response could not be produced".to_owned(),
        ),
    }
}

/// The code a rejection's record names: the one its recipient is told, but for a refusal by
/// policy, which the ledger records as such even where the recipient is told "not found".
pub(crate) fn recorded_code(rejection: &Rejection) -> &'static str {
    match rejection {
        Rejection::Refused(_) => REFUSED_BY_POLICY,
        _ => describe(rejection).1,
    }
}

const REFUSED_BY_POLICY: &str = "refused_by_policy";

/// What a recipient is told of a policy refusal: one answer whatever the rule and whether it
/// held or erred, since the reason would tell it what the rule found in data it is not sent.
/// A rule's 404 is answered exactly as an upstream 404 is, so "not yours" and "does not
/// exist" cannot be told apart. The reason stays in the audit record and in `explain`.
pub fn refusal_answer(refusal: &filter::Refusal) -> (StatusCode, &'static str, String) {
    match StatusCode::from_u16(refusal.status) {
        Ok(status) if status != StatusCode::FORBIDDEN => {
            let as_upstream = upstream::Error::Status(status);
            (
                as_upstream.status(),
                as_upstream.code(),
                as_upstream.to_string(),
            )
        }
        _ => (
            StatusCode::FORBIDDEN,
            REFUSED_BY_POLICY,
            "refused by policy".to_owned(),
        ),
    }
}

/// Client faults are routine; upstream faults are warnings; ours are errors. `record` says
/// whose request it was.
pub(crate) fn log_rejection(rejection: &Rejection, record: &Record) {
    let request_id = &record.request_id;
    let recipient = record.recipient.as_deref().unwrap_or("-");
    let route = record.route.as_deref().unwrap_or("-");
    match rejection {
        Rejection::Audit(e) => {
            tracing::error!(%request_id, error = %e, "audit fault")
        }
        Rejection::Internal(_) => {
            tracing::error!(%request_id, recipient, route, error = %rejection, "internal fault")
        }
        _ if rejection.is_upstream_fault() => {
            tracing::warn!(%request_id, recipient, route, error = %rejection, "upstream fault")
        }
        other => {
            tracing::debug!(%request_id, recipient, route, error = %other, "refused")
        }
    }
}

pub(crate) fn error_body(code: &str, message: &str, request_id: &str) -> Bytes {
    let body = json!({ "error": code, "message": message, "request_id": request_id });
    Bytes::from(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broken invariant tells the recipient nothing of what broke, and is not passed off
    /// as the policy's refusal or the upstream's fault.
    #[test]
    fn an_internal_failure_is_a_generic_500() {
        let rejection = Rejection::Internal("the filtered body could not be serialised");
        let (status, code, message) = describe(&rejection);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(code, "internal_error");
        assert_eq!(message, "the response could not be produced");
        assert!(!rejection.is_upstream_fault());
    }

    /// Where a streamed body broke is not told, as for a buffered one; an element too large
    /// keeps its own code.
    #[test]
    fn a_streamed_body_that_breaks_is_told_as_a_buffered_one() {
        let buffered = Rejection::Upstream(upstream::Error::Json(crate::json::Error::DuplicateKey));
        let streamed = Rejection::Streamed(split::Error::Trailing(7));
        assert_eq!(describe(&streamed), describe(&buffered));
        let (status, code, message) =
            describe(&Rejection::Streamed(split::Error::ElementTooLarge(9)));
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(code, "upstream_too_large");
        assert_eq!(message, "upstream response is not safe to filter");
    }
}
