//! The conversation engine, in four parts:
//! - `turn`: one chat turn, from the idempotency claim to the stored reply
//!   ([`Turns::reply`] is the entry point every API calls);
//! - `conversation`: conversations and their messages, and the window of recent turns;
//! - `profile`: domain profiles and the choice of one;
//! - `model_jobs`: what follows a turn in the background (titles, facts, summaries).
//!
//! Everything a user writes and every answer is sealed with the tenant's data key before
//! it is stored; titles too, since they are often the first words of a message. Usage
//! and budgets are `crate::usage`'s.

mod conversation;
mod model_jobs;
mod profile;
mod turn;
pub use conversation::conversations::{
    Conversation, Conversations, Message, MessageRole, NewConversation, ToolUse,
};
pub use conversation::window::{Recent, StoredTurn, WINDOW_MESSAGES};
pub use model_jobs::memory_writer::MemoryWriter;
pub use model_jobs::titles::Titler;
pub use profile::profile_choice::ProfilePicker;
pub use profile::profiles::{
    DEFAULT_PROFILE, MAX_SYSTEM_PROMPT_BYTES, Profile, ProfileSettings, Profiles,
};
pub use profile::settings_cache::SettingsCache;
pub use turn::context::ContextAssembler;
pub use turn::follow_ups::FollowUps;
pub use turn::generate::Generator;
use turn::generate::PreparedTurn;
pub use turn::generations::{Generations, Running};
pub use turn::idempotency::Idempotency;
use turn::idempotency::Outcome;
pub use turn::prompt::{GenerationOptions, Prompt, Reply, Turn, complete};
pub use turn::relay::{ReplySink, Started, ToolEvent};
pub use turn::restore::Restorer;
pub use turn::stateless::StatelessCall;
pub use turn::turns::{Answered, Ask, Collect, DetachedSink, Turns};

use crate::{
    crypto::CryptoError,
    llm::{LlmError, ProviderError},
    store::StoreError,
    usage::UsageError,
};

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
    /// The tenant has no such profile (or, for a deletion, stores none under that id).
    #[error("no profile {0:?} (see ListProfiles)")]
    UnknownProfile(String),
    /// The prompt holds PHI and the tenant's policy forbids sending it to this provider.
    #[error(
        "the message contains protected or personal information ({}) and this tenant's \
         policy refuses to send it to model provider {provider:?}, which is not on its \
         premises; remove it or use an on-premises model",
        kinds.join(", ")
    )]
    PhiRefused {
        /// Kinds found (never the values).
        kinds: Vec<&'static str>,
        /// The provider it would have gone to.
        provider: String,
    },
    /// Usage could not be accounted, or a budget refuses the call.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The first call with this idempotency key is still running.
    #[error("a call with this idempotency key is still running; retry when it has finished")]
    InProgress,
    /// The client went away before the reply started.
    #[error("the client went away")]
    Gone,
    /// The task conducting the turn stopped before it ended (a defect; see the log).
    #[error("the turn stopped before it ended")]
    Interrupted,
    /// The model could not be resolved.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The provider failed.
    #[error(transparent)]
    Llm(#[from] LlmError),
    /// Postgres failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Redis failed.
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    /// A sealed value could not be sealed or opened.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Memories could not be embedded or stored.
    #[error(transparent)]
    Memory(#[from] crate::memory::MemoryError),
    /// The turn's plugins could not be read, or a tool call not recorded.
    #[error(transparent)]
    Plugin(#[from] crate::plugins::PluginError),
}

impl ChatError {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
