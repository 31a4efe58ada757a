//! The background jobs in which a model writes memories:
//! - fact extraction (`memory.extract_model`): after a turn, the facts and preferences the
//!   user's message states become episodic memories with the message as their source
//!   ([`crate::chat::model_jobs::facts`]);
//! - summaries (`memory.summary_model`): every `memory.summary_every` messages, the recent
//!   turns are summarised into a `summary` memory of the conversation
//!   ([`crate::chat::model_jobs::summaries`]).
//!
//! The prompt passes the PHI guard like any other: where the tenant's policy refuses to
//! send PHI off the premises, a prompt holding PHI is not sent and nothing is written.
//! The call's tokens count as the user's usage as soon as it answers; what was stored is
//! audited in the same transaction. A job delivered again after it wrote its memories
//! finds them and asks nothing.

use serde_json::json;
use uuid::Uuid;

use crate::chat::{
    ChatError, Conversations, GenerationOptions, Generator, Recent, Reply, complete,
    model_jobs::facts, model_jobs::run_as_user, model_jobs::summaries, turn::generate::Framing,
};
use crate::{
    audit::{self, NewEvent},
    caller::Principal,
    jobs::{Handled, Job, JobError, JobHandler, misrouted},
    memory::{LongTermMemory, MemoryItem, MemoryKind, said_before},
    store::{self, Database},
    usage::Accounting,
};

/// Runs the jobs in which a model writes memories.
pub struct MemoryWriter {
    db: Database,
    conversations: Conversations,
    generator: Generator,
    accounting: Accounting,
    memory: LongTermMemory,
}

/// What a model's answer leaves to keep.
struct Written {
    kind: MemoryKind,
    /// Texts with their confidence.
    items: Vec<(String, f32)>,
    /// The message they come from.
    source: Uuid,
    /// The audit action.
    action: &'static str,
}

impl MemoryWriter {
    /// Reads conversations from `conversations`, asks through `generator`, accounts with
    /// `accounting`, stores in `memory` (rows in `db`).
    pub fn new(
        db: Database,
        conversations: Conversations,
        generator: Generator,
        accounting: Accounting,
        memory: LongTermMemory,
    ) -> Self {
        Self {
            db,
            conversations,
            generator,
            accounting,
            memory,
        }
    }

    /// Whether the memories of `kind` from `source` are written already.
    async fn written(
        &self,
        principal: &Principal,
        source: Uuid,
        kind: MemoryKind,
    ) -> Result<bool, ChatError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let written =
            store::memories::has_from(&mut tx, principal.user, source, kind.as_str()).await?;
        tx.commit().await?;
        Ok(written)
    }

    /// Asks `model` about `content` of `conversation`, framed as `framing`, and records
    /// the call's usage.
    async fn ask(
        &self,
        principal: &Principal,
        conversation: Uuid,
        content: &str,
        framing: Framing,
        model: &str,
        max_tokens: i32,
    ) -> Result<(Reply, bool), ChatError> {
        let current = self.conversations.get(principal, conversation).await?;
        let options = GenerationOptions {
            model: model.to_owned(),
            temperature: Some(0.0),
            max_tokens: Some(max_tokens),
            ..GenerationOptions::default()
        };
        let recent = Recent::without_history(current);
        let turn = self
            .generator
            .assemble(principal, recent, content, &options, framing)
            .await?;
        let reply = complete(&turn.prompt).await?;
        let usage = self.accounting.event(
            principal.user,
            &reply.model_used,
            reply.usage,
            reply.latency_ms,
        );
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        store::usage::record(&mut tx, std::slice::from_ref(&usage)).await?;
        tx.commit().await?;
        Ok((reply, turn.prompt.phi))
    }

    async fn extract_facts(
        &self,
        principal: &Principal,
        conversation: Uuid,
        message: Uuid,
        model: &str,
    ) -> Result<Handled, ChatError> {
        if self
            .written(principal, message, MemoryKind::Episodic)
            .await?
        {
            return Ok(Handled::Skipped("the facts were extracted before"));
        }
        let said = self
            .conversations
            .message(principal, conversation, message)
            .await?;
        let (reply, phi) = self
            .ask(
                principal,
                conversation,
                &said.content,
                Framing::Facts,
                model,
                facts::ANSWER_TOKENS,
            )
            .await?;
        let written = Written {
            kind: MemoryKind::Episodic,
            items: facts::parse(&reply.content),
            source: message,
            action: "memory.extract",
        };
        self.keep(principal, conversation, written, &reply, phi)
            .await
    }

    async fn summarize(
        &self,
        principal: &Principal,
        conversation: Uuid,
        through: Uuid,
        model: &str,
    ) -> Result<Handled, ChatError> {
        if self
            .written(principal, through, MemoryKind::Summary)
            .await?
        {
            return Ok(Handled::Skipped("the summary was written before"));
        }
        let recent = self.conversations.recent(principal, conversation).await?;
        let Some(end) = recent.messages.iter().position(|m| m.id == through) else {
            return Ok(Handled::Skipped("the summarised message is gone"));
        };
        let text = summaries::transcript(&recent.messages[..=end]);
        let (reply, phi) = self
            .ask(
                principal,
                conversation,
                &text,
                Framing::Summary,
                model,
                summaries::ANSWER_TOKENS,
            )
            .await?;
        let written = Written {
            kind: MemoryKind::Summary,
            items: summaries::cleaned(&reply.content)
                .map(|summary| (summary, 1.0))
                .into_iter()
                .collect(),
            source: through,
            action: "memory.summarize",
        };
        self.keep(principal, conversation, written, &reply, phi)
            .await
    }

    /// Stores what a model wrote with an audit event, in one transaction.
    async fn keep(
        &self,
        principal: &Principal,
        conversation: Uuid,
        written: Written,
        reply: &Reply,
        phi: bool,
    ) -> Result<Handled, ChatError> {
        let embeddings = if written.items.is_empty() {
            Vec::new()
        } else {
            let texts = written.items.iter().map(|(text, _)| text.clone()).collect();
            self.memory.embed(texts).await?
        };
        let forgotten = self
            .memory
            .forgotten_at(principal.tenant, principal.user, conversation)
            .await?;
        if said_before(written.source, forgotten) {
            return Ok(Handled::Skipped("the user forgot the conversation since"));
        }
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let kind = written.kind.as_str();
        if store::memories::has_from(&mut tx, principal.user, written.source, kind).await? {
            return Ok(Handled::Skipped("another delivery wrote them first"));
        }
        let mut stored = Vec::new();
        for ((content, confidence), embedding) in written.items.into_iter().zip(embeddings) {
            let item = MemoryItem::new(
                written.kind,
                content,
                Some(conversation),
                Some(written.source),
                confidence,
            );
            self.memory
                .store(&mut tx, principal.user, &item, 0, embedding)
                .await?;
            stored.push(item.id);
        }
        if !stored.is_empty() {
            let details = json!({
                "model_used": reply.model_used,
                "user": principal.user,
                "message": written.source,
                "memories": stored,
            });
            let event = NewEvent::by_system(
                "memory-writer",
                written.action,
                "conversation",
                conversation,
                details,
            )
            .with_phi(phi);
            audit::append(&mut tx, principal.tenant, &event).await?;
        }
        tx.commit().await?;
        Ok(if stored.is_empty() {
            Handled::Skipped("the model wrote nothing to keep")
        } else {
            Handled::Done
        })
    }
}

impl JobHandler for MemoryWriter {
    async fn handle(&self, job: &Job) -> Result<Handled, JobError> {
        match job {
            Job::ExtractFacts {
                tenant,
                user,
                conversation,
                message,
                model,
            } => {
                run_as_user(
                    &self.db,
                    *tenant,
                    *user,
                    "the PHI policy keeps the message from the extraction model",
                    |principal| async move {
                        self.extract_facts(&principal, *conversation, *message, model)
                            .await
                    },
                )
                .await
            }
            Job::SummarizeConversation {
                tenant,
                user,
                conversation,
                through,
                model,
            } => {
                run_as_user(
                    &self.db,
                    *tenant,
                    *user,
                    "the PHI policy keeps the conversation from the summary model",
                    |principal| async move {
                        self.summarize(&principal, *conversation, *through, model)
                            .await
                    },
                )
                .await
            }
            Job::TitleConversation { .. } | Job::IndexMessages { .. } => {
                Err(misrouted("the memory writer", job))
            }
        }
    }
}
