//! A prompt ready for the model providers: one request per target of the route, each as
//! the tenant's PHI policy allows it (targets on the premises get the turns as written,
//! targets off the premises get them passed, redacted or not at all), then asked in the
//! route's order with retries, fallback and circuit breakers.
//!
//! Conversation turns and stateless calls (the OpenAI-compatible API without a
//! conversation) build their prompt here alike, so the same guard applies to both.

use tokio_stream::StreamExt;

use crate::chat::{ChatError, MessageRole, ToolUse};
use crate::{
    llm::{
        AnswerSchema, ChatMessage, ChatRequest, CircuitBreaker, Delta, DeltaStream, FinishReason,
        ResolvedModel, Route, ToolCall, ToolCallPiece, ToolOwner, Tools, Usage, router,
    },
    privacy::{PhiGuard, PhiPolicy, PhiRefused, Redactions},
};

/// Separates messages while the PHI guard reads them as one text.
const SEPARATOR: char = '\u{1e}';

/// Settings of one generation.
#[derive(Debug, Clone, Default)]
pub struct GenerationOptions {
    /// Alias or `provider/model`; empty: the conversation's model.
    pub model: String,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// Most tokens to generate.
    pub max_tokens: Option<i32>,
    /// Stop sequences (at most 4).
    pub stop: Vec<String>,
}

/// One message of a prompt after the instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// Who wrote it.
    pub role: MessageRole,
    /// Its text.
    pub text: String,
    /// For an assistant message: the tools it called.
    pub tool_calls: Vec<ToolCall>,
    /// For a tool message: the call it answers.
    pub tool_call_id: Option<String>,
}

impl Turn {
    /// A message of plain text.
    pub fn new(role: MessageRole, text: impl Into<String>) -> Self {
        Self {
            role,
            text: text.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// What the PHI guard reads of it, in order: its text, then each call's arguments.
    fn guarded_parts(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.text.as_str())
            .chain(self.tool_calls.iter().map(|c| c.arguments.as_str()))
    }

    /// The message to send, its guarded parts taken from `parts` (in the order of
    /// [`Self::guarded_parts`]).
    fn message<'p>(&self, parts: &mut impl Iterator<Item = &'p str>) -> ChatMessage {
        let content = parts.next().unwrap_or_default().to_owned();
        let tool_calls = self
            .tool_calls
            .iter()
            .map(|call| ToolCall {
                arguments: parts.next().unwrap_or_default().to_owned(),
                ..call.clone()
            })
            .collect();
        ChatMessage {
            role: self.role.as_str(),
            content,
            tool_calls,
            tool_call_id: self.tool_call_id.clone(),
        }
    }
}

/// What a prompt is made of, before the PHI policy is applied.
pub(in crate::chat) struct Draft<'a> {
    /// Where it goes.
    pub route: Route,
    /// The tenant's circuit breakers.
    pub breaker: CircuitBreaker,
    /// The tenant's (or profile's) PHI policy for targets off the premises.
    pub policy: PhiPolicy,
    /// The instructions sent first.
    pub system: String,
    /// The turns after the instructions, oldest first; the guard reads all of them.
    pub turns: &'a [Turn],
    /// Sampling settings.
    pub options: &'a GenerationOptions,
    /// Tools the model may call.
    pub tools: Option<Tools>,
    /// The JSON schema the answer must follow, if any.
    pub answer_schema: Option<AnswerSchema>,
}

/// A prompt ready to send.
pub struct Prompt {
    /// Whether PHI was found in it.
    pub phi: bool,
    route: Route,
    breaker: CircuitBreaker,
    /// What it was built from, to build the next round of a turn that calls tools.
    policy: PhiPolicy,
    system: String,
    turns: Vec<Turn>,
    options: GenerationOptions,
    tools: Option<Tools>,
    answer_schema: Option<AnswerSchema>,
    /// Per target of the route: what it is asked, or `None` when the PHI policy keeps the
    /// prompt from it.
    requests: Vec<Option<ChatRequest>>,
    /// Placeholders to put back into replies of targets off the premises.
    redactions: Option<Redactions>,
}

impl Prompt {
    /// Applies the PHI policy to `draft` for each target of its route.
    ///
    /// # Errors
    /// [`ChatError::PhiRefused`] when the policy keeps the prompt from every target.
    pub(in crate::chat) fn build(guard: &PhiGuard, draft: Draft<'_>) -> Result<Self, ChatError> {
        let Draft {
            route,
            breaker,
            policy,
            system,
            turns,
            options,
            tools,
            answer_schema,
        } = draft;
        let messages_of = |parts: &mut dyn Iterator<Item = &str>| -> Vec<ChatMessage> {
            let mut parts = parts;
            std::iter::once(ChatMessage {
                role: "system",
                content: system.clone(),
                ..ChatMessage::default()
            })
            .chain(turns.iter().map(|turn| turn.message(&mut parts)))
            .collect()
        };
        let request_of = |messages: Vec<ChatMessage>, target: &ResolvedModel| ChatRequest {
            model: target.model.clone(),
            messages,
            temperature: options.temperature,
            top_p: options.top_p,
            max_tokens: options.max_tokens,
            stop: options.stop.clone(),
            tools: tools.clone().filter(|tools| match tools.owner {
                ToolOwner::Caller => true,
                ToolOwner::Server => target.takes_tools,
            }),
            answer_schema: answer_schema.clone(),
        };

        // The guard reads the whole prompt as one text; targets off the premises get it
        // as the policy says, targets on the premises as written.
        // A separator written by the caller would shift the parts: it becomes U+FFFD in
        // what leaves the premises.
        let joined = turns
            .iter()
            .flat_map(Turn::guarded_parts)
            .map(|part| part.replace(SEPARATOR, "\u{fffd}"))
            .collect::<Vec<_>>()
            .join(&SEPARATOR.to_string());
        // A caller's tool definitions are JSON: they cannot be redacted in place, so PHI in
        // them keeps the prompt from targets off the premises unless the policy allows it.
        // The server's own (plugins' manifests) are configuration an admin approved, like
        // the profile's instructions: a contact address in a description must not stop
        // every turn.
        let tool_findings = tools
            .as_ref()
            .filter(|tools| tools.owner == ToolOwner::Caller)
            .map_or_else(Vec::new, |tools| {
                let text = serde_json::json!([tools.definitions, tools.choice]).to_string();
                guard.detect(&text)
            });
        let phi = !guard.detect(&joined).is_empty() || !tool_findings.is_empty();
        let off_premises = route.targets.iter().find(|t| !t.on_premises);
        let guarded = off_premises.map(|_| {
            if policy != PhiPolicy::Allow && !tool_findings.is_empty() {
                let mut kinds: Vec<_> = tool_findings.iter().map(|f| f.kind).collect();
                kinds.sort();
                kinds.dedup();
                Err(PhiRefused { kinds })
            } else {
                guard.apply(policy, &joined)
            }
        });
        let (outgoing, redactions, refused) = match guarded {
            Some(Ok(guarded)) => {
                let (text, redactions) = guarded.into_parts();
                (
                    Some(text),
                    (!redactions.is_empty()).then_some(redactions),
                    None,
                )
            }
            Some(Err(refused)) => (None, None, Some(refused)),
            None => (None, None, None),
        };
        let requests: Vec<Option<ChatRequest>> = route
            .targets
            .iter()
            .map(|target| {
                if target.on_premises {
                    let mut parts = turns.iter().flat_map(Turn::guarded_parts);
                    Some(request_of(messages_of(&mut parts), target))
                } else {
                    let text = outgoing.as_deref()?;
                    Some(request_of(messages_of(&mut text.split(SEPARATOR)), target))
                }
            })
            .collect();
        if requests.iter().all(Option::is_none) {
            return Err(ChatError::PhiRefused {
                kinds: refused
                    .map(|r| r.kinds.iter().map(|k| k.as_str()).collect())
                    .unwrap_or_default(),
                provider: off_premises.map(|t| t.provider.clone()).unwrap_or_default(),
            });
        }
        Ok(Self {
            phi,
            route,
            breaker,
            policy,
            system,
            turns: turns.to_vec(),
            options: options.clone(),
            tools,
            answer_schema,
            requests,
            redactions,
        })
    }

    /// The next round of a turn that calls the server's tools: this prompt followed by
    /// `more` (the model's calls and the tools' answers), the PHI policy applied to the
    /// whole again (placeholders are numbered in order of appearance, so what this
    /// prompt redacted keeps its placeholder), with the tools still offered when
    /// `offer_tools`, else without them (so the model answers).
    ///
    /// # Errors
    /// [`ChatError::PhiRefused`] when the policy now keeps the prompt from every target.
    pub(in crate::chat) fn followed_by(
        &self,
        guard: &PhiGuard,
        more: Vec<Turn>,
        offer_tools: bool,
    ) -> Result<Self, ChatError> {
        let mut turns = self.turns.clone();
        turns.extend(more);
        Self::build(
            guard,
            Draft {
                route: self.route.clone(),
                breaker: self.breaker.clone(),
                policy: self.policy,
                system: self.system.clone(),
                turns: &turns,
                options: &self.options,
                tools: self.tools.clone().filter(|_| offer_tools),
                answer_schema: self.answer_schema.clone(),
            },
        )
    }

    /// Whether the server runs the calls of this prompt's tools (they are plugins): then
    /// they are not relayed to the client.
    pub fn runs_tools(&self) -> bool {
        self.tools
            .as_ref()
            .is_some_and(|tools| tools.owner == ToolOwner::Server)
    }

    /// Asks the route's targets in order (retries and fallback as the route says).
    ///
    /// # Errors
    /// [`ChatError::Llm`] with the last failure when no target answered.
    pub async fn open(&self) -> Result<OpenedReply<'_>, ChatError> {
        let candidates: Vec<_> = self
            .route
            .targets
            .iter()
            .zip(&self.requests)
            .filter_map(|(target, request)| Some((target, request.clone()?)))
            .collect();
        let (chosen, stream) = router::open(
            &candidates,
            self.route.attempt_timeout,
            self.route.max_retries,
            &self.breaker,
        )
        .await?;
        let target = candidates[chosen].0;
        Ok(OpenedReply {
            stream,
            model_used: format!("{}/{}", target.provider, target.model),
            redactions: if target.on_premises {
                None
            } else {
                self.redactions.as_ref()
            },
        })
    }
}

/// A reply stream opened on one of a prompt's targets.
pub struct OpenedReply<'t> {
    /// The deltas.
    pub stream: DeltaStream,
    /// `provider/model` that answers.
    pub model_used: String,
    /// Placeholders to restore in what it says (when it is off the premises).
    pub redactions: Option<&'t Redactions>,
}

/// A reply as it ended.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Its text (placeholders restored).
    pub content: String,
    /// `provider/model` that produced it.
    pub model_used: String,
    /// Time from asking to the end of the reply.
    pub latency_ms: u32,
    /// The tools it called (placeholders restored in their arguments).
    pub tool_calls: Vec<ToolCall>,
    /// Token counts.
    pub usage: Usage,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// The server's tools it called on the way, in order (kept with the reply).
    pub tools_used: Vec<ToolUse>,
}

/// Tool calls as their pieces arrive.
#[derive(Default)]
pub(in crate::chat) struct ToolCalls(Vec<ToolCall>);

impl ToolCalls {
    /// Adds a piece to its call.
    pub fn add(&mut self, piece: &ToolCallPiece) {
        let index = piece.index as usize;
        if self.0.len() <= index {
            self.0.resize_with(index + 1, ToolCall::default);
        }
        let call = &mut self.0[index];
        if let Some(id) = &piece.id {
            call.id.clone_from(id);
        }
        if let Some(name) = &piece.name {
            call.name.clone_from(name);
        }
        call.arguments.push_str(&piece.arguments);
    }

    /// The calls, with `restore` applied to their arguments.
    pub fn finish(self, restore: impl Fn(&str) -> String) -> Vec<ToolCall> {
        self.0
            .into_iter()
            .map(|call| ToolCall {
                arguments: restore(&call.arguments),
                ..call
            })
            .collect()
    }
}

/// Asks the prompt's targets and waits for the whole reply.
///
/// # Errors
/// [`ChatError::Llm`] when no target answered or the reply broke off.
pub async fn complete(prompt: &Prompt) -> Result<Reply, ChatError> {
    let started_at = std::time::Instant::now();
    let mut opened = prompt.open().await?;
    let mut text = String::new();
    let mut calls = ToolCalls::default();
    let mut usage = Usage::default();
    let mut finish_reason = FinishReason::Stop;
    while let Some(delta) = opened.stream.next().await {
        match delta? {
            Delta::Text(piece) => text.push_str(&piece),
            Delta::ToolCall(piece) => calls.add(&piece),
            Delta::Finished {
                usage: counted,
                finish_reason: reason,
            } => {
                usage = counted.unwrap_or_default();
                finish_reason = reason;
            }
        }
    }
    let restore = |text: &str| match opened.redactions {
        Some(redactions) => redactions.restore(text),
        None => text.to_owned(),
    };
    Ok(Reply {
        content: restore(&text),
        tool_calls: calls.finish(restore),
        model_used: opened.model_used,
        latency_ms: u32::try_from(started_at.elapsed().as_millis()).unwrap_or(u32::MAX),
        usage,
        finish_reason,
        tools_used: Vec::new(),
    })
}
