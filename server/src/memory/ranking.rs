//! The hybrid recall score.
//!
//! Each candidate (the nearest memories by embedding, and the memories sharing a keyword
//! with the query) gets three signals, each within 0..1:
//! - vector: the cosine similarity of the embeddings, below 0 counted as 0;
//! - keyword: the share of the query's (normalised, stop-word-free) words the memory holds,
//!   each word weighted by its rarity among the user's memories ([`super::keywords::weigh`]);
//! - recency: `0.5 ^ (age / memory.recency_half_life)`.
//!
//! The score is their weighted mean with the `memory.ranking` weights. A weight of 0 turns a
//! signal off: `{vector = 1, keyword = 0, recency = 0}` is plain vector search.
//!
//! The cosine is taken after centring query and memory on the user's mean embedding
//! ([`Centre`]): what all of a user's memories share (their name, their employer) pulls
//! every embedding the same way, so without centring a few memories look close to every
//! query. The mean is shrunk towards zero for users with few memories, whose mean says
//! little.

use std::time::Duration;

use time::OffsetDateTime;

use crate::config::RankingWeights;

/// Memories at which the mean counts half (shrinkage of the centre for small stores).
const CENTRE_PRIOR: f32 = 20.0;

/// The point vectors are centred on before their cosine is taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Centre(Vec<f32>);

impl Centre {
    /// The centre of `memories` embeddings summing to `total`: their mean times
    /// `memories / (memories + 20)`; none for no memories.
    pub fn of(total: &[f32], memories: i64) -> Option<Self> {
        if memories <= 0 {
            return None;
        }
        let n = memories as f32;
        let scale = 1.0 / (n + CENTRE_PRIOR);
        Some(Self(total.iter().map(|x| x * scale).collect()))
    }

    /// `vector` minus the centre.
    pub fn subtract(&self, vector: &[f32]) -> Vec<f32> {
        vector.iter().zip(&self.0).map(|(v, c)| v - c).collect()
    }
}

/// The cosine of the angle between `a` and `b`; 0 when either is zero.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms =
        a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norms > f32::EPSILON {
        dot / norms
    } else {
        0.0
    }
}

/// The signals of one candidate and the score they make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signals {
    /// Cosine similarity, 0..1.
    pub vector: f32,
    /// Keyword coverage, 0..1.
    pub keyword: f32,
    /// Recency factor, 0..1.
    pub recency: f32,
    /// The weighted mean.
    pub score: f32,
}

/// Scores candidates.
#[derive(Debug, Clone, Copy)]
pub struct Ranking {
    weights: RankingWeights,
    half_life: Duration,
}

impl Ranking {
    /// With `weights` (not all 0) and the age at which recency halves.
    pub fn new(weights: RankingWeights, half_life: Duration) -> Self {
        Self { weights, half_life }
    }

    /// The signals of a memory created at `created` (seen at `now`) with cosine
    /// `similarity` and keyword `coverage`.
    pub fn score(
        &self,
        similarity: f32,
        coverage: f32,
        created: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Signals {
        let vector = similarity.clamp(0.0, 1.0);
        let keyword = coverage.clamp(0.0, 1.0);
        let age = (now - created).as_seconds_f64().max(0.0);
        let recency = 0.5_f64.powf(age / self.half_life.as_secs_f64().max(1.0)) as f32;
        let RankingWeights {
            vector: wv,
            keyword: wk,
            recency: wr,
        } = self.weights;
        let total = (wv + wk + wr).max(f32::EPSILON);
        Signals {
            vector,
            keyword,
            recency,
            score: (wv * vector + wk * keyword + wr * recency) / total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn ranking(vector: f32, keyword: f32, recency: f32) -> Ranking {
        Ranking::new(
            RankingWeights {
                vector,
                keyword,
                recency,
            },
            30 * DAY,
        )
    }

    #[test]
    fn centring_removes_what_vectors_share() {
        // Many memories, half like `a` and half like `b`: a large common part, a small
        // difference.
        let a = [1.0, 0.2, 0.0];
        let b = [1.0, 0.0, 0.2];
        let total = [1_000_000.0, 100_000.0, 100_000.0];
        assert!(cosine(&a, &b) > 0.9);
        let centre = Centre::of(&total, 1_000_000).unwrap();
        let (a, b) = (centre.subtract(&a), centre.subtract(&b));
        assert!(cosine(&a, &b) < -0.9);
        assert_eq!(Centre::of(&a, 0), None);
        // Few memories: the centre is shrunk towards zero.
        let few = Centre::of(&[2.0, 0.0, 0.0], 2).unwrap();
        assert!((few.subtract(&[1.0, 0.0, 0.0])[0] - (1.0 - 2.0 / 22.0)).abs() < 1e-6);
        assert_eq!(cosine(&[0.0; 3], &[1.0, 0.0, 0.0]), 0.0);
    }

    #[test]
    fn recency_halves_every_half_life() {
        let now = OffsetDateTime::now_utc();
        let r = ranking(0.0, 0.0, 1.0);
        assert!((r.score(0.0, 0.0, now, now).recency - 1.0).abs() < 1e-6);
        let month = r.score(0.0, 0.0, now - time::Duration::days(30), now);
        assert!((month.recency - 0.5).abs() < 1e-6);
        let two = r.score(0.0, 0.0, now - time::Duration::days(60), now);
        assert!((two.recency - 0.25).abs() < 1e-6);
        assert!((two.score - 0.25).abs() < 1e-6);
    }

    #[test]
    fn the_score_is_the_weighted_mean_of_clamped_signals() {
        let now = OffsetDateTime::now_utc();
        let signals = ranking(0.6, 0.3, 0.1).score(0.8, 0.5, now, now);
        assert!((signals.score - (0.6 * 0.8 + 0.3 * 0.5 + 0.1)).abs() < 1e-6);
        let negative = ranking(1.0, 0.0, 0.0).score(-0.4, 0.0, now, now);
        assert_eq!(negative.vector, 0.0);
        assert_eq!(negative.score, 0.0);
        let keyword_only = ranking(0.0, 2.0, 0.0).score(0.9, 0.5, now, now);
        assert!((keyword_only.score - 0.5).abs() < 1e-6);
    }
}
