//! Pieces the benchmarks share: the real stores, the server's own layers assembled
//! in-process, and latency statistics.

use std::{sync::Arc, time::Duration};

use codexcontinue::{
    auth::{
        Authenticator, credential_cache::CredentialCache, policy_adapter::PostgresPolicyAdapter,
        rbac::Rbac, sessions::Sessions,
    },
    cache::{Cache, rate_limit::RateLimiter},
    config::{AuthConfig, DatabaseConfig, RateLimitConfig, RedisConfig},
    edge::AuthLayer,
    store::Database,
};
use secrecy::SecretString;

use crate::{TestDatabase, TestEnv};

/// The stores a server would use, on `db` and the suite's Redis (own key prefix).
///
/// # Panics
/// When Postgres or Redis cannot be reached.
pub async fn stores(db: &TestDatabase) -> (Database, Cache) {
    let database = Database::connect(&DatabaseConfig {
        url: Some(SecretString::from(db.app_url.clone())),
        ..DatabaseConfig::default()
    })
    .await
    .expect("connect to Postgres");
    let cache = Cache::connect(&RedisConfig {
        key_prefix: format!("bench:{}:", uuid::Uuid::new_v4().simple()),
        ..TestEnv::get().redis_config()
    })
    .await
    .expect("connect to Redis");
    (database, cache)
}

/// Makes the server's authentication layer over the given stores.
pub struct AuthStack {
    database: Database,
    cache: Cache,
    sessions: Sessions,
    rbac: Arc<Rbac>,
}

impl AuthStack {
    /// Loads the access policies of `database`.
    ///
    /// # Panics
    /// When the policies cannot be loaded.
    pub async fn new(database: &Database, cache: &Cache) -> Self {
        let rbac = Rbac::new(PostgresPolicyAdapter::new(database.clone()))
            .await
            .expect("rbac");
        Self {
            database: database.clone(),
            cache: cache.clone(),
            sessions: Sessions::new(database.clone(), cache.clone(), AuthConfig::default()),
            rbac: Arc::new(rbac),
        }
    }

    /// The layer, reusing verified keys for `key_cache_ttl`, limiting rates as `limits`
    /// say.
    pub fn layer(&self, key_cache_ttl: Duration, limits: RateLimitConfig) -> AuthLayer {
        AuthLayer::new(
            Authenticator::new(
                self.database.clone(),
                self.sessions.clone(),
                Arc::new(CredentialCache::new(key_cache_ttl)),
            ),
            self.rbac.clone(),
            Arc::new(RateLimiter::new(self.cache.clone(), limits)),
        )
    }
}

/// The `p` quantile (0..=1) of sorted samples.
///
/// # Panics
/// When `sorted` is empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Mean of the samples.
///
/// # Panics
/// When there are none.
pub fn mean(samples: &[Duration]) -> Duration {
    samples.iter().sum::<Duration>() / u32::try_from(samples.len()).expect("sample count")
}

/// Microseconds, one decimal.
pub fn micros(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1e6)
}
