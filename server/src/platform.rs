//! Tenant lifecycle: the platform operator's explicitly privileged path.
//!
//! Creating, listing, suspending, resuming and deleting tenants need the `platform-admin`
//! role (checked by the RBAC layer); reading or updating a tenant other than one's own does
//! too (checked here). Suspension and deletion take effect at once on every replica: API
//! keys are checked against the tenant's state on every call, and every live session of the
//! tenant is deleted from Redis.

use serde_json::json;
use uuid::Uuid;

use std::sync::Arc;

use crate::{
    audit::{self, NewEvent},
    auth::{
        replica_sync::{ReplicaSync, SyncError},
        roles::PLATFORM_ADMIN,
        sessions::{SessionError, Sessions},
    },
    cache::{SettingsChanges, rate_limit::Limits},
    caller::Principal,
    privacy::PhiPolicy,
    store::{self, Database, StoreError, tenants::TenantRecord},
    tenancy::{InvalidSlug, TenantId, TenantSlug},
};

/// Why a tenant operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// No such tenant (or none the caller may see).
    #[error("tenant not found")]
    NotFound,
    /// The slug is taken.
    #[error("a tenant with slug {0:?} already exists")]
    Exists(String),
    /// The slug is malformed.
    #[error(transparent)]
    Slug(#[from] InvalidSlug),
    /// The display name is empty or too long.
    #[error("display name must be 1 to 200 characters")]
    DisplayName,
    /// The PHI policy is not one of allow, redact, refuse.
    #[error("unknown PHI policy")]
    PhiPolicy,
    /// A deleted tenant cannot change state.
    #[error("the tenant is deleted")]
    Deleted,
    /// A rate limit field is out of range.
    #[error("rate limit {0} must be positive")]
    RateLimit(&'static str),
    /// Only platform admins set a tenant's rate limits.
    #[error("only platform admins change a tenant's rate limits")]
    NotPlatformAdmin,
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sessions could not be ended.
    #[error(transparent)]
    Sessions(#[from] SessionError),
    /// Other replicas could not be told.
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// What an update does to a tenant's own rate limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LimitsChange {
    /// Leave them as they are.
    Keep,
    /// Go back to the server's defaults.
    Reset,
    /// Use these.
    Set(Limits),
}

/// A tenant's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantState {
    /// Serving.
    Active,
    /// Credentials refused; data kept.
    Suspended,
    /// Credentials refused for good; data awaiting destruction.
    Deleted,
}

impl TenantState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }
}

fn limits_json(change: LimitsChange) -> Result<Option<Option<serde_json::Value>>, PlatformError> {
    match change {
        LimitsChange::Keep => Ok(None),
        LimitsChange::Reset => Ok(Some(None)),
        LimitsChange::Set(limits) => {
            if let Some(field) = limits.invalid_field() {
                return Err(PlatformError::RateLimit(field));
            }
            let value = serde_json::to_value(limits).map_err(|err| {
                PlatformError::Store(StoreError::Query(sqlx::Error::Encode(err.into())))
            })?;
            Ok(Some(Some(value)))
        }
    }
}

fn check_display_name(name: &str) -> Result<(), PlatformError> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(PlatformError::DisplayName);
    }
    Ok(())
}

fn check_phi_policy(policy: Option<&str>) -> Result<(), PlatformError> {
    match policy.map(str::parse::<PhiPolicy>) {
        None | Some(Ok(_)) => Ok(()),
        Some(Err(_)) => Err(PlatformError::PhiPolicy),
    }
}

/// Tenant lifecycle operations.
#[derive(Clone)]
pub struct Platform {
    db: Database,
    sessions: Sessions,
    sync: Arc<ReplicaSync>,
    changes: Arc<SettingsChanges>,
}

impl Platform {
    /// Tenants in `db`; their sessions through `sessions`; cached keys dropped through
    /// `sync`; changes of a tenant's PHI policy and state announced through `changes`.
    pub fn new(
        db: Database,
        sessions: Sessions,
        sync: Arc<ReplicaSync>,
        changes: Arc<SettingsChanges>,
    ) -> Self {
        Self {
            db,
            sessions,
            sync,
            changes,
        }
    }

    /// Creates a tenant, optionally with its own rate limits.
    ///
    /// # Errors
    /// [`PlatformError`] for bad input or a taken slug.
    pub async fn create(
        &self,
        principal: &Principal,
        slug: &str,
        display_name: &str,
        phi_policy: Option<&str>,
        limits: LimitsChange,
    ) -> Result<TenantRecord, PlatformError> {
        let slug = TenantSlug::parse(slug)?;
        let display_name = if display_name.is_empty() {
            slug.as_str()
        } else {
            display_name
        };
        check_display_name(display_name)?;
        check_phi_policy(phi_policy)?;
        let limits = limits_json(limits)?;
        let mut tx = self.db.begin_platform().await?;
        let tenant = store::tenants::create(&mut tx, &slug, display_name)
            .await?
            .ok_or_else(|| PlatformError::Exists(slug.to_string()))?;
        let mut tx = tx.scope(tenant).await?;
        if let Some(limits) = limits.clone() {
            store::tenants::set_rate_limits(&mut tx, limits).await?;
        }
        let record = store::tenants::update(&mut tx, None, phi_policy)
            .await?
            .ok_or(PlatformError::NotFound)?;
        let details = json!({
            "slug": record.slug,
            "phi_policy": record.phi_policy,
            "rate_limits": limits.is_some(),
        });
        let event = NewEvent::by(principal, "tenant.create", "tenant", tenant, details);
        audit::append(&mut tx, tenant, &event).await?;
        tx.commit().await?;
        if limits.is_some() {
            self.sync.limits_changed(tenant).await?;
        }
        Ok(record)
    }

    /// The caller's tenant (`None` or its own id), or any tenant for platform admins.
    ///
    /// # Errors
    /// [`PlatformError::NotFound`] for a tenant the caller may not see.
    pub async fn get(
        &self,
        principal: &Principal,
        id: Option<Uuid>,
    ) -> Result<TenantRecord, PlatformError> {
        let target = self.target(principal, id)?;
        if target == principal.tenant {
            let mut tx = self.db.begin_tenant(target).await?;
            let record = store::tenants::current(&mut tx).await?;
            tx.commit().await?;
            return record.ok_or(PlatformError::NotFound);
        }
        store::tenants::get_any(&self.db, target)
            .await?
            .ok_or(PlatformError::NotFound)
    }

    /// A page of all tenants.
    ///
    /// # Errors
    /// [`PlatformError::Store`] when Postgres fails.
    pub async fn list(
        &self,
        after: Option<Uuid>,
        state: Option<TenantState>,
        limit: u32,
    ) -> Result<Vec<TenantRecord>, PlatformError> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        Ok(
            store::tenants::list_all(&self.db, after, state.map(TenantState::as_str), limit)
                .await?,
        )
    }

    /// Changes a tenant's display name and PHI policy (each when given) and, for platform
    /// admins, its rate limits.
    ///
    /// # Errors
    /// [`PlatformError`] for bad input or a tenant the caller may not change.
    pub async fn update(
        &self,
        principal: &Principal,
        id: Option<Uuid>,
        display_name: Option<&str>,
        phi_policy: Option<&str>,
        limits: LimitsChange,
    ) -> Result<TenantRecord, PlatformError> {
        let target = self.target(principal, id)?;
        if let Some(name) = display_name {
            check_display_name(name)?;
        }
        check_phi_policy(phi_policy)?;
        if limits != LimitsChange::Keep && !principal.has_role(PLATFORM_ADMIN) {
            return Err(PlatformError::NotPlatformAdmin);
        }
        let limits = limits_json(limits)?;
        let mut tx = self.db.begin_tenant(target).await?;
        if let Some(limits) = limits.clone() {
            store::tenants::set_rate_limits(&mut tx, limits).await?;
        }
        let record = store::tenants::update(&mut tx, display_name, phi_policy).await?;
        let details = json!({
            "display_name": display_name.is_some(),
            "phi_policy": phi_policy,
            "rate_limits": limits.is_some(),
        });
        let event = NewEvent::by(principal, "tenant.update", "tenant", target, details);
        audit::append(&mut tx, target, &event).await?;
        tx.commit().await?;
        if limits.is_some() {
            self.sync.limits_changed(target).await?;
        }
        if phi_policy.is_some() {
            self.changes.changed(target).await;
        }
        record.ok_or(PlatformError::NotFound)
    }

    /// Moves a tenant to `state` (recording `reason`); leaving `active` ends all its
    /// sessions at once.
    ///
    /// # Errors
    /// [`PlatformError`] for an unknown or deleted tenant.
    pub async fn set_state(
        &self,
        principal: &Principal,
        id: Uuid,
        state: TenantState,
        reason: &str,
    ) -> Result<TenantRecord, PlatformError> {
        let tenant = TenantId(id);
        let mut tx = self.db.begin_tenant(tenant).await?;
        let Some(record) = store::tenants::set_state(&mut tx, tenant, state.as_str()).await? else {
            return Err(match store::tenants::get_any(&self.db, tenant).await? {
                Some(_) => PlatformError::Deleted,
                None => PlatformError::NotFound,
            });
        };
        let action = match state {
            TenantState::Active => "tenant.resume",
            TenantState::Suspended => "tenant.suspend",
            TenantState::Deleted => "tenant.delete",
        };
        let reason: String = reason.chars().take(256).collect();
        let event = NewEvent::by(
            principal,
            action,
            "tenant",
            tenant,
            json!({ "reason": reason }),
        );
        audit::append(&mut tx, tenant, &event).await?;
        tx.commit().await?;
        // Cached keys carry the tenant's state: every replica must re-read it. Cached
        // settings hold opened provider credentials: none may outlive a deleted tenant.
        self.sync.credentials_changed(tenant).await?;
        self.changes.changed(tenant).await;
        if state != TenantState::Active {
            let ended = self.sessions.revoke_tenant(tenant).await?;
            tracing::info!(%tenant, state = state.as_str(), sessions_ended = ended, "tenant state changed");
        }
        Ok(record)
    }

    fn target(&self, principal: &Principal, id: Option<Uuid>) -> Result<TenantId, PlatformError> {
        match id.map(TenantId) {
            None => Ok(principal.tenant),
            Some(id) if id == principal.tenant || principal.has_role(PLATFORM_ADMIN) => Ok(id),
            Some(_) => Err(PlatformError::NotFound),
        }
    }
}
