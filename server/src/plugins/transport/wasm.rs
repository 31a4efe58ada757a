//! Plugins that are WebAssembly components, run inside the server by the sandbox crate
//! (`codexcontinue-sandbox`: no network, files or clock; fuel, deadline and memory per
//! call). A component is compiled at its first use on a replica (off the async runtime)
//! and kept by its hash; each call runs on a blocking thread within the plugin's timeout,
//! at most `plugins.wasm_max_concurrent_calls` at once per replica (so the sandbox never
//! holds more than that many times a call's memory limit). A trap, running out of fuel or
//! memory are the tool's error; running past the deadline is a timeout.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use codexcontinue_sandbox::{Loaded, Sandbox, SandboxError};
use tokio::sync::{OnceCell, Semaphore};

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

/// The replica's sandbox, and the calls it may run at once.
pub struct Runtime {
    sandbox: Arc<Sandbox>,
    slots: Semaphore,
}

impl Runtime {
    /// `sandbox`, running at most `max_concurrent_calls` calls (or compilations) at once.
    pub fn new(sandbox: Sandbox, max_concurrent_calls: usize) -> Self {
        Self {
            sandbox: Arc::new(sandbox),
            slots: Semaphore::new(max_concurrent_calls.max(1)),
        }
    }

    /// Runs `work` on a blocking thread once a slot is free; `work` is told how long it
    /// waited.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Sandbox, Duration) -> T + Send + 'static,
    ) -> Result<T, TransportError> {
        let asked = Instant::now();
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|err| TransportError::Protocol(err.to_string()))?;
        let sandbox = self.sandbox.clone();
        let waited = asked.elapsed();
        tokio::task::spawn_blocking(move || work(&sandbox, waited))
            .await
            .map_err(|err| TransportError::Protocol(err.to_string()))
    }
}

/// A plugin that is a WebAssembly component.
pub(super) struct WasmTransport {
    runtime: Arc<Runtime>,
    /// The component's bytes until it is compiled (then only the compiled form is kept).
    bytes: Mutex<Option<Vec<u8>>>,
    loaded: OnceCell<Loaded>,
}

impl WasmTransport {
    /// The component `component`, compiled at first use.
    pub(super) fn new(runtime: Arc<Runtime>, component: Vec<u8>) -> Self {
        Self {
            runtime,
            bytes: Mutex::new(Some(component)),
            loaded: OnceCell::new(),
        }
    }

    async fn loaded(&self) -> Result<&Loaded, TransportError> {
        self.loaded
            .get_or_try_init(|| async {
                let bytes = self
                    .bytes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .ok_or_else(|| TransportError::Component("it is being compiled".into()))?;
                let (loaded, bytes) = self
                    .runtime
                    .run(move |sandbox, _| (sandbox.load(&bytes), bytes))
                    .await?;
                loaded.map_err(|err| {
                    // Kept for the next try.
                    *self.bytes.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes);
                    TransportError::Component(err.to_string())
                })
            })
            .await
    }

    /// Runs `call` on a blocking thread, within `deadline` counted from now.
    async fn run<T: Send + 'static>(
        &self,
        deadline: Duration,
        call: impl FnOnce(&Sandbox, &Loaded, Duration) -> T + Send + 'static,
    ) -> Result<T, TransportError> {
        let loaded = self.loaded().await?.clone();
        self.runtime
            .run(move |sandbox, waited| call(sandbox, &loaded, deadline.saturating_sub(waited)))
            .await
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
            .run(DESCRIBE_DEADLINE, |sandbox, loaded, deadline| {
                sandbox.describe(loaded, deadline)
            })
            .await?
            .map_err(|err| TransportError::Protocol(format!("describe: {err}")))?;
        manifest_of(&text)
    }

    async fn invoke(&self, call: ToolCall) -> Result<ToolOutput, TransportError> {
        let arguments = call.arguments.to_string();
        let answer = self
            .run(call.timeout, move |sandbox, loaded, deadline| {
                sandbox.invoke(loaded, &call.tool, &arguments, deadline)
            })
            .await?;
        match answer {
            Ok(Ok(text)) => match serde_json::from_str(&text) {
                Ok(object @ serde_json::Value::Object(_)) => Ok(ToolOutput {
                    result: object,
                    is_error: false,
                    working_memory: None,
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
