-- Long-term and episodic memory (MemoryService, recall into chat).
--
-- A memory belongs to one user. `kind` says what it is: a chunk of a past message
-- (written by the indexing job, one row per chunk, so re-running the job adds nothing), a
-- conversation summary, or an episodic fact or preference (Remember, or the extractor).
-- The text is sealed with the tenant's data key like messages are (associated data:
-- tenant | memories | id). What stays readable to the database, so it can search:
--   * `embedding`: the vector of the text from the local embedding model (384 dims, the
--     shipped minilm-l6; the server refuses an embedding model of another size), indexed
--     with HNSW for cosine distance;
--   * `keywords`: a blind keyword index: each word of the text, normalised and stemmed,
--     is replaced by a keyed hash (HMAC-SHA-256 with the tenant's keyword key, cut to 16
--     hex digits) before it reaches Postgres, so the index answers "which memories hold
--     this word" without holding the word. SECURITY.md says what it still reveals. The
--     hashes are kept twice: in the row (to score a candidate) and in `memory_terms`, one
--     row per (user, term, memory) under a B-tree, which is what keyword search reads.
--     (A GIN index would not do: row-level security keeps Postgres from
--     using an index for `@@`, which is not leakproof, so every search would scan the
--     table; text equality is leakproof.)
-- A memory goes with its user, its conversation and the message it came from.
-- `memory_centroids` keeps, per user, the sum and number of their memories' embeddings
-- (maintained by triggers), so recall can centre vectors on the user's mean: what all of
-- a user's memories share (their name, their job) then stops making every memory look
-- similar to every query.

CREATE TABLE memories (
    tenant_id         uuid NOT NULL,
    -- UUIDv7: ordering by id is ordering by creation.
    id                uuid NOT NULL,
    user_id           uuid NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('message', 'summary', 'episodic')),
    content_sealed    bytea NOT NULL,
    conversation_id   uuid,
    source_message_id uuid,
    -- Position of a message chunk within its message; 0 for other kinds.
    chunk             integer NOT NULL DEFAULT 0 CHECK (chunk >= 0),
    confidence        real NOT NULL DEFAULT 1 CHECK (confidence >= 0 AND confidence <= 1),
    embedding         vector(384) NOT NULL,
    keywords          text[] NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
        ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, source_message_id) REFERENCES messages (tenant_id, id)
        ON DELETE CASCADE
);
-- One row per chunk of a message: the indexing job is idempotent through it.
CREATE UNIQUE INDEX memories_message_chunks ON memories (tenant_id, source_message_id, chunk)
    WHERE kind = 'message';
CREATE INDEX memories_recent ON memories (tenant_id, user_id, created_at DESC, id DESC);
CREATE INDEX memories_by_conversation ON memories (tenant_id, conversation_id)
    WHERE conversation_id IS NOT NULL;
CREATE INDEX memories_embedding ON memories USING hnsw (embedding vector_cosine_ops)
    WITH (m = 16, ef_construction = 64);
CALL codexcontinue_isolate_by_tenant('memories');
GRANT SELECT, INSERT, UPDATE, DELETE ON memories TO codexcontinue_app;

CREATE TABLE memory_terms (
    tenant_id uuid NOT NULL,
    user_id   uuid NOT NULL,
    term      text NOT NULL CHECK (term ~ '^[0-9a-f]{16}$'),
    memory_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, user_id, term, memory_id),
    FOREIGN KEY (tenant_id, memory_id) REFERENCES memories (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX memory_terms_by_memory ON memory_terms (tenant_id, memory_id);
CALL codexcontinue_isolate_by_tenant('memory_terms');
GRANT SELECT, INSERT, DELETE ON memory_terms TO codexcontinue_app;

CREATE TABLE memory_centroids (
    tenant_id uuid NOT NULL,
    user_id   uuid NOT NULL,
    total     vector(384) NOT NULL,
    memories  bigint NOT NULL CHECK (memories >= 0),
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CALL codexcontinue_isolate_by_tenant('memory_centroids');
GRANT SELECT, INSERT, UPDATE, DELETE ON memory_centroids TO codexcontinue_app;

CREATE FUNCTION codexcontinue_memory_centroids_add() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO memory_centroids (tenant_id, user_id, total, memories)
    SELECT tenant_id, user_id, sum(embedding), count(*) FROM added GROUP BY tenant_id, user_id
    ON CONFLICT (tenant_id, user_id) DO UPDATE
        SET total = memory_centroids.total + excluded.total,
            memories = memory_centroids.memories + excluded.memories;
    RETURN NULL;
END
$$;
CREATE TRIGGER memories_centroids_add AFTER INSERT ON memories
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION codexcontinue_memory_centroids_add();

CREATE FUNCTION codexcontinue_memory_centroids_remove() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE memory_centroids AS c
        SET total = c.total - d.total, memories = c.memories - d.memories
    FROM (SELECT tenant_id, user_id, sum(embedding) AS total, count(*) AS memories
          FROM removed GROUP BY tenant_id, user_id) AS d
    WHERE c.tenant_id = d.tenant_id AND c.user_id = d.user_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER memories_centroids_remove AFTER DELETE ON memories
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION codexcontinue_memory_centroids_remove();

-- The key of a tenant's blind keyword index: 32 random bytes, sealed with the tenant's
-- data key (re-sealed when the data key rotates; the key itself stays, so the index stays
-- valid) and destroyed with the tenant.
CREATE TABLE memory_keyword_keys (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants (id),
    key_sealed bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CALL codexcontinue_isolate_by_tenant('memory_keyword_keys');
GRANT SELECT, INSERT, UPDATE, DELETE ON memory_keyword_keys TO codexcontinue_app;
