//! Work that follows a stored turn without holding up its answer, queued as background
//! jobs: titling a new conversation from its first message, and keeping the turn's
//! messages as long-term memories (`memory.index_messages`). A job that cannot be queued
//! is logged and dropped: the turn itself is stored already.

use uuid::Uuid;

use crate::{
    auth::Principal,
    jobs::{Job, Jobs},
};

/// Queues the follow-ups of turns.
#[derive(Clone)]
pub struct FollowUps {
    jobs: Jobs,
    index_messages: bool,
}

/// A stored turn, as its follow-ups need it.
pub(super) struct StoredTurnIds<'t> {
    /// The conversation.
    pub conversation: Uuid,
    /// The turn's stored messages, in order.
    pub messages: &'t [Uuid],
    /// For a conversation's first turn: the user's message and the `provider/model` that
    /// answered it, to title the conversation with.
    pub title_from: Option<(Uuid, &'t str)>,
}

impl FollowUps {
    /// Queues in `jobs`; indexes messages when `index_messages`.
    pub fn new(jobs: Jobs, index_messages: bool) -> Self {
        Self {
            jobs,
            index_messages,
        }
    }

    /// Queues the follow-ups of `turn` of `principal`.
    pub(super) async fn after(&self, principal: &Principal, turn: StoredTurnIds<'_>) {
        if let Some((message, model)) = turn.title_from {
            let job = Job::TitleConversation {
                tenant: principal.tenant.0,
                user: principal.user,
                conversation: turn.conversation,
                message,
                model: model.to_owned(),
            };
            if let Err(err) = self.jobs.enqueue(job).await {
                tracing::warn!(error = %err, "title job not queued; the first line stays the title");
            }
        }
        if self.index_messages {
            let job = Job::IndexMessages {
                tenant: principal.tenant.0,
                user: principal.user,
                conversation: turn.conversation,
                messages: turn.messages.to_vec(),
            };
            if let Err(err) = self.jobs.enqueue(job).await {
                tracing::warn!(error = %err, "indexing job not queued; the turn is not kept as memories");
            }
        }
    }
}
