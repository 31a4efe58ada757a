-- Model providers a tenant configured (AdminService.SetProvider): where its models are
-- served and how to authenticate there. The credential is sealed by the server with the
-- tenant's data key (associated data: tenant | providers | name) and never returned.
-- `on_premises` marks endpoints inside the tenant's premises: prompts to them skip the
-- PHI guard's redaction, and only they may serve "private" routes.

CREATE TABLE providers (
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    name              text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
    kind              text NOT NULL
        CHECK (kind IN ('openai', 'azure_openai', 'ollama', 'openai_compatible', 'local')),
    endpoint          text NOT NULL DEFAULT '' CHECK (char_length(endpoint) <= 2048),
    credential_sealed bytea NOT NULL DEFAULT '',
    models            text[] NOT NULL DEFAULT '{}',
    api_version       text NOT NULL DEFAULT '',
    on_premises       boolean NOT NULL DEFAULT false,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);
CALL codexcontinue_isolate_by_tenant('providers');
GRANT SELECT, INSERT, UPDATE, DELETE ON providers TO codexcontinue_app;
