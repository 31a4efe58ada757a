//! Working memory: per-conversation state a client or plugin keeps while a session lasts
//! (a JSON object of at most 64 KiB), in Redis with a time to live that each write
//! renews. Only the conversation's owner reads or writes it; it is sealed with the
//! tenant's data key like the conversation itself, and goes with the conversation.

use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::MemoryError;
use crate::{
    cache::Cache,
    caller::Principal,
    config::MemoryConfig,
    crypto::Sealer,
    store::{self, Database},
};

/// Largest state, encoded as JSON.
pub const MAX_STATE_BYTES: usize = 64 * 1024;
/// The table named in the sealed state's associated data.
const SEALED_AS: &str = "working_state";

/// A conversation's state and when it expires.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkingState {
    /// A JSON object.
    pub state: serde_json::Value,
    /// When it goes unless written again.
    pub expires: OffsetDateTime,
}

/// Working memory of every conversation.
#[derive(Clone)]
pub struct WorkingMemory {
    db: Database,
    sealer: Sealer,
    cache: Cache,
    settings: MemoryConfig,
}

impl WorkingMemory {
    /// States in `cache`, sealed by `sealer`, conversations checked in `db`.
    pub fn new(db: Database, sealer: Sealer, cache: Cache, settings: MemoryConfig) -> Self {
        Self {
            db,
            sealer,
            cache,
            settings,
        }
    }

    /// The state of the caller's `conversation`: empty when none was written or it
    /// expired.
    ///
    /// # Errors
    /// [`MemoryError::NotFound`] when the conversation is not the caller's; store errors.
    pub async fn get(
        &self,
        principal: &Principal,
        conversation: Uuid,
    ) -> Result<Option<WorkingState>, MemoryError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        owned(&mut tx, principal, conversation).await?;
        let Some((sealed, left)) = self
            .cache
            .working_state(principal.tenant, conversation)
            .await?
        else {
            return Ok(None);
        };
        let plain = self
            .sealer
            .open(
                &mut tx,
                principal.tenant,
                SEALED_AS,
                &conversation.to_string(),
                &sealed,
            )
            .await?;
        tx.commit().await?;
        let state = serde_json::from_slice(&plain)
            .map_err(|err| MemoryError::Corrupt(format!("working state: {err}")))?;
        Ok(Some(WorkingState {
            state,
            expires: OffsetDateTime::now_utc() + left,
        }))
    }

    /// Replaces the state of the caller's `conversation`, kept for `ttl` (default
    /// `memory.working_ttl`); returns when it expires.
    ///
    /// # Errors
    /// [`MemoryError::Invalid`] for a state that is not an object or too big, or a time
    /// out of bounds; [`MemoryError::NotFound`] when the conversation is not the caller's.
    pub async fn set(
        &self,
        principal: &Principal,
        conversation: Uuid,
        state: &serde_json::Value,
        ttl: Option<Duration>,
    ) -> Result<OffsetDateTime, MemoryError> {
        if !state.is_object() {
            return Err(MemoryError::Invalid {
                field: "state",
                reason: "must be an object".to_owned(),
            });
        }
        let encoded = serde_json::to_vec(state).map_err(|err| MemoryError::Invalid {
            field: "state",
            reason: err.to_string(),
        })?;
        if encoded.len() > MAX_STATE_BYTES {
            return Err(MemoryError::Invalid {
                field: "state",
                reason: format!(
                    "is {} bytes as JSON; at most {MAX_STATE_BYTES}",
                    encoded.len()
                ),
            });
        }
        let ttl = ttl.unwrap_or(self.settings.working_ttl);
        if ttl > self.settings.working_max_ttl {
            return Err(MemoryError::Invalid {
                field: "ttl_seconds",
                reason: format!(
                    "at most {} (memory.working_max_ttl)",
                    self.settings.working_max_ttl.as_secs()
                ),
            });
        }
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        owned(&mut tx, principal, conversation).await?;
        let sealed = self
            .sealer
            .seal(
                &mut tx,
                principal.tenant,
                SEALED_AS,
                &conversation.to_string(),
                &encoded,
            )
            .await?;
        tx.commit().await?;
        self.cache
            .put_working_state(principal.tenant, conversation, &sealed, ttl)
            .await?;
        Ok(OffsetDateTime::now_utc() + ttl)
    }
}

/// Refuses a conversation that is not the caller's.
async fn owned(
    conn: &mut sqlx::PgConnection,
    principal: &Principal,
    conversation: Uuid,
) -> Result<(), MemoryError> {
    store::conversations::get(conn, principal.user, conversation)
        .await?
        .map(|_| ())
        .ok_or(MemoryError::NotFound("conversation"))
}
