//! Custom permissions tenants grant to roles.

use sqlx::PgConnection;

use super::{Database, StoreError, TenantTx};
use crate::tenancy::TenantId;

/// One custom grant.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RolePolicy {
    /// The role granted to.
    pub role: String,
    /// Object kind, or `*`.
    pub object: String,
    /// Action, or `*`.
    pub action: String,
}

/// Every tenant's custom grants (the policy engine's start-up load).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn all(db: &Database) -> Result<Vec<(TenantId, RolePolicy)>, StoreError> {
    let rows: Vec<(uuid::Uuid, String, String, String)> =
        sqlx::query_as("SELECT * FROM codexcontinue_all_role_policies()")
            .fetch_all(db.pool())
            .await?;
    Ok(rows
        .into_iter()
        .map(|(tenant, role, object, action)| {
            (
                TenantId(tenant),
                RolePolicy {
                    role,
                    object,
                    action,
                },
            )
        })
        .collect())
}

/// The scoped tenant's custom grants, optionally of one role, ordered.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn list(
    conn: &mut PgConnection,
    role: Option<&str>,
) -> Result<Vec<RolePolicy>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT role, object, action FROM role_policies
         WHERE ($1::text IS NULL OR role = $1) ORDER BY role, object, action",
    )
    .bind(role)
    .fetch_all(conn)
    .await?)
}

/// Adds a grant to the scoped tenant; `false` when it already existed.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn add(tx: &mut TenantTx, policy: &RolePolicy) -> Result<bool, StoreError> {
    let (conn, tenant) = tx.parts();
    let result = sqlx::query(
        "INSERT INTO role_policies (tenant_id, role, object, action) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant.0)
    .bind(&policy.role)
    .bind(&policy.object)
    .bind(&policy.action)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Removes a grant from the scoped tenant; `false` when there was none.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn remove(conn: &mut PgConnection, policy: &RolePolicy) -> Result<bool, StoreError> {
    let result =
        sqlx::query("DELETE FROM role_policies WHERE role = $1 AND object = $2 AND action = $3")
            .bind(&policy.role)
            .bind(&policy.object)
            .bind(&policy.action)
            .execute(conn)
            .await?;
    Ok(result.rows_affected() == 1)
}

/// How many custom grants the scoped tenant has.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn count(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM role_policies")
        .fetch_one(conn)
        .await?)
}

/// Holds the scoped tenant's policy lock until the transaction ends, so concurrent
/// additions cannot pass the per-tenant cap together.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn lock(tx: &mut TenantTx) -> Result<(), StoreError> {
    let (conn, tenant) = tx.parts();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('policies:' || $1::text, 0))")
        .bind(tenant.0)
        .execute(conn)
        .await?;
    Ok(())
}
