//! Login sessions: opaque tokens (`cc_sess_<tenant>_<secret>`), a live copy in Redis that
//! authenticates calls and slides the idle expiry, and a record in Postgres for listing
//! and revoking. Revocation deletes the live copy, so it takes effect at once on every
//! replica. If Redis is unreachable, session authentication fails closed.

use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::tokens;
use crate::{
    audit::{self, Actor, NewEvent},
    cache::{Cache, CacheError},
    caller::{CallOrigin, Principal},
    config::AuthConfig,
    store::{
        self, Database, StoreError,
        sessions::{NewSession, SessionRecord},
    },
    tenancy::TenantId,
};

/// Every session token starts with this.
pub const SESSION_PREFIX: &str = "cc_sess_";

/// What the live copy holds: enough to build the principal without Postgres.
#[derive(Debug, Serialize, Deserialize)]
struct LiveSession {
    session: Uuid,
    user: Uuid,
    email: String,
    tenant_slug: String,
    roles: Vec<String>,
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Redis failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No random bytes.
    #[error(transparent)]
    Randomness(#[from] crate::random::RandomnessUnavailable),
    /// The live copy could not be encoded or decoded.
    #[error("session record is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// A newly issued session.
pub struct IssuedSession {
    /// The bearer token, for its owner only.
    pub token: String,
    /// The record.
    pub record: SessionRecord,
}

/// Who a new session is for.
pub struct SessionOwner<'a> {
    /// The tenant.
    pub tenant: TenantId,
    /// Its slug.
    pub tenant_slug: &'a str,
    /// The user.
    pub user: Uuid,
    /// Their email.
    pub email: &'a str,
    /// Roles the session acts with.
    pub roles: &'a [String],
    /// Where the login came from.
    pub origin: &'a CallOrigin,
}

/// Issues, authenticates and revokes sessions.
#[derive(Clone)]
pub struct Sessions {
    db: Database,
    cache: Cache,
    config: AuthConfig,
}

impl Sessions {
    /// Sessions kept in `db` and `cache` with the timeouts of `config`.
    pub fn new(db: Database, cache: Cache, config: AuthConfig) -> Self {
        Self { db, cache, config }
    }

    /// Starts a session for `owner`.
    ///
    /// # Errors
    /// [`SessionError`] when a store fails.
    pub async fn issue(&self, owner: SessionOwner<'_>) -> Result<IssuedSession, SessionError> {
        let token = tokens::issue(SESSION_PREFIX, owner.tenant)?;
        let now = OffsetDateTime::now_utc();
        let expires_at = now + self.config.session_idle_timeout;
        let absolute_expires_at = now + self.config.session_absolute_timeout;
        let id = Uuid::now_v7();
        let mut tx = self.db.begin_tenant(owner.tenant).await?;
        store::sessions::insert(
            &mut tx,
            &NewSession {
                id,
                user_id: owner.user,
                token_sha256: &token.sha256,
                roles: owner.roles,
                expires_at,
                absolute_expires_at,
                user_agent: &owner.origin.user_agent,
                client_address: &owner.origin.client_address,
            },
        )
        .await?;
        let login = NewEvent::from_origin(
            Actor::User(owner.user),
            owner.origin,
            "login.success",
            "session",
            id,
            json!({ "roles": owner.roles }),
        );
        audit::append(&mut tx, owner.tenant, &login).await?;
        let live = serde_json::to_string(&LiveSession {
            session: id,
            user: owner.user,
            email: owner.email.to_owned(),
            tenant_slug: owner.tenant_slug.to_owned(),
            roles: owner.roles.to_vec(),
        })?;
        self.cache
            .put_session(
                owner.tenant,
                &token.sha256,
                &live,
                self.config.session_idle_timeout,
                absolute_expires_at.unix_timestamp(),
            )
            .await?;
        tx.commit().await?;
        Ok(IssuedSession {
            token: token.token,
            record: SessionRecord {
                id,
                user_id: owner.user,
                token_sha256: token.sha256.to_vec(),
                created_at: now,
                expires_at,
                absolute_expires_at,
                user_agent: owner.origin.user_agent.clone(),
                client_address: owner.origin.client_address.clone(),
            },
        })
    }

    /// The principal of a live session token, sliding its idle expiry; `None` for a token
    /// that is malformed, unknown, revoked or expired.
    ///
    /// # Errors
    /// [`SessionError`] when Redis fails (the caller must refuse the call).
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, SessionError> {
        let Some((tenant, sha256)) = tokens::parse(SESSION_PREFIX, token) else {
            return Ok(None);
        };
        let Some(data) = self
            .cache
            .slide_session(tenant, &sha256, self.config.session_idle_timeout)
            .await?
        else {
            return Ok(None);
        };
        let live: LiveSession = serde_json::from_str(&data)?;
        Ok(Some(Principal {
            tenant,
            tenant_slug: live.tenant_slug,
            user: live.user,
            email: live.email,
            api_key: None,
            session: Some(live.session),
            roles: live.roles,
            origin: CallOrigin::default(),
        }))
    }

    /// Records a refresh of the caller's session (the live copy slid when the call was
    /// authenticated) and returns the session.
    ///
    /// # Errors
    /// [`SessionError`] when a store fails.
    pub async fn refresh(
        &self,
        principal: &Principal,
        session: Uuid,
    ) -> Result<Option<SessionRecord>, SessionError> {
        let now = OffsetDateTime::now_utc();
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let live = store::sessions::list_live(&mut tx, principal.user, None, i64::MAX).await?;
        let Some(mut record) = live.into_iter().find(|s| s.id == session) else {
            return Ok(None);
        };
        record.expires_at =
            (now + self.config.session_idle_timeout).min(record.absolute_expires_at);
        store::sessions::touch(&mut tx, session, record.expires_at).await?;
        tx.commit().await?;
        Ok(Some(record))
    }

    /// The live sessions of the caller's user, a page at a time.
    ///
    /// # Errors
    /// [`SessionError`] when Postgres fails.
    pub async fn list(
        &self,
        principal: &Principal,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, SessionError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let sessions =
            store::sessions::list_live(&mut tx, principal.user, after, i64::from(limit)).await?;
        tx.commit().await?;
        Ok(sessions)
    }

    /// Makes `user`'s live sessions act with `roles` from their next call on.
    ///
    /// # Errors
    /// [`SessionError`] when a store fails.
    pub async fn update_roles(
        &self,
        tenant: TenantId,
        user: Uuid,
        roles: &[String],
    ) -> Result<(), SessionError> {
        let mut tx = self.db.begin_tenant(tenant).await?;
        store::sessions::set_roles(&mut tx, user, roles).await?;
        let hashes = store::sessions::live_hashes(&mut tx, user).await?;
        tx.commit().await?;
        for hash in hashes {
            if let Some(data) = self
                .cache
                .slide_session(tenant, &hash, self.config.session_idle_timeout)
                .await?
            {
                let mut live: LiveSession = serde_json::from_str(&data)?;
                live.roles = roles.to_vec();
                self.cache
                    .update_session(tenant, &hash, &serde_json::to_string(&live)?)
                    .await?;
            }
        }
        Ok(())
    }

    /// Ends every session of `tenant` (suspension, deletion); returns how many.
    ///
    /// # Errors
    /// [`SessionError`] when a store fails.
    pub async fn revoke_tenant(&self, tenant: TenantId) -> Result<usize, SessionError> {
        let mut tx = self.db.begin_tenant(tenant).await?;
        let hashes = store::sessions::revoke_all(&mut tx).await?;
        self.cache.delete_sessions(tenant, &hashes).await?;
        tx.commit().await?;
        Ok(hashes.len())
    }

    /// Ends one session of `user` (`Some`) or all of them (`None`) at `principal`'s
    /// request, recorded as `action`; returns how many ended.
    ///
    /// # Errors
    /// [`SessionError`] when a store fails; nothing ends then.
    pub async fn revoke(
        &self,
        principal: &Principal,
        user: Uuid,
        session: Option<Uuid>,
        action: &str,
    ) -> Result<usize, SessionError> {
        let tenant = principal.tenant;
        let mut tx = self.db.begin_tenant(tenant).await?;
        let hashes = store::sessions::revoke(&mut tx, user, session).await?;
        let resource = session.map_or_else(|| user.to_string(), |id| id.to_string());
        let kind = if session.is_some() { "session" } else { "user" };
        let event = NewEvent::by(
            principal,
            action,
            kind,
            resource,
            json!({ "ended": hashes.len() }),
        );
        audit::append(&mut tx, tenant, &event).await?;
        self.cache.delete_sessions(tenant, &hashes).await?;
        tx.commit().await?;
        Ok(hashes.len())
    }
}
