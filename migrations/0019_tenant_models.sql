-- Models a tenant uploads (ModelService.RegisterModel), private to the tenant.
--
-- The manifest is kept as JSON (file names inside it are the server's own: model.pt,
-- tokenizer.json). The files are kept in parts of up to 1 MiB, each sealed with the
-- tenant's data key (row id "<model id>:<file>:<seq>" bound into the ciphertext), so
-- replicas fetch them from here and a deleted tenant's models go with its keys.
-- `serving` is false after UnloadModel: replicas list the model but do not load it.

CREATE TABLE tenant_models (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    id          uuid NOT NULL,
    name        text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    version     text NOT NULL CHECK (version ~ '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$'),
    kind        text NOT NULL CHECK (kind IN ('embedding', 'classifier', 'causal-lm', 'torchscript')),
    manifest    jsonb NOT NULL,
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes  bigint NOT NULL CHECK (size_bytes > 0),
    serving     boolean NOT NULL DEFAULT true,
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name, version)
);
CALL codexcontinue_isolate_by_tenant('tenant_models');
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_models TO codexcontinue_app;

CREATE TABLE tenant_model_parts (
    tenant_id   uuid NOT NULL,
    id          text NOT NULL,
    model_id    uuid NOT NULL,
    file        text NOT NULL CHECK (file IN ('model', 'tokenizer')),
    seq         integer NOT NULL CHECK (seq >= 0),
    data_sealed bytea NOT NULL,
    PRIMARY KEY (tenant_id, model_id, file, seq),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, model_id) REFERENCES tenant_models (tenant_id, id) ON DELETE CASCADE
);
CALL codexcontinue_isolate_by_tenant('tenant_model_parts');
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_model_parts TO codexcontinue_app;
