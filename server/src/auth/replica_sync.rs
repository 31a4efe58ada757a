//! Keeps every replica's access decisions current: custom policies and cached credentials.
//!
//! At start a replica loads every tenant's custom grants. A replica that changes a tenant's
//! grants, or does something that can stop a key from working (revocation, disabling or
//! deleting a user, suspending or deleting a tenant), applies it locally and announces
//! `policies:<tenant>` or `credentials:<tenant>` on a Redis channel. Every replica listening
//! reloads the tenant's grants from Postgres or forgets the tenant's cached keys (messages
//! carry only a tenant id, never content). After a lost subscription the listener
//! reconnects, reloads every grant and forgets every cached key, so a missed message cannot
//! leave a replica stale.

use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};

use tokio_stream::StreamExt;

use super::{
    credential_cache::CredentialCache,
    rbac::{Rbac, RbacError},
};
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

/// Loads, reloads and announces access changes.
pub struct ReplicaSync {
    db: Database,
    cache: Cache,
    rbac: Arc<Rbac>,
    credentials: Arc<CredentialCache>,
}

impl ReplicaSync {
    /// Synchronises `rbac` from `db` and `credentials`, announcing through `cache`.
    pub fn new(
        db: Database,
        cache: Cache,
        rbac: Arc<Rbac>,
        credentials: Arc<CredentialCache>,
    ) -> Self {
        Self {
            db,
            cache,
            rbac,
            credentials,
        }
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
            .publish(&self.channel(), &format!("policies:{tenant}"))
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
        self.credentials.clear();
        self.load_all().await?;
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            let parsed = payload
                .split_once(':')
                .and_then(|(kind, tenant)| Some((kind, uuid::Uuid::try_parse(tenant).ok()?)));
            match parsed {
                Some(("policies", tenant)) => {
                    if let Err(err) = self.reload(TenantId(tenant)).await {
                        tracing::error!(error = %err, %tenant, "cannot reload changed policies");
                    }
                }
                Some(("credentials", tenant)) => self.credentials.forget_tenant(TenantId(tenant)),
                _ => tracing::warn!(%payload, "ignoring malformed access change announcement"),
            }
        }
        Ok(())
    }
}
