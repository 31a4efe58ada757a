//! From a model reference to clients: `provider/model` names one model of one of the
//! tenant's providers (or of the platform's); an alias names the ordered targets the
//! tenant gave it, or, for `default` when the tenant has none, the platform provider's
//! first model.

use std::{sync::Arc, time::Duration};

use secrecy::SecretString;
use sqlx::PgConnection;

use super::{
    ChatProvider, ProviderError, ProviderSettings, Providers, entra::EntraCredential,
    ollama::OllamaChat, openai::OpenAiChat, platform::PlatformProvider, providers::invalid,
};
use crate::{
    auth::Principal,
    crypto::PROVIDER_CREDENTIALS,
    store::{
        self, StoreError,
        providers::{EntraSettings, ProviderRow},
    },
    tenancy,
};

/// Time a provider has to start answering, unless an alias says otherwise.
const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Retries of a `provider/model` reference on retryable failures.
const DEFAULT_RETRIES: u32 = 2;
/// The alias the platform provider serves for tenants without one.
const DEFAULT_ALIAS: &str = "default";

/// The targets of a model reference, tried in order.
pub struct Route {
    /// Targets, first choice first.
    pub targets: Vec<ResolvedModel>,
    /// Time each attempt has to start answering.
    pub attempt_timeout: Duration,
    /// Retries per target on retryable failures.
    pub max_retries: u32,
}

/// A model ready to be asked.
pub struct ResolvedModel {
    /// The provider's name.
    pub provider: String,
    /// The model's name at the provider.
    pub model: String,
    /// Whether prompts stay on the tenant's premises.
    pub on_premises: bool,
    /// The client.
    pub client: Box<dyn ChatProvider>,
}

/// A provider found by name.
pub(super) enum Found {
    /// One of the tenant's.
    Tenant(Box<ProviderRow>),
    /// The platform's.
    Platform(Arc<PlatformProvider>),
}

impl Found {
    /// Its settings.
    pub(super) fn settings(&self) -> ProviderSettings {
        match self {
            Found::Tenant(row) => ProviderSettings::from((**row).clone()),
            Found::Platform(platform) => platform.settings(),
        }
    }
}

/// What a client is built from.
struct Endpoint<'a> {
    kind: &'a str,
    base: &'a str,
    api_version: &'a str,
    key: Option<SecretString>,
    entra: Option<EntraSettings>,
}

impl Providers {
    /// The targets `reference` names for the caller's tenant: one for `provider/model`, the
    /// alias's list (on-premises ones only for a private alias) otherwise.
    ///
    /// # Errors
    /// [`ProviderError`] for an unknown provider, model or alias, or when no target can
    /// serve chat.
    pub async fn route(
        &self,
        principal: &Principal,
        reference: &str,
    ) -> Result<Route, ProviderError> {
        let mut tx = tenancy::begin(&self.db, principal.tenant).await?;
        let route = if let Some((provider, model)) = reference.split_once('/') {
            if provider.is_empty() || model.is_empty() {
                return Err(invalid("model", "must be an alias or \"provider/model\""));
            }
            Route {
                targets: vec![self.target(&mut tx, principal, provider, model).await?],
                attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
                max_retries: DEFAULT_RETRIES,
            }
        } else {
            self.alias(&mut tx, principal, reference).await?
        };
        tx.commit().await.map_err(StoreError::from)?;
        Ok(route)
    }

    /// The targets of alias `alias` in the scoped tenant.
    async fn alias(
        &self,
        tx: &mut PgConnection,
        principal: &Principal,
        alias: &str,
    ) -> Result<Route, ProviderError> {
        let Some(row) = store::model_routes::get(&mut *tx, alias).await? else {
            if let Some(platform) = self.platform.as_ref().filter(|_| alias == DEFAULT_ALIAS) {
                let (provider, model) = (platform.name().to_owned(), platform.default_model());
                return Ok(Route {
                    targets: vec![self.target(tx, principal, &provider, model).await?],
                    attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
                    max_retries: DEFAULT_RETRIES,
                });
            }
            let mut known: Vec<String> = store::model_routes::list(&mut *tx, None, 100)
                .await?
                .into_iter()
                .map(|r| r.alias)
                .collect();
            if self.platform.is_some() && !known.iter().any(|a| a == DEFAULT_ALIAS) {
                known.insert(0, DEFAULT_ALIAS.to_owned());
            }
            return Err(ProviderError::UnknownAlias {
                alias: alias.to_owned(),
                known,
            });
        };
        let mut targets = Vec::with_capacity(row.targets.0.len());
        let mut last_refusal = None;
        for (provider, model) in &row.targets.0 {
            match self.target(&mut *tx, principal, provider, model).await {
                Ok(target) if row.private_only && !target.on_premises => {
                    tracing::warn!(
                        alias,
                        provider,
                        "private alias skips a provider off the premises"
                    );
                }
                Ok(target) => targets.push(target),
                Err(err @ (ProviderError::Store(_) | ProviderError::Crypto(_))) => {
                    return Err(err);
                }
                Err(err) => {
                    tracing::warn!(alias, provider, error = %err, "alias target skipped");
                    last_refusal = Some(err);
                }
            }
        }
        if targets.is_empty() {
            return Err(last_refusal.unwrap_or(ProviderError::NoTarget(alias.to_owned())));
        }
        Ok(Route {
            targets,
            attempt_timeout: match u64::try_from(row.timeout_ms) {
                Ok(0) | Err(_) => DEFAULT_ATTEMPT_TIMEOUT,
                Ok(ms) => Duration::from_millis(ms),
            },
            max_retries: u32::try_from(row.max_retries).unwrap_or(0),
        })
    }

    /// The client for `model` of `provider` in the scoped tenant: its own provider of
    /// that name, else the platform's.
    async fn target(
        &self,
        conn: &mut PgConnection,
        principal: &Principal,
        provider: &str,
        model: &str,
    ) -> Result<ResolvedModel, ProviderError> {
        let found = self
            .find(&mut *conn, provider)
            .await?
            .ok_or_else(|| ProviderError::NotFound(provider.to_owned()))?;
        let settings = found.settings();
        let key = match found {
            Found::Tenant(row) if !row.credential_sealed.is_empty() => {
                let opened = self
                    .sealer
                    .open(
                        conn,
                        principal.tenant,
                        PROVIDER_CREDENTIALS.table,
                        &row.name,
                        &row.credential_sealed,
                    )
                    .await?;
                Some(SecretString::from(
                    String::from_utf8_lossy(&opened).into_owned(),
                ))
            }
            Found::Tenant(_) => None,
            Found::Platform(platform) => platform.credential(),
        };
        if !settings.models.is_empty() && !settings.models.iter().any(|m| m == model) {
            return Err(ProviderError::UnknownModel {
                provider: provider.to_owned(),
                model: model.to_owned(),
            });
        }
        let client = self.client(Endpoint {
            kind: &settings.kind,
            base: &settings.endpoint,
            api_version: &settings.api_version,
            key,
            entra: settings.entra.clone(),
        })?;
        Ok(ResolvedModel {
            provider: settings.name,
            model: model.to_owned(),
            on_premises: settings.on_premises,
            client,
        })
    }

    /// The scoped tenant's provider `name`, else the platform's of that name.
    ///
    /// # Errors
    /// [`StoreError`] when Postgres fails.
    pub(super) async fn find(
        &self,
        conn: &mut PgConnection,
        name: &str,
    ) -> Result<Option<Found>, StoreError> {
        if let Some(row) = store::providers::get(conn, name).await? {
            return Ok(Some(Found::Tenant(Box::new(row))));
        }
        Ok(self
            .platform
            .as_ref()
            .filter(|platform| platform.name() == name)
            .map(|platform| Found::Platform(platform.clone())))
    }

    /// A client speaking `endpoint`'s wire format.
    fn client(&self, endpoint: Endpoint<'_>) -> Result<Box<dyn ChatProvider>, ProviderError> {
        Ok(match endpoint.kind {
            "openai" | "openai_compatible" => Box::new(OpenAiChat::openai(
                self.http.clone(),
                endpoint.base,
                endpoint.key,
            )),
            "azure_openai" => {
                // With Entra ID the credential is the app's client secret, never sent to
                // Azure OpenAI itself.
                let (key, entra) = match endpoint.entra {
                    Some(settings) => (
                        None,
                        Some(EntraCredential {
                            http: self.http.clone(),
                            tokens: self.entra_tokens.clone(),
                            settings,
                            secret: endpoint.key,
                        }),
                    ),
                    None => (endpoint.key, None),
                };
                Box::new(OpenAiChat::azure(
                    self.http.clone(),
                    endpoint.base,
                    endpoint.api_version,
                    key,
                    entra,
                ))
            }
            "ollama" => Box::new(OllamaChat::new(self.http.clone(), endpoint.base)),
            _ => return Err(ProviderError::Unsupported("local")),
        })
    }
}
