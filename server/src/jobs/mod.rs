//! Background jobs: work that follows a call but need not hold up its answer (a new
//! conversation's title; a turn's messages indexed as memories, facts extracted from them,
//! conversation summaries), queued in a Redis stream and run by the workers of every
//! replica in one consumer group.
//!
//! Delivery is at least once: a worker acknowledges a job only after it ran (or was put
//! aside for a retry), so a job whose worker died is taken over by another once it has
//! been idle longer than `jobs.timeout`. Jobs are idempotent by their key (the message they
//! are about): a job that already ran is acknowledged without running again. A failed job
//! is retried with exponential backoff (`jobs.retry_base` doubling up to `jobs.retry_max`);
//! after `jobs.max_attempts` attempts, or at once when retrying cannot help, it moves to
//! the dead-letter stream. Outcomes are counted in `jobs_total{kind,outcome}`.

mod worker;

use std::future::Future;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use worker::{Workers, retry_delay};

use crate::{
    cache::{Cache, CacheError},
    tenancy::TenantId,
};

/// A unit of background work. Holds identifiers only: the worker reads what it needs
/// from the tenant's (sealed) rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Give a new conversation a title from its first message.
    TitleConversation {
        /// The tenant.
        tenant: Uuid,
        /// The conversation's user.
        user: Uuid,
        /// The conversation.
        conversation: Uuid,
        /// Its first message.
        message: Uuid,
        /// `provider/model` that answered it (titles come from the same model unless the
        /// tenant has a `title` alias).
        model: String,
    },
    /// Keep a chat turn's messages as long-term memories of the user.
    IndexMessages {
        /// The tenant.
        tenant: Uuid,
        /// The conversation's user.
        user: Uuid,
        /// The conversation.
        conversation: Uuid,
        /// The turn's messages, in order.
        messages: Vec<Uuid>,
    },
    /// Keep the facts and preferences a user's message states as episodic memories.
    ExtractFacts {
        /// The tenant.
        tenant: Uuid,
        /// The conversation's user.
        user: Uuid,
        /// The conversation.
        conversation: Uuid,
        /// The user's message.
        message: Uuid,
        /// Alias or `provider/model` asked (`memory.extract_model`).
        model: String,
    },
    /// Summarise a conversation's recent turns into a summary memory.
    SummarizeConversation {
        /// The tenant.
        tenant: Uuid,
        /// The conversation's user.
        user: Uuid,
        /// The conversation.
        conversation: Uuid,
        /// The last message the summary covers.
        through: Uuid,
        /// Alias or `provider/model` asked (`memory.summary_model`).
        model: String,
    },
}

impl Job {
    /// The job's kind, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Job::TitleConversation { .. } => "title_conversation",
            Job::IndexMessages { .. } => "index_messages",
            Job::ExtractFacts { .. } => "extract_facts",
            Job::SummarizeConversation { .. } => "summarize_conversation",
        }
    }

    /// The tenant it works for.
    pub fn tenant(&self) -> TenantId {
        match self {
            Job::TitleConversation { tenant, .. }
            | Job::IndexMessages { tenant, .. }
            | Job::ExtractFacts { tenant, .. }
            | Job::SummarizeConversation { tenant, .. } => TenantId(*tenant),
        }
    }

    /// What makes two deliveries the same job.
    pub fn key(&self) -> String {
        match self {
            Job::TitleConversation { message, .. }
            | Job::ExtractFacts { message, .. }
            | Job::SummarizeConversation {
                through: message, ..
            } => format!("{}:{message}", self.kind()),
            Job::IndexMessages { messages, .. } => {
                let ids: Vec<String> = messages.iter().map(Uuid::to_string).collect();
                format!("{}:{}", self.kind(), ids.join(","))
            }
        }
    }
}

/// A job as queued: with the attempt it is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Envelope {
    /// 1 for the first run.
    attempt: u32,
    job: Job,
}

impl Envelope {
    fn to_json(&self) -> String {
        // A tagged enum of ids and strings always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// How a job ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// It did its work.
    Done,
    /// There was nothing (more) to do, e.g. the conversation is gone or was renamed.
    Skipped(&'static str),
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// It may succeed later (a provider or Redis was unavailable).
    #[error("{0}")]
    Retry(String),
    /// Trying again cannot help (a setting is wrong): straight to the dead letters.
    #[error("{0}")]
    Permanent(String),
}

/// Runs jobs.
pub trait JobHandler: Send + Sync + 'static {
    /// Runs `job`.
    ///
    /// # Errors
    /// [`JobError`] saying whether a retry may help.
    fn handle(&self, job: &Job) -> impl Future<Output = Result<Handled, JobError>> + Send;
}

/// Runs each job with the handler of its kind.
pub struct Handlers<T, I, F> {
    /// Runs [`Job::TitleConversation`].
    pub titles: T,
    /// Runs [`Job::IndexMessages`].
    pub indexing: I,
    /// Runs [`Job::ExtractFacts`] and [`Job::SummarizeConversation`].
    pub memories: F,
}

impl<T: JobHandler, I: JobHandler, F: JobHandler> JobHandler for Handlers<T, I, F> {
    async fn handle(&self, job: &Job) -> Result<Handled, JobError> {
        match job {
            Job::TitleConversation { .. } => self.titles.handle(job).await,
            Job::IndexMessages { .. } => self.indexing.handle(job).await,
            Job::ExtractFacts { .. } | Job::SummarizeConversation { .. } => {
                self.memories.handle(job).await
            }
        }
    }
}

/// A job handed to a handler of another kind: a wiring mistake, not worth retrying.
pub fn misrouted(handler: &str, job: &Job) -> JobError {
    JobError::Permanent(format!("{handler} cannot run a {} job", job.kind()))
}

/// Queues jobs.
#[derive(Clone)]
pub struct Jobs {
    cache: Cache,
}

impl Jobs {
    /// Queues in `cache`.
    pub fn new(cache: Cache) -> Self {
        Self { cache }
    }

    /// Queues `job`.
    ///
    /// # Errors
    /// [`CacheError`] when Redis fails.
    pub async fn enqueue(&self, job: Job) -> Result<(), CacheError> {
        let envelope = Envelope { attempt: 1, job };
        self.cache.enqueue_job(&envelope.to_json()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_tagged_json_keyed_by_their_message() {
        let job = Job::TitleConversation {
            tenant: Uuid::nil(),
            user: Uuid::nil(),
            conversation: Uuid::nil(),
            message: Uuid::from_u128(7),
            model: "cloud/echo-1".into(),
        };
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(json["kind"], "title_conversation");
        assert_eq!(serde_json::from_value::<Job>(json).unwrap(), job);
        assert_eq!(
            job.key(),
            "title_conversation:00000000-0000-0000-0000-000000000007"
        );
        let job = Job::IndexMessages {
            tenant: Uuid::nil(),
            user: Uuid::nil(),
            conversation: Uuid::nil(),
            messages: vec![Uuid::from_u128(1), Uuid::from_u128(2)],
        };
        assert_eq!(
            serde_json::to_value(&job).unwrap()["kind"],
            "index_messages"
        );
        assert_eq!(
            job.key(),
            "index_messages:00000000-0000-0000-0000-000000000001,\
             00000000-0000-0000-0000-000000000002"
        );
    }
}
