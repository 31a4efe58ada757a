//! AuditService: listing, exporting and verifying a tenant's trail, and its retention.

use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{
    convert::{json_to_struct, principal, time_range, timestamp},
    error::ApiError,
    pagination::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, split_page},
};
use crate::{
    audit::{
        self, CheckpointSigner, ExportFormat, ExportRows, MAX_RETENTION_DAYS, NewEvent, Verifier,
        VerifyError,
    },
    pb::v1::{self as pb, audit_service_server::AuditService},
    store::{
        self, Database, StoreError,
        audit::{EventFilter, EventRow},
    },
    tenancy::{self, TenantId},
};

/// The AuditService implementation.
pub struct AuditApi {
    db: Database,
    verifier: Verifier,
    min_retention_days: i32,
}

/// Longest one listing query may run.
const LISTING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl AuditApi {
    /// Serves events from `db`, checking chains with `signer`'s checkpoints; no tenant
    /// keeps its trail fewer than `min_retention_days` days.
    pub fn new(db: Database, signer: CheckpointSigner, min_retention_days: i32) -> Self {
        Self {
            verifier: Verifier::new(db.clone(), signer),
            db,
            min_retention_days,
        }
    }
}

impl From<EventRow> for pb::AuditEvent {
    fn from(row: EventRow) -> Self {
        let actor = match row.actor_kind.as_str() {
            "user" => Some(pb::actor::Kind::UserId(row.actor_id)),
            "api_key" => Some(pb::actor::Kind::ApiKeyId(row.actor_id)),
            "system" => Some(pb::actor::Kind::System(row.actor_id)),
            _ => None,
        };
        let outcome = match row.outcome.as_str() {
            "success" => pb::AuditOutcome::Success,
            "denied" => pb::AuditOutcome::Denied,
            _ => pb::AuditOutcome::Failure,
        };
        let details = match row.details.0 {
            object @ serde_json::Value::Object(_) => Some(json_to_struct(object)),
            _ => None,
        };
        Self {
            id: row.id.to_string(),
            seq: row.seq,
            time: Some(timestamp(row.occurred_at)),
            actor: Some(pb::Actor { kind: actor }),
            action: row.action,
            resource_type: row.resource_type,
            resource_id: row.resource_id,
            outcome: outcome.into(),
            status_code: row.status_code,
            request_id: row.request_id,
            client_address: row.client_address,
            user_agent: row.user_agent,
            phi: row.phi,
            details,
            hash: hex::encode(row.hash),
        }
    }
}

fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

/// Validates and converts a filter.
fn event_filter(filter: Option<pb::AuditFilter>) -> Result<EventFilter, ApiError> {
    let Some(filter) = filter else {
        return Ok(EventFilter::default());
    };
    let (from, until) = time_range("filter.time_range", filter.time_range.as_ref())?;
    let (actor_kind, actor_id) = match filter.actor.and_then(|a| a.kind) {
        Some(pb::actor::Kind::UserId(id)) => (Some("user"), Some(id)),
        Some(pb::actor::Kind::ApiKeyId(id)) => (Some("api_key"), Some(id)),
        Some(pb::actor::Kind::System(job)) => (Some("system"), Some(job)),
        None => (None, None),
    };
    let outcome = match pb::AuditOutcome::try_from(filter.outcome) {
        Ok(pb::AuditOutcome::Unspecified) => None,
        Ok(pb::AuditOutcome::Success) => Some("success"),
        Ok(pb::AuditOutcome::Denied) => Some("denied"),
        Ok(pb::AuditOutcome::Failure) => Some("failure"),
        Err(_) => return Err(ApiError::invalid("filter.outcome", "unknown outcome")),
    };
    Ok(EventFilter {
        from,
        until,
        actor_kind: actor_kind.map(str::to_owned),
        actor_id,
        action: non_empty(filter.action),
        outcome: outcome.map(str::to_owned),
        resource_type: non_empty(filter.resource_type),
        resource_id: non_empty(filter.resource_id),
        phi_only: filter.phi_only,
    })
}

/// Rows fetched per page while exporting.
const EXPORT_PAGE: i64 = 500;

/// Export lines buffered ahead of a slow client.
const EXPORT_BUFFER: usize = 64;

/// Reads a page size, defaulting and capping it.
fn page_size(requested: i32) -> Result<u32, ApiError> {
    match u32::try_from(requested) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(size) => Ok(size.min(MAX_PAGE_SIZE)),
        Err(_) => Err(ApiError::invalid("page_size", "must not be negative")),
    }
}

fn export_format(format: i32) -> Result<ExportFormat, ApiError> {
    match pb::ExportFormat::try_from(format) {
        Ok(pb::ExportFormat::Unspecified | pb::ExportFormat::Jsonl) => Ok(ExportFormat::Jsonl),
        Ok(pb::ExportFormat::Csv) => Ok(ExportFormat::Csv),
        Err(_) => Err(ApiError::invalid("format", "unknown export format")),
    }
}

/// Streams the rows of an export until the events run out or the client goes away.
async fn export_rows(
    db: Database,
    tenant: TenantId,
    filter: EventFilter,
    mut rows: ExportRows,
    lines: mpsc::Sender<Result<pb::ExportAuditEventsResponse, Status>>,
) {
    let mut after = 0;
    loop {
        let page = async {
            let mut tx = tenancy::begin(&db, tenant).await?;
            let page = store::audit::list_after(&mut tx, &filter, after, EXPORT_PAGE).await?;
            tx.commit().await.map_err(StoreError::from)?;
            Ok::<_, StoreError>(page)
        };
        let page = match page.await {
            Ok(page) => page,
            Err(err) => {
                let _ = lines.send(Err(ApiError::from(err).into())).await;
                return;
            }
        };
        let done = (page.len() as i64) < EXPORT_PAGE;
        for event in &page {
            after = event.seq;
            for row in rows.lines(event) {
                if lines
                    .send(Ok(pb::ExportAuditEventsResponse { row }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        if done {
            break;
        }
    }
    if let Some(row) = rows.trailer() {
        let _ = lines.send(Ok(pb::ExportAuditEventsResponse { row })).await;
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    type ExportAuditEventsStream = ReceiverStream<Result<pb::ExportAuditEventsResponse, Status>>;

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let principal = principal(&request)?;
        let body = request.into_inner();
        let size = page_size(body.page_size)?;
        let before = if body.page_token.is_empty() {
            None
        } else {
            Some(body.page_token.parse::<i64>().map_err(|_| {
                ApiError::invalid("page_token", "not a token from a previous response")
            })?)
        };
        let filter = event_filter(body.filter)?;
        let mut tx = tenancy::begin(&self.db, principal.tenant)
            .await
            .map_err(ApiError::from)?;
        // A filter that matches little in a long trail must not hold a connection for long.
        store::audit::limit_statement_time(&mut tx, LISTING_TIMEOUT)
            .await
            .map_err(ApiError::from)?;
        let rows = store::audit::list(&mut tx, &filter, before, i64::from(size) + 1)
            .await
            .map_err(ApiError::from)?;
        tx.commit()
            .await
            .map_err(|e| ApiError::from(StoreError::from(e)))?;
        let (rows, next_page_token) = split_page(rows, size, |r| r.seq.to_string());
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: rows.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn export_audit_events(
        &self,
        request: Request<pb::ExportAuditEventsRequest>,
    ) -> Result<Response<Self::ExportAuditEventsStream>, Status> {
        let principal = principal(&request)?;
        let body = request.into_inner();
        let format = export_format(body.format)?;
        let details = json!({
            "format": if format == ExportFormat::Csv { "csv" } else { "jsonl" },
            "filter": format!("{:?}", body.filter.clone().unwrap_or_default()),
        });
        let filter = event_filter(body.filter)?;
        // Recorded before the first row leaves, so no export goes unrecorded.
        audit::record(
            &self.db,
            principal.tenant,
            &NewEvent::by(&principal, "audit.export", "audit_events", "", details),
        )
        .await
        .map_err(ApiError::from)?;
        let (lines, stream) = mpsc::channel(EXPORT_BUFFER);
        tokio::spawn(export_rows(
            self.db.clone(),
            principal.tenant,
            filter,
            ExportRows::new(format),
            lines,
        ));
        Ok(Response::new(ReceiverStream::new(stream)))
    }

    async fn verify_chain(
        &self,
        request: Request<pb::VerifyChainRequest>,
    ) -> Result<Response<pb::VerifyChainResponse>, Status> {
        let principal = principal(&request)?;
        let since_checkpoint = request.get_ref().since_checkpoint;
        let result = self
            .verifier
            .verify(principal.tenant, since_checkpoint)
            .await
            .map_err(|err| match err {
                VerifyError::TenantBusy | VerifyError::ReplicaBusy => ApiError::ResourceExhausted {
                    message: err.to_string(),
                    retry_after: Some(1),
                },
                VerifyError::Store(err) => ApiError::from(err),
            })?;
        let (first_broken_seq, problem) = result.broken.unwrap_or_default();
        Ok(Response::new(pb::VerifyChainResponse {
            intact: problem.is_empty(),
            events_checked: result.events_checked,
            checkpoints_checked: result.checkpoints_checked,
            first_broken_seq,
            problem,
        }))
    }

    async fn get_retention_policy(
        &self,
        request: Request<pb::GetRetentionPolicyRequest>,
    ) -> Result<Response<pb::GetRetentionPolicyResponse>, Status> {
        let principal = principal(&request)?;
        let mut tx = tenancy::begin(&self.db, principal.tenant)
            .await
            .map_err(ApiError::from)?;
        let retention_days = store::audit::retention_days(&mut tx)
            .await
            .map_err(ApiError::from)?;
        tx.commit()
            .await
            .map_err(|e| ApiError::from(StoreError::from(e)))?;
        Ok(Response::new(pb::GetRetentionPolicyResponse {
            retention_days,
        }))
    }

    async fn set_retention_policy(
        &self,
        request: Request<pb::SetRetentionPolicyRequest>,
    ) -> Result<Response<pb::SetRetentionPolicyResponse>, Status> {
        let principal = principal(&request)?;
        let days = request.into_inner().retention_days;
        if !(self.min_retention_days..=MAX_RETENTION_DAYS).contains(&days) {
            return Err(ApiError::invalid(
                "retention_days",
                format!(
                    "must be between {} (the platform's floor, audit.min_retention_days) and \
                     {MAX_RETENTION_DAYS}",
                    self.min_retention_days
                ),
            )
            .into());
        }
        let mut tx = tenancy::begin(&self.db, principal.tenant)
            .await
            .map_err(ApiError::from)?;
        audit::set_retention_days(&mut tx, &principal, days)
            .await
            .map_err(ApiError::from)?;
        tx.commit()
            .await
            .map_err(|e| ApiError::from(StoreError::from(e)))?;
        Ok(Response::new(pb::SetRetentionPolicyResponse {
            retention_days: days,
        }))
    }
}
