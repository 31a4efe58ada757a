//! Idempotency keys of chat calls: `cc:{tenant}:idem:{user}:{sha256(key)}` holds `pending`
//! while the first call with a key runs, then what it produced, for a day.

use std::time::Duration;

use redis::AsyncCommands;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Cache, CacheError};
use crate::tenancy::TenantId;

/// What the first call with a key left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// This call is the first: go ahead.
    First,
    /// The first call is still running.
    Pending,
    /// The first call stored these messages: (user message, reply).
    Done(Uuid, Uuid),
}

impl Cache {
    fn idempotency_key(&self, tenant: TenantId, user: Uuid, key: &str) -> String {
        let digest = hex::encode(Sha256::digest(key.as_bytes()));
        self.keys()
            .tenant(tenant, &["idem", &user.to_string(), &digest])
    }

    /// Claims `key` for `user` for `ttl`, or says what its first call left.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn claim_idempotency_key(
        &self,
        tenant: TenantId,
        user: Uuid,
        key: &str,
        ttl: Duration,
    ) -> Result<Claimed, CacheError> {
        let redis_key = self.idempotency_key(tenant, user, key);
        let mut conn = self.fast_connection();
        let claimed: bool = redis::cmd("SET")
            .arg(&redis_key)
            .arg("pending")
            .arg("NX")
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .query_async::<Option<String>>(&mut conn)
            .await?
            .is_some();
        if claimed {
            return Ok(Claimed::First);
        }
        let value: Option<String> = conn.get(&redis_key).await?;
        let done = value.as_deref().and_then(|v| {
            let (user_message, reply) = v.strip_prefix("done:")?.split_once(':')?;
            Some((
                Uuid::try_parse(user_message).ok()?,
                Uuid::try_parse(reply).ok()?,
            ))
        });
        Ok(match done {
            Some((user_message, reply)) => Claimed::Done(user_message, reply),
            None => Claimed::Pending,
        })
    }

    /// Records what the first call with `key` stored.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn complete_idempotency_key(
        &self,
        tenant: TenantId,
        user: Uuid,
        key: &str,
        (user_message, reply): (Uuid, Uuid),
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let redis_key = self.idempotency_key(tenant, user, key);
        let mut conn = self.fast_connection();
        conn.set_ex::<_, _, ()>(
            redis_key,
            format!("done:{user_message}:{reply}"),
            ttl.as_secs().max(1),
        )
        .await?;
        Ok(())
    }

    /// Releases `key` after its call failed, so a retry runs again.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn release_idempotency_key(
        &self,
        tenant: TenantId,
        user: Uuid,
        key: &str,
    ) -> Result<(), CacheError> {
        let redis_key = self.idempotency_key(tenant, user, key);
        let mut conn = self.fast_connection();
        conn.del::<_, ()>(redis_key).await?;
        Ok(())
    }
}
