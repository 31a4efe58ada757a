//! Why a call was refused before reaching its handler.

use std::time::Duration;

use super::permissions::Permission;

/// An authentication or authorization failure.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `authorization` metadata.
    #[error("missing credentials: send `authorization: Bearer <API key or session token>`")]
    Missing,
    /// The metadata is not `Bearer <token>`.
    #[error("malformed authorization metadata: expected `Bearer <API key or session token>`")]
    Malformed,
    /// No such credential.
    #[error("invalid credentials")]
    Unknown,
    /// The API key was revoked.
    #[error("this API key has been revoked")]
    Revoked,
    /// The API key expired.
    #[error("this API key has expired")]
    Expired,
    /// The tenant is suspended or deleted.
    #[error("the tenant is suspended")]
    TenantSuspended,
    /// The user is disabled.
    #[error("the user is disabled")]
    UserDisabled,
    /// The caller's roles do not grant the permission.
    #[error("permission denied: {0} is not granted to any of your roles")]
    Denied(Permission),
    /// Credentials could not be checked (database unavailable): fail closed.
    #[error("cannot verify credentials right now; retry later")]
    Unavailable,
    /// The caller or its tenant made too many calls.
    #[error("rate limit exceeded; retry in {} ms", retry_after.as_millis())]
    RateLimited {
        /// How long until a call would be allowed.
        retry_after: Duration,
    },
    /// The rate limiter could not be asked and is configured to fail closed.
    #[error("cannot check the rate limit right now; retry later")]
    LimiterUnavailable,
}
