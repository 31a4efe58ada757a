//! The conversation engine: conversations and their messages (stored sealed), domain
//! profiles, generation through the tenant's model providers, usage and budgets.
//!
//! Everything a user writes and every answer is sealed with the tenant's data key before
//! it is stored; titles too, since they are often the first words of a message.

mod accounting;
mod context;
mod conversations;
mod facts;
mod follow_ups;
mod generate;
mod generations;
mod idempotency;
mod memory_writer;
mod model_jobs;
mod profile_choice;
mod profiles;
mod prompt;
mod relay;
mod restore;
mod settings_cache;
mod stateless;
mod summaries;
mod titles;
mod turns;
mod usage_writer;
mod window;

pub use accounting::{Accounting, Budget, BudgetPeriod};
pub use context::ContextAssembler;
pub use conversations::{Conversation, Conversations, Message, MessageRole, NewConversation};
pub use follow_ups::FollowUps;
pub use generate::Generator;
use generate::PreparedTurn;
pub use generations::{Generations, Running};
pub use idempotency::Idempotency;
use idempotency::Outcome;
pub use memory_writer::MemoryWriter;
pub use profile_choice::ProfilePicker;
pub use profiles::{DEFAULT_PROFILE, MAX_SYSTEM_PROMPT_BYTES, Profile, ProfileSettings, Profiles};
pub use prompt::{GenerationOptions, Prompt, Reply, Turn, complete};
pub use relay::{ReplySink, Started};
pub use restore::Restorer;
pub use settings_cache::SettingsCache;
pub use stateless::StatelessCall;
pub use titles::Titler;
pub use turns::{Answered, Ask, Collect, DetachedSink, Turns};
pub use usage_writer::{UsageWriter, UsageWriterTask};
pub use window::{Recent, StoredTurn, WINDOW_MESSAGES};

use crate::{
    crypto::CryptoError,
    llm::{LlmError, ProviderError},
    store::StoreError,
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
    /// A token budget that applies to the caller is used up.
    #[error(
        "{scope} token budget per {period} ({limit} tokens) is used up; it renews at the \
         start of the next {period} (UTC)"
    )]
    BudgetExhausted {
        /// `your` or `this tenant's`.
        scope: &'static str,
        /// `day` or `month`.
        period: &'static str,
        /// The limit.
        limit: i64,
    },
    /// The first call with this idempotency key is still running.
    #[error("a call with this idempotency key is still running; retry when it has finished")]
    InProgress,
    /// The client went away before the reply started.
    #[error("the client went away")]
    Gone,
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
}

impl ChatError {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
