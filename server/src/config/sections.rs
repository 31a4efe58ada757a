//! The sections of [`super::Config`], each with its defaults.

use std::{net::SocketAddr, time::Duration};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{masked_plain_url, masked_secret, masked_url};

/// The listener and request handling.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the one listener serving gRPC, gRPC-Web and the HTTP routes.
    pub listen: SocketAddr,
    /// Longest a unary call (or a stream's first response) may take.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long shutdown keeps accepting calls after it reports NOT_SERVING, so load
    /// balancers and Kubernetes stop routing here before the listener closes.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// How long shutdown waits for in-flight calls before cutting them off.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Calls processed at once per connection; more wait.
    pub max_concurrent_requests_per_connection: usize,
    /// API calls this replica runs at once (streams until their last frame); more are
    /// refused with `RESOURCE_EXHAUSTED` and a one-second `retry-after`.
    pub max_concurrent_calls: usize,
    /// Browser origins allowed to call gRPC-Web (CORS). Empty: none; `"*"`: any.
    pub cors_allowed_origins: Vec<String>,
    /// What this replica does: everything, only the API, or only the background work.
    pub role: ReplicaRole,
    /// Folder of the built web console (`admin-web/dist`), served at `/console/`; unset:
    /// no console. With it, `auth.console_url` defaults to `<public URL>/console/`.
    pub console_dir: Option<std::path::PathBuf>,
}

/// What a replica does, so API and worker replicas can be scaled apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ReplicaRole {
    /// Serves the API and runs the background work.
    #[default]
    All,
    /// Serves the API; runs no job workers and no repeating passes (left to workers).
    Api,
    /// Runs the job workers and repeating passes; serves only health, readiness and
    /// metrics.
    Worker,
}

impl ReplicaRole {
    /// Whether it serves the API.
    pub fn serves_api(self) -> bool {
        self != Self::Worker
    }

    /// Whether it runs job workers and repeating passes.
    pub fn runs_background_work(self) -> bool {
        self != Self::Api
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            request_timeout: Duration::from_secs(300),
            drain_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(30),
            max_concurrent_requests_per_connection: 256,
            max_concurrent_calls: 4096,
            cors_allowed_origins: Vec::new(),
            role: ReplicaRole::All,
            console_dir: None,
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
    /// `redis://`, `rediss://` or `redis+unix://` URL (`REDIS_URL`); with `cluster`, any
    /// node of the cluster (or its configuration endpoint).
    #[serde(serialize_with = "masked_url")]
    pub url: Option<SecretString>,
    /// Whether `url` is a Redis Cluster (what managed Redis services run at scale): the
    /// server then follows the cluster's slot map.
    pub cluster: bool,
    /// Most connections the pool opens.
    pub pool_size: usize,
    /// Longest to wait for a connection, new or pooled.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Put before every key, so that several deployments (or test runs) can share one
    /// Redis. No braces: they would change which cluster slot a key is in.
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            cluster: false,
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
    /// Login steps (StartLogin, CompleteLogin, `/auth/callback`, ExchangeLoginCode) one
    /// client address may take per minute, sustained.
    pub login_per_address_per_minute: u32,
    /// Login steps per minute into one tenant, all addresses together.
    pub login_per_tenant_per_minute: u32,
    /// Login steps one address may take at once above the sustained rate (a tenant ten
    /// times as many).
    pub login_burst: u32,
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
            login_per_address_per_minute: 30,
            login_per_tenant_per_minute: 600,
            login_burst: 10,
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

/// Model calls: the price table for usage accounting, the providers' circuit breaker and
/// how long a replica remembers the settings calls read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Prices per model, keyed `provider/model` or just `model` (the first that matches
    /// wins); models without a price cost 0.
    pub prices: std::collections::BTreeMap<String, Price>,
    /// When a failing provider is skipped.
    pub breaker: BreakerConfig,
    /// A model provider the platform offers every tenant (read-only for them; a tenant
    /// provider of the same name takes its place). It also serves the `default` alias of
    /// tenants that have not set one.
    pub platform_default: Option<PlatformProviderConfig>,
    /// How long a replica may reuse a tenant's budgets, profiles and model routes without
    /// reading them again ("0s": never). Changes reach every replica at once regardless;
    /// this bounds the delay only if such an announcement is lost.
    #[serde(with = "humantime_serde")]
    pub settings_cache_ttl: Duration,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            prices: std::collections::BTreeMap::new(),
            breaker: BreakerConfig::default(),
            platform_default: None,
            settings_cache_ttl: Duration::from_secs(30),
        }
    }
}

/// The platform's model provider (see `llm::platform`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlatformProviderConfig {
    /// Name tenants use in `provider/model` references.
    pub name: String,
    /// `openai`, `azure_openai`, `ollama` or `openai_compatible`.
    pub kind: String,
    /// Base URL (for `openai`, empty means OpenAI's own).
    #[serde(serialize_with = "masked_plain_url")]
    pub endpoint: String,
    /// API key (`azure_openai`: the `api-key`); unset: none.
    #[serde(serialize_with = "masked_secret")]
    pub credential: Option<SecretString>,
    /// Models it offers; the first serves the `default` alias.
    pub models: Vec<String>,
    /// Azure OpenAI `api-version`.
    pub api_version: String,
    /// Whether it runs on the premises (prompts to it skip the PHI policy).
    pub on_premises: bool,
}

impl Default for PlatformProviderConfig {
    fn default() -> Self {
        Self {
            name: "platform".to_owned(),
            kind: String::new(),
            endpoint: String::new(),
            credential: None,
            models: Vec::new(),
            api_version: String::new(),
            on_premises: false,
        }
    }
}

/// The circuit breaker of each tenant's providers (see `llm::breaker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Failures (5xx, unreachable, no answer in time) that open a provider's circuit.
    pub failures: u32,
    /// Window in which they count.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// How long an open circuit skips the provider.
    #[serde(with = "humantime_serde")]
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 5,
            window: Duration::from_secs(30),
            open_for: Duration::from_secs(30),
        }
    }
}

/// Background jobs through Redis Streams (see `jobs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Worker tasks of this replica; 0 leaves the jobs to other replicas.
    pub workers: usize,
    /// Deliveries of a job before it goes to the dead-letter stream.
    pub max_attempts: u32,
    /// Wait before the first retry; each further retry waits twice as long.
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    /// Longest wait between retries.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// Longest one job may run before it counts as failed.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            max_attempts: 5,
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
        }
    }
}

/// What a million tokens of a model cost, in millionths of the currency unit
/// (e.g. 2500000 for 2.50).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per million prompt tokens.
    pub prompt_per_million: i64,
    /// Per million generated tokens.
    pub completion_per_million: i64,
}

/// The audit trail (see `audit`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Ed25519 key signing checkpoints: a 32-byte seed, base64. Unset: derived from
    /// `crypto.master_key`. Set it when the master key lives in a KMS, and give auditors
    /// the public half (`codexcontinue audit public-key`).
    #[serde(serialize_with = "masked_secret")]
    pub signing_key: Option<SecretString>,
    /// How often each tenant's chain head is signed (when it moved).
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// How often events past their tenant's retention are looked for and purged.
    #[serde(with = "humantime_serde")]
    pub retention_sweep_interval: Duration,
    /// Writer tasks (each with its own database connection) that commit events of read
    /// calls in groups; a tenant's events always go through the same writer.
    pub writers: usize,
    /// Most events one writer commits in one transaction.
    pub max_batch: usize,
    /// The platform's floor under every tenant's retention: no tenant may keep its trail
    /// for fewer days, and the database's purge never deletes younger events (`migrate`
    /// writes this floor where the server's own role cannot change it). Default six years.
    pub min_retention_days: i32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            signing_key: None,
            checkpoint_interval: Duration::from_secs(300),
            retention_sweep_interval: Duration::from_secs(3600),
            writers: 4,
            max_batch: 512,
            min_retention_days: 2192,
        }
    }
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
    /// Most custom grants (AddPolicy) one tenant may hold.
    pub max_custom_policies: usize,
    /// Most active API keys one user may hold.
    pub max_keys_per_user: usize,
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
            max_custom_policies: 200,
            max_keys_per_user: 50,
        }
    }
}

/// Local inference (see `inference`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InferenceConfig {
    /// Folder with one sub-folder per model (`manifest.toml` and the files it names);
    /// unset: no local models.
    pub models_dir: Option<std::path::PathBuf>,
    /// Device for every model: `auto` (each model's own preference), `cpu` or `cuda`.
    pub device: DeviceChoice,
    /// Devices of single models, by model name (over `device`).
    pub devices: std::collections::BTreeMap<String, DeviceChoice>,
    /// libtorch intra-op threads; 0: libtorch's default (one per core).
    pub threads: usize,
    /// Requests that may wait per model before calls are refused with RESOURCE_EXHAUSTED.
    pub queue: usize,
    /// The model Embed uses when a call names none.
    pub default_embedding: String,
    /// The model Classify uses when a call names none (and that picks conversations'
    /// profiles).
    pub default_classifier: String,
    /// The model Generate (and the chat's local provider) uses when a call names none.
    pub default_generation: String,
    /// Whether tenant admins may upload models of their own (RegisterModel). Off by
    /// default: an uploaded TorchScript file runs inside the server process (see
    /// SECURITY.md); turn it on only where every tenant admin is trusted that far.
    pub tenant_models: bool,
    /// Where this replica writes the tenant models it fetches; emptied at start (the files
    /// are kept in Postgres), so never shared by two replicas. Default: a folder of this
    /// process in the system's temporary folder.
    pub tenant_models_dir: Option<std::path::PathBuf>,
    /// Largest model file a tenant may upload, in bytes.
    pub max_model_bytes: u64,
    /// Most models one tenant may keep.
    pub max_tenant_models: u32,
}

impl InferenceConfig {
    /// The folder of fetched tenant models, when inference is configured.
    pub fn tenant_models_folder(&self) -> Option<std::path::PathBuf> {
        self.models_dir.as_ref()?;
        Some(self.tenant_models_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir()
                .join("codexcontinue-tenant-models")
                .join(std::process::id().to_string())
        }))
    }
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            models_dir: None,
            device: DeviceChoice::Auto,
            devices: std::collections::BTreeMap::new(),
            threads: 0,
            queue: 256,
            default_embedding: "minilm-l6".to_owned(),
            default_classifier: "domain-classifier".to_owned(),
            default_generation: "smollm2-135m-instruct".to_owned(),
            tenant_models: false,
            tenant_models_dir: None,
            max_model_bytes: 512 * 1024 * 1024,
            max_tenant_models: 8,
        }
    }
}

/// Outbound addresses tenants choose (provider endpoints, identity providers, Entra ID
/// authorities, plugins): see `egress`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// Networks tenants' URLs may reach besides the public internet, as CIDR blocks (e.g.
    /// `"10.20.0.0/16"` for an in-house model gateway, `"127.0.0.1/32"` for a stand-in on
    /// this machine). Empty: public addresses only.
    pub allow: Vec<String>,
}

impl EgressConfig {
    /// The allowed networks, parsed.
    ///
    /// # Errors
    /// The first entry that is not a CIDR block (or a single address).
    pub fn networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.allow
            .iter()
            .map(|entry| {
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| entry.clone())
            })
            .collect()
    }
}

/// Which device a model runs on: what a manifest asks for, and what the configuration
/// or an operator may impose.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// CUDA when available, else CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// The first GPU (refused when there is none).
    Cuda,
}

/// Tenants' plugins (see `plugins`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// How often each plugin's manifest is read again; a changed manifest disables the
    /// plugin until an owner or admin approves it.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// Most tools offered to the model in one turn (1..=128).
    pub max_tools: usize,
    /// Most rounds of tool calls in one turn; then the model is asked to answer without
    /// tools (1..=16).
    pub max_rounds: usize,
    /// Longest a turn may spend calling tools; then the model is asked to answer without
    /// them.
    #[serde(with = "humantime_serde")]
    pub turn_budget: Duration,
    /// Tool calls of one round run at once at most (1..=16).
    pub max_parallel_calls: usize,
    /// Most tool calls the model may ask for in one round (1..=64); the rest are answered
    /// as tool errors without calling anything.
    pub max_calls_per_round: usize,
    /// Largest tool result fed back to the model, in bytes; longer ones are cut with a
    /// marker (1 KiB..=1 MiB).
    pub max_result_bytes: usize,
    /// Folder of the WebAssembly components the operator ships (`<name>.wasm` or
    /// `<name>.wat`), registered as `builtin:<name>`; none when unset.
    pub wasm_folder: Option<std::path::PathBuf>,
    /// Instructions (roughly) one call of a WebAssembly plugin may run.
    pub wasm_fuel: u64,
    /// Memory one call of a WebAssembly plugin may grow to, in bytes.
    pub wasm_memory_bytes: usize,
    /// Calls of WebAssembly plugins one replica runs at once (1..=256); more wait. With
    /// `wasm_memory_bytes` it bounds the memory the sandbox may take.
    pub wasm_max_concurrent_calls: usize,
    /// Largest WebAssembly component accepted, in bytes (at most 16 MiB).
    pub wasm_max_component_bytes: usize,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(15 * 60),
            max_tools: 64,
            max_rounds: 4,
            turn_budget: Duration::from_secs(60),
            max_parallel_calls: 4,
            max_calls_per_round: 16,
            max_result_bytes: 32 * 1024,
            wasm_folder: None,
            wasm_fuel: 500_000_000,
            wasm_memory_bytes: 64 * 1024 * 1024,
            wasm_max_concurrent_calls: 8,
            wasm_max_component_bytes: 8 * 1024 * 1024,
        }
    }
}
