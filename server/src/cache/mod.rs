//! Redis: the connection (one server or a cluster) and the key layout.
//!
//! Every key is built by [`KeySpace`]; see `keys.rs` for the layout and `legacy_keys.rs`
//! for how keys of the layout before hash tags are moved into it.

mod breaker;
mod connection;
mod forgets;
mod generations;
mod idempotency;
pub mod jobs;
mod keys;
mod legacy_keys;
mod windows;
mod working;
pub use breaker::BreakerState;
pub use connection::{Connection, Subscription};
pub use idempotency::Claimed;
pub use keys::KeySpace;
pub mod rate_limit;
mod sessions;
pub mod settings_changes;
pub use settings_changes::SettingsChanges;

use connection::Backend;
use redis::AsyncCommands;
use secrecy::ExposeSecret;

use crate::config::{RedisConfig, mask_url};

/// Why a Redis operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// No Redis URL is configured.
    #[error(
        "redis.url is not set: set REDIS_URL (e.g. redis://127.0.0.1:6379) or [redis] url in the config file"
    )]
    NotConfigured,
    /// The connection could not be set up from the configuration.
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

/// The Redis connection and key layout of this deployment.
///
/// Commands on the per-call path (rate limits, session checks) go through
/// [`Cache::fast_connection`], one multiplexed connection that reconnects by itself: a
/// pool checkout first pings the connection, which would double those calls' round trips.
/// Everything else uses [`Cache::connection`]. On a Redis Cluster both are the one shared
/// cluster connection.
#[derive(Clone)]
pub struct Cache {
    backend: std::sync::Arc<Backend>,
    keys: KeySpace,
}

impl Cache {
    /// Connects and checks that Redis answers.
    ///
    /// # Errors
    /// [`CacheError`] saying what is wrong and how to fix it.
    pub async fn connect(config: &RedisConfig) -> Result<Self, CacheError> {
        let url = config.url.as_ref().ok_or(CacheError::NotConfigured)?;
        let unreachable = |err: CacheError| CacheError::Unreachable {
            url: mask_url(url.expose_secret()),
            reason: match err {
                CacheError::Pool(deadpool_redis::PoolError::Backend(err))
                | CacheError::Command(err) => err.to_string(),
                other => other.to_string(),
            },
        };
        let backend = match Backend::connect(config).await {
            Err(err @ CacheError::Command(_)) => return Err(unreachable(err)),
            other => other?,
        };
        let cache = Self {
            backend: std::sync::Arc::new(backend),
            keys: KeySpace::new(&config.key_prefix),
        };
        cache.ping().await.map_err(unreachable)?;
        Ok(cache)
    }

    /// Sends PING: the readiness probe.
    ///
    /// # Errors
    /// [`CacheError`] when Redis does not answer.
    pub async fn ping(&self) -> Result<(), CacheError> {
        self.backend.ping().await
    }

    /// A connection for commands off the per-call path.
    ///
    /// # Errors
    /// [`CacheError::Pool`] when none becomes available in time.
    pub async fn connection(&self) -> Result<Connection, CacheError> {
        self.backend.connection().await
    }

    /// The shared connection for commands on every call's path.
    pub fn fast_connection(&self) -> Connection {
        self.backend.fast_connection()
    }

    /// A subscription to `channel` (pub/sub needs a connection of its own).
    ///
    /// # Errors
    /// [`CacheError::Command`] when Redis cannot be reached.
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription, CacheError> {
        self.backend.subscribe(channel).await
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

    /// Deletes every key matching `pattern`, which must lie within one owner's hash tag
    /// (SCAN on every primary, so Redis is never blocked).
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn delete_matching(&self, pattern: &str) -> Result<usize, CacheError> {
        let keys = self.backend.scan(pattern).await?;
        let mut conn = self.connection().await?;
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
