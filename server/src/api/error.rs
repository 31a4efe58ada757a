//! The one mapping from failures to gRPC statuses.
//!
//! Bad input is `INVALID_ARGUMENT` with a `google.rpc.BadRequest` field violation naming the
//! field. Internal failures are logged in full (in the call's span, which carries the
//! request id) and reach the client only as a generic message.

use std::borrow::Cow;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{audit::TrailError, store::StoreError};

/// A handler's failure, before it becomes a status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request field is unacceptable.
    #[error("{field}: {description}")]
    InvalidArgument {
        /// The field's name in the request message (a path such as `messages[2].role`
        /// where the request nests).
        field: Cow<'static, str>,
        /// What is wrong and what is accepted.
        description: String,
    },
    /// The thing asked for does not exist (or is not visible to the caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The thing to create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The caller may not do this to this object.
    #[error("{0}")]
    PermissionDenied(String),
    /// The presented proof of identity is not accepted.
    #[error("{0}")]
    Unauthenticated(String),
    /// The call cannot work in the current state (e.g. no identity provider configured).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A quota or rate limit (here or at a model provider) is used up; retry later.
    #[error("{message}")]
    ResourceExhausted {
        /// What ran out.
        message: String,
        /// Seconds to wait, when known (sent as `retry-after`).
        retry_after: Option<u64>,
    },
    /// A concurrent call conflicts with this one; retry later.
    #[error("{0}")]
    Aborted(String),
    /// A dependency (e.g. an identity provider) is unreachable; retrying may work.
    #[error("{0}")]
    Unavailable(String),
    /// The client went away.
    #[error("{0}")]
    Cancelled(String),
    /// Something failed that the client cannot fix.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Bad input in `field`.
    pub fn invalid(field: impl Into<Cow<'static, str>>, description: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            description: description.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self::Internal(err.to_string())
    }
}

impl From<TrailError> for ApiError {
    fn from(err: TrailError) -> Self {
        match err {
            TrailError::Store(err) => err.into(),
            TrailError::Busy(busy) => Self::ResourceExhausted {
                message: busy.to_string(),
                retry_after: Some(1),
            },
            out_of_range @ TrailError::RetentionOutOfRange { .. } => {
                Self::invalid("retention_days", out_of_range.to_string())
            }
        }
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::InvalidArgument { field, description } => Status::with_error_details(
                Code::InvalidArgument,
                format!("{field}: {description}"),
                ErrorDetails::with_bad_request_violation(field.into_owned(), description),
            ),
            ApiError::NotFound(what) => Status::not_found(format!("{what} not found")),
            ApiError::AlreadyExists(message) => Status::already_exists(message),
            ApiError::PermissionDenied(message) => Status::permission_denied(message),
            ApiError::Unauthenticated(message) => Status::unauthenticated(message),
            ApiError::FailedPrecondition(message) => Status::failed_precondition(message),
            ApiError::Unavailable(message) => Status::unavailable(message),
            ApiError::Aborted(message) => Status::aborted(message),
            ApiError::Cancelled(message) => Status::cancelled(message),
            ApiError::ResourceExhausted {
                message,
                retry_after,
            } => {
                let mut status = Status::resource_exhausted(message);
                if let Some(seconds) = retry_after {
                    status.metadata_mut().insert("retry-after", seconds.into());
                }
                status
            }
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Status::internal(
                    "internal error; the server log has details under this call's x-request-id",
                )
            }
        }
    }
}
