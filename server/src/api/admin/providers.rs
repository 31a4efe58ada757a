//! AdminService's model provider and model alias calls: proto ↔ settings and errors.

use crate::{
    edge::ApiError,
    llm::{ModelRoute, ProviderSettings},
    pb::v1 as pb,
    store::providers::EntraSettings,
};

/// The settings a `SetProvider` request asks for.
pub(super) fn settings_of(provider: Option<pb::Provider>) -> Result<ProviderSettings, ApiError> {
    let provider = provider.ok_or_else(|| ApiError::invalid("provider", "is required"))?;
    let kind = match provider.kind() {
        pb::ProviderKind::Unspecified => {
            return Err(ApiError::invalid("provider.kind", "is required"));
        }
        pb::ProviderKind::Openai => "openai",
        pb::ProviderKind::AzureOpenai => "azure_openai",
        pb::ProviderKind::Ollama => "ollama",
        pb::ProviderKind::OpenaiCompatible => "openai_compatible",
        pb::ProviderKind::Local => "local",
    };
    Ok(ProviderSettings {
        name: provider.name,
        kind: kind.to_owned(),
        endpoint: provider.endpoint,
        credential_set: false,
        models: provider.models,
        api_version: provider.api_version,
        on_premises: provider.on_premises,
        entra: provider.entra.map(|entra| EntraSettings {
            tenant_id: entra.tenant_id,
            client_id: entra.client_id,
            authority: entra.authority,
            scope: entra.scope,
        }),
        platform_default: false,
        updated_at: time::OffsetDateTime::now_utc(),
    })
}

impl From<ProviderSettings> for pb::Provider {
    fn from(settings: ProviderSettings) -> Self {
        let kind = match settings.kind.as_str() {
            "openai" => pb::ProviderKind::Openai,
            "azure_openai" => pb::ProviderKind::AzureOpenai,
            "ollama" => pb::ProviderKind::Ollama,
            "openai_compatible" => pb::ProviderKind::OpenaiCompatible,
            _ => pb::ProviderKind::Local,
        };
        Self {
            name: settings.name,
            kind: kind.into(),
            endpoint: settings.endpoint,
            credential_set: settings.credential_set,
            models: settings.models,
            api_version: settings.api_version,
            on_premises: settings.on_premises,
            platform_default: settings.platform_default,
            entra: settings.entra.map(|entra| pb::EntraAuth {
                tenant_id: entra.tenant_id,
                client_id: entra.client_id,
                authority: entra.authority,
                scope: entra.scope,
            }),
        }
    }
}

/// The alias a `SetModelRoute` request asks for.
pub(super) fn route_of(route: Option<pb::ModelRoute>) -> Result<ModelRoute, ApiError> {
    let route = route.ok_or_else(|| ApiError::invalid("route", "is required"))?;
    Ok(ModelRoute {
        alias: route.alias,
        targets: route
            .targets
            .into_iter()
            .map(|t| (t.provider, t.model))
            .collect(),
        private_only: route.private_only,
        timeout_ms: route.timeout_ms,
        max_retries: route.max_retries,
    })
}

impl From<ModelRoute> for pb::ModelRoute {
    fn from(route: ModelRoute) -> Self {
        Self {
            alias: route.alias,
            targets: route
                .targets
                .into_iter()
                .map(|(provider, model)| pb::RouteTarget { provider, model })
                .collect(),
            private_only: route.private_only,
            timeout_ms: route.timeout_ms,
            max_retries: route.max_retries,
        }
    }
}
