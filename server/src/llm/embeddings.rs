//! Embeddings from a tenant's model provider (`provider/model`): OpenAI's and any
//! OpenAI-compatible server's `/embeddings`, Azure OpenAI's deployments. Texts bound for a
//! provider off the premises pass the tenant's PHI policy first, as prompts do: sent,
//! redacted (the vectors are then those of the redacted texts) or refused.

use std::time::Instant;

use super::{Embeddings, LlmError, ProviderError, Providers};
use crate::{
    caller::Principal,
    privacy::{PhiGuard, PhiKind, PhiPolicy, tenant_policy},
    store::StoreError,
};

/// Why provider embeddings failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddingError {
    /// The provider or model is unknown, or its settings cannot be read.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The provider failed or refused.
    #[error(transparent)]
    Llm(#[from] LlmError),
    /// A text holds PHI and the tenant's policy forbids sending it to this provider.
    #[error(
        "a text contains protected or personal information ({}) and this tenant's policy \
         refuses to send it to model provider {provider:?}, which is not on its premises",
        kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
    )]
    PhiRefused {
        /// Kinds found (never the values).
        kinds: Vec<PhiKind>,
        /// The provider.
        provider: String,
    },
}

impl From<StoreError> for EmbeddingError {
    fn from(err: StoreError) -> Self {
        Self::Provider(err.into())
    }
}

/// Vectors from a provider, and what the call did.
#[derive(Debug, Clone)]
pub struct ProviderEmbeddings {
    /// The vectors and the tokens counted.
    pub embeddings: Embeddings,
    /// `provider/model` that made them.
    pub model_used: String,
    /// Whether PHI was found in the texts.
    pub phi: bool,
    /// Time the provider took.
    pub latency_ms: u32,
}

impl Providers {
    /// Embeds `texts` with `reference` (`provider/model`) for the caller's tenant.
    ///
    /// # Errors
    /// [`EmbeddingError`] for an unknown provider or model, a refusal of the PHI policy,
    /// or a failure of the provider.
    pub async fn embed(
        &self,
        principal: &Principal,
        reference: &str,
        texts: Vec<String>,
    ) -> Result<ProviderEmbeddings, EmbeddingError> {
        let Some((provider, model)) = reference
            .split_once('/')
            .filter(|(p, m)| !p.is_empty() && !m.is_empty())
        else {
            return Err(ProviderError::Invalid {
                field: "model",
                reason: "must be \"provider/model\" for a provider's embeddings".to_owned(),
            }
            .into());
        };
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let target = self.target(&mut tx, principal, provider, model).await?;
        let policy = if target.on_premises {
            PhiPolicy::Allow
        } else {
            tenant_policy(&mut tx).await?
        };
        tx.commit().await?;
        let guard = PhiGuard::default();
        let phi = texts.iter().any(|text| !guard.detect(text).is_empty());
        let texts = if target.on_premises {
            texts
        } else {
            texts
                .iter()
                .map(|text| {
                    guard
                        .apply(policy, text)
                        .map(|guarded| guarded.into_parts().0)
                        .map_err(|refused| EmbeddingError::PhiRefused {
                            kinds: refused.kinds,
                            provider: target.provider.clone(),
                        })
                })
                .collect::<Result<_, _>>()?
        };
        let started = Instant::now();
        let embeddings = target
            .client
            .embed(&target.model, &texts)
            .await
            .map_err(|err| err.at(&target.provider))?;
        Ok(ProviderEmbeddings {
            embeddings,
            model_used: format!("{}/{}", target.provider, target.model),
            phi,
            latency_ms: u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX),
        })
    }
}
