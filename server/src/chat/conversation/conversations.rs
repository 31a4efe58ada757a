//! A user's conversations and their messages. Rows hold titles and contents sealed with
//! the tenant's data key, bound to their row; everything here runs in the caller's tenant
//! scope and only on the caller's own conversations.

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::chat::{ChatError, DEFAULT_PROFILE, profile::profiles};
use crate::{
    audit::{self, NewEvent},
    cache::Cache,
    caller::Principal,
    crypto::{CONVERSATION_TITLES, Keyring, MESSAGE_CONTENTS, MESSAGE_TOOL_CALLS, Sealer},
    store::{
        self, Database, StoreError,
        conversations::{ConversationRow, MessageRow},
    },
};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest model name, in characters.
pub const MAX_MODEL_CHARS: usize = 200;

/// What a new conversation starts with.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewConversation<'a> {
    /// Optional title.
    pub title: &'a str,
    /// Optional profile id; default `general`.
    pub profile: &'a str,
    /// Optional model alias or `provider/model`.
    pub model: &'a str,
}

/// A conversation, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// Title (may be empty).
    pub title: String,
    /// Domain profile id.
    pub profile: String,
    /// Whether the server may still choose the profile (at the first message).
    pub profile_automatic: bool,
    /// Model alias or `provider/model`; empty: the profile's default.
    pub model: String,
    /// Messages in it.
    pub message_count: i64,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last activity.
    pub updated_at: OffsetDateTime,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageRole {
    /// Instructions.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

impl MessageRole {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::Tool => "tool",
        }
    }

    fn parse(stored: &str) -> Self {
        match stored {
            "system" => Self::System,
            "assistant" => Self::Assistant,
            "tool" => Self::Tool,
            _ => Self::User,
        }
    }
}

/// A message, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// Its conversation.
    pub conversation_id: Uuid,
    /// Who wrote it.
    pub role: MessageRole,
    /// Its text.
    pub content: String,
    /// Assistant messages: `provider/model`.
    pub model_used: String,
    /// Assistant messages: prompt tokens of the call.
    pub prompt_tokens: i64,
    /// Assistant messages: generated tokens.
    pub completion_tokens: i64,
    /// Assistant messages: cost in millionths of the currency unit.
    pub cost_micros: i64,
    /// Assistant messages: why generation ended.
    pub finish_reason: String,
    /// Assistant messages: the tools called during the turn, in order.
    pub tool_calls: Vec<ToolUse>,
    /// Created.
    pub created_at: OffsetDateTime,
}

/// A tool the assistant called during a turn, kept (sealed) with the reply it led to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolUse {
    /// The model's id of the call.
    pub call_id: String,
    /// The plugin (empty when the model named no tool the turn offered).
    pub plugin: String,
    /// The tool.
    pub tool: String,
    /// The arguments as the model wrote them.
    pub arguments: String,
    /// What the model read back: the result, or the tool error.
    pub result: String,
    /// `ok`, `tool_error`, `unreachable`, `timeout` or `refused`.
    pub outcome: String,
    /// How long the plugin took, in milliseconds.
    pub latency_ms: u64,
}

/// The caller's conversations.
#[derive(Clone)]
pub struct Conversations {
    pub(in crate::chat) db: Database,
    pub(in crate::chat) sealer: Sealer,
    pub(in crate::chat) cache: Cache,
}

fn check_title(title: &str) -> Result<String, ChatError> {
    let title = title.trim();
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(ChatError::invalid(
            "title",
            format!("must be at most {MAX_TITLE_CHARS} characters"),
        ));
    }
    Ok(title.to_owned())
}

impl Conversations {
    /// Conversations in `db`, sealed with `sealer`, recent windows cached in `cache`.
    pub fn new(db: Database, sealer: Sealer, cache: Cache) -> Self {
        Self { db, sealer, cache }
    }

    /// Starts a conversation for the caller.
    ///
    /// # Errors
    /// [`ChatError::Invalid`] for a long title or model or an unknown profile.
    pub async fn create(
        &self,
        principal: &Principal,
        new: NewConversation<'_>,
    ) -> Result<Conversation, ChatError> {
        let title = check_title(new.title)?;
        let profile_id = if new.profile.is_empty() {
            DEFAULT_PROFILE
        } else {
            new.profile
        };
        if new.model.chars().count() > MAX_MODEL_CHARS {
            return Err(ChatError::invalid(
                "model",
                format!("must be at most {MAX_MODEL_CHARS} characters"),
            ));
        }
        let now = OffsetDateTime::now_utc();
        let id = Uuid::now_v7();
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        if profiles::find(&mut tx, profile_id).await?.is_none() {
            return Err(ChatError::invalid(
                "profile",
                "unknown profile (see ListProfiles)",
            ));
        }
        let title_sealed = self
            .sealer
            .seal(
                &mut tx,
                principal.tenant,
                CONVERSATION_TITLES.table,
                &id.to_string(),
                title.as_bytes(),
            )
            .await?;
        let row = ConversationRow {
            id,
            user_id: principal.user,
            title_sealed,
            profile: profile_id.to_owned(),
            profile_automatic: new.profile.is_empty(),
            model: new.model.trim().to_owned(),
            message_count: 0,
            created_at: now,
            updated_at: now,
        };
        store::conversations::insert(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(Conversation {
            id,
            title,
            profile: row.profile,
            profile_automatic: row.profile_automatic,
            model: row.model,
            message_count: 0,
            created_at: now,
            updated_at: now,
        })
    }

    /// One of the caller's conversations.
    ///
    /// # Errors
    /// [`ChatError::NotFound`] when the caller has no such conversation.
    pub async fn get(&self, principal: &Principal, id: Uuid) -> Result<Conversation, ChatError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let row = owned(&mut tx, principal, id).await?;
        let conversation =
            open_conversation(&mut self.sealer.keyring(principal.tenant), &mut tx, row).await?;
        tx.commit().await?;
        Ok(conversation)
    }

    /// A page of the caller's conversations, most recently active first, after the
    /// (last activity, id) of the previous page.
    ///
    /// # Errors
    /// [`ChatError`] when a store fails.
    pub async fn list(
        &self,
        principal: &Principal,
        profile: Option<&str>,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Conversation>, ChatError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let rows =
            store::conversations::list(&mut tx, principal.user, profile, after, i64::from(limit))
                .await?;
        let mut keyring = self.sealer.keyring(principal.tenant);
        let mut conversations = Vec::with_capacity(rows.len());
        for row in rows {
            conversations.push(open_conversation(&mut keyring, &mut tx, row).await?);
        }
        tx.commit().await?;
        Ok(conversations)
    }

    /// Changes the title of one of the caller's conversations.
    ///
    /// # Errors
    /// [`ChatError::Invalid`] for an empty or long title, [`ChatError::NotFound`].
    pub async fn rename(
        &self,
        principal: &Principal,
        id: Uuid,
        title: &str,
    ) -> Result<Conversation, ChatError> {
        let title = check_title(title)?;
        if title.is_empty() {
            return Err(ChatError::invalid("title", "must not be empty"));
        }
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let sealed = self
            .sealer
            .seal(
                &mut tx,
                principal.tenant,
                CONVERSATION_TITLES.table,
                &id.to_string(),
                title.as_bytes(),
            )
            .await?;
        if !store::conversations::set_title(&mut tx, principal.user, id, &sealed, false).await? {
            return Err(ChatError::NotFound);
        }
        let row = owned(&mut tx, principal, id).await?;
        let conversation =
            open_conversation(&mut self.sealer.keyring(principal.tenant), &mut tx, row).await?;
        tx.commit().await?;
        Ok(conversation)
    }

    /// Deletes one of the caller's conversations with its messages, recorded with the
    /// number of messages in the same transaction; returns that number.
    ///
    /// # Errors
    /// [`ChatError::NotFound`] when the caller has no such conversation.
    pub async fn delete(&self, principal: &Principal, id: Uuid) -> Result<i64, ChatError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let messages = store::conversations::delete(&mut tx, principal.user, id)
            .await?
            .ok_or(ChatError::NotFound)?;
        let event = NewEvent::by(
            principal,
            "conversation.delete",
            "conversation",
            id,
            json!({ "messages": messages }),
        );
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        if let Err(err) = self.cache.drop_window(principal.tenant, id).await {
            tracing::warn!(error = %err, "cached window of a deleted conversation left to expire");
        }
        // Nobody can read it any more (it belongs to the deleted conversation); this only
        // frees it before it expires.
        if let Err(err) = self.cache.drop_working_state(principal.tenant, id).await {
            tracing::warn!(error = %err, "working state of a deleted conversation left to expire");
        }
        Ok(messages)
    }

    /// One message of one of the caller's conversations.
    ///
    /// # Errors
    /// [`ChatError::NotFound`] when the conversation or the message is gone.
    pub async fn message(
        &self,
        principal: &Principal,
        conversation: Uuid,
        id: Uuid,
    ) -> Result<Message, ChatError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        owned(&mut tx, principal, conversation).await?;
        let row = store::conversations::message(&mut tx, conversation, id)
            .await?
            .ok_or(ChatError::NotFound)?;
        let message =
            open_message(&mut self.sealer.keyring(principal.tenant), &mut tx, row).await?;
        tx.commit().await?;
        Ok(message)
    }

    /// Gives a conversation created without a profile the one the server chose for it,
    /// unless one was chosen already; `false` then.
    ///
    /// # Errors
    /// [`ChatError`] when a store fails.
    pub async fn choose_profile(
        &self,
        principal: &Principal,
        id: Uuid,
        profile: &str,
    ) -> Result<bool, ChatError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        owned(&mut tx, principal, id).await?;
        let chosen = store::conversations::choose_profile(&mut tx, id, profile).await?;
        tx.commit().await?;
        Ok(chosen)
    }

    /// A page of one of the caller's conversations' messages, oldest first, after message
    /// `after`.
    ///
    /// # Errors
    /// [`ChatError::NotFound`] when the caller has no such conversation.
    pub async fn messages(
        &self,
        principal: &Principal,
        conversation: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Message>, ChatError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        owned(&mut tx, principal, conversation).await?;
        let rows =
            store::conversations::messages(&mut tx, conversation, after, i64::from(limit)).await?;
        let mut keyring = self.sealer.keyring(principal.tenant);
        let mut messages = Vec::with_capacity(rows.len());
        for row in rows {
            messages.push(open_message(&mut keyring, &mut tx, row).await?);
        }
        tx.commit().await?;
        Ok(messages)
    }
}

/// The caller's conversation `id`, in the transaction's tenant.
pub(in crate::chat) async fn owned(
    conn: &mut sqlx::PgConnection,
    principal: &Principal,
    id: Uuid,
) -> Result<ConversationRow, ChatError> {
    store::conversations::get(conn, principal.user, id)
        .await?
        .ok_or(ChatError::NotFound)
}

pub(in crate::chat) async fn open_conversation(
    keyring: &mut Keyring<'_>,
    conn: &mut sqlx::PgConnection,
    row: ConversationRow,
) -> Result<Conversation, ChatError> {
    let title = keyring
        .open(
            conn,
            CONVERSATION_TITLES.table,
            &row.id.to_string(),
            &row.title_sealed,
        )
        .await?;
    Ok(Conversation {
        id: row.id,
        title: String::from_utf8_lossy(&title).into_owned(),
        profile: row.profile,
        profile_automatic: row.profile_automatic,
        model: row.model,
        message_count: row.message_count,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub(in crate::chat) async fn open_message(
    keyring: &mut Keyring<'_>,
    conn: &mut sqlx::PgConnection,
    row: MessageRow,
) -> Result<Message, ChatError> {
    let content = keyring
        .open(
            conn,
            MESSAGE_CONTENTS.table,
            &row.id.to_string(),
            &row.content_sealed,
        )
        .await?;
    let tool_calls = match &row.tool_calls_sealed {
        Some(sealed) => {
            let opened = keyring
                .open(conn, MESSAGE_TOOL_CALLS.table, &row.id.to_string(), sealed)
                .await?;
            serde_json::from_slice(&opened).map_err(|_| {
                ChatError::Store(StoreError::Inconsistent(
                    "a message's stored tool calls do not read",
                ))
            })?
        }
        None => Vec::new(),
    };
    Ok(Message {
        id: row.id,
        conversation_id: row.conversation_id,
        role: MessageRole::parse(&row.role),
        content: String::from_utf8_lossy(&content).into_owned(),
        model_used: row.model_used,
        prompt_tokens: row.prompt_tokens,
        completion_tokens: row.completion_tokens,
        cost_micros: row.cost_micros,
        finish_reason: row.finish_reason,
        tool_calls,
        created_at: row.created_at,
    })
}
