//! Turns the `authorization` metadata of a call into a [`Principal`].

use std::sync::Arc;

use http::HeaderValue;

use super::{
    AuthError,
    api_key::{KEY_PREFIX, digest},
    credential_cache::CredentialCache,
    sessions::{SESSION_PREFIX, Sessions},
};
use crate::{
    caller::CallOrigin,
    caller::Principal,
    store::{self, Database},
    tenancy::TenantId,
};

/// Verifies credentials: API keys against Postgres (remembered briefly), session tokens
/// against Redis.
#[derive(Clone)]
pub struct Authenticator {
    db: Database,
    sessions: Sessions,
    keys: Arc<CredentialCache>,
}

impl Authenticator {
    /// Checks API keys in `db` (through `keys`) and session tokens with `sessions`.
    pub fn new(db: Database, sessions: Sessions, keys: Arc<CredentialCache>) -> Self {
        Self { db, sessions, keys }
    }

    /// Authenticates `authorization` (`Bearer <token>`).
    ///
    /// # Errors
    /// [`AuthError`] saying why the credential is refused; `Unavailable` when it cannot be
    /// checked (fail closed).
    pub async fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
    ) -> Result<Principal, AuthError> {
        let value = authorization.ok_or(AuthError::Missing)?;
        let value = value.to_str().map_err(|_| AuthError::Malformed)?;
        let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed);
        }
        let token = token.trim();
        if token.starts_with(SESSION_PREFIX) {
            let principal = self
                .sessions
                .authenticate(token)
                .await
                .map_err(|err| {
                    tracing::error!(error = %err, "cannot look up session");
                    AuthError::Unavailable
                })?
                .ok_or(AuthError::Unknown)?;
            // A session issued just before its tenant was suspended (or a login racing
            // the suspension) must not outlive it.
            if !self.tenant_active(principal.tenant).await? {
                return Err(AuthError::TenantSuspended);
            }
            return Ok(principal);
        }
        if !token.starts_with(KEY_PREFIX) {
            return Err(AuthError::Unknown);
        }
        let digest = digest(token);
        let credential = match self.keys.get(&digest) {
            Some(credential) => credential,
            None => {
                let credential = store::api_keys::find_by_digest(&self.db, &digest)
                    .await
                    .map_err(|err| {
                        tracing::error!(error = %err, "cannot look up API key");
                        AuthError::Unavailable
                    })?
                    .ok_or(AuthError::Unknown)?;
                self.keys.put(digest, credential.clone());
                credential
            }
        };
        if credential.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        if credential
            .expires_at
            .is_some_and(|at| at <= time::OffsetDateTime::now_utc())
        {
            return Err(AuthError::Expired);
        }
        if credential.tenant_state != "active" {
            return Err(AuthError::TenantSuspended);
        }
        if credential.user_disabled {
            return Err(AuthError::UserDisabled);
        }
        Ok(Principal {
            tenant: TenantId(credential.tenant_id),
            tenant_slug: credential.tenant_slug,
            user: credential.user_id,
            email: credential.user_email,
            api_key: Some(credential.key_id),
            session: None,
            roles: credential.roles,
            origin: CallOrigin::default(),
        })
    }

    /// Whether `tenant` is active (remembered briefly, forgotten on every replica when
    /// its state changes).
    async fn tenant_active(&self, tenant: TenantId) -> Result<bool, AuthError> {
        if let Some(active) = self.keys.tenant_active(tenant) {
            return Ok(active);
        }
        let active = store::tenants::get_any(&self.db, tenant)
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "cannot look up tenant state");
                AuthError::Unavailable
            })?
            .is_some_and(|record| record.state == "active");
        self.keys.put_tenant_state(tenant, active);
        Ok(active)
    }
}
