//! The models this replica serves: every folder of `inference.models_dir` holding a
//! `manifest.toml`, loaded at start. A model whose file fails its checksum or does not
//! load is listed as failed with the reason, and the others serve as usual. Models are
//! platform-wide: every tenant sees them.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Instant,
};

use time::OffsetDateTime;

use super::{
    InferenceError,
    classifier::{ClassifierRunner, LabelScore},
    device::{self, DeviceChoice},
    embedding::EmbeddingRunner,
    generation::{Generated, GenerationWorker, Prompt, Sampling},
    manifest::{Manifest, ModelKind},
    predict::{PredictRunner, Tensors},
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
    /// Unloaded at run time (LoadModel brings it back).
    Unloaded,
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

/// Labels of a Classify call.
#[derive(Debug, Clone)]
pub struct Classified {
    /// The model's id.
    pub model: String,
    /// Per text, every label with its probability, best first.
    pub results: Vec<Vec<LabelScore>>,
}

/// The worker of a model that serves.
enum Serving {
    Embedding(Worker<String, Vec<f32>>),
    Classifier(Worker<String, Vec<LabelScore>>),
    Predict(Worker<Tensors, Result<Tensors, String>>),
    Generation(GenerationWorker),
}

/// A model, where it lives, and its worker (when it serves).
pub(super) struct Entry {
    pub(super) info: ModelInfo,
    pub(super) folder: PathBuf,
    serving: Option<Serving>,
}

impl Entry {
    /// A model that does not serve.
    pub(super) fn idle(info: ModelInfo, folder: PathBuf) -> Self {
        Self {
            info,
            folder,
            serving: None,
        }
    }
}

/// What loading a model at run time needs.
pub(super) struct Loader {
    pub(super) config: InferenceConfig,
    pub(super) cuda: bool,
    pub(super) metrics: Arc<Metrics>,
}

/// The models of this replica. Requests hold the entry they use, so a model unloaded or
/// reloaded meanwhile finishes what it was asked before its worker stops.
pub struct Registry {
    pub(super) models: RwLock<BTreeMap<String, Arc<Entry>>>,
    pub(super) loader: Loader,
    default_embedding: String,
    default_classifier: String,
    default_generation: String,
}

impl Registry {
    /// A registry without models (inference not configured).
    pub fn empty(metrics: &Arc<Metrics>) -> Self {
        Self {
            models: RwLock::new(BTreeMap::new()),
            loader: Loader {
                config: InferenceConfig::default(),
                cuda: false,
                metrics: metrics.clone(),
            },
            default_embedding: String::new(),
            default_classifier: String::new(),
            default_generation: String::new(),
        }
    }

    /// Loads every model under `config.models_dir`; blocks while models load and warm
    /// up, so call it off the async runtime.
    pub fn open(config: &InferenceConfig, metrics: &Arc<Metrics>) -> Self {
        let Some(dir) = &config.models_dir else {
            tracing::info!("inference.models_dir is not set: no local models");
            return Self::empty(metrics);
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
        let mut manifests = Vec::new();
        for folder in folders {
            match Manifest::read(&folder) {
                Ok(manifest) => manifests.push((folder, manifest)),
                Err(err) => {
                    tracing::error!(error = %err, "model skipped: its manifest is unusable");
                }
            }
        }
        // Encoders first: classifiers read their vectors.
        manifests.sort_by_key(|(_, manifest)| manifest.encoder.is_some());
        let mut models: BTreeMap<String, Arc<Entry>> = BTreeMap::new();
        for (folder, manifest) in manifests {
            let entry = load(folder, manifest, &models, config, cuda, metrics);
            models.insert(entry.info.id.clone(), Arc::new(entry));
        }
        Self {
            models: RwLock::new(models),
            loader: Loader {
                config: config.clone(),
                cuda,
                metrics: metrics.clone(),
            },
            default_embedding: config.default_embedding.clone(),
            default_classifier: config.default_classifier.clone(),
            default_generation: config.default_generation.clone(),
        }
    }

    /// The models, by id, of `kind` when given.
    pub fn list(&self, kind: Option<ModelKind>) -> Vec<ModelInfo> {
        self.snapshot()
            .values()
            .filter(|e| kind.is_none_or(|k| e.info.manifest.kind == k))
            .map(|e| e.info.clone())
            .collect()
    }

    /// Names of the language models that serve, the default one first.
    pub fn generation_models(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .snapshot()
            .values()
            .filter(|e| e.info.manifest.kind == ModelKind::CausalLm && e.serving.is_some())
            .map(|e| e.info.manifest.name.clone())
            .collect();
        names.sort_by_key(|name| *name != self.default_generation);
        names.dedup();
        names
    }

    /// The model `reference` names: `name@version`, or `name` for its newest version.
    pub fn get(&self, reference: &str) -> Option<ModelInfo> {
        self.entry(reference).map(|e| e.info.clone())
    }

    /// The models as they are now.
    pub(super) fn snapshot(&self) -> BTreeMap<String, Arc<Entry>> {
        self.models
            .read()
            .map(|models| models.clone())
            .unwrap_or_default()
    }

    pub(super) fn entry(&self, reference: &str) -> Option<Arc<Entry>> {
        find(&self.snapshot(), reference).cloned()
    }

    /// The serving entry `model` names (empty: `default`), or why it cannot serve `call`.
    fn serving(
        &self,
        model: &str,
        default: &str,
        call: &'static str,
        needs: ModelKind,
    ) -> Result<Arc<Entry>, InferenceError> {
        let reference = if model.is_empty() { default } else { model };
        let entry = self
            .entry(reference)
            .ok_or_else(|| InferenceError::NotFound(reference.to_owned()))?;
        if entry.info.manifest.kind != needs {
            return Err(InferenceError::WrongKind {
                model: entry.info.id.clone(),
                kind: entry.info.manifest.kind.as_str(),
                call,
                needs: needs.as_str(),
            });
        }
        let reason = match (&entry.serving, &entry.info.state) {
            (Some(_), _) => return Ok(entry),
            (None, ModelState::Failed(reason)) => reason.clone(),
            (None, ModelState::Unloaded) => "it was unloaded (see LoadModel)".to_owned(),
            (None, ModelState::Ready(_)) => "it does not serve".to_owned(),
        };
        Err(InferenceError::NotReady {
            model: entry.info.id.clone(),
            reason,
        })
    }

    /// Starts generating with `model` (empty: `inference.default_generation`); returns
    /// the model's id and the channel the text arrives on (drop it to cancel).
    ///
    /// # Errors
    /// [`InferenceError`] when the model is unknown, of another kind, not ready or busy.
    pub fn generate(
        &self,
        model: &str,
        prompt: Prompt,
        sampling: Sampling,
    ) -> Result<
        (
            String,
            tokio::sync::mpsc::Receiver<Result<Generated, InferenceError>>,
        ),
        InferenceError,
    > {
        let entry = self.serving(
            model,
            &self.default_generation,
            "Generate",
            ModelKind::CausalLm,
        )?;
        let Some(Serving::Generation(worker)) = &entry.serving else {
            return Err(InferenceError::Stopped);
        };
        Ok((entry.info.id.clone(), worker.generate(prompt, sampling)?))
    }

    /// Labels `texts` with `model` (empty: `inference.default_classifier`).
    ///
    /// # Errors
    /// [`InferenceError`] when the model is unknown, of another kind, not ready, busy, or
    /// fails.
    pub async fn classify(
        &self,
        model: &str,
        texts: Vec<String>,
    ) -> Result<Classified, InferenceError> {
        let entry = self.serving(
            model,
            &self.default_classifier,
            "Classify",
            ModelKind::Classifier,
        )?;
        let Some(Serving::Classifier(worker)) = &entry.serving else {
            return Err(InferenceError::Stopped);
        };
        let (results, _) = worker.run(texts).await?;
        Ok(Classified {
            model: entry.info.id.clone(),
            results,
        })
    }

    /// Runs the generic model `model` on named `inputs`; returns its id and the outputs.
    ///
    /// # Errors
    /// [`InferenceError`] when the model is unknown, of another kind, not ready or busy;
    /// [`InferenceError::Invalid`] when the inputs do not fit it.
    pub async fn predict(
        &self,
        model: &str,
        inputs: Tensors,
    ) -> Result<(String, Tensors), InferenceError> {
        let entry = self.serving(model, "", "Predict", ModelKind::Torchscript)?;
        let Some(Serving::Predict(worker)) = &entry.serving else {
            return Err(InferenceError::Stopped);
        };
        let (mut outputs, _) = worker.run(vec![inputs]).await?;
        let output = outputs.pop().ok_or(InferenceError::Stopped)?;
        let output = output.map_err(|reason| InferenceError::Invalid {
            field: "inputs",
            reason,
        })?;
        Ok((entry.info.id.clone(), output))
    }

    /// Embeds `texts` with `model` (empty: `inference.default_embedding`).
    ///
    /// # Errors
    /// [`InferenceError`] when the model is unknown, of another kind, not ready, busy, or
    /// fails.
    pub async fn embed(&self, model: &str, texts: Vec<String>) -> Result<Embedded, InferenceError> {
        let entry = self.serving(
            model,
            &self.default_embedding,
            "Embed",
            ModelKind::Embedding,
        )?;
        let Some(Serving::Embedding(worker)) = &entry.serving else {
            return Err(InferenceError::Stopped);
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

/// The entry `reference` names among `models`: `name@version`, or `name` for its newest
/// version.
pub(super) fn find<'m>(
    models: &'m BTreeMap<String, Arc<Entry>>,
    reference: &str,
) -> Option<&'m Arc<Entry>> {
    models.get(reference).or_else(|| {
        models
            .values()
            .filter(|e| e.info.manifest.name == reference)
            .max_by(|a, b| a.info.manifest.version.cmp(&b.info.manifest.version))
    })
}

/// Verifies and loads the model of `manifest` in `folder` (its encoder among `loaded`); a
/// model that fails comes back as a failed entry.
pub(super) fn load(
    folder: PathBuf,
    manifest: Manifest,
    loaded: &BTreeMap<String, Arc<Entry>>,
    config: &InferenceConfig,
    cuda: bool,
    metrics: &Arc<Metrics>,
) -> Entry {
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
        .and_then(|device| {
            start(&info, &folder, loaded, device, config, metrics).map(|s| (device, s))
        });
    let serving = match loaded {
        Ok((device, serving)) => {
            tracing::info!(model = %id, ?device, ms = started.elapsed().as_millis(), "model ready");
            info.state = ModelState::Ready(device);
            Some(serving)
        }
        Err(err) => {
            tracing::error!(model = %id, error = %err, "model refused");
            info.state = ModelState::Failed(err.to_string());
            None
        }
    };
    Entry {
        info,
        folder,
        serving,
    }
}

/// Loads and warms up the model of `info` on `device` and starts its worker.
fn start(
    info: &ModelInfo,
    folder: &Path,
    loaded: &BTreeMap<String, Arc<Entry>>,
    device: tch::Device,
    config: &InferenceConfig,
    metrics: &Arc<Metrics>,
) -> Result<Serving, InferenceError> {
    let file = info.manifest.verify_file(folder)?;
    let batching = Batching {
        max_batch: info.manifest.max_batch,
        max_wait: info.manifest.max_wait,
        queue: config.queue,
    };
    let warm_up = ["warm-up".to_owned()];
    match (info.manifest.kind, &info.manifest.encoder) {
        (ModelKind::Embedding, _) => {
            let mut runner = EmbeddingRunner::load(&info.manifest, folder, &file, device)?;
            runner.run(&warm_up)?;
            Ok(Serving::Embedding(Worker::start(
                &info.id,
                runner,
                batching,
                metrics.clone(),
            )?))
        }
        (ModelKind::Classifier, Some(encoder)) => {
            let encoder = find(loaded, encoder)
                .filter(|e| e.info.manifest.kind == ModelKind::Embedding)
                .ok_or_else(|| {
                    InferenceError::Failed(format!(
                        "its encoder {encoder:?} is not an embedding model in the models folder"
                    ))
                })?;
            let encoder_file = encoder.info.manifest.verify_file(&encoder.folder)?;
            let vectors = EmbeddingRunner::load(
                &encoder.info.manifest,
                &encoder.folder,
                &encoder_file,
                device,
            )?;
            let mut runner =
                ClassifierRunner::load(vectors, &file, info.manifest.labels.clone(), device)?;
            runner.run(&warm_up)?;
            Ok(Serving::Classifier(Worker::start(
                &info.id,
                runner,
                batching,
                metrics.clone(),
            )?))
        }
        (ModelKind::Torchscript, _) => {
            let runner = PredictRunner::load(
                &file,
                info.manifest.inputs.clone(),
                info.manifest.outputs.clone(),
                device,
            )?;
            Ok(Serving::Predict(Worker::start(
                &info.id,
                runner,
                batching,
                metrics.clone(),
            )?))
        }
        (ModelKind::CausalLm, _) => Ok(Serving::Generation(GenerationWorker::start(
            &info.id,
            &info.manifest,
            folder,
            &file,
            device,
            config.queue,
            metrics.clone(),
        )?)),
        (kind, _) => Err(InferenceError::Failed(format!(
            "{} models{} are not served by this build yet",
            kind.as_str(),
            if kind == ModelKind::Classifier {
                " without an encoder"
            } else {
                ""
            }
        ))),
    }
}
