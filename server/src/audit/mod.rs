//! The tamper-evident audit trail: appending events to a tenant's hash chain, and checking
//! a chain.
//!
//! `hash = SHA-256(previous hash || canonical encoding)`, where the canonical encoding is
//! the event's fields as JSON with sorted keys (timestamps in RFC 3339 with microseconds,
//! as stored). Editing, deleting, reordering or cutting off events breaks the chain, and
//! [`verify`] reports the first sequence number that does not check out.

pub mod bounded;
mod checkpoint;
mod export;
mod retention;
mod trail;
mod verify;
mod writer;

pub use checkpoint::{CheckpointJob, CheckpointKind, CheckpointSigner, SigningKeyError};
pub use export::{ExportFormat, ExportRows};
pub use retention::{RetentionJob, purge_expired, set_retention_days};
pub use trail::{AuditTrail, CheckpointPublicKey, TrailError};
pub use verify::{Verification, Verifier, VerifyError, verify, verify_since_checkpoint};
pub use writer::{AuditWriter, WriteError};

use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, types::Json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

use crate::{
    caller::CallOrigin,
    caller::Principal,
    store::{self, Database, StoreError, audit::EventRow},
    tenancy::TenantId,
};

/// The chain of events that belong to no tenant (calls refused before authentication).
pub const PLATFORM_CHAIN: TenantId = TenantId(Uuid::nil());

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

impl NewEvent {
    /// A successful security-relevant action taken by `principal` in the current call.
    pub fn by(
        principal: &Principal,
        action: &str,
        resource_type: &str,
        resource_id: impl ToString,
        details: serde_json::Value,
    ) -> Self {
        let actor = match principal.api_key {
            Some(key) => Actor::ApiKey(key),
            None => Actor::User(principal.user),
        };
        Self::from_origin(
            actor,
            &principal.origin,
            action,
            resource_type,
            resource_id,
            details,
        )
    }

    /// A successful action of `actor` in a call from `origin` (e.g. a login, before there
    /// is a principal).
    pub fn from_origin(
        actor: Actor,
        origin: &CallOrigin,
        action: &str,
        resource_type: &str,
        resource_id: impl ToString,
        details: serde_json::Value,
    ) -> Self {
        Self {
            actor,
            action: action.to_owned(),
            resource_type: resource_type.to_owned(),
            resource_id: resource_id.to_string(),
            outcome: Outcome::Success,
            status_code: 0,
            request_id: origin.request_id.clone(),
            client_address: origin.client_address.clone(),
            user_agent: origin.user_agent.clone(),
            phi: false,
            details,
        }
    }

    /// A successful action of one of the server's own jobs.
    pub fn by_system(
        job: &str,
        action: &str,
        resource_type: &str,
        resource_id: impl ToString,
        details: serde_json::Value,
    ) -> Self {
        Self::from_origin(
            Actor::System(job.to_owned()),
            &CallOrigin::default(),
            action,
            resource_type,
            resource_id,
            details,
        )
    }

    /// The same event, marked as touching PHI when `phi`.
    pub fn with_phi(mut self, phi: bool) -> Self {
        self.phi = phi;
        self
    }

    /// The same event with another outcome and status code.
    pub fn with_outcome(mut self, outcome: Outcome, code: tonic::Code) -> Self {
        self.outcome = outcome;
        self.status_code = code as i32;
        self
    }
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
    // An unknown head (seq -1) never matches: the first call only locks and reads it.
    let head = store::audit::append(&mut *conn, &[(tenant, -1, Vec::new())], &[])
        .await?
        .pop()
        .ok_or(StoreError::Inconsistent("no chain head"))?;
    let row = chained_row(tenant, head.1 + 1, &head.2, event);
    let moved = store::audit::append(&mut *conn, &[head], std::slice::from_ref(&row)).await?;
    if !moved.is_empty() {
        return Err(StoreError::Inconsistent("a locked chain head moved"));
    }
    Ok(row.seq)
}

/// The stored form of `event` at position `seq` of `tenant`'s chain, following `previous`.
pub(crate) fn chained_row(
    tenant: TenantId,
    seq: i64,
    previous: &[u8],
    event: &NewEvent,
) -> EventRow {
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
        seq,
        id: Uuid::now_v7(),
        occurred_at,
        actor_kind: actor_kind.to_owned(),
        actor_id: bounded::text(&actor_id, bounded::ID_CHARS),
        action: bounded::text(&event.action, bounded::ACTION_CHARS),
        resource_type: bounded::text(&event.resource_type, bounded::RESOURCE_TYPE_CHARS),
        resource_id: bounded::text(&event.resource_id, bounded::RESOURCE_ID_CHARS),
        outcome: outcome.to_owned(),
        status_code: event.status_code,
        request_id: bounded::text(&event.request_id, bounded::ID_CHARS),
        client_address: bounded::text(&event.client_address, bounded::ID_CHARS),
        user_agent: bounded::text(&event.user_agent, bounded::USER_AGENT_CHARS),
        phi: event.phi,
        details: Json(bounded::details(&event.details)),
        hash: Vec::new(),
    };
    row.hash = chain_hash(previous, &row);
    row
}

/// SHA-256(previous || canonical encoding of `row` without its hash).
pub(crate) fn chain_hash(previous: &[u8], row: &EventRow) -> Vec<u8> {
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
    let mut tx = db.begin_tenant(tenant).await?;
    let seq = append(&mut tx, tenant, event).await?;
    tx.commit().await?;
    Ok(seq)
}
