//! Redis: the connection pool and the key layout.
//!
//! Everything tenant-owned lives under `{key_prefix}cc:{tenant}:...`, so a tenant's keys
//! can be found (and deleted) together and no two tenants share a key. `key_prefix` comes
//! from the configuration and lets several deployments or test runs share one Redis.

mod breaker;
mod forgets;
mod generations;
mod idempotency;
pub mod jobs;
mod windows;
mod working;
pub use idempotency::Claimed;
pub mod rate_limit;
mod sessions;
pub mod settings_changes;
pub use settings_changes::SettingsChanges;

use deadpool_redis::{Config as PoolSettings, Pool, PoolConfig, Runtime, Timeouts};
use redis::AsyncCommands;
use secrecy::ExposeSecret;

use crate::{
    config::{RedisConfig, mask_url},
    tenancy::TenantId,
};

/// Why a Redis operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// No Redis URL is configured.
    #[error(
        "redis.url is not set: set REDIS_URL (e.g. redis://127.0.0.1:6379) or [redis] url in the config file"
    )]
    NotConfigured,
    /// The pool could not be built from the configuration.
    #[error("redis.url (REDIS_URL) is not usable: {0}")]
    BadConfig(String),
    /// Redis did not answer.
    #[error(
        "cannot connect to Redis at {url}: {reason}; start it (`make services`) or fix redis.url (REDIS_URL)"
    )]
    Unreachable {
        /// The URL tried, password masked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// No pooled connection became available in time, or one failed.
    #[error("redis pool: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    /// A command failed.
    #[error("redis: {0}")]
    Command(#[from] redis::RedisError),
}

/// The Redis pool and key layout of this deployment.
///
/// Commands on the per-call path (rate limits, session checks) go through `fast`, one
/// multiplexed connection that reconnects by itself: a pool checkout first pings the
/// connection, which would double those calls' round trips. Everything else uses the pool.
#[derive(Clone)]
pub struct Cache {
    pool: Pool,
    fast: redis::aio::ConnectionManager,
    client: redis::Client,
    keys: KeySpace,
}

impl Cache {
    /// Builds the pool and checks that Redis answers.
    ///
    /// # Errors
    /// [`CacheError`] saying what is wrong and how to fix it.
    pub async fn connect(config: &RedisConfig) -> Result<Self, CacheError> {
        let url = config.url.as_ref().ok_or(CacheError::NotConfigured)?;
        let mut settings = PoolSettings::from_url(url.expose_secret());
        settings.pool = Some(PoolConfig {
            max_size: config.pool_size,
            timeouts: Timeouts {
                wait: Some(config.connect_timeout),
                create: Some(config.connect_timeout),
                recycle: Some(config.connect_timeout),
            },
            ..PoolConfig::default()
        });
        let pool = settings
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|err| CacheError::BadConfig(err.to_string()))?;
        let client = redis::Client::open(url.expose_secret())
            .map_err(|err| CacheError::BadConfig(err.to_string()))?;
        let fast = redis::aio::ConnectionManager::new_lazy_with_config(
            client.clone(),
            redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(Some(config.connect_timeout)),
        )
        .map_err(|err| CacheError::BadConfig(err.to_string()))?;
        let cache = Self {
            pool,
            fast,
            client,
            keys: KeySpace::new(&config.key_prefix),
        };
        cache.ping().await.map_err(|err| CacheError::Unreachable {
            url: mask_url(url.expose_secret()),
            reason: match err {
                CacheError::Pool(deadpool_redis::PoolError::Backend(err)) => err.to_string(),
                other => other.to_string(),
            },
        })?;
        Ok(cache)
    }

    /// Sends PING: the readiness probe.
    ///
    /// # Errors
    /// [`CacheError`] when Redis does not answer.
    pub async fn ping(&self) -> Result<(), CacheError> {
        let mut conn = self.pool.get().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok(())
    }

    /// A pooled connection.
    ///
    /// # Errors
    /// [`CacheError::Pool`] when none becomes available in time.
    pub async fn connection(&self) -> Result<deadpool_redis::Connection, CacheError> {
        Ok(self.pool.get().await?)
    }

    /// The shared connection for commands on every call's path.
    pub fn fast_connection(&self) -> redis::aio::ConnectionManager {
        self.fast.clone()
    }

    /// A dedicated connection subscribed to `channel` (pub/sub needs its own connection).
    ///
    /// # Errors
    /// [`CacheError::Command`] when Redis cannot be reached.
    pub async fn subscribe(&self, channel: &str) -> Result<redis::aio::PubSub, CacheError> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok(pubsub)
    }

    /// Runs `follow` (a subscription that returns when it is lost) again and again, half
    /// a second apart, until `stop` resolves; `what` names it in the log.
    pub async fn keep_following<F, Fut, E>(
        what: &'static str,
        stop: impl std::future::Future<Output = ()>,
        mut follow: F,
    ) where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                result = follow() => {
                    if let Err(err) = result {
                        tracing::warn!(error = %err, subscription = what, "subscription lost; reconnecting");
                    }
                }
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
            }
        }
    }

    /// Publishes `message` on `channel`.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn publish(&self, channel: &str, message: &str) -> Result<(), CacheError> {
        let mut conn = self.connection().await?;
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(message)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Deletes every key matching `pattern` (SCAN, so Redis is never blocked).
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn delete_matching(&self, pattern: &str) -> Result<usize, CacheError> {
        let mut conn = self.connection().await?;
        let keys: Vec<String> = {
            let mut iter = conn.scan_match::<_, String>(pattern).await?;
            let mut keys = Vec::new();
            while let Some(key) = iter.next_item().await {
                keys.push(key?);
            }
            keys
        };
        for chunk in keys.chunks(500) {
            conn.del::<_, ()>(chunk).await?;
        }
        Ok(keys.len())
    }

    /// The key layout.
    pub fn keys(&self) -> &KeySpace {
        &self.keys
    }
}

/// Builds Redis keys; the only place key names are assembled.
#[derive(Clone, Debug)]
pub struct KeySpace {
    prefix: String,
}

impl KeySpace {
    /// Keys will start with `prefix` (may be empty).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// `{prefix}cc:{tenant}:{parts joined by ':'}`.
    pub fn tenant(&self, tenant: TenantId, parts: &[&str]) -> String {
        let mut key = format!("{}cc:{}", self.prefix, tenant);
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    /// `{prefix}cc:_platform:{parts}`: the few keys and channels that belong to no tenant
    /// (replica-to-replica events).
    pub fn platform(&self, parts: &[&str]) -> String {
        let mut key = format!("{}cc:_platform", self.prefix);
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    /// Pattern matching every key of `tenant` under `parts` (all of the tenant's keys when
    /// `parts` is empty), for SCAN.
    pub fn tenant_pattern(&self, tenant: TenantId, parts: &[&str]) -> String {
        let mut pattern = format!("{}cc:{}", escape_glob(&self.prefix), tenant);
        for part in parts {
            pattern.push(':');
            pattern.push_str(&escape_glob(part));
        }
        pattern.push_str(":*");
        pattern
    }
}

/// Escapes Redis glob metacharacters so a prefix matches only itself.
fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_and_tenant_scoped() {
        let tenant = TenantId(uuid::Uuid::nil());
        let keys = KeySpace::new("t1:");
        assert_eq!(
            keys.tenant(tenant, &["session", "abc"]),
            "t1:cc:00000000-0000-0000-0000-000000000000:session:abc"
        );
        assert_eq!(
            keys.tenant_pattern(tenant, &[]),
            "t1:cc:00000000-0000-0000-0000-000000000000:*"
        );
        assert_eq!(
            keys.tenant_pattern(tenant, &["rl"]),
            "t1:cc:00000000-0000-0000-0000-000000000000:rl:*"
        );
        assert_eq!(
            KeySpace::new("a*[")
                .tenant_pattern(tenant, &[])
                .split("cc:")
                .next(),
            Some("a\\*\\[")
        );
    }
}
