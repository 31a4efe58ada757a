//! Request rate limits: GCRA (the generic cell rate algorithm) in one atomic Lua script, so
//! every replica shares the same limits and a call is counted once.
//!
//! Each limit keeps one value, its theoretical arrival time (TAT). A call is allowed when,
//! after adding one emission interval (1 / rate), the TAT is at most `burst` intervals
//! ahead of now; otherwise it may retry once that is true again. The caller's and the
//! tenant's limits are checked together: a refused call consumes neither. Time comes from
//! Redis (`TIME`), so replica clocks do not matter.

use std::{collections::HashMap, sync::RwLock, time::Duration};

use redis::Script;
use serde::{Deserialize, Serialize};

use super::{Cache, CacheError};
use crate::{config::RateLimitConfig, tenancy::TenantId};

/// The limits applied to one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Sustained calls per second of one caller.
    pub per_caller_per_second: f64,
    /// Calls one caller may make at once.
    pub per_caller_burst: u32,
    /// Sustained calls per second of the tenant.
    pub per_tenant_per_second: f64,
    /// Calls the tenant may make at once.
    pub per_tenant_burst: u32,
}

impl Limits {
    /// The first unacceptable field, if any.
    pub fn invalid_field(&self) -> Option<&'static str> {
        let rate_ok = |rate: f64| rate.is_finite() && rate > 0.0;
        if !rate_ok(self.per_caller_per_second) {
            Some("per_caller_per_second")
        } else if self.per_caller_burst == 0 {
            Some("per_caller_burst")
        } else if !rate_ok(self.per_tenant_per_second) {
            Some("per_tenant_per_second")
        } else if self.per_tenant_burst == 0 {
            Some("per_tenant_burst")
        } else {
            None
        }
    }
}

impl From<&RateLimitConfig> for Limits {
    fn from(config: &RateLimitConfig) -> Self {
        Self {
            per_caller_per_second: config.per_caller_per_second,
            per_caller_burst: config.per_caller_burst,
            per_tenant_per_second: config.per_tenant_per_second,
            per_tenant_burst: config.per_tenant_burst,
        }
    }
}

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

/// Checks calls against the configured limits, or a tenant's own where a platform admin
/// set them.
pub struct RateLimiter {
    cache: Cache,
    config: RateLimitConfig,
    defaults: Limits,
    overrides: RwLock<HashMap<TenantId, Limits>>,
    script: Script,
}

impl RateLimiter {
    /// Limits from `config`, kept in `cache`.
    pub fn new(cache: Cache, config: RateLimitConfig) -> Self {
        Self {
            cache,
            defaults: Limits::from(&config),
            config,
            overrides: RwLock::new(HashMap::new()),
            script: Script::new(GCRA),
        }
    }

    /// Whether Redis failures let calls through.
    pub fn fails_open(&self) -> bool {
        self.config.fail_open
    }

    /// The limits configured for every tenant without its own.
    pub fn defaults(&self) -> Limits {
        self.defaults
    }

    /// Replaces every tenant's own limits.
    pub fn set_all_overrides(&self, overrides: HashMap<TenantId, Limits>) {
        *self.overrides.write().unwrap_or_else(|e| e.into_inner()) = overrides;
    }

    /// Sets (`Some`) or clears (`None`) one tenant's own limits.
    pub fn set_override(&self, tenant: TenantId, limits: Option<Limits>) {
        let mut overrides = self.overrides.write().unwrap_or_else(|e| e.into_inner());
        match limits {
            Some(limits) => overrides.insert(tenant, limits),
            None => overrides.remove(&tenant),
        };
    }

    /// Forgets `tenant`'s counters, so new limits apply from a clean slate.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn reset_counters(&self, tenant: TenantId) -> Result<(), CacheError> {
        let pattern = self.cache.keys().tenant_pattern(tenant, &["rl"]);
        self.cache.delete_matching(&pattern).await?;
        Ok(())
    }

    fn limits_of(&self, tenant: TenantId) -> Limits {
        self.overrides
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&tenant)
            .copied()
            .unwrap_or(self.defaults)
    }

    /// Counts one call of `caller` (an API key or user id) in `tenant`.
    ///
    /// # Errors
    /// [`CacheError`] when Redis cannot be asked.
    pub async fn check(&self, tenant: TenantId, caller: &str) -> Result<Decision, CacheError> {
        let keys = self.cache.keys();
        let limits = self.limits_of(tenant);
        self.decide(&[
            (
                keys.tenant(tenant, &["rl", "caller", caller]),
                limits.per_caller_per_second,
                limits.per_caller_burst,
            ),
            (
                keys.tenant(tenant, &["rl", "tenant"]),
                limits.per_tenant_per_second,
                limits.per_tenant_burst,
            ),
        ])
        .await
    }

    /// Counts one login step (start, completion, callback, code exchange) from `address`
    /// and/or into `tenant`: logins are public, so they are limited per client address
    /// and per tenant instead of per caller.
    ///
    /// # Errors
    /// [`CacheError`] when Redis cannot be asked.
    pub async fn check_login(
        &self,
        address: Option<&str>,
        tenant: Option<TenantId>,
    ) -> Result<Decision, CacheError> {
        let keys = self.cache.keys();
        let per_minute = |n: u32| f64::from(n) / 60.0;
        let mut limits = Vec::with_capacity(2);
        if let Some(address) = address {
            let address = if address.is_empty() {
                "unknown"
            } else {
                address
            };
            limits.push((
                keys.platform(&["rl", "login", "address", address]),
                per_minute(self.config.login_per_address_per_minute),
                self.config.login_burst,
            ));
        }
        if let Some(tenant) = tenant {
            // Beside the per-address limit (one hash tag, so the script runs on a cluster).
            limits.push((
                keys.platform(&["rl", "login", "tenant", &tenant.to_string()]),
                per_minute(self.config.login_per_tenant_per_minute),
                self.config.login_burst.saturating_mul(10),
            ));
        }
        self.decide(&limits).await
    }

    /// Counts one call against every (key, rate per second, burst) in `limits` at once:
    /// a refused call consumes none of them.
    async fn decide(&self, limits: &[(String, f64, u32)]) -> Result<Decision, CacheError> {
        if !self.config.enabled {
            return Ok(Decision::Allowed);
        }
        let mut invocation = self.script.prepare_invoke();
        for (key, per_second, burst) in limits {
            let interval = interval_us(*per_second);
            invocation
                .key(key)
                .arg(interval)
                .arg(interval.saturating_mul(u64::from(*burst)));
        }
        let mut conn = self.cache.fast_connection();
        let wait_us: u64 = invocation.invoke_async(&mut conn).await?;
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
    // Validation (config and API) guarantees a positive finite rate.
    ((1_000_000.0 / per_second).round() as u64).max(1)
}
