//! The circuit breaker of a tenant's providers, shared by every replica through Redis: a
//! provider that failed `llm.breaker.failures` times (5xx, unreachable, no answer in time)
//! within `llm.breaker.window` is skipped for `llm.breaker.open_for`, so calls go straight
//! to the next target instead of waiting on a failing one. Redis trouble never blocks a
//! call: the breaker then lets it through.

use super::LlmError;
use crate::{cache::Cache, config::BreakerConfig, tenancy::TenantId};

/// One tenant's breakers.
#[derive(Clone)]
pub struct CircuitBreaker {
    cache: Cache,
    tenant: TenantId,
    settings: BreakerConfig,
}

/// Whether a failure says the provider itself is in trouble (rather than the request).
fn counts(err: &LlmError) -> bool {
    matches!(
        err,
        LlmError::Unreachable(_) | LlmError::Upstream { status: 500.., .. }
    )
}

impl CircuitBreaker {
    /// Breakers of `tenant`, kept in `cache`, opening as `settings` say.
    pub fn new(cache: Cache, tenant: TenantId, settings: BreakerConfig) -> Self {
        Self {
            cache,
            tenant,
            settings,
        }
    }

    /// Whether calls may go to `provider` now.
    pub async fn allows(&self, provider: &str) -> bool {
        match self.cache.breaker_open(self.tenant, provider).await {
            Ok(open) => !open,
            Err(err) => {
                tracing::warn!(error = %err, "circuit breaker unavailable; letting the call through");
                true
            }
        }
    }

    /// Notes how a call to `provider` went.
    pub async fn record(&self, provider: &str, result: Result<(), &LlmError>) {
        let outcome = match result {
            Ok(()) => self.cache.breaker_success(self.tenant, provider).await,
            Err(err) if counts(err) => self
                .cache
                .breaker_failure(
                    self.tenant,
                    provider,
                    self.settings.failures,
                    self.settings.window,
                    self.settings.open_for,
                )
                .await
                .map(|opened| {
                    if opened {
                        tracing::warn!(provider, "circuit opened: provider skipped for a while");
                    }
                }),
            Err(_) => Ok(()),
        };
        if let Err(err) = outcome {
            tracing::warn!(error = %err, "circuit breaker state not updated");
        }
    }
}
