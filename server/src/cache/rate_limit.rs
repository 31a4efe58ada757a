//! Request rate limits: GCRA (the generic cell rate algorithm) in one atomic Lua script, so
//! every replica shares the same limits and a call is counted once.
//!
//! Each limit keeps one value, its theoretical arrival time (TAT). A call is allowed when,
//! after adding one emission interval (1 / rate), the TAT is at most `burst` intervals
//! ahead of now; otherwise it may retry once that is true again. The caller's and the
//! tenant's limits are checked together: a refused call consumes neither. Time comes from
//! Redis (`TIME`), so replica clocks do not matter.

use std::time::Duration;

use redis::Script;

use super::{Cache, CacheError};
use crate::{config::RateLimitConfig, tenancy::TenantId};

/// KEYS: one TAT key per limit. ARGV: per limit, its interval and its tolerance (burst ×
/// interval), in microseconds. Returns 0 when allowed (and records it), else the
/// microseconds to wait.
const GCRA: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local wait = 0
local tats = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allowed_at = new_tat - tolerance
  if allowed_at > now and allowed_at - now > wait then wait = allowed_at - now end
  tats[i] = new_tat
end
if wait > 0 then return wait end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], tats[i], 'PX', math.ceil((tats[i] - now) / 1000) + 1)
end
return 0
";

/// Whether a call may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allowed,
    /// Too many calls; retry after this long.
    Limited {
        /// How long until the call would be allowed.
        retry_after: Duration,
    },
}

/// Checks calls against the configured limits.
pub struct RateLimiter {
    cache: Cache,
    config: RateLimitConfig,
    script: Script,
}

impl RateLimiter {
    /// Limits from `config`, kept in `cache`.
    pub fn new(cache: Cache, config: RateLimitConfig) -> Self {
        Self {
            cache,
            config,
            script: Script::new(GCRA),
        }
    }

    /// Whether Redis failures let calls through.
    pub fn fails_open(&self) -> bool {
        self.config.fail_open
    }

    /// Counts one call of `caller` (an API key or user id) in `tenant`.
    ///
    /// # Errors
    /// [`CacheError`] when Redis cannot be asked.
    pub async fn check(&self, tenant: TenantId, caller: &str) -> Result<Decision, CacheError> {
        if !self.config.enabled {
            return Ok(Decision::Allowed);
        }
        let keys = self.cache.keys();
        let caller_interval = interval_us(self.config.per_caller_per_second);
        let tenant_interval = interval_us(self.config.per_tenant_per_second);
        let mut conn = self.cache.fast_connection();
        let wait_us: u64 = self
            .script
            .key(keys.tenant(tenant, &["rl", "caller", caller]))
            .key(keys.tenant(tenant, &["rl", "tenant"]))
            .arg(caller_interval)
            .arg(caller_interval * u64::from(self.config.per_caller_burst))
            .arg(tenant_interval)
            .arg(tenant_interval * u64::from(self.config.per_tenant_burst))
            .invoke_async(&mut conn)
            .await?;
        Ok(if wait_us == 0 {
            Decision::Allowed
        } else {
            Decision::Limited {
                retry_after: Duration::from_micros(wait_us),
            }
        })
    }
}

/// Microseconds between calls at `per_second`, at least 1.
fn interval_us(per_second: f64) -> u64 {
    // Config validation guarantees a positive finite rate.
    ((1_000_000.0 / per_second).round() as u64).max(1)
}
