//! The conversation engine: conversations and their messages (stored sealed), domain
//! profiles, and — as providers arrive — generation.
//!
//! Everything a user writes and every answer is sealed with the tenant's data key before
//! it is stored; titles too, since they are often the first words of a message.

mod conversations;
mod profiles;

pub use conversations::{Conversation, Conversations, Message, MessageRole, NewConversation};
pub use profiles::{BUILTIN_PROFILES, DEFAULT_PROFILE, Profile, profile};

use crate::{crypto::CryptoError, store::StoreError};

/// Why a chat operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// A request field is unacceptable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// No such conversation for this user.
    #[error("conversation not found")]
    NotFound,
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sealed value could not be sealed or opened.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl ChatError {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
