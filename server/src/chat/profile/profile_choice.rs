//! Choosing a conversation's profile when the client did not: at the first message, the
//! domain classifier (a local model; the message does not leave the premises) labels it,
//! and a confident label becomes the profile. Without a classifier, or when it is unsure
//! or unavailable, the conversation stays `general`.

use std::sync::Arc;

use crate::inference::{InferenceError, Registry, Scope};

/// Least probability of the best label for it to be used.
const CONFIDENT: f32 = 0.5;
/// Characters of the message the classifier reads (it cuts long inputs anyway).
const READ_CHARS: usize = 2_000;

/// Picks profiles with the server's default classifier.
#[derive(Clone)]
pub struct ProfilePicker {
    registry: Arc<Registry>,
}

impl ProfilePicker {
    /// Picks with the default classifier of `registry`, when it has one.
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }

    /// The profile for a conversation that starts with `message`, when the classifier is
    /// confident.
    pub async fn pick(&self, message: &str) -> Option<String> {
        let text: String = message.chars().take(READ_CHARS).collect();
        match self
            .registry
            .classify(Scope::Platform, "", vec![text])
            .await
        {
            Ok(classified) => {
                let best = classified.results.into_iter().next()?.into_iter().next()?;
                tracing::debug!(label = %best.label, score = best.score, "domain classified");
                (best.score >= CONFIDENT).then_some(best.label)
            }
            Err(InferenceError::NotFound(_)) => None,
            Err(err) => {
                tracing::warn!(error = %err, "domain classifier unavailable; the profile stays general");
                None
            }
        }
    }
}
