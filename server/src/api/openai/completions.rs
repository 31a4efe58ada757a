//! `POST /v1/chat/completions`.
//!
//! Without a conversation the call is stateless: the prompt is the caller's messages after
//! the profile's instructions (`X-CodexContinue-Profile`, or the tenant's default
//! profile), nothing is stored and the usage is recorded. With
//! `X-CodexContinue-Conversation: <id>` the last message (the user's) is sent in that
//! conversation as `SendMessage` would send it: the stored history and recalled memories
//! make the context, and the turn is stored. Either way the reply comes whole, or as
//! server-sent events with `stream: true`.

use std::borrow::Cow;

use axum::{
    body::Bytes,
    extract::State,
    response::{IntoResponse, Response},
};
use http::HeaderMap;
use uuid::Uuid;

use super::{
    Caller, OpenAiState, RestError,
    chat::{
        AnswerMessage, AnswerToolCall, ChatCompletion, ChatCompletionRequest, Choice, finish_reason,
    },
    json_response, parse_body, sse, unix_now,
};
use crate::{
    api::ApiError,
    auth::Principal,
    chat::{ChatError, MessageRole, PreparedTurn, Prompt, Reply, StatelessCall, complete},
};

/// Header naming the conversation a call continues.
pub(super) const CONVERSATION_HEADER: &str = "x-codexcontinue-conversation";
/// Header naming the domain profile of a stateless call.
const PROFILE_HEADER: &str = "x-codexcontinue-profile";

/// A call ready for the model.
pub(super) enum Prepared {
    /// A turn of a stored conversation.
    Turn(PreparedTurn),
    /// A stateless call.
    Stateless(Prompt),
}

impl Prepared {
    /// What goes to the model.
    pub fn prompt(&self) -> &Prompt {
        match self {
            Prepared::Turn(turn) => &turn.prompt,
            Prepared::Stateless(prompt) => prompt,
        }
    }

    /// Stores the turn, or records the usage of a stateless call.
    ///
    /// # Errors
    /// [`ChatError`] when a store fails.
    pub async fn settle(
        &self,
        state: &OpenAiState,
        principal: &Principal,
        reply: &Reply,
    ) -> Result<(), ChatError> {
        match self {
            Prepared::Turn(turn) => state
                .generator
                .finish(principal, turn, reply)
                .await
                .map(drop),
            Prepared::Stateless(_) => {
                state
                    .accounting
                    .record(principal, &reply.model_used, reply.usage, reply.latency_ms)
                    .await;
                Ok(())
            }
        }
    }
}

/// A chat failure, with the request fields of the REST call named where the gRPC
/// call's fields differ.
pub(super) fn rest_error(err: ChatError) -> RestError {
    match ApiError::from(err) {
        ApiError::InvalidArgument { field, description } => {
            let param: Cow<'static, str> = match field.as_ref() {
                "content" => "messages".into(),
                "options.model" | "conversation.model" => "model".into(),
                "options.stop" => "stop".into(),
                "options.max_tokens" => "max_tokens".into(),
                "conversation_id" => CONVERSATION_HEADER.into(),
                _ => field,
            };
            RestError::invalid(param, description)
        }
        other => other.into(),
    }
}

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
    body: Bytes,
) -> Result<Response, RestError> {
    let request: ChatCompletionRequest = parse_body(&body)?;
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
