//! Users of a tenant and the roles they hold.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{StoreError, TenantTx};

/// Inserts a user into the scoped transaction's tenant and returns the new id.
///
/// # Errors
/// [`StoreError::Query`] when Postgres refuses (e.g. the email exists in the tenant).
pub async fn insert(
    tx: &mut TenantTx,
    email: &str,
    display_name: &str,
) -> Result<Uuid, StoreError> {
    let (conn, tenant) = tx.parts();
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO users (tenant_id, id, email, display_name) VALUES ($1, $2, $3, $4)")
        .bind(tenant.0)
        .bind(id)
        .bind(email)
        .bind(display_name)
        .execute(conn)
        .await?;
    Ok(id)
}

/// Gives `user` the role `role` in the scoped transaction's tenant (no-op if held).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn grant_role(tx: &mut TenantTx, user: Uuid, role: &str) -> Result<(), StoreError> {
    let (conn, tenant) = tx.parts();
    sqlx::query(
        "INSERT INTO role_assignments (tenant_id, user_id, role) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant.0)
    .bind(user)
    .bind(role)
    .execute(conn)
    .await?;
    Ok(())
}

/// Who signed in at an identity provider: a subject is unique only within its issuer.
#[derive(Debug, Clone, Copy)]
pub struct ExternalIdentity<'a> {
    /// The provider's issuer URL.
    pub issuer: &'a str,
    /// The user's subject at that issuer.
    pub subject: &'a str,
}

/// A user signing in through SSO: found by their (issuer, subject), else (only when the
/// provider vouches for the email) linked by email to a user not yet bound to a subject
/// (e.g. the bootstrap admin), else created. Returns the user's id and whether they are
/// disabled, or `None` when the email belongs to another account that may not be linked.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn upsert_sso(
    tx: &mut TenantTx,
    identity: ExternalIdentity<'_>,
    email: &str,
    display_name: &str,
    email_verified: bool,
) -> Result<Option<(Uuid, bool)>, StoreError> {
    let (conn, tenant) = tx.parts();
    let ExternalIdentity { issuer, subject } = identity;
    let found: Option<(Uuid, bool)> = sqlx::query_as(
        "UPDATE users SET email = $2, display_name = $3, last_login_at = now()
         WHERE external_issuer = $4 AND external_subject = $1
         RETURNING id, disabled",
    )
    .bind(subject)
    .bind(email)
    .bind(display_name)
    .bind(issuer)
    .fetch_optional(&mut *conn)
    .await?;
    if found.is_some() {
        return Ok(found);
    }
    if email_verified {
        let linked: Option<(Uuid, bool)> = sqlx::query_as(
            "UPDATE users SET external_issuer = $4, external_subject = $1, display_name = $3,
                              last_login_at = now()
             WHERE lower(email) = lower($2) AND external_subject IS NULL
             RETURNING id, disabled",
        )
        .bind(subject)
        .bind(email)
        .bind(display_name)
        .bind(issuer)
        .fetch_optional(&mut *conn)
        .await?;
        if linked.is_some() {
            return Ok(linked);
        }
    }
    let created: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO users
             (tenant_id, id, email, display_name, external_issuer, external_subject, last_login_at)
         VALUES ($1, $2, $3, $4, $5, $6, now())
         ON CONFLICT DO NOTHING
         RETURNING id",
    )
    .bind(tenant.0)
    .bind(Uuid::now_v7())
    .bind(email)
    .bind(display_name)
    .bind(issuer)
    .bind(subject)
    .fetch_optional(conn)
    .await?;
    Ok(created.map(|id| (id, false)))
}

/// Drops every user's link to an identity provider in the scoped tenant (the provider's
/// issuer or client changed); returns how many were unlinked.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn unlink_external_identities(conn: &mut PgConnection) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "UPDATE users SET external_issuer = NULL, external_subject = NULL
         WHERE external_subject IS NOT NULL",
    )
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// Roles `user` holds in the scoped tenant.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn roles(conn: &mut PgConnection, user: Uuid) -> Result<Vec<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT role FROM role_assignments WHERE user_id = $1 ORDER BY role")
            .bind(user)
            .fetch_all(conn)
            .await?,
    )
}

/// A user with their roles.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    /// Id.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Subject at the identity provider, once they signed in through SSO.
    pub external_subject: Option<String>,
    /// Disabled users cannot sign in or use their keys.
    pub disabled: bool,
    /// Creation time.
    pub created_at: time::OffsetDateTime,
    /// Last SSO login.
    pub last_login_at: Option<time::OffsetDateTime>,
    /// Roles held.
    pub roles: Vec<String>,
}

const USER_SELECT: &str = "
    SELECT u.id, u.email, u.display_name, u.external_subject, u.disabled, u.created_at,
           u.last_login_at,
           coalesce(array_agg(r.role ORDER BY r.role) FILTER (WHERE r.role IS NOT NULL),
                    '{}') AS roles
    FROM users u
    LEFT JOIN role_assignments r ON r.tenant_id = u.tenant_id AND r.user_id = u.id";

/// The scoped tenant's users after `after`, filtered by a case-insensitive substring of
/// email or name and by role.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn list(
    conn: &mut PgConnection,
    query: Option<&str>,
    role: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<UserRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "{USER_SELECT}
         WHERE ($1::uuid IS NULL OR u.id > $1)
           AND ($2::text IS NULL OR strpos(lower(u.email), lower($2)) > 0
                                 OR strpos(lower(u.display_name), lower($2)) > 0)
           AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM role_assignments x
                                            WHERE x.user_id = u.id AND x.role = $3))
         GROUP BY u.tenant_id, u.id
         ORDER BY u.id
         LIMIT $4"
    ))
    .bind(after)
    .bind(query)
    .bind(role)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// One user of the scoped tenant.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "{USER_SELECT} WHERE u.id = $1 GROUP BY u.tenant_id, u.id"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Disables or enables a user; `false` when there is no such user.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn set_disabled(
    conn: &mut PgConnection,
    id: Uuid,
    disabled: bool,
) -> Result<bool, StoreError> {
    let result = sqlx::query("UPDATE users SET disabled = $2 WHERE id = $1")
        .bind(id)
        .bind(disabled)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Deletes a user with their role grants, keys and sessions; `false` when there was none.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Takes `role` from `user`; `false` when they did not hold it.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn revoke_role(
    conn: &mut PgConnection,
    user: Uuid,
    role: &str,
) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM role_assignments WHERE user_id = $1 AND role = $2")
        .bind(user)
        .bind(role)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Holds the scoped tenant's owner lock until the transaction ends: changes that may take
/// away an active owner take it first, so they run one after another.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn lock_owners(tx: &mut TenantTx) -> Result<(), StoreError> {
    let (conn, tenant) = tx.parts();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('owners:' || $1::text, 0))")
        .bind(tenant.0)
        .execute(conn)
        .await?;
    Ok(())
}

/// How many users of the scoped tenant hold `owner` and are not disabled.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn count_active_owners(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM role_assignments r
         JOIN users u ON u.tenant_id = r.tenant_id AND u.id = r.user_id
         WHERE r.role = 'owner' AND NOT u.disabled",
    )
    .fetch_one(conn)
    .await?)
}
