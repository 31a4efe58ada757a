//! ChatService conversions: proto ↔ chat domain, errors, page tokens.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    api::{convert::timestamp, pagination::PageRequest},
    chat::{Conversation, GenerationOptions, Message, MessageRole, Profile},
    edge::ApiError,
    pb::v1 as pb,
};

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
            tool_calls: m
                .tool_calls
                .into_iter()
                .map(|used| pb::ToolCallFinished {
                    call_id: used.call_id,
                    plugin: used.plugin,
                    tool: used.tool,
                    outcome: used.outcome,
                    latency_ms: i64::try_from(used.latency_ms).unwrap_or(i64::MAX),
                })
                .collect(),
        }
    }
}

pub(super) fn options_of(options: Option<&pb::GenerationOptions>) -> GenerationOptions {
    GenerationOptions {
        model: options.map(|o| o.model.clone()).unwrap_or_default(),
        temperature: options.and_then(|o| o.temperature),
        top_p: options.and_then(|o| o.top_p),
        max_tokens: options.and_then(|o| o.max_tokens),
        stop: options.map(|o| o.stop.clone()).unwrap_or_default(),
    }
}

/// A conversation page token: the last row's activity time (µs) and id.
pub(super) fn conversation_token(c: &Conversation) -> String {
    format!("{}_{}", c.updated_at.unix_timestamp_nanos() / 1_000, c.id)
}

pub(super) fn parse_conversation_token(
    token: &str,
) -> Result<Option<(OffsetDateTime, Uuid)>, ApiError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || ApiError::invalid("page_token", "not a token from a previous response");
    let (micros, id) = token.split_once('_').ok_or_else(bad)?;
    let micros: i128 = micros.parse().map_err(|_| bad())?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).map_err(|_| bad())?;
    Ok(Some((at, Uuid::try_parse(id).map_err(|_| bad())?)))
}

pub(super) fn page_size(requested: i32) -> Result<u32, ApiError> {
    Ok(PageRequest::parse(requested, "")?.size)
}

impl From<Profile> for pb::Profile {
    fn from(profile: Profile) -> Self {
        let settings = profile.settings;
        Self {
            id: settings.id,
            display_name: settings.display_name,
            description: settings.description,
            default_model: settings.default_model,
            phi_policy: pb::PhiPolicy::from(profile.phi_policy).into(),
            allowed_plugins: settings.allowed_plugins,
            custom: profile.custom,
            system_prompt: settings.system_prompt,
        }
    }
}
