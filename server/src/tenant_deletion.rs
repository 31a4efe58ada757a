//! The job that destroys a deleted tenant's data.
//!
//! `AdminService.DeleteTenant` only marks a tenant deleted (every credential stops at
//! once). This job then deletes the tenant's rows from every tenant-owned table, in the
//! tenant's own row-level-security scope and in bounded batches (a transaction per
//! [`ROWS_PER_TRANSACTION`] rows, so a large tenant holds no long transaction and a pass
//! that stops resumes where it was), deletes its Redis keys, and records when it finished;
//! the tenant row stays as the record. Modules that add
//! tenant-owned tables add them to [`TENANT_TABLES`] (or, for records that must outlive the
//! tenant, [`RETAINED_TABLES`]); a test checks that no table with a `tenant_id` column is
//! left out.

use std::{future::Future, time::Duration};

use crate::{
    audit::{self, NewEvent},
    cache::{Cache, CacheError},
    periodic,
    store::{self, Database, StoreError},
    tenancy::TenantId,
};

/// Tenant-owned tables, children before parents.
pub const TENANT_TABLES: &[&str] = &[
    "usage_events",
    "budgets",
    "memory_terms",
    "memories",
    "memory_centroids",
    "memory_keyword_keys",
    "messages",
    "conversations",
    "sessions",
    "api_keys",
    "role_assignments",
    "role_policies",
    "identity_providers",
    "model_routes",
    "plugins",
    "profiles",
    "providers",
    "tenant_model_parts",
    "tenant_models",
    "users",
    // Last: without them whatever was sealed for the tenant stays unreadable (in backups
    // taken from now on too).
    "tenant_data_keys",
];

/// Tenant-owned tables the job keeps: the audit trail outlives the tenant (HIPAA asks for
/// six years), and its retention is handled by the audit purge, not by tenant deletion.
pub const RETAINED_TABLES: &[&str] = &["audit_events", "audit_chain_heads", "audit_checkpoints"];

/// Tenants handled per pass.
const BATCH: i32 = 10;
/// Rows deleted per transaction.
pub const ROWS_PER_TRANSACTION: i64 = 5_000;

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
pub enum DeletionError {
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Redis failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// What one tenant's deletion removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionReport {
    /// The tenant.
    pub tenant: TenantId,
    /// Rows deleted per table.
    pub rows: Vec<(&'static str, u64)>,
    /// Redis keys deleted.
    pub cache_keys: usize,
}

/// Destroys deleted tenants' data.
pub struct TenantDeletion {
    db: Database,
    cache: Cache,
}

impl TenantDeletion {
    /// Works on `db` and `cache`.
    pub fn new(db: Database, cache: Cache) -> Self {
        Self { db, cache }
    }

    /// Deletes the data of the tenants awaiting it (a batch at a time).
    ///
    /// # Errors
    /// [`DeletionError`] when a store fails; tenants done before stay done.
    pub async fn run_once(&self) -> Result<Vec<DeletionReport>, DeletionError> {
        let mut reports = Vec::new();
        for tenant in store::tenants::awaiting_deletion(&self.db, BATCH).await? {
            let mut rows = Vec::with_capacity(TENANT_TABLES.len());
            for table in TENANT_TABLES {
                rows.push((*table, self.delete_rows(tenant, table).await?));
            }
            let mut tx = self.db.begin_tenant(tenant).await?;
            store::tenants::mark_data_deleted(&mut tx).await?;
            let counts: serde_json::Map<_, _> = rows
                .iter()
                .map(|(table, count)| ((*table).to_owned(), serde_json::json!(count)))
                .collect();
            let event = NewEvent::by_system(
                "tenant-deletion",
                "tenant.data_destroyed",
                "tenant",
                tenant,
                serde_json::json!({ "rows": counts }),
            );
            audit::append(&mut tx, tenant, &event).await?;
            let pattern = self.cache.keys().tenant_pattern(tenant, &[]);
            let cache_keys = self.cache.delete_matching(&pattern).await?;
            tx.commit().await?;
            tracing::info!(%tenant, ?rows, cache_keys, "deleted tenant's data destroyed");
            reports.push(DeletionReport {
                tenant,
                rows,
                cache_keys,
            });
        }
        Ok(reports)
    }

    /// Deletes every row of `table` of `tenant`, [`ROWS_PER_TRANSACTION`] at a time;
    /// returns how many.
    async fn delete_rows(&self, tenant: TenantId, table: &'static str) -> Result<u64, StoreError> {
        let mut deleted = 0;
        loop {
            let mut tx = self.db.begin_tenant(tenant).await?;
            let batch =
                store::tenants::delete_some_rows(&mut tx, table, ROWS_PER_TRANSACTION).await?;
            tx.commit().await?;
            deleted += batch;
            if batch < u64::try_from(ROWS_PER_TRANSACTION).unwrap_or(u64::MAX) {
                return Ok(deleted);
            }
        }
    }

    /// Runs a pass every `interval` until `stop` resolves, on one replica at a time.
    pub async fn run(self, interval: Duration, stop: impl Future<Output = ()>) {
        periodic::alone("tenant data deletion", interval, &self.db, stop, || async {
            self.run_once().await.map(drop)
        })
        .await;
    }
}
