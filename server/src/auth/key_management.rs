//! Creating, listing and revoking API keys on behalf of a principal.
//!
//! Rules: a key never carries a role its creator does not hold; a key made with a key
//! expires no later than its parent and is revoked with it; a user holds at most
//! `auth.max_keys_per_user` working keys; callers see and revoke their own keys, and
//! callers allowed `api_key:manage` (owners, admins) those of the whole tenant.

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use std::sync::Arc;

use super::{
    api_key::IssuedApiKey,
    directory::may_assign,
    permissions::Permission,
    rbac::Rbac,
    replica_sync::{ReplicaSync, SyncError},
    roles::PLATFORM_ADMIN,
};
use crate::{
    audit::{self, NewEvent},
    caller::Principal,
    store::{self, Database, StoreError, api_keys::ApiKeyRecord},
};

/// Longest key name.
const MAX_NAME_CHARS: usize = 100;
/// Role a key gets when the request names none.
const DEFAULT_KEY_ROLE: &str = "member";

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

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A request field is unacceptable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The caller asked for a role they may not give.
    #[error("you cannot give a key the role {0:?}")]
    RoleNotHeld(String),
    /// No such key visible to the caller.
    #[error("API key not found")]
    NotFound,
    /// The user holds as many working keys as they may.
    #[error(
        "you hold {0} working API keys, the most allowed (auth.max_keys_per_user); revoke one \
         first"
    )]
    TooMany(usize),
    /// Randomness or the database failed.
    #[error(transparent)]
    Internal(#[from] StoreError),
    /// No random bytes.
    #[error(transparent)]
    Randomness(#[from] crate::random::RandomnessUnavailable),
    /// The revocation could not be announced to the other replicas.
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// The tenants' API keys.
pub struct ApiKeys {
    db: Database,
    rbac: Arc<Rbac>,
    sync: Arc<ReplicaSync>,
    max_keys: usize,
}

/// A key to create.
pub struct NewKey {
    /// Human name, 1..100 characters.
    pub name: String,
    /// Roles; empty means `member`.
    pub roles: Vec<String>,
    /// When it expires; must be in the future.
    pub expires_at: Option<OffsetDateTime>,
}

impl ApiKeys {
    /// Keys in `db`, management rights decided by `rbac`, revocations announced through
    /// `sync`; a user holds at most `max_keys` working keys.
    pub fn new(db: Database, rbac: Arc<Rbac>, sync: Arc<ReplicaSync>, max_keys: usize) -> Self {
        Self {
            db,
            rbac,
            sync,
            max_keys,
        }
    }

    /// The owner whose keys the caller is limited to: none for callers allowed to manage
    /// the tenant's keys.
    async fn own_only(&self, principal: &Principal) -> Option<Uuid> {
        let manage = self.rbac.allows(principal, MANAGE_KEYS).await;
        (!manage).then_some(principal.user)
    }

    /// Issues a key for the caller. Callers may give the key roles they hold; callers who may
    /// grant roles also roles they could grant a user (`owner` and `admin`
    /// only by owners). No key gets `platform-admin`. A caller holding `max_keys` working keys
    /// gets none; a caller using a key gets one that ends with it.
    ///
    /// # Errors
    /// [`KeyError`] for bad input, a role the caller may not give, too many keys, or a
    /// failure.
    pub async fn create(
        &self,
        principal: &Principal,
        new: NewKey,
    ) -> Result<(ApiKeyRecord, IssuedApiKey), KeyError> {
        let (db, max_keys) = (&self.db, self.max_keys);
        let assign_any_role = self.rbac.allows(principal, ASSIGN_ROLES).await;
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(KeyError::Invalid {
                field: "name",
                reason: format!("must be 1 to {MAX_NAME_CHARS} characters"),
            });
        }
        let mut roles = if new.roles.is_empty() {
            vec![DEFAULT_KEY_ROLE.to_owned()]
        } else {
            new.roles
        };
        roles.sort();
        roles.dedup();
        let may_give = |role: &String| {
            role != PLATFORM_ADMIN
                && (principal.has_role(role) || (assign_any_role && may_assign(principal, role)))
        };
        if let Some(role) = roles.iter().find(|role| !may_give(role)) {
            return Err(KeyError::RoleNotHeld(role.clone()));
        }
        if let Some(role) = roles
            .iter()
            .find(|role| !crate::tenancy::is_identifier(role))
        {
            return Err(KeyError::Invalid {
                field: "roles",
                reason: format!("{role:?} is not a role name (a-z, 0-9, '_' and '-', up to 63)"),
            });
        }
        if new
            .expires_at
            .is_some_and(|at| at <= OffsetDateTime::now_utc())
        {
            return Err(KeyError::Invalid {
                field: "expire_time",
                reason: "must be in the future".to_owned(),
            });
        }
        let key = IssuedApiKey::generate()?;
        let mut tx = db.begin_tenant(principal.tenant).await?;
        let held = store::api_keys::lock_and_count_active(&mut tx, principal.user).await?;
        if usize::try_from(held).unwrap_or(usize::MAX) >= max_keys {
            return Err(KeyError::TooMany(max_keys));
        }
        let mut expires_at = new.expires_at;
        if let Some(parent) = principal.api_key
            && let Some(parent_expiry) = store::api_keys::expiry(&mut tx, parent).await?
        {
            expires_at = Some(expires_at.map_or(parent_expiry, |at| at.min(parent_expiry)));
        }
        let row = store::api_keys::NewKeyRow {
            id: key.id,
            owner: principal.user,
            parent: principal.api_key,
            name,
            prefix: &key.prefix,
            roles: &roles,
            expires_at,
        };
        let record = store::api_keys::insert(&mut tx, &row, &key.secret_sha256).await?;
        let event = NewEvent::by(
            principal,
            "api_key.create",
            "api_key",
            record.id,
            json!({
                "roles": roles,
                "expires": expires_at.is_some(),
                "parent_key": principal.api_key,
            }),
        );
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        Ok((record, key))
    }

    /// One page of keys visible to the caller.
    ///
    /// # Errors
    /// [`KeyError::Internal`] when the database fails.
    pub async fn list(
        &self,
        principal: &Principal,
        after: Option<Uuid>,
        limit: u32,
        include_inactive: bool,
    ) -> Result<Vec<ApiKeyRecord>, KeyError> {
        let owner = self.own_only(principal).await;
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let keys = store::api_keys::list(&mut tx, owner, after, i64::from(limit), include_inactive)
            .await?;
        tx.commit().await?;
        Ok(keys)
    }

    /// Revokes a key the caller may revoke.
    ///
    /// # Errors
    /// [`KeyError::NotFound`] when there is no such key for the caller.
    pub async fn revoke(&self, principal: &Principal, key: Uuid) -> Result<ApiKeyRecord, KeyError> {
        let owner = self.own_only(principal).await;
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let record = store::api_keys::revoke(&mut tx, key, owner)
            .await?
            .ok_or(KeyError::NotFound)?;
        let event = NewEvent::by(principal, "api_key.revoke", "api_key", record.id, json!({}));
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        self.sync.credentials_changed(principal.tenant).await?;
        Ok(record)
    }
}
