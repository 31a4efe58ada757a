//! The server's one typed configuration.
//!
//! Layers, later ones winning: built-in defaults, an optional TOML file (`--config`),
//! `DATABASE_URL` / `REDIS_URL`, then `CODEXCONTINUE_<SECTION>__<KEY>` variables (for example
//! `CODEXCONTINUE_SERVER__LISTEN=0.0.0.0:50051`). Loading validates everything, so a wrong
//! or missing setting stops the server before it binds anything, with a message that names
//! the setting and says how to fix it. Secrets are wrapped in [`SecretString`] and masked
//! wherever the configuration is printed.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

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
}

/// The listener and request handling.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the one listener serving gRPC, gRPC-Web and the HTTP routes.
    pub listen: SocketAddr,
    /// Longest a unary call (or a stream's first response) may take.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long shutdown waits for in-flight calls before cutting them off.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Calls processed at once per connection; more wait.
    pub max_concurrent_requests_per_connection: usize,
    /// Browser origins allowed to call gRPC-Web (CORS). Empty: none; `"*"`: any.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            request_timeout: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(30),
            max_concurrent_requests_per_connection: 256,
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// PostgreSQL connection settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// URL the server connects with (`DATABASE_URL`). Its role must be neither superuser nor
    /// BYPASSRLS, so that row-level security isolates tenants.
    #[serde(serialize_with = "masked_url")]
    pub url: Option<SecretString>,
    /// URL `migrate` connects with: a role that may create tables (the tables' owner).
    /// Defaults to `url`.
    #[serde(serialize_with = "masked_url")]
    pub migration_url: Option<SecretString>,
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// Longest to wait for a connection, new or pooled.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            migration_url: None,
            max_connections: 20,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl DatabaseConfig {
    /// The URL `migrate` uses: `migration_url`, else `url`.
    pub fn migration_url(&self) -> Option<&SecretString> {
        self.migration_url.as_ref().or(self.url.as_ref())
    }
}

/// Redis connection settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://`, `rediss://` or `redis+unix://` URL (`REDIS_URL`).
    #[serde(serialize_with = "masked_url")]
    pub url: Option<SecretString>,
    /// Most connections the pool opens.
    pub pool_size: usize,
    /// Longest to wait for a connection, new or pooled.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Put before every key, so that several deployments (or test runs) can share one Redis.
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            pool_size: 32,
            connect_timeout: Duration::from_secs(5),
            key_prefix: String::new(),
        }
    }
}

/// Log output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `pretty` for people, `json` for log pipelines.
    pub log_format: LogFormat,
    /// `tracing` filter directives, e.g. `info,codexcontinue=debug`. `RUST_LOG` overrides it.
    pub log_filter: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Pretty,
            log_filter: "info".to_owned(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Dependency probes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// How often Postgres and Redis are probed.
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
    /// A probe slower than this counts as a failure.
    #[serde(with = "humantime_serde")]
    pub probe_timeout: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(2),
        }
    }
}

/// Request rate limits (GCRA in Redis, shared by every replica). A caller is an API key or
/// a session's user; a tenant's limit caps all of its callers together.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Off: no limits (for benchmarks and trusted single-tenant installs).
    pub enabled: bool,
    /// Sustained calls per second of one caller.
    pub per_caller_per_second: f64,
    /// Calls one caller may make at once above the sustained rate.
    pub per_caller_burst: u32,
    /// Sustained calls per second of one tenant, all callers together.
    pub per_tenant_per_second: f64,
    /// Calls a tenant may make at once above the sustained rate.
    pub per_tenant_burst: u32,
    /// When Redis cannot be asked: `false` refuses calls (`UNAVAILABLE`), `true` lets them
    /// through unlimited.
    pub fail_open: bool,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            per_caller_per_second: 50.0,
            per_caller_burst: 100,
            per_tenant_per_second: 500.0,
            per_tenant_burst: 1000,
            fail_open: false,
        }
    }
}

/// Encryption at rest (see `crypto`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CryptoConfig {
    /// The master key wrapping every tenant's data keys: 32 random bytes, base64
    /// (`head -c 32 /dev/urandom | base64`). Losing it makes all sealed data unreadable;
    /// keep it in a secret store, never next to the database backups.
    #[serde(serialize_with = "masked_secret")]
    pub master_key: Option<SecretString>,
}

/// SSO login and sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Base URL browsers reach this server at (for the `/auth/callback` redirect URI
    /// registered at identity providers). Default: `http://<listen address>`.
    pub public_url: Option<String>,
    /// Where the web console receives the one-time login code (as `#code=...`). Unset: the
    /// callback page shows the code.
    pub console_url: Option<String>,
    /// A session unused this long ends.
    #[serde(with = "humantime_serde")]
    pub session_idle_timeout: Duration,
    /// No session lives longer than this, however active.
    #[serde(with = "humantime_serde")]
    pub session_absolute_timeout: Duration,
    /// Time a user has to finish logging in at the identity provider.
    #[serde(with = "humantime_serde")]
    pub login_timeout: Duration,
    /// How long identity provider discovery documents and keys are cached.
    #[serde(with = "humantime_serde")]
    pub discovery_cache_ttl: Duration,
    /// How often deleted tenants' data is looked for and destroyed.
    #[serde(with = "humantime_serde")]
    pub tenant_deletion_interval: Duration,
    /// How long a replica may reuse a verified API key without asking Postgres ("0s":
    /// never). Revocations reach every replica at once regardless; this bounds the delay
    /// only if such an announcement is lost.
    #[serde(with = "humantime_serde")]
    pub credential_cache_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            console_url: None,
            session_idle_timeout: Duration::from_secs(12 * 3600),
            session_absolute_timeout: Duration::from_secs(7 * 24 * 3600),
            login_timeout: Duration::from_secs(600),
            discovery_cache_ttl: Duration::from_secs(3600),
            credential_cache_ttl: Duration::from_secs(30),
            tenant_deletion_interval: Duration::from_secs(60),
        }
    }
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
        positive(
            "server.max_concurrent_requests_per_connection",
            self.server.max_concurrent_requests_per_connection,
        )?;
        non_zero("server.request_timeout", self.server.request_timeout)?;
        non_zero("database.connect_timeout", self.database.connect_timeout)?;
        non_zero("redis.connect_timeout", self.redis.connect_timeout)?;
        non_zero("health.probe_interval", self.health.probe_interval)?;
        non_zero("health.probe_timeout", self.health.probe_timeout)?;
        self.validate_rate_limits()?;
        self.validate_auth()?;
        if let Some(key) = &self.crypto.master_key
            && let Err(err) = crate::crypto::LocalMasterKey::from_base64(key)
        {
            return Err(ConfigError::Rejected {
                setting: "crypto.master_key",
                reason: err
                    .to_string()
                    .trim_start_matches("crypto.master_key ")
                    .to_owned(),
            });
        }
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
        )
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

fn check_url(
    setting: &'static str,
    url: &SecretString,
    schemes: &[&str],
) -> Result<(), ConfigError> {
    match url::Url::parse(url.expose_secret()) {
        Ok(parsed) if schemes.contains(&parsed.scheme()) => Ok(()),
        Ok(parsed) => Err(ConfigError::Rejected {
            setting,
            reason: format!(
                "scheme {:?} is not one of {}",
                parsed.scheme(),
                schemes.join(", ")
            ),
        }),
        Err(err) => Err(ConfigError::Rejected {
            setting,
            reason: format!("not a URL ({err})"),
        }),
    }
}

fn positive(setting: &'static str, value: usize) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::Rejected {
            setting,
            reason: "must be at least 1".to_owned(),
        });
    }
    Ok(())
}

fn non_zero(setting: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::Rejected {
            setting,
            reason: "must be longer than 0 (e.g. \"5s\", \"250ms\")".to_owned(),
        });
    }
    Ok(())
}

/// A URL with its password replaced by `****`, safe to print or log.
pub fn mask_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("****"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

fn masked_secret<S: Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => serializer.serialize_str("****"),
        None => serializer.serialize_none(),
    }
}

fn masked_url<S: Serializer>(url: &Option<SecretString>, serializer: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => serializer.serialize_str(&mask_url(url.expose_secret())),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(|err| ConfigError::Invalid(one_line(&err)))?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn shipped_example_parses() {
        let example = include_str!("../codexcontinue.example.toml");
        let config = from_toml(example).expect("example config is valid");
        assert_eq!(config.server.listen.port(), 50051);
        assert_eq!(config.telemetry.log_format, LogFormat::Pretty);
    }

    #[test]
    fn missing_database_url_names_the_setting() {
        let err = from_toml("[redis]\nurl = \"redis://127.0.0.1\"\n").unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("database.url is not set"), "{message}");
        assert!(message.contains("DATABASE_URL"), "{message}");
    }

    #[test]
    fn unknown_key_is_refused() {
        let err = from_toml("[server]\nlisen = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn wrong_scheme_is_refused() {
        let err = from_toml(
            "[database]\nurl = \"mysql://x@h/db\"\n[redis]\nurl = \"redis://127.0.0.1\"\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("database.url is invalid: scheme \"mysql\""),
            "{err}"
        );
    }

    #[test]
    fn masked_toml_hides_passwords() {
        let config = from_toml(
            "[database]\nurl = \"postgres://app:hunter2@db:5432/cc\"\n\
             [redis]\nurl = \"redis://:s3cret@cache:6379\"\n",
        )
        .unwrap();
        let shown = config.to_masked_toml();
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(shown.contains("postgres://app:****@db:5432/cc"), "{shown}");
    }

    #[test]
    fn rate_limits_auth_urls_and_master_key_are_checked() {
        let base = "[database]\nurl = \"postgres://db/cc\"\n";
        let err = from_toml(&format!(
            "{base}[rate_limit]\nper_caller_per_second = 0.0\n"
        ))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("rate_limit.per_caller_per_second is invalid"),
            "{err}"
        );
        let err = from_toml(&format!("{base}[auth]\nconsole_url = \"ftp://x\"\n")).unwrap_err();
        assert!(
            err.to_string().starts_with("auth.console_url is invalid"),
            "{err}"
        );
        let err = from_toml(&format!("{base}[crypto]\nmaster_key = \"c2hvcnQ=\"\n")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("crypto.master_key is invalid: must be 32 bytes"),
            "{err}"
        );
        let key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
        let config = from_toml(&format!("{base}[crypto]\nmaster_key = \"{key}\"\n")).unwrap();
        assert!(!config.to_masked_toml().contains(key), "master key masked");
    }

    #[test]
    fn zero_duration_is_refused() {
        let err = from_toml(
            "[database]\nurl = \"postgres://db/cc\"\n[redis]\nurl = \"redis://cache\"\n\
             [health]\nprobe_interval = \"0s\"\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("health.probe_interval is invalid"),
            "{err}"
        );
    }
}
