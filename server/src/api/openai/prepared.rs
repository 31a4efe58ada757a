//! A chat completion ready for the model, whole or streamed: a turn of a stored
//! conversation or a stateless call, and how each ends (stored, or its usage recorded).

use std::borrow::Cow;

use super::{CONVERSATION_HEADER, OpenAiState, RestError};
use crate::{
    api::ApiError,
    auth::Principal,
    chat::{ChatError, PreparedTurn, Prompt, Reply},
};

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
