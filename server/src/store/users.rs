//! Users of a tenant and the roles they hold.

use sqlx::PgConnection;
use uuid::Uuid;

use super::StoreError;
use crate::tenancy::TenantId;

/// Inserts a user into the scoped transaction's tenant and returns the new id.
///
/// # Errors
/// [`StoreError::Query`] when Postgres refuses (e.g. the email exists in the tenant).
pub async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    email: &str,
    display_name: &str,
) -> Result<Uuid, StoreError> {
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
pub async fn grant_role(
    conn: &mut PgConnection,
    tenant: TenantId,
    user: Uuid,
    role: &str,
) -> Result<(), StoreError> {
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

/// A user signing in through SSO: found by their subject at the provider, else linked by
/// email to a user not yet bound to a subject (e.g. the bootstrap admin), else created.
/// Returns the user's id and whether they are disabled.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn upsert_sso(
    conn: &mut PgConnection,
    tenant: TenantId,
    subject: &str,
    email: &str,
    display_name: &str,
) -> Result<(Uuid, bool), StoreError> {
    let found: Option<(Uuid, bool)> = sqlx::query_as(
        "UPDATE users SET email = $2, display_name = $3, last_login_at = now()
         WHERE external_subject = $1
         RETURNING id, disabled",
    )
    .bind(subject)
    .bind(email)
    .bind(display_name)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(found) = found {
        return Ok(found);
    }
    let linked: Option<(Uuid, bool)> = sqlx::query_as(
        "UPDATE users SET external_subject = $1, display_name = $3, last_login_at = now()
         WHERE lower(email) = lower($2) AND external_subject IS NULL
         RETURNING id, disabled",
    )
    .bind(subject)
    .bind(email)
    .bind(display_name)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(linked) = linked {
        return Ok(linked);
    }
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO users (tenant_id, id, email, display_name, external_subject, last_login_at)
         VALUES ($1, $2, $3, $4, $5, now())",
    )
    .bind(tenant.0)
    .bind(id)
    .bind(email)
    .bind(display_name)
    .bind(subject)
    .execute(conn)
    .await?;
    Ok((id, false))
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
