//! The tamper-evident audit trail: appending events to a tenant's hash chain, and checking
//! a chain.
//!
//! `hash = SHA-256(previous hash || canonical encoding)`, where the canonical encoding is
//! the event's fields as JSON with sorted keys (timestamps in RFC 3339 with microseconds,
//! as stored). Editing, deleting, reordering or cutting off events breaks the chain, and
//! [`verify`] reports the first sequence number that does not check out.

pub mod layer;

use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, types::Json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

use crate::{
    store::{self, Database, StoreError, audit::EventRow},
    tenancy::{self, TenantId},
};

/// The chain of events that belong to no tenant (calls refused before authentication).
pub const PLATFORM_CHAIN: TenantId = TenantId(Uuid::nil());

/// Events checked per page while verifying.
const VERIFY_PAGE: i64 = 1000;

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A user (through a session).
    User(Uuid),
    /// An API key.
    ApiKey(Uuid),
    /// A job of the server.
    System(String),
    /// Nobody authenticated.
    Anonymous,
}

/// How the action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Success,
    /// Refused for lack of credentials or permission.
    Denied,
    /// Attempted and failed.
    Failure,
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Who acted.
    pub actor: Actor,
    /// RPC path or action name.
    pub action: String,
    /// Kind of resource acted on.
    pub resource_type: String,
    /// Id of the resource acted on.
    pub resource_id: String,
    /// How it ended.
    pub outcome: Outcome,
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
    /// Small structured details; never content, secrets or tokens.
    pub details: serde_json::Value,
}

/// What checking a chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Events checked.
    pub events_checked: i64,
    /// The first sequence number that does not check out, and why.
    pub broken: Option<(i64, String)>,
}

/// Appends `event` to `tenant`'s chain inside the caller's tenant-scoped transaction, so
/// it commits (or not) with the change it records. Returns its sequence number.
///
/// # Errors
/// [`StoreError`] when it cannot be written; the caller must then fail (fail closed).
pub async fn append(
    conn: &mut PgConnection,
    tenant: TenantId,
    event: &NewEvent,
) -> Result<i64, StoreError> {
    store::audit::ensure_head(&mut *conn, tenant).await?;
    let (last_seq, last_hash) = store::audit::lock_head(&mut *conn).await?;
    let now = OffsetDateTime::now_utc();
    let occurred_at = now
        .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now);
    let (actor_kind, actor_id) = match &event.actor {
        Actor::User(id) => ("user", id.to_string()),
        Actor::ApiKey(id) => ("api_key", id.to_string()),
        Actor::System(job) => ("system", job.clone()),
        Actor::Anonymous => ("anonymous", String::new()),
    };
    let outcome = match event.outcome {
        Outcome::Success => "success",
        Outcome::Denied => "denied",
        Outcome::Failure => "failure",
    };
    let mut row = EventRow {
        tenant_id: tenant.0,
        seq: last_seq + 1,
        id: Uuid::now_v7(),
        occurred_at,
        actor_kind: actor_kind.to_owned(),
        actor_id,
        action: event.action.clone(),
        resource_type: event.resource_type.clone(),
        resource_id: event.resource_id.clone(),
        outcome: outcome.to_owned(),
        status_code: event.status_code,
        request_id: event.request_id.clone(),
        client_address: event.client_address.clone(),
        user_agent: event.user_agent.clone(),
        phi: event.phi,
        details: Json(event.details.clone()),
        hash: Vec::new(),
    };
    row.hash = chain_hash(&last_hash, &row);
    store::audit::insert(conn, &row).await?;
    Ok(row.seq)
}

/// Recomputes `tenant`'s chain and compares it with the stored hashes and head.
///
/// # Errors
/// [`StoreError`] when Postgres fails.
pub async fn verify(db: &Database, tenant: TenantId) -> Result<Verification, StoreError> {
    let mut tx = tenancy::begin(db, tenant).await?;
    let mut expected = 1;
    let mut previous = vec![0u8; 32];
    loop {
        let rows = store::audit::page(&mut tx, expected - 1, VERIFY_PAGE).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            if row.seq != expected {
                return Ok(broken(expected - 1, expected, "missing event"));
            }
            if chain_hash(&previous, row) != row.hash {
                return Ok(broken(expected - 1, expected, "hash mismatch"));
            }
            previous.clone_from(&row.hash);
            expected += 1;
        }
    }
    let checked = expected - 1;
    let head = store::audit::head(&mut tx)
        .await?
        .unwrap_or((0, vec![0u8; 32]));
    tx.commit().await.map_err(StoreError::from)?;
    if head != (checked, previous) {
        return Ok(broken(
            checked,
            checked + 1,
            "chain head does not match the last event (events cut off?)",
        ));
    }
    Ok(Verification {
        events_checked: checked,
        broken: None,
    })
}

fn broken(checked: i64, seq: i64, problem: &str) -> Verification {
    Verification {
        events_checked: checked,
        broken: Some((seq, problem.to_owned())),
    }
}

/// SHA-256(previous || canonical encoding of `row` without its hash).
fn chain_hash(previous: &[u8], row: &EventRow) -> Vec<u8> {
    let canonical = json!({
        "tenant_id": row.tenant_id,
        "seq": row.seq,
        "id": row.id,
        "occurred_at": row.occurred_at.format(&Rfc3339).unwrap_or_default(),
        "actor_kind": row.actor_kind,
        "actor_id": row.actor_id,
        "action": row.action,
        "resource_type": row.resource_type,
        "resource_id": row.resource_id,
        "outcome": row.outcome,
        "status_code": row.status_code,
        "request_id": row.request_id,
        "client_address": row.client_address,
        "user_agent": row.user_agent,
        "phi": row.phi,
        "details": row.details.0,
    });
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(canonical.to_string().as_bytes());
    hasher.finalize().to_vec()
}

/// Appends `event` to `tenant`'s chain in a transaction of its own (for events that
/// record a read or a refusal rather than a change).
///
/// # Errors
/// [`StoreError`] when it cannot be written; the caller must then fail (fail closed).
pub async fn record(db: &Database, tenant: TenantId, event: &NewEvent) -> Result<i64, StoreError> {
    let mut tx = tenancy::begin(db, tenant).await?;
    let seq = append(&mut tx, tenant, event).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(seq)
}
