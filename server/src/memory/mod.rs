//! What the assistant remembers about a user.
//!
//! - Working memory ([`working`]): a conversation's JSON state with a time to live, in Redis.
//! - Long-term and episodic memory ([`long_term`]): chunks of past messages (indexed by a
//!   background job after each turn) and facts or preferences (`Remember`), sealed in
//!   Postgres with their embeddings (pgvector, HNSW) and blind keyword terms
//!   ([`keywords`]), recalled by a hybrid score ([`ranking`]).
//! - Short-term memory is the conversation's recent window (`chat::conversation::window`).

pub mod chunks;
pub mod indexer;
pub mod keywords;
pub mod long_term;
pub mod ranking;
pub mod recall;
pub mod working;

use time::OffsetDateTime;
use uuid::Uuid;

pub use indexer::MessageIndexer;
pub use long_term::LongTermMemory;
pub use recall::RecallQuery;
pub use working::{WorkingMemory, WorkingState};

use crate::inference::InferenceError;

/// Whether message `message` (a UUIDv7, dated when it was said) was said before
/// `forgotten`, the last time its memories were forgotten (see
/// [`LongTermMemory::forgotten_at`]): jobs then keep nothing of it. A message id without a
/// date counts as said before.
pub(crate) fn said_before(message: Uuid, forgotten: Option<OffsetDateTime>) -> bool {
    let Some(forgotten) = forgotten else {
        return false;
    };
    message
        .get_timestamp()
        .map(|at| {
            let (seconds, nanos) = at.to_unix();
            i128::from(seconds) * 1_000_000_000 + i128::from(nanos)
        })
        .is_none_or(|said| said <= forgotten.unix_timestamp_nanos())
}

/// What a memory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemoryKind {
    /// A chunk of a past message.
    Message,
    /// A summary of (part of) a conversation.
    Summary,
    /// A fact or preference about the user.
    Episodic,
}

impl MemoryKind {
    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryKind::Message => "message",
            MemoryKind::Summary => "summary",
            MemoryKind::Episodic => "episodic",
        }
    }

    fn parse(name: &str) -> Result<Self, MemoryError> {
        match name {
            "message" => Ok(MemoryKind::Message),
            "summary" => Ok(MemoryKind::Summary),
            "episodic" => Ok(MemoryKind::Episodic),
            other => Err(MemoryError::Corrupt(format!(
                "unknown memory kind {other:?}"
            ))),
        }
    }
}

/// One memory, opened.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryItem {
    /// Its id (UUIDv7).
    pub id: Uuid,
    /// What it is.
    pub kind: MemoryKind,
    /// Its text.
    pub content: String,
    /// The conversation it came from.
    pub conversation_id: Option<Uuid>,
    /// The message it came from.
    pub source_message_id: Option<Uuid>,
    /// How sure the one who stated it was, 0..1.
    pub confidence: f32,
    /// Stored.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

impl MemoryItem {
    /// A memory made now (a new UUIDv7), from `source` of `conversation` when given.
    pub fn new(
        kind: MemoryKind,
        content: String,
        conversation: Option<Uuid>,
        source: Option<Uuid>,
        confidence: f32,
    ) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            id: Uuid::now_v7(),
            kind,
            content,
            conversation_id: conversation,
            source_message_id: source,
            confidence,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A recalled memory with the signals of its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Recalled {
    /// The memory.
    pub item: MemoryItem,
    /// How it scored.
    pub signals: ranking::Signals,
}

/// Why a memory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// A request field is unacceptable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// No such thing of the caller's (a conversation, a message, a memory).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Long-term memory needs the embedding model, and it does not serve here.
    #[error("long-term memory needs its embedding model (memory.embedding_model): {0}")]
    NoEmbeddings(String),
    /// The embedding model's queue is full.
    #[error("{0}")]
    Busy(String),
    /// The embedding model failed.
    #[error("embedding failed: {0}")]
    Embedding(String),
    /// A stored value no longer reads back.
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Redis failed.
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    /// Sealing or opening failed.
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

impl From<InferenceError> for MemoryError {
    fn from(err: InferenceError) -> Self {
        match err {
            // A worker unloaded mid-call is as passing as a full queue.
            InferenceError::Busy(_) | InferenceError::Stopped => MemoryError::Busy(err.to_string()),
            InferenceError::NotFound(_)
            | InferenceError::NotReady { .. }
            | InferenceError::WrongKind { .. } => MemoryError::NoEmbeddings(err.to_string()),
            other => MemoryError::Embedding(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said_at(at: OffsetDateTime) -> Uuid {
        let nanos = at.unix_timestamp_nanos();
        let seconds = u64::try_from(nanos / 1_000_000_000).unwrap();
        let subsec = u32::try_from(nanos % 1_000_000_000).unwrap();
        Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, seconds, subsec))
    }

    #[test]
    fn only_what_was_said_before_the_forget_is_forgotten() {
        let forgot = OffsetDateTime::now_utc();
        let before = said_at(forgot - time::Duration::seconds(1));
        let after = said_at(forgot + time::Duration::seconds(1));
        assert!(!said_before(before, None), "nothing forgotten");
        assert!(said_before(before, Some(forgot)));
        assert!(!said_before(after, Some(forgot)));
        assert!(
            said_before(Uuid::nil(), Some(forgot)),
            "an undated id counts as before"
        );
    }
}
