//! The `[memory]` section: working memory's time to live, and how long-term memory is
//! indexed and ranked (see `memory`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    ConfigError,
    validate::{non_zero, positive},
};

/// Most items one recall returns (`memory.chat_top_k` and every recall request).
pub const MAX_TOP_K: u32 = 100;

/// Memory (see `memory`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// How long a conversation's working state lasts after its last write when the call
    /// names no time.
    #[serde(with = "humantime_serde")]
    pub working_ttl: Duration,
    /// The longest time a call may ask working state to last.
    #[serde(with = "humantime_serde")]
    pub working_max_ttl: Duration,
    /// The platform embedding model memories are embedded with; empty means
    /// `inference.default_embedding`. It must give 384-dimensional vectors (the size of
    /// the `memories.embedding` column).
    pub embedding_model: String,
    /// Whether the messages of every chat turn are chunked, embedded and kept as
    /// long-term memories (by a background job).
    pub index_messages: bool,
    /// Alias or `provider/model` that extracts the facts and preferences each user message
    /// states into episodic memories (structured JSON output); empty turns extraction
    /// off. The prompt passes the tenant's PHI policy like any other.
    pub extract_model: String,
    /// Alias or `provider/model` that summarises conversations into summary memories;
    /// empty turns summaries off. The prompt passes the tenant's PHI policy.
    pub summary_model: String,
    /// A conversation is summarised each time it reaches a multiple of this many
    /// messages (its recent turns, at most the cached window).
    pub summary_every: u32,
    /// Whether memories are recalled into the prompt of each chat turn.
    pub recall_into_chat: bool,
    /// Most memories recalled into a chat turn; 0 turns recall into chat off.
    pub chat_top_k: u32,
    /// Least score of a memory recalled into a chat turn, 0..1.
    pub chat_min_score: f32,
    /// Context window assumed for provider models (whose window and tokenizer the server
    /// does not know), in estimated tokens; local models use their own.
    pub context_tokens: usize,
    /// Candidates the HNSW index visits per recall (`hnsw.ef_search`): more finds more of
    /// the true nearest neighbours, at some speed.
    pub ef_search: u32,
    /// Search every memory of the user instead of the HNSW index, for every user (users
    /// with at most 10,000 memories are searched this way anyway): exact candidates, at the
    /// cost of reading all of a user's vectors per recall (see the recall benchmark).
    pub exact_search: bool,
    /// How the signals of a recalled item add up to its score.
    pub ranking: RankingWeights,
    /// Age at which the recency factor of a memory has halved.
    #[serde(with = "humantime_serde")]
    pub recency_half_life: Duration,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            working_ttl: Duration::from_secs(24 * 3600),
            working_max_ttl: Duration::from_secs(30 * 24 * 3600),
            embedding_model: String::new(),
            index_messages: true,
            extract_model: String::new(),
            summary_model: String::new(),
            summary_every: 20,
            recall_into_chat: true,
            chat_top_k: 6,
            chat_min_score: 0.3,
            context_tokens: 8_000,
            ef_search: 100,
            exact_search: false,
            ranking: RankingWeights::default(),
            recency_half_life: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// Weights of the hybrid recall score: `vector × cosine similarity + keyword × keyword
/// match + recency × recency factor`, divided by their sum so a score stays within 0..1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankingWeights {
    /// Weight of the cosine similarity of the embeddings.
    pub vector: f32,
    /// Weight of the share of the query's words the memory holds (rare words weigh more).
    pub keyword: f32,
    /// Weight of how recent the memory is.
    pub recency: f32,
}

impl Default for RankingWeights {
    fn default() -> Self {
        Self {
            vector: 0.6,
            keyword: 0.4,
            recency: 0.05,
        }
    }
}

impl MemoryConfig {
    /// Checks the section.
    ///
    /// # Errors
    /// [`ConfigError::Rejected`] naming the wrong setting.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        non_zero("memory.working_ttl", self.working_ttl)?;
        if self.working_max_ttl < self.working_ttl {
            return Err(ConfigError::Rejected {
                setting: "memory.working_max_ttl",
                reason: "must be at least memory.working_ttl".to_owned(),
            });
        }
        positive("memory.ef_search", self.ef_search as usize)?;
        if self.ef_search > 1000 {
            return Err(ConfigError::Rejected {
                setting: "memory.ef_search",
                reason: "must be at most 1000 (pgvector's limit)".to_owned(),
            });
        }
        non_zero("memory.recency_half_life", self.recency_half_life)?;
        if self.chat_top_k > MAX_TOP_K {
            return Err(ConfigError::Rejected {
                setting: "memory.chat_top_k",
                reason: format!("must be at most {}", MAX_TOP_K),
            });
        }
        if !(0.0..=1.0).contains(&self.chat_min_score) {
            return Err(ConfigError::Rejected {
                setting: "memory.chat_min_score",
                reason: "must be between 0 and 1".to_owned(),
            });
        }
        positive("memory.context_tokens", self.context_tokens)?;
        if self.summary_every < 2 {
            return Err(ConfigError::Rejected {
                setting: "memory.summary_every",
                reason: "must be at least 2 (one turn is two messages)".to_owned(),
            });
        }
        let RankingWeights {
            vector,
            keyword,
            recency,
        } = self.ranking;
        let weights = [vector, keyword, recency];
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) || weights.iter().sum::<f32>() <= 0.0
        {
            return Err(ConfigError::Rejected {
                setting: "memory.ranking",
                reason: "vector, keyword and recency must be 0 or more, and not all 0".to_owned(),
            });
        }
        Ok(())
    }
}
