//! Why a login failed.

use super::super::sessions::SessionError;
use crate::random::RandomnessUnavailable;
use crate::{cache::CacheError, store::StoreError};

/// Why a login failed. Every variant is logged as a security event by the caller.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The tenant slug is malformed or unknown.
    #[error("unknown tenant {0:?}")]
    UnknownTenant(String),
    /// The tenant has no identity provider configured.
    #[error("tenant {0:?} has no identity provider configured")]
    NoProvider(String),
    /// The provider could not be reached or its discovery document is invalid.
    #[error("identity provider unavailable: {0}")]
    Provider(String),
    /// The redirect URI is not a URL.
    #[error("redirect_uri is not a valid URL")]
    BadRedirect,
    /// The state is unknown, expired or already used.
    #[error("login state is unknown, expired or already used; start the login again")]
    BadState,
    /// The provider refused the code (e.g. replayed or expired).
    #[error("the identity provider refused the authorization code: {0}")]
    CodeRefused(String),
    /// The ID token is missing or does not validate.
    #[error("invalid ID token: {0}")]
    InvalidIdToken(String),
    /// The user's email is missing or outside the allowed domains.
    #[error("email {0:?} is not allowed to sign in to this tenant")]
    EmailNotAllowed(String),
    /// The user is disabled.
    #[error("this user is disabled")]
    UserDisabled,
    /// The provider does not vouch for the email (`email_verified` false, or absent while
    /// the email belongs to an existing account).
    #[error(
        "the identity provider has not verified this email address; it cannot sign in to \
         (or be linked with) an account that uses it"
    )]
    EmailNotVerified,
    /// The login's binding secret is missing or belongs to another login.
    #[error(
        "login_binding is missing or is not the one StartLogin returned for this login; \
         finish the login in the client that started it"
    )]
    BadBinding,
    /// Too many login steps from this address or into this tenant.
    #[error("too many login attempts; retry in {} s", .0.as_secs().max(1))]
    Throttled(std::time::Duration),
    /// The tenant is suspended or deleted.
    #[error("this tenant is not active; logins are refused")]
    TenantNotActive,
    /// The one-time login code is unknown, expired or used.
    #[error("login code is unknown, expired or already used")]
    BadLoginCode,
    /// A store failed.
    #[error("login failed: {0}")]
    Internal(String),
}

impl LoginError {
    /// What an unauthenticated caller is told: the error itself, except where it would
    /// repeat what the identity provider (or the server's internals) said, which stays in
    /// the log.
    pub fn public_message(&self) -> String {
        match self {
            Self::Provider(_) => "the identity provider could not be reached or answered \
                                  unexpectedly; the server log has details"
                .to_owned(),
            Self::CodeRefused(_) => {
                "the identity provider refused the authorization code; start the login again"
                    .to_owned()
            }
            Self::Internal(_) => "login failed; the server log has details".to_owned(),
            other => other.to_string(),
        }
    }

    /// A short name of the failure for the audit trail (no emails, tokens or provider text).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownTenant(_) => "unknown_tenant",
            Self::NoProvider(_) => "no_provider",
            Self::Provider(_) => "provider_unavailable",
            Self::BadRedirect => "bad_redirect",
            Self::BadState => "bad_state",
            Self::CodeRefused(_) => "code_refused",
            Self::InvalidIdToken(_) => "invalid_id_token",
            Self::EmailNotAllowed(_) => "email_not_allowed",
            Self::UserDisabled => "user_disabled",
            Self::EmailNotVerified => "email_not_verified",
            Self::BadLoginCode => "bad_login_code",
            Self::BadBinding => "bad_binding",
            Self::TenantNotActive => "tenant_not_active",
            Self::Throttled(_) => "throttled",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for LoginError {
    fn from(err: StoreError) -> Self {
        Self::Internal(err.to_string())
    }
}

impl From<CacheError> for LoginError {
    fn from(err: CacheError) -> Self {
        Self::Internal(err.to_string())
    }
}

impl From<SessionError> for LoginError {
    fn from(err: SessionError) -> Self {
        Self::Internal(err.to_string())
    }
}

impl From<RandomnessUnavailable> for LoginError {
    fn from(err: RandomnessUnavailable) -> Self {
        Self::Internal(err.to_string())
    }
}
