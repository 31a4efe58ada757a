//! ModelService: the local models of this replica and inference on them. Listing, lookup,
//! embeddings, classification, generation, generic prediction and load/unload (platform
//! operators) are served; model upload answers `UNIMPLEMENTED` until it is built.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

mod convert;
mod requests;

use requests::{generation_of, tensors_of, texts_of};

use super::{
    convert::{audit_resource, principal},
    error::ApiError,
    pagination::{PageRequest, split_page},
    pending::pending_status,
};
use crate::{
    auth::roles::PLATFORM_ADMIN,
    inference::{
        ModelInfo, ModelKind, Registry, device::DeviceChoice, generation::Generated,
        predict::Values,
    },
    pb::v1::{self as pb, model_service_server::ModelService},
};

/// The ModelService implementation.
pub struct ModelApi {
    registry: Arc<Registry>,
}

impl ModelApi {
    /// Serves the models of `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

/// Loading and unloading platform models changes service for every tenant: only
/// platform operators may.
fn platform_operator<T>(request: &Request<T>) -> Result<(), ApiError> {
    if principal(request)?.has_role(PLATFORM_ADMIN) {
        Ok(())
    } else {
        Err(ApiError::PermissionDenied(
            "loading and unloading models (shared by every tenant) needs platform-admin".to_owned(),
        ))
    }
}

fn pending(method: &str, missing: &str) -> Status {
    pending_status(pb::model_service_server::SERVICE_NAME, method, missing)
}

#[tonic::async_trait]
impl ModelService for ModelApi {
    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        principal(&request)?;
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
            .registry
            .list(kind)
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
        principal(&request)?;
        let model = self
            .registry
            .get(&request.get_ref().model)
            .ok_or(ApiError::NotFound("model"))?;
        Ok(Response::new(pb::GetModelResponse {
            model: Some(model.into()),
        }))
    }

    async fn embed(
        &self,
        request: Request<pb::EmbedRequest>,
    ) -> Result<Response<pb::EmbedResponse>, Status> {
        principal(&request)?;
        let body = request.into_inner();
        let texts = texts_of(body.texts)?;
        let embedded = self
            .registry
            .embed(&body.model, texts)
            .await
            .map_err(ApiError::from)?;
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
        _: Request<Streaming<pb::RegisterModelRequest>>,
    ) -> Result<Response<pb::RegisterModelResponse>, Status> {
        Err(pending("RegisterModel", "model upload is not built yet"))
    }

    async fn load_model(
        &self,
        request: Request<pb::LoadModelRequest>,
    ) -> Result<Response<pb::LoadModelResponse>, Status> {
        platform_operator(&request)?;
        audit_resource(&request, &request.get_ref().model);
        let body = request.into_inner();
        let device = match body.device() {
            pb::Device::Unspecified => None,
            pb::Device::Auto => Some(DeviceChoice::Auto),
            pb::Device::Cpu => Some(DeviceChoice::Cpu),
            pb::Device::Cuda => Some(DeviceChoice::Cuda),
        };
        let registry = self.registry.clone();
        let model = tokio::task::spawn_blocking(move || registry.load_model(&body.model, device))
            .await
            .map_err(|err| ApiError::Internal(err.to_string()))?
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::LoadModelResponse {
            model: Some(model.into()),
        }))
    }

    async fn unload_model(
        &self,
        request: Request<pb::UnloadModelRequest>,
    ) -> Result<Response<pb::UnloadModelResponse>, Status> {
        platform_operator(&request)?;
        audit_resource(&request, &request.get_ref().model);
        let model = self
            .registry
            .unload_model(&request.get_ref().model)
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::UnloadModelResponse {
            model: Some(model.into()),
        }))
    }

    async fn classify(
        &self,
        request: Request<pb::ClassifyRequest>,
    ) -> Result<Response<pb::ClassifyResponse>, Status> {
        principal(&request)?;
        let body = request.into_inner();
        let top_k = usize::try_from(body.top_k)
            .map_err(|_| ApiError::invalid("top_k", "must not be negative"))?;
        let texts = texts_of(body.texts)?;
        let classified = self
            .registry
            .classify(&body.model, texts)
            .await
            .map_err(ApiError::from)?;
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
        principal(&request)?;
        let body = request.into_inner();
        if body.model.is_empty() {
            return Err(ApiError::invalid("model", "is required").into());
        }
        let inputs = tensors_of(body.inputs)?;
        let (model, outputs) = self
            .registry
            .predict(&body.model, inputs)
            .await
            .map_err(ApiError::from)?;
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
        principal(&request)?;
        let body = request.into_inner();
        let (prompt, sampling) = generation_of(&body)?;
        let (_, mut events) = self
            .registry
            .generate(&body.model, prompt, sampling)
            .map_err(ApiError::from)?;
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
