//! The circuit breaker of a tenant's providers, shared by every replica through Redis: a
//! provider that failed `FAILURES` times (5xx, unreachable, no answer in time) within
//! `WINDOW` is skipped for `OPEN_FOR`, so calls go straight to the next target instead of
//! waiting on a failing one. Redis trouble never blocks a call: the breaker then lets it
//! through.

use std::time::Duration;

use super::LlmError;
use crate::{cache::Cache, tenancy::TenantId};

/// Failures that open a circuit.
const FAILURES: u32 = 5;
/// Window in which they count.
const WINDOW: Duration = Duration::from_secs(30);
/// How long an open circuit skips the provider.
const OPEN_FOR: Duration = Duration::from_secs(30);

/// One tenant's breakers.
#[derive(Clone)]
pub struct CircuitBreaker {
    cache: Cache,
    tenant: TenantId,
}

/// Whether a failure says the provider itself is in trouble (rather than the request).
fn counts(err: &LlmError) -> bool {
    matches!(
        err,
        LlmError::Unreachable(_) | LlmError::Upstream { status: 500.., .. }
    )
}

impl CircuitBreaker {
    /// Breakers of `tenant`, kept in `cache`.
    pub fn new(cache: Cache, tenant: TenantId) -> Self {
        Self { cache, tenant }
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
                .breaker_failure(self.tenant, provider, FAILURES, WINDOW, OPEN_FOR)
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
