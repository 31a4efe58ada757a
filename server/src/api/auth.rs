//! AuthService: who am I, and API key management. SSO login and sessions answer
//! `UNIMPLEMENTED` until they are built.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{
    convert::{from_timestamp, principal, timestamp},
    error::ApiError,
    pagination::PageRequest,
    pending::pending_status,
};
use crate::{
    auth::{
        Principal,
        key_management::{self, KeyError, NewKey},
        permissions::Permission,
        rbac::Rbac,
    },
    pb::v1::{self as pb, auth_service_server::AuthService},
    store::{Database, api_keys::ApiKeyRecord},
};

/// What SSO-related calls wait for.
const SSO_MISSING: &str = "SSO login and sessions are not built yet; use an API key";

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
}

impl AuthApi {
    /// Serves with `db`, deciding key management rights with `rbac`.
    pub fn new(db: Database, rbac: Arc<Rbac>) -> Self {
        Self { db, rbac }
    }
}

fn unavailable<T>(method: &str) -> Result<Response<T>, Status> {
    Err(pending_status(
        pb::auth_service_server::SERVICE_NAME,
        method,
        SSO_MISSING,
    ))
}

impl From<KeyError> for ApiError {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::Invalid { field, reason } => ApiError::invalid(field, reason),
            KeyError::RoleNotHeld(_) => ApiError::PermissionDenied(err.to_string()),
            KeyError::NotFound => ApiError::NotFound("API key"),
            KeyError::Internal(_) | KeyError::Randomness(_) => ApiError::Internal(err.to_string()),
        }
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

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn start_login(
        &self,
        _: Request<pb::StartLoginRequest>,
    ) -> Result<Response<pb::StartLoginResponse>, Status> {
        unavailable("StartLogin")
    }

    async fn complete_login(
        &self,
        _: Request<pb::CompleteLoginRequest>,
    ) -> Result<Response<pb::CompleteLoginResponse>, Status> {
        unavailable("CompleteLogin")
    }

    async fn exchange_login_code(
        &self,
        _: Request<pb::ExchangeLoginCodeRequest>,
    ) -> Result<Response<pb::ExchangeLoginCodeResponse>, Status> {
        unavailable("ExchangeLoginCode")
    }

    async fn refresh_session(
        &self,
        _: Request<pb::RefreshSessionRequest>,
    ) -> Result<Response<pb::RefreshSessionResponse>, Status> {
        unavailable("RefreshSession")
    }

    async fn logout(
        &self,
        _: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        unavailable("Logout")
    }

    async fn logout_everywhere(
        &self,
        _: Request<pb::LogoutEverywhereRequest>,
    ) -> Result<Response<pb::LogoutEverywhereResponse>, Status> {
        unavailable("LogoutEverywhere")
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
        _: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        unavailable("ListSessions")
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
        let (record, key) = key_management::create(&self.db, &principal, assign_any_role, new)
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
        let manage = self.rbac.allows(&principal, MANAGE_KEYS).await;
        let record = key_management::revoke(&self.db, &principal, manage, id)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::RevokeApiKeyResponse {
            api_key: Some(record.into()),
        }))
    }
}
