//! An MCP server built with the official Rust SDK (`rmcp`, server side), serving
//! streamable HTTP on loopback with sessions, for the suite: one tool, `add`.

use std::net::SocketAddr;

use rmcp::{
    ServerHandler,
    handler::server::wrapper::Parameters,
    model::{ServerCapabilities, ServerConfig},
    schemars, tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use tokio::task::JoinHandle;

/// Arguments of `add`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct AddRequest {
    /// The left-hand side.
    pub a: i64,
    /// The right-hand side.
    pub b: i64,
}

/// The server's tools.
#[derive(Debug, Clone, Default)]
pub struct Tools;

#[tool_router]
impl Tools {
    /// Adds two integers.
    #[tool(description = "Adds two integers")]
    fn add(&self, Parameters(AddRequest { a, b }): Parameters<AddRequest>) -> String {
        (a + b).to_string()
    }
}

#[tool_handler]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("Adds numbers (rmcp)")
    }
}

/// The server, stopped when dropped.
pub struct RustMcp {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for RustMcp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RustMcp {
    /// Starts it on a free loopback port.
    ///
    /// # Panics
    /// When it cannot listen.
    pub async fn start() -> Self {
        let service = StreamableHttpService::new(
            || Ok(Tools),
            LocalSessionManager::default().into(),
            StreamableHttpServerConfig::default(),
        );
        let router = axum::Router::new().nest_service("/mcp", service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the rmcp server");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, task }
    }

    /// Its MCP endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
}
