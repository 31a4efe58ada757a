-- Conversations and their messages (ChatService).
--
-- What users write and what models answer is sealed by the server with the tenant's data
-- key before it reaches Postgres (associated data: tenant | table | row id), so the
-- database and its backups hold ciphertext only, and destroying the tenant's keys makes
-- it unreadable. Titles are sealed too: they are often the first words of a message.
-- Deleting a user deletes their conversations; deleting a conversation deletes its
-- messages.

CREATE TABLE conversations (
    tenant_id     uuid NOT NULL,
    id            uuid NOT NULL,
    user_id       uuid NOT NULL,
    title_sealed  bytea NOT NULL,
    profile       text NOT NULL CHECK (char_length(profile) BETWEEN 1 AND 63),
    model         text NOT NULL DEFAULT '' CHECK (char_length(model) <= 200),
    message_count bigint NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX conversations_recent ON conversations (tenant_id, user_id, updated_at DESC, id DESC);
CALL codexcontinue_isolate_by_tenant('conversations');
GRANT SELECT, INSERT, UPDATE, DELETE ON conversations TO codexcontinue_app;

CREATE TABLE messages (
    tenant_id         uuid NOT NULL,
    -- UUIDv7: ordering by id is ordering by creation.
    id                uuid NOT NULL,
    conversation_id   uuid NOT NULL,
    role              text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content_sealed    bytea NOT NULL,
    model_used        text NOT NULL DEFAULT '',
    prompt_tokens     bigint NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens bigint NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    cost_micros       bigint NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    finish_reason     text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
        ON DELETE CASCADE
);
CREATE INDEX messages_by_conversation ON messages (tenant_id, conversation_id, id);
CALL codexcontinue_isolate_by_tenant('messages');
GRANT SELECT, INSERT, DELETE ON messages TO codexcontinue_app;
