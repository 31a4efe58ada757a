//! Live session records, and short-lived single-use values (login state, login codes).
//!
//! A session lives at `cc:{tenant}:session:{sha256(token)}` as a hash of `data` (JSON) and
//! `abs` (absolute expiry, Unix seconds). Authentication reads and slides it in one atomic
//! script: the key's TTL becomes the idle timeout, capped by the absolute expiry.

use std::{sync::LazyLock, time::Duration};

use redis::{AsyncCommands, Script};

use super::{Cache, CacheError};
use crate::tenancy::TenantId;

/// KEYS[1]: session key. ARGV[1]: idle timeout (s). Returns the `data` field, or nil when
/// the session is gone or past its absolute expiry.
const SLIDE: &str = r"
local abs = redis.call('HGET', KEYS[1], 'abs')
if not abs then return false end
local now = tonumber(redis.call('TIME')[1])
local ttl = math.min(tonumber(ARGV[1]), tonumber(abs) - now)
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
  return false
end
redis.call('EXPIRE', KEYS[1], ttl)
return redis.call('HGET', KEYS[1], 'data')
";

/// [`SLIDE`], hashed once for `EVALSHA`.
static SLIDE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SLIDE));

fn session_key(cache: &Cache, tenant: TenantId, token_sha256: &[u8]) -> String {
    cache
        .keys()
        .tenant(tenant, &["session", &hex::encode(token_sha256)])
}

impl Cache {
    /// Stores a live session until `idle` passes unused or `absolute_unix` is reached.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn put_session(
        &self,
        tenant: TenantId,
        token_sha256: &[u8],
        data: &str,
        idle: Duration,
        absolute_unix: i64,
    ) -> Result<(), CacheError> {
        let key = session_key(self, tenant, token_sha256);
        let mut conn = self.connection().await?;
        redis::pipe()
            .atomic()
            .hset_multiple(
                &key,
                &[
                    ("data", data.to_owned()),
                    ("abs", absolute_unix.to_string()),
                ],
            )
            .ignore()
            .expire(&key, i64::try_from(idle.as_secs()).unwrap_or(i64::MAX))
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// The session's data, sliding its idle expiry; `None` when it is gone.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn slide_session(
        &self,
        tenant: TenantId,
        token_sha256: &[u8],
        idle: Duration,
    ) -> Result<Option<String>, CacheError> {
        let mut conn = self.fast_connection();
        Ok(SLIDE_SCRIPT
            .key(session_key(self, tenant, token_sha256))
            .arg(idle.as_secs())
            .invoke_async(&mut conn)
            .await?)
    }

    /// Replaces the data of a live session, if it is still live.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn update_session(
        &self,
        tenant: TenantId,
        token_sha256: &[u8],
        data: &str,
    ) -> Result<(), CacheError> {
        let mut conn = self.connection().await?;
        Script::new(
            "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'data', ARGV[1]) end",
        )
        .key(session_key(self, tenant, token_sha256))
        .arg(data)
        .invoke_async::<()>(&mut conn)
        .await?;
        Ok(())
    }

    /// Deletes the live copies of sessions (they stop working at once).
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn delete_sessions(
        &self,
        tenant: TenantId,
        token_hashes: &[Vec<u8>],
    ) -> Result<(), CacheError> {
        if token_hashes.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = token_hashes
            .iter()
            .map(|hash| session_key(self, tenant, hash))
            .collect();
        let mut conn = self.connection().await?;
        conn.del::<_, ()>(keys).await?;
        Ok(())
    }

    /// Stores a single-use value of `kind` under the hash of its handle for `ttl`.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn put_once(
        &self,
        tenant: TenantId,
        kind: &str,
        handle_sha256: &[u8],
        value: &str,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let key = self
            .keys()
            .tenant(tenant, &[kind, &hex::encode(handle_sha256)]);
        let mut conn = self.connection().await?;
        conn.set_ex::<_, _, ()>(key, value, ttl.as_secs().max(1))
            .await?;
        Ok(())
    }

    /// Takes (reads and deletes) a single-use value; `None` when absent, expired or taken.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn take_once(
        &self,
        tenant: TenantId,
        kind: &str,
        handle_sha256: &[u8],
    ) -> Result<Option<String>, CacheError> {
        let key = self
            .keys()
            .tenant(tenant, &[kind, &hex::encode(handle_sha256)]);
        let mut conn = self.connection().await?;
        Ok(conn.get_del(key).await?)
    }
}
