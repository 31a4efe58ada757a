//! `POST /v1/chat/completions`.
//!
//! Without a conversation the call is stateless: the prompt is the caller's messages after
//! the profile's instructions (`X-CodexContinue-Profile`, or the tenant's default
//! profile), nothing is stored and the usage is recorded. With
//! `X-CodexContinue-Conversation: <id>` the last message (the user's) is sent in that
//! conversation as `SendMessage` would send it: the stored history and recalled memories
//! make the context, and the turn is stored. Either way the reply comes whole, or as
//! server-sent events with `stream: true`.

use axum::{
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    response::{IntoResponse, Response},
};
use http::HeaderMap;
use uuid::Uuid;

use super::{
    CONVERSATION_HEADER, OpenAiState, PROFILE_HEADER, RestError,
    error::rest_error,
    json_response, parse_body,
    queued_frames::QueuedFrames,
    request::ChatCompletionRequest,
    response::{AnswerMessage, AnswerToolCall, ChatCompletion, Choice, finish_reason},
    sse::{self, EventSink},
    unix_now,
};
use crate::{
    caller::Caller,
    chat::{Ask, Collect, MessageRole, StatelessCall},
    edge::ApiError,
};

/// Events buffered ahead of a slow client.
const STREAM_BUFFER: usize = 32;

/// The value of header `name`, if sent; a bad request when it is not visible ASCII.
fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<Option<&'h str>, RestError> {
    headers
        .get(name)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| RestError::invalid(name, "is not visible ASCII"))
        })
        .transpose()
}

/// What a chat completion asks: a message in the conversation the header names (the
/// last message, which must be the user's), or a stateless call.
fn ask_of(
    caller: &Caller,
    request: &ChatCompletionRequest,
    headers: &HeaderMap,
) -> Result<Ask, RestError> {
    let options = request.options()?;
    let mut turns = request.turns()?;
    let tools = request.tools()?;
    let conversation = header(headers, CONVERSATION_HEADER)?
        .map(|id| {
            Uuid::try_parse(id.trim())
                .map_err(|_| RestError::invalid(CONVERSATION_HEADER, "is not a conversation id"))
        })
        .transpose()?;
    let Some(conversation) = conversation else {
        return Ok(Ask::Stateless(StatelessCall {
            profile: header(headers, PROFILE_HEADER)?
                .unwrap_or_default()
                .to_owned(),
            messages: turns,
            tools,
            options,
        }));
    };
    // Refusals of the request's shape are recorded against the conversation too.
    caller.acts_on(conversation);
    if tools.is_some() {
        return Err(RestError::invalid(
            "tools",
            "tools are taken by stateless calls only (without X-CodexContinue-Conversation)",
        ));
    }
    let content = match turns.pop() {
        Some(turn) if turn.role == MessageRole::User => turn.text,
        _ => {
            return Err(RestError::invalid(
                "messages",
                "the last message must be the user's: it is what is sent in the conversation",
            ));
        }
    };
    Ok(Ask::Message {
        conversation,
        content,
        options,
        idempotency_key: String::new(),
    })
}

/// `POST /v1/chat/completions`.
pub(super) async fn create(
    State(state): State<OpenAiState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    let request: ChatCompletionRequest = parse_body(body)?;
    let ask = ask_of(&caller, &request, &headers)?;
    if request.stream.unwrap_or(false) {
        let include_usage = request
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let (frames, body) = QueuedFrames::channel(STREAM_BUFFER);
        let sink = EventSink::new(frames, request.model.clone(), include_usage);
        state
            .turns
            .reply_detached(caller, ask, sink)
            .await
            .map_err(rest_error)?;
        return Ok(sse::response(body));
    }
    let created = unix_now();
    let answered = state
        .turns
        .reply(&caller, ask, &mut Collect)
        .await
        .map_err(rest_error)?;
    let said = answered
        .said
        .ok_or_else(|| RestError::from(ApiError::internal("a reply without text")))?;
    Ok(json_response(&ChatCompletion {
        id: &format!("chatcmpl-{}", answered.id.simple()),
        object: "chat.completion",
        created,
        model: &request.model,
        choices: [Choice {
            index: 0,
            message: AnswerMessage {
                role: "assistant",
                content: (!said.content.is_empty() || said.tool_calls.is_empty())
                    .then_some(said.content.as_str()),
                refusal: None,
                tool_calls: said.tool_calls.iter().map(AnswerToolCall::whole).collect(),
            },
            logprobs: None,
            finish_reason: finish_reason(said.finish_reason),
        }],
        usage: said.usage.into(),
        system_fingerprint: None,
    })
    .into_response())
}
