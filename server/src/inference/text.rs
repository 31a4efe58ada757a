//! Texts to model inputs: a HuggingFace `tokenizer.json`, set to pad each batch to its
//! longest text and to cut inputs at the model's `max_length` (some shipped tokenizers
//! pad and cut to a fixed length instead, which wastes work on short texts). A batch of
//! texts of mixed lengths is run in buckets of similar length ([`TextEncoder::buckets`]),
//! so short texts are not padded to the longest of the batch.

use std::path::Path;

use tch::{Device, Tensor};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::InferenceError;

/// Most tokens, padding included, in one bucket: a few long texts or many short ones.
/// (On CPUs a model call on more gains little; on GPUs batches are large anyway.)
const BUCKET_TOKENS: usize = 256;

/// Token ids and attention mask of a batch, on the model's device.
pub struct Batch {
    /// `[texts, longest]` token ids.
    pub ids: Tensor,
    /// `[texts, longest]`, 1 for tokens and 0 for padding.
    pub mask: Tensor,
    /// Tokens in the batch, padding excluded.
    pub tokens: usize,
}

/// A model's tokenizer.
pub struct TextEncoder {
    tokenizer: Tokenizer,
}

impl TextEncoder {
    /// Reads `path`, cutting inputs at `max_length` tokens.
    ///
    /// # Errors
    /// [`InferenceError::Load`] when the file is not a usable tokenizer.
    pub fn read(path: &Path, max_length: usize) -> Result<Self, InferenceError> {
        let load = |reason: String| InferenceError::Load {
            path: path.to_owned(),
            reason,
        };
        // Each model worker tokenizes on its own thread: the workers are the parallelism,
        // and the tokenizer's own thread pool would only compete with libtorch's.
        tokenizers::utils::parallelism::set_parallelism(false);
        let mut tokenizer = Tokenizer::from_file(path).map_err(|err| load(err.to_string()))?;
        let pad = tokenizer.get_padding().cloned().unwrap_or_default();
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..pad
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                ..TruncationParams::default()
            }))
            .map_err(|err| load(err.to_string()))?;
        Ok(Self { tokenizer })
    }

    /// The texts' indices in buckets of similar length, shortest first: each bucket is
    /// a run of texts sorted by length whose padded size stays within [`BUCKET_TOKENS`]
    /// (a text longer than that is a bucket of its own).
    ///
    /// # Errors
    /// [`InferenceError::Failed`] when the tokenizer fails.
    pub fn buckets(&self, texts: &[String]) -> Result<Vec<Vec<usize>>, InferenceError> {
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let lengths: Vec<usize> = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|err| InferenceError::Failed(format!("tokenizer: {err}")))?
            .iter()
            .map(|e| e.get_attention_mask().iter().filter(|&&m| m == 1).count())
            .collect();
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| lengths[i]);
        let mut buckets: Vec<Vec<usize>> = Vec::new();
        for index in order {
            match buckets.last_mut() {
                Some(bucket) if lengths[index] * (bucket.len() + 1) <= BUCKET_TOKENS => {
                    bucket.push(index);
                }
                _ => buckets.push(vec![index]),
            }
        }
        Ok(buckets)
    }

    /// Tokenizes `texts` into one batch on `device`.
    ///
    /// # Errors
    /// [`InferenceError::Failed`] when the tokenizer fails.
    pub fn encode(&self, texts: &[String], device: Device) -> Result<Batch, InferenceError> {
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|err| InferenceError::Failed(format!("tokenizer: {err}")))?;
        let longest = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(encodings.len() * longest);
        let mut mask = Vec::with_capacity(encodings.len() * longest);
        let mut tokens = 0;
        for encoding in &encodings {
            ids.extend(encoding.get_ids().iter().map(|&id| i64::from(id)));
            mask.extend(encoding.get_attention_mask().iter().map(|&m| i64::from(m)));
            tokens += encoding
                .get_attention_mask()
                .iter()
                .filter(|&&m| m == 1)
                .count();
        }
        let shape = [
            i64::try_from(encodings.len()).unwrap_or(i64::MAX),
            i64::try_from(longest).unwrap_or(i64::MAX),
        ];
        Ok(Batch {
            ids: Tensor::from_slice(&ids).view(shape).to_device(device),
            mask: Tensor::from_slice(&mask).view(shape).to_device(device),
            tokens,
        })
    }
}
