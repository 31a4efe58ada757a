//! The tenants table, reached only through the platform functions the migration defines
//! (creating a tenant and finding one by slug are the two operations that cannot run inside
//! a tenant scope).

use sqlx::PgConnection;
use uuid::Uuid;

use super::{Database, StoreError};
use crate::tenancy::{TenantId, TenantSlug};

/// Inserts a tenant inside the caller's transaction. Returns `None` when the slug is taken.
///
/// # Errors
/// [`StoreError::Query`] for any other database failure.
pub async fn create(
    conn: &mut PgConnection,
    slug: &TenantSlug,
    display_name: &str,
) -> Result<Option<TenantId>, StoreError> {
    let id = Uuid::now_v7();
    let created = sqlx::query("SELECT codexcontinue_create_tenant($1, $2, $3)")
        .bind(id)
        .bind(slug.as_str())
        .bind(display_name)
        .execute(conn)
        .await;
    match created {
        Ok(_) => Ok(Some(TenantId(id))),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The id of the tenant with `slug`, if there is one.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn find_by_slug(
    db: &Database,
    slug: &TenantSlug,
) -> Result<Option<TenantId>, StoreError> {
    let id: Option<Uuid> = sqlx::query_scalar("SELECT codexcontinue_tenant_id_by_slug($1)")
        .bind(slug.as_str())
        .fetch_one(db.pool())
        .await?;
    Ok(id.map(TenantId))
}

/// The slug of the scoped transaction's tenant.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails or no tenant is in scope.
pub async fn slug(conn: &mut PgConnection) -> Result<String, StoreError> {
    Ok(sqlx::query_scalar("SELECT slug FROM tenants")
        .fetch_one(conn)
        .await?)
}

/// A tenant row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRecord {
    /// Id.
    pub id: Uuid,
    /// Unique slug.
    pub slug: String,
    /// Display name.
    pub display_name: String,
    /// `active`, `suspended` or `deleted`.
    pub state: String,
    /// PHI policy: `allow`, `redact` or `refuse`.
    pub phi_policy: String,
    /// Rate limits set by a platform admin (JSON), if any.
    pub rate_limits: Option<sqlx::types::Json<serde_json::Value>>,
    /// Creation time.
    pub created_at: time::OffsetDateTime,
    /// Last change.
    pub updated_at: time::OffsetDateTime,
}

const TENANT_COLUMNS: &str =
    "id, slug, display_name, state, phi_policy, rate_limits, created_at, updated_at";

/// Any tenant by id (platform path).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn get_any(db: &Database, id: TenantId) -> Result<Option<TenantRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TENANT_COLUMNS} FROM codexcontinue_get_tenant($1)"
    ))
    .bind(id.0)
    .fetch_optional(db.pool())
    .await?)
}

/// Tenants after `after` in id order, optionally in one state (platform path).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn list_all(
    db: &Database,
    after: Option<Uuid>,
    state: Option<&str>,
    limit: i32,
) -> Result<Vec<TenantRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TENANT_COLUMNS} FROM codexcontinue_list_tenants($1, $2, $3)"
    ))
    .bind(after)
    .bind(state)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Sets a tenant's state unless it is deleted (platform path); `None` when there is no
/// such tenant or it is deleted.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn set_state(
    conn: &mut PgConnection,
    id: TenantId,
    state: &str,
) -> Result<Option<TenantRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TENANT_COLUMNS} FROM codexcontinue_set_tenant_state($1, $2)"
    ))
    .bind(id.0)
    .bind(state)
    .fetch_optional(conn)
    .await?)
}

/// Changes the scoped tenant's display name and PHI policy (each when given).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn update(
    conn: &mut PgConnection,
    display_name: Option<&str>,
    phi_policy: Option<&str>,
) -> Result<Option<TenantRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "UPDATE tenants SET display_name = coalesce($1, display_name),
                            phi_policy = coalesce($2, phi_policy),
                            updated_at = now()
         RETURNING {TENANT_COLUMNS}"
    ))
    .bind(display_name)
    .bind(phi_policy)
    .fetch_optional(conn)
    .await?)
}

/// The scoped transaction's tenant.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn current(conn: &mut PgConnection) -> Result<Option<TenantRecord>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {TENANT_COLUMNS} FROM tenants"))
            .fetch_optional(conn)
            .await?,
    )
}

/// Whether `tenant` is active (not suspended or deleted): background jobs of a tenant that
/// is not skip their work.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn is_active(db: &Database, tenant: TenantId) -> Result<bool, StoreError> {
    let mut tx = db.begin_tenant(tenant).await?;
    let record = current(&mut tx).await?;
    tx.commit().await?;
    Ok(record.is_some_and(|t| t.state == "active"))
}

/// Every tenant's own rate limits (platform path).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn all_rate_limits(
    db: &Database,
) -> Result<Vec<(TenantId, serde_json::Value)>, StoreError> {
    let rows: Vec<(Uuid, sqlx::types::Json<serde_json::Value>)> =
        sqlx::query_as("SELECT * FROM codexcontinue_all_tenant_rate_limits()")
            .fetch_all(db.pool())
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, limits)| (TenantId(id), limits.0))
        .collect())
}

/// Sets (or with `None` clears) the scoped tenant's own rate limits.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn set_rate_limits(
    conn: &mut PgConnection,
    limits: Option<serde_json::Value>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE tenants SET rate_limits = $1, updated_at = now()")
        .bind(limits.map(sqlx::types::Json))
        .execute(conn)
        .await?;
    Ok(())
}

/// Deleted tenants whose data still exists, oldest deletion first (platform path).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn awaiting_deletion(db: &Database, limit: i32) -> Result<Vec<TenantId>, StoreError> {
    let ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT * FROM codexcontinue_tenants_awaiting_deletion($1)")
            .bind(limit)
            .fetch_all(db.pool())
            .await?;
    Ok(ids.into_iter().map(TenantId).collect())
}

/// Deletes up to `limit` rows of `table` in the scoped tenant; returns how many (fewer
/// than `limit`: none are left). `table` must come from the server's own list of
/// tenant-owned tables, never from input.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn delete_some_rows(
    conn: &mut PgConnection,
    table: &'static str,
    limit: i64,
) -> Result<u64, StoreError> {
    let result = sqlx::query(&format!(
        "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} LIMIT $1))"
    ))
    .bind(limit)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// Records that the scoped tenant's data is gone.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn mark_data_deleted(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("UPDATE tenants SET data_deleted_at = now()")
        .execute(conn)
        .await?;
    Ok(())
}
