//! Local models as a chat provider: the causal language models this replica serves
//! (`inference`), asked in-process. They run on the premises by construction, so the
//! PHI policy never redacts what they see, and they can serve `private` aliases.

use std::sync::Arc;

use tokio_stream::{StreamExt, wrappers::ReceiverStream};

use super::{ChatProvider, ChatRequest, Delta, DeltaStream, FinishReason, LlmError, Usage};
use crate::inference::{
    InferenceError, Registry, Scope,
    generation::{ChatTurn, Generated, Prompt, Sampling},
};

/// Tokens generated when a call sets no limit.
const DEFAULT_MAX_TOKENS: usize = 512;

/// A platform model of the registry (tenants' own models are not chat providers).
pub struct LocalChat {
    registry: Arc<Registry>,
}

impl LocalChat {
    /// Asks the models of `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

impl From<InferenceError> for LlmError {
    fn from(err: InferenceError) -> Self {
        match err {
            InferenceError::Busy(_) => LlmError::RateLimited {
                retry_after: Some(std::time::Duration::from_secs(1)),
            },
            InferenceError::NotFound(_)
            | InferenceError::WrongKind { .. }
            | InferenceError::Invalid { .. } => LlmError::Rejected(err.to_string()),
            _ => LlmError::Unreachable(err.to_string()),
        }
    }
}

#[async_trait::async_trait]
impl ChatProvider for LocalChat {
    async fn stream(&self, request: &ChatRequest) -> Result<DeltaStream, LlmError> {
        if request.tools.is_some() {
            return Err(LlmError::Rejected(
                "the server's own models do not call tools".to_owned(),
            ));
        }
        let turns = request
            .messages
            .iter()
            .map(|m| ChatTurn {
                role: m.role.to_owned(),
                content: m.content.clone(),
            })
            .collect();
        let sampling = Sampling {
            temperature: request.temperature.unwrap_or(0.7).clamp(0.0, 2.0),
            top_p: request
                .top_p
                .filter(|p| *p > 0.0 && *p <= 1.0)
                .unwrap_or(1.0),
            max_tokens: request
                .max_tokens
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
                .unwrap_or(DEFAULT_MAX_TOKENS),
            stop: request.stop.clone(),
            seed: None,
        };
        let (_, events) = self
            .registry
            .generate(
                Scope::Platform,
                &request.model,
                Prompt::Chat(turns),
                sampling,
            )
            .await?;
        let deltas = ReceiverStream::new(events).map(|event| match event {
            Ok(Generated::Delta(text)) => Ok(Delta::Text(text)),
            Ok(Generated::Done {
                finish_reason,
                prompt_tokens,
                completion_tokens,
            }) => Ok(Delta::Finished {
                usage: Some(Usage {
                    prompt_tokens: i64::try_from(prompt_tokens).unwrap_or(i64::MAX),
                    completion_tokens: i64::try_from(completion_tokens).unwrap_or(i64::MAX),
                }),
                finish_reason: match finish_reason {
                    "length" => FinishReason::Length,
                    "cancelled" => FinishReason::Cancelled,
                    _ => FinishReason::Stop,
                },
            }),
            Err(err) => Err(LlmError::from(err)),
        });
        Ok(Box::pin(deltas))
    }
}
