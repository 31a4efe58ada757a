//! The models this replica serves. Platform models are every folder of
//! `inference.models_dir` holding a `manifest.toml`, loaded at start; every tenant sees
//! them. Tenant models are uploaded by a tenant (see `model_catalog`), seen only by that
//! tenant, and fetched and loaded on a replica the first time it is asked for one. A model
//! whose file fails its checksum or does not load is listed as failed with the reason, and
//! the others serve as usual.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, RwLock},
};

use time::OffsetDateTime;

use super::{
    InferenceError,
    classifier::LabelScore,
    generation::GenerationWorker,
    lifecycle::Loader,
    manifest::{Manifest, ModelKind},
    predict::Tensors,
    worker::Worker,
};
use crate::{config::InferenceConfig, telemetry::Metrics, tenancy::TenantId};

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

/// Whose models a call may use: the platform's, and with a tenant also the tenant's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Platform models only (what the server itself uses, e.g. the domain classifier).
    Platform,
    /// Platform models and this tenant's.
    Tenant(TenantId),
}

impl Scope {
    /// The owners whose models are visible, platform first.
    fn owners(self) -> impl Iterator<Item = Option<TenantId>> {
        let tenant = match self {
            Scope::Platform => None,
            Scope::Tenant(tenant) => Some(Some(tenant)),
        };
        std::iter::once(None).chain(tenant)
    }
}

/// What the API shows of a model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// `name@version`.
    pub id: String,
    /// The tenant whose model it is; `None` for platform models.
    pub owner: Option<TenantId>,
    /// Its manifest.
    pub manifest: Manifest,
    /// Whether it serves.
    pub state: ModelState,
    /// Size of its file.
    pub size_bytes: u64,
    /// When the file was written (platform) or registered (tenant models).
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

/// A tenant's model written to a folder of this replica, ready to load.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its manifest (file names relative to `folder`).
    pub manifest: Manifest,
    /// Where its files are.
    pub folder: PathBuf,
    /// When it was registered.
    pub created: OffsetDateTime,
    /// False when its tenant unloaded it: it is listed, not loaded.
    pub serving: bool,
}

/// Where tenant models come from when this replica has not loaded them yet.
#[async_trait::async_trait]
pub trait TenantModels: Send + Sync {
    /// Writes `tenant`'s model `reference` (`name@version` or `name`) to a local folder;
    /// `None` when the tenant has no such model.
    ///
    /// # Errors
    /// [`InferenceError`] when it cannot be read or written.
    async fn fetch(
        &self,
        tenant: TenantId,
        reference: &str,
    ) -> Result<Option<Fetched>, InferenceError>;
}

/// The worker of a model that serves.
pub(super) enum Serving {
    Embedding(Worker<String, Vec<f32>>),
    Classifier(Worker<String, Vec<LabelScore>>),
    Predict(Worker<Tensors, Result<Tensors, String>>),
    Generation(GenerationWorker),
}

/// Where a model sits in the registry: its owner, then its id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Key {
    pub(super) owner: Option<TenantId>,
    pub(super) id: String,
}

/// A model, where it lives, and its worker (when it serves).
pub(super) struct Entry {
    pub(super) info: ModelInfo,
    pub(super) folder: PathBuf,
    pub(super) serving: Option<Serving>,
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

    pub(super) fn key(&self) -> Key {
        Key {
            owner: self.info.owner,
            id: self.info.id.clone(),
        }
    }
}

/// The models by owner and id.
pub(super) type Models = BTreeMap<Key, Arc<Entry>>;

/// The models of this replica. Requests hold the entry they use, so a model unloaded or
/// reloaded meanwhile finishes what it was asked before its worker stops.
pub struct Registry {
    pub(super) models: RwLock<Models>,
    pub(super) loader: Arc<Loader>,
    tenant_models: Option<Arc<dyn TenantModels>>,
    /// Held while a tenant model is fetched and loaded, so concurrent first requests load
    /// it once.
    fetching: tokio::sync::Mutex<()>,
    pub(super) default_embedding: String,
    pub(super) default_classifier: String,
    pub(super) default_generation: String,
}

impl Registry {
    /// A registry without models (inference not configured).
    pub fn empty(metrics: &Arc<Metrics>) -> Self {
        Self::with(
            Models::new(),
            Loader::new(InferenceConfig::default(), false, metrics.clone()),
            None,
        )
    }

    fn with(models: Models, loader: Loader, tenant_models: Option<Arc<dyn TenantModels>>) -> Self {
        Self {
            models: RwLock::new(models),
            default_embedding: loader.config.default_embedding.clone(),
            default_classifier: loader.config.default_classifier.clone(),
            default_generation: loader.config.default_generation.clone(),
            loader: Arc::new(loader),
            tenant_models,
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Loads every platform model under `config.models_dir`, and fetches tenant models
    /// from `tenant_models` when they are first asked for; blocks while models load and
    /// warm up, so call it off the async runtime.
    pub fn open(
        config: &InferenceConfig,
        metrics: &Arc<Metrics>,
        tenant_models: Option<Arc<dyn TenantModels>>,
    ) -> Self {
        let Some(dir) = &config.models_dir else {
            tracing::info!("inference.models_dir is not set: no local models");
            return Self::empty(metrics);
        };
        if config.threads > 0 {
            tch::set_num_threads(i32::try_from(config.threads).unwrap_or(i32::MAX));
        }
        // The profiling executor re-optimises a module for input shapes it has not seen,
        // and a decoding step sees a new cache length at every token: it would stall
        // generation for nothing. The plain executor runs the same graphs without that.
        tch::jit::set_profiling_mode(false);
        let loader = Loader::new(
            config.clone(),
            super::device::cuda_available(),
            metrics.clone(),
        );
        let models = loader.load_folder(dir);
        Self::with(models, loader, tenant_models)
    }

    /// The models `scope` sees, by id, of `kind` when given. Tenant models another
    /// replica registered are listed once this replica has fetched them.
    pub fn list(&self, scope: Scope, kind: Option<ModelKind>) -> Vec<ModelInfo> {
        let owners: Vec<_> = scope.owners().collect();
        self.snapshot()
            .values()
            .filter(|e| owners.contains(&e.info.owner))
            .filter(|e| kind.is_none_or(|k| e.info.manifest.kind == k))
            .map(|e| e.info.clone())
            .collect()
    }

    /// Names of the platform language models that serve, the default one first.
    pub fn generation_models(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .snapshot()
            .values()
            .filter(|e| e.info.owner.is_none())
            .filter(|e| e.info.manifest.kind == ModelKind::CausalLm && e.serving.is_some())
            .map(|e| e.info.manifest.name.clone())
            .collect();
        names.sort_by_key(|name| *name != self.default_generation);
        names.dedup();
        names
    }

    /// The model `reference` names in `scope`: `name@version`, or `name` for its newest
    /// version; a tenant model this replica has not loaded yet is fetched and loaded.
    ///
    /// # Errors
    /// [`InferenceError`] when a tenant model cannot be fetched.
    pub async fn get(
        &self,
        scope: Scope,
        reference: &str,
    ) -> Result<Option<ModelInfo>, InferenceError> {
        Ok(self
            .resolve(scope, reference)
            .await?
            .map(|e| e.info.clone()))
    }

    /// The models as they are now.
    pub(super) fn snapshot(&self) -> Models {
        self.models
            .read()
            .map(|models| models.clone())
            .unwrap_or_default()
    }

    pub(super) fn entry(&self, scope: Scope, reference: &str) -> Option<Arc<Entry>> {
        find(&self.snapshot(), scope, reference).cloned()
    }

    /// The entry `reference` names in `scope`, fetching and loading a tenant model this
    /// replica does not have yet.
    pub(super) async fn resolve(
        &self,
        scope: Scope,
        reference: &str,
    ) -> Result<Option<Arc<Entry>>, InferenceError> {
        if let Some(entry) = self.entry(scope, reference) {
            return Ok(Some(entry));
        }
        let (Scope::Tenant(tenant), Some(source)) = (scope, &self.tenant_models) else {
            return Ok(None);
        };
        let _fetching = self.fetching.lock().await;
        if let Some(entry) = self.entry(scope, reference) {
            return Ok(Some(entry));
        }
        let Some(fetched) = source.fetch(tenant, reference).await? else {
            return Ok(None);
        };
        let loader = self.loader.clone();
        let loaded = self.snapshot();
        let entry = tokio::task::spawn_blocking(move || {
            loader.tenant_model(tenant, fetched, &loaded, None)
        })
        .await
        .map_err(|err| InferenceError::Failed(err.to_string()))?;
        Ok(Some(self.replace(entry)))
    }

    /// Puts `entry` in place of the model of its key.
    pub(super) fn replace(&self, entry: Entry) -> Arc<Entry> {
        let entry = Arc::new(entry);
        if let Ok(mut models) = self.models.write() {
            models.insert(entry.key(), entry.clone());
        }
        entry
    }
}

/// The entry `reference` names among the `models` visible in `scope`: `name@version`, or
/// `name` for its newest version; platform models first.
pub(super) fn find<'m>(
    models: &'m Models,
    scope: Scope,
    reference: &str,
) -> Option<&'m Arc<Entry>> {
    scope.owners().find_map(|owner| {
        models
            .get(&Key {
                owner,
                id: reference.to_owned(),
            })
            .or_else(|| {
                models
                    .values()
                    .filter(|e| e.info.owner == owner && e.info.manifest.name == reference)
                    .max_by(|a, b| a.info.manifest.version.cmp(&b.info.manifest.version))
            })
    })
}
