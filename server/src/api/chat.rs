//! ChatService: the caller's conversations and their messages, and the domain profiles.
//! Generation (SendMessage, StreamMessage, RegenerateReply, CancelGeneration) answers
//! `UNIMPLEMENTED` until model providers are configured through the chat engine.

use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    convert::{audit_resource, principal, timestamp},
    error::ApiError,
    pagination::PageRequest,
    pending::{pending_status, service_impl},
};
use crate::{
    chat::{
        BUILTIN_PROFILES, ChatError, Conversation, Conversations, Message, MessageRole,
        NewConversation,
    },
    pb::v1::{self as pb, chat_service_server::ChatService},
    privacy::PhiPolicy,
};

/// What generation waits for.
const MISSING: &str = "generation needs model providers, which are not built yet";

/// The ChatService implementation.
pub struct ChatApi {
    conversations: Conversations,
}

impl ChatApi {
    /// Serves the conversations of `conversations`.
    pub fn new(conversations: Conversations) -> Self {
        Self { conversations }
    }
}

impl From<ChatError> for ApiError {
    fn from(err: ChatError) -> Self {
        match err {
            ChatError::Invalid { field, reason } => ApiError::invalid(field, reason),
            ChatError::NotFound => ApiError::NotFound("conversation"),
            ChatError::Store(_) | ChatError::Crypto(_) => ApiError::Internal(err.to_string()),
        }
    }
}

impl From<Conversation> for pb::Conversation {
    fn from(c: Conversation) -> Self {
        Self {
            id: c.id.to_string(),
            title: c.title,
            profile: c.profile,
            model: c.model,
            create_time: Some(timestamp(c.created_at)),
            update_time: Some(timestamp(c.updated_at)),
            message_count: c.message_count,
        }
    }
}

impl From<Message> for pb::Message {
    fn from(m: Message) -> Self {
        let role = match m.role {
            MessageRole::System => pb::MessageRole::System,
            MessageRole::User => pb::MessageRole::User,
            MessageRole::Assistant => pb::MessageRole::Assistant,
            MessageRole::Tool => pb::MessageRole::Tool,
        };
        let finish_reason = match m.finish_reason.as_str() {
            "stop" => pb::FinishReason::Stop,
            "length" => pb::FinishReason::Length,
            "content_filter" => pb::FinishReason::ContentFilter,
            "cancelled" => pb::FinishReason::Cancelled,
            "tool_calls" => pb::FinishReason::ToolCalls,
            _ => pb::FinishReason::Unspecified,
        };
        let usage = (m.role == MessageRole::Assistant).then(|| pb::Usage {
            prompt_tokens: m.prompt_tokens,
            completion_tokens: m.completion_tokens,
            total_tokens: m.prompt_tokens + m.completion_tokens,
            cost_micros: m.cost_micros,
        });
        Self {
            id: m.id.to_string(),
            conversation_id: m.conversation_id.to_string(),
            role: role.into(),
            content: m.content,
            create_time: Some(timestamp(m.created_at)),
            model_used: m.model_used,
            usage,
            finish_reason: finish_reason.into(),
        }
    }
}

fn conversation_id(value: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(value).map_err(|_| ApiError::invalid("conversation_id", "must be a UUID"))
}

/// A conversation page token: the last row's activity time (µs) and id.
fn conversation_token(c: &Conversation) -> String {
    format!("{}_{}", c.updated_at.unix_timestamp_nanos() / 1_000, c.id)
}

fn parse_conversation_token(token: &str) -> Result<Option<(OffsetDateTime, Uuid)>, ApiError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || ApiError::invalid("page_token", "not a token from a previous response");
    let (micros, id) = token.split_once('_').ok_or_else(bad)?;
    let micros: i128 = micros.parse().map_err(|_| bad())?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).map_err(|_| bad())?;
    Ok(Some((at, Uuid::try_parse(id).map_err(|_| bad())?)))
}

fn page_size(requested: i32) -> Result<u32, ApiError> {
    Ok(PageRequest::parse(requested, "")?.size)
}

service_impl! {
    impl ChatService, for ChatApi;
    service: pb::chat_service_server::SERVICE_NAME;
    missing: MISSING;
    pending: [
        send_message(SendMessageRequest) -> SendMessageResponse = "SendMessage",
        cancel_generation(CancelGenerationRequest) -> CancelGenerationResponse = "CancelGeneration",
    ];
    built: {
        type StreamMessageStream =
            tokio_stream::Empty<Result<pb::StreamMessageResponse, Status>>;
        type RegenerateReplyStream =
            tokio_stream::Empty<Result<pb::RegenerateReplyResponse, Status>>;

        async fn create_conversation(
            &self,
            request: Request<pb::CreateConversationRequest>,
        ) -> Result<Response<pb::CreateConversationResponse>, Status> {
            let principal = principal(&request)?;
            let body = request.get_ref();
            let conversation = self
                .conversations
                .create(
                    &principal,
                    NewConversation {
                        title: &body.title,
                        profile: &body.profile,
                        model: &body.model,
                    },
                )
                .await
                .map_err(ApiError::from)?;
            audit_resource(&request, conversation.id);
            Ok(Response::new(pb::CreateConversationResponse {
                conversation: Some(conversation.into()),
            }))
        }

        async fn get_conversation(
            &self,
            request: Request<pb::GetConversationRequest>,
        ) -> Result<Response<pb::GetConversationResponse>, Status> {
            let principal = principal(&request)?;
            let id = conversation_id(&request.get_ref().conversation_id)?;
            audit_resource(&request, id);
            let conversation = self.conversations.get(&principal, id).await.map_err(ApiError::from)?;
            Ok(Response::new(pb::GetConversationResponse {
                conversation: Some(conversation.into()),
            }))
        }

        async fn list_conversations(
            &self,
            request: Request<pb::ListConversationsRequest>,
        ) -> Result<Response<pb::ListConversationsResponse>, Status> {
            let principal = principal(&request)?;
            let body = request.into_inner();
            let size = page_size(body.page_size)?;
            let after = parse_conversation_token(&body.page_token)?;
            let profile = (!body.profile.is_empty()).then_some(body.profile.as_str());
            let mut conversations = self
                .conversations
                .list(&principal, profile, after, size + 1)
                .await
                .map_err(ApiError::from)?;
            let next_page_token = if conversations.len() > size as usize {
                conversations.truncate(size as usize);
                conversations.last().map(conversation_token).unwrap_or_default()
            } else {
                String::new()
            };
            Ok(Response::new(pb::ListConversationsResponse {
                conversations: conversations.into_iter().map(Into::into).collect(),
                next_page_token,
            }))
        }

        async fn rename_conversation(
            &self,
            request: Request<pb::RenameConversationRequest>,
        ) -> Result<Response<pb::RenameConversationResponse>, Status> {
            let principal = principal(&request)?;
            let id = conversation_id(&request.get_ref().conversation_id)?;
            audit_resource(&request, id);
            let conversation = self
                .conversations
                .rename(&principal, id, &request.get_ref().title)
                .await
                .map_err(ApiError::from)?;
            Ok(Response::new(pb::RenameConversationResponse {
                conversation: Some(conversation.into()),
            }))
        }

        async fn delete_conversation(
            &self,
            request: Request<pb::DeleteConversationRequest>,
        ) -> Result<Response<pb::DeleteConversationResponse>, Status> {
            let principal = principal(&request)?;
            let id = conversation_id(&request.get_ref().conversation_id)?;
            audit_resource(&request, id);
            self.conversations.delete(&principal, id).await.map_err(ApiError::from)?;
            Ok(Response::new(pb::DeleteConversationResponse {}))
        }

        async fn list_messages(
            &self,
            request: Request<pb::ListMessagesRequest>,
        ) -> Result<Response<pb::ListMessagesResponse>, Status> {
            let principal = principal(&request)?;
            let id = conversation_id(&request.get_ref().conversation_id)?;
            audit_resource(&request, id);
            let page = PageRequest::parse(request.get_ref().page_size, &request.get_ref().page_token)?;
            let messages = self
                .conversations
                .messages(&principal, id, page.after, page.size + 1)
                .await
                .map_err(ApiError::from)?;
            let (messages, next_page_token) = page.finish(messages, |m| m.id);
            Ok(Response::new(pb::ListMessagesResponse {
                messages: messages.into_iter().map(Into::into).collect(),
                next_page_token,
            }))
        }

        async fn list_profiles(
            &self,
            request: Request<pb::ListProfilesRequest>,
        ) -> Result<Response<pb::ListProfilesResponse>, Status> {
            let principal = principal(&request)?;
            let page = PageRequest::parse(request.get_ref().page_size, "")?;
            if !request.get_ref().page_token.is_empty() {
                return Err(ApiError::invalid("page_token", "not a token from a previous response").into());
            }
            let policy = match self.conversations.phi_policy(&principal).await.map_err(ApiError::from)? {
                PhiPolicy::Allow => pb::PhiPolicy::Allow,
                PhiPolicy::Redact => pb::PhiPolicy::Redact,
                PhiPolicy::Refuse => pb::PhiPolicy::Refuse,
            };
            let profiles = BUILTIN_PROFILES
                .iter()
                .take(page.size as usize)
                .map(|p| pb::Profile {
                    id: p.id.into(),
                    display_name: p.display_name.into(),
                    description: p.description.into(),
                    default_model: p.default_model.into(),
                    phi_policy: policy.into(),
                    allowed_plugins: Vec::new(),
                    custom: false,
                })
                .collect();
            Ok(Response::new(pb::ListProfilesResponse {
                profiles,
                next_page_token: String::new(),
            }))
        }

        async fn stream_message(
            &self,
            _: Request<pb::StreamMessageRequest>,
        ) -> Result<Response<Self::StreamMessageStream>, Status> {
            Err(pending_status(pb::chat_service_server::SERVICE_NAME, "StreamMessage", MISSING))
        }

        async fn regenerate_reply(
            &self,
            _: Request<pb::RegenerateReplyRequest>,
        ) -> Result<Response<Self::RegenerateReplyStream>, Status> {
            Err(pending_status(pb::chat_service_server::SERVICE_NAME, "RegenerateReply", MISSING))
        }
    }
}
