//! AuthService: SSO login, sessions, who am I, and API key management.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{
    convert::{audit_resource, from_timestamp, principal, timestamp},
    pagination::PageRequest,
};
use crate::{
    auth::{
        key_management::{ApiKeys, NewKey},
        oidc::{LoginDone, LoginError, Sso},
        rbac::Rbac,
        sessions::Sessions,
    },
    caller::CallOrigin,
    caller::Principal,
    edge::ApiError,
    pb::v1::{self as pb, auth_service_server::AuthService},
    store::{api_keys::ApiKeyRecord, sessions::SessionRecord},
};

/// The AuthService implementation.
pub struct AuthApi {
    keys: ApiKeys,
    sessions: Sessions,
    sso: Arc<Sso>,
    rbac: Arc<Rbac>,
}

impl AuthApi {
    /// Serves API keys from `keys`, sessions from `sessions`, logins through `sso`, and
    /// callers' permissions from `rbac`.
    pub fn new(keys: ApiKeys, sessions: Sessions, sso: Arc<Sso>, rbac: Arc<Rbac>) -> Self {
        Self {
            keys,
            sessions,
            sso,
            rbac,
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
        let start = self.sso.start(&body.tenant, redirect, &origin).await?;
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
            .await?;
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
            .await?;
        let principal = self
            .sessions
            .authenticate(&token)
            .await?
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
            .await?
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
            .await?;
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
            .await?;
        Ok(Response::new(pb::LogoutEverywhereResponse {
            revoked: i64::try_from(revoked).unwrap_or(i64::MAX),
        }))
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let principal = principal(&request)?;
        let permissions = self.rbac.effective_permissions(&principal).await;
        Ok(Response::new(pb::WhoAmIResponse {
            principal: Some((&principal).into()),
            permissions: permissions.iter().map(ToString::to_string).collect(),
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
            .await?;
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
        let (record, key) = self.keys.create(&principal, new).await?;
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
        let keys = self
            .keys
            .list(&principal, page.after, page.size + 1, body.include_inactive)
            .await?;
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
        let record = self.keys.revoke(&principal, id).await?;
        Ok(Response::new(pb::RevokeApiKeyResponse {
            api_key: Some(record.into()),
        }))
    }
}
