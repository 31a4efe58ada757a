//! A REST call's failure: the same `tonic::Status` the gRPC API answers with (one mapping
//! from domain errors, in `edge::status`), rendered in OpenAI's shape by the edge
//! (`edge::openai_wire`), so a REST call and its gRPC twin fail alike.

use std::borrow::Cow;

use axum::response::{IntoResponse, Response};
use tonic::Status;

use super::CONVERSATION_HEADER;
use crate::{
    chat::ChatError,
    edge::{ApiError, openai_wire::error_response},
};

/// A REST call's failure.
#[derive(Debug)]
pub struct RestError(pub Status);

/// Anything that becomes a status (a status, an [`ApiError`], any domain error of the
/// table in `edge::status`) fails a REST call as its gRPC twin would fail.
impl<E> From<E> for RestError
where
    Status: From<E>,
{
    fn from(err: E) -> Self {
        Self(Status::from(err))
    }
}

impl RestError {
    /// Bad input in the request's field `param`.
    pub fn invalid(
        param: impl Into<std::borrow::Cow<'static, str>>,
        description: impl Into<String>,
    ) -> Self {
        ApiError::invalid(param, description).into()
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        error_response(&self.0)
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
