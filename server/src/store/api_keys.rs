//! API keys of a tenant. Only the SHA-256 of a key's secret is stored.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{Database, StoreError, TenantTx};

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

/// A key to store: everything but its secret's hash, which [`insert`] takes apart.
pub struct NewKeyRow<'a> {
    /// The key's id.
    pub id: Uuid,
    /// The user it acts for.
    pub owner: Uuid,
    /// The key it was made with, if any: it expires no later and is revoked with it.
    pub parent: Option<Uuid>,
    /// Human name.
    pub name: &'a str,
    /// Recognisable start of the key.
    pub prefix: &'a str,
    /// Roles it acts with.
    pub roles: &'a [String],
    /// When it stops working, if ever.
    pub expires_at: Option<time::OffsetDateTime>,
}

/// Stores a freshly issued key in the scoped transaction's tenant; only the SHA-256 of its
/// secret is kept.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn insert(
    tx: &mut TenantTx,
    key: &NewKeyRow<'_>,
    secret_sha256: &[u8; 32],
) -> Result<ApiKeyRecord, StoreError> {
    let (conn, tenant) = tx.parts();
    Ok(sqlx::query_as(&format!(
        "INSERT INTO api_keys
             (tenant_id, id, owner_user_id, name, prefix, secret_sha256, roles, expires_at,
              parent_key_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING {RECORD_COLUMNS}"
    ))
    .bind(tenant.0)
    .bind(key.id)
    .bind(key.owner)
    .bind(key.name)
    .bind(key.prefix)
    .bind(secret_sha256.as_slice())
    .bind(key.roles)
    .bind(key.expires_at)
    .bind(key.parent)
    .fetch_one(conn)
    .await?)
}

/// When key `id` of the scoped tenant stops working, if ever (`None` also when there is
/// no such key).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn expiry(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<time::OffsetDateTime>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT expires_at FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?
            .flatten(),
    )
}

/// Takes `owner`'s key lock until the transaction ends and counts their working keys, so
/// that concurrent creations cannot pass the per-user cap together.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn lock_and_count_active(
    conn: &mut PgConnection,
    owner: Uuid,
) -> Result<i64, StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('api-keys:' || $1::text, 0))")
        .bind(owner)
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM api_keys
         WHERE owner_user_id = $1 AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(owner)
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

/// Revokes key `id` of the scoped tenant (only if `owner` owns it, when given), and every
/// key made through it at any depth. Returns the key, or `None` when there is no such key.
/// Revoking twice keeps the first time.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn revoke(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Option<Uuid>,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let revoked: Option<ApiKeyRecord> = sqlx::query_as(&format!(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
         WHERE id = $1 AND ($2::uuid IS NULL OR owner_user_id = $2)
         RETURNING {RECORD_COLUMNS}"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut *conn)
    .await?;
    if revoked.is_some() {
        sqlx::query(
            "WITH RECURSIVE descendants(id) AS (
                 SELECT id FROM api_keys WHERE parent_key_id = $1
                 UNION
                 SELECT k.id FROM api_keys k JOIN descendants d ON k.parent_key_id = d.id)
             UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
             WHERE id IN (SELECT id FROM descendants)",
        )
        .bind(id)
        .execute(conn)
        .await?;
    }
    Ok(revoked)
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
