//! Loading models on this replica: reading, verifying and warming a model up on its
//! device, and starting the workers that serve it. The registry puts what the loader
//! built in place of the old entry; requests already holding the old one finish on it.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use time::OffsetDateTime;

use super::{
    InferenceError,
    classifier::ClassifierRunner,
    device,
    embedding::EmbeddingRunner,
    generation::GenerationWorker,
    manifest::{Manifest, ModelKind},
    models::{Entry, Fetched, ModelInfo, ModelState, Models, Scope, Serving, find},
    predict::PredictRunner,
    worker::{Batching, Runner, Worker},
};
use crate::{
    config::{DeviceChoice, InferenceConfig},
    telemetry::Metrics,
    tenancy::TenantId,
};

/// What loading a model needs: the settings, whether CUDA is there, the metrics.
pub(super) struct Loader {
    pub(super) config: InferenceConfig,
    cuda: bool,
    metrics: Arc<Metrics>,
}

impl Loader {
    pub(super) fn new(config: InferenceConfig, cuda: bool, metrics: Arc<Metrics>) -> Self {
        Self {
            config,
            cuda,
            metrics,
        }
    }

    /// Loads the platform models of `dir`: every folder with a `manifest.toml`.
    pub(super) fn load_folder(&self, dir: &Path) -> Models {
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
        let mut models = Models::new();
        for (folder, manifest) in manifests {
            let file = std::fs::metadata(folder.join(&manifest.file)).ok();
            let info = ModelInfo {
                id: format!("{}@{}", manifest.name, manifest.version),
                owner: None,
                size_bytes: file.as_ref().map_or(0, std::fs::Metadata::len),
                created: file
                    .and_then(|m| m.modified().ok())
                    .map_or(OffsetDateTime::UNIX_EPOCH, OffsetDateTime::from),
                state: ModelState::Unloaded,
                manifest,
            };
            let entry = self.load(info, folder, &models, None);
            models.insert(entry.key(), Arc::new(entry));
        }
        models
    }

    /// The entry of a tenant model fetched to this replica: loaded (on `device`, else as
    /// configured) unless its tenant unloaded it.
    pub(super) fn tenant_model(
        &self,
        tenant: TenantId,
        fetched: Fetched,
        loaded: &Models,
        device: Option<DeviceChoice>,
    ) -> Entry {
        let file = std::fs::metadata(fetched.folder.join(&fetched.manifest.file)).ok();
        let info = ModelInfo {
            id: format!("{}@{}", fetched.manifest.name, fetched.manifest.version),
            owner: Some(tenant),
            size_bytes: file.as_ref().map_or(0, std::fs::Metadata::len),
            created: fetched.created,
            state: ModelState::Unloaded,
            manifest: fetched.manifest,
        };
        if fetched.serving {
            self.load(info, fetched.folder, loaded, device)
        } else {
            Entry::idle(info, fetched.folder)
        }
    }

    /// Verifies and loads the model of `info` in `folder` (its encoder among `loaded`) on
    /// `device` (else as configured); a model that fails comes back as a failed entry.
    pub(super) fn load(
        &self,
        mut info: ModelInfo,
        folder: PathBuf,
        loaded: &Models,
        device: Option<DeviceChoice>,
    ) -> Entry {
        let choice = device
            .or_else(|| self.config.devices.get(&info.manifest.name).copied())
            .or(Some(self.config.device).filter(|d| *d != DeviceChoice::Auto))
            .unwrap_or(info.manifest.device);
        let started = Instant::now();
        let loaded = device::resolve(choice, self.cuda)
            .map_err(InferenceError::Failed)
            .and_then(|device| {
                self.start(&info, &folder, loaded, device)
                    .map(|s| (device, s))
            });
        let serving = match loaded {
            Ok((device, serving)) => {
                tracing::info!(model = %info.id, owner = ?info.owner, ?device, ms = started.elapsed().as_millis(), "model ready");
                info.state = ModelState::Ready(device);
                Some(serving)
            }
            Err(err) => {
                tracing::error!(model = %info.id, owner = ?info.owner, error = %err, "model refused");
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
        &self,
        info: &ModelInfo,
        folder: &Path,
        loaded: &Models,
        device: tch::Device,
    ) -> Result<Serving, InferenceError> {
        let file = info.manifest.verify_file(folder)?;
        let batching = Batching {
            max_batch: info.manifest.max_batch,
            max_wait: info.manifest.max_wait,
            queue: self.config.queue,
            threads: self.worker_threads(&info.manifest),
        };
        let metrics = self.metrics.clone();
        let workers = info.manifest.workers;
        match (info.manifest.kind, &info.manifest.encoder) {
            (ModelKind::Embedding, _) => {
                let runners = copies(workers, || {
                    EmbeddingRunner::load(&info.manifest, folder, &file, device)
                })?;
                Ok(Serving::Embedding(Worker::start(
                    &info.id, runners, batching, metrics,
                )?))
            }
            (ModelKind::Classifier, Some(encoder)) => {
                let scope = info.owner.map_or(Scope::Platform, Scope::Tenant);
                let encoder = find(loaded, scope, encoder)
                    .filter(|e| e.info.manifest.kind == ModelKind::Embedding)
                    .ok_or_else(|| {
                        InferenceError::Failed(format!(
                            "its encoder {encoder:?} is not an embedding model this server has"
                        ))
                    })?;
                let encoder_file = encoder.info.manifest.verify_file(&encoder.folder)?;
                let runners = copies(workers, || {
                    let vectors = EmbeddingRunner::load(
                        &encoder.info.manifest,
                        &encoder.folder,
                        &encoder_file,
                        device,
                    )?;
                    ClassifierRunner::load(vectors, &file, info.manifest.labels.clone(), device)
                })?;
                Ok(Serving::Classifier(Worker::start(
                    &info.id, runners, batching, metrics,
                )?))
            }
            (ModelKind::Torchscript, _) => {
                let runners = (0..workers)
                    .map(|_| {
                        PredictRunner::load(
                            &file,
                            info.manifest.inputs.clone(),
                            info.manifest.outputs.clone(),
                            device,
                        )
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Serving::Predict(Worker::start(
                    &info.id, runners, batching, metrics,
                )?))
            }
            (ModelKind::CausalLm, _) => Ok(Serving::Generation(GenerationWorker::start(
                &info.id,
                &info.manifest,
                folder,
                &file,
                device,
                batching,
                metrics,
            )?)),
            (ModelKind::Classifier, None) => Err(InferenceError::Failed(
                "classifier models without an encoder are not served by this build yet".to_owned(),
            )),
        }
    }
}

impl Loader {
    /// Intra-op threads of each of a model's workers: its manifest's, else
    /// `inference.threads` (or the cores) shared out among its workers. Always set on each
    /// worker's thread: libtorch's default for new threads is whatever was set last.
    fn worker_threads(&self, manifest: &Manifest) -> usize {
        if manifest.threads > 0 {
            return manifest.threads;
        }
        let total = match self.config.threads {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            threads => threads,
        };
        (total / manifest.workers).max(1)
    }
}

/// `count` copies of a text model's runner, each warmed up.
fn copies<R: Runner<Input = String>>(
    count: usize,
    load: impl Fn() -> Result<R, InferenceError>,
) -> Result<Vec<R>, InferenceError> {
    (0..count)
        .map(|_| {
            let mut runner = load()?;
            runner.run(&["warm-up".to_owned()])?;
            Ok(runner)
        })
        .collect()
}
