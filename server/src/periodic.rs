//! Background passes that repeat on an interval until shutdown (tenant data deletion,
//! audit checkpoints, audit retention, plugin manifest refresh). A failed pass is logged
//! and retried next time. Passes that must not run on two replicas at once run
//! [`alone`]: each claims the job's lease in Postgres first.

use std::{fmt::Display, future::Future, sync::LazyLock, time::Duration};

use uuid::Uuid;

use crate::store::{self, Database};

/// Intervals a lease lasts: a holder whose pass runs late keeps its job.
pub const LEASE_INTERVALS: u32 = 3;

/// This replica, as lease holder.
static REPLICA: LazyLock<Uuid> = LazyLock::new(Uuid::new_v4);

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

/// Runs `pass` every `interval` like [`every`], on one replica at a time: before each pass
/// this replica claims (or renews) the job's lease in `db` for [`LEASE_INTERVALS`]
/// intervals, and skips the pass while another replica holds it. A replica that stops
/// lets its lease lapse, and another takes the job over.
pub async fn alone<F, Fut, E>(
    job: &'static str,
    interval: Duration,
    db: &Database,
    stop: impl Future<Output = ()>,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    every(job, interval, stop, || {
        let lease = interval.saturating_mul(LEASE_INTERVALS);
        let claimed = store::leases::claim(db, job, *REPLICA, lease);
        let pass = pass();
        async move {
            match claimed.await {
                Ok(true) => pass.await.map_err(|err| err.to_string()),
                Ok(false) => Ok(()),
                Err(err) => Err(format!("cannot claim the job: {err}")),
            }
        }
    })
    .await;
}
