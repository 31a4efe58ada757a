//! Receiving a model upload: the file and the tokenizer arrive in chunks and are written
//! to the model's folder as they come, hashed on the way, within the size limits. An
//! upload that is not registered in the end leaves nothing behind.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::{
    CatalogError,
    files::{MODEL_FILE, TOKENIZER_FILE, create_private_file, create_private_folder},
};
use crate::{
    inference::{Manifest, ModelKind},
    tenancy::TenantId,
};

/// Largest chunk of one upload message.
pub const MAX_CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// Largest tokenizer file.
const MAX_TOKENIZER_BYTES: u64 = 64 * 1024 * 1024;

/// One file being received.
struct Incoming {
    path: PathBuf,
    out: tokio::fs::File,
    digest: Sha256,
    bytes: u64,
    limit: u64,
}

impl Incoming {
    async fn create(path: PathBuf, limit: u64) -> Result<Self, CatalogError> {
        Ok(Self {
            out: create_private_file(&path).await?,
            path,
            digest: Sha256::new(),
            bytes: 0,
            limit,
        })
    }

    /// Appends `chunk`; `field` and `setting` name what is refused when it is too big.
    async fn append(
        &mut self,
        chunk: &[u8],
        field: &'static str,
        setting: &str,
    ) -> Result<(), CatalogError> {
        if chunk.len() > MAX_CHUNK_BYTES {
            return Err(CatalogError::invalid(
                field,
                format!("a chunk may hold at most {MAX_CHUNK_BYTES} bytes"),
            ));
        }
        self.bytes += chunk.len() as u64;
        if self.bytes > self.limit {
            return Err(CatalogError::invalid(
                field,
                format!("the file is larger than {setting} ({} bytes)", self.limit),
            ));
        }
        self.digest.update(chunk);
        self.out
            .write_all(chunk)
            .await
            .map_err(|err| CatalogError::io(&self.path, &err))
    }

    async fn finish(mut self) -> Result<(u64, String), CatalogError> {
        self.out
            .flush()
            .await
            .map_err(|err| CatalogError::io(&self.path, &err))?;
        Ok((self.bytes, hex::encode(self.digest.finalize())))
    }
}

/// A model upload in progress; dropping it removes what was received.
pub struct Upload {
    pub(super) tenant: TenantId,
    pub(super) id: Uuid,
    pub(super) manifest: Manifest,
    pub(super) folder: PathBuf,
    /// `None` once finished.
    model: Option<Incoming>,
    tokenizer: Option<Incoming>,
    kept: bool,
}

/// What a finished upload holds.
pub(super) struct Received {
    /// Size of the model file.
    pub(super) size_bytes: u64,
}

impl Upload {
    /// Starts receiving model `id` of `tenant` described by `manifest` into `folder`,
    /// refusing a manifest this server cannot serve before any byte arrives.
    pub(super) async fn start(
        tenant: TenantId,
        id: Uuid,
        mut manifest: Manifest,
        folder: PathBuf,
        max_model_bytes: u64,
    ) -> Result<Self, CatalogError> {
        manifest.file = MODEL_FILE.into();
        manifest.tokenizer = own_tokenizer(&manifest).then(|| TOKENIZER_FILE.into());
        manifest
            .check()
            .map_err(|reason| CatalogError::invalid("manifest", reason))?;
        if manifest.kind == ModelKind::Classifier && manifest.encoder.is_none() {
            return Err(CatalogError::invalid(
                "manifest.encoder",
                "a classifier reads the vectors of an embedding model: name it (e.g. minilm-l6)",
            ));
        }
        create_private_folder(&folder).await?;
        let mut upload = Self {
            tenant,
            id,
            model: Some(Incoming::create(folder.join(MODEL_FILE), max_model_bytes).await?),
            manifest,
            folder,
            tokenizer: None,
            kept: false,
        };
        if own_tokenizer(&upload.manifest) {
            upload.tokenizer = Some(
                Incoming::create(upload.folder.join(TOKENIZER_FILE), MAX_TOKENIZER_BYTES).await?,
            );
        }
        Ok(upload)
    }

    /// Appends a chunk of the model file.
    ///
    /// # Errors
    /// [`CatalogError::Invalid`] on `chunk` when it or the file is too big.
    pub async fn model_chunk(&mut self, chunk: &[u8]) -> Result<(), CatalogError> {
        match &mut self.model {
            Some(model) => {
                model
                    .append(chunk, "chunk", "inference.max_model_bytes")
                    .await
            }
            None => Err(CatalogError::invalid("chunk", "the upload is finished")),
        }
    }

    /// Appends a chunk of the tokenizer.
    ///
    /// # Errors
    /// [`CatalogError::Invalid`] on `tokenizer_json` when the model reads no tokenizer of
    /// its own, or the chunk or file is too big.
    pub async fn tokenizer_chunk(&mut self, chunk: &[u8]) -> Result<(), CatalogError> {
        let kind = self.manifest.kind.as_str();
        let Some(tokenizer) = &mut self.tokenizer else {
            return Err(CatalogError::invalid(
                "tokenizer_json",
                format!("a {kind} model with these settings reads no tokenizer of its own"),
            ));
        };
        tokenizer
            .append(chunk, "tokenizer_json", "the tokenizer limit")
            .await
    }

    /// Checks what arrived against the manifest.
    pub(super) async fn finish(&mut self) -> Result<Received, CatalogError> {
        let model = self
            .model
            .take()
            .ok_or_else(|| CatalogError::invalid("chunk", "the upload is finished"))?;
        let (size_bytes, sha256) = model.finish().await?;
        if size_bytes == 0 {
            return Err(CatalogError::invalid("chunk", "no model file was sent"));
        }
        if sha256 != self.manifest.sha256 {
            return Err(CatalogError::invalid(
                "manifest.sha256",
                format!(
                    "the uploaded file's SHA-256 is {sha256}: the upload is incomplete or not the \
                     file the manifest describes"
                ),
            ));
        }
        if let Some(tokenizer) = self.tokenizer.take() {
            let (bytes, _) = tokenizer.finish().await?;
            if bytes == 0 {
                return Err(CatalogError::invalid(
                    "tokenizer_json",
                    format!(
                        "a {} model needs its tokenizer.json",
                        self.manifest.kind.as_str()
                    ),
                ));
            }
        }
        Ok(Received { size_bytes })
    }

    /// Keeps the files: the model is registered.
    pub(super) fn keep(&mut self) {
        self.kept = true;
    }

    /// The folder the files are in.
    pub(super) fn folder(&self) -> &Path {
        &self.folder
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_dir_all(&self.folder);
        }
    }
}

/// Whether a model of this manifest reads its own tokenizer (classifiers use their
/// encoder's; generic models take tensors).
fn own_tokenizer(manifest: &Manifest) -> bool {
    matches!(manifest.kind, ModelKind::Embedding | ModelKind::CausalLm)
}
