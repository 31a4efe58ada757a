//! `GET /v1/models` and `GET /v1/models/{id}`: the models the caller may ask for. Chat
//! models (the tenant's aliases, the built-in `default` and `private`, and `local/<name>`
//! for the language models this server runs) are listed when the caller's roles allow
//! chat; embedding models when they allow inference.

use axum::{
    extract::{Path, State},
    response::Response,
};
use serde::Serialize;

use super::{Caller, OpenAiState, RestError, json_response};
use crate::{
    auth::permissions::{self, Access},
    edge::ApiError,
    inference::{ModelKind, Scope},
    llm::LOCAL_PROVIDER,
};

/// Most of a tenant's own aliases listed.
const MAX_ALIASES: u32 = 1000;

/// Who stands behind a model, as `owned_by` says.
const OWNER: &str = "codexcontinue";

/// One model, as OpenAI lists it.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Model {
    id: String,
    object: &'static str,
    created: i64,
    owned_by: &'static str,
}

impl Model {
    fn new(id: String, created: i64) -> Self {
        Self {
            id,
            object: "model",
            created,
            owned_by: OWNER,
        }
    }
}

#[derive(Serialize)]
struct ModelList {
    object: &'static str,
    data: Vec<Model>,
}

/// Whether the caller's roles grant what the gRPC method `service/method` requires.
async fn may_call(state: &OpenAiState, caller: &Caller, service: &str, method: &str) -> bool {
    match permissions::access(service, method) {
        Some(Access::Public) => true,
        Some(Access::Requires(permission) | Access::PerPlugin(permission)) => {
            state.rbac.allows(&caller.principal, permission).await
        }
        None => false,
    }
}

/// Every model the caller may ask for, chat models first.
async fn visible(state: &OpenAiState, caller: &Caller) -> Result<Vec<Model>, RestError> {
    let mut models = Vec::new();
    if may_call(state, caller, "codexcontinue.v1.ChatService", "SendMessage").await {
        let aliases = state
            .providers
            .aliases(&caller.principal, MAX_ALIASES)
            .await?;
        models.extend(aliases.into_iter().map(|alias| Model::new(alias, 0)));
        let local = state
            .registry
            .list(Scope::Platform, Some(ModelKind::CausalLm));
        for name in state.registry.generation_models() {
            let created = local
                .iter()
                .find(|m| m.manifest.name == name)
                .map_or(0, |m| m.created.unix_timestamp());
            models.push(Model::new(format!("{LOCAL_PROVIDER}/{name}"), created));
        }
    }
    if may_call(state, caller, "codexcontinue.v1.ModelService", "Embed").await {
        let scope = Scope::Tenant(caller.principal.tenant);
        let mut embedding = state.registry.list(scope, Some(ModelKind::Embedding));
        embedding.sort_by(|a, b| a.manifest.name.cmp(&b.manifest.name));
        embedding.dedup_by(|a, b| a.manifest.name == b.manifest.name);
        models.extend(
            embedding
                .into_iter()
                .map(|m| Model::new(m.manifest.name, m.created.unix_timestamp())),
        );
    }
    Ok(models)
}

/// `GET /v1/models`.
pub(super) async fn list(
    State(state): State<OpenAiState>,
    caller: Caller,
) -> Result<Response, RestError> {
    let data = visible(&state, &caller).await?;
    Ok(json_response(&ModelList {
        object: "list",
        data,
    }))
}

/// `GET /v1/models/{id}`.
pub(super) async fn get(
    State(state): State<OpenAiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, RestError> {
    caller.acts_on(id.clone());
    let model = visible(&state, &caller)
        .await?
        .into_iter()
        .find(|m| m.id == id)
        .ok_or(ApiError::NotFound("model"))?;
    Ok(json_response(&model))
}
