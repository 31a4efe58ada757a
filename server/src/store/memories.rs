//! Long-term and episodic memories (see `memory`): sealed texts with their embeddings
//! and blind keyword terms, and each tenant's keyword key. Every query runs in the
//! caller's tenant-scoped transaction and names the user whose memories it touches.

use pgvector::Vector;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{StoreError, TenantTx};

/// One stored memory, as read back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemoryRow {
    /// Memory id (UUIDv7).
    pub id: Uuid,
    /// `message`, `summary` or `episodic`.
    pub kind: String,
    /// Sealed text.
    pub content_sealed: Vec<u8>,
    /// The conversation it came from.
    pub conversation_id: Option<Uuid>,
    /// The message it came from.
    pub source_message_id: Option<Uuid>,
    /// How sure the one who stated it was, 0..1.
    pub confidence: f32,
    /// Stored.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

const MEMORY_COLUMNS: &str = "id, kind, content_sealed, conversation_id, source_message_id, \
     confidence, created_at, updated_at";

/// A memory to store.
#[derive(Debug, Clone)]
pub struct NewMemory {
    /// The row as it will read back.
    pub row: MemoryRow,
    /// Whose memory it is.
    pub user_id: Uuid,
    /// Position of a message chunk in its message.
    pub chunk: i32,
    /// The text's embedding (384 numbers).
    pub embedding: Vector,
    /// Blind keyword terms.
    pub keywords: Vec<String>,
}

/// Which memories a list or recall looks at.
#[derive(Debug, Clone, Default)]
pub struct MemoryFilter {
    /// Only these kinds; all when empty.
    pub kinds: Vec<String>,
    /// Only this conversation's.
    pub conversation: Option<Uuid>,
    /// Only those created at or after.
    pub since: Option<OffsetDateTime>,
    /// Only those created before.
    pub until: Option<OffsetDateTime>,
}

/// The filter as SQL over `$1` (user) to `$5` on the memories aliased `alias` (with its
/// dot, or empty), shared by the queries that take one.
fn filtered(alias: &str) -> String {
    format!(
        "{alias}user_id = $1
         AND (cardinality($2::text[]) = 0 OR {alias}kind = ANY($2))
         AND ($3::uuid IS NULL OR {alias}conversation_id = $3)
         AND ($4::timestamptz IS NULL OR {alias}created_at >= $4)
         AND ($5::timestamptz IS NULL OR {alias}created_at < $5)"
    )
}

/// A recall candidate with its raw signals.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CandidateRow {
    /// The memory.
    #[sqlx(flatten)]
    pub memory: MemoryRow,
    /// Its embedding.
    pub embedding: Vector,
    /// Share of the query's keyword terms the memory holds, 0..1.
    pub keyword: f32,
}

/// Stores `memory`; `false` when it is a message chunk already stored (the indexing job
/// ran before).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn insert(tx: &mut TenantTx, memory: &NewMemory) -> Result<bool, StoreError> {
    let (conn, tenant) = tx.parts();
    let row = &memory.row;
    let result = sqlx::query(
        "INSERT INTO memories
             (tenant_id, id, user_id, kind, content_sealed, conversation_id, source_message_id,
              chunk, confidence, embedding, keywords, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
         ON CONFLICT (tenant_id, source_message_id, chunk) WHERE kind = 'message' DO NOTHING",
    )
    .bind(tenant.0)
    .bind(row.id)
    .bind(memory.user_id)
    .bind(&row.kind)
    .bind(&row.content_sealed)
    .bind(row.conversation_id)
    .bind(row.source_message_id)
    .bind(memory.chunk)
    .bind(row.confidence)
    .bind(&memory.embedding)
    .bind(&memory.keywords)
    .bind(row.created_at)
    .execute(&mut *conn)
    .await?;
    if result.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO memory_terms (tenant_id, user_id, term, memory_id)
         SELECT $1, $2, term, $3 FROM unnest($4::text[]) AS term
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant.0)
    .bind(memory.user_id)
    .bind(row.id)
    .bind(&memory.keywords)
    .execute(conn)
    .await?;
    Ok(true)
}

/// `user`'s memories matching `filter`, newest first, after memory `after`.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn list(
    conn: &mut PgConnection,
    user: Uuid,
    filter: &MemoryFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<MemoryRow>, StoreError> {
    let filter_sql = filtered("");
    Ok(sqlx::query_as(&format!(
        "SELECT {MEMORY_COLUMNS} FROM memories
         WHERE {filter_sql} AND ($6::uuid IS NULL OR id < $6)
         ORDER BY id DESC
         LIMIT $7"
    ))
    .bind(user)
    .bind(&filter.kinds)
    .bind(filter.conversation)
    .bind(filter.since)
    .bind(filter.until)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Settings of one recall query.
#[derive(Debug, Clone, Copy)]
pub struct SearchSettings {
    /// Candidates taken from each index.
    pub candidates: i64,
    /// `hnsw.ef_search`.
    pub ef_search: u32,
    /// Rank every memory by exact distance instead of using the HNSW index.
    pub exact: bool,
}

/// The sum of `user`'s memory embeddings and how many there are, when they have any.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn centroid(
    conn: &mut PgConnection,
    user: Uuid,
) -> Result<Option<(Vector, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT total, memories FROM memory_centroids WHERE user_id = $1 AND memories > 0",
    )
    .bind(user)
    .fetch_optional(conn)
    .await?)
}

/// Keyword terms of a recall query with their weights (inverse document frequency).
#[derive(Debug, Clone, Default)]
pub struct WeightedTerms {
    /// Blind terms.
    pub terms: Vec<String>,
    /// Weight of each term, > 0.
    pub weights: Vec<f32>,
    /// Terms worth searching the keyword index for (the others are too common to pick
    /// candidates by).
    pub searched: Vec<String>,
}

/// How many memories `user` has, and how many of them hold each of `terms` (counted up
/// to `cap`: enough to tell rare words from common ones while keeping the count cheap on
/// big stores).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn term_counts(
    conn: &mut PgConnection,
    user: Uuid,
    terms: &[String],
    cap: i64,
) -> Result<(i64, Vec<i64>), StoreError> {
    let memories: Option<i64> =
        sqlx::query_scalar("SELECT memories FROM memory_centroids WHERE user_id = $1")
            .bind(user)
            .fetch_optional(&mut *conn)
            .await?;
    let counts: Vec<i64> = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM (
                    SELECT 1 FROM memory_terms t
                    WHERE t.user_id = $1 AND t.term = q.term LIMIT $3) AS m)
         FROM unnest($2::text[]) WITH ORDINALITY AS q(term, n)
         ORDER BY q.n",
    )
    .bind(user)
    .bind(terms)
    .bind(cap)
    .fetch_all(conn)
    .await?;
    Ok((memories.unwrap_or(0), counts))
}

/// `user`'s memories matching `filter` that are nearest to `embedding` (by cosine) or
/// share a searched keyword term, at most `settings.candidates` from each index, with
/// their embeddings and weighted keyword coverage.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn candidates(
    conn: &mut PgConnection,
    user: Uuid,
    filter: &MemoryFilter,
    embedding: &Vector,
    terms: &WeightedTerms,
    settings: SearchSettings,
) -> Result<Vec<CandidateRow>, StoreError> {
    // Filtered HNSW scans keep going until they have LIMIT rows or have visited
    // `max_scan_tuples` (pgvector 0.8): users share the index, so a big user's scan may
    // pass many other users' vectors first. (Small users are searched exactly.)
    sqlx::query(
        "SELECT set_config('hnsw.ef_search', $1, true),
                set_config('hnsw.iterative_scan', 'relaxed_order', true),
                set_config('hnsw.max_scan_tuples', '100000', true)",
    )
    .bind(settings.ef_search.to_string())
    .execute(&mut *conn)
    .await?;
    let total: f32 = terms.weights.iter().sum();
    let (plain, joined) = (filtered(""), filtered("m."));
    // The index serves `ORDER BY embedding <=> $6` only; an expression around the distance
    // makes Postgres compute every distance exactly.
    let distance = if settings.exact {
        "(embedding <=> $6) + 0"
    } else {
        "embedding <=> $6"
    };
    Ok(sqlx::query_as(&format!(
        "WITH nearest AS (
             SELECT id FROM memories WHERE {plain}
             ORDER BY {distance} LIMIT $10
         ), matching AS (
             SELECT t.memory_id AS id
             FROM unnest($8::text[], $9::real[]) AS q(term, weight)
             JOIN memory_terms t ON t.user_id = $1 AND t.term = q.term
             JOIN memories m ON m.tenant_id = t.tenant_id AND m.id = t.memory_id
             WHERE q.term = ANY ($7::text[]) AND {joined}
             GROUP BY t.memory_id
             ORDER BY sum(q.weight) DESC LIMIT $10
         )
         SELECT {MEMORY_COLUMNS}, embedding,
                (coalesce((SELECT sum(q.weight) FROM unnest($8::text[], $9::real[]) AS q(term, weight)
                           WHERE q.term = ANY (keywords)), 0)
                    / greatest($11::real, 1e-6))::real AS keyword
         FROM memories
         WHERE id IN (SELECT id FROM nearest UNION SELECT id FROM matching)"
    ))
    .bind(user)
    .bind(&filter.kinds)
    .bind(filter.conversation)
    .bind(filter.since)
    .bind(filter.until)
    .bind(embedding)
    .bind(&terms.searched)
    .bind(&terms.terms)
    .bind(&terms.weights)
    .bind(settings.candidates)
    .bind(total)
    .fetch_all(conn)
    .await?)
}

/// What [`delete`] deletes.
#[derive(Debug, Clone, Copy)]
pub enum Deletion {
    /// One memory.
    Memory(Uuid),
    /// Every memory of a conversation.
    Conversation(Uuid),
    /// Every memory of the user.
    Everything,
}

/// Deletes `user`'s memories that `what` names; returns how many.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn delete(
    conn: &mut PgConnection,
    user: Uuid,
    what: Deletion,
) -> Result<u64, StoreError> {
    let (memory, conversation) = match what {
        Deletion::Memory(id) => (Some(id), None),
        Deletion::Conversation(id) => (None, Some(id)),
        Deletion::Everything => (None, None),
    };
    let result = sqlx::query(
        "DELETE FROM memories
         WHERE user_id = $1
           AND ($2::uuid IS NULL OR id = $2)
           AND ($3::uuid IS NULL OR conversation_id = $3)",
    )
    .bind(user)
    .bind(memory)
    .bind(conversation)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// The conversation of message `message` when it is in one of `user`'s conversations.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn message_conversation(
    conn: &mut PgConnection,
    user: Uuid,
    message: Uuid,
) -> Result<Option<Uuid>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT m.conversation_id FROM messages m
         JOIN conversations c ON c.tenant_id = m.tenant_id AND c.id = m.conversation_id
         WHERE c.user_id = $1 AND m.id = $2",
    )
    .bind(user)
    .bind(message)
    .fetch_optional(conn)
    .await?)
}

/// The tenant's sealed keyword key, if it has one yet.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn keyword_key(conn: &mut PgConnection) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT key_sealed FROM memory_keyword_keys")
            .fetch_optional(conn)
            .await?,
    )
}

/// Stores the tenant's sealed keyword key unless it has one already.
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn insert_keyword_key(tx: &mut TenantTx, sealed: &[u8]) -> Result<(), StoreError> {
    let (conn, tenant) = tx.parts();
    sqlx::query(
        "INSERT INTO memory_keyword_keys (tenant_id, key_sealed) VALUES ($1, $2)
         ON CONFLICT (tenant_id) DO NOTHING",
    )
    .bind(tenant.0)
    .bind(sealed)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether `user` has memories of `kind` from message `source` (a job that wrote them ran
/// before).
///
/// # Errors
/// [`StoreError::Query`] when Postgres fails.
pub async fn has_from(
    conn: &mut PgConnection,
    user: Uuid,
    source: Uuid,
    kind: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM memories
                        WHERE user_id = $1 AND source_message_id = $2 AND kind = $3)",
    )
    .bind(user)
    .bind(source)
    .bind(kind)
    .fetch_one(conn)
    .await?)
}
