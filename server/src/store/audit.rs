//! The audit trail's tables: events and each tenant's chain head.

use sqlx::{PgConnection, types::Json};
use uuid::Uuid;

use super::{Database, StoreError};
use crate::tenancy::TenantId;

/// One stored audit event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    /// Tenant whose chain it belongs to (nil: the platform chain).
    pub tenant_id: Uuid,
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Event id.
    pub id: Uuid,
    /// When it happened (microseconds).
    pub occurred_at: time::OffsetDateTime,
    /// `user`, `api_key`, `system` or `anonymous`.
    pub actor_kind: String,
    /// The actor's id (user or key id, job name).
    pub actor_id: String,
    /// RPC path or action name.
    pub action: String,
    /// Kind of resource acted on.
    pub resource_type: String,
    /// Id of the resource acted on.
    pub resource_id: String,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    /// gRPC status code.
    pub status_code: i32,
    /// Request id of the call.
    pub request_id: String,
    /// Client address.
    pub client_address: String,
    /// Client software.
    pub user_agent: String,
    /// Whether PHI was involved.
    pub phi: bool,
    /// Small structured details.
    pub details: Json<serde_json::Value>,
    /// SHA-256(previous hash || canonical encoding).
    pub hash: Vec<u8>,
}

/// Every column of an event, as [`EventRow`] reads them.
const EVENT_SELECT: &str = "SELECT tenant_id, seq, id, occurred_at, actor_kind, actor_id, action,
        resource_type, resource_id, outcome, status_code, request_id, client_address,
        user_agent, phi, details, hash
    FROM audit_events";

/// Makes sure the scoped tenant has a chain head (seq 0, zero hash).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn ensure_head(conn: &mut PgConnection, tenant: TenantId) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_chain_heads (tenant_id, seq, hash) VALUES ($1, 0, $2)
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant.0)
    .bind([0u8; 32].as_slice())
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the scoped tenant's chain head until the transaction ends; returns (seq, hash).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails or there is no head.
pub async fn lock_head(conn: &mut PgConnection) -> Result<(i64, Vec<u8>), StoreError> {
    Ok(
        sqlx::query_as("SELECT seq, hash FROM audit_chain_heads FOR UPDATE")
            .fetch_one(conn)
            .await?,
    )
}

/// The scoped tenant's chain head, if it has one.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn head(conn: &mut PgConnection) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    Ok(sqlx::query_as("SELECT seq, hash FROM audit_chain_heads")
        .fetch_optional(conn)
        .await?)
}

/// Appends an event and moves the head to it (the head must be locked).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn insert(conn: &mut PgConnection, row: &EventRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events
             (tenant_id, seq, id, occurred_at, actor_kind, actor_id, action, resource_type,
              resource_id, outcome, status_code, request_id, client_address, user_agent, phi,
              details, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(row.tenant_id)
    .bind(row.seq)
    .bind(row.id)
    .bind(row.occurred_at)
    .bind(&row.actor_kind)
    .bind(&row.actor_id)
    .bind(&row.action)
    .bind(&row.resource_type)
    .bind(&row.resource_id)
    .bind(&row.outcome)
    .bind(row.status_code)
    .bind(&row.request_id)
    .bind(&row.client_address)
    .bind(&row.user_agent)
    .bind(row.phi)
    .bind(&row.details)
    .bind(&row.hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_chain_heads SET seq = $1, hash = $2")
        .bind(row.seq)
        .bind(&row.hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// Up to `limit` events of the scoped tenant with seq above `after`, in order.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn page(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "{EVENT_SELECT} WHERE seq > $1 ORDER BY seq LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Every tenant with an audit chain (platform path).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn audited_tenants(db: &Database) -> Result<Vec<TenantId>, StoreError> {
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT * FROM codexcontinue_audited_tenants()")
        .fetch_all(db.pool())
        .await?;
    Ok(ids.into_iter().map(TenantId).collect())
}

/// Which events to list.
#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    /// Events at or after this time.
    pub from: Option<time::OffsetDateTime>,
    /// Events before this time.
    pub until: Option<time::OffsetDateTime>,
    /// `user`, `api_key`, `system` or `anonymous`.
    pub actor_kind: Option<String>,
    /// The actor's id.
    pub actor_id: Option<String>,
    /// Exact action.
    pub action: Option<String>,
    /// `success`, `denied` or `failure`.
    pub outcome: Option<String>,
    /// Kind of resource.
    pub resource_type: Option<String>,
    /// Resource id.
    pub resource_id: Option<String>,
    /// Only events involving PHI.
    pub phi_only: bool,
}

/// The scoped tenant's events matching `filter`, newest first, below `before` (a seq).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn list(
    conn: &mut PgConnection,
    filter: &EventFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "{EVENT_SELECT}
         WHERE ($1::bigint IS NULL OR seq < $1)
           AND ($2::timestamptz IS NULL OR occurred_at >= $2)
           AND ($3::timestamptz IS NULL OR occurred_at < $3)
           AND ($4::text IS NULL OR actor_kind = $4)
           AND ($5::text IS NULL OR actor_id = $5)
           AND ($6::text IS NULL OR action = $6)
           AND ($7::text IS NULL OR outcome = $7)
           AND ($8::text IS NULL OR resource_type = $8)
           AND ($9::text IS NULL OR resource_id = $9)
           AND (NOT $10 OR phi)
         ORDER BY seq DESC
         LIMIT $11"
    ))
    .bind(before)
    .bind(filter.from)
    .bind(filter.until)
    .bind(&filter.actor_kind)
    .bind(&filter.actor_id)
    .bind(&filter.action)
    .bind(&filter.outcome)
    .bind(&filter.resource_type)
    .bind(&filter.resource_id)
    .bind(filter.phi_only)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
