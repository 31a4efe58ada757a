//! API keys of a tenant. Only the SHA-256 of a key's secret is stored.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{Database, StoreError};
use crate::{auth::api_key::IssuedApiKey, tenancy::TenantId};

/// An API key as stored, without any secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRecord {
    /// The key's id.
    pub id: Uuid,
    /// The user it acts for.
    pub owner_user_id: Uuid,
    /// Human name.
    pub name: String,
    /// Recognisable start of the key.
    pub prefix: String,
    /// Roles it acts with.
    pub roles: Vec<String>,
    /// When it was made.
    pub created_at: time::OffsetDateTime,
    /// When it stops working, if ever.
    pub expires_at: Option<time::OffsetDateTime>,
    /// When it was last used.
    pub last_used_at: Option<time::OffsetDateTime>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<time::OffsetDateTime>,
}

const RECORD_COLUMNS: &str =
    "id, owner_user_id, name, prefix, roles, created_at, expires_at, last_used_at, revoked_at";

/// Stores a freshly issued key in the scoped transaction's tenant.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    owner: Uuid,
    name: &str,
    roles: &[String],
    expires_at: Option<time::OffsetDateTime>,
    key: &IssuedApiKey,
) -> Result<ApiKeyRecord, StoreError> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO api_keys
             (tenant_id, id, owner_user_id, name, prefix, secret_sha256, roles, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING {RECORD_COLUMNS}"
    ))
    .bind(tenant.0)
    .bind(key.id)
    .bind(owner)
    .bind(name)
    .bind(&key.prefix)
    .bind(key.secret_sha256.as_slice())
    .bind(roles)
    .bind(expires_at)
    .fetch_one(conn)
    .await?)
}

/// Keys of the scoped tenant in id order after `after`, at most `limit`; only `owner`'s
/// when given; revoked and expired ones only with `include_inactive`.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn list(
    conn: &mut PgConnection,
    owner: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
    include_inactive: bool,
) -> Result<Vec<ApiKeyRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {RECORD_COLUMNS} FROM api_keys
         WHERE ($1::uuid IS NULL OR owner_user_id = $1)
           AND ($2::uuid IS NULL OR id > $2)
           AND ($3 OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())))
         ORDER BY id
         LIMIT $4"
    ))
    .bind(owner)
    .bind(after)
    .bind(include_inactive)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Revokes key `id` of the scoped tenant (only if `owner` owns it, when given). Returns the
/// key, or `None` when there is no such key. Revoking twice keeps the first time.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn revoke(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Option<Uuid>,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
         WHERE id = $1 AND ($2::uuid IS NULL OR owner_user_id = $2)
         RETURNING {RECORD_COLUMNS}"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(conn)
    .await?)
}

/// What authentication needs to know about a presented key, found across tenants.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyCredential {
    /// Tenant of the key.
    pub tenant_id: Uuid,
    /// That tenant's slug.
    pub tenant_slug: String,
    /// `active`, `suspended` or `deleted`.
    pub tenant_state: String,
    /// The key's id.
    pub key_id: Uuid,
    /// The key's owner.
    pub user_id: Uuid,
    /// The owner's email.
    pub user_email: String,
    /// Whether the owner is disabled.
    pub user_disabled: bool,
    /// Roles the key acts with.
    pub roles: Vec<String>,
    /// When the key stops working, if ever.
    pub expires_at: Option<time::OffsetDateTime>,
    /// When the key was revoked, if it was.
    pub revoked_at: Option<time::OffsetDateTime>,
}

/// The key whose secret hashes to `secret_sha256`, in any tenant.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn find_by_digest(
    db: &Database,
    secret_sha256: &[u8; 32],
) -> Result<Option<KeyCredential>, StoreError> {
    Ok(
        sqlx::query_as("SELECT * FROM codexcontinue_authenticate_api_key($1)")
            .bind(secret_sha256.as_slice())
            .fetch_optional(db.pool())
            .await?,
    )
}
