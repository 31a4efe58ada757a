//! A plugin speaking `codexcontinue.plugin.v1.Plugin` over gRPC on loopback, for the
//! suite: its manifest can be changed while it runs, and it remembers what it was sent.
//!
//! Tools: `echo` (answers its arguments `text` and `q` and the ids it was given), `fail`
//! (answers with a gRPC error, as a tool that failed), `sleep` (waits `ms` milliseconds,
//! 5 s when not told, then answers) and `noop` (answers `{}` at once, for benchmarks).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use codexcontinue::pb::{
    json,
    plugin::{
        DescribeRequest, DescribeResponse, InvokeRequest, InvokeResponse, Tool,
        plugin_server::{Plugin, PluginServer},
    },
};
use serde_json::json;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// What the plugin was sent with one call.
#[derive(Debug, Clone)]
pub struct Received {
    /// The tool called.
    pub tool: String,
    /// Its arguments.
    pub arguments: serde_json::Value,
    /// The tenant id it was given.
    pub tenant_id: String,
    /// The user id it was given.
    pub user_id: String,
    /// The `authorization` header, if any.
    pub authorization: Option<String>,
    /// The working memory it was given, if any.
    pub working_memory: Option<serde_json::Value>,
    /// The recalled memories it was given.
    pub recalled_memories: Vec<String>,
}

#[derive(Default)]
struct State {
    manifest: Mutex<DescribeResponse>,
    received: Mutex<Vec<Received>>,
}

/// The plugin, serving until dropped.
pub struct TestPlugin {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for TestPlugin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The manifest the plugin starts with: name `helper`, the four tools, asking for
/// `CAPABILITY_READ_MEMORY`.
pub fn default_manifest() -> DescribeResponse {
    let object = |properties: serde_json::Value, required: &[&str]| {
        Some(json::to_struct(json!({
            "type": "object",
            "properties": properties,
            "required": required,
        })))
    };
    DescribeResponse {
        name: "helper".into(),
        version: "1.0.0".into(),
        description: "Tools for the suite".into(),
        tools: vec![
            Tool {
                name: "echo".into(),
                description: "Answers what it was given".into(),
                parameters_schema: object(
                    json!({ "text": { "type": "string" }, "q": { "type": "string" } }),
                    &[],
                ),
            },
            Tool {
                name: "fail".into(),
                description: "Always fails".into(),
                parameters_schema: object(json!({}), &[]),
            },
            Tool {
                name: "sleep".into(),
                description: "Waits, then answers".into(),
                parameters_schema: object(
                    json!({ "ms": { "type": "integer", "minimum": 0 }, "q": { "type": "string" } }),
                    &[],
                ),
            },
            Tool {
                name: "noop".into(),
                description: "Does nothing".into(),
                parameters_schema: None,
            },
        ],
        requested_capabilities: vec!["CAPABILITY_READ_MEMORY".into()],
    }
}

impl TestPlugin {
    /// Starts the plugin on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind plugin");
        let addr = listener.local_addr().expect("plugin address");
        let state = Arc::new(State {
            manifest: Mutex::new(default_manifest()),
            received: Mutex::default(),
        });
        let service = PluginServer::new(Service(state.clone()));
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await;
        });
        Self { addr, state, task }
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the manifest it describes from now on.
    pub fn set_manifest(&self, manifest: DescribeResponse) {
        *self.state.manifest.lock().expect("manifest lock") = manifest;
    }

    /// Every call it received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("received lock").clone()
    }
}

struct Service(Arc<State>);

#[tonic::async_trait]
impl Plugin for Service {
    async fn describe(
        &self,
        _request: Request<DescribeRequest>,
    ) -> Result<Response<DescribeResponse>, Status> {
        Ok(Response::new(
            self.0.manifest.lock().expect("manifest lock").clone(),
        ))
    }

    async fn invoke(
        &self,
        request: Request<InvokeRequest>,
    ) -> Result<Response<InvokeResponse>, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let call = request.into_inner();
        let arguments = json::from_struct(call.arguments.unwrap_or_default())
            .map_err(Status::invalid_argument)?;
        let working_memory = call
            .working_memory
            .map(json::from_struct)
            .transpose()
            .map_err(Status::invalid_argument)?;
        self.0
            .received
            .lock()
            .expect("received lock")
            .push(Received {
                tool: call.tool.clone(),
                arguments: arguments.clone(),
                tenant_id: call.tenant_id.clone(),
                user_id: call.user_id.clone(),
                authorization,
                working_memory,
                recalled_memories: call.recalled_memories.clone(),
            });
        let result = match call.tool.as_str() {
            "echo" => json!({
                "text": arguments["text"],
                "q": arguments["q"],
                "tenant_id": call.tenant_id,
                "user_id": call.user_id,
            }),
            "fail" => return Err(Status::failed_precondition("the fail tool always fails")),
            "sleep" => {
                let ms = arguments["ms"].as_u64().unwrap_or(5000);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                json!({ "slept_ms": ms })
            }
            "noop" => json!({}),
            other => return Err(Status::not_found(format!("no tool {other}"))),
        };
        // `echo` with `text` "keep <words>" writes the working memory `{"kept": <words>}`.
        let kept = (call.tool == "echo")
            .then(|| arguments["text"].as_str()?.strip_prefix("keep "))
            .flatten()
            .map(|words| json::to_struct(json!({ "kept": words })));
        Ok(Response::new(InvokeResponse {
            result: Some(json::to_struct(result)),
            working_memory: kept,
        }))
    }
}
