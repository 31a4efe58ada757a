//! Generating a reply: the prompt is assembled from the profile's instructions, the recent
//! turns and the new message; the tenant's PHI policy is applied when the provider is off
//! the premises (pass, redact with placeholders restored in the answer, or refuse); the
//! provider streams the reply; the user's message and the reply are stored together,
//! sealed, once the reply is complete (or cancelled).

use time::OffsetDateTime;
use tokio_stream::StreamExt;
use uuid::Uuid;

use super::{ChatError, Conversations, Message, MessageRole, profile};
use crate::{
    auth::Principal,
    llm::{ChatMessage, ChatRequest, Delta, FinishReason, Providers, ResolvedModel, Usage},
    privacy::{PhiGuard, PhiPolicy, Redactions},
};

/// Earlier messages sent along with a new one.
const HISTORY: u32 = 20;
/// Longest message accepted, in characters.
pub const MAX_CONTENT_CHARS: usize = 100_000;
/// Separates messages while the PHI guard reads them as one text.
const SEPARATOR: char = '\u{1e}';

/// Settings of one generation.
#[derive(Debug, Clone, Default)]
pub struct GenerationOptions {
    /// `provider/model`; empty: the conversation's model.
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

/// A turn ready to go to the provider.
pub struct PreparedTurn {
    /// The conversation.
    pub conversation: Uuid,
    /// Id the user's message will be stored under.
    pub user_message_id: Uuid,
    /// Id the reply will be stored under.
    pub reply_id: Uuid,
    /// The user's message as written.
    pub content: String,
    /// What the provider is asked.
    pub request: ChatRequest,
    /// The model to ask.
    pub model: ResolvedModel,
    /// Placeholders to put back into the reply (redact policy).
    pub redactions: Option<Redactions>,
    /// Whether PHI was found in what goes out.
    pub phi: bool,
    /// The conversation has no title yet: the first message gives it one.
    pub untitled: bool,
}

/// A reply as it ended.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Its text (placeholders restored).
    pub content: String,
    /// Token counts.
    pub usage: Usage,
    /// Why it ended.
    pub finish_reason: FinishReason,
}

/// Generates replies in conversations.
#[derive(Clone)]
pub struct Generator {
    conversations: Conversations,
    providers: Providers,
    guard: PhiGuard,
}

impl Generator {
    /// Replies in `conversations`, asking `providers`.
    pub fn new(conversations: Conversations, providers: Providers) -> Self {
        Self {
            conversations,
            providers,
            guard: PhiGuard::default(),
        }
    }

    /// The provider calls' settings: checks the message, resolves the model, assembles the
    /// prompt and applies the PHI policy.
    ///
    /// # Errors
    /// [`ChatError::Invalid`] for bad input, [`ChatError::NotFound`],
    /// [`ChatError::PhiRefused`] when the policy forbids sending the prompt, or a failure.
    pub async fn prepare(
        &self,
        principal: &Principal,
        conversation: Uuid,
        content: &str,
        options: &GenerationOptions,
    ) -> Result<PreparedTurn, ChatError> {
        if content.trim().is_empty() {
            return Err(ChatError::invalid("content", "must not be empty"));
        }
        if content.chars().count() > MAX_CONTENT_CHARS {
            return Err(ChatError::invalid(
                "content",
                format!("must be at most {MAX_CONTENT_CHARS} characters"),
            ));
        }
        if options.stop.len() > 4 {
            return Err(ChatError::invalid(
                "options.stop",
                "at most 4 stop sequences",
            ));
        }
        let current = self.conversations.get(principal, conversation).await?;
        let reference = [options.model.as_str(), current.model.as_str()]
            .into_iter()
            .find(|m| !m.is_empty())
            .ok_or_else(|| {
                ChatError::invalid(
                    "options.model",
                    "name a model as \"provider/model\" here or on the conversation",
                )
            })?;
        let model = self.providers.resolve(principal, reference).await?;
        let history = self
            .conversations
            .recent_messages(principal, conversation, HISTORY)
            .await?;
        let mut turns: Vec<(MessageRole, String)> =
            history.into_iter().map(|m| (m.role, m.content)).collect();
        turns.push((MessageRole::User, content.to_owned()));

        let joined = turns
            .iter()
            .map(|(_, text)| text.as_str())
            .collect::<Vec<_>>()
            .join(&SEPARATOR.to_string());
        let policy = if model.on_premises {
            PhiPolicy::Allow
        } else {
            self.conversations.phi_policy(principal).await?
        };
        let guarded =
            self.guard
                .apply(policy, &joined)
                .map_err(|refused| ChatError::PhiRefused {
                    kinds: refused.kinds.iter().map(|k| k.as_str()).collect(),
                    provider: model.provider.clone(),
                })?;
        let phi = guarded.phi_detected();
        let (outgoing, redactions) = guarded.into_parts();
        let mut messages = vec![ChatMessage {
            role: "system",
            content: profile(&current.profile)
                .map(|p| p.system_prompt)
                .unwrap_or_default()
                .to_owned(),
        }];
        messages.extend(
            turns
                .iter()
                .zip(outgoing.split(SEPARATOR))
                .map(|((role, _), text)| ChatMessage {
                    role: role.as_str(),
                    content: text.to_owned(),
                }),
        );
        Ok(PreparedTurn {
            conversation,
            user_message_id: Uuid::now_v7(),
            reply_id: Uuid::now_v7(),
            content: content.to_owned(),
            request: ChatRequest {
                model: model.model.clone(),
                messages,
                temperature: options.temperature,
                top_p: options.top_p,
                max_tokens: options.max_tokens,
                stop: options.stop.clone(),
            },
            model,
            redactions: (!redactions.is_empty()).then_some(redactions),
            phi,
            untitled: current.title.is_empty(),
        })
    }

    /// Stores the user's message and the reply together (sealed), titling an untitled
    /// conversation after its first message.
    ///
    /// # Errors
    /// [`ChatError`] when a store fails.
    pub async fn finish(
        &self,
        principal: &Principal,
        turn: &PreparedTurn,
        reply: &Reply,
    ) -> Result<(Message, Message), ChatError> {
        let now = OffsetDateTime::now_utc();
        let user = Message {
            id: turn.user_message_id,
            conversation_id: turn.conversation,
            role: MessageRole::User,
            content: turn.content.clone(),
            model_used: String::new(),
            prompt_tokens: 0,
            completion_tokens: 0,
            cost_micros: 0,
            finish_reason: String::new(),
            created_at: now,
        };
        let assistant = Message {
            id: turn.reply_id,
            conversation_id: turn.conversation,
            role: MessageRole::Assistant,
            content: reply.content.clone(),
            model_used: format!("{}/{}", turn.model.provider, turn.model.model),
            prompt_tokens: reply.usage.prompt_tokens,
            completion_tokens: reply.usage.completion_tokens,
            cost_micros: 0,
            finish_reason: reply.finish_reason.as_str().to_owned(),
            created_at: now,
        };
        let title = turn.untitled.then(|| title_from(&turn.content));
        self.conversations
            .store_turn(principal, &[&user, &assistant], title.as_deref())
            .await?;
        Ok((user, assistant))
    }
}

/// A title from the first line of a message: at most 60 characters.
fn title_from(content: &str) -> String {
    let line = content
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim();
    let mut title: String = line.chars().take(60).collect();
    if line.chars().count() > 60 {
        title.push('…');
    }
    title
}

/// Asks the provider and waits for the whole reply.
///
/// # Errors
/// [`ChatError::Llm`] when the provider fails.
pub async fn complete(turn: &PreparedTurn) -> Result<Reply, ChatError> {
    let mut stream = turn.model.client.stream(&turn.request).await?;
    let mut text = String::new();
    let mut usage = Usage::default();
    let mut finish_reason = FinishReason::Stop;
    while let Some(delta) = stream.next().await {
        match delta? {
            Delta::Text(piece) => text.push_str(&piece),
            Delta::Finished {
                usage: counted,
                finish_reason: reason,
            } => {
                usage = counted.unwrap_or_default();
                finish_reason = reason;
            }
        }
    }
    let content = match &turn.redactions {
        Some(redactions) => redactions.restore(&text),
        None => text,
    };
    Ok(Reply {
        content,
        usage,
        finish_reason,
    })
}
