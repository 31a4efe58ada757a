//! The job queue's Redis side: one stream, `cc:{_platform}:jobs`, read by the consumer
//! group `workers`; retries wait in the sorted set `cc:{_platform}:jobs:delayed` (scored by
//! when they are due) until a worker moves them back to the stream; jobs that failed too
//! often move to the stream `cc:{_platform}:jobs:dead`. The three share a hash tag, so the
//! script and the transaction that move jobs between them run on a cluster. Entries carry
//! only identifiers (tenant, user, conversation, message), never content, so these keys
//! need no tenant of their own; a job's "done" marker is tenant-owned and lives under
//! `cc:{<tenant>}:job:…`.

use std::time::Duration;

use redis::{
    AsyncCommands,
    streams::{
        StreamClaimReply, StreamMaxlen, StreamPendingCountReply, StreamReadOptions, StreamReadReply,
    },
};

use super::{Cache, CacheError, Connection};
use crate::tenancy::TenantId;

/// The consumer group every worker of every replica belongs to.
const GROUP: &str = "workers";
/// The stream keeps about this many entries (acknowledged ones are trimmed first).
const MAX_ENTRIES: usize = 100_000;
/// The dead-letter stream keeps about this many entries.
const MAX_DEAD: usize = 10_000;
/// Field holding a job's JSON.
const JOB_FIELD: &str = "job";

/// An entry handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Stream entry id.
    pub id: String,
    /// The job's JSON (`None` when the entry has no job field).
    pub job: Option<String>,
}

/// An entry delivered but not yet acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending<'a> {
    /// Stream entry id.
    pub id: &'a str,
    /// Time since it was last delivered.
    pub idle: Duration,
    /// Times it was delivered.
    pub deliveries: u32,
}

/// A worker's own connection: blocking reads must not hold up anyone else's commands.
pub struct JobConnection(Connection);

impl Cache {
    fn job_stream(&self) -> String {
        self.keys().platform(&["jobs"])
    }

    fn dead_letters(&self) -> String {
        self.keys().platform(&["jobs", "dead"])
    }

    fn delayed_jobs(&self) -> String {
        self.keys().platform(&["jobs", "delayed"])
    }

    /// Opens a worker connection that waits up to `block` (plus a margin) for replies.
    ///
    /// # Errors
    /// [`CacheError`] when Redis cannot be reached.
    pub async fn job_connection(&self, block: Duration) -> Result<JobConnection, CacheError> {
        Ok(JobConnection(
            self.backend
                .dedicated_connection(block + Duration::from_secs(5))
                .await?,
        ))
    }

    /// Creates the stream and its consumer group unless they exist.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn ensure_job_group(&self) -> Result<(), CacheError> {
        let mut conn = self.connection().await?;
        let created: Result<(), redis::RedisError> = conn
            .xgroup_create_mkstream(self.job_stream(), GROUP, "0")
            .await;
        match created {
            Err(err) if err.code() != Some("BUSYGROUP") => Err(err.into()),
            _ => Ok(()),
        }
    }

    /// Appends a job; returns its entry id.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn enqueue_job(&self, job: &str) -> Result<String, CacheError> {
        let mut conn = self.fast_connection();
        let id: Option<String> = conn
            .xadd_maxlen(
                self.job_stream(),
                StreamMaxlen::Approx(MAX_ENTRIES),
                "*",
                &[(JOB_FIELD, job)],
            )
            .await?;
        Ok(id.unwrap_or_default())
    }

    /// Up to `count` entries no worker has seen, waiting up to `block` for the first.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn read_new_jobs(
        &self,
        conn: &mut JobConnection,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, CacheError> {
        let options = StreamReadOptions::default()
            .group(GROUP, consumer)
            .count(count)
            .block(usize::try_from(block.as_millis()).unwrap_or(usize::MAX));
        let reply: Option<StreamReadReply> = conn
            .0
            .xread_options(&[self.job_stream()], &[">"], &options)
            .await?;
        Ok(reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids)
            .map(|entry| Delivery {
                job: entry.get(JOB_FIELD),
                id: entry.id,
            })
            .collect())
    }

    /// Up to `count` delivered, unacknowledged entries idle for at least `min_idle`,
    /// oldest first.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn pending_jobs(
        &self,
        conn: &mut JobConnection,
        min_idle: Duration,
        count: usize,
    ) -> Result<StreamPendingCountReply, CacheError> {
        Ok(redis::cmd("XPENDING")
            .arg(self.job_stream())
            .arg(GROUP)
            .arg("IDLE")
            .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
            .arg("-")
            .arg("+")
            .arg(count)
            .query_async(&mut conn.0)
            .await?)
    }

    /// Takes entry `id` over for `consumer` if it is still idle for `min_idle` (another
    /// worker may just have taken it); returns it, counted as one more delivery.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn claim_job(
        &self,
        conn: &mut JobConnection,
        consumer: &str,
        id: &str,
        min_idle: Duration,
    ) -> Result<Option<Delivery>, CacheError> {
        let reply: StreamClaimReply = conn
            .0
            .xclaim(
                self.job_stream(),
                GROUP,
                consumer,
                u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX),
                &[id],
            )
            .await?;
        Ok(reply.ids.into_iter().next().map(|entry| Delivery {
            job: entry.get(JOB_FIELD),
            id: entry.id,
        }))
    }

    /// Puts `job` aside until `due` (Unix time in milliseconds).
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn delay_job(&self, job: &str, due: i64) -> Result<(), CacheError> {
        let mut conn = self.fast_connection();
        conn.zadd::<_, _, _, ()>(self.delayed_jobs(), job, due)
            .await?;
        Ok(())
    }

    /// Moves up to `count` put-aside jobs due by `now` (Unix milliseconds) back to the
    /// stream, atomically (a job moves once however many workers try); returns how many.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn release_due_jobs(
        &self,
        conn: &mut JobConnection,
        now: i64,
        count: usize,
    ) -> Result<usize, CacheError> {
        let script = redis::Script::new(
            r"
            local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
            for _, job in ipairs(due) do
                redis.call('ZREM', KEYS[1], job)
                redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', ARGV[4], job)
            end
            return #due
            ",
        );
        Ok(script
            .key(self.delayed_jobs())
            .key(self.job_stream())
            .arg(now)
            .arg(count)
            .arg(MAX_ENTRIES)
            .arg(JOB_FIELD)
            .invoke_async(&mut conn.0)
            .await?)
    }

    /// Acknowledges entry `id`: it is done with.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn ack_job(&self, conn: &mut JobConnection, id: &str) -> Result<(), CacheError> {
        conn.0
            .xack::<_, _, _, ()>(self.job_stream(), GROUP, &[id])
            .await?;
        Ok(())
    }

    /// Moves entry `id` to the dead-letter stream with why it failed and after how many
    /// attempts, in one transaction.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn dead_letter_job(
        &self,
        conn: &mut JobConnection,
        id: &str,
        job: &str,
        error: &str,
        attempts: u32,
    ) -> Result<(), CacheError> {
        let attempts = attempts.to_string();
        redis::pipe()
            .atomic()
            .xadd_maxlen(
                self.dead_letters(),
                StreamMaxlen::Approx(MAX_DEAD),
                "*",
                &[
                    ("entry", id),
                    (JOB_FIELD, job),
                    ("error", error),
                    ("attempts", attempts.as_str()),
                ],
            )
            .ignore()
            .xack(self.job_stream(), GROUP, &[id])
            .ignore()
            .query_async::<()>(&mut conn.0)
            .await?;
        Ok(())
    }

    /// Whether the job known as `key` of `tenant` already ran to the end.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn job_done(&self, tenant: TenantId, key: &str) -> Result<bool, CacheError> {
        let mut conn = self.fast_connection();
        Ok(conn
            .exists(self.keys().tenant(tenant, &["job", key]))
            .await?)
    }

    /// Notes that the job known as `key` of `tenant` ran to the end, for `keep`.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn mark_job_done(
        &self,
        tenant: TenantId,
        key: &str,
        keep: Duration,
    ) -> Result<(), CacheError> {
        let mut conn = self.fast_connection();
        conn.set_ex::<_, _, ()>(
            self.keys().tenant(tenant, &["job", key]),
            1,
            keep.as_secs().max(1),
        )
        .await?;
        Ok(())
    }
}

impl<'a> Pending<'a> {
    /// The entries of an `XPENDING` reply.
    pub fn all(reply: &'a StreamPendingCountReply) -> impl Iterator<Item = Pending<'a>> {
        reply.ids.iter().map(|p| Pending {
            id: &p.id,
            idle: Duration::from_millis(u64::try_from(p.last_delivered_ms).unwrap_or(u64::MAX)),
            deliveries: u32::try_from(p.times_delivered).unwrap_or(u32::MAX),
        })
    }
}
