//! The blind keyword index of memories.
//!
//! Memory texts are sealed, so Postgres cannot index their words. Instead each word is
//! normalised (lower case, English stem, stop words dropped) and replaced by a keyed hash:
//! HMAC-SHA-256 under the tenant's keyword key, cut to 64 bits (16 hex digits). The hashes
//! are kept with the memory and in `memory_terms`, a B-tree keyword search reads (under
//! row-level security Postgres uses no GIN index for `@@`); a query is hashed the same way. The
//! database learns which memories share a word, not the word. The key is 32 random bytes
//! per tenant, sealed with the tenant's data key, so it goes with the tenant's keys.

use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use rust_stemmers::{Algorithm, Stemmer};
use sha2::Sha256;

use super::MemoryError;
use crate::{
    crypto::{CryptoError, MEMORY_KEYWORD_KEYS, Sealer},
    random::random_bytes,
    store::{self, TenantTx, memories::WeightedTerms},
};

/// Words too common to tell memories apart.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "before", "being", "both", "but", "by", "can", "could", "did", "do", "does", "doing",
    "during", "each", "for", "from", "further", "had", "has", "have", "having", "he", "her",
    "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself",
    "just", "me", "more", "most", "my", "myself", "of", "off", "on", "once", "only", "or", "other",
    "our", "ours", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than",
    "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this", "those",
    "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when",
    "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your",
    "yours",
];

/// The normalised words of `text`: lower case, stemmed, without stop words and one-letter
/// words, each once, in a stable order.
pub fn terms(text: &str) -> Vec<String> {
    let stemmer = Stemmer::create(Algorithm::English);
    let lower = text.to_lowercase();
    let words: BTreeSet<String> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.chars().count() > 1 && !STOP_WORDS.contains(word))
        .map(|word| {
            if word.chars().all(|c| c.is_ascii_alphabetic()) {
                stemmer.stem(word).into_owned()
            } else {
                word.to_owned()
            }
        })
        .collect();
    words.into_iter().collect()
}

/// Weighs blind query `terms` by how rare they are among the user's `memories`
/// (`counts[i]` of them hold `terms[i]`): BM25's inverse document frequency
/// `ln(1 + (N - n + 0.5) / (n + 0.5))`, so a word nearly every memory holds (the user's
/// own name) counts for almost nothing. Terms no memory holds, more than half do, or at
/// least `cap` do (counts stop there) are not searched for candidates.
pub fn weigh(terms: Vec<String>, memories: i64, counts: &[i64], cap: i64) -> WeightedTerms {
    let n = memories as f64;
    let weights = counts
        .iter()
        .map(|&count| {
            let count = count as f64;
            (1.0 + (n - count + 0.5) / (count + 0.5)).ln() as f32
        })
        .collect();
    let searched = terms
        .iter()
        .zip(counts)
        .filter(|(_, count)| **count > 0 && **count * 2 <= memories && **count < cap)
        .map(|(term, _)| term.clone())
        .collect();
    WeightedTerms {
        terms,
        weights,
        searched,
    }
}

/// A tenant's keyword key.
pub struct KeywordKey {
    mac: Hmac<Sha256>,
}

impl KeywordKey {
    /// The tenant's key, made (and stored sealed) the first time it is needed, in the
    /// caller's tenant-scoped transaction.
    ///
    /// # Errors
    /// [`MemoryError`] when the key cannot be read, made or opened.
    pub async fn of_tenant(tx: &mut TenantTx, sealer: &Sealer) -> Result<Self, MemoryError> {
        let tenant = tx.tenant();
        let row = tenant.to_string();
        if store::memories::keyword_key(tx).await?.is_none() {
            let key: [u8; 32] = random_bytes().map_err(CryptoError::from)?;
            let sealed = sealer
                .seal(tx, tenant, MEMORY_KEYWORD_KEYS.table, &row, &key)
                .await?;
            // Another call may have stored one first: theirs is kept and read below.
            store::memories::insert_keyword_key(tx, &sealed).await?;
        }
        let sealed = store::memories::keyword_key(tx)
            .await?
            .ok_or_else(|| MemoryError::Corrupt("the keyword key is missing".to_owned()))?;
        let key = sealer
            .open(tx, tenant, MEMORY_KEYWORD_KEYS.table, &row, &sealed)
            .await?;
        Self::from_bytes(&key)
    }

    fn from_bytes(key: &[u8]) -> Result<Self, MemoryError> {
        let mac = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|_| MemoryError::Corrupt("the keyword key has a bad length".to_owned()))?;
        Ok(Self { mac })
    }

    /// The blind terms of `text`, for its row's `keywords` column or for a query.
    pub fn blind_terms(&self, text: &str) -> Vec<String> {
        let mut blind: Vec<String> = terms(text).iter().map(|t| self.blind(t)).collect();
        blind.sort();
        blind.dedup();
        blind
    }

    fn blind(&self, term: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(term.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowered_stemmed_and_stop_words_dropped() {
        assert_eq!(
            terms("The user PREFERS running, and runs in Zürich; ticket BILL-4821 (E1047)!"),
            vec![
                "4821", "bill", "e1047", "prefer", "run", "ticket", "user", "zürich"
            ]
        );
        assert!(terms("it is what it is").is_empty());
    }

    #[test]
    fn rare_terms_weigh_more_and_common_ones_are_not_searched() {
        let terms: Vec<String> = ["sam", "penicillin", "absent"].map(str::to_owned).into();
        let weighted = weigh(terms.clone(), 300, &[290, 1, 0], 2000);
        assert!(weighted.weights[0] < 0.05);
        assert!(weighted.weights[1] > 5.0);
        assert!(weighted.weights[2] > weighted.weights[1]);
        assert_eq!(weighted.searched, vec!["penicillin"]);
        // A count that reached the cap may be any bigger: too common to search.
        assert!(weigh(terms, 10_000, &[5, 100, 0], 100).searched == vec!["sam"]);
    }

    #[test]
    fn blind_terms_depend_on_the_key_and_hide_the_word() {
        let one = KeywordKey::from_bytes(&[1; 32]).unwrap();
        let two = KeywordKey::from_bytes(&[2; 32]).unwrap();
        let terms = one.blind_terms("Allergic to penicillin");
        assert_eq!(terms.len(), 2);
        assert!(
            terms
                .iter()
                .all(|t| t.len() == 16 && !t.contains("penicillin"))
        );
        assert_eq!(terms, one.blind_terms("ALLERGIC to penicillin."));
        assert_ne!(terms, two.blind_terms("Allergic to penicillin"));
    }
}
