//! The audit trail's tables: events and each tenant's chain head.

use sqlx::{PgConnection, postgres::PgArguments, types::Json};
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

/// The scoped tenant's chain head, if it has one.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn head(conn: &mut PgConnection) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    Ok(sqlx::query_as("SELECT seq, hash FROM audit_chain_heads")
        .fetch_optional(conn)
        .await?)
}

/// A tenant's chain head: its last (seq, hash).
pub type Head = (TenantId, i64, Vec<u8>);

/// Appends `rows` if every tenant's head is as `expected` (seq -1 never is), moving the
/// heads to their tenant's last row, in one statement; else inserts nothing and returns
/// the heads that differ. `expected` must be in ascending tenant order and `rows` grouped
/// the same way, each tenant's consecutive. Every head named stays locked until the
/// transaction ends (at once when `conn` is not in a transaction). Leaves the connection
/// scoped to one of the tenants.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn append(
    conn: &mut PgConnection,
    expected: &[Head],
    rows: &[EventRow],
) -> Result<Vec<Head>, StoreError> {
    let text = |f: fn(&EventRow) -> &str| rows.iter().map(f).collect::<Vec<_>>();
    let events_of = |tenant: &TenantId| {
        let count = rows.iter().filter(|r| r.tenant_id == tenant.0).count();
        i32::try_from(count).unwrap_or(i32::MAX)
    };
    let differing: Vec<(Uuid, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT * FROM codexcontinue_audit_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                                                  $12, $13, $14, $15, $16, $17, $18, $19, $20,
                                                  $21)",
    )
    .bind(expected.iter().map(|(t, ..)| t.0).collect::<Vec<_>>())
    .bind(expected.iter().map(|(_, seq, _)| *seq).collect::<Vec<_>>())
    .bind(
        expected
            .iter()
            .map(|(.., hash)| hash.as_slice())
            .collect::<Vec<_>>(),
    )
    .bind(
        expected
            .iter()
            .map(|(t, ..)| events_of(t))
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.tenant_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.occurred_at).collect::<Vec<_>>())
    .bind(text(|r| &r.actor_kind))
    .bind(text(|r| &r.actor_id))
    .bind(text(|r| &r.action))
    .bind(text(|r| &r.resource_type))
    .bind(text(|r| &r.resource_id))
    .bind(text(|r| &r.outcome))
    .bind(rows.iter().map(|r| r.status_code).collect::<Vec<_>>())
    .bind(text(|r| &r.request_id))
    .bind(text(|r| &r.client_address))
    .bind(text(|r| &r.user_agent))
    .bind(rows.iter().map(|r| r.phi).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| &r.details).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.hash.as_slice()).collect::<Vec<_>>())
    .fetch_all(conn)
    .await?;
    Ok(differing
        .into_iter()
        .map(|(tenant, seq, hash)| (TenantId(tenant), seq, hash))
        .collect())
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

/// The conditions of [`EventFilter`], over parameters $2..$10.
const FILTER: &str = "($2::timestamptz IS NULL OR occurred_at >= $2)
    AND ($3::timestamptz IS NULL OR occurred_at < $3)
    AND ($4::text IS NULL OR actor_kind = $4)
    AND ($5::text IS NULL OR actor_id = $5)
    AND ($6::text IS NULL OR action = $6)
    AND ($7::text IS NULL OR outcome = $7)
    AND ($8::text IS NULL OR resource_type = $8)
    AND ($9::text IS NULL OR resource_id = $9)
    AND (NOT $10 OR phi)";

type EventQuery<'q> = sqlx::query::QueryAs<'q, sqlx::Postgres, EventRow, PgArguments>;

/// Binds `filter` to parameters $2..$10 of [`FILTER`].
fn bind_filter<'q>(query: EventQuery<'q>, filter: &'q EventFilter) -> EventQuery<'q> {
    query
        .bind(filter.from)
        .bind(filter.until)
        .bind(&filter.actor_kind)
        .bind(&filter.actor_id)
        .bind(&filter.action)
        .bind(&filter.outcome)
        .bind(&filter.resource_type)
        .bind(&filter.resource_id)
        .bind(filter.phi_only)
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
    let sql = format!(
        "{EVENT_SELECT} WHERE ($1::bigint IS NULL OR seq < $1) AND {FILTER}
         ORDER BY seq DESC LIMIT $11"
    );
    let query = sqlx::query_as(&sql).bind(before);
    Ok(bind_filter(query, filter)
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// The scoped tenant's events matching `filter` with seq above `after`, oldest first (for
/// export).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn list_after(
    conn: &mut PgConnection,
    filter: &EventFilter,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    let sql = format!("{EVENT_SELECT} WHERE seq > $1 AND {FILTER} ORDER BY seq LIMIT $11");
    let query = sqlx::query_as(&sql).bind(after);
    Ok(bind_filter(query, filter)
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// The lowest seq still stored for the scoped tenant.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn first_seq(conn: &mut PgConnection) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar("SELECT min(seq) FROM audit_events")
        .fetch_one(conn)
        .await?)
}

/// The newest event of the scoped tenant that, with every event before it, is older than
/// its retention (the tenant's own, or the platform's floor when that is longer): (seq,
/// hash).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn last_expired(conn: &mut PgConnection) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    Ok(sqlx::query_as(
        "WITH cutoff AS (
             SELECT now() - make_interval(days => greatest(
                 (SELECT coalesce(max(audit_retention_days), 2192) FROM tenants
                  WHERE id = codexcontinue_current_tenant()),
                 codexcontinue_audit_retention_floor())) AS at)
         SELECT seq, hash FROM audit_events
         WHERE seq < coalesce((SELECT min(seq) FROM audit_events, cutoff
                               WHERE occurred_at >= cutoff.at), 9223372036854775807)
         ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?)
}

/// Deletes the scoped tenant's events through `seq` by the retention path; returns how many.
///
/// # Errors
/// [`StoreError::Query`] when Postgres refuses (no retention checkpoint there, or the
/// events are still within retention).
pub async fn purge_through(conn: &mut PgConnection, seq: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT codexcontinue_audit_purge($1)")
        .bind(seq)
        .fetch_one(conn)
        .await?)
}

/// How many days the scoped tenant keeps its events.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn retention_days(conn: &mut PgConnection) -> Result<i32, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT audit_retention_days FROM tenants WHERE id = codexcontinue_current_tenant()",
    )
    .fetch_one(conn)
    .await?)
}

/// Changes how many days the scoped tenant keeps its events.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn set_retention_days(conn: &mut PgConnection, days: i32) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE tenants SET audit_retention_days = $1, updated_at = now()
         WHERE id = codexcontinue_current_tenant()",
    )
    .bind(days)
    .execute(conn)
    .await?;
    Ok(())
}

/// A signed point of a tenant's chain.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CheckpointRow {
    /// Tenant of the chain.
    pub tenant_id: Uuid,
    /// Position signed.
    pub seq: i64,
    /// Hash of the event at `seq` (zero for seq 0).
    pub hash: Vec<u8>,
    /// `periodic` or `retention`.
    pub kind: String,
    /// When it was signed (microseconds).
    pub signed_at: time::OffsetDateTime,
    /// Which signing key (first bytes of the public key's SHA-256, hex).
    pub key_id: String,
    /// Ed25519 signature.
    pub signature: Vec<u8>,
}

/// Stores a checkpoint; `false` when the same (seq, kind) was signed already.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn insert_checkpoint(
    conn: &mut PgConnection,
    row: &CheckpointRow,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO audit_checkpoints (tenant_id, seq, hash, kind, signed_at, key_id, signature)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(row.tenant_id)
    .bind(row.seq)
    .bind(&row.hash)
    .bind(&row.kind)
    .bind(row.signed_at)
    .bind(&row.key_id)
    .bind(&row.signature)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The scoped tenant's checkpoints, by seq.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn checkpoints(conn: &mut PgConnection) -> Result<Vec<CheckpointRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, seq, hash, kind, signed_at, key_id, signature
         FROM audit_checkpoints ORDER BY seq, kind",
    )
    .fetch_all(conn)
    .await?)
}

/// The highest seq signed for the scoped tenant.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn last_checkpoint_seq(conn: &mut PgConnection) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar("SELECT max(seq) FROM audit_checkpoints")
        .fetch_one(conn)
        .await?)
}

/// Ends any statement of the transaction that runs longer than `limit`.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn limit_statement_time(
    conn: &mut PgConnection,
    limit: std::time::Duration,
) -> Result<(), StoreError> {
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(format!("{}ms", limit.as_millis()))
        .execute(conn)
        .await?;
    Ok(())
}
