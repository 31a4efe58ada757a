//! The tenants table, reached only through the platform functions the migration defines
//! (creating a tenant and finding one by slug are the two operations that cannot run inside
//! a tenant scope).

use sqlx::PgConnection;
use uuid::Uuid;

use super::{Database, StoreError};
use crate::tenancy::{TenantId, TenantSlug};

/// Inserts a tenant inside the caller's transaction. Returns `None` when the slug is taken.
///
/// # Errors
/// [`StoreError::Query`] for any other database failure.
pub async fn create(
    conn: &mut PgConnection,
    slug: &TenantSlug,
    display_name: &str,
) -> Result<Option<TenantId>, StoreError> {
    let id = Uuid::now_v7();
    let created = sqlx::query("SELECT codexcontinue_create_tenant($1, $2, $3)")
        .bind(id)
        .bind(slug.as_str())
        .bind(display_name)
        .execute(conn)
        .await;
    match created {
        Ok(_) => Ok(Some(TenantId(id))),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The id of the tenant with `slug`, if there is one.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn find_by_slug(
    db: &Database,
    slug: &TenantSlug,
) -> Result<Option<TenantId>, StoreError> {
    let id: Option<Uuid> = sqlx::query_scalar("SELECT codexcontinue_tenant_id_by_slug($1)")
        .bind(slug.as_str())
        .fetch_one(db.pool())
        .await?;
    Ok(id.map(TenantId))
}

/// The slug of the scoped transaction's tenant.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails or no tenant is in scope.
pub async fn slug(conn: &mut PgConnection) -> Result<String, StoreError> {
    Ok(sqlx::query_scalar("SELECT slug FROM tenants")
        .fetch_one(conn)
        .await?)
}
