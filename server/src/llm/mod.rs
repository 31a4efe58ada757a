//! Model providers: one interface ([`ChatProvider`]) over the wire formats of the services
//! that serve chat models, each reply a stream of text deltas ending with usage and the
//! reason generation stopped. Dropping a stream drops the upstream request, so a client
//! that goes away stops the generation it asked for.
//!
//! Adapters: [`openai::OpenAiChat`] for OpenAI, Azure OpenAI and any OpenAI-compatible
//! server (vLLM, LM Studio, llama.cpp). It speaks the chat completions API over `reqwest`
//! with server-sent events parsed by `eventsource-stream`; the `async-openai` crate was
//! considered, but its many generated types and dependencies buy nothing for the one
//! endpoint used here, and it fixes the request shape where providers differ (Azure's
//! URL and `api-key` header). [`ollama::OllamaChat`] speaks Ollama's native API
//! (newline-delimited JSON). [`local::LocalChat`] asks the language models this replica
//! serves itself (`inference`): tenants get them as the built-in provider `local` and the
//! alias `private`.

mod body_limits;
mod breaker;
mod embeddings;
pub mod entra;
mod local;
pub mod ollama;
pub mod openai;
mod platform;
mod providers;
mod resolve;
pub mod router;
mod routes;

pub use breaker::{Breakers, CircuitBreaker};
pub use embeddings::{EmbeddingError, ProviderEmbeddings};
pub use providers::{ProviderError, ProviderSettings, Providers};
pub use resolve::{LOCAL_PROVIDER, ResolvedModel, Route};
pub use routes::ModelRoute;

use std::{pin::Pin, time::Duration};

use tokio_stream::Stream;

/// One message of the prompt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: &'static str,
    /// Its text.
    pub content: String,
    /// For an assistant message: the tools it called.
    pub tool_calls: Vec<ToolCall>,
    /// For a tool message: the call it answers.
    pub tool_call_id: Option<String>,
}

/// A call of a function tool the model asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCall {
    /// The provider's id of the call, which the tool's answer names.
    pub id: String,
    /// The function.
    pub name: String,
    /// Its arguments: JSON text, as the model wrote it.
    pub arguments: String,
}

/// A piece of a tool call as a reply streams it: the first piece of a call carries its id
/// and name, each piece more of its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallPiece {
    /// Which of the reply's calls (0, 1, ...).
    pub index: u32,
    /// The call's id (first piece).
    pub id: Option<String>,
    /// The function's name (first piece).
    pub name: Option<String>,
    /// More of the arguments.
    pub arguments: String,
}

/// The tools a model may call, in OpenAI's terms (`tools`, `tool_choice`).
#[derive(Debug, Clone, PartialEq)]
pub struct Tools {
    /// The tool definitions (`{"type": "function", "function": {...}}`).
    pub definitions: Vec<serde_json::Value>,
    /// `auto`, `none`, `required` or a named function; `None`: the provider's default.
    pub choice: Option<serde_json::Value>,
    /// Whose tools they are. The caller's go to every target as given (a target that
    /// takes no tools refuses); the server's own (plugins) go only to targets that take
    /// tools, and the server runs their calls instead of relaying them.
    pub owner: ToolOwner,
}

/// Who runs the calls of a prompt's tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolOwner {
    /// The caller, who passed them (OpenAI-compatible API).
    Caller,
    /// The server: they are the tenant's plugins.
    Server,
}

/// What to generate.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    /// The provider's model name.
    pub model: String,
    /// The conversation so far, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// Most tokens to generate.
    pub max_tokens: Option<i32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Tools the model may call (OpenAI-style providers and Ollama; the local models refuse).
    pub tools: Option<Tools>,
    /// When set, the answer must be JSON that follows this schema (structured output:
    /// `response_format` for OpenAI-compatible providers, `format` for Ollama; the
    /// server's own models do not enforce it, so callers still check the answer).
    pub answer_schema: Option<AnswerSchema>,
}

/// A JSON schema an answer must follow.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerSchema {
    /// Its name (`[a-zA-Z0-9_-]`, as OpenAI asks).
    pub name: &'static str,
    /// The JSON schema (strict: every property required, no others allowed).
    pub schema: serde_json::Value,
}

/// Tokens counted by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Generated tokens.
    pub completion_tokens: i64,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model finished.
    Stop,
    /// The token limit was reached.
    Length,
    /// The provider's content filter stopped it.
    ContentFilter,
    /// The model asked for a tool.
    ToolCalls,
    /// The client went away or cancelled.
    Cancelled,
}

impl FinishReason {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ContentFilter => "content_filter",
            Self::ToolCalls => "tool_calls",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One event of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    /// More text.
    Text(String),
    /// More of a tool call.
    ToolCall(ToolCallPiece),
    /// The end: what it cost and why it stopped.
    Finished {
        /// Token counts, when the provider reports them.
        usage: Option<Usage>,
        /// Why it stopped.
        finish_reason: FinishReason,
    },
}

/// A reply as it arrives.
pub type DeltaStream = Pin<Box<dyn Stream<Item = Result<Delta, LlmError>> + Send>>;

/// Why a provider call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    /// The provider refused the credential.
    #[error("the model provider refused the credential: {0}")]
    Unauthorized(String),
    /// The provider's rate limit was hit.
    #[error("the model provider's rate limit was reached")]
    RateLimited {
        /// How long the provider asked to wait.
        retry_after: Option<Duration>,
    },
    /// The provider rejected the request (unknown model, too long, ...).
    #[error("the model provider rejected the request: {0}")]
    Rejected(String),
    /// The provider failed.
    #[error("the model provider failed (HTTP {status}): {message}")]
    Upstream {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The provider could not be reached.
    #[error("the model provider is unreachable: {0}")]
    Unreachable(String),
    /// The provider answered something unreadable.
    #[error("the model provider sent an unreadable answer: {0}")]
    Protocol(String),
}

impl LlmError {
    /// The same failure, naming the provider it came from and, when one of its settings
    /// is at fault, how to fix it.
    #[must_use]
    pub fn at(self, provider: &str) -> Self {
        match self {
            LlmError::Unauthorized(message) => LlmError::Unauthorized(format!(
                "{message} (fix the credential of model provider {provider:?} with \
                 AdminService.SetProvider)"
            )),
            LlmError::Rejected(message) => {
                LlmError::Rejected(format!("{message} (model provider {provider:?})"))
            }
            other => other,
        }
    }
}

/// Vectors a provider made.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// One vector per text, in the texts' order.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens the provider counted.
    pub prompt_tokens: i64,
}

/// A service that generates chat replies (and, where it has them, embeddings).
#[async_trait::async_trait]
pub trait ChatProvider: Send + Sync {
    /// Starts generating a reply to `request`.
    ///
    /// # Errors
    /// [`LlmError`] when the provider cannot be asked or refuses before answering.
    async fn stream(&self, request: &ChatRequest) -> Result<DeltaStream, LlmError>;

    /// Embeds `texts` with `model`.
    ///
    /// # Errors
    /// [`LlmError::Rejected`] from services without embeddings; [`LlmError`] when the
    /// provider cannot be asked or refuses.
    async fn embed(&self, model: &str, texts: &[String]) -> Result<Embeddings, LlmError> {
        let _ = (model, texts);
        Err(LlmError::Rejected(
            "this model provider serves no embeddings here".to_owned(),
        ))
    }
}
