//! The models this replica serves. Platform models are every folder of
//! `inference.models_dir` holding a `manifest.toml`, loaded at start; every tenant sees
//! them. Tenant models are uploaded by a tenant (see `model_catalog`), seen only by that
//! tenant, and fetched and loaded on a replica the first time it is asked for one. A model
//! whose file fails its checksum or does not load is listed as failed with the reason, and
//! the others serve as usual.

use std::{
    path::PathBuf,
    sync::{Arc, RwLock},
};

use super::{
    InferenceError,
    loader::Loader,
    manifest::ModelKind,
    models::{Entry, Fetched, Key, ModelInfo, ModelState, Models, Scope, TenantModels, find},
};
use crate::{
    config::{DeviceChoice, InferenceConfig},
    telemetry::Metrics,
    tenancy::TenantId,
};

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

impl Registry {
    /// Loads (or reloads) the model `key` names on `device` (default: as configured);
    /// blocks while the model loads, so call it off the async runtime. Returns `None`
    /// when this replica does not have the model.
    pub fn load_model(
        &self,
        owner: Option<TenantId>,
        id: &str,
        device: Option<DeviceChoice>,
    ) -> Option<ModelInfo> {
        let current = self.exact(owner, id)?;
        let entry = self.loader.load(
            current.info.clone(),
            current.folder.clone(),
            &self.snapshot(),
            device,
        );
        Some(self.replace(entry).info.clone())
    }

    /// Takes the model out of service; `None` when this replica does not have it.
    pub fn unload_model(&self, owner: Option<TenantId>, id: &str) -> Option<ModelInfo> {
        let current = self.exact(owner, id)?;
        let mut info = current.info.clone();
        info.state = ModelState::Unloaded;
        self.replace(Entry::idle(info.clone(), current.folder.clone()));
        tracing::info!(model = %info.id, ?owner, "model unloaded");
        Some(info)
    }

    /// Forgets a tenant model (deleted, or to be fetched again); requests holding it
    /// finish first. Returns its folder.
    pub fn forget(&self, tenant: TenantId, id: &str) -> Option<PathBuf> {
        let key = Key {
            owner: Some(tenant),
            id: id.to_owned(),
        };
        let removed = self.models.write().ok()?.remove(&key)?;
        Some(removed.folder.clone())
    }

    /// Forgets every tenant model this replica fetched (after missed announcements: each
    /// is fetched again, as it is now, when next asked for).
    pub fn forget_tenant_models(&self) {
        if let Ok(mut models) = self.models.write() {
            models.retain(|key, _| key.owner.is_none());
        }
    }

    /// Loads a tenant model that is not registered yet, to see that it serves, without
    /// listing it; [`Registry::adopt`] lists it once it is stored. Blocks while it loads.
    ///
    /// # Errors
    /// [`InferenceError::Failed`] with the reason when it does not load.
    pub fn trial_load(
        &self,
        tenant: TenantId,
        fetched: Fetched,
    ) -> Result<Adoptable, InferenceError> {
        let entry = self
            .loader
            .tenant_model(tenant, fetched, &self.snapshot(), None);
        match &entry.info.state {
            ModelState::Failed(reason) => Err(InferenceError::Failed(reason.clone())),
            _ => Ok(Adoptable(entry)),
        }
    }

    /// Lists and serves a model [`Registry::trial_load`] loaded.
    pub fn adopt(&self, model: Adoptable) -> ModelInfo {
        self.replace(model.0).info.clone()
    }

    fn exact(&self, owner: Option<TenantId>, id: &str) -> Option<Arc<Entry>> {
        self.snapshot()
            .get(&Key {
                owner,
                id: id.to_owned(),
            })
            .cloned()
    }
}

/// A tenant model loaded by [`Registry::trial_load`], not listed yet.
pub struct Adoptable(Entry);
