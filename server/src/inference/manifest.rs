//! A model's manifest: `manifest.toml` beside the TorchScript file in the model's folder,
//! saying what the model is, how to feed it and how to run it. It is checked before the
//! model is loaded, and the file's SHA-256 must match, so a truncated copy or a swapped
//! file is refused instead of serving wrong answers.

use std::{
    io::Read,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::InferenceError;
use crate::config::DeviceChoice;

/// Most items in one batch a manifest may ask for.
const MAX_BATCH_LIMIT: usize = 1024;
/// Most workers (and intra-op threads per worker) a manifest may ask for.
const MAX_WORKERS: usize = 64;

/// What a model does, which decides the calls it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Texts to vectors (Embed).
    Embedding,
    /// Texts to label scores (Classify).
    Classifier,
    /// Text generation (Generate).
    CausalLm,
    /// Named tensors in and out (Predict).
    Torchscript,
}

impl ModelKind {
    /// The manifest's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Embedding => "embedding",
            ModelKind::Classifier => "classifier",
            ModelKind::CausalLm => "causal-lm",
            ModelKind::Torchscript => "torchscript",
        }
    }
}

/// Numeric precision the weights are converted to on a GPU; on the CPU they stay as the
/// file holds them (fp32, or bfloat16 for an export such as `minilm-l6-bf16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    Fp32,
    /// 16-bit floats.
    Fp16,
    /// bfloat16.
    Bf16,
}

/// A model's manifest (also stored, as JSON, with a tenant's uploaded model).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `[a-z0-9][a-z0-9._-]{0,63}`.
    pub name: String,
    /// `[A-Za-z0-9][A-Za-z0-9._+-]{0,63}`, e.g. `1` or `2026-11-24`.
    pub version: String,
    /// What it does.
    pub kind: ModelKind,
    /// The TorchScript file, relative to the manifest.
    pub file: PathBuf,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
    /// `tokenizer.json` (HuggingFace format) for text models, relative to the manifest.
    #[serde(default)]
    pub tokenizer: Option<PathBuf>,
    /// Classifiers over sentence vectors: the embedding model whose vectors the file
    /// reads, by name (a platform model; for a tenant's own classifier also one of the
    /// tenant's); its tokenizer is used.
    #[serde(default)]
    pub encoder: Option<String>,
    /// Classifier labels, in output order.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Longest input in tokens; longer inputs are cut.
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// Embedding size.
    #[serde(default)]
    pub dimensions: usize,
    /// Where it prefers to run.
    #[serde(default = "default_device")]
    pub device: DeviceChoice,
    /// Weights' precision on a GPU.
    #[serde(default)]
    pub precision: Precision,
    /// Most items per batch.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Longest a request waits for its batch to fill.
    #[serde(default = "default_max_wait", with = "humantime_serde")]
    pub max_wait: Duration,
    /// Worker threads, each with its own copy of the model (see `inference::worker`).
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// libtorch intra-op threads per worker; 0: `inference.threads` shared out among the
    /// workers.
    #[serde(default)]
    pub threads: usize,
    /// Generic models: the names of `forward`'s arguments, in order.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Generic models returning a tuple: the names of its parts.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Causal language models: the shape of the key/value cache and the chat format.
    #[serde(default)]
    pub generation: Option<GenerationSettings>,
}

/// How a causal language model generates (see `inference::generation`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationSettings {
    /// Transformer layers (the cache's first dimension).
    pub layers: i64,
    /// Key/value heads.
    pub kv_heads: i64,
    /// Size of one head.
    pub head_dim: i64,
    /// How chat messages become a prompt: `chatml`.
    pub chat_template: String,
    /// System message used when a chat has none.
    #[serde(default)]
    pub default_system: String,
    /// Tokens that end a reply.
    pub stop_tokens: Vec<String>,
}

/// Workers when a manifest says nothing.
pub fn default_workers() -> usize {
    1
}

/// Longest input when a manifest says nothing.
pub fn default_max_length() -> usize {
    256
}

/// Device when a manifest says nothing.
pub fn default_device() -> DeviceChoice {
    DeviceChoice::Auto
}

/// Batch size when a manifest says nothing.
pub fn default_max_batch() -> usize {
    16
}

/// Batch wait when a manifest says nothing.
pub fn default_max_wait() -> Duration {
    Duration::from_millis(2)
}

impl Manifest {
    /// Reads and checks `folder/manifest.toml`.
    ///
    /// # Errors
    /// [`InferenceError::BadManifest`] saying what is wrong.
    pub fn read(folder: &Path) -> Result<Self, InferenceError> {
        let path = folder.join("manifest.toml");
        let bad = |reason: String| InferenceError::BadManifest {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&path).map_err(|err| bad(err.to_string()))?;
        let manifest: Manifest =
            toml::from_str(&text).map_err(|err| bad(err.message().to_owned()))?;
        manifest.check().map_err(bad)?;
        Ok(manifest)
    }

    /// Checks that the manifest describes a model this server can serve.
    ///
    /// # Errors
    /// What is wrong, naming the setting.
    pub fn check(&self) -> Result<(), String> {
        let mut name = self.name.chars();
        let name_ok = name
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && self.name.len() <= 64
            && name.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if !name_ok {
            return Err(format!(
                "name {:?} must match [a-z0-9][a-z0-9._-]{{0,63}}",
                self.name
            ));
        }
        let mut version = self.version.chars();
        let version_ok = version.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && self.version.len() <= 64
            && version.all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
        if !version_ok {
            return Err(format!(
                "version {:?} must match [A-Za-z0-9][A-Za-z0-9._+-]{{0,63}}",
                self.version
            ));
        }
        if self.sha256.len() != 64
            || !self
                .sha256
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        {
            return Err("sha256 must be 64 lower-case hex digits".to_owned());
        }
        if !(1..=MAX_BATCH_LIMIT).contains(&self.max_batch) {
            return Err(format!("max_batch must be 1 to {MAX_BATCH_LIMIT}"));
        }
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            return Err(format!("workers must be 1 to {MAX_WORKERS}"));
        }
        if self.threads > MAX_WORKERS {
            return Err(format!("threads must be 0 to {MAX_WORKERS}"));
        }
        if self.kind == ModelKind::CausalLm && self.workers != 1 {
            return Err("a causal-lm model runs one generation worker (workers = 1)".to_owned());
        }
        if self.max_length == 0 {
            return Err("max_length must be at least 1".to_owned());
        }
        let text_model = matches!(
            self.kind,
            ModelKind::Embedding | ModelKind::Classifier | ModelKind::CausalLm
        );
        if text_model && self.tokenizer.is_none() && self.encoder.is_none() {
            return Err(format!(
                "a {} model needs a tokenizer (or, for a classifier, an encoder)",
                self.kind.as_str()
            ));
        }
        if self.kind == ModelKind::Embedding && self.dimensions == 0 {
            return Err("an embedding model needs dimensions".to_owned());
        }
        if self.kind == ModelKind::Classifier && self.labels.len() < 2 {
            return Err("a classifier needs at least two labels".to_owned());
        }
        if self.kind == ModelKind::CausalLm
            && !self.generation.as_ref().is_some_and(|g| {
                g.chat_template == "chatml" && g.layers > 0 && g.kv_heads > 0 && g.head_dim > 0
            })
        {
            return Err(
                "a causal-lm model needs [generation] with layers, kv_heads, head_dim > 0 and \
                 chat_template = \"chatml\""
                    .to_owned(),
            );
        }
        if self.kind == ModelKind::Torchscript && self.inputs.is_empty() {
            return Err(
                "a torchscript model needs inputs: the names of its forward arguments".to_owned(),
            );
        }
        if self.encoder.is_some() && self.kind != ModelKind::Classifier {
            return Err("only classifiers read another model's vectors (encoder)".to_owned());
        }
        for file in std::iter::once(&self.file).chain(&self.tokenizer) {
            if file.is_absolute()
                || file
                    .components()
                    .any(|c| c == std::path::Component::ParentDir)
            {
                return Err(format!(
                    "{} must be a file inside the model's folder",
                    file.display()
                ));
            }
        }
        Ok(())
    }

    /// Checks that the model file in `folder` has the manifest's SHA-256.
    ///
    /// # Errors
    /// [`InferenceError::Checksum`] when it differs, [`InferenceError::Io`] when the file
    /// cannot be read.
    pub fn verify_file(&self, folder: &Path) -> Result<PathBuf, InferenceError> {
        let path = folder.join(&self.file);
        let io = |err: std::io::Error| InferenceError::Io {
            path: path.clone(),
            reason: err.to_string(),
        };
        let mut file = std::fs::File::open(&path).map_err(io)?;
        let mut digest = Sha256::new();
        let mut buffer = vec![0; 1 << 20];
        loop {
            let read = file.read(&mut buffer).map_err(io)?;
            if read == 0 {
                break;
            }
            digest.update(&buffer[..read]);
        }
        let actual = hex::encode(digest.finalize());
        if actual != self.sha256 {
            return Err(InferenceError::Checksum {
                path,
                expected: self.sha256.clone(),
                actual,
            });
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        name = "minilm-l6"
        version = "1"
        kind = "embedding"
        file = "model.pt"
        sha256 = "39e7503e53a0a3b7a4305780f1e1651256857bb46408c6d718e61fa462248c3a"
        tokenizer = "tokenizer.json"
        dimensions = 384
    "#;

    fn parsed(text: &str) -> Result<Manifest, String> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| e.to_string())?;
        manifest.check()?;
        Ok(manifest)
    }

    #[test]
    fn a_good_manifest_gets_defaults() {
        let manifest = parsed(GOOD).unwrap();
        assert_eq!(manifest.kind, ModelKind::Embedding);
        assert_eq!(manifest.max_batch, 16);
        assert_eq!(manifest.max_wait, Duration::from_millis(2));
        assert_eq!(manifest.device, DeviceChoice::Auto);
        assert_eq!(manifest.precision, Precision::Fp32);
    }

    #[test]
    fn bad_manifests_say_what_is_wrong() {
        let with = |from: &str, to: &str| parsed(&GOOD.replace(from, to)).unwrap_err();
        assert!(with("minilm-l6", "MiniLM").contains("name"));
        assert!(with("39e7503e", "39E7503E").contains("sha256"));
        assert!(with("version = \"1\"", "version = \"1/2\"").contains("version"));
        assert!(with("dimensions = 384", "").contains("dimensions"));
        assert!(with("tokenizer = \"tokenizer.json\"", "").contains("tokenizer"));
        assert!(with("\"model.pt\"", "\"../other/model.pt\"").contains("inside"));
        assert!(with("kind = \"embedding\"", "kind = \"classifier\"").contains("labels"));
        assert!(with("dimensions = 384", "dimensions = 384\nmax_batch = 0").contains("max_batch"));
        assert!(with("dimensions = 384", "dimensions = 384\ncolour = 1").contains("colour"));
    }
}
