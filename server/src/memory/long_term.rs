//! Long-term and episodic memory: remembering, recalling, listing and forgetting a user's
//! memories.
//!
//! A memory's text is sealed with the tenant's data key; its embedding (from the platform
//! embedding model, `memory.embedding_model`) and its blind keyword terms stay searchable.
//! Every call works on the caller's own memories only, inside the tenant's row-level
//! security scope; changes are audited in the same transaction.

use std::sync::Arc;

use pgvector::Vector;
use serde_json::json;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{MemoryError, MemoryItem, MemoryKind, keywords::KeywordKey, ranking::Ranking};
use crate::{
    audit::{self, NewEvent},
    cache::Cache,
    caller::Principal,
    config::MemoryConfig,
    crypto::{Keyring, MEMORY_CONTENTS, Sealer},
    inference::{Registry, Scope},
    store::{
        self, Database, TenantTx,
        memories::{Deletion, MemoryFilter, MemoryRow, NewMemory},
    },
    tenancy::TenantId,
};

/// Longest memory text, in characters.
pub const MAX_CONTENT_CHARS: usize = 2000;
/// Vector size of the `memories.embedding` column.
pub const DIMENSIONS: usize = 384;
/// The long-term memories of every user.
#[derive(Clone)]
pub struct LongTermMemory {
    pub(super) db: Database,
    pub(super) sealer: Sealer,
    pub(super) cache: Cache,
    pub(super) registry: Arc<Registry>,
    pub(super) settings: MemoryConfig,
    pub(super) ranking: Ranking,
}

impl LongTermMemory {
    /// Memories in `db`, sealed by `sealer`, embedded by `registry`'s platform embedding
    /// model, working states dropped from `cache` when a conversation is forgotten.
    pub fn new(
        db: Database,
        sealer: Sealer,
        cache: Cache,
        registry: Arc<Registry>,
        settings: MemoryConfig,
    ) -> Self {
        let ranking = Ranking::new(settings.ranking, settings.recency_half_life);
        Self {
            db,
            sealer,
            cache,
            registry,
            settings,
            ranking,
        }
    }

    /// Stores an episodic memory (a fact or preference) of the caller, optionally from
    /// one of their messages, with `confidence` (default 1).
    ///
    /// # Errors
    /// [`MemoryError::Invalid`] for an empty or too long text or a confidence outside
    /// 0..1; [`MemoryError::NotFound`] for a message that is not the caller's; embedding
    /// and store errors.
    pub async fn remember(
        &self,
        principal: &Principal,
        content: &str,
        source_message: Option<Uuid>,
        confidence: Option<f32>,
    ) -> Result<MemoryItem, MemoryError> {
        let content = checked_text("content", content, MAX_CONTENT_CHARS)?;
        let confidence = confidence.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&confidence) {
            return Err(MemoryError::Invalid {
                field: "confidence",
                reason: "must be between 0 and 1".to_owned(),
            });
        }
        let embedding = self.embed(vec![content.to_owned()]).await?.remove(0);
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let conversation = match source_message {
            Some(message) => Some(
                store::memories::message_conversation(&mut tx, principal.user, message)
                    .await?
                    .ok_or(MemoryError::NotFound("source message"))?,
            ),
            None => None,
        };
        let item = MemoryItem::new(
            MemoryKind::Episodic,
            content.to_owned(),
            conversation,
            source_message,
            confidence,
        );
        self.store(&mut tx, principal.user, &item, 0, embedding)
            .await?;
        let event = NewEvent::by(
            principal,
            "memory.remember",
            "memory",
            item.id,
            json!({ "kind": item.kind.as_str(), "conversation": conversation }),
        );
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        Ok(item)
    }

    /// Seals and stores `item` of `user` (chunk `chunk` of its message); `false` when that
    /// message chunk is stored already.
    pub(crate) async fn store(
        &self,
        tx: &mut TenantTx,
        user: Uuid,
        item: &MemoryItem,
        chunk: i32,
        embedding: Vector,
    ) -> Result<bool, MemoryError> {
        let tenant = tx.tenant();
        let key = KeywordKey::of_tenant(tx, &self.sealer).await?;
        let sealed = self
            .sealer
            .seal(
                tx,
                tenant,
                MEMORY_CONTENTS.table,
                &item.id.to_string(),
                item.content.as_bytes(),
            )
            .await?;
        let memory = NewMemory {
            row: MemoryRow {
                id: item.id,
                kind: item.kind.as_str().to_owned(),
                content_sealed: sealed,
                conversation_id: item.conversation_id,
                source_message_id: item.source_message_id,
                confidence: item.confidence,
                created_at: item.created_at,
                updated_at: item.updated_at,
            },
            user_id: user,
            chunk,
            embedding,
            keywords: key.blind_terms(&item.content),
        };
        Ok(store::memories::insert(tx, &memory).await?)
    }

    /// A page of the caller's memories matching `filter`, newest first, after memory
    /// `after`.
    ///
    /// # Errors
    /// Store and crypto errors.
    pub async fn list(
        &self,
        principal: &Principal,
        filter: &MemoryFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<MemoryItem>, MemoryError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let rows =
            store::memories::list(&mut tx, principal.user, filter, after, i64::from(limit)).await?;
        let mut keyring = self.sealer.keyring(principal.tenant);
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            items.push(open(&mut keyring, &mut tx, row).await?);
        }
        tx.commit().await?;
        Ok(items)
    }

    /// Deletes the caller's memories that `what` names (rows with their vectors and
    /// keyword terms; for a conversation or everything, the working states too), audited
    /// in the same transaction; returns how many memories went.
    ///
    /// # Errors
    /// [`MemoryError::NotFound`] for a memory or conversation that is not the caller's;
    /// store errors.
    pub async fn forget(&self, principal: &Principal, what: Deletion) -> Result<u64, MemoryError> {
        let mut tx = self.db.begin_tenant(principal.tenant).await?;
        let conversations = match what {
            Deletion::Memory(_) => Vec::new(),
            Deletion::Conversation(id) => {
                store::conversations::get(&mut tx, principal.user, id)
                    .await?
                    .ok_or(MemoryError::NotFound("conversation"))?;
                vec![id]
            }
            Deletion::Everything => {
                store::conversations::ids_of_user(&mut tx, principal.user).await?
            }
        };
        let deleted = store::memories::delete(&mut tx, principal.user, what).await?;
        let (target, resource) = match what {
            Deletion::Memory(_) if deleted == 0 => return Err(MemoryError::NotFound("memory")),
            Deletion::Memory(id) => ("memory", id),
            Deletion::Conversation(id) => ("conversation", id),
            Deletion::Everything => ("everything", principal.user),
        };
        let event = NewEvent::by(
            principal,
            "memory.forget",
            target,
            resource,
            json!({ "deleted": deleted }),
        );
        audit::append(&mut tx, principal.tenant, &event).await?;
        tx.commit().await?;
        // Jobs still queued for the turns said so far must not write their memories again.
        match what {
            Deletion::Memory(_) => {}
            Deletion::Conversation(id) => {
                self.cache
                    .mark_forgotten(principal.tenant, principal.user, Some(id))
                    .await?;
            }
            Deletion::Everything => {
                self.cache
                    .mark_forgotten(principal.tenant, principal.user, None)
                    .await?;
            }
        }
        for conversation in conversations {
            self.cache
                .drop_working_state(principal.tenant, conversation)
                .await?;
        }
        Ok(deleted)
    }

    /// When `user` last forgot the memories of `conversation` (by forgetting it or
    /// everything), if they did: jobs keep nothing of what was said before
    /// ([`super::said_before`]).
    ///
    /// # Errors
    /// [`MemoryError::Cache`] when Redis fails.
    pub(crate) async fn forgotten_at(
        &self,
        tenant: TenantId,
        user: Uuid,
        conversation: Uuid,
    ) -> Result<Option<OffsetDateTime>, MemoryError> {
        Ok(self.cache.forgotten_at(tenant, user, conversation).await?)
    }

    /// Records that the caller is exporting their memories of `kinds` (all when empty),
    /// before anything is sent, so no export goes unrecorded.
    ///
    /// # Errors
    /// Store errors: then nothing may be exported.
    pub async fn record_export(
        &self,
        principal: &Principal,
        kinds: &[String],
    ) -> Result<(), MemoryError> {
        let event = NewEvent::by(
            principal,
            "memory.export",
            "user",
            principal.user,
            json!({ "kinds": kinds }),
        );
        audit::record(&self.db, principal.tenant, &event).await?;
        Ok(())
    }

    /// Embeds `texts` with the memory embedding model.
    pub(crate) async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vector>, MemoryError> {
        let embedded = self
            .registry
            .embed(Scope::Platform, &self.settings.embedding_model, texts)
            .await?;
        if embedded.dimensions != DIMENSIONS {
            return Err(MemoryError::NoEmbeddings(format!(
                "{} gives {} numbers per text; memories keep {DIMENSIONS}",
                embedded.model, embedded.dimensions
            )));
        }
        Ok(embedded.vectors.into_iter().map(Vector::from).collect())
    }
}

/// `text` trimmed, refused when empty or longer than `max` characters.
pub(super) fn checked_text<'t>(
    field: &'static str,
    text: &'t str,
    max: usize,
) -> Result<&'t str, MemoryError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(MemoryError::Invalid {
            field,
            reason: "must not be empty".to_owned(),
        });
    }
    let chars = text.chars().count();
    if chars > max {
        return Err(MemoryError::Invalid {
            field,
            reason: format!("is {chars} characters; at most {max}"),
        });
    }
    Ok(text)
}

/// Opens a stored memory.
pub(super) async fn open(
    keyring: &mut Keyring<'_>,
    conn: &mut PgConnection,
    row: MemoryRow,
) -> Result<MemoryItem, MemoryError> {
    let plain = keyring
        .open(
            conn,
            MEMORY_CONTENTS.table,
            &row.id.to_string(),
            &row.content_sealed,
        )
        .await?;
    Ok(MemoryItem {
        id: row.id,
        kind: MemoryKind::parse(&row.kind)?,
        content: String::from_utf8(plain)
            .map_err(|_| MemoryError::Corrupt(format!("memory {} is not UTF-8", row.id)))?,
        conversation_id: row.conversation_id,
        source_message_id: row.source_message_id,
        confidence: row.confidence,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
