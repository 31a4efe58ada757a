//! Tenants' plugins (see `plugins`): endpoint, pinned manifest, grants; secrets sealed.

use std::time::Duration;

use sqlx::{PgConnection, types::Json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Database, StoreError, TenantTx};
use crate::tenancy::TenantId;

/// One stored plugin.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PluginRow {
    /// Server-assigned id.
    pub id: Uuid,
    /// Tenant-unique name; tools reach the model as `<name>__<tool>`.
    pub name: String,
    /// `grpc`, `mcp` or `wasm`.
    pub transport: String,
    /// Where the plugin listens.
    pub endpoint: String,
    /// Inside the tenant's premises.
    pub on_premises: bool,
    /// The credential and the opaque-id key, sealed.
    pub secrets_sealed: Vec<u8>,
    /// Whether a static credential is among the secrets.
    pub credential_set: bool,
    /// The pinned manifest.
    pub manifest: Json<serde_json::Value>,
    /// Its SHA-256.
    pub manifest_sha256: Vec<u8>,
    /// A changed manifest awaiting approval.
    pub pending_manifest: Option<Json<serde_json::Value>>,
    /// Its SHA-256.
    pub pending_manifest_sha256: Option<Vec<u8>>,
    /// Granted capabilities.
    pub granted: Vec<String>,
    /// Whether the assistant and users may call it.
    pub enabled: bool,
    /// Per-call timeout.
    pub timeout_ms: i32,
    /// Registration.
    pub created_at: OffsetDateTime,
    /// Last change of its settings.
    pub updated_at: OffsetDateTime,
    /// Last read of its manifest.
    pub refreshed_at: OffsetDateTime,
}

const COLUMNS: &str = "id, name, transport, endpoint, on_premises, secrets_sealed, credential_set, \
     manifest, manifest_sha256, pending_manifest, pending_manifest_sha256, granted, enabled, \
     timeout_ms, created_at, updated_at, refreshed_at";

/// Stores a new plugin (its times are the database's) with its uploaded WebAssembly
/// `component`, if any; `None` when the tenant already has one of that name.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn insert(
    tx: &mut TenantTx,
    row: &PluginRow,
    component: Option<&[u8]>,
) -> Result<Option<PluginRow>, StoreError> {
    let (conn, tenant) = tx.parts();
    Ok(sqlx::query_as(&format!(
        "INSERT INTO plugins
             (tenant_id, id, name, transport, endpoint, on_premises, secrets_sealed,
              credential_set, manifest, manifest_sha256, granted, enabled, timeout_ms,
              component)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (tenant_id, name) DO NOTHING
         RETURNING {COLUMNS}"
    ))
    .bind(tenant.0)
    .bind(row.id)
    .bind(&row.name)
    .bind(&row.transport)
    .bind(&row.endpoint)
    .bind(row.on_premises)
    .bind(&row.secrets_sealed)
    .bind(row.credential_set)
    .bind(&row.manifest)
    .bind(&row.manifest_sha256)
    .bind(&row.granted)
    .bind(row.enabled)
    .bind(row.timeout_ms)
    .bind(component)
    .fetch_optional(conn)
    .await?)
}

/// The WebAssembly component a tenant uploaded for plugin `id`, if any.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn component(conn: &mut PgConnection, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
    let found: Option<(Option<Vec<u8>>,)> =
        sqlx::query_as("SELECT component FROM plugins WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(found.and_then(|(component,)| component))
}

/// One plugin of the scoped tenant, by id.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<PluginRow>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM plugins WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// One plugin of the scoped tenant, by id, locked until the transaction ends.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn get_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<PluginRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM plugins WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The scoped tenant's plugins named in `names` (all of them when `names` is `None`).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn by_names(
    conn: &mut PgConnection,
    names: Option<&[String]>,
) -> Result<Vec<PluginRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM plugins WHERE $1::text[] IS NULL OR name = ANY($1) ORDER BY name"
    ))
    .bind(names)
    .fetch_all(conn)
    .await?)
}

/// A page of the scoped tenant's plugins by id, after `after`.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn list(
    conn: &mut PgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<PluginRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM plugins WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Writes the settings a caller may change (enabled, grants, timeout) back.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails (a plugin with a pending manifest cannot be
/// enabled: the table refuses).
pub async fn update_settings(
    conn: &mut PgConnection,
    row: &PluginRow,
) -> Result<PluginRow, StoreError> {
    Ok(sqlx::query_as(&format!(
        "UPDATE plugins SET enabled = $2, granted = $3, timeout_ms = $4, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(row.id)
    .bind(row.enabled)
    .bind(&row.granted)
    .bind(row.timeout_ms)
    .fetch_one(conn)
    .await?)
}

/// Records a manifest read from the plugin: the same as the pinned one only moves
/// `refreshed_at`; a different one becomes pending and disables the plugin.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn record_refresh(
    conn: &mut PgConnection,
    id: Uuid,
    pending: Option<(&serde_json::Value, &[u8])>,
) -> Result<PluginRow, StoreError> {
    let (manifest, hash) = pending.unzip();
    Ok(sqlx::query_as(&format!(
        "UPDATE plugins SET
             refreshed_at = now(),
             refresh_failures = 0,
             refresh_next_at = now(),
             pending_manifest = $2,
             pending_manifest_sha256 = $3,
             enabled = enabled AND $2::jsonb IS NULL,
             updated_at = CASE WHEN $2::jsonb IS NULL THEN updated_at ELSE now() END
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(manifest.map(Json))
    .bind(hash)
    .fetch_one(conn)
    .await?)
}

/// Pins the pending manifest (with `granted` narrowed to what it still requests) and
/// enables the plugin.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn approve_pending(
    conn: &mut PgConnection,
    id: Uuid,
    granted: &[String],
) -> Result<PluginRow, StoreError> {
    Ok(sqlx::query_as(&format!(
        "UPDATE plugins SET
             manifest = pending_manifest,
             manifest_sha256 = pending_manifest_sha256,
             pending_manifest = NULL,
             pending_manifest_sha256 = NULL,
             granted = $2,
             enabled = true,
             updated_at = now()
         WHERE id = $1 AND pending_manifest IS NOT NULL RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(granted)
    .fetch_one(conn)
    .await?)
}

/// Removes a plugin; `false` when there was none.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<bool, StoreError> {
    Ok(sqlx::query("DELETE FROM plugins WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected()
        == 1)
}

/// Notes that the plugin's manifest could not be read: it is tried again after the
/// wait `wait` gives for the failures in a row before this one.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn record_refresh_failure(
    conn: &mut PgConnection,
    id: Uuid,
    wait: impl FnOnce(u32) -> Duration,
) -> Result<(), StoreError> {
    let (failures,): (i32,) =
        sqlx::query_as("SELECT refresh_failures FROM plugins WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    sqlx::query(
        "UPDATE plugins SET
             refresh_failures = refresh_failures + 1,
             refresh_next_at = now() + make_interval(secs => $2)
         WHERE id = $1",
    )
    .bind(id)
    .bind(wait(u32::try_from(failures).unwrap_or(0)).as_secs_f64())
    .execute(conn)
    .await?;
    Ok(())
}

/// Claims up to `limit` plugins of active tenants whose manifest was last read before
/// `before` and that no replica claimed or failed lately, oldest read first, for `lease`
/// (platform path, for the scheduled refresh).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn claim_due_for_refresh(
    db: &Database,
    before: OffsetDateTime,
    lease: Duration,
    limit: i32,
) -> Result<Vec<(TenantId, Uuid)>, StoreError> {
    let mut conn = db.platform_connection().await?;
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT tenant_id, id FROM codexcontinue_plugins_claim_due($1, make_interval(secs => $2), $3)",
    )
    .bind(before)
    .bind(lease.as_secs_f64())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(tenant, id)| (TenantId(tenant), id))
        .collect())
}
