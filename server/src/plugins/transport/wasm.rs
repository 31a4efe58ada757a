//! Plugins that are WebAssembly components, run inside the server by the sandbox crate
//! (`codexcontinue-sandbox`: no network, files or clock; fuel, deadline and memory per
//! call). A component is compiled at its first use on a replica (off the async runtime)
//! and kept by its hash; each call runs on a blocking thread within the plugin's timeout.
//! A trap, running out of fuel or memory are the tool's error; running past the deadline
//! is a timeout.

use std::{path::Path, sync::Arc, time::Duration};

use async_trait::async_trait;
use codexcontinue_sandbox::{Loaded, Sandbox, SandboxError};
use tokio::sync::OnceCell;

use super::{ToolCall, ToolOutput, Transport, TransportError};
use crate::{
    plugins::manifest::{RawManifest, RawTool},
    tenancy::is_identifier,
};

/// Longest `describe` may run.
const DESCRIBE_DEADLINE: Duration = Duration::from_secs(5);
/// Endpoint prefix of the components the operator ships.
pub const BUILTIN: &str = "builtin:";
/// Endpoint prefix of uploaded components (followed by their SHA-256).
pub const UPLOADED: &str = "component:";

/// A plugin that is a WebAssembly component.
pub(super) struct WasmTransport {
    sandbox: Arc<Sandbox>,
    component: Arc<Vec<u8>>,
    loaded: OnceCell<Loaded>,
}

impl WasmTransport {
    /// The component `component`, compiled at first use.
    pub(super) fn new(sandbox: Arc<Sandbox>, component: Vec<u8>) -> Self {
        Self {
            sandbox,
            component: Arc::new(component),
            loaded: OnceCell::new(),
        }
    }

    async fn loaded(&self) -> Result<&Loaded, TransportError> {
        self.loaded
            .get_or_try_init(|| {
                let sandbox = self.sandbox.clone();
                let component = self.component.clone();
                async move {
                    tokio::task::spawn_blocking(move || sandbox.load(&component))
                        .await
                        .map_err(|err| TransportError::Protocol(err.to_string()))?
                        .map_err(|err| TransportError::Component(err.to_string()))
                }
            })
            .await
    }

    /// Runs `call` on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Sandbox, &Loaded) -> T + Send + 'static,
    ) -> Result<T, TransportError> {
        let loaded = self.loaded().await?.clone();
        let sandbox = self.sandbox.clone();
        tokio::task::spawn_blocking(move || call(&sandbox, &loaded))
            .await
            .map_err(|err| TransportError::Protocol(err.to_string()))
    }
}

/// The component the operator ships as `endpoint` (`builtin:<name>`) in `folder`:
/// `<name>.wasm`, else `<name>.wat`.
///
/// # Errors
/// [`TransportError::Endpoint`] naming what is wrong.
pub fn shipped(folder: Option<&Path>, endpoint: &str) -> Result<Vec<u8>, TransportError> {
    let bad = |reason: String| TransportError::Endpoint(format!("endpoint: {reason}"));
    let name = endpoint
        .strip_prefix(BUILTIN)
        .filter(|name| is_identifier(name))
        .ok_or_else(|| {
            bad(format!(
                "a WebAssembly plugin's endpoint is \"{BUILTIN}<name>\" for one the operator \
                 ships, or empty with `component`"
            ))
        })?;
    let folder = folder.ok_or_else(|| {
        bad("this server ships no WebAssembly plugins (plugins.wasm_folder is not set)".into())
    })?;
    ["wasm", "wat"]
        .iter()
        .find_map(|extension| std::fs::read(folder.join(format!("{name}.{extension}"))).ok())
        .ok_or_else(|| bad(format!("this server ships no WebAssembly plugin {name:?}")))
}

#[async_trait]
impl Transport for WasmTransport {
    async fn describe(&self) -> Result<RawManifest, TransportError> {
        let text = self
            .run(|sandbox, loaded| sandbox.describe(loaded, DESCRIBE_DEADLINE))
            .await?
            .map_err(|err| TransportError::Protocol(format!("describe: {err}")))?;
        manifest_of(&text)
    }

    async fn invoke(&self, call: ToolCall) -> Result<ToolOutput, TransportError> {
        let arguments = call.arguments.to_string();
        let deadline = call.timeout;
        let answer = self
            .run(move |sandbox, loaded| sandbox.invoke(loaded, &call.tool, &arguments, deadline))
            .await?;
        match answer {
            Ok(Ok(text)) => match serde_json::from_str(&text) {
                Ok(object @ serde_json::Value::Object(_)) => Ok(ToolOutput {
                    result: object,
                    is_error: false,
                }),
                _ => Ok(ToolOutput::error(
                    "the plugin answered something other than a JSON object",
                )),
            },
            Ok(Err(said)) => Ok(ToolOutput::error(said)),
            Err(SandboxError::Deadline(ms)) => Err(TransportError::Deadline(ms)),
            Err(err) => Ok(ToolOutput::error(err.to_string())),
        }
    }
}

/// A component's manifest, as its `describe` wrote it.
fn manifest_of(text: &str) -> Result<RawManifest, TransportError> {
    let manifest: serde_json::Value = serde_json::from_str(text)
        .map_err(|err| TransportError::Protocol(format!("describe is not JSON: {err}")))?;
    let text_of = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    Ok(RawManifest {
        name: text_of(&manifest["name"]),
        version: text_of(&manifest["version"]),
        description: text_of(&manifest["description"]),
        tools: manifest["tools"]
            .as_array()
            .map(|tools| {
                tools
                    .iter()
                    .map(|tool| RawTool {
                        name: text_of(&tool["name"]),
                        description: text_of(&tool["description"]),
                        parameters: tool["parameters"].clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        requested: manifest["requested_capabilities"]
            .as_array()
            .map(|names| names.iter().map(text_of).collect())
            .unwrap_or_default(),
    })
}
