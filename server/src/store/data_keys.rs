//! Tenants' wrapped data keys (see `crypto`).

use sqlx::PgConnection;

use super::StoreError;
use crate::tenancy::TenantId;

/// The scoped tenant's newest key: (version, wrapped key).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn latest(conn: &mut PgConnection) -> Result<Option<(i32, Vec<u8>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT version, wrapped_key FROM tenant_data_keys ORDER BY version DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?)
}

/// One version of the scoped tenant's key, wrapped.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn get(conn: &mut PgConnection, version: i32) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT wrapped_key FROM tenant_data_keys WHERE version = $1")
            .bind(version)
            .fetch_optional(conn)
            .await?,
    )
}

/// Stores a new key version of `tenant`, the tenant it was wrapped for; `false` when
/// that version exists already. The tenant is named, not taken from the transaction's
/// scope, so that Postgres' row check refuses a key wrapped for another tenant than the
/// one the transaction sees (the sealer works in any tenant transaction it is handed).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    version: i32,
    wrapped: &[u8],
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO tenant_data_keys (tenant_id, version, wrapped_key) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant.0)
    .bind(version)
    .bind(wrapped)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}
