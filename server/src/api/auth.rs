//! AuthService: SSO login, sessions, who am I, and API key management.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{
    convert::{audit_resource, from_timestamp, principal, timestamp},
    error::ApiError,
    pagination::PageRequest,
};
use crate::caller::Principal;
use crate::{
    auth::{
        key_management::{self, KeyError, NewKey},
        oidc::{LoginDone, LoginError, Sso},
        permissions::Permission,
        rbac::Rbac,
        replica_sync::ReplicaSync,
        sessions::{SessionError, Sessions},
    },
    caller::CallOrigin,
    pb::v1::{self as pb, auth_service_server::AuthService},
    store::{Database, api_keys::ApiKeyRecord, sessions::SessionRecord},
};

/// Lets a caller manage every key of the tenant, not only their own.
const MANAGE_KEYS: Permission = Permission {
    object: "api_key",
    action: "manage",
};

/// Lets a caller give keys any tenant role (the same right as granting roles to users).
const ASSIGN_ROLES: Permission = Permission {
    object: "role",
    action: "write",
};

/// The AuthService implementation.
pub struct AuthApi {
    db: Database,
    rbac: Arc<Rbac>,
    sessions: Sessions,
    sso: Arc<Sso>,
    sync: Arc<ReplicaSync>,
    max_keys_per_user: usize,
}

impl AuthApi {
    /// Serves with `db`, `sessions` and `sso`, deciding key management rights with `rbac`
    /// and announcing revocations through `sync`; a user holds at most
    /// `max_keys_per_user` working keys.
    pub fn new(
        db: Database,
        rbac: Arc<Rbac>,
        sessions: Sessions,
        sso: Arc<Sso>,
        sync: Arc<ReplicaSync>,
        max_keys_per_user: usize,
    ) -> Self {
        Self {
            db,
            rbac,
            sessions,
            sso,
            sync,
            max_keys_per_user,
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
            KeyError::Internal(_) | KeyError::Randomness(_) => ApiError::Internal(err.to_string()),
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
                retry_after: Some(wait.as_secs().max(1)),
            },
            LoginError::Internal(_) => ApiError::Internal(err.to_string()),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(err: SessionError) -> Self {
        ApiError::Internal(err.to_string())
    }
}

impl From<&Principal> for pb::Principal {
    fn from(principal: &Principal) -> Self {
        Self {
            tenant_id: principal.tenant.to_string(),
            tenant_slug: principal.tenant_slug.clone(),
            user_id: principal.user.to_string(),
            email: principal.email.clone(),
            display_name: String::new(),
            api_key_id: principal
                .api_key
                .map(|id| id.to_string())
                .unwrap_or_default(),
            roles: principal.roles.clone(),
        }
    }
}

impl From<ApiKeyRecord> for pb::ApiKey {
    fn from(key: ApiKeyRecord) -> Self {
        Self {
            id: key.id.to_string(),
            name: key.name,
            prefix: key.prefix,
            roles: key.roles,
            owner_user_id: key.owner_user_id.to_string(),
            create_time: Some(timestamp(key.created_at)),
            expire_time: key.expires_at.map(timestamp),
            last_used_time: key.last_used_at.map(timestamp),
            revoke_time: key.revoked_at.map(timestamp),
        }
    }
}

/// A session as the API shows it; `current` marks the one making the call.
fn session_message(record: SessionRecord, current: Option<uuid::Uuid>) -> pb::Session {
    pb::Session {
        id: record.id.to_string(),
        create_time: Some(timestamp(record.created_at)),
        last_used_time: None,
        expire_time: Some(timestamp(record.expires_at)),
        absolute_expire_time: Some(timestamp(record.absolute_expires_at)),
        user_agent: record.user_agent,
        client_address: record.client_address,
        current: current == Some(record.id),
    }
}

/// The session of a session-authenticated caller.
fn current_session(principal: &Principal) -> Result<uuid::Uuid, ApiError> {
    principal.session.ok_or_else(|| {
        ApiError::FailedPrecondition("this call needs a session token, not an API key".into())
    })
}

impl AuthApi {
    fn logged_in(done: LoginDone) -> (Option<pb::SessionToken>, Option<pb::Principal>) {
        let principal = (&done.principal).into();
        let token = pb::SessionToken {
            token: done.session.token,
            session: Some(session_message(done.session.record, done.principal.session)),
        };
        (Some(token), Some(principal))
    }
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn start_login(
        &self,
        request: Request<pb::StartLoginRequest>,
    ) -> Result<Response<pb::StartLoginResponse>, Status> {
        let origin = request
            .extensions()
            .get::<CallOrigin>()
            .cloned()
            .unwrap_or_default();
        let body = request.into_inner();
        let redirect = (!body.redirect_uri.is_empty()).then_some(body.redirect_uri.as_str());
        let start = self
            .sso
            .start(&body.tenant, redirect, &origin)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::StartLoginResponse {
            authorization_url: start.authorization_url,
            state: start.state,
            expire_time: Some(timestamp(start.expires_at)),
            login_binding: start.binding,
        }))
    }

    async fn complete_login(
        &self,
        request: Request<pb::CompleteLoginRequest>,
    ) -> Result<Response<pb::CompleteLoginResponse>, Status> {
        let origin = request
            .extensions()
            .get::<CallOrigin>()
            .cloned()
            .unwrap_or_default();
        let body = request.into_inner();
        let done = self
            .sso
            .complete(&body.state, &body.code, Some(&body.login_binding), origin)
            .await
            .map_err(ApiError::from)?;
        let (session, principal) = Self::logged_in(done);
        Ok(Response::new(pb::CompleteLoginResponse {
            session,
            principal,
        }))
    }

    async fn exchange_login_code(
        &self,
        request: Request<pb::ExchangeLoginCodeRequest>,
    ) -> Result<Response<pb::ExchangeLoginCodeResponse>, Status> {
        let token = self
            .sso
            .exchange_login_code(
                &request.get_ref().code,
                &request.get_ref().login_binding,
                &request
                    .extensions()
                    .get::<CallOrigin>()
                    .cloned()
                    .unwrap_or_default(),
            )
            .await
            .map_err(ApiError::from)?;
        let principal = self
            .sessions
            .authenticate(&token)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::from(LoginError::BadLoginCode))?;
        Ok(Response::new(pb::ExchangeLoginCodeResponse {
            session: Some(pb::SessionToken {
                token,
                session: None,
            }),
            principal: Some((&principal).into()),
        }))
    }

    async fn refresh_session(
        &self,
        request: Request<pb::RefreshSessionRequest>,
    ) -> Result<Response<pb::RefreshSessionResponse>, Status> {
        let principal = principal(&request)?;
        let session = current_session(&principal)?;
        let record = self
            .sessions
            .refresh(&principal, session)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("session"))?;
        Ok(Response::new(pb::RefreshSessionResponse {
            session: Some(session_message(record, Some(session))),
        }))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let principal = principal(&request)?;
        let session = current_session(&principal)?;
        self.sessions
            .revoke(&principal, principal.user, Some(session), "session.logout")
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn logout_everywhere(
        &self,
        request: Request<pb::LogoutEverywhereRequest>,
    ) -> Result<Response<pb::LogoutEverywhereResponse>, Status> {
        let principal = principal(&request)?;
        let revoked = self
            .sessions
            .revoke(
                &principal,
                principal.user,
                None,
                "session.logout_everywhere",
            )
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::LogoutEverywhereResponse {
            revoked: i64::try_from(revoked).unwrap_or(i64::MAX),
        }))
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let principal = principal(&request)?;
        Ok(Response::new(pb::WhoAmIResponse {
            principal: Some((&principal).into()),
        }))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let principal = principal(&request)?;
        let page = PageRequest::parse(request.get_ref().page_size, &request.get_ref().page_token)?;
        let sessions = self
            .sessions
            .list(&principal, page.after, page.size + 1)
            .await
            .map_err(ApiError::from)?;
        let (sessions, next_page_token) = page.finish(sessions, |s| s.id);
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: sessions
                .into_iter()
                .map(|s| session_message(s, principal.session))
                .collect(),
            next_page_token,
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let principal = principal(&request)?;
        let body = request.into_inner();
        let expires_at = body
            .expire_time
            .as_ref()
            .map(|t| from_timestamp("expire_time", t))
            .transpose()?;
        let new = NewKey {
            name: body.name,
            roles: body.roles,
            expires_at,
        };
        let assign_any_role = self.rbac.allows(&principal, ASSIGN_ROLES).await;
        let (record, key) = key_management::create(
            &self.db,
            &principal,
            assign_any_role,
            self.max_keys_per_user,
            new,
        )
        .await
        .map_err(ApiError::from)?;
        Ok(Response::new(pb::CreateApiKeyResponse {
            api_key: Some(record.into()),
            secret: key.expose().to_owned(),
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let principal = principal(&request)?;
        let body = request.into_inner();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let manage = self.rbac.allows(&principal, MANAGE_KEYS).await;
        let keys = key_management::list(
            &self.db,
            &principal,
            manage,
            page.after,
            page.size + 1,
            body.include_inactive,
        )
        .await
        .map_err(ApiError::from)?;
        let (keys, next_page_token) = page.finish(keys, |key| key.id);
        Ok(Response::new(pb::ListApiKeysResponse {
            api_keys: keys.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let principal = principal(&request)?;
        let id = uuid::Uuid::try_parse(&request.get_ref().api_key_id)
            .map_err(|_| ApiError::invalid("api_key_id", "must be a UUID"))?;
        audit_resource(&request, id);
        let manage = self.rbac.allows(&principal, MANAGE_KEYS).await;
        let record = key_management::revoke(&self.db, &principal, manage, id)
            .await
            .map_err(ApiError::from)?;
        self.sync
            .credentials_changed(principal.tenant)
            .await
            .map_err(|err| ApiError::Internal(err.to_string()))?;
        Ok(Response::new(pb::RevokeApiKeyResponse {
            api_key: Some(record.into()),
        }))
    }
}
