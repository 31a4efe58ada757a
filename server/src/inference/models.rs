//! What the registry holds: each model's description and state, the worker serving it,
//! and the lookup by owner and reference. Plain data, so the loader and the registry both
//! build on it.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use time::OffsetDateTime;

use super::{
    InferenceError, classifier::LabelScore, generation::GenerationWorker, manifest::Manifest,
    predict::Tensors, worker::Worker,
};
use crate::tenancy::TenantId;

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
    pub(super) fn owners(self) -> impl Iterator<Item = Option<TenantId>> {
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
