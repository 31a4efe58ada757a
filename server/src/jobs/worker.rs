//! The workers of one replica: each first moves due retries back to the stream and takes
//! over jobs abandoned by a worker that died, then waits for new ones, and runs them one
//! at a time.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use uuid::Uuid;

use super::{Envelope, Handled, Job, JobError, JobHandler};
use crate::{
    cache::{
        Cache, CacheError,
        jobs::{Delivery, JobConnection, Pending},
    },
    config::JobsConfig,
    telemetry::Metrics,
};

/// Longest a worker waits for new jobs before looking at due retries again.
const BLOCK: Duration = Duration::from_secs(1);
/// Jobs read at once.
const BATCH: usize = 8;
/// How long a finished job's key is remembered (deliveries of it are skipped meanwhile).
const REMEMBER_DONE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Wait after Redis trouble before trying again.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// How long past `jobs.timeout` a delivered job may sit unacknowledged before another
/// worker takes it over (its worker died).
const ABANDONED_AFTER: Duration = Duration::from_secs(30);

/// How long to wait before delivery number `deliveries + 1`: `base` after the first,
/// doubling each time, at most `max`.
pub fn retry_delay(deliveries: u32, base: Duration, max: Duration) -> Duration {
    let doublings = deliveries.saturating_sub(1).min(31);
    base.saturating_mul(1 << doublings).min(max)
}

/// A replica's job workers.
pub struct Workers<H> {
    cache: Cache,
    handler: Arc<H>,
    settings: JobsConfig,
    metrics: Arc<Metrics>,
}

impl<H: JobHandler> Workers<H> {
    /// Workers running jobs from `cache` with `handler`, as `settings` say, counting in
    /// `metrics`.
    pub fn new(cache: Cache, handler: H, settings: JobsConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            cache,
            handler: Arc::new(handler),
            settings,
            metrics,
        }
    }

    /// Runs `jobs.workers` workers until `stop` resolves. A job running then is abandoned
    /// unacknowledged; another worker retries it.
    pub async fn run(self, stop: impl Future<Output = ()> + Send) {
        if self.settings.workers == 0 {
            return;
        }
        let this = Arc::new(self);
        let replica = Uuid::new_v4();
        let (quit, _) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::with_capacity(this.settings.workers);
        for n in 0..this.settings.workers {
            let worker = this.clone();
            let mut quitting = quit.subscribe();
            let consumer = format!("{replica}-{n}");
            tasks.push(tokio::spawn(async move {
                let stopped = async move {
                    let _ = quitting.wait_for(|q| *q).await;
                };
                worker.work(&consumer, stopped).await;
            }));
        }
        stop.await;
        let _ = quit.send(true);
        for task in tasks {
            let _ = task.await;
        }
    }

    /// One worker's loop.
    async fn work(&self, consumer: &str, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut connection: Option<JobConnection> = None;
        loop {
            let pass = async {
                let conn = match connection.as_mut() {
                    Some(conn) => conn,
                    None => {
                        self.cache.ensure_job_group().await?;
                        connection.insert(self.cache.job_connection(BLOCK).await?)
                    }
                };
                self.retry_due(conn, consumer).await?;
                let deliveries = self
                    .cache
                    .read_new_jobs(conn, consumer, BATCH, BLOCK)
                    .await?;
                for delivery in deliveries {
                    self.run_one(conn, delivery).await?;
                }
                Ok::<(), CacheError>(())
            };
            tokio::select! {
                () = &mut stop => return,
                result = pass => {
                    if let Err(err) = result {
                        tracing::warn!(consumer, error = %err, "job worker lost Redis; reconnecting");
                        connection = None;
                        tokio::select! {
                            () = &mut stop => return,
                            () = tokio::time::sleep(RECONNECT_AFTER) => {}
                        }
                    }
                }
            }
        }
    }

    /// Moves due retries back to the stream; takes over and runs jobs abandoned by a
    /// worker that died (dead-lettering those abandoned `jobs.max_attempts` times).
    async fn retry_due(&self, conn: &mut JobConnection, consumer: &str) -> Result<(), CacheError> {
        self.cache
            .release_due_jobs(conn, unix_millis(), BATCH)
            .await?;
        let abandoned = self.settings.timeout + ABANDONED_AFTER;
        let pending = self.cache.pending_jobs(conn, abandoned, BATCH).await?;
        for entry in Pending::all(&pending) {
            let Some(delivery) = self
                .cache
                .claim_job(conn, consumer, entry.id, abandoned)
                .await?
            else {
                continue;
            };
            if entry.deliveries >= self.settings.max_attempts {
                let error = "abandoned by its worker on every delivery";
                self.dead_letter(conn, &delivery.id, delivery.job.as_deref(), error)
                    .await?;
            } else {
                self.run_one(conn, delivery).await?;
            }
        }
        Ok(())
    }

    /// Runs the handler on `job` in a task of its own, bounded by `jobs.timeout`: a
    /// handler that panics fails its job for good (a retry would panic again) and leaves
    /// the worker running.
    async fn handle_isolated(&self, job: &Job) -> Result<Handled, JobError> {
        let handler = self.handler.clone();
        let owned = job.clone();
        let mut task = tokio::spawn(async move { handler.handle(&owned).await });
        match tokio::time::timeout(self.settings.timeout, &mut task).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(join)) if join.is_panic() => {
                tracing::error!(kind = job.kind(), key = job.key(), "job handler panicked");
                Err(JobError::Permanent("the job's handler panicked".into()))
            }
            Ok(Err(_)) => Err(JobError::Retry("the job's task was cancelled".into())),
            Err(_) => {
                task.abort();
                Err(JobError::Retry("took longer than jobs.timeout".into()))
            }
        }
    }

    /// Runs one delivered job and settles it: done, put aside for a retry, or dead.
    async fn run_one(
        &self,
        conn: &mut JobConnection,
        delivery: Delivery,
    ) -> Result<(), CacheError> {
        let Some(envelope) = delivery
            .job
            .as_deref()
            .and_then(|json| serde_json::from_str::<Envelope>(json).ok())
        else {
            let error = "not a job this server knows";
            return self
                .dead_letter(conn, &delivery.id, delivery.job.as_deref(), error)
                .await;
        };
        let job = &envelope.job;
        let kind = job.kind();
        let key = job.key();
        if self.cache.job_done(job.tenant(), &key).await? {
            self.metrics.record_job(kind, "duplicate", 0.0);
            return self.cache.ack_job(conn, &delivery.id).await;
        }
        let started = Instant::now();
        let outcome = self.handle_isolated(job).await;
        let seconds = started.elapsed().as_secs_f64();
        match outcome {
            Ok(handled) => {
                self.cache
                    .mark_job_done(job.tenant(), &key, REMEMBER_DONE)
                    .await?;
                self.cache.ack_job(conn, &delivery.id).await?;
                let outcome = match handled {
                    Handled::Done => "done",
                    Handled::Skipped(reason) => {
                        tracing::info!(kind, key, reason, "job skipped");
                        "skipped"
                    }
                };
                self.metrics.record_job(kind, outcome, seconds);
            }
            Err(JobError::Retry(error)) if envelope.attempt < self.settings.max_attempts => {
                let wait = retry_delay(
                    envelope.attempt,
                    self.settings.retry_base,
                    self.settings.retry_max,
                );
                tracing::warn!(
                    kind,
                    key,
                    attempt = envelope.attempt,
                    ?wait,
                    error,
                    "job failed; will retry"
                );
                let next = Envelope {
                    attempt: envelope.attempt + 1,
                    job: envelope.job.clone(),
                };
                let due = unix_millis() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
                // Put aside before acknowledging: a crash in between runs it twice (the
                // job is idempotent) rather than never.
                self.cache.delay_job(&next.to_json(), due).await?;
                self.cache.ack_job(conn, &delivery.id).await?;
                self.metrics.record_job(kind, "retry", seconds);
            }
            Err(JobError::Retry(error) | JobError::Permanent(error)) => {
                self.dead_letter(conn, &delivery.id, delivery.job.as_deref(), &error)
                    .await?;
            }
        }
        Ok(())
    }

    async fn dead_letter(
        &self,
        conn: &mut JobConnection,
        id: &str,
        job: Option<&str>,
        error: &str,
    ) -> Result<(), CacheError> {
        let envelope = job.and_then(|json| serde_json::from_str::<Envelope>(json).ok());
        let kind = envelope.as_ref().map_or("unknown", |e| e.job.kind());
        let attempts = envelope.as_ref().map_or(0, |e| e.attempt);
        tracing::error!(
            entry = id,
            kind,
            attempts,
            error,
            "job moved to the dead letters"
        );
        self.metrics.record_job(kind, "dead", 0.0);
        self.cache
            .dead_letter_job(conn, id, job.unwrap_or_default(), error, attempts)
            .await
    }
}

/// Now, in milliseconds since the Unix epoch.
fn unix_millis() -> i64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(now).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let base = Duration::from_secs(2);
        let max = Duration::from_secs(60);
        let delays: Vec<u64> = (1..=7)
            .map(|n| retry_delay(n, base, max).as_secs())
            .collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(retry_delay(u32::MAX, base, max), max);
    }
}
