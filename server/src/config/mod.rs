//! The server's one typed configuration.
//!
//! Layers, later ones winning: built-in defaults, an optional TOML file (`--config`),
//! `DATABASE_URL` / `REDIS_URL`, then `CODEXCONTINUE_<SECTION>__<KEY>` variables (for example
//! `CODEXCONTINUE_SERVER__LISTEN=0.0.0.0:50051`). Loading validates everything, so a wrong
//! or missing setting stops the server before it binds anything, with a message that names
//! the setting and says how to fix it. Secrets are wrapped in [`SecretString`] and masked
//! wherever the configuration is printed.

use std::path::{Path, PathBuf};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

mod memory;
mod sections;
mod validate;

pub use sections::{
    AuditConfig, AuthConfig, BreakerConfig, CryptoConfig, DatabaseConfig, DeviceChoice,
    EgressConfig, HealthConfig, InferenceConfig, JobsConfig, LlmConfig, LogFormat,
    PlatformProviderConfig, PluginsConfig, Price, RateLimitConfig, RedisConfig, ReplicaRole,
    ServerConfig, TelemetryConfig,
};

pub use memory::{MAX_TOP_K, MemoryConfig, RankingWeights};

use validate::{check_url, key_32, non_zero, positive};

/// Most calls a replica may be told to run at once (well within what a semaphore counts).
pub const MAX_CONCURRENT_CALLS: usize = 1 << 20;

/// Longest audit retention accepted (100 years), here and by the retention API.
pub const MAX_RETENTION_DAYS: i32 = 36_525;

/// Sections of the configuration; only `CODEXCONTINUE_<SECTION>__*` variables are read, so
/// unrelated variables with the same prefix are left alone.
const SECTIONS: &[&str] = &[
    "server",
    "database",
    "redis",
    "telemetry",
    "health",
    "rate_limit",
    "auth",
    "crypto",
    "audit",
    "llm",
    "jobs",
    "inference",
    "memory",
    "egress",
    "plugins",
];

/// Everything the server needs to run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The listener and request handling.
    pub server: ServerConfig,
    /// PostgreSQL, where all durable state lives.
    pub database: DatabaseConfig,
    /// Redis: caches, rate limits, pub/sub between replicas.
    pub redis: RedisConfig,
    /// Logs.
    pub telemetry: TelemetryConfig,
    /// Dependency probes behind the health service and `/readyz`.
    pub health: HealthConfig,
    /// Request rate limits per caller and per tenant.
    pub rate_limit: RateLimitConfig,
    /// SSO login and sessions.
    pub auth: AuthConfig,
    /// Encryption at rest.
    pub crypto: CryptoConfig,
    /// The audit trail: checkpoints, retention, group commit.
    pub audit: AuditConfig,
    /// Model calls.
    pub llm: LlmConfig,
    /// Background jobs.
    pub jobs: JobsConfig,
    /// Local models.
    pub inference: InferenceConfig,
    /// Memory.
    pub memory: MemoryConfig,
    /// Outbound addresses tenants may choose.
    pub egress: EgressConfig,
    /// Tenants' plugins.
    pub plugins: PluginsConfig,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--config` names a file that is not there.
    #[error("config file {0} does not exist; fix the --config path or leave it out")]
    MissingFile(PathBuf),
    /// A value has the wrong type or syntax, or a key is unknown.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A required setting has no value.
    #[error("{setting} is not set: {hint}")]
    Missing {
        /// Dotted name of the setting.
        setting: &'static str,
        /// How to set it.
        hint: &'static str,
    },
    /// A value parsed but is not acceptable.
    #[error("{setting} is invalid: {reason}")]
    Rejected {
        /// Dotted name of the setting.
        setting: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

impl Config {
    /// Loads the layered configuration from `file` (if given) and the process environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first wrong or missing setting.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::MissingFile(path.to_owned()));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let figment = figment
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database.url".into()),
            )
            .merge(Env::raw().only(&["REDIS_URL"]).map(|_| "redis.url".into()))
            .merge(Env::prefixed("CODEXCONTINUE_").split("__").filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                SECTIONS
                    .iter()
                    .any(|section| key.starts_with(&format!("{section}.")))
            }));
        let config: Config = figment
            .extract()
            .map_err(|err| ConfigError::Invalid(one_line(&err)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first unacceptable setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let database_url = self.database.url.as_ref().ok_or(ConfigError::Missing {
            setting: "database.url",
            hint: "set DATABASE_URL (e.g. postgres://user:password@127.0.0.1:5432/codexcontinue) \
                   or [database] url in the config file",
        })?;
        check_url("database.url", database_url, &["postgres", "postgresql"])?;
        if let Some(url) = &self.database.migration_url {
            check_url("database.migration_url", url, &["postgres", "postgresql"])?;
        }
        // Only `serve` needs Redis (it says so when the URL is missing); `migrate` and
        // `bootstrap` run without it.
        if let Some(redis_url) = &self.redis.url {
            check_url(
                "redis.url",
                redis_url,
                &["redis", "rediss", "redis+unix", "unix"],
            )?;
        }
        positive(
            "database.max_connections",
            self.database.max_connections as usize,
        )?;
        positive("redis.pool_size", self.redis.pool_size)?;
        if self.redis.key_prefix.contains(['{', '}']) {
            return Err(ConfigError::Rejected {
                setting: "redis.key_prefix",
                reason: "must not contain { or }: Redis Cluster reads braces as a hash tag"
                    .to_owned(),
            });
        }
        positive(
            "server.max_concurrent_requests_per_connection",
            self.server.max_concurrent_requests_per_connection,
        )?;
        positive(
            "server.max_concurrent_calls",
            self.server.max_concurrent_calls,
        )?;
        if self.server.max_concurrent_calls > MAX_CONCURRENT_CALLS {
            return Err(ConfigError::Rejected {
                setting: "server.max_concurrent_calls",
                reason: format!("must be at most {MAX_CONCURRENT_CALLS}"),
            });
        }
        non_zero("server.request_timeout", self.server.request_timeout)?;
        non_zero("database.connect_timeout", self.database.connect_timeout)?;
        non_zero("redis.connect_timeout", self.redis.connect_timeout)?;
        non_zero("health.probe_interval", self.health.probe_interval)?;
        non_zero("health.probe_timeout", self.health.probe_timeout)?;
        self.validate_rate_limits()?;
        self.validate_auth()?;
        if let Some(key) = &self.crypto.master_key {
            key_32("crypto.master_key", key)?;
        }
        self.validate_audit()?;
        self.validate_egress()?;
        self.validate_jobs()?;
        self.validate_plugins()?;
        if let Err(err) = self
            .telemetry
            .log_filter
            .parse::<tracing_subscriber::EnvFilter>()
        {
            return Err(ConfigError::Rejected {
                setting: "telemetry.log_filter",
                reason: format!("{err} (example: \"info,codexcontinue=debug\")"),
            });
        }
        for origin in &self.server.cors_allowed_origins {
            if origin != "*" && http::HeaderValue::from_str(origin).is_err() {
                return Err(ConfigError::Rejected {
                    setting: "server.cors_allowed_origins",
                    reason: format!(
                        "{origin:?} is not a valid origin (example: \"https://admin.example.com\")"
                    ),
                });
            }
        }
        Ok(())
    }

    fn validate_plugins(&self) -> Result<(), ConfigError> {
        let plugins = &self.plugins;
        non_zero("plugins.refresh_interval", plugins.refresh_interval)?;
        non_zero("plugins.turn_budget", plugins.turn_budget)?;
        if plugins.wasm_fuel == 0 {
            return Err(ConfigError::Rejected {
                setting: "plugins.wasm_fuel",
                reason: "must be more than 0 (default 500000000)".into(),
            });
        }
        for (setting, value, range) in [
            ("plugins.max_tools", plugins.max_tools, 1..=128),
            ("plugins.max_rounds", plugins.max_rounds, 1..=16),
            (
                "plugins.max_parallel_calls",
                plugins.max_parallel_calls,
                1..=16,
            ),
            (
                "plugins.max_calls_per_round",
                plugins.max_calls_per_round,
                1..=64,
            ),
            (
                "plugins.wasm_max_concurrent_calls",
                plugins.wasm_max_concurrent_calls,
                1..=256,
            ),
            (
                "plugins.max_result_bytes",
                plugins.max_result_bytes,
                1024..=1024 * 1024,
            ),
            (
                "plugins.wasm_memory_bytes",
                plugins.wasm_memory_bytes,
                64 * 1024..=4 * 1024 * 1024 * 1024,
            ),
            (
                "plugins.wasm_max_component_bytes",
                plugins.wasm_max_component_bytes,
                1024..=16 * 1024 * 1024,
            ),
        ] {
            if !range.contains(&value) {
                return Err(ConfigError::Rejected {
                    setting,
                    reason: format!(
                        "{value} is out of range; use {} to {}",
                        range.start(),
                        range.end()
                    ),
                });
            }
        }
        Ok(())
    }

    fn validate_egress(&self) -> Result<(), ConfigError> {
        self.egress
            .networks()
            .map(drop)
            .map_err(|entry| ConfigError::Rejected {
                setting: "egress.allow",
                reason: format!(
                    "{entry:?} is not a CIDR block or an address (example: \"10.20.0.0/16\")"
                ),
            })
    }

    fn validate_audit(&self) -> Result<(), ConfigError> {
        let audit = &self.audit;
        non_zero("audit.checkpoint_interval", audit.checkpoint_interval)?;
        non_zero(
            "audit.retention_sweep_interval",
            audit.retention_sweep_interval,
        )?;
        positive("audit.writers", audit.writers)?;
        positive("audit.max_batch", audit.max_batch)?;
        if !(1..=MAX_RETENTION_DAYS).contains(&audit.min_retention_days) {
            return Err(ConfigError::Rejected {
                setting: "audit.min_retention_days",
                reason: format!(
                    "must be 1 to {} days (HIPAA asks for six years: 2192)",
                    MAX_RETENTION_DAYS
                ),
            });
        }
        if let Some((model, _)) = self
            .llm
            .prices
            .iter()
            .find(|(_, p)| p.prompt_per_million < 0 || p.completion_per_million < 0)
        {
            return Err(ConfigError::Rejected {
                setting: "llm.prices",
                reason: format!("the price of {model:?} is negative"),
            });
        }
        if let Some(key) = &audit.signing_key {
            key_32("audit.signing_key", key)?;
        }
        Ok(())
    }

    fn validate_jobs(&self) -> Result<(), ConfigError> {
        let jobs = &self.jobs;
        positive("jobs.max_attempts", jobs.max_attempts as usize)?;
        positive("inference.queue", self.inference.queue)?;
        if self.inference.tenant_models && self.inference.tenant_models_folder().is_none() {
            return Err(ConfigError::Rejected {
                setting: "inference.tenant_models",
                reason: "needs inference.models_dir to be set".to_owned(),
            });
        }
        positive(
            "inference.max_model_bytes",
            usize::try_from(self.inference.max_model_bytes).unwrap_or(usize::MAX),
        )?;
        non_zero("jobs.retry_base", jobs.retry_base)?;
        self.memory.validate()?;
        non_zero("jobs.timeout", jobs.timeout)?;
        if jobs.retry_max < jobs.retry_base {
            return Err(ConfigError::Rejected {
                setting: "jobs.retry_max",
                reason: "must be at least jobs.retry_base".to_owned(),
            });
        }
        if let Some(platform) = &self.llm.platform_default {
            validate_platform_provider(platform)?;
        }
        let breaker = &self.llm.breaker;
        positive("llm.breaker.failures", breaker.failures as usize)?;
        non_zero("llm.breaker.window", breaker.window)?;
        non_zero("llm.breaker.open_for", breaker.open_for)?;
        Ok(())
    }

    fn validate_rate_limits(&self) -> Result<(), ConfigError> {
        let limits = &self.rate_limit;
        for (setting, rate) in [
            (
                "rate_limit.per_caller_per_second",
                limits.per_caller_per_second,
            ),
            (
                "rate_limit.per_tenant_per_second",
                limits.per_tenant_per_second,
            ),
        ] {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(ConfigError::Rejected {
                    setting,
                    reason: "must be a positive number of calls per second".to_owned(),
                });
            }
        }
        positive(
            "rate_limit.per_caller_burst",
            limits.per_caller_burst as usize,
        )?;
        positive(
            "rate_limit.per_tenant_burst",
            limits.per_tenant_burst as usize,
        )?;
        positive(
            "rate_limit.login_per_address_per_minute",
            limits.login_per_address_per_minute as usize,
        )?;
        positive(
            "rate_limit.login_per_tenant_per_minute",
            limits.login_per_tenant_per_minute as usize,
        )?;
        positive("rate_limit.login_burst", limits.login_burst as usize)
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        for (setting, url) in [
            ("auth.public_url", &self.auth.public_url),
            ("auth.console_url", &self.auth.console_url),
        ] {
            if let Some(url) = url {
                match url::Url::parse(url) {
                    Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                    _ => {
                        return Err(ConfigError::Rejected {
                            setting,
                            reason: format!("{url:?} is not an http(s) URL"),
                        });
                    }
                }
            }
        }
        non_zero("auth.session_idle_timeout", self.auth.session_idle_timeout)?;
        non_zero(
            "auth.session_absolute_timeout",
            self.auth.session_absolute_timeout,
        )?;
        non_zero("auth.login_timeout", self.auth.login_timeout)?;
        positive("auth.max_custom_policies", self.auth.max_custom_policies)?;
        positive("auth.max_keys_per_user", self.auth.max_keys_per_user)?;
        non_zero("auth.discovery_cache_ttl", self.auth.discovery_cache_ttl)?;
        non_zero(
            "auth.tenant_deletion_interval",
            self.auth.tenant_deletion_interval,
        )
    }

    /// The effective configuration as TOML, with passwords in URLs masked.
    pub fn to_masked_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|err| format!("# cannot render: {err}\n"))
    }
}

/// Figment errors can span lines and carry several causes; the first, on one line, is the
/// one to fix first.
fn one_line(err: &figment::Error) -> String {
    err.to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A URL with its password replaced by `****`, safe to print or log.
pub fn mask_url(url: &str) -> String {
    /// Query parameters that carry secrets in connection strings (libpq's `password`,
    /// `sslpassword`; tokens and keys of HTTP endpoints).
    const SECRET_PARAMETERS: &[&str] = &[
        "password",
        "sslpassword",
        "passwd",
        "pwd",
        "secret",
        "token",
        "key",
        "api_key",
        "api-key",
        "apikey",
        "access_token",
        "sig",
    ];
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("****"));
            }
            if parsed.query().is_some() {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(name, value)| {
                        let secret =
                            SECRET_PARAMETERS.contains(&name.to_ascii_lowercase().as_str());
                        let value = if secret {
                            "****".to_owned()
                        } else {
                            value.into_owned()
                        };
                        (name.into_owned(), value)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

pub(crate) fn masked_secret<S: Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => serializer.serialize_str("****"),
        None => serializer.serialize_none(),
    }
}

pub(crate) fn masked_plain_url<S: Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    if url.is_empty() {
        serializer.serialize_str("")
    } else {
        serializer.serialize_str(&mask_url(url))
    }
}

pub(crate) fn masked_url<S: Serializer>(
    url: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => serializer.serialize_str(&mask_url(url.expose_secret())),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests;

fn validate_platform_provider(platform: &PlatformProviderConfig) -> Result<(), ConfigError> {
    let rejected = |setting: &'static str, reason: &str| {
        Err(ConfigError::Rejected {
            setting,
            reason: reason.to_owned(),
        })
    };
    if !crate::tenancy::is_identifier(&platform.name) {
        return rejected(
            "llm.platform_default.name",
            "must be lowercase letters, digits, '_' or '-', starting with a letter",
        );
    }
    if !matches!(
        platform.kind.as_str(),
        "openai" | "azure_openai" | "ollama" | "openai_compatible"
    ) {
        return rejected(
            "llm.platform_default.kind",
            "must be openai, azure_openai, ollama or openai_compatible",
        );
    }
    if !(platform.kind == "openai" && platform.endpoint.is_empty()) {
        check_url(
            "llm.platform_default.endpoint",
            &SecretString::from(platform.endpoint.clone()),
            &["http", "https"],
        )?;
    }
    if platform.models.is_empty()
        || platform
            .models
            .iter()
            .any(|m| m.is_empty() || m.contains('/'))
    {
        return rejected(
            "llm.platform_default.models",
            "list at least one model name (without '/'); the first serves the default alias",
        );
    }
    if platform.kind == "azure_openai" && platform.api_version.is_empty() {
        return rejected(
            "llm.platform_default.api_version",
            "is required for Azure OpenAI",
        );
    }
    Ok(())
}
