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
