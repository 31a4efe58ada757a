//! Tenants' domain profiles: overrides of the built-in ones and profiles of their own
//! (see `chat::profile`).

use sqlx::PgConnection;

use super::{StoreError, TenantTx};

/// One stored profile.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProfileRow {
    /// Profile id.
    pub id: String,
    /// Name to show.
    pub display_name: String,
    /// What it is for.
    pub description: String,
    /// Instructions given to the model first.
    pub system_prompt: String,
    /// Model alias used when a conversation names none.
    pub default_model: String,
    /// `allow`, `redact` or `refuse`; `None`: the tenant's policy.
    pub phi_policy: Option<String>,
    /// Plugin ids the assistant may call.
    pub allowed_plugins: Vec<String>,
}

const COLUMNS: &str =
    "id, display_name, description, system_prompt, default_model, phi_policy, allowed_plugins";

/// Creates or replaces a profile.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn upsert(tx: &mut TenantTx, row: &ProfileRow) -> Result<(), StoreError> {
    let (conn, tenant) = tx.parts();
    sqlx::query(
        "INSERT INTO profiles (tenant_id, id, display_name, description, system_prompt,
                               default_model, phi_policy, allowed_plugins)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id, id) DO UPDATE SET
             display_name = EXCLUDED.display_name, description = EXCLUDED.description,
             system_prompt = EXCLUDED.system_prompt, default_model = EXCLUDED.default_model,
             phi_policy = EXCLUDED.phi_policy, allowed_plugins = EXCLUDED.allowed_plugins,
             updated_at = now()",
    )
    .bind(tenant.0)
    .bind(&row.id)
    .bind(&row.display_name)
    .bind(&row.description)
    .bind(&row.system_prompt)
    .bind(&row.default_model)
    .bind(&row.phi_policy)
    .bind(&row.allowed_plugins)
    .execute(conn)
    .await?;
    Ok(())
}

/// One profile of the scoped tenant.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn get(conn: &mut PgConnection, id: &str) -> Result<Option<ProfileRow>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM profiles WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Every profile of the scoped tenant, by id.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<ProfileRow>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM profiles ORDER BY id"))
            .fetch_all(conn)
            .await?,
    )
}

/// How many profiles the scoped tenant stores.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn count(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM profiles")
        .fetch_one(conn)
        .await?)
}

/// Deletes a profile; `false` when there was none.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn delete(conn: &mut PgConnection, id: &str) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM profiles WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}
