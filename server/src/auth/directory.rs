//! The tenant's users and who holds which role, as administrators manage them.
//!
//! Rules that keep a tenant governable: nobody grants or takes `platform-admin` through the
//! API; only owners grant or take `owner` and `admin`; only owners act on owners (roles,
//! disabling, deleting, ending sessions); the last active owner cannot lose the role or be
//! disabled or deleted, even by concurrent calls. Custom grants: nobody grants a permission
//! they do not hold, and owner-only permissions never go to any other role. Changes reach
//! the user's live sessions at once.

use serde_json::json;
use uuid::Uuid;

use std::sync::Arc;

use super::{
    permissions::{self, Permission},
    rbac::Rbac,
    replica_sync::{ReplicaSync, SyncError},
    roles::{OWNER_ONLY, PLATFORM_ADMIN},
    sessions::{SessionError, Sessions},
};
use crate::{
    audit::{self, NewEvent},
    caller::Principal,
    store::{self, Database, StoreError, role_policies::RolePolicy, users::UserRecord},
};

/// Role that must always have a holder.
const OWNER: &str = "owner";

/// Why a directory change was refused.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// No such user in the tenant.
    #[error("user not found")]
    NotFound,
    /// The role name is malformed.
    #[error("{0:?} is not a role name (a-z, 0-9, '_' and '-', starting with a letter)")]
    BadRole(String),
    /// The caller may not give or take this role.
    #[error("you cannot grant or revoke the role {0:?}")]
    RoleNotAssignable(String),
    /// The change would leave the tenant without an active owner.
    #[error("the tenant must keep at least one active owner")]
    LastOwner,
    /// Only owners may change or act on an owner's account.
    #[error("only owners may act on an owner")]
    OwnerTarget,
    /// The caller may not grant a permission they do not hold, or one kept for owners.
    #[error("{0}")]
    PermissionNotGrantable(String),
    /// The tenant has as many custom grants as it may.
    #[error("the tenant has {0} custom grants, the most allowed; remove some first")]
    TooManyPolicies(usize),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sessions could not be updated.
    #[error(transparent)]
    Sessions(#[from] SessionError),
    /// The policy is malformed or reserved.
    #[error("{0}")]
    BadPolicy(String),
    /// Policies could not be propagated.
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// Whether `principal` may hand out `role` (to a user, an API key or an identity
/// provider's group): never `platform-admin`, `owner` and `admin` only by owners.
pub fn may_assign(principal: &Principal, role: &str) -> bool {
    let privileged = matches!(role, "owner" | "admin");
    role != PLATFORM_ADMIN && (!privileged || principal.has_role(OWNER))
}

/// Checks that `role` is a role name `principal` may hand out.
///
/// # Errors
/// [`DirectoryError::BadRole`] for a malformed name, [`DirectoryError::RoleNotAssignable`]
/// for a role the caller may not give.
pub fn check_assignable(principal: &Principal, role: &str) -> Result<(), DirectoryError> {
    if !crate::tenancy::is_identifier(role) {
        return Err(DirectoryError::BadRole(role.to_owned()));
    }
    if !may_assign(principal, role) {
        return Err(DirectoryError::RoleNotAssignable(role.to_owned()));
    }
    Ok(())
}

/// Whether `part` is a valid policy object or action: a name or `*`.
fn is_policy_part(part: &str) -> bool {
    part == "*"
        || (part.len() <= 63
            && part.starts_with(|c: char| c.is_ascii_lowercase())
            && part.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
}

/// A policy's object without its plugin (`plugin/<name>` grants on one plugin), and the
/// plugin.
fn split_object(object: &str) -> (&str, Option<&str>) {
    match object.split_once('/') {
        Some((base, plugin)) => (base, Some(plugin)),
        None => (object, None),
    }
}

fn check_policy(principal: &Principal, policy: &RolePolicy) -> Result<(), DirectoryError> {
    check_assignable(principal, &policy.role)?;
    let (object, plugin) = split_object(&policy.object);
    if !is_policy_part(object) || !is_policy_part(&policy.action) {
        return Err(DirectoryError::BadPolicy(
            "object and action must be lower-case names (a-z, '_') or \"*\", the object \
             optionally \"plugin/<plugin name>\""
                .to_owned(),
        ));
    }
    if let Some(plugin) = plugin {
        let per_plugin = permissions::PER_PLUGIN
            .iter()
            .any(|p| p.object == object && p.action == policy.action);
        if !per_plugin {
            let names: Vec<String> = permissions::PER_PLUGIN
                .iter()
                .map(ToString::to_string)
                .collect();
            return Err(DirectoryError::BadPolicy(format!(
                "only {} may be granted on one plugin",
                names.join(" and ")
            )));
        }
        if !crate::tenancy::is_identifier(plugin) || plugin.len() > 32 {
            return Err(DirectoryError::BadPolicy(format!(
                "{plugin:?} is not a plugin name"
            )));
        }
    }
    if matches!(policy.object.as_str(), "tenant" | "*")
        && matches!(
            policy.action.as_str(),
            "create" | "list" | "suspend" | "delete" | "*"
        )
    {
        return Err(DirectoryError::BadPolicy(
            "tenant lifecycle permissions belong to the platform".to_owned(),
        ));
    }
    Ok(())
}

/// The permissions of the API a policy's object and action (either may be `*`) grant (on
/// one plugin, for `plugin/<name>`).
fn covered(policy: &RolePolicy) -> Vec<Permission> {
    let part = |pattern: &str, name: &str| pattern == "*" || pattern == name;
    let (object, _) = split_object(&policy.object);
    let mut covered: Vec<Permission> = permissions::all_permissions()
        .filter(|p| part(object, p.object) && part(&policy.action, p.action))
        .collect();
    covered.sort_by_key(|p| (p.object, p.action));
    covered.dedup();
    covered
}

/// Records a custom policy change in the transaction making it.
async fn record_policy(
    tx: &mut sqlx::PgConnection,
    principal: &Principal,
    action: &str,
    policy: &RolePolicy,
) -> Result<(), DirectoryError> {
    let details = json!({ "object": policy.object, "action": policy.action });
    let event = NewEvent::by(principal, action, "role", &policy.role, details);
    audit::append(tx, principal.tenant, &event).await?;
    Ok(())
}

/// `user` as `principal` may see them: the subject at the identity provider only for owners
/// (with it, and a provider of their choosing, one could sign in as that user).
fn shown_to(principal: &Principal, mut user: UserRecord) -> UserRecord {
    if !principal.has_role(OWNER) {
        user.external_subject = None;
    }
    user
}

/// The user `user` of the transaction's tenant.
async fn existing(tx: &mut sqlx::PgConnection, user: Uuid) -> Result<UserRecord, DirectoryError> {
    store::users::get(tx, user)
        .await?
        .ok_or(DirectoryError::NotFound)
}

/// The user `user`, when `principal` may act on them: an owner's account only by owners.
async fn target(
    tx: &mut sqlx::PgConnection,
    principal: &Principal,
    user: Uuid,
) -> Result<UserRecord, DirectoryError> {
    let found = existing(tx, user).await?;
    if found.roles.iter().any(|r| r == OWNER) && !principal.has_role(OWNER) {
        return Err(DirectoryError::OwnerTarget);
    }
    Ok(found)
}

/// Takes the tenant's owner lock (until the transaction ends) and says whether `user`,
/// an owner, is the last active one. Changes that may remove an owner hold the lock from
/// this check to their commit, so two of them cannot each leave the other last.
async fn last_active_owner(
    tx: &mut store::TenantTx,
    user: &UserRecord,
) -> Result<bool, DirectoryError> {
    store::users::lock_owners(tx).await?;
    let active_owner = !user.disabled && user.roles.iter().any(|r| r == OWNER);
    Ok(active_owner && store::users::count_active_owners(tx).await? <= 1)
}

/// Manages users, role grants and custom policies of the caller's tenant.
#[derive(Clone)]
pub struct Directory {
    db: Database,
    sessions: Sessions,
    sync: Arc<ReplicaSync>,
    rbac: Arc<Rbac>,
    max_policies: usize,
}

impl Directory {
    /// Users in `db`, live sessions through `sessions`, policy changes through `sync`,
    /// decisions about what a caller holds from `rbac`; a tenant keeps at most
    /// `max_policies` custom grants.
    pub fn new(
        db: Database,
        sessions: Sessions,
        sync: Arc<ReplicaSync>,
        rbac: Arc<Rbac>,
        max_policies: usize,
    ) -> Self {
        Self {
            db,
            sessions,
            sync,
            rbac,
            max_policies,
        }
    }

    /// Checks that `principal` may grant everything `policy` covers: permissions of the
    /// API only, each held by the caller, none kept for owners.
    async fn check_grantable(
        &self,
        principal: &Principal,
        policy: &RolePolicy,
    ) -> Result<(), DirectoryError> {
        let covered = covered(policy);
        if covered.is_empty() {
            return Err(DirectoryError::BadPolicy(format!(
                "{}:{} names no permission of the API",
                policy.object, policy.action
            )));
        }
        for permission in covered {
            if OWNER_ONLY.contains(&(permission.object, permission.action)) {
                return Err(DirectoryError::PermissionNotGrantable(format!(
                    "{permission} stays with owners and cannot be granted to a role"
                )));
            }
            let holds = match split_object(&policy.object) {
                (_, Some(plugin)) => {
                    self.rbac
                        .allows_on_plugin(principal, permission, plugin)
                        .await
                }
                (_, None) => self.rbac.allows(principal, permission).await,
            };
            if !holds {
                return Err(DirectoryError::PermissionNotGrantable(format!(
                    "you cannot grant {permission}, which you do not hold"
                )));
            }
        }
        Ok(())
    }

    /// The tenant's custom grants, optionally of one role.
    ///
    /// # Errors
    /// [`DirectoryError::Store`] when Postgres fails.
    pub async fn policies(
        &self,
        principal: &Principal,
        role: Option<&str>,
    ) -> Result<Vec<RolePolicy>, DirectoryError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let policies = store::role_policies::list(&mut tx, role).await?;
        tx.commit().await?;
        Ok(policies)
    }

    /// Grants a permission to a role (a new name makes a custom role); every replica
    /// enforces it within moments.
    ///
    /// # Errors
    /// [`DirectoryError`] for a malformed or reserved policy, or a failure.
    pub async fn add_policy(
        &self,
        principal: &Principal,
        policy: &RolePolicy,
    ) -> Result<(), DirectoryError> {
        check_policy(principal, policy)?;
        self.check_grantable(principal, policy).await?;
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        store::role_policies::lock(&mut tx).await?;
        if !store::role_policies::add(&mut tx, policy).await? {
            // Already granted: nothing changes, nothing to reload anywhere.
            return Ok(());
        }
        let count = store::role_policies::count(&mut tx).await?;
        if usize::try_from(count).unwrap_or(usize::MAX) > self.max_policies {
            return Err(DirectoryError::TooManyPolicies(self.max_policies));
        }
        record_policy(&mut tx, principal, "policy.add", policy).await?;
        tx.commit().await?;
        self.sync.changed(principal.tenant).await?;
        Ok(())
    }

    /// Removes a custom grant; `false` when there was none.
    ///
    /// # Errors
    /// [`DirectoryError`] for a reserved policy or a failure.
    pub async fn remove_policy(
        &self,
        principal: &Principal,
        policy: &RolePolicy,
    ) -> Result<bool, DirectoryError> {
        check_policy(principal, policy)?;
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let removed = store::role_policies::remove(&mut tx, policy).await?;
        if removed {
            record_policy(&mut tx, principal, "policy.remove", policy).await?;
        }
        tx.commit().await?;
        if removed {
            self.sync.changed(principal.tenant).await?;
        }
        Ok(removed)
    }

    /// A page of users.
    ///
    /// # Errors
    /// [`DirectoryError::Store`] when Postgres fails.
    pub async fn list(
        &self,
        principal: &Principal,
        query: Option<&str>,
        role: Option<&str>,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, DirectoryError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let users = store::users::list(&mut tx, query, role, after, i64::from(limit)).await?;
        tx.commit().await?;
        Ok(users.into_iter().map(|u| shown_to(principal, u)).collect())
    }

    /// One user.
    ///
    /// # Errors
    /// [`DirectoryError::NotFound`] when the tenant has no such user.
    pub async fn get(
        &self,
        principal: &Principal,
        user: Uuid,
    ) -> Result<UserRecord, DirectoryError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let found = store::users::get(&mut tx, user).await?;
        tx.commit().await?;
        found
            .map(|u| shown_to(principal, u))
            .ok_or(DirectoryError::NotFound)
    }

    /// Gives `user` the role `role`.
    ///
    /// # Errors
    /// [`DirectoryError`] for an unassignable role or unknown user.
    pub async fn grant(
        &self,
        principal: &Principal,
        user: Uuid,
        role: &str,
    ) -> Result<UserRecord, DirectoryError> {
        check_assignable(principal, role)?;
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        target(&mut tx, principal, user).await?;
        store::users::grant_role(&mut tx, user, role).await?;
        let event = NewEvent::by(
            principal,
            "role.grant",
            "user",
            user,
            json!({ "role": role }),
        );
        audit::append(&mut tx, principal.tenant, &event).await?;
        self.finish_role_change(principal, tx, user).await
    }

    /// Takes `role` from `user`.
    ///
    /// # Errors
    /// [`DirectoryError`] for an unassignable role, the last owner, or an unknown user.
    pub async fn revoke(
        &self,
        principal: &Principal,
        user: Uuid,
        role: &str,
    ) -> Result<UserRecord, DirectoryError> {
        check_assignable(principal, role)?;
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let found = target(&mut tx, principal, user).await?;
        if role == OWNER && last_active_owner(&mut tx, &found).await? {
            return Err(DirectoryError::LastOwner);
        }
        store::users::revoke_role(&mut tx, user, role).await?;
        let event = NewEvent::by(
            principal,
            "role.revoke",
            "user",
            user,
            json!({ "role": role }),
        );
        audit::append(&mut tx, principal.tenant, &event).await?;
        self.finish_role_change(principal, tx, user).await
    }

    /// Commits a role change and hands the user's new roles to their live sessions.
    async fn finish_role_change(
        &self,
        principal: &Principal,
        mut tx: store::TenantTx,
        user: Uuid,
    ) -> Result<UserRecord, DirectoryError> {
        let updated = existing(&mut tx, user).await?;
        tx.commit().await?;
        self.sessions
            .update_roles(principal.tenant, user, &updated.roles)
            .await?;
        Ok(updated)
    }

    /// Disables (ending their sessions; their keys stop working) or re-enables `user`.
    ///
    /// # Errors
    /// [`DirectoryError`] for the last owner or an unknown user.
    pub async fn set_disabled(
        &self,
        principal: &Principal,
        user: Uuid,
        disabled: bool,
    ) -> Result<UserRecord, DirectoryError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let found = target(&mut tx, principal, user).await?;
        if disabled && last_active_owner(&mut tx, &found).await? {
            return Err(DirectoryError::LastOwner);
        }
        store::users::set_disabled(&mut tx, user, disabled).await?;
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        let event = NewEvent::by(principal, action, "user", user, json!({}));
        audit::append(&mut tx, principal.tenant, &event).await?;
        let updated = existing(&mut tx, user).await?;
        tx.commit().await?;
        if disabled {
            self.sessions
                .revoke(principal, user, None, "session.revoke")
                .await?;
            self.sync.credentials_changed(principal.tenant).await?;
        }
        Ok(updated)
    }

    /// Deletes `user` with their grants, keys and sessions.
    ///
    /// # Errors
    /// [`DirectoryError`] for the last owner or an unknown user.
    pub async fn delete(&self, principal: &Principal, user: Uuid) -> Result<(), DirectoryError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let found = target(&mut tx, principal, user).await?;
        if last_active_owner(&mut tx, &found).await? {
            return Err(DirectoryError::LastOwner);
        }
        tx.commit().await?;
        self.sessions
            .revoke(principal, user, None, "session.revoke")
            .await?;
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let found = target(&mut tx, principal, user).await?;
        if last_active_owner(&mut tx, &found).await? {
            return Err(DirectoryError::LastOwner);
        }
        store::users::delete(&mut tx, user).await?;
        let event = NewEvent::by(principal, "user.delete", "user", user, json!({}));
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        self.sync.credentials_changed(principal.tenant).await?;
        Ok(())
    }

    /// Ends every session of `user`; returns how many.
    ///
    /// # Errors
    /// [`DirectoryError`] for an unknown user.
    pub async fn revoke_sessions(
        &self,
        principal: &Principal,
        user: Uuid,
    ) -> Result<usize, DirectoryError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        target(&mut tx, principal, user).await?;
        tx.commit().await?;
        Ok(self
            .sessions
            .revoke(principal, user, None, "session.revoke")
            .await?)
    }
}
