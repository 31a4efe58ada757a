//! The record of login sessions (Redis holds the live copy used to authenticate).

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{StoreError, TenantTx};

/// A session as recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRecord {
    /// Its id.
    pub id: Uuid,
    /// Its user.
    pub user_id: Uuid,
    /// SHA-256 of its token (to find the live copy in Redis).
    pub token_sha256: Vec<u8>,
    /// When it began.
    pub created_at: OffsetDateTime,
    /// Sliding expiry as last recorded.
    pub expires_at: OffsetDateTime,
    /// It cannot be extended past this.
    pub absolute_expires_at: OffsetDateTime,
    /// Client that logged in.
    pub user_agent: String,
    /// Address it logged in from.
    pub client_address: String,
}

/// A session to record.
pub struct NewSession<'a> {
    /// Its id.
    pub id: Uuid,
    /// Its user.
    pub user_id: Uuid,
    /// SHA-256 of its token.
    pub token_sha256: &'a [u8; 32],
    /// Roles it acts with.
    pub roles: &'a [String],
    /// Sliding expiry.
    pub expires_at: OffsetDateTime,
    /// Absolute expiry.
    pub absolute_expires_at: OffsetDateTime,
    /// Client that logged in.
    pub user_agent: &'a str,
    /// Address it logged in from.
    pub client_address: &'a str,
}

const COLUMNS: &str = "id, user_id, token_sha256, created_at, expires_at, absolute_expires_at, \
                       user_agent, client_address";

/// Records a new session in the scoped tenant.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn insert(tx: &mut TenantTx, session: &NewSession<'_>) -> Result<(), StoreError> {
    let (conn, tenant) = tx.parts();
    sqlx::query(
        "INSERT INTO sessions (tenant_id, id, user_id, token_sha256, roles, expires_at,
                               absolute_expires_at, user_agent, client_address)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tenant.0)
    .bind(session.id)
    .bind(session.user_id)
    .bind(session.token_sha256.as_slice())
    .bind(session.roles)
    .bind(session.expires_at)
    .bind(session.absolute_expires_at)
    .bind(session.user_agent)
    .bind(session.client_address)
    .execute(conn)
    .await?;
    Ok(())
}

/// Live (not revoked, not expired) sessions of `user`, oldest first, after `after`.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn list_live(
    conn: &mut PgConnection,
    user: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<SessionRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sessions
         WHERE user_id = $1 AND revoked_at IS NULL AND absolute_expires_at > now()
           AND ($2::uuid IS NULL OR id > $2)
         ORDER BY id LIMIT $3"
    ))
    .bind(user)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Records the new sliding expiry of a refreshed session.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn touch(
    conn: &mut PgConnection,
    id: Uuid,
    expires_at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET expires_at = $2 WHERE id = $1")
        .bind(id)
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks sessions revoked: one (`session`), or all of `user`. Returns the token hashes of
/// the sessions revoked now, to delete their live copies.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn revoke(
    conn: &mut PgConnection,
    user: Uuid,
    session: Option<Uuid>,
) -> Result<Vec<Vec<u8>>, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = now()
         WHERE user_id = $1 AND ($2::uuid IS NULL OR id = $2) AND revoked_at IS NULL
         RETURNING token_sha256",
    )
    .bind(user)
    .bind(session)
    .fetch_all(conn)
    .await?)
}

/// Token hashes of the live sessions of `user`.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn live_hashes(conn: &mut PgConnection, user: Uuid) -> Result<Vec<Vec<u8>>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT token_sha256 FROM sessions
         WHERE user_id = $1 AND revoked_at IS NULL AND absolute_expires_at > now()",
    )
    .bind(user)
    .fetch_all(conn)
    .await?)
}

/// Records the roles a user's live sessions now act with.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn set_roles(
    conn: &mut PgConnection,
    user: Uuid,
    roles: &[String],
) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET roles = $2 WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user)
        .bind(roles)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends every live session of the scoped tenant; returns their token hashes.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn revoke_all(conn: &mut PgConnection) -> Result<Vec<Vec<u8>>, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = now() WHERE revoked_at IS NULL RETURNING token_sha256",
    )
    .fetch_all(conn)
    .await?)
}
