-- SSO login: each tenant's OpenID Connect provider, and login sessions.
--
-- Sessions live in Redis for speed (authentication reads only Redis); this table is the
-- record: listing, revoking everywhere, and audit. Only a SHA-256 of each token is kept.

CREATE TABLE identity_providers (
    tenant_id             uuid PRIMARY KEY REFERENCES tenants (id),
    issuer_url            text NOT NULL CHECK (issuer_url ~ '^https?://'),
    client_id             text NOT NULL CHECK (char_length(client_id) BETWEEN 1 AND 255),
    -- Sealed with the tenant's data key (see crypto/); empty when the client has none.
    client_secret_sealed  bytea NOT NULL DEFAULT '',
    allowed_email_domains text[] NOT NULL DEFAULT '{}',
    groups_claim          text NOT NULL DEFAULT 'groups',
    group_roles           jsonb NOT NULL DEFAULT '{}',
    scopes                text[] NOT NULL DEFAULT '{email,profile}',
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CALL codexcontinue_isolate_by_tenant('identity_providers');

CREATE TABLE sessions (
    tenant_id           uuid NOT NULL,
    id                  uuid NOT NULL,
    user_id             uuid NOT NULL,
    token_sha256        bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
    roles               text[] NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    absolute_expires_at timestamptz NOT NULL,
    revoked_at          timestamptz,
    user_agent          text NOT NULL DEFAULT '',
    client_address      text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id) WHERE revoked_at IS NULL;
CALL codexcontinue_isolate_by_tenant('sessions');

GRANT SELECT, INSERT, UPDATE, DELETE ON identity_providers, sessions TO codexcontinue_app;
