//! The files of tenant models. At registration they are sealed with the tenant's data key
//! into parts of up to 1 MiB in Postgres; a replica that first needs the model writes them
//! back to its own folder (`inference.tenant_models_dir`, owner-only permissions, emptied
//! at start), where libtorch loads them.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use super::CatalogError;
use crate::{
    crypto::{Sealer, TENANT_MODEL_PARTS},
    inference::{Fetched, InferenceError, Manifest, TenantModels},
    store::{
        self, Database, TenantTx,
        tenant_models::{TenantModelRow, part_id},
    },
    tenancy::TenantId,
};

/// The model file's name in a tenant model's folder.
pub const MODEL_FILE: &str = "model.pt";
/// The tokenizer's name in a tenant model's folder.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The files of a model as stored: (name in `tenant_model_parts.file`, file name).
const FILES: [(&str, &str); 2] = [("model", MODEL_FILE), ("tokenizer", TOKENIZER_FILE)];
/// Bytes per stored part.
const PART_BYTES: u64 = 1 << 20;
/// Parts read per query when a model is fetched.
const PARTS_PER_READ: i64 = 8;

/// Where tenant models' files are kept and fetched.
pub struct ModelFiles {
    db: Database,
    sealer: Sealer,
    dir: PathBuf,
}

impl ModelFiles {
    /// Files in `db`, sealed by `sealer`, written back under `dir`.
    pub fn new(db: Database, sealer: Sealer, dir: PathBuf) -> Self {
        Self { db, sealer, dir }
    }

    /// Empties the folder (what an earlier run fetched may since have been deleted) and
    /// makes it readable by this user only.
    ///
    /// # Errors
    /// The I/O error when the folder cannot be emptied or made.
    pub fn prepare(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        std::fs::create_dir_all(&self.dir)?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
    }

    /// Removes the folder and what this replica fetched into it (at shutdown).
    pub fn remove(&self) {
        if let Err(err) = std::fs::remove_dir_all(&self.dir)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), error = %err, "cannot remove fetched tenant models");
        }
    }

    /// The folder of `tenant`'s model `model`.
    pub fn folder(&self, tenant: TenantId, model: Uuid) -> PathBuf {
        self.dir.join(tenant.0.to_string()).join(model.to_string())
    }

    /// Seals the files in `folder` into parts of model `model`, in `tx`.
    ///
    /// # Errors
    /// [`CatalogError`] when a file cannot be read or a part not sealed or stored.
    pub async fn save(
        &self,
        tx: &mut TenantTx,
        model: Uuid,
        folder: &Path,
    ) -> Result<(), CatalogError> {
        let mut keyring = self.sealer.keyring(tx.tenant());
        for (file, name) in FILES {
            let path = folder.join(name);
            let mut reader = match tokio::fs::File::open(&path).await {
                Ok(reader) => reader,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(CatalogError::io(&path, &err)),
            };
            for seq in 0.. {
                let mut part = Vec::with_capacity(PART_BYTES as usize);
                (&mut reader)
                    .take(PART_BYTES)
                    .read_to_end(&mut part)
                    .await
                    .map_err(|err| CatalogError::io(&path, &err))?;
                if part.is_empty() {
                    break;
                }
                let id = part_id(model, file, seq);
                let sealed = keyring
                    .seal(tx, TENANT_MODEL_PARTS.table, &id, &part)
                    .await?;
                store::tenant_models::insert_part(tx, model, (file, seq), &sealed).await?;
            }
        }
        Ok(())
    }

    /// Writes the stored files of `row` to the model's folder, replacing what is there.
    async fn write(&self, tenant: TenantId, row: &TenantModelRow) -> Result<PathBuf, CatalogError> {
        let folder = self.folder(tenant, row.id);
        let partial = folder.with_extension("partial");
        remove_folder(&partial).await?;
        create_private_folder(&partial).await?;
        let mut tx = self.db.begin_tenant(tenant).await?;
        let mut keyring = self.sealer.keyring(tenant);
        for (file, name) in FILES {
            let path = partial.join(name);
            let mut writer: Option<tokio::fs::File> = None;
            let mut next = 0;
            loop {
                let parts =
                    store::tenant_models::parts(&mut tx, row.id, file, next, PARTS_PER_READ)
                        .await?;
                for (seq, sealed) in &parts {
                    let plain = keyring
                        .open(
                            &mut tx,
                            TENANT_MODEL_PARTS.table,
                            &part_id(row.id, file, *seq),
                            sealed,
                        )
                        .await?;
                    let out = match &mut writer {
                        Some(out) => out,
                        None => writer.insert(create_private_file(&path).await?),
                    };
                    out.write_all(&plain)
                        .await
                        .map_err(|err| CatalogError::io(&path, &err))?;
                    next = seq + 1;
                }
                if (parts.len() as i64) < PARTS_PER_READ {
                    break;
                }
            }
            if let Some(mut out) = writer {
                out.flush()
                    .await
                    .map_err(|err| CatalogError::io(&path, &err))?;
            }
        }
        tx.commit().await?;
        remove_folder(&folder).await?;
        tokio::fs::rename(&partial, &folder)
            .await
            .map_err(|err| CatalogError::io(&folder, &err))?;
        Ok(folder)
    }
}

#[async_trait::async_trait]
impl TenantModels for ModelFiles {
    async fn fetch(
        &self,
        tenant: TenantId,
        reference: &str,
    ) -> Result<Option<Fetched>, InferenceError> {
        let failed =
            |err: CatalogError| InferenceError::Failed(format!("fetching the model: {err}"));
        let (name, version) = match reference.split_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (reference, None),
        };
        let row = async {
            let mut tx = self.db.begin_tenant(tenant).await?;
            let row = store::tenant_models::find(&mut tx, name, version).await?;
            tx.commit().await?;
            Ok::<_, CatalogError>(row)
        }
        .await
        .map_err(failed)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let manifest = manifest_of(&row).map_err(failed)?;
        let folder = self.write(tenant, &row).await.map_err(failed)?;
        tracing::info!(%tenant, model = %row.id, "tenant model fetched");
        Ok(Some(Fetched {
            manifest,
            folder,
            created: row.created_at,
            serving: row.serving,
        }))
    }
}

/// The manifest stored with a model.
///
/// # Errors
/// [`CatalogError::Corrupt`] when it no longer parses or passes its checks.
pub fn manifest_of(row: &TenantModelRow) -> Result<Manifest, CatalogError> {
    let manifest: Manifest = serde_json::from_value(row.manifest.0.clone())
        .map_err(|err| CatalogError::Corrupt(format!("model {}: {err}", row.id)))?;
    manifest
        .check()
        .map_err(|reason| CatalogError::Corrupt(format!("model {}: {reason}", row.id)))?;
    Ok(manifest)
}

/// Removes `folder` and what is in it, if it is there.
pub(super) async fn remove_folder(folder: &Path) -> Result<(), CatalogError> {
    match tokio::fs::remove_dir_all(folder).await {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(CatalogError::io(folder, &err))
        }
        _ => Ok(()),
    }
}

/// Makes `folder` (and its parents), readable by this user only.
pub(super) async fn create_private_folder(folder: &Path) -> Result<(), CatalogError> {
    tokio::fs::create_dir_all(folder)
        .await
        .map_err(|err| CatalogError::io(folder, &err))?;
    tokio::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700))
        .await
        .map_err(|err| CatalogError::io(folder, &err))
}

/// Creates `path` for writing, readable by this user only.
pub(super) async fn create_private_file(path: &Path) -> Result<tokio::fs::File, CatalogError> {
    tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(|err| CatalogError::io(path, &err))
}
