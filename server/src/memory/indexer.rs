//! The job that keeps a chat turn's messages as long-term memories: each message is cut
//! into chunks ([`super::chunks`]), the chunks are embedded in one call, and each is
//! stored as a `message` memory of the conversation's user with the message as its
//! source. A chunk already stored is not stored again, so a job that runs twice (at least
//! once delivery) adds nothing the second time.

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{LongTermMemory, MemoryError, MemoryItem, MemoryKind, chunks::chunks, said_before};
use crate::{
    audit::{self, NewEvent},
    crypto::{MESSAGE_CONTENTS, Sealer},
    jobs::{Handled, Job, JobError, JobHandler, misrouted},
    store::{self, Database},
    tenancy::TenantId,
};

/// Who writes the audit events of indexing.
const JOB: &str = "memory-indexer";

/// Runs [`Job::IndexMessages`].
pub struct MessageIndexer {
    db: Database,
    sealer: Sealer,
    memory: LongTermMemory,
}

/// A chunk to store.
struct Chunk {
    message: Uuid,
    position: i32,
    created_at: OffsetDateTime,
    text: String,
}

impl MessageIndexer {
    /// Reads messages from `db` (opened with `sealer`) and stores them in `memory`.
    pub fn new(db: Database, sealer: Sealer, memory: LongTermMemory) -> Self {
        Self { db, sealer, memory }
    }

    /// Stores the chunks of `messages` of `user`'s `conversation`; returns how many were
    /// new, or `None` when the conversation is gone.
    ///
    /// # Errors
    /// Embedding, store and crypto errors.
    pub async fn index(
        &self,
        tenant: TenantId,
        user: Uuid,
        conversation: Uuid,
        messages: &[Uuid],
    ) -> Result<Option<usize>, MemoryError> {
        let Some(chunks) = self.read(tenant, user, conversation, messages).await? else {
            return Ok(None);
        };
        if chunks.is_empty() {
            return Ok(Some(0));
        }
        let texts = chunks.iter().map(|c| c.text.clone()).collect();
        let embeddings = self.memory.embed(texts).await?;
        // Read last: the user may have forgotten the conversation while this job waited.
        let forgotten = self.memory.forgotten_at(tenant, user, conversation).await?;
        let mut tx = self.db.begin_tenant(tenant).await?;
        let mut stored = 0;
        for (chunk, embedding) in chunks.into_iter().zip(embeddings) {
            if said_before(chunk.message, forgotten) {
                continue;
            }
            let item = MemoryItem {
                // Dated by the message, so memories list in the order they were said.
                id: id_at(chunk.created_at),
                kind: MemoryKind::Message,
                content: chunk.text,
                conversation_id: Some(conversation),
                source_message_id: Some(chunk.message),
                confidence: 1.0,
                created_at: chunk.created_at,
                updated_at: OffsetDateTime::now_utc(),
            };
            if self
                .memory
                .store(&mut tx, user, &item, chunk.position, embedding)
                .await?
            {
                stored += 1;
            }
        }
        if stored > 0 {
            let event = NewEvent::by_system(
                JOB,
                "memory.index",
                "conversation",
                conversation,
                json!({ "user": user, "messages": messages, "chunks": stored }),
            );
            audit::append(&mut tx, tenant, &event).await?;
        }
        tx.commit().await?;
        Ok(Some(stored))
    }

    /// The chunks of those of `messages` still in `user`'s `conversation`; `None` when the
    /// conversation is gone.
    async fn read(
        &self,
        tenant: TenantId,
        user: Uuid,
        conversation: Uuid,
        messages: &[Uuid],
    ) -> Result<Option<Vec<Chunk>>, MemoryError> {
        let mut tx = self.db.begin_tenant(tenant).await?;
        if store::conversations::get(&mut tx, user, conversation)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let mut keyring = self.sealer.keyring(tenant);
        let mut found = Vec::new();
        for &id in messages {
            let Some(row) = store::conversations::message(&mut tx, conversation, id).await? else {
                continue;
            };
            let plain = keyring
                .open(
                    &mut tx,
                    MESSAGE_CONTENTS.table,
                    &id.to_string(),
                    &row.content_sealed,
                )
                .await?;
            let text = String::from_utf8_lossy(&plain);
            for (position, text) in chunks(&text).into_iter().enumerate() {
                found.push(Chunk {
                    message: id,
                    position: i32::try_from(position).unwrap_or(i32::MAX),
                    created_at: row.created_at,
                    text,
                });
            }
        }
        tx.commit().await?;
        Ok(Some(found))
    }
}

/// A UUIDv7 for a row created at `at`.
fn id_at(at: OffsetDateTime) -> Uuid {
    let nanos = at.unix_timestamp_nanos();
    let seconds = u64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or_default();
    let subsec = u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or_default();
    Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, seconds, subsec))
}

impl JobHandler for MessageIndexer {
    async fn handle(&self, job: &Job) -> Result<Handled, JobError> {
        let Job::IndexMessages {
            tenant,
            user,
            conversation,
            messages,
        } = job
        else {
            return Err(misrouted("the memory indexer", job));
        };
        let tenant = TenantId(*tenant);
        if !store::tenants::is_active(&self.db, tenant)
            .await
            .map_err(|err| JobError::Retry(err.to_string()))?
        {
            return Ok(Handled::Skipped("the tenant is not active"));
        }
        match self.index(tenant, *user, *conversation, messages).await {
            Ok(Some(_)) => Ok(Handled::Done),
            Ok(None) => Ok(Handled::Skipped("the conversation is gone")),
            // Without the embedding model nothing is indexed here; that is the setup, not
            // a failure of this job.
            Err(MemoryError::NoEmbeddings(_)) => Ok(Handled::Skipped("no embedding model serves")),
            Err(err) => Err(JobError::Retry(err.to_string())),
        }
    }
}
