//! From a model reference to clients: `provider/model` names one model of one of the
//! tenant's providers (or of the platform's, or of the built-in `local` provider: the
//! language models this replica serves); an alias names the ordered targets the tenant
//! gave it, or, when the tenant has none, `default` the platform provider's first model
//! and `private` the default local model.

use std::{sync::Arc, time::Duration};

use secrecy::SecretString;
use sqlx::PgConnection;

use super::{
    ChatProvider, ProviderError, ProviderSettings, Providers, entra::EntraCredential,
    local::LocalChat, ollama::OllamaChat, openai::OpenAiChat, platform::PlatformProvider,
    providers::invalid,
};
use crate::{
    caller::Principal,
    crypto::PROVIDER_CREDENTIALS,
    store::{
        self, StoreError,
        providers::{EntraSettings, ProviderRow},
    },
};

/// Time a provider has to start answering, unless an alias says otherwise.
const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Retries of a `provider/model` reference on retryable failures.
const DEFAULT_RETRIES: u32 = 2;
/// The alias the platform provider serves for tenants without one.
const DEFAULT_ALIAS: &str = "default";
/// The alias the local models serve for tenants without one.
const PRIVATE_ALIAS: &str = "private";
/// Most of a tenant's own aliases an unknown-alias error lists.
const MAX_LISTED_ALIASES: u32 = 100;
/// The built-in provider of the server's own language models.
pub const LOCAL_PROVIDER: &str = "local";

/// The targets of a model reference, tried in order. Cheap to clone: the clients are
/// shared.
#[derive(Clone)]
pub struct Route {
    /// Targets, first choice first.
    pub targets: Vec<ResolvedModel>,
    /// Time each attempt has to start answering.
    pub attempt_timeout: Duration,
    /// Retries per target on retryable failures.
    pub max_retries: u32,
}

/// A model ready to be asked.
#[derive(Clone)]
pub struct ResolvedModel {
    /// The provider's name.
    pub provider: String,
    /// The model's name at the provider.
    pub model: String,
    /// Whether prompts stay on the tenant's premises.
    pub on_premises: bool,
    /// Whether it is offered the server's own tools (plugins): OpenAI-style providers
    /// and Ollama; not the small local models.
    pub takes_tools: bool,
    /// The client.
    pub client: Arc<dyn ChatProvider>,
}

/// A provider found by name.
pub(super) enum Found {
    /// One of the tenant's.
    Tenant(Box<ProviderRow>),
    /// The platform's.
    Platform(Arc<PlatformProvider>),
    /// The built-in provider of this replica's language models.
    Local(Box<ProviderSettings>),
}

impl Found {
    /// Its settings.
    pub(super) fn settings(&self) -> ProviderSettings {
        match self {
            Found::Tenant(row) => ProviderSettings::from((**row).clone()),
            Found::Platform(platform) => platform.settings(),
            Found::Local(settings) => (**settings).clone(),
        }
    }
}

/// What a client is built from.
struct Endpoint<'a> {
    /// The operator's own provider (configured, not chosen by a tenant): reached without
    /// the tenants' egress policy.
    operator: bool,
    kind: &'a str,
    base: &'a str,
    api_version: &'a str,
    key: Option<SecretString>,
    entra: Option<EntraSettings>,
}

impl Providers {
    /// The targets `reference` names for the caller's tenant, read in `tx` (scoped to it):
    /// one for `provider/model`, the alias's list (on-premises ones only for a private
    /// alias) otherwise.
    ///
    /// # Errors
    /// [`ProviderError`] for an unknown provider, model or alias, or when no target can
    /// serve chat.
    pub async fn route(
        &self,
        tx: &mut PgConnection,
        principal: &Principal,
        reference: &str,
    ) -> Result<Route, ProviderError> {
        if let Some((provider, model)) = reference.split_once('/') {
            if provider.is_empty() || model.is_empty() {
                return Err(invalid("model", "must be an alias or \"provider/model\""));
            }
            Ok(Route {
                targets: vec![self.target(tx, principal, provider, model).await?],
                attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
                max_retries: DEFAULT_RETRIES,
            })
        } else {
            self.alias(tx, principal, reference).await
        }
    }

    /// The aliases the caller's tenant may ask for: the built-in `default` (when the
    /// platform has a provider) and `private` (when this replica serves a language
    /// model), then the tenant's own by name; at most `limit` of the tenant's.
    ///
    /// # Errors
    /// [`ProviderError::Store`] when Postgres fails.
    pub async fn aliases(
        &self,
        principal: &Principal,
        limit: u32,
    ) -> Result<Vec<String>, ProviderError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let known = self.known_aliases(&mut tx, limit).await?;
        tx.commit().await?;
        Ok(known)
    }

    async fn known_aliases(
        &self,
        tx: &mut PgConnection,
        limit: u32,
    ) -> Result<Vec<String>, ProviderError> {
        let mut known: Vec<String> = store::model_routes::list(&mut *tx, None, i64::from(limit))
            .await?
            .into_iter()
            .map(|r| r.alias)
            .collect();
        if self.local().is_some() && !known.iter().any(|a| a == PRIVATE_ALIAS) {
            known.insert(0, PRIVATE_ALIAS.to_owned());
        }
        if self.platform.is_some() && !known.iter().any(|a| a == DEFAULT_ALIAS) {
            known.insert(0, DEFAULT_ALIAS.to_owned());
        }
        Ok(known)
    }

    /// The targets of alias `alias` in the scoped tenant.
    async fn alias(
        &self,
        tx: &mut PgConnection,
        principal: &Principal,
        alias: &str,
    ) -> Result<Route, ProviderError> {
        let Some(row) = store::model_routes::get(&mut *tx, alias).await? else {
            let builtin = match alias {
                DEFAULT_ALIAS => self
                    .platform
                    .as_ref()
                    .map(|p| (p.name().to_owned(), p.default_model().to_owned())),
                PRIVATE_ALIAS => self
                    .local()
                    .and_then(|local| Some((local.name, local.models.first()?.clone()))),
                _ => None,
            };
            if let Some((provider, model)) = builtin {
                return Ok(Route {
                    targets: vec![self.target(tx, principal, &provider, &model).await?],
                    attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
                    max_retries: DEFAULT_RETRIES,
                });
            }
            return Err(ProviderError::UnknownAlias {
                alias: alias.to_owned(),
                known: self.known_aliases(tx, MAX_LISTED_ALIASES).await?,
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
    pub(super) async fn target(
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
        let operator = matches!(found, Found::Platform(_));
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
            Found::Tenant(_) | Found::Local(_) => None,
            Found::Platform(platform) => platform.credential(),
        };
        if !settings.models.is_empty() && !settings.models.iter().any(|m| m == model) {
            return Err(ProviderError::UnknownModel {
                provider: provider.to_owned(),
                model: model.to_owned(),
            });
        }
        if !operator {
            // Checked again at each use: the operator's allow-list may have narrowed since
            // the URL was saved, and addresses written as IPs pass no resolver.
            let urls = [
                Some(settings.endpoint.as_str()),
                settings.entra.as_ref().map(|e| e.authority.as_str()),
            ];
            for url in urls.into_iter().flatten().filter(|url| !url.is_empty()) {
                self.egress
                    .check_url(url)
                    .await
                    .map_err(|err| ProviderError::Unreachable {
                        provider: settings.name.clone(),
                        reason: err.to_string(),
                    })?;
            }
        }
        let client = self.client(Endpoint {
            operator,
            kind: &settings.kind,
            base: &settings.endpoint,
            api_version: &settings.api_version,
            key,
            entra: settings.entra.clone(),
        })?;
        Ok(ResolvedModel {
            takes_tools: matches!(
                settings.kind.as_str(),
                "openai" | "azure_openai" | "openai_compatible" | "ollama"
            ),
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
        if let Some(platform) = self.platform.as_ref().filter(|p| p.name() == name) {
            return Ok(Some(Found::Platform(platform.clone())));
        }
        Ok(self
            .local()
            .filter(|local| local.name == name)
            .map(|local| Found::Local(Box::new(local))))
    }

    /// The built-in `local` provider, when this replica serves language models.
    pub(super) fn local(&self) -> Option<ProviderSettings> {
        let models = self.registry.generation_models();
        (!models.is_empty()).then(|| ProviderSettings {
            name: LOCAL_PROVIDER.to_owned(),
            kind: "local".to_owned(),
            endpoint: String::new(),
            credential_set: false,
            models,
            api_version: String::new(),
            on_premises: true,
            entra: None,
            platform_default: true,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        })
    }

    /// A client speaking `endpoint`'s wire format.
    fn client(&self, endpoint: Endpoint<'_>) -> Result<Arc<dyn ChatProvider>, ProviderError> {
        let http = if endpoint.operator {
            &self.operator_http
        } else {
            &self.http
        };
        Ok(match endpoint.kind {
            "openai" | "openai_compatible" => Arc::new(OpenAiChat::openai(
                http.clone(),
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
                            http: http.clone(),
                            tokens: self.entra_tokens.clone(),
                            settings,
                            secret: endpoint.key,
                        }),
                    ),
                    None => (endpoint.key, None),
                };
                Arc::new(OpenAiChat::azure(
                    http.clone(),
                    endpoint.base,
                    endpoint.api_version,
                    key,
                    entra,
                ))
            }
            "ollama" => Arc::new(OllamaChat::new(http.clone(), endpoint.base)),
            _ => Arc::new(LocalChat::new(self.registry.clone())),
        })
    }
}
