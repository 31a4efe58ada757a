//! A conversation's recent window: the last messages every turn sends along. It is cached
//! in Redis so that a turn need not read them from Postgres, and kept current by the turn
//! that adds to it (write-through). The cache holds the rows exactly as Postgres does,
//! sealed with the tenant's data key, never plain text, together with the conversation's
//! version (message count and last change); a window whose version differs from the
//! conversation's, or that does not read, is rebuilt from Postgres.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::chat::{
    ChatError, Conversation, Conversations, Message,
    conversation::conversations::{open_conversation, open_message, owned},
};
use crate::{
    caller::Principal,
    crypto::{CONVERSATION_TITLES, MESSAGE_CONTENTS, MESSAGE_TOOL_CALLS},
    store::{
        self,
        conversations::{ConversationRow, MessageRow},
        usage::UsageEvent,
    },
    tenancy::TenantId,
};

/// Messages kept in the window: a turn's history and the two a regeneration replaces.
pub const WINDOW_MESSAGES: usize = 22;
/// How long an unused window stays cached.
const WINDOW_TTL: Duration = Duration::from_secs(3600);

/// The state of a conversation a window was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Version {
    messages: i64,
    #[serde(with = "time::serde::timestamp::nanoseconds")]
    updated_at: OffsetDateTime,
}

impl Version {
    fn of(row: &ConversationRow) -> Self {
        Self {
            messages: row.message_count,
            updated_at: row.updated_at,
        }
    }
}

/// A window as cached.
#[derive(Debug, Serialize, Deserialize)]
struct CachedWindow {
    version: Version,
    rows: Vec<MessageRow>,
}

/// One of the caller's conversations with its recent messages.
pub struct Recent {
    /// The conversation.
    pub conversation: Conversation,
    /// Its last messages (at most [`WINDOW_MESSAGES`]), oldest first.
    pub messages: Vec<Message>,
    /// The same, sealed, to extend when the turn is stored.
    pub(in crate::chat) rows: Vec<MessageRow>,
}

impl Recent {
    /// `conversation` without its messages: what background jobs that give the model one
    /// text of their own (a title, facts, a summary) ask with.
    pub fn without_history(conversation: Conversation) -> Self {
        Self {
            conversation,
            messages: Vec::new(),
            rows: Vec::new(),
        }
    }
}

/// What a turn stores.
pub struct StoredTurn<'a> {
    /// New messages, in order.
    pub messages: &'a [&'a Message],
    /// A title for an untitled conversation (made by the server).
    pub title: Option<&'a str>,
    /// The call's usage.
    pub usage: &'a UsageEvent,
    /// A reply the first new message replaces (regeneration).
    pub replaces: Option<Uuid>,
    /// The window the turn was prepared with.
    pub window: &'a [MessageRow],
}

impl Conversations {
    /// One of the caller's conversations and its recent messages.
    ///
    /// # Errors
    /// [`ChatError::NotFound`] when the caller has no such conversation; a failure.
    pub async fn recent(&self, principal: &Principal, id: Uuid) -> Result<Recent, ChatError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let row = owned(&mut tx, principal, id).await?;
        let version = Version::of(&row);
        let rows = match self.cached_window(principal.tenant, id, version).await {
            Some(rows) => rows,
            None => {
                let limit = i64::try_from(WINDOW_MESSAGES).unwrap_or(i64::MAX);
                let mut rows = store::conversations::recent_messages(&mut tx, id, limit).await?;
                rows.reverse();
                self.remember_window(principal.tenant, id, version, &rows)
                    .await;
                rows
            }
        };
        let mut keyring = self.sealer.keyring(principal.tenant);
        let conversation = open_conversation(&mut keyring, &mut tx, row).await?;
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            messages.push(open_message(&mut keyring, &mut tx, row.clone()).await?);
        }
        tx.commit().await?;
        Ok(Recent {
            conversation,
            messages,
            rows,
        })
    }

    /// Stores a turn's messages and the usage of the call that produced them in one
    /// transaction, sealed, in place of the reply it replaces when it names one, giving
    /// the conversation its title when one is passed; then caches the extended window.
    ///
    /// # Errors
    /// [`ChatError::NotFound`] when the conversation or the replaced reply is gone; a
    /// failure.
    pub async fn store_turn(
        &self,
        principal: &Principal,
        turn: StoredTurn<'_>,
    ) -> Result<(), ChatError> {
        let Some(conversation) = turn.messages.first().map(|m| m.conversation_id) else {
            return Ok(());
        };
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        owned(&mut tx, principal, conversation).await?;
        if let Some(old) = turn.replaces
            && !store::conversations::delete_message(&mut tx, conversation, old).await?
        {
            return Err(ChatError::NotFound);
        }
        let mut keyring = self.sealer.keyring(principal.tenant);
        let mut added = Vec::with_capacity(turn.messages.len());
        for message in turn.messages {
            let content_sealed = keyring
                .seal(
                    &mut tx,
                    MESSAGE_CONTENTS.table,
                    &message.id.to_string(),
                    message.content.as_bytes(),
                )
                .await?;
            let tool_calls_sealed = if message.tool_calls.is_empty() {
                None
            } else {
                let calls = serde_json::to_vec(&message.tool_calls).unwrap_or_default();
                let id = message.id.to_string();
                Some(
                    keyring
                        .seal(&mut tx, MESSAGE_TOOL_CALLS.table, &id, &calls)
                        .await?,
                )
            };
            let row = MessageRow {
                id: message.id,
                conversation_id: message.conversation_id,
                role: message.role.as_str().to_owned(),
                content_sealed,
                model_used: message.model_used.clone(),
                prompt_tokens: message.prompt_tokens,
                completion_tokens: message.completion_tokens,
                cost_micros: message.cost_micros,
                finish_reason: message.finish_reason.clone(),
                tool_calls_sealed,
                created_at: message.created_at,
            };
            store::conversations::insert_message(&mut tx, &row).await?;
            added.push(row);
        }
        store::usage::record(&mut tx, std::slice::from_ref(turn.usage)).await?;
        if let Some(title) = turn.title {
            let sealed = keyring
                .seal(
                    &mut tx,
                    CONVERSATION_TITLES.table,
                    &conversation.to_string(),
                    title.as_bytes(),
                )
                .await?;
            store::conversations::set_title(&mut tx, principal.user, conversation, &sealed, true)
                .await?;
        }
        let version = Version::of(&owned(&mut tx, principal, conversation).await?);
        tx.commit().await?;

        let mut window: Vec<MessageRow> = turn
            .window
            .iter()
            .filter(|row| Some(row.id) != turn.replaces)
            .cloned()
            .chain(added)
            .collect();
        let surplus = window.len().saturating_sub(WINDOW_MESSAGES);
        window.drain(..surplus);
        self.remember_window(principal.tenant, conversation, version, &window)
            .await;
        Ok(())
    }

    /// The cached window of `conversation` if it was taken at `version`.
    async fn cached_window(
        &self,
        tenant: TenantId,
        conversation: Uuid,
        version: Version,
    ) -> Option<Vec<MessageRow>> {
        let cached = match self.cache.window(tenant, conversation).await {
            Ok(cached) => cached?,
            Err(err) => {
                tracing::warn!(error = %err, "window cache unavailable; reading Postgres");
                return None;
            }
        };
        let window: CachedWindow = serde_json::from_str(&cached).ok()?;
        (window.version == version
            && window
                .rows
                .iter()
                .all(|row| row.conversation_id == conversation))
        .then_some(window.rows)
    }

    /// Caches `rows` as the window of `conversation` at `version`; a failure only costs
    /// the next turn a read from Postgres.
    async fn remember_window(
        &self,
        tenant: TenantId,
        conversation: Uuid,
        version: Version,
        rows: &[MessageRow],
    ) {
        let window = CachedWindow {
            version,
            rows: rows.to_vec(),
        };
        let Ok(json) = serde_json::to_string(&window) else {
            return;
        };
        if let Err(err) = self
            .cache
            .put_window(tenant, conversation, &json, WINDOW_TTL)
            .await
        {
            tracing::warn!(error = %err, "window not cached");
        }
    }
}
