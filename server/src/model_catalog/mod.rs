//! Models tenants bring, and model changes every replica follows.
//!
//! A tenant admin uploads a TorchScript model (RegisterModel) where the operator allows it
//! (`inference.tenant_models`): the upload is received into the model's folder within the
//! size limits ([`upload`]), checked against its manifest's SHA-256, loaded once to see
//! that it serves, then stored sealed in Postgres ([`files`]) with its audit event. Only
//! that tenant sees it; other replicas fetch it the first time they are asked for it.
//! Loading, unloading and deleting a model are applied here and announced to the other
//! replicas ([`announce`]).

mod announce;
pub mod files;
mod lifecycle;
pub mod upload;

use std::{path::Path, sync::Arc};

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use files::{ModelFiles, manifest_of};
use upload::Upload;

use crate::{
    audit::{self, NewEvent},
    cache::Cache,
    caller::Principal,
    config::InferenceConfig,
    crypto::CryptoError,
    inference::{
        Fetched, InferenceError, Manifest, ModelInfo, ModelKind, ModelState, Registry, Scope,
    },
    store::{self, Database, StoreError, tenant_models::NewTenantModel},
    tenancy::TenantId,
};

/// Why a model operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The operator has not allowed tenant models.
    #[error(
        "this server does not accept tenants' own models (the operator can allow them with \
         inference.tenant_models)"
    )]
    Disabled,
    /// A request field is unacceptable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The name and version are taken.
    #[error("{0}")]
    Exists(String),
    /// The tenant keeps as many models as it may.
    #[error(
        "the tenant has {0} models, the most inference.max_tenant_models allows; delete one first"
    )]
    TooMany(i64),
    /// No such model (for this tenant).
    #[error("no such model")]
    NotFound,
    /// Platform models are the operators': a tenant cannot delete them.
    #[error("{0}")]
    PlatformModel(String),
    /// The caller may not change this model.
    #[error("{0}")]
    Forbidden(String),
    /// A stored model no longer reads back.
    #[error("stored model is corrupt: {0}")]
    Corrupt(String),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing or opening failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The registry refused.
    #[error(transparent)]
    Inference(#[from] InferenceError),
}

impl CatalogError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: &Path, err: &std::io::Error) -> Self {
        Self::Io(format!("{}: {err}", path.display()))
    }
}

/// Tenant models and model changes across replicas.
pub struct Catalog {
    db: Database,
    cache: Cache,
    registry: Arc<Registry>,
    files: Option<Arc<ModelFiles>>,
    settings: InferenceConfig,
    /// This replica, so it skips its own announcements.
    replica: Uuid,
}

impl Catalog {
    /// Tenant models of `db` (files under `files`, when inference is configured), served
    /// by `registry`, changes announced through `cache`.
    pub fn new(
        db: Database,
        cache: Cache,
        registry: Arc<Registry>,
        files: Option<Arc<ModelFiles>>,
        settings: InferenceConfig,
    ) -> Self {
        Self {
            db,
            cache,
            registry,
            files,
            settings,
            replica: Uuid::new_v4(),
        }
    }

    /// Starts receiving a model of `tenant` described by `manifest`.
    ///
    /// # Errors
    /// [`CatalogError::Disabled`] when uploads are off; [`CatalogError::Invalid`] for a
    /// manifest this server cannot serve.
    pub async fn start_upload(
        &self,
        tenant: TenantId,
        manifest: Manifest,
    ) -> Result<Upload, CatalogError> {
        let files = self
            .files
            .as_ref()
            .filter(|_| self.settings.tenant_models)
            .ok_or(CatalogError::Disabled)?;
        let id = Uuid::new_v4();
        Upload::start(
            tenant,
            id,
            manifest,
            files.folder(tenant, id),
            self.settings.max_model_bytes,
        )
        .await
    }

    /// Registers what `upload` received for `principal`'s tenant: checks it, loads it
    /// once, stores it sealed with its audit event, and serves it.
    ///
    /// # Errors
    /// [`CatalogError::Invalid`] when the files do not match the manifest or the model
    /// does not load; [`CatalogError::Exists`] for a taken name; [`CatalogError::TooMany`]
    /// over the limit; store errors.
    pub async fn register(
        &self,
        principal: &Principal,
        mut upload: Upload,
    ) -> Result<ModelInfo, CatalogError> {
        let files = self.files.as_ref().ok_or(CatalogError::Disabled)?;
        let tenant = upload.tenant;
        let received = upload.finish().await?;
        let manifest = upload.manifest.clone();
        let id = format!("{}@{}", manifest.name, manifest.version);
        if self
            .registry
            .get(Scope::Platform, &manifest.name)
            .await?
            .is_some()
        {
            return Err(CatalogError::Exists(format!(
                "{} is the name of a platform model; choose another name",
                manifest.name
            )));
        }
        self.check_room(tenant, &manifest).await?;
        let fetched = Fetched {
            manifest: manifest.clone(),
            folder: upload.folder().to_owned(),
            created: OffsetDateTime::now_utc(),
            serving: true,
        };
        let registry = self.registry.clone();
        let loaded = tokio::task::spawn_blocking(move || registry.trial_load(tenant, fetched))
            .await
            .map_err(|err| CatalogError::Io(err.to_string()))?
            .map_err(|err| {
                CatalogError::invalid("chunk", format!("the model does not load: {err}"))
            })?;
        let size_bytes = i64::try_from(received.size_bytes).unwrap_or(i64::MAX);
        let mut tx = self.db.begin_tenant(tenant).await?;
        let row = NewTenantModel {
            id: upload.id,
            name: &manifest.name,
            version: &manifest.version,
            kind: manifest.kind.as_str(),
            manifest: serde_json::to_value(&manifest)
                .map_err(|err| CatalogError::Corrupt(err.to_string()))?,
            sha256: &manifest.sha256,
            size_bytes,
            created_by: Some(principal.user),
        };
        if !store::tenant_models::insert(&mut tx, &row).await? {
            return Err(taken(&id));
        }
        files.save(&mut tx, upload.id, upload.folder()).await?;
        let details = json!({
            "kind": manifest.kind.as_str(),
            "sha256": manifest.sha256,
            "size_bytes": size_bytes,
        });
        let event = NewEvent::by(principal, "model.register", "model", &id, details);
        audit::append(&mut tx, tenant, &event).await?;
        tx.commit().await?;
        upload.keep();
        tracing::info!(%tenant, model = %id, size_bytes, "tenant model registered");
        Ok(self.registry.adopt(loaded))
    }

    /// Refuses a model the tenant has no room for, or whose name and version it has.
    async fn check_room(&self, tenant: TenantId, manifest: &Manifest) -> Result<(), CatalogError> {
        let mut tx = self.db.begin_tenant(tenant).await?;
        let count = store::tenant_models::count(&mut tx).await?;
        let existing =
            store::tenant_models::find(&mut tx, &manifest.name, Some(&manifest.version)).await?;
        tx.commit().await?;
        if existing.is_some() {
            return Err(taken(&format!("{}@{}", manifest.name, manifest.version)));
        }
        if count >= i64::from(self.settings.max_tenant_models) {
            return Err(CatalogError::TooMany(count));
        }
        Ok(())
    }

    /// The models `tenant` sees, of `kind` when given, by id: those of this replica and
    /// the tenant's stored ones this replica has not fetched (listed as registered).
    ///
    /// # Errors
    /// [`CatalogError::Store`] when Postgres fails.
    pub async fn list(
        &self,
        tenant: TenantId,
        kind: Option<ModelKind>,
    ) -> Result<Vec<ModelInfo>, CatalogError> {
        let mut models = self.registry.list(Scope::Tenant(tenant), kind);
        let mut tx = self.db.begin_tenant(tenant).await?;
        let stored = store::tenant_models::list(&mut tx).await?;
        tx.commit().await?;
        for row in stored {
            let id = format!("{}@{}", row.name, row.version);
            if models.iter().any(|m| m.owner == Some(tenant) && m.id == id) {
                continue;
            }
            let manifest = match manifest_of(&row) {
                Ok(manifest) => manifest,
                Err(err) => {
                    tracing::error!(%tenant, error = %err, "stored model not listed");
                    continue;
                }
            };
            if kind.is_some_and(|k| k != manifest.kind) {
                continue;
            }
            models.push(ModelInfo {
                id,
                owner: Some(tenant),
                manifest,
                state: ModelState::Unloaded,
                size_bytes: u64::try_from(row.size_bytes).unwrap_or(0),
                created: row.created_at,
            });
        }
        models.sort_by(|a, b| a.id.cmp(&b.id).then(a.owner.cmp(&b.owner)));
        Ok(models)
    }
}

fn taken(id: &str) -> CatalogError {
    CatalogError::Exists(format!(
        "the tenant has a model {id} already; register another version or delete it first"
    ))
}
