//! ModelService conversions: inference, catalog and provider embedding errors to API
//! errors, models to proto.

use super::{ApiError, manifest::manifest_to_pb};
use crate::{
    api::convert::timestamp,
    inference::{InferenceError, ModelInfo, ModelState},
    llm::EmbeddingError,
    model_catalog::CatalogError,
    pb::v1 as pb,
};

impl From<EmbeddingError> for ApiError {
    fn from(err: EmbeddingError) -> Self {
        match err {
            EmbeddingError::Provider(err) => err.into(),
            EmbeddingError::Llm(err) => err.into(),
            EmbeddingError::PhiRefused { .. } => ApiError::FailedPrecondition(err.to_string()),
        }
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

impl From<CatalogError> for ApiError {
    fn from(err: CatalogError) -> Self {
        match err {
            CatalogError::Disabled | CatalogError::PlatformModel(_) => {
                ApiError::FailedPrecondition(err.to_string())
            }
            CatalogError::Invalid { field, reason } => ApiError::invalid(field, reason),
            CatalogError::Exists(message) => ApiError::AlreadyExists(message),
            CatalogError::TooMany(_) => ApiError::ResourceExhausted {
                message: err.to_string(),
                retry_after: None,
            },
            CatalogError::NotFound => ApiError::NotFound("model"),
            CatalogError::Forbidden(message) => ApiError::PermissionDenied(message),
            CatalogError::Inference(err) => err.into(),
            CatalogError::Store(err) => err.into(),
            CatalogError::Corrupt(_) | CatalogError::Io(_) | CatalogError::Crypto(_) => {
                ApiError::Internal(err.to_string())
            }
        }
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
        Self {
            id: info.id.clone(),
            manifest: Some(manifest_to_pb(&info.manifest)),
            state: state.into(),
            device: device.into(),
            error,
            tenant_private: info.owner.is_some(),
            size_bytes: i64::try_from(info.size_bytes).unwrap_or(i64::MAX),
            create_time: Some(timestamp(info.created)),
        }
    }
}
