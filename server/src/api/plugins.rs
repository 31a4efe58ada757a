//! PluginService: a tenant's plugins, proto ↔ domain.

use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    convert::{audit_resource, principal, timestamp},
    pagination::PageRequest,
};
use crate::{
    edge::ApiError,
    pb::{
        json,
        v1::{self as pb, plugin_service_server::PluginService},
    },
    plugins::{Capability, PluginInfo, Plugins, Registration, SettingsChange, TransportKind},
};

/// Largest request PluginService takes: an uploaded WebAssembly component (at most
/// 16 MiB) and the rest of the registration.
pub const MAX_MESSAGE_BYTES: usize = 17 * 1024 * 1024;

/// The PluginService implementation.
pub struct PluginApi {
    plugins: Plugins,
}

impl PluginApi {
    /// Serves `plugins`.
    pub fn new(plugins: Plugins) -> Self {
        Self { plugins }
    }
}

fn plugin_id(value: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(value)
        .map_err(|_| ApiError::invalid("plugin_id", "must be a plugin id (a UUID)"))
}

fn capability_of(capability: pb::Capability) -> Option<Capability> {
    match capability {
        pb::Capability::Unspecified => None,
        pb::Capability::ReadWorkingMemory => Some(Capability::ReadWorkingMemory),
        pb::Capability::WriteWorkingMemory => Some(Capability::WriteWorkingMemory),
        pb::Capability::ReadMemory => Some(Capability::ReadMemory),
        pb::Capability::ReceivePhi => Some(Capability::ReceivePhi),
        pb::Capability::NetworkEgress => Some(Capability::NetworkEgress),
    }
}

impl From<Capability> for pb::Capability {
    fn from(capability: Capability) -> Self {
        match capability {
            Capability::ReadWorkingMemory => Self::ReadWorkingMemory,
            Capability::WriteWorkingMemory => Self::WriteWorkingMemory,
            Capability::ReadMemory => Self::ReadMemory,
            Capability::ReceivePhi => Self::ReceivePhi,
            Capability::NetworkEgress => Self::NetworkEgress,
        }
    }
}

/// The capabilities a request names in `field`.
fn capabilities(values: &[i32], field: &'static str) -> Result<Vec<Capability>, ApiError> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            pb::Capability::try_from(*value)
                .ok()
                .and_then(capability_of)
                .ok_or_else(|| {
                    ApiError::invalid(format!("{field}[{index}]"), "is not a known capability")
                })
        })
        .collect()
}

impl From<PluginInfo> for pb::Plugin {
    fn from(info: PluginInfo) -> Self {
        let manifest = info.manifest;
        Self {
            id: info.id.to_string(),
            name: info.name,
            version: manifest.version,
            description: manifest.description,
            endpoint: info.endpoint,
            tools: manifest
                .tools
                .into_iter()
                .map(|tool| pb::PluginTool {
                    name: tool.name,
                    description: tool.description,
                    parameters_schema: Some(json::to_struct(tool.parameters)),
                })
                .collect(),
            requested_capabilities: manifest
                .requested
                .into_iter()
                .map(|c| pb::Capability::from(c).into())
                .collect(),
            granted_capabilities: info
                .granted
                .into_iter()
                .map(|c| pb::Capability::from(c).into())
                .collect(),
            enabled: info.enabled,
            timeout_ms: info.timeout_ms,
            create_time: Some(timestamp(info.created_at)),
            update_time: Some(timestamp(info.updated_at)),
            transport: match info.transport {
                TransportKind::Grpc => pb::PluginTransport::Grpc,
                TransportKind::Mcp => pb::PluginTransport::Mcp,
                TransportKind::Wasm => pb::PluginTransport::Wasm,
            }
            .into(),
            manifest_sha256: hex::encode(info.manifest_sha256),
            on_premises: info.on_premises,
            credential_set: info.credential_set,
            pending_manifest_sha256: info.pending_sha256.map(hex::encode).unwrap_or_default(),
            refresh_time: Some(timestamp(info.refreshed_at)),
        }
    }
}

#[tonic::async_trait]
impl PluginService for PluginApi {
    async fn list_plugins(
        &self,
        request: Request<pb::ListPluginsRequest>,
    ) -> Result<Response<pb::ListPluginsResponse>, Status> {
        let principal = principal(&request)?;
        let body = request.get_ref();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let plugins = self
            .plugins
            .list(&principal, page.after, page.size + 1)
            .await?;
        let (plugins, next_page_token) = page.finish(plugins, |p| p.id);
        Ok(Response::new(pb::ListPluginsResponse {
            plugins: plugins.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    async fn get_plugin(
        &self,
        request: Request<pb::GetPluginRequest>,
    ) -> Result<Response<pb::GetPluginResponse>, Status> {
        let principal = principal(&request)?;
        let id = plugin_id(&request.get_ref().plugin_id)?;
        audit_resource(&request, id);
        let plugin = self.plugins.get(&principal, id).await?;
        Ok(Response::new(pb::GetPluginResponse {
            plugin: Some(plugin.into()),
        }))
    }

    async fn register_plugin(
        &self,
        request: Request<pb::RegisterPluginRequest>,
    ) -> Result<Response<pb::RegisterPluginResponse>, Status> {
        let principal = principal(&request)?;
        let body = request.into_inner();
        let transport = match body.transport() {
            pb::PluginTransport::Unspecified | pb::PluginTransport::Grpc => TransportKind::Grpc,
            pb::PluginTransport::Mcp => TransportKind::Mcp,
            pb::PluginTransport::Wasm => TransportKind::Wasm,
        };
        let registration = Registration {
            name: body.name,
            transport,
            endpoint: body.endpoint,
            credential: body.credential,
            on_premises: body.on_premises,
            granted: capabilities(&body.granted_capabilities, "granted_capabilities")?,
            timeout_ms: body.timeout_ms,
            component: body.component,
        };
        let plugin = self.plugins.register(&principal, registration).await?;
        Ok(Response::new(pb::RegisterPluginResponse {
            plugin: Some(plugin.into()),
        }))
    }

    async fn update_plugin(
        &self,
        request: Request<pb::UpdatePluginRequest>,
    ) -> Result<Response<pb::UpdatePluginResponse>, Status> {
        let principal = principal(&request)?;
        let id = plugin_id(&request.get_ref().plugin_id)?;
        audit_resource(&request, id);
        let body = request.into_inner();
        let change = SettingsChange {
            enabled: body.enabled,
            granted: body
                .update_capabilities
                .then(|| capabilities(&body.granted_capabilities, "granted_capabilities"))
                .transpose()?,
            timeout_ms: body.timeout_ms,
        };
        let plugin = self.plugins.update(&principal, id, change).await?;
        Ok(Response::new(pb::UpdatePluginResponse {
            plugin: Some(plugin.into()),
        }))
    }

    async fn unregister_plugin(
        &self,
        request: Request<pb::UnregisterPluginRequest>,
    ) -> Result<Response<pb::UnregisterPluginResponse>, Status> {
        let principal = principal(&request)?;
        let id = plugin_id(&request.get_ref().plugin_id)?;
        audit_resource(&request, id);
        self.plugins.unregister(&principal, id).await?;
        Ok(Response::new(pb::UnregisterPluginResponse {}))
    }

    async fn invoke_plugin(
        &self,
        request: Request<pb::InvokePluginRequest>,
    ) -> Result<Response<pb::InvokePluginResponse>, Status> {
        let principal = principal(&request)?;
        let id = plugin_id(&request.get_ref().plugin_id)?;
        audit_resource(&request, id);
        let body = request.into_inner();
        let conversation = match body.conversation_id.as_str() {
            "" => None,
            id => Some(
                uuid::Uuid::try_parse(id)
                    .map_err(|_| ApiError::invalid("conversation_id", "must be a UUID"))?,
            ),
        };
        let arguments = json::from_struct(body.arguments.unwrap_or_default())
            .map_err(|err| ApiError::invalid("arguments", err))?;
        let invocation = self
            .plugins
            .invoke(&principal, id, &body.tool, arguments, conversation)
            .await?;
        let result = match invocation.output.result {
            object @ serde_json::Value::Object(_) => object,
            other => serde_json::json!({ "value": other }),
        };
        Ok(Response::new(pb::InvokePluginResponse {
            result: Some(json::to_struct(result)),
            latency_ms: i64::try_from(invocation.latency.as_millis()).unwrap_or(i64::MAX),
            is_error: invocation.output.is_error,
        }))
    }

    async fn approve_plugin(
        &self,
        request: Request<pb::ApprovePluginRequest>,
    ) -> Result<Response<pb::ApprovePluginResponse>, Status> {
        let principal = principal(&request)?;
        let id = plugin_id(&request.get_ref().plugin_id)?;
        audit_resource(&request, id);
        let plugin = self
            .plugins
            .approve(&principal, id, &request.get_ref().manifest_sha256)
            .await?;
        Ok(Response::new(pb::ApprovePluginResponse {
            plugin: Some(plugin.into()),
        }))
    }

    async fn refresh_plugin(
        &self,
        request: Request<pb::RefreshPluginRequest>,
    ) -> Result<Response<pb::RefreshPluginResponse>, Status> {
        let principal = principal(&request)?;
        let id = plugin_id(&request.get_ref().plugin_id)?;
        audit_resource(&request, id);
        let (plugin, changed) = self.plugins.refresh(&principal, id).await?;
        Ok(Response::new(pb::RefreshPluginResponse {
            plugin: Some(plugin.into()),
            changed,
        }))
    }
}
