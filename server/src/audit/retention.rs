//! Retention: each tenant keeps its events `audit_retention_days` (default six years);
//! a periodic job deletes older ones. The purge first signs a retention checkpoint at the
//! newest expired event, so the oldest surviving event still links to something signed,
//! then deletes through it by the database's one retention path, and records what it did
//! as an event of its own, all in one transaction.

use std::time::Duration;

use serde_json::json;
use sqlx::PgConnection;

use super::{CheckpointKind, CheckpointSigner, NewEvent, append};
use crate::{
    caller::Principal,
    periodic,
    store::{self, Database, StoreError},
    tenancy::TenantId,
};

/// Changes the scoped tenant's retention and records who did, in one transaction.
///
/// # Errors
/// [`StoreError`] when Postgres fails; nothing changes then.
pub async fn set_retention_days(
    conn: &mut PgConnection,
    principal: &Principal,
    days: i32,
) -> Result<(), StoreError> {
    let before = store::audit::retention_days(&mut *conn).await?;
    store::audit::set_retention_days(&mut *conn, days).await?;
    let event = NewEvent::by(
        principal,
        "audit.retention.set",
        "tenant",
        principal.tenant,
        json!({ "from_days": before, "to_days": days }),
    );
    append(conn, principal.tenant, &event).await.map(drop)
}

/// Purges `tenant`'s events older than its retention; returns how many were deleted.
///
/// # Errors
/// [`StoreError`] when Postgres fails; nothing is deleted then.
pub async fn purge_expired(
    db: &Database,
    signer: &CheckpointSigner,
    tenant: TenantId,
) -> Result<i64, StoreError> {
    let mut tx = db.begin_tenant(tenant).await?;
    let Some((seq, hash)) = store::audit::last_expired(&mut tx).await? else {
        return Ok(0);
    };
    let cut = signer.sign(tenant, seq, &hash, CheckpointKind::Retention);
    store::audit::insert_checkpoint(&mut tx, &cut).await?;
    let deleted = store::audit::purge_through(&mut tx, seq).await?;
    let event = NewEvent::by_system(
        "audit-retention",
        "audit.purge",
        "audit_events",
        seq,
        json!({ "deleted": deleted, "through_seq": seq }),
    );
    append(&mut tx, tenant, &event).await?;
    tx.commit().await?;
    tracing::info!(%tenant, deleted, through_seq = seq, "expired audit events purged");
    Ok(deleted)
}

/// Purges expired events of every tenant on a timer.
pub struct RetentionJob {
    db: Database,
    signer: CheckpointSigner,
}

impl RetentionJob {
    /// Purges the chains in `db`, signing cuts with `signer`.
    pub fn new(db: Database, signer: CheckpointSigner) -> Self {
        Self { db, signer }
    }

    /// One pass over every tenant; returns the events deleted.
    ///
    /// # Errors
    /// [`StoreError`] when Postgres fails; tenants done before stay done.
    pub async fn run_once(&self) -> Result<i64, StoreError> {
        let mut deleted = 0;
        for tenant in store::audit::audited_tenants(&self.db).await? {
            deleted += purge_expired(&self.db, &self.signer, tenant).await?;
        }
        Ok(deleted)
    }

    /// Runs a pass every `interval` until `stop` resolves, on one replica at a time.
    pub async fn run(self, interval: Duration, stop: impl Future<Output = ()>) {
        periodic::alone("audit retention", interval, &self.db, stop, || async {
            self.run_once().await.map(drop)
        })
        .await;
    }
}
