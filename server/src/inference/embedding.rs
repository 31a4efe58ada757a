//! Embedding models: `forward(input_ids, attention_mask)` returns one (normalised) vector
//! per text, `[texts, dimensions]`.

use std::path::Path;

use tch::{CModule, Device, Kind};

use super::{
    InferenceError,
    manifest::{Manifest, Precision},
    text::TextEncoder,
    worker::Runner,
};

/// An embedding model loaded on a device.
pub struct EmbeddingRunner {
    module: CModule,
    encoder: TextEncoder,
    device: Device,
    dimensions: usize,
}

impl EmbeddingRunner {
    /// Loads the model of `manifest` in `folder` (already verified file `file`) on `device`.
    ///
    /// # Errors
    /// [`InferenceError::Load`] when libtorch or the tokenizer refuses it.
    pub fn load(
        manifest: &Manifest,
        folder: &Path,
        file: &Path,
        device: Device,
    ) -> Result<Self, InferenceError> {
        let tokenizer = folder.join(manifest.tokenizer.as_deref().unwrap_or(Path::new("")));
        let encoder = TextEncoder::read(&tokenizer, manifest.max_length)?;
        let mut module = super::load_module(file, device)?;
        if device.is_cuda() {
            match manifest.precision {
                Precision::Fp32 => {}
                Precision::Fp16 => module.to(device, Kind::Half, false),
                Precision::Bf16 => module.to(device, Kind::BFloat16, false),
            }
        }
        Ok(Self {
            module,
            encoder,
            device,
            dimensions: manifest.dimensions,
        })
    }
}

impl Runner for EmbeddingRunner {
    type Input = String;
    type Output = Vec<f32>;

    fn run(&mut self, texts: &[String]) -> Result<(Vec<Vec<f32>>, usize), InferenceError> {
        let mut vectors = vec![Vec::new(); texts.len()];
        let mut tokens = 0;
        for bucket in self.encoder.buckets(texts)? {
            let part: Vec<String> = bucket.iter().map(|&i| texts[i].clone()).collect();
            let (embedded, used) = self.embed(&part)?;
            tokens += used;
            for (index, vector) in bucket.into_iter().zip(embedded) {
                vectors[index] = vector;
            }
        }
        Ok((vectors, tokens))
    }
}

impl EmbeddingRunner {
    /// One model call on `texts`, padded to the longest.
    fn embed(&mut self, texts: &[String]) -> Result<(Vec<Vec<f32>>, usize), InferenceError> {
        let batch = self.encoder.encode(texts, self.device)?;
        let output = tch::no_grad(|| self.module.forward_ts(&[&batch.ids, &batch.mask]))
            .map_err(|err| InferenceError::Failed(super::torch_reason(&err)))?;
        let output = output.to_device(Device::Cpu).to_kind(Kind::Float);
        let shape = output.size();
        if shape.len() != 2
            || usize::try_from(shape[0]).ok() != Some(texts.len())
            || usize::try_from(shape[1]).ok() != Some(self.dimensions)
        {
            return Err(InferenceError::Failed(format!(
                "the model returned shape {shape:?}, expected [{}, {}]",
                texts.len(),
                self.dimensions
            )));
        }
        let flat = Vec::<f32>::try_from(&output.flatten(0, -1))
            .map_err(|err| InferenceError::Failed(super::torch_reason(&err)))?;
        Ok((
            flat.chunks(self.dimensions).map(<[f32]>::to_vec).collect(),
            batch.tokens,
        ))
    }
}
