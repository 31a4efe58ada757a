//! `POST /v1/embeddings`: vectors from the server's embedding models (the platform's and
//! the caller's tenant's), or with `model: "provider/model"` from one of the tenant's
//! providers (the PHI policy applies off the premises, the usage is recorded), as floats
//! or as base64 of little-endian `f32`s. The texts are checked as the gRPC `Embed` checks
//! them.

use axum::{
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    response::Response,
};
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{Caller, OpenAiState, RestError, json_response, parse_body};
use crate::{
    api::models::texts_of,
    edge::ApiError,
    inference::Scope,
    llm::{EmbeddingError, Usage},
};

/// The request's `input`: one text or several. (Token arrays are refused: the server
/// tokenizes with the model's own tokenizer.)
#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct EmbeddingsRequest {
    input: serde_json::Value,
    model: String,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<u64>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Vector {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct Embedding {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

#[derive(Serialize)]
struct EmbeddingsUsage {
    prompt_tokens: usize,
    total_tokens: usize,
}

#[derive(Serialize)]
struct EmbeddingsResponse {
    object: &'static str,
    data: Vec<Embedding>,
    model: String,
    usage: EmbeddingsUsage,
}

/// Vectors, from a local model or a provider.
struct Vectors {
    dimensions: usize,
    vectors: Vec<Vec<f32>>,
    tokens: usize,
}

/// `POST /v1/embeddings`.
pub(super) async fn create(
    State(state): State<OpenAiState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    let request: EmbeddingsRequest = parse_body(body)?;
    if request.model.is_empty() {
        return Err(RestError::invalid("model", "is required"));
    }
    caller.acts_on(request.model.clone());
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(RestError::invalid(
                "encoding_format",
                format!("{other:?} is not one of \"float\" and \"base64\""),
            ));
        }
    };
    let texts = match serde_json::from_value::<Input>(request.input) {
        Ok(Input::One(text)) => vec![text],
        Ok(Input::Many(texts)) => texts,
        Err(_) => {
            return Err(RestError::invalid(
                "input",
                "must be a string or an array of strings (token arrays are not accepted)",
            ));
        }
    };
    let texts = texts_of("input", texts)?;
    let embedded = if request.model.contains('/') {
        state.accounting.check_alone(&caller.principal).await?;
        let made = state
            .providers
            .embed(&caller.principal, &request.model, texts)
            .await
            .map_err(|err| {
                if matches!(err, EmbeddingError::PhiRefused { .. }) {
                    caller.handled_phi();
                }
                ApiError::from(err)
            })?;
        if made.phi {
            caller.handled_phi();
        }
        let usage = Usage {
            prompt_tokens: made.embeddings.prompt_tokens,
            completion_tokens: 0,
        };
        state
            .accounting
            .record(&caller.principal, &made.model_used, usage, made.latency_ms)
            .await;
        Vectors {
            dimensions: made.embeddings.vectors.first().map_or(0, Vec::len),
            vectors: made.embeddings.vectors,
            tokens: usize::try_from(made.embeddings.prompt_tokens).unwrap_or(0),
        }
    } else {
        let local = state
            .registry
            .embed(
                Scope::Tenant(caller.principal.tenant),
                &request.model,
                texts,
            )
            .await?;
        Vectors {
            dimensions: local.dimensions,
            vectors: local.vectors,
            tokens: local.tokens,
        }
    };
    if let Some(dimensions) = request.dimensions
        && usize::try_from(dimensions).ok() != Some(embedded.dimensions)
    {
        return Err(RestError::invalid(
            "dimensions",
            format!(
                "model {} has {} dimensions and cannot shorten its vectors",
                request.model, embedded.dimensions
            ),
        ));
    }
    let data = embedded
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, values)| Embedding {
            object: "embedding",
            index,
            embedding: if base64 {
                let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                Vector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Vector::Floats(values)
            },
        })
        .collect();
    Ok(json_response(&EmbeddingsResponse {
        object: "list",
        data,
        model: request.model,
        usage: EmbeddingsUsage {
            prompt_tokens: embedded.tokens,
            total_tokens: embedded.tokens,
        },
    }))
}
