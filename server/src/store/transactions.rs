//! The two kinds of transaction the server opens, and the one place tenant isolation is
//! made.
//!
//! A [`TenantTx`] sees only its tenant's rows: it first sets the transaction-local
//! `app.tenant_id`, and Postgres policies then hide every other tenant's rows, so a mistake
//! in a WHERE clause cannot leak across tenants. (`set_config(..., true)` instead of
//! `SET LOCAL`, because `SET` takes no bind parameters; transaction-local, so nothing leaks
//! to the next user of a pooled connection.) A [`PlatformTx`] is for the few operations
//! above any tenant: creating one, appending to every tenant's audit chain at once.
//! Repositories that write a tenant's rows take a [`TenantTx`]; the others run on the
//! connection inside one (or, for the few platform reads, on the database handle, inside
//! `store`); nothing above `store` touches the pool.

use std::ops::{Deref, DerefMut};

use sqlx::{PgConnection, Postgres, Transaction, pool::PoolConnection};

use super::{Database, StoreError};
use crate::tenancy::TenantId;

/// A transaction in which only one tenant's rows exist.
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    tenant: TenantId,
}

impl TenantTx {
    /// The tenant whose rows this transaction sees.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// The connection and the tenant, for a repository that writes the tenant's id into
    /// new rows.
    pub fn parts(&mut self) -> (&mut PgConnection, TenantId) {
        (&mut self.tx, self.tenant)
    }

    /// Commits.
    ///
    /// # Errors
    /// [`StoreError::Query`] when Postgres fails.
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }
}

impl Deref for TenantTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for TenantTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

/// A transaction above every tenant, for platform operations (row-level security still
/// applies: without a tenant scope, tenant-owned rows are invisible).
pub struct PlatformTx {
    tx: Transaction<'static, Postgres>,
}

impl PlatformTx {
    /// From now until it ends, the transaction sees only `tenant`'s rows: a tenant just
    /// created gets its first rows in the transaction that created it.
    ///
    /// # Errors
    /// [`StoreError::Query`] when Postgres fails.
    pub async fn scope(mut self, tenant: TenantId) -> Result<TenantTx, StoreError> {
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(tenant.0.to_string())
            .execute(&mut *self.tx)
            .await?;
        Ok(TenantTx {
            tx: self.tx,
            tenant,
        })
    }

    /// Commits.
    ///
    /// # Errors
    /// [`StoreError::Query`] when Postgres fails.
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }
}

impl Deref for PlatformTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for PlatformTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

impl Database {
    /// Opens a transaction in which only `tenant`'s rows exist.
    ///
    /// `BEGIN` and the scope go to Postgres as one simple query: one round trip instead of
    /// two for every transaction the server opens. The tenant id is a UUID, written in hex
    /// and dashes, so it is inlined safely.
    ///
    /// # Errors
    /// [`StoreError::Query`] when Postgres fails.
    pub async fn begin_tenant(&self, tenant: TenantId) -> Result<TenantTx, StoreError> {
        let begin = format!(
            "BEGIN; SELECT set_config('app.tenant_id', '{}', true)",
            tenant.0.hyphenated()
        );
        let tx = self.pool().begin_with(begin).await?;
        Ok(TenantTx { tx, tenant })
    }

    /// Opens a platform transaction (see [`PlatformTx`]).
    ///
    /// # Errors
    /// [`StoreError::Query`] when Postgres fails.
    pub async fn begin_platform(&self) -> Result<PlatformTx, StoreError> {
        Ok(PlatformTx {
            tx: self.pool().begin().await?,
        })
    }

    /// A connection above every tenant, outside any transaction: for one statement that
    /// is atomic on its own (the audit writer's append, which commits every tenant's
    /// chain in one statement without a transaction's extra round trips).
    ///
    /// # Errors
    /// [`StoreError::Query`] when Postgres fails.
    pub async fn platform_connection(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        Ok(self.pool().acquire().await?)
    }
}

/// A tenant transaction begun by the first read that needs it, so a call that finds what
/// it needs in a cache never talks to Postgres.
pub struct LazyTenantTx<'a> {
    db: &'a Database,
    tenant: TenantId,
    tx: Option<TenantTx>,
}

impl<'a> LazyTenantTx<'a> {
    /// Nothing begun yet; reads will see only `tenant`'s rows.
    pub fn new(db: &'a Database, tenant: TenantId) -> Self {
        Self {
            db,
            tenant,
            tx: None,
        }
    }

    /// The transaction, begun now if it was not.
    ///
    /// # Errors
    /// [`StoreError::Query`] when Postgres fails.
    pub async fn get(&mut self) -> Result<&mut TenantTx, StoreError> {
        Ok(match &mut self.tx {
            Some(tx) => tx,
            empty @ None => empty.insert(self.db.begin_tenant(self.tenant).await?),
        })
    }

    /// Commits what was begun.
    ///
    /// # Errors
    /// [`StoreError::Query`] when Postgres fails.
    pub async fn commit(self) -> Result<(), StoreError> {
        if let Some(tx) = self.tx {
            tx.commit().await?;
        }
        Ok(())
    }
}
