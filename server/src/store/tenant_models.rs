//! Models tenants uploaded (see `model_catalog`): one row per model with its manifest,
//! and its files in sealed parts.

use sqlx::{PgConnection, types::Json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{StoreError, TenantTx};

/// One stored model.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantModelRow {
    /// Its id (part of the sealed parts' associated data).
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// The manifest, as JSON.
    pub manifest: Json<serde_json::Value>,
    /// Size of the model file.
    pub size_bytes: i64,
    /// False after UnloadModel.
    pub serving: bool,
    /// When it was registered.
    pub created_at: OffsetDateTime,
}

/// A model to insert.
#[derive(Debug, Clone)]
pub struct NewTenantModel<'a> {
    /// Its id.
    pub id: Uuid,
    /// Name.
    pub name: &'a str,
    /// Version.
    pub version: &'a str,
    /// Kind, as the manifest spells it.
    pub kind: &'a str,
    /// The manifest, as JSON.
    pub manifest: serde_json::Value,
    /// SHA-256 of the model file.
    pub sha256: &'a str,
    /// Size of the model file.
    pub size_bytes: i64,
    /// Who registered it.
    pub created_by: Option<Uuid>,
}

const COLUMNS: &str = "id, name, version, manifest, size_bytes, serving, created_at";

/// Inserts a model; `false` when the tenant already has this name and version.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn insert(tx: &mut TenantTx, model: &NewTenantModel<'_>) -> Result<bool, StoreError> {
    let (conn, tenant) = tx.parts();
    let inserted = sqlx::query(
        "INSERT INTO tenant_models (tenant_id, id, name, version, kind, manifest, sha256,
                                    size_bytes, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, name, version) DO NOTHING",
    )
    .bind(tenant.0)
    .bind(model.id)
    .bind(model.name)
    .bind(model.version)
    .bind(model.kind)
    .bind(Json(&model.manifest))
    .bind(model.sha256)
    .bind(model.size_bytes)
    .bind(model.created_by)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Stores one sealed part of a model's `file` (`model` or `tokenizer`).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn insert_part(
    tx: &mut TenantTx,
    model: Uuid,
    (file, seq): (&str, i32),
    sealed: &[u8],
) -> Result<(), StoreError> {
    let (conn, tenant) = tx.parts();
    sqlx::query(
        "INSERT INTO tenant_model_parts (tenant_id, id, model_id, file, seq, data_sealed)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant.0)
    .bind(part_id(model, file, seq))
    .bind(model)
    .bind(file)
    .bind(seq)
    .bind(sealed)
    .execute(conn)
    .await?;
    Ok(())
}

/// The row id of a part, bound into its sealed value.
pub fn part_id(model: Uuid, file: &str, seq: i32) -> String {
    format!("{model}:{file}:{seq}")
}

/// Parts of a model's `file` from `seq` on, at most `limit`: (seq, sealed value).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn parts(
    conn: &mut PgConnection,
    model: Uuid,
    file: &str,
    from: i32,
    limit: i64,
) -> Result<Vec<(i32, Vec<u8>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT seq, data_sealed FROM tenant_model_parts
         WHERE model_id = $1 AND file = $2 AND seq >= $3 ORDER BY seq LIMIT $4",
    )
    .bind(model)
    .bind(file)
    .bind(from)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The scoped tenant's model `name` at `version`, or its newest version when `None`.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn find(
    conn: &mut PgConnection,
    name: &str,
    version: Option<&str>,
) -> Result<Option<TenantModelRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tenant_models
         WHERE name = $1 AND ($2::text IS NULL OR version = $2)
         ORDER BY version DESC LIMIT 1"
    ))
    .bind(name)
    .bind(version)
    .fetch_optional(conn)
    .await?)
}

/// Every model of the scoped tenant, by name and version.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<TenantModelRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tenant_models ORDER BY name, version"
    ))
    .fetch_all(conn)
    .await?)
}

/// How many models the scoped tenant has.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn count(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM tenant_models")
        .fetch_one(conn)
        .await?)
}

/// Sets whether replicas load the model; `false` when there is no such model.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn set_serving(
    conn: &mut PgConnection,
    model: Uuid,
    serving: bool,
) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("UPDATE tenant_models SET serving = $2 WHERE id = $1")
            .bind(model)
            .bind(serving)
            .execute(conn)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Deletes a model and its parts; `false` when there is no such model.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn delete(conn: &mut PgConnection, model: Uuid) -> Result<bool, StoreError> {
    Ok(sqlx::query("DELETE FROM tenant_models WHERE id = $1")
        .bind(model)
        .execute(conn)
        .await?
        .rows_affected()
        == 1)
}
