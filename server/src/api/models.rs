//! ModelService: the local models of this replica and inference on them. Listing, lookup,
//! embeddings and classification are served; model upload, load/unload, generic
//! prediction and generation answer `UNIMPLEMENTED` until they are built.

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};

use super::{
    convert::{principal, timestamp},
    error::ApiError,
    pagination::{PageRequest, split_page},
    pending::pending_status,
};
use crate::{
    inference::{InferenceError, ModelInfo, ModelKind, ModelState, Registry, device::DeviceChoice},
    pb::v1::{self as pb, model_service_server::ModelService},
};

/// Most texts per Embed call.
const MAX_TEXTS: usize = 256;
/// Most characters of one text.
const MAX_TEXT_CHARS: usize = 100_000;

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

impl From<InferenceError> for ApiError {
    fn from(err: InferenceError) -> Self {
        match err {
            InferenceError::NotFound(_) => ApiError::NotFound("model"),
            InferenceError::WrongKind { .. } => ApiError::invalid("model", err.to_string()),
            InferenceError::Invalid { field, reason } => ApiError::invalid(field, reason),
            InferenceError::NotReady { .. } => ApiError::FailedPrecondition(err.to_string()),
            InferenceError::Busy(_) => ApiError::ResourceExhausted {
                message: err.to_string(),
                retry_after: Some(1),
            },
            InferenceError::Stopped => ApiError::Unavailable(err.to_string()),
            InferenceError::BadManifest { .. }
            | InferenceError::Io { .. }
            | InferenceError::Checksum { .. }
            | InferenceError::Load { .. }
            | InferenceError::Failed(_) => ApiError::Internal(err.to_string()),
        }
    }
}

fn kind_of(kind: ModelKind) -> pb::ModelKind {
    match kind {
        ModelKind::Embedding => pb::ModelKind::Embedding,
        ModelKind::Classifier => pb::ModelKind::Classifier,
        ModelKind::CausalLm => pb::ModelKind::CausalLm,
        ModelKind::Torchscript => pb::ModelKind::Torchscript,
    }
}

fn device_of(device: tch::Device) -> pb::Device {
    if device.is_cuda() {
        pb::Device::Cuda
    } else {
        pb::Device::Cpu
    }
}

impl From<ModelInfo> for pb::Model {
    fn from(info: ModelInfo) -> Self {
        let manifest = &info.manifest;
        let (state, device, error) = match &info.state {
            ModelState::Ready(device) => (pb::ModelState::Ready, device_of(*device), String::new()),
            ModelState::Failed(reason) => (
                pb::ModelState::Failed,
                pb::Device::Unspecified,
                reason.clone(),
            ),
        };
        let preferred = match manifest.device {
            DeviceChoice::Auto => pb::Device::Auto,
            DeviceChoice::Cpu => pb::Device::Cpu,
            DeviceChoice::Cuda => pb::Device::Cuda,
        };
        Self {
            id: info.id.clone(),
            manifest: Some(pb::ModelManifest {
                name: manifest.name.clone(),
                version: manifest.version.clone(),
                kind: kind_of(manifest.kind).into(),
                sha256: manifest.sha256.clone(),
                tokenizer: manifest
                    .tokenizer
                    .as_ref()
                    .map(|t| t.display().to_string())
                    .unwrap_or_default(),
                labels: manifest.labels.clone(),
                max_length: i32::try_from(manifest.max_length).unwrap_or(i32::MAX),
                dimensions: i32::try_from(manifest.dimensions).unwrap_or(i32::MAX),
                preferred_device: preferred.into(),
                threads: 0,
                max_batch: i32::try_from(manifest.max_batch).unwrap_or(i32::MAX),
                max_wait_us: i32::try_from(manifest.max_wait.as_micros()).unwrap_or(i32::MAX),
            }),
            state: state.into(),
            device: device.into(),
            error,
            tenant_private: false,
            size_bytes: i64::try_from(info.size_bytes).unwrap_or(i64::MAX),
            create_time: Some(timestamp(info.created)),
        }
    }
}

/// The texts of an Embed or Classify call, checked.
fn texts_of(texts: Vec<String>) -> Result<Vec<String>, ApiError> {
    if texts.is_empty() || texts.len() > MAX_TEXTS {
        return Err(ApiError::invalid(
            "texts",
            format!("give 1 to {MAX_TEXTS} texts"),
        ));
    }
    if texts.iter().any(|t| t.chars().count() > MAX_TEXT_CHARS) {
        return Err(ApiError::invalid(
            "texts",
            format!("each text may have at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(texts)
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
        _: Request<pb::LoadModelRequest>,
    ) -> Result<Response<pb::LoadModelResponse>, Status> {
        Err(pending("LoadModel", "loading at run time is not built yet"))
    }

    async fn unload_model(
        &self,
        _: Request<pb::UnloadModelRequest>,
    ) -> Result<Response<pb::UnloadModelResponse>, Status> {
        Err(pending(
            "UnloadModel",
            "unloading at run time is not built yet",
        ))
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
        _: Request<pb::PredictRequest>,
    ) -> Result<Response<pb::PredictResponse>, Status> {
        Err(pending(
            "Predict",
            "generic TorchScript models are not served yet",
        ))
    }

    type GenerateStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::GenerateResponse, Status>> + Send>,
    >;

    async fn generate(
        &self,
        _: Request<pb::GenerateRequest>,
    ) -> Result<Response<Self::GenerateStream>, Status> {
        Err(pending(
            "Generate",
            "local text generation is not built yet",
        ))
    }
}
