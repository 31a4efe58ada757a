//! Work that follows a stored turn without holding up its answer, queued as background
//! jobs: titling a new conversation from its first message, keeping the turn's messages as
//! long-term memories (`memory.index_messages`), extracting the facts the user's message
//! states (`memory.extract_model`), and summarising the conversation every
//! `memory.summary_every` messages (`memory.summary_model`). A job that cannot be queued
//! is logged and dropped: the turn itself is stored already.

use uuid::Uuid;

use crate::{
    caller::Principal,
    config::MemoryConfig,
    jobs::{Job, Jobs},
};

/// Queues the follow-ups of turns.
#[derive(Clone)]
pub struct FollowUps {
    jobs: Jobs,
    settings: MemoryConfig,
}

/// A stored turn, as its follow-ups need it.
pub(in crate::chat) struct StoredTurnIds<'t> {
    /// The conversation.
    pub conversation: Uuid,
    /// The turn's stored messages, in order.
    pub messages: &'t [Uuid],
    /// For a conversation's first turn: the user's message and the `provider/model` that
    /// answered it, to title the conversation with.
    pub title_from: Option<(Uuid, &'t str)>,
    /// The user's new message (not for a regenerated reply).
    pub user_message: Option<Uuid>,
    /// Messages the conversation held before the turn.
    pub messages_before: i64,
    /// The turn's last stored message.
    pub last_message: Uuid,
}

impl FollowUps {
    /// Queues in `jobs` what the memory `settings` turn on.
    pub fn new(jobs: Jobs, settings: MemoryConfig) -> Self {
        Self { jobs, settings }
    }

    async fn queue(&self, job: Job) {
        let kind = job.kind();
        if let Err(err) = self.jobs.enqueue(job).await {
            tracing::warn!(error = %err, kind, "follow-up job not queued");
        }
    }

    /// Queues the follow-ups of `turn` of `principal`.
    pub(in crate::chat) async fn after(&self, principal: &Principal, turn: StoredTurnIds<'_>) {
        let (tenant, user) = (principal.tenant.0, principal.user);
        let conversation = turn.conversation;
        if let Some((message, model)) = turn.title_from {
            let model = model.to_owned();
            self.queue(Job::TitleConversation {
                tenant,
                user,
                conversation,
                message,
                model,
            })
            .await;
        }
        if self.settings.index_messages {
            let messages = turn.messages.to_vec();
            self.queue(Job::IndexMessages {
                tenant,
                user,
                conversation,
                messages,
            })
            .await;
        }
        let extract_model = &self.settings.extract_model;
        if let Some(message) = turn.user_message.filter(|_| !extract_model.is_empty()) {
            let model = extract_model.clone();
            self.queue(Job::ExtractFacts {
                tenant,
                user,
                conversation,
                message,
                model,
            })
            .await;
        }
        let every = i64::from(self.settings.summary_every.max(1));
        let after = turn.messages_before + turn.messages.len() as i64;
        let crossed = turn.messages_before / every != after / every;
        if crossed && !self.settings.summary_model.is_empty() {
            let model = self.settings.summary_model.clone();
            self.queue(Job::SummarizeConversation {
                tenant,
                user,
                conversation,
                through: turn.last_message,
                model,
            })
            .await;
        }
    }
}
