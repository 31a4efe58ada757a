//! Text generation with a causal language model exported as one decoding step with an
//! explicit key/value cache: the prompt goes through once, then each new token goes
//! through alone with the cache of everything before it. One thread owns the model and
//! serves one request at a time from a bounded queue; text reaches the caller as it is
//! decoded, and a caller that goes away stops its generation at the next token.

use std::{
    path::Path,
    sync::mpsc::{self, Receiver, SyncSender, TrySendError},
    thread,
};

use tch::{CModule, Device, Kind, Tensor};
use tokenizers::Tokenizer;
use tokio::sync::mpsc as async_mpsc;

pub use super::decoding::Sampling;
use super::{
    InferenceError,
    decoding::{Decoded, Sampler},
    manifest::{GenerationSettings, Manifest},
    worker::Batching,
};
use crate::telemetry::Metrics;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTurn {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Its text.
    pub content: String,
}

/// What to generate from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Text used as is.
    Raw(String),
    /// Chat messages, formatted with the model's chat template.
    Chat(Vec<ChatTurn>),
}

/// What a generation sends back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Generated {
    /// Text to append.
    Delta(String),
    /// The end: why, and the token counts.
    Done {
        /// `stop`, `length` or `cancelled`.
        finish_reason: &'static str,
        /// Tokens of the prompt.
        prompt_tokens: usize,
        /// Tokens generated.
        completion_tokens: usize,
    },
}

/// A generation waiting for the model.
struct Job {
    prompt: Prompt,
    sampling: Sampling,
    events: async_mpsc::Sender<Result<Generated, InferenceError>>,
}

/// The handle of a causal model's thread.
pub struct GenerationWorker {
    name: String,
    jobs: SyncSender<Job>,
    counter: TokenCounter,
}

/// Counts tokens the way a language model does, so callers can fit a prompt to its
/// context window.
#[derive(Clone)]
pub struct TokenCounter {
    tokenizer: std::sync::Arc<Tokenizer>,
    /// Tokens the model reads at most (its manifest's `max_length`).
    pub context: usize,
}

impl TokenCounter {
    /// Tokens of `text` (without special tokens); a text the tokenizer refuses counts one
    /// token per byte.
    pub fn count(&self, text: &str) -> usize {
        self.tokenizer
            .encode(text, false)
            .map_or(text.len(), |encoding| encoding.len())
    }
}

impl GenerationWorker {
    /// Loads the model of `manifest` (verified file `file` in `folder`) on `device`, warms
    /// it up and starts its thread; at most `queue` generations wait.
    ///
    /// # Errors
    /// [`InferenceError`] when the model or tokenizer does not load or run.
    pub fn start(
        id: &str,
        manifest: &Manifest,
        folder: &Path,
        file: &Path,
        device: Device,
        batching: Batching,
        metrics: std::sync::Arc<Metrics>,
    ) -> Result<Self, InferenceError> {
        let mut engine = Engine::load(manifest, folder, file, device)?;
        engine.warm_up()?;
        let counter = TokenCounter {
            tokenizer: std::sync::Arc::new(engine.tokenizer.clone()),
            context: engine.max_length,
        };
        let (jobs, waiting) = mpsc::sync_channel(batching.queue.max(1));
        let model = id.to_owned();
        thread::Builder::new()
            .name(format!("model-{id}"))
            .spawn(move || {
                tch::set_num_threads(i32::try_from(batching.threads).unwrap_or(1));
                serve(&model, &mut engine, &waiting, &metrics);
            })
            .map_err(|err| InferenceError::Failed(format!("cannot start a worker: {err}")))?;
        Ok(Self {
            name: id.to_owned(),
            jobs,
            counter,
        })
    }

    /// Counts tokens with this model's tokenizer.
    pub fn token_counter(&self) -> TokenCounter {
        self.counter.clone()
    }

    /// Queues a generation; its text arrives on the returned channel, which the caller
    /// drops to cancel.
    ///
    /// # Errors
    /// [`InferenceError::Busy`] when the queue is full, [`InferenceError::Stopped`] when
    /// the worker stopped.
    pub fn generate(
        &self,
        prompt: Prompt,
        sampling: Sampling,
    ) -> Result<async_mpsc::Receiver<Result<Generated, InferenceError>>, InferenceError> {
        let (events, receiver) = async_mpsc::channel(64);
        match self.jobs.try_send(Job {
            prompt,
            sampling,
            events,
        }) {
            Ok(()) => Ok(receiver),
            Err(TrySendError::Full(_)) => Err(InferenceError::Busy(self.name.clone())),
            Err(TrySendError::Disconnected(_)) => Err(InferenceError::Stopped),
        }
    }
}

fn serve(model: &str, engine: &mut Engine, jobs: &Receiver<Job>, metrics: &Metrics) {
    while let Ok(job) = jobs.recv() {
        if job.events.is_closed() {
            continue;
        }
        let events = job.events.clone();
        let result = engine.generate(&job.prompt, &job.sampling, &mut |event| {
            if let Generated::Done {
                completion_tokens, ..
            } = &event
            {
                metrics.record_generated_tokens(model, *completion_tokens);
            }
            events.blocking_send(Ok(event)).is_ok()
        });
        if let Err(err) = result {
            tracing::error!(model, error = %err, "generation failed");
            let _ = job.events.blocking_send(Err(err));
        }
    }
    tracing::info!(model, "model worker stopped");
}

/// The loaded model and tokenizer.
struct Engine {
    module: CModule,
    tokenizer: Tokenizer,
    settings: GenerationSettings,
    stop_ids: Vec<u32>,
    max_length: usize,
    device: Device,
}

impl Engine {
    fn load(
        manifest: &Manifest,
        folder: &Path,
        file: &Path,
        device: Device,
    ) -> Result<Self, InferenceError> {
        let load = |path: &Path, reason: String| InferenceError::Load {
            path: path.to_owned(),
            reason,
        };
        let settings = manifest
            .generation
            .clone()
            .ok_or_else(|| load(file, "the manifest has no [generation]".to_owned()))?;
        let tokenizer_path = folder.join(manifest.tokenizer.as_deref().unwrap_or(Path::new("")));
        let tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|err| load(&tokenizer_path, err.to_string()))?;
        let stop_ids = settings
            .stop_tokens
            .iter()
            .map(|token| {
                tokenizer.token_to_id(token).ok_or_else(|| {
                    load(
                        &tokenizer_path,
                        format!("no token {token:?} in the tokenizer"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        let module = super::load_module(file, device)?;
        Ok(Self {
            module,
            tokenizer,
            settings,
            stop_ids,
            max_length: manifest.max_length,
            device,
        })
    }

    fn warm_up(&mut self) -> Result<(), InferenceError> {
        let sampling = Sampling {
            temperature: 0.0,
            top_p: 1.0,
            max_tokens: 1,
            stop: Vec::new(),
            seed: None,
        };
        self.generate(&Prompt::Raw("Hello".to_owned()), &sampling, &mut |_| true)
    }

    /// The prompt text of `prompt` (the chat template applied).
    fn prompt_text(&self, prompt: &Prompt) -> String {
        match prompt {
            Prompt::Raw(text) => text.clone(),
            Prompt::Chat(turns) => chatml(turns, &self.settings.default_system),
        }
    }

    /// Generates for `prompt`, handing each event to `emit` until it returns `false`
    /// (the caller went away).
    fn generate(
        &mut self,
        prompt: &Prompt,
        sampling: &Sampling,
        emit: &mut dyn FnMut(Generated) -> bool,
    ) -> Result<(), InferenceError> {
        let failed = |err: tch::TchError| InferenceError::Failed(super::torch_reason(&err));
        let text = self.prompt_text(prompt);
        let encoding = self
            .tokenizer
            .encode(text.as_str(), false)
            .map_err(|err| InferenceError::Failed(format!("tokenizer: {err}")))?;
        let prompt_ids: Vec<i64> = encoding.get_ids().iter().map(|&id| i64::from(id)).collect();
        if prompt_ids.is_empty() || prompt_ids.len() >= self.max_length {
            return Err(InferenceError::Invalid {
                field: "prompt",
                reason: format!(
                    "must be 1 to {} tokens; it has {}",
                    self.max_length - 1,
                    prompt_ids.len()
                ),
            });
        }
        let budget = sampling.max_tokens.min(self.max_length - prompt_ids.len());
        let empty = [
            self.settings.layers,
            self.settings.kv_heads,
            0,
            self.settings.head_dim,
        ];
        let mut past_k = Tensor::zeros(empty, (Kind::Float, self.device));
        let mut past_v = Tensor::zeros(empty, (Kind::Float, self.device));
        let mut input = Tensor::from_slice(&prompt_ids).to_device(self.device);
        let mut sampler = Sampler::new(sampling);
        let mut decoded = Decoded::new(&sampling.stop);
        let mut generated: Vec<u32> = Vec::new();
        let mut finish_reason = "length";
        while generated.len() < budget {
            let output = tch::no_grad(|| {
                self.module.forward_is(&[
                    tch::IValue::Tensor(input.shallow_clone()),
                    tch::IValue::Tensor(past_k.shallow_clone()),
                    tch::IValue::Tensor(past_v.shallow_clone()),
                ])
            })
            .map_err(failed)?;
            let (logits, keys, values) = step_outputs(output)?;
            past_k = keys;
            past_v = values;
            let logits = Vec::<f32>::try_from(&logits.to_device(Device::Cpu).to_kind(Kind::Float))
                .map_err(failed)?;
            let token = sampler.next(&logits);
            if self.stop_ids.contains(&token) {
                finish_reason = "stop";
                break;
            }
            generated.push(token);
            let text = self
                .tokenizer
                .decode(&generated, true)
                .map_err(|err| InferenceError::Failed(format!("tokenizer: {err}")))?;
            let (delta, stopped) = decoded.advance(&text);
            if !delta.is_empty() && !emit(Generated::Delta(delta)) {
                finish_reason = "cancelled";
                break;
            }
            if stopped {
                finish_reason = "stop";
                break;
            }
            input = Tensor::from_slice(&[i64::from(token)]).to_device(self.device);
        }
        if finish_reason != "cancelled" {
            let rest = decoded.finish();
            if !rest.is_empty() {
                emit(Generated::Delta(rest));
            }
        }
        emit(Generated::Done {
            finish_reason,
            prompt_tokens: prompt_ids.len(),
            completion_tokens: generated.len(),
        });
        Ok(())
    }
}

/// The three outputs of a decoding step.
fn step_outputs(output: tch::IValue) -> Result<(Tensor, Tensor, Tensor), InferenceError> {
    match output {
        tch::IValue::Tuple(mut parts) if parts.len() == 3 => {
            let mut take = || match parts.remove(0) {
                tch::IValue::Tensor(tensor) => Ok(tensor),
                other => Err(InferenceError::Failed(format!(
                    "the step returned {other:?} where a tensor belongs"
                ))),
            };
            Ok((take()?, take()?, take()?))
        }
        _ => Err(InferenceError::Failed(
            "the step must return (logits, keys, values)".to_owned(),
        )),
    }
}

/// ChatML: `<|im_start|>role\ncontent<|im_end|>\n` per message, a default system message
/// first when the chat has none, and the assistant's turn opened at the end.
pub fn chatml(turns: &[ChatTurn], default_system: &str) -> String {
    let mut prompt = String::new();
    if turns.first().is_none_or(|t| t.role != "system") && !default_system.is_empty() {
        prompt.push_str(&format!("<|im_start|>system\n{default_system}<|im_end|>\n"));
    }
    for turn in turns {
        prompt.push_str(&format!(
            "<|im_start|>{}\n{}<|im_end|>\n",
            turn.role, turn.content
        ));
    }
    prompt.push_str("<|im_start|>assistant\n");
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chats_become_chatml_with_a_default_system_message() {
        let turns = vec![ChatTurn {
            role: "user".into(),
            content: "Hi".into(),
        }];
        assert_eq!(
            chatml(&turns, "Be brief."),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
             <|im_start|>assistant\n"
        );
        let with_system = [
            ChatTurn {
                role: "system".into(),
                content: "Own".into(),
            },
            turns[0].clone(),
        ];
        assert!(chatml(&with_system, "Be brief.").starts_with("<|im_start|>system\nOwn"));
    }
}
