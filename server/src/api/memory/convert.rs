//! MemoryService messages ↔ the memory module's types, with the validation of request
//! fields.

use uuid::Uuid;

use super::super::convert::{time_range, timestamp};
use crate::{
    edge::ApiError,
    memory::{MemoryItem, MemoryKind, RecallQuery, Recalled},
    pb::v1 as pb,
    store::memories::{Deletion, MemoryFilter},
};

impl From<MemoryKind> for pb::MemoryKind {
    fn from(kind: MemoryKind) -> Self {
        match kind {
            MemoryKind::Message => pb::MemoryKind::Message,
            MemoryKind::Summary => pb::MemoryKind::Summary,
            MemoryKind::Episodic => pb::MemoryKind::Episodic,
        }
    }
}

impl From<MemoryItem> for pb::MemoryItem {
    fn from(item: MemoryItem) -> Self {
        Self {
            id: item.id.to_string(),
            kind: pb::MemoryKind::from(item.kind) as i32,
            content: item.content,
            conversation_id: item
                .conversation_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            source_message_id: item
                .source_message_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            confidence: item.confidence,
            create_time: Some(timestamp(item.created_at)),
            update_time: Some(timestamp(item.updated_at)),
        }
    }
}

impl From<Recalled> for pb::ScoredMemory {
    fn from(recalled: Recalled) -> Self {
        Self {
            score: recalled.signals.score,
            vector_score: recalled.signals.vector,
            keyword_score: recalled.signals.keyword,
            recency: recalled.signals.recency,
            item: Some(recalled.item.into()),
        }
    }
}

/// The stored names of `kinds` (a request's `field`); empty means every kind.
///
/// # Errors
/// `InvalidArgument` on `field` for an unspecified or unknown kind.
pub(super) fn kinds(field: &'static str, kinds: &[i32]) -> Result<Vec<String>, ApiError> {
    kinds
        .iter()
        .map(|&kind| match pb::MemoryKind::try_from(kind) {
            Ok(pb::MemoryKind::Message) => Ok(MemoryKind::Message.as_str().to_owned()),
            Ok(pb::MemoryKind::Summary) => Ok(MemoryKind::Summary.as_str().to_owned()),
            Ok(pb::MemoryKind::Episodic) => Ok(MemoryKind::Episodic.as_str().to_owned()),
            Ok(pb::MemoryKind::Unspecified) | Err(_) => Err(ApiError::invalid(
                field,
                "each must be MEMORY_KIND_MESSAGE, MEMORY_KIND_SUMMARY or MEMORY_KIND_EPISODIC",
            )),
        })
        .collect()
}

/// An optional id in `field`: empty means none.
///
/// # Errors
/// `InvalidArgument` on `field` when it is neither empty nor a UUID.
pub(super) fn optional_id(field: &'static str, value: &str) -> Result<Option<Uuid>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    Uuid::try_parse(value)
        .map(Some)
        .map_err(|_| ApiError::invalid(field, "must be a UUID"))
}

impl TryFrom<pb::RecallRequest> for RecallQuery {
    type Error = ApiError;

    fn try_from(request: pb::RecallRequest) -> Result<Self, ApiError> {
        let (since, until) = time_range("time_range", request.time_range.as_ref())?;
        let top_k = u32::try_from(request.top_k)
            .map_err(|_| ApiError::invalid("top_k", "must not be negative"))?;
        Ok(Self {
            text: request.query,
            filter: MemoryFilter {
                kinds: kinds("kinds", &request.kinds)?,
                conversation: optional_id("conversation_id", &request.conversation_id)?,
                since,
                until,
            },
            top_k,
            min_score: request.min_score,
        })
    }
}

/// What a Forget request names.
///
/// # Errors
/// `InvalidArgument` on `target` when nothing is named or `everything` is false, or on the
/// id field that is not a UUID.
pub(super) fn forget_target(request: &pb::ForgetRequest) -> Result<Deletion, ApiError> {
    use pb::forget_request::Target;
    match &request.target {
        Some(Target::MemoryId(id)) => Uuid::try_parse(id)
            .map(Deletion::Memory)
            .map_err(|_| ApiError::invalid("memory_id", "must be a UUID")),
        Some(Target::ConversationId(id)) => Uuid::try_parse(id)
            .map(Deletion::Conversation)
            .map_err(|_| ApiError::invalid("conversation_id", "must be a UUID")),
        Some(Target::Everything(true)) => Ok(Deletion::Everything),
        Some(Target::Everything(false)) | None => Err(ApiError::invalid(
            "target",
            "name memory_id, conversation_id, or set everything to true",
        )),
    }
}
