//! Tells every replica when a tenant's chat settings change (profiles, providers, model
//! aliases, budgets, the tenant's PHI policy, the tenant itself), so that what a replica
//! remembers of them is never used after the change.
//!
//! Each tenant has a version on each replica. A replica that changes a tenant's settings
//! moves the version on itself, then announces the tenant id on a Redis channel and every
//! listening replica moves its own. A cache remembers the version its entries were read
//! at and trusts them only while it is still current. After a lost subscription every
//! version moves (a missed announcement cannot leave a replica stale); the caches' time
//! limit bounds the staleness should an announcement not be delivered at all.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use super::{Cache, CacheError};
use crate::tenancy::TenantId;

/// The versions of tenants' settings on this replica, and their announcements.
pub struct SettingsChanges {
    cache: Cache,
    versions: Versions,
}

/// Version numbers: every move takes the next number of one counter, so a version never
/// comes back.
#[derive(Default)]
struct Versions {
    /// Last version given out, for any tenant.
    counter: AtomicU64,
    /// Version every tenant is at least at (moved after a lost subscription).
    floor: AtomicU64,
    /// Tenants whose settings changed since this replica started, at their version.
    changed: Mutex<HashMap<TenantId, u64>>,
}

impl Versions {
    fn current(&self, tenant: TenantId) -> u64 {
        let changed = self
            .changed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&tenant)
            .copied()
            .unwrap_or(0);
        changed.max(self.floor.load(Ordering::Acquire))
    }

    fn move_one(&self, tenant: TenantId) {
        let version = self.counter.fetch_add(1, Ordering::AcqRel) + 1;
        self.changed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tenant, version);
    }

    fn move_all(&self) {
        let version = self.counter.fetch_add(1, Ordering::AcqRel) + 1;
        self.floor.store(version, Ordering::Release);
    }
}

impl SettingsChanges {
    /// Announces through `cache`.
    pub fn new(cache: Cache) -> Self {
        Self {
            cache,
            versions: Versions::default(),
        }
    }

    /// The current version of `tenant`'s settings: read it before reading the settings,
    /// and keep them only while it is still the current version.
    pub fn version(&self, tenant: TenantId) -> u64 {
        self.versions.current(tenant)
    }

    /// Records that `tenant`'s settings changed: here at once, then on every other
    /// replica. Call it after the change is committed. A failed announcement is logged;
    /// the other replicas then catch up when their cached entries expire.
    pub async fn changed(&self, tenant: TenantId) {
        self.versions.move_one(tenant);
        if let Err(err) = self
            .cache
            .publish(&self.channel(), &tenant.0.to_string())
            .await
        {
            tracing::error!(error = %err, %tenant, "cannot announce a settings change to the other replicas");
        }
    }

    fn channel(&self) -> String {
        self.cache.keys().platform(&["settings-changes"])
    }

    /// Follows the other replicas' announcements until `stop` resolves.
    pub async fn listen(self: std::sync::Arc<Self>, stop: impl Future<Output = ()>) {
        Cache::keep_following("settings changes", stop, || self.follow()).await;
    }

    async fn follow(&self) -> Result<(), CacheError> {
        let mut subscription = self.cache.subscribe(&self.channel()).await?;
        // Whatever changed before the subscription took effect is missed: start over.
        self.versions.move_all();
        while let Some(payload) = subscription.next().await {
            let tenant = uuid::Uuid::try_parse(&payload).ok();
            match tenant {
                Some(tenant) => self.versions.move_one(TenantId(tenant)),
                None => tracing::warn!("ignoring a malformed settings change announcement"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId(uuid::Uuid::now_v7())
    }

    #[test]
    fn a_change_moves_only_its_tenants_version() {
        let versions = Versions::default();
        let (a, b) = (tenant(), tenant());
        let (a0, b0) = (versions.current(a), versions.current(b));
        versions.move_one(a);
        assert_ne!(versions.current(a), a0);
        assert_eq!(versions.current(b), b0);
    }

    #[test]
    fn a_lost_subscription_moves_every_version_and_later_changes_still_count() {
        let versions = Versions::default();
        let (a, b) = (tenant(), tenant());
        versions.move_one(a);
        let (a1, b1) = (versions.current(a), versions.current(b));
        versions.move_all();
        let (a2, b2) = (versions.current(a), versions.current(b));
        assert!(a2 != a1 && b2 != b1);
        versions.move_one(b);
        assert_ne!(versions.current(b), b2);
        assert_eq!(versions.current(a), a2);
    }
}
