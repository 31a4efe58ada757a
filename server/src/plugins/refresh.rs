//! Reading plugins' manifests again: on demand (`RefreshPlugin`) and on a schedule that
//! every replica runs. A manifest other than the pinned one is kept as pending and
//! disables the plugin until it is approved, recorded as `plugin.manifest_changed` with
//! both hashes.

use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Manifest, PluginError, PluginInfo, Plugins,
    registry::{describe, from_manifest, info_of},
};
use crate::{
    audit::{self, NewEvent},
    caller::Principal,
    store,
    tenancy::TenantId,
};

/// Plugins whose manifests one replica reads at once.
const PARALLEL_READS: usize = 8;
/// How long a replica holds the plugins it claimed for a pass: a replica that stops
/// mid-pass leaves them to others after this.
const CLAIM_LEASE: Duration = Duration::from_secs(300);

impl Plugins {
    /// Reads the plugin's manifest now. A manifest other than the pinned one is kept as
    /// pending and disables the plugin, recorded as `plugin.manifest_changed` with both
    /// hashes. Returns the plugin and whether its manifest changed.
    ///
    /// # Errors
    /// [`PluginError::Unreachable`] or [`PluginError::TimedOut`] when the plugin does not
    /// answer; [`PluginError::Invalid`] when its new manifest cannot be pinned.
    pub async fn refresh(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<(PluginInfo, bool), PluginError> {
        self.refresh_as(principal.tenant, id, Some(principal)).await
    }

    /// Claims up to `batch` plugins of any tenant whose manifest was last read more than
    /// `every` ago (other replicas pass them by meanwhile) and reads them, a few at once;
    /// returns how many were read. Those that did not answer wait longer before each new
    /// try, so they do not hold up the rest.
    ///
    /// # Errors
    /// [`PluginError::Store`] when Postgres fails.
    pub async fn refresh_due(&self, every: Duration, batch: i32) -> Result<usize, PluginError> {
        let before = OffsetDateTime::now_utc() - every;
        let due =
            store::plugins::claim_due_for_refresh(&self.db, before, CLAIM_LEASE, batch).await?;
        let read = stream::iter(due)
            .map(|(tenant, id)| async move {
                let read = self.refresh_as(tenant, id, None).await;
                if let Err(err) = &read {
                    tracing::warn!(%tenant, plugin = %id, error = %err, "plugin manifest refresh failed");
                }
                read.is_ok()
            })
            .buffer_unordered(PARALLEL_READS)
            .filter(|read| std::future::ready(*read))
            .count()
            .await;
        Ok(read)
    }

    /// Reads the manifest of plugin `id` of `tenant` (for `principal`, or the schedule);
    /// a plugin that does not answer is tried again later, after a longer wait each time.
    async fn refresh_as(
        &self,
        tenant: TenantId,
        id: Uuid,
        principal: Option<&Principal>,
    ) -> Result<(PluginInfo, bool), PluginError> {
        let read = async {
            let (row, connection) = self.connect(tenant, id, true).await?;
            let raw = describe(connection.transport.as_ref(), &row.name, row.timeout_ms).await?;
            Ok::<_, PluginError>((row, raw))
        };
        let (row, raw) = match read.await {
            Ok(read) => read,
            Err(err @ (PluginError::Unreachable { .. } | PluginError::TimedOut { .. })) => {
                let mut tx = self.db.begin_tenant(tenant).await?;
                let every = self.limits.refresh_interval;
                store::plugins::record_refresh_failure(&mut tx, id, |failed| {
                    retry_wait(failed, every)
                })
                .await?;
                tx.commit().await?;
                return Err(err);
            }
            Err(err) => return Err(err),
        };
        let manifest = Manifest::pin(raw, &row.name).map_err(from_manifest)?;
        let hash = manifest.sha256();
        let changed = hash.as_slice() != row.manifest_sha256.as_slice();
        let already_pending = row.pending_manifest_sha256.as_deref() == Some(hash.as_slice());
        let mut tx = self.db.begin_tenant(tenant).await?;
        let value = serde_json::to_value(&manifest).unwrap_or_default();
        let pending = changed.then_some((&value, hash.as_slice()));
        let saved = store::plugins::record_refresh(&mut tx, id, pending).await?;
        if changed && !already_pending {
            let details = json!({
                "name": saved.name,
                "previous_manifest_sha256": hex::encode(&row.manifest_sha256),
                "manifest_sha256": hex::encode(hash),
            });
            let event = match principal {
                Some(principal) => {
                    NewEvent::by(principal, "plugin.manifest_changed", "plugin", id, details)
                }
                None => NewEvent::by_system(
                    "plugin-refresh",
                    "plugin.manifest_changed",
                    "plugin",
                    id,
                    details,
                ),
            };
            audit::append(&mut tx, tenant, &event).await?;
        }
        tx.commit().await?;
        Ok((info_of(saved)?, changed))
    }
}

/// How long to wait before reading again a manifest that could not be read, after
/// `failed` failures in a row before this one: a sixteenth of the refresh interval,
/// doubling with each failure, at most the interval.
fn retry_wait(failed: u32, every: Duration) -> Duration {
    (every / 16)
        .saturating_mul(2u32.saturating_pow(failed.min(16)))
        .min(every)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_that_keeps_failing_waits_longer_each_time_up_to_the_interval() {
        let every = Duration::from_secs(16 * 60);
        let waits: Vec<u64> = (0..7)
            .map(|failed| retry_wait(failed, every).as_secs() / 60)
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 16, 16]);
        assert_eq!(retry_wait(u32::MAX, every), every);
    }
}
