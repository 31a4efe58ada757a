//! Conversations and their messages. Titles and contents are stored sealed (see `chat`).

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{StoreError, TenantTx};

/// One stored conversation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConversationRow {
    /// Conversation id (UUIDv7).
    pub id: Uuid,
    /// The user it belongs to.
    pub user_id: Uuid,
    /// Sealed title.
    pub title_sealed: Vec<u8>,
    /// Domain profile id.
    pub profile: String,
    /// Whether the server may still choose the profile (created without one).
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

const CONVERSATION_COLUMNS: &str = "id, user_id, title_sealed, profile, profile_automatic, model, \
     message_count, created_at, updated_at";

/// Stores a new conversation of `user`.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn insert(tx: &mut TenantTx, row: &ConversationRow) -> Result<(), StoreError> {
    let (conn, tenant) = tx.parts();
    sqlx::query(
        "INSERT INTO conversations
             (tenant_id, id, user_id, title_sealed, profile, profile_automatic, model,
              created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(tenant.0)
    .bind(row.id)
    .bind(row.user_id)
    .bind(&row.title_sealed)
    .bind(&row.profile)
    .bind(row.profile_automatic)
    .bind(&row.model)
    .bind(row.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// One conversation of `user`.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn get(
    conn: &mut PgConnection,
    user: Uuid,
    id: Uuid,
) -> Result<Option<ConversationRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE user_id = $1 AND id = $2"
    ))
    .bind(user)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// `user`'s conversations, most recently active first, after the (updated_at, id) key of
/// the previous page, optionally of one profile.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn list(
    conn: &mut PgConnection,
    user: Uuid,
    profile: Option<&str>,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<ConversationRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations
         WHERE user_id = $1
           AND ($2::text IS NULL OR profile = $2)
           AND ($3::timestamptz IS NULL OR (updated_at, id) < ($3, $4))
         ORDER BY updated_at DESC, id DESC
         LIMIT $5"
    ))
    .bind(user)
    .bind(profile)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Replaces the sealed title, noting whether the server made it (`automatic`) or the user
/// gave it; `false` when `user` has no such conversation.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn set_title(
    conn: &mut PgConnection,
    user: Uuid,
    id: Uuid,
    title_sealed: &[u8],
    automatic: bool,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE conversations SET title_sealed = $3, title_automatic = $4, updated_at = now()
         WHERE user_id = $1 AND id = $2",
    )
    .bind(user)
    .bind(id)
    .bind(title_sealed)
    .bind(automatic)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Gives the conversation the profile the server chose, unless the choice was made
/// already; `false` when it was (or there is no such conversation).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn choose_profile(
    conn: &mut PgConnection,
    id: Uuid,
    profile: &str,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE conversations SET profile = $2, profile_automatic = false
         WHERE id = $1 AND profile_automatic",
    )
    .bind(id)
    .bind(profile)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Whether the conversation's title is one the server made (and may replace), locking the
/// row until the transaction ends; `None` when there is no such conversation.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn lock_title_automatic(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<bool>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT title_automatic FROM conversations WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Deletes a conversation of `user` with its messages; returns how many messages it had,
/// or `None` when there was no such conversation.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn delete(
    conn: &mut PgConnection,
    user: Uuid,
    id: Uuid,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "DELETE FROM conversations WHERE user_id = $1 AND id = $2 RETURNING message_count",
    )
    .bind(user)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// One stored message. Serialisable so that the recent window can be cached as the sealed
/// rows (see `chat::conversation::window`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct MessageRow {
    /// Message id (UUIDv7).
    pub id: Uuid,
    /// Its conversation.
    pub conversation_id: Uuid,
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// Sealed content.
    #[serde(with = "base64_bytes")]
    pub content_sealed: Vec<u8>,
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
    /// Assistant messages: the sealed tool calls of the turn, if it made any.
    #[serde(default, with = "base64_option")]
    pub tool_calls_sealed: Option<Vec<u8>>,
    /// Created.
    #[serde(with = "time::serde::timestamp::nanoseconds")]
    pub created_at: OffsetDateTime,
}

/// Sealed bytes as base64 in serialised rows.
mod base64_bytes {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// Optional sealed bytes as base64 (or null) in serialised rows.
mod base64_option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        bytes: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => super::base64_bytes::serialize(bytes, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        use base64::{Engine, engine::general_purpose::STANDARD};
        Option::<String>::deserialize(deserializer)?
            .map(|text| STANDARD.decode(text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Appends a message to its conversation and counts it there.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn insert_message(tx: &mut TenantTx, row: &MessageRow) -> Result<(), StoreError> {
    let (conn, tenant) = tx.parts();
    sqlx::query(
        "INSERT INTO messages
             (tenant_id, id, conversation_id, role, content_sealed, model_used, prompt_tokens,
              completion_tokens, cost_micros, finish_reason, created_at, tool_calls_sealed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(tenant.0)
    .bind(row.id)
    .bind(row.conversation_id)
    .bind(&row.role)
    .bind(&row.content_sealed)
    .bind(&row.model_used)
    .bind(row.prompt_tokens)
    .bind(row.completion_tokens)
    .bind(row.cost_micros)
    .bind(&row.finish_reason)
    .bind(row.created_at)
    .bind(&row.tool_calls_sealed)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE conversations SET message_count = message_count + 1, updated_at = $2
         WHERE id = $1",
    )
    .bind(row.conversation_id)
    .bind(row.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A conversation's messages, oldest first, after message id `after`.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn messages(
    conn: &mut PgConnection,
    conversation: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<MessageRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, conversation_id, role, content_sealed, model_used, prompt_tokens,
                completion_tokens, cost_micros, finish_reason, created_at, tool_calls_sealed
         FROM messages
         WHERE conversation_id = $1 AND ($2::uuid IS NULL OR id > $2)
         ORDER BY id
         LIMIT $3",
    )
    .bind(conversation)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The last `limit` messages of a conversation, newest first.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn recent_messages(
    conn: &mut PgConnection,
    conversation: Uuid,
    limit: i64,
) -> Result<Vec<MessageRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, conversation_id, role, content_sealed, model_used, prompt_tokens,
                completion_tokens, cost_micros, finish_reason, created_at, tool_calls_sealed
         FROM messages WHERE conversation_id = $1
         ORDER BY id DESC
         LIMIT $2",
    )
    .bind(conversation)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Deletes one message of a conversation and uncounts it; `false` when there was none.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn delete_message(
    conn: &mut PgConnection,
    conversation: Uuid,
    id: Uuid,
) -> Result<bool, StoreError> {
    let deleted = sqlx::query("DELETE FROM messages WHERE conversation_id = $1 AND id = $2")
        .bind(conversation)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if deleted == 1 {
        sqlx::query("UPDATE conversations SET message_count = message_count - 1 WHERE id = $1")
            .bind(conversation)
            .execute(conn)
            .await?;
    }
    Ok(deleted == 1)
}

/// One message of a conversation.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn message(
    conn: &mut PgConnection,
    conversation: Uuid,
    id: Uuid,
) -> Result<Option<MessageRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, conversation_id, role, content_sealed, model_used, prompt_tokens,
                completion_tokens, cost_micros, finish_reason, created_at, tool_calls_sealed
         FROM messages WHERE conversation_id = $1 AND id = $2",
    )
    .bind(conversation)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The ids of all of `user`'s conversations.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn ids_of_user(conn: &mut PgConnection, user: Uuid) -> Result<Vec<Uuid>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM conversations WHERE user_id = $1")
            .bind(user)
            .fetch_all(conn)
            .await?,
    )
}
