//! Idempotency keys for SendMessage and StreamMessage: a client that retries a call with
//! the same key (after a timeout, a dropped connection) gets the messages the first call
//! stored instead of a second generation. A key is the caller's own, kept a day; while the
//! first call runs, a retry is told so (`ABORTED`); a failed call releases its key.

use std::time::Duration;

use uuid::Uuid;

use super::{ChatError, Conversations, Message};
use crate::{
    auth::Principal,
    cache::{Cache, Claimed},
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

/// A key claimed by a call that must settle it once it knows its outcome.
pub struct Claim {
    idempotency: Idempotency,
    principal: Principal,
    key: String,
}

impl Claim {
    /// Records the stored (user message, reply), or releases the key after a failure.
    pub async fn settle(self, stored: Option<(Uuid, Uuid)>) {
        let cache = &self.idempotency.cache;
        let (tenant, user) = (self.principal.tenant, self.principal.user);
        let result = match stored {
            Some(ids) => {
                cache
                    .complete_idempotency_key(tenant, user, &self.key, ids, KEY_TTL)
                    .await
            }
            None => cache.release_idempotency_key(tenant, user, &self.key).await,
        };
        if let Err(err) = result {
            tracing::warn!(error = %err, "idempotency key left to expire");
        }
    }
}

/// What a call with a key should do.
pub enum Outcome {
    /// Generate, then settle the claim (no key: nothing to settle).
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
