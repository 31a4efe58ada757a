//! The project's own plugin protocol, `codexcontinue.plugin.v1.Plugin`, over gRPC.
//!
//! One lazily connected channel per plugin, over TCP connections the egress policy
//! opened (TLS for `https` endpoints, with the public web roots). The static credential
//! travels as `authorization: Bearer …`. A status from the plugin is the tool's error,
//! given back to whoever called; only a failure to reach the plugin is a
//! [`TransportError`].

use std::time::Duration;

use async_trait::async_trait;
use http::Uri;
use hyper_util::rt::TokioIo;
use tonic::{
    Request,
    metadata::{AsciiMetadataValue, MetadataValue},
    transport::{Channel, ClientTlsConfig, Endpoint},
};

use super::{ToolCall, ToolOutput, Transport, TransportError};
use crate::{
    egress::Egress,
    pb::{json, plugin as wire, plugin::plugin_client::PluginClient},
    plugins::manifest::{RawManifest, RawTool},
};

/// Time to open a connection to a plugin.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest message a plugin may answer with.
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// A plugin served over gRPC.
pub(super) struct GrpcTransport {
    client: PluginClient<Channel>,
    authorization: Option<AsciiMetadataValue>,
}

impl GrpcTransport {
    /// A channel to `endpoint` (connected at first use).
    pub(super) fn new(
        endpoint: &str,
        credential: Option<&str>,
        egress: &Egress,
    ) -> Result<Self, TransportError> {
        let bad = |reason: String| TransportError::Endpoint(format!("endpoint: {reason}"));
        let uri: Uri = endpoint.parse().map_err(|_| bad("is not a URL".into()))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("must be an http:// or https:// URL".into())),
        };
        let mut channel = Endpoint::from(uri)
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        if tls {
            channel = channel
                .tls_config(ClientTlsConfig::new().with_webpki_roots())
                .map_err(|err| bad(err.to_string()))?;
        }
        let egress = egress.clone();
        let connector = tower::service_fn(move |uri: Uri| {
            let egress = egress.clone();
            async move {
                let host = uri.host().unwrap_or_default().to_owned();
                let port = uri
                    .port_u16()
                    .unwrap_or(if uri.scheme_str() == Some("https") {
                        443
                    } else {
                        80
                    });
                egress.connect(&host, port).await.map(TokioIo::new)
            }
        });
        let client = PluginClient::new(channel.connect_with_connector_lazy(connector))
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let authorization = credential
            .map(|secret| {
                MetadataValue::try_from(format!("Bearer {secret}"))
                    .map_err(|_| bad("the credential must be printable ASCII".into()))
            })
            .transpose()?;
        Ok(Self {
            client,
            authorization,
        })
    }

    fn request<T>(&self, message: T, request_id: &str) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(authorization) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
        }
        if let Ok(id) = MetadataValue::try_from(request_id) {
            request.metadata_mut().insert("x-request-id", id);
        }
        request
    }
}

/// Whether `status` says the plugin was not reached, rather than that it answered with
/// an error: tonic gives statuses it made from a connection failure a source.
fn unreached(status: &tonic::Status) -> bool {
    std::error::Error::source(status).is_some()
}

#[async_trait]
impl Transport for GrpcTransport {
    async fn describe(&self) -> Result<RawManifest, TransportError> {
        let manifest = self
            .client
            .clone()
            .describe(self.request(wire::DescribeRequest {}, ""))
            .await
            .map_err(|status| TransportError::Unreachable(describe_status(&status)))?
            .into_inner();
        let tools = manifest
            .tools
            .into_iter()
            .map(|tool| {
                Ok(RawTool {
                    name: tool.name,
                    description: tool.description,
                    parameters: match tool.parameters_schema {
                        Some(schema) => json::from_struct(schema).map_err(|err| {
                            TransportError::Protocol(format!("tool schema: {err}"))
                        })?,
                        None => serde_json::Value::Null,
                    },
                })
            })
            .collect::<Result<_, TransportError>>()?;
        Ok(RawManifest {
            name: manifest.name,
            version: manifest.version,
            description: manifest.description,
            tools,
            requested: manifest.requested_capabilities,
        })
    }

    async fn invoke(&self, call: ToolCall) -> Result<ToolOutput, TransportError> {
        let message = wire::InvokeRequest {
            tool: call.tool,
            arguments: Some(json::to_struct(call.arguments)),
            tenant_id: call.tenant,
            user_id: call.user,
            request_id: call.request_id.clone(),
            working_memory: call.working_memory.map(json::to_struct),
            recalled_memories: call.recalled_memories,
        };
        match self
            .client
            .clone()
            .invoke(self.request(message, &call.request_id))
            .await
        {
            Ok(answer) => {
                let answer = answer.into_inner();
                let result = json::from_struct(answer.result.unwrap_or_default())
                    .map_err(|err| TransportError::Protocol(format!("result: {err}")))?;
                let working_memory = answer
                    .working_memory
                    .map(json::from_struct)
                    .transpose()
                    .map_err(|err| TransportError::Protocol(format!("working_memory: {err}")))?;
                Ok(ToolOutput {
                    result,
                    is_error: false,
                    working_memory,
                })
            }
            Err(status) if unreached(&status) => {
                Err(TransportError::Unreachable(describe_status(&status)))
            }
            Err(status) => Ok(ToolOutput::error(describe_status(&status))),
        }
    }
}

/// A status as one line: its code and message.
fn describe_status(status: &tonic::Status) -> String {
    let message = status.message().chars().take(500).collect::<String>();
    if message.is_empty() {
        format!("{:?}", status.code())
    } else {
        format!("{:?}: {message}", status.code())
    }
}
