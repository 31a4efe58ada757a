//! The one table from failures to gRPC statuses: every domain error becomes an
//! [`ApiError`], and an `ApiError` a `tonic::Status` (the OpenAI-compatible routes render
//! the same status in OpenAI's shape, see [`super::openai_wire`]). Handlers use `?` on
//! domain results: each domain error converts to a `Status` through here.
//!
//! Bad input is `INVALID_ARGUMENT` with a `google.rpc.BadRequest` field violation naming the
//! field. A `retry-after` is whole seconds, rounded up. Internal failures are logged with
//! their whole cause chain (in the call's span, which carries the request id) and reach
//! the client only as a generic message.

use std::{borrow::Cow, time::Duration};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    audit::TrailError,
    auth::{
        AuthError, directory::DirectoryError, identity_providers::IdentityProviderError,
        key_management::KeyError, oidc::LoginError, sessions::SessionError,
    },
    chat::ChatError,
    inference::InferenceError,
    llm::{EmbeddingError, LlmError, ProviderError},
    memory::MemoryError,
    model_catalog::CatalogError,
    platform::PlatformError,
    plugins::PluginError,
    store::StoreError,
    usage::UsageError,
};

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
        /// How long to wait, when known (sent as `retry-after`).
        retry_after: Option<Duration>,
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
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// Bad input in `field`.
    pub fn invalid(field: impl Into<Cow<'static, str>>, description: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            description: description.into(),
        }
    }

    /// A failure the client cannot fix, its causes kept for the log.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(cause.into())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self::internal(err)
    }
}

impl From<TrailError> for ApiError {
    fn from(err: TrailError) -> Self {
        match err {
            TrailError::Store(err) => err.into(),
            TrailError::Busy(busy) => Self::ResourceExhausted {
                message: busy.to_string(),
                retry_after: Some(Duration::from_secs(1)),
            },
            out_of_range @ TrailError::RetentionOutOfRange { .. } => {
                Self::invalid("retention_days", out_of_range.to_string())
            }
        }
    }
}

impl From<ProviderError> for ApiError {
    fn from(err: ProviderError) -> Self {
        match err {
            ProviderError::Invalid { field, reason } => ApiError::invalid(field, reason),
            ProviderError::NotFound(_) => ApiError::NotFound("model provider"),
            ProviderError::RouteNotFound(_) => ApiError::NotFound("model alias"),
            ProviderError::UnknownAlias { .. } => ApiError::invalid("model", err.to_string()),
            ProviderError::UnknownModel { .. }
            | ProviderError::NoTarget(_)
            | ProviderError::Unreachable { .. } => ApiError::FailedPrecondition(err.to_string()),
            ProviderError::Store(_) | ProviderError::Crypto(_) | ProviderError::Http(_) => {
                ApiError::internal(err)
            }
        }
    }
}

impl From<PluginError> for ApiError {
    fn from(err: PluginError) -> Self {
        match err {
            PluginError::Invalid { field, reason } => ApiError::invalid(field, reason),
            PluginError::NotFound(_) => ApiError::NotFound("plugin"),
            PluginError::Denied { .. } => ApiError::PermissionDenied(err.to_string()),
            PluginError::NameTaken(_) => ApiError::AlreadyExists(err.to_string()),
            PluginError::Disabled { .. }
            | PluginError::NotPending(_)
            | PluginError::PhiRefused { .. } => ApiError::FailedPrecondition(err.to_string()),
            PluginError::Unreachable { .. } | PluginError::TimedOut { .. } => {
                ApiError::Unavailable(err.to_string())
            }
            PluginError::Store(_) | PluginError::Crypto(_) => ApiError::internal(err),
        }
    }
}

impl From<DirectoryError> for ApiError {
    fn from(err: DirectoryError) -> Self {
        match err {
            DirectoryError::NotFound => ApiError::NotFound("user"),
            DirectoryError::BadRole(_) => ApiError::invalid("role", err.to_string()),
            DirectoryError::BadPolicy(_) => ApiError::invalid("policy", err.to_string()),
            DirectoryError::RoleNotAssignable(_) => ApiError::PermissionDenied(err.to_string()),
            DirectoryError::LastOwner => ApiError::FailedPrecondition(err.to_string()),
            DirectoryError::OwnerTarget | DirectoryError::PermissionNotGrantable(_) => {
                ApiError::PermissionDenied(err.to_string())
            }
            DirectoryError::TooManyPolicies(_) => ApiError::ResourceExhausted {
                message: err.to_string(),
                retry_after: None,
            },
            DirectoryError::Store(_) | DirectoryError::Sessions(_) | DirectoryError::Sync(_) => {
                ApiError::internal(err)
            }
        }
    }
}

impl From<IdentityProviderError> for ApiError {
    fn from(err: IdentityProviderError) -> Self {
        match err {
            IdentityProviderError::Role(err) => err.into(),
            IdentityProviderError::Issuer(_) => {
                ApiError::invalid("identity_provider.issuer_url", err.to_string())
            }
            IdentityProviderError::Crypto(_) | IdentityProviderError::Store(_) => {
                ApiError::internal(err)
            }
        }
    }
}

impl From<PlatformError> for ApiError {
    fn from(err: PlatformError) -> Self {
        match err {
            PlatformError::NotFound => ApiError::NotFound("tenant"),
            PlatformError::Exists(_) => ApiError::AlreadyExists(err.to_string()),
            PlatformError::Slug(_) => ApiError::invalid("slug", err.to_string()),
            PlatformError::DisplayName => ApiError::invalid("display_name", err.to_string()),
            PlatformError::PhiPolicy => ApiError::invalid("settings.phi_policy", err.to_string()),
            PlatformError::Deleted => ApiError::FailedPrecondition(err.to_string()),
            PlatformError::RateLimit(_) => {
                ApiError::invalid("settings.rate_limits", err.to_string())
            }
            PlatformError::NotPlatformAdmin => ApiError::PermissionDenied(err.to_string()),
            PlatformError::Store(_) | PlatformError::Sessions(_) | PlatformError::Sync(_) => {
                ApiError::internal(err)
            }
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::Invalid { field, reason } => ApiError::invalid(field, reason),
            KeyError::RoleNotHeld(_) => ApiError::PermissionDenied(err.to_string()),
            KeyError::NotFound => ApiError::NotFound("API key"),
            KeyError::TooMany(_) => ApiError::ResourceExhausted {
                message: err.to_string(),
                retry_after: None,
            },
            KeyError::Internal(_) | KeyError::Randomness(_) | KeyError::Sync(_) => {
                ApiError::internal(err)
            }
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(err: LoginError) -> Self {
        if !matches!(err, LoginError::Internal(_)) {
            // A security event: who tried what is in the span (request id, client).
            tracing::warn!(reason = %err, "login refused");
        }
        match err {
            LoginError::UnknownTenant(_) => ApiError::NotFound("tenant"),
            LoginError::NoProvider(_) => ApiError::FailedPrecondition(err.to_string()),
            LoginError::Provider(_) => ApiError::Unavailable(err.public_message()),
            LoginError::BadRedirect => ApiError::invalid("redirect_uri", "must be an absolute URL"),
            LoginError::EmailNotAllowed(_)
            | LoginError::EmailNotVerified
            | LoginError::UserDisabled => ApiError::PermissionDenied(err.to_string()),
            LoginError::BadState
            | LoginError::CodeRefused(_)
            | LoginError::InvalidIdToken(_)
            | LoginError::BadLoginCode
            | LoginError::BadBinding => ApiError::Unauthenticated(err.public_message()),
            LoginError::TenantNotActive => ApiError::PermissionDenied(err.to_string()),
            LoginError::Throttled(wait) => ApiError::ResourceExhausted {
                message: err.to_string(),
                retry_after: Some(wait),
            },
            LoginError::Internal(_) => ApiError::internal(err),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(err: SessionError) -> Self {
        ApiError::internal(err)
    }
}

impl From<ChatError> for ApiError {
    fn from(err: ChatError) -> Self {
        match err {
            ChatError::Invalid { field, reason } => ApiError::invalid(field, reason),
            ChatError::NotFound => ApiError::NotFound("conversation"),
            ChatError::UnknownProfile(_) => ApiError::NotFound("profile"),
            ChatError::PhiRefused { .. } => ApiError::FailedPrecondition(err.to_string()),
            ChatError::Usage(err) => err.into(),
            ChatError::Provider(err) => err.into(),
            ChatError::Llm(err) => err.into(),
            ChatError::Cache(_) => ApiError::Unavailable(err.to_string()),
            ChatError::InProgress => ApiError::Aborted(err.to_string()),
            ChatError::Gone => ApiError::Cancelled(err.to_string()),
            ChatError::Interrupted => ApiError::internal(err),
            ChatError::Store(_) | ChatError::Crypto(_) => ApiError::internal(err),
            ChatError::Memory(err) => err.into(),
            ChatError::Plugin(err) => err.into(),
        }
    }
}

impl From<LlmError> for ApiError {
    fn from(err: LlmError) -> Self {
        match err {
            LlmError::RateLimited { retry_after } => ApiError::ResourceExhausted {
                message: err.to_string(),
                retry_after,
            },
            LlmError::Unauthorized(_) | LlmError::Rejected(_) => {
                ApiError::FailedPrecondition(err.to_string())
            }
            LlmError::Upstream { .. } | LlmError::Unreachable(_) | LlmError::Protocol(_) => {
                ApiError::Unavailable(err.to_string())
            }
        }
    }
}

impl From<EmbeddingError> for ApiError {
    fn from(err: EmbeddingError) -> Self {
        match err {
            EmbeddingError::Provider(err) => err.into(),
            EmbeddingError::Llm(err) => err.into(),
            EmbeddingError::PhiRefused { .. } => ApiError::FailedPrecondition(err.to_string()),
        }
    }
}

impl From<InferenceError> for ApiError {
    fn from(err: InferenceError) -> Self {
        match err {
            InferenceError::NotFound(_) => ApiError::NotFound("model"),
            InferenceError::WrongKind { .. } => ApiError::invalid("model", err.to_string()),
            InferenceError::Invalid { field, reason } => ApiError::invalid(field, reason),
            InferenceError::NotReady { .. } => ApiError::FailedPrecondition(err.to_string()),
            InferenceError::Busy(_) => ApiError::ResourceExhausted {
                message: err.to_string(),
                retry_after: Some(Duration::from_secs(1)),
            },
            InferenceError::Stopped => ApiError::Unavailable(err.to_string()),
            InferenceError::BadManifest { .. }
            | InferenceError::Io { .. }
            | InferenceError::Checksum { .. }
            | InferenceError::Load { .. }
            | InferenceError::Failed(_) => ApiError::internal(err),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(err: CatalogError) -> Self {
        match err {
            CatalogError::Disabled | CatalogError::PlatformModel(_) => {
                ApiError::FailedPrecondition(err.to_string())
            }
            CatalogError::Invalid { field, reason } => ApiError::invalid(field, reason),
            CatalogError::Exists(message) => ApiError::AlreadyExists(message),
            CatalogError::TooMany(_) => ApiError::ResourceExhausted {
                message: err.to_string(),
                retry_after: None,
            },
            CatalogError::NotFound => ApiError::NotFound("model"),
            CatalogError::Forbidden(message) => ApiError::PermissionDenied(message),
            CatalogError::Inference(err) => err.into(),
            CatalogError::Store(err) => err.into(),
            CatalogError::Corrupt(_) | CatalogError::Io(_) | CatalogError::Crypto(_) => {
                ApiError::internal(err)
            }
        }
    }
}

impl From<MemoryError> for ApiError {
    fn from(err: MemoryError) -> Self {
        match err {
            MemoryError::Invalid { field, reason } => ApiError::invalid(field, reason),
            MemoryError::NotFound(what) => ApiError::NotFound(what),
            MemoryError::NoEmbeddings(_) => ApiError::FailedPrecondition(err.to_string()),
            MemoryError::Busy(message) => ApiError::ResourceExhausted {
                message,
                retry_after: Some(Duration::from_secs(1)),
            },
            MemoryError::Store(err) => err.into(),
            MemoryError::Embedding(_)
            | MemoryError::Cache(_)
            | MemoryError::Crypto(_)
            | MemoryError::Corrupt(_) => ApiError::internal(err),
        }
    }
}

impl From<UsageError> for ApiError {
    fn from(err: UsageError) -> Self {
        match err {
            UsageError::Invalid { field, reason } => ApiError::invalid(field, reason),
            UsageError::BudgetExhausted { .. } => ApiError::ResourceExhausted {
                message: err.to_string(),
                retry_after: None,
            },
            UsageError::Store(err) => err.into(),
        }
    }
}

impl From<&AuthError> for ApiError {
    fn from(err: &AuthError) -> Self {
        match err {
            AuthError::Denied(_) => ApiError::PermissionDenied(err.to_string()),
            AuthError::Unavailable | AuthError::LimiterUnavailable => {
                ApiError::Unavailable(err.to_string())
            }
            AuthError::RateLimited { retry_after } => ApiError::ResourceExhausted {
                message: err.to_string(),
                retry_after: Some(*retry_after),
            },
            _ => ApiError::Unauthenticated(err.to_string()),
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
                if let Some(wait) = retry_after {
                    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
                    status.metadata_mut().insert("retry-after", seconds.into());
                }
                status
            }
            ApiError::Internal(cause) => {
                tracing::error!(cause = %chain(cause.as_ref()), "internal error");
                Status::internal(
                    "internal error; the server log has details under this call's x-request-id",
                )
            }
        }
    }
}

/// `err` and its causes, outermost first, joined by `: `.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        let said = inner.to_string();
        // `#[error(transparent)]` and `"...: {0}"` already show their source.
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = inner.source();
    }
    text
}

/// Lets handlers answer with `?` on a domain result: each error becomes a status through
/// the table above.
macro_rules! status_from {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for Status {
            fn from(err: $error) -> Self {
                ApiError::from(err).into()
            }
        })*
    };
}

status_from!(
    StoreError,
    TrailError,
    ProviderError,
    PluginError,
    DirectoryError,
    IdentityProviderError,
    PlatformError,
    KeyError,
    LoginError,
    SessionError,
    ChatError,
    LlmError,
    EmbeddingError,
    InferenceError,
    CatalogError,
    MemoryError,
    UsageError,
);
