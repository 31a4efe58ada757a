//! Tenants' model providers (see `llm`). Credentials are stored sealed.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, types::Json};
use time::OffsetDateTime;

use super::{StoreError, TenantTx};

/// One stored provider.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProviderRow {
    /// Tenant-unique name.
    pub name: String,
    /// `openai`, `azure_openai`, `ollama`, `openai_compatible` or `local`.
    pub kind: String,
    /// Base URL.
    pub endpoint: String,
    /// Sealed API key or token; empty when none.
    pub credential_sealed: Vec<u8>,
    /// Models it serves.
    pub models: Vec<String>,
    /// Azure OpenAI `api-version`.
    pub api_version: String,
    /// Inside the tenant's premises.
    pub on_premises: bool,
    /// Azure OpenAI through Microsoft Entra ID: the app registration; the credential is
    /// its client secret.
    pub entra: Option<Json<EntraSettings>>,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// An app registration in Microsoft Entra ID that the server gets tokens for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntraSettings {
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// Token authority, e.g. `https://login.microsoftonline.com`.
    pub authority: String,
    /// Scope asked for, e.g. `https://cognitiveservices.azure.com/.default`.
    pub scope: String,
}

const COLUMNS: &str =
    "name, kind, endpoint, credential_sealed, models, api_version, on_premises, entra, updated_at";

/// Creates or replaces a provider. An empty `credential_sealed` keeps the stored one only
/// while the kind, endpoint and Entra registration stay the same, so a credential is never
/// sent somewhere new without being entered again.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn upsert(tx: &mut TenantTx, row: &ProviderRow) -> Result<ProviderRow, StoreError> {
    let (conn, tenant) = tx.parts();
    Ok(sqlx::query_as(&format!(
        "INSERT INTO providers
             (tenant_id, name, kind, endpoint, credential_sealed, models, api_version, on_premises,
              entra)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, name) DO UPDATE SET
             kind = EXCLUDED.kind,
             endpoint = EXCLUDED.endpoint,
             credential_sealed = CASE
                 WHEN octet_length(EXCLUDED.credential_sealed) > 0
                     THEN EXCLUDED.credential_sealed
                 WHEN providers.kind = EXCLUDED.kind AND providers.endpoint = EXCLUDED.endpoint
                      AND providers.entra IS NOT DISTINCT FROM EXCLUDED.entra
                     THEN providers.credential_sealed
                 ELSE ''::bytea END,
             models = EXCLUDED.models,
             api_version = EXCLUDED.api_version,
             on_premises = EXCLUDED.on_premises,
             entra = EXCLUDED.entra,
             updated_at = now()
         RETURNING {COLUMNS}"
    ))
    .bind(tenant.0)
    .bind(&row.name)
    .bind(&row.kind)
    .bind(&row.endpoint)
    .bind(&row.credential_sealed)
    .bind(&row.models)
    .bind(&row.api_version)
    .bind(row.on_premises)
    .bind(&row.entra)
    .fetch_one(conn)
    .await?)
}

/// One provider of the scoped tenant.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn get(conn: &mut PgConnection, name: &str) -> Result<Option<ProviderRow>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM providers WHERE name = $1"))
            .bind(name)
            .fetch_optional(conn)
            .await?,
    )
}

/// The scoped tenant's providers by name, after `after`.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn list(
    conn: &mut PgConnection,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ProviderRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM providers WHERE ($1::text IS NULL OR name > $1)
         ORDER BY name LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Deletes a provider; `false` when there was none.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn delete(conn: &mut PgConnection, name: &str) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM providers WHERE name = $1")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}
