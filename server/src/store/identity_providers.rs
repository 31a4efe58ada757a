//! Each tenant's OpenID Connect provider settings.

use std::collections::BTreeMap;

use sqlx::{PgConnection, types::Json};

use super::{StoreError, TenantTx};

/// A tenant's identity provider.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdentityProviderRecord {
    /// Issuer URL (discovery at `<issuer>/.well-known/openid-configuration`).
    pub issuer_url: String,
    /// Client id registered at the provider.
    pub client_id: String,
    /// Client secret sealed with the tenant's data key (empty: none); never returned over
    /// the API.
    pub client_secret_sealed: Vec<u8>,
    /// Allowed email domains; `*` allows any, empty none.
    pub allowed_email_domains: Vec<String>,
    /// ID-token claim listing the user's groups.
    pub groups_claim: String,
    /// Group → roles granted at login.
    pub group_roles: Json<BTreeMap<String, Vec<String>>>,
    /// Scopes requested besides `openid`.
    pub scopes: Vec<String>,
    /// Last change.
    pub updated_at: time::OffsetDateTime,
}

const COLUMNS: &str = "issuer_url, client_id, client_secret_sealed, allowed_email_domains, \
                       groups_claim, group_roles, scopes, updated_at";

/// The scoped tenant's provider, if it has one.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn get(conn: &mut PgConnection) -> Result<Option<IdentityProviderRecord>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM identity_providers"))
            .fetch_optional(conn)
            .await?,
    )
}

/// Creates or replaces the scoped tenant's provider, sealed secret included (empty: none).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn upsert(
    tx: &mut TenantTx,
    provider: &IdentityProviderRecord,
) -> Result<IdentityProviderRecord, StoreError> {
    let (conn, tenant) = tx.parts();
    Ok(sqlx::query_as(&format!(
        "INSERT INTO identity_providers
             (tenant_id, issuer_url, client_id, client_secret_sealed, allowed_email_domains,
              groups_claim, group_roles, scopes, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
         ON CONFLICT (tenant_id) DO UPDATE SET
             issuer_url = excluded.issuer_url,
             client_id = excluded.client_id,
             client_secret_sealed = excluded.client_secret_sealed,
             allowed_email_domains = excluded.allowed_email_domains,
             groups_claim = excluded.groups_claim,
             group_roles = excluded.group_roles,
             scopes = excluded.scopes,
             updated_at = now()
         RETURNING {COLUMNS}"
    ))
    .bind(tenant.0)
    .bind(&provider.issuer_url)
    .bind(&provider.client_id)
    .bind(&provider.client_secret_sealed)
    .bind(&provider.allowed_email_domains)
    .bind(&provider.groups_claim)
    .bind(&provider.group_roles)
    .bind(&provider.scopes)
    .fetch_one(conn)
    .await?)
}
