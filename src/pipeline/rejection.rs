//! The one table from a rejection to what a recipient is told: status, stable code and
//! message.

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

use crate::audit::{self, Record};
use crate::filter;
use crate::identity;
use crate::limits::{self, in_flight};
use crate::routes;
use crate::upstream;

use super::RequestBodyError;

/// Why a request ended without a filtered body.
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
    #[error(transparent)]
    Upstream(#[from] upstream::Error),
    /// A `refuse` rule held (or could not be evaluated): nothing of the body is sent.
    #[error("{0}")]
    Refused(filter::Refusal),
    /// The body would disclose something but names no data subject: nothing is sent.
    #[error("the data subjects of the response could not be identified, so nothing was sent")]
    SubjectsUnidentified,
    #[error("the disclosure could not be recorded, so nothing was sent")]
    Audit(#[source] audit::Error),
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
        // Where in the body the JSON broke would tell the recipient the length of values it
        // is not sent; the log has it.
        Rejection::Upstream(e @ upstream::Error::Json(_)) => (
            e.status(),
            e.code(),
            "upstream response is not safe to filter".to_owned(),
        ),
        Rejection::Upstream(e) => (e.status(), e.code(), e.to_string()),
        Rejection::Refused(r) => refusal_answer(r),
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
    }
}

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
            "refused_by_policy",
            "refused by policy".to_owned(),
        ),
    }
}

/// Client faults are routine; upstream faults are warnings; ours are errors.
pub(super) fn log_rejection(rejection: &Rejection, record: &Record) {
    let recipient = record.recipient.as_deref().unwrap_or("-");
    let route = record.route.as_deref().unwrap_or("-");
    match rejection {
        Rejection::Upstream(e) => {
            tracing::warn!(request_id = %record.request_id, recipient, route, error = %e, "upstream fault")
        }
        Rejection::Audit(e) => {
            tracing::error!(request_id = %record.request_id, error = %e, "audit fault")
        }
        other => {
            tracing::debug!(request_id = %record.request_id, recipient, route, error = %other, "refused")
        }
    }
}

pub(super) fn error_body(code: &str, message: &str, request_id: &str) -> Bytes {
    let body = json!({ "error": code, "message": message, "request_id": request_id });
    Bytes::from(body.to_string())
}
