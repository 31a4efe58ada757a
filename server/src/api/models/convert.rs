//! ModelService conversions: inference errors to API errors, models to proto.

use super::ApiError;
use crate::{
    api::convert::timestamp,
    inference::{InferenceError, ModelInfo, ModelKind, ModelState, device::DeviceChoice},
    pb::v1 as pb,
};

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

pub(super) fn kind_of(kind: ModelKind) -> pb::ModelKind {
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
