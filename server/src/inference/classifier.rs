//! Classifiers over sentence vectors: the encoder (an embedding model) turns texts into
//! vectors, the classifier's own file (a head, `[texts, dimensions] -> [texts, labels]`
//! logits) scores the labels, and a softmax makes the scores probabilities.

use std::path::Path;

use tch::{CModule, Device, Kind};

use super::{InferenceError, embedding::EmbeddingRunner, worker::Runner};

/// A label and its probability.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelScore {
    /// The label.
    pub label: String,
    /// Its probability.
    pub score: f32,
}

/// A classifier loaded on a device.
pub struct ClassifierRunner {
    encoder: EmbeddingRunner,
    head: CModule,
    labels: Vec<String>,
    device: Device,
}

impl ClassifierRunner {
    /// The classifier whose head is `file`, reading the vectors of `encoder`.
    ///
    /// # Errors
    /// [`InferenceError::Load`] when libtorch refuses the head.
    pub fn load(
        encoder: EmbeddingRunner,
        file: &Path,
        labels: Vec<String>,
        device: Device,
    ) -> Result<Self, InferenceError> {
        let head = super::load_module(file, device)?;
        Ok(Self {
            encoder,
            head,
            labels,
            device,
        })
    }
}

impl Runner for ClassifierRunner {
    type Input = String;
    type Output = Vec<LabelScore>;

    fn run(&mut self, texts: &[String]) -> Result<(Vec<Vec<LabelScore>>, usize), InferenceError> {
        let (vectors, tokens) = self.encoder.run(texts)?;
        let rows: Vec<tch::Tensor> = vectors.iter().map(|v| tch::Tensor::from_slice(v)).collect();
        let input = tch::Tensor::stack(&rows, 0).to_device(self.device);
        let logits = tch::no_grad(|| self.head.forward_ts(&[input]))
            .map_err(|err| InferenceError::Failed(super::torch_reason(&err)))?;
        let probabilities = logits
            .softmax(-1, Kind::Float)
            .to_device(Device::Cpu)
            .flatten(0, -1);
        let flat = Vec::<f32>::try_from(&probabilities)
            .map_err(|err| InferenceError::Failed(super::torch_reason(&err)))?;
        if flat.len() != texts.len() * self.labels.len() {
            return Err(InferenceError::Failed(format!(
                "the head returned {} scores for {} texts and {} labels",
                flat.len(),
                texts.len(),
                self.labels.len()
            )));
        }
        let scored = flat
            .chunks(self.labels.len())
            .map(|scores| {
                let mut ranked: Vec<LabelScore> = self
                    .labels
                    .iter()
                    .zip(scores)
                    .map(|(label, &score)| LabelScore {
                        label: label.clone(),
                        score,
                    })
                    .collect();
                ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
                ranked
            })
            .collect();
        Ok((scored, tokens))
    }
}
