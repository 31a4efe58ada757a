//! Circuit breaker state shared by every replica: `cc:{tenant}:breaker:{provider}:failures`
//! counts a provider's recent failures (expiring with the counting window) and
//! `…:open` marks it skipped until it expires.

use std::time::Duration;

use redis::AsyncCommands;

use super::{Cache, CacheError};
use crate::tenancy::TenantId;

impl Cache {
    /// Counts a failure of `provider`; opens its circuit for `open_for` once `threshold`
    /// failures fell within `window`. Returns whether the circuit is now open.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn breaker_failure(
        &self,
        tenant: TenantId,
        provider: &str,
        threshold: u32,
        window: Duration,
        open_for: Duration,
    ) -> Result<bool, CacheError> {
        let failures_key = self
            .keys()
            .tenant(tenant, &["breaker", provider, "failures"]);
        let mut conn = self.fast_connection();
        let failures: u32 = conn.incr(&failures_key, 1).await?;
        if failures == 1 {
            conn.expire::<_, ()>(
                &failures_key,
                window.as_secs().max(1).try_into().unwrap_or(i64::MAX),
            )
            .await?;
        }
        if failures < threshold {
            return Ok(false);
        }
        let open_key = self.keys().tenant(tenant, &["breaker", provider, "open"]);
        conn.set_ex::<_, _, ()>(open_key, failures, open_for.as_secs().max(1))
            .await?;
        conn.del::<_, ()>(failures_key).await?;
        Ok(true)
    }

    /// Forgets `provider`'s failures after a success.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn breaker_success(
        &self,
        tenant: TenantId,
        provider: &str,
    ) -> Result<(), CacheError> {
        let failures_key = self
            .keys()
            .tenant(tenant, &["breaker", provider, "failures"]);
        let mut conn = self.fast_connection();
        conn.del::<_, ()>(failures_key).await?;
        Ok(())
    }

    /// Whether `provider`'s circuit is open (calls skip it), and whether failures are
    /// being counted (a success must then forget them), in one round trip.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn breaker_state(
        &self,
        tenant: TenantId,
        provider: &str,
    ) -> Result<(bool, bool), CacheError> {
        let open_key = self.keys().tenant(tenant, &["breaker", provider, "open"]);
        let failures_key = self
            .keys()
            .tenant(tenant, &["breaker", provider, "failures"]);
        let mut conn = self.fast_connection();
        Ok(redis::pipe()
            .exists(open_key)
            .exists(failures_key)
            .query_async(&mut conn)
            .await?)
    }
}
