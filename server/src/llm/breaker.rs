//! The circuit breaker of a tenant's providers, shared by every replica through Redis: a
//! provider that failed `llm.breaker.failures` times (5xx, unreachable, no answer in time)
//! within `llm.breaker.window` is skipped for `llm.breaker.open_for`, so calls go straight
//! to the next target instead of waiting on a failing one. Then one call is let through
//! as a probe (half-open): its success closes the circuit, its failure opens it again.
//! Redis trouble never blocks a call: the breaker then lets it through.

use std::sync::Arc;

use super::LlmError;
use crate::{
    cache::{BreakerState, Cache},
    config::BreakerConfig,
    telemetry::Metrics,
    tenancy::TenantId,
};

/// Every tenant's breakers: where they are kept and when they open.
#[derive(Clone)]
pub struct Breakers {
    cache: Cache,
    settings: BreakerConfig,
    metrics: Arc<Metrics>,
}

impl Breakers {
    /// Breakers kept in `cache`, opening as `settings` say; their transitions are counted
    /// in `metrics`.
    pub fn new(cache: Cache, settings: BreakerConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            cache,
            settings,
            metrics,
        }
    }

    /// The breakers of `tenant`'s providers.
    pub fn of(&self, tenant: TenantId) -> CircuitBreaker {
        CircuitBreaker {
            cache: self.cache.clone(),
            tenant,
            settings: self.settings,
            metrics: self.metrics.clone(),
        }
    }
}

/// One tenant's breakers.
#[derive(Clone)]
pub struct CircuitBreaker {
    cache: Cache,
    tenant: TenantId,
    settings: BreakerConfig,
    metrics: Arc<Metrics>,
}

/// Whether a failure says the provider itself is in trouble (rather than the request).
fn counts(err: &LlmError) -> bool {
    matches!(
        err,
        LlmError::Unreachable(_) | LlmError::Upstream { status: 500.., .. }
    )
}

impl CircuitBreaker {
    /// Whether calls may go to `provider` now: `None` while its circuit is open, else
    /// whether its failures are being counted (pass it to [`Self::record`]).
    pub async fn allows(&self, provider: &str) -> Option<Failing> {
        match self
            .cache
            .breaker_state(self.tenant, provider, self.settings.open_for)
            .await
        {
            Ok(BreakerState::Open) => None,
            Ok(BreakerState::Probe) => {
                tracing::info!(provider, "circuit half-open: one call probes the provider");
                self.metrics.record_breaker("half_open");
                Some(Failing(true))
            }
            Ok(BreakerState::Counting) => Some(Failing(true)),
            Ok(BreakerState::Closed) => Some(Failing(false)),
            Err(err) => {
                tracing::warn!(error = %err, "circuit breaker unavailable; letting the call through");
                Some(Failing(true))
            }
        }
    }

    /// Notes how a call to `provider` went; `failing` says whether failures were being
    /// counted (a success forgets them; nothing to forget costs nothing). Returns whether
    /// failures are counted now.
    pub async fn record(
        &self,
        provider: &str,
        failing: Failing,
        result: Result<(), &LlmError>,
    ) -> Failing {
        let trouble = match result {
            Ok(()) => None,
            Err(err) => Some(counts(err)),
        };
        self.note(provider, failing, trouble).await
    }

    /// Notes how a call to `provider` (a model provider, or anything else of the tenant's
    /// that can fail, such as `plugin:<id>`) went: `None` when it succeeded, `Some(true)` when it
    /// failed in a way that counts against it, `Some(false)` when it failed for the
    /// request's sake. Returns whether failures are counted now.
    pub async fn note(&self, provider: &str, failing: Failing, trouble: Option<bool>) -> Failing {
        let outcome = match trouble {
            None if !failing.0 => return failing,
            None => self
                .cache
                .breaker_success(self.tenant, provider)
                .await
                .map(|closed| {
                    if closed {
                        tracing::info!(provider, "circuit closed: the provider answers again");
                        self.metrics.record_breaker("closed");
                    }
                    Failing(false)
                }),
            Some(true) => self
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
                        self.metrics.record_breaker("open");
                    }
                    Failing(true)
                }),
            Some(false) => Ok(failing),
        };
        outcome.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "circuit breaker state not updated");
            Failing(true)
        })
    }
}

/// Whether a provider's failures are being counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failing(bool);
