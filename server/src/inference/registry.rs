//! The models this replica serves: every folder of `inference.models_dir` holding a
//! `manifest.toml`, loaded at start. A model whose file fails its checksum or does not
//! load is listed as failed with the reason, and the others serve as usual. Models are
//! platform-wide: every tenant sees them.

use std::{collections::BTreeMap, path::Path, sync::Arc, time::Instant};

use time::OffsetDateTime;

use super::{
    InferenceError,
    device::{self, DeviceChoice},
    embedding::EmbeddingRunner,
    manifest::{Manifest, ModelKind},
    worker::{Batching, Runner, Worker},
};
use crate::{config::InferenceConfig, telemetry::Metrics};

/// Whether a model serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelState {
    /// Loaded on this device.
    Ready(tch::Device),
    /// Refused at load, with the reason.
    Failed(String),
}

/// What the API shows of a model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// `name@version`.
    pub id: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// Whether it serves.
    pub state: ModelState,
    /// Size of its file.
    pub size_bytes: u64,
    /// When the file was written.
    pub created: OffsetDateTime,
}

/// Vectors of an Embed call.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// The model's id.
    pub model: String,
    /// Vector size.
    pub dimensions: usize,
    /// One vector per text.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens processed.
    pub tokens: usize,
}

/// A model and its worker (when it serves).
struct Entry {
    info: ModelInfo,
    embedder: Option<Worker<Vec<f32>>>,
}

/// The models of this replica.
pub struct Registry {
    models: BTreeMap<String, Arc<Entry>>,
    default_embedding: String,
}

impl Registry {
    /// A registry without models (inference not configured).
    pub fn empty() -> Self {
        Self {
            models: BTreeMap::new(),
            default_embedding: String::new(),
        }
    }

    /// Loads every model under `config.models_dir`; blocks while models load and warm
    /// up, so call it off the async runtime.
    pub fn open(config: &InferenceConfig, metrics: &Arc<Metrics>) -> Self {
        let Some(dir) = &config.models_dir else {
            tracing::info!("inference.models_dir is not set: no local models");
            return Self::empty();
        };
        if config.threads > 0 {
            tch::set_num_threads(i32::try_from(config.threads).unwrap_or(i32::MAX));
        }
        let cuda = device::cuda_available();
        let mut folders: Vec<_> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.join("manifest.toml").is_file())
                .collect(),
            Err(err) => {
                tracing::warn!(dir = %dir.display(), error = %err, "models folder unreadable: no local models");
                Vec::new()
            }
        };
        folders.sort();
        let mut models = BTreeMap::new();
        for folder in folders {
            match load(&folder, config, cuda, metrics) {
                Ok(entry) => {
                    models.insert(entry.info.id.clone(), Arc::new(entry));
                }
                Err(err) => {
                    tracing::error!(error = %err, "model skipped: its manifest is unusable")
                }
            }
        }
        Self {
            models,
            default_embedding: config.default_embedding.clone(),
        }
    }

    /// The models, by id, of `kind` when given.
    pub fn list(&self, kind: Option<ModelKind>) -> Vec<ModelInfo> {
        self.models
            .values()
            .filter(|e| kind.is_none_or(|k| e.info.manifest.kind == k))
            .map(|e| e.info.clone())
            .collect()
    }

    /// The model `reference` names: `name@version`, or `name` for its newest version.
    pub fn get(&self, reference: &str) -> Option<ModelInfo> {
        self.entry(reference).map(|e| e.info.clone())
    }

    fn entry(&self, reference: &str) -> Option<&Arc<Entry>> {
        self.models.get(reference).or_else(|| {
            self.models
                .values()
                .filter(|e| e.info.manifest.name == reference)
                .max_by(|a, b| a.info.manifest.version.cmp(&b.info.manifest.version))
        })
    }

    /// Embeds `texts` with `model` (empty: `inference.default_embedding`).
    ///
    /// # Errors
    /// [`InferenceError`] when the model is unknown, of another kind, not ready, busy, or
    /// fails.
    pub async fn embed(&self, model: &str, texts: Vec<String>) -> Result<Embedded, InferenceError> {
        let reference = if model.is_empty() {
            self.default_embedding.as_str()
        } else {
            model
        };
        let entry = self
            .entry(reference)
            .ok_or_else(|| InferenceError::NotFound(reference.to_owned()))?;
        let worker = match (&entry.embedder, &entry.info.state) {
            (Some(worker), _) => worker,
            (None, ModelState::Failed(reason)) => {
                return Err(InferenceError::NotReady {
                    model: entry.info.id.clone(),
                    reason: reason.clone(),
                });
            }
            (None, ModelState::Ready(_)) => {
                return Err(InferenceError::WrongKind {
                    model: entry.info.id.clone(),
                    kind: entry.info.manifest.kind.as_str(),
                    call: "Embed",
                    needs: "embedding",
                });
            }
        };
        let (vectors, tokens) = worker.run(texts).await?;
        Ok(Embedded {
            model: entry.info.id.clone(),
            dimensions: entry.info.manifest.dimensions,
            vectors,
            tokens,
        })
    }
}

/// Reads, verifies and loads the model in `folder`. A model that fails after its manifest
/// was read comes back as a failed entry.
fn load(
    folder: &Path,
    config: &InferenceConfig,
    cuda: bool,
    metrics: &Arc<Metrics>,
) -> Result<Entry, InferenceError> {
    let manifest = Manifest::read(folder)?;
    let id = format!("{}@{}", manifest.name, manifest.version);
    let metadata = std::fs::metadata(folder.join(&manifest.file)).ok();
    let mut info = ModelInfo {
        id: id.clone(),
        size_bytes: metadata.as_ref().map_or(0, std::fs::Metadata::len),
        created: metadata
            .and_then(|m| m.modified().ok())
            .map_or(OffsetDateTime::UNIX_EPOCH, OffsetDateTime::from),
        state: ModelState::Failed(String::new()),
        manifest,
    };
    let choice = config
        .devices
        .get(&info.manifest.name)
        .copied()
        .or(Some(config.device).filter(|d| *d != DeviceChoice::Auto))
        .unwrap_or(info.manifest.device);
    let started = Instant::now();
    let loaded = device::resolve(choice, cuda)
        .map_err(InferenceError::Failed)
        .and_then(|device| start(&info, folder, device, config, metrics).map(|w| (device, w)));
    let embedder = match loaded {
        Ok((device, worker)) => {
            tracing::info!(model = %id, ?device, ms = started.elapsed().as_millis(), "model ready");
            info.state = ModelState::Ready(device);
            worker
        }
        Err(err) => {
            tracing::error!(model = %id, error = %err, "model refused");
            info.state = ModelState::Failed(err.to_string());
            None
        }
    };
    Ok(Entry { info, embedder })
}

/// Loads and warms up the model of `info` on `device` and starts its worker; `None` for
/// kinds this build loads without serving yet.
fn start(
    info: &ModelInfo,
    folder: &Path,
    device: tch::Device,
    config: &InferenceConfig,
    metrics: &Arc<Metrics>,
) -> Result<Option<Worker<Vec<f32>>>, InferenceError> {
    let file = info.manifest.verify_file(folder)?;
    let batching = Batching {
        max_batch: info.manifest.max_batch,
        max_wait: info.manifest.max_wait,
        queue: config.queue,
    };
    match info.manifest.kind {
        ModelKind::Embedding => {
            let mut runner = EmbeddingRunner::load(&info.manifest, folder, &file, device)?;
            runner.run(&["warm-up".to_owned()])?;
            Worker::start(&info.id, runner, batching, metrics.clone()).map(Some)
        }
        ModelKind::Classifier | ModelKind::CausalLm | ModelKind::Torchscript => {
            Err(InferenceError::Failed(format!(
                "{} models are not served by this build yet",
                info.manifest.kind.as_str()
            )))
        }
    }
}
