//! Recall: the caller's memories most relevant to a text, by the hybrid score of
//! [`super::ranking`]. Candidates come from the vector index (or an exact search, for users
//! with few memories or when `memory.exact_search` says so) and from the blind keyword
//! index, both filtered to the caller's memories.

use pgvector::Vector;
use time::OffsetDateTime;

use super::{
    LongTermMemory, MemoryError, Recalled,
    keywords::{self, KeywordKey},
    long_term::{checked_text, open},
    ranking::{Centre, cosine},
};
use crate::{
    caller::Principal,
    config::MAX_TOP_K,
    store::{
        self,
        memories::{MemoryFilter, SearchSettings, WeightedTerms},
    },
};

/// Longest recall query, in characters.
pub const MAX_QUERY_CHARS: usize = 8000;
/// Items a recall returns when the call names no number.
pub const DEFAULT_TOP_K: u32 = 10;
/// Memories counted per keyword term when weighing query terms.
const TERM_COUNT_CAP: i64 = 2000;
/// Fewest candidates taken from each index per recall.
const MIN_CANDIDATES: u32 = 50;
/// Users with at most this many memories are searched exactly: reading their vectors
/// through the per-user index costs a few milliseconds, finds the true nearest ones, and
/// does not depend on how many other users share the HNSW index.
const EXACT_BELOW: i64 = 10_000;

/// What to recall.
#[derive(Debug, Clone, Default)]
pub struct RecallQuery {
    /// The text to find related memories for.
    pub text: String,
    /// Which memories to consider.
    pub filter: MemoryFilter,
    /// Items to return, 1..=[`MAX_TOP_K`]; 0 means [`DEFAULT_TOP_K`].
    pub top_k: u32,
    /// Items scoring below this are dropped, 0..1.
    pub min_score: f32,
}

impl LongTermMemory {
    /// The caller's memories most relevant to `query`, best first, with their signals.
    ///
    /// # Errors
    /// [`MemoryError::Invalid`] for an empty or too long query, a `top_k` over
    /// [`MAX_TOP_K`] or a `min_score` outside 0..1; embedding and store errors.
    pub async fn recall(
        &self,
        principal: &Principal,
        query: &RecallQuery,
    ) -> Result<Vec<Recalled>, MemoryError> {
        let text = checked_text("query", &query.text, MAX_QUERY_CHARS)?;
        let top_k = match query.top_k {
            0 => DEFAULT_TOP_K,
            k if k <= MAX_TOP_K => k,
            _ => {
                return Err(MemoryError::Invalid {
                    field: "top_k",
                    reason: format!("at most {MAX_TOP_K}"),
                });
            }
        };
        if !(0.0..=1.0).contains(&query.min_score) {
            return Err(MemoryError::Invalid {
                field: "min_score",
                reason: "must be between 0 and 1".to_owned(),
            });
        }
        let embedding = self.embed(vec![text.to_owned()]).await?.remove(0);
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let terms = KeywordKey::of_tenant(&mut tx, &self.sealer)
            .await?
            .blind_terms(text);
        let terms = if terms.is_empty() {
            WeightedTerms::default()
        } else {
            let (memories, counts) =
                store::memories::term_counts(&mut tx, principal.user, &terms, TERM_COUNT_CAP)
                    .await?;
            keywords::weigh(terms, memories, &counts, TERM_COUNT_CAP)
        };
        let centroid = store::memories::centroid(&mut tx, principal.user).await?;
        let memories = centroid.as_ref().map_or(0, |(_, memories)| *memories);
        let centre = centroid.and_then(|(total, memories)| Centre::of(total.as_slice(), memories));
        let query_vector = match &centre {
            Some(centre) => centre.subtract(embedding.as_slice()),
            None => embedding.to_vec(),
        };
        // Candidates are the nearest to the centred query by cosine against the stored
        // (uncentred) vectors, which the index holds; they are then scored by the cosine of
        // both centred. The two orders differ by each memory's distance from the centre,
        // which is why several times `top_k` candidates are taken.
        let settings = SearchSettings {
            candidates: i64::from((top_k * 4).max(MIN_CANDIDATES)),
            ef_search: self.settings.ef_search,
            exact: self.settings.exact_search || memories <= EXACT_BELOW,
        };
        let rows = store::memories::candidates(
            &mut tx,
            principal.user,
            &query.filter,
            &Vector::from(query_vector.clone()),
            &terms,
            settings,
        )
        .await?;
        let now = OffsetDateTime::now_utc();
        let mut scored: Vec<_> = rows
            .into_iter()
            .map(|row| {
                let memory_vector = match &centre {
                    Some(centre) => centre.subtract(row.embedding.as_slice()),
                    None => row.embedding.to_vec(),
                };
                let similarity = cosine(&query_vector, &memory_vector);
                let signals =
                    self.ranking
                        .score(similarity, row.keyword, row.memory.created_at, now);
                (signals, row.memory)
            })
            .filter(|(signals, _)| signals.score >= query.min_score)
            .collect();
        scored.sort_by(|a, b| b.0.score.total_cmp(&a.0.score));
        scored.truncate(top_k as usize);
        let mut keyring = self.sealer.keyring(principal.tenant);
        let mut recalled = Vec::with_capacity(scored.len());
        for (signals, row) in scored {
            let item = open(&mut keyring, &mut tx, row).await?;
            recalled.push(Recalled { item, signals });
        }
        tx.commit().await?;
        Ok(recalled)
    }
}
