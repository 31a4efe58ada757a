//! Circuit breaker state shared by every replica, under `cc:{tenant}:breaker:{provider}:`:
//! `failures` counts recent failures (expiring with the counting window), `open` marks
//! the provider skipped until it expires, `tripped` remembers that the circuit opened
//! until a call succeeds again (or a day passes), and `probe` is the one call let through once `open` has
//! expired (half-open). Each step is one atomic script.

use std::{sync::LazyLock, time::Duration};

use redis::Script;

use super::{Cache, CacheError};
use crate::tenancy::TenantId;

/// KEYS: open, tripped, probe, failures. ARGV: how long a probe may take (ms).
/// Returns 0: open (skip); 1: half-open and this call is the probe; 2: closed with
/// failures being counted; 3: closed and clean.
const STATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then
  if redis.call('SET', KEYS[3], 1, 'NX', 'PX', ARGV[1]) then return 1 end
  return 0
end
if redis.call('EXISTS', KEYS[4]) == 1 then return 2 end
return 3
";

/// KEYS: failures, open, tripped, probe. ARGV: threshold, window (ms), open for (ms).
/// Returns 1 when this failure opened the circuit (again), else 0.
const FAILURE: &str = r"
local failures = redis.call('INCR', KEYS[1])
if failures == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
local probing = redis.call('EXISTS', KEYS[3]) == 1
if failures < tonumber(ARGV[1]) and not probing then return 0 end
redis.call('SET', KEYS[2], failures, 'PX', ARGV[3])
redis.call('SET', KEYS[3], 1, 'EX', 86400)
redis.call('DEL', KEYS[1], KEYS[4])
return 1
";

/// KEYS: failures, tripped, probe. Returns 1 when the circuit had opened (it closes now).
const SUCCESS: &str = r"
local tripped = redis.call('DEL', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[3])
return tripped
";

static STATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(STATE));
static FAILURE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(FAILURE));
static SUCCESS_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SUCCESS));

/// What a provider's breaker says about the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Skip the provider.
    Open,
    /// The circuit was open and its time is up: this call is the one probe let through.
    Probe,
    /// Closed, with recent failures being counted.
    Counting,
    /// Closed, nothing counted.
    Closed,
}

impl Cache {
    fn breaker_key(&self, tenant: TenantId, provider: &str, part: &str) -> String {
        self.keys().tenant(tenant, &["breaker", provider, part])
    }

    /// The state of `provider`'s circuit for the next call; a probe reserved by it holds
    /// for `probe_for`, after which another call may probe.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn breaker_state(
        &self,
        tenant: TenantId,
        provider: &str,
        probe_for: Duration,
    ) -> Result<BreakerState, CacheError> {
        let state: u8 = STATE_SCRIPT
            .key(self.breaker_key(tenant, provider, "open"))
            .key(self.breaker_key(tenant, provider, "tripped"))
            .key(self.breaker_key(tenant, provider, "probe"))
            .key(self.breaker_key(tenant, provider, "failures"))
            .arg(millis(probe_for))
            .invoke_async(&mut self.fast_connection())
            .await?;
        Ok(match state {
            0 => BreakerState::Open,
            1 => BreakerState::Probe,
            2 => BreakerState::Counting,
            _ => BreakerState::Closed,
        })
    }

    /// Counts a failure of `provider`; opens its circuit for `open_for` once `threshold`
    /// failures fell within `window`, or at once when the failed call was the half-open
    /// probe. Returns whether this failure opened it.
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
        let opened: u8 = FAILURE_SCRIPT
            .key(self.breaker_key(tenant, provider, "failures"))
            .key(self.breaker_key(tenant, provider, "open"))
            .key(self.breaker_key(tenant, provider, "tripped"))
            .key(self.breaker_key(tenant, provider, "probe"))
            .arg(threshold)
            .arg(millis(window))
            .arg(millis(open_for))
            .invoke_async(&mut self.fast_connection())
            .await?;
        Ok(opened == 1)
    }

    /// Forgets `provider`'s failures after a success, closing its circuit if it had
    /// opened; returns whether it had.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn breaker_success(
        &self,
        tenant: TenantId,
        provider: &str,
    ) -> Result<bool, CacheError> {
        let closed: u8 = SUCCESS_SCRIPT
            .key(self.breaker_key(tenant, provider, "failures"))
            .key(self.breaker_key(tenant, provider, "tripped"))
            .key(self.breaker_key(tenant, provider, "probe"))
            .invoke_async(&mut self.fast_connection())
            .await?;
        Ok(closed == 1)
    }
}

/// `duration` in whole milliseconds, at least 1 (Redis refuses 0 as an expiry).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}
