//! Background passes that repeat on an interval until shutdown (tenant data deletion,
//! audit checkpoints, audit retention). A failed pass is logged and retried next time.

use std::{fmt::Display, future::Future, time::Duration};

/// Runs `pass` every `interval` (the first at once) until `stop` resolves; `job` names it
/// in logs.
pub async fn every<F, Fut, E>(
    job: &'static str,
    interval: Duration,
    stop: impl Future<Output = ()>,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticker.tick() => {
                if let Err(err) = pass().await {
                    tracing::error!(job, error = %err, "background pass failed; will retry");
                }
            }
        }
    }
}
