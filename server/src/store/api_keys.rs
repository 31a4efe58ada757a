//! API keys of a tenant. Only the SHA-256 of a key's secret is stored.

use sqlx::PgConnection;
use uuid::Uuid;

use super::StoreError;
use crate::{auth::api_key::IssuedApiKey, tenancy::TenantId};

/// Stores a freshly issued key in the scoped transaction's tenant.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    owner: Uuid,
    name: &str,
    roles: &[&str],
    key: &IssuedApiKey,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_keys (tenant_id, id, owner_user_id, name, prefix, secret_sha256, roles)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant.0)
    .bind(key.id)
    .bind(owner)
    .bind(name)
    .bind(&key.prefix)
    .bind(key.secret_sha256.as_slice())
    .bind(roles)
    .execute(conn)
    .await?;
    Ok(())
}
