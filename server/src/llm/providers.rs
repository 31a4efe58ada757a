//! A tenant's model providers: settings kept in Postgres (credential sealed, never
//! returned), and the client for a `provider/model` reference.

use std::{sync::Arc, time::Duration};

use serde_json::json;
use time::OffsetDateTime;

use sqlx::types::Json;

use super::{
    entra::{COGNITIVE_SERVICES_SCOPE, EntraTokens, PUBLIC_AUTHORITY},
    platform::PlatformProvider,
};
use crate::{
    audit::{self, NewEvent},
    cache::SettingsChanges,
    caller::Principal,
    config::PlatformProviderConfig,
    crypto::{CryptoError, PROVIDER_CREDENTIALS, Sealer},
    egress::Egress,
    inference::Registry,
    store::{
        self, Database, StoreError,
        providers::{EntraSettings, ProviderRow},
    },
};

/// Most models one provider may list.
const MAX_MODELS: usize = 100;
/// Time to connect to a provider.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence from a provider in the middle of an answer (a model thinking before its
/// first token included).
const READ_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest one provider call may take, streamed answers included.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(1800);

/// Why a provider operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// A setting is unacceptable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// No such provider in the tenant.
    #[error("no model provider {0:?}")]
    NotFound(String),
    /// The provider does not offer the model.
    #[error("model provider {provider:?} does not offer model {model:?}")]
    UnknownModel {
        /// The provider.
        provider: String,
        /// The model asked for.
        model: String,
    },
    /// A call names a model alias the tenant has not configured.
    #[error(
        "unknown model alias {alias:?}; configured aliases: {} (or name \"provider/model\")",
        if known.is_empty() { "none yet, see AdminService.SetModelRoute".to_owned() } else { known.join(", ") }
    )]
    UnknownAlias {
        /// The alias asked for.
        alias: String,
        /// The tenant's aliases (the first hundred).
        known: Vec<String>,
    },
    /// No such model alias to change.
    #[error("no model alias {0:?}")]
    RouteNotFound(String),
    /// An alias has no target that may serve it.
    #[error("model alias {0:?} has no provider that may serve it")]
    NoTarget(String),
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The credential could not be sealed or opened.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    /// The provider's address is not one this server may reach for tenants (any more).
    #[error(
        "model provider {provider:?} is not reachable under this server's egress policy: {reason}"
    )]
    Unreachable {
        /// The provider.
        provider: String,
        /// Why its address is refused.
        reason: String,
    },
}

pub(super) fn invalid(field: &'static str, reason: impl Into<String>) -> ProviderError {
    ProviderError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A provider's settings, without its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    /// Tenant-unique name.
    pub name: String,
    /// `openai`, `azure_openai`, `ollama`, `openai_compatible` or `local`.
    pub kind: String,
    /// Base URL.
    pub endpoint: String,
    /// Whether a credential is stored.
    pub credential_set: bool,
    /// Models it serves; empty: any.
    pub models: Vec<String>,
    /// Azure OpenAI `api-version`.
    pub api_version: String,
    /// Inside the tenant's premises.
    pub on_premises: bool,
    /// Azure OpenAI through Microsoft Entra ID: the app registration (the credential is
    /// its client secret).
    pub entra: Option<EntraSettings>,
    /// The platform's provider, offered to every tenant and read-only for them.
    pub platform_default: bool,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl From<ProviderRow> for ProviderSettings {
    fn from(row: ProviderRow) -> Self {
        Self {
            name: row.name,
            kind: row.kind,
            endpoint: row.endpoint,
            credential_set: !row.credential_sealed.is_empty(),
            models: row.models,
            api_version: row.api_version,
            on_premises: row.on_premises,
            entra: row.entra.map(|entra| entra.0),
            platform_default: false,
            updated_at: row.updated_at,
        }
    }
}

/// The tenant's model providers.
#[derive(Clone)]
pub struct Providers {
    pub(super) db: Database,
    pub(super) sealer: Sealer,
    /// Reaches tenants' endpoints, through the egress policy.
    pub(super) http: reqwest::Client,
    /// Reaches the operator's platform provider.
    pub(super) operator_http: reqwest::Client,
    pub(super) egress: Egress,
    pub(super) platform: Option<Arc<PlatformProvider>>,
    pub(super) entra_tokens: EntraTokens,
    pub(super) registry: Arc<Registry>,
    pub(super) changes: Arc<SettingsChanges>,
}

impl Providers {
    /// Providers kept in `db`, credentials sealed with `sealer`, tenants' endpoints
    /// reached only as `egress` allows, the platform's `platform` provider when it has
    /// one, and the local models of `registry`; changes of providers and aliases are
    /// announced through `changes`.
    ///
    /// # Errors
    /// [`ProviderError::Http`] when the HTTP client cannot be built.
    pub fn new(
        db: Database,
        sealer: Sealer,
        egress: Egress,
        platform: Option<&PlatformProviderConfig>,
        registry: Arc<Registry>,
        changes: Arc<SettingsChanges>,
    ) -> Result<Self, ProviderError> {
        let http = egress
            .client(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .build()
            .map_err(|err| ProviderError::Http(err.to_string()))?;
        let operator_http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| ProviderError::Http(err.to_string()))?;
        Ok(Self {
            db,
            sealer,
            http,
            operator_http,
            egress,
            platform: platform.map(|config| Arc::new(PlatformProvider::new(config))),
            entra_tokens: EntraTokens::default(),
            registry,
            changes,
        })
    }

    /// Creates or replaces a provider of the caller's tenant; an empty `credential` keeps
    /// the stored one. Recorded as `provider.set` with the change.
    ///
    /// # Errors
    /// [`ProviderError::Invalid`] naming the bad setting, or a failure.
    pub async fn set(
        &self,
        principal: &Principal,
        settings: &ProviderSettings,
        credential: &str,
    ) -> Result<ProviderSettings, ProviderError> {
        if !crate::tenancy::is_identifier(&settings.name) {
            return Err(invalid(
                "provider.name",
                "must be lowercase letters, digits, '_' or '-', starting with a letter, at most 63",
            ));
        }
        let endpoint = check_endpoint(&settings.kind, &settings.endpoint)?;
        if !endpoint.is_empty() {
            self.egress
                .check_url(&endpoint)
                .await
                .map_err(|err| invalid("provider.endpoint", err.to_string()))?;
        }
        if settings.kind == "azure_openai" && settings.api_version.trim().is_empty() {
            return Err(invalid(
                "provider.api_version",
                "is required for Azure OpenAI",
            ));
        }
        if settings.models.len() > MAX_MODELS
            || settings
                .models
                .iter()
                .any(|m| m.trim().is_empty() || m.chars().count() > 200 || m.contains('/'))
        {
            return Err(invalid(
                "provider.models",
                format!("at most {MAX_MODELS} names of 1 to 200 characters, without '/'"),
            ));
        }
        let entra = settings
            .entra
            .as_ref()
            .map(|entra| check_entra(&settings.kind, entra))
            .transpose()?;
        if let Some(entra) = &entra {
            self.egress
                .check_url(&entra.authority)
                .await
                .map_err(|err| invalid("provider.entra.authority", err.to_string()))?;
        }
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let credential_sealed = if credential.is_empty() {
            Vec::new()
        } else {
            self.sealer
                .seal(
                    &mut tx,
                    principal.tenant,
                    PROVIDER_CREDENTIALS.table,
                    &settings.name,
                    credential.as_bytes(),
                )
                .await?
        };
        let row = ProviderRow {
            name: settings.name.clone(),
            kind: settings.kind.clone(),
            endpoint,
            credential_sealed,
            models: settings
                .models
                .iter()
                .map(|m| m.trim().to_owned())
                .collect(),
            api_version: settings.api_version.trim().to_owned(),
            on_premises: settings.on_premises,
            entra: entra.map(Json),
            updated_at: OffsetDateTime::now_utc(),
        };
        let saved = store::providers::upsert(&mut tx, &row).await?;
        let details = json!({
            "kind": saved.kind,
            "endpoint": saved.endpoint,
            "on_premises": saved.on_premises,
            "entra": saved.entra.as_ref().map(|e| json!({ "tenant_id": e.tenant_id, "client_id": e.client_id })),
            "credential_changed": !credential.is_empty(),
        });
        let event = NewEvent::by(principal, "provider.set", "provider", &saved.name, details);
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        self.changes.changed(principal.tenant).await;
        Ok(saved.into())
    }

    /// A page of the caller's tenant's providers, by name, with the platform's provider
    /// and the built-in `local` one unless the tenant has one of the same name.
    ///
    /// # Errors
    /// [`ProviderError::Store`] when Postgres fails.
    pub async fn list(
        &self,
        principal: &Principal,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ProviderSettings>, ProviderError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let rows = store::providers::list(&mut tx, after, i64::from(limit)).await?;
        let mut builtin = Vec::new();
        for settings in self
            .platform
            .iter()
            .map(|p| p.settings())
            .chain(self.local())
        {
            if after.is_none_or(|after| settings.name.as_str() > after)
                && store::providers::get(&mut tx, &settings.name)
                    .await?
                    .is_none()
            {
                builtin.push(settings);
            }
        }
        tx.commit().await?;
        let mut providers: Vec<ProviderSettings> =
            rows.into_iter().map(Into::into).chain(builtin).collect();
        providers.sort_by(|a, b| a.name.cmp(&b.name));
        providers.truncate(limit as usize);
        Ok(providers)
    }

    /// Removes a provider, recorded as `provider.delete`.
    ///
    /// # Errors
    /// [`ProviderError::NotFound`] when there is none by that name.
    pub async fn delete(&self, principal: &Principal, name: &str) -> Result<(), ProviderError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        if !store::providers::delete(&mut tx, name).await? {
            return Err(ProviderError::NotFound(name.to_owned()));
        }
        let event = NewEvent::by(principal, "provider.delete", "provider", name, json!({}));
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        self.changes.changed(principal.tenant).await;
        Ok(())
    }
}

/// The Entra ID registration to store: only for Azure OpenAI, ids of letters, digits, `.`
/// and `-`, an https authority (default: the public cloud) and a scope (default:
/// Cognitive Services).
fn check_entra(kind: &str, entra: &EntraSettings) -> Result<EntraSettings, ProviderError> {
    if kind != "azure_openai" {
        return Err(invalid(
            "provider.entra",
            "applies to Azure OpenAI providers only",
        ));
    }
    let id_like = |value: &str| {
        !value.is_empty()
            && value.len() <= 256
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    };
    if !id_like(entra.tenant_id.trim()) {
        return Err(invalid(
            "provider.entra.tenant_id",
            "is required: the directory (tenant) id or domain of the app registration",
        ));
    }
    if !id_like(entra.client_id.trim()) {
        return Err(invalid(
            "provider.entra.client_id",
            "is required: the application (client) id",
        ));
    }
    let authority = match entra.authority.trim().trim_end_matches('/') {
        "" => PUBLIC_AUTHORITY.to_owned(),
        other => other.to_owned(),
    };
    if !url::Url::parse(&authority)
        .is_ok_and(|url| url.host().is_some() && matches!(url.scheme(), "https" | "http"))
    {
        return Err(invalid(
            "provider.entra.authority",
            "must be an http(s) URL, e.g. https://login.microsoftonline.us",
        ));
    }
    let scope = match entra.scope.trim() {
        "" => COGNITIVE_SERVICES_SCOPE.to_owned(),
        other if other.chars().any(char::is_whitespace) || other.len() > 512 => {
            return Err(invalid(
                "provider.entra.scope",
                "must be one scope, e.g. https://cognitiveservices.azure.us/.default",
            ));
        }
        other => other.to_owned(),
    };
    Ok(EntraSettings {
        tenant_id: entra.tenant_id.trim().to_owned(),
        client_id: entra.client_id.trim().to_owned(),
        authority,
        scope,
    })
}

/// The endpoint to store: validated, defaulted for OpenAI, empty for local models.
fn check_endpoint(kind: &str, endpoint: &str) -> Result<String, ProviderError> {
    let endpoint = endpoint.trim().trim_end_matches('/');
    match kind {
        "local" => return Ok(String::new()),
        "openai" if endpoint.is_empty() => return Ok(super::openai::OPENAI_ENDPOINT.to_owned()),
        "openai" | "azure_openai" | "ollama" | "openai_compatible" => {}
        _ => return Err(invalid("provider.kind", "is required")),
    }
    match url::Url::parse(endpoint) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(endpoint.to_owned())
        }
        _ => Err(invalid(
            "provider.endpoint",
            "must be an http(s) URL, e.g. https://example-resource.openai.azure.com",
        )),
    }
}
