//! ModelService: the local models of this replica and inference on them. Listing, lookup,
//! embeddings, classification, generation, generic prediction and load/unload (platform
//! operators) are served; model upload answers `UNIMPLEMENTED` until it is built.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{
    convert::{audit_resource, principal, timestamp},
    error::ApiError,
    pagination::{PageRequest, split_page},
    pending::pending_status,
};
use crate::{
    auth::roles::PLATFORM_ADMIN,
    inference::{
        InferenceError, ModelInfo, ModelKind, ModelState, Registry,
        device::DeviceChoice,
        generation::{ChatTurn, Generated, Prompt, Sampling},
        predict::{TensorData, Tensors, Values},
    },
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
            ModelState::Unloaded => (
                pb::ModelState::Registered,
                pb::Device::Unspecified,
                String::new(),
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

/// Most values in the inputs of one Predict call.
const MAX_PREDICT_VALUES: usize = 4 << 20;

/// The named tensors of a Predict call, checked: a shape that holds exactly its values,
/// one kind of values each.
fn tensors_of(inputs: std::collections::HashMap<String, pb::Tensor>) -> Result<Tensors, ApiError> {
    if inputs.is_empty() {
        return Err(ApiError::invalid(
            "inputs",
            "give the model's inputs by name",
        ));
    }
    let mut total = 0usize;
    let mut tensors = Tensors::new();
    for (name, tensor) in inputs {
        let elements = tensor.shape.iter().try_fold(1usize, |n, &d| {
            usize::try_from(d).ok().and_then(|d| n.checked_mul(d))
        });
        let (values, count) = match (tensor.float_values.is_empty(), tensor.int_values.is_empty()) {
            (false, true) => {
                let count = tensor.float_values.len();
                (Values::Float(tensor.float_values), count)
            }
            (true, false) => {
                let count = tensor.int_values.len();
                (Values::Int(tensor.int_values), count)
            }
            _ => {
                return Err(ApiError::invalid(
                    "inputs",
                    format!("{name:?}: set exactly one of float_values and int_values"),
                ));
            }
        };
        if elements != Some(count) {
            return Err(ApiError::invalid(
                "inputs",
                format!(
                    "{name:?}: shape {:?} does not hold {count} values",
                    tensor.shape
                ),
            ));
        }
        total += count;
        if total > MAX_PREDICT_VALUES {
            return Err(ApiError::invalid(
                "inputs",
                format!("at most {MAX_PREDICT_VALUES} values in all"),
            ));
        }
        tensors.insert(
            name,
            TensorData {
                shape: tensor.shape,
                values,
            },
        );
    }
    Ok(tensors)
}

/// Most characters of a prompt or of one chat message.
const MAX_PROMPT_CHARS: usize = 100_000;
/// Most chat messages.
const MAX_MESSAGES: usize = 64;

/// The prompt and sampling of a Generate call, checked.
fn generation_of(body: &pb::GenerateRequest) -> Result<(Prompt, Sampling), ApiError> {
    let prompt = match &body.input {
        Some(pb::generate_request::Input::Prompt(text))
            if !text.trim().is_empty() && text.chars().count() <= MAX_PROMPT_CHARS =>
        {
            Prompt::Raw(text.clone())
        }
        Some(pb::generate_request::Input::Prompt(_)) => {
            return Err(ApiError::invalid(
                "prompt",
                format!("must be 1 to {MAX_PROMPT_CHARS} characters"),
            ));
        }
        Some(pb::generate_request::Input::Messages(chat)) => {
            if chat.messages.is_empty() || chat.messages.len() > MAX_MESSAGES {
                return Err(ApiError::invalid(
                    "messages",
                    format!("give 1 to {MAX_MESSAGES} messages"),
                ));
            }
            let mut turns = Vec::with_capacity(chat.messages.len());
            for message in &chat.messages {
                if !matches!(message.role.as_str(), "system" | "user" | "assistant") {
                    return Err(ApiError::invalid(
                        "messages.role",
                        "must be system, user or assistant",
                    ));
                }
                if message.content.chars().count() > MAX_PROMPT_CHARS {
                    return Err(ApiError::invalid(
                        "messages.content",
                        format!("must be at most {MAX_PROMPT_CHARS} characters"),
                    ));
                }
                turns.push(ChatTurn {
                    role: message.role.clone(),
                    content: message.content.clone(),
                });
            }
            Prompt::Chat(turns)
        }
        None => return Err(ApiError::invalid("input", "give a prompt or messages")),
    };
    let temperature = body.temperature.unwrap_or(0.7);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid("temperature", "must be 0 to 2"));
    }
    let top_p = body.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid(
            "top_p",
            "must be more than 0 and at most 1",
        ));
    }
    let max_tokens = match body.max_tokens {
        0 => 256,
        n @ 1..=4096 => usize::try_from(n).unwrap_or(256),
        _ => return Err(ApiError::invalid("max_tokens", "must be 1 to 4096")),
    };
    if body.stop.len() > 4
        || body
            .stop
            .iter()
            .any(|s| s.is_empty() || s.chars().count() > 64)
    {
        return Err(ApiError::invalid(
            "stop",
            "at most 4 strings of 1 to 64 characters",
        ));
    }
    Ok((
        prompt,
        Sampling {
            temperature,
            top_p,
            max_tokens,
            stop: body.stop.clone(),
            seed: body.seed,
        },
    ))
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
