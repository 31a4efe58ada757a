//! The OpenAI-compatible REST API, on the same listener as gRPC, so that the tools people
//! already run (the official OpenAI SDKs, IDE assistants, chat front ends) work against
//! CodexContinue unchanged:
//!
//! - `POST /v1/chat/completions`: a reply, whole or streamed as server-sent events;
//! - `POST /v1/embeddings`: vectors from the server's embedding models;
//! - `GET /v1/models`, `GET /v1/models/{id}`: what the caller may ask for.
//!
//! Calls pass the same layers as gRPC calls (audit, load shedding, authentication,
//! authorization, rate limits; see `edge`) and the same domain code (a chat turn is
//! `chat::Turns`): budgets, routing, the PHI policy and usage accounting apply as they do
//! to the gRPC twin. Two optional headers
//! reach the rest of the server: `X-CodexContinue-Conversation` (a conversation id:
//! history and memory apply and the turn is stored) and `X-CodexContinue-Profile` (a
//! domain profile for a stateless call).

mod completions;
mod embeddings;
mod error;
mod models;
mod queued_frames;
mod request;
mod response;
mod sse;

use std::sync::Arc;

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{FromRequestParts, rejection::BytesRejection},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use http::{StatusCode, header, request::Parts};
use serde::Serialize;
use tonic::Code;

use error::RestError;

use crate::{
    auth::rbac::Rbac,
    caller::{AuditSlot, Caller, Principal},
    chat::Turns,
    edge::openai_wire::CallCode,
    inference::Registry,
    llm::Providers,
    usage::Accounting,
};

/// Header naming the conversation a chat completion continues.
const CONVERSATION_HEADER: &str = "x-codexcontinue-conversation";
/// Header naming the domain profile of a stateless chat completion.
const PROFILE_HEADER: &str = "x-codexcontinue-profile";

/// What the REST handlers use.
#[derive(Clone)]
pub struct OpenAiState {
    /// Conducts chat turns, stateless or in a conversation.
    pub turns: Turns,
    /// Records the usage of embeddings.
    pub accounting: Accounting,
    /// The tenants' model providers and aliases.
    pub providers: Providers,
    /// Local models.
    pub registry: Arc<Registry>,
    /// Decides which kinds of model a caller may see.
    pub rbac: Arc<Rbac>,
}

/// The REST routes.
pub fn router(state: OpenAiState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(completions::create))
        .route("/v1/embeddings", post(embeddings::create))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{*id}", get(models::get))
        .with_state(state)
}

/// The caller, as the authentication layer admitted it, with the call's audit slot.
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = RestError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| RestError(tonic::Status::unauthenticated("missing credentials")))?;
        Ok(Caller::new(
            principal,
            parts.extensions.get::<AuditSlot>().cloned(),
        ))
    }
}

/// A complete JSON answer, marked successful for the audit layer.
fn json_response(value: &impl Serialize) -> Response {
    let mut response = match serde_json::to_string(value) {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(text),
        )
            .into_response(),
        Err(err) => {
            return RestError::from(crate::edge::ApiError::internal(err)).into_response();
        }
    };
    response.extensions_mut().insert(CallCode(Code::Ok));
    response
}

/// Seconds since the Unix epoch, as OpenAI's `created` fields count.
fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The JSON request body, or a bad request naming the field that does not parse (or
/// saying why the body could not be read: too large, cut off).
fn parse_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, RestError> {
    let body = body.map_err(|rejection| RestError::invalid("body", rejection.body_text()))?;
    let mut json = serde_json::Deserializer::from_slice(&body);
    serde_path_to_error::deserialize(&mut json).map_err(|err| {
        let path = err.path().to_string();
        let cause = err.into_inner().to_string();
        // A missing field is reported at its parent: name the field itself.
        let missing = cause
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(field, _)| field);
        let param = match (path.as_str(), missing) {
            (".", Some(field)) => field.to_owned(),
            (parent, Some(field)) => format!("{parent}.{field}"),
            (".", None) => "body".to_owned(),
            (path, None) => path.to_owned(),
        };
        RestError::invalid(param, cause)
    })
}
