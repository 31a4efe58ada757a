//! Trying a route's targets: each target gets its retries on retryable failures (rate
//! limits within a short `retry-after`, provider errors, unreachable, no answer within the
//! attempt timeout) with jittered exponential backoff; other failures, and a target whose
//! retries are spent, fall back to the next target. A target whose circuit is open (see
//! `breaker`) is skipped. Once a reply starts streaming it is not retried.

use std::time::Duration;

use super::{ChatRequest, CircuitBreaker, DeltaStream, LlmError, ResolvedModel};
use crate::random::random_bytes;

/// First backoff; doubled per retry, then jittered by ±50 %.
const BASE_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait before a retry; a provider asking for more is left for the next target.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// Whether retrying the same target may help.
fn retryable(err: &LlmError) -> bool {
    match err {
        LlmError::RateLimited { retry_after } => retry_after.is_none_or(|wait| wait <= MAX_WAIT),
        LlmError::Upstream { status, .. } => *status >= 500,
        LlmError::Unreachable(_) => true,
        LlmError::Unauthorized(_) | LlmError::Rejected(_) | LlmError::Protocol(_) => false,
    }
}

/// How long to wait before retry `attempt` (from 0) after `err`.
fn backoff(attempt: u32, err: &LlmError) -> Duration {
    if let LlmError::RateLimited {
        retry_after: Some(wait),
    } = err
    {
        return (*wait).min(MAX_WAIT);
    }
    let base = BASE_BACKOFF.saturating_mul(1 << attempt.min(5));
    let jitter = random_bytes::<1>().map_or(128, |[b]| b);
    let factor = 0.5 + f64::from(jitter) / 255.0;
    base.mul_f64(factor).min(MAX_WAIT)
}

/// Opens a reply on the first candidate that answers; returns its index in `candidates`.
/// Each candidate is a target and the request it gets (prompts may differ per target, as
/// the PHI policy applies only off the premises).
///
/// # Errors
/// The last failure when every candidate failed.
pub async fn open(
    candidates: &[(&ResolvedModel, ChatRequest)],
    attempt_timeout: Duration,
    max_retries: u32,
    breaker: &CircuitBreaker,
) -> Result<(usize, DeltaStream), LlmError> {
    let mut last = LlmError::Unreachable("no model to ask".to_owned());
    for (index, (target, request)) in candidates.iter().enumerate() {
        let Some(mut failing) = breaker.allows(&target.provider).await else {
            tracing::info!(provider = %target.provider, "circuit open: skipping the provider");
            last = LlmError::Unreachable(format!(
                "model provider {:?} is failing; calls skip it for a while",
                target.provider
            ));
            continue;
        };
        for attempt in 0..=max_retries {
            let result = tokio::time::timeout(attempt_timeout, target.client.stream(request))
                .await
                .unwrap_or_else(|_| {
                    Err(LlmError::Unreachable(format!(
                        "no answer within {} ms",
                        attempt_timeout.as_millis()
                    )))
                });
            failing = breaker
                .record(&target.provider, failing, result.as_ref().map(drop))
                .await;
            match result {
                Ok(stream) => return Ok((index, stream)),
                Err(err) => {
                    tracing::warn!(provider = %target.provider, model = %target.model, attempt, error = %err, "model call failed");
                    let again = attempt < max_retries && retryable(&err);
                    if again {
                        tokio::time::sleep(backoff(attempt, &err)).await;
                    }
                    last = err.at(&target.provider);
                    if !again {
                        break;
                    }
                }
            }
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_retried_and_how_long_it_waits() {
        let limited = |secs| LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert!(retryable(&limited(2)));
        assert!(
            !retryable(&limited(30)),
            "too long: the next target instead"
        );
        assert!(retryable(&LlmError::Upstream {
            status: 503,
            message: String::new()
        }));
        assert!(!retryable(&LlmError::Unauthorized(String::new())));
        assert!(!retryable(&LlmError::Rejected(String::new())));
        assert_eq!(backoff(0, &limited(2)), Duration::from_secs(2));
        for attempt in 0..8 {
            let wait = backoff(attempt, &LlmError::Unreachable(String::new()));
            let nominal = BASE_BACKOFF.saturating_mul(1 << attempt.min(5));
            assert!(
                wait >= nominal.mul_f64(0.5).min(MAX_WAIT) && wait <= MAX_WAIT,
                "{attempt}: {wait:?}"
            );
        }
    }
}
