//! MemoryService: long-term and episodic memory (remember, recall, list, forget, export)
//! and working memory (a conversation's JSON state with a time to live). Every method
//! works on the caller's own memories.

mod convert;

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use self::convert::{forget_target, kinds, optional_id};
use super::{
    convert::{audit_resource, conversation_id, principal, timestamp},
    pagination::PageRequest,
};
use crate::{
    caller::Principal,
    edge::ApiError,
    memory::{LongTermMemory, RecallQuery, WorkingMemory},
    pb::v1::{self as pb, memory_service_server::MemoryService},
    store::memories::MemoryFilter,
};

/// Memories sent per page of an export.
const EXPORT_PAGE: u32 = 200;

/// The MemoryService implementation.
pub struct MemoryApi {
    long_term: LongTermMemory,
    working: WorkingMemory,
}

impl MemoryApi {
    /// Serves long-term memory from `long_term` and working memory from `working`.
    pub fn new(long_term: LongTermMemory, working: WorkingMemory) -> Self {
        Self { long_term, working }
    }
}

#[tonic::async_trait]
impl MemoryService for MemoryApi {
    async fn remember(
        &self,
        request: Request<pb::RememberRequest>,
    ) -> Result<Response<pb::RememberResponse>, Status> {
        let principal = principal(&request)?;
        let body = request.get_ref();
        let source = optional_id("source_message_id", &body.source_message_id)?;
        let item = self
            .long_term
            .remember(&principal, &body.content, source, body.confidence)
            .await?;
        audit_resource(&request, item.id);
        Ok(Response::new(pb::RememberResponse {
            item: Some(item.into()),
        }))
    }

    async fn recall(
        &self,
        request: Request<pb::RecallRequest>,
    ) -> Result<Response<pb::RecallResponse>, Status> {
        let principal = principal(&request)?;
        let query = RecallQuery::try_from(request.into_inner())?;
        let recalled = self.long_term.recall(&principal, &query).await?;
        Ok(Response::new(pb::RecallResponse {
            items: recalled.into_iter().map(Into::into).collect(),
        }))
    }

    async fn list_memories(
        &self,
        request: Request<pb::ListMemoriesRequest>,
    ) -> Result<Response<pb::ListMemoriesResponse>, Status> {
        let principal = principal(&request)?;
        let body = request.get_ref();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let filter = MemoryFilter {
            kinds: kinds("kinds", &body.kinds)?,
            conversation: optional_id("conversation_id", &body.conversation_id)?,
            ..MemoryFilter::default()
        };
        let items = self
            .long_term
            .list(&principal, &filter, page.after, page.size + 1)
            .await?;
        let (items, next_page_token) = page.finish(items, |item| item.id);
        Ok(Response::new(pb::ListMemoriesResponse {
            items: items.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }
    async fn get_working_state(
        &self,
        request: Request<pb::GetWorkingStateRequest>,
    ) -> Result<Response<pb::GetWorkingStateResponse>, Status> {
        let id = conversation_id(&request.get_ref().conversation_id)?;
        audit_resource(&request, id);
        let found = self.working.get(&principal(&request)?, id).await?;
        Ok(Response::new(match found {
            Some(state) => pb::GetWorkingStateResponse {
                state: Some(crate::pb::json::to_struct(state.state)),
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
        let state = crate::pb::json::from_struct(body.state.clone().unwrap_or_default())
            .map_err(|reason| ApiError::invalid("state", reason))?;
        let ttl = match u64::try_from(body.ttl_seconds) {
            Ok(0) => None,
            Ok(seconds) => Some(Duration::from_secs(seconds)),
            Err(_) => return Err(ApiError::invalid("ttl_seconds", "must not be negative").into()),
        };
        let expires = self
            .working
            .set(&principal(&request)?, id, &state, ttl)
            .await?;
        Ok(Response::new(pb::SetWorkingStateResponse {
            expire_time: Some(timestamp(expires)),
        }))
    }

    async fn forget(
        &self,
        request: Request<pb::ForgetRequest>,
    ) -> Result<Response<pb::ForgetResponse>, Status> {
        let principal = principal(&request)?;
        let target = forget_target(request.get_ref())?;
        let deleted = self.long_term.forget(&principal, target).await?;
        Ok(Response::new(pb::ForgetResponse {
            deleted: i64::try_from(deleted).unwrap_or(i64::MAX),
        }))
    }

    type ExportMemoriesStream = ReceiverStream<Result<pb::ExportMemoriesResponse, Status>>;

    async fn export_memories(
        &self,
        request: Request<pb::ExportMemoriesRequest>,
    ) -> Result<Response<Self::ExportMemoriesStream>, Status> {
        let principal = principal(&request)?;
        let filter = MemoryFilter {
            kinds: kinds("kinds", &request.get_ref().kinds)?,
            ..MemoryFilter::default()
        };
        self.long_term
            .record_export(&principal, &filter.kinds)
            .await?;
        let (items, stream) = mpsc::channel(EXPORT_PAGE as usize);
        tokio::spawn(export(self.long_term.clone(), principal, filter, items));
        Ok(Response::new(ReceiverStream::new(stream)))
    }
}

/// Sends every memory of `principal` matching `filter`, newest first, a page at a time;
/// stops when the client goes away.
async fn export(
    memory: LongTermMemory,
    principal: Principal,
    filter: MemoryFilter,
    items: mpsc::Sender<Result<pb::ExportMemoriesResponse, Status>>,
) {
    let mut after = None;
    loop {
        let page = match memory.list(&principal, &filter, after, EXPORT_PAGE).await {
            Ok(page) => page,
            Err(err) => {
                let _ = items.send(Err(ApiError::from(err).into())).await;
                return;
            }
        };
        let last = page.last().map(|item| item.id);
        for item in page {
            let response = pb::ExportMemoriesResponse {
                item: Some(item.into()),
            };
            if items.send(Ok(response)).await.is_err() {
                return;
            }
        }
        match last {
            Some(id) => after = Some(id),
            None => return,
        }
    }
}
