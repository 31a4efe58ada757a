//! Tenants' model aliases (see `llm::routes`).

use sqlx::{PgConnection, types::Json};

use super::{StoreError, TenantTx};

/// One stored alias.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RouteRow {
    /// The alias.
    pub alias: String,
    /// Ordered (provider, model) targets.
    pub targets: Json<Vec<(String, String)>>,
    /// Only on-premises providers may serve it.
    pub private_only: bool,
    /// Per-attempt timeout; 0: the server default.
    pub timeout_ms: i32,
    /// Retries per target on retryable failures.
    pub max_retries: i32,
}

const COLUMNS: &str = "alias, targets, private_only, timeout_ms, max_retries";

/// Creates or replaces an alias.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn upsert(tx: &mut TenantTx, row: &RouteRow) -> Result<(), StoreError> {
    let (conn, tenant) = tx.parts();
    sqlx::query(
        "INSERT INTO model_routes (tenant_id, alias, targets, private_only, timeout_ms, max_retries)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant_id, alias) DO UPDATE SET
             targets = EXCLUDED.targets, private_only = EXCLUDED.private_only,
             timeout_ms = EXCLUDED.timeout_ms, max_retries = EXCLUDED.max_retries,
             updated_at = now()",
    )
    .bind(tenant.0)
    .bind(&row.alias)
    .bind(&row.targets)
    .bind(row.private_only)
    .bind(row.timeout_ms)
    .bind(row.max_retries)
    .execute(conn)
    .await?;
    Ok(())
}

/// One alias of the scoped tenant.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn get(conn: &mut PgConnection, alias: &str) -> Result<Option<RouteRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM model_routes WHERE alias = $1"
    ))
    .bind(alias)
    .fetch_optional(conn)
    .await?)
}

/// The scoped tenant's aliases by name, after `after`.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn list(
    conn: &mut PgConnection,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<RouteRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM model_routes WHERE ($1::text IS NULL OR alias > $1)
         ORDER BY alias LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Deletes an alias; `false` when there was none.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn delete(conn: &mut PgConnection, alias: &str) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM model_routes WHERE alias = $1")
        .bind(alias)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}
