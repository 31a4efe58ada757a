//! ModelService: the local models (the platform's and the caller's tenant's) and
//! inference on them: listing, lookup, upload and deletion of a tenant's own models,
//! load/unload on every replica, embeddings, classification, generation and generic
//! prediction. Every call sees only the platform's models and its own tenant's.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

mod convert;
mod manifest;
mod requests;

use manifest::manifest_of;
pub(super) use requests::texts_of;
use requests::{generation_of, tensors_of};

use super::{
    convert::{audit_resource, principal},
    pagination::{PageRequest, split_page},
};
use crate::{
    caller::AuditSlot,
    config::DeviceChoice,
    edge::ApiError,
    inference::{ModelInfo, ModelKind, Registry, Scope, generation::Generated, predict::Values},
    model_catalog::{Catalog, upload::MAX_CHUNK_BYTES},
    pb::v1::{self as pb, model_service_server::ModelService, register_model_request::Part},
};

/// Largest ModelService message: an upload chunk and its framing.
pub const MAX_MESSAGE_BYTES: usize = MAX_CHUNK_BYTES + 64 * 1024;

/// The ModelService implementation.
pub struct ModelApi {
    registry: Arc<Registry>,
    catalog: Arc<Catalog>,
}

impl ModelApi {
    /// Serves the models of `registry`, tenants' own through `catalog`.
    pub fn new(registry: Arc<Registry>, catalog: Arc<Catalog>) -> Self {
        Self { registry, catalog }
    }
}

/// The models a call may use: the platform's and its tenant's.
fn scope_of<T>(request: &Request<T>) -> Result<Scope, ApiError> {
    Ok(Scope::Tenant(principal(request)?.tenant))
}

/// The device a Load call asks for.
fn device_of(device: pb::Device) -> Option<DeviceChoice> {
    match device {
        pb::Device::Unspecified => None,
        pb::Device::Auto => Some(DeviceChoice::Auto),
        pb::Device::Cpu => Some(DeviceChoice::Cpu),
        pb::Device::Cuda => Some(DeviceChoice::Cuda),
    }
}

/// A model reference a call must give.
fn required(model: &str) -> Result<&str, ApiError> {
    if model.is_empty() {
        Err(ApiError::invalid("model", "is required"))
    } else {
        Ok(model)
    }
}

#[tonic::async_trait]
impl ModelService for ModelApi {
    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let tenant = principal(&request)?.tenant;
        let body = request.into_inner();
        let size = PageRequest::parse(body.page_size, "")?.size;
        let kind = match body.kind() {
            pb::ModelKind::Unspecified => None,
            pb::ModelKind::Embedding => Some(ModelKind::Embedding),
            pb::ModelKind::Classifier => Some(ModelKind::Classifier),
            pb::ModelKind::CausalLm => Some(ModelKind::CausalLm),
            pb::ModelKind::Torchscript => Some(ModelKind::Torchscript),
        };
        let models: Vec<ModelInfo> = self
            .catalog
            .list(tenant, kind)
            .await?
            .into_iter()
            .filter(|m| body.page_token.is_empty() || m.id > body.page_token)
            .take(size as usize + 1)
            .collect();
        let (models, next_page_token) = split_page(models, size, |m| m.id.clone());
        Ok(Response::new(pb::ListModelsResponse {
            models: models.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn get_model(
        &self,
        request: Request<pb::GetModelRequest>,
    ) -> Result<Response<pb::GetModelResponse>, Status> {
        let scope = scope_of(&request)?;
        audit_resource(&request, &request.get_ref().model);
        let model = self
            .registry
            .get(scope, required(&request.get_ref().model)?)
            .await?
            .ok_or(ApiError::NotFound("model"))?;
        Ok(Response::new(pb::GetModelResponse {
            model: Some(model.into()),
        }))
    }

    async fn embed(
        &self,
        request: Request<pb::EmbedRequest>,
    ) -> Result<Response<pb::EmbedResponse>, Status> {
        let scope = scope_of(&request)?;
        audit_resource(&request, &request.get_ref().model);
        let body = request.into_inner();
        let texts = texts_of("texts", body.texts)?;
        let embedded = self.registry.embed(scope, &body.model, texts).await?;
        Ok(Response::new(pb::EmbedResponse {
            embeddings: embedded
                .vectors
                .into_iter()
                .map(|values| pb::Embedding { values })
                .collect(),
            model: embedded.model,
            dimensions: i32::try_from(embedded.dimensions).unwrap_or(i32::MAX),
            tokens: i64::try_from(embedded.tokens).unwrap_or(i64::MAX),
        }))
    }

    async fn register_model(
        &self,
        request: Request<Streaming<pb::RegisterModelRequest>>,
    ) -> Result<Response<pb::RegisterModelResponse>, Status> {
        let caller = principal(&request)?.clone();
        let audit = request.extensions().get::<AuditSlot>().cloned();
        let mut parts = request.into_inner();
        let Some(Part::Manifest(manifest)) = parts.message().await?.and_then(|m| m.part) else {
            return Err(ApiError::invalid("part", "the first message must be the manifest").into());
        };
        if let Some(audit) = audit {
            audit.set_resource(format!("{}@{}", manifest.name, manifest.version));
        }
        let manifest = manifest_of(manifest)?;
        let mut upload = self.catalog.start_upload(caller.tenant, manifest).await?;
        while let Some(message) = parts.message().await? {
            match message.part {
                Some(Part::Chunk(chunk)) => upload.model_chunk(&chunk).await,
                Some(Part::TokenizerJson(chunk)) => upload.tokenizer_chunk(&chunk).await,
                Some(Part::Manifest(_)) | None => {
                    return Err(ApiError::invalid(
                        "part",
                        "after the manifest, send only chunk and tokenizer_json",
                    )
                    .into());
                }
            }?;
        }
        let model = self.catalog.register(&caller, upload).await?;
        Ok(Response::new(pb::RegisterModelResponse {
            model: Some(model.into()),
        }))
    }

    async fn delete_model(
        &self,
        request: Request<pb::DeleteModelRequest>,
    ) -> Result<Response<pb::DeleteModelResponse>, Status> {
        audit_resource(&request, &request.get_ref().model);
        let caller = principal(&request)?;
        self.catalog
            .delete(&caller, required(&request.get_ref().model)?)
            .await?;
        Ok(Response::new(pb::DeleteModelResponse {}))
    }

    async fn load_model(
        &self,
        request: Request<pb::LoadModelRequest>,
    ) -> Result<Response<pb::LoadModelResponse>, Status> {
        audit_resource(&request, &request.get_ref().model);
        let caller = principal(&request)?;
        let body = request.get_ref();
        let model = self
            .catalog
            .load(&caller, required(&body.model)?, device_of(body.device()))
            .await?;
        Ok(Response::new(pb::LoadModelResponse {
            model: Some(model.into()),
        }))
    }

    async fn unload_model(
        &self,
        request: Request<pb::UnloadModelRequest>,
    ) -> Result<Response<pb::UnloadModelResponse>, Status> {
        audit_resource(&request, &request.get_ref().model);
        let caller = principal(&request)?;
        let model = self
            .catalog
            .unload(&caller, required(&request.get_ref().model)?)
            .await?;
        Ok(Response::new(pb::UnloadModelResponse {
            model: Some(model.into()),
        }))
    }

    async fn classify(
        &self,
        request: Request<pb::ClassifyRequest>,
    ) -> Result<Response<pb::ClassifyResponse>, Status> {
        let scope = scope_of(&request)?;
        let body = request.into_inner();
        let top_k = usize::try_from(body.top_k)
            .map_err(|_| ApiError::invalid("top_k", "must not be negative"))?;
        let texts = texts_of("texts", body.texts)?;
        let classified = self.registry.classify(scope, &body.model, texts).await?;
        Ok(Response::new(pb::ClassifyResponse {
            results: classified
                .results
                .into_iter()
                .map(|labels| pb::Classification {
                    labels: labels
                        .into_iter()
                        .take(if top_k == 0 { usize::MAX } else { top_k })
                        .map(|l| pb::LabelScore {
                            label: l.label,
                            score: l.score,
                        })
                        .collect(),
                })
                .collect(),
            model: classified.model,
        }))
    }

    async fn predict(
        &self,
        request: Request<pb::PredictRequest>,
    ) -> Result<Response<pb::PredictResponse>, Status> {
        let scope = scope_of(&request)?;
        let body = request.into_inner();
        required(&body.model)?;
        let inputs = tensors_of(body.inputs)?;
        let (model, outputs) = self.registry.predict(scope, &body.model, inputs).await?;
        Ok(Response::new(pb::PredictResponse {
            outputs: outputs
                .into_iter()
                .map(|(name, data)| {
                    let (float_values, int_values) = match data.values {
                        Values::Float(values) => (values, Vec::new()),
                        Values::Int(values) => (Vec::new(), values),
                    };
                    (
                        name,
                        pb::Tensor {
                            shape: data.shape,
                            float_values,
                            int_values,
                        },
                    )
                })
                .collect(),
            model,
        }))
    }

    type GenerateStream = ReceiverStream<Result<pb::GenerateResponse, Status>>;

    async fn generate(
        &self,
        request: Request<pb::GenerateRequest>,
    ) -> Result<Response<Self::GenerateStream>, Status> {
        let scope = scope_of(&request)?;
        let body = request.into_inner();
        let (prompt, sampling) = generation_of(&body)?;
        let (_, mut events) = self
            .registry
            .generate(scope, &body.model, prompt, sampling)
            .await?;
        let (out, stream) = mpsc::channel(32);
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    event = events.recv() => event,
                    () = out.closed() => return,
                };
                let message = match event {
                    None => return,
                    Some(Ok(Generated::Delta(delta))) => Ok(pb::GenerateResponse {
                        delta,
                        ..pb::GenerateResponse::default()
                    }),
                    Some(Ok(Generated::Done {
                        finish_reason,
                        prompt_tokens,
                        completion_tokens,
                    })) => Ok(pb::GenerateResponse {
                        delta: String::new(),
                        finish_reason: finish_reason.to_owned(),
                        prompt_tokens: i64::try_from(prompt_tokens).unwrap_or(i64::MAX),
                        completion_tokens: i64::try_from(completion_tokens).unwrap_or(i64::MAX),
                    }),
                    Some(Err(err)) => Err(Status::from(ApiError::from(err))),
                };
                if out.send(message).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(stream)))
    }
}
