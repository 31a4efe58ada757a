//! The platform's model provider (`[llm.platform_default]`): configured by the operator,
//! offered to every tenant under its name, read-only for them. A tenant provider of the
//! same name takes its place for that tenant, and it serves the `default` alias of tenants
//! that have not set their own. Its credential lives in the configuration (a secret store
//! through `CODEXCONTINUE_LLM__PLATFORM_DEFAULT__CREDENTIAL`), not in any tenant's rows.

use secrecy::SecretString;
use time::OffsetDateTime;

use super::ProviderSettings;
use crate::config::PlatformProviderConfig;

/// The platform's provider.
#[derive(Debug)]
pub struct PlatformProvider {
    settings: ProviderSettings,
    credential: Option<SecretString>,
}

impl PlatformProvider {
    /// The provider `config` describes (validated when the configuration loaded).
    pub fn new(config: &PlatformProviderConfig) -> Self {
        let endpoint = if config.kind == "openai" && config.endpoint.is_empty() {
            super::openai::OPENAI_ENDPOINT.to_owned()
        } else {
            config.endpoint.trim_end_matches('/').to_owned()
        };
        Self {
            settings: ProviderSettings {
                name: config.name.clone(),
                kind: config.kind.clone(),
                endpoint,
                credential_set: config.credential.is_some(),
                models: config.models.clone(),
                api_version: config.api_version.clone(),
                on_premises: config.on_premises,
                entra: None,
                platform_default: true,
                updated_at: OffsetDateTime::UNIX_EPOCH,
            },
            credential: config.credential.clone(),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// Its settings as tenants see them.
    pub fn settings(&self) -> ProviderSettings {
        self.settings.clone()
    }

    /// Its credential.
    pub fn credential(&self) -> Option<SecretString> {
        self.credential.clone()
    }

    /// The model serving tenants' `default` alias.
    pub fn default_model(&self) -> &str {
        self.settings
            .models
            .first()
            .map_or_else(Default::default, String::as_str)
    }
}
