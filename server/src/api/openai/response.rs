//! The answers of `/v1/chat/completions` as OpenAI's SDKs read them: a whole
//! `chat.completion`, or the `chat.completion.chunk` events of a stream.

use serde::Serialize;

use crate::llm::{FinishReason, ToolCall, Usage};

/// OpenAI's name for why a reply ended.
pub(super) fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop | FinishReason::Cancelled => "stop",
        FinishReason::Length => "length",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::ToolCalls => "tool_calls",
    }
}

/// Token counts as OpenAI reports them.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct UsageCounts {
    prompt_tokens: i64,
    completion_tokens: i64,
    total_tokens: i64,
}

impl From<Usage> for UsageCounts {
    fn from(usage: Usage) -> Self {
        Self {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.prompt_tokens + usage.completion_tokens,
        }
    }
}

/// A whole reply.
#[derive(Serialize)]
pub(super) struct ChatCompletion<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: i64,
    pub model: &'a str,
    pub choices: [Choice<'a>; 1],
    pub usage: UsageCounts,
    pub system_fingerprint: Option<&'static str>,
}

/// The one choice of a whole reply.
#[derive(Serialize)]
pub(super) struct Choice<'a> {
    pub index: u32,
    pub message: AnswerMessage<'a>,
    pub logprobs: Option<()>,
    pub finish_reason: &'static str,
}

/// The reply's message.
#[derive(Serialize)]
pub(super) struct AnswerMessage<'a> {
    pub role: &'static str,
    pub content: Option<&'a str>,
    pub refusal: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<AnswerToolCall<'a>>,
}

/// A tool call of the reply (whole, or a piece of it in a streamed event).
#[derive(Serialize)]
pub(super) struct AnswerToolCall<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: AnswerFunction<'a>,
}

/// The function a tool call of the reply names.
#[derive(Serialize)]
pub(super) struct AnswerFunction<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    pub arguments: &'a str,
}

impl<'a> AnswerToolCall<'a> {
    /// A whole call of a reply.
    pub fn whole(call: &'a ToolCall) -> Self {
        Self {
            index: None,
            id: Some(&call.id),
            kind: Some("function"),
            function: AnswerFunction {
                name: Some(&call.name),
                arguments: &call.arguments,
            },
        }
    }
}

/// One event of a streamed reply.
#[derive(Serialize)]
pub(super) struct ChatCompletionChunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: i64,
    pub model: &'a str,
    pub system_fingerprint: Option<&'static str>,
    pub choices: Vec<ChunkChoice<'a>>,
    /// Present (null until the last event) when the caller asked for usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<UsageCounts>>,
}

/// The one choice of a streamed event.
#[derive(Serialize)]
pub(super) struct ChunkChoice<'a> {
    pub index: u32,
    pub delta: ChunkDelta<'a>,
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
}

/// What a streamed event adds.
#[derive(Serialize, Default)]
pub(super) struct ChunkDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<AnswerToolCall<'a>>,
}
