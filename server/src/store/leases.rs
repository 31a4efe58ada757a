//! Leases on repeating passes (see `periodic`): which replica runs a job, until when.

use std::time::Duration;

use uuid::Uuid;

use super::{Database, StoreError};

/// Claims `job` for `holder` for `lease` (platform path): granted when nobody holds it,
/// its lease has lapsed, or `holder` holds it already (a renewal).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn claim(
    db: &Database,
    job: &str,
    holder: Uuid,
    lease: Duration,
) -> Result<bool, StoreError> {
    let mut conn = db.platform_connection().await?;
    let claimed: Option<(Uuid,)> = sqlx::query_as(
        "INSERT INTO periodic_leases AS l (job, holder, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))
         ON CONFLICT (job) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
         WHERE l.expires_at <= now() OR l.holder = EXCLUDED.holder
         RETURNING holder",
    )
    .bind(job)
    .bind(holder)
    .bind(lease.as_secs_f64())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(claimed.is_some())
}
