//! Keeps every replica's access decisions current: custom policies and cached credentials.
//!
//! At start a replica loads every tenant's custom grants. A replica that changes a tenant's
//! grants or rate limits, or does something that can stop a key from working (revocation,
//! disabling or deleting a user, suspending or deleting a tenant), applies it locally and
//! announces `policies:<tenant>`, `limits:<tenant>` or `credentials:<tenant>` on a Redis
//! channel. Every replica listening reloads the tenant's grants or limits from Postgres or
//! forgets the tenant's cached keys (messages carry only a tenant id, never content). After
//! a lost subscription the listener reconnects, reloads every grant and limit and forgets
//! every cached key, so a missed message cannot leave a replica stale.

use std::{future::Future, sync::Arc};

use super::{
    credential_cache::CredentialCache,
    rbac::{Rbac, RbacError},
};
use crate::{
    cache::{
        Cache, CacheError,
        rate_limit::{Limits, RateLimiter},
    },
    store::{self, Database, StoreError},
    tenancy::TenantId,
};

/// Why policies could not be synchronised.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Redis failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The engine refused the policies.
    #[error(transparent)]
    Rbac(#[from] RbacError),
}

/// Loads, reloads and announces access changes.
pub struct ReplicaSync {
    db: Database,
    cache: Cache,
    rbac: Arc<Rbac>,
    credentials: Arc<CredentialCache>,
    limiter: Arc<RateLimiter>,
}

/// A tenant's own limits as stored; malformed ones are ignored (the defaults apply).
fn parse_limits(tenant: TenantId, value: serde_json::Value) -> Option<Limits> {
    match serde_json::from_value::<Limits>(value) {
        Ok(limits) if limits.invalid_field().is_none() => Some(limits),
        _ => {
            tracing::warn!(%tenant, "ignoring malformed stored rate limits");
            None
        }
    }
}

impl ReplicaSync {
    /// Synchronises `rbac`, `credentials` and `limiter` from `db`, announcing through
    /// `cache`.
    pub fn new(
        db: Database,
        cache: Cache,
        rbac: Arc<Rbac>,
        credentials: Arc<CredentialCache>,
        limiter: Arc<RateLimiter>,
    ) -> Self {
        Self {
            db,
            cache,
            rbac,
            credentials,
            limiter,
        }
    }

    /// Reloads one tenant's own rate limits from Postgres.
    ///
    /// # Errors
    /// [`SyncError::Store`] when Postgres fails.
    pub async fn reload_limits(&self, tenant: TenantId) -> Result<(), SyncError> {
        let mut tx = self.db.begin_tenant(tenant).await?;
        let record = store::tenants::current(&mut tx).await?;
        tx.commit().await?;
        let limits = record
            .and_then(|r| r.rate_limits)
            .and_then(|json| parse_limits(tenant, json.0));
        self.limiter.set_override(tenant, limits);
        Ok(())
    }

    /// Applies `tenant`'s new rate limits here and on every other replica, from fresh
    /// counters.
    ///
    /// # Errors
    /// [`SyncError`] when a store fails.
    pub async fn limits_changed(&self, tenant: TenantId) -> Result<(), SyncError> {
        self.reload_limits(tenant).await?;
        self.limiter.reset_counters(tenant).await?;
        self.cache
            .publish(&self.channel(), &format!("limits:{tenant}"))
            .await?;
        Ok(())
    }

    fn channel(&self) -> String {
        self.cache.keys().platform(&["access-changes"])
    }

    /// Forgets `tenant`'s cached keys here and on every other replica.
    ///
    /// # Errors
    /// [`SyncError::Cache`] when the announcement cannot be sent.
    pub async fn credentials_changed(&self, tenant: TenantId) -> Result<(), SyncError> {
        self.credentials.forget_tenant(tenant);
        self.cache
            .publish(&self.channel(), &format!("credentials:{tenant}"))
            .await?;
        Ok(())
    }

    /// Loads every tenant's custom grants and own rate limits.
    ///
    /// # Errors
    /// [`SyncError`] when Postgres or the engine fails.
    pub async fn load_all(&self) -> Result<(), SyncError> {
        self.rbac.reload().await?;
        let limits = store::tenants::all_rate_limits(&self.db)
            .await?
            .into_iter()
            .filter_map(|(tenant, value)| Some((tenant, parse_limits(tenant, value)?)))
            .collect();
        self.limiter.set_all_overrides(limits);
        Ok(())
    }

    /// Reloads the grants here after `tenant` changed its own, and tells every other
    /// replica to.
    ///
    /// # Errors
    /// [`SyncError`] when a store fails.
    pub async fn changed(&self, tenant: TenantId) -> Result<(), SyncError> {
        self.reload_policies(tenant).await?;
        self.cache
            .publish(&self.channel(), &format!("policies:{tenant}"))
            .await?;
        Ok(())
    }

    /// Reloads one tenant's custom grants from Postgres (all of them when that fails
    /// half-way, so the engine never keeps a partial set).
    ///
    /// # Errors
    /// [`SyncError`] when Postgres or the engine fails.
    async fn reload_policies(&self, tenant: TenantId) -> Result<(), SyncError> {
        let mut tx = self.db.begin_tenant(tenant).await?;
        let grants = store::role_policies::list(&mut tx, None).await?;
        tx.commit().await?;
        let grants = grants.into_iter().map(|g| (g.role, g.object, g.action));
        if let Err(err) = self.rbac.replace_tenant(tenant, grants).await {
            tracing::warn!(error = %err, %tenant, "reloading every tenant's policies");
            self.rbac.reload().await?;
        }
        Ok(())
    }

    /// Listens for announcements until `stop` resolves.
    pub async fn listen(self: Arc<Self>, stop: impl Future<Output = ()>) {
        Cache::keep_following("access changes", stop, || self.subscribe_and_follow()).await;
    }

    async fn subscribe_and_follow(&self) -> Result<(), SyncError> {
        let mut subscription = self.cache.subscribe(&self.channel()).await?;
        // Whatever changed before the subscription took effect is picked up here.
        self.credentials.clear();
        self.load_all().await?;
        while let Some(payload) = subscription.next().await {
            let parsed = payload
                .split_once(':')
                .and_then(|(kind, tenant)| Some((kind, uuid::Uuid::try_parse(tenant).ok()?)));
            match parsed {
                Some(("policies", tenant)) => {
                    if let Err(err) = self.reload_policies(TenantId(tenant)).await {
                        tracing::error!(error = %err, %tenant, "cannot reload changed policies");
                    }
                }
                Some(("credentials", tenant)) => self.credentials.forget_tenant(TenantId(tenant)),
                Some(("limits", tenant)) => {
                    if let Err(err) = self.reload_limits(TenantId(tenant)).await {
                        tracing::error!(error = %err, %tenant, "cannot reload changed rate limits");
                    }
                }
                _ => tracing::warn!(%payload, "ignoring malformed access change announcement"),
            }
        }
        Ok(())
    }
}
