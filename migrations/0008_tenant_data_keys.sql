-- Envelope encryption: each tenant's data keys (AES-256-GCM), stored only wrapped by the
-- deployment's master key. Sealed values name the key version that sealed them, so a new
-- version (rotation) leaves older values readable. Deleting a tenant's keys makes all its
-- sealed values unreadable, backups included (crypto-shredding).

CREATE TABLE tenant_data_keys (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    version     integer NOT NULL CHECK (version > 0),
    wrapped_key bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, version)
);
CALL codexcontinue_isolate_by_tenant('tenant_data_keys');
GRANT SELECT, INSERT, DELETE ON tenant_data_keys TO codexcontinue_app;
