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
    CONVERSATION_HEADER, Caller, OpenAiState, PROFILE_HEADER, RestError, json_response, parse_body,
    prepared::{Prepared, rest_error},
    request::ChatCompletionRequest,
    response::{AnswerMessage, AnswerToolCall, ChatCompletion, Choice, finish_reason},
    sse, unix_now,
};
use crate::chat::{ChatError, MessageRole, StatelessCall, complete};

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

/// `POST /v1/chat/completions`.
pub(super) async fn create(
    State(state): State<OpenAiState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    let request: ChatCompletionRequest = parse_body(body)?;
    let options = request.options()?;
    let mut turns = request.turns()?;
    let tools = request.tools()?;
    let conversation = header(&headers, CONVERSATION_HEADER)?
        .map(|id| {
            Uuid::try_parse(id.trim())
                .map_err(|_| RestError::invalid(CONVERSATION_HEADER, "is not a conversation id"))
        })
        .transpose()?;
    let principal = &caller.principal;
    let prepared = match conversation {
        Some(id) => {
            caller.acts_on(id.to_string());
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
            state
                .generator
                .prepare(principal, id, &content, &options)
                .await
                .map(Prepared::Turn)
        }
        None => {
            let call = StatelessCall {
                profile: header(&headers, PROFILE_HEADER)?.unwrap_or_default(),
                messages: turns,
                tools,
                options: &options,
            };
            state
                .generator
                .prepare_stateless(principal, call)
                .await
                .map(Prepared::Stateless)
        }
    };
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(err) => {
            if matches!(err, ChatError::PhiRefused { .. }) {
                caller.handled_phi();
            }
            return Err(rest_error(err));
        }
    };
    if prepared.prompt().phi {
        caller.handled_phi();
    }
    let id = match &prepared {
        Prepared::Turn(turn) => turn.reply_id,
        Prepared::Stateless(_) => Uuid::now_v7(),
    };
    let reply = sse::Identity {
        id: format!("chatcmpl-{}", id.simple()),
        created: unix_now(),
        model: request.model.clone(),
    };
    if request.stream.unwrap_or(false) {
        let include_usage = request
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        return sse::stream(state, caller.principal, prepared, reply, include_usage).await;
    }
    let answer = complete(prepared.prompt()).await.map_err(rest_error)?;
    prepared
        .settle(&state, principal, &answer)
        .await
        .map_err(rest_error)?;
    Ok(json_response(&ChatCompletion {
        id: &reply.id,
        object: "chat.completion",
        created: reply.created,
        model: &reply.model,
        choices: [Choice {
            index: 0,
            message: AnswerMessage {
                role: "assistant",
                content: (!answer.content.is_empty() || answer.tool_calls.is_empty())
                    .then_some(answer.content.as_str()),
                refusal: None,
                tool_calls: answer
                    .tool_calls
                    .iter()
                    .map(AnswerToolCall::whole)
                    .collect(),
            },
            logprobs: None,
            finish_reason: finish_reason(answer.finish_reason),
        }],
        usage: answer.usage.into(),
        system_fingerprint: None,
    })
    .into_response())
}
