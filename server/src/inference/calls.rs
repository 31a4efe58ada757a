//! What the registry's models are asked to do: embed, classify, predict, generate. Each
//! call finds its model in the caller's scope (fetching a tenant model on first use),
//! checks that the model is of the kind the call needs and serves, and hands the request
//! to the model's workers.

use std::sync::Arc;

use super::{
    InferenceError, Registry,
    generation::{Generated, Prompt, Sampling, TokenCounter},
    manifest::ModelKind,
    models::{Classified, Embedded, Entry, ModelState, Scope, Serving},
    predict::Tensors,
};

impl Registry {
    /// The serving entry `model` names in `scope` (empty: `default`), or why it cannot
    /// serve `call`.
    async fn serving(
        &self,
        scope: Scope,
        model: &str,
        default: &str,
        call: &'static str,
        needs: ModelKind,
    ) -> Result<Arc<Entry>, InferenceError> {
        let reference = if model.is_empty() { default } else { model };
        let entry = self
            .resolve(scope, reference)
            .await?
            .ok_or_else(|| InferenceError::NotFound(reference.to_owned()))?;
        if entry.info.manifest.kind != needs {
            return Err(InferenceError::WrongKind {
                model: entry.info.id.clone(),
                kind: entry.info.manifest.kind.as_str(),
                call,
                needs: needs.as_str(),
            });
        }
        let reason = match (&entry.serving, &entry.info.state) {
            (Some(_), _) => return Ok(entry),
            (None, ModelState::Failed(reason)) => reason.clone(),
            (None, ModelState::Unloaded) => "it was unloaded (see LoadModel)".to_owned(),
            (None, ModelState::Ready(_)) => "it does not serve".to_owned(),
        };
        Err(InferenceError::NotReady {
            model: entry.info.id.clone(),
            reason,
        })
    }

    /// Starts generating with `model` (empty: `inference.default_generation`); returns
    /// the model's id and the channel the text arrives on (drop it to cancel).
    ///
    /// # Errors
    /// [`InferenceError`] when the model is unknown, of another kind, not ready or busy.
    pub async fn generate(
        &self,
        scope: Scope,
        model: &str,
        prompt: Prompt,
        sampling: Sampling,
    ) -> Result<
        (
            String,
            tokio::sync::mpsc::Receiver<Result<Generated, InferenceError>>,
        ),
        InferenceError,
    > {
        let entry = self
            .serving(
                scope,
                model,
                &self.default_generation,
                "Generate",
                ModelKind::CausalLm,
            )
            .await?;
        let Some(Serving::Generation(worker)) = &entry.serving else {
            return Err(InferenceError::Stopped);
        };
        Ok((entry.info.id.clone(), worker.generate(prompt, sampling)?))
    }

    /// Labels `texts` with `model` (empty: `inference.default_classifier`).
    ///
    /// # Errors
    /// [`InferenceError`] when the model is unknown, of another kind, not ready, busy, or
    /// fails.
    pub async fn classify(
        &self,
        scope: Scope,
        model: &str,
        texts: Vec<String>,
    ) -> Result<Classified, InferenceError> {
        let entry = self
            .serving(
                scope,
                model,
                &self.default_classifier,
                "Classify",
                ModelKind::Classifier,
            )
            .await?;
        let Some(Serving::Classifier(worker)) = &entry.serving else {
            return Err(InferenceError::Stopped);
        };
        let (results, _) = worker.run(texts).await?;
        Ok(Classified {
            model: entry.info.id.clone(),
            results,
        })
    }

    /// Runs the generic model `model` on named `inputs`; returns its id and the outputs.
    ///
    /// # Errors
    /// [`InferenceError`] when the model is unknown, of another kind, not ready or busy;
    /// [`InferenceError::Invalid`] when the inputs do not fit it.
    pub async fn predict(
        &self,
        scope: Scope,
        model: &str,
        inputs: Tensors,
    ) -> Result<(String, Tensors), InferenceError> {
        let entry = self
            .serving(scope, model, "", "Predict", ModelKind::Torchscript)
            .await?;
        let Some(Serving::Predict(worker)) = &entry.serving else {
            return Err(InferenceError::Stopped);
        };
        let (mut outputs, _) = worker.run(vec![inputs]).await?;
        let output = outputs.pop().ok_or(InferenceError::Stopped)?;
        let output = output.map_err(|reason| InferenceError::Invalid {
            field: "inputs",
            reason,
        })?;
        Ok((entry.info.id.clone(), output))
    }

    /// The token counter of language model `model` seen from `scope`, when it serves here.
    pub fn token_counter(&self, scope: Scope, model: &str) -> Option<TokenCounter> {
        match &self.entry(scope, model)?.serving {
            Some(Serving::Generation(worker)) => Some(worker.token_counter()),
            _ => None,
        }
    }

    /// Embeds `texts` with `model` (empty: `inference.default_embedding`).
    ///
    /// # Errors
    /// [`InferenceError`] when the model is unknown, of another kind, not ready, busy, or
    /// fails.
    pub async fn embed(
        &self,
        scope: Scope,
        model: &str,
        texts: Vec<String>,
    ) -> Result<Embedded, InferenceError> {
        let entry = self
            .serving(
                scope,
                model,
                &self.default_embedding,
                "Embed",
                ModelKind::Embedding,
            )
            .await?;
        let Some(Serving::Embedding(worker)) = &entry.serving else {
            return Err(InferenceError::Stopped);
        };
        let (vectors, tokens) = worker.run(texts).await?;
        Ok(Embedded {
            model: entry.info.id.clone(),
            dimensions: entry.info.manifest.dimensions,
            vectors,
            tokens,
        })
    }
}
