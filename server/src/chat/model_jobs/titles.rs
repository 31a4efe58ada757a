//! The title job: after the first reply of an untitled conversation, the model that
//! answered (or the tenant's `title` alias, when it has one) is asked for a short title,
//! which replaces the provisional one (the first line of the message) unless the user has
//! renamed the conversation meanwhile. The prompt passes the PHI guard like any other, the
//! call's tokens count as the user's usage, and the title change is audited.

use serde_json::json;
use uuid::Uuid;

use crate::chat::{
    ChatError, Conversations, GenerationOptions, Generator, Recent, complete,
    model_jobs::run_as_user, turn::generate::Framing,
};
use crate::{
    audit::{self, NewEvent},
    caller::Principal,
    crypto::{CONVERSATION_TITLES, Sealer},
    jobs::{Handled, Job, JobError, JobHandler, misrouted},
    llm::Providers,
    store::{self, Database},
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
    accounting: crate::usage::Accounting,
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
        accounting: crate::usage::Accounting,
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
        let recent = Recent::without_history(current);
        let turn = self
            .generator
            .assemble(principal, recent, &first.content, &options, Framing::Title)
            .await?;
        let reply = complete(&turn.prompt).await?;
        let Some(title) = cleaned(&reply.content) else {
            return Ok(Handled::Skipped("the model gave no title"));
        };

        let mut tx = self.db.begin_tenant(principal.tenant).await?;
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
        let usage = self.accounting.event(
            principal.user,
            &reply.model_used,
            reply.usage,
            reply.latency_ms,
        );
        store::usage::record(&mut tx, std::slice::from_ref(&usage)).await?;
        let details = json!({ "model_used": reply.model_used, "user": principal.user });
        let event = NewEvent::by_system(
            JOB,
            "conversation.title",
            "conversation",
            conversation,
            details,
        )
        .with_phi(turn.prompt.phi);
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
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
        run_as_user(
            &self.db,
            *tenant,
            *user,
            "the PHI policy keeps the message from the title model",
            |principal| async move { self.title(&principal, *conversation, *message, model).await },
        )
        .await
    }
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
