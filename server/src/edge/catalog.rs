//! The catalogue of RPCs this server serves, read from the compiled descriptor sets.
//!
//! Telemetry uses it to keep metric labels bounded (a path that is not a known method is
//! recorded as "unknown", so clients cannot create label values at will).

use std::collections::BTreeMap;

use prost::Message;
use prost_types::FileDescriptorSet;

use crate::pb;

/// Names of the CodexContinue services, in the order they are documented.
pub const API_SERVICES: [&str; 7] = [
    pb::v1::chat_service_server::SERVICE_NAME,
    pb::v1::memory_service_server::SERVICE_NAME,
    pb::v1::auth_service_server::SERVICE_NAME,
    pb::v1::admin_service_server::SERVICE_NAME,
    pb::v1::plugin_service_server::SERVICE_NAME,
    pb::v1::model_service_server::SERVICE_NAME,
    pb::v1::audit_service_server::SERVICE_NAME,
];

/// Every served service with its method names and their kinds (`unary`, `client_stream`,
/// `server_stream` or `bidi_stream`, the `grpc_type` of gRPC metrics).
#[derive(Debug, Clone, Default)]
pub struct ApiCatalog {
    methods: BTreeMap<String, BTreeMap<String, &'static str>>,
}

impl ApiCatalog {
    /// The catalogue of everything the server registers: the CodexContinue API, health
    /// and reflection.
    pub fn served() -> Self {
        let mut catalog = Self::default();
        for encoded in [
            pb::v1::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            catalog.add_descriptor_set(encoded);
        }
        catalog
    }

    fn add_descriptor_set(&mut self, encoded: &[u8]) {
        // The sets are compiled into the binary; one that does not decode is a build defect.
        let set = FileDescriptorSet::decode(encoded).expect("embedded descriptor set decodes");
        for file in set.file {
            let package = file.package().to_owned();
            for service in file.service {
                let name = format!("{package}.{}", service.name());
                let methods = self.methods.entry(name).or_default();
                methods.extend(service.method.iter().map(|m| {
                    let kind = match (m.client_streaming(), m.server_streaming()) {
                        (false, false) => "unary",
                        (true, false) => "client_stream",
                        (false, true) => "server_stream",
                        (true, true) => "bidi_stream",
                    };
                    (m.name().to_owned(), kind)
                }));
            }
        }
    }

    /// Splits a gRPC path `/pkg.Service/Method` into (service, method) when both are known.
    pub fn resolve<'a>(&self, path: &'a str) -> Option<(&'a str, &'a str)> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        self.methods
            .get(service)
            .is_some_and(|methods| methods.contains_key(method))
            .then_some((service, method))
    }

    /// The kind of a served method (`unary`, `client_stream`, `server_stream` or
    /// `bidi_stream`); `None` when it is not served.
    pub fn kind(&self, service: &str, method: &str) -> Option<&'static str> {
        self.methods.get(service)?.get(method).copied()
    }

    /// Fully qualified names of every served service.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.methods.keys().map(String::as_str)
    }

    /// Method names of one service.
    pub fn methods(&self, service: &str) -> impl Iterator<Item = &str> {
        self.methods
            .get(service)
            .into_iter()
            .flat_map(BTreeMap::keys)
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_holds_every_api_service_and_health() {
        let catalog = ApiCatalog::served();
        for service in API_SERVICES {
            assert!(
                catalog.methods(service).count() > 0,
                "{service} has no methods"
            );
        }
        assert_eq!(
            catalog.resolve("/grpc.health.v1.Health/Check"),
            Some(("grpc.health.v1.Health", "Check"))
        );
        assert_eq!(
            catalog.resolve("/codexcontinue.v1.ChatService/StreamMessage"),
            Some(("codexcontinue.v1.ChatService", "StreamMessage"))
        );
        assert_eq!(catalog.resolve("/codexcontinue.v1.ChatService/Nope"), None);
        assert_eq!(catalog.resolve("/x.Y/Z"), None);
    }

    #[test]
    fn each_method_has_its_kind() {
        let catalog = ApiCatalog::served();
        let chat = "codexcontinue.v1.ChatService";
        assert_eq!(catalog.kind(chat, "SendMessage"), Some("unary"));
        assert_eq!(catalog.kind(chat, "StreamMessage"), Some("server_stream"));
        assert_eq!(
            catalog.kind("grpc.health.v1.Health", "Watch"),
            Some("server_stream")
        );
        assert_eq!(
            catalog.kind(
                "grpc.reflection.v1.ServerReflection",
                "ServerReflectionInfo"
            ),
            Some("bidi_stream")
        );
        assert_eq!(catalog.kind(chat, "Nope"), None);
    }
}
