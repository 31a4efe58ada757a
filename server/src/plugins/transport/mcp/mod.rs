//! Plugins that speak the Model Context Protocol over streamable HTTP, through the
//! official Rust SDK (`rmcp`, client side only). The SDK is named in this folder and
//! nowhere else, so its next major version touches only here.
//!
//! One client per plugin and replica, opened at first use: the stateless protocol
//! (`server/discover`) where the server speaks it, else the `initialize` handshake with a
//! session the SDK opens again once if the server lets it expire. A client that closed is
//! opened anew at the next call. The manifest is the server's name, version and
//! instructions and its tools (`tools/list`, every page); a call is `tools/call`. The
//! static credential goes as `authorization: Bearer …`; who is calling goes in the call's
//! `_meta` as opaque ids and, when the plugin has a credential, a token signed with it
//! (see [`token`]).

mod http;
mod token;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use rmcp::{
    RoleClient,
    model::{CallToolRequestParams, ClientConfig, MetaObject, ProtocolVersion, RequestMetaObject},
    service::{ClientLifecycleMode, RunningService, serve_client_with_lifecycle},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use tokio::sync::Mutex;

use self::http::McpHttp;
use super::{ToolCall, ToolOutput, Transport, TransportError};
use crate::{
    egress::Egress,
    plugins::manifest::{RawManifest, RawTool},
};

/// Time to connect to a plugin.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `_meta` key of the tenant's opaque id.
const META_TENANT: &str = "codexcontinue.dev/tenant";
/// `_meta` key of the user's opaque id.
const META_USER: &str = "codexcontinue.dev/user";
/// `_meta` key of the signed caller token.
const META_TOKEN: &str = "codexcontinue.dev/caller_token";
/// `_meta` key of the call's request id.
const META_REQUEST: &str = "codexcontinue.dev/request_id";

type Client = RunningService<RoleClient, ClientConfig>;

/// A plugin served over MCP.
pub(super) struct McpTransport {
    endpoint: String,
    credential: Option<String>,
    audience: String,
    http: McpHttp,
    client: Mutex<Option<Arc<Client>>>,
}

impl McpTransport {
    /// A client of the MCP server at `endpoint` (connected at first use) for the plugin
    /// `audience` names.
    pub(super) fn new(
        endpoint: &str,
        credential: Option<&str>,
        audience: &str,
        egress: &Egress,
    ) -> Result<Self, TransportError> {
        match url::Url::parse(endpoint) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => {
                return Err(TransportError::Endpoint(
                    "endpoint: must be the http(s) URL of an MCP server's streamable HTTP endpoint"
                        .into(),
                ));
            }
        }
        let http = egress
            .client(CONNECT_TIMEOUT)
            .build()
            .map_err(|err| TransportError::Endpoint(format!("endpoint: {err}")))?;
        Ok(Self {
            endpoint: endpoint.to_owned(),
            credential: credential.map(str::to_owned),
            audience: audience.to_owned(),
            http: McpHttp(http),
            client: Mutex::new(None),
        })
    }

    /// The open client, opened now when there is none (or it closed).
    async fn client(&self) -> Result<Arc<Client>, TransportError> {
        let mut open = self.client.lock().await;
        if let Some(client) = open.as_ref().filter(|client| !client.is_closed()) {
            return Ok(client.clone());
        }
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.endpoint.clone())
            .reinit_on_expired_session(true);
        if let Some(credential) = &self.credential {
            config = config.auth_header(credential.clone());
        }
        let transport = StreamableHttpClientTransport::with_client(self.http.clone(), config);
        let lifecycle = ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::LATEST],
            legacy_version: Some(ProtocolVersion::LATEST_WITH_INITIALIZE),
        };
        let client = serve_client_with_lifecycle(ClientConfig::default(), transport, lifecycle)
            .await
            .map_err(|err| TransportError::Unreachable(format!("MCP connection: {err}")))?;
        let client = Arc::new(client);
        *open = Some(client.clone());
        Ok(client)
    }
}

#[async_trait]
impl Transport for McpTransport {
    async fn describe(&self) -> Result<RawManifest, TransportError> {
        let client = self.client().await?;
        let tools = client
            .list_all_tools()
            .await
            .map_err(|err| TransportError::Unreachable(format!("tools/list: {err}")))?;
        let info = client.peer_info();
        let server = info.as_ref().and_then(|info| info.server_info.as_ref());
        let description = server
            .and_then(|s| s.description.clone())
            .or_else(|| info.as_ref().and_then(|info| info.instructions.clone()))
            .unwrap_or_default();
        Ok(RawManifest {
            name: server.map(|s| s.name.clone()).unwrap_or_default(),
            version: server.map(|s| s.version.clone()).unwrap_or_default(),
            description,
            tools: tools
                .into_iter()
                .map(|tool| RawTool {
                    name: tool.name.into_owned(),
                    description: tool.description.map(|d| d.into_owned()).unwrap_or_default(),
                    parameters: serde_json::Value::Object((*tool.input_schema).clone()),
                })
                .collect(),
            // MCP has no capability requests: such a plugin is granted nothing.
            requested: Vec::new(),
        })
    }

    async fn invoke(&self, call: ToolCall) -> Result<ToolOutput, TransportError> {
        let client = self.client().await?;
        let serde_json::Value::Object(arguments) = call.arguments else {
            return Ok(ToolOutput::error("arguments must be a JSON object"));
        };
        let mut meta = serde_json::Map::new();
        meta.insert(META_TENANT.into(), call.tenant.clone().into());
        meta.insert(META_USER.into(), call.user.clone().into());
        meta.insert(META_REQUEST.into(), call.request_id.clone().into());
        if let Some(credential) = &self.credential {
            let signed = token::sign(credential, &self.audience, &call.tenant, &call.user);
            meta.insert(META_TOKEN.into(), signed.into());
        }
        let mut params = CallToolRequestParams::new(call.tool).with_arguments(arguments);
        params.meta = Some(RequestMetaObject(MetaObject(meta)));
        let result = match client.call_tool(params).await {
            Ok(result) => result,
            Err(rmcp::ServiceError::McpError(error)) => {
                return Ok(ToolOutput::error(error.message.into_owned()));
            }
            Err(err) => return Err(TransportError::Unreachable(format!("tools/call: {err}"))),
        };
        let is_error = result.is_error.unwrap_or(false);
        let text: Vec<String> = result
            .content
            .iter()
            .filter_map(|block| block.as_text().map(|t| t.text.clone()))
            .collect();
        let answer = match result.structured_content {
            Some(serde_json::Value::Object(object)) => serde_json::Value::Object(object),
            Some(other) => serde_json::json!({ "value": other }),
            None if is_error => serde_json::json!({ "error": text.join("\n") }),
            None => serde_json::json!({ "content": text }),
        };
        Ok(ToolOutput {
            result: answer,
            is_error,
            working_memory: None,
        })
    }
}
