//! Keeps every replica's policy engine current.
//!
//! At start a replica loads every tenant's custom grants. A replica that changes a tenant's
//! grants reloads that tenant and announces it on a Redis channel; every replica listening
//! reloads the tenant from Postgres (the message carries only the tenant id, never policy
//! content). After a lost subscription the listener reconnects and reloads everything, so a
//! missed message cannot leave a replica stale.

use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};

use tokio_stream::StreamExt;

use super::rbac::{Rbac, RbacError};
use crate::{
    cache::{Cache, CacheError},
    store::{self, Database, StoreError, role_policies::RolePolicy},
    tenancy::{self, TenantId},
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

/// Loads, reloads and announces custom grants.
pub struct PolicySync {
    db: Database,
    cache: Cache,
    rbac: Arc<Rbac>,
}

impl PolicySync {
    /// Synchronises `rbac` from `db`, announcing through `cache`.
    pub fn new(db: Database, cache: Cache, rbac: Arc<Rbac>) -> Self {
        Self { db, cache, rbac }
    }

    fn channel(&self) -> String {
        self.cache.keys().platform(&["policy-changes"])
    }

    /// Loads every tenant's custom grants.
    ///
    /// # Errors
    /// [`SyncError`] when Postgres or the engine fails.
    pub async fn load_all(&self) -> Result<(), SyncError> {
        let mut by_tenant: BTreeMap<TenantId, Vec<RolePolicy>> = BTreeMap::new();
        for (tenant, policy) in store::role_policies::all(&self.db).await? {
            by_tenant.entry(tenant).or_default().push(policy);
        }
        self.rbac.replace_all(&by_tenant).await?;
        Ok(())
    }

    /// Reloads one tenant's custom grants from Postgres.
    ///
    /// # Errors
    /// [`SyncError`] when Postgres or the engine fails.
    pub async fn reload(&self, tenant: TenantId) -> Result<(), SyncError> {
        let mut tx = tenancy::begin(&self.db, tenant).await?;
        let policies = store::role_policies::list(&mut tx, None).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.rbac.replace_tenant(tenant, &policies).await?;
        Ok(())
    }

    /// Reloads `tenant` here and tells every other replica to.
    ///
    /// # Errors
    /// [`SyncError`] when a store fails.
    pub async fn changed(&self, tenant: TenantId) -> Result<(), SyncError> {
        self.reload(tenant).await?;
        self.cache
            .publish(&self.channel(), &tenant.to_string())
            .await?;
        Ok(())
    }

    /// Listens for announcements until `stop` resolves.
    pub async fn listen(self: Arc<Self>, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                result = self.subscribe_and_follow() => {
                    if let Err(err) = result {
                        tracing::warn!(error = %err, "policy change subscription lost; reconnecting");
                    }
                }
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    async fn subscribe_and_follow(&self) -> Result<(), SyncError> {
        let mut pubsub = self.cache.subscribe(&self.channel()).await?;
        // Whatever changed before the subscription took effect is picked up here.
        self.load_all().await?;
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            let Ok(tenant) = uuid::Uuid::try_parse(&payload) else {
                tracing::warn!(%payload, "ignoring malformed policy change announcement");
                continue;
            };
            if let Err(err) = self.reload(TenantId(tenant)).await {
                tracing::error!(error = %err, %tenant, "cannot reload changed policies");
            }
        }
        Ok(())
    }
}
