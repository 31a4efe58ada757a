//! The title job: after the first reply of an untitled conversation, the model that
//! answered (or the tenant's `title` alias, when it has one) is asked for a short title,
//! which replaces the provisional one (the first line of the message) unless the user has
//! renamed the conversation meanwhile. The prompt passes the PHI guard like any other, the
//! call's tokens count as the user's usage, and the title change is audited.

use serde_json::json;
use uuid::Uuid;

use super::{
    ChatError, Conversations, GenerationOptions, Generator, Recent, complete, generate::Framing,
};
use crate::{
    audit::{self, CallOrigin, NewEvent},
    auth::Principal,
    crypto::{CONVERSATION_TITLES, Sealer},
    jobs::{Handled, Job, JobError, JobHandler, misrouted},
    llm::{LlmError, Providers},
    store::{self, Database, StoreError, usage::UsageEvent},
    tenancy::{self, TenantId},
};

/// The alias a tenant may configure for titles (e.g. a small, cheap model).
const TITLE_ALIAS: &str = "title";
/// Longest title kept, in characters.
const MAX_TITLE: usize = 80;
/// Most tokens a title may take.
const TITLE_TOKENS: i32 = 32;
/// Names this job in the audit trail.
const JOB: &str = "title_conversation";

/// Runs title jobs.
pub struct Titler {
    db: Database,
    sealer: Sealer,
    conversations: Conversations,
    generator: Generator,
    providers: Providers,
    accounting: super::Accounting,
}

impl Titler {
    /// Titles conversations in `db` (sealed with `sealer`) through `generator`, checking
    /// the tenant's aliases in `providers` and pricing with `accounting`.
    pub fn new(
        db: Database,
        sealer: Sealer,
        conversations: Conversations,
        generator: Generator,
        providers: Providers,
        accounting: super::Accounting,
    ) -> Self {
        Self {
            db,
            sealer,
            conversations,
            generator,
            providers,
            accounting,
        }
    }

    async fn title(
        &self,
        principal: &Principal,
        conversation: Uuid,
        message: Uuid,
        model: &str,
    ) -> Result<Handled, ChatError> {
        let current = self.conversations.get(principal, conversation).await?;
        let first = self
            .conversations
            .message(principal, conversation, message)
            .await?;
        let reference = if self.providers.has_alias(principal, TITLE_ALIAS).await? {
            TITLE_ALIAS
        } else {
            model
        };
        let options = GenerationOptions {
            model: reference.to_owned(),
            temperature: Some(0.2),
            max_tokens: Some(TITLE_TOKENS),
            ..GenerationOptions::default()
        };
        let recent = Recent {
            conversation: current,
            messages: Vec::new(),
            rows: Vec::new(),
        };
        let turn = self
            .generator
            .assemble(principal, recent, &first.content, &options, Framing::Title)
            .await?;
        let reply = complete(&turn).await?;
        let Some(title) = cleaned(&reply.content) else {
            return Ok(Handled::Skipped("the model gave no title"));
        };

        let mut tx = tenancy::begin(&self.db, principal.tenant).await?;
        match store::conversations::lock_title_automatic(&mut tx, conversation).await? {
            None => return Ok(Handled::Skipped("the conversation is gone")),
            Some(false) => return Ok(Handled::Skipped("the user named the conversation")),
            Some(true) => {}
        }
        let sealed = self
            .sealer
            .seal(
                &mut tx,
                principal.tenant,
                CONVERSATION_TITLES.table,
                &conversation.to_string(),
                title.as_bytes(),
            )
            .await?;
        store::conversations::set_title(&mut tx, principal.user, conversation, &sealed, true)
            .await?;
        let usage = UsageEvent {
            id: Uuid::now_v7(),
            user_id: principal.user,
            model: reply.model_used.clone(),
            prompt_tokens: reply.usage.prompt_tokens,
            completion_tokens: reply.usage.completion_tokens,
            cost_micros: self.accounting.cost_micros(
                &reply.model_used,
                reply.usage.prompt_tokens,
                reply.usage.completion_tokens,
            ),
            latency_ms: i32::try_from(reply.latency_ms).unwrap_or(i32::MAX),
        };
        store::usage::record(&mut tx, principal.tenant, &usage).await?;
        let details = json!({ "model_used": reply.model_used, "user": principal.user });
        let event = NewEvent::by_system(
            JOB,
            "conversation.title",
            "conversation",
            conversation,
            details,
        )
        .with_phi(turn.phi);
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Handled::Done)
    }
}

impl JobHandler for Titler {
    async fn handle(&self, job: &Job) -> Result<Handled, JobError> {
        let Job::TitleConversation {
            tenant,
            user,
            conversation,
            message,
            model,
        } = job
        else {
            return Err(misrouted("the titler", job));
        };
        let principal = Principal {
            tenant: TenantId(*tenant),
            tenant_slug: String::new(),
            user: *user,
            email: String::new(),
            api_key: None,
            session: None,
            roles: Vec::new(),
            origin: CallOrigin::default(),
        };
        if !tenancy::is_active(&self.db, principal.tenant)
            .await
            .map_err(retry)?
        {
            return Ok(Handled::Skipped("the tenant is not active"));
        }
        match self.title(&principal, *conversation, *message, model).await {
            Ok(handled) => Ok(handled),
            Err(ChatError::NotFound) => Ok(Handled::Skipped("the conversation is gone")),
            Err(ChatError::BudgetExhausted { .. }) => {
                Ok(Handled::Skipped("the user's token budget is used up"))
            }
            Err(ChatError::PhiRefused { .. }) => Ok(Handled::Skipped(
                "the PHI policy keeps the message from the title model",
            )),
            Err(
                err @ ChatError::Llm(
                    LlmError::Unauthorized(_) | LlmError::Rejected(_) | LlmError::Protocol(_),
                ),
            ) => Err(JobError::Permanent(err.to_string())),
            Err(err @ (ChatError::Llm(_) | ChatError::Store(_) | ChatError::Cache(_))) => {
                Err(retry(err))
            }
            Err(err) => Err(JobError::Permanent(err.to_string())),
        }
    }
}

fn retry(err: impl std::fmt::Display) -> JobError {
    JobError::Retry(err.to_string())
}

/// The title in a model's answer: its first non-empty line without quotes, a `Title:`
/// label or a final full stop, at most [`MAX_TITLE`] characters.
fn cleaned(answer: &str) -> Option<String> {
    let line = answer.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = line
        .strip_prefix("Title:")
        .or_else(|| line.strip_prefix("title:"))
        .unwrap_or(line)
        .trim()
        .trim_matches(|c| matches!(c, '"' | '\'' | '“' | '”' | '*' | '#'))
        .trim_end_matches('.')
        .trim();
    if line.is_empty() {
        return None;
    }
    let mut title: String = line.chars().take(MAX_TITLE).collect();
    if line.chars().count() > MAX_TITLE {
        title.push('…');
    }
    Some(title)
}

#[cfg(test)]
mod tests {
    use super::cleaned;

    #[test]
    fn titles_are_cleaned_of_labels_quotes_and_full_stops() {
        assert_eq!(
            cleaned("\n  Title: \"Quarterly budget review.\"\nMore text").as_deref(),
            Some("Quarterly budget review")
        );
        assert_eq!(
            cleaned("**Rust lifetimes**").as_deref(),
            Some("Rust lifetimes")
        );
        assert_eq!(cleaned("  \n \"\" "), None);
        assert_eq!(cleaned(&"x".repeat(100)).unwrap().chars().count(), 81);
    }
}
