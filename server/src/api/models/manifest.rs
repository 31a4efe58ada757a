//! ModelService manifests: the proto form of an upload to the server's, and back. Unset
//! numbers take the defaults a `manifest.toml` would get.

use std::time::Duration;

use crate::{
    config::DeviceChoice,
    edge::ApiError,
    inference::{
        Manifest, ModelKind,
        manifest::{
            GenerationSettings, Precision, default_max_batch, default_max_length, default_max_wait,
            default_workers,
        },
    },
    pb::v1 as pb,
};

/// A count of the manifest, `default` when 0.
fn count(field: &'static str, value: i32, default: usize) -> Result<usize, ApiError> {
    match usize::try_from(value) {
        Ok(0) => Ok(default),
        Ok(value) => Ok(value),
        Err(_) => Err(ApiError::invalid(field, "must not be negative")),
    }
}

/// The manifest of an upload; the server names the files.
pub(super) fn manifest_of(manifest: pb::ModelManifest) -> Result<Manifest, ApiError> {
    let kind = match manifest.kind() {
        pb::ModelKind::Unspecified => {
            return Err(ApiError::invalid(
                "manifest.kind",
                "say what the model does: EMBEDDING, CLASSIFIER, CAUSAL_LM or TORCHSCRIPT",
            ));
        }
        pb::ModelKind::Embedding => ModelKind::Embedding,
        pb::ModelKind::Classifier => ModelKind::Classifier,
        pb::ModelKind::CausalLm => ModelKind::CausalLm,
        pb::ModelKind::Torchscript => ModelKind::Torchscript,
    };
    if manifest.threads != 0 {
        return Err(ApiError::invalid(
            "manifest.threads",
            "a tenant's model runs with the threads the operator set (inference.threads); \
             leave it 0",
        ));
    }
    let device = match manifest.preferred_device() {
        pb::Device::Unspecified | pb::Device::Auto => DeviceChoice::Auto,
        pb::Device::Cpu => DeviceChoice::Cpu,
        pb::Device::Cuda => DeviceChoice::Cuda,
    };
    let precision = match manifest.precision() {
        pb::Precision::Unspecified | pb::Precision::Fp32 => Precision::Fp32,
        pb::Precision::Fp16 => Precision::Fp16,
        pb::Precision::Bf16 => Precision::Bf16,
    };
    let max_wait = match u64::try_from(manifest.max_wait_us) {
        Ok(0) => default_max_wait(),
        Ok(us) => Duration::from_micros(us),
        Err(_) => {
            return Err(ApiError::invalid(
                "manifest.max_wait_us",
                "must not be negative",
            ));
        }
    };
    let generation = manifest.generation.map(|g| GenerationSettings {
        layers: i64::from(g.layers),
        kv_heads: i64::from(g.kv_heads),
        head_dim: i64::from(g.head_dim),
        chat_template: g.chat_template,
        default_system: g.default_system,
        stop_tokens: g.stop_tokens,
    });
    Ok(Manifest {
        name: manifest.name,
        version: manifest.version,
        kind,
        file: std::path::PathBuf::new(),
        sha256: manifest.sha256,
        tokenizer: None,
        encoder: Some(manifest.encoder).filter(|e| !e.is_empty()),
        labels: manifest.labels,
        max_length: count(
            "manifest.max_length",
            manifest.max_length,
            default_max_length(),
        )?,
        dimensions: count("manifest.dimensions", manifest.dimensions, 0)?,
        device,
        precision,
        max_batch: count(
            "manifest.max_batch",
            manifest.max_batch,
            default_max_batch(),
        )?,
        max_wait,
        inputs: manifest.inputs,
        outputs: manifest.outputs,
        generation,
        workers: default_workers(),
        threads: 0,
    })
}

/// What a client sees of a manifest.
pub(super) fn manifest_to_pb(manifest: &Manifest) -> pb::ModelManifest {
    let preferred = match manifest.device {
        DeviceChoice::Auto => pb::Device::Auto,
        DeviceChoice::Cpu => pb::Device::Cpu,
        DeviceChoice::Cuda => pb::Device::Cuda,
    };
    let precision = match manifest.precision {
        Precision::Fp32 => pb::Precision::Fp32,
        Precision::Fp16 => pb::Precision::Fp16,
        Precision::Bf16 => pb::Precision::Bf16,
    };
    let int = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let narrow = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
    pb::ModelManifest {
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
        max_length: int(manifest.max_length),
        dimensions: int(manifest.dimensions),
        preferred_device: preferred.into(),
        threads: int(manifest.threads),
        max_batch: int(manifest.max_batch),
        max_wait_us: i32::try_from(manifest.max_wait.as_micros()).unwrap_or(i32::MAX),
        encoder: manifest.encoder.clone().unwrap_or_default(),
        inputs: manifest.inputs.clone(),
        outputs: manifest.outputs.clone(),
        precision: precision.into(),
        generation: manifest
            .generation
            .as_ref()
            .map(|g| pb::GenerationSettings {
                layers: narrow(g.layers),
                kv_heads: narrow(g.kv_heads),
                head_dim: narrow(g.head_dim),
                chat_template: g.chat_template.clone(),
                default_system: g.default_system.clone(),
                stop_tokens: g.stop_tokens.clone(),
            }),
    }
}

/// The proto kind of a model.
pub(super) fn kind_of(kind: ModelKind) -> pb::ModelKind {
    match kind {
        ModelKind::Embedding => pb::ModelKind::Embedding,
        ModelKind::Classifier => pb::ModelKind::Classifier,
        ModelKind::CausalLm => pb::ModelKind::CausalLm,
        ModelKind::Torchscript => pb::ModelKind::Torchscript,
    }
}
