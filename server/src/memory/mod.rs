//! What the assistant remembers. Working memory (a conversation's JSON state with a time
//! to live, in Redis) is here; long-term and episodic memory come next.

pub mod working;

pub use working::{WorkingMemory, WorkingState};

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
    /// No such conversation of the caller's.
    #[error("conversation not found")]
    NotFound,
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
