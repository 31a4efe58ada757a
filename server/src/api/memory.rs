//! MemoryService: working memory (a conversation's JSON state with a time to live) is
//! served; long-term and episodic memory answer `UNIMPLEMENTED` until they are built.

use std::time::Duration;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{
    convert::{
        audit_resource, conversation_id, json_to_struct, principal, struct_to_json, timestamp,
    },
    error::ApiError,
    pending::pending_status,
};
use crate::{
    memory::{MemoryError, WorkingMemory},
    pb::v1::{self as pb, memory_service_server::MemoryService},
};

/// The MemoryService implementation.
pub struct MemoryApi {
    working: WorkingMemory,
}

impl MemoryApi {
    /// Serves working memory from `working`.
    pub fn new(working: WorkingMemory) -> Self {
        Self { working }
    }
}

impl From<MemoryError> for ApiError {
    fn from(err: MemoryError) -> Self {
        match err {
            MemoryError::Invalid { field, reason } => ApiError::invalid(field, reason),
            MemoryError::NotFound => ApiError::NotFound("conversation"),
            MemoryError::Store(err) => err.into(),
            MemoryError::Cache(_) | MemoryError::Crypto(_) | MemoryError::Corrupt(_) => {
                ApiError::Internal(err.to_string())
            }
        }
    }
}

fn pending(method: &str) -> Status {
    pending_status(
        pb::memory_service_server::SERVICE_NAME,
        method,
        "long-term and episodic memory are not built yet",
    )
}

#[tonic::async_trait]
impl MemoryService for MemoryApi {
    async fn remember(
        &self,
        _: Request<pb::RememberRequest>,
    ) -> Result<Response<pb::RememberResponse>, Status> {
        Err(pending("Remember"))
    }

    async fn recall(
        &self,
        _: Request<pb::RecallRequest>,
    ) -> Result<Response<pb::RecallResponse>, Status> {
        Err(pending("Recall"))
    }

    async fn list_memories(
        &self,
        _: Request<pb::ListMemoriesRequest>,
    ) -> Result<Response<pb::ListMemoriesResponse>, Status> {
        Err(pending("ListMemories"))
    }

    async fn get_working_state(
        &self,
        request: Request<pb::GetWorkingStateRequest>,
    ) -> Result<Response<pb::GetWorkingStateResponse>, Status> {
        let id = conversation_id(&request.get_ref().conversation_id)?;
        audit_resource(&request, id);
        let found = self
            .working
            .get(&principal(&request)?, id)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(match found {
            Some(state) => pb::GetWorkingStateResponse {
                state: Some(json_to_struct(state.state)),
                expire_time: Some(timestamp(state.expires)),
            },
            None => pb::GetWorkingStateResponse::default(),
        }))
    }

    async fn set_working_state(
        &self,
        request: Request<pb::SetWorkingStateRequest>,
    ) -> Result<Response<pb::SetWorkingStateResponse>, Status> {
        let id = conversation_id(&request.get_ref().conversation_id)?;
        audit_resource(&request, id);
        let body = request.get_ref();
        let state = struct_to_json(body.state.clone().unwrap_or_default())
            .map_err(|reason| ApiError::invalid("state", reason))?;
        let ttl = match u64::try_from(body.ttl_seconds) {
            Ok(0) => None,
            Ok(seconds) => Some(Duration::from_secs(seconds)),
            Err(_) => return Err(ApiError::invalid("ttl_seconds", "must not be negative").into()),
        };
        let expires = self
            .working
            .set(&principal(&request)?, id, &state, ttl)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::SetWorkingStateResponse {
            expire_time: Some(timestamp(expires)),
        }))
    }

    async fn forget(
        &self,
        _: Request<pb::ForgetRequest>,
    ) -> Result<Response<pb::ForgetResponse>, Status> {
        Err(pending("Forget"))
    }

    type ExportMemoriesStream = ReceiverStream<Result<pb::ExportMemoriesResponse, Status>>;

    async fn export_memories(
        &self,
        _: Request<pb::ExportMemoriesRequest>,
    ) -> Result<Response<Self::ExportMemoriesStream>, Status> {
        Err(pending("ExportMemories"))
    }
}
