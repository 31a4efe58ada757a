//! Idempotency keys for SendMessage and StreamMessage: a client that retries a call with
//! the same key (after a timeout, a dropped connection) gets the messages the first call
//! stored instead of a second generation. A key is the caller's own, kept a day; while the
//! first call runs, a retry is told so (`ABORTED`); a failed call releases its key.

use std::time::Duration;

use uuid::Uuid;

use crate::chat::{ChatError, Conversations, Message};
use crate::{
    cache::{Cache, Claimed},
    caller::Principal,
};

/// How long a key is remembered.
const KEY_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest key accepted.
const MAX_KEY_CHARS: usize = 128;

/// Claims and settles idempotency keys.
#[derive(Clone)]
pub struct Idempotency {
    cache: Cache,
    conversations: Conversations,
}

/// A key claimed by a call: kept with what the call stored, or released when it failed.
/// A claim dropped unsettled (the call dropped before the model answered: from then on
/// the turn is stored on a task the call cannot cancel) releases its key in the
/// background, so a retry is not refused for a day.
pub struct Claim {
    idempotency: Idempotency,
    principal: Principal,
    key: String,
    settled: bool,
}

impl Claim {
    /// Records the stored (user message, reply) under the key.
    pub async fn keep(mut self, stored: (Uuid, Uuid)) {
        let (tenant, user) = (self.principal.tenant, self.principal.user);
        let kept = self
            .idempotency
            .cache
            .complete_idempotency_key(tenant, user, &self.key, stored, KEY_TTL)
            .await;
        if let Err(err) = kept {
            tracing::warn!(error = %err, "idempotency key left to expire");
        }
        self.settled = true;
    }

    /// Releases the key after a failure, so a retry runs again. Dropped halfway, the
    /// claim still releases it.
    pub async fn release(mut self) {
        release(&self.idempotency.cache, &self.principal, &self.key).await;
        self.settled = true;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (cache, principal, key) = (
                self.idempotency.cache.clone(),
                self.principal.clone(),
                std::mem::take(&mut self.key),
            );
            runtime.spawn(async move { release(&cache, &principal, &key).await });
        }
    }
}

async fn release(cache: &Cache, principal: &Principal, key: &str) {
    if let Err(err) = cache
        .release_idempotency_key(principal.tenant, principal.user, key)
        .await
    {
        tracing::warn!(error = %err, "idempotency key left to expire");
    }
}

/// What a call with a key should do.
pub enum Outcome {
    /// Generate, then keep or release the claim (no key: nothing to settle).
    Run(Option<Box<Claim>>),
    /// Answer with what the first call stored: (user message, reply).
    Replay(Box<(Message, Message)>),
}

impl Idempotency {
    /// Keys in `cache`; replays read from `conversations`.
    pub fn new(cache: Cache, conversations: Conversations) -> Self {
        Self {
            cache,
            conversations,
        }
    }

    /// Claims `key` (empty: none) for a call in `conversation`.
    ///
    /// # Errors
    /// [`ChatError::Invalid`] for a malformed key, [`ChatError::InProgress`] while the first
    /// call with it runs, or a failure.
    pub async fn claim(
        &self,
        principal: &Principal,
        conversation: Uuid,
        key: &str,
    ) -> Result<Outcome, ChatError> {
        if key.is_empty() {
            return Ok(Outcome::Run(None));
        }
        if key.chars().count() > MAX_KEY_CHARS || !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ChatError::invalid(
                "idempotency_key",
                format!("at most {MAX_KEY_CHARS} visible ASCII characters"),
            ));
        }
        match self
            .cache
            .claim_idempotency_key(principal.tenant, principal.user, key, KEY_TTL)
            .await?
        {
            Claimed::First => Ok(Outcome::Run(Some(Box::new(Claim {
                idempotency: self.clone(),
                principal: principal.clone(),
                key: key.to_owned(),
                settled: false,
            })))),
            Claimed::Pending => Err(ChatError::InProgress),
            Claimed::Done(user_message, reply) => {
                let user_message = self
                    .conversations
                    .message(principal, conversation, user_message)
                    .await?;
                let reply = self
                    .conversations
                    .message(principal, conversation, reply)
                    .await?;
                Ok(Outcome::Replay(Box::new((user_message, reply))))
            }
        }
    }
}
