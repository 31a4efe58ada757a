//! AuditService: listing, exporting and verifying a tenant's trail, and its retention.

use std::pin::Pin;

use serde_json::json;
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use super::{
    convert::{principal, time_range, timestamp},
    pagination::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, split_page},
};
use crate::{
    audit::{AuditTrail, ExportFormat},
    edge::ApiError,
    pb::v1::{self as pb, audit_service_server::AuditService},
    store::audit::{EventFilter, EventRow},
};

/// The AuditService implementation.
pub struct AuditApi {
    trail: AuditTrail,
}

impl AuditApi {
    /// Serves `trail`.
    pub fn new(trail: AuditTrail) -> Self {
        Self { trail }
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
            object @ serde_json::Value::Object(_) => Some(crate::pb::json::to_struct(object)),
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

#[tonic::async_trait]
impl AuditService for AuditApi {
    type ExportAuditEventsStream =
        Pin<Box<dyn Stream<Item = Result<pb::ExportAuditEventsResponse, Status>> + Send>>;

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
        let rows = self
            .trail
            .list(&principal, &filter, before, i64::from(size) + 1)
            .await?;
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
        let lines = self
            .trail
            .export(&principal, filter, format, details)
            .await?;
        let rows = ReceiverStream::new(lines).map(|line| match line {
            Ok(row) => Ok(pb::ExportAuditEventsResponse { row }),
            Err(err) => Err(ApiError::from(err).into()),
        });
        Ok(Response::new(Box::pin(rows)))
    }

    async fn verify_chain(
        &self,
        request: Request<pb::VerifyChainRequest>,
    ) -> Result<Response<pb::VerifyChainResponse>, Status> {
        let principal = principal(&request)?;
        let since_checkpoint = request.get_ref().since_checkpoint;
        let result = self.trail.verify(&principal, since_checkpoint).await?;
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
        let retention_days = self.trail.retention_days(&principal).await?;
        Ok(Response::new(pb::GetRetentionPolicyResponse {
            retention_days,
        }))
    }

    async fn get_checkpoint_public_key(
        &self,
        _request: Request<pb::GetCheckpointPublicKeyRequest>,
    ) -> Result<Response<pb::GetCheckpointPublicKeyResponse>, Status> {
        let key = self.trail.checkpoint_public_key().clone();
        Ok(Response::new(pb::GetCheckpointPublicKeyResponse {
            key_id: key.key_id,
            public_key: key.public_key,
        }))
    }

    async fn set_retention_policy(
        &self,
        request: Request<pb::SetRetentionPolicyRequest>,
    ) -> Result<Response<pb::SetRetentionPolicyResponse>, Status> {
        let principal = principal(&request)?;
        let days = request.into_inner().retention_days;
        self.trail.set_retention_days(&principal, days).await?;
        Ok(Response::new(pb::SetRetentionPolicyResponse {
            retention_days: days,
        }))
    }
}
