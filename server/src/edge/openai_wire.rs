//! Refusals and stream ends in OpenAI's shape: `{"error": {"message", "type", "param",
//! "code"}}` with the matching HTTP status, rendered from the `tonic::Status` a gRPC call
//! would answer with: the field of a bad request becomes `param`, a rate limit's
//! `retry-after` becomes the HTTP header, a used-up budget is `insufficient_quota`.

use axum::{
    body::{Body, Bytes},
    response::{IntoResponse, Response},
};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The status of a call answered in another format than gRPC, for the layers outside it
/// (the audit layer): in the response's extensions when the answer is complete, or as
/// `grpc-status` in a trailers frame at the end of a streamed body (which the audit layer
/// consumes; REST clients never see it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallCode(pub Code);

/// The HTTP status, OpenAI error type and code of a gRPC status code.
fn classify(code: Code) -> (StatusCode, &'static str, Option<&'static str>) {
    match code {
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
            (StatusCode::BAD_REQUEST, "invalid_request_error", None)
        }
        Code::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            Some("invalid_api_key"),
        ),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "permission_error", None),
        Code::NotFound | Code::Unimplemented => {
            (StatusCode::NOT_FOUND, "invalid_request_error", None)
        }
        Code::AlreadyExists | Code::Aborted => {
            (StatusCode::CONFLICT, "invalid_request_error", None)
        }
        Code::ResourceExhausted => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            Some("rate_limit_exceeded"),
        ),
        Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "server_error", None),
        Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "server_error", None),
        Code::Ok | Code::Cancelled | Code::Unknown | Code::Internal | Code::DataLoss => {
            (StatusCode::INTERNAL_SERVER_ERROR, "server_error", None)
        }
    }
}

/// Whether `status` reports a used-up token budget (a rate limit says when to retry, a
/// budget does not).
fn is_budget(status: &Status) -> bool {
    status.code() == Code::ResourceExhausted && status.metadata().get("retry-after").is_none()
}

/// The error object of `status`.
fn error_object(status: &Status) -> serde_json::Value {
    let (_, mut kind, mut code) = classify(status.code());
    if is_budget(status) {
        (kind, code) = ("insufficient_quota", Some("insufficient_quota"));
    }
    let param = status
        .get_details_bad_request()
        .and_then(|details| details.field_violations.into_iter().next())
        .map(|violation| violation.field);
    json!({
        "error": {
            "message": status.message(),
            "type": kind,
            "param": param,
            "code": code,
        }
    })
}

/// The response refusing a call with `status`.
pub fn error_response(status: &Status) -> Response<Body> {
    let (http_status, _, _) = classify(status.code());
    let mut response = (
        http_status,
        [(header::CONTENT_TYPE, "application/json")],
        error_object(status).to_string(),
    )
        .into_response();
    if let Some(seconds) = status.metadata().get("retry-after")
        && let Ok(value) = HeaderValue::from_bytes(seconds.as_bytes())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    // OpenAI's SDKs retry 429 and 5xx answers unless told not to: a used-up budget stays
    // used up, and a call that failed inside (its audit event unwritten, say) may have
    // stored or spent something already.
    if is_budget(status)
        || matches!(
            status.code(),
            Code::Internal | Code::Unknown | Code::DataLoss
        )
    {
        response
            .headers_mut()
            .insert("x-should-retry", HeaderValue::from_static("false"));
    }
    response.extensions_mut().insert(CallCode(status.code()));
    response
}

/// The server-sent event reporting `status` in a stream that has started.
pub fn error_event(status: &Status) -> Bytes {
    Bytes::from(format!("data: {}\n\n", error_object(status)))
}

/// The event that ends a stream that completed.
pub fn done_event() -> Bytes {
    Bytes::from_static(b"data: [DONE]\n\n")
}

#[cfg(test)]
mod tests {
    use tonic_types::ErrorDetails;

    use super::*;

    #[test]
    fn a_bad_field_becomes_param_and_a_rate_limit_a_retry_after() {
        let bad = Status::with_error_details(
            Code::InvalidArgument,
            "messages: must not be empty",
            ErrorDetails::with_bad_request_violation("messages", "must not be empty"),
        );
        let object = error_object(&bad);
        assert_eq!(object["error"]["param"], "messages");
        assert_eq!(object["error"]["type"], "invalid_request_error");
        assert_eq!(error_response(&bad).status(), StatusCode::BAD_REQUEST);

        let mut limited = Status::resource_exhausted("slow down");
        limited
            .metadata_mut()
            .insert("retry-after", "7".parse().unwrap());
        let response = error_response(&limited);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        assert_eq!(
            response.extensions().get::<CallCode>(),
            Some(&CallCode(Code::ResourceExhausted))
        );
        assert_eq!(
            error_response(&Status::unauthenticated("no")).status(),
            StatusCode::UNAUTHORIZED
        );
        let budget = Status::resource_exhausted("budget used up");
        let response = error_response(&budget);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["x-should-retry"], "false");
        assert_eq!(error_object(&budget)["error"]["code"], "insufficient_quota");
        assert!(
            !error_response(&limited)
                .headers()
                .contains_key("x-should-retry")
        );
    }
}
