//! Local inference on libtorch (through `tch`): TorchScript models described by manifests
//! in a models folder, each owned by a worker thread that batches requests, on the CPU or
//! a GPU. See [`Registry`] for the models and [`worker`] for batching.

mod calls;
mod classifier;
mod decoding;
pub mod device;
mod embedding;
pub mod generation;
mod loader;
pub mod manifest;
mod models;
pub mod predict;
mod registry;
mod text;
pub mod training;
mod worker;

use std::path::PathBuf;

pub use classifier::LabelScore;
pub use generation::TokenCounter;
pub use manifest::{Manifest, ModelKind};
pub use models::{Classified, Embedded, Fetched, ModelInfo, ModelState, Scope, TenantModels};
pub use registry::{Adoptable, Registry};

/// Why an inference operation failed.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// A manifest is missing, unreadable or wrong.
    #[error("{}: {reason}", path.display())]
    BadManifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A model file cannot be read.
    #[error("{}: cannot read: {reason}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A model file is not the one its manifest describes.
    #[error(
        "{}: SHA-256 is {actual}, the manifest says {expected}: the file is corrupt or not the \
         one the manifest describes",
        path.display()
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// What the manifest says.
        expected: String,
        /// What the file hashes to.
        actual: String,
    },
    /// libtorch or the tokenizer refused to load a model.
    #[error("{}: cannot load: {reason}", path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// libtorch's or the tokenizer's reason.
        reason: String,
    },
    /// No such model.
    #[error("no model {0:?} (see ListModels)")]
    NotFound(String),
    /// The model cannot serve this call.
    #[error("model {model:?} is a {kind} model; {call} needs an {needs} model")]
    WrongKind {
        /// The model.
        model: String,
        /// What it is.
        kind: &'static str,
        /// The call.
        call: &'static str,
        /// What the call needs.
        needs: &'static str,
    },
    /// The model is registered but not serving.
    #[error("model {model:?} is not ready: {reason}")]
    NotReady {
        /// The model.
        model: String,
        /// Why.
        reason: String,
    },
    /// The model's queue is full.
    #[error("model {0:?} has more requests waiting than it queues; retry shortly")]
    Busy(String),
    /// A request field is unacceptable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Running the model failed.
    #[error("inference failed: {0}")]
    Failed(String),
    /// The model's worker stopped before answering.
    #[error("the model was unloaded before it answered")]
    Stopped,
}

/// libtorch's reason for an error, without the C++ stack trace it appends (which can run
/// to kilobytes and means nothing to a client).
pub(crate) fn torch_reason(err: &tch::TchError) -> String {
    let text = err.to_string();
    let reason = text
        .split("\nException raised from")
        .next()
        .unwrap_or_default()
        .trim();
    reason.chars().take(1000).collect()
}

/// Loads the TorchScript module in `file` onto `device`, in inference mode.
///
/// # Errors
/// [`InferenceError::Load`] with libtorch's reason.
pub(crate) fn load_module(
    file: &std::path::Path,
    device: tch::Device,
) -> Result<tch::CModule, InferenceError> {
    let mut module =
        tch::CModule::load_on_device(file, device).map_err(|err| InferenceError::Load {
            path: file.to_owned(),
            reason: torch_reason(&err),
        })?;
    module.set_eval();
    Ok(module)
}
