//! How the server talks to a plugin: one small trait, one implementation per transport.
//!
//! The rest of `plugins` sees only [`Transport`]: read the manifest, run a tool. Timeouts,
//! the circuit breaker, authorisation and audit are the caller's; a transport only moves
//! the call and says how it went.

mod grpc;
mod mcp;
pub mod wasm;

use std::sync::Arc;

use async_trait::async_trait;

use super::manifest::RawManifest;
use crate::egress::Egress;

/// One tool call as a plugin receives it.
#[derive(Debug, Clone)]
pub struct ToolCall {
    /// The tool's name within the plugin.
    pub tool: String,
    /// Its arguments (a JSON object that passed the tool's schema).
    pub arguments: serde_json::Value,
    /// The tenant as this plugin knows it: an opaque id, stable per plugin.
    pub tenant: String,
    /// The user as this plugin knows it: an opaque id, stable per plugin.
    pub user: String,
    /// The call's request id, for the plugin's logs.
    pub request_id: String,
    /// How long it may take (a sandboxed plugin is stopped then).
    pub timeout: std::time::Duration,
    /// The conversation's working memory, for a plugin granted `read_working_memory`
    /// (gRPC plugins only).
    pub working_memory: Option<serde_json::Value>,
    /// The memories recalled for the turn, for a plugin granted `read_memory` (gRPC
    /// plugins only).
    pub recalled_memories: Vec<String>,
}

/// What a tool answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    /// Its result (a JSON object).
    pub result: serde_json::Value,
    /// The plugin reported that the tool failed; `result` says how.
    pub is_error: bool,
    /// The conversation's new working memory, if the plugin wrote one (kept only for a
    /// plugin granted `write_working_memory`).
    pub working_memory: Option<serde_json::Value>,
}

impl ToolOutput {
    /// A tool error saying `message`.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            result: serde_json::json!({ "error": message.into() }),
            is_error: true,
            working_memory: None,
        }
    }
}

/// Why a call did not reach the plugin or came back unreadable.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The endpoint cannot be used (bad URL, refused by the egress policy).
    #[error("{0}")]
    Endpoint(String),
    /// The plugin could not be reached or hung up.
    #[error("the plugin is unreachable: {0}")]
    Unreachable(String),
    /// The plugin answered something the protocol does not allow.
    #[error("the plugin broke its protocol: {0}")]
    Protocol(String),
    /// A WebAssembly component cannot be compiled or is not of the plugin world.
    #[error("{0}")]
    Component(String),
    /// A sandboxed plugin ran past its deadline and was stopped.
    #[error("the plugin ran past its deadline of {0} ms and was stopped")]
    Deadline(u128),
}

/// A connection to one plugin.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Reads the plugin's manifest.
    async fn describe(&self) -> Result<RawManifest, TransportError>;
    /// Runs one tool. A tool that fails is an `Ok` [`ToolOutput`] with `is_error`.
    async fn invoke(&self, call: ToolCall) -> Result<ToolOutput, TransportError>;
}

/// The transports a plugin may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// `codexcontinue.plugin.v1.Plugin` over gRPC.
    Grpc,
    /// The Model Context Protocol over streamable HTTP.
    Mcp,
    /// A WebAssembly component run in the server's sandbox.
    Wasm,
}

impl TransportKind {
    /// Its stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::Mcp => "mcp",
            Self::Wasm => "wasm",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "grpc" => Some(Self::Grpc),
            "mcp" => Some(Self::Mcp),
            "wasm" => Some(Self::Wasm),
            _ => None,
        }
    }
}

/// A plugin as a transport reaches it.
pub struct Target<'a> {
    /// How.
    pub kind: TransportKind,
    /// Where (a URL; for WebAssembly, what names the component).
    pub endpoint: &'a str,
    /// The static credential, if any.
    pub credential: Option<&'a str>,
    /// The plugin's id, named in what it is sent.
    pub audience: &'a str,
    /// A WebAssembly plugin's component.
    pub component: Option<Vec<u8>>,
}

/// What transports reach plugins through: the egress policy for the network, the
/// sandbox for WebAssembly.
#[derive(Clone)]
pub struct Means {
    /// Every outbound connection passes it.
    pub egress: Egress,
    /// Runs WebAssembly components.
    pub sandbox: Arc<wasm::Runtime>,
}

/// A connection to `target` through `means`.
///
/// # Errors
/// [`TransportError::Endpoint`] when the endpoint cannot be used with that transport.
pub fn connect(target: Target<'_>, means: &Means) -> Result<Arc<dyn Transport>, TransportError> {
    Ok(match target.kind {
        TransportKind::Grpc => Arc::new(grpc::GrpcTransport::new(
            target.endpoint,
            target.credential,
            &means.egress,
        )?),
        TransportKind::Mcp => Arc::new(mcp::McpTransport::new(
            target.endpoint,
            target.credential,
            target.audience,
            &means.egress,
        )?),
        TransportKind::Wasm => Arc::new(wasm::WasmTransport::new(
            means.sandbox.clone(),
            target.component.ok_or_else(|| {
                TransportError::Endpoint("component: a WebAssembly plugin needs one".into())
            })?,
        )),
    })
}
